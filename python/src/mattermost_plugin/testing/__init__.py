"""Test kit for plugins written with ``mattermost_plugin``: no server, no network, no sleeps.

Installing mmplug registers a pytest plugin (entry point ``pytest11``) with two fixtures:

``mm_fake``
    A fresh ``FakeMattermost``: an in-memory Mattermost server. ``mm_fake.api`` and
    ``mm_fake.aapi`` are the SDK's own typed clients (``PluginAPIClient``,
    ``AsyncPluginAPIClient``) with only the gRPC hop replaced, so arguments, errors and
    results behave exactly as in production. It models users, teams, channels (direct ones
    too), members, posts (ephemeral ones recorded in ``ephemeral_posts``), KV (with
    compare-and-set and expiry on ``mm_fake.clock``, which only moves on ``advance()``),
    configuration (``mm_fake.plugin_settings``), bots, slash commands, logs
    (``mm_fake.logs``) and the server version. Every call is recorded: ``mm_fake.calls``,
    ``mm_fake.calls_to("KVSet")``. Any API method, modelled or not, can be answered by a
    handler: ``mm_fake.on("GetTeamIcon", lambda request: b"...")``; raise a
    ``PluginAPIError`` in it to make the call fail. An unmodelled method nobody stubbed
    raises ``UnmodelledMethodError`` saying how to stub it.

``mm_plugin``
    A factory: ``handle = mm_plugin(MyPlugin, settings={...})`` instantiates the plugin with
    clients bound to ``mm_fake`` and activates it as the bridge does
    (``OnConfigurationChange``, then ``OnActivate``). ``handle.fire(HookName.X, ...)`` calls
    a hook through the runtime's real dispatch path and returns what it answered;
    ``handle.http("GET", "/path?q=1", user_id=...)`` sends a request to ``ServeHTTP``
    (``serve_asgi``/``serve_wsgi`` apps included) and returns an ``HTTPResponse``
    (``status``, ``headers``, ``body``, ``chunks``, ``json()``); ``handle.open_http`` streams
    the response as it is written. ``handle.advance(seconds)`` moves the fake clock and runs
    the plugin's jobs that fall due on the way; ``handle.run_command``, ``handle.click``,
    ``handle.action``, ``handle.submit_dialog`` and ``handle.cancel_dialog`` fire slash
    commands, buttons and dialogs as the server does. Plugins are deactivated when the test
    ends.

Outside pytest: ``fake = FakeMattermost(); with fake.start(MyPlugin) as handle: ...``.
``load_plugin_module(path, name)`` imports a plugin's entry file as the bridge does (its
directory on ``sys.path``) under a name of your choosing, for test suites that hold several
plugins whose entry files are all called ``plugin.py``. See docs/testing.md.
"""

from ..__main__ import load_module as load_plugin_module
from ._fake import (
    Call,
    FakeClock,
    FakeJobClock,
    FakeMattermost,
    Handler,
    LogEntry,
    UnmodelledMethodError,
    new_id,
)
from ._harness import (
    ActivationError,
    FileUploadResult,
    HookError,
    HookNotImplementedError,
    HTTPResponse,
    HTTPStream,
    InteractionError,
    PluginHandle,
    StartPlugin,
)
from ._models import direct_channel_name

__all__ = [
    "ActivationError",
    "Call",
    "FakeClock",
    "FakeJobClock",
    "FakeMattermost",
    "FileUploadResult",
    "HTTPResponse",
    "HTTPStream",
    "Handler",
    "HookError",
    "HookNotImplementedError",
    "InteractionError",
    "LogEntry",
    "PluginHandle",
    "StartPlugin",
    "UnmodelledMethodError",
    "direct_channel_name",
    "load_plugin_module",
    "new_id",
]
