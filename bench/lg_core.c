/* The load client's connections and its client side of RFC 6455 (opening handshake, section
 * 4.1), Engine.IO v4 (open, ping/pong, message, close) and Socket.IO v5 (CONNECT, EVENT, ACK,
 * CONNECT_ERROR, DISCONNECT): see lg.h for the life of a connection and the threading. */
#include "lg.h"

#include "core/id.h"
#include "core/log.h"
#include "lg_ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define LG_HTTP_MAX 8192      /* bytes of upgrade response we wait for at most */
#define LG_OUT_MAX (8u << 20) /* pending output per connection before it is dropped */
#define LG_TICK_MS 10         /* period of the housekeeping timer */
#define LG_NONE UINT32_MAX    /* end of the pending list */
#define LG_WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

typedef enum {
    LG_CONN_IDLE = 0, /* not started */
    LG_CONN_TCP,      /* TCP connect in progress */
    LG_CONN_UPGRADE,  /* upgrade request sent, waiting for 101 */
    LG_CONN_EIO,      /* WebSocket open, waiting for the Engine.IO open packet */
    LG_CONN_SIO,      /* Socket.IO CONNECT sent, waiting for its answer */
    LG_CONN_READY,    /* connected to the namespace */
    LG_CONN_CLOSING,  /* uv_close called, close callback pending */
    LG_CONN_CLOSED    /* handle closed, buffers freed */
} lg_conn_state_t;

struct lg_conn {
    uv_tcp_t tcp; /* the socket; tcp.data points back here */
    union {
        uv_connect_t connect; /* while LG_CONN_TCP */
        uv_write_t write;     /* while writing (after LG_CONN_TCP) */
    } req;
    lg_t *lg;            /* owner */
    uint32_t index;      /* position in lg->conns */
    uint32_t prev, next; /* neighbours in the pending list (indexes), while not yet READY */
    uint8_t state;       /* lg_conn_state_t */
    bool in_read;        /* inside on_read: output is flushed when it returns */
    bool writing;        /* req.write in flight with wdata */
    bool in_pending;     /* member of the pending list */
    uint64_t start_ns;   /* when the TCP connect began (uv_hrtime) */
    pl_buf_t in;         /* received bytes not yet parsed (partial frame or HTTP head) */
    pl_buf_t frag;       /* fragments of a message being reassembled */
    pl_buf_t out;        /* frames staged for writing */
    char *wdata;         /* bytes of the write in flight (owned) */
    unsigned frag_op;    /* opcode of the message in frag, 0 when none */
};

struct lg {
    uv_loop_t *loop;        /* borrowed */
    lg_options_t o;         /* copied; strings borrowed */
    lg_handlers_t h;        /* copied */
    void *ud;               /* the scenario's */
    lg_conn_t *conns;       /* max_clients connections */
    uint32_t max_clients;   /* size of conns */
    uint32_t target;        /* connections requested by lg_open() so far */
    uint32_t concurrency;   /* most connections between start and READY at once */
    uint32_t pending;       /* connections between start and READY now */
    uint32_t pend_head;     /* oldest pending connection (LG_NONE if none) */
    uint32_t pend_tail;     /* newest pending connection */
    bool pumping;           /* inside pump(): no re-entry */
    lg_counts_t counts;     /* see lg.h */
    lg_hist_t connect_ns;   /* connect latency of READY connections */
    char first_error[160];  /* the first failure or drop, for the report */
    char nsp_prefix[128];   /* "" for "/", else "<nsp>," as it prefixes packets */
    size_t nsp_prefix_len;  /* bytes of nsp_prefix */
    struct sockaddr_in dst; /* server address */
    uv_timer_t tick;        /* housekeeping: handshake timeouts and waking lg_run_until */
    lg_rng_t rng;           /* masking keys */
};

/* A shared receive buffer: reads are handled completely inside on_read (left-over bytes are
 * copied into the connection), so one buffer serves every connection on this thread. */
static char read_buf[64 * 1024];

static void conn_end(lg_conn_t *c, const char *reason, bool error);
static void conn_flush(lg_conn_t *c);
static void pump(lg_t *lg);

void lg_options_default(lg_options_t *o) {
    memset(o, 0, sizeof(*o));
    o->host = "127.0.0.1";
    o->path = "/socket.io/";
    o->nsp = "/";
    o->src_addrs = 9;
    o->handshake_timeout_ms = 15000;
    o->max_message = 1u << 20;
    o->seed = 0x5eed;
}

static void set_error(lg_t *lg, const char *what, const char *detail) {
    if (lg->first_error[0] == '\0') {
        snprintf(lg->first_error, sizeof(lg->first_error), "%s%s%s", what, detail ? ": " : "",
                 detail ? detail : "");
    }
}

/* --- pending list (connections between start and READY, oldest first) ------------------- */

static void pend_add(lg_t *lg, lg_conn_t *c) {
    c->prev = lg->pend_tail;
    c->next = LG_NONE;
    if (lg->pend_tail != LG_NONE) {
        lg->conns[lg->pend_tail].next = c->index;
    } else {
        lg->pend_head = c->index;
    }
    lg->pend_tail = c->index;
    c->in_pending = true;
    lg->pending++;
}

static void pend_remove(lg_t *lg, lg_conn_t *c) {
    if (!c->in_pending) {
        return;
    }
    if (c->prev != LG_NONE) {
        lg->conns[c->prev].next = c->next;
    } else {
        lg->pend_head = c->next;
    }
    if (c->next != LG_NONE) {
        lg->conns[c->next].prev = c->prev;
    } else {
        lg->pend_tail = c->prev;
    }
    c->in_pending = false;
    lg->pending--;
}

/* --- output -------------------------------------------------------------------------------- */

/* Stages one final masked frame whose payload is the concatenation of the pieces. */
static int stage_frame(lg_conn_t *c, unsigned op, const pl_slice_t *pieces, int npieces) {
    size_t len = 0;
    for (int i = 0; i < npieces; i++) {
        len += pieces[i].len;
    }
    int rc = pl_buf_reserve(&c->out, LG_WS_MAX_HEADER + len);
    if (rc != 0) {
        return rc;
    }
    uint32_t key = (uint32_t)lg_rng_next(&c->lg->rng);
    uint8_t *p = (uint8_t *)c->out.data + c->out.len;
    size_t h = lg_ws_client_header(p, op, len, key);
    size_t off = 0;
    for (int i = 0; i < npieces; i++) {
        off = lg_ws_mask_copy(p + h + off, (const uint8_t *)pieces[i].ptr, pieces[i].len, key, off);
    }
    c->out.len += h + len;
    c->lg->counts.msgs_out++;
    return 0;
}

/* Stages a frame and flushes unless inside on_read (which flushes when it returns). */
static int send_frame(lg_conn_t *c, unsigned op, const pl_slice_t *pieces, int npieces) {
    int rc = stage_frame(c, op, pieces, npieces);
    if (rc != 0) {
        set_error(c->lg, "output", pl_strerror(rc));
        conn_end(c, "output over limit", true);
        return rc;
    }
    if (!c->in_read) {
        conn_flush(c);
    }
    return 0;
}

static void on_write(uv_write_t *req, int status) {
    lg_conn_t *c = req->data;
    free(c->wdata);
    c->wdata = NULL;
    c->writing = false;
    if (status < 0) {
        if (status != UV_ECANCELED) {
            set_error(c->lg, "write", uv_strerror(status));
            conn_end(c, "write error", true);
        }
        return;
    }
    conn_flush(c);
}

/* Writes the staged output: uv_try_write first (no allocation, no copy); whatever the kernel
 * does not take at once moves into one uv_write. One write in flight at a time. */
static void conn_flush(lg_conn_t *c) {
    if (c->writing || c->out.len == 0 || c->state >= LG_CONN_CLOSING) {
        return;
    }
    uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == (int)c->out.len) {
        pl_buf_reset(&c->out);
        return;
    }
    if (n < 0 && n != UV_EAGAIN) {
        set_error(c->lg, "write", uv_strerror(n));
        conn_end(c, "write error", true);
        return;
    }
    if (n > 0) {
        pl_buf_consume(&c->out, (size_t)n);
    }
    size_t len;
    c->wdata = pl_buf_steal(&c->out, &len);
    b = uv_buf_init(c->wdata, (unsigned)len);
    c->req.write.data = c;
    int rc = uv_write(&c->req.write, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc != 0) {
        free(c->wdata);
        c->wdata = NULL;
        set_error(c->lg, "write", uv_strerror(rc));
        conn_end(c, "write error", true);
        return;
    }
    c->writing = true;
}

/* --- ending a connection ---------------------------------------------------------------- */

static void on_closed(uv_handle_t *h) {
    lg_conn_t *c = h->data;
    pl_buf_dispose(&c->in);
    pl_buf_dispose(&c->frag);
    pl_buf_dispose(&c->out);
    free(c->wdata); /* a write cancelled by uv_close has already freed it; NULL then */
    c->wdata = NULL;
    c->state = LG_CONN_CLOSED;
    c->lg->counts.closed++;
}

/* Ends c once: a reset close of the socket; counts it as failed (before READY), dropped (an
 * error after READY) or closed (by us). Buffers are freed in the close callback, so a caller
 * still parsing c's input may go on reading it until it sees the state. */
static void conn_end(lg_conn_t *c, const char *reason, bool error) {
    if (c->state == LG_CONN_IDLE || c->state >= LG_CONN_CLOSING) {
        return;
    }
    lg_t *lg = c->lg;
    bool was_ready = c->state == LG_CONN_READY;
    bool was_pending = c->in_pending;
    pend_remove(lg, c);
    if (was_ready) {
        lg->counts.open--;
        if (error) {
            lg->counts.dropped++;
            set_error(lg, "dropped", reason);
        }
    } else {
        lg->counts.failed++;
        set_error(lg, "failed", reason);
    }
    c->state = LG_CONN_CLOSING;
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
        struct linger lin = {.l_onoff = 1, .l_linger = 0};
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
    }
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    if (lg->h.on_close) {
        lg->h.on_close(lg, c, was_ready, reason);
    }
    if (was_pending) {
        pump(lg);
    }
}

void lg_conn_close(lg_conn_t *c) {
    conn_end(c, "closed by client", false);
}

/* --- Socket.IO and Engine.IO packets ------------------------------------------------------ */

static void become_ready(lg_conn_t *c) {
    lg_t *lg = c->lg;
    pend_remove(lg, c);
    c->state = LG_CONN_READY;
    lg->counts.ready++;
    lg->counts.open++;
    lg_hist_record(&lg->connect_ns, uv_hrtime() - c->start_ns);
    if (lg->h.on_ready) {
        lg->h.on_ready(lg, c);
    }
    pump(lg);
}

/* A Socket.IO packet: d is the text after the Engine.IO type '4'. */
static void sio_packet(lg_conn_t *c, const char *d, size_t n) {
    lg_t *lg = c->lg;
    if (n == 0) {
        conn_end(c, "empty Socket.IO packet", true);
        return;
    }
    char type = d[0];
    size_t i = 1;
    if (type == '5' || type == '6') {
        lg->counts.ignored++; /* binary event or ack: not used by the benchmark */
        return;
    }
    if (i < n && d[i] == '/') {
        const char *comma = memchr(d + i, ',', n - i);
        size_t end = comma ? (size_t)(comma - d) : n;
        size_t want = lg->nsp_prefix_len ? lg->nsp_prefix_len - 1 : 0;
        if (end - i != want || memcmp(d + i, lg->nsp_prefix, want) != 0) {
            lg->counts.ignored++;
            return;
        }
        i = comma ? end + 1 : n;
    } else if (lg->nsp_prefix_len != 0) {
        lg->counts.ignored++; /* a packet of the main namespace */
        return;
    }
    int64_t ack_id = -1;
    if (i < n && d[i] >= '0' && d[i] <= '9') {
        uint64_t v = 0;
        while (i < n && d[i] >= '0' && d[i] <= '9' && v < (1ull << 53)) {
            v = v * 10 + (uint64_t)(d[i] - '0');
            i++;
        }
        ack_id = (int64_t)v;
    }
    const char *args = d + i;
    size_t alen = n - i;
    switch (type) {
    case '0':
        if (c->state == LG_CONN_SIO) {
            become_ready(c);
        }
        return;
    case '1':
        conn_end(c, "Socket.IO disconnect from the server", true);
        return;
    case '2':
        if (c->state == LG_CONN_READY && lg->h.on_event) {
            lg->h.on_event(lg, c, args, alen, ack_id);
        }
        return;
    case '3':
        if (c->state == LG_CONN_READY && lg->h.on_ack && ack_id >= 0) {
            lg->h.on_ack(lg, c, (uint64_t)ack_id, args, alen);
        }
        return;
    case '4': {
        char msg[96];
        size_t m = alen < sizeof(msg) - 1 ? alen : sizeof(msg) - 1;
        memcpy(msg, args, m);
        msg[m] = '\0';
        set_error(lg, "connect_error", msg);
        conn_end(c, "Socket.IO connect_error", true);
        return;
    }
    default:
        conn_end(c, "unknown Socket.IO packet type", true);
        return;
    }
}

/* The Socket.IO CONNECT for our namespace, with the auth object if any. */
static void send_sio_connect(lg_conn_t *c) {
    lg_t *lg = c->lg;
    pl_slice_t pieces[3] = {PL_SLICE_LIT("40"), pl_slice(lg->nsp_prefix, lg->nsp_prefix_len),
                            pl_slice_cstr(lg->o.auth ? lg->o.auth : "")};
    if (send_frame(c, LG_WS_TEXT, pieces, 3) == 0) {
        c->state = LG_CONN_SIO;
    }
}

/* One complete Engine.IO text message (engine.io-protocol v4 packet types). */
static void eio_message(lg_conn_t *c, const char *d, size_t n) {
    c->lg->counts.msgs_in++;
    if (n == 0) {
        conn_end(c, "empty Engine.IO packet", true);
        return;
    }
    switch (d[0]) {
    case '0':
        if (c->state == LG_CONN_EIO) {
            send_sio_connect(c);
        }
        return;
    case '1':
        conn_end(c, "Engine.IO close from the server", true);
        return;
    case '2': { /* ping → pong with the same data */
        c->lg->counts.pings++;
        pl_slice_t pieces[2] = {PL_SLICE_LIT("3"), pl_slice(d + 1, n - 1)};
        (void)send_frame(c, LG_WS_TEXT, pieces, 2);
        return;
    }
    case '3':
    case '6':
        return;
    case '4':
        if (c->state >= LG_CONN_SIO) {
            sio_packet(c, d + 1, n - 1);
        }
        return;
    default:
        conn_end(c, "unknown Engine.IO packet type", true);
        return;
    }
}

/* --- WebSocket frames ------------------------------------------------------------------- */

static void deliver(lg_conn_t *c, unsigned op, const char *d, size_t n) {
    if (op == LG_WS_TEXT) {
        eio_message(c, d, n);
    } else {
        c->lg->counts.msgs_in++;
        c->lg->counts.ignored++;
    }
}

/* Adds a fragment to the message being reassembled; delivers it after the final one. */
static void frag_append(lg_conn_t *c, bool fin, const char *d, size_t n) {
    if (pl_buf_append(&c->frag, d, n) != 0) {
        conn_end(c, "fragmented message over the limit", true);
        return;
    }
    if (fin) {
        unsigned op = c->frag_op;
        c->frag_op = 0;
        deliver(c, op, c->frag.data, c->frag.len);
        if (c->state < LG_CONN_CLOSING) {
            pl_buf_dispose(&c->frag);
        }
    }
}

static void ws_frame(lg_conn_t *c, const lg_ws_frame_t *f, const char *d) {
    size_t n = (size_t)f->len;
    switch (f->opcode) {
    case LG_WS_TEXT:
    case LG_WS_BINARY:
        if (c->frag_op != 0) {
            conn_end(c, "new message inside a fragmented one", true);
            return;
        }
        if (f->fin) {
            deliver(c, f->opcode, d, n);
            return;
        }
        c->frag_op = f->opcode; /* the first fragment: collect it like the ones that follow */
        pl_buf_reset(&c->frag);
        frag_append(c, f->fin, d, n);
        return;
    case LG_WS_CONT:
        if (c->frag_op == 0) {
            conn_end(c, "continuation without a message", true);
            return;
        }
        frag_append(c, f->fin, d, n);
        return;
    case LG_WS_PING: {
        pl_slice_t piece = pl_slice(d, n);
        (void)send_frame(c, LG_WS_PONG, &piece, 1);
        return;
    }
    case LG_WS_PONG:
        return;
    case LG_WS_CLOSE:
    default:
        conn_end(c, "WebSocket close from the server", true);
        return;
    }
}

/* --- the opening handshake -------------------------------------------------------------- */

/* The Sec-WebSocket-Key of connection i, derived from the seed so it need not be stored. */
static void ws_key(const lg_t *lg, uint32_t i, char out[25]) {
    lg_rng_t r;
    lg_rng_seed(&r, lg->o.seed ^ ((uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull));
    uint64_t raw[2] = {lg_rng_next(&r), lg_rng_next(&r)};
    pl_b64_encode(out, raw, sizeof(raw));
}

static bool ws_accept_ok(const lg_t *lg, uint32_t i, const char *v, size_t n) {
    char key[25], expect[29];
    ws_key(lg, i, key);
    char in[24 + sizeof(LG_WS_GUID)];
    memcpy(in, key, 24);
    memcpy(in + 24, LG_WS_GUID, sizeof(LG_WS_GUID) - 1);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(in, 24 + sizeof(LG_WS_GUID) - 1, md, &mdlen, EVP_sha1(), NULL) || mdlen != 20) {
        return false;
    }
    pl_b64_encode(expect, md, 20);
    return n == 28 && memcmp(v, expect, 28) == 0;
}

/* Checks the upgrade response head h[0..n) (ending with CRLF CRLF). */
static bool upgrade_ok(lg_conn_t *c, const char *h, size_t n) {
    if (n < 12 || memcmp(h, "HTTP/1.1 101", 12) != 0) {
        char line[64];
        const char *eol = memchr(h, '\r', n);
        size_t m = eol ? (size_t)(eol - h) : n;
        m = m < sizeof(line) - 1 ? m : sizeof(line) - 1;
        memcpy(line, h, m);
        line[m] = '\0';
        set_error(c->lg, "upgrade refused", line);
        return false;
    }
    static const char name[] = "\r\nsec-websocket-accept:";
    for (size_t i = 0; i + sizeof(name) - 1 <= n; i++) {
        if (strncasecmp(h + i, name, sizeof(name) - 1) != 0) {
            continue;
        }
        const char *v = h + i + sizeof(name) - 1;
        const char *end = h + n;
        while (v < end && (*v == ' ' || *v == '\t')) {
            v++;
        }
        const char *e = v;
        while (e < end && *e != '\r' && *e != ' ' && *e != '\t') {
            e++;
        }
        if (ws_accept_ok(c->lg, c->index, v, (size_t)(e - v))) {
            return true;
        }
        break;
    }
    set_error(c->lg, "upgrade", "missing or wrong Sec-WebSocket-Accept");
    return false;
}

/* Parses what it can of p[0..n) and returns the bytes used; stops when c closes. */
static size_t feed(lg_conn_t *c, const char *p, size_t n) {
    size_t off = 0;
    if (c->state == LG_CONN_UPGRADE) {
        const char *end = memmem(p, n, "\r\n\r\n", 4);
        if (!end) {
            if (n > LG_HTTP_MAX) {
                conn_end(c, "upgrade response too long", true);
            }
            return 0;
        }
        off = (size_t)(end - p) + 4;
        if (!upgrade_ok(c, p, off)) {
            conn_end(c, "upgrade failed", true);
            return n;
        }
        c->state = LG_CONN_EIO;
    }
    while (off < n && c->state < LG_CONN_CLOSING) {
        lg_ws_frame_t f;
        int rc = lg_ws_frame_parse((const uint8_t *)p + off, n - off, c->lg->o.max_message, &f);
        if (rc == 0) {
            break;
        }
        if (rc < 0) {
            set_error(c->lg, "frame", pl_strerror(rc));
            conn_end(c, "bad WebSocket frame", true);
            return n;
        }
        if (f.len > n - off - f.header_len) {
            break; /* payload incomplete */
        }
        ws_frame(c, &f, p + off + f.header_len);
        off += f.header_len + (size_t)f.len;
    }
    return off;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    *buf = uv_buf_init(read_buf, sizeof(read_buf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    lg_conn_t *c = s->data;
    if (nread == 0 || c->state >= LG_CONN_CLOSING) {
        return;
    }
    if (nread < 0) {
        if (nread != UV_EOF) {
            set_error(c->lg, "read", uv_strerror((int)nread));
        }
        conn_end(c, nread == UV_EOF ? "closed by the server" : "read error", true);
        return;
    }
    c->in_read = true;
    const char *p = buf->base;
    size_t n = (size_t)nread;
    if (c->in.len != 0) {
        if (pl_buf_append(&c->in, p, n) != 0) {
            c->in_read = false;
            conn_end(c, "incomplete message over the limit", true);
            return;
        }
        p = c->in.data;
        n = c->in.len;
    }
    size_t used = feed(c, p, n);
    if (c->state < LG_CONN_CLOSING) {
        if (p == c->in.data) {
            pl_buf_consume(&c->in, used);
        } else if (used < n && pl_buf_append(&c->in, p + used, n - used) != 0) {
            c->in_read = false;
            conn_end(c, "incomplete message over the limit", true);
            return;
        }
    }
    c->in_read = false;
    conn_flush(c);
}

static void on_connect(uv_connect_t *req, int status) {
    lg_conn_t *c = req->data;
    if (status == UV_ECANCELED || c->state >= LG_CONN_CLOSING) {
        return;
    }
    if (status < 0) {
        set_error(c->lg, "connect", uv_strerror(status));
        conn_end(c, "connect failed", true);
        return;
    }
    lg_t *lg = c->lg;
    (void)uv_tcp_nodelay(&c->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc != 0) {
        set_error(lg, "read_start", uv_strerror(rc));
        conn_end(c, "read start failed", true);
        return;
    }
    char key[25];
    ws_key(lg, c->index, key);
    c->state = LG_CONN_UPGRADE;
    rc = pl_buf_printf(&c->out,
                       "GET %s?EIO=4&transport=websocket HTTP/1.1\r\nHost: %s:%u\r\n"
                       "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n",
                       lg->o.path, lg->o.host, (unsigned)lg->o.port, key);
    if (rc != 0) {
        conn_end(c, "out of memory", true);
        return;
    }
    conn_flush(c);
}

/* --- starting connections ---------------------------------------------------------------- */

static int conn_start(lg_t *lg, lg_conn_t *c) {
    int rc = uv_tcp_init_ex(lg->loop, &c->tcp, AF_INET);
    if (rc != 0) {
        return rc;
    }
    c->tcp.data = c;
    c->state = LG_CONN_TCP;
    c->start_ns = uv_hrtime();
    pend_add(lg, c);
    if (lg->o.src_addrs > 0) {
        uv_os_fd_t fd;
        int one = 1;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
            (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        }
        struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = 0};
        src.sin_addr.s_addr = htonl(0x7F000001u + c->index % lg->o.src_addrs);
        rc = uv_tcp_bind(&c->tcp, (const struct sockaddr *)&src, 0);
        if (rc != 0) {
            return rc;
        }
    }
    c->req.connect.data = c;
    return uv_tcp_connect(&c->req.connect, &c->tcp, (const struct sockaddr *)&lg->dst, on_connect);
}

/* Starts connections while some are requested and fewer than concurrency are pending. */
static void pump(lg_t *lg) {
    if (lg->pumping) {
        return;
    }
    lg->pumping = true;
    while (lg->counts.started < lg->target && lg->pending < lg->concurrency) {
        lg_conn_t *c = &lg->conns[lg->counts.started++];
        int rc = conn_start(lg, c);
        if (rc != 0) {
            set_error(lg, "start", uv_strerror(rc));
            if (c->state == LG_CONN_IDLE) {
                lg->counts.failed++;
                lg->counts.closed++; /* no handle was created */
                c->state = LG_CONN_CLOSED;
            } else {
                conn_end(c, "could not start", true);
            }
        }
    }
    lg->pumping = false;
}

/* Fails the connections that have been pending longer than the handshake timeout. */
static void on_tick(uv_timer_t *t) {
    lg_t *lg = t->data;
    uint64_t now = uv_hrtime();
    uint64_t limit = (uint64_t)lg->o.handshake_timeout_ms * 1000000u;
    while (lg->pend_head != LG_NONE) {
        lg_conn_t *c = &lg->conns[lg->pend_head];
        if (now - c->start_ns < limit) {
            break;
        }
        set_error(lg, "handshake", "timed out");
        conn_end(c, "handshake timed out", true);
    }
}

/* --- public ------------------------------------------------------------------------------ */

lg_t *lg_new(uv_loop_t *loop, const lg_options_t *o, uint32_t max_clients, const lg_handlers_t *h,
             void *ud) {
    if (o->port == 0 || o->src_addrs > 9 || !o->path || !o->nsp || o->nsp[0] != '/') {
        pl_log_error("loadgen.options", "msg=\"port, path, nsp or src_addrs invalid\"");
        return NULL;
    }
    lg_t *lg = calloc(1, sizeof(*lg));
    if (!lg) {
        return NULL;
    }
    lg->conns = calloc(max_clients ? max_clients : 1, sizeof(*lg->conns));
    if (!lg->conns) {
        free(lg);
        return NULL;
    }
    lg->loop = loop;
    lg->o = *o;
    lg->h = *h;
    lg->ud = ud;
    lg->max_clients = max_clients;
    lg->pend_head = lg->pend_tail = LG_NONE;
    lg_hist_init(&lg->connect_ns);
    lg_rng_seed(&lg->rng, o->seed);
    if (strcmp(o->nsp, "/") != 0) {
        int m = snprintf(lg->nsp_prefix, sizeof(lg->nsp_prefix), "%s,", o->nsp);
        if (m < 0 || (size_t)m >= sizeof(lg->nsp_prefix)) {
            pl_log_error("loadgen.options", "msg=\"namespace too long\"");
            goto out_free;
        }
        lg->nsp_prefix_len = (size_t)m;
    }
    if (uv_ip4_addr(o->host, o->port, &lg->dst) != 0) {
        pl_log_error("loadgen.options", "msg=\"host is not an IPv4 address\"");
        goto out_free;
    }
    size_t in_max = (size_t)o->max_message + LG_WS_MAX_HEADER + LG_HTTP_MAX;
    for (uint32_t i = 0; i < max_clients; i++) {
        lg_conn_t *c = &lg->conns[i];
        c->lg = lg;
        c->index = i;
        c->prev = c->next = LG_NONE;
        pl_buf_init(&c->in, in_max);
        pl_buf_init(&c->frag, o->max_message);
        pl_buf_init(&c->out, LG_OUT_MAX);
    }
    uv_timer_init(loop, &lg->tick);
    lg->tick.data = lg;
    uv_timer_start(&lg->tick, on_tick, LG_TICK_MS, LG_TICK_MS);
    return lg;

out_free:
    free(lg->conns);
    free(lg);
    return NULL;
}

void *lg_data(const lg_t *lg) {
    return lg->ud;
}

const lg_counts_t *lg_counts(const lg_t *lg) {
    return &lg->counts;
}

const lg_hist_t *lg_connect_hist(const lg_t *lg) {
    return &lg->connect_ns;
}

const char *lg_first_error(const lg_t *lg) {
    return lg->first_error;
}

int lg_open(lg_t *lg, uint32_t n, uint32_t concurrency) {
    if (n > lg->max_clients - lg->target) {
        return UV_EINVAL;
    }
    lg->target += n;
    lg->concurrency = concurrency ? concurrency : 1;
    pump(lg);
    return 0;
}

bool lg_settled(const lg_t *lg) {
    return lg->counts.started == lg->target && lg->pending == 0;
}

int lg_run_until(lg_t *lg, bool (*done)(lg_t *lg, void *arg), void *arg, uint64_t timeout_ms) {
    uint64_t deadline = uv_hrtime() + timeout_ms * 1000000u;
    while (!done(lg, arg)) {
        if (uv_hrtime() >= deadline) {
            return UV_ETIMEDOUT;
        }
        uv_run(lg->loop, UV_RUN_ONCE);
    }
    return 0;
}

static bool never(lg_t *lg, void *arg) {
    return false;
}

void lg_run_for(lg_t *lg, uint64_t ms) {
    int rc = lg_run_until(lg, never, NULL, ms); /* always UV_ETIMEDOUT: the point */
    (void)rc;
}

static bool all_closed(lg_t *lg, void *arg) {
    return lg->counts.closed == lg->counts.started;
}

int lg_close_all(lg_t *lg, uint64_t timeout_ms) {
    lg->target = lg->counts.started; /* start nothing more */
    for (uint32_t i = 0; i < lg->counts.started; i++) {
        lg_conn_close(&lg->conns[i]);
    }
    return lg_run_until(lg, all_closed, NULL, timeout_ms);
}

void lg_free(lg_t *lg) {
    if (lg_close_all(lg, 10000) != 0) {
        pl_log_error("loadgen.close", "msg=\"handles still open after 10 s\"");
        abort(); /* freeing now would leave libuv pointing into freed memory */
    }
    uv_close((uv_handle_t *)&lg->tick, NULL);
    uv_run(lg->loop, UV_RUN_NOWAIT);
    free(lg->conns);
    free(lg);
}

lg_conn_t *lg_conn_at(lg_t *lg, uint32_t i) {
    return &lg->conns[i];
}

uint32_t lg_conn_index(const lg_conn_t *c) {
    return c->index;
}

bool lg_conn_ready(const lg_conn_t *c) {
    return c->state == LG_CONN_READY;
}

int lg_conn_emit(lg_conn_t *c, const char *args, size_t len, int64_t ack_id) {
    if (c->state != LG_CONN_READY) {
        return UV_ENOTCONN;
    }
    char id[24];
    int idn = 0;
    if (ack_id >= 0) {
        idn = snprintf(id, sizeof(id), "%lld", (long long)ack_id);
    }
    pl_slice_t pieces[4] = {PL_SLICE_LIT("42"), pl_slice(c->lg->nsp_prefix, c->lg->nsp_prefix_len),
                            pl_slice(id, (size_t)idn), pl_slice(args, len)};
    return send_frame(c, LG_WS_TEXT, pieces, 4);
}
