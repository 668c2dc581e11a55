#!/usr/bin/env bash
# The chat benchmarks (issues 4 and 5): runs `loadgen messages` against `parley serve` and the
# Node.js peer (bench/peers/chat-node.mjs, socket.io 4 + better-sqlite3) in the same run, then
# Parley's agent-API scenarios (`loadgen api ...`), prints one table with ratios and writes it,
# the commands and the raw JSON lines to bench/results/chat-<date>.md. See bench/CHAT.md.
#
#   bench/chat.sh [--build DIR] [--quick] [--only parley|node] [--skip-api] [--skip-messages]
#
# Every server is fresh (new data dir, new database) for each scenario and stopped with SIGTERM
# afterwards; every loadgen run has a hard deadline; after each messages run the number of rows
# in the messages table is compared with the number of acknowledged messages.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=build-bench2
QUICK=0
ONLY=""
SKIP_API=0
SKIP_MSG=0
while [ $# -gt 0 ]; do
    case "$1" in
        --build) BUILD=$2; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --only) ONLY=$2; shift 2 ;;
        --skip-api) SKIP_API=1; shift ;;
        --skip-messages) SKIP_MSG=1; shift ;;
        *) echo "chat.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
PARLEY=$ROOT/$BUILD/parley
LOADGEN=$ROOT/$BUILD/bench/loadgen
for f in "$PARLEY" "$LOADGEN"; do
    [ -x "$f" ] || { echo "chat.sh: $f missing (ninja -C $BUILD parley loadgen)" >&2; exit 2; }
done
# The Node.js peer's packages live in bench/peers (better-sqlite3 builds from source: minutes,
# so it is installed here on first use and not by make test).
[ -d bench/peers/node_modules/better-sqlite3 ] || npm install --prefix bench/peers --no-audit --no-fund --loglevel=error

if [ $QUICK = 1 ]; then
    VIS=100; AGENTS=2; WINDOW=4; SECS=2; RATE=2000; PACED_VIS=200
    API_CONNS=8; API_SECS=2; CONVS=2000; LOGIN_SECS=3; LOGIN_RATE=2000; INBOX_REQ=100
else
    VIS=${CHAT_VISITORS:-200}; AGENTS=${CHAT_AGENTS:-2}; WINDOW=${CHAT_WINDOW:-8}; SECS=10
    RATE=10000; PACED_VIS=1000
    API_CONNS=16; API_SECS=10; CONVS=100000; LOGIN_SECS=10; LOGIN_RATE=2000; INBOX_REQ=500
fi
STAMP=$(date -u +%Y-%m-%d-%H%M%S)
OUT=bench/results/chat-$STAMP.md
TMP=$(mktemp -d /tmp/parley-chat.XXXXXX)
RAW=$TMP/raw.jsonl
: > "$RAW"
SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
SERVER_PID=""
CMDS=$TMP/commands.txt
: > "$CMDS"
FAIL=0
LIMITS="--max-sockets-per-ip 100000 --max-connects-per-ip 100000 --visitor-burst 1000000
 --visitor-per-minute 100000000 --max-connections 20000"

cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; fi
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_listen() { # log file; up to 10 s
    for _ in $(seq 1 100); do
        grep -Eq "event=http.listen|is running on http" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "chat.sh: server did not start:" >&2
    cat "$1" >&2
    stop_server
    return 1
}

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
        SERVER_PID=""
    fi
}

# Fresh parley data dir with project 1 (localhost), one agent; sets DIR, TOKEN.
setup_parley() {
    DIR=$TMP/$1; rm -rf "$DIR"; mkdir -p "$DIR"
    local P=("$PARLEY" --data-dir "$DIR" --jwt-secret "$SECRET")
    "${P[@]}" project create --name B --domain localhost > "$DIR/setup.log" 2>&1 || return 1
    "${P[@]}" agent create --email agent@bench.test --password bench-password-1 --project 1 \
        >> "$DIR/setup.log" 2>&1 || return 1
    TOKEN=$("${P[@]}" agent token --email agent@bench.test 2>> "$DIR/setup.log" | tail -1)
    DB=$DIR/parley.db
}

start_parley() { # name [extra settings]
    local name=$1; shift
    setup_parley "$name" || { echo "chat.sh: parley setup failed ($DIR/setup.log)" >&2; return 1; }
    PORT=$(free_port)
    # shellcheck disable=SC2086
    "$PARLEY" --data-dir "$DIR" --jwt-secret "$SECRET" --port "$PORT" --log-level warn $LIMITS "$@" serve \
        > "$DIR/server.log" 2>&1 &
    SERVER_PID=$!
    echo "parley --data-dir D --jwt-secret S --port $PORT $LIMITS $* serve" | tr '\n' ' ' >> "$CMDS"
    echo >> "$CMDS"
    wait_listen "$DIR/server.log"
}

start_node() { # name
    DIR=$TMP/$1; rm -rf "$DIR"; mkdir -p "$DIR"
    # the token is Parley's (same secret, user 1, which the peer seeds as its agent)
    setup_parley "$1-token" || return 1
    DIR=$TMP/$1; DB=$DIR/chat-node.db
    PORT=$(free_port)
    node bench/peers/chat-node.mjs --port "$PORT" --db "$DB" --jwt-secret "$SECRET" \
        --agent-email agent@bench.test > "$DIR/server.log" 2>&1 &
    SERVER_PID=$!
    echo "node bench/peers/chat-node.mjs --port $PORT --db D/chat-node.db --jwt-secret S" >> "$CMDS"
    wait_listen "$DIR/server.log"
}

# Runs loadgen, appends its JSON line (with the db row count) to RAW.
lg() { # label scenario args...
    local label=$1; shift
    local line rc
    echo "LG_AGENT_TOKEN=T LG_AGENTS=${LG_AGENTS:-} LG_HTTP_CONNS=${LG_HTTP_CONNS:-} LG_REQUESTS=${LG_REQUESTS:-} LG_LOGINS_PER_S=${LG_LOGINS_PER_S:-} loadgen $* --port $PORT --label $label" >> "$CMDS"
    line=$(LG_AGENT_TOKEN=$TOKEN "$LOADGEN" "$@" --port "$PORT" --server-pid "$SERVER_PID" \
        --label "$label" --deadline-s 240 2> "$TMP/lg.err")
    rc=$?
    cat "$TMP/lg.err" >&2
    [ $rc = 0 ] || { echo "chat.sh: loadgen $* against $label failed ($rc)" >&2; FAIL=1; }
    [ -n "$line" ] || line='{"error":"no output"}'
    LAST_LINE=$line
}

add_raw() { # json [extra jq object]
    echo "$1" | jq -c ". + ${2:-{\}}" >> "$RAW"
}

messages_run() { # server tag args...
    local server=$1 tag=$2; shift 2
    if [ "$server" = parley ]; then start_parley "$tag" --sqlite-sync normal || { FAIL=1; return; }
    else start_node "$tag" || { FAIL=1; return; }; fi
    LG_AGENTS=$AGENTS lg "$server" messages "$@"
    stop_server
    local rows
    if [ "$server" = parley ]; then rows=$(sqlite3 "$DB" "SELECT count(*) FROM messages WHERE from_customer")
    else rows=$(sqlite3 "$DB" "SELECT count(*) FROM messages"); fi
    local acked
    acked=$(echo "$LAST_LINE" | jq -r '.acked_total // -1')
    if [ "$rows" != "$acked" ]; then
        echo "chat.sh: $server $tag: $rows rows in the store but $acked acknowledged" >&2; FAIL=1
    else
        echo "chat.sh: $server $tag: rows in the store = acknowledged = $rows (checked with sqlite3)" >&2
    fi
    add_raw "$LAST_LINE" "{\"tag\":\"$tag\",\"db_rows\":${rows:-0}}"
}

servers="parley node"
[ -n "$ONLY" ] && servers=$ONLY
T0=$(date +%s)
if [ $SKIP_MSG = 0 ]; then
    for s in $servers; do
        messages_run "$s" msg-closed --clients "$VIS" --window "$WINDOW" --seconds "$SECS" \
            --warmup-ms 1000 --concurrency 128
        messages_run "$s" msg-paced --clients "$PACED_VIS" --window 4 --rate "$RATE" \
            --seconds "$SECS" --warmup-ms 1000 --concurrency 128
    done
fi

if [ $SKIP_API = 0 ] && [ "$ONLY" != node ]; then
    # replies: visitors each with one conversation, agents POST replies over keep-alive
    start_parley api-replies && {
        LG_HTTP_CONNS=$API_CONNS lg parley api-replies --clients 200 --seconds "$API_SECS" \
            --concurrency 128
        add_raw "$LAST_LINE" '{"tag":"api-replies"}'
        stop_server; }
    # inbox with CONVS conversations: rows inserted with sqlite3 before the server starts
    setup_parley api-inbox && {
        python3 bench/chat_seed.py "$DB" "$CONVS" >&2
        PORT=$(free_port)
        # shellcheck disable=SC2086
        "$PARLEY" --data-dir "$DIR" --jwt-secret "$SECRET" --port "$PORT" --log-level warn $LIMITS \
            serve > "$DIR/server.log" 2>&1 &
        SERVER_PID=$!
        echo "python3 bench/chat_seed.py D/parley.db $CONVS; parley ... serve" >> "$CMDS"
        wait_listen "$DIR/server.log" && {
            LG_REQUESTS=$INBOX_REQ lg parley api-inbox
            add_raw "$LAST_LINE" "{\"tag\":\"api-inbox\",\"conversations\":$CONVS}"; }
        stop_server; }
    # logins during paced messages: once without, once with 20 logins/s
    for logins in 0 20; do
        start_parley "api-logins-$logins" && {
            LG_AGENTS=0 LG_LOGINS_PER_S=$logins lg parley messages --clients 200 \
                --rate "$LOGIN_RATE" --seconds "$LOGIN_SECS" --window 4 --concurrency 128
            add_raw "$LAST_LINE" "{\"tag\":\"api-logins-$logins\"}"
            stop_server; }
    done
fi
T1=$(date +%s)

python3 bench/chat_table.py "$RAW" > "$TMP/table.md"
cat "$TMP/table.md"
mkdir -p bench/results
{
    echo "# Chat benchmarks, $STAMP"
    echo
    echo "Machine: $(nproc) cores, $(uname -sr), node $(node --version), git $(git rev-parse --short HEAD 2>/dev/null) + working tree."
    echo "Command: bench/chat.sh --build $BUILD $([ $QUICK = 1 ] && echo --quick) (took $((T1 - T0)) s)"
    echo
    cat "$TMP/table.md"
    echo
    echo "## Commands (D = fresh data dir, S = JWT secret, T = agent token)"
    echo '```'
    cat "$CMDS"
    echo '```'
    echo
    echo "## Raw results"
    echo '```'
    cat "$RAW"
    echo '```'
} > "$OUT"
echo "chat.sh: wrote $OUT" >&2
rm -rf "$TMP"
exit $FAIL
