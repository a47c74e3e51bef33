"""The morning's lockdown report: one entry per device (never per action), in Markdown, JSON and CSV.

Each device tonight is listed with its school, platform, asset tag and (redacted) student, and what was done
on each console and on the network, including "not locked: <reason>". Every device the inventory marks lost or
stolen that is still locked is listed every night, read from what the consoles reported (a lost device with no
change planned is locked there) and from the journal (the network's last applied quarantine lists), not only
from tonight's changes.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.core.redact import redact_text
from orchestrator.core.resources import Change, ResourceId
from orchestrator.engine.apply import ApplyReport
from orchestrator.engine.caps import LockdownTypes, last_applied_quarantines, serials_of
from orchestrator.engine.journal import Journal
from orchestrator.inventory.devices import Device, Inventory

if TYPE_CHECKING:
    from orchestrator.jobs.lockdown import LockdownSelection

REPORT_OUTCOMES = (
    "planned",
    "locked",
    "released",
    "quarantine",
    "already in place",
    "not locked",
    "not found",
    "held",
    "failed",
)
# A device's own outcome is the most pressing of its consoles' outcomes.
_PRIORITY = (
    "failed",
    "not found",
    "held",
    "not locked",
    "planned",
    "locked",
    "quarantine",
    "released",
    "already in place",
)
LOST = ("lost", "stolen")
BACKENDS = ("google", "intune", "network")


def _outcome(change: Change, types: LockdownTypes, state: str, serial: str, detail: str = "") -> str:
    """The report's word for one device: only what this run did counts as locked, released or quarantined."""
    if state in ("failed", "unknown"):
        return "failed"
    if state == "deferred":
        return "held"
    if state == "skipped" and detail.startswith("not locked:"):
        return "not locked"  # the console cannot (a remote lock on Windows): nothing sent, not a failure
    if state == "skipped":
        return "already in place"  # someone (or an earlier run of this plan) did it: not counted as done now
    after = change.after
    if types.is_quarantine(change.id):
        macs = {m for m, s in change.meta.get("serials", {}).items() if s == serial} or {serial}
        return "quarantine" if macs & set(after or []) else "released"
    locked = after == "DISABLED" or (isinstance(after, dict) and after.get("lost"))
    return "locked" if locked else "released"


def school_of(serial: str, inventory: dict[str, Device]) -> str:
    device = inventory.get(serial)
    return device.school or "unassigned" if device else "unknown"


def _said(outcome: str, detail: str) -> str:
    """What a console line says: "locked", "not locked: serial not found in google", "failed: ..."."""
    if outcome == "not locked":
        return detail
    if outcome in ("not found", "held"):
        return f"not locked: {detail}"
    if outcome == "failed":
        return f"not locked: failed: {detail}" if detail else "not locked: failed"
    return outcome


@dataclass
class LockdownReport:
    """`devices`: one entry per device acted on tonight (with `actions` per console); `still_locked`: every lost
    or stolen device locked somewhere, tonight or earlier; `totals` and `per_school` count devices."""

    devices: list[dict[str, Any]]
    totals: Counter[str]
    per_school: dict[str, Counter[str]]
    still_locked: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self.devices

    @property
    def failed(self) -> bool:
        return self.totals["failed"] > 0


def _device_entry(serial: str, device: Device | None, inventory: Inventory) -> dict[str, Any]:
    return {
        "serial": serial,
        "school": device.school or "unassigned" if device else "unknown",
        "platform": device.platform if device else "",
        "asset": device.annotatedAssetId if device else "",
        "student": redact_text(device.assignedStudent) if device and device.assignedStudent else "",
        "status": device.inventoryStatus if device else "",
        "inventory": f"{inventory.file}:{device.line}" if device else "",
        "actions": [],
    }


def build_report(
    selection: LockdownSelection, report: ApplyReport | None, inventory: Inventory, journal: Journal | None = None
) -> LockdownReport:
    by_serial = inventory.by_serial()
    entries: dict[str, dict[str, Any]] = {}

    def add(change: Change, outcome: str | None, detail: str, state: str = "") -> None:
        for serial in sorted(serials_of(change, selection.types)) or ["-"]:
            entry = entries.setdefault(serial, _device_entry(serial, by_serial.get(serial), inventory))
            said = outcome or _outcome(change, selection.types, state, serial, detail)
            entry["actions"].append(
                {"backend": change.id.backend, "outcome": said, "detail": redact_text(detail), "said": ""}
            )
            entry["actions"][-1]["said"] = _said(said, redact_text(detail))

    for change in selection.plan.changes:
        state = report.states.get(change.key, "planned") if report else "planned"
        detail = report.details.get(change.key, "") if report else change.summary
        add(change, None if report else "planned", detail, state)
    for change in selection.not_found:
        add(change, "not found", f"serial not found in {change.id.backend}")
    for change in selection.over_cap:
        add(change, "held", f"over max_per_run ({selection.cap}); next run")
    totals: Counter[str] = Counter()
    per_school: dict[str, Counter[str]] = defaultdict(Counter)
    for entry in entries.values():
        outcomes = {a["outcome"] for a in entry["actions"]}
        entry["outcome"] = next(o for o in _PRIORITY if o in outcomes)
        totals[entry["outcome"]] += 1
        per_school[entry["school"]][entry["outcome"]] += 1
    devices = sorted(entries.values(), key=lambda e: (e["school"], e["serial"]))
    still = still_locked(selection, devices, inventory, journal)
    return LockdownReport(devices=devices, totals=totals, per_school=dict(per_school), still_locked=still)


def still_locked(
    selection: LockdownSelection, devices: list[dict[str, Any]], inventory: Inventory, journal: Journal | None
) -> list[dict[str, Any]]:
    """Every lost or stolen device locked on some console or the network after tonight's run.

    A console that reported the device (its lock resource was observed) and needs no change tonight has it
    locked; so does one that locked it tonight. The network's quarantine is the journal's last applied list.
    """
    tonight = {e["serial"]: e for e in devices}
    observed = set(selection.plan.observed)
    quarantined: set[str] = set()
    if journal is not None:
        sites = sorted(rid for rid in observed if selection.types.is_quarantine(ResourceId.parse(rid)))
        for macs in last_applied_quarantines(journal, sites).values():
            quarantined |= set(macs)
    out = []
    for device in inventory.devices:
        if device.inventoryStatus not in LOST:
            continue
        entry = tonight.get(device.serialNumber)
        done = {a["backend"]: a["outcome"] for a in (entry or {}).get("actions", [])}
        on = []
        for backend, rtype in sorted(selection.types.devices):
            rid = f"{backend}/{rtype}/{device.serialNumber}"
            outcome = done.get(backend)
            if outcome in ("locked", "already in place") or (outcome is None and rid in observed):
                on.append(backend)
        if done.get("network") == "quarantine" or (
            "network" not in done and device.macAddress and device.macAddress in quarantined
        ):
            on.append("network")
        if on:
            row = _device_entry(device.serialNumber, device, inventory)
            del row["actions"]
            out.append({**row, "locked_on": sorted(set(on))})
    return sorted(out, key=lambda e: (e["school"], e["serial"]))


def _cell(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;") or "-"


def _console_cell(entry: dict[str, Any], backend: str) -> str:
    said = [a["said"] for a in entry["actions"] if a["backend"] == backend]
    return "; ".join(said) or "-"


def markdown(lockdown: LockdownReport, stamp: str, run_id: str | None) -> str:
    outcomes = [o for o in REPORT_OUTCOMES if o != "planned" or lockdown.totals["planned"]]
    devices = sum(lockdown.totals.values())
    lines = [
        f"# Lost-device lockdown {stamp}",
        "",
        f"Journal run: `{run_id or 'dry run'}`. Devices acted on tonight: {devices}; "
        f"still locked: {len(lockdown.still_locked)}. Counts are devices, not actions.",
        "",
        "| school | " + " | ".join(outcomes) + " |",
        "|---|" + "---:|" * len(outcomes),
    ]
    for school, counts in sorted(lockdown.per_school.items()):
        lines.append(f"| {_cell(school)} | " + " | ".join(str(counts[o]) for o in outcomes) + " |")
    lines.append("| **total** | " + " | ".join(str(lockdown.totals[o]) for o in outcomes) + " |")
    problems = [e for e in lockdown.devices if e["outcome"] in ("failed", "not found", "held")]
    head = "| school | serial | platform | asset | student | google | intune | network | outcome |"
    rule = "|---|---|---|---|---|---|---|---|---|"

    def table(entries: list[dict[str, Any]]) -> list[str]:
        rows = [head, rule]
        for e in entries:
            cells = [e["school"], e["serial"], e["platform"], e["asset"], e["student"]]
            cells += [_console_cell(e, b) for b in BACKENDS] + [e["outcome"]]
            rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        return rows

    if problems:
        lines += ["", "## Needs attention", "", *table(problems)]
    lines += ["", "## Devices tonight", ""]
    lines += table(lockdown.devices) if lockdown.devices else ["Nothing to lock or release tonight."]
    lines += ["", "## Still locked", ""]
    if lockdown.still_locked:
        lines += ["| school | serial | platform | asset | student | status | locked on |", "|---" * 7 + "|"]
        for e in lockdown.still_locked:
            cells = [e["school"], e["serial"], e["platform"], e["asset"], e["student"], e["status"]]
            lines.append("| " + " | ".join(_cell(c) for c in [*cells, ", ".join(e["locked_on"])]) + " |")
    else:
        lines.append("No lost or stolen device is locked.")
    return "\n".join(lines) + "\n"


CSV_COLUMNS = ("section", "school", "serial", "platform", "asset", "student", "status", *BACKENDS, "outcome")


def csv_text(lockdown: LockdownReport) -> str:
    """One row per device tonight (section `tonight`) and per still-locked device (section `still locked`)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for e in lockdown.devices:
        writer.writerow({**e, "section": "tonight", **{b: _console_cell(e, b) for b in BACKENDS}})
    for e in lockdown.still_locked:
        on = {b: ("locked" if b in e["locked_on"] else "-") for b in BACKENDS}
        writer.writerow({**e, "section": "still locked", **on, "outcome": "still locked"})
    return out.getvalue()


def write_report(lockdown: LockdownReport, folder: Path, stamp: str, run_id: str | None) -> tuple[Path, Path, Path]:
    """lockdown-<stamp>.md, .json and .csv in `folder`: the same content three ways."""
    folder.mkdir(parents=True, exist_ok=True)
    md, js, cs = (folder / f"lockdown-{stamp}.{ext}" for ext in ("md", "json", "csv"))
    md.write_text(markdown(lockdown, stamp, run_id))
    data = {
        "run": run_id,
        "counted": "devices",
        "totals": dict(lockdown.totals),
        "per_school": {k: dict(v) for k, v in lockdown.per_school.items()},
        "devices": lockdown.devices,
        "still_locked": lockdown.still_locked,
    }
    js.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    cs.write_text(csv_text(lockdown))
    return md, js, cs
