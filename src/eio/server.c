/* Engine.IO v4 server (socket.io "engine.io-protocol" v4; behaviour of the reference engine.io
 * 6.x server): sessions over HTTP long-polling and WebSocket, the polling -> WebSocket upgrade,
 * the server-driven heartbeat, and the reference's error answers. See server.h for the contract.
 *
 * A session (eio_socket_t) lives in a hash table keyed by its sid (FNV-1a over the bytes, so
 * `sid=__proto__` is just a key that is not there: CVE-2026-59724). It has exactly one uv_timer_t,
 * armed for the earliest of its deadlines (next ping, pong due, upgrade due, close due), one
 * optional held GET (polling), one optional WebSocket (the transport, after a direct handshake or
 * an upgrade) and one optional probe WebSocket (an upgrade in progress). Packets for a polling
 * client wait in a queue of refcounted buffers (the owner's buffers themselves: nothing is
 * copied until the response body is built); on a WebSocket they are written at once, zero-copy.
 *
 * Lifetime: a session holds one reference for being alive and one for its timer handle; calls in
 * progress take more. Closing removes it from the table, answers or releases its HTTP request,
 * detaches its WebSockets, and queues it for the owner's on_close, which runs on the next loop
 * turn (never from inside eio_socket_send or a read callback); then the timer is closed and the
 * memory freed once the last reference goes. A held GET needs no reference of its own: closing
 * answers or releases it first, so its abort callback never sees a freed session.
 *
 * Memory: an idle session is one eio_socket_t (344 bytes with its timer) and no buffer; with
 * its ws_conn_t (120) and the HTTP connection (640) an idle WebSocket client costs about 1180
 * bytes of heap (measured by tests/integration/20-ws/04-memory.test.mjs).
 *
 * Decisions where the reference is silent, odd or unsafe (each is tested):
 *  - Every refusal is JSON {"code","message"} (HTTP 400, or 403 for code 4), also on upgrade
 *    requests (the reference writes the bare message as text/html there) and for a second
 *    concurrent GET ("overlap", the reference answers an empty 400): code 3 "Bad request", and
 *    the session closes ("transport error"), the held GET getting the close packet as in the
 *    reference.
 *  - A request with a sid and a method other than GET/POST: 400 code 3 (the reference: 500).
 *  - transport=websocket without an Upgrade, with or without a sid: 400 code 3 (with a sid the
 *    reference leaves the request hanging). An upgrade request must say transport=websocket
 *    (CVE-2023-31125), must carry EIO=4 like its session (CVE-2026-102599), and is refused
 *    before the 101 when the session is already upgrading or on WebSocket.
 *  - POST with Content-Type application/octet-stream: 400 code 3 and the session closes
 *    ("transport error"), as the reference does for protocol 4 (CVE-2026-59725). A POST body
 *    that does not decode: 400 code 3 and the session closes ("parse error"; the reference
 *    answers "ok" and closes). A body over maxPayload or with more than 512 packets: 413
 *    {"code":3,"message":"Payload too large"} and the session closes ("transport error"; the
 *    reference answers 413 and keeps the session, which the client then drops anyway). Bodies
 *    over the HTTP server's max_body_bytes get the HTTP layer's 413 before reaching here.
 *  - A WebSocket message that is not a valid Engine.IO packet: close code 1003 and the session
 *    closes ("parse error"). A ping from the client (v4 pings go server -> client): "transport
 *    error", as the reference.
 *  - eio_socket_close on polling without a held GET waits up to pingTimeout for the next GET to
 *    deliver the close packet (the reference waits 30 s). On WebSocket it sends the close
 *    packet "1" and then close code 1000; eio_server_close uses 1001.
 *  - Requests arriving while eio_server_close is in progress: 503 {"code":3,"message":"Server
 *    closing"}.
 * Threads: loop thread only. */
#include "eio/server.h"

#include "core/id.h"
#include "core/log.h"
#include "eio/packet.h"
#include "http/query.h"
#include "ws/ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SID_BYTES 15 /* 120 bits -> 20 base64url characters */
#define SID_LEN 20
#define INITIAL_BUCKETS 64
#define MAX_QUERY_VALUE 64 /* bytes of a decoded transport/EIO/sid/b64 value we look at */

enum {
    ERR_TRANSPORT = 0,
    ERR_SID,
    ERR_HANDSHAKE_METHOD,
    ERR_BAD_REQUEST,
    ERR_FORBIDDEN,
    ERR_VERSION
};

static const char *const g_err_messages[] = {
    "Transport unknown", "Session ID unknown", "Bad handshake method",
    "Bad request",       "Forbidden",          "Unsupported protocol version",
};

typedef enum { TR_POLLING, TR_WEBSOCKET } transport_t;

typedef enum {
    S_OPEN,    /* in the table, packets flow */
    S_CLOSING, /* eio_socket_close on polling: waiting for a GET to carry the close packet */
    S_CLOSED   /* out of the table; on_close pending or done */
} sstate_t;

/* A packet waiting for a polling client. */
typedef struct out_pkt {
    struct out_pkt *next;
    pl_rcbuf_t *buf; /* a reference: text as on a WebSocket ("4hi", "2"), or binary bytes */
    bool binary;
} out_pkt_t;

struct eio_socket {
    eio_server_t *srv;
    eio_socket_t *hnext;        /* hash chain; also the deferred-close list once closed */
    uv_timer_t timer;           /* the one timer: earliest deadline below */
    ws_conn_t *ws;              /* WebSocket transport, or NULL */
    ws_conn_t *probe;           /* WebSocket being upgraded to, or NULL */
    http_request_t *poll;       /* held GET, or NULL */
    out_pkt_t *q_head, *q_tail; /* packets for a polling client */
    size_t q_bytes;             /* their size once encoded, in bytes */
    void *data;                 /* owner's pointer */
    const char *close_reason;   /* static; set when closed */
    uint64_t ping_at;           /* loop ms: send a ping then; 0 while waiting for a pong */
    uint64_t pong_due;          /* loop ms: "ping timeout" unless a pong came; 0 = none */
    uint64_t upgrade_due;       /* loop ms: drop an unfinished upgrade; 0 = none */
    uint64_t close_due;         /* loop ms: S_CLOSING gives up waiting for a GET; 0 = none */
    uint32_t refs;              /* alive + timer handle + calls in progress */
    uint8_t transport;          /* transport_t */
    uint8_t state;              /* sstate_t */
    bool b64;                   /* the client asked for binary as base64 (query b64) */
    bool probed;                /* the probe WebSocket sent "2probe" and got "3probe" */
    bool pong_refreshed;        /* the pong deadline was extended once by another packet */
    bool notify_close;          /* on_close is owed (false when on_open refused) */
    char sid[SID_LEN + 1];
    char ip[46]; /* remote address at the handshake */
};

struct eio_server {
    uv_loop_t *loop;
    eio_options_t opts;
    eio_callbacks_t cbs;
    void *ud;
    bool (*cors)(const pl_slice_t *origin, void *ud); /* NULL: no CORS headers */
    void *cors_ud;                                    /* given to cors */
    eio_socket_t **buckets;                           /* hash table by sid */
    size_t nbuckets;                                  /* power of two */
    size_t count;                                     /* sessions in the table */
    size_t live;              /* sessions not yet freed (in the table or closing) */
    eio_socket_t *defer_head; /* closed sessions waiting for on_close */
    uv_idle_t defer;          /* runs the deferred on_close calls */
    pl_buf_t scratch;         /* decoded base64 of one WebSocket packet (used synchronously) */
    pl_rcbuf_t *ping_pkt;     /* "2", shared by every session */
    ws_options_t ws_opts;
    eio_limits_t limits;
    bool closing;     /* eio_server_close was called */
    bool idle_closed; /* the defer handle is closed */
    void (*close_cb)(void *ud);
    void *close_ud;
};

static void session_close(eio_socket_t *s, const char *reason);
static void session_arm(eio_socket_t *s);
static void poll_flush(eio_socket_t *s);
static void server_maybe_free(eio_server_t *srv);

void eio_options_default(eio_options_t *o) {
    o->ping_interval_ms = 25000;
    o->ping_timeout_ms = 20000;
    o->max_payload = 1000000;
    o->upgrade_timeout_ms = 10000;
    o->max_pending_output = 1024 * 1024;
    o->allow_upgrades = true;
    o->allow_polling = true;
    o->allow_websocket = true;
}

/* ---- sessions: references, hash table ------------------------------------------------------- */

static void queue_free(eio_socket_t *s) {
    out_pkt_t *p = s->q_head;
    while (p) {
        out_pkt_t *next = p->next;
        pl_rcbuf_unref(p->buf);
        free(p);
        p = next;
    }
    s->q_head = s->q_tail = NULL;
    s->q_bytes = 0;
}

static void s_ref(eio_socket_t *s) {
    s->refs++;
}

static void s_unref(eio_socket_t *s) {
    if (--s->refs > 0)
        return;
    eio_server_t *srv = s->srv;
    queue_free(s);
    free(s);
    srv->live--;
    server_maybe_free(srv);
}

static size_t sid_hash(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

static eio_socket_t *table_find(const eio_server_t *srv, const char *sid, size_t n) {
    if (n != SID_LEN)
        return NULL;
    for (eio_socket_t *s = srv->buckets[sid_hash(sid, n) & (srv->nbuckets - 1)]; s; s = s->hnext)
        if (memcmp(s->sid, sid, SID_LEN) == 0)
            return s;
    return NULL;
}

static void table_grow(eio_server_t *srv) {
    size_t n = srv->nbuckets * 2;
    eio_socket_t **b = calloc(n, sizeof *b);
    if (!b)
        return; /* stays correct, only slower */
    for (size_t i = 0; i < srv->nbuckets; i++) {
        eio_socket_t *s = srv->buckets[i];
        while (s) {
            eio_socket_t *next = s->hnext;
            size_t k = sid_hash(s->sid, SID_LEN) & (n - 1);
            s->hnext = b[k];
            b[k] = s;
            s = next;
        }
    }
    free(srv->buckets);
    srv->buckets = b;
    srv->nbuckets = n;
}

static void table_add(eio_server_t *srv, eio_socket_t *s) {
    if (srv->count >= srv->nbuckets)
        table_grow(srv);
    size_t k = sid_hash(s->sid, SID_LEN) & (srv->nbuckets - 1);
    s->hnext = srv->buckets[k];
    srv->buckets[k] = s;
    srv->count++;
}

static void table_remove(eio_server_t *srv, eio_socket_t *s) {
    eio_socket_t **pp = &srv->buckets[sid_hash(s->sid, SID_LEN) & (srv->nbuckets - 1)];
    while (*pp && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = s->hnext;
        srv->count--;
    }
    s->hnext = NULL;
}

/* ---- HTTP answers --------------------------------------------------------------------------- */

static void add_cors(eio_server_t *srv, http_request_t *req) {
    if (!srv->cors || req->upgrade)
        return;
    const pl_slice_t *origin = http_request_header(req, "origin");
    if (!origin || !srv->cors(origin, srv->cors_ud))
        return;
    char *o = pl_slice_dup(*origin);
    if (!o)
        return;
    http_response_header(req, "Access-Control-Allow-Origin", o);
    http_response_header(req, "Access-Control-Allow-Credentials", "true");
    http_response_header(req, "Vary", "Origin");
    free(o);
}

static void respond_code(eio_server_t *srv, http_request_t *req, int status, int code,
                         const char *message) {
    char body[128];
    int n = snprintf(body, sizeof body, "{\"code\":%d,\"message\":\"%s\"}", code, message);
    pl_log_info("eio.refused", "conn=%llu status=%d code=%d message=\"%s\"",
                (unsigned long long)http_conn_id(req->conn), status, code, message);
    add_cors(srv, req);
    http_respond(req, status, "application/json", body, (size_t)n);
}

static void respond_error(eio_server_t *srv, http_request_t *req, int code) {
    respond_code(srv, req, code == ERR_FORBIDDEN ? 403 : 400, code, g_err_messages[code]);
}

/* ---- sending -------------------------------------------------------------------------------- */

/* Bytes a packet takes in a polling body (separator included). */
static size_t polled_size(const pl_rcbuf_t *b, bool binary) {
    return 1 + (binary ? 1 + (b->len + 2) / 3 * 4 : b->len);
}

/* Writes one packet to the WebSocket transport. A failure closes the session. */
static int ws_write(eio_socket_t *s, pl_rcbuf_t *buf, bool binary) {
    eio_server_t *srv = s->srv;
    if (ws_pending(s->ws) + buf->len > srv->opts.max_pending_output) {
        pl_log_warn("eio.slow_consumer", "sid=%s pending=%zu adding=%zu", s->sid, ws_pending(s->ws),
                    buf->len);
        session_close(s, "transport error");
        return PL_ETOOBIG;
    }
    int rc;
    if (binary && s->b64) {
        pl_buf_t text;
        pl_buf_init(&text, 0);
        eio_packet_t p = {
            .type = EIO_MESSAGE, .binary = true, .data = pl_slice(buf->data, buf->len)};
        bool bin_frame;
        rc = eio_packet_encode_ws(&p, true, &text, &bin_frame);
        if (rc == 0)
            rc = ws_send_copy(s->ws, text.data, text.len, false);
        pl_buf_dispose(&text);
    } else {
        rc = ws_send(s->ws, buf, binary);
    }
    if (rc < 0 && s->state != S_CLOSED)
        session_close(s, "transport error");
    return rc;
}

/* Queues or writes one packet on the current transport. Returns 0, PL_ETOOBIG (the session is
 * closed), PL_ENOMEM or UV_ECANCELED. */
static int session_send(eio_socket_t *s, pl_rcbuf_t *buf, bool binary) {
    if (s->state == S_CLOSED)
        return UV_ECANCELED;
    if (s->transport == TR_WEBSOCKET && s->ws)
        return ws_write(s, buf, binary);
    size_t add = polled_size(buf, binary);
    if (s->q_bytes + add > s->srv->opts.max_pending_output) {
        pl_log_warn("eio.slow_consumer", "sid=%s pending=%zu adding=%zu", s->sid, s->q_bytes, add);
        session_close(s, "transport error");
        return PL_ETOOBIG;
    }
    out_pkt_t *p = malloc(sizeof *p);
    if (!p)
        return PL_ENOMEM;
    p->next = NULL;
    p->buf = pl_rcbuf_ref(buf);
    p->binary = binary;
    if (s->q_tail)
        s->q_tail->next = p;
    else
        s->q_head = p;
    s->q_tail = p;
    s->q_bytes += add;
    if (s->poll)
        poll_flush(s);
    return 0;
}

static int session_send_text(eio_socket_t *s, const char *text, size_t len) {
    pl_rcbuf_t *b = pl_rcbuf_from(text, len);
    if (!b)
        return PL_ENOMEM;
    int rc = session_send(s, b, false);
    pl_rcbuf_unref(b);
    return rc;
}

/* Builds the polling body from the queue (and an optional trailing packet) and answers req. */
static void poll_answer(eio_socket_t *s, http_request_t *req, const char *extra) {
    pl_buf_t body;
    pl_buf_init(&body, 0);
    int rc = 0;
    bool first = true;
    for (out_pkt_t *p = s->q_head; p && !rc; p = p->next) {
        if (!first)
            rc = pl_buf_append(&body, "\x1e", 1);
        first = false;
        if (rc)
            break;
        if (p->binary) {
            eio_packet_t pk = {
                .type = EIO_MESSAGE, .binary = true, .data = pl_slice(p->buf->data, p->buf->len)};
            rc = eio_payload_append(&body, &pk, false);
        } else {
            rc = pl_buf_append(&body, p->buf->data, p->buf->len);
        }
    }
    if (!rc && extra) {
        if (!first)
            rc = pl_buf_append(&body, "\x1e", 1);
        if (!rc)
            rc = pl_buf_append_cstr(&body, extra);
    }
    queue_free(s);
    if (rc) {
        pl_buf_dispose(&body);
        http_respond(req, 500, "text/plain; charset=UTF-8", "", 0);
        return;
    }
    add_cors(s->srv, req);
    http_response_header(req, "Cache-Control", "no-store");
    http_respond(req, 200, "text/plain; charset=UTF-8", body.data ? body.data : "", body.len);
    pl_buf_dispose(&body);
}

/* Takes the held GET off the session and forgets its abort callback. */
static http_request_t *poll_take(eio_socket_t *s) {
    http_request_t *req = s->poll;
    s->poll = NULL;
    if (req)
        http_request_on_abort(req, NULL, NULL);
    return req;
}

/* Answers the held GET with everything queued. */
static void poll_flush(eio_socket_t *s) {
    http_request_t *req = poll_take(s);
    if (req)
        poll_answer(s, req, NULL);
}

/* ---- closing -------------------------------------------------------------------------------- */

static void timer_closed_cb(uv_handle_t *h) {
    s_unref(h->data);
}

static void defer_cb(uv_idle_t *h) {
    eio_server_t *srv = h->data;
    uv_idle_stop(h);
    while (srv->defer_head) {
        eio_socket_t *s = srv->defer_head;
        srv->defer_head = s->hnext;
        s->hnext = NULL;
        if (s->notify_close && srv->cbs.on_close)
            srv->cbs.on_close(s, s->close_reason, srv->ud);
        uv_close((uv_handle_t *)&s->timer, timer_closed_cb);
        s_unref(s); /* alive */
    }
}

static void detach_ws(ws_conn_t **slot, unsigned code, const char *reason) {
    ws_conn_t *ws = *slot;
    if (!ws)
        return;
    *slot = NULL;
    ws_close(ws, code, reason);
    ws_detach(ws);
}

static unsigned close_code_for(const char *reason) {
    if (strcmp(reason, "parse error") == 0)
        return WS_CLOSE_UNSUPPORTED;
    return WS_CLOSE_NORMAL;
}

/* Ends the session now: out of the table, its requests and WebSockets let go, timers stopped;
 * on_close follows on the next loop turn. */
static void session_close(eio_socket_t *s, const char *reason) {
    if (s->state == S_CLOSED)
        return;
    eio_server_t *srv = s->srv;
    s_ref(s);
    s->state = S_CLOSED;
    s->close_reason = reason;
    table_remove(srv, s);
    uv_timer_stop(&s->timer);
    pl_log_debug("eio.close", "sid=%s reason=\"%s\"", s->sid, reason);
    /* A held GET gets the close packet, as the reference's polling transport sends it. */
    http_request_t *req = poll_take(s);
    if (req)
        poll_answer(s, req, "1");
    queue_free(s);
    unsigned code = srv->closing ? WS_CLOSE_GOING_AWAY : close_code_for(reason);
    detach_ws(&s->ws, code, NULL);
    detach_ws(&s->probe, code, NULL);
    s->hnext = srv->defer_head;
    srv->defer_head = s;
    uv_idle_start(&srv->defer, defer_cb);
    s_unref(s);
}

/* ---- heartbeat and deadlines ---------------------------------------------------------------- */

static void upgrade_cancel(eio_socket_t *s) {
    detach_ws(&s->probe, WS_CLOSE_NORMAL, NULL);
    s->probed = false;
    s->upgrade_due = 0;
}

static void timer_cb(uv_timer_t *t) {
    eio_socket_t *s = t->data;
    eio_server_t *srv = s->srv;
    uint64_t now = uv_now(srv->loop);
    s_ref(s);
    if (s->close_due && now >= s->close_due) {
        session_close(s, "server close");
    } else if (s->pong_due && now >= s->pong_due) {
        pl_log_info("eio.ping_timeout", "sid=%s transport=%s", s->sid, eio_socket_transport(s));
        session_close(s, "ping timeout");
    } else {
        if (s->upgrade_due && now >= s->upgrade_due) {
            pl_log_info("eio.upgrade_timeout", "sid=%s", s->sid);
            upgrade_cancel(s);
        }
        if (s->state == S_OPEN && s->ping_at && now >= s->ping_at) {
            s->ping_at = 0;
            s->pong_due = now + srv->opts.ping_timeout_ms;
            s->pong_refreshed = false;
            (void)session_send(s, srv->ping_pkt, false);
        }
        if (s->state != S_CLOSED)
            session_arm(s);
    }
    s_unref(s);
}

static void session_arm(eio_socket_t *s) {
    uint64_t next = 0;
    uint64_t d[4] = {s->ping_at, s->pong_due, s->upgrade_due, s->close_due};
    for (int i = 0; i < 4; i++)
        if (d[i] && (!next || d[i] < next))
            next = d[i];
    if (!next) {
        uv_timer_stop(&s->timer);
        return;
    }
    uint64_t now = uv_now(s->srv->loop);
    uv_timer_start(&s->timer, timer_cb, next > now ? next - now : 0, 0);
}

/* ---- packets from the client ---------------------------------------------------------------- */

static void session_packet(eio_socket_t *s, const eio_packet_t *p) {
    eio_server_t *srv = s->srv;
    if (s->state != S_OPEN)
        return;
    uint64_t now = uv_now(srv->loop);
    if (s->pong_due && !s->pong_refreshed && p->type != EIO_PONG) {
        /* As the reference: any packet while a pong is due extends the wait once. */
        s->pong_due = now + srv->opts.ping_timeout_ms;
        s->pong_refreshed = true;
        session_arm(s);
    }
    switch (p->type) {
    case EIO_PONG:
        if (s->pong_due) {
            s->pong_due = 0;
            s->ping_at = now + srv->opts.ping_interval_ms;
            session_arm(s);
        }
        break;
    case EIO_PING:
        pl_log_info("eio.bad_heartbeat", "sid=%s", s->sid);
        session_close(s, "transport error");
        break;
    case EIO_MESSAGE:
        if (srv->cbs.on_message)
            srv->cbs.on_message(s, p->data.ptr ? p->data.ptr : "", p->data.len, p->binary, srv->ud);
        break;
    case EIO_CLOSE:
        session_close(s, "transport close");
        break;
    default: /* open, upgrade, noop: nothing to do */
        break;
    }
}

/* ---- WebSocket transport and probe ---------------------------------------------------------- */

/* The probe WebSocket of an upgrade: "2probe" -> "3probe" (and the held GET is released with a
 * noop); "5" switches the session over; anything else abandons the upgrade. */
static void probe_message(eio_socket_t *s, const eio_packet_t *p) {
    eio_server_t *srv = s->srv;
    if (p->type == EIO_PING && pl_slice_eq_cstr(p->data, "probe")) {
        if (ws_send_copy(s->probe, "3probe", 6, false) < 0)
            return; /* its on_close cancels the upgrade */
        s->probed = true;
        http_request_t *req = poll_take(s);
        if (req)
            poll_answer(s, req, s->q_head ? NULL : "6");
        return;
    }
    if (p->type == EIO_UPGRADE && (s->state == S_OPEN || s->state == S_CLOSING)) {
        pl_log_debug("eio.upgraded", "sid=%s", s->sid);
        http_request_t *req = poll_take(s);
        if (req)
            poll_answer(s, req, "6");
        s->ws = s->probe;
        s->probe = NULL;
        s->transport = TR_WEBSOCKET;
        s->probed = false;
        s->upgrade_due = 0;
        session_arm(s);
        /* Whatever waited for the polling client goes out on the WebSocket now. */
        out_pkt_t *q = s->q_head;
        s->q_head = s->q_tail = NULL;
        s->q_bytes = 0;
        while (q) {
            out_pkt_t *next = q->next;
            if (s->state != S_CLOSED && s->ws)
                (void)ws_write(s, q->buf, q->binary);
            pl_rcbuf_unref(q->buf);
            free(q);
            q = next;
        }
        /* A close requested during the upgrade: its packet just went out with the queue. */
        if (s->state == S_CLOSING)
            session_close(s, "server close");
        return;
    }
    (void)srv;
    pl_log_info("eio.upgrade_refused", "sid=%s packet=%s", s->sid, eio_type_name(p->type));
    upgrade_cancel(s);
}

static void ws_on_message(ws_conn_t *ws, void *ud, const char *data, size_t len, bool binary) {
    eio_socket_t *s = ud;
    eio_server_t *srv = s->srv;
    s_ref(s);
    eio_packet_t p;
    int rc = eio_packet_decode_ws(&p, data, len, binary, &srv->limits, &srv->scratch);
    if (rc) {
        pl_log_info("eio.parse_error", "sid=%s err=%s", s->sid, pl_strerror(rc));
        if (ws == s->probe)
            upgrade_cancel(s);
        else
            session_close(s, "parse error");
    } else if (ws == s->probe) {
        probe_message(s, &p);
    } else if (ws == s->ws) {
        session_packet(s, &p);
    }
    if (srv->scratch.cap > 64 * 1024) {
        pl_buf_dispose(&srv->scratch);
        pl_buf_init(&srv->scratch, srv->opts.max_payload);
    }
    s_unref(s);
}

static void ws_on_close(ws_conn_t *ws, void *ud, unsigned code, bool error) {
    eio_socket_t *s = ud;
    if (ws == s->probe) {
        s->probe = NULL;
        s->probed = false;
        s->upgrade_due = 0;
        if (s->state != S_CLOSED)
            session_arm(s);
        return;
    }
    if (ws == s->ws) {
        s->ws = NULL;
        pl_log_debug("eio.ws_closed", "sid=%s code=%u error=%d", s->sid, code, (int)error);
        session_close(s, error ? "transport error" : "transport close");
    }
}

static const ws_callbacks_t g_ws_cbs = {.on_message = ws_on_message, .on_close = ws_on_close};

/* ---- requests ------------------------------------------------------------------------------- */

typedef struct {
    char transport[MAX_QUERY_VALUE + 1];
    char eio[MAX_QUERY_VALUE + 1];
    char sid[MAX_QUERY_VALUE + 1];
    bool has_transport, has_eio, has_sid;
    bool transport_long, sid_long; /* the value was longer than we keep */
    bool b64;
} query_t;

/* Decodes one parameter into out. 0 (found or not), or PL_EINVAL for a malformed escape. */
static int query_param(const http_request_t *req, const char *key, char out[MAX_QUERY_VALUE + 1],
                       bool *present, bool *too_long) {
    pl_buf_t b;
    pl_buf_init(&b, MAX_QUERY_VALUE);
    int rc = http_query_get(req->query, key, &b);
    *present = rc == 1;
    *too_long = false;
    out[0] = '\0';
    if (rc == PL_ETOOBIG) {
        *present = *too_long = true;
        rc = 1;
    }
    if (rc == 1 && !*too_long) {
        if (b.len)
            memcpy(out, b.data, b.len);
        out[b.len] = '\0';
        if (memchr(out, '\0', b.len))
            *too_long = true; /* an embedded NUL never matches anything */
    }
    pl_buf_dispose(&b);
    return rc < 0 ? rc : 0;
}

static int parse_query(const http_request_t *req, query_t *q) {
    bool dummy;
    char b64[MAX_QUERY_VALUE + 1];
    bool has_b64;
    if (query_param(req, "transport", q->transport, &q->has_transport, &q->transport_long) ||
        query_param(req, "EIO", q->eio, &q->has_eio, &dummy) ||
        query_param(req, "sid", q->sid, &q->has_sid, &q->sid_long) ||
        query_param(req, "b64", b64, &has_b64, &dummy))
        return PL_EINVAL;
    q->b64 = has_b64 && (b64[0] != '\0' || dummy);
    return 0;
}

static void on_poll_aborted(http_request_t *req, void *ud) {
    eio_socket_t *s = ud;
    if (s->poll == req) {
        s->poll = NULL;
        http_request_release(req);
        s_ref(s);
        pl_log_debug("eio.poll_aborted", "sid=%s", s->sid);
        session_close(s, "transport error");
        s_unref(s);
    }
}

static void handle_poll_get(eio_socket_t *s, http_request_t *req) {
    eio_server_t *srv = s->srv;
    if (s->poll) {
        pl_log_info("eio.poll_overlap", "sid=%s", s->sid);
        respond_error(srv, req, ERR_BAD_REQUEST);
        session_close(s, "transport error");
        return;
    }
    if (s->state == S_CLOSING) {
        poll_answer(s, req, NULL); /* the queue ends with the close packet */
        session_close(s, "server close");
        return;
    }
    if (s->q_head) {
        poll_answer(s, req, NULL);
        return;
    }
    if (s->probed) {
        poll_answer(s, req, "6"); /* an upgrade is under way: let the client pause polling */
        return;
    }
    s->poll = req;
    http_request_on_abort(req, on_poll_aborted, s);
}

static bool is_octet_stream(const http_request_t *req) {
    const pl_slice_t *ct = http_request_header(req, "content-type");
    return ct && pl_slice_case_eq_cstr(*ct, "application/octet-stream");
}

static void handle_poll_post(eio_socket_t *s, http_request_t *req) {
    eio_server_t *srv = s->srv;
    if (is_octet_stream(req)) {
        pl_log_info("eio.bad_content_type", "sid=%s", s->sid);
        respond_error(srv, req, ERR_BAD_REQUEST);
        session_close(s, "transport error");
        return;
    }
    if (req->body.len > srv->opts.max_payload) {
        respond_code(srv, req, 413, ERR_BAD_REQUEST, "Payload too large");
        session_close(s, "transport error");
        return;
    }
    eio_payload_t pl;
    eio_payload_init(&pl);
    int rc =
        eio_payload_decode(&pl, req->body.data ? req->body.data : "", req->body.len, &srv->limits);
    if (rc == PL_ETOOBIG) {
        respond_code(srv, req, 413, ERR_BAD_REQUEST, "Payload too large");
        session_close(s, "transport error");
    } else if (rc) {
        pl_log_info("eio.parse_error", "sid=%s err=%s", s->sid, pl_strerror(rc));
        respond_error(srv, req, ERR_BAD_REQUEST);
        session_close(s, "parse error");
    } else {
        for (size_t i = 0; i < pl.count && s->state == S_OPEN; i++)
            session_packet(s, &pl.packets[i]);
        add_cors(srv, req);
        http_respond(req, 200, "text/html", "ok", 2);
    }
    eio_payload_dispose(&pl);
}

static void handle_upgrade(eio_socket_t *s, http_request_t *req) {
    eio_server_t *srv = s->srv;
    if (!srv->opts.allow_upgrades || s->state != S_OPEN || s->transport != TR_POLLING || s->probe) {
        respond_error(srv, req, ERR_BAD_REQUEST);
        return;
    }
    ws_conn_t *ws = ws_accept(req, &srv->ws_opts, &g_ws_cbs, s);
    if (!ws)
        return;
    s->probe = ws;
    s->probed = false;
    s->upgrade_due = uv_now(srv->loop) + srv->opts.upgrade_timeout_ms;
    session_arm(s);
}

/* The open packet: 0{"sid":...,"upgrades":[...],"pingInterval":...,...}. */
static int queue_open_packet(eio_socket_t *s) {
    const eio_options_t *o = &s->srv->opts;
    bool offer = s->transport == TR_POLLING && o->allow_upgrades && o->allow_websocket;
    char text[256];
    int n = snprintf(text, sizeof text,
                     "0{\"sid\":\"%s\",\"upgrades\":[%s],\"pingInterval\":%u,\"pingTimeout\":%u,"
                     "\"maxPayload\":%u}",
                     s->sid, offer ? "\"websocket\"" : "", o->ping_interval_ms, o->ping_timeout_ms,
                     o->max_payload);
    return session_send_text(s, text, (size_t)n);
}

static eio_socket_t *session_new(eio_server_t *srv, http_request_t *req, transport_t tr, bool b64) {
    eio_socket_t *s = pl_xcalloc(1, sizeof *s);
    s->srv = srv;
    s->refs = 2; /* alive + timer handle */
    s->transport = (uint8_t)tr;
    s->state = S_OPEN;
    s->b64 = b64;
    uv_timer_init(srv->loop, &s->timer);
    s->timer.data = s;
    do {
        pl_random_id(s->sid, SID_BYTES);
    } while (table_find(srv, s->sid, SID_LEN));
    snprintf(s->ip, sizeof s->ip, "%s", http_request_remote_ip(req));
    srv->live++;
    table_add(srv, s);
    return s;
}

static void handle_handshake(eio_server_t *srv, http_request_t *req, const query_t *q,
                             transport_t tr) {
    if (tr == TR_WEBSOCKET) {
        const char *reason;
        bool version_header;
        int status = ws_handshake_check(req, &reason, &version_header);
        if (status) {
            ws_handshake_refuse(req, status, reason, version_header);
            return;
        }
    }
    eio_socket_t *s = session_new(srv, req, tr, q->b64);
    s_ref(s);
    if (queue_open_packet(s) != 0) {
        s->notify_close = false;
        session_close(s, "server close");
        http_respond(req, 503, "application/json", "{\"code\":3,\"message\":\"Bad request\"}", 35);
        goto out_unref;
    }
    if (srv->cbs.on_open && srv->cbs.on_open(s, req, srv->ud) != 0) {
        s->notify_close = false;
        session_close(s, "forced close");
        respond_error(srv, req, ERR_FORBIDDEN);
        goto out_unref;
    }
    s->notify_close = true;
    pl_log_debug("eio.open", "sid=%s transport=%s ip=%s", s->sid, eio_socket_transport(s), s->ip);
    s->ping_at = uv_now(srv->loop) + srv->opts.ping_interval_ms;
    if (s->state == S_OPEN)
        session_arm(s);
    if (tr == TR_POLLING) {
        poll_answer(s, req, NULL);
        if (s->state == S_CLOSING)
            session_close(s, "server close");
        goto out_unref;
    }
    ws_conn_t *ws = ws_accept(req, &srv->ws_opts, &g_ws_cbs, s);
    if (!ws) {
        session_close(s, "transport close");
        goto out_unref;
    }
    s->ws = ws;
    /* The open packet and anything the owner sent from on_open. */
    out_pkt_t *p = s->q_head;
    s->q_head = s->q_tail = NULL;
    s->q_bytes = 0;
    while (p) {
        out_pkt_t *next = p->next;
        if (s->state != S_CLOSED && s->ws)
            (void)ws_write(s, p->buf, p->binary);
        pl_rcbuf_unref(p->buf);
        free(p);
        p = next;
    }
    if (s->state == S_CLOSING) {
        /* eio_socket_close from on_open: the queue held the close packet. */
        session_close(s, "server close");
    }
out_unref:
    s_unref(s);
}

/* CORS preflight for polling: 204 with the allowed origin reflected. */
static void handle_preflight(eio_server_t *srv, http_request_t *req) {
    add_cors(srv, req);
    http_response_header(req, "Access-Control-Allow-Methods", "GET, POST");
    const pl_slice_t *h = http_request_header(req, "access-control-request-headers");
    if (h && h->len && ws_protocol_list_valid(*h)) {
        char *v = pl_slice_dup(*h);
        if (v) {
            http_response_header(req, "Access-Control-Allow-Headers", v);
            free(v);
        }
    }
    http_respond(req, 204, NULL, "", 0);
}

void eio_server_handle(http_request_t *req, void *ud) {
    eio_server_t *srv = ud;
    if (srv->closing) {
        respond_code(srv, req, 503, ERR_BAD_REQUEST, "Server closing");
        return;
    }
    if (req->method == HTTP_OPTIONS && srv->cors && !req->upgrade) {
        handle_preflight(srv, req);
        return;
    }
    query_t q;
    memset(&q, 0, sizeof q);
    if (parse_query(req, &q) != 0) {
        respond_error(srv, req, ERR_BAD_REQUEST);
        return;
    }
    transport_t tr;
    if (!q.transport_long && strcmp(q.transport, "polling") == 0 && srv->opts.allow_polling)
        tr = TR_POLLING;
    else if (!q.transport_long && strcmp(q.transport, "websocket") == 0 &&
             srv->opts.allow_websocket)
        tr = TR_WEBSOCKET;
    else {
        respond_error(srv, req, ERR_TRANSPORT);
        return;
    }
    if (req->upgrade && tr != TR_WEBSOCKET) {
        /* Only the websocket transport takes upgrades (CVE-2023-31125). */
        respond_error(srv, req, ERR_BAD_REQUEST);
        return;
    }
    bool eio4 = q.has_eio && strcmp(q.eio, "4") == 0;
    if (q.has_sid) {
        eio_socket_t *s = q.sid_long ? NULL : table_find(srv, q.sid, strlen(q.sid));
        if (!s) {
            respond_error(srv, req, ERR_SID);
            return;
        }
        if ((!req->upgrade && s->transport != tr) || !eio4) {
            respond_error(srv, req, ERR_BAD_REQUEST);
            return;
        }
        s_ref(s);
        if (req->upgrade)
            handle_upgrade(s, req);
        else if (tr != TR_POLLING)
            respond_error(srv, req, ERR_BAD_REQUEST);
        else if (req->method == HTTP_GET)
            handle_poll_get(s, req);
        else if (req->method == HTTP_POST)
            handle_poll_post(s, req);
        else
            respond_error(srv, req, ERR_BAD_REQUEST);
        s_unref(s);
        return;
    }
    if (req->method != HTTP_GET) {
        respond_error(srv, req, ERR_HANDSHAKE_METHOD);
        return;
    }
    if (tr == TR_WEBSOCKET && !req->upgrade) {
        respond_error(srv, req, ERR_BAD_REQUEST);
        return;
    }
    if (!eio4) {
        respond_error(srv, req, ERR_VERSION);
        return;
    }
    handle_handshake(srv, req, &q, tr);
}

/* ---- the owner's API ------------------------------------------------------------------------ */

int eio_socket_send(eio_socket_t *s, pl_rcbuf_t *msg, bool binary) {
    if (s->state != S_OPEN)
        return UV_ECANCELED;
    if (!binary && (msg->len == 0 || msg->data[0] != '4'))
        return PL_EINVAL;
    s_ref(s);
    int rc = session_send(s, msg, binary);
    s_unref(s);
    return rc;
}

void eio_socket_close(eio_socket_t *s) {
    if (s->state != S_OPEN)
        return;
    s_ref(s);
    if (s->transport == TR_POLLING && s->probe && s->probed && !s->poll) {
        /* Mid-upgrade: the client answered its probe, paused polling and is about to send "5"
         * on the new WebSocket. What is queued (a CONNECT_ERROR, say) and the close packet go
         * out there once it does; cancelling the upgrade instead would leave the client paused
         * with neither transport until its ping timeout. */
        if (session_send_text(s, "1", 1) == 0 && s->state == S_OPEN) {
            s->state = S_CLOSING;
            s->ping_at = s->pong_due = 0;
            s->close_due = uv_now(s->srv->loop) + s->srv->opts.ping_timeout_ms;
            session_arm(s);
        } else if (s->state != S_CLOSED) {
            session_close(s, "server close");
        }
        s_unref(s);
        return;
    }
    upgrade_cancel(s);
    bool held = s->poll != NULL; /* then the send below answers the held GET at once */
    if (s->transport == TR_WEBSOCKET && s->ws) {
        (void)ws_send_copy(s->ws, "1", 1, false);
        session_close(s, "server close");
    } else if (session_send_text(s, "1", 1) != 0 || held) {
        if (s->state != S_CLOSED)
            session_close(s, "server close");
    } else {
        /* Deliver the close packet with the next GET, or give up after pingTimeout. */
        s->state = S_CLOSING;
        s->ping_at = s->pong_due = 0;
        s->close_due = uv_now(s->srv->loop) + s->srv->opts.ping_timeout_ms;
        session_arm(s);
    }
    s_unref(s);
}

const char *eio_socket_id(const eio_socket_t *s) {
    return s->sid;
}

const char *eio_socket_transport(const eio_socket_t *s) {
    return s->transport == TR_WEBSOCKET ? "websocket" : "polling";
}

const char *eio_socket_remote_ip(const eio_socket_t *s) {
    return s->ip;
}

void eio_socket_set_data(eio_socket_t *s, void *data) {
    s->data = data;
}

void *eio_socket_data(const eio_socket_t *s) {
    return s->data;
}

size_t eio_socket_pending(const eio_socket_t *s) {
    return s->q_bytes + (s->ws ? ws_pending(s->ws) : 0);
}

/* ---- the server ----------------------------------------------------------------------------- */

eio_server_t *eio_server_new(uv_loop_t *loop, const eio_options_t *opts, const eio_callbacks_t *cbs,
                             void *ud) {
    eio_server_t *srv = calloc(1, sizeof *srv);
    if (!srv)
        return NULL;
    srv->loop = loop;
    if (opts)
        srv->opts = *opts;
    else
        eio_options_default(&srv->opts);
    if (cbs)
        srv->cbs = *cbs;
    srv->ud = ud;
    srv->nbuckets = INITIAL_BUCKETS;
    srv->buckets = calloc(srv->nbuckets, sizeof *srv->buckets);
    srv->ping_pkt = pl_rcbuf_from("2", 1);
    if (!srv->buckets || !srv->ping_pkt) {
        free(srv->buckets);
        pl_rcbuf_unref(srv->ping_pkt);
        free(srv);
        return NULL;
    }
    pl_buf_init(&srv->scratch, srv->opts.max_payload);
    ws_options_default(&srv->ws_opts);
    srv->ws_opts.max_message = srv->opts.max_payload;
    srv->limits.max_payload = srv->opts.max_payload;
    srv->limits.max_packets = 0;
    uv_idle_init(loop, &srv->defer);
    srv->defer.data = srv;
    return srv;
}

void eio_server_cors(eio_server_t *srv, bool (*allow)(const pl_slice_t *origin, void *ud),
                     void *ud) {
    srv->cors = allow;
    srv->cors_ud = ud;
}

size_t eio_server_session_count(const eio_server_t *srv) {
    return srv->count;
}

static void server_idle_closed_cb(uv_handle_t *h) {
    eio_server_t *srv = h->data;
    void (*cb)(void *) = srv->close_cb;
    void *cud = srv->close_ud;
    pl_buf_dispose(&srv->scratch);
    pl_rcbuf_unref(srv->ping_pkt);
    free(srv->buckets);
    free(srv);
    if (cb)
        cb(cud);
}

static void server_maybe_free(eio_server_t *srv) {
    if (!srv->closing || srv->live > 0 || srv->defer_head || srv->idle_closed)
        return;
    srv->idle_closed = true;
    uv_close((uv_handle_t *)&srv->defer, server_idle_closed_cb);
}

void eio_server_close(eio_server_t *srv, void (*cb)(void *ud), void *ud) {
    if (srv->closing)
        return;
    srv->closing = true;
    srv->close_cb = cb;
    srv->close_ud = ud;
    for (size_t i = 0; i < srv->nbuckets; i++) {
        while (srv->buckets[i]) {
            eio_socket_t *s = srv->buckets[i];
            s_ref(s);
            upgrade_cancel(s);
            if (s->transport == TR_WEBSOCKET && s->ws)
                (void)ws_send_copy(s->ws, "1", 1, false);
            else if (s->state == S_OPEN)
                (void)session_send_text(s, "1", 1);
            session_close(s, "server close");
            s_unref(s);
        }
    }
    server_maybe_free(srv);
}
