/* Socket.IO v5 server over the Engine.IO server: see server.h for the behaviour and the
 * decisions. This file follows socket.io 4.8's lib/client.js (decoding, CONNECT dispatch,
 * connect timeout), namespace.js (middleware chain, connect answer), socket.js (events, acks,
 * disconnect) and socket.io-adapter's in-memory adapter (rooms, broadcast with except).
 *
 * Structure: a client (struct sio_client, private) per Engine.IO session holds the sockets it
 * has in namespaces (a short singly linked list), the handshake copy while a CONNECT may need
 * it, and a binary packet that is waiting for its attachments. Clients that have not joined a
 * namespace yet wait in a FIFO ordered by deadline (the timeout is the same for all), served by
 * one server-wide timer. Engine.IO closes are queued and handled on the next loop iteration by a
 * uv_idle handle, so application callbacks never run inside an Engine.IO send or close.
 * Broadcast deduplication uses an epoch stamp per socket (no allocation per broadcast). */
#include "sio/server.h"

#include "eio/packet.h"

#include "core/id.h"
#include "core/log.h"
#include "core/map.h"
#include "http/query.h"
#include "sio/rooms.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

typedef struct sio_client sio_client_t;

/* The handshake request's query and headers, copied into one allocation (the bytes follow the
 * header array). */
typedef struct {
    pl_slice_t query;        /* raw query string (not decoded) */
    size_t nheaders;         /* entries in headers */
    http_header_t headers[]; /* as received */
} handshake_t;

struct sio_client {
    sio_server_t *srv;
    eio_socket_t *eio;                   /* the session; NULL once it closed */
    sio_socket_t *sockets;               /* pending and connected sockets, linked by client_next */
    handshake_t *hs;                     /* handshake copy, NULL once dropped */
    sio_packet_t *partial;               /* binary packet awaiting attachments, or NULL */
    char *ip;                            /* remote address text (owned) */
    const char *close_reason;            /* static string: why the session is closing, or NULL */
    sio_client_t *wait_prev, *wait_next; /* connect-timeout FIFO, while waiting */
    sio_client_t *dead_next;             /* queue of closed sessions to tear down */
    uint64_t deadline_ms;                /* loop time when the connect timeout fires */
    uint32_t refs;                       /* the session (until torn down), each socket, guards */
    uint32_t pending;                    /* CONNECTs inside the middleware chain */
    bool closing;                        /* no more input is processed and nothing more is sent */
    bool waiting;                        /* in the connect-timeout FIFO */
};

enum { SOCK_CONNECTING = 0, SOCK_CONNECTED = 1, SOCK_CLOSED = 2 };

/* An ack the server asked a client for (sio_socket_emit_ack). */
typedef struct out_ack {
    struct out_ack *next; /* in the socket's list */
    sio_socket_t *socket; /* borrowed: the socket fails every pending ack before it can go */
    uint64_t id;          /* ack id sent */
    sio_ack_cb cb;
    void *ud;
    bool has_timer; /* timer initialised; then the record is freed in its close cb */
    uv_timer_t timer;
} out_ack_t;

struct sio_socket {
    char id[SIO_ID_LEN + 1]; /* base64url, NUL-terminated; key in nsp->sockets */
    uint8_t state;           /* SOCK_* */
    uint32_t refs;           /* the client's list while pending/connected, plus others' */
    uint32_t stamp;          /* last broadcast epoch that visited this socket */
    sio_client_t *client;    /* a reference */
    sio_nsp_t *nsp;
    sio_socket_t *client_next; /* in client->sockets */
    sio__member_t *rooms;      /* memberships (rooms.h) */
    out_ack_t *acks;           /* pending server-emitted acks */
    void *data;                /* the application's */
};

typedef struct {
    char *name; /* owned */
    sio_event_cb cb;
    void *ud;
} handler_t;

typedef struct {
    sio_middleware_cb cb;
    void *ud;
} middleware_t;

struct sio_nsp {
    sio_server_t *srv;
    sio_nsp_t *next; /* in srv->nsps */
    char *name;      /* owned, NUL-terminated */
    size_t name_len;
    pl_map_t sockets; /* id -> connected sio_socket_t */
    sio__rooms_t rooms;
    middleware_t *mw; /* nmw entries */
    size_t nmw;
    handler_t *handlers; /* nhandlers entries */
    size_t nhandlers;
    sio_event_cb any_cb;
    void *any_ud;
    sio_connection_cb conn_cb;
    void *conn_ud;
    sio_disconnect_cb disc_cb;
    void *disc_ud;
    sio_invalid_cb invalid_cb;
    void *invalid_ud;
    void (*data_free)(void *data);
    uint64_t next_ack_id; /* ids of server-emitted acks, as socket.io's nsp._ids */
};

struct sio_connect {
    sio_socket_t *socket; /* a reference */
    json_t *auth;         /* a reference; an object */
    size_t next;          /* index of the next middleware to run */
};

struct sio_ack {
    sio_socket_t *socket; /* handler's ack: borrowed; taken ack: a reference */
    uint64_t id;
    bool taken; /* heap copy owned by the application */
    bool done;  /* answered, or handed over by sio_ack_take */
};

struct sio_server {
    uv_loop_t *loop;
    eio_server_t *eio; /* NULL once closed */
    sio_options_t opts;
    sio_nsp_t *nsps;
    uv_timer_t connect_timer; /* fires for the head of the wait FIFO */
    uv_idle_t idle;           /* runs the teardown queue */
    sio_client_t *wait_head, *wait_tail;
    sio_client_t *dead_head, *dead_tail;
    uint32_t epoch;      /* broadcast epoch, never 0 while in use */
    size_t sessions;     /* open Engine.IO sessions */
    size_t live_clients; /* client records not freed */
    size_t live_sockets; /* socket records not freed */
    sio_adapter_t adapter;
    void *adapter_ud;
    bool closing, eio_closed, finishing;
    int handles_open;
    void (*close_cb)(void *ud);
    void *close_ud;
};

static const char main_nsp_name[] = "/";

/* ---- small helpers ----------------------------------------------------------------------------
 */

/* jansson constructors for small fixed values: failure is out of memory on a tiny allocation,
 * which we treat like pl_xmalloc does. */
static json_t *xjson(json_t *j) {
    if (!j) {
        pl_log_error("sio.oom", "what=json");
        abort();
    }
    return j;
}

static bool client_open(const sio_client_t *c) {
    return c->eio && !c->closing;
}

static void maybe_finish(sio_server_t *srv);

static void client_unref(sio_client_t *c) {
    assert(c->refs > 0);
    if (--c->refs)
        return;
    sio_server_t *srv = c->srv;
    assert(!c->sockets && !c->eio);
    if (c->partial) {
        sio_packet_dispose(c->partial);
        free(c->partial);
    }
    free(c->hs);
    free(c->ip);
    free(c);
    srv->live_clients--;
    maybe_finish(srv);
}

sio_socket_t *sio_socket_ref(sio_socket_t *s) {
    s->refs++;
    return s;
}

/* Out of line: inlined into callers that hold a reference of their own, GCC -O3's
 * use-after-free analysis cannot see that the count stays above zero there. */
__attribute__((noinline)) static void socket_free(sio_socket_t *s) {
    assert(s->state == SOCK_CLOSED && !s->rooms && !s->acks);
    sio_nsp_t *nsp = s->nsp;
    sio_client_t *c = s->client;
    if (nsp->data_free && s->data)
        nsp->data_free(s->data);
    free(s);
    nsp->srv->live_sockets--;
    client_unref(c);
}

void sio_socket_unref(sio_socket_t *s) {
    assert(s->refs > 0);
    if (--s->refs)
        return;
    socket_free(s);
}

/* Drops the handshake copy when no CONNECT can need it any more. */
static void maybe_drop_handshake(sio_client_t *c) {
    if (c->hs && c->pending == 0 && (!c->srv->opts.keep_handshake || !c->eio)) {
        free(c->hs);
        c->hs = NULL;
    }
}

static handshake_t *handshake_copy(const http_request_t *req) {
    size_t total = sizeof(handshake_t);
    if (req->nheaders > (SIZE_MAX - total) / sizeof(http_header_t))
        return NULL;
    total += req->nheaders * sizeof(http_header_t);
    size_t bytes = req->query.len;
    for (size_t i = 0; i < req->nheaders; i++) {
        size_t n = req->headers[i].name.len + req->headers[i].value.len;
        if (n < req->headers[i].name.len || bytes > SIZE_MAX - n)
            return NULL;
        bytes += n;
    }
    if (bytes > SIZE_MAX - total)
        return NULL;
    handshake_t *hs = malloc(total + bytes);
    if (!hs)
        return NULL;
    char *p = (char *)hs + total;
    hs->nheaders = req->nheaders;
    /* Empty slices keep a valid pointer so that later code never sees NULL. */
    if (req->query.len)
        memcpy(p, req->query.ptr, req->query.len);
    hs->query = pl_slice(p, req->query.len);
    p += req->query.len;
    for (size_t i = 0; i < req->nheaders; i++) {
        const http_header_t *h = &req->headers[i];
        if (h->name.len)
            memcpy(p, h->name.ptr, h->name.len);
        hs->headers[i].name = pl_slice(p, h->name.len);
        p += h->name.len;
        if (h->value.len)
            memcpy(p, h->value.ptr, h->value.len);
        hs->headers[i].value = pl_slice(p, h->value.len);
        p += h->value.len;
    }
    return hs;
}

static const pl_slice_t *handshake_header(const handshake_t *hs, const char *name) {
    if (!hs)
        return NULL;
    for (size_t i = 0; i < hs->nheaders; i++) {
        if (pl_slice_case_eq_cstr(hs->headers[i].name, name))
            return &hs->headers[i].value;
    }
    return NULL;
}

static int handshake_query(const handshake_t *hs, const char *key, pl_buf_t *out) {
    return hs ? http_query_get(hs->query, key, out) : 0;
}

/* The reasons handed to on_disconnect are static strings: map Engine.IO's onto ours. */
static const char *engine_reason(const char *reason) {
    static const char *const known[] = {"transport close", "transport error", "ping timeout",
                                        "parse error",     "forced close",    "server close"};
    for (size_t i = 0; reason && i < sizeof known / sizeof known[0]; i++) {
        if (!strcmp(reason, known[i]))
            return known[i];
    }
    return "transport error";
}

/* ---- connect-timeout FIFO ------------------------------------------------------------------- */

static void connect_timer_cb(uv_timer_t *t);

static void wait_remove(sio_server_t *srv, sio_client_t *c) {
    if (!c->waiting)
        return;
    if (c->wait_prev)
        c->wait_prev->wait_next = c->wait_next;
    else
        srv->wait_head = c->wait_next;
    if (c->wait_next)
        c->wait_next->wait_prev = c->wait_prev;
    else
        srv->wait_tail = c->wait_prev;
    c->wait_prev = c->wait_next = NULL;
    c->waiting = false;
}

static void wait_push(sio_server_t *srv, sio_client_t *c) {
    c->deadline_ms = uv_now(srv->loop) + srv->opts.connect_timeout_ms;
    c->waiting = true;
    c->wait_next = NULL;
    c->wait_prev = srv->wait_tail;
    if (srv->wait_tail)
        srv->wait_tail->wait_next = c;
    else
        srv->wait_head = c;
    srv->wait_tail = c;
    /* Deadlines grow along the FIFO, so a running timer is due no later than this one. */
    if (!uv_is_active((uv_handle_t *)&srv->connect_timer))
        uv_timer_start(&srv->connect_timer, connect_timer_cb, srv->opts.connect_timeout_ms, 0);
}

/* ---- writing -------------------------------------------------------------------------------- */

/* Writes an encoded packet (text, then its attachments) to a client's session. Returns 0,
 * UV_ECANCELED (session closing) or eio_socket_send's error. */
static int client_write(sio_client_t *c, pl_rcbuf_t *text, pl_rcbuf_t *const *att, size_t natt) {
    if (!client_open(c))
        return UV_ECANCELED;
    int rc = eio_socket_send(c->eio, text, false);
    for (size_t i = 0; rc == 0 && i < natt; i++)
        rc = c->eio ? eio_socket_send(c->eio, att[i], true) : UV_ECANCELED;
    return rc;
}

/* Encodes one packet (data and args->bufs borrowed) into shared bytes. */
static int encode(sio_type_t type, pl_slice_t nsp, bool has_id, uint64_t id, json_t *data,
                  const sio_args_t *args, pl_rcbuf_t **text, sio_attachments_t *att) {
    sio_packet_t p;
    sio_packet_init(&p);
    p.type = type;
    p.nsp = nsp;
    p.has_id = has_id;
    p.id = id;
    p.data = data;
    if (args && args->nbufs) {
        p.bufs = args->bufs;
        p.nbufs = args->nbufs;
    }
    return sio_packet_encode_shared(&p, text, att);
}

/* Encodes and writes a packet without attachments (CONNECT, CONNECT_ERROR, DISCONNECT). */
static int client_send_simple(sio_client_t *c, sio_type_t type, pl_slice_t nsp, json_t *data) {
    pl_rcbuf_t *text;
    int rc = encode(type, nsp, false, 0, data, NULL, &text, NULL);
    if (rc)
        return rc;
    rc = client_write(c, text, NULL, 0);
    pl_rcbuf_unref(text);
    return rc;
}

/* [event, ...args] as a new array. */
static int event_data(const char *event, const sio_args_t *args, json_t **out) {
    if (!event || (args && args->args && !json_is_array(args->args)))
        return PL_EINVAL;
    json_t *name = json_string(event); /* NULL for invalid UTF-8 */
    if (!name)
        return PL_EINVAL;
    json_t *data = xjson(json_array());
    if (json_array_append_new(data, name) != 0 ||
        (args && args->args && json_array_extend(data, args->args) != 0)) {
        json_decref(data);
        return PL_ENOMEM;
    }
    *out = data;
    return 0;
}

/* A packet whose arguments come as JSON text (sio_args_t.json): Engine.IO message type, the
 * Socket.IO type, "<nsp>," unless "/", the id, then [event, ...args] or the ack's args. */
static int encode_raw(sio_type_t type, const sio_nsp_t *nsp, const char *event, bool has_id,
                      uint64_t id, const sio_args_t *args, pl_rcbuf_t **text) {
    const char *j = args->json;
    size_t jl = args->json_len;
    if (jl < 2 || j[0] != '[' || j[jl - 1] != ']' || args->args || args->nbufs ||
        (has_id && id > (uint64_t)SIO_MAX_ID))
        return PL_EINVAL;
    size_t el = event ? strlen(event) : 0;
    for (size_t i = 0; i < el; i++)
        if ((unsigned char)event[i] < 0x20 || event[i] == '"' || event[i] == '\\')
            return PL_EINVAL; /* names that would need escaping take the general path */
    pl_buf_t b;
    pl_buf_init(&b, 0);
    char head[2] = {(char)('0' + EIO_MESSAGE), (char)('0' + type)};
    int rc = pl_buf_append(&b, head, 2);
    if (rc == 0 && !(nsp->name_len == 1 && nsp->name[0] == '/')) {
        rc = pl_buf_append(&b, nsp->name, nsp->name_len);
        if (rc == 0)
            rc = pl_buf_append(&b, ",", 1);
    }
    if (rc == 0 && has_id)
        rc = pl_buf_append_u64(&b, id);
    if (rc == 0 && event) {
        rc = pl_buf_append(&b, "[\"", 2);
        if (rc == 0)
            rc = pl_buf_append(&b, event, el);
        if (rc == 0)
            rc = pl_buf_append(&b, jl > 2 ? "\"," : "\"", jl > 2 ? 2 : 1);
    }
    if (rc == 0)
        rc = pl_buf_append(&b, event ? j + 1 : j, event ? jl - 1 : jl);
    if (rc == 0) {
        *text = pl_rcbuf_from(b.data, b.len);
        if (!*text)
            rc = PL_ENOMEM;
    }
    pl_buf_dispose(&b);
    return rc;
}

/* An EVENT for nsp, encoded once. */
static int encode_event(const sio_nsp_t *nsp, const char *event, const sio_args_t *args,
                        bool has_id, uint64_t id, pl_rcbuf_t **text, sio_attachments_t *att) {
    if (args && args->json) {
        if (!event)
            return PL_EINVAL;
        return encode_raw(SIO_EVENT, nsp, event, has_id, id, args, text);
    }
    json_t *data;
    int rc = event_data(event, args, &data);
    if (rc)
        return rc;
    rc = encode(SIO_EVENT, pl_slice(nsp->name, nsp->name_len), has_id, id, data, args, text, att);
    json_decref(data);
    return rc;
}

/* ---- closing -------------------------------------------------------------------------------- */

/* Asks Engine.IO to close the session (queued output is flushed first). */
static void client_close(sio_client_t *c, const char *reason) {
    if (!client_open(c))
        return;
    c->closing = true;
    if (!c->close_reason)
        c->close_reason = reason;
    wait_remove(c->srv, c);
    eio_socket_close(c->eio);
}

static void protocol_error(sio_client_t *c, const char *why) {
    char q[128];
    pl_log_quote(q, sizeof q, why, strlen(why));
    pl_log_info("sio.malformed", "ip=%s reason=%s action=close", c->ip, q);
    if (c->partial) {
        sio_packet_dispose(c->partial);
        free(c->partial);
        c->partial = NULL;
    }
    client_close(c, "parse error");
}

static void client_remove_socket(sio_client_t *c, sio_socket_t *s) {
    for (sio_socket_t **pp = &c->sockets; *pp; pp = &(*pp)->client_next) {
        if (*pp == s) {
            *pp = s->client_next;
            s->client_next = NULL;
            sio_socket_unref(s);
            return;
        }
    }
}

static void out_ack_closed(uv_handle_t *h) {
    free(h->data);
}

static void out_ack_free(out_ack_t *a) {
    if (a->has_timer) {
        uv_timer_stop(&a->timer);
        uv_close((uv_handle_t *)&a->timer, out_ack_closed);
    } else {
        free(a);
    }
}

/* Closes a connected socket: it leaves the namespace, its pending acks fail, the application
 * hears on_disconnect, then it leaves its rooms and the client drops it. */
static void socket_close(sio_socket_t *s, const char *reason) {
    if (s->state != SOCK_CONNECTED)
        return;
    sio_nsp_t *nsp = s->nsp;
    s->state = SOCK_CLOSED;
    pl_map_del(&nsp->sockets, s->id, SIO_ID_LEN);
    sio_socket_ref(s);
    while (s->acks) {
        out_ack_t *a = s->acks;
        s->acks = a->next;
        a->cb(s, UV_ECANCELED, NULL, a->ud);
        out_ack_free(a);
    }
    if (nsp->disc_cb)
        nsp->disc_cb(s, reason, nsp->disc_ud);
    sio__rooms_leave_all(&nsp->rooms, &s->rooms);
    client_remove_socket(s->client, s);
    sio_socket_unref(s);
}

/* Handles a closed session: its connected sockets disconnect, pending ones are released (their
 * sio_connect_t still holds them), then the session's reference goes. */
static void client_teardown(sio_client_t *c) {
    const char *reason = c->close_reason ? c->close_reason : "transport close";
    while (c->sockets) {
        sio_socket_t *s = c->sockets;
        if (s->state == SOCK_CONNECTED) {
            socket_close(s, reason);
        } else {
            s->state = SOCK_CLOSED;
            sio__rooms_leave_all(&s->nsp->rooms, &s->rooms);
            client_remove_socket(c, s);
        }
    }
    client_unref(c);
}

static void idle_cb(uv_idle_t *h) {
    sio_server_t *srv = h->data;
    sio_client_t *c;
    while ((c = srv->dead_head)) {
        srv->dead_head = c->dead_next;
        if (!srv->dead_head)
            srv->dead_tail = NULL;
        c->dead_next = NULL;
        client_teardown(c);
    }
    /* The teardowns may have started closing the server's handles (maybe_finish): the memory
     * stays valid until their close callbacks, and stopping a closing handle is harmless. */
    uv_idle_stop(h);
}

/* ---- connecting ------------------------------------------------------------------------------ */

static sio_nsp_t *find_nsp(const sio_server_t *srv, const char *name, size_t len) {
    for (sio_nsp_t *n = srv->nsps; n; n = n->next) {
        if (n->name_len == len && memcmp(n->name, name, len) == 0)
            return n;
    }
    return NULL;
}

static sio_socket_t *client_socket(const sio_client_t *c, pl_slice_t nsp) {
    for (sio_socket_t *s = c->sockets; s; s = s->client_next) {
        if (s->nsp->name_len == nsp.len && memcmp(s->nsp->name, nsp.ptr, nsp.len) == 0)
            return s;
    }
    return NULL;
}

static sio_socket_t *socket_new(sio_client_t *c, sio_nsp_t *nsp) {
    sio_socket_t *s = pl_xcalloc(1, sizeof *s);
    /* 120 random bits: a clash with a connected id is practically impossible, but cheap to
     * rule out before anyone has seen the id. */
    do
        pl_random_id(s->id, 15);
    while (pl_map_get(&nsp->sockets, s->id, SIO_ID_LEN));
    s->state = SOCK_CONNECTING;
    s->refs = 1; /* the client's list */
    s->client = c;
    c->refs++;
    s->nsp = nsp;
    s->client_next = c->sockets;
    c->sockets = s;
    nsp->srv->live_sockets++;
    return s;
}

/* Consumes a pending connection. */
static void connect_free(sio_connect_t *cn) {
    sio_client_t *c = cn->socket->client;
    assert(c->pending > 0);
    c->pending--;
    maybe_drop_handshake(c);
    json_decref(cn->auth);
    sio_socket_unref(cn->socket);
    free(cn);
}

static bool connect_live(const sio_connect_t *cn) {
    return cn->socket->state == SOCK_CONNECTING && client_open(cn->socket->client);
}

static void connect_refuse(sio_connect_t *cn, const char *message, json_t *data, bool log) {
    sio_socket_t *s = cn->socket;
    sio_client_t *c = s->client;
    if (!connect_live(cn)) {
        json_decref(data);
        connect_free(cn);
        return;
    }
    sio_nsp_t *nsp = s->nsp;
    s->state = SOCK_CLOSED;
    sio__rooms_leave_all(&nsp->rooms, &s->rooms);
    c->refs++;
    client_remove_socket(c, s);

    json_t *body = json_pack("{ss}", "message", message ? message : "");
    if (!body) /* message was not valid UTF-8 */
        body = xjson(json_pack("{ss}", "message", "Connection refused"));
    if (data && json_object_set_new(body, "data", data) != 0)
        pl_log_warn("sio.refuse_data", "dropped=1");
    if (log) {
        char q[128];
        pl_log_quote(q, sizeof q, message ? message : "", message ? strlen(message) : 0);
        pl_log_info("sio.connect_refused", "nsp=%s id=%s ip=%s message=%s", nsp->name, s->id, c->ip,
                    q);
    }
    (void)client_send_simple(c, SIO_CONNECT_ERROR, pl_slice(nsp->name, nsp->name_len), body);
    json_decref(body);
    connect_free(cn);
    /* PROTOCOL.md section 2: a refusal is followed by closing, unless the client still has
     * another namespace. */
    if (!c->sockets)
        client_close(c, "forced server close");
    client_unref(c);
}

/* `40[/nsp,]{"sid":"<id>"}` */
static void send_connect_answer(sio_socket_t *s) {
    json_t *body = xjson(json_pack("{ss}", "sid", s->id));
    (void)client_send_simple(s->client, SIO_CONNECT, pl_slice(s->nsp->name, s->nsp->name_len),
                             body);
    json_decref(body);
}

static void connect_complete(sio_connect_t *cn) {
    sio_socket_t *s = cn->socket;
    sio_client_t *c = s->client;
    sio_nsp_t *nsp = s->nsp;
    if (pl_map_put(&nsp->sockets, s->id, SIO_ID_LEN, s, NULL) != 0) {
        pl_log_error("sio.oom", "what=socket_table nsp=%s", nsp->name);
        connect_refuse(cn, "Internal server error", NULL, false);
        return;
    }
    s->state = SOCK_CONNECTED;
    s->stamp = 0;
    wait_remove(c->srv, c);
    send_connect_answer(s);
    sio_socket_ref(s);
    connect_free(cn);
    pl_log_debug("sio.connect", "nsp=%s id=%s ip=%s", nsp->name, s->id, c->ip);
    if (nsp->conn_cb && s->state == SOCK_CONNECTED)
        nsp->conn_cb(s, nsp->conn_ud);
    sio_socket_unref(s);
}

void sio_connect_accept(sio_connect_t *cn) {
    if (!connect_live(cn)) {
        connect_free(cn);
        return;
    }
    sio_nsp_t *nsp = cn->socket->nsp;
    if (cn->next < nsp->nmw) {
        const middleware_t *m = &nsp->mw[cn->next++];
        m->cb(cn, m->ud);
        return;
    }
    connect_complete(cn);
}

void sio_connect_refuse(sio_connect_t *cn, const char *message) {
    connect_refuse(cn, message, NULL, true);
}

void sio_connect_refuse_data(sio_connect_t *cn, const char *message, json_t *data) {
    connect_refuse(cn, message, data, true);
}

static void do_connect(sio_client_t *c, sio_packet_t *p) {
    sio_server_t *srv = c->srv;
    sio_nsp_t *nsp = find_nsp(srv, p->nsp.ptr, p->nsp.len);
    if (!nsp) {
        char q[96];
        pl_log_quote(q, sizeof q, p->nsp.ptr, p->nsp.len);
        pl_log_info("sio.connect_refused", "nsp=%s ip=%s message=\"Invalid namespace\"", q, c->ip);
        json_t *body = xjson(json_pack("{ss}", "message", "Invalid namespace"));
        (void)client_send_simple(c, SIO_CONNECT_ERROR, p->nsp, body);
        json_decref(body);
        if (!c->sockets)
            client_close(c, "forced server close");
        return;
    }
    sio_connect_t *cn = pl_xmalloc(sizeof *cn);
    cn->socket = sio_socket_ref(socket_new(c, nsp));
    cn->auth = p->data ? json_incref(p->data) : xjson(json_object());
    cn->next = 0;
    c->pending++;
    sio_connect_accept(cn);
}

/* ---- receiving ------------------------------------------------------------------------------- */

static const handler_t *find_handler(const sio_nsp_t *nsp, const char *event) {
    for (size_t i = 0; i < nsp->nhandlers; i++) {
        if (!strcmp(nsp->handlers[i].name, event))
            return &nsp->handlers[i];
    }
    return NULL;
}

static void on_event(sio_socket_t *s, sio_packet_t *p) {
    sio_nsp_t *nsp = s->nsp;
    /* The decoder guarantees a non-empty array whose first element is a string. Turning the
     * packet's own array into the argument list saves an allocation. */
    json_t *name = json_incref(json_array_get(p->data, 0));
    json_array_remove(p->data, 0);
    const char *event = json_string_value(name);
    const handler_t *h = find_handler(nsp, event);
    sio_event_cb cb = h ? h->cb : nsp->any_cb;
    void *ud = h ? h->ud : nsp->any_ud;
    if (cb) {
        sio_args_t args = {.args = p->data, .bufs = p->bufs, .nbufs = p->nbufs};
        sio_ack_t ack = {.socket = s, .id = p->id};
        sio_socket_ref(s);
        cb(s, event, &args, p->has_id ? &ack : NULL, ud);
        sio_socket_unref(s);
    }
    json_decref(name);
}

static void on_ack(sio_socket_t *s, sio_packet_t *p) {
    for (out_ack_t **pp = &s->acks; *pp; pp = &(*pp)->next) {
        out_ack_t *a = *pp;
        if (a->id != p->id)
            continue;
        *pp = a->next;
        sio_args_t args = {.args = p->data, .bufs = p->bufs, .nbufs = p->nbufs};
        sio_socket_ref(s);
        a->cb(s, 0, &args, a->ud);
        sio_socket_unref(s);
        out_ack_free(a);
        return;
    }
    /* Late (timed out) or unknown: ignored, as socket.io does. */
}

static void dispatch(sio_client_t *c, sio_packet_t *p) {
    sio_socket_t *s = client_socket(c, p->nsp);
    switch (p->type) {
    case SIO_CONNECT:
        /* socket.io-client sends CONNECT again when connect() is called on a socket that is
         * already connecting: a pending one answers once, a connected one is answered again. */
        if (!s)
            do_connect(c, p);
        else if (s->state == SOCK_CONNECTED)
            send_connect_answer(s);
        return;
    case SIO_CONNECT_ERROR:
        protocol_error(c, "CONNECT_ERROR sent by a client");
        return;
    default:
        break;
    }
    if (!s || s->state != SOCK_CONNECTED) {
        protocol_error(c, "packet for a namespace not joined");
        return;
    }
    switch (p->type) {
    case SIO_EVENT:
    case SIO_BINARY_EVENT:
        on_event(s, p);
        break;
    case SIO_ACK:
    case SIO_BINARY_ACK:
        on_ack(s, p);
        break;
    case SIO_DISCONNECT:
        socket_close(s, "client namespace disconnect");
        break;
    default:
        break;
    }
}

/* A well-framed EVENT whose arguments are not acceptable JSON (SIO_EPAYLOAD): p->data is just
 * the event name. The namespace's invalid-event handler refuses it and the session stays;
 * without one it is a malformed packet. */
static void on_invalid_event(sio_client_t *c, sio_packet_t *p) {
    const char *why = p->error ? p->error : "invalid JSON payload";
    sio_socket_t *s = client_socket(c, p->nsp);
    if (!s || s->state != SOCK_CONNECTED || !s->nsp->invalid_cb) {
        protocol_error(c, why);
        return;
    }
    const char *event = json_string_value(p->data);
    char q[96];
    pl_log_quote(q, sizeof q, event, strlen(event));
    pl_log_info("sio.invalid_payload", "nsp=%s id=%s event=%s reason=\"%s\"", s->nsp->name, s->id,
                q, why);
    sio_ack_t ack = {.socket = s, .id = p->id};
    sio_socket_ref(s);
    s->nsp->invalid_cb(s, event, why, p->has_id ? &ack : NULL, s->nsp->invalid_ud);
    sio_socket_unref(s);
}

static void handle_text(sio_client_t *c, const char *data, size_t len) {
    if (c->partial) {
        protocol_error(c, "text packet while attachments are awaited");
        return;
    }
    sio_packet_t p;
    int rc = sio_packet_decode(&p, data, len, &c->srv->opts.limits);
    if (rc == SIO_EPAYLOAD) {
        on_invalid_event(c, &p);
        sio_packet_dispose(&p);
        return;
    }
    if (rc) {
        const char *why = p.error ? p.error : pl_strerror(rc);
        sio_packet_dispose(&p); /* nothing is held after a failure; this is belt and braces */
        protocol_error(c, why);
        return;
    }
    if (!sio_packet_complete(&p)) {
        c->partial = pl_xmalloc(sizeof p);
        *c->partial = p; /* moved: the packet's pointers are to the heap, not to itself */
        return;
    }
    dispatch(c, &p);
    sio_packet_dispose(&p);
}

static void handle_binary(sio_client_t *c, const char *data, size_t len) {
    if (!c->partial) {
        protocol_error(c, "binary message without a binary packet");
        return;
    }
    int rc = sio_packet_add_attachment(c->partial, data, len, &c->srv->opts.limits);
    if (rc) {
        protocol_error(c, rc == PL_ETOOBIG ? "attachments too large" : pl_strerror(rc));
        return;
    }
    if (!sio_packet_complete(c->partial))
        return;
    sio_packet_t *p = c->partial;
    c->partial = NULL;
    dispatch(c, p);
    sio_packet_dispose(p);
    free(p);
}

/* ---- Engine.IO callbacks --------------------------------------------------------------------- */

static int on_open(eio_socket_t *e, http_request_t *req, void *ud) {
    sio_server_t *srv = ud;
    if (srv->closing)
        return -1;
    handshake_t *hs = handshake_copy(req);
    if (!hs)
        return PL_ENOMEM;
    sio_client_t *c = pl_xcalloc(1, sizeof *c);
    const char *ip = eio_socket_remote_ip(e);
    c->srv = srv;
    c->eio = e;
    c->hs = hs;
    c->ip = pl_xstrdup(ip ? ip : "");
    c->refs = 1; /* the session's, dropped at teardown */
    srv->live_clients++;
    srv->sessions++;
    eio_socket_set_data(e, c);
    wait_push(srv, c);
    return 0;
}

static void on_message(eio_socket_t *e, const char *data, size_t len, bool binary, void *ud) {
    (void)ud;
    sio_client_t *c = eio_socket_data(e);
    if (!c || !client_open(c))
        return;
    c->refs++;
    if (binary)
        handle_binary(c, data, len);
    else
        handle_text(c, data, len);
    client_unref(c);
}

static void on_close(eio_socket_t *e, const char *reason, void *ud) {
    sio_server_t *srv = ud;
    sio_client_t *c = eio_socket_data(e);
    if (!c)
        return;
    eio_socket_set_data(e, NULL);
    c->eio = NULL;
    c->closing = true;
    srv->sessions--;
    if (!c->close_reason)
        c->close_reason = srv->closing ? "server shutting down" : engine_reason(reason);
    wait_remove(srv, c);
    if (c->partial) {
        sio_packet_dispose(c->partial);
        free(c->partial);
        c->partial = NULL;
    }
    maybe_drop_handshake(c);
    /* Application callbacks for this close run on the next loop iteration, outside whatever
     * Engine.IO call led here. The queue holds the session's reference. */
    if (srv->dead_tail)
        srv->dead_tail->dead_next = c;
    else
        srv->dead_head = c;
    srv->dead_tail = c;
    uv_idle_start(&srv->idle, idle_cb);
}

static void connect_timer_cb(uv_timer_t *t) {
    sio_server_t *srv = t->data;
    uint64_t now = uv_now(srv->loop);
    sio_client_t *c;
    while ((c = srv->wait_head) && c->deadline_ms <= now) {
        wait_remove(srv, c);
        pl_log_info("sio.connect_timeout", "ip=%s timeout_ms=%u action=close", c->ip,
                    srv->opts.connect_timeout_ms);
        client_close(c, "forced server close");
    }
    if (srv->wait_head)
        uv_timer_start(t, connect_timer_cb, srv->wait_head->deadline_ms - now, 0);
}

/* ---- server ---------------------------------------------------------------------------------- */

void sio_options_default(sio_options_t *o) {
    memset(o, 0, sizeof *o);
    eio_options_default(&o->eio);
    o->connect_timeout_ms = SIO_DEFAULT_CONNECT_TIMEOUT_MS;
}

sio_server_t *sio_server_new(uv_loop_t *loop, const sio_options_t *opts) {
    sio_server_t *srv = pl_xcalloc(1, sizeof *srv);
    srv->loop = loop;
    if (opts)
        srv->opts = *opts;
    else
        sio_options_default(&srv->opts);
    /* A packet's text and its attachments together are held to one Engine.IO message's
     * worth by default: a partial binary packet is per-connection memory. */
    if (!srv->opts.limits.max_packet)
        srv->opts.limits.max_packet = srv->opts.eio.max_payload;
    if (!srv->opts.limits.max_binary)
        srv->opts.limits.max_binary = srv->opts.eio.max_payload;
    srv->epoch = 1;
    eio_callbacks_t cbs = {.on_open = on_open, .on_message = on_message, .on_close = on_close};
    srv->eio = eio_server_new(loop, &srv->opts.eio, &cbs, srv);
    if (!srv->eio) {
        free(srv);
        return NULL;
    }
    uv_timer_init(loop, &srv->connect_timer);
    uv_idle_init(loop, &srv->idle);
    srv->connect_timer.data = srv->idle.data = srv;
    srv->handles_open = 2;
    sio_server_of(srv, main_nsp_name);
    return srv;
}

static void nsp_free(sio_nsp_t *nsp) {
    sio__rooms_dispose(&nsp->rooms);
    pl_map_dispose(&nsp->sockets);
    for (size_t i = 0; i < nsp->nhandlers; i++)
        free(nsp->handlers[i].name);
    free(nsp->handlers);
    free(nsp->mw);
    free(nsp->name);
    free(nsp);
}

static void handle_closed(uv_handle_t *h) {
    sio_server_t *srv = h->data;
    if (--srv->handles_open > 0)
        return;
    while (srv->nsps) {
        sio_nsp_t *n = srv->nsps;
        srv->nsps = n->next;
        nsp_free(n);
    }
    void (*cb)(void *) = srv->close_cb;
    void *ud = srv->close_ud;
    free(srv);
    if (cb)
        cb(ud);
}

/* Frees the server once it is closing and nothing refers to it any more. The free itself
 * happens in the handles' close callbacks, a safe point. */
static void maybe_finish(sio_server_t *srv) {
    if (!srv->closing || srv->finishing || !srv->eio_closed || srv->live_clients ||
        srv->live_sockets)
        return;
    srv->finishing = true;
    uv_close((uv_handle_t *)&srv->connect_timer, handle_closed);
    uv_close((uv_handle_t *)&srv->idle, handle_closed);
}

static void eio_closed_cb(void *ud) {
    sio_server_t *srv = ud;
    srv->eio = NULL;
    srv->eio_closed = true;
    maybe_finish(srv);
}

void sio_server_close(sio_server_t *srv, void (*cb)(void *ud), void *ud) {
    assert(!srv->closing);
    srv->closing = true;
    srv->close_cb = cb;
    srv->close_ud = ud;
    uv_timer_stop(&srv->connect_timer);
    if (srv->adapter.close)
        srv->adapter.close(srv->adapter_ud);
    /* Every session's on_close follows (now or later), and with it on_disconnect("server
     * shutting down") for its sockets. */
    eio_server_close(srv->eio, eio_closed_cb, srv);
}

void sio_server_handle(http_request_t *req, void *ud) {
    sio_server_t *srv = ud;
    if (!srv->eio) {
        http_respond_error(req, 503, "Server shutting down");
        return;
    }
    eio_server_handle(req, srv->eio);
}

eio_server_t *sio_server_engine(sio_server_t *srv) {
    return srv->eio;
}

uv_loop_t *sio_server_loop(const sio_server_t *srv) {
    return srv->loop;
}

size_t sio_server_client_count(const sio_server_t *srv) {
    return srv->sessions;
}

void sio_server_set_adapter(sio_server_t *srv, const sio_adapter_t *ops, void *ud) {
    if (ops)
        srv->adapter = *ops;
    else
        memset(&srv->adapter, 0, sizeof srv->adapter);
    srv->adapter_ud = ud;
}

/* ---- namespaces ------------------------------------------------------------------------------ */

static bool nsp_name_valid(const char *name, size_t len) {
    if (len == 0 || len > SIO_DEFAULT_MAX_NSP || name[0] != '/')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch < 0x20 || ch == 0x7f || ch == ',')
            return false;
    }
    return pl_utf8_valid(name, len);
}

sio_nsp_t *sio_server_of(sio_server_t *srv, const char *name) {
    size_t len = name ? strlen(name) : 0;
    if (!nsp_name_valid(name, len))
        return NULL;
    sio_nsp_t *nsp = find_nsp(srv, name, len);
    if (nsp)
        return nsp;
    nsp = pl_xcalloc(1, sizeof *nsp);
    nsp->srv = srv;
    nsp->name = pl_xstrdup(name);
    nsp->name_len = len;
    pl_map_init(&nsp->sockets);
    sio__rooms_init(&nsp->rooms);
    nsp->next = srv->nsps;
    srv->nsps = nsp;
    return nsp;
}

sio_nsp_t *sio_server_nsp(const sio_server_t *srv, const char *name) {
    return name ? find_nsp(srv, name, strlen(name)) : NULL;
}

const char *sio_nsp_name(const sio_nsp_t *nsp) {
    return nsp->name;
}

sio_server_t *sio_nsp_server(const sio_nsp_t *nsp) {
    return nsp->srv;
}

size_t sio_nsp_socket_count(const sio_nsp_t *nsp) {
    return pl_map_count(&nsp->sockets);
}

sio_socket_t *sio_nsp_socket(const sio_nsp_t *nsp, const char *id) {
    return id ? pl_map_get(&nsp->sockets, id, strlen(id)) : NULL;
}

size_t sio_nsp_room_size(const sio_nsp_t *nsp, const char *room) {
    sio__room_t *r = sio__rooms_find(&nsp->rooms, room, strlen(room));
    return r ? r->size : 0;
}

void sio_nsp_use(sio_nsp_t *nsp, sio_middleware_cb cb, void *ud) {
    middleware_t *mw = realloc(nsp->mw, (nsp->nmw + 1) * sizeof *mw);
    if (!mw)
        abort();
    mw[nsp->nmw++] = (middleware_t){cb, ud};
    nsp->mw = mw;
}

void sio_nsp_on_connection(sio_nsp_t *nsp, sio_connection_cb cb, void *ud) {
    nsp->conn_cb = cb;
    nsp->conn_ud = ud;
}

int sio_nsp_on(sio_nsp_t *nsp, const char *event, sio_event_cb cb, void *ud) {
    if (!event || sio_event_reserved(event, strlen(event)))
        return PL_EINVAL;
    for (size_t i = 0; i < nsp->nhandlers; i++) {
        if (strcmp(nsp->handlers[i].name, event) != 0)
            continue;
        if (cb) {
            nsp->handlers[i].cb = cb;
            nsp->handlers[i].ud = ud;
        } else {
            free(nsp->handlers[i].name);
            nsp->handlers[i] = nsp->handlers[--nsp->nhandlers];
        }
        return 0;
    }
    if (!cb)
        return 0;
    handler_t *hs = realloc(nsp->handlers, (nsp->nhandlers + 1) * sizeof *hs);
    if (!hs)
        abort();
    hs[nsp->nhandlers++] = (handler_t){pl_xstrdup(event), cb, ud};
    nsp->handlers = hs;
    return 0;
}

void sio_nsp_on_any(sio_nsp_t *nsp, sio_event_cb cb, void *ud) {
    nsp->any_cb = cb;
    nsp->any_ud = ud;
}

void sio_nsp_on_invalid(sio_nsp_t *nsp, sio_invalid_cb cb, void *ud) {
    nsp->invalid_cb = cb;
    nsp->invalid_ud = ud;
}

void sio_nsp_on_disconnect(sio_nsp_t *nsp, sio_disconnect_cb cb, void *ud) {
    nsp->disc_cb = cb;
    nsp->disc_ud = ud;
}

void sio_nsp_on_data_free(sio_nsp_t *nsp, void (*cb)(void *data)) {
    nsp->data_free = cb;
}

/* ---- arguments and pending connections ------------------------------------------------------- */

size_t sio_args_count(const sio_args_t *a) {
    return a && a->args ? json_array_size(a->args) : 0;
}

json_t *sio_args_get(const sio_args_t *a, size_t i) {
    return a && a->args ? json_array_get(a->args, i) : NULL;
}

pl_rcbuf_t *sio_args_binary(const sio_args_t *a, const json_t *node) {
    size_t num;
    if (!a || !sio_placeholder_num(node, &num) || num >= a->nbufs)
        return NULL;
    return a->bufs[num];
}

sio_socket_t *sio_connect_socket(const sio_connect_t *c) {
    return c->socket;
}

sio_nsp_t *sio_connect_nsp(const sio_connect_t *c) {
    return c->socket->nsp;
}

json_t *sio_connect_auth(const sio_connect_t *c) {
    return c->auth;
}

const char *sio_connect_remote_ip(const sio_connect_t *c) {
    return c->socket->client->ip;
}

const pl_slice_t *sio_connect_header(const sio_connect_t *c, const char *name) {
    return handshake_header(c->socket->client->hs, name);
}

int sio_connect_query(const sio_connect_t *c, const char *key, pl_buf_t *out) {
    return handshake_query(c->socket->client->hs, key, out);
}

bool sio_connect_alive(const sio_connect_t *c) {
    return connect_live(c);
}

/* ---- sockets --------------------------------------------------------------------------------- */

const char *sio_socket_id(const sio_socket_t *s) {
    return s->id;
}

sio_nsp_t *sio_socket_nsp(const sio_socket_t *s) {
    return s->nsp;
}

bool sio_socket_connected(const sio_socket_t *s) {
    return s->state == SOCK_CONNECTED && client_open(s->client);
}

const char *sio_socket_remote_ip(const sio_socket_t *s) {
    return s->client->ip;
}

const char *sio_socket_transport(const sio_socket_t *s) {
    return s->client->eio ? eio_socket_transport(s->client->eio) : "";
}

const pl_slice_t *sio_socket_header(const sio_socket_t *s, const char *name) {
    return handshake_header(s->client->hs, name);
}

int sio_socket_query(const sio_socket_t *s, const char *key, pl_buf_t *out) {
    return handshake_query(s->client->hs, key, out);
}

void sio_socket_set_data(sio_socket_t *s, void *data) {
    s->data = data;
}

void *sio_socket_data(const sio_socket_t *s) {
    return s->data;
}

static int socket_emit(sio_socket_t *s, const char *event, const sio_args_t *args, bool has_id,
                       uint64_t id) {
    if (!sio_socket_connected(s))
        return UV_ECANCELED;
    pl_rcbuf_t *text;
    sio_attachments_t att;
    sio_attachments_init(&att);
    int rc = encode_event(s->nsp, event, args, has_id, id, &text, &att);
    if (rc)
        return rc;
    rc = client_write(s->client, text, att.bufs, att.count);
    pl_rcbuf_unref(text);
    sio_attachments_dispose(&att);
    return rc;
}

int sio_socket_emit(sio_socket_t *s, const char *event, const sio_args_t *args) {
    return socket_emit(s, event, args, false, 0);
}

static void out_ack_timeout(uv_timer_t *t) {
    out_ack_t *a = t->data;
    sio_socket_t *s = a->socket;
    for (out_ack_t **pp = &s->acks; *pp; pp = &(*pp)->next) {
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    }
    sio_socket_ref(s);
    a->cb(s, UV_ETIMEDOUT, NULL, a->ud);
    sio_socket_unref(s);
    out_ack_free(a);
}

int sio_socket_emit_ack(sio_socket_t *s, const char *event, const sio_args_t *args,
                        uint32_t timeout_ms, sio_ack_cb cb, void *ud) {
    if (!cb)
        return PL_EINVAL;
    uint64_t id = s->nsp->next_ack_id;
    int rc = socket_emit(s, event, args, true, id);
    if (rc)
        return rc;
    s->nsp->next_ack_id++;
    out_ack_t *a = pl_xcalloc(1, sizeof *a);
    a->socket = s;
    a->id = id;
    a->cb = cb;
    a->ud = ud;
    a->next = s->acks;
    s->acks = a;
    if (timeout_ms) {
        uv_timer_init(s->nsp->srv->loop, &a->timer);
        a->timer.data = a;
        a->has_timer = true;
        uv_timer_start(&a->timer, out_ack_timeout, timeout_ms, 0);
    }
    return 0;
}

static void send_disconnect(sio_socket_t *s) {
    (void)client_send_simple(s->client, SIO_DISCONNECT, pl_slice(s->nsp->name, s->nsp->name_len),
                             NULL);
}

void sio_socket_disconnect(sio_socket_t *s, bool close_session) {
    sio_client_t *c = s->client;
    c->refs++;
    if (close_session) {
        /* As socket.io's Client._disconnect: every namespace gets DISCONNECT, then the
         * session closes. Restart from the head each time: callbacks may change the list. */
        for (;;) {
            sio_socket_t *x = c->sockets;
            while (x && x->state != SOCK_CONNECTED)
                x = x->client_next;
            if (!x)
                break;
            send_disconnect(x);
            socket_close(x, "server namespace disconnect");
        }
        client_close(c, "forced server close");
    } else if (s->state == SOCK_CONNECTED) {
        send_disconnect(s);
        socket_close(s, "server namespace disconnect");
    }
    client_unref(c);
}

int sio_socket_join(sio_socket_t *s, const char *room) {
    if (s->state == SOCK_CLOSED)
        return UV_ECANCELED;
    int rc = sio__rooms_join(&s->nsp->rooms, &s->rooms, s, room, strlen(room));
    return rc == 1 ? 0 : rc;
}

bool sio_socket_leave(sio_socket_t *s, const char *room) {
    return sio__rooms_leave(&s->nsp->rooms, &s->rooms, s, room, strlen(room));
}

bool sio_socket_in(const sio_socket_t *s, const char *room) {
    return sio__rooms_contains(&s->nsp->rooms, s, room, strlen(room));
}

const char *sio_socket_rooms_next(const sio_socket_t *s, void **cursor) {
    sio__member_t *m = *cursor ? ((sio__member_t *)*cursor)->own_next : s->rooms;
    *cursor = m;
    return m ? m->key.room->name : NULL;
}

/* ---- acks from the application --------------------------------------------------------------- */

sio_ack_t *sio_ack_take(sio_ack_t *ack) {
    if (!ack || ack->taken || ack->done)
        return NULL;
    sio_ack_t *own = pl_xmalloc(sizeof *own);
    *own = *ack;
    own->taken = true;
    sio_socket_ref(own->socket);
    ack->done = true;
    return own;
}

int sio_ack_send(sio_ack_t *ack, const sio_args_t *args) {
    sio_socket_t *s = ack->socket;
    int rc;
    if (ack->done) {
        rc = UV_EALREADY;
    } else if (!sio_socket_connected(s)) {
        rc = UV_ECANCELED;
        ack->done = true;
    } else if (args && args->args && !json_is_array(args->args)) {
        rc = PL_EINVAL;
    } else if (args && args->json) {
        pl_rcbuf_t *text;
        rc = encode_raw(SIO_ACK, s->nsp, NULL, true, ack->id, args, &text);
        if (rc == 0) {
            ack->done = true;
            rc = client_write(s->client, text, NULL, 0);
            pl_rcbuf_unref(text);
        }
    } else {
        json_t *data = args && args->args ? json_incref(args->args) : xjson(json_array());
        pl_rcbuf_t *text;
        sio_attachments_t att;
        sio_attachments_init(&att);
        rc = encode(SIO_ACK, pl_slice(s->nsp->name, s->nsp->name_len), true, ack->id, data, args,
                    &text, &att);
        json_decref(data);
        if (rc == 0) {
            ack->done = true;
            rc = client_write(s->client, text, att.bufs, att.count);
            pl_rcbuf_unref(text);
            sio_attachments_dispose(&att);
        }
    }
    if (ack->taken) {
        sio_socket_unref(s);
        free(ack);
    }
    return rc;
}

void sio_ack_free(sio_ack_t *ack) {
    if (!ack || !ack->taken)
        return;
    sio_socket_unref(ack->socket);
    free(ack);
}

/* ---- broadcasts ------------------------------------------------------------------------------ */

static uint32_t next_epoch(sio_server_t *srv) {
    if (++srv->epoch == 0) {
        /* Wrapped after 2^32 broadcasts: clear every stamp so none equals a new epoch. */
        for (sio_nsp_t *n = srv->nsps; n; n = n->next) {
            size_t i = 0;
            const pl_map_slot_t *slot;
            while (pl_map_next(&n->sockets, &i, &slot))
                ((sio_socket_t *)slot->value)->stamp = 0;
        }
        srv->epoch = 1;
    }
    return srv->epoch;
}

/* Stamps every socket designated by name (room members, or the socket with that id). */
static void mark_name(sio_nsp_t *nsp, const char *name, uint32_t epoch) {
    size_t len = strlen(name);
    sio__room_t *room = sio__rooms_find(&nsp->rooms, name, len);
    for (sio__member_t *m = room ? room->members : NULL; m; m = m->room_next)
        ((sio_socket_t *)m->key.owner)->stamp = epoch;
    sio_socket_t *s = pl_map_get(&nsp->sockets, name, len);
    if (s)
        s->stamp = epoch;
}

static size_t visit(sio_socket_t *s, uint32_t epoch, pl_rcbuf_t *text, pl_rcbuf_t *const *att,
                    size_t natt) {
    if (s->stamp == epoch)
        return 0;
    s->stamp = epoch;
    if (s->state != SOCK_CONNECTED)
        return 0;
    return client_write(s->client, text, att, natt) == 0;
}

/* Writes the encoded packet to the local sockets of the target. No application code runs in
 * here (Engine.IO closes are deferred), so the tables cannot change while they are walked. */
static size_t deliver(sio_nsp_t *nsp, const sio_target_t *to, pl_rcbuf_t *text,
                      pl_rcbuf_t *const *att, size_t natt) {
    uint32_t epoch = next_epoch(nsp->srv);
    size_t n = 0;
    for (size_t i = 0; to && i < to->nexcept; i++)
        mark_name(nsp, to->except[i], epoch);
    if (!to || to->nrooms == 0) {
        size_t i = 0;
        const pl_map_slot_t *slot;
        while (pl_map_next(&nsp->sockets, &i, &slot))
            n += visit(slot->value, epoch, text, att, natt);
        return n;
    }
    for (size_t r = 0; r < to->nrooms; r++) {
        size_t len = strlen(to->rooms[r]);
        sio__room_t *room = sio__rooms_find(&nsp->rooms, to->rooms[r], len);
        for (sio__member_t *m = room ? room->members : NULL; m; m = m->room_next)
            n += visit(m->key.owner, epoch, text, att, natt);
        sio_socket_t *s = pl_map_get(&nsp->sockets, to->rooms[r], len);
        if (s)
            n += visit(s, epoch, text, att, natt);
    }
    return n;
}

static void forward(sio_nsp_t *nsp, const sio_target_t *to, pl_rcbuf_t *text,
                    const sio_attachments_t *att) {
    sio_server_t *srv = nsp->srv;
    if (!srv->adapter.broadcast || (to && to->local))
        return;
    static const sio_target_t everyone = {0};
    int rc = srv->adapter.broadcast(srv->adapter_ud, nsp->name, to ? to : &everyone, text,
                                    att->bufs, att->count);
    if (rc)
        pl_log_warn("sio.adapter_broadcast", "nsp=%s error=%s", nsp->name, pl_strerror(rc));
}

int sio_nsp_emit(sio_nsp_t *nsp, const sio_target_t *to, const char *event,
                 const sio_args_t *args) {
    pl_rcbuf_t *text;
    sio_attachments_t att;
    sio_attachments_init(&att);
    int rc = encode_event(nsp, event, args, false, 0, &text, &att);
    if (rc)
        return rc;
    size_t n = deliver(nsp, to, text, att.bufs, att.count);
    forward(nsp, to, text, &att);
    pl_rcbuf_unref(text);
    sio_attachments_dispose(&att);
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

int sio_nsp_emit_to(sio_nsp_t *nsp, const char *socket_id, const char *event,
                    const sio_args_t *args) {
    sio_socket_t *s = sio_nsp_socket(nsp, socket_id);
    if (s) {
        int rc = sio_socket_emit(s, event, args);
        return rc ? rc : 1;
    }
    pl_rcbuf_t *text;
    sio_attachments_t att;
    sio_attachments_init(&att);
    int rc = encode_event(nsp, event, args, false, 0, &text, &att);
    if (rc)
        return rc;
    const char *rooms[1] = {socket_id};
    sio_target_t to = {.rooms = rooms, .nrooms = 1};
    forward(nsp, &to, text, &att);
    pl_rcbuf_unref(text);
    sio_attachments_dispose(&att);
    return 0;
}

int sio_server_deliver_remote(sio_server_t *srv, const char *nsp_name, const sio_target_t *to,
                              pl_rcbuf_t *text, pl_rcbuf_t *const *att, size_t natt) {
    sio_nsp_t *nsp = nsp_name ? find_nsp(srv, nsp_name, strlen(nsp_name)) : NULL;
    if (!nsp || !text)
        return PL_EINVAL;
    size_t n = deliver(nsp, to, text, att, natt);
    return n > INT32_MAX ? INT32_MAX : (int)n;
}
