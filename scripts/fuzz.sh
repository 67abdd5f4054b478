#!/usr/bin/env bash
# Runs every cargo fuzz target in fuzz/ for a bounded time and fails on any
# crash, leak, timeout or out-of-memory. CI (.ci/run) runs exactly this.
#
#   scripts/fuzz.sh                  every target, FUZZ_SECONDS each
#   scripts/fuzz.sh stun offer       just those targets
#   FUZZ_SECONDS=600 scripts/fuzz.sh a longer local run
#
# Environment:
#   FUZZ_SECONDS  seconds of fuzzing per target (default 60)
#   FUZZ_JOBS     targets fuzzed at once (default: one per CPU); each still
#                 gets FUZZ_SECONDS of its own
#
# cargo fuzz needs nightly compiler flags (-Zsanitizer=address, coverage
# instrumentation); RUSTC_BOOTSTRAP=1 lets the one stable toolchain accept
# them. The build (ASan, all of uringcast and str0m) goes to fuzz/target and
# is shared by every target. Each target fuzzes a scratch corpus in
# fuzz/target/corpus/<target> (kept between local runs, never committed)
# seeded from the committed fuzz/corpus/ directories listed below. A crash
# is saved under fuzz/artifacts/<target>/; reproduce it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-$(nproc)}
all_targets=(classify stun rtp_header sdp_scan offer sdpfrag patch token routes demux payload_trailer)
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=("${all_targets[@]}")
fi

# The committed seed directories each target reads (those that exist).
seeds_for() {
    local dirs
    case "$1" in
    classify) dirs="classify stun rtp_header rtcp" ;;
    sdp_scan) dirs="sdp_scan offer" ;;
    patch) dirs="patch sdpfrag" ;;
    *) dirs=$1 ;;
    esac
    for d in $dirs; do
        [ -d "fuzz/corpus/$d" ] && echo "fuzz/corpus/$d"
    done
    return 0
}

# Per-target libFuzzer options. SDP offers from browsers are 3-7 KB: let the
# text targets grow inputs that large (libFuzzer's guess is the largest seed).
options_for() {
    case "$1" in
    offer | sdp_scan) echo -max_len=16384 ;;
    *) echo -max_len=4096 ;;
    esac
}

if ! command -v cargo-fuzz >/dev/null; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

started=$(date +%s)
echo "fuzz.sh: building ${#targets[@]} target(s) (ASan, fuzz/target)"
build_started=$(date +%s)
if [ "$#" -gt 0 ]; then
    for t in "${targets[@]}"; do cargo fuzz build "$t"; done
else
    cargo fuzz build
fi
echo "fuzz.sh: build took $(($(date +%s) - build_started)) s"

logs=fuzz/target/logs
mkdir -p "$logs"

# The binaries cargo fuzz built; run directly so nothing rebuilds mid-run.
bin_dir=fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release

run_one() {
    local t=$1 work=fuzz/target/corpus/$1 rc=0
    mkdir -p "$work" "fuzz/artifacts/$t"
    # shellcheck disable=SC2046 # word splitting of the seed dirs and options is wanted
    "$bin_dir/$t" -artifact_prefix="fuzz/artifacts/$t/" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 $(options_for "$t") \
        "$work" $(seeds_for "$t") >"$logs/$t.log" 2>&1 || rc=$?
    echo "$rc" >"$logs/$t.rc"
}

echo "fuzz.sh: fuzzing ${targets[*]} for ${seconds} s each, ${jobs} at a time"
rm -f "$logs"/*.rc
for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
        wait -n || true
    done
    run_one "$t" &
done
wait

failed=()
printf '%-16s %12s %10s %8s  %s\n' target execs execs/s corpus result
for t in "${targets[@]}"; do
    log=$logs/$t.log
    if [ "$(cat "$logs/$t.rc" 2>/dev/null)" = 0 ]; then
        result=ok
    else
        result=FAILED
        failed+=("$t")
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
    corpus=$(find "fuzz/target/corpus/$t" -type f | wc -l)
    printf '%-16s %12s %10s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$corpus" "$result"
done

for t in "${failed[@]}"; do
    echo
    echo "== $t FAILED; the end of $logs/$t.log:"
    tail -n 60 "$logs/$t.log"
done
echo "fuzz.sh: done in $(($(date +%s) - started)) s"
[ "${#failed[@]}" -eq 0 ]
