"""Issue 19, "what was seen": each defect reproduced (these failed on the code before the fix)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from orchestrator.cli import main
from orchestrator.policy.loader import load_policies
from orchestrator.policy.models import IcsRule, MaintenanceWindow, SchoolCalendar
from orchestrator.schooltime.calendar import SchoolDays, match_rule
from orchestrator.schooltime.windows import WindowSchedule

REPO = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("America/Chicago")
D = dt.date.fromisoformat


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


def last_year(**fields: Any) -> SchoolCalendar:
    base: dict[str, Any] = {
        "kind": "SchoolCalendar",
        "name": "district",
        "timezone": "America/Chicago",
        "terms": [{"name": "2025-26", "first_day": "2025-08-14", "last_day": "2026-05-28"}],
    }
    base.update(fields)
    return SchoolCalendar.model_validate(base)


def daytime(days: SchoolDays, mode: str = "non_class_days") -> WindowSchedule:
    window = MaintenanceWindow.model_validate(
        {"kind": "MaintenanceWindow", "name": "daytime", "calendar": "district", "times": ["07:00-18:00"], "days": mode}
    )
    return WindowSchedule(window, days)


def write_ics(folder: Path, name: str, events: str) -> str:
    text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" + events.strip().replace("\n", "\r\n")
    (folder / name).write_text(text + "\r\nEND:VCALENDAR\r\n")
    return name


# 1. a calendar that has run out opens every window ---------------------------------------------------------


def test_last_years_calendar_on_a_september_school_day_keeps_the_daytime_window_closed() -> None:
    state = daytime(SchoolDays(last_year())).is_open(at("2026-09-09 10:00"))
    assert not state.open
    assert "unknown" in state.reason and "2026-05-28" in state.reason


# 2. a feed calendar without terms has no class days --------------------------------------------------------


def test_ics_calendar_without_terms_or_first_day_rules_does_not_validate() -> None:
    rules = [{"match": "no school", "means": "no_students"}]
    ics = {"file": "policies/calendars/prairie-valley-2026-27.ics", "rules": rules}
    with pytest.raises(ValidationError, match="first_day"):
        last_year(terms=[], ics=ics)


def test_class_days_listed_without_a_class_day_rule_does_not_validate() -> None:
    ics = {
        "file": "tests/data/ab-days.ics",
        "rules": [{"match": "no school", "means": "no_students"}],
        "class_days_listed": True,
    }
    with pytest.raises(ValidationError, match="class_day"):
        last_year(ics=ics)


# 3. cancelled events are obeyed ----------------------------------------------------------------------------


def test_cancelled_event_and_cancelled_instance_of_a_series_make_no_holiday(tmp_path: Path) -> None:
    name = write_ics(
        tmp_path,
        "cal.ics",
        """
BEGIN:VEVENT
UID:holiday@x
DTSTAMP:20260601T000000Z
DTSTART;VALUE=DATE:20261012
DTEND;VALUE=DATE:20261013
SUMMARY:No School - Fall Holiday
STATUS:CANCELLED
END:VEVENT
BEGIN:VEVENT
UID:flex@x
DTSTAMP:20260601T000000Z
DTSTART;VALUE=DATE:20260904
DTEND;VALUE=DATE:20260905
RRULE:FREQ=MONTHLY;BYDAY=1FR;COUNT=4
SUMMARY:Flex Friday - No School
END:VEVENT
BEGIN:VEVENT
UID:flex@x
DTSTAMP:20260601T000000Z
RECURRENCE-ID;VALUE=DATE:20261002
DTSTART;VALUE=DATE:20261002
DTEND;VALUE=DATE:20261003
SUMMARY:Flex Friday - No School
STATUS:CANCELLED
END:VEVENT
""",
    )
    calendar = last_year(
        terms=[{"name": "Fall", "first_day": "2026-08-13", "last_day": "2026-12-18"}],
        ics={"file": name, "rules": [{"match": "no school", "means": "no_students"}]},
    )
    days = SchoolDays(calendar, tmp_path)
    assert days.day(D("2026-10-12")).kind == "class_day"
    assert days.day(D("2026-10-02")).kind == "class_day"
    assert days.day(D("2026-09-04")).kind == "no_students"  # the series itself still counts
    assert days.day(D("2026-11-06")).kind == "no_students"


# 4. rule matching is too loose and order-sensitive --------------------------------------------------------


def test_break_does_not_match_breakfast_with_santa() -> None:
    rules = [IcsRule(match="break", means="no_students")]
    assert match_rule("Breakfast with Santa", rules) is None
    assert match_rule("Winter Break", rules) == "no_students"


def test_sample_rules_keep_the_daytime_window_closed_on_an_exam_teacher_workday_day() -> None:
    policies = load_policies(REPO / "policies")
    model, _ = policies.by_name(SchoolCalendar, "district-ics-2026-27")
    days = SchoolDays(model, REPO)
    exam_day = days.day(D("2026-12-16"))  # "Early Dismissal/Exams 6-12/Teacher Workday" in the sample feed
    assert exam_day.kind == "class_day", exam_day.describe()
    assert not daytime(days).is_open(at("2026-12-16 13:00")).open


def test_a_window_can_exclude_teacher_workdays() -> None:
    days = SchoolDays(
        last_year(
            terms=[{"name": "Fall", "first_day": "2026-08-13", "last_day": "2026-12-18"}],
            staff_only=[{"date": "2026-10-09", "reason": "Teacher workday"}],
        )
    )
    assert daytime(days, "non_class_days").is_open(at("2026-10-09 10:00")).open
    closed = daytime(days, "no_staff_days").is_open(at("2026-10-09 10:00"))
    assert not closed.open and "staff" in closed.reason


# 5. --at reads naive times in the config's zone, --days cannot start from a date --------------------------


def _repo_in_other_zone(tmp_path: Path) -> Path:
    target = tmp_path / "district"
    shutil.copytree(REPO / "policies", target / "policies")
    shutil.copytree(REPO / "inventory", target / "inventory")
    config = (REPO / "orchestrator.yaml").read_text().replace("America/Chicago", "America/Los_Angeles")
    (target / "orchestrator.yaml").write_text(config)
    return target


def test_windows_at_reads_a_naive_time_in_the_calendar_zone_and_prints_it(tmp_path: Path) -> None:
    target = _repo_in_other_zone(tmp_path)
    # 2026-11-24 21:30 Chicago is outside 22:00-05:00; in Los Angeles it would be 23:30 Chicago (open).
    result = CliRunner().invoke(
        main, ["--config", str(target / "orchestrator.yaml"), "windows", "--at", "2026-11-24T21:30"]
    )
    assert result.exit_code == 0, result.output
    assert "America/Chicago" in result.output
    assert "outside 22:00-05:00" in result.output


def test_windows_from_a_date_lists_that_dates_windows(tmp_path: Path) -> None:
    target = _repo_in_other_zone(tmp_path)
    result = CliRunner().invoke(
        main, ["--config", str(target / "orchestrator.yaml"), "windows", "--from", "2027-03-12", "--days", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "2027-03-13" in result.output and "2026-11" not in result.output
