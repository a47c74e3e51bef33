"""The strings the Intune compiler writes and the Intune backend reads, each defined once.

Managed web filter profiles and settings policies are found by name: `profile_name(policy)` builds it,
`is_managed` recognises it, so the two cannot drift. Keys are built and split with the resource types in `spec.py`
(`CONFIG_PROFILE.key(platform, name)`, `REIMAGE.split(key)`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.core.resources import ResourceId
from orchestrator.core.types import ResourceType

MANAGED_PREFIX = "K12 "
PROFILE_PLATFORMS = ("ios",)  # deviceConfigurations (config_profile): the iOS/iPadOS web content filter
SETTINGS_PLATFORMS = ("windows",)  # Settings Catalog configurationPolicies (settings_policy): Edge URL lists

# reimage values: {"action": WIPE, "keepEnrollmentData": bool, "keepUserData": bool} or {"action": RETIRE}.
WIPE = "wipe"
RETIRE = "retire"


def profile_name(policy_name: str) -> str:
    """The display name of the web filter profile compiled from the WebFilter policy `policy_name`."""
    return f"{MANAGED_PREFIX}WebFilter {policy_name}"


def is_managed(display_name: str) -> bool:
    """Whether a profile display name is ours (authoritative: a managed profile no policy wants is deleted)."""
    return display_name.startswith(MANAGED_PREFIX)


# LostDevicePolicy intune.windows: what a lost Windows device gets instead of a remote lock.
WINDOWS_DISABLE = "disable_device"
WINDOWS_NONE = "none"


def one_managed_each(
    records: Mapping[tuple[str, str], list[dict[str, Any]]],
    rtype: ResourceType,
    noun: tuple[str, str],
    problems: list[str],
) -> list[tuple[ResourceId, dict[str, Any]]]:
    """(resource id, record) for every (platform, name) that exactly one managed console object carries.

    `noun` is (singular, plural) for the messages, e.g. ("profile", "profiles").

    Two objects with one managed name, or a name the key codec cannot carry, are problems for a person (the
    plan stops), never a guess about which one is ours.
    """
    out: list[tuple[ResourceId, dict[str, Any]]] = []
    for (platform, name), same in sorted(records.items()):
        if len(same) > 1:
            ids = ", ".join(sorted(r["id"] for r in same))
            problems.append(
                f"Intune has {len(same)} {platform} {noun[1]} named {name!r} ({ids}); delete the extras so exactly one"
                " is managed"
            )
            continue
        try:
            out.append((rtype.id(platform, name), same[0]))
        except ValueError as exc:
            problems.append(f"Intune {noun[0]} {same[0]['id']}: {exc}; rename it")
    return out
