"""Logs never carry credentials or student emails."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from lockdown_tenant import Tenant

from orchestrator.backends.pacing import RetryPolicy
from orchestrator.cli.logs import ScrubbingFormatter, context, log_context, scrub, trace_journal
from orchestrator.core.errors import TransientError
from orchestrator.sandbox.httpbase import Fault


def test_tokens_secrets_and_emails_are_scrubbed() -> None:
    line = (
        'Authorization: Bearer ya29.a0AfH6SMBxyz-123 client_secret="abc123def" '
        "password=hunter2 for ana.lopez@district.example"
    )
    cleaned = scrub(line)
    for secret in ("ya29.a0AfH6SMBxyz-123", "abc123def", "hunter2", "ana.lopez@district.example"):
        assert secret not in cleaned


def test_json_log_lines_are_scrubbed_and_parse() -> None:
    record = logging.LogRecord(
        "orchestrator",
        logging.WARNING,
        __file__,
        1,
        "token refresh failed: access_token=%s",
        ("eyJhbGciOi.secret",),
        None,
    )
    line = ScrubbingFormatter(as_json=True).format(record)
    parsed = json.loads(line)
    assert parsed["level"] == "WARNING" and "eyJhbGciOi.secret" not in line


def test_every_retry_is_logged_with_its_wait(caplog) -> None:
    attempts = iter([TransientError("HTTP 503", retry_after=0.25, status=503), TransientError("HTTP 503"), None])

    def flaky() -> str:
        error = next(attempts)
        if error is not None:
            raise error
        return "ok"

    slept: list[float] = []
    with caplog.at_level(logging.INFO, logger="orchestrator.retry"):
        assert RetryPolicy(attempts=3, initial_wait=0.01).call(flaky, sleep=slept.append) == "ok"
    retries = [r for r in caplog.records if r.name == "orchestrator.retry"]
    assert [r.attempt for r in retries] == [1, 2]
    assert retries[0].retry_wait == 0.25 and "waiting 0.25 s" in retries[0].getMessage()
    assert [round(r.retry_wait, 3) for r in retries] == [round(s, 3) for s in slept]


def test_json_lines_carry_the_run_the_tenant_and_the_change_being_sent() -> None:
    record = logging.LogRecord("orchestrator.retry", logging.INFO, __file__, 1, "retry %d", (1,), None)
    record.retry_wait = 0.5
    with log_context(run="r-42", tenant="north", changes=("abc123",)):
        parsed = json.loads(ScrubbingFormatter(as_json=True).format(record))
        text = ScrubbingFormatter(as_json=False).format(record)
    assert (parsed["run"], parsed["tenant"], parsed["change"], parsed["retry_wait"]) == ("r-42", "north", "abc123", 0.5)
    assert "[run r-42 abc123] retry 1" in text
    with log_context():
        assert "run" not in json.loads(ScrubbingFormatter(as_json=True).format(record))


def test_the_journal_trace_follows_a_run_from_start_to_finish() -> None:
    class FakeJournal:
        def start_run(self, kind: str) -> str:
            return "r-7"

        def record(self, run_id: str, change, state: str) -> None:
            return None

        def finish_run(self, run_id: str, status: str) -> None:
            return None

    class FakeChange:
        key = "k1"

    journal = FakeJournal()
    trace_journal(journal)
    run = journal.start_run("apply")
    journal.record(run, FakeChange(), "sent")
    assert context() == {"run": "r-7", "change": "k1"}
    journal.record(run, FakeChange(), "succeeded")
    assert context() == {"run": "r-7"}
    journal.finish_run(run, "succeeded")
    assert context() == {}


def test_json_log_of_a_lockdown_names_the_run_and_change_of_each_retry(tenant: Tenant) -> None:
    [chromebook] = tenant.serials("chromeos", 1)
    tenant.mark("lost", chromebook)
    tenant.google.faults.queue.append(Fault(503, retry_after=0.01, endpoint="chromeosdevices.batchChangeStatus"))
    options = ["--log-format", "json", "-v", "--config", str(tenant.config)]
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", *options, "lockdown"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tenant.root,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    retries = [line for line in lines if line["logger"] == "orchestrator.retry"]
    assert retries, done.stderr
    run = tenant.latest_report()[1]["run"]
    assert all(line["run"] == run and line["change"] and line["retry_wait"] >= 0 for line in retries)
