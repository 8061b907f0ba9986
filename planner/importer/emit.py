"""The neutral graph -> spec YAML: one layer per node, one line each, its source op in a comment.

Parameters are written in the spec's shortest form (`3` for `[3, 3]`, keys at their default left
out), `input:` only where a layer does not read the previous one. With `free`, the chosen
parameters of every conv, conv_transpose and pooling layer (whose name `free_layers` matches)
become `"?"`, and the traced shapes stay as `expect` on those layers, on every join and on the
output, so that solving recovers plans with the model's shapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from planner.importer.nodes import INPUT, Graph, Node, cannot_import, layer_names
from planner.ops import OPS
from planner.report.escape import visible
from planner.spec.models import Defaults, field_default, fields_of

FREEABLE = ("kernel", "stride", "padding", "dilation", "output_padding")
_SLIDING = ("conv", "conv_transpose", "maxpool", "avgpool")  # the layers --free frees
_JOINS = ("concat", "add", "mul")
_AXES = ("kernel", "stride", "dilation", "output_padding", "output_size", "size")  # per-axis tuples


@dataclass(frozen=True)
class Layer:
    """One layer of the spec as written, with the node it came from."""

    name: str
    fields: dict[str, Any]
    node: Node


def spec_layers(graph: Graph, free: tuple[str, ...] = (), free_layers: str | None = None) -> list[Layer]:
    """The spec's layers for `graph`, in its order, each with the node it stands for."""
    names = layer_names(list(graph.nodes))
    names[INPUT] = INPUT
    pattern = re.compile(free_layers) if free_layers is not None else None
    layers: list[Layer] = []
    previous = INPUT
    last = graph.nodes[-1].id if graph.nodes else None
    for node in graph.nodes:
        fields: dict[str, Any] = {"name": names[node.id], "op": node.op}
        data = node.inputs[:1] if "like" in node.params else node.inputs
        if node.op in _JOINS:
            fields["inputs"] = [_name(names, i) for i in data]
        elif data[0] != previous:
            fields["input"] = _name(names, data[0])
        freed = node.op in _SLIDING and bool(free) and (pattern is None or pattern.search(names[node.id]) is not None)
        fields.update(_params(node, names, free if freed else ()))
        if freed or node.op in _JOINS or node.id == last:
            fields["expect"] = list(node.shape)
        _check_expressible(graph, node, fields)
        layers.append(Layer(names[node.id], fields, node))
        previous = node.id
    return layers


def _name(names: dict[str, str], ref: str) -> str:
    """The spec's name for what a node reads: a layer's, or a split's piece `name[i]`."""
    base, bracket, piece = ref.partition("[")
    return names[base] + bracket + piece


def _params(node: Node, names: dict[str, str], free: tuple[str, ...]) -> dict[str, Any]:
    """The node's parameters as the spec writes them: freed ones as "?", defaults left out."""
    params = dict(node.params)
    mode = params.pop("padding_mode", None)
    out: dict[str, Any] = {}
    kernel_freed = "kernel" in free
    for key, value in params.items():
        if key in free and key in fields_of(node.op):
            out[key] = _unknown(key, value)
            continue
        if key == "like":
            out[key] = names[value]
            continue
        written = _written(key, mode if key == "padding" and mode is not None else value)
        default = field_default(node.op, key)
        if key == "stride" and default is None and not kernel_freed and written == _written("kernel", params["kernel"]):
            continue  # a pool's stride defaults to its kernel
        if type(default) is not object and written == default:
            continue
        out[key] = written
    return out


def _written(key: str, value: Any) -> Any:
    """A per-axis tuple as one value when every axis agrees; padding pairs as one value per axis
    when each is symmetric."""
    if key == "padding" and isinstance(value, tuple):
        if all(b == e for b, e in value):
            return _written("kernel", tuple(b for b, _ in value))
        return [list(pair) for pair in value]
    if key in _AXES and isinstance(value, tuple):
        return value[0] if len(set(value)) == 1 else list(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _unknown(key: str, value: Any) -> Any:
    """`"?"` where the model's value is one for every axis, one `"?"` per axis (or per side) otherwise."""
    if key == "padding":
        if any(b != e for b, e in value):
            return [["?", "?"] for _ in value]
        value = tuple(b for b, _ in value)
    return "?" if len(set(value)) == 1 else ["?"] * len(value)


def _check_expressible(graph: Graph, node: Node, fields: dict[str, Any]) -> None:
    where = node.where or graph.source
    if node.op not in OPS:
        raise cannot_import(where, node.label, node.source_op, f"planner has no op for it (it would be '{node.op}')")
    accepted = fields_of(node.op)
    for key in fields:
        if key not in accepted:
            why = f"planner's {node.op} has no '{key}' yet (here {key}={fields[key]!r})"
            raise cannot_import(where, node.label, node.source_op, why)


def widened_defaults(layers: list[Layer], free: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """`defaults` for the freed parameters whose model values lie beyond planner's built-in domains
    (an ASPP's padding 18): the built-in range, stretched to the largest such value."""
    builtin = Defaults()
    wanted: dict[str, dict[str, int]] = {}
    for key in free:
        values = [v for layer in layers if _freed(layer, key) for v in _numbers(layer.node.params[key])]
        domain = getattr(builtin, key)
        if values and max(values) > domain.max:
            wanted[key] = {"min": min(domain.min, min(values)), "max": max(values)}
    return wanted


def _freed(layer: Layer, key: str) -> bool:
    return _has_unknown(layer.fields.get(key))


def _has_unknown(value: Any) -> bool:
    return value == "?" or isinstance(value, list) and any(_has_unknown(v) for v in value)


def _numbers(value: Any) -> list[int]:
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _numbers(v)]
    return [value]


def render(graph: Graph, layers: list[Layer], free: tuple[str, ...]) -> str:
    """The spec's YAML text: a header saying where it came from, then one line per layer."""
    lines = [
        _comment(f"Imported by `planner import` from {graph.source} at input shape {list(graph.input_shape)}."),
        "# Each layer's comment names the op of the model it came from.",
    ]
    if free:
        lines.append(_comment(f"Freed: {', '.join(free)}; expect keeps the model's shapes where they must hold."))
    lines += [f"name: {_flow(graph.name)}"]
    if graph.dialect != "pytorch":
        lines.append(f"dialect: {graph.dialect}")
    lines += ["input:", f"  shape: {_flow(list(graph.input_shape))}"]
    defaults = widened_defaults(layers, free)
    if defaults:
        lines.append("defaults:")
        lines += [f"  {key}: {_flow(domain)}" for key, domain in defaults.items()]
    lines.append("layers:")
    for layer in layers:
        lines.append(f"  - {_flow(layer.fields)}  {_comment(layer.node.source_op)}")
    return "\n".join(lines) + "\n"


def _flow(value: Any) -> str:
    """One YAML flow value on one line (PyYAML quotes whatever would read back as something else)."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=float("inf"), allow_unicode=True)
    text = text.removesuffix("\n").removesuffix("\n...")
    return text.replace("'?'", '"?"')


def _comment(text: str) -> str:
    return "# " + visible(text).replace("\n", " ")
