"""``mmplug dev``: the harness command line it runs, and its errors when pieces are missing.

``go`` and ``cargo`` are stand-ins on a private PATH that record how they were called; the
harness itself (conformance/harness -dev) is tested with the Go code."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cli_fixtures.elf import write_elf

from mattermost_plugin.cli import main
from mattermost_plugin.cli import source as source_mod


def fake_checkout(root: Path) -> Path:
    for rel in ["Cargo.toml", "crates/bridge/Cargo.toml", "python/pyproject.toml"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    (root / "conformance" / "harness").mkdir(parents=True)
    (root / "go.mod").write_text("module example\n\ngo 1.24.0\n")
    return root


def recording_tool(
    bin_dir: Path, name: str, record: Path, exit_code: int = 0, then: str = ""
) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    tool = bin_dir / name
    tool.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"with open({str(record)!r}, 'a') as f:\n"
        "    f.write(json.dumps({'argv': sys.argv, 'cwd': os.getcwd()}) + '\\n')\n"
        f"{then}\n"
        f"sys.exit({exit_code})\n"
    )
    tool.chmod(0o755)


def calls(record: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in record.read_text().splitlines()]


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    root = tmp_path / "my plugin"
    root.mkdir()
    (root / "plugin.json").write_text(
        json.dumps({"id": "com.example.dev", "name": "Dev", "version": "0.1.0"})
    )
    (root / "plugin.py").write_text("")
    return root


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout in MMPLUG_SOURCE, a PATH holding only our stand-ins; returns the bin dir."""
    checkout = fake_checkout(tmp_path / "checkout")
    monkeypatch.setenv("MMPLUG_SOURCE", str(checkout))
    monkeypatch.delenv("CARGO_TARGET_DIR", raising=False)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


HARNESS_BODY = """\
import json, os, sys
with open({record!r}, "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd()}}) + "\\n")
sys.exit({exit_code})
"""


def fake_go(bin_dir: Path, record: Path, harness_body: str) -> None:
    """``go build -o OUT ./conformance/harness`` writes a harness program (``harness_body``)
    to OUT; every call is recorded."""
    then = (
        "out = sys.argv[sys.argv.index('-o') + 1]\n"
        f"open(out, 'w').write({('#!' + sys.executable + chr(10) + harness_body)!r})\n"
        "os.chmod(out, 0o755)"
    )
    recording_tool(bin_dir, "go", record, then=then)


def test_dev_builds_and_runs_the_harness_with_the_plugin_bridge_venv_and_port(
    tmp_path: Path, plugin: Path, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkout = tmp_path / "checkout"
    bridge = write_elf(checkout / "target" / "debug" / "mmplug-bridge")
    record = tmp_path / "go.jsonl"
    harness_record = tmp_path / "harness.jsonl"
    fake_go(env, record, HARNESS_BODY.format(record=str(harness_record), exit_code=3))
    code = main(["dev", str(plugin), "--port", "9000"])
    _, err = capsys.readouterr()
    assert code == 3  # the harness's exit code
    [build] = calls(record)
    assert build["cwd"] == str(checkout)
    argv = build["argv"]
    assert isinstance(argv, list)
    output = argv[3]
    assert argv == [str(env / "go"), "build", "-o", output, "./conformance/harness"]
    assert calls(harness_record) == [
        {
            "argv": [
                "-dev",
                "-plugin",
                str(plugin),
                "-bridge",
                str(bridge),
                "-venv",
                sys.prefix,
                "-port",
                "9000",
            ],
            "cwd": str(checkout),
        }
    ]
    assert not Path(output).exists()  # built into a temporary directory
    assert "starting the dev harness on port 9000 (Ctrl-C stops)" in err


def test_dev_builds_a_missing_bridge_first(
    tmp_path: Path,
    plugin: Path,
    env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checkout = tmp_path / "checkout"
    monkeypatch.setenv("CARGO_TARGET_DIR", "build-here")
    bridge = checkout / "build-here" / "debug" / "mmplug-bridge"
    record = tmp_path / "tools.jsonl"
    recording_tool(
        env,
        "cargo",
        record,
        then=(
            "from pathlib import Path\n"
            f"p = Path({str(bridge)!r}); p.parent.mkdir(parents=True); p.write_bytes(b'bridge')"
        ),
    )
    harness_record = tmp_path / "harness.jsonl"
    fake_go(env, record, HARNESS_BODY.format(record=str(harness_record), exit_code=0))
    monkeypatch.chdir(plugin)
    assert main(["dev"]) == 0
    cargo, _go_build = calls(record)
    assert cargo == {
        "argv": [str(env / "cargo"), "build", "-p", "mmplug-bridge"],
        "cwd": str(checkout),
    }
    [harness] = calls(harness_record)
    argv = harness["argv"]
    assert isinstance(argv, list)
    assert argv[argv.index("-bridge") + 1] == str(bridge)
    assert argv[argv.index("-plugin") + 1] == str(plugin)
    assert argv[argv.index("-port") + 1] == "8065"
    assert "building the bridge: cargo build -p mmplug-bridge" in capsys.readouterr().err


def test_dev_errors(
    tmp_path: Path,
    plugin: Path,
    env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = main(["dev", str(plugin)])
    assert code == 1
    assert (
        "mmplug dev needs Go 1.24.0 or newer (the harness is a Go program)"
        in capsys.readouterr().err
    )

    recording_tool(env, "go", tmp_path / "go.jsonl", exit_code=1)
    code = main(["dev", str(plugin)])
    err = capsys.readouterr().err
    assert code == 1
    assert "mmplug-bridge does not exist and cargo (Rust) is not on PATH to build it" in err

    recording_tool(env, "cargo", tmp_path / "cargo.jsonl", exit_code=101)
    assert main(["dev", str(plugin)]) == 1
    assert "cargo could not build the bridge" in capsys.readouterr().err

    write_elf(tmp_path / "checkout" / "target" / "debug" / "mmplug-bridge")
    assert main(["dev", str(plugin)]) == 1  # the stand-in go build fails
    assert "go could not build the harness (see above)" in capsys.readouterr().err

    code = main(["dev", str(tmp_path / "missing")])
    assert code == 1 and "is not a directory" in capsys.readouterr().err

    code = main(["dev", str(plugin), "--port", "70000"])
    assert code == 2 and "port 70000 is not between 1 and 65535" in capsys.readouterr().err


def test_the_editable_install_finds_this_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MMPLUG_SOURCE", raising=False)
    here = Path(__file__).resolve().parents[2]
    sdk = source_mod.installed_sdk()
    assert sdk.editable_project == here / "python"
    assert source_mod.find_checkout() == here


SIGNAL_RECORDING_HARNESS = """\
import os, signal, sys
def stop(signum, frame):
    with open({record!r}, "a") as f:
        f.write(f"{{signum}} leader={{os.getpgid(0) == os.getpid()}}\\n")
    sys.exit(0)
signal.signal(signal.SIGINT, stop)
signal.signal(signal.SIGTERM, stop)
print("harness ready", flush=True)
while True:
    signal.pause()
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_dev_passes_ctrl_c_and_sigterm_to_the_harness_once(
    tmp_path: Path, plugin: Path, env: Path, signum: int
) -> None:
    write_elf(tmp_path / "checkout" / "target" / "debug" / "mmplug-bridge")
    record = tmp_path / "signals"
    fake_go(env, tmp_path / "go.jsonl", SIGNAL_RECORDING_HARNESS.format(record=str(record)))
    process = subprocess.Popen(
        [sys.executable, "-m", "mattermost_plugin.cli", "dev", str(plugin)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "harness ready\n"  # the harness is up
    process.send_signal(signum)
    assert process.wait(timeout=60) == 0
    # Exactly one signal reached the harness, which runs in its own session.
    assert record.read_text() == f"{int(signum)} leader=True\n"
