"""The unknowns of a spec and their finite domains: what the solver chooses among.

Every value form of SPEC 1.1/1.2 becomes a `Term`: a known int or an `Unknown` with a
finite `Domain`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Domain:
    """A finite set of ints: lo..hi, multiples of `step`, or an explicit list of values."""

    lo: int
    hi: int
    step: int = 1
    values: tuple[int, ...] | None = None

    def members(self) -> list[int]:
        if self.values is not None:
            return [v for v in self.values if self.lo <= v <= self.hi]
        first = -(-self.lo // self.step) * self.step
        return list(range(first, self.hi + 1, self.step))

    def member(self, index: int) -> int:
        """The index-th smallest value (negative counts from the largest), without listing them all."""
        if self.values is not None:
            return self.members()[index]
        first = -(-self.lo // self.step) * self.step
        return first + (index % self.size()) * self.step

    def size(self) -> int:
        if self.values is not None:
            return len(self.members())
        first = -(-self.lo // self.step) * self.step
        return max(0, (self.hi - first) // self.step + 1)

    def restrict(self, lo: int, hi: int | None = None) -> Domain:
        return Domain(max(self.lo, lo), self.hi if hi is None else min(self.hi, hi), self.step, self.values)

    def intersect(self, other: Domain) -> Domain:
        """The values in both domains."""
        if self.values is None and other.values is None:
            return Domain(max(self.lo, other.lo), min(self.hi, other.hi), math.lcm(self.step, other.step))
        listed, bounded = (self, other) if self.values is not None else (other, self)
        values = tuple(v for v in listed.members() if v in bounded)
        return Domain(min(values, default=0), max(values, default=-1), 1, values)

    def __contains__(self, v: int) -> bool:
        if self.values is not None:
            return v in self.values and self.lo <= v <= self.hi
        return self.lo <= v <= self.hi and v % self.step == 0

    def __str__(self) -> str:
        if self.values is not None:
            return "{" + ", ".join(map(str, self.members())) + "}"
        step = f" step {self.step}" if self.step != 1 else ""
        return f"{self.lo}..{self.hi}{step}"


@dataclass(frozen=True, eq=False)
class Unknown:
    """One unknown of the spec: what the solver chooses. Identity is the object."""

    name: str  # e.g. "enc2.kernel", "enc2.padding[0][1]", "$k", "input.shape[2]"
    kind: str  # kernel, stride, padding, dilation, output_padding, size
    domain: Domain
    path: tuple  # YAML path where it is written (for diagnostics and yaml output)

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True, eq=False)
class ForAllSize(Unknown):
    """An input size the plan must serve for every value of its domain (SPEC 1.2 `for_all`); not part of a plan."""


Term = int | Unknown
Padding = str | tuple[tuple[Term, Term], ...]  # a mode, or per-axis (begin, end)
