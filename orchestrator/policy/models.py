"""One pydantic model per policy kind (DESIGN.md §3). Unknown keys are errors; values use the grammars.

Over 400 lines: the whole policy language in one place, so the JSON Schema, the reference in docs/policies.md
and a reviewer read the same file; each kind is a short class and splitting them would scatter the shared
selector and rule models they use.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)

from orchestrator.policy.grammar import (
    AppName,
    AssetTag,
    Domain,
    ExtensionId,
    GroupName,
    Name,
    OrgUnitPath,
    Phone,
    RelativePath,
    SafeText,
    Serial,
    Site,
    TimeRange,
    TimeZoneName,
)

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Targets(Strict):
    """Where a policy applies. Google org units, Intune groups (by display name), network sites."""

    google_ous: list[OrgUnitPath] = []
    intune_groups: list[GroupName] = []
    network_sites: list[Site] = []

    @model_validator(mode="after")
    def _not_empty(self) -> Targets:
        if not (self.google_ous or self.intune_groups or self.network_sites):
            raise ValueError("names no target (set google_ous, intune_groups or network_sites)")
        return self


class DeviceSelector(Strict):
    """Devices chosen by org unit, Intune group, exact serial or asset tag (never by prefix)."""

    google_ous: list[OrgUnitPath] = []
    intune_groups: list[GroupName] = []
    serials: list[Serial] = []
    asset_tags: list[AssetTag] = []
    schools: list[Name] = []

    @model_validator(mode="after")
    def _not_empty(self) -> DeviceSelector:
        if not (self.google_ous or self.intune_groups or self.serials or self.asset_tags or self.schools):
            raise ValueError("selects no devices (set google_ous, intune_groups, serials, asset_tags or schools)")
        return self


class PolicyDoc(Strict):
    kind: str
    name: Name
    description: SafeText = ""


class WebFilter(PolicyDoc):
    kind: Literal["WebFilter"]
    targets: Targets
    blocked: list[Domain] = []
    allowed: list[Domain] = []
    safe_search: StrictBool | None = None
    youtube: Literal["off", "moderate", "strict"] | None = None

    @model_validator(mode="after")
    def _lists_disjoint(self) -> WebFilter:
        both = sorted(set(self.blocked) & set(self.allowed))
        if both:
            raise ValueError(f"domains both blocked and allowed: {', '.join(both)}")
        return self


class ChromeApp(Strict):
    id: ExtensionId
    install: Literal["force", "normal", "allowed", "blocked"] = "force"
    pinned: StrictBool = False

    @model_validator(mode="after")
    def _pin_needs_install(self) -> ChromeApp:
        if self.pinned and self.install not in ("force", "normal"):
            raise ValueError("pinned needs install: force or normal")
        return self


class IntuneApp(Strict):
    app: AppName
    intent: Literal["required", "available", "uninstall"] = "required"


class AppPush(PolicyDoc):
    kind: Literal["AppPush"]
    targets: Targets
    chrome: list[ChromeApp] = []
    intune: list[IntuneApp] = []

    @model_validator(mode="after")
    def _something_to_push(self) -> AppPush:
        if not (self.chrome or self.intune):
            raise ValueError("pushes nothing (set chrome or intune)")
        return self


class LostGoogle(Strict):
    action: Literal["disable", "none"] = "disable"


class LostIntune(Strict):
    """iOS/iPadOS: Lost Mode on supervised corporate devices, else `action`. Windows: `windows` (Intune's remote
    lock is not supported on Windows desktops): disable_device = disable the Entra ID device object (re-enabled
    when found; needs Device.ReadWrite.All), none = nothing is sent and each device is reported not locked."""

    action: Literal["remote_lock", "none"] = "remote_lock"
    lost_mode: StrictBool = True
    windows: Literal["disable_device", "none"] = "none"


class LostNetwork(Strict):
    quarantine: StrictBool = True
    sites: list[Site] = []


class OnFound(Strict):
    reenable: StrictBool = True
    disable_lost_mode: StrictBool = True
    release_quarantine: StrictBool = True


class Escalation(Strict):
    """A device still lost after `after_school_days` school days (class days on the calendar of `window`, for the
    device's school, after the day the history says it became lost) is queued for `action` as a destructive
    change in `window`, under the usual gates; found before it runs, it leaves the queue.

    What each action sends (docs/policies.md, "Escalation"):
    powerwash   Chromebook `issueCommand` REMOTE_POWERWASH; Windows and iOS/iPadOS Intune `wipe`
                (keepEnrollmentData false, keepUserData false): a factory reset everywhere.
    wipe        Chromebook `issueCommand` WIPE_USERS; Windows Intune `wipe` with keepEnrollmentData true,
                keepUserData false (user data gone, still enrolled, still disabled). iOS/iPadOS has no wipe
                that keeps enrollment (keepEnrollmentData is a Windows option): not escalated, noted in the plan.
    deprovision / retire   Chromebook `batchChangeStatus` DEPROVISION (DEPROVISION_REASON_RETIRING_DEVICE);
                Intune `retire`. Both take the device out of management for good and need the same
                acknowledgement as a Reimage deprovision (--acknowledge-deprovision).
    """

    after_school_days: StrictInt = Field(ge=1, le=180)
    action: Literal["powerwash", "wipe", "deprovision", "retire"]
    window: Name
    max_devices_per_window: StrictInt = Field(default=10, ge=1, le=1000)
    """Blast radius: escalations of this policy per window interval (more lost at once is more likely a mistake)."""
    batch_size: StrictInt = Field(default=10, ge=1, le=500)


class LostDevicePolicy(PolicyDoc):
    kind: Literal["LostDevicePolicy"]
    message: SafeText = Field(max_length=500)
    phone: Phone | None = None
    footer: SafeText | None = Field(default=None, max_length=200)
    max_per_run: StrictInt = Field(default=25, ge=1, le=5000)
    schools: list[Name] = []
    google: LostGoogle = LostGoogle()
    intune: LostIntune = LostIntune()
    network: LostNetwork = LostNetwork()
    on_found: OnFound = OnFound()
    escalate: Escalation | None = None


class Term(Strict):
    name: SafeText
    first_day: dt.date
    last_day: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> Term:
        if self.last_day < self.first_day:
            raise ValueError("last_day is before first_day")
        return self


class DayRange(Strict):
    """A single day (`date`) or an inclusive range (`from`/`to`), with a reason shown in `windows`."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    day: dt.date | None = Field(default=None, alias="date")
    start: dt.date | None = Field(default=None, alias="from")
    end: dt.date | None = Field(default=None, alias="to")
    reason: SafeText = ""

    @model_validator(mode="after")
    def _one_form(self) -> DayRange:
        if self.day is not None and (self.start or self.end):
            raise ValueError("use either date or from/to, not both")
        if self.day is None and not (self.start and self.end):
            raise ValueError("needs date, or both from and to")
        if self.start and self.end and self.end < self.start:
            raise ValueError("'to' is before 'from'")
        return self

    @property
    def first(self) -> dt.date:
        return self.day or self.start  # type: ignore[return-value]

    @property
    def last(self) -> dt.date:
        return self.day or self.end  # type: ignore[return-value]


IcsMeaning = Literal["no_students", "staff_only", "class_day", "testing", "first_day", "last_day"]
Duration = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,4}[mhd]$")]
"""A span like `30m`, `12h` or `2d`."""


def duration(value: str) -> dt.timedelta:
    """`12h` → 12 hours (the `Duration` grammar: minutes, hours or days)."""
    unit = {"m": "minutes", "h": "hours", "d": "days"}[value[-1]]
    return dt.timedelta(**{unit: int(value[:-1])})


class IcsRule(Strict):
    """What an event means: `match` whole words of its title (case-insensitive), or a `regex` search."""

    match: SafeText | None = Field(default=None, min_length=1)
    regex: SafeText | None = Field(default=None, min_length=1)
    means: IcsMeaning

    @model_validator(mode="after")
    def _one_pattern(self) -> IcsRule:
        if (self.match is None) == (self.regex is None):
            raise ValueError("set exactly one of match (whole words) or regex")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex {self.regex!r} does not compile: {exc}") from None
        return self


class IcsSource(Strict):
    """An iCalendar source: a file in the repository or a published feed (`url`, cached, refreshed)."""

    file: RelativePath | None = None
    url: SafeText | None = None
    max_staleness: Duration | None = None
    rules: list[IcsRule] = Field(min_length=1)
    class_days_listed: StrictBool = False

    @model_validator(mode="after")
    def _one_source(self) -> IcsSource:
        if (self.file is None) == (self.url is None):
            raise ValueError("set exactly one of file or url")
        if self.url is not None:
            _check_feed_url(self.url)
        elif self.max_staleness is not None:
            raise ValueError("max_staleness applies to a url feed, not to a file in the repository")
        if self.class_days_listed and not any(r.means == "class_day" for r in self.rules):
            raise ValueError("class_days_listed: true needs a rule with means: class_day (else no day is a class day)")
        return self

    @property
    def staleness(self) -> dt.timedelta:
        """How old the cached copy of a url feed may be before every disruptive window closes."""
        return duration(self.max_staleness or DEFAULT_MAX_STALENESS)

    @property
    def shown(self) -> str:
        return self.file or self.url or ""

    def means(self, meaning: str) -> bool:
        return any(r.means == meaning for r in self.rules)


DEFAULT_MAX_STALENESS = "24h"
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _check_feed_url(url: str) -> None:
    """https only; http only to a loopback host (tests and local mirrors); no credentials in the URL."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    secure = parts.scheme == "https" and bool(host)
    if not (secure or (parts.scheme == "http" and host in _LOOPBACK)):
        raise ValueError(f"url {url!r} must be https:// (http:// only for 127.0.0.1, ::1 or localhost)")
    if parts.username or parts.password:
        raise ValueError("url must not carry credentials")


class SchoolOverride(Strict):
    no_school: list[DayRange] = []
    staff_only: list[DayRange] = []
    testing_days: list[DayRange] = []
    class_days: list[DayRange] = []
    ics: IcsSource | None = None

    @model_validator(mode="after")
    def _school_feed_overrides_only(self) -> SchoolOverride:
        if self.ics is not None:
            if self.ics.class_days_listed:
                raise ValueError("a school's ics cannot list class days (set class_days_listed on the district)")
            if self.ics.means("first_day") or self.ics.means("last_day"):
                raise ValueError("terms come from the district calendar, not a school's ics (first_day/last_day)")
        return self


class SchoolCalendar(PolicyDoc):
    kind: Literal["SchoolCalendar"]
    timezone: TimeZoneName
    class_weekdays: list[Weekday] = ["mon", "tue", "wed", "thu", "fri"]
    terms: list[Term] = []
    no_school: list[DayRange] = []
    staff_only: list[DayRange] = []
    testing_days: list[DayRange] = []
    schools: dict[Name, SchoolOverride] = {}
    ics: IcsSource | None = None

    @model_validator(mode="after")
    def _has_terms(self) -> SchoolCalendar:
        if self.terms:
            return self
        if self.ics is None:
            raise ValueError("needs terms (or an ics source with first_day/last_day rules)")
        if self.ics.means("first_day") and self.ics.means("last_day"):
            return self
        if self.ics.class_days_listed:
            return self
        raise ValueError(
            "an ics calendar without terms needs rules with means: first_day and means: last_day (or "
            "class_days_listed: true with a class_day rule); without them it has no class days"
        )


class Blackouts(Strict):
    days_before_term_start: StrictInt = Field(default=0, ge=0, le=60)
    testing_days: StrictBool = True
    dates: list[DayRange] = []


class MaintenanceWindow(PolicyDoc):
    kind: Literal["MaintenanceWindow"]
    calendar: Name
    times: list[TimeRange] = Field(min_length=1)
    days: Literal[
        "non_class_days",
        "nights_before_non_class_days",
        "no_staff_days",
        "nights_before_no_staff_days",
        "any_night",
        "dates",
    ]
    dates: list[DayRange] = []
    blackouts: Blackouts = Blackouts()
    schools: list[Name] = []
    max_devices_per_night: StrictInt | None = Field(default=None, ge=1, le=100000)
    """District-wide: destructive actions of every policy in one interval (night) of this window."""

    @model_validator(mode="after")
    def _dates_when_needed(self) -> MaintenanceWindow:
        if self.days == "dates" and not self.dates:
            raise ValueError("days: dates needs a dates list")
        return self


DEPROVISION_REASONS = ("retiring_device", "same_model_replacement", "different_model_replacement", "upgrade_transfer")
"""The Directory API's deprovision reasons an administrator may choose (DEPROVISION_REASON_<upper case>)."""


def _check_deprovision_reason(value: object) -> object:
    """One of DEPROVISION_REASONS; any other value (e.g. upgrade_replacement: no such reason) lists them."""
    if value not in DEPROVISION_REASONS:
        raise ValueError(f"{value!r} is not a deprovision reason; use one of: {', '.join(DEPROVISION_REASONS)}")
    return value


DeprovisionReason = Annotated[
    Literal["retiring_device", "same_model_replacement", "different_model_replacement", "upgrade_transfer"],
    BeforeValidator(_check_deprovision_reason),
]


class ReimageGoogle(Strict):
    """wipe_users / powerwash: an issueCommand; deprovision: batchChangeStatus DEPROVISION with `reason`.

    `reason` is sent as DEPROVISION_REASON_<REASON> (admin.directory_v1 BatchChangeChromeOsDeviceStatusRequest)
    and only matters for deprovision.
    """

    method: Literal["powerwash", "wipe_users", "deprovision"] = "wipe_users"
    reason: DeprovisionReason = "retiring_device"

    @model_validator(mode="after")
    def _reason_needs_deprovision(self) -> ReimageGoogle:
        if "reason" in self.model_fields_set and self.method != "deprovision":
            raise ValueError("reason applies only to method: deprovision")
        return self


class ReimageIntune(Strict):
    """wipe / autopilot_reset: the `wipe` action; retire: the `retire` action (the device leaves management)."""

    method: Literal["wipe", "autopilot_reset", "retire"] = "autopilot_reset"


def _check_school_budget(value: object) -> object:
    """A positive count, or a percentage "N%" with 0 < N <= 100 (of the school's devices in the inventory)."""
    if isinstance(value, bool):
        raise ValueError('a count such as 5 or a percentage such as "10%"')
    if isinstance(value, int):
        if value < 1:
            raise ValueError("a count must be at least 1")
        return value
    if isinstance(value, str) and re.fullmatch(r"(100|[1-9][0-9]?)(\.[0-9]+)?%", value):
        return value
    raise ValueError('a count such as 5 or a percentage between 1% and 100% such as "10%"')


SchoolBudget = Annotated[int | str, BeforeValidator(_check_school_budget)]


class Reimage(PolicyDoc):
    kind: Literal["Reimage"]
    window: Name
    devices: DeviceSelector
    request: SafeText = Field(min_length=1, max_length=80)
    google: ReimageGoogle | None = ReimageGoogle()
    intune: ReimageIntune | None = ReimageIntune()
    batch_size: StrictInt = Field(default=20, ge=1, le=500)
    max_devices_per_window: StrictInt = Field(default=100, ge=1, le=10000)
    budget_per_school: SchoolBudget | None = None
    """Per school and window interval (night): a count (5) or a share of the school's devices ("10%")."""


class RepairPolicy(PolicyDoc):
    """Repair turnaround and loaner due dates, in school days on `calendar` (weekends, holidays, snow days do not
    count). Loaner pools are the inventory's devices with inventoryStatus `loaner` at each school."""

    kind: Literal["RepairPolicy"]
    calendar: Name
    turnaround_school_days: StrictInt = Field(default=2, ge=1, le=60)
    loaner_due_school_days: StrictInt = Field(default=10, ge=1, le=180)
    not_seen_days: StrictInt = Field(default=30, ge=1, le=365)
    """The morning report lists devices the consoles have not seen for more than this many (calendar) days."""


WriteBackMode = Literal["if_set", "always"]


class WriteBackGoogle(Strict):
    """Chrome device fields written from the inventory (console field ← inventory column) and what an empty cell
    means: `if_set` writes filled cells only (an empty one leaves the console alone), `always` also clears the
    console. A field left out is not managed: nothing in the console that no policy mentions is changed."""

    asset_tag: WriteBackMode | None = None  # annotatedAssetId ← annotatedAssetId
    user: WriteBackMode | None = None  # annotatedUser ← assignedStudent (a checked-out loaner's borrower)
    location: WriteBackMode | None = None  # annotatedLocation ← annotatedLocation
    notes: WriteBackMode | None = None  # notes ← notes

    @model_validator(mode="after")
    def _something(self) -> WriteBackGoogle:
        if not any((self.asset_tag, self.user, self.location, self.notes)):
            raise ValueError("manages no field (set asset_tag, user, location or notes to if_set or always)")
        return self


class InventoryWriteBack(PolicyDoc):
    """The inventory is desired state for these console fields (plan shows the drift, apply writes it); a policy
    naming a device's school beats a catch-all one."""

    kind: Literal["InventoryWriteBack"]
    schools: list[Name] = []
    google: WriteBackGoogle


KINDS: dict[str, type[PolicyDoc]] = {
    model.model_fields["kind"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in (
        WebFilter,
        AppPush,
        LostDevicePolicy,
        SchoolCalendar,
        MaintenanceWindow,
        Reimage,
        RepairPolicy,
        InventoryWriteBack,
    )
}
