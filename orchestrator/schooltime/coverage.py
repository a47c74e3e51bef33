"""The calendars a policy set names: refreshing their feeds, and whether they still cover the school year.

`refresh_calendars` fetches every `ics.url` (district and per school) the SchoolCalendar policies name;
the window schedules call it first, so every job that gates disruptive work sees the calendar as it is
tonight. `coverage` turns each calendar into diagnostics with the policy's `file:line`:

- error: no class days in the next 365 days (last year's calendar, terms deleted, rules that never match);
- warning: coverage ends within 30 days (after that every disruptive window closes), or a feed that cannot
  be trusted right now (never fetched, stale: its windows are closed until it is refreshed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.core.errors import Diagnostic
from orchestrator.policy.loader import LoadedPolicy, PolicySet
from orchestrator.policy.models import IcsSource, SchoolCalendar
from orchestrator.schooltime.calendar import SchoolDays
from orchestrator.schooltime.feeds import RefreshResult, default_cache_dir, read_record, refresh_due, refresh_feed

__all__ = ["CoverageReport", "FeedRefresh", "coverage", "feeds_of", "refresh_calendars"]

COVERAGE_WARNING_DAYS = 30
NO_CLASS_DAYS_HORIZON = 365
Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class FeedRefresh:
    """One feed refreshed for one calendar (and school, for a school's own feed)."""

    calendar: str
    school: str | None
    result: RefreshResult


def feeds_of(policies: PolicySet) -> list[tuple[str, str | None, IcsSource]]:
    """(calendar, school or None, source) for every `ics.url` the SchoolCalendar policies name."""
    found: list[tuple[str, str | None, IcsSource]] = []
    for model, _ in policies.of_kind(SchoolCalendar):
        if model.ics is not None and model.ics.url:
            found.append((model.name, None, model.ics))
        for school, override in sorted(model.schools.items()):
            if override.ics is not None and override.ics.url:
                found.append((model.name, school, override.ics))
    return found


def refresh_calendars(
    policies: PolicySet,
    repo_root: Path | str,
    *,
    cache_dir: Path | str | None = None,
    min_interval: dt.timedelta = dt.timedelta(0),
    clock: Clock | None = None,
    accept_fewer_events: bool = False,
) -> list[FeedRefresh]:
    """Refresh every feed whose last attempt is at least `min_interval` old (0: all); one request per URL."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir(repo_root)
    now_of = clock or (lambda: dt.datetime.now(dt.UTC))
    done: dict[str, RefreshResult] = {}
    results: list[FeedRefresh] = []
    for calendar, school, source in feeds_of(policies):
        url = source.url or ""
        if url not in done:
            if not refresh_due(read_record(folder, url), now_of(), min_interval):
                continue
            done[url] = refresh_feed(url, folder, clock=now_of, accept_fewer_events=accept_fewer_events)
        results.append(FeedRefresh(calendar, school, done[url]))
    return results


@dataclass
class CoverageReport:
    """Calendar diagnostics: `errors` fail `validate`; `warnings` are shown by `validate` and `windows`."""

    errors: list[Diagnostic] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)


def _where(loaded: LoadedPolicy, model: SchoolCalendar) -> tuple[str, int, str]:
    key = "terms" if model.terms else ("ics" if model.ics is not None else "name")
    source = loaded.source_of(key)
    return source.file, source.line, key


def coverage(
    policies: PolicySet,
    repo_root: Path | str,
    *,
    today: dt.date | None = None,
    cache_dir: Path | str | None = None,
    clock: Clock | None = None,
) -> CoverageReport:
    """Check every SchoolCalendar against `today` (default: today in the calendar's zone); no network."""
    report = CoverageReport()
    for model, loaded in policies.of_kind(SchoolCalendar):
        days = SchoolDays(model, repo_root, cache_dir=cache_dir, clock=clock)
        file, line, key = _where(loaded, model)
        day = today or dt.datetime.now(days.tz).date()
        if days.problem:
            report.warnings.append(
                Diagnostic(
                    file,
                    line,
                    "ics",
                    f"calendar {model.name}: {days.problem}; its windows stay closed",
                    "run `orchestrator calendar refresh`",
                )
            )
            continue
        for school, problem in sorted(days.school_problems.items()):
            report.warnings.append(
                Diagnostic(
                    file,
                    line,
                    f"schools.{school}.ics",
                    f"calendar {model.name}, {school}: {problem}",
                    "run `orchestrator calendar refresh`",
                )
            )
        horizon = day + dt.timedelta(days=NO_CLASS_DAYS_HORIZON - 1)
        if days.class_days_between(day, horizon) == 0:
            last = days.last_known_day
            ends = f"its last known day is {last.isoformat()}" if last else "it names no days"
            report.errors.append(
                Diagnostic(
                    file,
                    line,
                    key,
                    f"calendar {model.name} has no class days between {day.isoformat()} and {horizon.isoformat()} "
                    f"({ends}); every disruptive window using it stays closed",
                    "this school year's terms, or an ics source whose rules find its class days",
                )
            )
            continue
        last = days.last_known_day
        if last is not None and 0 <= (last - day).days <= COVERAGE_WARNING_DAYS:
            left = (last - day).days
            report.warnings.append(
                Diagnostic(
                    file,
                    line,
                    key,
                    f"calendar {model.name} ends {last.isoformat()} (in {left} days); after that every disruptive "
                    "window using it closes",
                    "add next school year's terms or feed",
                )
            )
    return report
