"""OAuth connect: users link their account at an OAuth2 provider, and the plugin acts as them.

``/oauth-demo connect`` answers with a link; the user follows it, grants access at the
provider, and comes back connected. ``/oauth-demo status`` calls the provider's API with the
user's token (refreshed when it expired); ``/oauth-demo disconnect`` revokes and forgets it.
The flow, its checks and the encrypted token storage are ``mattermost_plugin.oauth``'s;
README.md describes the behaviour in full.

Everything here is ``async def``: the calls to the provider run in worker threads and the
event loop keeps serving other hooks meanwhile.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mattermost_plugin import (
    CommandCall,
    HookName,
    HTTPRequest,
    HTTPResponseWriter,
    Plugin,
    Settings,
    command,
    hook,
    run_plugin,
)
from mattermost_plugin.oauth import (
    AsyncOAuth2Connector,
    OAuth2Config,
    OAuth2ConfigError,
    OAuth2Error,
    OAuth2NotConnectedError,
    OAuth2Token,
    OAuth2TokenUnreadableError,
)

TRIGGER = "oauth-demo"


@dataclass(frozen=True)
class ConnectSettings:
    client_id: str = field(default="", metadata={"key": "ClientID"})
    client_secret: str = ""
    authorize_url: str = field(default="", metadata={"key": "AuthorizeURL"})
    token_url: str = field(default="", metadata={"key": "TokenURL"})
    revoke_url: str = field(default="", metadata={"key": "RevokeURL"})
    user_info_url: str = field(default="", metadata={"key": "UserInfoURL"})
    encryption_key: str = ""


class OAuthConnect(Plugin):
    settings = Settings(ConnectSettings)
    # The clock token expiry is judged by (Unix seconds); tests move it instead of waiting.
    clock: Callable[[], float] = staticmethod(time.time)

    def __init__(self) -> None:
        super().__init__()
        self.oauth: AsyncOAuth2Connector | None = None
        self.not_configured = "the plugin has not been configured yet"

    @hook(HookName.OnConfigurationChange)
    def configure(self) -> None:
        # The SDK has loaded self.settings already. An incomplete configuration is not an
        # activation error: the plugin runs and tells users what the admin has to set.
        s = self.settings
        try:
            self.oauth = AsyncOAuth2Connector(
                self.aapi,
                OAuth2Config(
                    client_id=s.client_id,
                    client_secret=s.client_secret,
                    authorize_url=s.authorize_url,
                    token_url=s.token_url,
                    revoke_url=s.revoke_url,
                    scopes=("read",),
                ),
                encryption_secret=s.encryption_key,
                plugin_id=self.plugin_id,
                on_connect=self.connected,
                now=self.clock,
            )
        except OAuth2ConfigError as e:
            self.oauth = None
            self.not_configured = str(e)
            self.logger.warning("OAuth connect is not configured: %s", e)

    def connector(self) -> AsyncOAuth2Connector:
        if self.oauth is None:
            raise NotConfiguredError(self.not_configured)
        return self.oauth

    async def connected(self, user_id: str, token: OAuth2Token) -> None:
        self.logger.info("user %s connected their account (scope %r)", user_id, token.scope)

    @command(TRIGGER, help="Connect your account at the OAuth2 provider")
    async def usage(self, call: CommandCall) -> str:
        return call.help

    @command(f"{TRIGGER} connect", help="Get a link that connects your account")
    async def connect(self, call: CommandCall) -> str:
        try:
            oauth = self.connector()
            if await oauth.is_connected(call.user_id):
                return f"You are already connected. `/{TRIGGER} disconnect` first to switch."
            return f"[Connect your account]({await oauth.connect_url()}) (the link is yours only)"
        except NotConfiguredError as e:
            return str(e)

    @command(f"{TRIGGER} status", help="Show the account you connected")
    async def status(self, call: CommandCall) -> str:
        try:
            response = await self.connector().fetch(call.user_id, self.settings.user_info_url)
        except NotConfiguredError as e:
            return str(e)
        except OAuth2NotConnectedError:
            return f"You are not connected. Run `/{TRIGGER} connect`."
        except OAuth2TokenUnreadableError:
            return (
                "Your stored token cannot be read (the encryption key was changed). "
                f"Run `/{TRIGGER} disconnect`, then `/{TRIGGER} connect`."
            )
        except OAuth2Error as e:
            return f"The provider could not be asked: {e}"
        if response.status != 200:
            return f"The provider answered {response.status} to the user info request."
        try:
            login = json.loads(response.body)["login"]
        except (ValueError, KeyError, TypeError):
            return "The provider's user info has no login."
        return f"Connected as **{login}**."

    @command(f"{TRIGGER} disconnect", help="Forget (and revoke) your connection")
    async def disconnect(self, call: CommandCall) -> str:
        try:
            forgotten = await self.connector().disconnect(call.user_id)
        except NotConfiguredError as e:
            return str(e)
        return "Disconnected." if forgotten else "You were not connected."

    @hook(HookName.ServeHTTP)
    async def http(self, context: Any, w: HTTPResponseWriter, r: HTTPRequest) -> None:
        if self.oauth is not None and await self.oauth.handle_http(w, r):
            return
        w.headers["Content-Type"] = ["text/plain"]
        w.write_header(404)
        w.write("not found\n")


class NotConfiguredError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(f"OAuth connect is not configured ({reason}). Ask a system admin.")


if __name__ == "__main__":
    run_plugin(OAuthConnect)
