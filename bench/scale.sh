#!/usr/bin/env bash
# The scale-out benchmark (issue 7): `loadgen messages` against Parley and the Node.js peer, both
# on PostgreSQL + Redis, first as one process and then scaled out:
#   parley-1   one `parley serve` (it also consumes the queue: --worker true)
#   parley-2   two `parley serve --worker false` nodes + one `parley worker`
#   node-1     one bench/peers/chat-node-scale.mjs (node-postgres + socket.io Redis adapter)
#   node-2     two of them
# For the 2-process runs the visitors are spread over both nodes (visitor i on node i mod 2) and
# the agents sit on the second, so half of the messages reach the agents through Redis from the
# other node: that half is the cross-node fan-out latency. Prints one table with ratios
# parley/node (the shape of bench/chat.sh's) and writes it, the commands and the raw JSON lines
# to bench/results/scale-<date>.md. See bench/README.md ("Scale-out") and bench/SCALE.md.
#
#   bench/scale.sh [--build DIR] [--quick] [--only parley|node] [--configs "1 2"]
#                  [--skip-paced]
#
# A throwaway PostgreSQL (scripts/pg.sh) and Redis (scripts/redis.sh) are started for the whole
# run; every run gets a fresh database and an emptied Redis, fresh server processes, and a hard
# deadline; after each run the servers are stopped and the rows in the messages table are
# compared with the acknowledged messages (psql). Everything is stopped and removed on exit.
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
BUILD=build-sb
QUICK=0
ONLY=""
CONFIGS="1 2"
PACED=1
while [ $# -gt 0 ]; do
    case "$1" in
        --build) BUILD=$2; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --only) ONLY=$2; shift 2 ;;
        --configs) CONFIGS=$2; shift 2 ;;
        --skip-paced) PACED=0; shift ;;
        -h|--help) sed -n 2,20p "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "scale.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
PARLEY=$ROOT/$BUILD/parley
LOADGEN=$ROOT/$BUILD/bench/loadgen
for f in "$PARLEY" "$LOADGEN"; do
    [ -x "$f" ] || { echo "scale.sh: $f missing (ninja -C $BUILD parley loadgen)" >&2; exit 2; }
done
"$LOADGEN" selftest >&2 || { echo "scale.sh: loadgen selftest failed" >&2; exit 1; }
for t in psql redis-server redis-cli jq node python3; do
    command -v $t > /dev/null || { echo "scale.sh: $t is needed" >&2; exit 2; }
done
# The Node.js peer's packages (bench/peers/package.json), installed on first use.
for p in pg redis @socket.io/redis-adapter socket.io better-sqlite3; do
    if [ ! -d "bench/peers/node_modules/$p" ]; then
        npm install --prefix bench/peers --no-audit --no-fund --loglevel=error || exit 2
        break
    fi
done

if [ $QUICK = 1 ]; then
    VIS=60; AGENTS=2; WINDOW=4; SECS=3; WARM=500; RATE=500; PACED_VIS=100
else
    VIS=${SCALE_VISITORS:-200}; AGENTS=${SCALE_AGENTS:-2}; WINDOW=${SCALE_WINDOW:-8}
    SECS=${SCALE_SECONDS:-10}; WARM=1000; RATE=${SCALE_RATE:-500}; PACED_VIS=${SCALE_PACED_VISITORS:-200}
fi
DEADLINE=180
STAMP=$(date -u +%Y-%m-%d-%H%M%S)
OUT=bench/results/scale-$STAMP.md
TMP=$(mktemp -d /tmp/parley-scale.XXXXXX)
chmod 755 "$TMP" # PostgreSQL runs as the user postgres under root and must reach $TMP/pg
RAW=$TMP/raw.jsonl
: > "$RAW"
CMDS=$TMP/commands.txt
: > "$CMDS"
SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
PIDS=()      # server processes of the current run (nodes first, the worker last)
REDIS_PORT=""
FAIL=0
LIMITS="--max-sockets-per-ip 100000 --max-connects-per-ip 100000 --visitor-burst 1000000
 --visitor-per-minute 100000000 --max-connections 20000"

stop_servers() {
    local p
    for p in "${PIDS[@]}"; do # nodes before the worker: the worker drains what they queued
        kill "$p" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    PIDS=()
}

cleanup() {
    stop_servers
    [ -n "$REDIS_PORT" ] && scripts/redis.sh stop "$REDIS_PORT" > /dev/null 2>&1
    [ -d "$TMP/pg" ] && scripts/pg.sh destroy "$TMP/pg" > /dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_log() { # file pattern; up to 15 s
    for _ in $(seq 1 150); do
        grep -Eq "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "scale.sh: no '$2' in $1:" >&2
    tail -n 20 "$1" >&2
    return 1
}

# ---- the backends ------------------------------------------------------------------------------
PG_URL=$(scripts/pg.sh start "$TMP/pg") || { echo "scale.sh: PostgreSQL did not start" >&2; exit 1; }
PG_BASE=${PG_URL%/*} # postgres://postgres@127.0.0.1:PORT
REDIS_PORT=$(scripts/redis.sh start) || { echo "scale.sh: Redis did not start" >&2; exit 1; }
REDIS_URL=redis://127.0.0.1:$REDIS_PORT
psql_do() { # db sql
    psql "$PG_BASE/$1" -XtAqc "$2"
}

# A fresh database (and an empty Redis) for run $1; sets DB_URL.
fresh_db() {
    local db=bench_${1//-/_} # a new name per run of this script's cluster
    psql_do parley "CREATE DATABASE $db" > /dev/null || return 1
    redis-cli -p "$REDIS_PORT" flushall > /dev/null &&
        redis-cli -p "$REDIS_PORT" config resetstat > /dev/null || return 1
    DB_URL=$PG_BASE/$db
}

# PostgreSQL's postmaster and Redis: their CPU, with their children's (PostgreSQL's connection
# processes, writers, autovacuum: loadgen adds them up), is reported as the backends' share.
backend_pids() {
    echo "$(head -1 "$TMP/pg/data/postmaster.pid"),$(cat "${TMPDIR:-/tmp}/parley-redis-$REDIS_PORT/redis.pid")"
}

# ---- the servers -------------------------------------------------------------------------------
# Parley: project 1 (localhost) and one agent in the fresh database; sets TOKEN.
setup_parley() { # run dir
    local P=("$PARLEY" --database "$DB_URL" --data-dir "$2" --jwt-secret "$SECRET" --log-level warn)
    mkdir -p "$2"
    "${P[@]}" project create --name B --domain localhost > "$2/setup.log" 2>&1 &&
        "${P[@]}" agent create --email agent@bench.test --password bench-password-1 --project 1 \
            >> "$2/setup.log" 2>&1 &&
        TOKEN=$("${P[@]}" agent token --email agent@bench.test 2>> "$2/setup.log" | tail -1) &&
        [ -n "$TOKEN" ] || { echo "scale.sh: parley setup failed:" >&2; cat "$2/setup.log" >&2; return 1; }
}

start_parley_node() { # dir name port extra...
    local dir=$1 name=$2 port=$3; shift 3
    # shellcheck disable=SC2086
    "$PARLEY" --database "$DB_URL" --redis "$REDIS_URL" --data-dir "$dir" --jwt-secret "$SECRET" \
        --port "$port" --node-id "$name" --log-level warn $LIMITS "$@" serve > "$dir/$name.log" 2>&1 &
    PIDS+=($!)
    echo "parley --database DB --redis $REDIS_URL --jwt-secret S --port $port --node-id $name $(echo $LIMITS) $* serve" >> "$CMDS"
    wait_log "$dir/$name.log" "event=http.listen|is running on http"
}

start_parley_worker() { # dir
    "$PARLEY" --database "$DB_URL" --redis "$REDIS_URL" --data-dir "$1" --jwt-secret "$SECRET" \
        --node-id w1 --log-level info worker > "$1/worker.log" 2>&1 &
    PIDS+=($!)
    echo "parley --database DB --redis $REDIS_URL --jwt-secret S --node-id w1 worker" >> "$CMDS"
    wait_log "$1/worker.log" "event=worker.ready"
}

start_node_proc() { # dir name port
    node bench/peers/chat-node-scale.mjs --port "$3" --pg "$DB_URL" --redis "$REDIS_URL" \
        --jwt-secret "$SECRET" > "$1/$2.log" 2>&1 &
    PIDS+=($!)
    echo "node bench/peers/chat-node-scale.mjs --port $3 --pg DB --redis $REDIS_URL --jwt-secret S" >> "$CMDS"
    wait_log "$1/$2.log" "event=http.listen"
}

# Starts server $1 (parley|node) with $2 processes on a fresh database; sets PORTS (the
# visitors' ports, comma-separated), AGENT_PORT and TOKEN.
start_config() { # server procs tag
    local server=$1 procs=$2 dir=$TMP/$3
    rm -rf "$dir"; mkdir -p "$dir"
    fresh_db "$3" || { echo "scale.sh: could not create the database for $3" >&2; return 1; }
    echo "# $3: fresh database, FLUSHALL" >> "$CMDS"
    local pa pb
    pa=$(free_port); pb=$(free_port)
    if [ "$server" = parley ]; then
        setup_parley "$dir" "$dir" || return 1
        if [ "$procs" = 1 ]; then
            start_parley_node "$dir" a "$pa" || return 1
        else
            start_parley_node "$dir" a "$pa" --worker false || return 1
            start_parley_node "$dir" b "$pb" --worker false || return 1
            start_parley_worker "$dir" || return 1
        fi
    else
        # the peer seeds project 1 and user 1; the token is Parley's for user 1, same secret
        TOKEN=$("$PARLEY" --data-dir "$TMP/tokens" --jwt-secret "$SECRET" --log-level warn \
            agent token --email agent@bench.test 2>/dev/null | tail -1)
        [ -n "$TOKEN" ] || { echo "scale.sh: no agent token" >&2; return 1; }
        start_node_proc "$dir" a "$pa" || return 1
        [ "$procs" = 1 ] || start_node_proc "$dir" b "$pb" || return 1
    fi
    if [ "$procs" = 1 ]; then PORTS=$pa; AGENT_PORT=$pa; else PORTS=$pa,$pb; AGENT_PORT=$pb; fi
}

# ---- the runs ----------------------------------------------------------------------------------
# Runs one `messages` run against a fresh configuration; appends its JSON line (with the row
# count) to RAW.
messages_run() { # server procs tag loadgen-args...
    local server=$1 procs=$2 tag=$3; shift 3
    local name=$server-$procs-$tag
    if ! start_config "$server" "$procs" "$name"; then
        FAIL=1; stop_servers
        echo "{\"label\":\"$server\",\"procs\":$procs,\"tag\":\"$tag\",\"error\":\"did not start\"}" >> "$RAW"
        return
    fi
    local spids line rc
    spids=$(IFS=,; echo "${PIDS[*]}")
    echo "LG_AGENTS=$AGENTS LG_AGENT_TOKEN=T loadgen messages $* --visitor-ports $PORTS --agent-port $AGENT_PORT --server-pids <all server processes> --backend-pids <postgres, redis> --deadline-s $DEADLINE" >> "$CMDS"
    line=$(LG_AGENTS=$AGENTS LG_AGENT_TOKEN=$TOKEN "$LOADGEN" messages "$@" --visitor-ports "$PORTS" \
        --agent-port "$AGENT_PORT" --server-pids "$spids" --backend-pids "$(backend_pids)" \
        --label "$server" --deadline-s "$DEADLINE" 2> "$TMP/lg.err")
    rc=$?
    sed "s/^/[$server x$procs $tag] /" "$TMP/lg.err" >&2
    [ $rc = 0 ] || { echo "scale.sh: loadgen against $server x$procs ($tag) failed ($rc)" >&2; FAIL=1; }
    [ -n "$line" ] || line='{"error":"no output"}'
    stop_servers
    local rows acked
    if [ "$server" = parley ]; then
        rows=$(psql "$DB_URL" -XtAqc "SELECT count(*) FROM messages WHERE from_customer")
    else
        rows=$(psql "$DB_URL" -XtAqc "SELECT count(*) FROM messages")
    fi
    acked=$(echo "$line" | jq -r '.acked_total // -1')
    # what the run cost the backends in requests (setup, warm-up and drain included)
    local xacts cmds by_cmd
    xacts=$(psql_do parley "SELECT xact_commit FROM pg_stat_database WHERE datname = '${DB_URL##*/}'")
    by_cmd=$(redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' |
        sed -n 's/^cmdstat_\([^:]*\):calls=\([0-9]*\),.*/"\1":\2/p' | paste -sd, -)
    cmds=$(echo "{$by_cmd}" | jq '[.[]] | add // 0')
    if [ "$rows" != "$acked" ]; then
        echo "scale.sh: $server x$procs $tag: $rows rows in the database but $acked acknowledged" >&2
        FAIL=1
    else
        echo "scale.sh: $server x$procs $tag: rows in the database = acknowledged = $rows (psql)" >&2
    fi
    echo "$line" | jq -c ". + {\"procs\":$procs,\"tag\":\"$tag\",\"db_rows\":${rows:-0},
        \"pg_commits\":${xacts:-0},\"redis_commands\":${cmds:-0},\"redis_by_command\":{$by_cmd}}" >> "$RAW" ||
        echo "{\"label\":\"$server\",\"procs\":$procs,\"tag\":\"$tag\",\"error\":\"bad output\"}" >> "$RAW"
    local c
    for c in "$TMP/$name"/*.log; do
        if grep -Eq "level=error|FATAL|Error:" "$c"; then
            echo "scale.sh: errors in $(basename "$c") of $name:" >&2
            grep -E "level=error|FATAL|Error:" "$c" | head -5 >&2
        fi
    done
}

servers="parley node"
[ -n "$ONLY" ] && servers=$ONLY
if [[ " $servers " == *" node "* ]]; then
    # a Parley data dir that only mints the node peer's agent tokens (user 1, same secret)
    mkdir -p "$TMP/tokens"
    P=("$PARLEY" --data-dir "$TMP/tokens" --jwt-secret "$SECRET" --log-level warn)
    "${P[@]}" project create --name B --domain localhost > /dev/null 2>&1 &&
        "${P[@]}" agent create --email agent@bench.test --password bench-password-1 --project 1 \
            > /dev/null 2>&1 || { echo "scale.sh: token data dir setup failed" >&2; exit 1; }
fi
T0=$(date +%s)
for procs in $CONFIGS; do
    for s in $servers; do # parley and node alternate, so slow drifts of the machine hit both
        messages_run "$s" "$procs" closed --clients "$VIS" --window "$WINDOW" --seconds "$SECS" \
            --warmup-ms "$WARM" --concurrency 128
        [ $PACED = 1 ] && messages_run "$s" "$procs" paced --clients "$PACED_VIS" --window 4 \
            --rate "$RATE" --seconds "$SECS" --warmup-ms "$WARM" --concurrency 128
    done
done
T1=$(date +%s)

python3 bench/scale_table.py "$RAW" > "$TMP/table.md"
cat "$TMP/table.md"
mkdir -p bench/results
{
    echo "# Scale-out benchmark, $STAMP"
    echo
    echo "Machine: $(nproc) cores, $(uname -sr), node $(node --version), $(psql --version | head -1), $(redis-server --version | cut -d' ' -f1-3), git $(git rev-parse --short HEAD 2>/dev/null) + working tree."
    CMD="bench/scale.sh --build $BUILD"
    [ $QUICK = 1 ] && CMD="$CMD --quick"
    [ -n "$ONLY" ] && CMD="$CMD --only $ONLY"
    [ "$CONFIGS" != "1 2" ] && CMD="$CMD --configs \"$CONFIGS\""
    [ $PACED = 0 ] && CMD="$CMD --skip-paced"
    echo "Command: $CMD (took $((T1 - T0)) s; visitors $VIS, window $WINDOW, agents $AGENTS, paced $RATE/s)"
    echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    cat "$TMP/table.md"
    echo
    echo "## Commands (DB = a fresh database per run, S = JWT secret, T = agent token)"
    echo '```'
    cat "$CMDS"
    echo '```'
    echo
    echo "## Raw results"
    echo '```'
    cat "$RAW"
    echo '```'
} > "$OUT"
echo "scale.sh: wrote $OUT" >&2
exit $FAIL
