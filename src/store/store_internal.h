/* Inside the store layer: the backend interface (store_ops_t) that store.c drives and each
 * backend implements (store_sqlite.c, store_pg.c). Not for other layers: they use store.h
 * only.
 *
 * A backend is a table of SYNCHRONOUS functions. Each runs on the one thread that currently
 * owns the connection it is given (a store thread, or the caller of store_migrate / store_open
 * before the threads start) and blocks until the database answered. A connection is used by
 * one thread at a time, never concurrently.
 *
 * Operations return 0 or a status of store.h (STORE_ENOTFOUND, STORE_ECONFLICT, PL_EINVAL,
 * PL_ENOMEM, PL_ETOOBIG, PL_EUNAVAIL). A result they produce (*out) is allocated with malloc
 * and owned by the caller, also when the transaction around it fails afterwards; on a non-zero
 * return *out is left NULL. Write operations run inside a transaction and a savepoint opened by
 * store.c and must not begin or end transactions themselves; read operations run inside a read
 * transaction (one snapshot per batch of reads).
 *
 * Adding an operation: one entry here, its function in each backend, and in store.c an exec
 * thunk plus the public wrapper (and a result kind if it returns a new type). */
#ifndef STORE_STORE_INTERNAL_H
#define STORE_STORE_INTERNAL_H

#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How the schema text of migrations.c is written for a backend (placeholder table). */
typedef enum {
    STORE_DIALECT_SQLITE = 0,
    STORE_DIALECT_POSTGRES,
    STORE_DIALECT_COUNT
} store_dialect_t;

/* What a connection is for. */
typedef enum {
    STORE_CONN_WRITE, /* the one connection that writes (and runs migrations) */
    STORE_CONN_READ   /* a read-only connection for the read thread */
} store_conn_role_t;

typedef struct store_ops store_ops_t;

/* A backend connection. Backends embed this as the first member of their own struct. */
typedef struct store_conn {
    const store_ops_t *ops; /* the backend that opened it */
} store_conn_t;

struct store_ops {
    const char *name;        /* "sqlite" or "postgres", for logs */
    store_dialect_t dialect; /* how migrations are rendered for it */

    /* ---- connections ---- */
    /* Opens a connection to target (what store__backend_for_url gives: SQLite's file path, or
     * the whole postgres:// URL). For SQLite with STORE_CONN_WRITE the database file is created
     * if missing (a PostgreSQL database must exist). NULL with a message on failure; the
     * message never contains a password of the URL. */
    store_conn_t *(*conn_open)(const char *target, const store_options_t *opts,
                               store_conn_role_t role, char *err, size_t errlen);
    /* Closes a connection and frees it. NULL is fine. */
    void (*conn_close)(store_conn_t *c);
    /* The last error text of this connection, for messages. Never NULL. */
    const char *(*errmsg)(store_conn_t *c);

    /* ---- transactions ---- */
    /* Starts a transaction: write = take the write lock now (BEGIN IMMEDIATE), otherwise a
     * read snapshot. */
    int (*begin)(store_conn_t *c, bool write);
    /* Optional (SQLite's WAL): after a commit on the write connection, whether the log has
     * grown enough to be checkpointed; the read thread then runs checkpoint on its own
     * connection, so that the copy back and its fsync never hold up the writer. */
    bool (*checkpoint_due)(store_conn_t *writer);
    void (*checkpoint)(store_conn_t *reader);
    int (*commit)(store_conn_t *c);
    /* Ends the transaction without its effects. Harmless when none is open. */
    void (*rollback)(store_conn_t *c);
    /* Savepoints around each request of a group commit: savepoint() opens one; release()
     * keeps the request's effects; rollback_to() undoes them and closes the savepoint. A
     * non-zero return from release/rollback_to means the whole transaction is lost. */
    int (*savepoint)(store_conn_t *c);
    int (*release)(store_conn_t *c);
    int (*rollback_to)(store_conn_t *c);

    /* ---- migrations (migrations.c drives them) ---- */
    /* Executes a script of one or more statements (no parameters). A message in err on error. */
    int (*exec_script)(store_conn_t *c, const char *sql, char *err, size_t errlen);
    /* The highest version in schema_migrations (0 when empty). */
    int (*schema_version)(store_conn_t *c, int *version);
    /* Optional (NULL when begin(c, true) already excludes other writers, as SQLite's BEGIN
     * IMMEDIATE does). Called by migrations.c right after each begin(c, true): takes a lock,
     * held until the transaction ends, that keeps the migrations of several processes apart
     * (two nodes starting together against one database). */
    int (*migration_lock)(store_conn_t *c);
    /* Records that version was applied at at_ms. */
    int (*schema_stamp)(store_conn_t *c, int version, int64_t at_ms);

    /* ---- operations: see the wrappers in store.h for what each does ---- */
    int (*ping)(store_conn_t *c);
    int (*project_create)(store_conn_t *c, const char *name, const char *const *domains,
                          size_t ndomains, store_project_t **out);
    int (*project_get)(store_conn_t *c, int64_t id, store_project_t **out);
    int (*project_list)(store_conn_t *c, store_project_t **out, size_t *n);
    int (*project_domains_update)(store_conn_t *c, int64_t id, const char *const *add, size_t nadd,
                                  const char *const *remove, size_t nremove, store_project_t **out);
    int (*project_count)(store_conn_t *c, int64_t *count);
    /* Widget connection flow. history and visitor_conversation set *conversation_id to 0 and
     * return 0 when there is nothing; *out and *n stay NULL and 0 then. */
    int (*visitor_identify)(store_conn_t *c, int64_t project_id, const char *uid, int64_t now_ms,
                            store_visitor_t **out);
    int (*history)(store_conn_t *c, int64_t project_id, const char *uid, bool forever, size_t limit,
                   int64_t *conversation_id, store_message_t **out, size_t *n);
    int (*message_ingest)(store_conn_t *c, const store_ingest_t *in, store_ingest_result_t **out);
    /* Optional (NULL: store.c runs message_ingest in a savepoint per request). Ingests
     * in[0..n) (n >= 1) inside the current write transaction with the effect of n consecutive
     * requests each in its own savepoint: status[i] and out[i] get what message_ingest would
     * have given for in[i] (out[i] NULL when status[i] != 0), and a request that fails leaves
     * no trace. A backend with a network round trip per statement implements it to send the
     * whole run at once (PostgreSQL's pipeline mode). Returns 0, or non-zero when the
     * transaction is lost (store.c then fails the whole batch). */
    int (*message_ingest_batch)(store_conn_t *c, const store_ingest_t *in, size_t n, int *status,
                                store_ingest_result_t **out);
    int (*visitor_context)(store_conn_t *c, int64_t project_id, const char *uid, const char *url,
                           int64_t now_ms, int64_t *conversation_id);
    int (*visitor_conversation)(store_conn_t *c, int64_t project_id, const char *uid, bool forever,
                                int64_t *conversation_id);
    int (*conversation_get)(store_conn_t *c, int64_t project_id, int64_t id,
                            store_conversation_t **out);
    /* Users and members. */
    int (*user_create)(store_conn_t *c, const char *email, const char *password_hash,
                       const char *full_name, int64_t now_ms, store_user_t **out);
    int (*user_get)(store_conn_t *c, int64_t id, store_user_t **out);
    int (*user_by_email)(store_conn_t *c, const char *email, store_user_t **out);
    int (*user_revoke_tokens)(store_conn_t *c, int64_t user_id, int64_t now_ms);
    int (*member_add)(store_conn_t *c, int64_t project_id, int64_t user_id, const char *role);
    /* *role is a malloc'd copy. */
    int (*member_role)(store_conn_t *c, int64_t project_id, int64_t user_id, char **role);
    /* Refresh tokens. rotate fills *out (a plain struct) and returns 0 for each outcome. */
    int (*refresh_create)(store_conn_t *c, int64_t user_id, int64_t family_id,
                          const char *token_hash, int64_t expires_at_ms, int64_t now_ms,
                          int64_t *family_out);
    int (*refresh_rotate)(store_conn_t *c, const char *old_hash, const char *new_hash,
                          int64_t new_expires_ms, int64_t now_ms, store_refresh_t *out);
    int (*refresh_revoke)(store_conn_t *c, const char *token_hash, int64_t now_ms);
    int (*user_logout_all)(store_conn_t *c, int64_t user_id, int64_t now_ms);
    /* Projects of agents. project_update replaces the domains only when replace_domains. */
    int (*project_create_owned)(store_conn_t *c, const char *name, const char *const *domains,
                                size_t ndomains, int64_t owner_user_id, store_project_t **out);
    int (*projects_of_user)(store_conn_t *c, int64_t user_id, store_project_t **out, size_t *n);
    int (*project_of_member)(store_conn_t *c, int64_t project_id, int64_t user_id,
                             store_project_t **out);
    int (*project_update)(store_conn_t *c, int64_t project_id, const char *name,
                          bool replace_domains, const char *const *domains, size_t ndomains,
                          store_project_t **out);
    int (*project_widget_settings)(store_conn_t *c, int64_t project_id, const char *json_text,
                                   store_project_t **out);
    /* *out: an array of n members (store__member_list_free). */
    int (*members_list)(store_conn_t *c, int64_t project_id, store_member_t **out, size_t *n);
    /* The inbox. Conversation arrays are freed with store__conversation_list_free; message
     * lists and the reply's message are one block each (store__msglist_finish). */
    int (*conversations_list)(store_conn_t *c, int64_t project_id, unsigned status_mask,
                              int64_t offset, size_t limit, store_conversation_t **out, size_t *n,
                              int64_t *total);
    int (*messages_list)(store_conn_t *c, int64_t project_id, int64_t conversation_id,
                         int64_t before_id, size_t limit, store_message_t **out, size_t *n,
                         bool *has_more);
    int (*agent_reply)(store_conn_t *c, int64_t project_id, int64_t conversation_id,
                       int64_t user_id, const char *text, int64_t now_ms, store_message_t **msg,
                       store_conversation_t **conv);
    int (*conversation_update)(store_conn_t *c, int64_t project_id, int64_t id, const char *status,
                               bool mark_read, int64_t now_ms, store_conversation_t **out);
    int (*conversation_assign)(store_conn_t *c, int64_t project_id, int64_t id,
                               int64_t assignee_user_id, int64_t now_ms,
                               store_conversation_t **out);
    int (*conversation_delete)(store_conn_t *c, int64_t project_id, int64_t id,
                               store_conversation_t **out);
    int (*visitor_get)(store_conn_t *c, int64_t project_id, int64_t visitor_id,
                       store_visitor_t **out);
    /* The transactional outbox. fetch: the oldest `limit` events as ONE block (the array, then
     * the strings it points to: store__outbox_list_finish); delete: *deleted gets how many of
     * ids[0..n) existed. */
    int (*outbox_fetch)(store_conn_t *c, size_t limit, store_outbox_event_t **out, size_t *n);
    int (*outbox_delete)(store_conn_t *c, const int64_t *ids, size_t n, int64_t *deleted);
};

/* The SQLite backend (store_sqlite.c). */
extern const store_ops_t store_sqlite_ops;
/* The PostgreSQL backend (store_pg.c). */
extern const store_ops_t store_pg_ops;

/* Picks the backend that url names and the target its conn_open takes: `sqlite:PATH` gives
 * store_sqlite_ops and PATH; `postgres://...` and `postgresql://...` give store_pg_ops and the
 * whole URL. NULL with a message (which never repeats the rest of the URL: it may hold a
 * password) when the URL names no backend of this binary. */
const store_ops_t *store__backend_for_url(const char *url, const char **target, char *err,
                                          size_t errlen);

/* Free the members of a result struct (not the struct itself) and zero it. */
void store__project_dispose(store_project_t *p);
void store__visitor_dispose(store_visitor_t *v);
void store__message_dispose(store_message_t *m);
void store__conversation_dispose(store_conversation_t *c);
void store__user_dispose(store_user_t *u);
void store__member_dispose(store_member_t *m);
/* Dispose each of v[0..n), then free v. NULL is fine. */
void store__conversation_list_free(store_conversation_t *v, size_t n);
void store__member_list_free(store_member_t *v, size_t n);
/* A list of messages (a history page) as ONE allocation: the array of n structs followed by
 * the bytes of their strings, which point into it; one free(v) releases it on the loop thread
 * (instead of eight frees per message). Built row by row on a store thread:
 *   store__msglist_t l; store__msglist_init(&l);
 *   store__msglist_add(&l, &m) for each message, m's strings borrowed for the call only;
 *   store__msglist_finish(&l, &v, &n), or store__msglist_dispose(&l) on an error. */
#define STORE__MSG_STRS 7 /* string fields of store_message_t */
typedef struct {
    store_message_t *v;             /* the scalars of each message; string fields unset */
    size_t (*off)[STORE__MSG_STRS]; /* each string's offset in bytes, SIZE_MAX for NULL */
    size_t n, cap;                  /* messages added, room in v and off */
    pl_buf_t bytes;                 /* the strings, each NUL-terminated */
} store__msglist_t;

void store__msglist_init(store__msglist_t *l);
/* 0 or PL_ENOMEM. */
int store__msglist_add(store__msglist_t *l, const store_message_t *m);
/* Hands the block to *v (NULL when the list is empty) with its length in *n; l is left
 * empty. 0 or PL_ENOMEM (l is disposed then). */
int store__msglist_finish(store__msglist_t *l, store_message_t **v, size_t *n);
void store__msglist_dispose(store__msglist_t *l);

/* An ingest result (the hot path's) is ONE allocation: the struct followed by the bytes of its
 * message's strings, which point into it; one free() releases it on the loop thread. pack
 * copies t, whose string pointers are borrowed (inputs, column text), into such a block (its
 * scalars and the outbox ids, which live inside the struct, as they are); NULL when out of
 * memory. Backends set outbox_ids / noutbox to the rows their message_ingest wrote. */
store_ingest_result_t *store__ingest_result_pack(const store_ingest_result_t *t);
/* Frees a packed ingest result. NULL is fine. */
void store__ingest_result_free(store_ingest_result_t *r);

/* A list of outbox events as ONE allocation, built like a message list (the strings of an
 * event are borrowed for the add call only). */
typedef struct {
    store_outbox_event_t *v; /* the scalars; string fields unset until finish */
    size_t (*off)[2];        /* offsets of topic and payload in bytes */
    size_t n, cap;
    pl_buf_t bytes;
} store__outbox_list_t;

void store__outbox_list_init(store__outbox_list_t *l);
/* 0 or PL_ENOMEM. */
int store__outbox_list_add(store__outbox_list_t *l, const store_outbox_event_t *e);
/* Hands the block to *v (NULL when empty), its length to *n; l is left empty. 0 or PL_ENOMEM
 * (l is disposed then). */
int store__outbox_list_finish(store__outbox_list_t *l, store_outbox_event_t **v, size_t *n);
void store__outbox_list_dispose(store__outbox_list_t *l);

/* Bytes of the first max_chars code points of the UTF-8 text s[0..len): never cuts inside a
 * character (a code point starts at every byte that is not a continuation byte). */
size_t store__utf8_prefix(const char *s, size_t len, size_t max_chars);

/* Formats a message into err (errlen bytes, always NUL-terminated when errlen > 0). */
void store__errf(char *err, size_t errlen, const char *fmt, ...) PL_PRINTF(3, 4);

#endif
