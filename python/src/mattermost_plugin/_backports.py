"""The few Python 3.11 standard-library features the SDK uses, for Python 3.10.

The SDK runs on the ``python3`` a server's distribution ships, 3.10 (Ubuntu 22.04) included
(docs/operations.md "Supported Python versions"). On 3.11 and newer each name here is the
standard library's own; on 3.10 it is a stand-in that behaves the same for the SDK's uses.
"""

from __future__ import annotations

import enum
import sys
import traceback

__all__ = ["StrEnum", "add_note", "format_exception"]

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:

    class StrEnum(str, enum.Enum):
        """``enum.StrEnum``: members are ``str`` and ``str()``/``format()`` give the value
        (a plain ``(str, Enum)`` member prints as ``Class.NAME``)."""

        def __str__(self) -> str:
            return str.__str__(self)

        def __format__(self, format_spec: str) -> str:
            return str.__format__(str.__str__(self), format_spec)


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)``; on 3.10 the note goes to ``__notes__`` as 3.11 keeps it, where
    ``format_exception`` below finds it."""
    if sys.version_info >= (3, 11):
        exc.add_note(note)
    else:
        notes = getattr(exc, "__notes__", None)
        if not isinstance(notes, list):
            notes = []
            exc.__notes__ = notes  # type: ignore[attr-defined]
        notes.append(note)


def format_exception(exc: BaseException) -> list[str]:
    """``traceback.format_exception(exc)``, with the notes of ``add_note`` after the
    exception's line on 3.10 too (3.11's traceback prints them itself)."""
    lines = traceback.format_exception(exc)
    if sys.version_info < (3, 11):
        notes = getattr(exc, "__notes__", None)
        if isinstance(notes, list):
            lines += [f"{note}\n" for note in notes if isinstance(note, str)]
    return lines
