"""The README's quick start works on a fresh machine (issue 10, item 7).

A clean copy of the repository (its tracked and new, non-ignored files: what a fresh clone would hold), no
`.venv`: `scripts/sandbox.sh` must create a venv with only the base install (no dev extras, no vendor Ansible
collections) and run every step of the main job against the sandbox on free ports. CI installs the dev extras
first, so without this test a base-install gap (the vendor playbooks' collections) could not be seen.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
STEPS = [
    "orchestrator validate",
    "orchestrator plan --out",
    "orchestrator apply",
    "orchestrator plan   (a second plan",
    "orchestrator lockdown",
    "orchestrator windows",
    "orchestrator maintenance run",
    "orchestrator journal",
]
PROBE = """
import importlib.util as u
def absent(name):
    try:
        return u.find_spec(name) is None
    except ModuleNotFoundError:
        return True
print(not absent("ansible"), absent("ansible_collections.fortinet.fortios"), absent("pytest"))
"""
HEADER = re.compile(r"^(?:\x1b\[1m)?== (.*?)(?:\x1b\[0m)?$")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def copy_repository(target: Path) -> int:
    """Copy what a clone would hold (tracked + new non-ignored files) from the working tree; return the count."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    copied = 0
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if not source.is_file():  # deleted in the working tree
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name)
        copied += 1
    return copied


def clean_environment(home: Path) -> dict[str, str]:
    """The caller's environment minus any venv, so the script builds and uses its own."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "ORCHESTRATOR_CONFIG")}
    venv_bin = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "/usr/bin:/bin").split(os.pathsep) if p != venv_bin)
    env["PYTHON"] = getattr(sys, "_base_executable", "") or shutil.which("python3", path=env["PATH"]) or "python3"
    env["ORCHESTRATOR_ACTOR"] = "quickstart-test"
    env["HOME"] = os.environ.get("HOME", str(home))  # keeps pip's wheel cache
    return env


def run_timed(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str, dict[str, float]]:
    """Run `argv`, returning (exit code, output, seconds at which each step header appeared)."""
    started = time.monotonic()
    seen: dict[str, float] = {}
    lines: list[str] = []
    process = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            match = HEADER.match(line.rstrip("\n"))
            if match:
                seen[match.group(1)] = time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"quick start still running after {timeout:.0f} s")
        code = process.wait(timeout=max(1.0, timeout - (time.monotonic() - started)))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    seen["end"] = time.monotonic() - started
    return code, "".join(lines), seen


def sections(output: str) -> dict[str, str]:
    """Output of each step, keyed by its header."""
    found: dict[str, str] = {}
    current = None
    for line in output.splitlines():
        match = HEADER.match(line)
        if match:
            current = match.group(1)
            found[current] = ""
        elif current is not None:
            found[current] += line + "\n"
    return found


def step(found: dict[str, str], prefix: str) -> str:
    matches = [text for header, text in found.items() if header.startswith(prefix)]
    assert len(matches) == 1, f"step {prefix!r} ran {len(matches)} times"
    return matches[0]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quick_start_runs_every_step_on_a_fresh_copy_with_only_the_base_install(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout to know which files a clone holds")
    repo = tmp_path / "k12"
    assert copy_repository(repo) > 50
    assert not (repo / ".venv").exists()
    google_port, graph_port = free_port(), free_port()
    config = repo / "orchestrator.yaml"
    text = config.read_text()
    assert "127.0.0.1:8801/" in text and "127.0.0.1:8803/" in text
    config.write_text(
        text.replace("127.0.0.1:8801/", f"127.0.0.1:{google_port}/").replace(
            "127.0.0.1:8803/", f"127.0.0.1:{graph_port}/"
        )
    )
    env = clean_environment(tmp_path)
    env["SANDBOX_GOOGLE_PORT"], env["SANDBOX_GRAPH_PORT"] = str(google_port), str(graph_port)

    code, output, at = run_timed(["bash", "scripts/sandbox.sh"], repo, env, timeout=780)
    timings = ", ".join(f"{name.split('  ')[0]} @{seconds:.0f}s" for name, seconds in at.items())
    print(f"\nquick start: {at['end']:.0f} s in all ({timings})")

    assert code == 0, output[-6000:]
    found = sections(output)
    for prefix in STEPS:
        step(found, prefix)
    assert [next(p for p in STEPS if h.startswith(p)) for h in found] == STEPS  # each once, in order
    assert "OK:" in step(found, "orchestrator validate")
    applied = step(found, "orchestrator apply")
    (summary,) = [line for line in applied.splitlines() if line.startswith("Applied:")]
    assert "succeeded" in summary and "failed" not in summary and "unknown" not in summary
    assert "No changes. In sync: google, intune, network (policy)." in step(found, "orchestrator plan   (a second plan")
    lockdown = step(found, "orchestrator lockdown")
    assert "Lockdown by school" in lockdown and "Report:" in lockdown  # and it exited 0: nothing failed
    assert all("failed" not in line for line in lockdown.splitlines() if line.startswith("Applied:"))
    assert "Open maintenance windows" in step(found, "orchestrator windows")
    assert step(found, "orchestrator maintenance run").strip()
    assert "Runs in" in step(found, "orchestrator journal")

    # the venv really is the base install: ansible-core without the vendor collections
    probe = subprocess.run(
        [
            str(repo / ".venv" / "bin" / "python"),
            "-c",
            PROBE,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.split() == ["True", "True", "True"], probe.stdout
