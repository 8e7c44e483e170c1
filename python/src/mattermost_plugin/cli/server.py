"""A small Mattermost REST API v4 client for the plugin-management endpoints.

Connection and credentials follow the Go starter template's ``pluginctl``, in this order:

1. local mode: the server's unix socket (``MM_LOCALSOCKETPATH``, default
   ``/var/tmp/mattermost_local.socket``, present when ``ServiceSettings.EnableLocalMode`` is
   on); no credentials, the caller is trusted as the server's own admin;
2. ``MM_SERVICESETTINGS_SITEURL`` + ``MM_ADMIN_TOKEN``, sent as ``Authorization: Bearer``;
3. ``MM_SERVICESETTINGS_SITEURL`` + ``MM_ADMIN_USERNAME``/``MM_ADMIN_PASSWORD``, exchanged for
   a session token by ``POST /api/v4/users/login`` (the token comes back in the ``Token``
   header).

Failures become CLIError sentences that name the setting or variable to change: uploads
disabled (501 ``app.plugin.upload_disabled.app_error``: ``PluginSettings.EnableUploads``),
a rejected token (401), an account that may not manage plugins (403), an unreachable server.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from .console import TransferProgress, human_size, progress
from .errors import CLIError

DEFAULT_LOCAL_SOCKET = "/var/tmp/mattermost_local.socket"
API_PREFIX = "/api/v4"
# pluginctl allows two minutes per call; a plugin upload is unpacked and checked by the server
# before it answers.
TIMEOUT_SECONDS = 120.0
UPLOAD_CHUNK = 256 * 1024

UPLOAD_DISABLED = "app.plugin.upload_disabled.app_error"
PLUGINS_DISABLED = "app.plugin.disabled.app_error"
NOT_INSTALLED = "app.plugin.not_installed.app_error"
# SaveConfig's answer when the configuration may not be changed through the API.
CONFIG_READ_ONLY = "ent.cluster.save_config.error"

ENV_SITE_URL = "MM_SERVICESETTINGS_SITEURL"
ENV_TOKEN = "MM_ADMIN_TOKEN"
ENV_USERNAME = "MM_ADMIN_USERNAME"
ENV_PASSWORD = "MM_ADMIN_PASSWORD"
ENV_SOCKET = "MM_LOCALSOCKETPATH"


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over the server's local-mode unix socket."""

    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise CLIError(
                f"the server answered {self.status} with something that is not JSON: "
                f"{self.body[:200]!r}"
            ) from None


@dataclass(frozen=True)
class AppError:
    """The error body Mattermost answers with (model.AppError as JSON)."""

    id: str
    message: str
    detailed_error: str
    status_code: int

    @staticmethod
    def from_response(response: Response) -> AppError:
        try:
            data = json.loads(response.body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            text = response.body.decode("utf-8", "replace").strip().splitlines()
            return AppError("", text[0][:300] if text else "", "", response.status)
        return AppError(
            str(data.get("id", "")),
            str(data.get("message", "")),
            str(data.get("detailed_error", "")),
            int(data.get("status_code") or response.status),
        )

    def describe(self) -> str:
        parts = [str(self.status_code)]
        if self.id:
            parts.append(self.id)
        text = " ".join(parts)
        if self.message:
            text += f": {self.message}"
        if self.detailed_error:
            text += f" ({self.detailed_error})"
        return text


class MattermostClient:
    """One server, one way of authenticating; every call is a fresh connection (no keep-alive
    state to go stale during a long upload)."""

    def __init__(
        self,
        *,
        site_url: str | None = None,
        socket_path: str | None = None,
        token: str | None = None,
        auth_source: str = "",
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        if (site_url is None) == (socket_path is None):
            raise ValueError("give exactly one of site_url and socket_path")
        self.site_url = site_url.rstrip("/") if site_url else None
        self.socket_path = socket_path
        self.token = token
        self.auth_source = auth_source
        self.timeout = timeout

    @property
    def where(self) -> str:
        return f"local mode ({self.socket_path})" if self.socket_path else str(self.site_url)

    def _connection(self) -> http.client.HTTPConnection:
        if self.socket_path is not None:
            return UnixHTTPConnection(self.socket_path, self.timeout)
        assert self.site_url is not None
        url = urlsplit(self.site_url)
        if url.scheme == "https":
            return http.client.HTTPSConnection(
                url.netloc, timeout=self.timeout, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(url.netloc, timeout=self.timeout)

    def _path(self, path: str) -> str:
        base = urlsplit(self.site_url).path.rstrip("/") if self.site_url else ""
        return base + API_PREFIX + path

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int] | None = None,
        body: bytes | None = None,
        body_parts: Iterable[bytes] | None = None,
        content_length: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Sends one request; ``body_parts`` streams a body of ``content_length`` bytes."""
        target = self._path(path)
        if query:
            target += "?" + urlencode(query)
        all_headers = {"Accept": "application/json", "User-Agent": "mmplug-cli"}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        all_headers.update(headers or {})
        if body is not None:
            all_headers["Content-Length"] = str(len(body))
        elif body_parts is not None:
            assert content_length is not None
            all_headers["Content-Length"] = str(content_length)
        conn = self._connection()
        try:
            conn.putrequest(method, target, skip_accept_encoding=True)
            for name, value in all_headers.items():
                conn.putheader(name, value)
            conn.endheaders()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise self._unreachable(e) from None
        try:
            try:
                if body is not None:
                    conn.send(body)
                elif body_parts is not None:
                    for part in body_parts:
                        conn.send(part)
            except OSError as send_error:
                # A server refusing an upload (uploads disabled, bad token) answers before it
                # has read the body and closes the connection: its answer is the real news.
                try:
                    return self._read(conn)
                except (OSError, http.client.HTTPException):
                    raise self._unreachable(send_error) from None
            return self._read(conn)
        except (OSError, http.client.HTTPException) as e:
            raise self._unreachable(e) from None
        finally:
            conn.close()

    @staticmethod
    def _read(conn: http.client.HTTPConnection) -> Response:
        raw = conn.getresponse()
        headers = {name.lower(): value for name, value in raw.getheaders()}
        return Response(raw.status, headers, raw.read())

    def _unreachable(self, error: BaseException) -> CLIError:
        reason = str(error) or type(error).__name__
        if isinstance(error, TimeoutError | socket.timeout):
            reason = f"no answer within {self.timeout:.0f} s"
        if self.socket_path is not None:
            return CLIError(
                f"cannot talk to the server over the local-mode socket {self.socket_path}: {reason}"
            )
        return CLIError(
            f"cannot reach the Mattermost server at {self.site_url}: {reason} "
            f"(check {ENV_SITE_URL} and that the server is running)"
        )

    def fail(self, action: str, response: Response) -> CLIError:
        """The CLIError for a failed answer, with what to change where we know it."""
        error = AppError.from_response(response)
        what = f"{action} failed: {error.describe()}"
        if 300 <= response.status < 400:
            location = response.headers.get("location", "")
            return CLIError(
                f"{action} failed: the server redirected to {location or '(nowhere)'}; set "
                f"{ENV_SITE_URL} to the server's address as it is served (e.g. https://...)"
            )
        if error.id == UPLOAD_DISABLED:
            return CLIError(
                f"{what}. Plugin uploads are disabled on this server: set "
                "PluginSettings.EnableUploads to true (System Console > Plugins > Plugin "
                "Management > Enable Plugin Uploads, or MM_PLUGINSETTINGS_ENABLEUPLOADS=true); "
                "the server also refuses uploads while PluginSettings.Enable is false or "
                "PluginSettings.RequirePluginSignature is true"
            )
        if error.id == PLUGINS_DISABLED:
            return CLIError(
                f"{what}. Plugins are disabled on this server: set PluginSettings.Enable to true"
            )
        if response.status == 401:
            return CLIError(
                f"{what}. The server did not accept {self.auth_source} (mistyped, expired or "
                "revoked?)"
            )
        if response.status == 403:
            return CLIError(
                f"{what}. The account behind {self.auth_source} may not manage plugins: "
                "use a system admin's token or account (or local mode on the server host)"
            )
        too_large = response.status == 413 or (
            response.status == 400 and "request body too large" in error.message
        )
        if too_large:
            # 413 api.plugin.upload.file_too_large.app_error on current servers, a plain-text
            # 400 on older ones, 413 from a proxy in front.
            return CLIError(
                f"{what}. The bundle is larger than the server accepts: raise "
                "FileSettings.MaxFileSize (System Console > Environment > File Storage > "
                "Maximum File Size, or MM_FILESETTINGS_MAXFILESIZE; it limits plugin uploads "
                "too) and any proxy's body limit, or bundle fewer Python versions or "
                "platforms (--python, --platform)"
            )
        return CLIError(what)

    # Plugin management ------------------------------------------------------------------

    def upload_plugin(self, bundle: Path, *, force: bool = True) -> dict[str, Any]:
        """``POST /api/v4/plugins`` (multipart: file ``plugin``, ``force``); the manifest."""
        boundary = "mmplug-" + uuid.uuid4().hex
        head = b""
        if force:
            head += _form_field(boundary, "force", "true")
        head += (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="plugin"; filename="{_quoted(bundle.name)}"'
            "\r\nContent-Type: application/gzip\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        size = bundle.stat().st_size
        meter = TransferProgress(f"uploading {bundle.name} ({human_size(size)})", size)

        def parts() -> Iterable[bytes]:
            yield head
            with bundle.open("rb") as f:
                for chunk in iter(lambda: f.read(UPLOAD_CHUNK), b""):
                    meter.advance(len(chunk))
                    yield chunk
            yield tail

        response = self.request(
            "POST",
            "/plugins",
            body_parts=parts(),
            content_length=len(head) + size + len(tail),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        if response.status != 201:
            raise self.fail(f"uploading {bundle.name}", response)
        manifest = response.json()
        if not isinstance(manifest, dict):
            raise CLIError(f"the server answered the upload with {manifest!r}, not a manifest")
        return manifest

    def enable_plugin(self, plugin_id: str) -> None:
        self._plugin_action(plugin_id, "enable")

    def disable_plugin(self, plugin_id: str) -> None:
        self._plugin_action(plugin_id, "disable")

    def _plugin_action(self, plugin_id: str, action: str) -> None:
        response = self.request("POST", f"/plugins/{quote(plugin_id, safe='')}/{action}")
        if response.status == 404 and AppError.from_response(response).id == NOT_INSTALLED:
            raise CLIError(
                f"plugin {plugin_id} is not installed on {self.where}; upload it first with "
                "`mmplug deploy`"
            )
        if response.status != 200:
            raise self.fail(f"{action} {plugin_id}", response)

    @property
    def local(self) -> bool:
        """Over the local-mode socket, which serves only some routes (plugin_local.go): upload,
        list, enable, disable and the like, but not ``/plugins/statuses``."""
        return self.socket_path is not None

    def plugins(self) -> dict[str, list[dict[str, Any]]]:
        """``GET /api/v4/plugins``: the installed plugins' manifests, split into ``active``
        (running on this node) and ``inactive``. Served in local mode too."""
        response = self.request("GET", "/plugins")
        if response.status != 200:
            raise self.fail("listing the plugins", response)
        listing = response.json()
        if not isinstance(listing, dict):
            raise CLIError(f"the server answered the plugin list with {listing!r}")
        return {
            key: [p for p in listing.get(key) or [] if isinstance(p, dict)]
            for key in ("active", "inactive")
        }

    def plugin_statuses(self) -> list[dict[str, Any]]:
        response = self.request("GET", "/plugins/statuses")
        if response.status != 200:
            raise self.fail("reading plugin statuses", response)
        statuses = response.json()
        if not isinstance(statuses, list):
            raise CLIError(f"the server answered plugin statuses with {statuses!r}")
        return [s for s in statuses if isinstance(s, dict)]

    # Configuration ----------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """``GET /api/v4/config``: the server's configuration. Over a token it is sanitized
        (secrets, plugin settings marked ``secret`` included, read ``********``; the settings of
        plugins not installed are left out); over the local-mode socket it is the whole
        configuration as stored. Served in local mode too (config_local.go)."""
        response = self.request("GET", "/config")
        if response.status != 200:
            raise self.fail("reading the server's configuration", response)
        config = response.json()
        if not isinstance(config, dict):
            raise CLIError(f"the server answered the configuration request with {config!r}")
        return config

    def patch_config(self, patch: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /api/v4/config/patch``: merges ``patch`` into the configuration and saves it;
        answers the saved configuration, sanitized. The merge goes field by field through
        structs, but a map given in the patch (``PluginSettings.Plugins``) replaces the stored
        map whole (server/channels/utils/merge.go)."""
        body = json.dumps(patch).encode()
        response = self.request(
            "PUT", "/config/patch", body=body, headers={"Content-Type": "application/json"}
        )
        if response.status != 200:
            error = AppError.from_response(response)
            if error.id == CONFIG_READ_ONLY:
                raise CLIError(
                    f"saving the configuration failed: {error.describe()}. The server's "
                    "configuration is read-only through the API (High Availability with "
                    "ClusterSettings.ReadOnlyConfig, or a read-only configuration store): "
                    "change it in the configuration file or database instead"
                )
            raise self.fail("saving the configuration", response)
        config = response.json()
        if not isinstance(config, dict):
            raise CLIError(f"the server answered the configuration patch with {config!r}")
        return config

    def server_logs(self, *, page: int, per_page: int) -> list[str]:
        """``GET /api/v4/logs``: page 0 is the newest ``per_page`` lines, oldest first."""
        response = self.request("GET", "/logs", query={"page": page, "logs_per_page": per_page})
        if response.status != 200:
            raise self.fail("reading the server log", response)
        lines = response.json()
        if not isinstance(lines, list):
            raise CLIError(f"the server answered the log request with {lines!r}")
        return [str(line) for line in lines]


def _form_field(boundary: str, name: str, value: str) -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
    ).encode()


def _quoted(filename: str) -> str:
    return filename.replace("\\", "\\\\").replace('"', '\\"')


def socket_accepts(path: str) -> bool:
    """Whether something listens on the unix socket ``path``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(2.0)
    try:
        sock.connect(path)
    except OSError:
        return False
    finally:
        sock.close()
    return True


def connect(env: Mapping[str, str] | None = None, *, local: bool = False) -> MattermostClient:
    """A client authenticated the way ``pluginctl`` does (see the module docstring)."""
    env = os.environ if env is None else env
    socket_path = env.get(ENV_SOCKET) or DEFAULT_LOCAL_SOCKET
    if socket_accepts(socket_path):
        progress(f"connecting in local mode over {socket_path}")
        return MattermostClient(socket_path=socket_path, auth_source="local mode")
    if local:
        raise CLIError(
            f"--local: no server listens on {socket_path}; local mode needs "
            "ServiceSettings.EnableLocalMode=true on the server and this command run on its "
            f"host as a user who may open the socket (set {ENV_SOCKET} if it lives elsewhere)"
        )
    if env.get(ENV_SOCKET):
        progress(f"no server listens on {socket_path}; trying {ENV_SITE_URL}")

    site_url = env.get(ENV_SITE_URL, "").strip()
    if not site_url:
        raise CLIError(
            f"no Mattermost server configured: set {ENV_SITE_URL} (e.g. "
            f"http://localhost:8065) with {ENV_TOKEN} or {ENV_USERNAME} and {ENV_PASSWORD}, "
            "or run on the server host with local mode on (ServiceSettings.EnableLocalMode, "
            f"socket {DEFAULT_LOCAL_SOCKET} or {ENV_SOCKET})"
        )
    url = urlsplit(site_url)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise CLIError(f"{ENV_SITE_URL}={site_url!r} is not an http:// or https:// URL")

    token = env.get(ENV_TOKEN, "").strip()
    if token:
        progress(f"authenticating with {ENV_TOKEN} against {site_url}")
        return MattermostClient(site_url=site_url, token=token, auth_source=ENV_TOKEN)
    username, password = env.get(ENV_USERNAME, ""), env.get(ENV_PASSWORD, "")
    if username and password:
        progress(f"logging in as {username} to {site_url}")
        return login(site_url, username, password)
    raise CLIError(
        f"no credentials for {site_url}: set {ENV_TOKEN} (a system admin's personal access "
        f"token), or {ENV_USERNAME} and {ENV_PASSWORD}"
    )


def login(site_url: str, username: str, password: str) -> MattermostClient:
    """``POST /api/v4/users/login``; the session token is the answer's ``Token`` header."""
    anonymous = MattermostClient(site_url=site_url, auth_source=f"{ENV_USERNAME}/{ENV_PASSWORD}")
    body = json.dumps({"login_id": username, "password": password}).encode()
    response = anonymous.request(
        "POST", "/users/login", body=body, headers={"Content-Type": "application/json"}
    )
    if response.status != 200:
        raise anonymous.fail(f"logging in as {username}", response)
    token = response.headers.get("token", "")
    if not token:
        raise CLIError(f"logging in as {username} succeeded but the server sent no Token header")
    return MattermostClient(
        site_url=site_url, token=token, auth_source=f"the session of {username}"
    )
