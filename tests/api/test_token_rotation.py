"""A new token needs no restart (master.token_watch): a token file moved into place is
taken by the running master's upkeep, the old token is refused from then on, boot scripts
carry the new discovery token, and a new admin token ends the console sessions made
before it. A file that would not pass at start is logged once and not taken.
`livestrap token new` writes such a file."""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from asgi import bearer, call, master_app
from livestrap.cli import app as cli_app
from livestrap.errors import StartupError
from livestrap.master import token_watch
from livestrap.master.console import sessions
from livestrap.master.state import AppState
from livestrap.master.token_watch import TokenWatch

pytestmark = pytest.mark.integration


@pytest.fixture
def master(tmp_path: Path) -> Iterator[tuple[FastAPI, AppState, TokenWatch]]:
    with master_app(tmp_path / "data") as (app, state):
        watch = next(t for t in state.guards.periodic if isinstance(t, TokenWatch))
        yield app, state, watch


def replace_token(path: Path, mode: int = 0o600) -> str:
    """The operator's rotation: written aside, then moved into place (atomic)."""
    token = secrets.token_urlsafe(32)
    aside = path.with_name(f".{path.name}.new")
    aside.write_text(token + "\n")
    aside.chmod(mode)
    os.replace(aside, path)
    return token


def status(app: FastAPI, token: str) -> int:
    return call(app, "GET", "/api/v1/nodes", headers=bearer(token)).status


def test_a_new_admin_token_is_taken_and_the_old_refused(
    master: tuple[FastAPI, AppState, TokenWatch], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, state, watch = master
    old = state.admin_token
    assert watch() == []  # nothing changed
    with state.db.session() as db:
        before, _ = sessions.start(db, 3600)
    new = replace_token(state.settings.admin_token_file)
    assert status(app, new) == 401 and status(app, old) == 200  # not yet: no upkeep ran
    with state.db.session() as db:  # a login with the old token, before the switch
        late, _ = sessions.start(db, 3600)
    real_end = token_watch.end_sessions_before
    failing = iter([True])

    def locked_once(db: Any, cutoff: float) -> int:
        if next(failing, False):
            raise OperationalError("DELETE", {}, Exception("database is locked"))
        return real_end(db, cutoff)

    monkeypatch.setattr(token_watch, "end_sessions_before", locked_once)
    with pytest.raises(OperationalError):
        watch()  # the token is taken first; the sessions wait for the next round
    assert (status(app, old), status(app, new)) == (401, 200)
    time.sleep(0.01)
    with state.db.session() as db:  # made with the new token, after the switch
        after, _ = sessions.start(db, 3600)
    with state.db.session() as db:
        assert sessions.find(db, before) is not None
    assert watch() == []  # the retry: the file is unchanged, the sessions end now
    with state.db.session() as db:  # the old token's logins went with it
        assert sessions.find(db, before) is None and sessions.find(db, late) is None
        assert sessions.find(db, after) is not None
    assert watch() == []


def test_a_new_discovery_token_is_in_the_boot_script_and_the_old_refused(
    master: tuple[FastAPI, AppState, TokenWatch],
) -> None:
    app, state, watch = master
    old = state.discovery_token
    new = replace_token(state.settings.discovery_token_file)
    assert watch() == ["discovery"]
    for token, expected in ((old, 401), (new, 422)):  # 422: the token passed, the body did not
        answer = call(app, "POST", "/api/v1/discovery", headers=bearer(token), chunks=[b"{}"])
        assert answer.status == expected, answer.body
    assert state.admin_token != new


@pytest.mark.parametrize("slip", ["open to others", "removed", "short"])
def test_a_bad_file_is_logged_once_and_the_token_in_use_stays(
    master: tuple[FastAPI, AppState, TokenWatch], caplog: pytest.LogCaptureFixture, slip: str
) -> None:
    app, state, watch = master
    path, old = state.settings.admin_token_file, state.admin_token
    if slip == "open to others":
        replace_token(path, 0o644)
    elif slip == "removed":
        path.unlink()
    else:
        path.write_text("short\n")
    with caplog.at_level(logging.ERROR, logger="livestrap.master.token_watch"):
        assert watch() == [] and watch() == []
    assert len(caplog.records) == 1, caplog.records
    assert "the one in use stays" in caplog.records[0].getMessage()
    assert status(app, old) == 200
    new = replace_token(path)  # put right: taken on the next round
    assert watch() == ["admin"] and status(app, new) == 200


def test_token_new_replaces_the_file_and_never_prints_the_token(
    master: tuple[FastAPI, AppState, TokenWatch],
) -> None:
    _, state, watch = master
    if os.geteuid() != 0:
        pytest.skip("keeping another user's ownership needs root")
    path = state.settings.discovery_token_file
    os.chown(path, 4321, 4321)  # a master running as its own user must still read it
    old = state.discovery_token
    result = CliRunner().invoke(
        cli_app, ["token", "new", "discovery", "--data-dir", str(state.settings.data_dir)]
    )
    assert result.exit_code == 0, result.output
    new = path.read_text().strip()
    assert new != old and len(new) >= 43 and new not in result.output
    assert f"discovery token replaced: {path}" in result.output
    info = path.stat()
    assert (info.st_mode & 0o777, info.st_uid, info.st_gid) == (0o600, 4321, 4321)
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []
    assert watch() == ["discovery"] and state.discovery_token == new


def test_token_new_replaces_a_file_others_could_read_and_refuses_a_link(
    master: tuple[FastAPI, AppState, TokenWatch], tmp_path: Path
) -> None:
    _, state, _ = master
    path = state.settings.admin_token_file
    path.chmod(0o644)  # leaked: what the new token is for
    data = str(state.settings.data_dir)
    result = CliRunner().invoke(cli_app, ["token", "new", "admin", "--data-dir", data])
    assert result.exit_code == 0, result.output
    assert path.stat().st_mode & 0o777 == 0o600
    path.unlink()
    path.symlink_to(tmp_path / "elsewhere")
    result = CliRunner().invoke(cli_app, ["token", "new", "admin", "--data-dir", data])
    assert isinstance(result.exception, StartupError), result.output  # main() prints it
    assert "symlink" in str(result.exception) and not (tmp_path / "elsewhere").exists()
