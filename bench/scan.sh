#!/bin/sh
# Benchmark of `triage scan` against the I/O floor and a naive loop.
#
# usage: bench/scan.sh [BUILD_DIR [WORK_DIR]]
#   BUILD_DIR  a Release build of this tree (default: build-bench, configured
#              and built here when missing)
#   WORK_DIR   where the generated input and caches go (default: a new
#              folder under /tmp); never inside the repository
#
# Input: the shared loghub and fail2ban logs (fail2ban's "#" notes removed)
# repeated to about 110 MB. Records: the public corpus of 2,522 records.
# Prints a Markdown table for bench/README.md. Run from the repository root,
# on an otherwise idle machine: the numbers are wall-clock times.
set -eu

ROOT=$(pwd)
SHARED=${TRIAGE_SHARED_DIR:-$ROOT/../shared}
BUILD=${1:-$ROOT/build-bench}
WORK=${2:-$(mktemp -d /tmp/triage-bench.XXXXXX)}
RECORDS=$SHARED/corpora/deadends/canons
TARGET_BYTES=110000000

if [ ! -x "$BUILD/triage" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" -j"$(nproc)" --target triage >/dev/null
fi
cmake --build "$BUILD" --target scan_naive >/dev/null
TRIAGE=$BUILD/triage
NAIVE=$BUILD/scan_naive

mkdir -p "$WORK"
INPUT=$WORK/input.log
if [ ! -s "$INPUT" ]; then
    ONE=$WORK/one-pass.log
    cat "$SHARED"/logs/loghub/*.log "$SHARED"/logs/fail2ban/* | grep -v '^#' >"$ONE"
    : >"$INPUT"
    while [ "$(wc -c <"$INPUT")" -lt "$TARGET_BYTES" ]; do
        cat "$ONE" >>"$INPUT"
    done
    rm -f "$ONE"
fi
LINES=$(wc -l <"$INPUT")
BYTES=$(wc -c <"$INPUT")
SAMPLE=$WORK/sample.log
head -n 2000 "$INPUT" >"$SAMPLE"

# measure COMMAND...: wall seconds, peak RSS (KiB) and CPU seconds (user
# plus system) of one run.
measure() {
    /usr/bin/time -f '%e %M %U %S' -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err" || {
        echo "bench: '$*' failed:" >&2
        cat "$WORK/err" >&2
        exit 1
    }
    awk '{ printf "%s %s %.2f\n", $1, $2, $3 + $4 }' "$WORK/time"
}

# median RUNS COMMAND...: the run with the median wall time of RUNS runs, as
# measure prints it; the others go to $WORK/runs, one per line.
median() {
    runs=$1
    shift
    : >"$WORK/runs"
    for _ in $(seq "$runs"); do
        measure "$@" >>"$WORK/runs"
    done
    sort -n "$WORK/runs" | sed -n "$(((runs + 1) / 2))p"
}

spread() { # the fastest and slowest wall times of the last median call
    sort -n "$WORK/runs" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s-%s s", lo, hi }'
}

row() { # name seconds rss cpu lines bytes
    awk -v name="$1" -v s="$2" -v rss="$3" -v cpu="$4" -v lines="$5" -v bytes="$6" 'BEGIN {
        if (s < 0.01) s = 0.01
        printf "| %s | %.2f | %.2f | %.0f | %.1f | %.0f |\n", name, s, cpu, lines / s, bytes / s / 1e6, rss / 1024 }'
}

echo "Input: $LINES lines, $BYTES bytes; records: $(find "$RECORDS" -name '*.json' | wc -l) files"
echo
echo "| run | wall s | CPU s | lines/s | MB/s | peak RSS MiB |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"

set -- $(measure cat "$INPUT")
row "cat FILE > /dev/null" "$1" "$2" "$3" "$LINES" "$BYTES"

export XDG_CACHE_HOME="$WORK/cache"
rm -rf "$XDG_CACHE_HOME"
set -- $(measure "$TRIAGE" scan --no-site-layers --records "$RECORDS" --format json "$INPUT")
row "triage scan, cold cache" "$1" "$2" "$3" "$LINES" "$BYTES"
SCANNED=$(grep -m1 '"lines":' "$WORK/out" | tr -dc 0-9)
if [ "$SCANNED" != "$LINES" ]; then
    echo "bench: the summary counts $SCANNED lines, the file has $LINES" >&2
    exit 1
fi

set -- $(median 5 "$TRIAGE" scan --no-site-layers --records "$RECORDS" --format json "$INPUT")
row "triage scan, warm cache (median of 5)" "$1" "$2" "$3" "$LINES" "$BYTES"
WARM_SPREAD=$(spread)

set -- $(median 3 "$TRIAGE" scan --no-site-layers --records "$RECORDS" --format json --jobs 1 "$INPUT")
row "triage scan, warm cache, --jobs 1 (median of 3)" "$1" "$2" "$3" "$LINES" "$BYTES"

# The naive loop prints its own rate; the median of three runs counts.
: >"$WORK/naive"
for _ in 1 2 3; do
    set -- $(measure "$NAIVE" naive "$RECORDS" "$SAMPLE" 2000)
    NAIVE_RSS=$2
    sed -n 's/.*lines_per_s=\([0-9]*\) mb_per_s=\([0-9.]*\).*/\1 \2/p' "$WORK/out" >>"$WORK/naive"
done
set -- $(sort -n "$WORK/naive" | sed -n 2p)
echo "| naive loop, every PCRE2 pattern on every line (2,000 lines; matching only; median of 3) | - | - | $1 | $2 | $((NAIVE_RSS / 1024)) |"

echo
echo "Warm scans, fastest to slowest: $WARM_SPREAD"
echo
echo "Phases of a warm scan in one process (bench/naive.c phases), three runs:"
echo
for _ in 1 2 3; do
    "$NAIVE" phases "$RECORDS" "$INPUT" | sed 's/^phases /    /'
done

echo
echo "Cold diagnosis, best of 5: triage --records CORPUS MESSAGE"
BEST=
for _ in 1 2 3 4 5; do
    set -- $(measure "$TRIAGE" --no-site-layers --quiet --records "$RECORDS" --format json \
        "postfix/smtpd[4711]: NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 <a@example.org>: Relay access denied")
    BEST=$(awk -v a="$1" -v b="${BEST:-1e9}" 'BEGIN { print (a < b) ? a : b }')
done
echo "    ${BEST} s"

echo
echo "Machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Work folder: $WORK"
