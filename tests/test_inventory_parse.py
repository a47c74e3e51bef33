"""The inventory parser's diagnostics point at the line a bad row starts on, whatever comes before it.

Blank lines and quoted cells that span lines shift every later row; a technician fixing line 9 in a
spreadsheet must find the bad cell on line 9. Checks that run once per distinct value (org units, schools)
still name every row that carries a bad value.
"""

from __future__ import annotations

import pytest

from orchestrator.core.errors import PolicyError
from orchestrator.inventory.devices import parse_inventory

HEADER = "serialNumber,platform,orgUnitPath,school,notes\n"


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as raised:
        parse_inventory("devices.csv", text)
    return [f"{d.line}:{d.path}" for d in raised.value.diagnostics]


def test_rows_after_blank_lines_and_multi_line_cells_are_numbered_where_they_start() -> None:
    text = (
        HEADER
        + "CB1,chromeos,/Students,lincoln,\n"  # line 2
        + "\n"  # 3
        + 'CB2,chromeos,/Students,lincoln,"two\nlines"\n'  # 4-5
        + "\n\n"  # 6-7
        + 'CB3,chromeos,/Students/,lincoln,"three\r\nlines\nhere"\n'  # 8-10: a bad org unit
        + "CB4,toaster,/Students,lincoln,\n"  # 11: a bad platform
    )
    assert problems(text) == ["8:orgUnitPath", "11:platform"]


def test_a_bad_value_repeated_on_many_rows_is_named_on_each() -> None:
    rows = "".join(f"CB{i},chromeos,/Students/../Staff,lincoln,\n" for i in range(3))
    assert problems(HEADER + rows) == ["2:orgUnitPath", "3:orgUnitPath", "4:orgUnitPath"]


def test_short_and_long_rows_read_like_a_spreadsheet_would() -> None:
    parsed = parse_inventory("devices.csv", HEADER + "CB1,chromeos\nCB2,windows,/Staff,lincoln,n,extra\n")
    assert [(d.serialNumber, d.orgUnitPath, d.school, d.line) for d in parsed.devices] == [
        ("CB1", "", "", 2),
        ("CB2", "/Staff", "lincoln", 3),
    ]


QUOTE_FREE = [
    HEADER + "CB1,chromeos,/Students,lincoln,\n\nCB2,windows,/Staff,lincoln,n,extra\nCB3,ios\n",
    HEADER + " CB1 ,chromeos,\t/Students ,lincoln,a note\n",  # cells are stripped of spaces and tabs
    "serialNumber,platform\nCB1,chromeos\nCB2,ios,/x\n",  # no status column: every device is active
    HEADER.replace("\n", "\r\n") + "CB1,chromeos,/Students,lincoln,\r\n\r\nCB2,toaster,,,\r\n",  # Excel's CRLF
    HEADER + "CB1,chromeos,/Students,lincoln,\nCB1,ios,/Students,lincoln,\nCB2,toaster,/Bad/,lincoln,\n",
    HEADER,
]


@pytest.mark.parametrize("text", QUOTE_FREE)
def test_quote_free_text_split_by_lines_reads_as_csv_reader_reads_it(text: str) -> None:
    """Text with no quote is split by lines and commas (the fast path); the same text with one quoted cell
    added at its end goes through csv.reader. Both must give the same devices, or the same problems."""
    quoted = text + '"CB9","chromeos"\n'

    def read(source: str) -> object:
        try:
            return [d for d in parse_inventory("devices.csv", source).devices if d.serialNumber != "CB9"]
        except PolicyError as exc:
            return [(d.line, d.path, d.message) for d in exc.diagnostics if d.line <= text.count("\n")]

    assert read(text) == read(quoted)


def test_a_missing_status_column_does_not_leak_into_other_missing_columns() -> None:
    parsed = parse_inventory("devices.csv", "serialNumber,platform\nCB1,chromeos\n")
    (device,) = parsed.devices
    assert (device.inventoryStatus, device.notes, device.school) == ("active", "", "")
