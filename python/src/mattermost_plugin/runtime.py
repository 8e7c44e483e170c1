"""The plugin process: environment, clients, the ``PluginHooks`` server, shutdown.

``run_plugin(MyPlugin)`` is the whole ``main`` of a plugin launched by the bridge
(docs/internals.md §8): it reads the ``MMPLUG_*`` environment (and removes the token from
``os.environ`` so child processes and stray dumps do not see it), makes the sync and async
API clients, instantiates the plugin, opens the lane (whose HELLO tells the bridge it is
ready), and runs until SIGTERM/SIGINT or until its parent (the bridge) exits.

``PluginHooks`` on gRPC (the byte-stream hooks, and every hook with
``MMPLUG_TRANSPORT=grpc``) and ``grpc.health.v1.Health`` are served on the hooks unix socket
behind a token check by ``GrpcSide``: from the start without the lane, else only once the
bridge asks for it over the lane (``START_GRPC_METHOD``), before its first byte stream. So
a plugin that never streams never imports grpcio.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from google.protobuf.descriptor import ServiceDescriptor

from . import _contract
from . import logging as mmlogging
from ._dispatch import HookDispatcher
from ._generated.api import AsyncPluginAPIClient, PluginAPIClient
from ._lane import Code, LaneConnection, LaneError, ThreadedLaneServer
from ._lane import Handler as LaneHandler
from ._lane import connect as lane_connect
from ._unary import LaneAsyncUnary, LaneSyncUnary
from .client import (
    TOKEN_METADATA_KEY,
    AsyncClient,
    SyncClient,
    aio_channel,
    make_client_classes,
    sync_channel,
)
from .plugin import Plugin

if TYPE_CHECKING:
    import grpc
    import grpc.aio
    from grpc_health.v1._async import HealthServicer

__all__ = [
    "START_GRPC_METHOD",
    "ConfigError",
    "GrpcSide",
    "RuntimeConfig",
    "run_plugin",
    "serve_plugin",
]

log = logging.getLogger("mattermost_plugin.runtime")

# Time for in-flight hooks to finish after SIGTERM; the bridge's own grace period
# (before SIGKILL) is longer.
SHUTDOWN_GRACE_SECONDS = 5.0

# Same limits as the client side: the bridge enforces the server's real limits.
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    ("grpc.max_send_message_length", 256 * 1024 * 1024),
]


class ConfigError(ValueError):
    """The process environment does not describe a bridge launch."""


@dataclass(frozen=True)
class RuntimeConfig:
    """The plugin process's launch parameters (read from the bridge's ``MMPLUG_*`` environment).

    Every field has a default so that code written for Mattermost's own SDK, which builds
    ``RuntimeConfig()`` or ``RuntimeConfig(plugin_id=...)`` itself, works; its fields
    (``api_target``, ``plugin_path``, ``hook_timeout``, ``log_level``) are here too, filled
    from the launch (``mattermost_plugin.runtime_config`` has its ``load_runtime_config``).
    """

    api_socket: str = ""
    hooks_socket: str = ""
    # The bridge's lane socket (docs/internals.md §8): unary hooks and API calls go there
    # unless it is empty or ``transport`` is "grpc".
    lane_socket: str = ""
    transport: str = "lane"
    token: str = ""
    plugin_id: str = ""
    plugin_dir: str = ""
    entry: str = ""
    # Mattermost's own SDK's fields (see mattermost_plugin.runtime_config).
    api_target: str = ""
    plugin_path: str = ""
    hook_timeout: float = 30.0
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        # plugin_path is plugin_dir under the other SDK's name: either one fills the other.
        if self.plugin_path and not self.plugin_dir:
            object.__setattr__(self, "plugin_dir", self.plugin_path)
        elif self.plugin_dir and not self.plugin_path:
            object.__setattr__(self, "plugin_path", self.plugin_dir)
        if self.api_socket and not self.api_target:
            object.__setattr__(self, "api_target", f"unix:{self.api_socket}")

    def configure_logging(self) -> None:
        """Send the ``logging`` module's records to the server log at ``log_level``."""
        level = logging.getLevelName(self.log_level.upper())
        mmlogging.install(level if isinstance(level, int) else logging.INFO)

    ENV: ClassVar[dict[str, str]] = {
        "api_socket": "MMPLUG_API_SOCKET",
        "hooks_socket": "MMPLUG_HOOKS_SOCKET",
        "lane_socket": "MMPLUG_LANE_SOCKET",
        "transport": "MMPLUG_TRANSPORT",
        "token": "MMPLUG_TOKEN",
        "plugin_id": "MMPLUG_PLUGIN_ID",
        "plugin_dir": "MMPLUG_PLUGIN_DIR",
        "entry": "MMPLUG_ENTRY",
    }
    REQUIRED: ClassVar[tuple[str, ...]] = ("api_socket", "hooks_socket", "token", "plugin_id")

    def __repr__(self) -> str:  # never print the token
        return (
            f"RuntimeConfig(api_socket={self.api_socket!r}, hooks_socket={self.hooks_socket!r}, "
            f"lane_socket={self.lane_socket!r}, transport={self.transport!r}, "
            f"plugin_id={self.plugin_id!r}, plugin_dir={self.plugin_dir!r}, entry={self.entry!r})"
        )

    @classmethod
    def from_env(
        cls, environ: MutableMapping[str, str] | None = None, *, consume_token: bool = True
    ) -> RuntimeConfig:
        env: Mapping[str, str] = os.environ if environ is None else environ
        missing = [
            cls.ENV[k]
            for k in cls.REQUIRED
            if not env.get(cls.ENV[k]) and not (k == "token" and env.get(TOKEN_FD_ENV))
        ]
        if missing:
            raise ConfigError(
                f"missing environment {', '.join(missing)}: this process is meant to be "
                "started by the mmplug bridge (see `mmplug dev` to run a plugin locally)"
            )
        values: dict[str, Any] = {k: env.get(name, "") for k, name in cls.ENV.items()}
        if not values["token"] and env.get(TOKEN_FD_ENV):
            values["token"] = _read_token(env[TOKEN_FD_ENV])
        if consume_token:
            target = os.environ if environ is None else environ
            target.pop(cls.ENV["token"], None)
        return cls(**values, log_level=env.get("MMPLUG_LOG_LEVEL", "INFO").upper() or "INFO")


# The bridge passes the per-launch token as the first line of this descriptor (stdin), not in
# the environment, which the kernel keeps readable in /proc/PID/environ for the process's life.
TOKEN_FD_ENV = "MMPLUG_TOKEN_FD"


def _read_token(fd_text: str) -> str:
    """The token line from descriptor ``fd_text``; the descriptor is then /dev/null."""
    try:
        fd = int(fd_text)
    except ValueError:
        raise ConfigError(f"{TOKEN_FD_ENV}={fd_text!r} is not a file descriptor") from None
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(fd, 256)
        if not chunk:
            break
        line += chunk
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
    token = line.decode("ascii", "replace").strip()
    if not token:
        raise ConfigError(f"no token on descriptor {fd} ({TOKEN_FD_ENV})")
    return token


def _token_interceptor_class() -> type[grpc.aio.ServerInterceptor]:
    """``TokenInterceptor``, made when gRPC is first served (it subclasses a grpcio class)."""
    global _TokenInterceptor
    if _TokenInterceptor is not None:
        return _TokenInterceptor
    import hmac  # with grpcio: ~1.5 ms of imports (hashlib, OpenSSL) no lane plugin needs

    import grpc
    import grpc.aio

    class TokenInterceptor(grpc.aio.ServerInterceptor):
        """Rejects every call whose ``x-mmplug-token`` metadata is absent or wrong."""

        def __init__(self, token: str) -> None:
            self._token = token.encode()

        def _ok(self, details: grpc.HandlerCallDetails) -> bool:
            metadata: Any = getattr(details, "invocation_metadata", None) or ()
            for key, value in metadata:
                if key == TOKEN_METADATA_KEY:
                    given = value.encode() if isinstance(value, str) else bytes(value)
                    return hmac.compare_digest(given, self._token)
            return False

        async def intercept_service(
            self,
            continuation: Callable[
                [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
            ],
            handler_call_details: grpc.HandlerCallDetails,
        ) -> grpc.RpcMethodHandler[Any, Any] | None:
            handler = await continuation(handler_call_details)
            if self._ok(handler_call_details) or handler is None:
                return handler
            return _deny_like(handler)

    _TokenInterceptor = TokenInterceptor
    return TokenInterceptor


_TokenInterceptor: type[grpc.aio.ServerInterceptor] | None = None


def __getattr__(name: str) -> Any:
    # `from mattermost_plugin.runtime import TokenInterceptor` still works; the class is made
    # (and grpcio imported) only then.
    if name == "TokenInterceptor":
        return _token_interceptor_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _deny_like(handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    import grpc

    # The denial must have the same streaming shape as the real method, or gRPC would
    # misread the call.
    async def deny(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid mmplug token")

    streaming = (bool(handler.request_streaming), bool(handler.response_streaming))
    factory: Any = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[streaming]
    return factory(  # type: ignore[no-any-return]
        deny,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


# The lane call by which the bridge asks for GrpcSide before its first byte stream to Python
# (docs/internals.md §8): an empty request, answered with an empty response once the hooks
# socket accepts gRPC calls. Not a method of the contract: the runtime answers it itself.
START_GRPC_METHOD = "/mmplug.runtime.v1.Runtime/StartGrpc"


def _import_grpc() -> None:
    for name in ("grpc", "grpc.aio", "grpc_health.v1.health_pb2_grpc", "grpc_health.v1._async"):
        importlib.import_module(name)


class GrpcSide:
    """The plugin's gRPC server on the hooks socket: ``PluginHooks`` (the byte-stream hooks
    ServeHTTP, ServeMetrics and FileWillBeUploaded; every hook with ``MMPLUG_TRANSPORT=grpc``)
    and ``grpc.health.v1.Health``, behind the token check.

    ``start`` makes it once, however many callers ask at the same time; a start that failed
    is tried again by the next caller.
    """

    def __init__(self, config: RuntimeConfig, dispatcher: HookDispatcher) -> None:
        self._config = config
        self._dispatcher = dispatcher
        self._starting: asyncio.Future[None] | None = None
        self._server: grpc.aio.Server | None = None
        self._health: HealthServicer | None = None

    @property
    def started(self) -> bool:
        """Whether the hooks socket accepts gRPC calls."""
        return self._server is not None

    async def start(self, *, serving: bool) -> None:
        """Listens on the hooks socket; health answers SERVING if ``serving``, else
        NOT_SERVING until ``set_serving``."""
        starting = self._starting
        if starting is None or (starting.done() and starting.exception() is not None):
            starting = self._starting = asyncio.ensure_future(self._start(serving))
        # Shielded: a caller that gives up (the bridge's CANCEL) must not cancel the start
        # that others wait for.
        await asyncio.shield(starting)

    async def _start(self, serving: bool) -> None:
        # grpcio's import (~20 ms) runs off the loop, which meanwhile goes on serving hooks.
        await asyncio.to_thread(_import_grpc)
        import grpc.aio
        from grpc_health.v1 import health_pb2, health_pb2_grpc
        from grpc_health.v1._async import HealthServicer

        health = HealthServicer()
        status = health_pb2.HealthCheckResponse
        await health.set("", status.SERVING if serving else status.NOT_SERVING)
        interceptor: Any = _token_interceptor_class()(self._config.token)  # type: ignore[call-arg]
        server = grpc.aio.server(interceptors=[interceptor], options=SERVER_OPTIONS)
        server.add_generic_rpc_handlers((self._dispatcher.generic_handler(),))
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        address = f"unix:{self._config.hooks_socket}"
        try:
            bound = server.add_insecure_port(address)
        except RuntimeError:  # how grpc.aio reports a failed bind (its text says no more)
            bound = 0
        if bound == 0:
            raise OSError(f"cannot listen on {address}")
        await server.start()
        self._server, self._health = server, health
        log.debug("serving gRPC on %s", self._config.hooks_socket)

    async def set_serving(self) -> None:
        """Health answers SERVING from now on."""
        from grpc_health.v1 import health_pb2

        if self._health is not None:
            await self._health.set("", health_pb2.HealthCheckResponse.SERVING)

    async def lane_start(self, body: bytes) -> bytes:
        """``START_GRPC_METHOD`` as the lane serves it."""
        try:
            await self.start(serving=True)
        except OSError as e:
            raise LaneError(Code.UNAVAILABLE, f"the plugin cannot serve gRPC: {e}") from None
        return b""

    async def stop(self, grace: float) -> None:
        """Health answers NOT_SERVING, then calls in flight get ``grace`` seconds."""
        starting = self._starting
        if starting is not None and not starting.done():
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        if self._server is not None:
            await self._server.stop(grace)


def _lane_handler(hooks: LaneHandler, grpc_side: GrpcSide) -> LaneHandler:
    """The hooks connection's handler: the hooks, and the runtime's own ``START_GRPC_METHOD``.

    A plain function that hands back the hook's awaitable, so a hook pays one comparison
    here and no extra coroutine.
    """

    def handle(method: str, body: bytes) -> Awaitable[bytes]:
        if method == START_GRPC_METHOD:
            return grpc_side.lane_start(body)
        return hooks(method, body)

    return handle


def _remove_signal(loop: asyncio.AbstractEventLoop, sig: int) -> None:
    loop.remove_signal_handler(sig)


def _contract_services() -> tuple[ServiceDescriptor, ServiceDescriptor]:
    return _contract.api_service(), _contract.hooks_service()


def _watch_parent(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> Callable[[], None]:
    """Set ``stop`` when the parent process exits; returns an undo function.

    The bridge also sets PR_SET_PDEATHSIG, but that signal is lost if the bridge thread
    that spawned us exits first; a pidfd on the parent is exact and costs nothing.
    """
    ppid = os.getppid()
    pidfd_open = getattr(os, "pidfd_open", None)
    if ppid <= 1 or pidfd_open is None:
        return lambda: None
    try:
        fd = pidfd_open(ppid)
    except OSError:
        return lambda: None

    def gone() -> None:
        log.info("the bridge (pid %d) exited; shutting down", ppid)
        stop.set()

    loop.add_reader(fd, gone)

    def undo() -> None:
        loop.remove_reader(fd)
        os.close(fd)

    return undo


def _stop_when_closed(lane: LaneConnection, stop: asyncio.Event) -> asyncio.Task[None]:
    """Sets ``stop`` when the bridge ends the lane: no hook can reach the plugin after it."""

    async def watch() -> None:
        await lane.wait_closed()
        if not stop.is_set():
            log.info("the bridge closed the lane (%s); shutting down", lane.close_error)
            stop.set()

    return asyncio.get_running_loop().create_task(watch())


async def serve_plugin(
    plugin_cls: type[Plugin],
    config: RuntimeConfig,
    *,
    api_service: ServiceDescriptor | None = None,
    hooks_service: ServiceDescriptor | None = None,
    stop: asyncio.Event | None = None,
    ready: Callable[[Plugin], None] | None = None,
    handle_signals: bool = True,
    watch_parent: bool = True,
) -> None:
    """Serve ``plugin_cls`` until ``stop`` is set (or a signal / the parent's exit).

    ``api_service``/``hooks_service`` default to the mmplug contract; tests pass others.
    ``ready`` is called with the plugin instance once it is ready for hooks (its lane
    connection open, or without the lane, health SERVING).
    """
    if api_service is None or hooks_service is None:
        default_api, default_hooks = _contract_services()
        api_service = api_service or default_api
        hooks_service = hooks_service or default_hooks
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    sync_cls: type[SyncClient]
    async_cls: type[AsyncClient]
    # The contract gets the typed, generated clients; any other service (tests) untyped ones.
    if api_service.full_name == f"{_contract.PACKAGE}.{PluginAPIClient._contract}":
        sync_cls, async_cls = PluginAPIClient, AsyncPluginAPIClient
    else:
        sync_cls, async_cls = make_client_classes(api_service)
    sync_ch = sync_channel(config.api_socket)
    aio_ch = aio_channel(config.api_socket)
    lane_sync, lane_async = None, None
    if config.lane_socket and config.transport != "grpc":
        lane_sync = LaneSyncUnary(config.lane_socket, config.token)
        lane_async = LaneAsyncUnary()
    api = sync_cls(sync_ch, token=config.token, plugin_id=config.plugin_id, unary=lane_sync)
    aapi = async_cls(aio_ch, token=config.token, plugin_id=config.plugin_id, unary=lane_async)
    undo: list[Callable[[], object]] = []
    grpc_side: GrpcSide | None = None
    dispatcher: HookDispatcher | None = None
    try:
        _set_current_config(config)
        plugin = plugin_cls.create(api=api, aapi=aapi, plugin_id=config.plugin_id, config=config)
        dispatcher = HookDispatcher(plugin, hooks_service)
        grpc_side = GrpcSide(config, dispatcher)
        if lane_async is None:
            # Every hook comes over gRPC, and the bridge polls health until SERVING.
            await grpc_side.start(serving=False)
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
                undo.append(functools.partial(_remove_signal, loop, sig))
        if watch_parent:
            undo.append(_watch_parent(loop, stop))
        if lane_async is not None:
            # Plain def hooks first, on a connection of worker threads (the bridge routes them
            # there once named); the asyncio one serves every other hook.
            threaded = await _serve_threaded_hooks(config, dispatcher)
            if threaded is not None:
                undo.append(threaded.close)
            # Its HELLO tells the bridge the plugin is ready for hooks; gRPC waits for the
            # bridge's START_GRPC_METHOD.
            lane = await lane_connect(
                config.lane_socket,
                config.token,
                handler=_lane_handler(dispatcher.lane_handler(), grpc_side),
            )
            lane_async.connected(lane)
            undo.append(_stop_when_closed(lane, stop).cancel)
        else:
            await grpc_side.set_serving()
        log.debug("serving hooks (%s)", "lane" if lane_async is not None else "gRPC")
        if ready is not None:
            ready(plugin)
        await stop.wait()
    finally:
        for fn in reversed(undo):
            fn()
        if grpc_side is not None:
            await grpc_side.stop(SHUTDOWN_GRACE_SECONDS)
        if dispatcher is not None:
            dispatcher.close()
        # Lines still queued for the server's log go out before the channel closes.
        await asyncio.to_thread(mmlogging.close_server_log)
        await aapi.close()
        api.close()


async def _serve_threaded_hooks(
    config: RuntimeConfig, dispatcher: HookDispatcher
) -> ThreadedLaneServer | None:
    """The lane connection whose threads serve the plugin's plain ``def`` hooks, or None when
    it has none, or when the bridge refuses such a connection (an older bridge): the
    asyncio connection then serves them too, through its worker threads."""
    methods, serve = dispatcher.lane_threaded()
    if not methods:
        return None
    try:
        return await asyncio.to_thread(
            ThreadedLaneServer.start,
            config.lane_socket,
            config.token,
            methods,
            serve,
            dispatcher.gate,
        )
    except LaneError as e:
        log.warning(
            "plain def hooks are served through the event loop's lane connection: the bridge "
            "refused a connection of their own (%s)",
            e,
        )
        return None


# The configuration of the plugin this process serves (load_runtime_config answers it once the
# token has left the environment).
_current_config: RuntimeConfig | None = None


def _set_current_config(config: RuntimeConfig | None) -> None:
    global _current_config
    _current_config = config


def current_config() -> RuntimeConfig | None:
    """The configuration ``serve_plugin`` runs with, or None outside a running plugin."""
    return _current_config


def run_plugin(plugin_cls: type[Plugin]) -> None:
    """Run ``plugin_cls`` as the plugin process (the bridge's child). Does not return."""
    mmlogging.install(_log_level())
    # stdout is not ours (docs/internals.md §8): send stray print() output to stderr instead.
    sys.stdout = sys.stderr
    try:
        config = RuntimeConfig.from_env()
    except ConfigError as e:
        log.error("%s", e)
        sys.exit(2)
    if not (isinstance(plugin_cls, type) and issubclass(plugin_cls, Plugin)):
        log.error("run_plugin expects a Plugin subclass, got %r", plugin_cls)
        sys.exit(2)
    try:
        asyncio.run(serve_plugin(plugin_cls, config))
    except KeyboardInterrupt:
        pass
    except Exception as e:
        log.error("plugin %s stopped: %s", config.plugin_id, e, exc_info=e)
        sys.exit(1)
    sys.exit(0)


def _log_level() -> int:
    # The bridge forwards every line and the server filters by its own level; DEBUG is
    # opt-in to keep the pipe quiet.
    name = os.environ.get("MMPLUG_LOG_LEVEL", "INFO").upper()
    level = logging.getLevelName(name)
    return level if isinstance(level, int) else logging.INFO
