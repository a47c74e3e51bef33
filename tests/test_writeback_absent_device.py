"""Write-back to a device the console does not have (purged, a typo'd serial) or has twice: held out of the plan
with a note naming the serial and why, never sent, and the apply stays green (like a lockdown's "not found"),
through the command line, the real googleapiclient and the Google emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_writeback_plan_apply import WRITE_BACK, District, make_district

PURGED, TWICE, RETAGGED = "CB0000007", "CB0000011", "CB0000013"


@pytest.fixture
def district(tmp_path: Path) -> Iterator[District]:
    made = make_district(tmp_path, WRITE_BACK)
    state = made.google.state
    purged = made.console(PURGED)["deviceId"]  # deprovisioned and purged from the Admin console
    del state.devices[purged]
    state.order.remove(purged)
    twin = {**made.console(TWICE), "deviceId": "twin-of-" + TWICE}  # two live records share the serial
    state.devices[twin["deviceId"]] = twin
    state.order.append(twin["deviceId"])
    made.console(RETAGGED)["annotatedAssetId"] = "TYPO-13"  # one real change beside them
    state.version += 1
    yield made
    made.google.stop()


def test_a_write_back_to_a_missing_or_doubled_serial_is_held_not_sent(district: District) -> None:
    student = district.inventory()[PURGED].assignedStudent
    planned = json.loads(district.ok("plan", "--backend", "google", "--format", "json"))
    assert [c["id"] for c in planned["changes"]] == [f"google/device_annotations/{RETAGGED}"]
    held = {h["change"]["id"]: (h["reason"], h["detail"]) for h in planned["held"]}
    assert held == {
        f"google/device_annotations/{PURGED}": ("not found", "serial not found in google"),
        f"google/device_annotations/{TWICE}": ("ambiguous", "serial matches 2 live records in google; left alone"),
    }
    shown = district.ok("plan", "--backend", "google")
    assert f"held: google/device_annotations/{PURGED}: serial not found in google" in shown
    assert f"held: google/device_annotations/{TWICE}: serial matches 2 live records in google" in shown
    assert student not in shown
    markdown = district.ok("plan", "--backend", "google", "--format", "markdown")
    assert PURGED in markdown and TWICE in markdown and student not in markdown

    plan_file = district.root / "plan.json"
    district.ok("plan", "--backend", "google", "--out", str(plan_file))
    district.google.reset_counts()
    applied = district.run("apply", str(plan_file))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert district.google.calls["chromeosdevices.patch"] == 1  # the retagged device only
    assert district.console(RETAGGED)["annotatedAssetId"] == "PV-000013"
    assert student not in applied.stdout + applied.stderr
    assert district.run("apply", "--yes", "--backend", "google").returncode == 0  # every night: green, no send
    assert district.google.calls["chromeosdevices.patch"] == 1

    synced = json.loads(district.ok("inventory", "sync", "--format", "json"))
    assert {"serial": PURGED, "platform": "chromeos", "console": "google"} in synced["not_in_console"]
    assert [a["serial"] for a in synced["ambiguous"]] == [TWICE]
