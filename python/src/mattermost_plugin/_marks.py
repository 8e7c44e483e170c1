"""The attributes the SDK's decorators set on the functions they mark, in one small module, so
``Plugin`` can tell whether a class uses a feature (commands, interactive routes, jobs) without
importing the feature's module: one a plugin does not use is never imported."""

from __future__ import annotations

__all__ = ["COMMAND_ATTR", "INTERACTIVE_ATTR", "JOB_ATTR"]

COMMAND_ATTR = "__mmplug_command__"  # commands.command
INTERACTIVE_ATTR = "__mmplug_interactive__"  # interactive.action, interactive.dialog
JOB_ATTR = "__mmplug_job__"  # jobs.every, jobs.one_shot
