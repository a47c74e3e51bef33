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
# batchChangeStatus deprovisionReason: the full enum names of BatchChangeChromeOsDeviceStatusRequest in the bundled
# discovery document (googleapiclient/discovery_cache/documents/admin.directory_v1.json). Only the reasons an
# administrator may choose: the deprecated ones (…_UPGRADE, …_DOMAIN_MOVE, …_SERVICE_EXPIRATION, …_OTHER),
# …_NOT_REQUIRED (set by Google when licenses return to the pool) and …_REPAIR_CENTER ("can only be set by
# Repair Service Center during RMA") are left out. Keys are the policy language's `reimage.google.reason` values.
DEPROVISION_REASON_NAMES = {
    "retiring_device": "DEPROVISION_REASON_RETIRING_DEVICE",
    "same_model_replacement": "DEPROVISION_REASON_SAME_MODEL_REPLACEMENT",
    "different_model_replacement": "DEPROVISION_REASON_DIFFERENT_MODEL_REPLACEMENT",
    "upgrade_transfer": "DEPROVISION_REASON_UPGRADE_TRANSFER",
}
RETIRING_DEVICE = DEPROVISION_REASON_NAMES["retiring_device"]
DEPROVISION_REASONS = tuple(DEPROVISION_REASON_NAMES.values())
