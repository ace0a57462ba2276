"""requirements.lock pins what pyproject.toml asks for: every dependency (the dev extra
too) at one version inside its range, each with sha256 hashes, and the venv has exactly
those versions (a lock the venv ignores pins nothing)."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^ \\]+)")


def locked(lock: str = "requirements.lock") -> dict[str, tuple[Version, int]]:
    """name: (pinned version, number of hashes)."""
    pins: dict[str, tuple[Version, int]] = {}
    name = ""
    for line in (ROOT / lock).read_text().splitlines():
        if m := PIN.match(line):
            name = canonicalize_name(m[1])
            pins[name] = (Version(m[2]), 0)
        elif line.strip().startswith("--hash=sha256:") and name:
            pinned, hashes = pins[name]
            pins[name] = (pinned, hashes + 1)
    return pins


def wanted() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [
        Requirement(d) for d in project["dependencies"] + project["optional-dependencies"]["dev"]
    ]


def test_every_dependency_is_pinned_inside_its_range() -> None:
    pins = locked()
    for req in wanted():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is in pyproject.toml but not in requirements.lock"
        assert req.specifier.contains(pins[name][0], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name][0]}, outside {req}: run `make lock`"
        )


def test_every_pin_has_hashes() -> None:
    assert all(hashes for _, hashes in locked().values())


def test_the_venv_has_the_locked_versions() -> None:
    for name, (pinned, _) in locked().items():
        assert Version(version(name)) == pinned, f"{name}: venv {version(name)}, lock {pinned}"


def test_the_runtime_lock_pins_the_same_versions() -> None:
    """requirements-runtime.lock (the Debian package's venv) is the same resolution
    without the dev extra: every runtime dependency, at the version the tests ran."""
    full, runtime = locked(), locked("requirements-runtime.lock")
    assert all(hashes for _, hashes in runtime.values())
    assert {name: pin for name, (pin, _) in runtime.items()} == {
        name: full[name][0] for name in runtime
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dep in project["dependencies"]:
        assert canonicalize_name(Requirement(dep).name) in runtime
    assert "pytest" not in runtime and "selenium" not in runtime
