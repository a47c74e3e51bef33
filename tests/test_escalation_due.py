"""Which lost devices are due for escalation: school days counted on the calendar of the device's school,
"lost since" from the device history, and no guess when the history does not say.

The sample calendar (policies/calendar.yaml, America/Chicago): Thanksgiving break 2026-11-25..27, then a
weekend. A device lost on Monday 2026-11-23 has one school day behind it on Tuesday 11-24 and on every day
until Monday 11-30 (two), Tuesday 12-01 (three).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from orchestrator.inventory.devices import load_inventory
from orchestrator.inventory.edits import HistoryEntry
from orchestrator.inventory.escalation import Escalations, find_escalations, lost_since
from orchestrator.policy.loader import load_policies
from orchestrator.schooltime.windows import build_school_days

REPO = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("America/Chicago")
LOST_MONDAY = "2026-11-23T15:00:00+00:00"  # 09:00 in Chicago
ESCALATE = """
escalate:
  after_school_days: {days}
  action: {action}
  window: break-days
"""


def at(day: str, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), tzinfo=TZ)


def lost(serial: str, when: str = LOST_MONDAY, old: str = "active", new: str = "lost") -> HistoryEntry:
    return HistoryEntry(when, serial, "inventoryStatus", old, new, "cli", "tech")


@pytest.fixture
def district(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    return tmp_path


def due_at(
    root: Path,
    now: dt.datetime,
    history: list[HistoryEntry],
    days: int = 3,
    action: str = "powerwash",
    google: str = "none",
) -> Escalations:
    """Escalations with the sample policy; Chromebooks are left enabled (google.action: none) unless asked."""
    policy = root / "policies" / "lost-devices.yaml"
    text = policy.read_text().split("\nescalate:")[0].rstrip("\n") + "\n"
    text = text.replace("google:\n  action: disable\n", f"google:\n  action: {google}\n")
    policy.write_text(text + ESCALATE.format(days=days, action=action))
    policies = load_policies(root / "policies")
    inventory = load_inventory(REPO / "inventory" / "devices.csv")
    calendars = build_school_days(policies, root, refresh=False)
    return find_escalations(policies, inventory, history, {"break-days": calendars["district-2026-27"]}, now)


@pytest.mark.parametrize(
    ("day", "school_days"),
    [("2026-11-24", 1), ("2026-11-27", 1), ("2026-11-29", 1), ("2026-11-30", 2), ("2026-12-01", 3)],
)
def test_school_days_skip_the_holiday_and_the_weekend(district: Path, day: str, school_days: int) -> None:
    found = due_at(district, at(day), [lost("CB0000011")], days=1)
    assert found.due["CB0000011"].school_days == school_days


def test_n_minus_one_school_days_is_not_queued_and_n_is(district: Path) -> None:
    history = [lost("CB0000011")]
    # eight calendar days after the loss, but only two school days: Thanksgiving and a weekend came between
    assert "CB0000011" not in due_at(district, at("2026-11-30", 23), history).due
    due = due_at(district, at("2026-12-01", 6), history).due["CB0000011"]
    assert (due.since, due.school_days, due.action, due.window) == (dt.date(2026, 11, 23), 3, "powerwash", "break-days")
    assert due.reason == "lost since 2026-11-23, 3 school days"
    assert due.source.endswith("lost-devices.yaml:24")


def test_the_loss_day_is_the_local_date_of_the_history_entry(district: Path) -> None:
    # 04:30 UTC on 11-24 is still Monday 11-23 in Chicago: Tuesday is its first school day
    history = [lost("CB0000011", when="2026-11-24T04:30:00+00:00")]
    assert due_at(district, at("2026-11-24"), history, days=1).due["CB0000011"].since == dt.date(2026, 11, 23)


def test_a_lost_device_without_history_is_never_escalated_and_the_plan_says_so(district: Path) -> None:
    found = due_at(district, at("2027-03-01"), [lost("CB0000011")], days=1)
    assert set(found.due) == {"CB0000011"}
    (undated,) = [n for n in found.notes if "no entry saying when" in n]
    for serial in ("PF0000009", "DM0000010", "CB0000012"):
        assert serial in undated
    assert "student" not in " ".join(found.notes) and "@" not in undated


def test_found_then_lost_again_counts_from_the_second_loss(district: Path) -> None:
    history = [
        lost("CB0000011"),
        lost("CB0000011", when="2026-11-24T20:00:00+00:00", old="lost", new="found"),
        lost("CB0000011", when="2026-11-30T20:00:00+00:00"),
    ]
    assert "CB0000011" not in due_at(district, at("2026-12-02"), history).due
    assert due_at(district, at("2026-12-03"), history).due["CB0000011"].since == dt.date(2026, 11, 30)


def test_lost_then_reported_stolen_keeps_the_first_date(district: Path) -> None:
    history = [lost("CB0000012"), lost("CB0000012", when="2026-11-30T20:00:00+00:00", old="lost", new="stolen")]
    assert due_at(district, at("2026-12-01"), history).due["CB0000012"].since == dt.date(2026, 11, 23)


def test_an_unreadable_history_time_is_no_date_rather_than_an_older_one(district: Path) -> None:
    history = [lost("CB0000011", when="2026-10-01T00:00:00+00:00"), lost("CB0000011", when="yesterday", old="found")]
    found = due_at(district, at("2026-12-01"), history, days=1)
    assert "CB0000011" not in found.due
    assert any("CB0000011" in note for note in found.notes)


def test_a_history_that_ends_found_while_the_inventory_says_lost_is_no_date(district: Path) -> None:
    history = [lost("CB0000011"), lost("CB0000011", when="2026-11-24T20:00:00+00:00", old="lost", new="found")]
    found = due_at(district, at("2026-12-15"), history, days=1)
    assert "CB0000011" not in found.due


def test_wipe_keeps_enrollment_only_on_windows_so_ipads_are_named_not_escalated(district: Path) -> None:
    history = [lost("DM0000010"), lost("PF0000009", new="stolen"), lost("CB0000011")]
    found = due_at(district, at("2026-12-01"), history, action="wipe")
    assert set(found.due) == {"PF0000009", "CB0000011"}
    (note,) = [n for n in found.notes if "does not exist for ios" in n]
    assert "DM0000010" in note


@pytest.mark.parametrize("action", ["powerwash", "wipe"])
def test_a_chromebook_the_lockdown_disables_stays_disabled_and_is_named_not_sent_a_command(
    district: Path, action: str
) -> None:
    history = [lost("DM0000010"), lost("PF0000009", new="stolen"), lost("CB0000011")]
    found = due_at(district, at("2026-12-01"), history, action=action, google="disable")
    assert "CB0000011" not in found.due and "PF0000009" in found.due
    (note,) = [n for n in found.notes if "stay disabled" in n]
    assert "CB0000011" in note and "1 Chromebook(s)" in note
    assert set(due_at(district, at("2026-12-01"), history, action="deprovision", google="disable").due) == set(
        ["DM0000010", "PF0000009", "CB0000011"]
    )


def test_lost_lost_history_is_read_with_lost_since() -> None:
    since = lost_since([lost("A1"), lost("B2", new="stolen"), lost("A1", old="lost", new="retired")], TZ)
    assert since == {"B2": dt.date(2026, 11, 23)}


def test_a_window_without_a_calendar_escalates_nothing_and_says_so_once(district: Path) -> None:
    policies = load_policies(district / "policies")
    inventory = load_inventory(REPO / "inventory" / "devices.csv")
    history = [lost("CB0000011"), lost("CB0000012")]
    found = find_escalations(policies, inventory, history, {}, at("2027-03-01"))
    assert found.due == {}
    assert found.notes == ["escalate lost-devices: window break-days has no school calendar here; nothing escalated"]
