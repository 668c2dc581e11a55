#!/usr/bin/env bash
# The Socket.IO benchmark driver (`make bench`): runs the same scenarios of the C load client
# (build/bench/loadgen) against Parley's examples/echo and against the Node.js socket.io v4 echo
# (bench/echo-node.mjs) in the same run, one fresh server per scenario, then prints a table of
# figures with ratios (> 1 means Parley is better) and writes it to bench/results/<date>.md.
# It builds nothing: run `make build` first (make bench does).
#
#   bench/run.sh [--quick] [--only parley|node] [--build DIR] [--settle S] [--scenario ID]...
#     --quick   small sizes, finishes in well under a minute (smoke test)
#     --only    run one server only (no ratios)
#     --build   build directory holding examples/echo and bench/loadgen (default: build)
#     --settle  before each run, wait up to S seconds (default 10, 2 with --quick) for other
#               processes to use less than a quarter of a core, since they disturb the figures
#     --scenario  run only the scenario with this id (repeatable), e.g. echo-1000
#
# Every step is bounded: a server must print its listen line within 10 s, each loadgen run has
# a hard deadline, servers get SIGTERM and then SIGKILL after 5 s. Exit status: 0 when every
# scenario ran clean against every server, 1 otherwise (the table is still written).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD:-build}
QUICK=0
ONLY=""
SETTLE=""
PICK=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --only) ONLY=${2:-}; shift ;;
        --build) BUILD_DIR=${2:-}; shift ;;
        --settle) SETTLE=${2:-}; shift ;;
        --scenario) PICK+=("${2:-}"); shift ;;
        -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
[ -n "$SETTLE" ] || SETTLE=$([ "$QUICK" = 1 ] && echo 2 || echo 10)
case "$SETTLE" in ''|*[!0-9]*) echo "run.sh: --settle takes seconds" >&2; exit 2 ;; esac

LOADGEN="$BUILD_DIR/bench/loadgen"
ECHO_BIN="$BUILD_DIR/examples/echo"
NODE_ECHO="$ROOT/bench/echo-node.mjs"
SERVERS=(parley node)
[ -n "$ONLY" ] && SERVERS=("$ONLY")

die() { echo "run.sh: $*" >&2; exit 2; }
[ -x "$LOADGEN" ] || die "$LOADGEN is missing: run make build first"
for s in "${SERVERS[@]}"; do
    case "$s" in
        parley) [ -x "$ECHO_BIN" ] || die "$ECHO_BIN is missing: run make build first" ;;
        node) command -v node >/dev/null || die "node is not installed"
              [ -d "$ROOT/node_modules/socket.io" ] || die "node_modules/socket.io is missing: run make build (npm ci)" ;;
        *) die "--only takes parley or node" ;;
    esac
done

# Scenarios: "name|loadgen arguments". The same list runs against every server.
if [ "$QUICK" = 1 ]; then
    SCENARIOS=(
        "connect-1000|connect --clients 1000 --concurrency 256 --idle-ms 1000"
        "echo-200|echo --clients 200 --window 1 --seconds 3 --warmup-ms 500"
        "echo-200-paced-2000|echo --clients 200 --window 1 --rate 2000 --seconds 2 --warmup-ms 500"
        "ack-200|ack --clients 200 --window 1 --seconds 2 --warmup-ms 500"
    )
else
    SCENARIOS=(
        "connect-10000|connect --clients 10000 --concurrency 256 --idle-ms 5000"
        "connect-19000|connect --clients 19000 --concurrency 256 --idle-ms 5000"
        "echo-1000|echo --clients 1000 --window 1 --seconds 10 --warmup-ms 1000"
        "echo-1000-paced-10000|echo --clients 1000 --window 1 --rate 10000 --seconds 10 --warmup-ms 1000"
        "ack-1000|ack --clients 1000 --window 1 --seconds 10 --warmup-ms 1000"
        "echo-100-20kB|echo --clients 100 --window 1 --payload-bytes 20000 --seconds 5 --warmup-ms 500"
    )
fi

if [ ${#PICK[@]} -gt 0 ]; then
    picked=()
    for entry in "${SCENARIOS[@]}"; do
        for want in "${PICK[@]}"; do
            [ "${entry%%|*}" = "$want" ] && picked+=("$entry")
        done
    done
    [ ${#picked[@]} -gt 0 ] || die "no scenario matches ${PICK[*]}; ids: $(printf '%s ' "${SCENARIOS[@]%%|*}")"
    SCENARIOS=("${picked[@]}")
fi

# The HTTP layer's default connection cap (10,000) is below the 19,000-client scenario: raise it
# when examples/echo has the flag (its usage text lists its flags); without it that scenario
# reports the clients it refused.
ECHO_FLAGS=()
if [ -x "$ECHO_BIN" ] && { "$ECHO_BIN" --help 2>&1 || true; } | grep -q -- '--max-connections'; then
    ECHO_FLAGS=(--max-connections 19900)
fi

TMP=$(mktemp -d /tmp/parley-bench.XXXXXX)
RESULTS="$TMP/results.jsonl"
: >"$RESULTS"
SRV_PID=""

stop_server() {
    [ -n "$SRV_PID" ] || return 0
    kill -TERM "$SRV_PID" 2>/dev/null || true
    for _ in $(seq 50); do
        server_alive || break
        sleep 0.1
    done
    kill -KILL "$SRV_PID" 2>/dev/null || true
    wait "$SRV_PID" 2>/dev/null || true
    SRV_PID=""
}
trap 'stop_server; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

# Whether the server process is still running (a child that exited stays a zombie until
# waited for, and kill -0 succeeds on a zombie).
server_alive() {
    local state
    state=$(sed 's/^[0-9]* (.*) \([A-Z]\).*/\1/' "/proc/$SRV_PID/stat" 2>/dev/null || echo gone)
    [ "$state" != gone ] && [ "$state" != Z ] && [ "$state" != X ]
}

# start_server NAME LOG: starts a fresh server on a free port; sets SRV_PID and SRV_PORT.
start_server() {
    local name=$1 log=$2
    case "$name" in
        parley) "$ECHO_BIN" --port 0 "${ECHO_FLAGS[@]}" >"$log" 2>&1 & ;;
        node) node "$NODE_ECHO" --port 0 >"$log" 2>&1 & ;;
    esac
    SRV_PID=$!
    SRV_PORT=""
    for _ in $(seq 100); do
        SRV_PORT=$(grep -m1 'event=http.listen' "$log" 2>/dev/null | grep -o 'port=[0-9]*' | cut -d= -f2 || true)
        [ -n "$SRV_PORT" ] && return 0
        server_alive || break
        sleep 0.1
    done
    echo "run.sh: $name did not start listening; its log:" >&2
    tail -20 "$log" >&2
    return 1
}

# Busy CPU of the whole machine over half a second, in % of one core.
HZ=$(getconf CLK_TCK)
machine_busy_pct() {
    local _c u n s i w q sq st b0 b1
    read -r _c u n s i w q sq st _ </proc/stat
    b0=$((u + n + s + q + sq + st))
    sleep 0.5
    read -r _c u n s i w q sq st _ </proc/stat
    b1=$((u + n + s + q + sq + st))
    echo $(( (b1 - b0) * 200 / HZ ))
}

# Waits (bounded by --settle) until the machine is nearly idle before a measurement.
settle() {
    local deadline=$(( $(date +%s) + SETTLE )) busy
    while :; do
        busy=$(machine_busy_pct)
        [ "$busy" -lt 25 ] && return 0
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "   (machine still busy: ${busy} % of a core used by other processes)"
            return 0
        fi
    done
}

echo "== loadgen selftest"
"$LOADGEN" selftest

STATUS=0
START=$(date +%s)
for entry in "${SCENARIOS[@]}"; do
    id=${entry%%|*}
    args=${entry#*|}
    for srv in "${SERVERS[@]}"; do
        log="$TMP/$srv-$id.log"
        settle
        echo "== $id against $srv"
        if ! start_server "$srv" "$log"; then
            echo "{\"id\":\"$id\",\"label\":\"$srv\",\"error\":\"server did not start\"}" >>"$RESULTS"
            STATUS=1
            stop_server
            continue
        fi
        # shellcheck disable=SC2086 # args is a word list on purpose
        if ! line=$("$LOADGEN" $args --port "$SRV_PORT" --server-pid "$SRV_PID" --label "$srv" \
                    --deadline-s 240); then
            STATUS=1
        fi
        line=$(printf '%s\n' "$line" | grep '^{' | tail -1 || true)
        [ -n "$line" ] || line="{\"label\":\"$srv\",\"error\":\"no result line\"}"
        printf '%s\n' "$line" | sed "s/^{/{\"id\":\"$id\",/" >>"$RESULTS"
        if ! server_alive; then
            echo "run.sh: $srv exited during $id; its log:" >&2
            tail -20 "$log" >&2
            STATUS=1
        fi
        stop_server
    done
done
ELAPSED=$(( $(date +%s) - START ))

mkdir -p "$ROOT/bench/results"
STAMP=$(date -u +%Y-%m-%d-%H%M%S)
SUFFIX=""
CMD="bench/run.sh"
if [ "$QUICK" = 1 ]; then SUFFIX="-quick"; CMD="$CMD --quick"; fi
if [ -n "$ONLY" ]; then CMD="$CMD --only $ONLY"; fi
if [ "$BUILD_DIR" != "$ROOT/build" ]; then CMD="$CMD --build ${BUILD_DIR#"$ROOT"/}"; fi
for want in "${PICK[@]}"; do CMD="$CMD --scenario $want"; done
OUT="$ROOT/bench/results/$STAMP$SUFFIX.md"
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown)
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)

# The table: one row per figure, ratio = parley/node for rates, node/parley for costs.
node - "$RESULTS" "$OUT" "$CMD" "$CPU" "$(nproc)" "$(uname -r)" "$(node --version)" "$REV" \
    "$ELAPSED" "$STATUS" <<'EOF'
const fs = require('node:fs');
const [results, out, cmd, cpu, cores, kernel, nodeVersion, rev, elapsed, status] =
    process.argv.slice(2);
const rows = fs.readFileSync(results, 'utf8').split('\n').filter(Boolean).map((l) => {
    try { return JSON.parse(l); } catch { return { error: `unparsable: ${l}` }; }
});
const byId = new Map();
for (const r of rows) {
    if (!byId.has(r.id)) byId.set(r.id, {});
    byId.get(r.id)[r.label] = r;
}
// [key, label, unit, higherIsBetter, digits]
const figures = {
    connect: [
        ['conn_per_s', 'connections/s', '/s', true, 0],
        ['connect_p99_ms', 'connect p99', 'ms', false, 1],
        ['bytes_per_client', 'server memory per client (after connect)', 'B', false, 0],
        ['bytes_per_client_idle', 'server memory per client (after idle)', 'B', false, 0],
    ],
    echo: [
        ['msg_per_s', 'echo round trips/s', '/s', true, 0],
        ['lat_p50_us', 'round trip p50', 'µs', false, 0],
        ['lat_p90_us', 'round trip p90', 'µs', false, 0],
        ['lat_p99_us', 'round trip p99', 'µs', false, 0],
        ['lat_max_us', 'round trip max', 'µs', false, 0],
        ['server_cpu_us_per_msg', 'server CPU per message', 'µs', false, 1],
    ],
};
figures.ack = figures.echo.map((f) => [f[0], f[1].replace('echo', 'ack'), ...f.slice(2)]);
// At a fixed rate both servers answer the same messages/s: latency and CPU are what differ.
figures['echo-rate'] = [
    ['msg_per_s', 'answered/s (paced)', '/s', true, 0],
    ...figures.echo.slice(1, 5),
    ['server_cpu_pct', 'server CPU', '%', false, 0],
    ['server_cpu_us_per_msg', 'server CPU per message', 'µs', false, 1],
];
figures['ack-rate'] = figures['echo-rate'];
const fmt = (v, d) => (typeof v === 'number' && v >= 0 ? v.toLocaleString('en-US', {
    minimumFractionDigits: d, maximumFractionDigits: d }) : 'n/a');
const lines = [];
lines.push('| scenario | figure | parley | node | ratio (> 1: parley better) |');
lines.push('|---|---|---:|---:|---:|');
const notes = [];
for (const [id, per] of byId) {
    const any = per.parley ?? per.node;
    for (const [label, r] of Object.entries(per)) {
        if (r.error) notes.push(`${id} against ${label}: ${r.error}`);
        if (r.failed) notes.push(`${id} against ${label}: ${r.failed} clients failed (${r.first_error})`);
        if (r.dropped) notes.push(`${id} against ${label}: ${r.dropped} clients dropped (${r.first_error})`);
        if (r.mismatches) notes.push(`${id} against ${label}: ${r.mismatches} wrong answers`);
        if (r.other_cpu_pct > 40) notes.push(`${id} against ${label}: ${Math.round(r.other_cpu_pct)} % of a core went to other work meanwhile (other processes, or kernel work charged to none): figures may be disturbed`);
        if (r.behind) notes.push(`${id} against ${label}: ${r.behind} paced messages not sent (server slower than the rate)`);
    }
    const kind = any?.scenario && (any.rate > 0 ? `${any.scenario}-rate` : any.scenario);
    if (!figures[kind]) continue;
    const size = kind === 'connect' ? `${any.clients} clients`
        : `${any.clients} clients, ${any.rate > 0 ? `${any.rate}/s paced` : `window ${any.window}`}, ` +
          `${any.payload_bytes} B, ${Math.round(any.seconds)} s`;
    for (const [key, name, unit, higher, d] of figures[kind]) {
        const p = per.parley?.[key], n = per.node?.[key];
        let ratio = 'n/a';
        if (typeof p === 'number' && typeof n === 'number' && p > 0 && n > 0) {
            ratio = (higher ? p / n : n / p).toFixed(2) + '×';
        }
        lines.push(`| ${kind} (${size}) | ${name} | ${fmt(p, d)} ${unit} | ${fmt(n, d)} ${unit} | ${ratio} |`);
    }
    const cpu = (r) => (r && r.client_cpu_pct !== undefined ? `${Math.round(r.client_cpu_pct)} %` : 'n/a');
    if (kind && kind !== 'connect') {
        lines.push(`| ${kind} (${size}) | load client CPU (% of one core) | ${cpu(per.parley)} | ${cpu(per.node)} | |`);
    }
}
const table = lines.join('\n');
const header = [
    `# Benchmark run ${new Date().toISOString()}`,
    '',
    `Command: \`${cmd}\` (git ${rev}), ${elapsed} s in total, exit status ${status}.`,
    `Machine: ${cores} cores (${cpu}), Linux ${kernel}, Node.js ${nodeVersion}; server and load`,
    'client share the machine and talk over loopback; one fresh server process per scenario.',
    'Memory per client is the growth of the server\'s VmRSS divided by the clients connected',
    '(kernel socket buffers are not in VmRSS).',
    '',
].join('\n');
const md = `${header}\n${table}\n${notes.length ? `\nNotes:\n${notes.map((n) => `- ${n}`).join('\n')}\n` : ''}` +
    `\nRaw results (one JSON line per scenario run):\n\n\`\`\`\n${rows.map((r) => JSON.stringify(r)).join('\n')}\n\`\`\`\n`;
fs.writeFileSync(out, md);
console.log(`\n${table}`);
if (notes.length) console.log(`\n${notes.join('\n')}`);
console.log(`\nwritten to ${out}`);
EOF
exit "$STATUS"
