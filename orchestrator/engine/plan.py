"""The Plan: ordered changes plus what was observed when it was made, serialisable to JSON.

A saved plan carries one digest per observed resource, so `apply plan.json` can tell exactly which
resources changed since review (and refuse), while accepting its own half-finished work on resume.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.core.errors import OrchestratorError
from orchestrator.core.resources import Change, Resource, ResourceId, digest

PLAN_FORMAT = 2  # 2: plan ids are unique per plan (nonce); changes carry typed gate facts


@dataclass
class HeldChange:
    """A change a plan holds back and why (a per-run cap, a device a console does not have): shown, not applied."""

    change: Change
    reason: str
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason, "detail": self.detail, "change": self.change.to_json()}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> HeldChange:
        return cls(change=Change.from_json(raw["change"]), reason=raw["reason"], detail=raw.get("detail", ""))


@dataclass
class Plan:
    changes: list[Change]
    observed: dict[str, str]  # resource id → digest of its observed value
    backends: list[str]
    scopes: list[str]
    policy_commit: str | None = None
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    notes: list[str] = field(default_factory=list)
    held: list[HeldChange] = field(default_factory=list)
    unmanaged: list[str] = field(default_factory=list)
    """Settings in the consoles that no policy mentions and nothing allows pruning: shown, never changed."""
    nonce: str = field(default_factory=lambda: uuid.uuid4().hex)
    """Makes every plan's id unique: resume is scoped to a plan id, and two plans made from the same state at
    different times (a device lost, found and lost again) must never share one."""
    tenant: str | None = None
    """The district (tenants/<name>/) the plan was made for; None in a one-district repository. Part of the
    plan id when set, so a plan file edited to name another district is refused as edited."""

    @property
    def fingerprint(self) -> str:
        return digest(sorted(self.observed.items()))

    @property
    def plan_id(self) -> str:
        parts = [self.fingerprint, [c.key for c in self.changes], self.created_at, self.nonce]
        return digest(parts if self.tenant is None else [*parts, self.tenant])

    def to_json(self) -> dict[str, Any]:
        return {
            "format": PLAN_FORMAT,
            "plan_id": self.plan_id,
            "created_at": self.created_at,
            "policy_commit": self.policy_commit,
            "backends": self.backends,
            "scopes": self.scopes,
            "fingerprint": self.fingerprint,
            "observed": self.observed,
            "notes": self.notes,
            "nonce": self.nonce,
            "changes": [c.to_json() for c in self.changes],
            "held": [h.to_json() for h in self.held],
            "unmanaged": self.unmanaged,
            **({"tenant": self.tenant} if self.tenant is not None else {}),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Plan:
        if raw.get("format") != PLAN_FORMAT:
            raise OrchestratorError(
                f"plan format {raw.get('format')!r} is not supported (expected {PLAN_FORMAT}); "
                "make the plan again with this version"
            )
        plan = cls(
            changes=[Change.from_json(c) for c in raw["changes"]],
            observed=dict(raw["observed"]),
            backends=list(raw["backends"]),
            scopes=list(raw["scopes"]),
            policy_commit=raw.get("policy_commit"),
            created_at=raw["created_at"],
            notes=list(raw.get("notes", [])),
            nonce=str(raw["nonce"]),
            held=[HeldChange.from_json(h) for h in raw.get("held", [])],
            unmanaged=list(raw.get("unmanaged", [])),
            tenant=raw.get("tenant"),
        )
        if raw.get("plan_id") not in (None, plan.plan_id):
            raise OrchestratorError("plan file was edited after it was made (its id does not match its content)")
        return plan

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2, sort_keys=True, default=str) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise OrchestratorError(f"{path}: cannot read plan: {exc}") from exc
        return cls.from_json(raw)


def observed_digests(
    observed: Mapping[ResourceId, Resource], journal_state: Mapping[ResourceId, Any], desired: Iterable[Resource]
) -> dict[str, str]:
    result = {str(rid): digest(r.value) for rid, r in observed.items()}
    for resource in desired:
        if resource.id in journal_state:
            result[str(resource.id)] = digest(journal_state[resource.id])
    return dict(sorted(result.items()))


def policy_commit(policy_dir: str | Path) -> str | None:
    """The git commit of the policy folder, with '+dirty' when it has uncommitted changes; None outside git."""
    folder = Path(policy_dir)
    folder = folder if folder.is_dir() else folder.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


def stale_resources(plan: Plan, observed_now: Mapping[str, str], asked: Iterable[str]) -> list[str]:
    """Resources whose observed state moved since the plan, other than to the `after` of this plan's change.

    `asked` are the resource ids observed again (the changes still to do); a resource this plan already
    applied in an interrupted run is compared only when a console reports it anyway (authoritative listings),
    and its own `after` is never staleness. A change by someone else (neither the planned `before` nor this
    plan's `after`) is.
    """
    after_of = {str(c.id): c.after for c in plan.changes}
    stale: list[str] = []
    for rid in sorted(set(asked) | set(observed_now)):
        now = observed_now.get(rid)
        if now == plan.observed.get(rid):
            continue
        if rid in after_of:
            after = after_of[rid]
            if (after is None and now is None) or (after is not None and now == digest(after)):
                continue  # this plan's own work (an earlier, interrupted apply) or already as planned
        stale.append(rid)
    return stale
