"""Published iCalendar feeds (`ics.url`): conditional fetches into an on-disk cache, and whether a copy is usable.

Districts change their calendar during the year (a snow day at 05:30, a make-up day in February), so a
`SchoolCalendar` may name the feed's URL instead of a committed file. This module is the only place that
talks to the network for calendars:

- `refresh_feed` sends a conditional GET (`If-None-Match` / `If-Modified-Since` from the last answer). A 200
  with a parseable calendar replaces the cached copy; a 304 confirms it. Either counts as a successful fetch
  and moves `fetched_at`. A failure (network, HTTP error, not iCalendar, or a feed that suddenly lost most
  of its events) keeps the previous copy and records the error; `fetched_at` does not move.
- `load_feed` hands the cached copy to the calendar together with a `problem` when it must not be trusted:
  never fetched, or last fetched longer ago than the source's `max_staleness`. A calendar with a problem
  resolves every day as unknown, which closes every disruptive window with that reason (fail closed).

Staleness is always measured against the wall clock (`clock`), never against a rehearsed `--at` time.
The cache is one folder (default `<config dir>/.orchestrator/calendars`): per feed a `<key>.ics` with the
last good body and a `<key>.json` record (`FeedRecord`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import icalendar

from orchestrator.policy.models import IcsSource

__all__ = [
    "CACHE_ENV",
    "FeedCopy",
    "FeedRecord",
    "RefreshResult",
    "default_cache_dir",
    "event_count",
    "load_feed",
    "read_record",
    "refresh_due",
    "refresh_feed",
]

Clock = Callable[[], dt.datetime]
MAX_BYTES = 10 * 1024 * 1024
"""A school calendar is kilobytes; anything past this is not one."""
MIN_KEPT_FRACTION = 0.5
"""A new body with fewer than this fraction of the cached copy's events is treated as broken."""
MIN_EVENTS_FOR_LOSS_CHECK = 4
TIMEOUT_SECONDS = 20.0
USER_AGENT = "k12-orchestrator calendar refresh"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


CACHE_ENV = "ORCHESTRATOR_CALENDAR_CACHE"


def default_cache_dir(repo_root: Path | str) -> Path:
    """`$ORCHESTRATOR_CALENDAR_CACHE` (relative to the config dir) or `<config dir>/.orchestrator/calendars`.

    One default for every caller (gates, `windows`, `calendar refresh`), so they all read the same copy.
    """
    configured = os.environ.get(CACHE_ENV)
    return Path(repo_root) / (configured or Path(".orchestrator") / "calendars")


@dataclass(frozen=True)
class FeedRecord:
    """What the cache knows about one feed; `fetched_at` is the last successful fetch (200 or 304)."""

    url: str
    fetched_at: dt.datetime | None = None
    attempted_at: dt.datetime | None = None
    etag: str | None = None
    last_modified: str | None = None
    events: int = 0
    error: str = ""

    def to_json(self) -> str:
        raw = asdict(self)
        for key in ("fetched_at", "attempted_at"):
            raw[key] = raw[key].isoformat() if raw[key] else None
        return json.dumps(raw, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FeedRecord:
        raw = json.loads(text)
        for key in ("fetched_at", "attempted_at"):
            raw[key] = dt.datetime.fromisoformat(raw[key]) if raw.get(key) else None
        return cls(**{k: raw.get(k) for k in cls.__dataclass_fields__ if k in raw})


@dataclass(frozen=True)
class RefreshResult:
    """One refresh attempt: `updated` (new body), `not_modified` (304), or `failed` (cache kept)."""

    url: str
    outcome: Literal["updated", "not_modified", "failed"]
    message: str
    record: FeedRecord


@dataclass(frozen=True)
class FeedCopy:
    """The cached body of a feed for the calendar, and why it must not be trusted ("" = usable)."""

    url: str
    content: bytes | None
    record: FeedRecord | None
    problem: str


def _paths(cache_dir: Path, url: str) -> tuple[Path, Path]:
    key = hashlib.sha256(url.encode()).hexdigest()[:24]
    return cache_dir / f"{key}.ics", cache_dir / f"{key}.json"


def _write_atomic(path: Path, data: bytes) -> None:
    """Temp file then rename, so a concurrent reader sees the old copy or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_record(cache_dir: Path, url: str) -> FeedRecord | None:
    """The cache record of `url`, or None when it was never fetched (or the record is unreadable)."""
    _, meta = _paths(cache_dir, url)
    try:
        return FeedRecord.from_json(meta.read_text())
    except (OSError, ValueError, TypeError):
        return None


def event_count(content: bytes) -> int:
    """VEVENTs that are not cancelled (series counted once): how much calendar a body holds."""
    calendar = icalendar.Calendar.from_ical(content)
    return sum(1 for e in calendar.walk("VEVENT") if str(e.get("STATUS", "")).upper() != "CANCELLED")


def _loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in {"127.0.0.1", "::1", "localhost"}


def _allowed_final_url(url: str) -> bool:
    scheme = urlsplit(url).scheme
    return scheme == "https" or (scheme == "http" and _loopback(url))


def _get(url: str, headers: dict[str, str], timeout: float) -> tuple[int, bytes, dict[str, str], str]:
    """(status, body, headers, final url). 304 comes back as a status, not an exception."""
    handlers: list[urllib.request.BaseHandler] = []
    if _loopback(url):  # a local test server must never go through a configured proxy
        handlers.append(urllib.request.ProxyHandler({}))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **headers})
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read(MAX_BYTES + 1)
            return response.status, body, dict(response.headers.items()), response.geturl()
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return 304, b"", dict(exc.headers.items()), url
        raise


def refresh_feed(
    url: str,
    cache_dir: Path,
    *,
    clock: Clock = _utcnow,
    timeout: float = TIMEOUT_SECONDS,
    accept_fewer_events: bool = False,
) -> RefreshResult:
    """Fetch `url` now with a conditional request and update the cache; never raises for a bad feed.

    `accept_fewer_events` takes a body that lost most of the cached copy's events (a person checked it).
    """
    now = clock()
    ics_path, meta_path = _paths(cache_dir, url)
    previous = read_record(cache_dir, url) if ics_path.exists() else None
    headers: dict[str, str] = {}
    if previous is not None and previous.etag:
        headers["If-None-Match"] = previous.etag
    if previous is not None and previous.last_modified:
        headers["If-Modified-Since"] = previous.last_modified
    base = previous or FeedRecord(url=url)

    def failed(message: str) -> RefreshResult:
        record = replace(base, attempted_at=now, error=message)
        _write_atomic(meta_path, record.to_json().encode())
        return RefreshResult(url, "failed", message, record)

    try:
        status, body, answer, final_url = _get(url, headers, timeout)
    except urllib.error.HTTPError as exc:
        return failed(f"HTTP {exc.code} {exc.reason}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return failed(f"cannot fetch: {reason}")
    if not _allowed_final_url(final_url):
        return failed(f"redirected to {final_url}, which is not https")
    if status == 304:
        if previous is None:
            return failed("the server answered 304 Not Modified but nothing is cached")
        record = replace(previous, fetched_at=now, attempted_at=now, error="")
        _write_atomic(meta_path, record.to_json().encode())
        return RefreshResult(url, "not_modified", "not modified (304)", record)
    if status != 200:
        return failed(f"HTTP {status}")
    if len(body) > MAX_BYTES:
        return failed(f"larger than {MAX_BYTES} bytes; not a school calendar")
    try:
        events = event_count(body)
    except Exception as exc:  # icalendar raises many types for bad input
        return failed(f"not an iCalendar feed: {str(exc)[:200]}")
    if not accept_fewer_events and _lost_most(previous, events):
        return failed(
            f"the feed now has {events} event(s) where the cached copy has {previous.events}; a calendar "  # type: ignore[union-attr]
            "that loses most of its events is treated as broken (cached copy kept; `orchestrator calendar refresh "
            "--accept-fewer-events` takes it)"
        )
    record = FeedRecord(
        url=url,
        fetched_at=now,
        attempted_at=now,
        etag=answer.get("ETag") or answer.get("Etag"),
        last_modified=answer.get("Last-Modified"),
        events=events,
    )
    _write_atomic(ics_path, body)
    _write_atomic(meta_path, record.to_json().encode())
    return RefreshResult(url, "updated", f"updated ({events} events)", record)


def _lost_most(previous: FeedRecord | None, events: int) -> bool:
    """An empty or mostly empty body replacing a real calendar is a publishing accident, not a school year."""
    if previous is None or previous.events < MIN_EVENTS_FOR_LOSS_CHECK:
        return False
    return events < previous.events * MIN_KEPT_FRACTION


def refresh_due(record: FeedRecord | None, now: dt.datetime, min_interval: dt.timedelta) -> bool:
    """A feed is due when it was never tried, or its last attempt is at least `min_interval` old."""
    if record is None or record.attempted_at is None:
        return True
    return now - record.attempted_at >= min_interval


def _age(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // 1440} days"


def load_feed(source: IcsSource, cache_dir: Path, *, clock: Clock = _utcnow) -> FeedCopy:
    """The cached copy of `source.url` and, when it must not be trusted, the reason (fail closed)."""
    url = source.url or ""
    ics_path, _ = _paths(cache_dir, url)
    record = read_record(cache_dir, url)
    try:
        content = ics_path.read_bytes()
    except OSError:
        content = None
    if content is None or record is None or record.fetched_at is None:
        why = f"; last attempt: {record.error}" if record is not None and record.error else ""
        return FeedCopy(url, None, record, f"calendar feed {url} was never fetched successfully{why}")
    age = clock() - record.fetched_at
    if age > source.staleness:
        why = f"; last attempt failed: {record.error}" if record.error else ""
        return FeedCopy(
            url,
            content,
            record,
            f"calendar feed {url} is stale: last fetched {record.fetched_at:%Y-%m-%d %H:%M %Z} ({_age(age)} ago, "
            f"max_staleness {source.max_staleness or '24h'}){why}",
        )
    return FeedCopy(url, content, record, "")
