/* Inside the store layer: the backend interface (store_ops_t) that store.c drives and each
 * backend implements (store_sqlite.c now, a PostgreSQL backend later). Not for other layers:
 * they use store.h only.
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
    const char *name;        /* "sqlite", for logs */
    store_dialect_t dialect; /* how migrations are rendered for it */

    /* ---- connections ---- */
    /* Opens a connection to target (the URL without its scheme, e.g. the file path). For
     * STORE_CONN_WRITE the database is created if missing. NULL with a message on failure. */
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
};

/* The SQLite backend (store_sqlite.c). */
extern const store_ops_t store_sqlite_ops;

/* Frees the members of a project struct (not the struct itself). */
void store__project_dispose(store_project_t *p);

/* Formats a message into err (errlen bytes, always NUL-terminated when errlen > 0). */
void store__errf(char *err, size_t errlen, const char *fmt, ...) PL_PRINTF(3, 4);

#endif
