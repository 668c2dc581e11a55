#!/usr/bin/env bash
# Runs every store unit test binary (tests/unit/store/test_*.c, built as
# <build>/unit/unit_store_test_*) against PostgreSQL: starts a throwaway cluster with
# scripts/pg.sh, runs each binary with PARLEY_TEST_DATABASE set to it (each test creates and
# drops its own database; see testdb.h) and PARLEY_TEST_PG_SCRIPT set to scripts/pg.sh (the
# outage tests start, kill and restart clusters of their own), then stops and removes the
# cluster. The same binaries without PARLEY_TEST_DATABASE (plain ctest) test SQLite.
#
#   tests/unit/store/run-pg.sh [BUILD_DIR]      default: build (relative to the repository)
#
# Exit status 0 when every binary passed. A PostgreSQL that cannot be started is a failure,
# not a skip. Sanitizer settings (ASAN_OPTIONS, ...) pass through from the environment.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$root/$build ;; esac

shopt -s nullglob
bins=("$build"/unit/unit_store_test_*)
if [ ${#bins[@]} -eq 0 ]; then
    echo "run-pg.sh: no store test binaries in $build/unit (build first)" >&2
    exit 1
fi

dir=$(mktemp -d /tmp/parley-pgtest-XXXXXX)
cleanup() {
    "$root/scripts/pg.sh" stop "$dir" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT

if ! url=$("$root/scripts/pg.sh" start "$dir"); then
    echo "run-pg.sh: PostgreSQL did not start" >&2
    exit 1
fi
export PARLEY_TEST_DATABASE=$url
export PARLEY_TEST_PG_SCRIPT=$root/scripts/pg.sh

failed=()
for bin in "${bins[@]}"; do
    name=$(basename "$bin")
    echo "== $name (PostgreSQL)"
    if ! timeout 600 "$bin"; then
        failed+=("$name")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "run-pg.sh: FAILED against PostgreSQL: ${failed[*]}" >&2
    exit 1
fi
echo "run-pg.sh: all ${#bins[@]} store test binaries passed against PostgreSQL"
