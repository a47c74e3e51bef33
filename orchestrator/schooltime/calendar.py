"""School days: what kind of day a date is for the district or one school, from a SchoolCalendar policy.

Over 400 lines: the layered resolution below is one algorithm (`SchoolDays`) together with the iCalendar
parsing that feeds its layers; fetching and caching feeds already live in feeds.py, coverage checks in
coverage.py.

A date resolves in layers; a later layer wins over an earlier one:

1. terms and class weekdays: inside a term, a class weekday is a class day and any other day has no
   students (weekends). Terms come from the policy's `terms`, else from feed events whose rule `means:
   first_day` / `last_day` (each first day pairs with the next last day), else from listed class days.
2. class days listed in the iCalendar source (``class_days_listed: true``): inside a term, only listed days
   are class days.
3. the district's explicit entries: ics events (``no_students``, ``staff_only``, ``class_day``) and the YAML
   lists ``no_school`` / ``staff_only``. On one date the **most specific** entry wins: the one covering the
   fewest days (a make-up class day inside a week-long break beats the break); between entries of the same
   length, no school beats staff only beats class day (a snow day added on top of an "A Day" cancels it).
4. the school's own overrides (its YAML lists and its own ``ics`` feed), decided the same way; when a
   school has an entry for a date it replaces the district's answer for that school.

**Unknown days fail closed.** A day is *known* when it is inside a term or an explicit entry names it; any
other day (summer before the first term, the gap after a term that nothing describes, everything after the
calendar's last known day) is ``unknown``. So is every day of a calendar that yields no class days at all,
and every day of a calendar whose feed is stale or was never fetched (`problem`). Windows close on unknown
days, with the reason.

Testing is a flag on top of the kind: district testing days, ics ``testing`` events and a school's own
testing days all set it.

iCalendar rules (see docs/policies.md, "Rule precedence"): ``match`` is a phrase matched as **whole words**,
case-insensitive, whitespace collapsed ("break" matches "Winter Break" and "Break - No School", not
"Breakfast with Santa"); ``regex`` is a Python regular expression searched case-insensitively. **Every**
rule that matches an event applies: of the day kinds it gets the one that keeps students in the building
(``class_day`` over ``staff_only`` over ``no_students``), so "Early Dismissal/Exams 6-12/Teacher Workday"
with rules for both "exams" and "teacher workday" is a class day whatever the rule order; ``testing``,
``first_day`` and ``last_day`` add to that. Events no rule matches are ignored, and so are cancelled events
(``STATUS:CANCELLED``, on a whole series or on one instance via ``RECURRENCE-ID``). Recurrences (RRULE,
RDATE, EXDATE, moved instances) are expanded by ``recurring_ical_events``, which also applies a Google
export's ``X-WR-TIMEZONE``. An all-day event covers DTSTART up to, not including, DTEND; a timed event
covers every local date it touches, in the calendar's zone.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from orchestrator.core.errors import Diagnostic, PolicyError
from orchestrator.policy.models import DayRange, IcsRule, IcsSource, SchoolCalendar, SchoolOverride, Term
from orchestrator.schooltime.feeds import default_cache_dir, load_feed

DayKind = Literal["class_day", "no_students", "staff_only", "unknown"]
Meaning = Literal["no_students", "staff_only", "class_day", "testing", "first_day", "last_day"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DERIVED_TERM_GAP_DAYS = 21
"""Without YAML terms, listed class days further apart than this start a new derived term."""
STUDENTS_FIRST: tuple[str, ...] = ("class_day", "staff_only", "no_students")
"""Day kinds from the most to the least people in the building: one event matching several rules gets the first."""
_SAME_SPAN_RANK = {"no_students": 0, "staff_only": 1, "class_day": 2}
"""Between two entries of the same length on one date, the lower rank wins (a snow day cancels an A Day)."""


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

    @property
    def known(self) -> bool:
        return self.kind != "unknown"

    def describe(self) -> str:
        """Like "2026-12-03 is a class day (Fall semester)" or "2026-11-26 has no students (Thanksgiving)"."""
        text = {
            "class_day": "is a class day",
            "no_students": "has no students",
            "staff_only": "is a staff-only day (no students)",
            "unknown": "is unknown to the calendar",
        }[self.kind]
        detail = f" ({self.reason})" if self.reason else ""
        testing = f", testing: {self.testing_reason}" if self.testing else ""
        return f"{self.date.isoformat()} {text}{detail}{testing}"


@dataclass(frozen=True)
class IcsDay:
    """One ics event's meaning on one date; `span` is how many days the whole event covers."""

    date: dt.date
    meaning: Meaning
    summary: str
    span: int = 1


@dataclass(frozen=True)
class _Entry:
    kind: str
    reason: str
    span: int


@dataclass
class _Layer:
    """Explicit entries of one layer (district or school): date → entries, and testing days."""

    entries: dict[dt.date, list[_Entry]] = field(default_factory=dict)
    testing: dict[dt.date, str] = field(default_factory=dict)

    def add(self, day: dt.date, kind: str, reason: str, span: int) -> None:
        self.entries.setdefault(day, []).append(_Entry(kind, reason, span))

    def pick(self, day: dt.date) -> _Entry | None:
        """The most specific entry on `day` (fewest days covered), ties: no school, staff only, class day."""
        found = self.entries.get(day)
        if not found:
            return None
        return min(found, key=lambda e: (e.span, _SAME_SPAN_RANK[e.kind]))

    def add_ranges(self, kind: str, ranges: Iterable[DayRange], default: str) -> None:
        for entry in ranges:
            span = (entry.last - entry.first).days + 1
            for day, reason in _range_days([entry]):
                self.add(day, kind, reason or default, span)


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@cache
def rule_pattern(rule: IcsRule) -> re.Pattern[str]:
    """`match` as whole words (any whitespace between them), or `regex`; both case-insensitive."""
    if rule.regex is not None:
        return re.compile(rule.regex, re.IGNORECASE)
    words = (rule.match or "").split()
    return re.compile(r"(?<!\w)" + r"\s+".join(re.escape(w) for w in words) + r"(?!\w)", re.IGNORECASE)


def match_rules(summary: str, rules: Iterable[IcsRule]) -> list[Meaning]:
    """What an event title means: at most one day kind (the one with students in), then the other meanings."""
    title = _normalise(summary)
    matched = {rule.means for rule in rules if rule_pattern(rule).search(title)}
    kinds = [k for k in STUDENTS_FIRST if k in matched][:1]
    others = [m for m in ("testing", "first_day", "last_day") if m in matched]
    return [*kinds, *others]  # type: ignore[list-item]


def match_rule(summary: str, rules: Iterable[IcsRule]) -> Meaning | None:
    """The main meaning of an event title (its day kind if any rule gives one), or None if no rule matches."""
    meanings = match_rules(summary, rules)
    return meanings[0] if meanings else None


def _range_days(ranges: Iterable[DayRange]) -> Iterable[tuple[dt.date, str]]:
    for entry in ranges:
        day = entry.first
        while day <= entry.last:
            yield day, entry.reason
            day += dt.timedelta(days=1)


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


def _cancelled(event: icalendar.cal.Component) -> bool:
    return str(event.get("STATUS", "")).strip().upper() == "CANCELLED"


def parse_ics(
    raw: bytes, rules: list[IcsRule], tz: ZoneInfo, start: dt.date, end: dt.date, *, shown: str, path: str = "ics"
) -> list[IcsDay]:
    """Expand the events of iCalendar text between `start` and `end` (exclusive) into per-date meanings.

    Cancelled events and cancelled instances of a series are skipped: a holiday turned into a make-up day
    is usually published as the holiday with STATUS:CANCELLED.
    """
    try:
        cal = icalendar.Calendar.from_ical(raw)
        instances = recurring_ical_events.of(cal).between(start, end)
    except Exception as exc:  # icalendar and the recurrence library raise many types for bad input
        raise PolicyError(
            [Diagnostic(shown, 0, path, f"not a valid iCalendar file: {exc}", "RFC 5545 text with VEVENTs")]
        ) from exc
    days: list[IcsDay] = []
    for event in instances:
        if _cancelled(event):
            continue
        summary = str(event.get("SUMMARY", ""))
        meanings = match_rules(summary, rules)
        dtstart = event.get("DTSTART")
        if not meanings or dtstart is None:
            continue
        dtend = event.get("DTEND")
        end_value = dtend.dt if dtend is not None else None
        if end_value is None and event.get("DURATION") is not None:
            end_value = dtstart.dt + event["DURATION"].dt
        covered = _event_dates(dtstart.dt, end_value, tz)
        for day in covered:
            if start <= day < end:
                days += [IcsDay(day, meaning, summary, len(covered)) for meaning in meanings]
    days.sort(key=lambda d: (d.date, d.meaning, d.summary))
    return days


def read_ics(
    path: Path, rules: list[IcsRule], tz: ZoneInfo, start: dt.date, end: dt.date, *, shown: str | None = None
) -> list[IcsDay]:
    """`parse_ics` of a file; an unreadable file is a PolicyError naming it."""
    shown = shown or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError(
            [
                Diagnostic(
                    shown, 0, "ics.file", f"cannot read iCalendar file: {exc}", "a .ics file inside the repository"
                )
            ]
        ) from exc
    return parse_ics(raw, rules, tz, start, end, shown=shown, path="ics.file")


def ics_span(source: Path | bytes) -> tuple[dt.date, dt.date] | None:
    """The dates of the earliest and latest DTSTART in the calendar (recurrences not expanded)."""
    try:
        raw = source.read_bytes() if isinstance(source, Path) else source
        cal = icalendar.Calendar.from_ical(raw)
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


def _pair_terms(first_days: dict[dt.date, str], last_days: dict[dt.date, str]) -> list[Term]:
    """Terms from feed events: each first day runs to the last `last_day` before the next first day."""
    firsts = sorted(first_days)
    terms: list[Term] = []
    for i, first in enumerate(firsts):
        upto = firsts[i + 1] if i + 1 < len(firsts) else dt.date.max
        ends = [d for d in last_days if first <= d < upto]
        if ends:
            last = max(ends)
            terms.append(Term(name=f"term {first.isoformat()}..{last.isoformat()}", first_day=first, last_day=last))
    return terms


class SchoolDays:
    """Answers "what kind of day is D for school S" for one SchoolCalendar.

    `repo_root` is the folder the calendar's `ics.file` is relative to (the repository root). A feed
    (`ics.url`) is read from `cache_dir` (default `<repo_root>/.orchestrator/calendars`, filled by
    `calendar_feed.refresh_feed`); a stale or missing copy sets `problem` and every day becomes unknown.
    The ics source is read once, expanded from its earliest event (or first term) to a year past its
    latest event (or last term); an unbounded RRULE is therefore cut there.
    """

    def __init__(
        self,
        calendar: SchoolCalendar,
        repo_root: Path | str = ".",
        *,
        ics_days: list[IcsDay] | None = None,
        cache_dir: Path | str | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ):
        self.calendar = calendar
        self.repo_root = Path(repo_root)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir(self.repo_root)
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.tz = ZoneInfo(calendar.timezone)
        self._class_weekdays = {WEEKDAYS.index(d) for d in calendar.class_weekdays}
        self.problem = ""
        """Why no day of this calendar can be trusted (a stale or broken feed); "" when it can."""
        if ics_days is None:
            ics_days, self.problem = self._load_source(calendar.ics, "ics")
        self._ics_days = ics_days
        self._listed: set[dt.date] = set()
        self._first_days: dict[dt.date, str] = {}
        self._last_days: dict[dt.date, str] = {}
        self.district = _Layer()
        self._add_ics(self.district, ics_days)
        if calendar.ics is not None and calendar.ics.class_days_listed:
            self._listed = {d.date for d in ics_days if d.meaning == "class_day"}
        self.district.add_ranges("no_students", calendar.no_school, "no school")
        self.district.add_ranges("staff_only", calendar.staff_only, "staff only")
        for day, reason in _range_days(calendar.testing_days):
            self.district.testing.setdefault(day, reason or "testing day")
        self.school_problems: dict[str, str] = {}
        self._schools = {name: self._school_layer(name, o) for name, o in calendar.schools.items()}
        self._cache: dict[tuple[dt.date, str | None], DayInfo] = {}

    def _add_ics(self, layer: _Layer, ics_days: Iterable[IcsDay]) -> None:
        for ics_day in ics_days:
            if ics_day.meaning == "testing":
                layer.testing.setdefault(ics_day.date, ics_day.summary)
            elif ics_day.meaning == "first_day":
                self._first_days.setdefault(ics_day.date, ics_day.summary)
            elif ics_day.meaning == "last_day":
                self._last_days.setdefault(ics_day.date, ics_day.summary)
            else:
                layer.add(ics_day.date, ics_day.meaning, ics_day.summary, ics_day.span)

    def _school_layer(self, name: str, override: SchoolOverride) -> _Layer:
        layer = _Layer()
        ics_days, problem = self._load_source(override.ics, f"schools.{name}.ics")
        if problem:
            self.school_problems[name] = problem
        self._add_ics(layer, ics_days)
        layer.add_ranges("no_students", override.no_school, "no school")
        layer.add_ranges("staff_only", override.staff_only, "staff only")
        layer.add_ranges("class_day", override.class_days, "class day")
        for day, reason in _range_days(override.testing_days):
            layer.testing.setdefault(day, reason or "testing day")
        return layer

    def _read_file(self, source: IcsSource, path_name: str) -> bytes:
        root = self.repo_root.resolve()
        path = (root / (source.file or "")).resolve()
        if not path.is_relative_to(root):
            raise PolicyError(
                [
                    Diagnostic(
                        source.shown,
                        0,
                        f"{path_name}.file",
                        "path leaves the repository",
                        "a path relative to the repository root",
                    )
                ]
            )
        try:
            return path.read_bytes()
        except OSError as exc:
            raise PolicyError(
                [
                    Diagnostic(
                        source.shown,
                        0,
                        f"{path_name}.file",
                        f"cannot read iCalendar file: {exc}",
                        "a .ics file inside the repository",
                    )
                ]
            ) from exc

    def _load_source(self, source: IcsSource | None, path_name: str) -> tuple[list[IcsDay], str]:
        """(days, problem): a file must read and parse (else PolicyError); a feed fails closed instead."""
        if source is None:
            return [], ""
        if source.file is not None:
            raw = self._read_file(source, path_name)
        else:
            copy = load_feed(source, self.cache_dir, clock=self._clock)
            if copy.problem or copy.content is None:
                return [], copy.problem
            raw = copy.content
        span = ics_span(raw)
        bounds = [t.first_day for t in self.calendar.terms] + [t.last_day for t in self.calendar.terms]
        if span:
            bounds += list(span)
        if not bounds:
            today = dt.date.today()
            bounds = [today, today]
        start = min(bounds) - dt.timedelta(days=1)
        end = max(bounds) + dt.timedelta(days=366)
        try:
            return parse_ics(raw, source.rules, self.tz, start, end, shown=source.shown, path=path_name), ""
        except PolicyError as exc:
            if source.file is not None:
                raise
            return [], f"calendar feed {source.url}: the cached copy cannot be read ({exc.diagnostics[0].message})"

    @cached_property
    def terms(self) -> list[Term]:
        """The policy's terms, else terms from first_day/last_day feed events, else from listed class days."""
        if self.calendar.terms:
            return sorted(self.calendar.terms, key=lambda t: t.first_day)
        if self._first_days:
            return _pair_terms(self._first_days, self._last_days)
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

    @cached_property
    def known_span(self) -> tuple[dt.date, dt.date] | None:
        """The first and last day the calendar says anything about (terms and explicit entries)."""
        days = [t.first_day for t in self.terms] + [t.last_day for t in self.terms]
        for layer in (self.district, *self._schools.values()):
            if layer.entries:
                days += [min(layer.entries), max(layer.entries)]
        return (min(days), max(days)) if days else None

    @property
    def last_known_day(self) -> dt.date | None:
        """Where the calendar's coverage ends: after this day every day is unknown."""
        return self.known_span[1] if self.known_span else None

    @cached_property
    def yields_class_days(self) -> bool:
        """False for a calendar with no class day at all (no terms, rules that never match): all unknown."""
        candidates = {d for d, entries in self.district.entries.items() if any(e.kind == "class_day" for e in entries)}
        for term in self.terms:
            candidates.update(
                term.first_day + dt.timedelta(days=i) for i in range((term.last_day - term.first_day).days + 1)
            )
        return any(self._resolve_known(day, None).kind == "class_day" for day in sorted(candidates))

    def class_days_between(self, first: dt.date, last: dt.date, school: str | None = None) -> int:
        """How many class days [first, last] holds (0 when the calendar cannot be trusted)."""
        count = 0
        day = first
        while day <= last:
            count += self.day(day, school).kind == "class_day"
            day += dt.timedelta(days=1)
        return count

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
        key = (day, school)
        if key not in self._cache:
            self._cache[key] = self._resolve(day, school)
        return self._cache[key]

    def _resolve(self, day: dt.date, school: str | None) -> DayInfo:
        if self.problem:
            return DayInfo(day, "unknown", self.problem)
        if school and school in self.school_problems:
            return DayInfo(day, "unknown", f"{school}: {self.school_problems[school]}")
        info = self._resolve_known(day, self._schools.get(school) if school else None)
        if info.known and not self.yields_class_days:
            reason = f"calendar {self.calendar.name} yields no class days (check its terms and rules)"
            return DayInfo(day, "unknown", reason, info.testing, info.testing_reason)
        return info

    def _unknown_reason(self, day: dt.date) -> str:
        span = self.known_span
        if span is None:
            return f"calendar {self.calendar.name} names no days at all"
        if day > span[1]:
            return f"after the calendar's last known day {span[1].isoformat()}"
        if day < span[0]:
            return f"before the calendar's first known day {span[0].isoformat()}"
        return "outside every term, and no calendar entry names it"

    def _resolve_known(self, day: dt.date, school_layer: _Layer | None) -> DayInfo:
        term = self.term_of(day)
        kind: DayKind | None = None
        reason = ""
        if term is not None:
            if self._listed and day not in self._listed:
                kind, reason = "no_students", "not listed as a class day"
            elif not self._listed and day.weekday() not in self._class_weekdays:
                weekday = WEEKDAYS[day.weekday()]
                reason = "weekend" if weekday in ("sat", "sun") else f"no classes on {weekday}"
                kind = "no_students"
            else:
                kind, reason = "class_day", term.name
        for layer in (self.district, school_layer):
            entry = layer.pick(day) if layer is not None else None
            if entry is not None:
                kind, reason = entry.kind, entry.reason  # type: ignore[assignment]
        testing_reasons = [
            layer.testing[day] for layer in (self.district, school_layer) if layer is not None and day in layer.testing
        ]
        if kind is None:
            kind, reason = "unknown", self._unknown_reason(day)
        return DayInfo(
            day,
            kind,
            reason,
            testing=bool(testing_reasons),
            testing_reason="; ".join(testing_reasons),
            term=term.name if term else None,
        )
