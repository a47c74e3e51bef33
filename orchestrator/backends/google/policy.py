"""Chrome Policy values: which schemas and fields we manage, how values are normalised, how writes are built.

Values are plain dicts of the fields we manage, lists sorted, so the engine's equality check is the diff.
Keys (codec in spec.py): ou_policy ("ou", "schema"), ou_app ("ou", "app_id" = the extension id; the Chrome
Policy app_id is "chrome:{extension_id}").
"""

from __future__ import annotations

from typing import Any

from orchestrator.backends.google.names import (
    APP_INSTALL,
    APP_INSTALL_TYPE,
    APPS_WILDCARD,
    DISABLED_MESSAGE,
    DISABLED_TEXT,
    FORCE_SAFE_SEARCH,
    FORCE_YOUTUBE,
    SAFE_SEARCH,
    URL_ALLOWLIST,
    URL_BLOCKING,
    URL_BLOCKLIST,
)
from orchestrator.backends.google.spec import OU_APP, OU_POLICY
from orchestrator.core.types import ResourceType

# schema → managed fields; list-valued fields are written whole and compared sorted.
MANAGED_FIELDS: dict[str, tuple[str, ...]] = {
    URL_BLOCKING: (URL_BLOCKLIST, URL_ALLOWLIST),
    SAFE_SEARCH: (FORCE_SAFE_SEARCH, FORCE_YOUTUBE),
    DISABLED_MESSAGE: (DISABLED_TEXT,),
}
LIST_FIELDS = frozenset({URL_BLOCKLIST, URL_ALLOWLIST})
POLICY_TYPES: dict[str, ResourceType] = {OU_POLICY.name: OU_POLICY, OU_APP.name: OU_APP}
# One policies:resolve filter per namespace we read (leaf wildcard or an exact schema).
RESOLVE_FILTERS = ("chrome.users.*", DISABLED_MESSAGE, APPS_WILDCARD)


def namespace_of(schema: str) -> str:
    return schema.rsplit(".", 1)[0]


def split_key(kind: str, key: str) -> tuple[str, str]:
    """(ou, schema) of an ou_policy key, (ou, extension id) of an ou_app key."""
    ou, name = POLICY_TYPES[kind].split(key).values()
    return ou, name


def policy_key(kind: str, ou: str, name: str) -> str:
    return POLICY_TYPES[kind].key(ou, name)


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
            "policyValue": {"policySchema": APP_INSTALL, "value": {APP_INSTALL_TYPE: value[APP_INSTALL_TYPE]}},
            "updateMask": APP_INSTALL_TYPE,
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
