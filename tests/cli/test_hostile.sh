#!/bin/sh
# Hostile input through the command line: rejected record files, a regex
# that backtracks without end, invalid UTF-8, a 50 MB line, 20 MB of random
# bytes and CR-only line ends. Each run must finish in bounded time and
# memory while the good records keep working.
#
#   tests/cli/test_hostile.sh TRIAGE_BINARY
#
# Run from the repository root. TRIAGE_TEST_TIME_SCALE multiplies the time
# bounds for slow builds (sanitizers). Peak memory is checked when GNU time
# is installed as /usr/bin/time.
set -u

triage=$1
good=tests/fixtures/records/good
hostile=tests/fixtures/hostile
scale=${TRIAGE_TEST_TIME_SCALE:-1}
work=$(mktemp -d "${TMPDIR:-/tmp}/triage-hostile-XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0
line="app: widget frobnication failed for queue 7"

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# run NAME SECONDS MAX_KB COMMAND...: run COMMAND with its output in
# $work/NAME.out and $work/NAME.err, and its exit status in $status. The
# check fails when COMMAND takes longer than SECONDS (times the scale) or,
# with GNU time, more than MAX_KB of peak memory.
run() {
    name=$1
    seconds=$(($2 * scale))
    max_kb=$3
    shift 3
    start=$(date +%s)
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -o "$work/$name.time" -f %M "$@" >"$work/$name.out" 2>"$work/$name.err"
        status=$?
        peak=$(tail -n 1 "$work/$name.time")
        if [ "$peak" -gt "$max_kb" ]; then
            fail "$name: peak memory $peak KB, above $max_kb KB"
        fi
    else
        "$@" >"$work/$name.out" 2>"$work/$name.err"
        status=$?
    fi
    took=$(($(date +%s) - start))
    if [ "$took" -gt "$seconds" ]; then
        fail "$name: took $took s, more than $seconds s"
    fi
}

expect_status() {
    if [ "$status" -ne "$2" ]; then
        fail "$1: exit status $status, expected $2"
        sed -n '1,20p' "$work/$1.err" >&2
    fi
}

expect_in() { # NAME FILE-SUFFIX TEXT
    if ! grep -qF -- "$3" "$work/$1.$2"; then
        fail "$1: '$3' not found in its $2"
    fi
}

valid_json() { # NAME: stdout is valid UTF-8 and valid JSON
    if ! iconv -f UTF-8 -t UTF-8 "$work/$1.out" >/dev/null 2>&1; then
        fail "$1: output is not valid UTF-8"
    fi
    if ! lua5.4 -e 'require("cjson").decode(io.read("a"))' <"$work/$1.out" 2>/dev/null; then
        fail "$1: output is not valid JSON"
    fi
}

# Every rejected record file is listed as FILE:LINE:COLUMN: ID: FIELD: error: problem.
run check-reject 30 400000 "$triage" check "$hostile/reject"
expect_status check-reject 2
rejected=$(grep -c '^tests/fixtures/hostile/reject/[a-z0-9-]*\.json:[0-9]*:[0-9]*: [^:]*: [^:]*: error: ' \
    "$work/check-reject.err")
if [ "$rejected" -ne 30 ]; then
    fail "check-reject: $rejected problems in FILE:LINE:COLUMN: ID: FIELD: form, expected 30"
fi
expect_in check-reject err "0 loaded, 30 rejected"
expect_in check-reject err "regex-unclosed.json:4:12: hostile/regex-unclosed: regex: error: regex does not compile: missing closing parenthesis at offset 15"

# The other records still work beside the rejected ones; --strict makes a rejection fatal.
run mixed 30 400000 "$triage" --no-site-layers --records "$good" --records "$hostile/reject" "$line"
expect_status mixed 0
expect_in mixed out "mail/widget-failure"
expect_in mixed err "2 records loaded, 30 rejected"
run mixed-strict 30 400000 "$triage" --no-site-layers --strict --records "$good" --records "$hostile/reject" "$line"
expect_status mixed-strict 2
expect_in mixed-strict err "rejected"

# check warns about patterns prone to backtracking.
run check-backtrack 30 400000 "$triage" check "$hostile/backtrack"
warned=$(grep -c 'warning: regex is prone to catastrophic backtracking' "$work/check-backtrack.err")
if [ "$warned" -lt 5 ]; then
    fail "check-backtrack: $warned backtracking warnings, expected at least 5"
fi

# 200 lines of 30,000 characters on which the backtracking records cost the
# full budget, then a good line: bounded time, limit warnings naming each
# record, quarantine, and the good line still diagnosed.
lua5.4 -e 'local run = string.rep(string.rep("a", 16) .. "!", 1765)
for _ = 1, 200 do io.write(run, "\n") end
io.write("app: widget frobnication failed for queue 7\n")' >"$work/backtrack.log"
run diagnose-backtrack 60 400000 "$triage" --no-site-layers --records "$good" --records "$hostile/backtrack" - \
    <"$work/backtrack.log"
expect_status diagnose-backtrack 0
expect_in diagnose-backtrack out "mail/widget-failure"
expect_in diagnose-backtrack err "hostile/nested-repeat: regex: warning: regex hit"
expect_in diagnose-backtrack err "hostile/nested-repeat: regex: warning: regex hit limits on 10 inputs and is quarantined"
if [ "$(grep -c 'hostile/nested-repeat: regex: warning: regex hit the' "$work/diagnose-backtrack.err")" -ne 1 ]; then
    fail "diagnose-backtrack: the limit warning of hostile/nested-repeat is not reported exactly once"
fi
run scan-backtrack 60 400000 "$triage" scan --no-site-layers --no-cache --records "$good" --records "$hostile/backtrack" \
    "$work/backtrack.log"
expect_status scan-backtrack 0
expect_in scan-backtrack out "mail/widget-failure"

# Invalid UTF-8 (overlong, surrogate, F5-FF, a sequence cut at the end), NUL
# bytes and escapes around the message: diagnosed, and the JSON is valid.
printf '\300\257\355\240\200\365\377 %s \000 \033[0m \342\202' "$line" >"$work/invalid.txt"
run invalid-utf8 30 400000 "$triage" --no-site-layers --records "$good" --format json - <"$work/invalid.txt"
expect_status invalid-utf8 0
expect_in invalid-utf8 out "mail/widget-failure"
valid_json invalid-utf8
run invalid-utf8-scan 30 400000 "$triage" scan --no-site-layers --no-cache --records "$good" --format json \
    "$work/invalid.txt"
expect_status invalid-utf8-scan 0
expect_in invalid-utf8-scan out "mail/widget-failure"
valid_json invalid-utf8-scan

# A 50 MB line that starts with the message: matched on its first part,
# counted as truncated, in bounded time and memory.
lua5.4 -e 'io.write("app: widget frobnication failed for queue 7 ", string.rep("x", 50 * 1024 * 1024))' \
    >"$work/long.log"
run scan-long-line 60 400000 "$triage" scan --no-site-layers --no-cache --records "$good" \
    --records "$hostile/backtrack" --format json "$work/long.log"
expect_status scan-long-line 0
expect_in scan-long-line out "mail/widget-failure"
expect_in scan-long-line out '"truncated_lines": 1'
valid_json scan-long-line

# diagnose bounds a line at 64 KiB: the match on the first part of a longer
# line is flagged truncated.
lua5.4 -e 'io.write("app: widget frobnication failed for queue 7 ", string.rep("x", 100000))' >"$work/long100k.txt"
run diagnose-long-line 30 400000 "$triage" --no-site-layers --records "$good" --format json - <"$work/long100k.txt"
expect_status diagnose-long-line 0
expect_in diagnose-long-line out '"truncated": true'
valid_json diagnose-long-line

# 20 MB of random bytes with the message on a line of its own in the middle.
head -c 10000000 /dev/urandom >"$work/random.log"
printf '\n%s\n' "$line" >>"$work/random.log"
head -c 10000000 /dev/urandom >>"$work/random.log"
run scan-random 120 400000 "$triage" scan --no-site-layers --no-cache --records "$good" \
    --records "$hostile/backtrack" --format json "$work/random.log"
expect_status scan-random 0
expect_in scan-random out "mail/widget-failure"
valid_json scan-random

# CR-only line ends.
printf 'first\r%s\rthird\r' "$line" >"$work/cr.log"
run scan-cr 30 400000 "$triage" scan --no-site-layers --no-cache --records "$good" --format json "$work/cr.log"
expect_status scan-cr 0
expect_in scan-cr out "mail/widget-failure"
valid_json scan-cr
run diagnose-cr 30 400000 "$triage" --no-site-layers --records "$good" --format json - <"$work/cr.log"
expect_status diagnose-cr 0
expect_in diagnose-cr out "mail/widget-failure"
valid_json diagnose-cr

if [ "$failures" -gt 0 ]; then
    echo "$failures hostile-input check(s) failed" >&2
    exit 1
fi
echo "all hostile-input checks passed"
