"""`orchestrator inventory repair|return|overdue|audit|report`: the technician's counter (added to `inventory`)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from orchestrator.cli.app import console, handle_errors, pii_option, workspace
from orchestrator.core.redact import redact_field
from orchestrator.inventory.audit import AuditResult, Scanned, audit, read_scan
from orchestrator.inventory.aue import aue_groups
from orchestrator.inventory.devices import Device
from orchestrator.inventory.loans import Late
from orchestrator.jobs.lifecycle import mark_missing_lost, out_report, repair_device, return_device, today

format_option = click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True
)
date_option = click.option(
    "--date",
    "on",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Act as of this date (YYYY-MM-DD; default: today in the district's time zone).",
)


def _day(on: dt.datetime | None) -> dt.date | None:
    return on.date() if on else None


def _student(value: str, show_pii: bool) -> str:
    return (value if show_pii else redact_field("student", value)) or "-"


def emit(rows: Sequence[dict[str, Any]], fmt: str, title: str, extra: dict[str, Any] | None = None) -> None:
    """Rows as a rich table, JSON ({...extra, "rows": rows}) or CSV; every row has the same keys."""
    if fmt == "json":
        click.echo(json.dumps({**(extra or {}), "rows": list(rows)}, indent=2))
        return
    columns = list(rows[0]) if rows else []
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(out.getvalue(), nl=False)
        return
    table = Table(title=title, header_style="bold")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[c]) if row[c] not in ("", None) else "-" for c in columns))
    console.print(table if rows else f"{title}: none.")


@click.command("repair")
@click.argument("serial")
@click.option(
    "--loaner", default=None, help="Lend this loaner (exact serial; free, in the pool named or the device's)."
)
@click.option(
    "--from-pool", "pool", default=None, help="Take the loaner from this school's pool (say so for another school)."
)
@click.option("--no-loaner", is_flag=True, help="Send to repair without lending a loaner.")
@click.option("--reason", default="", help="What is wrong (free text; shown only with --show-pii).")
@date_option
@pii_option
@click.pass_context
@handle_errors
def repair(
    ctx: click.Context,
    serial: str,
    loaner: str | None,
    pool: str | None,
    no_loaner: bool,
    reason: str,
    on: dt.datetime | None,
    show_pii: bool,
) -> None:
    """Send a device to repair and lend its student a loaner from the school's pool, in one step.

    Without --loaner the pool's loaner checked in longest ago is lent (then the lowest serial). Due dates are
    counted in school days on the RepairPolicy's calendar. Both devices' history records every step.

    Example: orchestrator inventory repair CB0000004 --reason "cracked screen"
    """
    if no_loaner and (loaner or pool):
        raise click.UsageError("--no-loaner goes without --loaner and --from-pool")
    done = repair_device(
        workspace(ctx), serial, reason=reason, loaner=loaner, pool=pool, lend=not no_loaner, on=_day(on)
    )
    device = done.done.device
    console.print(f"{serial}: in repair since {device.repairSince}; due back by {done.due.isoformat()}", markup=False)
    for lent in done.done.loaners:
        console.print(
            f"loaner {lent.serialNumber} ({lent.annotatedAssetId or 'no asset tag'}) lent to "
            f"{_student(lent.assignedStudent, show_pii)}; due {lent.loanDue}",
            markup=False,
        )
    for note in [*done.done.notes, *done.notes]:
        console.print(f"note: {note}", markup=False, soft_wrap=True)


@click.command("return")
@click.argument("serial")
@pii_option
@click.pass_context
@handle_errors
def return_(ctx: click.Context, serial: str, show_pii: bool) -> None:
    """A device is back from repair: active again for its student, and its loaner back in the pool.

    A loaner whose device is no longer in repair can be returned on its own (give the loaner's serial).

    Example: orchestrator inventory return CB0000004
    """
    done = return_device(workspace(ctx), serial)
    if done.device.inventoryStatus == "active":
        student = _student(done.device.assignedStudent, show_pii)
        console.print(f"{serial}: back from repair, active for {student}", markup=False)
    for back in done.loaners:
        console.print(f"loaner {back.serialNumber}: back in the pool of {back.school}", markup=False)
    for note in done.notes:
        console.print(f"note: {note}", markup=False, soft_wrap=True)


def late_row(entry: Late, show_pii: bool) -> dict[str, Any]:
    device = entry.device
    return {
        "school": device.school or "unassigned",
        "kind": entry.kind,
        "serial": device.serialNumber,
        "asset": device.annotatedAssetId,
        "student": _student(device.assignedStudent, show_pii),
        "since": entry.since,
        "due": entry.due,
        "school_days_overdue": "unknown" if entry.overdue is None else entry.overdue,
        "for": device.loanFor,
        "problem": entry.problem,
    }


@click.command("overdue")
@click.option("--school", default=None, help="Only this school.")
@format_option
@date_option
@pii_option
@click.pass_context
@handle_errors
def overdue(ctx: click.Context, school: str | None, fmt: str, on: dt.datetime | None, show_pii: bool) -> None:
    """Repairs past the RepairPolicy's turnaround and loaners past due, per school, in school days overdue.

    Example: orchestrator inventory overdue --school lincoln-elementary --format csv
    """
    report = out_report(workspace(ctx), on=_day(on))
    rows = [late_row(e, show_pii) for e in report.overdue(school)]
    extra = {"date": report.on.isoformat(), "notes": report.notes}
    emit(rows, fmt, f"Overdue on {report.on.isoformat()} (school days)", extra)
    if fmt == "table":
        for note in report.notes:
            console.print(f"note: {note}", markup=False, soft_wrap=True)


def _audit_row(result: str, scan: Scanned | None, device: Device | None) -> dict[str, Any]:
    return {
        "result": result,
        "code": scan.code if scan else "",
        "serial": device.serialNumber if device else "",
        "belongs_to": device.school if device else "",
        "status": device.inventoryStatus if device else "",
        "last_seen": device.lastSync if device else "",
        "scanned": scan.times if scan else 0,
    }


def audit_rows(result: AuditResult) -> list[dict[str, Any]]:
    """What needs a look first (missing, another school's, unknown), then the devices not expected, then present."""
    rows = [_audit_row("missing", None, d) for d in result.missing]
    rows += [_audit_row("unexpected", s, d) for s, d in result.unexpected]
    rows += [_audit_row("unknown", s, None) for s in result.unknown]
    rows += [_audit_row(f"not expected ({d.inventoryStatus})", None, d) for d in result.not_expected]
    return rows + [_audit_row("present", s, d) for s, d in result.present]


@click.command("audit")
@click.option("--school", required=True, help="The school being counted.")
@click.option("--scan", "scan_file", required=True, type=click.Path(exists=True, dir_okay=False), help="Scanned codes.")
@click.option(
    "--mark-missing-lost", "mark_lost", is_flag=True, help="Mark the missing devices lost (asks first unless --yes)."
)
@click.option("--yes", is_flag=True, help="Do not ask before marking missing devices lost.")
@format_option
@click.pass_context
@handle_errors
def audit_(ctx: click.Context, school: str, scan_file: str, mark_lost: bool, yes: bool, fmt: str) -> None:
    """Count a school: scanned serials or asset tags → present, missing, unexpected (another school's), unknown.

    The scan file is a barcode scanner's output (one code per line) or a CSV with a serial or asset column.
    Last seen is the inventory's lastSync (`inventory sync --write` fills it).

    Example: orchestrator inventory audit --school lincoln-elementary --scan scans.txt
    """
    if yes and not mark_lost:
        raise click.UsageError("--yes goes with --mark-missing-lost")
    ws = workspace(ctx)
    path = Path(scan_file)
    result = audit(ws.inventory, school, read_scan(path), path.name)
    counts = {
        "present": len(result.present),
        "missing": len(result.missing),
        "unexpected": len(result.unexpected),
        "unknown": len(result.unknown),
        "not_expected": len(result.not_expected),
        "repeated_scans": result.repeats,
    }
    emit(audit_rows(result), fmt, f"Audit of {school} from {path.name}", {"school": school, "counts": counts})
    if fmt == "table":
        console.print(", ".join(f"{n} {k.replace('_', ' ')}" for k, v in counts.items() for n in [v]), markup=False)
    if not mark_lost:
        return
    markable = result.markable
    if not markable:
        console.print("No missing device to mark lost.")
        return
    if not yes and not click.confirm(f"Mark {len(markable)} missing device(s) of {school} lost?", err=True):
        console.print("Nothing marked.")
        return
    history = mark_missing_lost(ws, result)
    console.print(f"Marked {len({h.serialNumber for h in history})} device(s) lost (history source audit:{path.name}).")


@click.command("report")
@click.option("--aue", is_flag=True, required=True, help="Chromebooks by auto-update expiration, per school and year.")
@click.option("--school", default=None, help="Only this school.")
@format_option
@date_option
@click.pass_context
@handle_errors
def report(ctx: click.Context, aue: bool, school: str | None, fmt: str, on: dt.datetime | None) -> None:
    """Chromebooks per school and auto-update-expiration year, expired ones flagged, unknown AUE counted.

    Example: orchestrator inventory report --aue --format csv
    """
    ws = workspace(ctx)
    day = _day(on) or today(ws)
    groups = aue_groups(ws.inventory, day, school)
    rows = [
        {"school": g.school, "aue_year": g.year, "chromebooks": g.count, "expired": g.expired}
        | {"serials": " ".join(d.serialNumber for d in g.devices)}
        for g in groups
    ]
    if fmt == "table":
        rows = [{k: v for k, v in r.items() if k != "serials"} for r in rows]
    emit(rows, fmt, f"Auto-update expiration as of {day.isoformat()}", {"date": day.isoformat()})


COMMANDS = (repair, return_, overdue, audit_, report)
