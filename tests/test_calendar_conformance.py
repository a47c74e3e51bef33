"""Calendar conformance (issue 19 item 10): published calendars of different styles, each exact.

Every `tests/data/calendars/conformance/<name>.yaml` holds a SchoolCalendar (without kind/name), a date range
and, per district or school, the expected class days (count and list, runs written `first..last`), and
optionally the staff-only, testing and unknown days. The expectations were worked out from the calendars as
plain date sets, not by running this code; a calendar is exact when every list matches day for day.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.policy.models import SchoolCalendar
from orchestrator.schooltime.calendar import SchoolDays

REPO = Path(__file__).resolve().parent.parent
FOLDER = REPO / "tests" / "data" / "calendars" / "conformance"
CASES = sorted(FOLDER.glob("*.yaml"))


def expand(runs: list[str]) -> set[dt.date]:
    """["2026-08-12..2026-08-14", "2026-09-08"] → the dates."""
    found: set[dt.date] = set()
    for run in runs:
        first, _, last = str(run).partition("..")
        day, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last or first)
        while day <= end:
            found.add(day)
            day += dt.timedelta(days=1)
    return found


def load_case(path: Path) -> tuple[SchoolDays, list[dt.date], dict[str, Any]]:
    spec = yaml.safe_load(path.read_text())
    model = SchoolCalendar.model_validate({"kind": "SchoolCalendar", "name": path.stem, **spec["calendar"]})
    first, last = (d if isinstance(d, dt.date) else dt.date.fromisoformat(d) for d in spec["range"])
    dates = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    return SchoolDays(model, REPO), dates, spec["expect"]


def test_the_conformance_folder_has_every_style() -> None:
    assert len(CASES) >= 5
    texts = "".join(p.read_text() for p in FOLDER.glob("*.ics"))
    for feature in ("RRULE", "EXDATE", "RECURRENCE-ID", "STATUS:CANCELLED", "DTEND;VALUE=DATE", "X-WR-TIMEZONE"):
        assert feature in texts, feature
    assert any("schools:" in p.read_text() for p in CASES)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_published_calendar_is_exact(path: Path) -> None:
    days, dates, expect = load_case(path)
    for who, spec in expect.items():
        school = None if who == "district" else who
        resolved = [days.day(d, school) for d in dates]
        got = {i.date for i in resolved if i.kind == "class_day"}
        want = expand(spec["class_days"])
        assert len(want) == spec["count"], f"{path.name} {who}: sidecar count disagrees with its list"
        assert sorted(got - want) == [] and sorted(want - got) == [], f"{path.name} {who}: extra / missing class days"
        for key, kind in (("staff_only", "staff_only"), ("unknown", "unknown")):
            if key in spec:
                assert {i.date for i in resolved if i.kind == kind} == expand(spec[key]), f"{path.name} {who} {key}"
        if "testing" in spec:
            assert {i.date for i in resolved if i.testing} == expand(spec["testing"]), f"{path.name} {who} testing"
