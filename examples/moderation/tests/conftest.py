"""Makes the example importable in tests: its directory goes on sys.path (for the
``moderation`` package next to plugin.py, as when the server runs it) and plugin.py is loaded as
``moderation_plugin`` (every example's entry file is plugin.py, so each gets its own name)."""

import importlib.util
import sys
from pathlib import Path

_root = Path(__file__).resolve().parents[1]
if str(_root) not in sys.path:
    sys.path.insert(0, str(_root))

_spec = importlib.util.spec_from_file_location("moderation_plugin", _root / "plugin.py")
assert _spec is not None and _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _module
_spec.loader.exec_module(_module)
