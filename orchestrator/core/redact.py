"""Student privacy: email addresses and names are replaced in anything we print or save for review."""

from __future__ import annotations

import hashlib
import re
from typing import Any

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
PII_KEYS = {
    "annotatedUser",
    "assignedStudent",
    "userPrincipalName",
    "emailAddress",
    "userDisplayName",
    "user",
    "student",
    "recentUsers",
}


def _token(value: str) -> str:
    return "<redacted:" + hashlib.sha256(value.encode()).hexdigest()[:8] + ">"


def redact_text(text: str) -> str:
    return _EMAIL.sub(lambda m: _token(m.group(0)), text)


def redact(value: Any) -> Any:
    """Redact emails anywhere, and whole values under keys that hold people's names or accounts."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, dict):
        return {k: (_token(str(v)) if k in PII_KEYS and v else redact(v)) for k, v in value.items()}
    return value
