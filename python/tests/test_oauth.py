"""mattermost_plugin.oauth: the connect flow, state checks, encrypted storage, refresh,
disconnect, in both forms, against the test kit's FakeOAuth2Provider (no network), and once
over HTTP on localhost with the default urllib transport."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

import mattermost_plugin.oauth
from mattermost_plugin import HookName, HTTPRequest, HTTPResponseWriter, Plugin, hook
from mattermost_plugin.oauth import (
    STATE_TTL_SECONDS,
    AsyncOAuth2Connector,
    OAuth2Config,
    OAuth2ConfigError,
    OAuth2Connector,
    OAuth2Error,
    OAuth2NotConnectedError,
    OAuth2Token,
    OAuth2TokenUnreadableError,
    TokenCipher,
    TransportResponse,
    UrllibTransport,
)
from mattermost_plugin.testing import FakeMattermost, PluginHandle, StartPlugin
from mattermost_plugin.testing.oauth import FakeOAuth2Provider

PLUGIN_ID = "com.example.connect"
SECRET = "0123456789abcdefghijklmnopqrstuv"  # as a "generated" setting looks
ALICE = "aliceaaaaaaaaaaaaaaaaaaaaa"
BOB = "bobbbbbbbbbbbbbbbbbbbbbbbb"
PREFIX = f"/plugins/{PLUGIN_ID}"
STATE_RE = re.compile(r"^[ybndrfg8ejkmcpqxot1uwisza345h769]{15}_" + ALICE + "$")


def fake_now(fake: FakeMattermost) -> Callable[[], float]:
    return lambda: fake.clock.now_millis() / 1000


@pytest.fixture
def provider(mm_fake: FakeMattermost) -> FakeOAuth2Provider:
    # One clock for the server's KV expiry, the provider and the connector.
    return FakeOAuth2Provider(now=fake_now(mm_fake))


def below_plugin(url: str) -> str:
    """The part of a plugin URL that ServeHTTP sees (after /plugins/<id>)."""
    parts = urllib.parse.urlsplit(url)
    assert parts.path.startswith(PREFIX), url
    return parts.path[len(PREFIX) :] + ("?" + parts.query if parts.query else "")


def make_plugin(provider: FakeOAuth2Provider, fake: FakeMattermost, *, use_async: bool) -> type:
    connected: list[tuple[str, OAuth2Token]] = []

    class SyncConnect(Plugin):
        events = connected

        @hook(HookName.OnActivate)
        def on_activate(self) -> None:
            self.oauth = OAuth2Connector(
                self.api,
                provider.config(),
                encryption_secret=SECRET,
                plugin_id=self.plugin_id,
                transport=provider,
                now=fake_now(fake),
                on_connect=lambda user_id, token: connected.append((user_id, token)),
            )

        @hook(HookName.ServeHTTP)
        def http(self, context: Any, w: HTTPResponseWriter, r: HTTPRequest) -> None:
            if not self.oauth.handle_http(w, r):
                w.write_header(404)

    class AsyncConnect(Plugin):
        events = connected

        @hook(HookName.OnActivate)
        async def on_activate(self) -> None:
            async def record(user_id: str, token: OAuth2Token) -> None:
                connected.append((user_id, token))

            self.oauth = AsyncOAuth2Connector(
                self.aapi,
                provider.config(),
                encryption_secret=SECRET,
                plugin_id=self.plugin_id,
                transport=provider,
                now=fake_now(fake),
                on_connect=record,
            )

        @hook(HookName.ServeHTTP)
        async def http(self, context: Any, w: HTTPResponseWriter, r: HTTPRequest) -> None:
            if not await self.oauth.handle_http(w, r):
                w.write_header(404)

    return AsyncConnect if use_async else SyncConnect


@pytest.fixture(params=["sync", "async"])
def plugin(
    request: pytest.FixtureRequest,
    mm_fake: FakeMattermost,
    mm_plugin: StartPlugin,
    provider: FakeOAuth2Provider,
) -> PluginHandle:
    cls = make_plugin(provider, mm_fake, use_async=request.param == "async")
    return mm_plugin(cls, plugin_id=PLUGIN_ID)


def sync_connector(fake: FakeMattermost, provider: FakeOAuth2Provider) -> OAuth2Connector:
    """A connector over the same KV, for reading what the plugin stored."""
    return OAuth2Connector(
        fake.api,
        provider.config(),
        encryption_secret=SECRET,
        plugin_id=PLUGIN_ID,
        transport=provider,
        now=fake_now(fake),
    )


def start(plugin: PluginHandle, user_id: str = ALICE) -> str:
    """/oauth2/connect as ``user_id``: the provider URL the plugin redirects to."""
    answer = plugin.http("GET", "/oauth2/connect", user_id=user_id)
    assert answer.status == 302, answer.text
    return answer.headers["Location"][0]


def connect(plugin: PluginHandle, provider: FakeOAuth2Provider, user_id: str = ALICE) -> Any:
    callback = provider.authorize(start(plugin, user_id), login=f"login-{user_id[:3]}")
    return plugin.http("GET", below_plugin(callback), user_id=user_id)


def kv_rows(fake: FakeMattermost) -> dict[str, bytes]:
    return fake.kv_of(PLUGIN_ID)


# --- connect and callback -----------------------------------------------------------------


def test_connect_redirects_to_the_provider_with_a_state_bound_to_the_user(
    plugin: PluginHandle, provider: FakeOAuth2Provider, mm_fake: FakeMattermost
) -> None:
    location = start(plugin)
    parts = urllib.parse.urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == provider.authorize_url
    query = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
    assert query["response_type"] == "code"
    assert query["client_id"] == provider.client_id
    assert query["redirect_uri"] == f"http://localhost:8065{PREFIX}/oauth2/complete"
    assert query["scope"] == "read"
    assert query["access_type"] == "offline"
    assert STATE_RE.match(query["state"]), query["state"]
    # Stored as Go's oauther stores it: a JSON string under oauth_state_<user>, 5 minutes.
    assert json.loads(kv_rows(mm_fake)[f"oauth_state_{ALICE}"]) == query["state"]
    mm_fake.clock.advance(STATE_TTL_SECONDS + 1)
    assert f"oauth_state_{ALICE}" not in kv_rows(mm_fake)


def test_the_whole_flow_stores_an_encrypted_token(
    plugin: PluginHandle, provider: FakeOAuth2Provider, mm_fake: FakeMattermost
) -> None:
    answer = connect(plugin, provider)
    assert answer.status == 200, answer.text
    assert answer.headers["Content-Type"] == ["text/html; charset=utf-8"]
    assert "Successfully connected" in answer.text
    assert answer.headers["Cache-Control"] == ["no-store"]
    [grant] = provider.live_grants()
    sealed = kv_rows(mm_fake)[f"oauth_token_{ALICE}"]
    assert grant.access_token.encode() not in sealed
    assert grant.refresh_token.encode() not in sealed
    token = sync_connector(mm_fake, provider).get_token(ALICE)
    assert token is not None
    assert (token.access_token, token.refresh_token) == (grant.access_token, grant.refresh_token)
    assert token.expires_at == mm_fake.clock.now_millis() / 1000 + provider.token_lifetime
    # The state is gone: used once.
    assert f"oauth_state_{ALICE}" not in kv_rows(mm_fake)
    events = plugin.plugin.events
    assert [(user, t.access_token) for user, t in events] == [(ALICE, grant.access_token)]
    # The code was exchanged once, with the redirect URI of the authorize request.
    [request] = provider.token_requests
    assert request["grant_type"] == "authorization_code"
    assert request["redirect_uri"] == f"http://localhost:8065{PREFIX}/oauth2/complete"


def test_a_replayed_callback_is_refused(
    plugin: PluginHandle, provider: FakeOAuth2Provider, mm_fake: FakeMattermost
) -> None:
    callback = provider.authorize(start(plugin))
    assert plugin.http("GET", below_plugin(callback), user_id=ALICE).status == 200
    again = plugin.http("GET", below_plugin(callback), user_id=ALICE)
    assert again.status == 401
    assert "no connection was started" in again.text
    assert len(provider.token_requests) == 1  # the second code was never exchanged


def test_a_state_can_be_used_once_even_with_a_fresh_code(
    plugin: PluginHandle, provider: FakeOAuth2Provider
) -> None:
    location = start(plugin)
    first = provider.authorize(location)
    second = provider.authorize(location)  # the same state, a new code
    assert plugin.http("GET", below_plugin(first), user_id=ALICE).status == 200
    assert plugin.http("GET", below_plugin(second), user_id=ALICE).status == 401
    assert len(provider.live_grants()) == 1


def forge(callback: str, state: str) -> str:
    parts = urllib.parse.urlsplit(callback)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query["state"] = state
    return parts.path + "?" + urllib.parse.urlencode(query)


@pytest.mark.parametrize(
    "forged_state",
    [
        "",  # none at all
        "aaaaaaaaaaaaaaa_" + ALICE,  # Go's format with the right user, a guessed random part
        "{original}x",
    ],
)
def test_a_forged_state_is_refused_and_the_real_one_still_works(
    plugin: PluginHandle, provider: FakeOAuth2Provider, forged_state: str
) -> None:
    callback = provider.authorize(start(plugin))
    original = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))["state"]
    forged = forge(callback, forged_state.format(original=original))
    refused = plugin.http("GET", below_plugin(forged), user_id=ALICE)
    assert refused.status == 401
    assert "does not match" in refused.text
    assert provider.token_requests == []
    # A failed guess does not burn the user's real state.
    assert plugin.http("GET", below_plugin(callback), user_id=ALICE).status == 200


def test_another_users_callback_is_refused(
    plugin: PluginHandle, provider: FakeOAuth2Provider, mm_fake: FakeMattermost
) -> None:
    # Alice starts; Bob (say, tricked into opening Alice's callback link) cannot finish it, and
    # his own started state does not match hers either.
    alice_callback = provider.authorize(start(plugin, ALICE))
    assert plugin.http("GET", below_plugin(alice_callback), user_id=BOB).status == 401
    start(plugin, BOB)
    refused = plugin.http("GET", below_plugin(alice_callback), user_id=BOB)
    assert refused.status == 401
    assert provider.token_requests == []
    assert f"oauth_token_{BOB}" not in kv_rows(mm_fake)


def test_the_user_comes_from_the_server_header_only(
    plugin: PluginHandle, provider: FakeOAuth2Provider
) -> None:
    callback = provider.authorize(start(plugin, ALICE))
    # Anonymous, with Alice's id in a header the server would strip and in the query.
    anonymous = plugin.http(
        "GET",
        below_plugin(callback) + f"&user_id={ALICE}",
        headers={"Mattermost-User-Id": ALICE},
    )
    assert anonymous.status == 401
    assert plugin.http("GET", "/oauth2/connect").status == 401


def test_an_expired_state_is_refused(
    plugin: PluginHandle, provider: FakeOAuth2Provider, mm_fake: FakeMattermost
) -> None:
    callback = provider.authorize(start(plugin))
    mm_fake.clock.advance(STATE_TTL_SECONDS + 1)
    assert plugin.http("GET", below_plugin(callback), user_id=ALICE).status == 401


def test_access_denied_at_the_provider_is_reported(
    plugin: PluginHandle, provider: FakeOAuth2Provider, mm_fake: FakeMattermost
) -> None:
    callback = provider.authorize(start(plugin), approve=False)
    answer = plugin.http("GET", below_plugin(callback), user_id=ALICE)
    assert answer.status == 400
    assert "access_denied" in answer.text
    assert f"oauth_token_{ALICE}" not in kv_rows(mm_fake)
    assert f"oauth_state_{ALICE}" not in kv_rows(mm_fake)


def test_a_code_the_provider_refuses_is_a_502(
    plugin: PluginHandle, provider: FakeOAuth2Provider
) -> None:
    callback = provider.authorize(start(plugin))
    parts = urllib.parse.urlsplit(callback)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query["code"] = "not-a-code"
    answer = plugin.http(
        "GET", below_plugin(parts.path + "?" + urllib.parse.urlencode(query)), user_id=ALICE
    )
    assert answer.status == 502
    assert "invalid_grant" in answer.text


def test_other_paths_and_methods(plugin: PluginHandle) -> None:
    assert plugin.http("GET", "/elsewhere", user_id=ALICE).status == 404  # not the helper's
    refused = plugin.http("POST", "/oauth2/connect", user_id=ALICE, body=b"")
    assert (refused.status, refused.headers["Allow"]) == (405, ["GET"])


# --- tokens: refresh, disconnect, fetch ---------------------------------------------------


def test_an_expired_token_is_refreshed_and_stored(
    plugin: PluginHandle, provider: FakeOAuth2Provider, mm_fake: FakeMattermost
) -> None:
    assert connect(plugin, provider).status == 200
    connector = sync_connector(mm_fake, provider)
    first = connector.get_token(ALICE)
    assert first is not None
    mm_fake.clock.advance(provider.token_lifetime - 5)  # within the 10 s margin
    fresh = connector.get_token(ALICE)
    assert fresh is not None
    assert fresh.access_token != first.access_token
    assert fresh.refresh_token != first.refresh_token  # the provider rotated it
    assert provider.token_requests[-1]["grant_type"] == "refresh_token"
    assert provider.token_requests[-1]["refresh_token"] == first.refresh_token
    # Stored: the next read needs no refresh.
    assert connector.get_token(ALICE) == fresh
    assert len(provider.token_requests) == 2
    me = connector.fetch(ALICE, provider.userinfo_url)
    assert (me.status, json.loads(me.body)["login"]) == (200, "login-ali")


async def test_the_async_connector_refreshes_fetches_and_disconnects(
    plugin: PluginHandle, provider: FakeOAuth2Provider, mm_fake: FakeMattermost
) -> None:
    assert (await plugin.ahttp("GET", "/oauth2/connect", user_id=ALICE)).status == 302
    connector = AsyncOAuth2Connector(
        mm_fake.aapi,
        provider.config(),
        encryption_secret=SECRET,
        plugin_id=PLUGIN_ID,
        transport=provider,
        now=fake_now(mm_fake),
    )
    location = (await plugin.ahttp("GET", "/oauth2/connect", user_id=ALICE)).headers["Location"]
    callback = provider.authorize(location[0])
    assert (await plugin.ahttp("GET", below_plugin(callback), user_id=ALICE)).status == 200
    assert await connector.is_connected(ALICE)
    mm_fake.clock.advance(provider.token_lifetime)
    fresh = await connector.get_token(ALICE)
    assert fresh is not None and provider.grant_for_access(fresh.authorization) is not None
    me = await connector.fetch(ALICE, provider.userinfo_url)
    assert me.status == 200
    assert await connector.disconnect(ALICE) is True
    assert provider.live_grants() == []
    assert await connector.get_token(ALICE) is None
    assert await connector.disconnect(ALICE) is False


def test_a_refused_refresh_forgets_the_token(
    plugin: PluginHandle, provider: FakeOAuth2Provider, mm_fake: FakeMattermost
) -> None:
    assert connect(plugin, provider).status == 200
    provider.revoke_all("login-ali")  # the user revoked the app at the provider
    mm_fake.clock.advance(provider.token_lifetime)
    connector = sync_connector(mm_fake, provider)
    with pytest.raises(OAuth2NotConnectedError, match="invalid_grant"):
        connector.get_token(ALICE)
    assert connector.get_token(ALICE) is None
    with pytest.raises(OAuth2NotConnectedError, match="has not connected"):
        connector.fetch(ALICE, provider.userinfo_url)


def test_an_expired_token_without_refresh_token_needs_a_new_connection(
    mm_fake: FakeMattermost, provider: FakeOAuth2Provider
) -> None:
    connector = sync_connector(mm_fake, provider)
    now = mm_fake.clock.now_millis() / 1000
    connector.store_token(ALICE, OAuth2Token(access_token="a", expires_at=now + 60))
    assert connector.get_token(ALICE) == OAuth2Token(access_token="a", expires_at=now + 60)
    mm_fake.clock.advance(60)
    with pytest.raises(OAuth2NotConnectedError, match="no refresh token"):
        connector.get_token(ALICE)


def test_a_concurrent_refresh_keeps_the_token_stored_first(
    mm_fake: FakeMattermost, provider: FakeOAuth2Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = sync_connector(mm_fake, provider)
    now = mm_fake.clock.now_millis() / 1000
    connector.store_token(ALICE, OAuth2Token(access_token="old", refresh_token="r", expires_at=now))
    theirs = OAuth2Token(access_token="theirs", refresh_token="r2", expires_at=now + 3600)

    def another_server_refreshes(*args: Any) -> TransportResponse:
        connector.store_token(ALICE, theirs)  # lands while our refresh is in flight
        body = {"access_token": "ours", "expires_in": 3600, "refresh_token": "r3"}
        return TransportResponse(200, "application/json", json.dumps(body).encode())

    monkeypatch.setattr(provider, "post_form", another_server_refreshes)
    assert connector.get_token(ALICE) == theirs
    assert connector.get_token(ALICE) == theirs


def test_disconnect_revokes_at_the_provider(
    plugin: PluginHandle, provider: FakeOAuth2Provider, mm_fake: FakeMattermost
) -> None:
    assert connect(plugin, provider).status == 200
    connector = sync_connector(mm_fake, provider)
    token = connector.get_token(ALICE)
    assert token is not None
    assert connector.disconnect(ALICE) is True
    assert provider.grant_for_access(token.authorization) is None
    assert not connector.is_connected(ALICE)
    assert connector.disconnect(ALICE) is False


def test_disconnect_forgets_the_token_when_revocation_fails(
    mm_fake: FakeMattermost, provider: FakeOAuth2Provider, caplog: pytest.LogCaptureFixture
) -> None:
    connector = sync_connector(mm_fake, provider)
    connector.store_token(ALICE, OAuth2Token(access_token="a"))
    provider.client_secret = "rotated"  # the provider now refuses our client
    assert connector.disconnect(ALICE) is True
    assert not connector.is_connected(ALICE)
    assert "invalid_client" in caplog.text


# --- encryption ---------------------------------------------------------------------------


def test_a_token_does_not_open_under_another_key_user_or_secret(
    mm_fake: FakeMattermost, provider: FakeOAuth2Provider
) -> None:
    connector = sync_connector(mm_fake, provider)
    connector.store_token(ALICE, OAuth2Token(access_token="secret-token"))
    sealed = mm_fake.api.kv_get(f"oauth_token_{ALICE}")
    # Copied to Bob's key: the KV key is the associated data.
    mm_fake.api.kv_set(f"oauth_token_{BOB}", sealed)
    with pytest.raises(OAuth2TokenUnreadableError, match="does not decrypt"):
        connector.get_token(BOB)
    # Altered.
    mm_fake.api.kv_set(f"oauth_token_{ALICE}", sealed[:-1] + bytes([sealed[-1] ^ 1]))
    with pytest.raises(OAuth2TokenUnreadableError, match="does not decrypt"):
        connector.get_token(ALICE)
    # Another secret (the setting was regenerated).
    mm_fake.api.kv_set(f"oauth_token_{ALICE}", sealed)
    other = OAuth2Connector(
        mm_fake.api,
        provider.config(),
        encryption_secret=SECRET[::-1],
        plugin_id=PLUGIN_ID,
        transport=provider,
    )
    with pytest.raises(OAuth2TokenUnreadableError, match="secret setting changed"):
        other.get_token(ALICE)
    # Not ours at all (a Go oauther's plain JSON token).
    mm_fake.api.kv_set(f"oauth_token_{ALICE}", b'{"access_token":"x"}')
    with pytest.raises(OAuth2TokenUnreadableError, match="not a token sealed"):
        connector.get_token(ALICE)
    assert connector.disconnect(ALICE) is True  # the way out, even unreadable


def test_cipher_round_trip_and_fresh_nonces() -> None:
    cipher = TokenCipher(SECRET, context=PLUGIN_ID)
    a, b = cipher.seal("k", b"data"), cipher.seal("k", b"data")
    assert a != b
    assert cipher.open("k", a) == cipher.open("k", b) == b"data"
    other_plugin = TokenCipher(SECRET, context="com.example.other")
    with pytest.raises(OAuth2TokenUnreadableError):
        other_plugin.open("k", a)


# --- configuration and responses ----------------------------------------------------------


def test_bad_configuration_is_named(mm_fake: FakeMattermost, provider: FakeOAuth2Provider) -> None:
    with pytest.raises(OAuth2ConfigError, match="at least 16 characters"):
        OAuth2Connector(mm_fake.api, provider.config(), encryption_secret="short", plugin_id="p")
    bad = OAuth2Config(
        client_id="",
        client_secret="s",
        authorize_url="ftp://x",
        token_url="https://ok/token",
        scopes="read",  # a str is a sequence of one-letter scopes: the mistake checked for
    )
    with pytest.raises(OAuth2ConfigError) as e:
        OAuth2Connector(mm_fake.api, bad, encryption_secret=SECRET, plugin_id="p")
    message = str(e.value)
    assert "client_id is empty" in message
    assert "authorize_url 'ftp://x'" in message
    assert "scopes must be a sequence" in message
    with pytest.raises(OAuth2ConfigError, match="plugin_id"):
        OAuth2Connector(mm_fake.api, provider.config(), encryption_secret=SECRET, plugin_id="")


def test_no_site_url_is_a_clear_error(
    mm_fake: FakeMattermost, provider: FakeOAuth2Provider
) -> None:
    mm_fake.config.service_settings.site_url = ""
    connector = sync_connector(mm_fake, provider)
    with pytest.raises(OAuth2ConfigError, match="Site URL"):
        connector.connect_url()
    explicit = OAuth2Connector(
        mm_fake.api,
        provider.config(),
        encryption_secret=SECRET,
        plugin_id=PLUGIN_ID,
        site_url="https://chat.example.com/",
    )
    assert explicit.connect_url() == f"https://chat.example.com{PREFIX}/oauth2/connect"


class Scripted:
    """A transport answering every POST with one canned response."""

    def __init__(self, status: int, content_type: str, body: bytes) -> None:
        self.response = TransportResponse(status, content_type, body)
        self.sent: list[tuple[str, dict[str, str], dict[str, str]]] = []

    def post_form(self, url: str, form: Any, headers: Any, timeout: float) -> TransportResponse:
        self.sent.append((url, dict(form), dict(headers)))
        return self.response

    def get(self, url: str, headers: Any, timeout: float) -> TransportResponse:
        return self.response


def refresh_with(
    mm_fake: FakeMattermost, provider: FakeOAuth2Provider, transport: Scripted, **config: Any
) -> OAuth2Token | None:
    cfg = OAuth2Config(**{**vars(provider.config()), **config})
    connector = OAuth2Connector(
        mm_fake.api,
        cfg,
        encryption_secret=SECRET,
        plugin_id=PLUGIN_ID,
        transport=transport,
        now=fake_now(mm_fake),
    )
    now = mm_fake.clock.now_millis() / 1000
    connector.store_token(ALICE, OAuth2Token(access_token="a", refresh_token="r", expires_at=now))
    return connector.get_token(ALICE)


def test_token_responses_as_a_form_and_client_auth_in_the_body(
    mm_fake: FakeMattermost, provider: FakeOAuth2Provider
) -> None:
    scripted = Scripted(
        200, "application/x-www-form-urlencoded", b"access_token=t2&token_type=bearer"
    )
    token = refresh_with(mm_fake, provider, scripted, client_auth="post")
    assert token is not None
    # No new refresh token and no expiry in the answer: the old refresh token is kept.
    assert (token.access_token, token.refresh_token, token.expires_at) == ("t2", "r", None)
    assert token.authorization == "Bearer t2"
    [(_, form, headers)] = scripted.sent
    assert form["client_secret"] == provider.client_secret
    assert "Authorization" not in headers


@pytest.mark.parametrize(
    ("status", "ctype", "body", "message"),
    [
        (200, "application/json", b"[1]", "not a JSON object"),
        (200, "text/html", b"<html>", "not a JSON object"),
        (200, "application/json", b'{"token_type":"bearer"}', "no access_token"),
        (200, "application/json", b'{"access_token":"t","expires_in":"soon"}', "not a number"),
        (500, "text/html", b"<h1>down</h1>", r"HTTP 500\): <h1>down</h1>"),
        (400, "application/json", b'{"error":"invalid_request"}', "invalid_request"),
    ],
)
def test_bad_token_responses_are_clear_errors(
    mm_fake: FakeMattermost,
    provider: FakeOAuth2Provider,
    status: int,
    ctype: str,
    body: bytes,
    message: str,
) -> None:
    with pytest.raises(OAuth2Error, match=message):
        refresh_with(mm_fake, provider, Scripted(status, ctype, body))
    # The stored token is kept: only invalid_grant means the grant is gone.
    assert sync_connector(mm_fake, provider).is_connected(ALICE)


def test_over_http_with_the_default_transport(mm_fake: FakeMattermost) -> None:
    provider = FakeOAuth2Provider(now=fake_now(mm_fake))
    with provider.serve() as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        connector = OAuth2Connector(
            mm_fake.api,
            provider.config(),
            encryption_secret=SECRET,
            plugin_id=PLUGIN_ID,
            now=fake_now(mm_fake),
        )
        assert isinstance(connector.transport, UrllibTransport)
        fake = HTTPResponseWriter()
        connector.handle_http(fake, HTTPRequest("GET", "/oauth2/connect", user_id=ALICE))
        location = fake.headers["Location"][0]
        callback = provider.authorize(location)
        page = HTTPResponseWriter()
        path = urllib.parse.urlsplit(callback)
        request = HTTPRequest(
            "GET",
            path.path[len(PREFIX) :] + "?" + path.query,
            user_id=ALICE,
        )
        assert connector.handle_http(page, request)
        assert page.status_code == 200, page.get_body()
        mm_fake.clock.advance(provider.token_lifetime)
        me = connector.fetch(ALICE, provider.userinfo_url)
        assert json.loads(me.body) == {"login": "alice", "scope": "read"}
        assert provider.token_requests[-1]["grant_type"] == "refresh_token"
    with pytest.raises(OAuth2Error, match="cannot reach"):
        connector.fetch(ALICE, provider.userinfo_url + "x")  # the server is gone


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None  # the test reads the 302 itself


def test_the_provider_from_the_command_line() -> None:
    # As the conformance harness runs it: one JSON line, then serving until stdin closes.
    command = [
        sys.executable,
        "-m",
        "mattermost_plugin.testing.oauth",
        "--client-id",
        "cli-client",
        "--token-lifetime",
        "5",
    ]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["client_id"] == "cli-client"
        assert ready["authorize_url"] == ready["base_url"] + "/oauth/authorize"
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": "cli-client",
                "redirect_uri": "http://chat.test/plugins/p/oauth2/complete",
                "state": "s",
                "login_hint": "carol",
            }
        )
        opener = urllib.request.build_opener(_NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as redirect:
            opener.open(ready["authorize_url"] + "?" + query, timeout=10)
        assert redirect.value.code == 302
        location = redirect.value.headers["Location"]
        back = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
        assert location.startswith("http://chat.test/plugins/p/oauth2/complete?")
        assert back["state"] == "s" and back["code"]
        form = {"grant_type": "authorization_code", "code": back["code"]}
        form["redirect_uri"] = "http://chat.test/plugins/p/oauth2/complete"
        form |= {"client_id": "cli-client", "client_secret": ready["client_secret"]}
        answer = UrllibTransport().post_form(ready["token_url"], form, {}, 10)
        assert (answer.status, json.loads(answer.body)["expires_in"]) == (200, 5)
        with urllib.request.urlopen(ready["base_url"] + "/_test/token_requests", timeout=10) as r:
            assert json.load(r) == {"grant_types": ["authorization_code"]}
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0


@pytest.mark.parametrize("use_async", [False, True])
async def test_losing_a_refresh_race_takes_the_winners_token(
    mm_fake: FakeMattermost,
    provider: FakeOAuth2Provider,
    monkeypatch: pytest.MonkeyPatch,
    use_async: bool,
) -> None:
    # Two handlers refresh at once; the provider rotates refresh tokens, so the second one's
    # refresh token is refused (invalid_grant) after the first stored its new token.
    connector = sync_connector(mm_fake, provider)
    now = mm_fake.clock.now_millis() / 1000
    connector.store_token(ALICE, OAuth2Token(access_token="old", refresh_token="r", expires_at=now))
    winner = OAuth2Token(access_token="winner", refresh_token="r2", expires_at=now + 3600)

    def refused_after_the_winner_stored(*args: Any) -> TransportResponse:
        connector.store_token(ALICE, winner)
        body = {"error": "invalid_grant", "error_description": "refresh token rotated"}
        return TransportResponse(400, "application/json", json.dumps(body).encode())

    monkeypatch.setattr(provider, "post_form", refused_after_the_winner_stored)
    if use_async:
        loser = AsyncOAuth2Connector(
            mm_fake.aapi,
            provider.config(),
            encryption_secret=SECRET,
            plugin_id=PLUGIN_ID,
            transport=provider,
            now=fake_now(mm_fake),
        )
        assert await loser.get_token(ALICE) == winner
    else:
        assert connector.get_token(ALICE) == winner
    assert connector.is_connected(ALICE)


def test_without_cryptography_the_error_says_what_to_install(
    mm_fake: FakeMattermost, provider: FakeOAuth2Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the module's import of cryptography left when the package is absent.
    absent = ModuleNotFoundError("No module named 'cryptography'")
    monkeypatch.setattr(mattermost_plugin.oauth, "_CRYPTO", absent)
    with pytest.raises(ImportError, match=r"pip install 'mmplug\[oauth\]'"):
        sync_connector(mm_fake, provider)
