"""Logs never carry credentials or student emails."""

from __future__ import annotations

import json
import logging

from orchestrator.cli.logs import ScrubbingFormatter, scrub


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
