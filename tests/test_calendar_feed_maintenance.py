"""Same-morning calendar changes reach `maintenance run` (issue 19 item 3).

The district calendar is a feed served by a local HTTP server. Between two `maintenance run --dry-run --at`
calls the district edits the feed: a make-up class day added on a break day closes the daytime window there,
and a snow day on a class day opens it. Each run refreshes the feed first (conditional GET, cached on disk).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from orchestrator.sandbox.district import generate
from orchestrator.sandbox.google_emulator import GoogleEmulator
from orchestrator.sandbox.graph_emulator import GraphEmulator

REPO = Path(__file__).resolve().parent.parent
FEED = REPO / "policies" / "calendars" / "prairie-valley-2026-27.ics"
MAINTENANCE = ("maintenance", "run", "--dry-run", "--at")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return


def event(uid: str, day: str, next_day: str, summary: str) -> str:
    return (
        f"BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:{day}\r\nDTEND;VALUE=DATE:{next_day}\r\n"
        f"DTSTAMP:20261124T053000Z\r\nUID:{uid}@pvisd.example\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\n"
    )


@pytest.fixture
def district(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    served = tmp_path / "served"
    served.mkdir()
    (served / "feed.ics").write_text(FEED.read_text())
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = tmp_path / "district"
    for name in ("policies", "inventory"):
        shutil.copytree(REPO / name, root / name)
    calendar = root / "policies" / "calendars" / "district-ics.yaml"
    text = calendar.read_text().replace(
        "  file: policies/calendars/prairie-valley-2026-27.ics",
        f"  url: http://127.0.0.1:{server.server_address[1]}/feed.ics\n  max_staleness: 12h",
    )
    rule = "    - match: make-up\n      means: class_day\n"
    calendar.write_text(text.replace("    - match: no school\n", rule + "    - match: no school\n"))
    windows = root / "policies" / "windows.yaml"
    windows.write_text(windows.read_text().replace("calendar: district-2026-27", "calendar: district-ics-2026-27"))
    seeded = generate(devices=120, seed=2026)
    google = GoogleEmulator(seeded, seed=2026).start()
    graph = GraphEmulator.start_local(seeded)
    (root / "orchestrator.yaml").write_text(
        f"journal: {root / 'journal.db'}\n"
        f"google:\n  directory_endpoint: {google.url}\n  policy_endpoint: {google.url}\n"
        f"intune:\n  graph_endpoint: {graph.url}\n"
    )
    try:
        yield root, served / "feed.ics"
    finally:
        server.shutdown()
        google.stop()
        graph.stop()


def rehearse(root: Path, at: str) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(root / "orchestrator.yaml"), *MAINTENANCE, at],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def add_to_feed(feed: Path, *events: str) -> None:
    feed.write_text(feed.read_text().replace("END:VCALENDAR", "".join(events) + "END:VCALENDAR"))


def test_a_make_up_day_added_to_the_feed_closes_the_window_at_the_next_run(district) -> None:
    root, feed = district
    assert "4 would run, 0 wait" in rehearse(root, "2026-11-25T09:00")  # Thanksgiving break: daytime window
    add_to_feed(feed, event("makeup-1", "20261125", "20261126", "Make-up Day (snow day Nov 18)"))
    after = rehearse(root, "2026-11-25T09:00")
    assert "0 would run, 4 wait" in after and "class day" in after


def test_a_snow_day_added_to_the_feed_opens_the_window_its_rules_allow(district) -> None:
    root, feed = district
    assert "0 would run, 4 wait" in rehearse(root, "2026-12-02T10:00")  # a Wednesday with students
    add_to_feed(feed, event("snow-1", "20261202", "20261203", "No School - Snow Day"))
    assert "4 would run, 0 wait" in rehearse(root, "2026-12-02T10:00")
