/* The load client's HTTP/1.1 keep-alive client (see lg_http.h): a libuv TCP stream, a request
 * buffer written with uv_write, and a response parser that waits for the header block, reads
 * the status code and Content-Length, then for the body. */
#include "lg_http.h"

#include "core/buf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LG_HTTP_MAX_RESPONSE (16u * 1024u * 1024u)

struct lg_http {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    lg_http_cb cb;
    void *ud;
    pl_buf_t out;        /* request waiting for the connection or for the write to finish */
    pl_buf_t writing;    /* the bytes of the write in progress */
    pl_buf_t in;         /* response bytes received */
    uint64_t start_ns;   /* uv_hrtime of the request in flight */
    bool connected;
    bool write_busy;
    bool busy;           /* a request is in flight */
    bool dead;           /* error reported, or closing */
};

static void on_closed(uv_handle_t *hd) {
    lg_http_t *h = hd->data;
    pl_buf_dispose(&h->out);
    pl_buf_dispose(&h->writing);
    pl_buf_dispose(&h->in);
    free(h);
}

static void fail(lg_http_t *h, int err) {
    if (h->dead) {
        return;
    }
    h->dead = true;
    h->busy = false;
    h->cb(h, err, NULL, 0, 0, h->ud);
}

static void flush(lg_http_t *h);

static void on_written(uv_write_t *w, int status) {
    lg_http_t *h = w->data;
    h->write_busy = false;
    pl_buf_reset(&h->writing);
    if (status != 0) {
        fail(h, status);
        return;
    }
    flush(h);
}

static void flush(lg_http_t *h) {
    if (!h->connected || h->write_busy || h->out.len == 0 || h->dead) {
        return;
    }
    pl_buf_t t = h->writing;
    h->writing = h->out;
    h->out = t;
    pl_buf_reset(&h->out);
    uv_buf_t b = uv_buf_init(h->writing.data, (unsigned)h->writing.len);
    h->write.data = h;
    int rc = uv_write(&h->write, (uv_stream_t *)&h->tcp, &b, 1, on_written);
    if (rc != 0) {
        fail(h, rc);
        return;
    }
    h->write_busy = true;
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
    lg_http_t *h = hd->data;
    if (pl_buf_reserve(&h->in, 65536) != 0) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init(h->in.data + h->in.len, (unsigned)(h->in.cap - h->in.len));
}

/* Parses as many complete responses as h->in holds. */
static void parse(lg_http_t *h) {
    while (h->in.len > 0 && !h->dead) {
        const char *d = h->in.data;
        const char *eoh = memmem(d, h->in.len, "\r\n\r\n", 4);
        if (!eoh) {
            if (h->in.len > 65536) {
                fail(h, PL_ETOOBIG);
            }
            return;
        }
        size_t head = (size_t)(eoh - d) + 4;
        if (h->in.len < 12 || memcmp(d, "HTTP/1.1 ", 9) != 0) {
            fail(h, PL_EINVAL);
            return;
        }
        int status = (d[9] - '0') * 100 + (d[10] - '0') * 10 + (d[11] - '0');
        uint64_t clen = 0;
        bool have_len = false, close_after = false;
        const char *line = memchr(d, '\n', head);
        while (line && (size_t)(line + 1 - d) < head - 2) {
            line++;
            const char *eol = memchr(line, '\n', head - (size_t)(line - d));
            size_t ll = eol ? (size_t)(eol - line) : 0;
            if (ll > 15 && strncasecmp(line, "content-length:", 15) == 0) {
                const char *p = line + 15;
                while (*p == ' ') {
                    p++;
                }
                clen = strtoull(p, NULL, 10);
                have_len = true;
            } else if (ll > 11 && strncasecmp(line, "connection:", 11) == 0 &&
                       memmem(line, ll, "close", 5)) {
                close_after = true;
            }
            line = eol;
        }
        if (!have_len || clen > LG_HTTP_MAX_RESPONSE) {
            fail(h, PL_EINVAL);
            return;
        }
        if (h->in.len - head < clen) {
            return;
        }
        uint64_t lat = uv_hrtime() - h->start_ns;
        h->busy = false;
        h->cb(h, status, d + head, (size_t)clen, lat, h->ud);
        if (h->dead) {
            return;
        }
        pl_buf_consume(&h->in, head + (size_t)clen);
        if (close_after) {
            fail(h, UV_EOF);
        }
    }
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    lg_http_t *h = s->data;
    if (n < 0) {
        fail(h, (int)n);
        return;
    }
    h->in.len += (size_t)n;
    parse(h);
}

static void on_connect(uv_connect_t *req, int status) {
    lg_http_t *h = req->data;
    if (status != 0) {
        fail(h, status);
        return;
    }
    if (h->dead) {
        return;
    }
    h->connected = true;
    (void)uv_tcp_nodelay(&h->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&h->tcp, on_alloc, on_read);
    if (rc != 0) {
        fail(h, rc);
        return;
    }
    flush(h);
}

lg_http_t *lg_http_new(uv_loop_t *loop, const char *host, uint16_t port, lg_http_cb cb, void *ud) {
    struct sockaddr_in sa;
    if (uv_ip4_addr(host, port, &sa) != 0) {
        return NULL;
    }
    lg_http_t *h = calloc(1, sizeof *h);
    if (!h) {
        return NULL;
    }
    h->cb = cb;
    h->ud = ud;
    pl_buf_init(&h->out, 0);
    pl_buf_init(&h->writing, 0);
    pl_buf_init(&h->in, LG_HTTP_MAX_RESPONSE + 65536);
    if (uv_tcp_init(loop, &h->tcp) != 0) {
        free(h);
        return NULL;
    }
    h->tcp.data = h;
    h->connect.data = h;
    int rc = uv_tcp_connect(&h->connect, &h->tcp, (const struct sockaddr *)&sa, on_connect);
    if (rc != 0) {
        h->dead = true;
        uv_close((uv_handle_t *)&h->tcp, on_closed);
        return NULL;
    }
    return h;
}

int lg_http_request(lg_http_t *h, const char *method, const char *target, const char *headers,
                    const char *body, size_t body_len) {
    if (h->dead) {
        return UV_ENOTCONN;
    }
    if (h->busy) {
        return UV_EBUSY;
    }
    int rc = pl_buf_printf(&h->out,
                           "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%sContent-Length: %zu\r\n\r\n",
                           method, target, headers ? headers : "",
                           body ? "Content-Type: application/json\r\n" : "", body_len);
    if (rc == 0 && body_len) {
        rc = pl_buf_append(&h->out, body, body_len);
    }
    if (rc != 0) {
        return rc;
    }
    h->busy = true;
    h->start_ns = uv_hrtime();
    flush(h);
    return 0;
}

bool lg_http_busy(const lg_http_t *h) {
    return h->busy;
}

void lg_http_close(lg_http_t *h) {
    h->dead = true;
    if (!uv_is_closing((uv_handle_t *)&h->tcp)) {
        uv_close((uv_handle_t *)&h->tcp, on_closed);
    }
}
