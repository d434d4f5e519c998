#!/usr/bin/env bash
# The static checks (ruff lint and format check, mypy with django-stubs, import-linter's layer contracts; configuration
# in pyproject.toml), then the whole suite twice: on the embedded SQLite default, then on a real
# PostgreSQL server started here on a loopback port and removed afterwards. Extra arguments go to pytest.
#
# With two or more cores the two passes run at the same time (each pass is one process, so it
# uses one core): the SQLite pass prints as it goes, the PostgreSQL pass writes to a file that
# is printed after it, so the two outputs never mix and come in that order. The exit status is
# non-zero if either pass fails. TARIFA_TEST_SERIAL=1 runs them one after the other.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
# Test the sources of this checkout (also in the `tarifa` subprocesses the tests start), even
# when the virtualenv's editable install points at another checkout.
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export TARIFA_VAR_DIR="${TARIFA_VAR_DIR:-$(mktemp -d /tmp/tarifa-var.XXXXXX)}"
export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}"
status=0

echo "=== Checks: ruff (lint, format), mypy, import layers"
"$BIN/ruff" check src tests bench || status=1
"$BIN/ruff" format --check src tests bench || status=1
# The mypy cache lives in .mypy_cache (git-ignored) so that a second run checks only what changed.
"$BIN/mypy" || status=1
# Dependencies point one way (docs/architecture.md, "Layers"; contracts in pyproject.toml).
"$BIN/lint-imports" || status=1

# The real parts the tests drive: Chromium (portal, Playwright), poppler (pdftotext/pdftoppm for invoices).
scripts/debian-packages.sh chromium poppler-utils fonts-dejavu-core || status=1

PGDIR="$(mktemp -d /tmp/tarifa-pg.XXXXXX)"
PGPORT="${TARIFA_TEST_PGPORT:-55432}"
PGLOG="$PGDIR.log"
pgpass=""
cleanup() {
    if [ -n "$pgpass" ]; then kill "$pgpass" 2>/dev/null; wait "$pgpass" 2>/dev/null; fi
    scripts/postgres.sh stop "$PGDIR"
    rm -f "$PGLOG"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sqlite_pass() {
    mkdir -p "$TARIFA_VAR_DIR/sqlite"
    TARIFA_VAR_DIR="$TARIFA_VAR_DIR/sqlite" TARIFA_DATABASE_URL="sqlite:///$TARIFA_VAR_DIR/sqlite/tarifa.sqlite3" \
        "$BIN/python" -m pytest "$@"
}

postgres_pass() {
    mkdir -p "$TARIFA_VAR_DIR/postgresql"
    # Only the tests that use the database under test: the others (no database, or a SQLite file of
    # their own, like the benchmark smoke tests and the served-SQLite servers) ran the same in the SQLite pass.
    # Its own pytest cache directory (unless the cache is off), so the passes never write one file.
    local cache=(-o cache_dir=.pytest_cache/postgresql)
    case " $* " in *no:cacheprovider*) cache=() ;; esac
    TARIFA_VAR_DIR="$TARIFA_VAR_DIR/postgresql" TARIFA_DATABASE_URL="postgres://postgres@127.0.0.1:$PGPORT/tarifa" \
        "$BIN/python" -m pytest --database-tests-only "${cache[@]}" "$@"
}

pg_started=0
scripts/postgres.sh start "$PGDIR" "$PGPORT" && pg_started=1

if [ "${TARIFA_TEST_SERIAL:-0}" = 1 ] || [ "$(nproc)" -lt 2 ] || [ "$pg_started" = 0 ]; then
    echo "=== Test suite on SQLite"
    sqlite_pass "$@" || status=1
    echo "=== Test suite on PostgreSQL"
    if [ "$pg_started" = 1 ]; then
        postgres_pass "$@" || status=1
    else
        echo "PostgreSQL could not be started" >&2
        status=1
    fi
else
    postgres_pass "$@" >"$PGLOG" 2>&1 &
    pgpass=$!
    echo "=== Test suite on SQLite (the PostgreSQL pass runs alongside; its output follows)"
    sqlite_pass "$@" || status=1
    wait "$pgpass" || status=1
    pgpass=""
    echo "=== Test suite on PostgreSQL"
    cat "$PGLOG"
fi
exit $status
