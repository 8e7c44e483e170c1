"""Makes the example importable in tests: its directory goes on sys.path (for the
``moderation`` package next to plugin.py, as when the server runs it) and plugin.py is loaded as
``moderation_plugin`` (every example's entry file is plugin.py, so each gets its own name)."""

from pathlib import Path

from mattermost_plugin.testing import load_plugin_module

load_plugin_module(Path(__file__).resolve().parents[1] / "plugin.py", "moderation_plugin")
