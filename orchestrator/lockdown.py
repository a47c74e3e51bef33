"""The nightly lost-device lockdown: lock what the inventory says is lost, release what was found.

It is the reconcile loop with scope `lockdown`, plus what a 2 a.m. job needs: a per-run cap from the
LostDevicePolicy, devices missing from a console reported (never guessed), every action traced to its
inventory row, and a per-school report for the morning.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from orchestrator.engine.apply import ApplyReport
from orchestrator.engine.journal import Journal
from orchestrator.engine.plan import Plan
from orchestrator.engine.redact import redact_text
from orchestrator.engine.resources import Change
from orchestrator.inventory import Device, Inventory
from orchestrator.policy.loader import PolicySet
from orchestrator.policy.models import LostDevicePolicy

DEVICE_TYPES = {("google", "device_status"), ("intune", "device_lock")}


@dataclass
class LockdownSelection:
    """The lockdown plan after the cap, and what was held back or cannot be done."""

    plan: Plan
    not_found: list[Change] = field(default_factory=list)
    over_cap: list[Change] = field(default_factory=list)
    cap: int = 0


def _quarantine_before(change: Change) -> set[str] | None:
    """The MACs quarantined before this change: observed, or last applied (journal); None when unknown.

    The network backend observes a site in check mode, so a differing site's `before` is a diff, not a set.
    """
    if isinstance(change.before, list):
        return set(change.before)
    applied = change.meta.get("applied_before")
    return set(applied) if isinstance(applied, list) else None


def _quarantine_moves(change: Change) -> set[str]:
    """MACs this quarantine change adds or removes (every wanted MAC when the current set is unknown)."""
    before = _quarantine_before(change)
    after = set(change.after or [])
    return after if before is None else after ^ before


def _serials_of(change: Change) -> set[str]:
    if (change.id.backend, change.id.type) in DEVICE_TYPES:
        return {change.id.key}
    if change.id.type == "mac_quarantine":
        serial_of = change.meta.get("serials", {})
        return {serial_of.get(mac, mac) for mac in _quarantine_moves(change)}
    return set()


def last_applied_quarantines(journal: Journal, resource_ids: list[str]) -> dict[str, list[str]]:
    """resource id → the MAC list the last successful lockdown wrote there (from the journal's actions)."""
    out: dict[str, list[str]] = {}
    for rid in resource_ids:
        row = journal.db.execute(
            "SELECT request FROM actions WHERE resource=? AND state IN ('succeeded','skipped')"
            " ORDER BY updated_at DESC LIMIT 1",
            (rid,),
        ).fetchone()
        after = json.loads(row[0]).get("after") if row and row[0] else None
        if isinstance(after, list):
            out[rid] = sorted(after)
    return out


def cap_for(policies: PolicySet) -> int:
    caps = [model.max_per_run for model, _ in policies.of_kind(LostDevicePolicy)]
    return min(caps) if caps else 0


def select(
    plan: Plan,
    inventory: Inventory,
    cap: int,
    override: bool = False,
    applied: dict[str, list[str]] | None = None,
) -> LockdownSelection:
    """Drop changes for devices absent from a console; keep at most `cap` devices (inventory order).

    `applied` holds the last quarantine list written per site (journal), so a device quarantined on an
    earlier night neither counts against tonight's cap nor is released when tonight's list is trimmed.
    """
    by_serial = inventory.by_serial()
    by_mac = {d.macAddress: d.serialNumber for d in inventory.devices if d.macAddress}
    kept: list[Change] = []
    result = LockdownSelection(plan=plan, cap=cap)
    for change in plan.changes:
        if change.id.type == "mac_quarantine":
            meta = dict(change.meta)
            if not isinstance(change.before, list) and (applied or {}).get(str(change.id)) is not None:
                meta["applied_before"] = list((applied or {})[str(change.id)])
            known = set(meta.get("applied_before") or []) | set(
                change.before if isinstance(change.before, list) else []
            )
            meta["serials"] = {**{m: by_mac[m] for m in sorted(known) if m in by_mac}, **meta.get("serials", {})}
            change = replace(change, meta=meta)
        if (change.id.backend, change.id.type) in DEVICE_TYPES and change.before is None:
            result.not_found.append(change)  # a console cannot lock a device it does not have
        else:
            kept.append(change)
    serials = sorted(
        {s for c in kept for s in _serials_of(c)}, key=lambda s: (by_serial[s].line if s in by_serial else 10**9, s)
    )
    allowed = set(serials if override or cap <= 0 else serials[:cap])
    final: list[Change] = []
    for change in kept:
        touched = _serials_of(change)
        if touched <= allowed:
            final.append(change)
        elif change.id.type == "mac_quarantine":
            final.append(_trim_quarantine(change, allowed, result))
        else:
            result.over_cap.append(change)
    result.plan = Plan(
        changes=[c for c in final if c is not None],
        observed=plan.observed,
        backends=plan.backends,
        scopes=plan.scopes,
        policy_commit=plan.policy_commit,
        created_at=plan.created_at,
        notes=plan.notes,
    )
    return result


def _trim_quarantine(change: Change, allowed: set[str], result: LockdownSelection) -> Change:
    """Keep the quarantine set change for allowed devices only; the rest waits for the next run."""
    before = _quarantine_before(change) or set()
    serial_of = change.meta.get("serials", {})
    after = set(before)
    for mac in _quarantine_moves(change):
        if serial_of.get(mac, mac) in allowed:
            after ^= {mac}
    # reported only: its moves (before → after) are exactly the devices held back
    held = replace(change, before=sorted(after), window=None, destructive=False, summary="held back: over max_per_run")
    result.over_cap.append(held)
    return replace(change, after=sorted(after))


def with_inventory_sources(plan: Plan, inventory: Inventory) -> None:
    """Trace every device change to the inventory row that caused it."""
    by_serial = inventory.by_serial()
    for change in plan.changes:
        for serial in sorted(_serials_of(change)):
            device = by_serial.get(serial)
            if device is not None:
                where = f"{inventory.file}:{device.line}"
                if where not in change.sources:
                    change.sources = (*change.sources, where)


def _outcome(change: Change, state: str, serial: str) -> str:
    """The report's word for one device: only what this run did counts as locked, released or quarantined."""
    if state in ("failed", "unknown"):
        return "failed"
    if state == "deferred":
        return "held"
    if state == "skipped":
        return "already in place"  # someone (or an earlier run of this plan) did it: not counted as done now
    after = change.after
    if change.id.type == "mac_quarantine":
        macs = {m for m, s in change.meta.get("serials", {}).items() if s == serial} or {serial}
        return "quarantine" if macs & set(after or []) else "released"
    locked = after == "DISABLED" or (isinstance(after, dict) and after.get("lost"))
    return "locked" if locked else "released"


def school_of(serial: str, inventory: dict[str, Device]) -> str:
    device = inventory.get(serial)
    return device.school or "unassigned" if device else "unknown"


@dataclass
class LockdownReport:
    rows: list[dict[str, Any]]
    totals: Counter[str]
    per_school: dict[str, Counter[str]]

    @property
    def failed(self) -> bool:
        return self.totals["failed"] > 0


def build_report(selection: LockdownSelection, report: ApplyReport | None, inventory: Inventory) -> LockdownReport:
    by_serial = inventory.by_serial()
    rows: list[dict[str, Any]] = []
    per_school: dict[str, Counter[str]] = defaultdict(Counter)
    totals: Counter[str] = Counter()

    def add(change: Change, outcome: str | None, detail: str, state: str = "") -> None:
        for serial in sorted(_serials_of(change)) or ["-"]:
            outcome_here = outcome or _outcome(change, state, serial)
            school = school_of(serial, by_serial)
            device = by_serial.get(serial)
            rows.append(
                {
                    "school": school,
                    "serial": serial,
                    "asset": device.annotatedAssetId if device else "",
                    "backend": change.id.backend,
                    "outcome": outcome_here,
                    "detail": redact_text(detail),
                    "inventory": f"{inventory.file}:{device.line}" if device else "",
                }
            )
            per_school[school][outcome_here] += 1
            totals[outcome_here] += 1

    for change in selection.plan.changes:
        state = report.states.get(change.key, "planned") if report else "planned"
        detail = report.details.get(change.key, "") if report else change.summary
        add(change, None if report else "planned", detail, state)
    for change in selection.not_found:
        add(change, "not found", f"serial not found in {change.id.backend}")
    for change in selection.over_cap:
        add(change, "held", f"over max_per_run ({selection.cap}); next run")
    return LockdownReport(rows=rows, totals=totals, per_school=dict(per_school))


def write_report(lockdown: LockdownReport, folder: Path, stamp: str, run_id: str | None) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    md = folder / f"lockdown-{stamp}.md"
    js = folder / f"lockdown-{stamp}.json"
    outcomes = ["locked", "released", "quarantine", "already in place", "not found", "held", "failed"]
    if lockdown.totals["planned"]:
        outcomes.insert(0, "planned")
    lines = [
        f"# Lost-device lockdown {stamp}",
        "",
        f"Journal run: `{run_id or 'dry run'}`",
        "",
        "| school | " + " | ".join(outcomes) + " |",
        "|---|" + "---:|" * len(outcomes),
    ]
    for school, counts in sorted(lockdown.per_school.items()):
        lines.append(f"| {school} | " + " | ".join(str(counts[o]) for o in outcomes) + " |")
    lines.append("| **total** | " + " | ".join(str(lockdown.totals[o]) for o in outcomes) + " |")
    problems = [r for r in lockdown.rows if r["outcome"] in ("failed", "not found", "held")]
    if problems:
        lines += [
            "",
            "## Needs attention",
            "",
            "| school | serial | asset | backend | outcome | detail |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['school']} | {r['serial']} | {r['asset']} | {r['backend']} | {r['outcome']} | {r['detail']} |"
            for r in problems
        ]
    md.write_text("\n".join(lines) + "\n")
    js.write_text(
        json.dumps(
            {
                "run": run_id,
                "totals": dict(lockdown.totals),
                "per_school": {k: dict(v) for k, v in lockdown.per_school.items()},
                "devices": lockdown.rows,
            },
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )
    return md, js
