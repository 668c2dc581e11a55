/* The store port: Parley's persistent data (projects, users, visitors, conversations, messages,
 * refresh tokens; PROTOCOL.md sections 3, 8 and 9) behind an asynchronous API for the libuv loop
 * thread (DESIGN.md "Ports and backends", "Threads and processes").
 *
 * A store_t is opened from a URL that names its backend: `sqlite:PATH` (the embedded default,
 * store_sqlite.c) or `postgres://...` (not built yet: refused with a clear message). Pending
 * schema migrations (migrations.h) are applied by store_open before anything is served.
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
 * (store_project_dup). On a non-zero status result pointers are NULL and counts 0.
 *
 * Use without an event loop (the CLI): give store_open a private uv_loop_t, submit requests and
 * call store_wait(s), which runs that loop until every request of the store has called back.
 * To finish: store_close(s, NULL, NULL); uv_run(loop, UV_RUN_DEFAULT); uv_loop_close(loop).
 *
 * Times (created_at, ...) are milliseconds since the epoch, taken from the wall clock by the
 * store thread when the write executes.
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

/* Names a status code (ours, core's or libuv's). Never NULL. */
const char *store_strerror(int err);

typedef struct store store_t;

typedef struct {
    /* "normal" (default when NULL) or "full": SQLite's PRAGMA synchronous for the write
     * connection. In WAL mode "normal" survives a crash of the process (kill -9) but may lose
     * the last transactions on power loss; "full" syncs every commit. Borrowed during
     * store_open only. */
    const char *synchronous;
    /* Requests in flight at once; 0 = STORE_MAX_QUEUE. */
    uint32_t max_queue;
    /* Lock wait when another process holds the database, ms; 0 = the default above. */
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
 * file keeps its mode), applies pending migrations synchronously (this blocks: call at
 * start-up, before serving), and starts the store threads. opts may be NULL (defaults).
 * Returns NULL with a message in err on failure: bad URL, `postgres://` ("PostgreSQL support is
 * not built yet"), file or directory not creatable, database newer than this binary, ... */
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
} store_project_t;

/* A deep copy the caller owns (free with store_project_free), or NULL if out of memory. */
store_project_t *store_project_dup(const store_project_t *p);
/* Frees a project from store_project_dup. NULL is fine. */
void store_project_free(store_project_t *p);

/* ---- callbacks ------------------------------------------------------------------------------- */

typedef void (*store_done_cb)(void *ud, int status);
typedef void (*store_count_cb)(void *ud, int status, int64_t count);
/* project is borrowed; NULL when status != 0. */
typedef void (*store_project_cb)(void *ud, int status, const store_project_t *project);
/* projects[0..n) is borrowed; NULL and 0 when status != 0. */
typedef void (*store_project_list_cb)(void *ud, int status, const store_project_t *projects,
                                      size_t n);

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

#endif
