"""Run one site's playbook as one ansible-runner job and summarise what it did.

Each job gets a fresh private data dir (removed afterwards), `suppress_env_files=True`, a timeout, the
virtualenv's bin first on PATH, a default Python interpreter, extra vars written as `!unsafe` data, and
its artifacts kept (scrubbed of environment values) under the backend's artifacts dir.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.backends.network.artifacts import scrub_artifacts
from orchestrator.backends.network.events import TypeOutcome, failure_cause, parse_events
from orchestrator.backends.network.procs import kill_job_tree
from orchestrator.backends.network.vars import write_unsafe_vars


@dataclass
class SiteJob:
    """What to run: one site (an inventory group), the values to enforce, check or apply."""

    site: str
    values: dict[str, Any]
    check: bool
    playbook_dir: Path
    inventory: Path
    artifacts_dir: Path
    playbook: str = "site.yml"
    timeout: int = 300
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class SiteRun:
    """What a job did. `status`: successful, failed, timeout, canceled or error (could not start)."""

    site: str
    check: bool
    status: str
    rc: int | None
    seconds: float
    outcomes: dict[str, TypeOutcome] = field(default_factory=dict)
    artifacts: str = ""
    error: str = ""


def run_site_job(job: SiteJob) -> SiteRun:
    import ansible_runner  # noqa: PLC0415 (only a network job needs it; it costs ~0.3 s at every CLI start)

    mode = "check" if job.check else "apply"
    ident = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{job.site}-{mode}-{uuid.uuid4().hex[:6]}"
    job.artifacts_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    private = Path(tempfile.mkdtemp(prefix=f"k12-{job.site}-"))
    started = time.monotonic()
    try:
        vars_file = write_unsafe_vars(private / "k12_vars.json", {"k12_site": job.site, **job.values})
        (private / "tmp").mkdir()
        cmdline = f"{'--check ' if job.check else ''}--diff -e @{vars_file}"
        deadline = started + job.timeout
        timed_out: list[bool] = []

        def cancel() -> bool:  # our own timeout: runner's would leave module processes running
            if time.monotonic() < deadline:
                return False
            if not timed_out:
                timed_out.append(True)
                kill_job_tree(str(vars_file))
            return True

        try:
            runner = ansible_runner.run(
                private_data_dir=str(private),
                project_dir=str(job.playbook_dir),
                playbook=job.playbook,
                inventory=str(job.inventory),
                limit=job.site,
                cmdline=cmdline,
                envvars=_environment(private, job.env),
                quiet=True,
                timeout=job.timeout + 30,  # a backstop: cancel() below stops the job at job.timeout
                suppress_env_files=True,
                artifact_dir=str(job.artifacts_dir),
                ident=ident,
                rotate_artifacts=0,
                event_handler=lambda _event: True,
                cancel_callback=cancel,
            )
        except Exception as exc:  # ansible-runner raises for config problems before anything runs
            return SiteRun(
                job.site, job.check, "error", None, time.monotonic() - started, error=f"{type(exc).__name__}: {exc}"
            )
        seconds = time.monotonic() - started
        artifact_dir = job.artifacts_dir / ident
        outcomes = parse_events(runner.events)
        if artifact_dir.exists():
            shutil.copy(vars_file, artifact_dir / "k12_vars.json")
            scrub_artifacts(artifact_dir)
        status = "timeout" if timed_out else runner.status
        error = "" if status == "successful" else _stdout_tail(runner)
        if timed_out:
            error = f"no result within {job.timeout} s; the job and its processes were stopped. {error}"
        return SiteRun(job.site, job.check, status, runner.rc, seconds, outcomes, str(artifact_dir), error)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _environment(private: Path, extra: dict[str, str]) -> dict[str, str]:
    venv_bin = os.path.dirname(sys.executable)
    path = os.environ.get("PATH", "")
    return {
        "PATH": path if path.split(os.pathsep)[0] == venv_bin else os.pathsep.join([venv_bin, path]),
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCAL_TEMP": str(private / "tmp"),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS": "ignore",  # site names use '-': keep them, without a warning
        **extra,
    }


def _stdout_tail(runner: Any, lines: int = 15) -> str:
    """The stated cause of a failed run (`[ERROR]:` lines) when ansible gives one, else the output's tail."""
    try:
        text = runner.stdout.read()
    except Exception:  # stdout may be gone after a timeout
        return f"ansible-playbook ended with status {runner.status}, rc {runner.rc}"
    cause = failure_cause(text)
    if cause:
        return f"status {runner.status}, rc {runner.rc}: {cause}"
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return f"status {runner.status}, rc {runner.rc}: " + "\n".join(tail)
