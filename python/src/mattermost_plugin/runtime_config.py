"""``mattermost_plugin.runtime_config``: the launch configuration, as Mattermost's own Python SDK
names it (``RuntimeConfig``, ``load_runtime_config``; see docs/upstream.md).

mmplug's bridge launches the plugin with ``MMPLUG_*`` variables (a private API socket, a token);
``load_runtime_config()`` answers the configuration of the running plugin. Outside a running
plugin (a test, a script) it reads the environment leniently, as Mattermost's own SDK does: the
``MMPLUG_*`` variables when present, else its ``MATTERMOST_PLUGIN_*`` ones, else defaults.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from .runtime import RuntimeConfig, current_config

__all__ = [
    "DEFAULT_API_TARGET",
    "DEFAULT_HOOK_TIMEOUT",
    "DEFAULT_LOG_LEVEL",
    "ENV_API_TARGET",
    "ENV_HOOK_TIMEOUT",
    "ENV_LOG_LEVEL",
    "ENV_PLUGIN_ID",
    "ENV_PLUGIN_PATH",
    "RuntimeConfig",
    "load_runtime_config",
]

log = logging.getLogger("mattermost_plugin.runtime_config")

# The defaults and variable names of Mattermost's own SDK. Its API target is a TCP address of
# the server's gRPC API; under mmplug the API is the bridge's private socket (api_target is
# "unix:<socket>" in a running plugin).
DEFAULT_API_TARGET = "127.0.0.1:50051"
DEFAULT_HOOK_TIMEOUT = 30.0
DEFAULT_LOG_LEVEL = "INFO"

ENV_PLUGIN_ID = "MATTERMOST_PLUGIN_ID"
ENV_API_TARGET = "MATTERMOST_PLUGIN_API_TARGET"
ENV_PLUGIN_PATH = "MATTERMOST_PLUGIN_PATH"
ENV_HOOK_TIMEOUT = "MATTERMOST_PLUGIN_HOOK_TIMEOUT"
ENV_LOG_LEVEL = "MATTERMOST_PLUGIN_LOG_LEVEL"


def load_runtime_config(environ: Mapping[str, str] | None = None) -> RuntimeConfig:
    """The running plugin's configuration; elsewhere, one read from the environment.

    Never raises and never reads or removes the launch token: a missing variable takes its
    default. ``hook_timeout`` is informational under mmplug (the bridge enforces the limits of
    plugin.json's ``props.mmplug``).
    """
    if environ is None:
        running = current_config()
        if running is not None:
            return running
        environ = os.environ
    env = environ
    timeout_text = env.get(ENV_HOOK_TIMEOUT, "")
    try:
        hook_timeout = float(timeout_text) if timeout_text else DEFAULT_HOOK_TIMEOUT
    except ValueError:
        log.warning(
            "%s=%r is not a number of seconds; using %s",
            ENV_HOOK_TIMEOUT,
            timeout_text,
            DEFAULT_HOOK_TIMEOUT,
        )
        hook_timeout = DEFAULT_HOOK_TIMEOUT
    api_socket = env.get("MMPLUG_API_SOCKET", "")
    return RuntimeConfig(
        api_socket=api_socket,
        hooks_socket=env.get("MMPLUG_HOOKS_SOCKET", ""),
        plugin_id=env.get("MMPLUG_PLUGIN_ID") or env.get(ENV_PLUGIN_ID, ""),
        plugin_dir=env.get("MMPLUG_PLUGIN_DIR") or env.get(ENV_PLUGIN_PATH, ""),
        entry=env.get("MMPLUG_ENTRY", ""),
        api_target=(f"unix:{api_socket}" if api_socket else "")
        or env.get(ENV_API_TARGET, DEFAULT_API_TARGET),
        hook_timeout=hook_timeout,
        log_level=env.get("MMPLUG_LOG_LEVEL") or env.get(ENV_LOG_LEVEL, DEFAULT_LOG_LEVEL),
    )
