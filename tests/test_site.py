"""`orchestrator report --html`: the principals' static site, generated from a real maintenance run.

The sample district is copied to a temp repository; its Reimage policy runs against the Google and Graph
emulators inside the Thanksgiving break window (tests/test_maintenance_e2e.py's fleet), so the journal holds
real maintenance actions with the window interval they ran in. A lockdown JSON report with a student's email
sits in the reports folder; the inventory then has CB0000001 lost, last-seen times, and CB0000005 in repair
(with a reason) with a loaner, for the tech-check page.
`site_dir` is the generated site; tests/test_site_browser.py opens it in Chromium.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from test_maintenance_e2e import BREAK_MORNING, make_fleet

from orchestrator.cli import main
from orchestrator.cli.site import write_site
from orchestrator.engine.plan import Plan
from orchestrator.inventory.devices import load_inventory, write_inventory_csv
from orchestrator.jobs.lifecycle import repair_device
from orchestrator.jobs.lockdown_report import LockdownReport, write_report
from orchestrator.jobs.report import SiteData, gather_site
from orchestrator.jobs.report_calendar import OtherYear, school_years
from orchestrator.jobs.workspace import open_workspace
from orchestrator.policy.models import SchoolCalendar
from orchestrator.schooltime.calendar import SchoolDays

STUDENT = "ava.student@students.district.example"
REASON = "screen cracked when Maya dropped it"
NOW = dt.datetime(2026, 11, 26, 18, 0, tzinfo=dt.UTC)  # the day after the reimages ran


def lockdown_report(folder: Path) -> None:
    device = {
        "serial": "CB0000001",
        "school": "lincoln-elementary",
        "platform": "chromeos",
        "asset": "LIN-0001",
        "student": STUDENT,
        "status": "lost",
        "inventory": "inventory/devices.csv:2",
        "outcome": "locked",
        "actions": [{"backend": "google", "outcome": "locked", "detail": f"disabled for {STUDENT}", "said": "locked"}],
    }
    still = {k: v for k, v in device.items() if k not in ("actions", "outcome")} | {"locked_on": ["google"]}
    report = LockdownReport(
        devices=[device],
        totals=Counter(locked=1),
        per_school={"lincoln-elementary": Counter(locked=1)},
        still_locked=[still, {**still, "serial": "PF0000002", "platform": "windows", "locked_on": ["intune"]}],
    )
    write_report(report, folder, "2026-11-26T080000Z", "20261126T080000Z-abcdef")


def techcheck_inventory(config: Path) -> None:
    """Lost CB0000001 (still locked in the lockdown report), last-seen times (CB0000013 56 days ago, CB0000017
    never), then CB0000005 sent to repair on 2026-11-16 with a reason and a loaner (as `inventory repair`)."""
    path = config.parent / "inventory" / "devices.csv"
    devices = load_inventory(path).devices
    for device in devices:
        device.lastSync = "2026-11-25T15:00:00.000Z"
    by_serial = {d.serialNumber: d for d in devices}
    by_serial["CB0000001"].inventoryStatus = "lost"
    by_serial["CB0000013"].lastSync = "2026-10-01T07:00:00.000Z"
    by_serial["CB0000017"].lastSync = ""
    path.write_text(write_inventory_csv(devices))
    repair_device(open_workspace(str(config)), "CB0000005", reason=REASON, on=dt.date(2026, 11, 16), actor="test")


def build(tmp_path: Path) -> tuple[Path, SiteData, Path]:
    """The fleet's district with a real maintenance run in its journal; returns (repo, data, site folder)."""
    fleet_iter = make_fleet(tmp_path)
    fleet = next(fleet_iter)
    try:
        report = fleet.apply(fleet.plan(), BREAK_MORNING)
        assert set(report.states.values()) == {"succeeded"}
    finally:
        fleet_iter.close()
    repo = fleet.root
    (repo / "orchestrator.yaml").write_text(
        f"journal: {tmp_path / 'journal.db'}\nreports: reports\n"
        "google:\n  directory_endpoint: http://127.0.0.1:9/\n  policy_endpoint: http://127.0.0.1:9/\n"
        "intune:\n  graph_endpoint: http://127.0.0.1:9/\n"
    )
    lockdown_report(repo / "reports")
    techcheck_inventory(repo / "orchestrator.yaml")
    data = gather_site(open_workspace(str(repo / "orchestrator.yaml")), now=NOW)
    site = tmp_path / "site"
    write_site(data, site)
    return repo, data, site


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, SiteData, Path]]:
    yield build(tmp_path_factory.mktemp("prairie-valley"))


def school_days(repo: Path) -> SchoolDays:
    ws = open_workspace(str(repo / "orchestrator.yaml"))
    (model,) = [m for m, _ in ws.policies.of_kind(SchoolCalendar) if m.name == "district-2026-27"]
    return SchoolDays(model, repo)


class Tables(HTMLParser):
    """Counts tables and the header cells inside each; collects every src/href and inline url()."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[int] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append(0)
        if tag == "th" and self.tables:
            self.tables[-1] += 1
        self.links += [v or "" for k, v in attrs if k in ("src", "href")]


def test_every_page_is_written_self_contained_with_headers_and_no_student(built) -> None:
    _, _, site = built
    pages = sorted(p.name for p in site.iterdir())
    assert pages == ["calendar.html", "index.html", "lockdown.html", "plan.html", "techcheck.html"]
    for page in site.iterdir():
        html = page.read_text()
        parser = Tables()
        parser.feed(html)
        assert all(headers > 0 for headers in parser.tables), f"{page.name}: a table without <th>"
        external = [link for link in parser.links if not re.fullmatch(r"#[\w-]+|[a-z]+\.html", link)]
        assert not external, f"{page.name} links outside the site: {external}"
        assert "<script" not in html and "@import" not in html and "url(http" not in html
        assert STUDENT not in html and "ava.student" not in html
        assert "@district.example" not in html and "Maya" not in html, f"{page.name} shows a student or a reason"
        assert '<meta name="viewport"' in html and "<h1>" in html


def test_the_calendar_draws_the_school_year_of_the_report_day_and_lists_the_next(built) -> None:
    """The sample calendar holds 2026-27 and 2027-28 (180 class days each); on 2026-11-26 the page draws 2026-27."""
    repo, data, site = built
    days = school_days(repo)
    html = (site / "calendar.html").read_text()
    district = next(y for y in data.years if y.school == "whole district")
    expected = days.class_days_between(dt.date(2026, 8, 1), dt.date(2027, 7, 31))
    assert (district.label, district.first, district.last) == ("2026-27", dt.date(2026, 8, 1), dt.date(2027, 5, 31))
    assert district.class_days == expected == 180
    assert district.others == [OtherYear("2027-28", dt.date(2027, 8, 18), dt.date(2028, 5, 31), 180)]
    svg = html[html.index('id="cal-district-2026-27-whole-district"') :]
    svg = svg[: svg.index("</svg>")]
    assert svg.count('data-kind="class_day"') == expected and 'data-school-year="2026-27"' in svg
    assert "Other school years in this calendar: 2027-28 (2027-08-18 to 2028-05-31, 180 class days)." in html
    for year in data.years:
        assert year.label == "2026-27" and year.last == dt.date(2027, 5, 31), year.school
        assert year.class_days == days.class_days_between(year.first, year.last, year.school)


def test_the_calendar_shows_blackouts_windows_and_what_ran(built) -> None:
    _, data, site = built
    district = next(y for y in data.years if y.school == "whole district")
    by_date = {d.date: d for d in district.days}
    assert by_date[dt.date(2026, 11, 25)].kind == "no_students"
    assert any("break-days" in text for text in by_date[dt.date(2026, 11, 25)].opened)
    ran = by_date[dt.date(2026, 11, 25)].ran
    assert sorted(r.split(": ")[1] for r in ran) == [
        "CB0000004 succeeded",
        "CB0000104 succeeded",
        "PF0000008 succeeded",
        "PF0000108 succeeded",
    ]
    assert not by_date[dt.date(2026, 11, 27)].opened, "a window after `now` has not opened yet"
    assert by_date[dt.date(2027, 4, 20)].testing and by_date[dt.date(2027, 4, 20)].blackouts
    assert any("before Spring semester" in b for b in by_date[dt.date(2027, 1, 4)].blackouts)
    staff_only = [d.date.isoformat() for d in district.days if d.kind == "staff_only"]
    assert staff_only == ["2026-10-09", "2027-01-05"], "only 2026-27's staff days: 2027-28 is not drawn"
    assert dt.date(2027, 6, 1) not in by_date and dt.date(2027, 8, 18) not in by_date
    html = (site / "calendar.html").read_text()
    assert "What ran in the maintenance windows" in html and "PF0000108" in html
    jefferson = next(y for y in data.years if y.school == "jefferson-high")
    assert any(d.testing == "AP exams" for d in jefferson.days)


def test_status_lockdown_and_plan_pages(built) -> None:
    _, data, site = built
    assert {s.backend: s.state for s in data.status} == {"google": "unknown", "intune": "unknown"}
    lockdown = (site / "lockdown.html").read_text()
    assert "CB0000001" in lockdown and "PF0000002" in lockdown and "Still locked" in lockdown
    assert "Lost or stolen devices still locked (2)" in lockdown
    plan = (site / "plan.html").read_text()
    assert "maintenance" in plan and "reimage" in plan
    index = (site / "index.html").read_text()
    assert "School year 2026-27: 180 class days" in index and "2 still locked" in index
    assert "Also in the calendar: 2027-28 (180 class days)." in index


def test_the_index_counts_180_class_days_for_2026_27_on_2026_11_24(built, tmp_path: Path) -> None:
    """The count is the school year's, not the calendar's two years (360)."""
    repo, _, _ = built
    now = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
    write_site(gather_site(open_workspace(str(repo / "orchestrator.yaml")), now=now), tmp_path)
    index = (tmp_path / "index.html").read_text()
    assert "School year 2026-27: 180 class days;" in index and "360" not in index


@pytest.mark.parametrize(
    ("today", "label", "others"),
    [
        ("2026-08-01", "2026-27", "2027-28"),  # before the first term: the first year
        ("2027-05-27", "2026-27", "2027-28"),  # the last class day of 2026-27
        ("2027-05-28", "2027-28", "2026-27"),  # the summer: the next year
        ("2027-07-01", "2027-28", "2026-27"),
        ("2028-05-31", "2027-28", "2026-27"),
        ("2028-07-15", "2027-28", "2026-27"),  # after the calendar's last year: still its last year
    ],
)
def test_the_year_drawn_is_the_one_not_yet_over_on_the_report_day(built, today: str, label: str, others: str) -> None:
    repo, _, _ = built
    now = dt.datetime.combine(dt.date.fromisoformat(today), dt.time(12), tzinfo=ZoneInfo("America/Chicago"))
    years = school_years(open_workspace(str(repo / "orchestrator.yaml")), [], now)
    district = next(y for y in years if y.school == "whole district")
    start = int(label[:4])
    assert (district.label, district.first, district.last) == (label, dt.date(start, 8, 1), dt.date(start + 1, 5, 31))
    assert district.class_days == 180 and [o.label for o in district.others] == [others]
    assert [o.class_days for o in district.others] == [180]


def test_report_command_writes_the_site_from_a_saved_plan(built, tmp_path: Path) -> None:
    repo, _, _ = built
    plan_file = tmp_path / "plan.json"
    runner = CliRunner()
    config = str(repo / "orchestrator.yaml")
    out = tmp_path / "out"
    result = runner.invoke(main, ["--config", config, "report", "--html", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "index.html").exists()

    Plan(changes=[], observed={}, backends=["google"], scopes=["policy"]).save(plan_file)
    result = runner.invoke(main, ["--config", config, "report", "--html", str(out), "--plan", str(plan_file)])
    assert result.exit_code == 0, result.output
    index = (out / "index.html").read_text()
    assert "in sync" in index and "not checked by this plan" in index


def test_the_readme_shows_the_screenshots(repo_root: Path) -> None:
    readme = (repo_root / "README.md").read_text()
    for name in ("site-lockdown-phone.png", "site-calendar-desktop.png"):
        assert (repo_root / "docs" / "img" / name).exists(), f"docs/img/{name} is missing"
        assert f"docs/img/{name}" in readme


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_tech_check_page_counts_per_school_and_never_shows_a_student_or_a_repair_reason(built) -> None:
    """One page, linked from the index, built from `tech_check()`: the summary first, then each school's
    sections; the inventory's students and CB0000005's repair reason appear nowhere, not even as tokens."""
    repo, data, site = built
    html = (site / "techcheck.html").read_text()
    text = text_of(html)
    index = (site / "index.html").read_text()
    assert 'href="techcheck.html"' in index and "2 repair(s) out; 1 loaner(s) out; 1 not seen" in text_of(index)
    lincoln = next(s for s in data.techcheck.schools if s.school == "lincoln-elementary")
    assert lincoln.counts == {
        "locked": 1,
        "released": 0,
        "repairs": 2,
        "overdue_repairs": 2,
        "loaners": 1,
        "overdue_loaners": 0,
        "not_seen": 1,
        "no_last_seen": 1,
    }
    assert "lincoln-elementary 1 0 2 (2) 1 (0) 1 1" in text
    assert text.index("Per school") < text.index("Locked and still lost")
    sections = {sec.key: [r["serial"] for r in sec.rows] for sec in lincoln.sections}
    assert sections == {
        "locked": ["CB0000001"],
        "released": [],
        "repairs": ["CB0000005", "CB0000033"],  # the sample's CB0000033: in repair, no repairSince
        "loaners": ["CB0000025"],
        "not_seen": ["CB0000013"],
    }
    assert "CB0000005 PV-000005 2026-11-16 2026-11-18 4 -" in text  # due 2 school days on, 4 school days late
    assert "CB0000033 PV-000033 - - unknown no repairSince" in text  # the tool's reason why it cannot tell
    assert "Repairs out, lincoln-elementary (2)" in html and "Not seen for more than 30 days" in html
    ws_inventory = load_inventory(repo / "inventory" / "devices.csv").devices
    students = {d.assignedStudent for d in ws_inventory if d.assignedStudent}
    reasons = {d.repairReason for d in ws_inventory if d.repairReason}
    assert "student000005@district.example" in students and REASON in reasons
    assert not [s for s in students | reasons if s in html], "a student's address or a repair reason on the site"
    assert "cracked" not in html and "<redacted" not in html and "&lt;redacted" not in html


def test_a_tech_check_section_not_computed_shows_its_note_not_an_empty_table(built, tmp_path: Path) -> None:
    """No lockdown report and no RepairPolicy: locked, released, repairs and loaners say why, count "not known"."""
    repo, _, _ = built
    policies = tmp_path / "policies"
    shutil.copytree(repo / "policies", policies, ignore=shutil.ignore_patterns("repair.yaml"))
    config = repo / "orchestrator-bare.yaml"
    settings = (repo / "orchestrator.yaml").read_text().replace("reports: reports\n", "")
    config.write_text(settings + f"reports: {tmp_path / 'reports'}\npolicies: {policies}\n")
    write_site(gather_site(open_workspace(str(config)), now=NOW), tmp_path / "site")
    html = (tmp_path / "site" / "techcheck.html").read_text()
    text = text_of(html)
    assert "lincoln-elementary not known not known not known not known 1 1" in text
    assert text.count("not known no lockdown report in") == 2 * 4  # locked and released, in each of 4 schools
    assert text.count("not known repairs and loaners not computed") == 2 * 4
    assert "<caption>Locked and still lost" not in html and "<caption>Repairs out" not in html
    assert "None." in html  # a computed section with no device (not seen) is still "None."
