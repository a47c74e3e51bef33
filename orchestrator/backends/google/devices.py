"""Chrome OS devices through the Directory API: the device_status resource type, read by deviceId or listed.

Reading lost and found devices, the cost model: the inventory carries each Chromebook's `deviceId` and the
size of the Chrome fleet. Reading n devices one `chromeosdevices.get` each costs n requests (sent in parallel,
paced by the Directory quota); one pass over the device list costs ⌈fleet/300⌉ pages. Requests are what the
shared 2,400/min quota counts and, both being read in parallel, what the wall time follows, so the devices
are read by id when n ≤ ⌈fleet/300⌉ (a quiet night: 10 lost in 100,000 is 10 requests instead of 334) and
listed otherwise. A device the inventory has no deviceId for, an id the console does not know, a record whose
serial is not the inventory's or that is deprovisioned sends the whole read to the listing: the listing is the
truth, a by-id read only a shortcut that must agree with it.

Serials are matched by exact equality (on the device list or on the record read by id), never with the
partial `id:` query. Status changes go 50 ids per batchChangeStatus with per-device results
(transient ones re-sent in later rounds by the one retry policy, never dropped); moves are read back because
moveDevicesToOu reports nothing per device. Reimage commands and deprovisions are in `reimage.py`.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from orchestrator.backends.google.client import GoogleApi
from orchestrator.backends.google.listing import LIST_PAGE, Subtree, list_fleet, list_subtrees
from orchestrator.backends.google.names import ACTIVE, DISABLED
from orchestrator.backends.google.results import Reporter
from orchestrator.core.backend import SentCallback
from orchestrator.core.errors import AuthError, BackendError, TransientError
from orchestrator.core.resources import Change, Resource

log = logging.getLogger(__name__)

DEVICE_BATCH = 50
DEVICE_FIELDS = (
    "nextPageToken,chromeosdevices(deviceId,serialNumber,status,orgUnitPath,"
    "annotatedAssetId,annotatedUser,annotatedLocation,notes)"  # annotations.py reads these from the same pages
)
RECORD_FIELDS = "deviceId,serialNumber,status,orgUnitPath"  # one device read by its id (lost/found)
STATUS_ACTIONS = {DISABLED: "DISABLE", ACTIVE: "REENABLE"}
# google.rpc.Code values worth retrying inside a batchChangeStatus reply.
TRANSIENT_CODES = frozenset({4, 8, 10, 13, 14})  # DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNAVAILABLE


class ChromeDevices:
    """Device reads and writes for the Google backend; keeps the serial → records cache of one run."""

    def __init__(
        self,
        api: GoogleApi,
        *,
        sleep: Callable[[float], None] = time.sleep,
        workers: int = 8,
        org_units: Callable[[], Collection[str]] | None = None,
    ):
        self.api = api
        self.sleep = sleep
        self.workers = workers
        self.org_units = org_units  # the OU paths, to list the fleet as concurrent subtrees (listing.py)
        self._devices: dict[str, list[dict[str, Any]]] | None = None
        self._by_id: dict[str, dict[str, Any]] = {}  # serial → the record read by its inventory deviceId

    @property
    def _customer(self) -> str:
        return self.api.customer

    def forget(self) -> None:
        self._devices = None
        self._by_id = {}

    def devices_by_serial(
        self, refresh: bool = False, ou_path: str | None = None, *, fleet: int | None = None
    ) -> dict[str, list[dict]]:
        """All Chrome devices (concurrent OU subtrees; `fleet`: the expected count, from the inventory) or those
        directly in `ou_path`, by exact serial."""
        if self._devices is not None and not refresh and ou_path is None:
            return self._devices
        if ou_path is None:
            records = list_fleet(
                self.api, self.org_units, fields=DEVICE_FIELDS, projection="BASIC", workers=self.workers, fleet=fleet
            ).devices
        else:
            records = list_subtrees(
                self.api, [Subtree(ou_path, False)], fields=DEVICE_FIELDS, projection="BASIC", workers=1
            )
        found: dict[str, list[dict]] = defaultdict(list)
        for device in records:
            found[device.get("serialNumber", "")].append(device)
        if ou_path is None:
            self._devices = dict(found)
        return dict(found)

    def device_for(self, serial: str) -> dict[str, Any] | None:
        """The one usable console record whose serial equals `serial` exactly (None if absent or ambiguous)."""
        if self._devices is None and serial in self._by_id:
            return self._by_id[serial]
        usable = self._usable(serial)
        if len(usable) > 1:
            log.warning("serial matches %d device records; left alone", len(usable))
            return None
        return usable[0] if usable else None

    def matches(self, serial: str) -> int:
        """How many usable records of the cached listing carry exactly `serial` (more than one: ambiguous)."""
        return len(self._usable(serial))

    def _usable(self, serial: str) -> list[dict[str, Any]]:
        """The live records with this exact serial; only deprovisioned ones when no live one has it."""
        records = self.devices_by_serial().get(serial, [])
        return [r for r in records if r.get("status") != "DEPROVISIONED"] or records

    def observe(self, desired: list[Resource]) -> list[Resource]:
        """device_status of each desired serial, by id or from one listing (the cost model above)."""
        if not (by_id_is_cheaper(desired) and self._read_by_id(desired)):
            # no fleet size known (0): one sequential listing, as cheap in requests as a listing can be
            fleet = max((int(r.meta.get("fleet") or 0) for r in desired), default=0)
            self.devices_by_serial(refresh=True, fleet=fleet)
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

    def _read_by_id(self, desired: list[Resource]) -> bool:
        """One `chromeosdevices.get` per device by its inventory deviceId, in parallel under the Directory pacer.

        True when every record was read and agrees with the inventory (same serial, not deprovisioned); then
        `device_for` answers from these records. False sends the caller to the listing.
        """
        by_serial = {r.id.key: str(r.meta["deviceId"]) for r in desired}
        chromeos = self.api.directory.chromeosdevices()

        def get(device_id: str) -> dict[str, Any] | None:
            request = chromeos.get(
                customerId=self._customer, deviceId=device_id, projection="BASIC", fields=RECORD_FIELDS
            )
            try:
                return self.api.read("chromeosdevices.get", request)
            except AuthError:
                raise
            except BackendError as exc:
                log.info("chromeosdevices.get by inventory deviceId failed (%s): listing instead", exc)
                return None

        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(by_serial)))) as pool:
            records = dict(zip(by_serial, pool.map(get, by_serial.values()), strict=True))
        agreed = {
            serial: record
            for serial, record in records.items()
            if record and record.get("serialNumber") == serial and record.get("status") != "DEPROVISIONED"
        }
        if len(agreed) < len(records):
            log.info("%d device(s) read by id disagree with the inventory: listing", len(records) - len(agreed))
            return False
        self._by_id = agreed
        self._devices = None
        return True

    # ---- writing ------------------------------------------------------------------------------------
    def apply_status(self, changes: list[Change], on_sent: SentCallback, reporter: Reporter) -> None:
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
        read_by_id = [self._by_id[serial]] if serial in self._by_id else []
        for record in [*(self._devices or {}).get(serial, []), *read_by_id]:
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
        self.forget()
        return outcome


def by_id_is_cheaper(desired: Sequence[Resource]) -> bool:
    """The cost model: n by-id reads against ⌈fleet/300⌉ list pages (the fleet size comes with the inventory).

    Only when every desired device has an inventory deviceId; with no fleet size known, list.
    """
    if not desired or not all(r.meta.get("deviceId") for r in desired):
        return False
    fleet = max(int(r.meta.get("fleet") or 0) for r in desired)
    return len(desired) <= math.ceil(fleet / LIST_PAGE)
