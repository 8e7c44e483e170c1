"""Registers the in-process harness fixture (see flask_harness.py)."""

from flask_harness import harness as flask_plugin

__all__ = ["flask_plugin"]
