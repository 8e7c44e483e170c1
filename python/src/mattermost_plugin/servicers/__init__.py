"""``mattermost_plugin.servicers``: a module path of Mattermost's own Python SDK (see
docs/upstream.md)."""
