/* HTTP/1.1 server on libuv and http-parser (RFC 9112 message syntax, RFC 9110 semantics).
 *
 * Each accepted TCP connection is an http_conn_t. Bytes read go through http-parser; the head
 * is collected into one per-request buffer capped at max_header_bytes, the body into another
 * capped at max_body_bytes. When a message is complete the parser is paused, the request is
 * routed and handed to its handler, and parsing of any pipelined bytes resumes only after that
 * request is finished, so responses go out in request order. A connection can be taken over
 * by another protocol (WebSocket) with http_request_upgrade().
 *
 * Memory: one shared read buffer per server (reads are consumed synchronously); per connection
 * only the unparsed remainder is kept, capped. A connection is reference-counted: its two
 * libuv handles (TCP, timer) and every unfinished request hold a reference, so a late
 * response for a closed connection never touches freed memory. */
#include "http/server.h"

#include "core/clock.h"
#include "core/log.h"
#include "http/router.h"

#include <assert.h>
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define READ_BUF_SIZE (64 * 1024)
#define MAX_BUFFERED_INPUT (64 * 1024) /* unparsed pipelined bytes kept while a request runs */
#define CLOSE_LINGER_MS 2000           /* graceful close: time to flush queued output */

typedef enum {
    TIMER_NONE,
    TIMER_HEAD,   /* waiting for a complete head (408) */
    TIMER_BODY,   /* waiting for a complete body (408) */
    TIMER_IDLE,   /* keep-alive with nothing in progress (close silently) */
    TIMER_LINGER, /* closing after output is flushed */
} timer_kind_t;

typedef enum {
    CONN_HTTP,     /* parsing requests */
    CONN_UPGRADED, /* raw bytes to ops */
} conn_mode_t;

/* A request being parsed or handled. The public part comes first. */
typedef struct req_priv {
    http_request_t pub;
    pl_buf_t head;          /* URL and header bytes, capped at max_header_bytes */
    size_t url_off, url_len;
    struct hdr_off {
        size_t name_off, name_len, value_off, value_len;
    } *hdr;                 /* header offsets into head (slices are made at headers_complete) */
    size_t nhdr, hdr_cap;
    bool in_value;          /* the parser is inside a header value */
    pl_buf_t resp_headers;  /* extra response header lines, "Name: value\r\n" each */
    bool close_after;       /* close the connection after the response */
    bool finished;          /* respond/upgrade/release called */
    bool aborted;           /* the connection closed first */
    void (*abort_cb)(http_request_t *, void *);
    void *abort_ud;
} req_priv_t;

struct http_conn {
    uv_tcp_t tcp;            /* the socket; data = this */
    uv_timer_t *timer;       /* one timer, meaning given by timer_kind; allocated on demand and
                                released when the connection is upgraded (an idle WebSocket
                                keeps no HTTP timer: ~170 bytes less per connection) */
    http_server_t *server;   /* owner */
    struct http_conn *prev, *next; /* server's list of open connections */
    uint64_t id;             /* unique per server, for logs */
    uint32_t refs;           /* handles open + unfinished requests */
    conn_mode_t mode;
    timer_kind_t timer_kind;
    bool closing;            /* uv_close called on the handles */
    bool close_after_write;  /* close once the write queue is empty */
    bool reading;            /* uv_read_start active */
    bool paused_by_owner;    /* upgraded owner asked to stop reading */
    bool eof;                /* peer finished sending */
    bool got_bytes;          /* some byte of the current request arrived */
    bool reject_503;         /* over max_connections: answer 503 and close */
    bool had_pending;        /* output was queued (for on_drain) */
    bool in_process;         /* process_input is on the stack */
    bool lingering;          /* answered with close: write side shut, draining input */
    char prev_tail;          /* last byte handed to the parser before this chunk */
    const char *parse_base;  /* start of the bytes being parsed */
    size_t parse_len;        /* their length */
    uint64_t chunk_left;     /* chunked body: bytes left in the current chunk */
    uint8_t crlf_need;       /* chunked body: bytes of the CRLF after chunk data still to check */
    bool queued;             /* on the server's deferred-processing list */
    http_parser parser;
    int error_status;        /* status to answer when a parser callback refused */
    const char *error_msg;   /* its message */
    pl_buf_t in;             /* received bytes not yet parsed (pipelining, paused parser) */
    req_priv_t *cur;         /* request being parsed, NULL between requests */
    req_priv_t *active;      /* request handed to a handler and not finished */
    const http_upgrade_ops_t *ops; /* upgraded: the new owner */
    void *ud;
    struct http_conn *defer_next; /* server's deferred-processing list */
    /* Output corking (upgraded connections): what is sent during one loop turn is gathered and
     * written with one writev when the turn's callbacks are done (flush_cb), so that a burst of
     * events for one socket (a batch of committed messages, acks and room events) costs one
     * system call instead of one per packet. */
    pl_rcbuf_t **cork;            /* references, ncork of them, in order */
    uint32_t ncork, cork_cap;
    size_t cork_bytes;
    struct http_conn *flush_next; /* server's list of connections with corked output */
    bool flush_queued;            /* on that list (holds a reference to the connection) */
    char ip[48];             /* peer address */
};

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_idle_t defer;          /* runs deferred input processing on the next loop turn */
    uv_timer_t shutdown_timer;
    http_limits_t limits;
    http_router_t *router;    /* borrowed */
    http_conn_t *conns;       /* open connections */
    size_t nconns;            /* counted in conns (including 503-rejected ones) */
    size_t nserved;           /* connections that are not rejects */
    uint64_t next_id;
    http_conn_t *defer_head;  /* connections whose input must be processed */
    http_conn_t *flush_head;  /* connections with corked output */
    uv_check_t flush_check;   /* flushes after the I/O callbacks of a loop turn */
    uv_prepare_t flush_prepare; /* and before the loop blocks (timers, close callbacks) */
    bool listening, listener_closed, shutting_down, freeing;
    int handles_open;         /* listener, idle, shutdown timer, flush check and prepare */
    uint64_t last_emfile_log; /* ms, rate-limits the EMFILE warning */
    void (*shutdown_cb)(http_server_t *, void *);
    void *shutdown_ud;
    char read_buf[READ_BUF_SIZE];
    unsigned port;
};

typedef struct {
    uv_write_t req;
    http_conn_t *conn;
    size_t nbufs;
    pl_rcbuf_t **rc;  /* references held until written */
    uv_buf_t *bufs;
} write_req_t;

static void conn_close(http_conn_t *c);
static void cork_drop(http_conn_t *c);
static void conn_process(http_conn_t *c);
static void defer_cb(uv_idle_t *h);
static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void conn_respond_error_close(http_conn_t *c, int status, const char *msg);
static void conn_linger(http_conn_t *c);
static void req_free(req_priv_t *r);
static void maybe_finish_shutdown(http_server_t *s);

void http_limits_default(http_limits_t *l) {
    l->max_connections = 10000;
    l->max_header_bytes = 16 * 1024;
    l->max_headers = 100;
    l->max_body_bytes = 1024 * 1024;
    l->header_timeout_ms = 10000;
    l->idle_timeout_ms = 30000;
    l->max_pending_output = 1024 * 1024;
}

const char *http_status_text(int status) {
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

/* ---- reference counting and close ---------------------------------------------------- */

static void conn_unref(http_conn_t *c) {
    assert(c->refs > 0);
    if (--c->refs > 0)
        return;
    pl_buf_dispose(&c->in);
    free(c);
}

static void handle_closed_cb(uv_handle_t *h) {
    conn_unref(h->data);
}

static void timer_closed_cb(uv_handle_t *h) {
    http_conn_t *c = h->data;
    free(h);
    conn_unref(c);
}

/* Closes and frees the connection's timer, if it has one. */
static void conn_timer_release(http_conn_t *c) {
    if (!c->timer)
        return;
    uv_close((uv_handle_t *)c->timer, timer_closed_cb);
    c->timer = NULL;
    c->timer_kind = TIMER_NONE;
}

static void server_unlink(http_conn_t *c) {
    http_server_t *s = c->server;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    s->nconns--;
    if (!c->reject_503)
        s->nserved--;
}

/* Closes both handles now. Unfinished requests learn of it through their abort callback. */
static void conn_close(http_conn_t *c) {
    if (c->closing)
        return;
    c->closing = true;
    server_unlink(c);
    cork_drop(c); /* the flush list keeps its reference until flush_all passes */
    uv_close((uv_handle_t *)&c->tcp, handle_closed_cb);
    conn_timer_release(c);
    if (c->cur) {
        req_free(c->cur);
        c->cur = NULL;
    }
    req_priv_t *a = c->active;
    if (a && !a->aborted) {
        a->aborted = true;
        if (a->abort_cb)
            a->abort_cb(&a->pub, a->abort_ud);
    }
    if (c->mode == CONN_UPGRADED && c->ops && c->ops->on_close) {
        const http_upgrade_ops_t *ops = c->ops;
        c->ops = NULL;
        ops->on_close(c->ud);
    }
    maybe_finish_shutdown(c->server);
}

static void timer_cb(uv_timer_t *t) {
    http_conn_t *c = t->data;
    switch (c->timer_kind) {
    case TIMER_HEAD:
    case TIMER_BODY:
        if (c->got_bytes) {
            pl_log_info("http.timeout", "conn=%llu phase=%s", (unsigned long long)c->id,
                        c->timer_kind == TIMER_HEAD ? "head" : "body");
            conn_respond_error_close(c, 408, "Request timeout");
        } else {
            conn_close(c);
        }
        break;
    case TIMER_IDLE:
    case TIMER_LINGER:
        conn_close(c);
        break;
    case TIMER_NONE:
        break;
    }
}

static void conn_timer(http_conn_t *c, timer_kind_t kind, uint64_t ms) {
    if (c->closing)
        return;
    c->timer_kind = kind;
    if (kind == TIMER_NONE) {
        if (c->timer)
            uv_timer_stop(c->timer);
        return;
    }
    if (!c->timer) {
        c->timer = malloc(sizeof *c->timer);
        if (!c->timer) {
            conn_close(c);
            return;
        }
        uv_timer_init(c->server->loop, c->timer);
        c->timer->data = c;
        c->refs++; /* released by timer_closed_cb */
    }
    uv_timer_start(c->timer, timer_cb, ms, 0);
}

/* ---- writing ---------------------------------------------------------------------------- */

static void write_cb(uv_write_t *wr, int status) {
    write_req_t *w = (write_req_t *)wr;
    http_conn_t *c = w->conn;
    for (size_t i = 0; i < w->nbufs; i++)
        pl_rcbuf_unref(w->rc[i]);
    free(w);
    if (c->closing)
        return;
    if (status < 0) {
        pl_log_debug("http.write_error", "conn=%llu err=%s", (unsigned long long)c->id,
                     uv_err_name(status));
        conn_close(c);
        return;
    }
    if (c->tcp.write_queue_size == 0) {
        if (c->close_after_write) {
            conn_linger(c);
            return;
        }
        if (c->had_pending && c->mode == CONN_UPGRADED && c->ops && c->ops->on_drain) {
            c->had_pending = false;
            c->ops->on_drain(c->ud);
        }
    }
}

/* Most buffers corked on one connection before it is flushed early. */
#define CORK_MAX 256

static void cork_drop(http_conn_t *c) {
    for (uint32_t i = 0; i < c->ncork; i++)
        pl_rcbuf_unref(c->cork[i]);
    free(c->cork);
    c->cork = NULL;
    c->ncork = c->cork_cap = 0;
    c->cork_bytes = 0;
}

static int conn_write_now(http_conn_t *c, pl_rcbuf_t **bufs, size_t n);

/* Writes the corked buffers with one writev. */
static void conn_flush(http_conn_t *c) {
    if (c->ncork == 0 || c->closing)
        return;
    pl_rcbuf_t **v = c->cork;
    uint32_t n = c->ncork;
    c->cork = NULL;
    c->ncork = c->cork_cap = 0;
    c->cork_bytes = 0;
    conn_write_now(c, v, n);
    for (uint32_t i = 0; i < n; i++)
        pl_rcbuf_unref(v[i]);
    free(v);
}

static void flush_all(http_server_t *s) {
    while (s->flush_head) {
        http_conn_t *c = s->flush_head;
        s->flush_head = c->flush_next;
        c->flush_next = NULL;
        c->flush_queued = false;
        conn_flush(c);
        conn_unref(c);
    }
}

static void flush_check_cb(uv_check_t *h) {
    flush_all(h->data);
}

static void flush_prepare_cb(uv_prepare_t *h) {
    flush_all(h->data);
}

/* Gathers bufs (references taken) to be written at the end of the loop turn. */
static int conn_cork(http_conn_t *c, pl_rcbuf_t **bufs, size_t n) {
    if (c->ncork + n > c->cork_cap) {
        if (c->ncork + n > CORK_MAX)
            conn_flush(c);
        size_t ncap = c->cork_cap ? c->cork_cap : 8;
        while (ncap < c->ncork + n)
            ncap *= 2;
        pl_rcbuf_t **nv = realloc(c->cork, ncap * sizeof *nv);
        if (!nv) {
            conn_close(c);
            return PL_ENOMEM;
        }
        c->cork = nv;
        c->cork_cap = (uint32_t)ncap;
    }
    for (size_t i = 0; i < n; i++) {
        c->cork[c->ncork++] = pl_rcbuf_ref(bufs[i]);
        c->cork_bytes += bufs[i]->len;
    }
    if (!c->flush_queued) {
        c->flush_queued = true;
        c->refs++; /* released by flush_all */
        c->flush_next = c->server->flush_head;
        c->server->flush_head = c;
    }
    return 0;
}

/* Queues bufs (references taken). Returns 0 or an error after which the connection closes. */
static int conn_writev(http_conn_t *c, pl_rcbuf_t **bufs, size_t n, bool enforce_limit) {
    if (c->closing)
        return UV_ECANCELED;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += bufs[i]->len;
    size_t queued = c->tcp.write_queue_size + c->cork_bytes;
    if (enforce_limit && queued + total > c->server->limits.max_pending_output) {
        pl_log_warn("http.slow_consumer", "conn=%llu pending=%zu adding=%zu",
                    (unsigned long long)c->id, queued, total);
        conn_close(c);
        return PL_ETOOBIG;
    }
    if (c->mode == CONN_UPGRADED && !c->close_after_write)
        return conn_cork(c, bufs, n);
    conn_flush(c); /* keep the order of what was corked before */
    if (c->closing)
        return UV_ECANCELED;
    return conn_write_now(c, bufs, n);
}

/* Hands bufs (references taken) to libuv now. */
static int conn_write_now(http_conn_t *c, pl_rcbuf_t **bufs, size_t n) {
    write_req_t *w = malloc(sizeof *w + n * (sizeof(pl_rcbuf_t *) + sizeof(uv_buf_t)));
    if (!w) {
        conn_close(c);
        return PL_ENOMEM;
    }
    w->conn = c;
    w->nbufs = n;
    w->rc = (pl_rcbuf_t **)(w + 1);
    w->bufs = (uv_buf_t *)(w->rc + n);
    for (size_t i = 0; i < n; i++) {
        w->rc[i] = pl_rcbuf_ref(bufs[i]);
        w->bufs[i] = uv_buf_init(bufs[i]->data, (unsigned)bufs[i]->len);
    }
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, w->bufs, (unsigned)n, write_cb);
    if (rc < 0) {
        for (size_t i = 0; i < n; i++)
            pl_rcbuf_unref(w->rc[i]);
        free(w);
        conn_close(c);
        return rc;
    }
    if (c->tcp.write_queue_size > 0)
        c->had_pending = true;
    return 0;
}

static int conn_write_copy(http_conn_t *c, const void *data, size_t len, bool enforce) {
    pl_rcbuf_t *b = pl_rcbuf_from(data, len);
    if (!b) {
        conn_close(c);
        return PL_ENOMEM;
    }
    int rc = conn_writev(c, &b, 1, enforce);
    pl_rcbuf_unref(b);
    return rc;
}

int http_conn_writev(http_conn_t *c, pl_rcbuf_t **bufs, size_t n) {
    return conn_writev(c, bufs, n, true);
}

int http_conn_write(http_conn_t *c, const void *data, size_t len) {
    return conn_write_copy(c, data, len, true);
}

size_t http_conn_pending(const http_conn_t *c) {
    return c->tcp.write_queue_size + c->cork_bytes;
}

void http_conn_close(http_conn_t *c) {
    if (c->closing)
        return;
    conn_flush(c);
    if (c->closing)
        return;
    if (c->tcp.write_queue_size == 0) {
        conn_close(c);
        return;
    }
    c->close_after_write = true;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    conn_timer(c, TIMER_LINGER, CLOSE_LINGER_MS);
}

void http_conn_abort(http_conn_t *c) {
    conn_close(c);
}

uint64_t http_conn_id(const http_conn_t *c) {
    return c->id;
}

const char *http_conn_remote_ip(const http_conn_t *c) {
    return c->ip;
}

uv_loop_t *http_conn_loop(const http_conn_t *c) {
    return c->server->loop;
}

/* ---- responses ---------------------------------------------------------------------------- */

static const char *http_date(void) {
    static char buf[40];
    static time_t last;
    time_t now = time(NULL);
    if (now != last) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        last = now;
    }
    return buf;
}

static req_priv_t *priv(const http_request_t *r) {
    return (req_priv_t *)r;
}

static bool header_text_ok(const char *s) {
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return false;
    return true;
}

void http_response_header(http_request_t *req, const char *name, const char *value) {
    req_priv_t *r = priv(req);
    if (r->finished || !header_text_ok(name) || !header_text_ok(value) || !name[0])
        return;
    if (pl_buf_printf(&r->resp_headers, "%s: %s\r\n", name, value) < 0)
        pl_log_warn("http.header_dropped", "name=%s", name);
}

void http_response_close(http_request_t *req) {
    priv(req)->close_after = true;
}

static void req_free(req_priv_t *r) {
    pl_buf_dispose(&r->head);
    pl_buf_dispose(&r->pub.body);
    pl_buf_dispose(&r->resp_headers);
    free(r->hdr);
    free(r->pub.headers);
    free(r);
}

/* Ends the active request: drops its reference on the connection and lets the connection
 * carry on with buffered input (on the next loop turn, never re-entering the caller). */
static void request_finish(req_priv_t *r) {
    http_conn_t *c = r->pub.conn;
    r->finished = true;
    if (c->active == r)
        c->active = NULL;
    req_free(r);
    if (!c->closing && c->mode == CONN_HTTP) {
        http_server_t *s = c->server;
        if (!c->queued) {
            c->queued = true;
            c->refs++;
            c->defer_next = s->defer_head;
            s->defer_head = c;
            uv_idle_start(&s->defer, defer_cb);
        }
    }
    conn_unref(c);
}

void http_respond(http_request_t *req, int status, const char *content_type, const void *body,
                  size_t len) {
    req_priv_t *r = priv(req);
    http_conn_t *c = req->conn;
    assert(!r->finished);
    if (r->aborted || c->closing) {
        request_finish(r);
        return;
    }
    /* An Upgrade request answered without upgrading is torn down (BAD-INPUTS CVE-2022-41940):
     * whatever follows its head is not HTTP. */
    bool close = r->close_after || !req->keep_alive || req->upgrade || c->eof ||
                 c->server->shutting_down;
    bool head_only = req->method == HTTP_HEAD;
    bool no_body = status == 204 || status == 304 || (status >= 100 && status < 200);
    pl_buf_t out;
    pl_buf_init(&out, 0);
    int rc = pl_buf_printf(&out, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status,
                           http_status_text(status), http_date());
    if (!rc && content_type && !no_body)
        rc = pl_buf_printf(&out, "Content-Type: %s\r\n", content_type);
    if (!rc && !no_body)
        rc = pl_buf_printf(&out, "Content-Length: %zu\r\n", len);
    if (!rc)
        rc = pl_buf_printf(&out, "Connection: %s\r\n", close ? "close" : "keep-alive");
    if (!rc)
        rc = pl_buf_append(&out, r->resp_headers.data, r->resp_headers.len);
    if (!rc)
        rc = pl_buf_append(&out, "\r\n", 2);
    if (!rc && !head_only && !no_body)
        rc = pl_buf_append(&out, body, len);
    if (rc) {
        pl_buf_dispose(&out);
        conn_close(c);
        request_finish(r);
        return;
    }
    size_t n;
    char *bytes = pl_buf_steal(&out, &n);
    pl_rcbuf_t *rb = pl_rcbuf_from(bytes, n);
    free(bytes);
    if (!rb) {
        conn_close(c);
        request_finish(r);
        return;
    }
    if (close)
        c->close_after_write = true;
    conn_writev(c, &rb, 1, false);
    pl_rcbuf_unref(rb);
    if (close && !c->closing) {
        /* Stop parsing further pipelined requests; close once the response is written. */
        if (c->reading) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = false;
        }
        pl_buf_reset(&c->in);
        if (c->tcp.write_queue_size == 0)
            conn_linger(c);
        else
            conn_timer(c, TIMER_LINGER, CLOSE_LINGER_MS);
    }
    request_finish(r);
}

void http_respond_json(http_request_t *req, int status, json_t *json) {
    char *s = json_dumps(json, JSON_COMPACT);
    json_decref(json);
    if (!s) {
        http_respond(req, 500, "text/plain", "", 0);
        return;
    }
    http_respond(req, status, "application/json; charset=utf-8", s, strlen(s));
    free(s);
}

void http_respond_error(http_request_t *req, int status, const char *message) {
    json_t *j = json_pack("{s:i, s:s, s:s}", "statusCode", status, "message", message, "error",
                          http_status_text(status));
    http_respond_json(req, status, j);
}

void http_request_release(http_request_t *req) {
    req_priv_t *r = priv(req);
    http_conn_t *c = req->conn;
    assert(!r->finished);
    r->abort_cb = NULL;
    if (!r->aborted && !c->closing)
        conn_close(c);
    request_finish(r);
}

/* Answers a protocol error outside any handler (the parser refused) and closes. */
static void conn_respond_error_close(http_conn_t *c, int status, const char *msg) {
    if (c->closing)
        return;
    if (c->active) {
        /* A handler still owns a request: responses must stay in order, so just close. */
        conn_close(c);
        return;
    }
    char body[256];
    int blen = snprintf(body, sizeof body, "{\"statusCode\":%d,\"message\":\"%s\",\"error\":\"%s\"}",
                        status, msg, http_status_text(status));
    char out[512];
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: application/json; "
                     "charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
                     status, http_status_text(status), http_date(), blen, body);
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    c->close_after_write = true;
    if (conn_write_copy(c, out, (size_t)n, false) == 0 && !c->closing) {
        if (c->tcp.write_queue_size == 0)
            conn_linger(c);
        else
            conn_timer(c, TIMER_LINGER, CLOSE_LINGER_MS);
    }
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
    http_conn_t *c = req->data;
    (void)status;
    free(req);
    conn_unref(c);
}

/* Lingering close (RFC 9112 section 9.6): after a response that ends the connection, shut the
 * write side and keep reading (and discarding) until the client closes or a short timeout, so
 * that bytes it is still sending do not make the kernel reset the connection before the client
 * read the response. */
static void conn_linger(http_conn_t *c) {
    if (c->closing || c->lingering)
        return;
    if (c->mode != CONN_HTTP || c->eof) {
        conn_close(c);
        return;
    }
    c->lingering = true;
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req || uv_shutdown(req, (uv_stream_t *)&c->tcp, shutdown_cb) != 0) {
        free(req);
        conn_close(c);
        return;
    }
    req->data = c;
    c->refs++;
    if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
        c->reading = true;
    conn_timer(c, TIMER_LINGER, CLOSE_LINGER_MS);
}

/* ---- request accessors -------------------------------------------------------------------- */

const pl_slice_t *http_request_header(const http_request_t *req, const char *name) {
    for (size_t i = 0; i < req->nheaders; i++)
        if (pl_slice_case_eq_cstr(req->headers[i].name, name))
            return &req->headers[i].value;
    return NULL;
}

size_t http_request_header_count(const http_request_t *req, const char *name) {
    size_t n = 0;
    for (size_t i = 0; i < req->nheaders; i++)
        if (pl_slice_case_eq_cstr(req->headers[i].name, name))
            n++;
    return n;
}

pl_slice_t http_request_param(const http_request_t *req, const char *name) {
    for (size_t i = 0; i < req->nparams; i++)
        if (pl_slice_eq_cstr(req->param_names[i], name))
            return req->param_values[i];
    return (pl_slice_t){NULL, 0};
}

const char *http_request_remote_ip(const http_request_t *req) {
    return req->conn->ip;
}

bool http_request_aborted(const http_request_t *req) {
    return priv(req)->aborted;
}

void http_request_on_abort(http_request_t *req, void (*cb)(http_request_t *, void *), void *ud) {
    priv(req)->abort_cb = cb;
    priv(req)->abort_ud = ud;
}

/* ---- upgrade -------------------------------------------------------------------------------- */

http_conn_t *http_request_upgrade(http_request_t *req, pl_slice_t head,
                                  const http_upgrade_ops_t *ops, void *ud) {
    req_priv_t *r = priv(req);
    http_conn_t *c = req->conn;
    assert(!r->finished);
    if (r->aborted || c->closing) {
        request_finish(r);
        return NULL;
    }
    c->mode = CONN_UPGRADED;
    c->ops = ops;
    c->ud = ud;
    conn_timer_release(c);
    if (c->in.len == 0) {
        /* An upgraded connection parses no more HTTP: do not keep the head's buffer (about
         * 512 bytes per idle WebSocket). */
        pl_buf_dispose(&c->in);
        pl_buf_init(&c->in, MAX_BUFFERED_INPUT);
    }
    conn_timer(c, TIMER_NONE, 0);
    if (conn_write_copy(c, head.ptr, head.len, false) < 0) {
        request_finish(r);
        return NULL;
    }
    /* Reading may have been stopped while the request was handled (pipelined bytes piling
     * up): the new protocol reads from now on. */
    if (!c->reading && !c->eof && !c->paused_by_owner &&
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
        c->reading = true;
    /* Bytes that followed the head are delivered on the next loop turn. */
    c->refs++;
    request_finish(r);
    if (c->closing) {
        conn_unref(c);
        return NULL;
    }
    http_server_t *s = c->server;
    if (!c->queued) {
        c->queued = true;
        c->refs++;
        c->defer_next = s->defer_head;
        s->defer_head = c;
        uv_idle_start(&s->defer, defer_cb);
    }
    conn_unref(c);
    return c;
}

/* ---- parsing -------------------------------------------------------------------------------- */

static req_priv_t *req_new(http_conn_t *c) {
    req_priv_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    pl_buf_init(&r->head, c->server->limits.max_header_bytes);
    pl_buf_init(&r->pub.body, c->server->limits.max_body_bytes);
    pl_buf_init(&r->resp_headers, 16 * 1024);
    r->pub.conn = c;
    r->pub.priv_ = r;
    return r;
}

static int refuse(http_parser *p, int status, const char *msg) {
    http_conn_t *c = p->data;
    c->error_status = status;
    c->error_msg = msg;
    return -1;
}

static int on_message_begin(http_parser *p) {
    http_conn_t *c = p->data;
    if (c->cur)
        return refuse(p, 400, "Bad request");
    c->cur = req_new(c);
    if (!c->cur)
        return refuse(p, 503, "Out of memory");
    conn_timer(c, TIMER_HEAD, c->server->limits.header_timeout_ms);
    return 0;
}

static int head_append(http_parser *p, const char *at, size_t len) {
    http_conn_t *c = p->data;
    int rc = pl_buf_append(&c->cur->head, at, len);
    if (rc == PL_ETOOBIG)
        return refuse(p, 431, "Request header fields too large");
    if (rc)
        return refuse(p, 503, "Out of memory");
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
    http_conn_t *c = p->data;
    req_priv_t *r = c->cur;
    if (r->url_len == 0)
        r->url_off = r->head.len;
    r->url_len += len;
    return head_append(p, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
    http_conn_t *c = p->data;
    req_priv_t *r = c->cur;
    if (r->nhdr == 0 || r->in_value) {
        if (r->nhdr >= c->server->limits.max_headers)
            return refuse(p, 431, "Too many header fields");
        if (r->nhdr == r->hdr_cap) {
            size_t cap = r->hdr_cap ? r->hdr_cap * 2 : 16;
            struct hdr_off *h = realloc(r->hdr, cap * sizeof *h);
            if (!h)
                return refuse(p, 503, "Out of memory");
            r->hdr = h;
            r->hdr_cap = cap;
        }
        r->hdr[r->nhdr++] = (struct hdr_off){r->head.len, 0, r->head.len, 0};
        r->in_value = false;
    }
    r->hdr[r->nhdr - 1].name_len += len;
    r->hdr[r->nhdr - 1].value_off = r->head.len + len;
    return head_append(p, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
    http_conn_t *c = p->data;
    req_priv_t *r = c->cur;
    if (r->nhdr == 0)
        return refuse(p, 400, "Bad request");
    if (!r->in_value) {
        r->in_value = true;
        r->hdr[r->nhdr - 1].value_off = r->head.len;
    } else {
        /* A value piece that starts a new line is obsolete line folding (RFC 9112 5.2). */
        char before = at > c->parse_base ? at[-1] : c->prev_tail;
        if (before == '\n')
            return refuse(p, 400, "Obsolete line folding");
    }
    r->hdr[r->nhdr - 1].value_len += len;
    return head_append(p, at, len);
}

static bool is_tchar(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static pl_slice_t trim(pl_slice_t s) {
    while (s.len && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
        s.ptr++;
        s.len--;
    }
    while (s.len && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t'))
        s.len--;
    return s;
}

static int on_headers_complete(http_parser *p) {
    http_conn_t *c = p->data;
    req_priv_t *r = c->cur;
    http_request_t *q = &r->pub;
    const http_limits_t *lim = &c->server->limits;
    /* The head buffer no longer grows: make the slices. */
    q->headers = calloc(r->nhdr ? r->nhdr : 1, sizeof *q->headers);
    if (!q->headers)
        return refuse(p, 503, "Out of memory");
    q->nheaders = r->nhdr;
    for (size_t i = 0; i < r->nhdr; i++) {
        q->headers[i].name = pl_slice(r->head.data + r->hdr[i].name_off, r->hdr[i].name_len);
        q->headers[i].value =
            trim(pl_slice(r->head.data + r->hdr[i].value_off, r->hdr[i].value_len));
    }
    /* Field names are tokens (RFC 9110 section 5.1); http-parser as packaged is lenient. */
    for (size_t i = 0; i < q->nheaders; i++) {
        pl_slice_t n = q->headers[i].name;
        if (n.len == 0)
            return refuse(p, 400, "Invalid header name");
        for (size_t k = 0; k < n.len; k++)
            if (!is_tchar((unsigned char)n.ptr[k]))
                return refuse(p, 400, "Invalid header name");
        pl_slice_t v = q->headers[i].value;
        for (size_t k = 0; k < v.len; k++) {
            unsigned char ch = (unsigned char)v.ptr[k];
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return refuse(p, 400, "Invalid header value");
        }
    }
    q->target = pl_slice(r->head.data + r->url_off, r->url_len);
    q->path = q->target;
    const char *qm = q->target.len ? memchr(q->target.ptr, '?', q->target.len) : NULL;
    if (qm) {
        q->path.len = (size_t)(qm - q->target.ptr);
        q->query = pl_slice(qm + 1, q->target.len - q->path.len - 1);
    } else {
        q->query = pl_slice(q->target.ptr + q->target.len, 0);
    }
    q->method = p->method;
    const char *mname = http_method_str((enum http_method)p->method);
    q->method_name = pl_slice_cstr(mname);
    q->http_minor = p->http_minor;
    q->keep_alive = http_should_keep_alive(p) != 0;
    q->upgrade = p->upgrade;
    if (p->http_major != 1)
        return refuse(p, 400, "Unsupported HTTP version");
    if (q->target.len == 0 || memchr(q->target.ptr, '\0', q->target.len))
        return refuse(p, 400, "Bad request target");
    /* Transfer-Encoding: only "chunked" is implemented (RFC 9112 section 6.1: 501 otherwise). */
    size_t nte = http_request_header_count(q, "transfer-encoding");
    if (nte > 1)
        return refuse(p, 501, "Unsupported Transfer-Encoding");
    const pl_slice_t *te = http_request_header(q, "transfer-encoding");
    if (te && !pl_slice_case_eq_cstr(*te, "chunked"))
        return refuse(p, 501, "Unsupported Transfer-Encoding");
    if (te && http_request_header(q, "content-length"))
        return refuse(p, 400, "Both Content-Length and Transfer-Encoding");
    if (http_request_header_count(q, "content-length") > 1)
        return refuse(p, 400, "Repeated Content-Length");
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > lim->max_body_bytes)
        return refuse(p, 413, "Request body too large");
    if (http_request_header_count(q, "host") > 1)
        return refuse(p, 400, "Repeated Host");
    if ((p->flags & F_CHUNKED) || ((p->flags & F_CONTENTLENGTH) && p->content_length > 0))
        conn_timer(c, TIMER_BODY, lim->header_timeout_ms);
    return 0;
}

static int on_chunk_header(http_parser *p) {
    http_conn_t *c = p->data;
    c->chunk_left = p->content_length;
    return 0;
}

/* The packaged http-parser is built lenient: it takes any two bytes after a chunk's data as
 * its CRLF. Check them here (the bytes follow the data in the buffer, or start the next one). */
static int check_chunk_end(http_conn_t *c, const char *at) {
    const char *end = c->parse_base + c->parse_len;
    static const char crlf[2] = {'\r', '\n'};
    size_t k = 0;
    for (; k < 2 && at + k < end; k++)
        if (at[k] != crlf[k])
            return -1;
    c->crlf_need = (uint8_t)(2 - k);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
    http_conn_t *c = p->data;
    if (p->flags & F_CHUNKED) {
        c->chunk_left = len < c->chunk_left ? c->chunk_left - len : 0;
        if (c->chunk_left == 0 && check_chunk_end(c, at + len) != 0)
            return refuse(p, 400, "Invalid chunked encoding");
    }
    int rc = pl_buf_append(&c->cur->pub.body, at, len);
    if (rc == PL_ETOOBIG)
        return refuse(p, 413, "Request body too large");
    if (rc)
        return refuse(p, 503, "Out of memory");
    return 0;
}

static int on_message_complete(http_parser *p) {
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings g_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_chunk_header = on_chunk_header,
};

/* Routes and runs a complete request. */
static void dispatch(http_conn_t *c, req_priv_t *r) {
    http_request_t *q = &r->pub;
    c->active = r;
    c->refs++; /* held by the request until it is finished */
    c->got_bytes = false;
    conn_timer(c, TIMER_NONE, 0);
    http_handler_cb handler = NULL;
    void *ud = NULL;
    char allow[128];
    http_route_result_t res = http_router_match(c->server->router, q->method_name, q->path, q,
                                                &handler, &ud, allow, sizeof allow);
    if (res == HTTP_ROUTE_FOUND) {
        handler(q, ud);
    } else if (res == HTTP_ROUTE_BAD_METHOD) {
        http_response_header(q, "Allow", allow);
        http_respond_error(q, 405, "Method not allowed");
    } else {
        http_respond_error(q, 404, "Not found");
    }
}

/* Parses buffered input until a request is handed out, input runs dry, or an error. */
static void conn_process(http_conn_t *c) {
    if (c->in_process)
        return;
    c->in_process = true;
    c->refs++;
    while (!c->closing) {
        if (c->mode == CONN_UPGRADED) {
            if (c->in.len && c->ops) {
                /* Hand over whatever arrived after the head, once. */
                size_t n;
                char *bytes = pl_buf_steal(&c->in, &n);
                pl_buf_init(&c->in, MAX_BUFFERED_INPUT);
                c->ops->on_read(c->ud, bytes, n);
                free(bytes);
            }
            break;
        }
        if (c->active || c->in.len == 0)
            break;
        if (c->crlf_need) {
            /* The rest of a chunk's CRLF starts this buffer. */
            size_t off = 2 - c->crlf_need, k = 0;
            for (; k < c->crlf_need && k < c->in.len; k++)
                if (c->in.data[k] != "\r\n"[off + k])
                    break;
            if (k < c->crlf_need && k < c->in.len) {
                conn_respond_error_close(c, 400, "Invalid chunked encoding");
                break;
            }
            c->crlf_need = (uint8_t)(c->crlf_need - k);
        }
        c->parse_base = c->in.data;
        c->parse_len = c->in.len;
        size_t n = http_parser_execute(&c->parser, &g_settings, c->in.data, c->in.len);
        if (n > 0)
            c->prev_tail = c->in.data[n - 1];
        enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);
        if (c->cur && n > 0)
            c->got_bytes = true;
        if (err == HPE_PAUSED || (err == HPE_OK && c->parser.upgrade && c->cur)) {
            /* A complete message (or an upgrade head): hand it out. */
            http_parser_pause(&c->parser, 0);
            if (c->parser.upgrade) {
                /* Everything after the head belongs to the new protocol. */
                pl_buf_consume(&c->in, n);
                req_priv_t *r = c->cur;
                c->cur = NULL;
                http_parser_init(&c->parser, HTTP_REQUEST);
                c->parser.data = c;
                dispatch(c, r);
                continue;
            }
            pl_buf_consume(&c->in, n);
            req_priv_t *r = c->cur;
            c->cur = NULL;
            dispatch(c, r);
            continue;
        }
        if (err != HPE_OK) {
            int status = c->error_status ? c->error_status : 400;
            const char *msg = c->error_status ? c->error_msg : http_errno_description(err);
            if (!c->error_status && err == HPE_HEADER_OVERFLOW)
                status = 431, msg = "Request header fields too large";
            if (!c->error_status && (err == HPE_INVALID_TRANSFER_ENCODING))
                status = 501, msg = "Unsupported Transfer-Encoding";
            pl_log_info("http.bad_request", "conn=%llu status=%d reason=\"%s\"",
                        (unsigned long long)c->id, status, msg);
            conn_respond_error_close(c, status, msg);
            break;
        }
        /* Consumed everything without completing a message: wait for more. */
        pl_buf_consume(&c->in, n);
        if (c->eof) {
            conn_close(c);
        }
        break;
    }
    if (!c->closing && c->mode == CONN_HTTP && !c->active) {
        if (c->eof) {
            /* The peer finished sending: a partial request can never complete. */
            conn_close(c);
        } else if (!c->cur && c->in.len == 0 && c->timer_kind != TIMER_LINGER) {
            conn_timer(c, TIMER_IDLE, c->server->limits.idle_timeout_ms);
            /* Idle keep-alive: no input buffer is kept between requests. */
            pl_buf_dispose(&c->in);
            pl_buf_init(&c->in, MAX_BUFFERED_INPUT);
        }
        if (!c->closing && !c->reading && !c->eof && !c->close_after_write) {
            if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
                c->reading = true;
        }
    }
    c->in_process = false;
    conn_unref(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    http_conn_t *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->server->read_buf, READ_BUF_SIZE);
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
    http_conn_t *c = st->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (c->lingering) {
            conn_close(c);
            return;
        }
        if (nread != UV_EOF)
            pl_log_debug("http.read_error", "conn=%llu err=%s", (unsigned long long)c->id,
                         uv_err_name((int)nread));
        uv_read_stop(st);
        c->reading = false;
        c->eof = true;
        /* A request in progress is still answered after a half-close, unless its handler
         * asked to hear of the peer going away (a held long-poll). */
        bool abort_active = c->active && c->active->abort_cb;
        if (c->mode == CONN_UPGRADED || abort_active || nread != UV_EOF) {
            conn_close(c);
            return;
        }
        if (c->active)
            return; /* answered, then closed (see http_respond) */
        /* Parse whatever complete requests are buffered; a partial one is dropped. */
        conn_process(c);
        return;
    }
    if (c->mode == CONN_UPGRADED) {
        if (c->in.len) {
            /* Leftover head bytes not delivered yet: keep the order. */
            if (pl_buf_append(&c->in, buf->base, (size_t)nread)) {
                conn_close(c);
                return;
            }
            conn_process(c);
            return;
        }
        if (c->ops)
            c->ops->on_read(c->ud, buf->base, (size_t)nread);
        return;
    }
    if (c->close_after_write)
        return; /* answered with close: ignore the rest */
    if (pl_buf_append(&c->in, buf->base, (size_t)nread)) {
        /* Too much pipelined input while a request is in progress: stop reading for now. */
        conn_close(c);
        return;
    }
    if (c->active) {
        /* Keep at most MAX_BUFFERED_INPUT bytes of pipelined requests; then push back. */
        if (c->in.len >= MAX_BUFFERED_INPUT / 2) {
            uv_read_stop(st);
            c->reading = false;
        }
        return;
    }
    conn_process(c);
}

/* ---- deferred processing --------------------------------------------------------------------- */

static void defer_cb(uv_idle_t *h) {
    http_server_t *s = h->data;
    http_conn_t *list = s->defer_head;
    s->defer_head = NULL;
    uv_idle_stop(h);
    while (list) {
        http_conn_t *c = list;
        list = c->defer_next;
        c->queued = false;
        if (!c->closing)
            conn_process(c);
        conn_unref(c);
    }
}

/* ---- accept ---------------------------------------------------------------------------------- */

static void accept_cb(uv_stream_t *ls, int status) {
    http_server_t *s = ls->data;
    if (status < 0) {
        uint64_t now = pl_mono_ms();
        if (now - s->last_emfile_log > 1000) {
            s->last_emfile_log = now;
            pl_log_error("http.accept_failed",
                         "err=%s hint=\"raise the open-file limit (ulimit -n) or lower "
                         "max-connections\" connections=%zu",
                         uv_err_name(status), s->nconns);
        }
        return;
    }
    http_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->server = s;
    c->id = ++s->next_id;
    c->refs = 1; /* the tcp handle; the timer takes its own reference when created */
    pl_buf_init(&c->in, MAX_BUFFERED_INPUT);
    uv_tcp_init(s->loop, &c->tcp);

    c->tcp.data = c;

    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) < 0) {
        s->nserved++;
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->ip, sizeof c->ip);
        else
            uv_ip4_name((struct sockaddr_in *)&ss, c->ip, sizeof c->ip);
    }
    if (s->nserved >= s->limits.max_connections || s->shutting_down) {
        c->reject_503 = true;
        pl_log_warn("http.too_many_connections", "limit=%u", s->limits.max_connections);
        conn_respond_error_close(c, 503, "Too many connections");
        return;
    }
    s->nserved++;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    conn_timer(c, TIMER_HEAD, s->limits.header_timeout_ms);
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
        c->reading = true;
    else
        conn_close(c);
}

void http_conn_pause(http_conn_t *c) {
    c->paused_by_owner = true;
    if (c->reading && !c->closing) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

void http_conn_resume(http_conn_t *c) {
    c->paused_by_owner = false;
    if (!c->reading && !c->closing && !c->eof && !c->close_after_write) {
        if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
            c->reading = true;
    }
}

/* ---- server ----------------------------------------------------------------------------------- */

static void server_handle_closed(uv_handle_t *h) {
    http_server_t *s = h->data;
    s->handles_open--;
    if (h == (uv_handle_t *)&s->listener)
        s->listener_closed = true;
    if (s->freeing) {
        if (s->handles_open == 0)
            free(s);
        return;
    }
    maybe_finish_shutdown(s);
}

http_server_t *http_server_new(uv_loop_t *loop, const http_limits_t *limits, http_router_t *router) {
    http_server_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->loop = loop;
    s->limits = *limits;
    s->router = router;
    s->listener.data = s;
    s->listener_closed = true; /* until listen creates it */
    uv_idle_init(loop, &s->defer);
    s->defer.data = s;
    uv_timer_init(loop, &s->shutdown_timer);
    s->shutdown_timer.data = s;
    uv_check_init(loop, &s->flush_check);
    s->flush_check.data = s;
    uv_check_start(&s->flush_check, flush_check_cb);
    uv_unref((uv_handle_t *)&s->flush_check);
    uv_prepare_init(loop, &s->flush_prepare);
    s->flush_prepare.data = s;
    uv_prepare_start(&s->flush_prepare, flush_prepare_cb);
    uv_unref((uv_handle_t *)&s->flush_prepare);
    s->handles_open = 4;
    return s;
}

int http_server_listen(http_server_t *s, const char *host, unsigned port, bool reuse_port) {
    struct sockaddr_storage addr;
    int rc;
    if (strchr(host, ':'))
        rc = uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&addr);
    else
        rc = uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&addr);
    if (rc)
        return rc;
    if (!s->listener_closed || s->listening)
        return UV_EALREADY;
    /* The socket is created before bind so that SO_REUSEPORT can be set on it. */
    rc = uv_tcp_init_ex(s->loop, &s->listener, addr.ss_family);
    if (rc)
        return rc;
    s->listener.data = s;
    s->listener_closed = false;
    s->handles_open++;
    if (reuse_port) {
        uv_os_fd_t fd;
        int one = 1;
        if (uv_fileno((uv_handle_t *)&s->listener, &fd) == 0 &&
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
            return UV_EINVAL;
    }
    rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
    if (rc)
        return rc;
    rc = uv_listen((uv_stream_t *)&s->listener, 4096, accept_cb);
    if (rc)
        return rc;
    struct sockaddr_storage bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    s->listening = true;
    return 0;
}

unsigned http_server_port(const http_server_t *s) {
    return s->port;
}

size_t http_server_connection_count(const http_server_t *s) {
    return s->nserved;
}

static void maybe_finish_shutdown(http_server_t *s) {
    if (!s->shutting_down || !s->listener_closed || s->nconns > 0 || !s->shutdown_cb)
        return;
    if (uv_is_active((uv_handle_t *)&s->shutdown_timer))
        uv_timer_stop(&s->shutdown_timer);
    void (*cb)(http_server_t *, void *) = s->shutdown_cb;
    s->shutdown_cb = NULL;
    cb(s, s->shutdown_ud);
}

static void shutdown_timeout_cb(uv_timer_t *t) {
    http_server_t *s = t->data;
    if (s->nconns)
        pl_log_warn("http.shutdown_forced", "connections=%zu", s->nconns);
    while (s->conns)
        conn_close(s->conns);
}

void http_server_shutdown(http_server_t *s, uint32_t timeout_ms,
                          void (*cb)(http_server_t *, void *), void *ud) {
    if (s->shutting_down)
        return;
    s->shutting_down = true;
    s->shutdown_cb = cb;
    s->shutdown_ud = ud;
    if (!s->listener_closed && !uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, server_handle_closed);
    /* Close idle connections; ask upgraded ones to close; let active requests finish. */
    http_conn_t *c = s->conns;
    while (c) {
        http_conn_t *next = c->next;
        if (c->mode == CONN_UPGRADED) {
            if (c->ops && c->ops->on_shutdown)
                c->ops->on_shutdown(c->ud);
            else
                http_conn_close(c);
        } else if (!c->active) {
            conn_close(c);
        }
        c = next;
    }
    uv_timer_start(&s->shutdown_timer, shutdown_timeout_cb, timeout_ms, 0);
    maybe_finish_shutdown(s);
}

void http_server_free(http_server_t *s) {
    if (!s)
        return;
    assert(s->nconns == 0);
    flush_all(s); /* releases the references of closed connections still on the list */
    s->freeing = true;
    s->shutdown_cb = NULL;
    if (!s->listener_closed && !uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, server_handle_closed);
    uv_close((uv_handle_t *)&s->defer, server_handle_closed);
    uv_close((uv_handle_t *)&s->shutdown_timer, server_handle_closed);
    uv_close((uv_handle_t *)&s->flush_check, server_handle_closed);
    uv_close((uv_handle_t *)&s->flush_prepare, server_handle_closed);
}
