"""The Backend protocol every console adapter implements.

observe() reads state in bulk; apply() performs changes and reports one ChangeResult per change through
callbacks, so the executor can journal each step as it happens (`on_sent` before a call leaves, then
`on_result`). A backend never imports the engine's executor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from orchestrator.engine.resources import Change, ChangeResult, Resource

SentCallback = Callable[[Change], None]
ResultCallback = Callable[[ChangeResult], None]


@runtime_checkable
class Backend(Protocol):
    name: str

    def observe(self, desired: Sequence[Resource]) -> list[Resource]:
        """Observed resources for every desired key plus, for authoritative types, every managed key in scope.

        A desired key that does not exist in the console is simply absent from the result.
        """

    def apply(self, changes: Sequence[Change], on_sent: SentCallback, on_result: ResultCallback) -> None:
        """Perform `changes` (batched and paced as the API allows); report every one of them exactly once."""

    def close(self) -> None:
        """Release connections, event loops and temporary files."""
