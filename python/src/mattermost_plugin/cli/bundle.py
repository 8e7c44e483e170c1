"""``mmplug bundle``: a plugin directory -> ``dist/<id>-<version>.tar.gz``.

The layout (read by the server's plugin installer and then by the bridge)::

    <id>/plugin.json                     server.executables = exactly the bundled platforms
    <id>/server/dist/plugin-<os>-<arch>  the bridge binary, mode 0755
    <id>/<the plugin's files>            entry module, packages, assets
    <id>/python/wheels/*.whl             the SDK and every dependency, per Python and machine
    <id>/python/wheels/index.json        {"format": 1, "python_versions", "requirements", "wheels"}

Reproducible: entries sorted, every mtime ``SOURCE_DATE_EPOCH`` (or a constant), owner 0:0
without names, modes normalised to 0755/0644, gzip header without name or time. So the same
inputs give the same bytes, and a bundle can be rebuilt and compared.

Member paths never leave ``<id>/``: symlinks are followed only when they point inside the
plugin directory (their content is stored as a regular file), anything else is refused.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import platform as host
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .binaries import packaged_bridge, packaged_bridges
from .console import human_size, progress
from .elf import check_static_elf
from .errors import CLIError, UsageError
from .imports import Target, check_imports
from .manifest import MANIFEST, PLATFORMS, Platform, PluginManifest, load_manifest
from .source import cargo_target_dir, find_checkout, installed_sdk
from .wheels import DEFAULT_PYTHONS, IndexOptions, collect_wheels, requirement_name

# 1980-01-01T00:00:00Z: the earliest time zip (and so wheels) can express; used when
# SOURCE_DATE_EPOCH is not set.
DEFAULT_EPOCH = 315532800
REQUIREMENTS = "requirements.txt"
WHEELS_DIR = "python/wheels"

# Directory names never bundled, wherever they are.
_SKIP_DIRS = {
    "__pycache__",
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".tox",
    ".nox",
    ".hypothesis",
    "node_modules",
}
# Top-level directories never bundled: tests and build output.
_SKIP_TOP_DIRS = {"tests", "dist"}
_SKIP_SUFFIXES = (".pyc", ".pyo")
_SKIP_FILES = {".coverage", ".DS_Store"}


@dataclass(frozen=True)
class BundleOptions:
    plugin_dir: Path
    # Names from PLATFORMS, or ALL_PLATFORMS; empty: see default_platforms.
    platforms: list[str] = field(default_factory=list)
    bridges: dict[str, Path] = field(default_factory=dict)
    pythons: list[str] = field(default_factory=lambda: list(DEFAULT_PYTHONS))
    output_dir: Path | None = None  # default: <plugin_dir>/dist
    index: IndexOptions = field(default_factory=IndexOptions)
    check_imports: bool = True


@dataclass(frozen=True)
class Member:
    """One file of the bundle: where its bytes come from and its normalised mode."""

    arcname: str
    source: Path | None
    data: bytes | None
    executable: bool


def build_bundle(options: BundleOptions) -> Path:
    """Validates, gathers and writes the bundle; returns its path."""
    started = time.monotonic()
    plugin_dir = options.plugin_dir.resolve()
    manifest = load_manifest(plugin_dir)
    platforms = resolve_platforms(options.platforms, options.bridges)
    output_dir = (options.output_dir or plugin_dir / "dist").resolve()
    files = collect_plugin_files(plugin_dir, exclude=[output_dir])
    if manifest.entry not in {rel for rel, _ in files}:
        raise CLIError(
            f"the entry module {manifest.entry} (props.mmplug.entry) is excluded from bundles "
            "(tests/, dist/, venv/ and caches are never bundled); move it"
        )
    bridges = {p.name: locate_bridge(p, options.bridges.get(p.name)) for p in platforms}

    requirements_file = plugin_dir / manifest.requirements
    with tempfile.TemporaryDirectory(prefix="mmplug-bundle-") as scratch:
        wheels = collect_wheels(
            sdk=installed_sdk(),
            requirements_file=without_upstream_sdk(requirements_file, Path(scratch)),
            pythons=options.pythons,
            platforms=platforms,
            dest=Path(scratch) / "wheels",
            index=options.index,
        )
        if options.check_imports:
            check_imports(
                files=files,
                entry=manifest.entry,
                entry_path=plugin_dir / manifest.entry,
                targets=[
                    Target(target.describe(), target.python, tuple(wheels.dir / n for n in names))
                    for target, names in wheels.by_target
                ],
                requirements_file=requirements_file,
            )
        members = [
            Member(MANIFEST, None, manifest_bytes(manifest, platforms), False),
            *(Member(rel, path, None, _is_executable(path)) for rel, path in files),
            *(
                Member(PLATFORMS[name].executable, path, None, True)
                for name, path in bridges.items()
            ),
            *(
                Member(f"{WHEELS_DIR}/{name}", wheels.dir / name, None, False)
                for name in wheels.hashes
            ),
            Member(f"{WHEELS_DIR}/index.json", None, wheels.index_json(), False),
        ]
        output_dir.mkdir(parents=True, exist_ok=True)
        target = output_dir / manifest.bundle_name
        write_tar_gz(target, manifest.id, members, source_date_epoch())
    elapsed = time.monotonic() - started
    progress(
        f"wrote {target} ({human_size(target.stat().st_size)}, "
        f"{', '.join(p.name for p in platforms)}) in {elapsed:.1f} s"
    )
    return target


# The distribution of Mattermost's own Python SDK: its module (mattermost_plugin) is mmplug's SDK,
# which every bundle carries, so a requirement on it is dropped rather than downloaded.
UPSTREAM_SDK_DISTRIBUTIONS = {"mattermost-plugin-sdk"}


def without_upstream_sdk(requirements_file: Path, scratch: Path) -> Path | None:
    """``requirements_file`` without lines requiring Mattermost's own SDK (a copy in
    ``scratch`` when there were any); None when there is no such file."""
    if not requirements_file.is_file():
        return None
    lines = requirements_file.read_text(encoding="utf-8").splitlines()
    kept = [
        line
        for line in lines
        if requirement_name(re.sub(r"(^|\s)#.*$", "", line).strip())
        not in UPSTREAM_SDK_DISTRIBUTIONS
    ]
    if len(kept) == len(lines):
        return requirements_file
    dropped = len(lines) - len(kept)
    progress(
        f"{requirements_file.name}: {dropped} requirement(s) on Mattermost's own Python SDK "
        "left out (mmplug's SDK provides mattermost_plugin)"
    )
    # Relative -r/-c lines keep resolving from the original directory.
    kept = [
        f"{m.group(1)} {requirements_file.parent / m.group(2)}"
        if (m := _INCLUDE.match(line))
        else line
        for line in kept
    ]
    copy = scratch / "requirements.txt"
    copy.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return copy


def _requirement(line: str) -> str | None:
    text = re.sub(r"(^|\s)#.*$", "", line).strip()
    return None if not text or text.startswith("-") else requirement_name(text)


_INCLUDE = re.compile(r"^\s*(-r|-c|--requirement|--constraint)\s+(?!/)(\S+)\s*$")


def manifest_bytes(manifest: PluginManifest, platforms: list[Platform]) -> bytes:
    return (json.dumps(manifest.with_executables(platforms), indent=2) + "\n").encode()


# `--platform all`: every platform in PLATFORMS.
ALL_PLATFORMS = "all"


def resolve_platforms(requested: list[str], bridges: dict[str, Path]) -> list[Platform]:
    """The platforms to bundle: those asked for (``all``: every one), else the default."""
    names = list(dict.fromkeys(requested))
    if ALL_PLATFORMS in names:
        names = list(PLATFORMS)
    if not names:
        names = default_platforms(bridges)
    for name in [*names, *bridges]:
        if name not in PLATFORMS:
            raise UsageError(f"unknown platform {name!r}; mmplug bundles {', '.join(PLATFORMS)}")
    extra = sorted(set(bridges) - set(names))
    if extra:
        raise UsageError(
            f"--bridge given for {', '.join(extra)}, which is not among the --platform values"
        )
    return [PLATFORMS[name] for name in dict.fromkeys(names)]


def default_platforms(bridges: dict[str, Path]) -> list[str]:
    """Without --platform: with --bridge, linux-amd64 plus the platforms given a bridge (what
    the caller chose, so nothing is built behind their back); without, every platform the
    installed wheel carries a bridge for (both, from a platform wheel); else every platform
    whose bridge this machine can build from the checkout, which is linux-amd64 always (its
    build explains what is missing) and linux-arm64 when the aarch64 cross toolchain is
    installed."""
    if bridges:
        return ["linux-amd64", *sorted(bridges)]
    packaged = packaged_bridges()
    if packaged:
        return [name for name in PLATFORMS if name in packaged]
    names = ["linux-amd64"]
    for name, platform in PLATFORMS.items():
        if name in names:
            continue
        missing = cross_build_missing(platform)
        if missing is None:
            names.append(name)
        else:
            progress(
                f"{name} left out: no bridge for it ({missing}); pass --bridge {name}=PATH "
                "to bundle it"
            )
    return names


def cross_build_missing(platform: Platform) -> str | None:
    """What this machine lacks to build the bridge for ``platform`` from an mmplug checkout,
    or None when it has it all: the checkout, cargo, and for another machine's platform the
    rustup target and the cross linker."""
    checkout = find_checkout()
    if checkout is None:
        return (
            "this mmplug install carries no bridges (the platform wheel does) and there is no "
            "mmplug source checkout to build it from"
        )
    if shutil.which("cargo") is None:
        return "cargo (Rust) is not on PATH"
    if _native(platform):
        return None
    if not _rust_target_installed(platform.rust_target, checkout):
        return f"the Rust target is not installed: rustup target add {platform.rust_target}"
    if _configured_linker(platform) is None and shutil.which(platform.cross_linker) is None:
        return (
            f"no cross linker {platform.cross_linker} on PATH (Debian: gcc-"
            f"{platform.cross_linker.removesuffix('-gcc').replace('_', '-')}, and libc6-dev-"
            f"{platform.name.removeprefix('linux-')}-cross)"
        )
    return None


def _native(platform: Platform) -> bool:
    return host.machine() == platform.wheel_arch


def _linker_variable(platform: Platform) -> str:
    """cargo's per-target linker setting, e.g. CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER."""
    return f"CARGO_TARGET_{platform.rust_target.upper().replace('-', '_')}_LINKER"


def _configured_linker(platform: Platform) -> str | None:
    return os.environ.get(_linker_variable(platform)) or None


def _rust_target_installed(rust_target: str, checkout: Path) -> bool:
    """Whether the standard library for ``rust_target`` is in the sysroot of the rustc that
    builds ``checkout`` (run there, so a rustup toolchain override applies), where rustup
    target add puts it."""
    rustc = shutil.which("rustc")
    if rustc is None:
        return False
    result = subprocess.run(
        [rustc, "--print", "sysroot"], cwd=checkout, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        return False
    return (Path(result.stdout.strip()) / "lib" / "rustlib" / rust_target / "lib").is_dir()


def locate_bridge(platform: Platform, given: Path | None) -> Path:
    """The bridge binary for ``platform``: the one given, else the one the installed platform
    wheel carries, else a static build from the mmplug checkout (for another machine's
    platform, only with its cross toolchain installed). Either way it must be a static ELF of
    the platform's machine."""
    packaged = packaged_bridge(platform)
    if given is not None:
        path = given.expanduser().resolve()
    elif packaged is not None:
        path = packaged
    elif _native(platform):
        path = build_static_bridge(platform)  # its errors say what is missing
    elif (missing := cross_build_missing(platform)) is None:
        path = build_static_bridge(platform)
    else:
        raise CLIError(
            f"no bridge binary for {platform.name}: pass --bridge {platform.name}=PATH with a "
            f"static {platform.machine_label} build of mmplug-bridge "
            f"(cargo build --release -p mmplug-bridge --target {platform.rust_target}); "
            f"mmplug cannot build it here: {missing}"
        )
    check_static_elf(path, platform)
    return path


def build_static_bridge(platform: Platform) -> Path:
    checkout = find_checkout()
    if checkout is None:
        raise CLIError(
            f"no bridge binary for {platform.name}: this mmplug install carries no bridges "
            "(only the platform wheels from PyPI or `make wheel` do; an install from the sdist "
            f"or a plain checkout does not), so install one of those, pass --bridge "
            f"{platform.name}=PATH, or set MMPLUG_SOURCE to an mmplug source checkout so mmplug "
            "can build it (needs Rust)"
        )
    cargo = shutil.which("cargo")
    if cargo is None:
        raise CLIError(
            "building the bridge needs cargo (Rust), which is not on PATH; install Rust from "
            f"https://rustup.rs or pass --bridge {platform.name}=PATH"
        )
    env = dict(os.environ)
    env["RUSTFLAGS"] = (env.get("RUSTFLAGS", "") + " -C target-feature=+crt-static").strip()
    if not _native(platform) and _configured_linker(platform) is None:
        env[_linker_variable(platform)] = platform.cross_linker
    command = [cargo, "build", "--release", "-p", "mmplug-bridge", "--target", platform.rust_target]
    progress(f"building a static bridge for {platform.name}: {' '.join(command[1:])}")
    # cargo's own progress goes straight to our stderr: this step can take minutes.
    result = subprocess.run(command, cwd=checkout, env=env, stdout=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        raise CLIError(f"cargo could not build the bridge for {platform.name} (see above)")
    return cargo_target_dir(checkout) / platform.rust_target / "release" / "mmplug-bridge"


def source_date_epoch() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value is None or value == "":
        return DEFAULT_EPOCH
    try:
        epoch = int(value)
    except ValueError:
        raise CLIError(f"SOURCE_DATE_EPOCH={value!r} is not a whole number of seconds") from None
    if epoch < 0:
        raise CLIError("SOURCE_DATE_EPOCH must not be negative")
    return epoch


def collect_plugin_files(root: Path, *, exclude: list[Path]) -> list[tuple[str, Path]]:
    """The plugin's own files as (relative POSIX path, file to read), sorted.

    Skips tests/, dist/, virtual environments, VCS and cache directories, compiled Python,
    the bridge binaries (server/dist/plugin-*), python/wheels and ``exclude``. A symlink is
    followed when it resolves inside ``root``; one that points outside, dangles, or loops
    is an error, as is any file that is not a regular file.
    """
    real_root = root.resolve()
    skipped = {p.resolve() for p in exclude}
    result: list[tuple[str, Path]] = []
    for rel, path in _walk(real_root, real_root, PurePosixPath(), skipped, ancestors=()):
        if rel.as_posix() == MANIFEST:
            continue  # written from the validated, rewritten manifest
        result.append((rel.as_posix(), path))
    return sorted(result)


def _walk(
    real_root: Path,
    directory: Path,
    rel_dir: PurePosixPath,
    skipped: set[Path],
    ancestors: tuple[Path, ...],
) -> Iterator[tuple[PurePosixPath, Path]]:
    real_dir = directory.resolve()
    if real_dir in ancestors:
        raise CLIError(f"{rel_dir} is a symlink loop (it leads back to one of its parents)")
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as e:
        raise CLIError(f"cannot read {directory}: {e}") from None
    for entry in entries:
        rel = rel_dir / entry.name
        if _skipped(rel, entry.name):
            continue
        path = Path(entry.path)
        target = path
        if entry.is_symlink():
            target = path.resolve()
            if not _inside(target, real_root):
                raise CLIError(
                    f"{rel} is a symlink to {os.readlink(path)}, outside the plugin directory; "
                    "a bundle holds only the plugin's own files (copy the file in instead)"
                )
            if not target.exists():
                raise CLIError(f"{rel} is a symlink to {os.readlink(path)}, which does not exist")
        if target in skipped or path in skipped:
            continue
        mode = target.stat().st_mode
        if stat.S_ISDIR(mode):
            yield from _walk(real_root, target, rel, skipped, (*ancestors, real_dir))
        elif stat.S_ISREG(mode):
            yield rel, target
        else:
            raise CLIError(f"{rel} is not a regular file or directory (a socket or device?)")


def _skipped(rel: PurePosixPath, name: str) -> bool:
    top = rel.parts[0]
    if name in _SKIP_DIRS or name in _SKIP_FILES or name.endswith(_SKIP_SUFFIXES):
        return True
    if len(rel.parts) == 1 and top in _SKIP_TOP_DIRS:
        return True
    if name.endswith(".egg-info"):
        return True
    posix = rel.as_posix()
    return posix == WHEELS_DIR or (posix.startswith("server/dist/plugin-") and len(rel.parts) == 3)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _is_executable(path: Path) -> bool:
    return bool(path.stat().st_mode & 0o111)


def write_tar_gz(target: Path, plugin_id: str, members: list[Member], mtime: int) -> None:
    """Writes the members under ``<plugin_id>/``, reproducibly, via a temporary file so a
    failed run never leaves half a bundle behind."""
    by_name: dict[str, Member] = {}
    for member in members:
        arcname = _arcname(plugin_id, member.arcname)
        if arcname in by_name:
            raise CLIError(f"two files would be stored as {arcname} in the bundle")
        by_name[arcname] = member
    directories = {plugin_id}
    for arcname in by_name:
        parent = PurePosixPath(arcname).parent
        while parent != PurePosixPath("."):
            directories.add(parent.as_posix())
            parent = parent.parent
    clash = sorted(directories & set(by_name))
    if clash:
        raise CLIError(f"{clash[0]} would be both a file and a directory in the bundle")

    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for name in sorted(directories | set(by_name)):
                entry = by_name.get(name)
                info = tarfile.TarInfo(name)
                info.mtime = mtime
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if entry is None:
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
                    continue
                info.mode = 0o755 if entry.executable else 0o644
                if entry.data is not None:
                    info.size = len(entry.data)
                    tar.addfile(info, io.BytesIO(entry.data))
                else:
                    assert entry.source is not None
                    with entry.source.open("rb") as f:
                        info.size = os.fstat(f.fileno()).st_size
                        tar.addfile(info, f)
        # mkstemp made the file 0600, and a mode survives the rename: give the bundle the mode
        # any new file gets here (0644 under the usual umask 022), so a web server, another
        # account or a deploy job can read it.
        os.chmod(temp_name, 0o666 & ~_umask())
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask. Reading it means setting it; the CLI runs no other threads that
    create files meanwhile."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _arcname(plugin_id: str, rel: str) -> str:
    path = PurePosixPath(rel)
    if path.is_absolute() or not path.parts or any(p in ("..", ".", "") for p in path.parts):
        raise CLIError(f"{rel!r} is not a path that stays inside the bundle")
    return f"{plugin_id}/{path.as_posix()}"
