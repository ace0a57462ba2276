"""The PostgreSQL pass runs as a throwaway role: random password, no superuser, no right to
create databases or roles, owner of one database only; dropped when the command ends. No
`make` target leaves a superuser with a known password behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import skip_missing
from masterproc import PG_ADMIN_URL

pytestmark = [pytest.mark.integration, pytest.mark.security]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "test-postgres.sh"

# Run by the script as its command: what the role may do, one line of Python.
PROBE = """
import os, psycopg
with psycopg.connect(os.environ["LIVESTRAP_TEST_POSTGRES"], connect_timeout=5) as c:
    su, cdb, crole = c.execute("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                               "WHERE rolname = current_user").fetchone()
    owned = c.execute("SELECT count(*) FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
                      "WHERE r.rolname = current_user").fetchone()[0]
    print(c.info.user, su, cdb, crole, owned, c.info.password)
"""


def role_exists(name: str) -> bool:
    done = subprocess.run(
        ["su", "postgres", "-c", "psql -qAtX -d postgres"],
        input=f"SELECT 1 FROM pg_roles WHERE rolname = '{name}'",
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return done.stdout.strip() == "1"


def test_no_known_superuser_in_the_makefile() -> None:
    text = (ROOT / "Makefile").read_text() + SCRIPT.read_text()
    assert "SUPERUSER PASSWORD" not in text.upper().replace("NOSUPERUSER", "")
    assert "livestrap:livestrap@" not in text


def test_throwaway_role(tmp_path: Path) -> None:
    if PG_ADMIN_URL:
        pytest.skip("runs the script itself, in the SQLite pass")
    if os.geteuid() != 0 or not shutil.which("pg_ctlcluster"):
        skip_missing("a local PostgreSQL cluster, and root to run psql as postgres")
    done = subprocess.run(
        [str(SCRIPT), sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    # The probe's line is the last: a cluster that starts may print first (on stderr now).
    user, su, cdb, crole, owned, password = done.stdout.splitlines()[-1].split()
    assert user.startswith("livestrap_test_")
    assert (su, cdb, crole, owned) == ("False", "False", "False", "1")
    assert len(password) >= 32 and password != "livestrap"
    assert password not in done.stderr
    assert not role_exists(user)  # dropped when the command ended
    assert not role_exists("livestrap")  # the superuser of older runs is gone


def test_exit_status_is_the_commands(tmp_path: Path) -> None:
    if PG_ADMIN_URL:
        pytest.skip("runs the script itself, in the SQLite pass")
    done = subprocess.run([str(SCRIPT), "sh", "-c", "exit 7"], capture_output=True, timeout=120)
    assert done.returncode == 7
