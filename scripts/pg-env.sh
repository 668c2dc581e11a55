# Source this file to get a throwaway PostgreSQL for a shell session (manual runs of the server,
# of the store tests or of the benchmarks against PostgreSQL):
#
#   . scripts/pg-env.sh [DIR]    starts (or reuses) the cluster in DIR (default
#                                /tmp/parley-pg-$USER, see scripts/pg.sh) and exports
#                                PARLEY_DATABASE and PARLEY_TEST_DATABASE (its URL) and
#                                PARLEY_TEST_PG_SCRIPT (scripts/pg.sh, for the outage tests)
#   parley_pg_stop               stops it (fast shutdown) and unsets the variables
#   parley_pg_destroy            stops it and removes DIR
#
# e.g.  . scripts/pg-env.sh && ./build/parley serve      (the server on PostgreSQL)
#       . scripts/pg-env.sh && ./build/unit/unit_store_test_chat
# Nothing here changes the shell's options; a failure to start returns non-zero.

parley_pg_script="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)/pg.sh"
parley_pg_dir="${1:-/tmp/parley-pg-${USER:-$(id -un)}}"

parley_pg_stop() {
    "$parley_pg_script" stop "$parley_pg_dir"
    unset PARLEY_DATABASE PARLEY_TEST_DATABASE PARLEY_TEST_PG_SCRIPT
}

parley_pg_destroy() {
    "$parley_pg_script" destroy "$parley_pg_dir"
    unset PARLEY_DATABASE PARLEY_TEST_DATABASE PARLEY_TEST_PG_SCRIPT
}

if parley_pg_url="$("$parley_pg_script" start "$parley_pg_dir")"; then
    export PARLEY_DATABASE="$parley_pg_url"
    export PARLEY_TEST_DATABASE="$parley_pg_url"
    export PARLEY_TEST_PG_SCRIPT="$parley_pg_script"
    echo "PostgreSQL at $parley_pg_url (cluster in $parley_pg_dir; parley_pg_stop to stop it)"
else
    echo "pg-env.sh: PostgreSQL did not start" >&2
    false
fi
