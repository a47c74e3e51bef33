"""Listing the Chrome fleet concurrently: exact, non-overlapping org-unit subtrees, each paged on its own.

A page token makes one listing sequential: 100,000 devices are 334 pages one after another, bounded by the
round-trip latency, not by the 2,400/min Directory quota. `chromeosdevices.list` narrows a listing to an org
unit: with `orgUnitPath` alone it returns the devices directly in that OU, with `includeChildOrgunits=true`
those of the whole subtree (the discovery document bundled in google-api-python-client, directory_v1 rev
20261104: includeChildOrgunits "Return devices from all child orgunits, as well as the specified org unit. If
this is set to true, 'orgUnitPath' must be provided."). So the OU tree is cut into subtrees of about equal
size (by OU count): a subtree small enough is listed whole; a larger one lists its root's own devices alone
and splits into its children. Every OU falls in exactly one listing, so every device is read once. The cut
uses the OU list read just before (one `orgunits.list`); an OU created in the seconds between would be missed
only under a split parent, so a caller that must not miss one re-reads (the plan's next run does).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from orchestrator.backends.google.client import GoogleApi

LIST_PAGE = 300


@dataclass(frozen=True)
class Subtree:
    """One listing: the devices of `path` and, when `children`, of every OU below it."""

    path: str
    children: bool
    ous: int = 1  # org units this listing covers (its weight when the listings are scheduled)


def parent_of(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def subtrees(ous: Collection[str], parts: int) -> list[Subtree]:
    """Cut the OU tree under "/" into about `parts` exact, non-overlapping listings, largest first."""
    below: dict[str, list[str]] = defaultdict(list)
    for path in sorted(set(ous) | {"/"}):
        if path != "/":
            below[parent_of(path)].append(path)
    size: dict[str, int] = {}

    def weigh(path: str) -> int:
        size[path] = 1 + sum(weigh(child) for child in below[path])
        return size[path]

    target = max(1, weigh("/") // max(1, parts))
    out: list[Subtree] = []
    stack = ["/"]
    while stack:
        path = stack.pop()
        if size[path] <= target or not below[path]:
            out.append(Subtree(path, True, size[path]))
        else:
            out.append(Subtree(path, False, 1))
            stack += below[path]
    return sorted(out, key=lambda s: (-s.ous, s.path))


def list_subtrees(
    api: GoogleApi,
    parts: list[Subtree],
    *,
    fields: str,
    projection: str,
    workers: int,
    endpoint: str = "chromeosdevices.list",
) -> list[dict[str, Any]]:
    """Every device of `parts`, each listing paged on its own thread (the Directory pacer holds the quota)."""
    devices = api.directory.chromeosdevices()

    def one(part: Subtree) -> list[dict[str, Any]]:
        params: dict[str, Any] = {}
        if not (part.path == "/" and part.children):  # the whole fleet needs no OU filter
            params["orgUnitPath"] = part.path.lstrip("/") or "/"
            if part.children:
                params["includeChildOrgunits"] = True
        request = devices.list(
            customerId=api.customer, maxResults=LIST_PAGE, projection=projection, fields=fields, **params
        )
        found: list[dict[str, Any]] = []
        while request is not None:
            page = api.read(endpoint, request)
            found += page.get("chromeosdevices", [])
            request = devices.list_next(request, page)
        return found

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(parts)))) as pool:
        return [device for listed in pool.map(one, parts) for device in listed]


PAGES_PER_LISTING = 8  # each listing wastes at most its last partial page: with ≥8 pages each, ≤1/16 on average
OUS_PER_LISTING = 25  # with no device count at hand, the OU count stands in for the fleet's size


def listings_for(workers: int, fleet: int | None, ous: int = 0) -> int:
    """How many listings to cut: two per worker, fewer for a small fleet (`fleet`: the expected device count,
    from the inventory; else `ous`, the number of org units), since each listing's partial last page is a
    request the page floor does not count."""
    wanted = ous // OUS_PER_LISTING if fleet is None else math.ceil(fleet / LIST_PAGE) // PAGES_PER_LISTING
    return max(1, min(2 * workers, wanted))


def list_fleet(
    api: GoogleApi,
    org_units: Callable[[], Collection[str]] | None,
    *,
    fields: str,
    projection: str,
    workers: int,
    fleet: int | None = None,
) -> list[dict[str, Any]]:
    """The whole Chrome fleet: one sequential listing for a small fleet, else concurrent subtrees."""
    cut = [Subtree("/", True)]
    if org_units is not None and workers > 1 and (fleet is None or listings_for(workers, fleet) > 1):
        ous = org_units()
        cut = subtrees(ous, listings_for(workers, fleet, len(ous)))
    return list_subtrees(api, cut, fields=fields, projection=projection, workers=workers)
