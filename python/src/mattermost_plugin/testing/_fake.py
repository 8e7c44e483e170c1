"""``FakeMattermost``: an in-memory Mattermost server behind the SDK's real API clients.

The typed clients (``PluginAPIClient``, ``AsyncPluginAPIClient``) are the real ones; only
their channel is replaced (``_transport``), so building a request from Python arguments,
the ``AppError`` check and unpacking the results all run the SDK's own code. Each request
lands in ``dispatch``: a handler set with ``on`` first, then the modelled method
(``_models``), else ``UnmodelledMethodError``. Every call is recorded in ``calls``.
"""

from __future__ import annotations

import asyncio
import base64
import difflib
import json
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from .. import _contract
from .._convert import get_field, payload_fields, set_field
from .._generated.api import AsyncPluginAPIClient, PluginAPIClient
from .._names import snake_case
from ..client import MethodSpec
from ..errors import PluginAPIError
from ._transport import FakeAsyncChannel, FakeRpcError, FakeSyncChannel

if TYPE_CHECKING:
    from .._proto.mattermost.plugin.v1.models_pb2 import (
        Bot,
        Channel,
        ChannelMember,
        Command,
        Config,
        Post,
        Team,
        TeamMember,
        User,
    )
    from ._harness import PluginHandle

__all__ = [
    "Call",
    "FakeClock",
    "FakeMattermost",
    "Handler",
    "LogEntry",
    "UnmodelledMethodError",
    "new_id",
]

# A handler for one API method: takes the request message (for a byte-stream method, the
# list of request parts) and returns the response message, the result value(s), or None.
Handler = Callable[[Any], Any]

DEFAULT_PLUGIN_ID = "com.example.plugin"
DEFAULT_SERVER_VERSION = "10.11.0"
# 2025-01-01T00:00:00Z: a fixed start keeps timestamps in tests reproducible.
DEFAULT_START_MILLIS = 1_735_689_600_000

# Mattermost's ids are 16 random bytes in base32 with this alphabet, lower case, unpadded.
_MM_ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"
_TO_MM = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _MM_ALPHABET)


def new_id(rng: random.Random | None = None) -> str:
    """A 26-character id shaped like Mattermost's ``model.NewId()``."""
    raw = (rng or random.Random()).randbytes(16)
    return base64.b32encode(raw).decode("ascii").translate(_TO_MM).rstrip("=")


class FakeClock:
    """The fake server's clock, in Unix milliseconds. It moves only when told to.

    ``advance(seconds=61)`` is how a test lets KV entries expire: nothing in the kit sleeps.
    """

    def __init__(self, start_millis: int = DEFAULT_START_MILLIS) -> None:
        self._now = int(start_millis)
        self._lock = threading.Lock()

    def now_millis(self) -> int:
        with self._lock:
            return self._now

    def advance(self, seconds: float = 0, *, millis: int = 0) -> int:
        """Move the clock forward; returns the new time in milliseconds."""
        step = int(seconds * 1000) + int(millis)
        if step < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._now += step
            return self._now

    def set(self, millis: int) -> None:
        with self._lock:
            self._now = int(millis)


class FakeJobClock:
    """The scheduler's clock (``mattermost_plugin.jobs.JobClock``) on a ``FakeClock``.

    The test kit runs jobs itself when the test moves time (``PluginHandle.advance``), so
    the scheduler never waits on this clock; a wait returns only when its event is set.
    """

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def now(self) -> float:
        return self.clock.now_millis() / 1000

    async def await_event(self, event: asyncio.Event, seconds: float) -> bool:
        await event.wait()
        return True


@dataclass(frozen=True)
class Call:
    """One API call the fake answered (or refused).

    ``method`` is the Go name (``KVSet``); ``request`` the request message (a list of parts
    for byte-stream methods); ``result`` what the client returned (None when it raised);
    ``error`` what the client raised instead (a ``PluginAPIError``, or
    ``UnmodelledMethodError``). ``args`` has the Go parameters by their proto field names.
    """

    method: str
    request: Any
    response: Any
    result: Any = None
    error: BaseException | None = None

    @property
    def args(self) -> dict[str, Any]:
        if not isinstance(self.request, Message):
            return {}
        desc: Any = self.request.DESCRIPTOR
        return {f.name: get_field(self.request, f) for f in payload_fields(desc)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={_short(v)}" for k, v in self.args.items())
        outcome = f"raised {self.error!r}" if self.error is not None else _short(self.result)
        return f"<Call {self.method}({args}) -> {outcome}>"

    def __getitem__(self, name: str) -> Any:
        args = self.args
        if name not in args:
            raise KeyError(f"{self.method} has no parameter {name!r} (it has: {', '.join(args)})")
        return args[name]


@dataclass(frozen=True)
class LogEntry:
    """A ``LogDebug``/``LogInfo``/``LogWarn``/``LogError`` call."""

    level: str  # "debug", "info", "warn", "error"
    message: str
    fields: dict[str, Any] = field(default_factory=dict)
    plugin_id: str = ""


class UnmodelledMethodError(NotImplementedError):
    """The plugin called an API method the fake does not model and no test stubbed."""

    def __init__(self, method: str, request_type: str) -> None:
        self.method = method
        super().__init__(
            f"FakeMattermost does not model PluginAPI.{method} (api.{snake_case(method)}). "
            f"Stub it in the test: fake.on({method!r}, handler), where handler({request_type}) "
            "returns the result value(s) or the response message, or raises a PluginAPIError "
            "to fail the call."
        )


class FakeMattermost:
    """An in-memory Mattermost server for testing plugins; no network, no sleeps.

    ``api``/``aapi`` are the SDK's typed clients wired to this fake (standalone use), and
    ``start(PluginClass)`` runs a plugin against it. State lives in plain attributes a test
    may read: users, teams, channels, posts, ``ephemeral_posts``, ``logs``, KV (``kv``),
    ``plugin_settings``, ``config``, commands. ``clock`` drives timestamps and KV expiry.
    """

    def __init__(
        self,
        *,
        plugin_id: str = DEFAULT_PLUGIN_ID,
        server_version: str = DEFAULT_SERVER_VERSION,
        clock: FakeClock | None = None,
        seed: int = 0,
    ) -> None:
        from . import _models

        self._plugin_id = plugin_id
        self.server_version = server_version
        self.clock = clock or FakeClock()
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._service = _contract.api_service()
        self._overrides: dict[str, Handler | BaseException] = {}
        self._models = _models.MODELS
        self._api_open = True
        self.calls: list[Call] = []
        self.logs: list[LogEntry] = []
        # State of the modelled methods (see _models for how each is used).
        self.users: dict[str, User] = {}
        self.teams: dict[str, Team] = {}
        self.channels: dict[str, Channel] = {}
        self.team_members: dict[tuple[str, str], TeamMember] = {}  # by (team_id, user_id)
        self.channel_members: dict[tuple[str, str], ChannelMember] = {}  # (channel, user)
        self.posts: dict[str, Post] = {}
        # (user_id, Post) for each SendEphemeralPost/UpdateEphemeralPost, in call order.
        self.ephemeral_posts: list[tuple[str, Post]] = []
        self.bots: dict[str, Bot] = {}
        # Interactive dialogs: trigger ids issued (id -> (user_id, issued at millis)), and
        # (user_id, OpenDialogRequest) for each dialog opened, in call order.
        self.trigger_ids: dict[str, tuple[str, int]] = {}
        self.dialogs: list[tuple[str, Any]] = []
        self.commands: list[Command] = []  # registered slash commands (plugin_id set)
        self._kv: dict[str, dict[str, tuple[bytes, int]]] = {}  # plugin -> key -> (v, exp)
        self._settings: dict[str, dict[str, Any]] = {}
        from .._proto.mattermost.plugin.v1.models_pb2 import Config

        self.config: Config = Config()
        self.config.service_settings.site_url = "http://localhost:8065"
        self.api, self.aapi = self.clients(plugin_id)

    def clients(self, plugin_id: str) -> tuple[PluginAPIClient, AsyncPluginAPIClient]:
        """A sync and an async client wired to this fake, calling as plugin ``plugin_id``."""
        return (
            PluginAPIClient(FakeSyncChannel(self), token="", plugin_id=plugin_id),
            AsyncPluginAPIClient(FakeAsyncChannel(self), token="", plugin_id=plugin_id),
        )

    @property
    def plugin_id(self) -> str:
        """The plugin under test: ``api``/``aapi`` call as it, ``kv`` and ``plugin_settings``
        are its own. ``start(plugin_id=...)`` sets it."""
        return self._plugin_id

    @plugin_id.setter
    def plugin_id(self, value: str) -> None:
        self._plugin_id = value
        self.api, self.aapi = self.clients(value)

    # --- ids and time -----------------------------------------------------------------

    def new_trigger_id(self, user_id: str) -> str:
        """A trigger id as the server issues for a slash command or an action of
        ``user_id``: ``OpenInteractiveDialog`` accepts it for 30 s of ``clock`` time."""
        trigger_id = self.new_id() + self.new_id()
        with self._lock:
            self.trigger_ids[trigger_id] = (user_id, self.now())
        return trigger_id

    def new_id(self) -> str:
        """A fresh 26-character id (deterministic per ``seed``)."""
        with self._lock:
            return new_id(self._rng)

    def now(self) -> int:
        """The fake server's time in Unix milliseconds (``clock``)."""
        return self.clock.now_millis()

    # --- stubbing -----------------------------------------------------------------------

    def on(self, method: str, handler: Handler | BaseException | None) -> None:
        """Answer ``method`` (Go name, or the client's snake_case name) with ``handler``.

        ``handler(request)`` gets the request message and returns the result value(s)
        (one value, or a tuple in Go order), the response message, or None; raising a
        ``PluginAPIError`` makes the call fail with that AppError. Pass an exception
        instance to make every call fail with it, or None to restore the modelled
        behaviour. Works for every API method, modelled or not.
        """
        name = self.method_name(method)
        with self._lock:
            if handler is None:
                self._overrides.pop(name, None)
            else:
                self._overrides[name] = handler

    def method_name(self, method: str) -> str:
        """The Go name of API method ``method`` (Go or snake_case spelling)."""
        by_name = self._service.methods_by_name
        if method in by_name:
            return method
        for m in self._service.methods:
            if snake_case(m.name) == method:
                return str(m.name)
        close = difflib.get_close_matches(method, list(by_name), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"PluginAPI has no method {method!r}{hint}")

    def is_modelled(self, method: str) -> bool:
        """Whether the fake answers ``method`` by itself (without ``on``)."""
        return self.method_name(method) in self._models

    @staticmethod
    def modelled_methods() -> list[str]:
        """The Go names of the API methods the fake models."""
        from . import _models

        return sorted(_models.MODELS)

    # --- recorded calls -------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        """The recorded calls of ``method`` (Go or snake_case name), oldest first."""
        name = self.method_name(method)
        with self._lock:
            return [c for c in self.calls if c.method == name]

    def called(self, method: str) -> bool:
        return bool(self.calls_to(method))

    def clear_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    # --- the transport's entry point ------------------------------------------------------

    def _parse_request(self, method: str, data: bytes) -> Any:
        desc = self._service.methods_by_name.get(method)
        if desc is None:
            raise FakeRpcError(grpc.StatusCode.UNIMPLEMENTED, f"unknown method {method}")
        return GetMessageClass(desc.input_type).FromString(data)

    def _spec(self, method: str) -> MethodSpec | None:
        PluginAPIClient._bind_contract()
        return PluginAPIClient._by_rpc.get(method)

    def dispatch(self, method: str, request: Any) -> Any:
        """Answer one API call: the response message (a list of parts for PluginHTTP)."""
        desc = self._service.methods_by_name[method]
        response_cls = GetMessageClass(desc.output_type)
        with self._lock:
            if not self._api_open:
                raise FakeRpcError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"{method}: the server's API is available from OnActivate on (the server "
                    "has not activated the plugin yet)",
                )
            override = self._overrides.get(method)
            model = self._models.get(method)
            if override is None and model is None:
                error = UnmodelledMethodError(method, desc.input_type.name)
                self.calls.append(Call(method, request, None, None, error))
                raise error
            try:
                if isinstance(override, BaseException):
                    raise override
                outcome = override(request) if override is not None else model(self, request)  # type: ignore[misc]
                response = self._response(method, response_cls, outcome)
            except PluginAPIError as exc:
                response = response_cls()
                _set_app_error(response, exc, method)
            except Exception as exc:
                self.calls.append(Call(method, request, None, None, exc))
                raise
            self.calls.append(self._record(method, request, response))
            return response

    def _response(self, method: str, response_cls: Any, outcome: Any) -> Any:
        if isinstance(outcome, Message) and outcome.DESCRIPTOR is response_cls.DESCRIPTOR:
            return outcome
        if (
            isinstance(outcome, list)
            and outcome
            and isinstance(outcome[0], Message)
            and outcome[0].DESCRIPTOR is response_cls.DESCRIPTOR
        ):
            return outcome  # the parts of a streamed answer (PluginHTTP)
        response = response_cls()
        results = payload_fields(response_cls.DESCRIPTOR)
        if outcome is None:
            return response
        if not results:
            raise TypeError(f"{method} returns nothing, but the handler returned {outcome!r}")
        if len(results) == 1:
            set_field(response, results[0], outcome)
            return response
        values = outcome if isinstance(outcome, tuple) else (outcome,)
        if len(values) > len(results):
            names = ", ".join(f.name for f in results)
            raise TypeError(f"{method} returns at most {len(results)} values ({names})")
        for f, v in zip(results, values, strict=False):
            set_field(response, f, v)
        return response

    def _record(self, method: str, request: Any, response: Any) -> Call:
        spec = self._spec(method)
        if spec is None or not isinstance(response, Message):
            return Call(method, request, response, response, None)
        try:
            result = spec.unpack(response)
        except PluginAPIError as exc:
            return Call(method, request, response, None, exc)
        if method == "LoadPluginConfiguration":
            result = json.loads(result) if result else {}
        return Call(method, request, response, result, None)

    # --- plugins ----------------------------------------------------------------------------

    def start(
        self,
        plugin_cls: type[Any],
        *,
        plugin_id: str | None = None,
        settings: dict[str, Any] | None = None,
    ) -> PluginHandle:
        """Run ``plugin_cls`` against this server as the bridge would, up to ``OnActivate``.

        Returns a ``PluginHandle`` to fire hooks and send HTTP requests; call its ``stop()``
        (or use it as a context manager) to deactivate. ``settings`` become the plugin's
        configuration before ``OnConfigurationChange`` runs. ``plugin_id`` (the manifest's id)
        becomes this fake's ``plugin_id``.
        """
        from ._harness import PluginHandle

        if plugin_id is not None and plugin_id != self.plugin_id:
            self.plugin_id = plugin_id
        pid = self.plugin_id
        if settings is not None:
            self.set_plugin_settings(settings, plugin_id=pid)
        return PluginHandle.start(self, plugin_cls, pid)

    # --- state helpers (seeding and inspection; not recorded as calls) --------------------

    @property
    def plugin_settings(self) -> dict[str, Any]:
        """The configuration of ``plugin_id``, as LoadPluginConfiguration returns it."""
        with self._lock:
            return self._settings.setdefault(self.plugin_id, {})

    @plugin_settings.setter
    def plugin_settings(self, value: dict[str, Any]) -> None:
        self.set_plugin_settings(value)

    def set_plugin_settings(self, value: dict[str, Any], *, plugin_id: str | None = None) -> None:
        json.dumps(value)  # must be what the server can store: fail here, not in a hook
        with self._lock:
            self._settings[plugin_id or self.plugin_id] = dict(value)

    def settings_for(self, plugin_id: str) -> dict[str, Any]:
        with self._lock:
            return self._settings.setdefault(plugin_id, {})

    def kv_namespace(self, plugin_id: str) -> dict[str, tuple[bytes, int]]:
        """The raw KV rows of ``plugin_id``: key -> (value, expire_at millis or 0)."""
        with self._lock:
            return self._kv.setdefault(plugin_id, {})

    @property
    def kv(self) -> dict[str, bytes]:
        """A snapshot of the live (unexpired) KV entries of ``plugin_id``."""
        return self.kv_of(self.plugin_id)

    def kv_of(self, plugin_id: str) -> dict[str, bytes]:
        """A snapshot of the live KV entries of any plugin."""
        now = self.now()
        with self._lock:
            rows = self.kv_namespace(plugin_id)
            return {k: v for k, (v, exp) in sorted(rows.items()) if not exp or exp > now}

    def add_user(self, username: str, **fields: Any) -> User:
        """Create a user directly (no call recorded); ``fields`` are ``User`` fields."""
        from . import _models

        with self._lock:
            return _models.insert_user(self, username=username, **fields)

    def add_team(self, name: str, **fields: Any) -> Team:
        """Create a team directly; ``fields`` are ``Team`` fields."""
        from . import _models

        with self._lock:
            return _models.insert_team(self, name=name, **fields)

    def add_channel(
        self, team_id: str, name: str, *, members: Sequence[str] = (), **fields: Any
    ) -> Channel:
        """Create a channel directly, with ``members`` (user ids) in it."""
        from . import _models

        with self._lock:
            channel = _models.insert_channel(self, team_id=team_id, name=name, **fields)
            for user_id in members:
                _models.insert_channel_member(self, channel.id, user_id)
            return channel

    def add_team_member(self, team_id: str, user_id: str) -> TeamMember:
        from . import _models

        with self._lock:
            return _models.insert_team_member(self, team_id, user_id)

    def posts_in(self, channel_id: str) -> list[Post]:
        """The undeleted posts of a channel, oldest first."""
        with self._lock:
            found = [p for p in self.posts.values() if p.channel_id == channel_id]
            return [p for p in sorted(found, key=lambda p: p.create_at) if not p.delete_at]


def _short(value: Any, limit: int = 60) -> str:
    text = " ".join(repr(value).split())  # messages print over several lines
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _set_app_error(response: Message, exc: PluginAPIError, method: str) -> None:
    err_field = response.DESCRIPTOR.fields_by_number.get(1)
    if err_field is None or err_field.message_type is None:
        raise exc  # the method cannot fail: the handler is wrong, say so loudly
    fields = exc.to_fields()
    fields["where"] = fields["where"] or method
    err = getattr(response, err_field.name)
    known = err.DESCRIPTOR.fields_by_name
    for k, v in fields.items():
        if k in known:
            setattr(err, k, v)
