"""The benchmark page renders from the committed figures, section by section, so a
renamed key or a broken renderer shows up in `make test` rather than in the next
`make bench`."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(autouse=True)
def bench_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))


def test_every_committed_section_renders() -> None:
    report = importlib.import_module("report")
    results = report.load_results()
    page = report.render(results)
    assert page.startswith("# Benchmarks")
    for key, module in report.SECTIONS:
        if key in results:
            lines = report.render_section(key, module, results)
            assert lines and lines[0].startswith("## ")


def test_committed_page_matches_the_committed_figures() -> None:
    report = importlib.import_module("report")
    assert (BENCH.parent / "docs/benchmarks.md").read_text() == report.render(report.load_results())


def test_smoke_output_goes_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVESTRAP_BENCH_OUT", str(tmp_path))
    report = importlib.import_module("report")
    report.save_results({})
    assert (tmp_path / "results.json").read_text() == "{}\n"
    assert (tmp_path / "benchmarks.md").read_text().startswith("# Benchmarks")
    assert report.smoke_mode()


def test_modules_import_without_side_effects() -> None:
    for _key, module in importlib.import_module("report").SECTIONS:
        if (BENCH / f"{module}.py").exists():
            importlib.import_module(module)
    assert "report" in sys.modules
