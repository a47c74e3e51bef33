"""The principals' site in a real browser: Debian's headless Chromium, driven over the DevTools protocol.

Chromium is started with --remote-debugging-pipe (DevTools messages on fds 3 and 4, no port, no network) and
the closed-network flags. Every page is loaded from file:// at a desktop and a phone width: no console error,
no uncaught exception, no failed load, no horizontal scrolling on the phone, and each calendar SVG holds the
class days of the sample's 2026-27 school year, the one of the report's day (as SchoolDays counts them).
Screenshots go to the test's temp folder; with ORCHESTRATOR_UPDATE_SCREENSHOTS=1 they also replace
docs/img/site-*.png (what the README shows).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from test_site import built, school_days  # noqa: F401  (the generated site, shared with test_site.py)

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parent.parent
DESKTOP = (1280, 900)
PHONE = (390, 844)
SCREENSHOTS = {("lockdown", PHONE): "site-lockdown-phone.png", ("calendar", DESKTOP): "site-calendar-desktop.png"}

if not CHROMIUM.exists():
    if os.geteuid() == 0:
        raise RuntimeError("/usr/bin/chromium is missing although we run as root: scripts/test.sh installs it")
    pytest.skip(
        "Debian's chromium is not installed and we are not root to install it (scripts/test.sh does, as root)",
        allow_module_level=True,
    )


class Browser:
    """Headless Chromium with one page, spoken to over --remote-debugging-pipe (NUL-separated JSON)."""

    def __init__(self, profile: Path):
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:  # the child reads commands on fd 3 and writes replies on fd 4
            # copies first: a pipe may already be fd 3 or 4, and dup2 onto itself would keep it close-on-exec
            read, write = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(read, 3)
            os.dup2(write, 4)

        flags = "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking"
        flags += " --disable-component-update --disable-sync --hide-scrollbars --remote-debugging-pipe"
        self.proc = subprocess.Popen(
            [str(CHROMIUM), *flags.split(), f"--user-data-dir={profile}", "about:blank"],
            preexec_fn=wire,
            close_fds=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=True)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, *, session: bool = False, timeout: float = 30, **params: Any) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._read(deadline))

    def load(self, url: str, size: tuple[int, int]) -> None:
        width, height = size
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=width < 600,
        )
        self.events.clear()
        self.call("Page.navigate", session=True, url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        return result["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and failed loads since the last `load`."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                found.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                found.append(f"log {params['entry']['level']}: {params['entry']['text']}")
        return found

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.call("Browser.close", timeout=10)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child)
        os.close(self._from_child)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    opened = Browser(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield opened
    finally:
        opened.close()


@pytest.mark.slow
@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("page", ["index", "calendar", "lockdown", "techcheck", "plan"])
def test_pages_load_without_errors_and_fit_the_width(built, browser: Browser, page: str, size, tmp_path: Path) -> None:  # noqa: F811
    _, _, site = built
    browser.load((site / f"{page}.html").as_uri(), size)
    assert browser.problems() == []
    assert browser.evaluate("document.querySelector('h1').textContent")
    overflow = browser.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page}.html scrolls sideways by {overflow}px at {size[0]}px wide"
    shot = tmp_path / f"{page}-{size[0]}.png"
    browser.screenshot(shot)
    assert shot.stat().st_size > 1000
    name = SCREENSHOTS.get((page, size))
    if name and os.environ.get("ORCHESTRATOR_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shot, REPO / "docs" / "img" / name)


@pytest.mark.slow
def test_the_rendered_calendar_shows_the_sample_years_class_days(built, browser: Browser) -> None:  # noqa: F811
    repo, data, site = built
    days = school_days(repo)
    browser.load((site / "calendar.html").as_uri(), DESKTOP)
    shown = browser.evaluate(
        "Array.from(document.querySelectorAll('svg.calendar')).map(s => ["
        " s.id, s.querySelectorAll('rect[data-kind=class_day]').length,"
        " s.getBoundingClientRect().width > 300, s.dataset.schoolYear])"
    )
    expected = {f"cal-district-2026-27-{y.school.replace(' ', '-')}": y for y in data.years}
    assert {sid for sid, _, _, _ in shown} == set(expected)
    for sid, count, visible, label in shown:
        year = expected[sid]
        assert count == days.class_days_between(
            year.first, year.last, None if "district" in year.school else year.school
        )
        assert visible, f"{sid} is not drawn at a readable size"
        assert label == "2026-27", f"{sid} draws {label}, not the school year of the report's day"
    district = next(count for sid, count, _, _ in shown if sid.endswith("whole-district"))
    assert district == days.class_days_between(dt.date(2026, 8, 1), dt.date(2027, 5, 31)) == 180  # 2026-27 only


@pytest.mark.slow
def test_the_harness_sees_console_errors_failed_loads_and_exceptions(browser: Browser, tmp_path: Path) -> None:
    """A page that logs an error, loads a missing image and throws: all three are caught (no vacuous pass)."""
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html lang="en"><title>x</title><h1>x</h1><img src="missing.png" alt="">'
        '<script>console.error("boom"); null.x;</script></html>'
    )
    browser.load(page.as_uri(), PHONE)
    found = " | ".join(browser.problems())
    assert "ERR_FILE_NOT_FOUND" in found and "boom" in found and "exception" in found
