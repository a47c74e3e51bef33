"""School years: a calendar's terms grouped into years, and the year a report shows on a given day.

The rule: a school year runs from July 1 to June 30 (the fiscal and reporting year of US states and
districts), and a term belongs to the year in which its first day falls. The sample calendar's four terms
make 2026-27 (Fall semester 2026-08-13, Spring semester 2027-01-06) and 2027-28; a summer-school term that
starts in June belongs to the year that is ending.

The year shown on a day is the first one not yet over: the year whose last term day is on or after that
day. During the summer that is the next year (when the calendar has it); after the calendar's last year
ends it is that last year, since there is nothing newer to show.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator.policy.models import Term

YEAR_STARTS = (7, 1)
"""Month and day a school year starts on (July 1)."""


def year_label(day: dt.date) -> str:
    """The school year `day` falls in, as districts write it: 2026-11-24 → "2026-27", 2027-07-01 → "2027-28"."""
    start = day.year if (day.month, day.day) >= YEAR_STARTS else day.year - 1
    return f"{start}-{(start + 1) % 100:02d}"


@dataclass(frozen=True)
class AcademicYear:
    """One school year of a calendar: its label and its terms (first day order)."""

    label: str
    terms: tuple[Term, ...]

    @property
    def first_day(self) -> dt.date:
        return self.terms[0].first_day

    @property
    def last_day(self) -> dt.date:
        return max(t.last_day for t in self.terms)

    @property
    def months(self) -> tuple[dt.date, dt.date]:
        """From the first of the month of its first day to the end of the month of its last day (as drawn)."""
        last = self.last_day
        month_end = (last.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
        return self.first_day.replace(day=1), month_end


def academic_years(terms: Iterable[Term]) -> list[AcademicYear]:
    """The terms grouped by the school year of their first day (July 1 boundary), oldest year first."""
    grouped: dict[str, list[Term]] = {}
    for term in sorted(terms, key=lambda t: t.first_day):
        grouped.setdefault(year_label(term.first_day), []).append(term)
    return [AcademicYear(label, tuple(group)) for label, group in sorted(grouped.items())]


def year_shown_on(years: list[AcademicYear], today: dt.date) -> AcademicYear | None:
    """The first year not over on `today` (the next one during the summer), else the last; None without years."""
    return next((y for y in years if y.last_day >= today), years[-1] if years else None)
