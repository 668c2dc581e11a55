/* SipHash-keyed open-addressing hash table: see map.h. */
#include "core/map.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static unsigned char g_key[crypto_shorthash_KEYBYTES];
static int g_key_ready;

static uint32_t hash_of(const char *key, size_t len) {
    if (!g_key_ready) {
        randombytes_buf(g_key, sizeof g_key);
        g_key_ready = 1;
    }
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, (const unsigned char *)key, len, g_key);
    uint32_t h;
    memcpy(&h, out, sizeof h);
    return h;
}

void pl_map_init(pl_map_t *m) {
    m->slots = NULL;
    m->cap = 0;
    m->count = 0;
}

void pl_map_dispose(pl_map_t *m) {
    free(m->slots);
    pl_map_init(m);
}

static size_t find_slot(const pl_map_t *m, const char *key, size_t len, uint32_t h) {
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    while (m->slots[i].key) {
        const pl_map_slot_t *s = &m->slots[i];
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0)
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

void *pl_map_get(const pl_map_t *m, const char *key, size_t len) {
    if (!m->count || len > UINT32_MAX)
        return NULL;
    size_t i = find_slot(m, key, len, hash_of(key, len));
    return m->slots[i].key ? m->slots[i].value : NULL;
}

static int grow(pl_map_t *m) {
    size_t ncap = m->cap ? m->cap * 2 : 16;
    pl_map_slot_t *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return PL_ENOMEM;
    pl_map_t nm = {ns, ncap, 0};
    for (size_t i = 0; i < m->cap; i++) {
        pl_map_slot_t *s = &m->slots[i];
        if (!s->key)
            continue;
        size_t j = s->hash & (ncap - 1);
        while (ns[j].key)
            j = (j + 1) & (ncap - 1);
        ns[j] = *s;
        nm.count++;
    }
    free(m->slots);
    *m = nm;
    return 0;
}

int pl_map_put(pl_map_t *m, const char *key, size_t len, void *value, void **old) {
    if (len > UINT32_MAX)
        return PL_ETOOBIG;
    if (old)
        *old = NULL;
    if ((m->count + 1) * 4 > m->cap * 3) {
        int rc = grow(m);
        if (rc)
            return rc;
    }
    uint32_t h = hash_of(key, len);
    size_t i = find_slot(m, key, len, h);
    pl_map_slot_t *s = &m->slots[i];
    if (s->key) {
        if (old)
            *old = s->value;
        s->key = key; /* the new value may own a new copy of the key */
        s->value = value;
        return 0;
    }
    *s = (pl_map_slot_t){key, (uint32_t)len, h, value};
    m->count++;
    return 0;
}

void *pl_map_del(pl_map_t *m, const char *key, size_t len) {
    if (!m->count || len > UINT32_MAX)
        return NULL;
    size_t mask = m->cap - 1;
    size_t i = find_slot(m, key, len, hash_of(key, len));
    if (!m->slots[i].key)
        return NULL;
    void *value = m->slots[i].value;
    /* Backward-shift deletion keeps probe chains intact without tombstones. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->slots[j].key)
            break;
        size_t home = m->slots[j].hash & mask;
        /* Move j into the hole i if its home is not in (i, j] cyclically. */
        bool in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_range) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i] = (pl_map_slot_t){0};
    m->count--;
    return value;
}

bool pl_map_next(const pl_map_t *m, size_t *i, const pl_map_slot_t **slot) {
    while (*i < m->cap) {
        const pl_map_slot_t *s = &m->slots[(*i)++];
        if (s->key) {
            *slot = s;
            return true;
        }
    }
    return false;
}

size_t pl_map_remove_if(pl_map_t *m, bool (*pred)(void *value, void *ud),
                        void (*release)(void *value), void *ud) {
    size_t it = 0, n = 0, cap = 0;
    const pl_map_slot_t *slot;
    pl_map_slot_t *drop = NULL;
    while (pl_map_next(m, &it, &slot)) {
        if (!pred(slot->value, ud))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            pl_map_slot_t *nd = realloc(drop, ncap * sizeof *nd);
            if (!nd)
                break; /* the rest waits for the next call */
            drop = nd;
            cap = ncap;
        }
        drop[n++] = *slot;
    }
    for (size_t i = 0; i < n; i++) {
        pl_map_del(m, drop[i].key, drop[i].len);
        if (release)
            release(drop[i].value);
    }
    free(drop);
    return n;
}
