"""Resources (desired or observed state of one thing) and Changes (one planned step).

A resource is `(backend, type, key) → value`. Values are plain JSON (dicts, sorted lists, strings), already
normalised, so equality means "in sync". Compilers produce desired resources with no I/O; backends
produce observed ones.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from orchestrator.core.errors import OrchestratorError

Op = Literal["create", "update", "delete", "action"]


@dataclass(frozen=True, order=True)
class ResourceId:
    backend: str
    type: str
    key: str

    def __str__(self) -> str:
        return f"{self.backend}/{self.type}/{self.key}"

    @classmethod
    def parse(cls, text: str) -> ResourceId:
        backend, type_, key = text.split("/", 2)
        return cls(backend, type_, key)


@dataclass(frozen=True)
class GateFacts:
    """What the safety gates need to judge one destructive device action, typed so none can go missing.

    Compilers attach these to every destructive resource; the gate refuses a destructive change without them
    instead of reading loosely-typed `meta` keys that default to "allowed" when absent.
    """

    policy: str
    window: str
    serial: str
    school: str | None
    method: str
    deprovision: bool = False
    max_devices_per_window: int | None = None
    batch_size: int = 20
    budget_per_school: str | None = None
    """Per school and night: a count ("5") or a share of the school's devices ("10%"); None = no budget."""
    school_devices: int = 0
    """How many devices the school has in the inventory (for percentage budgets)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> GateFacts | None:
        if raw is None:
            return None
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise OrchestratorError(f"gate facts carry unknown fields {unknown} (a plan from another version?)")
        return cls(**raw)


@dataclass
class Resource:
    """One resource's value. `meta` carries what a backend needs to act (school, ids) and is never diffed."""

    id: ResourceId
    value: Any
    sources: tuple[str, ...] = ()
    policy: str | None = None
    window: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    gate: GateFacts | None = None


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:16]


@dataclass
class Change:
    """One planned step. `key` is its idempotency key: the same change in a re-planned run has the same key."""

    id: ResourceId
    op: Op
    before: Any
    after: Any
    sources: tuple[str, ...] = ()
    policy: str | None = None
    window: str | None = None
    destructive: bool = False
    summary: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    gate: GateFacts | None = None

    @property
    def key(self) -> str:
        return digest([str(self.id), self.op, self.before, self.after])

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "id": str(self.id),
            "op": self.op,
            "before": self.before,
            "after": self.after,
            "sources": list(self.sources),
            "policy": self.policy,
            "window": self.window,
            "destructive": self.destructive,
            "summary": self.summary,
            "meta": self.meta,
            "gate": self.gate.to_json() if self.gate else None,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Change:
        return cls(
            id=ResourceId.parse(raw["id"]),
            op=raw["op"],
            before=raw["before"],
            after=raw["after"],
            sources=tuple(raw.get("sources", ())),
            policy=raw.get("policy"),
            window=raw.get("window"),
            destructive=bool(raw.get("destructive")),
            summary=raw.get("summary", ""),
            meta=dict(raw.get("meta", {})),
            gate=GateFacts.from_json(raw.get("gate")),
        )


ResultState = Literal["succeeded", "failed", "unknown", "skipped"]  # skipped: nothing sent, nothing to send


@dataclass
class ChangeResult:
    """What a backend reports for one change. `unknown` = sent but the outcome was not seen (timeout)."""

    change_key: str
    state: ResultState
    detail: str = ""
    response: dict[str, Any] = field(default_factory=dict)
