"""Which wheels of a bundle would the bridge install on a server of another machine or Python?

The bridge picks wheels by running ``crates/bridge/src/wheelenv.py install`` under the server's
own Python, which ranks each wheel's tags against that interpreter's (``platform.machine()``,
glibc, version). An arm64 server's Python is not available here (under qemu-user the arm64
bridge still starts this machine's x86_64 Python), so this runs the same ``install`` with
``platform.machine()`` answering MACHINE and ``sys.version_info`` each Python version the
bundle's index.json names: the selection logic the bridge uses, applied to the bundle's real
wheels. Fails unless, for every version, every requirement got a wheel (install's own check),
every chosen wheel with a platform tag is for MACHINE, at least one is (grpcio's is binary, so
a two-platform bundle must hold one for each machine), and every chosen wheel with a CPython
ABI tag (``cp310``) is for that version.

    python check_wheel_choice.py BUNDLE.tar.gz MACHINE     (MACHINE: aarch64 or x86_64)
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sys
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from types import ModuleType, SimpleNamespace

WHEELENV = Path(__file__).resolve().parents[2] / "crates" / "bridge" / "src" / "wheelenv.py"


def load_wheelenv(machine: str, version: tuple[int, int]) -> ModuleType:
    spec = importlib.util.spec_from_file_location("wheelenv", WHEELENV)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # Only the module's view of the machine and of the CPython version changes: glibc stays
    # this machine's, as it would be an arm64 server's own.
    vars(module)["platform"] = SimpleNamespace(machine=lambda: machine)
    vars(module)["sys"] = SimpleNamespace(
        version_info=(*version, 0, "final", 0),
        implementation=SimpleNamespace(name="cpython"),
        stderr=sys.stderr,
        exit=sys.exit,
    )
    return module


def platform_tags(wheel: str) -> set[str]:
    """The platform tags of a wheel file name (the last field, ``.``-separated)."""
    return set(wheel.removesuffix(".whl").split("-")[-1].split("."))


def abi_tags(wheel: str) -> set[str]:
    """The ABI tags of a wheel file name (the next to last field): ``cp312``, ``abi3``, ``none``."""
    return set(wheel.removesuffix(".whl").split("-")[-2].split("."))


def check(root: Path, machine: str, version: tuple[int, int]) -> str | None:
    """The problem with what ``install`` chooses for CPython ``version`` on ``machine``, if any."""
    with tempfile.TemporaryDirectory(prefix="mmplug-wheel-env-") as env:
        target = Path(env)
        # install prints its choice as JSON for the bridge; the summary below says it.
        with contextlib.redirect_stdout(io.StringIO()):
            load_wheelenv(machine, version).install(
                str(root), str(root / "index.json"), str(target)
            )
        chosen: list[str] = json.loads((target / "mmplug-env.json").read_text())["wheels"]
    python = f"{version[0]}.{version[1]}"
    binary = [w for w in chosen if platform_tags(w) != {"any"}]
    foreign = [w for w in binary if not all(t.endswith(f"_{machine}") for t in platform_tags(w))]
    cp = f"cp{version[0]}{version[1]}"
    other_abi = [w for w in chosen if any(t.startswith("cp") and t != cp for t in abi_tags(w))]
    if foreign or not binary or other_abi:
        return (
            f"Python {python} on {machine}: chosen {chosen}; not for {machine}: {foreign}; "
            f"for another CPython: {other_abi}"
        )
    print(
        f"check_wheel_choice: Python {python} on {machine}: {len(chosen)} wheels, binary {binary}"
    )
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    bundle, machine = Path(argv[0]), argv[1]
    with tempfile.TemporaryDirectory(prefix="mmplug-wheel-choice-") as scratch:
        root = Path(scratch)
        with tarfile.open(bundle, "r:gz") as tar:
            wanted = [m for m in tar.getmembers() if "/python/wheels/" in m.name and m.isfile()]
            for member in wanted:
                (root / PurePosixPath(member.name).name).write_bytes(
                    tar.extractfile(member).read()  # type: ignore[union-attr]
                )
        index = json.loads((root / "index.json").read_text())
        versions = [tuple(int(p) for p in v.split(".")) for v in index["python_versions"]]
        problems = [check(root, machine, (v[0], v[1])) for v in versions]
    failed = [p for p in problems if p is not None]
    for problem in failed:
        print(f"check_wheel_choice: {problem}", file=sys.stderr)
    return 1 if failed or not versions else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
