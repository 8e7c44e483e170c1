"""The snake_case rule shared with the proto generator (tools/codegen)."""

from __future__ import annotations

import re

# An underscore goes before an uppercase letter that follows a lowercase letter or digit
# ("KVSet" -> "KV_Set" stays one boundary, "GetServerVersion" -> three), or that follows
# an uppercase letter and precedes a lowercase one (the end of an acronym: "HTTPRequest"
# -> "HTTP_Request"). Everything is then lowercased.
# Compiled by the first call (re's cache keeps it), not at import: ~1 ms of every start-up.
_BOUNDARY = r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])"


def snake_case(name: str) -> str:
    """``KVSet`` -> ``kv_set``, ``GetServerVersion`` -> ``get_server_version``."""
    return re.sub(_BOUNDARY, "_", name).lower()
