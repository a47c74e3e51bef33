"""The Backend protocol every console adapter implements.

observe() reads state in bulk; apply() performs changes and reports one ChangeResult per change through
callbacks, so the executor can journal each step as it happens (`on_sent` before a call leaves, then
`on_result`). A backend never imports the engine's executor.

Destructive results (wipe, powerwash, Autopilot reset, retire, deprovision): `unknown` whenever the request
may have reached the service and no definite answer came back (timeout, reset, any 5xx inner or outer, a lost
re-send); `failed` only for an answer proving it did not run (4xx, 404, 429 past the retries). Never re-sent
within a run. Items of a batch keep their own results.

Optional capability, `settle(changes) -> list[ChangeResult]` (GoogleBackend, IntuneBackend; look it up with
`getattr(backend, "settle", None)`): for destructive changes whose earlier outcome is unknown, ask the console
whether they ran. It never sends an action. Per change it returns `succeeded` only when the console proves it
ran (Intune: a wipe/retire pending/active/done in deviceActionResults, or managementState wipePending/
retirePending; Google: commands.get of the recorded command id accepted or executed with SUCCESS, or the device
DEPROVISIONED), `failed` only when the console proves it did not run (Intune: the action failed/notSupported
since the request; Google: the command EXPIRED/CANCELLED/executed without SUCCESS, or the device still active
with no deprovision and no re-enrollment since the request), and omits the change when it cannot tell (changes
of other types too). Inputs it reads from `change.meta`, both optional: `sent_at` (ISO 8601, when the earlier
request left: the journal's `sent` time; without it only evidence that needs no date counts) and `response`
(the journaled response of the earlier result: Google needs its `commandId`, the Directory API cannot list a
device's commands). A result's `response` says what settled it (`settledBy`, the console's state). An AuthError
propagates; other read failures leave the change unsettled.
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

    # Optional (not part of the runtime-checked protocol): see the module docstring.
    # def settle(self, changes: Sequence[Change]) -> list[ChangeResult]: ...

    def close(self) -> None:
        """Release connections, event loops and temporary files."""
