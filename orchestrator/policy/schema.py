"""JSON Schema for every policy kind, for editors (`# yaml-language-server: $schema=...`) and CI checks."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from orchestrator.policy.models import KINDS


def policy_schema() -> dict[str, Any]:
    _, top = models_json_schema([(model, "validation") for model in KINDS.values()], ref_template="#/$defs/{model}")
    defs = top.get("$defs", {})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "K-12 fleet orchestrator policy document",
        "description": "One YAML document: kind selects the schema. Kinds: " + ", ".join(KINDS),
        "oneOf": [{"$ref": f"#/$defs/{model.__name__}"} for model in KINDS.values()],
        "$defs": defs,
    }
