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
from collections.abc import Mapping
from typing import Any

__all__ = [
    "AlreadyExistsError",
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
    "UnavailableError",
    "ValidationError",
    "convert_app_error",
    "convert_grpc_error",
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

    ``code`` is ``plugin.ErrorString``'s code for errors of kind ``ERROR_STRING`` (0
    otherwise); an error made by ``convert_grpc_error`` (or built with ``code=`` a
    ``grpc.StatusCode``, as Mattermost's own SDK does) keeps that status code there instead.
    ``grpc_code`` is the gRPC status the server maps ``status_code`` to, for any error.
    ``error_id`` is ``id`` under the name Mattermost's own SDK uses; ``params`` holds the
    AppError's translation parameters when the error was built with them (Go keeps them in an
    unexported field, so errors from the server have none).
    """

    status_code_default: int = 0

    def __init__(
        self,
        message: str,
        *,
        id: str = "",
        detailed_error: str | None = "",
        request_id: str | None = "",
        status_code: int | None = None,
        where: str | None = "",
        skip_translation: bool = True,
        kind: ErrorKind | int = ErrorKind.APP_ERROR,
        code: Any = 0,
        method: str = "",
        error_id: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        # error_id= is the spelling of Mattermost's own SDK; id= wins when both are given.
        self.id = id or (error_id or "")
        # None is accepted for the text fields (Mattermost's own SDK defaults them to None).
        self.detailed_error = detailed_error or ""
        self.request_id = request_id or ""
        self.status_code = self.status_code_default if status_code is None else status_code
        self.where = where or ""
        self.skip_translation = skip_translation
        try:
            self.kind: ErrorKind | int = ErrorKind(kind)
        except ValueError:
            self.kind = kind  # a newer bridge may know kinds we do not: keep the number
        # An int (ErrorString code) here; a grpc.StatusCode when built the upstream way.
        self.code: Any = 0 if code is None else code
        self.method = method
        self.params: dict[str, Any] = dict(params or {})

    @property
    def error_id(self) -> str:
        """``id``, under the name Mattermost's own Python SDK uses."""
        return self.id

    @property
    def grpc_code(self) -> Any:
        """The ``grpc.StatusCode`` the server's gRPC API would answer this error with.

        The mapping is the one of Mattermost's ``AppErrorToStatus``: 400 INVALID_ARGUMENT, 401
        UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 NOT_FOUND, 409 ALREADY_EXISTS, 413 and 429
        RESOURCE_EXHAUSTED, 501 UNIMPLEMENTED, 503 UNAVAILABLE, anything else INTERNAL. An
        error made from a gRPC status (``convert_grpc_error``) answers that status.
        """
        import grpc

        if isinstance(self.code, grpc.StatusCode):
            return self.code
        return getattr(grpc.StatusCode, _GRPC_BY_STATUS.get(self.status_code, "INTERNAL"))

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
            "code": self.code if isinstance(self.code, int) else 0,
        }


class BadRequestError(PluginAPIError):
    status_code_default = 400


class PermissionDeniedError(PluginAPIError):
    """403; also the parent of ``UnauthorizedError`` (401), as in Mattermost's own SDK."""

    status_code_default = 403


class UnauthorizedError(PermissionDeniedError):
    status_code_default = 401


class NotFoundError(PluginAPIError):
    status_code_default = 404


class ConflictError(PluginAPIError):
    status_code_default = 409


class PayloadTooLargeError(PluginAPIError):
    status_code_default = 413


class UnavailableError(PluginAPIError):
    """The server cannot serve the call now: 503 (``ServiceUnavailableError``) or 429
    (``TooManyRequestsError``). The name and grouping of Mattermost's own SDK."""

    status_code_default = 503


class TooManyRequestsError(UnavailableError):
    status_code_default = 429


class NotImplementedAPIError(PluginAPIError):
    """501: typically a method the running server does not have."""

    status_code_default = 501


class ServiceUnavailableError(UnavailableError):
    status_code_default = 503


#: Mattermost's own SDK's name for ``BadRequestError`` (400).
ValidationError = BadRequestError
#: Mattermost's own SDK's name for ``ConflictError`` (409).
AlreadyExistsError = ConflictError


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


# AppErrorToStatus in Mattermost's gRPC API server (status -> grpc.StatusCode member name).
_GRPC_BY_STATUS: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    413: "RESOURCE_EXHAUSTED",
    429: "RESOURCE_EXHAUSTED",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
}

# convert_grpc_error: gRPC status member name -> (class, HTTP status, message prefix).
_BY_GRPC: dict[str, tuple[type[PluginAPIError], int, str]] = {
    "NOT_FOUND": (NotFoundError, 404, ""),
    "PERMISSION_DENIED": (PermissionDeniedError, 403, ""),
    "UNAUTHENTICATED": (UnauthorizedError, 401, "Not authenticated: "),
    "INVALID_ARGUMENT": (BadRequestError, 400, ""),
    "FAILED_PRECONDITION": (BadRequestError, 400, "Precondition failed: "),
    "OUT_OF_RANGE": (BadRequestError, 400, "Value out of range: "),
    "ALREADY_EXISTS": (ConflictError, 409, ""),
    "UNAVAILABLE": (ServiceUnavailableError, 503, ""),
    "DEADLINE_EXCEEDED": (UnavailableError, 504, "Request timed out: "),
    "RESOURCE_EXHAUSTED": (TooManyRequestsError, 429, "Resource exhausted: "),
    "ABORTED": (PluginAPIError, 409, "Operation aborted: "),
    "UNIMPLEMENTED": (NotImplementedAPIError, 501, "Method not implemented: "),
    "INTERNAL": (PluginAPIError, 500, "Internal server error: "),
    "DATA_LOSS": (PluginAPIError, 500, "Data loss: "),
    "CANCELLED": (PluginAPIError, 499, "Operation cancelled: "),
    "UNKNOWN": (PluginAPIError, 500, "Unknown error: "),
}


def convert_grpc_error(error: Any) -> PluginAPIError:
    """The ``PluginAPIError`` for a failed gRPC call (``grpc.RpcError``), by status code.

    The mapping of Mattermost's own SDK: NOT_FOUND is ``NotFoundError``; PERMISSION_DENIED
    and UNAUTHENTICATED are ``PermissionDeniedError`` (UNAUTHENTICATED as its
    ``UnauthorizedError`` subclass); INVALID_ARGUMENT, FAILED_PRECONDITION and OUT_OF_RANGE are
    ``ValidationError``; ALREADY_EXISTS is ``AlreadyExistsError``; UNAVAILABLE,
    DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED are ``UnavailableError`` (or a subclass); anything
    else is ``PluginAPIError`` itself (UNIMPLEMENTED as ``NotImplementedAPIError``). ``code``
    keeps the ``grpc.StatusCode``; ``status_code`` is the matching HTTP status. mmplug's own
    clients never need this (the bridge sends the server's whole AppError), but code that
    calls gRPC stubs itself does.
    """
    code = error.code() if callable(getattr(error, "code", None)) else None
    details = error.details() if callable(getattr(error, "details", None)) else None
    details = details or ""
    name = getattr(code, "name", "")
    cls, status, prefix = _BY_GRPC.get(name, (PluginAPIError, 500, "API error: "))
    return cls(f"{prefix}{details}", code=code, status_code=status)


def convert_app_error(app_error: Any) -> PluginAPIError:
    """The ``PluginAPIError`` for an ``AppError`` message (of any contract with its fields).

    Unlike ``error_from_app_error`` this accepts messages that lack some fields (as the
    AppError of Mattermost's own gRPC contract, which has ``params`` but no ``kind``) and
    picks the class by HTTP status the way Mattermost's own SDK does (401 is
    ``PermissionDeniedError``'s subclass ``UnauthorizedError``, 429 ``UnavailableError``'s
    subclass ``TooManyRequestsError``).
    """
    status = int(getattr(app_error, "status_code", 0) or 0)
    params: dict[str, Any] = {}
    raw_params = getattr(app_error, "params", None)
    if raw_params:
        try:
            from google.protobuf.json_format import MessageToDict

            params = MessageToDict(raw_params)
        except Exception:  # a plain mapping, or a message that is not a Struct
            try:
                params = dict(raw_params)
            except (TypeError, ValueError):
                params = {}
    cls = _BY_STATUS.get(status, PluginAPIError)
    return cls(
        str(getattr(app_error, "message", "") or "Unknown error"),
        id=str(getattr(app_error, "id", "") or ""),
        detailed_error=str(getattr(app_error, "detailed_error", "") or ""),
        request_id=str(getattr(app_error, "request_id", "") or ""),
        status_code=status,
        where=str(getattr(app_error, "where", "") or ""),
        params=params,
    )


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
