"""The device_annotations resource type: the inventory's asset tag, user, location and notes on Chrome devices.

device_annotations (serial,) → {Google field: value} of the fields an InventoryWriteBack policy manages
(annotatedAssetId, annotatedUser, annotatedLocation, notes; "" = cleared). Observed from the one bulk device
listing the plan reads anyway (BASIC projection carries these fields), never one GET per device. Applied with
`chromeosdevices.patch` by the console's deviceId for the exact serial: PATCH, not `update` (PUT), because
update replaces every writable field and would clear the ones no policy manages (directory_v1 discovery:
`patch` "supports patch semantics"; path `admin/directory/v1/customer/{customerId}/devices/chromeos/{deviceId}`,
both required; writable body fields annotatedUser, annotatedLocation, notes, annotatedAssetId, orgUnitPath).
The body holds only the managed fields. A PATCH of the same values is idempotent, so it is retried like a read;
the reply (fields mask: the managed fields) must carry the values sent, else the change is failed. One device
per call (the API has no batch update), a few in flight, under the Directory pacer.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from orchestrator.backends.google.client import GoogleApiError
from orchestrator.backends.google.devices import ChromeDevices
from orchestrator.backends.google.results import Reporter
from orchestrator.core.backend import SentCallback
from orchestrator.core.errors import BackendError
from orchestrator.core.resources import Change, Resource
from orchestrator.core.types import MATCHES

FIELDS = ("annotatedAssetId", "annotatedUser", "annotatedLocation", "notes")
REPLY_FIELDS = "deviceId," + ",".join(FIELDS)


def observe_devices(devices: ChromeDevices, desired: list[Resource]) -> list[Resource]:
    """device_status (a few lost devices by id, or the listing) and device_annotations (the listing: a record
    read by id carries no annotation fields), with at most one fresh listing between them."""
    status = [r for r in desired if r.id.type == "device_status"]
    annotations = [r for r in desired if r.id.type == "device_annotations"]
    out = devices.observe(status) if status else []
    if annotations:  # after a status read that listed: its listing; after one by id (or none): list now
        devices.devices_by_serial(refresh=not status, fleet=len(annotations))
    return out + observe_annotations(devices, annotations)


def observe_annotations(devices: ChromeDevices, desired: Sequence[Resource]) -> list[Resource]:
    """The console's values of the desired fields, from the cached device listing (read it first).

    A serial the console lacks is not observed, one with several live records is observed as None with how many
    match (`MATCHES`): the engine holds both changes (the type `needs_device`), so neither is ever sent.
    """
    out: list[Resource] = []
    for resource in desired:
        record = devices.device_for(resource.id.key)
        if record is None:
            count = devices.matches(resource.id.key)
            if count > 1:
                out.append(Resource(resource.id, None, meta={MATCHES: count}))
            continue
        if not isinstance(resource.value, dict):
            continue
        value = {name: str(record.get(name) or "") for name in resource.value if name in FIELDS}
        out.append(Resource(resource.id, value, meta={"deviceId": record["deviceId"]}))
    return out


class ChromeAnnotations:
    """Writes device_annotations changes (see the module docstring)."""

    def __init__(self, devices: ChromeDevices, *, workers: int = 8):
        self.devices = devices
        self.api = devices.api
        self.workers = workers

    def apply(self, changes: list[Change], on_sent: SentCallback, reporter: Reporter) -> None:
        """One PATCH per device; an error fails that device only (each is reported once, whatever happens)."""
        self.devices.devices_by_serial()
        ready: list[tuple[Change, str, dict[str, str]]] = []
        for change in changes:
            body = _body(change)
            record = self.devices.device_for(change.id.key) if body else None
            if not body:
                reporter.report(change, "failed", f"nothing to write for op {change.op} (fields: {', '.join(FIELDS)})")
            elif record is None:
                reporter.report(change, "failed", "serial not found in the console (exact match) or ambiguous")
            else:
                ready.append((change, record["deviceId"], body))
        window = max(1, self.workers) * 4  # journaled as sent shortly before they leave, not all at once
        with ThreadPoolExecutor(max_workers=max(1, self.workers)) as pool:
            for start in range(0, len(ready), window):
                running: list[tuple[Change, str, dict[str, str], Future[Any]]] = []
                for change, device_id, body in ready[start : start + window]:
                    on_sent(change)
                    running.append((change, device_id, body, pool.submit(self._patch, device_id, body)))
                for change, device_id, body, future in running:
                    self._report(reporter, change, device_id, body, future)

    def _report(
        self, reporter: Reporter, change: Change, device_id: str, body: dict[str, str], future: Future[Any]
    ) -> None:
        try:
            reply = future.result()
        except GoogleApiError as exc:  # the server's message is left out: it may quote the value sent
            reporter.report(change, "failed", f"patch refused: HTTP {exc.status} {exc.reason}", deviceId=device_id)
            return
        except BackendError as exc:  # still throttled or failing after the retries, or credentials refused
            reporter.report(change, "failed", str(exc), deviceId=device_id)
            return
        kept = sorted(name for name, value in body.items() if str(reply.get(name) or "") != value)
        if kept:
            reporter.report(
                change, "failed", f"the console kept other values for {', '.join(kept)}", deviceId=device_id
            )
            return
        self._remember(change.id.key, body)
        reporter.report(
            change, "succeeded", "", deviceId=device_id, endpoint="chromeosdevices.patch", fields=sorted(body)
        )

    def _patch(self, device_id: str, body: dict[str, str]) -> dict[str, Any]:
        request = self.api.directory.chromeosdevices().patch(
            customerId=self.api.customer, deviceId=device_id, body=body, fields=REPLY_FIELDS
        )
        return self.api.read("chromeosdevices.patch", request) or {}

    def _remember(self, serial: str, body: dict[str, str]) -> None:
        """Keep the run's cached listing in step with what the console now holds."""
        record = self.devices.device_for(serial)
        if record is not None:
            record.update(body)


def _body(change: Change) -> dict[str, str]:
    """The PATCH body: the managed fields of the change's value, strings only."""
    if change.op not in ("create", "update") or not isinstance(change.after, dict):
        return {}
    return {name: str(value) for name, value in change.after.items() if name in FIELDS}
