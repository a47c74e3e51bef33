"""LostDevicePolicy.escalate: what the policy language accepts, and every mistake named with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.core.errors import PolicyError
from orchestrator.policy.loader import load_policies
from orchestrator.policy.models import LostDevicePolicy

WINDOW = """\
kind: SchoolCalendar
name: cal
timezone: America/Chicago
terms: [{name: Fall, first_day: 2026-08-13, last_day: 2026-12-18}]
---
kind: MaintenanceWindow
name: nights
calendar: cal
times: ["22:00-05:00"]
days: any_night
"""

LOST = """\
kind: LostDevicePolicy
name: lost-devices
message: Please return this device to any school office.
escalate:
  after_school_days: {days}
  action: {action}
  window: {window}
"""


def problems(folder: Path) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policies(folder, display_root=folder.parent)
    return [str(d) for d in info.value.diagnostics]


def test_a_valid_escalation_loads_with_its_blast_radius_defaults(policy_dir) -> None:
    folder = policy_dir({"w.yaml": WINDOW, "lost.yaml": LOST.format(days=10, action="powerwash", window="nights")})
    ((model, loaded),) = load_policies(folder).of_kind(LostDevicePolicy)
    rule = model.escalate
    assert rule is not None
    assert (rule.after_school_days, rule.action, rule.window) == (10, "powerwash", "nights")
    assert rule.max_devices_per_window == 10
    assert str(loaded.source_of("escalate")).endswith("lost.yaml:4")


def test_an_unknown_window_is_an_error_at_its_line_with_did_you_mean(policy_dir) -> None:
    folder = policy_dir({"w.yaml": WINDOW, "lost.yaml": LOST.format(days=10, action="wipe", window="night")})
    (message,) = problems(folder)
    assert message.startswith("policies/lost.yaml:7: escalate.window: no MaintenanceWindow named 'night'")
    assert "did you mean 'nights'?" in message and "known: nights" in message


def test_an_unknown_action_lists_the_four_actions(policy_dir) -> None:
    folder = policy_dir({"w.yaml": WINDOW, "lost.yaml": LOST.format(days=10, action="erase", window="nights")})
    (message,) = problems(folder)
    assert message.startswith("policies/lost.yaml:6: escalate.action")
    for action in ("powerwash", "wipe", "deprovision", "retire"):
        assert action in message


@pytest.mark.parametrize("days", [0, -1, 181, '"10"'])
def test_after_school_days_must_be_a_whole_number_from_1_to_180(policy_dir, days: object) -> None:
    folder = policy_dir({"w.yaml": WINDOW, "lost.yaml": LOST.format(days=days, action="wipe", window="nights")})
    (message,) = problems(folder)
    assert message.startswith("policies/lost.yaml:5: escalate.after_school_days"), message


def test_unknown_keys_under_escalate_are_errors(policy_dir) -> None:
    text = LOST.format(days=10, action="wipe", window="nights") + "  after_days: 3\n"
    folder = policy_dir({"w.yaml": WINDOW, "lost.yaml": text})
    (message,) = problems(folder)
    assert message.startswith("policies/lost.yaml:8: escalate.after_days: unknown key"), message
