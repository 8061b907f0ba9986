"""The input sizes a network accepts (`planner sizes`), as a closed form per spatial axis.

A size is accepted when some plan exists with the input at that size (the spec's unknowns
solved, its other sizes as written). Axes whose sizes the spec leaves open are asked together,
as square inputs (a "?" x "?" image stays square, as in the explanations of `solve`); an axis
of fixed size is asked alone, the others kept as written. The reachable-state pass decides every
size of 1..max at once: with the size an unknown, the input states with a completion are the
accepted sizes.

The floors of a network repeat with the product of its strides, so past some start the
accepted set is periodic. `closed_form` finds the smallest start and period that describe
1..max; with no unknown but the size, Z3 proves that the period holds for every size past the
start (one query: no size i >= start where i and i + period disagree); otherwise the form is
what the exhaustive check of 1..max shows, and says so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import z3

from planner.deadline import Deadline
from planner.domains import Domain, Unknown
from planner.errors import GaveUp, TooBig
from planner.graph import Network

DEFAULT_MAX = 4096  # SPEC 1's defaults.size
PROOF_LIMIT = 2**40  # sizes past the start that the Z3 proof covers (beyond any tensor a framework holds)


@dataclass(frozen=True)
class Form:
    """Size i is accepted iff i in `below`, or start <= i (<= max) and i % period in `residues`."""

    below: tuple[int, ...]
    start: int | None
    period: int
    residues: tuple[int, ...]
    max: int | None  # None: proven for every size past the start

    def accepts(self, i: int) -> bool:
        if i in self.below:
            return True
        if self.start is None or i < self.start or (self.max is not None and i > self.max):
            return False
        return i % self.period in self.residues

    @property
    def text(self) -> str:
        tail = ""
        if self.start is not None and self.residues:
            if self.period == 1:
                tail = f"every size from {self.start}"
            else:
                forms = [linear_form(self.period, r) for r in self.residues]
                if len(forms) == 1:
                    tail = f"{forms[0]}, k >= {-(-(self.start - self.residues[0]) // self.period)}"
                else:
                    tail = f"{' or '.join(forms)}, from {self.start}"
            if self.max is not None:
                tail += f" (up to {self.max})"
        head = _runs(self.below)
        if not head and not tail:
            return "none"
        return f"{head}, then {tail}" if head and tail else head or tail


def _runs(sizes: tuple[int, ...]) -> str:
    """1, 2, 3, 4, 7 -> "1..4, 7": runs of three or more as ranges."""
    parts, n = [], 0
    while n < len(sizes):
        m = n
        while m + 1 < len(sizes) and sizes[m + 1] == sizes[m] + 1:
            m += 1
        parts += [f"{sizes[n]}..{sizes[m]}"] if m - n >= 2 else [str(s) for s in sizes[n : m + 1]]
        n = m + 1
    return ", ".join(parts)


def linear_form(period: int, residue: int) -> str:
    """ "16k + 12", "8k": the sizes of one residue, as `planner sizes` and the hints of `solve` write them."""
    return f"{period}k" if residue == 0 else f"{period}k + {residue}"


@dataclass(frozen=True)
class AxisSizes:
    """The accepted sizes of one group of input axes (asked together, equal), with fixes to paste."""

    axes: tuple[int, ...]
    form: Form
    proof: str  # "z3" or "exhaustive"
    checked: int  # sizes 1..checked were decided one by one
    written: int | None = None  # the spec's size on these axes, when it writes one
    fixes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        f = self.form
        return {
            "axis": list(self.axes),
            "below": list(f.below),
            "start": f.start,
            "period": f.period,
            "residues": list(f.residues),
            "max": f.max,
            "text": f.text,
            "proof": self.proof,
            "checked": self.checked,
            **({"fixes": self.fixes} if self.fixes else {}),
        }


@dataclass(frozen=True)
class SizesAnswer:
    spec: str
    groups: list[AxisSizes]
    tied: str | None = None  # what ties the axes, when something does

    def to_dict(self) -> dict:
        return {"spec": self.spec, "axes": [g.to_dict() for g in self.groups], "tied": self.tied}


def default_max(network: Network) -> int:
    """The spec's defaults.size max, and at least twice its largest spatial size."""
    written = [t for t in network.input_shape[2:] if isinstance(t, int)]
    form = network.loaded.spec.defaults.size  # a range, one_of, an int or "?"
    largest = getattr(form, "max", None) or max(getattr(form, "one_of", None) or [DEFAULT_MAX])
    largest = form if isinstance(form, int) else largest
    return max(largest, 2 * max(written, default=0))


def accepted_sizes(network: Network, max_size: int, deadline: Deadline) -> SizesAnswer:
    """Every group of input axes with its closed form over 1..max_size; raises GaveUp or TooBig."""
    groups = _groups(network)
    answers = []
    for axes in groups:
        size = Unknown(f"input.shape[{axes[0]}]", "size", Domain(1, max_size), ("input", "shape", axes[0]))
        variant = _with_size(network, axes, size)
        accepted = _decide(variant, size, deadline)
        form = closed_form(accepted)
        proof, form = _prove(variant, size, form, max_size, deadline)
        written = network.input_shape[axes[0]]
        answers.append(
            AxisSizes(axes, form, proof, max_size, written if isinstance(written, int) else None, _fixes(form, written))
        )
    return SizesAnswer(network.file, answers, _tie(network))


def _groups(network: Network) -> list[tuple[int, ...]]:
    """Axes of a fixed size each alone; the others together (they stay equal)."""
    spatial = range(2, len(network.input_shape))
    fixed = [(a,) for a in spatial if isinstance(network.input_shape[a], int)]
    open_axes = tuple(a for a in spatial if not isinstance(network.input_shape[a], int))
    return [*fixed, *([open_axes] if open_axes else [])]


def _with_size(network: Network, axes: tuple[int, ...], size: Unknown) -> Network:
    """The network with these input axes at one unknown size; other open axes at the spec's domain, equal."""
    replaced = {term for a, term in enumerate(network.input_shape) if a in axes and isinstance(term, Unknown)}
    shape = tuple(size if a in axes else t for a, t in enumerate(network.input_shape))
    unknowns = tuple(u for u in network.unknowns if u not in replaced)
    return dataclasses.replace(network, input_shape=shape, unknowns=(size, *unknowns))


def _decide(network: Network, size: Unknown, deadline: Deadline) -> list[bool]:
    """accepted[i] for i in 0..max (index 0 unused): by the pass, else one Z3 query per size."""
    from planner.solver.reach import build

    top = size.domain.hi
    engine = build(network, deadline)
    if engine is not None:
        return engine.accepted_inputs(size, top)
    from planner.solver.encode import encode, new_solver

    enc = encode(network)
    solver = new_solver(enc.all_constraints(), enc.ctx)
    var = enc.var(size)
    accepted = [False] * (top + 1)
    for i in range(1, top + 1):
        accepted[i] = deadline.check(solver, var == i) == z3.sat
    return accepted


def closed_form(accepted: list[bool]) -> Form:
    """The smallest start, then the smallest period, that describe accepted[1..] (at least two periods seen)."""
    import numpy as np

    top = len(accepted) - 1
    a = np.array(accepted[1:], bool)
    best: tuple[int, int] | None = None
    for period in range(1, max(1, top // 3) + 1):
        differ = np.flatnonzero(a[:-period] != a[period:])
        start = int(differ[-1]) + 2 if len(differ) else 1  # sizes are 1-based
        if top - start + 1 >= 2 * period and (best is None or start < best[0]):
            best = (start, period)
        if best is not None and best[0] == 1:
            break
    if best is None:  # no pattern seen: every accepted size listed
        return Form(tuple(i for i in range(1, top + 1) if accepted[i]), None, 1, (), top)
    start, period = best
    residues = tuple(sorted({i % period for i in range(start, start + period) if accepted[i]}))
    below = tuple(i for i in range(1, start) if accepted[i])
    if not residues:
        return Form(below, None, 1, (), None)
    return Form(below, start, period, residues, top)


def _prove(network: Network, size: Unknown, form: Form, top: int, deadline: Deadline) -> tuple[str, Form]:
    """Z3's proof that the periodic part holds past `top`, when the size is the only unknown; the form then
    has no `max`. Else it stays the exhaustive check of 1..top."""
    if form.start is None and form.max is None:
        return "z3" if _prove_empty_tail(network, size, form, top, deadline) else "exhaustive", form
    if form.start is None or len(network.unknowns) > 1:
        return "exhaustive", form
    try:
        ctx = z3.Context()
        here = _encoded(network, size, form.start, form.start + PROOF_LIMIT, "", ctx)
        there = _encoded(network, size, form.start + form.period, form.start + form.period + PROOF_LIMIT, "'", ctx)
        solver = z3.Solver(ctx=ctx)
        solver.add(there[0] == here[0] + form.period, z3.Xor(here[1], there[1], ctx))
        solver.add(here[2], there[2])
        if deadline.within(5.0).check(solver) == z3.unsat:
            return "z3", dataclasses.replace(form, max=None)
    except (GaveUp, TooBig):
        pass
    return "exhaustive", form


def _prove_empty_tail(network: Network, size: Unknown, form: Form, top: int, deadline: Deadline) -> bool:
    """No size past `top` is accepted (a finite set), when the size is the only unknown."""
    if len(network.unknowns) > 1:
        return False
    try:
        ctx = z3.Context()
        var, valid, domain = _encoded(network, size, top + 1, top + PROOF_LIMIT, "", ctx)
        solver = z3.Solver(ctx=ctx)
        solver.add(domain, valid)
        return deadline.within(5.0).check(solver) == z3.unsat
    except GaveUp:
        return False


def _encoded(network: Network, size: Unknown, lo: int, hi: int, tag: str, ctx: z3.Context):
    """(size variable, the network's rules hold, the facts: its domain and the layers' definitions) with
    the size in lo..hi."""
    from planner.solver.encode import encode

    wide = Unknown(size.name + tag, "size", Domain(lo, hi), size.path)
    variant = dataclasses.replace(
        network,
        input_shape=tuple(wide if t is size else t for t in network.input_shape),
        unknowns=tuple(wide if u is size else u for u in network.unknowns),
    )
    enc = encode(variant, tag=tag, ctx=ctx)
    valid = z3.And(*enc.requirements.values(), *enc.constraints.values(), ctx)
    return enc.var(wide), valid, z3.And(*enc.domains, *enc.definitions.values(), ctx)


def _fixes(form: Form, written) -> dict[str, str]:
    """Ready to paste: a torch.export Dim, MONAI's DivisiblePad, and the nearest accepted padded size."""
    fixes = {}
    if form.start is not None and len(form.residues) == 1 and form.period > 1:
        r, p = form.residues[0], form.period
        k_min = -(-(form.start - r) // p)
        top = "" if form.max is None else f", max={(form.max - r) // p}"
        fixes["torch_export"] = f'_h = Dim("_h", min={k_min}{top}); h = {p} * _h' + (f" + {r}" if r else "")
        if r == 0:
            fixes["monai"] = f"DivisiblePad(k={p})"
    if isinstance(written, int) and not form.accepts(written):
        padded = next((i for i in range(written, written + 4 * form.period + 4096) if form.accepts(i)), None)
        if padded is not None:
            fixes["pad_to"] = str(padded)
    return fixes


def _tie(network: Network) -> str | None:
    """What makes one axis's size depend on another's: a linear layer's fixed in_features after a flatten."""
    for node in network.nodes:
        if (in_features := getattr(node.model, "in_features", None)) is not None:
            return (
                f"'{node.name}' fixes in_features = {in_features}: the product of the spatial sizes "
                "after the flatten must give it"
            )
    return None
