"""Scheduler entries for every district of a repository (tenants/<name>/orchestrator.yaml), issue 15 item 5.

Each district runs at 01:30 in its own time zone, with its own credentials file (`env_file` with `{tenant}`),
run lock and log (in its folder, beside its journal). The single-district entries and their rules (absolute
paths, environment files, failure alerts) are `schedule`'s; this module lays them out per district:

- systemd: template services `orchestrator-lockdown@.service` / `orchestrator-maintenance@.service` (the
  instance is the district) and one `orchestrator-lockdown@<tenant>.timer` (and maintenance timer) per
  district carrying its zone;
- cron: one marked block per district (`# BEGIN k12-orchestrator <tenant>`), each with its `CRON_TZ`;
- github-actions: one workflow whose jobs run a matrix over the districts (fail-fast off, one concurrency
  group per district; a guard runs only the UTC entry that is 01:30 in the district's zone today);
- kubernetes: a `CronJob` per district and job, with `timeZone:` and the district's own Secret.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import yaml

from orchestrator.jobs.schedule import (
    BLOCK_BEGIN,
    BLOCK_END,
    FAILURE_UNIT,
    LOCK_FILE,
    LOCKDOWN_AT,
    LOCKDOWN_LOCK_WAIT_SECONDS,
    MAINTENANCE_EVERY_MINUTES,
    _actions_alert,
    _systemd_exec,
    emit,
    systemd_failure_unit,
    systemd_timer,
    utc_times_for_local,
)
from orchestrator.policy.grammar import check_timezone

TenantKind = Literal["cron", "systemd", "github-actions", "kubernetes"]
TENANT_KINDS: tuple[TenantKind, ...] = ("cron", "systemd", "github-actions", "kubernetes")
DEFAULT_TENANT_ENV_FILE = "/etc/orchestrator/tenants/{tenant}.env"


@dataclass(frozen=True)
class TenantJob:
    """One district to schedule: its name, its absolute config path and its own time zone."""

    name: str
    config: str
    timezone: str
    credential_vars: tuple[str, ...] = ()


def emit_tenants(
    kind: TenantKind,
    tenants: Sequence[TenantJob],
    *,
    workdir: str,
    python: str,
    env_file: str | None = DEFAULT_TENANT_ENV_FILE,
    user: str | None = None,
    on_failure: str | None = None,
    mail_to: str | None = None,
    image: str = "k12-orchestrator:latest",
) -> str:
    """Scheduler entries for every district, each at 01:30 in its own zone, with its own credentials file
    (`env_file` with `{tenant}`), its own run lock and log (beside its journal, in its folder).

    systemd: template services `orchestrator-lockdown@.service` / `orchestrator-maintenance@.service` (the
    instance is the district) and one `orchestrator-lockdown@<tenant>.timer` per district in its zone. cron:
    one marked block per district. github-actions: one workflow whose jobs run a matrix over the districts.
    kubernetes: a `CronJob` per district and job, with `timeZone:` and the district's own Secret.
    """
    if not tenants:
        raise ValueError("no districts to schedule (tenants/<name>/orchestrator.yaml)")
    if kind not in TENANT_KINDS:
        raise ValueError(f"unknown scheduler {kind!r} (one of {', '.join(TENANT_KINDS)})")
    if env_file is not None and "{tenant}" not in env_file:
        raise ValueError(f"env_file {env_file!r} must contain {{tenant}}: each district has its own credentials")
    for tenant in tenants:
        check_timezone(tenant.timezone)
        if not tenant.name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"tenant name {tenant.name!r}: letters, digits, - and _ only (it names units and jobs)")
    root = workdir.rstrip("/") or "/"
    if kind == "cron":
        blocks = []
        for tenant in tenants:
            text = emit(
                "cron",
                workdir=f"{root}/tenants/{tenant.name}",
                python=python,
                timezone=tenant.timezone,
                config=tenant.config,
                env_file=env_file.replace("{tenant}", tenant.name) if env_file else None,
                on_failure=on_failure,
                mail_to=mail_to,
                credential_vars=tenant.credential_vars,
            )
            blocks.append(
                text.replace(BLOCK_BEGIN, f"{BLOCK_BEGIN} {tenant.name}", 1).replace(
                    BLOCK_END, f"{BLOCK_END} {tenant.name}", 1
                )
            )
        return "\n".join(blocks)
    if kind == "systemd":
        return _systemd_tenants(tenants, root, python, env_file, user, on_failure)
    if kind == "github-actions":
        return _actions_tenants(tenants, root, python, env_file, on_failure)
    return _kubernetes_tenants(tenants, root, python, image)


def _tenant_command(python: str, config: str, *args: str) -> str:
    return " ".join(shlex.quote(w) for w in [*shlex.split(python), "--config", config, *args])


def _systemd_tenants(
    tenants: Sequence[TenantJob],
    root: str,
    python: str,
    env_file: str | None,
    user: str | None,
    on_failure: str | None,
) -> str:
    folder = f"{root}/tenants/%i"
    lock = f"{folder}/{LOCK_FILE}"
    config = f"{folder}/orchestrator.yaml"
    instances = " ".join(
        f"orchestrator-lockdown@{t.name}.timer orchestrator-maintenance@{t.name}.timer" for t in tenants
    )
    alert = (
        f"/bin/sh -c {_systemd_exec(shlex.quote(on_failure))}"
        if on_failure
        else '/usr/bin/logger -p user.err -t k12-orchestrator "%i failed: journalctl -u %i"'
    )
    parts = [
        "# k12 fleet orchestrator, one instance per district: save each unit under /etc/systemd/system/, then run",
        f"#   systemctl daemon-reload && systemctl enable --now {instances}",
        "# The services are templates (the instance name is the district); each district's timers carry its zone.",
        f"# A failed run starts {FAILURE_UNIT}<unit>.service (K12_FAILED_JOB=<unit>): point it at your alerting.",
    ]
    if env_file:
        parts.append(
            f"# Credentials: {env_file} per district (KEY=value, mode 0640); a district's file is read only by "
            "its own units."
        )
    for tenant in tenants:
        if tenant.credential_vars:
            parts.append(f"#   {tenant.name}: {', '.join(tenant.credential_vars)}")
    services = [
        ("orchestrator-lockdown", "Nightly lockdown", f"/usr/bin/flock -w {LOCKDOWN_LOCK_WAIT_SECONDS}", "lockdown"),
        ("orchestrator-maintenance", "Maintenance-window run", "/usr/bin/flock -n -E 0", "maintenance run"),
    ]
    for unit, description, flock, args in services:
        command = f"{flock} @LOCK@ {_tenant_command(python, '@CONFIG@', *args.split())}"
        command = _systemd_exec(command).replace("@CONFIG@", config).replace("@LOCK@", lock)  # %i: the district
        parts += [
            f"\n# ---- {unit}@.service ----",
            "[Unit]",
            f"Description={description} of district %i (k12 fleet orchestrator)",
            "After=network-online.target",
            "Wants=network-online.target",
            f"OnFailure={FAILURE_UNIT}%n.service",
            "",
            "[Service]",
            "Type=oneshot",
            *([f"User={user}"] if user else []),
            f"WorkingDirectory={folder}",
            *([f"EnvironmentFile={_systemd_exec(env_file).replace('{tenant}', '%i')}"] if env_file else []),
            f"ExecStartPre=/usr/bin/mkdir -p {folder}/.orchestrator",
            f"ExecStart={command}",
        ]
    for tenant in tenants:
        for unit, calendar in (
            ("orchestrator-lockdown", f"*-*-* {LOCKDOWN_AT:%H:%M}:00 {tenant.timezone}"),
            ("orchestrator-maintenance", f"*-*-* *:00/{MAINTENANCE_EVERY_MINUTES}:00 {tenant.timezone}"),
        ):
            instance = f"{unit}@{tenant.name}"
            description = f"Schedule for {instance} ({tenant.timezone})"
            parts += systemd_timer(instance, description, calendar, f"{instance}.service")
    parts += systemd_failure_unit(alert)
    return "\n".join(parts) + "\n"


def _actions_tenants(
    tenants: Sequence[TenantJob], root: str, python: str, env_file: str | None, on_failure: str | None
) -> str:
    year = dt.date.today().year
    utc = sorted({t for tenant in tenants for t, _ in utc_times_for_local(LOCKDOWN_AT, tenant.timezone, year)})
    maintenance_cron = f"*/{MAINTENANCE_EVERY_MINUTES} * * * *"
    schedule = "\n".join(f'    - cron: "{t.minute} {t.hour} * * *"' for t in utc)
    matrix = "\n".join(
        f"          - {{tenant: {json.dumps(t.name)}, timezone: {json.dumps(t.timezone)}}}" for t in tenants
    )
    env = f"set -a && . {shlex.quote(env_file).replace('{tenant}', '${TENANT}')} && set +a && " if env_file else ""

    def run(*args: str) -> str:
        words = " ".join(shlex.quote(w) for w in shlex.split(python))
        return json.dumps(f'{env}exec {words} --config "$CONFIG" ' + " ".join(shlex.quote(a) for a in args))

    def job(name: str, condition: str, minutes: int, args: tuple[str, ...], guard: bool) -> str:
        guard_step = (
            f"""
      - name: Only the entry that is {LOCKDOWN_AT:%H:%M} in the district's zone today
        id: guard
        env:
          SCHEDULE: ${{{{ github.event.schedule }}}}
        run: |
          set -f; set -- $SCHEDULE
          local="$(TZ="$ZONE" date -d "$(date -u +%F) $2:$1 UTC" +%H:%M)"
          if [ "$GITHUB_EVENT_NAME" = "workflow_dispatch" ] || [ "$local" = "{LOCKDOWN_AT:%H:%M}" ]; then
            echo "run=true" >> "$GITHUB_OUTPUT"
          else
            echo "run=false" >> "$GITHUB_OUTPUT"
          fi"""
            if guard
            else ""
        )
        when = "\n        if: steps.guard.outputs.run == 'true'" if guard else ""
        return f"""\
  {name}:
    if: {condition}
    runs-on: [self-hosted, orchestrator]
    timeout-minutes: {minutes}
    strategy:
      fail-fast: false
      max-parallel: 8
      matrix:
        include:
{matrix}
    concurrency:
      group: orchestrator-${{{{ matrix.tenant }}}}
      cancel-in-progress: false
    env:
      TENANT: ${{{{ matrix.tenant }}}}
      ZONE: ${{{{ matrix.timezone }}}}
      CONFIG: {root}/tenants/${{{{ matrix.tenant }}}}/orchestrator.yaml
    defaults:
      run:
        working-directory: {json.dumps(root + "/tenants/${{ matrix.tenant }}")}
    steps:{guard_step}
      - name: orchestrator {" ".join(args)} (${{{{ matrix.tenant }}}}){when}
        run: {run(*args)}{_actions_alert(on_failure, name)}
"""

    zones = ", ".join(sorted({t.timezone for t in tenants}))
    lockdown_if = f"github.event_name == 'workflow_dispatch' || github.event.schedule != '{maintenance_cron}'"
    return f"""\
# k12 fleet orchestrator, every district: save as .github/workflows/orchestrator-schedule.yaml
# Each job runs a matrix over the districts (fail-fast off: one district's failure never cancels another's),
# one concurrency group per district. GitHub schedules are UTC; the lockdown is listed at every UTC time that
# is {LOCKDOWN_AT:%H:%M} in one of the districts' zones ({zones}) during the year, and each district's guard
# runs only the entry that is {LOCKDOWN_AT:%H:%M} in its own zone today (daylight saving time needs no edits).
# The journals must persist between runs: use a self-hosted runner with a stable workdir.
name: orchestrator schedule (all districts)
on:
  schedule:
{schedule}
    - cron: "{maintenance_cron}"
  workflow_dispatch:
permissions:
  contents: read
jobs:
{job("lockdown", lockdown_if, 60, ("lockdown",), True)}
{job("maintenance", f"github.event.schedule == '{maintenance_cron}'", 14, ("maintenance", "run"), False)}"""


def _kubernetes_tenants(tenants: Sequence[TenantJob], root: str, python: str, image: str) -> str:
    docs = [
        "# k12 fleet orchestrator, every district: `kubectl apply -f` this file (Kubernetes >= 1.27 for timeZone).",
        "# Each district's CronJobs read only its own Secret `orchestrator-<tenant>` (its credential variables)",
        f"# and mount the repository (with each district's journal under tenants/<name>/.orchestrator) at {root}",
        "# from the PersistentVolumeClaim `orchestrator-repo`. concurrencyPolicy Forbid: runs never overlap.",
    ]
    for tenant in tenants:
        for job, schedule, args, deadline in (
            ("lockdown", f"{LOCKDOWN_AT.minute} {LOCKDOWN_AT.hour} * * *", ["lockdown"], 3600),
            ("maintenance", f"*/{MAINTENANCE_EVERY_MINUTES} * * * *", ["maintenance", "run"], 840),
        ):
            command = [*shlex.split(python), "--config", tenant.config, *args]
            docs.append(
                "---\n"
                + yaml.safe_dump(
                    {
                        "apiVersion": "batch/v1",
                        "kind": "CronJob",
                        "metadata": {
                            "name": f"orchestrator-{job}-{tenant.name}".lower().replace("_", "-"),
                            "labels": {"app": "k12-orchestrator", "tenant": tenant.name},
                        },
                        "spec": {
                            "schedule": schedule,
                            "timeZone": tenant.timezone,
                            "concurrencyPolicy": "Forbid",
                            "startingDeadlineSeconds": 600,
                            "jobTemplate": {
                                "spec": {
                                    "backoffLimit": 0,
                                    "activeDeadlineSeconds": deadline,
                                    "template": {
                                        "metadata": {"labels": {"app": "k12-orchestrator", "tenant": tenant.name}},
                                        "spec": {
                                            "restartPolicy": "Never",
                                            "containers": [
                                                {
                                                    "name": job,
                                                    "image": image,
                                                    "workingDir": f"{root}/tenants/{tenant.name}",
                                                    "command": command,
                                                    "envFrom": [{"secretRef": {"name": f"orchestrator-{tenant.name}"}}],
                                                    "volumeMounts": [{"name": "repo", "mountPath": root}],
                                                }
                                            ],
                                            "volumes": [
                                                {
                                                    "name": "repo",
                                                    "persistentVolumeClaim": {"claimName": "orchestrator-repo"},
                                                }
                                            ],
                                        },
                                    },
                                }
                            },
                        },
                    },
                    sort_keys=False,
                ).rstrip()
            )
    return "\n".join(docs) + "\n"
