"""Scheduler entries: cron, systemd timers and a GitHub Actions workflow that parse and lock."""

from __future__ import annotations

import configparser
import datetime as dt
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestrator.jobs.schedule import BLOCK_BEGIN, BLOCK_END, emit, utc_times_for_local
from orchestrator.sandbox.district import generate
from orchestrator.sandbox.google_emulator import GoogleEmulator
from orchestrator.sandbox.graph_emulator import GraphEmulator

REPO = Path(__file__).resolve().parent.parent
ORCHESTRATOR = Path(sys.executable).absolute().parent / "orchestrator"
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CRON_PATH = "/usr/bin:/bin"

WORKDIR = "/srv/k12 orchestrator"
PYTHON = "/srv/venv/bin/orchestrator"
SOURCE_ENV = "set -a && . /etc/orchestrator/orchestrator.env && set +a && "
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
    lock = "'/srv/k12 orchestrator/.orchestrator/run.lock'"
    assert f"flock -w 900 {lock} {PYTHON} lockdown)" in lockdown
    assert f"flock -n -E 0 {lock} {PYTHON} maintenance run)" in maintenance


def test_cron_commands_are_valid_shell_with_quoted_workdir_and_escaped_percent() -> None:
    text = emit("cron", workdir="/srv/k12 100%", python="/usr/bin/python3 -m orchestrator", timezone="America/Chicago")
    for _, command in cron_jobs(text):
        assert "\\%" in command and "'/srv/k12 100\\%'" in command
        unescaped = command.replace("\\%", "%")
        subprocess.run(["sh", "-n", "-c", unescaped], check=True)
        assert "/usr/bin/python3 -m orchestrator" in unescaped


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
    units = systemd_units(emit("systemd", workdir=WORKDIR, python=PYTHON, timezone="America/Chicago", user="k12"))
    assert set(units) == {
        "orchestrator-lockdown.service",
        "orchestrator-lockdown.timer",
        "orchestrator-maintenance.service",
        "orchestrator-maintenance.timer",
        "orchestrator-failure@.service",
    }
    lockdown = units["orchestrator-lockdown.timer"]["Timer"]
    assert lockdown["OnCalendar"] == "*-*-* 01:30:00 America/Chicago"
    assert lockdown["Persistent"] == "true"
    assert units["orchestrator-maintenance.timer"]["Timer"]["OnCalendar"] == "*-*-* *:00/15:00 America/Chicago"
    service = units["orchestrator-maintenance.service"]["Service"]
    assert service["Type"] == "oneshot" and service["WorkingDirectory"] == WORKDIR
    assert service["ExecStart"].startswith("/usr/bin/flock -n -E 0 '/srv/k12 orchestrator/.orchestrator/run.lock' ")
    assert units["orchestrator-lockdown.timer"]["Install"]["WantedBy"] == "timers.target"
    for name in ("orchestrator-lockdown.service", "orchestrator-maintenance.service"):
        unit = units[name]
        assert unit["Service"]["User"] == "k12"
        assert unit["Service"]["EnvironmentFile"] == "/etc/orchestrator/orchestrator.env"
        assert unit["Unit"]["OnFailure"] == "orchestrator-failure@%n.service"
    alert = units["orchestrator-failure@.service"]["Service"]
    assert alert["ExecStart"].startswith("/usr/bin/logger ") and alert["Environment"] == "K12_FAILED_JOB=%i"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_calendar_expressions_are_accepted_by_systemd_analyze() -> None:
    units = systemd_units(emit("systemd", workdir=WORKDIR, python=PYTHON, timezone="America/Chicago", user="k12"))
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
    assert jobs["lockdown"]["steps"][-1]["run"] == f"{SOURCE_ENV}exec {PYTHON} lockdown"
    assert jobs["maintenance"]["steps"][-1]["run"] == f"{SOURCE_ENV}exec {PYTHON} maintenance run"
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
        emit("cron", workdir=WORKDIR, python=PYTHON, timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="absolute"):
        emit("systemd", workdir="relative/dir", python=PYTHON, timezone="America/Chicago")
    with pytest.raises(ValueError, match="one line"):
        emit("cron", workdir="/srv/x\n* * * * * rm -rf /", python=PYTHON, timezone="America/Chicago")
    with pytest.raises(ValueError, match="unknown scheduler"):
        emit("launchd", workdir=WORKDIR, python=PYTHON, timezone="America/Chicago")  # type: ignore[arg-type]


# -- entries that run as emitted (issue 10, item 8) ------------------------------------------------------
def test_a_bare_or_relative_command_or_config_is_refused() -> None:
    for kind in ("cron", "systemd", "github-actions"):
        with pytest.raises(ValueError, match="absolute"):
            emit(kind, workdir=WORKDIR, python="orchestrator", timezone="America/Chicago")
        with pytest.raises(ValueError, match="absolute"):
            emit(kind, workdir=WORKDIR, python=PYTHON, config="orchestrator.yaml", timezone="America/Chicago")


def test_cron_block_is_added_to_an_existing_crontab_and_replaced_on_reinstall(tmp_path: Path) -> None:
    """The README's install line keeps other entries and replaces only an earlier copy of this block."""
    text = emit("cron", workdir=WORKDIR, python=PYTHON, timezone="America/Chicago", mail_to="it@district.example")
    lines = text.splitlines()
    assert lines[0].startswith(BLOCK_BEGIN) and lines[-1] == BLOCK_END
    assert "MAILTO=it@district.example" in lines
    crontab = tmp_path / "crontab"
    crontab.write_text("0 5 * * * /usr/local/bin/backup\n")
    (tmp_path / "block").write_text(text)
    install = f"{{ sed '/^{BLOCK_BEGIN}/,/^{BLOCK_END}/d' crontab; cat block; }} > new && mv new crontab"
    for _ in range(2):
        subprocess.run(["sh", "-c", install], cwd=tmp_path, check=True)
    installed = crontab.read_text()
    assert installed.startswith("0 5 * * * /usr/local/bin/backup\n") and installed.count(BLOCK_BEGIN) == 1


def test_cli_emits_the_running_executable_the_config_and_credential_names_never_values(tmp_path: Path) -> None:
    config = tmp_path / "orchestrator.yaml"
    config.write_text("intune:\n  tenant_id: t\n  client_id: c\n  client_secret_env: DISTRICT_GRAPH_SECRET\n")
    env = {**os.environ, "DISTRICT_GRAPH_SECRET": "s3cr3t-graph-value"}
    for kind in ("cron", "systemd", "github-actions"):
        done = subprocess.run(
            [str(ORCHESTRATOR), "--config", str(config), "schedule", "--emit", kind, "--user", "k12"],
            capture_output=True,
            text=True,
            env=env,
            cwd="/",
        )
        assert done.returncode == 0, done.stderr
        assert f"{ORCHESTRATOR} --config {config.resolve()} lockdown" in done.stdout
        assert "DISTRICT_GRAPH_SECRET" in done.stdout and "s3cr3t-graph-value" not in done.stdout
        assert "/etc/orchestrator/orchestrator.env" in done.stdout
    module = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(config), "schedule", "--emit", "cron"],
        capture_output=True,
        text=True,
        cwd="/",
    )
    assert f"{Path(sys.executable).absolute()} -m orchestrator --config" in module.stdout, module.stderr


@pytest.fixture
def scheduled_district(tmp_path: Path):
    """A district repository wired to running emulators, a credentials file, and a directory to run from."""
    seeded = generate(devices=120)
    google = GoogleEmulator(seeded).start()
    graph = GraphEmulator.start_local(seeded)
    root = tmp_path / "district"
    root.mkdir()
    for name in ("policies", "inventory"):
        shutil.copytree(REPO / name, root / name)
    (root / "orchestrator.yaml").write_text(
        f"google:\n  directory_endpoint: {google.url}\n  policy_endpoint: {google.url}\n"
        f"intune:\n  graph_endpoint: {graph.url}\n"
    )
    env_file = tmp_path / "orchestrator.env"
    env_file.write_text("ORCHESTRATOR_ACTOR=scheduled-job\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    yield root, env_file, elsewhere
    google.stop()
    graph.stop()


def _emit_cli(root: Path, kind: str, *extra: str) -> str:
    done = subprocess.run(
        [str(ORCHESTRATOR), "--config", str(root / "orchestrator.yaml"), "schedule", "--emit", kind, *extra],
        capture_output=True,
        text=True,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _bare_env(path: str, home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """What a scheduler gives a job: no venv, no activated environment, just a default PATH."""
    return {"PATH": path, "HOME": str(home), "LANG": "C.UTF-8", **(extra or {})}


def test_emitted_cron_lines_run_with_crons_default_path_from_another_directory(scheduled_district) -> None:
    root, env_file, elsewhere = scheduled_district
    text = _emit_cli(root, "cron", "--env-file", str(env_file))
    jobs = cron_jobs(text)
    assert len(jobs) == 2
    for _, command in jobs:
        done = subprocess.run(
            ["/bin/sh", "-c", command.replace("\\%", "%")],
            env=_bare_env(CRON_PATH, elsewhere),
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout == ""  # cron mails stdout: silence on success
    log = (root / ".orchestrator" / "scheduled.log").read_text()
    assert "Lockdown by school" in log and "failed to execute" not in log
    assert (
        "scheduled-job"
        in subprocess.run(
            [str(ORCHESTRATOR), "--config", str(root / "orchestrator.yaml"), "journal"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )  # the credentials file was loaded: its ORCHESTRATOR_ACTOR is the journal's actor


def test_a_failing_cron_job_reports_its_exit_and_runs_the_failure_hook(scheduled_district) -> None:
    root, env_file, elsewhere = scheduled_district
    flag = elsewhere / "alerted"
    text = _emit_cli(root, "cron", "--env-file", str(env_file), "--on-failure", f'echo "$K12_FAILED_JOB" > {flag}')
    env_file.unlink()  # a missing credentials file must alert, not pass silently
    _, lockdown = cron_jobs(text)[0]
    done = subprocess.run(
        ["/bin/sh", "-c", lockdown.replace("\\%", "%")],
        env=_bare_env(CRON_PATH, elsewhere),
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "k12 orchestrator lockdown failed (exit" in done.stdout
    assert flag.read_text().strip() == "lockdown"


def test_emitted_systemd_services_run_with_systemds_default_path(scheduled_district) -> None:
    root, env_file, elsewhere = scheduled_district
    units = systemd_units(_emit_cli(root, "systemd", "--env-file", str(env_file), "--user", "k12"))
    for name in ("orchestrator-lockdown.service", "orchestrator-maintenance.service"):
        service = units[name]["Service"]
        assert service["EnvironmentFile"] == str(env_file)
        loaded = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
        for key in ("ExecStartPre", "ExecStart"):
            argv = shlex.split(service[key].replace("%%", "%").replace("$$", "$"))
            assert argv[0].startswith("/")
            done = subprocess.run(
                argv,
                env=_bare_env(SYSTEMD_PATH, elsewhere, loaded),
                cwd=elsewhere,  # stricter than systemd, which would enter WorkingDirectory= first
                capture_output=True,
                text=True,
                timeout=240,
            )
            assert done.returncode == 0, f"{name} {key}: {done.stdout}{done.stderr}"
    assert units["orchestrator-lockdown.service"]["Service"]["WorkingDirectory"] == str(root.resolve())


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_emitted_systemd_units_pass_systemd_analyze_verify(scheduled_district, tmp_path: Path) -> None:
    root, env_file, _ = scheduled_district
    text = _emit_cli(root, "systemd", "--env-file", str(env_file), "--user", "root")
    folder = tmp_path / "units"
    folder.mkdir()
    for block in re.split(r"^# ---- (\S+) ----$", text, flags=re.M)[1:]:
        if block.endswith((".service", ".timer")):
            name = block
            continue
        (folder / name).write_text(block)
    done = subprocess.run(
        ["systemd-analyze", "verify", *sorted(str(p) for p in folder.iterdir() if "@" not in p.name)],
        capture_output=True,
        text=True,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
    )
    assert done.returncode == 0 and "not executable" not in done.stderr, done.stderr
