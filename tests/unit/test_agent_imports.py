"""The agent runs on the live image's bare python3: stdlib and livestrap.agent imports only."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

AGENT_DIR = Path(__file__).resolve().parents[2] / "src" / "livestrap" / "agent"


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import; relative ones are resolved against the package."""
    package = ["livestrap", "agent"]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append((node.lineno, node.module or ""))
            else:
                base = package[: len(package) - (node.level - 1)] if node.level <= 2 else []
                found.append(
                    (node.lineno, ".".join([*base, *([node.module] if node.module else [])]))
                )
    return found


def allowed(module: str) -> bool:
    top = module.split(".")[0]
    return (
        top in sys.stdlib_module_names
        or module == "livestrap.agent"
        or module.startswith("livestrap.agent.")
    )


def test_agent_imports_only_stdlib_and_itself() -> None:
    files = sorted(AGENT_DIR.rglob("*.py"))
    assert len(files) >= 6
    offenders = [
        f"{path.relative_to(AGENT_DIR)}:{line}: {module}"
        for path in files
        for line, module in imported_modules(path)
        if not allowed(module)
    ]
    assert offenders == []


def test_the_check_catches_offenders(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import os\nimport yaml\nfrom pydantic import BaseModel\nfrom .. import errors\n"
        "from ..store import images\nfrom . import facts\nfrom livestrap.agent.config import X\n"
    )
    rejected = [module for _, module in imported_modules(bad) if not allowed(module)]
    assert rejected == ["yaml", "pydantic", "livestrap", "livestrap.store"]


def test_agent_runs_on_a_bare_interpreter() -> None:
    """-I -S: no site-packages at all, as on the live image; catches livestrap/__init__.py too."""
    src = AGENT_DIR.parent.parent
    qemu = AGENT_DIR.parents[2] / "tests" / "fixtures" / "agent" / "qemu-guest"
    script = (
        "import io, json, sys, contextlib\n"
        f"sys.path.insert(0, {str(src)!r})\n"
        "from livestrap.agent.__main__ import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    code = main(['--print', '--root', {str(qemu)!r}, '--config', '/nonexistent'])\n"
        "tops = {m.split('.')[0] for m in sys.modules} - {'__main__'}\n"
        "loaded = sorted(tops - set(sys.stdlib_module_names))\n"
        "print(json.dumps([code, loaded, json.loads(out.getvalue())['agent_version']]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    code, loaded, version = json.loads(proc.stdout)
    assert code == 0
    assert loaded == ["livestrap"]
    assert version
