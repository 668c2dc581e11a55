/* Versioned schema migrations of the store: an ordered list of SQL scripts (migration 1 is the
 * whole data model of PROTOCOL.md sections 3, 8 and 9), written once for every backend with the
 * few dialect differences expanded from `{{placeholders}}` by one table in migrations.c, and
 * the driver that applies the pending ones.
 *
 * The database records what it has in `schema_migrations(version, applied_at)`. Each migration
 * runs in its own write transaction together with its version stamp, so a failing migration
 * leaves the database exactly at the previous version, and two processes migrating at once do
 * not apply one twice: each step re-reads the version under a lock held until its transaction
 * ends (SQLite: the write lock of BEGIN IMMEDIATE; PostgreSQL: a transaction-level advisory
 * lock, store_ops_t.migration_lock, which also covers creating schema_migrations). A database
 * stamped with a version this binary does not know is refused: an older binary must not write
 * into a newer schema.
 *
 * Threads: the driver runs on whatever thread owns the connection (store_open's caller, or
 * store_migrate's). Everything else here is pure. */
#ifndef STORE_MIGRATIONS_H
#define STORE_MIGRATIONS_H

#include "store/store_internal.h"

#include <stddef.h>

typedef struct {
    int version;      /* 1, 2, 3, ...: the list holds them in order, without gaps */
    const char *name; /* a few words saying what it changes (logged) */
    const char *sql;  /* the script with {{placeholders}}; statements separated by ';' */
} store_migration_t;

/* The migrations of this binary, in order; *n gets their number. Static storage. */
const store_migration_t *store_migrations(size_t *n);
/* The newest version this binary knows (the last entry's version). */
int store_migrations_latest(void);

/* Expands the placeholders of sql for dialect: {{id}} (auto-assigned 64-bit primary key),
 * {{bigint}}, {{bool}}, {{json}}, {{strict}} (SQLite's STRICT table option). Returns a malloc'd
 * string the caller frees, or NULL with a message in err for an unknown or unterminated
 * placeholder. */
char *store_migration_render(const char *sql, store_dialect_t dialect, char *err, size_t errlen);

/* Applies the migrations of list[0..n) that the database on c does not have yet, each in its
 * own transaction, and creates schema_migrations if missing. *applied gets the number applied.
 * Returns 0; PL_EINVAL when the database is newer than the list (version unknown) or a script
 * fails to render; PL_EUNAVAIL when the database refuses a script or a transaction (message in
 * err naming the migration and the database's error; earlier migrations stay applied). */
int store_migrations_run(store_conn_t *c, const store_migration_t *list, size_t n, int *applied,
                         char *err, size_t errlen);

#endif
