"""mmplug as its platform wheel installs it: the programs beside the package (``cli/binaries.py``)
used by ``bundle`` and ``dev`` with no cargo, Go or checkout; the wheel itself as
``python/scripts/build_dist.py`` and ``python/hatch_build.py`` build it; and the mode bundles
are written with.

The programs here are stand-ins (tiny ELF headers, a Python script as the dev server);
``make test-wheel`` runs the real wheel's journey end to end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from cli_fixtures.elf import EM_AARCH64, EM_X86_64, write_elf
from cli_fixtures.wheels import fake_index, sdk_pins, write_wheel
from test_cli_bundle import PLUGIN_ID, bundle_args, members, read_member, run, write_plugin

from mattermost_plugin.cli import binaries, main
from mattermost_plugin.cli import bundle as bundle_mod
from mattermost_plugin.cli import source as source_mod
from mattermost_plugin.cli.source import InstalledSDK

PYTHON_DIR = Path(__file__).resolve().parents[1]
VERSION = "0.1.0"


@pytest.fixture(scope="module")
def wheel_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_index(tmp_path_factory.mktemp("index"))


@pytest.fixture
def no_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No cargo, go or checkout: an empty PATH and an SDK installed as a wheel (not editable)."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("MMPLUG_SOURCE", raising=False)
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    wheel_install = InstalledSDK(VERSION, None)
    monkeypatch.setattr(source_mod, "installed_sdk", lambda: wheel_install)
    monkeypatch.setattr(bundle_mod, "installed_sdk", lambda: wheel_install)
    return empty


def package_bin(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``root`` as the package's _bin directory, empty."""
    root.mkdir(parents=True)
    monkeypatch.setattr(binaries, "BIN_DIR", root)
    return root


def install_programs(bin_dir: Path) -> tuple[Path, Path, Path]:
    """The bridges and the pure SDK wheel a platform wheel carries, as stand-ins."""
    amd64 = write_elf(bin_dir / "mmplug-bridge-linux-amd64", machine=EM_X86_64)
    arm64 = write_elf(bin_dir / "mmplug-bridge-linux-arm64", machine=EM_AARCH64)
    for bridge in (amd64, arm64):
        bridge.chmod(0o755)
    requires = tuple(f"{name}=={version}" for name, version in sdk_pins().items())
    sdk = write_wheel(bin_dir, "mmplug", VERSION, requires=requires)
    return amd64, arm64, sdk


# The mode of a bundle ---------------------------------------------------------------------


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_bundles_get_the_mode_of_any_new_file(
    tmp_path: Path,
    wheel_index: Path,
    capsys: pytest.CaptureFixture[str],
    umask: int,
    mode: int,
) -> None:
    """Written through a private temporary file (0600), a bundle still ends up readable as the
    umask allows, as `cp` or a shell redirection would leave it."""
    plugin = write_plugin(tmp_path / "p")
    bridge = write_elf(tmp_path / "bridge")
    previous = os.umask(umask)
    try:
        code, out, err = run(capsys, bundle_args(plugin, bridge, wheel_index))
    finally:
        os.umask(previous)
    assert code == 0, err
    assert Path(out.strip()).stat().st_mode & 0o777 == mode


# bundle from the wheel -------------------------------------------------------------------


def test_bundle_takes_both_bridges_and_the_sdk_from_the_wheel(
    tmp_path: Path,
    wheel_index: Path,
    no_tools: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    amd64, arm64, sdk = install_programs(package_bin(tmp_path / "_bin", monkeypatch))
    plugin = write_plugin(tmp_path / "p")
    args = ["bundle", str(plugin), "--python", "3.12", "--no-index", "--find-links"]
    code, out, err = run(capsys, [*args, str(wheel_index)])
    assert code == 0, err
    bundle = Path(out.strip())
    manifest = json.loads(read_member(bundle, f"{PLUGIN_ID}/plugin.json"))
    assert list(manifest["server"]["executables"]) == ["linux-amd64", "linux-arm64"]
    for platform, bridge in (("linux-amd64", amd64), ("linux-arm64", arm64)):
        stored = read_member(bundle, f"{PLUGIN_ID}/server/dist/plugin-{platform}")
        assert stored == bridge.read_bytes()
    # The SDK wheel the platform wheel carries, byte for byte, and nothing else named mmplug.
    sdk_members = [n for n in members(bundle) if Path(n).name.startswith("mmplug-")]
    assert sdk_members == [f"{PLUGIN_ID}/python/wheels/{sdk.name}"]
    assert read_member(bundle, sdk_members[0]) == sdk.read_bytes()
    index = json.loads(read_member(bundle, f"{PLUGIN_ID}/python/wheels/index.json"))
    assert index["requirements"][0] == f"mmplug=={VERSION}"
    assert "building" not in err  # nothing was built

    # --bridge still wins over the wheel's.
    mine = write_elf(tmp_path / "mine", machine=EM_X86_64)
    mine.write_bytes(mine.read_bytes() + b"mine")
    code, out, err = run(
        capsys, [*args, str(wheel_index), "--platform", "all", "--bridge", f"linux-amd64={mine}"]
    )
    assert code == 0, err
    assert read_member(Path(out.strip()), f"{PLUGIN_ID}/server/dist/plugin-linux-amd64") == (
        mine.read_bytes()
    )


def test_bundle_without_the_wheels_programs_or_a_checkout_says_what_is_missing(
    tmp_path: Path,
    wheel_index: Path,
    no_tools: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    package_bin(tmp_path / "_bin", monkeypatch)  # an install from the sdist: no programs
    plugin = write_plugin(tmp_path / "p")
    args = ["bundle", str(plugin), "--python", "3.12", "--no-index", "--find-links"]
    code, _, err = run(capsys, [*args, str(wheel_index)])
    assert code == 1
    assert "linux-arm64 left out: no bridge for it (this mmplug install carries no bridges" in err
    assert "no bridge binary for linux-amd64: this mmplug install carries no bridges" in err
    assert "pass --bridge linux-amd64=PATH, or set MMPLUG_SOURCE" in err


# dev from the wheel ----------------------------------------------------------------------

DEV_SERVER = """\
import json, os, sys
with open({record!r}, "w") as f:
    json.dump({{"argv": sys.argv[1:], "cwd": os.getcwd()}}, f)
sys.exit(4)
"""


def test_dev_runs_the_wheels_dev_server_with_its_bridge_and_no_go(
    tmp_path: Path,
    no_tools: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bin_dir = package_bin(tmp_path / "_bin", monkeypatch)
    amd64, _, _ = install_programs(bin_dir)
    record = tmp_path / "dev.json"
    dev_server = bin_dir / "mmplug-dev"
    dev_server.write_text(f"#!{sys.executable}\n" + DEV_SERVER.format(record=str(record)))
    dev_server.chmod(0o755)
    plugin = write_plugin(tmp_path / "my plugin")

    assert main(["dev", str(plugin), "--port", "9001"]) == 4  # the dev server's exit code
    err = capsys.readouterr().err
    assert "starting the dev server on port 9001 (Ctrl-C stops)" in err
    assert "building" not in err
    assert json.loads(record.read_text()) == {
        "argv": [
            "-dev",
            "-plugin",
            str(plugin),
            "-bridge",
            str(amd64),
            "-venv",
            sys.prefix,
            "-port",
            "9001",
        ],
        "cwd": str(plugin),
    }

    # A dev server without this machine's bridge beside it is a broken install, said so.
    monkeypatch.setattr("platform.machine", lambda: "aarch64")
    (bin_dir / "mmplug-bridge-linux-arm64").unlink()
    assert main(["dev", str(plugin)]) == 1
    err = capsys.readouterr().err
    assert "has a dev server" in err and "but no bridge for this machine (aarch64)" in err


def test_dev_without_the_wheels_programs_or_a_checkout_says_what_is_missing(
    tmp_path: Path,
    no_tools: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    package_bin(tmp_path / "_bin", monkeypatch)
    plugin = write_plugin(tmp_path / "p")
    assert main(["dev", str(plugin)]) == 1
    err = capsys.readouterr().err
    assert "a program that comes in mmplug's platform wheel" in err
    assert "this install does not carry it" in err
    assert "set MMPLUG_SOURCE=/path/to/mmplug" in err


def test_an_editable_install_has_no_packaged_programs() -> None:
    """The checkout's package directory never holds _bin (make wheel stages the programs
    elsewhere), so contributors always build from the checkout."""
    assert binaries.BIN_DIR == PYTHON_DIR / "src" / "mattermost_plugin" / "_bin"
    assert not binaries.BIN_DIR.exists()
    assert binaries.packaged_bridges() == {}
    assert binaries.packaged_dev_server() is None


# The wheel as make wheel builds it ------------------------------------------------------


def build_dist(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = PYTHON_DIR / "scripts" / "build_dist.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMPLUG_WHEEL_")}
    return subprocess.run(
        [sys.executable, str(script), "--out", str(out), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


@pytest.mark.timeout(180)
def test_build_dist_makes_a_platform_wheel_per_machine_and_an_sdist(tmp_path: Path) -> None:
    programs = tmp_path / "programs"
    amd64 = write_elf(programs / "bridge-amd64", machine=EM_X86_64)
    arm64 = write_elf(programs / "bridge-arm64", machine=EM_AARCH64)
    dev_amd64 = write_elf(programs / "dev-amd64", machine=EM_X86_64)
    dev_arm64 = write_elf(programs / "dev-arm64", machine=EM_AARCH64)
    for program in (amd64, arm64, dev_amd64, dev_arm64):
        program.chmod(0o755)
    bridges = ["--bridge", f"linux-amd64={amd64}", "--bridge", f"linux-arm64={arm64}"]
    out = tmp_path / "dist"
    result = build_dist(
        out,
        *bridges,
        "--dev-server",
        f"linux-amd64={dev_amd64}",
        "--dev-server",
        f"linux-arm64={dev_arm64}",
    )
    assert result.returncode == 0, result.stderr

    version = metadata.version("mmplug")
    x86 = out / f"mmplug-{version}-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    arm = out / f"mmplug-{version}-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
    sdist = out / f"mmplug-{version}.tar.gz"
    assert sorted(out.iterdir()) == sorted([x86, arm, sdist])
    for wheel, dev_server in ((x86, dev_amd64), (arm, dev_arm64)):
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            programs_in = {
                n.removeprefix("mattermost_plugin/_bin/"): archive.getinfo(n)
                for n in names
                if n.startswith("mattermost_plugin/_bin/")
            }
            assert archive.read("mattermost_plugin/_bin/mmplug-dev") == dev_server.read_bytes()
            assert archive.read("mattermost_plugin/_bin/mmplug-bridge-linux-arm64") == (
                arm64.read_bytes()
            )
            wheel_meta = archive.read(f"mmplug-{version}.dist-info/WHEEL").decode()
            pure = archive.read(f"mattermost_plugin/_bin/mmplug-{version}-py3-none-any.whl")
        assert "Root-Is-Purelib: false" in wheel_meta
        assert "mattermost_plugin/cli/main.py" in names
        assert sorted(programs_in) == sorted(
            [
                "mmplug-bridge-linux-amd64",
                "mmplug-bridge-linux-arm64",
                "mmplug-dev",
                f"mmplug-{version}-py3-none-any.whl",
            ]
        )
        assert programs_in["mmplug-dev"].external_attr >> 16 & 0o777 == 0o755
        # The pure SDK wheel inside: the package without the programs, tagged for any machine.
        pure_path = tmp_path / "pure.whl"
        pure_path.write_bytes(pure)
        with zipfile.ZipFile(pure_path) as inner:
            assert not [n for n in inner.namelist() if "_bin" in n]
            assert "Tag: py3-none-any" in inner.read(f"mmplug-{version}.dist-info/WHEEL").decode()
    with tarfile.open(sdist) as tar:
        sdist_names = tar.getnames()
    assert f"mmplug-{version}/hatch_build.py" in sdist_names
    assert not [n for n in sdist_names if "/_bin/" in n]

    # A dev server of the wrong machine never goes into a wheel.
    result = build_dist(tmp_path / "wrong", *bridges, "--dev-server", f"linux-arm64={dev_amd64}")
    assert result.returncode != 0
    assert "is not a 64-bit ELF program for ELF machine 183 (found 62)" in result.stderr
    assert not list((tmp_path / "wrong").glob("*.whl"))

    result = build_dist(tmp_path / "one", "--bridge", f"linux-amd64={amd64}")
    assert result.returncode != 0
    assert "each wheel carries both bridges: give --bridge for linux-amd64, linux-arm64" in (
        result.stderr
    )
