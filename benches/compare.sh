#!/usr/bin/env bash
# Runs the same load against loopchat, Node's `ws` and Bun's `Bun.serve`, side by side,
# and writes docs/BENCHMARKS.md from the results.
#
#   benches/compare.sh [--quick] [--only loopchat,ws,bun] [--out DIR] [--no-report]
#                      [--port-base N]
#
# Every server is a raw relay (broadcast: each message to every other client; echo: back
# to its sender), pinned to CPU 0 with taskset; the load generator, `loopchat bench`, is
# pinned to CPU 1. Each scenario gets a freshly started server, so one scenario's memory
# and CPU time never leak into the next; the servers take turns within a scenario, so the
# figures compared with each other were measured minutes apart at most.
#
# Scenarios (the targets of the benchmark issue):
#   broadcast    C=1,000, 10 senders, 64-byte messages, window 8, 10 s
#   fanout       C=10,000, 1 sender at 50 msg/s, 10 s: loss and latency
#   echo         C=100, window 8, 64 bytes, 10 s
#   connections  C=10,000 idle connections held 2 s: memory per connection, handshakes/s
#   sweep        broadcast at C=100, 1,000, 10,000, 10 senders, window 8, 5 s a point
#
# --quick runs every scenario with small C and 1-second phases, as a smoke test of the
# whole pipeline (about a minute once built); its report goes to the results folder, not
# to docs/, so it never replaces real figures.
#
# The peers are installed with npm into a temporary folder that is removed at exit;
# results (one JSON per scenario and server, logs, versions, the exact commands) go to
# target/bench-results/<UTC timestamp>/ unless --out says otherwise. Run it on a quiet
# machine: anything else running shares the two cores being measured.

set -euo pipefail

# The peers' versions. ws: the latest 8.x at install time (recorded in the results).
readonly WS_SPEC="ws@8"
readonly BUN_SPEC="@oven/bun-linux-x64@1.4.5"
readonly SERVER_CPU=0
readonly BENCH_CPU=1
readonly ALL_SERVERS="loopchat,ws,bun"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT

usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    exit "${1:-0}"
}

die() {
    printf 'compare.sh: %s\n' "$*" >&2
    exit 1
}

note() {
    printf '==> %s\n' "$*" >&2
}

# ---------------------------------------------------------------------------------------
# Options

quick=0
only=$ALL_SERVERS
out=""
report=1
port_base=18700

while (($# > 0)); do
    case $1 in
    --quick) quick=1 ;;
    --only)
        (($# >= 2)) || die "--only needs a list, such as loopchat,bun"
        only=$2
        shift
        ;;
    --out)
        (($# >= 2)) || die "--out needs a folder"
        out=$2
        shift
        ;;
    --no-report) report=0 ;;
    --port-base)
        if (($# < 2)) || ! [[ $2 =~ ^[0-9]+$ ]]; then
            die "--port-base needs a port number"
        fi
        port_base=$2
        shift
        ;;
    -h | --help) usage 0 ;;
    *)
        printf 'compare.sh: unknown option %s\n\n' "$1" >&2
        usage 2
        ;;
    esac
    shift
done

servers=()
IFS=',' read -r -a requested <<<"$only"
for name in "${requested[@]}"; do
    case $name in
    loopchat | ws | bun) servers+=("$name") ;;
    *) die "--only: unknown server '$name' (choose from $ALL_SERVERS)" ;;
    esac
done
((${#servers[@]} > 0)) || die "--only: no server given"

wants() {
    local name
    for name in "${servers[@]}"; do
        [[ $name == "$1" ]] && return 0
    done
    return 1
}

# ---------------------------------------------------------------------------------------
# What the machine must have

command -v taskset >/dev/null ||
    die "taskset not found: it is in the util-linux package (apt-get install util-linux)"
command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs)"
if wants ws || wants bun; then
    command -v npm >/dev/null || die "npm not found: install Node.js 20 or later with npm"
fi
if wants ws; then
    command -v node >/dev/null || die "node not found: install Node.js 20 or later"
fi
command -v python3 >/dev/null || die "python3 not found (it checks the results and writes the report)"
cores=$(nproc --all)
((cores >= 2)) ||
    die "need 2 CPUs (server on CPU $SERVER_CPU, load on CPU $BENCH_CPU); this machine has $cores"
((cores == 2)) ||
    note "$cores CPUs: the server still gets CPU $SERVER_CPU only, the load generator CPU $BENCH_CPU"

# Ten thousand connections need ten thousand descriptors on each side. Root may raise
# the hard limit; anyone may raise the soft limit to the hard one.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
nofile=$(ulimit -n)
if [[ $nofile != unlimited ]] && ((nofile < 10240)); then
    note "warning: only $nofile file descriptors per process; the C=10,000 scenarios will fail"
    note "(raise the hard limit: ulimit -Hn as root, or /etc/security/limits.conf)"
fi

# ---------------------------------------------------------------------------------------
# Clean-up: every process this script starts is in `started`; the peers' folder goes too.

started=()
peers=""

# Takes a process that has ended off the clean-up list.
forget() {
    local kept=() pid
    for pid in "${started[@]}"; do
        [[ $pid == "$1" ]] || kept+=("$pid")
    done
    started=("${kept[@]+"${kept[@]}"}")
}

cleanup() {
    local pid
    for pid in "${started[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${started[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n $peers && -d $peers ]]; then
        rm -rf -- "$peers"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------
# Results folder, build, peers

if [[ -z $out ]]; then
    out="$ROOT/target/bench-results/$(date -u +%Y%m%dT%H%M%SZ)"
fi
mkdir -p "$out/logs"
out=$(cd "$out" && pwd)
: >"$out/commands.tsv"
: >"$out/runs.tsv"

# Commands are recorded as a reader would type them: paths inside the repository are
# relative to it, and the peers' temporary folder is written $PEERS.
show_command() {
    local shown="" word
    for word in "$@"; do
        word=${word//"$ROOT/"/}
        if [[ -n $peers ]]; then
            word=${word//"$peers"/"\$PEERS"}
        fi
        word=${word//"$out"/"\$OUT"}
        if [[ $word =~ ^[A-Za-z0-9_./:,=@%+\$-]+$ ]]; then
            shown+="$word "
        else
            shown+="'${word//\'/\'\\\'\'}' "
        fi
    done
    printf '%s' "${shown% }"
}

record_command() {
    local scenario=$1 server=$2 kind=$3
    shift 3
    printf '%s\t%s\t%s\t%s\n' "$scenario" "$server" "$kind" "$(show_command "$@")" >>"$out/commands.tsv"
}

cd "$ROOT"
note "building loopchat (release)"
build=(cargo build --release --locked)
record_command setup all build "${build[@]}"
"${build[@]}"
loopchat="$ROOT/target/release/loopchat"
"$loopchat" bench --help >/dev/null 2>&1 ||
    die "$loopchat has no 'bench' subcommand: the load generator is needed to run the comparison"

if wants ws || wants bun; then
    peers=$(mktemp -d -t loopchat-peers.XXXXXX)
    note "installing $WS_SPEC and $BUN_SPEC into $peers"
    printf '{ "name": "loopchat-bench-peers", "private": true }\n' >"$peers/package.json"
    install=(npm install --no-audit --no-fund --loglevel=error "$WS_SPEC" "$BUN_SPEC")
    record_command setup all install "${install[@]}"
    (cd "$peers" && "${install[@]}") >"$out/logs/npm-install.log" 2>&1 || {
        cat "$out/logs/npm-install.log" >&2
        die "npm install failed (see above)"
    }
    cp "$ROOT/benches/peers/ws_server.mjs" "$ROOT/benches/peers/bun_server.js" "$peers/"
fi
bun="$peers/node_modules/@oven/bun-linux-x64/bin/bun"
if wants bun; then
    [[ -x $bun ]] || die "the Bun binary is not at $bun after npm install"
    "$bun" --version >/dev/null 2>&1 ||
        die "$bun does not run here (the x64 build needs AVX2; try the -baseline package)"
fi

# ---------------------------------------------------------------------------------------
# The machine and the versions, as key<TAB>value lines for report.py

first_line() { "$@" 2>/dev/null | head -n 1 || true; }
sysctl_value() { tr '\t' ' ' <"/proc/sys/$1" 2>/dev/null || echo "?"; }
fact() { printf '%s\t%s\n' "$1" "$2"; }

simd_flags() {
    grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' |
        grep -E '^(sse4_2|avx2|avx512f|avx512bw)$' | tr '\n' ' ' | sed 's/ $//'
}

{
    fact date_utc "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    fact quick "$quick"
    fact servers "$(IFS=, && echo "${servers[*]}")"
    fact cpu_model "$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    fact cpu_count "$cores"
    fact cpu_flags_simd "$(simd_flags || true)"
    fact memory "$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    fact kernel "$(uname -sr)"
    fact os "$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release 2>/dev/null || echo "?")"
    fact governor "$(cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2>/dev/null || echo "n/a")"
    fact load_before "$(cut -d' ' -f1-3 /proc/loadavg)"
    fact server_cpu "$SERVER_CPU"
    fact bench_cpu "$BENCH_CPU"
    fact nofile "$nofile"
    fact tcp_tw_reuse "$(sysctl_value net/ipv4/tcp_tw_reuse)"
    fact ip_local_port_range "$(sysctl_value net/ipv4/ip_local_port_range)"
    fact somaxconn "$(sysctl_value net/core/somaxconn)"
    fact rustc "$(first_line rustc -V)"
    fact loopchat "$(first_line "$loopchat" --version)"
    fact loopchat_git "$(git -C "$ROOT" describe --always --dirty --abbrev=12 2>/dev/null || echo "?")"
    fact taskset "$(first_line taskset --version)"
    if [[ -n $peers ]]; then
        fact node "$(first_line node --version)"
        fact npm "$(first_line npm --version)"
        fact ws "$(node -p 'require(process.argv[1]).version' "$peers/node_modules/ws/package.json" 2>/dev/null || echo "?")"
        fact bun "$(first_line "$bun" --version)"
        fact ws_spec "$WS_SPEC"
        fact bun_spec "$BUN_SPEC"
    fi
} >"$out/meta.tsv"

# ---------------------------------------------------------------------------------------
# Servers

# The command line of server $1 in mode $2 on port $3, into the array `server_command`.
server_command=()
set_server_command() {
    local name=$1 mode=$2 port=$3
    case $name in
    loopchat) server_command=("$loopchat" serve --mode "$mode" --addr "127.0.0.1:$port") ;;
    ws) server_command=(node "$peers/ws_server.mjs" --port "$port" --mode "$mode") ;;
    bun) server_command=("$bun" "$peers/bun_server.js" --port "$port" --mode "$mode") ;;
    esac
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

server_pid=""

# Starts server $2 in mode $3 on port $4 for scenario $1, pinned to SERVER_CPU, and waits
# until it accepts connections. Dies, showing its log, if it does not.
start_server() {
    local scenario=$1 name=$2 mode=$3 port=$4
    local log="$out/logs/$scenario.$name.server.log"
    port_open "$port" && die "port $port is already in use (choose others with --port-base)"
    set_server_command "$name" "$mode" "$port"
    local command=(taskset -c "$SERVER_CPU" "${server_command[@]}")
    record_command "$scenario" "$name" server "${command[@]}"
    # taskset execs the server, so $! is the server itself: the pid the bench measures.
    RUST_LOG=info "${command[@]}" >"$log" 2>&1 &
    server_pid=$!
    started+=("$server_pid")
    local tries
    for ((tries = 0; tries < 200; tries++)); do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            tail -n 20 "$log" >&2 || true
            die "$name ($mode) exited before listening on port $port; its log is $log"
        fi
        port_open "$port" && return 0
        sleep 0.05
    done
    tail -n 20 "$log" >&2 || true
    die "$name ($mode) did not listen on port $port within 10 s; its log is $log"
}

stop_server() {
    local pid=$server_pid tries
    kill -TERM "$pid" 2>/dev/null || true
    for ((tries = 0; tries < 100; tries++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    forget "$pid"
    server_pid=""
}

# ---------------------------------------------------------------------------------------
# Scenarios: name, server mode, and the bench arguments (full run, then --quick)

scenario_names=(broadcast fanout echo connections sweep)

scenario_mode() {
    case $1 in
    echo) echo echo ;;
    *) echo broadcast ;;
    esac
}

# The arguments of `loopchat bench` for scenario $1, into the array `bench_args`.
bench_args=()
set_bench_args() {
    local scenario=$1 name=$2
    if ((quick)); then
        local phases=(--duration 1 --warmup 0.5 --drain 1)
        case $scenario in
        broadcast) bench_args=(broadcast --clients 200 --senders 10 --size 64 --window 8 "${phases[@]}") ;;
        fanout) bench_args=(broadcast --clients 1000 --senders 1 --size 64 --rate 50 "${phases[@]}") ;;
        echo) bench_args=(echo --clients 100 --window 8 --size 64 "${phases[@]}") ;;
        connections) bench_args=(connections --clients 1000 --hold 0.5) ;;
        sweep) bench_args=(sweep --clients-list "50,200" --senders 10 --size 64 --window 8 "${phases[@]}"
            --svg "$out/sweep.$name.svg") ;;
        esac
    else
        local phases=(--warmup 1 --drain 3)
        case $scenario in
        broadcast) bench_args=(broadcast --clients 1000 --senders 10 --size 64 --window 8 --duration 10 "${phases[@]}") ;;
        fanout) bench_args=(broadcast --clients 10000 --senders 1 --size 64 --rate 50 --duration 10 "${phases[@]}") ;;
        echo) bench_args=(echo --clients 100 --window 8 --size 64 --duration 10 "${phases[@]}") ;;
        connections) bench_args=(connections --clients 10000 --hold 2) ;;
        sweep) bench_args=(sweep --clients-list "100,1000,10000" --senders 10 --size 64 --window 8 --duration 5 "${phases[@]}"
            --svg "$out/sweep.$name.svg") ;;
        esac
    fi
}

failures=0
started_at=$SECONDS

for index in "${!scenario_names[@]}"; do
    scenario=${scenario_names[$index]}
    mode=$(scenario_mode "$scenario")
    for server_index in "${!servers[@]}"; do
        name=${servers[$server_index]}
        # A port per server and scenario: no run meets the TIME_WAIT sockets of another.
        port=$((port_base + 10 * server_index + index))
        set_bench_args "$scenario" "$name"
        note "$scenario: $name (${bench_args[*]})"
        start_server "$scenario" "$name" "$mode" "$port"
        command=(taskset -c "$BENCH_CPU" "$loopchat" bench "${bench_args[@]}"
            --url "ws://127.0.0.1:$port/ws" --server-pid "$server_pid" --json --label "$name")
        record_command "$scenario" "$name" bench "${command[@]}"
        json="$out/$scenario.$name.json"
        run_started=$SECONDS
        status=ok
        # In the background, so that a signal to this script is handled at once (bash
        # runs traps only between foreground commands) and the clean-up stops the bench.
        "${command[@]}" >"$json" 2>"$out/logs/$scenario.$name.bench.log" &
        bench_pid=$!
        started+=("$bench_pid")
        bench_status=0
        wait "$bench_pid" || bench_status=$?
        forget "$bench_pid"
        if ((bench_status != 0)); then
            status="bench failed (exit $bench_status)"
        elif ! python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$json" 2>/dev/null; then
            status="bench printed no JSON object"
        fi
        if ! kill -0 "$server_pid" 2>/dev/null; then
            note "$scenario: $name: the server died during the run; see $out/logs/$scenario.$name.server.log"
            status="$status, server died"
        fi
        if [[ $status != ok ]]; then
            failures=$((failures + 1))
            note "$scenario: $name: $status; see $out/logs/$scenario.$name.bench.log"
            tail -n 5 "$out/logs/$scenario.$name.bench.log" >&2 || true
            # Keep what it printed for a look, but out of the report's way.
            mv -f "$json" "$out/logs/$scenario.$name.bench.stdout"
        fi
        printf '%s\t%s\t%s\t%s\n' "$scenario" "$name" "$status" "$((SECONDS - run_started))" >>"$out/runs.tsv"
        stop_server
        sleep 1
    done
done

{
    fact load_after "$(cut -d' ' -f1-3 /proc/loadavg)"
    fact runs_seconds "$((SECONDS - started_at))"
} >>"$out/meta.tsv"
note "results in $out ($((SECONDS - started_at)) s of runs)"

if ((report)); then
    if ((quick)); then
        # A smoke run's figures must not replace the real ones in docs/.
        python3 "$ROOT/benches/report.py" "$out" --output "$out/BENCHMARKS.md" --svg-dir "$out"
    else
        python3 "$ROOT/benches/report.py" "$out"
    fi
fi

((failures == 0)) || die "$failures run(s) failed; see $out/runs.tsv and $out/logs/"
