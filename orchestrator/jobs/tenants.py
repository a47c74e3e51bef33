"""Many districts in one repository: find them, scope each one's environment, run one command across them.

A repository of several districts holds `tenants/<name>/orchestrator.yaml` (each with its own policies,
inventory, calendar, journal, reports and run lock, paths relative to its folder). `run_tenants` runs one
command for each chosen district, each in its own process (`orchestrator --config tenants/<name>/...`), forked
from a warm worker that has the command line and the backends imported (`jobs.tenant_workers`; a new
interpreter per district where fork is not available, or for a custom `command`):

- **isolation**: a district's process gets the caller's environment minus every variable another district
  names for its credentials (`*_env` keys, `environment_file` entries), plus its own `environment_file`; so
  one district's secrets never reach another's backends, child processes or Ansible jobs. Two districts
  naming the same credential variable while it is set is refused for both (one secret, two districts).
- **no district blocks another**: they run concurrently up to `parallel`; a failure, a crash (a signal, out of
  memory) or a timeout in one is that district's result, and every other district still runs and is reported.
- **one view**: every district's result (exit code, output, and a summary its session records: changes,
  failures, drift) comes back in district order; `worst_exit` is the exit code of the whole run.

No click, no rich: the command line renders the results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.core.errors import ConfigError
from orchestrator.jobs import tenant_workers
from orchestrator.jobs.config import TENANTS_DIR, read_environment_file, tenant_configs

SUMMARY_ENV = "ORCHESTRATOR_TENANT_SUMMARY"
"""A child process records its session's summary (changes, failures, drift) in the JSON file this names."""
TENANT_ENV = "ORCHESTRATOR_TENANT"
COMMANDS = ("validate", "plan", "apply", "drift", "lockdown", "maintenance", "report")
"""The commands that run across districts."""
DEFAULT_TIMEOUT = 6 * 3600.0


@dataclass(frozen=True)
class Tenant:
    """One district: its name, its config file, and the names of the variables holding its secrets."""

    name: str
    config_path: Path
    secret_vars: frozenset[str] = frozenset()
    environment: Mapping[str, str] = field(default_factory=dict)
    problem: str | None = None
    """Why this district cannot run (an unreadable config or environment file); the others still run."""


def _env_names(raw: Any) -> set[str]:
    """Every value of a `*_env` key, at any depth: the variables a config reads secrets from."""
    names: set[str] = set()
    if isinstance(raw, dict):
        for key, value in raw.items():
            if str(key).endswith("_env") and isinstance(value, str) and value:
                names.add(value)
            else:
                names |= _env_names(value)
    return names


# Defaults of the backends' credential settings: a section that does not name its variable reads these.
_DEFAULT_SECRET_VARS = {"google": "GOOGLE_APPLICATION_CREDENTIALS", "intune": "AZURE_CLIENT_SECRET"}


def _tenant(name: str, config_path: Path) -> Tenant:
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        return Tenant(name, config_path, problem=f"{config_path}: cannot read: {exc}")
    if not isinstance(raw, dict):
        return Tenant(name, config_path, problem=f"{config_path}: must be a mapping of settings")
    names = _env_names(raw)
    for backend, default in _DEFAULT_SECRET_VARS.items():
        section = raw.get(backend)
        if backend in raw and not (isinstance(section, dict) and any(str(k).endswith("_env") for k in section)):
            names.add(default)
    environment: dict[str, str] = {}
    env_file = raw.get("environment_file")
    if env_file:
        path = Path(env_file) if Path(env_file).is_absolute() else config_path.parent / env_file
        try:
            environment = read_environment_file(path)
        except ConfigError as exc:
            return Tenant(name, config_path, frozenset(names), problem=str(exc))
        names |= set(environment)
    return Tenant(name, config_path, frozenset(names), environment)


def discover(root: str | Path = ".") -> list[Tenant]:
    """Every district under `root`/tenants/, by name (empty in a one-district repository)."""
    return [_tenant(name, path) for name, path in tenant_configs(root).items()]


def select(tenants: Sequence[Tenant], names: Sequence[str], everyone: bool) -> list[Tenant]:
    """The districts named (in the order given, without repeats), or all of them; unknown names are an error."""
    if not tenants:
        raise ConfigError(
            f"--tenant/--all-tenants: no {TENANTS_DIR}/<name>/orchestrator.yaml under {Path.cwd()} "
            "(run from the repository root that holds the districts)"
        )
    by_name = {t.name: t for t in tenants}
    if everyone:
        return list(tenants)
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ConfigError(f"unknown tenant(s) {', '.join(unknown)} (known: {', '.join(by_name)})")
    return [by_name[n] for n in dict.fromkeys(names)]


def shared_secrets(tenants: Sequence[Tenant], env: Mapping[str, str]) -> dict[str, list[str]]:
    """tenant → the set credential variables it shares with another district (each must name its own)."""
    users: dict[str, list[str]] = {}
    for tenant in tenants:
        for var in tenant.secret_vars - set(tenant.environment):
            users.setdefault(var, []).append(tenant.name)
    shared: dict[str, list[str]] = {}
    for var, names in sorted(users.items()):
        if len(names) > 1 and env.get(var):
            for name in names:
                shared.setdefault(name, []).append(f"{var} (also read by {', '.join(n for n in names if n != name)})")
    return shared


def worker_environment(tenants: Sequence[Tenant], base: Mapping[str, str]) -> dict[str, str]:
    """`base` without any district's credential variables: the warm worker's own environment."""
    secrets = set().union(*(t.secret_vars for t in tenants))
    return {
        k: v for k, v in base.items() if k not in secrets and k not in (SUMMARY_ENV, TENANT_ENV, "ORCHESTRATOR_CONFIG")
    }


def tenant_environment(tenant: Tenant, tenants: Sequence[Tenant], base: Mapping[str, str]) -> dict[str, str]:
    """`base` without any variable another district reads secrets from, plus this district's own file."""
    others = set().union(*(t.secret_vars for t in tenants if t.name != tenant.name)) - tenant.secret_vars
    env = {k: v for k, v in base.items() if k not in others and k not in (SUMMARY_ENV, "ORCHESTRATOR_CONFIG")}
    env.update(tenant.environment)
    env[TENANT_ENV] = tenant.name
    return env


@dataclass
class TenantRun:
    """One district's result: its exit code, what it printed, and its session's summary."""

    tenant: str
    exit_code: int
    stdout: str = ""
    stderr: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    peak_rss_mib: float | None = None
    """The district process's peak resident memory (known for districts run by the warm worker)."""

    @property
    def code(self) -> int:
        """The exit code that counts: click's usage errors also exit 2, but they are errors, not drift."""
        if self.exit_code == 2 and "Usage:" in self.stderr:
            return 1
        return self.exit_code

    @property
    def status(self) -> str:
        return {0: "ok", 2: "drift", 130: "interrupted"}.get(self.code, "failed")

    @property
    def changes(self) -> int | None:
        return self.summary.get("changes")

    @property
    def failures(self) -> int | None:
        return self.summary.get("failures")

    @property
    def drift(self) -> bool | None:
        if self.code == 2:
            return True
        return self.summary.get("drift")

    @property
    def error(self) -> str:
        """The district's first error line (what the table shows beside a failure)."""
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        counted = next((line for line in lines if line.endswith("problem(s) found.")), None)
        if counted and lines[0] != counted:  # policy problems: the first one, and how many there are
            return f"{lines[0]} ({counted.removesuffix(' found.')})"
        for i, line in enumerate(lines):
            if line.startswith("error:"):
                first = line.removeprefix("error:").strip()
                if first.endswith(":") and i + 1 < len(lines):  # "no plan was made:" then each problem
                    return f"{first} {lines[i + 1]}"
                return first
        for line in self.stderr.splitlines():
            if line.startswith("Error:"):  # click's usage errors
                return line.removeprefix("Error:").strip()
        return lines[-1] if lines and self.code not in (0, 2) else ""

    def to_json(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "status": self.status,
            "exit_code": self.code,
            "changes": self.changes,
            "failures": self.failures,
            "drift": self.drift,
            "error": self.error,
            "seconds": round(self.seconds, 2),
            "peak_rss_mib": None if self.peak_rss_mib is None else round(self.peak_rss_mib, 1),
        }


_RANK = {0: 0, 2: 1, 130: 3}


def worst_exit(runs: Sequence[TenantRun]) -> int:
    """The run's exit code: the worst district's (interrupted > error > drift > ok)."""
    return max((r.code for r in runs), key=lambda code: _RANK.get(code, 2), default=0)


def record_summary(**fields: Any) -> None:
    """Merge `fields` into this process's district summary, when it runs as one district of many."""
    path = os.environ.get(SUMMARY_ENV)
    if not path:
        return
    try:
        current = json.loads(Path(path).read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        current = {}
    current.update(fields)
    Path(path).write_text(json.dumps(current))


def orchestrator_command() -> list[str]:
    """How a district's process is started: this interpreter running this package."""
    return [sys.executable, "-m", "orchestrator"]


def tenant_args(tenant: Tenant, args: Sequence[str]) -> list[str]:
    """The command line for one district: its config first, `{tenant}` in any argument replaced by its name."""
    return ["--config", str(tenant.config_path.resolve()), *(a.replace("{tenant}", tenant.name) for a in args)]


def run_tenants(
    chosen: Sequence[Tenant],
    args: Sequence[str],
    *,
    known: Sequence[Tenant] | None = None,
    parallel: int = 4,
    command: Sequence[str] | None = None,
    base_env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    on_done: Any = None,
    warm: bool = True,
) -> list[TenantRun]:
    """Run `args` once per district in `chosen`, up to `parallel` at a time; results in `chosen`'s order.

    `known` are all the repository's districts (default: `chosen`): every one's secrets are kept from the
    others. `on_done(run)` is called as each district finishes (for a live display). `warm` (the default)
    forks each district from one warm worker process; `warm=False`, or a custom `command` (a prefix that
    replaces `python -m orchestrator`), starts a new interpreter per district.
    """
    known = list(known or chosen)
    env = dict(os.environ if base_env is None else base_env)
    shared = shared_secrets(known, env)
    prefix = list(command or orchestrator_command())
    pool = None
    if warm and command is None and tenant_workers.available() and len(chosen) > 1:
        pool = tenant_workers.WarmPool(prefix, worker_environment(known, env), cache=tenant_workers.modules_cache())

    def one(tenant: Tenant) -> TenantRun:
        started = time.monotonic()
        if tenant.problem:
            run = TenantRun(tenant.name, 1, stderr=f"error: {tenant.problem}")
        elif tenant.name in shared:
            run = TenantRun(
                tenant.name,
                1,
                stderr=(
                    "error: credential variable(s) shared with another district: "
                    + "; ".join(shared[tenant.name])
                    + " - name a separate variable per district (each *_env key, or an environment_file)"
                ),
            )
        else:
            scoped = tenant_environment(tenant, known, env)
            run = None if pool is None else _run_warm(pool, tenant, args, scoped, timeout)
            if run is None:
                run = _run_child(tenant, prefix, args, scoped, timeout)
        run.seconds = time.monotonic() - started
        if on_done is not None:
            on_done(run)
        return run

    try:
        with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="tenant") as threads:
            return list(threads.map(one, chosen))
    finally:
        if pool is not None:
            pool.close()


def _run_warm(
    pool: tenant_workers.WarmPool, tenant: Tenant, args: Sequence[str], env: dict[str, str], timeout: float
) -> TenantRun | None:
    """One district forked from the warm worker; None when the worker would not run it (start it anew)."""
    folder = Path(tempfile.mkdtemp(prefix=f"orchestrator-{tenant.name}-"))
    out, err, summary_path = folder / "stdout", folder / "stderr", folder / "summary.json"
    try:
        ended = pool.run(
            tenant_args(tenant, args),
            {**env, SUMMARY_ENV: str(summary_path)},
            os.getcwd(),
            str(out),
            str(err),
            timeout,
        )
        if ended.refused:
            return None
        stdout = out.read_text(errors="replace") if out.exists() else ""
        stderr = err.read_text(errors="replace") if err.exists() else ""
        code = ended.exit_code
        if ended.timed_out:
            stderr += f"\nerror: no result in {timeout} s (stopped)"
            code = 1
        elif ended.lost:
            stderr += f"\nerror: {ended.lost}; this district was stopped"
        elif ended.signal_name:
            stderr += f"\nerror: the district's process ended by {ended.signal_name}"
        try:
            summary = json.loads(summary_path.read_text() or "{}")
        except (OSError, json.JSONDecodeError):
            summary = {}
        run = TenantRun(tenant.name, code, stdout, stderr, summary)
        run.peak_rss_mib = ended.max_rss_kib / 1024 if ended.max_rss_kib else None
        return run
    finally:
        for path in folder.iterdir():
            path.unlink(missing_ok=True)
        folder.rmdir()


def _run_child(
    tenant: Tenant, prefix: list[str], args: Sequence[str], env: dict[str, str], timeout: float
) -> TenantRun:
    handle, summary_path = tempfile.mkstemp(prefix=f"orchestrator-{tenant.name}-", suffix=".json")
    os.close(handle)
    env = {**env, SUMMARY_ENV: summary_path}
    try:
        try:
            done = subprocess.run(
                [*prefix, *tenant_args(tenant, args)],
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            return TenantRun(
                tenant.name, 1, _text(exc.stdout), _text(exc.stderr) + f"\nerror: no result in {timeout} s"
            )
        except OSError as exc:
            return TenantRun(tenant.name, 1, stderr=f"error: cannot start: {exc}")
        try:
            summary = json.loads(Path(summary_path).read_text() or "{}")
        except (OSError, json.JSONDecodeError):
            summary = {}
        return TenantRun(tenant.name, done.returncode, done.stdout, done.stderr, summary)
    finally:
        Path(summary_path).unlink(missing_ok=True)


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""
