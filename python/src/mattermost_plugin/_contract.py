"""Locates the mmplug contract (package ``mattermost.plugin.v1``) in the descriptor pool.

Every generated file's descriptor is added to the pool first (``_proto.descriptors``), so it
does not matter which ``.proto`` file declares a service; no ``_pb2`` module is imported for
it, so message classes come one by one (``GetMessageClass``) as they are used, not ~a
thousand at startup.
"""

from __future__ import annotations

import functools

from google.protobuf import descriptor_pool
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

PACKAGE = "mattermost.plugin.v1"


def allow_deep_messages() -> None:
    """Lets protobuf decode messages nested as deep as a server's posts can be.

    A post's props nest up to 10,000 JSON levels (Go's encoding/json limit), three protobuf
    messages each as ``google.protobuf.Value``; protobuf's C decoder stops at 100 unless told
    otherwise, and then a filter hook would never see the post. The switch is process-wide
    and raises the limit to 65,535 (the bridge sends nothing deeper, docs/internals.md).
    """
    try:
        from google._upb import _message as upb_message
    except ImportError:  # the pure-Python or C++ implementation
        from google.protobuf.internal import api_implementation

        if api_implementation.Type() == "python":
            from google.protobuf.internal import decoder

            decoder.SetRecursionLimit(65535)
            return
        from google.protobuf.pyext import _message as cpp_message  # type: ignore[import-not-found,attr-defined,unused-ignore]

        cpp_message.SetAllowOversizeProtos(True)
        return
    upb_message.SetAllowOversizeProtos(True)


@functools.cache
def _load() -> None:
    allow_deep_messages()
    try:
        from ._proto import descriptors
    except ImportError as e:
        raise RuntimeError(
            f"the generated protobuf modules are missing ({e}); run python/scripts/gen_proto.py"
        ) from e
    pool = descriptor_pool.Default()
    for _, serialized in descriptors.FILES:
        # The same bytes as the file's _pb2 module adds: whichever comes second is a no-op,
        # and a message's class is one class either way.
        pool.AddSerializedFile(serialized)


@functools.cache
def message_class(name: str) -> type[Message]:
    """The class of the contract's message ``name`` (``Post``), made on first use; KeyError
    for a name the contract does not have."""
    _load()
    return GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(f"{PACKAGE}.{name}"))


def service(name: str) -> ServiceDescriptor:
    _load()
    try:
        return descriptor_pool.Default().FindServiceByName(f"{PACKAGE}.{name}")
    except KeyError:
        raise RuntimeError(f"service {PACKAGE}.{name} is not in the generated modules") from None


def api_service() -> ServiceDescriptor:
    return service("PluginAPI")


def hooks_service() -> ServiceDescriptor:
    return service("PluginHooks")
