"""Apply's re-check reads only what the plan touches (issue 12 item 5, issue 14).

Before sending, apply re-reads the consoles to skip what is already in place. For Chrome policies that is one
`policies:resolve` per namespace for each OU the plan changes, not for every OU of the district: at the real
read quota (5 per second) re-reading 400 OUs costs four minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lockdown_tenant import Tenant

from orchestrator import Session
from orchestrator.backends.google.policy import RESOLVE_FILTERS
from orchestrator.inventory.devices import Device
from orchestrator.sandbox.district import generate
from orchestrator.sandbox.google_emulator import GoogleEmulator
from orchestrator.sandbox.graph_emulator import GraphEmulator
from orchestrator.sandbox.graph_state import GraphState

FILTER = """\
kind: WebFilter
name: two-schools
targets:
  google_ous: [/Students/Elementary/Lincoln, /Students/Middle/Roosevelt]
blocked: [tiktok.com]
safe_search: true
"""


@pytest.fixture
def tenant(tmp_path: Path) -> Iterator[Tenant]:
    district = generate(devices=300, seed=3, ous=40)
    google = GoogleEmulator(district, seed=3).start()
    graph = GraphEmulator.start_local(state=GraphState.from_district(district))
    devices = [Device(**{**s.device.__dict__}) for s in district.devices]
    tenant = Tenant(root=tmp_path, district=district, google=google, graph=graph, devices=devices)
    tenant.write()
    (tmp_path / "policies" / "filter.yaml").write_text(FILTER)
    try:
        yield tenant
    finally:
        google.stop()
        graph.stop()


def test_apply_rereads_only_the_org_units_the_plan_changes(tenant: Tenant) -> None:
    with Session.open(str(tenant.config), backends=["google"]) as session:
        plan = session.plan(("policy",))
        assert len(tenant.google.state.ous) >= 40
        assert tenant.google.calls["policies.resolve"] == len(tenant.google.state.ous) * len(RESOLVE_FILTERS)
        touched = {c.id.key.split("|")[0] for c in plan.changes}
        # the two schools, and "/" (the lost-device policy's disabled-device message)
        assert touched == {"/", "/Students/Elementary/Lincoln", "/Students/Middle/Roosevelt"}
        tenant.reset_counts()
        report = session.apply(plan)
    assert report.ok and set(report.counts()) == {"succeeded"}
    assert tenant.google.calls["policies.resolve"] == len(touched) * len(RESOLVE_FILTERS)


def test_a_change_already_in_place_at_apply_time_is_skipped(tenant: Tenant) -> None:
    with Session.open(str(tenant.config), backends=["google"]) as session:
        first, second = session.plan(("policy",)), session.plan(("policy",))  # two plans, two ids
        session.apply(first)  # e.g. a colleague applied the same change meanwhile
        tenant.reset_counts()
        again = session.apply(second, check_stale=False)
    assert set(again.counts()) == {"skipped"}
    assert tenant.google.calls["policies.orgunits.batchModify"] == 0
    assert tenant.google.calls["policies.resolve"] == 3 * len(RESOLVE_FILTERS)
