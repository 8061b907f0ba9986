"""What every op provides: a shape transfer with its validity rules (NNSmith's
`type_transfer` + `requires`), its receptive-field step and its cost, written over `Num`
so they serve Z3 and ints alike. Each op is one `Op` object, registered in `OPS`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from planner.arithmetic import Bool, Num, is_int
from planner.errors import LayerError
from planner.spec.models import LayerBase

Shape = tuple[Num, ...]
Field = tuple[tuple[Any, ...], tuple[Any, ...]]  # (receptive field per axis, jump per axis); jumps may be Fractions


@dataclass(frozen=True)
class Rule:
    """A condition the layer needs, with what to say when it fails.

    The message is a `str.format` template filled from `args` only when it is read:
    printing Z3 terms is slow, and most rules of an encoding are never shown. Arguments that
    cost arithmetic to make can be given as a function that returns them: over the pass's
    arrays, a rule is evaluated thousands of times for each time it is shown.
    """

    holds: Bool
    code: str
    template: str
    args: tuple | Callable[[], tuple] = ()
    param: str | None = None  # the YAML key to point at

    @property
    def message(self) -> str:
        args = self.args() if callable(self.args) else self.args
        return self.template.format(*(show(a) for a in args))


@dataclass(frozen=True)
class Transfer:
    """An op's output shape, the rules it needs, and its parameters as reported (SPEC 1.4)."""

    shape: Shape
    rules: tuple[Rule, ...]
    params: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)  # fixed, unreported attributes back ends read (bias, p)
    pieces: tuple[Shape, ...] = ()  # a split's outputs `name[0]`, `name[1]`, ...; `shape` is the first


@dataclass(frozen=True)
class Call:
    """One application of an op: parameters (terms instantiated to Num), the layer's model, input shapes.

    `model` is the layer's own model, an instance of the model class that serves the op (`Conv` for conv,
    `Concat` for add, ...), so an op's transfer may `cast` it to that class to read its fields."""

    params: dict[str, Any]
    model: LayerBase
    inputs: tuple[Shape, ...]
    dialect: str

    def axis(self, key: str) -> tuple[Num, ...]:
        return self.params[key]

    def spatial_input(self) -> Shape:
        """The spatial sizes of the (single) input, checked against the rank the parameters were written for."""
        shape = self.inputs[0]
        rank = len(next(iter(v for v in self.params.values() if isinstance(v, tuple)), shape[2:]))
        if len(shape) < 3:
            raise LayerError(
                "rank",
                f"{self.model.op} needs an input with spatial axes, but its input has shape "
                f"rank {len(shape)} [N, features]; put it before the flatten",
            )
        if len(shape) - 2 != rank:
            raise LayerError(
                "rank", f"{self.model.op} was written for {rank} spatial axes, its input has {len(shape) - 2}"
            )
        return shape[2:]


TransferFn = Callable[[Call], Transfer]


class Layer(Protocol):
    """What an op's cost and back ends read of a layer: a LayerPlan, or an objective's view of an encoding."""

    @property
    def name(self) -> str: ...
    @property
    def op(self) -> str: ...
    @property
    def inputs(self) -> tuple[str, ...]: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def input_shape(self) -> tuple: ...
    @property
    def output_shape(self) -> tuple: ...
    @property
    def attrs(self) -> dict[str, Any]: ...


class Op:
    """Everything the planner knows of one op; a subclass overrides what differs from these defaults.

    - `transfer(call)`: output shape, validity rules and reported parameters;
    - `attributes(model)`: fixed attributes back ends need that are not reported (bias, dropout's p);
    - `receptive(fields, params, input_shape)`: the receptive field after the layer, from its inputs' fields;
    - `params_count(layer)` and `macs(layer)`: learnable parameters and multiply-accumulates at batch 1;
    - `data_inputs(layer)`: the inputs whose values it reads;
    - `narrowed(model, factor, unit)`: model updates that narrow its channels by `factor`, keeping them
      multiples of `unit` (verification runs plans narrowed);
    - `channel_unit(layer)`: what the channel counts it reads must stay multiples of when narrowed (groups);
    - `degenerate(layer)`: what makes a valid layer wasteful (rows of zeros, windows of padding only), as
      rules whose `holds` means the waste; plans with such a layer are flagged and ranked after the others;
    - `spatial_rank(model, rank)`: the spatial axes of its output, from its input's (flatten: none);
    - `monotone`: no output dim shrinks when an input dim grows, whatever the parameters (conv, pooling,
      resizing, joins all qualify); the bound pass of `planner.solver.bounds` relies on it;
    - `axes_apart(model, dialect)`: each spatial axis of the output, and each rule on it, depends only on
      the same axis of the inputs and the same entry of the per-axis parameters, so the layer can be
      solved one axis at a time (`planner.solver.axes`); False unless the op says so.
    """

    name: str = ""
    monotone: bool = True
    apart: bool = False  # what `axes_apart` answers where the model and dialect do not matter

    def transfer(self, call: Call) -> Transfer:
        raise NotImplementedError

    def attributes(self, model: Any) -> dict[str, Any]:
        return {}

    def receptive(self, fields: tuple[Field, ...], params: dict[str, Any], input_shape: tuple) -> Field | None:
        """The field after the layer from the fields of its inputs that still have spatial axes (first input
        first); None once the spatial axes are gone. Unchanged by default."""
        return fields[0]

    def params_count(self, layer: Layer) -> Num:
        return 0

    def macs(self, layer: Layer) -> Num:
        return 0

    def degenerate(self, layer: Layer) -> list[Rule]:
        return []

    def spatial_rank(self, model: Any, rank: int) -> int:
        """How many spatial axes its output has, from its input's: the same unless the op changes them
        (per-axis parameters written as one value follow the rank of the layer's input)."""
        return rank

    def data_inputs(self, layer: Layer) -> tuple[str, ...]:
        return layer.inputs

    def narrowed(self, model: Any, factor: int, unit: int) -> dict[str, Any]:
        return {}

    def channel_unit(self, layer: Layer) -> int:
        return layer.params.get("groups", 1)

    def axes_apart(self, model: Any, dialect: str) -> bool:
        return self.apart


class Simple(Op):
    """An op given by its transfer function alone (every other behaviour the default)."""

    def __init__(self, name: str, transfer: TransferFn, *, apart: bool = False):
        self.name, self._transfer, self.apart = name, transfer, apart

    def transfer(self, call: Call) -> Transfer:
        return self._transfer(call)


def show(value: Any) -> str:
    """A number for a message: ints as they are, Z3 terms by their readable form."""
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value) if is_int(value) else str(value).replace("\n", " ")


def sizes_per_axis(value: int | list[int], rank: int, key: str) -> tuple[int, ...]:
    """An int for every axis, or one entry per axis (checked)."""
    if isinstance(value, int):
        return (value,) * rank
    if len(value) != rank:
        raise LayerError("rank", f"'{key}' has {len(value)} entries but the input has {rank} spatial axes", key)
    return tuple(value)
