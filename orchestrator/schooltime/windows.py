"""Maintenance windows: when a MaintenanceWindow is open, and why it is closed.

Over 400 lines: the window rules below are one class (`WindowSchedule`: eligibility, blackouts, DST-safe
intervals, next and following open interval) plus the two read-only views over it that the CLI shows
(`describe_windows`, `explain`); the views are the part to move out if it grows.

Semantics (all in the calendar's time zone):

- Each `times` range on day D gives one interval, the "night of D". A range that crosses midnight
  ("22:00-05:00") belongs to the night that STARTS on D and ends on D+1. Ranges are not merged: write
  "22:00-05:00", not "22:00-24:00" plus "00:00-05:00" (the second would be the early morning of D).
- **Unknown days close every window first**: an interval that touches a day the calendar does not know
  (outside every term with no entry, after its last known day, a calendar without class days, a stale or
  broken feed), or whose eligibility depends on one, is closed with that reason, whatever `days` says.
- `days` decides which nights are eligible:
  `non_class_days`: D itself has no students; `nights_before_non_class_days`: D+1 has no students (so never
  the night before a term's first day, which is a class day); `no_staff_days` / `nights_before_no_staff_days`:
  the same, but staff-only days (teacher workdays) do not count; `any_night`: every night; `dates`: D is in
  the window's `dates`.
- "No students" is any known day that is not a class day: weekends, holidays, breaks and **staff-only
  days** (teacher workdays). Staff-only days count for the `non_class_days` modes because students' devices
  are idle; the reason says "staff-only day" so nobody is surprised. A window that must not disturb
  teachers preparing their rooms uses the `no_staff_days` modes instead.
- Blackouts close an eligible interval when it **touches** (covers any instant of) a blacked-out local date:
  `days_before_term_start: N` blacks out the N days before each term's first day (first_day-N ..
  first_day-1, so always the day before; N = 0 disables it), `testing_days` blacks out testing days (a night
  ending on a testing morning touches it) **and every interval starting the day before a testing day** (no
  disruptive work on the night before testing, whatever its times), `dates` blacks out listed dates.
- `schools`: a window that lists schools is closed for any other school and for changes that name none.
- An interval is wholly open or wholly closed; `is_open` never opens part of one.

Daylight saving time: interval ends are instants, so a 22:00-05:00 night is 8 h long on the fall-back night
and 6 h long on the spring-forward night. A local time that does not exist (inside the spring-forward gap)
means the first instant after the gap; a local time that occurs twice (fall back) means its first
occurrence for a start and its second for an end, so the window covers every instant whose wall clock is
inside the range.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo

from orchestrator.policy.grammar import parse_time_range
from orchestrator.policy.loader import PolicySet
from orchestrator.policy.models import DayRange, MaintenanceWindow, SchoolCalendar
from orchestrator.schooltime.calendar import SchoolDays
from orchestrator.schooltime.coverage import refresh_calendars

UTC = dt.UTC
SEARCH_DAYS = 400
"""How far `next_open` looks ahead before answering None."""


class Interval(NamedTuple):
    """One window interval [start, end), both aware datetimes in the calendar's zone."""

    start: dt.datetime
    end: dt.datetime

    def contains(self, at: dt.datetime) -> bool:
        return self.start.astimezone(UTC) <= at.astimezone(UTC) < self.end.astimezone(UTC)

    @property
    def duration(self) -> dt.timedelta:
        return self.end.astimezone(UTC) - self.start.astimezone(UTC)

    def __str__(self) -> str:
        return f"{_fmt(self.start)} - {_fmt(self.end)}"


@dataclass(frozen=True)
class WindowState:
    """Whether a window is open at one instant. `interval` is the open interval (None when closed)."""

    open: bool
    reason: str
    interval: Interval | None = None


def _fmt(when: dt.datetime) -> str:
    return f"{when:%Y-%m-%d %H:%M %Z}"


def _transition(earlier: dt.datetime, later: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The first UTC instant in [earlier, later] whose offset equals `later`'s (bisection to the second)."""
    target = later.astimezone(tz).utcoffset()
    lo, hi = 0, int((later - earlier).total_seconds())
    while lo < hi:
        mid = (lo + hi) // 2
        if (earlier + dt.timedelta(seconds=mid)).astimezone(tz).utcoffset() == target:
            hi = mid
        else:
            lo = mid + 1
    return (earlier + dt.timedelta(seconds=lo)).astimezone(tz)


def local_instant(day: dt.date, at: dt.time, tz: ZoneInfo, edge: Literal["start", "end"]) -> dt.datetime:
    """The instant local wall time `at` on `day` means, with deliberate answers for DST gaps and folds."""
    naive = dt.datetime.combine(day, at)
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    u_first, u_second = first.astimezone(UTC), second.astimezone(UTC)
    if u_first == u_second:
        return first
    exists = u_first.astimezone(tz).replace(tzinfo=None) == naive
    if not exists:  # in the spring-forward gap: the first instant after it
        return _transition(min(u_first, u_second), max(u_first, u_second), tz)
    return first if edge == "start" else second


class WindowSchedule:
    """Open/closed answers for one MaintenanceWindow over one calendar's school days."""

    def __init__(self, window: MaintenanceWindow, days: SchoolDays):
        self.window = window
        self.days = days
        self.tz = days.tz
        self.ranges = [parse_time_range(t) for t in window.times]
        self._dates = {d: r for d, r in _expand(window.dates)}
        self._blackout_dates = {d: r for d, r in _expand(window.blackouts.dates)}
        self._intervals: dict[tuple[dt.date, int], Interval] = {}
        self._states: dict[tuple[dt.date, int, str | None], tuple[bool, str]] = {}

    @property
    def name(self) -> str:
        return self.window.name

    # --- building blocks -------------------------------------------------------------------------

    def interval(self, night: dt.date, index: int = 0) -> Interval:
        """The interval of `times[index]` on the night starting `night` (open or not)."""
        key = (night, index)
        if key not in self._intervals:
            start_t, end_t = self.ranges[index]
            end_day = night + dt.timedelta(days=1) if end_t <= start_t else night
            self._intervals[key] = Interval(
                local_instant(night, start_t, self.tz, "start"), local_instant(end_day, end_t, self.tz, "end")
            )
        return self._intervals[key]

    def touched_days(self, interval: Interval) -> list[dt.date]:
        """Local dates the interval covers any instant of."""
        first = interval.start.astimezone(self.tz).date()
        last = (interval.end.astimezone(UTC) - dt.timedelta(microseconds=1)).astimezone(self.tz).date()
        return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]

    def night_state(self, night: dt.date, index: int = 0, school: str | None = None) -> tuple[bool, str]:
        """(open, reason) for one interval, checking schools, eligible days and blackouts in that order."""
        key = (night, index, school)
        if key not in self._states:
            self._states[key] = self._decide(night, index, school)
        return self._states[key]

    def _decide(self, night: dt.date, index: int, school: str | None) -> tuple[bool, str]:
        if self.window.schools and school not in self.window.schools:
            who = f"school {school!r}" if school else "a change that names no school"
            return False, f"window is limited to {', '.join(self.window.schools)}, not {who}"
        interval = self.interval(night, index)
        unknown = self._unknown(night, interval, school)
        if unknown:
            return False, unknown
        eligible, reason = self._eligible(night, school)
        if not eligible:
            return False, reason
        blackout = self._blackout(night, interval, school)
        if blackout:
            return False, blackout
        return True, reason

    def _unknown(self, night: dt.date, interval: Interval, school: str | None) -> str:
        """Why the calendar cannot vouch for this interval ("" when it can): unknown days fail closed."""
        days = set(self.touched_days(interval))
        if self.window.days.startswith("nights_before"):
            days.add(night + dt.timedelta(days=1))
        for day in sorted(days):
            info = self.days.day(day, school)
            if not info.known:
                return info.describe()
        return ""

    def _eligible(self, night: dt.date, school: str | None) -> tuple[bool, str]:
        mode = self.window.days
        if mode in ("non_class_days", "no_staff_days"):
            info = self.days.day(night, school)
            if mode == "no_staff_days" and info.kind == "staff_only":
                return False, f"{info.describe()}; the window excludes days with staff in the building"
            return not info.has_students, info.describe()
        if mode in ("nights_before_non_class_days", "nights_before_no_staff_days"):
            info = self.days.day(night + dt.timedelta(days=1), school)
            if info.has_students:
                return False, f"the night of {night.isoformat()} is before a class day: {info.describe()}"
            if mode == "nights_before_no_staff_days" and info.kind == "staff_only":
                return False, (
                    f"the night of {night.isoformat()} is before {info.describe()}; the window excludes "
                    "nights before days with staff in the building"
                )
            return True, f"night before {info.describe()}"
        if mode == "any_night":
            return True, "any night"
        if night in self._dates:
            return True, f"{night.isoformat()} is a window date ({self._dates[night] or 'listed'})"
        return False, f"{night.isoformat()} is not one of the window's dates"

    def _blackout(self, night: dt.date, interval: Interval, school: str | None) -> str:
        if self.window.blackouts.testing_days:
            following = self.days.day(night + dt.timedelta(days=1), school)
            if following.testing:
                return (
                    f"blackout: the night before testing day {following.date.isoformat()} ({following.testing_reason})"
                )
        n_before = self.window.blackouts.days_before_term_start
        for day in self.touched_days(interval):
            if n_before:
                term = self.days.term_starting_within(day, n_before)
                if term is not None:
                    ahead = (term.first_day - day).days
                    plural = "day" if ahead == 1 else "days"
                    return (
                        f"blackout: {day.isoformat()} is {ahead} {plural} before {term.name} "
                        f"starts {term.first_day.isoformat()}"
                    )
            if self.window.blackouts.testing_days:
                info = self.days.day(day, school)
                if info.testing:
                    return f"blackout: {day.isoformat()} is a testing day ({info.testing_reason})"
            if day in self._blackout_dates:
                return f"blackout: {day.isoformat()} ({self._blackout_dates[day] or 'blackout date'})"
        return ""

    def _candidates(self, first_night: dt.date, nights: int) -> list[tuple[dt.date, int, Interval]]:
        found = []
        for offset in range(nights):
            night = first_night + dt.timedelta(days=offset)
            for index in range(len(self.ranges)):
                found.append((night, index, self.interval(night, index)))
        found.sort(key=lambda c: (c[2].start.astimezone(UTC), c[1]))
        return found

    # --- questions ---------------------------------------------------------------------------------

    def is_open(self, at: dt.datetime, school: str | None = None) -> WindowState:
        """Open or closed at `at`, with the reason (why it is closed, or which day makes it open)."""
        _require_aware(at)
        local_day = at.astimezone(self.tz).date()
        closed: str | None = None
        for night, index, interval in self._candidates(local_day - dt.timedelta(days=1), 2):
            if not interval.contains(at):
                continue
            is_open, reason = self.night_state(night, index, school)
            if is_open:
                return WindowState(True, f"open until {_fmt(interval.end)}: {reason}", interval)
            closed = closed or reason
        if closed is not None:
            return WindowState(False, closed)
        return WindowState(False, f"outside {', '.join(self.window.times)}")

    def next_open(self, after: dt.datetime, school: str | None = None) -> Interval | None:
        """The open interval containing `after`, else the next one to open (within SEARCH_DAYS), else None."""
        _require_aware(after)
        first = after.astimezone(self.tz).date() - dt.timedelta(days=1)
        after_utc = after.astimezone(UTC)
        for night, index, interval in self._candidates(first, SEARCH_DAYS + 2):
            if interval.end.astimezone(UTC) <= after_utc:
                continue
            if self.night_state(night, index, school)[0]:
                return interval
        return None

    def following_open(self, interval: Interval, school: str | None = None) -> Interval | None:
        """The next open interval that starts at or after `interval` ends."""
        found = self.next_open(interval.end, school)
        while found is not None and found.start.astimezone(UTC) < interval.end.astimezone(UTC):
            found = self.next_open(found.end, school)
        return found

    def open_windows(self, start: dt.datetime, days: int, school: str | None = None) -> list[Interval]:
        """Open intervals overlapping [start, start + days)."""
        _require_aware(start)
        stop = start.astimezone(UTC) + dt.timedelta(days=days)
        first = start.astimezone(self.tz).date() - dt.timedelta(days=1)
        result = []
        for night, index, interval in self._candidates(first, days + 2):
            if not _overlaps(interval, start, stop):
                continue
            if self.night_state(night, index, school)[0]:
                result.append(interval)
        return result

    def closed_nights(self, start: dt.datetime, days: int, school: str | None = None) -> list[tuple[Interval, str]]:
        """Intervals in [start, start + days) that are closed, with why (for `orchestrator windows`)."""
        _require_aware(start)
        stop = start.astimezone(UTC) + dt.timedelta(days=days)
        first = start.astimezone(self.tz).date() - dt.timedelta(days=1)
        result = []
        for night, index, interval in self._candidates(first, days + 2):
            if not _overlaps(interval, start, stop):
                continue
            is_open, reason = self.night_state(night, index, school)
            if not is_open:
                result.append((interval, reason))
        return result


def _overlaps(interval: Interval, start: dt.datetime, stop: dt.datetime) -> bool:
    return interval.end.astimezone(UTC) > start.astimezone(UTC) and interval.start.astimezone(UTC) < stop


def _require_aware(at: dt.datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{at!r} has no time zone; window questions need aware datetimes")


def _expand(ranges: list[DayRange]) -> list[tuple[dt.date, str]]:
    days = []
    for entry in ranges:
        day = entry.first
        while day <= entry.last:
            days.append((day, entry.reason))
            day += dt.timedelta(days=1)
    return days


# --- wiring for the engine and the CLI -----------------------------------------------------------


Clock = Callable[[], dt.datetime]


def build_school_days(
    policies: PolicySet,
    repo_root: Path | str,
    *,
    cache_dir: Path | str | None = None,
    refresh: bool = True,
    refresh_every: dt.timedelta = dt.timedelta(0),
    clock: Clock | None = None,
) -> dict[str, SchoolDays]:
    """One SchoolDays per SchoolCalendar policy, keyed by calendar name.

    With `refresh`, every `ics.url` feed whose last attempt is at least `refresh_every` old is fetched first
    (a conditional request: a 304 costs one round trip), so gates see tonight's calendar. `cache_dir`
    defaults to `<repo_root>/.orchestrator/calendars`; `clock` is the wall clock that staleness is measured
    against (never a rehearsed `--at` time).
    """
    if refresh:
        refresh_calendars(policies, repo_root, cache_dir=cache_dir, min_interval=refresh_every, clock=clock)
    return {
        model.name: SchoolDays(model, repo_root, cache_dir=cache_dir, clock=clock)
        for model, _ in policies.of_kind(SchoolCalendar)
    }


def build_window_schedules(
    policies: PolicySet,
    repo_root: Path | str,
    *,
    cache_dir: Path | str | None = None,
    refresh: bool = True,
    refresh_every: dt.timedelta = dt.timedelta(0),
    clock: Clock | None = None,
) -> dict[str, WindowSchedule]:
    """One WindowSchedule per MaintenanceWindow policy, keyed by window name (calendars read once).

    Feeds that are due are refreshed first (see `build_school_days`); the schedules answer for any `now`.
    """
    calendars = build_school_days(
        policies, repo_root, cache_dir=cache_dir, refresh=refresh, refresh_every=refresh_every, clock=clock
    )
    return {
        model.name: WindowSchedule(model, calendars[model.calendar])
        for model, _ in policies.of_kind(MaintenanceWindow)
        if model.calendar in calendars
    }


@dataclass(frozen=True)
class WindowRow:
    """One line of `orchestrator windows`: an interval of a window, open or closed, and why."""

    window: str
    start: dt.datetime
    end: dt.datetime
    open: bool
    reason: str


def describe_windows(
    policies: PolicySet,
    repo_root: Path | str,
    now: dt.datetime,
    days: int = 30,
    school: str | None = None,
    *,
    include_closed: bool = False,
    schedules: Mapping[str, WindowSchedule] | None = None,
) -> list[WindowRow]:
    """Every window's open intervals (and, if asked, closed ones with the reason) in [now, now + days)."""
    rows: list[WindowRow] = []
    built = schedules if schedules is not None else build_window_schedules(policies, repo_root)
    for name, schedule in sorted(built.items()):
        for interval in schedule.open_windows(now, days, school):
            state = schedule.is_open(max(interval.start, now, key=lambda t: t.astimezone(UTC)), school)
            rows.append(WindowRow(name, interval.start, interval.end, True, state.reason))
        if include_closed:
            for interval, reason in schedule.closed_nights(now, days, school):
                rows.append(WindowRow(name, interval.start, interval.end, False, reason))
    rows.sort(key=lambda r: (r.start.astimezone(UTC), r.window))
    return rows


@dataclass(frozen=True)
class WindowExplanation:
    """`orchestrator windows --at TIME`: one window's state at that instant and when it next opens."""

    window: str
    calendar: str
    state: WindowState
    next_open: Interval | None


def explain(
    policies: PolicySet,
    repo_root: Path | str,
    at: dt.datetime,
    school: str | None = None,
    *,
    schedules: Mapping[str, WindowSchedule] | None = None,
) -> list[WindowExplanation]:
    """Why each window is open or closed at `at` (any instant, past or future: a rehearsal)."""
    result = []
    built = schedules if schedules is not None else build_window_schedules(policies, repo_root)
    for name, schedule in sorted(built.items()):
        state = schedule.is_open(at, school)
        upcoming = state.interval if state.open else schedule.next_open(at, school)
        result.append(WindowExplanation(name, schedule.window.calendar, state, upcoming))
    return result
