"""Chrome OS devices through the Directory API: bulk listing, status changes, commands and moves.

Serials are matched by exact equality on the full device list (pages of 300, BASIC projection, `fields`),
never with the partial `id:` query. Status changes go 50 ids per batchChangeStatus with per-device results
(transient ones retried in later rounds, never dropped); commands go one device per issueCommand and are
polled with commands.get; moves are read back because moveDevicesToOu reports nothing per device.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from orchestrator.backends.google.client import GoogleApi
from orchestrator.backends.google.results import Reporter
from orchestrator.core.backend import SentCallback
from orchestrator.core.errors import AuthError, BackendError, OutcomeUnknown, TransientError
from orchestrator.core.resources import Change, ChangeResult, Resource

log = logging.getLogger(__name__)

DEVICE_BATCH = 50
LIST_PAGE = 300
DEVICE_FIELDS = "nextPageToken,chromeosdevices(deviceId,serialNumber,status,orgUnitPath)"
STATUS_ACTIONS = {"DISABLED": "DISABLE", "ACTIVE": "REENABLE"}
# google.rpc.Code values worth retrying inside a batchChangeStatus reply.
TRANSIENT_CODES = frozenset({4, 8, 10, 13, 14})  # DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNAVAILABLE
COMMANDS = ("WIPE_USERS", "REMOTE_POWERWASH")
DEPROVISION = "DEPROVISION"
DEPROVISION_REASONS = ("RETIRING_DEVICE", "DIFFERENT_MODEL_REPLACEMENT", "UPGRADE_REPLACEMENT", "REPAIR_REPLACEMENT")
FAILED_COMMAND_STATES = ("EXPIRED", "CANCELLED")
# Command accepted by Google, not executed yet (admin.directory_v1 DirectoryChromeosdevicesCommand.state).
ACCEPTED_COMMAND_STATES = ("PENDING", "SENT_TO_CLIENT", "ACKED_BY_CLIENT")
# Per-device google.rpc.Code values of a batchChangeStatus DEPROVISION that do not prove it did not run:
# UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE (a deprovision cannot be undone: never re-sent blindly).
UNPROVEN_CODES = frozenset({2, 4, 13, 14})
CLOCK_SKEW = dt.timedelta(minutes=5)


class ChromeDevices:
    """Device reads and writes for the Google backend; keeps the serial → records cache of one run."""

    def __init__(
        self,
        api: GoogleApi,
        *,
        sleep: Callable[[float], None] = time.sleep,
        workers: int = 8,
        poll_interval: float = 2.0,
        max_polls: int = 10,
    ):
        self.api = api
        self.sleep = sleep
        self.workers = workers
        self.poll_interval = poll_interval
        self.max_polls = max_polls
        self._devices: dict[str, list[dict[str, Any]]] | None = None

    @property
    def _customer(self) -> str:
        return self.api.customer

    def forget(self) -> None:
        self._devices = None

    def devices_by_serial(self, refresh: bool = False, ou_path: str | None = None) -> dict[str, list[dict]]:
        """All Chrome devices (or those directly in `ou_path`) by exact serial, pages of 300, BASIC projection."""
        if self._devices is not None and not refresh and ou_path is None:
            return self._devices
        devices = self.api.directory.chromeosdevices()
        params: dict[str, Any] = {}
        if ou_path is not None:
            params["orgUnitPath"] = ou_path.lstrip("/") or "/"
        request = devices.list(
            customerId=self._customer, maxResults=LIST_PAGE, projection="BASIC", fields=DEVICE_FIELDS, **params
        )
        found: dict[str, list[dict]] = defaultdict(list)
        while request is not None:
            page = self.api.read("chromeosdevices.list", request)
            for device in page.get("chromeosdevices", []):
                found[device.get("serialNumber", "")].append(device)
            request = devices.list_next(request, page)
        if ou_path is None:
            self._devices = dict(found)
        return dict(found)

    def device_for(self, serial: str) -> dict[str, Any] | None:
        """The one usable console record whose serial equals `serial` exactly (None if absent or ambiguous)."""
        records = self.devices_by_serial().get(serial, [])
        usable = [r for r in records if r.get("status") != "DEPROVISIONED"] or records
        if len(usable) > 1:
            log.warning("serial matches %d device records; left alone", len(usable))
            return None
        return usable[0] if usable else None

    def observe(self, desired: list[Resource]) -> list[Resource]:
        self.devices_by_serial(refresh=True)
        out = []
        for resource in desired:
            record = self.device_for(resource.id.key)
            if record is not None:
                out.append(
                    Resource(
                        resource.id,
                        record.get("status", ""),
                        meta={"deviceId": record["deviceId"], "orgUnitPath": record.get("orgUnitPath")},
                    )
                )
        return out

    # ---- writing ------------------------------------------------------------------------------------
    def apply_status(self, changes: list[Change], on_sent: SentCallback, reporter: Reporter) -> None:
        self.devices_by_serial()
        by_action: dict[str, list[tuple[Change, str]]] = defaultdict(list)
        for change in changes:
            wanted = change.after if isinstance(change.after, str) else ""
            action = STATUS_ACTIONS.get(wanted) if change.op in ("create", "update", "action") else None
            record = self.device_for(change.id.key) if action else None
            if action is None:
                reporter.report(change, "failed", f"cannot set device status {change.after!r} (op {change.op})")
            elif record is None:
                reporter.report(change, "failed", "serial not found in the console (exact match) or ambiguous")
            else:
                by_action[action].append((change, record["deviceId"]))
        for action, items in sorted(by_action.items()):
            for start in range(0, len(items), DEVICE_BATCH):
                self._change_status(action, items[start : start + DEVICE_BATCH], on_sent, reporter)

    def _change_status(
        self, action: str, items: list[tuple[Change, str]], on_sent: SentCallback, reporter: Reporter
    ) -> None:
        """One chunk of ≤50: per-device transient errors are retried in later rounds, never dropped."""
        for change, _ in items:
            on_sent(change)
        pending = {device_id: change for change, device_id in items}
        last_error: dict[str, str] = {}
        chromeos = self.api.directory.customer().devices().chromeos()
        for attempt in range(self.api.retry.attempts):
            if not pending:
                return
            if attempt:
                self.sleep(min(self.api.retry.max_wait, self.api.retry.initial_wait * 2 ** (attempt - 1)))
            body = {
                "deviceIds": list(pending),
                "changeChromeOsDeviceStatusAction": f"CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_{action}",
            }
            try:
                reply = self.api.read(
                    "chromeosdevices.batchChangeStatus",
                    chromeos.batchChangeStatus(customerId=self._customer, body=body),
                )
            except (BackendError, TransientError) as exc:
                reporter.fail_rest(pending.values(), str(exc))
                return
            results = {r.get("deviceId"): r for r in reply.get("changeChromeOsDeviceStatusResults", [])}
            retry: dict[str, Change] = {}
            for device_id, change in pending.items():
                result = results.get(device_id)
                error = (result or {}).get("error")
                if result is None or (error and error.get("code") in TRANSIENT_CODES):
                    retry[device_id] = change
                    last_error[device_id] = error.get("message", "") if error else "no per-device result"
                elif error and error.get("code") == 9 and self._current_status(device_id) == change.after:
                    # Refused because it is already in the wanted state (e.g. a retried call had landed).
                    self._set_cached_status(change.id.key, change.after)
                    reporter.report(change, "succeeded", f"already {change.after}", deviceId=device_id)
                elif error:
                    reporter.report(
                        change,
                        "failed",
                        f"{action.lower()} refused: {error.get('message', '')} (code {error.get('code')})",
                        deviceId=device_id,
                    )
                else:
                    self._set_cached_status(change.id.key, change.after)
                    reporter.report(change, "succeeded", "", deviceId=device_id, action=action)
            pending = retry
        for device_id, change in pending.items():
            reporter.report(
                change,
                "failed",
                f"{action.lower()} still failing after "
                f"{self.api.retry.attempts} attempts: {last_error.get(device_id, '')}",
                deviceId=device_id,
            )

    def _current_status(self, device_id: str) -> str | None:
        """One device's status read back (only after a precondition refusal, so rare)."""
        request = self.api.directory.chromeosdevices().get(
            customerId=self._customer, deviceId=device_id, projection="BASIC", fields="status"
        )
        try:
            return self.api.read("chromeosdevices.get", request).get("status")
        except (BackendError, TransientError):
            return None

    def _set_cached_status(self, serial: str, status: str) -> None:
        for record in (self._devices or {}).get(serial, []):
            record["status"] = status

    def apply_reimage(self, changes: list[Change], on_sent: SentCallback, reporter: Reporter) -> None:
        """One issueCommand per device, then poll commands.get (bounded). A timeout is `unknown`, never re-sent.

        Changes whose command is DEPROVISION go through batchChangeStatus instead (see `apply_deprovision`).
        """
        self.devices_by_serial()
        deprovisions = [c for c in changes if _command_of(c) == DEPROVISION]
        if deprovisions:
            self.apply_deprovision(deprovisions, on_sent, reporter)
            changes = [c for c in changes if _command_of(c) != DEPROVISION]
        chromeos = self.api.directory.customer().devices().chromeos()
        issued: list[tuple[Change, str, str]] = []
        for change in changes:
            serial = change.id.key.split("|", 1)[0]
            command = _command_of(change)
            record = self.device_for(serial)
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
            except (BackendError, TransientError) as exc:
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
                except (BackendError, TransientError) as exc:
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
            serial = change.id.key.split("|", 1)[0]
            reason = (change.after or {}).get("deprovisionReason") if isinstance(change.after, dict) else None
            records = self.devices_by_serial().get(serial, [])
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
                except (BackendError, TransientError) as exc:
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
                        self._set_cached_status(change.id.key.split("|", 1)[0], "DEPROVISIONED")
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
            except (BackendError, TransientError):
                result = None
            if result is not None:
                out.append(result)
        return out

    def _settle_command(self, change: Change, response: dict[str, Any]) -> ChangeResult | None:
        command_id = str(response.get("commandId") or change.meta.get("commandId") or "")
        device_id = str(response.get("deviceId") or "")
        if not device_id:
            record = self.device_for(change.id.key.split("|", 1)[0])
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
            records = self.devices_by_serial(refresh=True).get(change.id.key.split("|", 1)[0], [])
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

    # ---- moves --------------------------------------------------------------------------------------
    def move_devices(self, serials: Sequence[str], ou_path: str) -> dict[str, str]:
        """Move devices (exact serials) to `ou_path`, ≤50 per call, then read the OU back to confirm.

        Returns serial → "moved" | "not_moved" | "not_found" (moveDevicesToOu reports nothing per device).
        """
        outcome: dict[str, str] = {}
        ids: list[tuple[str, str]] = []
        for serial in serials:
            record = self.device_for(serial)
            if record is None:
                outcome[serial] = "not_found"
            else:
                ids.append((serial, record["deviceId"]))
        devices = self.api.directory.chromeosdevices()
        for start in range(0, len(ids), DEVICE_BATCH):
            chunk = [device_id for _, device_id in ids[start : start + DEVICE_BATCH]]
            self.api.read(
                "chromeosdevices.moveDevicesToOu",
                devices.moveDevicesToOu(customerId=self._customer, orgUnitPath=ou_path, body={"deviceIds": chunk}),
            )
        there = self.devices_by_serial(ou_path=ou_path)
        for serial, device_id in ids:
            outcome[serial] = "moved" if any(r["deviceId"] == device_id for r in there.get(serial, [])) else "not_moved"
        self._devices = None
        return outcome


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
