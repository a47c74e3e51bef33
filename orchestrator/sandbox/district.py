"""A deterministic sample district: org units, groups and devices generated from a seed.

The emulators load it as their initial state and `inventory/devices.csv` is its first rows, so the
sandbox, the tests and the benchmarks all talk about the same devices.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from orchestrator.inventory.devices import Device

# (school name, OU path, grade levels, level)
SCHOOLS = [
    ("lincoln-elementary", "/Students/Elementary/Lincoln", ["K", "1", "2", "3", "4", "5"], "elementary"),
    ("washington-elementary", "/Students/Elementary/Washington", ["K", "1", "2", "3", "4", "5"], "elementary"),
    ("roosevelt-middle", "/Students/Middle/Roosevelt", ["6", "7", "8"], "middle"),
    ("jefferson-high", "/Students/High/Jefferson", ["9", "10", "11", "12"], "high"),
]
FIXED_OUS = [
    "/",
    "/Students",
    "/Students/Elementary",
    "/Students/Middle",
    "/Students/High",
    "/Staff",
    "/Labs",
    "/Labs/Jefferson",
    "/Testing",
    "/Lost",
]
GROUPS = [
    "All Student Devices",
    "Elementary iPads",
    "Secondary Windows Laptops",
    "Staff Devices",
    "Jefferson Lab PCs",
    "All Staff",
]
# User groups (the rest are device groups): name → the device group whose devices' users are its members.
USER_GROUPS = {"All Staff": "Staff Devices"}
INTUNE_APPS = ["Microsoft Word", "Google Chrome", "Microsoft Teams", "Zoom Workplace", "Minecraft Education"]
DOMAIN = "district.example"
LOANER_SLOTS = (15, 24, 25, 26)
"""Device n is a pooled loaner when n % 80 is one of these (5% of devices): Chromebooks, one slot per school of
the four (two loaners each in the first 120 devices), never a staff or lab device. A loaner has no student.
With generated extra schools (`ous=`) the slots reach only the schools whose index they fall on."""


@dataclass
class SeedDevice:
    device: Device
    groups: list[str] = field(default_factory=list)
    supervised: bool = False
    intune_id: str = ""


@dataclass
class District:
    ous: list[str]
    devices: list[SeedDevice]
    groups: list[str]
    apps: list[str]


def _grade_ous(extra_schools: int) -> tuple[list[str], list[tuple[str, str, list[str], str]]]:
    schools = list(SCHOOLS)
    for i in range(extra_schools):
        level = ("elementary", "middle", "high")[i % 3]
        parent = {"elementary": "/Students/Elementary", "middle": "/Students/Middle", "high": "/Students/High"}[level]
        grades = {
            "elementary": ["K", "1", "2", "3", "4", "5"],
            "middle": ["6", "7", "8"],
            "high": ["9", "10", "11", "12"],
        }[level]
        schools.append((f"school-{i + 1:03d}", f"{parent}/School-{i + 1:03d}", grades, level))
    ous = list(FIXED_OUS)
    for _, ou, grades, _ in schools:
        ous.append(ou)
        ous += [f"{ou}/Grade-{g}" for g in grades]
    return ous, schools


def generate(devices: int = 120, seed: int = 2026, ous: int = 0, mix: tuple[int, int, int] = (7, 2, 1)) -> District:
    """Generate `devices` devices and at least `ous` OUs. `mix`: Chromebooks, Windows and iPads in that
    proportion, interleaved (default 7:2:1; the benchmark's District-100k is 20:3:1, i.e. 100,000 Chromebooks,
    15,000 Windows and 5,000 iPads in 120,000)."""
    rng = random.Random(seed)
    extra = 0
    ou_list, schools = _grade_ous(0)
    while len(ou_list) < ous:
        extra += 1
        ou_list, schools = _grade_ous(extra)
    result: list[SeedDevice] = []
    for n in range(devices):
        school, school_ou, grades, level = schools[n % len(schools)]
        roll = n % sum(mix)
        platform = "chromeos" if roll < mix[0] else ("windows" if roll < mix[0] + mix[1] else "ios")
        grade = grades[(n // len(schools)) % len(grades)]
        ou = f"{school_ou}/Grade-{grade}"
        groups = ["All Student Devices"]
        if n % 50 == 49:
            ou, groups = "/Staff", ["Staff Devices"]
        elif school == "jefferson-high" and n % 25 in (3, 7):
            ou = "/Labs/Jefferson"
            groups.append("Jefferson Lab PCs")
        if platform == "ios" and level == "elementary":
            groups.append("Elementary iPads")
        if platform == "windows" and level != "elementary":
            groups.append("Secondary Windows Laptops")
        prefix = {"chromeos": "CB", "windows": "PF", "ios": "DM"}[platform]
        serial = f"{prefix}{n + 1:07d}"
        mac = "02:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(5))
        loaner = n % 80 in LOANER_SLOTS and platform == "chromeos" and ou.startswith(school_ou)
        student = f"student{n + 1:06d}@{DOMAIN}" if ou != "/Staff" else f"staff{n + 1:06d}@{DOMAIN}"
        if loaner:
            student = ""
        device = Device(
            serialNumber=serial,
            platform=platform,
            inventoryStatus="loaner" if loaner else "active",
            deviceId=f"{rng.getrandbits(64):016x}" if platform == "chromeos" else "",
            annotatedAssetId=f"PV-{n + 1:06d}",
            annotatedUser=student,
            orgUnitPath=ou,
            status="ACTIVE" if platform == "chromeos" else "",
            macAddress=mac,
            school=school,
            imei=f"35{rng.randrange(10**12):012d}" if platform == "ios" and n % 3 == 0 else "",
            assignedStudent=student if ou != "/Staff" else "",
        )
        result.append(
            SeedDevice(
                device=device,
                groups=groups,
                supervised=platform == "ios" and n % 4 != 1,
                intune_id=f"{rng.getrandbits(128):032x}" if platform != "chromeos" else "",
            )
        )
    return District(ous=ou_list, devices=result, groups=list(GROUPS), apps=list(INTUNE_APPS))


# `orchestrator sandbox --lived-in`: what a district set by hand in the Admin console before adopting the tool
# (org unit, Chrome Policy schema, app_id or "", value). Settings at several levels inherit downwards; some
# are not in the policy language (incognito) or not plain domains (a URL with a path), so export leaves
# them out; the rest export to policies that plan back to no change.
LIVED_IN_GOOGLE: list[tuple[str, str, str, dict[str, object]]] = [
    ("/", "chrome.users.UrlBlocking", "", {"urlBlocklist": ["malware-test.example", "proxy-unblocker.example"]}),
    (
        "/Students",
        "chrome.users.UrlBlocking",
        "",
        {"urlBlocklist": ["discord.com", "tiktok.com", "twitch.tv"], "urlAllowlist": ["khanacademy.org"]},
    ),
    (
        "/Students",
        "chrome.users.SafeSearchRestrictedMode",
        "",
        {"forceGoogleSafeSearch": True, "forceYoutubeRestrictedMode": "MODERATE"},
    ),
    ("/Students", "chrome.users.IncognitoMode", "", {"incognitoModeAvailability": "DISABLED"}),
    ("/Students/Elementary", "chrome.users.SafeSearchRestrictedMode", "", {"forceYoutubeRestrictedMode": "STRICT"}),
    (
        "/Students/Elementary",
        "chrome.users.UrlBlocking",
        "",
        {"urlBlocklist": ["coolmathgames.com", "discord.com", "roblox.com", "tiktok.com", "twitch.tv"]},
    ),
    (
        "/Students/High/Jefferson",
        "chrome.users.UrlBlocking",
        "",
        {"urlBlocklist": ["discord.com", "https://chat.example/rooms/*"]},
    ),
    ("/Staff", "chrome.users.SafeSearchRestrictedMode", "", {"forceGoogleSafeSearch": False}),
    (
        "/Students",
        "chrome.users.apps.InstallType",
        "chrome:ghbmnnjooekpmoecnnnilnnbdlolhkhi",
        {"appInstallType": "FORCED"},
    ),
    (
        "/Students",
        "chrome.users.apps.InstallType",
        "chrome:cjpalhdlnbpafiamejdnhcphjbkeiagm",
        {"appInstallType": "BLOCKED"},
    ),
    (
        "/Students/Elementary",
        "chrome.users.apps.InstallType",
        "chrome:mkaakpdehdafacodkgkpghoibnmamcme",
        {"appInstallType": "FORCED_AND_PIN_TO_TOOLBAR"},
    ),
    (
        "/Labs/Jefferson",
        "chrome.users.apps.InstallType",
        "chrome:aapocclcgogkmnckokdopfmhonfmgoek",
        {"appInstallType": "NORMAL"},
    ),
    (
        "/Testing",
        "chrome.users.apps.InstallType",
        "chrome:felcaaldnbdncclmgdcncolpebgiejap",
        {"appInstallType": "ALLOWED"},
    ),
]
