"""What the plugin's HTTP routes answer: the admin status page (HTML) and the strikes (JSON).

Rendering only: the routes in plugin.py check who is asking and gather the data.
"""

from __future__ import annotations

import datetime
import html
from collections.abc import Mapping, Sequence
from typing import Any

from .rules import ModerationSettings
from .strikes import StrikeRecord


def strike_rows(
    records: Sequence[StrikeRecord], usernames: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The strikes as JSON objects; ``username`` is "" for a user the server no longer has."""
    return [
        {
            "user_id": r.user_id,
            "username": usernames.get(r.user_id, ""),
            "count": r.count,
            "last_at": r.last_at,
        }
        for r in records
    ]


def _when(millis: int) -> str:
    if not millis:
        return ""
    moment = datetime.datetime.fromtimestamp(millis / 1000, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _list(items: Sequence[str]) -> str:
    return ", ".join(html.escape(i) for i in items) if items else "<em>none</em>"


def status_page(
    plugin_id: str,
    settings: ModerationSettings,
    records: Sequence[StrikeRecord],
    usernames: Mapping[str, str],
) -> str:
    """The admin page: the settings in force and every user's strikes."""
    e = html.escape
    log_channel = settings.log_channel or "none (no notices are posted)"
    rows = "\n".join(
        f"<tr><td>@{e(usernames.get(r.user_id, '')) or e(r.user_id)}</td>"
        f"<td>{r.count}</td><td>{e(_when(r.last_at))}</td></tr>"
        for r in records
    )
    strikes = (
        f"<table><tr><th>User</th><th>Strikes</th><th>Last</th></tr>\n{rows}\n</table>"
        if records
        else "<p>No strikes recorded.</p>"
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Moderation</title></head>
<body>
<h1>Moderation</h1>
<h2>Settings</h2>
<dl>
<dt>Action</dt><dd>{e(settings.action)}</dd>
<dt>Banned words ({len(settings.banned_words)})</dt><dd>{_list(settings.banned_words)}</dd>
<dt>Whole words only</dt><dd>{"yes" if settings.match_whole_words else "no"}</dd>
<dt>Log channel</dt><dd>{e(log_channel)}</dd>
<dt>Exempt users</dt><dd>{_list(settings.exempt_users)}</dd>
<dt>Exempt roles</dt><dd>{_list(settings.exempt_roles)}</dd>
</dl>
<p><a href="/admin_console/plugins/plugin_{e(plugin_id)}">Change them in the System Console</a></p>
<h2>Strikes</h2>
{strikes}
</body>
</html>
"""
