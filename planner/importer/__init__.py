"""`planner import`: a spec from a PyTorch module (`path/to/file.py:factory`) or an ONNX model (`.onnx`).

source -> neutral graph (`torch_graph` traces with torch.export, `onnx_graph` reads the file with
onnx's shape inference) -> plumbing collapsed, resizes linked (`simplify`) -> spec YAML (`emit`).
torch and onnx are imported only here, when a model of theirs is read.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from planner.errors import InternalError, SpecError, UsageError
from planner.importer import emit, simplify
from planner.importer.emit import FREEABLE, Layer
from planner.importer.nodes import INPUT, Graph, ImportFailed, Node, cannot_import

__all__ = ["FREEABLE", "ImportFailed", "Imported", "import_model", "import_spec", "read_model"]
INSTALL = "pip install torch==2.13.0 onnx"


@dataclass(frozen=True)
class Imported:
    """A model read and written as a spec: the graph read, the layers written, the YAML text."""

    graph: Graph
    layers: list[Layer]
    text: str


def import_model(
    source: str,
    input_shape: tuple[int, ...] | None = None,
    free: tuple[str, ...] = (),
    free_layers: str | None = None,
) -> str:
    """The spec YAML for the model at `source` (`net.onnx` or `nets.py:make`), traced at
    `input_shape` (needed for PyTorch; ONNX takes its input's static shape when it is left out),
    with the `free` parameters of sliding layers whose names match `free_layers` written as "?".

    Raises ImportFailed (a model planner cannot read or express; exit 1) or UsageError (bad
    arguments, torch or onnx not installed; exit 2)."""
    return import_spec(source, input_shape, free, free_layers).text


def import_spec(
    source: str,
    input_shape: tuple[int, ...] | None = None,
    free: tuple[str, ...] = (),
    free_layers: str | None = None,
) -> Imported:
    """As `import_model`, with the graph and the layers the text was written from."""
    free = _checked_free(free, free_layers)
    graph = read_model(source, input_shape)
    graph = simplify.link_resizes(_output_last(simplify.collapse_plumbing(graph)))
    layers = emit.spec_layers(graph, free, free_layers)
    text = emit.render(graph, layers, free)
    _validate(text, graph, layers)
    return Imported(graph, layers, text)


def read_model(source: str, input_shape: tuple[int, ...] | None = None) -> Graph:
    """The neutral graph of the model at `source`, as its reader gives it."""
    if input_shape is not None:
        input_shape = _checked_shape(input_shape)
    if source.lower().endswith(".onnx"):
        reader = _reader("onnx_graph", "an ONNX model", "onnx")
        return reader.read_onnx(source, input_shape)
    path, colon, attr = source.rpartition(":")
    if not colon or not path or not attr:
        raise UsageError(f"planner import: error: MODEL is a .onnx file or path/to/file.py:factory, not '{source}'")
    if input_shape is None:
        raise UsageError("planner import: error: a PyTorch model needs --input-shape N,C,H,... to be traced at")
    reader = _reader("torch_graph", "a PyTorch model", "torch")
    return reader.read_torch(path, attr, input_shape)


def _reader(module: str, what: str, package: str):
    import importlib

    try:
        return importlib.import_module(f"planner.importer.{module}")
    except ModuleNotFoundError as e:
        if e.name is None or e.name.split(".")[0] != package:
            raise
        raise UsageError(
            f"planner import: error: reading {what} needs {package}, which is not installed: {INSTALL}"
        ) from None


def _checked_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    shape = tuple(shape)
    if not 3 <= len(shape) <= 5 or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape):
        raise UsageError(
            "planner import: error: --input-shape is N,C and 1 to 3 spatial sizes, each a positive int, "
            f"not {list(shape)}"
        )
    return shape


def _checked_free(free: tuple[str, ...], free_layers: str | None) -> tuple[str, ...]:
    free = tuple(dict.fromkeys(free))
    unknown = [p for p in free if p not in FREEABLE]
    if unknown:
        raise UsageError(f"planner import: error: --free takes {', '.join(FREEABLE)}; not {', '.join(unknown)}")
    if free_layers is not None:
        if not free:
            raise UsageError("planner import: error: --free-layers limits --free; give --free too")
        try:
            re.compile(free_layers)
        except re.error as e:
            raise UsageError(f"planner import: error: --free-layers is not a regular expression: {e}") from None
    return free


def _output_last(graph: Graph) -> Graph:
    """The spec's output is its last layer: when the model's output is not the last node (or is its input),
    an identity layer reading it ends the spec."""
    if graph.nodes and graph.nodes[-1].id == graph.output:
        return graph
    shape = graph.input_shape if graph.output == INPUT else _node(graph, graph.output).shape
    tail = Node("<output>", "output", "", "identity", "output", {}, (graph.output,), shape)
    return dataclasses.replace(graph, nodes=(*graph.nodes, tail), output=tail.id)


def _node(graph: Graph, id_: str) -> Node:
    return next(node for node in graph.nodes if node.id == id_)


def _validate(text: str, graph: Graph, layers: list[Layer]) -> None:
    """The spec loads: a value planner refuses is an error naming the node that has it."""
    from planner.api import loads

    try:
        loads(text, f"<imported from {graph.source}>")
    except SpecError as e:
        first = text.split("\n").index("layers:") + 2  # the 1-based line of the first layer
        for d in e.diagnostics:
            n = d.line - first
            if 0 <= n < len(layers):
                node = layers[n].node
                why = f"planner refuses the layer it would be: {d.message}"
                raise cannot_import(node.where or graph.source, node.label, node.source_op, why) from None
        raise InternalError(f"planner import wrote a spec that does not load: {e}") from e
