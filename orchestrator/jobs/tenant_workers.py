"""Warm worker processes for many districts: import once, then fork a fresh process for each district.

Why: a district started as `python -m orchestrator ...` spends 2-3 s of CPU before its first request. The
command line imports in 0.5 s, then a run imports about 1,970 more modules lazily (1,250 of them msgraph's
request builders and models; azure-identity, kiota, googleapiclient, httpx) - measured by running one `plan`
twice in one process (5.3 s, then 3.2 s) and listing `sys.modules` before and after. Sixty districts on a
2-core runner paid that sixty times.

How: one *zygote* process (`orchestrator tenant-worker`, started by `run_tenants`) imports the command line
and the backends and never runs a district itself. For each district it forks a child that takes the
district's environment, working directory and output files and runs the command line exactly as a new
process would. Every child is a copy of a zygote that never ran a district, so nothing of one district
(credentials, environment, redaction key, log context, caches, connections, open files) can be in another's
process: the isolation holds by construction, not by resetting globals. A child that crashes (a signal, out of
memory) or hangs (killed at the timeout) is its own district's result; the zygote reaps it and reports its
wait status and peak memory, and the other districts go on.

The zygote never holds a district's secrets: its own environment has no district's credential variables, and a
district's environment goes from the parent straight to the forked child through a named pipe (mode 0600 in the
district's private temporary folder; nothing on disk), so no secret can linger in the zygote's memory, which
every later district copies.

The zygote learns: a finishing child lists the modules it imported that the zygote had not, and the zygote
imports them before its next fork, so later districts start warm. Module names are the only thing that
flows back from a district. When it ends, the zygote keeps the names of the modules it holds in a cache file
(`modules_cache()`, in the user's cache folder), and the next run's zygote imports them before its first fork,
so the first `--parallel` districts start warm too.

Protocol (JSON lines): the parent writes `{"id", "argv", "environment", "cwd", "stdout", "stderr"}` (the
environment is the pipe's path); the zygote answers `{"id", "pid"}` when the child starts, then
`{"id", "status", "max_rss_kib"}` when it has been reaped, or `{"id", "refused": why}` when it will not fork (the
parent then starts that district as a new process).
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import itertools
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORKER_COMMAND = "tenant-worker"
"""The hidden command that runs the zygote (`orchestrator tenant-worker`)."""


def modules_cache() -> Path:
    """Where the worker keeps the names of the modules a district run imports: the user's cache folder, one
    file per Python version (names only; a name that no longer imports is skipped)."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "k12-orchestrator" / f"worker-modules-py{sys.version_info[0]}{sys.version_info[1]}.json"


def available() -> bool:
    """Whether this platform can run warm workers (fork, and pidfd to wait for several children at once)."""
    return hasattr(os, "fork") and hasattr(os, "pidfd_open")


@dataclass
class Exit:
    """How one district's process ended."""

    status: int | None = None
    """The raw wait status; None when the process could not be run or its end was not seen."""
    pid: int = 0
    max_rss_kib: int = 0
    refused: str = ""
    """Why the zygote would not fork this district (the parent starts it as a new process instead)."""
    lost: str = ""
    """Why the end was not seen (the zygote ended first); the district's process was killed."""
    timed_out: bool = False

    @property
    def exit_code(self) -> int:
        """The exit code a shell would show: the code, or 128 + signal number."""
        if self.status is None:
            return 1
        if os.WIFSIGNALED(self.status):
            return 128 + os.WTERMSIG(self.status)
        return os.waitstatus_to_exitcode(self.status)

    @property
    def signal_name(self) -> str:
        """The signal that ended the process (SIGSEGV, SIGKILL), or ''."""
        if self.status is not None and os.WIFSIGNALED(self.status):
            return signal.Signals(os.WTERMSIG(self.status)).name
        return ""


@dataclass
class _Slot:
    done: threading.Event = field(default_factory=threading.Event)
    exit: Exit = field(default_factory=Exit)


class WarmPool:
    """The parent's side: start the zygote, hand it districts from any thread, wait for each one's end."""

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        cwd: str | Path | None = None,
        cache: str | Path | None = None,
    ):
        cached = ["--modules-cache", str(cache)] if cache else []
        self._process = subprocess.Popen(
            [*command, WORKER_COMMAND, *cached],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=dict(env),
            cwd=cwd,
        )
        if self._process.stdin is None or self._process.stdout is None:
            raise OSError("the worker process has no pipes")
        self._orders, self._answers = self._process.stdin, self._process.stdout
        self._lock = threading.Lock()
        self._slots: dict[int, _Slot] = {}
        self._ids = itertools.count(1)
        self._gone = ""
        self._reader = threading.Thread(target=self._read, name="tenant-zygote-reader", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._process.pid

    def run(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: str, stdout: str, stderr: str, timeout: float
    ) -> Exit:
        """Run one district to its end (or kill it after `timeout` seconds) and say how it ended.

        `stdout` and `stderr` are files in a folder private to this district; its environment is handed to the
        child through a named pipe beside them."""
        slot = _Slot()
        pipe = stdout + ".environment"
        os.mkfifo(pipe, 0o600)
        request = {"argv": list(argv), "environment": pipe, "cwd": cwd, "stdout": stdout, "stderr": stderr}
        try:
            with self._lock:
                if self._gone:
                    return Exit(refused=self._gone)
                number = next(self._ids)
                self._slots[number] = slot
                try:
                    self._orders.write(json.dumps({"id": number, **request}).encode() + b"\n")
                    self._orders.flush()
                except OSError as exc:
                    self._slots.pop(number, None)
                    return Exit(refused=f"the worker process is gone ({exc.strerror})")
            _hand_over(pipe, json.dumps(dict(env)).encode(), slot.done, time.monotonic() + min(timeout, 600))
        finally:
            Path(pipe).unlink(missing_ok=True)
        if not slot.done.wait(timeout):
            if slot.exit.pid:
                _kill(slot.exit.pid)
            slot.done.wait(60)
            slot.exit.timed_out = True
        return slot.exit

    def _read(self) -> None:
        """Route the zygote's answers to the waiting districts; when it ends, end what it left running."""
        for line in self._answers:
            message = json.loads(line)
            with self._lock:
                slot = self._slots.get(message["id"])
            if slot is None:
                continue
            if "pid" in message:
                slot.exit.pid = message["pid"]
            else:
                slot.exit.status = message.get("status")
                slot.exit.max_rss_kib = message.get("max_rss_kib", 0)
                slot.exit.refused = message.get("refused", "")
                with self._lock:
                    self._slots.pop(message["id"], None)
                slot.done.set()
        code = self._process.wait()
        with self._lock:
            self._gone = f"the worker process ended (exit code {code})"
            left, self._slots = list(self._slots.values()), {}
        for slot in left:
            if slot.exit.pid:
                _kill(slot.exit.pid)
                slot.exit.lost = self._gone
            else:
                slot.exit.refused = self._gone
            slot.done.set()

    def close(self) -> None:
        """No more districts: the zygote waits for the running ones, then exits."""
        with contextlib.suppress(OSError):  # it is gone already; wait() below reaps it
            self._orders.close()
        self._process.wait()
        self._reader.join(timeout=5)


def _hand_over(pipe: str, payload: bytes, ended: threading.Event, deadline: float) -> None:
    """Write `payload` into the named pipe once the child opens it; give up if the child ended without opening it
    (refused, crashed) or by `deadline`. Nothing is written anywhere else."""
    while True:
        try:
            fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as exc:
            if exc.errno != errno.ENXIO or ended.is_set() or time.monotonic() > deadline:
                return  # no reader yet (ENXIO) is the only reason to wait
            time.sleep(0.005)
    try:
        os.set_blocking(fd, True)
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
    except BrokenPipeError:
        return  # the child died while reading: its end is reported by the worker
    finally:
        os.close(fd)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


# the zygote ------------------------------------------------------------------------------------------------
def serve(entry: Callable[[list[str]], Any], preload: Sequence[str] = (), cache: str | None = None) -> None:
    """Run the zygote on this process's stdin/stdout until stdin closes and every child has been reaped.

    `entry(argv)` runs one district in a forked child (the command line's `main`); its SystemExit is the exit
    code. `preload` and the names in `cache` are imported first; `cache` then receives the names of every module
    the zygote holds at the end. Nothing the zygote imports may print to the protocol channel: stdout is moved to
    stderr first.
    """
    inbox, outbox = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    os.close(null)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the districts (one process group) and they
    # stop; the zygote stays to report how each one ended
    for name in preload:
        _import(name)
    if cache:
        _import_all(_names(cache))
    selector = selectors.DefaultSelector()
    selector.register(inbox, selectors.EVENT_READ, None)
    children: dict[int, tuple[int, int, str]] = {}  # pidfd → (request id, pid, learned-modules file)
    pending = b""
    reading = True
    while reading or children:
        for key, _ in selector.select():
            if key.data is None:
                chunk = os.read(inbox, 1 << 16)
                if not chunk:
                    reading = False
                    selector.unregister(inbox)
                    continue
                pending += chunk
                while b"\n" in pending:
                    line, _, pending = pending.partition(b"\n")
                    _start(json.loads(line), entry, selector, children, outbox)
            else:
                number, pid, learned = children.pop(key.fd)
                selector.unregister(key.fd)
                os.close(key.fd)
                _, status, usage = os.wait4(pid, 0)
                names = _names(learned)  # read before the parent hears of the end and clears the folder
                Path(learned).unlink(missing_ok=True)
                _send(outbox, {"id": number, "status": status, "max_rss_kib": usage.ru_maxrss})
                _import_all(names)
    if cache:
        _remember(Path(cache))


def _start(
    request: dict[str, Any],
    entry: Callable[[list[str]], Any],
    selector: selectors.BaseSelector,
    children: dict[int, tuple[int, int, str]],
    outbox: int,
) -> None:
    threads = threading.active_count()
    if threads != 1:  # forking a process with other threads could copy a held lock: never
        _send(outbox, {"id": request["id"], "refused": f"the worker has {threads} threads; forking is unsafe"})
        return
    learned = request["stdout"] + ".modules"
    before = set(sys.modules)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for fd in [*selector.get_map(), outbox]:  # the zygote's channel and the other children's pidfds
                os.close(fd)
            selector.close()
            code = _child(request, entry, before, learned)
        finally:
            os._exit(code)
    pidfd = os.pidfd_open(pid)
    children[pidfd] = (request["id"], pid, learned)
    selector.register(pidfd, selectors.EVENT_READ, pid)
    _send(outbox, {"id": request["id"], "pid": pid})


def _child(request: dict[str, Any], entry: Callable[[list[str]], Any], before: set[str], learned: str) -> int:
    """In the forked child: become the district's process, run the command, list the modules it imported."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for fd, path, flags in (
        (0, os.devnull, os.O_RDONLY),
        (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
    ):
        opened = os.open(path, flags, 0o600)
        os.dup2(opened, fd)
        os.close(opened)
    environment = json.loads(Path(request["environment"]).read_bytes())  # blocks until the parent writes it
    os.environ.clear()
    os.environ.update(environment)
    os.chdir(request["cwd"])
    sys.argv = ["orchestrator", *request["argv"]]
    try:
        entry(list(request["argv"]))
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException:  # what a new process would do with an uncaught exception: print it, exit 1
        traceback.print_exc()
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 1
    try:
        Path(learned).write_text(json.dumps([name for name in sys.modules if name not in before]))
    except OSError:
        return code  # nothing learned from this district; the next one teaches
    return code


def _exit_code(code: object) -> int:
    """What `sys.exit(code)` would make the process exit with (a message is printed, then 1)."""
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)
    return 1


def _names(path: str) -> list[str]:
    """The module names a finished district (or the cache) lists; none when the file is missing or malformed."""
    try:
        names = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return []
    return [name for name in names if isinstance(name, str)] if isinstance(names, list) else []


def _import_all(names: list[str]) -> None:
    """Import what a finished district imported lazily (or a cache lists), so the next ones fork with it loaded."""
    for name in names:
        if name not in sys.modules and name != "__main__":
            _import(name)


def _remember(cache: Path) -> None:
    """Keep the names of the modules this zygote holds for the next run's zygote (written whole, then renamed)."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(f"{cache.name}.{os.getpid()}")
        partial.write_text(json.dumps([name for name in sys.modules if name != "__main__"]))
        os.replace(partial, cache)
    except OSError:
        return  # no cache: the next run learns again from its first districts


def _import(name: str) -> None:
    try:
        importlib.import_module(name)
    except Exception:  # a module that cannot be imported here is imported by the district itself, if at all
        return


def _send(outbox: int, message: dict[str, Any]) -> None:
    os.write(outbox, json.dumps(message).encode() + b"\n")
