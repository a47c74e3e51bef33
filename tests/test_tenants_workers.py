"""The warm worker behind `--all-tenants` (issue 15, item 7): districts forked from one process that imported the
command line once, each isolated (environment, folder, process state) and each one's crash or hang its own.

The probe worker below is the real zygote (`jobs.tenant_workers.serve`) with a probe as the entry point in place
of the command line, so the tests can look inside each district's process."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from orchestrator.jobs import tenant_workers
from orchestrator.jobs.tenant_workers import WarmPool
from orchestrator.jobs.tenants import discover, run_tenants
from orchestrator.sandbox.tenants import build_provider, stop_all

REPO = Path(__file__).resolve().parent.parent
PROBE_WORKER = f"""
import json, os, sys, time
sys.path.insert(0, {str(REPO)!r})
from orchestrator.jobs.tenant_workers import serve

SEEN = []  # process state a district leaves behind: a reused process would show the earlier district's


def probe(argv):
    action = argv[0]
    SEEN.append(os.environ.get("DISTRICT"))
    if action == "crash":
        os.kill(os.getpid(), 11)
    if action == "hang":
        time.sleep(600)
    if action == "import":
        import colorsys  # noqa
    print(json.dumps({{
        "env": {{k: v for k, v in os.environ.items() if "SECRET" in k or k == "DISTRICT"}},
        "cwd": os.getcwd(),
        "seen": SEEN,
        "pid": os.getpid(),
        "colorsys_loaded_before": argv[1:] == ["check-colorsys"] and "colorsys" in sys.modules,
    }}))
    sys.exit(int(os.environ.get("EXIT", "0")))


serve(probe, cache=sys.argv[sys.argv.index("--modules-cache") + 1] if "--modules-cache" in sys.argv else None)
"""

pytestmark = pytest.mark.skipif(not tenant_workers.available(), reason="warm workers need fork and pidfd_open")


@pytest.fixture
def pool():
    worker = WarmPool([sys.executable, "-c", PROBE_WORKER], {"PATH": os.environ.get("PATH", "")})
    yield worker
    worker.close()


def _run(pool: WarmPool, tmp_path: Path, name: str, argv: list[str], env: dict[str, str], timeout: float = 60):
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    out, err = folder / "out", folder / "err"
    ended = pool.run(argv, {"DISTRICT": name, **env}, str(folder), str(out), str(err), timeout)
    text = out.read_text() if out.exists() else ""
    return ended, (json.loads(text) if text.strip() else None), err.read_text() if err.exists() else ""


def test_each_district_process_has_only_its_own_environment_folder_and_state(pool, tmp_path: Path) -> None:
    ended_a, a, _ = _run(pool, tmp_path, "north", ["show"], {"NORTH_SECRET": "SECRET-north"})
    ended_b, b, _ = _run(pool, tmp_path, "south", ["show"], {"SOUTH_SECRET": "SECRET-south", "EXIT": "2"})
    assert ended_a.exit_code == 0 and ended_b.exit_code == 2
    assert a["env"] == {"DISTRICT": "north", "NORTH_SECRET": "SECRET-north"}
    assert b["env"] == {"DISTRICT": "south", "SOUTH_SECRET": "SECRET-south"}
    assert a["cwd"] == str(tmp_path / "north") and b["cwd"] == str(tmp_path / "south")
    assert a["seen"] == ["north"] and b["seen"] == ["south"], "south's process must not hold north's state"
    assert a["pid"] != b["pid"] != pool.pid and ended_a.pid == a["pid"]
    assert ended_a.max_rss_kib > 0


def test_the_worker_itself_holds_no_district_secret(tmp_path: Path) -> None:
    planted = {"PATH": os.environ.get("PATH", ""), "NORTH_SECRET": "SECRET-north"}
    worker = WarmPool([sys.executable, "-c", PROBE_WORKER], {"PATH": planted["PATH"]})
    try:
        _run(worker, tmp_path, "north", ["show"], planted)
        environ = Path(f"/proc/{worker.pid}/environ").read_bytes()
        assert b"SECRET-north" not in environ and b"NORTH_SECRET" not in environ
    finally:
        worker.close()


def test_a_crashing_district_is_its_own_result_and_the_others_run(pool, tmp_path: Path) -> None:
    jobs = [("a", ["show"]), ("b", ["crash"]), ("c", ["show"])]
    with ThreadPoolExecutor(3) as threads:
        results = list(threads.map(lambda job: _run(pool, tmp_path, job[0], job[1], {}), jobs))
    (a, a_out, _), (b, b_out, _), (c, c_out, _) = results
    assert b.signal_name == "SIGSEGV" and b.exit_code == 128 + signal.SIGSEGV and b_out is None
    assert a.exit_code == 0 and a_out["seen"] == ["a"]
    assert c.exit_code == 0 and c_out["seen"] == ["c"]
    after, after_out, _ = _run(pool, tmp_path, "d", ["show"], {})
    assert after.exit_code == 0 and after_out["seen"] == ["d"], "the worker goes on after a district crashed"


def test_a_hung_district_is_stopped_at_its_timeout_while_another_finishes(pool, tmp_path: Path) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(2) as threads:
        hung = threads.submit(_run, pool, tmp_path, "hung", ["hang"], {}, 1.0)
        fine = threads.submit(_run, pool, tmp_path, "fine", ["show"], {})
        (stopped, _, _), (ok, ok_out, _) = hung.result(), fine.result()
    assert stopped.timed_out and stopped.signal_name == "SIGKILL"
    assert ok.exit_code == 0 and ok_out["env"]["DISTRICT"] == "fine"
    assert time.monotonic() - started < 30


def test_later_districts_start_with_what_earlier_ones_imported(pool, tmp_path: Path) -> None:
    _, first, _ = _run(pool, tmp_path, "first", ["import", "check-colorsys"], {})
    assert first["colorsys_loaded_before"] is True  # it imported it itself, just now
    _, fresh, _ = _run(pool, tmp_path, "second", ["show", "check-colorsys"], {})
    assert fresh["colorsys_loaded_before"] is True, "the worker imported colorsys after the first district"


def test_the_next_runs_worker_starts_with_what_this_one_learned(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "modules.json"
    env = {"PATH": os.environ.get("PATH", "")}
    first = WarmPool([sys.executable, "-c", PROBE_WORKER], env, cache=cache)
    _run(first, tmp_path, "monday", ["import"], {})
    first.close()
    assert "colorsys" in json.loads(cache.read_text())
    second = WarmPool([sys.executable, "-c", PROBE_WORKER], env, cache=cache)
    try:
        _, seen, _ = _run(second, tmp_path, "tuesday", ["show", "check-colorsys"], {})
    finally:
        second.close()
    assert seen["colorsys_loaded_before"] is True, "its very first district forked with colorsys loaded"


def test_a_lost_worker_stops_its_districts_and_refuses_new_ones(pool, tmp_path: Path) -> None:
    with ThreadPoolExecutor(1) as threads:
        hung = threads.submit(_run, pool, tmp_path, "hung", ["hang"], {}, 120)
        deadline = time.monotonic() + 30
        while not list((tmp_path / "hung").glob("out")) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(pool.pid, signal.SIGKILL)
        ended, _, _ = hung.result(timeout=60)
    assert ended.lost.startswith("the worker process ended") and ended.status is None
    assert _run(pool, tmp_path, "later", ["show"], {})[0].refused


def test_a_district_killed_mid_run_is_reported_and_the_others_finish(tmp_path: Path, monkeypatch) -> None:
    """The real command line in the real warm worker: one district's process is killed while it plans."""
    districts = build_provider(tmp_path, 2, 60, latency=0.1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ORCHESTRATOR_CONFIG", raising=False)
    victim = districts[0].name
    killed: list[int] = []

    def kill_the_victim() -> None:
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            for proc in Path("/proc").iterdir():
                try:  # a district's stdout is a file in its own folder, /tmp/orchestrator-<name>-*/stdout
                    output = os.readlink(proc / "fd" / "1")
                except OSError:
                    continue
                if f"/orchestrator-{victim}-" in output and output.endswith("/stdout"):
                    time.sleep(1.0)  # let it connect and start reading its consoles
                    os.kill(int(proc.name), signal.SIGKILL)
                    killed.append(int(proc.name))
                    return
            time.sleep(0.05)

    try:
        killer = threading.Thread(target=kill_the_victim)
        killer.start()
        runs = {r.tenant: r for r in run_tenants(discover(tmp_path), ["plan", "--backend", "google"], parallel=2)}
        killer.join()
    finally:
        stop_all(districts)
    assert killed, "the victim's process was found among the warm worker's children"
    assert runs[victim].status == "failed" and "ended by SIGKILL" in runs[victim].stderr
    survivor = runs[districts[1].name]
    assert survivor.status == "ok" and survivor.changes and survivor.peak_rss_mib


def _memory_holds(pid: int, needle: bytes) -> bool:
    """Whether any writable mapping of process `pid` holds `needle` (freed heap included)."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            if not perms.startswith("rw"):
                continue
            start, end = (int(x, 16) for x in span.split("-"))
            try:
                mem.seek(start)
                if needle in mem.read(end - start):
                    return True
            except (OSError, ValueError, OverflowError):
                continue
    return False


def test_a_district_secret_never_passes_through_the_worker_memory(pool, tmp_path: Path) -> None:
    """The worker's memory is copied into every later district: a secret that had passed through it (even freed)
    would be in the next district's process. The environment goes from the parent to the child directly."""
    secret = "SECRET-" + os.urandom(8).hex()
    ended, seen, _ = _run(pool, tmp_path, "north", ["show"], {"NORTH_SECRET": secret})
    assert ended.exit_code == 0 and seen["env"]["NORTH_SECRET"] == secret
    assert not _memory_holds(pool.pid, secret.encode())
