"""`livestrap images ...` on a store of fake images: formats, -q, id prefixes, diff rows."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from store_helpers import BASE_TIME, add_image
from typer.testing import CliRunner

from livestrap.cli import app
from livestrap.ids import AmbiguousIdError
from livestrap.store.images import ImageStore

pytestmark = pytest.mark.unit


@pytest.fixture
def data(tmp_path: Path) -> Path:
    store = ImageStore(tmp_path / "data")
    add_image(store, "rack-1", packages={"bash": "5.2", "curl": "7.88", "vim": "9.0"})
    add_image(
        store,
        "rack-2",
        created=BASE_TIME + timedelta(hours=1),
        packages={"bash": "5.2", "curl": "8.0", "zstd": "1.5"},
    )
    store.activate("rack-1")
    return store.data_dir


def run(data: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["images", *args, "--data-dir", str(data)])


def test_list_formats(data: Path) -> None:
    table = run(data, "list").stdout.splitlines()
    assert table[0].split() == ["ID", "LABEL", "CREATED", "SIZE", "ACTIVE"]
    assert table[1].startswith("rack-1  ") and table[1].endswith("*")
    assert run(data, "list", "-q").stdout == "rack-1\nrack-2\n"
    rows = json.loads(run(data, "list", "-o", "json").stdout)
    assert rows[0] == {"id": "rack-1", "label": "label rack-1", "created": "2024-05-01T12:00:00Z",
                       "total_size": rows[0]["total_size"], "active": True,
                       "problems": []}  # fmt: skip
    assert yaml.safe_load(run(data, "list", "-o", "yaml").stdout) == rows
    old = run(data, "list", "--json")
    assert json.loads(old.stdout) == rows and "deprecated" in old.stderr


def test_empty_store_says_so_on_stderr(tmp_path: Path) -> None:
    result = run(tmp_path, "list")
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == "no images\n"


def test_show_takes_a_unique_prefix(data: Path) -> None:
    shown = yaml.safe_load(run(data, "show", "rack-2").stdout)
    assert shown["id"] == "rack-2" and shown["active"] is False
    assert json.loads(run(data, "show", "rack-1", "-o", "json").stdout)["active"] is True
    result = run(data, "show", "rack")
    assert isinstance(result.exception, AmbiguousIdError)
    assert str(result.exception) == "image id prefix 'rack' is ambiguous: rack-1, rack-2"


def test_diff_rows_and_json(data: Path) -> None:
    assert run(data, "diff", "rack-1", "rack-2").stdout.splitlines() == [
        "   PACKAGE  FROM  TO",
        "+  zstd     -     1.5",
        "-  vim      9.0   -",
        "~  curl     7.88  8.0",
    ]
    assert json.loads(run(data, "diff", "rack-1", "rack-2", "-o", "json").stdout) == {
        "a": "rack-1",
        "b": "rack-2",
        "added": {"zstd": "1.5"},
        "removed": {"vim": "9.0"},
        "changed": {"curl": ["7.88", "8.0"]},
    }
    assert run(data, "diff", "rack-1", "rack-2", "-o", "value").stdout == "zstd\nvim\ncurl\n"
    same = run(data, "diff", "rack-1", "rack-1")
    assert same.stdout == "" and same.stderr == "same packages\n"


def test_activate_and_delete_by_prefix(data: Path) -> None:
    add_image(ImageStore(data), "lab-1")
    assert run(data, "activate", "lab").stdout == "active: lab-1\n"
    assert run(data, "delete", "rack-1").stdout == "deleted rack-1\n"
    assert run(data, "delete", "rack").stdout == "deleted rack-2\n"  # unique now
    assert run(data, "list", "-q").stdout == "lab-1\n"
