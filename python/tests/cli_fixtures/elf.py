"""Minimal ELF-64 little-endian files, enough for the bridge checks (never run)."""

from __future__ import annotations

import struct
from pathlib import Path

EM_X86_64 = 62
EM_AARCH64 = 183
ET_EXEC = 2
ET_DYN = 3
ET_REL = 1
PT_LOAD = 1
PT_INTERP = 3
PT_DYNAMIC = 2

_EHDR = 64
_PHDR = 56


def elf_bytes(
    *,
    machine: int = EM_X86_64,
    elf_type: int = ET_EXEC,
    interp: str | None = None,
    elf_class: int = 2,
    data: int = 1,
    extra_phdrs: tuple[int, ...] = (),
) -> bytes:
    """An ELF header, a program header table (PT_LOAD, then ``extra_phdrs``, then PT_INTERP
    when ``interp`` is given) and the interpreter string."""
    types = [PT_LOAD, *extra_phdrs] + ([PT_INTERP] if interp is not None else [])
    interp_bytes = (interp or "").encode() + b"\0"
    interp_offset = _EHDR + _PHDR * len(types)
    ident = b"\x7fELF" + bytes([elf_class, data, 1, 0]) + bytes(8)
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH",
        elf_type,
        machine,
        1,  # e_version
        0x401000,  # e_entry
        _EHDR,  # e_phoff
        0,  # e_shoff
        0,  # e_flags
        _EHDR,  # e_ehsize
        _PHDR,  # e_phentsize
        len(types),  # e_phnum
        0,
        0,
        0,
    )
    phdrs = b""
    for p_type in types:
        offset, size = (interp_offset, len(interp_bytes)) if p_type == PT_INTERP else (0, 0)
        phdrs += struct.pack("<IIQQQQQQ", p_type, 4, offset, 0, 0, size, size, 1)
    return header + phdrs + interp_bytes


def write_elf(path: Path, **kwargs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(elf_bytes(**kwargs))  # type: ignore[arg-type]
    path.chmod(0o755)
    return path
