"""A provider's sandbox of several districts (issue 15, item 7): `plan --all-tenants` then `apply --all-tenants`
through the real clients (googleapiclient, msgraph-sdk, ansible-runner running ansible-playbook) against each
district's own emulators, with one district's policy broken and another's console down; and what one district
holds (students, secrets, console state) never reaching another."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.core.errors import OrchestratorError
from orchestrator.core.redact import district_key
from orchestrator.inventory.devices import load_inventory
from orchestrator.sandbox.tenants import build_provider, district_sizes, org_unit_count, stop_all

BOTH = ("--backend", "google", "--backend", "intune")


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def provider(tmp_path: Path, monkeypatch):
    """Three sandbox districts (lincoln-county 40 devices, prairie-valley 120, cedar-ridge 69), each with its own
    emulators and a secret planted in its own environment file."""
    districts = build_provider(tmp_path, 3, 120)
    for district in districts:
        env_var = district.name.upper().replace("-", "_") + "_ROSTER_TOKEN"
        (district.folder / "district.env").write_text(f"{env_var}=SECRET-{district.name}-roster\n")
        config = district.folder / "orchestrator.yaml"
        config.write_text(config.read_text() + "environment_file: district.env\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORCHESTRATOR_ACTOR", "test-provider")
    for name in ("ORCHESTRATOR_CONFIG", "K12_SANDBOX_NETWORK_DIR", "ORCHESTRATOR_RUNNER"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path, {d.name: d for d in districts}
    stop_all(districts)


def test_districts_differ_in_size_schools_zone_calendar_and_students(provider) -> None:
    root, districts = provider
    assert sorted(d.devices for d in districts.values()) == [40, 69, 120]
    assert len({d.timezone for d in districts.values()}) == 3
    calendars = {name: (d.folder / "policies" / "calendar.yaml").read_text() for name, d in districts.items()}
    assert len(set(calendars.values())) == 3
    for name, district in districts.items():
        students = {d.assignedStudent for d in load_inventory(district.folder / "inventory" / "devices.csv").devices}
        assert {s.split("@")[1] for s in students if s} == {f"{name}.k12.example"}
        assert district.google.url != districts["prairie-valley"].google.url or name == "prairie-valley"
    assert (
        "youtube: moderate" in (districts["cedar-ridge"].folder / "policies" / "webfilter-elementary.yaml").read_text()
    )
    assert (root / "baselines" / "elementary-filter.yaml").is_file()


def test_sizes_spread_from_a_seventh_of_the_largest_and_bigger_districts_have_more_schools() -> None:
    sizes = district_sizes(60, 2000)
    assert max(sizes) == 2000 and min(sizes) == round(2000 / 7) and len(set(sizes)) == 60
    assert org_unit_count(2000) > org_unit_count(300)


def test_the_sandbox_never_writes_over_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OrchestratorError, match="not made by `orchestrator sandbox --tenants`"):
        build_provider(tmp_path, 1, 40)


@pytest.mark.slow
def test_plan_then_apply_all_tenants_one_broken_policy_one_console_down(provider) -> None:
    root, districts = provider
    ok, broken, down = districts["prairie-valley"], districts["lincoln-county"], districts["cedar-ridge"]
    (broken.folder / "policies" / "typo.yaml").write_text(
        "kind: WebFilter\nname: typo\ntargets:\n  google_ous: [/Students/Elementry]\nblocked: [example.com]\n"
    )
    plans = str(root / "plans" / "{tenant}.json")
    planned = run("plan", "--all-tenants", "--parallel", "3", "--out", plans, "--format", "json")
    assert planned.exit_code == 1, planned.output
    by_name = {t["tenant"]: t for t in json.loads(planned.stdout)["tenants"]}
    assert by_name["prairie-valley"]["status"] == by_name["cedar-ridge"]["status"] == "ok"
    assert by_name["prairie-valley"]["changes"] > 0 and by_name["cedar-ridge"]["changes"] > 0
    assert by_name["lincoln-county"]["status"] == "failed"
    assert "typo.yaml:4" in by_name["lincoln-county"]["error"]
    network_changes = [c for c in by_name["prairie-valley"]["output"]["changes"] if c["id"].startswith("network/")]
    assert network_changes, "the network gear was checked with ansible-playbook --check"

    down.graph.stop()  # the district's Intune console is unreachable by the time the plans are applied
    applied = run("apply", plans, "--all-tenants", "--parallel", "3", "--yes")
    assert applied.exit_code == 1, applied.output
    assert re.search(r"prairie-valley\s+│ ok", applied.output), applied.output
    assert re.search(r"cedar-ridge\s+│ failed", applied.output) and re.search(
        r"lincoln-county\s+│ failed", applied.output
    )
    assert "3 district(s): 2 failed, 1 ok" in applied.output

    # the district that worked is now in sync, through every console; its gear wrote only under its folder
    again = run("drift", "--tenant", "prairie-valley")
    assert again.exit_code == 0, again.output
    assert list((ok.folder / ".orchestrator" / "sandbox-network").rglob("*")), "its sites' files"
    assert not (root / ".orchestrator").exists()
    assert sum(n for endpoint, n in ok.google.calls.items() if "batchModify" in endpoint) > 0
    assert not any("batchModify" in endpoint for endpoint in broken.google.calls)


def test_no_district_sees_another_districts_students_secrets_or_redaction_key(provider) -> None:
    root, districts = provider
    result = run("lockdown", "--all-tenants", "--dry-run", *BOTH)
    assert result.exit_code == 0, result.output
    for name, district in districts.items():
        others = [d for d in districts.values() if d.name != name]
        folder = district.folder / ".orchestrator"
        [report] = folder.joinpath("reports").glob("lockdown-*.json")
        tokens = set(re.findall(r"<redacted:([0-9a-f]{12})>", report.read_text()))
        assert tokens, f"{name}: its lost devices are listed with a token for the student"
        inventory = load_inventory(district.folder / "inventory" / "devices.csv").devices
        own = _tokens(district_key(folder), [d.assignedStudent for d in inventory])
        assert tokens <= own, f"{name}'s report holds tokens that are not its own students under its own key"
        for other in others:
            other_students = [
                d.assignedStudent for d in load_inventory(other.folder / "inventory" / "devices.csv").devices
            ]
            assert not tokens & _tokens(district_key(other.folder / ".orchestrator"), other_students)
            assert not tokens & _tokens(district_key(folder), other_students)
    texts = [result.output] + [p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file()]
    for name in districts:
        leaked = [i for i, text in enumerate(texts) if f"SECRET-{name}-roster" in text]
        assert len(leaked) == 1, f"{name}'s secret is only in its own environment file"
    assert "k12.example" not in result.output


def _tokens(key: bytes, students: list[str]) -> set[str]:
    return {hmac.new(key, s.encode(), hashlib.sha256).hexdigest()[:12] for s in students if s}
