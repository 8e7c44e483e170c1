"""Running a plugin against ``FakeMattermost``: activation, hooks, HTTP, uploads, shutdown.

A started plugin gets what the bridge gives it in production: the SDK's typed clients (here
over the fake's channels), its own event loop in its own thread (the plugin process's loop;
sync handlers run in worker threads, async ones on that loop), and hooks delivered through
the runtime's ``HookDispatcher`` (``_dispatch``), so argument conversion, return conventions
and error handling are the real ones; only gRPC is left out. Activation follows the bridge:
``Implemented``, then ``OnConfigurationChange`` (a failure is logged, as for Go plugins),
then ``OnActivate``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import json
import math
import threading
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from .. import _contract
from .._convert import get_field, set_field
from .._dispatch import HookDispatcher, HookNotImplemented, HookSpec
from .._generated.api import AsyncPluginAPIClient, PluginAPIClient
from ..errors import PluginAPIError, error_from_app_error, is_app_error_set
from ..hooks import HookName
from ..http import MAX_CHUNK, HTTPHeaders
from ..interactive import (
    ActionRequest,
    ActionResponse,
    DialogResponse,
    DialogSubmission,
    action_url,
    dialog_url,
)
from ..jobs import scheduler_of as jobs_scheduler_of
from ..plugin import Plugin
from ._fake import FakeJobClock, LogEntry
from ._transport import FakeAsyncChannel, FakeSyncChannel

if TYPE_CHECKING:
    from ._fake import FakeMattermost

__all__ = [
    "ActivationError",
    "FileUploadResult",
    "HTTPResponse",
    "HTTPStream",
    "HookError",
    "HookNotImplementedError",
    "InteractionError",
    "PluginHandle",
]

T = TypeVar("T")

# Guards against a hung plugin only (a deadlock shows up as a clear error instead of a stuck
# test run); nothing ever waits for it to elapse.
DEFAULT_TIMEOUT_SECONDS = 60.0

_HTTP_HOOKS = (HookName.ServeHTTP, HookName.ServeMetrics)
# advance() gives up after this many due moments on its way (a job due again at once).
MAX_JOB_STEPS = 100_000


class HookError(Exception):
    """A hook answered with an error: the handler raised, or returned something the hook's
    convention does not allow. ``app_error`` is the ``PluginAPIError`` the server would get
    (a ``PluginAPIError`` the handler raised keeps its class, id and status; any other
    exception is ``mmplug.python.hook_error`` with the traceback in ``detailed_error``).

    Under the bridge, a hook whose Go signature has an error result (``OnActivate``,
    ``ExecuteCommand``, ...) returns this error to the server; one without (e.g.
    ``MessageWillBePosted``) is logged and the server proceeds as if the hook changed
    nothing. Tests see both as this exception, so a failing handler never goes unnoticed.
    """

    def __init__(self, hook: str, app_error: PluginAPIError) -> None:
        self.hook = hook
        self.app_error = app_error
        detail = f"\n{app_error.detailed_error}" if app_error.detailed_error else ""
        super().__init__(f"hook {hook} failed: {app_error.message}{detail}")


class HookNotImplementedError(LookupError):
    """The plugin has no handler for the hook (the server would never call it)."""


class ActivationError(Exception):
    """``OnActivate`` failed (or raised); the server would not activate the plugin."""

    def __init__(self, plugin_id: str, cause: HookError) -> None:
        self.cause = cause
        self.app_error = cause.app_error
        super().__init__(f"plugin {plugin_id} failed to activate: {cause}")


class _Aborted(Exception):
    def __init__(self, code: Any, details: str) -> None:
        super().__init__(details)
        self.code = code


class _ServicerContext:
    """The one method the dispatcher uses on a gRPC servicer context."""

    async def abort(self, code: Any, details: str) -> None:
        raise _Aborted(code, details)


class _LoopThread:
    """An event loop in its own thread: the plugin process's loop."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        # Stopped: end what is still pending (lifespan tasks, abandoned streams) cleanly.
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError(
                "cannot wait for the plugin from its own event loop (an async handler "
                "calling the test handle); fire hooks from the test, not from the plugin"
            )
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float, what: str) -> T:
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(
                f"{what} did not finish within {timeout:g} s: the plugin looks stuck "
                "(a deadlock, or a handler waiting for something the test never sends)"
            ) from None

    async def arun(self, coro: Coroutine[Any, Any, T], limit: float, what: str) -> T:
        future = asyncio.wrap_future(self.submit(coro))
        try:
            return await asyncio.wait_for(future, limit)
        # Not the builtin TimeoutError: on Python 3.10 asyncio raises its own class.
        except asyncio.TimeoutError:
            raise TimeoutError(f"{what} did not finish within {limit:g} s") from None

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()


def _hook_name(hook: HookName | str) -> HookName:
    try:
        return HookName(hook)
    except ValueError:
        raise ValueError(
            f"{hook!r} is not a hook of plugin.Hooks (see mattermost_plugin.HookName)"
        ) from None


def _hook_error(hook: str, response: Message) -> HookError | None:
    err_field = response.DESCRIPTOR.fields_by_number.get(1)
    if err_field is None or err_field.message_type is None:
        return None
    if not response.HasField(err_field.name):
        return None
    err = getattr(response, err_field.name)
    if not is_app_error_set(err):
        return None
    return HookError(hook, error_from_app_error(err, method=hook))


@dataclass
class HTTPResponse:
    """What the plugin's HTTP handler answered.

    ``headers`` are keyed case-insensitively with lists of values; ``chunks`` are the body
    pieces in the order the handler wrote them (each ``write`` is one piece, or several of
    at most 64 KiB); ``flushes`` counts ``flush`` calls.
    """

    status: int
    headers: HTTPHeaders
    chunks: list[bytes] = field(default_factory=list)
    flushes: int = 0

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


class HTTPStream:
    """A response being received as the handler produces it (``PluginHandle.open_http``).

    ``status`` and ``headers`` wait for the handler to send them; ``next_chunk()`` waits
    for the next body piece (None at the end); iterating yields the pieces. ``close()``
    leaves before the end, as a client that disconnects: the handler is cancelled (ASGI apps
    see ``http.disconnect``; writes raise ``HTTPClientDisconnected``).
    """

    def __init__(self, handle: PluginHandle) -> None:
        self._handle = handle
        self._cond = threading.Condition()
        self._init: Any = None
        self._chunks: list[bytes] = []
        self._taken = 0
        self._flushes = 0
        self._done = False
        self._error: BaseException | None = None
        self._future: concurrent.futures.Future[None] | None = None
        self._body_queue: asyncio.Queue[bytes | None] | None = None
        self._body_ended = False

    def send_body(self, data: bytes | str) -> None:
        """Send the next piece of the request body (``open_http(..., stream_body=True)``);
        the handler can read it, and answer, before the rest is sent."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        self._body_put(bytes(data))

    def end_body(self) -> None:
        """End the request body (``stream_body=True``)."""
        self._body_put(None)

    def _body_put(self, item: bytes | None) -> None:
        if self._body_queue is None:
            raise RuntimeError("this request has no streamed body: open_http(stream_body=True)")
        if self._body_ended:
            raise RuntimeError("the request body already ended")
        self._body_ended = item is None
        self._handle._loop.loop.call_soon_threadsafe(self._body_queue.put_nowait, item)

    # Called on the plugin's loop.
    def _put(self, part: Any) -> None:
        kind = part.WhichOneof("part")
        with self._cond:
            if kind == "init":
                self._init = part.init
            elif kind == "body":
                self._chunks.append(bytes(part.body))
            elif kind == "flush":
                self._flushes += 1
            self._cond.notify_all()

    def _finish(self, error: BaseException | None) -> None:
        with self._cond:
            self._done = True
            self._error = error
            self._cond.notify_all()

    def _wait(self, ready: Any) -> None:
        timeout = self._handle.timeout
        with self._cond:
            if not self._cond.wait_for(lambda: ready() or self._done, timeout):
                raise TimeoutError(f"no response from the plugin within {timeout:g} s")
            if self._error is not None and not ready():
                raise self._error

    @property
    def status(self) -> int:
        self._wait(lambda: self._init is not None)
        return int(self._init.status_code)

    @property
    def headers(self) -> HTTPHeaders:
        self._wait(lambda: self._init is not None)
        headers = HTTPHeaders({k: list(v.values) for k, v in self._init.headers.items()})
        headers.lock()
        return headers

    @property
    def flushes(self) -> int:
        with self._cond:
            return self._flushes

    def next_chunk(self) -> bytes | None:
        """The next body piece as soon as the handler wrote it; None once the body ended."""
        self._wait(lambda: len(self._chunks) > self._taken)
        with self._cond:
            if len(self._chunks) > self._taken:
                self._taken += 1
                return self._chunks[self._taken - 1]
            return None

    async def anext_chunk(self) -> bytes | None:
        """``next_chunk`` for async tests (waits in a worker thread)."""
        return await asyncio.to_thread(self.next_chunk)

    def __iter__(self) -> Iterator[bytes]:
        while (chunk := self.next_chunk()) is not None:
            yield chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self.anext_chunk()) is not None:
            yield chunk

    def read_all(self) -> HTTPResponse:
        """Wait for the end of the response and return it whole."""
        self._wait(lambda: False)
        with self._cond:
            self._taken = len(self._chunks)
            return HTTPResponse(self.status, self.headers, list(self._chunks), self._flushes)

    @property
    def finished(self) -> bool:
        with self._cond:
            return self._done

    def close(self) -> None:
        """Disconnect: cancel the handler if the response is still under way, and wait
        until the plugin has unwound."""
        if self._future is not None and not self._future.done():
            self._future.cancel()
        with self._cond:
            self._cond.wait_for(lambda: self._done, self._handle.timeout)

    def __enter__(self) -> HTTPStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class FileUploadResult:
    """What a ``FileWillBeUploaded`` handler answered: the (possibly changed) info or None,
    the rejection reason ("" = accepted), and the replacement bytes it wrote (b"" when it
    wrote nothing, which keeps the original upload)."""

    file_info: Any
    rejection_reason: str
    replacement: bytes


class PluginHandle:
    """A plugin instance running against a ``FakeMattermost`` (``FakeMattermost.start``).

    ``fire`` / ``afire`` call a hook, ``http`` / ``ahttp`` / ``open_http`` send HTTP
    requests to ``ServeHTTP``, ``upload_file`` runs ``FileWillBeUploaded``, ``configure``
    changes the settings and calls ``OnConfigurationChange``, ``stop`` deactivates.
    """

    def __init__(self, fake: FakeMattermost, plugin_id: str) -> None:
        self.fake = fake
        self.plugin_id = plugin_id
        self.timeout = DEFAULT_TIMEOUT_SECONDS
        self._loop = _LoopThread(f"mmplug-plugin-{plugin_id}")
        self._service = _contract.hooks_service()
        self.plugin: Any = None
        self.implemented: list[str] = []
        self.configuration_error: HookError | None = None
        self._dispatcher: HookDispatcher | None = None
        self._stopped = False

    # --- lifecycle ----------------------------------------------------------------------

    @classmethod
    def start(cls, fake: FakeMattermost, plugin_cls: type[Any], plugin_id: str) -> PluginHandle:
        if not (isinstance(plugin_cls, type) and issubclass(plugin_cls, Plugin)):
            raise TypeError(f"start() expects a Plugin subclass, got {plugin_cls!r}")
        handle = cls(fake, plugin_id)
        try:
            handle._activate(plugin_cls)
        except BaseException:
            handle._shutdown()
            raise
        return handle

    def _activate(self, plugin_cls: type[Plugin]) -> None:
        fake = self.fake
        api = PluginAPIClient(FakeSyncChannel(fake), token="", plugin_id=self.plugin_id)
        aapi = AsyncPluginAPIClient(FakeAsyncChannel(fake), token="", plugin_id=self.plugin_id)

        async def create() -> Plugin:
            return plugin_cls.create(api=api, aapi=aapi, plugin_id=self.plugin_id)

        # The process starts (and the class is instantiated) before the server activates
        # it: API calls from __init__ fail as they do under the bridge.
        with fake._lock:
            fake._api_open = False
        try:
            self.plugin = self._loop.run(create(), self.timeout, f"{plugin_cls.__name__}()")
        finally:
            with fake._lock:
                fake._api_open = True
        # Jobs run on the fake's clock, and only when the test moves it (advance).
        self.plugin._job_clock = FakeJobClock(fake.clock)
        self.plugin._jobs_manual = True
        self._dispatcher = HookDispatcher(self.plugin, self._service)
        implemented = self._dispatcher.specs["Implemented"]
        self.implemented = list(
            self._loop.run(
                self._fire(implemented, implemented.request_cls()), self.timeout, "Implemented"
            )
        )
        if HookName.OnConfigurationChange.value in self.implemented:
            try:
                self.fire(HookName.OnConfigurationChange)
            except HookError as e:
                self.configuration_error = e
                with fake._lock:
                    fake.logs.append(
                        LogEntry(
                            "error",
                            "on configuration change failed",
                            {"error": e.app_error.message},
                            self.plugin_id,
                        )
                    )
        if HookName.OnActivate.value in self.implemented:
            try:
                self.fire(HookName.OnActivate)
            except HookError as e:
                raise ActivationError(self.plugin_id, e) from None
        # As under the bridge, jobs due at start (recurring ones never run yet, one-shot
        # jobs whose time passed) run right after activation.
        self.run_jobs()

    def stop(self) -> None:
        """Deactivate: ``OnDeactivate`` (its failure is raised, after shutting down)."""
        if self._stopped:
            return
        error: HookError | None = None
        try:
            if HookName.OnDeactivate.value in self.implemented:
                try:
                    self.fire(HookName.OnDeactivate)
                except HookError as e:
                    error = e
        finally:
            self._shutdown()
        if error is not None:
            raise error

    def _shutdown(self) -> None:
        self._stopped = True
        if self._dispatcher is not None:
            self._dispatcher.close()
        self._loop.stop()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def __enter__(self) -> PluginHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _require_running(self) -> HookDispatcher:
        if self._stopped or self._dispatcher is None:
            raise RuntimeError(f"plugin {self.plugin_id} is stopped")
        return self._dispatcher

    # --- jobs -----------------------------------------------------------------------------

    def advance(self, seconds: float | datetime.timedelta = 0) -> None:
        """Move the fake server's clock forward by ``seconds`` (or a timedelta), running the
        plugin's jobs as a real clock would: at each moment something falls due on the way
        (a recurring job's next interval, a one-shot job's time), in order, each run finished
        before time moves on. ``fake.clock.advance`` moves time without running jobs."""
        target = self._target_millis(seconds)
        self._loop.run(self._advance_to(target), self.timeout, "jobs")

    async def aadvance(self, seconds: float | datetime.timedelta = 0) -> None:
        """``advance`` for async tests."""
        target = self._target_millis(seconds)
        await self._loop.arun(self._advance_to(target), self.timeout, "jobs")

    def run_jobs(self) -> None:
        """Run the jobs due now (``advance(0)``)."""
        self.advance(0)

    def _target_millis(self, seconds: float | datetime.timedelta) -> int:
        step = seconds.total_seconds() if isinstance(seconds, datetime.timedelta) else seconds
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not step >= 0:
            raise ValueError(f"advance takes a duration >= 0, got {seconds!r}")
        self._require_running()
        return self.fake.clock.now_millis() + round(step * 1000)

    async def _advance_to(self, target: int) -> None:
        clock = self.fake.clock
        for _ in range(MAX_JOB_STEPS):
            scheduler = jobs_scheduler_of(self.plugin)
            due = None if scheduler is None else scheduler.next_due()
            if due is None or due * 1000 > target:
                clock.set(max(clock.now_millis(), target))
                if scheduler is not None:
                    await scheduler.run_due()
                return
            clock.set(max(clock.now_millis(), math.ceil(due * 1000 - 1e-6)))
            assert scheduler is not None
            await scheduler.run_due()
        raise RuntimeError(
            f"advance ran {MAX_JOB_STEPS} job steps without reaching the target time: "
            "a job is due again at once after every run"
        )

    # --- slash commands, actions, dialogs -------------------------------------------------

    def run_command(
        self, line: str, *, user_id: str, channel_id: str = "", team_id: str = "", root_id: str = ""
    ) -> Any:
        """Run the slash command ``line`` (``"/remind list"``) as ``user_id`` through
        ``ExecuteCommand``, with a fresh trigger id (so the command may open a dialog), and
        return the ``CommandResponse``. ``team_id`` defaults to the channel's team."""
        from .._proto.mattermost.plugin.v1.models_pb2 import CommandArgs

        if not team_id and channel_id in self.fake.channels:
            team_id = self.fake.channels[channel_id].team_id
        args = CommandArgs(
            command=line,
            user_id=user_id,
            channel_id=channel_id,
            team_id=team_id,
            root_id=root_id,
            trigger_id=self.fake.new_trigger_id(user_id),
            site_url=self.fake.config.service_settings.site_url,
        )
        return self.fire(HookName.ExecuteCommand, args)

    def action(
        self,
        name: str,
        *,
        user_id: str,
        context: Mapping[str, Any] | None = None,
        post_id: str = "",
        channel_id: str = "",
        team_id: str = "",
        selected_option: str = "",
        type: str = "button",
    ) -> ActionResponse:
        """Call the ``@action(name)`` handler as the server does when ``user_id`` clicks a
        button made with ``context`` (no post needed; ``click`` clicks a real one) and return
        its ``ActionResponse``. Nothing is applied to the fake's posts."""
        url = action_url(self.plugin_id, name)
        return self._action(url, user_id, dict(context or {}), post_id, channel_id, team_id,
                            selected_option, type)  # fmt: skip

    def click(
        self, post: Any, text: str, *, user_id: str, selected_option: str = ""
    ) -> ActionResponse:
        """Click the button (or choose ``selected_option`` in the menu) labelled ``text`` on
        ``post`` (a ``Post`` or its id in the fake) as ``user_id``, as the server does: its
        integration URL and context are the ones stored in the post, and the answer is
        applied (the post updated, the ephemeral text sent to the user). Returns it."""
        post_id = post if isinstance(post, str) else post.id
        stored = self.fake.posts.get(post_id)
        if stored is None:
            raise LookupError(f"no post {post_id!r} in the fake (click a post the plugin made)")
        found = _find_action(stored, text)
        integration = found.get("integration") or {}
        url = str(integration.get("url", ""))
        context = dict(integration.get("context") or {})
        if found.get("type") == "select" and not selected_option:
            raise ValueError(f"{text!r} is a menu: pass the selected_option to choose")
        channel = self.fake.channels.get(stored.channel_id)
        answer = self._action(
            url, user_id, context, post_id, stored.channel_id,
            channel.team_id if channel is not None else "", selected_option,
            str(found.get("type") or "button"),
        )  # fmt: skip
        self._apply_action_answer(stored, user_id, answer)
        return answer

    def _action(
        self,
        url: str,
        user_id: str,
        context: dict[str, Any],
        post_id: str,
        channel_id: str,
        team_id: str,
        selected_option: str,
        type: str,
    ) -> ActionResponse:
        if not user_id:
            raise ValueError("an action has an acting user: pass user_id")
        path = self._own_path(url)
        if selected_option:
            context["selected_option"] = selected_option
        user = self.fake.users.get(user_id)
        channel = self.fake.channels.get(channel_id)
        team = self.fake.teams.get(team_id)
        request = ActionRequest(
            action="",
            user_id=user_id,
            user_name=user.username if user is not None else "",
            channel_id=channel_id,
            channel_name=channel.name if channel is not None else "",
            team_id=team_id,
            team_name=team.name if team is not None else "",
            post_id=post_id,
            trigger_id=self.fake.new_trigger_id(user_id),
            type=type,
            context=context,
        )
        response = self.http(
            "POST", path, body=json.dumps(request.to_json()), user_id=user_id,
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        body = _interaction_body(response, url)
        return ActionResponse.from_json(body)

    def _apply_action_answer(self, stored: Any, user_id: str, answer: ActionResponse) -> None:
        from .._proto.mattermost.plugin.v1.models_pb2 import Post

        fake = self.fake
        with fake._lock:
            if answer.update is not None:
                current = fake.posts[stored.id]
                updated = Post()
                updated.CopyFrom(current)
                updated.message = answer.update.message
                # As the server: the answer's props replace the post's, but the props that
                # say who posted (from_bot, override_username, ...) are kept.
                kept = {k: current.props[k] for k in _RETAINED_PROPS if k in current.props}
                if answer.update.HasField("props"):
                    updated.props.Clear()
                    updated.props.MergeFrom(answer.update.props)
                    for key in _RETAINED_PROPS:
                        if key in updated.props:
                            del updated.props[key]
                    updated.props.update(kept)
                if updated.message != current.message:
                    updated.edit_at = fake.now()
                updated.update_at = fake.now()
                fake.posts[stored.id] = updated
            if answer.ephemeral_text:
                note = Post(
                    id=fake.new_id(),
                    channel_id=stored.channel_id,
                    root_id=stored.root_id or stored.id,
                    user_id=user_id,
                    message=answer.ephemeral_text,
                    type="system_ephemeral",
                    create_at=fake.now(),
                    update_at=fake.now(),
                )
                fake.ephemeral_posts.append((user_id, note))

    def submit_dialog(
        self,
        dialog: Any,
        values: Mapping[str, Any] | None = None,
        *,
        user_id: str,
        channel_id: str = "",
        team_id: str = "",
        state: str | None = None,
        callback_id: str | None = None,
    ) -> DialogResponse:
        """Submit a dialog as ``user_id`` and return the ``DialogResponse``. ``dialog`` is
        an ``OpenDialogRequest`` the plugin opened (``fake.dialogs[-1][1]``: its URL, state
        and callback id are used) or the name of a ``@dialog`` handler."""
        return self._dialog(dialog, dict(values or {}), user_id, channel_id, team_id, state,
                            callback_id, cancelled=False)  # fmt: skip

    def cancel_dialog(
        self,
        dialog: Any,
        *,
        user_id: str,
        channel_id: str = "",
        team_id: str = "",
        state: str | None = None,
        callback_id: str | None = None,
    ) -> DialogResponse:
        """Close a dialog without submitting it, as the user does; the server tells the
        plugin only for a dialog opened with ``notify_on_cancel``."""
        return self._dialog(dialog, {}, user_id, channel_id, team_id, state, callback_id,
                            cancelled=True)  # fmt: skip

    def _dialog(
        self,
        dialog: Any,
        values: dict[str, Any],
        user_id: str,
        channel_id: str,
        team_id: str,
        state: str | None,
        callback_id: str | None,
        *,
        cancelled: bool,
    ) -> DialogResponse:
        if not user_id:
            raise ValueError("a dialog is submitted by a user: pass user_id")
        if isinstance(dialog, str):
            url = dialog_url(self.plugin_id, dialog)
            opened_state, opened_callback = "", ""
        else:
            url = dialog.url
            opened_state, opened_callback = dialog.dialog.state, dialog.dialog.callback_id
            if cancelled and not dialog.dialog.notify_on_cancel:
                raise ValueError(
                    "this dialog was opened without notify_on_cancel: the server does not "
                    "tell the plugin when it is closed"
                )
        if not team_id and channel_id in self.fake.channels:
            team_id = self.fake.channels[channel_id].team_id
        submission = DialogSubmission(
            dialog="",
            user_id=user_id,
            channel_id=channel_id,
            team_id=team_id,
            callback_id=opened_callback if callback_id is None else callback_id,
            state=opened_state if state is None else state,
            values=values,
            cancelled=cancelled,
            type="dialog_submission",
        )
        response = self.http(
            "POST", self._own_path(url), body=json.dumps(submission.to_json()),
            user_id=user_id, headers={"Content-Type": "application/json"},
        )  # fmt: skip
        return DialogResponse.from_json(_interaction_body(response, url))

    def _own_path(self, url: str) -> str:
        prefix = f"/plugins/{self.plugin_id}/"
        if not url.startswith(prefix):
            raise ValueError(
                f"the integration URL {url!r} does not lead to plugin {self.plugin_id} "
                f"(it should start with {prefix})"
            )
        return url[len(prefix) - 1 :]

    async def aclick(
        self, post: Any, text: str, *, user_id: str, selected_option: str = ""
    ) -> ActionResponse:
        """``click`` for async tests."""
        return await asyncio.to_thread(
            self.click, post, text, user_id=user_id, selected_option=selected_option
        )

    async def asubmit_dialog(
        self, dialog: Any, values: Mapping[str, Any] | None = None, *, user_id: str, **kw: Any
    ) -> DialogResponse:
        """``submit_dialog`` for async tests."""
        return await asyncio.to_thread(self.submit_dialog, dialog, values, user_id=user_id, **kw)

    async def acancel_dialog(self, dialog: Any, *, user_id: str, **kw: Any) -> DialogResponse:
        """``cancel_dialog`` for async tests."""
        return await asyncio.to_thread(self.cancel_dialog, dialog, user_id=user_id, **kw)

    async def aaction(self, name: str, *, user_id: str, **kw: Any) -> ActionResponse:
        """``action`` for async tests."""
        return await asyncio.to_thread(self.action, name, user_id=user_id, **kw)

    async def arun_command(self, line: str, *, user_id: str, **kw: Any) -> Any:
        """``run_command`` for async tests."""
        return await asyncio.to_thread(self.run_command, line, user_id=user_id, **kw)

    # --- unary hooks ----------------------------------------------------------------------

    def _request(self, spec: HookSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Message:
        fields = list(spec.args)
        names = [f.name for f in fields]
        given = dict(kwargs)
        # The server always passes the plugin.Context; tests may leave it out.
        first = fields[0] if fields else None
        if (
            first is not None
            and first.message_type is not None
            and first.message_type.name == "PluginContext"
            and first.name not in given
            and len(args) + len(given) == len(fields) - 1
        ):
            args = (self.new_context(), *args)
        if len(args) > len(fields):
            raise TypeError(
                f"{spec.name} takes {len(fields)} arguments ({', '.join(names) or 'none'}), "
                f"got {len(args)}"
            )
        for f, v in zip(fields, args, strict=False):
            if f.name in given:
                raise TypeError(f"{spec.name} got multiple values for argument {f.name!r}")
            given[f.name] = v
        request = spec.request_cls()
        by_name = {f.name: f for f in fields}
        for name, value in given.items():
            if name not in by_name:
                raise TypeError(
                    f"{spec.name} has no argument {name!r} (it takes: {', '.join(names)})"
                )
            set_field(request, by_name[name], value)
        ctx_field = request.DESCRIPTOR.fields_by_number.get(1)
        if ctx_field is not None and ctx_field.message_type is not None:
            ctx = getattr(request, ctx_field.name)
            ctx.plugin_id = self.plugin_id
            ctx.request_id = self.fake.new_id()
        return request

    def new_context(self, **fields: Any) -> Any:
        """A ``PluginContext`` as the server passes to hooks (fresh request id)."""
        from .._proto.mattermost.plugin.v1.models_pb2 import PluginContext

        fields.setdefault("request_id", self.fake.new_id())
        return PluginContext(**fields)

    def _unary_spec(self, hook: HookName | str) -> HookSpec:
        name = _hook_name(hook)
        if name in _HTTP_HOOKS:
            raise TypeError(f"{name.value} is an HTTP hook: use handle.http(...) or open_http")
        if name is HookName.FileWillBeUploaded:
            raise TypeError("FileWillBeUploaded streams the file: use handle.upload_file(...)")
        spec = self._require_running().specs.get(name.value)
        if spec is None:
            raise TypeError(f"{name.value} is a streaming hook the SDK does not support yet")
        return spec

    async def _fire(self, spec: HookSpec, request: Message) -> Any:
        dispatcher = self._require_running()
        try:
            response = await dispatcher.unary(spec, request)
        except HookNotImplemented as e:
            raise HookNotImplementedError(
                f"{e} (the plugin implements: {', '.join(self.implemented) or 'nothing'})"
            ) from None
        error = _hook_error(spec.name, response)
        if error is not None:
            raise error
        values = [get_field(response, f) for f in spec.results]
        if not values:
            return None
        return values[0] if len(values) == 1 else tuple(values)

    def fire(self, hook: HookName | str, *args: Any, **kwargs: Any) -> Any:
        """Call ``hook`` as the server would and return what the handler answered.

        Arguments are the hook's Go parameters in order (or by proto field name), as
        messages, dicts or plain values; a leading ``plugin.Context`` may be left out. The
        return is None, the single result, or a tuple of results (``(post, reason)`` for
        ``MessageWillBePosted``). A handler that raises, or returns a value the hook cannot
        carry, raises ``HookError``; a hook the plugin lacks, ``HookNotImplementedError``.
        """
        spec = self._unary_spec(hook)
        request = self._request(spec, args, kwargs)
        return self._loop.run(self._fire(spec, request), self.timeout, f"hook {spec.name}")

    async def afire(self, hook: HookName | str, *args: Any, **kwargs: Any) -> Any:
        """``fire`` for async tests."""
        spec = self._unary_spec(hook)
        request = self._request(spec, args, kwargs)
        return await self._loop.arun(self._fire(spec, request), self.timeout, spec.name)

    def configure(self, settings: Mapping[str, Any]) -> None:
        """Replace the plugin's settings and call ``OnConfigurationChange`` (if implemented),
        as the server does when an admin saves them."""
        self.fake.set_plugin_settings(dict(settings), plugin_id=self.plugin_id)
        if HookName.OnConfigurationChange.value in self.implemented:
            self.fire(HookName.OnConfigurationChange)

    # --- HTTP -----------------------------------------------------------------------------

    def _http_parts(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str | Iterable[str]] | None,
        body: Any,
        user_id: str,
        context: Any,
        hook: HookName,
        body_queue: asyncio.Queue[bytes | None] | None = None,
    ) -> tuple[Any, AsyncIterator[Any]]:
        method_desc = self._service.methods_by_name[hook.value]
        part_cls: Any = GetMessageClass(method_desc.input_type)
        response_cls = GetMessageClass(method_desc.output_type)
        if not url.startswith("/"):
            raise ValueError(f"url must start with '/' (the path below the plugin), got {url!r}")
        if isinstance(body, str):
            body = body.encode("utf-8")
        init = part_cls().init
        init.method = method.upper()
        init.url = url
        init.proto, init.proto_major, init.proto_minor = "HTTP/1.1", 1, 1
        init.host = "localhost:8065"
        init.remote_addr = "127.0.0.1:50000"
        prefix = f"/plugins/{self.plugin_id}"
        init.request_uri = url if url.startswith(prefix) else prefix + url
        if body is not None and body_queue is not None:
            raise ValueError("give either body or stream_body=True, not both")
        init.has_body = body is not None or body_queue is not None
        init.plugin_context.CopyFrom(context if context is not None else self.new_context())
        for key, values in (headers or {}).items():
            if key.lower() == "mattermost-user-id":
                continue  # the server strips it from clients and sets its own
            seq = [values] if isinstance(values, str) else list(values)
            init.headers[_canonical(key)].values.extend(seq)
        if user_id:
            init.headers["Mattermost-User-Id"].values.append(user_id)
        if isinstance(body, bytes | bytearray) and "Content-Length" not in init.headers:
            # As a real server does for a body of known size (Go keeps the header).
            init.headers["Content-Length"].values.append(str(len(body)))
        first = part_cls(init=init)

        async def parts() -> AsyncIterator[Any]:
            yield first
            if body_queue is not None:
                while (piece := await body_queue.get()) is not None:
                    for chunk in _split(piece):
                        yield part_cls(body=chunk)
            elif body is None:
                return
            else:
                async for chunk in _body_chunks(body):
                    yield part_cls(body=chunk)
            yield part_cls(body_end=True)

        return response_cls, parts()

    async def _exchange(
        self, hook: HookName, response_cls: Any, parts: AsyncIterator[Any], sink: HTTPStream
    ) -> None:
        error: BaseException | None = None
        stream: Any = None
        try:
            dispatcher = self._require_running()
            stream = dispatcher.http_stream(hook.value, response_cls, parts, _ServicerContext())
            async for part in stream:
                sink._put(part)
        except _Aborted as e:
            error = HookError(hook.value, PluginAPIError(str(e), status_code=500))
        except asyncio.CancelledError:
            error = ConnectionAbortedError("the test closed the response stream")
            raise
        except BaseException as e:
            error = e
            raise
        finally:
            if stream is not None:
                await stream.aclose()
            sink._finish(error)

    def open_http(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str | Iterable[str]] | None = None,
        body: Any = None,
        user_id: str = "",
        context: Any = None,
        hook: HookName | str = HookName.ServeHTTP,
        stream_body: bool = False,
    ) -> HTTPStream:
        """Send a request and return the response as it streams (see ``HTTPStream``).

        Arguments as for ``http``; with ``stream_body=True`` the body is sent piece by piece
        with ``stream.send_body(...)`` and ended with ``stream.end_body()``.
        """
        name = _hook_name(hook)
        if name not in _HTTP_HOOKS:
            raise ValueError(f"{name.value} is not an HTTP hook (ServeHTTP, ServeMetrics)")
        self._require_running()
        stream = HTTPStream(self)
        if stream_body:
            stream._body_queue = asyncio.Queue()
        response_cls, parts = self._http_parts(
            method, url, headers, body, user_id, context, name, stream._body_queue
        )
        stream._future = self._loop.submit(self._exchange(name, response_cls, parts, stream))
        return stream

    def http(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str | Iterable[str]] | None = None,
        body: Any = None,
        user_id: str = "",
        context: Any = None,
        hook: HookName | str = HookName.ServeHTTP,
    ) -> HTTPResponse:
        """Send a request to the plugin's ``ServeHTTP`` and return the whole response.

        ``url`` is the path below ``/plugins/<id>`` with its query (``"/api/x?n=1"``);
        ``headers`` map names to a value or a list of values; ``body`` is bytes, str, or an
        iterable (or async iterable) of bytes sent as separate pieces; ``user_id`` is the
        logged-in user (the server's ``Mattermost-User-Id``; "" = anonymous).
        """
        stream = self.open_http(
            method, url, headers=headers, body=body, user_id=user_id, context=context, hook=hook
        )
        with stream:
            return stream.read_all()

    async def ahttp(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str | Iterable[str]] | None = None,
        body: Any = None,
        user_id: str = "",
        context: Any = None,
        hook: HookName | str = HookName.ServeHTTP,
    ) -> HTTPResponse:
        """``http`` for async tests."""
        stream = self.open_http(
            method, url, headers=headers, body=body, user_id=user_id, context=context, hook=hook
        )
        try:
            return await asyncio.to_thread(stream.read_all)
        finally:
            await asyncio.to_thread(stream.close)

    # --- FileWillBeUploaded ---------------------------------------------------------------

    async def _upload(self, info: Any, data: Any, context: Any) -> FileUploadResult:
        dispatcher = self._require_running()
        method = self._service.methods_by_name[HookName.FileWillBeUploaded.value]
        part_cls: Any = GetMessageClass(method.input_type)
        response_cls = GetMessageClass(method.output_type)
        init = part_cls().init
        init.context.plugin_id = self.plugin_id
        init.context.request_id = self.fake.new_id()
        init.plugin_context.CopyFrom(context if context is not None else self.new_context())
        set_field(init, init.DESCRIPTOR.fields_by_name["info"], info)

        async def parts() -> AsyncIterator[Any]:
            yield part_cls(init=init)
            async for chunk in _body_chunks(data):
                yield part_cls(chunk=chunk)

        replacement = bytearray()
        result: Any = None
        stream: Any = dispatcher.file_stream(
            HookName.FileWillBeUploaded.value, response_cls, parts(), _ServicerContext()
        )
        try:
            part: Any
            async for part in stream:
                if part.WhichOneof("part") == "chunk":
                    replacement += part.chunk
                else:
                    result = part.result
        except _Aborted as e:
            raise HookNotImplementedError(str(e)) from None
        finally:
            await stream.aclose()
        error = _hook_error(HookName.FileWillBeUploaded.value, result)
        if error is not None:
            raise error
        file_info = result.file_info if result.HasField("file_info") else None
        return FileUploadResult(file_info, result.rejection_reason, bytes(replacement))

    def upload_file(self, info: Any, data: Any, *, context: Any = None) -> FileUploadResult:
        """Run ``FileWillBeUploaded`` with ``info`` (a ``FileInfo`` or dict) and the file's
        bytes (bytes or an iterable of pieces, delivered as the handler reads)."""
        return self._loop.run(self._upload(info, data, context), self.timeout, "upload")

    async def aupload_file(self, info: Any, data: Any, *, context: Any = None) -> FileUploadResult:
        """``upload_file`` for async tests."""
        return await self._loop.arun(self._upload(info, data, context), self.timeout, "upload")


class InteractionError(Exception):
    """An action or dialog request was not answered with 200 and JSON (the handler raised,
    the route is unknown, ...). ``response`` is the plugin's HTTP answer."""

    def __init__(self, url: str, response: HTTPResponse) -> None:
        self.response = response
        super().__init__(f"{url} answered {response.status}: {response.text[:500]}")


# Props the server keeps when an action's answer replaces the post (PostActionRetainPropKeys).
_RETAINED_PROPS = ("from_webhook", "from_bot", "from_plugin", "override_username",
                   "override_icon_url")  # fmt: skip


def _interaction_body(response: HTTPResponse, url: str) -> dict[str, Any]:
    if response.status != 200:
        raise InteractionError(url, response)
    if not response.body:
        return {}
    try:
        body = response.json()
    except ValueError:
        raise InteractionError(url, response) from None
    if not isinstance(body, dict):
        raise InteractionError(url, response)
    return body


def _find_action(post: Any, text: str) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict

    props = MessageToDict(post.props) if post.HasField("props") else {}
    names = []
    for attachment in props.get("attachments") or []:
        for found in (attachment or {}).get("actions") or []:
            names.append(found.get("name"))
            if found.get("name") == text:
                return dict(found)
    raise LookupError(f"post {post.id} has no button or menu {text!r} (it has: {names or 'none'})")


def _canonical(key: str) -> str:
    from ..http import canonical_header_key

    return canonical_header_key(key)


def _split(piece: bytes | bytearray | memoryview) -> Iterator[bytes]:
    view = memoryview(piece)
    for start in range(0, len(view), MAX_CHUNK):
        yield bytes(view[start : start + MAX_CHUNK])


async def _body_chunks(body: Any) -> AsyncIterator[bytes]:
    """Body pieces as the bridge sends them: each given piece on its own, split to 64 KiB.
    A sync iterable is read on the plugin's loop, so it must not block."""
    split = _split

    if isinstance(body, bytes | bytearray | memoryview):
        for chunk in split(body):
            yield chunk
    elif isinstance(body, AsyncIterable):
        async for piece in body:
            for chunk in split(piece):
                yield chunk
    elif isinstance(body, Iterable) and not isinstance(body, str):
        for piece in body:
            if not isinstance(piece, bytes | bytearray | memoryview):
                raise TypeError(f"body pieces must be bytes, got {type(piece).__name__}")
            for chunk in split(piece):
                yield chunk
    else:
        raise TypeError(f"body must be bytes, str or an iterable of bytes, not {type(body)}")


# The type of the ``mm_plugin`` fixture: ``mm_plugin(MyPlugin, settings=..., plugin_id=...)``.
StartPlugin = Callable[..., PluginHandle]
