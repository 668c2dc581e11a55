/* WebSocket server connections (RFC 6455 sections 4.2, 5 and 7): see ws.h. The opening handshake
 * is checked here from the parsed HTTP request; frames are read by the pure reader of frame.c
 * and written as header + shared payload through http_conn_writev. */
#include "ws/ws.h"

#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_MESSAGE (1024u * 1024u)
#define DEFAULT_CLOSE_TIMEOUT_MS 3000u

typedef enum {
    WS_STATE_OPEN,       /* messages flow both ways */
    WS_STATE_CLOSE_SENT, /* our close frame is out: waiting for the peer's or for TCP to end */
    WS_STATE_CLOSED      /* the TCP connection is gone */
} ws_state_t;

struct ws_conn {
    http_conn_t *conn;         /* the taken-over connection; NULL once it closed */
    const ws_callbacks_t *cbs; /* the owner's; NULL before accept completes and after the
                                  owner detached or heard on_close */
    void *ud;                  /* the owner's pointer */
    ws_reader_t reader;        /* incoming frames */
    uv_timer_t *close_timer;   /* owned; exists only while waiting for the peer's close */
    uint32_t refs;             /* HTTP connection + owner + close timer + calls in progress */
    uint32_t close_timeout_ms; /* wait for the peer's close frame after ours */
    uint16_t close_code;       /* reported in on_close */
    uint8_t state;             /* ws_state_t */
    bool error;                /* ended on a fault (see on_close) */
    bool writing;              /* inside http_conn_writev: a close now is a write failure */
};

void ws_options_default(ws_options_t *o) {
    o->max_message = DEFAULT_MAX_MESSAGE;
    o->close_timeout_ms = DEFAULT_CLOSE_TIMEOUT_MS;
}

size_t ws_conn_size(void) {
    return sizeof(struct ws_conn);
}

static void ws_unref(ws_conn_t *ws) {
    if (--ws->refs > 0)
        return;
    ws_reader_dispose(&ws->reader);
    free(ws);
}

/* ---- handshake ------------------------------------------------------------------------------ */

/* True when some header called name holds token (comma lists, any case). */
static bool any_header_has_token(const http_request_t *req, const char *name, const char *token) {
    for (size_t i = 0; i < req->nheaders; i++)
        if (pl_slice_case_eq_cstr(req->headers[i].name, name) &&
            ws_header_has_token(req->headers[i].value, token))
            return true;
    return false;
}

static bool is_b64_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* The base64 of 16 bytes: 22 alphabet characters then "==". */
static bool key_valid(pl_slice_t k) {
    if (k.len != 24 || k.ptr[22] != '=' || k.ptr[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (!is_b64_char(k.ptr[i]))
            return false;
    return true;
}

int ws_handshake_check(const http_request_t *req, const char **reason, bool *version_header) {
    *version_header = false;
    *reason = NULL;
    if (req->method != HTTP_GET) {
        *reason = "WebSocket handshake must use GET";
        return 400;
    }
    if (req->http_minor < 1) {
        *reason = "WebSocket handshake needs HTTP/1.1";
        return 400;
    }
    if (!any_header_has_token(req, "upgrade", "websocket")) {
        *reason = "Missing or invalid Upgrade header";
        return 400;
    }
    if (!any_header_has_token(req, "connection", "upgrade")) {
        *reason = "Missing or invalid Connection header";
        return 400;
    }
    const pl_slice_t *version = http_request_header(req, "sec-websocket-version");
    if (!version || http_request_header_count(req, "sec-websocket-version") != 1 ||
        !pl_slice_eq_cstr(*version, "13")) {
        *reason = "Unsupported WebSocket version";
        *version_header = true;
        return 400;
    }
    const pl_slice_t *key = http_request_header(req, "sec-websocket-key");
    if (!key || http_request_header_count(req, "sec-websocket-key") != 1 || !key_valid(*key)) {
        *reason = "Missing or invalid Sec-WebSocket-Key header";
        return 400;
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        if (pl_slice_case_eq_cstr(req->headers[i].name, "sec-websocket-protocol") &&
            !ws_protocol_list_valid(req->headers[i].value)) {
            *reason = "Invalid Sec-WebSocket-Protocol header";
            return 400;
        }
    }
    return 0;
}

void ws_handshake_refuse(http_request_t *req, int status, const char *reason, bool version_header) {
    pl_log_info("ws.handshake_refused", "conn=%llu status=%d reason=\"%s\"",
                (unsigned long long)http_conn_id(req->conn), status, reason);
    if (version_header)
        http_response_header(req, "Sec-WebSocket-Version", "13");
    http_respond_error(req, status, reason);
}

/* ---- writing -------------------------------------------------------------------------------- */

/* Queues bufs on the connection. A failure closes it, and on_close may run before this returns:
 * the caller holds a reference. */
static int conn_writev(ws_conn_t *ws, pl_rcbuf_t **bufs, size_t n) {
    ws->writing = true;
    int rc = http_conn_writev(ws->conn, bufs, n);
    ws->writing = false;
    return rc;
}

static int send_frame(ws_conn_t *ws, unsigned opcode, pl_rcbuf_t *payload) {
    uint8_t hdr[WS_MAX_HEADER];
    size_t n = ws_frame_header(hdr, opcode, payload->len);
    pl_rcbuf_t *h = pl_rcbuf_from(hdr, n);
    if (!h) {
        http_conn_abort(ws->conn);
        return PL_ENOMEM;
    }
    pl_rcbuf_t *bufs[2] = {h, payload};
    int rc = conn_writev(ws, bufs, payload->len ? 2 : 1);
    pl_rcbuf_unref(h);
    return rc;
}

/* Sends a frame whose payload is copied together with its header into one buffer. */
static int send_copy(ws_conn_t *ws, unsigned opcode, const void *data, size_t len) {
    uint8_t hdr[WS_MAX_HEADER];
    size_t n = ws_frame_header(hdr, opcode, len);
    if (len > SIZE_MAX - n)
        return PL_ETOOBIG;
    pl_rcbuf_t *b = pl_rcbuf_new(n + len);
    if (!b) {
        http_conn_abort(ws->conn);
        return PL_ENOMEM;
    }
    memcpy(b->data, hdr, n);
    if (len)
        memcpy(b->data + n, data, len);
    int rc = conn_writev(ws, &b, 1);
    pl_rcbuf_unref(b);
    return rc;
}

int ws_send(ws_conn_t *ws, pl_rcbuf_t *payload, bool binary) {
    if (ws->state != WS_STATE_OPEN || !ws->conn)
        return UV_ECANCELED;
    ws->refs++;
    int rc = send_frame(ws, binary ? WS_OP_BINARY : WS_OP_TEXT, payload);
    ws_unref(ws);
    return rc;
}

int ws_send_copy(ws_conn_t *ws, const void *data, size_t len, bool binary) {
    if (ws->state != WS_STATE_OPEN || !ws->conn)
        return UV_ECANCELED;
    ws->refs++;
    int rc = send_copy(ws, binary ? WS_OP_BINARY : WS_OP_TEXT, data, len);
    ws_unref(ws);
    return rc;
}

/* Sends our close frame (state OPEN only) and moves to CLOSE_SENT. Caller holds a reference. */
static void send_close(ws_conn_t *ws, unsigned code, const char *reason) {
    uint8_t payload[WS_MAX_CONTROL];
    size_t n = ws_close_payload(payload, code, reason);
    ws->state = WS_STATE_CLOSE_SENT;
    if (ws->conn)
        (void)send_copy(ws, WS_OP_CLOSE, payload, n);
}

/* ---- closing -------------------------------------------------------------------------------- */

static void close_timer_closed_cb(uv_handle_t *h) {
    ws_conn_t *ws = h->data;
    free(h);
    ws_unref(ws);
}

static void close_timer_stop(ws_conn_t *ws) {
    if (!ws->close_timer)
        return;
    uv_close((uv_handle_t *)ws->close_timer, close_timer_closed_cb);
    ws->close_timer = NULL;
}

static void close_timer_cb(uv_timer_t *t) {
    ws_conn_t *ws = t->data;
    if (ws->conn) {
        pl_log_info("ws.close_timeout", "conn=%llu", (unsigned long long)http_conn_id(ws->conn));
        http_conn_abort(ws->conn); /* on_close stops this timer */
    }
}

static void close_timer_start(ws_conn_t *ws) {
    if (ws->close_timer || !ws->conn)
        return;
    uv_timer_t *t = malloc(sizeof *t);
    if (!t) {
        http_conn_close(ws->conn);
        return;
    }
    uv_timer_init(http_conn_loop(ws->conn), t);
    t->data = ws;
    ws->refs++;
    ws->close_timer = t;
    uv_timer_start(t, close_timer_cb, ws->close_timeout_ms, 0);
}

/* Fails the connection (RFC 6455 section 7.1.7): our close frame with code, then TCP closes as
 * soon as it is written, without waiting for the peer. Caller holds a reference. */
static void fail_conn(ws_conn_t *ws, unsigned code, const char *reason) {
    if (ws->state == WS_STATE_CLOSED)
        return;
    pl_log_info("ws.protocol_error", "conn=%llu code=%u reason=\"%s\"",
                (unsigned long long)(ws->conn ? http_conn_id(ws->conn) : 0), code, reason);
    ws->error = true;
    ws->close_code = (uint16_t)code;
    if (ws->state == WS_STATE_OPEN)
        send_close(ws, code, reason);
    if (ws->conn)
        http_conn_close(ws->conn);
}

void ws_close(ws_conn_t *ws, unsigned code, const char *reason) {
    if (ws->state != WS_STATE_OPEN)
        return;
    ws->refs++;
    ws->close_code = (uint16_t)code;
    send_close(ws, code, reason);
    close_timer_start(ws);
    ws_unref(ws);
}

void ws_detach(ws_conn_t *ws) {
    if (!ws->cbs)
        return;
    ws->cbs = NULL;
    ws_close(ws, WS_CLOSE_NORMAL, NULL);
    ws_unref(ws); /* the owner's reference */
}

size_t ws_pending(const ws_conn_t *ws) {
    return ws->conn ? http_conn_pending(ws->conn) : 0;
}

uint64_t ws_conn_id(const ws_conn_t *ws) {
    return ws->conn ? http_conn_id(ws->conn) : 0;
}

bool ws_closing(const ws_conn_t *ws) {
    return ws->state != WS_STATE_OPEN;
}

/* ---- reader callbacks ----------------------------------------------------------------------- */

/* Reading goes on after our close frame (to find the peer's) but stops once TCP is gone. */
static int read_status(const ws_conn_t *ws) {
    return ws->state == WS_STATE_CLOSED ? 1 : 0;
}

static int rd_message(void *ud, bool binary, const char *data, size_t len) {
    ws_conn_t *ws = ud;
    if (ws->state == WS_STATE_OPEN && ws->cbs)
        ws->cbs->on_message(ws, ws->ud, data, len, binary);
    return read_status(ws);
}

static int rd_ping(void *ud, const char *data, size_t len) {
    ws_conn_t *ws = ud;
    if (ws->state == WS_STATE_OPEN && ws->conn)
        (void)send_copy(ws, WS_OP_PONG, data, len);
    return read_status(ws);
}

static int rd_close(void *ud, unsigned code, const char *reason, size_t len) {
    (void)reason, (void)len;
    ws_conn_t *ws = ud;
    ws->close_code = (uint16_t)code;
    if (ws->state == WS_STATE_OPEN) {
        /* Echo the peer's code (an empty close is answered empty), then close TCP ourselves. */
        send_close(ws, code, NULL);
    }
    if (ws->conn)
        http_conn_close(ws->conn);
    return 1;
}

static const ws_reader_cbs_t g_reader_cbs = {
    .on_message = rd_message,
    .on_ping = rd_ping,
    .on_pong = NULL,
    .on_close = rd_close,
};

/* ---- HTTP connection callbacks -------------------------------------------------------------- */

static void conn_on_read(void *ud, const char *data, size_t len) {
    ws_conn_t *ws = ud;
    ws->refs++;
    int rc = ws_reader_feed(&ws->reader, data, len);
    if (rc == WS_READ_FAILED)
        fail_conn(ws, ws->reader.error_code, ws->reader.error_reason);
    ws_unref(ws);
}

static void conn_on_close(void *ud) {
    ws_conn_t *ws = ud;
    ws->refs++;
    if (ws->writing)
        ws->error = true; /* the write failed or passed the pending-output bound */
    if (ws->close_code == 0)
        ws->close_code = WS_CLOSE_ABNORMAL;
    ws->conn = NULL;
    ws->state = WS_STATE_CLOSED;
    close_timer_stop(ws);
    const ws_callbacks_t *cbs = ws->cbs;
    if (cbs) {
        ws->cbs = NULL;
        cbs->on_close(ws, ws->ud, ws->close_code, ws->error);
        ws->refs--; /* the owner's reference (ours keeps ws alive) */
    }
    ws->refs--; /* the connection's reference */
    ws_unref(ws);
}

static void conn_on_shutdown(void *ud) {
    ws_close(ud, WS_CLOSE_GOING_AWAY, "server shutting down");
}

static const http_upgrade_ops_t g_upgrade_ops = {
    .on_read = conn_on_read,
    .on_drain = NULL,
    .on_close = conn_on_close,
    .on_shutdown = conn_on_shutdown,
};

ws_conn_t *ws_accept(http_request_t *req, const ws_options_t *opts, const ws_callbacks_t *cbs,
                     void *ud) {
    const char *reason;
    bool version_header;
    int status = ws_handshake_check(req, &reason, &version_header);
    if (status) {
        ws_handshake_refuse(req, status, reason, version_header);
        return NULL;
    }
    ws_options_t defaults;
    if (!opts) {
        ws_options_default(&defaults);
        opts = &defaults;
    }
    const pl_slice_t *key = http_request_header(req, "sec-websocket-key");
    char accept[29];
    ws_accept_key(key->ptr, key->len, accept);
    char head[160];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    ws_conn_t *ws = calloc(1, sizeof *ws);
    if (!ws) {
        http_respond_error(req, 503, "Out of memory");
        return NULL;
    }
    ws->refs = 2; /* the HTTP connection and the owner */
    ws->ud = ud;
    ws->close_timeout_ms =
        opts->close_timeout_ms ? opts->close_timeout_ms : DEFAULT_CLOSE_TIMEOUT_MS;
    ws->state = WS_STATE_OPEN;
    ws_reader_init(&ws->reader, opts->max_message, &g_reader_cbs, ws);
    /* cbs stays NULL until the upgrade went through: a close during it tells nobody. */
    http_conn_t *c = http_request_upgrade(req, pl_slice(head, (size_t)n), &g_upgrade_ops, ws);
    if (!c) {
        /* If on_close ran during the upgrade it dropped the connection's reference; if not,
         * the connection never took it. Either way only the owner's is left to drop. */
        if (ws->state != WS_STATE_CLOSED)
            ws->refs--;
        ws_unref(ws);
        return NULL;
    }
    ws->conn = c;
    ws->cbs = cbs;
    /* Reading may have been paused while the handshake was handled: bytes that follow the
     * head must flow now. */
    http_conn_resume(c);
    return ws;
}
