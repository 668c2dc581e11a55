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
    SQ_VISITOR_GET,
    SQ_VISITOR_INSERT,
    SQ_VISITOR_TOUCH,
    SQ_VISITOR_FIND,
    SQ_VISITOR_SET_URL,
    SQ_CONV_CURRENT_ACTIVE,
    SQ_CONV_CURRENT_FOREVER,
    SQ_CONV_INSERT,
    SQ_CONV_ON_MESSAGE,
    SQ_CONV_URL_APPEND,
    SQ_CONV_GET,
    SQ_MESSAGE_BY_TEMP,
    SQ_MESSAGE_INSERT,
    SQ_MESSAGE_NEWEST,
    SQ_USER_INSERT,
    SQ_USER_GET,
    SQ_USER_BY_EMAIL,
    SQ_USER_REVOKE,
    SQ_MEMBER_UPSERT,
    SQ_MEMBER_ROLE,
    SQ_REFRESH_INSERT,
    SQ_REFRESH_SET_FAMILY,
    SQ_REFRESH_FAMILY_STATE,
    SQ_REFRESH_PRUNE,
    SQ_REFRESH_FIND,
    SQ_REFRESH_USE,
    SQ_REFRESH_REVOKE_FAMILY,
    SQ_REFRESH_REVOKE_ONE,
    SQ_REFRESH_REVOKE_USER,
    SQ_PROJECT_EXISTS,
    SQ_PROJECT_UPDATE,
    SQ_PROJECT_SETTINGS,
    SQ_PROJECTS_OF_USER,
    SQ_DOMAINS_OF_USER,
    SQ_DOMAINS_CLEAR,
    SQ_MEMBERS_OF,
    SQ_CONV_PAGE_ONE,
    SQ_CONV_PAGE_MASK,
    SQ_CONV_COUNT,
    SQ_CONV_VISITOR_UID,
    SQ_CONV_ON_REPLY,
    SQ_CONV_UPDATE,
    SQ_CONV_ASSIGN,
    SQ_CONV_DELETE,
    SQ_MESSAGE_PAGE,
    SQ_MESSAGE_INSERT_AGENT,
    SQ_VISITOR_GET_IN,
    SQ_OUTBOX_INSERT,
    SQ_OUTBOX_FETCH,
    SQ_OUTBOX_DELETE,
    SQ__COUNT
} sq_stmt_id_t;

#define SQ_PROJECT_COLUMNS                                                                         \
    "id, name, widget_settings, identity_verification, identity_secret, created_at, updated_at"

#define SQ_VISITOR_COLUMNS "id, project_id, uid, name, email, current_url, last_seen_at, created_at"
#define SQ_MESSAGE_COLUMNS                                                                         \
    "id, conversation_id, project_id, visitor_id, content, sender_id, from_customer, user_id, "    \
    "status, content_type, metadata, temp_id, created_at"
/* A conversation with its visitor: the columns sq_conversation_from_row reads (twenty). */
#define SQ_CONV_SELECT                                                                             \
    "SELECT c.id, c.project_id, c.visitor_id, c.assignee_id, c.status, c.last_message_snippet, "   \
    "c.last_message_timestamp, c.unread_count, c.metadata, c.url_history, c.created_at, "          \
    "c.updated_at, v.id, v.project_id, v.uid, v.name, v.email, v.current_url, v.last_seen_at, "    \
    "v.created_at FROM conversations AS c JOIN visitors AS v ON v.id = c.visitor_id "
#define SQ_CONV_NEWEST_FIRST " ORDER BY c.last_message_timestamp DESC, c.id DESC"
#define SQ_USER_COLUMNS "id, email, full_name, password_hash, tokens_valid_from, created_at"

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
    [SQ_VISITOR_GET] = "SELECT " SQ_VISITOR_COLUMNS " FROM visitors WHERE id = ?1",
    /* Find-or-create of a visitor without RETURNING (which SQLite buffers in a temporary
     * b-tree): SQ_VISITOR_FIND, then one of these two. last_seen_at never moves backwards. */
    [SQ_VISITOR_INSERT] = ("INSERT INTO visitors (project_id, uid, last_seen_at, created_at) "
                           "VALUES (?1, ?2, ?3, ?3)"),
    [SQ_VISITOR_TOUCH] = "UPDATE visitors SET last_seen_at = max(last_seen_at, ?2) WHERE id = ?1",
    [SQ_VISITOR_FIND] = "SELECT id FROM visitors WHERE project_id = ?1 AND uid = ?2",
    [SQ_VISITOR_SET_URL] = ("UPDATE visitors SET current_url = ?3, "
                            "last_seen_at = max(last_seen_at, ?4) "
                            "WHERE project_id = ?1 AND uid = ?2 RETURNING id"),
    /* The current conversation (store.h): the index (visitor_id, id) walked backwards. */
    [SQ_CONV_CURRENT_ACTIVE] = ("SELECT id, status FROM conversations WHERE visitor_id = ?1 "
                                "AND status IN ('open', 'pending') ORDER BY id DESC LIMIT 1"),
    [SQ_CONV_CURRENT_FOREVER] = ("SELECT id, status FROM conversations WHERE visitor_id = ?1 "
                                 "AND status <> 'spam' ORDER BY id DESC LIMIT 1"),
    /* A new conversation already carries its first message's fields (one statement instead of
     * an insert and an update). No row is inserted when the metadata is not a JSON object. */
    [SQ_CONV_INSERT] = ("INSERT INTO conversations (project_id, visitor_id, status, "
                        "last_message_snippet, last_message_timestamp, unread_count, metadata, "
                        "created_at, updated_at) "
                        "SELECT ?1, ?2, 'open', ?3, ?4, 1, ?5, ?4, ?4 WHERE ?5 IS NULL OR "
                        "CASE WHEN json_valid(?5) THEN json_type(?5) = 'object' ELSE 0 END"),
    [SQ_CONV_ON_MESSAGE] = ("UPDATE conversations SET last_message_snippet = ?2, "
                            "last_message_timestamp = ?3, updated_at = ?3, "
                            "unread_count = unread_count + 1, status = coalesce(?4, status) "
                            "WHERE id = ?1"),
    /* Appends {"url","at"} and keeps the newest ?4 entries, in order. */
    [SQ_CONV_URL_APPEND] = ("UPDATE conversations SET updated_at = ?5, url_history = ("
                            "SELECT json_group_array(json(e.value)) FROM "
                            "(SELECT json_insert(coalesce(url_history, '[]'), '$[#]', "
                            "json_object('url', ?2, 'at', ?3)) AS a) AS h, json_each(h.a) AS e "
                            "WHERE e.key >= json_array_length(h.a) - ?4) WHERE id = ?1"),
    [SQ_CONV_GET] = SQ_CONV_SELECT "WHERE c.id = ?1 AND c.project_id = ?2",
    [SQ_MESSAGE_BY_TEMP] = ("SELECT " SQ_MESSAGE_COLUMNS " FROM messages "
                            "WHERE visitor_id = ?1 AND temp_id = ?2"),
    [SQ_MESSAGE_INSERT] = ("INSERT INTO messages (conversation_id, project_id, visitor_id, "
                           "content, sender_id, from_customer, status, temp_id, created_at) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, 1, 'sent', ?6, ?7)"),
    [SQ_MESSAGE_NEWEST] = ("SELECT " SQ_MESSAGE_COLUMNS " FROM messages "
                           "WHERE conversation_id = ?1 ORDER BY id DESC LIMIT ?2"),
    [SQ_USER_INSERT] = ("INSERT INTO users (email, password_hash, full_name, created_at, "
                        "updated_at) VALUES (?1, ?2, ?3, ?4, ?4) RETURNING " SQ_USER_COLUMNS),
    [SQ_USER_GET] = "SELECT " SQ_USER_COLUMNS " FROM users WHERE id = ?1",
    [SQ_USER_BY_EMAIL] = "SELECT " SQ_USER_COLUMNS " FROM users WHERE email = ?1",
    [SQ_USER_REVOKE] = ("UPDATE users SET tokens_valid_from = max(tokens_valid_from, ?2), "
                        "updated_at = ?2 WHERE id = ?1"),
    [SQ_MEMBER_UPSERT] = ("INSERT INTO project_members (project_id, user_id, role, created_at) "
                          "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (project_id, user_id) "
                          "DO UPDATE SET role = excluded.role"),
    [SQ_MEMBER_ROLE] = "SELECT role FROM project_members WHERE project_id = ?1 AND user_id = ?2",
    /* Refresh tokens. A new family is numbered after its first row: inserted with family 0,
     * then set to the row id (SQ_REFRESH_SET_FAMILY). */
    [SQ_REFRESH_INSERT] = ("INSERT INTO refresh_tokens (user_id, family_id, token_hash, "
                           "expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5)"),
    [SQ_REFRESH_SET_FAMILY] = "UPDATE refresh_tokens SET family_id = id WHERE id = ?1",
    [SQ_REFRESH_FAMILY_STATE] = ("SELECT count(*), count(revoked_at) FROM refresh_tokens "
                                 "WHERE family_id = ?1 AND user_id = ?2"),
    [SQ_REFRESH_PRUNE] = "DELETE FROM refresh_tokens WHERE user_id = ?1 AND expires_at < ?2",
    [SQ_REFRESH_FIND] = ("SELECT id, user_id, family_id, expires_at, "
                         "used_at IS NOT NULL OR revoked_at IS NOT NULL "
                         "FROM refresh_tokens WHERE token_hash = ?1"),
    [SQ_REFRESH_USE] = "UPDATE refresh_tokens SET used_at = ?2 WHERE id = ?1",
    [SQ_REFRESH_REVOKE_FAMILY] = ("UPDATE refresh_tokens SET revoked_at = ?2 "
                                  "WHERE family_id = ?1 AND revoked_at IS NULL"),
    [SQ_REFRESH_REVOKE_ONE] = ("UPDATE refresh_tokens SET revoked_at = ?2 "
                               "WHERE token_hash = ?1 AND revoked_at IS NULL"),
    [SQ_REFRESH_REVOKE_USER] = ("UPDATE refresh_tokens SET revoked_at = ?2 "
                                "WHERE user_id = ?1 AND revoked_at IS NULL"),
    /* Projects of agents. */
    [SQ_PROJECT_EXISTS] = "SELECT id FROM projects WHERE id = ?1",
    [SQ_PROJECT_UPDATE] = ("UPDATE projects SET name = coalesce(?2, name), updated_at = ?3 "
                           "WHERE id = ?1"),
    /* No row changes when the text is not a JSON object (or the project does not exist). */
    [SQ_PROJECT_SETTINGS] = ("UPDATE projects SET widget_settings = ?2, updated_at = ?3 "
                             "WHERE id = ?1 AND "
                             "CASE WHEN json_valid(?2) THEN json_type(?2) = 'object' ELSE 0 END"),
    [SQ_PROJECTS_OF_USER] = ("SELECT p.id, p.name, p.widget_settings, p.identity_verification, "
                             "p.identity_secret, p.created_at, p.updated_at, m.role "
                             "FROM project_members AS m JOIN projects AS p ON p.id = m.project_id "
                             "WHERE m.user_id = ?1 ORDER BY p.id"),
    [SQ_DOMAINS_OF_USER] = ("SELECT d.project_id, d.domain FROM project_members AS m "
                            "JOIN project_domains AS d ON d.project_id = m.project_id "
                            "WHERE m.user_id = ?1 ORDER BY d.project_id, d.id"),
    [SQ_DOMAINS_CLEAR] = "DELETE FROM project_domains WHERE project_id = ?1",
    [SQ_MEMBERS_OF] = ("SELECT u.id, u.email, u.full_name, m.role FROM project_members AS m "
                       "JOIN users AS u ON u.id = m.user_id WHERE m.project_id = ?1 "
                       "ORDER BY u.id"),
    /* The inbox. The page's ids come from an index walk alone (the subquery, which SQLite does
     * not flatten into the join because of its LIMIT): skipped rows cost an index entry each,
     * and only the page's rows and visitors are read. One status: the index
     * conversations_inbox (project_id, status, last_message_timestamp, id) in order. Several:
     * conversations_newest (project_id, last_message_timestamp, id, status) in order, the
     * status tested on the index entry as bit (0 open, 1 pending, 2 solved, 3 spam) of the mask
     * ?2: an expression no index answers, so the planner keeps the ordered walk. */
    [SQ_CONV_PAGE_ONE] = (SQ_CONV_SELECT "WHERE c.id IN (SELECT id FROM conversations "
                                         "WHERE project_id = ?1 AND status = ?2 "
                                         "ORDER BY last_message_timestamp DESC, id DESC "
                                         "LIMIT ?3 OFFSET ?4)" SQ_CONV_NEWEST_FIRST),
    [SQ_CONV_PAGE_MASK] = (SQ_CONV_SELECT "WHERE c.id IN (SELECT id FROM conversations "
                                          "WHERE project_id = ?1 AND (?2 >> CASE status "
                                          "WHEN 'open' THEN 0 WHEN 'pending' THEN 1 "
                                          "WHEN 'solved' THEN 2 ELSE 3 END) & 1 "
                                          "ORDER BY last_message_timestamp DESC, id DESC "
                                          "LIMIT ?3 OFFSET ?4)" SQ_CONV_NEWEST_FIRST),
    /* NULL entries of the list match nothing. */
    [SQ_CONV_COUNT] = ("SELECT count(*) FROM conversations WHERE project_id = ?1 "
                       "AND status IN (?2, ?3, ?4, ?5)"),
    [SQ_CONV_VISITOR_UID] = ("SELECT v.uid FROM conversations AS c "
                             "JOIN visitors AS v ON v.id = c.visitor_id "
                             "WHERE c.id = ?1 AND c.project_id = ?2"),
    [SQ_CONV_ON_REPLY] = ("UPDATE conversations SET last_message_snippet = ?2, "
                          "last_message_timestamp = ?3, updated_at = ?3 WHERE id = ?1"),
    [SQ_CONV_UPDATE] = ("UPDATE conversations SET status = coalesce(?3, status), "
                        "unread_count = CASE WHEN ?4 THEN 0 ELSE unread_count END, "
                        "updated_at = CASE WHEN ?3 IS NOT NULL OR ?4 THEN ?5 ELSE updated_at END "
                        "WHERE id = ?1 AND project_id = ?2"),
    [SQ_CONV_ASSIGN] = ("UPDATE conversations SET assignee_id = ?3, updated_at = ?4 "
                        "WHERE id = ?1 AND project_id = ?2"),
    /* Its messages go with it (ON DELETE CASCADE, through messages_by_conversation). */
    [SQ_CONV_DELETE] = "DELETE FROM conversations WHERE id = ?1 AND project_id = ?2",
    [SQ_MESSAGE_PAGE] = ("SELECT " SQ_MESSAGE_COLUMNS " FROM messages "
                         "WHERE conversation_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"),
    [SQ_MESSAGE_INSERT_AGENT] = ("INSERT INTO messages (conversation_id, project_id, visitor_id, "
                                 "content, sender_id, from_customer, user_id, status, "
                                 "created_at) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, 'sent', ?7)"),
    [SQ_VISITOR_GET_IN] = ("SELECT " SQ_VISITOR_COLUMNS " FROM visitors "
                           "WHERE id = ?1 AND project_id = ?2"),
    /* The transactional outbox. */
    [SQ_OUTBOX_INSERT] = "INSERT INTO outbox (topic, payload, created_at) VALUES (?1, ?2, ?3)",
    [SQ_OUTBOX_FETCH] = "SELECT id, topic, payload, created_at FROM outbox ORDER BY id LIMIT ?1",
    [SQ_OUTBOX_DELETE] = "DELETE FROM outbox WHERE id = ?1",
};

typedef struct {
    store_conn_t base;             /* first: store.c sees a store_conn_t */
    sqlite3 *db;                   /* owned */
    sqlite3_stmt *stmt[SQ__COUNT]; /* prepared on first use, finalized at close */
    int wal_pages;                 /* writer: frames in the WAL after the last commit */
    int wal_asked;                 /* writer: wal_pages when a checkpoint was last asked for */
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

/* Every request of a group commit runs in a savepoint, so SQLite copies each page a request
 * changes into the sub-journal (4 KiB per page, about ten pages per message ingest), and drops
 * it when the savepoint is released. By default that journal moves from memory to a temporary
 * file as soon as it passes 64 KiB (an index page split is enough), and then stays a file until
 * the transaction ends: every later request of the batch pays write() calls for every page. A
 * spill threshold of 127 KiB keeps it in one memory chunk; measured with test_chat's benchmark
 * this halves the write thread's CPU per ingest (36 to 15 microseconds). The threshold is also
 * the size of the journal's memory chunks, each written with ONE write when the journal spills
 * to a file (a request that changes many pages: deleting a long conversation), and SQLite's
 * unix VFS masks every write to 17 bits: a chunk of 128 KiB or more is written short and the
 * request fails with SQLITE_FULL ("database or disk is full"). Hence 127 KiB, not more
 * (test_inbox's test_conversation_delete_large). When the process had
 * initialised SQLite before (sqlite3_config is refused then), each write connection keeps its
 * temporary storage in memory instead (temp_store = MEMORY: the same effect, with 1 KiB
 * chunks, about 8% slower). Memory statistics are turned off too: they take a global mutex on
 * every allocation, shared by the store threads. Both settings are process-wide; SQLite is
 * used only by the store in Parley. */
#define SQ_STMT_SPILL_BYTES (127 * 1024)

static uv_once_t g_config_once = UV_ONCE_INIT;
static bool g_stmt_spill_set; /* written once under g_config_once, read-only afterwards */

static void sq_global_config(void) {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    g_stmt_spill_set =
        sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, SQ_STMT_SPILL_BYTES) == SQLITE_OK;
}

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
/* WAL frames after which the read thread checkpoints (SQLite's own default threshold). */
#define SQ_CHECKPOINT_PAGES 1000

static int sq_wal_hook(void *ud, sqlite3 *db, const char *name, int pages) {
    (void)db;
    (void)name;
    sq_conn_t *c = ud;
    c->wal_pages = pages;
    if (pages < c->wal_asked)
        c->wal_asked = 0; /* the log restarted after a complete checkpoint */
    return SQLITE_OK;
}

static bool sq_checkpoint_due(store_conn_t *base) {
    sq_conn_t *c = (sq_conn_t *)base;
    if (c->wal_pages - c->wal_asked < SQ_CHECKPOINT_PAGES)
        return false;
    c->wal_asked = c->wal_pages;
    return true;
}

/* A passive checkpoint: copies what no reader still needs back into the database file without
 * blocking the writer; the writer restarts the log once everything was copied. */
static void sq_checkpoint(store_conn_t *base) {
    sqlite3 *db = ((sq_conn_t *)base)->db;
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        pl_log_warn("store_checkpoint_failed", "backend=sqlite error=\"%s\"", sqlite3_errmsg(db));
}

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
    uv_once(&g_config_once, sq_global_config);
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
    if (rc == SQLITE_OK) {
        /* Reads through a memory map instead of a pread and a copy per page, and 8 MiB of page
         * cache per connection (the default 2 MiB made the writer re-read index pages on every
         * batch). Both grow only as pages are used; mapped pages are the OS's file cache. */
        step = "PRAGMA mmap_size = 268435456";
        rc = sq_exec_once(c->db, step, NULL, 0);
    }
    if (rc == SQLITE_OK) {
        step = "PRAGMA cache_size = -8192";
        rc = sq_exec_once(c->db, step, NULL, 0);
    }
    if (rc == SQLITE_OK && role == STORE_CONN_WRITE) {
        char mode[16] = "";
        step = "PRAGMA journal_mode = WAL";
        /* Switching a fresh file to WAL needs it to itself: another process opening it at the
         * same moment makes this fail with SQLITE_BUSY at once (the busy handler is not
         * consulted here), so retry for as long as the busy timeout allows. */
        for (uint32_t waited = 0;; waited += 10) {
            rc = sq_exec_once(c->db, step, mode, sizeof mode);
            if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
                break;
            if (waited >= busy)
                break;
            uv_sleep(10);
        }
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
            /* Checkpoints run on the read thread (sq_checkpoint), not inside a commit. */
            step = "PRAGMA wal_autocheckpoint = 0";
            rc = sq_exec_once(c->db, step, NULL, 0);
            if (rc == SQLITE_OK)
                sqlite3_wal_hook(c->db, sq_wal_hook, c);
        }
        if (rc == SQLITE_OK) {
            /* keep the WAL file from staying large after a burst: 64 MiB */
            step = "PRAGMA journal_size_limit = 67108864";
            rc = sq_exec_once(c->db, step, NULL, 0);
        }
        if (rc == SQLITE_OK && !g_stmt_spill_set) {
            /* The sub-journal in memory at least (see sq_global_config). */
            step = "PRAGMA temp_store = MEMORY";
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

/* Two queries in the caller's read snapshot: the projects in id order (statement pq), then
 * their domains in (project, insertion) order (statement dq: project_id, domain), merged by
 * walking both. user_id > 0: both statements take it as ?1 and pq has the user's role in
 * column 7. */
static int sq_projects_query(sq_conn_t *c, sq_stmt_id_t pq, sq_stmt_id_t dq, int64_t user_id,
                             store_project_t **out, size_t *n) {
    *out = NULL;
    *n = 0;
    store_project_t *v = NULL;
    size_t len = 0, cap = 0;
    int rc = 0, src;
    sqlite3_stmt *st = sq_stmt(c, pq, &rc);
    if (!st)
        return rc;
    if (user_id > 0)
        sqlite3_bind_int64(st, 1, user_id);
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
        if (rc == 0 && user_id > 0)
            rc = sq_col_text(st, 7, false, &v[len - 1].role);
        if (rc != 0)
            break;
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = sq_status(c, src);
    sq_done(st);
    if (rc != 0 || len == 0)
        goto out_free;

    st = sq_stmt(c, dq, &rc);
    if (!st)
        goto out_free;
    if (user_id > 0)
        sqlite3_bind_int64(st, 1, user_id);
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
    sq_projects_free(v, len); /* also the empty list: nothing to hand over */
    return rc;
}

static int sq_project_list(store_conn_t *base, store_project_t **out, size_t *n) {
    return sq_projects_query(sq(base), SQ_PROJECT_LIST, SQ_DOMAINS_ALL, 0, out, n);
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

/* ---- the widget connection flow -------------------------------------------------------------- */

/* Steps a statement that must return exactly one row and leaves it on that row (the caller
 * reads the columns, then calls sq_done). No row is STORE_ENOTFOUND. */
static int sq_step_row(sq_conn_t *c, sqlite3_stmt *st) {
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        return 0;
    sq_done(st);
    return src == SQLITE_DONE ? STORE_ENOTFOUND : sq_status(c, src);
}

/* Runs a bound statement whose result is one integer in column 0; *v gets it, or 0 (and
 * *found false) when there is no row. Any rows after the first are stepped through, so that a
 * RETURNING statement completes. */
static int sq_step_int(sq_conn_t *c, sqlite3_stmt *st, int64_t *v, bool *found) {
    *v = 0;
    *found = false;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (!*found)
            *v = sqlite3_column_int64(st, 0);
        *found = true;
    }
    int rc = src == SQLITE_DONE ? 0 : sq_status(c, src);
    sq_done(st);
    return rc;
}

/* Fills v from the SQ_VISITOR_COLUMNS of a row, starting at column k. On an error v holds
 * what was copied (dispose it). */
static int sq_visitor_from_row(sqlite3_stmt *st, int k, store_visitor_t *v) {
    memset(v, 0, sizeof *v);
    v->id = sqlite3_column_int64(st, k + 0);
    v->project_id = sqlite3_column_int64(st, k + 1);
    v->last_seen_at = sqlite3_column_int64(st, k + 6);
    v->created_at = sqlite3_column_int64(st, k + 7);
    int rc = sq_col_text(st, k + 2, false, &v->uid);
    if (rc == 0)
        rc = sq_col_text(st, k + 3, true, &v->name);
    if (rc == 0)
        rc = sq_col_text(st, k + 4, true, &v->email);
    if (rc == 0)
        rc = sq_col_text(st, k + 5, true, &v->current_url);
    return rc;
}

/* Fills cv from a row of SQ_CONV_SELECT (the conversation, then its visitor). On an error cv
 * holds what was copied (dispose it). */
static int sq_conversation_from_row(sqlite3_stmt *st, store_conversation_t *cv) {
    memset(cv, 0, sizeof *cv);
    cv->id = sqlite3_column_int64(st, 0);
    cv->project_id = sqlite3_column_int64(st, 1);
    cv->visitor_id = sqlite3_column_int64(st, 2);
    cv->assignee_id = sqlite3_column_int64(st, 3);
    cv->last_message_timestamp = sqlite3_column_int64(st, 6);
    cv->unread_count = sqlite3_column_int64(st, 7);
    cv->created_at = sqlite3_column_int64(st, 10);
    cv->updated_at = sqlite3_column_int64(st, 11);
    int rc = sq_col_text(st, 4, false, &cv->status);
    if (rc == 0)
        rc = sq_col_text(st, 5, true, &cv->last_message_snippet);
    if (rc == 0)
        rc = sq_col_text(st, 8, true, &cv->metadata_json);
    if (rc == 0)
        rc = sq_col_text(st, 9, true, &cv->url_history_json);
    if (rc == 0)
        rc = sq_visitor_from_row(st, 12, &cv->visitor);
    return rc;
}

/* The id of visitor (project_id, uid), 0 when there is none. */
static int sq_visitor_find(sq_conn_t *c, int64_t project_id, const char *uid, int64_t *id) {
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_VISITOR_FIND, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, project_id);
    sqlite3_bind_text(st, 2, uid, -1, SQLITE_STATIC);
    bool found;
    return sq_step_int(c, st, id, &found);
}

/* The visitor's current conversation (store.h): *id (0 when none) and, when solved is given,
 * whether its status is "solved". */
static int sq_conv_current(sq_conn_t *c, int64_t visitor_id, bool forever, int64_t *id,
                           bool *solved) {
    *id = 0;
    if (solved)
        *solved = false;
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, forever ? SQ_CONV_CURRENT_FOREVER : SQ_CONV_CURRENT_ACTIVE, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, visitor_id);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        if (solved) {
            const unsigned char *t = sqlite3_column_text(st, 1);
            *solved = t && strcmp((const char *)t, "solved") == 0;
        }
    } else if (src != SQLITE_DONE) {
        rc = sq_status(c, src);
    }
    sq_done(st);
    return rc;
}

/* Finds or creates visitor (project_id, uid) with last_seen_at = now_ms (never backwards);
 * *id gets its id. Two statements: the unique index (project_id, uid), then an update by rowid
 * or an insert. STORE_ENOTFOUND when the project does not exist (its foreign key). */
static int sq_visitor_seen(sq_conn_t *c, int64_t project_id, const char *uid, int64_t now_ms,
                           int64_t *id) {
    int64_t vid = 0;
    int rc = sq_visitor_find(c, project_id, uid, &vid);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = sq_stmt(c, vid ? SQ_VISITOR_TOUCH : SQ_VISITOR_INSERT, &rc);
    if (!st)
        return rc;
    if (vid) {
        sqlite3_bind_int64(st, 1, vid);
        sqlite3_bind_int64(st, 2, now_ms);
    } else {
        sqlite3_bind_int64(st, 1, project_id);
        sqlite3_bind_text(st, 2, uid, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now_ms);
    }
    rc = sq_step_done(c, st);
    if (rc != 0)
        return rc;
    *id = vid ? vid : sqlite3_last_insert_rowid(c->db);
    return 0;
}

static int sq_visitor_identify(store_conn_t *base, int64_t project_id, const char *uid,
                               int64_t now_ms, store_visitor_t **out) {
    sq_conn_t *c = sq(base);
    *out = NULL;
    int64_t vid = 0;
    int rc = sq_visitor_seen(c, project_id, uid, now_ms, &vid);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = sq_stmt(c, SQ_VISITOR_GET, &rc);
    if (!st)
        return rc;
    store_visitor_t *v = malloc(sizeof *v);
    if (!v)
        return PL_ENOMEM;
    sqlite3_bind_int64(st, 1, vid);
    rc = sq_step_row(c, st);
    if (rc != 0) {
        free(v);
        return rc == STORE_ENOTFOUND ? PL_EUNAVAIL : rc; /* cannot happen: written just now */
    }
    rc = sq_visitor_from_row(st, 0, v);
    sq_done(st);
    if (rc != 0) {
        store_visitor_free(v);
        return rc;
    }
    *out = v;
    return 0;
}

/* Points m's fields at a row of SQ_MESSAGE_COLUMNS: the strings are BORROWED from the
 * statement (valid until it steps or resets), for the packers of store_internal.h. PL_ENOMEM
 * when SQLite could not convert a NOT NULL column. */
static int sq_message_borrow_row(sqlite3_stmt *st, const char *visitor_uid, store_message_t *m) {
    memset(m, 0, sizeof *m);
    m->id = sqlite3_column_int64(st, 0);
    m->conversation_id = sqlite3_column_int64(st, 1);
    m->project_id = sqlite3_column_int64(st, 2);
    m->visitor_id = sqlite3_column_int64(st, 3);
    m->from_customer = sqlite3_column_int64(st, 6) != 0;
    m->user_id = sqlite3_column_int64(st, 7); /* NULL reads as 0: none */
    m->created_at = sqlite3_column_int64(st, 12);
    m->visitor_uid = (char *)visitor_uid;
    m->content = (char *)sqlite3_column_text(st, 4);
    m->sender_id = (char *)sqlite3_column_text(st, 5);
    m->status = (char *)sqlite3_column_text(st, 8);
    m->content_type = (char *)sqlite3_column_text(st, 9);
    m->metadata_json = (char *)sqlite3_column_text(st, 10);
    m->temp_id = (char *)sqlite3_column_text(st, 11);
    return m->content && m->sender_id && m->status ? 0 : PL_ENOMEM;
}

static int sq_history(store_conn_t *base, int64_t project_id, const char *uid, bool forever,
                      size_t limit, int64_t *conversation_id, store_message_t **out, size_t *n) {
    sq_conn_t *c = sq(base);
    *conversation_id = 0;
    *out = NULL;
    *n = 0;
    int64_t vid = 0, cid = 0;
    int rc = sq_visitor_find(c, project_id, uid, &vid);
    if (rc != 0 || vid == 0)
        return rc;
    rc = sq_conv_current(c, vid, forever, &cid, NULL);
    if (rc != 0 || cid == 0)
        return rc;
    sqlite3_stmt *st = sq_stmt(c, SQ_MESSAGE_NEWEST, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, cid);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit); /* <= STORE_HISTORY_MAX (store.c) */
    store__msglist_t l;
    store__msglist_init(&l);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        store_message_t m;
        rc = sq_message_borrow_row(st, uid, &m);
        if (rc == 0)
            rc = store__msglist_add(&l, &m);
        if (rc != 0)
            break;
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = sq_status(c, src);
    sq_done(st);
    if (rc != 0) {
        store__msglist_dispose(&l);
        return rc;
    }
    store_message_t *v;
    size_t len;
    rc = store__msglist_finish(&l, &v, &len);
    if (rc != 0)
        return rc;
    /* Newest first from the index; the widget wants them oldest first. Swapping whole structs
     * keeps their pointers into the block valid. */
    for (size_t i = 0; i < len / 2; i++) {
        store_message_t t = v[i];
        v[i] = v[len - 1 - i];
        v[len - 1 - i] = t;
    }
    *conversation_id = cid;
    *out = v;
    *n = len;
    return 0;
}

static int sq_message_ingest(store_conn_t *base, const store_ingest_t *in,
                             store_ingest_result_t **out) {
    sq_conn_t *c = sq(base);
    *out = NULL;
    /* The result is built here with borrowed strings and packed into one block at the end. */
    store_ingest_result_t res = {0};
    int rc = 0;
    int64_t vid = 0, cid = 0;
    if (in->nevents > STORE_INGEST_EVENTS_MAX)
        return PL_ETOOBIG; /* store.c refuses it at the call: res.outbox_ids has no room */

    /* 1. the visitor, found or created (no project: STORE_ENOTFOUND) */
    rc = sq_visitor_seen(c, in->project_id, in->visitor_uid, in->now_ms, &vid);
    if (rc != 0)
        return rc;
    res.visitor_id = vid;

    /* 2. the idempotency key: a retry gets the original message */
    sqlite3_stmt *st = sq_stmt(c, SQ_MESSAGE_BY_TEMP, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, vid);
    sqlite3_bind_text(st, 2, in->temp_id, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        rc = sq_message_borrow_row(st, in->visitor_uid, &res.message);
        if (rc == 0) {
            res.duplicate = true;
            res.conversation_id = res.message.conversation_id;
            *out = store__ingest_result_pack(&res);
            rc = *out ? 0 : PL_ENOMEM;
        }
        sq_done(st);
        return rc;
    }
    rc = src == SQLITE_DONE ? 0 : sq_status(c, src);
    sq_done(st);
    if (rc != 0)
        return rc;

    /* 3. the current conversation, or a new one carrying this message's fields */
    bool solved = false;
    rc = sq_conv_current(c, vid, in->forever, &cid, &solved);
    if (rc != 0)
        return rc;
    /* content is at most STORE_MAX_ARG_BYTES (store.c): it fits an int */
    size_t clen = strlen(in->content);
    size_t snip = store__utf8_prefix(in->content, clen, STORE_SNIPPET_CHARS);
    if (cid == 0) {
        st = sq_stmt(c, SQ_CONV_INSERT, &rc);
        if (!st)
            return rc;
        sqlite3_bind_int64(st, 1, in->project_id);
        sqlite3_bind_int64(st, 2, vid);
        sqlite3_bind_text(st, 3, in->content, (int)snip, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, in->now_ms);
        if (in->session_metadata_json)
            sqlite3_bind_text(st, 5, in->session_metadata_json, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 5);
        rc = sq_step_done(c, st);
        if (rc != 0)
            return rc;
        if (sqlite3_changes(c->db) != 1)
            return PL_EINVAL; /* the metadata is not a JSON object */
        cid = sqlite3_last_insert_rowid(c->db);
        res.conversation_created = true;
    } else {
        st = sq_stmt(c, SQ_CONV_ON_MESSAGE, &rc);
        if (!st)
            return rc;
        /* Under forever a solved conversation is the current one: a new message reopens it.
         * (Under limit_to_active the current one is open or pending and keeps its status.) */
        res.conversation_reopened = in->forever && solved;
        sqlite3_bind_int64(st, 1, cid);
        sqlite3_bind_text(st, 2, in->content, (int)snip, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, in->now_ms);
        if (res.conversation_reopened)
            sqlite3_bind_text(st, 4, "open", -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 4); /* NULL keeps the status */
        rc = sq_step_done(c, st);
        if (rc != 0)
            return rc;
    }
    res.conversation_id = cid;

    /* 4. the message */
    st = sq_stmt(c, SQ_MESSAGE_INSERT, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, cid);
    sqlite3_bind_int64(st, 2, in->project_id);
    sqlite3_bind_int64(st, 3, vid);
    sqlite3_bind_text(st, 4, in->content, (int)clen, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, in->visitor_uid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, in->temp_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, in->now_ms);
    rc = sq_step_done(c, st);
    if (rc != 0)
        return rc;
    int64_t mid = sqlite3_last_insert_rowid(c->db);

    /* 6. the events to publish, in the same transaction, and the id of each row */
    if (in->nevents > 0) {
        st = sq_stmt(c, SQ_OUTBOX_INSERT, &rc);
        for (size_t i = 0; st && rc == 0 && i < in->nevents; i++) {
            sqlite3_bind_text(st, 1, in->event_topics[i], -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, in->event_payloads[i], -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, in->now_ms);
            rc = sq_step_done(c, st);
            if (rc == 0)
                res.outbox_ids[res.noutbox++] = sqlite3_last_insert_rowid(c->db);
        }
        if (rc != 0)
            return rc;
    }
    res.message = (store_message_t){
        .id = mid,
        .conversation_id = cid,
        .project_id = in->project_id,
        .visitor_id = vid,
        .visitor_uid = (char *)in->visitor_uid,
        .content = (char *)in->content,
        .sender_id = (char *)in->visitor_uid,
        .from_customer = true,
        .user_id = 0,
        .status = "sent",
        .temp_id = (char *)in->temp_id,
        .created_at = in->now_ms,
    };
    *out = store__ingest_result_pack(&res);
    return *out ? 0 : PL_ENOMEM;
}

static int sq_visitor_context(store_conn_t *base, int64_t project_id, const char *uid,
                              const char *url, int64_t now_ms, int64_t *conversation_id) {
    sq_conn_t *c = sq(base);
    *conversation_id = 0;
    int rc = 0;
    bool found;
    int64_t vid = 0, cid = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_VISITOR_SET_URL, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, project_id);
    sqlite3_bind_text(st, 2, uid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, url, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms);
    rc = sq_step_int(c, st, &vid, &found);
    if (rc != 0)
        return rc;
    if (!found)
        return STORE_ENOTFOUND;
    rc = sq_conv_current(c, vid, false, &cid, NULL);
    if (rc != 0 || cid == 0)
        return rc;
    st = sq_stmt(c, SQ_CONV_URL_APPEND, &rc);
    if (!st)
        return rc;
    char at[PL_ISO8601_LEN];
    sqlite3_bind_int64(st, 1, cid);
    sqlite3_bind_text(st, 2, url, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, pl_iso8601(now_ms, at), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, STORE_URL_HISTORY_MAX);
    sqlite3_bind_int64(st, 5, now_ms);
    rc = sq_step_done(c, st);
    if (rc == 0)
        *conversation_id = cid;
    return rc;
}

static int sq_visitor_conversation(store_conn_t *base, int64_t project_id, const char *uid,
                                   bool forever, int64_t *conversation_id) {
    sq_conn_t *c = sq(base);
    *conversation_id = 0;
    int64_t vid = 0;
    int rc = sq_visitor_find(c, project_id, uid, &vid);
    if (rc != 0 || vid == 0)
        return rc;
    return sq_conv_current(c, vid, forever, conversation_id, NULL);
}

static int sq_conversation_get(store_conn_t *base, int64_t project_id, int64_t id,
                               store_conversation_t **out) {
    sq_conn_t *c = sq(base);
    *out = NULL;
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_CONV_GET, &rc);
    if (!st)
        return rc;
    store_conversation_t *cv = malloc(sizeof *cv);
    if (!cv)
        return PL_ENOMEM;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, project_id);
    rc = sq_step_row(c, st);
    if (rc != 0) {
        free(cv);
        return rc;
    }
    rc = sq_conversation_from_row(st, cv);
    sq_done(st);
    if (rc != 0) {
        store_conversation_free(cv);
        return rc;
    }
    *out = cv;
    return 0;
}

/* ---- users and members ----------------------------------------------------------------------- */

static int sq_user_from_row(sqlite3_stmt *st, store_user_t *u) {
    memset(u, 0, sizeof *u);
    u->id = sqlite3_column_int64(st, 0);
    u->tokens_valid_from = sqlite3_column_int64(st, 4);
    u->created_at = sqlite3_column_int64(st, 5);
    int rc = sq_col_text(st, 1, false, &u->email);
    if (rc == 0)
        rc = sq_col_text(st, 2, false, &u->full_name);
    if (rc == 0)
        rc = sq_col_text(st, 3, false, &u->password_hash);
    return rc;
}

/* Steps a bound statement returning one user row (RETURNING or SELECT) into a new struct. */
static int sq_user_read(sq_conn_t *c, sqlite3_stmt *st, store_user_t **out) {
    *out = NULL;
    store_user_t *u = malloc(sizeof *u);
    if (!u) {
        sq_done(st);
        return PL_ENOMEM;
    }
    int rc = sq_step_row(c, st);
    if (rc != 0) {
        free(u);
        return rc;
    }
    rc = sq_user_from_row(st, u);
    if (rc == 0 && sqlite3_step(st) != SQLITE_DONE) /* completes an INSERT ... RETURNING */
        rc = PL_EUNAVAIL;
    sq_done(st);
    if (rc != 0) {
        store_user_free(u);
        return rc;
    }
    *out = u;
    return 0;
}

static int sq_user_create(store_conn_t *base, const char *email, const char *password_hash,
                          const char *full_name, int64_t now_ms, store_user_t **out) {
    sq_conn_t *c = sq(base);
    *out = NULL;
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_USER_INSERT, &rc);
    if (!st)
        return rc;
    sqlite3_bind_text(st, 1, email, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, password_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, full_name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms);
    return sq_user_read(c, st, out); /* a taken e-mail is STORE_ECONFLICT */
}

static int sq_user_get(store_conn_t *base, int64_t id, store_user_t **out) {
    sq_conn_t *c = sq(base);
    *out = NULL;
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_USER_GET, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    return sq_user_read(c, st, out);
}

static int sq_user_by_email(store_conn_t *base, const char *email, store_user_t **out) {
    sq_conn_t *c = sq(base);
    *out = NULL;
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_USER_BY_EMAIL, &rc);
    if (!st)
        return rc;
    sqlite3_bind_text(st, 1, email, -1, SQLITE_STATIC);
    return sq_user_read(c, st, out);
}

static int sq_user_revoke_tokens(store_conn_t *base, int64_t user_id, int64_t now_ms) {
    sq_conn_t *c = sq(base);
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_USER_REVOKE, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_int64(st, 2, now_ms);
    rc = sq_step_done(c, st);
    if (rc == 0 && sqlite3_changes(c->db) == 0)
        rc = STORE_ENOTFOUND;
    return rc;
}

static int sq_member_add(store_conn_t *base, int64_t project_id, int64_t user_id,
                         const char *role) {
    sq_conn_t *c = sq(base);
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_MEMBER_UPSERT, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, project_id);
    sqlite3_bind_int64(st, 2, user_id);
    sqlite3_bind_text(st, 3, role, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, pl_wall_ms());
    /* a missing project or user fails a foreign key (STORE_ENOTFOUND), another role the CHECK
     * (PL_EINVAL) */
    return sq_step_done(c, st);
}

static int sq_member_role(store_conn_t *base, int64_t project_id, int64_t user_id, char **role) {
    sq_conn_t *c = sq(base);
    *role = NULL;
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_MEMBER_ROLE, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, project_id);
    sqlite3_bind_int64(st, 2, user_id);
    rc = sq_step_row(c, st);
    if (rc != 0)
        return rc;
    rc = sq_col_text(st, 0, false, role);
    sq_done(st);
    return rc;
}

/* ---- refresh tokens -------------------------------------------------------------------------- */

/* Runs a bound statement returning one row of two integers (an aggregate). */
static int sq_step_int2(sq_conn_t *c, sqlite3_stmt *st, int64_t *a, int64_t *b) {
    int rc = sq_step_row(c, st);
    if (rc != 0)
        return rc == STORE_ENOTFOUND ? PL_EUNAVAIL : rc; /* an aggregate always has its row */
    *a = sqlite3_column_int64(st, 0);
    *b = sqlite3_column_int64(st, 1);
    sq_done(st);
    return 0;
}

/* Inserts a live token into family (0: a new family numbered after this row); *family_out
 * gets the family. */
static int sq_refresh_insert(sq_conn_t *c, int64_t user_id, int64_t family, const char *token_hash,
                             int64_t expires_at_ms, int64_t now_ms, int64_t *family_out) {
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_REFRESH_INSERT, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_int64(st, 2, family);
    sqlite3_bind_text(st, 3, token_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, expires_at_ms);
    sqlite3_bind_int64(st, 5, now_ms);
    rc = sq_step_done(c, st); /* no such user: STORE_ENOTFOUND; a known hash: STORE_ECONFLICT */
    if (rc != 0)
        return rc;
    if (family == 0) {
        family = sqlite3_last_insert_rowid(c->db);
        st = sq_stmt(c, SQ_REFRESH_SET_FAMILY, &rc);
        if (!st)
            return rc;
        sqlite3_bind_int64(st, 1, family);
        rc = sq_step_done(c, st);
        if (rc != 0)
            return rc;
    }
    *family_out = family;
    return 0;
}

static int sq_refresh_create(store_conn_t *base, int64_t user_id, int64_t family_id,
                             const char *token_hash, int64_t expires_at_ms, int64_t now_ms,
                             int64_t *family_out) {
    sq_conn_t *c = sq(base);
    *family_out = 0;
    int rc = 0;
    sqlite3_stmt *st;
    if (family_id != 0) {
        int64_t tokens = 0, revoked = 0;
        st = sq_stmt(c, SQ_REFRESH_FAMILY_STATE, &rc);
        if (!st)
            return rc;
        sqlite3_bind_int64(st, 1, family_id);
        sqlite3_bind_int64(st, 2, user_id);
        rc = sq_step_int2(c, st, &tokens, &revoked);
        if (rc != 0)
            return rc;
        if (tokens == 0 || revoked != 0)
            return STORE_ENOTFOUND;
    }
    /* The user's long-expired tokens go (now_ms is the caller's: no overflow below). */
    if (now_ms > INT64_MIN + STORE_REFRESH_KEEP_MS) {
        st = sq_stmt(c, SQ_REFRESH_PRUNE, &rc);
        if (!st)
            return rc;
        sqlite3_bind_int64(st, 1, user_id);
        sqlite3_bind_int64(st, 2, now_ms - STORE_REFRESH_KEEP_MS);
        rc = sq_step_done(c, st);
        if (rc != 0)
            return rc;
    }
    return sq_refresh_insert(c, user_id, family_id, token_hash, expires_at_ms, now_ms, family_out);
}

static int sq_refresh_rotate(store_conn_t *base, const char *old_hash, const char *new_hash,
                             int64_t new_expires_ms, int64_t now_ms, store_refresh_t *out) {
    sq_conn_t *c = sq(base);
    *out = (store_refresh_t){.status = STORE_TOKEN_UNKNOWN};
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_REFRESH_FIND, &rc);
    if (!st)
        return rc;
    sqlite3_bind_text(st, 1, old_hash, -1, SQLITE_STATIC);
    rc = sq_step_row(c, st);
    if (rc == STORE_ENOTFOUND)
        return 0; /* unknown */
    if (rc != 0)
        return rc;
    int64_t id = sqlite3_column_int64(st, 0);
    out->user_id = sqlite3_column_int64(st, 1);
    out->family_id = sqlite3_column_int64(st, 2);
    int64_t expires_at = sqlite3_column_int64(st, 3);
    bool spent = sqlite3_column_int64(st, 4) != 0;
    sq_done(st);

    if (spent) {
        /* Presented again after its rotation or logout: a copy exists somewhere. Everything
         * descended from the same login dies. */
        st = sq_stmt(c, SQ_REFRESH_REVOKE_FAMILY, &rc);
        if (!st)
            return rc;
        sqlite3_bind_int64(st, 1, out->family_id);
        sqlite3_bind_int64(st, 2, now_ms);
        rc = sq_step_done(c, st);
        if (rc == 0)
            out->status = STORE_TOKEN_REUSED;
        return rc;
    }
    if (expires_at <= now_ms) {
        out->status = STORE_TOKEN_EXPIRED;
        return 0;
    }
    st = sq_stmt(c, SQ_REFRESH_USE, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now_ms);
    rc = sq_step_done(c, st);
    if (rc != 0)
        return rc;
    int64_t family = 0;
    rc = sq_refresh_insert(c, out->user_id, out->family_id, new_hash, new_expires_ms, now_ms,
                           &family);
    if (rc != 0)
        return rc;
    out->status = STORE_TOKEN_OK;
    return 0;
}

static int sq_refresh_revoke(store_conn_t *base, const char *token_hash, int64_t now_ms) {
    sq_conn_t *c = sq(base);
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_REFRESH_REVOKE_ONE, &rc);
    if (!st)
        return rc;
    sqlite3_bind_text(st, 1, token_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    return sq_step_done(c, st); /* an unknown (or already revoked) token changes nothing */
}

static int sq_user_logout_all(store_conn_t *base, int64_t user_id, int64_t now_ms) {
    sq_conn_t *c = sq(base);
    int rc = sq_user_revoke_tokens(base, user_id, now_ms); /* STORE_ENOTFOUND: no such user */
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = sq_stmt(c, SQ_REFRESH_REVOKE_USER, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_int64(st, 2, now_ms);
    return sq_step_done(c, st);
}

/* ---- projects of agents ---------------------------------------------------------------------- */

/* Sets p->role to a copy of role. */
static int sq_set_role(store_project_t *p, const char *role) {
    free(p->role);
    p->role = strdup(role);
    return p->role ? 0 : PL_ENOMEM;
}

static int sq_project_create_owned(store_conn_t *base, const char *name, const char *const *domains,
                                   size_t ndomains, int64_t owner_user_id, store_project_t **out) {
    *out = NULL;
    store_project_t *p = NULL;
    int rc = sq_project_create(base, name, domains, ndomains, &p);
    if (rc != 0)
        return rc;
    /* A missing user fails the foreign key: STORE_ENOTFOUND, and the savepoint undoes the
     * project. */
    rc = sq_member_add(base, p->id, owner_user_id, "manager");
    if (rc == 0)
        rc = sq_set_role(p, "manager");
    if (rc != 0) {
        store_project_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

static int sq_projects_of_user(store_conn_t *base, int64_t user_id, store_project_t **out,
                               size_t *n) {
    *out = NULL;
    *n = 0;
    if (user_id <= 0)
        return 0; /* no such user: a member of nothing */
    return sq_projects_query(sq(base), SQ_PROJECTS_OF_USER, SQ_DOMAINS_OF_USER, user_id, out, n);
}

static int sq_project_of_member(store_conn_t *base, int64_t project_id, int64_t user_id,
                                store_project_t **out) {
    *out = NULL;
    store_project_t *p = NULL;
    int rc = sq_project_read(sq(base), project_id, &p);
    if (rc != 0)
        return rc;
    char *role = NULL;
    rc = sq_member_role(base, project_id, user_id, &role);
    if (rc == STORE_ENOTFOUND)
        rc = 0; /* not a member: role stays NULL */
    if (rc != 0) {
        store_project_free(p);
        return rc;
    }
    p->role = role;
    *out = p;
    return 0;
}

/* 0 when the project exists, STORE_ENOTFOUND when not. */
static int sq_project_exists(sq_conn_t *c, int64_t project_id) {
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_PROJECT_EXISTS, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, project_id);
    int64_t id;
    bool found;
    rc = sq_step_int(c, st, &id, &found);
    return rc != 0 ? rc : found ? 0 : STORE_ENOTFOUND;
}

static int sq_project_update(store_conn_t *base, int64_t project_id, const char *name,
                             bool replace_domains, const char *const *domains, size_t ndomains,
                             store_project_t **out) {
    sq_conn_t *c = sq(base);
    *out = NULL;
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_PROJECT_UPDATE, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, project_id);
    if (name)
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_int64(st, 3, pl_wall_ms());
    rc = sq_step_done(c, st); /* an empty name fails the CHECK: PL_EINVAL */
    if (rc != 0)
        return rc;
    if (sqlite3_changes(c->db) == 0)
        return STORE_ENOTFOUND;
    if (replace_domains) {
        /* The new list in its order: the surrogate ids of the new rows keep it. */
        st = sq_stmt(c, SQ_DOMAINS_CLEAR, &rc);
        if (!st)
            return rc;
        sqlite3_bind_int64(st, 1, project_id);
        rc = sq_step_done(c, st);
        if (rc == 0)
            rc = sq_domains_add(c, project_id, domains, ndomains);
        if (rc != 0)
            return rc;
    }
    return sq_project_read(c, project_id, out);
}

static int sq_project_widget_settings(store_conn_t *base, int64_t project_id, const char *json_text,
                                      store_project_t **out) {
    sq_conn_t *c = sq(base);
    *out = NULL;
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_PROJECT_SETTINGS, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, project_id);
    sqlite3_bind_text(st, 2, json_text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, pl_wall_ms());
    rc = sq_step_done(c, st);
    if (rc != 0)
        return rc;
    if (sqlite3_changes(c->db) == 0) {
        rc = sq_project_exists(c, project_id);
        return rc != 0 ? rc : PL_EINVAL; /* it exists: the text is not a JSON object */
    }
    return sq_project_read(c, project_id, out);
}

static int sq_members_list(store_conn_t *base, int64_t project_id, store_member_t **out,
                           size_t *n) {
    sq_conn_t *c = sq(base);
    *out = NULL;
    *n = 0;
    store_member_t *v = NULL;
    size_t len = 0, cap = 0;
    int rc = 0, src;
    sqlite3_stmt *st = sq_stmt(c, SQ_MEMBERS_OF, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, project_id);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            store_member_t *nv = ncap <= SIZE_MAX / sizeof *v ? realloc(v, ncap * sizeof *v) : NULL;
            if (!nv) {
                rc = PL_ENOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        store_member_t *m = &v[len++]; /* counted even when incomplete: its copies are freed */
        memset(m, 0, sizeof *m);
        m->id = sqlite3_column_int64(st, 0);
        rc = sq_col_text(st, 1, false, &m->email);
        if (rc == 0)
            rc = sq_col_text(st, 2, false, &m->full_name);
        if (rc == 0)
            rc = sq_col_text(st, 3, false, &m->role);
        if (rc != 0)
            break;
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = sq_status(c, src);
    sq_done(st);
    if (rc == 0 && len == 0)
        rc = sq_project_exists(c, project_id); /* no members: does the project exist? */
    if (rc != 0 || len == 0) {
        store__member_list_free(v, len);
        return rc;
    }
    *out = v;
    *n = len;
    return 0;
}

/* ---- the inbox ------------------------------------------------------------------------------- */

static const char *const g_status_names[4] = {"open", "pending", "solved", "spam"};

static int sq_conversations_list(store_conn_t *base, int64_t project_id, unsigned status_mask,
                                 int64_t offset, size_t limit, store_conversation_t **out,
                                 size_t *n, int64_t *total) {
    sq_conn_t *c = sq(base);
    *out = NULL;
    *n = 0;
    *total = 0;
    status_mask &= STORE_STATUS_ALL;
    if (status_mask == 0)
        return 0;

    /* The total first, in the same read snapshot as the page. */
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_CONV_COUNT, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, project_id);
    int bits = 0, one = 0;
    for (int i = 0; i < 4; i++) {
        if (status_mask & (1u << i)) {
            sqlite3_bind_text(st, 2 + i, g_status_names[i], -1, SQLITE_STATIC);
            bits++;
            one = i;
        } else {
            sqlite3_bind_null(st, 2 + i);
        }
    }
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *total = sqlite3_column_int64(st, 0);
    else
        rc = src == SQLITE_DONE ? PL_EUNAVAIL : sq_status(c, src);
    sq_done(st);
    if (rc != 0)
        return rc;
    if (offset >= *total)
        return 0; /* past the end (or nothing matches) */

    st = sq_stmt(c, bits == 1 ? SQ_CONV_PAGE_ONE : SQ_CONV_PAGE_MASK, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, project_id);
    if (bits == 1)
        sqlite3_bind_text(st, 2, g_status_names[one], -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 2, status_mask);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit); /* <= STORE_PAGE_MAX (store.c) */
    sqlite3_bind_int64(st, 4, offset);
    store_conversation_t *v = calloc(limit, sizeof *v); /* limit <= STORE_PAGE_MAX */
    if (!v) {
        sq_done(st);
        return PL_ENOMEM;
    }
    size_t len = 0;
    while (len < limit && (src = sqlite3_step(st)) == SQLITE_ROW) {
        rc = sq_conversation_from_row(st, &v[len]);
        len++; /* counted even when incomplete: its copies are freed */
        if (rc != 0)
            break;
    }
    if (rc == 0 && len < limit && src != SQLITE_DONE)
        rc = sq_status(c, src);
    sq_done(st);
    if (rc != 0 || len == 0) {
        store__conversation_list_free(v, len);
        return rc;
    }
    *out = v;
    *n = len;
    return 0;
}

/* The uid of the conversation's visitor (a malloc'd copy), or STORE_ENOTFOUND when the
 * conversation is not in the project. */
static int sq_conv_visitor_uid(sq_conn_t *c, int64_t project_id, int64_t id, char **uid) {
    *uid = NULL;
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_CONV_VISITOR_UID, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, project_id);
    rc = sq_step_row(c, st);
    if (rc != 0)
        return rc;
    rc = sq_col_text(st, 0, false, uid);
    sq_done(st);
    return rc;
}

static int sq_messages_list(store_conn_t *base, int64_t project_id, int64_t conversation_id,
                            int64_t before_id, size_t limit, store_message_t **out, size_t *n,
                            bool *has_more) {
    sq_conn_t *c = sq(base);
    *out = NULL;
    *n = 0;
    *has_more = false;
    char *uid = NULL;
    int rc = sq_conv_visitor_uid(c, project_id, conversation_id, &uid);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = sq_stmt(c, SQ_MESSAGE_PAGE, &rc);
    if (!st)
        goto out_free_uid;
    sqlite3_bind_int64(st, 1, conversation_id);
    sqlite3_bind_int64(st, 2, before_id > 0 ? before_id : INT64_MAX);
    /* one more than asked: whether older messages exist */
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit + 1); /* limit <= STORE_PAGE_MAX */
    store__msglist_t l;
    store__msglist_init(&l);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (l.n == limit) {
            *has_more = true;
            src = SQLITE_DONE;
            break;
        }
        store_message_t m;
        rc = sq_message_borrow_row(st, uid, &m);
        if (rc == 0)
            rc = store__msglist_add(&l, &m);
        if (rc != 0)
            break;
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = sq_status(c, src);
    sq_done(st);
    if (rc != 0) {
        store__msglist_dispose(&l);
        *has_more = false;
        goto out_free_uid;
    }
    store_message_t *v;
    size_t len;
    rc = store__msglist_finish(&l, &v, &len);
    if (rc != 0) {
        *has_more = false;
        goto out_free_uid;
    }
    /* Newest first from the index; the page is shown oldest first. Swapping whole structs keeps
     * their pointers into the block valid. */
    for (size_t i = 0; i < len / 2; i++) {
        store_message_t t = v[i];
        v[i] = v[len - 1 - i];
        v[len - 1 - i] = t;
    }
    *out = v;
    *n = len;
out_free_uid:
    free(uid);
    return rc;
}

static int sq_agent_reply(store_conn_t *base, int64_t project_id, int64_t conversation_id,
                          int64_t user_id, const char *text, int64_t now_ms, store_message_t **msg,
                          store_conversation_t **conv) {
    sq_conn_t *c = sq(base);
    *msg = NULL;
    *conv = NULL;
    store_conversation_t *cv = NULL;
    int rc = sq_conversation_get(base, project_id, conversation_id, &cv);
    if (rc != 0)
        return rc;
    char sender[24];
    snprintf(sender, sizeof sender, "%lld", (long long)user_id);
    /* text is at most STORE_MAX_ARG_BYTES (store.c): it fits an int */
    size_t tlen = strlen(text);
    size_t snip = store__utf8_prefix(text, tlen, STORE_SNIPPET_CHARS);
    sqlite3_stmt *st = sq_stmt(c, SQ_MESSAGE_INSERT_AGENT, &rc);
    if (!st)
        goto out_free_conv;
    sqlite3_bind_int64(st, 1, conversation_id);
    sqlite3_bind_int64(st, 2, project_id);
    sqlite3_bind_int64(st, 3, cv->visitor_id);
    sqlite3_bind_text(st, 4, text, (int)tlen, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, sender, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, user_id);
    sqlite3_bind_int64(st, 7, now_ms);
    rc = sq_step_done(c, st); /* an unknown user fails the foreign key: STORE_ENOTFOUND */
    if (rc != 0)
        goto out_free_conv;
    int64_t mid = sqlite3_last_insert_rowid(c->db);

    st = sq_stmt(c, SQ_CONV_ON_REPLY, &rc);
    if (!st)
        goto out_free_conv;
    sqlite3_bind_int64(st, 1, conversation_id);
    sqlite3_bind_text(st, 2, text, (int)snip, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms);
    rc = sq_step_done(c, st);
    if (rc != 0)
        goto out_free_conv;
    /* The conversation as it is now (the fields just written), with its visitor. */
    free(cv->last_message_snippet);
    cv->last_message_snippet = malloc(snip + 1);
    if (!cv->last_message_snippet) {
        rc = PL_ENOMEM;
        goto out_free_conv;
    }
    memcpy(cv->last_message_snippet, text, snip);
    cv->last_message_snippet[snip] = '\0';
    cv->last_message_timestamp = now_ms;
    cv->updated_at = now_ms;

    store_message_t m = {
        .id = mid,
        .conversation_id = conversation_id,
        .project_id = project_id,
        .visitor_id = cv->visitor_id,
        .visitor_uid = cv->visitor.uid,
        .content = (char *)text,
        .sender_id = sender,
        .from_customer = false,
        .user_id = user_id,
        .status = "sent",
        .created_at = now_ms,
    };
    store__msglist_t l;
    store__msglist_init(&l);
    size_t one;
    rc = store__msglist_add(&l, &m);
    if (rc != 0) {
        store__msglist_dispose(&l);
        goto out_free_conv;
    }
    rc = store__msglist_finish(&l, msg, &one);
    if (rc != 0)
        goto out_free_conv;
    *conv = cv;
    return 0;

out_free_conv:
    store_conversation_free(cv);
    return rc;
}

static int sq_conversation_update(store_conn_t *base, int64_t project_id, int64_t id,
                                  const char *status, bool mark_read, int64_t now_ms,
                                  store_conversation_t **out) {
    sq_conn_t *c = sq(base);
    *out = NULL;
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_CONV_UPDATE, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, project_id);
    if (status)
        sqlite3_bind_text(st, 3, status, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_int(st, 4, mark_read ? 1 : 0);
    sqlite3_bind_int64(st, 5, now_ms);
    rc = sq_step_done(c, st); /* another status fails the CHECK: PL_EINVAL */
    if (rc != 0)
        return rc;
    if (sqlite3_changes(c->db) == 0)
        return STORE_ENOTFOUND;
    return sq_conversation_get(base, project_id, id, out);
}

static int sq_conversation_assign(store_conn_t *base, int64_t project_id, int64_t id,
                                  int64_t assignee_user_id, int64_t now_ms,
                                  store_conversation_t **out) {
    sq_conn_t *c = sq(base);
    *out = NULL;
    int rc = 0;
    if (assignee_user_id != 0) {
        /* Only a member may be assigned (a member is a user: the foreign key below holds).
         * A conversation that is not in the project is "not found" first. */
        char *role = NULL;
        rc = sq_member_role(base, project_id, assignee_user_id, &role);
        free(role);
        if (rc == STORE_ENOTFOUND) {
            char *uid = NULL;
            rc = sq_conv_visitor_uid(c, project_id, id, &uid);
            free(uid);
            return rc != 0 ? rc : PL_EINVAL;
        }
        if (rc != 0)
            return rc;
    }
    sqlite3_stmt *st = sq_stmt(c, SQ_CONV_ASSIGN, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, project_id);
    if (assignee_user_id != 0)
        sqlite3_bind_int64(st, 3, assignee_user_id);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_int64(st, 4, now_ms);
    rc = sq_step_done(c, st);
    if (rc != 0)
        return rc;
    if (sqlite3_changes(c->db) == 0)
        return STORE_ENOTFOUND;
    return sq_conversation_get(base, project_id, id, out);
}

static int sq_conversation_delete(store_conn_t *base, int64_t project_id, int64_t id,
                                  store_conversation_t **out) {
    sq_conn_t *c = sq(base);
    *out = NULL;
    store_conversation_t *cv = NULL;
    int rc = sq_conversation_get(base, project_id, id, &cv);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = sq_stmt(c, SQ_CONV_DELETE, &rc);
    if (!st)
        goto out_free_conv;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, project_id);
    rc = sq_step_done(c, st);
    if (rc == 0 && sqlite3_changes(c->db) != 1)
        rc = PL_EUNAVAIL; /* cannot happen: read just now in this transaction */
    if (rc != 0)
        goto out_free_conv;
    *out = cv;
    return 0;

out_free_conv:
    store_conversation_free(cv);
    return rc;
}

static int sq_visitor_get(store_conn_t *base, int64_t project_id, int64_t visitor_id,
                          store_visitor_t **out) {
    sq_conn_t *c = sq(base);
    *out = NULL;
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_VISITOR_GET_IN, &rc);
    if (!st)
        return rc;
    store_visitor_t *v = malloc(sizeof *v);
    if (!v) {
        sq_done(st);
        return PL_ENOMEM;
    }
    sqlite3_bind_int64(st, 1, visitor_id);
    sqlite3_bind_int64(st, 2, project_id);
    rc = sq_step_row(c, st);
    if (rc != 0) {
        free(v);
        return rc;
    }
    rc = sq_visitor_from_row(st, 0, v);
    sq_done(st);
    if (rc != 0) {
        store_visitor_free(v);
        return rc;
    }
    *out = v;
    return 0;
}

/* ---- the transactional outbox ---------------------------------------------------------------- */

static int sq_outbox_fetch(store_conn_t *base, size_t limit, store_outbox_event_t **out,
                           size_t *n) {
    sq_conn_t *c = sq(base);
    *out = NULL;
    *n = 0;
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_OUTBOX_FETCH, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)limit); /* <= STORE_OUTBOX_MAX (store.c) */
    store__outbox_list_t l;
    store__outbox_list_init(&l);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        store_outbox_event_t e = {
            .id = sqlite3_column_int64(st, 0),
            .topic = (char *)sqlite3_column_text(st, 1),
            .payload = (char *)sqlite3_column_text(st, 2),
            .created_at = sqlite3_column_int64(st, 3),
        };
        rc = e.topic && e.payload ? store__outbox_list_add(&l, &e) : PL_ENOMEM;
        if (rc != 0)
            break;
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = sq_status(c, src);
    sq_done(st);
    if (rc != 0) {
        store__outbox_list_dispose(&l);
        return rc;
    }
    return store__outbox_list_finish(&l, out, n);
}

static int sq_outbox_delete(store_conn_t *base, const int64_t *ids, size_t n, int64_t *deleted) {
    sq_conn_t *c = sq(base);
    *deleted = 0;
    if (n == 0)
        return 0;
    int rc = 0;
    sqlite3_stmt *st = sq_stmt(c, SQ_OUTBOX_DELETE, &rc);
    for (size_t i = 0; st && rc == 0 && i < n; i++) {
        sqlite3_bind_int64(st, 1, ids[i]);
        rc = sq_step_done(c, st);
        if (rc == 0)
            *deleted += sqlite3_changes(c->db);
    }
    if (rc != 0)
        *deleted = 0;
    return rc;
}

const store_ops_t store_sqlite_ops = {
    .name = "sqlite",
    .dialect = STORE_DIALECT_SQLITE,
    .conn_open = sq_conn_open,
    .conn_close = sq_conn_close,
    .errmsg = sq_errmsg,
    .begin = sq_begin,
    .checkpoint_due = sq_checkpoint_due,
    .checkpoint = sq_checkpoint,
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
    .visitor_identify = sq_visitor_identify,
    .history = sq_history,
    .message_ingest = sq_message_ingest,
    .visitor_context = sq_visitor_context,
    .visitor_conversation = sq_visitor_conversation,
    .conversation_get = sq_conversation_get,
    .user_create = sq_user_create,
    .user_get = sq_user_get,
    .user_by_email = sq_user_by_email,
    .user_revoke_tokens = sq_user_revoke_tokens,
    .member_add = sq_member_add,
    .member_role = sq_member_role,
    .refresh_create = sq_refresh_create,
    .refresh_rotate = sq_refresh_rotate,
    .refresh_revoke = sq_refresh_revoke,
    .user_logout_all = sq_user_logout_all,
    .project_create_owned = sq_project_create_owned,
    .projects_of_user = sq_projects_of_user,
    .project_of_member = sq_project_of_member,
    .project_update = sq_project_update,
    .project_widget_settings = sq_project_widget_settings,
    .members_list = sq_members_list,
    .conversations_list = sq_conversations_list,
    .messages_list = sq_messages_list,
    .agent_reply = sq_agent_reply,
    .conversation_update = sq_conversation_update,
    .conversation_assign = sq_conversation_assign,
    .conversation_delete = sq_conversation_delete,
    .visitor_get = sq_visitor_get,
    .outbox_fetch = sq_outbox_fetch,
    .outbox_delete = sq_outbox_delete,
};
