/* Unit tests for src/sio/server.c that the echo integration tests cannot show: connect
 * middleware answering asynchronously (with the handshake's query, headers, auth and address),
 * acks taken and answered after the handler returned (also after the client left), socket
 * references held across a disconnect (data freed only at the last unref), sio_server_close
 * waiting for what the application still holds, the adapter carrying a room broadcast and a
 * per-socket emit from one server to another (two "nodes" on one loop through
 * sio_server_deliver_remote), and the argument checks of the API.
 *
 * The servers run on a libuv loop in a second thread; the test thread is a plain blocking
 * Engine.IO long-polling client (one HTTP/1.1 request per TCP connection). Everything the
 * servers see is recorded under a mutex and checked by the test thread; the loop thread never
 * asserts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/id.h"
#include "core/log.h"
#include "http/router.h"
#include "http/server.h"
#include "sio/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- what the loop thread records --------------------------------------------------------- */

typedef struct {
    pthread_mutex_t mu;
    char query_project[64]; /* sio_connect_query(c, "projectId") in the async middleware */
    char header_test[64];   /* sio_connect_header(c, "X-Test") */
    char remote_ip[64];
    char auth[256]; /* the auth object, dumped */
    int middleware_calls;
    int connections;
    int disconnects;
    char last_reason[64];
    int data_freed;
    int late_ack_rc; /* sio_ack_send on an ack held across the client's departure */
    int adapter_calls;
    int adapter_delivered;
    char adapter_rooms[128];
    int close_cb_fired;
    bool a_closed_after_release; /* node A's close callback came after the held unref */
} record_t;

static record_t rec = {.mu = PTHREAD_MUTEX_INITIALIZER, .late_ack_rc = 1};

#define LOCKED(stmt)                                                                               \
    do {                                                                                           \
        pthread_mutex_lock(&rec.mu);                                                               \
        stmt;                                                                                      \
        pthread_mutex_unlock(&rec.mu);                                                             \
    } while (0)

/* ---- the servers (loop thread) ------------------------------------------------------------ */

typedef struct {
    sio_server_t *sio;
    http_router_t *router;
    http_server_t *http;
    unsigned port;
} node_t;

static uv_loop_t loop;
static node_t node_a, node_b;
static uv_async_t stop_async;
static pthread_t loop_thread;
static sio_socket_t *held_socket; /* a reference kept across the disconnect */
static sio_ack_t *held_ack;       /* an ack taken and answered only after the client left */
static int stops_pending;

typedef struct {
    uv_timer_t timer;
    sio_connect_t *c;
    sio_ack_t *ack;
} later_t;

static void later_closed(uv_handle_t *h) {
    free(h->data);
}

static void connect_later_cb(uv_timer_t *t) {
    later_t *l = t->data;
    sio_connect_t *c = l->c;
    json_t *auth = sio_connect_auth(c);
    const char *refuse = json_string_value(json_object_get(auth, "refuse"));
    if (refuse)
        sio_connect_refuse_data(c, refuse, json_pack("{si}", "retryAfter", 30));
    else
        sio_connect_accept(c);
    uv_close((uv_handle_t *)t, later_closed);
}

/* Looks at the handshake now, answers 30 ms later (like a database round trip). */
static void async_middleware(sio_connect_t *c, void *ud) {
    (void)ud;
    pl_buf_t q;
    pl_buf_init(&q, 63);
    int found = sio_connect_query(c, "projectId", &q);
    const pl_slice_t *h = sio_connect_header(c, "x-test");
    char *auth = json_dumps(sio_connect_auth(c), JSON_COMPACT | JSON_SORT_KEYS);
    LOCKED({
        rec.middleware_calls++;
        snprintf(rec.query_project, sizeof rec.query_project, "%.*s", found == 1 ? (int)q.len : 0,
                 q.data ? q.data : "");
        snprintf(rec.header_test, sizeof rec.header_test, "%.*s", h ? (int)h->len : 0,
                 h ? h->ptr : "");
        snprintf(rec.remote_ip, sizeof rec.remote_ip, "%s", sio_connect_remote_ip(c));
        snprintf(rec.auth, sizeof rec.auth, "%s", auth);
    });
    free(auth);
    pl_buf_dispose(&q);
    later_t *l = calloc(1, sizeof *l);
    l->c = c;
    uv_timer_init(&loop, &l->timer);
    l->timer.data = l;
    uv_timer_start(&l->timer, connect_later_cb, 30, 0);
}

static void free_data(void *data) {
    free(data);
    LOCKED(rec.data_freed++);
}

static void on_connection(sio_socket_t *s, void *ud) {
    (void)ud;
    sio_socket_set_data(s, malloc(16));
    LOCKED(rec.connections++);
}

static void on_disconnect(sio_socket_t *s, const char *reason, void *ud) {
    (void)s, (void)ud;
    LOCKED({
        rec.disconnects++;
        snprintf(rec.last_reason, sizeof rec.last_reason, "%s", reason);
    });
}

static void ack_later_cb(uv_timer_t *t) {
    later_t *l = t->data;
    json_t *args = json_pack("[s]", "later-answer");
    (void)sio_ack_send(l->ack, &(sio_args_t){.args = args});
    json_decref(args);
    uv_close((uv_handle_t *)t, later_closed);
}

static void on_event(sio_socket_t *s, const char *event, const sio_args_t *args, sio_ack_t *ack,
                     void *ud) {
    (void)ud;
    sio_nsp_t *nsp = sio_socket_nsp(s);
    const char *a0 = json_string_value(sio_args_get(args, 0));
    const char *a1 = json_string_value(sio_args_get(args, 1));
    if (!strcmp(event, "join") && a0) {
        json_t *r = json_pack("[b]", sio_socket_join(s, a0) == 0);
        (void)sio_ack_send(ack, &(sio_args_t){.args = r});
        json_decref(r);
    } else if (!strcmp(event, "bcast") && a0 && a1) {
        const char *rooms[] = {a0};
        json_t *r = json_pack("[s]", a1);
        (void)sio_nsp_emit(nsp, &(sio_target_t){.rooms = rooms, .nrooms = 1}, "news",
                           &(sio_args_t){.args = r});
        json_decref(r);
    } else if (!strcmp(event, "to-id") && a0 && a1) {
        json_t *r = json_pack("[s]", a1);
        (void)sio_nsp_emit_to(nsp, a0, "direct", &(sio_args_t){.args = r});
        json_decref(r);
    } else if (!strcmp(event, "raw") && ack) {
        /* pre-encoded arguments (sio_args_t.json): an event with two, one with none, the ack */
        static const char two[] = "[1,{\"k\":\"v\"}]";
        (void)sio_socket_emit(s, "rawed", &(sio_args_t){.json = two, .json_len = sizeof two - 1});
        (void)sio_socket_emit(s, "rawed0", &(sio_args_t){.json = "[]", .json_len = 2});
        if (sio_socket_emit(s, "bad", &(sio_args_t){.json = "{}", .json_len = 2}) != PL_EINVAL)
            abort(); /* not an array */
        (void)sio_ack_send(ack, &(sio_args_t){.json = "[\"done\"]", .json_len = 8});
    } else if (!strcmp(event, "later") && ack) {
        later_t *l = calloc(1, sizeof *l);
        l->ack = sio_ack_take(ack);
        uv_timer_init(&loop, &l->timer);
        l->timer.data = l;
        uv_timer_start(&l->timer, ack_later_cb, 30, 0);
        /* the handler's own handle is spent: answering it now is refused */
        if (sio_ack_send(ack, NULL) != UV_EALREADY)
            abort();
    } else if (!strcmp(event, "hold") && ack) {
        held_ack = sio_ack_take(ack);
        held_socket = sio_socket_ref(s);
    } else if (!strcmp(event, "answer-held") && held_ack) {
        int rc = sio_ack_send(held_ack, NULL);
        held_ack = NULL;
        LOCKED(rec.late_ack_rc = rc);
    }
}

static int adapter_broadcast(void *ud, const char *nsp, const sio_target_t *to, pl_rcbuf_t *text,
                             pl_rcbuf_t *const *att, size_t natt) {
    node_t *other = ud;
    int n = sio_server_deliver_remote(other->sio, nsp, to, text, att, natt);
    LOCKED({
        rec.adapter_calls++;
        rec.adapter_delivered += n > 0 ? n : 0;
        rec.adapter_rooms[0] = '\0';
        for (size_t i = 0; i < to->nrooms; i++) {
            size_t used = strlen(rec.adapter_rooms);
            snprintf(rec.adapter_rooms + used, sizeof rec.adapter_rooms - used, "%s%s",
                     i ? "," : "", to->rooms[i]);
        }
    });
    return n < 0 ? n : 0;
}

static void node_start(node_t *n, node_t *other) {
    sio_options_t o;
    sio_options_default(&o);
    o.connect_timeout_ms = 5000;
    n->sio = sio_server_new(&loop, &o);
    sio_nsp_t *nsp = sio_server_of(n->sio, "/");
    sio_nsp_use(nsp, async_middleware, NULL);
    sio_nsp_on_connection(nsp, on_connection, NULL);
    sio_nsp_on_disconnect(nsp, on_disconnect, NULL);
    sio_nsp_on_data_free(nsp, free_data);
    sio_nsp_on_any(nsp, on_event, NULL);
    sio_server_set_adapter(n->sio, &(sio_adapter_t){.broadcast = adapter_broadcast}, other);
    n->router = http_router_new();
    http_router_add(n->router, NULL, "/socket.io/*", sio_server_handle, n->sio);
    http_limits_t lim;
    http_limits_default(&lim);
    n->http = http_server_new(&loop, &lim, n->router);
    if (http_server_listen(n->http, "127.0.0.1", 0, false) != 0)
        abort();
    n->port = http_server_port(n->http);
}

static void part_stopped(void) {
    if (--stops_pending == 0)
        uv_close((uv_handle_t *)&stop_async, NULL);
}

static void sio_closed(void *ud) {
    LOCKED({
        if (ud == &node_a)
            rec.a_closed_after_release = rec.close_cb_fired >= 100;
        rec.close_cb_fired++;
    });
    part_stopped();
}

static void http_stopped(http_server_t *s, void *ud) {
    (void)ud;
    http_server_free(s);
    part_stopped();
}

static void release_held_cb(uv_timer_t *t) {
    /* The server is closing and waits for this reference. */
    LOCKED(rec.close_cb_fired += 100);
    sio_socket_unref(held_socket);
    held_socket = NULL;
    uv_close((uv_handle_t *)t, later_closed);
}

static void stop_cb(uv_async_t *a) {
    (void)a;
    stops_pending = 4;
    http_server_shutdown(node_a.http, 1000, http_stopped, NULL);
    http_server_shutdown(node_b.http, 1000, http_stopped, NULL);
    sio_server_close(node_a.sio, sio_closed, &node_a);
    sio_server_close(node_b.sio, sio_closed, &node_b);
    if (held_socket) {
        later_t *l = calloc(1, sizeof *l);
        uv_timer_init(&loop, &l->timer);
        l->timer.data = l;
        uv_timer_start(&l->timer, release_held_cb, 50, 0);
    }
}

static void *loop_main(void *arg) {
    (void)arg;
    uv_run(&loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- a blocking long-polling client (test thread) ----------------------------------------- */

typedef struct {
    unsigned port;
    char sid[64];
} pclient_t;

/* One request on its own connection; returns the status and the body (malloc'd) in *body. */
static int http_call(unsigned port, const char *method, const char *target, const char *headers,
                     const char *body, char **out) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        return -1;
    char req[4096];
    int n =
        snprintf(req, sizeof req,
                 "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s"
                 "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %zu\r\n\r\n%s",
                 method, target, headers ? headers : "", body ? strlen(body) : 0, body ? body : "");
    if (write(fd, req, (size_t)n) != n)
        return -1;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    ssize_t r;
    while ((r = read(fd, buf + len, cap - len)) > 0) {
        len += (size_t)r;
        if (len == cap)
            buf = realloc(buf, (cap *= 2) + 1);
    }
    close(fd);
    buf[len] = '\0';
    int status = 0;
    sscanf(buf, "HTTP/1.1 %d", &status);
    char *b = strstr(buf, "\r\n\r\n");
    *out = strdup(b ? b + 4 : "");
    free(buf);
    return status;
}

static void pc_open(pclient_t *c, unsigned port, const char *query, const char *headers) {
    char target[256], *body = NULL;
    c->port = port;
    snprintf(target, sizeof target, "/socket.io/?EIO=4&transport=polling%s", query ? query : "");
    assert_int_equal(http_call(port, "GET", target, headers, NULL, &body), 200);
    assert_true(body[0] == '0');
    json_t *j = json_loads(body + 1, 0, NULL);
    assert_non_null(j);
    snprintf(c->sid, sizeof c->sid, "%s", json_string_value(json_object_get(j, "sid")));
    json_decref(j);
    free(body);
}

static void pc_post(pclient_t *c, const char *payload) {
    char target[256], *body = NULL;
    snprintf(target, sizeof target, "/socket.io/?EIO=4&transport=polling&sid=%s", c->sid);
    assert_int_equal(http_call(c->port, "POST", target, NULL, payload, &body), 200);
    free(body);
}

/* The next poll's body (the caller frees it); *status gets the HTTP status. */
static char *pc_poll(pclient_t *c, int *status) {
    char target[256], *body = NULL;
    snprintf(target, sizeof target, "/socket.io/?EIO=4&transport=polling&sid=%s", c->sid);
    *status = http_call(c->port, "GET", target, NULL, NULL, &body);
    return body;
}

/* Polls until a packet starting with prefix arrives; returns a copy of that packet. */
static char *pc_expect(pclient_t *c, const char *prefix) {
    for (int tries = 0; tries < 10; tries++) {
        int status;
        char *body = pc_poll(c, &status);
        assert_int_equal(status, 200);
        for (char *p = strtok(body, "\x1e"); p; p = strtok(NULL, "\x1e")) {
            if (!strncmp(p, prefix, strlen(prefix))) {
                char *copy = strdup(p);
                free(body);
                return copy;
            }
        }
        free(body);
    }
    fail_msg("no packet starting with %s", prefix);
    return NULL;
}

/* Socket.IO CONNECT through the async middleware; returns the socket id in id. */
static void pc_connect(pclient_t *c, unsigned port, char id[SIO_ID_LEN + 1]) {
    pc_open(c, port, NULL, NULL);
    pc_post(c, "40");
    char *ok = pc_expect(c, "40");
    json_t *j = json_loads(ok + 2, 0, NULL);
    snprintf(id, SIO_ID_LEN + 1, "%s", json_string_value(json_object_get(j, "sid")));
    json_decref(j);
    free(ok);
}

static void wait_for(int *field, int want) {
    for (int i = 0; i < 200; i++) {
        int v;
        LOCKED(v = *field);
        if (v >= want)
            return;
        usleep(10000);
    }
    fail_msg("counter stayed below %d", want);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_async_middleware_sees_handshake(void **state) {
    (void)state;
    pclient_t c;
    pc_open(&c, node_a.port, "&projectId=4%32", "X-Test: hello there\r\n");
    int before;
    LOCKED(before = rec.connections);
    pc_post(&c, "40{\"token\":\"t\",\"n\":[1,2]}");
    char *ok = pc_expect(&c, "40");
    assert_true(!strncmp(ok, "40{\"sid\":\"", 10) && strlen(ok) == 10 + SIO_ID_LEN + 2);
    free(ok);
    LOCKED({
        assert_string_equal(rec.query_project, "42"); /* percent-decoded */
        assert_string_equal(rec.header_test, "hello there");
        assert_string_equal(rec.remote_ip, "127.0.0.1");
        assert_string_equal(rec.auth, "{\"n\":[1,2],\"token\":\"t\"}");
        assert_int_equal(rec.connections, before + 1);
    });
    pc_post(&c, "1"); /* Engine.IO close */
}

static void test_async_refusal_then_close(void **state) {
    (void)state;
    pclient_t c;
    pc_open(&c, node_a.port, NULL, NULL);
    pc_post(&c, "40{\"refuse\":\"Project not found\"}");
    char *err = pc_expect(&c, "44");
    assert_string_equal(err, "44{\"message\":\"Project not found\",\"data\":{\"retryAfter\":30}}");
    free(err);
    /* Then the session is closed: the close packet, or the sid is already unknown. */
    int status;
    char *body = pc_poll(&c, &status);
    assert_true(status == 400 || strchr(body, '1') == body);
    free(body);
}

static void test_ack_taken_and_answered_later(void **state) {
    (void)state;
    pclient_t c;
    char id[SIO_ID_LEN + 1];
    pc_connect(&c, node_a.port, id);
    pc_post(&c, "427[\"later\"]");
    char *ack = pc_expect(&c, "43");
    assert_string_equal(ack, "437[\"later-answer\"]");
    free(ack);
    pc_post(&c, "1");
}

static void test_held_references_outlive_the_client(void **state) {
    (void)state;
    pclient_t c;
    char id[SIO_ID_LEN + 1];
    int disc, freed, conns;
    /* Sockets of earlier tests are freed on a later loop turn: let that settle first, so the
     * count below only moves because of this test. */
    LOCKED(conns = rec.connections);
    wait_for(&rec.data_freed, conns);
    LOCKED({
        disc = rec.disconnects;
        freed = rec.data_freed;
    });
    pc_connect(&c, node_a.port, id);
    pc_post(&c, "429[\"hold\"]");
    usleep(50000);
    pc_post(&c, "41"); /* the client leaves the namespace */
    wait_for(&rec.disconnects, disc + 1);
    LOCKED({
        assert_string_equal(rec.last_reason, "client namespace disconnect");
        /* the held ack and the held socket reference keep the socket's data alive */
        assert_int_equal(rec.data_freed, freed);
    });
    pc_post(&c, "1");
    /* Another client asks the server to answer the held ack: a no-op on the gone socket. */
    pclient_t d;
    pc_connect(&d, node_a.port, id);
    pc_post(&d, "42[\"answer-held\"]");
    for (int i = 0; i < 100; i++) {
        int rc;
        LOCKED(rc = rec.late_ack_rc);
        if (rc != 1)
            break;
        usleep(10000);
    }
    LOCKED(assert_int_equal(rec.late_ack_rc, UV_ECANCELED));
    pc_post(&d, "1");
}

static void test_pre_encoded_arguments(void **state) {
    (void)state;
    pclient_t a;
    char id[SIO_ID_LEN + 1];
    pc_connect(&a, node_a.port, id);
    pc_post(&a, "427[\"raw\"]");
    /* the three packets, in order (one poll may carry them all) */
    char all[1024] = "";
    for (int tries = 0; tries < 10 && !strstr(all, "437"); tries++) {
        int status;
        char *body = pc_poll(&a, &status);
        assert_int_equal(status, 200);
        if (all[0])
            strncat(all, "\x1e", sizeof all - strlen(all) - 1);
        strncat(all, body, sizeof all - strlen(all) - 1);
        free(body);
    }
    assert_string_equal(all, "42[\"rawed\",1,{\"k\":\"v\"}]\x1e" "42[\"rawed0\"]\x1e" "437[\"done\"]");
    pc_post(&a, "1");
}

static void test_adapter_carries_broadcasts(void **state) {
    (void)state;
    pclient_t a, b;
    char ida[SIO_ID_LEN + 1], idb[SIO_ID_LEN + 1];
    pc_connect(&a, node_a.port, ida);
    pc_connect(&b, node_b.port, idb);
    pc_post(&b, "421[\"join\",\"project:7\"]");
    char *joined = pc_expect(&b, "43");
    assert_string_equal(joined, "431[true]");
    free(joined);

    /* A room broadcast on node A reaches the member on node B through the adapter. */
    pc_post(&a, "42[\"bcast\",\"project:7\",\"héllo\"]");
    char *news = pc_expect(&b, "42[\"news\"");
    assert_string_equal(news, "42[\"news\",\"héllo\"]");
    free(news);
    LOCKED({
        assert_true(rec.adapter_calls >= 1);
        assert_string_equal(rec.adapter_rooms, "project:7");
    });

    /* A per-socket emit for a socket that is not on node A goes through the adapter too. */
    char ev[128];
    snprintf(ev, sizeof ev, "42[\"to-id\",\"%s\",\"just you\"]", idb);
    pc_post(&a, ev);
    char *direct = pc_expect(&b, "42[\"direct\"");
    assert_string_equal(direct, "42[\"direct\",\"just you\"]");
    free(direct);
    LOCKED(assert_string_equal(rec.adapter_rooms, idb));
    pc_post(&a, "1");
    pc_post(&b, "1");
}

/* Pure API checks on a server that never listens (own loop, closed at the end). */
static void test_api_arguments(void **state) {
    (void)state;
    uv_loop_t l;
    uv_loop_init(&l);
    sio_server_t *srv = sio_server_new(&l, NULL);
    assert_non_null(srv);
    static const char *bad_names[] = {"", "custom", "/a,b", "/a\x01", "/a\x7f"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
        assert_null(sio_server_of(srv, bad_names[i]));
    char longname[SIO_DEFAULT_MAX_NSP + 2];
    memset(longname, 'n', sizeof longname);
    longname[0] = '/';
    longname[SIO_DEFAULT_MAX_NSP + 1] = '\0';
    assert_null(sio_server_of(srv, longname));
    longname[SIO_DEFAULT_MAX_NSP] = '\0';
    assert_non_null(sio_server_of(srv, longname));
    sio_nsp_t *main_nsp = sio_server_nsp(srv, "/");
    assert_non_null(main_nsp);
    assert_ptr_equal(sio_server_of(srv, "/"), main_nsp);
    assert_null(sio_server_nsp(srv, "/nope"));
    assert_string_equal(sio_nsp_name(main_nsp), "/");
    static const char *reserved[] = {"connect",       "connect_error", "disconnect",
                                     "disconnecting", "newListener",   "removeListener"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        assert_int_equal(sio_nsp_on(main_nsp, reserved[i], on_event, NULL), PL_EINVAL);
    assert_int_equal(sio_nsp_on(main_nsp, "ok", on_event, NULL), 0);
    assert_int_equal(sio_nsp_on(main_nsp, "ok", NULL, NULL), 0); /* removed */
    /* Broadcasts with nobody connected: encoded, delivered to 0, refused when invalid. */
    assert_int_equal(sio_nsp_emit(main_nsp, NULL, "hello", NULL), 0);
    assert_int_equal(sio_nsp_emit(main_nsp, NULL, "disconnect", NULL), PL_EINVAL);
    assert_int_equal(sio_nsp_emit(main_nsp, NULL, "bad\xff", NULL), PL_EINVAL);
    json_t *notarray = json_object();
    assert_int_equal(sio_nsp_emit(main_nsp, NULL, "x", &(sio_args_t){.args = notarray}), PL_EINVAL);
    json_decref(notarray);
    /* a placeholder whose buffer is missing */
    json_t *ph = json_pack("[o]", sio_placeholder_new(3));
    pl_rcbuf_t *one = pl_rcbuf_from("x", 1);
    assert_int_equal(sio_nsp_emit(main_nsp, NULL, "x", &(sio_args_t){.args = ph, .bufs = &one, .nbufs = 1}), PL_EINVAL);
    pl_rcbuf_unref(one);
    json_decref(ph);
    assert_int_equal(sio_nsp_emit_to(main_nsp, "nobody-here-00000000", "x", NULL), 0);
    assert_null(sio_nsp_socket(main_nsp, "nobody-here-00000000"));
    assert_null(sio_nsp_socket(main_nsp, "__proto__"));
    assert_int_equal(sio_nsp_room_size(main_nsp, "r"), 0);
    pl_rcbuf_t *text = pl_rcbuf_from("42[\"x\"]", 7);
    assert_int_equal(sio_server_deliver_remote(srv, "/nope", NULL, text, NULL, 0), PL_EINVAL);
    assert_int_equal(sio_server_deliver_remote(srv, "/", NULL, text, NULL, 0), 0);
    pl_rcbuf_unref(text);
    assert_int_equal(sio_server_client_count(srv), 0);
    sio_server_close(srv, NULL, NULL);
    assert_int_equal(uv_run(&l, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&l), 0); /* every handle closed */
}

static int group_setup(void **state) {
    (void)state;
    uv_loop_init(&loop);
    node_start(&node_a, &node_b);
    node_start(&node_b, &node_a);
    uv_async_init(&loop, &stop_async, stop_cb);
    return pthread_create(&loop_thread, NULL, loop_main, NULL);
}

static int group_teardown(void **state) {
    (void)state;
    uv_async_send(&stop_async);
    pthread_join(loop_thread, NULL);
    /* Both servers closed, the first only after the reference it waited for was dropped. */
    LOCKED({
        assert_int_equal(rec.close_cb_fired, 102);
        assert_true(rec.a_closed_after_release);
        assert_int_equal(rec.data_freed, rec.connections);
    });
    http_router_free(node_a.router);
    http_router_free(node_b.router);
    return uv_loop_close(&loop) == 0 ? 0 : -1;
}

int main(void) {
    if (pl_id_init() != 0)
        return 1;
    pl_log_set_level(PL_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_async_middleware_sees_handshake),
        cmocka_unit_test(test_async_refusal_then_close),
        cmocka_unit_test(test_ack_taken_and_answered_later),
        cmocka_unit_test(test_held_references_outlive_the_client),
        cmocka_unit_test(test_pre_encoded_arguments),
        cmocka_unit_test(test_adapter_carries_broadcasts),
        cmocka_unit_test(test_api_arguments),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
