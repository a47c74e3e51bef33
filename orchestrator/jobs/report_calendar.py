"""The report site's school-year calendars: per calendar and school, every day of the school year it shows.

One picture per calendar and school (the whole district first): the school year of the report's day, the next
one during the summer (`schooltime.years` says how terms make a year), each day's kind and reason, its
blackouts, the maintenance windows that opened in it before `now` and what ran in them (from the journal's
maintenance actions). The calendar's other years are listed with their class days, not drawn. Calendar
feeds are read from their cache, never fetched.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from orchestrator.jobs.workspace import Workspace
from orchestrator.schooltime.calendar import SchoolDays
from orchestrator.schooltime.windows import WindowSchedule, build_school_days, build_window_schedules
from orchestrator.schooltime.years import AcademicYear, academic_years, year_shown_on


@dataclass
class Day:
    """One date of one school's calendar: its kind, why, and what the maintenance windows did that night."""

    date: dt.date
    kind: str  # class_day | no_students | staff_only | unknown
    reason: str
    testing: str = ""
    blackouts: list[str] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)
    """Windows with an open interval starting this day (before `now`)."""
    ran: list[str] = field(default_factory=list)
    """What ran in those intervals: "break-days: CB0000004 succeeded"."""


@dataclass
class OtherYear:
    """Another school year of the same calendar, listed beside the one drawn: its terms' span and class days."""

    label: str
    first_day: dt.date
    last_day: dt.date
    class_days: int


@dataclass
class SchoolYear:
    """One school's drawn school year (`label`, e.g. "2026-27"), every day from `first` to `last` (whole months)."""

    calendar: str
    school: str
    description: str
    label: str
    first: dt.date
    last: dt.date
    days: list[Day]
    others: list[OtherYear] = field(default_factory=list)

    @property
    def class_days(self) -> int:
        return sum(d.kind == "class_day" for d in self.days)

    def count(self, kind: str) -> int:
        return sum(d.kind == kind for d in self.days)

    @property
    def blackout_days(self) -> int:
        return sum(bool(d.blackouts) for d in self.days)

    @property
    def window_days(self) -> int:
        return sum(bool(d.opened) for d in self.days)


def _blackouts(day: dt.date, info: Any, days: SchoolDays, windows: list[WindowSchedule]) -> list[str]:
    found: list[str] = []
    for schedule in windows:
        rules = schedule.window.blackouts
        if rules.testing_days and info.testing:
            found.append(f"{schedule.window.name}: testing day ({info.testing_reason})")
        if rules.days_before_term_start:
            term = days.term_starting_within(day, rules.days_before_term_start)
            if term is not None:
                found.append(f"{schedule.window.name}: before {term.name} starts {term.first_day.isoformat()}")
        for entry in rules.dates:
            if entry.first <= day <= entry.last:
                found.append(f"{schedule.window.name}: {entry.reason or 'blackout date'}")
    return found


def school_year(
    name: str,
    days: SchoolDays,
    school: str | None,
    windows: list[WindowSchedule],
    ran: list[dict[str, Any]],
    now: dt.datetime,
) -> SchoolYear | None:
    """The school year of `now` (the next one during the summer) for `school` (None: the whole district).

    Drawn from the first of the month of its first term day to the end of the month of its last; the
    calendar's other years are counted in `others`. None for a calendar without terms.
    """
    tz = days.tz
    years = academic_years(days.terms)
    year = year_shown_on(years, now.astimezone(tz).date())
    if year is None:
        return None
    first, last = year.months
    start = dt.datetime.combine(first, dt.time(), tzinfo=tz)
    span = (last - first).days + 1
    opened: dict[dt.date, list[str]] = defaultdict(list)
    for schedule in windows:
        for interval in schedule.open_windows(start, span, school):
            if interval.start.astimezone(dt.UTC) < now.astimezone(dt.UTC):
                opened[interval.start.astimezone(tz).date()].append(
                    f"{schedule.window.name} {interval.start:%H:%M}-{interval.end:%H:%M}"
                )
    ran_on: dict[dt.date, list[str]] = defaultdict(list)
    for action in ran:
        if school is not None and action["school"] and action["school"] != school:
            continue
        when = dt.datetime.fromisoformat(action["window_start"]).astimezone(tz).date()
        ran_on[when].append(f"{action['window']}: {action['device']} {action['state']}")
    out = []
    for offset in range(span):
        day = first + dt.timedelta(days=offset)
        info = days.day(day, school)
        out.append(
            Day(
                date=day,
                kind=info.kind,
                reason=info.reason,
                testing=info.testing_reason if info.testing else "",
                blackouts=_blackouts(day, info, days, windows),
                opened=opened.get(day, []),
                ran=ran_on.get(day, []),
            )
        )
    label = school or "whole district"
    others = [_other_year(y, days, school) for y in years if y != year]
    return SchoolYear(name, label, days.calendar.description or name, year.label, first, last, out, others)


def _other_year(year: AcademicYear, days: SchoolDays, school: str | None) -> OtherYear:
    class_days = days.class_days_between(year.first_day, year.last_day, school)
    return OtherYear(year.label, year.first_day, year.last_day, class_days)


def school_years(ws: Workspace, ran: list[dict[str, Any]], now: dt.datetime) -> list[SchoolYear]:
    """Per calendar a windowed one: the district's year, then one per school (inventory schools and overrides)."""
    calendars = build_school_days(ws.policies, ws.repo_root, refresh=False)
    schedules = build_window_schedules(ws.policies, ws.repo_root, refresh=False)
    used = {s.window.calendar for s in schedules.values()}
    schools = sorted({d.school for d in ws.inventory.devices if d.school})
    years = []
    for name, days in sorted(calendars.items()):
        if used and name not in used:
            continue  # a calendar no window uses (an alternative source kept for later) is not the district's
        windows = [s for s in schedules.values() if s.window.calendar == name]
        for school in [None, *sorted(set(schools) | set(days.schools))]:
            year = school_year(name, days, school, windows, ran, now)
            if year is not None:
                years.append(year)
    return years
