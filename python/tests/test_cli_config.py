"""``mmplug config get|set`` against the fake Mattermost REST API (cli_fixtures/fake_mattermost.py),
over a token and over the local-mode socket: what is read and sent (the whole
``PluginSettings.Plugins`` map, since the server's patch replaces maps whole), how values are
typed by the manifest's ``settings_schema``, the keys written (lower case, one spelling), and
every error."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_fixtures.fake_mattermost import FAKE_SETTING, FakeMattermost

from mattermost_plugin.cli import main
from mattermost_plugin.cli import server as server_mod
from mattermost_plugin.cli.config import loose_value, typed_value

PLUGIN_ID = "com.example.configured"
OTHER_ID = "com.example.other"

MANIFEST: dict[str, Any] = {
    "id": PLUGIN_ID,
    "name": "Configured",
    "version": "1.0.0",
    "settings_schema": {
        "settings": [
            {"key": "BannedWords", "type": "longtext", "default": ""},
            {
                "key": "Action",
                "type": "radio",
                "default": "reject",
                "options": [
                    {"display_name": "Reject", "value": "reject"},
                    {"display_name": "Flag", "value": "flag"},
                ],
            },
            {"key": "MatchWholeWords", "type": "bool", "default": True},
            {"key": "MaxLength", "type": "number", "default": 4000},
            {"key": "Greeting", "type": "text", "default": "hello"},
            {"key": "APIToken", "type": "text", "secret": True, "default": ""},
            {"key": "Layout", "type": "custom"},
        ],
        "sections": [
            {
                "key": "Advanced",
                "settings": [
                    {
                        "key": "Level",
                        "type": "dropdown",
                        "default": "low",
                        "options": [
                            {"display_name": "Low", "value": "low"},
                            {"display_name": "High", "value": "high"},
                        ],
                    }
                ],
            }
        ],
    },
}


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMattermost]:
    server = FakeMattermost()
    url = server.serve_tcp()
    for name in ("MM_ADMIN_TOKEN", "MM_ADMIN_USERNAME", "MM_ADMIN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MM_LOCALSOCKETPATH", str(tmp_path / "no-such.socket"))
    monkeypatch.setenv("MM_SERVICESETTINGS_SITEURL", url)
    monkeypatch.setenv("MM_ADMIN_TOKEN", server.admin_token)
    server.installed[PLUGIN_ID] = json.loads(json.dumps(MANIFEST))
    server.installed[OTHER_ID] = {"id": OTHER_ID, "name": "Other", "version": "0.1.0"}
    server.config["PluginSettings"]["Plugins"] = {
        PLUGIN_ID: {"bannedwords": "bad", "action": "flag", "apitoken": "s3cret"},
        OTHER_ID: {"anything": [1, 2]},
        # A plugin not installed any more: over a token the server does not show it.
        "com.example.removed": {"kept": "yes"},
    }
    server.config["PluginSettings"]["PluginStates"] = {
        PLUGIN_ID: {"Enable": True},
        "com.example.removed": {"Enable": False},
    }
    yield server
    server.stop()


@pytest.fixture
def local(tmp_path: Path, fake: FakeMattermost, monkeypatch: pytest.MonkeyPatch) -> FakeMattermost:
    """The fake on a local-mode socket too, with no credentials in the environment."""
    socket_path = tmp_path / "mm.socket"
    fake.serve_unix(socket_path)
    monkeypatch.setenv("MM_LOCALSOCKETPATH", str(socket_path))
    monkeypatch.delenv("MM_ADMIN_TOKEN")
    monkeypatch.delenv("MM_SERVICESETTINGS_SITEURL")
    return fake


def run(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def stored(fake: FakeMattermost, plugin_id: str = PLUGIN_ID) -> dict[str, Any]:
    settings: dict[str, Any] = fake.config["PluginSettings"]["Plugins"][plugin_id]
    return settings


def calls(fake: FakeMattermost) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests]


# get -----------------------------------------------------------------------------------------


def test_get_prints_the_stored_settings_over_a_token(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, ["config", "get", PLUGIN_ID])
    assert code == 0, err
    # The server masks the secret setting over a token.
    assert json.loads(out) == {"action": "flag", "apitoken": FAKE_SETTING, "bannedwords": "bad"}
    assert calls(fake) == [("GET", "/api/v4/plugins"), ("GET", "/api/v4/config")]
    assert all(r.headers["authorization"] == "Bearer admin-token" for r in fake.requests)


def test_get_in_local_mode_sees_the_configuration_as_stored(
    local: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, ["config", "get", "--local", PLUGIN_ID])
    assert code == 0, err
    assert json.loads(out)["apitoken"] == "s3cret"
    assert {r.transport for r in local.requests} == {"unix"}
    assert all("authorization" not in r.headers for r in local.requests)
    assert "connecting in local mode over" in err


def test_get_one_key_any_case_text_as_is_or_as_json(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, ["config", "get", PLUGIN_ID, "Action"])[:2] == (0, "flag\n")
    assert run(capsys, ["config", "get", PLUGIN_ID, "ACTION", "--json"])[:2] == (0, '"flag"\n')
    stored(fake)["matchwholewords"] = False
    assert run(capsys, ["config", "get", PLUGIN_ID, "MatchWholeWords"])[:2] == (0, "false\n")


def test_get_a_key_not_stored_gives_the_manifests_default(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, ["config", "get", PLUGIN_ID, "maxlength"])
    assert (code, out) == (0, "4000\n")
    assert f"{PLUGIN_ID}: MaxLength is not set; this is its default" in err
    # A setting declared in a section.
    assert run(capsys, ["config", "get", PLUGIN_ID, "Level"])[:2] == (0, "low\n")


def test_get_warns_about_a_key_stored_in_two_spellings(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    stored(fake)["Action"] = "reject"
    code, out, err = run(capsys, ["config", "get", PLUGIN_ID, "action"])
    assert (code, out) == (0, "flag\n")
    assert "stored under 2 spellings (Action, action); the plugin sees one of them" in err


def test_get_effective_is_what_the_plugin_reads(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    stored(fake)["Greeting"] = "hi"
    code, out, err = run(capsys, ["config", "get", PLUGIN_ID, "--effective"])
    assert code == 0, err
    assert json.loads(out) == {
        "action": "flag",
        "apitoken": FAKE_SETTING,
        "bannedwords": "bad",
        "greeting": "hi",
        "layout": None,
        "level": "low",
        "matchwholewords": True,
        "maxlength": 4000,
    }
    code, _, err = run(capsys, ["config", "get", PLUGIN_ID, "Action", "--effective"])
    assert code == 2
    assert "mmplug config: error: --effective shows every setting; give no KEY with it" in err


def test_get_of_an_unknown_key(fake: FakeMattermost, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, ["config", "get", PLUGIN_ID, "Colour"])
    assert (code, out) == (1, "")
    assert (
        f"mmplug config: error: {PLUGIN_ID} has no setting Colour: its settings are APIToken, "
        "Action, BannedWords, Greeting, Layout, Level, MatchWholeWords, MaxLength, action, "
        "apitoken, bannedwords" in err
    )
    code, _, err = run(capsys, ["config", "get", OTHER_ID, "nope"])
    assert code == 1
    assert f"{OTHER_ID} has no setting nope: its settings are anything" in err


def test_get_of_a_plugin_without_settings_prints_an_empty_object(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.installed["com.example.bare"] = {"id": "com.example.bare", "version": "1.0.0"}
    assert run(capsys, ["config", "get", "com.example.bare"])[:2] == (0, "{}\n")
    code, _, err = run(capsys, ["config", "get", "com.example.bare", "x"])
    assert code == 1
    assert "com.example.bare has no setting x (it declares none)" in err


# set -----------------------------------------------------------------------------------------


def test_set_types_values_writes_lower_case_keys_and_sends_the_whole_map(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys,
        [
            "config",
            "set",
            PLUGIN_ID,
            "BannedWords=badword, worse phrase",
            "Action=reject",
            "MatchWholeWords=false",
            "MaxLength=120",
            "Greeting=42",
            "Level=high",
        ],
    )
    assert code == 0, err
    assert stored(fake) == {
        "bannedwords": "badword, worse phrase",
        "action": "reject",
        "matchwholewords": False,
        "maxlength": 120,
        "greeting": "42",
        "level": "high",
        "apitoken": "s3cret",  # sent back masked, kept by the server
    }
    # Other plugins' settings are sent back with it (the patch replaces the map whole).
    assert stored(fake, OTHER_ID) == {"anything": [1, 2]}
    assert calls(fake) == [
        ("GET", "/api/v4/plugins"),
        ("GET", "/api/v4/config"),
        ("PUT", "/api/v4/config/patch"),
    ]
    patch = fake.requests[-1]
    assert patch.headers["content-type"] == "application/json"
    body = json.loads(patch.body)
    assert list(body) == ["PluginSettings"]
    assert list(body["PluginSettings"]) == ["Plugins"]
    assert set(body["PluginSettings"]["Plugins"]) == {PLUGIN_ID, OTHER_ID}
    assert body["PluginSettings"]["Plugins"][PLUGIN_ID]["apitoken"] == FAKE_SETTING
    # stdout: the settings as saved, as the server answers them.
    assert json.loads(out)["maxlength"] == 120
    assert json.loads(out)["apitoken"] == FAKE_SETTING
    assert (
        f"saved bannedwords, action, matchwholewords, maxlength, greeting, level for {PLUGIN_ID}"
        in err
    )


def test_set_over_a_token_notes_the_settings_the_server_hides(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the real server does: settings of plugins not installed are not shown over a token,
    and the patch replaces PluginSettings.Plugins whole, so they are lost; mmplug says so."""
    code, _, err = run(capsys, ["config", "set", PLUGIN_ID, "Action=reject"])
    assert code == 0, err
    assert "com.example.removed" not in fake.config["PluginSettings"]["Plugins"]
    assert (
        "note: over a token the server does not show the settings of plugins that are not "
        "installed (com.example.removed); saving replaces PluginSettings.Plugins whole" in err
    )


def test_set_in_local_mode_keeps_everything_else(
    local: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, ["config", "set", PLUGIN_ID, "apitoken=new-secret"])
    assert code == 0, err
    assert stored(local) == {"bannedwords": "bad", "action": "flag", "apitoken": "new-secret"}
    assert stored(local, "com.example.removed") == {"kept": "yes"}
    assert {r.transport for r in local.requests} == {"unix"}
    assert "note:" not in err
    # The answer to the patch is sanitized, in local mode too.
    assert json.loads(out)["apitoken"] == FAKE_SETTING


def test_set_replaces_other_spellings_of_a_key(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    stored(fake)["Action"] = "flag"
    stored(fake)["ACTION"] = "flag"
    code, _, err = run(capsys, ["config", "set", PLUGIN_ID, "Action=reject"])
    assert code == 0, err
    assert [k for k in stored(fake) if k.lower() == "action"] == ["action"]
    assert stored(fake)["action"] == "reject"
    assert f"{PLUGIN_ID}: replacing Action with action (the spelling the plugin reads)" in err


def test_set_reports_every_bad_value_and_saves_nothing(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    before = json.loads(json.dumps(fake.config))
    code, out, err = run(
        capsys,
        [
            "config",
            "set",
            PLUGIN_ID,
            "MatchWholeWords=maybe",
            "MaxLength=12.5",
            "Action=delete",
            "Level=High",
            "Colour=red",
        ],
    )
    assert (code, out) == (1, "")
    assert "MatchWholeWords is a bool setting: 'maybe' is not true or false" in err
    assert "MaxLength is a number setting: '12.5' is not a whole number" in err
    assert "Action is a radio setting: 'delete' is not one of its options (reject, flag)" in err
    assert "Level is a dropdown setting: 'High' is not one of its options (low, high)" in err
    assert f"{PLUGIN_ID} has no setting Colour: its settings are APIToken, Action" in err
    assert "(--no-schema writes keys the manifest does not declare)" in err
    errors = [line for line in err.splitlines() if line.startswith("mmplug config: error:")]
    assert len(errors) == 1 and "Colour" in errors[0] and "maybe" in errors[0]  # one line
    assert fake.config == before
    assert calls(fake) == [("GET", "/api/v4/plugins")]


def test_set_with_no_schema_types_loosely_and_takes_any_key(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys,
        ["config", "set", PLUGIN_ID, "--no-schema", "Colour=red", "Limits=[1, 2]", "Count=7"],
    )
    assert code == 0, err
    assert stored(fake)["colour"] == "red"
    assert stored(fake)["limits"] == [1, 2]
    assert stored(fake)["count"] == 7


def test_set_of_a_plugin_without_a_schema_types_loosely(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, ["config", "set", OTHER_ID, "Enabled=true", "Name=x"])
    assert code == 0, err
    assert stored(fake, OTHER_ID) == {"anything": [1, 2], "enabled": True, "name": "x"}


def test_value_typing_rules() -> None:
    assert typed_value({"type": "bool"}, "B", "Yes") is True
    assert typed_value({"type": "bool"}, "B", "off") is False
    assert typed_value({"type": "number"}, "N", " -3 ") == -3
    assert typed_value({"type": "text"}, "T", "true") == "true"
    assert typed_value({"type": "longtext"}, "T", "a\nb") == "a\nb"
    assert typed_value({"type": "generated"}, "T", "123") == "123"
    assert typed_value({"type": "username"}, "T", "@alice") == "@alice"
    assert typed_value({"type": "radio"}, "R", "anything") == "anything"  # no options declared
    assert typed_value({"type": "custom"}, "C", '{"a": 1}') == {"a": 1}
    assert typed_value({"type": "custom"}, "C", "plain") == "plain"
    assert typed_value(None, "X", "null") is None
    assert loose_value('"quoted"') == "quoted"
    assert loose_value("") == ""


def test_set_reports_a_value_changed_by_a_plugins_hook(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    def hook(config: dict[str, Any]) -> dict[str, Any]:
        config["PluginSettings"]["Plugins"][PLUGIN_ID]["action"] = "flag"
        return config

    fake.config_will_be_saved = hook
    code, _, err = run(capsys, ["config", "set", PLUGIN_ID, "Action=reject"])
    assert code == 1
    assert (
        f"the server saved the configuration but {PLUGIN_ID}'s action reads 'flag', not "
        "'reject' (a plugin's ConfigurationWillBeSaved hook may have changed it)" in err
    )


# Errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Action"], "'Action' is not KEY=VALUE (e.g. Action=reject)"),
        (["=x"], "'=x' is not KEY=VALUE"),
        (["Action=reject", "action=flag"], "action is given twice (as Action before)"),
    ],
)
def test_set_usage_errors(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = run(capsys, ["config", "set", PLUGIN_ID, *args])
    assert code == 2
    assert f"mmplug config: error: {message}" in err
    assert fake.requests == []


def test_usage_without_action_or_assignments(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, ["config"])[0] == 2
    assert run(capsys, ["config", "set", PLUGIN_ID])[0] == 2
    assert run(capsys, ["config", "get"])[0] == 2


@pytest.mark.parametrize("action", [["get"], ["set", "Action=reject"]])
def test_unknown_plugin(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str], action: list[str]
) -> None:
    code, _, err = run(capsys, ["config", action[0], "com.example.absent", *action[1:]])
    assert code == 1
    assert "plugin com.example.absent is not installed on http://127.0.0.1:" in err
    assert "upload it first with `mmplug deploy`" in err
    code, _, err = run(capsys, ["config", action[0], PLUGIN_ID.upper(), *action[1:]])
    assert code == 1
    assert f"(did you mean {PLUGIN_ID}? ids are case-sensitive)" in err


@pytest.mark.parametrize("action", [["get"], ["set", "Action=reject"]])
def test_no_permission(
    fake: FakeMattermost,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    action: list[str],
) -> None:
    monkeypatch.setenv("MM_ADMIN_TOKEN", fake.user_token)
    code, _, err = run(capsys, ["config", action[0], PLUGIN_ID, *action[1:]])
    assert code == 1
    assert "failed: 403 api.context.permissions.app_error" in err
    assert "The account behind MM_ADMIN_TOKEN may not manage plugins" in err


def test_a_token_the_server_does_not_accept(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MM_ADMIN_TOKEN", "not-a-token")
    code, _, err = run(capsys, ["config", "get", PLUGIN_ID])
    assert code == 1
    assert "401 api.context.session_expired.app_error" in err
    assert "The server did not accept MM_ADMIN_TOKEN" in err


def test_a_read_only_configuration(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.config_read_only = True
    code, _, err = run(capsys, ["config", "set", PLUGIN_ID, "Action=reject"])
    assert code == 1
    assert (
        "saving the configuration failed: 403 ent.cluster.save_config.error: System Console is "
        "set to read-only" in err
    )
    assert "The server's configuration is read-only through the API" in err
    assert "may not manage plugins" not in err
    assert stored(fake)["action"] == "flag"


@pytest.mark.parametrize("action", [["get"], ["set", "Action=reject"]])
def test_unreachable_server(
    fake: FakeMattermost,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    action: list[str],
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MM_SERVICESETTINGS_SITEURL", f"http://127.0.0.1:{port}")
    code, _, err = run(capsys, ["config", action[0], PLUGIN_ID, *action[1:]])
    assert code == 1
    assert f"cannot reach the Mattermost server at http://127.0.0.1:{port}: " in err
    assert "Traceback" not in err


def test_local_without_a_socket(fake: FakeMattermost, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, ["config", "get", "--local", PLUGIN_ID])
    assert code == 1
    assert "--local: no server listens on" in err
    assert fake.requests == []


def test_the_local_socket_serves_the_config_routes(local: FakeMattermost) -> None:
    """GET /config and PUT /config/patch are local-mode routes (config_local.go); the socket
    still refuses what it does not serve, and a body that is not a configuration is a 400."""
    client = server_mod.MattermostClient(socket_path=os.environ["MM_LOCALSOCKETPATH"])
    assert client.get_config()["PluginSettings"]["Plugins"][PLUGIN_ID]["apitoken"] == "s3cret"
    assert client.request("GET", "/config/environment").status == 404
    answer = client.request("PUT", "/config/patch", body=b"[1]")
    assert answer.status == 400
    assert json.loads(answer.body)["id"] == "api.context.invalid_body_param.app_error"
    # A map in a patch replaces the stored one; structs merge field by field.
    saved = client.patch_config({"PluginSettings": {"Enable": True, "Plugins": {"a.b.c": {}}}})
    assert local.config["PluginSettings"]["Plugins"] == {"a.b.c": {}}
    assert local.config["PluginSettings"]["PluginStates"] != {}
    assert saved["PluginSettings"]["Plugins"] == {}  # a.b.c is not installed
