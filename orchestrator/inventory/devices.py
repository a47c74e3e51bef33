"""The device inventory: which device is whose, where, and whether it is lost (inventory/devices.csv).

Columns are GAM-compatible (`gam print cros` names) plus the district's own. Serial numbers are matched
exactly; two rows with the same serial are an error. Malformed files (huge fields, NUL bytes, bad
encodings, broken quoting) are `file:line: column: message` diagnostics, never a traceback.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from operator import itemgetter
from pathlib import Path
from typing import Literal, get_args

from orchestrator.core.errors import Diagnostic, PolicyError
from orchestrator.policy.grammar import check_asset_tag, check_mac, check_name, check_ou_path, check_serial
from orchestrator.policy.yamlnodes import field_path, tidy

InventoryStatus = Literal["active", "lost", "stolen", "found", "repair", "loaner", "retired"]
Platform = Literal["chromeos", "windows", "ios"]
INVENTORY_STATUSES: tuple[str, ...] = get_args(InventoryStatus)
PLATFORMS: tuple[str, ...] = get_args(Platform)
MAX_INVENTORY_BYTES = 64_000_000  # ~300,000 devices; a bigger file is a mistake, not an inventory

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
    "annotatedLocation",
    "notes",
    "lastSync",
    "autoUpdateExpiration",
    "repairSince",
    "repairReason",
    "loanFor",
    "loanedOn",
    "loanDue",
)
"""Columns after inventoryStatus: `annotatedLocation` and `notes` are desired state written back to Google;
`lastSync` and `autoUpdateExpiration` are read from the consoles by `inventory sync`; `repairSince` and
`repairReason` describe a device in repair; a loaner checked out records the device it stands in for
(`loanFor`), when (`loanedOn`) and when it is due back (`loanDue`), and its borrower in `assignedStudent`."""


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
    annotatedLocation: str = ""
    notes: str = ""
    lastSync: str = ""
    autoUpdateExpiration: str = ""
    repairSince: str = ""
    repairReason: str = ""
    loanFor: str = ""
    loanedOn: str = ""
    loanDue: str = ""
    line: int = 0

    @property
    def serial(self) -> str:
        return self.serialNumber

    def row(self) -> dict[str, str]:
        return {c: getattr(self, c) for c in COLUMNS}  # every field is a str: no deep copy (asdict) per row

    def updated(self, changes: Mapping[str, str]) -> Device:
        """A copy with `changes` (field → value), what dataclasses.replace gives at a sixth of its cost per row (a
        sync refreshes every row's lastSync): the fields are copied as they are, which is all __init__ would do
        (a Device has no __post_init__ and nothing derived)."""
        unknown = set(changes) - _FIELD_NAMES
        if unknown:
            raise TypeError(f"Device has no field {sorted(unknown)[0]!r}")
        copy = object.__new__(Device)
        copy.__dict__.update(self.__dict__)
        copy.__dict__.update(changes)
        return copy


@dataclass
class Inventory:
    file: str
    devices: list[Device]

    def by_serial(self) -> dict[str, Device]:
        return {d.serialNumber: d for d in self.devices}

    def with_status(self, *statuses: str) -> list[Device]:
        return [d for d in self.devices if d.inventoryStatus in statuses]

    def school_sizes(self) -> Counter[str]:
        """Devices per school (the base of a percentage budget)."""
        return Counter(d.school for d in self.devices if d.school)


def _check_date(value: str) -> str:
    """An ISO date (YYYY-MM-DD), as spreadsheets and the Directory API's autoUpdateExpiration are normalised to."""
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError(f"not a date {value!r} (YYYY-MM-DD)") from None


_CHECKS = {
    "serialNumber": check_serial,
    "annotatedAssetId": check_asset_tag,
    "orgUnitPath": check_ou_path,
    "macAddress": check_mac,
    "school": check_name,
    "loanFor": check_serial,
    "repairSince": _check_date,
    "loanedOn": _check_date,
    "loanDue": _check_date,
    "autoUpdateExpiration": _check_date,
}


def parse_inventory(file: str, text: str) -> Inventory:
    """Parse CSV text; raise PolicyError naming file:line and column for every bad cell."""
    problems: list[Diagnostic] = []
    records = _records(file, text, problems)
    _, header = next(records, (1, []))
    devices = [] if problems else _rows(file, records, header, problems)
    if problems:
        raise PolicyError([tidy(p) for p in problems])
    return Inventory(file=file, devices=devices)


def _records(file: str, text: str, problems: list[Diagnostic]) -> Iterator[tuple[int, list[str]]]:
    """(the line a row starts on, its cells) for every row, blank lines included as empty rows.

    Text with no quote, NUL or carriage return (but in a CRLF line end), and no line longer than
    csv.field_size_limit(), has one row per line and one cell per comma: splitting it gives exactly what
    csv.reader gives, in under half the time (a third of a 120,000-row load). Anything else goes through
    csv.reader, which a malformed row stops.
    """
    if "\r" in text and text.count("\r") == text.count("\r\n"):  # a spreadsheet's CRLF: the same rows
        text = text.replace("\r\n", "\n")
    if not any(c in text for c in '"\r\x00'):
        lines = text.split("\n")
        if max(map(len, lines)) <= csv.field_size_limit():
            for number, line in enumerate(lines, start=1):
                yield number, line.split(",") if line else []
            return
    reader = csv.reader(io.StringIO(text, newline=""))
    ended = 0  # the line the previous row ended on: a row starts on the next one (multi-line cells span lines)
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # a field over csv.field_size_limit() or broken quoting: cannot read on
            problems.append(_malformed(file, reader.line_num, exc))
            return
        line, ended = ended + 1, reader.line_num
        yield line, cells


_FIELD_NAMES = frozenset(f.name for f in fields(Device))
FIELDS = tuple(f.name for f in fields(Device) if f.name != "line")
"""Device's fields in the order of its constructor: a row is built positionally, since keyword arguments
that are not the parameter names' own string objects are matched by comparing strings, 24 by 24 (five times
slower per row)."""


def _rows(
    file: str, records: Iterator[tuple[int, list[str]]], header: list[str], problems: list[Diagnostic]
) -> list[Device]:
    """Every valid device; a problem per bad cell goes to `problems` (line = where the row starts).

    A column's checks run once per distinct value for the columns whose values repeat (org units, schools,
    platforms, statuses), and their rows share one string per value.
    """
    for required in ("serialNumber", "platform"):
        if required not in header:
            problems.append(
                Diagnostic(file, 1, required, "required column is missing", "columns: " + ", ".join(COLUMNS))
            )
    for column in header:
        if column not in FIELDS:
            problems.append(
                Diagnostic(file, 1, field_path((column,)), "unknown column", "columns: " + ", ".join(COLUMNS))
            )
    if problems:
        return []
    width = len(header)
    index = {column: n for n, column in enumerate(header)}
    missing = width  # a column the file does not have reads as the empty cell appended at this index,
    index.setdefault("inventoryStatus", width + 1)  # except the status, which is "active" when it is empty
    pick = itemgetter(*(index.get(name, missing) for name in FIELDS))
    checks = [
        (index[column], column, _memo(check) if column in _REPEATING else check)
        for column, check in _CHECKS.items()
        if column in index
    ]
    platform, status, serial = index["platform"], index["inventoryStatus"], index["serialNumber"]
    devices: list[Device] = []
    seen: dict[str, int] = {}
    for line, cells in records:
        if not cells:
            continue
        if len(cells) != width:
            cells = [*cells, *[""] * width][:width]
        cells += ["", ""]  # what a column the file lacks reads, and the status when it has no such column
        if " " in (joined := "".join(cells)) or "\t" in joined:
            cells = [cell.strip(" \t") for cell in cells]
        ok = True
        for column, name, check in checks:
            if cells[column]:
                try:
                    cells[column] = check(cells[column])
                except ValueError as exc:
                    problems.append(Diagnostic(file, line, name, str(exc)))
                    ok = False
        cells[platform] = _PLATFORM.get(cells[platform], cells[platform])
        if cells[platform] not in _PLATFORM:
            problems.append(
                Diagnostic(
                    file,
                    line,
                    "platform",
                    f"unknown platform {cells[platform]!r}",
                    "one of " + ", ".join(PLATFORMS),
                )
            )
            ok = False
        cells[status] = _STATUS.get(cells[status] or "active", cells[status])
        if cells[status] not in _STATUS:
            problems.append(
                Diagnostic(
                    file,
                    line,
                    "inventoryStatus",
                    f"unknown status {cells[status]!r}",
                    "one of " + ", ".join(INVENTORY_STATUSES),
                )
            )
            ok = False
        if cells[serial] in seen:
            problems.append(
                Diagnostic(
                    file,
                    line,
                    "serialNumber",
                    f"serial {cells[serial]!r} already on line {seen[cells[serial]]}",
                    "one row per device",
                )
            )
            ok = False
        seen.setdefault(cells[serial], line)
        if ok:
            devices.append(Device(*pick(cells), line=line))
    return devices


_REPEATING = ("orgUnitPath", "school")
"""Columns with a few hundred distinct values in a fleet: checked once per value."""
_PLATFORM = {name: name for name in PLATFORMS}  # each row's platform and status become these very strings
_STATUS = {name: name for name in INVENTORY_STATUSES}


def _memo(check: Callable[[str], str]) -> Callable[[str], str]:
    """`check` answering repeated values from a table (the same value, or the same ValueError, as the first time)."""
    answers: dict[str, str | ValueError] = {}

    def checked(value: str) -> str:
        if value not in answers:
            try:
                answers[value] = check(value)
            except ValueError as exc:
                answers[value] = exc
        answer = answers[value]
        if isinstance(answer, ValueError):
            raise ValueError(str(answer))
        return answer

    return checked


def _malformed(file: str, line: int, exc: csv.Error) -> Diagnostic:
    return Diagnostic(file, line, "", f"malformed CSV: {exc}", f"RFC 4180 CSV, fields under {csv.field_size_limit()}")


def load_inventory(path: str | Path, display: str | None = None) -> Inventory:
    """Read and parse the inventory; a missing file is an empty inventory, an unreadable one a diagnostic."""
    path = Path(path)
    shown = display or str(path)
    if not path.exists():
        return Inventory(file=shown, devices=[])
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_INVENTORY_BYTES + 1)
    except OSError as exc:
        raise PolicyError([tidy(Diagnostic(shown, 1, "", f"cannot read file: {exc.strerror or exc}"))]) from None
    if len(data) > MAX_INVENTORY_BYTES:
        problem = Diagnostic(shown, 1, "", f"file is larger than {MAX_INVENTORY_BYTES} bytes", "a smaller inventory")
        raise PolicyError([problem])
    try:
        text = data.decode("utf-8-sig")  # a spreadsheet's byte-order mark is not part of the first column name
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PolicyError(
            [Diagnostic(shown, line, "", f"byte 0x{data[exc.start]:02x} is not UTF-8 text", "UTF-8 CSV")]
        ) from None
    return parse_inventory(shown, text)


def write_inventory_csv(devices: Iterable[Device]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for device in devices:
        writer.writerow(device.row())
    return out.getvalue()
