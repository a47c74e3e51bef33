"""Strict grammars for values that reach APIs, Ansible, URLs or file names.

Every value a policy hands to a backend is checked here and never templated. Each checker returns the
normalised value or raises ValueError whose text says what is allowed; pydantic turns that into a
diagnostic with file, line and field path.

Patterns are applied with `fullmatch`, never `match(r"^...$")`: `$` also matches before a final newline,
so `name\n` would pass. Surrounding spaces and tabs are forgiven where a value is normalised (domains,
MACs, time ranges); a line break never is.
"""

from __future__ import annotations

import re
from datetime import time
from functools import cache
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, BeforeValidator

_BLANKS = " \t"  # what normalising strips; line breaks are never stripped, they are errors
_TEMPLATE_MARKERS = ("{{", "}}", "{%", "%}", "{#", "${", "$(", "`", "<%")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"(\*\.)?({_LABEL}\.)+(?!-)[a-z0-9-]{{2,63}}(?<!-)")
_MAC = re.compile(r"[0-9a-f]{2}([:-][0-9a-f]{2}){5}")
_EXTENSION_ID = re.compile(r"[a-p]{32}")
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_SITE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_OU_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.&'()+-]{0,59}")
_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{2,63}")
_ASSET_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_GROUP = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.&'()+,-]{0,119}")
_APP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.&'()+,:-]{0,119}")
_PHONE = re.compile(r"\+?[0-9 ()./-]{3,30}")
_TIME_RANGE = re.compile(r"([0-9]{2}):([0-9]{2})-([0-9]{2}):([0-9]{2})")
_REL_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}")


def reject_template(value: str) -> str:
    """Refuse template, shell and control syntax in any free text that could reach a backend."""
    for marker in _TEMPLATE_MARKERS:
        if marker in value:
            raise ValueError(f"contains {marker!r}: template or shell syntax is not allowed in policies")
    if _CONTROL.search(value):
        raise ValueError("contains control characters")
    return value


def check_domain(value: str) -> str:
    value = value.strip(_BLANKS).lower().rstrip(".")
    if len(value) > 253 or not _DOMAIN.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a domain (a hostname like example.com or a wildcard like *.example.com; "
            "no scheme, path, port or spaces)"
        )
    return value


def check_mac(value: str) -> str:
    low = value.strip(_BLANKS).lower()
    if not _MAC.fullmatch(low) or ("-" in low and ":" in low):
        raise ValueError(f"{value!r} is not a MAC address (six hex pairs like 02:00:5e:10:00:01)")
    return low.replace("-", ":")


def check_extension_id(value: str) -> str:
    if not _EXTENSION_ID.fullmatch(value):
        raise ValueError(f"{value!r} is not a Chrome extension/app id (32 letters a-p)")
    return value


def check_name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid name (lowercase letters, digits and '-', max 63)")
    return value


def check_site(value: str) -> str:
    if not _SITE.fullmatch(value):
        raise ValueError(f"{value!r} is not a site name (lowercase letters, digits, '-' and '_', max 63)")
    return value


def check_ou_path(value: str) -> str:
    reject_template(value)
    if value == "/":
        return value
    parts = value.split("/")
    if not value.startswith("/") or value.endswith("/") or any(p in ("", ".", "..") for p in parts[1:]):
        raise ValueError(f"{value!r} is not an org unit path (like /Students/Elementary; no '..')")
    for segment in parts[1:]:
        if not _OU_SEGMENT.fullmatch(segment):
            raise ValueError(f"org unit segment {segment!r} has characters outside letters, digits, ' _.&()+-'")
    return value


def check_serial(value: str) -> str:
    if not isinstance(value, str) or not _SERIAL.fullmatch(value):
        raise ValueError(f"{value!r} is not a serial number (3-64 letters, digits and '-'; matched exactly)")
    return value


def check_asset_tag(value: str) -> str:
    if not _ASSET_TAG.fullmatch(value):
        raise ValueError(f"{value!r} is not an asset tag (letters, digits, '_.-', max 64)")
    return value


def check_group(value: str) -> str:
    reject_template(value)
    if not _GROUP.fullmatch(value):
        raise ValueError(f"{value!r} is not a group display name (letters, digits, spaces and ' _.&()+,-')")
    return value


def check_app_name(value: str) -> str:
    reject_template(value)
    if not _APP_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not an app display name (letters, digits, spaces and ' _.&()+,:-')")
    return value


def check_phone(value: str) -> str:
    if not _PHONE.fullmatch(value):
        raise ValueError(f"{value!r} is not a phone number (digits, spaces and '+()-./')")
    return value


def check_timezone(value: str) -> str:
    if value not in _zones():
        raise ValueError(f"{value!r} is not an IANA time zone (like America/Chicago)")
    try:
        ZoneInfo(value)
    except ZoneInfoNotFoundError as exc:  # pragma: no cover - available_timezones already checked
        raise ValueError(f"{value!r} is not an IANA time zone") from exc
    return value


@cache
def _zones() -> frozenset[str]:
    """available_timezones() walks the tz database on every call; the set does not change in a run."""
    return frozenset(available_timezones())


def parse_time_range(value: str) -> tuple[time, time]:
    match = _TIME_RANGE.fullmatch(value.strip(_BLANKS))
    if not match:
        raise ValueError(f"{value!r} is not a time range (HH:MM-HH:MM, 24-hour, may cross midnight)")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2 != 0):
        raise ValueError(f"{value!r} has an hour or minute out of range (00:00-24:00)")
    if (h1, m1) == (h2, m2):
        raise ValueError(f"{value!r} is empty: start and end are the same")
    return time(h1, m1), (time(0, 0) if h2 == 24 else time(h2, m2))


def check_time_range(value: str) -> str:
    parse_time_range(value)
    return value.strip(_BLANKS)


def check_relative_path(value: str) -> str:
    reject_template(value)
    parts = value.split("/")
    if not _REL_PATH.fullmatch(value) or ".." in parts or value.startswith("/"):
        raise ValueError(f"{value!r} is not a relative path inside the repository (no '..', no leading '/')")
    return value


def _must_be_str(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {type(value).__name__}")
    return value


def _text(*checks):
    return Annotated[str, BeforeValidator(_must_be_str), *(AfterValidator(c) for c in checks)]


SafeText = _text(reject_template)
Domain = _text(reject_template, check_domain)
ExtensionId = _text(check_extension_id)
Name = _text(check_name)
Site = _text(check_site)
OrgUnitPath = _text(check_ou_path)
Serial = _text(check_serial)
AssetTag = _text(check_asset_tag)
GroupName = _text(check_group)
AppName = _text(check_app_name)
Phone = _text(check_phone)
TimeZoneName = _text(check_timezone)
TimeRange = _text(check_time_range)
RelativePath = _text(check_relative_path)
