"""A local wheel directory standing in for PyPI (``--no-index --find-links DIR``), so bundle
tests resolve the SDK's real pins without the network. The wheels are tiny but valid: pip
reads their names and METADATA, the bridge would unpack them."""

from __future__ import annotations

import re
import zipfile
from importlib import metadata
from pathlib import Path

# Fixed so the wheel files (and so bundles) are the same bytes on every run.
_DATE = (2020, 2, 2, 0, 0, 0)


def write_wheel(
    directory: Path,
    name: str,
    version: str,
    tag: str = "py3-none-any",
    requires: tuple[str, ...] = (),
) -> Path:
    dist = re.sub(r"[-.]+", "_", name)
    path = directory / f"{dist}-{version}-{tag}.whl"
    info = f"{dist}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {
        f"{dist}/__init__.py": f"VERSION = {version!r}\n",
        f"{info}/METADATA": meta,
        f"{info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: cli-tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
        ),
        f"{info}/RECORD": "",
    }
    directory.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for filename, text in files.items():
            archive.writestr(zipfile.ZipInfo(filename, _DATE), text)
    return path


def sdk_pins() -> dict[str, str]:
    """The installed SDK's exact requirements: {"grpcio": "1.85.3", ...}."""
    pins = {}
    for requirement in metadata.requires("mmplug") or []:
        if "extra" in requirement:
            continue
        name, _, version = requirement.partition("==")
        pins[name.strip()] = version.strip()
    return pins


def fake_index(directory: Path) -> Path:
    """Wheels for every SDK dependency (binary ones for x86_64 and aarch64, CPython 3.10 to
    3.13, the versions bundles support) and for ``tinydep`` 1.0 and 2.0, a dependency a plugin
    may ask for."""
    for name, version in sdk_pins().items():
        if name == "grpcio":
            for minor in (10, 11, 12, 13):
                for arch in ("x86_64", "aarch64"):
                    tag = f"cp3{minor}-cp3{minor}-manylinux_2_17_{arch}.manylinux2014_{arch}"
                    write_wheel(directory, name, version, tag)
        elif name == "protobuf":
            for arch in ("x86_64", "aarch64"):
                write_wheel(directory, name, version, f"cp310-abi3-manylinux2014_{arch}")
        else:
            write_wheel(directory, name, version)
    write_wheel(directory, "tinydep", "1.0")
    write_wheel(directory, "tinydep", "2.0")
    return directory
