"""The toy console: an in-memory Backend (observe / apply / close) standing in for a real API client.

A real backend batches and paces its calls and maps its client's exceptions onto orchestrator.core.errors;
the toy keeps what a test needs to look at: the console's contents, the devices erased and every call made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from orchestrator.core.backend import ResultCallback, SentCallback
from orchestrator.core.resources import Change, ChangeResult, Resource
from toy_backend.spec import BLOCKLIST, ERASE


class ToyBackend:
    name = "toy"

    def __init__(self, seed: Mapping[str, Sequence[str]]):
        self.blocklists: dict[str, list[str]] = {ou: sorted(domains) for ou, domains in seed.items()}
        self.erased: list[str] = []
        self.calls: list[str] = []
        self.closed = False

    def observe(self, desired: Sequence[Resource]) -> list[Resource]:
        """Every blocklist in the console (the type is authoritative); erases are observed through the journal."""
        self.calls.append(f"observe {len(desired)}")
        return [Resource(BLOCKLIST.id(ou), domains) for ou, domains in sorted(self.blocklists.items())]

    def apply(self, changes: Sequence[Change], on_sent: SentCallback, on_result: ResultCallback) -> None:
        for change in changes:
            on_sent(change)
            self.calls.append(f"{change.op} {change.id}")
            if change.id.type == BLOCKLIST.name:
                ou = BLOCKLIST.split(change.id.key)["ou"]
                if change.op == "delete":
                    self.blocklists.pop(ou, None)
                else:
                    self.blocklists[ou] = list(change.after)
            elif change.id.type == ERASE.name:
                self.erased.append(ERASE.split(change.id.key)["serial"])
            else:  # fail closed: never report success for something this console does not know
                on_result(ChangeResult(change.key, "failed", f"toy: unknown type {change.id.type}"))
                continue
            on_result(ChangeResult(change.key, "succeeded"))

    def close(self) -> None:
        self.closed = True
