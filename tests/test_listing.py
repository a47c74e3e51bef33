"""Listing the fleet as concurrent, exact, non-overlapping OU subtrees (issue 14 item 2).

`chromeosdevices.list` with `orgUnitPath` alone returns the devices directly in that OU; with
`includeChildOrgunits=true` those of the whole subtree (the bundled directory_v1 discovery document; the
emulator follows it). The cut must read every device exactly once, including devices that sit directly in a
parent OU whose children are listed on their own. Checked through the real GoogleBackend and googleapiclient
against the emulator: counts, no duplicates, no misses, and the request count against the page floor.
"""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from orchestrator.backends.google.backend import GoogleBackend
from orchestrator.backends.google.config import GoogleConfig
from orchestrator.backends.google.listing import WHOLE_PAGES, LazyCut, OuTree, Subtree, list_fleet
from orchestrator.backends.pacing import CallCounter
from orchestrator.sandbox.google_emulator import start_emulator


def covers(part: Subtree, ou: str) -> bool:
    prefix = "/" if part.path == "/" else part.path + "/"
    return ou == part.path or (part.children and ou.startswith(prefix))


def drain(cut: LazyCut) -> list[Subtree]:
    return list(iter(cut.take, None))


@pytest.mark.parametrize("round_trip", [0.001, 0.05, 0.5, 5.0])
@pytest.mark.parametrize("pages", [1, 40, 334, 5000])
def test_every_org_unit_falls_in_exactly_one_listing(pages: int, round_trip: float) -> None:
    rng = random.Random(pages)
    ous = {"/"}
    for _ in range(300):  # a random tree: each new OU under an existing one
        ous.add(f"{rng.choice(sorted(ous)).rstrip('/')}/ou{len(ous)}")
    cut = drain(LazyCut(OuTree(ous), pages, 8, 40.0, lambda: round_trip))
    for ou in ous:
        assert sum(covers(part, ou) for part in cut) == 1, ou
    if pages <= WHOLE_PAGES:
        assert cut == [Subtree("/", True)]


def district_tree() -> OuTree:
    """Like District-100k: 3 levels of 24 schools with 5 grades each, plus staff."""
    ous = {"/", "/Students", "/Staff"}
    for level in ("Elementary", "Middle", "High"):
        for school in range(24):
            ous |= {f"/Students/{level}/S{school}/Grade-{g}" for g in range(5)}
            ous |= {f"/Students/{level}", f"/Students/{level}/S{school}"}
    return OuTree(ous)


def test_the_cut_follows_the_round_trip_against_the_quota_floor() -> None:
    """At 50 ms a page the quota floor (334 pages at 40/s: 8.4 s) leaves room for a few long listings, so few
    requests are wasted; at a second a page the fair share of 8 workers bounds every listing instead."""
    tree = district_tree()
    fast = drain(LazyCut(tree, 334, 8, 40.0, lambda: 0.05))
    slow = drain(LazyCut(tree, 334, 8, 40.0, lambda: 1.0))
    assert 3 <= len(fast) <= 10 and {
        Subtree(f"/Students/{level}", True) for level in ("Elementary", "Middle", "High")
    } <= set(fast)
    assert len(slow) > 70 and max(LazyCut(tree, 334, 8, 40.0, lambda: 1.0).estimate(p) for p in slow) <= 334 / 8


@pytest.fixture(scope="module")
def emulator():
    emulator = start_emulator(devices=6000, seed=5, ous=60)
    state = emulator.state
    ids = sorted(state.devices)
    # devices directly in parents whose children get listings of their own, and one in the root
    state.move_devices(ids[:7], "/Students")
    state.move_devices(ids[7:12], "/Students/Elementary")
    state.move_devices(ids[12:13], "/")
    yield emulator
    emulator.stop()


def backend(emulator, workers: int, per_minute: int = 2400) -> GoogleBackend:
    """`per_minute`: a quota so high that its floor is nothing, so that even the emulator's short round trips
    make the cut split down to single OUs (the paths where a parent's own devices are read alone)."""
    config = GoogleConfig(
        directory_endpoint=emulator.url,
        policy_endpoint=emulator.url,
        credentials_file_env="K12_TEST_NO_GOOGLE_CREDENTIALS",
        requests_per_minute=per_minute,
    )
    return GoogleBackend(config, counter=CallCounter(), workers=workers)


@pytest.mark.parametrize("workers", [1, 8])
def test_inventory_sync_reads_every_device_exactly_once(emulator, workers: int) -> None:
    emulator.reset_counts()
    records = backend(emulator, workers, per_minute=10**9).inventory_records(len(emulator.state.devices))
    ids = Counter(r["deviceId"] for r in records)
    assert not [i for i, n in ids.items() if n > 1], "a device was read twice"
    assert set(ids) == set(emulator.state.devices), "a device was missed"
    by_ou = Counter(r["orgUnitPath"] for r in records)
    assert by_ou["/Students"] == 7 and by_ou["/Students/Elementary"] == 5 and by_ou["/"] == 1
    pages = emulator.calls["chromeosdevices.list"]
    floor = math.ceil(len(emulator.state.devices) / 300)
    if workers == 1:
        assert pages == floor  # one sequential listing
    else:  # cut to single OUs: more pages than the floor, at most one partial page per OU
        assert floor < pages <= floor + len(emulator.state.ous)


@pytest.mark.parametrize("fleet", [None, 2000, 200_000])
def test_the_lockdown_listing_is_exact_whatever_the_cut(emulator, fleet: int | None) -> None:
    emulator.reset_counts()
    google = backend(emulator, 8, per_minute=10**9)
    by_serial = google.devices.devices_by_serial(refresh=True, fleet=fleet)
    assert sum(len(records) for records in by_serial.values()) == len(emulator.state.devices)
    assert {r["deviceId"] for records in by_serial.values() for r in records} == set(emulator.state.devices)
    # 7 pages, or a size unknown: one listing, the fewest requests
    assert emulator.calls["orgunits.list"] == (0 if fleet in (2000, None) else 1)
    if fleet in (2000, None):
        assert emulator.calls["chromeosdevices.list"] == math.ceil(len(emulator.state.devices) / 300)


def test_the_listing_is_cut_by_the_measured_round_trip_and_says_how(emulator) -> None:
    """Against the emulator (no added latency) the round trip is short: a 6,000-device fleet (20 pages) is
    listed in a few listings, and the requests stay within one partial page per listing of the floor."""
    emulator.reset_counts()
    google = backend(emulator, 8)
    listed = list_fleet(
        google.api,
        google.org_units,
        fields="nextPageToken,chromeosdevices(deviceId)",
        projection="BASIC",
        workers=8,
        fleet=len(emulator.state.devices),
    )
    assert len({r["deviceId"] for r in listed.devices}) == len(listed.devices) == len(emulator.state.devices)
    floor = math.ceil(len(emulator.state.devices) / 300)
    assert emulator.calls["chromeosdevices.list"] <= floor + len(listed.listings)
    assert google.api.round_trips["chromeosdevices.list"] > 0
