#!/usr/bin/env bash
# Installs what Parley needs to build, run and test on Debian 12, and nothing when all of it is
# already there (it only asks dpkg and compares the npm lock file, so a repeated run takes well
# under a second). Usage: scripts/bootstrap.sh [run|test]
#   run  - build and run dependencies (the default)
#   test - also what the test suite needs: cmocka, clang's sanitizer and fuzzer runtime,
#          redis-server, postgresql, chromium
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-run}
need=(build-essential cmake ninja-build pkg-config clang
      libuv1-dev libwslay-dev libhttp-parser-dev libjansson-dev libsqlite3-dev libpq-dev
      libhiredis-dev libsodium-dev libssl-dev nodejs)
if [ "$mode" = test ]; then
    need+=(libcmocka-dev libclang-rt-14-dev redis-server postgresql chromium sqlite3 procps)
fi

missing=()
for p in "${need[@]}"; do
    # nodejs may come from outside Debian (for instance a newer upstream build): a working
    # node and npm on PATH is what counts.
    if [ "$p" = nodejs ] && command -v node >/dev/null && command -v npm >/dev/null; then
        continue
    fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v npm >/dev/null || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages, pinned by package-lock.json. The stamp records which lock file was installed.
stamp=node_modules/.parley-lock
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
    echo "bootstrap: installing npm packages (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json "$stamp"
fi
