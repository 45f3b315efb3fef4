#!/bin/sh
# Set up a Debian 12 machine for triage, build it, and either run it on the
# bundled sample (demo) or run the whole test suite (test).
#
#   tools/bootstrap.sh demo   install missing packages, build, diagnose samples/postfix-relay-denied.log
#   tools/bootstrap.sh test   install missing packages, build, run every test (plain and sanitizer builds)
#
# Run as root (or with sudo available) so that missing packages can be installed.
set -eu

mode=${1:-demo}
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)

packages="cmake make gcc pkg-config liblua5.4-dev lua5.4 lua-cjson lua-cjson-dev libpcre2-dev
libvectorscan-dev zlib1g-dev lua-unit"
if [ "$mode" = test ]; then
    # The test suite also runs under valgrind and builds fuzz targets with
    # clang; GNU time measures peak memory in tests/cli/test_hostile.sh.
    packages="$packages valgrind clang libclang-rt-dev gzip time"
fi

install_missing() {
    missing=""
    for p in $packages; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing="$missing $p"
        fi
    done
    [ -z "$missing" ] && return 0
    echo "bootstrap: installing:$missing" >&2
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

build() {
    dir=$1
    shift
    cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRIAGE_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j "$jobs"
}

install_missing
case "$mode" in
demo)
    build "$root/build"
    echo "bootstrap: diagnosing samples/postfix-relay-denied.log" >&2
    "$root/build/triage" --no-site-layers - < "$root/samples/postfix-relay-denied.log"
    ;;
test)
    build "$root/build"
    ctest --test-dir "$root/build" --output-on-failure -j "$jobs"
    echo "bootstrap: running the suite again under AddressSanitizer and UndefinedBehaviorSanitizer" >&2
    build "$root/build-asan" -DCMAKE_BUILD_TYPE=Debug -DTRIAGE_SANITIZE=ON
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        TRIAGE_TEST_TIME_SCALE=3 ctest --test-dir "$root/build-asan" --output-on-failure -j "$jobs"
    echo "bootstrap: running the thread tests under ThreadSanitizer" >&2
    cmake -S "$root" -B "$root/build-tsan" -DCMAKE_BUILD_TYPE=Debug -DTRIAGE_WERROR=ON -DTRIAGE_TSAN=ON >/dev/null
    cmake --build "$root/build-tsan" -j "$jobs" --target test_threads
    ctest --test-dir "$root/build-tsan" --output-on-failure -L tsan
    echo "bootstrap: running the C tests under valgrind" >&2
    (cd "$root" && tests/run_valgrind.sh "$root/build")
    fuzz_seconds=${TRIAGE_FUZZ_SECONDS:-60}
    echo "bootstrap: fuzzing each target for $fuzz_seconds s (TRIAGE_FUZZ_SECONDS)" >&2
    # Only the fuzz targets: clang does not link the sanitizer runtime into
    # the shared library and the Lua module, which the fuzzers do not need.
    cmake -S "$root" -B "$root/build-fuzz" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
        -DTRIAGE_FUZZ=ON -DTRIAGE_WERROR=OFF >/dev/null
    cmake --build "$root/build-fuzz" -j "$jobs" --target fuzz_records fuzz_match fuzz_site fuzz_format
    "$root/fuzz/run.sh" "$root/build-fuzz" "$fuzz_seconds"
    ;;
*)
    echo "usage: tools/bootstrap.sh demo|test" >&2
    exit 2
    ;;
esac
