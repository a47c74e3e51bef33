"""Counting school days on one school's calendar: a due date N school days after a date, and days overdue.

A school day is a class day for that school (`SchoolDays.day(date, school)`): weekends, holidays, snow days and
staff-only days do not count. Days the calendar cannot vouch for are handled so that nothing is guessed:

- a calendar with a problem (a stale or missing feed) is an error naming it, never a count of 0;
- a day inside the calendar's span that no term or entry names (summer, a gap between terms) has no students
  and is not counted;
- past the calendar's last known day nothing can be counted: a due date that would fall there is the last
  class day the calendar knows (`Due.capped` says so), and days overdue stop there.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from orchestrator.core.errors import OrchestratorError
from orchestrator.schooltime.calendar import SchoolDays

_ONE = dt.timedelta(days=1)


class CalendarCountError(OrchestratorError):
    """School days cannot be counted on this calendar (a stale feed, or no class day to count from)."""


@dataclass(frozen=True)
class Due:
    """The date `school_days` class days after `start`; `capped` when the calendar ended first (then `date` is
    its last class day)."""

    date: dt.date
    capped: bool = False


def _check(days: SchoolDays, school: str | None) -> None:
    problem = days.problem or (days.school_problems.get(school, "") if school else "")
    if problem:
        raise CalendarCountError(f"cannot count school days on calendar {days.calendar.name}: {problem}")


def add_school_days(days: SchoolDays, start: dt.date, school_days: int, school: str | None) -> Due:
    """The `school_days`-th class day after `start` (not counting `start`) for `school`."""
    _check(days, school)
    last_known = days.last_known_day
    day, counted, last_class = start, 0, None
    while counted < school_days:
        day += _ONE
        if last_known is None or day > last_known:
            if last_class is None:
                where = f"after {last_known.isoformat()}" if last_known else "at all"
                raise CalendarCountError(
                    f"calendar {days.calendar.name} has no class day {where} to count {school_days} school days "
                    f"from {start.isoformat()}{f' for {school}' if school else ''}: add the next term to it"
                )
            return Due(last_class, capped=True)
        if days.day(day, school).kind == "class_day":
            counted += 1
            last_class = day
    return Due(day)


def school_days_after(days: SchoolDays, after: dt.date, through: dt.date, school: str | None) -> int:
    """Class days in (`after`, `through`] for `school`: how many school days late something due `after` is."""
    _check(days, school)
    last_known = days.last_known_day
    if last_known is None:
        return 0
    return days.class_days_between(after + _ONE, min(through, last_known), school) if through > after else 0
