"""Console readings normalised the same way on the fast path as on the general one.

`inventory sync` reads 100,000 timestamps and MAC addresses a night; the common forms take a shortcut
(sync.py), which must give exactly what the general conversion gives, and refuse what it refuses.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator.inventory.sync import _mac, _when


def general(text: str) -> str:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return ""
    return "" if moment.tzinfo is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-11-23T07:12:44.123Z",
        "2026-11-23T07:12:44Z",
        "2026-11-23T07:12:44.1234567Z",
        " 2026-11-23T07:12:44Z ",
        "2026-11-23T07:12:44+01:00",
        "2026-11-23T23:59:59.999-08:00",
        "2026-11-23T07:12:44",  # no offset: unreadable
        "2026-W48-1T07:12:44Z",  # an ISO week date: Python reads it, and it is not the canonical form
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "",
        "yesterday",
    ],
)
def test_a_timestamp_reads_as_the_general_conversion_reads_it(stamp: str) -> None:
    assert _when(stamp) == general(stamp)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("023ca33472d7", "02:3c:a3:34:72:d7"),
        ("023CA33472D7", "02:3c:a3:34:72:d7"),
        ("02:3C:A3:34:72:D7", "02:3c:a3:34:72:d7"),
        ("02-3c-a3-34-72-d7", "02:3c:a3:34:72:d7"),
        ("023ca33472d", ""),
        ("023ca33472dz", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_a_console_mac_becomes_the_inventory_form_or_nothing(raw: str | None, expected: str) -> None:
    assert _mac(raw) == expected
