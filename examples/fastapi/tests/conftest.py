"""Registers the in-process harness fixture (see fastapi_harness.py)."""

from fastapi_harness import harness as fastapi_plugin

__all__ = ["fastapi_plugin"]
