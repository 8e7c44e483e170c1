"""The ``Plugin`` base class plugin authors subclass."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from . import _compat, _upstream_client
from ._gate import DEFAULT_MAX_SYNC_HANDLERS
from ._generated.api import AsyncPluginAPIClient, PluginAPIClient
from ._marks import COMMAND_ATTR, INTERACTIVE_ATTR, JOB_ATTR
from .client import AsyncClient, SyncClient
from .hooks import HOOK_ATTR, HookName, HookRegistrationError
from .kv import AsyncKVStore, KVStore
from .settings import Settings, find_settings

if TYPE_CHECKING:
    # Imported where a plugin uses them (commands, interactive routes, jobs): one that does
    # not never loads them (activation time, idle memory).
    from .commands import CommandRouter
    from .interactive import InteractiveRoutes
    from .jobs import AsyncJobs, JobClock, Jobs, JobScheduler, JobTable
    from .runtime import RuntimeConfig

__all__ = ["HookRunner", "HookStep", "Plugin"]

P = TypeVar("P", bound="Plugin")

# Runs one handler the way the dispatcher does (async on the loop, sync in a worker thread).
HookRunner = Callable[..., Awaitable[Any]]
# An SDK feature's part in a hook: step(plugin, run, then, *hook_args), where ``then`` calls
# the rest of the chain (later steps, then the author's handler) or is None when nothing
# follows.
HookStep = Callable[..., Awaitable[Any]]


# What the SDK's decorators (@hook, @command, @action/@dialog, @every/@one_shot) mark.
_HANDLER_MARKS = (HOOK_ATTR, COMMAND_ATTR, INTERACTIVE_ATTR, JOB_ATTR)
_FEATURE_MARKS = (COMMAND_ATTR, INTERACTIVE_ATTR, JOB_ATTR)


def _marks_of(cls: type) -> set[str]:
    """The feature marks (commands, interactive routes, jobs) on any attribute of ``cls`` or
    its bases: the features whose modules its ``__init_subclass__`` must load."""
    found: set[str] = set()
    for klass in cls.__mro__:
        for value in vars(klass).values():
            fn = value.__func__ if isinstance(value, staticmethod | classmethod) else value
            for mark in _FEATURE_MARKS:
                if mark not in found and (hasattr(fn, mark) or hasattr(value, mark)):
                    found.add(mark)
    return found


class Plugin:
    """Base class of a Mattermost plugin written in Python.

    Subclasses mark handler methods with ``@hook``; ``__init_subclass__`` collects them
    into a per-class registry (inherited registrations included, a subclass may override
    a base handler by registering the same hook). ``self.api`` (sync) and ``self.aapi``
    (async) call the server; ``self.logger`` writes to the server log.

    The runtime binds the clients *before* ``__init__`` runs, so a subclass ``__init__``
    (taking no arguments) can already use ``self.api``.

    The constructor also takes the arguments of Mattermost's own SDK's ``Plugin``, in its
    order: ``Plugin(api=None, config=None, logger=None)`` (a subclass ``__init__`` written
    for it, taking ``api`` and ``config``, gets them from the runtime too), and its helpers
    are here: ``config`` (the ``RuntimeConfig``), ``invoke_hook`` and ``get_hook_handler``.
    ``api`` and ``logger`` can be assigned (a ``MagicMock`` in a unit test).
    """

    #: How many synchronous (``def``) handlers may run at once; more wait their turn (within
    #: their hook's time limit). A handler blocked in an API call does not count. Async
    #: handlers are not limited: they take no thread. See docs/guide.md, "Concurrency".
    max_sync_handlers: ClassVar[int] = DEFAULT_MAX_SYNC_HANDLERS

    # HookName -> attribute name of the handler on the class.
    _hook_registry: ClassVar[dict[HookName, str]] = {}
    # SDK features taking part in hooks (see _hook_chain): typed settings, slash commands.
    _settings_descriptor: ClassVar[Settings[Any] | None] = None
    _command_router: ClassVar[CommandRouter | None] = None
    _job_table: ClassVar[JobTable | None] = None
    # The running job scheduler (jobs.py); the test kit sets the clock and manual mode.
    _job_scheduler: JobScheduler | None = None
    _job_clock: JobClock | None = None
    _jobs_manual: bool = False
    _interactive: ClassVar[InteractiveRoutes | None] = None
    # How the dispatcher runs handlers (captured at OnActivate): @action/@dialog handlers
    # are called from within ServeHTTP, which is not given it.
    _handler_runner: HookRunner | None = None

    # The runtime binds the generated clients of the contract (PluginAPIClient and its async
    # twin); tests may bind untyped clients of another service (make_client_classes).
    _api: SyncClient | None = None
    _aapi: AsyncClient | None = None
    _plugin_id: str = ""
    _logger: logging.Logger | None = None
    _config: Any = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        registry: dict[HookName, str] = {}
        # Base classes first, so a subclass' own registration replaces an inherited one.
        for base in reversed(cls.__mro__[1:]):
            registry.update(getattr(base, "_hook_registry", {}))
        own: dict[HookName, str] = {}
        for attr, value in vars(cls).items():
            fn = value.__func__ if isinstance(value, staticmethod | classmethod) else value
            if attr in vars(Plugin) and any(hasattr(fn, m) for m in _HANDLER_MARKS):
                # Else the SDK calls the handler in place of its own member (`create`,
                # `jobs`, …) and fails far from here with a confusing TypeError.
                raise HookRegistrationError(
                    f"{cls.__qualname__}.{attr}: a handler may not be named {attr}, which "
                    f"is the SDK's Plugin.{attr}; give the method another name"
                )
            name = getattr(fn, HOOK_ATTR, None)
            if name is None:
                continue
            if getattr(fn, COMMAND_ATTR, None) is not None:
                raise HookRegistrationError(
                    f"{cls.__qualname__}.{attr} is both a @hook and a @command handler; "
                    f"one function handles one hook or command"
                )
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
        cls._settings_descriptor = find_settings(cls)
        marks = _marks_of(cls)
        cls._command_router = None
        cls._job_table = None
        cls._interactive = None
        if COMMAND_ATTR in marks:
            from .commands import CommandRouter

            cls._command_router = CommandRouter.collect(cls)
        if JOB_ATTR in marks:
            from .jobs import JobTable

            cls._job_table = JobTable.collect(cls)
        if INTERACTIVE_ATTR in marks:
            from .interactive import InteractiveRoutes

            cls._interactive = InteractiveRoutes.collect(cls)

    def __init__(
        self,
        api: SyncClient | None = None,
        config: RuntimeConfig | None = None,
        logger: logging.Logger | None = None,
        *,
        aapi: AsyncClient | None = None,
        plugin_id: str | None = None,
    ) -> None:
        if api is not None:
            self._api = api
        if aapi is not None:
            self._aapi = aapi
        if config is not None:
            self._config = config
            if plugin_id is None and not self._plugin_id:
                plugin_id = getattr(config, "plugin_id", None) or None
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
        config: RuntimeConfig | None = None,
    ) -> None:
        self._api, self._aapi, self._plugin_id = api, aapi, plugin_id
        if logger is not None:
            self._logger = logger
        if config is not None:
            self._config = config

    @classmethod
    def create(
        cls: type[P],
        *,
        api: SyncClient | None,
        aapi: AsyncClient | None,
        plugin_id: str,
        logger: logging.Logger | None = None,
        config: RuntimeConfig | None = None,
    ) -> P:
        """Instantiate with the clients bound before the subclass ``__init__`` runs.

        A subclass ``__init__`` takes no arguments, or (written for Mattermost's own SDK,
        whose runtime calls ``cls(api=..., config=...)``) the ``api`` and ``config`` it names.
        """
        obj = cls.__new__(cls)
        obj._bind(api=api, aapi=aapi, plugin_id=plugin_id, logger=logger, config=config)
        # Clients the plugin's code builds itself (PluginAPIClient()) share these.
        _upstream_client.register_running(api, aapi)
        obj.__init__(**_init_arguments(cls, api=api, config=config))  # type: ignore[misc]
        return obj

    @property
    def api(self) -> PluginAPIClient:
        """The blocking API client (call it from sync handlers; they run in threads)."""
        if self._api is None:
            raise RuntimeError("self.api is not connected: the plugin is not running")
        # Typed as the contract's client, which is what a running plugin has bound.
        return cast(PluginAPIClient, self._api)

    @api.setter
    def api(self, client: Any) -> None:
        # Tests replace the client (a fake, a MagicMock), as Mattermost's own guide shows.
        self._api = client

    @property
    def config(self) -> Any:
        """The launch configuration (``RuntimeConfig``, as in Mattermost's own SDK); None
        outside a running plugin. A plugin may assign its own value to ``self.config`` (many
        keep their settings there): from then on it reads that value."""
        return self._config

    @config.setter
    def config(self, value: Any) -> None:
        self._config = value

    @property
    def aapi(self) -> AsyncPluginAPIClient:
        """The ``async def`` API client (await it from async handlers)."""
        if self._aapi is None:
            raise RuntimeError("self.aapi is not connected: the plugin is not running")
        return cast(AsyncPluginAPIClient, self._aapi)

    @property
    def kv_store(self) -> KVStore:
        """JSON helpers over the KV store, blocking (see ``mattermost_plugin.kv``)."""
        return KVStore(self.api)

    @property
    def akv_store(self) -> AsyncKVStore:
        """JSON helpers over the KV store for async handlers (``await self.akv_store.get(k)``)."""
        return AsyncKVStore(self.aapi)

    @property
    def jobs(self) -> Jobs:
        """Schedule, cancel and list one-shot jobs, blocking (see ``mattermost_plugin.jobs``)."""
        from .jobs import Jobs

        return Jobs(self)

    @property
    def ajobs(self) -> AsyncJobs:
        """``self.jobs`` for async handlers (``await self.ajobs.schedule_once(...)``)."""
        from .jobs import AsyncJobs

        return AsyncJobs(self)

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

    @logger.setter
    def logger(self, logger: Any) -> None:
        self._logger = logger

    @classmethod
    def _sdk_steps(cls, name: HookName) -> list[HookStep]:
        """The SDK's steps in hook ``name``, in the order they run (before the handler)."""
        steps: list[HookStep] = []
        settings, router = cls._settings_descriptor, cls._command_router
        if settings is not None:
            if name is HookName.OnConfigurationChange:
                steps.append(settings.on_configuration_change)
            elif name is HookName.OnActivate:
                steps.append(settings.on_activate)
        if router is not None:
            if name is HookName.OnActivate:
                steps.append(router.on_activate)
            elif name is HookName.ExecuteCommand:
                steps.append(router.execute)
        if cls._interactive is not None and name is HookName.OnActivate:
            from .interactive import on_activate as interactive_on_activate

            steps.append(interactive_on_activate)
        if cls._job_table is not None:
            from .jobs import on_activate as jobs_on_activate
            from .jobs import on_deactivate as jobs_on_deactivate

            # Last in OnActivate: jobs start once the plugin's own handler succeeded.
            if name is HookName.OnActivate:
                steps.append(jobs_on_activate)
            elif name is HookName.OnDeactivate:
                steps.append(jobs_on_deactivate)
        return steps

    @classmethod
    def implemented_hooks(cls) -> list[str]:
        """Hooks the server must call, in Go spelling and ``HookName`` declaration order.

        The registered handlers, plus the hooks SDK features need (typed settings reload on
        OnConfigurationChange; declared commands register on OnActivate and route
        ExecuteCommand) even when the class has no handler of its own for them.
        """
        return [h.value for h in HookName if cls.has_hook(h)]

    @classmethod
    def has_hook(cls, name: HookName | str) -> bool:
        try:
            hook_name = HookName(name)
        except ValueError:
            return False
        if hook_name is HookName.ServeHTTP and cls._interactive is not None:
            return True  # @action and @dialog requests arrive through ServeHTTP
        return hook_name in cls._hook_registry or bool(cls._sdk_steps(hook_name))

    def _hook_chain(
        self, name: HookName | str, run: HookRunner
    ) -> Callable[..., Awaitable[Any]] | None:
        """What serving hook ``name`` runs: the SDK steps, then the author's handler.

        ``run(handler, *args)`` runs the author's handler (the dispatcher passes its own, so
        sync handlers get a worker thread). None when the plugin does not implement the hook.
        """
        try:
            hook_name = HookName(name)
        except ValueError:
            return None
        handler = self.hook_handler(hook_name)
        steps = self._sdk_steps(hook_name)
        if handler is None and not steps:
            return None
        chain: Callable[..., Awaitable[Any]] | None = None
        if handler is not None:
            bound_handler = handler

            async def call_handler(*args: Any) -> Any:
                # Return shapes of Mattermost's own SDK become ours (identity for ours).
                return _compat.hook_result(hook_name, await run(bound_handler, *args), args)

            chain = call_handler
        for step in reversed(steps):
            chain = _link(step, self, run, chain)
        return chain

    def hook_handler(self, name: HookName | str) -> Callable[..., Any] | None:
        """The bound handler for ``name``, or None when the plugin does not implement it.

        HTTP handlers written for Mattermost's own SDK come adapted (``_compat.http_handler``):
        a handler of its guide's form ``(context, request)`` returning a dict answers through
        the writer, and an async handler can read ``request.body`` as it could there.
        """
        handler = self._own_handler(name)
        if handler is not None and name in (HookName.ServeHTTP, HookName.ServeMetrics):
            handler = _compat.http_handler(handler)
        if name == HookName.ServeHTTP and self._interactive is not None:
            return self._interactive.http_handler(self, handler)
        return handler

    def _own_handler(self, name: HookName | str) -> Callable[..., Any] | None:
        try:
            attr = self._hook_registry.get(HookName(name))
        except ValueError:
            return None
        handler: Callable[..., Any] | None = None if attr is None else getattr(self, attr)
        return handler

    def get_hook_handler(self, name: HookName | str) -> Callable[..., Any] | None:
        """Mattermost's own SDK's name for the bound handler of ``name`` (None if absent)."""
        return self._own_handler(name)

    def invoke_hook(self, name: HookName | str, *args: Any, **kwargs: Any) -> Any:
        """Call the handler of ``name`` directly (None when the plugin has none), as
        Mattermost's own SDK does: exceptions propagate, an async handler returns its
        coroutine, and no SDK feature (settings, commands) takes part. Tests use it."""
        handler = self._own_handler(name)
        if handler is None:
            return None
        return handler(*args, **kwargs)


def _init_arguments(cls: type[Plugin], *, api: Any, config: Any) -> dict[str, Any]:
    """What ``create`` passes to ``cls.__init__``: nothing for a zero-argument ``__init__``;
    ``api``/``config`` to one written for Mattermost's own SDK that names them (or ``**kw``)."""
    init = cls.__init__
    if init is Plugin.__init__:
        return {}
    try:
        params = inspect.signature(init).parameters
    except (TypeError, ValueError):
        return {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = {"api": api, "config": config}
    return {
        k: v
        for k, v in named.items()
        if takes_any
        or (
            k in params
            and params[k].kind
            in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        )
    }


def _link(
    step: HookStep,
    plugin: Plugin,
    run: HookRunner,
    then: Callable[..., Awaitable[Any]] | None,
) -> Callable[..., Awaitable[Any]]:
    async def linked(*args: Any) -> Any:
        return await step(plugin, run, then, *args)

    return linked
