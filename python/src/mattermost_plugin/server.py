"""``mattermost_plugin.server``: the entry points of Mattermost's own Python SDK, run by mmplug.

A plugin written for that SDK ends with::

    if __name__ == "__main__":
        from mattermost_plugin.server import run_plugin
        run_plugin(MyPlugin)

Under mmplug the bridge starts ``python -m mattermost_plugin plugin.py``, which imports the
file (so that block does not run) and serves its ``Plugin`` subclass; run as a script by hand,
the block calls the same ``run_plugin``. Either way the plugin is served over the bridge's
private socket, not over TCP with a go-plugin handshake line: the bridge speaks to the server.
See docs/upstream.md for what differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .plugin import Plugin
from .runtime import ConfigError, RuntimeConfig, run_plugin
from .runtime import serve_plugin as _serve_plugin

__all__ = [
    "DEFAULT_SERVER_OPTIONS",
    "GO_PLUGIN_APP_PROTOCOL_VERSION",
    "GO_PLUGIN_CORE_PROTOCOL_VERSION",
    "PluginServer",
    "format_handshake_line",
    "run_plugin",
    "serve_plugin",
]

# Mattermost's own SDK's gRPC server options; mmplug's server (runtime.SERVER_OPTIONS) allows
# larger messages and is what serves, whatever is passed as ``options``.
DEFAULT_SERVER_OPTIONS: Sequence[tuple[str, int]] = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]

# go-plugin's handshake versions. Under mmplug the bridge writes the handshake to the server;
# the Python process never does.
GO_PLUGIN_CORE_PROTOCOL_VERSION = "1"
GO_PLUGIN_APP_PROTOCOL_VERSION = "1"


def format_handshake_line(port: int) -> str:
    """The go-plugin handshake line a plugin serving gRPC on ``127.0.0.1:port`` would print.

    Kept for code that builds it; mmplug's Python process prints no handshake (the bridge
    answers the server's handshake itself, over its own socket).
    """
    return (
        f"{GO_PLUGIN_CORE_PROTOCOL_VERSION}|{GO_PLUGIN_APP_PROTOCOL_VERSION}"
        f"|tcp|127.0.0.1:{port}|grpc"
    )


def _launch_config(config: RuntimeConfig | None) -> RuntimeConfig:
    # A configuration without the bridge's sockets (built by hand, as the other SDK allows)
    # cannot serve: the launch environment has the real one.
    if config is not None and config.api_socket and config.hooks_socket and config.token:
        return config
    try:
        return RuntimeConfig.from_env()
    except ConfigError:
        if config is None:
            raise
        raise ConfigError(
            f"{config!r} has no bridge sockets, and this process was not started by the "
            "mmplug bridge (MMPLUG_* environment): mmplug plugins are served by the bridge; "
            "run them with `mmplug dev` or bundle them with `mmplug bundle`"
        ) from None


async def serve_plugin(
    plugin_class: type[Plugin],
    config: RuntimeConfig | None = None,
    options: Sequence[tuple[str, Any]] | None = None,
    **kwargs: Any,
) -> None:
    """Serve ``plugin_class`` until the bridge stops it (the other SDK's signature).

    ``config`` defaults to the launch environment's; ``options`` (gRPC server options) is
    accepted and not used: mmplug's server has its own limits. Other keyword arguments go to
    ``mattermost_plugin.runtime.serve_plugin``.
    """
    await _serve_plugin(plugin_class, _launch_config(config), **kwargs)


class PluginServer:
    """Mattermost's own SDK's server object, for code that drives one by hand.

    ``start()`` serves ``plugin_instance``'s class on the bridge's socket (it needs the launch
    environment of the mmplug bridge) and returns 0: there is no TCP port. ``stop()`` ends it;
    ``wait_for_termination()`` waits for the end. Prefer ``run_plugin``.
    """

    def __init__(
        self,
        plugin_instance: Plugin,
        config: RuntimeConfig | None = None,
        options: Sequence[tuple[str, Any]] | None = None,
    ) -> None:
        self.plugin = plugin_instance
        self.config = config
        self.options = options or DEFAULT_SERVER_OPTIONS
        self._task: Any = None
        self._stop: Any = None

    @property
    def port(self) -> int | None:
        """Always None: the plugin is served on a unix socket, not a TCP port."""
        return None

    async def start(self) -> int:
        import asyncio

        if self._task is not None:
            raise RuntimeError("Server is already started")
        config = _launch_config(self.config)
        self._stop = asyncio.Event()
        ready = asyncio.Event()
        instance = self.plugin

        class _Bound(type(instance)):  # type: ignore[misc]
            """Serves the given instance (the runtime instantiates classes)."""

        def create(**kw: Any) -> Plugin:
            instance._bind(
                api=kw["api"], aapi=kw["aapi"], plugin_id=kw["plugin_id"], config=kw["config"]
            )
            return instance

        _Bound.create = staticmethod(create)
        self._task = asyncio.get_running_loop().create_task(
            _serve_plugin(_Bound, config, stop=self._stop, ready=lambda _p: ready.set())
        )
        waiter = asyncio.ensure_future(ready.wait())
        await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            waiter.cancel()
            self._task.result()  # raises what stopped it
        return 0

    async def stop(self, grace_period: float = 5.0) -> None:
        if self._task is None:
            return
        self._stop.set()
        await self._task
        self._task = None

    async def wait_for_termination(self) -> None:
        if self._task is not None:
            await self._task
