"""Every Python dependency of a bundle, as wheels, so the server installs nothing from the network.

For each target (a Python version and a platform's machine) pip resolves the SDK plus the
plugin's requirements.txt and downloads binary wheels only::

    python -m pip download --only-binary=:all: --platform manylinux_2_28_x86_64 ... \
        --python-version 3.12 --implementation cp --abi cp312 -d DIR SDK [-r requirements.txt]

The platform tags run from manylinux_2_28 (glibc 2.28: RHEL 8, Debian 10, Ubuntu 20.04 and
newer) down to manylinux1, so the newest wheel a project publishes for that range is picked.
pip's cache is reused between runs and targets. The results are merged into one directory
(a wheel shared by several targets, e.g. a pure-Python or abi3 one, is kept once) and described
by ``index.json``, which the bridge reads on activation to pick and verify the wheels for the
server's interpreter.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path

from .binaries import packaged_sdk_wheel
from .console import human_size, progress
from .errors import CLIError, UsageError
from .manifest import Platform
from .source import DISTRIBUTION, InstalledSDK

# The CPython versions a bundle supports unless --python says otherwise: every one the SDK
# supports (docs/operations.md "Supported Python versions"), so the server's own python3 fits.
DEFAULT_PYTHONS = ("3.10", "3.11", "3.12", "3.13")
MIN_PYTHON = (3, 10)
# Newest glibc the bundled wheels may require (manylinux_2_28).
MAX_GLIBC_MINOR = 28
INDEX_FORMAT = 1

_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")


@dataclass(frozen=True)
class IndexOptions:
    """Where pip looks for packages (passed through; pip's own config and PIP_* also apply)."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False

    def pip_args(self) -> list[str]:
        args: list[str] = []
        if self.index_url:
            args += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        for link in self.find_links:
            args += ["--find-links", link]
        if self.no_index:
            args.append("--no-index")
        return args


@dataclass(frozen=True)
class WheelTarget:
    python: str  # "3.12"
    platform: Platform

    @property
    def abi(self) -> str:
        return "cp" + self.python.replace(".", "")

    def platform_tags(self) -> list[str]:
        """manylinux tags this target accepts, newest glibc first."""
        arch = self.platform.wheel_arch
        tags = []
        for minor in range(MAX_GLIBC_MINOR, 4, -1):
            tags.append(f"manylinux_2_{minor}_{arch}")
            legacy = _LEGACY_MANYLINUX.get(minor)
            if legacy is not None:
                tags.append(f"{legacy}_{arch}")
        return tags

    def pip_download_args(self) -> list[str]:
        args = ["--only-binary=:all:"]
        for tag in self.platform_tags():
            args += ["--platform", tag]
        args += ["--python-version", self.python, "--implementation", "cp", "--abi", self.abi]
        return args

    def describe(self) -> str:
        return f"Python {self.python} on {self.platform.name}"


@dataclass
class WheelSet:
    """The merged wheels of every target and what index.json says about them."""

    dir: Path
    python_versions: list[str]
    requirements: list[str]
    hashes: dict[str, str] = field(default_factory=dict)
    # Each target's wheels (file names in ``dir``), in target order.
    by_target: list[tuple[WheelTarget, list[str]]] = field(default_factory=list)

    def index_json(self) -> bytes:
        document = {
            "format": INDEX_FORMAT,
            "python_versions": self.python_versions,
            "requirements": self.requirements,
            "wheels": dict(sorted(self.hashes.items())),
        }
        return (json.dumps(document, indent=2) + "\n").encode()


def parse_python_version(value: str) -> str:
    """``3.12`` (also ``312`` or ``cp312``) -> ``3.12``; older than 3.10 is a usage error."""
    match = re.fullmatch(r"(?:cp)?3\.?(\d{1,2})", value.strip())
    if match is None:
        raise UsageError(f"--python {value!r} is not a Python version like 3.12")
    minor = int(match.group(1))
    if (3, minor) < MIN_PYTHON:
        raise UsageError(
            f"--python {value}: mmplug needs Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer"
        )
    return f"3.{minor}"


def normalize_name(name: str) -> str:
    """PEP 503 normalization, so ``Grpcio_Health.Checking`` matches its wheel's file name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_name_version(filename: str) -> tuple[str, str]:
    parts = filename[: -len(".whl")].split("-")
    if len(parts) not in (5, 6):
        raise CLIError(f"{filename} is not a wheel file name")
    return normalize_name(parts[0]), parts[1]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def requirement_lines(requirements_file: Path | None) -> list[str]:
    """The requirement lines of a requirements file (comments, blanks and options dropped)."""
    if requirements_file is None or not requirements_file.is_file():
        return []
    lines = []
    for raw in requirements_file.read_text(encoding="utf-8").splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if line and not line.startswith("-"):
            lines.append(line)
    return lines


def requirement_name(line: str) -> str | None:
    match = _REQUIREMENT_NAME.match(line)
    return normalize_name(match.group(1)) if match else None


def build_sdk_wheel(project: Path, dest: Path) -> Path:
    """Builds the SDK wheel from an editable install's project directory.

    Uses the hatchling already installed in this environment when there is one (no download),
    otherwise pip's isolated build, which fetches the build backend pyproject.toml pins.
    """
    progress(f"building the SDK wheel from {project}")
    args = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dest)]
    if _has_module("hatchling"):
        args.append("--no-build-isolation")
    result = _run_pip([*args, str(project)])
    if result.returncode != 0:
        raise CLIError(f"building the SDK wheel from {project} failed:\n{_pip_errors(result)}")
    wheels = sorted(dest.glob(f"{DISTRIBUTION}-*.whl"))
    if len(wheels) != 1:
        raise CLIError(f"building the SDK wheel from {project} produced {len(wheels)} wheels")
    return wheels[0]


def collect_wheels(
    *,
    sdk: InstalledSDK,
    requirements_file: Path | None,
    pythons: list[str],
    platforms: list[Platform],
    dest: Path,
    index: IndexOptions,
) -> WheelSet:
    """Downloads every target's wheels into ``dest`` and describes them."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mmplug-wheels-") as scratch_name:
        scratch = Path(scratch_name)
        if sdk.editable_project is not None:
            sdk_requirement = str(build_sdk_wheel(sdk.editable_project, scratch / "sdk"))
        elif (packaged := packaged_sdk_wheel(sdk.version)) is not None:
            # mmplug installed from its platform wheel, which carries the pure SDK wheel:
            # bundles get the SDK alone (not the bridges and dev server around it), and no
            # package index is asked for it.
            sdk_requirement = str(packaged)
        else:
            sdk_requirement = f"{DISTRIBUTION}=={sdk.version}"
        requirement_args = [sdk_requirement]
        if requirements_file is not None and requirement_lines(requirements_file):
            requirement_args += ["-r", str(requirements_file)]

        targets = [WheelTarget(py, platform) for platform in platforms for py in pythons]
        hashes: dict[str, str] = {}
        by_target: list[tuple[WheelTarget, list[str]]] = []
        for number, target in enumerate(targets, 1):
            progress(f"[{number}/{len(targets)}] wheels for {target.describe()}")
            target_dir = scratch / f"{target.platform.name}-{target.python}"
            args = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--progress-bar",
                "off",
                *target.pip_download_args(),
                *index.pip_args(),
                "-d",
                str(target_dir),
                *requirement_args,
            ]
            result = _run_pip(args)
            if result.returncode != 0:
                raise CLIError(
                    f"pip could not download wheels for {target.describe()} (bundles hold "
                    f"binary wheels only, so every dependency needs a wheel for CPython "
                    f"{target.python} on manylinux {target.platform.wheel_arch} with glibc "
                    f"<= 2.{MAX_GLIBC_MINOR}){_leave_out_hint(target, pythons)}:\n"
                    f"{_pip_errors(result)}"
                )
            wheels = sorted(target_dir.glob("*.whl"))
            size = sum(w.stat().st_size for w in wheels)
            progress(f"      {len(wheels)} wheels, {human_size(size)}")
            by_target.append((target, [wheel.name for wheel in wheels]))
            for wheel in wheels:
                digest = sha256_file(wheel)
                known = hashes.get(wheel.name)
                if known is None:
                    shutil.copyfile(wheel, dest / wheel.name)
                    hashes[wheel.name] = digest
                elif known != digest:
                    raise CLIError(
                        f"two different files named {wheel.name} were downloaded for different "
                        "targets; the package index is inconsistent"
                    )

    requirements = top_level_requirements(
        sdk_wheel=_find_sdk_wheel(dest, hashes),
        plugin_requirements=requirement_lines(requirements_file),
        wheel_names=list(hashes),
    )
    return WheelSet(dest, list(pythons), requirements, hashes, by_target)


def top_level_requirements(
    *, sdk_wheel: Path, plugin_requirements: list[str], wheel_names: list[str]
) -> list[str]:
    """The SDK pinned to its wheel's version, the SDK's own requirements, then the plugin's,
    each pinned to the version downloaded when every target got the same one."""
    versions: dict[str, set[str]] = {}
    for filename in wheel_names:
        name, version = wheel_name_version(filename)
        versions.setdefault(name, set()).add(version)

    sdk_name, sdk_version = wheel_name_version(sdk_wheel.name)
    result = [f"{DISTRIBUTION}=={sdk_version}"]
    seen = {sdk_name}
    for line in [*_wheel_requirements(sdk_wheel), *plugin_requirements]:
        dist = requirement_name(line)
        if dist is None or dist in seen:
            continue
        seen.add(dist)
        found = versions.get(dist, set())
        result.append(f"{dist}=={next(iter(found))}" if len(found) == 1 else line)
    return result


def _find_sdk_wheel(dest: Path, hashes: dict[str, str]) -> Path:
    for filename in sorted(hashes):
        if wheel_name_version(filename)[0] == DISTRIBUTION:
            return dest / filename
    raise CLIError(f"pip downloaded no {DISTRIBUTION} wheel")


def _wheel_requirements(wheel: Path) -> list[str]:
    """The unconditional Requires-Dist entries of a wheel's METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        if not names:
            return []
        metadata = HeaderParser().parsestr(archive.read(names[0]).decode("utf-8"))
    requirements = []
    for value in metadata.get_all("Requires-Dist") or []:
        requirement, _, marker = value.partition(";")
        if "extra" not in marker:
            requirements.append(requirement.strip())
    return requirements


def _leave_out_hint(target: WheelTarget, pythons: list[str]) -> str:
    """How to build the bundle without ``target``'s Python when others remain (a dependency may
    have dropped an old Python, as FastAPI 0.163 dropped 3.10)."""
    others = [p for p in pythons if p != target.python]
    if not others:
        return ""
    flags = " ".join(f"--python {p}" for p in others)
    return f"; to leave Python {target.python} out, name the others: {flags}"


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _run_pip(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    return subprocess.run(args, capture_output=True, text=True, env=env, check=False)


def _pip_errors(result: subprocess.CompletedProcess[str]) -> str:
    """pip's ERROR lines (or its last lines when it printed none), indented."""
    lines = (result.stderr + result.stdout).strip().splitlines()
    errors = [line for line in lines if line.startswith("ERROR")] or lines[-10:]
    return "\n".join(f"  {line}" for line in errors)
