"""Hatchling build hook: the platform wheel that carries mmplug's native programs.

Why a build hook (and not a post-build retag): the files and the tag are decided in one place,
by the backend that writes the wheel's RECORD, so the archive, its RECORD and its WHEEL tag can
never disagree, and nothing rewrites a finished zip. This is the layout ruff and uv use (a
native program inside a platform wheel, found beside the Python package at run time), except
that our programs are not commands for the user's PATH but files ``mmplug`` runs itself, so they
sit inside the package, in ``mattermost_plugin/_bin/``, rather than in the wheel's ``scripts``.

The hook does nothing unless ``MMPLUG_WHEEL_PLATFORM`` is set: an editable install, the pure
wheel that ``mmplug bundle`` builds from a checkout, and a wheel built from the sdist are the
plain ``py3-none-any`` SDK and CLI. ``python/scripts/build_dist.py`` (``make wheel``) sets:

``MMPLUG_WHEEL_PLATFORM``
    ``linux-amd64`` or ``linux-arm64``: the machine the wheel installs on.
``MMPLUG_WHEEL_BINARIES``
    a directory holding ``mmplug-bridge-linux-amd64`` and ``mmplug-bridge-linux-arm64`` (the
    static release bridges every bundle carries, whatever machine builds the bundle),
    ``mmplug-dev`` (the dev server for the wheel's own machine) and
    ``mmplug-<version>-py3-none-any.whl`` (the pure SDK wheel that bundles carry: a plugin's
    server needs the SDK, not the programs).

Each program is checked to be a 64-bit ELF of the right machine, so a wheel tagged for one
machine never ships another's dev server.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

from hatchling.builders.config import BuilderConfig
from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PLATFORM_ENV = "MMPLUG_WHEEL_PLATFORM"
BINARIES_ENV = "MMPLUG_WHEEL_BINARIES"
PACKAGE_BIN = "mattermost_plugin/_bin"

# Mattermost's platform name -> (ELF e_machine, manylinux arch). The programs are statically
# linked (the bridges against glibc with crt-static, the dev server by Go with CGO_ENABLED=0),
# so they ask nothing of the system's glibc; manylinux_2_17 (manylinux2014, glibc 2.17) is the
# floor our dependencies' binary wheels (grpcio) set anyway, and the tag ruff and uv use. The
# legacy alias keeps pips older than 20.3, which only know "manylinux2014", able to install it.
MACHINES = {"linux-amd64": (62, "x86_64"), "linux-arm64": (183, "aarch64")}
MANYLINUX = ("manylinux_2_17", "manylinux2014")


def elf_machine(path: Path) -> int | None:
    """The e_machine of a 64-bit little-endian ELF file, or None when it is not one."""
    with path.open("rb") as f:
        header = f.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
        return None
    machine: int = struct.unpack_from("<H", header, 18)[0]
    return machine


def platform_tag(platform: str) -> str:
    arch = MACHINES[platform][1]
    return ".".join(f"{prefix}_{arch}" for prefix in MANYLINUX)


class PlatformWheelHook(BuildHookInterface[BuilderConfig]):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        platform = os.environ.get(PLATFORM_ENV, "")
        if not platform or self.target_name != "wheel" or version == "editable":
            return
        if platform not in MACHINES:
            raise ValueError(f"{PLATFORM_ENV}={platform!r}: expected one of {', '.join(MACHINES)}")
        binaries = Path(os.environ.get(BINARIES_ENV, ""))
        if not os.environ.get(BINARIES_ENV) or not binaries.is_dir():
            raise ValueError(f"{PLATFORM_ENV} is set but {BINARIES_ENV} names no directory")

        programs = {f"mmplug-bridge-{name}": machine for name, (machine, _) in MACHINES.items()}
        programs["mmplug-dev"] = MACHINES[platform][0]
        for name, machine in programs.items():
            path = binaries / name
            if not path.is_file():
                raise ValueError(f"{path} is missing (the wheel for {platform} needs it)")
            found = elf_machine(path)
            if found != machine:
                raise ValueError(
                    f"{path} is not a 64-bit ELF program for ELF machine {machine} "
                    f"(found {found}); it cannot go into the {platform} wheel"
                )
            build_data["force_include"][str(path)] = f"{PACKAGE_BIN}/{name}"

        sdk = binaries / f"mmplug-{self.metadata.version}-py3-none-any.whl"
        if not sdk.is_file():
            raise ValueError(f"{sdk} is missing (the pure SDK wheel bundles carry)")
        build_data["force_include"][str(sdk)] = f"{PACKAGE_BIN}/{sdk.name}"

        build_data["pure_python"] = False
        build_data["tag"] = f"py3-none-{platform_tag(platform)}"
