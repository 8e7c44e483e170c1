"""A fake Mattermost server implementing the REST API v4 endpoints the CLI uses, as the
Mattermost API documents them (and as server/channels/api4 implements them):

- ``POST /api/v4/users/login`` {"login_id", "password"} -> 200 with the session token in the
  ``Token`` header, or 401 ``api.user.login.invalid_credentials_email_username``;
- ``POST /api/v4/plugins`` multipart (file ``plugin``, field ``force``) -> 201 with the
  manifest; 501 ``app.plugin.upload_disabled.app_error`` when uploads are off (answered before
  the body is read, as the server does); 413 ``api.plugin.upload.file_too_large.app_error``
  above ``FileSettings.MaxFileSize``; 400 ``app.plugin.install_id.app_error`` when the plugin
  exists and ``force`` is not "true";
- ``POST /api/v4/plugins/{id}/enable`` and ``/disable`` -> 200 {"status": "OK"}, 404
  ``app.plugin.not_installed.app_error``;
- ``GET /api/v4/plugins`` -> {"active": [manifest], "inactive": [manifest]} (active: running);
- ``GET /api/v4/plugins/statuses`` -> [PluginStatus];
- ``GET /api/v4/logs?page=&logs_per_page=`` -> the page's log lines, oldest first ([""] when
  the server writes no log file);
- ``GET /api/v4/config`` -> the configuration (``config``): over TCP sanitized as
  ``App.GetSanitizedConfig`` does it (plugin settings whose manifest setting is ``secret``,
  matched by key in any case, read ``********``; the settings of plugins not installed are left
  out), over the socket as stored (config_local.go);
- ``PUT /api/v4/config/patch`` a partial configuration -> merged as ``config.Merge`` does
  (objects field by field, but a map, ``PluginSettings.Plugins`` or ``PluginStates``, replaced
  whole), ``********`` plugin values replaced by the stored ones (``desanitize``), saved, and
  answered sanitized; 400 ``api.context.invalid_body_param.app_error`` for a body that is not a
  JSON object, 403 ``ent.cluster.save_config.error`` when ``config_read_only``. Keys are stored
  as sent: the real server lower-cases no plugin setting key (only a plugin's
  ``LoadPluginConfiguration`` does, when it reads them).

Activation runs the states ``activation`` gives, one per read of the plugin's state (statuses
or the plugin list); reaching a failed state logs ``Unable to activate plugin`` with the
plugin's id and the reason in ``error``, as the server does.

Every route but login needs ``Authorization: Bearer <token>`` (401
``api.context.session_expired.app_error``) of a system admin (403
``api.context.permissions.app_error``), except over the local-mode unix socket, which is
trusted but serves only the routes the server registers for local mode (``LOCAL_ROUTES``,
from server/channels/api4/*_local.go); any other path there is the server's 404
``api.context.404.app_error`` (Handle404), as ``GET /api/v4/plugins/statuses`` is on a real
socket. Errors are AppError JSON bodies. Served over TCP on 127.0.0.1 and over a unix socket,
each in a thread; every request is recorded.
"""

from __future__ import annotations

import copy
import email.parser
import email.policy
import io
import json
import re
import socket
import socketserver
import tarfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

STATE_NOT_RUNNING = 0
STATE_RUNNING = 2
STATE_FAILED_TO_START = 3
STATE_FAILED_TO_STAY_RUNNING = 4

# The local-mode routes of the plugin, system and config APIs (Mattermost 11.4.0:
# server/channels/api4/plugin_local.go, InitPluginLocal, system_local.go, InitSystemLocal, and
# config_local.go, InitConfigLocal),
# as (method, path pattern below /api/v4). Notably absent: GET /plugins/statuses.
_PLUGIN_ID = r"[A-Za-z0-9_.\-]+"
LOCAL_ROUTES: list[tuple[str, re.Pattern[str]]] = [
    (method, re.compile(f"^/api/v4{pattern}$"))
    for method, pattern in [
        ("POST", "/plugins"),
        ("GET", "/plugins"),
        ("POST", "/plugins/install_from_url"),
        ("DELETE", f"/plugins/{_PLUGIN_ID}"),
        ("POST", f"/plugins/{_PLUGIN_ID}/enable"),
        ("POST", f"/plugins/{_PLUGIN_ID}/disable"),
        ("POST", "/plugins/marketplace"),
        ("GET", "/plugins/marketplace"),
        ("POST", "/plugins/reattach"),
        ("POST", f"/plugins/{_PLUGIN_ID}/detach"),
        ("GET", "/system/ping"),
        ("GET", "/logs"),
        ("POST", "/server_busy"),
        ("GET", "/server_busy"),
        ("DELETE", "/server_busy"),
        ("GET", "/system/support_packet"),
        ("POST", "/integrity"),
        ("GET", "/system/schema/version"),
        # config_local.go, InitConfigLocal
        ("GET", "/config"),
        ("PUT", "/config"),
        ("PUT", "/config/patch"),
        ("POST", "/config/reload"),
        ("POST", "/config/migrate"),
        ("GET", "/config/client"),
    ]
]


def local_route(method: str, path: str) -> bool:
    """Whether the local-mode socket serves ``method path``."""
    return any(m == method and pattern.match(path) for m, pattern in LOCAL_ROUTES)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    transport: str  # "tcp" or "unix"
    form: dict[str, Any] = field(default_factory=dict)  # multipart: name -> value or file


@dataclass
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


@dataclass
class FakeMattermost:
    admin_token: str = "admin-token"
    user_token: str = "user-token"
    accounts: dict[str, tuple[str, str]] = field(
        default_factory=lambda: {"admin": ("admin-password", "session-of-admin")}
    )
    enable_uploads: bool = True
    max_file_size: int = 100 * 1024 * 1024  # FileSettings.MaxFileSize
    write_log_file: bool = True
    installed: dict[str, dict[str, Any]] = field(default_factory=dict)
    states: dict[str, tuple[int, str]] = field(default_factory=dict)
    log_lines: list[str] = field(default_factory=list)
    # The server's configuration (only what the config routes need; PluginSettings.Plugins is
    # plugin id -> key -> value, as stored).
    config: dict[str, Any] = field(
        default_factory=lambda: {
            "ServiceSettings": {"SiteURL": "", "EnableLocalMode": True},
            "PluginSettings": {"Enable": True, "Plugins": {}, "PluginStates": {}},
        }
    )
    config_read_only: bool = False  # SaveConfig fails: HA with ClusterSettings.ReadOnlyConfig
    # A plugin's ConfigurationWillBeSaved hook: may change the configuration being saved.
    config_will_be_saved: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    requests: list[Recorded] = field(default_factory=list)
    # What activation does: the states the plugin reports on successive status reads.
    activation: Callable[[str], list[tuple[int, str]]] = lambda plugin_id: [(STATE_RUNNING, "")]
    _pending: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    _servers: list[socketserver.BaseServer] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # Serving --------------------------------------------------------------------------

    def serve_tcp(self) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler("tcp"))
        self._start(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    def serve_unix(self, path: Path) -> str:
        server = _UnixHTTPServer(str(path), self._handler("unix"))
        self._start(server)
        return str(path)

    def _start(self, server: socketserver.BaseServer) -> None:
        self._servers.append(server)
        # A short poll interval only makes shutdown() return quickly.
        threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def _handler(self, transport: str) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self, transport)

            def do_POST(self) -> None:
                fake._handle(self, transport)

            def do_PUT(self) -> None:
                fake._handle(self, transport)

        return Handler

    # Requests -------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler, transport: str) -> None:
        url = urlsplit(h.path)
        record = Recorded(
            h.command,
            url.path,
            parse_qs(url.query),
            {k.lower(): v for k, v in h.headers.items()},
            b"",
            transport,
        )
        with self._lock:
            self.requests.append(record)
        parts = url.path.split("/")
        if transport == "unix" and not local_route(h.command, url.path):
            self._read_body(h, record)
            return self._not_found(h, url.path)
        if url.path == "/api/v4/users/login" and h.command == "POST":
            self._read_body(h, record)
            return self._login(h, record)
        if transport == "tcp":
            auth = record.headers.get("authorization", "")
            token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
            sessions = {s for _, s in self.accounts.values()}
            if token not in {self.admin_token, self.user_token} | sessions:
                self._read_body(h, record)
                return self._error(
                    h,
                    401,
                    "api.context.session_expired.app_error",
                    "Invalid or expired session, please login again.",
                )
            is_admin = token != self.user_token
        else:
            is_admin = True

        if url.path == "/api/v4/plugins" and h.command == "POST":
            if not self.enable_uploads:
                # The server checks the configuration before it reads the body.
                return self._error(
                    h,
                    501,
                    "app.plugin.upload_disabled.app_error",
                    "Plugins and/or plugin uploads have been disabled.",
                    close=True,
                )
            if not is_admin:
                return self._permission_error(h, close=True)
            if int(h.headers.get("Content-Length") or 0) > self.max_file_size:
                return self._error(
                    h,
                    413,
                    "api.plugin.upload.file_too_large.app_error",
                    "Uploaded plugin size exceeds limit.",
                    close=True,
                )
            self._read_body(h, record)
            return self._upload(h, record)
        self._read_body(h, record)
        if not is_admin:
            return self._permission_error(h)
        if url.path == "/api/v4/plugins/statuses" and h.command == "GET":
            return self._json(h, 200, self._statuses())
        if url.path == "/api/v4/plugins" and h.command == "GET":
            return self._json(h, 200, self._plugin_list())
        if url.path == "/api/v4/logs" and h.command == "GET":
            return self._logs(h, record)
        if url.path == "/api/v4/config" and h.command == "GET":
            config = self.config if transport == "unix" else self._sanitized(self.config)
            return self._json(h, 200, config)
        if url.path == "/api/v4/config/patch" and h.command == "PUT":
            return self._patch_config(h, record)
        if len(parts) == 6 and parts[:4] == ["", "api", "v4", "plugins"] and h.command == "POST":
            plugin_id, action = parts[4], parts[5]
            if action in ("enable", "disable"):
                return self._enable_disable(h, plugin_id, action)
        return self._not_found(h, url.path)

    def _read_body(self, h: BaseHTTPRequestHandler, record: Recorded) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        record.body = h.rfile.read(length) if length else b""

    def _login(self, h: BaseHTTPRequestHandler, record: Recorded) -> None:
        try:
            body = json.loads(record.body)
        except ValueError:
            body = {}
        account = self.accounts.get(str(body.get("login_id", "")))
        if account is None or account[0] != body.get("password"):
            return self._error(
                h,
                401,
                "api.user.login.invalid_credentials_email_username",
                "Enter a valid email or username and/or password.",
            )
        self._json(h, 200, {"id": "u" * 26, "username": body["login_id"]}, {"Token": account[1]})

    def _upload(self, h: BaseHTTPRequestHandler, record: Recorded) -> None:
        content_type = h.headers.get("Content-Type", "")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + record.body
        )
        if not message.is_multipart():
            return self._error(h, 400, "api.plugin.upload.no_file.app_error", "Missing file.")
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            filename = part.get_filename()
            payload = part.get_payload(decode=True) or b""
            if filename is not None:
                record.form[str(name)] = UploadedFile(filename, part.get_content_type(), payload)
            else:
                record.form[str(name)] = payload.decode()
        upload = record.form.get("plugin")
        if not isinstance(upload, UploadedFile):
            return self._error(h, 400, "api.plugin.upload.no_file.app_error", "Missing file.")
        manifest = _bundle_manifest(upload.data)
        if manifest is None:
            return self._error(
                h, 400, "app.plugin.manifest.missing.app_error", "Unable to find manifest."
            )
        plugin_id = manifest["id"]
        if plugin_id in self.installed and record.form.get("force") != "true":
            return self._error(
                h,
                400,
                "app.plugin.install_id.app_error",
                "A plugin with the same ID is already installed.",
            )
        self.installed[plugin_id] = manifest
        self.states.setdefault(plugin_id, (STATE_NOT_RUNNING, ""))
        self._json(h, 201, manifest)

    def _enable_disable(self, h: BaseHTTPRequestHandler, plugin_id: str, action: str) -> None:
        if plugin_id not in self.installed:
            return self._error(
                h, 404, "app.plugin.not_installed.app_error", "Plugin is not installed."
            )
        if action == "enable":
            self._pending[plugin_id] = list(self.activation(plugin_id))
        else:
            self._pending.pop(plugin_id, None)
            self.states[plugin_id] = (STATE_NOT_RUNNING, "")
        self._json(h, 200, {"status": "OK"})

    def _advance(self, plugin_id: str) -> tuple[int, str]:
        """The plugin's state at this read: the next one of its activation, if any."""
        pending = self._pending.get(plugin_id)
        if pending:
            before = self.states.get(plugin_id)
            self.states[plugin_id] = pending.pop(0) if len(pending) > 1 else pending[0]
            state, error = self.states[plugin_id]
            if state == STATE_FAILED_TO_START and self.states[plugin_id] != before:
                self.log_lines.append(
                    json.dumps(
                        {
                            "timestamp": "2026-11-24 10:00:00.000 Z",
                            "level": "error",
                            "msg": "Unable to activate plugin",
                            "caller": "app/plugin.go:143",
                            "plugin_id": plugin_id,
                            "bundle_path": f"plugins/{plugin_id}",
                            "error": error,
                        }
                    )
                )
        return self.states.get(plugin_id, (STATE_NOT_RUNNING, ""))

    def _plugin_list(self) -> dict[str, list[dict[str, Any]]]:
        listing: dict[str, list[dict[str, Any]]] = {"active": [], "inactive": []}
        for plugin_id, manifest in sorted(self.installed.items()):
            state, _ = self._advance(plugin_id)
            listing["active" if state == STATE_RUNNING else "inactive"].append(manifest)
        return listing

    def _statuses(self) -> list[dict[str, Any]]:
        result = []
        for plugin_id, manifest in sorted(self.installed.items()):
            state, error = self._advance(plugin_id)
            result.append(
                {
                    "plugin_id": plugin_id,
                    "cluster_id": "",
                    "plugin_path": f"plugins/{plugin_id}",
                    "state": state,
                    "error": error,
                    "name": manifest.get("name", ""),
                    "description": manifest.get("description", ""),
                    "version": manifest.get("version", ""),
                }
            )
        return result

    def _sanitized(self, config: dict[str, Any]) -> dict[str, Any]:
        """The configuration as App.GetSanitizedConfig gives it (PluginSettings.Sanitize)."""
        result = copy.deepcopy(config)
        plugins = result.get("PluginSettings", {}).get("Plugins") or {}
        for plugin_id in list(plugins):
            manifest = self.installed.get(plugin_id)
            if manifest is None:
                del plugins[plugin_id]
                continue
            schema = manifest.get("settings_schema") or {}
            secret = {
                str(setting.get("key", "")).lower()
                for group in [schema.get("settings")]
                + [s.get("settings") for s in schema.get("sections") or []]
                for setting in group or []
                if setting.get("secret")
            }
            for key in plugins[plugin_id]:
                if key.lower() in secret:
                    plugins[plugin_id][key] = FAKE_SETTING
        return result

    def _patch_config(self, h: BaseHTTPRequestHandler, record: Recorded) -> None:
        try:
            patch = json.loads(record.body)
        except ValueError:
            patch = None
        if not isinstance(patch, dict):
            return self._error(
                h,
                400,
                "api.context.invalid_body_param.app_error",
                "Invalid or missing config in request body.",
            )
        merged = _merge_config(self.config, patch)
        # desanitize: a fake value sent back keeps the stored one.
        old_plugins = self.config.get("PluginSettings", {}).get("Plugins") or {}
        for plugin_id, settings in (merged.get("PluginSettings", {}).get("Plugins") or {}).items():
            for key, value in settings.items():
                if value == FAKE_SETTING:
                    settings[key] = (old_plugins.get(plugin_id) or {}).get(key)
        if self.config_read_only:
            return self._error(
                h,
                403,
                "ent.cluster.save_config.error",
                "System Console is set to read-only when High Availability is enabled unless "
                "ReadOnlyConfig is disabled in the configuration file.",
            )
        if self.config_will_be_saved is not None:
            merged = self.config_will_be_saved(merged)
        self.config = merged
        self._json(h, 200, self._sanitized(merged))

    def _logs(self, h: BaseHTTPRequestHandler, record: Recorded) -> None:
        if not self.write_log_file:
            return self._json(h, 200, [""])
        page = int(record.query.get("page", ["0"])[0])
        per_page = int(record.query.get("logs_per_page", ["10000"])[0])
        end = len(self.log_lines) - page * per_page
        start = max(0, end - per_page)
        self._json(h, 200, self.log_lines[start : max(0, end)])

    # Answers --------------------------------------------------------------------------

    def _not_found(self, h: BaseHTTPRequestHandler, path: str) -> None:
        """The server's answer to a route it does not have (web.Handle404)."""
        self._error(
            h,
            404,
            "api.context.404.app_error",
            "Sorry, we could not find the page.",
            detailed_error=f"There doesn't appear to be an api call for the url='{path}'.  "
            "Typo? are you missing a team_id or user_id as part of the url?",
        )

    def _permission_error(self, h: BaseHTTPRequestHandler, *, close: bool = False) -> None:
        self._error(
            h,
            403,
            "api.context.permissions.app_error",
            "You do not have the appropriate permissions.",
            close=close,
        )

    def _error(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        error_id: str,
        message: str,
        *,
        close: bool = False,
        detailed_error: str = "",
    ) -> None:
        body = {
            "id": error_id,
            "message": message,
            "detailed_error": detailed_error,
            "request_id": "r" * 26,
            "status_code": status,
        }
        self._json(h, status, body, close=close)

    def _json(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        value: Any,
        headers: dict[str, str] | None = None,
        *,
        close: bool = False,
    ) -> None:
        data = json.dumps(value).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for name, text in (headers or {}).items():
            h.send_header(name, text)
        if close:
            h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(data)
        h.wfile.flush()
        if close:
            # Answered without reading the body: stop sending, then drain what the client
            # still sends so it sees this answer rather than a reset connection.
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_WR)
            while h.rfile.read1(65536):
                pass


FAKE_SETTING = "********"  # model.FakeSetting
# The maps of model.Config the fake knows: a patch replaces them whole (utils.Merge).
_CONFIG_MAPS = {("PluginSettings", "Plugins"), ("PluginSettings", "PluginStates")}


def _merge_config(
    base: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...] = ()
) -> dict[str, Any]:
    """config.Merge: structs (objects) field by field, maps and everything else replaced."""
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        here = (*path, key)
        if isinstance(value, dict) and isinstance(base.get(key), dict) and here not in _CONFIG_MAPS:
            merged[key] = _merge_config(base[key], value, here)
        elif value is not None:
            merged[key] = copy.deepcopy(value)
    return merged


class _UnixHTTPServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


def _bundle_manifest(data: bytes) -> dict[str, Any] | None:
    """The plugin.json at the top of a bundle, as the server's installer finds it."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if len(parts) == 2 and parts[1] == "plugin.json" and member.isfile():
                extracted = tar.extractfile(member)
                assert extracted is not None
                manifest = json.loads(extracted.read())
                return manifest if isinstance(manifest, dict) else None
    return None
