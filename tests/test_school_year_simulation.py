"""A whole school year of reimage requests through the safety gate, ticking like `maintenance run`.

The district calendar has holidays, breaks, a state testing week, a school with AP exams and a make-up day,
and two snow days that the district adds mid-year (the calendar is edited at that moment and the schedules
rebuilt, as a re-deploy would). Requests arrive on school days, some days none, some bursts far over
capacity. Every 15 minutes (jumping ahead while nothing can happen) the loop calls `gate_destructive` with
a journal of what was done and "executes" what it allows.

The expectations are computed independently of orchestrator.schooltime.calendar/windows, from plain date sets: when a
window is open, which interval an action falls in, and which interval each request must be finished in
(first-come first-served: a request is done in the first open interval of its window, for its school, that
still has capacity for it once every earlier request has been served).
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from orchestrator.core.resources import Change, GateFacts, ResourceId
from orchestrator.engine.gates import Usage, gate_destructive
from orchestrator.policy.models import DayRange, MaintenanceWindow, SchoolCalendar
from orchestrator.schooltime.calendar import SchoolDays
from orchestrator.schooltime.windows import WindowSchedule

TZ = ZoneInfo("America/Chicago")
UTC = dt.UTC
D = dt.date.fromisoformat
TICK = dt.timedelta(minutes=15)
MAX_DESTRUCTIVE = 30
SCHOOLS = ("jefferson-high", "lincoln-elementary", "roosevelt-middle")
TERMS = [("Fall semester", D("2026-08-13"), D("2026-12-18")), ("Spring semester", D("2027-01-06"), D("2027-05-27"))]
NO_SCHOOL = [
    ("2026-09-07", "2026-09-07", "Labor Day"),
    ("2026-10-12", "2026-10-12", "Fall holiday"),
    ("2026-11-25", "2026-11-27", "Thanksgiving break"),
    ("2026-12-21", "2027-01-04", "Winter break"),
    ("2027-01-18", "2027-01-18", "Martin Luther King Jr. Day"),
    ("2027-02-15", "2027-02-15", "Presidents Day"),
    ("2027-03-15", "2027-03-19", "Spring break"),
    ("2027-04-02", "2027-04-02", "Spring holiday"),
]
STAFF_ONLY = ["2026-10-09", "2027-01-05"]
STATE_TESTING = ("2027-04-19", "2027-04-23")
AP_EXAMS = ("2027-05-03", "2027-05-14")  # jefferson-high only
JEFFERSON_MAKE_UP = "2027-02-15"  # jefferson-high holds classes on Presidents Day
SNOW_EDITS = [  # (when the district edits the calendar, the snow day it adds)
    (dt.datetime(2027, 2, 2, 15, 0, tzinfo=TZ), D("2027-02-03")),
    (dt.datetime(2027, 2, 3, 15, 0, tzinfo=TZ), D("2027-02-04")),
]
BLACKOUT_DAYS_BEFORE_TERM = 3
POLICIES = {  # policy → (window, max devices per window interval)
    "cart-refresh": ("overnight", 25),
    "lab-reset": ("break-days", 40),
}
START = dt.datetime(2026, 8, 1, 0, 0, tzinfo=TZ)
END = dt.datetime(2027, 7, 31, 0, 0, tzinfo=TZ)


def _dates(first: str, last: str) -> set[dt.date]:
    a, b = D(first), D(last)
    return {a + dt.timedelta(days=i) for i in range((b - a).days + 1)}


# --- the policies under test ------------------------------------------------------------------------------


def _with_snow(snow: list[dt.date]) -> SchoolCalendar:
    base = SchoolCalendar.model_validate(
        {
            "kind": "SchoolCalendar",
            "name": "district",
            "timezone": "America/Chicago",
            "terms": [{"name": n, "first_day": a, "last_day": b} for n, a, b in TERMS],
            "no_school": [{"from": a, "to": b, "reason": r} for a, b, r in NO_SCHOOL],
            "staff_only": [{"date": d, "reason": "Teacher workday"} for d in STAFF_ONLY],
            "testing_days": [{"from": STATE_TESTING[0], "to": STATE_TESTING[1], "reason": "State testing"}],
            "schools": {
                "jefferson-high": {
                    "testing_days": [{"from": AP_EXAMS[0], "to": AP_EXAMS[1], "reason": "AP exams"}],
                    "class_days": [{"date": JEFFERSON_MAKE_UP, "reason": "Jefferson make-up day"}],
                }
            },
        }
    )
    extra = [DayRange.model_validate({"date": d, "reason": "Snow day"}) for d in snow]
    return base.model_copy(update={"no_school": [*base.no_school, *extra]})


def schedules(snow: list[dt.date]) -> dict[str, WindowSchedule]:
    days = SchoolDays(_with_snow(snow))
    blackouts = {"days_before_term_start": BLACKOUT_DAYS_BEFORE_TERM, "testing_days": True}
    overnight = MaintenanceWindow.model_validate(
        {
            "kind": "MaintenanceWindow",
            "name": "overnight",
            "calendar": "district",
            "times": ["22:00-05:00"],
            "days": "nights_before_non_class_days",
            "blackouts": blackouts,
        }
    )
    break_days = MaintenanceWindow.model_validate(
        {
            "kind": "MaintenanceWindow",
            "name": "break-days",
            "calendar": "district",
            "times": ["07:00-18:00"],
            "days": "non_class_days",
            "blackouts": blackouts,
        }
    )
    return {"overnight": WindowSchedule(overnight, days), "break-days": WindowSchedule(break_days, days)}


# --- the independent oracle ----------------------------------------------------------------------------------


class Oracle:
    """Class days, blackouts and window intervals from plain date sets."""

    def __init__(self) -> None:
        self.holidays = set().union(*(_dates(a, b) for a, b, _ in NO_SCHOOL)) | {D(d) for d in STAFF_ONLY}
        self.state_testing = _dates(*STATE_TESTING)
        self.ap_exams = _dates(*AP_EXAMS)
        self.pre_term = {
            first - dt.timedelta(days=n) for _, first, _ in TERMS for n in range(1, BLACKOUT_DAYS_BEFORE_TERM + 1)
        }

    def snow_known_at(self, when: dt.datetime) -> set[dt.date]:
        return {day for edited, day in SNOW_EDITS if edited <= when}

    def is_class_day(self, day: dt.date, school: str, snow: set[dt.date]) -> bool:
        if school == "jefferson-high" and day == D(JEFFERSON_MAKE_UP):
            return True
        in_term = any(a <= day <= b for _, a, b in TERMS)
        return in_term and day.weekday() < 5 and day not in self.holidays and day not in snow

    def testing(self, day: dt.date, school: str) -> bool:
        return day in self.state_testing or (school == "jefferson-high" and day in self.ap_exams)

    def blacked_out(self, day: dt.date, school: str) -> bool:
        return day in self.pre_term or self.testing(day, school)

    def known(self, day: dt.date, school: str, snow: set[dt.date]) -> bool:
        """Inside a term or named by an entry; any other day is unknown and closes every window."""
        in_term = any(a <= day <= b for _, a, b in TERMS)
        make_up = school == "jefferson-high" and day == D(JEFFERSON_MAKE_UP)
        return in_term or day in self.holidays or day in snow or make_up

    def interval(self, window: str, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        if window == "overnight":
            return (
                dt.datetime.combine(day, dt.time(22), TZ),
                dt.datetime.combine(day + dt.timedelta(days=1), dt.time(5), TZ),
            )
        return dt.datetime.combine(day, dt.time(7), TZ), dt.datetime.combine(day, dt.time(18), TZ)

    def open_on(self, window: str, day: dt.date, school: str, snow: set[dt.date]) -> bool:
        """Is the interval of `window` that starts on `day` open for `school`?"""
        following = day + dt.timedelta(days=1)
        if window == "overnight":
            return not (
                not self.known(day, school, snow)
                or not self.known(following, school, snow)
                or self.is_class_day(following, school, snow)
                or self.blacked_out(day, school)
                or self.blacked_out(following, school)
            )
        return not (
            not self.known(day, school, snow)
            or self.is_class_day(day, school, snow)
            or self.blacked_out(day, school)
            or self.testing(following, school)  # never the day before testing
        )

    def day_of(self, window: str, at: dt.datetime) -> dt.date | None:
        """Which interval (by start day) of `window` contains `at`, if any."""
        local = at.astimezone(TZ)
        if window == "overnight":
            if local.time() >= dt.time(22):
                return local.date()
            if local.time() < dt.time(5):
                return local.date() - dt.timedelta(days=1)
            return None
        return local.date() if dt.time(7) <= local.time() < dt.time(18) else None


# --- requests ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    serial: str
    policy: str
    school: str
    arrived: dt.datetime


def generate_requests(seed: int = 2026) -> list[Request]:
    """Requests on weekdays from August to the end of May: quiet days, normal days and bursts."""
    rng = random.Random(seed)
    bursts = {D("2026-09-14"): 160, D("2026-11-30"): 120, D("2027-02-01"): 140, D("2027-04-26"): 150}
    requests: list[Request] = []
    day = D("2026-08-03")
    while day <= D("2027-05-28"):
        if day.weekday() < 5:
            for policy, mean in (("lab-reset", 7), ("cart-refresh", 4)):
                count = 0 if rng.random() < 0.3 else rng.randint(1, 2 * mean)
                if policy == "lab-reset":
                    count += bursts.get(day, 0)
                for _ in range(count):
                    hour = rng.choice((8, 8, 13, 23))
                    arrived = dt.datetime.combine(day, dt.time(hour), TZ)
                    requests.append(Request("", policy, rng.choice(SCHOOLS), arrived))
        day += dt.timedelta(days=1)
    requests.sort(key=lambda r: (r.arrived.astimezone(UTC), r.policy))
    return [Request(f"SN{i:06d}", r.policy, r.school, r.arrived) for i, r in enumerate(requests)]


def expected_intervals(requests: list[Request], oracle: Oracle) -> dict[str, tuple[dt.datetime, dt.datetime]]:
    """First-come first-served: each request's interval, from the oracle alone."""
    expected: dict[str, tuple[dt.datetime, dt.datetime]] = {}
    for policy, (window, cap) in POLICIES.items():
        waiting = [r for r in requests if r.policy == policy]
        day = START.date()
        while waiting and day <= END.date():
            start, end = oracle.interval(window, day)
            snow = oracle.snow_known_at(start)
            room = cap
            served = []
            for request in waiting:
                if room == 0:
                    break
                if request.arrived.astimezone(UTC) < end.astimezone(UTC) and oracle.open_on(
                    window, day, request.school, snow
                ):
                    expected[request.serial] = (start, end)
                    served.append(request)
                    room -= 1
            waiting = [r for r in waiting if r not in served]
            day += dt.timedelta(days=1)
    return expected


# --- the simulation -----------------------------------------------------------------------------------------


def _ceil_tick(when: dt.datetime) -> dt.datetime:
    stamp = when.astimezone(UTC)
    minutes = -(-int(stamp.timestamp()) // 900) * 900
    return dt.datetime.fromtimestamp(minutes, UTC).astimezone(TZ)


def _change(request: Request) -> Change:
    window, cap = POLICIES[request.policy]
    facts = GateFacts(
        policy=request.policy,
        window=window,
        serial=request.serial,
        school=request.school,
        method="wipe_users",
        max_devices_per_window=cap,
    )
    return Change(
        gate=facts,
        id=ResourceId("google", "reimage", request.serial),
        op="action",
        before=None,
        after="wipe_users",
        policy=request.policy,
        window=window,
        destructive=True,
        meta={"serial": request.serial, "school": request.school, "max_devices_per_window": cap},
    )


def test_a_school_year_of_reimage_requests_respects_calendar_windows_and_caps() -> None:
    oracle = Oracle()
    requests = generate_requests()
    by_serial = {r.serial: r for r in requests}
    changes = {r.serial: _change(r) for r in requests}
    serial_of = {c.key: s for s, c in changes.items()}
    arrivals = [r.arrived.astimezone(UTC) for r in requests]  # requests are sorted by arrival

    snow: list[dt.date] = []
    pending_edits = list(SNOW_EDITS)
    windows = schedules(snow)
    journal: dict[str, tuple[dt.datetime, str, dt.datetime]] = {}  # serial → (done at, policy, interval start)
    used: Counter[tuple[str, dt.datetime]] = Counter()
    per_interval: Counter[tuple[str, dt.date]] = Counter()
    pending: set[str] = set()
    next_arrival = 0
    ticks = gate_calls = deferred = refused_cap = 0

    def used_in_window(usage: Usage) -> int:
        assert usage.school is None and usage.window is None, "the simulated policies have no budgets"
        return used[(usage.policy, usage.start.astimezone(UTC))]

    now = _ceil_tick(START)
    while now < END and (pending or next_arrival < len(arrivals)):
        ticks += 1
        while pending_edits and pending_edits[0][0] <= now:
            snow.append(pending_edits.pop(0)[1])
            windows = schedules(snow)  # the calendar was edited and re-deployed
        while next_arrival < len(arrivals) and arrivals[next_arrival] <= now.astimezone(UTC):
            pending.add(requests[next_arrival].serial)
            next_arrival += 1
        decisions = []
        if pending:
            gate_calls += 1
            decisions = gate_destructive(
                [changes[s] for s in pending],
                now=now,
                windows=windows,
                used_in_window=used_in_window,
                max_destructive=MAX_DESTRUCTIVE,
            )
        allowed = [d for d in decisions if d.allowed]
        assert len(allowed) <= MAX_DESTRUCTIVE
        snow_now = oracle.snow_known_at(now)
        for decision in allowed:
            serial = serial_of[decision.change_key]
            request = by_serial[serial]
            window, cap = POLICIES[request.policy]
            assert serial not in journal, f"{serial} done twice"
            local = now.astimezone(TZ)
            if dt.time(5) <= local.time() < dt.time(22):
                assert not oracle.is_class_day(local.date(), request.school, snow_now), f"{serial} on a class day"
            day = oracle.day_of(window, now)
            assert day is not None, f"{serial} outside the {window} times at {local}"
            assert oracle.open_on(window, day, request.school, snow_now), f"{serial} in a closed/blackout interval"
            assert decision.interval_start == oracle.interval(window, day)[0]
            per_interval[(request.policy, day)] += 1
            assert per_interval[(request.policy, day)] <= cap, "per-window cap exceeded"
            journal[serial] = (now, request.policy, decision.interval_start)
            used[(request.policy, decision.interval_start.astimezone(UTC))] += 1
            pending.discard(serial)
        for decision in decisions:
            if not decision.allowed:
                deferred += "deferred" in decision.reason
                refused_cap += "blast radius" in decision.reason
        # Next tick: 15 minutes on while work was done, else jump to the next thing that can change anything.
        if allowed:
            now += TICK
            continue
        candidates = [d.next_open for d in decisions if d.next_open is not None]
        if next_arrival < len(arrivals):
            candidates.append(arrivals[next_arrival])
        if pending_edits:
            candidates.append(pending_edits[0][0])
        later = [c for c in candidates if c.astimezone(UTC) > now.astimezone(UTC)]
        if not later:
            break  # nothing can open again: the rest waits for next year's calendar
        now = _ceil_tick(min(later, key=lambda c: c.astimezone(UTC)))

    expected = expected_intervals(requests, oracle)
    assert set(expected) == set(journal)
    waiting = [r for r in requests if r.serial not in journal]
    all_snow = {day for _, day in SNOW_EDITS}
    for request in waiting:  # only requests with no open interval left in the calendar's year may wait
        window = POLICIES[request.policy][0]
        day = request.arrived.date()
        while day <= END.date():
            assert not oracle.open_on(window, day, request.school, all_snow), f"{request.serial} could run {day}"
            day += dt.timedelta(days=1)
    assert len(waiting) < len(requests) // 20
    late = []
    for serial, (done_at, _, _) in journal.items():
        start, end = expected[serial]
        if not (start.astimezone(UTC) <= done_at.astimezone(UTC) < end.astimezone(UTC)):
            late.append((serial, done_at, start))
    assert not late, f"{len(late)} requests not done in their expected interval, e.g. {late[:3]}"

    # the scenario exercised what it claims to
    snow_work = [
        s
        for s, (t, _, _) in journal.items()
        if t.astimezone(TZ).date() in {D("2027-02-02"), D("2027-02-03"), D("2027-02-04")}
    ]
    assert snow_work, "the snow days opened windows that were used"
    backlog = sum(
        1 for r in requests if r.serial in expected and expected[r.serial][0] - r.arrived > dt.timedelta(days=7)
    )
    assert backlog > 0 and refused_cap > 0 and deferred > 0
    print(
        f"\nsimulation: {len(requests)} requests, {ticks} ticks, {gate_calls} gate calls, "
        f"{len(journal)} done, {len(waiting)} wait for next year's calendar, {refused_cap} cap refusals, "
        f"{deferred} deferrals, "
        f"{backlog} waited more than a week, {len(snow_work)} done on snow days"
    )


def test_oracle_agrees_with_school_days_on_every_day_of_the_year() -> None:
    oracle = Oracle()
    for snow in ([], [day for _, day in SNOW_EDITS]):
        days = SchoolDays(_with_snow(snow))
        day = START.date()
        while day <= END.date():
            for school in SCHOOLS:
                assert days.is_class_day(day, school) == oracle.is_class_day(day, school, set(snow)), (day, school)
            day += dt.timedelta(days=1)
