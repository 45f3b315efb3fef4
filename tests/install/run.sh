#!/bin/sh
# Install triage into a temporary prefix and use it the way an embedder
# would, from the installed files only:
#   - the installed files and the shared library's soname;
#   - the installed CLI;
#   - examples/*.c built with pkg-config, shared and static;
#   - examples/cmake built with find_package(triage), shared and static;
#   - the Lua module in stock lua5.4 with only LUA_CPATH and LUA_PATH set;
#   - the Alertmanager and journal examples.
# An extra record is installed into the prefix only, so each consumer that
# finds it proves that it read the installed data and not the source tree.
#
# usage: tests/install/run.sh BUILD_DIR   (from the repository root)
set -u

build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/triage-install.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
work=$(cd "$work" && pwd -P) # the module reports its data folder with symlinks resolved
prefix=$work/prefix

RELAY_ID=communication/smtp-554-5-7-0-relay-denied
RELAY_LINE='Dec  4 03:12:41 mx1 postfix/smtpd[21877]: NOQUEUE: reject: RCPT from client.example.net[203.0.113.45]: 554 5.7.1 <alice@example.org>: Relay access denied; from=<bob@example.com> to=<alice@example.org> proto=ESMTP helo=<client.example.net>'
EXTRA_ID=mail/widget-failure
EXTRA_LINE='widget frobnication failed for queue 42'

passed=0
failed=0

pass() {
    passed=$((passed + 1))
}

fail() {
    failed=$((failed + 1))
    echo "FAIL: $*" >&2
}

# check DESCRIPTION COMMAND...: run COMMAND, count it, show its output on failure.
check() {
    what=$1
    shift
    if "$@" >"$work/out" 2>&1; then
        pass
    else
        fail "$what"
        sed 's/^/    /' "$work/out" >&2
    fi
}

# expect_first_line DESCRIPTION EXPECTED COMMAND...: the first output line must equal EXPECTED.
expect_first_line() {
    what=$1
    expected=$2
    shift 2
    "$@" >"$work/out" 2>"$work/err"
    got=$(head -n 1 "$work/out")
    if [ "$got" = "$expected" ]; then
        pass
    else
        fail "$what: expected '$expected', got '$got'"
        sed 's/^/    /' "$work/err" >&2
    fi
}

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit $?
}

# --- install ---------------------------------------------------------------

if ! cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1; then
    fail "cmake --install into $prefix"
    sed 's/^/    /' "$work/install.log" >&2
    finish
fi
pass
libdir=$(dirname "$(find "$prefix" -name 'libtriage.so' | head -n 1)")
[ -n "$libdir" ] && [ -d "$libdir" ] || { fail "no libtriage.so under $prefix"; finish; }
cp "$src/tests/fixtures/records/good/mail/widget-failure.json" "$prefix/share/triage/records/"

for path in bin/triage include/triage.h share/man/man1/triage.1 \
    share/triage/records/communication/smtp-554-5-7-0-relay-denied.json \
    share/triage/lua/triage/report.lua share/lua/5.4/triage/graph.lua; do
    check "installed $path" test -f "$prefix/$path"
done
for path in libtriage.a libtriage.so.0 pkgconfig/triage.pc cmake/triage/triageConfig.cmake \
    cmake/triage/triageConfigVersion.cmake cmake/triage/triageTargets.cmake lua/5.4/triage.so; do
    check "installed lib/$path" test -e "$libdir/$path"
done
check "soname is libtriage.so.0" sh -c "readelf -d '$libdir/libtriage.so' | grep -q 'SONAME.*\\[libtriage\\.so\\.0\\]'"
check "Lua module links no liblua" sh -c "! readelf -d '$libdir/lua/5.4/triage.so' | grep -q 'NEEDED.*liblua5\\.4\\.so'"

# --- installed CLI -----------------------------------------------------------

if env -u TRIAGE_DATADIR "$prefix/bin/triage" --no-site-layers --format ndjson "$EXTRA_LINE" | grep -q "\"$EXTRA_ID\""; then
    pass
else
    fail "installed triage does not diagnose '$EXTRA_LINE' as $EXTRA_ID"
fi

# --- pkg-config --------------------------------------------------------------

export PKG_CONFIG_PATH="$libdir/pkgconfig"
expect_first_line "pkg-config version" "$(sed -n 's/^project(triage VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")" \
    pkg-config --modversion triage
check "pkg-config build of examples/*.c" \
    sh -c "cc -Wall -Wextra -Werror '$src'/examples/*.c \$(pkg-config --cflags --libs triage) -o '$work/diagnose'"
expect_first_line "examples/diagnose.c (libtriage.so) on the relay line" "$RELAY_ID" \
    env -u TRIAGE_DATADIR LD_LIBRARY_PATH="$libdir" "$work/diagnose" "$RELAY_LINE"
expect_first_line "libtriage.so reads the installed data folder" "$EXTRA_ID" \
    env -u TRIAGE_DATADIR LD_LIBRARY_PATH="$libdir" "$work/diagnose" "$EXTRA_LINE"
check "pkg-config --static build with libtriage.a" \
    sh -c "cc '$src/examples/diagnose.c' \$(pkg-config --cflags triage) \
        \$(pkg-config --static --libs triage | sed 's/-ltriage /-l:libtriage.a /') -o '$work/diagnose_static'"
check "static build needs no libtriage.so" sh -c "! readelf -d '$work/diagnose_static' | grep -q 'libtriage'"
expect_first_line "examples/diagnose.c (libtriage.a) on the relay line" "$RELAY_ID" \
    env TRIAGE_DATADIR="$prefix/share/triage" "$work/diagnose_static" "$RELAY_LINE"

# --- CMake package -----------------------------------------------------------

if cmake -S "$src/examples/cmake" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" >"$work/cmake.log" 2>&1 &&
    cmake --build "$work/consumer" >>"$work/cmake.log" 2>&1; then
    pass
    expect_first_line "find_package consumer (triage::triage)" "$EXTRA_ID" \
        env -u TRIAGE_DATADIR "$work/consumer/diagnose" "$EXTRA_LINE"
    expect_first_line "find_package consumer (triage::triage_static)" "$EXTRA_ID" \
        env TRIAGE_DATADIR="$prefix/share/triage" "$work/consumer/diagnose_static" "$EXTRA_LINE"
else
    fail "find_package(triage) consumer build"
    sed 's/^/    /' "$work/cmake.log" >&2
fi

# --- Lua module in stock lua5.4 ----------------------------------------------

# Nothing but PATH and the two Lua search paths, as a host would have them.
lua_env() {
    env -i PATH="$PATH" LUA_CPATH="$libdir/lua/5.4/?.so" LUA_PATH="$prefix/share/lua/5.4/?.lua" "$@"
}

expect_first_line "lua5.4 require('triage') on the relay line" "$RELAY_ID" \
    lua_env lua5.4 -e "print(require('triage').open():diagnose([[$RELAY_LINE]]).diagnoses[1].id)"
expect_first_line "Lua module reads the installed data folder" "$prefix/share/triage" \
    lua_env lua5.4 -e "print(require('triage').open():datadir())"
expect_first_line "Lua module finds its extra record" "$EXTRA_ID" \
    lua_env lua5.4 -e "print(require('triage').open():diagnose('$EXTRA_LINE').diagnoses[1].id)"
expect_first_line "triage.graph from the installed Lua path" "$prefix/share/lua/5.4/triage/graph.lua" \
    lua_env lua5.4 -e "local t = require('triage'); assert(type(t.graph.new) == 'function')
        print(package.searchpath('triage.graph', package.path))"
expect_first_line "triage.regex from the module" "relay" \
    lua_env lua5.4 -e "print(require('triage').regex('(?<what>relay) access'):match('RELAY ACCESS denied').what:lower())"

expect_first_line "engine:scan over standard input" "2 $RELAY_ID" sh -c "printf 'quiet\\n%s\\n' '$RELAY_LINE' |
    env -i PATH='$PATH' HOME='$work' LUA_CPATH='$libdir/lua/5.4/?.so' lua5.4 -e '
        for entry in require(\"triage\").open():scan(\"-\") do
          print(entry.line, entry.diagnoses[1].id)
        end' | tr '\\t' ' '"
check "engine:scan wrote its prefilter cache under HOME" sh -c "ls '$work/.cache/triage' | grep -q ."

# --- Lua examples ------------------------------------------------------------

lua_env lua5.4 "$src/examples/alertmanager.lua" <"$src/tests/embed/fixtures/alertmanager.json" >"$work/alerts.json" 2>"$work/err"
check "alertmanager example annotates the relay alert only" lua_env lua5.4 -e "
    local cjson = require('triage').cjson
    local f = assert(io.open('$work/alerts.json'))
    local payload = cjson.decode(f:read('a'))
    local relay, disk = payload.alerts[1].annotations, payload.alerts[2].annotations
    assert(relay.triage_id == '$RELAY_ID', 'triage_id is ' .. tostring(relay.triage_id))
    assert(type(relay.triage_root_cause) == 'string' and #relay.triage_root_cause > 0, 'no triage_root_cause')
    assert(type(relay.triage_fix) == 'string' and #relay.triage_fix > 0, 'no triage_fix')
    assert(relay.summary == 'Postfix rejects relay attempts on mx1', 'summary was changed')
    assert(disk.triage_id == nil, 'the disk alert got ' .. tostring(disk.triage_id))
    assert(payload.receiver == 'triage-webhook', 'receiver was changed')"

lua_env lua5.4 "$src/examples/journal.lua" <"$src/tests/embed/fixtures/journal.jsonl" >"$work/journal.out" 2>"$work/err"
check "journal example exits 0 when something was diagnosed" test $? -eq 0
check "journal example reports three entries with unit and time" lua_env lua5.4 -e "
    local cjson = require('triage').cjson
    local found = {}
    for line in io.lines('$work/journal.out') do found[#found + 1] = cjson.decode(line) end
    assert(#found == 3, #found .. ' entries')
    for _, entry in ipairs(found) do
      assert(entry.diagnoses[1].id == '$RELAY_ID', entry.diagnoses[1].id)
    end
    assert(found[1].unit == 'postfix@-.service' and found[1].time == '2024-12-04T03:12:41.500000Z', found[1].time)
    assert(found[2].message:find('\\u{FFFD} 554', 1, true), 'byte-array MESSAGE not decoded')
    assert(found[3].unit == nil, 'entry without _SYSTEMD_UNIT got a unit')"
check "journal example names the line it skipped" grep -q "line 4: skipped" "$work/err"

finish
