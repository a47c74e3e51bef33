"""Maintenance windows: which nights open, blackouts, reasons, DST, search."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from orchestrator.policy.loader import load_policies
from orchestrator.policy.models import MaintenanceWindow, SchoolCalendar
from orchestrator.schooltime.calendar import SchoolDays
from orchestrator.schooltime.windows import WindowSchedule, describe_windows, explain, local_instant

REPO = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("America/Chicago")
UTC = dt.UTC
D = dt.date.fromisoformat


def at(text: str) -> dt.datetime:
    """A local Chicago time, like "2026-12-03 23:00"."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


def school_days(**fields: Any) -> SchoolDays:
    base: dict[str, Any] = {
        "kind": "SchoolCalendar",
        "name": "district",
        "timezone": "America/Chicago",
        "terms": [
            {"name": "Fall semester", "first_day": "2026-08-13", "last_day": "2026-12-18"},
            {"name": "Spring semester", "first_day": "2027-01-06", "last_day": "2027-05-27"},
        ],
        "no_school": [
            {"from": "2026-11-25", "to": "2026-11-27", "reason": "Thanksgiving break"},
            {"from": "2026-12-21", "to": "2027-01-04", "reason": "Winter break"},
        ],
        "staff_only": [{"date": "2027-01-05", "reason": "Teacher workday"}],
        "testing_days": [{"from": "2027-04-19", "to": "2027-04-23", "reason": "State testing window"}],
        "schools": {"jefferson-high": {"class_days": [{"date": "2026-11-25", "reason": "Jefferson make-up"}]}},
    }
    base.update(fields)
    return SchoolDays(SchoolCalendar.model_validate(base))


def schedule(calendar: SchoolDays | None = None, **fields: Any) -> WindowSchedule:
    base: dict[str, Any] = {
        "kind": "MaintenanceWindow",
        "name": "overnight",
        "calendar": "district",
        "times": ["22:00-05:00"],
        "days": "nights_before_non_class_days",
    }
    base.update(fields)
    return WindowSchedule(MaintenanceWindow.model_validate(base), calendar or school_days())


def test_night_before_a_weekend_is_open_and_a_school_night_is_closed_with_reason() -> None:
    window = schedule()
    friday = window.is_open(at("2026-12-04 23:30"))
    assert friday.open
    assert friday.interval == (at("2026-12-04 22:00"), at("2026-12-05 05:00"))
    assert "2026-12-05 has no students (weekend)" in friday.reason
    thursday = window.is_open(at("2026-12-03 23:30"))
    assert not thursday.open and thursday.interval is None
    assert thursday.reason == (
        "the night of 2026-12-03 is before a class day: 2026-12-04 is a class day (Fall semester)"
    )


def test_crossing_midnight_range_belongs_to_the_night_it_starts() -> None:
    window = schedule()
    # 03:00 Saturday is part of Friday's night, 03:00 Friday is part of Thursday's (closed) night
    assert window.is_open(at("2026-12-05 03:00")).open
    assert not window.is_open(at("2026-12-04 03:00")).open
    assert window.is_open(at("2026-12-05 04:59")).open
    assert not window.is_open(at("2026-12-05 05:00")).open  # end is exclusive


def test_outside_the_times_says_so() -> None:
    state = schedule().is_open(at("2026-12-05 12:00"))
    assert (state.open, state.reason) == (False, "outside 22:00-05:00")


def test_night_before_a_terms_first_day_is_never_open() -> None:
    window = schedule()
    assert not window.is_open(at("2027-01-05 23:00")).open
    assert "2027-01-06 is a class day (Spring semester)" in window.is_open(at("2027-01-05 23:00")).reason
    assert not window.is_open(at("2026-08-12 23:00")).open
    summer = window.is_open(at("2026-08-11 23:00"))  # 08-12 is outside every term and nothing names it
    assert not summer.open and "unknown" in summer.reason
    listed = schedule(school_days(no_school=[{"from": "2026-06-01", "to": "2026-08-12", "reason": "Summer"}]))
    assert listed.is_open(at("2026-08-11 23:00")).open  # a summer the calendar names is known


def test_no_window_opens_the_day_or_night_before_a_testing_day() -> None:
    days = school_days(
        no_school=[{"from": "2027-04-16", "to": "2027-04-19", "reason": "Staff PD"}],
        testing_days=[{"from": "2027-04-20", "to": "2027-04-23", "reason": "State testing window"}],
    )
    daytime = schedule(days, times=["07:00-18:00"], days="non_class_days")
    assert daytime.is_open(at("2027-04-18 10:00")).open
    before = daytime.is_open(at("2027-04-18 10:00") + dt.timedelta(days=1))
    assert before.reason == "blackout: the night before testing day 2027-04-20 (State testing window)"
    assert not schedule(days).is_open(at("2027-04-19 23:00")).open


def test_non_class_days_window_closed_on_a_class_day_open_on_a_holiday() -> None:
    window = schedule(times=["07:00-18:00"], days="non_class_days")
    closed = window.is_open(at("2026-12-03 10:00"))
    assert closed.reason == "2026-12-03 is a class day (Fall semester)"
    holiday = window.is_open(at("2026-11-26 10:00"))
    assert holiday.open and "Thanksgiving break" in holiday.reason


def test_staff_only_day_counts_as_no_students_and_the_reason_says_staff_only() -> None:
    window = schedule(times=["07:00-18:00"], days="non_class_days")
    state = window.is_open(at("2027-01-05 10:00"))
    assert state.open
    assert "staff-only day" in state.reason and "Teacher workday" in state.reason


def test_days_before_term_start_blackout_names_the_term_and_distance() -> None:
    window = schedule(days="any_night", blackouts={"days_before_term_start": 2, "testing_days": False})
    # the night of 01-03 runs into 01-04, which is 2 days before the spring term
    state = window.is_open(at("2027-01-03 23:00"))
    assert not state.open
    assert state.reason == "blackout: 2027-01-04 is 2 days before Spring semester starts 2027-01-06"
    assert window.is_open(at("2027-01-02 23:00")).open  # touches 01-02 and 01-03 only
    assert "1 day before" in window.is_open(at("2027-01-05 23:00")).reason


def test_days_before_term_start_blackout_covers_daytime_windows_on_pre_term_workdays() -> None:
    window = schedule(times=["07:00-18:00"], days="non_class_days", blackouts={"days_before_term_start": 3})
    assert not window.is_open(at("2027-01-05 10:00")).open
    assert not window.is_open(at("2027-01-03 10:00")).open
    assert window.is_open(at("2027-01-02 10:00")).open


def test_zero_days_before_term_start_disables_that_blackout() -> None:
    window = schedule(days="any_night", blackouts={"days_before_term_start": 0, "testing_days": False})
    assert window.is_open(at("2027-01-04 23:00")).open


def test_testing_day_blackout_includes_the_night_into_a_testing_morning() -> None:
    days = school_days(
        no_school=[{"date": "2027-04-19", "reason": "Staff PD"}],
        testing_days=[{"date": "2027-04-20", "reason": "State testing"}],
    )
    window = schedule(days, days="any_night")
    state = window.is_open(at("2027-04-19 23:00"))
    assert state.reason == "blackout: the night before testing day 2027-04-20 (State testing)"
    assert window.is_open(at("2027-04-18 23:00")).open
    morning = schedule(days, days="any_night", times=["01:00-05:00"])  # starts on 04-20 itself
    assert morning.is_open(at("2027-04-20 02:00")).reason == "blackout: 2027-04-20 is a testing day (State testing)"
    relaxed = schedule(days, days="any_night", blackouts={"testing_days": False})
    assert relaxed.is_open(at("2027-04-19 23:00")).open


def test_explicit_blackout_dates() -> None:
    window = schedule(blackouts={"dates": [{"date": "2026-12-05", "reason": "Board election servers"}]})
    state = window.is_open(at("2026-12-04 23:00"))
    assert state.reason == "blackout: 2026-12-05 (Board election servers)"


def test_dates_window_opens_only_on_listed_dates() -> None:
    window = schedule(days="dates", times=["08:00-12:00"], dates=[{"date": "2026-12-05", "reason": "lab reset"}])
    assert window.is_open(at("2026-12-05 09:00")).open
    assert window.is_open(at("2026-12-06 09:00")).reason == "2026-12-06 is not one of the window's dates"
    assert window.next_open(at("2026-12-06 09:00")) is None


def test_window_limited_to_schools_is_closed_for_other_schools_and_for_no_school() -> None:
    window = schedule(schools=["jefferson-high"])
    assert window.is_open(at("2026-12-04 23:00"), "jefferson-high").open
    assert "limited to jefferson-high" in window.is_open(at("2026-12-04 23:00"), "lincoln-elementary").reason
    assert not window.is_open(at("2026-12-04 23:00")).open


def test_school_override_class_day_closes_the_window_for_that_school_only() -> None:
    window = schedule()
    assert window.is_open(at("2026-11-24 23:00")).open
    state = window.is_open(at("2026-11-24 23:00"), "jefferson-high")
    assert not state.open and "Jefferson make-up" in state.reason


def test_fall_back_night_is_eight_hours_and_the_repeated_hour_is_inside() -> None:
    window = schedule(days="any_night")
    interval = window.is_open(at("2026-10-31 23:00")).interval
    assert interval is not None
    assert interval.duration == dt.timedelta(hours=8)
    assert interval.end.astimezone(UTC) == dt.datetime(2026, 11, 1, 11, 0, tzinfo=UTC)
    second_0115 = dt.datetime(2026, 11, 1, 7, 15, tzinfo=UTC)  # 01:15 CST, the second 01:15
    assert window.is_open(second_0115).interval == interval


def test_spring_forward_night_is_six_hours() -> None:
    window = schedule(days="any_night")
    interval = window.is_open(at("2027-03-13 23:00")).interval
    assert interval is not None
    assert interval.duration == dt.timedelta(hours=6)
    assert interval.start.astimezone(UTC) == dt.datetime(2027, 3, 14, 4, 0, tzinfo=UTC)
    assert interval.end.astimezone(UTC) == dt.datetime(2027, 3, 14, 10, 0, tzinfo=UTC)


def test_nonexistent_local_times_mean_the_first_instant_after_the_gap() -> None:
    transition = dt.datetime(2027, 3, 14, 8, 0, tzinfo=UTC)  # 02:00 CST becomes 03:00 CDT
    assert local_instant(D("2027-03-14"), dt.time(2, 30), TZ, "start").astimezone(UTC) == transition
    assert local_instant(D("2027-03-14"), dt.time(2, 30), TZ, "end").astimezone(UTC) == transition
    window = schedule(days="any_night", times=["02:30-04:00"])
    interval = window.next_open(at("2027-03-14 00:00"))
    assert interval is not None and interval.duration == dt.timedelta(hours=1)


def test_ambiguous_local_times_start_at_the_first_and_end_at_the_second_occurrence() -> None:
    first_0130 = dt.datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    second_0130 = dt.datetime(2026, 11, 1, 7, 30, tzinfo=UTC)
    assert local_instant(D("2026-11-01"), dt.time(1, 30), TZ, "start").astimezone(UTC) == first_0130
    assert local_instant(D("2026-11-01"), dt.time(1, 30), TZ, "end").astimezone(UTC) == second_0130
    window = schedule(days="any_night", times=["00:00-01:30"])
    interval = window.next_open(at("2026-10-31 23:00"))
    assert interval is not None and interval.duration == dt.timedelta(hours=2, minutes=30)


def test_next_open_returns_the_current_interval_or_the_next_one() -> None:
    window = schedule()
    inside = at("2026-12-04 23:00")
    assert window.next_open(inside) == window.is_open(inside).interval
    upcoming = window.next_open(at("2026-12-07 12:00"))
    assert upcoming == (at("2026-12-11 22:00"), at("2026-12-12 05:00"))


def test_next_open_skips_a_blackout_run_up_to_a_term() -> None:
    window = schedule(blackouts={"days_before_term_start": 3})
    # winter break nights from 01-02 (touching 01-03) are blacked out; the next is the first Friday
    nxt = window.next_open(at("2027-01-02 12:00"))
    assert nxt == (at("2027-01-08 22:00"), at("2027-01-09 05:00"))


def test_next_open_gives_up_after_the_search_horizon() -> None:
    days = school_days(
        terms=[{"name": "Forever", "first_day": "2026-01-01", "last_day": "2030-12-31"}],
        class_weekdays=["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        no_school=[],
        staff_only=[],
    )
    assert schedule(days).next_open(at("2027-01-01 00:00")) is None


def test_open_windows_lists_every_open_interval_in_the_range() -> None:
    window = schedule()
    intervals = window.open_windows(at("2026-11-23 00:00"), 7)
    nights = [i.start.date().isoformat() for i in intervals]
    assert nights == ["2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27", "2026-11-28"]
    closed = window.closed_nights(at("2026-11-23 00:00"), 2)
    assert [i.start.date().isoformat() for i, _ in closed] == ["2026-11-22", "2026-11-23"]


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        schedule().is_open(dt.datetime(2026, 12, 4, 23, 0))


def test_describe_windows_and_explain_over_the_sample_policies() -> None:
    policies = load_policies(REPO / "policies")
    rows = describe_windows(policies, REPO, at("2026-11-23 00:00"), 7)
    assert {r.window for r in rows} == {"overnight-no-students", "break-days"}
    assert all(r.open for r in rows)
    assert rows == sorted(rows, key=lambda r: (r.start.astimezone(UTC), r.window))
    with_closed = describe_windows(policies, REPO, at("2026-11-23 00:00"), 7, include_closed=True)
    assert any(not r.open and "class day" in r.reason for r in with_closed)
    explained = {e.window: e for e in explain(policies, REPO, at("2026-12-03 23:00"))}
    overnight = explained["overnight-no-students"]
    assert not overnight.state.open and "2026-12-04 is a class day" in overnight.state.reason
    assert overnight.next_open == (at("2026-12-04 22:00"), at("2026-12-05 05:00"))
