"""Generates the test-only protos (tests/proto) once per session with the real generator.

The modules land in a temporary package ``mmplug_testproto`` on ``sys.path``; using
scripts/gen_proto.py for this also exercises the generator's import rewriting.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
PROTO_ROOT = HERE / "proto"


def load_gen_proto() -> ModuleType:
    path = HERE.parent / "scripts" / "gen_proto.py"
    spec = importlib.util.spec_from_file_location("mmplug_gen_proto", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mmplug_gen_proto"] = module
    spec.loader.exec_module(module)
    return module


def _generate() -> tuple[ModuleType, ModuleType]:
    root = Path(tempfile.mkdtemp(prefix="mmplug-testproto-"))
    atexit.register(shutil.rmtree, root, True)
    load_gen_proto().generate(PROTO_ROOT, root / "mmplug_testproto")
    sys.path.insert(0, str(root))
    common = importlib.import_module("mmplug_testproto.mmplugtest.v1.common_pb2")
    plugin = importlib.import_module("mmplug_testproto.mmplugtest.v1.plugin_pb2")
    return common, plugin


common_pb2, plugin_pb2 = _generate()
API = plugin_pb2.DESCRIPTOR.services_by_name["PluginAPI"]
HOOKS = plugin_pb2.DESCRIPTOR.services_by_name["PluginHooks"]
