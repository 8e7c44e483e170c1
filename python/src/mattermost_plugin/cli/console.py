"""Progress output. Everything here goes to stderr, so stdout carries only results (a bundle's
path, log lines) and stays usable in scripts."""

from __future__ import annotations

import sys
from typing import TextIO


def progress(message: str) -> None:
    """One line about a step that is starting or has finished."""
    print(message, file=sys.stderr, flush=True)


def human_size(size: int) -> str:
    """``1536`` -> ``1.5 KiB``."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


class TransferProgress:
    """Reports how much of a transfer is done: a live percentage on a terminal, otherwise one
    line per quarter so logs of CI runs stay short."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty()
        self._last_quarter = -1

    def advance(self, count: int) -> None:
        self.done += count
        percent = 100 if self.total == 0 else min(100, self.done * 100 // self.total)
        if self.live:
            end = "\n" if percent == 100 else ""
            print(f"\r{self.label}: {percent:3d}%", end=end, file=self.stream, flush=True)
            return
        quarter = percent // 25
        if quarter > self._last_quarter:
            self._last_quarter = quarter
            print(f"{self.label}: {percent}%", file=self.stream, flush=True)
