"""Ready-to-install scheduler entries for the nightly lockdown and the 15-minute maintenance run.

`emit("cron" | "systemd" | "github-actions", workdir=..., python=..., timezone=...)` returns text to paste:

- cron: a crontab with `CRON_TZ` and `flock`. Both jobs share one lock file: the lockdown waits up to
  15 minutes for a running maintenance run, a maintenance tick skips when anything holds the lock.
- systemd: two oneshot services and two timers (`OnCalendar=` in the district zone, `Persistent=true` so a
  run missed while the host was down happens at boot), with the same shared `flock`.
- github-actions: a workflow with a `concurrency` group (runs queue, never overlap). Actions schedules are
  UTC; the lockdown is scheduled at every UTC time that can be 01:30 in the district zone during the year,
  and a guard step skips the runs where the local hour is wrong, so DST needs no edits.

`python` is the command that runs the orchestrator (an installed `orchestrator` script, a venv path, or
`python -m orchestrator`).
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from typing import Literal
from zoneinfo import ZoneInfo

from orchestrator.policy.grammar import check_timezone

Kind = Literal["cron", "systemd", "github-actions"]
KINDS: tuple[Kind, ...] = ("cron", "systemd", "github-actions")
LOCKDOWN_AT = dt.time(1, 30)
MAINTENANCE_EVERY_MINUTES = 15
LOCK_FILE = ".orchestrator/run.lock"
LOCKDOWN_LOCK_WAIT_SECONDS = 900


def emit(kind: Kind, *, workdir: str, python: str = "orchestrator", timezone: str) -> str:
    """Scheduler entries of `kind` for `orchestrator lockdown` (01:30 local) and `maintenance run`."""
    check_timezone(timezone)
    for label, value in (("workdir", workdir), ("python", python)):
        if not value.strip() or any(ord(ch) < 32 for ch in value):
            raise ValueError(f"{label} {value!r} must be non-empty text on one line")
    if kind == "cron":
        return _cron(workdir, python, timezone)
    if kind == "systemd":
        if not workdir.startswith("/"):
            raise ValueError(f"workdir {workdir!r} must be an absolute path for systemd WorkingDirectory=")
        return _systemd(workdir, python, timezone)
    if kind == "github-actions":
        return _github_actions(workdir, python, timezone)
    raise ValueError(f"unknown scheduler {kind!r} (one of {', '.join(KINDS)})")


def _command(python: str, *args: str) -> str:
    return " ".join([*(shlex.quote(p) for p in shlex.split(python)), *args])


def _cron(workdir: str, python: str, timezone: str) -> str:
    cd = f"cd {shlex.quote(workdir)}"
    lock = shlex.quote(LOCK_FILE)
    mkdir = "mkdir -p .orchestrator"
    lockdown = _command(python, "lockdown")
    maintenance = _command(python, "maintenance", "run")
    log = ".orchestrator/cron.log"
    lines = [
        "# k12 fleet orchestrator: install with `crontab -e` as the service user.",
        f"# Times are district time ({timezone}). CRON_TZ is honoured by cronie (RHEL, Fedora, Arch) and",
        "# systemd-cron; Debian/Ubuntu's cron ignores it, so there set the host's zone to the district zone.",
        "# Both jobs share one flock: the lockdown waits for a running maintenance run, a maintenance tick",
        "# is skipped while anything holds the lock.",
        "SHELL=/bin/sh",
        f"CRON_TZ={timezone}",
        f"{LOCKDOWN_AT.minute} {LOCKDOWN_AT.hour} * * * {cd} && {mkdir} && "
        f"flock -w {LOCKDOWN_LOCK_WAIT_SECONDS} {lock} {lockdown} >> {log} 2>&1",
        f"*/{MAINTENANCE_EVERY_MINUTES} * * * * {cd} && {mkdir} && flock -n {lock} {maintenance} >> {log} 2>&1",
    ]
    return "\n".join(line.replace("%", "\\%") if not line.startswith("#") else line for line in lines) + "\n"


def _systemd_exec(text: str) -> str:
    return text.replace("%", "%%")


def _systemd(workdir: str, python: str, timezone: str) -> str:
    lock = f"{workdir.rstrip('/')}/{LOCK_FILE}"
    lock_dir = lock.rsplit("/", 1)[0]
    jobs = [
        (
            "orchestrator-lockdown",
            "Nightly lockdown of lost devices (k12 fleet orchestrator)",
            f"/usr/bin/flock -w {LOCKDOWN_LOCK_WAIT_SECONDS} {shlex.quote(lock)} {_command(python, 'lockdown')}",
            f"*-*-* {LOCKDOWN_AT:%H:%M}:00 {timezone}",
        ),
        (
            "orchestrator-maintenance",
            "Maintenance-window run (k12 fleet orchestrator)",
            f"/usr/bin/flock -n {shlex.quote(lock)} {_command(python, 'maintenance', 'run')}",
            f"*-*-* *:00/{MAINTENANCE_EVERY_MINUTES}:00 {timezone}",
        ),
    ]
    parts = [
        "# k12 fleet orchestrator: save each unit under /etc/systemd/system/, then run",
        "#   systemctl daemon-reload && systemctl enable --now orchestrator-lockdown.timer "
        "orchestrator-maintenance.timer",
        "# OnCalendar= carries the district zone (systemd >= 235), so the host may run in UTC.",
    ]
    for unit, description, command, calendar in jobs:
        parts += [
            f"\n# ---- {unit}.service ----",
            "[Unit]",
            f"Description={description}",
            "After=network-online.target",
            "Wants=network-online.target",
            "",
            "[Service]",
            "Type=oneshot",
            f"WorkingDirectory={_systemd_exec(workdir)}",
            f"ExecStartPre=/usr/bin/mkdir -p {shlex.quote(lock_dir)}",
            f"ExecStart={_systemd_exec(command)}",
            f"\n# ---- {unit}.timer ----",
            "[Unit]",
            f"Description=Schedule for {unit}",
            "",
            "[Timer]",
            f"OnCalendar={calendar}",
            "Persistent=true",
            "AccuracySec=30s",
            f"Unit={unit}.service",
            "",
            "[Install]",
            "WantedBy=timers.target",
        ]
    return "\n".join(parts) + "\n"


def utc_times_for_local(at: dt.time, timezone: str, year: int) -> list[tuple[dt.time, str]]:
    """Every (UTC time of day, local UTC offset like "-0500") that local `at` falls on during `year`."""
    tz = ZoneInfo(timezone)
    found: set[tuple[dt.time, str]] = set()
    day = dt.date(year, 1, 1)
    while day.year == year:
        local = dt.datetime.combine(day, at, tzinfo=tz)
        found.add((local.astimezone(dt.UTC).time(), f"{local:%z}"))
        day += dt.timedelta(days=1)
    return sorted(found)


def _github_actions(workdir: str, python: str, timezone: str) -> str:
    lockdown_utc = utc_times_for_local(LOCKDOWN_AT, timezone, dt.date.today().year)
    maintenance_cron = f"*/{MAINTENANCE_EVERY_MINUTES} * * * *"
    local = f"{LOCKDOWN_AT:%H:%M}"
    schedule = "\n".join(
        f'    - cron: "{t.minute} {t.hour} * * *"   # {local} {timezone} while its offset is {offset}'
        for t, offset in lockdown_utc
    )
    cases = "\n".join(f'            "{t.minute} {t.hour} * * *") want="{offset}" ;;' for t, offset in lockdown_utc)
    work = json.dumps(workdir)
    return f"""\
# k12 fleet orchestrator: save as .github/workflows/orchestrator-schedule.yaml
# GitHub evaluates `schedule` in UTC. The district zone is {timezone}: the lockdown is listed at each
# UTC time that is {local} there at some point of the year, and the guard step runs only the entry whose
# UTC offset is in force today, so daylight saving time needs no edits and a late start still runs.
# (github.com also accepts `timezone:` per schedule entry; this form works on GitHub Enterprise too.)
# Scheduled runs can start late or be dropped under load; `maintenance run` re-plans from current state.
# The journal must persist between runs: use a self-hosted runner with a stable workdir.
name: orchestrator schedule
on:
  schedule:
{schedule}
    - cron: "{maintenance_cron}"
  workflow_dispatch:
concurrency:
  group: orchestrator-fleet
  cancel-in-progress: false
permissions:
  contents: read
jobs:
  lockdown:
    if: github.event_name == 'workflow_dispatch' || github.event.schedule != '{maintenance_cron}'
    runs-on: [self-hosted, orchestrator]
    timeout-minutes: 60
    defaults:
      run:
        working-directory: {work}
    steps:
      - name: Only the entry that is {local} in {timezone} today
        id: guard
        env:
          SCHEDULE: ${{{{ github.event.schedule }}}}
        run: |
          case "$SCHEDULE" in
{cases}
            *) want="" ;;
          esac
          now="$(TZ={timezone} date +%z)"
          if [ "$GITHUB_EVENT_NAME" = "workflow_dispatch" ] || [ "$now" = "$want" ]; then
            echo "run=true" >> "$GITHUB_OUTPUT"
          else
            echo "run=false" >> "$GITHUB_OUTPUT"
          fi
      - name: orchestrator lockdown
        if: steps.guard.outputs.run == 'true'
        run: {json.dumps(_command(python, "lockdown"))}
  maintenance:
    if: github.event.schedule == '{maintenance_cron}'
    runs-on: [self-hosted, orchestrator]
    timeout-minutes: 14
    defaults:
      run:
        working-directory: {work}
    steps:
      - name: orchestrator maintenance run
        run: {json.dumps(_command(python, "maintenance", "run"))}
"""
