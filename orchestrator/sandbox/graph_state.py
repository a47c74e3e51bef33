"""In-memory Intune tenant behind the Graph emulator: managed devices, groups, apps, configuration profiles.

Objects are stored as the JSON Graph returns (camelCase), so the HTTP layer only selects fields and
pages. Beta-only properties (`lostModeState`, iOS `contentFilterSettings`) are hidden from /v1.0 reads,
like the real service. Device actions follow the published rules: `enableLostMode` is beta-only and
needs a supervised, corporate iOS device; every action appends to `deviceActionResults`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.sandbox.district import USER_GROUPS, District, SeedDevice
from orchestrator.sandbox.graph_catalog import Catalog

BETA_ONLY_DEVICE_FIELDS = ("lostModeState", "deviceType")  # not on the v1.0 managedDevice (msgraph-sdk 1.65)
BETA_ONLY_CONFIG_FIELDS = ("contentFilterSettings",)
DEVICE_ACTIONS = (
    "remoteLock",
    "wipe",
    "retire",
    "syncDevice",
    "enableLostMode",
    "disableLostMode",
    "rebootNow",
    "locateDevice",
)
BETA_ONLY_ACTIONS = ("enableLostMode",)
DESTRUCTIVE_ACTIONS = ("wipe", "retire")


class GraphProblem(Exception):
    """A request the service refuses: becomes a Graph error body with this status and code."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stable_id(*parts: str) -> str:
    return str(uuid.UUID(hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]))


def device_json(seed: SeedDevice) -> dict[str, Any]:
    """A managedDevice as Graph returns it, from a generated district device."""
    device = seed.device
    ios = device.platform == "ios"
    serial = device.serialNumber
    return {
        "id": seed.intune_id or stable_id("device", serial),
        "deviceName": f"{'IPAD' if ios else 'PC'}-{serial}",
        "serialNumber": serial,
        # iPads report iPadOS, iPhones iOS (API-NOTES §6); deviceType per the beta managedDevice resource.
        "operatingSystem": "iPadOS" if ios else "Windows",
        "deviceType": "iPad" if ios else "desktop",
        "osVersion": "17.5.1" if ios else "10.0.22631.3880",
        "model": "iPad (9th generation)" if ios else "Surface Laptop SE",
        "manufacturer": "Apple" if ios else "Microsoft",
        "managedDeviceOwnerType": "company",
        "managementState": "managed",
        "complianceState": "compliant",
        "isSupervised": bool(seed.supervised) if ios else False,
        "lostModeState": "disabled",
        "deviceActionResults": [],
        "wiFiMacAddress": device.macAddress.replace(":", "").upper(),
        "userPrincipalName": device.annotatedUser,
        "azureADDeviceId": stable_id("entra-device", serial),  # the Entra ID device object's deviceId
        "enrolledDateTime": "2026-08-01T12:00:00Z",
        "lastSyncDateTime": "2026-11-20T06:00:00Z",
    }


@dataclass
class GraphState:
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    group_members: dict[str, set[str]] = field(default_factory=dict)
    group_users: dict[str, set[str]] = field(default_factory=dict)  # user members (user principal names)
    entra_disabled: set[str] = field(default_factory=set)  # Entra ID deviceIds whose accountEnabled is false
    # ("deviceId" | "id", value) → managed device id: graph_directory's lookup index, re-checked on every hit
    entra_index: dict[tuple[str, str], str] = field(default_factory=dict, repr=False, compare=False)
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)
    app_assignments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    config_assignments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    catalog: Catalog = field(default_factory=Catalog)  # Settings Catalog configurationPolicies (beta)
    lost_mode_bodies: dict[str, dict[str, Any]] = field(default_factory=dict)  # what the lock screen shows
    # (device id, action) → times the action was executed: what tests assert "never wiped twice" against.
    executed: Counter[tuple[str, str]] = field(default_factory=Counter)

    @classmethod
    def from_seed(cls, devices: Iterable[SeedDevice], groups: Iterable[str], apps: Iterable[str]) -> GraphState:
        state = cls()
        for name in groups:
            state.add_group(name)
        for name in apps:
            state.add_app(name)
        by_name = {g["displayName"]: gid for gid, g in state.groups.items()}
        for seed in devices:
            if seed.device.platform not in ("windows", "ios"):
                continue
            record = device_json(seed)
            state.devices[record["id"]] = record
            for group in seed.groups:
                if group in by_name:
                    state.group_members[by_name[group]].add(record["id"])
            for user_group, device_group in USER_GROUPS.items():
                if user_group in by_name and device_group in seed.groups and seed.device.annotatedUser:
                    state.group_users.setdefault(by_name[user_group], set()).add(seed.device.annotatedUser)
        return state

    @classmethod
    def from_district(cls, district: District) -> GraphState:
        return cls.from_seed(district.devices, district.groups, district.apps)

    def add_group(self, name: str, *, group_id: str | None = None) -> str:
        gid = group_id or stable_id("group", name, str(len(self.groups)))
        self.groups[gid] = {
            "id": gid,
            "displayName": name,
            "securityEnabled": True,
            "mailEnabled": False,
            "groupTypes": [],
        }
        self.group_members[gid] = set()
        return gid

    def add_app(self, name: str, *, app_id: str | None = None) -> str:
        aid = app_id or stable_id("app", name, str(len(self.apps)))
        self.apps[aid] = {
            "@odata.type": "#microsoft.graph.win32LobApp",
            "id": aid,
            "displayName": name,
            "publisher": name.split()[0],
            "isAssigned": False,
        }
        self.app_assignments[aid] = []
        return aid

    # ---- devices -------------------------------------------------------------------------------

    def destructive_counts(self) -> Counter[str]:
        """Device id → wipes + retires executed (whatever the client was told afterwards)."""
        out: Counter[str] = Counter()
        for (device_id, action), n in self.executed.items():
            if action in DESTRUCTIVE_ACTIONS:
                out[device_id] += n
        return out

    def device(self, device_id: str) -> dict[str, Any]:
        record = self.devices.get(device_id)
        if record is None:
            raise GraphProblem(404, "ResourceNotFound", f"managedDevice {device_id} was not found")
        return record

    def act(self, device_id: str, action: str, body: dict[str, Any], version: str) -> None:
        """Run one device action (the caller replies 204)."""
        if action not in DEVICE_ACTIONS or (action in BETA_ONLY_ACTIONS and version != "beta"):
            raise GraphProblem(400, "BadRequest", f"Resource not found for the segment '{action}'.")
        record = self.device(device_id)
        if action == "remoteLock" and str(record.get("operatingSystem") or "").lower() == "windows":
            # Remote lock is not supported on Windows desktops (MicrosoftDocs/memdocs device-remote-lock.md). The
            # real answer is unverified (api-conformance.md); the emulator refuses it rather than pretend.
            raise GraphProblem(400, "BadRequest", "remoteLock is not supported for this device platform (Windows)")
        if action in ("enableLostMode", "disableLostMode"):
            if not (
                record["operatingSystem"] in ("iOS", "iPadOS")
                and record["isSupervised"]
                and record["managedDeviceOwnerType"] == "company"
            ):
                raise GraphProblem(
                    400, "BadRequest", f"{action} is supported only on supervised corporate iOS/iPadOS devices"
                )
            if action == "enableLostMode" and not str(body.get("message") or "").strip():
                raise GraphProblem(400, "BadRequest", "enableLostMode requires a message")
            record["lostModeState"] = "enabled" if action == "enableLostMode" else "disabled"
            if action == "enableLostMode":
                self.lost_mode_bodies[device_id] = dict(body)
        if action == "wipe":
            record["managementState"] = "wipePending"
            record["lastWipe"] = {k: bool(body.get(k, False)) for k in ("keepEnrollmentData", "keepUserData")}
        if action == "retire":
            record["managementState"] = "retirePending"
        self.executed[(device_id, action)] += 1
        stamp = now_iso()
        record["deviceActionResults"] = [r for r in record["deviceActionResults"] if r["actionName"] != action]
        record["deviceActionResults"].append(
            {"actionName": action, "actionState": "pending", "startDateTime": stamp, "lastUpdatedDateTime": stamp}
        )

    # ---- configuration profiles ----------------------------------------------------------------

    def create_config(self, body: dict[str, Any]) -> dict[str, Any]:
        if not str(body.get("@odata.type") or "").startswith("#microsoft.graph."):
            raise GraphProblem(400, "BadRequest", "A type named '@odata.type' is required for deviceConfiguration")
        if not str(body.get("displayName") or "").strip():
            raise GraphProblem(400, "BadRequest", "displayName is required")
        cid = str(uuid.uuid4())
        stamp = now_iso()
        record = {**body, "id": cid, "createdDateTime": stamp, "lastModifiedDateTime": stamp, "version": 1}
        self.configs[cid] = record
        self.config_assignments[cid] = []
        return record

    def config(self, config_id: str) -> dict[str, Any]:
        record = self.configs.get(config_id)
        if record is None:
            raise GraphProblem(404, "ResourceNotFound", f"deviceConfiguration {config_id} was not found")
        return record

    def patch_config(self, config_id: str, body: dict[str, Any]) -> None:
        record = self.config(config_id)
        if body.get("@odata.type") not in (None, record["@odata.type"]):
            raise GraphProblem(400, "BadRequest", "@odata.type cannot change")
        record.update({k: v for k, v in body.items() if k not in ("id", "createdDateTime")})
        record["lastModifiedDateTime"] = now_iso()
        record["version"] += 1

    def delete_config(self, config_id: str) -> None:
        self.config(config_id)
        del self.configs[config_id]
        self.config_assignments.pop(config_id, None)

    def assign_config(self, config_id: str, assignments: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.config(config_id)
        stored = []
        for assignment in assignments:
            target = self._target(assignment)
            stored.append({"id": f"{config_id}_{target.get('groupId', 'all')}", "target": target})
        self.config_assignments[config_id] = stored
        return stored

    def assign_policy(self, policy_id: str, assignments: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """configurationPolicies/{id}/assign: replaces the policy's assignments."""
        self.catalog.get(policy_id)
        stored = []
        for assignment in assignments:
            target = self._target(assignment)
            stored.append({"id": f"{policy_id}_{target.get('groupId', 'all')}", "target": target})
        self.catalog.assignments[policy_id] = stored
        return stored

    # ---- apps ----------------------------------------------------------------------------------

    def app(self, app_id: str) -> dict[str, Any]:
        record = self.apps.get(app_id)
        if record is None:
            raise GraphProblem(404, "ResourceNotFound", f"mobileApp {app_id} was not found")
        return record

    def assign_app(self, app_id: str, assignments: list[dict[str, Any]]) -> None:
        self.app(app_id)
        stored = []
        for assignment in assignments:
            intent = assignment.get("intent")
            if intent not in ("available", "required", "uninstall", "availableWithoutEnrollment"):
                raise GraphProblem(400, "BadRequest", f"invalid intent {intent!r}")
            target = self._target(assignment)
            stored.append(
                {
                    "id": f"{app_id}_{target.get('groupId', 'all')}_{intent}",
                    "intent": intent,
                    "target": target,
                    "settings": assignment.get("settings"),
                }
            )
        self.app_assignments[app_id] = stored
        self.apps[app_id]["isAssigned"] = bool(stored)

    def _target(self, assignment: dict[str, Any]) -> dict[str, Any]:
        target = dict(assignment.get("target") or {})
        kind = str(target.get("@odata.type") or "")
        if kind.endswith("groupAssignmentTarget") or kind.endswith("GroupAssignmentTarget"):
            if target.get("groupId") not in self.groups:
                raise GraphProblem(400, "BadRequest", f"group {target.get('groupId')} does not exist")
        elif not kind.endswith(("allDevicesAssignmentTarget", "allLicensedUsersAssignmentTarget")):
            raise GraphProblem(400, "BadRequest", f"unsupported assignment target {kind!r}")
        return target


# `orchestrator sandbox --lived-in`: what a district set by hand in Intune before adopting the tool. The
# Elementary iPads web filter (a Windows Settings Catalog policy and an iOS profile with one K12 name) and two
# group app assignments export to policies; the iPad filter named by hand, the app for all devices and the app
# whose notifications were hidden are left out (named).
_EDGE = "device_vendor_msft_policy_config_microsoft_edge~policy~microsoft_edge_urlblocklist"
_CFG = "#microsoft.graph.deviceManagementConfiguration"
LIVED_IN_FILTER = ("K12 WebFilter ipad-filter", "Elementary iPads", ["roblox.com", "tiktok.com"])
LIVED_IN_APPS = [  # app, group (None: all devices), intent, assignment settings
    ("Microsoft Word", "All Student Devices", "required", None),
    ("Zoom Workplace", "All Staff", "available", None),
    ("Minecraft Education", None, "required", None),
    ("Microsoft Teams", "Staff Devices", "required", {"notifications": "hideAll"}),
]


def _ios_filter(name: str, blocked: list[str]) -> dict[str, Any]:
    auto = "#microsoft.graph.iosWebContentFilterAutoFilter"
    settings = {"@odata.type": auto, "blockedUrls": [f"https://{d}" for d in blocked], "allowedUrls": []}
    return {
        "@odata.type": "#microsoft.graph.iosDeviceFeaturesConfiguration",
        "displayName": name,
        "contentFilterSettings": settings,
    }


def set_by_hand(state: GraphState) -> int:
    """Make the LIVED_IN_* objects as an admin would in the Intune portal; returns how many were made."""
    by_name = {g["displayName"]: gid for gid, g in state.groups.items()}
    apps = {a["displayName"]: aid for aid, a in state.apps.items()}
    name, group, blocked = LIVED_IN_FILTER
    target = [{"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": by_name[group]}}]
    values = [{"@odata.type": _CFG + "StringSettingValue", "value": d} for d in blocked]
    child = {
        "@odata.type": _CFG + "SimpleSettingCollectionInstance",
        "settingDefinitionId": f"{_EDGE}_urlblocklistdesc",
        "simpleSettingCollectionValue": values,
    }
    choice = {"@odata.type": _CFG + "ChoiceSettingValue", "value": f"{_EDGE}_1", "children": [child]}
    instance = {
        "@odata.type": _CFG + "ChoiceSettingInstance",
        "settingDefinitionId": _EDGE,
        "choiceSettingValue": choice,
    }
    body = {"name": name, "platforms": "windows10", "technologies": "mdm", "settings": [{"settingInstance": instance}]}
    state.assign_policy(state.catalog.create(body, now_iso())["id"], target)
    state.assign_config(state.create_config(_ios_filter(name, blocked))["id"], target)
    state.assign_config(
        state.create_config(_ios_filter("iPad web filter (set by hand)", ["games.example"]))["id"], target
    )
    for app, group, intent, settings in LIVED_IN_APPS:
        aim = {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}
        if group is not None:
            aim = {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": by_name[group]}
        state.assign_app(apps[app], [{"intent": intent, "target": aim, "settings": settings}])
    return 3 + len(LIVED_IN_APPS)


def strip_beta(record: dict[str, Any], fields: tuple[str, ...], version: str) -> dict[str, Any]:
    if version == "beta":
        return record
    return {k: v for k, v in record.items() if k not in fields}
