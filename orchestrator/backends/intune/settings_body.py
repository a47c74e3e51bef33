"""Edge URL lists on Windows as a Settings Catalog policy: build the Graph body, read its settings back.

Why not a custom (OMA-URI) profile: the `./Device/Vendor/MSFT/Policy/Config/microsoft_edge~Policy~microsoft_edge/…`
OMA-URIs work only after the Edge ADMX is ingested (`ConfigOperations/ADMXInstall`, MicrosoftDocs/Edge-Enterprise
`configure-edge-with-mdm.md`); the Settings Catalog ships the Edge definitions, so its settings reach devices.

Shape (Graph beta `deviceManagementConfigurationPolicy`; the same instances appear in public exports of real
tenants and in `New-MgBetaDeviceManagementConfigurationPolicy` examples): `platforms: "windows10"`,
`technologies: "mdm"`, `settings: [deviceManagementConfigurationSetting]`, each holding a
`deviceManagementConfigurationChoiceSettingInstance` for `…_urlblocklist` / `…_urlallowlist` whose
`choiceSettingValue.value` is `<definition>_1` (enabled) with one child
`deviceManagementConfigurationSimpleSettingCollectionInstance` (`…_urlblocklistdesc` / `…_urlallowlistdesc`)
of `deviceManagementConfigurationStringSettingValue`s. An empty list is sent as `<definition>_0` (disabled)
with no children, so a policy that once had a list clears it on the device.
"""

from __future__ import annotations

from typing import Any

EDGE = "device_vendor_msft_policy_config_microsoft_edge~policy~microsoft_edge_"
BLOCKLIST = EDGE + "urlblocklist"
ALLOWLIST = EDGE + "urlallowlist"
LISTS = {"blocked": BLOCKLIST, "allowed": ALLOWLIST}
PLATFORMS = "windows10"
TECHNOLOGIES = "mdm"
DESCRIPTION = "Managed by the k12 fleet orchestrator from policies in git. Manual edits are reverted."

_G = "#microsoft.graph.deviceManagementConfiguration"
SETTING_TYPE = _G + "Setting"
CHOICE_INSTANCE = _G + "ChoiceSettingInstance"
CHOICE_VALUE = _G + "ChoiceSettingValue"
COLLECTION_INSTANCE = _G + "SimpleSettingCollectionInstance"
STRING_VALUE = _G + "StringSettingValue"


def child_id(definition: str) -> str:
    """`…_urlblocklist` → `…_urlblocklist_urlblocklistdesc` (the list child of an ADMX list policy)."""
    leaf = definition.rsplit("_", 1)[-1]
    return f"{definition}_{leaf}desc"


def _instance(definition: str, domains: list[str]) -> dict[str, Any]:
    children = []
    if domains:
        children.append(
            {
                "@odata.type": COLLECTION_INSTANCE,
                "settingDefinitionId": child_id(definition),
                "simpleSettingCollectionValue": [{"@odata.type": STRING_VALUE, "value": d} for d in domains],
            }
        )
    return {
        "@odata.type": SETTING_TYPE,
        "settingInstance": {
            "@odata.type": CHOICE_INSTANCE,
            "settingDefinitionId": definition,
            "choiceSettingValue": {
                "@odata.type": CHOICE_VALUE,
                "value": f"{definition}_{1 if domains else 0}",
                "children": children,
            },
        },
    }


def policy_body(name: str, value: dict[str, Any]) -> dict[str, Any]:
    """The POST (create) and PUT (replace, settings included) body of the Edge URL-list policy `name`."""
    return {
        "name": name,
        "description": DESCRIPTION,
        "platforms": PLATFORMS,
        "technologies": TECHNOLOGIES,
        "roleScopeTagIds": ["0"],
        "settings": [_instance(LISTS[key], sorted(value.get(key) or [])) for key in ("blocked", "allowed")],
    }


def policy_lists(settings: list[dict[str, Any]]) -> dict[str, list[str]]:
    """{"blocked", "allowed"} read from a policy's settings (a disabled or missing list is empty)."""
    by_id = {}
    for setting in settings:
        instance = setting.get("settingInstance") or {}
        by_id[instance.get("settingDefinitionId")] = instance
    out: dict[str, list[str]] = {}
    for key, definition in LISTS.items():
        choice = (by_id.get(definition) or {}).get("choiceSettingValue") or {}
        values: set[str] = set()
        if choice.get("value") == f"{definition}_1":
            for child in choice.get("children") or []:
                if child.get("settingDefinitionId") == child_id(definition):
                    values |= {str(v.get("value")) for v in child.get("simpleSettingCollectionValue") or []}
        out[key] = sorted(v for v in values if v)
    return out


def foreign_settings(settings: list[dict[str, Any]]) -> list[str]:
    """Setting definition ids in a managed policy that this tool does not write (a manual addition)."""
    ids = [str((s.get("settingInstance") or {}).get("settingDefinitionId")) for s in settings]
    return sorted(i for i in ids if i not in LISTS.values())
