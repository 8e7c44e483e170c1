"""``mattermost_plugin.async_client``: the module path of Mattermost's own Python SDK's async
client; ``AsyncPluginAPIClient`` is mmplug's, which has every API method (docs/upstream.md)."""

from __future__ import annotations

from ._generated.api import AsyncPluginAPIClient

__all__ = ["AsyncPluginAPIClient"]
