"""Adding a backend is one folder plus one registration: the toy backend runs through the real engine.

`tests/toy_backend/` is a complete backend (config section, resource types, pure compiler, an in-memory
Backend, a BackendSpec) that lives in the test tree. No file under `orchestrator/` was changed to add it and
none names it (`test_no_product_file_names_the_toy_backend`): these tests are the proof. They register its
spec in a *copy* of the catalog (the global `CATALOG` is never mutated), load an orchestrator.yaml with a
`toy:` section through the product's `load_config`, open it with `open_backends`, and run
make_plan → Executor.apply → make_plan (no changes) through the engine. Fail-closed checks: the destructive
toy type carries GateFacts and passes the same gates as a Google wipe (refused outside its window, capped per
window, refused without gate facts), and a resource type nobody registered fails the plan and the apply.

`docs/adding-a-backend.md` walks through the toy backend's files step by step.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from toy_backend import BLOCKLIST, ERASE, SPEC
from toy_backend.backend import ToyBackend

from orchestrator.backends.registry import CATALOG
from orchestrator.core.backend import Catalog, CompileInput
from orchestrator.core.errors import ConfigError, UnknownResourceType
from orchestrator.core.resources import Resource, ResourceId
from orchestrator.engine.apply import Executor, GateOptions
from orchestrator.engine.journal import Journal
from orchestrator.engine.plan import Plan
from orchestrator.engine.prune import Pruning
from orchestrator.engine.reconcile import make_plan
from orchestrator.inventory.devices import load_inventory
from orchestrator.jobs.config import Config, load_config
from orchestrator.jobs.connect import Connections, open_backends
from orchestrator.policy.loader import PolicySet, load_policies

REPO = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("America/Chicago")
OPEN_NOW = dt.datetime(2026, 12, 4, 23, 0, tzinfo=TZ)  # a Friday night: the night before a non-class day
CLOSED_NOW = dt.datetime(2026, 12, 3, 23, 0, tzinfo=TZ)  # a Thursday night: school tomorrow

POLICIES = {
    "webfilter.yaml": """
        kind: WebFilter
        name: elementary
        targets:
          google_ous: [/Students/Elementary, /Students/Middle]
        blocked: [games.example, "*.social.example"]
        ---
        kind: WebFilter
        name: high
        targets:
          google_ous: [/Students/High]
        blocked: [chat.example]
    """,
    "calendar.yaml": """
        kind: SchoolCalendar
        name: district
        timezone: America/Chicago
        terms:
          - name: Fall semester
            first_day: 2026-08-13
            last_day: 2026-12-18
        ---
        kind: MaintenanceWindow
        name: overnight
        calendar: district
        times: ["22:00-05:00"]
        days: nights_before_non_class_days
    """,
    "reimage.yaml": """
        kind: Reimage
        name: lab-erase
        window: overnight
        request: 2026-winter
        devices:
          serials: [TOY0001, TOY0002]
        max_devices_per_window: 1
    """,
}
INVENTORY = """\
serialNumber,platform,orgUnitPath,school,inventoryStatus
TOY0001,chromeos,/Labs/Lincoln,lincoln-elementary,active
TOY0002,windows,/Labs/Lincoln,lincoln-elementary,active
TOY0003,chromeos,/Students/Middle,roosevelt-middle,active
"""
CONFIG = """\
timezone: America/Chicago
journal: .orchestrator/journal.db
policies: policies/
inventory: inventory/devices.csv
toy:
  seed: {}
"""


def toy_catalog(spec=SPEC) -> Catalog:
    """The product's backends plus the toy: a new Catalog, so the global CATALOG stays as it is."""
    return Catalog([*CATALOG.specs.values(), spec])


@dataclasses.dataclass
class District:
    catalog: Catalog
    config: Config
    policies: PolicySet
    connections: Connections
    journal: Journal

    @property
    def toy(self) -> ToyBackend:
        backend = self.connections.backends["toy"]
        assert isinstance(backend, ToyBackend)
        return backend

    def plan(self, *scopes: str) -> Plan:
        return make_plan(
            catalog=self.catalog,
            policies=self.policies,
            inventory=load_inventory(self.config.path(self.config.inventory)),
            backends=self.connections.backends,
            journal=self.journal,
            scopes=scopes,
            notes=self.connections.notes,
            pruning=Pruning(declared=self.catalog.declared_pruning(self.config.sections)),
        )

    def executor(self) -> Executor:
        return Executor(
            catalog=self.catalog,
            backends=self.connections.backends,
            journal=self.journal,
            policies=self.policies,
            repo_root=self.config.base_dir,
        )


def write_district(root: Path, config: str = CONFIG) -> Path:
    (root / "policies").mkdir(parents=True)
    for name, text in POLICIES.items():
        (root / "policies" / name).write_text(textwrap.dedent(text).lstrip())
    (root / "inventory").mkdir()
    (root / "inventory" / "devices.csv").write_text(INVENTORY)
    (root / "orchestrator.yaml").write_text(config)
    return root / "orchestrator.yaml"


def open_district(config_path: Path, catalog: Catalog) -> District:
    config = load_config(config_path, catalog)
    connections = open_backends(config, catalog=catalog)
    return District(
        catalog=catalog,
        config=config,
        policies=load_policies(config.path(config.policies)),
        connections=connections,
        journal=Journal(config.path(config.journal)),
    )


@pytest.fixture
def district(tmp_path: Path) -> Iterator[District]:
    opened = open_district(write_district(tmp_path), toy_catalog())
    yield opened
    opened.connections.close()
    opened.journal.close()


def test_toy_backend_plans_applies_and_converges_through_the_engine(district: District) -> None:
    # the product backends are registered too; orchestrator.yaml configures only the toy, so they are skipped
    assert district.connections.skipped == ["google", "intune", "network"]

    plan = district.plan("policy")
    assert [(c.op, str(c.id)) for c in plan.changes] == [
        ("create", "toy/blocklist//Students/Elementary"),
        ("create", "toy/blocklist//Students/High"),
        ("create", "toy/blocklist//Students/Middle"),
    ]
    middle = plan.changes[2]
    assert middle.after == ["games.example", "social.example"]  # `*.social.example` → `social.example`
    assert middle.policy == "elementary" and all(re.search(r"webfilter\.yaml:\d+$", s) for s in middle.sources)
    assert "google: not configured in orchestrator.yaml, skipped" in plan.notes

    report = district.executor().apply(plan)
    assert report.ok and report.counts() == {"succeeded": 3}
    assert district.toy.blocklists == {
        "/Students/Elementary": ["games.example", "social.example"],
        "/Students/High": ["chat.example"],
        "/Students/Middle": ["games.example", "social.example"],
    }
    assert [row.state for row in district.journal.actions(report.run_id)].count("succeeded") == 3
    assert district.plan("policy").changes == []

    # edit the policies: one list changes, and the list no policy wants any more (authoritative type, applied
    # by this tool) is removed, after the sets
    webfilter = district.config.path(district.config.policies) / "webfilter.yaml"
    text = webfilter.read_text()
    text = text.replace("[/Students/Elementary, /Students/Middle]", "[/Students/Elementary]")
    webfilter.write_text(text.replace("blocked: [chat.example]", "blocked: [chat.example, video.example]"))
    district.policies = load_policies(webfilter.parent)
    edited = district.plan("policy")
    assert [(c.op, str(c.id)) for c in edited.changes] == [
        ("update", "toy/blocklist//Students/High"),
        ("delete", "toy/blocklist//Students/Middle"),
    ]
    assert district.executor().apply(edited).ok
    assert district.toy.blocklists == {
        "/Students/Elementary": ["games.example", "social.example"],
        "/Students/High": ["chat.example", "video.example"],
    }

    again = district.plan("policy")
    assert again.changes == [] and again.held == []
    district.connections.close()
    assert district.toy.closed


@pytest.mark.parametrize("prune", [False, True])
def test_a_setting_no_policy_made_is_pruned_only_where_the_toy_section_declares_it(tmp_path: Path, prune: bool) -> None:
    config = CONFIG.replace(
        "  seed: {}\n", f"  seed:\n    /Staff: [old.example]\n  manage:\n    prune: {str(prune).lower()}\n"
    )
    opened = open_district(write_district(tmp_path, config), toy_catalog())
    try:
        plan = opened.plan("policy")
        deletes = [str(c.id) for c in plan.changes if c.op == "delete"]
        if prune:
            assert deletes == ["toy/blocklist//Staff"] and plan.unmanaged == []
        else:  # adoption: what the console already had is shown, never deleted
            assert deletes == [] and plan.unmanaged == ["toy/blocklist//Staff"]
        assert opened.executor().apply(plan).ok
        assert ("/Staff" in opened.toy.blocklists) is not prune
    finally:
        opened.connections.close()
        opened.journal.close()


def test_a_destructive_toy_type_carries_gate_facts_and_passes_the_gates(district: District) -> None:
    plan = district.plan("maintenance")
    assert [(c.op, str(c.id), c.destructive) for c in plan.changes] == [
        ("action", "toy/erase/TOY0001|2026-winter", True),
        ("action", "toy/erase/TOY0002|2026-winter", True),
    ]
    assert all(c.gate is not None and c.gate.window == "overnight" and c.window == "overnight" for c in plan.changes)

    closed = district.executor().apply(plan, kind="maintenance", gates=GateOptions(now=CLOSED_NOW))
    assert closed.counts() == {"deferred": 2}
    assert all("window overnight closed" in detail for detail in closed.details.values())
    assert district.toy.erased == []  # nothing reached the console outside the window

    opened = district.executor().apply(plan, kind="maintenance", gates=GateOptions(now=OPEN_NOW))
    assert opened.counts() == {"succeeded": 1, "deferred": 1}  # the Reimage's max_devices_per_window is 1
    assert district.toy.erased == ["TOY0001"]
    (refused,) = [opened.details[k] for k, state in opened.states.items() if state == "deferred"]
    assert "max 1 devices" in refused and "max_devices_per_window" in refused

    # the journal is the observed state of a journal-observed type: only the device not yet erased is left
    left = district.plan("maintenance")
    assert [str(c.id) for c in left.changes] == ["toy/erase/TOY0002|2026-winter"]
    next_night = OPEN_NOW + dt.timedelta(days=1)  # Saturday night, before a Sunday
    assert district.executor().apply(left, kind="maintenance", gates=GateOptions(now=next_night)).ok
    assert district.toy.erased == ["TOY0001", "TOY0002"]
    assert district.plan("maintenance").changes == []


def test_a_destructive_toy_change_without_gate_facts_is_refused(tmp_path: Path) -> None:
    def forgetful(given: CompileInput) -> list[Resource]:
        return [dataclasses.replace(r, gate=None) for r in SPEC.compile(given)]

    opened = open_district(write_district(tmp_path), toy_catalog(dataclasses.replace(SPEC, compile=forgetful)))
    try:
        plan = opened.plan("maintenance")
        # destructive comes from the registered type, so a compiler cannot make an erase non-destructive
        assert plan.changes and all(c.destructive and c.gate is None for c in plan.changes)
        report = opened.executor().apply(plan, kind="maintenance", gates=GateOptions(now=OPEN_NOW))
        assert report.counts() == {"deferred": 2}
        assert all("carries no gate facts" in detail for detail in report.details.values())
        assert opened.toy.erased == []
    finally:
        opened.connections.close()
        opened.journal.close()


def test_a_type_nobody_registered_fails_closed(tmp_path: Path, district: District) -> None:
    def ghostly(given: CompileInput) -> list[Resource]:
        return [*SPEC.compile(given), Resource(ResourceId("toy", "ghost", "x"), "boo")]

    catalog = toy_catalog(dataclasses.replace(SPEC, compile=ghostly))
    haunted = open_district(write_district(tmp_path / "haunted"), catalog)
    try:
        with pytest.raises(UnknownResourceType, match="unknown resource type toy/ghost"):
            haunted.plan("policy")
        assert haunted.toy.calls == []  # the plan failed before the console was asked anything
    finally:
        haunted.connections.close()
        haunted.journal.close()

    # a plan holding toy changes, applied where the toy is not registered: refused before anything is sent
    plan = district.plan("policy")
    product_only = Executor(
        catalog=CATALOG,
        backends=district.connections.backends,
        journal=district.journal,
        policies=district.policies,
        repo_root=district.config.base_dir,
    )
    with pytest.raises(UnknownResourceType, match="toy/blocklist"):
        product_only.apply(plan)
    assert district.toy.blocklists == {} and district.toy.calls == ["observe 3"]
    with pytest.raises(UnknownResourceType):
        CATALOG.type_of(BLOCKLIST.id("/Staff"))  # the global catalog never learned the toy's types


def test_the_toy_config_section_is_validated_by_its_own_model(tmp_path: Path, monkeypatch) -> None:
    typo = write_district(tmp_path / "typo", CONFIG + "  colour: blue\n")
    with pytest.raises(ConfigError, match=r"toy\.colour: Extra inputs are not permitted"):
        load_config(typo, toy_catalog())
    with pytest.raises(ConfigError, match=r"unknown setting.*toy"):
        load_config(typo, CATALOG)  # without the registration, `toy:` is not a known section

    needs_token = write_district(tmp_path / "token", CONFIG + "  token_env: TOY_TEST_TOKEN\n")
    monkeypatch.delenv("TOY_TEST_TOKEN", raising=False)
    config = load_config(needs_token, toy_catalog())
    with pytest.raises(ConfigError, match=r"toy: \$TOY_TEST_TOKEN is not set"):
        open_backends(config, catalog=toy_catalog())  # a configured but unusable backend is an error, not a skip
    assert SPEC.credential_env(config.section("toy")) == ["TOY_TEST_TOKEN"]
    monkeypatch.setenv("TOY_TEST_TOKEN", "not-a-real-token")
    open_backends(config, ["toy"], required=True, catalog=toy_catalog()).close()


def test_no_product_file_names_the_toy_backend() -> None:
    """The toy needed no change under orchestrator/: no product module imports it or names its types."""
    pattern = re.compile(r"toy_backend|[\"']toy[\"']|\b(?:ToyBackend|ToyConfig)\b")
    named = [str(p.relative_to(REPO)) for p in (REPO / "orchestrator").rglob("*.py") if pattern.search(p.read_text())]
    assert named == []
    assert "toy" not in CATALOG.names() and ERASE not in list(CATALOG.types)


def test_the_walkthrough_quotes_the_toy_backend_as_it_is() -> None:
    """docs/adding-a-backend.md shows these lines; they must still be the toy's code."""
    doc = (REPO / "docs" / "adding-a-backend.md").read_text()
    toy = REPO / "tests" / "toy_backend"
    quoted = {
        "spec.py": [
            'BLOCKLIST = ResourceType("toy", "blocklist", ("ou",), order=0, authoritative=True)',
            '"toy", "erase", ("serial", "request"), order=5, observed_by="journal", destructive=True,',
            'return f"toy: ${section.token_env} is not set (the console\'s API token)"',
            "return ToyBackend(section.seed)",
        ],
        "compiler.py": [
            'sorted({domain.removeprefix("*.").lower() for domain in model.blocked}),',
            "if not selects(model, device, group_serials=given.group_serials):",
            "ERASE.id(device.serialNumber, model.request),",
        ],
        "config.py": ["token_env: str | None = None", "seed: dict[str, list[str]] = {}"],
    }
    stale = [
        f"{name}: {line}"
        for name, lines in quoted.items()
        for line in lines
        if line not in doc or line not in (toy / name).read_text()
    ]
    assert stale == []
