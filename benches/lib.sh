# shellcheck shell=bash
# Shared by benches/compare.sh and benches/ab.sh; sourced, not run.
#
# What both need: messages, a clean-up that stops every process they started, the
# machine's and the source tree's facts, and one run of the load generator against a
# freshly started server, the server pinned to CPU 0 and the generator to CPU 1.
#
# The caller sets PROG (its name, for messages) and ROOT (the repository), then, before it
# starts anything, `out` (the results folder, made by `open_results`) and `generator` (the
# loopchat binary whose `bench` subcommand generates the load).
#
# Layout of a results folder, as report.py and ab.py read it:
#   <scenario>.<name>.json     what `loopchat bench ... --json` printed, one object per run
#   meta.tsv                   the machine, the versions and the commit, key<TAB>value
#   commands.tsv               every command run, scenario<TAB>name<TAB>kind<TAB>command
#   runs.tsv                   how each run went, scenario<TAB>name<TAB>status<TAB>seconds
#   git-status.txt             `git status --porcelain` of the tree when the run began
#   logs/                      the servers' and the generator's stderr (not published)

readonly SERVER_CPU=0
readonly BENCH_CPU=1

die() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    exit 1
}

note() {
    printf '==> %s\n' "$*" >&2
}

# ---------------------------------------------------------------------------------------
# Clean-up: every process started here is in `started`; the peers' folder goes too.

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
# What the machine must have

check_machine() {
    command -v taskset >/dev/null ||
        die "taskset not found: it is in the util-linux package (apt-get install util-linux)"
    command -v python3 >/dev/null ||
        die "python3 not found (it checks the results and writes the report)"
    cores=$(nproc --all)
    ((cores >= 2)) ||
        die "need 2 CPUs (server on CPU $SERVER_CPU, load on CPU $BENCH_CPU); this machine has $cores"
    ((cores == 2)) ||
        note "$cores CPUs: the server still gets CPU $SERVER_CPU only, the load generator CPU $BENCH_CPU"
}

# Ten thousand connections need ten thousand descriptors on each side. Root may raise
# the hard limit; anyone may raise the soft limit to the hard one.
raise_nofile() {
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    nofile=$(ulimit -n)
    if [[ $nofile != unlimited ]] && ((nofile < 10240)); then
        note "warning: only $nofile file descriptors per process; C=10,000 runs will fail"
        note "(raise the hard limit: ulimit -Hn as root, or /etc/security/limits.conf)"
    fi
}

# ---------------------------------------------------------------------------------------
# The results folder and the record of commands

# Makes the results folder `out` (default: target/bench-results/$1<UTC timestamp>).
open_results() {
    if [[ -z $out ]]; then
        out="$ROOT/target/bench-results/$1$(date -u +%Y%m%dT%H%M%SZ)"
    fi
    mkdir -p "$out/logs"
    out=$(cd "$out" && pwd)
    : >"$out/commands.tsv"
    : >"$out/runs.tsv"
}

# Commands are recorded as a reader would type them: the results folder is written $OUT,
# paths inside the repository are relative to it, and the peers' temporary folder is
# written $PEERS. A word that is exactly `$SERVER_PID` stays as it is.
show_command() {
    local shown="" word
    for word in "$@"; do
        word=${word//"$out/"/"\$OUT/"}
        word=${word//"$ROOT/"/}
        if [[ -n $peers ]]; then
            word=${word//"$peers"/"\$PEERS"}
        fi
        if [[ $word =~ ^[A-Za-z0-9_./:,=@%+\$-]+$ ]]; then
            shown+="$word "
        else
            shown+="'${word//\'/\'\\\'\'}' "
        fi
    done
    printf '%s' "${shown% }"
}

# record_command SCENARIO NAME KIND COMMAND...
record_command() {
    local scenario=$1 name=$2 kind=$3
    shift 3
    record_line "$scenario" "$name" "$kind" "$(show_command "$@")"
}

# record_line SCENARIO NAME KIND TEXT: a command line already written as a reader types it.
record_line() {
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$out/commands.tsv"
}

# ---------------------------------------------------------------------------------------
# Facts, as key<TAB>value lines for meta.tsv

first_line() { "$@" 2>/dev/null | head -n 1 || true; }
sysctl_value() { tr '\t' ' ' <"/proc/sys/$1" 2>/dev/null || echo "?"; }
fact() { printf '%s\t%s\n' "$1" "$2"; }

simd_flags() {
    grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' |
        grep -E '^(sse4_2|avx2|avx512f|avx512bw)$' | tr '\n' ' ' | sed 's/ $//'
}

machine_facts() {
    fact date_utc "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
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
    fact tcp_congestion_control "$(sysctl_value net/ipv4/tcp_congestion_control)"
    fact default_qdisc "$(sysctl_value net/core/default_qdisc)"
    fact tcp_tw_reuse "$(sysctl_value net/ipv4/tcp_tw_reuse)"
    fact ip_local_port_range "$(sysctl_value net/ipv4/ip_local_port_range)"
    fact somaxconn "$(sysctl_value net/core/somaxconn)"
    fact rustc "$(first_line rustc -V)"
    fact taskset "$(first_line taskset --version)"
}

# The commit of the source tree and whether the tree differs from it, with the list of
# what differs in git-status.txt (tracked changes and untracked files; ignored ones, such
# as target/, are not listed). Taken before the build, so it describes what was built.
git_facts() {
    local status
    if ! git -C "$ROOT" rev-parse --verify -q HEAD >/dev/null 2>&1; then
        fact commit "?"
        fact dirty "?"
        : >"$out/git-status.txt"
        return
    fi
    status=$(git -C "$ROOT" status --porcelain=v1 2>/dev/null || true)
    printf '%s' "$status${status:+$'\n'}" >"$out/git-status.txt"
    fact commit "$(git -C "$ROOT" rev-parse HEAD)"
    fact commit_subject "$(git -C "$ROOT" log -1 --format=%s | cut -c1-160)"
    fact commit_date "$(git -C "$ROOT" log -1 --format=%cI)"
    fact branch "$(git -C "$ROOT" rev-parse --abbrev-ref HEAD)"
    if [[ -n $status ]]; then
        fact dirty 1
        fact dirty_paths "$(printf '%s\n' "$status" | wc -l | tr -d ' ')"
    else
        fact dirty 0
        fact dirty_paths 0
    fi
}

# ---------------------------------------------------------------------------------------
# A server and a run of the load generator against it

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

server_pid=""
# The scheme run_bench's URL uses: ws, or wss for a server with TLS.
scheme=ws

# start_server SCENARIO NAME PORT COMMAND...: starts the server pinned to SERVER_CPU, its
# output in logs/SCENARIO.NAME.server.log, and waits until it accepts connections. Dies,
# showing its log, if it does not.
start_server() {
    local scenario=$1 name=$2 port=$3
    shift 3
    local log="$out/logs/$scenario.$name.server.log"
    port_open "$port" && die "port $port is already in use (choose others with --port-base)"
    local command=(taskset -c "${server_cpus:-$SERVER_CPU}" "$@")
    record_command "$scenario" "$name" server "${command[@]}"
    # taskset execs the server, so $! is the server itself: the pid the bench measures.
    RUST_LOG=info "${command[@]}" >"$log" 2>&1 &
    server_pid=$!
    started+=("$server_pid")
    local tries
    for ((tries = 0; tries < 200; tries++)); do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            tail -n 20 "$log" >&2 || true
            die "$scenario: $name exited before listening on port $port; its log is $log"
        fi
        port_open "$port" && return 0
        sleep 0.05
    done
    tail -n 20 "$log" >&2 || true
    die "$scenario: $name did not listen on port $port within 10 s; its log is $log"
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

# A function to run beside the load generator (a profiler, say), or empty. It runs in the
# background, started just after the generator, and is waited for after it.
during_bench=""

# Adds a problem to `run_status`.
add_problem() {
    if [[ $run_status == ok ]]; then
        run_status=$1
    else
        run_status+=", $1"
    fi
}

# run_bench SCENARIO NAME PORT BENCH_ARGS...: runs `$generator bench BENCH_ARGS` pinned to
# BENCH_CPU against the server started last, into SCENARIO.NAME.json; appends to runs.tsv
# and sets `run_status` ("ok", or what went wrong). A failed run's output is moved into
# logs/, out of the reports' way.
run_bench() {
    local scenario=$1 name=$2 port=$3
    shift 3
    local command=(taskset -c "$BENCH_CPU" "$generator" bench "$@"
        --url "$scheme://127.0.0.1:$port/ws" --server-pid "$server_pid" --json --label "$name")
    local shown=("${command[@]}")
    # shellcheck disable=SC2016 # the record says $SERVER_PID, not this run's number
    shown[${#shown[@]} - 4]='$SERVER_PID'
    record_command "$scenario" "$name" bench "${shown[@]}"
    local json="$out/$scenario.$name.json" log="$out/logs/$scenario.$name.bench.log"
    local run_started=$SECONDS bench_pid hook_pid="" bench_status=0
    run_status=ok
    # In the background, so that a signal to the script is handled at once (bash runs
    # traps only between foreground commands) and the clean-up stops the bench.
    "${command[@]}" >"$json" 2>"$log" &
    bench_pid=$!
    started+=("$bench_pid")
    if [[ -n $during_bench ]]; then
        "$during_bench" &
        hook_pid=$!
        started+=("$hook_pid")
    fi
    wait "$bench_pid" || bench_status=$?
    forget "$bench_pid"
    if ((bench_status != 0)); then
        run_status="bench failed (exit $bench_status)"
    elif ! python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$json" 2>/dev/null; then
        run_status="bench printed no JSON object"
    fi
    if [[ $run_status != ok ]]; then
        mv -f "$json" "$out/logs/$scenario.$name.bench.stdout" 2>/dev/null || true
    fi
    if [[ -n $hook_pid ]]; then
        wait "$hook_pid" || add_problem "$during_bench failed"
        forget "$hook_pid"
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        note "$scenario: $name: the server died during the run; see $out/logs/$scenario.$name.server.log"
        add_problem "server died"
    fi
    if [[ $run_status != ok ]]; then
        note "$scenario: $name: $run_status; see $log"
        tail -n 5 "$log" >&2 || true
    fi
    printf '%s\t%s\t%s\t%s\n' "$scenario" "$name" "$run_status" "$((SECONDS - run_started))" >>"$out/runs.tsv"
}
