"""From a validated `Spec` to a `Network`: names, references, order, and unknowns.

Every value form of SPEC 1.1/1.2 becomes a `Term`: a known int or an `Unknown` with a
finite `Domain`. A scalar form is one term shared by all spatial axes; a `"$name"` is one
`Unknown` shared wherever it is written.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from planner.arithmetic import INT64_MAX
from planner.constraints import Constraint, parse, refs_of, shown
from planner.domains import Domain, ForAllSize, Padding, Term, Unknown
from planner.errors import ConstraintError, Diagnostic, Severity, SpecError
from planner.ops import OPS
from planner.spec.load import LoadedSpec
from planner.spec.models import Defaults, ForAll, LayerBase, OneOf, Range, Spec, Split
from planner.spec.yamlpos import did_you_mean

AXIS_PARAMS = ("kernel", "stride", "dilation", "output_padding")
LOWER_BOUND = {"kernel": 1, "stride": 1, "dilation": 1, "padding": 0, "output_padding": 0, "size": 1}
SPLIT_LIMIT = 4096  # a domain with more members is never listed, only bounded


def _hashable(value: Any, place: dict[Unknown, int]) -> Any:
    """A parameter or field value as a hashable key: each unknown as (its place, its domain), lists as tuples."""
    if isinstance(value, Unknown):
        return ("?", place.get(value), value.domain)
    if isinstance(value, (tuple, list)):
        return tuple([v if type(v) is int else _hashable(v, place) for v in value])
    if isinstance(value, dict):
        return tuple((k, _hashable(v, place)) for k, v in value.items())
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def layer_of(ref: str) -> str:
    """The layer a reference names: itself, or the split `s` of a piece `s[i]` (see `Node.outputs`)."""
    return ref.partition("[")[0]


@dataclass(frozen=True)
class Node:
    """One layer: its op, the layers it reads, and its parameters as terms."""

    name: str
    op: str
    index: int
    inputs: tuple[str, ...]
    params: dict[str, Any]  # axis params: tuple[Term, ...]; padding: Padding; the rest as written
    expect: tuple[int | None, ...] | None
    model: LayerBase
    written_like: Node | None = field(default=None, compare=False, repr=False)  # an earlier layer written alike

    @property
    def path(self) -> tuple:
        return ("layers", self.index)

    @functools.cached_property
    def unknowns(self) -> tuple[Unknown, ...]:
        """The unknowns its parameters use, each once, in the order they are written."""
        return tuple(dict.fromkeys(u for u in _flatten(tuple(self.params.values())) if isinstance(u, Unknown)))

    @functools.cached_property
    def signature(self) -> tuple:
        """Everything its evaluation reads but the shapes of its inputs and the values of its unknowns: the op,
        the parameters (each unknown as its place in `unknowns` and its domain), the model's other fields, the
        `expect` and which inputs are the network's input. Layers with equal signatures map equal inputs under
        equal values of their unknowns to equal outputs, under the same rules (`planner.solver.tables`).

        A layer written like an earlier one (`_written`) has its signature: made once for a chain of 200."""
        if self.written_like is not None:
            return self.written_like.signature
        return self.own_signature()

    def own_signature(self) -> tuple:
        """The signature, made from this layer alone."""
        place = {u: n for n, u in enumerate(self.unknowns)}
        params = tuple((k, _hashable(v, place)) for k, v in self.params.items())
        fields = tuple((k, v) for k, v in vars(self.model).items() if k not in ("name", "expect"))
        try:
            hash(fields)  # as written: strings, numbers, None and tuples, mostly
        except TypeError:
            fields = tuple((k, _hashable(v, place)) for k, v in fields)
        return (self.op, params, fields, self.expect, tuple(name == "input" for name in self.inputs))

    @property
    def outputs(self) -> tuple[str, ...]:
        """The tensors it makes: its name, and a split's pieces `name[0]`, `name[1]`, ..."""
        count = self.model.pieces if isinstance(self.model, Split) else 0
        return (self.name, *(f"{self.name}[{i}]" for i in range(count)))


@dataclass(frozen=True)
class Network:
    name: str
    dialect: str
    loaded: LoadedSpec
    input_shape: tuple[Term, ...]
    nodes: tuple[Node, ...]
    unknowns: tuple[Unknown, ...]
    constraints: tuple[Constraint, ...] = ()

    @property
    def file(self) -> str:
        return self.loaded.file

    @property
    def objective(self) -> tuple[Literal["minimize", "maximize"], str] | None:
        """("minimize", kind) or ("maximize", kind), or None."""
        objective = self.loaded.spec.objective
        if objective is None:
            return None
        if objective.minimize:
            return ("minimize", objective.minimize)
        return ("maximize", objective.maximize) if objective.maximize else None

    @property
    def for_all(self) -> tuple[ForAllSize, ...]:
        return tuple(t for t in self.input_shape if isinstance(t, ForAllSize))

    @property
    def rank(self) -> int:
        return len(self.input_shape) - 2

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def diagnostic(
        self, path: tuple, code: str, message: str, *, layer: str | None = None, severity: Severity = "error"
    ) -> Diagnostic:
        d = self.loaded.source.diagnostic(list(path), code, message, layer=layer)
        return d if severity == "error" else Diagnostic(d.file, d.line, d.column, code, message, severity, layer)


def default_name(op: str, index: int) -> str:
    return f"{op}{index}"


def build_network(loaded: LoadedSpec) -> Network:
    """Resolve names, references and value forms; raises SpecError listing every problem found."""
    return _Builder(loaded).build()


@dataclass
class _Builder:
    loaded: LoadedSpec
    errors: list[Diagnostic] = field(default_factory=list)
    unknowns: list[Unknown] = field(default_factory=list)
    variables: dict[str, Term] = field(default_factory=dict)  # a declared int, or an unknown
    default_domains: dict[str, Domain] = field(default_factory=dict)  # the domain of "?" per kind

    @property
    def spec(self) -> Spec:
        return self.loaded.spec

    def error(self, path: tuple | list, code: str, message: str, layer: str | None = None) -> None:
        self.errors.append(self.loaded.source.diagnostic(list(path), code, message, layer=layer))

    def build(self) -> Network:
        spec = self.spec
        input_shape = self._input_shape()
        ranks = {"input": len(input_shape) - 2}  # spatial axes of each tensor: known before any size is
        nodes: list[Node] = []
        seen: dict[str, int] = {}
        alike: dict[tuple, Node] = {}  # the first layer written each way
        for index, layer in enumerate(spec.layers):
            name = layer.name or default_name(layer.op, index)
            path = ("layers", index)
            if name == "input":
                self.error((*path, "name"), "duplicate-name", "'input' names the network's input; pick another name")
            elif name in seen:
                self.error(
                    (*path, "name"),
                    "duplicate-name",
                    f"layer name '{name}' is already used by layer {seen[name]}",
                    name,
                )
            seen.setdefault(name, index)
            inputs = self._inputs(layer, index, name, seen, previous=nodes[-1].name if nodes else "input")
            rank = ranks.get(layer_of(inputs[0]), ranks["input"])
            ranks[name] = OPS[layer.op].spatial_rank(layer, rank)
            params = {key: self._param(layer, key, rank, path, name) for key in _param_keys(layer)}
            if "stride" in params and params["stride"] is None:
                params["stride"] = params["kernel"]  # pooling: stride defaults to the kernel, unknowns included
            expect = None if layer.expect is None else tuple(None if e == "?" else e for e in layer.expect)
            written = _written(layer, rank, inputs)
            nodes.append(Node(name, layer.op, index, inputs, params, expect, layer, written_like=alike.get(written)))
            alike.setdefault(written, nodes[-1])
        constraints = tuple(self._constraint(text, position, nodes) for position, text in enumerate(spec.constraints))
        if spec.objective is not None and (spec.objective.minimize is None) == (spec.objective.maximize is None):
            self.error(
                ("objective",),
                "value",
                "an objective is one of {minimize: params|flops|kernel_sum} or {maximize: receptive_field}",
            )
        if self.errors:
            raise SpecError(sorted(self.errors, key=lambda d: (d.line, d.column)))
        name = spec.name or _stem(self.loaded.file)
        return Network(name, spec.dialect, self.loaded, input_shape, tuple(nodes), tuple(self.unknowns), constraints)

    def _constraint(self, text: str, position: int, nodes: list[Node]) -> Constraint:
        path = ("constraints", position)
        text = " ".join(text.split())  # one line, also when YAML breaks it over several
        try:
            expr = parse(text)
        except ConstraintError as e:
            self.error(path, e.code, f"constraint '{shown(text)}': {e}")
            return Constraint(text, position, True)
        by_name = {node.name: node for node in nodes}
        for ref in refs_of(expr):
            node = by_name.get(ref.layer)
            if ref.layer != "input" and node is None:
                self.error(
                    path,
                    "unknown-layer",
                    f"constraint '{shown(text)}': no layer named '{shown(ref.layer, 30)}'"
                    f"{did_you_mean(ref.layer, [*by_name, 'input'])}",
                )
            elif node is not None and not ref.index and len(set(map(id, _flatten(node.params.get(ref.attr))))) > 1:
                self.error(path, "constraint", f"constraint '{shown(text)}': {ref} differs per axis; write {ref}[axis]")
        return Constraint(text, position, expr)

    def _inputs(self, layer: LayerBase, index: int, name: str, seen: dict[str, int], previous: str) -> tuple[str, ...]:
        """The layers this one reads: `inputs`, else `input` (default: the previous layer), then crop's `like`."""
        path = ("layers", index)
        fields = _fields_of(type(layer))
        if joined := getattr(layer, "inputs", None) if "inputs" in fields else None:
            refs = [self._reference(r, (*path, "inputs", n), name, seen, index) for n, r in enumerate(joined)]
        else:
            refs = [
                previous if layer.input is None else self._reference(layer.input, (*path, "input"), name, seen, index)
            ]
        if like := getattr(layer, "like", None) if "like" in fields else None:
            refs.append(self._reference(like, (*path, "like"), name, seen, index))
        return tuple(refs)

    def _reference(self, ref: str, path: tuple, name: str, seen: dict[str, int], index: int) -> str:
        """A layer this one reads, checked: an earlier layer, `input`, or `s[i]`, one piece of a split `s`."""
        base, bracket, piece = ref.partition("[")
        count = self._pieces.get(base)
        if count is not None and not bracket:
            message = f"split '{base}' has {count} outputs: read one of them, {base}[0] to {base}[{count - 1}]"
        elif bracket and count is None:
            message = f"'{base}' is not a split: it has one output, read as '{base}'"
        elif count is not None and int(piece.rstrip("]")) >= count:
            message = f"split '{base}' has {count} outputs, {base}[0] to {base}[{count - 1}]; there is no {ref}"
        else:
            return ref if self._earlier(base, path, name, seen, index) else "input"
        self.error(path, "split-output", message, name)
        return "input"

    @functools.cached_property
    def _pieces(self) -> dict[str, int]:
        """The number of outputs of each split, by name."""
        return {
            (m.name or default_name(m.op, i)): m.pieces for i, m in enumerate(self.spec.layers) if isinstance(m, Split)
        }

    def _earlier(self, ref: str, path: tuple, name: str, seen: dict[str, int], index: int) -> bool:
        """Whether `ref` is the input or a layer before this one; an error saying why not."""
        if ref == "input" or ref in seen and seen[ref] < index:
            return True
        if ref == name:
            self.error(path, "cycle", f"layer '{name}' reads its own output", name)
        elif ref in {(m.name or default_name(m.op, i)) for i, m in enumerate(self.spec.layers)}:
            self.error(
                path, "order", f"layer '{ref}' is defined after '{name}'; a layer can only read earlier layers", name
            )
        else:
            earlier = [n for n in seen if n != name]
            self.error(path, "unknown-layer", f"no layer named '{ref}'{did_you_mean(ref, [*earlier, 'input'])}", name)
        return False

    # --- value forms -> terms ----------------------------------------------------------

    def _input_shape(self) -> tuple[Term, ...]:
        shape = self.spec.input.shape
        terms: list[Term] = []
        for axis, value in enumerate(shape):
            path = ("input", "shape", axis)
            if axis < 2:
                if not isinstance(value, int):
                    what = "batch size N" if axis == 0 else "channel count C"
                    self.error(path, "type", f"the {what} must be an int")
                    value = 1
                terms.append(value)
            elif isinstance(value, ForAll):
                domain = self._domain(value.for_all, "size", (*path, "for_all"))
                terms.append(ForAllSize(f"input.shape[{axis}]", "size", domain, path))
            else:
                terms.append(self._term(value, "size", path, f"input.shape[{axis}]"))
        return tuple(terms)

    def _param(self, layer: LayerBase, key: str, rank: int, path: tuple, name: str) -> Any:
        value = getattr(layer, key)
        if value is None:
            return None
        path = (*path, key)
        if key == "padding":
            return self._padding(value, rank, path, name)
        if isinstance(value, list):
            if len(value) != rank:
                self.error(
                    path,
                    "rank",
                    f"'{key}' has {_count(len(value), 'entry', 'entries')} but the input has "
                    f"{_count(rank, 'spatial axis', 'spatial axes')}",
                    name,
                )
            return tuple(self._term(v, key, (*path, a), f"{name}.{key}[{a}]") for a, v in enumerate(value[:rank]))
        term = self._term(value, key, path, f"{name}.{key}")
        return (term,) * rank

    def _padding(self, value: Any, rank: int, path: tuple, name: str) -> Padding:
        if isinstance(value, str) and value != "?" and not value.startswith("$"):
            return value
        if not isinstance(value, list):
            term = self._term(value, "padding", path, f"{name}.padding")
            return ((term, term),) * rank
        if len(value) != rank:
            self.error(
                path,
                "rank",
                f"'padding' has {_count(len(value), 'entry', 'entries')} but the input has "
                f"{_count(rank, 'spatial axis', 'spatial axes')}",
                name,
            )
        pairs: list[tuple[Term, Term]] = []
        for a, entry in enumerate(value[:rank]):
            if isinstance(entry, list):  # [begin, end]: the spec's models allow exactly two
                begin, end = (
                    self._term(v, "padding", (*path, a, side), f"{name}.padding[{a}][{side}]")
                    for side, v in enumerate(entry)
                )
                pairs.append((begin, end))
            else:
                term = self._term(entry, "padding", (*path, a), f"{name}.padding[{a}]")
                pairs.append((term, term))
        return tuple(pairs)

    def _term(self, value: Any, kind: str, path: tuple, name: str) -> Term:
        """A value form -> an int or a (possibly shared) Unknown."""
        lower = LOWER_BOUND[kind]
        if isinstance(value, int):
            if value < lower:
                self.error(path, "value", f"'{kind}' must be at least {lower}, got {value}")
            return value
        if isinstance(value, str) and value.startswith("$"):
            return self._variable(value[1:], kind, path)
        domain = self._domain(value, kind, path)
        unknown = Unknown(name, kind, domain, path)
        self.unknowns.append(unknown)
        return unknown

    def _variable(self, var: str, kind: str, path: tuple) -> Term:
        if var not in self.variables:
            self.variables[var] = self._declare_variable(var, path)
        return self.variables[var]

    def _declare_variable(self, var: str, path: tuple) -> Term:
        """A named variable's term. Its domain is its declaration's, else the defaults of every
        kind it is used as; it always respects each kind's lower bound."""
        kinds = sorted(_variable_kinds(self.spec).get(var, ()))
        lower_kind = max(kinds, key=LOWER_BOUND.__getitem__)  # the kind with the highest lower bound
        uses = " and ".join(kinds)
        declared = self.spec.variables.get(var)
        if isinstance(declared, int):
            if declared < LOWER_BOUND[lower_kind]:
                self.error(
                    ("variables", var),
                    "value",
                    f"variable '${var}' is used as {uses}, "
                    f"so it must be at least {LOWER_BOUND[lower_kind]}, got {declared}",
                )
            return declared
        errors_before = len(self.errors)
        if declared is None or declared == "?":  # the defaults of every kind it is used as
            domain = self._domain("?", kinds[0], path)
            for kind in kinds[1:]:
                domain = domain.intersect(self._domain("?", kind, path))
        else:
            path = ("variables", var)
            domain = self._domain(declared, lower_kind, path)
        if domain.size() == 0 and len(self.errors) == errors_before:
            self.error(path, "empty-domain", f"variable '${var}' has no value that suits every use ({uses})")
        unknown = Unknown(f"${var}", kinds[0], domain, path)
        self.unknowns.append(unknown)
        return unknown

    def _domain(self, value: Any, kind: str, path: tuple) -> Domain:
        if value == "?" and kind in self.default_domains:  # one per kind: a spec's "?"s are mostly these
            return self.default_domains[kind]
        errors_before = len(self.errors)
        domain = self._new_domain(value, kind, path)
        if value == "?" and len(self.errors) == errors_before:
            self.default_domains[kind] = domain
        return domain

    def _new_domain(self, value: Any, kind: str, path: tuple) -> Domain:
        lower = LOWER_BOUND[kind]
        if value == "?":
            default = getattr(self.spec.defaults, kind)
            value = default if default != "?" else Defaults.model_fields[kind].default
            path = ("defaults", kind) if kind in self.spec.defaults.model_fields_set else path
        if isinstance(value, int):
            domain = Domain(value, value)
        elif isinstance(value, OneOf):
            held = sorted({v for v in value.one_of if v <= INT64_MAX})  # a candidate beyond int64 is never chosen
            if not held:
                self.error(
                    path,
                    "size-range",
                    "every value of this one_of is beyond int64 (2**63 - 1); no framework can hold it",
                )
                held = [lower]
            domain = Domain(min(held), max(held), 1, tuple(held))
        else:
            assert isinstance(value, Range)
            domain = Domain(value.min, value.max, value.multiple_of or 1)
        if domain.lo < lower:
            self.error(path, "value", f"a {kind} must be at least {lower}, but its domain starts at {domain.lo}")
        elif domain.size() == 0:
            self.error(path, "empty-domain", f"the domain {_describe(value)} of this {kind} holds no value")
        return domain.restrict(lower)


def _written(layer: LayerBase, rank: int, inputs: tuple[str, ...]) -> tuple:
    """How a layer is written, but for its name. Within one network, layers written alike have the same
    parameters (their unknowns made from the same defaults and variables), so the same signature."""
    fields = tuple((k, v) for k, v in vars(layer).items() if k != "name")
    try:
        hash(fields)
    except TypeError:  # lists, domains written as mappings
        fields = tuple((k, _hashable(v, {})) for k, v in fields)
    return (rank, tuple(name == "input" for name in inputs), fields)


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _flatten(value: Any) -> list:
    if isinstance(value, tuple):
        return [leaf for v in value for leaf in _flatten(v)]
    return [] if value is None else [value]


def _variable_kinds(spec: Spec) -> dict[str, set[str]]:
    """Which parameter kinds each "$name" is written as."""
    kinds: dict[str, set[str]] = {}

    def visit(value: Any, kind: str) -> None:
        if isinstance(value, str) and value.startswith("$"):
            kinds.setdefault(value[1:], set()).add(kind)
        elif isinstance(value, list):
            for v in value:
                visit(v, kind)

    for layer in spec.layers:
        for key in _param_keys(layer):
            visit(getattr(layer, key), key)
    return kinds


def _describe(value: Any) -> str:
    if isinstance(value, Range):
        step = f", multiple_of: {value.multiple_of}" if value.multiple_of else ""
        return f"{{min: {value.min}, max: {value.max}{step}}}"
    return str(value)


def _param_keys(layer: LayerBase) -> tuple[str, ...]:
    return _params_of(type(layer))


@functools.cache
def _fields_of(model: type[LayerBase]) -> frozenset[str]:
    """The fields a layer model has (a model's own fields are fixed: read once per model)."""
    return frozenset(model.model_fields)


@functools.cache
def _params_of(model: type[LayerBase]) -> tuple[str, ...]:
    return tuple(key for key in (*AXIS_PARAMS, "padding") if key in _fields_of(model))


def _stem(file: str) -> str:
    return os.path.splitext(os.path.basename(file))[0]
