#!/usr/bin/env bash
# The static checks (ruff lint, mypy with django-stubs; configuration in pyproject.toml), then the
# whole suite twice: on the embedded SQLite default, then on a real PostgreSQL server started here
# on a loopback port and removed afterwards. Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export TARIFA_VAR_DIR="${TARIFA_VAR_DIR:-$(mktemp -d /tmp/tarifa-var.XXXXXX)}"
export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}"
status=0

echo "=== Checks: ruff, mypy"
"$BIN/ruff" check src tests bench || status=1
# The mypy cache lives in .mypy_cache (git-ignored) so that a second run checks only what changed.
# django-stubs' plugin imports the settings: from this checkout's src, whatever .venv points at.
PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" "$BIN/mypy" || status=1

echo "=== Test suite on SQLite"
TARIFA_DATABASE_URL="sqlite:///$TARIFA_VAR_DIR/tarifa.sqlite3" "$BIN/python" -m pytest "$@" || status=1

echo "=== Test suite on PostgreSQL"
PGDIR="$(mktemp -d /tmp/tarifa-pg.XXXXXX)"
PGPORT="${TARIFA_TEST_PGPORT:-55432}"
trap 'scripts/postgres.sh stop "$PGDIR"' EXIT
if scripts/postgres.sh start "$PGDIR" "$PGPORT"; then
    # The benchmark smoke tests make their own databases: once (in the SQLite pass) is enough.
    TARIFA_DATABASE_URL="postgres://postgres@127.0.0.1:$PGPORT/tarifa" "$BIN/python" -m pytest --ignore=tests/bench "$@" || status=1
else
    echo "PostgreSQL could not be started" >&2
    status=1
fi
exit $status
