#!/bin/sh
# Check that the man page describes the commands and options that
# 'triage --help' prints, no more and no fewer.
#
# usage: check_manpage.sh TRIAGE_BINARY docs/triage.1
set -eu

triage=$1
page=$2
failed=0
checked=0

help=$("$triage" --help)

# Plain text of the page: roff's \- is a hyphen, font escapes go away.
plain=$(sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$page")

# Commands: the usage lines "  triage WORD ..." or "  triage [WORD] ...".
commands=$(printf '%s\n' "$help" | sed -n 's/^  triage \[\{0,1\}\([a-z][a-z-]*\)\]\{0,1\} .*/\1/p' | sort -u)
for cmd in $commands; do
    checked=$((checked + 1))
    if ! printf '%s\n' "$plain" | grep -Eq "^triage \[?$cmd\]?( |$)"; then
        echo "FAIL: '$triage --help' lists the command '$cmd' but $page has no entry 'triage $cmd' under COMMANDS" >&2
        failed=$((failed + 1))
    fi
done

# Options: the help's option table against the option headings of the
# page (the line after each .TP), where --help and --version are extra.
help_options=$(printf '%s\n' "$help" | sed -n 's/^  \(--[a-z][a-z-]*\).*/\1/p' | sort -u)
page_options=$(printf '%s\n' "$plain" | awk 'after_tp && /^\.B/ { print } { after_tp = ($0 == ".TP") }' |
    grep -Eo -- '--[a-z][a-z-]*' | grep -Evx -- '--help|--version' | sort -u)
for opt in $help_options; do
    checked=$((checked + 1))
    if ! printf '%s\n' "$page_options" | grep -qx -- "$opt"; then
        echo "FAIL: '$triage --help' lists $opt but $page does not describe it under OPTIONS" >&2
        failed=$((failed + 1))
    fi
done
for opt in $page_options; do
    checked=$((checked + 1))
    if ! printf '%s\n' "$help_options" | grep -qx -- "$opt"; then
        echo "FAIL: $page describes $opt, which '$triage --help' does not list" >&2
        failed=$((failed + 1))
    fi
done

if [ -z "$commands" ] || [ -z "$help_options" ]; then
    echo "FAIL: found no commands or options in '$triage --help'; has its layout changed?" >&2
    failed=$((failed + 1))
fi

echo "$((checked - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
