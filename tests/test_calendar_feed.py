"""Calendar feeds by URL (issue 19 items 1-3): conditional fetches, a disk cache, fail closed when stale or
broken, and same-morning changes, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import hashlib
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from orchestrator.cli import main
from orchestrator.core.resources import Change, GateFacts, ResourceId
from orchestrator.engine.gates import gate_destructive
from orchestrator.policy.loader import load_policies
from orchestrator.policy.models import IcsSource, SchoolCalendar
from orchestrator.schooltime.calendar import SchoolDays
from orchestrator.schooltime.feeds import load_feed, read_record, refresh_feed
from orchestrator.schooltime.windows import build_window_schedules

TZ = ZoneInfo("America/Chicago")
UTC = dt.UTC
D = dt.date.fromisoformat


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


def vevent(uid: str, first: str, last: str, summary: str, extra: str = "") -> str:
    """An all-day event from `first` to `last` inclusive (DTEND exclusive, as published)."""
    end = (D(first) if not last else D(last)) + dt.timedelta(days=1)
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}@pvisd.example",
        "DTSTAMP:20260601T120000Z",
        f"DTSTART;VALUE=DATE:{first.replace('-', '')}",
        f"DTEND;VALUE=DATE:{end.strftime('%Y%m%d')}",
        f"SUMMARY:{summary}",
        *([extra] if extra else []),
        "END:VEVENT",
    ]
    return "\r\n".join(lines)


BASE_EVENTS = [
    vevent("first", "2026-08-13", "", "First Day of School"),
    vevent("labor", "2026-09-07", "", "No School - Labor Day"),
    vevent("thanks", "2026-11-25", "2026-11-27", "Thanksgiving Break - No School"),
    vevent("winter", "2026-12-19", "2027-01-05", "Winter Break - No School"),
    vevent("mlk", "2027-01-18", "", "No School - MLK Day"),
    vevent("presidents", "2027-02-15", "", "No School - Presidents Day"),
    vevent("spring", "2027-03-15", "2027-03-19", "Spring Break - No School"),
    vevent("last", "2027-05-27", "", "Last Day of School"),
]


def ics(events: list[str]) -> bytes:
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Prairie Valley//EN\r\nX-WR-TIMEZONE:America/Chicago\r\n"
    return (head + "\r\n".join(events) + "\r\nEND:VCALENDAR\r\n").encode()


class FeedServer:
    """A published calendar on 127.0.0.1: ETag and Last-Modified, 304 on a matching conditional request."""

    def __init__(self) -> None:
        self.body = ics(BASE_EVENTS)
        self.status = 200
        self.content_type = "text/calendar"
        self.requests: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(dict(self.headers.items()))
                etag = '"' + hashlib.sha256(server.body).hexdigest()[:16] + '"'
                if server.status != 200:
                    self.send_response(server.status)
                    self.end_headers()
                    return
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", server.content_type)
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", "Tue, 24 Nov 2026 11:30:00 GMT")
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/district.ics"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, events: list[str]) -> None:
        self.body = ics(events)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.stop()


RULES = [
    ("no school", "no_students"),
    ("make-up day", "class_day"),
    ("first day of school", "first_day"),
    ("last day of school", "last_day"),
]


def _rules(indent: str, rules: list[tuple[str, str]]) -> str:
    return "".join(f"{indent}- match: {match}\n{indent}  means: {means}\n" for match, means in rules)


def district(tmp_path: Path, url: str, *, staleness: str = "12h", school_feed: str | None = None) -> Path:
    """A repository with one feed-backed calendar (terms from the feed) and two windows."""
    folder = tmp_path / "policies"
    folder.mkdir(exist_ok=True)
    calendar = (
        "kind: SchoolCalendar\nname: district\ntimezone: America/Chicago\n"
        f"ics:\n  url: {url}\n  max_staleness: {staleness}\n  rules:\n" + _rules("    ", RULES)
    )
    if school_feed:
        calendar += (
            f"schools:\n  lincoln-elementary:\n    ics:\n      url: {school_feed}\n"
            f"      max_staleness: {staleness}\n      rules:\n" + _rules("        ", RULES[:1])
        )
    (folder / "calendar.yaml").write_text(calendar)
    (folder / "windows.yaml").write_text(
        textwrap.dedent(
            """
            kind: MaintenanceWindow
            name: overnight
            calendar: district
            times: ["22:00-05:00"]
            days: nights_before_non_class_days
            ---
            kind: MaintenanceWindow
            name: daytime
            calendar: district
            times: ["07:00-18:00"]
            days: non_class_days
            """
        )
    )
    return tmp_path


def schedules(repo: Path, clock: dt.datetime | None = None, **kwargs: object) -> dict:
    policies = load_policies(repo / "policies")
    return build_window_schedules(policies, repo, clock=(lambda: clock) if clock else None, **kwargs)


def test_refresh_caches_the_feed_and_then_asks_conditionally(tmp_path: Path, feed: FeedServer) -> None:
    cache = tmp_path / "cache"
    t0 = dt.datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
    first = refresh_feed(feed.url, cache, clock=lambda: t0)
    assert first.outcome == "updated" and first.record.events == len(BASE_EVENTS)
    assert "If-None-Match" not in feed.requests[0]
    second = refresh_feed(feed.url, cache, clock=lambda: t0 + dt.timedelta(hours=1))
    assert second.outcome == "not_modified"
    assert feed.requests[1]["If-None-Match"] == first.record.etag
    assert feed.requests[1]["If-Modified-Since"] == "Tue, 24 Nov 2026 11:30:00 GMT"
    record = read_record(cache, feed.url)
    assert record is not None and record.fetched_at == t0 + dt.timedelta(hours=1)


def test_same_morning_make_up_day_closes_a_window_and_snow_day_opens_one(tmp_path: Path, feed: FeedServer) -> None:
    repo = district(tmp_path, feed.url)
    before = schedules(repo)
    assert before["daytime"].is_open(at("2027-02-13 10:00")).open  # a Saturday
    assert not before["daytime"].is_open(at("2027-02-03 10:00")).open  # a Wednesday in term
    assert not before["overnight"].is_open(at("2027-02-02 23:00")).open

    # 05:30: the district adds a snow day for today and a make-up Saturday, and republishes the feed
    feed.publish(
        [
            *BASE_EVENTS,
            vevent("snow", "2027-02-03", "", "No School - Snow Day"),
            vevent("makeup", "2027-02-13", "", "Make-up Day (classes in session)"),
        ]
    )
    after = schedules(repo)
    saturday = after["daytime"].is_open(at("2027-02-13 10:00"))
    assert not saturday.open and "Make-up Day" in saturday.reason
    snow = after["daytime"].is_open(at("2027-02-03 10:00"))
    assert snow.open and "Snow Day" in snow.reason
    assert after["overnight"].is_open(at("2027-02-02 23:00")).open


def test_terms_come_from_the_feeds_first_and_last_day_events(tmp_path: Path, feed: FeedServer) -> None:
    repo = district(tmp_path, feed.url)
    days = schedules(repo)["daytime"].days
    assert [(t.first_day, t.last_day) for t in days.terms] == [(D("2026-08-13"), D("2027-05-27"))]
    assert days.day(D("2026-08-12")).kind == "unknown"
    assert days.day(D("2027-05-28")).reason == "after the calendar's last known day 2027-05-27"


def test_a_stale_cache_with_a_dead_feed_closes_every_window_with_the_reason(tmp_path: Path, feed: FeedServer) -> None:
    repo = district(tmp_path, feed.url, staleness="12h")
    t0 = dt.datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
    assert schedules(repo, t0)["daytime"].is_open(at("2026-11-26 10:00")).open  # Thanksgiving
    feed.status = 503
    # 6 hours later the feed is down but the copy is young enough: the windows still follow it
    assert schedules(repo, t0 + dt.timedelta(hours=6))["daytime"].is_open(at("2026-11-26 10:00")).open
    # 13 hours later it is too old: every window closes, and says why
    late = schedules(repo, t0 + dt.timedelta(hours=13))
    for name in ("daytime", "overnight"):
        state = late[name].is_open(at("2026-11-26 10:00" if name == "daytime" else "2026-11-25 23:00"))
        assert not state.open
        assert "is stale" in state.reason and "HTTP 503" in state.reason, state.reason
    assert late["daytime"].next_open(at("2026-11-26 10:00")) is None


def test_a_feed_never_fetched_keeps_every_window_closed(tmp_path: Path) -> None:
    repo = district(tmp_path, "http://127.0.0.1:9/nothing.ics")
    state = schedules(repo)["daytime"].is_open(at("2026-11-26 10:00"))
    assert not state.open and "never fetched successfully" in state.reason and "cannot fetch" in state.reason


def test_a_feed_that_suddenly_loses_most_events_is_broken_and_the_cache_is_kept(
    tmp_path: Path, feed: FeedServer
) -> None:
    cache = tmp_path / "cache"
    refresh_feed(feed.url, cache)
    feed.publish([BASE_EVENTS[0]])  # an almost empty calendar published by mistake
    result = refresh_feed(feed.url, cache)
    assert result.outcome == "failed" and "has 1 event(s) where the cached copy has 8" in result.message
    source = IcsSource(url=feed.url, rules=[{"match": "no school", "means": "no_students"}])
    copy = load_feed(source, cache)
    assert copy.problem == "" and b"Thanksgiving" in (copy.content or b"")
    taken = refresh_feed(feed.url, cache, accept_fewer_events=True)
    assert taken.outcome == "updated"


def test_an_html_error_page_is_not_a_calendar(tmp_path: Path, feed: FeedServer) -> None:
    feed.body = b"<html><body>Calendar temporarily unavailable</body></html>"
    result = refresh_feed(feed.url, tmp_path / "cache")
    assert result.outcome == "failed" and "not an iCalendar feed" in result.message


def test_feed_urls_are_https_or_loopback_http_without_credentials() -> None:
    rules = [{"match": "no school", "means": "no_students"}]
    IcsSource(url="https://calendar.example.org/district.ics", rules=rules, max_staleness="12h")
    IcsSource(url="http://127.0.0.1:8080/district.ics", rules=rules)
    for bad in ("http://calendar.example.org/d.ics", "file:///etc/passwd", "https://u:p@calendar.example.org/"):
        with pytest.raises(ValidationError):
            IcsSource(url=bad, rules=rules)
    with pytest.raises(ValidationError, match="exactly one of file or url"):
        IcsSource(url="https://calendar.example.org/d.ics", file="policies/x.ics", rules=rules)
    with pytest.raises(ValidationError):
        IcsSource(url="https://calendar.example.org/d.ics", rules=rules, max_staleness="soon")


def test_a_schools_own_feed_adds_its_days_and_fails_closed_for_that_school_only(
    tmp_path: Path, feed: FeedServer
) -> None:
    school = FeedServer()
    try:
        school.publish([vevent("lincoln-pd", "2027-02-10", "", "No School - Lincoln PD day")])
        repo = district(tmp_path, feed.url, school_feed=school.url)
        t0 = dt.datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
        built = schedules(repo, t0)
        assert built["daytime"].is_open(at("2027-02-10 10:00"), "lincoln-elementary").open
        assert not built["daytime"].is_open(at("2027-02-10 10:00"), "jefferson-high").open
        school.status = 500
        late = schedules(repo, t0 + dt.timedelta(hours=13), refresh=False)
        refresh_feed(feed.url, repo / ".orchestrator" / "calendars", clock=lambda: t0 + dt.timedelta(hours=13))
        late = schedules(repo, t0 + dt.timedelta(hours=13), refresh=False)
        lincoln = late["daytime"].is_open(at("2026-11-26 10:00"), "lincoln-elementary")
        assert not lincoln.open and "lincoln-elementary" in lincoln.reason and "stale" in lincoln.reason
        assert late["daytime"].is_open(at("2026-11-26 10:00"), "jefferson-high").open
    finally:
        school.stop()


def test_calendar_refresh_command_fetches_and_exits_1_on_a_failed_feed(tmp_path: Path, feed: FeedServer) -> None:
    repo = district(tmp_path, feed.url)
    (repo / "inventory").mkdir()
    (repo / "orchestrator.yaml").write_text("timezone: America/Chicago\n")
    config = ["--config", str(repo / "orchestrator.yaml")]
    ok = CliRunner().invoke(main, [*config, "calendar", "refresh"])
    assert ok.exit_code == 0, ok.output
    assert "updated (8 events)" in ok.output
    again = CliRunner().invoke(main, [*config, "calendar", "refresh"])
    assert "not modified (304)" in again.output
    feed.status = 500
    failed = CliRunner().invoke(main, [*config, "calendar", "refresh"])
    assert failed.exit_code == 1 and "HTTP" in failed.output and "500" in failed.output
    shown = CliRunner().invoke(main, [*config, "windows", "--at", "2026-11-26T10:00"])
    assert shown.exit_code == 0 and "feed refresh failed" in shown.output and "open" in shown.output


def test_school_days_read_a_cached_feed_given_a_cache_dir(tmp_path: Path, feed: FeedServer) -> None:
    cache = tmp_path / "elsewhere"
    refresh_feed(feed.url, cache)
    model = SchoolCalendar.model_validate(
        {
            "kind": "SchoolCalendar",
            "name": "district",
            "timezone": "America/Chicago",
            "ics": {"url": feed.url, "rules": [{"match": "no school", "means": "no_students"}]},
            "terms": [{"name": "Year", "first_day": "2026-08-13", "last_day": "2027-05-27"}],
        }
    )
    days = SchoolDays(model, tmp_path, cache_dir=cache)
    assert days.problem == "" and days.day(D("2026-11-26")).kind == "no_students"


def test_the_gate_defers_every_reimage_with_the_stale_feed_reason(tmp_path: Path, feed: FeedServer) -> None:
    repo = district(tmp_path, feed.url, staleness="12h")
    t0 = dt.datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
    schedules(repo, t0)
    feed.status = 503
    windows = schedules(repo, t0 + dt.timedelta(hours=13))
    changes = [
        Change(
            id=ResourceId("google", "reimage", serial),
            op="action",
            before=None,
            after="wipe_users",
            policy="lab-reset",
            window=window,
            destructive=True,
            gate=GateFacts(policy="lab-reset", window=window, serial=serial, school=None, method="wipe_users"),
        )
        for serial, window in (("SN1", "daytime"), ("SN2", "overnight"))
    ]
    # Thanksgiving: both windows would be open at these times with a fresh calendar
    for change, when in zip(changes, (at("2026-11-26 10:00"), at("2026-11-25 23:00")), strict=True):
        [decision] = gate_destructive(
            [change], now=when, windows=windows, used_in_window=lambda usage: 0, max_destructive=None
        )
        assert not decision.allowed and decision.next_open is None
        assert "is stale" in decision.reason and "HTTP 503" in decision.reason, decision.reason
