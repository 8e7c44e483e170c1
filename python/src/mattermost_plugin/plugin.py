"""The ``Plugin`` base class plugin authors subclass."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar, cast

from ._generated.api import AsyncPluginAPIClient, PluginAPIClient
from .client import AsyncClient, SyncClient
from .hooks import HOOK_ATTR, HookName, HookRegistrationError

__all__ = ["Plugin"]


class Plugin:
    """Base class of a Mattermost plugin written in Python.

    Subclasses mark handler methods with ``@hook``; ``__init_subclass__`` collects them
    into a per-class registry (inherited registrations included, a subclass may override
    a base handler by registering the same hook). ``self.api`` (sync) and ``self.aapi``
    (async) call the server; ``self.logger`` writes to the server log.

    The runtime binds the clients *before* ``__init__`` runs, so a subclass ``__init__``
    (taking no arguments) can already use ``self.api``.
    """

    # HookName -> attribute name of the handler on the class.
    _hook_registry: ClassVar[dict[HookName, str]] = {}

    # The runtime binds the generated clients of the contract (PluginAPIClient and its async
    # twin); tests may bind untyped clients of another service (make_client_classes).
    _api: SyncClient | None = None
    _aapi: AsyncClient | None = None
    _plugin_id: str = ""
    _logger: logging.Logger | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        registry: dict[HookName, str] = {}
        # Base classes first, so a subclass' own registration replaces an inherited one.
        for base in reversed(cls.__mro__[1:]):
            registry.update(getattr(base, "_hook_registry", {}))
        own: dict[HookName, str] = {}
        for attr, value in vars(cls).items():
            fn = value.__func__ if isinstance(value, staticmethod | classmethod) else value
            name = getattr(fn, HOOK_ATTR, None)
            if name is None:
                continue
            if name in own:
                raise HookRegistrationError(
                    f"{cls.__qualname__}: hook {name.value} is registered twice "
                    f"({own[name]} and {attr})"
                )
            own[name] = attr
        # An inherited handler overridden by a plain (undecorated) method of the same name
        # keeps its registration: getattr finds the override, as Python users expect.
        registry.update(own)
        cls._hook_registry = registry

    def __init__(
        self,
        *,
        api: SyncClient | None = None,
        aapi: AsyncClient | None = None,
        plugin_id: str | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        if api is not None:
            self._api = api
        if aapi is not None:
            self._aapi = aapi
        if plugin_id is not None:
            self._plugin_id = plugin_id
        if logger is not None:
            self._logger = logger

    def _bind(
        self,
        *,
        api: SyncClient | None,
        aapi: AsyncClient | None,
        plugin_id: str,
        logger: logging.Logger | None = None,
    ) -> None:
        self._api, self._aapi, self._plugin_id = api, aapi, plugin_id
        if logger is not None:
            self._logger = logger

    @classmethod
    def create(
        cls,
        *,
        api: SyncClient | None,
        aapi: AsyncClient | None,
        plugin_id: str,
        logger: logging.Logger | None = None,
    ) -> Plugin:
        """Instantiate with the clients bound before the subclass ``__init__`` runs."""
        obj = cls.__new__(cls)
        obj._bind(api=api, aapi=aapi, plugin_id=plugin_id, logger=logger)
        # Zero-argument by contract; the clients are already bound when it runs.
        obj.__init__()  # type: ignore[misc]
        return obj

    @property
    def api(self) -> PluginAPIClient:
        """The blocking API client (call it from sync handlers; they run in threads)."""
        if self._api is None:
            raise RuntimeError("self.api is not connected: the plugin is not running")
        # Typed as the contract's client, which is what a running plugin has bound.
        return cast(PluginAPIClient, self._api)

    @property
    def aapi(self) -> AsyncPluginAPIClient:
        """The ``async def`` API client (await it from async handlers)."""
        if self._aapi is None:
            raise RuntimeError("self.aapi is not connected: the plugin is not running")
        return cast(AsyncPluginAPIClient, self._aapi)

    @property
    def plugin_id(self) -> str:
        return self._plugin_id

    @property
    def logger(self) -> logging.Logger:
        """A stdlib logger whose records reach the Mattermost server log."""
        if self._logger is None:
            suffix = self._plugin_id or type(self).__name__
            self._logger = logging.getLogger(f"mattermost_plugin.plugin.{suffix}")
        return self._logger

    @classmethod
    def implemented_hooks(cls) -> list[str]:
        """Registered hook names in Go spelling, in ``HookName`` declaration order."""
        return [h.value for h in HookName if h in cls._hook_registry]

    @classmethod
    def has_hook(cls, name: HookName | str) -> bool:
        try:
            return HookName(name) in cls._hook_registry
        except ValueError:
            return False

    def hook_handler(self, name: HookName | str) -> Callable[..., Any] | None:
        """The bound handler for ``name``, or None when the plugin does not implement it."""
        try:
            attr = self._hook_registry.get(HookName(name))
        except ValueError:
            return None
        handler: Callable[..., Any] | None = None if attr is None else getattr(self, attr)
        return handler
