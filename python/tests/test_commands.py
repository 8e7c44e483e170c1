"""@command slash-command routing: registration with autocomplete, routing, help, precedence."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from mattermost_plugin import (
    Command,
    CommandCall,
    CommandError,
    CommandRegistrationError,
    CommandResponse,
    HookName,
    HookRegistrationError,
    Plugin,
    command,
    hook,
)
from mattermost_plugin.testing import FakeMattermost, HookError


class Todo(Plugin):
    def __init__(self) -> None:
        self.threads: list[str] = []

    @command("/todo add", hint="<task>", help="Add a task")
    def add(self, call: CommandCall) -> str:
        self.threads.append(threading.current_thread().name)
        self.kv_store.update(f"todo_{call.user_id}", lambda tasks: [*(tasks or []), call.text])
        return f"Added: {call.text}"

    @command("todo list", help="List your tasks")
    async def list_tasks(self, call: CommandCall) -> CommandResponse:
        tasks = await self.akv_store.get(f"todo_{call.user_id}", [])
        return call.in_channel("\n".join(tasks) or "Nothing to do")

    @command("todo list done")
    def list_done(self, call: CommandCall) -> None:
        """Show finished tasks.

        Longer text that is not part of the help.
        """
        return None

    @command("todo tag", hint='<task> "<tag>"', help="Tag a task")
    def tag(self, call: CommandCall) -> str:
        return " | ".join(call.argv)

    @command("todo fail")
    def fail(self, call: CommandCall) -> str:
        raise CommandError("That task does not exist")

    @command("todo crash")
    def crash(self, call: CommandCall) -> str:
        raise RuntimeError("bug in the handler")

    @command("todo wrong")
    def wrong(self, call: CommandCall) -> Any:
        return 42


def run(handle: Any, line: str, **args: Any) -> CommandResponse:
    response: CommandResponse = handle.fire(
        HookName.ExecuteCommand, {"command": line, "user_id": "u1", **args}
    )
    return response


def test_commands_are_registered_with_autocomplete(mm_plugin: Any) -> None:
    handle = mm_plugin(Todo)
    (cmd,) = handle.fake.commands
    assert (cmd.trigger, cmd.auto_complete, cmd.plugin_id) == ("todo", True, handle.plugin_id)
    assert cmd.auto_complete_desc == "Subcommands: add, list, tag, fail, crash, wrong"
    assert cmd.auto_complete_hint == "[add|list|tag|fail|crash|wrong]"
    data = cmd.autocomplete_data
    assert data.trigger == "todo"
    subs = {s.trigger: s for s in data.sub_commands}
    assert list(subs) == ["add", "list", "tag", "fail", "crash", "wrong", "help"]
    assert (subs["add"].hint, subs["add"].help_text) == ("<task>", "Add a task")
    assert [s.trigger for s in subs["list"].sub_commands] == ["done"]
    assert subs["list"].sub_commands[0].help_text == "Show finished tasks."  # from the docstring
    assert subs["help"].help_text == "Show help for /todo"
    assert not any(s.arguments for s in data.sub_commands)  # hints only (see README)


def test_routing_sync_and_async_handlers(mm_plugin: Any) -> None:
    handle = mm_plugin(Todo)
    reply = run(handle, "/todo add   buy milk ")
    assert (reply.response_type, reply.text) == ("ephemeral", "Added: buy milk")
    assert handle.plugin.threads[0].startswith("mmplug-hook")  # sync handlers run in threads
    run(handle, "/TODO ADD call mom")  # trigger and subcommand words are case-insensitive
    reply = run(handle, "/todo list")
    assert (reply.response_type, reply.text) == ("in_channel", "buy milk\ncall mom")
    assert run(handle, "/todo list done") == CommandResponse()  # None: no reply
    assert run(handle, '/todo tag one "very urgent"').text == "one | very urgent"
    assert run(handle, '/todo tag "unbalanced').text == '"unbalanced'


def test_the_call_describes_the_invocation(mm_plugin: Any) -> None:
    seen: list[CommandCall] = []

    class Echo(Plugin):
        @command("echo say")
        def say(self, call: CommandCall) -> str:
            seen.append(call)
            return call.text

    handle = mm_plugin(Echo)
    run(handle, "/echo say hi there", channel_id="c1", team_id="t1", root_id="r1")
    (call,) = seen
    assert (call.trigger, call.path, call.text) == ("echo", ("say",), "hi there")
    assert (call.user_id, call.channel_id, call.team_id, call.root_id) == ("u1", "c1", "t1", "r1")
    assert call.context is not None and call.context.request_id
    assert call.help.startswith("**/echo say**")
    assert call.reply("x") == CommandResponse(response_type="ephemeral", text="x")


def test_help_and_unknown_subcommands(mm_plugin: Any) -> None:
    handle = mm_plugin(Todo)
    expected = "\n".join(
        [
            "**/todo** — Subcommands: add, list, tag, fail, crash, wrong",
            "",
            "- `/todo add <task>` — Add a task",
            "- `/todo list` — List your tasks",
            "- `/todo list done` — Show finished tasks.",
            '- `/todo tag <task> "<tag>"` — Tag a task',
            "- `/todo fail`",
            "- `/todo crash`",
            "- `/todo wrong`",
            "- `/todo help` — Show this help",
        ]
    )
    for line in ("/todo", "/todo help", "/todo   HELP"):
        reply = run(handle, line)
        assert (reply.response_type, reply.text) == ("ephemeral", expected)
    reply = run(handle, "/todo frobnicate now")
    assert reply.response_type == "ephemeral"
    assert reply.text == "Unknown subcommand `frobnicate` for /todo.\n\n" + expected


def test_errors(mm_plugin: Any) -> None:
    handle = mm_plugin(Todo)
    reply = run(handle, "/todo fail")
    assert (reply.response_type, reply.text) == ("ephemeral", "That task does not exist")
    with pytest.raises(HookError, match="bug in the handler") as e:
        run(handle, "/todo crash")
    assert e.value.app_error.where == "Todo.ExecuteCommand"
    assert "in the command handler Todo.crash of /todo crash" in e.value.app_error.detailed_error
    with pytest.raises(HookError, match=r"Todo.wrong must return a CommandResponse, a str or None"):
        run(handle, "/todo wrong")


class Mixed(Plugin):
    """Declared commands plus a hand-written ExecuteCommand for a dynamic trigger."""

    @command("weather", hint="<city>", help="Current weather", display_name="Weather")
    def weather(self, call: CommandCall) -> str:
        if call.text in ("", "help"):
            return call.help
        return f"Sunny in {call.text}"

    @command("weather week")
    async def week(self, call: CommandCall) -> str:
        return "Rain all week"

    @hook(HookName.OnActivate)
    def on_activate(self) -> None:
        self.api.register_command(Command(trigger="dynamic"))

    @hook(HookName.ExecuteCommand)
    def execute(self, context: Any, args: Any) -> CommandResponse:
        return CommandResponse(text=f"by hand: {args.command}")


def test_root_handler_and_precedence(mm_plugin: Any) -> None:
    handle = mm_plugin(Mixed)
    triggers = sorted(c.trigger for c in handle.fake.commands)
    assert triggers == ["dynamic", "weather"]  # declared ones registered before on_activate ran
    weather = next(c for c in handle.fake.commands if c.trigger == "weather")
    assert (weather.display_name, weather.description) == ("Weather", "Current weather")
    assert weather.autocomplete_data.hint == "<city>"
    assert [s.trigger for s in weather.autocomplete_data.sub_commands] == ["week"]  # no help
    # The root handler gets the words no subcommand matched.
    assert run(handle, "/weather Lisbon").text == "Sunny in Lisbon"
    assert run(handle, "/weather week").text == "Rain all week"
    assert run(handle, "/weather").text == "\n".join(
        [
            "**/weather** — Current weather",
            "",
            "- `/weather week`",
        ]
    )
    # Triggers nobody declared reach the plugin's own ExecuteCommand handler.
    assert run(handle, "/dynamic x").text == "by hand: /dynamic x"


def test_undeclared_trigger_without_own_handler(mm_plugin: Any) -> None:
    handle = mm_plugin(Todo)
    with pytest.raises(HookError, match="/other reached Todo, which declares no handler"):
        run(handle, "/other")


def test_commands_make_the_hooks_implemented() -> None:
    assert Todo.implemented_hooks() == ["OnActivate", "ExecuteCommand"]


def test_registration_failure_fails_activation(mm_fake: FakeMattermost) -> None:
    from mattermost_plugin import PluginAPIError
    from mattermost_plugin.testing import ActivationError

    mm_fake.on("RegisterCommand", PluginAPIError("trigger taken", status_code=400))
    with pytest.raises(ActivationError, match="trigger taken"):
        mm_fake.start(Todo)


def test_inherited_commands_and_overrides(mm_plugin: Any) -> None:
    class Base(Plugin):
        @command("base hello")
        def hello(self, call: CommandCall) -> str:
            return "base"

        @command("base bye")
        def bye(self, call: CommandCall) -> str:
            return "bye"

    class Child(Base):
        @command("base hello")
        def hello(self, call: CommandCall) -> str:
            return "child"

        def bye(self, call: CommandCall) -> str:  # undecorated override: no longer a command
            return "not routed"

    handle = mm_plugin(Child)
    assert run(handle, "/base hello").text == "child"
    assert run(handle, "/base bye").text.startswith("Unknown subcommand `bye`")


async def test_async_firing(mm_plugin: Any) -> None:
    handle = mm_plugin(Todo)
    reply = await handle.afire(HookName.ExecuteCommand, {"command": "/todo add x", "user_id": "u"})
    assert reply.text == "Added: x"


def test_declaration_errors() -> None:
    with pytest.raises(CommandRegistrationError, match="needs a trigger"):
        command(" / ")
    with pytest.raises(CommandRegistrationError, match="'Add' is not a valid command word"):
        command("todo Add")
    with pytest.raises(CommandRegistrationError, match="declared twice"):

        class Twice(Plugin):
            @command("x y")
            def a(self, call: CommandCall) -> None: ...

            @command("x  y")
            def b(self, call: CommandCall) -> None: ...

    with pytest.raises(CommandRegistrationError, match="one function handles one command"):
        command("x")(command("y")(lambda self, call: None))
    with pytest.raises(HookRegistrationError, match="both a @hook and a @command handler"):

        class Both(Plugin):
            @hook(HookName.OnActivate)
            @command("x")
            def a(self, call: CommandCall) -> None: ...


def test_words_split_like_go_strings_fields() -> None:
    from mattermost_plugin.commands import CommandRouter, fields

    # \x1c-\x1f are white space to Python's str.split(), not to Go's strings.Fields.
    assert fields("/hello \x1cfail") == ["/hello", "\x1cfail"]
    assert fields(" a\tb\u3000c\u00a0d \n") == ["a", "b", "c", "d"]
    assert CommandRouter.split("/hello \x1cfail") == ("hello", "\x1cfail")
