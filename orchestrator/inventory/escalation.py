"""Which lost devices a LostDevicePolicy escalates (`escalate:`), and the destructive resource each one becomes.

A device is escalated when the inventory still says `lost` or `stolen` and at least `after_school_days` class
days of its school have passed since the day the device history (inventory/history.csv) says its
`inventoryStatus` last became lost or stolen: the class days after that day, up to and including today,
counted on the calendar of the escalation's window (weekends, holidays, snow days and days the calendar does not
know do not count, so an untrustworthy calendar only delays an escalation). A device whose history has no such
entry is never escalated on a guess: the plan says so. Found (any other status) → no longer escalated, so the
next plan drops it, and a saved plan that still holds it is refused at apply time (jobs/escalation.py).

Inventory sits beside schooltime, so the calendars come in as `SchoolDayCounter`s (a SchoolDays fits) and the
platform mapping of each action stays with the backends' compilers, which call `escalation_resource`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.core.resources import Resource, ResourceId
from orchestrator.inventory.devices import Device, Inventory
from orchestrator.inventory.edits import HistoryEntry
from orchestrator.inventory.selection import device_action
from orchestrator.policy.loader import LoadedPolicy, PolicySet
from orchestrator.policy.models import LostDevicePolicy

LOST = ("lost", "stolen")
DECOMMISSION = ("deprovision", "retire")
COMMANDS = ("powerwash", "wipe")
"""Chromebook escalations sent as `issueCommand` (the others change the device's status)."""
PLATFORMS_OF: dict[str, tuple[str, ...]] = {
    "powerwash": ("chromeos", "windows", "ios"),
    "wipe": ("chromeos", "windows"),  # Intune keeps enrollment on a wipe only on Windows (keepEnrollmentData)
    "deprovision": ("chromeos", "windows", "ios"),
    "retire": ("chromeos", "windows", "ios"),
}
"""Where each action exists; the compilers say what is sent (see the Escalation model's docstring)."""
REQUEST_PREFIX = "lost@"
"""Reimage keys of escalations are `{serial}|lost@{YYYY-MM-DD}`: one escalation per device and loss, and never
a Reimage request id (names cannot hold `@`)."""
SHOWN = 20


class SchoolDayCounter(Protocol):
    """A school calendar as escalation reads it (orchestrator.schooltime.calendar.SchoolDays)."""

    @property
    def timezone(self) -> dt.tzinfo: ...

    def class_days_between(self, first: dt.date, last: dt.date, school: str | None = None) -> int: ...


@dataclass(frozen=True)
class Due:
    """One lost device a policy escalates now, and why (no student data: serial, school, dates)."""

    serial: str
    school: str
    platform: str
    policy: str
    action: str
    window: str
    since: dt.date
    school_days: int
    after_school_days: int
    max_devices_per_window: int
    batch_size: int
    source: str
    """file:line of the policy's `escalate:`."""
    inventory_line: int

    @property
    def request(self) -> str:
        return f"{REQUEST_PREFIX}{self.since.isoformat()}"

    @property
    def gate_policy(self) -> str:
        """The name caps and the journal count it under (a Reimage may share the LostDevicePolicy's name)."""
        return f"{self.policy}.escalate"

    @property
    def reason(self) -> str:
        return f"lost since {self.since.isoformat()}, {self.school_days} school days"

    def note(self) -> str:
        return (
            f"escalate {self.policy}: {self.serial} ({self.school or 'no school'}, {self.platform}) → {self.action} "
            f"in window {self.window}: {self.reason} (after_school_days {self.after_school_days}; {self.source})"
        )


@dataclass
class Escalations:
    """Devices due now (serial → Due) and what the plan must say about the lost devices that are not."""

    due: dict[str, Due] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def lost_since(history: Iterable[HistoryEntry], zone: dt.tzinfo) -> dict[str, dt.date | None]:
    """serial → the local date its inventoryStatus last became lost/stolen from any other status.

    History is append-only and in order. lost → stolen keeps the first date; any other status ends the loss. A
    timestamp that cannot be read makes that loss's date unknown (None), never an earlier one.
    """
    since: dict[str, dt.date | None] = {}
    for entry in history:
        if entry.field != "inventoryStatus":
            continue
        if entry.new not in LOST:
            since.pop(entry.serialNumber, None)
        elif entry.old not in LOST or entry.serialNumber not in since:
            since[entry.serialNumber] = _local_date(entry.at, zone)
    return since


def _local_date(stamp: str, zone: dt.tzinfo) -> dt.date | None:
    try:
        at = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).astimezone(zone).date()


def governing_policy(
    device: Device, policies: list[tuple[LostDevicePolicy, LoadedPolicy]]
) -> tuple[LostDevicePolicy, LoadedPolicy] | None:
    """The LostDevicePolicy that governs a device: one naming its school beats a district-wide one (as lockdown)."""
    specific = [p for p in policies if device.school and device.school in p[0].schools]
    general = [p for p in policies if not p[0].schools]
    return (specific or general or [None])[0]


def find_escalations(
    policies: PolicySet,
    inventory: Inventory,
    history: Iterable[HistoryEntry],
    calendars: Mapping[str, SchoolDayCounter],
    now: dt.datetime,
) -> Escalations:
    """The lost devices due for escalation at `now`; `calendars` maps each window name to its school calendar."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    lost_policies = policies.of_kind(LostDevicePolicy)
    result = Escalations()
    if not any(model.escalate for model, _ in lost_policies):
        return result
    entries = list(history)
    by_zone: dict[dt.tzinfo, dict[str, dt.date | None]] = {}
    undated: dict[str, list[str]] = {}
    unsupported: dict[tuple[str, str, str], list[str]] = {}
    disabled: dict[tuple[str, str], list[str]] = {}
    for device in inventory.with_status(*LOST):
        governing = governing_policy(device, lost_policies)
        if governing is None or governing[0].escalate is None:
            continue
        model, loaded = governing
        rule = model.escalate
        assert rule is not None  # narrowed above
        if device.platform not in PLATFORMS_OF[rule.action]:
            unsupported.setdefault((model.name, rule.action, device.platform), []).append(device.serialNumber)
            continue
        calendar = calendars.get(rule.window)
        if calendar is None:
            note = f"escalate {model.name}: window {rule.window} has no school calendar here; nothing escalated"
            result.notes += [] if note in result.notes else [note]
            continue
        zone = calendar.timezone
        if zone not in by_zone:
            by_zone[zone] = lost_since(entries, zone)
        since = by_zone[zone].get(device.serialNumber)
        if since is None:
            undated.setdefault(model.name, []).append(device.serialNumber)
            continue
        today = now.astimezone(zone).date()
        days = calendar.class_days_between(since + dt.timedelta(days=1), today, device.school or None)
        if days < rule.after_school_days:
            continue
        if device.platform == "chromeos" and rule.action in COMMANDS and model.google.action == "disable":
            # The lockdown disabled it, which is what Google advises for lost or stolen devices (directory_v1
            # chromeosdevices.action: "Lost or stolen devices should use the disable action"); a remote command
            # to a disabled device is refused (the emulator: failedPrecondition) and would fail every night.
            disabled.setdefault((model.name, rule.action), []).append(device.serialNumber)
            continue
        due = Due(
            serial=device.serialNumber,
            school=device.school,
            platform=device.platform,
            policy=model.name,
            action=rule.action,
            window=rule.window,
            since=since,
            school_days=days,
            after_school_days=rule.after_school_days,
            max_devices_per_window=rule.max_devices_per_window,
            batch_size=rule.batch_size,
            source=str(loaded.source_of("escalate")),
            inventory_line=device.line,
        )
        result.due[device.serialNumber] = due
    for name, serials in undated.items():
        result.notes.append(
            f"escalate {name}: {len(serials)} lost device(s) are not escalated because the device history has no "
            f"entry saying when they became lost (to count from today, set each `found` and then `lost` with "
            f"`orchestrator inventory set`): {_listed(serials)}"
        )
    for (name, action, platform), serials in unsupported.items():
        result.notes.append(
            f"escalate {name}: {action} does not exist for {platform} (Intune keeps enrollment on a wipe only on "
            f"Windows); {len(serials)} lost device(s) not escalated: {_listed(serials)}"
        )
    for (name, action), serials in disabled.items():
        result.notes.append(
            f"escalate {name}: {action} is a remote command and the lockdown keeps lost Chromebooks disabled "
            f"(google.action: disable), which takes no command; {len(serials)} Chromebook(s) stay disabled, not "
            f"escalated (deprovision or retire works on a disabled device): {_listed(serials)}"
        )
    result.notes += [due.note() for due in list(result.due.values())[:SHOWN]]
    if len(result.due) > SHOWN:
        result.notes.append(f"... and {len(result.due) - SHOWN} more escalation(s): see the plan's changes")
    return result


def _listed(serials: list[str]) -> str:
    more = f" and {len(serials) - SHOWN} more" if len(serials) > SHOWN else ""
    return ", ".join(serials[:SHOWN]) + more


def escalation_resource(backend: str, due: Due, value: dict[str, Any], inventory: Inventory) -> Resource:
    """The escalation of one device as a `reimage` of `backend`: destructive, journal-observed, gated like one."""
    return device_action(
        ResourceId(backend, "reimage", f"{due.serial}|{due.request}"),
        value,
        (due.source, f"{inventory.file}:{due.inventory_line}"),
        serial=due.serial,
        school=due.school,
        line=due.inventory_line,
        policy=due.gate_policy,
        window=due.window,
        method="deprovision" if due.action in DECOMMISSION else due.action,
        batch_size=due.batch_size,
        max_devices_per_window=due.max_devices_per_window,
        extra_meta={"escalation": {"action": due.action, "since": due.since.isoformat(), "reason": due.reason}},
    )
