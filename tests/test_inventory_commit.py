"""Every inventory write is all or nothing with its history, and never over someone else's change.

A crash between replacing devices.csv and appending history.csv used to lose the history rows (the device
changed, nobody knows who changed it or when); a sync that read the consoles for minutes wrote its copy over a
loaner lent meanwhile. Both go through jobs.inventory.commit_inventory now.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.inventory.devices import Device, load_inventory, write_inventory_csv
from orchestrator.inventory.edits import history_path, pending_history_path, read_history, settled_history
from orchestrator.jobs import inventory as inventory_jobs
from orchestrator.jobs.inventory import InventoryChanged, set_device
from orchestrator.jobs.workspace import open_workspace


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "inventory").mkdir()
    (tmp_path / "policies").mkdir()
    devices = [Device("CB1", "chromeos", school="lincoln"), Device("CB2", "chromeos", school="lincoln")]
    (tmp_path / "inventory" / "devices.csv").write_text(write_inventory_csv(devices))
    path = tmp_path / "orchestrator.yaml"
    path.write_text(f"journal: {tmp_path / '.orchestrator' / 'journal.db'}\n")
    return path


def status_history(config: Path) -> list[tuple[str, str]]:
    rows = read_history(history_path(config.parent / "inventory" / "devices.csv"))
    return [(r.serialNumber, r.new) for r in rows if r.field == "inventoryStatus"]


def crash_after_replacing_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*_args: object) -> None:
        raise SystemExit("killed")

    monkeypatch.setattr(inventory_jobs, "append_history", crash)


def test_history_of_a_write_cut_short_after_the_file_was_replaced_is_kept_by_the_next_write(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        crash_after_replacing_the_file(patch)
        with pytest.raises(SystemExit):
            set_device(open_workspace(str(config)), "CB1", {"inventoryStatus": "lost"})
    inventory = config.parent / "inventory" / "devices.csv"
    assert load_inventory(inventory).by_serial()["CB1"].inventoryStatus == "lost"
    assert status_history(config) == [] and pending_history_path(inventory).exists()

    set_device(open_workspace(str(config)), "CB2", {"inventoryStatus": "repair"})
    assert status_history(config) == [("CB1", "lost"), ("CB2", "repair")]
    assert not pending_history_path(inventory).exists()


def test_history_of_a_write_cut_short_before_the_file_was_replaced_is_dropped(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*_args: object) -> None:
        raise SystemExit("killed")

    with monkeypatch.context() as patch:
        patch.setattr(inventory_jobs, "_replace", crash)
        with pytest.raises(SystemExit):
            set_device(open_workspace(str(config)), "CB1", {"inventoryStatus": "lost"})
    set_device(open_workspace(str(config)), "CB2", {"inventoryStatus": "repair"})
    assert status_history(config) == [("CB2", "repair")], "a change that never reached the file is not history"
    assert load_inventory(config.parent / "inventory" / "devices.csv").by_serial()["CB1"].inventoryStatus == "active"


def test_a_write_over_a_file_changed_since_it_was_read_is_refused_and_writes_nothing(config: Path) -> None:
    slow = open_workspace(str(config))  # e.g. an inventory sync reading the consoles for minutes
    set_device(open_workspace(str(config)), "CB1", {"inventoryStatus": "lost"})  # a technician meanwhile
    with pytest.raises(InventoryChanged, match="changed while this command ran; nothing written"):
        set_device(slow, "CB2", {"inventoryStatus": "repair"})
    devices = load_inventory(config.parent / "inventory" / "devices.csv").by_serial()
    assert (devices["CB1"].inventoryStatus, devices["CB2"].inventoryStatus) == ("lost", "active")
    assert status_history(config) == [("CB1", "lost")]


def test_a_crashed_writes_history_is_read_before_the_next_write_settles_it(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Escalation dates a loss from the history: after a crash between replacing the file and appending its
    history, the loss must be dated by the staged row at once, not only after some later write. A row staged by
    a write that never reached the file is not read."""
    with monkeypatch.context() as patch:
        crash_after_replacing_the_file(patch)
        with pytest.raises(SystemExit):
            set_device(open_workspace(str(config)), "CB1", {"inventoryStatus": "lost"})
    inventory = config.parent / "inventory" / "devices.csv"
    devices = load_inventory(inventory).devices
    assert [(r.serialNumber, r.new) for r in settled_history(inventory, devices) if r.field == "inventoryStatus"] == [
        ("CB1", "lost")
    ]
    reverted = [Device("CB1", "chromeos", school="lincoln"), Device("CB2", "chromeos", school="lincoln")]
    assert settled_history(inventory, reverted) == [], "the file does not hold the staged rows: not history"
    assert pending_history_path(inventory).exists(), "reading settles nothing"
