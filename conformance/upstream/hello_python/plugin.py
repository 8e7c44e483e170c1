"""Hello Python, written against Mattermost's own Python SDK only (its example's shape).

Lifecycle hooks with the API client and logger, a message filter, a slash command answered
with a dict, and an HTTP handler using the response writer's helpers.
"""

import json

from mattermost_plugin import Command, HookName, Plugin, hook


class HelloPythonPlugin(Plugin):
    @hook(HookName.OnActivate)
    def on_activate(self) -> None:
        self.logger.info("Hello Python plugin activated!")
        version = self.api.get_server_version()
        self.logger.info(f"Connected to Mattermost server version: {version}")
        self.api.register_command(
            Command(
                trigger="hello",
                auto_complete=True,
                auto_complete_desc="Say hello from Python",
                display_name="Hello",
            )
        )

    @hook(HookName.OnDeactivate)
    def on_deactivate(self) -> None:
        self.logger.info("Hello Python plugin deactivated!")

    @hook(HookName.MessageWillBePosted)
    def filter_message(self, context, post):
        message_lower = post.message.lower()
        if "badword" in message_lower:
            return None, "Message blocked: contains prohibited content"
        if "spam" in message_lower:
            return "Spam detected"
        if message_lower == "as is":
            return None
        if message_lower.startswith("shout "):
            post.message = post.message[len("shout ") :].upper()
            return post, ""
        return post, ""

    @hook(HookName.ExecuteCommand)
    def execute_command(self, context, args):
        command = args.command if hasattr(args, "command") else "/hello"
        if "world" in command.lower():
            return {"response_type": "ephemeral", "text": "Hello, World! :earth_americas:"}
        if command.startswith("/hello"):
            return {"response_type": "in_channel", "text": "Hello from Python! :wave:"}
        return {"response_type": "ephemeral", "text": f"Unknown command: {command}"}

    @hook(HookName.ServeHTTP)
    async def serve_http(self, context, response_writer, request):
        if request.method == "POST" and request.url.startswith("/echo"):
            payload = {
                "method": request.method,
                "body": request.body.decode("utf-8"),
                "content_type": request.get_header("content-type"),
                "tags": request.get_all_headers("X-Tag"),
                "missing": request.get_header("X-Missing", "none"),
                "user": request.get_header("Mattermost-User-Id"),
            }
            response_writer.set_header("Content-Type", "application/json")
            response_writer.add_header("Set-Cookie", "first=1")
            response_writer.add_header("Set-Cookie", "second=2")
            response_writer.write_header(201)
            response_writer.write(json.dumps(payload))
            return
        if request.url.startswith("/stream"):
            response_writer.set_header("Content-Type", "text/plain")
            for part in ("one\n", "two\n", "three\n"):
                response_writer.write(part)
                response_writer.flush()
            return
        response_writer.write_header(404)
        response_writer.write(b"Not Found")


if __name__ == "__main__":
    from mattermost_plugin.server import run_plugin

    run_plugin(HelloPythonPlugin)
