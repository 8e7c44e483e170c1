"""``mattermost_plugin.servicers.hooks_servicer``: the names of Mattermost's own Python SDK's
hook servicer module that plugin code and its tests use (docs/upstream.md).

``HTTPRequest`` and ``HTTPResponseWriter`` are mmplug's (``mattermost_plugin.http``), which
have that SDK's helpers; ``DISMISS_POST_ERROR`` is Go's ``plugin.DismissPostError``: returned
as ``MessageWillBePosted``'s reason, the server drops the post without telling the user. The
servicer class itself is not here: mmplug's dispatcher serves hooks (docs/upstream.md).
"""

from __future__ import annotations

from ..http import HTTPRequest, HTTPResponseWriter

__all__ = ["DISMISS_POST_ERROR", "HTTPRequest", "HTTPResponseWriter"]

DISMISS_POST_ERROR = "plugin.message_will_be_posted.dismiss_post"
