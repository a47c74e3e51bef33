"""`orchestrator journal resolve`: a person settles a destructive action whose outcome is unknown (issue 18 item 3)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.core.resources import Change, ResourceId
from orchestrator.engine.journal import Journal

WIPE = ResourceId("intune", "reimage", "PF0000123|spring-reset")


def journal_with_unknown_wipe(tmp_path: Path) -> Path:
    path = tmp_path / "journal.db"
    journal = Journal(path)
    run = journal.start_run("maintenance", plan_id="p1", fingerprint="f", policy_commit=None, actor="cron")
    change = Change(
        id=WIPE,
        op="action",
        before=None,
        after={"action": "wipe", "keepEnrollmentData": True, "keepUserData": False},
        destructive=True,
        policy="lab-reset",
        window="overnight",
    )
    journal.record(run, change, "sent")
    journal.record(run, change, "unknown", detail="503 after the request was sent")
    journal.finish_run(run, "failed", {"unknown": 1})
    journal.close()
    (tmp_path / "orchestrator.yaml").write_text(f"journal: {path}\n")
    return path


def run(tmp_path: Path, *args: str):
    return CliRunner().invoke(main, ["--config", str(tmp_path / "orchestrator.yaml"), *args], catch_exceptions=False)


def test_the_journal_lists_the_unknown_wipe_with_the_command_that_settles_it(tmp_path: Path) -> None:
    journal_with_unknown_wipe(tmp_path)
    listed = run(tmp_path, "journal")
    assert listed.exit_code == 0, listed.output
    assert "unknown outcome" in listed.output and str(WIPE) in listed.output
    assert "orchestrator journal resolve" in listed.output


def test_done_records_the_wipe_as_applied_with_who_and_why(tmp_path: Path, monkeypatch) -> None:
    path = journal_with_unknown_wipe(tmp_path)
    monkeypatch.setenv("ORCHESTRATOR_ACTOR", "tech-maria")
    settled = run(tmp_path, "journal", "resolve", str(WIPE), "--done", "--reason", "device shows the OOBE screen")
    assert settled.exit_code == 0, settled.output
    journal = Journal(path)
    assert journal.unsettled() == []
    assert journal.resource_state([WIPE]) == {
        WIPE: {"action": "wipe", "keepEnrollmentData": True, "keepUserData": False}
    }
    last = journal.runs(1)[0]
    assert (last["kind"], last["actor"]) == ("resolve", "tech-maria")
    [row] = journal.actions(last["id"])
    assert row.state == "succeeded" and "device shows the OOBE screen" in row.detail


def test_resend_lets_the_next_run_send_it_again_and_nothing_is_remembered(tmp_path: Path) -> None:
    path = journal_with_unknown_wipe(tmp_path)
    settled = run(tmp_path, "journal", "resolve", str(WIPE), "--resend", "--reason", "still has the old image")
    assert settled.exit_code == 0, settled.output
    journal = Journal(path)
    assert journal.unsettled() == [] and journal.resource_state([WIPE]) == {}


def test_resolve_needs_an_outcome_a_reason_and_an_unsettled_action(tmp_path: Path) -> None:
    journal_with_unknown_wipe(tmp_path)
    no_outcome = run(tmp_path, "journal", "resolve", str(WIPE), "--reason", "x")
    assert no_outcome.exit_code == 1 and "--done" in no_outcome.output
    no_reason = run(tmp_path, "journal", "resolve", str(WIPE), "--done")
    assert no_reason.exit_code == 2
    wrong = run(tmp_path, "journal", "resolve", "intune/reimage/PF9999999|x", "--done", "--reason", "checked")
    assert wrong.exit_code == 1 and str(WIPE) in wrong.output  # names what is unsettled
    assert run(tmp_path, "journal", "resolve", str(WIPE), "--done", "--reason", "checked").exit_code == 0
    again = run(tmp_path, "journal", "resolve", str(WIPE), "--done", "--reason", "checked")
    assert again.exit_code == 1 and "nothing is unsettled" in again.output
