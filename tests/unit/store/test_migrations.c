/* Unit tests for src/store/migrations.h: placeholder rendering per dialect (good, boundary and
 * malformed rows), the migration list, migrating an empty database and an existing one (nothing
 * re-applied, data kept), refusing a database newer than the binary, a failing migration that
 * rolls back alone, upgrading a version-1 database with data to the latest version, several
 * processes migrating one database at once (each version applied once), and the rules of the
 * data model itself (unique keys, checks, foreign keys and cascades, column types) checked
 * with a plain connection on a migrated database. Every test gets a fresh database (testdb.h:
 * SQLite, or PostgreSQL when PARLEY_TEST_DATABASE is set). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/migrations.h"
#include "store/store.h"
#include "store/store_internal.h"
#include "testdb.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

typedef struct {
    tdb_t db;
    char *url; /* db.url */
} fx_t;

static int setup(void **state) {
    fx_t *fx = calloc(1, sizeof *fx);
    if (!fx || tdb_create(&fx->db, "migr") != 0)
        return -1;
    fx->url = fx->db.url;
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fx_t *fx = *state;
    tdb_destroy(&fx->db);
    free(fx);
    return 0;
}

/* The plain connection to inspect what the store wrote (closed at teardown). */
static tdb_t *db_open(fx_t *fx) {
    tdb_disconnect(&fx->db);
    assert_int_equal(tdb_connect(&fx->db), 0);
    return &fx->db;
}

/* The first column of the first row as an integer (-1 when there is no row). */
static int64_t db_int(tdb_t *db, const char *sql) {
    bool ok;
    int64_t v = tdb_int(db, sql, NULL, &ok);
    if (!ok) {
        print_error("%s: %s\n", sql, tdb_errmsg(db));
        fail();
    }
    return v;
}

/* A connection of the backend under test, as store_open makes its write connection. */
static store_conn_t *conn_open(const fx_t *fx) {
    char err[256] = "";
    const char *target = NULL;
    const store_ops_t *ops = store__backend_for_url(fx->url, &target, err, sizeof err);
    assert_non_null(ops);
    store_conn_t *c = ops->conn_open(target, NULL, STORE_CONN_WRITE, err, sizeof err);
    if (!c)
        print_error("conn_open: %s\n", err);
    assert_non_null(c);
    return c;
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
        {"{{bigint}},{{bool}},{{json}}", STORE_DIALECT_POSTGRES, "BIGINT,BOOLEAN,JSON", NULL},
        {"CREATE TABLE t (a TEXT){{strict}};", STORE_DIALECT_SQLITE,
         "CREATE TABLE t (a TEXT) STRICT;", NULL},
        {"CREATE TABLE t (a TEXT){{strict}};", STORE_DIALECT_POSTGRES, "CREATE TABLE t (a TEXT);",
         NULL},
        /* boundary: placeholders at the very start and end, back to back; lone braces */
        {"{{json}}", STORE_DIALECT_SQLITE, "TEXT", NULL},
        {"{{json}}{{json}}", STORE_DIALECT_POSTGRES, "JSONJSON", NULL},
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

    tdb_t *db = db_open(fx);
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
        "outbox",
    };
    const char *find = tdb_pick(db, "SELECT count(*) FROM sqlite_schema WHERE name = ?1",
                                "SELECT count(*) FROM pg_class WHERE relname = ?1 "
                                "AND relnamespace = 'public'::regnamespace");
    for (size_t i = 0; i < sizeof objects / sizeof objects[0]; i++) {
        int64_t n = tdb_int(db, find, objects[i], NULL);
        if (n != 1)
            print_error("missing %s\n", objects[i]);
        assert_int_equal(n, 1);
    }
    if (!db->pg) { /* WAL is a property of the SQLite file */
        char mode[16];
        assert_true(tdb_texts(db, "PRAGMA journal_mode", 0, mode, sizeof mode));
        assert_string_equal(mode, "wal");
    } else { /* JSON columns keep their text: the JSON type, not JSONB */
        assert_int_equal(db_int(db, "SELECT count(*) FROM information_schema.columns WHERE "
                                    "table_name = 'projects' AND column_name = "
                                    "'widget_settings' AND data_type = 'json'"),
                         1);
    }
    tdb_disconnect(db);

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

    tdb_t *db = db_open(fx);
    assert_int_equal(db_int(db, "SELECT count(*) FROM schema_migrations"),
                     store_migrations_latest());
    tdb_disconnect(db);
}

static void test_newer_database_refused(void **state) {
    fx_t *fx = *state;
    int applied = -1;
    char err[256];
    assert_int_equal(migrate(fx, &applied, err, sizeof err), 0);
    tdb_t *db = db_open(fx);
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO schema_migrations VALUES (%d, 0)",
             store_migrations_latest() + 1);
    assert_int_equal(tdb_exec(db, sql, NULL, 0), TDB_OK);
    tdb_disconnect(db);

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
    tdb_disconnect(db);
}

static void test_failing_migration_rolls_back(void **state) {
    fx_t *fx = *state;
    char err[256] = "";
    store_conn_t *c = conn_open(fx);
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

    tdb_t *db = db_open(fx);
    assert_int_equal(db_int(db, "SELECT max(version) FROM schema_migrations"), 1);
    assert_int_equal(db_int(db, "SELECT count(*) FROM t1"), 0);
    assert_int_equal(db_int(db, tdb_pick(db,
                                         "SELECT count(*) FROM sqlite_schema "
                                         "WHERE name IN ('t2', 't3')",
                                         "SELECT count(*) FROM pg_class "
                                         "WHERE relname IN ('t2', 't3')")),
                     0);
    tdb_disconnect(db);

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
    c->ops->conn_close(c);
    db = db_open(fx);
    assert_int_equal(db_int(db, "SELECT max(version) FROM schema_migrations"), 3);
    assert_int_equal(db_int(db, "SELECT count(*) FROM t1"), 1);
    tdb_disconnect(db);
}

/* A database at version 1 with data in it reaches the latest version: the conversations,
 * projects and messages stay, refresh_tokens is rebuilt (empty, integer families), the inbox
 * index covers the status, and the outbox exists (empty). */
static void test_upgrade_from_v1(void **state) {
    fx_t *fx = *state;
    char err[256] = "";
    store_conn_t *c = conn_open(fx);
    size_t n = 0;
    const store_migration_t *list = store_migrations(&n);
    assert_true(n >= 2);
    int applied = -1;
    assert_int_equal(store_migrations_run(c, list, 1, &applied, err, sizeof err), 0);
    assert_int_equal(applied, 1);
    c->ops->conn_close(c);

    tdb_t *db = db_open(fx);
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
        assert_int_equal(tdb_exec(db, v1_rows[i], NULL, 0), TDB_OK);
    const char *index_columns =
        tdb_pick(db, "SELECT count(*) FROM pragma_index_info('conversations_newest')",
                 "SELECT indnatts FROM pg_index "
                 "WHERE indexrelid = 'conversations_newest'::regclass");
    assert_int_equal(db_int(db, index_columns), 3);
    tdb_disconnect(db);

    assert_int_equal(migrate(fx, &applied, err, sizeof err), 0);
    assert_int_equal(applied, store_migrations_latest() - 1);
    db = db_open(fx);
    assert_int_equal(db_int(db, "SELECT max(version) FROM schema_migrations"),
                     store_migrations_latest());
    assert_int_equal(db_int(db, "SELECT count(*) FROM conversations WHERE status = 'pending'"), 1);
    assert_int_equal(db_int(db, "SELECT count(*) FROM messages"), 1);
    assert_int_equal(db_int(db, "SELECT count(*) FROM refresh_tokens"), 0);
    assert_int_equal(db_int(db, "SELECT count(*) FROM outbox"), 0);
    assert_int_equal(db_int(db, tdb_pick(db,
                                         "SELECT count(*) FROM pragma_table_info("
                                         "'refresh_tokens') WHERE name = 'family_id' "
                                         "AND type = 'INTEGER'",
                                         "SELECT count(*) FROM information_schema.columns "
                                         "WHERE table_name = 'refresh_tokens' AND "
                                         "column_name = 'family_id' AND data_type = 'bigint'")),
                     1);
    assert_int_equal(db_int(db, index_columns), 4);
    assert_int_equal(db_int(db, tdb_pick(db,
                                         "SELECT name = 'status' FROM pragma_index_info("
                                         "'conversations_newest') WHERE seqno = 3",
                                         "SELECT a.attname = 'status' FROM pg_index AS i "
                                         "JOIN pg_attribute AS a ON a.attrelid = i.indrelid "
                                         "AND a.attnum = i.indkey[3] WHERE i.indexrelid = "
                                         "'conversations_newest'::regclass")),
                     1);
    tdb_disconnect(db);
}

/* Several processes (here: threads, each with its own connection) migrating one empty
 * database at once: every version is applied exactly once and every one of them succeeds. */
#define MIGRATORS 4

typedef struct {
    const char *url;
    int rc, applied;
    char err[256];
} migrator_t;

static void *migrator_main(void *arg) {
    migrator_t *m = arg;
    m->rc = store_migrate(m->url, NULL, &m->applied, m->err, sizeof m->err);
    return NULL;
}

static void test_concurrent_migrations(void **state) {
    fx_t *fx = *state;
    migrator_t m[MIGRATORS];
    pthread_t tid[MIGRATORS];
    for (int i = 0; i < MIGRATORS; i++) {
        m[i] = (migrator_t){.url = fx->url, .applied = -1};
        assert_int_equal(pthread_create(&tid[i], NULL, migrator_main, &m[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < MIGRATORS; i++) /* all of them before any assert: m[] is theirs */
        pthread_join(tid[i], NULL);
    for (int i = 0; i < MIGRATORS; i++) {
        if (m[i].rc != 0)
            print_error("migrator %d: %s\n", i, m[i].err);
        assert_int_equal(m[i].rc, 0);
        total += m[i].applied;
    }
    assert_int_equal(total, store_migrations_latest());
    tdb_t *db = db_open(fx);
    assert_int_equal(db_int(db, "SELECT count(*) FROM schema_migrations"),
                     store_migrations_latest());
    tdb_disconnect(db);
}

/* ---- the data model -------------------------------------------------------------------------- */

static void test_schema_rules(void **state) {
    fx_t *fx = *state;
    int applied;
    char err[256];
    assert_int_equal(migrate(fx, &applied, err, sizeof err), 0);
    tdb_t *db = db_open(fx);
    /* Each row runs on the database as the previous rows left it. */
    const struct {
        const char *sql;
        tdb_rc_t rc; /* expected outcome */
    } rows[] = {
        {"INSERT INTO projects (id, name, created_at, updated_at) VALUES (1, 'p', 1, 1)", TDB_OK},
        {"INSERT INTO projects (name, created_at, updated_at) VALUES ('', 1, 1)", TDB_CHECK},
        {"INSERT INTO projects (name, created_at, updated_at) VALUES ('q', 'soon', 1)",
         TDB_DATATYPE}, /* SQLite: STRICT */
        {"INSERT INTO project_domains (project_id, domain) VALUES (1, 'a.example')", TDB_OK},
        {"INSERT INTO project_domains (project_id, domain) VALUES (1, 'a.example')", TDB_UNIQUE},
        {"INSERT INTO project_domains (project_id, domain) VALUES (1, '')", TDB_CHECK},
        {"INSERT INTO project_domains (project_id, domain) VALUES (99, 'b.example')",
         TDB_FOREIGN_KEY},
        {"INSERT INTO users (id, email, password_hash, created_at, updated_at) "
         "VALUES (1, 'a@example.com', 'h', 1, 1)",
         TDB_OK},
        {"INSERT INTO users (email, password_hash, created_at, updated_at) "
         "VALUES ('a@example.com', 'h', 1, 1)",
         TDB_UNIQUE},
        {"INSERT INTO project_members VALUES (1, 1, 'owner', 1)", TDB_CHECK},
        {"INSERT INTO project_members VALUES (1, 1, 'manager', 1)", TDB_OK},
        {"INSERT INTO project_members VALUES (1, 1, 'agent', 1)", TDB_UNIQUE},
        {"INSERT INTO visitors (id, project_id, uid, last_seen_at, created_at) "
         "VALUES (1, 1, 'visitor-1', 1, 1)",
         TDB_OK},
        {"INSERT INTO visitors (id, project_id, uid, last_seen_at, created_at) "
         "VALUES (2, 1, 'visitor-2', 1, 1)",
         TDB_OK},
        {"INSERT INTO visitors (project_id, uid, last_seen_at, created_at) "
         "VALUES (1, 'visitor-1', 1, 1)",
         TDB_UNIQUE},
        {"INSERT INTO conversations (id, project_id, visitor_id, last_message_timestamp, "
         "created_at, updated_at) VALUES (1, 1, 1, 1, 1, 1)",
         TDB_OK},
        {"INSERT INTO conversations (project_id, visitor_id, status, last_message_timestamp, "
         "created_at, updated_at) VALUES (1, 1, 'closed', 1, 1, 1)",
         TDB_CHECK},
        {"INSERT INTO conversations (project_id, visitor_id, last_message_timestamp, "
         "created_at, updated_at) VALUES (1, 42, 1, 1, 1)",
         TDB_FOREIGN_KEY},
        /* the idempotency key: (visitor, tempId) once; NULL temp_ids never collide */
        {"INSERT INTO messages (conversation_id, project_id, visitor_id, content, sender_id, "
         "from_customer, temp_id, created_at) VALUES (1, 1, 1, 'hi', 'visitor-1', TRUE, 't1', 1)",
         TDB_OK},
        {"INSERT INTO messages (conversation_id, project_id, visitor_id, content, sender_id, "
         "from_customer, temp_id, created_at) VALUES (1, 1, 1, 'hi', 'visitor-1', TRUE, 't1', 2)",
         TDB_UNIQUE},
        {"INSERT INTO messages (conversation_id, project_id, visitor_id, content, sender_id, "
         "from_customer, temp_id, created_at) VALUES (1, 1, 2, 'hi', 'visitor-2', TRUE, 't1', 2)",
         TDB_OK},
        {"INSERT INTO messages (conversation_id, project_id, visitor_id, content, sender_id, "
         "from_customer, user_id, created_at) VALUES (1, 1, 1, 'a', '1', FALSE, 1, 3)",
         TDB_OK},
        {"INSERT INTO messages (conversation_id, project_id, visitor_id, content, sender_id, "
         "from_customer, user_id, created_at) VALUES (1, 1, 1, 'b', '1', FALSE, 1, 4)",
         TDB_OK},
        {"INSERT INTO messages (conversation_id, project_id, visitor_id, content, sender_id, "
         "from_customer, status, created_at) VALUES (1, 1, 1, 'c', '1', FALSE, 'lost', 5)",
         TDB_CHECK},
        /* migration 2: families are integers; a hash is never empty */
        {"INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at, created_at) "
         "VALUES (1, 1, 'h1', 10, 1)",
         TDB_OK},
        {"INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at, created_at) "
         "VALUES (1, 1, 'h1', 10, 1)",
         TDB_UNIQUE},
        {"INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at, created_at) "
         "VALUES (1, 'f', 'h2', 10, 1)",
         TDB_DATATYPE},
        {"INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at, created_at) "
         "VALUES (1, 1, '', 10, 1)",
         TDB_CHECK},
        {"INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at, created_at) "
         "VALUES (77, 1, 'h3', 10, 1)",
         TDB_FOREIGN_KEY},
        /* migration 3: the outbox; a topic is never empty */
        {"INSERT INTO outbox (topic, payload, created_at) VALUES ('chat', '{}', 1)", TDB_OK},
        {"INSERT INTO outbox (topic, payload, created_at) VALUES ('', '{}', 1)", TDB_CHECK},
        {"INSERT INTO outbox (topic, payload, created_at) VALUES ('chat', NULL, 1)", TDB_NOT_NULL},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tdb_rc_t rc = tdb_exec(db, rows[i].sql, NULL, 0);
        if (rc != rows[i].rc) {
            print_error("row %zu: got %d (%s), want %d\n", i, rc, tdb_errmsg(db), rows[i].rc);
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
                                "CAST(widget_settings AS TEXT) = '{}' AND "
                                "NOT identity_verification"),
                     1);
    assert_int_equal(db_int(db, "SELECT count(*) FROM messages WHERE status = 'sent'"), 4);
    /* Deleting a user keeps its messages (user_id set to NULL) and its memberships go. */
    assert_int_equal(tdb_exec(db, "DELETE FROM users WHERE id = 1", NULL, 0), TDB_OK);
    assert_int_equal(db_int(db, "SELECT count(*) FROM messages WHERE user_id IS NULL"), 4);
    assert_int_equal(db_int(db, "SELECT count(*) FROM project_members"), 0);
    /* Deleting a project removes everything under it. */
    assert_int_equal(tdb_exec(db, "DELETE FROM projects WHERE id = 1", NULL, 0), TDB_OK);
    static const char *const tables[] = {"project_domains", "visitors", "conversations",
                                         "messages"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", tables[i]);
        assert_int_equal(db_int(db, sql), 0);
    }
    tdb_disconnect(db);
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
        cmocka_unit_test_setup_teardown(test_concurrent_migrations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_rules, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
