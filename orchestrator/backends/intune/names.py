"""The strings the Intune compiler writes and the Intune backend reads, each defined once.

Managed web filter profiles and settings policies are found by name: `profile_name(policy)` builds it,
`is_managed` recognises it, so the two cannot drift. Keys are built and split with the resource types in `spec.py`
(`CONFIG_PROFILE.key(platform, name)`, `REIMAGE.split(key)`).
"""

from __future__ import annotations

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
