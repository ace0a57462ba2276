"""The rules' language: Jinja2 expressions (conditions) and templates (name patterns),
sandboxed and cut down to what a rule needs (docs/rules.md).

Why not plain Jinja: a rule runs on hostile facts, and the sandbox alone still lets an
expression build `'a' * 10**9` or walk an object's attributes. So every expression is
parsed first and refused unless made of a short list of node types: names, fact paths,
literals, comparisons, `and`/`or`/`not`, `+ - / //`, `~`, `if-else`, a few filters and
tests, and `len(x)`; no `*`, `**`, `%`, no other call, no name or key starting with `_`.
A path reads only dict keys and list items (never a Python attribute); a fact the node
did not report is a falsey `Missing` (every comparison with it is false). Sizes like
`64GiB` are integers. Regexes are literals checked for the shapes that backtrack
exponentially, and match at most MAX_SUBJECT characters of a fact.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, Template, UndefinedError, nodes
from jinja2.sandbox import SandboxedEnvironment

sre: Any = importlib.import_module("re._parser")  # the stdlib's regex parser (no stubs)

MAX_EXPR = 1000  # characters of a condition or a name pattern
MAX_DEPTH = 64  # nesting of an expression's parse tree
MAX_REGEX = 200  # characters of a regex
MAX_REPEATS = 3  # repeats of a variable count (`*`, `+`, `?`, `{m,n}`) in one regex
MAX_SUBJECT = 128  # characters of a fact a regex looks at
MAX_RENDERED = 253  # characters a name pattern may produce before it is checked
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")

UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15}
UNITS |= {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50}
_SIZE_OR_STRING = re.compile(
    r"""(?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
    r"|(?<![\w.])(?P<num>\d+(?:\.\d+)?)(?P<unit>[KMGTP]i?B|B)\b"
)
FILTERS = (
    "length", "count", "lower", "upper", "trim", "int", "float", "string", "default", "d",
    "first", "last", "min", "max", "sum", "sort", "unique", "list", "join", "select",
    "reject", "selectattr", "rejectattr", "map", "abs", "round", "truncate", "dnslabel",
)  # fmt: skip
TESTS = (
    "defined", "undefined", "none", "number", "string", "mapping", "sequence", "boolean",
    "true", "false", "integer", "float", "eq", "ne", "lt", "le", "gt", "ge", "==", "!=",
    "<", "<=", ">", ">=", "in", "odd", "even", "divisibleby", "lower", "upper", "match",
    "search",
)  # fmt: skip
EXPRESSION_NODES: tuple[type[nodes.Node], ...] = (
    nodes.Name, nodes.Const, nodes.List, nodes.Tuple, nodes.Getattr, nodes.Getitem,
    nodes.Slice, nodes.Compare, nodes.Operand, nodes.And, nodes.Or, nodes.Not, nodes.Neg,
    nodes.Pos, nodes.Add, nodes.Sub, nodes.Div, nodes.FloorDiv, nodes.Concat,
    nodes.CondExpr, nodes.Filter, nodes.Test, nodes.Call, nodes.Keyword,
)  # fmt: skip
TEMPLATE_NODES = (nodes.Template, nodes.Output, nodes.TemplateData, nodes.If)
RESERVED = ("self", "loop", "varargs", "kwargs", "caller")  # Jinja's own names in a template
REFUSED_OPS = {nodes.Mul: "*", nodes.Pow: "**", nodes.Mod: "%"}


class ExpressionError(ValueError):
    """A condition or pattern the language refuses, or one that failed on a node."""


class Missing(ChainableUndefined):
    """A fact the node did not report: falsey, empty, and never equal to or ordered
    against anything (so `memory.total > 64GiB` is false, not an error)."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Missing)

    def __ne__(self, other: object) -> bool:
        return not isinstance(other, Missing)

    def __hash__(self) -> int:
        return 0

    def __lt__(self, other: object) -> bool:  # type: ignore[override]
        return False

    def __le__(self, other: object) -> bool:  # type: ignore[override]
        return False

    def __gt__(self, other: object) -> bool:  # type: ignore[override]
        return False

    def __ge__(self, other: object) -> bool:  # type: ignore[override]
        return False


class MissingInName(Missing):
    """In a name pattern a missing fact fails the pattern (no `rack` for `rack{{ x }}`)."""

    __slots__ = ()

    def __str__(self) -> str:
        raise UndefinedError(f"the node did not report {self._undefined_name!r}")


def size_literals(text: str) -> str:
    """`64GiB` -> `68719476736` outside string literals."""

    def one(found: re.Match[str]) -> str:
        if found["str"]:
            return found["str"]
        return str(int(Decimal(found["num"]) * UNITS[found["unit"]]))

    return _SIZE_OR_STRING.sub(one, text)


def check_regex(pattern: object) -> re.Pattern[str]:
    """A regex a rule may use: short, no backreference, no repeat inside a repeat, no
    alternation inside a repeat, few repeats of a variable count (the shapes that backtrack)."""
    if not isinstance(pattern, str):
        raise ExpressionError("a regex must be a string")
    if len(pattern) > MAX_REGEX:
        raise ExpressionError(f"regex longer than {MAX_REGEX} characters")
    try:
        compiled = re.compile(pattern)
        tree = sre.parse(pattern)
    except (re.error, RecursionError, OverflowError) as err:
        raise ExpressionError(f"bad regex {pattern!r}: {err}") from None
    if _walk_regex(list(tree), inside_repeat=False) > MAX_REPEATS:
        raise ExpressionError(f"regex {pattern!r}: more than {MAX_REPEATS} variable repeats")
    return compiled


REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)


def _walk_regex(items: list[Any], inside_repeat: bool) -> int:
    """The variable repeats in `items`; ExpressionError on a backtracking shape."""
    count = 0
    for op, arg in items:
        if op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
            raise ExpressionError("regex backreferences are refused")
        if op in REPEATS:
            low, high, sub = arg
            if inside_repeat and high != low:
                raise ExpressionError("a regex repeat inside a repeat is refused")
            count += (high != low) + _walk_regex(list(sub), high != low)
        elif op == sre.BRANCH:
            if inside_repeat:
                raise ExpressionError("a regex alternation inside a repeat is refused")
            count += sum(_walk_regex(list(branch), False) for branch in arg[1])
        elif op in (sre.SUBPATTERN, sre.ATOMIC_GROUP):
            count += _walk_regex(list(arg[-1]), inside_repeat)
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            count += _walk_regex(list(arg[1]), inside_repeat)
    return count


def _walk(node: nodes.Node, depth: int, allowed: tuple[type[nodes.Node], ...]) -> None:
    """Refuse any node type, name, key, filter, test or call outside the language."""
    if depth > MAX_DEPTH:
        raise ExpressionError(f"nested deeper than {MAX_DEPTH}")
    for kind, symbol in REFUSED_OPS.items():
        if isinstance(node, kind):
            raise ExpressionError(f"the operator {symbol} is refused")
    if not isinstance(node, allowed):
        raise ExpressionError(f"{type(node).__name__} is not part of the rules' language")
    _check_node(node)
    for child in node.iter_child_nodes():
        _walk(child, depth + 1, allowed)


def _check_node(node: nodes.Node) -> None:
    if isinstance(node, nodes.Name) and (
        node.name.startswith("_") or node.name in RESERVED or node.ctx != "load"
    ):
        raise ExpressionError(f"the name {node.name!r} is refused")
    if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
        raise ExpressionError(f"the key {node.attr!r} is refused")
    key = (
        node.arg.value
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const)
        else None
    )
    if isinstance(key, str) and key.startswith("_"):
        raise ExpressionError(f"the key {key!r} is refused")
    if isinstance(node, nodes.Filter) and node.name not in FILTERS:
        raise ExpressionError(f"the filter {node.name!r} is refused")
    if isinstance(node, nodes.Test):
        if node.name not in TESTS:
            raise ExpressionError(f"the test {node.name!r} is refused")
        if node.name in ("match", "search"):
            if len(node.args) != 1 or not isinstance(node.args[0], nodes.Const):
                raise ExpressionError(f"`{node.name}` takes one regex, a string literal")
            check_regex(node.args[0].value)
    if isinstance(node, nodes.Call):
        plain = not (node.kwargs or node.dyn_args or node.dyn_kwargs) and len(node.args) == 1
        if not (isinstance(node.node, nodes.Name) and node.node.name == "len" and plain):
            raise ExpressionError("the only call is len(x)")


def _regex_test(kind: str) -> Callable[[object, object], bool]:
    def test(value: object, pattern: object) -> bool:
        if not isinstance(value, str):
            return False
        regex = _cached_regex(pattern)
        found = regex.match if kind == "match" else regex.search
        return found(value[:MAX_SUBJECT]) is not None

    return test


@lru_cache(maxsize=256)
def _cached_regex(pattern: object) -> re.Pattern[str]:
    return check_regex(pattern)


def dns_label(value: object) -> str:
    """A string made into a DNS label: lower-case, runs of other characters as `-`."""
    label = re.sub(r"[^a-z0-9-]+", "-", str(value).lower()).strip("-")
    return label[:63].strip("-")


def _safe_len(value: object) -> int:
    return len(value) if isinstance(value, str | list | tuple | dict) else 0


class RulesEnvironment(SandboxedEnvironment):
    """A sandbox whose paths read dict keys and list items only, never attributes."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        return self.getitem(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, Mapping) and isinstance(argument, str) and argument in obj:
            return obj[argument]
        if isinstance(obj, list | tuple | str):
            if isinstance(argument, slice):
                return obj[argument]
            index = isinstance(argument, int) and not isinstance(argument, bool)
            if index and -len(obj) <= argument < len(obj):
                return obj[argument]
        return self.undefined(obj=obj, name=str(argument)[:100])


def _environment(undefined: type[Missing]) -> RulesEnvironment:
    env = RulesEnvironment(undefined=undefined, autoescape=False)
    env.filters = {name: env.filters[name] for name in FILTERS if name in env.filters}
    env.filters["dnslabel"] = dns_label
    env.tests = {name: env.tests[name] for name in TESTS if name in env.tests}
    env.tests["match"], env.tests["search"] = _regex_test("match"), _regex_test("search")
    env.globals = {"len": _safe_len}
    return env


CONDITIONS = _environment(Missing)
NAMES = _environment(MissingInName)


def _bounded(text: str, what: str) -> None:
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError(f"{what} is empty")
    if len(text) > MAX_EXPR:
        raise ExpressionError(f"{what} is longer than {MAX_EXPR} characters")


@lru_cache(maxsize=512)
def compile_condition(text: str) -> Callable[..., Any]:
    """The condition, checked and compiled; ExpressionError says what is refused."""
    _bounded(text, "the condition")
    source = size_literals(text)
    try:
        tree = CONDITIONS.parse("{{ (" + source + "\n) }}")
        body = tree.body[0]
        if len(tree.body) != 1 or not isinstance(body, nodes.Output) or len(body.nodes) != 1:
            raise ExpressionError("not one expression")
        _walk(body.nodes[0], 0, EXPRESSION_NODES)
        return CONDITIONS.compile_expression(source)
    except ExpressionError:
        raise
    except Exception as err:  # a syntax error, or a parser that ran out of stack
        raise ExpressionError(f"not an expression: {_first_line(err)}") from None


@lru_cache(maxsize=512)
def compile_pattern(text: str) -> Template:
    """The name pattern (a template), checked and compiled."""
    _bounded(text, "the name pattern")
    source = size_literals(text)
    try:
        _walk(NAMES.parse(source), -1, (*TEMPLATE_NODES, *EXPRESSION_NODES))
        return NAMES.from_string(source)
    except ExpressionError:
        raise
    except Exception as err:
        raise ExpressionError(f"not a template: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    return (str(err) or type(err).__name__).splitlines()[0][:200]


def holds(text: str, context: Mapping[str, Any]) -> bool:
    """Whether the condition holds; ExpressionError when it fails on these facts."""
    check = compile_condition(text)
    try:
        return bool(check(**context))
    except Exception as err:  # a type mismatch, a bad int(), a division by zero ...
        raise ExpressionError(f"failed: {_first_line(err)}") from None


def render_name(text: str, context: Mapping[str, Any]) -> str:
    """The name the pattern gives (lower-case); ExpressionError unless a DNS label."""
    template = compile_pattern(text)
    try:
        rendered = template.render(**context)
    except Exception as err:
        raise ExpressionError(f"failed: {_first_line(err)}") from None
    name = rendered.strip().lower()
    if not NAME_RE.match(name):
        raise ExpressionError(f"gave {name[:MAX_RENDERED]!r}, not a DNS label")
    return name


def _pxe_lldp(nics: object) -> dict[str, Any]:
    """The LLDP neighbour of the boot NIC (else the first NIC that has one)."""
    found = [n for n in nics if isinstance(n, dict)] if isinstance(nics, list) else []
    found.sort(key=lambda nic: nic.get("pxe") is not True)
    for nic in found:
        lldp = nic.get("lldp")
        if isinstance(lldp, dict):
            return {**lldp, "port": lldp.get("port_id"), "switch": lldp.get("chassis_name")}
    return {}


def context_of(facts: object, node: Mapping[str, Any], trigger: str) -> dict[str, Any]:
    """What a rule sees: the facts' top-level keys, and `facts`, `node` (id, name,
    tags, boot_mac, image_id, agent_version), `lldp` (the boot NIC's) and `trigger`."""
    data = dict(facts) if isinstance(facts, dict) else {}
    context = {k: v for k, v in data.items() if isinstance(k, str) and not k.startswith("_")}
    context.update(facts=data, node=dict(node), lldp=_pxe_lldp(data.get("nics")))
    context["trigger"] = trigger
    return context
