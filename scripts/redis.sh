#!/usr/bin/env bash
# Throwaway Redis servers for tests and local scale-out runs (MACHINE-NOTES.md "Redis"): each one
# listens on 127.0.0.1 only, on a free port, with no persistence, in its own temp directory.
#
#   scripts/redis.sh start [PORT]   start one (on PORT, or a free port); prints the port
#   scripts/redis.sh stop PORT      stop it (shutdown nosave), remove its directory; idempotent
#   scripts/redis.sh kill PORT      SIGKILL it (an outage), keep its directory; idempotent
#   scripts/redis.sh url PORT       prints redis://127.0.0.1:PORT
#
# The directory of the server on PORT is ${TMPDIR:-/tmp}/parley-redis-PORT (redis.pid,
# redis.log). Exit status: 0 on success, 1 when the server could not be started.
set -euo pipefail

base="${TMPDIR:-/tmp}"
dir_of() { echo "$base/parley-redis-$1"; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    # Below the ephemeral range (32768-60999), so a client's source port never takes it.
    local p i
    for i in $(seq 1 50); do
        p=$(( 20000 + (RANDOM % 12000) ))
        if ! port_in_use "$p" && [ ! -e "$(dir_of "$p")" ]; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

wait_ready() {
    local port=$1 i
    for i in $(seq 1 100); do
        if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = "PONG" ]; then
            return 0
        fi
        sleep 0.02
    done
    return 1
}

wait_gone() {
    # The pidfile disappears on a clean shutdown; a killed daemon leaves it, so also wait for
    # the port to close. (kill -0 is no test: a stopped daemon can linger as a zombie.)
    local port=$1 dir=$2 i
    for i in $(seq 1 250); do
        if [ ! -e "$dir/redis.pid" ] && ! port_in_use "$port"; then
            return 0
        fi
        if ! port_in_use "$port"; then
            rm -f "$dir/redis.pid"
            return 0
        fi
        sleep 0.02
    done
    return 1
}

start() {
    local port=${1:-} tries=0
    while :; do
        tries=$((tries + 1))
        [ -n "$port" ] || port=$(free_port) || { echo "redis.sh: no free port" >&2; exit 1; }
        local dir
        dir=$(dir_of "$port")
        mkdir -p "$dir"
        if redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
            --daemonize yes --dir "$dir" --pidfile "$dir/redis.pid" \
            --logfile "$dir/redis.log" >/dev/null 2>&1 && wait_ready "$port"; then
            echo "$port"
            return 0
        fi
        if [ -n "${1:-}" ] || [ "$tries" -ge 5 ]; then
            echo "redis.sh: redis-server did not start on port $port (see $dir/redis.log)" >&2
            exit 1
        fi
        rm -rf "$dir"
        port=""
    done
}

stop() {
    local port=${1:?port}
    local dir
    dir=$(dir_of "$port")
    if port_in_use "$port"; then
        redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
        wait_gone "$port" "$dir" || { echo "redis.sh: redis on $port did not stop" >&2; exit 1; }
    fi
    rm -rf "$dir"
}

kill_it() {
    local port=${1:?port}
    local dir
    dir=$(dir_of "$port")
    if [ -f "$dir/redis.pid" ]; then
        kill -9 "$(cat "$dir/redis.pid")" 2>/dev/null || true
        wait_gone "$port" "$dir" || true
        rm -f "$dir/redis.pid"
    fi
}

case "${1:-}" in
start) start "${2:-}" ;;
stop) stop "${2:-}" ;;
kill) kill_it "${2:-}" ;;
url) echo "redis://127.0.0.1:${2:?port}" ;;
*)
    echo "usage: $0 start [PORT] | stop PORT | kill PORT | url PORT" >&2
    exit 2
    ;;
esac
