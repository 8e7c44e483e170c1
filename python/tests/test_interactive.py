"""Interactive messages and dialogs (mattermost_plugin.interactive) under the test kit:
buttons routed to @action handlers, the acting user from the server's header, answers
applied as the server applies them, dialogs opened with a trigger id and submitted or
cancelled, field errors, and every bad request refused clearly."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict

from mattermost_plugin import (
    ActionRequest,
    ActionResponse,
    Attachment,
    AttachmentField,
    BoolElement,
    Button,
    CommandCall,
    DialogResponse,
    DialogSubmission,
    HookName,
    HTTPRequest,
    HTTPResponseWriter,
    InteractiveDialog,
    Plugin,
    PluginAPIError,
    Post,
    Select,
    SelectElement,
    TextElement,
    action,
    attach,
    command,
    dialog,
    field_errors,
    hook,
    open_dialog,
    update_post,
)
from mattermost_plugin.interactive import InteractiveRegistrationError, action_url
from mattermost_plugin.testing import FakeMattermost, InteractionError, StartPlugin

FORM = InteractiveDialog(
    title="New task",
    callback_id="task",
    state="from-command",
    notify_on_cancel=True,
    elements=[
        TextElement("title", "Title", max_length=100),
        SelectElement("priority", "Priority", [("High", "high"), ("Low", "low")]),
        BoolElement("urgent", "Urgent", placeholder="Do it today"),
    ],
)


class Tasks(Plugin):
    def __init__(self) -> None:
        self.seen: list[ActionRequest] = []
        self.submissions: list[DialogSubmission] = []

    @command("task")
    def task(self, call: CommandCall) -> str:
        if call.text == "form":
            open_dialog(self.api, call.args.trigger_id, "create", FORM)
            return ""
        post = Post(channel_id=call.channel_id, user_id=call.user_id, message="A task")
        post.props["from_bot"] = "true"
        attach(
            post,
            self.plugin_id,
            Attachment(
                title="Water the plants",
                fields=[AttachmentField("Due", "today", short=True)],
                actions=[
                    Button("done", "Done", context={"task": "t1"}, style="good"),
                    Select("assign", "Assign", options=[("Ann", "ann"), ("Bob", "bob")]),
                ],
            ),
        )
        self.api.create_post(post)
        return "posted"

    @action("done")
    def done(self, request: ActionRequest) -> ActionResponse:
        self.seen.append(request)
        post = self.api.get_post(request.post_id)
        post.message = f"Done by {request.user_name}"
        post.props.Clear()
        return update_post(post, "Nice work")

    @action("assign")
    async def assign(self, request: ActionRequest) -> str:
        self.seen.append(request)
        return f"Assigned to {request.selected_option}"

    @action("broken")
    def broken(self, request: ActionRequest) -> None:
        raise RuntimeError("database on fire")

    @action("form")
    async def form(self, request: ActionRequest) -> None:
        await open_dialog(self.aapi, request.trigger_id, "create", FORM)

    @dialog("create")
    def create_task(self, submission: DialogSubmission) -> DialogResponse | None:
        self.submissions.append(submission)
        if submission.cancelled:
            return None
        if not submission.values.get("title"):
            return field_errors(title="A task needs a title")
        return None

    @hook(HookName.ServeHTTP)
    def serve(self, context: Any, writer: HTTPResponseWriter, request: HTTPRequest) -> None:
        writer.write(f"own handler: {request.path}".encode())


@pytest.fixture
def world(mm_fake: FakeMattermost) -> dict[str, str]:
    team = mm_fake.add_team("crew")
    channel = mm_fake.add_channel(team.id, "garden")
    ann = mm_fake.add_user("ann", email="ann@example.com")
    return {"team": team.id, "channel": channel.id, "user": ann.id}


def _posted(mm_fake: FakeMattermost, channel_id: str) -> Post:
    return mm_fake.posts_in(channel_id)[-1]


def test_a_post_with_buttons_has_integration_urls_to_the_plugin(
    mm_plugin: StartPlugin, mm_fake: FakeMattermost, world: dict[str, str]
) -> None:
    handle = mm_plugin(Tasks)
    handle.run_command("/task", user_id=world["user"], channel_id=world["channel"])
    props = MessageToDict(_posted(mm_fake, world["channel"]).props)
    (attachment,) = props["attachments"]
    assert attachment["title"] == "Water the plants"
    assert attachment["fields"] == [{"title": "Due", "value": "today", "short": True}]
    button, menu = attachment["actions"]
    assert button == {
        "type": "button",
        "name": "Done",
        "style": "good",
        "integration": {
            "url": f"/plugins/{handle.plugin_id}/mmplug/actions/done",
            "context": {"task": "t1"},
        },
    }
    assert menu["type"] == "select" and menu["options"][0] == {"text": "Ann", "value": "ann"}


def test_click_updates_the_post_and_tells_the_user(
    mm_plugin: StartPlugin, mm_fake: FakeMattermost, world: dict[str, str]
) -> None:
    handle = mm_plugin(Tasks)
    handle.run_command("/task", user_id=world["user"], channel_id=world["channel"])
    post = _posted(mm_fake, world["channel"])
    answer = handle.click(post, "Done", user_id=world["user"])
    (request,) = handle.plugin.seen
    assert (request.action, request.user_id, request.user_name) == ("done", world["user"], "ann")
    assert request.context == {"task": "t1"} and request.post_id == post.id
    assert (request.channel_id, request.team_id, request.team_name) == (
        world["channel"],
        world["team"],
        "crew",
    )
    assert request.trigger_id in mm_fake.trigger_ids
    assert answer.ephemeral_text == "Nice work"
    updated = mm_fake.posts[post.id]
    assert updated.message == "Done by ann"
    assert "attachments" not in updated.props  # the answer removed the buttons
    assert updated.props["from_bot"] == "true"  # kept, as the server keeps it
    user, note = mm_fake.ephemeral_posts[-1]
    assert (user, note.message, note.root_id) == (world["user"], "Nice work", post.id)


def test_menu_choice_reaches_an_async_handler(
    mm_plugin: StartPlugin, mm_fake: FakeMattermost, world: dict[str, str]
) -> None:
    handle = mm_plugin(Tasks)
    handle.run_command("/task", user_id=world["user"], channel_id=world["channel"])
    post = _posted(mm_fake, world["channel"])
    with pytest.raises(ValueError, match="selected_option"):
        handle.click(post, "Assign", user_id=world["user"])
    answer = handle.click(post, "Assign", user_id=world["user"], selected_option="bob")
    assert answer.ephemeral_text == "Assigned to bob"
    assert handle.plugin.seen[-1].type == "select"
    with pytest.raises(LookupError, match="Done"):
        handle.click(post, "Nope", user_id=world["user"])


def test_the_acting_user_is_the_header_never_the_body(mm_plugin: StartPlugin) -> None:
    handle = mm_plugin(Tasks)
    forged = {"user_id": "attacker", "context": {"task": "t1"}, "post_id": "p"}
    path = "/mmplug/actions/assign"
    response = handle.http("POST", path, body=json.dumps(forged), user_id="real-user")
    assert response.status == 200
    assert handle.plugin.seen[-1].user_id == "real-user"
    anonymous = handle.http("POST", path, body=json.dumps(forged))
    assert anonymous.status == 401 and anonymous.json() == {"error": "not logged in"}
    assert len(handle.plugin.seen) == 1


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("GET", "/mmplug/actions/done", None, 405, "POST"),
        ("POST", "/mmplug/actions/nope", "{}", 404, "no action named 'nope'"),
        ("POST", "/mmplug/dialogs/nope", "{}", 404, "no dialog named 'nope'"),
        ("POST", "/mmplug/actions/assign", "{not json", 400, "not JSON"),
        ("POST", "/mmplug/actions/assign", "[1, 2]", 400, "not a JSON object"),
        ("POST", "/mmplug/actions/assign", b"\xff\xfe", 400, "not JSON"),
        ("POST", "/mmplug/actions/assign", "x" * ((1 << 20) + 1), 413, "at most"),
    ],
)
def test_bad_requests_are_refused(
    mm_plugin: StartPlugin, method: str, path: str, body: Any, status: int, says: str
) -> None:
    handle = mm_plugin(Tasks)
    response = handle.http(method, path, body=body, user_id="u1")
    assert response.status == status
    assert says in response.json()["error"]
    assert handle.plugin.seen == []


def test_a_failing_handler_answers_generically_and_logs(
    mm_plugin: StartPlugin, caplog: pytest.LogCaptureFixture
) -> None:
    handle = mm_plugin(Tasks)
    with pytest.raises(InteractionError) as caught:
        handle.action("broken", user_id="u1")
    assert caught.value.response.status == 500
    assert "database on fire" not in caught.value.response.text  # details stay in the log
    assert "server log" in caught.value.response.json()["ephemeral_text"]
    assert "database on fire" in caplog.text


def test_other_paths_reach_the_plugins_own_handler(mm_plugin: StartPlugin) -> None:
    handle = mm_plugin(Tasks)
    assert handle.http("GET", "/status").text == "own handler: /status"

    class OnlyActions(Plugin):
        @action("x")
        def x(self, request: ActionRequest) -> None: ...

    bare = mm_plugin(OnlyActions, plugin_id="bare")
    assert HookName.ServeHTTP.value in bare.implemented
    assert bare.http("GET", "/status").status == 404
    assert bare.action("x", user_id="u1") == ActionResponse()


def test_dialog_opened_from_a_command_submitted_with_errors_then_ok(
    mm_plugin: StartPlugin, mm_fake: FakeMattermost, world: dict[str, str]
) -> None:
    handle = mm_plugin(Tasks)
    handle.run_command("/task form", user_id=world["user"], channel_id=world["channel"])
    user, opened = mm_fake.dialogs[-1]
    assert user == world["user"]
    assert opened.url == f"/plugins/{handle.plugin_id}/mmplug/dialogs/create"
    assert [e.name for e in opened.dialog.elements] == ["title", "priority", "urgent"]
    assert opened.dialog.elements[1].options[1].value == "low"
    refused = handle.submit_dialog(opened, {"title": ""}, user_id=user, channel_id=world["channel"])
    assert refused.errors == {"title": "A task needs a title"} and not refused.ok
    accepted = handle.submit_dialog(opened, {"title": "Rake", "urgent": True}, user_id=user)
    assert accepted.ok
    last = handle.plugin.submissions[-1]
    assert (last.state, last.callback_id, last.values) == (
        "from-command",
        "task",
        {"title": "Rake", "urgent": True},
    )
    assert last.user_id == user and not last.cancelled


def test_dialog_opened_from_an_action_and_cancelled(
    mm_plugin: StartPlugin, mm_fake: FakeMattermost
) -> None:
    handle = mm_plugin(Tasks)
    handle.action("form", user_id="u1")
    _, opened = mm_fake.dialogs[-1]
    assert handle.cancel_dialog(opened, user_id="u1").ok
    assert handle.plugin.submissions[-1].cancelled is True
    opened.dialog.notify_on_cancel = False
    with pytest.raises(ValueError, match="notify_on_cancel"):
        handle.cancel_dialog(opened, user_id="u1")


def test_open_dialog_needs_a_fresh_trigger_id_from_the_server(
    mm_plugin: StartPlugin, mm_fake: FakeMattermost
) -> None:
    handle = mm_plugin(Tasks)
    with pytest.raises(PluginAPIError, match="verify") as forged:
        open_dialog(mm_fake.api, "made-up", "create", FORM)
    assert forged.value.status_code == 400
    trigger = mm_fake.new_trigger_id("u1")
    mm_fake.clock.advance(31)
    with pytest.raises(PluginAPIError, match="expired"):
        open_dialog(mm_fake.api, trigger, "create", FORM)
    with pytest.raises(ValueError, match="trigger_id"):
        open_dialog(mm_fake.api, "", "create", FORM)
    assert mm_fake.dialogs == [] and handle.plugin.submissions == []


def test_builders_check_what_the_server_would_refuse() -> None:
    with pytest.raises(ValueError, match="title is 1 to 24"):
        InteractiveDialog(title="x" * 25).request("p", "d", "t")
    with pytest.raises(ValueError, match="two elements named 'a'"):
        twice = InteractiveDialog("T", [TextElement("a", "A"), TextElement("a", "B")])
        twice.request("p", "d", "t")
    with pytest.raises(ValueError, match="subtype"):
        TextElement("a", "A", subtype="colour").check()
    with pytest.raises(ValueError, match="style"):
        Button("x", "X", style="loud").to_json("p")
    with pytest.raises(ValueError, match="options or a data_source"):
        Select("x", "X").to_json("p")
    with pytest.raises(TypeError, match="JSON"):
        Button("x", "X", context={"when": object()}).to_json("p")
    with pytest.raises(ValueError, match="letters and digits"):
        Button("x", "X", id="a_b").to_json("p")
    with pytest.raises(InteractiveRegistrationError, match="part of a URL"):
        action("a/b")
    with pytest.raises(InteractiveRegistrationError, match="declared twice"):

        class Twice(Plugin):
            @action("a")
            def one(self, request: ActionRequest) -> None: ...

            @action("a")
            def two(self, request: ActionRequest) -> None: ...

    assert action_url("p", "go") == "/plugins/p/mmplug/actions/go"
    box = BoolElement("ok", "OK", default=True)
    assert isinstance(box, BoolElement) and (box.type, box.default) == ("bool", "true")
    assert TextElement("a", "A", subtype="email") == TextElement("a", "A", subtype="email")


def test_wrong_return_types_are_errors(mm_plugin: StartPlugin) -> None:
    class Wrong(Plugin):
        @action("a")
        def a(self, request: ActionRequest) -> Any:
            return 42

        @dialog("d")
        def d(self, submission: DialogSubmission) -> Any:
            return {"title": "bad"}  # field_errors(...) makes the answer

    handle = mm_plugin(Wrong)
    with pytest.raises(InteractionError, match="500"):
        handle.action("a", user_id="u")
    with pytest.raises(InteractionError, match="500"):
        handle.submit_dialog("d", {}, user_id="u")


def test_the_update_is_json_that_go_decodes() -> None:
    # protobuf's JSON writes int64 as strings, which Go's json.Unmarshal refuses for
    # model.Post's int64 fields: the update carries only what the server takes from it.
    post = Post(id="p1", create_at=1_700_000_000_000, message="done", file_ids=["f1"])
    post.props["kept"] = "yes"
    update = update_post(post, "ok").to_json()["update"]
    assert all(not isinstance(v, str) or not v.isdigit() for v in update.values())
    assert "create_at" not in update and update["file_ids"] == ["f1"]
    assert update["props"] == {"kept": "yes"} and update["message"] == "done"
    bare = Post(id="p1", message="no props")
    assert "props" not in update_post(bare).to_json()["update"]  # the server keeps the post's
    assert ActionResponse.from_json({"update": update}).update == post.__class__(
        id="p1", message="done", file_ids=["f1"], props=post.props
    )


async def test_the_async_forms(
    mm_plugin: StartPlugin, mm_fake: FakeMattermost, world: dict[str, str]
) -> None:
    handle = mm_plugin(Tasks)
    user, channel = world["user"], world["channel"]
    assert (await handle.arun_command("/task", user_id=user, channel_id=channel)).text == "posted"
    post = mm_fake.posts_in(channel)[-1]
    assert (await handle.aclick(post, "Done", user_id=user)).ephemeral_text == "Nice work"
    assert (await handle.aaction("assign", user_id=user, selected_option="ann")).ephemeral_text
    await handle.arun_command("/task form", user_id=user, channel_id=channel)
    _, opened = mm_fake.dialogs[-1]
    assert (await handle.asubmit_dialog(opened, {"title": "x"}, user_id=user)).ok
    assert (await handle.acancel_dialog(opened, user_id=user)).ok
    assert handle.plugin.submissions[-1].cancelled
