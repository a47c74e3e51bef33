"""Scheduler entries: cron, systemd timers and a GitHub Actions workflow that parse and lock."""

from __future__ import annotations

import configparser
import datetime as dt
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from orchestrator.schedule import emit, utc_times_for_local

WORKDIR = "/srv/k12 orchestrator"
PYTHON = "/srv/venv/bin/orchestrator"
CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\d+(-\d+)?)(/\d+)?)*$")
CRON_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def cron_fields_valid(fields: list[str]) -> bool:
    if len(fields) != 5:
        return False
    for text, (low, high) in zip(fields, CRON_RANGES, strict=True):
        if not CRON_FIELD.match(text):
            return False
        numbers = [int(n) for n in re.findall(r"\d+", text.split("/")[0])]
        if any(not low <= n <= high for n in numbers):
            return False
    return True


def cron_jobs(text: str) -> list[tuple[list[str], str]]:
    jobs = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        parts = line.split(None, 5)
        jobs.append((parts[:5], parts[5]))
    return jobs


def test_cron_entries_have_valid_fields_zone_and_shared_flock() -> None:
    text = emit("cron", workdir=WORKDIR, python=PYTHON, timezone="America/Chicago")
    assert "CRON_TZ=America/Chicago" in text.splitlines()
    jobs = cron_jobs(text)
    assert len(jobs) == 2
    assert all(cron_fields_valid(fields) for fields, _ in jobs)
    (lockdown_fields, lockdown), (maintenance_fields, maintenance) = jobs
    assert lockdown_fields == ["30", "1", "*", "*", "*"]
    assert maintenance_fields == ["*/15", "*", "*", "*", "*"]
    assert "flock -w 900 .orchestrator/run.lock" in lockdown and lockdown.endswith("2>&1")
    assert f"{PYTHON} lockdown" in lockdown
    assert "flock -n .orchestrator/run.lock" in maintenance and f"{PYTHON} maintenance run" in maintenance


def test_cron_commands_are_valid_shell_with_quoted_workdir_and_escaped_percent() -> None:
    text = emit("cron", workdir="/srv/k12 100%", python="python3 -m orchestrator", timezone="America/Chicago")
    for _, command in cron_jobs(text):
        assert "\\%" in command and "'/srv/k12 100\\%'" in command
        unescaped = command.replace("\\%", "%")
        subprocess.run(["sh", "-n", "-c", unescaped], check=True)
        assert "python3 -m orchestrator" in unescaped


def systemd_units(text: str) -> dict[str, configparser.ConfigParser]:
    units: dict[str, configparser.ConfigParser] = {}
    for block in re.split(r"^# ---- (\S+) ----$", text, flags=re.M)[1:]:
        if block.endswith((".service", ".timer")):
            name = block
            continue
        parser = configparser.ConfigParser(strict=True, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string(block)
        units[name] = parser
    return units


def test_systemd_units_parse_and_timers_are_persistent_in_the_district_zone() -> None:
    units = systemd_units(emit("systemd", workdir=WORKDIR, python=PYTHON, timezone="America/Chicago"))
    assert set(units) == {
        "orchestrator-lockdown.service",
        "orchestrator-lockdown.timer",
        "orchestrator-maintenance.service",
        "orchestrator-maintenance.timer",
    }
    lockdown = units["orchestrator-lockdown.timer"]["Timer"]
    assert lockdown["OnCalendar"] == "*-*-* 01:30:00 America/Chicago"
    assert lockdown["Persistent"] == "true"
    assert units["orchestrator-maintenance.timer"]["Timer"]["OnCalendar"] == "*-*-* *:00/15:00 America/Chicago"
    service = units["orchestrator-maintenance.service"]["Service"]
    assert service["Type"] == "oneshot" and service["WorkingDirectory"] == WORKDIR
    assert service["ExecStart"].startswith("/usr/bin/flock -n '/srv/k12 orchestrator/.orchestrator/run.lock' ")
    assert units["orchestrator-lockdown.timer"]["Install"]["WantedBy"] == "timers.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_calendar_expressions_are_accepted_by_systemd_analyze() -> None:
    units = systemd_units(emit("systemd", workdir=WORKDIR, python=PYTHON, timezone="America/Chicago"))
    for name in ("orchestrator-lockdown.timer", "orchestrator-maintenance.timer"):
        expression = units[name]["Timer"]["OnCalendar"]
        result = subprocess.run(["systemd-analyze", "calendar", expression], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


def test_systemd_escapes_percent_for_specifiers() -> None:
    text = emit("systemd", workdir="/srv/100%", python=PYTHON, timezone="America/Chicago")
    assert "WorkingDirectory=/srv/100%%" in text
    assert "%%" in systemd_units(text)["orchestrator-lockdown.service"]["Service"]["ExecStart"]


def actions_workflow(timezone: str = "America/Chicago") -> dict:
    return yaml.safe_load(emit("github-actions", workdir=WORKDIR, python=PYTHON, timezone=timezone))


def test_github_actions_workflow_loads_with_concurrency_and_utc_schedules() -> None:
    workflow = actions_workflow()
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    crons = [entry["cron"] for entry in triggers["schedule"]]
    assert crons == ["30 6 * * *", "30 7 * * *", "*/15 * * * *"]
    assert all(cron_fields_valid(c.split()) for c in crons)
    assert workflow["concurrency"] == {"group": "orchestrator-fleet", "cancel-in-progress": False}
    jobs = workflow["jobs"]
    assert jobs["lockdown"]["steps"][-1]["run"] == f"{PYTHON} lockdown"
    assert jobs["maintenance"]["steps"][-1]["run"] == f"{PYTHON} maintenance run"
    assert jobs["maintenance"]["defaults"]["run"]["working-directory"] == WORKDIR


def test_zone_without_dst_gets_one_lockdown_entry_and_half_hour_zones_shift_minutes() -> None:
    phoenix = actions_workflow("America/Phoenix")
    assert [e["cron"] for e in phoenix.get("on", phoenix.get(True))["schedule"]][:-1] == ["30 8 * * *"]
    kolkata = actions_workflow("Asia/Kolkata")
    assert [e["cron"] for e in kolkata.get("on", kolkata.get(True))["schedule"]][:-1] == ["0 20 * * *"]


def test_utc_times_cover_both_offsets_of_a_dst_zone() -> None:
    assert utc_times_for_local(dt.time(1, 30), "America/Chicago", 2027) == [
        (dt.time(6, 30), "-0500"),
        (dt.time(7, 30), "-0600"),
    ]


@pytest.mark.parametrize(("offset", "runs"), [("-0500", "30 6 * * *"), ("-0600", "30 7 * * *")])
def test_github_actions_guard_runs_only_the_entry_for_todays_offset(tmp_path: Path, offset: str, runs: str) -> None:
    guard = actions_workflow()["jobs"]["lockdown"]["steps"][0]["run"]
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake_date = fake_bin / "date"
    fake_date.write_text(f"#!/bin/sh\necho '{offset}'\n")
    fake_date.chmod(0o755)
    for schedule in ("30 6 * * *", "30 7 * * *"):
        output = tmp_path / f"out-{schedule[3]}"
        env = {
            **os.environ,
            "PATH": f"{fake_bin}:{os.environ['PATH']}",
            "SCHEDULE": schedule,
            "GITHUB_OUTPUT": str(output),
            "GITHUB_EVENT_NAME": "schedule",
        }
        subprocess.run(["bash", "-e", "-c", guard], env=env, check=True)
        expected = "run=true" if schedule == runs else "run=false"
        assert output.read_text().strip() == expected


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="IANA"):
        emit("cron", workdir=WORKDIR, timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="absolute"):
        emit("systemd", workdir="relative/dir", timezone="America/Chicago")
    with pytest.raises(ValueError, match="one line"):
        emit("cron", workdir="/srv/x\n* * * * * rm -rf /", timezone="America/Chicago")
    with pytest.raises(ValueError, match="unknown scheduler"):
        emit("launchd", workdir=WORKDIR, timezone="America/Chicago")  # type: ignore[arg-type]
