"""OAuth2 "connect your account": the flow integration plugins use to act for a user elsewhere.

::

    class GitThing(Plugin):
        @hook(HookName.OnConfigurationChange)
        def configure(self) -> None:
            s = self.api.load_plugin_configuration()
            self.oauth = OAuth2Connector(
                self.api,
                OAuth2Config(
                    client_id=s["ClientID"], client_secret=s["ClientSecret"],
                    authorize_url="https://git.example/oauth/authorize",
                    token_url="https://git.example/oauth/token", scopes=("read",),
                ),
                encryption_secret=s["EncryptionKey"],   # a "generated" setting
                plugin_id=self.plugin_id,
            )

        @command("gitthing connect")
        def connect(self, call: CommandCall) -> str:
            return f"[Connect your account]({self.oauth.connect_url()})"

        @hook(HookName.ServeHTTP)
        def http(self, context, w, r) -> None:
            if self.oauth.handle_http(w, r):      # /oauth2/connect and /oauth2/complete
                return
            ...

        def call_the_service(self, user_id: str) -> None:
            token = self.oauth.get_token(user_id)   # refreshed when expired; None: not connected

The steps, with the facts taken from Go's ``pluginapi/experimental/oauther`` (same routes,
state format, state lifetime and KV keys, so a Go and a Python build of a plugin agree):

1. ``connect_url()`` is ``<SiteURL>/plugins/<id>/oauth2/connect``; the plugin shows it to the
   user (an ephemeral post from a slash command).
2. ``GET /oauth2/connect`` by a logged-in user: the user is the server's ``Mattermost-User-Id``
   header (the server strips it from clients and sets it itself; nothing in the URL can name
   another user). A state ``<15 random chars>_<user id>`` is stored under
   ``oauth_state_<user id>`` for 5 minutes, and the browser is redirected (302) to the
   provider's authorize URL with it and ``redirect_uri=<plugin URL>/oauth2/complete``.
3. ``GET /oauth2/complete?code=...&state=...``: the state must be the one stored for the
   logged-in user and name that user; it is then deleted with a compare-and-delete, so it is
   **single-use** (Go's oauther leaves it in place until it expires: a replay within 5 minutes
   would exchange a second code; here a replayed, forged, expired or other user's state is
   refused with 401). The code is exchanged at the token URL and the token stored.
4. Tokens are stored under ``oauth_token_<user id>``, **encrypted** with AES-256-GCM under a
   key derived (HKDF-SHA256) from ``encryption_secret`` (a plugin setting) and the plugin id.
   The KV key is the associated data, so a ciphertext copied to another user's key does not
   open. A changed secret makes stored tokens unreadable (``OAuth2TokenUnreadableError``):
   users connect again.
5. ``get_token(user_id)`` refreshes a token that expires within 10 seconds (golang.org/x/oauth2's
   margin) with its refresh token and stores the new one with a compare-and-set, so two
   servers refreshing at once keep one result (the loser, whose rotated refresh token the
   provider refuses, takes the winner's). A refresh the provider refuses with ``invalid_grant``
   otherwise deletes the token and raises ``OAuth2NotConnectedError``.
6. ``disconnect(user_id)`` deletes the token, after revoking it at the provider (RFC 7009) when
   ``OAuth2Config.revoke_url`` is set.

``OAuth2Connector`` is for sync handlers (``self.api``), ``AsyncOAuth2Connector`` for
``async def`` ones (``self.aapi``); the calls to the provider go through a ``Transport``
(urllib by default, run in a worker thread by the async form), which tests replace with
``mattermost_plugin.testing.FakeOAuth2Provider``. Encryption needs the ``cryptography``
package: ``pip install 'mmplug[oauth]'``, and list ``cryptography`` in the plugin's
requirements.txt so bundles carry it.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import html
import inspect
import json
import logging
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ._proto.mattermost.plugin.v1.models_pb2 import PluginKVSetOptions

if TYPE_CHECKING:
    from ._generated.api import AsyncPluginAPIClient, PluginAPIClient
    from .http import HTTPRequest, HTTPResponseWriter

__all__ = [
    "DEFAULT_ROUTE",
    "DEFAULT_STORE_PREFIX",
    "STATE_TTL_SECONDS",
    "AsyncOAuth2Connector",
    "OAuth2Config",
    "OAuth2ConfigError",
    "OAuth2Connector",
    "OAuth2Error",
    "OAuth2NotConnectedError",
    "OAuth2Token",
    "OAuth2TokenUnreadableError",
    "TokenCipher",
    "Transport",
    "TransportResponse",
    "UrllibTransport",
]

log = logging.getLogger("mattermost_plugin.oauth")

# Go oauther's defaults: the KV prefix, the route below the plugin URL, the state's lifetime.
DEFAULT_STORE_PREFIX = "oauth_"
DEFAULT_ROUTE = "/oauth2"
STATE_TTL_SECONDS = 5 * 60
# Go's state is model.NewId()[0:15] + "_" + userID: 15 characters of NewId's base32 alphabet
# (75 random bits), which is what is drawn here.
_STATE_ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"
_STATE_RANDOM_LEN = 15
# golang.org/x/oauth2 treats a token as expired this long before its expiry (expiryDelta).
EXPIRY_LEEWAY_SECONDS = 10.0
DEFAULT_TIMEOUT_SECONDS = 30.0
# The least secret accepted: a "generated" plugin setting is 32 characters.
MIN_SECRET_LEN = 16
# Token responses are small JSON documents; a provider sending more is misbehaving.
MAX_RESPONSE_BYTES = 1 << 20

# Sealed token layout: version byte, 12-byte nonce, AES-GCM ciphertext with its 16-byte tag.
_SEAL_VERSION = b"\x01"
_NONCE_LEN = 12
_HKDF_SALT = b"mmplug oauth2 token encryption v1"

DEFAULT_CONNECTED_TEXT = "Successfully connected. Please close this window."


class OAuth2Error(Exception):
    """The provider refused a request, or could not be reached or understood.

    ``error`` is the OAuth2 error code (``invalid_grant``, ``access_denied``; "" when the
    provider gave none), ``description`` its ``error_description``, ``status`` the HTTP status.
    """

    def __init__(self, message: str, *, error: str = "", description: str = "", status: int = 0):
        super().__init__(message)
        self.error = error
        self.description = description
        self.status = status


class OAuth2NotConnectedError(LookupError):
    """The user has no usable token: they must connect (again)."""


class OAuth2TokenUnreadableError(ValueError):
    """A stored token cannot be decrypted: the encryption secret changed or the value was
    altered. Deleting it (``disconnect``) and connecting again is the way out."""


class OAuth2ConfigError(ValueError):
    """The connector's configuration is unusable (a missing URL, a short secret, ...)."""


# --- configuration and tokens --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OAuth2Config:
    """The OAuth2 client registered at the provider, and the provider's endpoints.

    ``client_auth``: how the token endpoint authenticates the client, ``"basic"`` (HTTP Basic,
    RFC 6749 §2.3.1's default) or ``"post"`` (``client_id``/``client_secret`` in the form).
    ``authorize_params`` are added to the authorize URL; the default asks for offline access
    (a refresh token) as Go's oauther does with ``oauth2.AccessTypeOffline``.
    """

    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    scopes: Sequence[str] = ()
    revoke_url: str = ""
    client_auth: Literal["basic", "post"] = "basic"
    authorize_params: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: {"access_type": "offline"}
    )

    def check(self) -> None:
        """Raise ``OAuth2ConfigError`` naming every unusable field."""
        problems = []
        if not self.client_id:
            problems.append("client_id is empty")
        if not self.client_secret:
            problems.append("client_secret is empty")
        for name in ("authorize_url", "token_url", "revoke_url"):
            url = getattr(self, name)
            if name == "revoke_url" and not url:
                continue
            parts = urllib.parse.urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                problems.append(f"{name} {url!r} is not an http(s) URL")
        if self.client_auth not in ("basic", "post"):
            problems.append(f"client_auth must be 'basic' or 'post', not {self.client_auth!r}")
        if isinstance(self.scopes, str):
            problems.append("scopes must be a sequence of scope names, not one string")
        if problems:
            raise OAuth2ConfigError("OAuth2 configuration: " + "; ".join(problems))


@dataclasses.dataclass(frozen=True)
class OAuth2Token:
    """A token the provider issued. ``expires_at`` is Unix seconds (None: no expiry given)."""

    access_token: str
    token_type: str = "Bearer"
    refresh_token: str = ""
    expires_at: float | None = None
    scope: str = ""

    def expired(self, now: float, leeway: float = EXPIRY_LEEWAY_SECONDS) -> bool:
        """True when the token expires within ``leeway`` seconds of ``now``."""
        return self.expires_at is not None and self.expires_at - leeway <= now

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value for calls to the provider's API."""
        # RFC 6750: the scheme is "Bearer" whatever case the provider wrote it in.
        kind = "Bearer" if self.token_type.lower() == "bearer" else self.token_type
        return f"{kind} {self.access_token}"

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> OAuth2Token:
        fields = json.loads(data)
        return cls(**{f.name: fields[f.name] for f in dataclasses.fields(cls) if f.name in fields})


# --- encryption ------------------------------------------------------------------------------


def _load_crypto() -> tuple[Any, Any, Any, Any] | ImportError:
    try:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    except ImportError as e:
        return e
    return AESGCM, HKDF, hashes, InvalidTag


# Loaded with this module rather than at first use: cryptography's compiled core knows its
# Python classes once per process, so a first import inside a test run that later unloads the
# modules it imported (pytester's in-process runs do) would leave a re-import with classes the
# core refuses ("Expected instance of hashes.HashAlgorithm").
_CRYPTO = _load_crypto()


def _crypto() -> tuple[Any, Any, Any, Any]:
    if isinstance(_CRYPTO, ImportError):
        raise ImportError(
            "mattermost_plugin.oauth encrypts tokens with the 'cryptography' package, which is "
            "not installed: pip install 'mmplug[oauth]' and add cryptography==50.0.2 to the "
            f"plugin's requirements.txt ({_CRYPTO})"
        ) from _CRYPTO
    return _CRYPTO


class TokenCipher:
    """AES-256-GCM under a key derived from a secret setting; each value bound to its KV key."""

    def __init__(self, secret: str | bytes, *, context: str) -> None:
        raw = secret.encode() if isinstance(secret, str) else bytes(secret)
        if len(raw.strip()) < MIN_SECRET_LEN:
            raise OAuth2ConfigError(
                f"the token encryption secret must be at least {MIN_SECRET_LEN} characters "
                f'(got {len(raw.strip())}); use a plugin setting of type "generated" and '
                "press Regenerate in the System Console"
            )
        aesgcm, hkdf, hashes, self._invalid_tag = _crypto()
        # HKDF suits a high-entropy secret such as a generated setting; the plugin id as info
        # gives each plugin its own key even if two share a secret.
        key = hkdf(
            algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=context.encode()
        ).derive(raw)
        self._aead = aesgcm(key)

    def seal(self, name: str, plaintext: bytes) -> bytes:
        """Encrypt ``plaintext`` for the KV key ``name``."""
        nonce = os.urandom(_NONCE_LEN)
        sealed: bytes = self._aead.encrypt(nonce, plaintext, name.encode())
        return _SEAL_VERSION + nonce + sealed

    def open(self, name: str, data: bytes) -> bytes:
        """Decrypt what ``seal`` stored under ``name``; ``OAuth2TokenUnreadableError`` if not."""
        if not data.startswith(_SEAL_VERSION) or len(data) < 1 + _NONCE_LEN + 16:
            raise OAuth2TokenUnreadableError(
                f"the value of {name!r} is not a token sealed by mattermost_plugin.oauth "
                f"({len(data)} bytes); disconnect and connect again"
            )
        nonce, sealed = data[1 : 1 + _NONCE_LEN], data[1 + _NONCE_LEN :]
        try:
            plain: bytes = self._aead.decrypt(nonce, sealed, name.encode())
        except self._invalid_tag:
            raise OAuth2TokenUnreadableError(
                f"the token in {name!r} does not decrypt: the encryption secret setting "
                "changed or the stored value was altered; the user must connect again"
            ) from None
        return plain


# --- talking to the provider ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TransportResponse:
    """What the provider answered to a form POST."""

    status: int
    content_type: str
    body: bytes


class Transport(Protocol):
    """Carries the calls to the provider; blocking (the async connector runs it in a thread).

    ``post_form`` reaches the token and revocation endpoints; ``get`` the provider's API for
    ``fetch``. Both return the answer whatever its status; they raise ``OAuth2Error`` only
    when there is no answer (connection refused, timeout).
    """

    def post_form(
        self, url: str, form: Mapping[str, str], headers: Mapping[str, str], timeout: float
    ) -> TransportResponse: ...

    def get(self, url: str, headers: Mapping[str, str], timeout: float) -> TransportResponse: ...


class UrllibTransport:
    """The default transport: ``urllib.request``, no extra dependency."""

    def post_form(
        self, url: str, form: Mapping[str, str], headers: Mapping[str, str], timeout: float
    ) -> TransportResponse:
        data = urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(url, data=data, method="POST", headers=dict(headers))
        return self._send(url, request, timeout)

    def get(self, url: str, headers: Mapping[str, str], timeout: float) -> TransportResponse:
        request = urllib.request.Request(url, method="GET", headers=dict(headers))
        return self._send(url, request, timeout)

    def _send(self, url: str, request: urllib.request.Request, timeout: float) -> TransportResponse:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = response.read(MAX_RESPONSE_BYTES + 1)
                status, ctype = response.status, response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:  # a 4xx/5xx answer still carries the error JSON
            body = e.read(MAX_RESPONSE_BYTES + 1)
            status, ctype = e.code, e.headers.get("Content-Type", "")
        except (urllib.error.URLError, OSError) as e:
            raise OAuth2Error(f"cannot reach the OAuth2 provider at {url}: {e}") from e
        if len(body) > MAX_RESPONSE_BYTES:
            raise OAuth2Error(f"the OAuth2 provider at {url} answered more than 1 MiB")
        return TransportResponse(status, ctype, body)


def _parse_fields(response: TransportResponse) -> dict[str, Any]:
    # Most providers answer JSON; some (GitHub without an Accept header) answer a form, which
    # golang.org/x/oauth2 also reads.
    media = response.content_type.split(";")[0].strip().lower()
    if media in ("application/x-www-form-urlencoded", "text/plain"):
        text = response.body.decode("utf-8", errors="replace")
        return {k: v[0] for k, v in urllib.parse.parse_qs(text).items()}
    try:
        fields = json.loads(response.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        fields = None
    if not isinstance(fields, dict):
        raise OAuth2Error(
            f"the OAuth2 provider answered {response.status} with a body that is not a JSON "
            f"object ({response.body[:80]!r})",
            status=response.status,
        )
    return fields


def _provider_error(what: str, response: TransportResponse) -> OAuth2Error | None:
    fields: dict[str, Any] = {}
    try:
        fields = _parse_fields(response)
    except OAuth2Error:
        if response.status < 400:
            raise
    error = str(fields.get("error") or "")
    if response.status < 400 and not error:
        return None
    description = str(fields.get("error_description") or "")
    detail = (
        f"{error}: {description}"
        if description
        else error or response.body[:80].decode("utf-8", errors="replace")
    )
    return OAuth2Error(
        f"the OAuth2 provider refused {what} (HTTP {response.status}): {detail}",
        error=error,
        description=description,
        status=response.status,
    )


def _token_from(response: TransportResponse, now: float, old_refresh: str = "") -> OAuth2Token:
    error = _provider_error("the token request", response)
    if error is not None:
        raise error
    fields = _parse_fields(response)
    access = fields.get("access_token")
    if not isinstance(access, str) or not access:
        raise OAuth2Error("the OAuth2 provider's token response has no access_token")
    expires_in = fields.get("expires_in")
    expires_at: float | None = None
    if expires_in not in (None, "", 0, "0"):
        try:
            expires_at = now + float(expires_in)
        except (TypeError, ValueError):
            raise OAuth2Error(
                f"the token response's expires_in {expires_in!r} is not a number"
            ) from None
    refresh = fields.get("refresh_token")
    return OAuth2Token(
        access_token=access,
        token_type=str(fields.get("token_type") or "Bearer"),
        # A refresh response without a new refresh token keeps the old one (RFC 6749 §6).
        refresh_token=refresh if isinstance(refresh, str) and refresh else old_refresh,
        expires_at=expires_at,
        scope=str(fields.get("scope") or ""),
    )


# --- the flow's pieces that do no I/O --------------------------------------------------------


class _Base:
    def __init__(
        self,
        config: OAuth2Config,
        *,
        encryption_secret: str | bytes,
        plugin_id: str,
        site_url: str,
        route: str,
        store_prefix: str,
        state_ttl: int,
        transport: Transport | None,
        now: Callable[[], float],
        connected_text: str,
        timeout: float,
    ) -> None:
        config.check()
        if not plugin_id:
            raise OAuth2ConfigError("plugin_id is empty (pass self.plugin_id)")
        if not route.startswith("/") or route.endswith("/"):
            raise OAuth2ConfigError(f"route must start and not end with '/', got {route!r}")
        if isinstance(state_ttl, bool) or not isinstance(state_ttl, int) or state_ttl < 1:
            raise OAuth2ConfigError(f"state_ttl must be whole seconds >= 1, got {state_ttl!r}")
        self.config = config
        self.plugin_id = plugin_id
        self.site_url = site_url.rstrip("/")
        self.route = route
        self.store_prefix = store_prefix
        self.state_ttl = state_ttl
        self.transport: Transport = transport or UrllibTransport()
        self.now = now
        self.connected_text = connected_text
        self.timeout = timeout
        self.cipher = TokenCipher(encryption_secret, context=plugin_id)

    # KV keys, as Go's oauther names them.
    def token_key(self, user_id: str) -> str:
        return f"{self.store_prefix}token_{user_id}"

    def state_key(self, user_id: str) -> str:
        return f"{self.store_prefix}state_{user_id}"

    def _plugin_url(self, site_url: str) -> str:
        if not site_url:
            raise OAuth2ConfigError(
                "the server has no Site URL (System Console > Environment > Web Server), so "
                "the OAuth2 redirect URL cannot be built; set it or pass site_url="
            )
        return f"{site_url.rstrip('/')}/plugins/{self.plugin_id}"

    def _new_state(self, user_id: str) -> str:
        random_part = "".join(secrets.choice(_STATE_ALPHABET) for _ in range(_STATE_RANDOM_LEN))
        return f"{random_part}_{user_id}"

    def _authorize_url(self, redirect_uri: str, state: str) -> str:
        params = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
        }
        if self.config.scopes:
            params["scope"] = " ".join(self.config.scopes)
        params.update(self.config.authorize_params)
        base = self.config.authorize_url
        joiner = "&" if urllib.parse.urlsplit(base).query else "?"
        return base + joiner + urllib.parse.urlencode(params)

    def _client_auth(self, form: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        headers = {"Accept": "application/json"}
        if self.config.client_auth == "basic":
            # RFC 6749 §2.3.1: both parts are form-encoded before the Basic encoding.
            user = urllib.parse.quote_plus(self.config.client_id)
            password = urllib.parse.quote_plus(self.config.client_secret)
            basic = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        else:
            form = {
                **form,
                "client_id": self.config.client_id,
                "client_secret": self.config.client_secret,
            }
        return form, headers

    def _exchange_request(self, code: str, redirect_uri: str) -> tuple[Any, ...]:
        form, headers = self._client_auth(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        )
        return self.config.token_url, form, headers, self.timeout

    def _refresh_request(self, token: OAuth2Token) -> tuple[Any, ...]:
        form, headers = self._client_auth(
            {"grant_type": "refresh_token", "refresh_token": token.refresh_token}
        )
        return self.config.token_url, form, headers, self.timeout

    def _revoke_request(self, token: OAuth2Token) -> tuple[Any, ...]:
        # Revoking the refresh token ends the whole grant at providers that support it.
        value, hint = (
            (token.refresh_token, "refresh_token")
            if token.refresh_token
            else (token.access_token, "access_token")
        )
        form, headers = self._client_auth({"token": value, "token_type_hint": hint})
        return self.config.revoke_url, form, headers, self.timeout

    def _seal(self, user_id: str, token: OAuth2Token) -> bytes:
        key = self.token_key(user_id)
        return self.cipher.seal(key, token.to_json())

    def _open(self, user_id: str, data: bytes) -> OAuth2Token:
        key = self.token_key(user_id)
        plain = self.cipher.open(key, data)
        try:
            return OAuth2Token.from_json(plain)
        except (ValueError, TypeError, KeyError) as e:
            raise OAuth2TokenUnreadableError(f"the token in {key!r} is malformed: {e}") from None

    def _route_of(self, r: HTTPRequest) -> str | None:
        """ "connect", "complete", or None when the request is not for this helper."""
        if r.path == self.route + "/connect":
            return "connect"
        if r.path == self.route + "/complete":
            return "complete"
        return None

    def _check_state(self, r: HTTPRequest, stored: bytes) -> str | None:
        """The reason to refuse the callback's state, or None when it is the stored one."""
        state = (r.query.get("state") or [""])[0]
        if not stored:
            return "no connection was started for this user, or it expired"
        try:
            expected = json.loads(stored)
        except (UnicodeDecodeError, json.JSONDecodeError):
            expected = None
        if not isinstance(expected, str) or not secrets.compare_digest(
            state.encode(), expected.encode()
        ):
            return "the state does not match the one issued to this user"
        # The stored state names its user (Go's format); it must be the logged-in one.
        if expected.split("_", 1)[-1] != r.user_id:
            return "the state belongs to another user"
        return None

    def _state_options(self) -> PluginKVSetOptions:
        return PluginKVSetOptions(expire_in_seconds=self.state_ttl)


def _text(w: HTTPResponseWriter, status: int, text: str) -> None:
    w.headers["Content-Type"] = ["text/plain; charset=utf-8"]
    w.headers["X-Content-Type-Options"] = ["nosniff"]
    w.write_header(status)
    w.write(text + "\n")


def _no_store(w: HTTPResponseWriter) -> None:
    # The callback URL carries the code and state: keep it out of caches and Referer headers.
    w.headers["Cache-Control"] = ["no-store"]
    w.headers["Referrer-Policy"] = ["no-referrer"]


def _connected_page(w: HTTPResponseWriter, text: str) -> None:
    body = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Connected</title>'
        "<script>window.close();</script></head>"
        f"<body><p>{html.escape(text)}</p></body></html>\n"
    )
    w.headers["Content-Type"] = ["text/html; charset=utf-8"]
    w.write_header(200)
    w.write(body)


def _redirect(w: HTTPResponseWriter, location: str) -> None:
    w.headers["Location"] = [location]
    w.headers["Cache-Control"] = ["no-store"]
    w.write_header(302)


def _refuse_method(w: HTTPResponseWriter) -> None:
    w.headers["Allow"] = ["GET"]
    _text(w, 405, "Method not allowed")


# --- sync ----------------------------------------------------------------------------------


class OAuth2Connector(_Base):
    """The connect flow for sync handlers, over the blocking client (``self.api``).

    ``encryption_secret``: the plugin setting tokens are encrypted with. ``site_url``: the
    server's Site URL, read from its configuration when not given. ``on_connect(user_id,
    token)`` runs after a user connected (errors are logged). ``now`` is the clock token
    expiry is judged by (Unix seconds); ``transport`` carries the calls to the provider.
    """

    def __init__(
        self,
        api: PluginAPIClient,
        config: OAuth2Config,
        *,
        encryption_secret: str | bytes,
        plugin_id: str,
        site_url: str = "",
        route: str = DEFAULT_ROUTE,
        store_prefix: str = DEFAULT_STORE_PREFIX,
        state_ttl: int = STATE_TTL_SECONDS,
        on_connect: Callable[[str, OAuth2Token], object] | None = None,
        transport: Transport | None = None,
        now: Callable[[], float] = time.time,
        connected_text: str = DEFAULT_CONNECTED_TEXT,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(
            config,
            encryption_secret=encryption_secret,
            plugin_id=plugin_id,
            site_url=site_url,
            route=route,
            store_prefix=store_prefix,
            state_ttl=state_ttl,
            transport=transport,
            now=now,
            connected_text=connected_text,
            timeout=timeout,
        )
        self.api = api
        self.on_connect = on_connect

    def plugin_url(self) -> str:
        """``<SiteURL>/plugins/<plugin id>``."""
        site = self.site_url
        if not site:
            cfg = self.api.get_config()
            site = cfg.service_settings.site_url if cfg is not None else ""
        return self._plugin_url(site)

    def connect_url(self) -> str:
        """The link to show the user: it starts the flow."""
        return self.plugin_url() + self.route + "/connect"

    def redirect_uri(self) -> str:
        """The callback registered at the provider: ``<plugin URL>/oauth2/complete``."""
        return self.plugin_url() + self.route + "/complete"

    def handle_http(self, w: HTTPResponseWriter, r: HTTPRequest) -> bool:
        """Serve the flow's two routes; False (nothing written) for any other path."""
        which = self._route_of(r)
        if which is None:
            return False
        if r.method != "GET":
            _refuse_method(w)
        elif not r.user_id:
            _text(w, 401, "Not authorized: log in to Mattermost first")
        elif which == "connect":
            self._connect(w, r)
        else:
            self._complete(w, r)
        return True

    def _connect(self, w: HTTPResponseWriter, r: HTTPRequest) -> None:
        state = self._new_state(r.user_id)
        redirect_uri = self.redirect_uri()
        self.api.kv_set_with_options(
            self.state_key(r.user_id), json.dumps(state).encode(), self._state_options()
        )
        _redirect(w, self._authorize_url(redirect_uri, state))

    def _complete(self, w: HTTPResponseWriter, r: HTTPRequest) -> None:
        _no_store(w)
        key = self.state_key(r.user_id)
        stored = self.api.kv_get(key)
        reason = self._check_state(r, stored)
        # Deleting only the value we compared makes the state single-use even when the same
        # callback arrives twice at once (on two servers): only one delete succeeds.
        if reason is None and not self.api.kv_compare_and_delete(key, stored):
            reason = "the state was already used"
        if reason is not None:
            log.warning("OAuth2 callback for user %s refused: %s", r.user_id, reason)
            _text(w, 401, f"Not authorized: {reason}. Start the connection again.")
            return
        provider_error = (r.query.get("error") or [""])[0]
        code = (r.query.get("code") or [""])[0]
        if provider_error:
            text = (r.query.get("error_description") or [""])[0]
            _text(w, 400, f"The provider did not grant access: {provider_error} {text}".strip())
            return
        if not code:
            _text(w, 400, "Bad request: the callback has no code")
            return
        try:
            token = _token_from(
                self.transport.post_form(*self._exchange_request(code, self.redirect_uri())),
                self.now(),
            )
        except OAuth2Error as e:
            log.warning("OAuth2 code exchange for user %s failed: %s", r.user_id, e)
            _text(w, 502, f"The provider refused the authorization code: {e}")
            return
        self.api.kv_set(self.token_key(r.user_id), self._seal(r.user_id, token))
        _connected_page(w, self.connected_text)
        if self.on_connect is not None:
            try:
                self.on_connect(r.user_id, token)
            except Exception:
                log.exception("on_connect for user %s failed", r.user_id)

    def store_token(self, user_id: str, token: OAuth2Token) -> None:
        """Store ``token`` for ``user_id`` (encrypted), replacing any other."""
        self.api.kv_set(self.token_key(user_id), self._seal(user_id, token))

    def get_token(self, user_id: str) -> OAuth2Token | None:
        """The user's token, refreshed first if it expired; None when not connected."""
        key = self.token_key(user_id)
        sealed = self.api.kv_get(key)
        if not sealed:
            return None
        token = self._open(user_id, sealed)
        if not token.expired(self.now()):
            return token
        if not token.refresh_token:
            raise OAuth2NotConnectedError(
                f"the token of user {user_id} expired and the provider gave no refresh token: "
                "the user must connect again"
            )
        try:
            fresh = _token_from(
                self.transport.post_form(*self._refresh_request(token)),
                self.now(),
                token.refresh_token,
            )
        except OAuth2Error as e:
            if e.error != "invalid_grant":
                raise
            if not self.api.kv_compare_and_delete(key, sealed):
                # The stored token changed meanwhile: another handler refreshed it first, and
                # the provider rotated the refresh token we sent. Theirs is the live one.
                current = self.api.kv_get(key)
                if current:
                    return self._open(user_id, current)
            raise OAuth2NotConnectedError(
                f"the provider no longer accepts the refresh token of user {user_id} "
                f"({e}): the user must connect again"
            ) from e
        options = PluginKVSetOptions(atomic=True, old_value=sealed)
        if self.api.kv_set_with_options(key, self._seal(user_id, fresh), options):
            return fresh
        # Another handler (or server) refreshed or changed it meanwhile: theirs stands.
        current = self.api.kv_get(key)
        if not current:
            return None
        return self._open(user_id, current)

    def fetch(
        self, user_id: str, url: str, headers: Mapping[str, str] | None = None
    ) -> TransportResponse:
        """GET ``url`` of the provider's API as the user (their token, refreshed if needed).

        ``OAuth2NotConnectedError`` when the user has no token.
        """
        token = self.get_token(user_id)
        if token is None:
            raise OAuth2NotConnectedError(f"user {user_id} has not connected their account")
        sent = {
            "Accept": "application/json",
            **(headers or {}),
            "Authorization": token.authorization,
        }
        return self.transport.get(url, sent, self.timeout)

    def is_connected(self, user_id: str) -> bool:
        """Whether a token is stored for the user (it is not checked with the provider)."""
        return bool(self.api.kv_get(self.token_key(user_id)))

    def disconnect(self, user_id: str) -> bool:
        """Forget the user's token (revoked first when ``revoke_url`` is set); True if one
        was stored. A failed revocation is logged, and the token forgotten all the same."""
        key = self.token_key(user_id)
        sealed = self.api.kv_get(key)
        if not sealed:
            return False
        if self.config.revoke_url:
            try:
                token = self._open(user_id, sealed)
                error = _provider_error(
                    "the revocation", self.transport.post_form(*self._revoke_request(token))
                )
                if error is not None:
                    raise error
            except (OAuth2Error, OAuth2TokenUnreadableError) as e:
                log.warning("revoking the token of user %s failed: %s", user_id, e)
        self.api.kv_delete(key)
        return True


# --- async ---------------------------------------------------------------------------------


class AsyncOAuth2Connector(_Base):
    """``OAuth2Connector`` for ``async def`` handlers, over the async client (``self.aapi``).

    The provider is called in a worker thread, so the event loop keeps serving other hooks;
    ``on_connect`` may be a plain or an ``async`` function.
    """

    def __init__(
        self,
        aapi: AsyncPluginAPIClient,
        config: OAuth2Config,
        *,
        encryption_secret: str | bytes,
        plugin_id: str,
        site_url: str = "",
        route: str = DEFAULT_ROUTE,
        store_prefix: str = DEFAULT_STORE_PREFIX,
        state_ttl: int = STATE_TTL_SECONDS,
        on_connect: Callable[[str, OAuth2Token], object | Awaitable[object]] | None = None,
        transport: Transport | None = None,
        now: Callable[[], float] = time.time,
        connected_text: str = DEFAULT_CONNECTED_TEXT,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(
            config,
            encryption_secret=encryption_secret,
            plugin_id=plugin_id,
            site_url=site_url,
            route=route,
            store_prefix=store_prefix,
            state_ttl=state_ttl,
            transport=transport,
            now=now,
            connected_text=connected_text,
            timeout=timeout,
        )
        self.aapi = aapi
        self.on_connect = on_connect

    async def _post(self, request: tuple[Any, ...]) -> TransportResponse:
        return await asyncio.to_thread(self.transport.post_form, *request)

    async def plugin_url(self) -> str:
        """``<SiteURL>/plugins/<plugin id>``."""
        site = self.site_url
        if not site:
            cfg = await self.aapi.get_config()
            site = cfg.service_settings.site_url if cfg is not None else ""
        return self._plugin_url(site)

    async def connect_url(self) -> str:
        """The link to show the user: it starts the flow."""
        return await self.plugin_url() + self.route + "/connect"

    async def redirect_uri(self) -> str:
        """The callback registered at the provider: ``<plugin URL>/oauth2/complete``."""
        return await self.plugin_url() + self.route + "/complete"

    async def handle_http(self, w: HTTPResponseWriter, r: HTTPRequest) -> bool:
        """Serve the flow's two routes; False (nothing written) for any other path."""
        which = self._route_of(r)
        if which is None:
            return False
        if r.method != "GET":
            _refuse_method(w)
        elif not r.user_id:
            _text(w, 401, "Not authorized: log in to Mattermost first")
        elif which == "connect":
            await self._connect(w, r)
        else:
            await self._complete(w, r)
        return True

    async def _connect(self, w: HTTPResponseWriter, r: HTTPRequest) -> None:
        state = self._new_state(r.user_id)
        redirect_uri = await self.redirect_uri()
        await self.aapi.kv_set_with_options(
            self.state_key(r.user_id), json.dumps(state).encode(), self._state_options()
        )
        _redirect(w, self._authorize_url(redirect_uri, state))

    async def _complete(self, w: HTTPResponseWriter, r: HTTPRequest) -> None:
        _no_store(w)
        key = self.state_key(r.user_id)
        stored = await self.aapi.kv_get(key)
        reason = self._check_state(r, stored)
        if reason is None and not await self.aapi.kv_compare_and_delete(key, stored):
            reason = "the state was already used"
        if reason is not None:
            log.warning("OAuth2 callback for user %s refused: %s", r.user_id, reason)
            _text(w, 401, f"Not authorized: {reason}. Start the connection again.")
            return
        provider_error = (r.query.get("error") or [""])[0]
        code = (r.query.get("code") or [""])[0]
        if provider_error:
            text = (r.query.get("error_description") or [""])[0]
            _text(w, 400, f"The provider did not grant access: {provider_error} {text}".strip())
            return
        if not code:
            _text(w, 400, "Bad request: the callback has no code")
            return
        try:
            response = await self._post(self._exchange_request(code, await self.redirect_uri()))
            token = _token_from(response, self.now())
        except OAuth2Error as e:
            log.warning("OAuth2 code exchange for user %s failed: %s", r.user_id, e)
            _text(w, 502, f"The provider refused the authorization code: {e}")
            return
        await self.aapi.kv_set(self.token_key(r.user_id), self._seal(r.user_id, token))
        _connected_page(w, self.connected_text)
        if self.on_connect is not None:
            try:
                result = self.on_connect(r.user_id, token)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("on_connect for user %s failed", r.user_id)

    async def store_token(self, user_id: str, token: OAuth2Token) -> None:
        """Store ``token`` for ``user_id`` (encrypted), replacing any other."""
        await self.aapi.kv_set(self.token_key(user_id), self._seal(user_id, token))

    async def get_token(self, user_id: str) -> OAuth2Token | None:
        """The user's token, refreshed first if it expired; None when not connected."""
        key = self.token_key(user_id)
        sealed = await self.aapi.kv_get(key)
        if not sealed:
            return None
        token = self._open(user_id, sealed)
        if not token.expired(self.now()):
            return token
        if not token.refresh_token:
            raise OAuth2NotConnectedError(
                f"the token of user {user_id} expired and the provider gave no refresh token: "
                "the user must connect again"
            )
        try:
            response = await self._post(self._refresh_request(token))
            fresh = _token_from(response, self.now(), token.refresh_token)
        except OAuth2Error as e:
            if e.error != "invalid_grant":
                raise
            if not await self.aapi.kv_compare_and_delete(key, sealed):
                current = await self.aapi.kv_get(key)
                if current:
                    return self._open(user_id, current)
            raise OAuth2NotConnectedError(
                f"the provider no longer accepts the refresh token of user {user_id} "
                f"({e}): the user must connect again"
            ) from e
        options = PluginKVSetOptions(atomic=True, old_value=sealed)
        if await self.aapi.kv_set_with_options(key, self._seal(user_id, fresh), options):
            return fresh
        current = await self.aapi.kv_get(key)
        if not current:
            return None
        return self._open(user_id, current)

    async def fetch(
        self, user_id: str, url: str, headers: Mapping[str, str] | None = None
    ) -> TransportResponse:
        """GET ``url`` of the provider's API as the user (their token, refreshed if needed).

        ``OAuth2NotConnectedError`` when the user has no token.
        """
        token = await self.get_token(user_id)
        if token is None:
            raise OAuth2NotConnectedError(f"user {user_id} has not connected their account")
        sent = {
            "Accept": "application/json",
            **(headers or {}),
            "Authorization": token.authorization,
        }
        return await asyncio.to_thread(self.transport.get, url, sent, self.timeout)

    async def is_connected(self, user_id: str) -> bool:
        """Whether a token is stored for the user (it is not checked with the provider)."""
        return bool(await self.aapi.kv_get(self.token_key(user_id)))

    async def disconnect(self, user_id: str) -> bool:
        """Forget the user's token (revoked first when ``revoke_url`` is set); True if one
        was stored. A failed revocation is logged, and the token forgotten all the same."""
        key = self.token_key(user_id)
        sealed = await self.aapi.kv_get(key)
        if not sealed:
            return False
        if self.config.revoke_url:
            try:
                token = self._open(user_id, sealed)
                response = await self._post(self._revoke_request(token))
                error = _provider_error("the revocation", response)
                if error is not None:
                    raise error
            except (OAuth2Error, OAuth2TokenUnreadableError) as e:
                log.warning("revoking the token of user %s failed: %s", user_id, e)
        await self.aapi.kv_delete(key)
        return True
