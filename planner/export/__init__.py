"""Export a solved plan as a self-contained PyTorch source file (`planner export SPEC --to pytorch`).

Every layer of the plan becomes one attribute of `Net`, named after the layer, so a forward
hook on each child sees exactly that layer's output. What PyTorch's modules cannot say
directly becomes explicit: asymmetric padding of a convolution is a pad module in front of
it, asymmetric padding of a transposed convolution is a crop behind it, pooling padding that
nn.MaxPoolNd/nn.AvgPoolNd refuse is padded explicitly (-inf for max, a counted average for avg).

Nothing the spec says is written into the file raw: layer names become validated identifiers
(`_identifiers`), numbers are written from ints and floats only, and the spec's name and file
name appear only in comments and the docstring, shown with `escape.visible` (a newline in a
file name is the two characters `\\n`, never a line of code). The finished source is parsed
before it is returned: it must hold only the torch imports, `INPUT_SHAPE`, the helper classes
and `Net`, and no character unsafe to show, or export raises InternalError.
"""

from __future__ import annotations

import ast
import keyword
import re

from planner.errors import InternalError, UsageError
from planner.export.source import _tuple
from planner.graph import Network, layer_of
from planner.ops import OPS
from planner.plan import LayerPlan, Plan
from planner.report.escape import visible

# Attributes of nn.Module (torch 2.x) a layer attribute must not shadow, plus the names forward uses.
_RESERVED = frozenset(
    """
    T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda double
    dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half
    ipu load_state_dict modules mtia named_buffers named_children named_modules named_parameters parameters
    register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
    register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter register_state_dict_post_hook
    register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule share_memory state_dict to
    to_empty train training type xpu zero_grad
    x self torch nn F input Net INPUT_SHAPE Crop Concat Add Mul Slice Mean Permute PaddedAvgPool
""".split()
)

_HELPERS = {
    "Crop": '''
class Crop(nn.Module):
    """Keep `size` cells of each spatial axis, starting at `offset`."""

    def __init__(self, offset: tuple[int, ...], size: tuple[int, ...]) -> None:
        super().__init__()
        self.offset = offset
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        window = [slice(b, b + n) for b, n in zip(self.offset, self.size, strict=True)]
        return x[(slice(None), slice(None), *window)]

    def extra_repr(self) -> str:
        return f"offset={self.offset}, size={self.size}"
''',
    "Concat": '''
class Concat(nn.Module):
    """The inputs joined along the channel axis."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=1)
''',
    "Add": '''
class Add(nn.Module):
    """The element-wise sum of the inputs."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out
''',
    "Mul": '''
class Mul(nn.Module):
    """The element-wise product of the inputs (broadcasting as PyTorch does)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out
''',
    "Slice": '''
class Slice(nn.Module):
    """x[start:end:step] along one axis, the bounds read as Python reads them."""

    def __init__(self, axis: int, start: int, end: int | None, step: int) -> None:
        super().__init__()
        self.axis, self.start, self.end, self.step = axis, start, end, step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[(slice(None),) * self.axis + (slice(self.start, self.end, self.step),)]

    def extra_repr(self) -> str:
        return f"axis={self.axis}, start={self.start}, end={self.end}, step={self.step}"
''',
    "Reshape": '''
class Reshape(nn.Module):
    """The spatial axes reshaped, the batch and channel axes kept (a -1 is inferred, as torch does)."""

    def __init__(self, shape: list[int]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], x.shape[1], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"
''',
    "Split": '''
class Split(nn.Module):
    """torch.split (sizes) or torch.chunk (chunks) along one axis: a tuple of the pieces."""

    def __init__(self, axis: int, sizes: list[int] | None = None, chunks: int | None = None) -> None:
        super().__init__()
        self.axis, self.sizes, self.chunks = axis, sizes, chunks

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.chunks is not None:
            return torch.chunk(x, self.chunks, dim=self.axis)
        return torch.split(x, self.sizes, dim=self.axis)

    def extra_repr(self) -> str:
        cut = f"chunks={self.chunks}" if self.chunks is not None else f"sizes={self.sizes}"
        return f"axis={self.axis}, {cut}"
''',
    "Mean": '''
class Mean(nn.Module):
    """The mean over some dims."""

    def __init__(self, dims: tuple[int, ...], keepdim: bool) -> None:
        super().__init__()
        self.dims, self.keepdim = dims, keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.mean(x, dim=self.dims, keepdim=self.keepdim)

    def extra_repr(self) -> str:
        return f"dims={self.dims}, keepdim={self.keepdim}"
''',
    "Permute": '''
class Permute(nn.Module):
    """The spatial axes reordered (batch and channels stay first)."""

    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"
''',
    "PaddedAvgPool": '''
class PaddedAvgPool(nn.Module):
    """Average pooling with padding nn.AvgPoolNd cannot take (asymmetric, or more than half the kernel).

    Each window's sum over the zero-padded input is divided by the number of cells it counts, as
    nn.AvgPoolNd counts them: real inputs, plus padding cells when count_include_pad; cells past
    the end padding (`extra`, ceil mode's partial last window) never count. Both sums come from
    the same average pooling, so its divisor cancels. The output keeps `size` windows per axis.
    """

    def __init__(self, kernel_size: tuple[int, ...], stride: tuple[int, ...],
                 padding: tuple[tuple[int, int], ...], extra: tuple[int, ...], count_include_pad: bool,
                 size: tuple[int, ...]) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.extra, self.count_include_pad, self.size = extra, count_include_pad, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[len(self.kernel_size) - 1]
        pads = [n for pair in reversed(self.padding) for n in pair]
        extra = [n for e in reversed(self.extra) for n in (0, e)]
        count = F.pad(x.new_ones((1, 1, *x.shape[2:])), pads, value=float(self.count_include_pad))
        total = pool(F.pad(F.pad(x, pads), extra), self.kernel_size, self.stride)
        y = total / pool(F.pad(count, extra), self.kernel_size, self.stride)
        return y[(slice(None), slice(None), *(slice(0, n) for n in self.size))]
''',
}


def export_pytorch(network: Network, plan: Plan) -> str:
    """The source of a Python file (importing only torch) with `INPUT_SHAPE` and `class Net(nn.Module)`
    that computes `plan` layer for layer, with the plan's shapes."""
    return _checked(_Exporter(network, plan).source())


class _Exporter:
    def __init__(self, network: Network, plan: Plan):
        self.network, self.plan = network, plan
        self.helpers: set[str] = set()  # the helper classes the file needs, filled in by module()
        self.attr = _identifiers([layer.name for layer in plan.layers])

    def source(self) -> str:
        modules = [f"        self.{self.attr[layer.name]} = {self.module(layer)}" for layer in self.plan.layers]
        parameter, forward = self.forward()
        functional = "PaddedAvgPool" in self.helpers  # the only user of torch.nn.functional
        imports = ["import torch", *(["import torch.nn.functional as F"] if functional else []), "from torch import nn"]
        helpers = [_HELPERS[name] for name in _HELPERS if name in self.helpers]
        lines = [*self.header(), "", *imports, "", f"INPUT_SHAPE = {_tuple(self.plan.input_shape)}", ""]
        for helper in helpers:
            lines += ["", *helper.strip("\n").split("\n"), ""]
        lines += [
            "",
            "class Net(nn.Module):",
            f'    """{_docstring_text(self.network.name)}: every layer of the plan, in data-flow order."""',
            "",
            "    def __init__(self) -> None:",
            "        super().__init__()",
            *modules,
            "",
            f"    def forward(self, {parameter}: torch.Tensor) -> torch.Tensor:",
            *forward,
        ]
        return "\n".join(_wrap(line) for line in lines) + "\n"

    def header(self) -> list[str]:
        plan = self.plan
        solved = ", ".join(f"{name} = {value}" for name, value in plan.assignment.items())
        lines = [
            *_comment_wrap(f"PyTorch module for the plan of '{self.network.name}' ({self.network.file}),"),
            "# written by `planner export --to pytorch`. It imports torch only.",
            *_comment_wrap(f"Solved unknowns: {solved}." if solved else "Nothing was unknown in the spec."),
        ]
        if plan.for_all:
            lines.append("# The plan holds for every input size of the spec's for_all axes; INPUT_SHAPE is one.")
        lines.append("# Each layer is an attribute named after it; forward follows the plan's data flow.")
        return lines

    # ---------------------------------------------------------------- forward

    def forward(self) -> tuple[str, list[str]]:
        """forward's parameter and body: each output in `x` when only the next layer reads it, else in a
        variable named after its layer, deleted after its last reader."""
        layers = self.plan.layers
        position = {"input": -1, **{layer.name: n for n, layer in enumerate(layers)}}
        users: dict[str, list[int]] = {name: [] for name in position}
        for n, layer in enumerate(layers):
            for name in _data_inputs(layer):
                users[layer_of(name)].append(n)
        taken = set(self.attr.values()) | {"x", "self"}
        var: dict[str, str] = {}  # the outputs some layer reads; one nobody reads gets no variable
        for name, at in position.items():
            if not users[name]:
                continue
            if all(n == at + 1 for n in users[name]):
                var[name] = "x"
            elif name == "input":
                var[name] = _fresh("net_input", taken)
            else:
                var[name] = self.attr[name]
        lines: list[str] = []
        for n, layer in enumerate(layers):
            args = ", ".join(var[layer_of(name)] + name[len(layer_of(name)) :] for name in _data_inputs(layer))
            call = f"self.{self.attr[layer.name]}({args})"
            if n == len(layers) - 1:
                lines.append(f"        return {call}")
                break
            target = var.get(layer.name)
            lines.append(f"        {target} = {call}" if target else f"        {call}  # output not used later")
            dead = sorted(
                {var[base] for base in map(layer_of, _data_inputs(layer)) if max(users[base]) == n and base != "input"}
                - {"x"}
            )
            if dead:
                lines.append(f"        del {', '.join(dead)}")
        return var.get("input", "x"), lines

    # ---------------------------------------------------------------- modules

    def module(self, layer: LayerPlan) -> str:
        """The PyTorch module of a layer, written by its op's entry of EXPORTS."""
        write = EXPORTS.get(layer.op)
        if write is None:
            raise UsageError(f"{layer.name}: op '{layer.op}' cannot be exported to PyTorch")
        return write(self, layer)


def _data_inputs(layer: LayerPlan) -> tuple[str, ...]:
    """The layers whose values the layer reads (a crop's `like` only lends its shape)."""
    return OPS[layer.op].data_inputs(layer)


def _identifiers(names: list[str]) -> dict[str, str]:
    """A distinct Python identifier for every layer name, safe as an nn.Module attribute."""
    taken: set[str] = set()
    result = {}
    for name in names:
        ident = re.sub(r"\W", "_", name, flags=re.ASCII) or "layer"
        if ident[0].isdigit():
            ident = "layer_" + ident
        if keyword.iskeyword(ident) or ident in _RESERVED or ident.startswith("_"):
            ident = "layer_" + ident.lstrip("_") if ident.startswith("_") else ident + "_"
        result[name] = _fresh(ident, taken)
    return result


def _fresh(ident: str, taken: set[str]) -> str:
    candidate, n = ident, 1
    while candidate in taken or candidate in _RESERVED:
        n += 1
        candidate = f"{ident}_{n}"
    taken.add(candidate)
    return candidate


def _docstring_text(text: str) -> str:
    """`text` shown (`visible`) for the inside of a triple-quoted docstring; the docstring reads as shown."""
    return visible(text).replace("\\", "\\\\").replace('"', '\\"')


def _comment_wrap(text: str, width: int = 98) -> list[str]:
    """Comment lines of `text` shown (`visible`: no line break or control character), broken after a
    comma where possible."""
    text = visible(text)
    lines, line = [], "#"
    for piece in re.split(r"(?<=,) ", text):
        if len(line) + 1 + len(piece) > width and line.strip("# "):
            lines.append(line)
            line = "#  "
        line += " " + piece
    return [*lines, line]


def _checked(source: str) -> str:
    """`source`, once it is shown to hold nothing but what export writes: every line safe to show, and
    at the top level only the torch imports, `INPUT_SHAPE = (...)`, the helper classes and `Net`."""
    for number, line in enumerate(source.split("\n"), 1):
        if visible(line) != line:
            raise InternalError(f"exported line {number} holds a character unsafe to show: {visible(line)}")
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise InternalError(f"the exported source does not parse: {visible(e.msg)} (line {e.lineno})") from e
    for node in tree.body:
        if not _expected(node):
            raise InternalError(
                f"the exported source has an unexpected statement at line {node.lineno}: "
                f"{visible(ast.unparse(node))[:200]}"
            )
    return source


def _expected(node: ast.stmt) -> bool:
    """Whether a top-level statement is one export writes."""
    if isinstance(node, ast.Import):
        return all(alias.name in ("torch", "torch.nn.functional") for alias in node.names)
    if isinstance(node, ast.ImportFrom):
        return node.module == "torch" and [alias.name for alias in node.names] == ["nn"]
    if isinstance(node, ast.Assign):
        targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
        return (
            targets == ["INPUT_SHAPE"]
            and isinstance(node.value, ast.Tuple)
            and all(isinstance(e, ast.Constant) and type(e.value) is int for e in node.value.elts)
        )
    return isinstance(node, ast.ClassDef) and node.name in ("Net", *_HELPERS)


def _wrap(line: str, width: int = 120) -> str:
    """A long `self.x = Module(a, b)` line, one argument a line (the only long lines written)."""
    match = re.fullmatch(r"( *)(self\.\w+ = [\w.]+\()(.*)\)", line)
    if len(line) <= width or not match:
        return line
    indent, head, body = match.groups()
    parts, depth, start = [], 0, 0
    for n, ch in enumerate(body):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(body[start:n].strip())
            start = n + 1
    parts.append(body[start:].strip())
    return "\n".join([indent + head, *(f"{indent}    {part}," for part in parts), indent + ")"])


from planner.export.layers import EXPORTS  # noqa: E402 (the op functions register as they load)
