/* Unit tests for the owner-facing API of src/eio/server.h that the integration tests (which see
 * only the wire) cannot observe: return codes of eio_socket_send, that on_close never runs inside
 * the call that closed the session, session accessors and counts, and that eio_server_close
 * closes every session, calls back and leaves no handle open. A real loop and HTTP server run on
 * the main thread; a client thread speaks HTTP with blocking sockets and runs owner calls on the
 * loop thread through a uv_async_t. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/id.h"
#include "eio/server.h"
#include "http/router.h"
#include "http/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the loop side ------------------------------------------------------------------------- */

typedef struct {
    uv_loop_t loop;
    http_router_t *router;
    http_server_t *http;
    eio_server_t *eio;
    uv_async_t call; /* runs call_fn on the loop thread */
    void (*call_fn)(void *arg);
    void *call_arg;
    uv_sem_t call_done;
    pthread_t client;
    void (*client_fn)(void); /* the test body, on the client thread */
    unsigned port;
    /* What the owner heard (loop thread; read by the client thread after a call round trip). */
    eio_socket_t *last_open;
    int opens, messages, closes;
    char last_reason[32];
    bool in_call;           /* an owner call is on the stack */
    bool close_inside_call; /* on_close ran while in_call was set */
    bool server_closed;
} fixture_t;

static fixture_t g;

static int on_open(eio_socket_t *s, http_request_t *req, void *ud) {
    (void)req, (void)ud;
    g.last_open = s;
    g.opens++;
    return 0;
}

static void on_message(eio_socket_t *s, const char *data, size_t len, bool binary, void *ud) {
    (void)s, (void)data, (void)len, (void)binary, (void)ud;
    g.messages++;
}

static void on_close(eio_socket_t *s, const char *reason, void *ud) {
    (void)s, (void)ud;
    g.closes++;
    if (g.in_call)
        g.close_inside_call = true;
    snprintf(g.last_reason, sizeof g.last_reason, "%s", reason);
    if (g.last_open == s)
        g.last_open = NULL;
}

static void call_cb(uv_async_t *h) {
    (void)h;
    if (g.call_fn) {
        g.in_call = true;
        g.call_fn(g.call_arg);
        g.in_call = false;
        g.call_fn = NULL;
        uv_sem_post(&g.call_done);
    }
}

/* From the client thread: runs fn(arg) on the loop thread and waits for it. */
static void on_loop(void (*fn)(void *), void *arg) {
    g.call_arg = arg;
    g.call_fn = fn;
    uv_async_send(&g.call);
    uv_sem_wait(&g.call_done);
}

static void nothing(void *arg) {
    (void)arg;
}

/* Lets the loop run a few turns (deferred on_close calls). */
static void settle(void) {
    for (int i = 0; i < 3; i++) {
        usleep(20000);
        on_loop(nothing, NULL);
    }
}

static void *client_main(void *arg) {
    (void)arg;
    g.client_fn();
    return NULL;
}

static void http_stopped(http_server_t *s, void *ud) {
    (void)s, (void)ud;
}

static void eio_closed(void *ud) {
    (void)ud;
    g.server_closed = true;
    g.eio = NULL;
}

static void stop_everything(void *arg) {
    (void)arg;
    if (g.eio)
        eio_server_close(g.eio, eio_closed, NULL);
    http_server_shutdown(g.http, 1000, http_stopped, NULL);
    uv_close((uv_handle_t *)&g.call, NULL);
}

/* Runs body on a client thread against a fresh server with options o. */
static void run_with_server(const eio_options_t *o, void (*body)(void)) {
    memset(&g, 0, sizeof g);
    assert_int_equal(uv_loop_init(&g.loop), 0);
    eio_callbacks_t cbs = {on_open, on_message, on_close};
    g.eio = eio_server_new(&g.loop, o, &cbs, NULL);
    assert_non_null(g.eio);
    g.router = http_router_new();
    http_router_add(g.router, NULL, "/engine.io/*", eio_server_handle, g.eio);
    http_limits_t lim;
    http_limits_default(&lim);
    g.http = http_server_new(&g.loop, &lim, g.router);
    assert_int_equal(http_server_listen(g.http, "127.0.0.1", 0, false), 0);
    g.port = http_server_port(g.http);
    uv_async_init(&g.loop, &g.call, call_cb);
    uv_sem_init(&g.call_done, 0);
    g.client_fn = body;
    pthread_create(&g.client, NULL, client_main, NULL);
    uv_run(&g.loop, UV_RUN_DEFAULT);
    pthread_join(g.client, NULL);
    http_server_free(g.http);
    uv_run(&g.loop, UV_RUN_DEFAULT);
    http_router_free(g.router);
    assert_int_equal(uv_loop_close(&g.loop), 0); /* every handle closed */
    uv_sem_destroy(&g.call_done);
}

/* ---- the client side (blocking sockets) ------------------------------------------------------ */

/* One request on a new connection; returns the status and copies the body into body. */
static int http_call(const char *method, const char *path, const char *body, char *out,
                     size_t outlen) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g.port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n"
                     "\r\n%s",
                     method, path, body ? strlen(body) : 0, body ? body : "");
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    static char resp[65536];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof resp - 1 && (r = read(fd, resp + got, sizeof resp - 1 - got)) > 0)
        got += (size_t)r;
    resp[got] = '\0';
    close(fd);
    int status = 0;
    sscanf(resp, "HTTP/1.1 %d", &status);
    const char *b = strstr(resp, "\r\n\r\n");
    if (out && outlen) {
        snprintf(out, outlen, "%s", b ? b + 4 : "");
    }
    return status;
}

/* Polling handshake; returns the sid in sid[21]. */
static void client_handshake(char sid[21]) {
    char body[512];
    assert_int_equal(
        http_call("GET", "/engine.io/?EIO=4&transport=polling", NULL, body, sizeof body), 200);
    const char *p = strstr(body, "\"sid\":\"");
    assert_non_null(p);
    memcpy(sid, p + 7, 20);
    sid[20] = '\0';
}

/* ---- tests ----------------------------------------------------------------------------------- */

static int g_rc;
static pl_rcbuf_t *g_buf;

static void send_buf(void *arg) {
    bool binary = arg != NULL;
    g_rc = eio_socket_send(g.last_open, g_buf, binary);
}

static void check_accessors(void *arg) {
    char *sid = arg;
    eio_socket_t *s = g.last_open;
    assert_non_null(s);
    assert_string_equal(eio_socket_id(s), sid);
    assert_string_equal(eio_socket_transport(s), "polling");
    assert_string_equal(eio_socket_remote_ip(s), "127.0.0.1");
    assert_null(eio_socket_data(s));
    eio_socket_set_data(s, &g);
    assert_ptr_equal(eio_socket_data(s), &g);
    assert_int_equal(eio_server_session_count(g.eio), 1);
    assert_int_equal(eio_socket_pending(s), 0);
}

static void body_send_and_overflow(void) {
    char sid[21];
    client_handshake(sid);
    on_loop(check_accessors, sid);

    /* Text must carry its type digit. */
    g_buf = pl_rcbuf_from("hello", 5);
    on_loop(send_buf, NULL);
    assert_int_equal(g_rc, PL_EINVAL);
    pl_rcbuf_unref(g_buf);

    /* Queued while no GET is held; counted as pending. */
    g_buf = pl_rcbuf_from("4hello", 6);
    on_loop(send_buf, NULL);
    assert_int_equal(g_rc, 0);
    pl_rcbuf_unref(g_buf);
    char body[256];
    assert_int_equal(
        http_call("GET", "/engine.io/?EIO=4&transport=polling&sid=", NULL, body, sizeof body), 400);
    char path[128];
    snprintf(path, sizeof path, "/engine.io/?EIO=4&transport=polling&sid=%s", sid);
    assert_int_equal(http_call("GET", path, NULL, body, sizeof body), 200);
    assert_string_equal(body, "4hello");

    /* Over max_pending_output (200 bytes here): PL_ETOOBIG, and on_close comes later, not
     * from inside the send. */
    g_buf = pl_rcbuf_new(300);
    memset(g_buf->data, 'x', 300);
    g_buf->data[0] = '4';
    on_loop(send_buf, NULL);
    assert_int_equal(g_rc, PL_ETOOBIG);
    settle();
    assert_false(g.close_inside_call);
    assert_int_equal(g.closes, 1);
    assert_string_equal(g.last_reason, "transport error");
    pl_rcbuf_unref(g_buf);
    assert_int_equal(http_call("GET", path, NULL, body, sizeof body), 400);
    assert_string_equal(body, "{\"code\":1,\"message\":\"Session ID unknown\"}");
    on_loop(stop_everything, NULL);
}

static void test_send_codes_and_overflow(void **state) {
    (void)state;
    eio_options_t o;
    eio_options_default(&o);
    o.max_pending_output = 200;
    run_with_server(&o, body_send_and_overflow);
    assert_true(g.server_closed);
    assert_int_equal(g.opens, 1);
}

static void close_last(void *arg) {
    (void)arg;
    eio_socket_close(g.last_open);
}

static void send_after_close(void *arg) {
    eio_socket_t *s = arg;
    g_buf = pl_rcbuf_from("4late", 5);
    g_rc = eio_socket_send(s, g_buf, false);
    pl_rcbuf_unref(g_buf);
}

static void body_server_close(void) {
    char sid[21];
    client_handshake(sid);
    eio_socket_t *s = g.last_open;
    on_loop(close_last, NULL);
    /* Closing: sends are cancelled; on_close has not run inside the call. */
    on_loop(send_after_close, s);
    assert_int_equal(g_rc, UV_ECANCELED);
    assert_int_equal(g.closes, 0);
    char path[128], body[256];
    snprintf(path, sizeof path, "/engine.io/?EIO=4&transport=polling&sid=%s", sid);
    assert_int_equal(http_call("GET", path, NULL, body, sizeof body), 200);
    assert_string_equal(body, "1");
    settle();
    assert_int_equal(g.closes, 1);
    assert_string_equal(g.last_reason, "server close");
    assert_false(g.close_inside_call);

    /* eio_server_close closes every session and calls back. */
    for (int i = 0; i < 5; i++)
        client_handshake(sid);
    assert_int_equal(g.opens, 6);
    on_loop(stop_everything, NULL);
}

static void test_server_close(void **state) {
    (void)state;
    run_with_server(NULL, body_server_close);
    assert_true(g.server_closed);
    assert_int_equal(g.closes, 6);
    assert_string_equal(g.last_reason, "server close");
}

static void body_messages(void) {
    char sid[21], path[128], body[64];
    client_handshake(sid);
    snprintf(path, sizeof path, "/engine.io/?EIO=4&transport=polling&sid=%s", sid);
    assert_int_equal(http_call("POST", path,
                               "4a\x1e"
                               "4b\x1e"
                               "bAQID",
                               body, sizeof body),
                     200);
    assert_string_equal(body, "ok");
    settle();
    assert_int_equal(g.messages, 3);
    assert_int_equal(http_call("POST", path, "1", body, sizeof body), 200);
    settle();
    assert_int_equal(g.closes, 1);
    assert_string_equal(g.last_reason, "transport close");
    on_loop(stop_everything, NULL);
}

static void test_messages_and_client_close(void **state) {
    (void)state;
    run_with_server(NULL, body_messages);
}

int main(void) {
    if (pl_id_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_codes_and_overflow),
        cmocka_unit_test(test_server_close),
        cmocka_unit_test(test_messages_and_client_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
