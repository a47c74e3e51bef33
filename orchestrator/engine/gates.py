"""Safety gates for destructive changes: open window, blast radius, deprovision acknowledgement.

The executor calls `gate_destructive` with the destructive changes of a plan just before applying them and
sends only those with `allowed=True`. Rules, checked per change in a deterministic order (policy, then
serial, then idempotency key):

0. Every destructive change carries typed `GateFacts` (`change.gate`); one without them is refused, never
   waved through because a loosely-typed key happened to be missing.
1. `gate.deprovision` is refused unless `acknowledge_deprovision`.
2. `gate.window` must name a known MaintenanceWindow that is open at `now` for `gate.school`;
   otherwise the change is deferred, with the window's reason and when it next opens.
3. Caps per window interval (a night, for an overnight window), each counting what the journal says was
   already done (`used_in_window(Usage)`) plus what this call allowed before: the policy's
   `max_devices_per_window`; its `budget_per_school` (a count, or a share of the school's devices, at least
   1); the window's district-wide `max_devices_per_night` across every policy. Over a cap: refused, naming
   the cap and the next open interval in which the work fits, unless `override_blast_radius`.
4. At most `max_destructive` changes allowed per call (the global `--max-destructive`); beyond that
   refused unless `override_blast_radius`.

`override_blast_radius` lifts the caps only; it never opens a window or acknowledges a deprovision.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from orchestrator.core.resources import Change, GateFacts
from orchestrator.engine.journal import Journal
from orchestrator.schooltime.windows import Interval, WindowSchedule, WindowState, build_window_schedules

__all__ = [
    "GateDecision",
    "Usage",
    "build_window_schedules",
    "gate_destructive",
    "gate_order",
    "journal_usage",
    "school_budget",
]


@dataclass
class GateDecision:
    """The gate's answer for one destructive change."""

    change_key: str
    allowed: bool
    reason: str
    next_open: dt.datetime | None = None
    window: str | None = None
    interval_start: dt.datetime | None = None
    """Start of the open window interval the change is counted against (journal it with the action)."""


def gate_order(change: Change) -> tuple[str, str, str]:
    """The order the gate considers changes in: policy, serial, idempotency key."""
    serial = change.gate.serial if change.gate else ""
    return (change.policy or "", serial, change.key)


def _fmt(when: dt.datetime) -> str:
    return f"{when:%Y-%m-%d %H:%M %Z}"


def gate_destructive(
    changes: Sequence[Change],
    *,
    now: dt.datetime,
    windows: Mapping[str, WindowSchedule],
    used_in_window: Callable[[Usage], int],
    max_destructive: int | None,
    override_blast_radius: bool = False,
    acknowledge_deprovision: bool = False,
) -> list[GateDecision]:
    """One decision per change, in `gate_order`; see the module docstring for the rules."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    decisions: list[GateDecision] = []
    counter = _Counter(used_in_window)
    allowed_total = 0

    @cache
    def state_of(window: str, school: str | None) -> WindowState:
        return windows[window].is_open(now, school)

    @cache
    def next_of(window: str, school: str | None) -> Interval | None:
        return windows[window].next_open(now, school)

    @cache
    def following_of(window: str, school: str | None, interval: Interval) -> Interval | None:
        return windows[window].following_open(interval, school)

    for change in sorted(changes, key=gate_order):
        key = change.key
        facts = change.gate
        if facts is None:
            decisions.append(
                GateDecision(
                    key,
                    False,
                    f"refused: destructive change {change.id} carries no gate facts (window, school, method, caps);"
                    " re-plan with this version of the orchestrator",
                    window=change.window,
                )
            )
            continue
        school = facts.school
        if facts.deprovision and not acknowledge_deprovision:
            decisions.append(
                GateDecision(
                    key,
                    False,
                    "deprovision needs an explicit acknowledgement (--acknowledge-deprovision)",
                    window=change.window,
                )
            )
            continue
        if not change.window:
            decisions.append(GateDecision(key, False, "refused: destructive change names no maintenance window"))
            continue
        if change.window != facts.window:
            decisions.append(
                GateDecision(key, False, f"refused: window {change.window!r} differs from its gate facts' window")
            )
            continue
        schedule = windows.get(change.window)
        if schedule is None:
            known = ", ".join(sorted(windows)) or "none"
            decisions.append(
                GateDecision(
                    key,
                    False,
                    f"unknown maintenance window {change.window!r} (known: {known})",
                    window=change.window,
                )
            )
            continue
        state = state_of(change.window, school)
        if not state.open or state.interval is None:
            upcoming = next_of(change.window, school)
            when = f"; next opens {_fmt(upcoming.start)}" if upcoming else "; no open interval within 400 days"
            decisions.append(
                GateDecision(
                    key,
                    False,
                    f"deferred: window {change.window} closed: {state.reason}{when}",
                    next_open=upcoming.start if upcoming else None,
                    window=change.window,
                )
            )
            continue
        interval = state.interval
        overrides: list[str] = []
        caps = _caps(change.window, facts, windows[change.window], interval)
        over = next(((usage, limit, who, cap) for usage, limit, who, cap in caps if counter.used(usage) >= limit), None)
        refusal = ""
        if over is not None:
            usage, limit, who, cap = over
            refusal = (
                f"refused: {who} already has {counter.used(usage)} of max {limit} devices in the window starting "
                f"{_fmt(interval.start)} ({cap})"
            )
            if not override_blast_radius:
                following = following_of(change.window, school, interval)
                fits = f"; the next window it fits in opens {_fmt(following.start)}" if following else ""
                decisions.append(
                    GateDecision(
                        key,
                        False,
                        refusal + fits,
                        next_open=following.start if following else None,
                        window=change.window,
                        interval_start=interval.start,
                    )
                )
                continue
            overrides.append(refusal)
        if max_destructive is not None and allowed_total >= max_destructive:
            refusal = f"refused: --max-destructive {max_destructive} reached in this run"
            if not override_blast_radius:
                decisions.append(GateDecision(key, False, refusal, window=change.window, interval_start=interval.start))
                continue
            overrides.append(refusal)
        allowed_total += 1
        for usage, *_ in caps:
            counter.allow(usage)
        note = f" (blast radius overridden: {'; '.join(overrides)})" if overrides else ""
        decisions.append(
            GateDecision(
                key,
                True,
                f"window {change.window} open until {_fmt(interval.end)}{note}",
                window=change.window,
                interval_start=interval.start,
            )
        )
    return decisions


@dataclass(frozen=True)
class Usage:
    """What one cap counts: destructive actions in the window interval starting `start`, narrowed to one policy,
    one school of a policy, or one window (district-wide). The journal answers it from the actions it recorded."""

    start: dt.datetime
    policy: str | None = None
    school: str | None = None
    window: str | None = None


def journal_usage(journal: Journal) -> Callable[[Usage], int]:
    """`used_in_window` answered from the journal's recorded actions (what the executor and the dry run use)."""

    def used(usage: Usage) -> int:
        start = usage.start.astimezone(dt.UTC).isoformat()
        return journal.destructive_used(start, policy=usage.policy, school=usage.school, window=usage.window)

    return used


class _Counter:
    """Actions already done per Usage (asked of the journal once) plus those allowed earlier in this call."""

    def __init__(self, used_in_window: Callable[[Usage], int]):
        self._ask = used_in_window
        self._done: dict[Usage, int] = {}
        self._allowed: dict[Usage, int] = defaultdict(int)

    def used(self, usage: Usage) -> int:
        if usage not in self._done:
            self._done[usage] = self._ask(usage)
        return self._done[usage] + self._allowed[usage]

    def allow(self, usage: Usage) -> None:
        self._allowed[usage] += 1


def school_budget(facts: GateFacts) -> int | None:
    """The per-school, per-interval device budget: a count, or a share of the school's devices (at least 1)."""
    raw = facts.budget_per_school
    if raw is None or not facts.school:
        return None
    if raw.endswith("%"):
        return max(1, math.floor(float(raw[:-1]) * facts.school_devices / 100))
    return int(raw)


def _caps(
    window: str, facts: GateFacts, schedule: WindowSchedule, interval: Interval
) -> list[tuple[Usage, int, str, str]]:
    """Every cap on one change in `interval`: (what it counts, its limit, whose count it is, which cap)."""
    start = interval.start.astimezone(dt.UTC)
    caps: list[tuple[Usage, int, str, str]] = []
    if facts.max_devices_per_window is not None:
        caps.append(
            (
                Usage(start, policy=facts.policy),
                facts.max_devices_per_window,
                f"blast radius: policy {facts.policy}",
                "max_devices_per_window",
            )
        )
    budget = school_budget(facts)
    if budget is not None:
        shown = str(facts.budget_per_school)
        share = f" = {budget} of {facts.school_devices} devices" if shown.endswith("%") else ""
        caps.append(
            (
                Usage(start, policy=facts.policy, school=facts.school),
                budget,
                f"budget: policy {facts.policy} at {facts.school}",
                f"budget_per_school {shown}{share}",
            )
        )
    nightly = schedule.window.max_devices_per_night
    if nightly is not None:
        caps.append(
            (
                Usage(start, window=window),
                nightly,
                f"budget: window {window} across every policy",
                "district-wide max_devices_per_night",
            )
        )
    return caps
