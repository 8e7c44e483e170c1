"""``mmplug deploy``, ``enable``, ``disable`` and ``logs`` against a fake Mattermost REST API
(tests/cli_fixtures/fake_mattermost.py) served on 127.0.0.1 and on a unix socket: the requests
the CLI sends (auth header, multipart body, force flag), its output and exit codes, and the
server's error answers."""

from __future__ import annotations

import io
import json
import os
import random
import socket
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_fixtures.elf import write_elf
from cli_fixtures.fake_mattermost import (
    STATE_FAILED_TO_START,
    STATE_NOT_RUNNING,
    STATE_RUNNING,
    FakeMattermost,
    UploadedFile,
)
from cli_fixtures.wheels import fake_index

from mattermost_plugin.cli import deploy as deploy_mod
from mattermost_plugin.cli import main
from mattermost_plugin.cli import server as server_mod
from mattermost_plugin.cli.errors import CLIError

PLUGIN_ID = "com.example.deployed"


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMattermost]:
    server = FakeMattermost()
    url = server.serve_tcp()
    for name in ("MM_ADMIN_TOKEN", "MM_ADMIN_USERNAME", "MM_ADMIN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    # No local-mode socket unless a test serves one.
    monkeypatch.setenv("MM_LOCALSOCKETPATH", str(tmp_path / "no-such.socket"))
    monkeypatch.setenv("MM_SERVICESETTINGS_SITEURL", url)
    monkeypatch.setenv("MM_ADMIN_TOKEN", server.admin_token)
    yield server
    server.stop()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Waiting without time passing: sleep advances a fake monotonic clock."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    monkeypatch.setattr(deploy_mod, "sleep", sleep)
    monkeypatch.setattr(deploy_mod, "monotonic", lambda: now[0])
    return now


def make_bundle(path: Path, plugin_id: str = PLUGIN_ID, version: str = "0.3.0") -> Path:
    manifest = json.dumps({"id": plugin_id, "name": "Deployed", "version": version}).encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(f"{plugin_id}/plugin.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        # 1 MiB that gzip cannot shrink, so the upload takes several chunks.
        payload = random.Random(0).randbytes(1 << 20)
        info = tarfile.TarInfo(f"{plugin_id}/data.bin")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return path


def run(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def api_calls(fake: FakeMattermost) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests]


# deploy --------------------------------------------------------------------------------------


def test_deploy_uploads_with_force_enables_and_waits(
    tmp_path: Path,
    fake: FakeMattermost,
    clock: list[float],
    capsys: pytest.CaptureFixture[str],
) -> None:
    bundle = make_bundle(tmp_path / "b.tar.gz")
    fake.activation = lambda plugin_id: [(STATE_NOT_RUNNING, ""), (STATE_RUNNING, "")]
    code, out, err = run(capsys, ["deploy", str(bundle)])
    assert code == 0, err
    assert out == f"{PLUGIN_ID} is running\n"
    assert api_calls(fake) == [
        ("POST", "/api/v4/plugins"),
        ("POST", f"/api/v4/plugins/{PLUGIN_ID}/enable"),
        ("GET", "/api/v4/plugins/statuses"),
        ("GET", "/api/v4/plugins/statuses"),
    ]
    for request in fake.requests:
        assert request.headers["authorization"] == f"Bearer {fake.admin_token}"
    upload = fake.requests[0]
    assert upload.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert int(upload.headers["content-length"]) == len(upload.body)
    assert upload.form["force"] == "true"
    plugin = upload.form["plugin"]
    assert isinstance(plugin, UploadedFile)
    assert plugin.filename == "b.tar.gz"
    assert plugin.data == bundle.read_bytes()
    assert clock[0] == deploy_mod.STATUS_POLL_SECONDS
    assert f"authenticating with MM_ADMIN_TOKEN against {fake_url(fake)}" in err
    assert "uploading b.tar.gz (1.0 MiB): 0%" not in err  # progress starts with the first chunk
    assert "uploading b.tar.gz (1.0 MiB): 100%" in err
    assert f"uploaded {PLUGIN_ID} 0.3.0 to {fake_url(fake)}" in err


def fake_url(fake: FakeMattermost) -> str:
    return os.environ["MM_SERVICESETTINGS_SITEURL"]


def test_deploy_replaces_an_installed_version(
    tmp_path: Path, fake: FakeMattermost, clock: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    fake.installed[PLUGIN_ID] = {"id": PLUGIN_ID, "version": "0.2.0"}
    code, _, err = run(capsys, ["deploy", str(make_bundle(tmp_path / "b.tar.gz"))])
    assert code == 0, err
    assert fake.installed[PLUGIN_ID]["version"] == "0.3.0"


def test_deploy_reports_a_plugin_that_fails_to_start(
    tmp_path: Path, fake: FakeMattermost, clock: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    fake.activation = lambda plugin_id: [
        (STATE_FAILED_TO_START, "no Python the bundle has wheels for: it has wheels for 3.13")
    ]
    code, out, err = run(capsys, ["deploy", str(make_bundle(tmp_path / "b.tar.gz"))])
    assert code == 1
    assert out == ""
    assert err.rstrip().endswith(
        f"mmplug deploy: error: {PLUGIN_ID} failed to start: no Python the bundle has wheels "
        f"for: it has wheels for 3.13 (see `mmplug logs {PLUGIN_ID}`)"
    )


def test_deploy_gives_up_waiting_after_wait_seconds(
    tmp_path: Path, fake: FakeMattermost, clock: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    fake.activation = lambda plugin_id: [(STATE_NOT_RUNNING, "")]
    code, _, err = run(capsys, ["deploy", str(make_bundle(tmp_path / "b.tar.gz")), "--wait", "5"])
    assert code == 1
    assert f"{PLUGIN_ID} was enabled but is still not running after 5 s" in err
    assert clock[0] == 5.0
    statuses = [r for r in fake.requests if r.path == "/api/v4/plugins/statuses"]
    assert len(statuses) == 11  # at 0, 0.5, ..., 5.0 s


def test_deploy_without_waiting(
    tmp_path: Path, fake: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, ["deploy", str(make_bundle(tmp_path / "b.tar.gz")), "--wait", "0"])
    assert code == 0, err
    assert out == f"{PLUGIN_ID} enabled\n"
    assert ("GET", "/api/v4/plugins/statuses") not in api_calls(fake)


def test_deploy_a_directory_bundles_it_first(
    tmp_path: Path,
    fake: FakeMattermost,
    clock: list[float],
    capsys: pytest.CaptureFixture[str],
) -> None:
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "plugin.json").write_text(
        json.dumps({"id": "com.example.fromdir", "name": "From dir", "version": "1.0.0"})
    )
    (plugin / "plugin.py").write_text("")
    bridge = write_elf(tmp_path / "bridge")
    index = fake_index(tmp_path / "index")
    args = ["deploy", str(plugin), "--bridge", f"linux-amd64={bridge}", "--python", "3.12"]
    args += ["--no-index", "--find-links", str(index)]
    code, out, err = run(capsys, args)
    assert code == 0, err
    assert out == "com.example.fromdir is running\n"
    bundle = plugin / "dist" / "com.example.fromdir-1.0.0.tar.gz"
    uploaded = fake.requests[0].form["plugin"]
    assert isinstance(uploaded, UploadedFile)
    assert uploaded.data == bundle.read_bytes()
    assert fake.installed["com.example.fromdir"]["server"] == {
        "executables": {"linux-amd64": "server/dist/plugin-linux-amd64"}
    }


def test_deploy_of_something_that_is_not_a_bundle(
    tmp_path: Path, fake: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    code, _, err = run(capsys, ["deploy", str(junk)])
    assert code == 1 and f"{junk} is not a plugin bundle (.tar.gz)" in err
    code, _, err = run(capsys, ["deploy", str(tmp_path / "missing.tar.gz")])
    assert code == 1 and "is neither a bundle (.tar.gz) nor a plugin directory" in err
    assert fake.requests == []


# Server errors -------------------------------------------------------------------------------


def test_uploads_disabled_names_the_setting(
    tmp_path: Path, fake: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.enable_uploads = False
    code, out, err = run(capsys, ["deploy", str(make_bundle(tmp_path / "b.tar.gz"))])
    assert code == 1
    assert out == ""
    line = err.strip().splitlines()[-1]
    assert line.startswith(
        "mmplug deploy: error: uploading b.tar.gz failed: 501 "
        "app.plugin.upload_disabled.app_error: Plugins and/or plugin uploads have been disabled."
    )
    assert "set PluginSettings.EnableUploads to true" in line
    assert "MM_PLUGINSETTINGS_ENABLEUPLOADS=true" in line
    assert PLUGIN_ID not in fake.installed


def test_a_bundle_over_the_servers_file_size_limit(
    tmp_path: Path, fake: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.max_file_size = 512 * 1024
    code, _, err = run(capsys, ["deploy", str(make_bundle(tmp_path / "b.tar.gz"))])
    assert code == 1
    assert (
        "uploading b.tar.gz failed: 413 api.plugin.upload.file_too_large.app_error: Uploaded "
        "plugin size exceeds limit.. The bundle is larger than the server accepts: raise "
        "FileSettings.MaxFileSize" in err
    )
    assert PLUGIN_ID not in fake.installed


def test_wrong_token_is_a_401(
    tmp_path: Path,
    fake: FakeMattermost,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MM_ADMIN_TOKEN", "not-a-token")
    code, _, err = run(capsys, ["deploy", str(make_bundle(tmp_path / "b.tar.gz"))])
    assert code == 1
    assert (
        "uploading b.tar.gz failed: 401 api.context.session_expired.app_error: Invalid or "
        "expired session, please login again.. The server did not accept MM_ADMIN_TOKEN" in err
    )


def test_token_of_a_non_admin_is_a_403(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MM_ADMIN_TOKEN", fake.user_token)
    code, _, err = run(capsys, ["enable", PLUGIN_ID])
    assert code == 1
    assert f"enable {PLUGIN_ID} failed: 403 api.context.permissions.app_error" in err
    assert "The account behind MM_ADMIN_TOKEN may not manage plugins" in err


def test_enable_of_a_plugin_that_is_not_installed(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, ["enable", "com.example.absent"])
    assert code == 1
    assert "plugin com.example.absent is not installed on http://127.0.0.1:" in err
    assert "upload it first with `mmplug deploy`" in err


def test_unreachable_server(
    tmp_path: Path,
    fake: FakeMattermost,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens on the port any more.
    monkeypatch.setenv("MM_SERVICESETTINGS_SITEURL", f"http://127.0.0.1:{port}")
    code, _, err = run(capsys, ["disable", PLUGIN_ID])
    assert code == 1
    assert f"cannot reach the Mattermost server at http://127.0.0.1:{port}: " in err
    assert "Connection refused" in err
    assert "Traceback" not in err


def test_no_server_or_credentials_configured(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MM_ADMIN_TOKEN")
    code, _, err = run(capsys, ["disable", PLUGIN_ID])
    assert code == 1
    assert "no credentials for http://127.0.0.1:" in err
    assert (
        "set MM_ADMIN_TOKEN (a system admin's personal access token), or MM_ADMIN_USERNAME" in err
    )

    monkeypatch.delenv("MM_SERVICESETTINGS_SITEURL")
    code, _, err = run(capsys, ["disable", PLUGIN_ID])
    assert code == 1
    assert "no Mattermost server configured: set MM_SERVICESETTINGS_SITEURL" in err

    monkeypatch.setenv("MM_SERVICESETTINGS_SITEURL", "chat.example.com")
    monkeypatch.setenv("MM_ADMIN_TOKEN", "t")
    code, _, err = run(capsys, ["disable", PLUGIN_ID])
    assert code == 1
    assert "MM_SERVICESETTINGS_SITEURL='chat.example.com' is not an http:// or https:// URL" in err
    assert fake.requests == []


# Authentication ------------------------------------------------------------------------------


def test_username_and_password_log_in_first(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MM_ADMIN_TOKEN")
    monkeypatch.setenv("MM_ADMIN_USERNAME", "admin")
    monkeypatch.setenv("MM_ADMIN_PASSWORD", "admin-password")
    fake.installed[PLUGIN_ID] = {"id": PLUGIN_ID}
    code, out, err = run(capsys, ["disable", PLUGIN_ID])
    assert code == 0, err
    assert out == f"{PLUGIN_ID} disabled\n"
    login, disable = fake.requests
    assert (login.method, login.path) == ("POST", "/api/v4/users/login")
    assert json.loads(login.body) == {"login_id": "admin", "password": "admin-password"}
    assert "authorization" not in login.headers
    assert disable.path == f"/api/v4/plugins/{PLUGIN_ID}/disable"
    assert disable.headers["authorization"] == "Bearer session-of-admin"
    assert "logging in as admin to http://127.0.0.1:" in err


def test_wrong_password(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MM_ADMIN_TOKEN")
    monkeypatch.setenv("MM_ADMIN_USERNAME", "admin")
    monkeypatch.setenv("MM_ADMIN_PASSWORD", "guess")
    code, _, err = run(capsys, ["disable", PLUGIN_ID])
    assert code == 1
    assert (
        "logging in as admin failed: 401 api.user.login.invalid_credentials_email_username: "
        "Enter a valid email or username and/or password.. The server did not accept "
        "MM_ADMIN_USERNAME/MM_ADMIN_PASSWORD" in err
    )


def test_local_mode_socket_comes_first_and_needs_no_credentials(
    tmp_path: Path,
    fake: FakeMattermost,
    clock: list[float],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    socket_path = tmp_path / "mm.socket"
    fake.serve_unix(socket_path)
    monkeypatch.setenv("MM_LOCALSOCKETPATH", str(socket_path))
    monkeypatch.delenv("MM_ADMIN_TOKEN")
    code, out, err = run(capsys, ["deploy", str(make_bundle(tmp_path / "b.tar.gz")), "--local"])
    assert code == 0, err
    assert out == f"{PLUGIN_ID} is running\n"
    assert {r.transport for r in fake.requests} == {"unix"}
    assert all("authorization" not in r.headers for r in fake.requests)
    assert f"connecting in local mode over {socket_path}" in err
    assert f"uploaded {PLUGIN_ID} 0.3.0 to local mode ({socket_path})" in err


@pytest.fixture
def local(tmp_path: Path, fake: FakeMattermost, monkeypatch: pytest.MonkeyPatch) -> FakeMattermost:
    """The fake served on a local-mode socket too, with no credentials in the environment."""
    socket_path = tmp_path / "mm.socket"
    fake.serve_unix(socket_path)
    monkeypatch.setenv("MM_LOCALSOCKETPATH", str(socket_path))
    monkeypatch.delenv("MM_ADMIN_TOKEN")
    return fake


def test_the_local_socket_refuses_what_the_real_one_refuses(local: FakeMattermost) -> None:
    """The fake serves on its socket only the server's local-mode routes (plugin_local.go,
    system_local.go): GET /plugins/statuses is the server's 404 there, as on a real server."""
    client = server_mod.MattermostClient(socket_path=os.environ["MM_LOCALSOCKETPATH"])
    with pytest.raises(CLIError) as refused:
        client.plugin_statuses()
    assert str(refused.value).startswith(
        "reading plugin statuses failed: 404 api.context.404.app_error: Sorry, we could not "
        "find the page. (There doesn't appear to be an api call for the "
        "url='/api/v4/plugins/statuses'."
    )
    for method, path in [("GET", "/api/v4/users/me"), ("POST", "/api/v4/users/login")]:
        assert client.request(method, path[len("/api/v4") :]).status == 404
    assert client.plugins() == {"active": [], "inactive": []}
    assert client.server_logs(page=0, per_page=10) == []


def test_deploy_in_local_mode_waits_on_the_plugin_list(
    tmp_path: Path, local: FakeMattermost, clock: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    local.activation = lambda plugin_id: [(STATE_NOT_RUNNING, ""), (STATE_RUNNING, "")]
    code, out, err = run(capsys, ["deploy", "--local", str(make_bundle(tmp_path / "b.tar.gz"))])
    assert code == 0, err
    assert out == f"{PLUGIN_ID} is running\n"
    assert api_calls(local) == [
        ("POST", "/api/v4/plugins"),
        ("GET", "/api/v4/logs"),  # the log before enabling: only a newer failure counts
        ("POST", f"/api/v4/plugins/{PLUGIN_ID}/enable"),
        ("GET", "/api/v4/plugins"),  # inactive: starting, or failed?
        ("GET", "/api/v4/logs"),  # no "Unable to activate plugin" line for it: starting
        ("GET", "/api/v4/plugins"),  # active
    ]
    assert {r.transport for r in local.requests} == {"unix"}
    assert clock[0] == deploy_mod.STATUS_POLL_SECONDS


def test_enable_in_local_mode_reports_the_servers_activation_error(
    local: FakeMattermost, clock: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    local.installed[PLUGIN_ID] = {"id": PLUGIN_ID, "name": "Deployed", "version": "0.3.0"}
    # An older failure of the same plugin is not this activation's.
    local.log_lines = [
        log_line("Unable to activate plugin", level="error", error="an old reason"),
    ]
    local.activation = lambda plugin_id: [
        (STATE_NOT_RUNNING, ""),
        (STATE_FAILED_TO_START, "the Python process exited during startup"),
    ]
    code, out, err = run(capsys, ["enable", "--local", PLUGIN_ID])
    assert code == 1
    assert out == ""
    assert err.rstrip().endswith(
        f"mmplug enable: error: {PLUGIN_ID} failed to start: the Python process exited during "
        f"startup (see `mmplug logs {PLUGIN_ID}`)"
    )
    assert ("GET", "/api/v4/plugins/statuses") not in api_calls(local)


def test_local_mode_without_a_readable_log_waits_and_says_why_it_cannot_tell(
    local: FakeMattermost, clock: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    local.installed[PLUGIN_ID] = {"id": PLUGIN_ID}
    local.write_log_file = False
    local.activation = lambda plugin_id: [(STATE_FAILED_TO_START, "boom")]
    code, _, err = run(capsys, ["enable", "--local", "--wait", "3", PLUGIN_ID])
    assert code == 1
    assert (
        f"{PLUGIN_ID} was enabled but is still not running after 3 s; local mode has no plugin "
        "status route and the server log, where an activation error would be, could not be "
        "read: the server writes no log file (LogSettings.EnableFile is false)" in err
    )
    assert clock[0] == 3.0
    # The log is tried once, then only the plugin list.
    assert api_calls(local).count(("GET", "/api/v4/logs")) == 1


def test_local_mode_enable_of_a_plugin_the_server_does_not_list(
    local: FakeMattermost, clock: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, ["enable", "--local", PLUGIN_ID])
    assert code == 1
    assert f"plugin {PLUGIN_ID} is not installed on local mode" in err


def test_missing_local_socket_falls_back_or_fails_with_local(
    tmp_path: Path, fake: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.installed[PLUGIN_ID] = {"id": PLUGIN_ID}
    code, _, err = run(capsys, ["disable", PLUGIN_ID])
    assert code == 0, err
    assert (
        f"no server listens on {tmp_path / 'no-such.socket'}; trying MM_SERVICESETTINGS_SITEURL"
        in err
    )
    assert {r.transport for r in fake.requests} == {"tcp"}

    code, _, err = run(capsys, ["disable", PLUGIN_ID, "--local"])
    assert code == 1
    assert f"--local: no server listens on {tmp_path / 'no-such.socket'}" in err
    assert "ServiceSettings.EnableLocalMode=true" in err


# logs ----------------------------------------------------------------------------------------


def log_line(message: str, plugin_id: str | None = PLUGIN_ID, **fields: object) -> str:
    entry: dict[str, object] = {
        "timestamp": "2026-11-24 10:00:00.000 Z",
        "level": "info",
        "msg": message,
    }
    if plugin_id is not None:
        entry["plugin_id"] = plugin_id
    entry.update(fields)
    return json.dumps(entry)


def test_logs_shows_the_plugins_lines(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.log_lines = [
        log_line("server started", plugin_id=None),
        log_line("activated", source="plugin_stderr", count=3),
        log_line("other plugin", plugin_id="com.example.other"),
        "-------------------- node header --------------------",
        log_line("second", level="error"),
    ]
    code, out, err = run(capsys, ["logs", PLUGIN_ID])
    assert code == 0, err
    assert out.splitlines() == [
        "2026-11-24 10:00:00.000 Z  info   activated  source=plugin_stderr count=3",
        "2026-11-24 10:00:00.000 Z  error  second",
    ]
    request = fake.requests[0]
    assert (request.method, request.path) == ("GET", "/api/v4/logs")
    assert request.query == {"page": ["0"], "logs_per_page": ["1000"]}

    code, out, _ = run(capsys, ["logs", PLUGIN_ID, "--json", "--lines", "2"])
    assert code == 0
    assert out.splitlines() == [fake.log_lines[-1]]
    assert fake.requests[-1].query["logs_per_page"] == ["2"]


def test_logs_follow_prints_each_new_line_once(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.log_lines = [log_line("one"), log_line("two")]
    batches = [
        [log_line("three")],
        [],
        [log_line("four"), log_line("noise", plugin_id=None), log_line("five")],
    ]

    def sleep(seconds: float) -> None:
        assert seconds == deploy_mod.LOG_POLL_SECONDS
        if not batches:
            raise KeyboardInterrupt  # the user presses Ctrl-C
        fake.log_lines += batches.pop(0)

    monkeypatch.setattr(deploy_mod, "sleep", sleep)
    code, out, err = run(capsys, ["logs", PLUGIN_ID, "--follow", "--lines", "3"])
    assert code == 0, err
    assert [line.rsplit(" ", 1)[-1] for line in out.splitlines()] == [
        "one",
        "two",
        "three",
        "four",
        "five",
    ]
    assert f"following the log of {PLUGIN_ID} (Ctrl-C stops)" in err


def test_new_lines_keeps_the_overlap_out() -> None:
    assert deploy_mod.new_lines(["a", "b", "c"], ["b", "c", "d"]) == ["d"]
    assert deploy_mod.new_lines(["a", "b"], ["a", "b"]) == []
    assert deploy_mod.new_lines(["a", "b"], ["x", "y"]) == ["x", "y"]
    assert deploy_mod.new_lines([], ["a"]) == ["a"]
    # Repeated lines: the longest overlap wins.
    assert deploy_mod.new_lines(["x", "x"], ["x", "x", "x"]) == ["x"]


def test_logs_explain_server_settings(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.write_log_file = False
    code, _, err = run(capsys, ["logs", PLUGIN_ID])
    assert code == 1 and "the server writes no log file (LogSettings.EnableFile is false)" in err

    fake.write_log_file = True
    fake.log_lines = ["2026-11-24T10:00:00.000Z info activated plugin_id=x"]
    code, _, err = run(capsys, ["logs", PLUGIN_ID])
    assert code == 1 and "set LogSettings.FileJson to true" in err


def test_logs_need_an_admin(
    fake: FakeMattermost, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MM_ADMIN_TOKEN", fake.user_token)
    code, _, err = run(capsys, ["logs", PLUGIN_ID])
    assert (
        code == 1 and "reading the server log failed: 403 api.context.permissions.app_error" in err
    )
