"""Every grammar anchors at the true end of the string (issue 18 item 6).

`re.match(r"^...$")` accepts a value with one trailing newline, because `$` also matches just before a
final `\n`. Values reach APIs, Ansible and file names, so `name\n` must be as invalid as `name;rm`.
Each field type is checked three ways: the grammar function, a policy document, an inventory cell.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.core.errors import PolicyError
from orchestrator.inventory.devices import parse_inventory
from orchestrator.policy import grammar
from orchestrator.policy.loader import load_policies

CHECKERS: list[tuple[str, Callable[[str], object], str]] = [
    ("domain", grammar.check_domain, "example.com"),
    ("wildcard domain", grammar.check_domain, "*.example.com"),
    ("mac", grammar.check_mac, "02:00:5e:10:00:01"),
    ("extension id", grammar.check_extension_id, "ghbmnnjooekpmoecnnnilnnbdlolhkhi"),
    ("name", grammar.check_name, "elementary-filter"),
    ("site", grammar.check_site, "district_core"),
    ("ou path", grammar.check_ou_path, "/Students/Elementary"),
    ("serial", grammar.check_serial, "CB0000021"),
    ("asset tag", grammar.check_asset_tag, "PV-000021"),
    ("group", grammar.check_group, "All Student Devices"),
    ("app name", grammar.check_app_name, "Microsoft Word"),
    ("phone", grammar.check_phone, "+1 555 0100 200"),
    ("time zone", grammar.check_timezone, "America/Chicago"),
    ("time range", grammar.check_time_range, "22:00-05:00"),
    ("relative path", grammar.check_relative_path, "policies/calendars/district.ics"),
]


@pytest.mark.parametrize(("kind", "check", "good"), CHECKERS, ids=[c[0] for c in CHECKERS])
def test_grammar_accepts_the_value(kind: str, check: Callable[[str], object], good: str) -> None:
    check(good)


@pytest.mark.parametrize("suffix", ["\n", "\r\n", "\r", "\n\n"], ids=["lf", "crlf", "cr", "lflf"])
@pytest.mark.parametrize(("kind", "check", "good"), CHECKERS, ids=[c[0] for c in CHECKERS])
def test_grammar_rejects_a_trailing_line_break(
    kind: str, check: Callable[[str], object], good: str, suffix: str
) -> None:
    with pytest.raises(ValueError):
        check(good + suffix)


def test_no_grammar_pattern_relies_on_dollar() -> None:
    """A `$`-anchored pattern is the bug's shape: grammars are used with fullmatch instead."""
    patterns = {name: value for name, value in vars(grammar).items() if isinstance(value, re.Pattern)}
    assert patterns
    for name, pattern in patterns.items():
        assert not pattern.pattern.endswith("$"), f"{name} ends in $ (matches before a final newline)"


# (field description, YAML document with a {v} placeholder, good value); {v} is a JSON string.
WEBFILTER = "kind: WebFilter\nname: web\ntargets:\n  google_ous: [/Students]\nblocked: [tiktok.com]\n"
POLICY_FIELDS: list[tuple[str, str, str]] = [
    ("name", "kind: WebFilter\nname: {v}\ntargets:\n  google_ous: [/A]\n", "web"),
    ("google_ous", "kind: WebFilter\nname: web\ntargets:\n  google_ous: [{v}]\n", "/Students/Elementary"),
    ("intune_groups", "kind: WebFilter\nname: web\ntargets:\n  intune_groups: [{v}]\n", "All Student Devices"),
    ("network_sites", "kind: WebFilter\nname: web\ntargets:\n  network_sites: [{v}]\n", "district-core"),
    ("blocked domain", WEBFILTER.replace("[tiktok.com]", "[{v}]"), "tiktok.com"),
    ("allowed domain", WEBFILTER + "allowed: [{v}]\n", "*.example.org"),
    (
        "chrome id",
        "kind: AppPush\nname: apps\ntargets:\n  google_ous: [/A]\nchrome:\n  - id: {v}\n",
        "ghbmnnjooekpmoecnnnilnnbdlolhkhi",
    ),
    (
        "intune app",
        "kind: AppPush\nname: apps\ntargets:\n  google_ous: [/A]\nintune:\n  - app: {v}\n",
        "Microsoft Word",
    ),
    ("phone", "kind: LostDevicePolicy\nname: lost\nmessage: m\nphone: {v}\n", "+1 555 0100 200"),
    ("lost schools", "kind: LostDevicePolicy\nname: lost\nmessage: m\nschools: [{v}]\n", "lincoln-elementary"),
    ("lost sites", "kind: LostDevicePolicy\nname: lost\nmessage: m\nnetwork:\n  sites: [{v}]\n", "district-core"),
    (
        "calendar timezone",
        "kind: SchoolCalendar\nname: cal\ntimezone: {v}\nterms:\n"
        "  - {{name: Fall, first_day: 2026-08-13, last_day: 2026-12-18}}\n",
        "America/Chicago",
    ),
    (
        "ics file",
        "kind: SchoolCalendar\nname: cal\ntimezone: America/Chicago\nterms:\n"
        "  - {{name: Fall, first_day: 2026-08-13, last_day: 2026-12-18}}\nics:\n  file: {v}\n"
        "  rules: [{{match: holiday, means: no_students}}]\n",
        "policies/calendars/x.ics",
    ),
    (
        "window times",
        "kind: MaintenanceWindow\nname: win\ncalendar: cal\ntimes: [{v}]\ndays: any_night\n",
        "22:00-05:00",
    ),
    (
        "window calendar",
        "kind: MaintenanceWindow\nname: win\ncalendar: {v}\ntimes: ['22:00-05:00']\ndays: any_night\n",
        "cal",
    ),
    (
        "reimage serials",
        "kind: Reimage\nname: re\nwindow: win\nrequest: r1\ndevices:\n  serials: [{v}]\n",
        "CB0000021",
    ),
    (
        "reimage asset tags",
        "kind: Reimage\nname: re\nwindow: win\nrequest: r1\ndevices:\n  asset_tags: [{v}]\n",
        "PV-000021",
    ),
    (
        "reimage window",
        "kind: Reimage\nname: re\nwindow: {v}\nrequest: r1\ndevices:\n  serials: [CB0000021]\n",
        "win",
    ),
]


def _field_problems(tmp_path: Path, template: str, value: str) -> list[str]:
    """Problems about the field itself: references to other documents are not part of this check."""
    folder = tmp_path / "policies"
    folder.mkdir(exist_ok=True)
    (folder / "a.yaml").write_text(template.format(v=json.dumps(value)))
    try:
        load_policies(folder, display_root=tmp_path)
    except PolicyError as exc:
        return [str(d) for d in exc.diagnostics if not d.message.startswith(("no SchoolCalendar", "no Maintenance"))]
    return []


@pytest.mark.parametrize(("field", "template", "good"), POLICY_FIELDS, ids=[f[0] for f in POLICY_FIELDS])
def test_policy_field_rejects_a_trailing_newline(tmp_path: Path, field: str, template: str, good: str) -> None:
    assert _field_problems(tmp_path, template, good) == []
    found = _field_problems(tmp_path, template, good + "\n")
    assert found, f"{field}: {good!r} + newline was accepted"
    assert all(line.startswith("policies/a.yaml:") for line in found), found


INVENTORY_HEADER = "serialNumber,annotatedAssetId,orgUnitPath,macAddress,platform,school,inventoryStatus\n"
INVENTORY_ROW = {
    "serialNumber": "CB0000021",
    "annotatedAssetId": "PV-000021",
    "orgUnitPath": "/Students/Elementary",
    "macAddress": "02:00:5e:10:00:01",
    "platform": "chromeos",
    "school": "lincoln-elementary",
    "inventoryStatus": "lost",
}


def _csv(row: dict[str, str]) -> str:
    return INVENTORY_HEADER + ",".join(json.dumps(row[c]) for c in INVENTORY_HEADER.strip().split(",")) + "\n"


def test_inventory_row_is_valid() -> None:
    inventory = parse_inventory("devices.csv", _csv(INVENTORY_ROW))
    assert inventory.devices[0].serialNumber == "CB0000021"


@pytest.mark.parametrize("column", list(INVENTORY_ROW))
@pytest.mark.parametrize("suffix", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_inventory_cell_rejects_a_trailing_newline(column: str, suffix: str) -> None:
    row = dict(INVENTORY_ROW, **{column: INVENTORY_ROW[column] + suffix})
    with pytest.raises(PolicyError) as info:
        parse_inventory("devices.csv", _csv(row))
    assert [d.path for d in info.value.diagnostics] == [column]
    assert all(d.line == 2 for d in info.value.diagnostics)
