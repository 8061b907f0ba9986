"""A PyTorch module -> the neutral graph: load `file.py` as a module, call its factory, trace the
`nn.Module` it returns with `torch.export.export` at the input shape (in eval mode), and map each
aten op of the exported graph (the pre-decomposition one: conv2d, batch_norm, linear, ...) to a node.

Layer names come from each op's module path (`nn_module_stack`); the comment of a layer is the aten
overload (`aten.conv2d.default`); errors are located at the line of the model's source that ran the op.
"""

from __future__ import annotations

import difflib
import importlib.machinery
import importlib.util
import logging
import operator
import os
import re
import sys
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from planner import arithmetic as ar
from planner.importer.nodes import INPUT, Graph, ImportFailed, Node, cannot_import

_loaded = 0  # modules loaded so far, for unique module names


def read_torch(path: str, attr: str, input_shape: tuple[int, ...]) -> Graph:
    """The graph of `attr()` from the Python file at `path`, traced at `input_shape`."""
    from planner.importer import torch_ops  # noqa: F401  (registers a handler per aten op)

    source = f"{path}:{attr}"
    module = _factory_module(path, attr)
    program = _export(module, path, attr, input_shape)
    return _Reader(program, path, source).graph(attr, type(module).__name__, input_shape)


# --- loading the factory ---------------------------------------------------------------------------


def _factory_module(path: str, attr: str) -> torch.nn.Module:
    global _loaded
    if not os.path.isfile(path):
        why = "No such file or directory" if not os.path.exists(path) else "it is not a file"
        raise ImportFailed(path, "import-source", f"cannot read the file: {why}")
    _loaded += 1
    name = f"_planner_import_{_loaded}_{re.sub(r'[^A-Za-z0-9_]', '_', os.path.basename(path))}"
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None  # a SourceFileLoader always gives a spec
    module = importlib.util.module_from_spec(spec)
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)  # the file's siblings import as they do when it runs as a script
    sys.modules[name] = module
    try:
        try:
            loader.exec_module(module)
        except SyntaxError as e:
            where = f"{path}:{e.lineno}:{e.offset}" if e.lineno else path
            raise ImportFailed(where, "import-source", f"invalid Python: {e.msg}") from None
        except (Exception, SystemExit) as e:  # the file's own failure, not planner's
            raise ImportFailed(_frame_in(e, path), "import-source", f"running the file raised {_summary(e)}") from None
        factory = _attribute(module, path, attr)
        if not callable(factory):
            raise ImportFailed(
                path, "import-source", f"'{attr}' is {_a(type(factory).__name__)}, not a callable factory"
            )
        try:
            made = factory()
        except (Exception, SystemExit) as e:
            raise ImportFailed(_frame_in(e, path), "import-source", f"{attr}() raised {_summary(e)}") from None
    finally:
        sys.path.remove(folder)
    if not isinstance(made, torch.nn.Module):
        raise ImportFailed(path, "import-source", f"{attr}() returned {_a(type(made).__name__)}, not a torch.nn.Module")
    return made


def _a(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _attribute(module: Any, path: str, attr: str) -> Any:
    value = module
    for part in attr.split("."):
        if not hasattr(value, part):
            names = [n for n in dir(value) if not n.startswith("_") and callable(getattr(value, n))]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; it has {', '.join(names[:10]) or 'no callables'}"
            raise ImportFailed(path, "import-source", f"no attribute '{attr}' in the file{hint}")
        value = getattr(value, part)
    return value


def _frame_in(e: BaseException, path: str) -> str:
    """`path:line` of the innermost frame of the traceback in the file at `path` (else `path`)."""
    target = os.path.abspath(path)
    lines = [f.lineno for f in traceback.extract_tb(e.__traceback__) if os.path.abspath(f.filename) == target]
    return f"{path}:{lines[-1]}" if lines else path


def _summary(e: BaseException) -> str:
    text = next((line.strip() for line in str(e).splitlines() if line.strip()), "")
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _export(module: torch.nn.Module, path: str, attr: str, shape: tuple[int, ...]) -> Any:
    module.eval()
    example = torch.randn(*shape)
    disabled = logging.root.manager.disable
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's own notices and logs are not the user's business here
            logging.disable(logging.CRITICAL)
            return torch.export.export(module, (example,))
    except Exception as e:
        why = f"torch.export cannot trace {attr}() at input shape {list(shape)}: {_summary(e)}"
        raise ImportFailed(_frame_in(e, path), "import-trace", why) from None
    finally:
        logging.disable(disabled)


# --- the exported graph -> nodes ----------------------------------------------------------------


@dataclass(frozen=True)
class _Mapped:
    op: str
    params: dict[str, Any]
    inputs: tuple[str, ...] | None = None  # None: the op's first argument
    moves: bool = False


_NO_OPS = {"_assert_tensor_metadata", "_assert_async", "_assert_scalar", "sym_constrain_range_for_size"}
_MULTI_OUTPUT = {"unbind", "tensor_split"}  # several results planner has no op for
_PIECES = {"split", "split_with_sizes", "chunk", "unsafe_split", "unsafe_chunk"}  # planner's `split`


class _Reader:
    def __init__(self, program: Any, path: str, source: str):
        self.program, self.path, self.source = program, path, source
        self.data: dict[str, str] = {}  # fx node -> the id of the data it is (itself, or what it aliases)
        self.tuples: set[str] = set()  # nodes whose result is a tuple with the data first
        self.second: dict[str, str] = {}  # getitem of a later result of such a tuple -> the node it is of
        self.pieces: dict[str, int] = {}  # a split or chunk -> how many results it has
        self.nodes: list[Node] = []
        self.node: Any = None  # the fx node being read, for errors

    def graph(self, factory: str, name: str, input_shape: tuple[int, ...]) -> Graph:
        """The nodes of the exported program; `name` names the network, `factory` says what made it."""
        user_inputs = set(self.program.graph_signature.user_inputs)
        output = None
        for fx in self.program.graph.nodes:
            self.node = fx
            if fx.op == "placeholder" and fx.name in user_inputs:
                self.data[fx.name] = INPUT
            elif fx.op == "call_function":
                self._call(fx)
            elif fx.op == "output":
                results = [r for r in _flat(fx.args[0]) if isinstance(r, torch.fx.Node)]
                results = [r for r in results if r.name in self.data or r.name in self.second]
                if len(results) != 1:
                    why = f"planner's networks have one output; {factory}() returns {len(results)} tensors"
                    raise ImportFailed(self.path, "import-outputs", why)
                if results[0].name in self.second:
                    why = (
                        f"{factory}() returns a second result of '{self.second[results[0].name]}' (indices, statistics)"
                    )
                    raise ImportFailed(self.path, "import-outputs", why)
                output = self.data[results[0].name]
        if output is None:
            raise ImportFailed(self.path, "import-outputs", f"{factory}() returns nothing computed from its input")
        return Graph(self.source, name, "pytorch", tuple(input_shape), tuple(self.nodes), output)

    # ------------------------------------------------------------------ helpers

    def is_data(self, arg: Any) -> bool:
        return isinstance(arg, torch.fx.Node) and arg.name in self.data

    def ref(self, arg: Any) -> str:
        """The id of the data an argument is."""
        if self.is_data(arg):
            return self.data[arg.name]
        raise self.cannot("it reads a tensor that is not computed from the network's input (a constant)")

    def shape(self, arg: Any) -> tuple[int, ...]:
        val = arg.meta.get("val") if isinstance(arg, torch.fx.Node) else None
        if isinstance(val, (tuple, list)):
            val = val[0]
        if val is None or not hasattr(val, "shape"):
            raise self.cannot("its shape is not known after tracing")
        return tuple(int(n) for n in val.shape)

    def cannot(self, why: str) -> ImportFailed:
        fx = self.node
        return cannot_import(self._where(fx) or self.path, self._label(fx), str(fx.target), why)

    def _where(self, fx: Any) -> str | None:
        trace = fx.meta.get("stack_trace") or ""
        target = os.path.abspath(self.path)
        lines = [int(n) for f, n in re.findall(r'File "([^"]+)", line (\d+)', trace) if os.path.abspath(f) == target]
        return f"{self.path}:{lines[-1]}" if lines else None

    def _label(self, fx: Any) -> str:
        scope = _scope(fx)
        return f"{scope}.{fx.name}" if scope else fx.name

    # ------------------------------------------------------------------ one call

    def _split(self, fx: Any, opname: str) -> None:
        """torch.split or torch.chunk: one `split` layer; its results, read by getitem, are `name[i]`."""
        source = _first(fx)
        axis, sizes = _pieces(self.shape(source), opname, _arguments(fx))
        chunks = int(_arguments(fx)["chunks"]) if "chunk" in opname else None
        cut = {"chunks": chunks} if chunks is not None and len(sizes) == chunks else {"sizes": sizes}
        node = Node(
            id=fx.name,
            label=self._label(fx),
            scope=_scope(fx),
            op="split",
            source_op=str(fx.target),
            params={**cut, "axis": axis},
            inputs=(self.ref(source),),
            shape=self.shape(fx),
            where=self._where(fx),
        )
        self.nodes.append(node)
        self.pieces[fx.name] = len(sizes)

    def _call(self, fx: Any) -> None:
        args = [a for a in _flat((fx.args, tuple(fx.kwargs.values()))) if isinstance(a, torch.fx.Node)]
        if any(a.name in self.second for a in args):
            first = next(a.name for a in args if a.name in self.second)
            raise self.cannot(
                f"it reads '{first}', a second result of '{self.second[first]}', which planner has no op for"
            )
        if fx.target is operator.getitem and fx.args[0].name in self.pieces:
            self.data[fx.name] = f"{fx.args[0].name}[{fx.args[1]}]"  # one piece of a split: `name[i]`
            return
        if not any(self.is_data(a) for a in args):
            return  # computed from weights and constants only: read as a weight where it is used
        if fx.target is operator.getitem:
            producer, index = fx.args
            if producer.name in self.tuples and index == 0:
                self.data[fx.name] = self.ref(producer)
            elif producer.name in self.tuples:
                self.second[fx.name] = producer.name  # pooling indices, batch statistics: an error only if read
            else:
                raise self.cannot("planner has no op for it")
            return
        opname = getattr(fx.target, "_opname", None)
        if opname is None:
            raise self.cannot("planner has no op for it")
        if opname.endswith("_") and not opname.endswith("__"):
            opname = opname[:-1]  # in place: relu_, add_
        if opname in _NO_OPS:
            return
        if opname in _MULTI_OUTPUT:
            raise self.cannot("it has several outputs, and planner has no op for it (unbind, tensor_split)")
        if opname in _PIECES:
            self._split(fx, opname)
            return
        handler = HANDLERS.get(opname)
        if handler is None:
            raise self.cannot("planner has no op for it")
        mapped = handler(self, fx, _arguments(fx))
        if mapped is None:  # an alias of its first argument
            self.data[fx.name] = self.ref(_first(fx))
            return
        if opname in _TUPLES:
            self.tuples.add(fx.name)
        inputs = mapped.inputs if mapped.inputs is not None else (self.ref(_first(fx)),)
        node = Node(
            id=fx.name,
            label=self._label(fx),
            scope=_scope(fx),
            op=mapped.op,
            source_op=str(fx.target),
            params=mapped.params,
            inputs=inputs,
            shape=self.shape(fx),
            where=self._where(fx),
            moves_data=mapped.moves,
        )
        self.nodes.append(node)
        self.data[fx.name] = fx.name


def _flat(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flat(v)]
    return [value]


def _pieces(shape: tuple[int, ...], opname: str, a: dict[str, Any]) -> tuple[int, list[int]]:
    """The axis and the size of every piece of torch.split / torch.chunk, as PyTorch cuts them (a chunk
    the axis is too short for is missing)."""
    axis = int(a.get("dim") or 0) % len(shape)
    size = shape[axis]
    if "chunk" in opname:
        sizes = [n for n in ar.chunk_sizes(size, int(a["chunks"])) if n > 0]
    else:
        given = a.get("split_size_or_sections", a.get("split_sizes", a.get("split_size")))
        assert given is not None  # every split overload's schema requires its sizes (split_size or split_sizes)
        sizes = [int(n) for n in given] if isinstance(given, (list, tuple)) else []
        if not sizes:
            sizes = [min(int(given), size - start) for start in range(0, size, int(given))]
    return axis, sizes


def _first(fx: Any) -> Any:
    return fx.args[0] if fx.args else next(iter(fx.kwargs.values()))


def _scope(fx: Any) -> str:
    """The path of the innermost module that ran the op ('' at the top level)."""
    stack = fx.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    return re.sub(r"^L\['self'\]\.?", "", path)


def _arguments(fx: Any) -> dict[str, Any]:
    """The op's arguments by their schema names, defaults filled in."""
    schema = fx.target._schema
    out: dict[str, Any] = {}
    for n, arg in enumerate(schema.arguments):
        if n < len(fx.args):
            out[arg.name] = fx.args[n]
        elif arg.name in fx.kwargs:
            out[arg.name] = fx.kwargs[arg.name]
        else:
            out[arg.name] = arg.default_value if arg.has_default_value() else None
    return out


# --- one handler per aten op (the overload packet's name, in-place variants included) -------------

Handler = Callable[[_Reader, Any, dict[str, Any]], "_Mapped | None"]
HANDLERS: dict[str, Handler] = {}
_TUPLES = {  # ops whose result is a tuple with the data first (getitem 0 is the data)
    "max_pool1d_with_indices",
    "max_pool2d_with_indices",
    "max_pool3d_with_indices",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "_native_batch_norm_legit_no_training",
    "_native_batch_norm_legit",
    "_native_batch_norm_legit_functional",
    "native_batch_norm",
    "native_layer_norm",
    "native_group_norm",
    "native_dropout",
}


def handles(*opnames: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for name in opnames:
            HANDLERS[name] = handler
        return handler

    return register
