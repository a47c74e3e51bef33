"""The strings the Google compiler writes and the Google backend reads, each defined once.

Chrome Policy schema names and the fields of them we manage, the Directory API's device statuses, and the
reimage commands (issueCommand types, or a DEPROVISION through batchChangeStatus with its reason). Keys are
built and split with the resource types in `spec.py` (`OU_POLICY.key(ou, schema)`, `REIMAGE.split(key)`).
"""

from __future__ import annotations

# Chrome Policy schemas.
URL_BLOCKING = "chrome.users.UrlBlocking"
SAFE_SEARCH = "chrome.users.SafeSearchRestrictedMode"
DISABLED_MESSAGE = "chrome.devices.DisabledDeviceReturnInstructions"
APP_INSTALL = "chrome.users.apps.InstallType"
APPS_WILDCARD = "chrome.users.apps.*"

# Their managed fields.
URL_BLOCKLIST = "urlBlocklist"
URL_ALLOWLIST = "urlAllowlist"
FORCE_SAFE_SEARCH = "forceGoogleSafeSearch"
FORCE_YOUTUBE = "forceYoutubeRestrictedMode"
DISABLED_TEXT = "deviceDisabledMessage"
APP_INSTALL_TYPE = "appInstallType"

# device_status values (chromeosdevices.status).
ACTIVE = "ACTIVE"
DISABLED = "DISABLED"

# reimage values: {"command": one of COMMANDS} or {"command": DEPROVISION, "deprovisionReason": ...}.
WIPE_USERS = "WIPE_USERS"
REMOTE_POWERWASH = "REMOTE_POWERWASH"
COMMANDS = (WIPE_USERS, REMOTE_POWERWASH)
DEPROVISION = "DEPROVISION"
RETIRING_DEVICE = "RETIRING_DEVICE"
DEPROVISION_REASONS = (RETIRING_DEVICE, "DIFFERENT_MODEL_REPLACEMENT", "UPGRADE_REPLACEMENT", "REPAIR_REPLACEMENT")
