"""Dependency floors exclude releases with known holes reachable through the master, and
what is installed meets them."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

pytestmark = [pytest.mark.unit, pytest.mark.security]

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
# package: (last release with the hole, first without it, the advisory)
FIXED = {
    "python-multipart": ("0.0.17", "0.0.18", "CVE-2024-53981"),
    "starlette": ("0.49.0", "0.49.1", "CVE-2025-62727"),
}


def requirements() -> dict[str, Requirement]:
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    return {(r := Requirement(d)).name.lower(): r for d in deps}


@pytest.mark.parametrize("name", sorted(FIXED))
def test_floor_excludes_the_hole(name: str) -> None:
    bad, good, advisory = FIXED[name]
    spec = requirements()[name].specifier
    assert not spec.contains(bad), f"{name} {bad} has {advisory}"
    assert spec.contains(good)
    assert Version(version(name)) >= Version(good), f"installed {name} has {advisory}"
