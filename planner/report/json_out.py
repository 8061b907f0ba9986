"""`--format json` (SPEC 2.1): one object on stdout; short lists stay on one line."""

from __future__ import annotations

import json

from planner.solver.solve import SolveResult


def _flat(value: object) -> bool:
    """A list of numbers, or of lists of numbers (a shape, a kernel, padding pairs)."""
    return isinstance(value, list) and all(
        not isinstance(v, (dict, list)) or isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v)
        for v in value
    )


def dumps(value: object, indent: int = 0) -> str:
    """Indented JSON with shapes and per-axis parameters kept on one line."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k)}: {dumps(v, indent + 2)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and value and not _flat(value):
        return "[\n" + ",\n".join(inner + dumps(v, indent + 2) for v in value) + f"\n{pad}]"
    return json.dumps(value, separators=(", ", ": "))


def render(result: SolveResult, *, with_count: bool = False) -> str:
    return dumps(result.to_dict(with_count=with_count)) + "\n"
