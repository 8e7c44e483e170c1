"""Makes the example importable as ``remind_plugin`` (every example's entry file is plugin.py,
so each is loaded under its own module name)."""

from pathlib import Path

from mattermost_plugin.testing import load_plugin_module

load_plugin_module(Path(__file__).resolve().parents[1] / "plugin.py", "remind_plugin")
