"""Every per-run cap on device actions, in one place, whatever the entry point.

- the LostDevicePolicy's `max_per_run`: at plan time `cap_lockdown` keeps at most that many devices in a
  lockdown-scope plan (inventory order) and lists the rest as held; at apply time `check_plan_caps` refuses a
  plan that holds more (so `plan --scope lockdown` + `apply`, `lockdown` and a hand-made plan all obey it);
- destructive caps (`max_devices_per_window`, `--max-destructive`, per-school budgets) are judged per change by
  `engine.gates.gate_destructive`, which the executor calls for every destructive change of every plan.

A device that a console does not have is never guessed: `hold_absent_devices` holds its change as "not found"
(every lock of one device, and every `needs_device` type such as a write-back of annotations), or as "ambiguous"
when the console lists the serial more than once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Set
from dataclasses import dataclass, replace

from orchestrator.core.backend import Catalog
from orchestrator.core.errors import OrchestratorError
from orchestrator.core.resources import Change, Resource, ResourceId
from orchestrator.core.types import MATCHES
from orchestrator.engine.journal import Journal
from orchestrator.engine.plan import HeldChange, Plan
from orchestrator.inventory.devices import Inventory
from orchestrator.policy.loader import PolicySet
from orchestrator.policy.models import LostDevicePolicy


@dataclass(frozen=True)
class LockdownTypes:
    """The lockdown's resource types, learnt from the catalog (the engine and jobs never spell a type's name).

    devices: (backend, type) of the lockdown types keyed by one device serial (a console's lock of one device);
    quarantines: (backend, type) of the types whose value is a site's list of quarantined MACs.
    """

    devices: Set[tuple[str, str]] = frozenset()
    quarantines: Set[tuple[str, str]] = frozenset()

    @classmethod
    def of(cls, catalog: Catalog) -> LockdownTypes:
        quarantines = frozenset((t.backend, t.name) for t in catalog.types if t.quarantines_macs)
        return cls(frozenset(catalog.device_types()), quarantines)

    def is_device(self, rid: ResourceId) -> bool:
        return (rid.backend, rid.type) in self.devices

    def is_quarantine(self, rid: ResourceId) -> bool:
        return (rid.backend, rid.type) in self.quarantines


NOT_FOUND = "not found"
AMBIGUOUS = "ambiguous"
OVER_CAP = "over max_per_run"


def hold_absent_devices(
    catalog: Catalog, changes: list[Change], observed: Mapping[ResourceId, Resource]
) -> tuple[list[Change], list[HeldChange]]:
    """Changes to send, and those held because their type is `held_when_absent` and the console has no single
    record for the serial (the note names the serial and why; never the value, which may be a student's)."""
    kept: list[Change] = []
    held: list[HeldChange] = []
    for change in changes:
        seen = observed.get(change.id)
        count = int(seen.meta.get(MATCHES) or 0) if seen is not None else 0
        if not catalog.type_of(change.id).held_when_absent or (seen is not None and count <= 1):
            kept.append(change)
        elif seen is None:
            held.append(HeldChange(change, NOT_FOUND, f"serial not found in {change.id.backend}"))
        else:
            detail = f"serial matches {count} live records in {change.id.backend}; left alone"
            held.append(HeldChange(change, AMBIGUOUS, detail))
    return kept, held


def lockdown_cap(policies: PolicySet) -> int:
    """The smallest `max_per_run` of the LostDevicePolicies (0 = no policy, no cap)."""
    caps = [model.max_per_run for model, _ in policies.of_kind(LostDevicePolicy)]
    return min(caps) if caps else 0


def quarantine_before(change: Change) -> set[str] | None:
    """The MACs quarantined before this change: observed, or last applied (journal); None when unknown.

    The network backend observes a site in check mode, so a differing site's `before` is a diff, not a set.
    """
    if isinstance(change.before, list):
        return set(change.before)
    applied = change.meta.get("applied_before")
    return set(applied) if isinstance(applied, list) else None


def quarantine_moves(change: Change) -> set[str]:
    """MACs this quarantine change adds or removes (every wanted MAC when the current set is unknown)."""
    before = quarantine_before(change)
    after = set(change.after or [])
    return after if before is None else after ^ before


def serials_of(change: Change, types: LockdownTypes) -> set[str]:
    """The devices one lockdown change acts on (a quarantine list change may act on several)."""
    if types.is_device(change.id):
        return {change.id.key}
    if types.is_quarantine(change.id):
        serial_of = change.meta.get("serials", {})
        return {serial_of.get(mac, mac) for mac in quarantine_moves(change)}
    return set()


def last_applied_quarantines(journal: Journal, resource_ids: list[str]) -> dict[str, list[str]]:
    """resource id → the MAC list the last successful lockdown wrote there (from the journal's actions)."""
    out: dict[str, list[str]] = {}
    for rid in resource_ids:
        row = journal.db.execute(
            "SELECT request FROM actions WHERE resource=? AND state IN ('succeeded','skipped')"
            " ORDER BY seq DESC LIMIT 1",
            (rid,),
        ).fetchone()
        after = json.loads(row[0]).get("after") if row and row[0] else None
        if isinstance(after, list):
            out[rid] = sorted(after)
    return out


def cap_lockdown(
    plan: Plan,
    inventory: Inventory,
    cap: int,
    types: LockdownTypes,
    *,
    override: bool = False,
    journal: Journal | None = None,
) -> Plan:
    """The lockdown part of `plan` with at most `cap` devices (inventory order); the rest in `plan.held`.

    The journal's last applied quarantine list per site makes a device quarantined on an earlier night
    neither count against tonight's cap nor be released when tonight's list is trimmed.
    """
    quarantines = [str(c.id) for c in plan.changes if types.is_quarantine(c.id)]
    applied = last_applied_quarantines(journal, quarantines) if journal is not None else {}
    by_serial = inventory.by_serial()
    by_mac = {d.macAddress: d.serialNumber for d in inventory.devices if d.macAddress}
    held: list[HeldChange] = list(plan.held)
    kept: list[Change] = []
    for change in plan.changes:
        if types.is_quarantine(change.id):
            meta = dict(change.meta)
            if not isinstance(change.before, list) and applied.get(str(change.id)) is not None:
                meta["applied_before"] = list(applied[str(change.id)])
            known = set(meta.get("applied_before") or []) | set(
                change.before if isinstance(change.before, list) else []
            )
            meta["serials"] = {**{m: by_mac[m] for m in sorted(known) if m in by_mac}, **meta.get("serials", {})}
            change = replace(change, meta=meta)
        kept.append(change)
    serials = sorted(
        {s for c in kept for s in serials_of(c, types)},
        key=lambda s: (by_serial[s].line if s in by_serial else 10**9, s),
    )
    allowed = set(serials if override or cap <= 0 else serials[:cap])
    final: list[Change] = []
    for change in kept:
        touched = serials_of(change, types)
        if touched <= allowed:
            final.append(change)
        elif types.is_quarantine(change.id):
            trimmed, waiting = _trim_quarantine(change, allowed)
            final.append(trimmed)
            held.append(HeldChange(waiting, OVER_CAP, f"over max_per_run ({cap}); next run"))
        else:
            held.append(HeldChange(change, OVER_CAP, f"over max_per_run ({cap}); next run"))
    return replace(plan, changes=final, held=held)


def _trim_quarantine(change: Change, allowed: set[str]) -> tuple[Change, Change]:
    """The quarantine set change for allowed devices only, and (reported only) the moves that wait."""
    before = quarantine_before(change) or set()
    serial_of = change.meta.get("serials", {})
    after = set(before)
    for mac in quarantine_moves(change):
        if serial_of.get(mac, mac) in allowed:
            after ^= {mac}
    # its moves (before → after) are exactly the devices held back
    waiting = replace(change, before=sorted(after), window=None, destructive=False, summary="held back: over cap")
    return replace(change, after=sorted(after)), waiting


def check_plan_caps(plan: Plan, policies: PolicySet | None, types: LockdownTypes, *, override: bool) -> None:
    """Refuse a plan whose lockdown part acts on more devices than `max_per_run` (unless overridden)."""
    if override or "lockdown" not in plan.scopes or policies is None:
        return
    cap = lockdown_cap(policies)
    if cap <= 0:
        return
    devices = {s for c in plan.changes for s in serials_of(c, types)}
    if len(devices) > cap:
        raise OrchestratorError(
            f"the plan acts on {len(devices)} lost/found devices but the LostDevicePolicy allows {cap} per run "
            "(max_per_run); nothing was applied. Make the plan again (it keeps the first devices and holds the "
            "rest), or pass --override-blast-radius"
        )
