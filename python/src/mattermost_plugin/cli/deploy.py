"""``mmplug deploy``, ``enable``, ``disable`` and ``logs``: a plugin on a real server.

``deploy`` uploads a bundle (building it first when given a plugin directory) with
``force=true`` so it replaces an installed version, enables it, and waits for the server to
report it running: ``POST /api/v4/plugins/{id}/enable`` only saves the configuration, the
activation happens after it, so a plugin that fails to start is only visible in
``GET /api/v4/plugins/statuses``. The local-mode socket does not serve that route
(server/channels/api4/plugin_local.go); there the wait reads ``GET /api/v4/plugins`` (the
plugin is running once it is listed ``active``) and, for the reason a start failed, the
server's ``Unable to activate plugin`` line in ``GET /api/v4/logs``. ``logs`` reads
``GET /api/v4/logs`` (the newest lines of the server's log file, which must be JSON:
``LogSettings.FileJson``) and keeps the plugin's lines.
"""

from __future__ import annotations

import json
import tarfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .console import progress
from .errors import CLIError
from .server import MattermostClient

# model.PluginState*
STATE_NOT_RUNNING = 0
STATE_STARTING = 1
STATE_RUNNING = 2
STATE_FAILED_TO_START = 3
STATE_FAILED_TO_STAY_RUNNING = 4
STATE_STOPPING = 5
_STATE_NAMES = {
    STATE_NOT_RUNNING: "not running",
    STATE_STARTING: "starting",
    STATE_RUNNING: "running",
    STATE_FAILED_TO_START: "failed to start",
    STATE_FAILED_TO_STAY_RUNNING: "failed to stay running",
    STATE_STOPPING: "stopping",
}
_FAILED = {STATE_FAILED_TO_START, STATE_FAILED_TO_STAY_RUNNING}
STATUS_POLL_SECONDS = 0.5
LOG_POLL_SECONDS = 1.0
# How many of the newest log lines local mode reads for an activation error.
LOCAL_LOG_LINES = 1000
# What the server logs, with the plugin's id and the reason in "error", when activation fails
# (channels/app/plugin.go, syncPluginsActiveState).
ACTIVATION_FAILED_MSG = "Unable to activate plugin"

# Replaced by tests so waiting and following need no real time.
sleep: Callable[[float], None] = time.sleep
monotonic: Callable[[], float] = time.monotonic


def bundle_plugin_id(bundle: Path) -> str:
    """The plugin id inside a bundle (its top directory's plugin.json), checked up front so a
    wrong file fails here rather than as an opaque server error."""
    try:
        with tarfile.open(bundle, "r:gz") as tar:
            for member in tar:
                parts = member.name.split("/")
                if len(parts) == 2 and parts[1] == "plugin.json" and member.isfile():
                    extracted = tar.extractfile(member)
                    assert extracted is not None
                    manifest = json.loads(extracted.read())
                    plugin_id = manifest.get("id") if isinstance(manifest, dict) else None
                    if isinstance(plugin_id, str):
                        return plugin_id
    except (OSError, tarfile.TarError, ValueError) as e:
        raise CLIError(f"{bundle} is not a plugin bundle (.tar.gz): {e}") from None
    raise CLIError(f"{bundle} is not a plugin bundle: it has no <id>/plugin.json")


def deploy(client: MattermostClient, bundle: Path, *, wait_seconds: float) -> None:
    plugin_id = bundle_plugin_id(bundle)
    manifest = client.upload_plugin(bundle, force=True)
    plugin_id = str(manifest.get("id") or plugin_id)
    version = manifest.get("version", "")
    progress(f"uploaded {plugin_id} {version} to {client.where}".rstrip())
    enable(client, plugin_id, wait_seconds=wait_seconds)


def enable(client: MattermostClient, plugin_id: str, *, wait_seconds: float) -> None:
    if wait_seconds <= 0:
        client.enable_plugin(plugin_id)
        print(f"{plugin_id} enabled")
        return
    if client.local:
        # The log as it was before enabling, so only an activation error logged after it
        # counts.
        log = LocalLog(client, plugin_id)
        client.enable_plugin(plugin_id)
        progress(f"enabled {plugin_id}; waiting for it to start")
        state, error = wait_for_start_local(client, plugin_id, wait_seconds, log)
    else:
        client.enable_plugin(plugin_id)
        progress(f"enabled {plugin_id}; waiting for it to start")
        state, error = wait_for_start(client, plugin_id, wait_seconds)
        log = None
    if state == STATE_RUNNING:
        print(f"{plugin_id} is running")
        return
    if state in _FAILED:
        detail = f": {error}" if error else ""
        raise CLIError(f"{plugin_id} {_STATE_NAMES[state]}{detail} (see `mmplug logs {plugin_id}`)")
    unexplained = ""
    if log is not None and log.unreadable:
        unexplained = (
            "; local mode has no plugin status route and the server log, where an activation "
            f"error would be, could not be read: {log.unreadable}"
        )
    raise CLIError(
        f"{plugin_id} was enabled but is still {_STATE_NAMES.get(state, f'in state {state}')} "
        f"after {wait_seconds:.0f} s{unexplained} (see `mmplug logs {plugin_id}`; --wait sets "
        "how long to wait)"
    )


def disable(client: MattermostClient, plugin_id: str) -> None:
    client.disable_plugin(plugin_id)
    print(f"{plugin_id} disabled")


def wait_for_start(
    client: MattermostClient, plugin_id: str, wait_seconds: float
) -> tuple[int, str]:
    """Polls the plugin's status until it runs or fails on every node that reports it, or
    time runs out; returns the worst state seen last and its error."""
    deadline = monotonic() + wait_seconds
    while True:
        mine = [s for s in client.plugin_statuses() if s.get("plugin_id") == plugin_id]
        if not mine:
            raise CLIError(f"the server reports no status for {plugin_id}: is it installed?")
        failed = [s for s in mine if s.get("state") in _FAILED]
        if failed:
            return int(failed[0]["state"]), str(failed[0].get("error", ""))
        if all(s.get("state") == STATE_RUNNING for s in mine):
            return STATE_RUNNING, ""
        if monotonic() >= deadline:
            pending = next(s for s in mine if s.get("state") != STATE_RUNNING)
            return int(pending.get("state", STATE_NOT_RUNNING)), str(pending.get("error", ""))
        sleep(STATUS_POLL_SECONDS)


class LocalLog:
    """The server log as local mode reads it for an activation error: the window at creation,
    then on each ``activation_error()`` the lines that arrived since, searched for the server's
    ``Unable to activate plugin`` entry for the plugin. A log that cannot be read (no log file,
    not JSON, the route refused) is remembered in ``unreadable`` and not read again."""

    def __init__(self, client: MattermostClient, plugin_id: str) -> None:
        self.client = client
        self.plugin_id = plugin_id
        self.unreadable = ""
        self.window = self._read() or []

    def _read(self) -> list[str] | None:
        if self.unreadable:
            return None
        try:
            lines = self.client.server_logs(page=0, per_page=LOCAL_LOG_LINES)
            plugin_log_lines(lines, self.plugin_id)  # raises when the log cannot be used
        except CLIError as e:
            self.unreadable = str(e)
            return None
        return lines

    def activation_error(self) -> str | None:
        """The reason in a new ``Unable to activate plugin`` line for the plugin, if any."""
        current = self._read()
        if current is None:
            return None
        fresh = new_lines(self.window, current)
        self.window = current
        for _, entry in plugin_log_lines(fresh, self.plugin_id):
            if entry.get("msg") == ACTIVATION_FAILED_MSG:
                return str(entry.get("error", ""))
        return None


def wait_for_start_local(
    client: MattermostClient, plugin_id: str, wait_seconds: float, log: LocalLog
) -> tuple[int, str]:
    """The local-mode wait: ``GET /api/v4/plugins`` until the plugin is listed active (running),
    or the log shows its activation failed, or time runs out."""
    deadline = monotonic() + wait_seconds
    while True:
        listing = client.plugins()
        if any(p.get("id") == plugin_id for p in listing["active"]):
            return STATE_RUNNING, ""
        if not any(p.get("id") == plugin_id for p in listing["inactive"]):
            raise CLIError(f"the server does not list {plugin_id}: is it installed?")
        error = log.activation_error()
        if error is not None:
            return STATE_FAILED_TO_START, error
        if monotonic() >= deadline:
            return STATE_NOT_RUNNING, ""
        sleep(STATUS_POLL_SECONDS)


# Logs -------------------------------------------------------------------------------------

_SHOWN_ELSEWHERE = {"timestamp", "level", "msg", "caller", "plugin_id"}


def plugin_log_lines(lines: Sequence[str], plugin_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The plugin's entries among server log lines, as (raw line, parsed entry).

    Lines that are not JSON objects are skipped (a cluster adds node headers); if no line at
    all is JSON, the log is not in JSON and cannot be filtered, which is an error.
    """
    if len(lines) == 1 and lines[0] == "":
        raise CLIError(
            "the server writes no log file (LogSettings.EnableFile is false), so there are no "
            "logs to read through the API"
        )
    result = []
    parsed_any = False
    for raw in lines:
        line = raw.lstrip("\n")
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        parsed_any = True
        if entry.get("plugin_id") == plugin_id:
            result.append((line, entry))
    if lines and not parsed_any and any(line.strip() for line in lines):
        raise CLIError(
            "the server's log file is not JSON, so plugin lines cannot be picked out: set "
            "LogSettings.FileJson to true"
        )
    return result


def format_entry(entry: dict[str, Any]) -> str:
    """``2024-05-01 10:00:00.123 Z  info   message  key=value ...``"""
    fields = " ".join(
        f"{key}={value if isinstance(value, str) else json.dumps(value)}"
        for key, value in entry.items()
        if key not in _SHOWN_ELSEWHERE
    )
    text = f"{entry.get('timestamp', '')}  {entry.get('level', '')!s:<5}  {entry.get('msg', '')}"
    return f"{text}  {fields}" if fields else text


def new_lines(previous: Sequence[str], current: Sequence[str]) -> list[str]:
    """The lines of ``current`` that ``previous`` did not have.

    Both are windows onto the end of the same log, so what they share is a suffix of
    ``previous`` and a prefix of ``current``; the longest such overlap marks where the new
    lines begin. No overlap means every line of ``current`` is new (more lines arrived than a
    window holds, or the log was rotated).
    """
    for size in range(min(len(previous), len(current)), 0, -1):
        if list(current[:size]) == list(previous[-size:]):
            return list(current[size:])
    return list(current)


def logs(
    client: MattermostClient,
    plugin_id: str,
    *,
    lines: int,
    follow: bool,
    raw_json: bool,
) -> None:
    def show(batch: Sequence[str]) -> None:
        for line, entry in plugin_log_lines(batch, plugin_id):
            print(line if raw_json else format_entry(entry), flush=True)

    window = client.server_logs(page=0, per_page=lines)
    show(window)
    if not follow:
        return
    progress(f"following the log of {plugin_id} (Ctrl-C stops)")
    while True:
        sleep(LOG_POLL_SECONDS)
        current = client.server_logs(page=0, per_page=lines)
        show(new_lines(window, current))
        window = current
