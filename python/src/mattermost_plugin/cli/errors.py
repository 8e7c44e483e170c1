"""The CLI's two kinds of failure: what the user can fix (exit 1) and bad usage (exit 2).

Commands raise these with a sentence that says what went wrong and what to do; ``main`` prints
it on one line and exits with the code, never with a traceback.
"""

from __future__ import annotations


class CLIError(Exception):
    """A failure the user can act on; ``mmplug`` prints the message and exits 1."""

    exit_code = 1


class UsageError(CLIError):
    """Arguments that do not fit together; ``mmplug`` prints the message and exits 2."""

    exit_code = 2
