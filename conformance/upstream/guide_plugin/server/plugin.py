"""A plugin written from Mattermost's Python Plugin Development Guide and its SDK docstrings.

Only that SDK's documented surface: the guide's hooks and return values, its error classes,
its ServeHTTP dict answers, the KV and logging calls of its client, its runtime config.
"""

import json

from mattermost_plugin import (
    AsyncPluginAPIClient,
    HookName,
    NotFoundError,
    PermissionDeniedError,
    Plugin,
    PluginAPIClient,
    PluginAPIError,
    ValidationError,
    hook,
    load_runtime_config,
)

BLOCKED_USERS = {"blocked"}


class GuidePlugin(Plugin):
    @hook(HookName.OnActivate)
    def on_activate(self) -> None:
        if self.api.kv_get("fail_activation"):
            return "activation refused: fail_activation is set"
        self.logger.info("My plugin activated!")
        try:
            self.api.get_user("no-such-user-id-000000000")
        except NotFoundError as e:
            self.api.log_info(
                "lookup failed as expected", error_id=e.error_id, status=str(e.status_code)
            )
        except PermissionDeniedError:
            self.logger.error("Permission denied")
        except PluginAPIError as e:
            self.logger.error(f"API error: {e.error_id} - {e.message}")
        config = load_runtime_config()
        self.api.kv_set("runtime_plugin_id", config.plugin_id.encode())
        with PluginAPIClient() as client:
            self.api.kv_set("version_seen", client.get_server_version().encode())
        self.api.kv_set("activated", b"yes")
        return ""

    @hook(HookName.OnDeactivate)
    def on_deactivate(self) -> None:
        self.logger.info("My plugin deactivated!")

    @hook("UserWillLogIn")
    def on_user_login(self, context, user):
        if user.username in BLOCKED_USERS:
            return "Login blocked by plugin"
        return ""

    @hook
    def MessagesWillBeConsumed(self, posts):
        for post in posts:
            if post.message == "redact me":
                post.message = "[redacted]"
                return posts
        return None

    @hook(HookName.MessageHasBeenPosted)
    async def on_posted(self, context, post):
        async with AsyncPluginAPIClient() as client:
            await client.kv_set("last_posted", post.message.encode())

    @hook(HookName.RunDataRetention)
    def run_data_retention(self, now_time, batch_size):
        if batch_size == 0:
            return 0, "retention is switched off"
        keys = self.api.kv_list()
        return len(keys), None

    @hook(HookName.ConfigurationWillBeSaved)
    def configuration_will_be_saved(self, new_config):
        return None, "configuration changes are frozen by a plugin"

    @hook(HookName.OnSharedChannelsPing)
    def on_ping(self, remote_cluster):
        self.api.kv_set("pinged", b"yes")

    @hook(HookName.GenerateSupportData)
    def generate_support_data(self, context):
        from mattermost_plugin import FileData

        return [FileData(filename="guide.txt", body=b"support data")], None

    @hook(HookName.ExecuteCommand)
    def execute_command(self, context, args):
        if args.command.strip() == "/guide invalid":
            raise ValidationError("that is not a valid request", error_id="guide.invalid")
        self.api.log_info("command ran", command=args.command)
        return {"response_type": "ephemeral", "text": "Hello from Python!"}

    @hook(HookName.ServeHTTP)
    def serve_http(self, context, request):
        if request.path == "/api/hello":
            return {
                "status_code": 200,
                "headers": {"Content-Type": "application/json"},
                "body": '{"message": "Hello from Python!"}',
            }
        if request.path == "/api/data":
            data = json.loads(request.body or b"{}")
            return {
                "status_code": 200,
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"received": data, "method": request.method}),
            }
        return {"status_code": 404, "body": "Not found"}


if __name__ == "__main__":
    from mattermost_plugin.server import run_plugin

    run_plugin(GuidePlugin)
