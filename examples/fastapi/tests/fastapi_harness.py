"""The fastapi example in the shared in-process harness (examples/_support/inprocess.py)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_support"))

from inprocess import Harness, load_example, serve

__all__ = ["Harness", "example", "harness"]

example = load_example(Path(__file__).resolve().parents[1])


@pytest_asyncio.fixture(name="fastapi_plugin")
async def harness() -> AsyncIterator[Harness]:
    async with serve(example.FastAPIExample, "com.mmplug.fastapi") as h:
        yield h
