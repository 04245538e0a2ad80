#!/usr/bin/env bash
# The scale-out benchmark: one chat served by several instances that share a Redis.
#
#   benches/scaleout.sh [--only loopchat-1,loopchat-2,socketio] [--find-max] [--quick]
#                       [--out DIR] [--no-publish] [--port-base N]
#
# One Redis (a redis-server of our own on a free loopback port, never 6379) and, in turn:
#   loopchat-1   one `loopchat serve` (chat mode), no Redis: the baseline
#   loopchat-2   two `loopchat serve --redis redis://127.0.0.1:RP`, the clients split
#                between them (`loopchat bench broadcast --url ws://A/ws,ws://B/ws`)
#   socketio     two Socket.IO 4 servers with @socket.io/redis-adapter
#                (benches/peers/socketio/server.js), loaded by benches/peers/socketio/load.js
# each with C clients (client i on instance i mod 2), S senders at a fixed total rate, in
# one room; every message must reach every client on both instances, the sender included
# (--self-delivery). The servers and Redis are pinned to CPU 0, the load generator to
# CPU 1 (as benches/compare.sh does; on two cores both instances share one).
#
# Settings (environment):
#   RATE=50         total messages a second (each sender RATE/SENDERS; the chat allows 20
#                   a second per client)
#   CLIENTS=1000 SENDERS=100 SIZE=64 DURATION=10 WARMUP=1 DRAIN=3
#   STEP_RATES="25 50 100 200 400 800"   the total rates --find-max tries, in order
#   SIO_CLIENT=raw  load.js's client: raw (the Socket.IO wire protocol on `ws`, cheap
#                   enough not to be the bottleneck) or socket.io-client (the library;
#                   saturates one core near 30,000 deliveries/s)
#
# --find-max runs each setup again at each of STEP_RATES, stopping at the first rate at
# which it loses a message or its drain does not complete: the highest rate before that
# is the most it carries without loss. A run whose load generator was saturated does not
# stop the steps (its loss count is still exact), but its latency measures the generator
# too: the table marks it.
#
# Reported for each run: deliveries/s, p50 and p99 latency (from the scheduled send time
# to receipt), lost, the servers' CPU per delivery, and Redis commands per chat message:
# the calls in Redis's INFO commandstats (reset with CONFIG RESETSTAT) over a window inside
# the measured one, divided by the messages sent in it (total rate × its length); the
# window opens WARMUP seconds after every client is connected (counted with ss) and closes
# half a second before the measured window ends. The script's own INFO and CONFIG calls
# are left out. For loopchat-1, which uses no Redis, n/a.
#
# Everything goes first to target/bench-results/scaleout-<UTC timestamp>/ (or --out): one
# JSON per run (what the load generator printed, plus "redis" and "servers_window"),
# meta.tsv, commands.tsv, runs.tsv, logs/. Unless --no-publish or --quick, the JSON and
# TSV files are then copied to docs/bench/scaleout/, named <commit>.<file>, and
# docs/bench/scaleout/README.md is regenerated from them by
#
#   python3 benches/scaleout_report.py docs/bench/scaleout
#
# and docs/REPORT.md, which draws on them too, is redrawn (`loopchat lab report`).
#
# A setup that cannot run (loopchat without --redis or without several --url, say) is
# reported as failed, with the reason, and the others still run.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
# shellcheck disable=SC2034 # lib.sh uses it
readonly PROG=scaleout.sh
readonly PUBLISHED="$ROOT/docs/bench/scaleout"
readonly ALL_SETUPS="loopchat-1,loopchat-2,socketio"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    exit "${1:-0}"
}

only=$ALL_SETUPS
find_max=0
quick=0
out=""
publish=1
port_base=18800

while (($# > 0)); do
    case $1 in
    --only)
        (($# >= 2)) || die "--only needs a list, such as socketio"
        only=$2
        shift
        ;;
    --find-max) find_max=1 ;;
    --quick) quick=1 ;;
    --out)
        (($# >= 2)) || die "--out needs a folder"
        out=$2
        shift
        ;;
    --no-publish) publish=0 ;;
    --port-base)
        if (($# < 2)) || ! [[ $2 =~ ^[0-9]+$ ]]; then
            die "--port-base needs a port number"
        fi
        port_base=$2
        shift
        ;;
    -h | --help) usage 0 ;;
    *)
        printf 'scaleout.sh: unknown option %s\n\n' "$1" >&2
        usage 2
        ;;
    esac
    shift
done

RATE=${RATE:-50}
CLIENTS=${CLIENTS:-1000}
SENDERS=${SENDERS:-100}
SIZE=${SIZE:-64}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
DRAIN=${DRAIN:-3}
STEP_RATES=${STEP_RATES:-"25 50 100 200 400 800"}
SIO_CLIENT=${SIO_CLIENT:-raw}
if ((quick)); then
    CLIENTS=${QUICK_CLIENTS:-100}
    SENDERS=10
    RATE=10
    DURATION=2
    STEP_RATES="10 20"
    publish=0
fi
[[ $SIO_CLIENT == raw || $SIO_CLIENT == socket.io-client ]] || die "SIO_CLIENT is raw or socket.io-client"

setups=()
IFS=',' read -r -a requested <<<"$only"
for name in "${requested[@]}"; do
    case $name in
    loopchat-1 | loopchat-2 | socketio) setups+=("$name") ;;
    *) die "--only: unknown setup '$name' (choose from $ALL_SETUPS)" ;;
    esac
done
((${#setups[@]} > 0)) || die "--only: no setup given"
wants() {
    local name
    for name in "${setups[@]}"; do
        [[ $name == "$1" ]] && return 0
    done
    return 1
}

# The rate of each sender for a total of $1 a second; dies if over the chat's limit.
per_sender() {
    python3 - "$1" "$SENDERS" <<'EOF'
import sys
total, senders = float(sys.argv[1]), int(sys.argv[2])
rate = total / senders
if rate > 20:
    sys.exit(f"scaleout.sh: {total:g} msg/s over {senders} senders is {rate:g} msg/s each, over the chat's limit of 20")
print(f"{rate:g}")
EOF
}
per_sender "$RATE" >/dev/null || exit 1

# ---------------------------------------------------------------------------------------
# What the machine must have

check_machine
command -v redis-server >/dev/null || die "redis-server not found (Debian package redis-server)"
command -v redis-cli >/dev/null || die "redis-cli not found (Debian package redis-tools)"
command -v ss >/dev/null || die "ss not found (Debian package iproute2)"
if wants socketio; then
    command -v node >/dev/null || die "node not found: install Node.js 18 or later"
    command -v npm >/dev/null || die "npm not found: install Node.js with npm"
fi
if wants loopchat-1 || wants loopchat-2; then
    command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs)"
fi
raise_nofile

open_results scaleout-
cd "$ROOT"
git_facts >"$out/git.tsv"
commit=$(sed -n 's/^commit\t//p' "$out/git.tsv")
short=${commit:0:12}
if grep -q '^dirty	1' "$out/git.tsv"; then
    note "warning: the tree differs from its commit (see $out/git-status.txt); the report will say so"
fi

loopchat="$ROOT/target/release/loopchat"
if wants loopchat-1 || wants loopchat-2; then
    note "building loopchat (release)"
    build=(cargo build --release --locked)
    record_command setup all build "${build[@]}"
    "${build[@]}"
    "$loopchat" bench --help >/dev/null 2>&1 || die "$loopchat has no 'bench' subcommand"
fi

if wants socketio; then
    peers=$(mktemp -d -t loopchat-socketio.XXXXXX)
    note "installing the Socket.IO peer (npm ci, from benches/peers/socketio/package-lock.json) into $peers"
    cp "$ROOT"/benches/peers/socketio/{package.json,package-lock.json,server.js,load.js} "$peers/"
    install=(npm ci --no-audit --no-fund --loglevel=error)
    record_command setup all install "${install[@]}"
    (cd "$peers" && "${install[@]}") >"$out/logs/npm-install.log" 2>&1 || {
        cat "$out/logs/npm-install.log" >&2
        die "npm ci failed (see above)"
    }
fi

package_version() {
    node -p 'require(process.argv[1]).version' "$peers/node_modules/$1/package.json" 2>/dev/null || echo "?"
}

{
    fact quick "$quick"
    fact setups "$(IFS=, && echo "${setups[*]}")"
    fact rate_total "$RATE"
    fact clients "$CLIENTS"
    fact senders "$SENDERS"
    fact size "$SIZE"
    fact duration "$DURATION"
    fact find_max "$find_max"
    fact step_rates "$STEP_RATES"
    machine_facts
    cat "$out/git.tsv"
    fact redis_server "$(first_line redis-server --version)"
    if wants loopchat-1 || wants loopchat-2; then
        fact loopchat "$(first_line "$loopchat" --version)"
    fi
    if wants socketio; then
        fact node "$(first_line node --version)"
        fact socket.io "$(package_version socket.io)"
        fact socket.io-redis-adapter "$(package_version @socket.io/redis-adapter)"
        fact node-redis "$(package_version redis)"
        fact socket.io-client "$(package_version socket.io-client)"
        fact ws "$(package_version ws)"
        fact sio_client "$SIO_CLIENT"
    fi
} >"$out/meta.tsv"
rm -f "$out/git.tsv"

# ---------------------------------------------------------------------------------------
# Redis: our own, on a free loopback port, pinned with the servers

redis_port=$port_base
port_open "$redis_port" && die "port $redis_port is already in use (choose others with --port-base)"
redis_command=(taskset -c "$SERVER_CPU" redis-server --bind 127.0.0.1 --port "$redis_port"
    --save "" --appendonly no --daemonize no --protected-mode yes --logfile "")
record_command setup redis server "${redis_command[@]}"
"${redis_command[@]}" >"$out/logs/redis.log" 2>&1 &
redis_pid=$!
started+=("$redis_pid")
for ((tries = 0; tries < 100; tries++)); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    kill -0 "$redis_pid" 2>/dev/null || die "redis-server exited; see $out/logs/redis.log"
    sleep 0.05
done
redis-cli -p "$redis_port" ping >/dev/null 2>&1 || die "redis-server did not answer on port $redis_port"
redis_url="redis://127.0.0.1:$redis_port"
rcli() { redis-cli -p "$redis_port" "$@"; }

# ---------------------------------------------------------------------------------------
# Servers: several at once, each pinned to SERVER_CPU

servers=()

# start_one RUN NAME PORT COMMAND...: starts one server, waits for its port.
start_one() {
    local run=$1 name=$2 port=$3
    shift 3
    local log="$out/logs/$run.$name.log"
    port_open "$port" && die "port $port is already in use (choose others with --port-base)"
    local command=(taskset -c "$SERVER_CPU" "$@")
    record_command "$run" "$name" server "${command[@]}"
    RUST_LOG=info "${command[@]}" >"$log" 2>&1 &
    local pid=$!
    started+=("$pid")
    servers+=("$pid")
    local tries
    for ((tries = 0; tries < 200; tries++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$log" >&2 || true
            server_failure="$name exited before listening on port $port ($(tail -n 1 "$log" 2>/dev/null))"
            return 1
        fi
        port_open "$port" && return 0
        sleep 0.05
    done
    server_failure="$name did not listen on port $port within 10 s"
    return 1
}

stop_servers() {
    local pid tries
    for pid in "${servers[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${servers[@]}"; do
        for ((tries = 0; tries < 100; tries++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        forget "$pid"
    done
    servers=()
}

cpu_seconds() { # utime + stime of process $1, in seconds
    awk '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / 100 }' "/proc/$1/stat" 2>/dev/null || echo null
}

# ---------------------------------------------------------------------------------------
# The Redis window: beside the load generator, once every client is connected

# redis_window FILE PORT...: waits until CLIENTS connections are established to the
# ports, then WARMUP seconds; resets Redis's counters; after DURATION - 0.5 s reads them,
# with Redis's and the servers' CPU time at both ends. Writes one JSON object to FILE.
redis_window() {
    local file=$1
    shift
    local filter="" port
    for port in "$@"; do
        filter+="${filter:+ or }sport = :$port"
    done
    local deadline=$((SECONDS + 120)) count=0
    while ((SECONDS < deadline)); do
        count=$(ss -Htn state established "( $filter )" 2>/dev/null | wc -l)
        ((count >= CLIENTS)) && break
        sleep 0.05
    done
    if ((count < CLIENTS)); then
        printf '{"error": "only %s of %s clients were seen connected"}\n' "$count" "$CLIENTS" >"$file"
        return 0
    fi
    sleep "$WARMUP"
    local t0 t1 redis0 redis1 servers0=() servers1=() pid stats length
    rcli config resetstat >/dev/null
    t0=$(date +%s.%N)
    redis0=$(cpu_seconds "$redis_pid")
    for pid in "${servers[@]}"; do servers0+=("$(cpu_seconds "$pid")"); done
    length=$(python3 -c "print(max(0.1, $DURATION - 0.5))")
    sleep "$length"
    stats=$(rcli info commandstats)
    t1=$(date +%s.%N)
    redis1=$(cpu_seconds "$redis_pid")
    for pid in "${servers[@]}"; do servers1+=("$(cpu_seconds "$pid")"); done
    STATS=$stats python3 - "$file" "$t0" "$t1" "$redis0" "$redis1" \
        "${servers[*]}" "${servers0[*]}" "${servers1[*]}" <<'EOF'
import json, os, re, sys
file, t0, t1, r0, r1, pids, s0, s1 = sys.argv[1:]
calls = {}
for line in os.environ["STATS"].splitlines():
    m = re.match(r"cmdstat_([^:]+):calls=(\d+)", line.strip())
    if m:
        calls[m.group(1)] = int(m.group(2))
ours = {"info", "config|resetstat", "config"}
num = lambda v: None if v == "null" else float(v)
json.dump({
    "window_s": float(t1) - float(t0),
    "calls": calls,
    "calls_excluded": sorted(k for k in calls if k in ours),
    "total_calls": sum(v for k, v in calls.items() if k not in ours),
    "redis_cpu_s": None if "null" in (r0, r1) else round(num(r1) - num(r0), 2),
    "servers": [{"pid": int(p), "cpu_s": None if "null" in (a, b) else round(num(b) - num(a), 2)}
                for p, a, b in zip(pids.split(), s0.split(), s1.split())],
}, open(file, "w"))
EOF
}

# ---------------------------------------------------------------------------------------
# One run: start the setup's servers, run its load generator beside the Redis window,
# merge the two into RUN.json, stop the servers.

failures=0

# Sets `bench_command` (the generator's command line) and `ports` for SETUP at RATE_TOTAL,
# starting the servers. Returns 1 with `server_failure` set if they could not start.
start_setup() {
    local setup=$1 run=$2 rate=$3 base
    bench_command=()
    ports=()
    server_failure=""
    case $setup in
    loopchat-1)
        base=$((port_base + 1))
        start_one "$run" server "$base" "$loopchat" serve --addr "127.0.0.1:$base" || return 1
        ports=("$base")
        bench_command=(taskset -c "$BENCH_CPU" "$loopchat" bench broadcast
            --url "ws://127.0.0.1:$base/ws" --server-pid "${servers[0]}")
        ;;
    loopchat-2)
        base=$((port_base + 2))
        if ! "$loopchat" serve --help 2>/dev/null | grep -q -- '--redis'; then
            server_failure="this loopchat has no 'serve --redis' yet"
            return 1
        fi
        if ! "$loopchat" bench broadcast --help 2>/dev/null | grep -qiE 'comma|several|URLs'; then
            server_failure="this loopchat's 'bench broadcast --url' takes one URL only (no comma-separated list yet)"
            return 1
        fi
        start_one "$run" server-a "$base" "$loopchat" serve --addr "127.0.0.1:$base" --redis "$redis_url" || return 1
        start_one "$run" server-b "$((base + 1))" "$loopchat" serve --addr "127.0.0.1:$((base + 1))" --redis "$redis_url" || return 1
        ports=("$base" "$((base + 1))")
        bench_command=(taskset -c "$BENCH_CPU" "$loopchat" bench broadcast
            --url "ws://127.0.0.1:$base/ws,ws://127.0.0.1:$((base + 1))/ws")
        ;;
    socketio)
        base=$((port_base + 4))
        start_one "$run" server-a "$base" node "$peers/server.js" --port "$base" --redis "$redis_url" || return 1
        start_one "$run" server-b "$((base + 1))" node "$peers/server.js" --port "$((base + 1))" --redis "$redis_url" || return 1
        ports=("$base" "$((base + 1))")
        bench_command=(taskset -c "$BENCH_CPU" node "$peers/load.js" --client "$SIO_CLIENT"
            --url "ws://127.0.0.1:$base,ws://127.0.0.1:$((base + 1))"
            --server-pid "${servers[0]},${servers[1]}")
        ;;
    esac
    bench_command+=(--clients "$CLIENTS" --senders "$SENDERS" --rate "$(per_sender "$rate")"
        --size "$SIZE" --duration "$DURATION" --warmup "$WARMUP" --drain "$DRAIN"
        --self-delivery --json --label "$run")
}

# run_setup SETUP RUN RATE_TOTAL: one run into RUN.json; sets run_status and `verdict`
# (ok, lossy, saturated) for --find-max.
run_setup() {
    local setup=$1 run=$2 rate=$3
    local json="$out/$run.json" log="$out/logs/$run.bench.log" window="$out/logs/$run.redis.json"
    local run_started=$SECONDS bench_pid window_pid bench_status=0
    run_status=ok
    verdict=failed
    rcli flushall >/dev/null
    note "$run: $setup at $rate msg/s ($SENDERS senders × $(per_sender "$rate")), $CLIENTS clients"
    if ! start_setup "$setup" "$run" "$rate"; then
        run_status="could not start: $server_failure"
        note "$run: $run_status"
        stop_servers
        printf '{"label": "%s", "setup": "%s", "error": "%s"}\n' "$run" "$setup" "${run_status//\"/\'}" >"$json.failed"
        mv -f "$json.failed" "$out/logs/$run.failed.json"
        printf '%s\t%s\t%s\t%s\n' "$run" "$setup" "$run_status" 0 >>"$out/runs.tsv"
        failures=$((failures + 1))
        return 0
    fi
    record_command "$run" "$setup" bench "${bench_command[@]}"
    "${bench_command[@]}" >"$json" 2>"$log" &
    bench_pid=$!
    started+=("$bench_pid")
    redis_window "$window" "${ports[@]}" &
    window_pid=$!
    started+=("$window_pid")
    wait "$bench_pid" || bench_status=$?
    forget "$bench_pid"
    wait "$window_pid" || true
    forget "$window_pid"
    local pid
    for pid in "${servers[@]}"; do
        kill -0 "$pid" 2>/dev/null || add_problem "a server died"
    done
    if ((bench_status != 0)); then
        add_problem "load generator failed (exit $bench_status)"
    elif ! python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$json" 2>/dev/null; then
        add_problem "load generator printed no JSON object"
    fi
    stop_servers
    if [[ $run_status == ok ]]; then
        verdict=$(python3 - "$json" "$window" "$setup" "$rate" <<'EOF'
import json, sys
path, window_path, setup, rate = sys.argv[1:]
report = json.load(open(path))
try:
    window = json.load(open(window_path))
except (OSError, ValueError) as e:
    window = {"error": f"no Redis window: {e}"}
report["setup"] = setup
report["total_rate"] = float(rate)
redis = dict(window)
if setup == "loopchat-1":
    redis["commands_per_message"] = None
    redis["note"] = "one instance without Redis"
elif "error" not in window:
    messages = float(rate) * window["window_s"]
    redis["messages_in_window"] = messages
    redis["commands_per_message"] = window["total_calls"] / messages if messages > 0 else None
    redis["redis_cpu_us_per_message"] = (window["redis_cpu_s"] * 1e6 / messages
                                         if messages > 0 and window["redis_cpu_s"] is not None else None)
report["redis"] = redis
servers = window.get("servers") or []
if servers and all(s["cpu_s"] is not None for s in servers) and "error" not in window:
    cpu = sum(s["cpu_s"] for s in servers)
    deliveries = (report.get("deliveries_per_s") or 0) * window["window_s"]
    report["servers_window"] = {"servers": servers, "cpu_s": cpu, "window_s": window["window_s"],
                                "cpu_ns_per_delivery": cpu * 1e9 / deliveries if deliveries > 0 else None}
json.dump(report, open(path, "w"))
lag = (report.get("send_lag_us") or {}).get("p99") or 0
saturated = (report.get("generator") or {}).get("saturated")
if saturated is None:
    saturated = (report.get("bench_cpu_pct") or 0) > 85 or lag > 5000
details = report.get("details") or {}
if report.get("lost") or not details.get("drain_complete", True):
    print("lossy")
elif saturated:
    print("saturated")
else:
    print("ok")
EOF
        ) || add_problem "the results could not be merged"
    fi
    if [[ $run_status != ok ]]; then
        note "$run: $run_status; see $log"
        tail -n 5 "$log" >&2 || true
        [[ -f $json ]] && mv -f "$json" "$out/logs/$run.bench.stdout"
        failures=$((failures + 1))
    else
        note "$run: $(python3 - "$json" "$verdict" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
l = r["latency_us"]
c = r["redis"].get("commands_per_message")
cmds = "n/a" if c is None else f"{c:.2f}"
print(f"{r['deliveries_per_s']:.0f} deliveries/s, p50 {l['p50'] / 1000:.1f} ms, p99 {l['p99'] / 1000:.1f} ms, "
      f"lost {r['lost']}, Redis commands/message {cmds}, generator CPU {r['bench_cpu_pct'] or 0:.0f} % ({sys.argv[2]})")
EOF
        )"
    fi
    printf '%s\t%s\t%s\t%s\n' "$run" "$setup" "$run_status" "$((SECONDS - run_started))" >>"$out/runs.tsv"
    sleep 1
}

started_at=$SECONDS
for setup in "${setups[@]}"; do
    run_setup "$setup" "$setup" "$RATE"
    if ((find_max)) && [[ $run_status == ok ]]; then
        for rate in $STEP_RATES; do
            per_sender "$rate" >/dev/null 2>&1 || {
                note "$setup: step $rate msg/s is over the chat's limit per sender; stopping"
                break
            }
            run_setup "$setup" "$setup.step-$rate" "$rate"
            [[ $run_status == ok && $verdict != lossy ]] || break
        done
    fi
done

{
    fact load_after "$(cut -d' ' -f1-3 /proc/loadavg)"
    fact runs_seconds "$((SECONDS - started_at))"
} >>"$out/meta.tsv"
note "results in $out ($((SECONDS - started_at)) s of runs)"

# ---------------------------------------------------------------------------------------
# Publish: docs/bench/scaleout/<commit>.<file>, and the README regenerated from them

if ((publish)); then
    mkdir -p "$PUBLISHED"
    rm -f -- "$PUBLISHED/$short".*
    for file in "$out"/*.json "$out"/meta.tsv "$out"/commands.tsv "$out"/runs.tsv "$out"/git-status.txt; do
        [[ -f $file ]] && cp -- "$file" "$PUBLISHED/$short.$(basename "$file")"
    done
    for file in "$out"/logs/*.failed.json; do
        [[ -f $file ]] && cp -- "$file" "$PUBLISHED/$short.$(basename "$file")"
    done
    note "published to ${PUBLISHED#"$ROOT/"}/ as $short.*; regenerating its README.md"
    python3 "$ROOT/benches/scaleout_report.py" "$PUBLISHED" --commit "$short"
    # docs/REPORT.md draws on these results too.
    "$loopchat" lab report --root "$ROOT"
else
    python3 "$ROOT/benches/scaleout_report.py" "$out" --plain --output "$out/README.md"
    note "not published; the report is $out/README.md"
fi

((failures == 0)) || die "$failures run(s) failed; see $out/runs.tsv and $out/logs/"
