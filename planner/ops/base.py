"""What every op provides: a shape transfer with its validity rules (NNSmith's
`type_transfer` + `requires`), written over `Num` so it serves Z3 and ints alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from planner.arithmetic import Bool, Num, is_int
from planner.errors import LayerError
from planner.spec.models import LayerBase

Shape = tuple[Num, ...]




@dataclass(frozen=True)
class Rule:
    """A condition the layer needs, with what to say when it fails.

    The message is a `str.format` template filled from `args` only when it is read:
    printing Z3 terms is slow, and most rules of an encoding are never shown.
    """

    holds: Bool
    code: str
    template: str
    args: tuple = ()
    param: str | None = None  # the YAML key to point at

    @property
    def message(self) -> str:
        return self.template.format(*(show(a) for a in self.args))


@dataclass(frozen=True)
class Transfer:
    """An op's output shape, the rules it needs, and its parameters as reported (SPEC 1.4)."""

    shape: Shape
    rules: tuple[Rule, ...]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    """One application of an op: parameters (terms instantiated to Num), the layer's model, input shapes."""

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
            raise LayerError("rank", f"{self.model.op} needs an input with spatial axes, but its input has shape "
                             f"rank {len(shape)} [N, features]; put it before the flatten")
        if len(shape) - 2 != rank:
            raise LayerError("rank", f"{self.model.op} was written for {rank} spatial axes, its input has {len(shape) - 2}")
        return shape[2:]


TransferFn = Callable[[Call], Transfer]


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
