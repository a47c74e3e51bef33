"""`orchestrator inventory ...`: import from GAM, export, mark devices, show history, sync with consoles; the
counter's repair, return, overdue, audit and AUE report come from `cli.lifecycle`."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import click
from rich.table import Table

from orchestrator.cli.app import console, handle_errors, pii_option, workspace
from orchestrator.cli.lifecycle import COMMANDS as LIFECYCLE_COMMANDS
from orchestrator.core.redact import PII_KEYS, redact, redact_field
from orchestrator.inventory.devices import COLUMNS, write_inventory_csv
from orchestrator.inventory.edits import history_path, read_history
from orchestrator.jobs.inventory import SYNC_BACKENDS, import_gam, set_device, sync_inventory

PRIVATE = PII_KEYS | {"repairReason"}
"""Columns shown only with --show-pii: people, and free text about them (a repair reason is a note)."""


def _hidden(field: str, value: str) -> str:
    return redact_field("notes" if field == "repairReason" else field, value)


@click.group()
def inventory() -> None:
    """The device inventory (inventory/devices.csv): who has which device, and whether it is lost."""


@inventory.command("import")
@click.option(
    "--from-gam",
    "gam_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="CSV from `gam print cros` (camelCase columns).",
)
@click.pass_context
@handle_errors
def import_(ctx: click.Context, gam_file: str) -> None:
    """Merge a GAM export into the inventory (exact serials; district fields such as status are kept).

    Example: orchestrator inventory import --from-gam cros.csv  (from `gam print cros > cros.csv`)
    """
    done = import_gam(workspace(ctx), gam_file)
    console.print(
        f"{done.rows} GAM rows: {done.added} added, {done.updated} updated, {len(done.history)} history entries. "
        f"Wrote {done.path}."
    )


@inventory.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="File to write (default: stdout).")
@pii_option
@click.pass_context
@handle_errors
def export(ctx: click.Context, fmt: str, out: str | None, show_pii: bool) -> None:
    """Write the inventory as CSV or JSON (students redacted unless --show-pii).

    Example: orchestrator inventory export --format json --out devices.json --show-pii
    """
    ws = workspace(ctx)
    devices = ws.inventory.devices
    if not show_pii:
        devices = [replace(d, **{c: _hidden(c, getattr(d, c)) for c in COLUMNS if c in PRIVATE}) for d in devices]
    if fmt == "csv":
        text = write_inventory_csv(devices)
    else:
        text = json.dumps([{c: getattr(d, c) for c in COLUMNS} for d in devices], indent=2) + "\n"
    if out:
        Path(out).write_text(text)
        console.print(f"Wrote {len(ws.inventory.devices)} devices to {out}")
    else:
        click.echo(text, nl=False)


@inventory.command("set")
@click.argument("serial")
@click.option("--status", type=click.Choice(["active", "lost", "stolen", "found", "repair", "loaner", "retired"]))
@click.option("--student", help="Assign to this student (email).")
@click.option("--school", help="Move to this school.")
@pii_option
@click.pass_context
@handle_errors
def set_(
    ctx: click.Context, serial: str, status: str | None, student: str | None, school: str | None, show_pii: bool
) -> None:
    """Change one device by exact serial: report it lost, found, in repair, or reassign it. History is kept.

    Example: orchestrator inventory set CB0000011 --status lost
    """
    changes = {
        k: v
        for k, v in {"inventoryStatus": status, "assignedStudent": student, "school": school}.items()
        if v is not None
    }
    if not changes:
        raise click.UsageError("nothing to change: give --status, --student or --school")
    history = set_device(workspace(ctx), serial, changes)

    def shown(field: str, value: str) -> str:
        return (value if show_pii else redact_field(field, value)) or "-"

    described = ", ".join(f"{h.field} {shown(h.field, h.old)} → {shown(h.field, h.new)}" for h in history)
    console.print(f"{serial}: {described or 'no change'}", markup=False, soft_wrap=True)


@inventory.command("history")
@click.argument("serial")
@pii_option
@click.pass_context
@handle_errors
def history(ctx: click.Context, serial: str, show_pii: bool) -> None:
    """Show everything that happened to one device (exact serial).

    Example: orchestrator inventory history CB0000011
    """
    ws = workspace(ctx)
    table = Table(title=f"History of {serial}", header_style="bold")
    for column in ("at", "field", "old", "new", "source", "actor"):
        table.add_column(column)
    for entry in read_history(history_path(ws.config.path(ws.config.inventory)), serial):
        shown = [entry.old, entry.new, entry.source, entry.actor]
        if not show_pii:
            shown = [_hidden(entry.field, entry.old), _hidden(entry.field, entry.new), *redact(shown[2:])]
        table.add_row(entry.at, entry.field, *shown)
    console.print(table)


@inventory.command("sync")
@click.option("--write", is_flag=True, help="Update inventory/devices.csv and append every change to history.csv.")
@click.option(
    "--backend",
    "backends",
    multiple=True,
    type=click.Choice(list(SYNC_BACKENDS)),
    help="Only these consoles (repeatable; default: every configured one).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@pii_option
@click.pass_context
@handle_errors
def sync_(ctx: click.Context, write: bool, backends: tuple[str, ...], fmt: str, show_pii: bool) -> None:
    """Refresh deviceId/OU/status/MAC, lastSync and auto-update expiration from Google and Intune (exact serials);
    list what does not line up.

    Without --write nothing changes. lastSync and autoUpdateExpiration are stored without history rows. Asset tag,
    student, location and notes are never copied from a console (the inventory is the record): devices whose
    console differs where an InventoryWriteBack policy manages them are listed (plan/apply fixes them), and so are
    Intune primary users that differ from the inventory's student (see orchestrator/inventory/sync.py).

    Example: orchestrator inventory sync --write
    """
    synced = sync_inventory(workspace(ctx), backends=backends, write=write)
    result, written = synced.result, synced.written
    if fmt == "json":
        data = {**result.to_json(), "notes": synced.notes, "written": bool(written)}
        click.echo(json.dumps(data if show_pii else redact(data), indent=2))
        return

    def shown(field: str, value: str) -> str:
        return value if show_pii else redact_field(field, value)

    for note in synced.notes:
        console.print(f"[yellow]{note}[/yellow]")
    table = Table(title="Inventory fields the consoles report differently", header_style="bold")
    for column in ("serial", "field", "inventory", "console", "from"):
        table.add_column(column)
    for update in result.updates:
        table.add_row(
            update.serial,
            update.field,
            shown(update.field, update.old) or "-",
            shown(update.field, update.new),
            update.console,
        )
    console.print(table)
    for title, rows in (
        ("In a console, missing from the inventory", result.not_in_inventory),
        ("In the inventory, missing from its console", result.not_in_console),
        ("Serial matches several console records (left alone)", result.ambiguous),
        (
            "Write-back fields the console shows differently (plan/apply writes the inventory's)",
            result.annotation_drift,
        ),
        ("Intune primary user differs from the inventory's student (not written)", result.user_mismatches),
    ):
        if rows:
            listing = Table(title=f"{title} ({len(rows)})", header_style="bold")
            for column in rows[0]:
                listing.add_column(column)
            for row in rows:
                listing.add_row(*(shown(k, str(v)) for k, v in row.items()))
            console.print(listing)
    console.print(
        f"{len(result.updates)} field change(s) on {len({u.serial for u in result.updates})} device(s); "
        f"{len(result.last_seen)} last-seen times read ({result.readings_changed} reading(s) changed); "
        f"{len(result.not_in_inventory)} console devices not in the inventory; {len(result.not_in_console)} "
        "inventory rows not in their console."
    )
    if written:
        console.print(f"Wrote {written} and {history_path(written)}.")
    elif result.updates or result.readings_changed:
        console.print("Nothing written: run with --write to apply these changes.")


for _command in LIFECYCLE_COMMANDS:
    inventory.add_command(_command)
