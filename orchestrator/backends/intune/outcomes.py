"""What Graph's answers prove about device actions (pure: no I/O).

`batch_outcome`: one `$batch` item's answer as a change result (a wipe is `failed` only when the answer proves
it did not run). `lock_value`: a managed device's observed device_lock value. `settle_from_record`: whether a
wipe/retire whose outcome was unknown ran, from the device's deviceActionResults and managementState.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from orchestrator.backends.intune.graph import BatchItem, BatchResult
from orchestrator.backends.intune.names import RETIRE, WIPE
from orchestrator.core.resources import Change, ChangeResult

LOCK_STATES = ("pending", "active", "done")


def batch_outcome(
    change: Change, item: BatchItem, result: BatchResult | None, *, idempotent: bool = True
) -> ChangeResult:
    """One item's result. Not idempotent (wipe, retire): `failed` only for an answer proving it did not run
    (4xx: validation, 404, 403, or 429 throttled past our retries); any 5xx, 408, missing answer or lost
    re-send is `unknown` (Graph JSON batching: inner requests run independently and each carries its own
    status, learn.microsoft.com/graph/json-batching)."""
    action = item.label or item.url.rsplit("/", 1)[-1]
    if result is None or result.unknown:
        detail = result.error_text() if result is not None else "no response in the batch"
        return ChangeResult(change.key, "unknown", f"{action}: {detail}; outcome unknown, not re-sent")
    if result.ok:
        return ChangeResult(change.key, "succeeded", f"{action}: HTTP {result.status}", {"action": action})
    if result.status == 429:
        return ChangeResult(change.key, "failed", f"{action}: still throttled after retries")
    if not idempotent and (result.status >= 500 or result.status == 408):
        return ChangeResult(
            change.key, "unknown", f"{action}: {result.error_text()}; it may have run, so it is not re-sent"
        )
    return ChangeResult(change.key, "failed", f"{action}: {result.error_text()}")


# deviceActionResult.actionState (Graph v1.0 actionState enum: none, pending, canceled, active, done, failed,
# notSupported; learn.microsoft.com/graph/api/resources/intune-devices-deviceactionresult).
RAN_STATES = ("pending", "active", "done")
IN_FLIGHT_STATES = ("pending", "active")
NOT_RUN_STATES = ("failed", "notSupported")
CLOCK_SKEW = dt.timedelta(minutes=5)


def _when(value: Any) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def settle_from_record(change: Change, record: dict[str, Any]) -> ChangeResult | None:
    """What one managedDevice proves about an unknown wipe/retire: succeeded, failed, or None (cannot tell).

    `change.meta["sent_at"]` (ISO 8601, when the earlier request left) dates the evidence: only an action
    started at or after it (less 5 minutes of clock skew) speaks for this request. Succeeded: such an action is
    pending, active or done; or, with or without a date, one is in flight (pending/active) or managementState
    is wipePending/retirePending (a wipe is underway whoever sent it). Failed: such an action failed or is
    notSupported on the device. `canceled` (an admin cancelled it) and silence are left to a person.
    """
    action = RETIRE if (change.after or {}).get("action") == RETIRE else WIPE
    entries = [
        r for r in record.get("deviceActionResults") or [] if str(r.get("actionName", "")).lower() == action.lower()
    ]
    since = _when(change.meta.get("sent_at")) if change.meta.get("sent_at") else None
    dated = [
        r for r in entries if since is not None and (t := _when(r.get("startDateTime"))) and t >= since - CLOCK_SKEW
    ]

    def found(entry: dict[str, Any], how: str) -> ChangeResult:
        state = str(entry.get("actionState"))
        response = {"settledBy": "deviceActionResults", "action": action, "actionState": state}
        response["startDateTime"] = str(entry.get("startDateTime") or "")
        return ChangeResult(change.key, "succeeded" if state in RAN_STATES else "failed", how, response)

    ran = [r for r in dated if r.get("actionState") in RAN_STATES]
    if ran:
        return found(ran[-1], f"Intune shows the {action} {ran[-1].get('actionState')} since the request")
    in_flight = [r for r in entries if r.get("actionState") in IN_FLIGHT_STATES]
    if in_flight:
        return found(in_flight[-1], f"Intune shows a {action} {in_flight[-1].get('actionState')} for the device")
    if record.get("managementState") == f"{action}Pending":
        return ChangeResult(
            change.key,
            "succeeded",
            f"Intune shows managementState {action}Pending",
            {"settledBy": "managementState", "action": action, "managementState": f"{action}Pending"},
        )
    refused = [r for r in dated if r.get("actionState") in NOT_RUN_STATES]
    if refused:
        return found(refused[-1], f"Intune shows the {action} {refused[-1].get('actionState')} on the device")
    return None


def lock_value(record: dict[str, Any], wanted_lost: bool) -> dict[str, bool]:
    """Observed device_lock value: lost mode counts always; a remote lock only for a device that should be lost."""
    lost_mode = record.get("lostModeState") == "enabled"
    if not wanted_lost:
        return {"lost": lost_mode}
    locked = any(
        r.get("actionName") == "remoteLock" and r.get("actionState") in LOCK_STATES
        for r in record.get("deviceActionResults") or []
    )
    return {"lost": lost_mode or locked}
