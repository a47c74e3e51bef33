"""Resource types: how the engine treats each kind of resource, registered by the backend that owns it.

A `ResourceType` is the single place that says whether a type is authoritative, where its observed value
comes from, whether it is destructive, which job owns it, in what order its changes go, and how its key is
built from parts. Backends declare their types in their `BackendSpec`; the registry is filled from the
backend registry. Looking up a type nobody registered is an error (fail closed): a default would, for
example, make an unknown kind of wipe non-destructive and let it skip the safety gates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from orchestrator.core.errors import UnknownResourceType
from orchestrator.core.resources import ResourceId

Scope = Literal["policy", "lockdown", "maintenance"]
SCOPES: tuple[Scope, ...] = ("policy", "lockdown", "maintenance")
KEY_SEPARATOR = "|"
MATCHES = "matches"
"""Observed meta of a `needs_device` resource: how many live console records share its serial (ambiguous)."""


@dataclass(frozen=True)
class ResourceType:
    """How the engine treats one resource type of one backend.

    authoritative: observed keys that no policy wants are deleted (an OU's URL blocklist); device-level types
        are not (a device no policy mentions is left alone).
    observed_by: "backend" reads it from the console; "journal" means the console cannot report it (a
        reimage), so the last applied value recorded in the journal is the observed state.
    destructive: changes lose data on a device; they carry GateFacts and pass the safety gates.
    scope: the job that owns it: `plan`/`apply` (policy), the nightly `lockdown`, or `maintenance run`.
    order: where its changes go in a plan (settings before devices; lower first).
    key_parts: the names of the parts its key is made of (`("ou", "schema")` → "/Labs|chrome.users.X").
    needs_device: keyed by a device serial the console must already have (writing to it cannot enroll one): a
        change whose device the console does not list, or lists more than once (observed None with `MATCHES` in
        its meta), is held out of the plan with the reason, never sent.
    quarantines_macs: its value is the list of device MACs a site keeps in network quarantine, so one change may
        act on several lost devices (the lockdown's caps and report count the devices behind the MACs it moves).
    """

    backend: str
    name: str
    key_parts: tuple[str, ...]
    order: int
    authoritative: bool = False
    observed_by: Literal["backend", "journal"] = "backend"
    destructive: bool = False
    scope: Scope = "policy"
    needs_device: bool = False
    quarantines_macs: bool = False

    @property
    def locks_one_device(self) -> bool:
        """A lockdown type keyed by one device serial (a console's lock or disable of one device)."""
        return self.scope == "lockdown" and self.key_parts == ("serial",)

    @property
    def held_when_absent(self) -> bool:
        """Whether a change whose device the console does not list is held, never sent: `needs_device`, and every
        lock of one device (a lock cannot reach a device the console lacks)."""
        return self.needs_device or self.locks_one_device

    def key(self, *parts: str) -> str:
        """Build a key from its parts; no part may contain the separator (it would split differently)."""
        if len(parts) != len(self.key_parts):
            raise ValueError(f"{self.backend}/{self.name} keys have parts {self.key_parts}, got {parts!r}")
        for part in parts:
            if KEY_SEPARATOR in part:
                raise ValueError(f"{self.backend}/{self.name}: key part {part!r} contains {KEY_SEPARATOR!r}")
        return KEY_SEPARATOR.join(parts)

    def split(self, key: str) -> dict[str, str]:
        """The named parts of a key built by `key`."""
        values = key.split(KEY_SEPARATOR, len(self.key_parts) - 1)
        if len(values) != len(self.key_parts):
            raise ValueError(f"{self.backend}/{self.name}: key {key!r} does not have parts {self.key_parts}")
        return dict(zip(self.key_parts, values, strict=True))

    def id(self, *parts: str) -> ResourceId:
        return ResourceId(self.backend, self.name, self.key(*parts))


class TypeRegistry:
    """Every registered resource type; an unregistered one is an UnknownResourceType error."""

    def __init__(self, types: Iterable[ResourceType] = ()):
        self._types: dict[tuple[str, str], ResourceType] = {}
        for rtype in types:
            self.add(rtype)

    def add(self, rtype: ResourceType) -> None:
        slot = (rtype.backend, rtype.name)
        if slot in self._types and self._types[slot] != rtype:
            raise ValueError(f"resource type {rtype.backend}/{rtype.name} registered twice, differently")
        self._types[slot] = rtype

    def of(self, rid: ResourceId) -> ResourceType:
        rtype = self._types.get((rid.backend, rid.type))
        if rtype is None:
            known = ", ".join(f"{b}/{t}" for b, t in sorted(self._types)) or "none"
            raise UnknownResourceType(f"{rid}: unknown resource type {rid.backend}/{rid.type} (registered: {known})")
        return rtype

    def of_backend(self, backend: str) -> list[ResourceType]:
        return [t for (b, _), t in sorted(self._types.items()) if b == backend]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(sorted(self._types.values(), key=lambda t: (t.order, t.backend, t.name)))
