"""Placeholder; replaced below."""

from ._fake import Call, FakeClock, FakeMattermost, LogEntry, UnmodelledMethodError, new_id

__all__ = ["Call", "FakeClock", "FakeMattermost", "LogEntry", "UnmodelledMethodError", "new_id"]
