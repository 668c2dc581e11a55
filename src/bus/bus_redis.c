/* Socket.IO adapter over Redis pub/sub (the bus port's scale-out backend): see bus_redis.h for
 * the wire format and the guarantees. Two redis_conn_t: `pub` publishes one envelope per
 * broadcast (pipelined, its answer read asynchronously), `sub` holds the PSUBSCRIBE and hands
 * each envelope from another node to sio_server_deliver_remote. Every broadcast and notification
 * is kept as its built PUBLISH command (a kept_t, in one list oldest first) until Redis answers
 * that it reached the expected number of subscribers; one timer re-publishes the kept ones that
 * fell short when they are due. On the receiving side a per-sender bitmap over the last
 * BUS_DEDUP_WINDOW sequence numbers drops the copies a re-publish brings to nodes that already
 * had the envelope. Encoding reuses one scratch buffer; decoding allocates the names once per
 * envelope and copies the text into a refcounted buffer that the receiving sockets share. */
#include "bus/bus_redis.h"

#include "bus/redis_conn.h"
#include "core/clock.h"
#include "core/id.h"
#include "core/log.h"
#include "sio/rooms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_PER_TICK 2048    /* re-publishes per timer callback (bounded work per wakeup) */
#define SWEEP_EVERY_MS 60000   /* how often idle senders are looked for */
#define DROP_LOG_EVERY_MS 1000 /* at most one warning per second about dropped envelopes */

/* A broadcast or notification kept until Redis says it reached its receivers. */
typedef struct kept kept_t;
struct kept {
    kept_t *prev, *next; /* in the bus's list, oldest first, while listed */
    bus_redis_t *b;
    redis_cmd_t cmd;   /* the PUBLISH, sent again as it is */
    size_t bytes;      /* memory of cmd, as counted in kept_bytes */
    uint64_t first_ms; /* loop time of the first attempt */
    uint64_t due_ms;   /* loop time of the next attempt (while waiting) */
    uint32_t delay_ms; /* the delay after the next shortfall */
    bool notify;       /* a notification: one receiver expected */
    bool in_flight;    /* sent, answer awaited (publish_cb frees it if no longer listed) */
    bool listed;       /* in the list and counted in the bounds; false once given up */
};

/* What a receiver remembers of one sender (BUS_DEDUP_WINDOW / 8 bytes of bitmap). */
typedef struct {
    char node[BUS_NODE_ID_MAX + 1];
    uint64_t high;                        /* highest sequence number delivered */
    uint64_t heard_ms;                    /* loop time of its last envelope */
    uint64_t bits[BUS_DEDUP_WINDOW / 64]; /* bit seq % WINDOW set: seq delivered, for seq in
                                             (high - WINDOW, high] */
} sender_t;

struct bus_redis {
    uv_loop_t *loop;
    sio_server_t *srv; /* NULL once the server closed or the bus was closed */
    redis_conn_t *pub;
    redis_conn_t *sub;
    char node[BUS_NODE_ID_MAX + 1];
    uint64_t seq;     /* last sequence number used */
    pl_buf_t scratch; /* envelope being encoded */
    redis_cmd_t cmd;  /* PUBLISH of an envelope too large to keep */
    bus_redis_stats_t stats;
    bus_redis_notify_cb notify_cb;
    void *notify_ud;
    /* Confirmed publish. */
    kept_t *head, *tail;       /* kept envelopes, oldest first */
    size_t nkept;              /* listed */
    size_t kept_bytes;         /* their bytes */
    uv_timer_t retry;          /* fires when the earliest waiting one is due */
    uint32_t expect;           /* subscribers a broadcast normally reaches */
    bool below;                /* answers below expect since below_ms */
    uint64_t below_ms;         /* loop time of the first of them */
    uint32_t below_max;        /* the largest of them */
    uint64_t dropped_unlogged; /* drops not logged yet */
    uint64_t drop_log_ms;      /* loop time of the last drop warning */
    bool dropped_logged;       /* drop_log_ms is set */
    /* Duplicate suppression. */
    sender_t *senders[BUS_DEDUP_SENDERS];
    size_t nsenders;
    uint64_t swept_ms; /* loop time of the last look for idle senders */
    int closing;       /* handles and connections still closing */
    void (*close_cb)(void *);
    void *close_ud;
};

/* ---- envelope -------------------------------------------------------------------------------- */

static int put_u8(pl_buf_t *b, unsigned v) {
    unsigned char c = (unsigned char)v;
    return pl_buf_append(b, &c, 1);
}

static int put_u16(pl_buf_t *b, size_t v) {
    unsigned char c[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    return pl_buf_append(b, c, 2);
}

static int put_u32(pl_buf_t *b, size_t v) {
    unsigned char c[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    return pl_buf_append(b, c, 4);
}

static int put_names(pl_buf_t *b, const char *const *names, size_t n) {
    int rc = put_u16(b, n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t len = names[i] ? strlen(names[i]) : 0;
        if (len == 0 || len > SIO_ROOM_NAME_MAX)
            return PL_EINVAL;
        rc = put_u16(b, len);
        if (rc == 0)
            rc = pl_buf_append(b, names[i], len);
    }
    return rc;
}

static bool node_id_ok(const char *id, size_t n);

static int put_u64(pl_buf_t *b, uint64_t v) {
    unsigned char c[8];
    for (int i = 0; i < 8; i++)
        c[i] = (unsigned char)(v >> (56 - 8 * i));
    return pl_buf_append(b, c, 8);
}

int bus_envelope_encode(pl_buf_t *out, const char *node, uint64_t seq, const sio_target_t *to,
                        const pl_rcbuf_t *text, pl_rcbuf_t *const *att, size_t natt) {
    size_t nl = node ? strlen(node) : 0;
    if (nl == 0 || nl > BUS_NODE_ID_MAX || !text || text->len == 0 ||
        (seq && !node_id_ok(node, nl)))
        return PL_EINVAL;
    size_t nrooms = to ? to->nrooms : 0, nexcept = to ? to->nexcept : 0;
    if (nrooms > BUS_TARGETS_MAX || nexcept > BUS_TARGETS_MAX - nrooms || natt > BUS_ATT_MAX)
        return PL_ETOOBIG;
    size_t total = text->len;
    if (total > BUS_TEXT_MAX)
        return PL_ETOOBIG;
    for (size_t i = 0; i < natt; i++) {
        if (!att[i] || att[i]->len > BUS_TEXT_MAX - total)
            return att[i] ? PL_ETOOBIG : PL_EINVAL;
        total += att[i]->len;
    }
    int rc = pl_buf_append(out, "PB", 2);
    if (rc == 0)
        rc = put_u8(out, seq ? 2 : 1);
    if (rc == 0)
        rc = put_u8(out, (unsigned)nl);
    if (rc == 0)
        rc = pl_buf_append(out, node, nl);
    if (rc == 0 && seq)
        rc = put_u64(out, seq);
    if (rc == 0)
        rc = put_names(out, to ? to->rooms : NULL, nrooms);
    if (rc == 0)
        rc = put_names(out, to ? to->except : NULL, nexcept);
    if (rc == 0)
        rc = put_u32(out, text->len);
    if (rc == 0)
        rc = pl_buf_append(out, text->data, text->len);
    if (rc == 0)
        rc = put_u16(out, natt);
    for (size_t i = 0; rc == 0 && i < natt; i++) {
        rc = put_u32(out, att[i]->len);
        if (rc == 0 && att[i]->len)
            rc = pl_buf_append(out, att[i]->data, att[i]->len);
    }
    return rc;
}

typedef struct {
    const unsigned char *p;
    size_t left;
} reader_t;

static bool get_u8(reader_t *r, size_t *v) {
    if (r->left < 1)
        return false;
    *v = r->p[0];
    r->p++;
    r->left--;
    return true;
}

static bool get_u16(reader_t *r, size_t *v) {
    if (r->left < 2)
        return false;
    *v = ((size_t)r->p[0] << 8) | r->p[1];
    r->p += 2;
    r->left -= 2;
    return true;
}

static bool get_u32(reader_t *r, size_t *v) {
    if (r->left < 4)
        return false;
    *v = ((size_t)r->p[0] << 24) | ((size_t)r->p[1] << 16) | ((size_t)r->p[2] << 8) | r->p[3];
    r->p += 4;
    r->left -= 4;
    return true;
}

static bool get_bytes(reader_t *r, size_t n, const unsigned char **out) {
    if (r->left < n)
        return false;
    *out = r->p;
    r->p += n;
    r->left -= n;
    return true;
}

void bus_envelope_dispose(bus_envelope_t *e) {
    if (e->text)
        pl_rcbuf_unref(e->text);
    for (size_t i = 0; i < e->natt; i++)
        if (e->att[i])
            pl_rcbuf_unref(e->att[i]);
    free(e->att);
    free(e->rooms);
    free(e->except);
    free(e->names);
    memset(e, 0, sizeof *e);
}

/* Reads a name list into ptrs (allocated) with the bytes copied to *arena. */
static int get_names(reader_t *r, const char ***ptrs, size_t *n, char **arena, size_t max) {
    size_t count;
    if (!get_u16(r, &count))
        return PL_EINVAL;
    if (count > max)
        return PL_EINVAL;
    *n = count;
    if (count == 0)
        return 0;
    /* Each name takes at least 3 bytes (length + 1 byte): refuse counts the data cannot hold
     * before allocating. */
    if (count > r->left / 3)
        return PL_EINVAL;
    *ptrs = calloc(count, sizeof **ptrs);
    if (!*ptrs)
        return PL_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        size_t len;
        const unsigned char *bytes;
        if (!get_u16(r, &len) || len == 0 || len > SIO_ROOM_NAME_MAX ||
            !get_bytes(r, len, &bytes) || memchr(bytes, '\0', len))
            return PL_EINVAL;
        memcpy(*arena, bytes, len);
        (*arena)[len] = '\0';
        (*ptrs)[i] = *arena;
        *arena += len + 1;
    }
    return 0;
}

int bus_envelope_decode(const char *data, size_t len, bus_envelope_t *e) {
    memset(e, 0, sizeof *e);
    reader_t r = {(const unsigned char *)data, len};
    const unsigned char *bytes;
    size_t v, nl;
    int rc = PL_EINVAL;
    if (!get_bytes(&r, 2, &bytes) || memcmp(bytes, "PB", 2) != 0 || !get_u8(&r, &v) ||
        (v != 1 && v != 2) || !get_u8(&r, &nl) || nl == 0 || nl > BUS_NODE_ID_MAX ||
        !get_bytes(&r, nl, &bytes) || memchr(bytes, '\0', nl))
        goto out_fail;
    memcpy(e->node, bytes, nl);
    e->node[nl] = '\0';
    e->version = (unsigned)v;
    if (v == 2) {
        const unsigned char *sb;
        if (!node_id_ok(e->node, nl) || !get_bytes(&r, 8, &sb))
            goto out_fail;
        for (int i = 0; i < 8; i++)
            e->seq = (e->seq << 8) | sb[i];
        if (e->seq == 0)
            goto out_fail;
    }
    /* Size the names first (a scan of both lists), then copy them. */
    reader_t scan = r;
    size_t need = 1;
    for (int list = 0; list < 2; list++) {
        size_t count, nlen;
        if (!get_u16(&scan, &count) || count > BUS_TARGETS_MAX)
            goto out_fail;
        for (size_t i = 0; i < count; i++) {
            if (!get_u16(&scan, &nlen) || !get_bytes(&scan, nlen, &bytes))
                goto out_fail;
            need += nlen + 1;
        }
    }
    e->names = malloc(need);
    if (!e->names) {
        rc = PL_ENOMEM;
        goto out_fail;
    }
    char *arena = e->names;
    rc = get_names(&r, &e->rooms, &e->nrooms, &arena, BUS_TARGETS_MAX);
    if (rc == 0)
        rc = get_names(&r, &e->except, &e->nexcept, &arena, BUS_TARGETS_MAX - e->nrooms);
    if (rc)
        goto out_fail;
    rc = PL_EINVAL;
    size_t tl;
    if (!get_u32(&r, &tl) || tl == 0 || tl > BUS_TEXT_MAX || !get_bytes(&r, tl, &bytes))
        goto out_fail;
    size_t total = tl;
    e->text = pl_rcbuf_from(bytes, tl);
    if (!e->text) {
        rc = PL_ENOMEM;
        goto out_fail;
    }
    size_t natt;
    if (!get_u16(&r, &natt) || natt > BUS_ATT_MAX || natt > r.left / 4)
        goto out_fail;
    if (natt) {
        e->att = calloc(natt, sizeof *e->att);
        if (!e->att) {
            rc = PL_ENOMEM;
            goto out_fail;
        }
    }
    for (size_t i = 0; i < natt; i++) {
        size_t al;
        if (!get_u32(&r, &al) || al > BUS_TEXT_MAX - total || !get_bytes(&r, al, &bytes))
            goto out_fail;
        total += al;
        e->att[i] = pl_rcbuf_from(bytes, al);
        if (!e->att[i]) {
            rc = PL_ENOMEM;
            goto out_fail;
        }
        e->natt = i + 1;
    }
    if (r.left != 0)
        goto out_fail;
    return 0;

out_fail:
    bus_envelope_dispose(e);
    return rc;
}

/* ---- confirmed publish ----------------------------------------------------------------------- */

static bool node_id_ok(const char *id, size_t n) {
    if (n == 0 || n > BUS_NODE_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

static void kept_free(kept_t *k) {
    redis_cmd_dispose(&k->cmd);
    free(k);
}

static void kept_unlink(bus_redis_t *b, kept_t *k) {
    if (k->prev)
        k->prev->next = k->next;
    else
        b->head = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else
        b->tail = k->prev;
    k->prev = k->next = NULL;
    k->listed = false;
    b->nkept--;
    b->kept_bytes -= k->bytes;
}

/* k reached its receivers, or is given up: out of the list; freed now unless its answer is
 * still awaited (publish_cb frees it then). */
static void kept_done(bus_redis_t *b, kept_t *k) {
    kept_unlink(b, k);
    if (!k->in_flight)
        kept_free(k);
}

/* Gives k up (at-most-once from here on): counted, and a warning at most once per second. */
static void kept_drop(bus_redis_t *b, kept_t *k, const char *why) {
    kept_done(b, k);
    b->stats.publish_failed++;
    b->dropped_unlogged++;
    uint64_t now = uv_now(b->loop);
    if (!b->dropped_logged || now - b->drop_log_ms >= DROP_LOG_EVERY_MS) {
        pl_log_warn("bus.publish_dropped",
                    "reason=%s envelopes=%llu kept=%zu kept_bytes=%zu expected=%u", why,
                    (unsigned long long)b->dropped_unlogged, b->nkept, b->kept_bytes, b->expect);
        b->dropped_unlogged = 0;
        b->drop_log_ms = now;
        b->dropped_logged = true;
    }
}

/* Is a broadcast that reached n subscribers delivered everywhere? Updates the expected count:
 * raised by any answer above it; after BUS_EXPECT_DECAY_MS of answers all below it, lowered to
 * the largest of them (a node gone for good). */
static bool expect_reached(bus_redis_t *b, long long n) {
    uint32_t got = n <= 0 ? 0 : n >= (long long)UINT32_MAX ? UINT32_MAX : (uint32_t)n;
    uint64_t now = uv_now(b->loop);
    if (got >= b->expect) {
        if (got > b->expect)
            pl_log_info("bus.expected", "node=%s receivers=%u was=%u", b->node, got, b->expect);
        b->expect = got;
        b->below = false;
        return true;
    }
    if (!b->below) {
        b->below = true;
        b->below_ms = now;
        b->below_max = got;
        return false;
    }
    if (got > b->below_max)
        b->below_max = got;
    if (now - b->below_ms < BUS_EXPECT_DECAY_MS)
        return false;
    pl_log_info("bus.expected", "node=%s receivers=%u was=%u (lowered after %u ms below)", b->node,
                b->below_max, b->expect, (unsigned)BUS_EXPECT_DECAY_MS);
    b->expect = b->below_max;
    b->below = false;
    return got >= b->expect;
}

static void retry_arm(bus_redis_t *b, uint64_t due);

/* k fell short (or could not be sent): due again after its delay, or given up past the time
 * limit. */
static void kept_later(bus_redis_t *b, kept_t *k) {
    uint64_t now = uv_now(b->loop);
    if (now + k->delay_ms > k->first_ms + BUS_RETRY_FOR_MS) {
        kept_drop(b, k, "unconfirmed");
        return;
    }
    k->due_ms = now + k->delay_ms;
    k->delay_ms = k->delay_ms * 2 > BUS_RETRY_MAX_MS ? BUS_RETRY_MAX_MS : k->delay_ms * 2;
    retry_arm(b, k->due_ms);
}

static void publish_cb(void *ud, int status, redisReply *rep) {
    kept_t *k = ud;
    bus_redis_t *b = k->b;
    k->in_flight = false;
    if (!k->listed) { /* given up while its answer was awaited */
        kept_free(k);
        return;
    }
    if (status == 0 && rep && rep->type == REDIS_REPLY_INTEGER &&
        (k->notify ? rep->integer >= 1 : expect_reached(b, rep->integer))) {
        b->stats.confirmed++;
        kept_done(b, k);
        return;
    }
    kept_later(b, k);
}

/* One PUBLISH of k; a refusal (Redis unreachable) is a shortfall like any other. */
static void kept_send(bus_redis_t *b, kept_t *k) {
    if (redis_conn_send(b->pub, &k->cmd, 0, publish_cb, k) == 0)
        k->in_flight = true;
    else
        kept_later(b, k);
}

static void retry_cb(uv_timer_t *t) {
    bus_redis_t *b = t->data;
    uint64_t now = uv_now(b->loop), next = UINT64_MAX;
    size_t sent = 0;
    kept_t *k = b->head;
    while (k) {
        kept_t *following = k->next; /* k may be given up below */
        if (!k->in_flight) {
            if (k->due_ms <= now && sent < RETRY_PER_TICK) {
                sent++;
                b->stats.republished++;
                kept_send(b, k);
            } else if (k->due_ms < next) {
                next = k->due_ms <= now ? now + 1 : k->due_ms;
            }
        }
        k = following;
    }
    if (next != UINT64_MAX)
        retry_arm(b, next);
}

/* The timer fires at due at the latest. */
static void retry_arm(bus_redis_t *b, uint64_t due) {
    uint64_t now = uv_now(b->loop);
    uint64_t in = due > now ? due - now : 0;
    if (uv_is_active((uv_handle_t *)&b->retry) && uv_timer_get_due_in(&b->retry) <= in)
        return;
    uv_timer_start(&b->retry, retry_cb, in, 0);
}

/* Publishes data on channel prefix+name, kept until confirmed (notify: one receiver expected).
 * Returns 0 (sent or kept for a retry), PL_ENOMEM or the command's error. */
static int publish(bus_redis_t *b, const char *prefix, const char *name, const void *data,
                   size_t len, bool notify) {
    /* The RESP of the command: "*3\r\n$7\r\nPUBLISH\r\n$<cl>\r\n<channel>\r\n$<len>\r\n<data>\r\n"
     * without the "*3" (redis_conn adds it), within 64 bytes besides channel and data. */
    size_t cl = strlen(prefix) + strlen(name);
    size_t need = len + cl + 64;
    if (len > BUS_KEEP_BYTES || need + sizeof(kept_t) > BUS_KEEP_BYTES) {
        /* Too large to keep: sent once (at most once). */
        redis_cmd_reset(&b->cmd);
        redis_cmd_str(&b->cmd, "PUBLISH");
        redis_cmd_fmt(&b->cmd, "%s%s", prefix, name);
        redis_cmd_arg(&b->cmd, data, len);
        int rc = redis_conn_send(b->pub, &b->cmd, 0, NULL, NULL);
        if (b->cmd.body.cap > (1u << 20)) {
            redis_cmd_dispose(&b->cmd);
            redis_cmd_init(&b->cmd);
        }
        return rc;
    }
    kept_t *k = calloc(1, sizeof *k);
    if (!k)
        return PL_ENOMEM;
    redis_cmd_init(&k->cmd);
    /* Exactly the bytes needed (a growing buffer would round up to a power of two). */
    k->cmd.body.max = need;
    int rc = pl_buf_reserve(&k->cmd.body, need);
    if (rc == 0) {
        redis_cmd_str(&k->cmd, "PUBLISH");
        redis_cmd_fmt(&k->cmd, "%s%s", prefix, name);
        redis_cmd_arg(&k->cmd, data, len);
        rc = k->cmd.err;
    }
    if (rc) {
        kept_free(k);
        return rc;
    }
    k->b = b;
    k->bytes = sizeof *k + k->cmd.body.cap;
    k->notify = notify;
    k->first_ms = uv_now(b->loop);
    k->delay_ms = BUS_RETRY_FIRST_MS;
    /* Room for it: the oldest go first. */
    while (b->head && (b->nkept + 1 > BUS_KEEP_MAX || b->kept_bytes + k->bytes > BUS_KEEP_BYTES))
        kept_drop(b, b->head, "bound");
    k->prev = b->tail;
    if (b->tail)
        b->tail->next = k;
    else
        b->head = k;
    b->tail = k;
    k->listed = true;
    b->nkept++;
    b->kept_bytes += k->bytes;
    kept_send(b, k);
    return 0;
}

/* ---- duplicate suppression ------------------------------------------------------------------- */

enum { SEEN_NEW, SEEN_DUPLICATE, SEEN_STALE };

static bool bit_get(const sender_t *s, uint64_t seq) {
    uint64_t i = seq % BUS_DEDUP_WINDOW;
    return (s->bits[i / 64] >> (i % 64)) & 1u;
}

static void bit_put(sender_t *s, uint64_t seq, bool on) {
    uint64_t i = seq % BUS_DEDUP_WINDOW;
    uint64_t m = (uint64_t)1 << (i % 64);
    if (on)
        s->bits[i / 64] |= m;
    else
        s->bits[i / 64] &= ~m;
}

/* Forgets senders silent for BUS_DEDUP_IDLE_MS. O(senders), once a minute. */
static void senders_sweep(bus_redis_t *b, uint64_t now) {
    b->swept_ms = now;
    size_t j = 0;
    for (size_t i = 0; i < b->nsenders; i++) {
        if (now - b->senders[i]->heard_ms >= BUS_DEDUP_IDLE_MS)
            free(b->senders[i]);
        else
            b->senders[j++] = b->senders[i];
    }
    b->nsenders = j;
}

/* The state of sender node, created (forgetting the least recently heard one if full); NULL out
 * of memory. O(senders). */
static sender_t *sender_get(bus_redis_t *b, const char *node, uint64_t now, bool *created) {
    *created = false;
    if (now - b->swept_ms >= SWEEP_EVERY_MS)
        senders_sweep(b, now);
    for (size_t i = 0; i < b->nsenders; i++)
        if (!strcmp(b->senders[i]->node, node))
            return b->senders[i];
    sender_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    snprintf(s->node, sizeof s->node, "%s", node);
    if (b->nsenders == BUS_DEDUP_SENDERS) {
        size_t oldest = 0;
        for (size_t i = 1; i < b->nsenders; i++)
            if (b->senders[i]->heard_ms < b->senders[oldest]->heard_ms)
                oldest = i;
        free(b->senders[oldest]);
        b->senders[oldest] = b->senders[--b->nsenders];
    }
    b->senders[b->nsenders++] = s;
    *created = true;
    return s;
}

/* Has envelope (node, seq) been delivered here already? Records it if not. Out of memory the
 * envelope counts as new (a possible duplicate rather than a loss). */
static int seen(bus_redis_t *b, const char *node, uint64_t seq) {
    uint64_t now = uv_now(b->loop);
    bool created;
    sender_t *s = sender_get(b, node, now, &created);
    if (!s)
        return SEEN_NEW;
    s->heard_ms = now;
    if (created || seq > s->high) {
        uint64_t ahead = created ? UINT64_MAX : seq - s->high;
        if (ahead >= BUS_DEDUP_WINDOW)
            memset(s->bits, 0, sizeof s->bits);
        else
            for (uint64_t q = s->high + 1; q < seq; q++) /* amortised: one per number skipped */
                bit_put(s, q, false);
        s->high = seq;
        bit_put(s, seq, true);
        return SEEN_NEW;
    }
    uint64_t behind = s->high - seq;
    if (behind >= BUS_DEDUP_WINDOW) {
        if (behind <= BUS_SEQ_RESTART_GAP)
            return SEEN_STALE;
        /* Far behind: the sender restarted with its clock set back. Start afresh. */
        pl_log_info("bus.sender_restarted", "node=%s", node);
        memset(s->bits, 0, sizeof s->bits);
        s->high = seq;
        bit_put(s, seq, true);
        return SEEN_NEW;
    }
    if (bit_get(s, seq))
        return SEEN_DUPLICATE;
    bit_put(s, seq, true);
    return SEEN_NEW;
}

/* ---- the adapter ----------------------------------------------------------------------------- */

static int adapter_broadcast(void *ud, const char *nsp, const sio_target_t *to, pl_rcbuf_t *text,
                             pl_rcbuf_t *const *att, size_t natt) {
    bus_redis_t *b = ud;
    pl_buf_reset(&b->scratch);
    int rc = bus_envelope_encode(&b->scratch, b->node, ++b->seq, to, text, att, natt);
    if (rc == 0)
        rc = publish(b, BUS_CHANNEL_PREFIX, nsp, b->scratch.data, b->scratch.len, false);
    /* Do not keep a large buffer around after a large broadcast. */
    if (b->scratch.cap > (1u << 20))
        pl_buf_dispose(&b->scratch);
    if (rc) {
        b->stats.publish_failed++;
        return rc;
    }
    b->stats.published++;
    return 0;
}

static void adapter_close(void *ud) {
    bus_redis_t *b = ud;
    b->srv = NULL;
}

static void message_cb(void *ud, const char *channel, size_t clen, const char *data, size_t len) {
    bus_redis_t *b = ud;
    size_t pl = sizeof BUS_CHANNEL_PREFIX - 1;
    char nsp[SIO_DEFAULT_MAX_NSP + 1];
    if (clen <= pl || clen - pl > SIO_DEFAULT_MAX_NSP || memcmp(channel, BUS_CHANNEL_PREFIX, pl))
        return;
    memcpy(nsp, channel + pl, clen - pl);
    nsp[clen - pl] = '\0';
    if (strlen(nsp) != clen - pl)
        return;
    bus_envelope_t e;
    int rc = bus_envelope_decode(data, len, &e);
    if (rc) {
        b->stats.malformed++;
        pl_log_warn("bus.malformed", "channel=%s bytes=%zu error=%s", nsp, len, pl_strerror(rc));
        return;
    }
    int fresh = SEEN_NEW;
    if (strcmp(e.node, b->node) == 0) {
        b->stats.own++;
    } else if (b->srv && e.seq && (fresh = seen(b, e.node, e.seq)) != SEEN_NEW) {
        if (fresh == SEEN_DUPLICATE)
            b->stats.duplicates++;
        else
            b->stats.stale++;
    } else if (b->srv) {
        sio_target_t to = {.rooms = e.rooms,
                           .nrooms = e.nrooms,
                           .except = e.except,
                           .nexcept = e.nexcept,
                           .local = true};
        /* PL_EINVAL: no such namespace on this node (nobody to deliver to). */
        (void)sio_server_deliver_remote(b->srv, nsp, &to, e.text, e.att, e.natt);
        b->stats.received++;
    }
    bus_envelope_dispose(&e);
}

static void notify_cb(void *ud, const char *channel, size_t clen, const char *data, size_t len) {
    bus_redis_t *b = ud;
    (void)channel;
    (void)clen;
    char from[BUS_NODE_ID_MAX + 1];
    size_t fl = len ? (unsigned char)data[0] : 0;
    if (len == 0 || fl == 0 || fl > BUS_NODE_ID_MAX || len - 1 < fl || memchr(data + 1, '\0', fl)) {
        b->stats.malformed++;
        return;
    }
    memcpy(from, data + 1, fl);
    from[fl] = '\0';
    b->stats.notified++;
    if (b->notify_cb)
        b->notify_cb(b->notify_ud, from, data + 1 + fl, len - 1 - fl);
}

void bus_redis_on_notify(bus_redis_t *b, bus_redis_notify_cb cb, void *ud) {
    b->notify_cb = cb;
    b->notify_ud = ud;
}

int bus_redis_notify(bus_redis_t *b, const char *node, const void *data, size_t len) {
    if (!node || !node_id_ok(node, strlen(node)))
        return PL_EINVAL;
    if (len > BUS_NOTIFY_MAX)
        return PL_ETOOBIG;
    size_t nl = strlen(b->node);
    pl_buf_reset(&b->scratch);
    unsigned char l = (unsigned char)nl;
    int rc = pl_buf_append(&b->scratch, &l, 1);
    if (rc == 0)
        rc = pl_buf_append(&b->scratch, b->node, nl);
    if (rc == 0 && len)
        rc = pl_buf_append(&b->scratch, data, len);
    if (rc == 0)
        rc = publish(b, BUS_NOTIFY_PREFIX, node, b->scratch.data, b->scratch.len, true);
    return rc;
}

static void free_on_close(uv_handle_t *h) {
    free(h->data);
}

bus_redis_t *bus_redis_new(uv_loop_t *loop, const char *url, sio_server_t *srv,
                           const char *node_id) {
    redis_url_t u;
    if (redis_url_parse(url, &u) != 0 || (node_id && !node_id_ok(node_id, strlen(node_id))))
        return NULL;
    bus_redis_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->loop = loop;
    b->srv = srv;
    if (node_id)
        snprintf(b->node, sizeof b->node, "%s", node_id);
    else
        pl_random_id(b->node, 12);
    /* Above every number a previous run of this node could have used (at under 2^20 envelopes
     * per millisecond), so that receivers do not take this run's envelopes for repeats. */
    int64_t wall = pl_wall_ms();
    b->seq = (uint64_t)(wall > 0 ? wall : 1) << 20;
    pl_buf_init(&b->scratch, (size_t)BUS_TEXT_MAX + 256u * 1024u);
    redis_cmd_init(&b->cmd);
    uv_timer_init(loop, &b->retry);
    b->retry.data = b;
    b->swept_ms = uv_now(loop);
    redis_conn_options_t o;
    redis_conn_options_default(&o);
    o.name = "bus-pub";
    b->pub = redis_conn_new(loop, url, &o);
    o.name = "bus-sub";
    b->sub = redis_conn_new(loop, url, &o);
    char notify[sizeof BUS_NOTIFY_PREFIX + BUS_NODE_ID_MAX];
    snprintf(notify, sizeof notify, "%s%s", BUS_NOTIFY_PREFIX, b->node);
    if (!b->pub || !b->sub ||
        redis_conn_subscribe(b->sub, BUS_CHANNEL_PREFIX "*", true, message_cb, b) != 0 ||
        redis_conn_subscribe(b->sub, notify, false, notify_cb, b) != 0)
        goto out_close;
    sio_server_set_adapter(
        srv, &(sio_adapter_t){.broadcast = adapter_broadcast, .close = adapter_close}, b);
    pl_log_info("bus.start", "node=%s url=%s", b->node, url);
    return b;

out_close:
    if (b->pub)
        redis_conn_close(b->pub, NULL, NULL);
    if (b->sub)
        redis_conn_close(b->sub, NULL, NULL);
    /* b goes with its timer handle, in the close callback. */
    uv_close((uv_handle_t *)&b->retry, free_on_close);
    pl_buf_dispose(&b->scratch);
    redis_cmd_dispose(&b->cmd);
    return NULL;
}

const char *bus_redis_node_id(const bus_redis_t *b) {
    return b->node;
}

bool bus_redis_ready(const bus_redis_t *b) {
    return redis_conn_ready(b->pub) && redis_conn_ready(b->sub);
}

void bus_redis_stats(const bus_redis_t *b, bus_redis_stats_t *out) {
    *out = b->stats;
    out->kept = b->nkept;
    out->kept_bytes = b->kept_bytes;
    out->expected = b->expect;
}

static void part_closed(bus_redis_t *b) {
    if (--b->closing > 0)
        return;
    void (*cb)(void *) = b->close_cb;
    void *cud = b->close_ud;
    for (size_t i = 0; i < b->nsenders; i++)
        free(b->senders[i]);
    pl_buf_dispose(&b->scratch);
    redis_cmd_dispose(&b->cmd);
    free(b);
    if (cb)
        cb(cud);
}

static void conn_closed(void *ud) {
    part_closed(ud);
}

static void timer_closed(uv_handle_t *h) {
    part_closed(h->data);
}

void bus_redis_close(bus_redis_t *b, void (*cb)(void *), void *ud) {
    if (b->srv) {
        sio_server_set_adapter(b->srv, NULL, NULL);
        b->srv = NULL;
    }
    if (b->nkept)
        pl_log_warn("bus.close_dropped", "node=%s envelopes=%zu", b->node, b->nkept);
    while (b->head) {
        b->stats.publish_failed++;
        kept_done(b, b->head);
    }
    b->close_cb = cb;
    b->close_ud = ud;
    b->closing = 3;
    uv_close((uv_handle_t *)&b->retry, timer_closed);
    redis_conn_close(b->pub, conn_closed, b);
    redis_conn_close(b->sub, conn_closed, b);
}
