"""Listing the Chrome fleet concurrently: exact, non-overlapping org-unit subtrees, each paged on its own.

A page token makes one listing sequential: 100,000 devices are 334 pages one after another, bounded by the
round-trip latency, not by the 2,400/min Directory quota. `chromeosdevices.list` narrows a listing to an org
unit: with `orgUnitPath` alone it returns the devices directly in that OU, with `includeChildOrgunits=true`
those of the whole subtree (the discovery document bundled in google-api-python-client, directory_v1 rev
20261104: includeChildOrgunits "Return devices from all child orgunits, as well as the specified org unit. If
this is set to true, 'orgUnitPath' must be provided."). Every OU falls in exactly one listing, so every device
is read once.

How finely to cut is a cost model. Each listing wastes at most its partial last page, a request the page floor
does not count; a listing too long keeps the run waiting on round trips. So the tree is cut lazily: a worker
about to start a subtree lists it whole when its pages, one round trip each, fit the time the run needs anyway
(the quota floor: the fleet's pages at the Directory rate, or the workers' fair share of the round trips,
whichever is longer), and otherwise splits it into its root's own devices and its children's subtrees. The
round trip is the one measured so far (a device page's, else the OU list's): 50 ms gives a handful of long
listings and about 1.0x the page floor; a second per page gives one short listing per school. A subtree's
pages are estimated from its share of the OUs and the inventory's fleet size (unknown: one listing). The cut
uses the OU list read just before (one `orgunits.list`); an OU created in the seconds between would be missed
only under a split parent, so a caller that must not miss one re-reads (the plan's next run does).
"""

from __future__ import annotations

import heapq
import math
import threading
from collections import defaultdict
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from orchestrator.backends.google.client import GoogleApi

LIST_PAGE = 300
WHOLE_PAGES = 8  # a listing this short is never split: its partial last page is at most 1/16 of it on average
ASSUMED_ROUND_TRIP = 0.5  # seconds per page before any Directory reply has been timed (unverified on Google)
LISTING = "chromeosdevices.list"


@dataclass(frozen=True)
class FleetListing:
    devices: list[dict[str, Any]]
    listings: list[Subtree]  # in the order they started


@dataclass(frozen=True)
class Subtree:
    """One listing: the devices of `path` and, when `children`, of every OU below it."""

    path: str
    children: bool


def parent_of(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


class OuTree:
    """The OU tree under "/", with the number of OUs in every subtree."""

    def __init__(self, ous: Collection[str]):
        self.below: dict[str, list[str]] = defaultdict(list)
        for path in sorted(set(ous) | {"/"}):
            if path != "/":
                self.below[parent_of(path)].append(path)
        self.size: dict[str, int] = {}
        stack, order = ["/"], []
        while stack:  # children after parents; sizes are summed in reverse (no recursion limit on deep trees)
            path = stack.pop()
            order.append(path)
            stack += self.below[path]
        for path in reversed(order):
            self.size[path] = 1 + sum(self.size[child] for child in self.below[path])

    def ous(self, part: Subtree) -> int:
        return self.size[part.path] if part.children else 1

    def split(self, part: Subtree) -> list[Subtree]:
        return [Subtree(part.path, False)] + [Subtree(child, True) for child in self.below[part.path]]


class LazyCut:
    """The listings still to start, largest first; `take` decides at the last moment to list or to split."""

    def __init__(
        self, tree: OuTree, pages: int, workers: int, pages_per_second: float, round_trip: Callable[[], float]
    ):
        self.tree = tree
        self.pages = pages  # the fleet's, at LIST_PAGE a page
        self.workers = workers
        self.rate = pages_per_second
        self.round_trip = round_trip
        self.cut: list[Subtree] = []  # every listing started, in order
        self._queue: list[tuple[float, str, bool]] = []
        self._lock = threading.Lock()
        self._push(Subtree("/", True))

    def estimate(self, part: Subtree) -> float:
        """The pages `part` is expected to have: its share of the OUs times the fleet's pages, at least one."""
        return max(1.0, self.pages * self.tree.ous(part) / self.tree.size["/"])

    def budget(self, round_trip: float) -> float:
        """Seconds the whole listing needs anyway: the quota floor or the workers' share of the round trips."""
        return max(self.pages / self.rate, self.pages * round_trip / self.workers)

    def _too_long(self, part: Subtree) -> bool:
        pages, round_trip = self.estimate(part), self.round_trip()
        return pages > WHOLE_PAGES and pages * round_trip > self.budget(round_trip)

    def _push(self, part: Subtree) -> None:
        heapq.heappush(self._queue, (-self.estimate(part), part.path, part.children))

    def take(self) -> Subtree | None:
        with self._lock:
            while self._queue:
                _, path, children = heapq.heappop(self._queue)
                part = Subtree(path, children)
                if children and self.tree.below[path] and self._too_long(part):
                    for smaller in self.tree.split(part):
                        self._push(smaller)
                    continue
                self.cut.append(part)
                return part
            return None  # splits happen only here, under the lock: an empty queue stays empty


def _params(part: Subtree) -> dict[str, Any]:
    if part.path == "/" and part.children:  # the whole fleet needs no OU filter
        return {}
    params: dict[str, Any] = {"orgUnitPath": part.path.lstrip("/") or "/"}
    if part.children:
        params["includeChildOrgunits"] = True
    return params


def _list_one(api: GoogleApi, part: Subtree, *, fields: str, projection: str, endpoint: str) -> list[dict[str, Any]]:
    devices = api.directory.chromeosdevices()
    request = devices.list(
        customerId=api.customer, maxResults=LIST_PAGE, projection=projection, fields=fields, **_params(part)
    )
    found: list[dict[str, Any]] = []
    while request is not None:
        page = api.read(endpoint, request)
        found += page.get("chromeosdevices", [])
        request = devices.list_next(request, page)
    return found


def list_subtrees(
    api: GoogleApi,
    parts: list[Subtree],
    *,
    fields: str,
    projection: str,
    workers: int,
    endpoint: str = LISTING,
) -> list[dict[str, Any]]:
    """Every device of `parts`, each listing paged on its own thread (the Directory pacer holds the quota)."""
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(parts)))) as pool:
        listed = pool.map(
            lambda part: _list_one(api, part, fields=fields, projection=projection, endpoint=endpoint), parts
        )
        return [device for devices in listed for device in devices]


def measured_round_trip(api: GoogleApi) -> float:
    """A device page's round trip so far, else the OU list's, else the assumption."""
    trips = api.round_trips
    return trips.get(LISTING) or trips.get("orgunits.list") or ASSUMED_ROUND_TRIP


def list_fleet(
    api: GoogleApi,
    org_units: Callable[[], Collection[str]] | None,
    *,
    fields: str,
    projection: str,
    workers: int,
    fleet: int | None = None,
) -> FleetListing:
    """The whole Chrome fleet: the lazy cut, sized by `fleet` (the expected device count, from the inventory);
    one listing, the fewest requests, for a fleet of a few pages or of unknown size, for one worker, or
    without the OU list."""
    if org_units is None or workers <= 1 or not fleet or fleet <= WHOLE_PAGES * LIST_PAGE:
        whole = [Subtree("/", True)]
        return FleetListing(list_subtrees(api, whole, fields=fields, projection=projection, workers=1), whole)
    tree = OuTree(org_units())
    pages = math.ceil(fleet / LIST_PAGE)
    cut = LazyCut(tree, pages, workers, api.directory_bucket.per_second, lambda: measured_round_trip(api))
    found: list[list[dict[str, Any]]] = []

    def work() -> None:
        while (part := cut.take()) is not None:
            found.append(_list_one(api, part, fields=fields, projection=projection, endpoint=LISTING))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done in [pool.submit(work) for _ in range(workers)]:
            done.result()
    return FleetListing([device for devices in found for device in devices], cut.cut)
