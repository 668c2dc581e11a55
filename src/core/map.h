/* A hash table from byte-string keys to pointers, for every lookup of an untrusted name (sids,
 * socket ids, room names, visitor uids): a real table, so `__proto__` or `constructor` are just
 * keys (BAD-INPUTS.md GHSA-5v72-xg48-5rpm, CVE-2026-59724). Keys are hashed with SipHash-2-4
 * (libsodium's crypto_shorthash) under a per-process random key, so a client cannot choose keys
 * that collide. Open addressing with linear probing and tombstone-free backward-shift deletion;
 * O(1) average per operation; grows at 3/4 load, never shrinks below its initial size.
 *
 * The map does not copy keys: a key (ptr, len) must stay valid while its entry is in the map —
 * usually it lives inside the value. One thread at a time. */
#ifndef PL_MAP_H
#define PL_MAP_H

#include "core/buf.h"

#include <stdint.h>

typedef struct {
    const char *key; /* borrowed */
    uint32_t len;    /* key bytes */
    uint32_t hash;   /* low 32 bits of the key's SipHash (0 = empty slot marker is "key==NULL") */
    void *value;
} pl_map_slot_t;

typedef struct {
    pl_map_slot_t *slots; /* cap slots, NULL until the first insert */
    size_t cap;           /* power of two */
    size_t count;         /* entries */
} pl_map_t;

void pl_map_init(pl_map_t *m);
/* Frees the table (not the keys or values). */
void pl_map_dispose(pl_map_t *m);
/* The value for key, or NULL. */
void *pl_map_get(const pl_map_t *m, const char *key, size_t len);
/* Inserts or replaces. Returns 0 or PL_ENOMEM. If old is not NULL it receives the replaced
 * value (NULL if the key was new). */
PL_NODISCARD int pl_map_put(pl_map_t *m, const char *key, size_t len, void *value, void **old);
/* Removes key; returns its value or NULL. */
void *pl_map_del(pl_map_t *m, const char *key, size_t len);
static inline size_t pl_map_count(const pl_map_t *m) {
    return m->count;
}
/* Removes every entry whose value pred(value, ud) accepts and hands each removed value to
 * release (which may free it and its key). The entries are collected first and then removed,
 * so pred and release never see a map being reshaped. Returns how many were removed. O(cap). */
size_t pl_map_remove_if(pl_map_t *m, bool (*pred)(void *value, void *ud),
                        void (*release)(void *value), void *ud);
/* Iteration: for (size_t i = 0; pl_map_next(m, &i, &slot);) ... Do not insert or delete while
 * iterating (collect first). */
bool pl_map_next(const pl_map_t *m, size_t *i, const pl_map_slot_t **slot);

#endif
