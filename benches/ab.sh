#!/usr/bin/env bash
# A/B of two loopchat builds: server CPU per delivery in the broadcast scenario, measured
# in one run, the two binaries taking turns.
#
#   benches/ab.sh [--rounds N] [--labels A,B] [--generator BINARY] [--out DIR]
#                 [--port-base N] [--quick] OLD_BINARY NEW_BINARY
#
# Each round runs each binary once, as `BINARY serve --mode broadcast`, freshly started
# and pinned to CPU 0, under the load of `loopchat bench broadcast --clients 1000
# --senders 10 --size 64 --window 8 --duration 10 --warmup 1 --drain 3` pinned to CPU 1:
# the broadcast scenario of benches/compare.sh. The order alternates (A B, B A, A B, ...)
# so that a drift of the machine weighs on both alike. Both are measured by the same load
# generator, the `bench` subcommand of --generator (default: OLD_BINARY), so a change in
# the generator cannot pass for a change in the server. --rounds is 6 by default: twelve
# runs of about 15 s, some 3 minutes in all.
#
# Results go to target/bench-results/ab-<UTC timestamp>/ unless --out says otherwise:
# rNN.A.json and rNN.B.json (what the generator printed for round NN), meta.tsv (the
# machine, both binaries with their sha256, the generator, the commit of this tree),
# commands.tsv, runs.tsv, logs/, and summary.md, which benches/ab.py writes from the JSON
# and prints: for each binary the median server CPU per delivery, its range and spread,
# then the ratio NEW/OLD of the medians and of each round's pair, and whether it is within
# --limit % (5 by default; `python3 benches/ab.py DIR --limit N` writes it again).
#
# --quick: C=200, 1 s measured, 2 rounds unless --rounds says otherwise: a smoke test of
# the script, not a measurement. Run the real thing on a quiet machine: anything else
# running shares the two cores being measured.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
readonly PROG=ab.sh
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    exit "${1:-0}"
}

rounds=""
labels="A,B"
generator=""
out=""
port_base=18800
quick=0
limit=5
binaries=()

while (($# > 0)); do
    case $1 in
    --rounds)
        if (($# < 2)) || ! [[ $2 =~ ^[1-9][0-9]*$ ]]; then
            die "--rounds needs a number of rounds, 1 or more"
        fi
        rounds=$2
        shift
        ;;
    --labels)
        if (($# < 2)) || ! [[ $2 =~ ^[^,]+,[^,]+$ ]]; then
            die "--labels needs two names, such as before,after"
        fi
        labels=$2
        shift
        ;;
    --generator)
        (($# >= 2)) || die "--generator needs a loopchat binary"
        generator=$2
        shift
        ;;
    --out)
        (($# >= 2)) || die "--out needs a folder"
        out=$2
        shift
        ;;
    --port-base)
        if (($# < 2)) || ! [[ $2 =~ ^[0-9]+$ ]]; then
            die "--port-base needs a port number"
        fi
        port_base=$2
        shift
        ;;
    --limit)
        if (($# < 2)) || ! [[ $2 =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
            die "--limit needs a percentage"
        fi
        limit=$2
        shift
        ;;
    --quick) quick=1 ;;
    -h | --help) usage 0 ;;
    -*)
        printf 'ab.sh: unknown option %s\n\n' "$1" >&2
        usage 2
        ;;
    *) binaries+=("$1") ;;
    esac
    shift
done

((${#binaries[@]} == 2)) || {
    printf 'ab.sh: give two loopchat binaries, OLD then NEW\n\n' >&2
    usage 2
}
# Absolute paths, so that the record says which files were run.
for i in 0 1; do
    [[ -f ${binaries[$i]} && -x ${binaries[$i]} ]] || die "${binaries[$i]} is not an executable file"
    binaries[i]=$(cd "$(dirname "${binaries[$i]}")" && pwd)/$(basename "${binaries[$i]}")
done
generator=${generator:-${binaries[0]}}
[[ -x $generator ]] || die "--generator: $generator is not an executable file"
generator=$(cd "$(dirname "$generator")" && pwd)/$(basename "$generator")
"$generator" bench --help >/dev/null 2>&1 ||
    die "$generator has no 'bench' subcommand (choose the load generator with --generator)"
if [[ -z $rounds ]]; then
    rounds=$((quick ? 2 : 6))
fi

check_machine
raise_nofile

if ((quick)); then
    bench_args=(broadcast --clients 200 --senders 10 --size 64 --window 8 --duration 1 --warmup 0.5 --drain 1)
else
    bench_args=(broadcast --clients 1000 --senders 10 --size 64 --window 8 --duration 10 --warmup 1 --drain 3)
fi

open_results "ab-"
cd "$ROOT"
{
    fact kind ab
    fact quick "$quick"
    fact rounds "$rounds"
    fact limit_pct "$limit"
    fact label_a "${labels%%,*}"
    fact label_b "${labels#*,}"
    for side in a b; do
        binary=${binaries[$([[ $side == a ]] && echo 0 || echo 1)]}
        fact "binary_$side" "$binary"
        fact "sha256_$side" "$(sha256sum "$binary" | cut -d' ' -f1)"
        fact "version_$side" "$(first_line "$binary" --version)"
        fact "mtime_$side" "$(date -u -r "$binary" +%Y-%m-%dT%H:%M:%SZ)"
    done
    fact generator "$generator"
    fact generator_sha256 "$(sha256sum "$generator" | cut -d' ' -f1)"
    machine_facts
    git_facts
} >"$out/meta.tsv"

started_at=$SECONDS
failures=0
run_index=0
for ((round = 1; round <= rounds; round++)); do
    # A B in odd rounds, B A in even ones.
    if ((round % 2)); then order=(A B); else order=(B A); fi
    scenario=$(printf 'r%02d' "$round")
    for side in "${order[@]}"; do
        binary=${binaries[$([[ $side == A ]] && echo 0 || echo 1)]}
        port=$((port_base + run_index))
        run_index=$((run_index + 1))
        note "round $round of $rounds: $side ($binary)"
        start_server "$scenario" "$side" "$port" "$binary" serve --mode broadcast --addr "127.0.0.1:$port"
        run_bench "$scenario" "$side" "$port" "${bench_args[@]}"
        [[ $run_status == ok ]] || failures=$((failures + 1))
        stop_server
        sleep 1
    done
done

{
    fact load_after "$(cut -d' ' -f1-3 /proc/loadavg)"
    fact runs_seconds "$((SECONDS - started_at))"
} >>"$out/meta.tsv"
note "results in $out ($((SECONDS - started_at)) s of runs)"

python3 "$ROOT/benches/ab.py" "$out" --limit "$limit"
((failures == 0)) || die "$failures run(s) failed; see $out/runs.tsv and $out/logs/"
