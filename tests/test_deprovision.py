"""Deprovision (Google batchChangeStatus DEPROVISION) and retire (Intune) through a Reimage policy.

DESIGN §4: deprovision needs an open window *and* an explicit acknowledgement; `override_blast_radius`
never stands in for it. Runs against the Google and Graph emulators with the sample district.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from test_maintenance_e2e import BREAK_MORNING, CLASS_DAY, Fleet, make_fleet

from orchestrator.backends.google.compiler import compile_google
from orchestrator.backends.intune.compiler import compile_intune
from orchestrator.cli.render import render_markdown, render_text
from orchestrator.core.errors import PolicyError
from orchestrator.inventory.devices import load_inventory
from orchestrator.policy.loader import load_policies

RETIRE = """\
kind: Reimage
name: retire-broken
description: Devices written off after the 2026 audit
window: break-days
request: 2026-audit-retire
devices:
  serials: [CB0000001, PF0000009]
google:
  method: deprovision
intune:
  method: retire
batch_size: 5
max_devices_per_window: 10
"""
RETIRED = ("CB0000001", "PF0000009")


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    for fleet in make_fleet(tmp_path):
        fleet.add_policy("retire.yaml", RETIRE)
        # A console record whose serial merely starts with the retired one must never be touched.
        state = fleet.google_emulator.state
        first = state.devices[state.order[0]]
        assert first["serialNumber"] == "CB0000001"
        state.devices["lookalike0001"] = {**first, "deviceId": "lookalike0001", "serialNumber": "CB00000011"}
        state.order.append("lookalike0001")
        yield fleet


def retire_changes(plan):
    return {c.id.key.split("|", 1)[0]: c for c in plan.changes if c.policy == "retire-broken"}


def chromebook_status(fleet: Fleet, serial: str) -> str:
    (status,) = [d["status"] for d in fleet.google_emulator.state.devices.values() if d["serialNumber"] == serial]
    return status


def test_policies_can_ask_for_deprovision_and_retire_and_compile_them_as_deprovisions(tmp_path: Path) -> None:
    (tmp_path / "retire.yaml").write_text(RETIRE)
    (tmp_path / "windows.yaml").write_text((Path(__file__).parent.parent / "policies" / "windows.yaml").read_text())
    (tmp_path / "calendar.yaml").write_text((Path(__file__).parent.parent / "policies" / "calendar.yaml").read_text())
    policies = load_policies(tmp_path)
    inventory = load_inventory(Path(__file__).parent.parent / "inventory" / "devices.csv")

    (google,) = [r for r in compile_google(policies, inventory) if r.id.type == "reimage"]
    (intune,) = [r for r in compile_intune(policies, inventory) if r.id.type == "reimage"]

    assert google.id.key == "CB0000001|2026-audit-retire"
    assert google.value == {"command": "DEPROVISION", "deprovisionReason": "DEPROVISION_REASON_RETIRING_DEVICE"}
    assert intune.id.key == "PF0000009|2026-audit-retire"
    assert intune.value == {"action": "retire"}
    assert google.meta["method"] == intune.meta["method"] == "deprovision"


def test_an_unknown_method_is_still_rejected(tmp_path: Path) -> None:
    (tmp_path / "retire.yaml").write_text(RETIRE.replace("method: deprovision", "method: destroy"))
    with pytest.raises(PolicyError) as raised:
        load_policies(tmp_path)
    assert "google.method" in str(raised.value) and "deprovision" in str(raised.value)


def test_the_plan_shows_deprovision_as_destructive_before_anything_runs(fleet: Fleet) -> None:
    plan = fleet.plan()
    changes = retire_changes(plan)

    assert sorted(changes) == sorted(RETIRED)
    assert all(c.destructive and c.meta["method"] == "deprovision" for c in changes.values())
    markdown = render_markdown(plan)
    assert "google/reimage/CB0000001\\|2026-audit-retire" in markdown  # the pipe escaped for GitHub's tables
    assert '`+ command: "DEPROVISION"`<br>`+ deprovisionReason: "DEPROVISION_REASON_RETIRING_DEVICE"`' in markdown
    assert '`intune/reimage/PF0000009\\|2026-audit-retire` **destructive** | `+ action: "retire"`' in markdown
    out = io.StringIO()
    render_text(plan, Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert "google/reimage/CB0000001|2026-audit-retire (destructive)" in text
    assert "intune/reimage/PF0000009|2026-audit-retire (destructive)" in text
    assert fleet.google_emulator.calls["chromeosdevices.batchChangeStatus"] == 0
    assert fleet.graph_emulator.calls["POST managedDevices/retire"] == 0


def test_without_the_acknowledgement_deprovision_is_refused_even_in_an_open_window(fleet: Fleet) -> None:
    plan = fleet.plan()
    report = fleet.apply(plan, BREAK_MORNING, override_blast_radius=True)

    for change in retire_changes(plan).values():
        assert report.states[change.key] == "deferred"
        assert "deprovision needs an explicit acknowledgement (--acknowledge-deprovision)" in report.details[change.key]
    # The ordinary lab reimages in the same plan are not held back by it.
    assert all(report.states[c.key] == "succeeded" for c in plan.changes if c.policy == "jefferson-lab-reset")
    assert fleet.google_emulator.calls["chromeosdevices.batchChangeStatus"] == 0
    assert fleet.graph_emulator.calls["POST managedDevices/retire"] == 0
    assert chromebook_status(fleet, "CB0000001") == "ACTIVE"
    assert sorted(retire_changes(fleet.plan())) == sorted(RETIRED), "still queued"


def test_the_acknowledgement_does_not_open_a_closed_window(fleet: Fleet) -> None:
    plan = fleet.plan()
    report = fleet.apply(plan, CLASS_DAY, acknowledge_deprovision=True)

    for change in retire_changes(plan).values():
        assert report.states[change.key] == "deferred"
        assert "window break-days closed" in report.details[change.key]
    assert fleet.google_emulator.calls["chromeosdevices.batchChangeStatus"] == 0
    assert fleet.graph_emulator.calls["POST managedDevices/retire"] == 0


def test_acknowledged_deprovision_in_an_open_window_retires_exactly_the_named_devices(fleet: Fleet) -> None:
    plan = fleet.plan()
    report = fleet.apply(plan, BREAK_MORNING, acknowledge_deprovision=True)

    changes = retire_changes(plan)
    assert {s: report.states[c.key] for s, c in changes.items()} == {s: "succeeded" for s in RETIRED}
    # Google: one batchChangeStatus DEPROVISION; the emulator refuses one without a deprovisionReason.
    assert fleet.google_emulator.calls["chromeosdevices.batchChangeStatus"] == 1
    assert chromebook_status(fleet, "CB0000001") == "DEPROVISIONED"
    assert chromebook_status(fleet, "CB00000011") == "ACTIVE", "a serial is never matched as a prefix"
    deprovisioned = [d for d in fleet.google_emulator.state.devices.values() if d["status"] == "DEPROVISIONED"]
    assert [d["serialNumber"] for d in deprovisioned] == ["CB0000001"]
    response = fleet.journal_responses(report.run_id)["google/reimage/CB0000001|2026-audit-retire"]
    assert response["action"] == "DEPROVISION" and response["deprovisionReason"] == "DEPROVISION_REASON_RETIRING_DEVICE"
    # Intune: retire, not wipe, for the PC.
    assert fleet.graph_emulator.calls["POST managedDevices/retire"] == 1
    assert fleet.intune_record("PF0000009")["managementState"] == "retirePending"
    assert fleet.wipes() == 2, "only the two lab PCs of jefferson-lab-reset were wiped"

    assert retire_changes(fleet.plan()) == {}, "nothing left to retire"
    again = fleet.apply(plan, BREAK_MORNING + dt.timedelta(hours=1), acknowledge_deprovision=True)
    assert {again.states[c.key] for c in changes.values()} == {"skipped"}
    assert fleet.google_emulator.calls["chromeosdevices.batchChangeStatus"] == 1


def test_sample_policies_stay_valid(repo_root: Path) -> None:
    policies = load_policies(repo_root / "policies")
    assert [p.model.name for p in policies.policies if p.model.kind == "Reimage"] == ["jefferson-lab-reset"]
