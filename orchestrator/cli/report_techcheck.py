"""`orchestrator report techcheck`: the morning tech check per school as Markdown, JSON or CSV (jobs.techcheck)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import click

from orchestrator.cli.app import console, handle_errors, pii_option, workspace
from orchestrator.jobs.techcheck import SECTIONS, TechCheck, tech_check

COLUMNS: dict[str, tuple[str, ...]] = {
    "locked": ("serial", "platform", "asset", "student", "status", "when", "detail"),
    "released": ("serial", "platform", "asset", "student", "status"),
    "repairs": ("serial", "asset", "student", "since", "due", "school_days_overdue", "detail"),
    "loaners": ("serial", "asset", "student", "since", "due", "school_days_overdue", "detail"),
    "not_seen": ("serial", "platform", "asset", "student", "status", "last_seen", "days"),
}
CSV_COLUMNS = (
    "section",
    "school",
    "serial",
    "platform",
    "asset",
    "student",
    "status",
    "since",
    "due",
    "school_days_overdue",
    "last_seen",
    "days",
    "when",
    "detail",
)


def _cell(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;") or "-"


def _late(rows: list[dict[str, Any]]) -> int:
    return sum(1 for r in rows if r["school_days_overdue"] != 0)


def markdown(check: TechCheck) -> str:
    """One summary table, then a heading per school with each section as a table (or "None."; a section not
    computed says why, and counts as "not known" in the summary)."""
    title = SECTIONS["not_seen"] + f" > {check.not_seen_days} days"
    lines = [
        f"# Morning tech check {check.on.isoformat()}",
        "",
        f"Lockdown report: `{check.lockdown_file or 'none'}`. Not seen: more than {check.not_seen_days} days "
        "without a console check-in (`lastSync`).",
        "",
    ]
    lines += [f"- note: {_cell(n)}" for n in check.notes] + ([""] if check.notes else [])
    lines += ["| school | locked, still lost | released | repairs out (overdue) |"]
    lines[-1] += " loaners out (overdue) | not seen | no last-seen time |"
    lines.append("|---|" + "---:|" * 6)
    for school in check.schools:
        repairs, loaners = check.of("repairs", school), check.of("loaners", school)
        cells = [
            len(check.of("locked", school)),
            len(check.of("released", school)),
            f"{len(repairs)} ({_late(repairs)})",
            f"{len(loaners)} ({_late(loaners)})",
            len(check.of("not_seen", school)),
            check.no_last_seen[school],
        ]
        counted = ("locked", "released", "repairs", "loaners")
        cells[:4] = ["not known" if s in check.unknown else c for s, c in zip(counted, cells[:4], strict=True)]
        lines.append(f"| {_cell(school)} | " + " | ".join(str(c) for c in cells) + " |")
    for school in check.schools:
        lines += ["", f"## {_cell(school)}"]
        for section, name in SECTIONS.items():
            rows = check.of(section, school)
            lines += ["", f"### {title if section == 'not_seen' else name}", ""]
            if section in check.unknown:
                lines.append(f"Not known: {_cell(check.unknown[section])}")
                continue
            if not rows:
                lines.append("None.")
                continue
            columns = COLUMNS[section]
            lines += ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
            lines += ["| " + " | ".join(_cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def csv_text(check: TechCheck) -> str:
    """One row per device and section (section, school, then the device's fields)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for school in check.schools:
        for section in SECTIONS:
            for row in check.of(section, school):
                writer.writerow({"section": section, **row})
    return out.getvalue()


@click.command("techcheck")
@click.option("--school", default=None, help="Only this school.")
@click.option("--format", "fmt", type=click.Choice(["md", "json", "csv"]), default="md", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write to this file (default: stdout).")
@click.option("--not-seen-days", type=click.IntRange(1, 365), default=None, help="Default: RepairPolicy.not_seen_days.")
@click.option("--date", "on", type=click.DateTime(["%Y-%m-%d"]), default=None, help="As of this date (default: today).")
@pii_option
@click.pass_context
@handle_errors
def techcheck(
    ctx: click.Context,
    school: str | None,
    fmt: str,
    out: str | None,
    not_seen_days: int | None,
    on: Any,
    show_pii: bool,
) -> None:
    """The morning tech check per school: locked and still lost, found and released, repairs and loaners out
    (school days overdue), devices not seen for more than N days. Students redacted unless --show-pii.

    Example: orchestrator report techcheck --school lincoln-elementary --format md --out techcheck.md
    """
    check = tech_check(
        workspace(ctx),
        school=school,
        on=on.date() if on else None,
        not_seen_days=not_seen_days,
        show_pii=show_pii,
    )
    if fmt == "json":
        text = json.dumps(check.to_json(), indent=2) + "\n"
    elif fmt == "csv":
        text = csv_text(check)
    else:
        text = markdown(check)
    if out:
        Path(out).write_text(text)
        console.print(f"Wrote {out}", markup=False)
    else:
        click.echo(text, nl=False)
