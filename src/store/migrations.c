/* Schema migrations of the store and the driver that applies them: see migrations.h. The data
 * model (migration 1) follows PROTOCOL.md sections 3, 8 and 9; every time is INTEGER
 * milliseconds since the epoch; JSON columns hold JSON text (PostgreSQL's JSON type: see the
 * dialect table). The SQL is written once: the dialect table below is the only place where
 * SQLite and PostgreSQL differ.
 *
 * The status CHECKs of conversations and messages are chains of `=` rather than `IN (...)`:
 * SQLite builds a temporary index for an IN list on every row it checks, which cost ~10 % of
 * the writer's time per visitor message. The meaning is the same; databases created before
 * this change keep the IN form, which is equally correct. */
#include "store/migrations.h"

#include "core/clock.h"
#include "core/log.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the dialect table ----------------------------------------------------------------------- */

typedef struct {
    const char *name;                      /* placeholder name between {{ and }} */
    const char *text[STORE_DIALECT_COUNT]; /* what it becomes, per dialect */
} placeholder_t;

static const placeholder_t g_placeholders[] = {
    /* A 64-bit key assigned on insert. AUTOINCREMENT makes SQLite never reuse the id of a
     * deleted row, as PostgreSQL's sequences do not: a client holding an old conversation id
     * never sees another conversation under it. */
    {"id",
     {[STORE_DIALECT_SQLITE] = "INTEGER PRIMARY KEY AUTOINCREMENT",
      [STORE_DIALECT_POSTGRES] = "BIGSERIAL PRIMARY KEY"}},
    {"bigint", {[STORE_DIALECT_SQLITE] = "INTEGER", [STORE_DIALECT_POSTGRES] = "BIGINT"}},
    {"bool", {[STORE_DIALECT_SQLITE] = "INTEGER", [STORE_DIALECT_POSTGRES] = "BOOLEAN"}},
    /* JSON documents the store keeps as text and hands back as text (widget settings, session
     * metadata, URL history). PostgreSQL's JSON type, not JSONB: JSON checks the syntax on
     * write and keeps the text byte for byte, so the widget settings an agent saved come back
     * exactly as written (JSONB re-orders keys, drops duplicates and re-spaces the text); the
     * store never queries inside these documents, so JSONB's indexing buys nothing. */
    {"json", {[STORE_DIALECT_SQLITE] = "TEXT", [STORE_DIALECT_POSTGRES] = "JSON"}},
    /* SQLite checks column types only in STRICT tables. */
    {"strict", {[STORE_DIALECT_SQLITE] = " STRICT", [STORE_DIALECT_POSTGRES] = ""}},
};

/* ---- the migrations -------------------------------------------------------------------------- */

static const char g_bootstrap_sql[] =
    /* Kept by every database before any migration runs. */
    "CREATE TABLE IF NOT EXISTS schema_migrations (\n"
    "  version {{bigint}} PRIMARY KEY,\n"
    "  applied_at {{bigint}} NOT NULL -- ms since the epoch\n"
    "){{strict}};\n";

static const char g_v1_sql[] =
    /* A site that embeds the widget. widget_settings is the JSON object of PROTOCOL.md section
     * 8 ("Widget settings"); identity_* are section 7's optional visitor verification. */
    "CREATE TABLE projects (\n"
    "  id {{id}},\n"
    "  name TEXT NOT NULL CHECK (name <> ''),\n"
    "  widget_settings {{json}} NOT NULL DEFAULT '{}',\n"
    "  identity_secret TEXT,\n"
    "  identity_verification {{bool}} NOT NULL DEFAULT FALSE,\n"
    "  created_at {{bigint}} NOT NULL,\n"
    "  updated_at {{bigint}} NOT NULL\n"
    "){{strict}};\n"
    /* Whitelisted origins (section 2). The surrogate id keeps the order of insertion for
     * listing; (project_id, domain) is the real key. */
    "CREATE TABLE project_domains (\n"
    "  id {{id}},\n"
    "  project_id {{bigint}} NOT NULL REFERENCES projects (id) ON DELETE CASCADE,\n"
    "  domain TEXT NOT NULL CHECK (domain <> ''),\n"
    "  UNIQUE (project_id, domain)\n"
    "){{strict}};\n"
    /* Agents. email is unique as stored: the app lower-cases it. tokens_valid_from (ms) revokes
     * every access token issued before it (section 2, "Token revoked"). */
    "CREATE TABLE users (\n"
    "  id {{id}},\n"
    "  email TEXT NOT NULL UNIQUE,\n"
    "  password_hash TEXT NOT NULL,\n"
    "  full_name TEXT NOT NULL DEFAULT '',\n"
    "  tokens_valid_from {{bigint}} NOT NULL DEFAULT 0,\n"
    "  created_at {{bigint}} NOT NULL,\n"
    "  updated_at {{bigint}} NOT NULL\n"
    "){{strict}};\n"
    "CREATE TABLE project_members (\n"
    "  project_id {{bigint}} NOT NULL REFERENCES projects (id) ON DELETE CASCADE,\n"
    "  user_id {{bigint}} NOT NULL REFERENCES users (id) ON DELETE CASCADE,\n"
    "  role TEXT NOT NULL CHECK (role IN ('manager', 'agent')),\n"
    "  created_at {{bigint}} NOT NULL,\n"
    "  PRIMARY KEY (project_id, user_id)\n"
    "){{strict}};\n"
    /* "the projects of a user" (GET /projects) */
    "CREATE INDEX project_members_by_user ON project_members (user_id);\n"
    /* A widget visitor, known by the uid its browser keeps (section 3, identify). */
    "CREATE TABLE visitors (\n"
    "  id {{id}},\n"
    "  project_id {{bigint}} NOT NULL REFERENCES projects (id) ON DELETE CASCADE,\n"
    "  uid TEXT NOT NULL,\n"
    "  name TEXT,\n"
    "  email TEXT,\n"
    "  current_url TEXT,\n"
    "  last_seen_at {{bigint}} NOT NULL,\n"
    "  created_at {{bigint}} NOT NULL,\n"
    "  UNIQUE (project_id, uid)\n"
    "){{strict}};\n"
    /* Section 8's Conversation. Created by a visitor's first message, so the last-message
     * fields always have a value. url_history is a bounded JSON array (updateContext). */
    "CREATE TABLE conversations (\n"
    "  id {{id}},\n"
    "  project_id {{bigint}} NOT NULL REFERENCES projects (id) ON DELETE CASCADE,\n"
    "  visitor_id {{bigint}} NOT NULL REFERENCES visitors (id) ON DELETE CASCADE,\n"
    "  assignee_id {{bigint}} REFERENCES users (id) ON DELETE SET NULL,\n"
    "  status TEXT NOT NULL DEFAULT 'open'\n"
    "    CHECK (status = 'open' OR status = 'pending' OR status = 'solved' OR status = 'spam'),\n"
    "  last_message_snippet TEXT NOT NULL DEFAULT '',\n"
    "  last_message_timestamp {{bigint}} NOT NULL,\n"
    "  unread_count {{bigint}} NOT NULL DEFAULT 0 CHECK (unread_count >= 0),\n"
    "  metadata {{json}},\n"
    "  url_history {{json}},\n"
    "  created_at {{bigint}} NOT NULL,\n"
    "  updated_at {{bigint}} NOT NULL\n"
    "){{strict}};\n"
    /* the inbox: newest conversations of a project, by status (or across all statuses) */
    "CREATE INDEX conversations_inbox\n"
    "  ON conversations (project_id, status, last_message_timestamp, id);\n"
    "CREATE INDEX conversations_newest\n"
    "  ON conversations (project_id, last_message_timestamp, id);\n"
    /* the widget's history: newest conversation of a visitor */
    "CREATE INDEX conversations_by_visitor ON conversations (visitor_id, id);\n"
    /* an agent's assigned conversations (and deleting a user without a full scan) */
    "CREATE INDEX conversations_by_assignee ON conversations (assignee_id);\n"
    /* Section 8's Message. (visitor_id, temp_id) is section 3's idempotency key (a visitor is
     * one (project, uid)); agent messages have no temp_id, and NULLs never collide. */
    "CREATE TABLE messages (\n"
    "  id {{id}},\n"
    "  conversation_id {{bigint}} NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,\n"
    "  project_id {{bigint}} NOT NULL REFERENCES projects (id) ON DELETE CASCADE,\n"
    "  visitor_id {{bigint}} NOT NULL REFERENCES visitors (id) ON DELETE CASCADE,\n"
    "  content TEXT NOT NULL,\n"
    "  sender_id TEXT NOT NULL,\n"
    "  from_customer {{bool}} NOT NULL,\n"
    "  user_id {{bigint}} REFERENCES users (id) ON DELETE SET NULL,\n"
    "  status TEXT NOT NULL DEFAULT 'sent'\n"
    "    CHECK (status = 'sending' OR status = 'sent' OR status = 'delivered' OR status = 'read'\n"
    "           OR status = 'failed'),\n"
    "  content_type TEXT,\n"
    "  metadata {{json}},\n"
    "  temp_id TEXT,\n"
    "  created_at {{bigint}} NOT NULL,\n"
    "  UNIQUE (visitor_id, temp_id)\n"
    "){{strict}};\n"
    /* A conversation's messages in order, paginated by id (?before=). Deliberately no index
     * on messages.project_id or messages.user_id: every index slows the hot insert, and
     * deleting a whole project or user (rare, administrative) may scan. */
    "CREATE INDEX messages_by_conversation ON messages (conversation_id, id);\n"
    /* Rotating refresh tokens (section 9, /auth/refresh): a family is one login; reusing a
     * used token revokes its family. Only a hash of the token is stored. */
    "CREATE TABLE refresh_tokens (\n"
    "  id {{id}},\n"
    "  user_id {{bigint}} NOT NULL REFERENCES users (id) ON DELETE CASCADE,\n"
    "  family_id TEXT NOT NULL,\n"
    "  token_hash TEXT NOT NULL UNIQUE,\n"
    "  expires_at {{bigint}} NOT NULL,\n"
    "  used_at {{bigint}},\n"
    "  revoked_at {{bigint}},\n"
    "  created_at {{bigint}} NOT NULL\n"
    "){{strict}};\n"
    "CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_id);\n"
    "CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);\n";

static const char g_v2_sql[] =
    /* Refresh-token families are numbered by the row id of their first token (an integer, not
     * text). No binary before this migration wrote refresh tokens (the accounts API arrives
     * with it), so the table is rebuilt empty rather than converted. No foreign key on
     * family_id: the first token may be deleted (expired) while its family lives on. */
    "DROP TABLE refresh_tokens;\n"
    "CREATE TABLE refresh_tokens (\n"
    "  id {{id}},\n"
    "  user_id {{bigint}} NOT NULL REFERENCES users (id) ON DELETE CASCADE,\n"
    "  family_id {{bigint}} NOT NULL, -- id of the family's first token\n"
    "  token_hash TEXT NOT NULL UNIQUE CHECK (token_hash <> ''),\n"
    "  expires_at {{bigint}} NOT NULL,\n"
    "  used_at {{bigint}},\n"
    "  revoked_at {{bigint}},\n"
    "  created_at {{bigint}} NOT NULL\n"
    "){{strict}};\n"
    /* logout-all and the pruning of expired tokens */
    "CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_id, expires_at);\n"
    /* revoking a family on reuse */
    "CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);\n"
    /* The inbox across several statuses (the default: all but spam) walks the project's
     * conversations newest first and filters by status: with status in the index that filter
     * costs no row lookup, so a deep page is a walk over index entries only. (One status uses
     * conversations_inbox.) */
    "DROP INDEX conversations_newest;\n"
    "CREATE INDEX conversations_newest\n"
    "  ON conversations (project_id, last_message_timestamp, id, status);\n";

static const char g_v3_sql[] =
    /* The transactional outbox (DESIGN.md "Guarantees"): events to publish to other nodes,
     * written by the same transaction as the change they announce (store_message_ingest's
     * events) and deleted by the publisher once sent (store_outbox_delete), so a crash between
     * the commit and the publication delays an event but never loses it. Read oldest first by
     * the primary key. */
    "CREATE TABLE outbox (\n"
    "  id {{id}},\n"
    "  topic TEXT NOT NULL CHECK (topic <> ''),\n"
    "  payload TEXT NOT NULL,\n"
    "  created_at {{bigint}} NOT NULL -- ms since the epoch\n"
    "){{strict}};\n";

static const store_migration_t g_migrations[] = {
    {1, "data model: projects, users, visitors, conversations, messages, tokens", g_v1_sql},
    {2, "integer refresh-token families; inbox index covering status", g_v2_sql},
    {3, "transactional outbox", g_v3_sql},
};

const store_migration_t *store_migrations(size_t *n) {
    *n = sizeof g_migrations / sizeof g_migrations[0];
    return g_migrations;
}

int store_migrations_latest(void) {
    size_t n;
    const store_migration_t *list = store_migrations(&n);
    return list[n - 1].version;
}

/* ---- rendering ------------------------------------------------------------------------------- */

static const placeholder_t *placeholder_find(const char *name, size_t len) {
    for (size_t i = 0; i < sizeof g_placeholders / sizeof g_placeholders[0]; i++)
        if (strlen(g_placeholders[i].name) == len && memcmp(g_placeholders[i].name, name, len) == 0)
            return &g_placeholders[i];
    return NULL;
}

char *store_migration_render(const char *sql, store_dialect_t dialect, char *err, size_t errlen) {
    assert(dialect >= 0 && dialect < STORE_DIALECT_COUNT);
    pl_buf_t out;
    pl_buf_init(&out, 0);
    const char *p = sql;
    for (;;) {
        const char *open = strstr(p, "{{");
        size_t lit = open ? (size_t)(open - p) : strlen(p);
        if (pl_buf_append(&out, p, lit) != 0)
            goto out_nomem;
        if (!open)
            break;
        const char *name = open + 2;
        const char *close = strstr(name, "}}");
        if (!close) {
            store__errf(err, errlen, "unterminated placeholder at offset %zu",
                        (size_t)(open - sql));
            goto out_dispose;
        }
        const placeholder_t *ph = placeholder_find(name, (size_t)(close - name));
        if (!ph) {
            store__errf(err, errlen, "unknown placeholder {{%.*s}}", (int)(close - name), name);
            goto out_dispose;
        }
        if (pl_buf_append_cstr(&out, ph->text[dialect]) != 0)
            goto out_nomem;
        p = close + 2;
    }
    if (pl_buf_append(&out, "", 1) != 0) /* the NUL */
        goto out_nomem;
    return pl_buf_steal(&out, NULL);

out_nomem:
    store__errf(err, errlen, "out of memory rendering a migration");
out_dispose:
    pl_buf_dispose(&out);
    return NULL;
}

/* ---- the driver ------------------------------------------------------------------------------ */

/* Renders and executes one script in the current transaction. */
static int run_script(store_conn_t *c, const char *sql, char *err, size_t errlen) {
    char *text = store_migration_render(sql, c->ops->dialect, err, errlen);
    if (!text)
        return PL_EINVAL;
    int rc = c->ops->exec_script(c, text, err, errlen);
    free(text);
    return rc;
}

/* Starts a write transaction and, where the backend needs one, takes the lock that keeps the
 * migrations of several processes apart until the transaction ends. */
static int begin_locked(store_conn_t *c) {
    int rc = c->ops->begin(c, true);
    if (rc == 0 && c->ops->migration_lock) {
        rc = c->ops->migration_lock(c);
        if (rc != 0)
            c->ops->rollback(c);
    }
    return rc;
}

int store_migrations_run(store_conn_t *c, const store_migration_t *list, size_t n, int *applied,
                         char *err, size_t errlen) {
    const store_ops_t *ops = c->ops;
    for (size_t i = 0; i < n; i++) {
        if (list[i].version != (int)i + 1) { /* ours: the list is ordered, without gaps */
            assert(!"migration list out of order");
            store__errf(err, errlen, "migration list out of order at entry %zu", i);
            *applied = 0;
            return PL_EINVAL;
        }
    }
    int latest = n ? list[n - 1].version : 0;
    *applied = 0;

    int rc = begin_locked(c);
    if (rc != 0) {
        store__errf(err, errlen, "cannot start a transaction: %s", ops->errmsg(c));
        return rc;
    }
    char msg[256];
    rc = run_script(c, g_bootstrap_sql, msg, sizeof msg);
    if (rc == 0)
        rc = ops->commit(c);
    if (rc != 0) {
        ops->rollback(c);
        store__errf(err, errlen, "cannot create schema_migrations: %s",
                    rc == PL_EINVAL ? msg : ops->errmsg(c));
        return rc;
    }

    for (;;) {
        int version = 0;
        rc = begin_locked(c);
        if (rc != 0) {
            store__errf(err, errlen, "cannot start a transaction: %s", ops->errmsg(c));
            return rc;
        }
        rc = ops->schema_version(c, &version);
        if (rc != 0) {
            store__errf(err, errlen, "cannot read schema_migrations: %s", ops->errmsg(c));
            goto out_rollback;
        }
        if (version > latest) {
            store__errf(err, errlen,
                        "the database schema is at version %d, newer than this binary knows "
                        "(up to %d): run a newer parley against it",
                        version, latest);
            rc = PL_EINVAL;
            goto out_rollback;
        }
        if (version == latest) { /* up to date: nothing was written */
            ops->rollback(c);
            return 0;
        }
        const store_migration_t *m = &list[version]; /* version + 1, the next one */
        rc = run_script(c, m->sql, msg, sizeof msg);
        if (rc == 0) {
            rc = ops->schema_stamp(c, m->version, pl_wall_ms());
            if (rc != 0)
                snprintf(msg, sizeof msg, "cannot record the version: %s", ops->errmsg(c));
        }
        if (rc != 0) {
            store__errf(err, errlen, "migration %d (%s) failed: %s", m->version, m->name, msg);
            goto out_rollback;
        }
        rc = ops->commit(c);
        if (rc != 0) {
            store__errf(err, errlen, "migration %d (%s): commit failed: %s", m->version, m->name,
                        ops->errmsg(c));
            goto out_rollback;
        }
        ++*applied;
        pl_log_info("store_migration_applied", "backend=%s version=%d", ops->name, m->version);
    }

out_rollback:
    ops->rollback(c);
    return rc;
}
