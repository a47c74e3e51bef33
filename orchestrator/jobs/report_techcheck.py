"""The morning tech check as the principals' site shows it (`jobs.techcheck.tech_check`, made safe for non-IT staff).

The site has no --show-pii: only the columns named here are carried, so a student (name or email) and a
repair's reason (free text a technician typed) never reach a page, not even as a redaction token; every
string carried still goes through `redact_text`. A section the tech check could not compute carries its note
and no rows, and counts as unknown (None) in the summary.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from orchestrator.core.redact import redact_text
from orchestrator.jobs.techcheck import SECTIONS, TechCheck

COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "locked": (
        ("serial", "Serial"),
        ("platform", "Platform"),
        ("asset", "Asset tag"),
        ("status", "Status"),
        ("when", "Locked"),
        ("detail", "Locked on"),
    ),
    "released": (("serial", "Serial"), ("platform", "Platform"), ("asset", "Asset tag"), ("status", "Status now")),
    "repairs": (
        ("serial", "Serial"),
        ("asset", "Asset tag"),
        ("since", "In repair since"),
        ("due", "Due back"),
        ("school_days_overdue", "School days overdue"),
        ("problem", "Why overdue is unknown"),
    ),
    "loaners": (
        ("serial", "Serial"),
        ("asset", "Asset tag"),
        ("since", "Lent on"),
        ("due", "Due back"),
        ("school_days_overdue", "School days overdue"),
        ("detail", "Detail"),
    ),
    "not_seen": (
        ("serial", "Serial"),
        ("platform", "Platform"),
        ("asset", "Asset tag"),
        ("status", "Status"),
        ("last_seen", "Last seen"),
        ("days", "Days"),
    ),
}
"""Per section, the (field, header) pairs the site shows: never `student`, never a repair's `detail`."""
NUMERIC = {"school_days_overdue", "days"}


@dataclass
class Section:
    key: str
    title: str
    columns: tuple[tuple[str, str], ...]
    rows: list[dict[str, str]]
    unknown: str
    """Why this section was not computed ("" when it was)."""


@dataclass
class SchoolCheck:
    school: str
    sections: list[Section]
    counts: dict[str, int | None]
    """Devices per section (None: not computed), `overdue_*` for repairs and loaners, and `no_last_seen`."""


@dataclass
class SiteTechCheck:
    on: dt.date
    not_seen_days: int
    lockdown_file: str
    notes: list[str]
    schools: list[SchoolCheck]


def _cell(value: Any) -> str:
    return redact_text(str(value)) if value not in (None, "") else "-"


def _overdue(rows: list[dict[str, Any]]) -> int:
    return sum(1 for r in rows if r["school_days_overdue"] != 0)


def site_techcheck(check: TechCheck) -> SiteTechCheck:
    """The site's view of `check`: per school, each section's shown columns (or its note), and the counts."""
    schools = []
    for school in check.schools:
        sections, counts = [], {}
        for key, title in SECTIONS.items():
            rows = [] if key in check.unknown else check.of(key, school)
            shown = [{field: _cell(row.get(field)) for field, _ in COLUMNS[key]} for row in rows]
            if key == "not_seen":
                title = f"{title} for more than {check.not_seen_days} days"
            sections.append(Section(key, title, COLUMNS[key], shown, redact_text(check.unknown.get(key, ""))))
            counts[key] = None if key in check.unknown else len(rows)
            if key in ("repairs", "loaners"):
                counts[f"overdue_{key}"] = None if key in check.unknown else _overdue(rows)
        counts["no_last_seen"] = check.no_last_seen[school]
        schools.append(SchoolCheck(school, sections, counts))
    return SiteTechCheck(
        on=check.on,
        not_seen_days=check.not_seen_days,
        lockdown_file=check.lockdown_file,
        notes=[redact_text(n) for n in check.notes],
        schools=schools,
    )
