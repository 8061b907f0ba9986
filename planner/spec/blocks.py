"""Blocks: `blocks:` and their uses in `layers` -> one flat list of layers (docs/blocks.md).

One pass over the positioned tree that returns a new one, before the pydantic models see it:
every use of a block becomes copies of the block's layers named `<use>_<layer>` (`<use>_<i>_<layer>`
with `repeat`), each `"$param"` of the block replaced by the use's value as a whole, references
resolved to expanded names, and every copied value keeping the mark of the text it was copied
from. The new tree's `contexts` name the uses each layer comes from, for the notes of its
diagnostics. A spec without uses loses only its `blocks`; one without `blocks` or uses is returned
as it is. A use or a block that is not well formed stays in the tree, for the Spec model to report
with the loader's messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from planner.errors import Diagnostic
from planner.spec.marked import Items, Marked, flat, is_name, param_ref, plain_data, size_of, tree, unknown_form
from planner.spec.models import Block, BlockUse, is_block_use
from planner.spec.yamlpos import MAX_NODES, Mark, Note, Positioned, did_you_mean

UNKNOWN_KEYS = frozenset({"kernel", "stride", "padding", "dilation", "output_padding"})  # where "?" is an unknown
MAX_NESTING = 64  # uses of blocks inside blocks
_PASSED = "<passed>"  # the place of a value passed on to another block's parameter


def expand_blocks(source: Positioned) -> tuple[Positioned, list[Diagnostic]]:
    """The tree with every block use expanded, and the problems found doing it (each followed by its notes)."""
    data = source.data
    if not isinstance(data, dict) or ("blocks" not in data and not _has_uses(data.get("layers"))):
        return source, []
    if not isinstance(data.get("blocks", {}), dict) or not isinstance(data.get("layers", []), list):
        return source, []  # the Spec model says what `blocks` and `layers` should be
    expander = _Expander(source)
    try:
        items = expander.expand()
    except _Stop:
        return source, expander.diagnostics()
    except RecursionError:
        message = "the blocks expand to values nested too deep; a spec is far simpler"
        return source, [Diagnostic(source.file, 1, 1, "block-depth", message)]
    values: dict[tuple, Mark] = {}
    keys: dict[tuple, Mark] = {}
    new = flat(Marked(items, expander.root.mark), (), values, keys)
    contexts: dict[tuple, tuple[Note, ...]] = {("layers", i): n for i, n in enumerate(expander.notes) if n}
    contexts |= {("variables", name): notes for name, (_, notes) in expander.variables.items() if notes}
    return Positioned(new, source.file, values, keys, contexts), expander.diagnostics()


def _has_uses(layers: Any) -> bool:
    return isinstance(layers, list) and any(is_block_use(layer) for layer in layers)


# --- scopes and arguments ------------------------------------------------------------------------


@dataclass(eq=False)
class _Arg:
    """A parameter's value in one copy of a block: one unknown for the copy when it is "?", a range or a one_of."""

    node: Marked  # substituted where it was written; `node.scope` is where layer names in it resolve
    var: str  # the variable an unknown value becomes: <copy>_<param>
    notes: tuple[Note, ...]  # the uses of the copy it was given to


@dataclass(eq=False)
class _Scope:
    """The top level of the spec, or one copy of a block."""

    prefix: str  # of the expanded names of the layers written here: "" at the top, "layer1_0_" in a copy
    input: str  # the expanded name that `input` means here
    block: str | None = None  # the block this is a copy of
    args: dict[str, _Arg] = field(default_factory=dict)
    notes: tuple[Note, ...] = ()  # the uses this copy comes from, innermost first
    local: dict[str, int] = field(default_factory=dict)  # name written here -> position of its entry
    uses: set[str] = field(default_factory=set)  # the names of the uses among them
    clashing: set[int] = field(default_factory=set)  # positions of entries whose name is taken (reported)
    done: dict[str, str] = field(default_factory=dict)  # name written here -> expanded name of its output, so far
    previous: str = "input"  # the output of the last entry so far: what a layer without `input` reads
    top: _Scope | None = None  # the top level, whose earlier layers a block may read

    def where(self) -> str:
        return f"in block '{self.block}'" if self.block else "in `layers`"


class _Stop(Exception):
    """The expansion cannot go on (it is too big): report what was found so far."""


@dataclass(frozen=True)
class _Problem:
    mark: Mark
    code: str
    message: str
    notes: tuple[Note, ...]
    layer: str | None = None


class _Expander:
    def __init__(self, source: Positioned) -> None:
        self.source = source
        self.root = tree(source, source.data, ())
        self.problems: list[_Problem] = []
        self.layers: list[Marked] = []  # the expanded layers
        self.notes: list[tuple[Note, ...]] = []  # the uses each comes from
        self.names: dict[str, tuple[Mark, _Scope]] = {}  # expanded name -> where it is written
        self.variables: dict[str, tuple[Marked, tuple[Note, ...]]] = {}  # made of unknown parameters
        self.blocks: dict[str, tuple[Block, Marked]] = {}  # the well-formed ones
        self.written = dict(source.data.get("blocks") or {})
        self.well_formed = True
        self.stack: list[str] = []  # the blocks being expanded, outermost first
        self.size = 0
        declared = source.data.get("variables")
        self.declared = set(declared) if isinstance(declared, dict) else set()
        entries = self.root.value.get("blocks")
        for name, (_, node) in (entries[1].value if entries else {}).items():
            try:
                if not is_name(name):
                    raise ValueError(name)
                self.blocks[name] = (Block.model_validate(plain_data(node)), node)
            except (ValidationError, ValueError):
                self.well_formed = False  # kept in the tree: the Spec model says what is wrong

    # --- results ------------------------------------------------------------------------

    def expand(self) -> Items:
        """The root's entries with the layers expanded, the variables of unknown parameters declared
        and `blocks` gone (kept when one is not well formed, for the Spec model to report)."""
        items: Items = dict(self.root.value)
        if self.well_formed:
            items.pop("blocks", None)
        if not _has_uses(self.source.data.get("layers")):
            return items
        top = _Scope("", "input")
        top.top = top
        key_mark, layers = items["layers"]
        self.entries(layers.value, top)
        items["layers"] = (key_mark, Marked(self.layers, layers.mark))
        return self.declare_variables(items)

    def declare_variables(self, items: Items) -> Items:
        if not self.variables:
            return items
        if "variables" in items:
            key_mark, node = items["variables"]
            if not isinstance(node.value, dict):
                return items  # the Spec model reports it
        else:
            first = next(iter(self.variables.values()))[0]
            key_mark, node = first.mark, Marked({}, first.mark)
        entries = dict(node.value) | {name: (value.mark, value) for name, (value, _) in self.variables.items()}
        declared = (key_mark, Marked(entries, node.mark))
        if "variables" in items:
            return {**items, "variables": declared}
        result: Items = {}
        for key, value in items.items():  # a new `variables` goes before `layers`, as SPEC 1 writes them
            if key == "layers":
                result["variables"] = declared
            result[key] = value
        return result

    def diagnostics(self) -> list[Diagnostic]:
        """Each problem once (a block's text copied many times is wrong once), followed by its notes."""
        seen: set[tuple] = set()
        result = []
        file = self.source.file
        for p in sorted(self.problems, key=lambda p: (p.mark.line, p.mark.column)):
            if (p.mark, p.code, p.message) not in seen:
                seen.add((p.mark, p.code, p.message))
                result.append(Diagnostic(file, p.mark.line, p.mark.column, p.code, p.message, layer=p.layer))
                result += [Diagnostic(file, n.mark.line, n.mark.column, n.code, n.message, "note") for n in p.notes]
        return result

    def problem(self, mark: Mark, code: str, message: str, scope: _Scope, layer: str | None = None) -> None:
        self.problems.append(_Problem(mark, code, message, scope.notes, layer))

    def tick(self, count: int, mark: Mark, scope: _Scope) -> None:
        """Count values made; past MAX_NODES, stop at the use written in `layers` that makes them."""
        self.size += count
        if self.size > MAX_NODES:
            at = scope.notes[-1].mark if scope.notes else mark
            message = f"this use expands the spec to more than {MAX_NODES} values; a spec is far smaller"
            self.problems.append(_Problem(at, "block-size", message, ()))
            raise _Stop

    # --- one scope ----------------------------------------------------------------------

    def entries(self, entries: list[Marked], scope: _Scope) -> None:
        """Expand the layers and uses written in one scope, in order."""
        for pos, entry in enumerate(entries):
            name = self.local_name(entry, pos, scope)
            if name is None:
                continue
            if is_block_use(entry.value):
                scope.uses.add(name)
            first = scope.local.setdefault(name, pos)
            if first != pos and (scope.block or name in scope.uses):
                scope.clashing.add(pos)
                message = f"the name '{name}' is already used by the entry at line {entries[first].mark.line}"
                self.problem(_name_mark(entry), "duplicate-name", f"{message} {scope.where()}", scope, name)
        for pos, entry in enumerate(entries):
            if is_block_use(entry.value):
                self.use(entry, pos, scope)
            else:
                self.layer(entry, pos, scope)

    def local_name(self, entry: Marked, pos: int, scope: _Scope) -> str | None:
        """The name of an entry where it is written: its `name`, else its op (or block) and its position."""
        if not isinstance(entry.value, dict):
            return None
        if "name" in entry.value:
            value = self.subst(entry.value["name"][1], scope, ()).value
            return value if is_name(value) else None
        kind = entry.value.get("block" if is_block_use(entry.value) else "op")
        value = self.subst(kind[1], scope, ()).value if kind else None
        return f"{value}{pos}" if is_name(value) else f"layer{pos}"

    def emit(self, node: Marked, scope: _Scope, name: str | None) -> None:
        self.tick(size_of(node), node.mark, scope)
        if name is not None:
            mark, held = self.names.setdefault(name, (_name_mark(node), scope))
            if held is not scope and (scope.block or held.block):
                where = f", in block '{held.block}' used as '{held.prefix[:-1]}'" if held.block else ""
                message = (
                    f"after expansion, the layer name '{name}' is already used by the layer at line {mark.line}{where}"
                )
                self.problem(_name_mark(node), "duplicate-name", message, scope, name)
        self.layers.append(node)
        self.notes.append(scope.notes)

    def last(self) -> str:
        """What a layer without `input` reads in the expanded list: the layer before it."""
        if not self.layers:
            return "input"
        node = self.layers[-1]
        return str(node.value["name"][1].value) if isinstance(node.value, dict) and "name" in node.value else ""

    # --- substitution -------------------------------------------------------------------

    def subst(self, node: Marked, scope: _Scope, where: tuple) -> Marked:
        """`node` with each "$param" of the scope's block replaced, as a whole value, by its argument;
        `where` is the key path of `node` in its layer."""
        value = node.value
        param = param_ref(value)
        if param is not None and param in scope.args:
            return self.argument(scope.args[param], where)
        if param is not None and scope.block and param not in self.declared:
            hint = did_you_mean(value, [f"${p}" for p in scope.args])
            if hint:
                message = f"'{value}' is neither a parameter of block '{scope.block}' nor a declared variable{hint}"
                self.problem(node.mark, "unknown-param", message, scope)
        if isinstance(value, dict):
            return Marked({k: (m, self.subst(v, scope, (*where, k))) for k, (m, v) in value.items()}, node.mark)
        if isinstance(value, list):
            return Marked([self.subst(v, scope, where) for v in value], node.mark)
        return node

    def argument(self, arg: _Arg, where: tuple) -> Marked:
        """A parameter's value at a place: in a kernel, stride, padding, dilation or output_padding (or passed on
        to another block) an unknown value is the variable of its copy; anywhere else, the value as written."""
        if where and (where[0] in UNKNOWN_KEYS or where[0] == _PASSED):
            return self.variable(arg.node, arg.var, arg.notes)
        return arg.node

    def variable(self, node: Marked, var: str, notes: tuple[Note, ...]) -> Marked:
        if isinstance(node.value, list):  # one per axis: a variable for each entry that is unknown
            return Marked(
                [self.variable(v, f"{var}_{i}", notes) for i, v in enumerate(node.value)], node.mark, node.scope
            )
        if not unknown_form(node.value):
            return node
        held = self.variables.setdefault(var, (node, notes))[0]
        if held is node and var in self.declared or held is not node:  # `a` with `b_c`, and `a_b` with `c`
            where = "`variables` declares" if held is node else f"the value at line {held.mark.line} makes"
            message = f"this unknown becomes the variable '${var}', which {where} too; rename one of them"
            self.problems.append(_Problem(node.mark, "duplicate-name", message, notes))
        return Marked(f"${var}", node.mark)

    # --- references ---------------------------------------------------------------------

    def reference(self, node: Marked, scope: _Scope, own: str | None) -> Marked:
        """A reference (`input`, `like`, `inputs`), resolved to the expanded name it means; `own` is the
        name of the entry that holds it."""
        param = param_ref(node.value)
        if param is not None and param in scope.args:
            node = scope.args[param].node
        here = node.scope or scope
        own = own if here is scope else None
        if isinstance(node.value, list):
            return Marked([self.named(v, v.scope or here, own) for v in node.value], node.mark)
        return self.named(node, here, own)

    def named(self, node: Marked, scope: _Scope, own: str | None) -> Marked:
        if not isinstance(node.value, str):
            return node  # the Spec model reports it
        return Marked(self.resolve(node.value, node.mark, scope, own), node.mark)

    def resolve(self, name: str, mark: Mark, scope: _Scope, own: str | None) -> str:
        """The expanded name of the output `name` means in `scope`: the scope's own layers and uses first,
        `input`, then (in a block) the layers of the top level written before the use; a split's piece
        `s[i]` is piece i of what `s` means."""
        base, bracket, piece = name.partition("[")
        if bracket:
            return self.resolve(base, mark, scope, own) + bracket + piece
        if name == "input":
            return scope.input
        if name in scope.done:
            return scope.done[name]
        if name == own and (scope.block or name in scope.uses):
            self.problem(mark, "cycle", f"'{own}' reads its own output", scope, own)
            return scope.prefix + name
        if name in scope.local and (scope.block or name in scope.uses):
            after = f"'{own}'" if own else "this use"
            message = f"'{name}' is defined after {after}; a layer can only read earlier layers"
            self.problem(mark, "order", message, scope, own)
            return scope.prefix + name
        if scope.block is None:
            return name  # the network's own names: graph resolves them and reports what is wrong
        top = scope.top or scope
        if name in top.done:
            return top.done[name]
        if name in top.local:
            message = (
                f"'{name}' is defined after this use of block '{scope.block}'; a layer can only read earlier layers"
            )
            self.problem(mark, "order", message, scope, own)
            return name
        known = [*scope.done, "input", *(f"${p}" for p in scope.args), *top.done]
        message = f"no layer named '{name}' in block '{scope.block}' or before its use{did_you_mean(name, known)}"
        self.problem(mark, "unknown-layer", message, scope, own)
        return name

    # --- a layer ------------------------------------------------------------------------

    def layer(self, entry: Marked, pos: int, scope: _Scope) -> None:
        if not isinstance(entry.value, dict):
            self.emit(self.subst(entry, scope, ()), scope, None)
            return
        local = self.local_name(entry, pos, scope)
        name = None if local is None else scope.prefix + local
        if local == "input" and scope.block:
            self.problem(
                _name_mark(entry), "duplicate-name", "'input' names the block's input; pick another name", scope
            )
        items: Items = {}
        if name is not None:
            key_mark, written = entry.value.get("name", (entry.mark, entry))
            items["name"] = (key_mark, Marked(name, written.mark))
        if not {"input", "inputs"} & set(entry.value) and scope.previous != self.last():
            items["input"] = (entry.mark, Marked(scope.previous, entry.mark))
        for key, (key_mark, node) in entry.value.items():
            if key == "name" and name is not None:
                continue
            if key in ("input", "like") or (key == "inputs" and param_ref(node.value) in scope.args):
                node = self.reference(node, scope, local)
            elif key == "inputs" and isinstance(node.value, list):
                node = Marked([self.reference(v, scope, local) for v in node.value], node.mark)
            else:
                node = self.subst(node, scope, (key,))
            items[key] = (key_mark, node)
        self.emit(Marked(items, entry.mark), scope, name)
        if local is not None and name is not None:
            scope.done.setdefault(local, name)
            scope.previous = name

    # --- a use --------------------------------------------------------------------------

    def use(self, entry: Marked, pos: int, scope: _Scope) -> None:
        fields: Items = entry.value
        written = {k: self.subst(node, scope, ()) for k, (_, node) in fields.items() if k not in ("with", "first")}
        plain = {k: plain_data(node) for k, node in written.items()}
        for key in ("with", "first"):  # their values are checked where the block uses them
            if key in fields:
                value = fields[key][1].value
                plain[key] = dict.fromkeys(value) if isinstance(value, dict) else value
        block = plain["block"]
        if param_ref(block) is not None:
            message = (
                f"'{block}' is not a parameter here; `block:` names a block, or a parameter of the block around it"
            )
            self.problem(written["block"].mark, "unknown-param", message, scope)
            return self.keep(entry, pos, scope, report=False)
        try:
            use = BlockUse.model_validate(plain)
        except ValidationError:
            return self.keep(entry, pos, scope)
        if use.block not in self.blocks:
            if use.block in self.written:  # not well formed: the Spec model reports it
                return self.keep(entry, pos, scope)
            known = sorted(map(str, self.written))
            listed = f"; blocks are: {', '.join(known)}" if known else "; the spec defines no `blocks`"
            message = f"no block named '{use.block}'{did_you_mean(use.block, known)}{listed}"
            self.problem(written["block"].mark, "unknown-block", message, scope)
            return self.keep(entry, pos, scope, report=False)
        if use.block in self.stack:
            chain = " -> ".join([*self.stack[self.stack.index(use.block) :], use.block])
            self.problem(written["block"].mark, "block-cycle", f"block '{use.block}' uses itself: {chain}", scope)
            return self.keep(entry, pos, scope, report=False)
        if len(self.stack) >= MAX_NESTING:
            message = f"blocks are used inside blocks more than {MAX_NESTING} deep"
            self.problem(written["block"].mark, "block-depth", message, scope)
            raise _Stop
        definition, body = self.blocks[use.block]
        name = use.name or f"{use.block}{pos}"
        if name == "input":
            what = "the block's input" if scope.block else "the network's input"
            self.problem(_name_mark(entry), "duplicate-name", f"'input' names {what}; pick another name", scope)
            return self.keep(entry, pos, scope, report=False)
        if pos in scope.clashing:  # reported: its name is taken
            return self.keep(entry, pos, scope, report=False)
        copies = use.repeat or 1
        if copies > MAX_NODES:
            message = f"'repeat': more copies than a spec holds values ({MAX_NODES})"
            self.problem(fields["repeat"][1].mark, "block-size", message, scope, name)
            return self.keep(entry, pos, scope, report=False)
        given = self.given(fields, use, definition, scope)
        missing = False
        for param, default in definition.params.items():
            if default is None and param not in given["with"] and (param not in given["first"] or copies > 1):
                only = " (`first` gives it to the first copy only)" if param in given["first"] else ""
                message = f"block '{use.block}' needs the parameter '{param}', which has no default; give it in `with:`"
                self.problem(entry.mark, "missing-param", message + only, scope, name)
                missing = True
        if missing:
            return self.keep(entry, pos, scope, report=False)
        current = self.reference(fields["input"][1], scope, name).value if "input" in fields else scope.previous
        self.stack.append(use.block)
        for i in range(copies):
            prefix = f"{scope.prefix}{name}_" + (f"{i}_" if use.repeat is not None else "")
            note = Note(entry.mark, f"in block '{use.block}', used here as '{prefix[:-1]}'")
            copy = _Scope(prefix, current, use.block, notes=(note, *scope.notes), previous=current, top=scope.top)
            copy.args = self.arguments(definition, body, given, i, copy, scope)
            self.tick(1, entry.mark, scope)  # an empty block adds no layer, but each copy costs
            self.entries(body.value["layers"][1].value, copy)
            current = copy.previous
        self.stack.pop()
        scope.done.setdefault(name, current)
        scope.previous = current
        return None

    def given(self, fields: Items, use: BlockUse, definition: Block, scope: _Scope) -> dict[str, Items]:
        """The entries of `with` and `first` that name a parameter of the block (the others are reported)."""
        result: dict[str, Items] = {"with": {}, "first": {}}
        names = list(definition.params)
        for key, found in result.items():
            for param, (key_mark, node) in (fields[key][1].value if key in fields else {}).items():
                if param in definition.params:
                    found[param] = (key_mark, node)
                    continue
                listed = f"; its parameters are: {', '.join(names)}" if names else "; it takes no parameters"
                message = f"block '{use.block}' has no parameter '{param}'{did_you_mean(param, names)}{listed}"
                self.problem(key_mark, "unknown-param", message, scope)
        return result

    def arguments(
        self, definition: Block, body: Marked, given: dict[str, Items], i: int, copy: _Scope, at: _Scope
    ) -> dict[str, _Arg]:
        """Each parameter's value in copy `i`: from `first` (copy 0 only), `with`, else the block's default.
        A value written "$p" for a parameter of the block around the use is passed on as it is: the same unknown."""
        defaults = body.value["params"][1].value if "params" in body.value else {}
        args = {}
        for param in definition.params:
            var = f"{copy.prefix}{param}"
            written = (given["first"].get(param) if i == 0 else None) or given["with"].get(param)
            if written is None:  # the default, written in the block: layer names in it are the block's
                node = defaults[param][1]
                args[param] = _Arg(Marked(node.value, node.mark, copy), var, copy.notes)
                continue
            node = written[1]
            passed = param_ref(node.value)
            if passed is not None and passed in at.args:
                args[param] = at.args[passed]
                continue
            value = self.subst(node, at, (_PASSED,))
            args[param] = _Arg(Marked(value.value, value.mark, at), var, copy.notes)
        return args

    def keep(self, entry: Marked, pos: int, scope: _Scope, *, report: bool = True) -> None:
        """A use that is not expanded: with `report`, left in the tree for the Spec model to say what is wrong
        with its form; else (its problem is reported) left out. Its name stays known: no error follows from it."""
        if report:
            self.emit(self.subst(entry, scope, ()), scope, None)
        name = self.local_name(entry, pos, scope)
        if name is not None:
            scope.done.setdefault(name, scope.prefix + name)


def _name_mark(entry: Marked) -> Mark:
    """Where an entry's name is written, else where the entry starts."""
    written = entry.value.get("name") if isinstance(entry.value, dict) else None
    return written[1].mark if written else entry.mark
