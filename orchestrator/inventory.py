"""The device inventory: which device is whose, where, and whether it is lost (inventory/devices.csv).

Columns are GAM-compatible (`gam print cros` names) plus the district's own. Serial numbers are matched
exactly; two rows with the same serial are an error.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal, get_args

from orchestrator.errors import Diagnostic, PolicyError
from orchestrator.policy.grammar import check_asset_tag, check_mac, check_name, check_ou_path, check_serial

InventoryStatus = Literal["active", "lost", "stolen", "found", "repair", "loaner", "retired"]
Platform = Literal["chromeos", "windows", "ios"]
INVENTORY_STATUSES: tuple[str, ...] = get_args(InventoryStatus)
PLATFORMS: tuple[str, ...] = get_args(Platform)

COLUMNS = (
    "deviceId",
    "serialNumber",
    "annotatedAssetId",
    "annotatedUser",
    "orgUnitPath",
    "status",
    "macAddress",
    "platform",
    "school",
    "imei",
    "simIccid",
    "mdn",
    "assignedStudent",
    "inventoryStatus",
)


@dataclass
class Device:
    serialNumber: str
    platform: str
    inventoryStatus: str = "active"
    deviceId: str = ""
    annotatedAssetId: str = ""
    annotatedUser: str = ""
    orgUnitPath: str = ""
    status: str = ""
    macAddress: str = ""
    school: str = ""
    imei: str = ""
    simIccid: str = ""
    mdn: str = ""
    assignedStudent: str = ""
    line: int = 0

    @property
    def serial(self) -> str:
        return self.serialNumber

    def row(self) -> dict[str, str]:
        data = asdict(self)
        return {c: data.get(c, "") for c in COLUMNS}


@dataclass
class Inventory:
    file: str
    devices: list[Device]

    def by_serial(self) -> dict[str, Device]:
        return {d.serialNumber: d for d in self.devices}

    def with_status(self, *statuses: str) -> list[Device]:
        return [d for d in self.devices if d.inventoryStatus in statuses]


_CHECKS = {
    "serialNumber": check_serial,
    "annotatedAssetId": check_asset_tag,
    "orgUnitPath": check_ou_path,
    "macAddress": check_mac,
    "school": check_name,
}


def parse_inventory(file: str, text: str) -> Inventory:
    """Parse CSV text; raise PolicyError naming file:line and column for every bad cell."""
    problems: list[Diagnostic] = []
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    for required in ("serialNumber", "platform"):
        if required not in header:
            problems.append(
                Diagnostic(file, 1, required, "required column is missing", "columns: " + ", ".join(COLUMNS))
            )
    known = {f.name for f in fields(Device)} - {"line"}
    for column in header:
        if column not in known:
            problems.append(Diagnostic(file, 1, column, "unknown column", "columns: " + ", ".join(COLUMNS)))
    if problems:
        raise PolicyError(problems)
    devices: list[Device] = []
    seen: dict[str, int] = {}
    for index, row in enumerate(reader):
        line = index + 2
        values = {k: (v or "").strip(" \t") for k, v in row.items() if k in known}
        ok = True
        for column, check in _CHECKS.items():
            if values.get(column):
                try:
                    values[column] = check(values[column])
                except ValueError as exc:
                    problems.append(Diagnostic(file, line, column, str(exc)))
                    ok = False
        if values.get("platform") not in PLATFORMS:
            problems.append(
                Diagnostic(
                    file,
                    line,
                    "platform",
                    f"unknown platform {values.get('platform')!r}",
                    "one of " + ", ".join(PLATFORMS),
                )
            )
            ok = False
        status = values.get("inventoryStatus") or "active"
        if status not in INVENTORY_STATUSES:
            problems.append(
                Diagnostic(
                    file,
                    line,
                    "inventoryStatus",
                    f"unknown status {status!r}",
                    "one of " + ", ".join(INVENTORY_STATUSES),
                )
            )
            ok = False
        values["inventoryStatus"] = status
        serial = values.get("serialNumber", "")
        if serial in seen:
            problems.append(
                Diagnostic(
                    file,
                    line,
                    "serialNumber",
                    f"serial {serial!r} already on line {seen[serial]}",
                    "one row per device",
                )
            )
            ok = False
        seen.setdefault(serial, line)
        if ok:
            devices.append(Device(line=line, **values))
    if problems:
        raise PolicyError(problems)
    return Inventory(file=file, devices=devices)


def load_inventory(path: str | Path, display: str | None = None) -> Inventory:
    path = Path(path)
    if not path.exists():
        return Inventory(file=display or str(path), devices=[])
    return parse_inventory(display or str(path), path.read_text(encoding="utf-8"))


def write_inventory_csv(devices: Iterable[Device]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for device in devices:
        writer.writerow(device.row())
    return out.getvalue()
