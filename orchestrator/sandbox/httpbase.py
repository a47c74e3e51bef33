"""What the Google and Graph emulators share: a threaded HTTP server, JSON replies, latency and faults.

Faults are injected per request, either queued one-shot (`FaultPlan.queue`, deterministic for tests) or
at a rate (`FaultPlan.rate`, seeded, for benchmarks and chaos runs). Every request is counted by
endpoint so tests and benchmarks can compare calls against the minimum the API limits allow.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Fault:
    """One injected failure. `status` 0 means a timeout: the server holds the request `delay` seconds."""

    status: int
    reason: str = ""
    retry_after: float | None = None
    delay: float = 0.0
    endpoint: str | None = None  # only requests to this endpoint (None: any)
    after_effect: bool = False  # apply the request, then fail (the client sees an error, state changed)
    # Google error body: "legacy" (error.errors[].reason), "details" (error.details[] google.rpc.ErrorInfo
    # only, as newer Google APIs answer), "both"; "" = the emulator's default for that API.
    style: str = ""


@dataclass
class FaultPlan:
    latency: float = 0.0
    rate: float = 0.0
    rate_faults: list[Fault] = field(default_factory=lambda: [Fault(429, "rateLimitExceeded", 0.05)])
    queue: deque[Fault] = field(default_factory=deque)
    seed: int = 7

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def next_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self.queue):
                if fault.endpoint in (None, endpoint):
                    del self.queue[i]
                    return fault
            if self.rate and self._rng.random() < self.rate:
                return self._rng.choice(self.rate_faults)
        return None


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]):
        super().__init__(address, handler)
        self.faults = FaultPlan()
        self.calls: Counter[str] = Counter()
        self.state_lock = threading.RLock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(target=self.serve_forever, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def reset_counts(self) -> None:
        self.calls.clear()


class JsonHandler(BaseHTTPRequestHandler):
    """Base handler: read JSON bodies, write JSON replies, apply latency and faults, count calls."""

    server: EmulatorServer
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16  # one write per reply: unbuffered keep-alive replies stall on delayed ACKs
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def read_json(self) -> Any:
        body = self.read_body()
        return json.loads(body) if body else {}

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def send_raw(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def begin(self, endpoint: str) -> Fault | None:
        """Count the call, sleep the latency, and return the fault to inject (if any)."""
        self.server.calls[endpoint] += 1
        if self.server.faults.latency:
            time.sleep(self.server.faults.latency)
        fault = self.server.faults.next_fault(endpoint)
        if fault is not None and fault.status == 0:
            time.sleep(fault.delay or 5.0)
        return fault
