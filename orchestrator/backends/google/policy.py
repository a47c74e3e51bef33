"""Chrome Policy values: which schemas and fields we manage, how values are normalised, how writes are built.

Values are plain dicts of the fields we manage, lists sorted, so the engine's equality check is the diff.
Keys: ou_policy "{ou_path}|{schema}", ou_app "{ou_path}|{extension_id}" (app_id "chrome:{extension_id}").
"""

from __future__ import annotations

from typing import Any

URL_BLOCKING = "chrome.users.UrlBlocking"
SAFE_SEARCH = "chrome.users.SafeSearchRestrictedMode"
DISABLED_MESSAGE = "chrome.devices.DisabledDeviceReturnInstructions"
APP_INSTALL = "chrome.users.apps.InstallType"
APPS_WILDCARD = "chrome.users.apps.*"

# schema → managed fields; list-valued fields are written whole and compared sorted.
MANAGED_FIELDS: dict[str, tuple[str, ...]] = {
    URL_BLOCKING: ("urlBlocklist", "urlAllowlist"),
    SAFE_SEARCH: ("forceGoogleSafeSearch", "forceYoutubeRestrictedMode"),
    DISABLED_MESSAGE: ("deviceDisabledMessage",),
}
LIST_FIELDS = frozenset({"urlBlocklist", "urlAllowlist"})
# One policies:resolve filter per namespace we read (leaf wildcard or an exact schema).
RESOLVE_FILTERS = ("chrome.users.*", DISABLED_MESSAGE, APPS_WILDCARD)


def namespace_of(schema: str) -> str:
    return schema.rsplit(".", 1)[0]


def split_key(key: str) -> tuple[str, str]:
    ou, _, rest = key.rpartition("|")
    return ou, rest


def normalise(schema: str, value: dict[str, Any], only: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Managed fields of a console value (or `only` those), lists sorted, absent lists as []."""
    out: dict[str, Any] = {}
    for name in only or MANAGED_FIELDS.get(schema, ()):
        if name in LIST_FIELDS:
            out[name] = sorted(value.get(name) or [])
        elif name in value:
            out[name] = value[name]
    return out


def app_id(extension_id: str) -> str:
    return extension_id if ":" in extension_id else f"chrome:{extension_id}"


def extension_of(app: str) -> str | None:
    """The extension id of a Chrome app_id; None for Android or web apps (not managed here)."""
    kind, _, ident = app.partition(":")
    return ident if kind == "chrome" and ident else None


def target_key(ou_id: str, extension_id: str | None = None) -> dict[str, Any]:
    target: dict[str, Any] = {"targetResource": f"orgunits/{ou_id}"}
    if extension_id is not None:
        target["additionalTargetKeys"] = {"app_id": app_id(extension_id)}
    return target


def modify_request(kind: str, ou_id: str, name: str, value: dict[str, Any], before: Any = None) -> dict[str, Any]:
    """One batchModify request; `name` is a schema (ou_policy) or an extension id (ou_app).

    The update mask also names managed fields the old value had and the new one drops, which clears them.
    """
    if kind == "ou_app":
        return {
            "policyTargetKey": target_key(ou_id, name),
            "policyValue": {"policySchema": APP_INSTALL, "value": {"appInstallType": value["appInstallType"]}},
            "updateMask": "appInstallType",
        }
    return {
        "policyTargetKey": target_key(ou_id),
        "policyValue": {"policySchema": name, "value": value},
        "updateMask": ",".join(sorted(set(value) | _dropped(name, value, before))),
    }


def _dropped(schema: str, value: dict[str, Any], before: Any) -> set[str]:
    if not isinstance(before, dict):
        return set()
    return {f for f in before if f not in value and f in MANAGED_FIELDS.get(schema, ())}


def inherit_request(kind: str, ou_id: str, name: str) -> dict[str, Any]:
    if kind == "ou_app":
        return {"policyTargetKey": target_key(ou_id, name), "policySchema": APPS_WILDCARD}
    return {"policyTargetKey": target_key(ou_id), "policySchema": name}


def write_namespace(kind: str, name: str) -> str:
    return namespace_of(APP_INSTALL) if kind == "ou_app" else namespace_of(name)
