"""Hook reply validation: a handler's return is checked against the hook's result fields.

The check is driven by the response descriptors of the real contract (generated from the API
schema), so a sweep over every hook proves it knows every hook without a per-hook table.
"""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.message_factory import GetMessageClass

from mattermost_plugin import (
    HookName,
    HookReplyError,
    Plugin,
    Post,
    _contract,
    hook,
)
from mattermost_plugin._convert import get_field
from mattermost_plugin._dispatch import HookDispatcher, HookSpec
from mattermost_plugin._generated import hooks as generated_hooks
from mattermost_plugin.testing import ActivationError, FakeMattermost, HookError


def plugin_returning(hook_name: HookName, value: Any) -> type[Plugin]:
    class Returns(Plugin):
        @hook(hook_name)
        def handler(self, *args: Any) -> Any:
            return value

    return Returns


def fire(fake: FakeMattermost, hook_name: HookName, value: Any, *args: Any) -> Any:
    with fake.start(plugin_returning(hook_name, value)) as handle:
        return handle.fire(hook_name, *args)


def test_a_number_instead_of_post_and_reason(mm_fake: FakeMattermost) -> None:
    # (A bare str is the rejection reason, as Mattermost's own SDK reads it: test_upstream.py.)
    with pytest.raises(HookError) as e:
        fire(mm_fake, HookName.MessageWillBePosted, 7, {"message": "hi"})
    assert e.value.app_error.message == (
        "MessageWillBePosted handler returned int 7, which does not fit its result "
        "tuple[Post | None, str]: MessageWillBePostedHookResponse.post expects "
        "mattermost.plugin.v1.Post or None, got int 7"
    )
    assert e.value.app_error.status_code == 500
    assert e.value.app_error.where == "Returns.handler"


async def test_an_invalid_reply_carries_nothing_but_the_error() -> None:
    # What the bridge receives: only the error, so the server keeps the original post
    # (hooks without an error result answer "unchanged" under the bridge).
    plugin = plugin_returning(HookName.MessageWillBePosted, (Post(message="x"), 5)).create(
        api=None, aapi=None, plugin_id="p"
    )

    dispatcher = HookDispatcher(plugin, _contract.hooks_service())
    try:
        spec = dispatcher.specs["MessageWillBePosted"]
        response: Any = await dispatcher.unary(spec, spec.request_cls())
    finally:
        dispatcher.close()
    assert response.HasField("error")
    assert not response.HasField("post")
    assert response.rejection_reason == ""
    assert "rejection_reason expects str, got int 5" in response.error.message


@pytest.mark.parametrize(
    "reply",
    [
        None,
        (None, ""),
        (None, "not allowed"),
        (Post(message="changed"), ""),
        Post(message="changed"),  # one value fills the first result
        ({"message": "changed"}, ""),  # a dict is parsed into the message
    ],
)
def test_valid_replies(mm_fake: FakeMattermost, reply: Any) -> None:
    post, reason = fire(mm_fake, HookName.MessageWillBePosted, reply, {"message": "hi"})
    if isinstance(reply, tuple) and reply[1]:
        assert reason == reply[1]
    if reply is not None and not (isinstance(reply, tuple) and reply[0] is None):
        assert post.message == "changed"


@pytest.mark.parametrize(
    ("hook_name", "reply", "args", "problem"),
    [
        (
            HookName.MessageWillBePosted,
            (None, "a", "b"),
            ({},),
            "MessageWillBePosted handlers return at most 2 values (post, rejection_reason), got 3",
        ),
        (
            HookName.MessageWillBePosted,
            ({"no_such_field": 1}, ""),
            ({},),
            "MessageWillBePostedHookResponse.post",
        ),
        (
            HookName.UserWillLogIn,
            5,
            ({},),
            "which does not fit its result str: "
            "UserWillLogInHookResponse.rejection_reason expects str, got int 5",
        ),
        (
            HookName.ExecuteCommand,
            "hello",
            ({},),
            "which does not fit its result CommandResponse | None: "
            "ExecuteCommandHookResponse.command_response expects "
            "mattermost.plugin.v1.CommandResponse or None, got str 'hello'",
        ),
        (
            HookName.MessagesWillBeConsumed,
            Post(message="a"),
            ([{"message": "a"}],),
            "MessagesWillBeConsumedHookResponse.posts expects a list of "
            "mattermost.plugin.v1.Post, got Post",
        ),
        (
            HookName.RunDataRetention,
            True,
            (0, 10),
            "RunDataRetentionHookResponse.value expects int64, got bool True",
        ),
        (
            HookName.FileWillBeDownloaded,
            ("reason",),
            ({}, "user", "file"),
            None,  # a 1-tuple for a single result is unwrapped: valid
        ),
    ],
)
def test_invalid_replies(
    mm_fake: FakeMattermost,
    hook_name: HookName,
    reply: Any,
    args: tuple[Any, ...],
    problem: str | None,
) -> None:
    if problem is None:
        assert fire(mm_fake, hook_name, reply, *args) == reply[0]
        return
    with pytest.raises(HookError) as e:
        fire(mm_fake, hook_name, reply, *args)
    assert problem in e.value.app_error.message
    assert e.value.app_error.message.startswith(hook_name.value)


def test_on_activate_returning_a_value_fails_activation(mm_fake: FakeMattermost) -> None:
    with pytest.raises(ActivationError) as e:
        mm_fake.start(plugin_returning(HookName.OnActivate, 1.5))
    assert e.value.app_error.message == (
        "OnActivate handlers return nothing (raise an exception to report an error), got float 1.5"
    )
    # A str is an error message (Mattermost's own SDK's reading): activation fails with it.
    with pytest.raises(ActivationError) as e:
        mm_fake.start(plugin_returning(HookName.OnActivate, "not configured"))
    assert e.value.app_error.message == "not configured"


def test_list_results_that_do_not_replace_arguments_may_be_none(mm_fake: FakeMattermost) -> None:
    # GenerateSupportData returns a list of its own: None is an empty list, as Go's nil.
    assert fire(mm_fake, HookName.GenerateSupportData, None) == []
    consumed = fire(mm_fake, HookName.MessagesWillBeConsumed, [Post(message="b")], [{}])
    assert [p.message for p in consumed] == ["b"]


async def test_async_handlers_are_checked_too(mm_fake: FakeMattermost) -> None:
    class AsyncReturns(Plugin):
        @hook(HookName.ExecuteCommand)
        async def handler(self, context: Any, args: Any) -> Any:
            return {"text": 1}

    with (
        mm_fake.start(AsyncReturns) as handle,
        pytest.raises(HookError, match=r"ExecuteCommandHookResponse\.command_response"),
    ):
        await handle.afire(HookName.ExecuteCommand, {"command": "/x"})


def test_exception_classes() -> None:
    err = HookReplyError("X", "message")
    assert isinstance(err, TypeError)
    assert (err.hook, str(err)) == ("X", "message")


# --- every hook of the contract ---------------------------------------------------------------


def unary_specs() -> list[HookSpec]:
    return [
        HookSpec.of(m)
        for m in _contract.hooks_service().methods
        if not (m.client_streaming or m.server_streaming) and m.name != "Implemented"
    ]


@pytest.mark.parametrize("spec", unary_specs(), ids=lambda s: s.name)
def test_every_hook_accepts_its_zero_reply_and_names_itself_on_a_bad_one(spec: HookSpec) -> None:
    assert spec.expected() != ""
    alias = getattr(generated_hooks, f"{spec.name}Result")
    if isinstance(alias, str):
        assert spec.expected() == alias
    # The reply of a handler returning the zero value of every result is valid.
    empty = spec.response_cls()
    zero = tuple(get_field(empty, f) for f in spec.results)
    if spec._replaces_argument_list(spec.results[0]) if spec.results else False:
        zero = ([],)
    spec.fill(spec.response_cls(), zero or None)
    # Something no hook can carry names the hook and its expected result.
    with pytest.raises(HookReplyError) as e:
        spec.fill(spec.response_cls(), object())
    assert e.value.hook == spec.name
    assert str(e.value).startswith(spec.name)


def test_expected_falls_back_to_the_descriptor() -> None:
    method = _contract.hooks_service().methods_by_name["MessageWillBePosted"]
    spec = HookSpec.of(method)
    renamed = HookSpec(
        name="NotAGeneratedHook",
        request_cls=spec.request_cls,
        response_cls=spec.response_cls,
        args=spec.args,
        results=spec.results,
        error_field=spec.error_field,
    )
    assert renamed.expected() == "tuple[Post | None, str]"
    consumed = HookSpec.of(_contract.hooks_service().methods_by_name["MessagesWillBeConsumed"])
    assert HookSpec(**{**consumed.__dict__, "name": "Other"}).expected() == "list[Post]"
    assert GetMessageClass(method.input_type) is spec.request_cls
