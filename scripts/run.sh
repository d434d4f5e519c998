#!/usr/bin/env bash
# The last step of `make run`: the server (`tarifa serve`) and the background jobs (`tarifa worker`:
# expiry of reservations of calls that never ended, recurring and one-time service charges) together,
# in the foreground. Ctrl-C (or SIGTERM to this script) stops both. When either ends on its own --
# `tarifa serve` refusing a bad TARIFA_* value or a port in use, say -- the other is stopped too and
# the script exits with the status of the one that ended first.
# Usage: scripts/run.sh [TARIFA-COMMAND]   (default: the .venv/bin/tarifa next to this script)
set -uo pipefail
tarifa="${1:-$(dirname "$0")/../.venv/bin/tarifa}"
names=()
pids=()

stop() {
    trap - EXIT INT TERM
    if ((${#pids[@]})); then
        kill -TERM "${pids[@]}" 2>/dev/null
        wait "${pids[@]}" 2>/dev/null
    fi
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Started in the background, they ignore Ctrl-C themselves: the traps above stop both, once.
"$tarifa" worker &
names+=("tarifa worker") pids+=($!)
"$tarifa" serve &
names+=("tarifa serve") pids+=($!)

wait -n
status=$?
for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
        echo "${names[$i]} ended (exit status $status); stopping the other." >&2
        break
    fi
done
exit "$status"
