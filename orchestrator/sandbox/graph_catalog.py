"""Settings Catalog (`/beta/deviceManagement/configurationPolicies`) for the Graph emulator, as strict as Graph.

Written from the Graph beta reference (deviceManagementConfigurationPolicy, …Setting, …ChoiceSettingInstance,
…SimpleSettingCollectionInstance) and public exports of real tenants, not from the backend's code. It knows only
the setting definitions it lists in `DEFINITIONS` (the Edge URL block/allow lists): an unknown
settingDefinitionId, an instance of the wrong type, a choice value that is not one of the definition's options,
a child the option does not allow or a non-string list item is a 400, as Graph refuses them. Settings are
replaced with PUT on the policy; a PATCH that carries `settings` is refused (Graph's PATCH does not update them).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

_G = "#microsoft.graph.deviceManagementConfiguration"
_EDGE = "device_vendor_msft_policy_config_microsoft_edge~policy~microsoft_edge_"
PLATFORMS = ("android", "iOS", "macOS", "windows10", "windows10X", "linux")
TECHNOLOGIES = ("mdm", "windows10XManagement", "configManager", "microsoftSense", "enrollment", "linuxMdm")


@dataclass(frozen=True)
class Definition:
    kind: str  # "choice" or "simpleCollection"
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)  # choice option → allowed child ids


def _list_policy(name: str) -> dict[str, Definition]:
    parent, child = _EDGE + name, f"{_EDGE}{name}_{name}desc"
    return {
        parent: Definition("choice", {f"{parent}_0": (), f"{parent}_1": (child,)}),
        child: Definition("simpleCollection"),
    }


DEFINITIONS: dict[str, Definition] = {**_list_policy("urlblocklist"), **_list_policy("urlallowlist")}
ROOTS = {d for d, v in DEFINITIONS.items() if v.kind == "choice"}


class CatalogProblem(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _bad(message: str) -> CatalogProblem:
    return CatalogProblem(400, "BadRequest", message)


def _check_instance(instance: Any, allowed: set[str] | tuple[str, ...]) -> None:
    if not isinstance(instance, dict):
        raise _bad("settingInstance must be an object")
    def_id = instance.get("settingDefinitionId")
    definition = DEFINITIONS.get(str(def_id))
    if definition is None:
        raise _bad(f"Setting definition with id '{def_id}' was not found")
    if def_id not in allowed:
        raise _bad(f"Setting '{def_id}' is not allowed here (a child of another setting, or not a child of this one)")
    kind = instance.get("@odata.type")
    if definition.kind == "choice":
        if kind != _G + "ChoiceSettingInstance":
            raise _bad(f"Setting '{def_id}' is a choice setting; got instance type {kind!r}")
        value = instance.get("choiceSettingValue")
        if not isinstance(value, dict) or value.get("value") not in definition.options:
            raise _bad(f"Invalid choiceSettingValue for '{def_id}' (options: {', '.join(definition.options)})")
        children = value.get("children") or []
        if not isinstance(children, list):
            raise _bad("children must be an array")
        for child in children:
            _check_instance(child, definition.options[value["value"]])
        return
    if kind != _G + "SimpleSettingCollectionInstance":
        raise _bad(f"Setting '{def_id}' is a simple setting collection; got instance type {kind!r}")
    items = instance.get("simpleSettingCollectionValue")
    if not isinstance(items, list):
        raise _bad(f"simpleSettingCollectionValue of '{def_id}' must be an array")
    for item in items:
        if (
            not isinstance(item, dict)
            or item.get("@odata.type") != _G + "StringSettingValue"
            or not isinstance(item.get("value"), str)
        ):
            raise _bad(f"'{def_id}' takes deviceManagementConfigurationStringSettingValue items")


def check_settings(settings: Any) -> list[dict[str, Any]]:
    """The settings as stored (with ids "0", "1", …) or a 400 for anything Graph would refuse."""
    if not isinstance(settings, list):
        raise _bad("settings must be an array")
    seen: set[str] = set()
    stored = []
    for i, setting in enumerate(settings):
        if not isinstance(setting, dict) or setting.get("@odata.type") not in (None, _G + "Setting"):
            raise _bad("each setting must be a #microsoft.graph.deviceManagementConfigurationSetting")
        instance = setting.get("settingInstance")
        _check_instance(instance, ROOTS)
        def_id = instance["settingDefinitionId"]
        if def_id in seen:
            raise _bad(f"Setting '{def_id}' appears twice")
        seen.add(def_id)
        stored.append({"id": str(i), "settingInstance": instance})
    return stored


@dataclass
class Catalog:
    """configurationPolicies of one tenant: policy records, their settings and their assignments."""

    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    assignments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def _header(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _bad("name is required")
        if body.get("platforms") not in PLATFORMS:
            raise _bad(f"Invalid platforms {body.get('platforms')!r}")
        techs = str(body.get("technologies") or "").split(",")
        if not techs or any(t.strip() not in TECHNOLOGIES for t in techs):
            raise _bad(f"Invalid technologies {body.get('technologies')!r}")
        return {k: body.get(k) for k in ("name", "description", "platforms", "technologies", "roleScopeTagIds")}

    def create(self, body: dict[str, Any], stamp: str) -> dict[str, Any]:
        header = self._header(body)
        settings = check_settings(body.get("settings") or [])
        pid = str(uuid.uuid4())
        record = {**header, "id": pid, "createdDateTime": stamp, "lastModifiedDateTime": stamp}
        record["settingCount"] = len(settings)
        self.policies[pid] = record
        self.settings[pid] = settings
        self.assignments[pid] = []
        return record

    def get(self, pid: str) -> dict[str, Any]:
        record = self.policies.get(pid)
        if record is None:
            raise CatalogProblem(404, "ResourceNotFound", f"deviceManagementConfigurationPolicy {pid} was not found")
        return record

    def replace(self, pid: str, body: dict[str, Any], stamp: str) -> None:
        """PUT: the whole policy, settings included (platforms and technologies cannot change)."""
        record = self.get(pid)
        header = self._header(body)
        if (header["platforms"], header["technologies"]) != (record["platforms"], record["technologies"]):
            raise _bad("platforms and technologies cannot be changed")
        settings = check_settings(body.get("settings") or [])
        record.update(header, lastModifiedDateTime=stamp, settingCount=len(settings))
        self.settings[pid] = settings

    def patch(self, pid: str, body: dict[str, Any], stamp: str) -> None:
        record = self.get(pid)
        if "settings" in body:
            raise _bad("Settings cannot be updated with PATCH; replace the policy with PUT")
        record.update({k: v for k, v in body.items() if k in ("name", "description", "roleScopeTagIds")})
        record["lastModifiedDateTime"] = stamp

    def delete(self, pid: str) -> None:
        self.get(pid)
        for table in (self.policies, self.settings, self.assignments):
            table.pop(pid, None)

    def expanded(self, record: dict[str, Any], expand: str) -> dict[str, Any]:
        out = dict(record)
        if "settings" in expand:
            out["settings"] = self.settings.get(record["id"], [])
        if "assignments" in expand:
            out["assignments"] = self.assignments.get(record["id"], [])
        return out
