"""Intune desired state from policies + inventory. Pure: no I/O.

Resource types (backend "intune"; keys are strings):

Keys are built with the types in spec.py and the strings come from names.py (shared with the backend).

- settings_policy, key ("windows", "K12 WebFilter {policy}"), and config_profile, key ("ios", same name),
  value {"blocked": [...], "allowed": [...], "assignments": [group display names]} (all sorted). One of each
  per WebFilter with intune_groups: Windows = a Settings Catalog policy with the Edge URLBlocklist /
  URLAllowlist settings (settings_body.py), iOS = a web content filter profile (auto filter with blocked/allowed
  URLs). `*.example.com` becomes `example.com` (both Edge patterns and Apple's filter match subdomains).
  meta: group_sources. A Windows custom (OMA-URI) profile of the same name left by earlier versions is no
  longer wanted, so the plan deletes it after creating the settings policy that replaces it.
- app_assignment, key = app display name, value sorted [{"group", "intent"}]; every AppPush naming the
  app is merged into one resource (sources = union). meta: group_sources, app_sources.
- device_lock, key = serial, value {"lost": true} for lost/stolen Windows/iOS inventory devices and
  {"lost": false} for found ones (when on_found.disable_lost_mode). How the lock is done is in meta:
  lost_mode (supervised iOS/iPadOS: enableLostMode with message/phone/footer), remote_lock (other iOS/iPadOS),
  windows (Windows: disable_device = Entra ID accountEnabled false, {"lost": false} when found and
  on_found.reenable; none = reported not locked), plus school, inventory_line, platform, max_per_run.
- reimage for LostDevicePolicy.escalate, key (serial, "lost@{date}"), for each lost Windows or iOS/iPadOS device
  due (decided at plan time, inventory/escalation.py): powerwash = wipe without enrollment data, wipe = wipe keeping
  enrollment data (Windows only: keepEnrollmentData is a Windows option), deprovision/retire = retire.
- reimage, key (serial, request), value {"action": "wipe", "keepEnrollmentData": bool,
  "keepUserData": false} (autopilot_reset keeps enrollment data), or {"action": "retire"} for method
  retire. meta: school, batch_size, max_devices_per_window, method (retire is compiled as "deprovision",
  so the gate requires --acknowledge-deprovision), inventory_line.

Reimage selectors are resolved against the inventory (exact serial, asset tag, school, org unit path and
its children). Intune group selectors cannot be resolved offline and select nothing here; the backend
does not expand them either (documented limitation).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from typing import Any

from orchestrator.backends.intune.names import (
    PROFILE_PLATFORMS,
    RETIRE,
    SETTINGS_PLATFORMS,
    WINDOWS_DISABLE,
    WIPE,
    profile_name,
)
from orchestrator.backends.intune.spec import APP_ASSIGNMENT, CONFIG_PROFILE, DEVICE_LOCK, REIMAGE, SETTINGS_POLICY
from orchestrator.core.resources import Resource
from orchestrator.inventory.devices import Device, Inventory
from orchestrator.inventory.escalation import Due, escalation_resource
from orchestrator.inventory.selection import reimage_resource, selects
from orchestrator.policy.loader import PolicySet
from orchestrator.policy.models import AppPush, LostDevicePolicy, Reimage, WebFilter

INTUNE_PLATFORMS = ("windows", "ios")
ESCALATIONS: dict[str, dict[str, Any]] = {  # Graph managedDevice wipe / retire (learn.microsoft.com/graph/api)
    "powerwash": {"action": WIPE, "keepEnrollmentData": False, "keepUserData": False},
    "wipe": {"action": WIPE, "keepEnrollmentData": True, "keepUserData": False},
    "deprovision": {"action": RETIRE},
    "retire": {"action": RETIRE},
}


def profile_domains(domains: list[str]) -> list[str]:
    """Domains as written into Edge and iOS lists: `*.d` → `d` (both match subdomains), sorted, unique."""
    return sorted({d[2:] if d.startswith("*.") else d for d in domains})


def compile_intune(
    policies: PolicySet,
    inventory: Inventory,
    *,
    group_serials: Mapping[str, Collection[str]] | None = None,
    escalations: Mapping[str, Due] | None = None,
) -> list[Resource]:
    """Desired Intune resources; `group_serials` = members of the groups Reimage selectors name (read by the plan),
    `escalations` = lost devices due for escalation (serial → Due, decided at plan time)."""
    return [
        *_profiles(policies),
        *_app_assignments(policies),
        *_device_locks(policies, inventory),
        *_reimages(policies, inventory, group_serials),
        *[
            escalation_resource(REIMAGE.backend, due, ESCALATIONS[due.action], inventory)
            for due in (escalations or {}).values()
            if due.platform in INTUNE_PLATFORMS
        ],
    ]


def _profiles(policies: PolicySet) -> list[Resource]:
    out: list[Resource] = []
    for model, loaded in policies.of_kind(WebFilter):
        groups = model.targets.intune_groups
        if not groups:
            continue
        group_sources = {g: str(loaded.source_of("targets", "intune_groups", i)) for i, g in enumerate(groups)}
        value = {
            "blocked": profile_domains(list(model.blocked)),
            "allowed": profile_domains(list(model.allowed)),
            "assignments": sorted(set(groups)),
        }
        sources = (str(loaded.source), str(loaded.source_of("targets", "intune_groups")))
        kinds = [(SETTINGS_POLICY, p) for p in SETTINGS_PLATFORMS] + [(CONFIG_PROFILE, p) for p in PROFILE_PLATFORMS]
        for rtype, platform in kinds:
            out.append(
                Resource(
                    id=rtype.id(platform, profile_name(model.name)),
                    value={**value},
                    sources=sources,
                    policy=model.name,
                    meta={"group_sources": group_sources, "platform": platform},
                )
            )
    return out


def _app_assignments(policies: PolicySet) -> list[Resource]:
    entries: dict[str, set[tuple[str, str]]] = defaultdict(set)
    sources: dict[str, list[str]] = defaultdict(list)
    names: dict[str, list[str]] = defaultdict(list)
    group_sources: dict[str, dict[str, str]] = defaultdict(dict)
    app_sources: dict[str, list[str]] = defaultdict(list)
    for model, loaded in policies.of_kind(AppPush):
        groups = model.targets.intune_groups
        if not groups:
            continue
        for i, app in enumerate(model.intune):
            where = str(loaded.source_of("intune", i))
            app_sources[app.app].append(where)
            if where not in sources[app.app]:
                sources[app.app].append(where)
            if model.name not in names[app.app]:
                names[app.app].append(model.name)
            for j, group in enumerate(groups):
                entries[app.app].add((group, app.intent))
                group_sources[app.app].setdefault(group, str(loaded.source_of("targets", "intune_groups", j)))
    out = []
    for app_name in sorted(entries):
        value = [{"group": g, "intent": intent} for g, intent in sorted(entries[app_name])]
        out.append(
            Resource(
                id=APP_ASSIGNMENT.id(app_name),
                value=value,
                sources=tuple(sources[app_name]),
                policy=", ".join(names[app_name]),
                meta={"group_sources": group_sources[app_name], "app_sources": app_sources[app_name]},
            )
        )
    return out


def _lost_policy_for(device: Device, lost_policies: list[tuple[LostDevicePolicy, Any]]) -> tuple[Any, Any] | None:
    """The school-specific policy naming the device's school wins over a district-wide one."""
    specific = [(m, s) for m, s in lost_policies if m.schools and device.school in m.schools]
    general = [(m, s) for m, s in lost_policies if not m.schools]
    chosen = specific or general
    return chosen[0] if chosen else None


def _apple_lock_wanted(model: LostDevicePolicy, found: bool) -> bool:
    """iOS/iPadOS: found devices get lost mode disabled (if asked); lost ones Lost Mode or a remote lock."""
    if found:
        return model.on_found.disable_lost_mode
    return model.intune.action != "none" or model.intune.lost_mode


def _device_locks(policies: PolicySet, inventory: Inventory) -> list[Resource]:
    lost_policies = policies.of_kind(LostDevicePolicy)
    # the fleet's size lets the backend read a few devices by serial instead of listing every managed device
    fleet = sum(1 for device in inventory.devices if device.platform in INTUNE_PLATFORMS)
    out = []
    for device in inventory.devices:
        if device.platform not in INTUNE_PLATFORMS or device.inventoryStatus not in ("lost", "stolen", "found"):
            continue
        chosen = _lost_policy_for(device, lost_policies)
        if chosen is None:
            continue
        model, loaded = chosen
        found = device.inventoryStatus == "found"
        if device.platform == "windows":
            # No remote lock on Windows (not supported on Windows desktops): the Entra ID device object is
            # disabled (re-enabled when found), or nothing is sent and the device is reported not locked.
            if found and not (model.intune.windows == WINDOWS_DISABLE and model.on_found.reenable):
                continue
        elif not _apple_lock_wanted(model, found):
            continue
        meta = {
            "school": device.school,
            "inventory_line": device.line,
            "platform": device.platform,
            "inventory_status": device.inventoryStatus,
            "max_per_run": model.max_per_run,
            "lost_mode": model.intune.lost_mode,
            "remote_lock": model.intune.action == "remote_lock",
            "windows": model.intune.windows,
            "message": model.message,
            "phone": model.phone or "",
            "footer": model.footer or "",
            "fleet": fleet,
        }
        section = ("on_found",) if found else ("intune",)
        out.append(
            Resource(
                id=DEVICE_LOCK.id(device.serialNumber),
                value={"lost": not found},
                sources=(str(loaded.source_of(*section)), f"{inventory.file}:{device.line}"),
                policy=model.name,
                meta=meta,
            )
        )
    return out


def _reimages(
    policies: PolicySet, inventory: Inventory, group_serials: Mapping[str, Collection[str]] | None
) -> list[Resource]:
    out = []
    for model, loaded in policies.of_kind(Reimage):
        if model.intune is None:
            continue
        autopilot = model.intune.method == "autopilot_reset"
        retire = model.intune.method == "retire"
        value: dict[str, Any] = (
            {"action": RETIRE} if retire else {"action": WIPE, "keepEnrollmentData": autopilot, "keepUserData": False}
        )
        method = "deprovision" if retire else model.intune.method
        sources = [str(loaded.source_of("devices"))]
        sizes = inventory.school_sizes() if model.budget_per_school else None
        for device in inventory.devices:
            if device.platform == "windows" and selects(
                model, device, decommission=retire, group_serials=group_serials
            ):
                out.append(reimage_resource(REIMAGE.backend, model, device, value, sources, method, inventory, sizes))
    return out
