"""A provider's repository of sandbox districts (`orchestrator sandbox --tenants N`): each its own consoles.

`build_provider` writes `tenants/<name>/` for N districts beside a shared `baselines/` folder and starts, for
each district, its own Google (Directory + Chrome Policy) and Graph emulators on ports of their own, so every
district has separate console state. The districts differ the way a provider's do: sizes from a seventh of
the largest up to it, more schools (org units) in bigger districts, four US time zones, their own school-year
calendars (first day, breaks, spring break week), their own student domains (one district's student emails
never look like another's), a few lost devices, and credential variable names of their own. Every district
takes the K-5 web filter from `baselines/elementary-filter.yaml`; every third one overrides its YouTube mode.

The rest of each district's policies are the sample district's (`policies/` of this checkout), and its
network sites are the sample's `connection: local` gear writing under the district's own `.orchestrator/`.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from orchestrator.core.errors import OrchestratorError
from orchestrator.inventory.devices import write_inventory_csv
from orchestrator.sandbox.district import District, SeedDevice, generate
from orchestrator.sandbox.google_emulator import GoogleEmulator
from orchestrator.sandbox.graph_emulator import GraphEmulator
from orchestrator.sandbox.graph_state import GraphState

CHECKOUT = Path(__file__).resolve().parents[2]
SAMPLE_POLICIES = CHECKOUT / "policies"
SAMPLE_PLAYBOOKS = CHECKOUT / "playbooks"
MARKER = ".sandbox-provider"
"""A file at the root of a repository `build_provider` wrote: only such a folder is written over."""
NAMES = (
    "lincoln-county",
    "prairie-valley",
    "cedar-ridge",
    "maple-grove",
    "river-bend",
    "oak-hollow",
    "pine-bluff",
    "lake-view",
)
ZONES = ("America/Chicago", "America/New_York", "America/Denver", "America/Los_Angeles")
BASELINE = "baselines/elementary-filter.yaml"
OWN_POLICIES = ("calendar.yaml", "webfilter-elementary.yaml", "calendars")
"""Sample files a sandbox district does not copy: its calendar is its own, its K-5 filter is the baseline."""


@dataclass
class SandboxDistrict:
    """One running sandbox district: where its files are and its two emulators."""

    name: str
    folder: Path
    devices: int
    org_units: int
    timezone: str
    domain: str
    google: GoogleEmulator
    graph: GraphEmulator

    @property
    def secret_vars(self) -> tuple[str, str]:
        """The credential variables its config names (unset in the sandbox: loopback consoles need none)."""
        prefix = self.name.upper().replace("-", "_")
        return f"{prefix}_GOOGLE_KEY", f"{prefix}_AZURE_SECRET"

    def stop(self) -> None:
        self.google.stop()
        self.graph.stop()


def district_names(count: int) -> list[str]:
    """Readable names for the first eight, then district-09, district-10, ..."""
    return [NAMES[i] if i < len(NAMES) else f"district-{i + 1:02d}" for i in range(count)]


def district_sizes(count: int, largest: int) -> list[int]:
    """Devices per district: one has `largest`, the others spread down to a seventh of it, in a mixed order."""
    if count <= 1:
        return [largest] * count
    order = [(i * 7919) % count for i in range(count)]  # 7919 is prime: every rank once, shuffled
    return [max(40, round(largest * (1 + 6 * rank / (count - 1)) / 7)) for rank in order]


def org_unit_count(devices: int) -> int:
    """Bigger districts have more schools: the sample's 33 org units plus one school per 400 devices."""
    return 33 + 6 * (devices // 400)


SCHOOL_YEARS = (
    (2026, "Fall semester", "Spring semester", date(2027, 1, 6)),
    (2027, "Fall semester 2027", "Spring semester 2028", date(2028, 1, 4)),
)
"""The sandbox calendars' school years: (the year it starts, term names, first day after winter break)."""
MON, WED, THU, SAT = 0, 2, 3, 5


def _on_or_after(day: date, weekday: int) -> date:
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def _no_school(first: date, last: date, reason: str) -> list[str]:
    if first == last:
        return [f"  - date: {first}", f"    reason: {reason}"]
    return [f"  - from: {first}", f"    to: {last}", f"    reason: {reason}"]


def calendar_yaml(index: int, zone: str) -> str:
    """The district's 2026-27 and 2027-28 school years: its own first days, breaks and spring break weeks, in
    its zone; the summer between them has no school (not unknown days, which would close every window)."""
    day = timedelta(days=1)
    terms: list[str] = []
    no_school: list[str] = []
    previous_last: date | None = None
    for year, fall, spring_term, spring_first_day in SCHOOL_YEARS:
        # US dates: first day the Monday of Aug 4-10 (shifted per district), Labor Day the first Monday of
        # September, Thanksgiving break the Wednesday before the fourth Thursday of November, winter break from the
        # Saturday of Dec 13-19, spring break from the second Monday of March, last day the last Wednesday of May
        # (shifted per district), Memorial Day the last Monday of May.
        first = _on_or_after(date(year, 8, 4), MON) + index % 9 * day
        labor_day = _on_or_after(date(year, 9, 1), MON)
        thanksgiving = _on_or_after(date(year, 11, 22), THU) - day
        winter_start = _on_or_after(date(year, 12, 13), SAT) + index % 3 * day
        spring = _on_or_after(date(year + 1, 3, 8), MON) + timedelta(weeks=index % 4)
        last = _on_or_after(date(year + 1, 5, 25), WED) + index % 5 * day
        memorial_day = _on_or_after(date(year + 1, 5, 25), MON)
        terms += [f"  - name: {fall}", f"    first_day: {first}", f"    last_day: {winter_start - day}"]
        terms += [f"  - name: {spring_term}", f"    first_day: {spring_first_day}", f"    last_day: {last}"]
        if previous_last is not None:
            no_school += _no_school(previous_last + day, first - day, "Summer break")
        no_school += _no_school(labor_day, labor_day, "Labor Day")
        no_school += _no_school(thanksgiving, thanksgiving + 2 * day, "Thanksgiving break")
        no_school += _no_school(winter_start, spring_first_day - day, "Winter break")
        no_school += _no_school(spring, spring + 4 * day, "Spring break")
        if memorial_day <= last:
            no_school += _no_school(memorial_day, memorial_day, "Memorial Day")
        previous_last = last
    header = [
        "kind: SchoolCalendar",
        "name: district-2026-27",  # the name the sample's maintenance windows refer to
        f"description: sandbox district {index + 1} 2026-27 and 2027-28 calendar",
        f"timezone: {zone}",
        "class_weekdays: [mon, tue, wed, thu, fri]",
    ]
    return "\n".join([*header, "terms:", *terms, "no_school:", *no_school, ""])


def _own_students(district: District, domain: str) -> District:
    """The generated district with its students (and staff) under this district's own e-mail domain."""

    def moved(seed: SeedDevice) -> SeedDevice:
        device = seed.device
        user = device.annotatedUser.split("@")[0] + "@" + domain if device.annotatedUser else ""
        student = device.assignedStudent.split("@")[0] + "@" + domain if device.assignedStudent else ""
        return dataclasses.replace(
            seed, device=dataclasses.replace(device, annotatedUser=user, assignedStudent=student)
        )

    return dataclasses.replace(district, devices=[moved(seed) for seed in district.devices])


def _lost(district: District) -> District:
    """A few devices reported lost (one per 250), so the nightly lockdown has work in every district."""
    devices = list(district.devices)
    for n in range(17, len(devices), 250):
        devices[n] = dataclasses.replace(
            devices[n], device=dataclasses.replace(devices[n].device, inventoryStatus="lost")
        )
    return dataclasses.replace(district, devices=devices)


def _config(district: SandboxDistrict) -> str:
    google_var, azure_var = district.secret_vars
    return "\n".join(
        [
            f"# Sandbox district {district.name}: {district.devices} devices, {district.org_units} org units.",
            f"timezone: {district.timezone}",
            "policies: policies/",
            "inventory: inventory/devices.csv",
            "google:",
            f"  admin_subject: it-admin@{district.domain}",
            f"  credentials_file_env: {google_var}",
            f"  directory_endpoint: {district.google.url}",
            f"  policy_endpoint: {district.google.url}",
            "intune:",
            f"  client_secret_env: {azure_var}",
            f"  graph_endpoint: {district.graph.url}",
            "network:",
            "  inventory: network/inventory.yaml",
            f"  playbooks: {SAMPLE_PLAYBOOKS}",
            "",
        ]
    )


def _write_repository_files(root: Path) -> None:
    if root.exists() and any(root.iterdir()) and not (root / MARKER).exists():
        raise OrchestratorError(
            f"{root} exists and was not made by `orchestrator sandbox --tenants`; choose an empty folder with --out"
        )
    if not SAMPLE_POLICIES.is_dir():
        raise OrchestratorError(f"the sample policies are not at {SAMPLE_POLICIES} (run from a checkout)")
    shutil.rmtree(root / "tenants", ignore_errors=True)
    shutil.rmtree(root / "baselines", ignore_errors=True)
    (root / "baselines").mkdir(parents=True)
    (root / MARKER).write_text("written by `orchestrator sandbox --tenants`; rewritten on every start\n")
    sample = (SAMPLE_POLICIES / "webfilter-elementary.yaml").read_text(encoding="utf-8")
    (root / BASELINE).write_text(
        "# Shared by every sandbox district (each includes it; some override youtube:).\n"
        + "".join(line for line in sample.splitlines(keepends=True) if not line.startswith("# yaml-language"))
    )


def _write_district(index: int, district: SandboxDistrict, seeded: District) -> None:
    folder = district.folder
    shutil.copytree(
        SAMPLE_POLICIES, folder / "policies", ignore=lambda _dir, names: [n for n in names if n in OWN_POLICIES]
    )
    (folder / "policies" / "calendar.yaml").write_text(calendar_yaml(index, district.timezone))
    includes = f"include: [{BASELINE}]\n"
    if index % 3 == 2:
        includes += "---\nkind: WebFilter\nname: elementary-filter\nyoutube: moderate\n"
    (folder / "policies" / "webfilter-elementary.yaml").write_text(includes)
    (folder / "inventory").mkdir()
    (folder / "inventory" / "devices.csv").write_text(write_inventory_csv(s.device for s in seeded.devices))
    (folder / "network").mkdir()
    shutil.copy(SAMPLE_PLAYBOOKS / "inventory.yaml", folder / "network" / "inventory.yaml")
    (folder / "orchestrator.yaml").write_text(_config(district))


def build_provider(
    root: str | Path,
    count: int,
    devices: int,
    *,
    seed: int = 2026,
    latency: float = 0.0,
    host: str = "127.0.0.1",
    same_size: bool = False,
) -> list[SandboxDistrict]:
    """Write a repository of `count` districts under `root` and start each one's emulators (stop them with
    `stop_all`). `devices` is the largest district's size (every district's with `same_size`)."""
    if count < 1:
        raise OrchestratorError("--tenants must be at least 1")
    root = Path(root).resolve()
    _write_repository_files(root)
    sizes = [devices] * count if same_size else district_sizes(count, devices)
    started: list[SandboxDistrict] = []
    try:
        for index, (name, size) in enumerate(zip(district_names(count), sizes, strict=True)):
            domain = f"{name}.k12.example"
            seeded = _lost(_own_students(generate(devices=size, seed=seed + index, ous=org_unit_count(size)), domain))
            google = GoogleEmulator(seeded, host, 0, seed=seed + index, latency=latency).start()
            graph = GraphEmulator(GraphState.from_district(seeded), host, 0)
            graph.faults.latency = latency
            graph.start()
            district = SandboxDistrict(
                name, root / "tenants" / name, size, len(seeded.ous), ZONES[index % len(ZONES)], domain, google, graph
            )
            started.append(district)
            _write_district(index, district, seeded)
    except BaseException:
        stop_all(started)
        raise
    return started


def stop_all(districts: list[SandboxDistrict]) -> None:
    """Stop every district's emulators."""
    for district in districts:
        district.stop()


def wait_until_stopped(stop: threading.Event, districts: list[SandboxDistrict]) -> None:
    """Serve until `stop` is set (SIGTERM) or Ctrl-C, then stop every district's emulators."""
    try:
        stop.wait()
    except KeyboardInterrupt:
        return
    finally:
        stop_all(districts)
