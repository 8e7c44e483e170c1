"""The bridge's wheel unpacker (crates/bridge/src/wheelenv.py, run by the server's Python when an
offline bundle activates): which zip member names it refuses to unpack. The bridge's own tests
(crates/bridge/src/pyenv.rs) run whole installs; these check the rule itself."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

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
