"""Inventory jobs: import a GAM export, change one device, sync with the consoles (inventory/devices.csv).

Every write goes through `save_inventory` (written to a temporary file, read back, then renamed) and appends
what changed to history.csv beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.backends.registry import CATALOG
from orchestrator.core.backend import Catalog
from orchestrator.core.errors import PlanError
from orchestrator.engine.journal import default_actor
from orchestrator.inventory.devices import Device, parse_inventory, write_inventory_csv
from orchestrator.inventory.edits import (
    HistoryEntry,
    append_history,
    history_path,
    merge_gam,
    parse_gam_csv,
    set_fields,
)
from orchestrator.inventory.sync import CONSOLE_OF_PLATFORM, SyncResult, sync
from orchestrator.inventory.writeback import google_write_backs
from orchestrator.jobs.connect import open_backends
from orchestrator.jobs.workspace import Workspace

SYNC_BACKENDS = tuple(name for name in CATALOG.names() if name in set(CONSOLE_OF_PLATFORM.values()))
"""The consoles that hold device records the inventory syncs with (Google, Intune)."""


def save_inventory(ws: Workspace, devices: Sequence[Device]) -> Path:
    """Write `devices` as the workspace's inventory (never one we could not read back); returns its path."""
    path = ws.config.path(ws.config.inventory)
    text = write_inventory_csv(list(devices))
    parse_inventory(str(path), text)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


@dataclass
class GamImport:
    rows: int
    added: int
    updated: int
    history: list[HistoryEntry]
    path: Path


def import_gam(ws: Workspace, gam_file: str | Path, *, actor: str | None = None) -> GamImport:
    """Merge a `gam print cros` CSV into the inventory by exact serial (district fields such as status kept)."""
    gam = Path(gam_file)
    rows = parse_gam_csv(str(gam_file), gam.read_text(encoding="utf-8"))
    devices, history, added, updated = merge_gam(
        ws.inventory, rows, source=f"gam:{gam.name}", actor=actor or default_actor()
    )
    path = save_inventory(ws, devices)
    append_history(history_path(path), history)
    return GamImport(rows=len(rows), added=added, updated=updated, history=history, path=path)


def set_device(ws: Workspace, serial: str, changes: dict[str, str], *, actor: str | None = None) -> list[HistoryEntry]:
    """Change fields of one device (exact serial), save the inventory and its history; returns the history rows."""
    devices, history = set_fields(ws.inventory, serial, changes, source="cli", actor=actor or default_actor())
    append_history(history_path(save_inventory(ws, devices)), history)
    return history


@dataclass
class InventorySync:
    """What `sync_inventory` found, the consoles' notes (skipped ones), and the inventory file written, if any."""

    result: SyncResult
    notes: list[str] = field(default_factory=list)
    written: Path | None = None


def sync_inventory(
    ws: Workspace,
    *,
    backends: Sequence[str] = (),
    write: bool = False,
    actor: str | None = None,
    catalog: Catalog = CATALOG,
) -> InventorySync:
    """Read every device record from the consoles (default: every configured one of SYNC_BACKENDS), match them
    to the inventory by exact serial, and with `write` save the refreshed rows and their history (readings such
    as lastSync are saved without history rows). Write-back fields are compared, never copied.

    A console absent from the config is skipped with a note, even when named.
    """
    notes: list[str] = []
    try:
        wanted = {wb.device.serialNumber: wb.value for wb in google_write_backs(ws.policies, ws.inventory)}
    except PlanError as exc:  # a cell the console would refuse must not stop the console-owned columns' refresh
        wanted = {}
        notes.append(f"write-back fields not compared: {exc}")
    connections = open_backends(ws.config, list(backends) or list(SYNC_BACKENDS), catalog=catalog)
    try:
        records = {name: backend.inventory_records() for name, backend in connections.backends.items()}
    finally:
        connections.close()
    result = sync(ws.inventory, records, wanted)
    written = None
    if write and (result.updates or result.readings):
        written = save_inventory(ws, result.devices)
        append_history(history_path(written), result.history(actor=actor or default_actor()))
    return InventorySync(result=result, notes=[*connections.notes, *notes], written=written)
