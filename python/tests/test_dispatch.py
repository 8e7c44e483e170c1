"""Hook dispatch conventions, driven directly (no gRPC) with the test contract."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from mattermost_plugin import HookName, NotFoundError, Plugin, hook
from mattermost_plugin._dispatch import HookDispatcher, HookNotImplemented
from mattermost_plugin._lane import Code, LaneError
from mattermost_plugin.client import current_request_id

from testproto import HOOKS
from testproto import common_pb2 as c
from testproto import plugin_pb2 as p


class Aborted(Exception):
    pass


class FakeContext:
    """Stands in for grpc.aio.ServicerContext: abort raises, as the real one does."""

    async def abort(self, code: Any, details: str) -> None:
        raise Aborted(code, details)


@pytest.fixture(params=["unary", "lane"])
def served(request: pytest.FixtureRequest) -> Iterator[str]:
    """A test that uses it runs ``dispatch`` twice: through ``HookDispatcher.unary``, and as
    the lane serves a request: a hook whose handler is a plain ``def`` on the threaded
    connection (``lane_threaded``), any other through ``lane_handler`` (an ``async def`` one
    through its route, the rest through ``unary``), request and response as bytes."""
    global SERVED
    SERVED = request.param
    yield SERVED
    SERVED = "unary"


SERVED = "unary"


async def dispatch(plugin: Plugin, name: str, request: Any) -> Any:
    d = HookDispatcher(plugin, HOOKS)
    try:
        if SERVED == "unary":
            return await d.unary(d.specs[name], request)
        body = request.SerializeToString()
        taken, response = await offer(d, name, body)
        if taken:
            return response
        try:
            answer = await d.lane_handler()(f"/{HOOKS.full_name}/{name}", body)
        except LaneError as e:
            if e.code == Code.UNIMPLEMENTED:
                raise HookNotImplemented(e.message) from None
            raise
        return d.specs[name].response_cls.FromString(answer)
    finally:
        d.close()


async def offer(d: HookDispatcher, name: str, body: bytes) -> tuple[bool, Any]:
    """Serves a request as the lane connection of worker threads does (``lane_threaded``,
    admitted by the gate, on a thread of its own): (False, None) for a hook it does not
    name; else (True, the response message), raising the ``LaneError`` it fails with."""
    methods, serve = d.lane_threaded()
    method = f"/{HOOKS.full_name}/{name}"
    if method not in methods:
        return False, None
    assert d.gate.try_acquire()
    try:
        answer = await asyncio.to_thread(serve, method, body)
    finally:
        d.gate.release_from_thread()
    return True, d.specs[name].response_cls.FromString(answer)


def make(cls: type[Plugin]) -> Plugin:
    return cls.create(api=None, aapi=None, plugin_id="com.example")


def wbp(message: str = "hi") -> p.MessageWillBePostedHookRequest:
    return p.MessageWillBePostedHookRequest(post=c.Post(message=message))


@pytest.mark.usefixtures("served")
@pytest.mark.parametrize(
    ("ret", "has_post", "reason"),
    [
        (None, False, ""),  # nothing: the post goes through unchanged
        ((None, "rejected"), False, "rejected"),
        ((c.Post(message="edited"), ""), True, ""),
        (c.Post(message="edited"), True, ""),  # a single value fills the first field
        ((c.Post(message="edited"),), True, ""),  # a shorter tuple fills leading fields
        (({"message": "edited"}, ""), True, ""),  # a dict is parsed into the message
    ],
)
async def test_return_conventions(ret: Any, has_post: bool, reason: str) -> None:
    class P(Plugin):
        @hook(HookName.MessageWillBePosted)
        def h(self, ctx: Any, post: c.Post) -> Any:
            return ret

    resp = await dispatch(make(P), "MessageWillBePosted", wbp())
    assert not resp.HasField("error")
    assert resp.HasField("result") is has_post
    if has_post:
        assert resp.result.message == "edited"
    assert resp.reason == reason


@pytest.mark.usefixtures("served")
@pytest.mark.parametrize(
    ("hook_name", "ret", "match"),
    [
        ("MessageWillBePosted", (None, "a", "b"), "at most 2 values"),
        ("MessageWillBePosted", ("not a post", ""), "expects mmplugtest.v1.Post"),
        # (A str is an error message there, as Mattermost's own SDK reads it: test_upstream.py.)
        ("OnActivate", 5, "return nothing"),
        ("RunDataRetention", "x", "RunDataRetentionHookResponse.result"),
    ],
)
async def test_bad_returns_become_app_errors(hook_name: str, ret: Any, match: str) -> None:
    class P(Plugin):
        @hook(hook_name)
        def h(self, *args: Any) -> Any:
            return ret

    req_cls = GetMessageClass(HOOKS.methods_by_name[hook_name].input_type)
    resp = await dispatch(make(P), hook_name, req_cls())
    assert resp.error.id == "mmplug.python.hook_error"
    assert match in resp.error.message
    assert resp.error.status_code == 500


@pytest.mark.usefixtures("served")
async def test_arguments_follow_go_order() -> None:
    seen: list[Any] = []

    class P(Plugin):
        @hook(HookName.OnWebSocketConnect)
        def h(self, web_conn_id: str, user_id: str) -> None:
            seen.extend([web_conn_id, user_id])

    req = p.OnWebSocketConnectHookRequest(web_conn_id="conn", user_id="user")
    resp = await dispatch(make(P), "OnWebSocketConnect", req)
    assert not resp.HasField("error")
    assert seen == ["conn", "user"]


@pytest.mark.usefixtures("served")
async def test_unset_message_argument_is_none() -> None:
    seen: list[Any] = []

    class P(Plugin):
        @hook(HookName.MessageHasBeenPosted)
        def h(self, ctx: Any, post: Any) -> None:
            seen.extend([ctx, post])

    await dispatch(make(P), "MessageHasBeenPosted", p.MessageHasBeenPostedHookRequest())
    assert seen == [None, None]


@pytest.mark.usefixtures("served")
async def test_plugin_api_error_keeps_its_fields() -> None:
    class P(Plugin):
        @hook(HookName.ExecuteCommand)
        async def h(self, ctx: Any, args: Any) -> None:
            raise NotFoundError("no such channel", id="api.channel.missing", where="Cmd")

    resp = await dispatch(make(P), "ExecuteCommand", p.ExecuteCommandHookRequest())
    assert (resp.error.id, resp.error.message) == ("api.channel.missing", "no such channel")
    assert (resp.error.status_code, resp.error.where) == (404, "Cmd")


@pytest.mark.usefixtures("served")
async def test_exception_without_text_uses_its_type_name() -> None:
    class P(Plugin):
        @hook(HookName.OnActivate)
        async def h(self) -> None:
            raise KeyboardInterruptLike()

    class KeyboardInterruptLike(Exception):
        pass

    resp = await dispatch(make(P), "OnActivate", p.OnActivateHookRequest())
    assert resp.error.message == "KeyboardInterruptLike"


@pytest.mark.usefixtures("served")
async def test_sync_handlers_do_not_block_the_loop() -> None:
    started = threading.Event()
    on_loop = threading.Event()
    handler_thread: list[int] = []

    class P(Plugin):
        @hook(HookName.OnActivate)
        def h(self) -> None:
            handler_thread.append(threading.get_ident())
            started.set()
            # Only a loop that is still running can set this event; if the handler ran on
            # the loop thread this would time out (the timeout only guards against a hang).
            if not on_loop.wait(timeout=30):
                raise AssertionError("the event loop was blocked by a sync handler")

    hook_task = asyncio.create_task(dispatch(make(P), "OnActivate", p.OnActivateHookRequest()))
    assert await asyncio.to_thread(started.wait, 30)
    on_loop.set()  # runs on the loop while the handler is still in flight
    resp = await hook_task
    assert not resp.HasField("error")
    assert handler_thread and handler_thread[0] != threading.get_ident()


@pytest.mark.usefixtures("served")
async def test_async_handlers_run_on_the_loop_and_see_the_request_id() -> None:
    seen: dict[str, Any] = {}

    class P(Plugin):
        @hook(HookName.OnActivate)
        async def a(self) -> None:
            seen["thread"] = threading.get_ident()
            seen["rid_async"] = current_request_id.get()

        @hook(HookName.OnConfigurationChange)
        def s(self) -> None:
            seen["rid_sync"] = current_request_id.get()

    plugin = make(P)
    ctx = c.RequestContext(plugin_id="x", request_id="req-42")
    await dispatch(plugin, "OnActivate", p.OnActivateHookRequest(context=ctx))
    await dispatch(plugin, "OnConfigurationChange", p.OnConfigurationChangeHookRequest(context=ctx))
    assert seen["thread"] == threading.get_ident()
    assert seen["rid_async"] == "req-42" and seen["rid_sync"] == "req-42"
    assert current_request_id.get() == ""


async def test_concurrent_sync_hooks_run_in_parallel_threads() -> None:
    barrier = threading.Barrier(3, timeout=30)

    class P(Plugin):
        @hook(HookName.OnWebSocketConnect)
        def h(self, conn: str, user: str) -> None:
            barrier.wait()  # all three must be in flight at once

    plugin = make(P)
    d = HookDispatcher(plugin, HOOKS)
    try:
        spec = d.specs["OnWebSocketConnect"]
        resps = await asyncio.gather(
            *(d.unary(spec, p.OnWebSocketConnectHookRequest()) for _ in range(3))
        )
    finally:
        d.close()
    assert all(not r.HasField("error") for r in resps)


@pytest.mark.usefixtures("served")
async def test_unimplemented_hook_aborts() -> None:
    class P(Plugin):
        pass

    with pytest.raises(HookNotImplemented, match="does not implement hook OnActivate"):
        await dispatch(make(P), "OnActivate", p.OnActivateHookRequest())


async def test_the_threaded_lane_names_plain_def_hooks_alone() -> None:
    """Named for the threaded connection: a plain ``def`` handler with no SDK step. Left to
    the asyncio one: an ``async def`` one, a hook with an SDK step (a declared command's
    ExecuteCommand), Implemented, hooks the plugin lacks; serving one of those there fails."""
    from mattermost_plugin import CommandArgs, command

    class P(Plugin):
        @hook(HookName.MessageWillBePosted)
        def plain(self, ctx: Any, post: c.Post) -> None:
            return None

        @hook(HookName.OnActivate)
        async def coroutine(self) -> None:
            return None

        @command("hello", help="says hello")
        def hello(self, args: CommandArgs) -> str:
            return "hi"

    d = HookDispatcher(make(P), HOOKS)
    try:
        prefix = f"/{HOOKS.full_name}/"
        methods, serve = d.lane_threaded()
        assert methods == [prefix + "MessageWillBePosted"]
        assert serve(methods[0], wbp().SerializeToString()) == b""
        for method in ("OnActivate", "ExecuteCommand", "Implemented", "OnDeactivate"):
            with pytest.raises(LaneError) as e:
                serve(prefix + method, b"")
            assert e.value.code == Code.UNIMPLEMENTED, method
    finally:
        d.close()


async def test_a_threaded_request_that_does_not_decode_is_invalid_argument() -> None:
    class P(Plugin):
        @hook(HookName.MessageWillBePosted)
        def h(self, ctx: Any, post: c.Post) -> None:
            raise AssertionError("not called")

    d = HookDispatcher(make(P), HOOKS)
    try:
        with pytest.raises(LaneError) as e:
            await offer(d, "MessageWillBePosted", b"\x0a\xff\xff\xff")
        assert e.value.code == Code.INVALID_ARGUMENT
        assert e.value.message.startswith("MessageWillBePosted: ")
        assert d.gate.running == 0
    finally:
        d.close()


async def test_threaded_hooks_run_in_parallel_threads() -> None:
    barrier = threading.Barrier(3, timeout=30)
    threads: set[int] = set()

    class P(Plugin):
        @hook(HookName.OnWebSocketConnect)
        def h(self, conn: str, user: str) -> None:
            threads.add(threading.get_ident())
            barrier.wait()  # all three must be in flight at once

    d = HookDispatcher(make(P), HOOKS)
    try:
        body = p.OnWebSocketConnectHookRequest().SerializeToString()
        results = await asyncio.gather(*(offer(d, "OnWebSocketConnect", body) for _ in range(3)))
    finally:
        d.close()
    assert all(taken and not r.HasField("error") for taken, r in results)
    assert len(threads) == 3 and threading.get_ident() not in threads


def test_the_lane_route_answers_replies_as_fill_does() -> None:
    """``_HookRoute``'s shortcut for plain replies, which writes the response's bytes
    itself, must give the response (or the error) that ``_compat.hook_result`` and
    ``HookSpec.fill`` give, for plain replies and for every other shape it must leave to
    them: parsed, the same message, with the same fields present."""
    from mattermost_plugin import _compat
    from mattermost_plugin._contract import hooks_service
    from mattermost_plugin._proto.mattermost.plugin.v1 import models_pb2 as m

    service = hooks_service()
    post, other = m.Post(message="kept", props=None), m.Post(message="other")
    rich = m.Post(message="props", metadata=m.PostMetadata())
    for i in range(20):  # a map's entries may serialize in another order once copied
        rich.props[f"k{i}"] = i
    replies: dict[str, list[Any]] = {
        "MessageWillBePosted": [
            (post, ""),
            (rich, "with props"),
            (m.Post(), ""),
            (post, "why"),
            (None, "rejected"),
            (post, None),
            (None, None),
            post,
            (post,),
            None,
            "rejected",
            (post, "", "extra"),
            ("not a post", ""),
            (post, 5),
            ({"message": "a dict"}, ""),
            (m.User(), ""),
            (post, "\ud800"),
            [post, ""],
            (),
        ],
        "ExecuteCommand": [
            m.CommandResponse(text="hi"),
            (m.CommandResponse(text="hi"),),
            None,
            (None,),
            {"text": "dict"},
            post,
            (m.CommandResponse(), "extra"),
            "text",
        ],
        "MessagesWillBeConsumed": [[post, other], None, (), [post]],
        "OnSharedChannelsPing": [True, False, None, (True,), 1],
        "OnActivate": [None, (), "an error", (None,)],
        "UserHasBeenCreated": [None, 5],
    }

    class P(Plugin):
        pass

    for hook_name in replies:
        setattr(P, f"h_{hook_name}", hook(hook_name)(lambda self, *a: None))
    P.__init_subclass__()  # register the handlers set after the class was made
    d = HookDispatcher(make(P), service)
    try:
        for hook_name, values in replies.items():
            route = d._route(f"/{service.full_name}/{hook_name}")
            assert route is not None and not route.is_async, hook_name
            spec = route.spec
            args = [None] * len(spec.args)
            for value in values:
                try:
                    general = spec.response_cls()
                    spec.fill(general, _compat.hook_result(route.name, value, tuple(args)))
                    want: Any = general
                except Exception as e:  # HookReplyError, or an upstream-style error reply
                    want = (type(e).__name__, str(e))
                try:
                    got: Any = spec.response_cls.FromString(d._respond(route, value, args))
                except Exception as e:
                    got = (type(e).__name__, str(e))
                assert got == want, (hook_name, value)
                if isinstance(want, Message):
                    present = [f.name for f, _ in want.ListFields()]
                    assert [f.name for f, _ in got.ListFields()] == present, (hook_name, value)
    finally:
        d.close()
