"""`--format yaml`: the spec with every unknown replaced by its solved value."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from planner.graph import Network
from planner.plan import Plan


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


def _represent_list(dumper: yaml.SafeDumper, value: list) -> yaml.Node:
    flow = all(not isinstance(v, dict) for v in value)  # the layer list in block style, small lists inline
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


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
    return yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
