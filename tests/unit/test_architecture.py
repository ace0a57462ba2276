"""The dependency rules between livestrap's packages, checked on the source (an AST read, as
import-linter would: every import, relative ones and those inside functions included).

Adding a rule is one line in RULES.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SRC = Path(__file__).resolve().parents[2] / "src"
STDLIB = "<stdlib>"  # in `only`: any module of the standard library


@dataclass(frozen=True)
class Rule:
    """`modules` (a module, or a package and all under it) may not import `forbid`; with
    `only`, may import nothing else; `transitive`: nor through the livestrap modules they
    import (and the packages' __init__ that importing them runs); `exempt` skips modules."""

    modules: str
    forbid: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    transitive: bool = False
    exempt: tuple[str, ...] = ()


PURE = ("livestrap.run", "subprocess")
# who may run commands besides run.py: the agent (stdlib only) and pkgcheck (an mmdebstrap
# hook that needs the hook's environment, which run.py's clean one would drop)
OWN_COMMANDS = ("livestrap.run", "livestrap.agent", "livestrap.builder.pkgcheck")
FRONTS = ("livestrap.cli", "livestrap.netboot")  # the command line and the boot network's files
BUILDING = ("livestrap.builder", "livestrap.master", "livestrap.packaging")
RULES = [
    Rule("livestrap.agent", only=(STDLIB, "livestrap.agent")),  # bare python3 on the image
    Rule("livestrap.builder", forbid=("livestrap.master",)),
    Rule("livestrap.store", forbid=("livestrap.builder", "livestrap.master", *FRONTS)),
    Rule("livestrap.packaging", forbid=("livestrap.builder", "livestrap.master", *FRONTS)),
    Rule("livestrap.netboot", forbid=("livestrap.builder", "livestrap.packaging", "livestrap.cli")),
    Rule("livestrap.apt", forbid=PURE, transitive=True),  # pure renderers
    Rule("livestrap.master.ipxe", forbid=PURE, transitive=True),
    Rule("livestrap.netboot.dnsmasq", forbid=PURE, transitive=True),
    Rule("livestrap.netboot.nginx", forbid=PURE, transitive=True),
    Rule("livestrap", forbid=("subprocess",), exempt=OWN_COMMANDS),  # run.py runs commands
    Rule("livestrap.datadir", only=(STDLIB,)),  # the layout, no I/O of its own
    Rule("livestrap.lspci", only=(STDLIB,)),  # pure: lspci text and PCI facts parsed
    Rule("livestrap.modinfo", only=(STDLIB,)),  # pure: a module's .modinfo from its ELF
    Rule("livestrap.drivers", only=(STDLIB, "livestrap.lspci")),  # pure: coverage matching
    Rule("livestrap.bootpaths", only=(STDLIB,)),  # pure: the /boot URL scheme
    Rule("livestrap.release", only=(STDLIB,)),  # pure: Release fields, read not fetched
    Rule("livestrap.spec", forbid=BUILDING),  # the input knows nothing of what uses it
    Rule("livestrap.specfields", forbid=BUILDING),
    Rule("livestrap.resolve", forbid=BUILDING),
    Rule(
        "livestrap.master.schemas",
        forbid=("livestrap.master.models", "sqlalchemy", "livestrap.store"),
    ),
    Rule("livestrap.master.services", forbid=("fastapi",)),
    Rule("livestrap.master.apidocs", only=(STDLIB, "fastapi", "fastapi_offline")),  # no state
    Rule("livestrap.cli", forbid=("livestrap.master.routes",)),  # the master through its API
    # the console is HTTP and templates: the reads and writes are master.services'
    Rule("livestrap.master.console", forbid=("livestrap.master.routes", "livestrap.cli")),
]


def under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def module_files(src: Path) -> dict[str, Path]:
    """Every module under src/livestrap by dotted name (a package by its __init__.py)."""
    found = {}
    for path in sorted((src / "livestrap").rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports_of(module: str, path: Path, known: set[str]) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in the file, wherever it is; relative imports are
    resolved, `from pkg import mod` names the submodule when there is one, and literal
    importlib.import_module / __import__ calls count."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                head = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{head}.{base}" if base else head
            subs = [f"{base}.{alias.name}" for alias in node.names]
            found = [s for s in subs if s in known]
            yield from ((node.lineno, s) for s in found or [base])
        elif isinstance(node, ast.Call) and node.args:
            name = getattr(node.func, "attr", getattr(node.func, "id", None))
            arg = node.args[0]
            if name in ("import_module", "__import__") and isinstance(arg, ast.Constant):
                yield node.lineno, str(arg.value)


def reachable(start: str, graph: dict[str, list[tuple[int, str]]]) -> list[str]:
    """`start` and every livestrap module importing it runs (parent packages included)."""
    seen, todo = [start], [start]
    while todo:
        current = todo.pop()
        parents = [".".join(current.split(".")[:n]) for n in range(1, current.count(".") + 1)]
        deps = [m for _, m in graph.get(current, [])] + parents
        for dep in deps:
            while dep and dep not in graph:  # `import a.b.c` of a name, not a module
                dep = dep.rpartition(".")[0]
            if dep and dep not in seen:
                seen.append(dep)
                todo.append(dep)
    return seen


def allowed(rule: Rule, imported: str) -> bool:
    if any(under(imported, f) for f in rule.forbid):
        return False
    if not rule.only:
        return True
    stdlib = STDLIB in rule.only and imported.split(".")[0] in sys.stdlib_module_names
    return stdlib or any(under(imported, o) for o in rule.only if o != STDLIB)


def violations(src: Path, rules: list[Rule]) -> list[str]:
    files = module_files(src)
    graph = {m: list(imports_of(m, p, set(files))) for m, p in files.items()}
    found = []
    for rule in rules:
        for module in graph:
            if not under(module, rule.modules) or any(under(module, e) for e in rule.exempt):
                continue
            for via in reachable(module, graph) if rule.transitive else [module]:
                for line, imported in graph[via]:
                    if not allowed(rule, imported):
                        where = f"{files[via].relative_to(src)}:{line}"
                        chain = "" if via == module else f" (via {via})"
                        found.append(
                            f"{rule.modules}: {module}{chain} imports {imported} at {where}"
                        )
    return found


def test_the_tree_keeps_the_rules() -> None:
    assert len(module_files(SRC)) > 100
    assert violations(SRC, RULES) == []


def test_every_rule_names_modules_that_exist() -> None:
    files = module_files(SRC)
    for rule in RULES:
        assert any(under(m, rule.modules) for m in files), rule


def write(src: Path, files: dict[str, str]) -> Path:
    """A tiny livestrap tree to run the check on."""
    for name, text in {"livestrap/__init__.py": "", **files}.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return src


def test_the_check_catches_offenders(tmp_path: Path) -> None:
    src = write(
        tmp_path,
        {
            "livestrap/run.py": "import subprocess\n",
            "livestrap/agent/__init__.py": "",
            "livestrap/agent/a.py": (
                "import os\nfrom . import b\nfrom .b import x\n"
                "def f():\n    import yaml\n    from .. import run\n"
            ),
            "livestrap/agent/b.py": "import importlib\nimportlib.import_module('httpx')\n",
            "livestrap/store/__init__.py": "",
            "livestrap/store/s.py": "from ..builder import w\n",
            "livestrap/builder/__init__.py": "",
            "livestrap/builder/w.py": "from livestrap.master.app import x\n",
            "livestrap/master/__init__.py": "",
            "livestrap/master/app.py": "",
            "livestrap/master/ipxe.py": "from livestrap.master import helper\n",
            "livestrap/master/helper.py": "def f():\n    from livestrap import run\n",
        },
    )
    assert violations(src, RULES) == [
        "livestrap.agent: livestrap.agent.a imports yaml at livestrap/agent/a.py:5",
        "livestrap.agent: livestrap.agent.a imports livestrap.run at livestrap/agent/a.py:6",
        "livestrap.agent: livestrap.agent.b imports httpx at livestrap/agent/b.py:2",
        "livestrap.builder: livestrap.builder.w imports livestrap.master.app"
        " at livestrap/builder/w.py:1",
        "livestrap.store: livestrap.store.s imports livestrap.builder.w at livestrap/store/s.py:1",
        "livestrap.master.ipxe: livestrap.master.ipxe (via livestrap.master.helper)"
        " imports livestrap.run at livestrap/master/helper.py:2",
        "livestrap.master.ipxe: livestrap.master.ipxe (via livestrap.run)"
        " imports subprocess at livestrap/run.py:1",
    ]


def test_a_renderer_reaches_subprocess_through_a_package_init(tmp_path: Path) -> None:
    tree = {
        "livestrap/netboot/__init__.py": "import subprocess\n",
        "livestrap/netboot/nginx.py": "",
    }
    src = write(tmp_path, tree)
    renderers = [r for r in RULES if r.transitive and r.modules != "livestrap.apt"]
    assert violations(src, renderers) == [
        "livestrap.netboot.nginx: livestrap.netboot.nginx (via livestrap.netboot)"
        " imports subprocess at livestrap/netboot/__init__.py:1",
    ]
