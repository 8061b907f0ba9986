"""A JSON Schema of the spec format, generated from the pydantic models (`planner schema`).

Editors with yaml-language-server complete and check specs against it: put
`# yaml-language-server: $schema=planner-spec.schema.json` on a spec's first line.
The schema checks the form of a spec; what the forms mean (domains, shapes, the rules of
each op) is checked by `planner solve` and `planner check`.
"""

from __future__ import annotations

import json
from typing import Any

from planner.spec.models import Spec

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def spec_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a planner spec file."""
    schema = Spec.model_json_schema()
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "planner spec",
        "description": 'A network for planner: input shape, layers with known or unknown ("?") parameters, '
        "constraints and an objective (SPEC.md section 1).",
        **{key: value for key, value in schema.items() if key != "title"},
    }


def render() -> str:
    return json.dumps(spec_schema(), indent=2, sort_keys=False) + "\n"
