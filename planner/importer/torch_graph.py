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

from planner.importer.nodes import INPUT, RESHAPE, Graph, ImportFailed, Node, cannot_import, per_axis, symmetric

_loaded = 0  # modules loaded so far, for unique module names


def read_torch(path: str, attr: str, input_shape: tuple[int, ...]) -> Graph:
    """The graph of `attr()` from the Python file at `path`, traced at `input_shape`."""
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
_PIECES = {"split", "split_with_sizes", "chunk", "unsafe_split", "unsafe_chunk"}  # each result is a slice


class _Reader:
    def __init__(self, program: Any, path: str, source: str):
        self.program, self.path, self.source = program, path, source
        self.data: dict[str, str] = {}  # fx node -> the id of the data it is (itself, or what it aliases)
        self.tuples: set[str] = set()  # nodes whose result is a tuple with the data first
        self.second: dict[str, str] = {}  # getitem of a later result of such a tuple -> the node it is of
        self.pieces: dict[str, tuple[Any, int, list[tuple[int, int]]]] = {}  # split/chunk -> (input, axis, bounds)
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

    def _piece(self, fx: Any, producer: Any, index: int) -> None:
        """Piece `index` of a split or chunk, as the `slice` of its input that it is."""
        source, axis, bounds = self.pieces[producer.name]
        start, end = bounds[index]
        size = self.shape(source)[axis]
        node = Node(
            id=fx.name,
            label=self._label(fx),
            scope=_scope(fx),
            op="slice",
            source_op=f"{producer.target}[{index}]",
            params={"axis": axis, "start": start, "end": None if end == size else end, "step": 1},
            inputs=(self.ref(source),),
            shape=self.shape(fx),
            where=self._where(fx),
        )
        self.nodes.append(node)
        self.data[fx.name] = fx.name

    def _call(self, fx: Any) -> None:
        args = [a for a in _flat((fx.args, tuple(fx.kwargs.values()))) if isinstance(a, torch.fx.Node)]
        if any(a.name in self.second for a in args):
            first = next(a.name for a in args if a.name in self.second)
            raise self.cannot(
                f"it reads '{first}', a second result of '{self.second[first]}', which planner has no op for"
            )
        if fx.target is operator.getitem and fx.args[0].name in self.pieces:
            self._piece(fx, fx.args[0], fx.args[1])  # one piece of a split or chunk: a slice of its input
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
            self.pieces[fx.name] = (_first(fx), *_bounds(self.shape(_first(fx)), opname, _arguments(fx)))
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


def _bounds(shape: tuple[int, ...], opname: str, a: dict[str, Any]) -> tuple[int, list[tuple[int, int]]]:
    """The axis and the [start, end) of every piece of torch.split / torch.chunk, as PyTorch cuts them."""
    axis = int(a.get("dim") or 0) % len(shape)
    size = shape[axis]
    if "chunk" in opname:
        step = -(-size // int(a["chunks"]))  # ceil: the last chunk may be smaller, or missing
        sizes = [min(step, size - start) for start in range(0, size, step)]
    else:
        given = a.get("split_size_or_sections", a.get("split_sizes", a.get("split_size")))
        assert given is not None  # every split overload's schema requires its sizes (split_size or split_sizes)
        sizes = [int(n) for n in given] if isinstance(given, (list, tuple)) else []
        if not sizes:
            sizes = [min(int(given), size - start) for start in range(0, size, int(given))]
    starts = [sum(sizes[:n]) for n in range(len(sizes))]
    return axis, [(start, start + n) for start, n in zip(starts, sizes, strict=True)]


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


def _family(fx: Any) -> str:
    """The op's name without its rank: `reflection_pad2d` -> `reflection_pad`."""
    return re.sub(r"[123]d$", "", fx.target._opname)


def _rank(r: _Reader, fx: Any) -> int:
    return len(r.shape(_first(fx))) - 2


@handles(
    "conv1d",
    "conv2d",
    "conv3d",
    "convolution",
    "_convolution",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)
def _conv(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    weight = r.shape(a["weight"])
    rank = len(weight) - 2
    kernel = weight[2:]
    transposed = bool(a.get("transposed", fx.target._opname.startswith("conv_transpose")))
    stride, dilation = per_axis(a.get("stride") or 1, rank), per_axis(a.get("dilation") or 1, rank)
    groups = int(a.get("groups") or 1)
    params: dict[str, Any] = {
        "out_channels": weight[1] * groups if transposed else weight[0],
        "kernel": kernel,
        "stride": stride,
    }
    padding = a.get("padding") or 0
    if isinstance(padding, str):  # conv2d.padding: "same" or "valid"
        totals = [d * (k - 1) if padding == "same" else 0 for k, d in zip(kernel, dilation, strict=True)]
        params["padding"] = tuple((t // 2, t - t // 2) for t in totals)
        params["padding_mode"] = padding
    else:
        params["padding"] = symmetric(per_axis(padding, rank))
    params["dilation"] = dilation
    if transposed:
        params["output_padding"] = per_axis(a.get("output_padding") or 0, rank)
    params["groups"] = groups
    params["bias"] = a.get("bias") is not None
    return _Mapped("conv_transpose" if transposed else "conv", params)


def _pool_window(r: _Reader, fx: Any, a: dict[str, Any]) -> dict[str, Any]:
    rank = _rank(r, fx)
    kernel = per_axis(a["kernel_size"], rank)
    stride = per_axis(a.get("stride") or a["kernel_size"], rank)
    return {"kernel": kernel, "stride": stride, "padding": symmetric(per_axis(a.get("padding") or 0, rank))}


@handles(
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "max_pool1d_with_indices",
    "max_pool2d_with_indices",
    "max_pool3d_with_indices",
)
def _max_pool(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    params = _pool_window(r, fx, a)
    params["dilation"] = per_axis(a.get("dilation") or 1, _rank(r, fx))
    params["ceil_mode"] = bool(a.get("ceil_mode"))
    return _Mapped("maxpool", params)


@handles("avg_pool1d", "avg_pool2d", "avg_pool3d")
def _avg_pool(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    if a.get("divisor_override") is not None:
        raise r.cannot("average pooling with divisor_override: planner's avgpool divides by the window")
    params = _pool_window(r, fx, a)
    params["ceil_mode"] = bool(a.get("ceil_mode"))
    params["count_include_pad"] = bool(a.get("count_include_pad", True))
    return _Mapped("avgpool", params)


@handles(
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "_adaptive_avg_pool2d", "_adaptive_avg_pool3d"
)
def _adaptive_avg_pool(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    return _Mapped("adaptive_avgpool", {"output_size": r.shape(fx)[2:]})


@handles("adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d")
def _adaptive_max_pool(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    return _Mapped("adaptive_maxpool", {"output_size": r.shape(fx)[2:]})


def _same(op: str) -> Handler:
    def handler(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
        return _Mapped(op, {})

    return handler


for _name in ("relu", "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid", "relu6"):
    HANDLERS[_name] = _same(_name)
for _name in (
    "batch_norm",
    "_native_batch_norm_legit_no_training",
    "_native_batch_norm_legit",
    "_native_batch_norm_legit_functional",
    "native_batch_norm",
):
    HANDLERS[_name] = _same("batchnorm")


@handles("gelu")
def _gelu(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    if a.get("approximate", "none") != "none":
        raise r.cannot(f"gelu with approximate='{a['approximate']}': planner's gelu is the exact one")
    return _Mapped("gelu", {})


@handles("leaky_relu")
def _leaky_relu(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    return _Mapped("leaky_relu", {"negative_slope": float(a.get("negative_slope", 0.01))})


@handles("hardtanh")
def _hardtanh(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    if (float(a.get("min_val", -1.0)), float(a.get("max_val", 1.0))) != (0.0, 6.0):
        raise r.cannot("hardtanh other than relu6 (0, 6): planner has no op for it")
    return _Mapped("relu6", {})


@handles("elu")
def _elu(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    if float(a.get("scale", 1)) != 1 or float(a.get("input_scale", 1)) != 1:
        raise r.cannot("elu with a scale (SELU-like): planner's elu has only alpha")
    return _Mapped("elu", {"alpha": float(a.get("alpha", 1.0))})


@handles("softmax", "_softmax")
def _softmax(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    return _Mapped("softmax", {"dim": int(a["dim"]) % len(r.shape(fx))})


@handles("layer_norm", "native_layer_norm")
def _layer_norm(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    return _Mapped("layernorm", {"normalized_shape": [int(n) for n in a["normalized_shape"]]})


@handles("group_norm", "native_group_norm")
def _group_norm(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    groups = a["num_groups"] if "num_groups" in a else a["group"]
    return _Mapped("groupnorm", {"num_groups": int(groups)})


@handles("instance_norm")
def _instance_norm(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    return _Mapped("instancenorm", {"affine": a.get("weight") is not None})


@handles("dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout", "native_dropout")
def _dropout(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    return _Mapped("dropout", {"p": float(a.get("p", 0.5))})


def _join(op: str) -> Handler:
    def handler(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
        other = a.get("other")
        if not r.is_data(other):
            raise r.cannot(f"{op} with a constant: planner's {op} joins two layers, and has no op for a constant")
        if float(a.get("alpha", 1)) != 1:
            raise r.cannot(f"{op} with alpha={a['alpha']}: planner has no op for it")
        return _Mapped(op, {}, (r.ref(a["self"]), r.ref(other)))

    return handler


HANDLERS["add"] = _join("add")
HANDLERS["mul"] = _join("mul")


@handles("cat", "concat", "concatenate")
def _cat(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped | None:
    tensors = list(a["tensors"])
    rank = len(r.shape(fx))
    if int(a.get("dim") or 0) % rank != 1:
        raise r.cannot(f"concatenation along axis {int(a.get('dim') or 0) % rank}: planner's concat joins channels")
    if len(tensors) == 1:
        return None
    return _Mapped("concat", {}, tuple(r.ref(t) for t in tensors))


@handles("linear")
def _linear(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    if len(r.shape(a["input"])) != 2:
        raise r.cannot("linear on an input of rank other than 2: planner's linear reads [N, features]")
    out_features, in_features = r.shape(a["weight"])
    return _Mapped(
        "linear", {"out_features": out_features, "in_features": in_features, "bias": a.get("bias") is not None}
    )


@handles("view", "reshape", "_unsafe_view", "flatten", "unflatten", "squeeze", "unsqueeze", "view_as", "reshape_as")
def _reshape(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    return _Mapped(RESHAPE, {})


@handles("permute", "transpose", "t", "movedim", "swapaxes", "swapdims", "numpy_T")
def _transpose(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    return _Mapped(RESHAPE, {}, moves=True)


@handles("clone", "contiguous", "detach", "alias", "lift_fresh_copy", "_to_copy", "to", "type_as", "identity")
def _alias(r: _Reader, fx: Any, a: dict[str, Any]) -> None:
    return None


_UPSAMPLE_MODES = {
    "upsample_nearest": "nearest",
    "upsample_linear": "linear",
    "upsample_bilinear": "bilinear",
    "upsample_bicubic": "bicubic",
    "upsample_trilinear": "trilinear",
}


@handles(
    "upsample_nearest1d",
    "upsample_nearest2d",
    "upsample_nearest3d",
    "upsample_linear1d",
    "upsample_bilinear2d",
    "upsample_trilinear3d",
    "upsample_bicubic2d",
)
def _upsample(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    mode = _UPSAMPLE_MODES[_family(fx)]
    scales = a.get("scale_factors")
    if scales is None:
        scales = [a[k] for k in ("scales_d", "scales_h", "scales_w") if a.get(k) is not None] or None
    out = r.shape(fx)[2:]
    params: dict[str, Any] = {}
    if a.get("output_size") is None and scales:
        factors = [int(s) if float(s).is_integer() else float(s) for s in scales]
        params["scale_factor"] = factors[0] if len(set(factors)) == 1 else factors
    else:
        params["size"] = out
    if mode != "nearest":
        params["mode"] = mode
        if a.get("align_corners"):
            params["align_corners"] = True
    return _Mapped("upsample", params)


_PAD_MODES = {"reflection_pad": "reflect", "replication_pad": "replicate"}


@handles(
    "pad",
    "constant_pad_nd",
    "reflection_pad1d",
    "reflection_pad2d",
    "reflection_pad3d",
    "replication_pad1d",
    "replication_pad2d",
    "replication_pad3d",
    "_pad_circular",
)
def _pad(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    opname = fx.target._opname
    flat = [int(n) for n in (a["pad"] if "pad" in a else a["padding"])]
    mode = a.get("mode") or _PAD_MODES.get(_family(fx), "constant")
    mode = "circular" if opname == "_pad_circular" else mode
    rank = _rank(r, fx)
    pairs = [(flat[2 * n], flat[2 * n + 1]) for n in range(len(flat) // 2)]  # last axis first
    if any(p != (0, 0) for p in pairs[rank:]):
        raise r.cannot("padding of the batch or channel axis: planner's pad pads spatial axes")
    if any(n < 0 for pair in pairs for n in pair):
        raise r.cannot("negative padding (a crop): planner's pad only pads")
    pairs = (pairs[:rank] + [(0, 0)] * rank)[:rank]
    params: dict[str, Any] = {"padding": tuple(reversed(pairs))}
    if mode != "constant":
        params["mode"] = mode
    value = a.get("value")
    if mode == "constant" and value:
        params["value"] = float(value)
    return _Mapped("pad", params)


@handles("mean")
def _mean(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    rank = len(r.shape(_first(fx)))
    dims = a.get("dim")
    axes = sorted({int(d) % rank for d in dims}) if dims else list(range(rank))
    return _Mapped("mean", {"axes": axes, "keepdim": bool(a.get("keepdim"))})


@handles("slice", "narrow")
def _slice(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped | None:
    shape = r.shape(_first(fx))
    axis = int(a.get("dim") or 0) % len(shape)
    size = shape[axis]
    if fx.target._opname == "narrow":
        start = int(a["start"]) % size if size else 0
        end, step = start + int(a["length"]), 1
    else:
        step = int(a.get("step") or 1)
        start = 0 if a.get("start") is None else int(a["start"])
        end = size if a.get("end") is None else int(a["end"])
        start = max(0, min(size, start + size if start < 0 else start))
        end = max(0, min(size, end + size if end < 0 else end))
    if (start, end, step) == (0, size, 1):
        return None  # the whole axis: an alias
    return _Mapped("slice", {"axis": axis, "start": start, "end": None if end == size else end, "step": step})


@handles("pixel_shuffle")
def _pixel_shuffle(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    return _Mapped("pixel_shuffle", {"upscale_factor": int(a["upscale_factor"])})


@handles("pixel_unshuffle")
def _pixel_unshuffle(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    return _Mapped("pixel_unshuffle", {"downscale_factor": int(a["downscale_factor"])})
