"""``mattermost_plugin._internal.wrappers``: where Mattermost's own Python SDK keeps its wrapper
dataclasses (``PluginKVSetOptions``, ``Post``, ...); they are ``mattermost_plugin.wrappers``."""

from __future__ import annotations

from typing import Any

from .. import wrappers as _wrappers
from ..wrappers import *  # noqa: F403
from ..wrappers import __all__ as __all__


def __getattr__(name: str) -> Any:
    return getattr(_wrappers, name)
