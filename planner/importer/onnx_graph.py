"""An ONNX model -> the neutral graph: every tensor's static shape from
`onnx.shape_inference.infer_shapes(model, data_prop=True)`, the constant subgraphs that compute
Resize sizes, Pad pads, Slice starts or Reshape shapes folded (with onnx's reference evaluator, a
node at a time, then shapes inferred again until nothing changes), and each op mapped to a node.

Layer names come from the node names torch's exporter writes (`/layer1/layer1.0/conv1/Conv` is the
module `layer1.0.conv1`); the comment of a layer is the ONNX op (`Conv`). The dialect is `onnx`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from planner.errors import UsageError
from planner.importer.nodes import INPUT, Graph, ImportFailed, Node, cannot_import

_MAX_PASSES = 50  # fold-and-infer rounds; each round folds at least one more node or stops


def read_onnx(path: str, input_shape: tuple[int, ...] | None) -> Graph:
    """The graph of the ONNX model at `path`, at `input_shape` (default: its input's static shape)."""
    from planner.importer import onnx_ops  # noqa: F401  (registers a handler per ONNX op)

    model = _load(path)
    return _Reader(model, path).graph(input_shape)


def _load(path: str) -> onnx.ModelProto:
    if not os.path.isfile(path):
        why = "No such file or directory" if not os.path.exists(path) else "it is not a file"
        raise ImportFailed(path, "import-source", f"cannot read the file: {why}")
    try:
        return onnx.load(path)
    except Exception as e:  # protobuf's DecodeError and friends: not an ONNX file
        raise ImportFailed(path, "import-source", f"not an ONNX model: {type(e).__name__}: {e}") from None


@dataclass(frozen=True)
class _Mapped:
    op: str
    params: dict[str, Any]
    inputs: tuple[str, ...] | None = None  # tensor names; None: the node's first input
    moves: bool = False
    source_op: str | None = None  # None: the node's op


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    out = {}
    for a in node.attribute:
        value = helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, float):
            value = float(str(np.float32(value)))  # 0.2, not 0.20000000298023224
        out[a.name] = value
    return out


class _Reader:
    def __init__(self, model: onnx.ModelProto, path: str):
        self.model, self.path = model, path
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.shapes: dict[str, tuple[int | None, ...]] = {}
        self.data: dict[str, str] = {}  # tensor -> the id of the data it is
        self.nodes: list[Node] = []
        self.like: dict[str, str] = {}
        self.producer = {out: node for node in model.graph.node for out in node.output}
        self.readers: dict[str, int] = {}
        self.read_by: dict[str, list[onnx.NodeProto]] = {}
        for node in model.graph.node:
            for name in node.input:
                self.readers[name] = self.readers.get(name, 0) + 1
                self.read_by.setdefault(name, []).append(node)
        self.fused: dict[str, str] = {}  # outputs of nodes folded into an earlier layer -> that layer's output
        self.fused_ids: dict[str, str] = {}  # the first node of such a pattern -> the output that ends it
        self.node: onnx.NodeProto | None = None

    # ------------------------------------------------------------------ the whole graph

    def graph(self, input_shape: tuple[int, ...] | None) -> Graph:
        graph = self.model.graph
        inputs = [i for i in graph.input if i.name not in self.consts]
        if len(inputs) != 1:
            names = ", ".join(i.name for i in inputs)
            raise ImportFailed(
                self.path, "import-inputs", f"planner's networks have one input; the model has {len(inputs)} ({names})"
            )
        shape = self._input_shape(inputs[0], input_shape)
        self.data[inputs[0].name] = INPUT
        self._fold_and_infer(inputs[0].name, shape)
        for node in graph.node:
            self.node = node
            self._read(node)
        outputs = [o.name for o in graph.output]
        if len(outputs) != 1:
            raise ImportFailed(
                self.path, "import-outputs", f"planner's networks have one output; the model has {len(outputs)}"
            )
        if outputs[0] not in self.data:
            raise ImportFailed(self.path, "import-outputs", "the model's output is not computed from its input")
        name = os.path.splitext(os.path.basename(self.path))[0]
        return Graph(self.path, name, "onnx", shape, tuple(self.nodes), self.data[outputs[0]], dict(self.like))

    def _input_shape(self, value: onnx.ValueInfoProto, given: tuple[int, ...] | None) -> tuple[int, ...]:
        dims = [
            d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in value.type.tensor_type.shape.dim
        ]
        if given is not None:
            if len(given) != len(dims):
                raise UsageError(
                    f"planner import: error: --input-shape has {len(given)} entries, the model's input '{value.name}' "
                    f"has rank {len(dims)}"
                )
            return tuple(given)
        if not 3 <= len(dims) <= 5:
            raise ImportFailed(
                self.path,
                "import-inputs",
                f"the model's input has rank {len(dims)}; planner reads [N, C, *spatial] with 1 to 3 spatial axes",
            )
        if any(d is None for d in dims):
            shown = [d if d is not None else "?" for d in dims]
            raise UsageError(
                f"planner import: error: the model's input has sizes not fixed in the file {shown}; give --input-shape"
            )
        return tuple(int(d) for d in dims)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ constants and shapes

    def _fold_and_infer(self, input_name: str, shape: tuple[int, ...]) -> None:
        """Fold every node computed from constants and static shapes alone, inferring shapes again after
        each round, until a round folds nothing."""
        for _ in range(_MAX_PASSES):
            self.shapes = self._inferred(input_name, shape)
            if not self._fold():
                return

    def _inferred(self, input_name: str, shape: tuple[int, ...]) -> dict[str, tuple[int | None, ...]]:
        model = onnx.ModelProto()
        model.CopyFrom(self.model)
        graph = model.graph
        for value in graph.input:
            if value.name == input_name:
                dims = value.type.tensor_type.shape.dim
                del dims[:]
                for n in shape:
                    dims.add().dim_value = n
        del graph.value_info[:]  # inferred afresh: shapes recorded at export time hold for the export's input only
        for value in graph.output:
            value.type.tensor_type.ClearField("shape")
        kept = [node for node in graph.node if not all(o in self.consts for o in node.output if o)]
        needed = {name for node in kept for name in node.input} - {i.name for i in graph.initializer}
        del graph.node[:]
        graph.node.extend(kept)
        graph.initializer.extend(
            numpy_helper.from_array(np.asarray(self.consts[name]), name)
            for name in sorted(needed)
            if name in self.consts
        )
        try:
            inferred = shape_inference.infer_shapes(model, data_prop=True)
        except Exception as e:
            raise ImportFailed(
                self.path, "import-shape", f"onnx shape inference fails: {type(e).__name__}: {e}"
            ) from None
        shapes = {}
        values = [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]
        for value in values:
            if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape"):
                dims = value.type.tensor_type.shape.dim
                shapes[value.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
        for name, array in self.consts.items():
            shapes[name] = tuple(np.shape(array))
        return shapes

    def _fold(self) -> bool:
        folded = False
        for node in self.model.graph.node:
            outputs = [o for o in node.output if o]
            if all(o in self.consts for o in outputs):
                continue
            values = self._folded(node)
            if values is not None:
                for name, value in zip(node.output, values, strict=False):
                    if name:
                        self.consts[name] = np.asarray(value)
                folded = True
        return folded

    def _folded(self, node: onnx.NodeProto) -> list[np.ndarray] | None:
        """The node's outputs, when its inputs are constants (or it asks a static shape); else None."""
        if node.domain not in ("", "ai.onnx"):
            return None
        if node.op_type in ("Shape", "Size"):
            shape = self.shapes.get(node.input[0])
            if shape is None or any(d is None for d in shape):
                return None
            if node.op_type == "Size":
                return [np.array(math.prod(shape), dtype=np.int64)]  # type: ignore[arg-type]
            a = _attrs(node)
            return [np.array(shape[a.get("start", 0) : a.get("end", len(shape))], dtype=np.int64)]
        if not all(name == "" or name in self.consts for name in node.input):
            return None
        if node.op_type == "Constant":
            return [_constant(node)]
        if node.op_type in _NEVER_FOLDED:
            return None
        feeds = {name: self.consts[name] for name in node.input if name}
        values = [helper.make_value_info(name, onnx.TypeProto()) for name in feeds]
        outs = [helper.make_value_info(name, onnx.TypeProto()) for name in node.output if name]
        model = helper.make_model(
            helper.make_graph([node], "fold", values, outs), opset_imports=self.model.opset_import
        )
        try:
            from onnx.reference import ReferenceEvaluator

            return list(ReferenceEvaluator(model).run(None, feeds))
        except Exception:
            return None  # not foldable here; an error only if a layer needs its value

    def const(self, name: str, what: str) -> np.ndarray:
        """The value of a constant input (`what` says what it is, for the error)."""
        if name not in self.consts:
            raise self.cannot(f"its {what} are computed from the network's input at run time; planner needs them fixed")
        return self.consts[name]

    def shape(self, name: str) -> tuple[int, ...]:
        shape = self.shapes.get(name)
        if shape is None or any(d is None for d in shape):
            raise self.cannot(f"onnx shape inference gives '{name}' no static shape")
        return tuple(int(d) for d in shape)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ one node

    def is_data(self, name: str) -> bool:
        return bool(name) and name in self.data

    def ref(self, name: str) -> str:
        if self.is_data(name):
            return self.data[name]
        raise self.cannot(f"it reads '{name}', which is neither a layer's output nor a constant planner can use")

    def cannot(self, why: str) -> ImportFailed:
        node = self.node
        assert node is not None
        return cannot_import(self.path, node.name or node.output[0], _op_name(node), why)

    def only_reader(self, tensor: str) -> onnx.NodeProto | None:
        readers = self.read_by.get(tensor, [])
        outputs = {o.name for o in self.model.graph.output}
        return readers[0] if len(readers) == 1 and tensor not in outputs else None

    def _read(self, node: onnx.NodeProto) -> None:
        if all(o in self.consts for o in node.output if o):
            return
        if node.output[0] in self.fused:
            self.data[node.output[0]] = self.fused[node.output[0]]
            return
        if not any(self.is_data(name) for name in node.input):
            return  # computed from constants alone, not foldable: an error only if a layer needs it
        if node.domain not in ("", "ai.onnx"):
            raise self.cannot("planner has no op for it (an op outside the default ONNX domain)")
        handler = HANDLERS.get(node.op_type)
        if handler is None:
            raise self.cannot("planner has no op for it")
        mapped = handler(self, node, _attrs(node))
        if mapped is None:
            self.data[node.output[0]] = self.ref(node.input[0])
            return
        inputs = mapped.inputs if mapped.inputs is not None else (node.input[0],)
        end = self.fused_ids.get(node.output[0], node.output[0])
        self.add(node, end, mapped, tuple(self.ref(i) for i in inputs), shape=self.shape(end))
        if mapped.op == "split":  # its outputs are its pieces, `name[i]`
            self.data.update({output: f"{end}[{n}]" for n, output in enumerate(node.output) if output})

    def add(self, node: onnx.NodeProto, id_: str, mapped: _Mapped, inputs: tuple[str, ...], shape=None) -> None:
        label = node.name or node.output[0]
        self.nodes.append(
            Node(
                id=id_,
                label=label,
                scope=_scope(node.name),
                op=mapped.op,
                source_op=mapped.source_op or _op_name(node),
                params=mapped.params,
                inputs=inputs,
                shape=shape if shape is not None else self.shape(node.output[0]),
                moves_data=mapped.moves,
            )
        )
        self.data[id_] = id_


_NEVER_FOLDED = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}


def _constant(node: onnx.NodeProto) -> np.ndarray:
    for a in node.attribute:
        if a.name == "value":
            return numpy_helper.to_array(a.t)
        if a.name in ("value_float", "value_floats", "value_int", "value_ints"):
            return np.array(helper.get_attribute_value(a))
    raise ValueError("a Constant without a numeric value")


def _op_name(node: onnx.NodeProto) -> str:
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"


def _scope(name: str) -> str:
    """The module path in a node name torch's exporter wrote: `/layer1/layer1.0/conv1/Conv` ->
    `layer1.0.conv1` (each scope is the attribute's name, prefixed by its parent's when the parent
    is a container). A name without slashes is its own scope; no name, the top level."""
    if "/" not in name:
        return name
    parts = [p for p in name.split("/") if p][:-1]
    path: list[str] = []
    previous = ""
    for part in parts:
        path.append(part[len(previous) + 1 :] if previous and part.startswith(previous + ".") else part)
        previous = part
    return ".".join(path)


# --- one handler per ONNX op ---------------------------------------------------------------------

Handler = Callable[[_Reader, onnx.NodeProto, dict[str, Any]], "_Mapped | None"]
HANDLERS: dict[str, Handler] = {}


def handles(*ops: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for op in ops:
            HANDLERS[op] = handler
        return handler

    return register
