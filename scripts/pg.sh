#!/usr/bin/env bash
# Throwaway PostgreSQL 15 clusters on loopback, for the tests and for local scale-out runs
# (MACHINE-NOTES.md "PostgreSQL refuses to run as root"). Everything of a cluster lives in one
# directory: data/ (the cluster), the Unix socket, port (the TCP port it listens on), log.
#
#   scripts/pg.sh start <dir>  creates the cluster the first time (initdb -A trust, user
#                              postgres, database parley), starts it if it is not running, and
#                              prints its URL: postgres://postgres@127.0.0.1:<port>/parley
#                              (idempotent: on a running cluster it only prints the URL)
#   scripts/pg.sh stop <dir>   fast shutdown (pg_ctl stop -m fast); nothing if not running
#   scripts/pg.sh kill <dir>   immediate shutdown (pg_ctl stop -m immediate): a crash, as the
#                              outage tests need; `start` brings it back on the same port
#   scripts/pg.sh url <dir>    prints the URL of the cluster (running or not)
#   scripts/pg.sh status <dir> exit status 0 when it is running
#   scripts/pg.sh destroy <dir> immediate shutdown, then removes <dir> and everything in it
#
# The cluster listens on 127.0.0.1 only, on a free port chosen at the first start (below the
# ephemeral range) and kept for later starts. Settings are for tests: fsync=off (a power loss
# may corrupt the cluster; a crash of PostgreSQL itself does not), full_page_writes=off. Run
# as root it runs PostgreSQL as the user postgres (runuser), which must be able to reach <dir>;
# run as another user it runs PostgreSQL as that user. PG_BIN overrides the binaries' directory.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

usage() {
    echo "usage: $0 start|stop|kill|url|status|destroy <dir>" >&2
    exit 2
}

[ $# -eq 2 ] || usage
cmd=$1
dir=$(realpath -m -- "$2")
data=$dir/data

# Runs a PostgreSQL program as the cluster's owner.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

running() {
    [ -f "$data/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1
}

port_of() {
    cat "$dir/port" 2>/dev/null || true
}

url() {
    echo "postgres://postgres@127.0.0.1:$(port_of)/parley"
}

# A TCP port nobody listens on yet, below the ephemeral range (32768-60999) so that client
# connections never take it between this check and the server's bind.
free_port() {
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 12000))
        if command -v ss >/dev/null; then
            [ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ] && { echo "$p"; return; }
        elif ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    echo "pg.sh: no free port found" >&2
    exit 1
}

create() {
    mkdir -p "$dir"
    chmod 700 "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres "$dir"
    fi
    rm -rf "$data" # what an interrupted initdb left (no PG_VERSION yet)
    as_pg "$PG_BIN/initdb" -D "$data" -A trust -U postgres -E UTF8 --locale=C --no-sync \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    cat >>"$data/postgresql.conf" <<EOF

# scripts/pg.sh: a throwaway cluster for tests
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = off
full_page_writes = off
max_connections = 200
shared_buffers = 128MB
max_wal_size = 1GB
log_min_messages = warning
log_checkpoints = off
EOF
}

start() {
    [ -f "$data/PG_VERSION" ] || create
    if ! running; then
        local tries=0
        while :; do
            local port
            port=$(port_of)
            [ -n "$port" ] || { port=$(free_port); echo "$port" >"$dir/port"; }
            if as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$dir/log" -o "-p $port" -w -t 30 start \
                >/dev/null 2>&1; then
                break
            fi
            tries=$((tries + 1))
            # Another process took the port since it was chosen: pick another one.
            if grep -q "could not bind\|Address already in use" "$dir/log" 2>/dev/null &&
                [ $tries -lt 5 ]; then
                rm -f "$dir/port"
                continue
            fi
            echo "pg.sh: PostgreSQL did not start; the end of $dir/log:" >&2
            tail -n 20 "$dir/log" >&2 || true
            exit 1
        done
    fi
    local port
    port=$(port_of)
    if [ -z "$(as_pg "$PG_BIN/psql" -h "$dir" -p "$port" -U postgres -d postgres -XtAc \
        "SELECT 1 FROM pg_database WHERE datname = 'parley'")" ]; then
        as_pg "$PG_BIN/createdb" -h "$dir" -p "$port" -U postgres parley
    fi
    url
}

stop() {
    local mode=$1
    if running; then
        as_pg "$PG_BIN/pg_ctl" -D "$data" -m "$mode" -w -t 60 stop >/dev/null
    fi
}

case $cmd in
start) start ;;
stop) stop fast ;;
kill) stop immediate ;;
url) url ;;
status) running ;;
destroy)
    stop immediate
    rm -rf "$dir"
    ;;
*) usage ;;
esac
