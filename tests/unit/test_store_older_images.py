"""Images stored under older rules (issue-11 review): the kernel-option allow-list and
the recorded-spec check are newer than some stored images. Such an image stays listed,
marked with its problems, instead of vanishing; new metadata (build, import) is still
held to every rule, its kernel options never reach a boot script, and it is never
activated (the master cannot boot it)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
import yaml
from store_helpers import (  # noqa: F401  (store_fixture provides `store`)
    add_image,
    image_members,
    old_style,
    store_fixture,
    write_tar,
)
from typer.testing import CliRunner

from livestrap.builder.pipeline import _image_with_inputs
from livestrap.cli import app, main
from livestrap.errors import StoreError
from livestrap.master.app import warn_invalid_images
from livestrap.master.ipxe import render_boot_script
from livestrap.master.services.images import image_detail, image_summary
from livestrap.store.bundle import import_image
from livestrap.store.images import ImageStore
from livestrap.store.manifest import parse_metadata

pytestmark = [pytest.mark.unit, pytest.mark.security]


def test_an_old_style_image_stays_listed_with_its_problems(store: ImageStore) -> None:
    add_image(store, "new-1")
    old_style(store)
    infos = {i.id: i for i in store.list()}
    assert set(infos) == {"new-1", "old-1"}
    assert infos["new-1"].problems == ()
    problems = infos["old-1"].problems
    assert len(problems) == 2
    assert problems[0].startswith("spec: ") and "\n" not in problems[0]
    assert problems[1].startswith("kernel_cmdline: invalid kernel options 'foo=$bar'")
    meta = store.get("old-1")
    assert meta.kernel_cmdline == ["console=ttyS0", "foo=$bar"]
    assert meta.stored_problems == list(problems)
    assert store.get("new-1").stored_problems == []


def test_summary_and_detail_carry_the_problems(store: ImageStore) -> None:
    old_style(store)
    (info,) = store.list()
    assert image_summary(info).problems == list(info.problems)
    detail = image_detail(store.get("old-1"), "old-1")
    assert detail.problems == list(info.problems) and detail.active
    assert detail.kernel_cmdline[-1] == "foo=$bar"  # shown as stored, not rewritten


def test_new_metadata_keeps_every_rule(store: ImageStore, tmp_path: Path) -> None:
    text = old_style(store).read_text()
    with pytest.raises(StoreError, match="kernel options"):
        parse_metadata(text)
    members = image_members("imp-1")
    meta_text = members[0][1]
    assert meta_text is not None
    evil = meta_text.decode().replace("- console=ttyS0\n", "- console=ttyS0\n- foo=$bar\n")
    members[0] = (members[0][0], evil.encode())
    members[0][0].size = len(evil.encode())
    bundle = write_tar(tmp_path / "b.tar", members)
    with pytest.raises(StoreError, match="kernel options"):
        import_image(ImageStore(tmp_path / "other"), bundle)


def test_its_kernel_options_never_reach_a_boot_script(store: ImageStore) -> None:
    old_style(store)
    with pytest.raises(ValueError, match="kernel options"):
        render_boot_script("http://m", "old-1", "t" * 43, store.get("old-1").kernel_cmdline)


def test_master_start_logs_it_once(store: ImageStore, caplog: pytest.LogCaptureFixture) -> None:
    add_image(store, "new-1")
    old_style(store)
    store.active_link.symlink_to("images/old-1")  # active before the upgrade
    with caplog.at_level(logging.WARNING, logger="livestrap.master.app"):
        assert warn_invalid_images(store) == ["old-1"]
    (record,) = caplog.records
    assert "old-1" in record.getMessage() and "active image" in record.getMessage()
    assert "foo=$bar" in record.getMessage()


def test_a_build_never_reuses_it(store: ImageStore) -> None:
    old_style(store, inputs="ab" * 32)
    assert _image_with_inputs(store, "ab" * 32) is None


def test_cli_list_marks_it_and_show_says_why(store: ImageStore) -> None:
    add_image(store, "new-1")
    old_style(store)
    store.active_link.symlink_to("images/old-1")  # active before the upgrade
    runner = CliRunner()
    data = ["--data-dir", str(store.data_dir)]
    table = runner.invoke(app, ["images", "list", *data]).stdout.splitlines()
    marks = {line.split()[0]: line.split()[-1] for line in table[1:]}
    assert marks["old-1"] == "*!" and not marks["new-1"].endswith("!")
    rows = json.loads(runner.invoke(app, ["images", "list", "-o", "json", *data]).stdout)
    assert [len(r["problems"]) for r in rows] == [0, 2]
    shown = yaml.safe_load(runner.invoke(app, ["images", "show", "old-1", *data]).stdout)
    assert shown["problems"][1].startswith("kernel_cmdline: ")


def test_an_image_the_master_cannot_boot_is_never_activated(
    store: ImageStore, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review: activate read it with its problems noted and said yes; every node then
    looped on the retry script."""
    add_image(store, "new-1")
    store.activate("new-1")
    old_style(store)
    assert store.get("old-1").boot_problems == store.get("old-1").stored_problems[1:]
    with pytest.raises(StoreError, match=r"old-1 cannot be activated.*kernel_cmdline: invalid"):
        store.activate("old-1")
    assert store.active_id() == "new-1"
    argv = ["livestrap", "images", "activate", "old-1", "--data-dir", str(store.data_dir)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exited:
        main()  # as the `livestrap` script runs it: one error line, no traceback
    err = capsys.readouterr().err
    assert exited.value.code == 1 and "Traceback" not in err
    assert err.startswith("error: image old-1 cannot be activated") and "kernel_cmdline" in err
    assert store.active_id() == "new-1"


def test_a_spec_problem_alone_does_not_stop_activation(store: ImageStore) -> None:
    """Only what keeps /boot/ipxe from rendering refuses activation."""
    path = old_style(store)
    cmdline = "kernel_cmdline:\n- console=ttyS0\n"
    path.write_text(path.read_text().replace(cmdline + "- foo=$bar\n", cmdline))
    meta = store.get("old-1")
    assert [p.split(":")[0] for p in meta.stored_problems] == ["spec"] and not meta.boot_problems
    store.activate("old-1")
    assert store.active_id() == "old-1"
