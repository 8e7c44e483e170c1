"""Slash commands declared with a decorator, registered on activation, routed by subcommand.

::

    class Todo(Plugin):
        @command("todo add", hint="<task>", help="Add a task")
        def add(self, call: CommandCall) -> str:
            key = f"todo_{call.user_id}"
            self.kv_store.update(key, lambda tasks: [*(tasks or []), call.text])
            return f"Added: {call.text}"          # a str answers privately (ephemeral)

        @command("todo list", help="List your tasks")
        async def list_tasks(self, call: CommandCall) -> CommandResponse:
            tasks = await self.akv_store.get(f"todo_{call.user_id}", [])
            return call.in_channel("\\n".join(tasks) or "Nothing to do")

* ``@command("trigger sub ...")`` declares a handler for ``/trigger sub ...`` (a leading ``/`` is
  optional; words are lower case, as the server requires). ``help`` (default: the first line of
  the docstring) and ``hint`` (the argument hint, e.g. ``"<task>"``) feed the autocomplete
  menu and the help text. ``@command("todo")`` handles the bare trigger; its help describes the
  command. Subcommands nest: ``@command("todo list done")``.
* On ``OnActivate`` (before the plugin's own handler) every trigger is registered with
  ``RegisterCommand``, with ``AutocompleteData`` listing its subcommands, their help and hints.
* On ``ExecuteCommand`` the words after the trigger are matched against the declared
  subcommands, deepest match first. The handler gets a ``CommandCall``: the matched ``path``,
  the rest of the line as ``text`` (and ``argv``, split like a shell), the ``CommandArgs`` and
  the ``PluginContext``. It returns a ``CommandResponse``, a ``str`` (an ephemeral reply) or
  None (no reply). ``raise CommandError("...")`` answers the user with that message privately.
* ``/trigger`` alone, ``/trigger help`` and an unknown subcommand answer with an ephemeral help
  text listing the subcommands, unless a handler for the bare trigger exists, which then gets
  those words as ``text`` (``call.help`` holds the help text, to answer with it). A ``help``
  subcommand you declare replaces the built-in one.
* **Precedence.** A plugin may also implement ``ExecuteCommand`` itself (``@hook``): declared
  triggers are routed to their ``@command`` handlers first, and every other trigger (commands
  registered by hand with ``self.api.register_command``) reaches the plugin's own
  ``ExecuteCommand`` handler.

Sync handlers run in worker threads and async ones on the event loop, as hook handlers do.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import shlex
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ._backports import add_note
from ._marks import COMMAND_ATTR
from ._proto.mattermost.plugin.v1.models_pb2 import (
    AutocompleteData,
    Command,
    CommandArgs,
    CommandResponse,
    PluginContext,
)

if TYPE_CHECKING:
    from .plugin import Plugin

__all__ = [
    "COMMAND_ATTR",
    "CommandCall",
    "CommandError",
    "CommandRegistrationError",
    "CommandRouter",
    "command",
    "fields",
]

HELP_WORD = "help"
EPHEMERAL = "ephemeral"
IN_CHANNEL = "in_channel"

F = TypeVar("F", bound=Callable[..., Any])
# The runner of handlers the dispatcher provides: awaits async ones, threads sync ones.
Runner = Callable[..., Awaitable[Any]]

_WORD = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
# Go's unicode.IsSpace, which strings.Fields splits on: Python's \s and str.split() also
# split on \x1c-\x1f, so "/hello \x1cfail" would run "fail" where a Go plugin sees one word.
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
_GO_SPACE += "\u2028\u2029\u202f\u205f\u3000"
_TOKEN = re.compile(f"[{re.escape(_GO_SPACE)}]*([^{re.escape(_GO_SPACE)}]+)")
_SPACES = re.compile(f"[{re.escape(_GO_SPACE)}]+")


def fields(text: str) -> list[str]:
    """``text`` split around runs of white space, as Go's ``strings.Fields`` splits it."""
    return [word for word in _SPACES.split(text) if word]


class CommandRegistrationError(ValueError):
    """A ``@command`` declaration is malformed or clashes with another."""


class CommandError(Exception):
    """Raised by a command handler: its message is shown to the user (ephemeral)."""


@dataclasses.dataclass(frozen=True)
class CommandSpec:
    """What ``@command`` recorded on a function."""

    path: tuple[str, ...]
    help: str
    hint: str
    display_name: str


@dataclasses.dataclass
class CommandCall:
    """One invocation of a slash command, as a ``@command`` handler receives it."""

    args: CommandArgs
    context: PluginContext | None
    trigger: str
    path: tuple[str, ...]
    text: str
    help: str = ""
    """The Markdown help of the matched command (to answer ``help`` yourself)."""

    @property
    def argv(self) -> list[str]:
        """``text`` split like a shell does (quotes group words); plain split if unbalanced."""
        try:
            return shlex.split(self.text)
        except ValueError:
            return fields(self.text)

    @property
    def user_id(self) -> str:
        return self.args.user_id

    @property
    def channel_id(self) -> str:
        return self.args.channel_id

    @property
    def team_id(self) -> str:
        return self.args.team_id

    @property
    def root_id(self) -> str:
        return self.args.root_id

    def reply(self, text: str) -> CommandResponse:
        """A reply only the caller sees."""
        return CommandResponse(response_type=EPHEMERAL, text=text)

    def in_channel(self, text: str) -> CommandResponse:
        """A reply posted to the channel for everyone."""
        return CommandResponse(response_type=IN_CHANNEL, text=text)


def _parse_path(path: str) -> tuple[str, ...]:
    if not isinstance(path, str):
        raise CommandRegistrationError(f"@command expects a string like 'todo add', got {path!r}")
    words = fields(path.strip().removeprefix("/"))
    if not words:
        raise CommandRegistrationError("@command needs a trigger, e.g. @command('todo add')")
    for word in words:
        if not _WORD.match(word):
            raise CommandRegistrationError(
                f"@command({path!r}): {word!r} is not a valid command word (lower-case letters, "
                f"digits, '-', '_' and '.', as the server requires)"
            )
    return tuple(words)


def command(
    path: str, *, help: str = "", hint: str = "", display_name: str = ""
) -> Callable[[F], F]:
    """Declare a ``Plugin`` method as the handler of ``/path`` (see the module docstring).

    The original function is returned, so it stays callable directly in tests.
    """
    words = _parse_path(path)

    def mark(fn: F) -> F:
        if not callable(fn):
            raise CommandRegistrationError(f"@command({path!r}) must decorate a function")
        if getattr(fn, COMMAND_ATTR, None) is not None:
            raise CommandRegistrationError(
                f"{getattr(fn, '__qualname__', fn)!s} already handles a command; "
                f"one function handles one command"
            )
        doc = inspect.getdoc(fn) or ""
        text = help or (doc.strip().splitlines()[0] if doc.strip() else "")
        setattr(fn, COMMAND_ATTR, CommandSpec(words, text, hint, display_name))
        return fn

    return mark


@dataclasses.dataclass
class _Node:
    word: str
    spec: CommandSpec | None = None
    attr: str = ""
    children: dict[str, _Node] = dataclasses.field(default_factory=dict)


def _response(value: Any, where: str) -> CommandResponse:
    if value is None:
        return CommandResponse()
    if isinstance(value, CommandResponse):
        return value
    if isinstance(value, str):
        return CommandResponse(response_type=EPHEMERAL, text=value)
    raise TypeError(
        f"command handler {where} must return a CommandResponse, a str or None, "
        f"got {type(value).__name__}"
    )


class CommandRouter:
    """The declared commands of one plugin class: registration data and routing."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.roots: dict[str, _Node] = {}

    @classmethod
    def collect(cls, plugin_cls: type) -> CommandRouter | None:
        """Gather the ``@command`` methods of ``plugin_cls`` and its bases (None if none)."""
        found: dict[str, CommandSpec] = {}
        for klass in reversed(plugin_cls.__mro__):
            for attr, value in vars(klass).items():
                fn = value.__func__ if isinstance(value, staticmethod | classmethod) else value
                spec = getattr(fn, COMMAND_ATTR, None)
                if isinstance(spec, CommandSpec):
                    found[attr] = spec
                elif attr in found:
                    del found[attr]  # overridden by an undecorated attribute
        if not found:
            return None
        router = cls(plugin_cls.__qualname__)
        for attr, spec in found.items():
            router._add(attr, spec)
        return router

    def _add(self, attr: str, spec: CommandSpec) -> None:
        trigger, *rest = spec.path
        node = self.roots.setdefault(trigger, _Node(trigger))
        for word in rest:
            node = node.children.setdefault(word, _Node(word))
        if node.spec is not None:
            raise CommandRegistrationError(
                f"{self.owner}: /{' '.join(spec.path)} is declared twice ({node.attr} and {attr})"
            )
        node.spec, node.attr = spec, attr

    @property
    def triggers(self) -> list[str]:
        return list(self.roots)

    # --- registration ---------------------------------------------------------------------

    def _autocomplete(self, node: _Node, *, root: bool) -> AutocompleteData:
        spec = node.spec
        data = AutocompleteData(
            trigger=node.word,
            hint=spec.hint if spec else "",
            help_text=spec.help if spec else "",
        )
        for child in node.children.values():
            data.sub_commands.append(self._autocomplete(child, root=False))
        if node.children and not spec:
            data.hint = data.hint or "[" + "|".join(node.children) + "]"
        if root and spec is None and HELP_WORD not in node.children:
            data.sub_commands.append(
                AutocompleteData(trigger=HELP_WORD, help_text=f"Show help for /{node.word}")
            )
        return data

    def _description(self, node: _Node) -> str:
        if node.spec and node.spec.help:
            return node.spec.help
        return "Subcommands: " + ", ".join(node.children) if node.children else ""

    def commands(self) -> list[Command]:
        """The ``Command`` registered for each declared trigger."""
        out = []
        for trigger, node in self.roots.items():
            data = self._autocomplete(node, root=True)
            description = self._description(node)
            data.help_text = data.help_text or description
            out.append(
                Command(
                    trigger=trigger,
                    auto_complete=True,
                    auto_complete_desc=description,
                    auto_complete_hint=data.hint,
                    display_name=(node.spec.display_name if node.spec else "") or trigger,
                    description=description,
                    autocomplete_data=data,
                )
            )
        return out

    # --- help -----------------------------------------------------------------------------

    def help_text(self, trigger: str, path: tuple[str, ...] = ()) -> str:
        """The Markdown help of ``/trigger path...``: its description and subcommands."""
        node = self.roots[trigger]
        for word in path:
            node = node.children[word]
        name = "/" + " ".join((trigger, *path))
        lines = [
            f"**{name}**" + (f" — {self._description(node)}" if self._description(node) else "")
        ]
        entries: list[tuple[str, str]] = []

        def walk(n: _Node, prefix: str) -> None:
            for child in n.children.values():
                usage = f"{prefix} {child.word}"
                if child.spec is not None:
                    hint = f" {child.spec.hint}" if child.spec.hint else ""
                    entries.append((usage + hint, child.spec.help))
                walk(child, usage)

        if node.spec is not None and node is not self.roots[trigger] and node.spec.hint:
            entries.append((f"{name} {node.spec.hint}", node.spec.help))
        walk(node, name)
        if not path and node.spec is None and HELP_WORD not in node.children:
            entries.append((f"{name} {HELP_WORD}", "Show this help"))
        if entries:
            lines.append("")
            lines.extend(f"- `{usage}`" + (f" — {text}" if text else "") for usage, text in entries)
        return "\n".join(lines)

    # --- routing --------------------------------------------------------------------------

    @staticmethod
    def split(command_line: str) -> tuple[str, str]:
        """``("trigger", "rest of the line")`` of a command line such as ``/todo add x``."""
        m = _TOKEN.match(command_line)
        if m is None:
            return "", ""
        return m.group(1).removeprefix("/").lower(), command_line[m.end() :].strip(_GO_SPACE)

    def route(self, trigger: str, rest: str) -> tuple[_Node, tuple[str, ...], str]:
        """The deepest node matching the words of ``rest``, its path, and the remaining text."""
        node = self.roots[trigger]
        path: list[str] = []
        while True:
            m = _TOKEN.match(rest)
            if m is None:
                break
            child = node.children.get(m.group(1).lower())
            if child is None:
                break
            node = child
            path.append(child.word)
            rest = rest[m.end() :]
        return node, tuple(path), rest.strip(_GO_SPACE)

    async def execute(
        self,
        plugin: Plugin,
        run: Runner,
        then: Callable[..., Awaitable[Any]] | None,
        context: PluginContext | None,
        args: CommandArgs | None,
    ) -> Any:
        """The ``ExecuteCommand`` step: route declared triggers, pass others on."""
        args = args if args is not None else CommandArgs()
        trigger, rest = self.split(args.command)
        if trigger not in self.roots:
            if then is not None:
                return await then(context, args)
            raise LookupError(
                f"/{trigger} reached {self.owner}, which declares no handler for it "
                f"(declared: {', '.join('/' + t for t in self.roots)}); handle commands "
                f"registered by hand in an ExecuteCommand hook handler"
            )
        node, path, text = self.route(trigger, rest)
        if node.spec is None:
            return self._help_reply(trigger, path, text)
        handler = getattr(plugin, node.attr)
        call = CommandCall(
            args=args,
            context=context,
            trigger=trigger,
            path=path,
            text=text,
            help=self.help_text(trigger, path),
        )
        where = f"{type(plugin).__name__}.{node.attr}"
        try:
            result = await run(handler, call)
        except CommandError as e:
            return CommandResponse(response_type=EPHEMERAL, text=str(e) or type(e).__name__)
        except Exception as e:
            # The hook's error names ExecuteCommand; say which command handler failed.
            add_note(e, f"in the command handler {where} of /{' '.join((trigger, *path))}")
            raise
        return _response(result, where)

    def _help_reply(self, trigger: str, path: tuple[str, ...], text: str) -> CommandResponse:
        word = text.split(maxsplit=1)[0] if text else ""
        help_text = self.help_text(trigger, path)
        if word and word.lower() != HELP_WORD:
            name = "/" + " ".join((trigger, *path))
            help_text = f"Unknown subcommand `{word}` for {name}.\n\n{help_text}"
        return CommandResponse(response_type=EPHEMERAL, text=help_text)

    async def register(self, plugin: Plugin) -> None:
        for cmd in self.commands():
            await plugin.aapi.register_command(cmd)

    async def on_activate(
        self, plugin: Plugin, run: Runner, then: Callable[..., Awaitable[Any]] | None, *args: Any
    ) -> Any:
        """The ``OnActivate`` step: register the commands, then the plugin's own handler."""
        await self.register(plugin)
        return None if then is None else await then(*args)
