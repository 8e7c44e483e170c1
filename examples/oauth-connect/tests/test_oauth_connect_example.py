"""examples/oauth-connect against the test kit, with the test kit's OAuth2 provider served on
localhost (the plugin reaches it over HTTP, as it would a real provider; no outside network).

The fake server's clock drives the provider, the plugin's token expiry and the KV expiry of
the state, so refresh and state expiry are tested without waiting.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Iterator

import pytest
from mattermost_plugin import CommandArgs, HookName
from mattermost_plugin.oauth import STATE_TTL_SECONDS
from mattermost_plugin.testing import FakeMattermost, PluginHandle, StartPlugin
from mattermost_plugin.testing.oauth import FakeOAuth2Provider
from oauth_connect_plugin import OAuthConnect

PLUGIN_ID = "com.mmplug.oauth-connect"  # plugin.json
PREFIX = f"/plugins/{PLUGIN_ID}"
ALICE = "aliceaaaaaaaaaaaaaaaaaaaaa"
BOB = "bobbbbbbbbbbbbbbbbbbbbbbbb"
KEY = "Zk3u0rPq1xS8mW2aT9vB4nC7eL5yH6dJ"  # what a "generated" setting holds


@pytest.fixture
def provider(mm_fake: FakeMattermost) -> Iterator[FakeOAuth2Provider]:
    provider = FakeOAuth2Provider(now=lambda: mm_fake.clock.now_millis() / 1000)
    with provider.serve():
        yield provider


def settings_for(provider: FakeOAuth2Provider) -> dict[str, str]:
    return {
        "ClientID": provider.client_id,
        "ClientSecret": provider.client_secret,
        "AuthorizeURL": provider.authorize_url,
        "TokenURL": provider.token_url,
        "RevokeURL": provider.revoke_url,
        "UserInfoURL": provider.userinfo_url,
        "EncryptionKey": KEY,
    }


@pytest.fixture
def plugin(
    mm_fake: FakeMattermost, mm_plugin: StartPlugin, provider: FakeOAuth2Provider
) -> PluginHandle:
    class OnTheFakeClock(OAuthConnect):
        clock = staticmethod(lambda: mm_fake.clock.now_millis() / 1000)

    return mm_plugin(OnTheFakeClock, plugin_id=PLUGIN_ID, settings=settings_for(provider))


def run(plugin: PluginHandle, line: str, user_id: str = ALICE) -> str:
    answer = plugin.fire(HookName.ExecuteCommand, CommandArgs(command=line, user_id=user_id))
    assert answer.response_type == "ephemeral"
    text: str = answer.text
    return text


def connect_link(plugin: PluginHandle, user_id: str = ALICE) -> str:
    text = run(plugin, "/oauth-demo connect", user_id)
    match = re.fullmatch(r"\[Connect your account\]\((\S+)\) \(the link is yours only\)", text)
    assert match, text
    return match.group(1)


def below_plugin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    assert parts.path.startswith(PREFIX), url
    return parts.path[len(PREFIX) :] + ("?" + parts.query if parts.query else "")


def callback_for(plugin: PluginHandle, provider: FakeOAuth2Provider, user_id: str = ALICE) -> str:
    """Follow the link as ``user_id``'s browser: the plugin, then the provider."""
    link = connect_link(plugin, user_id)
    assert link == f"http://localhost:8065{PREFIX}/oauth2/connect"
    redirect = plugin.http("GET", below_plugin(link), user_id=user_id)
    assert redirect.status == 302, redirect.text
    return provider.authorize(redirect.headers["Location"][0], login=f"{user_id[:5]}-at-provider")


def connect(plugin: PluginHandle, provider: FakeOAuth2Provider, user_id: str = ALICE) -> None:
    page = plugin.http(
        "GET", below_plugin(callback_for(plugin, provider, user_id)), user_id=user_id
    )
    assert page.status == 200, page.text
    assert "Successfully connected" in page.text


def test_connect_status_and_disconnect(
    plugin: PluginHandle, provider: FakeOAuth2Provider, caplog: pytest.LogCaptureFixture
) -> None:
    assert run(plugin, "/oauth-demo status") == "You are not connected. Run `/oauth-demo connect`."
    with caplog.at_level(logging.INFO):
        connect(plugin, provider)
    assert any("connected their account" in m for m in caplog.messages)
    assert run(plugin, "/oauth-demo status") == "Connected as **alice-at-provider**."
    assert run(plugin, "/oauth-demo connect").startswith("You are already connected.")
    # Each user has their own connection.
    assert run(plugin, "/oauth-demo status", BOB).startswith("You are not connected.")
    assert run(plugin, "/oauth-demo disconnect") == "Disconnected."
    assert provider.live_grants() == []  # revoked at the provider
    assert run(plugin, "/oauth-demo status").startswith("You are not connected.")
    assert run(plugin, "/oauth-demo disconnect") == "You were not connected."


def test_an_expired_token_is_refreshed(
    plugin: PluginHandle, provider: FakeOAuth2Provider, mm_fake: FakeMattermost
) -> None:
    connect(plugin, provider)
    [grant] = provider.live_grants()
    first_access = grant.access_token
    mm_fake.clock.advance(provider.token_lifetime + 1)
    assert run(plugin, "/oauth-demo status") == "Connected as **alice-at-provider**."
    assert [r["grant_type"] for r in provider.token_requests] == [
        "authorization_code",
        "refresh_token",
    ]
    assert grant.access_token != first_access
    # The refreshed token was stored: the next call uses it without another refresh.
    assert run(plugin, "/oauth-demo status") == "Connected as **alice-at-provider**."
    assert len(provider.token_requests) == 2


def test_a_revoked_grant_asks_to_connect_again(
    plugin: PluginHandle, provider: FakeOAuth2Provider, mm_fake: FakeMattermost
) -> None:
    connect(plugin, provider)
    provider.revoke_all("alice-at-provider")
    mm_fake.clock.advance(provider.token_lifetime + 1)
    assert run(plugin, "/oauth-demo status").startswith("You are not connected.")


def test_replayed_and_forged_states_are_refused(
    plugin: PluginHandle, provider: FakeOAuth2Provider, mm_fake: FakeMattermost
) -> None:
    callback = below_plugin(callback_for(plugin, provider))
    # Forged: a state in the helper's format naming Alice, with the code the provider issued.
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))
    query["state"] = "ybndrfg8ejkmcpq_" + ALICE
    forged = plugin.http("GET", "/oauth2/complete?" + urllib.parse.urlencode(query), user_id=ALICE)
    assert forged.status == 401
    # Bob cannot complete Alice's connection with her callback.
    assert plugin.http("GET", callback, user_id=BOB).status == 401
    # Neither attempt burnt Alice's state: her own callback works, once.
    assert plugin.http("GET", callback, user_id=ALICE).status == 200
    replayed = plugin.http("GET", callback, user_id=ALICE)
    assert replayed.status == 401
    assert [r["grant_type"] for r in provider.token_requests] == ["authorization_code"]
    assert run(plugin, "/oauth-demo status", BOB).startswith("You are not connected.")


def test_a_stale_link_is_refused(
    plugin: PluginHandle, provider: FakeOAuth2Provider, mm_fake: FakeMattermost
) -> None:
    callback = below_plugin(callback_for(plugin, provider))
    mm_fake.clock.advance(STATE_TTL_SECONDS + 1)
    answer = plugin.http("GET", callback, user_id=ALICE)
    assert answer.status == 401
    assert "Start the connection again" in answer.text


def test_a_regenerated_key_makes_users_reconnect(
    plugin: PluginHandle, provider: FakeOAuth2Provider
) -> None:
    connect(plugin, provider)
    plugin.configure({**settings_for(provider), "EncryptionKey": KEY[::-1]})
    assert "cannot be read" in run(plugin, "/oauth-demo status")
    assert run(plugin, "/oauth-demo disconnect") == "Disconnected."
    connect(plugin, provider)
    assert run(plugin, "/oauth-demo status") == "Connected as **alice-at-provider**."


def test_unconfigured_plugin_says_what_is_missing(mm_plugin: StartPlugin) -> None:
    plugin = mm_plugin(OAuthConnect, plugin_id=PLUGIN_ID)
    answer = run(plugin, "/oauth-demo connect")
    assert answer.startswith("OAuth connect is not configured (")
    assert "client_id is empty" in answer
    assert "Ask a system admin." in answer
    # The flow's routes do not exist until it is configured.
    assert plugin.http("GET", "/oauth2/connect", user_id=ALICE).status == 404


def test_a_short_encryption_key_is_refused(
    mm_plugin: StartPlugin, provider: FakeOAuth2Provider
) -> None:
    settings = {**settings_for(provider), "EncryptionKey": "short"}
    plugin = mm_plugin(OAuthConnect, plugin_id=PLUGIN_ID, settings=settings)
    assert "at least 16 characters" in run(plugin, "/oauth-demo connect")


def test_the_provider_down_is_reported(
    plugin: PluginHandle, provider: FakeOAuth2Provider, mm_fake: FakeMattermost
) -> None:
    connect(plugin, provider)
    plugin.configure({**settings_for(provider), "UserInfoURL": provider.base_url + "/nothing"})
    assert (
        run(plugin, "/oauth-demo status") == "The provider answered 404 to the user info request."
    )
    settings = {**settings_for(provider), "TokenURL": "http://127.0.0.1:9/oauth/token"}
    plugin.configure(settings)
    mm_fake.clock.advance(provider.token_lifetime + 1)  # needs a refresh, from a dead port
    assert run(plugin, "/oauth-demo status").startswith(
        "The provider could not be asked: cannot reach the OAuth2 provider"
    )


def test_help_lists_the_subcommands(plugin: PluginHandle) -> None:
    text = run(plugin, "/oauth-demo")
    for sub in ("connect", "status", "disconnect"):
        assert f"/oauth-demo {sub}" in text
