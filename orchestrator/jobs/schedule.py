"""Ready-to-install scheduler entries for the nightly lockdown and the 15-minute maintenance run.

`emit("cron" | "systemd" | "github-actions", workdir=..., python=..., config=..., timezone=...)` returns text
to install. The entries must run exactly as emitted under a scheduler's bare environment (issue 10, item 8):

- every program is named by absolute path (the installed `orchestrator` or a venv python, `--config` with
  the absolute config path), because cron's PATH is /usr/bin:/bin and systemd's has no venv in it;
- credentials come from an environment file (`EnvironmentFile=`, or sourced by the cron/Actions line); the
  output names the variables it must define, never their values;
- a failure alerts: systemd `OnFailure=` starts `orchestrator-failure@<unit>.service`; the cron line reports
  a non-zero exit on stdout (cron mails it to MAILTO or the crontab owner) and runs the optional hook.

Shapes:
- cron: a block between `# BEGIN k12-orchestrator` and `# END k12-orchestrator` with `CRON_TZ` and `flock`, so
  it can be appended to a crontab (or replace an earlier copy of the block) without touching other entries.
  Both jobs share one lock file: the lockdown waits up to 15 minutes for a running maintenance run, a
  maintenance tick is skipped (exit 0) while anything holds the lock.
- systemd: two oneshot services with `User=`, two timers (`OnCalendar=` in the district zone,
  `Persistent=true` so a run missed while the host was down happens at boot), and the failure template unit.
- github-actions: a workflow with a `concurrency` group (runs queue, never overlap). Actions schedules are
  UTC; the lockdown is scheduled at every UTC time that can be 01:30 in the district zone during the year,
  and a guard step skips the runs where the local hour is wrong, so DST needs no edits.

Many districts (tenants/<name>/): `schedule_tenants.emit_tenants`.

`python` is the command that runs the orchestrator: an absolute path to the installed `orchestrator` script,
or an absolute python followed by `-m orchestrator`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from typing import Literal
from zoneinfo import ZoneInfo

from orchestrator.backends.registry import CATALOG
from orchestrator.core.backend import Catalog
from orchestrator.jobs.config import Config
from orchestrator.policy.grammar import check_timezone

Kind = Literal["cron", "systemd", "github-actions"]
KINDS: tuple[Kind, ...] = ("cron", "systemd", "github-actions")
LOCKDOWN_AT = dt.time(1, 30)
MAINTENANCE_EVERY_MINUTES = 15
LOCK_FILE = ".orchestrator/run.lock"
LOG_FILE = ".orchestrator/scheduled.log"
LOCKDOWN_LOCK_WAIT_SECONDS = 900
DEFAULT_ENV_FILE = "/etc/orchestrator/orchestrator.env"
FAILURE_UNIT = "orchestrator-failure@"
BLOCK_BEGIN = "# BEGIN k12-orchestrator"
BLOCK_END = "# END k12-orchestrator"


def installed_command(argv0: str | None = None, python: str | None = None) -> str:
    """The absolute command that runs this orchestrator, for a scheduler whose PATH has no venv in it.

    The running `orchestrator` script (argv[0], looked up on PATH when bare), else the script installed next
    to this interpreter, else this interpreter with `-m orchestrator`. Interpreter paths are made absolute but
    not resolved: a venv's bin/python is a symlink, and resolving it would lose the venv's packages.
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    interpreter = shlex.quote(os.path.abspath(python or sys.executable))
    if os.path.basename(argv0) != "__main__.py" and os.path.basename(argv0).startswith("orchestrator"):
        found = argv0 if os.sep in argv0 else shutil.which(argv0)
        if found and os.access(found, os.X_OK):
            return shlex.quote(os.path.abspath(found))
    beside = os.path.join(os.path.dirname(os.path.abspath(python or sys.executable)), "orchestrator")
    if os.path.basename(argv0) != "__main__.py" and os.access(beside, os.X_OK):
        return shlex.quote(beside)
    return f"{interpreter} -m orchestrator"


def credential_vars(config: Config, catalog: Catalog = CATALOG) -> list[str]:
    """Names of the environment variables the configured backends read their secrets from (never values)."""
    return [
        var
        for name in catalog.names()
        if config.section(name) is not None
        for var in catalog.spec(name).credential_env(config.section(name))
    ]


def emit(
    kind: Kind,
    *,
    workdir: str,
    python: str,
    timezone: str,
    config: str | None = None,
    env_file: str | None = DEFAULT_ENV_FILE,
    user: str | None = None,
    on_failure: str | None = None,
    mail_to: str | None = None,
    credential_vars: Sequence[str] = (),
) -> str:
    """Scheduler entries of `kind` for `orchestrator lockdown` (01:30 local) and `maintenance run`.

    Paths must be absolute: a scheduler runs from an unknown directory with a minimal PATH, so anything
    relative would silently run something else or nothing at all.
    """
    check_timezone(timezone)
    texts = {"workdir": workdir, "python": python, "config": config, "env_file": env_file, "user": user}
    texts |= {"on_failure": on_failure, "mail_to": mail_to}
    for label, value in texts.items():
        if value is not None and (not value.strip() or any(ord(ch) < 32 for ch in value)):
            raise ValueError(f"{label} {value!r} must be non-empty text on one line")
    if kind not in KINDS:
        raise ValueError(f"unknown scheduler {kind!r} (one of {', '.join(KINDS)})")
    words = shlex.split(python)
    for label, path in (("workdir", workdir), ("python", words[0]), ("config", config), ("env_file", env_file)):
        if path is not None and not path.startswith("/"):
            raise ValueError(f"{label} {path!r} must be an absolute path (schedulers run with a minimal PATH)")
    job = _Job(
        workdir=workdir.rstrip("/") or "/",
        python=python,
        config=config,
        env_file=env_file,
        timezone=timezone,
        credential_vars=tuple(credential_vars),
    )
    if kind == "cron":
        return _cron(job, on_failure, mail_to)
    if kind == "systemd":
        return _systemd(job, user, on_failure)
    return _github_actions(job, on_failure)


class _Job:
    """What every entry shares: where to run, what to run, and where credentials come from."""

    def __init__(
        self,
        *,
        workdir: str,
        python: str,
        config: str | None,
        env_file: str | None,
        timezone: str,
        credential_vars: tuple[str, ...],
    ) -> None:
        self.workdir = workdir
        self.python = python
        self.config = config
        self.env_file = env_file
        self.timezone = timezone
        self.credential_vars = credential_vars

    def path(self, relative: str) -> str:
        return f"{self.workdir.rstrip('/')}/{relative}"

    def command(self, *args: str) -> str:
        words = [*shlex.split(self.python), *(["--config", self.config] if self.config else []), *args]
        return " ".join(shlex.quote(w) for w in words)

    def env_comment(self) -> list[str]:
        if not self.env_file:
            return ["# No environment file: every backend must be a loopback emulator (no credentials)."]
        names = ", ".join(self.credential_vars) or "the *_env variables orchestrator.yaml names"
        return [
            f"# Credentials: {self.env_file} (KEY=value lines, owned by root, mode 0640, readable by the",
            f"# service user) must define {names}. Never put the secrets in these entries.",
        ]


def _cron(job: _Job, on_failure: str | None, mail_to: str | None) -> str:
    lock = shlex.quote(job.path(LOCK_FILE))
    log = shlex.quote(job.path(LOG_FILE))
    prefix = f"cd {shlex.quote(job.workdir)} && mkdir -p .orchestrator && ("
    if job.env_file:
        prefix += f"set -a && . {shlex.quote(job.env_file)} && set +a && "

    def line(schedule: str, name: str, run: str) -> str:
        hook = f" K12_FAILED_JOB={name} /bin/sh -c {shlex.quote(on_failure)};" if on_failure else ""
        report = (
            f'{{ rc=$?; echo "k12 orchestrator {name} failed (exit $rc); last lines of {job.path(LOG_FILE)}:"; '
            f"tail -n 30 {log};{hook} exit $rc; }}"
        )
        return f"{schedule} {prefix}exec {run}) >> {log} 2>&1 || {report}"

    lockdown = f"flock -w {LOCKDOWN_LOCK_WAIT_SECONDS} {lock} {job.command('lockdown')}"
    maintenance = f"flock -n -E 0 {lock} {job.command('maintenance', 'run')}"
    mail = [f"MAILTO={mail_to}"] if mail_to else ["# Failures are mailed to the crontab owner; set MAILTO= to change."]
    lines = [
        f"{BLOCK_BEGIN} (from `orchestrator schedule --emit cron`; replace this block, keep the rest)",
        f"# Times are district time ({job.timezone}). CRON_TZ is honoured by cronie (RHEL, Fedora, Arch) and",
        "# systemd-cron; Debian/Ubuntu's cron ignores it, so there set the host's zone to the district zone.",
        "# Both jobs share one flock: the lockdown waits for a running maintenance run, a maintenance tick",
        f"# is skipped while anything holds the lock. Output goes to {job.path(LOG_FILE)}; a non-zero exit",
        "# prints a report (which cron mails) and runs the failure hook, if any.",
        *job.env_comment(),
        "SHELL=/bin/sh",
        f"CRON_TZ={job.timezone}",
        *mail,
        line(f"{LOCKDOWN_AT.minute} {LOCKDOWN_AT.hour} * * *", "lockdown", lockdown),
        line(f"*/{MAINTENANCE_EVERY_MINUTES} * * * *", "maintenance", maintenance),
        BLOCK_END,
    ]
    return "\n".join(text.replace("%", "\\%") if not text.startswith("#") else text for text in lines) + "\n"


def _systemd_exec(text: str) -> str:
    """Escape systemd's specifiers (%) and environment expansion ($) so the command runs as written."""
    return text.replace("%", "%%").replace("$", "$$")


def _systemd(job: _Job, user: str | None, on_failure: str | None) -> str:
    lock = job.path(LOCK_FILE)
    lock_dir = lock.rsplit("/", 1)[0]
    jobs = [
        (
            "orchestrator-lockdown",
            "Nightly lockdown of lost devices (k12 fleet orchestrator)",
            f"/usr/bin/flock -w {LOCKDOWN_LOCK_WAIT_SECONDS} {shlex.quote(lock)} {job.command('lockdown')}",
            f"*-*-* {LOCKDOWN_AT:%H:%M}:00 {job.timezone}",
        ),
        (
            "orchestrator-maintenance",
            "Maintenance-window run (k12 fleet orchestrator)",
            f"/usr/bin/flock -n -E 0 {shlex.quote(lock)} {job.command('maintenance', 'run')}",
            f"*-*-* *:00/{MAINTENANCE_EVERY_MINUTES}:00 {job.timezone}",
        ),
    ]
    alert = (
        f"/bin/sh -c {_systemd_exec(shlex.quote(on_failure))}"
        if on_failure
        else '/usr/bin/logger -p user.err -t k12-orchestrator "%i failed: journalctl -u %i"'
    )
    parts = [
        "# k12 fleet orchestrator: save each unit under /etc/systemd/system/, then run",
        "#   systemctl daemon-reload && systemctl enable --now orchestrator-lockdown.timer "
        "orchestrator-maintenance.timer",
        "# OnCalendar= carries the district zone (systemd >= 235), so the host may run in UTC.",
        f"# A failed run starts {FAILURE_UNIT}<unit>.service (K12_FAILED_JOB=<unit>): point it at your alerting.",
        *job.env_comment(),
    ]
    for unit, description, command, calendar in jobs:
        parts += [
            f"\n# ---- {unit}.service ----",
            "[Unit]",
            f"Description={description}",
            "After=network-online.target",
            "Wants=network-online.target",
            f"OnFailure={FAILURE_UNIT}%n.service",
            "",
            "[Service]",
            "Type=oneshot",
            *([f"User={user}"] if user else []),
            f"WorkingDirectory={_systemd_exec(job.workdir)}",
            *([f"EnvironmentFile={_systemd_exec(job.env_file)}"] if job.env_file else []),
            f"ExecStartPre=/usr/bin/mkdir -p {_systemd_exec(shlex.quote(lock_dir))}",
            f"ExecStart={_systemd_exec(command)}",
            *systemd_timer(unit, f"Schedule for {unit}", calendar, f"{unit}.service"),
        ]
    parts += systemd_failure_unit(alert)
    return "\n".join(parts) + "\n"


def systemd_timer(name: str, description: str, calendar: str, service: str) -> list[str]:
    """The lines of one `.timer` unit (persistent: a missed night runs at the next boot)."""
    return [
        f"\n# ---- {name}.timer ----",
        "[Unit]",
        f"Description={description}",
        "",
        "[Timer]",
        f"OnCalendar={calendar}",
        "Persistent=true",
        "AccuracySec=30s",
        f"Unit={service}",
        "",
        "[Install]",
        "WantedBy=timers.target",
    ]


def systemd_failure_unit(alert: str) -> list[str]:
    """The `OnFailure=` template service that runs the alert hook with the failed unit's name."""
    return [
        f"\n# ---- {FAILURE_UNIT}.service ----",
        "[Unit]",
        "Description=Alert that %i failed (k12 fleet orchestrator)",
        "",
        "[Service]",
        "Type=oneshot",
        "Environment=K12_FAILED_JOB=%i",
        f"ExecStart={alert}",
    ]


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


def _actions_run(job: _Job, *args: str) -> str:
    """One shell line: load the credentials file (if any), then run the orchestrator by absolute path."""
    env = f"set -a && . {shlex.quote(job.env_file)} && set +a && " if job.env_file else ""
    return json.dumps(f"{env}exec {job.command(*args)}")


def _actions_alert(on_failure: str | None, name: str) -> str:
    if not on_failure:
        return ""
    return f"""
      - name: Alert on failure
        if: failure()
        env:
          K12_FAILED_JOB: {name}
        run: {json.dumps(on_failure)}"""


def _github_actions(job: _Job, on_failure: str | None) -> str:
    workdir, timezone = job.workdir, job.timezone
    env_comment = "\n".join(job.env_comment())
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
# A failed run fails the job (GitHub notifies the workflow's owner); the optional alert step runs too.
{env_comment}
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
        run: {_actions_run(job, "lockdown")}{_actions_alert(on_failure, "lockdown")}
  maintenance:
    if: github.event.schedule == '{maintenance_cron}'
    runs-on: [self-hosted, orchestrator]
    timeout-minutes: 14
    defaults:
      run:
        working-directory: {work}
    steps:
      - name: orchestrator maintenance run
        run: {_actions_run(job, "maintenance", "run")}{_actions_alert(on_failure, "maintenance")}
"""
