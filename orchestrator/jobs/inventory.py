"""Inventory jobs: import a GAM export, change one device, sync with the consoles (inventory/devices.csv).

Every write goes through `commit_inventory`: under a lock, only over the file the command read, written to a
temporary file, read back and renamed, with what changed appended to history.csv beside it (staged first, so a
crash loses neither).
"""

from __future__ import annotations

import fcntl
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.backends.registry import CATALOG
from orchestrator.core.backend import Catalog
from orchestrator.core.errors import OrchestratorError, PlanError
from orchestrator.engine.journal import default_actor
from orchestrator.inventory.devices import Device, load_inventory, parse_inventory, write_inventory_csv
from orchestrator.inventory.edits import (
    HistoryEntry,
    append_history,
    history_path,
    merge_gam,
    parse_gam_csv,
    pending_history_path,
    set_fields,
    settle_history,
    stage_history,
)
from orchestrator.inventory.sync import CONSOLE_OF_PLATFORM, SyncResult, sync
from orchestrator.inventory.writeback import google_write_backs
from orchestrator.jobs.connect import open_backends
from orchestrator.jobs.workspace import Workspace

SYNC_BACKENDS = tuple(name for name in CATALOG.names() if name in set(CONSOLE_OF_PLATFORM.values()))
"""The consoles that hold device records the inventory syncs with (Google, Intune)."""


class InventoryChanged(OrchestratorError):
    """The inventory file changed between this command reading it and writing it: nothing was written."""


def commit_inventory(ws: Workspace, devices: Sequence[Device], history: list[HistoryEntry]) -> Path:
    """The one way a command writes the inventory: `devices` and their `history`, all or nothing.

    Under a lock beside the journal, and only over the file this command read (two technicians at two counters,
    or a sync that ran for minutes while a loaner was lent, never overwrite each other: the second is told to
    run again). The history rows are staged before the file is replaced and appended after, so a crash in
    between loses neither: the next write finishes it (edits.settle_history).
    """
    path = ws.config.path(ws.config.inventory)
    ws.journal_path.parent.mkdir(parents=True, exist_ok=True)
    with (ws.journal_path.parent / "inventory.lock").open("a") as lock:  # beside the journal, out of git
        fcntl.flock(lock, fcntl.LOCK_EX)
        read = ws.inventory.devices
        text = path.read_text(encoding="utf-8-sig") if path.exists() else ""
        # Fast path: the file is byte for byte what this tool writes for what was read (no second parse).
        unchanged = text == write_inventory_csv(read)
        current = read if unchanged else load_inventory(path, display=ws.inventory.file).devices
        settle_history(path, current)
        if current != read:
            raise InventoryChanged(f"{ws.inventory.file} changed while this command ran; nothing written: run it again")
        stage_history(path, history)
        _replace(path, devices)
        append_history(history_path(path), history)
        pending_history_path(path).unlink(missing_ok=True)
    return path


def _replace(path: Path, devices: Sequence[Device]) -> None:
    """Write `devices` to `path` through a temporary file (never one we could not read back), then rename."""
    text = write_inventory_csv(list(devices))
    parse_inventory(str(path), text)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


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
    path = commit_inventory(ws, devices, history)
    return GamImport(rows=len(rows), added=added, updated=updated, history=history, path=path)


def set_device(ws: Workspace, serial: str, changes: dict[str, str], *, actor: str | None = None) -> list[HistoryEntry]:
    """Change fields of one device (exact serial), save the inventory and its history; returns the history rows."""
    devices, history = set_fields(ws.inventory, serial, changes, source="cli", actor=actor or default_actor())
    commit_inventory(ws, devices, history)
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
    try:  # the consoles are read at once: each listing waits on its own console, not on the other's
        with ThreadPoolExecutor(max_workers=max(1, len(connections.backends))) as pool:
            expected = Counter(CONSOLE_OF_PLATFORM.get(device.platform) for device in ws.inventory.devices)
            reading = {
                name: pool.submit(backend.inventory_records, expected[name])
                for name, backend in connections.backends.items()
            }
            records = {name: future.result() for name, future in reading.items()}
    finally:
        connections.close()
    result = sync(ws.inventory, records, wanted)
    written = None
    if write and (result.updates or result.readings_changed):
        written = commit_inventory(ws, result.devices, result.history(actor=actor or default_actor()))
    return InventorySync(result=result, notes=[*connections.notes, *notes], written=written)
