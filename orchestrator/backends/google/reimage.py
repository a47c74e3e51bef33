"""Reimage on Chrome OS devices: wipe and powerwash commands, deprovisions, and settling unknown outcomes.

Commands go one device per issueCommand (never re-sent after a lost answer) and are polled with commands.get
(bounded); a DEPROVISION goes through batchChangeStatus with a deprovisionReason, ≤50 exact-serial ids per call,
with per-device results. `settle` asks the console whether a change whose outcome is unknown ran. Devices are
looked up in the one device list of `ChromeDevices`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from orchestrator.backends.google.devices import DEVICE_BATCH, ChromeDevices
from orchestrator.backends.google.names import COMMANDS, DEPROVISION, DEPROVISION_REASONS
from orchestrator.backends.google.results import Reporter
from orchestrator.backends.google.spec import REIMAGE
from orchestrator.core.backend import SentCallback
from orchestrator.core.errors import AuthError, BackendError, OutcomeUnknown
from orchestrator.core.resources import Change, ChangeResult

FAILED_COMMAND_STATES = ("EXPIRED", "CANCELLED")
# Command accepted by Google, not executed yet (admin.directory_v1 DirectoryChromeosdevicesCommand.state).
ACCEPTED_COMMAND_STATES = ("PENDING", "SENT_TO_CLIENT", "ACKED_BY_CLIENT")
# Per-device google.rpc.Code values of a batchChangeStatus DEPROVISION that do not prove it did not run:
# UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE (a deprovision cannot be undone: never re-sent blindly).
UNPROVEN_CODES = frozenset({2, 4, 13, 14})
CLOCK_SKEW = dt.timedelta(minutes=5)


class ChromeReimages:
    """The reimage resource type of the Google backend (journal-observed: nothing to observe)."""

    def __init__(
        self,
        devices: ChromeDevices,
        *,
        sleep: Callable[[float], None] = time.sleep,
        workers: int = 8,
        poll_interval: float = 2.0,
        max_polls: int = 10,
    ):
        self.devices = devices
        self.api = devices.api
        self.sleep = sleep
        self.workers = workers
        self.poll_interval = poll_interval
        self.max_polls = max_polls

    @property
    def _customer(self) -> str:
        return self.api.customer

    def apply(self, changes: list[Change], on_sent: SentCallback, reporter: Reporter) -> None:
        """One issueCommand per device, then poll commands.get (bounded). A timeout is `unknown`, never re-sent.

        Changes whose command is DEPROVISION go through batchChangeStatus instead (see `apply_deprovision`).
        """
        self.devices.devices_by_serial()
        deprovisions = [c for c in changes if _command_of(c) == DEPROVISION]
        if deprovisions:
            self.apply_deprovision(deprovisions, on_sent, reporter)
            changes = [c for c in changes if _command_of(c) != DEPROVISION]
        chromeos = self.api.directory.customer().devices().chromeos()
        issued: list[tuple[Change, str, str]] = []
        for change in changes:
            serial = _serial(change)
            command = _command_of(change)
            record = self.devices.device_for(serial)
            if command not in COMMANDS:
                reporter.report(change, "failed", f"unknown command {command!r} (allowed: {', '.join(COMMANDS)})")
                continue
            if record is None:
                reporter.report(change, "failed", "serial not found in the console (exact match) or ambiguous")
                continue
            device_id = record["deviceId"]
            on_sent(change)
            request = chromeos.issueCommand(
                customerId=self._customer, deviceId=device_id, body={"commandType": command}
            )
            try:
                reply = self.api.call(
                    "chromeosdevices.issueCommand", request, self.api.directory_bucket, idempotent=False
                )
            except OutcomeUnknown as exc:
                reporter.report(change, "unknown", str(exc), deviceId=device_id, command=command)
                continue
            except BackendError as exc:
                reporter.report(change, "failed", str(exc), deviceId=device_id, command=command)
                continue
            issued.append((change, device_id, str(reply.get("commandId", ""))))
        self._poll_commands(issued, reporter)

    def _poll_commands(self, issued: list[tuple[Change, str, str]], reporter: Reporter) -> None:
        commands = self.api.directory.customer().devices().chromeos().commands()
        states: dict[str, str] = {}
        pending = issued
        for _ in range(self.max_polls):
            if not pending:
                return
            self.sleep(self.poll_interval)
            waiting = []

            def poll(item: tuple[Change, str, str]) -> dict[str, Any] | Exception:
                _, device_id, command_id = item
                request = commands.get(customerId=self._customer, deviceId=device_id, commandId=command_id)
                try:
                    return self.api.read("commands.get", request)
                except BackendError as exc:
                    return exc

            # Polls run in parallel; results are reported from this thread only.
            with ThreadPoolExecutor(max_workers=max(1, self.workers)) as pool:
                replies = list(pool.map(poll, pending))
            for (change, device_id, command_id), reply in zip(pending, replies, strict=True):
                if isinstance(reply, Exception):
                    states[command_id] = f"poll failed: {reply}"
                    waiting.append((change, device_id, command_id))
                    continue
                state = reply.get("state", "")
                states[command_id] = state
                result = (reply.get("commandResult") or {}).get("result", "")
                fields = {"deviceId": device_id, "commandId": command_id, "state": state}
                if state == "EXECUTED_BY_CLIENT" and result == "SUCCESS":
                    reporter.report(change, "succeeded", "", **fields, result=result)
                elif state == "EXECUTED_BY_CLIENT" or state in FAILED_COMMAND_STATES:
                    reporter.report(
                        change, "failed", f"command {state.lower()} ({result or 'no result'})", **fields, result=result
                    )
                else:
                    waiting.append((change, device_id, command_id))
            pending = waiting
        for change, device_id, command_id in pending:
            # Accepted by Google and queued for the device: re-sending would only queue a second wipe.
            reporter.report(
                change,
                "succeeded",
                f"issued; device has not executed it yet ({states.get(command_id, 'PENDING')})",
                deviceId=device_id,
                commandId=command_id,
                state=states.get(command_id, "PENDING"),
            )

    def apply_deprovision(self, changes: list[Change], on_sent: SentCallback, reporter: Reporter) -> None:
        """batchChangeStatus DEPROVISION with a deprovisionReason, ≤50 exact-serial device ids per call.

        The serial must match exactly one console record (never a partial match). A device the console
        already shows DEPROVISIONED is reported succeeded without a call. Per-device results are reported
        per device; a call whose answer was not seen is `unknown` and never re-sent.
        """
        by_reason: dict[str, list[tuple[Change, str]]] = defaultdict(list)
        for change in changes:
            serial = _serial(change)
            reason = (change.after or {}).get("deprovisionReason") if isinstance(change.after, dict) else None
            records = self.devices.devices_by_serial().get(serial, [])
            if reason not in DEPROVISION_REASONS:
                reporter.report(change, "failed", f"deprovision needs a deprovisionReason, not {reason!r}")
            elif len(records) != 1:
                found = "not found in the console" if not records else f"matches {len(records)} device records"
                reporter.report(change, "failed", f"serial {found} (exact match only); left alone")
            elif records[0].get("status") == "DEPROVISIONED":
                reporter.report(change, "succeeded", "already deprovisioned", deviceId=records[0]["deviceId"])
            else:
                by_reason[str(reason)].append((change, records[0]["deviceId"]))
        chromeos = self.api.directory.customer().devices().chromeos()
        for reason, items in sorted(by_reason.items()):
            for start in range(0, len(items), DEVICE_BATCH):
                chunk = items[start : start + DEVICE_BATCH]
                for change, _ in chunk:
                    on_sent(change)
                body = {
                    "deviceIds": [device_id for _, device_id in chunk],
                    "changeChromeOsDeviceStatusAction": "CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_DEPROVISION",
                    "deprovisionReason": reason,
                }
                request = chromeos.batchChangeStatus(customerId=self._customer, body=body)
                try:
                    reply = self.api.call(
                        "chromeosdevices.batchChangeStatus", request, self.api.directory_bucket, idempotent=False
                    )
                except OutcomeUnknown as exc:
                    for change, device_id in chunk:
                        reporter.report(change, "unknown", str(exc), deviceId=device_id)
                    continue
                except BackendError as exc:
                    reporter.fail_rest([c for c, _ in chunk], str(exc))
                    continue
                results = {r.get("deviceId"): r for r in reply.get("changeChromeOsDeviceStatusResults", [])}
                for change, device_id in chunk:
                    result = results.get(device_id)
                    error = (result or {}).get("error")
                    if result is None:
                        reporter.report(change, "unknown", "no per-device result; not re-sent", deviceId=device_id)
                    elif error and error.get("code") in UNPROVEN_CODES:
                        reporter.report(
                            change,
                            "unknown",
                            f"deprovision answered {error.get('message', '')} (code {error.get('code')}): "
                            "it may have run; not re-sent",
                            deviceId=device_id,
                        )
                    elif error:
                        reporter.report(
                            change,
                            "failed",
                            f"deprovision refused: {error.get('message', '')} (code {error.get('code')})",
                            deviceId=device_id,
                        )
                    else:
                        self.devices.set_cached_status(_serial(change), "DEPROVISIONED")
                        reporter.report(
                            change, "succeeded", "", deviceId=device_id, action=DEPROVISION, deprovisionReason=reason
                        )

    # ---- settling unknown outcomes (Backend.settle) -------------------------------------------------
    def settle(self, changes: Sequence[Change]) -> list[ChangeResult]:
        """Ask the console whether reimage/deprovision changes with an unknown outcome ran; omit what it cannot tell.

        Commands: `commands.get` for the command id the earlier result recorded (`meta["response"]["commandId"]`;
        the Directory API has no way to list a device's commands, so without an id nothing can be told).
        EXECUTED_BY_CLIENT + SUCCESS, or accepted and not yet executed (PENDING, SENT_TO_CLIENT, ACKED_BY_CLIENT),
        is succeeded; EXPIRED, CANCELLED or executed without SUCCESS is failed.
        Deprovision: `chromeosdevices.get`. DEPROVISIONED, or lastDeprovisionTimestamp at/after `meta["sent_at"]`,
        is succeeded; still ACTIVE/DISABLED with no deprovision and no re-enrollment since `sent_at` is failed
        (needs `sent_at`). Read errors leave the change unsettled; an AuthError propagates.
        """
        out: list[ChangeResult] = []
        for change in changes:
            if change.id.type != "reimage" or not change.destructive:
                continue
            response = change.meta.get("response") if isinstance(change.meta.get("response"), dict) else {}
            try:
                if _command_of(change) == DEPROVISION:
                    result = self._settle_deprovision(change, response)
                elif _command_of(change) in COMMANDS:
                    result = self._settle_command(change, response)
                else:
                    result = None
            except AuthError:
                raise
            except BackendError:
                result = None
            if result is not None:
                out.append(result)
        return out

    def _settle_command(self, change: Change, response: dict[str, Any]) -> ChangeResult | None:
        command_id = str(response.get("commandId") or change.meta.get("commandId") or "")
        device_id = str(response.get("deviceId") or "")
        if not device_id:
            record = self.devices.device_for(_serial(change))
            device_id = str(record["deviceId"]) if record else ""
        if not command_id or not device_id:
            return None
        commands = self.api.directory.customer().devices().chromeos().commands()
        request = commands.get(customerId=self._customer, deviceId=device_id, commandId=command_id)
        try:
            reply = self.api.read("commands.get", request)
        except BackendError as exc:
            if getattr(exc, "status", None) == 404:
                return None  # not this device's command, or purged: cannot tell
            raise
        if reply.get("type") not in (None, _command_of(change)):
            return None  # the id names another command: it proves nothing about this one
        state = str(reply.get("state", ""))
        result = str((reply.get("commandResult") or {}).get("result", ""))
        fields = {"settledBy": "commands.get", "deviceId": device_id, "commandId": command_id, "state": state}
        if result:
            fields["result"] = result
        if (state == "EXECUTED_BY_CLIENT" and result == "SUCCESS") or state in ACCEPTED_COMMAND_STATES:
            return ChangeResult(change.key, "succeeded", f"Google shows command {command_id} {state}", fields)
        if state == "EXECUTED_BY_CLIENT" or state in FAILED_COMMAND_STATES:
            detail = f"Google shows command {command_id} {state} ({result or 'no result'})"
            return ChangeResult(change.key, "failed", detail, fields)
        return None

    def _settle_deprovision(self, change: Change, response: dict[str, Any]) -> ChangeResult | None:
        device_id = str(response.get("deviceId") or "")
        if not device_id:
            records = self.devices.devices_by_serial(refresh=True).get(_serial(change), [])
            if len(records) != 1:
                return None
            device_id = str(records[0]["deviceId"])
        request = self.api.directory.chromeosdevices().get(
            customerId=self._customer,
            deviceId=device_id,
            projection="FULL",
            fields="deviceId,status,lastDeprovisionTimestamp,lastEnrollmentTime",
        )
        record = self.api.read("chromeosdevices.get", request)
        status = str(record.get("status", ""))
        since = _when(change.meta.get("sent_at"))
        deprovisioned_at = _when(record.get("lastDeprovisionTimestamp"))
        enrolled_at = _when(record.get("lastEnrollmentTime"))
        fields = {"settledBy": "chromeosdevices.get", "deviceId": device_id, "status": status}
        if status == "DEPROVISIONED":
            return ChangeResult(change.key, "succeeded", "Google shows the device DEPROVISIONED", fields)
        if since is None:
            return None
        if deprovisioned_at is not None and deprovisioned_at >= since - CLOCK_SKEW:
            fields["lastDeprovisionTimestamp"] = str(record.get("lastDeprovisionTimestamp"))
            return ChangeResult(change.key, "succeeded", "Google shows a deprovision since the request", fields)
        if enrolled_at is not None and enrolled_at >= since - CLOCK_SKEW:
            return None  # re-enrolled since: a deprovision could have run in between
        return ChangeResult(change.key, "failed", f"Google shows the device {status} and no deprovision since", fields)


def _when(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _command_of(change: Change) -> str | None:
    return (change.after or {}).get("command") if isinstance(change.after, dict) else None


def _serial(change: Change) -> str:
    return REIMAGE.split(change.id.key)["serial"]
