"""`--format yaml`: the spec with every unknown replaced by its solved value.

Written by PyYAML's safe dumper, so every string loads back as the same string (`yaml.safe_load`).
A string holding a character unsafe to show (`escape.visible`: control characters, line
separators such as U+0085 and U+2028, bidirectional overrides, ...) is double-quoted, and each
such character written as a YAML escape (ESC `"\\e"`, NEL `"\\N"`, U+202E `"\\u202e"`), never
raw: PyYAML would write a NEL or U+2028 raw inside single quotes, which loads back as another
string.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from planner.graph import Network
from planner.plan import Plan
from planner.report.escape import visible


def solved_spec(network: Network, plan: Plan) -> dict[str, Any]:
    """The spec's data with every unknown replaced; it solves again to the same plan."""
    data = copy.deepcopy(network.loaded.source.data)
    for unknown in network.unknowns:
        value = plan.assignment[unknown.name]
        if unknown.name.startswith("$"):
            variables = data.get("variables") or {}
            variables[unknown.name[1:]] = value
            data["variables"] = variables
            continue
        *parents, last = unknown.path
        target = data
        for key in parents:
            target = target[key]
        target[last] = value
    return data


class _Dumper(yaml.SafeDumper):
    pass


class _OneLine(dict):
    """A mapping written on one line, as layers are in the example specs."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = '"' if visible(value) != value else None  # only double quotes can escape a character
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _represent_list(dumper: yaml.SafeDumper, value: list) -> yaml.Node:
    flow = all(not isinstance(v, dict) for v in value)  # the layer list in block style, small lists inline
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(
    _OneLine, lambda dumper, value: dumper.represent_mapping("tag:yaml.org,2002:map", value, flow_style=True)
)


def render(network: Network, plans: list[Plan]) -> str:
    """One YAML document per plan."""
    docs = []
    for plan in plans:
        data = solved_spec(network, plan)
        data["layers"] = [_OneLine(layer) for layer in data["layers"]]
        docs.append(data)
    text = yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
    # PyYAML escapes control characters and line breaks in double quotes, not format characters such as
    # U+202E; those are left only inside double-quoted scalars (above), where `visible` writes YAML escapes.
    return "\n".join(visible(line) for line in text.split("\n"))
