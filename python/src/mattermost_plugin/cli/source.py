"""Where the running SDK came from: a release from PyPI, or an editable install of an mmplug
source checkout (the repository with the bridge's Rust code and the Go conformance harness).

``bundle`` builds the SDK wheel from the checkout when the SDK is installed editable (so a bundle
carries the code you are running), and the bridge from the checkout when neither ``--bridge``
nor the installed platform wheel (``binaries.py``) provides one; ``dev`` runs the checkout's Go
harness when the install carries no dev server. ``MMPLUG_SOURCE`` names a checkout explicitly.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

from .errors import CLIError

DISTRIBUTION = "mmplug"
SOURCE_ENV = "MMPLUG_SOURCE"


@dataclass(frozen=True)
class InstalledSDK:
    """The installed ``mmplug`` distribution."""

    version: str
    # The project directory (python/, holding pyproject.toml) of an editable install.
    editable_project: Path | None


def installed_sdk() -> InstalledSDK:
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise CLIError(
            f"the {DISTRIBUTION} distribution is not installed in {sys.prefix}; "
            f"install it with `pip install {DISTRIBUTION}` (or `pip install -e python` in a "
            "checkout)"
        ) from None
    return InstalledSDK(dist.version, _editable_project(dist.read_text("direct_url.json")))


def _editable_project(direct_url: str | None) -> Path | None:
    """The local project of a PEP 610 ``direct_url.json`` that records an editable install."""
    if not direct_url:
        return None
    try:
        info = json.loads(direct_url)
    except ValueError:
        return None
    if not isinstance(info, dict) or not info.get("dir_info", {}).get("editable"):
        return None
    url = urlparse(str(info.get("url", "")))
    if url.scheme != "file":
        return None
    project = Path(unquote(url.path))
    return project if (project / "pyproject.toml").is_file() else None


def is_checkout(path: Path) -> bool:
    """A directory that holds the bridge's crate, the harness and the SDK project."""
    return (
        (path / "Cargo.toml").is_file()
        and (path / "crates" / "bridge" / "Cargo.toml").is_file()
        and (path / "conformance" / "harness").is_dir()
        and (path / "python" / "pyproject.toml").is_file()
    )


def find_checkout() -> Path | None:
    """``$MMPLUG_SOURCE``, else the checkout an editable SDK install points into, else None.

    A ``MMPLUG_SOURCE`` that is not a checkout is an error rather than silently ignored.
    """
    named = os.environ.get(SOURCE_ENV)
    if named:
        path = Path(named).expanduser().resolve()
        if not is_checkout(path):
            raise CLIError(
                f"{SOURCE_ENV}={named} is not an mmplug source checkout (expected Cargo.toml, "
                "crates/bridge, conformance/harness and python/pyproject.toml in it)"
            )
        return path
    project = installed_sdk().editable_project
    if project is not None and is_checkout(project.parent):
        return project.parent
    return None


def cargo_target_dir(checkout: Path) -> Path:
    """Where cargo puts build outputs for this checkout (``CARGO_TARGET_DIR`` is honoured,
    relative to the checkout as cargo resolves it from there)."""
    named = os.environ.get("CARGO_TARGET_DIR")
    if named:
        return (checkout / named).resolve()
    return checkout / "target"
