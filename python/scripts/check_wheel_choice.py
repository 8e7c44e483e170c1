"""Which wheels of a bundle would the bridge install on a server of another machine?

The bridge picks wheels by running ``crates/bridge/src/wheelenv.py install`` under the server's
own Python, which ranks each wheel's tags against that interpreter's (``platform.machine()``,
glibc, version). An arm64 server's Python is not available here (under qemu-user the arm64
bridge still starts this machine's x86_64 Python), so this runs the same ``install`` with
``platform.machine()`` answering MACHINE: the selection logic the bridge uses, applied to the
bundle's real wheels and index.json. Fails unless every requirement got a wheel (install's own
check), every chosen wheel with a platform tag is for MACHINE, and at least one is (grpcio's
is binary, so a two-platform bundle must hold one for each machine).

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


def load_wheelenv(machine: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("wheelenv", WHEELENV)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # Only the module's view of the machine changes: glibc and the Python version stay this
    # interpreter's, as they would be an arm64 server's own.
    vars(module)["platform"] = SimpleNamespace(machine=lambda: machine)
    return module


def platform_tags(wheel: str) -> set[str]:
    """The platform tags of a wheel file name (the last field, ``.``-separated)."""
    return set(wheel.removesuffix(".whl").split("-")[-1].split("."))


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
        target = root / "env"
        target.mkdir()
        # install prints its choice as JSON for the bridge; the summary below says it.
        with contextlib.redirect_stdout(io.StringIO()):
            load_wheelenv(machine).install(str(root), str(root / "index.json"), str(target))
        chosen: list[str] = json.loads((target / "mmplug-env.json").read_text())["wheels"]
    binary = [w for w in chosen if platform_tags(w) != {"any"}]
    foreign = [w for w in binary if not all(t.endswith(f"_{machine}") for t in platform_tags(w))]
    if foreign or not binary:
        print(
            f"check_wheel_choice: for {machine}, chosen {chosen}; not for {machine}: {foreign}",
            file=sys.stderr,
        )
        return 1
    print(f"check_wheel_choice: {machine}: {len(chosen)} wheels, binary ones {binary}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
