"""The pytest plugin of ``mattermost_plugin.testing`` (loaded through the ``pytest11`` entry
point, so installing mmplug is enough): the ``mm_fake`` and ``mm_plugin`` fixtures.

``mm_fake`` is a fresh ``FakeMattermost`` per test. ``mm_plugin(MyPlugin, settings=...,
plugin_id=...)`` starts a plugin against it (``FakeMattermost.start``) and returns its
``PluginHandle``; every plugin a test started is stopped (``OnDeactivate``) when the test
ends, and a failing ``OnDeactivate`` fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ._fake import FakeMattermost
from ._harness import PluginHandle, StartPlugin

__all__ = ["StartPlugin", "mm_fake", "mm_plugin"]


@pytest.fixture
def mm_fake() -> FakeMattermost:
    """A fresh in-memory Mattermost server (``mattermost_plugin.testing.FakeMattermost``)."""
    return FakeMattermost()


@pytest.fixture
def mm_plugin(mm_fake: FakeMattermost) -> Iterator[StartPlugin]:
    """Factory: ``mm_plugin(PluginClass, *, settings=None, plugin_id=None)`` starts the plugin
    against ``mm_fake`` and returns its ``PluginHandle``; stopped at the end of the test."""
    handles: list[PluginHandle] = []

    def start(plugin_cls: type[Any], **options: Any) -> PluginHandle:
        handle = mm_fake.start(plugin_cls, **options)
        handles.append(handle)
        return handle

    yield start
    errors: list[BaseException] = []
    for handle in reversed(handles):
        try:
            handle.stop()
        except Exception as e:
            errors.append(e)
    if errors:
        raise errors[0]
