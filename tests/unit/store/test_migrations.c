/* Unit tests for src/store/migrations.h: placeholder rendering per dialect (good, boundary and
 * malformed rows), the migration list, migrating an empty database and an existing one (nothing
 * re-applied, data kept), refusing a database newer than the binary, a failing migration that
 * rolls back alone, upgrading a version-1 database with data to version 2, and the rules of the
 * data model itself (unique keys, checks, foreign keys and cascades, STRICT types) checked with
 * plain SQLite on a migrated file. Every test gets a fresh temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/migrations.h"
#include "store/store.h"

#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <uv.h>

typedef struct {
    char dir[64];
    char path[256];
    char url[300];
} fx_t;

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup(void **state) {
    fx_t *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    strcpy(fx->dir, "/tmp/parley-migr-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->path, sizeof fx->path, "%s/parley.db", fx->dir);
    snprintf(fx->url, sizeof fx->url, "sqlite:%s", fx->path);
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fx_t *fx = *state;
    nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

/* A plain SQLite connection to inspect what the store wrote. */
static sqlite3 *db_open(const fx_t *fx) {
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    sqlite3_extended_result_codes(db, 1);
    assert_int_equal(sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL), SQLITE_OK);
    return db;
}

/* The first column of the first row as an integer (-1 when there is no row). */
static int64_t db_int(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        print_error("%s: %s\n", sql, sqlite3_errmsg(db));
        fail();
    }
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}

static int migrate(const fx_t *fx, int *applied, char *err, size_t errlen) {
    err[0] = '\0';
    return store_migrate(fx->url, NULL, applied, err, errlen);
}

/* ---- rendering ------------------------------------------------------------------------------- */

static void test_render(void **state) {
    (void)state;
    const struct {
        const char *sql;
        store_dialect_t d;
        const char *want; /* NULL: refused */
        const char *err;  /* part of the message when refused */
    } rows[] = {
        /* good */
        {"", STORE_DIALECT_SQLITE, "", NULL},
        {"SELECT 1", STORE_DIALECT_POSTGRES, "SELECT 1", NULL},
        {"id {{id}}", STORE_DIALECT_SQLITE, "id INTEGER PRIMARY KEY AUTOINCREMENT", NULL},
        {"id {{id}}", STORE_DIALECT_POSTGRES, "id BIGSERIAL PRIMARY KEY", NULL},
        {"{{bigint}},{{bool}},{{json}}", STORE_DIALECT_SQLITE, "INTEGER,INTEGER,TEXT", NULL},
        {"{{bigint}},{{bool}},{{json}}", STORE_DIALECT_POSTGRES, "BIGINT,BOOLEAN,JSONB", NULL},
        {"CREATE TABLE t (a TEXT){{strict}};", STORE_DIALECT_SQLITE,
         "CREATE TABLE t (a TEXT) STRICT;", NULL},
        {"CREATE TABLE t (a TEXT){{strict}};", STORE_DIALECT_POSTGRES, "CREATE TABLE t (a TEXT);",
         NULL},
        /* boundary: placeholders at the very start and end, back to back; lone braces */
        {"{{json}}", STORE_DIALECT_SQLITE, "TEXT", NULL},
        {"{{json}}{{json}}", STORE_DIALECT_POSTGRES, "JSONBJSONB", NULL},
        {"a { b } c }} d", STORE_DIALECT_SQLITE, "a { b } c }} d", NULL},
        {"'{}'", STORE_DIALECT_SQLITE, "'{}'", NULL},
        /* malformed */
        {"{{nope}}", STORE_DIALECT_SQLITE, NULL, "unknown placeholder {{nope}}"},
        {"x {{}} y", STORE_DIALECT_SQLITE, NULL, "unknown placeholder"},
        {"{{ id }}", STORE_DIALECT_SQLITE, NULL, "unknown placeholder"},
        {"{{ID}}", STORE_DIALECT_POSTGRES, NULL, "unknown placeholder"},
        {"id {{id", STORE_DIALECT_SQLITE, NULL, "unterminated"},
        {"ok {{id}} then {{", STORE_DIALECT_SQLITE, NULL, "unterminated"},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char err[128] = "";
        char *out = store_migration_render(rows[i].sql, rows[i].d, err, sizeof err);
        bool ok = rows[i].want ? out && strcmp(out, rows[i].want) == 0
                               : !out && strstr(err, rows[i].err) != NULL;
        if (!ok) {
            print_error("row %zu: '%s' -> '%s' (err '%s')\n", i, rows[i].sql, out ? out : "NULL",
                        err);
            bad++;
        }
        free(out);
    }
    assert_int_equal(bad, 0);
}

static void test_list(void **state) {
    (void)state;
    size_t n = 0;
    const store_migration_t *list = store_migrations(&n);
    assert_true(n >= 1);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(list[i].version, (int)i + 1);
        assert_non_null(list[i].name);
        for (int d = 0; d < STORE_DIALECT_COUNT; d++) {
            char err[128] = "";
            char *sql = store_migration_render(list[i].sql, (store_dialect_t)d, err, sizeof err);
            if (!sql)
                print_error("migration %d, dialect %d: %s\n", list[i].version, d, err);
            assert_non_null(sql);
            assert_null(strstr(sql, "{{"));
            if (d == STORE_DIALECT_POSTGRES) {
                assert_null(strstr(sql, "STRICT"));
                assert_null(strstr(sql, "AUTOINCREMENT"));
            }
            free(sql);
        }
    }
    assert_int_equal(store_migrations_latest(), list[n - 1].version);
}

/* ---- applying -------------------------------------------------------------------------------- */

static void test_fresh_database(void **state) {
    fx_t *fx = *state;
    int64_t before = (int64_t)time(NULL) * 1000 - 1000;
    int applied = -1;
    char err[256];
    assert_int_equal(migrate(fx, &applied, err, sizeof err), 0);
    assert_int_equal(applied, store_migrations_latest());
    int64_t after = (int64_t)time(NULL) * 1000 + 1000;

    sqlite3 *db = db_open(fx);
    assert_int_equal(db_int(db, "SELECT count(*) FROM schema_migrations"),
                     store_migrations_latest());
    assert_int_equal(db_int(db, "SELECT max(version) FROM schema_migrations"),
                     store_migrations_latest());
    int64_t at = db_int(db, "SELECT min(applied_at) FROM schema_migrations");
    assert_true(at >= before && at <= after);
    static const char *const objects[] = {
        "projects",
        "project_domains",
        "users",
        "project_members",
        "visitors",
        "conversations",
        "messages",
        "refresh_tokens",
        "project_members_by_user",
        "conversations_inbox",
        "conversations_newest",
        "conversations_by_visitor",
        "messages_by_conversation",
        "refresh_tokens_by_user",
        "refresh_tokens_by_family",
    };
    for (size_t i = 0; i < sizeof objects / sizeof objects[0]; i++) {
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "SELECT count(*) FROM sqlite_schema WHERE name = ?1",
                                            -1, &st, NULL),
                         SQLITE_OK);
        sqlite3_bind_text(st, 1, objects[i], -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        if (sqlite3_column_int(st, 0) != 1)
            print_error("missing %s\n", objects[i]);
        assert_int_equal(sqlite3_column_int(st, 0), 1);
        sqlite3_finalize(st);
    }
    /* WAL is a property of the file. */
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* Again: nothing to do. */
    assert_int_equal(migrate(fx, &applied, err, sizeof err), 0);
    assert_int_equal(applied, 0);
}

static void on_created(void *ud, int status, const store_project_t *p) {
    int64_t *id = ud;
    *id = status == 0 ? p->id : status;
}

typedef struct {
    int status;
    store_project_t *p;
} got_t;

static void on_got(void *ud, int status, const store_project_t *p) {
    got_t *g = ud;
    g->status = status;
    g->p = p ? store_project_dup(p) : NULL;
}

static void test_existing_database_keeps_data(void **state) {
    fx_t *fx = *state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char err[256] = "";
    store_t *s = store_open(&loop, fx->url, NULL, err, sizeof err);
    assert_non_null(s);
    const char *d[] = {"keep.example", "also.example"};
    int64_t id = 0;
    assert_int_equal(store_project_create(s, "kept", d, 2, on_created, &id), 0);
    store_wait(s);
    assert_true(id > 0);
    store_close(s, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);

    /* Re-opening applies nothing (store_migrate reports it) and the data is there. */
    int applied = -1;
    assert_int_equal(migrate(fx, &applied, err, sizeof err), 0);
    assert_int_equal(applied, 0);
    s = store_open(&loop, fx->url, NULL, err, sizeof err);
    assert_non_null(s);
    got_t g = {0};
    assert_int_equal(store_project_get(s, id, on_got, &g), 0);
    store_wait(s);
    assert_int_equal(g.status, 0);
    assert_string_equal(g.p->name, "kept");
    assert_int_equal(g.p->ndomains, 2);
    assert_string_equal(g.p->domains[0], "keep.example");
    assert_string_equal(g.p->domains[1], "also.example");
    store_project_free(g.p);
    store_close(s, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);

    sqlite3 *db = db_open(fx);
    assert_int_equal(db_int(db, "SELECT count(*) FROM schema_migrations"),
                     store_migrations_latest());
    sqlite3_close(db);
}

static void test_newer_database_refused(void **state) {
    fx_t *fx = *state;
    int applied = -1;
    char err[256];
    assert_int_equal(migrate(fx, &applied, err, sizeof err), 0);
    sqlite3 *db = db_open(fx);
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO schema_migrations VALUES (%d, 0)",
             store_migrations_latest() + 1);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    assert_int_not_equal(migrate(fx, &applied, err, sizeof err), 0);
    assert_int_equal(applied, 0);
    assert_non_null(strstr(err, "newer than this binary"));
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    err[0] = '\0';
    store_t *s = store_open(&loop, fx->url, NULL, err, sizeof err);
    assert_null(s);
    assert_non_null(strstr(err, "newer than this binary"));
    assert_int_equal(uv_loop_close(&loop), 0);

    db = db_open(fx); /* untouched */
    assert_int_equal(db_int(db, "SELECT max(version) FROM schema_migrations"),
                     store_migrations_latest() + 1);
    sqlite3_close(db);
}

static void test_failing_migration_rolls_back(void **state) {
    fx_t *fx = *state;
    char err[256] = "";
    store_conn_t *c = store_sqlite_ops.conn_open(fx->path, NULL, STORE_CONN_WRITE, err, sizeof err);
    assert_non_null(c);
    const store_migration_t broken[] = {
        {1, "t1", "CREATE TABLE t1 (a {{bigint}} NOT NULL){{strict}};"},
        {2, "broken", "CREATE TABLE t2 (a INTEGER); INSERT INTO t1 VALUES (1); CREATE TABLE (;"},
        {3, "never", "CREATE TABLE t3 (a INTEGER);"},
    };
    int applied = -1;
    int rc = store_migrations_run(c, broken, 3, &applied, err, sizeof err);
    assert_int_not_equal(rc, 0);
    assert_int_equal(applied, 1);
    assert_non_null(strstr(err, "migration 2 (broken) failed"));
    assert_non_null(strstr(err, "syntax error"));

    sqlite3 *db = db_open(fx);
    assert_int_equal(db_int(db, "SELECT max(version) FROM schema_migrations"), 1);
    assert_int_equal(db_int(db, "SELECT count(*) FROM t1"), 0);
    assert_int_equal(db_int(db, "SELECT count(*) FROM sqlite_schema WHERE name IN ('t2', 't3')"),
                     0);
    sqlite3_close(db);

    /* A placeholder the table does not know is refused before anything runs. */
    const store_migration_t typo[] = {
        broken[0],
        {2, "typo", "CREATE TABLE t2 (a {{bigInt}});"},
    };
    rc = store_migrations_run(c, typo, 2, &applied, err, sizeof err);
    assert_int_equal(rc, PL_EINVAL);
    assert_int_equal(applied, 0);
    assert_non_null(strstr(err, "{{bigInt}}"));

    /* Fixed: the rest applies, and the first is not applied again. */
    const store_migration_t fixed[] = {
        broken[0],
        {2, "fixed", "CREATE TABLE t2 (a INTEGER); INSERT INTO t1 VALUES (1);"},
        broken[2],
    };
    rc = store_migrations_run(c, fixed, 3, &applied, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_int_equal(applied, 2);
    store_sqlite_ops.conn_close(c);
    db = db_open(fx);
    assert_int_equal(db_int(db, "SELECT max(version) FROM schema_migrations"), 3);
    assert_int_equal(db_int(db, "SELECT count(*) FROM t1"), 1);
    sqlite3_close(db);
}

/* A database at version 1 with data in it reaches version 2: the conversations, projects and
 * messages stay, refresh_tokens is rebuilt (empty, integer families) and the inbox index
 * covers the status. */
static void test_upgrade_from_v1(void **state) {
    fx_t *fx = *state;
    char err[256] = "";
    store_conn_t *c = store_sqlite_ops.conn_open(fx->path, NULL, STORE_CONN_WRITE, err, sizeof err);
    assert_non_null(c);
    size_t n = 0;
    const store_migration_t *list = store_migrations(&n);
    assert_true(n >= 2);
    int applied = -1;
    assert_int_equal(store_migrations_run(c, list, 1, &applied, err, sizeof err), 0);
    assert_int_equal(applied, 1);
    store_sqlite_ops.conn_close(c);

    sqlite3 *db = db_open(fx);
    static const char *const v1_rows[] = {
        "INSERT INTO projects (id, name, created_at, updated_at) VALUES (1, 'p', 1, 1)",
        "INSERT INTO users (id, email, password_hash, created_at, updated_at) "
        "VALUES (1, 'a@example.com', 'h', 1, 1)",
        "INSERT INTO visitors (id, project_id, uid, last_seen_at, created_at) "
        "VALUES (1, 1, 'visitor-1', 1, 1)",
        "INSERT INTO conversations (id, project_id, visitor_id, status, last_message_timestamp, "
        "created_at, updated_at) VALUES (1, 1, 1, 'pending', 5, 1, 5)",
        "INSERT INTO messages (conversation_id, project_id, visitor_id, content, sender_id, "
        "from_customer, temp_id, created_at) VALUES (1, 1, 1, 'hi', 'visitor-1', TRUE, 't1', 5)",
        "INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at, created_at) "
        "VALUES (1, 'family-text', 'h1', 10, 1)",
    };
    for (size_t i = 0; i < sizeof v1_rows / sizeof v1_rows[0]; i++)
        assert_int_equal(sqlite3_exec(db, v1_rows[i], NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(db_int(db, "SELECT count(*) FROM pragma_index_info('conversations_newest')"),
                     3);
    sqlite3_close(db);

    assert_int_equal(migrate(fx, &applied, err, sizeof err), 0);
    assert_int_equal(applied, store_migrations_latest() - 1);
    db = db_open(fx);
    assert_int_equal(db_int(db, "SELECT max(version) FROM schema_migrations"),
                     store_migrations_latest());
    assert_int_equal(db_int(db, "SELECT count(*) FROM conversations WHERE status = 'pending'"), 1);
    assert_int_equal(db_int(db, "SELECT count(*) FROM messages"), 1);
    assert_int_equal(db_int(db, "SELECT count(*) FROM refresh_tokens"), 0);
    assert_int_equal(db_int(db, "SELECT count(*) FROM pragma_table_info('refresh_tokens') "
                                "WHERE name = 'family_id' AND type = 'INTEGER'"),
                     1);
    assert_int_equal(db_int(db, "SELECT count(*) FROM pragma_index_info('conversations_newest')"),
                     4);
    assert_int_equal(db_int(db, "SELECT name = 'status' FROM pragma_index_info("
                                "'conversations_newest') WHERE seqno = 3"),
                     1);
    sqlite3_close(db);
}

/* ---- the data model -------------------------------------------------------------------------- */

static void test_schema_rules(void **state) {
    fx_t *fx = *state;
    int applied;
    char err[256];
    assert_int_equal(migrate(fx, &applied, err, sizeof err), 0);
    sqlite3 *db = db_open(fx);
    /* Each row runs on the database as the previous rows left it. */
    const struct {
        const char *sql;
        int rc; /* expected (extended) result */
    } rows[] = {
        {"INSERT INTO projects (id, name, created_at, updated_at) VALUES (1, 'p', 1, 1)",
         SQLITE_OK},
        {"INSERT INTO projects (name, created_at, updated_at) VALUES ('', 1, 1)",
         SQLITE_CONSTRAINT_CHECK},
        {"INSERT INTO projects (name, created_at, updated_at) VALUES ('q', 'soon', 1)",
         SQLITE_CONSTRAINT_DATATYPE}, /* STRICT */
        {"INSERT INTO project_domains (project_id, domain) VALUES (1, 'a.example')", SQLITE_OK},
        {"INSERT INTO project_domains (project_id, domain) VALUES (1, 'a.example')",
         SQLITE_CONSTRAINT_UNIQUE},
        {"INSERT INTO project_domains (project_id, domain) VALUES (1, '')",
         SQLITE_CONSTRAINT_CHECK},
        {"INSERT INTO project_domains (project_id, domain) VALUES (99, 'b.example')",
         SQLITE_CONSTRAINT_FOREIGNKEY},
        {"INSERT INTO users (id, email, password_hash, created_at, updated_at) "
         "VALUES (1, 'a@example.com', 'h', 1, 1)",
         SQLITE_OK},
        {"INSERT INTO users (email, password_hash, created_at, updated_at) "
         "VALUES ('a@example.com', 'h', 1, 1)",
         SQLITE_CONSTRAINT_UNIQUE},
        {"INSERT INTO project_members VALUES (1, 1, 'owner', 1)", SQLITE_CONSTRAINT_CHECK},
        {"INSERT INTO project_members VALUES (1, 1, 'manager', 1)", SQLITE_OK},
        {"INSERT INTO project_members VALUES (1, 1, 'agent', 1)", SQLITE_CONSTRAINT_PRIMARYKEY},
        {"INSERT INTO visitors (id, project_id, uid, last_seen_at, created_at) "
         "VALUES (1, 1, 'visitor-1', 1, 1)",
         SQLITE_OK},
        {"INSERT INTO visitors (id, project_id, uid, last_seen_at, created_at) "
         "VALUES (2, 1, 'visitor-2', 1, 1)",
         SQLITE_OK},
        {"INSERT INTO visitors (project_id, uid, last_seen_at, created_at) "
         "VALUES (1, 'visitor-1', 1, 1)",
         SQLITE_CONSTRAINT_UNIQUE},
        {"INSERT INTO conversations (id, project_id, visitor_id, last_message_timestamp, "
         "created_at, updated_at) VALUES (1, 1, 1, 1, 1, 1)",
         SQLITE_OK},
        {"INSERT INTO conversations (project_id, visitor_id, status, last_message_timestamp, "
         "created_at, updated_at) VALUES (1, 1, 'closed', 1, 1, 1)",
         SQLITE_CONSTRAINT_CHECK},
        {"INSERT INTO conversations (project_id, visitor_id, last_message_timestamp, "
         "created_at, updated_at) VALUES (1, 42, 1, 1, 1)",
         SQLITE_CONSTRAINT_FOREIGNKEY},
        /* the idempotency key: (visitor, tempId) once; NULL temp_ids never collide */
        {"INSERT INTO messages (conversation_id, project_id, visitor_id, content, sender_id, "
         "from_customer, temp_id, created_at) VALUES (1, 1, 1, 'hi', 'visitor-1', TRUE, 't1', 1)",
         SQLITE_OK},
        {"INSERT INTO messages (conversation_id, project_id, visitor_id, content, sender_id, "
         "from_customer, temp_id, created_at) VALUES (1, 1, 1, 'hi', 'visitor-1', TRUE, 't1', 2)",
         SQLITE_CONSTRAINT_UNIQUE},
        {"INSERT INTO messages (conversation_id, project_id, visitor_id, content, sender_id, "
         "from_customer, temp_id, created_at) VALUES (1, 1, 2, 'hi', 'visitor-2', TRUE, 't1', 2)",
         SQLITE_OK},
        {"INSERT INTO messages (conversation_id, project_id, visitor_id, content, sender_id, "
         "from_customer, user_id, created_at) VALUES (1, 1, 1, 'a', '1', FALSE, 1, 3)",
         SQLITE_OK},
        {"INSERT INTO messages (conversation_id, project_id, visitor_id, content, sender_id, "
         "from_customer, user_id, created_at) VALUES (1, 1, 1, 'b', '1', FALSE, 1, 4)",
         SQLITE_OK},
        {"INSERT INTO messages (conversation_id, project_id, visitor_id, content, sender_id, "
         "from_customer, status, created_at) VALUES (1, 1, 1, 'c', '1', FALSE, 'lost', 5)",
         SQLITE_CONSTRAINT_CHECK},
        /* migration 2: families are integers; a hash is never empty */
        {"INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at, created_at) "
         "VALUES (1, 1, 'h1', 10, 1)",
         SQLITE_OK},
        {"INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at, created_at) "
         "VALUES (1, 1, 'h1', 10, 1)",
         SQLITE_CONSTRAINT_UNIQUE},
        {"INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at, created_at) "
         "VALUES (1, 'f', 'h2', 10, 1)",
         SQLITE_CONSTRAINT_DATATYPE},
        {"INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at, created_at) "
         "VALUES (1, 1, '', 10, 1)",
         SQLITE_CONSTRAINT_CHECK},
        {"INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at, created_at) "
         "VALUES (77, 1, 'h3', 10, 1)",
         SQLITE_CONSTRAINT_FOREIGNKEY},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int rc = sqlite3_exec(db, rows[i].sql, NULL, NULL, NULL);
        if (rc != rows[i].rc) {
            print_error("row %zu: got %d (%s), want %d\n", i, rc, sqlite3_errmsg(db), rows[i].rc);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
    /* Defaults. */
    assert_int_equal(db_int(db, "SELECT count(*) FROM conversations WHERE id = 1 AND "
                                "status = 'open' AND unread_count = 0 AND "
                                "last_message_snippet = '' AND metadata IS NULL"),
                     1);
    assert_int_equal(db_int(db, "SELECT count(*) FROM projects WHERE id = 1 AND "
                                "widget_settings = '{}' AND identity_verification = 0"),
                     1);
    assert_int_equal(db_int(db, "SELECT count(*) FROM messages WHERE status = 'sent'"), 4);
    /* Deleting a user keeps its messages (user_id set to NULL) and its memberships go. */
    assert_int_equal(sqlite3_exec(db, "DELETE FROM users WHERE id = 1", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(db_int(db, "SELECT count(*) FROM messages WHERE user_id IS NULL"), 4);
    assert_int_equal(db_int(db, "SELECT count(*) FROM project_members"), 0);
    /* Deleting a project removes everything under it. */
    assert_int_equal(sqlite3_exec(db, "DELETE FROM projects WHERE id = 1", NULL, NULL, NULL),
                     SQLITE_OK);
    static const char *const tables[] = {"project_domains", "visitors", "conversations",
                                         "messages"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", tables[i]);
        assert_int_equal(db_int(db, sql), 0);
    }
    sqlite3_close(db);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_list),
        cmocka_unit_test_setup_teardown(test_fresh_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_existing_database_keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_database_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_migration_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_from_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_rules, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
