"""The inverse of the Google compiler: observed Chrome settings → WebFilter/AppPush documents, one file per OU.

`GoogleBackend.observe([])` returns every managed setting set locally (not inherited) at each OU under
`managed_root_ou`, which is what a plan with no policy sees. Each OU with any of them becomes
`google/<ou-slug>.yaml` holding up to two documents targeting that OU alone:

    chrome.users.UrlBlocking               urlBlocklist/urlAllowlist → WebFilter blocked/allowed (domains)
    chrome.users.SafeSearchRestrictedMode  forceGoogleSafeSearch → safe_search, forceYoutubeRestrictedMode →
                                           youtube (off|moderate|strict)
    chrome.users.apps.InstallType          FORCED|NORMAL|ALLOWED|BLOCKED[_AND_PIN_TO_TOOLBAR] → AppPush chrome
                                           install (force|normal|allowed|blocked) and pinned

Settings are exported only when compiling the document gives back exactly the console's value (so the plan
of an export is empty); anything else is left out, stays unmanaged (never changed by a plan) and is listed in
the file's header: a URL filter entry that is not a plain domain (a path, a scheme, `*`, upper case, an
explicit `*.` wildcard), a domain both blocked and allowed, an install type the language has no word for, and
the lost-device message (chrome.devices.DisabledDeviceReturnInstructions: it belongs to a LostDevicePolicy,
which also disables devices, so it is never made up from a console value).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from typing import Any

from orchestrator.backends.google.compiler import chrome_url_filter
from orchestrator.backends.google.names import (
    APP_INSTALL_TYPE,
    DISABLED_MESSAGE,
    FORCE_SAFE_SEARCH,
    FORCE_YOUTUBE,
    SAFE_SEARCH,
    URL_ALLOWLIST,
    URL_BLOCKING,
    URL_BLOCKLIST,
)
from orchestrator.backends.google.spec import OU_APP, OU_POLICY
from orchestrator.core.backend import ExportInput
from orchestrator.core.resources import Resource
from orchestrator.policy.grammar import check_domain
from orchestrator.policy.models import AppPush, ChromeApp, Targets, WebFilter
from orchestrator.policy.writer import ExportedDoc, ExportFile

INSTALLS = {"FORCED": "force", "NORMAL": "normal", "ALLOWED": "allowed", "BLOCKED": "blocked"}
PIN = "_AND_PIN_TO_TOOLBAR"
PINNABLE = ("force", "normal")
YOUTUBE = {"OFF": "off", "MODERATE": "moderate", "STRICT": "strict"}
_MAX_NAME = 63


def ou_slug(ou: str) -> str:
    """`/Students/High/Jefferson` → `students-high-jefferson`, `/` → `root` (stable: the file and policy names)."""
    slug = re.sub(r"[^a-z0-9]+", "-", ou.lower()).strip("-") or "root"
    if len(slug) > _MAX_NAME - 12:  # room for "-web-filter"; a hash keeps long paths apart
        slug = slug[: _MAX_NAME - 21].rstrip("-") + "-" + hashlib.sha256(ou.encode()).hexdigest()[:8]
    return slug


def _under(path: str, root: str | None) -> bool:
    return root in (None, "/") or path == root or path.startswith(str(root).rstrip("/") + "/")


def _domain(entry: object) -> str | None:
    """The policy-language domain whose compiled Chrome filter is exactly `entry`, or None."""
    if not isinstance(entry, str):
        return None
    try:
        domain = check_domain(entry)
    except ValueError:
        return None
    return domain if chrome_url_filter(domain) == entry else None


def _url_blocking(value: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    entries = {field: list(value.get(field) or []) for field in (URL_BLOCKLIST, URL_ALLOWLIST)}
    domains = {field: {e: _domain(e) for e in found} for field, found in entries.items()}
    bad = sorted(str(e) for found in domains.values() for e, d in found.items() if d is None)
    if bad:
        return {}, [f"{URL_BLOCKING}: entries that are not plain domains: {', '.join(bad[:5])}"]
    blocked = sorted({d for d in domains[URL_BLOCKLIST].values() if d})
    allowed = sorted({d for d in domains[URL_ALLOWLIST].values() if d})
    both = sorted(set(blocked) & set(allowed))
    if both:
        return {}, [f"{URL_BLOCKING}: domains both blocked and allowed: {', '.join(both)}"]
    out: dict[str, Any] = {}
    if blocked:
        out["blocked"] = blocked
    if allowed:
        out["allowed"] = allowed
    return out, []


def _safe_search(value: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    out: dict[str, Any] = {}
    if isinstance(value.get(FORCE_SAFE_SEARCH), bool):
        out["safe_search"] = value[FORCE_SAFE_SEARCH]
    elif FORCE_SAFE_SEARCH in value:
        return {}, [f"{SAFE_SEARCH}: {FORCE_SAFE_SEARCH} {value[FORCE_SAFE_SEARCH]!r}"]
    if FORCE_YOUTUBE in value:
        if value[FORCE_YOUTUBE] not in YOUTUBE:
            return {}, [f"{SAFE_SEARCH}: {FORCE_YOUTUBE} {value[FORCE_YOUTUBE]!r}"]
        out["youtube"] = YOUTUBE[value[FORCE_YOUTUBE]]
    return out, []


def _app(extension: str, value: Any) -> ChromeApp | None:
    kind = value.get(APP_INSTALL_TYPE) if isinstance(value, dict) else None
    if not isinstance(kind, str):
        return None
    pinned = kind.endswith(PIN)
    install = INSTALLS.get(kind.removesuffix(PIN))
    if install is None or (pinned and install not in PINNABLE):
        return None
    if pinned:
        return ChromeApp(id=extension, install=install, pinned=True)
    return ChromeApp(id=extension, install=install)


def export_google(given: ExportInput) -> list[ExportFile]:
    """One ExportFile per OU (sorted by path) with a local managed setting in `given.subtree`."""
    by_ou: dict[str, dict[str, Any]] = defaultdict(lambda: {"policies": {}, "apps": {}})
    for resource in given.observed:
        _collect(resource, given.subtree, by_ou)
    console = f"Google Admin console (customer {given.section.customer_id})"
    files: list[ExportFile] = []
    slugs: dict[str, str] = {}
    for ou in sorted(by_ou):
        slug = ou_slug(ou)
        if slug in slugs.values():  # two paths with one slug (`/A B` and `/A-B`): the hash keeps them apart
            slug = f"{slug[: _MAX_NAME - 21]}-{hashlib.sha256(ou.encode()).hexdigest()[:8]}"
        slugs[ou] = slug
        file = _ou_file(ou, slug, by_ou[ou], console, given.read_at)
        if file is not None:
            files.append(file)
    return files


def _collect(resource: Resource, subtree: str | None, by_ou: dict[str, dict[str, Any]]) -> None:
    if resource.id.backend != "google" or resource.id.type not in (OU_POLICY.name, OU_APP.name):
        return
    if resource.id.type == OU_POLICY.name:
        ou, name = OU_POLICY.split(resource.id.key).values()
        kind = "policies"
    else:
        ou, name = OU_APP.split(resource.id.key).values()
        kind = "apps"
    if _under(ou, subtree):
        by_ou[ou][kind][name] = resource.value


def _ou_file(ou: str, slug: str, found: dict[str, Any], console: str, read_at: str) -> ExportFile | None:
    left_out: list[str] = []
    settings: dict[str, Any] = {}
    policies: dict[str, Any] = found["policies"]
    for schema, value in sorted(policies.items()):
        if schema == URL_BLOCKING and isinstance(value, dict):
            got, why = _url_blocking(value)
        elif schema == SAFE_SEARCH and isinstance(value, dict):
            got, why = _safe_search(value)
        elif schema == DISABLED_MESSAGE:
            got, why = {}, [f"{DISABLED_MESSAGE}: the lost-device message (write a LostDevicePolicy for it)"]
        else:
            got, why = {}, [f"{schema}: not a setting the policy language manages"]
        settings.update(got)
        left_out += why
    apps: list[ChromeApp] = []
    for extension, value in sorted(found["apps"].items()):
        app = _app(extension, value)
        if app is None:
            left_out.append(f"app {extension}: install type {value!r}")
        else:
            apps.append(app)
    documents: list[ExportedDoc] = []
    targets = Targets(google_ous=[ou])
    if settings:
        model = WebFilter(
            kind="WebFilter",
            name=f"{slug}-web-filter",
            description=f"Web filter set at {ou}",
            targets=targets,
            **settings,
        )
        documents.append(ExportedDoc(model, (f"Chrome URL blocking and SafeSearch set at {ou} itself.",)))
    if apps:
        model = AppPush(
            kind="AppPush", name=f"{slug}-apps", description=f"Chrome apps set at {ou}", targets=targets, chrome=apps
        )
        documents.append(ExportedDoc(model, (f"Chrome apps installed, allowed or blocked at {ou} itself.",)))
    if not documents and not left_out:
        return None
    header = (
        f"Exported by `orchestrator export` from the {console}, org unit {ou}.",
        "Only settings made at this org unit itself; those it inherits are in its parents' files.",
    )
    return ExportFile(f"google/{slug}.yaml", header, tuple(documents), read_at=read_at, left_out=tuple(left_out))
