"""Logging setup: human lines by default, JSON lines for machines; secrets and PII are scrubbed.

Every line carries the run id, the district (tenant, when there are tenants) and the keys of the changes being
sent when it was logged, so a retry or a warning can be matched to its journal entry: `trace_journal` follows a
session's journal (a run starts, changes go pending → sent → done) and `log_context` sets them by hand.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from orchestrator.core.redact import redact_text

_SECRET = re.compile(
    r"(?i)(bearer\s+[A-Za-z0-9._~+/=-]+|(client_secret|access_token|refresh_token|password|"
    r"private_key)[\"']?\s*[:=]\s*[\"']?[^\s\"',}]+)"
)
# Process-wide, not context variables: backends send from worker threads, which would not see a context
# variable set here; one process runs one district's run at a time (tenants run as subprocesses).
_now: dict[str, Any] = {"run": None, "tenant": None, "changes": ()}
_EXTRAS = ("retry_wait", "attempt")


def scrub(text: str) -> str:
    return redact_text(_SECRET.sub(lambda m: m.group(0).split()[0][:6] + "***", text))


@contextmanager
def log_context(*, run: str | None = None, tenant: str | None = None, changes: tuple[str, ...] = ()) -> Iterator[None]:
    """Within the block, log lines carry this run id, tenant and change keys."""
    before = dict(_now)
    _now.update(run=run, tenant=tenant, changes=tuple(changes))
    try:
        yield
    finally:
        _now.update(before)


def context() -> dict[str, Any]:
    """run, tenant and change (one key) or changes (several in one batch) for the current line."""
    out: dict[str, Any] = {}
    if _now["run"]:
        out["run"] = _now["run"]
    if _now["tenant"]:
        out["tenant"] = _now["tenant"]
    keys = _now["changes"]
    if len(keys) == 1:
        out["change"] = keys[0]
    elif keys:
        out["changes"] = list(keys)
    return out


def trace_journal(journal: Any, tenant: str | None = None) -> None:
    """Follow `journal` (an engine Journal): its run id and the changes pending or sent go on every log line."""
    if tenant:
        _now["tenant"] = tenant
    start_run, record, finish_run = journal.start_run, journal.record, journal.finish_run

    def traced_start(*args: Any, **kwargs: Any) -> str:
        run_id = start_run(*args, **kwargs)
        _now.update(run=run_id, changes=())
        return run_id

    def traced_record(run_id: str, change: Any, state: str, *args: Any, **kwargs: Any) -> Any:
        key = change.key  # a digest: computed once, not once per change in flight (2,100 patches took 60 s)
        keys = tuple(k for k in _now["changes"] if k != key)
        _now["changes"] = (*keys, key) if state in ("pending", "sent") else keys
        return record(run_id, change, state, *args, **kwargs)

    def traced_finish(*args: Any, **kwargs: Any) -> Any:
        try:
            return finish_run(*args, **kwargs)
        finally:
            _now.update(run=None, changes=())

    journal.start_run, journal.record, journal.finish_run = traced_start, traced_record, traced_finish


class ScrubbingFormatter(logging.Formatter):
    def __init__(self, as_json: bool):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        message = scrub(record.getMessage())
        where = context()
        if self.as_json:
            line = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name}
            extras = {k: getattr(record, k) for k in _EXTRAS if hasattr(record, k)}
            return json.dumps({**line, **where, **extras, "message": message})
        if where.get("run"):
            message = f"[run {where['run']}{' ' + where['change'] if 'change' in where else ''}] {message}"
        record = logging.makeLogRecord({**record.__dict__, "msg": message, "args": ()})
        return super().format(record)


def setup_logging(fmt: str, level: int) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(ScrubbingFormatter(fmt == "json"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("googleapiclient.discovery_cache", "httpx", "azure", "urllib3"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
