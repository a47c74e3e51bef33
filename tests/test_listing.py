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
from orchestrator.backends.google.listing import Subtree, listings_for, subtrees
from orchestrator.backends.pacing import CallCounter
from orchestrator.sandbox.google_emulator import start_emulator


def covers(part: Subtree, ou: str) -> bool:
    prefix = "/" if part.path == "/" else part.path + "/"
    return ou == part.path or (part.children and ou.startswith(prefix))


@pytest.mark.parametrize("parts", [1, 2, 5, 16, 64, 1000])
def test_every_org_unit_falls_in_exactly_one_listing(parts: int) -> None:
    rng = random.Random(parts)
    ous = {"/"}
    for _ in range(300):  # a random tree: each new OU under an existing one
        ous.add(f"{rng.choice(sorted(ous)).rstrip('/')}/ou{len(ous)}")
    cut = subtrees(ous, parts)
    for ou in ous:
        assert sum(covers(part, ou) for part in cut) == 1, ou
    if parts == 1:
        assert cut == [Subtree("/", True, len(ous))]


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


def backend(emulator, workers: int) -> GoogleBackend:
    config = GoogleConfig(
        directory_endpoint=emulator.url,
        policy_endpoint=emulator.url,
        credentials_file_env="K12_TEST_NO_GOOGLE_CREDENTIALS",
    )
    return GoogleBackend(config, counter=CallCounter(), workers=workers)


@pytest.mark.parametrize("workers", [1, 8])
def test_inventory_sync_reads_every_device_exactly_once(emulator, workers: int) -> None:
    emulator.reset_counts()
    records = backend(emulator, workers).inventory_records()
    ids = Counter(r["deviceId"] for r in records)
    assert not [i for i, n in ids.items() if n > 1], "a device was read twice"
    assert set(ids) == set(emulator.state.devices), "a device was missed"
    by_ou = Counter(r["orgUnitPath"] for r in records)
    assert by_ou["/Students"] == 7 and by_ou["/Students/Elementary"] == 5 and by_ou["/"] == 1
    pages = emulator.calls["chromeosdevices.list"]
    floor = math.ceil(len(emulator.state.devices) / 300)
    if workers == 1:
        assert pages == floor  # one sequential listing
    else:  # at most one partial last page per listing
        cut = subtrees(emulator.state.ous, listings_for(workers, None, len(emulator.state.ous)))
        assert len(cut) > 1 and floor < pages <= floor + len(cut)


@pytest.mark.parametrize("fleet", [None, 2000, 200_000])
def test_the_lockdown_listing_is_exact_whatever_the_cut(emulator, fleet: int | None) -> None:
    emulator.reset_counts()
    google = backend(emulator, 8)
    by_serial = google.devices.devices_by_serial(refresh=True, fleet=fleet)
    assert sum(len(records) for records in by_serial.values()) == len(emulator.state.devices)
    assert {r["deviceId"] for records in by_serial.values() for r in records} == set(emulator.state.devices)
    assert emulator.calls["orgunits.list"] == (0 if fleet == 2000 else 1)  # 7 pages: one listing is enough
    if fleet == 2000:
        assert emulator.calls["chromeosdevices.list"] == math.ceil(len(emulator.state.devices) / 300)


def test_a_small_fleet_is_one_listing_and_a_large_one_is_cut_for_every_worker() -> None:
    assert listings_for(8, 1000) == 1
    assert listings_for(8, 100_000) == 16
    assert listings_for(8, 30_000) == 12
    assert listings_for(8, None, ous=40) == 1 and listings_for(8, None, ous=400) == 16
