/* The SQLite backend of the store port (store_internal.h): one sqlite3 connection per
 * store_conn_t, opened in WAL mode with foreign keys on and a busy timeout, and every statement
 * prepared once per connection (SQLITE_PREPARE_PERSISTENT) from the fixed SQL table below and
 * reused: values are only ever bound as parameters, never pasted into SQL. The write connection
 * creates the database (parent directories 0700, file 0600; SQLite gives the -wal and -shm
 * files the database file's mode); read connections are query_only. Each connection is used by
 * one thread at a time (SQLITE_OPEN_NOMUTEX), as store.c guarantees. */
#include "store/store_internal.h"

#include "core/clock.h"
#include "core/log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the SQL --------------------------------------------------------------------------------- */

typedef enum {
    SQ_BEGIN_READ,
    SQ_BEGIN_WRITE,
    SQ_COMMIT,
    SQ_ROLLBACK,
    SQ_SAVEPOINT,
    SQ_RELEASE,
    SQ_ROLLBACK_TO,
    SQ_SCHEMA_VERSION,
    SQ_SCHEMA_STAMP,
    SQ_PROJECT_INSERT,
    SQ_PROJECT_GET,
    SQ_PROJECT_LIST,
    SQ_PROJECT_TOUCH,
    SQ_PROJECT_COUNT,
    SQ_DOMAINS_OF,
    SQ_DOMAINS_ALL,
    SQ_DOMAIN_INSERT,
    SQ_DOMAIN_DELETE,
    SQ__COUNT
} sq_stmt_id_t;

#define SQ_PROJECT_COLUMNS                                                                         \
    "id, name, widget_settings, identity_verification, identity_secret, created_at, updated_at"

static const char *const g_sql[SQ__COUNT] = {
    [SQ_BEGIN_READ] = "BEGIN",
    [SQ_BEGIN_WRITE] = "BEGIN IMMEDIATE",
    [SQ_COMMIT] = "COMMIT",
    [SQ_ROLLBACK] = "ROLLBACK",
    [SQ_SAVEPOINT] = "SAVEPOINT req",
    [SQ_RELEASE] = "RELEASE req",
    [SQ_ROLLBACK_TO] = "ROLLBACK TO req",
    [SQ_SCHEMA_VERSION] = "SELECT coalesce(max(version), 0) FROM schema_migrations",
    [SQ_SCHEMA_STAMP] = "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
    [SQ_PROJECT_INSERT] = "INSERT INTO projects (name, created_at, updated_at) VALUES (?1, ?2, ?2)",
    [SQ_PROJECT_GET] = "SELECT " SQ_PROJECT_COLUMNS " FROM projects WHERE id = ?1",
    [SQ_PROJECT_LIST] = "SELECT " SQ_PROJECT_COLUMNS " FROM projects ORDER BY id",
    [SQ_PROJECT_TOUCH] = "UPDATE projects SET updated_at = ?2 WHERE id = ?1",
    [SQ_PROJECT_COUNT] = "SELECT count(*) FROM projects",
    [SQ_DOMAINS_OF] = "SELECT domain FROM project_domains WHERE project_id = ?1 ORDER BY id",
    [SQ_DOMAINS_ALL] = "SELECT project_id, domain FROM project_domains ORDER BY project_id, id",
    [SQ_DOMAIN_INSERT] = ("INSERT INTO project_domains (project_id, domain) VALUES (?1, ?2) "
                          "ON CONFLICT (project_id, domain) DO NOTHING"),
    [SQ_DOMAIN_DELETE] = "DELETE FROM project_domains WHERE project_id = ?1 AND domain = ?2",
};

typedef struct {
    store_conn_t base;             /* first: store.c sees a store_conn_t */
    sqlite3 *db;                   /* owned */
    sqlite3_stmt *stmt[SQ__COUNT]; /* prepared on first use, finalized at close */
} sq_conn_t;

static sq_conn_t *sq(store_conn_t *c) {
    return (sq_conn_t *)c;
}

/* Maps a SQLite result code (extended codes are on) to a store status. Environment errors are
 * logged here, once, with SQLite's message. */
static int sq_status(sq_conn_t *c, int rc) {
    switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return STORE_ECONFLICT;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return STORE_ENOTFOUND;
    default:
        break;
    }
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_CONSTRAINT: /* CHECK, NOT NULL: a value the schema refuses */
        return PL_EINVAL;
    case SQLITE_NOMEM:
        return PL_ENOMEM;
    case SQLITE_TOOBIG:
        return PL_ETOOBIG;
    default: {
        char msg[256];
        const char *text = sqlite3_errmsg(c->db);
        pl_log_warn("store_sqlite_error", "rc=%d msg=%s", rc,
                    pl_log_quote(msg, sizeof msg, text, strlen(text)));
        return PL_EUNAVAIL;
    }
    }
}

/* The cached statement id, prepared on first use; NULL with *rc set on failure. */
static sqlite3_stmt *sq_stmt(sq_conn_t *c, sq_stmt_id_t id, int *rc) {
    if (!c->stmt[id]) {
        int src =
            sqlite3_prepare_v3(c->db, g_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->stmt[id], NULL);
        if (src != SQLITE_OK) {
            *rc = sq_status(c, src);
            if (*rc == 0) /* cannot happen: a failed prepare is an error */
                *rc = PL_EUNAVAIL;
            return NULL;
        }
    }
    return c->stmt[id];
}

/* Makes a statement ready for its next use. */
static void sq_done(sqlite3_stmt *st) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Runs a cached statement without parameters that returns no rows. */
static int sq_run(sq_conn_t *c, sq_stmt_id_t id) {
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, id, &rc);
    if (!st)
        return rc;
    int src = sqlite3_step(st);
    rc = (src == SQLITE_DONE || src == SQLITE_ROW) ? 0 : sq_status(c, src);
    sq_done(st);
    return rc;
}

/* Steps a bound statement that must finish without rows (INSERT, UPDATE, DELETE). */
static int sq_step_done(sq_conn_t *c, sqlite3_stmt *st) {
    int src = sqlite3_step(st);
    int rc = src == SQLITE_DONE ? 0 : sq_status(c, src == SQLITE_ROW ? SQLITE_MISUSE : src);
    sq_done(st);
    return rc;
}

/* Copies text column i into *out; a NULL value gives NULL when nullable, PL_EUNAVAIL when not
 * (the schema forbids it). PL_ENOMEM when a copy fails. */
static int sq_col_text(sqlite3_stmt *st, int i, bool nullable, char **out) {
    *out = NULL;
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return nullable ? 0 : PL_EUNAVAIL;
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t)
        return PL_ENOMEM;
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    char *p = malloc(n + 1);
    if (!p)
        return PL_ENOMEM;
    memcpy(p, t, n);
    p[n] = '\0';
    *out = p;
    return 0;
}

/* Appends a copy of text column i to a growing string array. */
static int sq_push_text(sqlite3_stmt *st, int i, char ***v, size_t *n, size_t *cap) {
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        if (ncap > SIZE_MAX / sizeof(char *))
            return PL_ENOMEM;
        char **nv = realloc(*v, ncap * sizeof(char *));
        if (!nv)
            return PL_ENOMEM;
        *v = nv;
        *cap = ncap;
    }
    char *s;
    int rc = sq_col_text(st, i, false, &s);
    if (rc != 0)
        return rc;
    (*v)[(*n)++] = s;
    return 0;
}

/* ---- connections ----------------------------------------------------------------------------- */

/* Creates the missing directories above path, each with mode 0700 (umask may narrow it). */
static int make_parent_dirs(const char *path, char *err, size_t errlen) {
    char *dir = strdup(path);
    if (!dir) {
        store__errf(err, errlen, "out of memory");
        return PL_ENOMEM;
    }
    int rc = 0;
    char *last = strrchr(dir, '/');
    if (!last || last == dir)
        goto out_free; /* in the current directory, or in / */
    *last = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            store__errf(err, errlen, "cannot create directory %s: %s", dir, strerror(errno));
            rc = PL_EUNAVAIL;
            goto out_free;
        }
        *p = saved;
        if (!saved)
            break;
    }
out_free:
    free(dir);
    return rc;
}

/* Runs a fixed statement once (pragmas at open). If row is given, the first column of the
 * first row is copied into it. */
static int sq_exec_once(sqlite3 *db, const char *sql, char *row, size_t rowlen) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (row && rowlen) {
            const unsigned char *t = sqlite3_column_text(st, 0);
            snprintf(row, rowlen, "%s", t ? (const char *)t : "");
            row = NULL;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void sq_conn_close(store_conn_t *base) {
    if (!base)
        return;
    sq_conn_t *c = sq(base);
    for (int i = 0; i < SQ__COUNT; i++)
        sqlite3_finalize(c->stmt[i]);
    if (sqlite3_close(c->db) != SQLITE_OK) {
        /* ours: a statement outside the cache was left open */
        pl_log_error("store_sqlite_close", "msg=busy");
        sqlite3_close_v2(c->db);
    }
    free(c);
}

static store_conn_t *sq_conn_open(const char *path, const store_options_t *opts,
                                  store_conn_role_t role, char *err, size_t errlen) {
    if (!path || !path[0] || strcmp(path, ":memory:") == 0) {
        store__errf(err, errlen, "sqlite: a database file path is needed (sqlite:PATH)");
        return NULL;
    }
    if (role == STORE_CONN_WRITE) {
        if (make_parent_dirs(path, err, errlen) != 0)
            return NULL;
        /* Create the file ourselves so that it gets mode 0600 whatever SQLite's default. */
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            store__errf(err, errlen, "cannot create database file %s: %s", path, strerror(errno));
            return NULL;
        }
        close(fd);
    }
    if (!sqlite3_threadsafe()) {
        store__errf(err, errlen, "sqlite: the library was built without thread support");
        return NULL;
    }
    sq_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        store__errf(err, errlen, "out of memory");
        return NULL;
    }
    c->base.ops = &store_sqlite_ops;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
    int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        store__errf(err, errlen, "cannot open database %s: %s", path,
                    c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        goto out_close;
    }
    uint32_t busy =
        opts && opts->busy_timeout_ms ? opts->busy_timeout_ms : STORE_DEFAULT_BUSY_TIMEOUT_MS;
    sqlite3_busy_timeout(c->db, busy > INT_MAX ? INT_MAX : (int)busy);
    sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);

    const char *step = "PRAGMA foreign_keys = ON";
    rc = sq_exec_once(c->db, step, NULL, 0);
    if (rc == SQLITE_OK && role == STORE_CONN_WRITE) {
        char mode[16] = "";
        step = "PRAGMA journal_mode = WAL";
        rc = sq_exec_once(c->db, step, mode, sizeof mode);
        if (rc == SQLITE_OK && strcmp(mode, "wal") != 0) {
            store__errf(err, errlen, "database %s: WAL mode is not available here (got %s)", path,
                        mode);
            goto out_close;
        }
        const char *sync = opts && opts->synchronous ? opts->synchronous : "normal";
        if (rc == SQLITE_OK) {
            step = strcmp(sync, "full") == 0 ? "PRAGMA synchronous = FULL"
                                             : "PRAGMA synchronous = NORMAL";
            rc = sq_exec_once(c->db, step, NULL, 0);
        }
        if (rc == SQLITE_OK) {
            /* keep the WAL file from staying large after a burst: 64 MiB */
            step = "PRAGMA journal_size_limit = 67108864";
            rc = sq_exec_once(c->db, step, NULL, 0);
        }
    } else if (rc == SQLITE_OK) {
        step = "PRAGMA query_only = ON";
        rc = sq_exec_once(c->db, step, NULL, 0);
    }
    if (rc != SQLITE_OK) {
        store__errf(err, errlen, "database %s: %s failed: %s", path, step, sqlite3_errmsg(c->db));
        goto out_close;
    }
    return &c->base;

out_close:
    sq_conn_close(&c->base);
    return NULL;
}

static const char *sq_errmsg(store_conn_t *c) {
    return sqlite3_errmsg(sq(c)->db);
}

/* ---- transactions ---------------------------------------------------------------------------- */

static int sq_begin(store_conn_t *c, bool write) {
    return sq_run(sq(c), write ? SQ_BEGIN_WRITE : SQ_BEGIN_READ);
}

static int sq_commit(store_conn_t *c) {
    return sq_run(sq(c), SQ_COMMIT);
}

static void sq_rollback(store_conn_t *c) {
    if (!sqlite3_get_autocommit(sq(c)->db))
        (void)sq_run(sq(c), SQ_ROLLBACK);
}

static int sq_savepoint(store_conn_t *c) {
    return sq_run(sq(c), SQ_SAVEPOINT);
}

static int sq_release(store_conn_t *c) {
    return sq_run(sq(c), SQ_RELEASE);
}

static int sq_rollback_to(store_conn_t *c) {
    /* An I/O error or a full disk can make SQLite roll the whole transaction back by itself:
     * then there is no savepoint any more, and the caller must know. */
    if (sqlite3_get_autocommit(sq(c)->db))
        return PL_EUNAVAIL;
    int rc = sq_run(sq(c), SQ_ROLLBACK_TO);
    if (rc == 0)
        rc = sq_run(sq(c), SQ_RELEASE);
    return rc;
}

/* ---- migrations ------------------------------------------------------------------------------ */

static int sq_exec_script(store_conn_t *base, const char *sql, char *err, size_t errlen) {
    sq_conn_t *c = sq(base);
    const char *p = sql;
    while (*p) {
        sqlite3_stmt *st = NULL;
        const char *tail = NULL;
        int rc = sqlite3_prepare_v2(c->db, p, -1, &st, &tail);
        if (rc == SQLITE_OK && st) {
            while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                ;
            if (rc == SQLITE_DONE)
                rc = SQLITE_OK;
        }
        if (rc != SQLITE_OK) {
            store__errf(err, errlen, "%s", sqlite3_errmsg(c->db));
            sqlite3_finalize(st);
            int status = sq_status(c, rc);
            return status ? status : PL_EUNAVAIL;
        }
        sqlite3_finalize(st);
        if (!st) /* only white space or comments were left */
            break;
        p = tail;
    }
    return 0;
}

static int sq_schema_version(store_conn_t *base, int *version) {
    sq_conn_t *c = sq(base);
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_SCHEMA_VERSION, &rc);
    if (!st)
        return rc;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        sqlite3_int64 v = sqlite3_column_int64(st, 0);
        *version = v > INT_MAX ? INT_MAX : v < 0 ? 0 : (int)v;
    } else {
        rc = sq_status(c, src);
        if (rc == 0)
            rc = PL_EUNAVAIL;
    }
    sq_done(st);
    return rc;
}

static int sq_schema_stamp(store_conn_t *base, int version, int64_t at_ms) {
    sq_conn_t *c = sq(base);
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_SCHEMA_STAMP, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, version);
    sqlite3_bind_int64(st, 2, at_ms);
    return sq_step_done(c, st);
}

/* ---- operations ------------------------------------------------------------------------------ */

static int sq_ping(store_conn_t *c) {
    int version = 0;
    return sq_schema_version(c, &version);
}

/* Fills p from a row of SQ_PROJECT_COLUMNS (domains are read separately). */
static int sq_project_from_row(sqlite3_stmt *st, store_project_t *p) {
    memset(p, 0, sizeof *p);
    p->id = sqlite3_column_int64(st, 0);
    int rc = sq_col_text(st, 1, false, &p->name);
    if (rc == 0)
        rc = sq_col_text(st, 2, false, &p->widget_settings_json);
    p->identity_verification = sqlite3_column_int64(st, 3) != 0;
    if (rc == 0)
        rc = sq_col_text(st, 4, true, &p->identity_secret);
    p->created_at = sqlite3_column_int64(st, 5);
    p->updated_at = sqlite3_column_int64(st, 6);
    return rc;
}

/* Reads one project with its domains into a new struct. */
static int sq_project_read(sq_conn_t *c, int64_t id, store_project_t **out) {
    *out = NULL;
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_PROJECT_GET, &rc);
    if (!st)
        return rc;
    store_project_t *p = malloc(sizeof *p);
    if (!p) {
        rc = PL_ENOMEM;
        goto out_reset;
    }
    sqlite3_bind_int64(st, 1, id);
    int src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = src == SQLITE_DONE ? STORE_ENOTFOUND : sq_status(c, src);
        free(p);
        goto out_reset;
    }
    rc = sq_project_from_row(st, p);
    sq_done(st);
    if (rc != 0)
        goto out_free;

    st = sq_stmt(c, SQ_DOMAINS_OF, &rc);
    if (!st)
        goto out_free;
    sqlite3_bind_int64(st, 1, id);
    size_t cap = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        rc = sq_push_text(st, 0, &p->domains, &p->ndomains, &cap);
        if (rc != 0)
            break;
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = sq_status(c, src);
    sq_done(st);
    if (rc != 0)
        goto out_free;
    *out = p;
    return 0;

out_free:
    store__project_dispose(p);
    free(p);
    return rc;
out_reset:
    sq_done(st);
    return rc;
}

static int sq_project_get(store_conn_t *c, int64_t id, store_project_t **out) {
    return sq_project_read(sq(c), id, out);
}

/* Inserts each domain of the list not there yet, at the end of the project's order. */
static int sq_domains_add(sq_conn_t *c, int64_t id, const char *const *v, size_t n) {
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_DOMAIN_INSERT, &rc);
    for (size_t i = 0; st && rc == 0 && i < n; i++) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, v[i], -1, SQLITE_STATIC);
        rc = sq_step_done(c, st);
    }
    return rc;
}

static int sq_project_create(store_conn_t *base, const char *name, const char *const *domains,
                             size_t ndomains, store_project_t **out) {
    sq_conn_t *c = sq(base);
    *out = NULL;
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_PROJECT_INSERT, &rc);
    if (!st)
        return rc;
    int64_t now = pl_wall_ms();
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    rc = sq_step_done(c, st);
    if (rc != 0)
        return rc;
    int64_t id = sqlite3_last_insert_rowid(c->db);
    rc = sq_domains_add(c, id, domains, ndomains);
    if (rc != 0)
        return rc;
    return sq_project_read(c, id, out);
}

static int sq_project_domains_update(store_conn_t *base, int64_t id, const char *const *add,
                                     size_t nadd, const char *const *remove, size_t nremove,
                                     store_project_t **out) {
    sq_conn_t *c = sq(base);
    *out = NULL;
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_PROJECT_TOUCH, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, pl_wall_ms());
    rc = sq_step_done(c, st);
    if (rc != 0)
        return rc;
    if (sqlite3_changes(c->db) == 0)
        return STORE_ENOTFOUND;

    st = sq_stmt(c, SQ_DOMAIN_DELETE, &rc);
    for (size_t i = 0; st && rc == 0 && i < nremove; i++) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, remove[i], -1, SQLITE_STATIC);
        rc = sq_step_done(c, st);
    }
    if (rc == 0)
        rc = sq_domains_add(c, id, add, nadd);
    if (rc != 0)
        return rc;
    return sq_project_read(c, id, out);
}

static void sq_projects_free(store_project_t *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        store__project_dispose(&v[i]);
    free(v);
}

/* Two queries in the caller's read snapshot: the projects in id order, then every domain in
 * (project, insertion) order, merged by walking both. */
static int sq_project_list(store_conn_t *base, store_project_t **out, size_t *n) {
    sq_conn_t *c = sq(base);
    *out = NULL;
    *n = 0;
    store_project_t *v = NULL;
    size_t len = 0, cap = 0;
    int rc = 0, src;
    sqlite3_stmt *st = sq_stmt(c, SQ_PROJECT_LIST, &rc);
    if (!st)
        return rc;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            store_project_t *nv =
                ncap <= SIZE_MAX / sizeof *v ? realloc(v, ncap * sizeof *v) : NULL;
            if (!nv) {
                rc = PL_ENOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        rc = sq_project_from_row(st, &v[len]);
        len++; /* even when incomplete, so that its copies are freed */
        if (rc != 0)
            break;
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = sq_status(c, src);
    sq_done(st);
    if (rc != 0)
        goto out_free;

    st = sq_stmt(c, SQ_DOMAINS_ALL, &rc);
    if (!st)
        goto out_free;
    size_t i = 0, dcap = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t pid = sqlite3_column_int64(st, 0);
        while (i < len && v[i].id < pid) {
            i++;
            dcap = 0;
        }
        if (i < len && v[i].id == pid) {
            rc = sq_push_text(st, 1, &v[i].domains, &v[i].ndomains, &dcap);
            if (rc != 0)
                break;
        }
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = sq_status(c, src);
    sq_done(st);
    if (rc != 0)
        goto out_free;
    *out = v;
    *n = len;
    return 0;

out_free:
    sq_projects_free(v, len);
    return rc;
}

static int sq_project_count(store_conn_t *base, int64_t *count) {
    sq_conn_t *c = sq(base);
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_PROJECT_COUNT, &rc);
    if (!st)
        return rc;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *count = sqlite3_column_int64(st, 0);
    else
        rc = src == SQLITE_DONE ? PL_EUNAVAIL : sq_status(c, src);
    sq_done(st);
    return rc;
}

const store_ops_t store_sqlite_ops = {
    .name = "sqlite",
    .dialect = STORE_DIALECT_SQLITE,
    .conn_open = sq_conn_open,
    .conn_close = sq_conn_close,
    .errmsg = sq_errmsg,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .savepoint = sq_savepoint,
    .release = sq_release,
    .rollback_to = sq_rollback_to,
    .exec_script = sq_exec_script,
    .schema_version = sq_schema_version,
    .schema_stamp = sq_schema_stamp,
    .ping = sq_ping,
    .project_create = sq_project_create,
    .project_get = sq_project_get,
    .project_list = sq_project_list,
    .project_domains_update = sq_project_domains_update,
    .project_count = sq_project_count,
};
