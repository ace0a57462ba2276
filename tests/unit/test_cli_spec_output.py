"""`livestrap spec show -o json|yaml`: one document, two spellings of the same data."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from livestrap.cli import app

pytestmark = pytest.mark.unit

ENV = {"LIVESTRAP_MIRROR": "http://mirror.example.test/debian"}


def test_spec_show_json_is_the_yaml_data() -> None:
    as_yaml = CliRunner().invoke(app, ["spec", "show"], env=ENV)
    as_json = CliRunner().invoke(app, ["spec", "show", "-o", "json"], env=ENV)
    assert as_yaml.exit_code == as_json.exit_code == 0, as_yaml.output
    assert json.loads(as_json.stdout) == yaml.safe_load(as_yaml.stdout)
    assert CliRunner().invoke(app, ["spec", "show", "-o", "table"], env=ENV).exit_code == 2
