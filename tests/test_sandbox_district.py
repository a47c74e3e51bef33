"""The sample inventory is the sandbox district's first rows, so the quick start talks about real devices."""

from __future__ import annotations

from pathlib import Path

from orchestrator.inventory.devices import load_inventory
from orchestrator.sandbox.district import generate


def test_sample_inventory_matches_the_generated_district(repo_root: Path) -> None:
    inventory = load_inventory(repo_root / "inventory" / "devices.csv")
    generated = generate(devices=len(inventory.devices))
    for row, seeded in zip(inventory.devices, generated.devices, strict=True):
        expected = seeded.device.row()
        actual = row.row()
        expected.pop("inventoryStatus")
        assert {k: v for k, v in actual.items() if k != "inventoryStatus"} == expected


def test_sample_inventory_has_lost_stolen_and_found_devices_on_every_platform(repo_root: Path) -> None:
    inventory = load_inventory(repo_root / "inventory" / "devices.csv")
    lost = inventory.with_status("lost", "stolen")
    assert {d.platform for d in lost} == {"chromeos", "windows", "ios"}
    assert inventory.with_status("found")


def test_generator_reaches_the_requested_org_unit_count() -> None:
    assert len(generate(devices=10, ous=400).ous) >= 400
