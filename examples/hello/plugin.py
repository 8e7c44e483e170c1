"""mmplug's hello example: a Mattermost server plugin in Python.

The behaviour is specified in README.md; conformance/hellogo is the same plugin in Go, and the
conformance harness runs the same cases against both.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mattermost_plugin import (
    Command,
    CommandResponse,
    HookName,
    HTTPRequest,
    HTTPResponseWriter,
    Plugin,
    PluginAPIError,
    Post,
    hook,
    run_plugin,
)
from mattermost_plugin.commands import fields as split_fields


class Hello(Plugin):
    def __init__(self) -> None:
        super().__init__()
        self.settings: dict[str, Any] = {}

    @hook(HookName.OnConfigurationChange)
    def on_configuration_change(self) -> None:
        # Also called once before OnActivate, so on_activate sees the settings.
        self.settings = self.api.load_plugin_configuration()

    @hook(HookName.OnActivate)
    def on_activate(self) -> None:
        if self.settings.get("FailActivation") is True:
            # The exception text is what the server reports as the activation error.
            raise RuntimeError("activation refused by configuration")
        self.api.register_command(
            Command(
                trigger="hello",
                auto_complete=True,
                auto_complete_desc="Say hello, fail on purpose, or create a post",
                auto_complete_hint="[fail|post]",
                display_name="Hello",
            )
        )
        self.logger.info("hello activated")

    @hook(HookName.OnDeactivate)
    def on_deactivate(self) -> None:
        self.logger.info("hello deactivated")

    @hook(HookName.MessageWillBePosted)
    def filter(self, context: Any, post: Post) -> tuple[Post | None, str]:
        if "forbidden" in post.message:
            return None, "not allowed here"
        post.props["checked_by"] = "hello"
        return post, ""

    @hook(HookName.ExecuteCommand)
    async def command(self, context: Any, args: Any) -> CommandResponse:
        # Go's strings.Fields, as the Go twin splits: str.split() also splits on \x1c-\x1f.
        fields = split_fields(args.command)
        sub = fields[1] if len(fields) > 1 else ""
        if sub == "":
            version = await self.aapi.get_server_version()
            return ephemeral(f"Hello from {version}")
        if sub == "fail":
            # A PluginAPIError keeps every AppError field on its way to the server.
            raise PluginAPIError(
                "hello failed on purpose",
                id="hello.fail",
                detailed_error="details",
                status_code=418,
                where="Hello.ExecuteCommand",
            )
        if sub == "post":
            created = await self.aapi.create_post(
                Post(channel_id=args.channel_id, user_id=args.user_id, message="posted by /hello")
            )
            return ephemeral(f"Posted {created.id}")
        return ephemeral(f"Unknown subcommand {sub}: try /hello, /hello fail or /hello post")

    @hook(HookName.ServeHTTP)
    def http(self, context: Any, w: HTTPResponseWriter, r: HTTPRequest) -> None:
        if r.path == "/version" and r.method == "GET":
            w.headers["Content-Type"] = ["text/plain"]
            w.write(self.api.get_server_version())
        elif r.path == "/echo" and r.method == "POST":
            self.echo(w, r)
        elif r.path.startswith("/kv/") and r.method in ("GET", "POST"):
            self.kv(w, r, r.path[len("/kv/") :])
        elif r.path == "/post" and r.method == "POST":
            self.post(w, r)
        else:
            text_response(w, 404, "not found")

    def echo(self, w: HTTPResponseWriter, r: HTTPRequest) -> None:
        """Answer the body unchanged, with its checksum and what the plugin saw."""
        content_type = r.headers.get_first("Content-Type") or "application/octet-stream"
        w.headers["Content-Type"] = [content_type]
        w.headers["X-Sha256"] = [hashlib.sha256(r.body).hexdigest()]
        w.headers["X-Request-Headers"] = [json.dumps(r.headers.snapshot(), sort_keys=True)]
        w.headers["X-User-Id"] = [r.user_id]
        w.headers["X-Multi"] = ["a", "b"]
        w.write_header(200)
        w.write(r.body)

    def kv(self, w: HTTPResponseWriter, r: HTTPRequest, key: str) -> None:
        """Store (POST) or read (GET) a key; a server AppError becomes a 502 with its fields."""
        if not key:
            text_response(w, 400, "missing key")
            return
        try:
            if r.method == "POST":
                self.api.kv_set(key, r.body)
                w.write_header(204)
                return
            value = self.api.kv_get(key)
        except PluginAPIError as e:
            app_error_response(w, e)
            return
        if not value:
            # Missing and empty are the same answer (Go's nil and empty []byte look alike here).
            text_response(w, 404, "not found")
            return
        w.headers["Content-Type"] = ["application/octet-stream"]
        w.write(value)

    def post(self, w: HTTPResponseWriter, r: HTTPRequest) -> None:
        """Post the body in ?channel_id= as the caller, then record the post in the KV store."""
        channel_id = r.query.get("channel_id", [""])[0]
        try:
            created = self.api.create_post(
                # Bytes that are not UTF-8 become U+FFFD, as the bridge shows any Go string
                # (docs/internals.md); a Go plugin passes them on and the server refuses them.
                Post(
                    channel_id=channel_id,
                    user_id=r.user_id,
                    message=r.body.decode("utf-8", errors="replace"),
                )
            )
            self.api.kv_set(f"post:{created.id}", r.body)
        except PluginAPIError as e:
            app_error_response(w, e)
            return
        text_response(w, 201, created.id)


def ephemeral(text: str) -> CommandResponse:
    return CommandResponse(response_type="ephemeral", text=text)


def text_response(w: HTTPResponseWriter, status: int, text: str) -> None:
    w.headers["Content-Type"] = ["text/plain"]
    w.write_header(status)
    w.write(text)


def app_error_response(w: HTTPResponseWriter, e: PluginAPIError) -> None:
    body = {
        "id": e.id,
        "message": e.message,
        "detailed_error": e.detailed_error,
        "request_id": e.request_id,
        "status_code": e.status_code,
        "where": e.where,
    }
    w.headers["Content-Type"] = ["application/json"]
    w.write_header(502)
    w.write(json.dumps(body))


if __name__ == "__main__":
    run_plugin(Hello)
