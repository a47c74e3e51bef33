"""Chrome Policy enum values taken from the schemas themselves (policySchemas), not from memory.

The compiler writes the policy language's values in a canonical form (`STRICT`, `FORCED`, ...). A schema's
own enum names may be those or carry a prefix (`..._STRICT`): GAM strips and re-adds such prefixes when it
shows values (API-NOTES §6). `SchemaEnums` reads `policySchemas.get` once per schema per run (per backend
instance) and maps each managed enum field: canonical → the schema's name when writing or checking a plan,
and back when observing, so diffs compare like with like. A canonical value the schema does not offer is a
clear error naming the schema, field and the values it does offer.

Shape: GoogleChromePolicyVersionsV1PolicySchema in the bundled chromepolicy v1 discovery document:
`fieldDescriptions[].field` and `fieldDescriptions[].knownValueDescriptions[].value` ("the string
representation of the value that can be set for the field").
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from orchestrator.backends.google.names import APP_INSTALL, APP_INSTALL_TYPE, FORCE_YOUTUBE, SAFE_SEARCH
from orchestrator.core.errors import BackendError

# schema → its managed enum-valued fields.
ENUM_FIELDS: dict[str, tuple[str, ...]] = {SAFE_SEARCH: (FORCE_YOUTUBE,), APP_INSTALL: (APP_INSTALL_TYPE,)}
UNSPECIFIED = "UNSPECIFIED"


class SchemaValueError(BackendError):
    """A policy value the schema does not offer."""


def _prefix(values: list[str]) -> str:
    """The common prefix of a schema's enum names, up to and including its last `_` ('' when none)."""
    named = [v for v in values if not v.endswith(UNSPECIFIED)]
    if len(named) < 2:
        return ""
    common = named[0]
    for name in named[1:]:
        while not name.startswith(common):
            common = common[:-1]
    return common[: common.rfind("_") + 1] if "_" in common else ""


class SchemaEnums:
    """Enum names of the managed fields, read lazily once per schema from `policySchemas.get`."""

    def __init__(self, fetch: Callable[[str], dict[str, Any]]):
        self._fetch = fetch  # schema name → the PolicySchema resource
        self._known: dict[str, dict[str, list[str]]] = {}
        self._lock = threading.Lock()

    def known(self, schema: str, field: str) -> list[str]:
        with self._lock:
            if schema not in self._known:
                reply = self._fetch(schema)
                self._known[schema] = {
                    str(d.get("field")): [
                        str(k["value"]) for k in d.get("knownValueDescriptions") or [] if "value" in k
                    ]
                    for d in reply.get("fieldDescriptions") or []
                }
            return self._known[schema].get(field, [])

    def to_console(self, schema: str, value: dict[str, Any]) -> dict[str, Any]:
        """`value` with each managed enum field spelled as the schema spells it; SchemaValueError if it has none."""
        out = dict(value)
        for field in ENUM_FIELDS.get(schema, ()):
            if field not in value or value[field] is None:
                continue
            canonical = str(value[field])
            known = self.known(schema, field)
            if not known:
                raise SchemaValueError(
                    f"{schema}: policySchemas lists no values for {field}; cannot check {canonical!r}"
                )
            if canonical in known:
                continue
            prefixed = _prefix(known) + canonical
            if prefixed not in known:
                offered = ", ".join(k for k in known if not k.endswith(UNSPECIFIED))
                raise SchemaValueError(
                    f"{schema}: {field} has no value {canonical!r} in the schema (policySchemas offers: {offered})"
                )
            out[field] = prefixed
        return out

    def from_console(self, schema: str, value: dict[str, Any]) -> dict[str, Any]:
        """`value` with each managed enum field in canonical form (the schema's common prefix removed)."""
        out = dict(value)
        for field in ENUM_FIELDS.get(schema, ()):
            raw = value.get(field)
            if isinstance(raw, str):
                prefix = _prefix(self.known(schema, field))
                out[field] = raw.removeprefix(prefix) if prefix else raw
        return out
