"""Web filter profiles as Intune deviceConfigurations: build the Graph body, read it back to our value.

Windows (read back only): earlier versions wrote a `windows10CustomConfiguration` with two ADMX-backed OMA-URI
settings for Microsoft Edge (`URLBlocklist`, `URLAllowlist`; `<enabled/><data id="…Desc" value="1&#xF000;a.com…"/>`),
which devices ignore without the Edge ADMX ingested. Such a managed profile is still observed (so the plan shows
and deletes it) but never written: Edge lists are a Settings Catalog policy now (`settings_body.py`).
iOS/iPadOS: an `iosDeviceFeaturesConfiguration` (beta) whose `contentFilterSettings` is an
`iosWebContentFilterAutoFilter` with `blockedUrls` / `allowedUrls` (https:// URLs).
"""

from __future__ import annotations

import html
import re
from typing import Any

EDGE_URI = "./Device/Vendor/MSFT/Policy/Config/microsoft_edge~Policy~microsoft_edge/{name}"
WINDOWS_TYPE = "#microsoft.graph.windows10CustomConfiguration"
IOS_TYPE = "#microsoft.graph.iosDeviceFeaturesConfiguration"
IOS_FILTER_TYPE = "#microsoft.graph.iosWebContentFilterAutoFilter"
PLATFORM_OF_TYPE = {WINDOWS_TYPE: "windows", IOS_TYPE: "ios"}
DESCRIPTION = "Managed by the k12 fleet orchestrator from policies in git. Manual edits are reverted."
_SEP = "&#xF000;"
_DATA = re.compile(r'<data\s+id="[^"]*"\s+value="([^"]*)"\s*/>')


def _admx_values(text: str) -> list[str]:
    match = _DATA.search(text or "")
    if not match or "<enabled/>" not in text:
        return []
    parts = match.group(1).split(_SEP)
    return sorted({html.unescape(p) for p in parts[1::2] if p})


def profile_body(platform: str, display_name: str, value: dict[str, Any]) -> dict[str, Any]:
    """The POST/PATCH body for a web filter profile on `platform` (iOS only)."""
    blocked, allowed = list(value.get("blocked") or []), list(value.get("allowed") or [])
    if platform == "ios":
        return {
            "@odata.type": IOS_TYPE,
            "displayName": display_name,
            "description": DESCRIPTION,
            "contentFilterSettings": {
                "@odata.type": IOS_FILTER_TYPE,
                "blockedUrls": [f"https://{d}" for d in blocked],
                "allowedUrls": [f"https://{d}" for d in allowed],
            },
        }
    raise ValueError(f"no web filter profile for platform {platform!r} (ios; Windows uses a settings policy)")


def _strip_scheme(url: str) -> str:
    return re.sub(r"^https?://", "", url).rstrip("/")


def profile_lists(record: dict[str, Any]) -> dict[str, list[str]]:
    """{"blocked", "allowed"} read back from a deviceConfiguration (empty lists for foreign shapes)."""
    kind = record.get("@odata.type")
    if kind == WINDOWS_TYPE:
        by_uri = {s.get("omaUri"): s.get("value") or "" for s in record.get("omaSettings") or []}
        return {
            "blocked": _admx_values(by_uri.get(EDGE_URI.format(name="URLBlocklist"), "")),
            "allowed": _admx_values(by_uri.get(EDGE_URI.format(name="URLAllowlist"), "")),
        }
    if kind == IOS_TYPE:
        content = record.get("contentFilterSettings") or {}
        return {
            "blocked": sorted({_strip_scheme(u) for u in content.get("blockedUrls") or []}),
            "allowed": sorted({_strip_scheme(u) for u in content.get("allowedUrls") or []}),
        }
    return {"blocked": [], "allowed": []}
