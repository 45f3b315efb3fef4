#!/bin/sh
# Run every C test of a build (ctest names c/* and fuzz/replay-*) under
# valgrind's memcheck, with the command and folder that ctest uses. Any
# memcheck error or definite leak fails the run.
#
#   tests/run_valgrind.sh BUILD_DIR
#
# The tests run with TRIAGE_NO_JIT=1, because valgrind cannot follow
# PCRE2's JIT code and reports its reads as uninitialised, with
# TRIAGE_TEST_QUICK=1 to shrink the corpus comparison, and with the match
# time budget (TRIAGE_TIME_SCALE) and the tests' time bounds
# (TRIAGE_TEST_TIME_SCALE) scaled by 50 for valgrind's slowdown.
set -u

build=$(cd "$1" && pwd)
log=$build/valgrind
mkdir -p "$log"
list=$log/tests.tsv
# One line per test: name, working folder, command and arguments, tab-separated.
ctest --test-dir "$build" --show-only=json-v1 | lua5.4 -e '
local doc = require("cjson").decode(io.read("a"))
for _, t in ipairs(doc.tests) do
  if t.name:match("^c/") or t.name:match("^fuzz/replay%-") then
    local dir = "."
    for _, p in ipairs(t.properties or {}) do
      if p.name == "WORKING_DIRECTORY" then dir = p.value end
    end
    print(t.name .. "\t" .. dir .. "\t" .. table.concat(t.command, "\t"))
  end
end' >"$list" || exit 2

suppressions=$(cd "$(dirname "$0")" && pwd)/valgrind.supp
failed=0
ran=0
tab=$(printf '\t')
while IFS=$tab read -r name dir command; do
    ran=$((ran + 1))
    file=$log/$(echo "$name" | tr / -).log
    # shellcheck disable=SC2086 # the command's words are tab-separated on purpose
    if (cd "$dir" && IFS=$tab && TRIAGE_NO_JIT=1 TRIAGE_TEST_QUICK=1 TRIAGE_TEST_TIME_SCALE=50 TRIAGE_TIME_SCALE=50 \
        valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --suppressions="$suppressions" \
        --show-leak-kinds=definite,indirect $command) >"$file" 2>&1; then
        echo "run_valgrind: $name: no finding"
    else
        echo "run_valgrind: $name: failed; see $file" >&2
        tail -n 30 "$file" >&2
        failed=$((failed + 1))
    fi
done <"$list"
echo "run_valgrind: $ran test(s), $failed failed"
[ "$ran" -gt 0 ] && [ "$failed" -eq 0 ]
