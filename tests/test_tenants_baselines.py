"""Shared baselines (issue 15, item 2): `include:` documents from baselines/, per-district overrides of named
fields, conflicts reported with both file:lines, and validate across every district."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.core.errors import PolicyError
from orchestrator.policy.loader import load_policies
from orchestrator.policy.models import WebFilter

REPO = Path(__file__).resolve().parent.parent

BASELINE = """\
kind: WebFilter
name: elementary-filter
targets:
  google_ous: [/Students/Elementary]
blocked:
  - tiktok.com
  - roblox.com
safe_search: true
youtube: strict
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch) -> Path:
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / "elementary-filter.yaml").write_text(BASELINE)
    for name in ("north", "south"):
        policies = tmp_path / "tenants" / name / "policies"
        policies.mkdir(parents=True)
        (policies / "baselines.yaml").write_text("include: [baselines/elementary-filter.yaml]\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_an_included_baseline_is_loaded_with_its_own_file_and_line(repo: Path) -> None:
    policies = load_policies(repo / "tenants" / "north" / "policies")
    [(model, loaded)] = policies.of_kind(WebFilter)
    assert model.blocked == ["tiktok.com", "roblox.com"]
    assert str(loaded.source_of("blocked")) == "baselines/elementary-filter.yaml:5"


def test_a_district_overrides_the_fields_it_names_and_keeps_the_others(repo: Path) -> None:
    (repo / "tenants" / "south" / "policies" / "filter.yaml").write_text(
        "kind: WebFilter\nname: elementary-filter\nyoutube: moderate\n"
    )
    [(model, loaded)] = load_policies(repo / "tenants" / "south" / "policies").of_kind(WebFilter)
    assert model.youtube == "moderate" and model.safe_search is True and model.blocked == ["tiktok.com", "roblox.com"]
    assert str(loaded.source_of("youtube")) == "tenants/south/policies/filter.yaml:3"
    assert str(loaded.source_of("blocked")) == "baselines/elementary-filter.yaml:5"
    # the other district still gets the baseline unchanged
    [(north, _)] = load_policies(repo / "tenants" / "north" / "policies").of_kind(WebFilter)
    assert north.youtube == "strict"


def test_a_conflict_with_a_baseline_names_both_files_and_lines(repo: Path) -> None:
    (repo / "tenants" / "north" / "policies" / "mine.yaml").write_text(
        "kind: WebFilter\nname: north-elementary\ntargets:\n  google_ous: [/Students/Elementary]\n"
        "blocked: [youtube.com]\n"
    )
    with pytest.raises(PolicyError) as info:
        load_policies(repo / "tenants" / "north" / "policies")
    text = "\n".join(str(d) for d in info.value.diagnostics)
    assert "tenants/north/policies/mine.yaml:5" in text and "baselines/elementary-filter.yaml:5" in text


def test_a_missing_include_is_reported_at_its_line(repo: Path) -> None:
    (repo / "tenants" / "north" / "policies" / "more.yaml").write_text(
        "include:\n  - baselines/elementary-filter.yaml\n  - baselines/nope.yaml\n"
    )
    with pytest.raises(PolicyError) as info:
        load_policies(repo / "tenants" / "north" / "policies")
    [problem] = info.value.diagnostics
    assert str(problem).startswith("tenants/north/policies/more.yaml:3") and "nope.yaml" in str(problem)


def test_validate_checks_every_district_against_the_shared_baseline(repo: Path) -> None:
    for name in ("north", "south"):
        folder = repo / "tenants" / name
        shutil.copytree(REPO / "inventory", folder / "inventory")
        (folder / "orchestrator.yaml").write_text("timezone: America/Chicago\n")
    (repo / "tenants" / "south" / "policies" / "filter.yaml").write_text(
        "kind: WebFilter\nname: elementary-filter\nyoutube: sideways\n"
    )
    result = CliRunner().invoke(main, ["validate", "--all-tenants"], catch_exceptions=False)
    assert result.exit_code == 1
    assert "| north" not in result.output  # the text table, not markdown
    assert "tenants/south/policies/filter.yaml:3" in result.output
    lines = {line.split()[1]: line for line in result.output.splitlines() if line.startswith("│ ")}
    assert "failed" in lines["south"] and "filter.yaml:3" in lines["south"] and "ok" in lines["north"]
