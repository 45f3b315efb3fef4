#!/bin/sh
# Check that the public API of libtriage is exactly what triage.h declares
# and documents:
#   1. every symbol exported from the shared library is declared TRIAGE_API
#      in the header;
#   2. every TRIAGE_API function in the header is exported;
#   3. every TRIAGE_API declaration has a comment right above it.
#
# usage: check_symbols.sh LIBTRIAGE.so triage.h
set -eu

lib=$1
header=$2
failed=0

[ -f "$lib" ] || { echo "check_symbols: library '$lib' not found" >&2; exit 2; }
[ -f "$header" ] || { echo "check_symbols: header '$header' not found" >&2; exit 2; }

# Exported names without symbol versions. Linker-defined markers such as
# _end or __bss_start would show up as absolute symbols (type A); none is an
# API, so type A is left out.
exported=$(nm -D --defined-only "$lib" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort -u)
declared=$(sed -n 's/^TRIAGE_API[^(]*[^A-Za-z0-9_]\([A-Za-z_][A-Za-z0-9_]*\)(.*/\1/p' "$header" | sort -u)

if [ -z "$declared" ]; then
    echo "check_symbols: no TRIAGE_API declaration found in $header" >&2
    exit 2
fi

for sym in $exported; do
    if ! printf '%s\n' "$declared" | grep -qx "$sym"; then
        echo "FAIL: $lib exports '$sym', which $header does not declare with TRIAGE_API" >&2
        failed=$((failed + 1))
    fi
done

for sym in $declared; do
    if ! printf '%s\n' "$exported" | grep -qx "$sym"; then
        echo "FAIL: $header declares '$sym' but $lib does not export it" >&2
        failed=$((failed + 1))
    fi
done

# The line above each declaration must close a comment.
undocumented=$(awk '
    /^TRIAGE_API/ {
        if (prev !~ /\*\/[ \t]*$/) {
            name = $0
            sub(/\(.*/, "", name)
            sub(/.*[^A-Za-z0-9_]/, "", name)
            print name
        }
    }
    { prev = $0 }' "$header")
for sym in $undocumented; do
    echo "FAIL: $header declares '$sym' without a comment right above it" >&2
    failed=$((failed + 1))
done

total=$(printf '%s\n' "$declared" | wc -l)
if [ "$failed" -ne 0 ]; then
    echo "0 passed, $failed failed"
    exit 1
fi
echo "$total passed, 0 failed"
