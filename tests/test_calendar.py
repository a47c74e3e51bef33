"""School days from YAML calendars and iCalendar sources."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from orchestrator.core.errors import PolicyError
from orchestrator.policy.loader import load_policies
from orchestrator.policy.models import IcsRule, SchoolCalendar
from orchestrator.schooltime.calendar import SchoolDays, match_rule

REPO = Path(__file__).resolve().parent.parent
D = dt.date.fromisoformat


def calendar(**fields: Any) -> SchoolCalendar:
    base: dict[str, Any] = {
        "kind": "SchoolCalendar",
        "name": "test-calendar",
        "timezone": "America/Chicago",
        "terms": [
            {"name": "Fall semester", "first_day": "2026-08-13", "last_day": "2026-12-18"},
            {"name": "Spring semester", "first_day": "2027-01-06", "last_day": "2027-05-27"},
        ],
    }
    base.update(fields)
    return SchoolCalendar.model_validate(base)


GOOGLE_RULES = [
    {"match": "no school", "means": "no_students"},
    {"match": "teacher workday", "means": "staff_only"},
    {"match": "staff development", "means": "staff_only"},
    {"match": "state testing", "means": "testing"},
    {"match": "make-up day", "means": "class_day"},
]


def google_days() -> SchoolDays:
    return SchoolDays(calendar(ics={"file": "tests/data/google-export.ics", "rules": GOOGLE_RULES}), REPO)


def test_weekday_in_term_is_class_day_and_weekend_has_no_students() -> None:
    days = SchoolDays(calendar())
    thursday = days.day(D("2026-12-03"))
    assert thursday.kind == "class_day" and thursday.term == "Fall semester"
    assert thursday.describe() == "2026-12-03 is a class day (Fall semester)"
    saturday = days.day(D("2026-12-05"))
    assert (saturday.kind, saturday.reason) == ("no_students", "weekend")


def test_days_outside_every_term_that_no_entry_names_are_unknown() -> None:
    days = SchoolDays(calendar())
    assert days.day(D("2026-07-15")).kind == "unknown"
    assert days.day(D("2026-07-15")).reason == "before the calendar's first known day 2026-08-13"
    assert days.day(D("2026-12-28")).kind == "unknown"  # between the semesters, nothing says what it is
    assert days.day(D("2027-06-01")).reason == "after the calendar's last known day 2027-05-27"
    listed = SchoolDays(calendar(no_school=[{"from": "2026-12-19", "to": "2027-01-05", "reason": "Winter break"}]))
    assert listed.day(D("2026-12-28")).kind == "no_students"  # an explicit entry makes it known
    assert days.day(D("2026-08-13")).kind == "class_day"


def test_non_class_weekday_has_no_students() -> None:
    days = SchoolDays(calendar(class_weekdays=["mon", "tue", "wed", "thu"]))
    friday = days.day(D("2026-12-04"))
    assert (friday.kind, friday.reason) == ("no_students", "no classes on fri")


def test_no_school_range_and_staff_only_day_from_yaml() -> None:
    days = SchoolDays(
        calendar(
            no_school=[{"from": "2026-11-25", "to": "2026-11-27", "reason": "Thanksgiving break"}],
            staff_only=[{"date": "2026-10-09", "reason": "Teacher workday"}],
        )
    )
    for day in ("2026-11-25", "2026-11-26", "2026-11-27"):
        assert days.day(D(day)).kind == "no_students"
        assert days.day(D(day)).reason == "Thanksgiving break"
    assert days.day(D("2026-11-24")).kind == "class_day"
    workday = days.day(D("2026-10-09"))
    assert (workday.kind, workday.has_students) == ("staff_only", False)
    assert "staff-only" in workday.describe()


def test_school_override_reopens_a_district_holiday_and_adds_its_own_testing() -> None:
    days = SchoolDays(
        calendar(
            no_school=[{"date": "2026-10-12", "reason": "Fall holiday"}],
            schools={
                "jefferson-high": {
                    "class_days": [{"date": "2026-10-12", "reason": "Jefferson make-up day"}],
                    "testing_days": [{"from": "2027-05-03", "to": "2027-05-14", "reason": "AP exams"}],
                    "no_school": [{"date": "2026-11-02", "reason": "Jefferson flood repairs"}],
                }
            },
        )
    )
    assert days.day(D("2026-10-12")).kind == "no_students"
    assert days.day(D("2026-10-12"), "jefferson-high").kind == "class_day"
    assert days.day(D("2026-10-12"), "lincoln-elementary").kind == "no_students"  # no overrides: district
    assert days.day(D("2027-05-04"), "jefferson-high").testing
    assert days.day(D("2027-05-04"), "jefferson-high").testing_reason == "AP exams"
    assert not days.day(D("2027-05-04")).testing
    assert days.day(D("2026-11-02"), "jefferson-high").kind == "no_students"
    assert days.day(D("2026-11-02")).kind == "class_day"


def test_testing_flag_is_kept_on_a_class_day() -> None:
    days = SchoolDays(calendar(testing_days=[{"from": "2027-04-19", "to": "2027-04-23", "reason": "STAAR"}]))
    info = days.day(D("2027-04-20"))
    assert info.kind == "class_day" and info.testing and info.testing_reason == "STAAR"


def test_term_starting_within_counts_the_days_before_first_day() -> None:
    days = SchoolDays(calendar())
    assert days.term_starting_within(D("2027-01-05"), 3).name == "Spring semester"
    assert days.term_starting_within(D("2027-01-03"), 3).name == "Spring semester"
    assert days.term_starting_within(D("2027-01-02"), 3) is None
    assert days.term_starting_within(D("2027-01-06"), 3) is None  # the first day itself is not "before"


def test_rules_match_whole_words_case_insensitively_and_students_in_the_building_win() -> None:
    rules = [IcsRule(match="No  School", means="no_students"), IcsRule(match="a day", means="class_day")]
    assert match_rule("Flex Friday - NO SCHOOL", rules) == "no_students"
    assert match_rule("No School - A Day", rules) == "class_day"  # both match: the day with students decides
    assert match_rule("A Day", rules) == "class_day"
    assert match_rule("Data Day", rules) is None  # "a day" is not a whole-word part of "Data Day"
    assert match_rule("Football vs. Central", rules) is None
    assert match_rule("Schoolhouse No Schooling", rules) is None


def test_regex_rules_search_the_title() -> None:
    rules = [IcsRule(regex=r"^(no school|closed)\b", means="no_students")]
    assert match_rule("Closed - Snow", rules) == "no_students"
    assert match_rule("Library closed", rules) is None


def test_google_export_all_day_events_and_multi_day_break() -> None:
    days = google_days()
    assert days.day(D("2026-09-07")).reason == "No School - Labor Day"
    for day in ("2026-12-21", "2026-12-31", "2027-01-04", "2027-01-05"):  # DTEND 2027-01-06 is exclusive
        assert days.day(D(day)).reason == "Winter Break (no school)"
    assert days.day(D("2027-01-06")).kind == "class_day"
    assert days.day(D("2026-10-13")).kind == "staff_only"


def test_weekly_rrule_with_exdate_is_expanded_by_the_library() -> None:
    days = google_days()
    flex = [d for d in ("2026-09-11", "2026-09-18", "2026-10-02", "2026-11-06", "2026-12-18")]
    kinds = {d: days.day(D(d)).kind for d in flex}
    assert kinds == {
        "2026-09-11": "no_students",
        "2026-09-18": "no_students",
        "2026-10-02": "class_day",  # EXDATE
        "2026-11-06": "class_day",  # EXDATE
        "2026-12-18": "no_students",  # UNTIL is inclusive
    }
    assert days.day(D("2026-12-25")).reason == "Winter Break (no school)"  # RRULE ended, the break did not


def test_timed_utc_event_lands_on_the_local_date() -> None:
    days = google_days()
    # 2026-11-24T04:30Z is 22:30 on 2026-11-23 in Chicago
    assert days.day(D("2026-11-23")).kind == "no_students"
    assert days.day(D("2026-11-24")).kind == "class_day"
    # a timed professional-development day 09:00-16:00 local
    assert days.day(D("2026-11-09")).kind == "staff_only"


def test_testing_and_make_up_events_and_unmatched_events() -> None:
    days = google_days()
    assert all(days.day(D(f"2027-04-{n}")).testing for n in (19, 20, 21, 22, 23))
    assert not days.day(D("2027-04-24")).testing
    assert days.day(D("2027-02-20")).kind == "class_day"  # a Saturday make-up day
    assert days.day(D("2026-10-15")).kind == "class_day"  # football game matches no rule


def test_timezone_is_a_zoneinfo() -> None:
    assert google_days().tz.key == "America/Chicago"


AB_RULES = [
    {"match": "no school", "means": "no_students"},
    {"match": "a day", "means": "class_day"},
    {"match": "b day", "means": "class_day"},
]


def ab_days(**fields: Any) -> SchoolDays:
    source = {"file": "tests/data/ab-days.ics", "rules": AB_RULES, "class_days_listed": True}
    return SchoolDays(calendar(ics=source, **fields), REPO)


def test_listed_class_days_are_the_only_class_days_in_a_term() -> None:
    days = ab_days()
    assert days.day(D("2026-08-17")).kind == "class_day"  # A Day, Monday
    assert days.day(D("2026-08-18")).kind == "class_day"  # B Day
    assert days.day(D("2026-08-14")).kind == "no_students"  # Friday in term, nothing listed
    assert days.day(D("2026-08-14")).reason == "not listed as a class day"
    assert days.day(D("2026-09-07")).kind == "no_students"  # EXDATE on the A-day series
    assert days.day(D("2026-11-02")).kind == "no_students"  # series ended on 2026-10-30


def test_no_school_event_cancels_a_listed_class_day() -> None:
    days = ab_days()
    snow = days.day(D("2026-10-14"))
    assert (snow.kind, snow.reason) == ("no_students", "No School - Snow Day")


def test_terms_are_derived_from_listed_class_days_when_the_policy_has_none() -> None:
    days = ab_days(terms=[])
    assert [(t.first_day, t.last_day) for t in days.terms] == [
        (D("2026-08-17"), D("2026-10-30")),
        (D("2027-01-06"), D("2027-01-19")),
    ]
    assert days.day(D("2026-12-01")).kind == "unknown"
    assert days.term_starting_within(D("2027-01-04"), 3).first_day == D("2027-01-06")


def test_missing_or_broken_ics_file_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        SchoolDays(calendar(ics={"file": "tests/data/missing.ics", "rules": AB_RULES}), REPO)
    with pytest.raises(PolicyError, match="not a valid iCalendar"):
        SchoolDays(calendar(ics={"file": "tests/data/broken.ics", "rules": AB_RULES}), REPO)


def test_ics_path_may_not_leave_the_repository(tmp_path: Path) -> None:
    inner = tmp_path / "repo"
    inner.mkdir()
    (tmp_path / "outside.ics").write_text((REPO / "tests/data/ab-days.ics").read_text())
    link = inner / "cal.ics"
    link.symlink_to(tmp_path / "outside.ics")
    with pytest.raises(PolicyError, match="leaves the repository"):
        SchoolDays(calendar(ics={"file": "cal.ics", "rules": AB_RULES}), inner)


def test_example_ics_calendar_in_policies_loads_and_resolves() -> None:
    policies = load_policies(REPO / "policies")
    found = policies.by_name(SchoolCalendar, "district-ics-2026-27")
    assert found is not None
    days = SchoolDays(found[0], REPO)
    assert days.day(D("2026-11-26")).kind == "no_students"
    assert days.day(D("2026-12-03")).kind == "class_day"
    assert days.day(D("2027-04-20")).testing


def test_no_school_beats_staff_only_and_class_day_on_the_same_day() -> None:
    days = SchoolDays(
        calendar(
            no_school=[{"date": "2026-10-09", "reason": "Flex Friday"}],
            staff_only=[{"date": "2026-10-09", "reason": "Teacher workday"}],
        )
    )
    assert (days.day(D("2026-10-09")).kind, days.day(D("2026-10-09")).reason) == ("no_students", "Flex Friday")


def test_google_x_wr_timezone_places_floating_times_in_the_exporting_zone() -> None:
    # 00:10-00:50 floating in an export whose X-WR-TIMEZONE is New York is 23:10-23:50 the day before in Chicago
    source = {"file": "tests/data/x-wr-timezone.ics", "rules": [{"match": "no school", "means": "no_students"}]}
    days = SchoolDays(calendar(ics=source), REPO)
    assert days.day(D("2026-11-23")).kind == "no_students"
    assert days.day(D("2026-11-24")).kind == "class_day"
