/* eio_echo: a plain Engine.IO v4 server at /engine.io/ that echoes every message back as it came
 * (text as text, binary as binary). It is the driver of the WebSocket and Engine.IO integration
 * tests (tests/integration/20-ws, 30-eio) and a short example of the eio API: create a router
 * and an HTTP server, mount eio_server_handle, answer on_message with eio_socket_send.
 *
 * Flags: --port N (default 3001; 0 = any free port), --host H (127.0.0.1), --ping-interval MS,
 * --ping-timeout MS, --max-payload BYTES, --upgrade-timeout MS, --max-connections N,
 * --cors-origin ORIGIN (reflect this one origin for polling CORS; none by default),
 * --log-level debug|info|warn|error. Once listening it logs a line with `event=http.listen` and
 * `port=N` on stderr. SIGINT/SIGTERM stop it gracefully (sessions closed, WebSockets closed
 * with 1001, every handle freed) and it exits 0. SIGUSR1 logs `event=echo.stats` with the
 * session count and malloc's bytes in use (for memory-per-connection measurements).
 * Two hooks for the tests: the text message "__close__" is not echoed but makes the server close
 * the session (eio_socket_close), and a handshake with `refuse=1` in its query is refused by
 * on_open. */
#include "core/buf.h"
#include "core/id.h"
#include "core/log.h"
#include "eio/server.h"
#include "http/query.h"
#include "http/router.h"
#include "http/server.h"

#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uv_loop_t *loop;
    http_router_t *router;
    http_server_t *http;
    eio_server_t *eio;
    uv_signal_t sigint, sigterm, sigusr1;
    const char *cors_origin; /* the one origin allowed, or NULL */
    int pending_stops;       /* eio close + HTTP shutdown still to finish */
    bool stopping;
} echo_t;

static echo_t g_echo; /* one per process: the loop, the servers and the signal handles */

static void on_message(eio_socket_t *s, const char *data, size_t len, bool binary, void *ud) {
    (void)ud;
    if (!binary && len == 9 && memcmp(data, "__close__", 9) == 0) {
        eio_socket_close(s); /* the server-side close, for the tests */
        return;
    }
    /* Text is sent as it goes on a WebSocket: the type digit '4', then the text. */
    size_t extra = binary ? 0 : 1;
    pl_rcbuf_t *b = pl_rcbuf_new(len + extra);
    if (!b)
        return;
    if (!binary)
        b->data[0] = '4';
    if (len)
        memcpy(b->data + extra, data, len);
    (void)eio_socket_send(s, b, binary);
    pl_rcbuf_unref(b);
}

/* Refuses handshakes whose query holds refuse=1 (403 {"code":4,...}), for the tests. */
static int on_open(eio_socket_t *s, http_request_t *req, void *ud) {
    (void)s, (void)ud;
    pl_buf_t v;
    pl_buf_init(&v, 16);
    int found = http_query_get(req->query, "refuse", &v);
    bool refuse = found == 1 && v.len == 1 && v.data[0] == '1';
    pl_buf_dispose(&v);
    return refuse ? -1 : 0;
}

static void on_close(eio_socket_t *s, const char *reason, void *ud) {
    (void)ud;
    pl_log_debug("echo.close", "sid=%s reason=\"%s\"", eio_socket_id(s), reason);
}

static bool cors_allow(const pl_slice_t *origin, void *ud) {
    echo_t *e = ud;
    return e->cors_origin && pl_slice_eq_cstr(*origin, e->cors_origin);
}

static void signal_closed_cb(uv_handle_t *h) {
    (void)h;
}

static void maybe_done(echo_t *e) {
    if (--e->pending_stops > 0)
        return;
    http_server_free(e->http);
    e->http = NULL;
    uv_close((uv_handle_t *)&e->sigint, signal_closed_cb);
    uv_close((uv_handle_t *)&e->sigterm, signal_closed_cb);
    uv_close((uv_handle_t *)&e->sigusr1, signal_closed_cb);
    pl_log_info("shutdown.done", "");
}

static void eio_closed_cb(void *ud) {
    echo_t *e = ud;
    e->eio = NULL;
    maybe_done(e);
}

static void http_stopped_cb(http_server_t *s, void *ud) {
    (void)s;
    maybe_done(ud);
}

static void signal_cb(uv_signal_t *h, int signum) {
    echo_t *e = h->data;
    if (e->stopping)
        return;
    e->stopping = true;
    pl_log_info("shutdown.start", "signal=%d sessions=%zu", signum,
                eio_server_session_count(e->eio));
    e->pending_stops = 2;
    /* Sessions first (held polls answered, WebSockets closed with 1001), then the HTTP server
     * stops taking requests and waits for the connections to finish. */
    eio_server_close(e->eio, eio_closed_cb, e);
    http_server_shutdown(e->http, 3000, http_stopped_cb, e);
}

/* SIGUSR1: one log line with the session count and the bytes malloc has handed out, for the
 * memory-per-connection measurements (tests/integration/20-ws/04-memory.test.mjs). */
static void stats_cb(uv_signal_t *h, int signum) {
    (void)signum;
    echo_t *e = h->data;
    struct mallinfo2 mi = mallinfo2();
    pl_log_info("echo.stats", "sessions=%zu connections=%zu heap_in_use=%zu heap_total=%zu",
                e->eio ? eio_server_session_count(e->eio) : 0,
                e->http ? http_server_connection_count(e->http) : 0, mi.uordblks, mi.arena);
}

static int parse_u32(const char *s, uint32_t *out) {
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static void usage(void) {
    fprintf(stderr, "usage: eio_echo [--port N] [--host H] [--ping-interval MS] "
                    "[--ping-timeout MS] [--max-payload BYTES] [--upgrade-timeout MS] "
                    "[--max-connections N] [--cors-origin ORIGIN] [--log-level L]\n");
}

int main(int argc, char **argv) {
    echo_t *e = &g_echo;
    eio_options_t eo;
    eio_options_default(&eo);
    http_limits_t lim;
    http_limits_default(&lim);
    uint32_t port = 3001;
    const char *host = "127.0.0.1";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!v) {
            bad = 1;
        } else if (strcmp(a, "--port") == 0) {
            bad = parse_u32(v, &port) || port > 65535;
        } else if (strcmp(a, "--host") == 0) {
            host = v;
        } else if (strcmp(a, "--ping-interval") == 0) {
            bad = parse_u32(v, &eo.ping_interval_ms) || eo.ping_interval_ms == 0;
        } else if (strcmp(a, "--ping-timeout") == 0) {
            bad = parse_u32(v, &eo.ping_timeout_ms) || eo.ping_timeout_ms == 0;
        } else if (strcmp(a, "--max-payload") == 0) {
            bad = parse_u32(v, &eo.max_payload) || eo.max_payload == 0;
        } else if (strcmp(a, "--upgrade-timeout") == 0) {
            bad = parse_u32(v, &eo.upgrade_timeout_ms) || eo.upgrade_timeout_ms == 0;
        } else if (strcmp(a, "--max-connections") == 0) {
            bad = parse_u32(v, &lim.max_connections) || lim.max_connections == 0;
        } else if (strcmp(a, "--cors-origin") == 0) {
            e->cors_origin = v;
        } else if (strcmp(a, "--log-level") == 0) {
            int l = pl_log_level_parse(v);
            bad = l < 0;
            if (!bad)
                pl_log_set_level((pl_log_level_t)l);
        } else {
            bad = 1;
        }
        if (bad) {
            usage();
            return 2;
        }
        i++;
    }
    /* A POST body must be able to reach maxPayload so that eio answers it, not the HTTP layer. */
    if (lim.max_body_bytes < eo.max_payload + 1)
        lim.max_body_bytes = eo.max_payload + 1;
    signal(SIGPIPE, SIG_IGN);
    if (pl_id_init() != 0) {
        fprintf(stderr, "eio_echo: no entropy source\n");
        return 1;
    }
    e->loop = uv_default_loop();
    eio_callbacks_t cbs = {.on_open = on_open, .on_message = on_message, .on_close = on_close};
    e->eio = eio_server_new(e->loop, &eo, &cbs, e);
    e->router = http_router_new();
    e->http = http_server_new(e->loop, &lim, e->router);
    if (!e->eio || !e->router || !e->http) {
        fprintf(stderr, "eio_echo: out of memory\n");
        return 1;
    }
    if (e->cors_origin)
        eio_server_cors(e->eio, cors_allow, e);
    http_router_add(e->router, NULL, "/engine.io/*", eio_server_handle, e->eio);
    int rc = http_server_listen(e->http, host, port, false);
    if (rc) {
        pl_log_error("http.listen_failed", "host=%s port=%u err=%s", host, port, uv_strerror(rc));
        return 1;
    }
    pl_log_info("http.listen", "host=%s port=%u", host, http_server_port(e->http));
    uv_signal_init(e->loop, &e->sigint);
    uv_signal_init(e->loop, &e->sigterm);
    uv_signal_init(e->loop, &e->sigusr1);
    e->sigint.data = e->sigterm.data = e->sigusr1.data = e;
    uv_signal_start(&e->sigint, signal_cb, SIGINT);
    uv_signal_start(&e->sigterm, signal_cb, SIGTERM);
    uv_signal_start(&e->sigusr1, stats_cb, SIGUSR1);
    uv_run(e->loop, UV_RUN_DEFAULT);
    http_router_free(e->router);
    rc = uv_loop_close(e->loop);
    if (rc)
        pl_log_warn("shutdown.loop_busy", "err=%s", uv_err_name(rc));
    return 0;
}
