/* The store port: Parley's persistent data (projects, users, visitors, conversations, messages,
 * refresh tokens, the outbox of events to publish; PROTOCOL.md sections 3, 8 and 9) behind an
 * asynchronous API for the libuv loop thread (DESIGN.md "Ports and backends", "Threads and
 * processes").
 *
 * A store_t is opened from a URL that names its backend: `sqlite:PATH` (the embedded default,
 * store_sqlite.c) or `postgres://...` / `postgresql://...` (libpq's URL syntax, store_pg.c; the
 * database must exist, its schema is created). Pending schema migrations (migrations.h) are
 * applied by store_open before anything is served. Both backends give the same results and
 * statuses for every operation below.
 *
 * Outages (PostgreSQL). When the server goes away, requests fail with PL_EUNAVAIL at once
 * instead of blocking (a request whose transaction did not commit is never reported as done);
 * each store thread reconnects on its next request, at most every 100 ms at first and backing
 * off exponentially to one attempt every 5 s while the server stays away, and the store works
 * again as soon as the server is back, without being reopened. Connection attempts time out
 * after 5 s, statements after 60 s, and dead peers are found by TCP keepalives, so no store
 * thread ever waits forever.
 *
 * Threads. Every function here is called on the loop thread given to store_open (the "loop
 * thread"), and every callback fires on it. The database work itself runs on two store
 * threads, each with its own connection: the write thread executes write requests with group
 * commit (everything queued while one transaction committed goes into the next single
 * transaction, each request inside its own savepoint, so a failing request rolls back alone and
 * gets its own error), and the read thread executes read requests on a separate connection so
 * a long read never delays a write. Results come back through one uv_async_t and are delivered
 * in batches (at most STORE_DELIVER_BATCH per loop wakeup). Requests submitted during one loop
 * turn are handed to the store threads together in the loop's next idle phase, before it polls
 * for I/O (a uv_idle_t, active only while requests wait), so a burst of requests costs one
 * thread wake-up and lands in one transaction. The store's handles keep the loop alive only
 * while requests are in flight (and while it closes): an idle store never keeps
 * uv_run(UV_RUN_DEFAULT) from returning.
 *
 * Ordering. Write requests execute in submission order. Reads run on their own connection and
 * see every write whose callback has fired before the read was submitted; a read submitted
 * while a write is still pending may or may not see it. A write's callback fires only after
 * its transaction committed (the durability point of DESIGN.md "Guarantees").
 *
 * Asynchronous calls. Each operation takes a callback and a user pointer ud and returns int:
 *   0            the request is queued; its callback fires exactly once, later (never inside
 *                the call), on the loop thread;
 *   PL_EUNAVAIL  refused at once: STORE_MAX_QUEUE (or opts.max_queue) requests are already in
 *                flight, or the store is closing (push back: the queue never grows unbounded);
 *   PL_ETOOBIG   an argument is over STORE_MAX_ARG_BYTES / STORE_MAX_LIST;
 *   PL_ENOMEM    copying the arguments failed.
 * When the call returns non-zero the callback never fires. cb may be NULL when the caller does
 * not want the outcome. Arguments are copied: the caller's strings and arrays are borrowed for
 * the duration of the call only.
 *
 * Callback status values: 0; STORE_ENOTFOUND (the row asked for, or a row it refers to, does
 * not exist); STORE_ECONFLICT (a uniqueness rule refused the write: e.g. an e-mail address
 * already registered); PL_EINVAL (a value the schema refuses, e.g. an empty domain);
 * PL_ENOMEM; PL_EUNAVAIL (the database failed: I/O error, disk full, locked past the busy
 * timeout; the request had no effect). Results passed to a callback are BORROWED: valid until
 * the callback returns, then freed by the store; a callback that wants to keep one copies it
 * (store_project_dup, store_visitor_dup, store_message_dup, store_conversation_dup,
 * store_user_dup, store_member_dup; each copy is freed with the matching _free). On a non-zero
 * status result pointers are NULL and counts 0.
 *
 * Use without an event loop (the CLI): give store_open a private uv_loop_t, submit requests and
 * call store_wait(s), which runs that loop until every request of the store has called back.
 * To finish: store_close(s, NULL, NULL); uv_run(loop, UV_RUN_DEFAULT); uv_loop_close(loop).
 *
 * Times (created_at, ...) are milliseconds since the epoch. Operations with a now_ms argument
 * write that time (the loop thread's wall clock: the gateway knows a message's createdAt before
 * the commit, and tests control time); the others take the wall clock on the store thread when
 * the write executes.
 *
 * Errors of store_open / store_migrate are reported as a NUL-terminated message in err (errlen
 * bytes, truncated to fit), suitable for printing to an operator. */
#ifndef STORE_STORE_H
#define STORE_STORE_H

#include "core/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Status codes of the store, next to core's PL_E* codes (buf.h). */
enum {
    STORE_ENOTFOUND = -20101, /* no such row (or a row the request refers to is missing) */
    STORE_ECONFLICT = -20102  /* a unique key refused the write */
};

/* Requests in flight at once by default (queued, executing or waiting for delivery). */
#define STORE_MAX_QUEUE 65536u
/* Maximum number of strings in one list argument (domains to add, ...). */
#define STORE_MAX_LIST 4096u
/* Maximum total bytes of the string arguments of one request. */
#define STORE_MAX_ARG_BYTES (1024u * 1024u)
/* Completions delivered per loop wakeup; the rest wait for the next turn. */
#define STORE_DELIVER_BATCH 1024u
/* Reads executed in one snapshot before their results are posted (writes: all queued). */
#define STORE_READ_BATCH 256u
/* Default time a connection waits for a lock another process holds, milliseconds. */
#define STORE_DEFAULT_BUSY_TIMEOUT_MS 5000u
/* A conversation's last_message_snippet: the first this many Unicode code points of the
 * message (not bytes: a multi-byte character is never cut). */
#define STORE_SNIPPET_CHARS 100u
/* Entries kept in a conversation's url_history (the newest). */
#define STORE_URL_HISTORY_MAX 50u
/* Largest `limit` of store_history. */
#define STORE_HISTORY_MAX 1000u
/* Largest `limit` of store_conversations_list and store_messages_list. */
#define STORE_PAGE_MAX 1000u
/* Refresh tokens that expired longer ago than this are deleted when the same user gets a new
 * one (store_refresh_create): the table stays bounded. Until then a used token presented again
 * is still recognised as reused. 30 days, in ms. */
#define STORE_REFRESH_KEEP_MS (30LL * 24 * 3600 * 1000)

/* Names a status code (ours, core's or libuv's). Never NULL. */
const char *store_strerror(int err);

typedef struct store store_t;

typedef struct {
    /* "normal" (default when NULL) or "full": SQLite's PRAGMA synchronous for the write
     * connection. In WAL mode "normal" survives a crash of the process (kill -9) but may lose
     * the last transactions on power loss; "full" syncs every commit. Borrowed during
     * store_open only. Checked but unused with PostgreSQL, whose durability is the server's
     * configuration (synchronous_commit on, its default, is what the guarantees assume). */
    const char *synchronous;
    /* Requests in flight at once; 0 = STORE_MAX_QUEUE. */
    uint32_t max_queue;
    /* Lock wait when another process holds the database (or, with PostgreSQL, a row or table
     * this request needs: its lock_timeout), ms; 0 = the default above. */
    uint32_t busy_timeout_ms;
} store_options_t;

/* Counters of a store since it was opened; a snapshot taken on the loop thread. */
typedef struct {
    uint64_t requests;      /* requests executed by the store threads (reads + writes) */
    uint64_t reads;         /* of which read requests */
    uint64_t writes;        /* of which write requests */
    uint64_t transactions;  /* write transactions committed (group commits) */
    uint64_t failed;        /* requests delivered with a non-zero status */
    uint64_t rejected;      /* calls refused at once (queue full or closing) */
    uint64_t largest_batch; /* most write requests committed in one transaction */
    uint32_t in_flight;     /* requests queued, executing or awaiting delivery now */
} store_stats_t;

/* Opens the database named by url, creating it if needed (for sqlite:PATH the missing parent
 * directories are created with mode 0700 and a new database file with mode 0600; an existing
 * file keeps its mode; a PostgreSQL database must exist), applies pending migrations
 * synchronously (this blocks: call at start-up, before serving), and starts the store threads
 * (each with its own connection: two per store). opts may be NULL (defaults). Returns NULL with
 * a message in err on failure: bad URL, file or directory not creatable, PostgreSQL not
 * reachable (the message never shows the URL's password), database newer than this
 * binary, ... */
store_t *store_open(uv_loop_t *loop, const char *url, const store_options_t *opts, char *err,
                    size_t errlen);

typedef void (*store_close_cb)(store_t *s, void *ud);

/* Stops accepting requests (later calls return PL_EUNAVAIL), lets every request already
 * accepted execute and call back, stops the store threads, closes the connections and the
 * loop handles. cb (may be NULL) fires on the loop thread after the last request's callback;
 * inside cb, s may still be read (store_stats); the store frees s when cb returns. Call once. */
void store_close(store_t *s, store_close_cb cb, void *ud);

/* Runs the store's loop (uv_run, UV_RUN_ONCE at a time) until no request of s is in flight:
 * each has called back. For callers without a running loop (CLI, tests); never call it from
 * inside a callback of that loop (uv_run is not re-entrant). */
void store_wait(store_t *s);

/* Fills st with the store's counters. */
void store_stats(const store_t *s, store_stats_t *st);

/* Synchronous, without threads or a loop, for `parley migrate`: opens url as store_open does,
 * applies the pending migrations, closes. *applied gets how many were applied (0 when the
 * schema was current). Returns 0; PL_EINVAL (bad URL or options, database newer than this
 * binary) or PL_EUNAVAIL (cannot create or open it, a migration failed), with a message in
 * err. */
PL_NODISCARD int store_migrate(const char *url, const store_options_t *opts, int *applied,
                               char *err, size_t errlen);

/* ---- results --------------------------------------------------------------------------------- */

/* A project with its whitelisted domains (PROTOCOL.md sections 2 and 9). Every pointer is owned
 * by the struct (see the borrowing rule above for results handed to callbacks). */
typedef struct {
    int64_t id;
    char *name;
    char **domains; /* ndomains strings, in the order they were added */
    size_t ndomains;
    char *widget_settings_json; /* the stored JSON object text, "{}" when never set */
    bool identity_verification; /* PROTOCOL.md section 7: identify needs a userHash */
    char *identity_secret;      /* section 7's HMAC key, or NULL; never send it to clients */
    int64_t created_at;         /* ms since the epoch */
    int64_t updated_at;         /* ms since the epoch */
    /* The asking user's role in the project, "manager" or "agent", filled only by the
     * operations that take a user (store_project_create_owned, store_projects_of_user,
     * store_project_of_member); NULL otherwise and when the user is not a member. */
    char *role;
} store_project_t;

/* A deep copy the caller owns (free with store_project_free), or NULL if out of memory. */
store_project_t *store_project_dup(const store_project_t *p);
/* Frees a project from store_project_dup. NULL is fine. */
void store_project_free(store_project_t *p);

/* A widget visitor: one (project, uid) (PROTOCOL.md section 3, identify). */
typedef struct {
    int64_t id;
    int64_t project_id;
    char *uid;            /* the uid the widget keeps, as given to identify */
    char *name;           /* or NULL */
    char *email;          /* or NULL */
    char *current_url;    /* the last URL store_visitor_context recorded, or NULL */
    int64_t last_seen_at; /* ms since the epoch */
    int64_t created_at;   /* ms since the epoch */
} store_visitor_t;

/* A deep copy the caller owns (free it with store_visitor_free), or NULL if out of memory. The
 * _free functions accept NULL, and only copies made by _dup: never a borrowed result. */
store_visitor_t *store_visitor_dup(const store_visitor_t *v);
void store_visitor_free(store_visitor_t *v);

/* A chat message (section 8's Message; WidgetMessage is a subset). */
typedef struct {
    int64_t id;
    int64_t conversation_id;
    int64_t project_id;
    int64_t visitor_id;
    char *visitor_uid;   /* the uid of the conversation's visitor */
    char *content;       /* the text as stored (valid UTF-8 when the caller checked it) */
    char *sender_id;     /* the visitor's uid for visitor messages */
    bool from_customer;  /* true: written by the visitor */
    int64_t user_id;     /* the agent who wrote it, 0 = none */
    char *status;        /* "sending", "sent", "delivered", "read" or "failed" */
    char *content_type;  /* or NULL */
    char *metadata_json; /* JSON text, or NULL */
    char *temp_id;       /* the visitor's idempotency key (section 3), or NULL */
    int64_t created_at;  /* ms since the epoch */
} store_message_t;

/* A deep copy the caller owns (free it with store_message_free), or NULL if out of memory. The
 * _free functions accept NULL, and only copies made by _dup: never a borrowed result. */
store_message_t *store_message_dup(const store_message_t *m);
void store_message_free(store_message_t *m);

/* A conversation (section 8's Conversation) with its visitor. Every conversation handed to a
 * callback carries its visitor (visitor.id == visitor_id): the inbox shows it, and an agent's
 * reply reaches the visitor's sockets through visitor.uid. */
typedef struct {
    int64_t id;
    int64_t project_id;
    int64_t visitor_id;
    int64_t assignee_id;            /* user id, 0 = none */
    char *status;                   /* "open", "pending", "solved" or "spam" */
    char *last_message_snippet;     /* first STORE_SNIPPET_CHARS code points, or NULL */
    int64_t last_message_timestamp; /* ms since the epoch */
    int64_t unread_count;           /* visitor messages not read by an agent */
    char *metadata_json;     /* JSON object text (the first message's sessionMetadata), or NULL */
    char *url_history_json;  /* JSON array of {"url","at"} (newest last), or NULL */
    int64_t created_at;      /* ms since the epoch */
    int64_t updated_at;      /* ms since the epoch */
    store_visitor_t visitor; /* the conversation's visitor, owned by the struct */
} store_conversation_t;

/* A deep copy the caller owns (free it with store_conversation_free), or NULL if out of memory. The
 * _free functions accept NULL, and only copies made by _dup: never a borrowed result. */
store_conversation_t *store_conversation_dup(const store_conversation_t *c);
void store_conversation_free(store_conversation_t *c);

/* An agent account (section 9). */
typedef struct {
    int64_t id;
    char *email;               /* as stored (the caller normalises it) */
    char *full_name;           /* "" when none was given */
    char *password_hash;       /* the encoded hash; never send it to clients */
    int64_t tokens_valid_from; /* ms since the epoch: tokens issued before are revoked */
    int64_t created_at;        /* ms since the epoch */
} store_user_t;

/* A deep copy the caller owns (free it with store_user_free), or NULL if out of memory. The
 * _free functions accept NULL, and only copies made by _dup: never a borrowed result. */
store_user_t *store_user_dup(const store_user_t *u);
void store_user_free(store_user_t *u);

/* A member of a project (GET /projects/:id/members): the user and the role. */
typedef struct {
    int64_t id;      /* the user's id */
    char *email;     /* as stored */
    char *full_name; /* "" when none was given */
    char *role;      /* "manager" or "agent" */
} store_member_t;

/* A deep copy the caller owns (free it with store_member_free), or NULL if out of memory. */
store_member_t *store_member_dup(const store_member_t *m);
void store_member_free(store_member_t *m);

/* What store_refresh_rotate found (status 0 in every case below: the request itself worked). */
enum {
    STORE_TOKEN_OK = 0,  /* rotated: the old token is used now, the new one is stored */
    STORE_TOKEN_REUSED,  /* the old token was used or revoked before: its family is revoked */
    STORE_TOKEN_EXPIRED, /* the old token has expired (nothing changed) */
    STORE_TOKEN_UNKNOWN  /* no such token (nothing changed) */
};

/* The outcome of store_refresh_rotate. user_id and family_id are the old token's (0 when
 * UNKNOWN). */
typedef struct {
    int64_t user_id;
    int64_t family_id;
    int status; /* STORE_TOKEN_* */
} store_refresh_t;

/* Most outbox events one store_message_ingest may record (store_ingest_t.nevents): the ids of
 * the rows it wrote come back inside the result (store_ingest_result_t.outbox_ids). */
#define STORE_INGEST_EVENTS_MAX 4u

/* What store_message_ingest persists: one visitor message (PROTOCOL.md section 3, sendMessage).
 * Every pointer is borrowed for the duration of the call only. */
typedef struct {
    int64_t project_id;
    const char *visitor_uid;           /* required */
    const char *content;               /* required; the caller trimmed and checked it */
    const char *temp_id;               /* required: the idempotency key, per visitor */
    const char *session_metadata_json; /* NULL or the text of a JSON object */
    bool forever;   /* the project's historyVisibility is "forever" (else limit_to_active) */
    int64_t now_ms; /* the message's created_at, ms since the epoch */
    /* The transactional outbox (optional; nevents 0 = none): events to publish once the
     * message is committed, written to the outbox in the same transaction as the message and
     * only when the message is new (a duplicate, or a refused message, records nothing).
     * event_topics[i] (non-empty) and event_payloads[i] (any text) for i < nevents <=
     * STORE_INGEST_EVENTS_MAX; their bytes count towards STORE_MAX_ARG_BYTES. The result
     * gives the id of each row written (store_ingest_result_t.outbox_ids). */
    const char *const *event_topics;
    const char *const *event_payloads;
    size_t nevents;
} store_ingest_t;

/* What store_message_ingest did. Borrowed by the callback (copy message with
 * store_message_dup to keep it). */
typedef struct {
    store_message_t message;    /* the stored message (the original one when duplicate) */
    int64_t conversation_id;    /* = message.conversation_id */
    int64_t visitor_id;         /* = message.visitor_id */
    bool conversation_created;  /* this message opened a new conversation */
    bool conversation_reopened; /* a solved conversation went back to open (forever only) */
    bool duplicate; /* the temp_id was already stored: nothing was written but last_seen_at */
    /* The outbox rows this ingest wrote: outbox_ids[i] is the id (store_outbox_event_t.id) of
     * the row of event_topics[i] / event_payloads[i], for i < noutbox. noutbox is the ingest's
     * nevents for a new message and 0 for a duplicate (which writes no event). The caller that
     * publishes the events itself right after the commit deletes exactly these ids with
     * store_outbox_delete; ids are increasing in event order. */
    int64_t outbox_ids[STORE_INGEST_EVENTS_MAX];
    size_t noutbox;
} store_ingest_result_t;

/* ---- callbacks ------------------------------------------------------------------------------- */

typedef void (*store_done_cb)(void *ud, int status);
typedef void (*store_count_cb)(void *ud, int status, int64_t count);
/* project is borrowed; NULL when status != 0. */
typedef void (*store_project_cb)(void *ud, int status, const store_project_t *project);
/* projects[0..n) is borrowed; NULL and 0 when status != 0. */
typedef void (*store_project_list_cb)(void *ud, int status, const store_project_t *projects,
                                      size_t n);
/* id is 0 when status != 0 (and where an operation says "0 if none"). */
typedef void (*store_id_cb)(void *ud, int status, int64_t id);
/* The result pointer is borrowed, NULL when status != 0. */
typedef void (*store_visitor_cb)(void *ud, int status, const store_visitor_t *visitor);
typedef void (*store_conversation_cb)(void *ud, int status,
                                      const store_conversation_t *conversation);
typedef void (*store_user_cb)(void *ud, int status, const store_user_t *user);
typedef void (*store_ingest_cb)(void *ud, int status, const store_ingest_result_t *result);
/* role is "manager" or "agent", borrowed; NULL when status != 0. */
typedef void (*store_role_cb)(void *ud, int status, const char *role);
/* msgs[0..n) is borrowed, oldest first; conversation_id is 0 when there is none. */
typedef void (*store_history_cb)(void *ud, int status, int64_t conversation_id,
                                 const store_message_t *msgs, size_t n);
/* conversations[0..n) is borrowed, each with its visitor; total counts every conversation the
 * filter matches (all pages). NULL, 0, 0 when status != 0. */
typedef void (*store_conversation_list_cb)(void *ud, int status,
                                           const store_conversation_t *conversations, size_t n,
                                           int64_t total);
/* msgs[0..n) is borrowed, oldest first; has_more: older messages exist before msgs[0]. */
typedef void (*store_message_list_cb)(void *ud, int status, const store_message_t *msgs, size_t n,
                                      bool has_more);
/* Both borrowed; NULL when status != 0. conversation carries its visitor. */
typedef void (*store_reply_cb)(void *ud, int status, const store_message_t *message,
                               const store_conversation_t *conversation);
/* members[0..n) is borrowed; NULL and 0 when status != 0. */
typedef void (*store_member_list_cb)(void *ud, int status, const store_member_t *members, size_t n);
/* result is borrowed; NULL when status != 0. */
typedef void (*store_refresh_cb)(void *ud, int status, const store_refresh_t *result);

/* An event of the transactional outbox (store_outbox_fetch). */
typedef struct {
    /* Assigned in insertion order. With several writing processes (PostgreSQL) an event may
     * become visible after one with a higher id: delete exactly the ids you published, never
     * "everything up to" an id. */
    int64_t id;
    char *topic;        /* as given to store_message_ingest */
    char *payload;      /* as given to store_message_ingest */
    int64_t created_at; /* the ingest's now_ms */
} store_outbox_event_t;

/* events[0..n) is borrowed, oldest first; NULL and 0 when status != 0. */
typedef void (*store_outbox_cb)(void *ud, int status, const store_outbox_event_t *events, size_t n);

/* ---- operations (loop thread; see "Asynchronous calls" above for the return value) ----------- */

/* Read. A trivial query on the read connection that proves the database answers (/health).
 * Status 0 or PL_EUNAVAIL. */
PL_NODISCARD int store_ping(store_t *s, store_done_cb cb, void *ud);

/* Write. Creates a project named name (any non-empty text) with widget settings "{}" and the
 * given domains (stored as given: validating and lower-casing them is the caller's job; a
 * domain repeated in the list is stored once). cb gets the new project. Status 0, PL_EINVAL
 * (empty name or domain: nothing is created) or an error above. */
PL_NODISCARD int store_project_create(store_t *s, const char *name, const char *const *domains,
                                      size_t ndomains, store_project_cb cb, void *ud);

/* Read. The project with this id, or STORE_ENOTFOUND. */
PL_NODISCARD int store_project_get(store_t *s, int64_t id, store_project_cb cb, void *ud);

/* Read. Every project in id order (n = 0 when there is none). Two queries, O(projects +
 * domains log domains). */
PL_NODISCARD int store_project_list(store_t *s, store_project_list_cb cb, void *ud);

/* Write. Removes the domains in remove[] (a missing one is skipped), then appends those in
 * add[] that are not there yet (an existing one keeps its place), and sets updated_at. cb gets
 * the updated project; STORE_ENOTFOUND for an unknown project, PL_EINVAL for an empty domain
 * (in both cases nothing changes). */
PL_NODISCARD int store_project_domains_update(store_t *s, int64_t id, const char *const *add,
                                              size_t nadd, const char *const *remove,
                                              size_t nremove, store_project_cb cb, void *ud);

/* Read. The number of projects. */
PL_NODISCARD int store_project_count(store_t *s, store_count_cb cb, void *ud);

/* ---- the widget connection flow (PROTOCOL.md section 3) --------------------------------------
 *
 * "The current conversation" of a visitor, as section 3 defines it for history: with forever
 * false (historyVisibility limit_to_active, the default) the newest conversation in status open
 * or pending; with forever true the newest one not marked spam. Newest = the highest id (the
 * most recently created). Found through the index conversations_by_visitor (visitor_id, id),
 * walking the visitor's conversations from the newest: O(log N) plus the visitor's skipped
 * conversations. A visitor is identified by (project_id, uid); uid is stored as given (the
 * gateway checks its pattern). */

/* Write. Finds or creates the visitor (project_id, uid) and sets its last_seen_at to now_ms
 * (never backwards), in one savepoint. cb gets the visitor. Status STORE_ENOTFOUND when the
 * project does not exist (nothing is created). Call: PL_EINVAL when uid is NULL. */
PL_NODISCARD int store_visitor_identify(store_t *s, int64_t project_id, const char *uid,
                                        int64_t now_ms, store_visitor_cb cb, void *ud);

/* Read. The newest `limit` messages of the visitor's current conversation (see above), oldest
 * first (section 3's conversationHistory). No such visitor, or no current conversation: status
 * 0, conversation_id 0, n 0. Three index lookups plus O(limit) rows, delivered as one block:
 * it runs on every identify. Call: PL_EINVAL when uid is NULL or limit is 0, PL_ETOOBIG when limit
 * is over STORE_HISTORY_MAX. */
PL_NODISCARD int store_history(store_t *s, int64_t project_id, const char *uid, bool forever,
                               size_t limit, store_history_cb cb, void *ud);

/* Write. THE hot path: persists a visitor message in its own savepoint of the group commit
 * (prepared statements only, no schema work; six index-driven statements for a new message on
 * SQLite; on PostgreSQL one set-based statement per run of up to 1024 messages of a batch, sent
 * in one pipeline; the result comes back as one allocation):
 *   1. the visitor is found or created, last_seen_at = now_ms (never backwards);
 *   2. if the visitor already has a message with this temp_id, that message is the result
 *      with duplicate = true and nothing else changes (section 3 "Fix": a retry after a
 *      reconnect stores nothing twice, even when its content differs);
 *   3. the current conversation (see above); under forever a solved one is set back to open
 *      (conversation_reopened); none: a new one, status open, metadata =
 *      session_metadata_json, created_at = updated_at = now_ms (conversation_created);
 *   4. the message: from_customer true, status "sent", sender_id = visitor_uid, temp_id,
 *      created_at = now_ms;
 *   5. the conversation: last_message_snippet = the first STORE_SNIPPET_CHARS code points of
 *      content, last_message_timestamp = updated_at = now_ms, unread_count + 1;
 *   6. the outbox events of in (if any), in their order; their ids go to the result's
 *      outbox_ids.
 * Status STORE_ENOTFOUND (no such project); PL_EINVAL when a new conversation would get
 * session_metadata_json that is not a JSON object (checked only then; nothing is written).
 * Call: PL_EINVAL when in, visitor_uid, content or temp_id is NULL, or nevents > 0 with a NULL
 * array, entry or empty topic; PL_ETOOBIG over STORE_MAX_ARG_BYTES or with nevents over
 * STORE_INGEST_EVENTS_MAX. The result carries the ids of the outbox rows written (noutbox 0 for
 * a duplicate). */
PL_NODISCARD int store_message_ingest(store_t *s, const store_ingest_t *in, store_ingest_cb cb,
                                      void *ud);

/* Write. Records that the visitor is on page url (section 3, updateContext): sets its
 * current_url and last_seen_at = now_ms, and appends {"url": url, "at": ISO-8601 of now_ms}
 * to the url_history of its open or pending conversation (the limit_to_active current
 * conversation: a solved one is not tracked any more), keeping the newest
 * STORE_URL_HISTORY_MAX entries, and sets that conversation's updated_at. cb gets that
 * conversation's id, or 0 when it has none (the visitor's URL is still recorded). Status
 * STORE_ENOTFOUND when the visitor does not exist (identify creates it). Call: PL_EINVAL when
 * uid or url is NULL. */
PL_NODISCARD int store_visitor_context(store_t *s, int64_t project_id, const char *uid,
                                       const char *url, int64_t now_ms, store_id_cb cb, void *ud);

/* Read. The id of the visitor's current conversation (see above), or 0 (status 0) when the
 * visitor or the conversation does not exist. Call: PL_EINVAL when uid is NULL. */
PL_NODISCARD int store_visitor_conversation(store_t *s, int64_t project_id, const char *uid,
                                            bool forever, store_id_cb cb, void *ud);

/* Read. The conversation with this id in this project, with its visitor; STORE_ENOTFOUND when
 * there is none (also when it belongs to another project). */
PL_NODISCARD int store_conversation_get(store_t *s, int64_t project_id, int64_t id,
                                        store_conversation_cb cb, void *ud);

/* ---- users and members (PROTOCOL.md sections 2, 4 and 9) ----------------------------------- */

/* Write. Creates a user with tokens_valid_from 0 and created_at = now_ms. email is stored as
 * given (the caller normalises it); full_name may be NULL (stored as ""). cb gets the user.
 * Status STORE_ECONFLICT when the e-mail address is taken. Call: PL_EINVAL when email or
 * password_hash is NULL. */
PL_NODISCARD int store_user_create(store_t *s, const char *email, const char *password_hash,
                                   const char *full_name, int64_t now_ms, store_user_cb cb,
                                   void *ud);

/* Read. The user with this id, or STORE_ENOTFOUND. */
PL_NODISCARD int store_user_get(store_t *s, int64_t id, store_user_cb cb, void *ud);

/* Read. The user with exactly this (normalised) e-mail address, or STORE_ENOTFOUND. Call:
 * PL_EINVAL when email is NULL. */
PL_NODISCARD int store_user_by_email(store_t *s, const char *email, store_user_cb cb, void *ud);

/* Write. Revokes every access token of the user issued before now_ms: tokens_valid_from =
 * now_ms (never moved backwards). Status STORE_ENOTFOUND when the user does not exist. */
PL_NODISCARD int store_user_revoke_tokens(store_t *s, int64_t user_id, int64_t now_ms,
                                          store_done_cb cb, void *ud);

/* Write. Makes the user a member of the project with role "manager" or "agent", or changes
 * the role of a member (created_at keeps the first time). Status STORE_ENOTFOUND when the
 * project or the user does not exist; PL_EINVAL for another role. Call: PL_EINVAL when role is
 * NULL. */
PL_NODISCARD int store_member_add(store_t *s, int64_t project_id, int64_t user_id, const char *role,
                                  store_done_cb cb, void *ud);

/* Read. The user's role in the project; STORE_ENOTFOUND when the user is not a member (or
 * either does not exist). */
PL_NODISCARD int store_member_role(store_t *s, int64_t project_id, int64_t user_id,
                                   store_role_cb cb, void *ud);

/* ---- accounts: refresh tokens (docs/http-api.md "Accounts") ---------------------------------
 *
 * A refresh token is stored only as token_hash, the hex SHA-256 of the cookie value (computed
 * by the caller; any text but "" is accepted: an empty hash to store is status PL_EINVAL). A
 * family is one login: the first token of a login starts it (family_id = that token's row id)
 * and every rotation adds the next token to it. A token is live until it is used (rotated
 * away), revoked (logout) or expired. */

/* Write. Stores a new live token of the user, expiring at expires_at_ms, created_at = now_ms.
 * family_id 0 starts a new family (its id is the new row's id); otherwise the token joins
 * that family, which must hold a token of this user and none revoked. cb gets the family id.
 * Also deletes this user's tokens that expired more than STORE_REFRESH_KEEP_MS before now_ms.
 * Status STORE_ENOTFOUND when the user does not exist or the family is not a live family of
 * the user; STORE_ECONFLICT when token_hash is already stored. Call: PL_EINVAL when
 * token_hash is NULL. */
PL_NODISCARD int store_refresh_create(store_t *s, int64_t user_id, int64_t family_id,
                                      const char *token_hash, int64_t expires_at_ms, int64_t now_ms,
                                      store_id_cb cb, void *ud);

/* Write. Rotation (GET /auth/refresh), in one savepoint. Finds the token old_hash:
 *   - none: result status STORE_TOKEN_UNKNOWN, nothing changes;
 *   - used or revoked before: every token of its family is revoked (revoked_at = now_ms where
 *     not set yet), STORE_TOKEN_REUSED (reuse detection: someone holds a copy);
 *   - expires_at <= now_ms: STORE_TOKEN_EXPIRED, nothing changes;
 *   - else: the old token gets used_at = now_ms, new_hash is stored in the same family
 *     (expires_at = new_expires_ms), STORE_TOKEN_OK.
 * user_id and family_id of the result are the old token's. The callback status is 0 in all
 * four cases; STORE_ECONFLICT when new_hash is already stored (nothing changes), or an error of
 * the database. Call: PL_EINVAL when a hash is NULL. */
PL_NODISCARD int store_refresh_rotate(store_t *s, const char *old_hash, const char *new_hash,
                                      int64_t new_expires_ms, int64_t now_ms, store_refresh_cb cb,
                                      void *ud);

/* Write. Revokes the token token_hash (logout): revoked_at = now_ms unless already set. An
 * unknown token is not an error (status 0). Call: PL_EINVAL when token_hash is NULL. */
PL_NODISCARD int store_refresh_revoke(store_t *s, const char *token_hash, int64_t now_ms,
                                      store_done_cb cb, void *ud);

/* Write. Logout everywhere: the user's tokens_valid_from = now_ms (never moved backwards: every
 * access token issued before is refused) and every refresh token of the user revoked, in one
 * savepoint. Status STORE_ENOTFOUND when the user does not exist. */
PL_NODISCARD int store_user_logout_all(store_t *s, int64_t user_id, int64_t now_ms,
                                       store_done_cb cb, void *ud);

/* ---- projects of agents (docs/http-api.md "Projects") --------------------------------------- */

/* Write. store_project_create plus the owner as its "manager", in one savepoint; cb gets the
 * project with role "manager". Status STORE_ENOTFOUND when the user does not exist, PL_EINVAL
 * for an empty name or domain (nothing is created either way). Call: PL_EINVAL when name is
 * NULL; PL_ETOOBIG over STORE_MAX_LIST domains or STORE_MAX_ARG_BYTES. */
PL_NODISCARD int store_project_create_owned(store_t *s, const char *name,
                                            const char *const *domains, size_t ndomains,
                                            int64_t owner_user_id, store_project_cb cb, void *ud);

/* Read. The projects the user is a member of, in id order, each with its domains and the
 * user's role (n = 0 when none, also for an unknown user). Two queries, O(projects + domains)
 * of that user. */
PL_NODISCARD int store_projects_of_user(store_t *s, int64_t user_id, store_project_list_cb cb,
                                        void *ud);

/* Read. The project with the user's role in it (the membership check of every project route).
 * STORE_ENOTFOUND when the project does not exist; when it exists but the user is not a member,
 * status 0 and p->role NULL. */
PL_NODISCARD int store_project_of_member(store_t *s, int64_t project_id, int64_t user_id,
                                         store_project_cb cb, void *ud);

/* Write. Renames the project (name NULL keeps it) and/or replaces its whole domain list
 * (domains NULL keeps it; otherwise domains[0..ndomains), ndomains may be 0 to clear the list,
 * stored in this order, a repeated entry once), and sets updated_at. cb gets the project (role
 * NULL). Status STORE_ENOTFOUND for an unknown project, PL_EINVAL for an empty name or domain
 * (nothing changes). Call: PL_ETOOBIG over STORE_MAX_LIST domains or STORE_MAX_ARG_BYTES. */
PL_NODISCARD int store_project_update(store_t *s, int64_t project_id, const char *name,
                                      const char *const *domains, size_t ndomains,
                                      store_project_cb cb, void *ud);

/* Write. Replaces the project's widget settings with json_text (the whole object: merging and
 * validating the fields is the caller's job) and sets updated_at; cb gets the project (role
 * NULL). Status STORE_ENOTFOUND for an unknown project, PL_EINVAL when json_text is not a JSON
 * object (nothing changes). Call: PL_EINVAL when json_text is NULL. */
PL_NODISCARD int store_project_widget_settings(store_t *s, int64_t project_id,
                                               const char *json_text, store_project_cb cb,
                                               void *ud);

/* Read. The members of the project with their roles, in user id order. STORE_ENOTFOUND when
 * the project does not exist. */
PL_NODISCARD int store_members_list(store_t *s, int64_t project_id, store_member_list_cb cb,
                                    void *ud);

/* ---- the inbox (docs/http-api.md "Inbox") ----------------------------------------------------
 *
 * Every operation takes the project of the caller and treats a conversation, message or
 * visitor of another project exactly as one that does not exist (STORE_ENOTFOUND). */

/* Bits of the status_mask of store_conversations_list. */
#define STORE_STATUS_OPEN (1u << 0)
#define STORE_STATUS_PENDING (1u << 1)
#define STORE_STATUS_SOLVED (1u << 2)
#define STORE_STATUS_SPAM (1u << 3)
#define STORE_STATUS_ALL 0xFu

/* Read. One page of the project's conversations whose status is in status_mask (STORE_STATUS_*
 * bits; other bits are ignored, 0 matches nothing), newest activity first: by
 * last_message_timestamp descending, then id descending (a conversation is created by its
 * first message, so one without a later message sorts by its creation time). Skips `offset`
 * conversations and returns at most `limit`, each with its visitor; total is the number of
 * matching conversations. An offset past the end gives n = 0 (status 0). Cost: an index walk
 * of offset + limit entries (one status: the (project, status, time) index; several: the
 * (project, time) index filtered by status) plus limit row lookups, and a count over the
 * matching index entries. STORE_ENOTFOUND is never returned (an unknown project has no
 * conversations). Call: PL_EINVAL when limit is 0 or offset negative, PL_ETOOBIG when limit
 * is over STORE_PAGE_MAX. */
PL_NODISCARD int store_conversations_list(store_t *s, int64_t project_id, unsigned status_mask,
                                          int64_t offset, size_t limit,
                                          store_conversation_list_cb cb, void *ud);

/* Read. Messages of the conversation, cursor-paginated by id: the newest `limit` messages with
 * an id below before_id (before_id 0: the newest of all), returned oldest first; has_more tells
 * whether older ones exist. STORE_ENOTFOUND when the conversation is not in the project. Call:
 * PL_EINVAL when limit is 0 or before_id negative, PL_ETOOBIG over STORE_PAGE_MAX. */
PL_NODISCARD int store_messages_list(store_t *s, int64_t project_id, int64_t conversation_id,
                                     int64_t before_id, size_t limit, store_message_list_cb cb,
                                     void *ud);

/* Write. An agent's reply: stores the message (from_customer false, sender_id the user id in
 * decimal, user_id, status "sent", no temp_id, created_at = now_ms) and sets the
 * conversation's last_message_snippet (first STORE_SNIPPET_CHARS code points), its
 * last_message_timestamp and updated_at to now_ms; unread_count and status do not change. cb
 * gets the message and the updated conversation with its visitor. Status STORE_ENOTFOUND when
 * the conversation is not in the project or the user does not exist. Call: PL_EINVAL when text
 * is NULL. */
PL_NODISCARD int store_agent_reply(store_t *s, int64_t project_id, int64_t conversation_id,
                                   int64_t user_id, const char *text, int64_t now_ms,
                                   store_reply_cb cb, void *ud);

/* Write. Sets the conversation's status (NULL keeps it) and, with mark_read, its unread_count
 * to 0; when either is asked, updated_at = now_ms. cb gets the conversation with its visitor.
 * Status STORE_ENOTFOUND when it is not in the project, PL_EINVAL for a status other than
 * "open", "pending", "solved" or "spam" (nothing changes). */
PL_NODISCARD int store_conversation_update(store_t *s, int64_t project_id, int64_t id,
                                           const char *status, bool mark_read, int64_t now_ms,
                                           store_conversation_cb cb, void *ud);

/* Write. Assigns the conversation to assignee_user_id (0 unassigns) and sets updated_at =
 * now_ms; cb gets the conversation with its visitor. Status STORE_ENOTFOUND when the
 * conversation is not in the project; PL_EINVAL when the assignee is not a member of the
 * project (nothing changes). */
PL_NODISCARD int store_conversation_assign(store_t *s, int64_t project_id, int64_t id,
                                           int64_t assignee_user_id, int64_t now_ms,
                                           store_conversation_cb cb, void *ud);

/* Write. Deletes the conversation and all its messages (the visitor stays). cb gets the
 * conversation as it was, with its visitor, for the events the caller emits. Status
 * STORE_ENOTFOUND when it is not in the project. */
PL_NODISCARD int store_conversation_delete(store_t *s, int64_t project_id, int64_t id,
                                           store_conversation_cb cb, void *ud);

/* Read. The visitor with this id in this project; STORE_ENOTFOUND when there is none (also
 * when it belongs to another project). */
PL_NODISCARD int store_visitor_get(store_t *s, int64_t project_id, int64_t visitor_id,
                                   store_visitor_cb cb, void *ud);

/* ---- the transactional outbox (DESIGN.md "Guarantees") --------------------------------------
 *
 * store_message_ingest records the events its caller passes in the same transaction as the
 * message. A publisher (one per deployment, or several that tolerate duplicates: delivery is at
 * least once) loops: store_outbox_fetch, publish each event, store_outbox_delete the ids it
 * published. A crash after the commit and before the delete publishes an event again later;
 * nothing committed is ever lost. The caller of the ingest may also publish its events itself
 * as soon as the callback fires and then delete exactly the ids the result gives
 * (store_ingest_result_t.outbox_ids); the fetch loop then only sweeps up the rows a crashed
 * caller left behind (and may publish an event the caller is publishing at that moment:
 * delivery stays at least once). Ids are never reused (SQLite AUTOINCREMENT, PostgreSQL
 * sequences), so deleting an id already gone never removes another event. */

/* Largest `limit` of store_outbox_fetch. */
#define STORE_OUTBOX_MAX 1000u

/* Read. The oldest `limit` events of the outbox, in id order (n = 0 when it is empty). Runs on
 * the read connection: it sees every transaction committed before it started. Call: PL_EINVAL
 * when limit is 0, PL_ETOOBIG over STORE_OUTBOX_MAX. */
PL_NODISCARD int store_outbox_fetch(store_t *s, size_t limit, store_outbox_cb cb, void *ud);

/* Write. Deletes the events ids[0..n) (an id that is not there, or given twice, is skipped); cb
 * gets how many were deleted. n may be 0 (nothing to do, count 0). Call: PL_EINVAL when ids is
 * NULL and n > 0, PL_ETOOBIG when n is over STORE_MAX_LIST. */
PL_NODISCARD int store_outbox_delete(store_t *s, const int64_t *ids, size_t n, store_count_cb cb,
                                     void *ud);

#endif
