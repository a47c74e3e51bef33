"""Google partial responses: `fields` selectors (`nextPageToken,chromeosdevices(deviceId,status)`, `a/b`) and
the Chrome device `projection` (BASIC or FULL)."""

from __future__ import annotations

from typing import Any

FieldTree = dict[str, "FieldTree | None"]  # None = the whole value
# projection=BASIC: "only the basic metadata fields (e.g., deviceId, serialNumber, status, and user)" (directory_v1
# discovery). The exact set is not published; this is GAM's CROS_BASIC_FIELDS_LIST (deviceId, annotatedAssetId,
# annotatedLocation, annotatedUser, lastSync, notes, serialNumber, status) plus the OU, model and OS version.
# autoUpdateExpiration/autoUpdateThrough and macAddress are FULL only here (unverified, api-conformance.md).
BASIC_FIELDS = (
    "kind",
    "etag",
    "deviceId",
    "serialNumber",
    "status",
    "orgUnitPath",
    "orgUnitId",
    "annotatedAssetId",
    "annotatedUser",
    "annotatedLocation",
    "notes",
    "model",
    "osVersion",
    "lastSync",
)


def parse_fields(text: str) -> FieldTree:
    """Parse a selector into a tree; raise ValueError on unbalanced parentheses or empty names."""
    compact = text.replace(" ", "")
    tree, i = _parse(compact, 0)
    if i != len(compact):
        raise ValueError(f"invalid fields selector: {text!r}")
    return tree


def _parse(text: str, i: int) -> tuple[FieldTree, int]:
    tree: FieldTree = {}
    while True:
        start = i
        while i < len(text) and text[i] not in ",()":
            i += 1
        name = text[start:i]
        if not name:
            raise ValueError("empty field name in fields selector")
        if i < len(text) and text[i] == "(":
            sub, i = _parse(text, i + 1)
            if i >= len(text) or text[i] != ")":
                raise ValueError("unbalanced parentheses in fields selector")
            i += 1
            _add_path(tree, name, sub)
        else:
            _add_path(tree, name, None)
        if i < len(text) and text[i] == ",":
            i += 1
            continue
        return tree, i


def _add_path(tree: FieldTree, dotted: str, leaf: FieldTree | None) -> None:
    parts = dotted.split("/")
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if child is None and part in node:
            return  # already selecting the whole value
        node = node.setdefault(part, {})  # type: ignore[assignment]
    last = parts[-1]
    if leaf is None or node.get(last, {}) is None:
        node[last] = None
    else:
        existing = node.get(last) or {}
        existing.update(leaf)
        node[last] = existing


def select(value: Any, tree: FieldTree | None) -> Any:
    """Keep only the selected fields; lists apply the selection to each element."""
    if tree is None:
        return value
    if isinstance(value, list):
        return [select(v, tree) for v in value]
    if not isinstance(value, dict):
        return value
    return {k: select(value[k], sub) for k, sub in tree.items() if k in value}


def project(device: dict[str, Any], projection: str) -> dict[str, Any]:
    """A Chrome device as `projection` (BASIC or FULL) returns it."""
    if projection.upper() == "BASIC":
        return {k: device[k] for k in BASIC_FIELDS if k in device}
    return dict(device)
