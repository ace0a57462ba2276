#!/usr/bin/env bash
# Run a command with LIVESTRAP_TEST_POSTGRES set to a throwaway login on the local
# PostgreSQL (127.0.0.1:5432): a role with a random password, neither superuser nor allowed
# to create databases or roles, that owns one database and nothing else. The tests give
# each master a schema of its own in it. Role and database are dropped when the command
# ends. Needs root (it runs psql as postgres); without a cluster the command runs with an
# unreachable URL, and the PostgreSQL tests skip (in CI they fail).
#
# It also drops what older `make test` runs left: the superuser `livestrap` with the
# password `livestrap`, which any local user could log in as.
#
# Usage: scripts/test-postgres.sh COMMAND [ARGS...]
set -uo pipefail
PORT=5432
UNREACHABLE=postgresql://livestrap_test_none@127.0.0.1:$PORT/none

as_postgres() {  # SQL on stdin
    su postgres -c "PGOPTIONS='-c client_min_messages=warning' psql -qAtX -v ON_ERROR_STOP=1 -d postgres"
}

without_postgres() {
    echo "test-postgres: $1; the PostgreSQL tests will skip" >&2
    LIVESTRAP_TEST_POSTGRES=$UNREACHABLE exec "$@"
}

ver=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -1)
[ -n "$ver" ] || without_postgres "no PostgreSQL cluster" "$@"
[ "$(id -u)" = 0 ] || without_postgres "not root (psql runs as postgres)" "$@"
# Its own messages ("Removed stale pid file.") go to stderr: stdout is the command's alone.
pg_ctlcluster "$ver" main status >/dev/null 2>&1 || pg_ctlcluster "$ver" main start >&2
for _ in $(seq 1 20); do pg_isready -q -h 127.0.0.1 -p $PORT && break; sleep 0.5; done
pg_isready -q -h 127.0.0.1 -p $PORT || without_postgres "PostgreSQL does not answer" "$@"

# The superuser of older runs: only if it is the one they made (password `livestrap`).
if PGPASSWORD=livestrap PGCONNECT_TIMEOUT=5 psql -qAtX -h 127.0.0.1 -p $PORT -U livestrap \
        -d postgres -c 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user' \
        2>/dev/null | grep -qx t; then
    echo "test-postgres: dropping the superuser livestrap left by an older make test" >&2
    as_postgres >/dev/null <<'SQL'
ALTER ROLE livestrap NOSUPERUSER NOLOGIN PASSWORD NULL;
SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'livestrap';
SQL
    for db in $(as_postgres <<<"SELECT datname FROM pg_database d JOIN pg_roles r ON
            r.oid = d.datdba WHERE r.rolname = 'livestrap' AND datname ~ '^livestrap_[a-z0-9_]+$'"); do
        as_postgres >&2 <<<"DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
    done
    as_postgres >&2 <<<"DROP ROLE livestrap" ||
        echo "test-postgres: livestrap still owns objects; it can no longer log in" >&2
fi

# Roles of runs that were killed before they could clean up (their PID is gone).
for stale in $(as_postgres <<<"SELECT rolname FROM pg_roles WHERE rolname ~ '^livestrap_test_[0-9]+_[0-9a-f]+$'"); do
    pid=${stale#livestrap_test_}; pid=${pid%%_*}
    kill -0 "$pid" 2>/dev/null && continue
    as_postgres >&2 <<<"DROP DATABASE IF EXISTS \"$stale\" WITH (FORCE); DROP ROLE IF EXISTS \"$stale\""
done

role=livestrap_test_$$_$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n')
password=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
cleanup() {
    as_postgres >&2 <<<"DROP DATABASE IF EXISTS \"$role\" WITH (FORCE)" &&
        as_postgres >&2 <<<"DROP ROLE IF EXISTS \"$role\"" ||
        echo "test-postgres: could not drop role $role; drop it by hand" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# The password goes through stdin, never a command line that `ps` shows.
as_postgres >&2 <<SQL || exit 1
CREATE ROLE "$role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD '$password';
CREATE DATABASE "$role" OWNER "$role";
REVOKE ALL ON DATABASE "$role" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE "$role" TO "$role";
SQL
export LIVESTRAP_TEST_POSTGRES=postgresql://$role:$password@127.0.0.1:$PORT/$role
"$@"
