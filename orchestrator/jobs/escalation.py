"""Lost-device escalation at plan and apply time: the inventory, its history and the calendars, read together.

`plan_escalations` answers which lost devices are due at a time (orchestrator/inventory/escalation.py decides;
this reads the device history beside the inventory and the windows' school calendars, without fetching feeds:
a stale feed leaves its days unknown, which only delays an escalation). `withdrawn_escalations` re-reads the
inventory file at apply time and names every escalation of a plan that is no longer wanted (the device was
found, lost again on another day, or the policy changed), so nothing is wiped on an old reason.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from orchestrator.engine.plan import Plan
from orchestrator.inventory.devices import Inventory, load_inventory
from orchestrator.inventory.edits import settled_history
from orchestrator.inventory.escalation import LOST, Escalations, SchoolDayCounter, find_escalations
from orchestrator.policy.loader import PolicySet
from orchestrator.policy.models import LostDevicePolicy, MaintenanceWindow
from orchestrator.schooltime.windows import build_school_days


def plan_escalations(
    policies: PolicySet, inventory: Inventory, inventory_path: Path, repo_root: Path, now: dt.datetime
) -> Escalations:
    """The lost devices due for escalation at `now` (nothing is read when no policy escalates)."""
    if not any(model.escalate for model, _ in policies.of_kind(LostDevicePolicy)):
        return Escalations()
    calendars = build_school_days(policies, repo_root, refresh=False)
    windows: dict[str, SchoolDayCounter] = {
        model.name: calendars[model.calendar]
        for model, _ in policies.of_kind(MaintenanceWindow)
        if model.calendar in calendars
    }
    history = settled_history(inventory_path, inventory.devices)
    return find_escalations(policies, inventory, history, windows, now)


def withdrawn_escalations(
    plan: Plan, policies: PolicySet, inventory_path: Path, repo_root: Path, now: dt.datetime | None = None
) -> dict[str, str]:
    """Change key → why an escalation in `plan` is no longer wanted at `now`, from the inventory file as it is now.

    Empty when the plan holds no escalation (nothing is read then).
    """
    planned = [c for c in plan.changes if isinstance(c.meta.get("escalation"), dict)]
    if not planned:
        return {}
    inventory = load_inventory(inventory_path)
    fresh = plan_escalations(policies, inventory, inventory_path, repo_root, now or dt.datetime.now(dt.UTC))
    devices = inventory.by_serial()
    out: dict[str, str] = {}
    for change in planned:
        serial = str(change.meta.get("serial") or "")
        device = devices.get(serial)
        due = fresh.due.get(serial)
        planned_as = change.meta["escalation"]
        if device is None:
            out[change.key] = f"{serial} is no longer in the inventory"
        elif device.inventoryStatus not in LOST:
            out[change.key] = f"{serial} is no longer lost (inventoryStatus {device.inventoryStatus})"
        elif due is None or (due.action, due.since.isoformat(), due.window) != (
            planned_as.get("action"),
            planned_as.get("since"),
            change.window,
        ):
            now_wanted = f"now {due.action}, {due.reason}" if due else "no escalation is due now"
            out[change.key] = f"{serial}: the policy no longer wants this escalation ({now_wanted})"
    return out
