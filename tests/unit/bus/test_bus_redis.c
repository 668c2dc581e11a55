/* Unit tests for the Redis bus (bus/bus_redis.h): two Socket.IO servers on one loop act as two
 * nodes, each with its own bus_redis adapter on a real redis-server. A room broadcast from node A
 * reaches the room's member on node B exactly once and A's own member exactly once (A ignores
 * its own envelope coming back), a non-member nowhere; except rooms and per-socket emits cross
 * nodes; an envelope nobody could have sent is refused without harm; during an outage local
 * delivery goes on and the adapter reports the failure; after Redis restarts on the same port
 * the same buses carry broadcasts again.
 *
 * The servers run on a libuv loop in a second thread; the test thread is a blocking Engine.IO
 * long-polling client. What the loop thread sees is recorded under a mutex. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "bus/bus_redis.h"
#include "core/id.h"
#include "core/log.h"
#include "http/router.h"
#include "http/server.h"
#include "redis_server.h"
#include "sio/server.h"

#include <pthread.h>
#include <sys/time.h>

typedef struct {
    sio_server_t *sio;
    http_router_t *router;
    http_server_t *http;
    bus_redis_t *bus;
    unsigned port;
} node_t;

static struct {
    pthread_mutex_t mu;
    bool ready_a, ready_b;
    bus_redis_stats_t stats_a, stats_b;
    int last_local; /* local receivers of the last bcast */
    int notify_rc;  /* bus_redis_notify's result */
    int notifications;
    char notify_at[16], notify_from[80], notify_data[80];
    int closed;
} rec = {.mu = PTHREAD_MUTEX_INITIALIZER};

#define LOCKED(stmt)                                                                               \
    do {                                                                                           \
        pthread_mutex_lock(&rec.mu);                                                               \
        stmt;                                                                                      \
        pthread_mutex_unlock(&rec.mu);                                                             \
    } while (0)

static test_redis_t g_redis;
static uv_loop_t loop;
static node_t node_a, node_b;
static uv_async_t stop_async;
static uv_timer_t watch;
static pthread_t loop_thread;

/* ---- the nodes (loop thread) ----------------------------------------------------------------- */

static void on_event(sio_socket_t *s, const char *event, const sio_args_t *args, sio_ack_t *ack,
                     void *ud) {
    (void)ud;
    sio_nsp_t *nsp = sio_socket_nsp(s);
    const char *a0 = json_string_value(sio_args_get(args, 0));
    const char *a1 = json_string_value(sio_args_get(args, 1));
    const char *a2 = json_string_value(sio_args_get(args, 2));
    if (!strcmp(event, "join") && a0) {
        bool ok = sio_socket_join(s, a0) == 0;
        json_t *r = json_pack("[b]", ok);
        sio_ack_send(ack, &(sio_args_t){.args = r});
        json_decref(r);
    } else if (!strcmp(event, "bcast") && a0 && a1) {
        /* bcast(room, text[, except]) */
        const char *rooms[] = {a0};
        const char *except[] = {a2};
        sio_target_t to = {.rooms = rooms, .nrooms = 1, .except = except, .nexcept = a2 ? 1 : 0};
        json_t *j = json_pack("[s]", a1);
        int n = sio_nsp_emit(nsp, &to, "news", &(sio_args_t){.args = j});
        json_decref(j);
        LOCKED(rec.last_local = n);
    } else if (!strcmp(event, "all") && a0) {
        json_t *j = json_pack("[s]", a0);
        sio_nsp_emit(nsp, NULL, "everyone", &(sio_args_t){.args = j});
        json_decref(j);
    } else if (!strcmp(event, "notify") && a0 && a1) {
        /* notify(node, text): a node-to-node message from this socket's node */
        bus_redis_t *bus = sio_nsp_server(nsp) == node_a.sio ? node_a.bus : node_b.bus;
        int rc = bus_redis_notify(bus, a0, a1, strlen(a1));
        LOCKED(rec.notify_rc = rc);
    } else if (!strcmp(event, "to-id") && a0 && a1) {
        json_t *j = json_pack("[s]", a1);
        sio_nsp_emit_to(nsp, a0, "direct", &(sio_args_t){.args = j});
        json_decref(j);
    }
}

static void notify_cb(void *ud, const char *from, const char *data, size_t len) {
    LOCKED({
        rec.notifications++;
        snprintf(rec.notify_at, sizeof rec.notify_at, "%s", (const char *)ud);
        snprintf(rec.notify_from, sizeof rec.notify_from, "%s", from);
        snprintf(rec.notify_data, sizeof rec.notify_data, "%.*s", (int)len, data);
    });
}

static void watch_cb(uv_timer_t *t) {
    (void)t;
    LOCKED({
        if (node_a.bus) {
            rec.ready_a = bus_redis_ready(node_a.bus);
            bus_redis_stats(node_a.bus, &rec.stats_a);
        }
        if (node_b.bus) {
            rec.ready_b = bus_redis_ready(node_b.bus);
            bus_redis_stats(node_b.bus, &rec.stats_b);
        }
    });
}

static void node_start(node_t *n, const char *id) {
    sio_options_t o;
    sio_options_default(&o);
    n->sio = sio_server_new(&loop, &o);
    sio_nsp_t *nsp = sio_server_of(n->sio, "/");
    sio_nsp_on_any(nsp, on_event, NULL);
    n->bus = bus_redis_new(&loop, g_redis.url, n->sio, id);
    if (!n->bus)
        abort();
    bus_redis_on_notify(n->bus, notify_cb, (void *)id);
    n->router = http_router_new();
    http_router_add(n->router, NULL, "/socket.io/*", sio_server_handle, n->sio);
    http_limits_t lim;
    http_limits_default(&lim);
    n->http = http_server_new(&loop, &lim, n->router);
    if (http_server_listen(n->http, "127.0.0.1", 0, false) != 0)
        abort();
    n->port = http_server_port(n->http);
}

static void part_closed(void) {
    LOCKED(rec.closed++);
    int closed;
    LOCKED(closed = rec.closed);
    if (closed == 6) {
        uv_close((uv_handle_t *)&stop_async, NULL);
        uv_close((uv_handle_t *)&watch, NULL);
    }
}

static void bus_closed(void *ud) {
    (void)ud;
    part_closed();
}

static void sio_closed(void *ud) {
    node_t *n = ud;
    if (n == &node_b) {
        /* B's server went first: its bus was told by the adapter's close hook. */
        bus_redis_close(n->bus, bus_closed, NULL);
        n->bus = NULL;
    }
    part_closed();
}

static void http_stopped(http_server_t *s, void *ud) {
    (void)ud;
    http_server_free(s);
    part_closed();
}

static void stop_cb(uv_async_t *a) {
    (void)a;
    /* A: bus first (it uninstalls itself), then the server. B: server first. */
    bus_redis_close(node_a.bus, bus_closed, NULL);
    node_a.bus = NULL;
    http_server_shutdown(node_a.http, 1000, http_stopped, NULL);
    http_server_shutdown(node_b.http, 1000, http_stopped, NULL);
    sio_server_close(node_a.sio, sio_closed, &node_a);
    sio_server_close(node_b.sio, sio_closed, &node_b);
}

static void *loop_main(void *arg) {
    (void)arg;
    uv_run(&loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- a blocking long-polling client (test thread) -------------------------------------------- */

typedef struct {
    unsigned port;
    char sid[64];
    char id[SIO_ID_LEN + 1];
} pclient_t;

static int http_call(unsigned port, const char *method, const char *target, const char *body,
                     char **out) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %zu\r\n\r\n%s",
                     method, target, body ? strlen(body) : 0, body ? body : "");
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
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

static void pc_post(pclient_t *c, const char *payload) {
    char target[256], *body = NULL;
    snprintf(target, sizeof target, "/socket.io/?EIO=4&transport=polling&sid=%s", c->sid);
    assert_int_equal(http_call(c->port, "POST", target, payload, &body), 200);
    free(body);
}

static char *pc_poll(pclient_t *c) {
    char target[256], *body = NULL;
    snprintf(target, sizeof target, "/socket.io/?EIO=4&transport=polling&sid=%s", c->sid);
    assert_int_equal(http_call(c->port, "GET", target, NULL, &body), 200);
    return body;
}

/* Reads packets until one contains marker; returns how many contained needle before it. */
static int pc_count_until(pclient_t *c, const char *marker, const char *needle) {
    int n = 0;
    for (int tries = 0; tries < 20; tries++) {
        char *body = pc_poll(c);
        bool done = false;
        char *save = NULL;
        for (char *p = strtok_r(body, "\x1e", &save); p; p = strtok_r(NULL, "\x1e", &save)) {
            if (!strcmp(p, "2")) {
                pc_post(c, "3");
                continue;
            }
            if (needle && strstr(p, needle))
                n++;
            if (strstr(p, marker))
                done = true;
        }
        free(body);
        if (done)
            return n;
    }
    fail_msg("marker %s never came", marker);
    return -1;
}

static void pc_connect(pclient_t *c, unsigned port) {
    char *body = NULL;
    c->port = port;
    assert_int_equal(http_call(port, "GET", "/socket.io/?EIO=4&transport=polling", NULL, &body),
                     200);
    assert_true(body[0] == '0');
    json_t *j = json_loads(body + 1, 0, NULL);
    snprintf(c->sid, sizeof c->sid, "%s", json_string_value(json_object_get(j, "sid")));
    json_decref(j);
    free(body);
    pc_post(c, "40");
    for (int tries = 0; tries < 10 && !c->id[0]; tries++) {
        char *b = pc_poll(c);
        char *p = strstr(b, "40{");
        if (p) {
            json_t *k = json_loads(p + 2, JSON_DISABLE_EOF_CHECK, NULL);
            snprintf(c->id, sizeof c->id, "%s", json_string_value(json_object_get(k, "sid")));
            json_decref(k);
        }
        free(b);
    }
    assert_int_equal(strlen(c->id), SIO_ID_LEN);
}

static void pc_join(pclient_t *c, const char *room) {
    char p[128];
    snprintf(p, sizeof p, "421[\"join\",\"%s\"]", room);
    pc_post(c, p);
    assert_int_equal(pc_count_until(c, "431[true]", NULL), 0);
}

static void wait_ready(bool want) {
    for (int i = 0; i < 1000; i++) {
        bool a, b;
        LOCKED({
            a = rec.ready_a;
            b = rec.ready_b;
        });
        if (a == want && b == want)
            return;
        usleep(10000);
    }
    fail_msg("buses never became %s", want ? "ready" : "unready");
}

/* Waits until both buses' subscriptions are live on the server (a PSUBSCRIBE is confirmed
 * asynchronously after the connect): a probe envelope for a namespace nobody has must reach two
 * subscribers. */
static void wait_subscribed(void) {
    wait_ready(true);
    pl_buf_t b;
    pl_buf_init(&b, 0);
    pl_rcbuf_t *t = pl_rcbuf_from("42[\"probe\"]", 11);
    assert_int_equal(bus_envelope_encode(&b, "probe", NULL, t, NULL, 0), 0);
    pl_rcbuf_unref(t);
    for (int i = 0; i < 500; i++) {
        long long n = test_redis_int(&g_redis, "PUBLISH parley:bus:/probe %b", b.data, b.len);
        if (n == 2) {
            pl_buf_dispose(&b);
            return;
        }
        usleep(10000);
    }
    fail_msg("subscriptions not renewed");
}

/* ---- tests ----------------------------------------------------------------------------------- */

static pclient_t a1, b1, b2;

static void test_broadcast_exactly_once(void **state) {
    (void)state;
    wait_subscribed();
    pc_connect(&a1, node_a.port);
    pc_connect(&b1, node_b.port);
    pc_connect(&b2, node_b.port);
    pc_join(&a1, "project:7");
    pc_join(&b1, "project:7");

    pc_post(&a1, "42[\"bcast\",\"project:7\",\"hello-1\"]");
    pc_post(&a1, "42[\"all\",\"end-1\"]");
    assert_int_equal(pc_count_until(&a1, "end-1", "hello-1"), 1);
    assert_int_equal(pc_count_until(&b1, "end-1", "hello-1"), 1);
    assert_int_equal(pc_count_until(&b2, "end-1", "hello-1"), 0);
    LOCKED(assert_int_equal(rec.last_local, 1));

    /* Except rooms cross nodes too: everyone in project:7 but b1. */
    char p[256];
    snprintf(p, sizeof p, "42[\"bcast\",\"project:7\",\"hello-2\",\"%s\"]", b1.id);
    pc_post(&a1, p);
    pc_post(&a1, "42[\"all\",\"end-2\"]");
    assert_int_equal(pc_count_until(&a1, "end-2", "hello-2"), 1);
    assert_int_equal(pc_count_until(&b1, "end-2", "hello-2"), 0);

    /* A per-socket emit from A to a socket on B. */
    snprintf(p, sizeof p, "42[\"to-id\",\"%s\",\"just-you\"]", b1.id);
    pc_post(&a1, p);
    pc_post(&a1, "42[\"all\",\"end-3\"]");
    assert_int_equal(pc_count_until(&b1, "end-3", "just-you"), 1);
    assert_int_equal(pc_count_until(&b2, "end-3", "just-you"), 0);
    assert_int_equal(pc_count_until(&a1, "end-3", "just-you"), 0);

    /* And the other way round: B's broadcast reaches A's member once. */
    pc_post(&b2, "42[\"bcast\",\"project:7\",\"from-b\"]");
    pc_post(&b2, "42[\"all\",\"end-4\"]");
    assert_int_equal(pc_count_until(&a1, "end-4", "from-b"), 1);
    assert_int_equal(pc_count_until(&b1, "end-4", "from-b"), 1);
    assert_int_equal(pc_count_until(&b2, "end-4", "from-b"), 0);

    for (int i = 0; i < 100; i++) {
        bus_redis_stats_t sa, sb;
        LOCKED({
            sa = rec.stats_a;
            sb = rec.stats_b;
        });
        if (sa.own >= 4 && sb.received >= 4)
            break;
        usleep(10000);
    }
    LOCKED({
        assert_true(rec.stats_a.published >= 4);
        assert_true(rec.stats_a.own >= 4); /* its own envelopes came back and were ignored */
        assert_true(rec.stats_b.received >= 4);
        assert_int_equal(rec.stats_a.malformed, 0);
    });
}

static void wait_notifications(int want) {
    for (int i = 0; i < 300; i++) {
        int n;
        LOCKED(n = rec.notifications);
        if (n >= want)
            return;
        usleep(10000);
    }
    fail_msg("notification %d never came", want);
}

static void test_node_notifications(void **state) {
    (void)state;
    /* From A to B, and from B to itself. */
    pc_post(&a1, "42[\"notify\",\"node-b\",\"ack:7:abc\"]");
    wait_notifications(1);
    LOCKED({
        assert_int_equal(rec.notify_rc, 0);
        assert_string_equal(rec.notify_at, "node-b");
        assert_string_equal(rec.notify_from, "node-a");
        assert_string_equal(rec.notify_data, "ack:7:abc");
    });
    pc_post(&b1, "42[\"notify\",\"node-b\",\"self\"]");
    wait_notifications(2);
    LOCKED({
        assert_string_equal(rec.notify_at, "node-b");
        assert_string_equal(rec.notify_from, "node-b");
        assert_string_equal(rec.notify_data, "self");
    });
    /* A node id nobody could have: refused; one nobody has: nobody receives it. */
    pc_post(&a1, "42[\"notify\",\"bad id\",\"x\"]");
    for (int i = 0; i < 100; i++) {
        int rc;
        LOCKED(rc = rec.notify_rc);
        if (rc == PL_EINVAL)
            break;
        usleep(10000);
    }
    LOCKED(assert_int_equal(rec.notify_rc, PL_EINVAL));
    pc_post(&a1, "42[\"notify\",\"node-z\",\"x\"]");
    pc_post(&a1, "42[\"notify\",\"node-a\",\"last\"]");
    wait_notifications(3);
    LOCKED({
        assert_int_equal(rec.notifications, 3);
        assert_string_equal(rec.notify_data, "last");
    });
}

static void test_malformed_envelope_ignored(void **state) {
    (void)state;
    redisReply *r = test_redis_cmd(&g_redis, "PUBLISH parley:bus:/ %b", "PB\x01\x05xx", (size_t)6);
    assert_non_null(r);
    assert_int_equal(r->integer, 2);
    freeReplyObject(r);
    /* A well-formed envelope for a namespace nobody has. */
    pl_buf_t b;
    pl_buf_init(&b, 0);
    pl_rcbuf_t *t = pl_rcbuf_from("42[\"x\"]", 7);
    assert_int_equal(bus_envelope_encode(&b, "stranger", NULL, t, NULL, 0), 0);
    r = test_redis_cmd(&g_redis, "PUBLISH parley:bus:/nowhere %b", b.data, b.len);
    freeReplyObject(r);
    pl_rcbuf_unref(t);
    pl_buf_dispose(&b);
    for (int i = 0; i < 100; i++) {
        uint64_t ma, mb;
        LOCKED({
            ma = rec.stats_a.malformed;
            mb = rec.stats_b.malformed;
        });
        if (ma == 1 && mb == 1)
            break;
        usleep(10000);
    }
    LOCKED({
        assert_int_equal(rec.stats_a.malformed, 1);
        assert_int_equal(rec.stats_b.malformed, 1);
    });
    /* The nodes still work. */
    pc_post(&a1, "42[\"bcast\",\"project:7\",\"still\"]");
    pc_post(&a1, "42[\"all\",\"end-5\"]");
    assert_int_equal(pc_count_until(&b1, "end-5", "still"), 1);
    assert_int_equal(pc_count_until(&a1, "end-5", "still"), 1);
    assert_int_equal(pc_count_until(&b2, "end-5", NULL), 0);
}

static void test_outage_and_recovery(void **state) {
    (void)state;
    uint64_t failed_before;
    LOCKED(failed_before = rec.stats_a.publish_failed);
    test_redis_kill(&g_redis);
    wait_ready(false);
    /* Local delivery goes on; the other node misses it (at-most-once), nothing queues. */
    pc_post(&a1, "42[\"bcast\",\"project:7\",\"during-outage\"]");
    pc_post(&a1, "42[\"all\",\"end-6\"]");
    assert_int_equal(pc_count_until(&a1, "end-6", "during-outage"), 1);
    for (int i = 0; i < 100; i++) {
        uint64_t f;
        LOCKED(f = rec.stats_a.publish_failed);
        if (f >= failed_before + 2)
            break;
        usleep(10000);
    }
    LOCKED(assert_true(rec.stats_a.publish_failed >= failed_before + 2));
    /* Redis comes back on the same port: the same buses resubscribe and carry broadcasts. */
    test_redis_start(&g_redis);
    wait_subscribed();
    pc_post(&a1, "42[\"bcast\",\"project:7\",\"after-outage\"]");
    pc_post(&a1, "42[\"all\",\"end-7\"]");
    assert_int_equal(pc_count_until(&b1, "end-7", "during-outage"), 0);
    assert_int_equal(pc_count_until(&a1, "end-7", "after-outage"), 1);
    assert_int_equal(pc_count_until(&b2, "end-7", "after-outage"), 0);
    pc_post(&a1, "41");
    pc_post(&b1, "41");
    pc_post(&b2, "41");
}

static int group_setup(void **state) {
    (void)state;
    pl_id_init();
    pl_log_set_level(PL_LOG_ERROR);
    signal(SIGPIPE, SIG_IGN);
    test_redis_start(&g_redis);
    uv_loop_init(&loop);
    node_start(&node_a, "node-a");
    node_start(&node_b, "node-b");
    uv_async_init(&loop, &stop_async, stop_cb);
    uv_timer_init(&loop, &watch);
    uv_timer_start(&watch, watch_cb, 10, 10);
    return pthread_create(&loop_thread, NULL, loop_main, NULL);
}

static int group_teardown(void **state) {
    (void)state;
    uv_async_send(&stop_async);
    pthread_join(loop_thread, NULL);
    LOCKED(assert_int_equal(rec.closed, 6));
    http_router_free(node_a.router);
    http_router_free(node_b.router);
    test_redis_stop(&g_redis);
    return uv_loop_close(&loop) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broadcast_exactly_once),
        cmocka_unit_test(test_node_notifications),
        cmocka_unit_test(test_malformed_envelope_ignored),
        cmocka_unit_test(test_outage_and_recovery),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
