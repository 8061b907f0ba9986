"""The walk step: one layer of a network under an assignment of its unknowns.

`layer_transfer` is the one step shared by the Z3 encoding, the counters and the concrete
plan calculator: it instantiates a layer's terms, applies its op's transfer, and adds the
rules every layer has (sizes at least 1, element counts within int64, `expect`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from planner.arithmetic import INT64_MAX, Bool, Num, all_of
from planner.domains import Unknown
from planner.errors import Diagnostic, LayerError
from planner.graph import Network, Node
from planner.ops import OPS, Call, Rule, Shape, Transfer


def instantiate(value: Any, env: Callable[[Unknown], Num]) -> Any:
    """Replace every Unknown inside a parameter value (tuples nest) by env(unknown)."""
    if isinstance(value, Unknown):
        return env(value)
    if isinstance(value, tuple):
        return tuple([instantiate(v, env) for v in value])
    return value


def layer_transfer(
    network: Network,
    node: Node,
    inputs: tuple[Shape, ...],
    env: Callable[[Unknown], Num],
    overrides: Mapping[Unknown, int] | None = None,
) -> Transfer:
    """The node's transfer with the rules every layer has; raises LayerError for structural problems."""
    lookup = env if not overrides else (lambda u: overrides[u] if u in overrides else env(u))
    transfer = op_transfer(network, node, inputs, lookup)
    rules = list(transfer.rules)
    rules += [
        Rule(size >= 1, "size", "output size on axis {} is {}; every size must be at least 1", (a, size))
        for a, size in enumerate(transfer.shape[2:])
        if not isinstance(size, int) or size < 1
    ]
    if "input" in node.inputs:  # an input shape known in the spec is checked when it is loaded
        fits = fits_int64(inputs[node.inputs.index("input")])
        if fits is not True:
            rules.append(
                Rule(
                    fits,
                    "size-range",
                    "the input shape {} has more elements than int64 holds (2**63 - 1); no framework can hold it",
                    (inputs[node.inputs.index("input")],),
                )
            )
    fits = fits_int64(transfer.shape)
    if fits is not True:
        rules.append(
            Rule(
                fits,
                "size-range",
                "output shape {} has more elements than int64 holds (2**63 - 1); no framework can hold it",
                (transfer.shape,),
            )
        )
    if node.expect is not None:
        if len(node.expect) != len(transfer.shape):
            raise LayerError(
                "expect",
                f"'expect' has {len(node.expect)} entries but the layer's output has rank {len(transfer.shape)}",
                "expect",
            )
        shown = [("?" if e is None else e) for e in node.expect]
        rules += [
            Rule(
                got == want, "expect", "expected output shape {}, the layer gives {}", (shown, transfer.shape), "expect"
            )
            for got, want in zip(transfer.shape, node.expect, strict=True)
            if want is not None
        ]
    return Transfer(transfer.shape, tuple(rules), transfer.params, OPS[node.op].attributes(node.model), transfer.pieces)


def op_transfer(network: Network, node: Node, inputs: tuple[Shape, ...], env: Callable[[Unknown], Num]) -> Transfer:
    """The op's own transfer of the node, without the rules every layer has (sizes at least 1, element
    counts within int64, `expect`): what the bound passes read the shape of."""
    params = {key: instantiate(value, env) for key, value in node.params.items()}
    return OPS[node.op].transfer(Call(params, node.model, inputs, network.dialect))


def fits_int64(shape: Shape) -> Bool:
    """The tensor's element count is at most INT64_MAX: exact over ints and for one Z3 term among ints;
    for several Z3 terms, each at most the root of the bound that is left (enough, and linear)."""
    known, terms = 1, []
    for size in shape:
        if isinstance(size, int):
            known *= size
        else:
            terms.append(size)
    if known <= 0 or not terms:
        return known <= INT64_MAX
    left = INT64_MAX // known
    if len(terms) == 1:
        return terms[0] <= left
    root = _iroot(left, len(terms))
    return all_of(*(t <= root for t in terms))


def _iroot(n: int, k: int) -> int:
    """The largest r with r**k <= n (n >= 0)."""
    r = int(round(n ** (1 / k)))
    while r**k > n:
        r -= 1
    while (r + 1) ** k <= n:
        r += 1
    return r


def broken_rules(transfer: Transfer) -> list[Rule]:
    """The rules an int transfer breaks: the causes, not their symptoms, each said once for all axes it breaks on."""
    broken = [r for r in transfer.rules if not r.holds]
    broken = [r for r in broken if r.code != "size"] or broken  # a size below 1 is the symptom of the others
    merged: dict[tuple, tuple[Rule, str, list[str]]] = {}  # (rule, 'axis' or 'dim', the axes it breaks on)
    for rule in broken:
        match = _AXIS.search(rule.message)
        key = (rule.code, rule.param, _AXIS.sub("", rule.message))
        entry = merged.setdefault(key, (rule, match.group(1) if match else "axis", []))
        entry[2].extend([match.group(2)] if match else [])
    result = []
    for (code, param, message), (rule, word, axes) in merged.items():
        if len(axes) > 1:
            plural = {"axis": "axes", "dim": "dims"}[word]
            rule = Rule(rule.holds, code, "{} on {} {}", (message, plural, ", ".join(axes)), param)
        result.append(rule)
    return result


_AXIS = re.compile(r" on (axis|dim) (\d+)$")


def located(network: Network, node: Node, code: str, message: str, param: str | None) -> Diagnostic:
    """A diagnostic pointing at the layer's key `param` when the spec writes it, else at the layer."""
    data = network.loaded.source.data["layers"][node.index]
    path = (*node.path, param) if param and param in data else node.path
    return network.diagnostic(path, code, f"{node.name}: {message}", layer=node.name)
