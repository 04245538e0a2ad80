#!/usr/bin/env bash
# Runs the same load against loopchat, Node's `ws` and Bun's `Bun.serve`, side by side,
# profiles loopchat in the broadcast scenario, copies the raw results into
# docs/bench/results/ and regenerates docs/BENCHMARKS.md from that copy.
#
#   benches/compare.sh [--quick] [--only loopchat,ws,bun] [--out DIR] [--no-report]
#                      [--no-profile] [--port-base N]
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
#   deflate-plain       broadcast C=1,000, 10 senders, window 8, 1 KiB chat-like JSON
#                       (`--payload chat-json`), 10 s, no client offering permessage-deflate:
#                       the baseline of the next
#   deflate             the same with every client negotiating permessage-deflate
#   deflate-connections C=10,000 idle connections with permessage-deflate negotiated
#   tls-broadcast       the broadcast scenario over wss:// (loopchat and Bun only)
#   tls-echo            the echo scenario over wss://
#   tls-connections     C=10,000 idle connections over TLS: memory per connection
# For the TLS scenarios a CA and a certificate for 127.0.0.1 signed by it are made with
# openssl for the run (kept in the results folder, never published); the servers load
# the certificate (loopchat --tls-cert/--tls-key, Bun.serve's tls) and the load
# generator trusts the CA (--ca-file). Node's ws relay is not measured over TLS.
# In the three deflate scenarios the peers run with their compression on (--deflate:
# see benches/peers/); loopchat has it on by default.
# Then, unless --no-profile or perf is missing, the broadcast scenario twice more against
# loopchat alone: once under `perf stat` (system calls and CPU time, for CPU per write and
# deliveries per write) and once under `perf record -g` (where the CPU time goes). These
# runs are apart from the scenarios, so the profiler never weighs on the tables' figures.
#
# Everything goes first to target/bench-results/<UTC timestamp>/ (or --out): one JSON per
# scenario and server, meta.tsv (machine, versions, and the commit measured, with whether
# the tree was dirty; git-status.txt lists what differed), commands.tsv (the exact
# commands), runs.tsv, the profiler's outputs, and logs/. A full run of all three servers
# in which every run succeeded is then published: docs/bench/results/ is replaced by that
# folder's JSON, TSV and profile files (not its logs), and docs/BENCHMARKS.md (with
# docs/bench/sweep.svg and the figures block of README.md) is written from
# docs/bench/results/ by
#
#   python3 benches/report.py docs/bench/results --readme README.md
#
# which anyone can run again to regenerate the page from the committed results; then
# docs/REPORT.md, which draws on them too, is redrawn (`loopchat lab report`). A run
# that is --quick, --only some servers, or has a failure is not published: its report is
# written into its own results folder, so it never replaces real figures.
#
# --quick runs every scenario with small C and 1-second phases, as a smoke test of the
# whole pipeline (about a minute once built).
#
# The peers are installed with npm into a temporary folder that is removed at exit. A
# full run should take about 5 minutes once built (the phases add up to that; the report
# gives the time the run took). Run it on a quiet machine, from a committed tree:
# anything else running shares the two cores being measured, and the report names the
# commit and says whether the tree was dirty.

set -euo pipefail

# The peers' versions. ws: the latest 8.x at install time (recorded in the results).
readonly WS_SPEC="ws@8"
readonly BUN_SPEC="@oven/bun-linux-x64@1.4.5"
readonly ALL_SERVERS="loopchat,ws,bun"
# What `perf stat` counts in the profile run: CPU time, and the system calls of the loop.
PERF_STAT_EVENTS="task-clock,context-switches,duration_time"
PERF_STAT_EVENTS+=",syscalls:sys_enter_writev,syscalls:sys_enter_write"
PERF_STAT_EVENTS+=",syscalls:sys_enter_recvfrom,syscalls:sys_enter_read,syscalls:sys_enter_epoll_wait"
readonly PERF_STAT_EVENTS
readonly PERF_RECORD_HZ=999

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
readonly PROG=compare.sh
readonly PUBLISHED="$ROOT/docs/bench/results"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    exit "${1:-0}"
}

# ---------------------------------------------------------------------------------------
# Options

quick=0
only=$ALL_SERVERS
out=""
report=1
profile=1
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
    --no-profile) profile=0 ;;
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

check_machine
command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs)"
if wants ws || wants bun; then
    command -v npm >/dev/null || die "npm not found: install Node.js 20 or later with npm"
fi
if wants ws; then
    command -v node >/dev/null || die "node not found: install Node.js 20 or later"
fi
raise_nofile

# The profile runs need perf, and its syscall tracepoints (root, or a low
# kernel.perf_event_paranoid). Without them the report says the profile was not taken.
profile_skipped=""
if ((profile)) && wants loopchat; then
    if ! command -v perf >/dev/null; then
        profile_skipped="perf not found (Debian package linux-perf)"
    elif ! perf stat -x "," -e "$PERF_STAT_EVENTS" -o /dev/null -- true >/dev/null 2>&1; then
        profile_skipped="perf stat cannot count $PERF_STAT_EVENTS here (root, or kernel.perf_event_paranoid)"
    fi
    [[ -z $profile_skipped ]] || note "no profile: $profile_skipped"
fi

# ---------------------------------------------------------------------------------------
# Results folder, the commit, build, peers

open_results ""
cd "$ROOT"
git_facts >"$out/git.tsv"
if grep -q '^dirty	1' "$out/git.tsv"; then
    note "warning: the tree differs from its commit (see $out/git-status.txt); the report will say so"
fi

note "building loopchat (release)"
build=(cargo build --release --locked)
record_command setup all build "${build[@]}"
"${build[@]}"
loopchat="$ROOT/target/release/loopchat"
generator=$loopchat
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
# The machine, the versions and the commit, as key<TAB>value lines for report.py

{
    fact quick "$quick"
    fact servers "$(IFS=, && echo "${servers[*]}")"
    machine_facts
    cat "$out/git.tsv"
    fact loopchat "$(first_line "$loopchat" --version)"
    if [[ -n $peers ]]; then
        fact node "$(first_line node --version)"
        fact npm "$(first_line npm --version)"
        fact ws "$(node -p 'require(process.argv[1]).version' "$peers/node_modules/ws/package.json" 2>/dev/null || echo "?")"
        fact bun "$(first_line "$bun" --version)"
        fact ws_spec "$WS_SPEC"
        fact bun_spec "$BUN_SPEC"
    fi
    if ((profile)) && wants loopchat && [[ -z $profile_skipped ]]; then
        fact perf "$(first_line perf --version)"
    fi
} >"$out/meta.tsv"
rm -f "$out/git.tsv"

# ---------------------------------------------------------------------------------------
# Servers

# The command line of server $1 in mode $2 on port $3, into the array `server_command`;
# with $4 = deflate, a peer has its permessage-deflate on (loopchat's is on by default);
# with $4 = tls, the server serves wss:// with the run's certificate.
server_command=()
set_server_command() {
    local name=$1 mode=$2 port=$3 deflate=${4:-}
    local peer_flags=() tls_flags=()
    [[ $deflate == deflate ]] && peer_flags=(--deflate)
    if [[ $deflate == tls ]]; then
        tls_flags=(--tls-cert "$tls_dir/cert.pem" --tls-key "$tls_dir/key.pem")
        peer_flags=("${tls_flags[@]}")
    fi
    case $name in
    loopchat) server_command=("$loopchat" serve --mode "$mode" --addr "127.0.0.1:$port" "${tls_flags[@]}") ;;
    ws) server_command=(node "$peers/ws_server.mjs" --port "$port" --mode "$mode" "${peer_flags[@]}") ;;
    bun) server_command=("$bun" "$peers/bun_server.js" --port "$port" --mode "$mode" "${peer_flags[@]}") ;;
    esac
}

# Whether scenario $1 runs the servers with permessage-deflate on ("deflate") or with
# TLS ("tls"), or neither ("").
scenario_deflate() {
    case $1 in
    deflate*) echo deflate ;;
    tls-*) echo tls ;;
    *) echo "" ;;
    esac
}

# ---------------------------------------------------------------------------------------
# Scenarios: name, server mode, and the bench arguments (full run, then --quick)

scenario_names=(broadcast fanout echo connections sweep deflate-plain deflate deflate-connections
    tls-broadcast tls-echo tls-connections)

scenario_mode() {
    case $1 in
    echo | tls-echo) echo echo ;;
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
        deflate-plain) bench_args=(broadcast --clients 200 --senders 10 --size 1024 --payload chat-json
            --window 8 "${phases[@]}") ;;
        deflate) bench_args=(broadcast --clients 200 --senders 10 --size 1024 --payload chat-json
            --window 8 --deflate "${phases[@]}") ;;
        deflate-connections) bench_args=(connections --clients 1000 --hold 0.5 --deflate) ;;
        tls-broadcast) bench_args=(broadcast --clients 200 --senders 10 --size 64 --window 8 "${phases[@]}") ;;
        tls-echo) bench_args=(echo --clients 100 --window 8 --size 64 "${phases[@]}") ;;
        tls-connections) bench_args=(connections --clients 1000 --hold 0.5) ;;
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
        deflate-plain) bench_args=(broadcast --clients 1000 --senders 10 --size 1024 --payload chat-json
            --window 8 --duration 10 "${phases[@]}") ;;
        deflate) bench_args=(broadcast --clients 1000 --senders 10 --size 1024 --payload chat-json
            --window 8 --deflate --duration 10 "${phases[@]}") ;;
        deflate-connections) bench_args=(connections --clients 10000 --hold 2 --deflate) ;;
        tls-broadcast) bench_args=(broadcast --clients 1000 --senders 10 --size 64 --window 8 --duration 10 "${phases[@]}") ;;
        tls-echo) bench_args=(echo --clients 100 --window 8 --size 64 --duration 10 "${phases[@]}") ;;
        tls-connections) bench_args=(connections --clients 10000 --hold 2) ;;
        esac
    fi
    if [[ $scenario == tls-* ]]; then
        bench_args+=(--ca-file "$tls_dir/ca.pem")
    fi
}

# A CA and a certificate for 127.0.0.1 signed by it, for the TLS scenarios: made for the
# run, in the results folder, never published.
tls_dir="$out/tls"
make_tls_certificate() {
    mkdir -p "$tls_dir"
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
    openssl req -x509 "${ec[@]}" -days 2 -keyout "$tls_dir/ca.key" -out "$tls_dir/ca.pem" \
        -subj /CN=loopchat-bench-ca 2>/dev/null
    openssl req "${ec[@]}" -keyout "$tls_dir/key.pem" -out "$tls_dir/cert.csr" \
        -subj /CN=127.0.0.1 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$tls_dir/ext.cnf"
    openssl x509 -req -in "$tls_dir/cert.csr" -CA "$tls_dir/ca.pem" -CAkey "$tls_dir/ca.key" \
        -CAcreateserial -days 2 -extfile "$tls_dir/ext.cnf" -out "$tls_dir/cert.pem" 2>/dev/null
}
command -v openssl >/dev/null || die "openssl not found: the TLS scenarios make their certificate with it"
make_tls_certificate

# The profiler starts this long after the load generator, once the clients are connected
# and the warm-up is over, and runs for profile_length seconds: inside the measured window.
if ((quick)); then
    profile_delay=0.7
    profile_length=0.6
else
    profile_delay=2
    profile_length=7
fi

failures=0
started_at=$SECONDS

for index in "${!scenario_names[@]}"; do
    scenario=${scenario_names[$index]}
    mode=$(scenario_mode "$scenario")
    for server_index in "${!servers[@]}"; do
        name=${servers[$server_index]}
        if [[ $scenario == tls-* && $name == ws ]]; then
            continue # the ws relay has no TLS option
        fi
        scheme=ws
        [[ $scenario == tls-* ]] && scheme=wss
        # A port per server and scenario: no run meets the TIME_WAIT sockets of another.
        port=$((port_base + 20 * server_index + index))
        set_bench_args "$scenario" "$name"
        note "$scenario: $name (${bench_args[*]})"
        set_server_command "$name" "$mode" "$port" "$(scenario_deflate "$scenario")"
        start_server "$scenario" "$name" "$port" "${server_command[@]}"
        run_bench "$scenario" "$name" "$port" "${bench_args[@]}"
        [[ $run_status == ok ]] || failures=$((failures + 1))
        stop_server
        sleep 1
    done
done
scheme=ws

# ---------------------------------------------------------------------------------------
# The profile of loopchat in the broadcast scenario

# The profiler's command for step $1 (stat or record), into the array `perf_command`,
# with the server's pid written as the word $SERVER_PID: as the record shows it.
perf_command=()
set_perf_command() {
    # shellcheck disable=SC2016
    case $1 in
    stat) perf_command=(perf stat -x "," -e "$PERF_STAT_EVENTS" -o "$out/profile.perf-stat.csv"
        -p '$SERVER_PID' -- sleep "$profile_length") ;;
    record) perf_command=(perf record -g -F "$PERF_RECORD_HZ" -o "$out/logs/profile.perf.data"
        -p '$SERVER_PID' -- sleep "$profile_length") ;;
    esac
}

# Runs beside the load generator (see run_bench): waits out the connections and the
# warm-up, then profiles the server for profile_length seconds.
profile_server() {
    sleep "$profile_delay"
    # shellcheck disable=SC2016
    "${perf_command[@]/#'$SERVER_PID'/$server_pid}" >"$out/logs/$scenario.perf.log" 2>&1
}

# perf report KIND ARGS...: one table of the recorded profile, as text, into
# profile.perf-KIND.txt. Symbols are resolved now, while the binary is the one measured.
perf_report() {
    local kind=$1
    shift
    local command=(perf report -i "$out/logs/profile.perf.data" --stdio -g none "$@")
    record_line profile-record loopchat report \
        "$(show_command "${command[@]}") > \$OUT/profile.perf-$kind.txt"
    "${command[@]}" >"$out/profile.perf-$kind.txt" 2>>"$out/logs/profile.perf-report.log"
}

if ((profile)) && wants loopchat; then
    mode=broadcast
    set_bench_args broadcast loopchat
    if [[ -n $profile_skipped ]]; then
        printf '%s\t%s\t%s\t%s\n' profile loopchat "skipped: $profile_skipped" 0 >>"$out/runs.tsv"
    else
        profile_index=0
        for step in stat record; do
            scenario="profile-$step"
            port=$((port_base + 70 + profile_index))
            profile_index=$((profile_index + 1))
            note "$scenario: loopchat (${bench_args[*]}; perf $step from ${profile_delay} s for ${profile_length} s)"
            set_server_command loopchat "$mode" "$port"
            start_server "$scenario" loopchat "$port" "${server_command[@]}"
            set_perf_command "$step"
            record_line "$scenario" loopchat profile \
                "sleep $profile_delay && $(show_command "${perf_command[@]}")"
            during_bench=profile_server
            run_bench "$scenario" loopchat "$port" "${bench_args[@]}"
            during_bench=""
            [[ $run_status == ok ]] || failures=$((failures + 1))
            stop_server
            sleep 1
        done
        if [[ -s $out/logs/profile.perf.data ]]; then
            perf_report objects --no-children --sort dso ||
                failures=$((failures + 1))
            perf_report self --no-children --sort dso,sym --percent-limit 0.5 ||
                failures=$((failures + 1))
            perf_report children --children --sort dso,sym --percent-limit 3 ||
                failures=$((failures + 1))
        fi
    fi
fi

{
    fact load_after "$(cut -d' ' -f1-3 /proc/loadavg)"
    fact runs_seconds "$((SECONDS - started_at))"
} >>"$out/meta.tsv"
note "results in $out ($((SECONDS - started_at)) s of runs)"

# ---------------------------------------------------------------------------------------
# The report: published beside docs/BENCHMARKS.md, or kept in the results folder

publish=1
why_not=""
if ((quick)); then
    why_not="a smoke run (--quick)"
elif [[ $(IFS=, && echo "${servers[*]}") != "$ALL_SERVERS" ]]; then
    why_not="not every server was run (--only)"
elif ((failures > 0)); then
    why_not="$failures run(s) failed"
fi
[[ -z $why_not ]] || publish=0

if ((report)); then
    if ((publish)); then
        note "publishing the results to ${PUBLISHED#"$ROOT/"}/ and regenerating docs/BENCHMARKS.md"
        rm -rf -- "$PUBLISHED"
        mkdir -p "$PUBLISHED"
        cp -- "$out"/*.json "$out"/meta.tsv "$out"/commands.tsv "$out"/runs.tsv \
            "$out"/git-status.txt "$PUBLISHED/"
        for file in "$out"/profile.*; do
            [[ -f $file ]] && cp -- "$file" "$PUBLISHED/"
        done
        python3 "$ROOT/benches/report.py" "$PUBLISHED" --readme "$ROOT/README.md"
        # docs/REPORT.md draws on these results too.
        "$loopchat" lab report --root "$ROOT"
    else
        note "not publishing to docs/: $why_not; the report is $out/BENCHMARKS.md"
        python3 "$ROOT/benches/report.py" "$out" --output "$out/BENCHMARKS.md" --svg-dir "$out"
    fi
fi

((failures == 0)) || die "$failures run(s) failed; see $out/runs.tsv and $out/logs/"
