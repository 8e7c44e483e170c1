"""Checks that a bridge binary can run on any Linux server of its platform.

Mattermost runs the bundle's executable directly on the server, whose C library we do not
know, so the bridge must be a static ELF of the platform's machine: the header's ``e_machine``
matches and there is no ``PT_INTERP`` program header (the request for a dynamic loader such as
``/lib64/ld-linux-x86-64.so.2``). Static PIE binaries are ``ET_DYN`` without ``PT_INTERP`` and
pass. Only the ELF header and program header table are read (ELF-64, little-endian: both
platforms mmplug bundles).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from .errors import CLIError
from .manifest import Platform

_MAGIC = b"\x7fELF"
_ELFCLASS64 = 2
_ELFDATA2LSB = 1
_ET_EXEC = 2
_ET_DYN = 3
_PT_INTERP = 3
_PN_XNUM = 0xFFFF
_HEADER_SIZE = 64
_PHDR_SIZE = 56

_MACHINES = {3: "x86 (32-bit)", 40: "ARM (32-bit)", 62: "x86-64", 183: "aarch64", 243: "RISC-V"}


def static_build_hint(platform: Platform) -> str:
    return (
        'build it with RUSTFLAGS="-C target-feature=+crt-static" cargo build --release '
        f"-p mmplug-bridge --target {platform.rust_target}"
    )


def check_static_elf(path: Path, platform: Platform) -> None:
    """Raises CLIError unless ``path`` is a static ELF executable for ``platform``."""
    try:
        with path.open("rb") as f:
            header = f.read(_HEADER_SIZE)
            problem = _header_problem(header, platform)
            if problem is None:
                problem = _interp_problem(f, header, platform)
    except FileNotFoundError:
        raise CLIError(f"bridge binary {path} does not exist") from None
    except IsADirectoryError:
        raise CLIError(f"bridge binary {path} is a directory, not a file") from None
    except OSError as e:
        raise CLIError(f"cannot read bridge binary {path}: {e}") from None
    if problem is not None:
        raise CLIError(f"bridge binary {path} for {platform.name}: {problem}")


def _header_problem(header: bytes, platform: Platform) -> str | None:
    if len(header) < _HEADER_SIZE or header[:4] != _MAGIC:
        return "not an ELF executable (a Linux program starts with \\x7fELF)"
    if header[4] != _ELFCLASS64:
        return f"a 32-bit ELF file; {platform.name} needs a 64-bit {platform.machine_label} one"
    if header[5] != _ELFDATA2LSB:
        return f"a big-endian ELF file; {platform.name} needs a little-endian one"
    e_type, e_machine = struct.unpack_from("<HH", header, 16)
    if e_machine != platform.elf_machine:
        built_for = _MACHINES.get(e_machine, f"ELF machine {e_machine}")
        return (
            f"built for {built_for}, not for {platform.machine_label}; pass a build for "
            f"{platform.machine_label} (cargo --target {platform.rust_target})"
        )
    if e_type not in (_ET_EXEC, _ET_DYN):
        return f"not an executable (ELF type {e_type}, e.g. an object file or core dump)"
    return None


def _interp_problem(f: BinaryIO, header: bytes, platform: Platform) -> str | None:
    (e_phoff,) = struct.unpack_from("<Q", header, 32)
    e_phentsize, e_phnum = struct.unpack_from("<HH", header, 54)
    if e_phnum == _PN_XNUM or (e_phnum and e_phentsize < _PHDR_SIZE):
        return "its program header table is not one this check understands"
    for i in range(e_phnum):
        f.seek(e_phoff + i * e_phentsize)
        phdr = f.read(_PHDR_SIZE)
        if len(phdr) < _PHDR_SIZE:
            return "truncated (its program header table runs past the end of the file)"
        (p_type,) = struct.unpack_from("<I", phdr, 0)
        if p_type != _PT_INTERP:
            continue
        (p_offset,) = struct.unpack_from("<Q", phdr, 8)
        (p_filesz,) = struct.unpack_from("<Q", phdr, 32)
        f.seek(p_offset)
        loader = f.read(min(p_filesz, 256)).split(b"\0", 1)[0].decode("utf-8", "replace")
        return (
            f"dynamically linked (it needs the loader {loader or '(unnamed)'}), so it would "
            f"only run where that C library is installed; a bundle needs a static binary: "
            f"{static_build_hint(platform)}"
        )
    return None
