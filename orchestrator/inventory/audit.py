"""Counting a school's fleet: scanned serials or asset tags against the inventory.

A scan file is what a barcode scanner or a spreadsheet gives: one code per line, or a CSV whose header has a
serial or asset column. A byte-order mark, blank lines, surrounding whitespace and repeats are tolerated
(a repeat is counted, not an error). Codes match a serial exactly, else an asset tag exactly, else either one
ignoring case when that finds exactly one device.

Each code is `present` (a device of this school), `unexpected` (a device of another school: named) or
`unknown` (no such device). Each device of the school not scanned is `missing`, except those not expected on
site: devices in repair (at the depot), devices already lost or stolen, and retired ones (listed apart).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.core.errors import Diagnostic, PolicyError
from orchestrator.inventory.devices import Device, Inventory
from orchestrator.inventory.edits import HistoryEntry, set_fields

SERIAL_COLUMNS = ("serialnumber", "serial", "serial number", "serial_number", "sn")
ASSET_COLUMNS = ("annotatedassetid", "asset", "asset tag", "asset_tag", "assettag", "asset id", "tag")
NOT_EXPECTED = ("repair", "lost", "stolen", "retired")
"""Statuses of devices not expected on the shelf or in a classroom during a count."""
MARKABLE = ("active", "found", "loaner")
"""Missing devices in these statuses can be marked lost by the audit."""
MAX_CODE = 64


@dataclass(frozen=True)
class Scanned:
    code: str
    line: int
    times: int = 1


@dataclass
class AuditResult:
    school: str
    file: str
    present: list[tuple[Scanned, Device]] = field(default_factory=list)
    unexpected: list[tuple[Scanned, Device]] = field(default_factory=list)
    unknown: list[Scanned] = field(default_factory=list)
    missing: list[Device] = field(default_factory=list)
    not_expected: list[Device] = field(default_factory=list)
    repeats: int = 0

    @property
    def markable(self) -> list[Device]:
        return [d for d in self.missing if d.inventoryStatus in MARKABLE]


def parse_scan(file: str, text: str) -> list[Scanned]:
    """Codes in file order, each once with how many times it was scanned (line = its first line)."""
    text = text.lstrip("\ufeff")
    lines = text.splitlines()
    first = next((line.strip() for line in lines if line.strip()), "")  # a scanner may add a tab after each code
    codes: list[tuple[str, int]] = []
    if "," in first or "\t" in first or first.lower() in (*SERIAL_COLUMNS, *ASSET_COLUMNS):
        codes = _csv_codes(file, text, "\t" if "\t" in first and "," not in first else ",")
    else:
        codes = [(line.strip(), n) for n, line in enumerate(lines, 1) if line.strip()]
    problems = [
        Diagnostic(file, n, "code", f"not a serial or asset tag: {code[:40]!r}", f"printable, at most {MAX_CODE}")
        for code, n in codes
        if len(code) > MAX_CODE or not code.isprintable()
    ]
    if problems:
        raise PolicyError(problems)
    seen: dict[str, Scanned] = {}
    for code, n in codes:
        before = seen.get(code)
        seen[code] = Scanned(code, before.line, before.times + 1) if before else Scanned(code, n)
    return list(seen.values())


def read_scan(path: Path) -> list[Scanned]:
    """`parse_scan` of a file; bytes that are not UTF-8 (a scanner set to another code page) are a diagnostic."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PolicyError(
            [Diagnostic(str(path), line, "", f"byte 0x{data[exc.start]:02x} is not UTF-8 text", "UTF-8 text")]
        ) from None
    return parse_scan(str(path), text)


def _csv_codes(file: str, text: str, delimiter: str) -> list[tuple[str, int]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = [(reader.line_num, row) for row in reader]
    rows = [(n, row) for n, row in rows if any(cell.strip() for cell in row)]
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0][1]]
    column = next((header.index(c) for c in (*SERIAL_COLUMNS, *ASSET_COLUMNS) if c in header), None)
    if column is None:
        raise PolicyError(
            [Diagnostic(file, rows[0][0], "header", "no serial or asset column", "a column named serial or asset")]
        )
    return [(row[column].strip(), n) for n, row in rows[1:] if len(row) > column and row[column].strip()]


def _index(inventory: Inventory) -> tuple[dict[str, Device], dict[str, list[Device]], dict[str, list[Device]]]:
    serials = inventory.by_serial()
    assets: dict[str, list[Device]] = {}
    folded: dict[str, list[Device]] = {}
    for device in inventory.devices:
        if device.annotatedAssetId:
            assets.setdefault(device.annotatedAssetId, []).append(device)
        for code in {device.serialNumber.casefold(), device.annotatedAssetId.casefold()} - {""}:
            folded.setdefault(code, []).append(device)
    return serials, assets, folded


def audit(inventory: Inventory, school: str, scanned: list[Scanned], file: str) -> AuditResult:
    """Classify every scanned code and every device of `school` that was not scanned."""
    if not any(d.school == school for d in inventory.devices):
        schools = ", ".join(sorted({d.school for d in inventory.devices if d.school})) or "none"
        raise PolicyError([Diagnostic(inventory.file, 0, "school", f"no device of school {school!r}", schools)])
    serials, assets, folded = _index(inventory)
    result = AuditResult(school=school, file=file)
    found: set[str] = set()
    for scan in scanned:
        result.repeats += scan.times - 1
        device = serials.get(scan.code)
        if device is None and len(assets.get(scan.code, [])) == 1:
            device = assets[scan.code][0]
        if device is None and len(folded.get(scan.code.casefold(), [])) == 1:
            device = folded[scan.code.casefold()][0]
        if device is None:
            result.unknown.append(scan)
        elif device.school == school:
            result.present.append((scan, device))
            found.add(device.serialNumber)
        else:
            result.unexpected.append((scan, device))
    for device in inventory.devices:
        if device.school != school or device.serialNumber in found:
            continue
        (result.not_expected if device.inventoryStatus in NOT_EXPECTED else result.missing).append(device)
    return result


def mark_lost(inventory: Inventory, result: AuditResult, *, actor: str) -> tuple[list[Device], list[HistoryEntry]]:
    """Every markable missing device set lost through `set_fields` (as `inventory set --status lost`)."""
    history: list[HistoryEntry] = []
    current = inventory
    source = f"audit:{result.file}"
    for device in result.markable:
        devices, entries = set_fields(
            current, device.serialNumber, {"inventoryStatus": "lost"}, source=source, actor=actor
        )
        current = Inventory(inventory.file, devices)
        history += entries
    return current.devices, history
