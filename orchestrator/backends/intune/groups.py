"""Device group membership for selectors: Entra ID group → transitive device members → Intune serials.

A Reimage can choose its devices by Intune (Entra ID) group. Membership lives in Entra ID, not in the
inventory, so before the pure compile the plan asks Graph:

1. `GET /groups/{id}/transitiveMembers/microsoft.graph.device?$select=id,deviceId&$top=999&$count=true`
   with `ConsistencyLevel: eventual` (an OData cast is an advanced directory query; default page 100,
   maximum 999; follow `@odata.nextLink`). Nested groups are flattened by the service.
2. `GET /deviceManagement/managedDevices?$select=id,serialNumber,azureADDeviceId&$top=1000` (paged), and
   match the Entra `deviceId` to the managed device's `azureADDeviceId`: the serial comes from Intune.

An Entra device with no managed device (registered, never enrolled) selects nothing; the zero GUID that
unregistered managed devices report never matches.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation

from orchestrator.backends.intune.graph import GraphSession
from orchestrator.backends.intune.group_names import GroupNames

MEMBER_PAGE = 999  # the documented maximum page size for directory object collections
DEVICE_PAGE = 1000
NO_ENTRA_ID = "00000000-0000-0000-0000-000000000000"


async def _get(session: GraphSession, endpoint: str, url: str, headers: dict[str, str]) -> dict[str, Any]:
    """One GET with extra request headers, through the session's client, counter and retry policy."""

    async def send() -> dict[str, Any]:
        info = RequestInformation(Method.GET)
        info.url = url
        info.headers.try_add("Accept", "application/json")
        for name, value in headers.items():
            info.headers.try_add(name, value)
        raw = await session.adapter.send_primitive_async(info, "bytes", session.error_map)
        return json.loads(raw) if raw else {}

    return await session.call(endpoint, send)


async def _all_pages(session: GraphSession, endpoint: str, url: str, headers: dict[str, str]) -> list[dict]:
    items: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        page = await _get(session, endpoint, next_url, headers)
        items.extend(page.get("value") or [])
        next_url = page.get("@odata.nextLink")
    return items


async def transitive_device_ids(session: GraphSession, group_id: str) -> set[str]:
    """Entra `deviceId`s of every device that is a direct or nested member of the group."""
    url = session.url(
        "v1.0",
        f"groups/{group_id}/transitiveMembers/microsoft.graph.device",
        **{"$select": "id,deviceId", "$top": str(MEMBER_PAGE), "$count": "true"},
    )
    members = await _all_pages(session, "GET groups/transitiveMembers", url, {"ConsistencyLevel": "eventual"})
    return {str(m["deviceId"]) for m in members if m.get("deviceId")}


async def device_member_count(session: GraphSession, group_id: str) -> int:
    """How many devices are direct members of the group.

    `GET /groups/{id}/members/microsoft.graph.device/$count` with `ConsistencyLevel: eventual` (List group
    members: OData cast and `$count` are advanced queries, https://learn.microsoft.com/graph/aad-advanced-queries);
    the answer is a bare number as text/plain.
    """
    url = session.url("v1.0", f"groups/{group_id}/members/microsoft.graph.device/$count")

    async def send() -> int:
        info = RequestInformation(Method.GET)
        info.url = url
        info.headers.try_add("Accept", "text/plain")
        info.headers.try_add("ConsistencyLevel", "eventual")
        raw = await session.adapter.send_primitive_async(info, "bytes", session.error_map)
        return int((raw or b"0").decode().strip() or 0)

    return await session.call("GET groups/members/$count", send)


async def serials_by_entra_id(session: GraphSession) -> dict[str, set[str]]:
    """Entra deviceId → serial numbers of the Intune managed devices that carry it (bulk, paged)."""
    url = session.url(
        "v1.0",
        "deviceManagement/managedDevices",
        **{"$select": "id,serialNumber,azureADDeviceId", "$top": str(DEVICE_PAGE)},
    )
    out: dict[str, set[str]] = {}
    for record in await _all_pages(session, "GET managedDevices", url, {}):
        entra, serial = str(record.get("azureADDeviceId") or ""), str(record.get("serialNumber") or "")
        if entra and entra != NO_ENTRA_ID and serial:
            out.setdefault(entra.lower(), set()).add(serial)
    return out


async def group_serials(session: GraphSession, group_ids: dict[str, str]) -> dict[str, set[str]]:
    """Group display name → serials of its transitive device members that Intune manages."""
    by_entra = await serials_by_entra_id(session)
    out: dict[str, set[str]] = {}
    for name, group_id in sorted(group_ids.items()):
        serials: set[str] = set()
        for device_id in await transitive_device_ids(session, group_id):
            serials |= by_entra.get(device_id.lower(), set())
        out[name] = serials
    return out


async def display_names(session: GraphSession, path: str, top: int | None = None) -> set[str]:
    """Every display name in a collection (`groups`, `deviceAppManagement/mobileApps`), paged."""
    query = {"$select": "id,displayName", **({"$top": str(top)} if top else {})}
    records = await _all_pages(session, f"GET {path.rsplit('/', 1)[-1]}", session.url("v1.0", path, **query), {})
    return {str(r["displayName"]) for r in records if r.get("displayName")}


async def known_names(session: GraphSession, groups: GroupNames, kind: str, names: Collection[str]) -> set[str]:
    """For the plan's target check: which of `names` exist, plus every other name when one does not.

    Groups are looked up by exact display name (cached by the backend, so observe does not ask again);
    only when one is missing is the whole group list read, for the did-you-mean. Apps: one paged list.
    """
    if kind == "intune_app":
        return await display_names(session, "deviceAppManagement/mobileApps")
    if kind != "intune_group":
        return set()
    problems: list[str] = []
    await groups.resolve({n: "" for n in names if n not in groups.ids}, problems)
    found = {n for n in names if n in groups.ids}
    if found == set(names):
        return found
    return found | await display_names(session, "groups", top=MEMBER_PAGE)
