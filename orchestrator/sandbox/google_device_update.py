"""`chromeosdevices.update` (PUT) and `chromeosdevices.patch` (PATCH) in the emulated tenant, validated strictly.

From the bundled directory_v1 discovery document (ChromeOsDevice; update/patch "Updates a device's updatable
properties, such as annotatedUser, annotatedLocation, notes, orgUnitPath, or annotatedAssetId"):
- a body field that is not a ChromeOsDevice property is refused with 400 for the whole request, as the API's
  proto JSON parsing does ("Invalid JSON payload received. Unknown name ...");
- writable string fields must be strings within the documented lengths (annotatedUser 100, annotatedLocation
  200, notes 500; annotatedAssetId has no documented limit);
- read-only properties (serialNumber, status, lastSync, ...) are ignored; orgUnitPath/orgUnitId move the device
  (an orgUnitId that names another OU than orgUnitPath is refused, "Inconsistent Orgunit id and path");
- update replaces: writable annotation fields absent from a PUT body are cleared; patch changes only what the
  body names. Unverified against Google (error wording, read-only handling, PUT clearing, length errors):
  docs/api-conformance.md.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from googleapiclient.discovery_cache import get_static_doc

from orchestrator.sandbox.google_state import ApiError, GoogleState

ANNOTATIONS: dict[str, int | None] = {
    "annotatedAssetId": None,
    "annotatedUser": 100,
    "annotatedLocation": 200,
    "notes": 500,
}


@functools.cache
def device_properties() -> frozenset[str]:
    """Every ChromeOsDevice property name in the bundled discovery document."""
    schemas = json.loads(get_static_doc("admin", "directory_v1") or "{}")["schemas"]
    return frozenset(schemas["ChromeOsDevice"]["properties"])


def update_device(state: GoogleState, device_id: str, body: Any, *, replace: bool) -> dict[str, Any]:
    """Apply an update (`replace`) or patch body to one device; returns the device (FULL)."""
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid JSON payload received. Expected an object.", "invalid")
    unknown = sorted(set(body) - device_properties())
    if unknown:
        raise ApiError(
            400, f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot find field.', "invalid"
        )
    device = state.device(device_id)
    for name, longest in ANNOTATIONS.items():
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise ApiError(400, f"Invalid value at 'requestBody.{name}' (TYPE_STRING)", "invalid")
        if value is not None and longest is not None and len(value) > longest:
            raise ApiError(400, f"Invalid Input: {name} must be at most {longest} characters", "invalid")
    ou = _target_ou(state, body)
    state.version += 1
    for name in ANNOTATIONS:
        if body.get(name):
            device[name] = body[name]
        elif name in body or replace:  # an empty value is cleared and, like Google, left out of replies
            device.pop(name, None)  # a PUT is the whole writable resource
    if ou is not None:
        state.move_devices([device_id], ou)
    return device


def _target_ou(state: GoogleState, body: dict[str, Any]) -> str | None:
    """The OU path a body moves the device to (None: no move); refuses unknown or inconsistent OUs."""
    path, ou_id = body.get("orgUnitPath"), body.get("orgUnitId")
    by_path = state.ou_by_ref(path) if path else None
    by_id = state.ou_by_ref("id:" + str(ou_id).removeprefix("id:")) if ou_id else None
    if by_path is not None and by_id is not None and by_path.path != by_id.path:
        raise ApiError(400, "Inconsistent Orgunit id and path in request", "invalid")
    chosen = by_path or by_id
    return chosen.path if chosen is not None else None
