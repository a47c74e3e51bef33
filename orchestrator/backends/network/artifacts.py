"""Keep ansible-runner artifacts free of secrets.

ansible-runner writes the child's whole environment (tokens, API keys, passwords, if any are set) into
`artifacts/<ident>/command`. `scrub_artifacts` replaces every environment value there with a marker and
tightens permissions, so only variable names remain.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

REDACTED = "<redacted>"


def scrub_artifacts(artifact_dir: Path) -> None:
    """Redact environment values in `command`; drop runner's `env.list` if present."""
    command = artifact_dir / "command"
    if command.exists():
        try:
            data = json.loads(command.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            command.write_text(json.dumps({"scrubbed": True}), encoding="utf-8")
        else:
            if isinstance(data.get("env"), dict):
                data["env"] = {name: REDACTED for name in sorted(data["env"])}
            command.write_text(json.dumps(data, indent=1), encoding="utf-8")
    (artifact_dir / "env.list").unlink(missing_ok=True)
    for path in [artifact_dir, *artifact_dir.rglob("*")]:
        os.chmod(path, 0o700 if path.is_dir() else 0o600)
