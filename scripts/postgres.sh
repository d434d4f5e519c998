#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL cluster on a loopback port for the test suite.
#   scripts/postgres.sh start DIR PORT   -> prints nothing; server listens on 127.0.0.1:PORT
#   scripts/postgres.sh stop DIR         -> stops it and removes DIR
# The tests' cluster trades durability for speed (fsync, synchronous_commit and full_page_writes
# off); DURABLE=1 keeps PostgreSQL's defaults, for benchmarks that should match production.
# Installs Debian's postgresql package when no server binaries are present. As root the
# server runs as the 'postgres' user (PostgreSQL refuses to run as root).
set -euo pipefail
action="$1"; dir="$2"; port="${3:-55432}"

find_bindir() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

as_pg() {
    if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
}

case "$action" in
start)
    bindir="$(find_bindir)"
    if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
        if [ "$(id -u)" != 0 ]; then
            echo "PostgreSQL server is not installed: sudo apt-get install postgresql" >&2; exit 1
        fi
        echo "Installing PostgreSQL (Debian package) ..." >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        bindir="$(find_bindir)"
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown postgres:postgres "$dir"
        chmod 755 "$dir"
    fi
    as_pg "mkdir -p '$dir/data' '$dir/run' && chmod 700 '$dir/data'"
    as_pg "'$bindir/initdb' -D '$dir/data' -U postgres -A trust -E UTF8 --no-locale >'$dir/run/initdb.log'"
    unsafe="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    if [ "${DURABLE:-0}" = 1 ]; then unsafe=""; fi
    as_pg "'$bindir/pg_ctl' -D '$dir/data' -l '$dir/run/pg.log' -w -o \"-p $port -k '$dir/run' -c listen_addresses=127.0.0.1 $unsafe -c max_connections=200\" start >/dev/null"
    ;;
stop)
    bindir="$(find_bindir)"
    if [ -n "$bindir" ] && [ -d "$dir/data" ]; then
        as_pg "'$bindir/pg_ctl' -D '$dir/data' -m fast -w stop >/dev/null" || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2
    ;;
esac
