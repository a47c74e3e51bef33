"""Destructive actions whose outcome is unknown: list them with the command that settles them, and settle them.

A wipe that timed out may have run. It is never sent again on a guess (a database does not re-run a
transaction whose commit acknowledgement was lost); the console settles it when it can tell (backends'
`settle`), or a person does with `orchestrator journal resolve ACTION --done|--resend --reason TEXT`.
"""

from __future__ import annotations

from orchestrator.core.errors import OrchestratorError
from orchestrator.core.resources import Change, ResourceId
from orchestrator.engine.journal import Journal, default_actor


def resolve_command(resource: str) -> str:
    return f'orchestrator journal resolve "{resource}" --done|--resend --reason TEXT'


def unsettled_lines(journal: Journal) -> list[str]:
    """One line per unsettled destructive action: what, since which run, and how to settle it."""
    return [
        f"{row.resource} (run {row.run_id}, {row.state}): check the device, then `{resolve_command(row.resource)}`"
        for row in journal.unsettled()
    ]


def resolve_unknown(journal: Journal, action: str, outcome: str, reason: str, actor: str | None = None) -> str:
    """Record a person's answer for the unsettled destructive action on resource `action`; returns the run id."""
    if not reason.strip():
        raise OrchestratorError("--reason must say what was checked")
    rows = journal.unsettled([action])
    if not rows:
        known = [row.resource for row in journal.unsettled()]
        hint = f" (unsettled now: {', '.join(known[:10])})" if known else " (nothing is unsettled)"
        raise OrchestratorError(f"{action}: no destructive action with an unknown outcome{hint}")
    last = journal.last_request(action)
    if last is None:  # unsettled() found a row, so this cannot happen short of a concurrent delete
        raise OrchestratorError(f"{action}: its journal rows disappeared")
    request = last["request"] or {}
    change = Change(
        id=ResourceId.parse(action),
        op=last["op"],
        before=request.get("before"),
        after=request.get("after"),
        sources=tuple(last["sources"] or ()),
        policy=last["policy"],
        window=last["window"],
        destructive=bool(last["destructive"]),
    )
    by = actor or default_actor()
    return journal.settle(change, outcome, detail=f"resolved by {by}: {reason.strip()}", actor=by)
