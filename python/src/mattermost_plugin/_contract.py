"""Locates the mmplug contract (package ``mattermost.plugin.v1``) in the generated modules.

The services are looked up by full name in the descriptor pool after importing every
generated module, so it does not matter which ``.proto`` file declares them.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from google.protobuf import descriptor_pool
from google.protobuf.descriptor import ServiceDescriptor

PACKAGE = "mattermost.plugin.v1"
_MODULES = "mattermost_plugin._proto.mattermost.plugin.v1"


@functools.cache
def _load() -> None:
    try:
        pkg = importlib.import_module(_MODULES)
    except ImportError as e:
        raise RuntimeError(
            f"the generated protobuf modules are missing ({e}); run python/scripts/gen_proto.py"
        ) from e
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.endswith("_pb2"):
            importlib.import_module(f"{_MODULES}.{info.name}")


def service(name: str) -> ServiceDescriptor:
    _load()
    try:
        return descriptor_pool.Default().FindServiceByName(f"{PACKAGE}.{name}")
    except KeyError:
        raise RuntimeError(f"service {PACKAGE}.{name} is not in the generated modules") from None


def api_service() -> ServiceDescriptor:
    return service("PluginAPI")


def hooks_service() -> ServiceDescriptor:
    return service("PluginHooks")
