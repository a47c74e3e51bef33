"""Entra ID device objects and group transitive membership for the Graph emulator.

`GET /groups/{id}/transitiveMembers[/microsoft.graph.device]` as the directory serves it: a flat list of
direct and nested members (nested groups flattened, each device once), `@odata.type` on every object,
`$select`, pages of `$top` (default 100, at most 999) linked by an opaque `$skiptoken` in
`@odata.nextLink`, and `@odata.count` with `$count=true`. The OData cast to `microsoft.graph.device` is an
advanced query: without `$count=true` it is refused (the service also wants `ConsistencyLevel: eventual`).

Group members are stored in `GraphState.group_members` as managed device ids (and ids of nested groups);
each managed device stands for one Entra device object whose `deviceId` is the managed device's
`azureADDeviceId`, as in a real tenant where Intune and Entra ID keep both records.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import unquote, urlencode

from orchestrator.sandbox.graph_state import GraphProblem, GraphState, stable_id

DEFAULT_PAGE = 100
MAX_PAGE = 999
DEVICE_CAST = "microsoft.graph.device"
GROUP_CAST = "microsoft.graph.group"


def entra_device(record: dict[str, Any], state: GraphState | None = None) -> dict[str, Any]:
    """The Entra ID device object behind a managed device record."""
    device_id = record.get("azureADDeviceId") or stable_id("entra-device", str(record.get("serialNumber")))
    return {
        "@odata.type": "#microsoft.graph.device",
        "id": stable_id("entra-object", device_id),
        "deviceId": device_id,
        "displayName": record.get("deviceName"),
        "operatingSystem": record.get("operatingSystem"),
        "accountEnabled": device_id not in (state.entra_disabled if state else set()),
    }


_BY_DEVICE_ID = re.compile(r"^devices\(deviceId='([^']+)'\)$")
WRITABLE_DEVICE_FIELDS = ("accountEnabled", "extensionAttributes", "displayName", "operatingSystem")


def _lookup(state: GraphState, key: str, value: str) -> dict[str, Any] | None:
    """The managed record whose Entra object has `key` == `value`, through an index kept per state; a hit is
    re-checked against the record and a miss rebuilds the index once, so a change to the devices is never
    served stale (a scan of every device per request made a 20-item $batch take a second at 20,000 devices)."""
    for attempt in range(2):
        if attempt or not state.entra_index:
            state.entra_index.clear()
            for managed_id, record in state.devices.items():
                entra = entra_device(record)
                state.entra_index[("deviceId", entra["deviceId"])] = managed_id
                state.entra_index[("id", entra["id"])] = managed_id
        record = state.devices.get(state.entra_index.get((key, value), ""))
        if record is not None and entra_device(record)[key] == value:
            return record
    return None


def _entra_record(state: GraphState, parts: list[str]) -> dict[str, Any]:
    """The managed record behind `devices/{id}` or `devices(deviceId='{deviceId}')` (404 if none)."""
    match = _BY_DEVICE_ID.match(unquote(parts[0])) if len(parts) == 1 else None
    found = None
    if match:
        found = _lookup(state, "deviceId", match.group(1))
    elif len(parts) == 2:
        found = _lookup(state, "id", parts[1])
    if found is not None:
        return found
    wanted = match.group(1) if match else parts[-1]
    raise GraphProblem(
        404,
        "Request_ResourceNotFound",
        f"Resource '{wanted}' does not exist or one of its queried reference-property objects are not present.",
    )


def entra_get(state: GraphState, parts: list[str], query: dict[str, str]) -> dict[str, Any]:
    """`GET /devices/{id}` or `/devices(deviceId='…')`, with `$select`."""
    device = entra_device(_entra_record(state, parts), state)
    select = [f for f in (query.get("$select") or "").split(",") if f]
    return {k: v for k, v in device.items() if not select or k in select or k == "@odata.type"}


def entra_patch(state: GraphState, parts: list[str], body: Any) -> None:
    """`PATCH /devices/{id}` (204). App-only callers may set accountEnabled only on Windows devices; for other
    devices only extensionAttributes (Graph "Update device", learn.microsoft.com/graph/api/device-update)."""
    record = _entra_record(state, parts)
    if not isinstance(body, dict) or not body:
        raise GraphProblem(400, "Request_BadRequest", "A request body with the properties to update is required.")
    unknown = sorted(set(body) - set(WRITABLE_DEVICE_FIELDS))
    if unknown:
        raise GraphProblem(400, "Request_BadRequest", f"Property '{unknown[0]}' is read-only or does not exist.")
    windows = str(record.get("operatingSystem") or "").lower() == "windows"
    if set(body) - {"extensionAttributes"} and not windows:
        raise GraphProblem(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
    if "accountEnabled" in body:
        if not isinstance(body["accountEnabled"], bool):
            raise GraphProblem(400, "Request_BadRequest", "Invalid value for property 'accountEnabled'.")
        device_id = entra_device(record)["deviceId"]
        if body["accountEnabled"]:
            state.entra_disabled.discard(device_id)
        else:
            state.entra_disabled.add(device_id)


def _flatten(state: GraphState, group_id: str, seen: set[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for member in sorted(state.group_members.get(group_id, set())):
        if member in seen:
            continue
        seen.add(member)
        if member in state.groups:
            out.append({"@odata.type": "#microsoft.graph.group", **state.groups[member]})
            out += _flatten(state, member, seen)
        elif member in state.devices:
            out.append(entra_device(state.devices[member], state))
    return out


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))["o"])
    except (ValueError, KeyError, TypeError):
        raise GraphProblem(400, "Directory_ExpiredPageToken", "The specified page token value has expired") from None


def transitive_members(
    state: GraphState, group_id: str, cast: str | None, query: dict[str, str], version: str, base_url: str
) -> dict[str, Any]:
    """One page of a group's transitive members (optionally cast to devices or groups)."""
    if group_id not in state.groups:
        raise GraphProblem(404, "Request_ResourceNotFound", f"Resource '{group_id}' does not exist")
    if cast not in (None, DEVICE_CAST, GROUP_CAST):
        raise GraphProblem(400, "BadRequest", f"Resource not found for the segment '{cast}'.")
    counting = query.get("$count", "").lower() == "true"
    if cast and not counting:
        raise GraphProblem(
            400,
            "Request_UnsupportedQuery",
            "OData cast needs advanced query parameters: $count=true and the header ConsistencyLevel: eventual",
        )
    try:
        top = int(query.get("$top") or DEFAULT_PAGE)
    except ValueError:
        raise GraphProblem(400, "BadRequest", "Invalid $top value") from None
    if not 1 <= top <= MAX_PAGE:
        raise GraphProblem(400, "Request_UnsupportedQuery", f"Invalid page size specified: '{top}'. Must be 1-999.")
    members = _flatten(state, group_id, set())
    if cast:
        members = [m for m in members if m["@odata.type"] == f"#{cast}"]
    offset = _offset(query.get("$skiptoken"))
    page = members[offset : offset + top]
    select = [f for f in (query.get("$select") or "").split(",") if f]
    if select:
        page = [{k: v for k, v in m.items() if k in select or k == "@odata.type"} for m in page]
    path = f"groups/{group_id}/transitiveMembers" + (f"/{cast}" if cast else "")
    payload: dict[str, Any] = {"@odata.context": f"{base_url}/{version}/$metadata#directoryObjects", "value": page}
    if counting:
        payload["@odata.count"] = len(members)
    if offset + top < len(members):
        params = {k: v for k, v in query.items() if k in ("$select", "$count", "$top")}
        params["$skiptoken"] = _token(offset + top)
        payload["@odata.nextLink"] = f"{base_url}/{version}/{path}?" + urlencode(params)
    return payload


def add_nested_group(state: GraphState, parent: str, name: str, member_ids: list[str]) -> str:
    """Create group `name` holding `member_ids` and make it a member of group id `parent` (for tests)."""
    child = state.add_group(name)
    state.group_members[child].update(member_ids)
    state.group_members[parent].add(child)
    return child
