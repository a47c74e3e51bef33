"""Logging setup: human lines by default, JSON lines for machines; secrets and PII are scrubbed."""

from __future__ import annotations

import json
import logging
import re

from orchestrator.core.redact import redact_text

_SECRET = re.compile(
    r"(?i)(bearer\s+[A-Za-z0-9._~+/=-]+|(client_secret|access_token|refresh_token|password|"
    r"private_key)[\"']?\s*[:=]\s*[\"']?[^\s\"',}]+)"
)


def scrub(text: str) -> str:
    return redact_text(_SECRET.sub(lambda m: m.group(0).split()[0][:6] + "***", text))


class ScrubbingFormatter(logging.Formatter):
    def __init__(self, as_json: bool):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        message = scrub(record.getMessage())
        if self.as_json:
            return json.dumps(
                {"time": self.formatTime(record), "level": record.levelname, "logger": record.name, "message": message}
            )
        record = logging.makeLogRecord({**record.__dict__, "msg": message, "args": ()})
        return super().format(record)


def setup_logging(fmt: str, level: int) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(ScrubbingFormatter(fmt == "json"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("googleapiclient.discovery_cache", "httpx", "azure", "urllib3"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
