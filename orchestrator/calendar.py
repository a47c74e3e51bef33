"""School days: what kind of day a date is for the district or one school, from a SchoolCalendar policy.

A date resolves in layers; a later layer wins over an earlier one:

1. terms and class weekdays: inside a term, a class weekday is a class day and any other day has no
   students (weekends); outside every term the day is ``outside_term`` (summer).
2. class days listed in the iCalendar source (``class_days_listed: true``): inside a term, only listed days
   are class days; a listed day outside every term is still a class day (summer school).
3. the district's explicit entries: ``class_day`` ics events (a make-up Saturday), then staff-only days,
   then no-school days (YAML lists and ics events alike). Within the layer, no school beats staff only
   beats class day, so a snow day added on top of an "A Day" event cancels classes.
4. the school's own overrides, with the same order inside (its ``class_days`` can reopen a district
   holiday for that school only; its ``no_school`` closes one of its days).

Testing is a flag on top of the kind: district testing days, ics ``testing`` events and a school's own
testing days all set it.

iCalendar rules match an event's SUMMARY as a **case-insensitive substring** (whitespace collapsed), and
the **first** matching rule in the policy's order decides what the event means; events no rule matches are
ignored. Substrings because exports decorate titles ("No School - Labor Day", "Winter Break (no school)").
Recurrences (RRULE, RDATE, EXDATE, moved instances) are expanded by ``recurring_ical_events``, which also
applies a Google export's ``X-WR-TIMEZONE``. An all-day event covers DTSTART up to, not including, DTEND; a
timed event covers every local date it touches, in the calendar's zone.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from orchestrator.errors import Diagnostic, PolicyError
from orchestrator.policy.models import DayRange, IcsRule, SchoolCalendar, SchoolOverride, Term

DayKind = Literal["class_day", "no_students", "staff_only", "outside_term"]
Meaning = Literal["no_students", "staff_only", "class_day", "testing"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DERIVED_TERM_GAP_DAYS = 21
"""Without YAML terms, listed class days further apart than this start a new derived term."""


@dataclass(frozen=True)
class DayInfo:
    """What one date is for one school (or the whole district when `school` is None)."""

    date: dt.date
    kind: DayKind
    reason: str
    testing: bool = False
    testing_reason: str = ""
    term: str | None = None

    @property
    def has_students(self) -> bool:
        return self.kind == "class_day"

    def describe(self) -> str:
        """Like "2026-12-03 is a class day (Fall semester)" or "2026-11-26 has no students (Thanksgiving)"."""
        text = {
            "class_day": "is a class day",
            "no_students": "has no students",
            "staff_only": "is a staff-only day (no students)",
            "outside_term": "is outside every term (no students)",
        }[self.kind]
        detail = f" ({self.reason})" if self.reason else ""
        testing = f", testing: {self.testing_reason}" if self.testing else ""
        return f"{self.date.isoformat()} {text}{detail}{testing}"


@dataclass(frozen=True)
class IcsDay:
    """One ics event's meaning on one date."""

    date: dt.date
    meaning: Meaning
    summary: str


@dataclass
class _Layer:
    """Explicit entries of one layer (district or school): date → (reason)."""

    no_students: dict[dt.date, str] = field(default_factory=dict)
    staff_only: dict[dt.date, str] = field(default_factory=dict)
    class_days: dict[dt.date, str] = field(default_factory=dict)
    testing: dict[dt.date, str] = field(default_factory=dict)


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def match_rule(summary: str, rules: Iterable[IcsRule]) -> Meaning | None:
    """The meaning of the first rule whose `match` is a case-insensitive substring of `summary`."""
    title = _normalise(summary)
    for rule in rules:
        if _normalise(rule.match) in title:
            return rule.means
    return None


def _range_days(ranges: Iterable[DayRange]) -> Iterable[tuple[dt.date, str]]:
    for entry in ranges:
        day = entry.first
        while day <= entry.last:
            yield day, entry.reason
            day += dt.timedelta(days=1)


def _fill(target: dict[dt.date, str], ranges: Iterable[DayRange], default: str) -> None:
    for day, reason in _range_days(ranges):
        target.setdefault(day, reason or default)


def _event_dates(start: dt.date | dt.datetime, end: dt.date | dt.datetime | None, tz: ZoneInfo) -> list[dt.date]:
    """Local dates an event instance covers: all-day [start, end), timed: every date it touches."""
    if isinstance(start, dt.datetime):
        start_local = start.astimezone(tz) if start.tzinfo else start
        if not isinstance(end, dt.datetime) or end <= start:
            return [start_local.date()]
        end_local = end.astimezone(tz) if end.tzinfo else end
        last = (end_local - dt.timedelta(microseconds=1)).date()
        first = start_local.date()
    else:
        first = start
        last = (end - dt.timedelta(days=1)) if isinstance(end, dt.date) and end > start else start
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def read_ics(
    path: Path, rules: list[IcsRule], tz: ZoneInfo, start: dt.date, end: dt.date, *, shown: str | None = None
) -> list[IcsDay]:
    """Expand the events of an .ics file between `start` and `end` (exclusive) into per-date meanings."""
    shown = shown or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError(
            [
                Diagnostic(
                    shown,
                    0,
                    "ics.file",
                    f"cannot read iCalendar file: {exc}",
                    "a .ics file inside the repository",
                )
            ]
        ) from exc
    try:
        cal = icalendar.Calendar.from_ical(raw)
        instances = recurring_ical_events.of(cal).between(start, end)
    except Exception as exc:  # icalendar and the recurrence library raise many types for bad input
        raise PolicyError(
            [Diagnostic(shown, 0, "ics.file", f"not a valid iCalendar file: {exc}", "RFC 5545 text with VEVENTs")]
        ) from exc
    days: list[IcsDay] = []
    for event in instances:
        summary = str(event.get("SUMMARY", ""))
        meaning = match_rule(summary, rules)
        if meaning is None:
            continue
        dtstart = event.get("DTSTART")
        if dtstart is None:
            continue
        dtend = event.get("DTEND")
        end_value = dtend.dt if dtend is not None else None
        if end_value is None and event.get("DURATION") is not None:
            end_value = dtstart.dt + event["DURATION"].dt
        for day in _event_dates(dtstart.dt, end_value, tz):
            if start <= day < end:
                days.append(IcsDay(day, meaning, summary))
    days.sort(key=lambda d: (d.date, d.meaning, d.summary))
    return days


def ics_span(path: Path) -> tuple[dt.date, dt.date] | None:
    """The dates of the earliest and latest DTSTART in the file (recurrences not expanded)."""
    try:
        cal = icalendar.Calendar.from_ical(path.read_bytes())
    except Exception:
        return None
    starts: list[dt.date] = []
    for event in cal.walk("VEVENT"):
        value = event.get("DTSTART")
        if value is None:
            continue
        when = value.dt
        starts.append(when.date() if isinstance(when, dt.datetime) else when)
    return (min(starts), max(starts)) if starts else None


class SchoolDays:
    """Answers "what kind of day is D for school S" for one SchoolCalendar.

    `repo_root` is the folder the calendar's `ics.file` is relative to (the repository root). The ics source
    is read once, expanded from its earliest event (or first term) to a year past its latest event (or last
    term); an unbounded RRULE is therefore cut there.
    """

    def __init__(self, calendar: SchoolCalendar, repo_root: Path | str = ".", *, ics_days: list[IcsDay] | None = None):
        self.calendar = calendar
        self.repo_root = Path(repo_root)
        self.tz = ZoneInfo(calendar.timezone)
        self._class_weekdays = {WEEKDAYS.index(d) for d in calendar.class_weekdays}
        self._ics_days = ics_days if ics_days is not None else self._load_ics()
        self._listed: set[dt.date] = set()
        self.district = _Layer()
        for ics_day in self._ics_days:
            target = {
                "no_students": self.district.no_students,
                "staff_only": self.district.staff_only,
                "class_day": self.district.class_days,
                "testing": self.district.testing,
            }[ics_day.meaning]
            target.setdefault(ics_day.date, ics_day.summary)
        if calendar.ics is not None and calendar.ics.class_days_listed:
            self._listed = set(self.district.class_days)
        _fill(self.district.no_students, calendar.no_school, "no school")
        _fill(self.district.staff_only, calendar.staff_only, "staff only")
        _fill(self.district.testing, calendar.testing_days, "testing day")
        self._schools = {name: self._school_layer(o) for name, o in calendar.schools.items()}
        self._cache: dict[tuple[dt.date, str | None], DayInfo] = {}

    @staticmethod
    def _school_layer(override: SchoolOverride) -> _Layer:
        layer = _Layer()
        _fill(layer.no_students, override.no_school, "no school")
        _fill(layer.staff_only, override.staff_only, "staff only")
        _fill(layer.class_days, override.class_days, "class day")
        _fill(layer.testing, override.testing_days, "testing day")
        return layer

    def _load_ics(self) -> list[IcsDay]:
        source = self.calendar.ics
        if source is None:
            return []
        root = self.repo_root.resolve()
        path = (root / source.file).resolve()
        if not path.is_relative_to(root):
            raise PolicyError(
                [
                    Diagnostic(
                        source.file,
                        0,
                        "ics.file",
                        "path leaves the repository",
                        "a path relative to the repository root",
                    )
                ]
            )
        span = ics_span(path) if path.exists() else None
        bounds = [t.first_day for t in self.calendar.terms] + [t.last_day for t in self.calendar.terms]
        if span:
            bounds += list(span)
        if not bounds:
            today = dt.date.today()
            bounds = [today, today]
        start = min(bounds) - dt.timedelta(days=1)
        end = max(bounds) + dt.timedelta(days=366)
        return read_ics(path, source.rules, self.tz, start, end, shown=source.file)

    @cached_property
    def terms(self) -> list[Term]:
        """The calendar's terms, or terms derived from listed class days when the policy names none."""
        if self.calendar.terms:
            return sorted(self.calendar.terms, key=lambda t: t.first_day)
        listed = sorted(self._listed)
        derived: list[Term] = []
        if not listed:
            return derived
        first = prev = listed[0]
        for day in listed[1:]:
            if (day - prev).days > DERIVED_TERM_GAP_DAYS:
                derived.append(Term(name=f"term from {first.isoformat()}", first_day=first, last_day=prev))
                first = day
            prev = day
        derived.append(Term(name=f"term from {first.isoformat()}", first_day=first, last_day=prev))
        return derived

    @property
    def timezone(self) -> ZoneInfo:
        """The district's zone (same as `tz`)."""
        return self.tz

    @property
    def schools(self) -> list[str]:
        return sorted(self._schools)

    def term_of(self, day: dt.date) -> Term | None:
        return next((t for t in self.terms if t.first_day <= day <= t.last_day), None)

    def term_starting_within(self, day: dt.date, days: int) -> Term | None:
        """The term whose first day is 1..`days` days after `day` (so `day` is in its run-up), if any."""
        for term in self.terms:
            if 1 <= (term.first_day - day).days <= days:
                return term
        return None

    def is_class_day(self, day: dt.date, school: str | None = None) -> bool:
        return self.day(day, school).kind == "class_day"

    def day(self, day: dt.date, school: str | None = None) -> DayInfo:
        """Resolve `day` for `school`; None, or a school without overrides, follows the district calendar."""
        school_layer = self._schools.get(school) if school else None
        key = (day, school)
        if key not in self._cache:
            self._cache[key] = self._resolve(day, school_layer)
        return self._cache[key]

    def _resolve(self, day: dt.date, school_layer: _Layer | None) -> DayInfo:
        term = self.term_of(day)
        term_name = term.name if term else None
        kind: DayKind
        if term is None:
            kind, reason = "outside_term", "between terms"
        elif self._listed and day not in self._listed:
            kind, reason = "no_students", "not listed as a class day"
        elif not self._listed and day.weekday() not in self._class_weekdays:
            weekday = WEEKDAYS[day.weekday()]
            reason = "weekend" if weekday in ("sat", "sun") else f"no classes on {weekday}"
            kind = "no_students"
        else:
            kind, reason = "class_day", term.name
        if day in self._listed and kind != "class_day":
            kind, reason = "class_day", self.district.class_days[day]
        for layer in (self.district, school_layer):
            if layer is None:
                continue
            if day in layer.no_students:
                kind, reason = "no_students", layer.no_students[day]
            elif day in layer.staff_only:
                kind, reason = "staff_only", layer.staff_only[day]
            elif day in layer.class_days and not (layer is self.district and self._listed):
                kind, reason = "class_day", layer.class_days[day]
        testing_reasons = [
            layer.testing[day] for layer in (self.district, school_layer) if layer is not None and day in layer.testing
        ]
        return DayInfo(
            day,
            kind,
            reason,
            testing=bool(testing_reasons),
            testing_reason="; ".join(testing_reasons),
            term=term_name,
        )
