/* Socket.IO adapter over Redis pub/sub (the bus port's scale-out backend): see bus_redis.h for
 * the wire format and the guarantees. Two redis_conn_t: `pub` publishes one envelope per
 * broadcast (pipelined, never waited for), `sub` holds the PSUBSCRIBE and hands each envelope
 * from another node to sio_server_deliver_remote. Encoding reuses one scratch buffer; decoding
 * allocates the names once per envelope and copies the text into a refcounted buffer that the
 * receiving sockets share. */
#include "bus/bus_redis.h"

#include "bus/redis_conn.h"
#include "core/id.h"
#include "core/log.h"
#include "sio/rooms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bus_redis {
    uv_loop_t *loop;
    sio_server_t *srv; /* NULL once the server closed or the bus was closed */
    redis_conn_t *pub;
    redis_conn_t *sub;
    char node[BUS_NODE_ID_MAX + 1];
    pl_buf_t scratch; /* envelope being encoded */
    redis_cmd_t cmd;  /* PUBLISH being built */
    bus_redis_stats_t stats;
    bus_redis_notify_cb notify_cb;
    void *notify_ud;
    int closing; /* connections still closing */
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

int bus_envelope_encode(pl_buf_t *out, const char *node, const sio_target_t *to,
                        const pl_rcbuf_t *text, pl_rcbuf_t *const *att, size_t natt) {
    size_t nl = node ? strlen(node) : 0;
    if (nl == 0 || nl > BUS_NODE_ID_MAX || !text || text->len == 0)
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
        rc = put_u8(out, 1);
    if (rc == 0)
        rc = put_u8(out, (unsigned)nl);
    if (rc == 0)
        rc = pl_buf_append(out, node, nl);
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
    if (!get_bytes(&r, 2, &bytes) || memcmp(bytes, "PB", 2) != 0 || !get_u8(&r, &v) || v != 1 ||
        !get_u8(&r, &nl) || nl == 0 || nl > BUS_NODE_ID_MAX || !get_bytes(&r, nl, &bytes) ||
        memchr(bytes, '\0', nl))
        goto out_fail;
    memcpy(e->node, bytes, nl);
    e->node[nl] = '\0';
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

/* ---- the adapter ----------------------------------------------------------------------------- */

static int adapter_broadcast(void *ud, const char *nsp, const sio_target_t *to, pl_rcbuf_t *text,
                             pl_rcbuf_t *const *att, size_t natt) {
    bus_redis_t *b = ud;
    pl_buf_reset(&b->scratch);
    int rc = bus_envelope_encode(&b->scratch, b->node, to, text, att, natt);
    if (rc == 0) {
        redis_cmd_reset(&b->cmd);
        redis_cmd_str(&b->cmd, "PUBLISH");
        redis_cmd_fmt(&b->cmd, "%s%s", BUS_CHANNEL_PREFIX, nsp);
        redis_cmd_arg(&b->cmd, b->scratch.data, b->scratch.len);
        rc = redis_conn_send(b->pub, &b->cmd, 0, NULL, NULL);
    }
    /* Do not keep a large buffer around after a large broadcast. */
    if (b->scratch.cap > (1u << 20))
        pl_buf_dispose(&b->scratch);
    if (b->cmd.body.cap > (1u << 20)) {
        redis_cmd_dispose(&b->cmd);
        redis_cmd_init(&b->cmd);
    }
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
    if (strcmp(e.node, b->node) == 0) {
        b->stats.own++;
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

static bool node_id_ok(const char *id);

int bus_redis_notify(bus_redis_t *b, const char *node, const void *data, size_t len) {
    if (!node || !node_id_ok(node))
        return PL_EINVAL;
    if (len > BUS_NOTIFY_MAX)
        return PL_ETOOBIG;
    size_t nl = strlen(b->node);
    redis_cmd_reset(&b->cmd);
    redis_cmd_str(&b->cmd, "PUBLISH");
    redis_cmd_fmt(&b->cmd, "%s%s", BUS_NOTIFY_PREFIX, node);
    pl_buf_reset(&b->scratch);
    unsigned char l = (unsigned char)nl;
    int rc = pl_buf_append(&b->scratch, &l, 1);
    if (rc == 0)
        rc = pl_buf_append(&b->scratch, b->node, nl);
    if (rc == 0 && len)
        rc = pl_buf_append(&b->scratch, data, len);
    if (rc)
        return rc;
    redis_cmd_arg(&b->cmd, b->scratch.data, b->scratch.len);
    return redis_conn_send(b->pub, &b->cmd, 0, NULL, NULL);
}

static bool node_id_ok(const char *id) {
    size_t n = strlen(id);
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

bus_redis_t *bus_redis_new(uv_loop_t *loop, const char *url, sio_server_t *srv,
                           const char *node_id) {
    redis_url_t u;
    if (redis_url_parse(url, &u) != 0 || (node_id && !node_id_ok(node_id)))
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
    pl_buf_init(&b->scratch, (size_t)BUS_TEXT_MAX + 256u * 1024u);
    redis_cmd_init(&b->cmd);
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
        redis_conn_subscribe(b->sub, notify, false, notify_cb, b) != 0) {
        if (b->pub)
            redis_conn_close(b->pub, NULL, NULL);
        if (b->sub)
            redis_conn_close(b->sub, NULL, NULL);
        pl_buf_dispose(&b->scratch);
        redis_cmd_dispose(&b->cmd);
        free(b);
        return NULL;
    }
    sio_server_set_adapter(
        srv, &(sio_adapter_t){.broadcast = adapter_broadcast, .close = adapter_close}, b);
    pl_log_info("bus.start", "node=%s url=%s", b->node, url);
    return b;
}

const char *bus_redis_node_id(const bus_redis_t *b) {
    return b->node;
}

bool bus_redis_ready(const bus_redis_t *b) {
    return redis_conn_ready(b->pub) && redis_conn_ready(b->sub);
}

void bus_redis_stats(const bus_redis_t *b, bus_redis_stats_t *out) {
    *out = b->stats;
}

static void conn_closed(void *ud) {
    bus_redis_t *b = ud;
    if (--b->closing > 0)
        return;
    void (*cb)(void *) = b->close_cb;
    void *cud = b->close_ud;
    pl_buf_dispose(&b->scratch);
    redis_cmd_dispose(&b->cmd);
    free(b);
    if (cb)
        cb(cud);
}

void bus_redis_close(bus_redis_t *b, void (*cb)(void *), void *ud) {
    if (b->srv) {
        sio_server_set_adapter(b->srv, NULL, NULL);
        b->srv = NULL;
    }
    b->close_cb = cb;
    b->close_ud = ud;
    b->closing = 2;
    redis_conn_close(b->pub, conn_closed, b);
    redis_conn_close(b->sub, conn_closed, b);
}
