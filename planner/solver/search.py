"""Enumerating plans: assignments of the unknowns, one Z3 model at a time, each blocked once found.

`Search` serves specs whose input sizes are fixed or unknown (an exists problem).
`ForAllSearch` serves `for_all` input sizes (exists-forall) by counterexample-guided
refinement: candidates are solved for a growing sample of sizes, and each candidate is
checked for every size of the set at once by asking Z3 for a size that breaks it.
"""

from __future__ import annotations

import z3

from planner.deadline import Deadline
from planner.domains import Unknown
from planner.graph import Network
from planner.solver.encode import Encoding, encode, new_solver


def block(enc: Encoding, assignment: dict[Unknown, int]) -> z3.BoolRef:
    return z3.Or(*(enc.var(u) != v for u, v in assignment.items()), enc.ctx)


class Search:
    """Plans of a spec without for_all sizes, each found once."""

    def __init__(self, network: Network, deadline: Deadline):
        self.enc = encode(network)
        self.deadline = deadline
        self.solver = new_solver(self.enc.all_constraints(), self.enc.ctx)

    def next(self) -> dict[Unknown, int] | None:
        if self.deadline.check(self.solver) == z3.unsat:
            return None
        assignment = self.enc.assignment(self.solver.model())
        self.solver.add(block(self.enc, assignment))
        return assignment


def sample_sizes(network: Network) -> list[dict[Unknown, int]]:
    """The smallest, a middle and the largest size of every for_all axis (as one tuple each)."""
    domains = [f.domain for f in network.for_all]
    picks = [
        [d.member(0) for d in domains],
        [d.member(d.size() // 2) for d in domains],
        [d.member(-1) for d in domains],
    ]
    unique: list[dict[Unknown, int]] = []
    for pick in picks:
        sizes: dict[Unknown, int] = dict(zip(network.for_all, pick, strict=True))
        if sizes not in unique:
            unique.append(sizes)
    return unique


class ForAllSearch:
    """Plans that hold for every size of the for_all input axes."""

    def __init__(self, network: Network, deadline: Deadline):
        self.network = network
        self.deadline = deadline
        self.symbolic = encode(network)  # for_all sizes free within their domains
        self.samples: list[dict[Unknown, int]] = []
        self.synth: z3.Solver | None = None
        for sizes in sample_sizes(network):
            self.add_sample(sizes)

    def add_sample(self, sizes: dict[Unknown, int]) -> None:
        """Require candidates to work at these sizes too (a copy of the network with its sizes fixed)."""
        tag = "@" + "x".join(str(sizes[f]) for f in self.network.for_all)
        constraints = encode(self.network, sizes, tag, self.symbolic.ctx).all_constraints()
        if self.synth is None:
            self.synth = new_solver(constraints, self.symbolic.ctx)
        else:
            self.synth.add(*constraints)
        self.samples.append(sizes)

    def next(self) -> dict[Unknown, int] | None:
        assert self.synth is not None  # made by the first sample, in __init__
        while True:
            if self.deadline.check(self.synth) == z3.unsat:
                return None
            candidate = self.symbolic.assignment(self.synth.model())
            broken = self.counterexample(candidate)
            if broken is None:
                self.synth.add(block(self.symbolic, candidate))
                return candidate
            self.add_sample(broken)

    def counterexample(self, candidate: dict[Unknown, int]) -> dict[Unknown, int] | None:
        """A for_all size at which the candidate breaks, or None when it holds for all of them."""
        enc = self.symbolic
        check = new_solver(
            [
                *enc.domains,
                *(enc.var(u) == v for u, v in candidate.items()),
                *enc.definitions.values(),
                z3.Not(enc.all(*enc.requirements.values(), *enc.constraints.values())),
            ],
            enc.ctx,
        )
        if self.deadline.check(check) == z3.unsat:
            return None
        model = check.model()
        return {f: model.eval(enc.var(f), model_completion=True).as_long() for f in self.network.for_all}
