"""Student privacy: email addresses and names are replaced in anything we print or save for review.

A token is `<redacted:` + the first 12 hex digits of HMAC-SHA256(district key, value) + `>`: the same student
gives the same token within one district (reports and journal entries can be compared), but without the key a
roster does not turn tokens back into names (an unkeyed hash would: hash every email on the roster and look).
The key is generated on first use, 32 random bytes in `redaction.key` beside the journal (`.orchestrator/`, kept
out of git), mode 0600; `use_district_key(folder)` selects it. Until one is selected the process uses a random
key of its own: tokens are then not stable across runs, but never reversible.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path
from typing import Any

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
PII_KEYS = {
    "annotatedUser",
    "assignedStudent",
    "notes",
    "userPrincipalName",
    "emailAddress",
    "userDisplayName",
    "user",
    "student",
    "recentUsers",
}
KEY_FILE = "redaction.key"
_state: dict[str, bytes] = {}


def district_key(folder: str | Path) -> bytes:
    """The key in `folder`/redaction.key, created (mode 0600, the folder too) the first time it is asked for."""
    path = Path(folder) / KEY_FILE
    for _ in range(2):
        try:
            return bytes.fromhex(path.read_text().strip())
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            key = secrets.token_bytes(32)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue  # another run created it a moment ago: read theirs
            with os.fdopen(fd, "w") as handle:
                handle.write(key.hex() + "\n")
            return key
    return bytes.fromhex(path.read_text().strip())


def use_district_key(folder: str | Path) -> None:
    """Key every token from now on with the district's key (kept in `folder`, normally the journal's folder)."""
    _state["key"] = district_key(folder)


def _key() -> bytes:
    return _state.setdefault("key", secrets.token_bytes(32))


def _token(value: str) -> str:
    return "<redacted:" + hmac.new(_key(), value.encode(), hashlib.sha256).hexdigest()[:12] + ">"


def redact_text(text: str) -> str:
    return _EMAIL.sub(lambda m: _token(m.group(0)), text)


def redact(value: Any) -> Any:
    """Redact emails anywhere, and whole values under keys that hold people's names or accounts.

    A list or mapping under such a key is redacted item by item instead: a plan's or report's own `notes` (a list
    of the tool's messages) keeps its shape, while a device's `notes` (a string) becomes one token."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, dict):
        return {
            k: (_token(str(v)) if k in PII_KEYS and v and not isinstance(v, list | dict) else redact(v))
            for k, v in value.items()
        }
    return value


def redact_field(name: str, value: str) -> str:
    """One named field (a CSV column, a history entry): the whole value when the field holds a person."""
    return _token(value) if name in PII_KEYS and value else redact_text(value)
