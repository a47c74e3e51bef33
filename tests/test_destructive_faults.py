"""Destructive actions exactly once under the faults the services really produce (issue 18 items 1-3).

The Graph emulator injects three shapes of fault around Intune wipes and counts, per device, every wipe that
really ran (`GraphState.executed`): (a) an inner `$batch` wipe that executes and then answers 503; (b) an outer
500/502 (or a dropped connection) around a `$batch` whose items executed; (c) throttled (429) items whose re-send
fails. Several maintenance runs go through the real `Executor`, journal and IntuneBackend; whatever the
faults, no device may be wiped twice, and a wipe that answered 204 is reported `succeeded`.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from orchestrator.backends.intune.backend import IntuneBackend
from orchestrator.backends.intune.config import IntuneConfig
from orchestrator.backends.pacing import RetryPolicy
from orchestrator.backends.registry import CATALOG
from orchestrator.core.resources import Change, ChangeResult, ResourceId
from orchestrator.engine.apply import ApplyReport, Executor, GateOptions
from orchestrator.engine.journal import Journal
from orchestrator.engine.plan import Plan
from orchestrator.engine.reconcile import make_plan
from orchestrator.inventory.devices import load_inventory
from orchestrator.policy.loader import load_policies
from orchestrator.sandbox.district import generate
from orchestrator.sandbox.graph_emulator import RESET, GraphEmulator

REPO = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("America/Chicago")
BREAK = dt.datetime(2026, 11, 25, 8, 0, tzinfo=TZ)  # Thanksgiving break: window break-days open 07:00-18:00
RUNS = 4


def lab_serials() -> list[str]:
    """Every active Windows device of the sample inventory (22 of them)."""
    lines = (REPO / "inventory" / "devices.csv").read_text().splitlines()[1:]
    rows = [line.split(",") for line in lines]
    return [r[1] for r in rows if r[7] == "windows" and r[13] == "active"]


def reimage_policy(serials: list[str], method: str = "autopilot_reset") -> str:
    listed = "\n".join(f"    - {s}" for s in serials)
    return (
        "kind: Reimage\nname: lab-faults\nwindow: break-days\nrequest: 2026-faults\n"
        f"devices:\n  serials:\n{listed}\nintune:\n  method: {method}\n"
        "batch_size: 10\nmax_devices_per_window: 100\n"
    )


@dataclass
class Fleet:
    root: Path
    emulator: GraphEmulator
    intune: IntuneBackend
    journal: Journal

    def plan(self) -> Plan:
        return make_plan(
            catalog=CATALOG,
            policies=load_policies(self.root / "policies"),
            inventory=load_inventory(self.root / "inventory" / "devices.csv"),
            backends={"intune": self.intune},
            journal=self.journal,
            scopes=("maintenance",),
        )

    def run(self, n: int, **gates: bool) -> ApplyReport:
        """One maintenance run: re-plan, then apply inside the window (an hour later each time)."""
        executor = Executor(
            catalog=CATALOG,
            backends={"intune": self.intune},
            journal=self.journal,
            policies=load_policies(self.root / "policies"),
            repo_root=self.root,
        )
        return executor.apply(
            self.plan(), kind="maintenance", gates=GateOptions(now=BREAK + dt.timedelta(hours=n), **gates)
        )

    def wipes(self) -> dict[str, int]:
        """Serial → wipes that really ran in the emulated tenant."""
        devices = self.emulator.state.devices
        return {devices[d]["serialNumber"]: n for d, n in self.emulator.state.destructive_counts().items()}


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    root = tmp_path / "district"
    shutil.copytree(REPO / "policies", root / "policies")
    shutil.copytree(REPO / "inventory", root / "inventory")
    (root / "policies" / "reimage.yaml").write_text(reimage_policy(lab_serials()))
    emulator = GraphEmulator.start_local(generate(devices=120, seed=2026))
    # No real waiting in tests: throttling back-off and the write pacer sleep through a no-op.
    intune = IntuneBackend(
        IntuneConfig(graph_endpoint=emulator.url), sleep=lambda s: None, policy=RetryPolicy(attempts=3), timeout=5.0
    )
    journal = Journal(tmp_path / "journal.db")
    try:
        yield Fleet(root, emulator, intune, journal)
    finally:
        journal.close()
        intune.close()
        emulator.stop()


def run_all(fleet: Fleet, **gates: bool) -> list[ApplyReport]:
    return [fleet.run(n, **gates) for n in range(RUNS)]


def assert_each_wiped_exactly_once(fleet: Fleet) -> None:
    wipes = fleet.wipes()
    twice = sorted(s for s, n in wipes.items() if n > 1)
    assert twice == [], f"{len(twice)} device(s) wiped more than once: {twice}"
    assert sorted(wipes) == sorted(lab_serials()), "every device wiped once, none skipped"


# ---------------------------------------------------------------------------------------------- shape (a)


def test_inner_wipe_that_runs_then_answers_503_is_unknown_and_never_wiped_twice(fleet: Fleet) -> None:
    rule = fleet.emulator.inject("POST managedDevices/wipe", 503, rate=0.3, seed=3)

    reports = run_all(fleet)

    assert rule.struck >= 3, "the fault really struck"
    first = reports[0]
    assert first.counts()["unknown"] == rule.struck
    assert "failed" not in first.counts()
    assert_each_wiped_exactly_once(fleet)
    for report in reports[1:]:
        assert "succeeded" not in report.counts() and "failed" not in report.counts()


# ---------------------------------------------------------------------------------------------- shape (b)


@pytest.mark.parametrize("status", [500, 502, 503, 504, RESET])
def test_outer_5xx_or_dropped_connection_around_an_executed_batch_is_unknown(fleet: Fleet, status: int) -> None:
    fleet.emulator.inject("POST $batch", status, on_calls={1})  # the first chunk of 10 ran, then the error

    reports = run_all(fleet)

    first = reports[0]
    assert first.counts() == {"unknown": 10, "succeeded": len(lab_serials()) - 10}
    assert_each_wiped_exactly_once(fleet)


def test_outer_400_around_a_batch_that_did_not_run_is_failed_and_sent_again(fleet: Fleet) -> None:
    fleet.emulator.inject("POST $batch", 400, on_calls={1}, after_effect=False)

    first, *later = run_all(fleet)

    assert first.counts() == {"failed": 10, "succeeded": len(lab_serials()) - 10}
    assert later[0].counts() == {"succeeded": 10}
    assert_each_wiped_exactly_once(fleet)


# ---------------------------------------------------------------------------------------------- shape (c)


@pytest.mark.parametrize("status", [500, 502, 503, RESET])
def test_throttled_items_whose_resend_fails_keep_the_other_results(fleet: Fleet, status: int) -> None:
    # Items 2 and 5 of the first chunk are throttled (not performed); their re-send runs and then fails.
    fleet.emulator.inject("POST managedDevices/wipe", 429, on_calls={2, 5}, after_effect=False)
    fleet.emulator.inject("POST $batch", status, on_calls={2})

    reports = run_all(fleet)

    first = reports[0]
    assert first.counts() == {"succeeded": len(lab_serials()) - 2, "unknown": 2}
    assert_each_wiped_exactly_once(fleet)


def test_throttled_items_whose_resend_is_refused_are_failed_and_sent_again(fleet: Fleet) -> None:
    fleet.emulator.inject("POST managedDevices/wipe", 429, on_calls={2, 5}, after_effect=False)
    fleet.emulator.inject("POST $batch", 400, on_calls={2}, after_effect=False)

    first, second, *_ = run_all(fleet)

    assert first.counts() == {"succeeded": len(lab_serials()) - 2, "failed": 2}
    assert second.counts() == {"succeeded": 2}
    assert_each_wiped_exactly_once(fleet)


def test_items_throttled_until_retries_run_out_are_failed_and_sent_next_run(fleet: Fleet) -> None:
    fleet.emulator.inject("POST managedDevices/wipe", 429, on_calls={1, 11, 12}, after_effect=False)

    first, second, *_ = run_all(fleet)

    assert first.counts() == {"succeeded": len(lab_serials()) - 1, "failed": 1}
    assert second.counts() == {"succeeded": 1}
    assert_each_wiped_exactly_once(fleet)


# ---------------------------------------------------------------------------------------------- definite answers


def test_inner_4xx_answers_prove_the_wipe_did_not_run(fleet: Fleet) -> None:
    fleet.emulator.inject("POST managedDevices/wipe", 400, on_calls={1}, after_effect=False)
    fleet.emulator.inject("POST managedDevices/wipe", 404, on_calls={3}, after_effect=False)

    first, second, *_ = run_all(fleet)

    assert first.counts() == {"succeeded": len(lab_serials()) - 2, "failed": 2}
    assert second.counts() == {"succeeded": 2}
    assert_each_wiped_exactly_once(fleet)


def test_retire_under_inner_503_is_unknown(fleet: Fleet) -> None:
    (fleet.root / "policies" / "reimage.yaml").write_text(reimage_policy(lab_serials()[:3], "retire"))
    fleet.emulator.inject("POST managedDevices/retire", 503, on_calls={2})

    first, *_ = run_all(fleet, acknowledge_deprovision=True)

    assert first.counts() == {"succeeded": 2, "unknown": 1}
    assert max(fleet.wipes().values()) == 1


# ---------------------------------------------------------------------------------------------- settle


def wipe_change(serial: str, **meta: object) -> Change:
    return Change(
        id=ResourceId("intune", "reimage", f"{serial}|2026-faults"),
        op="action",
        before=None,
        after={"action": "wipe", "keepEnrollmentData": True, "keepUserData": False},
        destructive=True,
        meta=dict(meta),
    )


def device_of(fleet: Fleet, serial: str) -> dict:
    (record,) = [d for d in fleet.emulator.state.devices.values() if d["serialNumber"] == serial]
    return record


def test_settle_asks_intune_whether_an_unknown_wipe_ran(fleet: Fleet) -> None:
    ran, refused, silent, stale = lab_serials()[:4]
    fleet.emulator.inject("POST managedDevices/wipe", 503, on_calls={1})
    fleet.emulator.inject("POST managedDevices/wipe", 503, on_calls={2}, after_effect=False)
    sent_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    changes = [wipe_change(s, sent_at=sent_at.isoformat()) for s in (ran, refused)]
    results: list[ChangeResult] = []
    fleet.intune.apply(changes, lambda c: None, results.append)
    assert [r.state for r in results] == ["unknown", "unknown"]
    # The console tells: `ran` has a pending wipe since the request; `refused` a wipe that failed on the device.
    device_of(fleet, refused)["deviceActionResults"] = [
        {"actionName": "wipe", "actionState": "failed", "startDateTime": dt.datetime.now(dt.UTC).isoformat()}
    ]
    # `stale`: an old wipe months ago says nothing about a request sent now; `silent`: no record at all.
    device_of(fleet, stale)["deviceActionResults"] = [
        {"actionName": "wipe", "actionState": "done", "startDateTime": "2026-01-10T10:00:00Z"}
    ]
    device_of(fleet, stale)["managementState"] = "managed"
    asked = [*changes, *(wipe_change(s, sent_at=sent_at.isoformat()) for s in (silent, stale))]

    settled = {r.change_key: r for r in fleet.intune.settle(asked)}

    assert settled[asked[0].key].state == "succeeded"
    assert settled[asked[0].key].response["actionState"] == "pending"
    assert settled[asked[1].key].state == "failed"
    assert asked[2].key not in settled and asked[3].key not in settled, "cannot tell: left unknown"
    assert fleet.wipes() == {ran: 1}, "settling never sends anything"


def test_settle_without_a_sent_time_trusts_only_a_wipe_in_flight(fleet: Fleet) -> None:
    pending, done = lab_serials()[:2]
    device_of(fleet, pending)["managementState"] = "wipePending"
    device_of(fleet, done)["deviceActionResults"] = [
        {"actionName": "wipe", "actionState": "done", "startDateTime": "2026-11-25T14:00:00Z"}
    ]
    asked = [wipe_change(pending), wipe_change(done)]

    settled = {r.change_key: r.state for r in fleet.intune.settle(asked)}

    assert settled == {asked[0].key: "succeeded"}


def test_settle_ignores_what_is_not_a_destructive_intune_change(fleet: Fleet) -> None:
    other = replace(wipe_change(lab_serials()[0]), id=ResourceId("intune", "device_lock", lab_serials()[0]))
    assert fleet.intune.settle([other]) == []
