"""Module paths of Mattermost's own Python SDK that its users import from (docs/upstream.md)."""
