"""`report techcheck` and `report --html` across districts: `--tenant`/`--all-tenants` as for `plan` and
`lockdown` (each district reads its own inventory and reports; `{tenant}` names each one's file or site)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import main
from orchestrator.inventory.devices import load_inventory, write_inventory_csv

REPO = Path(__file__).resolve().parent.parent
ON = "2026-12-11"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def districts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """north (only Lincoln's devices) and south (the whole sample), no console configured: reports only."""
    for name in ("north", "south"):
        folder = tmp_path / "tenants" / name
        folder.mkdir(parents=True)
        for sub in ("policies", "inventory"):
            shutil.copytree(REPO / sub, folder / sub)
        (folder / "orchestrator.yaml").write_text("timezone: America/Chicago\n")
    north = tmp_path / "tenants" / "north" / "inventory" / "devices.csv"
    lincoln = [d for d in load_inventory(north).devices if d.school == "lincoln-elementary"]
    north.write_text(write_inventory_csv(lincoln))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ORCHESTRATOR_CONFIG", raising=False)
    return tmp_path


def test_techcheck_runs_for_each_chosen_district_with_its_own_inventory(districts: Path) -> None:
    result = run("report", "techcheck", "--all-tenants", "--format", "json", "--date", ON)
    assert result.exit_code == 0, result.output
    runs = {r["tenant"]: r for r in json.loads(result.stdout)["tenants"]}
    assert sorted(runs) == ["north", "south"] and {r["status"] for r in runs.values()} == {"ok"}
    assert list(runs["north"]["output"]["schools"]) == ["lincoln-elementary"]
    assert len(runs["south"]["output"]["schools"]) == 4
    assert runs["north"]["output"]["date"] == ON

    markdown = run("report", "techcheck", "--tenant", "south", "--tenant", "north", "--format", "md", "--date", ON)
    assert markdown.exit_code == 0, markdown.output
    text = markdown.stdout
    assert text.index("## District `south`") < text.index("## District `north`") < text.index("## All districts")
    assert text.count(f"# Morning tech check {ON}") == 2 and "| north | ok |" in text

    saved = run("--tenant", "south", "report", "techcheck", "--date", ON, "--out", "techcheck-{tenant}.md")
    assert saved.exit_code == 0, saved.output
    assert (districts / "techcheck-south.md").read_text().startswith(f"# Morning tech check {ON}")
    assert not (districts / "techcheck-north.md").exists()


def test_one_file_or_site_per_district_is_required(districts: Path) -> None:
    refused = run("report", "techcheck", "--all-tenants", "--out", "techcheck.md")
    assert refused.exit_code == 1 and "--out with several districts must contain {tenant}" in refused.output
    refused = run("report", "techcheck", "--tenant", "north", "--format", "csv")
    assert refused.exit_code == 1 and "--format csv across districts needs --out" in refused.output
    refused = run("report", "--html", "site", "--all-tenants")
    assert refused.exit_code == 1 and "--html with several districts must contain {tenant}" in refused.output
    assert not (districts / "site").exists()
    built = run("report", "--html", "site-{tenant}", "--all-tenants")
    assert built.exit_code == 0, built.output
    for name in ("north", "south"):
        assert "Morning tech check" in (districts / f"site-{name}" / "techcheck.html").read_text()
