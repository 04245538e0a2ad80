#!/usr/bin/env bash
# Runs the experiments of docs/REPORT.md that benches/compare.sh does not, keeps their raw
# results in docs/report/results/, and redraws the report from them.
#
#   benches/experiments.sh [--quick] [--out DIR] [--no-publish] [--port-base N]
#
# Experiments (the server pinned to CPU 0, the load generator to CPU 1, as compare.sh):
#   write-floor  `loopchat lab write-floor`: a writer thread's CPU per frame for loopback
#                writes of K = 1 to 512 64-byte frames each, to 1,000 connections in
#                turn, nothing else done: the floor under CPU per delivery
#   corking      `loopchat serve --mode broadcast` with its admin port, and `loopchat
#                bench broadcast` at C=1,000, 10 senders, 64 bytes, window W = 1, 2, 4,
#                8, 16, 32, 64 (5 s each): the server's CPU per delivery, and its frames
#                per write from the admin port's /stats (deliveries ÷ writes), read before
#                and after the run (connection set-up and drain included: they add a
#                few thousand writes to millions)
#   stalled      the same server with --max-outbound-bytes 1 MiB, under each
#                slow-consumer policy (close, drop) and with no stalled reader (none):
#                C=200 clients, 10 senders at 100 messages/s each, 1 KiB (1 MB/s to
#                every client), 15 s, plus one client that stops reading
#                (benches/stalled_reader.py); /stats sampled every 100 ms
#                (benches/stats_sampler.py)
#
# Everything goes to target/bench-results/experiments-<UTC timestamp>/ (or --out): the
# JSON of each run, the samples (.jsonl), meta.tsv, commands.tsv, runs.tsv,
# git-status.txt, logs/. Unless --quick or --no-publish, or a run failed, the JSON, JSONL
# and TSV files then replace docs/report/results/, and
#
#   target/release/loopchat lab report
#
# redraws docs/report/*.svg and the generated blocks of docs/REPORT.md from them (and from
# docs/bench/results/ and docs/bench/scaleout/, which compare.sh and scaleout.sh publish).
# --quick runs each experiment briefly at small C, as a smoke test (under a minute).
# A full run takes about 3 minutes once built. Run it on a quiet machine, from a
# committed tree.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
# shellcheck disable=SC2034 # lib.sh uses it
readonly PROG=experiments.sh
readonly PUBLISHED="$ROOT/docs/report/results"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    exit "${1:-0}"
}

quick=0
out=""
publish=1
port_base=18900
while (($# > 0)); do
    case $1 in
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
        printf 'experiments.sh: unknown option %s\n\n' "$1" >&2
        usage 2
        ;;
    esac
    shift
done

if ((quick)); then
    clients=100 duration=1 floor_duration=0.3 windows="1 8"
    floor_k="1,8,64" floor_connections=100
    stalled_clients=50 stalled_duration=3
else
    clients=1000 duration=5 floor_duration=2 windows="1 2 4 8 16 32 64"
    floor_k="1,2,4,8,16,32,64,128,256,512" floor_connections=1000
    stalled_clients=200 stalled_duration=15
fi

check_machine
raise_nofile
open_results experiments-
cd "$ROOT"
{
    git_facts
    machine_facts
    fact quick "$quick"
} >"$out/meta.tsv"

note "building loopchat (release)"
build=(cargo build --release --locked)
record_command setup all build "${build[@]}"
"${build[@]}"
loopchat="$ROOT/target/release/loopchat"
generator=$loopchat
fact loopchat "$("$loopchat" --version)" >>"$out/meta.tsv"
failed=0

# ---------------------------------------------------------------------------------------
note "write-floor: K = $floor_k frames per write, $floor_connections connections"
floor=("$loopchat" lab write-floor --frames-per-write "$floor_k"
    --connections "$floor_connections" --duration "$floor_duration")
record_command write-floor loopchat lab "${floor[@]}"
started_at=$SECONDS
if "${floor[@]}" >"$out/write-floor.json" 2>"$out/logs/write-floor.log"; then
    printf 'write-floor\tloopchat\tok\t%s\n' "$((SECONDS - started_at))" >>"$out/runs.tsv"
else
    printf 'write-floor\tloopchat\tfailed\t%s\n' "$((SECONDS - started_at))" >>"$out/runs.tsv"
    note "write-floor failed; see $out/logs/write-floor.log"
    failed=1
fi

# A compact /stats sample, into FILE.
stats_once() {
    python3 "$ROOT/benches/stats_sampler.py" "http://127.0.0.1:$admin_port/stats" --once \
        --pid "$server_pid" >"$1"
}

port=$port_base
admin_port=$((port_base + 1))

# ---------------------------------------------------------------------------------------
for w in $windows; do
    note "corking: window $w"
    start_server corking "w$w" "$port" "$loopchat" serve --mode broadcast \
        --addr "127.0.0.1:$port" --admin-addr "127.0.0.1:$admin_port"
    stats_once "$out/corking.w$w.stats-before.json"
    run_bench corking "w$w" "$port" broadcast --clients "$clients" --senders 10 --size 64 \
        --window "$w" --duration "$duration"
    [[ $run_status == ok ]] || failed=1
    stats_once "$out/corking.w$w.stats-after.json"
    stop_server
done

# ---------------------------------------------------------------------------------------
sample_stats() {
    python3 "$ROOT/benches/stats_sampler.py" "http://127.0.0.1:$admin_port/stats" \
        --every 0.1 --for "$((stalled_duration + 5))" --pid "$server_pid" \
        >"$out/stalled.$policy.samples.jsonl"
}

for policy in none close drop; do
    note "stalled: policy $policy"
    server=("$loopchat" serve --mode broadcast --addr "127.0.0.1:$port"
        --admin-addr "127.0.0.1:$admin_port" --max-outbound-bytes 1048576)
    [[ $policy == none ]] || server+=(--slow-consumer "$policy")
    start_server stalled "$policy" "$port" "${server[@]}"
    stalled_pid=""
    if [[ $policy != none ]]; then
        reader=(python3 "$ROOT/benches/stalled_reader.py" "127.0.0.1:$port"
            --hold "$((stalled_duration + 6))")
        record_command stalled "$policy" stalled-reader "${reader[@]}"
        "${reader[@]}" >"$out/stalled.$policy.reader.json" 2>"$out/logs/stalled.$policy.reader.log" &
        stalled_pid=$!
        started+=("$stalled_pid")
    fi
    during_bench=sample_stats
    record_command stalled "$policy" sampler python3 benches/stats_sampler.py \
        "http://127.0.0.1:$admin_port/stats" --every 0.1 --for "$((stalled_duration + 5))" \
        --pid '$SERVER_PID'
    run_bench stalled "$policy" "$port" broadcast --clients "$stalled_clients" --senders 10 \
        --size 1024 --rate 100 --duration "$stalled_duration"
    during_bench=""
    [[ $run_status == ok ]] || failed=1
    if [[ -n $stalled_pid ]]; then
        wait "$stalled_pid" || { note "stalled reader failed"; failed=1; }
        forget "$stalled_pid"
    fi
    stop_server
done

# ---------------------------------------------------------------------------------------
if ((quick || !publish || failed)); then
    note "not published (quick, --no-publish or a failed run): results in $out"
    exit "$failed"
fi
note "publishing to $PUBLISHED"
rm -rf -- "$PUBLISHED"
mkdir -p "$PUBLISHED"
cp "$out"/*.json "$out"/*.jsonl "$out"/*.tsv "$out/git-status.txt" "$PUBLISHED/"
"$loopchat" lab report --root "$ROOT"
