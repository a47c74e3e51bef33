"""Safety gates for destructive changes: open window, blast radius, deprovision acknowledgement.

The executor calls `gate_destructive` with the destructive changes of a plan just before applying them and
sends only those with `allowed=True`. Rules, checked per change in a deterministic order (policy, then
serial, then idempotency key):

0. Every destructive change carries typed `GateFacts` (`change.gate`); one without them is refused, never
   waved through because a loosely-typed key happened to be missing.
1. `gate.deprovision` is refused unless `acknowledge_deprovision`.
2. `gate.window` must name a known MaintenanceWindow that is open at `now` for `gate.school`;
   otherwise the change is deferred, with the window's reason and when it next opens.
3. Per policy and window interval at most `gate.max_devices_per_window` devices (one change = one
   device), counting `used_in_window(policy, interval_start)` already done plus those allowed earlier in
   this call. Over the cap: refused (next_open = the following open interval) unless `override_blast_radius`.
4. At most `max_destructive` changes allowed per call (the global `--max-destructive`); beyond that
   refused unless `override_blast_radius`.

`override_blast_radius` lifts the caps only; it never opens a window or acknowledges a deprovision.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from orchestrator.engine.resources import Change
from orchestrator.windows import Interval, WindowSchedule, WindowState, build_window_schedules

__all__ = ["GateDecision", "build_window_schedules", "gate_destructive", "gate_order"]


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
    used_in_window: Callable[[str, dt.datetime], int],
    max_destructive: int | None,
    override_blast_radius: bool = False,
    acknowledge_deprovision: bool = False,
) -> list[GateDecision]:
    """One decision per change, in `gate_order`; see the module docstring for the rules."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    decisions: list[GateDecision] = []
    allowed_per_interval: dict[tuple[str, dt.datetime], int] = defaultdict(int)
    used_cache: dict[tuple[str, dt.datetime], int] = {}
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
        refusal = _cap_refusal(change, interval, allowed_per_interval, used_cache, used_in_window)
        if refusal:
            if not override_blast_radius:
                following = following_of(change.window, school, interval)
                decisions.append(
                    GateDecision(
                        key,
                        False,
                        refusal,
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
        if change.policy:
            allowed_per_interval[(change.policy, interval.start.astimezone(dt.UTC))] += 1
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


def _cap_refusal(
    change: Change,
    interval: Interval,
    allowed_per_interval: Mapping[tuple[str, dt.datetime], int],
    used_cache: dict[tuple[str, dt.datetime], int],
    used_in_window: Callable[[str, dt.datetime], int],
) -> str:
    """Why the policy's per-window device cap refuses this change, or "" when under it."""
    cap = change.gate.max_devices_per_window if change.gate else None
    if cap is None or not change.policy:
        return ""
    slot = (change.policy, interval.start.astimezone(dt.UTC))
    if slot not in used_cache:
        used_cache[slot] = used_in_window(change.policy, interval.start)
    used = used_cache[slot] + allowed_per_interval.get(slot, 0)
    if used < int(cap):
        return ""
    return (
        f"refused: blast radius: policy {change.policy} already has {used} of max {cap} devices in the "
        f"window starting {_fmt(interval.start)}"
    )
