"""`livestrap build --check ID`: one line per artifact, exit 1 on a difference or a refusal."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from store_helpers import add_image

from livestrap.builder.recheck import ArtifactCheck, CheckReport
from livestrap.cli import build_cmd, main
from livestrap.errors import BuildError
from livestrap.store.images import ImageStore

pytestmark = pytest.mark.unit


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str], mp: pytest.MonkeyPatch) -> Any:
    mp.setattr(sys, "argv", ["livestrap", *argv])
    mp.delenv("FORCE_COLOR", raising=False)
    with pytest.raises(SystemExit) as exited:
        main()
    out, err = capsys.readouterr()
    return exited.value.code or 0, out, err


@pytest.fixture
def image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    store = ImageStore(tmp_path / "data")
    meta = add_image(store, "img-1")
    monkeypatch.setenv("LIVESTRAP_DATA_DIR", str(store.data_dir))
    monkeypatch.setattr(build_cmd, "recorded_spec", lambda meta, data_dir: object())
    return meta.id


def fake_check(rebuilt: dict[str, str]) -> Any:
    def check(store: ImageStore, meta: Any, spec: Any, **kwargs: Any) -> CheckReport:
        arts = [
            ArtifactCheck(name, art.sha256, rebuilt.get(name, art.sha256))
            for name, art in sorted(meta.artifacts.items())
        ]
        return CheckReport(meta.id, arts, meta)

    return check


def test_check_reports_every_artifact_the_same(
    image: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build_cmd, "check_image", fake_check({}))
    code, out, err = run_main(["build", "--check", image], capsys, monkeypatch)
    assert code == 0
    lines = [line.split("\t")[:2] for line in out.splitlines()]
    assert lines == [["initrd.img", "same"], ["root.squashfs", "same"], ["vmlinuz", "same"]]
    assert "reproduced" in err


def test_check_exits_1_on_a_difference(
    image: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build_cmd, "check_image", fake_check({"root.squashfs": "f" * 64}))
    code, out, err = run_main(["build", "--check", image], capsys, monkeypatch)
    assert code == 1
    assert "root.squashfs\tDIFFERS\t" in out and ("f" * 64) in out
    assert "not reproduced" in err


def test_check_refusal_is_said(
    image: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> CheckReport:
        raise BuildError("check", "the inputs of image img-1 changed since it was built")

    monkeypatch.setattr(build_cmd, "check_image", refuse)
    code, out, err = run_main(["build", "--check", image], capsys, monkeypatch)
    assert code == 1 and out == ""
    assert "changed since it was built" in err


def test_check_takes_no_spec(
    image: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run_main(["build", "--check", image, str(tmp_path / "x.yaml")], capsys,
                            monkeypatch)  # fmt: skip
    assert code != 0 and "--check ID rebuilds the image's own spec" in err
