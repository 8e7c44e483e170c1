"""The ``mmplug`` command line: ``new``, ``bundle``, ``deploy``, ``enable``, ``disable``,
``logs`` and ``dev``. Documented in docs/cli.md; ``mmplug COMMAND --help`` for each."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
