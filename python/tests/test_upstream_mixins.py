"""The client calls of Mattermost's own Python SDK, mixin by mixin (docs/upstream.md).

Each test calls a method the way that SDK's client mixins for channels, files, bots,
commands, groups, properties and the rest declare it (argument names, order, defaults,
keyword-only ones, its wrapper dataclasses, its plainer values), against the test kit, and
checks what reached the server and what came back. Methods the fake server does not model
are answered by ``FakeMattermost.on`` stubs that record the request.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import mattermost_plugin as m
from mattermost_plugin import Plugin, hook, wrappers
from mattermost_plugin._convert import struct_to_python
from mattermost_plugin.testing import FakeMattermost, StartPlugin

# The wrappers its newest wrappers module adds beyond those of its user, team, channel, post,
# file and KV store types.
NEWEST_WRAPPERS = [
    "Bot", "BotPatch", "BotGetOptions", "Command", "CommandArgs", "CommandResponse",
    "Preference", "OAuthApp", "Group", "GroupMember", "GroupSyncable", "SharedChannel",
    "Emoji", "PluginInfo", "PluginStatus", "DialogElement", "Dialog", "OpenDialogRequest",
    "AuditRecord", "PushNotification",
]  # fmt: skip


def record(fake: FakeMattermost, method: str, result: Any = None) -> list[Any]:
    """Answer ``method`` with ``result`` and keep each request it gets."""
    requests: list[Any] = []

    def handler(request: Any) -> Any:
        requests.append(request)
        return result

    fake.on(method, handler)
    return requests


# --- channels ------------------------------------------------------------------------------


def test_patch_channel_members_notifications_takes_id_pairs(mm_fake: FakeMattermost) -> None:
    seen = record(mm_fake, "PatchChannelMembersNotifications")
    mm_fake.api.patch_channel_members_notifications(
        [("c1", "u1"), ("c2", "u2")], {"desktop": "mention"}
    )
    members = [(x.channel_id, x.user_id) for x in seen[0].members]
    assert members == [("c1", "u1"), ("c2", "u2")]
    assert dict(seen[0].notify_props) == {"desktop": "mention"}
    # Ours still: the identifier messages (or dicts).
    mm_fake.api.patch_channel_members_notifications(
        [m.ChannelMemberIdentifier(channel_id="c3", user_id="u3")], {}
    )
    assert seen[1].members[0].channel_id == "c3"


# --- files ---------------------------------------------------------------------------------


def test_get_file_infos_takes_its_filters_as_keywords(mm_fake: FakeMattermost) -> None:
    seen = record(mm_fake, "GetFileInfos", [m.FileInfo(id="f1", name="a.txt")])
    infos = mm_fake.api.get_file_infos(
        per_page=5, user_id="u1", channel_id="c1", include_deleted=True, sort_order="desc"
    )
    assert [i.id for i in infos] == ["f1"]
    request = seen[0]
    assert (request.page, request.per_page) == (0, 5)
    assert list(request.opt.user_ids) == ["u1"] and list(request.opt.channel_ids) == ["c1"]
    assert request.opt.include_deleted and request.opt.sort_descending
    mm_fake.api.get_file_infos(sort_by="CreateAt", sort_order="asc")
    assert seen[1].per_page == 60
    assert (seen[1].opt.sort_by, seen[1].opt.sort_descending) == ("CreateAt", False)
    assert not seen[1].opt.user_ids
    # Ours still: page, per_page and Go's GetFileInfosOptions.
    mm_fake.api.get_file_infos(1, 10, {"user_ids": ["a", "b"]})
    assert (seen[2].page, list(seen[2].opt.user_ids)) == (1, ["a", "b"])


# --- bots ----------------------------------------------------------------------------------


def test_bot_calls_and_wrappers(mm_fake: FakeMattermost) -> None:
    api = mm_fake.api
    created = api.create_bot(wrappers.Bot(username="helper", display_name="Helper"))
    bot = wrappers.Bot.from_proto(created)
    assert (bot.username, bot.display_name) == ("helper", "Helper")
    patched = api.patch_bot(bot.user_id, patch=wrappers.BotPatch(display_name="Helper 2"))
    assert (patched.display_name, patched.username) == ("Helper 2", "helper")
    assert api.get_bot(bot.user_id, include_deleted=False).user_id == bot.user_id
    # Options left out page by 60, as its BotGetOptions does (Go's zero value pages by 0).
    assert [b.username for b in api.get_bots()] == ["helper"]
    assert mm_fake.calls_to("GetBots")[-1].request.options.per_page == 60
    assert [b.username for b in api.get_bots(wrappers.BotGetOptions(owner_id=""))] == ["helper"]
    assert mm_fake.calls_to("GetBots")[-1].request.options.per_page == 60
    assert api.ensure_bot_user(wrappers.Bot(username="helper")) == bot.user_id


# --- commands ------------------------------------------------------------------------------


def test_command_calls_take_its_argument_names(mm_fake: FakeMattermost) -> None:
    api = mm_fake.api
    executed = record(mm_fake, "ExecuteSlashCommand", m.CommandResponse(text="done"))
    args = wrappers.CommandArgs(command="/echo hi", channel_id="c1")
    response = api.execute_slash_command(args=args)
    assert wrappers.CommandResponse.from_proto(response).text == "done"
    assert executed[0].command_args.command == "/echo hi"

    created = record(mm_fake, "CreateCommand", m.Command(id="cmd1", trigger="echo", method="P"))
    command = api.create_command(command=wrappers.Command(trigger="echo", team_id="t1"))
    assert wrappers.Command.from_proto(command).id == "cmd1"
    assert (created[0].cmd.trigger, created[0].cmd.method) == ("echo", "P")

    updated = record(mm_fake, "UpdateCommand", m.Command(id="cmd1", trigger="echo2"))
    assert api.update_command("cmd1", command=wrappers.Command(trigger="echo2")).trigger == (
        "echo2"
    )
    assert (updated[0].command_id, updated[0].updated_cmd.trigger) == ("cmd1", "echo2")

    api.register_command(command=wrappers.Command(trigger="hello", auto_complete=True))
    assert [(c.trigger, c.auto_complete) for c in mm_fake.commands] == [("hello", True)]


# --- config (plugin management) --------------------------------------------------------------


def test_plugin_management_takes_plugin_id_as_a_keyword(mm_fake: FakeMattermost) -> None:
    for method in ("enable_plugin", "disable_plugin", "remove_plugin"):
        rpc = mm_fake.method_name(method)
        seen = record(mm_fake, rpc)
        getattr(mm_fake.api, method)(plugin_id="com.example.other")
        assert seen[0].id == "com.example.other", method


# --- groups --------------------------------------------------------------------------------


def test_get_groups_with_only_paging(mm_fake: FakeMattermost) -> None:
    seen = record(mm_fake, "GetGroups", [m.Group(id="g1", name="devs")])
    groups = mm_fake.api.get_groups(page=1, per_page=10)
    assert [wrappers.Group.from_proto(g).name for g in groups] == ["devs"]
    assert (seen[0].page, seen[0].per_page) == (1, 10)
    assert not seen[0].HasField("opts") and not seen[0].HasField("view_restrictions")
    mm_fake.api.get_groups()
    assert (seen[1].page, seen[1].per_page) == (0, 60)


def test_group_calls_take_its_argument_names(mm_fake: FakeMattermost) -> None:
    api = mm_fake.api
    by_source = record(mm_fake, "GetGroupsBySource", [m.Group(id="g1", source="ldap")])
    assert [g.id for g in api.get_groups_by_source(source="ldap")] == ["g1"]
    assert by_source[0].group_source == "ldap"

    answer = m.GroupSyncable(group_id="g1", syncable_id="t1", type="team", auto_add=True)
    for method in ("upsert_group_syncable", "update_group_syncable"):
        seen = record(mm_fake, mm_fake.method_name(method), answer)
        syncable = wrappers.GroupSyncable(
            group_id="g1", syncable_id="t1", syncable_type="team", auto_add=True
        )
        result = getattr(api, method)(syncable=syncable)
        assert wrappers.GroupSyncable.from_proto(result) == syncable
        assert (seen[0].group_syncable.type, seen[0].group_syncable.auto_add) == ("team", True)

    members = record(mm_fake, "UpsertGroupMembers", [m.GroupMember(group_id="g1", user_id="u1")])
    out = api.upsert_group_members("g1", user_ids=["u1"])
    assert wrappers.GroupMember.from_proto(out[0]) == wrappers.GroupMember("g1", "u1")
    assert list(members[0].user_i_ds) == ["u1"]


def test_create_default_syncable_memberships_keywords(mm_fake: FakeMattermost) -> None:
    seen = record(mm_fake, "CreateDefaultSyncableMemberships")
    mm_fake.api.create_default_syncable_memberships(
        since=1700, scope_teams=True, scope_channels=False, re_add_removed_members=True
    )
    assert (seen[0].params.since, seen[0].params.re_add_removed_members) == (1700, True)
    mm_fake.api.create_default_syncable_memberships()
    assert seen[1].params.since == 0


# --- shared channels -------------------------------------------------------------------------


def test_shared_channel_calls(mm_fake: FakeMattermost) -> None:
    api = mm_fake.api
    registered = record(mm_fake, "RegisterPluginForSharedChannels", "remote1")
    assert api.register_plugin_for_shared_channels("com.example.p", "Example", "desc") == (
        "remote1"
    )
    opts = registered[0].opts
    assert (opts.plugin_id, opts.displayname) == ("com.example.p", "Example")
    api.register_plugin_for_shared_channels(plugin_id="com.example.p", display_name="Ex")
    assert registered[1].opts.displayname == "Ex"
    api.register_plugin_for_shared_channels({"plugin_id": "x", "displayname": "X"})  # ours
    assert registered[2].opts.displayname == "X"

    answer = m.SharedChannel(channel_id="c1", home=True, share_name="s")
    for method in ("share_channel", "update_shared_channel"):
        seen = record(mm_fake, mm_fake.method_name(method), answer)
        shared = wrappers.SharedChannel(channel_id="c1", home="true", share_name="s")
        result = getattr(api, method)(shared_channel=shared)
        assert wrappers.SharedChannel.from_proto(result).home is True
        assert (seen[0].sc.channel_id, seen[0].sc.home) == ("c1", True)

    cursor = record(mm_fake, "UpdateSharedChannelCursor")
    api.update_shared_channel_cursor("c1", "r1", 1700, "p1")
    sent = cursor[0].cusror
    assert (sent.last_post_update_at, sent.last_post_update_id) == (1700, "p1")
    api.update_shared_channel_cursor("c1", "r1", cursor={"last_post_create_id": "p2"})
    assert cursor[1].cusror.last_post_create_id == "p2"

    invited = record(mm_fake, "InviteRemoteToChannel")
    api.invite_remote_to_channel("c1", "r1", "u1")
    api.invite_remote_to_channel("c1", "r1", "u1", share_if_not_shared=True)
    assert [i.share_if_not_shared for i in invited] == [False, True]


# --- audit, dialogs, mail, push, websocket, cluster, HTTP -------------------------------------


def test_audit_records_as_the_other_sdk_builds_them(mm_fake: FakeMattermost) -> None:
    seen = record(mm_fake, "LogAuditRec")
    rec = wrappers.AuditRecord(
        event="updateThing",
        status="success",
        user_id="u1",
        session_id="s1",
        client="plugin",
        ip_address="10.0.0.1",
        api_path="/plugins/x/thing",
        meta={"thing": "t1"},
    )
    mm_fake.api.log_audit_rec(record=rec)
    sent = seen[0].rec
    assert (sent.event_name, sent.status, sent.actor.user_id, sent.actor.ip_address) == (
        "updateThing",
        "success",
        "u1",
        "10.0.0.1",
    )
    assert struct_to_python(sent.meta) == {"thing": "t1", "api_path": "/plugins/x/thing"}
    assert wrappers.AuditRecord.from_proto(sent) == rec

    leveled = record(mm_fake, "LogAuditRecWithLevel")
    mm_fake.api.log_audit_rec_with_level(rec, "audit-api")
    mm_fake.api.log_audit_rec_with_level(record=rec, level="info")
    assert [(x.level.id, x.level.name) for x in leveled] == [(100, "audit-api"), (4, "info")]
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        mm_fake.api.log_audit_rec_with_level(rec, "loud")


def test_open_interactive_dialog_takes_its_wrappers(mm_fake: FakeMattermost) -> None:
    seen = record(mm_fake, "OpenInteractiveDialog")
    element = wrappers.DialogElement(
        display_name="Email",
        name="email",
        type="text",
        subtype="email",
        options=[{"text": "A", "value": "a"}],
    )
    dialog = wrappers.Dialog(callback_id="cb", title="Hi", elements=[element])
    request = wrappers.OpenDialogRequest(trigger_id="t1", url="/plugins/x/submit", dialog=dialog)
    mm_fake.api.open_interactive_dialog(dialog_request=request)
    sent = seen[0].dialog
    assert (sent.trigger_id, sent.dialog.title, sent.dialog.elements[0].sub_type) == (
        "t1",
        "Hi",
        "email",
    )
    assert wrappers.OpenDialogRequest.from_proto(sent) == request


def test_push_notification_badge_as_a_string(mm_fake: FakeMattermost) -> None:
    seen = record(mm_fake, "SendPushNotification")
    note = wrappers.PushNotification(message="hi", badge="3", channel_id="c1")
    mm_fake.api.send_push_notification(note, "u1")
    assert (seen[0].notification.badge, seen[0].user_id) == (3, "u1")
    assert wrappers.PushNotification.from_proto(seen[0].notification).badge == "3"


def test_publish_web_socket_event_with_a_broadcast_dict(mm_fake: FakeMattermost) -> None:
    seen = record(mm_fake, "PublishWebSocketEvent")
    mm_fake.api.publish_web_socket_event(
        "refresh", {"id": "1"}, {"channel_id": "c1", "omit_users": {"u2": True}}
    )
    assert (seen[0].event, seen[0].broadcast.channel_id) == ("refresh", "c1")
    assert dict(seen[0].broadcast.omit_users) == {"u2": True}


def test_publish_plugin_cluster_event_with_id_and_data(mm_fake: FakeMattermost) -> None:
    seen = record(mm_fake, "PublishPluginClusterEvent")
    mm_fake.api.publish_plugin_cluster_event("sync", b"payload")
    mm_fake.api.publish_plugin_cluster_event(
        event_id="sync", data=b"x", send_type="best_effort", target_id="node2"
    )
    assert [(r.ev.id, r.ev.data, r.opts.send_type, r.opts.target_id) for r in seen] == [
        ("sync", b"payload", "reliable", ""),
        ("sync", b"x", "best_effort", "node2"),
    ]
    mm_fake.api.publish_plugin_cluster_event(  # ours
        m.PluginClusterEvent(id="ours"), m.PluginClusterEventSendOptions(send_type="reliable")
    )
    assert seen[2].ev.id == "ours"


def test_plugin_http_with_plain_headers_or_none(mm_fake: FakeMattermost) -> None:
    requests: list[Any] = []

    def answer(parts: list[Any]) -> list[Any]:
        requests.append(parts)
        head = m.HTTPResponsePart()
        head.init.status_code = 200
        return [head, m.HTTPResponsePart(body=b"ok")]

    mm_fake.on("PluginHTTP", answer)
    init, body = mm_fake.api.plugin_http("GET", "/other.plugin/status")
    assert (init.status_code, body) == (200, b"ok")
    first = requests[0][0].init
    assert (first.method, first.url, dict(first.headers), first.has_body) == (
        "GET",
        "/other.plugin/status",
        {},
        False,
    )
    mm_fake.api.plugin_http("POST", "/other.plugin/x", {"Content-Type": "application/json"}, b"{}")
    sent = requests[1][0].init
    assert list(sent.headers["Content-Type"].values) == ["application/json"]


# --- license ---------------------------------------------------------------------------------


def test_request_trial_license_with_its_defaults(mm_fake: FakeMattermost) -> None:
    seen = record(mm_fake, "RequestTrialLicense")
    mm_fake.api.request_trial_license("u1", 50)
    mm_fake.api.request_trial_license("u1", 50, terms_accepted=True)
    assert [(r.users, r.terms_accepted, r.receive_emails_accepted) for r in seen] == [
        (50, False, False),
        (50, True, False),
    ]


# --- emoji, upload sessions, post search -----------------------------------------------------


def test_get_emoji_list_takes_sort(mm_fake: FakeMattermost) -> None:
    seen = record(mm_fake, "GetEmojiList", [m.Emoji(id="e1", name="party")])
    emojis = mm_fake.api.get_emoji_list(sort="name", per_page=20)
    assert [wrappers.Emoji.from_proto(e).name for e in emojis] == ["party"]
    assert (seen[0].sort_by, seen[0].page, seen[0].per_page) == ("name", 0, 20)
    mm_fake.api.get_emoji_list()
    assert (seen[1].sort_by, seen[1].per_page) == ("", 60)


def test_upload_sessions_take_session_and_data(mm_fake: FakeMattermost) -> None:
    created = record(mm_fake, "CreateUploadSession", m.UploadSession(id="up1", channel_id="c1"))
    session = mm_fake.api.create_upload_session(
        session=wrappers.UploadSession(channel_id="c1", filename="a.bin", file_size=3)
    )
    assert wrappers.UploadSession.from_proto(session).id == "up1"
    assert (created[0].us.filename, created[0].us.file_size) == ("a.bin", 3)

    uploads: list[Any] = []

    def upload(parts: list[Any]) -> Any:
        uploads.append(parts)
        return m.FileInfo(id="f1", size=3)

    mm_fake.on("UploadData", upload)
    info = mm_fake.api.upload_data(session=wrappers.UploadSession(id="up1"), data=b"abc")
    assert wrappers.FileInfo.from_proto(info).size == 3
    assert uploads and uploads[0][0].WhichOneof("part") is not None


def test_post_search_takes_a_terms_string(mm_fake: FakeMattermost) -> None:
    in_team = record(mm_fake, "SearchPostsInTeam", [m.Post(id="p1", message="hello world")])
    posts = mm_fake.api.search_posts_in_team("t1", "hello")
    assert [p.id for p in posts] == ["p1"]
    assert [x.terms for x in in_team[0].params_list] == ["hello"]
    mm_fake.api.search_posts_in_team("t1", terms="world")
    assert in_team[1].params_list[0].terms == "world"

    results = m.PostSearchResults()
    results.post_list.order.append("p1")
    for_user = record(mm_fake, "SearchPostsInTeamForUser", results)
    found = mm_fake.api.search_posts_in_team_for_user("t1", "u1", "hello")
    assert list(found.post_list.order) == ["p1"]
    assert (for_user[0].user_id, for_user[0].search_params.terms) == ("u1", "hello")


# --- properties ------------------------------------------------------------------------------


def test_property_groups_registered_and_read_by_its_group_id(mm_fake: FakeMattermost) -> None:
    registered = record(mm_fake, "RegisterPropertyGroup", m.PropertyGroup(id="pg1", name="grp"))
    group = mm_fake.api.register_property_group("grp", "My group")
    assert (group.id, group.name) == ("pg1", "grp")
    assert registered[0].name == "grp"
    mm_fake.api.register_property_group(group_id="grp2", group_name="Other")
    mm_fake.api.register_property_group("grp3")  # ours
    assert [r.name for r in registered[1:]] == ["grp2", "grp3"]
    read = record(mm_fake, "GetPropertyGroup", m.PropertyGroup(id="pg1", name="grp"))
    assert mm_fake.api.get_property_group(group_id="grp").id == "pg1"
    assert read[0].name == "grp"


def test_property_fields_as_json_and_by_id_alone(mm_fake: FakeMattermost) -> None:
    api = mm_fake.api
    field = {"group_id": "pg1", "name": "level", "type": "text", "attrs": {"max": 3}, "x": 1}
    created = record(mm_fake, "CreatePropertyField", m.PropertyField(id="f1", name="level"))
    assert api.create_property_field(json.dumps(field).encode()).id == "f1"
    sent = created[0].field
    assert (sent.group_id, sent.name, sent.type) == ("pg1", "level", "text")
    assert struct_to_python(sent.attrs) == {"max": 3}
    api.create_property_field(field_json=json.dumps({"name": "other"}))
    assert created[1].field.name == "other"

    got = record(mm_fake, "GetPropertyField", m.PropertyField(id="f1"))
    assert api.get_property_field("f1").id == "f1"
    api.get_property_field(field_id="f1")
    api.get_property_field("pg1", "f1")  # ours
    assert [(r.group_id, r.field_id) for r in got] == [("", "f1"), ("", "f1"), ("pg1", "f1")]

    by_name = record(mm_fake, "GetPropertyFieldByName", m.PropertyField(id="f1"))
    api.get_property_field_by_name("pg1", "level")
    api.get_property_field_by_name("pg1", "t1", "level")  # ours
    assert [(r.group_id, r.target_id, r.name) for r in by_name] == [
        ("pg1", "", "level"),
        ("pg1", "t1", "level"),
    ]

    updated = record(mm_fake, "UpdatePropertyField", m.PropertyField(id="f1", name="lvl"))
    field_json = json.dumps({"id": "f1", "group_id": "pg1", "name": "lvl"}).encode()
    assert api.update_property_field(field_json).name == "lvl"
    assert (updated[0].group_id, updated[0].field.name) == ("pg1", "lvl")

    many = record(mm_fake, "UpdatePropertyFields", [m.PropertyField(id="f1")])
    fields = [{"id": "f1", "group_id": "pg1"}, {"id": "f2", "group_id": "pg1"}]
    assert [f.id for f in api.update_property_fields(json.dumps(fields).encode())] == ["f1"]
    assert (many[0].group_id, [f.id for f in many[0].fields]) == ("pg1", ["f1", "f2"])

    deleted = record(mm_fake, "DeletePropertyField")
    api.delete_property_field("f1")
    assert (deleted[0].group_id, deleted[0].field_id) == ("", "f1")


def test_property_values_as_json_and_by_id_alone(mm_fake: FakeMattermost) -> None:
    api = mm_fake.api
    value = {"group_id": "pg1", "field_id": "f1", "target_id": "u1", "value": {"n": 2}}
    stored = m.PropertyValue(id="v1", value=b'{"n": 2}')
    for method in ("create_property_value", "upsert_property_value"):
        seen = record(mm_fake, mm_fake.method_name(method), stored)
        assert getattr(api, method)(json.dumps(value).encode()).id == "v1"
        assert (seen[0].value.field_id, json.loads(seen[0].value.value)) == ("f1", {"n": 2})

    got = record(mm_fake, "GetPropertyValue", stored)
    assert json.loads(api.get_property_value("v1").value) == {"n": 2}
    assert (got[0].group_id, got[0].value_id) == ("", "v1")

    updated = record(mm_fake, "UpdatePropertyValue", stored)
    api.update_property_value(value_json=json.dumps({**value, "id": "v1"}))
    assert (updated[0].group_id, updated[0].value.id) == ("pg1", "v1")

    listed = [{"id": "v1", "group_id": "pg1", "value": "a"}, {"id": "v2", "group_id": "pg1"}]
    upd_many = record(mm_fake, "UpdatePropertyValues", [stored])
    api.update_property_values(json.dumps(listed).encode())
    assert (upd_many[0].group_id, len(upd_many[0].values)) == ("pg1", 2)
    assert upd_many[0].values[0].value == b'"a"'
    ups_many = record(mm_fake, "UpsertPropertyValues", [stored])
    api.upsert_property_values(values_json=json.dumps(listed))
    assert [v.id for v in ups_many[0].values] == ["v1", "v2"]

    deleted = record(mm_fake, "DeletePropertyValue")
    api.delete_property_value("v1")
    for_field = record(mm_fake, "DeletePropertyValuesForField")
    api.delete_property_values_for_field("f1")
    for_target = record(mm_fake, "DeletePropertyValuesForTarget")
    api.delete_property_values_for_target("u1", "user")
    api.delete_property_values_for_target("pg1", "user", "u1")  # ours
    assert (deleted[0].group_id, deleted[0].value_id) == ("", "v1")
    assert (for_field[0].group_id, for_field[0].field_id) == ("", "f1")
    assert [(r.group_id, r.target_type, r.target_id) for r in for_target] == [
        ("", "user", "u1"),
        ("pg1", "user", "u1"),
    ]


def test_property_calls_go_cannot_answer_say_what_to_call(mm_fake: FakeMattermost) -> None:
    api = mm_fake.api
    with pytest.raises(TypeError, match=r"call count_property_fields_for_target\(group_id"):
        api.count_property_fields_for_target("u1", "user")
    with pytest.raises(TypeError, match=r"call get_property_fields\(group_id, ids\)"):
        api.get_property_fields("pg1", per_page=10)
    with pytest.raises(TypeError, match=r"call get_property_values\(group_id, ids\)"):
        api.get_property_values("pg1", "u1")
    with pytest.raises(TypeError, match="not a search term"):
        api.search_property_fields("pg1", "lev")
    with pytest.raises(TypeError, match="not a search term"):
        api.search_property_values("pg1", "lev", target_id="u1")
    # Go's shapes work.
    counted = record(mm_fake, "CountPropertyFieldsForTarget", 4)
    assert api.count_property_fields_for_target("pg1", "user", "u1") == 4
    assert counted[0].include_deleted is False
    record(mm_fake, "GetPropertyFields", [m.PropertyField(id="f1")])
    assert [f.id for f in api.get_property_fields("pg1", ["f1"])] == ["f1"]
    searched = record(mm_fake, "SearchPropertyFields", [])
    api.search_property_fields("pg1", {"per_page": 5})
    api.search_property_fields("pg1", per_page=7)  # Go's options as keywords
    assert [r.opts.per_page for r in searched] == [5, 7]
    # Go's shapes with keywords are not taken for the other SDK's.
    api.count_property_fields_for_target("pg1", "user", target_id="u1")
    assert counted[1].target_id == "u1"
    by_name = record(mm_fake, "GetPropertyFieldByName", m.PropertyField(id="f1"))
    api.get_property_field_by_name("pg1", "t1", name="level")
    assert (by_name[0].target_id, by_name[0].name) == ("t1", "level")
    for_target = record(mm_fake, "DeletePropertyValuesForTarget")
    api.delete_property_values_for_target("pg1", target_type="user", target_id="u1")
    assert (for_target[0].group_id, for_target[0].target_id) == ("pg1", "u1")


# --- the wrappers of the newest wrappers file ---------------------------------------------------


def test_the_other_sdks_newest_wrappers_convert_both_ways() -> None:
    app = wrappers.OAuthApp(name="a", callback_urls="https://a/cb, https://b/cb")
    assert list(app.to_proto().callback_urls) == ["https://a/cb", "https://b/cb"]
    assert wrappers.OAuthApp.from_proto(app.to_proto()) == wrappers.OAuthApp(
        name="a", callback_urls="https://a/cb,https://b/cb"
    )
    assert wrappers.Command().method == "P" and wrappers.BotGetOptions().per_page == 60
    assert wrappers.BotPatch(username="x").to_proto() == m.BotPatch(username="x")
    # An empty props Struct stays unset, as in a message built by hand.
    assert wrappers.CommandResponse(text="t").to_proto() == m.CommandResponse(text="t")
    pref = wrappers.Preference(user_id="u", category="c", name="n", value="v")
    assert wrappers.Preference.from_proto(pref.to_proto()) == pref
    group = wrappers.Group(id="g", name="devs", source="custom", allow_reference=True)
    assert wrappers.Group.from_proto(group.to_proto()) == group
    status = wrappers.PluginStatus.from_proto(m.PluginStatus(plugin_id="p", state=2))
    assert (status.plugin_id, status.state) == ("p", 2)
    info = wrappers.PluginInfo.from_proto(m.Manifest(id="p", version="1.0.0"))
    assert info.manifest == {"id": "p", "version": "1.0.0"}
    assert info.to_proto() == m.Manifest(id="p", version="1.0.0")
    emoji = wrappers.Emoji(id="e", name="party")
    assert wrappers.Emoji.from_proto(emoji.to_proto()) == emoji
    from mattermost_plugin._internal import wrappers as internal

    for name in NEWEST_WRAPPERS:
        assert name in internal.__all__, name  # its own dataclass, not one made on first use
        assert getattr(internal, name) is getattr(wrappers, name)


def test_too_many_positional_arguments_is_an_error(mm_fake: FakeMattermost) -> None:
    with pytest.raises(TypeError, match=r"get_user\(\) takes 1 arguments \(user_id\); 2 were"):
        mm_fake.api.get_user("u1", "extra")


# --- from a plugin, and on the async client ----------------------------------------------------


class Upstreamish(Plugin):
    """Calls written the way the other SDK's docstrings show them, from OnActivate."""

    @hook
    def OnActivate(self) -> None:  # the other SDK's bare @hook: the name is the hook
        bot_id = self.api.ensure_bot_user(wrappers.Bot(username="upbot", display_name="Up"))
        self.api.patch_bot(bot_id, patch=wrappers.BotPatch(description="from upstream"))
        self.api.register_command(command=wrappers.Command(trigger="up", auto_complete=True))
        self.api.publish_plugin_cluster_event("activated", b"1")


def test_a_plugin_calling_the_other_sdks_way(
    mm_fake: FakeMattermost, mm_plugin: StartPlugin
) -> None:
    events = record(mm_fake, "PublishPluginClusterEvent")
    mm_plugin(Upstreamish)
    (bot,) = mm_fake.bots.values()
    assert (bot.username, bot.description) == ("upbot", "from upstream")
    assert [c.trigger for c in mm_fake.commands] == ["up"]
    assert (events[0].ev.id, events[0].ev.data) == ("activated", b"1")


async def test_the_async_client_takes_the_same_shapes(mm_fake: FakeMattermost) -> None:
    seen = record(mm_fake, "GetFileInfos", [])
    await mm_fake.aapi.get_file_infos(channel_id="c9")
    got = record(mm_fake, "GetPropertyField", m.PropertyField(id="f1"))
    assert (await mm_fake.aapi.get_property_field("f1")).id == "f1"
    patched = record(mm_fake, "PatchChannelMembersNotifications")
    await mm_fake.aapi.patch_channel_members_notifications([("c", "u")], {})
    assert list(seen[0].opt.channel_ids) == ["c9"] and got[0].group_id == ""
    assert patched[0].members[0].user_id == "u"
