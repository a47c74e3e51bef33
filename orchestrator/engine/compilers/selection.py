"""Which inventory devices a Reimage selects, and the reimage resource every backend compiles from it."""

from __future__ import annotations

from typing import Any

from orchestrator.engine.resources import Resource, ResourceId
from orchestrator.inventory import Device
from orchestrator.policy.models import Reimage

# a lost device is locked, not wiped; a retired one is gone. Deprovision/retire may take any of them.
NOT_REIMAGED = ("lost", "stolen", "retired")


def selects(model: Reimage, device: Device, *, decommission: bool = False) -> bool:
    """OUs (that OU or below), exact serials and asset tags select by union; schools alone select, else narrow.

    Never a prefix match on serials. Intune group selectors are not expanded offline (group membership lives in
    Entra ID); lab PCs are selected through their org unit path or school in the inventory.
    """
    if device.inventoryStatus in NOT_REIMAGED and not decommission:
        return False
    sel = model.devices
    by_place = (
        any(device.orgUnitPath == ou or device.orgUnitPath.startswith(ou.rstrip("/") + "/") for ou in sel.google_ous)
        or device.serialNumber in sel.serials
        or (bool(device.annotatedAssetId) and device.annotatedAssetId in sel.asset_tags)
    )
    if sel.google_ous or sel.serials or sel.asset_tags:
        return by_place and (not sel.schools or device.school in sel.schools)
    return bool(sel.schools) and device.school in sel.schools


def reimage_resource(
    backend: str, model: Reimage, device: Device, value: dict[str, Any], sources: list[str], method: str, file: str
) -> Resource:
    return Resource(
        ResourceId(backend, "reimage", f"{device.serialNumber}|{model.request}"),
        dict(value),
        sources=(*sources, f"{file}:{device.line}"),
        policy=model.name,
        window=model.window,
        meta={
            "school": device.school,
            "serial": device.serialNumber,
            "batch_size": model.batch_size,
            "max_devices_per_window": model.max_devices_per_window,
            "method": method,
            "inventory_line": device.line,
        },
    )
