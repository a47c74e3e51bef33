"""Coverage fails closed (issue 19 item 6): unknown days, calendars without class days, ending calendars."""

from __future__ import annotations

import datetime as dt
import shutil
import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.policy.loader import load_policies
from orchestrator.policy.models import MaintenanceWindow, SchoolCalendar
from orchestrator.sandbox import tenants
from orchestrator.schooltime.calendar import SchoolDays
from orchestrator.schooltime.coverage import coverage
from orchestrator.schooltime.windows import WindowSchedule

REPO = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("America/Chicago")
D = dt.date.fromisoformat


def repo_with_calendar(tmp_path: Path, calendar_yaml: str) -> Path:
    """The sample district with policies/calendar.yaml replaced."""
    target = tmp_path / "district"
    shutil.copytree(REPO / "policies", target / "policies")
    shutil.copytree(REPO / "inventory", target / "inventory")
    shutil.copy(REPO / "orchestrator.yaml", target / "orchestrator.yaml")
    (target / "policies" / "calendar.yaml").write_text(textwrap.dedent(calendar_yaml).lstrip())
    return target


def calendar_yaml(first: dt.date, last: dt.date) -> str:
    return f"""
        kind: SchoolCalendar
        name: district-2026-27
        timezone: America/Chicago
        terms:
          - name: School year
            first_day: {first.isoformat()}
            last_day: {last.isoformat()}
        """


LAST_YEAR = calendar_yaml(D("2025-08-14"), D("2026-05-28"))


def test_a_calendar_with_no_class_days_in_the_next_year_is_an_error_with_file_and_line(tmp_path: Path) -> None:
    repo = repo_with_calendar(tmp_path, LAST_YEAR)
    report = coverage(load_policies(repo / "policies"), repo, today=D("2026-08-12"))
    [error] = [e for e in report.errors if "district-2026-27" in e.message]
    assert error.file.endswith("calendar.yaml") and error.line == 4 and error.path == "terms"
    assert "no class days between 2026-08-12 and 2027-08-11" in error.message
    assert "last known day is 2026-05-28" in error.message


def test_a_calendar_ending_within_30_days_warns(tmp_path: Path) -> None:
    policies = load_policies(REPO / "policies")
    report = coverage(policies, REPO, today=D("2028-05-01"))
    assert not report.errors
    assert any("ends 2028-05-31 (in 30 days)" in w.message for w in report.warnings)
    assert not coverage(policies, REPO, today=D("2028-04-30")).warnings


def test_the_sample_calendars_know_every_day_from_the_first_2026_27_day_to_the_last_2027_28_day() -> None:
    """No day between the first and the last known day is unknown (an unknown day closes every window): the
    summer between the years and the weekends before winter break are named, for the district and each school."""
    policies = load_policies(REPO / "policies")
    for name in ("district-2026-27", "district-ics-2026-27"):
        days = SchoolDays(policies.by_name(SchoolCalendar, name)[0], REPO)
        assert days.known_span == (D("2026-08-13"), D("2028-05-31")), name
        assert [t.first_day for t in days.terms][-2:] == [D("2027-08-18"), D("2028-01-04")], name
        for school in (None, *days.schools):
            day, unknown = D("2026-08-13"), []
            while day <= D("2028-05-31"):
                unknown += [] if days.day(day, school).known else [day.isoformat()]
                day += dt.timedelta(days=1)
            assert not unknown, (name, school, unknown)
            assert days.class_days_between(D("2027-08-01"), D("2028-07-31"), school) == 180, (name, school)
        summer = days.day(D("2027-07-01"))
        assert summer.kind == "no_students" and "Summer" in summer.reason, name
        assert days.day(D("2028-06-01")).kind == "unknown", name  # the calendar ends with the 2027-28 year


def test_the_summer_before_the_2027_28_year_is_neither_an_error_nor_a_warning() -> None:
    policies = load_policies(REPO / "policies")
    for today in ("2027-05-01", "2027-05-27", "2027-06-15", "2027-08-17"):
        report = coverage(policies, REPO, today=D(today))
        assert not report.errors and not report.warnings, (today, report)


def test_every_sandbox_district_calendar_runs_through_the_summer_into_2027_28() -> None:
    for index in range(12):
        text = tenants.calendar_yaml(index, tenants.ZONES[index % len(tenants.ZONES)])
        days = SchoolDays(SchoolCalendar.model_validate(yaml.safe_load(text)))
        first, last = days.known_span or (None, None)
        assert first is not None and last is not None and first.year == 2026 and last >= D("2028-05-31"), index
        span = (first + dt.timedelta(days=n) for n in range((last - first).days + 1))
        unknown = [d for d in span if not days.day(d).known]
        assert not unknown, (index, unknown)
        assert days.day(D("2027-07-01")).reason == "Summer break", index
        assert days.class_days_between(D("2027-08-01"), D("2028-07-31")) >= 180, index


def test_calendar_check_fails_on_last_years_calendar_and_passes_with_warnings(tmp_path: Path) -> None:
    repo = repo_with_calendar(tmp_path, LAST_YEAR)
    config = ["--config", str(repo / "orchestrator.yaml")]
    failed = CliRunner().invoke(main, [*config, "calendar", "check", "--today", "2026-08-12"])
    assert failed.exit_code == 1 and "no class days between" in failed.output
    warned = CliRunner().invoke(
        main, ["--config", str(REPO / "orchestrator.yaml"), "calendar", "check", "--today", "2028-05-10"]
    )
    assert warned.exit_code == 0 and "warning:" in warned.output and "ends 2028-05-31" in warned.output


def test_the_calendar_check_example_in_the_help_and_the_readme_shows_the_warning_it_documents() -> None:
    """`calendar check --help` and the README give one example; run on the sample district it warns."""
    runner = CliRunner()
    config = ["--config", str(REPO / "orchestrator.yaml")]
    help_text = runner.invoke(main, [*config, "calendar", "check", "--help"]).output
    example = help_text.split("Example: orchestrator ", 1)[1].split()[:4]
    assert example[:3] == ["calendar", "check", "--today"], help_text
    assert f"`orchestrator {' '.join(example)}`" in (REPO / "README.md").read_text()
    result = runner.invoke(main, [*config, *example])
    assert result.exit_code == 0 and "warning:" in result.output and "(in 30 days)" in result.output, result.output


def test_windows_shows_the_coverage_warning_and_the_unknown_days(tmp_path: Path) -> None:
    today = dt.datetime.now(TZ).date()
    repo = repo_with_calendar(tmp_path, calendar_yaml(today - dt.timedelta(days=60), today + dt.timedelta(days=10)))
    after = (today + dt.timedelta(days=12)).isoformat()
    result = CliRunner().invoke(
        main, ["--config", str(repo / "orchestrator.yaml"), "windows", "--at", f"{after}T10:00"]
    )
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "(in 10 days)" in result.output
    assert "unknown to the calendar" in result.output and "after the calendar's last" in result.output


def test_a_calendar_that_yields_no_class_days_closes_every_window() -> None:
    model = SchoolCalendar.model_validate(
        {
            "kind": "SchoolCalendar",
            "name": "district",
            "timezone": "America/Chicago",
            "ics": {
                "file": "tests/data/google-export.ics",
                "class_days_listed": True,
                "rules": [{"match": "no such event title", "means": "class_day"}],
            },
        }
    )
    days = SchoolDays(model, REPO)
    assert not days.yields_class_days
    window = MaintenanceWindow.model_validate(
        {
            "kind": "MaintenanceWindow",
            "name": "w",
            "calendar": "district",
            "times": ["00:00-23:59"],
            "days": "any_night",
        }
    )
    state = WindowSchedule(window, days).is_open(dt.datetime(2026, 12, 2, 10, 0, tzinfo=TZ))
    assert not state.open and "unknown" in state.reason


def test_every_window_mode_closes_on_unknown_days() -> None:
    model = SchoolCalendar.model_validate(
        {
            "kind": "SchoolCalendar",
            "name": "district",
            "timezone": "America/Chicago",
            "terms": [{"name": "Year", "first_day": "2025-08-14", "last_day": "2026-05-28"}],
        }
    )
    days = SchoolDays(model)
    for mode in ("non_class_days", "nights_before_non_class_days", "no_staff_days", "any_night", "dates"):
        window = MaintenanceWindow.model_validate(
            {
                "kind": "MaintenanceWindow",
                "name": "w",
                "calendar": "district",
                "times": ["22:00-05:00"],
                "days": mode,
                "dates": [{"date": "2026-09-08"}],
            }
        )
        state = WindowSchedule(window, days).is_open(dt.datetime(2026, 9, 8, 23, 0, tzinfo=TZ))
        assert not state.open and "after the calendar's last known day 2026-05-28" in state.reason, mode
