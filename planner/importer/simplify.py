"""Passes over the neutral graph, each returning a new graph: plumbing collapsed into the one
layer it amounts to, and resizes to another tensor's size linked to that tensor (`like:`)."""

from __future__ import annotations

import dataclasses
from math import prod

from planner.importer.nodes import INPUT, RESHAPE, Graph, Node, Shape, cannot_import
from planner.spec.models import fields_of


def collapse_plumbing(graph: Graph) -> Graph:
    """Each run of shape-only plumbing read by a layer becomes what it amounts to, judged by the
    shapes at its two ends: nothing (a view to the same shape), `identity` (a reshape-transpose-
    reshape that gives the same shape back, as a channel shuffle does), `flatten`, `reshape` (of
    the spatial axes), `pixel_shuffle` or `pixel_unshuffle`; any other reshape is an error naming the node."""
    by_id = {node.id: node for node in graph.nodes}
    read = {graph.output, *graph.like.values()}
    for node in graph.nodes:
        if node.op != RESHAPE:
            read.update(node.inputs)
    alias: dict[str, str] = {}
    nodes: list[Node] = []
    for node in graph.nodes:
        if node.op != RESHAPE:
            nodes.append(dataclasses.replace(node, inputs=tuple(alias.get(i, i) for i in node.inputs)))
            continue
        if node.id not in read:
            continue  # only more plumbing reads it
        chain = [node]
        while chain[0].inputs[0] in by_id and by_id[chain[0].inputs[0]].op == RESHAPE:
            chain.insert(0, by_id[chain[0].inputs[0]])
        start = chain[0].inputs[0]
        begin = graph.input_shape if start == INPUT else by_id[start].shape
        moves = any(n.moves_data for n in chain)
        op, params = _amounts_to(begin, node.shape, moves)
        if op is None:
            alias[node.id] = start
            continue
        if op == RESHAPE:
            why = f"it reshapes {list(begin)} to {list(node.shape)}; planner has no op for that"
            raise cannot_import(node.where or graph.source, node.label, node.source_op, why)
        nodes.append(
            dataclasses.replace(
                node,
                op=op,
                params=params,
                inputs=(start,),
                source_op=" -> ".join(n.source_op for n in chain),
            )
        )
    output = alias.get(graph.output, graph.output)
    like = {up: alias.get(target, target) for up, target in graph.like.items()}
    return dataclasses.replace(graph, nodes=tuple(nodes), output=output, like=like)


def _amounts_to(begin: Shape, end: Shape, moves: bool) -> tuple[str | None, dict]:
    """The layer a reshape from `begin` to `end` is (None: no layer), or RESHAPE when there is none."""
    if end == begin:
        return ("identity" if moves else None), {}
    if len(begin) >= 3 and end == (begin[0], prod(begin[1:])):
        return "flatten", {}
    if len(begin) == len(end) == 4 and begin[0] == end[0] and moves:
        (c, h, w), (c2, h2, w2) = begin[1:], end[1:]
        if h2 > h and h2 % h == 0 and h2 // h == w2 // w and w2 % w == 0 and c == c2 * (h2 // h) ** 2:
            return "pixel_shuffle", {"upscale_factor": h2 // h}
        if h > h2 and h % h2 == 0 and h // h2 == w // w2 and w % w2 == 0 and c2 == c * (h // h2) ** 2:
            return "pixel_unshuffle", {"downscale_factor": h // h2}
    if len(begin) >= 3 and 3 <= len(end) <= 5 and end[:2] == begin[:2] and prod(end[2:]) == prod(begin[2:]):
        if not moves:  # the spatial axes reshaped, batch and channels kept (x.flatten(2), x.view(n, c, h * w))
            return "reshape", {"shape": list(end[2:])}
    return RESHAPE, {}


def link_resizes(graph: Graph) -> Graph:
    """An upsample to a fixed `size` that is some earlier layer's spatial size takes `like: <layer>`
    instead, once planner's upsample has `like`: the layer whose shape the source read (ONNX's
    Shape -> Gather -> Concat -> Resize says which), else the branch it is joined with (a U-Net's
    skip), else the nearest layer it descends from with that size (a pooled branch resized to its
    input). The traced sizes are constants, so only the sizes say which layer it was."""
    if "like" not in fields_of("upsample"):
        return graph
    by_id = {node.id: node for node in graph.nodes}
    position = {INPUT: -1, **{node.id: n for n, node in enumerate(graph.nodes)}}
    readers: dict[str, list[Node]] = {}
    for node in graph.nodes:
        for i in node.inputs:
            readers.setdefault(i, []).append(node)

    def spatial(ref: str) -> Shape:
        return graph.input_shape[2:] if ref == INPUT else by_id[ref].shape[2:]

    nodes = []
    for node in graph.nodes:
        size = node.params.get("size") if node.op == "upsample" else None
        if size is None:
            nodes.append(node)
            continue
        target = graph.like.get(node.id)
        if target is None or target not in position or spatial(target) != tuple(size):
            target = _joined_with(node, size, readers, position, spatial) or _descends_from(node, size, by_id, spatial)
        if target is None:
            nodes.append(node)
            continue
        params = {k: v for k, v in node.params.items() if k != "size"}
        nodes.append(dataclasses.replace(node, params={**params, "like": target}, inputs=(*node.inputs, target)))
    return dataclasses.replace(graph, nodes=tuple(nodes))


def _joined_with(node: Node, size: Shape, readers, position, spatial) -> str | None:
    """The earliest other input, of the size, of the first join the upsample's output reaches through
    layers that keep the size."""
    frontier, seen = [node.id], {node.id}
    for _ in range(8):
        following = []
        for ref in frontier:
            for reader in readers.get(ref, []):
                if reader.op in ("concat", "add", "mul") and len(set(reader.inputs)) > 1:
                    others = [i for i in reader.inputs if i != ref and position[i] < position[node.id]]
                    others = [i for i in others if spatial(i) == tuple(size)]
                    if others:
                        return min(others, key=position.__getitem__)
                if reader.id not in seen and reader.shape[2:] == tuple(size):
                    seen.add(reader.id)
                    following.append(reader.id)
        frontier = following
    return None


def _descends_from(node: Node, size: Shape, by_id, spatial) -> str | None:
    """The nearest layer of that size on the upsample's first-input path back to the network's input."""
    ref = node.inputs[0]
    while True:
        if spatial(ref) == tuple(size):
            return ref
        if ref == INPUT:
            return None
        ref = by_id[ref].inputs[0]
