"""RepairPolicy through `validate`: its calendar must exist (file:line, did-you-mean) and a district has one."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from orchestrator.cli import main


def validate(repo: Path) -> str:
    result = CliRunner().invoke(main, ["--config", str(repo / "orchestrator.yaml"), "validate"])
    return result.output if result.exit_code else ""


def test_a_repair_policy_naming_an_unknown_calendar_is_an_error_with_its_line(sample_repo: Path) -> None:
    path = sample_repo / "policies" / "repair.yaml"
    path.write_text(path.read_text().replace("calendar: district-2026-27", "calendar: district-2026-72"))
    output = " ".join(validate(sample_repo).split())
    assert "policies/repair.yaml:4: calendar: no SchoolCalendar named 'district-2026-72'" in output
    assert "did you mean 'district-2026-27'" in output


def test_two_repair_policies_are_an_error(sample_repo: Path) -> None:
    second = sample_repo / "policies" / "repair-high.yaml"
    second.write_text("kind: RepairPolicy\nname: high-schools\ncalendar: district-2026-27\n")
    output = " ".join(validate(sample_repo).split())
    assert "repair.yaml:1: kind: a second RepairPolicy; the first is at" in output  # files load in name order
    assert "repair-high.yaml:1 (one RepairPolicy per district)" in output


def test_the_sample_repair_policy_is_valid(sample_repo: Path) -> None:
    assert validate(sample_repo) == ""
