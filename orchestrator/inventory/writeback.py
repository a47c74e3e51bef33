"""Write-back: which console fields the inventory is desired state for (InventoryWriteBack), per device. Pure.

The inventory is the district's record; a console value that differs is drift that `plan` shows and `apply`
fixes, and `inventory sync` never copies these fields back. Source of truth per Google field:

    annotatedAssetId  ← annotatedAssetId   (the asset tag on the device)
    annotatedUser     ← assignedStudent    (the student; for a checked-out loaner, its borrower)
    annotatedLocation ← annotatedLocation
    notes             ← notes

Only fields a policy names are managed (adoption rule: nothing in a console that no policy mentions is
changed). Per field, `if_set` writes filled cells only (an empty cell leaves the console alone) and `always`
also clears the console when the cell is empty. Rows: Chrome devices with a deviceId (seen in the console),
neither retired nor deprovisioned. Google's length limits (directory_v1 discovery, ChromeOsDevice:
annotatedUser 100, annotatedLocation 200, notes 500) are checked here, so an over-long cell is a plan error
naming the inventory line instead of a 400 at apply time.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.core.errors import PlanError
from orchestrator.inventory.devices import Device, Inventory
from orchestrator.policy.loader import LoadedPolicy, PolicySet
from orchestrator.policy.models import InventoryWriteBack

# policy key → (Google field, inventory column, longest value Google accepts or None)
GOOGLE_FIELDS: dict[str, tuple[str, str, int | None]] = {
    "asset_tag": ("annotatedAssetId", "annotatedAssetId", None),
    "user": ("annotatedUser", "assignedStudent", 100),
    "location": ("annotatedLocation", "annotatedLocation", 200),
    "notes": ("notes", "notes", 500),
}
NOT_WRITTEN = ("retired",)


@dataclass(frozen=True)
class WriteBack:
    """The console fields one device should carry (console field → value; "" clears), and why."""

    device: Device
    value: dict[str, str]
    policy: str
    sources: tuple[str, ...]


def google_write_backs(policies: PolicySet, inventory: Inventory) -> list[WriteBack]:
    """Desired Google annotations per eligible Chrome device; PlanError for conflicts and over-long cells."""
    chosen = _policy_per_school(policies)
    if not chosen:
        return []
    out: list[WriteBack] = []
    problems: list[str] = []
    for device in inventory.devices:
        if not _eligible(device):
            continue
        picked = chosen.get(device.school) or chosen.get("*")
        if picked is None:
            continue
        model, loaded = picked
        value: dict[str, str] = {}
        sources = [str(loaded.source_of("google"))]
        for key, (field, column, longest) in GOOGLE_FIELDS.items():
            mode = getattr(model.google, key)
            if mode is None:
                continue
            cell = getattr(device, column)
            if longest is not None and len(cell) > longest:
                problems.append(
                    f"{inventory.file}:{device.line}: {column} has {len(cell)} characters; Google's {field} holds "
                    f"at most {longest} (InventoryWriteBack {model.name} at {loaded.source_of('google', key)})"
                )
                continue
            if cell or mode == "always":
                value[field] = cell
                sources.append(str(loaded.source_of("google", key)))
        if value:
            sources.append(f"{inventory.file}:{device.line}")
            out.append(WriteBack(device, value, model.name, tuple(dict.fromkeys(sources))))
    if problems:
        raise PlanError("write-back: " + "\n".join(problems))
    return out


def managed_google_fields(policies: PolicySet, school: str) -> dict[str, str]:
    """Google field → mode (`if_set`/`always`) that the policy covering `school` manages ({} when none)."""
    picked = _policy_per_school(policies)
    chosen = picked.get(school) or picked.get("*")
    if chosen is None:
        return {}
    model = chosen[0]
    return {
        field: getattr(model.google, key) for key, (field, _, _) in GOOGLE_FIELDS.items() if getattr(model.google, key)
    }


def _eligible(device: Device) -> bool:
    return (
        device.platform == "chromeos"
        and bool(device.deviceId)
        and device.inventoryStatus not in NOT_WRITTEN
        and device.status != "DEPROVISIONED"
    )


def _policy_per_school(policies: PolicySet) -> dict[str, tuple[InventoryWriteBack, LoadedPolicy]]:
    """School (or "*" for the catch-all) → its one policy; two for the same school is a PlanError naming both."""
    chosen: dict[str, tuple[InventoryWriteBack, LoadedPolicy]] = {}
    problems: list[str] = []
    for model, loaded in policies.of_kind(InventoryWriteBack):
        for school in model.schools or ["*"]:
            if school in chosen:
                first = chosen[school][1]
                what = "every school" if school == "*" else f"school {school!r}"
                problems.append(
                    f"{loaded.source_of('schools') if model.schools else loaded.source}: InventoryWriteBack "
                    f"{model.name} covers {what}, already covered by {first.model.name} at {first.source} "
                    "(one policy per school set)"
                )
            else:
                chosen[school] = (model, loaded)
    if problems:
        raise PlanError("\n".join(problems))
    return chosen
