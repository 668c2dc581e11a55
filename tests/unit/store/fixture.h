/* The fixture shared by the store tests that work on one open store (test_chat, test_inbox,
 * test_accounts): a fresh database of the backend under test (testdb.h: SQLite, or PostgreSQL
 * with PARLEY_TEST_DATABASE), the store opened on it with default options, a second plain
 * connection for what no store operation does, and a loop for the store's callbacks.
 * Header-only (static inline); include after cmocka.h and testdb.h. Use as
 *
 *   static int setup(void **state) { return fx_setup(state, "chat"); }
 *   cmocka_unit_test_setup_teardown(test_x, setup, fx_teardown) */
#ifndef TESTS_UNIT_STORE_FIXTURE_H
#define TESTS_UNIT_STORE_FIXTURE_H

#include "store/store.h"
#include "testdb.h"

#include <stdlib.h>
#include <uv.h>

typedef struct {
    tdb_t db;  /* the database under test, and the second connection */
    char *url; /* db.url */
    uv_loop_t loop;
    store_t *s; /* open store, closed at teardown */
} fx_t;

static inline int fx_setup(void **state, const char *tag) {
    fx_t *fx = calloc(1, sizeof *fx);
    if (!fx || tdb_create(&fx->db, tag) != 0)
        return -1;
    fx->url = fx->db.url;
    if (uv_loop_init(&fx->loop) != 0)
        return -1;
    char err[256] = "";
    fx->s = store_open(&fx->loop, fx->url, NULL, err, sizeof err); /* synchronous=normal */
    if (!fx->s) {
        print_error("store_open: %s\n", err);
        return -1;
    }
    if (tdb_connect(&fx->db) != 0)
        return -1;
    *state = fx;
    return 0;
}

static inline int fx_teardown(void **state) {
    fx_t *fx = *state;
    tdb_disconnect(&fx->db);
    if (fx->s) {
        store_close(fx->s, NULL, NULL);
        uv_run(&fx->loop, UV_RUN_DEFAULT);
    }
    int rc = uv_loop_close(&fx->loop); /* UV_EBUSY if a handle was left open */
    tdb_destroy(&fx->db);
    free(fx);
    return rc == 0 ? 0 : -1;
}

/* The integer the query (no parameters) answers on the second connection; fails the test when
 * the query fails. */
static inline int64_t fx_count(fx_t *fx, const char *sql) {
    bool ok;
    int64_t n = tdb_int(&fx->db, sql, NULL, &ok);
    if (!ok)
        print_error("%s: %s\n", sql, tdb_errmsg(&fx->db));
    assert_true(ok);
    return n;
}

#endif
