"""Compile policies + inventory into desired Google resources (pure: no I/O).

    WebFilter (targets.google_ous)  → ou_policy {ou}|chrome.users.UrlBlocking and
                                      {ou}|chrome.users.SafeSearchRestrictedMode
    AppPush chrome apps             → ou_app {ou}|{extension id} {"appInstallType": ...}
    LostDevicePolicy                → device_status {serial} DISABLED (lost/stolen) / ACTIVE (found), and
                                      ou_policy /|chrome.devices.DisabledDeviceReturnInstructions
    Reimage (google section)        → reimage {serial}|{request} {"command": WIPE_USERS|REMOTE_POWERWASH}, or
                                      {"command": "DEPROVISION", "deprovisionReason":
                                      "DEPROVISION_REASON_RETIRING_DEVICE"} (the policy's google.reason)
                                      for method deprovision (meta method "deprovision": the gate then
                                      requires --acknowledge-deprovision)
    InventoryWriteBack              → device_annotations {serial} {annotatedAssetId|annotatedUser|
                                      annotatedLocation|notes: inventory value} (inventory/writeback.py)
    LostDevicePolicy.escalate       → reimage {serial}|lost@{date} for each lost Chromebook due (decided at plan
                                      time, inventory/escalation.py): powerwash REMOTE_POWERWASH, wipe WIPE_USERS,
                                      deprovision/retire DEPROVISION (DEPROVISION_REASON_RETIRING_DEVICE)

Domains become Chrome URL-filter entries: `example.com` and `*.example.com` both become `example.com`,
which Chrome matches for the domain and all its subdomains (the same reach as the network DNS blocklist).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.backends.google.names import (
    ACTIVE,
    APP_INSTALL_TYPE,
    DEPROVISION,
    DEPROVISION_REASON_NAMES,
    DISABLED,
    DISABLED_MESSAGE,
    DISABLED_TEXT,
    FORCE_SAFE_SEARCH,
    FORCE_YOUTUBE,
    REMOTE_POWERWASH,
    SAFE_SEARCH,
    URL_ALLOWLIST,
    URL_BLOCKING,
    URL_BLOCKLIST,
    WIPE_USERS,
)
from orchestrator.backends.google.spec import DEVICE_ANNOTATIONS, DEVICE_STATUS, OU_APP, OU_POLICY, REIMAGE
from orchestrator.core.resources import Resource, ResourceId
from orchestrator.inventory.devices import Inventory
from orchestrator.inventory.escalation import Due, escalation_resource
from orchestrator.inventory.selection import reimage_resource, selects
from orchestrator.inventory.writeback import google_write_backs
from orchestrator.policy.loader import LoadedPolicy, PolicySet
from orchestrator.policy.models import AppPush, ChromeApp, LostDevicePolicy, Reimage, WebFilter

YOUTUBE = {"off": "OFF", "moderate": "MODERATE", "strict": "STRICT"}
REIMAGE_COMMANDS = {"wipe_users": WIPE_USERS, "powerwash": REMOTE_POWERWASH, "deprovision": DEPROVISION}
# issueCommand commandType / batchChangeStatus values in the bundled directory_v1 discovery document
_RETIRE = {"command": DEPROVISION, "deprovisionReason": DEPROVISION_REASON_NAMES["retiring_device"]}
ESCALATIONS = {
    "powerwash": {"command": REMOTE_POWERWASH},  # factory reset; forced re-enrollment brings it back disabled
    "wipe": {"command": WIPE_USERS},  # profiles only: still enrolled and disabled
    "deprovision": _RETIRE,
    "retire": _RETIRE,
}
LOST = ("lost", "stolen")


@dataclass
class _Acc:
    """A resource being assembled from one or more policy documents."""

    value: dict[str, Any] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)

    def add(self, policy: str, *sources: object) -> None:
        for source in map(str, sources):
            if source not in self.sources:
                self.sources.append(source)
        if policy not in self.policies:
            self.policies.append(policy)


def compile_google(
    policies: PolicySet,
    inventory: Inventory,
    *,
    group_serials: Mapping[str, Collection[str]] | None = None,
    escalations: Mapping[str, Due] | None = None,
) -> list[Resource]:
    """Desired Google resources, sorted by id, each traced to the policy lines (and inventory rows) behind it.

    `group_serials` are the members of the Intune groups Reimage selectors name, read before compiling;
    `escalations` the lost devices due for escalation (serial → Due), decided at plan time.
    """
    ou_policies: dict[tuple[str, str], _Acc] = {}
    resources: list[Resource] = []
    for model, loaded in policies.of_kind(WebFilter):
        _web_filter(model, loaded, ou_policies)
    for model, loaded in policies.of_kind(LostDevicePolicy):
        if model.google.action == "disable":
            acc = ou_policies.setdefault(("/", DISABLED_MESSAGE), _Acc())
            acc.value[DISABLED_TEXT] = _disabled_message(model)
            acc.add(model.name, loaded.source_of("message"))
    for (ou, schema), acc in ou_policies.items():
        resources.append(_resource(OU_POLICY.id(ou, schema), acc))
    resources += _apps(policies)
    resources += _lost_devices(policies, inventory)
    resources += _reimages(policies, inventory, group_serials)
    resources += [
        Resource(
            DEVICE_ANNOTATIONS.id(wb.device.serialNumber),
            wb.value,
            sources=wb.sources,
            policy=wb.policy,
            meta={"school": wb.device.school, "inventory_line": wb.device.line},
        )
        for wb in google_write_backs(policies, inventory)
    ]
    resources += [
        escalation_resource(REIMAGE.backend, due, ESCALATIONS[due.action], inventory)
        for due in (escalations or {}).values()
        if due.platform == "chromeos"
    ]
    return sorted(resources, key=lambda r: r.id)


def _resource(rid: ResourceId, acc: _Acc, **extra: Any) -> Resource:
    return Resource(rid, acc.value, sources=tuple(acc.sources), policy=", ".join(acc.policies), **extra)


def chrome_url_filter(domain: str) -> str:
    """`*.example.com` and `example.com` → `example.com` (Chrome: that host and every subdomain)."""
    return domain.removeprefix("*.").lower()


def _web_filter(model: WebFilter, loaded: LoadedPolicy, out: dict[tuple[str, str], _Acc]) -> None:
    for index, ou in enumerate(model.targets.google_ous):
        target = loaded.source_of("targets", "google_ous", index)
        if model.blocked or model.allowed:
            acc = out.setdefault((ou, URL_BLOCKING), _Acc())
            blocked = set(acc.value.get(URL_BLOCKLIST, [])) | {chrome_url_filter(d) for d in model.blocked}
            allowed = set(acc.value.get(URL_ALLOWLIST, [])) | {chrome_url_filter(d) for d in model.allowed}
            acc.value[URL_BLOCKLIST] = sorted(blocked)
            acc.value[URL_ALLOWLIST] = sorted(allowed)
            acc.add(model.name, *[loaded.source_of(f) for f in ("blocked", "allowed") if getattr(model, f)], target)
        if model.safe_search is not None or model.youtube is not None:
            acc = out.setdefault((ou, SAFE_SEARCH), _Acc())
            if model.safe_search is not None:
                acc.value[FORCE_SAFE_SEARCH] = model.safe_search
                acc.add(model.name, loaded.source_of("safe_search"), target)
            if model.youtube is not None:
                acc.value[FORCE_YOUTUBE] = YOUTUBE[model.youtube]
                acc.add(model.name, loaded.source_of("youtube"), target)


def install_type(app: ChromeApp) -> str:
    """Policy install mode → chrome.users.apps.InstallType appInstallType."""
    base = {"force": "FORCED", "normal": "NORMAL", "allowed": "ALLOWED", "blocked": "BLOCKED"}[app.install]
    return f"{base}_AND_PIN_TO_TOOLBAR" if app.pinned else base


def _apps(policies: PolicySet) -> list[Resource]:
    out: list[Resource] = []
    for model, loaded in policies.of_kind(AppPush):
        for ou_index, ou in enumerate(model.targets.google_ous):
            for index, app in enumerate(model.chrome):
                acc = _Acc(value={APP_INSTALL_TYPE: install_type(app)})
                acc.add(
                    model.name, loaded.source_of("chrome", index), loaded.source_of("targets", "google_ous", ou_index)
                )
                out.append(_resource(OU_APP.id(ou, app.id), acc))
    return out


def _disabled_message(model: LostDevicePolicy) -> str:
    parts = [model.message]
    if model.phone:
        parts.append(f"Phone: {model.phone}")
    return " ".join(parts)


def _lost_devices(policies: PolicySet, inventory: Inventory) -> list[Resource]:
    """device_status per chromeos inventory row; a policy naming the device's school beats a catch-all one."""
    chosen: dict[str, tuple[bool, Resource]] = {}
    # deviceId and the fleet's size let the backend read a few devices by id instead of listing the fleet
    fleet = sum(1 for device in inventory.devices if device.platform == "chromeos")
    for model, loaded in policies.of_kind(LostDevicePolicy):
        if model.google.action != "disable":
            continue
        for device in inventory.devices:
            if device.platform != "chromeos" or (model.schools and device.school not in model.schools):
                continue
            if device.inventoryStatus in LOST:
                status = DISABLED
            elif device.inventoryStatus == "found" and model.on_found.reenable:
                status = ACTIVE
            else:
                continue
            resource = Resource(
                DEVICE_STATUS.id(device.serialNumber),
                status,
                sources=(str(loaded.source_of("google", "action")), f"{inventory.file}:{device.line}"),
                policy=model.name,
                meta={
                    "school": device.school,
                    "inventory_line": device.line,
                    "max_per_run": model.max_per_run,
                    "deviceId": device.deviceId,
                    "fleet": fleet,
                },
            )
            specific = bool(model.schools)
            if device.serialNumber not in chosen or (specific and not chosen[device.serialNumber][0]):
                chosen[device.serialNumber] = (specific, resource)
    return [resource for _, resource in chosen.values()]


def _reimages(
    policies: PolicySet, inventory: Inventory, group_serials: Mapping[str, Collection[str]] | None
) -> list[Resource]:
    out: list[Resource] = []
    for model, loaded in policies.of_kind(Reimage):
        if model.google is None:
            continue
        command = REIMAGE_COMMANDS[model.google.method]
        value: dict[str, str] = {"command": command}
        if command == DEPROVISION:
            value["deprovisionReason"] = DEPROVISION_REASON_NAMES[model.google.reason]
        base_sources = [str(loaded.source_of("devices")), str(loaded.source_of("google", "method"))]
        sizes = inventory.school_sizes() if model.budget_per_school else None
        for device in inventory.devices:
            if device.platform == "chromeos" and selects(
                model, device, decommission=command == DEPROVISION, group_serials=group_serials
            ):
                out.append(
                    reimage_resource(
                        REIMAGE.backend, model, device, value, base_sources, model.google.method, inventory, sizes
                    )
                )
    return out
