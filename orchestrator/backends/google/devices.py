"""Chrome OS devices through the Directory API: the device_status resource type over one bulk device list.

Serials are matched by exact equality on the full device list (pages of 300, BASIC projection, `fields`),
never with the partial `id:` query. Status changes go 50 ids per batchChangeStatus with per-device results
(transient ones re-sent in later rounds by the one retry policy, never dropped); moves are read back because
moveDevicesToOu reports nothing per device. Reimage commands and deprovisions are in `reimage.py`.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from orchestrator.backends.google.client import GoogleApi
from orchestrator.backends.google.names import ACTIVE, DISABLED
from orchestrator.backends.google.results import Reporter
from orchestrator.core.backend import SentCallback
from orchestrator.core.errors import BackendError, TransientError
from orchestrator.core.resources import Change, Resource

log = logging.getLogger(__name__)

DEVICE_BATCH = 50
LIST_PAGE = 300
DEVICE_FIELDS = (
    "nextPageToken,chromeosdevices(deviceId,serialNumber,status,orgUnitPath,"
    "annotatedAssetId,annotatedUser,annotatedLocation,notes)"  # annotations.py reads these from the same pages
)
STATUS_ACTIONS = {DISABLED: "DISABLE", ACTIVE: "REENABLE"}
# google.rpc.Code values worth retrying inside a batchChangeStatus reply.
TRANSIENT_CODES = frozenset({4, 8, 10, 13, 14})  # DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNAVAILABLE


class ChromeDevices:
    """Device reads and writes for the Google backend; keeps the serial → records cache of one run."""

    def __init__(self, api: GoogleApi, *, sleep: Callable[[float], None] = time.sleep, workers: int = 8):
        self.api = api
        self.sleep = sleep
        self.workers = workers
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

        def send_round() -> None:
            """One batchChangeStatus for what is pending; raises TransientError while some devices must be re-sent."""
            nonlocal pending
            body = {
                "deviceIds": list(pending),
                "changeChromeOsDeviceStatusAction": f"CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_{action}",
            }
            try:
                reply = self.api.read(
                    "chromeosdevices.batchChangeStatus",
                    chromeos.batchChangeStatus(customerId=self._customer, body=body),
                )
            except BackendError as exc:
                reporter.fail_rest(pending.values(), str(exc))
                pending = {}
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
                    self.set_cached_status(change.id.key, change.after)
                    reporter.report(change, "succeeded", f"already {change.after}", deviceId=device_id)
                elif error:
                    reporter.report(
                        change,
                        "failed",
                        f"{action.lower()} refused: {error.get('message', '')} (code {error.get('code')})",
                        deviceId=device_id,
                    )
                else:
                    self.set_cached_status(change.id.key, change.after)
                    reporter.report(change, "succeeded", "", deviceId=device_id, action=action)
            pending = retry
            if pending:
                raise TransientError(f"chromeosdevices.batchChangeStatus: {len(pending)} device(s) to re-send")

        self.api.retry.rounds(send_round, sleep=self.sleep)
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
        except BackendError:
            return None

    def set_cached_status(self, serial: str, status: str) -> None:
        for record in (self._devices or {}).get(serial, []):
            record["status"] = status

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
