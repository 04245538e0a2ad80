#!/usr/bin/env bash
# Runs the experiments of docs/REPORT.md that benches/compare.sh does not, keeps their raw
# results in docs/report/results/, and redraws the report from them.
#
#   benches/experiments.sh [--quick] [--out DIR] [--no-publish] [--port-base N]
#
# Experiments (the server pinned to CPU 0, the load generator to CPU 1, as compare.sh):
#   write-floor  `loopchat lab write-floor`: a writer thread's CPU per frame for loopback
#                writes of K = 1 to 512 64-byte frames each, to 1,000 connections in
#                turn, nothing else done: the floor under CPU per delivery; the writer
#                pinned to CPU 0 and the reader to CPU 1; run twice, before and after
#                the corking runs, to show how much it varies
#   corking      `loopchat serve --mode broadcast` with its admin port, and `loopchat
#                bench broadcast` at C=1,000, 10 senders, 64 bytes, window W = 1, 2, 4,
#                8, 16, 32, 64 (5 s each): the server's CPU per delivery, and its frames
#                per write over the same measured window from the admin port's /stats
#                (`loopchat bench --server-stats`: deliveries ÷ writes)
#   stalled      the same server with --max-outbound-bytes 1 MiB, under each
#                slow-consumer policy (close, drop) and with no stalled reader (none):
#                C=200 clients, 10 senders at 100 messages/s each, 1 KiB (1 MB/s to
#                every client), 15 s, plus one client that stops reading
#                (benches/stalled_reader.py), connected before the load starts; /stats
#                sampled every 100 ms from then on (benches/stats_sampler.py, on CPU 1)
#   workers      `loopchat serve --workers N` for N = 1 (pinned to CPU 0) and 2 (CPUs 0
#                and 1: the second is the load generator's too): broadcast mode at
#                C=1,000, 10 senders, 64 bytes, window 8; the chat at C=1,000, 100
#                senders at 10 messages/s each, 200-byte chat JSON (a million deliveries
#                a second offered); and the chat lightly loaded (C=100, 10 senders at 5
#                a second), where latency shows the hop through the hub. Each thread's
#                CPU over the middle 60 % of the measured window (benches/thread_cpu.py)
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
    clients=100 duration=1 floor_duration=0.3 windows="1 8" chat_rate=2
    floor_k="1,8,64" floor_connections=100
    stalled_clients=50 stalled_duration=3
else
    clients=1000 duration=5 floor_duration=2 windows="1 2 4 8 16 32 64" chat_rate=10
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
# write_floor N: one measurement of the floor, into write-floor.N.json.
write_floor() {
    local floor=(taskset -c "$SERVER_CPU,$BENCH_CPU" "$loopchat" lab write-floor
        --frames-per-write "$floor_k" --connections "$floor_connections"
        --duration "$floor_duration" --writer-cpu "$SERVER_CPU" --reader-cpu "$BENCH_CPU")
    note "write-floor $1: K = $floor_k frames per write, $floor_connections connections"
    record_command write-floor "$1" lab "${floor[@]}"
    local started_at=$SECONDS
    if "${floor[@]}" >"$out/write-floor.$1.json" 2>"$out/logs/write-floor.$1.log"; then
        printf 'write-floor\t%s\tok\t%s\n' "$1" "$((SECONDS - started_at))" >>"$out/runs.tsv"
    else
        printf 'write-floor\t%s\tfailed\t%s\n' "$1" "$((SECONDS - started_at))" >>"$out/runs.tsv"
        note "write-floor $1 failed; see $out/logs/write-floor.$1.log"
        rm -f "$out/write-floor.$1.json"
        failed=1
    fi
}

port=$port_base
admin_port=$((port_base + 1))
stats_url="http://127.0.0.1:$admin_port/stats"

write_floor 1

# ---------------------------------------------------------------------------------------
for w in $windows; do
    note "corking: window $w"
    start_server corking "w$w" "$port" "$loopchat" serve --mode broadcast \
        --addr "127.0.0.1:$port" --admin-addr "127.0.0.1:$admin_port"
    run_bench corking "w$w" "$port" broadcast --clients "$clients" --senders 10 --size 64 \
        --window "$w" --duration "$duration" --server-stats "$stats_url"
    [[ $run_status == ok ]] || failed=1
    stop_server
done

write_floor 2

# ---------------------------------------------------------------------------------------
# The stalled reader connects first, then sampling starts, then the load.
sample_for=$((stalled_duration + 5))
for policy in none close drop; do
    note "stalled: policy $policy"
    server=("$loopchat" serve --mode broadcast --addr "127.0.0.1:$port"
        --admin-addr "127.0.0.1:$admin_port" --max-outbound-bytes 1048576)
    [[ $policy == none ]] || server+=(--slow-consumer "$policy")
    start_server stalled "$policy" "$port" "${server[@]}"
    stalled_pid=""
    if [[ $policy != none ]]; then
        reader=(taskset -c "$BENCH_CPU" python3 "$ROOT/benches/stalled_reader.py"
            "127.0.0.1:$port" --hold "$((sample_for + 2))")
        record_command stalled "$policy" stalled-reader "${reader[@]}"
        reader_log="$out/logs/stalled.$policy.reader.log"
        "${reader[@]}" >"$out/stalled.$policy.reader.json" 2>"$reader_log" &
        stalled_pid=$!
        started+=("$stalled_pid")
        for ((tries = 0; tries < 200; tries++)); do
            grep -q connected "$reader_log" 2>/dev/null && break
            kill -0 "$stalled_pid" 2>/dev/null || break
            sleep 0.05
        done
        grep -q connected "$reader_log" 2>/dev/null ||
            die "stalled: the stalled reader did not connect; see $reader_log"
    fi
    sampler=(taskset -c "$BENCH_CPU" python3 "$ROOT/benches/stats_sampler.py" "$stats_url"
        --every 0.1 --for "$sample_for" --pid "$server_pid")
    shown=("${sampler[@]}")
    # shellcheck disable=SC2016 # the record says $SERVER_PID, not this run's number
    shown[${#shown[@]} - 1]='$SERVER_PID'
    record_command stalled "$policy" sampler "${shown[@]}"
    "${sampler[@]}" >"$out/stalled.$policy.samples.jsonl" 2>"$out/logs/stalled.$policy.sampler.log" &
    sampler_pid=$!
    started+=("$sampler_pid")
    run_bench stalled "$policy" "$port" broadcast --clients "$stalled_clients" --senders 10 \
        --size 1024 --rate 100 --duration "$stalled_duration"
    [[ $run_status == ok ]] || failed=1
    wait "$sampler_pid" || { note "stalled: the sampler failed"; failed=1; }
    forget "$sampler_pid"
    if [[ -n $stalled_pid ]]; then
        wait "$stalled_pid" || { note "stalled: the stalled reader failed"; failed=1; }
        forget "$stalled_pid"
    fi
    stop_server
done

# ---------------------------------------------------------------------------------------
# Workers: the same load on one worker (pinned to CPU 0) and on two (CPUs 0 and 1, the
# second shared with the load generator). Each thread's CPU over the middle of the
# measured window is read from /proc (benches/thread_cpu.py): the workers' and, in chat
# mode, the hub thread's.
threads_of() {
    local name=$1
    local sampler=(python3 "$ROOT/benches/thread_cpu.py" "$server_pid"
        --after "$workers_after" --for "$workers_span")
    local shown=("${sampler[@]}")
    # shellcheck disable=SC2016 # the record says $SERVER_PID, not this run's number
    shown[2]='$SERVER_PID'
    record_command workers "$name" threads "${shown[@]}"
    "${sampler[@]}" >"$out/workers.$name.threads.json" 2>"$out/logs/workers.$name.threads.log"
}
workers_after=$(python3 -c "print(1 + $duration * 0.2)")
workers_span=$(python3 -c "print($duration * 0.6)")
for mode in broadcast chat chat-light; do
    for n in 1 2; do
        name="$mode-$n"
        note "workers: $name"
        server_cpus=$SERVER_CPU
        ((n == 1)) || server_cpus="$SERVER_CPU,$BENCH_CPU"
        start_server workers "$name" "$port" "$loopchat" serve --mode "${mode%-light}" \
            --workers "$n" --addr "127.0.0.1:$port"
        unset server_cpus
        during_bench=threads_of_run
        threads_of_run() { threads_of "$name"; }
        case $mode in
        broadcast)
            run_bench workers "$name" "$port" broadcast --clients "$clients" --senders 10 \
                --size 64 --window 8 --duration "$duration"
            ;;
        chat)
            run_bench workers "$name" "$port" broadcast --clients "$clients" --senders 100 \
                --rate "$chat_rate" --payload chat-json --size 200 --self-delivery \
                --duration "$duration"
            ;;
        chat-light)
            run_bench workers "$name" "$port" broadcast --clients 100 --senders 10 \
                --rate 5 --payload chat-json --size 200 --self-delivery \
                --duration "$duration"
            ;;
        esac
        during_bench=""
        [[ $run_status == ok ]] || failed=1
        stop_server
    done
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
