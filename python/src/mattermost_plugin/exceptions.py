"""``mattermost_plugin.exceptions``: the error classes under the module name of Mattermost's own
Python SDK (see docs/upstream.md). They are the classes of ``mattermost_plugin.errors``."""

from __future__ import annotations

from .errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    NotImplementedAPIError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PluginAPIError,
    ServiceUnavailableError,
    TooManyRequestsError,
    UnauthorizedError,
    UnavailableError,
    ValidationError,
    convert_app_error,
    convert_grpc_error,
)

__all__ = [
    "AlreadyExistsError",
    "BadRequestError",
    "ConflictError",
    "NotFoundError",
    "NotImplementedAPIError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PluginAPIError",
    "ServiceUnavailableError",
    "TooManyRequestsError",
    "UnauthorizedError",
    "UnavailableError",
    "ValidationError",
    "convert_app_error",
    "convert_grpc_error",
]
