"""``mmplug bundle``: manifest validation, the bundle layout and index.json, reproducibility,
member paths, bridge checks and builds, wheel download failures.

Wheels come from a local directory (``--no-index --find-links``), so no test uses the network;
the SDK wheel is really built from this checkout.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import sys
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from cli_fixtures.elf import EM_AARCH64, ET_DYN, ET_REL, write_elf
from cli_fixtures.wheels import fake_index, sdk_pins, write_wheel

from mattermost_plugin.cli import imports as imports_mod
from mattermost_plugin.cli import main
from mattermost_plugin.cli.bundle import DEFAULT_EPOCH

PLUGIN_ID = "com.example.bundled"


@pytest.fixture(scope="module")
def wheel_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_index(tmp_path_factory.mktemp("index"))


@pytest.fixture
def bridge(tmp_path: Path) -> Path:
    return write_elf(tmp_path / "bridges" / "amd64")


def write_plugin(root: Path, manifest: dict[str, Any] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    document = {
        "id": PLUGIN_ID,
        "name": "Bundled",
        "version": "1.2.3",
        "server": {"executables": {"linux-amd64": "server/dist/plugin-linux-amd64"}},
        "props": {"mmplug": {"entry": "plugin.py"}},
    }
    document.update(manifest or {})
    (root / "plugin.json").write_text(json.dumps(document, indent=2))
    (root / "plugin.py").write_text("print('hi')\n")
    return root


def bundle_args(plugin: Path, bridge: Path, index: Path, *extra: str) -> list[str]:
    return [
        "bundle",
        str(plugin),
        "--bridge",
        f"linux-amd64={bridge}",
        "--python",
        "3.11",
        "--no-index",
        "--find-links",
        str(index),
        *extra,
    ]


def run(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def members(bundle: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(bundle, "r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def read_member(bundle: Path, name: str) -> bytes:
    with tarfile.open(bundle, "r:gz") as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


# Layout --------------------------------------------------------------------------------------


def test_bundle_layout_manifest_and_index(
    tmp_path: Path, bridge: Path, wheel_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = write_plugin(tmp_path / "p")
    (plugin / "requirements.txt").write_text("# needed at run time\ntinydep>=1  # any\n")
    (plugin / "pkg").mkdir()
    (plugin / "pkg" / "__init__.py").write_text("")
    (plugin / "assets").mkdir()
    (plugin / "assets" / "run.sh").write_text("#!/bin/sh\n")
    (plugin / "assets" / "run.sh").chmod(0o700)
    # Never bundled: tests, build output, environments, caches, compiled Python, old bridges.
    for junk in [
        "tests/test_x.py",
        "dist/old.tar.gz",
        ".venv/bin/python",
        "venv/lib/x.py",
        "pkg/__pycache__/m.cpython-311.pyc",
        "pkg/stale.pyc",
        ".git/HEAD",
        ".mypy_cache/x",
        "server/dist/plugin-linux-amd64",
        "python/wheels/old.whl",
    ]:
        (plugin / junk).parent.mkdir(parents=True, exist_ok=True)
        (plugin / junk).write_text("junk")

    code, out, err = run(capsys, bundle_args(plugin, bridge, wheel_index))
    assert code == 0, err
    bundle = Path(out.strip())
    assert bundle == plugin / "dist" / f"{PLUGIN_ID}-1.2.3.tar.gz"
    assert "[1/1] wheels for Python 3.11 on linux-amd64" in err

    found = members(bundle)
    pins = sdk_pins()
    wheels = sorted(n for n in found if n.endswith(".whl"))
    assert wheels == sorted(
        f"{PLUGIN_ID}/python/wheels/{w}"
        for w in [
            "mmplug-0.1.0-py3-none-any.whl",
            f"grpcio-{pins['grpcio']}-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            f"grpcio_health_checking-{pins['grpcio-health-checking']}-py3-none-any.whl",
            f"protobuf-{pins['protobuf']}-cp310-abi3-manylinux2014_x86_64.whl",
            "tinydep-2.0-py3-none-any.whl",
        ]
    )
    files = sorted(n for n in found if found[n].isfile() and not n.endswith(".whl"))
    assert files == [
        f"{PLUGIN_ID}/assets/run.sh",
        f"{PLUGIN_ID}/pkg/__init__.py",
        f"{PLUGIN_ID}/plugin.json",
        f"{PLUGIN_ID}/plugin.py",
        f"{PLUGIN_ID}/python/wheels/index.json",
        f"{PLUGIN_ID}/requirements.txt",
        f"{PLUGIN_ID}/server/dist/plugin-linux-amd64",
    ]
    assert all(name == PLUGIN_ID or name.startswith(PLUGIN_ID + "/") for name in found)
    for name, info in found.items():
        assert (info.uid, info.gid, info.uname, info.gname) == (0, 0, "", "")
        assert info.mtime == DEFAULT_EPOCH
        assert info.isdir() or info.isfile()
        executable = name.endswith(("plugin-linux-amd64", "run.sh")) or info.isdir()
        assert info.mode == (0o755 if executable else 0o644), name
    assert read_member(bundle, f"{PLUGIN_ID}/server/dist/plugin-linux-amd64") == bridge.read_bytes()

    manifest = json.loads(read_member(bundle, f"{PLUGIN_ID}/plugin.json"))
    assert manifest["server"] == {"executables": {"linux-amd64": "server/dist/plugin-linux-amd64"}}
    assert manifest["props"] == {"mmplug": {"entry": "plugin.py"}}

    index = json.loads(read_member(bundle, f"{PLUGIN_ID}/python/wheels/index.json"))
    assert index["format"] == 1
    assert index["python_versions"] == ["3.11"]
    assert index["requirements"][0] == "mmplug==0.1.0"
    assert sorted(index["requirements"][1:-1]) == sorted(f"{n}=={v}" for n, v in pins.items())
    assert index["requirements"][-1] == "tinydep==2.0"  # resolved to the version bundled
    assert sorted(index["wheels"]) == sorted(Path(w).name for w in wheels)
    for name, digest in index["wheels"].items():
        data = read_member(bundle, f"{PLUGIN_ID}/python/wheels/{name}")
        assert hashlib.sha256(data).hexdigest() == digest

    # The SDK wheel is this checkout's code.
    sdk = read_member(bundle, f"{PLUGIN_ID}/python/wheels/mmplug-0.1.0-py3-none-any.whl")
    with zipfile.ZipFile(io.BytesIO(sdk)) as archive:
        assert "mattermost_plugin/cli/bundle.py" in archive.namelist()


def test_two_platforms_and_pythons_get_their_wheels(
    tmp_path: Path, bridge: Path, wheel_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = write_plugin(tmp_path / "p")
    arm = write_elf(tmp_path / "bridges" / "arm64", machine=EM_AARCH64)
    args = bundle_args(plugin, bridge, wheel_index, "--bridge", f"linux-arm64={arm}")
    args += ["--python", "3.13"]
    code, out, err = run(capsys, args)
    assert code == 0, err
    bundle = Path(out.strip())
    found = members(bundle)
    manifest = json.loads(read_member(bundle, f"{PLUGIN_ID}/plugin.json"))
    assert manifest["server"]["executables"] == {
        "linux-amd64": "server/dist/plugin-linux-amd64",
        "linux-arm64": "server/dist/plugin-linux-arm64",
    }
    assert read_member(bundle, f"{PLUGIN_ID}/server/dist/plugin-linux-arm64") == arm.read_bytes()
    grpcio = sorted(Path(n).name for n in found if "/grpcio-" in n)
    assert [(w.split("-")[2], "x86_64" if "x86_64" in w else "aarch64") for w in grpcio] == [
        ("cp311", "aarch64"),
        ("cp311", "x86_64"),
        ("cp313", "aarch64"),
        ("cp313", "x86_64"),
    ]
    # Shared wheels (pure Python, abi3) are stored once.
    assert len([n for n in found if "/protobuf-" in n]) == 2
    index = json.loads(read_member(bundle, f"{PLUGIN_ID}/python/wheels/index.json"))
    assert index["python_versions"] == ["3.11", "3.13"]
    assert "[4/4] wheels for Python 3.13 on linux-arm64" in err


def test_by_default_every_supported_python_gets_its_wheels(
    tmp_path: Path, bridge: Path, wheel_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Without --python: CPython 3.10 (Ubuntu 22.04's python3) to 3.13, on both platforms.
    plugin = write_plugin(tmp_path / "p")
    arm = write_elf(tmp_path / "bridges" / "arm64", machine=EM_AARCH64)
    args = ["bundle", str(plugin), "--bridge", f"linux-amd64={bridge}"]
    args += ["--bridge", f"linux-arm64={arm}", "--no-index", "--find-links", str(wheel_index)]
    code, out, err = run(capsys, args)
    assert code == 0, err
    bundle = Path(out.strip())
    grpcio = sorted(Path(n).name for n in members(bundle) if "/grpcio-" in n)
    assert sorted((w.split("-")[2], "x86_64" if "x86_64" in w else "aarch64") for w in grpcio) == [
        (f"cp3{minor}", arch) for minor in (10, 11, 12, 13) for arch in ("aarch64", "x86_64")
    ]
    index = json.loads(read_member(bundle, f"{PLUGIN_ID}/python/wheels/index.json"))
    assert index["python_versions"] == ["3.10", "3.11", "3.12", "3.13"]
    assert "[8/8] wheels for Python 3.13 on linux-arm64" in err


def test_a_dependency_without_wheels_for_one_python_says_how_to_leave_it_out(
    tmp_path: Path, bridge: Path, wheel_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A dependency that dropped Python 3.10: its only wheel is for 3.11 and newer (abi3).
    index = tmp_path / "index"
    shutil.copytree(wheel_index, index)
    write_wheel(index, "newonly", "1.0", "cp311-abi3-manylinux_2_17_x86_64")
    plugin = write_plugin(tmp_path / "p")
    (plugin / "requirements.txt").write_text("newonly==1.0\n")
    args = ["bundle", str(plugin), "--bridge", f"linux-amd64={bridge}"]
    args += ["--python", "3.10", "--python", "3.11", "--python", "3.12"]
    args += ["--no-index", "--find-links", str(index)]
    code, _, err = run(capsys, args)
    assert code == 1
    assert "pip could not download wheels for Python 3.10 on linux-amd64" in err
    assert "to leave Python 3.10 out, name the others: --python 3.11 --python 3.12" in err
    assert "Traceback" not in err
    # Without 3.10 the same plugin bundles.
    args = ["bundle", str(plugin), "--bridge", f"linux-amd64={bridge}"]
    args += ["--python", "3.11", "--python", "3.12", "--no-index", "--find-links", str(index)]
    code, _, err = run(capsys, args)
    assert code == 0, err


def test_same_inputs_give_the_same_bytes(
    tmp_path: Path,
    bridge: Path,
    wheel_index: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plugin = write_plugin(tmp_path / "p")
    (plugin / "b.txt").write_text("b")
    (plugin / "a.txt").write_text("a")
    digests = []
    for n in range(2):
        os.utime(plugin / "a.txt", (1_000_000 + n, 1_000_000 + n))  # mtimes must not matter
        code, out, err = run(
            capsys, bundle_args(plugin, bridge, wheel_index, "--output", str(tmp_path / f"o{n}"))
        )
        assert code == 0, err
        digests.append(hashlib.sha256(Path(out.strip()).read_bytes()).hexdigest())
    assert digests[0] == digests[1]

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    code, out, err = run(
        capsys, bundle_args(plugin, bridge, wheel_index, "--output", str(tmp_path / "o3"))
    )
    assert code == 0, err
    bundle = Path(out.strip())
    assert {m.mtime for m in members(bundle).values()} == {1700000000}
    raw = bundle.read_bytes()
    # gzip header: no file name flag, no time stamp.
    assert raw[3] & 0x08 == 0 and raw[4:8] == b"\0\0\0\0"


# Manifest validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": "x!"}, "\"id\" 'x!' is not a valid plugin id"),
        ({"id": "ab"}, "is not a valid plugin id"),
        ({"name": "  "}, '"name" is empty'),
        ({"name": None}, '"name" is missing'),
        ({"version": "1.0"}, "\"version\" '1.0' is not a semantic version"),
        ({"version": "v1.0.0"}, "is not a semantic version"),
        ({"version": None}, '"version" is missing'),
        ({"min_server_version": "9.11"}, "\"min_server_version\" '9.11' is not a semantic"),
        ({"homepage_url": "ftp://x"}, "\"homepage_url\" 'ftp://x' is not an http(s) URL"),
        (
            {"server": {"executables": {"windows-amd64": "server/dist/plugin-windows-amd64.exe"}}},
            "names the platform 'windows-amd64', which mmplug cannot bundle",
        ),
        (
            {"server": {"executables": {"linux-amd64": "bin/bridge"}}},
            'the bridge for linux-amd64 is always "server/dist/plugin-linux-amd64"',
        ),
        ({"server": {"executable": "x"}}, '"server.executable" is not used by mmplug bundles'),
        (
            {"props": {"mmplug": {"entry": "missing.py"}}},
            "\"props.mmplug.entry\" 'missing.py' does not exist",
        ),
        ({"props": {"mmplug": {"entry": "../x.py"}}}, "must be a relative path inside"),
        ({"props": {"mmplug": {"entyr": "plugin.py"}}}, '"props.mmplug" has unknown keys entyr'),
        (
            {"props": {"mmplug": {"ready_timeout_seconds": -1}}},
            'ready_timeout_seconds" must be a positive whole number of seconds',
        ),
        (
            {"props": {"mmplug": {"hook_timeout_seconds": 0}}},
            'hook_timeout_seconds" must be a positive whole number of seconds',
        ),
        (
            {"props": {"mmplug": {"hook_timeouts": {"MessageWillBePosted": 0}}}},
            'hook_timeouts.MessageWillBePosted" must be a positive whole number',
        ),
        (
            {"props": {"mmplug": {"hook_timeouts": {"MessageWillBePost": 5}}}},
            "\"props.mmplug.hook_timeouts\" names 'MessageWillBePost', which is not a hook",
        ),
        (
            {"props": {"mmplug": {"on_failure": {"OnActivate": "reject"}}}},
            "\"props.mmplug.on_failure\" names 'OnActivate', which is not a hook that can reject",
        ),
        (
            {"props": {"mmplug": {"on_failure": {"UserWillLogIn": "closed"}}}},
            '"props.mmplug.on_failure.UserWillLogIn" must be "reject" or "allow"',
        ),
        (
            {"props": {"mmplug": {"cpu_placement": "spread"}}},
            '"props.mmplug.cpu_placement" must be "together" or "any"',
        ),
        (
            {"settings_schema": {"settings": [{"key": "K", "type": "checkbox"}]}},
            "\"settings_schema.settings[0].type\" 'checkbox' is not a setting type",
        ),
        (
            {"settings_schema": {"settings": [{"key": "K", "type": "bool", "placeholder": "p"}]}},
            "a bool setting cannot have a placeholder",
        ),
    ],
)
def test_manifest_problems_are_named(
    tmp_path: Path,
    bridge: Path,
    wheel_index: Path,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, Any],
    message: str,
) -> None:
    plugin = write_plugin(tmp_path / "p")
    document = json.loads((plugin / "plugin.json").read_text())
    for key, value in change.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = value
    (plugin / "plugin.json").write_text(json.dumps(document))
    code, out, err = run(capsys, bundle_args(plugin, bridge, wheel_index))
    assert code == 1
    assert out == ""
    assert message in err
    assert err.startswith(f"mmplug bundle: error: {plugin / 'plugin.json'}: ")
    assert "Traceback" not in err
    assert not (plugin / "dist").exists()


def test_every_problem_is_reported_at_once(
    tmp_path: Path, bridge: Path, wheel_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = write_plugin(tmp_path / "p", {"id": "no", "version": "one"})
    code, _, err = run(capsys, bundle_args(plugin, bridge, wheel_index))
    assert code == 1
    assert "\"id\" 'no' is not a valid plugin id" in err and "\"version\" 'one'" in err


def test_missing_and_broken_manifest(
    tmp_path: Path, bridge: Path, wheel_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, bundle_args(empty, bridge, wheel_index))
    assert code == 1 and f"no plugin.json in {empty}" in err

    broken = write_plugin(tmp_path / "broken")
    (broken / "plugin.json").write_text('{"id": "com.x.y",\n  "name": }')
    code, _, err = run(capsys, bundle_args(broken, bridge, wheel_index))
    assert code == 1 and "is not valid JSON: Expecting value at line 2, column 11" in err


def test_entry_inside_an_excluded_directory_is_refused(
    tmp_path: Path, bridge: Path, wheel_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = write_plugin(tmp_path / "p", {"props": {"mmplug": {"entry": "tests/main.py"}}})
    (plugin / "tests").mkdir()
    (plugin / "tests" / "main.py").write_text("")
    code, _, err = run(capsys, bundle_args(plugin, bridge, wheel_index))
    assert code == 1 and "the entry module tests/main.py (props.mmplug.entry) is excluded" in err


# Member paths ------------------------------------------------------------------------------


def test_symlink_out_of_the_plugin_is_refused(
    tmp_path: Path, bridge: Path, wheel_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("server password")
    plugin = write_plugin(tmp_path / "p")
    (plugin / "pkg").mkdir()
    (plugin / "pkg" / "leak.txt").symlink_to("../../secret.txt")
    code, _, err = run(capsys, bundle_args(plugin, bridge, wheel_index))
    assert code == 1
    assert "pkg/leak.txt is a symlink to ../../secret.txt, outside the plugin directory" in err
    assert not (plugin / "dist").exists()

    (plugin / "pkg" / "leak.txt").unlink()
    (plugin / "etc").symlink_to("/etc")
    code, _, err = run(capsys, bundle_args(plugin, bridge, wheel_index))
    assert code == 1 and "etc is a symlink to /etc, outside the plugin directory" in err


def test_symlinks_inside_are_stored_as_files_and_bad_ones_refused(
    tmp_path: Path, bridge: Path, wheel_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = write_plugin(tmp_path / "p")
    (plugin / "data").mkdir()
    (plugin / "data" / "real.txt").write_text("content")
    (plugin / "alias.txt").symlink_to("data/real.txt")
    (plugin / "data2").symlink_to("data")
    code, out, err = run(capsys, bundle_args(plugin, bridge, wheel_index))
    assert code == 0, err
    bundle = Path(out.strip())
    found = members(bundle)
    for name in ("alias.txt", "data/real.txt", "data2/real.txt"):
        assert found[f"{PLUGIN_ID}/{name}"].isfile()
        assert read_member(bundle, f"{PLUGIN_ID}/{name}") == b"content"

    (plugin / "data" / "loop").symlink_to("..")
    code, _, err = run(capsys, bundle_args(plugin, bridge, wheel_index))
    assert code == 1 and "is a symlink loop" in err
    (plugin / "data" / "loop").unlink()

    (plugin / "dangling").symlink_to("nowhere")
    code, _, err = run(capsys, bundle_args(plugin, bridge, wheel_index))
    assert code == 1 and "dangling is a symlink to nowhere, which does not exist" in err


# Bridges -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("elf", "message"),
    [
        ({"machine": EM_AARCH64}, "built for aarch64, not for x86-64"),
        (
            {"elf_type": ET_DYN, "interp": "/lib64/ld-linux-x86-64.so.2"},
            "dynamically linked (it needs the loader /lib64/ld-linux-x86-64.so.2)",
        ),
        ({"elf_class": 1}, "a 32-bit ELF file; linux-amd64 needs a 64-bit x86-64 one"),
        ({"data": 2}, "a big-endian ELF file"),
        ({"elf_type": ET_REL}, "not an executable (ELF type 1"),
    ],
)
def test_bridge_must_be_a_static_elf_of_the_platform(
    tmp_path: Path,
    wheel_index: Path,
    capsys: pytest.CaptureFixture[str],
    elf: dict[str, Any],
    message: str,
) -> None:
    plugin = write_plugin(tmp_path / "p")
    bad = write_elf(tmp_path / "bad", **elf)
    code, _, err = run(capsys, bundle_args(plugin, bad, wheel_index))
    assert code == 1
    assert f"bridge binary {bad} for linux-amd64: {message}" in err
    assert not (plugin / "dist").exists()


def test_static_pie_passes_and_non_elf_fails(
    tmp_path: Path, wheel_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = write_plugin(tmp_path / "p")
    static_pie = write_elf(tmp_path / "pie", elf_type=ET_DYN, extra_phdrs=(2,))  # PT_DYNAMIC
    code, _, err = run(capsys, bundle_args(plugin, static_pie, wheel_index))
    assert code == 0, err

    script = tmp_path / "script"
    script.write_text("#!/bin/sh\necho hi\n")
    code, _, err = run(capsys, bundle_args(plugin, script, wheel_index))
    assert code == 1 and "not an ELF executable" in err
    code, _, err = run(capsys, bundle_args(plugin, tmp_path / "absent", wheel_index))
    assert code == 1 and f"bridge binary {tmp_path / 'absent'} does not exist" in err


def test_platform_and_bridge_usage_errors(
    tmp_path: Path,
    bridge: Path,
    wheel_index: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No cargo on PATH: mmplug cannot build a linux-arm64 bridge itself, whatever this machine has.
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    plugin = write_plugin(tmp_path / "p")
    arm = write_elf(tmp_path / "arm", machine=EM_AARCH64)
    args = bundle_args(plugin, bridge, wheel_index, "--platform", "linux-amd64")
    code, _, err = run(capsys, [*args, "--bridge", f"linux-arm64={arm}"])
    assert code == 2 and "--bridge given for linux-arm64, which is not among the --platform" in err

    code, _, err = run(
        capsys,
        [
            *bundle_args(plugin, bridge, wheel_index),
            "--platform",
            "linux-amd64",
            "--platform",
            "linux-arm64",
        ],
    )
    assert code == 1 and "no bridge binary for linux-arm64: pass --bridge linux-arm64=PATH" in err
    assert "mmplug cannot build it here: cargo (Rust) is not on PATH" in err

    code, _, err = run(
        capsys, [*bundle_args(plugin, bridge, wheel_index), "--bridge", "linux-amd64"]
    )
    assert code == 2 and "'linux-amd64' is not PLATFORM=PATH" in err

    code, _, err = run(
        capsys, [*bundle_args(plugin, bridge, wheel_index), "--bridge", f"linux-amd64={bridge}"]
    )
    assert code == 2 and "--bridge given twice for linux-amd64" in err

    code, _, err = run(
        capsys, [*bundle_args(plugin, bridge, wheel_index), "--platform", "darwin-arm64"]
    )
    assert code == 2 and "invalid choice: 'darwin-arm64'" in err

    code, _, err = run(capsys, [*bundle_args(plugin, bridge, wheel_index), "--python", "3.9"])
    assert code == 2 and "--python 3.9: mmplug needs Python 3.10 or newer" in err
    code, _, err = run(capsys, [*bundle_args(plugin, bridge, wheel_index), "--python", "three"])
    assert code == 2 and "--python 'three' is not a Python version" in err


def fake_checkout(root: Path) -> Path:
    for rel in ["Cargo.toml", "crates/bridge/Cargo.toml", "python/pyproject.toml"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    (root / "conformance" / "harness").mkdir(parents=True)
    return root


def fake_tool(bin_dir: Path, name: str, body: str) -> Path:
    """An executable ``name`` on a private PATH: a Python script recording how it was run."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    tool = bin_dir / name
    tool.write_text(f"#!{sys.executable}\n{body}")
    tool.chmod(0o755)
    return tool


RECORDING_CARGO = """\
import json, os, sys
sys.path.insert(0, {tests!r})
from cli_fixtures.elf import write_elf
from pathlib import Path
with open({record!r}, "w") as f:
    json.dump({{"argv": sys.argv[1:], "cwd": os.getcwd(),
               "rustflags": os.environ.get("RUSTFLAGS")}}, f)
target = Path(os.environ.get("CARGO_TARGET_DIR") or "target")
write_elf(target / "x86_64-unknown-linux-gnu" / "release" / "mmplug-bridge", **{elf})
"""


def test_linux_amd64_bridge_is_built_static_from_the_checkout(
    tmp_path: Path,
    wheel_index: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plugin = write_plugin(tmp_path / "p")
    checkout = fake_checkout(tmp_path / "checkout")
    record = tmp_path / "cargo.json"
    bin_dir = tmp_path / "bin"
    tests = str(Path(__file__).parent)
    fake_tool(bin_dir, "cargo", RECORDING_CARGO.format(tests=tests, record=str(record), elf="{}"))
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("MMPLUG_SOURCE", str(checkout))
    monkeypatch.setenv("RUSTFLAGS", "-C debuginfo=0")
    monkeypatch.setenv("CARGO_TARGET_DIR", str(tmp_path / "shared-target"))
    args = [
        "bundle",
        str(plugin),
        "--python",
        "3.11",
        "--no-index",
        "--find-links",
        str(wheel_index),
    ]
    code, out, err = run(capsys, args)
    assert code == 0, err
    ran = json.loads(record.read_text())
    assert ran == {
        "argv": [
            "build",
            "--release",
            "-p",
            "mmplug-bridge",
            "--target",
            "x86_64-unknown-linux-gnu",
        ],
        "cwd": str(checkout),
        "rustflags": "-C debuginfo=0 -C target-feature=+crt-static",
    }
    built = tmp_path / "shared-target" / "x86_64-unknown-linux-gnu" / "release" / "mmplug-bridge"
    bundle = Path(out.strip())
    assert read_member(bundle, f"{PLUGIN_ID}/server/dist/plugin-linux-amd64") == built.read_bytes()

    # A build that comes out dynamic is caught too.
    dynamic = "{'elf_type': 3, 'interp': '/lib64/ld-linux-x86-64.so.2'}"
    fake_tool(
        bin_dir, "cargo", RECORDING_CARGO.format(tests=tests, record=str(record), elf=dynamic)
    )
    code, _, err = run(capsys, args)
    assert code == 1 and "dynamically linked" in err

    fake_tool(bin_dir, "cargo", "import sys\nsys.exit(101)\n")
    code, _, err = run(capsys, args)
    assert code == 1 and "cargo could not build the bridge for linux-amd64" in err

    (bin_dir / "cargo").unlink()
    code, _, err = run(capsys, args)
    assert code == 1 and "building the bridge needs cargo (Rust), which is not on PATH" in err

    monkeypatch.setenv("MMPLUG_SOURCE", str(tmp_path))
    code, _, err = run(capsys, args)
    assert code == 1 and f"MMPLUG_SOURCE={tmp_path} is not an mmplug source checkout" in err


# Records every build (appending) and writes a static ELF of the target's machine where cargo
# would put it.
CROSS_RECORDING_CARGO = """\
import json, os, sys
sys.path.insert(0, {tests!r})
from cli_fixtures.elf import EM_AARCH64, write_elf
from pathlib import Path
target = sys.argv[sys.argv.index("--target") + 1]
with open({record!r}, "a") as f:
    linker = os.environ.get("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER")
    f.write(json.dumps({{"target": target, "aarch64_linker": linker}}) + "\\n")
machine = {{"aarch64-unknown-linux-gnu": EM_AARCH64}}.get(target, 62)
write_elf(Path(os.environ["CARGO_TARGET_DIR"]) / target / "release" / "mmplug-bridge",
          machine=machine)
"""


def test_default_and_all_platforms_build_the_bridges_this_machine_can(
    tmp_path: Path,
    wheel_index: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without --platform and --bridge, linux-arm64 is bundled exactly when its bridge can be
    cross-built here (rustup target and cross linker present); ``--platform all`` insists."""
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    plugin = write_plugin(tmp_path / "p")
    checkout = fake_checkout(tmp_path / "checkout")
    record = tmp_path / "cargo.jsonl"
    bin_dir = tmp_path / "bin"
    tests = str(Path(__file__).parent)
    fake_tool(bin_dir, "cargo", CROSS_RECORDING_CARGO.format(tests=tests, record=str(record)))
    sysroot = tmp_path / "sysroot"
    (sysroot / "lib" / "rustlib" / "aarch64-unknown-linux-gnu" / "lib").mkdir(parents=True)
    fake_tool(bin_dir, "rustc", f"print({str(sysroot)!r})\n")
    linker = fake_tool(bin_dir, "aarch64-linux-gnu-gcc", "")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("MMPLUG_SOURCE", str(checkout))
    monkeypatch.delenv("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", raising=False)
    monkeypatch.setenv("CARGO_TARGET_DIR", str(tmp_path / "shared-target"))
    args = ["bundle", str(plugin), "--python", "3.11", "--no-index", "--find-links"]
    args.append(str(wheel_index))

    code, out, err = run(capsys, args)
    assert code == 0, err
    built = [json.loads(line) for line in record.read_text().splitlines()]
    assert built == [
        {"target": "x86_64-unknown-linux-gnu", "aarch64_linker": None},
        {"target": "aarch64-unknown-linux-gnu", "aarch64_linker": "aarch64-linux-gnu-gcc"},
    ]
    bundle = Path(out.strip())
    manifest = json.loads(read_member(bundle, f"{PLUGIN_ID}/plugin.json"))
    assert sorted(manifest["server"]["executables"]) == ["linux-amd64", "linux-arm64"]
    arm = tmp_path / "shared-target" / "aarch64-unknown-linux-gnu" / "release" / "mmplug-bridge"
    assert read_member(bundle, f"{PLUGIN_ID}/server/dist/plugin-linux-arm64") == arm.read_bytes()
    wheel_names = [Path(n).name for n in members(bundle) if n.endswith(".whl")]
    assert {a for a in ("x86_64", "aarch64") if any(a in n for n in wheel_names)} == {
        "x86_64",
        "aarch64",
    }
    size = bundle.stat().st_size
    assert re.search(
        rf"wrote {re.escape(str(bundle))} \({size / 1024:.1f} KiB, linux-amd64, linux-arm64\) "
        r"in \d+\.\d s",
        err,
    ), err

    # Without the cross linker: linux-arm64 is left out by default, with why; `all` fails.
    linker.unlink()
    record.unlink()
    code, out, err = run(capsys, args)
    assert code == 0, err
    assert "linux-arm64 left out: no bridge for it (no cross linker aarch64-linux-gnu-gcc" in err
    assert [json.loads(line)["target"] for line in record.read_text().splitlines()] == [
        "x86_64-unknown-linux-gnu"
    ]
    manifest = json.loads(read_member(Path(out.strip()), f"{PLUGIN_ID}/plugin.json"))
    assert list(manifest["server"]["executables"]) == ["linux-amd64"]
    code, _, err = run(capsys, [*args, "--platform", "all"])
    assert code == 1
    assert "no bridge binary for linux-arm64: pass --bridge linux-arm64=PATH" in err
    assert "mmplug cannot build it here: no cross linker aarch64-linux-gnu-gcc" in err

    # A linker named in cargo's own setting is used as it is.
    monkeypatch.setenv("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", "my-aarch64-cc")
    record.unlink()
    code, out, err = run(capsys, [*args, "--platform", "all"])
    assert code == 0, err
    assert json.loads(record.read_text().splitlines()[-1]) == {
        "target": "aarch64-unknown-linux-gnu",
        "aarch64_linker": "my-aarch64-cc",
    }


def load_wheel_choice_check() -> Any:
    """python/scripts/check_wheel_choice.py, which make test-bundle runs on a real bundle."""
    path = Path(__file__).resolve().parents[1] / "scripts" / "check_wheel_choice.py"
    spec = importlib.util.spec_from_file_location("check_wheel_choice", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_machine_gets_its_own_wheels_from_a_two_platform_bundle(
    tmp_path: Path, bridge: Path, wheel_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bridge's wheel selection (wheelenv.py, as an arm64 or x86_64 server's Python of each
    version the bundle names runs it) on a two-platform bundle picks that machine's and that
    Python's binary wheels; on an amd64-only bundle an arm64 server finds none and is told so."""
    check = load_wheel_choice_check()
    plugin = write_plugin(tmp_path / "p")
    arm = write_elf(tmp_path / "bridges" / "arm64", machine=EM_AARCH64)
    args = bundle_args(
        plugin, bridge, wheel_index, "--platform", "all", "--bridge", f"linux-arm64={arm}"
    )
    code, out, err = run(capsys, [*args, "--python", "3.10"])
    assert code == 0, err
    both = Path(out.strip())
    for machine in ("aarch64", "x86_64"):
        assert check.main([str(both), machine]) == 0
        out, _ = capsys.readouterr()
        lines = sorted(out.splitlines())
        assert [line.split(":")[1] for line in lines] == [
            f" Python 3.10 on {machine}",
            f" Python 3.11 on {machine}",
        ], out
        for line, cp in zip(lines, ("cp310", "cp311"), strict=True):
            binary = re.findall(r"'([^']+\.whl)'", line)
            assert binary and all(f"_{machine}" in name for name in binary), line
            assert f"grpcio-1.85.3-{cp}-{cp}-" in line, line

    code, out, err = run(
        capsys, bundle_args(plugin, bridge, wheel_index, "--output", str(tmp_path / "amd64"))
    )
    assert code == 0, err
    with pytest.raises(SystemExit) as exit_info:
        check.main([out.strip(), "aarch64"])
    assert exit_info.value.code == 2
    assert "has no wheel of grpcio" in capsys.readouterr().err


# Wheels ------------------------------------------------------------------------------------


def test_a_requirement_without_wheels_is_a_clear_error(
    tmp_path: Path, bridge: Path, wheel_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = write_plugin(tmp_path / "p")
    (plugin / "requirements.txt").write_text("nosuchpackage==1.0\n")
    code, _, err = run(capsys, bundle_args(plugin, bridge, wheel_index))
    assert code == 1
    assert "pip could not download wheels for Python 3.11 on linux-amd64" in err
    assert "No matching distribution found for nosuchpackage==1.0" in err
    assert "Traceback" not in err
    assert not (plugin / "dist").exists()


# The import check -----------------------------------------------------------------------------


def test_an_import_the_bundle_would_not_hold_is_refused_with_its_distribution(
    tmp_path: Path, bridge: Path, wheel_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = write_plugin(tmp_path / "p")
    (plugin / "plugin.py").write_text(
        "from __future__ import annotations\n"
        "import json, asyncio.subprocess\n"  # the standard library
        "from mattermost_plugin import Plugin\n"  # the SDK
        "from mattermost_plugin.asgi import serve_asgi\n"
        "import tinydep\n"
        "import yaml\n"  # not installed here: the well-known distribution name
        "\n"
        "def view():\n"
        "    from flask import Flask\n"  # installed here: its name and version
        "    import flask.json\n"
    )
    code, out, err = run(capsys, bundle_args(plugin, bridge, wheel_index))
    assert code == 1, err
    assert out == ""
    requirements = plugin / "requirements.txt"
    flask_version = metadata.version("flask")
    assert err.splitlines()[-4:] == [
        "mmplug bundle: error: the plugin imports modules that neither its own files nor the "
        "bundled wheels provide, so it would fail to start on the server; add Flask, PyYAML, "
        f"tinydep to {requirements}, pinned (name==version):",
        f"  Flask (Flask=={flask_version} is installed here): `flask` (plugin.py:9), "
        "`flask.json` (plugin.py:10)",
        "  PyYAML: `yaml` (plugin.py:6)",
        "  tinydep: `tinydep` (plugin.py:5)",
    ]
    assert not (plugin / "dist").exists()

    # Declared (tinydep is in the index; the others are left out of the module), it bundles.
    requirements.write_text("tinydep==2.0\n")
    (plugin / "plugin.py").write_text("import json\nimport tinydep\nimport mattermost_plugin\n")
    code, _, err = run(capsys, bundle_args(plugin, bridge, wheel_index))
    assert code == 0, err
    # --no-import-check skips it.
    (plugin / "plugin.py").write_text("import yaml\n")
    code, _, err = run(capsys, bundle_args(plugin, bridge, wheel_index, "--no-import-check"))
    assert code == 0, err


def test_the_plugins_own_modules_are_followed_and_guarded_imports_are_optional(
    tmp_path: Path, bridge: Path, wheel_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = write_plugin(tmp_path / "p")
    (plugin / "plugin.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import helpers\n"
        "from mypkg import sub\n"
        "if TYPE_CHECKING:\n"
        "    import typing_only_dep\n"
        "try:\n"
        "    import ujson as json\n"
        "except ImportError:\n"
        "    import json\n"
    )
    (plugin / "helpers.py").write_text("import os\n")
    (plugin / "mypkg").mkdir()
    (plugin / "mypkg" / "__init__.py").write_text("from . import sub as _sub\n")
    (plugin / "mypkg" / "sub.py").write_text("from .deep import thing\n")
    (plugin / "mypkg" / "deep.py").write_text("\n\nimport missingdep.client\nthing = 1\n")
    code, _, err = run(capsys, bundle_args(plugin, bridge, wheel_index))
    assert code == 1
    assert err.splitlines()[-1] == "  missingdep: `missingdep.client` (mypkg/deep.py:3)"
    assert "typing_only_dep" not in err and "ujson" not in err


def test_the_standard_library_is_the_bundled_pythons(
    tmp_path: Path, bridge: Path, wheel_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = write_plugin(tmp_path / "p")
    (plugin / "plugin.py").write_text("import tomllib\nimport cgi\n")  # cgi: gone in 3.13
    args = bundle_args(plugin, bridge, wheel_index, "--python", "3.12", "--python", "3.13")
    code, _, err = run(capsys, args)
    assert code == 1
    assert err.splitlines()[-1] == "  cgi: `cgi` (plugin.py:2) for Python 3.13 on linux-amd64"
    assert "tomllib" not in err.splitlines()[-1]


@pytest.mark.parametrize(
    ("module", "present_in", "absent_in"),
    [
        ("tomllib", ["3.11", "3.12", "3.13"], ["3.10"]),
        ("binhex", ["3.10"], ["3.11", "3.13"]),
        ("asyncore", ["3.10", "3.11"], ["3.12", "3.13"]),
        ("cgi", ["3.10", "3.12"], ["3.13"]),
        ("json", ["3.10", "3.11", "3.12", "3.13"], []),
    ],
)
def test_each_python_has_its_own_standard_library(
    module: str, present_in: list[str], absent_in: list[str]
) -> None:
    # The same answer whichever supported Python runs mmplug (the CLI runs on 3.10 too).
    for python in present_in:
        assert module in imports_mod.stdlib_modules(python), python
    for python in absent_in:
        assert module not in imports_mod.stdlib_modules(python), python


def test_namespace_packages_need_the_module_itself() -> None:
    tree = imports_mod.ModuleTree()
    tree.add(("google", "protobuf", "__init__.py"))  # protobuf's wheel: google is a namespace
    tree.add(("google", "protobuf", "json_format.py"))
    tree.add(("flask", "__init__.py"))
    tree.add(("_cffi_backend.cpython-312-x86_64-linux-gnu.so",))
    tree.add(("numpy.libs", "libgfortran.so"))  # not importable
    assert tree.resolves("google.protobuf.json_format")
    assert tree.resolves("google")
    assert not tree.resolves("google.cloud.storage")
    assert tree.resolves("flask.anything")  # below a regular package: maybe an attribute
    assert tree.resolves("_cffi_backend")
    assert not tree.resolves("numpy")
    assert imports_mod.distribution_for("google.cloud.storage", below_namespace=True) == (
        "google-cloud-storage",
        None,
    )
    assert imports_mod.distribution_for("google.protobuf.json_format")[0] == "protobuf"
    assert imports_mod.distribution_for("yaml") == ("PyYAML", None)


@pytest.mark.parametrize("example", ["flask", "fastapi", "hello", "moderation", "remind"])
def test_the_examples_declare_what_they_import(example: str) -> None:
    """Every distribution an example imports (outside the standard library and its own files)
    is in its requirements.txt or the SDK, or is installed here as a dependency of one of
    them: what `mmplug bundle` would put in its bundle."""
    root = Path(__file__).resolve().parents[2] / "examples" / example
    files = [(p.relative_to(root).as_posix(), p) for p in sorted(root.rglob("*.py"))]
    files = [(rel, p) for rel, p in files if not rel.startswith("tests/")]
    own = imports_mod.own_modules(files, "plugin.py")
    found = imports_mod.plugin_imports(own, "plugin.py", root / "plugin.py")
    stdlib = imports_mod.stdlib_modules("3.11")
    needed = {
        imports_mod.distribution_for(imp.name)[0]
        for imp in found
        # The SDK's wheel is always bundled (installed editable here, it has no file list).
        if imp.name.split(".")[0] not in {*stdlib, "mattermost_plugin"}
    }
    declared = {"mmplug"}
    requirements = root / "requirements.txt"
    if requirements.exists():
        for line in requirements.read_text().splitlines():
            name = line.split("#")[0].split("==")[0].strip()
            if name:
                declared.add(name)
    bundled = _with_dependencies(declared)
    assert {normalize(n) for n in needed} <= bundled, f"{example} imports {needed}"


def normalize(name: str) -> str:
    return name.replace("_", "-").replace(".", "-").lower()


def _with_dependencies(names: set[str]) -> set[str]:
    result: set[str] = set()
    todo = [normalize(n) for n in names]
    while todo:
        name = todo.pop()
        if name in result:
            continue
        result.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # a conditional dependency (python_version < ...) not installed here
        for requirement in requires:
            if "extra ==" not in requirement:
                todo.append(normalize(re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0]))
    return result
