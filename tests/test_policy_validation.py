"""The policy language: every problem is reported with file:line, field path and what is allowed."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.core.errors import PolicyError
from orchestrator.policy.loader import load_policies
from orchestrator.policy.schema import policy_schema

WEBFILTER = """
kind: WebFilter
name: elementary-filter
targets:
  google_ous: [/Students/Elementary]
blocked: [tiktok.com]
"""


def problems(folder: Path) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policies(folder, display_root=folder.parent)
    return [str(d) for d in info.value.diagnostics]


def test_sample_district_is_valid(repo_root: Path) -> None:
    policies = load_policies(repo_root / "policies")
    kinds = policies.counts()
    for kind in ("WebFilter", "AppPush", "LostDevicePolicy", "SchoolCalendar", "MaintenanceWindow", "Reimage"):
        assert kinds.get(kind, 0) >= 1, kind


def test_yaml_syntax_error_names_file_and_line(policy_dir) -> None:
    folder = policy_dir({"bad.yaml": "kind: WebFilter\nname: x\nblocked: [a.com\n  targets: {}\n"})
    found = problems(folder)
    assert len(found) == 1
    assert found[0].startswith("policies/bad.yaml:")
    assert "YAML syntax error" in found[0]


def test_unknown_kind_lists_allowed_kinds(policy_dir) -> None:
    folder = policy_dir({"a.yaml": "kind: WebFiltr\nname: x\n"})
    (message,) = problems(folder)
    assert message.startswith("policies/a.yaml:1: kind: unknown kind 'WebFiltr'; did you mean 'WebFilter'?")
    assert "one of WebFilter, AppPush" in message


def test_unknown_key_suggests_the_right_one(policy_dir) -> None:
    folder = policy_dir({"a.yaml": WEBFILTER + "blockd: [x.com]\n"})
    (message,) = problems(folder)
    assert message.startswith("policies/a.yaml:6: blockd: unknown key 'blockd'; did you mean 'blocked'?")
    assert "allowed:" in message and "safe_search" in message


def test_unknown_nested_key_points_at_its_line(policy_dir) -> None:
    folder = policy_dir({"a.yaml": WEBFILTER.replace("  google_ous:", "  google_ou: [/A]\n  google_ous:")})
    (message,) = problems(folder)
    assert message.startswith("policies/a.yaml:4: targets.google_ou: unknown key 'google_ou'; did you mean")


def test_wrong_type_is_reported(policy_dir) -> None:
    folder = policy_dir({"a.yaml": WEBFILTER + "safe_search: yes please\n"})
    (message,) = problems(folder)
    assert message.startswith("policies/a.yaml:6: safe_search:")
    assert "boolean" in message


@pytest.mark.parametrize(
    "domain",
    ["http://tiktok.com", "tiktok.com/path", "*tiktok.com", "ti ktok.com", "-bad.com", "a..com", "*.*.x.com"],
)
def test_invalid_domain_or_wildcard_is_rejected(policy_dir, domain: str) -> None:
    folder = policy_dir({"a.yaml": WEBFILTER.replace("tiktok.com", json.dumps(domain))})
    (message,) = problems(folder)
    assert "policies/a.yaml:5: blocked[0]:" in message
    assert "is not a domain" in message


def test_wildcard_domain_is_accepted_and_normalised(policy_dir) -> None:
    folder = policy_dir({"a.yaml": WEBFILTER.replace("tiktok.com", '"*.TikTok.com."')})
    (policy,) = load_policies(folder).policies
    assert policy.model.blocked == ["*.tiktok.com"]


def test_invalid_extension_id_is_rejected(policy_dir) -> None:
    folder = policy_dir(
        {
            "a.yaml": """
            kind: AppPush
            name: apps
            targets: {google_ous: [/Students]}
            chrome:
              - id: ghbmnnjooekpmoecnnnilnnbdlolhkhz
            """
        }
    )
    (message,) = problems(folder)
    assert message.startswith("policies/a.yaml:5: chrome[0].id:")
    assert "32 letters a-p" in message


def test_invalid_time_range_and_time_zone_are_rejected(policy_dir) -> None:
    folder = policy_dir(
        {
            "cal.yaml": """
            kind: SchoolCalendar
            name: cal
            timezone: America/Chicgo
            terms: [{name: Fall, first_day: 2026-08-13, last_day: 2026-12-18}]
            """,
            "win.yaml": """
            kind: MaintenanceWindow
            name: nightly
            calendar: cal
            times: ["22:00-25:00", "05:00-05:00"]
            days: any_night
            """,
        }
    )
    found = problems(folder)
    assert any(m.startswith("policies/cal.yaml:3: timezone:") and "IANA time zone" in m for m in found)
    assert any(m.startswith("policies/win.yaml:4: times[0]:") and "out of range" in m for m in found)
    assert any(m.startswith("policies/win.yaml:4: times[1]:") and "empty" in m for m in found)


def test_duplicate_names_name_both_places(policy_dir) -> None:
    folder = policy_dir({"a.yaml": WEBFILTER, "b.yaml": WEBFILTER.replace("/Students/Elementary", "/Staff")})
    (message,) = problems(folder)
    assert message.startswith("policies/b.yaml:2: name: duplicate WebFilter name 'elementary-filter'")
    assert "first defined at policies/a.yaml:1" in message


def test_two_documents_setting_the_same_setting_conflict(policy_dir) -> None:
    other = WEBFILTER.replace("elementary-filter", "other-filter")
    folder = policy_dir({"a.yaml": WEBFILTER, "b.yaml": other})
    (message,) = problems(folder)
    assert message.startswith("policies/b.yaml:5: blocked: conflict:")
    assert "policies/a.yaml:5" in message and "/Students/Elementary" in message


@pytest.mark.parametrize(
    "payload",
    ["{{ lookup('pipe','id') }}", "{% raw %}", "$(reboot)", "`id`", "${HOME}"],
)
def test_template_or_shell_syntax_in_a_string_is_rejected(policy_dir, payload: str) -> None:
    folder = policy_dir(
        {
            "a.yaml": f"""
            kind: LostDevicePolicy
            name: lost
            message: {json.dumps("Return to office " + payload)}
            """
        }
    )
    (message,) = problems(folder)
    assert message.startswith("policies/a.yaml:3: message:")
    assert "not allowed in policies" in message


def test_path_traversal_in_a_file_reference_is_rejected(policy_dir) -> None:
    folder = policy_dir(
        {
            "a.yaml": """
            kind: SchoolCalendar
            name: cal
            timezone: America/Chicago
            ics:
              file: ../../etc/passwd
              rules: [{match: No School, means: no_students}]
            """
        }
    )
    (message,) = problems(folder)
    assert message.startswith("policies/a.yaml:5: ics.file:")
    assert "no '..'" in message


def test_org_unit_path_traversal_is_rejected(policy_dir) -> None:
    folder = policy_dir({"a.yaml": WEBFILTER.replace("/Students/Elementary", "/Students/../Staff")})
    (message,) = problems(folder)
    assert "targets.google_ous[0]" in message and "not an org unit path" in message


def test_every_problem_in_a_run_is_reported(policy_dir) -> None:
    folder = policy_dir(
        {
            "a.yaml": WEBFILTER + "blockd: [x.com]\n---\nkind: Nope\nname: y\n",
            "b.yaml": "kind: Reimage\nname: r\nwindow: missing\nrequest: x\ndevices: {serials: [AB]}\n",
        }
    )
    found = problems(folder)
    assert len(found) >= 3, found
    assert {m.split(":")[0] for m in found} == {"policies/a.yaml", "policies/b.yaml"}


def test_dangerous_yaml_tags_are_never_constructed(policy_dir) -> None:
    folder = policy_dir({"a.yaml": "kind: WebFilter\nname: !!python/object/apply:os.system ['id']\n"})
    found = problems(folder)
    assert any("unsupported YAML tag" in m and "python/object/apply" in m for m in found), found


def test_duplicate_keys_are_an_error(policy_dir) -> None:
    folder = policy_dir({"a.yaml": WEBFILTER + "blocked: [x.com]\n"})
    (message,) = problems(folder)
    assert message.startswith("policies/a.yaml:6: blocked: duplicate key")


def test_validate_command_prints_every_problem_without_traceback(policy_dir, tmp_path: Path) -> None:
    folder = policy_dir({"a.yaml": WEBFILTER + "blockd: [x.com]\n", "b.yaml": "kind: [\n"})
    config = tmp_path / "orchestrator.yaml"
    config.write_text(f"policies: {folder}\ninventory: {tmp_path / 'none.csv'}\n")
    result = CliRunner().invoke(main, ["--config", str(config), "validate"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "unknown key 'blockd'" in result.output
    assert "YAML syntax error" in result.output
    assert "2 problem(s) found." in result.output


def test_validate_command_accepts_the_sample_district(repo_root: Path, monkeypatch) -> None:
    monkeypatch.chdir(repo_root)
    result = CliRunner().invoke(main, ["validate"])
    assert result.exit_code == 0, result.output
    assert "policy documents are valid" in result.output


def test_sample_district_validates_against_the_json_schema(repo_root: Path) -> None:
    schema = policy_schema()
    validator = jsonschema.Draft202012Validator(schema)
    count = 0
    for path in sorted((repo_root / "policies").rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document is None:
                continue
            errors = list(validator.iter_errors(json.loads(json.dumps(document, default=str))))
            assert not errors, f"{path}: {errors[0].message}"
            count += 1
    assert count >= 6


def test_schema_rejects_an_unknown_key() -> None:
    validator = jsonschema.Draft202012Validator(policy_schema())
    document = yaml.safe_load(WEBFILTER + "blockd: [x.com]\n")
    assert list(validator.iter_errors(document))


def test_schema_command_prints_json(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    result = CliRunner().invoke(main, ["schema", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "WebFilter" in json.loads(out.read_text())["$defs"]


# Hostile input (issue 10 item 11): every limit is a `file:line: field: message (allowed)` diagnostic,
# never a traceback or a hang. The fuzz test (test_policy_fuzz.py) covers mutations of the sample district.
DIAGNOSTIC_LINE = re.compile(r"^[^\s:][^:]*:\d+: (?:[\w.\[\]\"\\-]+: )?\S.*$")


def _limit_problems(policy_dir, text: str) -> list[str]:
    folder = policy_dir({"a.yaml": "kind: WebFilter\nname: web\n"})
    (folder / "a.yaml").write_text(text)
    found = problems(folder)
    for line in found:
        assert "\n" not in line and DIAGNOSTIC_LINE.match(line), line
    return found


def test_deep_nesting_is_a_limit_not_a_recursion_error(policy_dir) -> None:
    for opener, closer in (("[", "]"), ("{a: ", "}")):
        text = "kind: WebFilter\nname: web\ntargets: " + opener * 600 + "1" + closer * 600 + "\n"
        found = _limit_problems(policy_dir, text)
        assert any(m.startswith("policies/a.yaml:3: targets") and "nesting" in m for m in found), found


def test_huge_integer_is_a_limit_not_a_value_error(policy_dir) -> None:
    found = _limit_problems(policy_dir, "kind: LostDevicePolicy\nname: lost\nmessage: m\nmax_per_run: " + "9" * 5000)
    assert any(m.startswith("policies/a.yaml:4: max_per_run: number") for m in found), found


def test_billion_laughs_is_refused_quickly(policy_dir) -> None:
    levels = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
    )
    started = time.perf_counter()
    found = _limit_problems(policy_dir, "kind: WebFilter\nname: web\n" + levels)
    assert time.perf_counter() - started < 5
    assert any("alias" in m for m in found), found


def test_recursive_and_undefined_aliases_are_diagnostics(policy_dir) -> None:
    found = _limit_problems(policy_dir, "kind: WebFilter\nname: web\ntargets: &t {google_ous: *t}\n")
    assert any(m.startswith("policies/a.yaml:3: targets.google_ous: ") and "recursive" in m for m in found), found
    found = _limit_problems(policy_dir, "kind: WebFilter\nname: *nowhere\n")
    assert any(m.startswith("policies/a.yaml:2:") and "alias" in m for m in found), found


def test_control_character_error_names_the_line_not_a_position(policy_dir) -> None:
    (message,) = _limit_problems(policy_dir, "kind: WebFilter\nname: web\ndescription: é\x00\n")
    assert message.startswith("policies/a.yaml:3: ") and "position" not in message, message


def test_impossible_date_and_complex_key_are_diagnostics(policy_dir) -> None:
    found = _limit_problems(policy_dir, "kind: WebFilter\nname: web\ndescription: 2024-13-45\n")
    assert any(m.startswith("policies/a.yaml:3: description: ") for m in found), found
    found = _limit_problems(policy_dir, "kind: WebFilter\nname: web\n? [a, b]\n: 1\n")
    assert any(m.startswith("policies/a.yaml:3: ") and "key" in m for m in found), found


def test_odd_keys_keep_the_diagnostic_format(policy_dir) -> None:
    text = "kind: WebFilter\nname: web\ntargets:\n  'a 😀: b\\u2028c': 1\n  \"\\0\\t\": 2\n"
    found = _limit_problems(policy_dir, text)
    assert any(m.startswith('policies/a.yaml:4: targets["a\\u0020') for m in found), found


def test_oversized_file_is_refused_before_parsing(policy_dir) -> None:
    found = _limit_problems(policy_dir, "kind: WebFilter\nname: web\ndescription: " + "x" * 2_000_000 + "\n")
    assert found == [found[0]] and found[0].startswith("policies/a.yaml:1: ") and "bytes" in found[0], found


def test_undecodable_bytes_name_their_line(policy_dir) -> None:
    folder = policy_dir({"a.yaml": "kind: WebFilter\n"})
    (folder / "a.yaml").write_bytes(b"kind: WebFilter\nname: web\ndescription: \xff\n")
    (message,) = problems(folder)
    assert message.startswith("policies/a.yaml:3: ") and "UTF-8" in message, message


def test_key_with_a_bracket_is_not_taken_for_a_union_tag(policy_dir) -> None:
    """Found by the fuzz test: pydantic's union tags contain `[`, and so may a mistyped key."""
    (message,) = _limit_problems(policy_dir, WEBFILTER + "d[escription: x\n")
    assert message.startswith('policies/a.yaml:7: ["d\\u005bescription"]: unknown key'), message


def test_validate_output_keeps_line_100(tmp_path: Path) -> None:
    rows = "".join(f"CB{n:07d},chromeos\n" for n in range(98)) + "CB0000001,chromeos\n"
    (tmp_path / "devices.csv").write_text("serialNumber,platform\n" + rows)
    (tmp_path / "policies").mkdir()
    config = tmp_path / "orchestrator.yaml"
    config.write_text(f"policies: {tmp_path / 'policies'}\ninventory: {tmp_path / 'devices.csv'}\n")
    result = CliRunner().invoke(main, ["--config", str(config), "validate"])
    assert result.exit_code == 1
    (line,) = [x for x in result.stderr.splitlines() if "serialNumber" in x]
    assert DIAGNOSTIC_LINE.match(line) and ":100: serialNumber:" in line, line


def test_alias_uses_are_limited_even_when_each_is_small(policy_dir) -> None:
    text = "kind: WebFilter\nname: web\nx: &d a.com\nblocked: [" + ", ".join(["*d"] * 1001) + "]\n"
    found = _limit_problems(policy_dir, text)
    assert any(m.startswith("policies/a.yaml:4: blocked[1000]: more than 1000 alias uses") for m in found), found
