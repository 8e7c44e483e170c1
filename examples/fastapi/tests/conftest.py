"""Makes the example importable as ``fastapi_plugin`` (every example's entry file is plugin.py,
so each is loaded under its own module name)."""

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "fastapi_plugin", Path(__file__).resolve().parents[1] / "plugin.py"
)
assert _spec is not None and _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _module
_spec.loader.exec_module(_module)
