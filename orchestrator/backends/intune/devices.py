"""The device resource types of the Intune backend: device_lock and reimage, over one managed-device list.

device_lock (serial,) {"lost": bool}: observed from the device list (beta, for lostModeState): lost = lost
mode enabled or a remoteLock in deviceActionResults (pending, active or done); for a found device only lost
mode counts (a remote lock has no remote undo). Applied as enableLostMode (supervised corporate iOS/iPadOS,
policy lost_mode) or remoteLock, and disableLostMode for found devices, in $batch requests of ≤20. Windows
never gets a remote lock (not supported on Windows desktops): with intune.windows disable_device, lost = its
Entra ID device object is disabled (PATCH accountEnabled in the same $batch); with none, never lost and each
device is reported "not locked: not supported on Windows" (skipped: nothing is sent, and it is not a failure).
reimage (serial, request): journal-observed; `wipe` (or `retire`) in $batch, never re-sent after a timeout
(reported "unknown"); `settle` asks Intune whether an unknown one ran.

Reading lost and found devices, the cost model: n devices by serial cost ⌈n/20⌉ `$batch` round trips of
`managedDevices?$filter=serialNumber eq '…'`, the full list ⌈fleet/1000⌉ pages (the inventory gives the fleet's
size); the cheaper is read (both stay far inside Graph's 2,000 requests per 20 s per app). Serials match exactly,
client-side: an unsupported Graph $filter is silently ignored, so a filtered answer holding another serial or a
next page sends the read to the full list. A serial matching several managed devices is a problem, never a pick.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from orchestrator.backends.intune.graph import MAX_BATCH, BatchItem, GraphSession
from orchestrator.backends.intune.names import RETIRE, WINDOWS_DISABLE
from orchestrator.backends.intune.outcomes import batch_outcome, lock_value, settle_from_record
from orchestrator.backends.intune.spec import DEVICE_LOCK, REIMAGE
from orchestrator.backends.pacing import Pacer
from orchestrator.core.backend import ResultCallback, SentCallback
from orchestrator.core.errors import AuthError, BackendError, OutcomeUnknown
from orchestrator.core.resources import Change, ChangeResult, Resource, ResourceId

log = logging.getLogger(__name__)

DEVICE_FIELDS = (
    "id,serialNumber,operatingSystem,deviceType,isSupervised,managedDeviceOwnerType,lostModeState,"
    "deviceActionResults,managementState,azureADDeviceId"
)
NO_ENTRA_ID = "00000000-0000-0000-0000-000000000000"
NOT_ON_WINDOWS = "not locked: not supported on Windows (no remote lock there; LostDevicePolicy intune.windows: none)"
# Lost Mode (beta enableLostMode) is for supervised corporate iOS/iPadOS devices. iPads report operatingSystem
# "iPadOS", iPhones "iOS" (API-NOTES §6); the beta managedDevice's deviceType (iPhone, iPad, iPod, ...:
# microsoft-graph-docs-contrib api-reference/beta/resources/intune-devices-manageddevice.md) names the device
# kind whatever the OS string says. Either is enough; compared without case.
APPLE_MOBILE_OS = ("ios", "ipados")
APPLE_MOBILE_TYPES = ("iphone", "ipad", "ipod")
INVENTORY_FIELDS = "id,serialNumber,operatingSystem,wiFiMacAddress,lastSyncDateTime,userPrincipalName"
ENTRA_FIELDS = "id,deviceId,accountEnabled"


class NotSupported(BackendError):
    """The console cannot do this on this device (a remote lock on Windows): nothing is sent, nothing failed."""


def _serial(rid: ResourceId) -> str:
    """The serial of a device_lock or reimage key."""
    rtype = REIMAGE if rid.type == REIMAGE.name else DEVICE_LOCK
    return rtype.split(rid.key)["serial"]


def is_windows(record: dict[str, Any]) -> bool:
    return str(record.get("operatingSystem") or "").lower() == "windows"


def entra_device_path(record: dict[str, Any]) -> str:
    """The Entra ID device object of a managed device, addressed by its deviceId (the managed device's
    azureADDeviceId): `/devices(deviceId='{deviceId}')` (Graph "Update device": a device can be addressed by
    its id or its deviceId, learn.microsoft.com/graph/api/device-update)."""
    device_id = str(record.get("azureADDeviceId") or "")
    if not device_id or device_id == NO_ENTRA_ID:
        raise BackendError(f"serial {record.get('serialNumber')} has no Entra ID device object (azureADDeviceId)")
    return f"/devices(deviceId='{device_id}')"


def is_apple_mobile(record: dict[str, Any]) -> bool:
    """An iPhone, iPad or iPod: operatingSystem iOS or iPadOS, or deviceType iPhone/iPad/iPod."""
    return (
        str(record.get("operatingSystem") or "").lower() in APPLE_MOBILE_OS
        or str(record.get("deviceType") or "").lower() in APPLE_MOBILE_TYPES
    )


def supervised_apple_mobile(record: dict[str, Any]) -> bool:
    """Where Lost Mode works: a supervised, corporate-owned iOS/iPadOS device."""
    return (
        is_apple_mobile(record)
        and bool(record.get("isSupervised"))
        and (record.get("managedDeviceOwnerType") == "company")
    )


class Devices:
    """Managed devices by exact serial (cached until a device action changes them), locks, wipes, settling."""

    def __init__(self, session: GraphSession, writes: Pacer):
        self.session = session
        self.writes = writes
        self._index: dict[str, list[dict[str, Any]]] | None = None
        self._by_serial: dict[str, list[dict[str, Any]]] = {}  # serials read one by one (the cost model)

    async def index(self, refresh: bool = False) -> dict[str, list[dict[str, Any]]]:
        """Every managed device by exact serial: $top=1000 pages, $select, raw JSON, beta (lostModeState)."""
        if self._index is None or refresh:
            url = self.session.url(
                "beta", "deviceManagement/managedDevices", **{"$select": DEVICE_FIELDS, "$top": "1000"}
            )
            index: dict[str, list[dict[str, Any]]] = {}
            for record in await self.session.get_all("GET managedDevices", url):
                serial = record.get("serialNumber")
                if serial:
                    index.setdefault(serial, []).append(record)
            self._index = index
        return self._index

    def inventory_records(self) -> list[dict[str, Any]]:
        """Every managed device for `inventory sync`: raw v1.0 list, $top=1000, $select of the synced fields."""
        url = self.session.url(
            "v1.0", "deviceManagement/managedDevices", **{"$select": INVENTORY_FIELDS, "$top": "1000"}
        )
        return self.session.run(self.session.get_all("GET managedDevices", url))

    async def _read_serials(self, serials: list[str]) -> dict[str, list[dict[str, Any]]] | None:
        """Each serial's managed devices through `$filter=serialNumber eq '…'` in `$batch`es of ≤20 (beta, for
        lostModeState); None when an answer shows the filter was ignored or an item failed (then list)."""
        items = []
        for n, serial in enumerate(serials):
            odata = "serialNumber eq '" + serial.replace("'", "''") + "'"  # OData string literal: quotes doubled
            query = urlencode({"$filter": odata, "$select": DEVICE_FIELDS}, quote_via=quote, safe="$'")
            items.append(BatchItem(str(n), "GET", f"/deviceManagement/managedDevices?{query}"))
        results = await self.session.batch("beta", items)
        index: dict[str, list[dict[str, Any]]] = {}
        for item, serial in zip(items, serials, strict=True):
            result = results.get(item.id)
            body = result.body if result is not None and result.ok and isinstance(result.body, dict) else None
            records = (body or {}).get("value")
            if not isinstance(records, list) or "@odata.nextLink" in body:
                return None
            if any(r.get("serialNumber") != serial for r in records):
                return None  # the filter was ignored
            index[serial] = records
        return index

    async def lock_index(self, locks: list[Resource]) -> dict[str, list[dict[str, Any]]]:
        """The managed devices of `locks` by serial: read one by one or listed, whichever costs fewer requests."""
        serials = sorted({_serial(r.id) for r in locks})
        fleet = max(int(r.meta.get("fleet") or 0) for r in locks)
        if math.ceil(len(serials) / MAX_BATCH) < math.ceil(fleet / 1000):
            index = await self._read_serials(serials)
            if index is not None:
                self._index, self._by_serial = None, index
                return index
            log.info("intune: the serial filter was not honoured; reading the whole device list")
        return await self.index(refresh=True)

    async def observe_locks(self, locks: list[Resource], problems: list[str]) -> list[Resource]:
        index = await self.lock_index(locks)
        observed = []
        windows: list[tuple[Resource, dict[str, Any]]] = []
        for resource in locks:
            serial = _serial(resource.id)
            matches = index.get(serial, [])
            if len(matches) > 1:
                problems.append(
                    f"{', '.join(resource.sources)}: serial {serial} matches {len(matches)} "
                    "Intune managed devices; remove the stale enrollment"
                )
                continue
            if not matches:
                continue
            record = matches[0]
            if is_windows(record):
                windows.append((resource, record))
                continue
            observed.append(
                Resource(
                    id=resource.id,
                    value=lock_value(record, bool(resource.value.get("lost"))),
                    meta={"id": record["id"], "lostModeState": record.get("lostModeState")},
                )
            )
        observed += await self._observe_windows(windows, problems)
        return observed

    async def _observe_windows(
        self, pairs: list[tuple[Resource, dict[str, Any]]], problems: list[str]
    ) -> list[Resource]:
        """Windows locks: lost = the Entra ID device object is disabled (disable_device); with `none` never lost.

        A remote lock is never counted on Windows (not supported there). One `GET /devices(deviceId='…')`
        (`$select=id,deviceId,accountEnabled`) per device that policy disables, 20 to a `$batch`.
        """
        out: list[Resource] = []
        reads = [(r, rec) for r, rec in pairs if r.meta.get("windows") == WINDOWS_DISABLE]
        for resource, record in pairs:
            if resource.meta.get("windows") != WINDOWS_DISABLE:
                out.append(Resource(id=resource.id, value={"lost": False}, meta={"id": record["id"]}))
        paths = []
        for resource, record in reads:
            try:
                paths.append(entra_device_path(record))
            except BackendError as exc:
                problems.append(f"{', '.join(resource.sources)}: {exc}; cannot disable it")
                paths.append("")
        items = [
            BatchItem(str(n), "GET", f"{path}?{urlencode({'$select': ENTRA_FIELDS}, safe='$,')}")
            for n, path in enumerate(paths)
            if path
        ]
        answers = await self.session.batch("v1.0", items) if items else {}  # ≤20 reads per round trip
        for n, ((resource, record), path) in enumerate(zip(reads, paths, strict=True)):
            if not path:
                continue
            answer = answers.get(str(n))
            if answer is None or not answer.ok:
                why = answer.error_text() if answer is not None else "no answer"
                problems.append(f"{', '.join(resource.sources)}: cannot read its Entra ID device object: {why}")
                continue
            entra = answer.body if isinstance(answer.body, dict) else {}
            out.append(
                Resource(
                    id=resource.id,
                    value={"lost": entra.get("accountEnabled") is False},
                    meta={
                        "id": record["id"],
                        "entra_id": entra.get("id"),
                        "accountEnabled": entra.get("accountEnabled"),
                    },
                )
            )
        return out

    # ---- apply: device actions through $batch -------------------------------------------------------

    def apply_locks(self, changes: list[Change], on_sent: SentCallback, on_result: ResultCallback) -> None:
        self._run_batches(changes, self._lock_item, "beta", MAX_BATCH, True, on_sent, on_result)

    def apply_reimages(self, changes: list[Change], on_sent: SentCallback, on_result: ResultCallback) -> None:
        size = min([MAX_BATCH, *(int(c.meta.get("batch_size") or MAX_BATCH) for c in changes)])
        self._run_batches(changes, self._wipe_item, "v1.0", size, False, on_sent, on_result)

    def _device(self, serial: str) -> dict[str, Any]:
        if self._index is None and serial in self._by_serial:
            matches = self._by_serial[serial]
        else:
            matches = self.session.run(self.index()).get(serial, [])
        if not matches:
            raise BackendError(f"no Intune managed device has serial {serial}")
        if len(matches) > 1:
            raise BackendError(f"serial {serial} matches {len(matches)} Intune managed devices")
        return matches[0]

    def _lock_item(self, change: Change) -> BatchItem | str:
        """The batch request for a device_lock change, or a reason string when nothing needs sending."""
        record = self._device(_serial(change.id))
        base = f"/deviceManagement/managedDevices/{record['id']}"
        meta = change.meta
        lost = bool((change.after or {}).get("lost"))
        if is_windows(record):
            # Intune's remoteLock is not supported on Windows desktops (MicrosoftDocs/memdocs
            # intune/remote-actions/device-remote-lock.md): never sent. disable_device: PATCH the Entra ID device
            # object's accountEnabled (application permission Device.ReadWrite.All; app-only callers may set it
            # for Windows devices, learn.microsoft.com/graph/api/device-update).
            if meta.get("windows") != WINDOWS_DISABLE:
                if lost:
                    raise NotSupported(NOT_ON_WINDOWS)
                return "nothing to undo on Windows (intune.windows: none)"
            label = (
                "Entra ID device disabled (accountEnabled false; remote lock is not supported on Windows)"
                if lost
                else "Entra ID device re-enabled (accountEnabled true)"
            )
            return BatchItem(change.key, "PATCH", entra_device_path(record), {"accountEnabled": not lost}, label)
        if not lost:
            if record.get("lostModeState") == "enabled":
                return BatchItem(change.key, "POST", f"{base}/disableLostMode")
            return "nothing to undo: lost mode is off (a remote lock is released with the device passcode)"
        if meta.get("lost_mode", True) and supervised_apple_mobile(record):
            body = {
                "message": meta.get("message") or "This device is lost.",
                "phoneNumber": meta.get("phone") or "",
                "footer": meta.get("footer") or "",
            }
            return BatchItem(change.key, "POST", f"{base}/enableLostMode", body)
        if meta.get("remote_lock", True):
            return BatchItem(change.key, "POST", f"{base}/remoteLock")
        raise BackendError(
            "the policy asks for lost mode only and this is not a supervised corporate iOS/iPadOS device"
        )

    def _wipe_item(self, change: Change) -> BatchItem:
        """`wipe` (keepEnrollmentData for an Autopilot reset) or, for {"action": "retire"}, `retire` (no body)."""
        record = self._device(_serial(change.id))
        after = change.after or {}
        if after.get("action") == RETIRE:
            return BatchItem(change.key, "POST", f"/deviceManagement/managedDevices/{record['id']}/retire")
        body = {
            "keepEnrollmentData": bool(after.get("keepEnrollmentData")),
            "keepUserData": bool(after.get("keepUserData")),
            "persistEsimDataPlan": False,
        }
        return BatchItem(change.key, "POST", f"/deviceManagement/managedDevices/{record['id']}/wipe", body)

    def _run_batches(
        self,
        changes: list[Change],
        item_for: Callable[[Change], BatchItem | str],
        version: str,
        size: int,
        idempotent: bool,
        on_sent: SentCallback,
        on_result: ResultCallback,
    ) -> None:
        ready: list[tuple[Change, BatchItem]] = []
        for change in changes:
            try:
                item = item_for(change)
            except NotSupported as exc:
                on_result(ChangeResult(change.key, "skipped", str(exc)))
                continue
            except BackendError as exc:
                on_result(ChangeResult(change.key, "failed", str(exc)))
                continue
            if isinstance(item, str):
                on_result(ChangeResult(change.key, "succeeded", item))
            else:
                ready.append((change, item))
        for start in range(0, len(ready), size):
            chunk = ready[start : start + size]
            for change, _ in chunk:
                on_sent(change)
            try:
                results = self.session.run(
                    self.session.batch(
                        version, [item for _, item in chunk], idempotent=idempotent, pace=self.writes.acquire
                    )
                )
            except OutcomeUnknown as exc:
                for change, _ in chunk:
                    on_result(ChangeResult(change.key, "unknown", f"$batch: {exc}"))
                continue
            except BackendError as exc:
                for change, _ in chunk:
                    on_result(ChangeResult(change.key, "failed", f"$batch: {exc}"))
                continue
            for change, item in chunk:  # per item: one item's fate never overwrites another's answer
                on_result(batch_outcome(change, item, results.get(item.id), idempotent=idempotent))
        if ready:
            self._index, self._by_serial = None, {}  # device state changed: re-read before the next use

    # ---- settling unknown destructive outcomes (Backend.settle) ------------------------------------

    def settle(self, changes: Sequence[Change]) -> list[ChangeResult]:
        """Ask Intune whether wipes/retires whose outcome is unknown ran; omit what the console cannot tell.

        One fresh device list, then one single-device GET per change (beta, `$select` of managementState and
        deviceActionResults: the list often returns deviceActionResults empty, API-NOTES §6). Never sends an
        action. The evidence rules are in `outcomes.settle_from_record`; an AuthError propagates, any other
        read failure leaves the change unsettled.
        """
        wanted = [c for c in changes if c.id.backend == REIMAGE.backend and c.id.type == REIMAGE.name and c.destructive]
        out: list[ChangeResult] = []
        if not wanted:
            return out
        try:
            index = self.session.run(self.index(refresh=True))
        except AuthError:
            raise
        except BackendError as exc:
            log.warning(
                "intune: cannot settle %d unknown outcome(s): the device list could not be read: %s", len(wanted), exc
            )
            return out  # every change stays unknown: never guessed
        for change in wanted:
            matches = index.get(_serial(change.id), [])
            if len(matches) != 1:
                continue  # gone (a full wipe removes the record, so may an admin) or ambiguous: cannot tell
            url = self.session.url(
                "beta",
                f"deviceManagement/managedDevices/{matches[0]['id']}",
                **{"$select": "id,managementState,deviceActionResults"},
            )
            try:
                record = self.session.run(self.session.json("GET managedDevice", "GET", url))
            except AuthError:
                raise
            except BackendError:
                continue  # this device could not be read: it stays unknown
            result = settle_from_record(change, record or {})
            if result is not None:
                out.append(result)
        return out
