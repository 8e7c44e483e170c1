"""The bridge's wheel unpacker (crates/bridge/src/wheelenv.py, run by the server's Python when an
offline bundle activates): which zip member names it refuses to unpack, and which wheels each
supported Python version gets. The bridge's own tests (crates/bridge/src/pyenv.rs) run whole
installs with this machine's Python; these check the rules themselves."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import zipfile
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

WHEELENV = Path(__file__).resolve().parents[2] / "crates" / "bridge" / "src" / "wheelenv.py"


@pytest.fixture(scope="module")
def wheelenv() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wheelenv", WHEELENV)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "name",
    [
        "../escape.py",
        "..",
        "pkg/../../escape.py",
        "pkg/..",
        "pkg-1.0.data/purelib/../../escape.py",
        "/abs.py",
        "//server/share/x.py",
        "pkg\\..\\..\\escape.py",
        "C:\\escape.py",
    ],
)
def test_names_that_could_leave_the_environment_are_refused(
    wheelenv: ModuleType, name: str
) -> None:
    assert wheelenv.is_unsafe_member(name), f"{name!r} would be unpacked"


@pytest.mark.parametrize(
    "name",
    [
        "pkg/__init__.py",
        "pkg/",
        "pkg-1.0.dist-info/METADATA",
        "pkg-1.0.data/purelib/pkg/x.py",
        # Dots inside a name are not a parent directory.
        "pkg/..hidden",
        "pkg/v1..2.py",
        "pkg/.../x.py",
    ],
)
def test_names_inside_the_environment_are_unpacked(wheelenv: ModuleType, name: str) -> None:
    assert not wheelenv.is_unsafe_member(name), f"{name!r} would be refused"


# Which wheels each supported Python gets ------------------------------------------------------

SUPPORTED = [(3, 10), (3, 11), (3, 12), (3, 13)]


def as_interpreter(
    wheelenv: ModuleType, monkeypatch: pytest.MonkeyPatch, version: tuple[int, int], machine: str
) -> None:
    """Makes the module see a CPython ``version`` on ``machine`` (this machine's glibc)."""
    fake_sys = SimpleNamespace(
        version_info=(*version, 0, "final", 0),
        implementation=SimpleNamespace(name="cpython"),
        stderr=sys.stderr,
        exit=sys.exit,
    )
    monkeypatch.setitem(vars(wheelenv), "sys", fake_sys)
    monkeypatch.setitem(vars(wheelenv), "platform", SimpleNamespace(machine=lambda: machine))


def bundle_wheels(directory: Path) -> Path:
    """A bundle's wheels as `mmplug bundle` makes them by default: grpcio per CPython and
    machine, protobuf's abi3 wheel per machine, a pure-Python one; and their index."""
    names = ["pure-1.0-py3-none-any.whl"]
    for arch in ("x86_64", "aarch64"):
        names.append(f"protobuf-7.35.1-cp310-abi3-manylinux2014_{arch}.whl")
        for major, minor in SUPPORTED:
            tag = f"cp{major}{minor}-cp{major}{minor}-manylinux_2_17_{arch}.manylinux2014_{arch}"
            names.append(f"grpcio-1.85.3-{tag}.whl")
    directory.mkdir()
    hashes = {}
    for name in names:
        path = directory / name
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(f"{name.split('-')[0]}/__init__.py", f"WHEEL = {name!r}\n")
        hashes[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    index = {
        "format": 1,
        "python_versions": [f"{a}.{b}" for a, b in SUPPORTED],
        "requirements": ["grpcio==1.85.3", "protobuf==7.35.1", "pure==1.0"],
        "wheels": hashes,
    }
    (directory / "index.json").write_text(json.dumps(index))
    return directory


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
@pytest.mark.parametrize("version", SUPPORTED, ids=lambda v: f"{v[0]}.{v[1]}")
def test_every_supported_python_gets_its_own_wheels(
    wheelenv: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    version: tuple[int, int],
    machine: str,
) -> None:
    wheels = bundle_wheels(tmp_path / "wheels")
    target = tmp_path / "env"
    target.mkdir()
    as_interpreter(wheelenv, monkeypatch, version, machine)
    wheelenv.main(["install", str(wheels), str(wheels / "index.json"), str(target)])
    chosen = json.loads((target / "mmplug-env.json").read_text())["wheels"]
    cp = f"cp{version[0]}{version[1]}"
    assert chosen == [
        f"grpcio-1.85.3-{cp}-{cp}-manylinux_2_17_{machine}.manylinux2014_{machine}.whl",
        f"protobuf-7.35.1-cp310-abi3-manylinux2014_{machine}.whl",
        "pure-1.0-py3-none-any.whl",
    ]
    assert json.loads(capsys.readouterr().out) == {"wheels": chosen}


def test_a_python_older_than_supported_is_told_so(
    wheelenv: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wheels = bundle_wheels(tmp_path / "wheels")
    as_interpreter(wheelenv, monkeypatch, (3, 9), "x86_64")
    with pytest.raises(SystemExit) as exit_info:
        wheelenv.main(["install", str(wheels), str(wheels / "index.json"), str(tmp_path)])
    assert exit_info.value.code == 2
    assert "Python 3.9 is too old; mmplug needs 3.10 or newer" in capsys.readouterr().err
