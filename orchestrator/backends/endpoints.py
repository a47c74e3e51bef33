"""Where a backend's endpoint points: a loopback emulator needs no credentials, anything else is a real tenant."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlparse


def is_loopback(url: str | None) -> bool:
    """True when `url` points at this machine (emulators run there and need no credentials)."""
    if not url:
        return False
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
