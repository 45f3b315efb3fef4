#!/bin/sh
# Run each libFuzzer target for a bounded time on a copy of its seed corpus.
#
#   fuzz/run.sh BUILD_DIR SECONDS [TARGET...]
#
# BUILD_DIR was configured with CC=clang -DTRIAGE_FUZZ=ON. TARGET is one of
# records, match, site, format (default: all). New corpus entries and crash
# artifacts go to $FUZZ_WORK (default BUILD_DIR/fuzz-work); the checked-in
# seeds are not changed. Exits 1 when a target finds a crash, leak or
# timeout; the artifact path is in the log.
set -eu

if [ $# -lt 2 ]; then
    echo "usage: fuzz/run.sh BUILD_DIR SECONDS [TARGET...]" >&2
    exit 2
fi
build=$1
seconds=$2
shift 2
targets=${*:-records match site format}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${FUZZ_WORK:-$build/fuzz-work}
status=0

for target in $targets; do
    case $target in
    records | format) dict=json.dict ;;
    match) dict=regex.dict ;;
    site) dict=lua.dict ;;
    *)
        echo "fuzz/run.sh: unknown target '$target'; expected records, match, site or format" >&2
        exit 2
        ;;
    esac
    binary=$build/fuzz/fuzz_$target
    if [ ! -x "$binary" ]; then
        echo "fuzz/run.sh: $binary not found; configure $build with CC=clang -DTRIAGE_FUZZ=ON and build it" >&2
        exit 2
    fi
    mkdir -p "$work/$target/corpus" "$work/$target/artifacts"
    cp -n "$root/fuzz/corpus/$target/"* "$work/$target/corpus/" 2>/dev/null || true
    log=$work/$target/fuzz.log
    # A site file or record may legitimately take a while under ASan; ten
    # seconds on one input is a hang.
    if "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -dict="$root/fuzz/dict/$dict" -artifact_prefix="$work/$target/artifacts/" \
        "$work/$target/corpus" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        echo "fuzz/run.sh: $target: ${runs:-?} runs in ${seconds} s, no crash, leak or timeout"
    else
        echo "fuzz/run.sh: $target: failed; see $log and $work/$target/artifacts/" >&2
        tail -n 30 "$log" >&2
        status=1
    fi
done
exit $status
