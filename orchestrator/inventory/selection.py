"""Which inventory devices a Reimage selects, and the reimage resource every backend compiles from it."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from orchestrator.core.resources import GateFacts, Resource, ResourceId
from orchestrator.inventory.devices import Device, Inventory
from orchestrator.policy.models import Reimage

# a lost device is locked, not wiped; a retired one is gone. Deprovision/retire may take any of them.
NOT_REIMAGED = ("lost", "stolen", "retired")


def selects(
    model: Reimage,
    device: Device,
    *,
    decommission: bool = False,
    group_serials: Mapping[str, Collection[str]] | None = None,
) -> bool:
    """OUs (that OU or below), exact serials, asset tags and Intune groups select by union; schools alone
    select, else narrow.

    Never a prefix match on serials. Group membership lives in Entra ID: the plan reads it before compiling
    (`group_serials`: group name → member serials, see orchestrator/engine/targets.py); without it a group
    selects nothing, and the plan's target check has already refused a group that does not exist.
    """
    if device.inventoryStatus in NOT_REIMAGED and not decommission:
        return False
    sel = model.devices
    groups = group_serials or {}
    by_place = (
        any(device.orgUnitPath == ou or device.orgUnitPath.startswith(ou.rstrip("/") + "/") for ou in sel.google_ous)
        or device.serialNumber in sel.serials
        or (bool(device.annotatedAssetId) and device.annotatedAssetId in sel.asset_tags)
        or any(device.serialNumber in groups.get(group, ()) for group in sel.intune_groups)
    )
    if sel.google_ous or sel.serials or sel.asset_tags or sel.intune_groups:
        return by_place and (not sel.schools or device.school in sel.schools)
    return bool(sel.schools) and device.school in sel.schools


def reimage_resource(
    backend: str,
    model: Reimage,
    device: Device,
    value: dict[str, Any],
    sources: list[str],
    method: str,
    inventory: Inventory,
    school_sizes: Mapping[str, int] | None = None,
) -> Resource:
    """The reimage of one device, with the typed gate facts (window, school, caps, budget) it is judged by.

    `school_sizes` (devices per school, `Inventory.school_sizes()`, computed once per compile) is the base of a
    percentage budget; it is needed only when the policy has one.
    """
    budget = model.budget_per_school
    return device_action(
        ResourceId(backend, "reimage", f"{device.serialNumber}|{model.request}"),
        value,
        (*sources, f"{inventory.file}:{device.line}"),
        serial=device.serialNumber,
        school=device.school,
        line=device.line,
        policy=model.name,
        window=model.window,
        method=method,
        batch_size=model.batch_size,
        max_devices_per_window=model.max_devices_per_window,
        budget_per_school=None if budget is None else str(budget),
        school_devices=school_sizes.get(device.school, 0) if school_sizes is not None else 0,
    )


def device_action(
    rid: ResourceId,
    value: dict[str, Any],
    sources: tuple[str, ...],
    *,
    serial: str,
    school: str,
    line: int,
    policy: str,
    window: str,
    method: str,
    batch_size: int,
    max_devices_per_window: int,
    budget_per_school: str | None = None,
    school_devices: int = 0,
    extra_meta: Mapping[str, Any] | None = None,
) -> Resource:
    """A destructive action on one device (a Reimage, or a lost device's escalation) with the meta and the typed
    gate facts every gate reads: window, school, caps, budget; method deprovision needs the acknowledgement."""
    return Resource(
        rid,
        dict(value),
        sources=sources,
        policy=policy,
        window=window,
        meta={
            "school": school,
            "serial": serial,
            "batch_size": batch_size,
            "max_devices_per_window": max_devices_per_window,
            "method": method,
            "inventory_line": line,
            **(extra_meta or {}),
        },
        gate=GateFacts(
            policy=policy,
            window=window,
            serial=serial,
            school=school or None,
            method=method,
            deprovision=method == "deprovision",
            max_devices_per_window=max_devices_per_window,
            batch_size=batch_size,
            budget_per_school=budget_per_school,
            school_devices=school_devices,
        ),
    )
