"""The programs a platform wheel of mmplug carries, found beside the package at run time.

``make wheel`` (``python/hatch_build.py``) puts them in ``mattermost_plugin/_bin/``::

    mmplug-bridge-linux-amd64, mmplug-bridge-linux-arm64   the static release bridges
    mmplug-dev                                             the dev server, for this machine
    mmplug-<version>-py3-none-any.whl                      the pure SDK wheel bundles carry

An editable install of a checkout, or a wheel built from the sdist, has none of them: then
``bundle`` and ``dev`` build what they need from an mmplug checkout (``source.py``).
"""

from __future__ import annotations

import os
import platform as host
from pathlib import Path

from .manifest import PLATFORMS, Platform

BIN_DIR = Path(__file__).resolve().parent.parent / "_bin"
DEV_SERVER = "mmplug-dev"


def _program(name: str) -> Path | None:
    path = BIN_DIR / name
    # Executable: a wheel installed by a tool that dropped the mode would fail later with a
    # less clear "permission denied"; treat that as not packaged.
    return path if path.is_file() and os.access(path, os.X_OK) else None


def packaged_bridge(platform: Platform) -> Path | None:
    """The wheel's static bridge for ``platform``."""
    return _program(f"mmplug-bridge-{platform.name}")


def packaged_bridges() -> dict[str, Path]:
    """Every platform the wheel carries a bridge for, by name."""
    found = {name: packaged_bridge(platform) for name, platform in PLATFORMS.items()}
    return {name: path for name, path in found.items() if path is not None}


def packaged_dev_server() -> Path | None:
    return _program(DEV_SERVER)


def host_platform() -> Platform | None:
    """The platform of this machine, when mmplug bundles for it."""
    machine = host.machine()
    for platform in PLATFORMS.values():
        if platform.wheel_arch == machine:
            return platform
    return None


def packaged_sdk_wheel(version: str) -> Path | None:
    """The wheel's pure SDK wheel of ``version`` (the installed version: one that does not
    match would put other code into bundles than the code running here)."""
    path = BIN_DIR / f"mmplug-{version}-py3-none-any.whl"
    return path if path.is_file() else None
