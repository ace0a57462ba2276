"""The rules' expression language (master.ruleexpr): what it evaluates, and what it
refuses before anything runs (docs/rules.md)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from livestrap.master.ruleexpr import (
    MAX_EXPR,
    ExpressionError,
    check_regex,
    compile_condition,
    compile_pattern,
    context_of,
    holds,
    render_name,
    size_literals,
)

pytestmark = pytest.mark.unit

FACTS: dict[str, Any] = {
    "system": {"vendor": "Dell Inc.", "product": "PowerEdge R650", "serial": "ABC123"},
    "memory": {"total": 128 * 2**30},
    "cpu": {"threads": 32, "flags": {"avx2": True}},
    "disks": [
        {"name": "sda", "size": 2 * 10**12, "rotational": False},
        {"name": "sdb", "size": 10**12, "rotational": True},
    ],
    "nics": [
        {"name": "eno2", "mac": "aa:bb:cc:dd:ee:01", "pxe": False, "lldp": None},
        {"name": "eno1", "mac": "aa:bb:cc:dd:ee:02", "pxe": True,
         "lldp": {"chassis_name": "leaf1", "port_id": "Ethernet12"}},
    ],
}  # fmt: skip
CONTEXT = context_of(FACTS, {"id": "n1", "name": None, "tags": ["gpu"]}, "register")


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("memory.total >= 64GiB", True),
        ("memory.total >= 256GiB", False),
        ("disks[0].size > 1.5TB and disks[1].size == 1TB", True),
        ("disks|sum(attribute='size') == 3TB", True),
        ("len(disks) == 2", True),
        ("disks|length == 2 and nics|count == 2", True),
        ("disks|selectattr('rotational')|list|length == 1", True),
        ("'sda' in disks|map(attribute='name')", True),
        ("system.vendor is match('Dell')", True),
        ("system.vendor is match('Inc')", False),
        ("system.product is search('R6[0-9]0')", True),
        ("system.vendor == 'Dell Inc.' and not cpu.threads < 16", True),
        ("cpu.flags.avx2 or cpu.flags.avx512", True),
        ("'gpu' in node.tags", True),
        ("lldp.switch == 'leaf1' and lldp.port == 'Ethernet12'", True),
        ("trigger == 'register'", True),
        ("'64GiB' == '64' ~ 'GiB'", True),  # a size inside a string stays text
        # a fact the node did not report is false, never an error
        ("gpu.count > 0", False),
        ("not (gpu.count > 0)", True),
        ("gpu.model is match('A100')", False),
        ("gpus|length == 0", True),
        ("disks[7].size > 1TB", False),
    ],
)
def test_conditions(condition: str, expected: bool) -> None:
    assert holds(condition, CONTEXT) is expected


def test_sizes_are_integers() -> None:
    assert size_literals("x > 64GiB or y < 512MiB or z >= 1TB or w == 1.5KiB") == (
        "x > 68719476736 or y < 536870912 or z >= 1000000000000 or w == 1536"
    )
    assert size_literals("x == '64GiB'") == "x == '64GiB'"


@pytest.mark.parametrize(
    ("condition", "refusal"),
    [
        ("'a' * 10**9", r"operator \* is refused"),
        ("2 ** 1000000", r"operator \*\* is refused"),
        ("'%s' % system", "operator % is refused"),
        ("range(10**9)|length", "only call is len"),
        ("lipsum(10**9)", "only call is len"),
        ("system.vendor.upper()", "only call is len"),
        ("system.__class__", "'__class__' is refused"),
        ("system['__class__']", "'__class__' is refused"),
        ("system._private", "'_private' is refused"),
        ("self", "'self' is refused"),
        ("system|attr('__class__')", "filter 'attr' is refused"),
        ("'x'|center(10**9)", "filter 'center' is refused"),
        ("'x'|format(1)", "filter 'format' is refused"),
        ("system is callable", "test 'callable' is refused"),
        ("{'a': 1}", "Dict is not part"),
        ("system.vendor is match(system.product)", "one regex, a string literal"),
        ("system.vendor is match('(a+)+$')", "repeat inside a repeat"),
        ("system.vendor is match('(a|aa)*b')", "alternation inside a repeat"),
        ("system.vendor is match('(a)\\\\1')", "backreferences"),
        ("system.vendor is match('a*b*c*d*')", "variable repeats"),
        ("system.vendor is match('[')", "bad regex"),
        ("1 +" * 400 + "1", "longer than"),
        ("x" * (MAX_EXPR + 1), "longer than"),
        ("(" * 450 + "1" + ")" * 450, "not an expression"),  # the parser's stack
        ("not " * 200 + "x", "nested deeper"),
        ("memory.total >", "not an expression"),
        ("x }} {{ y", "not"),
        ("", "empty"),
    ],
)
def test_malicious_or_broken_conditions_are_refused(condition: str, refusal: str) -> None:
    started = time.monotonic()
    with pytest.raises(ExpressionError, match=refusal):
        compile_condition(condition)
    assert time.monotonic() - started < 1


def test_a_type_mismatch_fails_on_that_node_only() -> None:
    compile_condition("system.vendor > 5")  # accepted: the facts decide
    with pytest.raises(ExpressionError, match="not supported"):
        holds("system.vendor > 5", CONTEXT)


def test_the_worst_accepted_regex_on_a_long_hostile_fact_stays_fast() -> None:
    hostile = {"system": {"serial": "a" * 100_000}}
    started = time.monotonic()
    for pattern in ("a*a*a*c", ".*.*.*x", "a?a?a?c", "(ab|cd)x"):
        assert not holds(
            f"system.serial is search('{pattern}')", context_of(hostile, {}, "register")
        )
    assert time.monotonic() - started < 1


def test_regex_check_accepts_ordinary_patterns() -> None:
    for pattern in (r"^R6[0-9]0$", r"PowerEdge (R|C)\d+", r"^[A-Z]{3}\d{3,6}\Z", r"(?i)dell"):
        check_regex(pattern)


@pytest.mark.parametrize(
    ("pattern", "name"),
    [
        ("{{ system.serial | lower }}", "abc123"),
        ("rack{{ lldp.port }}", "rackethernet12"),
        ("{{ system.vendor | dnslabel }}-{{ system.serial | lower }}", "dell-inc-abc123"),
        ("{% if memory.total > 64GiB %}big{% else %}small{% endif %}-{{ node.id }}", "big-n1"),
        ("  Node-{{ cpu.threads }}  ", "node-32"),
    ],
)
def test_name_patterns(pattern: str, name: str) -> None:
    assert render_name(pattern, CONTEXT) == name


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("rack{{ gpu.slot }}", "did not report"),  # never a bare "rack"
        ("{{ system.vendor }}", "not a DNS label"),  # 'dell inc.'
        ("{{ system.product|dnslabel }}" * 5, "not a DNS label"),  # over 63
        ("-{{ system.serial }}", "not a DNS label"),
    ],
)
def test_name_patterns_that_give_no_name(pattern: str, problem: str) -> None:
    with pytest.raises(ExpressionError, match=problem):
        render_name(pattern, CONTEXT)


@pytest.mark.parametrize(
    ("pattern", "refusal"),
    [
        ("{% for i in range(10**9) %}x{% endfor %}", "For is not part"),
        ("{% set x = 1 %}{{ x }}", "Assign is not part"),
        ("{% include 'x' %}", "Include is not part"),
        ("{% macro m() %}{% endmacro %}", "Macro is not part"),
        ("{{ 'a' * 10**9 }}", "operator \\* is refused"),
        ("{{ self.__init__ }}", "refused"),
        ("{{ lipsum() }}", "only call is len"),
        ("{{ x", "not a template"),
    ],
)
def test_malicious_name_patterns_are_refused(pattern: str, refusal: str) -> None:
    with pytest.raises(ExpressionError, match=refusal):
        compile_pattern(pattern)
