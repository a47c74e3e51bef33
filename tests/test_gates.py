"""Safety gates for destructive changes."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from orchestrator.backends.registry import CATALOG
from orchestrator.core.resources import Change, GateFacts, ResourceId
from orchestrator.engine.gates import Usage, build_window_schedules, gate_destructive
from orchestrator.policy.loader import load_policies
from orchestrator.policy.models import MaintenanceWindow, SchoolCalendar
from orchestrator.schooltime.calendar import SchoolDays
from orchestrator.schooltime.windows import WindowSchedule

REPO = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("America/Chicago")
OPEN_NOW = dt.datetime(2026, 12, 4, 23, 0, tzinfo=TZ)  # a Friday night
CLOSED_NOW = dt.datetime(2026, 12, 3, 23, 0, tzinfo=TZ)  # a Thursday night


def windows(**window_settings: Any) -> dict[str, WindowSchedule]:
    calendar = SchoolCalendar.model_validate(
        {
            "kind": "SchoolCalendar",
            "name": "district",
            "timezone": "America/Chicago",
            "terms": [{"name": "Fall semester", "first_day": "2026-08-13", "last_day": "2026-12-18"}],
        }
    )
    window = MaintenanceWindow.model_validate(
        {
            "kind": "MaintenanceWindow",
            "name": "overnight",
            "calendar": "district",
            "times": ["22:00-05:00"],
            "days": "nights_before_non_class_days",
            **window_settings,
        }
    )
    return {"overnight": WindowSchedule(window, SchoolDays(calendar))}


def reimage(
    serial: str,
    *,
    policy: str = "lab-reset",
    cap: int | None = 3,
    window: str = "overnight",
    school: str | None = None,
    method: str = "wipe_users",
    budget: str | None = None,
    school_devices: int = 0,
) -> Change:
    return Change(
        id=ResourceId("google", "reimage", serial),
        op="action",
        before=None,
        after="wipe_users",
        policy=policy,
        window=window,
        destructive=True,
        gate=GateFacts(
            policy=policy,
            window=window,
            serial=serial,
            school=school,
            method=method,
            deprovision=method == "deprovision",
            max_devices_per_window=cap,
            budget_per_school=budget,
            school_devices=school_devices,
        ),
    )


def never_used(usage: Usage) -> int:
    return 0


def gate(changes: list[Change], **kwargs: Any) -> list[Any]:
    options: dict[str, Any] = {
        "now": OPEN_NOW,
        "windows": windows(),
        "used_in_window": never_used,
        "max_destructive": None,
    }
    options.update(kwargs)
    return gate_destructive(changes, **options)


def test_change_in_an_open_window_is_allowed_and_says_until_when() -> None:
    [decision] = gate([reimage("SN001")])
    assert decision.allowed
    assert decision.reason == "window overnight open until 2026-12-05 05:00 CST"
    assert decision.interval_start == dt.datetime(2026, 12, 4, 22, 0, tzinfo=TZ)


def test_closed_window_defers_with_reason_and_next_open() -> None:
    [decision] = gate([reimage("SN001")], now=CLOSED_NOW)
    assert not decision.allowed
    assert "2026-12-04 is a class day" in decision.reason
    assert decision.next_open == dt.datetime(2026, 12, 4, 22, 0, tzinfo=TZ)


def test_unknown_or_missing_window_is_refused() -> None:
    [unknown] = gate([reimage("SN001", window="weekend")])
    assert not unknown.allowed and "unknown maintenance window 'weekend'" in unknown.reason
    [missing] = gate([reimage("SN002", window=None)])
    assert not missing.allowed and "names no maintenance window" in missing.reason


def test_per_policy_cap_counts_devices_already_done_in_this_interval() -> None:
    seen: list[Usage] = []

    def used(usage: Usage) -> int:
        seen.append(usage)
        return 2

    decisions = gate([reimage("SN003"), reimage("SN001"), reimage("SN002")], used_in_window=used)
    assert [(d.change_key, d.allowed) for d in decisions] == [
        (reimage("SN001").key, True),
        (reimage("SN002").key, False),
        (reimage("SN003").key, False),
    ]
    assert "blast radius" in decisions[1].reason and "3 of max 3 devices" in decisions[1].reason
    assert "the next window it fits in opens 2026-12-05 22:00" in decisions[1].reason
    assert decisions[1].next_open == dt.datetime(2026, 12, 5, 22, 0, tzinfo=TZ)  # the following night
    assert seen == [Usage(dt.datetime(2026, 12, 4, 22, 0, tzinfo=TZ), policy="lab-reset")]


def test_caps_are_per_policy() -> None:
    changes = [reimage(f"A{i:03d}", policy="a") for i in range(4)] + [
        reimage(f"B{i:03d}", policy="b") for i in range(4)
    ]
    policy_of = {c.key: c.policy for c in changes}
    allowed = Counter(policy_of[d.change_key] for d in gate(changes) if d.allowed)
    assert allowed == {"a": 3, "b": 3}


def test_global_max_destructive_limits_the_run() -> None:
    decisions = gate([reimage(f"SN{i:03d}", cap=100) for i in range(5)], max_destructive=2)
    assert [d.allowed for d in decisions] == [True, True, False, False, False]
    assert "--max-destructive 2" in decisions[2].reason


def test_override_blast_radius_lifts_caps_but_not_the_window() -> None:
    decisions = gate([reimage(f"SN{i:03d}", cap=1) for i in range(3)], max_destructive=2, override_blast_radius=True)
    assert all(d.allowed for d in decisions)
    assert "overridden" in decisions[2].reason
    [closed] = gate([reimage("SN001")], now=CLOSED_NOW, override_blast_radius=True)
    assert not closed.allowed


def test_deprovision_needs_acknowledgement() -> None:
    [refused] = gate([reimage("SN001", method="deprovision")])
    assert not refused.allowed and "acknowledge" in refused.reason
    [allowed] = gate([reimage("SN001", method="deprovision")], acknowledge_deprovision=True)
    assert allowed.allowed


def test_decisions_are_in_a_deterministic_order_whatever_the_input_order() -> None:
    changes = [reimage(f"SN{i:03d}") for i in (5, 1, 4, 2, 3)]
    first = [(d.change_key, d.allowed) for d in gate(changes)]
    second = [(d.change_key, d.allowed) for d in gate(list(reversed(changes)))]
    assert first == second
    assert [k for k, a in first if a] == [reimage(f"SN{i:03d}").key for i in (1, 2, 3)]


def test_window_limited_to_a_school_uses_the_change_school() -> None:
    schedules = windows()
    limited = schedules["overnight"].window.model_copy(update={"schools": ["jefferson-high"]})
    schedules["overnight"] = WindowSchedule(limited, schedules["overnight"].days)
    decisions = gate([reimage("SN001", school="jefferson-high"), reimage("SN002", school="lincoln")], windows=schedules)
    assert [d.allowed for d in decisions] == [True, False]


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError):
        gate([reimage("SN001")], now=dt.datetime(2026, 12, 4, 23, 0))


def test_build_window_schedules_from_the_sample_policies() -> None:
    schedules = build_window_schedules(load_policies(REPO / "policies"), REPO)
    assert set(schedules) == {"overnight-no-students", "break-days"}
    thanksgiving = dt.datetime(2026, 11, 26, 10, 0, tzinfo=TZ)
    assert schedules["break-days"].is_open(thanksgiving).open
    assert not schedules["overnight-no-students"].is_open(thanksgiving).open


def test_a_destructive_change_without_gate_facts_is_refused_not_waved_through() -> None:
    bare = reimage("SN001")
    bare.gate = None
    bare.meta = {"serial": "SN001"}  # no cap, no method: the first cut allowed this
    [decision] = gate([bare])
    assert not decision.allowed
    assert "carries no gate facts" in decision.reason


def test_an_unregistered_resource_type_is_an_error_not_a_harmless_default() -> None:
    from orchestrator.core.errors import UnknownResourceType

    with pytest.raises(UnknownResourceType, match="jamf/wipe"):
        CATALOG.type_of(ResourceId("jamf", "wipe", "SN001"))


def test_a_per_school_budget_holds_per_school_and_names_itself_and_the_next_window() -> None:
    """Issue 19 item 5: a count per school and night; other schools keep their own budget."""
    changes = [reimage(f"J{i:03d}", cap=100, school="jefferson", budget="2") for i in range(4)] + [
        reimage(f"L{i:03d}", cap=100, school="lincoln", budget="2") for i in range(3)
    ]
    school_of = {c.key: c.gate.school for c in changes}
    decisions = gate(changes)
    assert Counter(school_of[d.change_key] for d in decisions if d.allowed) == {"jefferson": 2, "lincoln": 2}
    refused = next(d for d in decisions if not d.allowed)
    assert "budget_per_school 2" in refused.reason and "at jefferson already has 2 of max 2" in refused.reason
    assert "the next window it fits in opens 2026-12-05 22:00" in refused.reason


def test_a_percentage_budget_is_a_share_of_the_schools_devices_and_at_least_one() -> None:
    big = [reimage(f"J{i:03d}", cap=100, school="jefferson", budget="10%", school_devices=40) for i in range(6)]
    assert sum(d.allowed for d in gate(big)) == 4  # 10% of 40
    small = [reimage(f"T{i:03d}", cap=100, school="tiny", budget="10%", school_devices=5) for i in range(3)]
    decisions = gate(small)
    assert sum(d.allowed for d in decisions) == 1  # 10% of 5 rounds down to 0: a school still gets one device
    assert "= 1 of 5 devices" in next(d.reason for d in decisions if not d.allowed)


def test_the_budget_counts_what_the_journal_says_was_done_at_that_school_tonight() -> None:
    def used(usage: Usage) -> int:
        return 2 if usage.school == "jefferson" else 0

    decisions = gate([reimage("J001", cap=100, school="jefferson", budget="2")], used_in_window=used)
    assert not decisions[0].allowed


def test_a_windows_district_wide_nightly_cap_spans_every_policy() -> None:
    schedules = windows(max_devices_per_night=3)
    changes = [reimage(f"A{i:03d}", policy="a", cap=100) for i in range(2)] + [
        reimage(f"B{i:03d}", policy="b", cap=100) for i in range(2)
    ]
    decisions = gate(changes, windows=schedules)
    assert sum(d.allowed for d in decisions) == 3
    assert "(district-wide max_devices_per_night)" in next(d.reason for d in decisions if not d.allowed)
