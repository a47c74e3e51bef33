"""Reporting change results exactly once per change, whatever happens mid-way."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from orchestrator.core.backend import ResultCallback
from orchestrator.core.resources import Change, ChangeResult, ResultState


class Reporter:
    """Reports each change exactly once; whatever is left unreported at the end is reported failed."""

    def __init__(self, changes: Sequence[Change], on_result: ResultCallback):
        self.pending = {c.key: c for c in changes}
        self.on_result = on_result

    def report(self, change: Change, outcome: ResultState, detail: str = "", **response: Any) -> None:
        if self.pending.pop(change.key, None) is None:
            return
        self.on_result(ChangeResult(change.key, outcome, detail, dict(response)))

    def fail_rest(self, changes: Iterable[Change], detail: str) -> None:
        for change in changes:
            self.report(change, "failed", detail)
