"""The layout block (README's Development section, docs/design.md section 2) names every
module folder and top-level module, and the two copies say the same: a renamed or new
package cannot leave the docs behind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "livestrap"


def layout_block(path: Path) -> str:
    text = path.read_text()
    found = re.search(r"```\n(src/livestrap/ .*?)```\n", text, re.S)
    assert found, f"{path.name} has no layout block starting with src/livestrap/"
    return found.group(1)


def named(block: str) -> set[str]:
    """The names in the block's left column (`spec.py, specfields.py`, `routes/`)."""
    names = set()
    for line in block.splitlines()[1:]:
        left = line[:31].strip()
        if left.startswith("tests/"):
            continue  # tests/{unit,integration,e2e,api}: not a list of modules
        names.update(n.strip() for n in left.split(",") if n.strip())
    return names


def test_readme_and_design_doc_show_the_same_layout() -> None:
    assert layout_block(ROOT / "README.md") == layout_block(ROOT / "docs" / "design.md")


def test_every_module_folder_and_top_level_module_is_named() -> None:
    names = named(layout_block(ROOT / "README.md"))
    folders = {
        f"{p.name}/"
        for p in PACKAGE.rglob("*")
        if p.is_dir() and (p / "__init__.py").exists() and p.parent.name != "migrations"
    } - {"livestrap/", "versions/"}
    modules = {p.name for p in PACKAGE.glob("*.py")} - {"__init__.py", "__main__.py"}
    assert sorted((folders | modules) - names) == []
    assert sorted(names - folders - modules - {"bench/", "docs/"}) == []
