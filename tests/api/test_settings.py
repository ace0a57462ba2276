"""/api/v1/settings against a real master: auth, round trip, restart, validation, CLI."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from livestrap.cli import app as cli_app
from livestrap.cli.client import MasterError
from livestrap.spec import BuildSpec
from masterproc import Master, master_process

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent.parent / "fixtures"
REPO = {"name": "acme", "uri": "http://acme.example/debian", "suite": "stable", "key": "acme.asc"}


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    data = tmp_path_factory.mktemp("settings") / "data"
    (data / "spec").mkdir(parents=True)  # API specs name files in <data-dir>/spec only
    shutil.copy(FIXTURES / "keys/repo-test.asc", data / "spec/acme.asc")
    with master_process(data) as m:
        yield m


@pytest.fixture
def client(master: Master) -> Iterator[httpx.Client]:
    with master.admin() as c:
        yield c


def test_admin_token_required(master: Master) -> None:
    with master.anonymous() as anon:
        for method, path in [
            ("GET", "/api/v1/settings"),
            ("GET", "/api/v1/settings/effective"),
            ("PUT", "/api/v1/settings"),
        ]:
            assert anon.request(method, path, json={}).status_code == 401
    with master.discovery() as wrong:
        assert wrong.get("/api/v1/settings").status_code == 401


def test_defaults_before_anything_is_stored(tmp_path: Path) -> None:
    with master_process(tmp_path / "data") as m, m.admin() as c:
        assert c.get("/api/v1/settings").json() == BuildSpec().model_dump(mode="json")
        effective = c.get("/api/v1/settings/effective").json()
    assert effective["suite"] and effective["mirror"] and effective["kernel"]


def test_round_trip_and_effective(master: Master, client: httpx.Client) -> None:
    body = {"label": "lab", "packages": ["htop", "jq"], "repos": [REPO]}
    resp = client.put("/api/v1/settings", json=body)
    assert resp.status_code == 200, resp.text
    saved = resp.json()
    assert saved["repos"][0]["key"] == str(master.data_dir / "spec/acme.asc")  # from spec/
    assert client.get("/api/v1/settings").json() == saved
    effective = client.get("/api/v1/settings/effective").json()
    assert effective["label"] == "lab" and effective["suite"] and effective["mirror"]
    assert saved["suite"] is None  # stored as given: the host's mirror/suite stay live


def test_settings_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with master_process(data) as m, m.admin() as c:
        saved = c.put("/api/v1/settings", json={"label": "kept", "compression": "xz"}).json()
    with master_process(data) as m, m.admin() as c:
        assert c.get("/api/v1/settings").json() == saved
    assert saved["label"] == "kept" and saved["compression"] == "xz"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"bogus": 1}, "bogus", "unknown key"),
        ({"mirror": "ftp://mirror.example/debian"}, "mirror", "is not an http://"),
        ({"repos": [{**REPO, "uri": "http:///nohost"}]}, "repos[0].uri", "has no host"),
        ({"repos": [{**REPO, "priority": 0}]}, "repos[0].priority", "greater than or equal"),
        ({"repos": [{**REPO, "priority": 1001}]}, "repos[0].priority", "less than or equal"),
        ({"repos": [{**REPO, "key": "missing.asc"}]}, "repos[0].key", "does not exist"),
        ({"mirror_key": "nonexistent/key.gpg"}, "mirror_key", "does not exist"),
    ],
)
def test_invalid_settings_are_422_naming_the_field(
    client: httpx.Client, body: dict[str, Any], field: str, message: str
) -> None:
    before = client.get("/api/v1/settings").json()
    resp = client.put("/api/v1/settings", json=body)
    assert resp.status_code == 422
    detail = resp.json()["detail"]
    assert f"  {field}: " in detail and message in detail, detail
    assert client.get("/api/v1/settings").json() == before  # nothing stored


def test_pin_conflicts_and_non_mappings_are_refused(client: httpx.Client) -> None:
    twin = {**REPO, "name": "acme2"}
    resp = client.put("/api/v1/settings", json={"repos": [REPO, twin]})
    assert resp.status_code == 422 and "share the pin" in resp.json()["detail"]
    resp = client.put("/api/v1/settings", json=["not", "a", "mapping"])
    assert resp.status_code == 422 and "must be a mapping" in resp.json()["detail"]


def test_effective_is_422_when_the_stored_spec_broke(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "spec").mkdir(parents=True)  # API specs name files in <data-dir>/spec only
    shutil.copy(FIXTURES / "keys/repo-test.asc", data / "spec/acme.asc")
    with master_process(data) as m, m.admin() as c:
        saved = c.put("/api/v1/settings", json={"repos": [REPO]}).json()
        (data / "spec/acme.asc").unlink()
        assert c.get("/api/v1/settings").json() == saved  # still shown as stored
        resp = c.get("/api/v1/settings/effective")
        assert resp.status_code == 422 and "repos[0].key" in resp.json()["detail"]


def test_openapi_shows_the_build_spec(client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    put = doc["paths"]["/api/v1/settings"]["put"]
    body_schema = put["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema["$ref"].endswith("/BuildSpec")
    assert "BuildSpec" in doc["components"]["schemas"]


def test_cli_set_and_show(master: Master, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"LIVESTRAP_MASTER": master.url, "LIVESTRAP_TOKEN": master.admin_token}
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump({"label": "from-cli", "packages": ["htop"]}))
    result = runner.invoke(cli_app, ["settings", "set", str(spec_file)], env=env)
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli_app, ["settings", "show"], env=env)
    shown = yaml.safe_load(result.output)
    assert shown["label"] == "from-cli" and shown["packages"] == ["htop"]
    result = runner.invoke(cli_app, ["settings", "show", "--effective", "-o", "json"], env=env)
    assert '"suite": "' in result.stdout
    result = runner.invoke(cli_app, ["settings", "show", "--effective", "--json"], env=env)
    assert '"suite": "' in result.stdout and "deprecated" in result.stderr
    spec_file.write_text(yaml.safe_dump({"repos": [{**REPO, "priority": 1001}]}))
    result = runner.invoke(cli_app, ["settings", "set", str(spec_file)], env=env)
    assert isinstance(result.exception, MasterError)
    assert "422" in str(result.exception) and "repos[0].priority" in str(result.exception)
