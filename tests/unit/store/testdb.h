/* The database under test for the store's unit tests, on either backend, so that every test
 * file runs unchanged against SQLite and PostgreSQL:
 *   - PARLEY_TEST_DATABASE unset (plain `ctest`): SQLite, a database file in a fresh temporary
 *     directory per test;
 *   - PARLEY_TEST_DATABASE=postgres://.../db (tests/unit/store/run-pg.sh sets it): a fresh
 *     database per test on that server, created empty (CREATE DATABASE ... TEMPLATE template0)
 *     and dropped at teardown. Any other value fails the test (a missing server is a failure,
 *     not a skip).
 * Besides the store's URL, a test gets a second, plain connection to the same database (SQLite
 * or libpq) to look at what the store wrote and to change rows no store operation changes. Its
 * SQL is written once with ?1 (text) and ?2 (integer) parameters; for PostgreSQL they become
 * $1 and $2. Outcomes of statements are compared as backend-neutral classes (tdb_rc_t).
 *
 * Header-only (static inline), included by each tests/unit/store/test_*.c. */
#ifndef TESTS_UNIT_STORE_TESTDB_H
#define TESTS_UNIT_STORE_TESTDB_H

#include <ftw.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a statement did, whatever the backend. */
typedef enum {
    TDB_OK,
    TDB_UNIQUE,      /* a unique or primary key refused it */
    TDB_CHECK,       /* a CHECK constraint */
    TDB_FOREIGN_KEY, /* a foreign key */
    TDB_NOT_NULL,
    TDB_DATATYPE, /* a value of the wrong type (SQLite STRICT, PostgreSQL's input syntax) */
    TDB_ERROR     /* anything else (syntax, ...): tdb_errmsg says what */
} tdb_rc_t;

typedef struct {
    bool pg;          /* PostgreSQL (else SQLite) */
    char dir[64];     /* a fresh temporary directory (both backends), removed at teardown */
    char path[256];   /* SQLite: the database file */
    char url[1024];   /* the store's URL */
    char name[64];    /* PostgreSQL: the database created for this test */
    char server[900]; /* PostgreSQL: PARLEY_TEST_DATABASE */
    sqlite3 *db;      /* the plain connection (tdb_connect), SQLite */
    PGconn *pgc;      /* the plain connection, PostgreSQL */
    char err[512];    /* the last error */
} tdb_t;

/* PARLEY_TEST_DATABASE, or NULL when the tests use SQLite. */
static inline const char *tdb_server(void) {
    const char *s = getenv("PARLEY_TEST_DATABASE");
    return s && s[0] ? s : NULL;
}

/* True when the tests run against PostgreSQL. */
static inline bool tdb_is_pg(void) {
    return tdb_server() != NULL;
}

/* Writes into out the URL u with its database name replaced by name. */
static inline bool tdb_url_with_db(const char *u, const char *name, char *out, size_t outlen) {
    const char *auth = strstr(u, "://");
    if (!auth)
        return false;
    auth += 3;
    const char *path = auth + strcspn(auth, "/?");
    const char *query = path + strcspn(path, "?");
    int n = snprintf(out, outlen, "%.*s/%s%s", (int)(path - u), u, name, query);
    return n > 0 && (size_t)n < outlen;
}

/* Runs a statement without parameters on a maintenance connection to the test server. */
static inline bool tdb_admin(tdb_t *t, const char *sql) {
    char url[1024];
    if (!tdb_url_with_db(t->server, "postgres", url, sizeof url)) {
        snprintf(t->err, sizeof t->err, "cannot parse PARLEY_TEST_DATABASE");
        return false;
    }
    PGconn *c = PQconnectdb(url);
    bool ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
        PGresult *r = PQexec(c, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            snprintf(t->err, sizeof t->err, "%s", PQresultErrorMessage(r));
        PQclear(r);
    } else {
        snprintf(t->err, sizeof t->err, "%s", PQerrorMessage(c));
    }
    PQfinish(c);
    return ok;
}

/* A fresh, empty database for one test (tag names the temporary directory). 0, or -1 with
 * the reason printed. */
static inline int tdb_create(tdb_t *t, const char *tag) {
    memset(t, 0, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "/tmp/parley-%s-XXXXXX", tag);
    if (!mkdtemp(t->dir)) {
        fprintf(stderr, "mkdtemp: failed\n");
        return -1;
    }
    snprintf(t->path, sizeof t->path, "%s/parley.db", t->dir);
    const char *server = tdb_server();
    if (!server) {
        snprintf(t->url, sizeof t->url, "sqlite:%s", t->path);
        return 0;
    }
    t->pg = true;
    if (strncmp(server, "postgres://", 11) != 0 && strncmp(server, "postgresql://", 13) != 0) {
        fprintf(stderr, "PARLEY_TEST_DATABASE is not a postgres:// URL\n");
        return -1;
    }
    snprintf(t->server, sizeof t->server, "%s", server);
    static unsigned counter;
    snprintf(t->name, sizeof t->name, "parley_test_%ld_%u", (long)getpid(), ++counter);
    char sql[160];
    snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\" TEMPLATE template0 ENCODING 'UTF8'", t->name);
    if (!tdb_url_with_db(server, t->name, t->url, sizeof t->url) || !tdb_admin(t, sql)) {
        fprintf(stderr, "cannot create the test database: %s\n", t->err);
        return -1;
    }
    return 0;
}

static inline void tdb_disconnect(tdb_t *t) {
    if (t->db)
        sqlite3_close(t->db);
    if (t->pgc)
        PQfinish(t->pgc);
    t->db = NULL;
    t->pgc = NULL;
}

static inline int tdb_rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* Closes the plain connection, drops the test database and removes the directory. */
static inline void tdb_destroy(tdb_t *t) {
    tdb_disconnect(t);
    if (t->name[0]) {
        char sql[160];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", t->name);
        if (!tdb_admin(t, sql))
            fprintf(stderr, "cannot drop %s: %s\n", t->name, t->err);
    }
    if (t->dir[0])
        nftw(t->dir, tdb_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Opens the plain connection (once the store created the database). 0 or -1. */
static inline int tdb_connect(tdb_t *t) {
    if (!t->pg) {
        if (sqlite3_open(t->path, &t->db) != SQLITE_OK)
            return -1;
        sqlite3_extended_result_codes(t->db, 1);
        sqlite3_busy_timeout(t->db, 5000);
        return sqlite3_exec(t->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL) == SQLITE_OK ? 0
                                                                                              : -1;
    }
    t->pgc = PQconnectdb(t->url);
    if (PQstatus(t->pgc) != CONNECTION_OK) {
        fprintf(stderr, "tdb_connect: %s", PQerrorMessage(t->pgc));
        return -1;
    }
    PQclear(PQexec(t->pgc, "SET client_min_messages = error"));
    return 0;
}

static inline const char *tdb_errmsg(const tdb_t *t) {
    return t->err;
}

/* sql with ?1 and ?2 written as $1 and $2 (PostgreSQL), into out. */
static inline void tdb_dollars(const char *sql, char *out, size_t outlen) {
    size_t o = 0;
    for (const char *p = sql; *p && o + 1 < outlen; p++)
        out[o++] = (*p == '?' && (p[1] == '1' || p[1] == '2')) ? '$' : *p;
    out[o] = '\0';
}

static inline tdb_rc_t tdb_sqlite_class(int rc) {
    switch (rc) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return TDB_OK;
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return TDB_UNIQUE;
    case SQLITE_CONSTRAINT_CHECK:
        return TDB_CHECK;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return TDB_FOREIGN_KEY;
    case SQLITE_CONSTRAINT_NOTNULL:
        return TDB_NOT_NULL;
    case SQLITE_CONSTRAINT_DATATYPE:
        return TDB_DATATYPE;
    default:
        return TDB_ERROR;
    }
}

static inline tdb_rc_t tdb_pg_class(const PGresult *r) {
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return TDB_OK;
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (!s)
        return TDB_ERROR;
    if (strcmp(s, "23505") == 0)
        return TDB_UNIQUE;
    if (strcmp(s, "23514") == 0)
        return TDB_CHECK;
    if (strcmp(s, "23503") == 0)
        return TDB_FOREIGN_KEY;
    if (strcmp(s, "23502") == 0)
        return TDB_NOT_NULL;
    if (strcmp(s, "22P02") == 0 || strcmp(s, "42804") == 0)
        return TDB_DATATYPE;
    return TDB_ERROR;
}

/* Runs sql (one statement, or several without parameters) with the optional text parameter
 * ?1 and integer parameter ?2. On PostgreSQL, outside an explicit transaction each statement
 * commits on its own. For a SELECT, *row0 (when given) gets column 0 of the first row as an
 * integer (-1 when there is no row or it is NULL; a boolean reads as 0 or 1). */
static inline tdb_rc_t tdb_run(tdb_t *t, const char *sql, const char *text, int64_t id,
                               int64_t *row0) {
    t->err[0] = '\0';
    if (row0)
        *row0 = -1;
    if (!t->pg) {
        tdb_rc_t cls = TDB_OK;
        const char *p = sql;
        while (*p && cls == TDB_OK) {
            sqlite3_stmt *st = NULL;
            const char *tail = NULL;
            int rc = sqlite3_prepare_v2(t->db, p, -1, &st, &tail);
            if (rc != SQLITE_OK) {
                snprintf(t->err, sizeof t->err, "%s", sqlite3_errmsg(t->db));
                return tdb_sqlite_class(sqlite3_extended_errcode(t->db));
            }
            if (!st)
                break;
            int np = sqlite3_bind_parameter_count(st);
            if (text && np >= 1)
                sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
            if (np >= 2)
                sqlite3_bind_int64(st, 2, id);
            bool first = true;
            while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (first && row0 && sqlite3_column_type(st, 0) != SQLITE_NULL)
                    *row0 = sqlite3_column_int64(st, 0);
                first = false;
            }
            if (rc != SQLITE_DONE) {
                snprintf(t->err, sizeof t->err, "%s", sqlite3_errmsg(t->db));
                cls = tdb_sqlite_class(sqlite3_extended_errcode(t->db));
            }
            sqlite3_finalize(st);
            p = tail;
        }
        return cls;
    }
    size_t len = strlen(sql) + 1;
    char *q = malloc(len);
    if (!q)
        return TDB_ERROR;
    tdb_dollars(sql, q, len);
    PGresult *r;
    if (strstr(q, "$1") || strstr(q, "$2")) {
        char num[24];
        snprintf(num, sizeof num, "%lld", (long long)id);
        const Oid types[2] = {25 /* text */, 20 /* int8 */};
        const char *vals[2] = {text, num};
        r = PQexecParams(t->pgc, q, 2, types, vals, NULL, NULL, 0);
    } else {
        r = PQexec(t->pgc, q);
    }
    free(q);
    tdb_rc_t cls = tdb_pg_class(r);
    if (cls != TDB_OK) {
        snprintf(t->err, sizeof t->err, "%s", PQresultErrorMessage(r));
    } else if (row0 && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 &&
               !PQgetisnull(r, 0, 0)) {
        const char *v = PQgetvalue(r, 0, 0);
        *row0 = v[0] == 't' ? 1 : v[0] == 'f' ? 0 : strtoll(v, NULL, 10);
    }
    PQclear(r);
    return cls;
}

/* tdb_run without a result. */
static inline tdb_rc_t tdb_exec(tdb_t *t, const char *sql, const char *text, int64_t id) {
    return tdb_run(t, sql, text, id, NULL);
}

/* Column 0 of the first row of sql (parameter ?1 = text) as an integer; -1 when there is no
 * row or the value is NULL. *ok (when given) is false when the statement failed. */
static inline int64_t tdb_int(tdb_t *t, const char *sql, const char *text, bool *ok) {
    int64_t v;
    tdb_rc_t rc = tdb_run(t, sql, text, 0, &v);
    if (ok)
        *ok = rc == TDB_OK;
    return rc == TDB_OK ? v : -1;
}

/* The text of every row of column col of sql, joined with '\n' into out (truncated to fit).
 * false when the statement failed. */
static inline bool tdb_texts(tdb_t *t, const char *sql, int col, char *out, size_t outlen) {
    size_t o = 0;
    out[0] = '\0';
    if (!t->pg) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(t->db, sql, -1, &st, NULL) != SQLITE_OK) {
            snprintf(t->err, sizeof t->err, "%s", sqlite3_errmsg(t->db));
            return false;
        }
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const unsigned char *v = sqlite3_column_text(st, col);
            int n = snprintf(out + o, outlen - o, "%s%s", o ? "\n" : "", v ? (const char *)v : "");
            if (n < 0 || (size_t)n >= outlen - o)
                break;
            o += (size_t)n;
        }
        sqlite3_finalize(st);
        return rc == SQLITE_ROW || rc == SQLITE_DONE;
    }
    PGresult *r = PQexec(t->pgc, sql);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(t->err, sizeof t->err, "%s", PQresultErrorMessage(r));
    for (int i = 0; ok && i < PQntuples(r); i++) {
        int n = snprintf(out + o, outlen - o, "%s%s", o ? "\n" : "", PQgetvalue(r, i, col));
        if (n < 0 || (size_t)n >= outlen - o)
            break;
        o += (size_t)n;
    }
    PQclear(r);
    return ok;
}

/* Holds the write lock of the database on the plain connection until tdb_unlock_writes, as
 * another process would: SQLite's BEGIN IMMEDIATE; on PostgreSQL a transaction holding the
 * table projects in EXCLUSIVE mode (reads go on, writes to it wait). 0 or -1. */
static inline int tdb_lock_writes(tdb_t *t) {
    const char *sql = t->pg ? "BEGIN; LOCK TABLE projects IN EXCLUSIVE MODE" : "BEGIN IMMEDIATE";
    return tdb_exec(t, sql, NULL, 0) == TDB_OK ? 0 : -1;
}

static inline int tdb_unlock_writes(tdb_t *t) {
    return tdb_exec(t, "ROLLBACK", NULL, 0) == TDB_OK ? 0 : -1;
}

/* The test's copy of the SQL for each backend: a and b are the SQLite and PostgreSQL texts. */
static inline const char *tdb_pick(const tdb_t *t, const char *sqlite_sql, const char *pg_sql) {
    return t->pg ? pg_sql : sqlite_sql;
}

#endif
