"""School years from a calendar's terms (schooltime/years.py): the July-1 rule and the year a report shows."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestrator.policy.models import Term
from orchestrator.schooltime.years import academic_years, year_label, year_shown_on

D = dt.date.fromisoformat
SAMPLE = [  # policies/calendar.yaml's terms, out of order on purpose
    Term(name="Spring semester 2028", first_day=D("2028-01-04"), last_day=D("2028-05-31")),
    Term(name="Fall semester", first_day=D("2026-08-13"), last_day=D("2026-12-18")),
    Term(name="Spring semester", first_day=D("2027-01-06"), last_day=D("2027-05-27")),
    Term(name="Fall semester 2027", first_day=D("2027-08-18"), last_day=D("2027-12-17")),
]


@pytest.mark.parametrize(
    ("day", "label"),
    [("2026-06-30", "2025-26"), ("2026-07-01", "2026-27"), ("2027-05-27", "2026-27"), ("1999-07-01", "1999-00")],
)
def test_a_school_year_runs_from_july_1_to_june_30(day: str, label: str) -> None:
    assert year_label(D(day)) == label


def test_terms_are_grouped_by_the_school_year_they_start_in() -> None:
    summer_school = Term(name="Summer school", first_day=D("2027-06-07"), last_day=D("2027-07-09"))
    years = academic_years([*SAMPLE, summer_school])
    assert [(y.label, [t.name for t in y.terms]) for y in years] == [
        ("2026-27", ["Fall semester", "Spring semester", "Summer school"]),
        ("2027-28", ["Fall semester 2027", "Spring semester 2028"]),
    ]
    assert (years[0].first_day, years[0].last_day) == (D("2026-08-13"), D("2027-07-09"))
    assert years[1].months == (D("2027-08-01"), D("2028-05-31"))


@pytest.mark.parametrize(
    ("today", "label"),
    [
        ("2025-12-01", "2026-27"),  # before the calendar: its first year
        ("2026-11-24", "2026-27"),
        ("2027-05-27", "2026-27"),  # the last class day
        ("2027-05-28", "2027-28"),  # the summer: the next year
        ("2027-07-01", "2027-28"),
        ("2028-05-31", "2027-28"),
        ("2028-08-15", "2027-28"),  # after the last year: nothing newer to show
    ],
)
def test_the_year_shown_is_the_first_not_yet_over(today: str, label: str) -> None:
    shown = year_shown_on(academic_years(SAMPLE), D(today))
    assert shown is not None and shown.label == label


def test_a_calendar_without_terms_has_no_year_to_show() -> None:
    assert academic_years([]) == [] and year_shown_on([], D("2026-11-24")) is None
