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
