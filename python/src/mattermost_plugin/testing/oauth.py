"""A small OAuth2 authorization server for tests: in memory, or on localhost over HTTP.

``FakeOAuth2Provider`` is the provider side of ``mattermost_plugin.oauth``'s flow:

* passed as the connector's ``transport``, it answers the token, revocation and API calls
  with no network;
* ``provider.authorize(url)`` plays the user's browser at the authorize URL the plugin
  redirected to (the user approves, or refuses with ``approve=False``) and returns where the
  provider sends the browser back: the plugin's callback with ``code`` and ``state``;
* ``provider.serve()`` puts the same provider on ``http://127.0.0.1:<port>`` (a thread), for
  plugins running in another process; ``python -m mattermost_plugin.testing.oauth`` does it
  from the command line (for the conformance harness and the real server): it prints one
  line of JSON with the base URL and endpoints, then serves until stopped.

It keeps the rules a real provider enforces and the flow relies on: codes are single-use,
expire, and are bound to the client and the ``redirect_uri`` they were issued for; the client
authenticates (HTTP Basic or form fields); access tokens expire after ``token_lifetime``
seconds on the ``now`` clock; refresh tokens rotate (the old one dies); revocation ends the
grant. Every token-endpoint request is recorded in ``token_requests``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import json
import secrets
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from ..oauth import OAuth2Config, TransportResponse

__all__ = ["FakeOAuth2Provider", "ProviderGrant"]

_JSON = "application/json"


@dataclasses.dataclass
class ProviderGrant:
    """What the provider remembers of one user's consent."""

    login: str
    scope: str
    access_token: str = ""
    access_expires_at: float = 0.0
    refresh_token: str = ""
    revoked: bool = False


@dataclasses.dataclass
class _Code:
    login: str
    client_id: str
    redirect_uri: str
    scope: str
    expires_at: float


class FakeOAuth2Provider:
    """An OAuth2 provider (authorization code grant with refresh) held in memory."""

    def __init__(
        self,
        *,
        client_id: str = "mmplug-test-client",
        client_secret: str = "mmplug-test-secret",
        base_url: str = "https://provider.test",
        token_lifetime: float = 3600,
        code_lifetime: float = 600,
        rotate_refresh_tokens: bool = True,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.base_url = base_url.rstrip("/")
        self.token_lifetime = token_lifetime
        self.code_lifetime = code_lifetime
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.now = now
        self.token_requests: list[dict[str, str]] = []
        self.grants: list[ProviderGrant] = []
        self._codes: dict[str, _Code] = {}
        self._lock = threading.Lock()

    # --- endpoints --------------------------------------------------------------------------

    @property
    def authorize_url(self) -> str:
        return self.base_url + "/oauth/authorize"

    @property
    def token_url(self) -> str:
        return self.base_url + "/oauth/token"

    @property
    def revoke_url(self) -> str:
        return self.base_url + "/oauth/revoke"

    @property
    def userinfo_url(self) -> str:
        """An API endpoint: the logged-in user's ``{"login": ..., "scope": ...}``."""
        return self.base_url + "/api/me"

    def config(self, *, scopes: Iterable[str] = ("read",), revoke: bool = True) -> OAuth2Config:
        """The ``OAuth2Config`` of a client registered at this provider."""
        return OAuth2Config(
            client_id=self.client_id,
            client_secret=self.client_secret,
            authorize_url=self.authorize_url,
            token_url=self.token_url,
            revoke_url=self.revoke_url if revoke else "",
            scopes=tuple(scopes),
        )

    # --- the browser's visit ----------------------------------------------------------------

    def authorize(self, url: str, *, login: str = "alice", approve: bool = True) -> str:
        """Visit ``url`` (the plugin's redirect target) as ``login``; return the callback URL.

        ``ValueError`` for what a real provider would show an error page for instead of
        redirecting: a foreign client id or a missing redirect URI.
        """
        parts = urllib.parse.urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}{parts.path}" != self.authorize_url:
            raise ValueError(f"{url!r} is not this provider's authorize URL")
        query = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
        if query.get("client_id") != self.client_id:
            raise ValueError(f"unknown client_id {query.get('client_id')!r}")
        redirect_uri = query.get("redirect_uri", "")
        if not redirect_uri:
            raise ValueError("the authorize request has no redirect_uri")
        answer: dict[str, str] = {}
        if query.get("state"):
            answer["state"] = query["state"]
        if query.get("response_type") != "code":
            answer["error"] = "unsupported_response_type"
        elif not approve:
            answer["error"] = "access_denied"
            answer["error_description"] = "The user denied access"
        else:
            code = secrets.token_urlsafe(16)
            with self._lock:
                self._codes[code] = _Code(
                    login=login,
                    client_id=self.client_id,
                    redirect_uri=redirect_uri,
                    scope=query.get("scope", ""),
                    expires_at=self.now() + self.code_lifetime,
                )
            answer["code"] = code
        joiner = "&" if urllib.parse.urlsplit(redirect_uri).query else "?"
        return redirect_uri + joiner + urllib.parse.urlencode(answer)

    # --- the transport the connector calls ------------------------------------------------

    def post_form(
        self, url: str, form: Mapping[str, str], headers: Mapping[str, str], timeout: float
    ) -> TransportResponse:
        if url == self.token_url:
            return self._token(dict(form), _lower(headers))
        if url == self.revoke_url:
            return self._revoke(dict(form), _lower(headers))
        return _json(404, {"error": "not_found"})

    def get(self, url: str, headers: Mapping[str, str], timeout: float) -> TransportResponse:
        if url.split("?", 1)[0] != self.userinfo_url:
            return _json(404, {"error": "not_found"})
        grant = self.grant_for_access(_lower(headers).get("authorization", ""))
        if grant is None:
            return _json(401, {"error": "invalid_token"})
        return _json(200, {"login": grant.login, "scope": grant.scope})

    # --- what tests look at or change -------------------------------------------------------

    def grant_for_access(self, authorization: str) -> ProviderGrant | None:
        """The live grant whose access token is in ``authorization`` ("Bearer ...")."""
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value:
            return None
        with self._lock:
            for grant in self.grants:
                if grant.access_token == value and not grant.revoked:
                    return grant if grant.access_expires_at > self.now() else None
        return None

    def live_grants(self, login: str | None = None) -> list[ProviderGrant]:
        with self._lock:
            return [g for g in self.grants if not g.revoked and (login is None or g.login == login)]

    def revoke_all(self, login: str) -> None:
        """End every grant of ``login`` (as a user does in the provider's settings)."""
        with self._lock:
            for grant in self.grants:
                if grant.login == login:
                    grant.revoked = True

    # --- the token endpoint -----------------------------------------------------------------

    def _client_ok(self, form: dict[str, str], headers: dict[str, str]) -> bool:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                pair = base64.b64decode(auth[6:], validate=True).decode()
            except ValueError:
                return False
            user, _, password = pair.partition(":")
            client_id, secret = urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password)
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        return secrets.compare_digest(
            f"{client_id}\0{secret}".encode(), f"{self.client_id}\0{self.client_secret}".encode()
        )

    def _issue(self, grant: ProviderGrant, *, new_refresh: bool) -> TransportResponse:
        grant.access_token = secrets.token_urlsafe(24)
        grant.access_expires_at = self.now() + self.token_lifetime
        if new_refresh:
            grant.refresh_token = secrets.token_urlsafe(24)
        return _json(
            200,
            {
                "access_token": grant.access_token,
                "token_type": "bearer",
                "expires_in": int(self.token_lifetime),
                "refresh_token": grant.refresh_token,
                "scope": grant.scope,
            },
        )

    def _token(self, form: dict[str, str], headers: dict[str, str]) -> TransportResponse:
        self.token_requests.append(dict(form))
        if not self._client_ok(form, headers):
            return _json(401, {"error": "invalid_client"})
        kind = form.get("grant_type")
        with self._lock:
            if kind == "authorization_code":
                code = self._codes.pop(form.get("code", ""), None)
                if code is None or code.expires_at <= self.now():
                    return _error("invalid_grant", "unknown, used or expired code")
                if form.get("redirect_uri") != code.redirect_uri:
                    return _error("invalid_grant", "redirect_uri differs from the authorize one")
                grant = ProviderGrant(login=code.login, scope=code.scope)
                self.grants.append(grant)
                return self._issue(grant, new_refresh=True)
            if kind == "refresh_token":
                refresh = form.get("refresh_token", "")
                for grant in self.grants:
                    if refresh and grant.refresh_token == refresh and not grant.revoked:
                        return self._issue(grant, new_refresh=self.rotate_refresh_tokens)
                return _error("invalid_grant", "unknown or revoked refresh token")
        return _error("unsupported_grant_type", f"grant_type {kind!r}")

    def _revoke(self, form: dict[str, str], headers: dict[str, str]) -> TransportResponse:
        if not self._client_ok(form, headers):
            return _json(401, {"error": "invalid_client"})
        value = form.get("token", "")
        with self._lock:
            for grant in self.grants:
                if value and value in (grant.access_token, grant.refresh_token):
                    grant.revoked = True
        # RFC 7009 §2.2: 200 whether or not the token was known.
        return TransportResponse(200, _JSON, b"{}")

    # --- over HTTP --------------------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        """The provider as a WSGI app. ``GET /oauth/authorize`` approves at once, as the user
        named by the ``login_hint`` parameter (default ``alice``), and redirects back;
        ``GET /_test/token_requests`` lists the grant types the token endpoint was sent."""
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        headers = {
            k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")
        }
        url = self.base_url + path
        if method == "GET" and url == self.authorize_url:
            login = urllib.parse.parse_qs(query).get("login_hint", ["alice"])[0]
            try:
                location = self.authorize(f"{url}?{query}", login=login)
            except ValueError as e:
                start_response("400 Bad Request", [("Content-Type", "text/plain")])
                return [str(e).encode()]
            start_response("302 Found", [("Location", location)])
            return [b""]
        if method == "GET" and path == "/_test/token_requests":
            # For a test driving the provider from another process (the conformance harness):
            # which grants the token endpoint has seen, in order.
            kinds = [request.get("grant_type", "") for request in self.token_requests]
            answer = _json(200, {"grant_types": kinds})
        elif method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length).decode()
            form = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
            answer = self.post_form(url, form, headers, 0)
        elif method == "GET":
            answer = self.get(f"{url}?{query}" if query else url, headers, 0)
        else:
            answer = _json(405, {"error": "method_not_allowed"})
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}
        status = f"{answer.status} {reason.get(answer.status, 'Error')}"
        start_response(status, [("Content-Type", answer.content_type)])
        return [answer.body]

    @contextlib.contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve the provider over HTTP in a thread; yields its base URL (``base_url`` is
        set to it meanwhile, so ``config()`` and the endpoint URLs point there)."""
        server = make_server(host, port, self.wsgi, WSGIServer, _QuietHandler)
        old = self.base_url
        self.base_url = f"http://{host}:{server.server_port}"
        thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="fake-oauth2", daemon=True
        )
        thread.start()
        try:
            yield self.base_url
        finally:
            server.shutdown()
            server.server_close()
            thread.join()
            self.base_url = old


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read the recorded requests, not stderr


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _json(status: int, body: dict[str, Any]) -> TransportResponse:
    return TransportResponse(status, _JSON, json.dumps(body).encode())


def _error(error: str, description: str) -> TransportResponse:
    return _json(400, {"error": error, "error_description": description})


def main(argv: list[str] | None = None) -> None:
    """Serve a ``FakeOAuth2Provider`` on localhost until interrupted or stdin closes."""
    parser = argparse.ArgumentParser(
        prog="python -m mattermost_plugin.testing.oauth",
        description="A local OAuth2 provider for testing plugins (never for real accounts).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--client-id", default="mmplug-test-client")
    parser.add_argument("--client-secret", default="mmplug-test-secret")
    parser.add_argument("--token-lifetime", type=float, default=3600, help="seconds")
    args = parser.parse_args(argv)
    provider = FakeOAuth2Provider(
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_lifetime=args.token_lifetime,
    )
    with provider.serve(args.host, args.port) as base_url:
        ready = {
            "base_url": base_url,
            "authorize_url": provider.authorize_url,
            "token_url": provider.token_url,
            "revoke_url": provider.revoke_url,
            "userinfo_url": provider.userinfo_url,
            "client_id": provider.client_id,
            "client_secret": provider.client_secret,
        }
        print(json.dumps(ready), flush=True)
        # The parent ends it by closing our stdin (or a signal): no orphan outlives its test.
        with contextlib.suppress(KeyboardInterrupt):
            sys.stdin.read()


if __name__ == "__main__":
    main()
