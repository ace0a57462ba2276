"""docs/config.md lists exactly the keys MasterSettings has, each with its default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from livestrap.master.config import MasterSettings

pytestmark = pytest.mark.unit

DOC = Path(__file__).resolve().parents[2] / "docs" / "config.md"


def test_config_doc_lists_every_setting() -> None:
    rows = re.findall(r"^\| `([a-z_]+)` \|", DOC.read_text(), flags=re.M)
    assert len(rows) == len(set(rows)), "a key is listed twice"
    assert sorted(rows) == sorted(MasterSettings.model_fields)
