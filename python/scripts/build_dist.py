"""Builds mmplug's release files: the platform wheels and the sdist (``make wheel``).

    python build_dist.py --out DIR --bridge linux-amd64=PATH --bridge linux-arm64=PATH \
        --dev-server linux-amd64=PATH [--dev-server linux-arm64=PATH] [--no-sdist]

One platform wheel per ``--dev-server`` (``mmplug-<v>-py3-none-manylinux_2_17_<arch>...whl``),
each holding the SDK, the CLI, both static bridges, the dev server for its own machine and the
pure SDK wheel that bundles carry (see ``python/hatch_build.py`` for why and how). Steps:

1. the pure wheel (``py3-none-any``), built by hatchling with the platform hook off;
2. per platform, the programs and that pure wheel staged under the names the hook expects, and
   hatchling run again with ``MMPLUG_WHEEL_PLATFORM``/``MMPLUG_WHEEL_BINARIES`` set;
3. the sdist (the Python sources: a wheel built from it is the pure SDK and CLI, without the
   programs, which are built from the Rust and Go code of the repository);
4. each wheel read back: its tag, and every program present and executable.

Hatchling is the one in this environment (pinned in the dev extra), so nothing is downloaded.
``SOURCE_DATE_EPOCH`` is honoured by hatchling: the same inputs give the same files.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent  # python/
sys.path.insert(0, str(PROJECT))

from hatch_build import BINARIES_ENV, MACHINES, PACKAGE_BIN, PLATFORM_ENV  # noqa: E402


def platform_path(value: str) -> tuple[str, Path]:
    name, sep, path = value.partition("=")
    if not sep or name not in MACHINES or not path:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not PLATFORM=PATH with PLATFORM one of {', '.join(MACHINES)}"
        )
    return name, Path(path).resolve()


def hatchling(target: str, dest: Path, env: dict[str, str]) -> Path:
    """Runs ``hatchling build -t TARGET`` in python/ and returns the one file it wrote."""
    dest.mkdir(parents=True, exist_ok=True)
    before = set(dest.iterdir())
    command = [sys.executable, "-m", "hatchling", "build", "-t", target, "-d", str(dest)]
    result = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"build_dist: hatchling build -t {target} failed:\n{result.stderr}")
    written = sorted(set(dest.iterdir()) - before)
    if len(written) != 1:
        raise SystemExit(f"build_dist: hatchling build -t {target} wrote {written}")
    return written[0]


def check_wheel(wheel: Path, platform: str, sdk_wheel: str) -> None:
    """The wheel is tagged for ``platform`` and holds every program, executable."""
    arch = MACHINES[platform][1]
    with zipfile.ZipFile(wheel) as archive:
        names = {info.filename: info for info in archive.infolist()}
        wheel_meta = next(n for n in names if n.endswith(".dist-info/WHEEL"))
        tags = [
            line.split(":", 1)[1].strip()
            for line in archive.read(wheel_meta).decode().splitlines()
            if line.startswith("Tag:")
        ]
    if not tags or not all(tag.startswith("py3-none-") and tag.endswith(arch) for tag in tags):
        raise SystemExit(f"build_dist: {wheel.name} is tagged {tags}, not for {arch}")
    programs = ["mmplug-bridge-linux-amd64", "mmplug-bridge-linux-arm64", "mmplug-dev"]
    for name in [*programs, sdk_wheel]:
        info = names.get(f"{PACKAGE_BIN}/{name}")
        if info is None:
            raise SystemExit(f"build_dist: {wheel.name} lacks {PACKAGE_BIN}/{name}")
        executable = bool((info.external_attr >> 16) & 0o111)
        if executable != (name in programs):
            raise SystemExit(
                f"build_dist: {wheel.name}: {PACKAGE_BIN}/{name} has mode "
                f"{info.external_attr >> 16:o}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="where the files are written")
    parser.add_argument("--bridge", type=platform_path, action="append", default=[])
    parser.add_argument("--dev-server", type=platform_path, action="append", default=[])
    parser.add_argument("--no-sdist", action="store_true", help="build the wheels only")
    args = parser.parse_args()
    bridges = dict(args.bridge)
    dev_servers = dict(args.dev_server)
    if set(bridges) != set(MACHINES):
        needed = ", ".join(MACHINES)
        raise SystemExit(f"build_dist: each wheel carries both bridges: give --bridge for {needed}")
    if not dev_servers:
        raise SystemExit("build_dist: give --dev-server PLATFORM=PATH for each wheel to build")
    for path in [*bridges.values(), *dev_servers.values()]:
        if not path.is_file():
            raise SystemExit(f"build_dist: {path} does not exist (see the Makefile's wheel target)")

    out = args.out.resolve()
    # A pure build must not see a platform left in the caller's environment.
    pure_env = {k: v for k, v in os.environ.items() if k not in (PLATFORM_ENV, BINARIES_ENV)}
    written = []
    with tempfile.TemporaryDirectory(prefix="mmplug-dist-") as scratch_name:
        scratch = Path(scratch_name)
        sdk_wheel = hatchling("wheel", scratch / "pure", pure_env)
        for platform, dev_server in dev_servers.items():
            staged = scratch / platform
            staged.mkdir()
            for name, bridge in bridges.items():
                shutil.copy2(bridge, staged / f"mmplug-bridge-{name}")
            shutil.copy2(dev_server, staged / "mmplug-dev")
            shutil.copy2(sdk_wheel, staged / sdk_wheel.name)
            env = dict(pure_env, **{PLATFORM_ENV: platform, BINARIES_ENV: str(staged)})
            wheel = hatchling("wheel", out, env)
            check_wheel(wheel, platform, sdk_wheel.name)
            written.append(wheel)
        if not args.no_sdist:
            written.append(hatchling("sdist", out, pure_env))
    for path in written:
        print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
