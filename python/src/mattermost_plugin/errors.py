"""Errors raised by the API client, carrying the server's whole ``model.AppError``.

The bridge sends a failed call's ``*model.AppError`` (or a plain Go ``error``) back in the
response's ``error`` field, every field intact; ``PluginAPIError`` keeps all of them.
Subclasses are picked by HTTP status code so callers can ``except NotFoundError``.

Raised by plugin code (a hook, a slash command), a ``PluginAPIError`` goes back to the server
as a ``model.AppError``. Before the server shows an AppError to a user it translates it:
unless ``SkipTranslation`` is set, ``Message`` is replaced by the translation of ``Id`` in the
server's i18n bundle, and an id the bundle does not know becomes the message itself (``/hello
fail`` would answer "hello.fail"). A plugin's ids are never in that bundle, so an error built
here sets ``skip_translation=True`` unless told otherwise, and the user reads ``message``. Pass
``skip_translation=False`` only with one of the server's own ids, to have it translated into
the user's language. Errors that came from the server (``error_from_app_error``) keep the
server's value, so re-raising one changes nothing.
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = [
    "BadRequestError",
    "ConflictError",
    "ErrorKind",
    "NotFoundError",
    "NotImplementedAPIError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PluginAPIError",
    "ServiceUnavailableError",
    "TooManyRequestsError",
    "UnauthorizedError",
    "error_from_app_error",
    "is_app_error_set",
]


class ErrorKind(enum.IntEnum):
    """Which Go type carried the error (mirrors the ``ErrorKind`` proto enum)."""

    APP_ERROR = 0  # *model.AppError
    ERROR_STRING = 1  # plugin.ErrorString (a Go `error` flattened by go-plugin)
    PQ_ERROR = 2  # *pq.Error from the database driver


class PluginAPIError(Exception):
    """A Mattermost API call failed; every ``model.AppError`` field is kept.

    Raised by a plugin, it answers the server with those fields. ``skip_translation``
    defaults to True: the server then shows ``message`` as it is rather than looking ``id`` up
    in its own translations, which never hold a plugin's ids (see the module docstring).
    """

    status_code_default: int = 0

    def __init__(
        self,
        message: str,
        *,
        id: str = "",
        detailed_error: str = "",
        request_id: str = "",
        status_code: int | None = None,
        where: str = "",
        skip_translation: bool = True,
        kind: ErrorKind | int = ErrorKind.APP_ERROR,
        code: int = 0,
        method: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.id = id
        self.detailed_error = detailed_error
        self.request_id = request_id
        self.status_code = self.status_code_default if status_code is None else status_code
        self.where = where
        self.skip_translation = skip_translation
        try:
            self.kind: ErrorKind | int = ErrorKind(kind)
        except ValueError:
            self.kind = kind  # a newer bridge may know kinds we do not: keep the number
        self.code = code
        self.method = method

    def __str__(self) -> str:
        # Same shape as AppError.Error() in Go: "where: message, detailed_error".
        text = self.message or self.id
        if self.where:
            text = f"{self.where}: {text}"
        if self.detailed_error:
            text = f"{text}, {self.detailed_error}"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(id={self.id!r}, message={self.message!r}, "
            f"status_code={self.status_code}, where={self.where!r})"
        )

    def to_fields(self) -> dict[str, Any]:
        """The AppError message fields, for building the proto message back."""
        return {
            "id": self.id,
            "message": self.message,
            "detailed_error": self.detailed_error,
            "request_id": self.request_id,
            "status_code": self.status_code,
            "where": self.where,
            "skip_translation": self.skip_translation,
            "kind": int(self.kind),
            "code": self.code,
        }


class BadRequestError(PluginAPIError):
    status_code_default = 400


class UnauthorizedError(PluginAPIError):
    status_code_default = 401


class PermissionDeniedError(PluginAPIError):
    status_code_default = 403


class NotFoundError(PluginAPIError):
    status_code_default = 404


class ConflictError(PluginAPIError):
    status_code_default = 409


class PayloadTooLargeError(PluginAPIError):
    status_code_default = 413


class TooManyRequestsError(PluginAPIError):
    status_code_default = 429


class NotImplementedAPIError(PluginAPIError):
    """501: typically a method the running server does not have."""

    status_code_default = 501


class ServiceUnavailableError(PluginAPIError):
    status_code_default = 503


_BY_STATUS: dict[int, type[PluginAPIError]] = {
    cls.status_code_default: cls
    for cls in (
        BadRequestError,
        UnauthorizedError,
        PermissionDeniedError,
        NotFoundError,
        ConflictError,
        PayloadTooLargeError,
        TooManyRequestsError,
        NotImplementedAPIError,
        ServiceUnavailableError,
    )
}


def is_app_error_set(err: Any) -> bool:
    """docs/internals.md §7: an unset error, or one with empty id and message, means success."""
    return err is not None and bool(err.id or err.message)


def error_from_app_error(err: Any, *, method: str = "") -> PluginAPIError:
    """Build the matching ``PluginAPIError`` subclass from an ``AppError`` message."""
    status = int(err.status_code)
    cls = _BY_STATUS.get(status, PluginAPIError)
    return cls(
        err.message,
        id=err.id,
        detailed_error=err.detailed_error,
        request_id=err.request_id,
        status_code=status,
        where=err.where,
        skip_translation=err.skip_translation,
        kind=int(err.kind),
        code=int(err.code),
        method=method,
    )
