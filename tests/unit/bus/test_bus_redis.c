/* Unit tests for the Redis bus (bus/bus_redis.h): two Socket.IO servers on one loop act as two
 * nodes, each with its own bus_redis adapter on a real redis-server. A room broadcast from node A
 * reaches the room's member on node B exactly once and A's own member exactly once (A ignores
 * its own envelope coming back), a non-member nowhere; except rooms and per-socket emits cross
 * nodes; an envelope nobody could have sent is refused without harm. Duplicate suppression: the
 * same envelope published twice reaches the sockets once (out of order, stale, a restarted
 * sender and version-1 envelopes as the header says), and a broadcast that reached fewer
 * subscribers than usual is re-published until it reaches them all, B receiving it once. The
 * restart case: a broadcast and a notification for node B made while B's subscriber is gone
 * (its bus closed) reach B once a new bus subscribes a second later. An outage: local delivery
 * goes on, the envelopes are kept (within BUS_KEEP_MAX, the oldest dropped past it) and reach B
 * once after Redis restarts on the same port; the same buses carry broadcasts again.
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
    int ctl;        /* command for the loop thread (CTL_*), 0 once done */
    int ctl_result; /* its result */
} rec = {.mu = PTHREAD_MUTEX_INITIALIZER};

enum { CTL_NONE, CTL_CLOSE_BUS_B, CTL_OPEN_BUS_B, CTL_FLOOD_A };
#define FLOOD_COUNT (BUS_KEEP_MAX + 3000)

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
static uv_async_t ctl_async;
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
        uv_close((uv_handle_t *)&ctl_async, NULL);
        uv_close((uv_handle_t *)&watch, NULL);
    }
}

/* Node B's first bus, closed in the middle of a test. */
static void bus_b_gone(void *ud) {
    (void)ud;
    LOCKED({
        rec.ctl_result = 1;
        rec.ctl = CTL_NONE;
    });
}

static void ctl_cb(uv_async_t *a) {
    (void)a;
    int cmd;
    LOCKED(cmd = rec.ctl);
    if (cmd == CTL_CLOSE_BUS_B) {
        bus_redis_t *bus = node_b.bus;
        LOCKED(node_b.bus = NULL);
        bus_redis_close(bus, bus_b_gone, NULL); /* answers the command when freed */
        return;
    }
    int result = 0;
    if (cmd == CTL_OPEN_BUS_B) {
        bus_redis_t *bus = bus_redis_new(&loop, g_redis.url, node_b.sio, "node-b");
        if (bus)
            bus_redis_on_notify(bus, notify_cb, (void *)"node-b");
        LOCKED(node_b.bus = bus);
        result = bus != NULL;
    } else if (cmd == CTL_FLOOD_A) {
        /* Broadcasts to a room nobody is in: only the bus carries them. */
        const char *rooms[] = {"nobody"};
        sio_target_t to = {.rooms = rooms, .nrooms = 1};
        json_t *j = json_pack("[s]", "flood");
        sio_nsp_t *nsp = sio_server_of(node_a.sio, "/");
        for (int i = 0; i < FLOOD_COUNT; i++)
            if (sio_nsp_emit(nsp, &to, "flood", &(sio_args_t){.args = j}) == 0)
                result++;
        json_decref(j);
    }
    LOCKED({
        rec.ctl_result = result;
        rec.ctl = CTL_NONE;
    });
}

/* Runs cmd on the loop thread and returns its result. */
static int ctl(int cmd) {
    LOCKED({
        rec.ctl = cmd;
        rec.ctl_result = -1;
    });
    uv_async_send(&ctl_async);
    for (int i = 0; i < 3000; i++) {
        int c, r;
        LOCKED({
            c = rec.ctl;
            r = rec.ctl_result;
        });
        if (c == CTL_NONE)
            return r;
        usleep(10000);
    }
    fail_msg("command %d not done", cmd);
    return -1;
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
    assert_int_equal(bus_envelope_encode(&b, "probe", 0, NULL, t, NULL, 0), 0);
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
    assert_int_equal(bus_envelope_encode(&b, "stranger", 0, NULL, t, NULL, 0), 0);
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

/* Reads packets until one contains marker; returns them all (joined with \x1e; free it). */
static char *pc_collect(pclient_t *c, const char *marker) {
    size_t cap = 1 << 12, len = 0;
    char *all = calloc(1, cap);
    for (int tries = 0; tries < 20; tries++) {
        char *body = pc_poll(c);
        bool done = false;
        char *save = NULL;
        for (char *p = strtok_r(body, "\x1e", &save); p; p = strtok_r(NULL, "\x1e", &save)) {
            if (!strcmp(p, "2")) {
                pc_post(c, "3");
                continue;
            }
            size_t n = strlen(p);
            while (len + n + 2 > cap)
                all = realloc(all, cap *= 2);
            memcpy(all + len, p, n);
            len += n;
            all[len++] = '\x1e';
            all[len] = '\0';
            if (strstr(p, marker))
                done = true;
        }
        free(body);
        if (done)
            return all;
    }
    fail_msg("marker %s never came", marker);
    return all;
}

static int count_of(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Publishes, as node `node` would, an envelope for room project:7 carrying event news(text). */
static void publish_as(const char *node, uint64_t seq, const char *text) {
    char msg[128];
    snprintf(msg, sizeof msg, "42[\"news\",\"%s\"]", text);
    pl_buf_t b;
    pl_buf_init(&b, 0);
    const char *rooms[] = {"project:7"};
    sio_target_t to = {.rooms = rooms, .nrooms = 1};
    pl_rcbuf_t *t = pl_rcbuf_from(msg, strlen(msg));
    assert_int_equal(bus_envelope_encode(&b, node, seq, &to, t, NULL, 0), 0);
    pl_rcbuf_unref(t);
    assert_int_equal(test_redis_int(&g_redis, "PUBLISH parley:bus:/ %b", b.data, b.len), 2);
    pl_buf_dispose(&b);
}

static void fail_stats(const char *what) {
    bus_redis_stats_t a, b;
    LOCKED({
        a = rec.stats_a;
        b = rec.stats_b;
    });
    fail_msg("never: %s (A: kept %llu republished %llu confirmed %llu failed %llu expected %u; B: "
             "received %llu duplicates %llu stale %llu)",
             what, (unsigned long long)a.kept, (unsigned long long)a.republished,
             (unsigned long long)a.confirmed, (unsigned long long)a.publish_failed, a.expected,
             (unsigned long long)b.received, (unsigned long long)b.duplicates,
             (unsigned long long)b.stale);
}

/* Polls the stats (copied every 10 ms) until cond holds, for at most ms. */
#define WAIT_STATS(cond, ms)                                                                       \
    do {                                                                                           \
        bool ok_ = false;                                                                          \
        for (int i_ = 0; i_ < (ms) / 10 && !ok_; i_++) {                                           \
            LOCKED(ok_ = (cond));                                                                  \
            if (!ok_)                                                                              \
                usleep(10000);                                                                     \
        }                                                                                          \
        if (!ok_)                                                                                  \
            fail_stats(#cond);                                                                     \
    } while (0)

static void test_duplicates_dropped(void **state) {
    (void)state;
    uint64_t dup_b, stale_b;
    LOCKED({
        dup_b = rec.stats_b.duplicates;
        stale_b = rec.stats_b.stale;
    });
    static const struct {
        const char *node;
        uint64_t seq; /* 0: a version-1 envelope */
        const char *text;
    } rows[] = {
        {"stranger", 5, "d5"},                    /* new */
        {"stranger", 5, "d5"},                    /* the same again: dropped */
        {"stranger", 4, "d4"},                    /* older but never seen: delivered */
        {"stranger", 4, "d4"},                    /* dropped */
        {"stranger", 7, "d7"},                    /* a gap: 6 not seen yet */
        {"stranger", 6, "d6"},                    /* filled in */
        {"stranger", 7, "d7"},                    /* dropped */
        {"stranger-2", 5, "s5"},                  /* another sender: its own numbers */
        {"stranger", 0, "v1"},                    /* version 1: no id, delivered every time */
        {"stranger", 0, "v1"},                    /* (twice) */
        {"stranger", 7 + BUS_DEDUP_WINDOW, "dw"}, /* the window moves on */
        {"stranger", 3, "d3"},                    /* now behind the window: stale, dropped */
        {"stranger", 1ull << 40, "dfar"},         /* much later */
        {"stranger", 9, "d9"},                    /* far behind: the sender restarted: delivered */
        {"stranger", 9, "d9"},                    /* and remembered */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        publish_as(rows[i].node, rows[i].seq, rows[i].text);
    pc_post(&a1, "42[\"all\",\"end-d\"]");
    char *got = pc_collect(&b1, "end-d");
    static const struct {
        const char *needle;
        int n;
    } want[] = {{"\"d5\"", 1}, {"\"d4\"", 1},   {"\"d7\"", 1},   {"\"d6\"", 1},
                {"\"s5\"", 1}, {"\"v1\"", 2},   {"\"dw\"", 1},   {"\"d3\"", 0},
                {"\"d9\"", 1}, {"\"dfar\"", 1}, {"\"news\"", 10}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (count_of(got, want[i].needle) != want[i].n)
            fail_msg("%s: %d times, want %d (got %s)", want[i].needle,
                     count_of(got, want[i].needle), want[i].n, got);
    free(got);
    /* b2 is in no room; a1 (node A) gets the same as b1. */
    assert_int_equal(pc_count_until(&b2, "end-d", "news"), 0);
    WAIT_STATS(rec.stats_b.duplicates >= dup_b + 4 && rec.stats_b.stale >= stale_b + 1, 2000);
    LOCKED({
        assert_int_equal(rec.stats_b.duplicates, dup_b + 4);
        assert_int_equal(rec.stats_b.stale, stale_b + 1);
    });
    test_sleep_ms(100);
    pc_post(&a1, "42[\"all\",\"end-d2\"]");
    got = pc_collect(&a1, "end-d2");
    assert_int_equal(count_of(got, "\"news\""), 10);
    free(got);
}

/* The restart case: node B's subscriber is gone (its bus closed) when A broadcasts to B's room
 * and notifies B; a new bus for B subscribes a second later and gets both, once. */
static void test_late_subscriber(void **state) {
    (void)state;
    wait_subscribed();
    /* First, the notification for node-z (nobody) of test_node_notifications: tried again and
     * again, and given up BUS_RETRY_FOR_MS after the first attempt. */
    WAIT_STATS(rec.stats_a.kept == 0, BUS_RETRY_FOR_MS + 2000);
    LOCKED({
        assert_int_equal(rec.stats_a.publish_failed, 1);
        assert_int_equal(rec.stats_a.expected, 2);
    });
    uint64_t rep_a;
    int notes;
    LOCKED({
        rep_a = rec.stats_a.republished;
        notes = rec.notifications;
    });
    assert_int_equal(ctl(CTL_CLOSE_BUS_B), 1);
    pc_post(&a1, "42[\"bcast\",\"project:7\",\"while-b-away\"]");
    pc_post(&a1, "42[\"notify\",\"node-b\",\"note-away\"]");
    /* Both fell short (A's subscriber alone, nobody on B's channel) and are tried again. */
    WAIT_STATS(rec.stats_a.republished >= rep_a + 4 && rec.stats_a.kept == 2, 3000);
    LOCKED(assert_int_equal(rec.notify_rc, 0));
    assert_int_equal(ctl(CTL_OPEN_BUS_B), 1);
    wait_notifications(notes + 1);
    WAIT_STATS(rec.stats_a.kept == 0, 5000);
    LOCKED({
        assert_string_equal(rec.notify_at, "node-b");
        assert_string_equal(rec.notify_from, "node-a");
        assert_string_equal(rec.notify_data, "note-away");
    });
    pc_post(&a1, "42[\"all\",\"end-l\"]");
    assert_int_equal(pc_count_until(&b1, "end-l", "while-b-away"), 1);
    assert_int_equal(pc_count_until(&a1, "end-l", "while-b-away"), 1);
    assert_int_equal(pc_count_until(&b2, "end-l", "while-b-away"), 0);
    /* B's new bus carries broadcasts both ways. */
    pc_post(&b2, "42[\"bcast\",\"project:7\",\"new-b\"]");
    pc_post(&b2, "42[\"all\",\"end-l2\"]");
    assert_int_equal(pc_count_until(&a1, "end-l2", "new-b"), 1);
    assert_int_equal(pc_count_until(&b1, "end-l2", "new-b"), 1);
    LOCKED(assert_int_equal(rec.notifications, notes + 1));
}

static void test_outage_and_recovery(void **state) {
    (void)state;
    uint64_t failed_before;
    LOCKED(failed_before = rec.stats_a.publish_failed);
    test_redis_kill(&g_redis);
    wait_ready(false);
    /* Local delivery goes on; what the other node must get is kept, within the bound: a flood
     * of broadcasts pushes the oldest out. */
    assert_int_equal(ctl(CTL_FLOOD_A), FLOOD_COUNT);
    WAIT_STATS(rec.stats_a.kept == BUS_KEEP_MAX, 2000);
    LOCKED(
        assert_int_equal(rec.stats_a.publish_failed, failed_before + FLOOD_COUNT - BUS_KEEP_MAX));
    LOCKED(assert_true(rec.stats_a.kept_bytes <= BUS_KEEP_BYTES));
    pc_post(&a1, "42[\"bcast\",\"project:7\",\"during-outage\"]");
    pc_post(&a1, "42[\"all\",\"end-6\"]");
    assert_int_equal(pc_count_until(&a1, "end-6", "during-outage"), 1);
    WAIT_STATS(rec.stats_a.publish_failed == failed_before + FLOOD_COUNT - BUS_KEEP_MAX + 2, 2000);
    /* Redis comes back on the same port: the same buses resubscribe, the kept envelopes reach
     * node B once, and broadcasts flow again. */
    test_redis_start(&g_redis);
    wait_subscribed();
    WAIT_STATS(rec.stats_a.kept == 0, 15000);
    LOCKED(assert_int_equal(rec.stats_a.publish_failed,
                            failed_before + FLOOD_COUNT - BUS_KEEP_MAX + 2));
    pc_post(&a1, "42[\"bcast\",\"project:7\",\"after-outage\"]");
    pc_post(&a1, "42[\"all\",\"end-7\"]");
    char *got = pc_collect(&b1, "end-7");
    assert_int_equal(count_of(got, "during-outage"), 1);
    assert_int_equal(count_of(got, "end-6"), 1);
    assert_int_equal(count_of(got, "after-outage"), 1);
    assert_int_equal(count_of(got, "flood"), 0); /* b1 is not in that room */
    free(got);
    assert_int_equal(pc_count_until(&a1, "end-7", "after-outage"), 1);
    assert_int_equal(pc_count_until(&b2, "end-7", "after-outage"), 0);
}

/* A broadcast that reaches fewer subscribers than usual (a third one, seen before, is gone) is
 * published again until it reaches them all; node B, which had it from the first attempt, drops
 * the copies. Last: A keeps expecting three subscribers for BUS_EXPECT_DECAY_MS. */
static void test_republished_until_all(void **state) {
    (void)state;
    wait_subscribed();
    redisContext *third = test_redis_client(&g_redis);
    assert_non_null(third);
    redisReply *r = redisCommand(third, "PSUBSCRIBE parley:bus:*");
    assert_non_null(r);
    freeReplyObject(r);
    pc_post(&a1, "42[\"bcast\",\"project:7\",\"tri-1\"]");
    WAIT_STATS(rec.stats_a.expected == 3 && rec.stats_a.kept == 0, 2000);
    redisFree(third); /* the third subscriber leaves */
    uint64_t rep_a, dup_b, recv_b;
    LOCKED({
        rep_a = rec.stats_a.republished;
        dup_b = rec.stats_b.duplicates;
        recv_b = rec.stats_b.received;
    });
    pc_post(&a1, "42[\"bcast\",\"project:7\",\"tri-2\"]");
    WAIT_STATS(rec.stats_a.republished >= rep_a + 2 && rec.stats_b.duplicates >= dup_b + 2, 3000);
    LOCKED(assert_int_equal(rec.stats_a.kept, 1));
    /* It comes back: the next attempt reaches three, and the envelope is done. */
    third = test_redis_client(&g_redis);
    assert_non_null(third);
    r = redisCommand(third, "PSUBSCRIBE parley:bus:*");
    freeReplyObject(r);
    WAIT_STATS(rec.stats_a.kept == 0, 5000);
    pc_post(&a1, "42[\"all\",\"end-8\"]");
    assert_int_equal(pc_count_until(&b1, "end-8", "tri-2"), 1);
    assert_int_equal(pc_count_until(&a1, "end-8", "tri-2"), 1);
    /* B delivered tri-2 and end-8 once each and dropped every copy. */
    WAIT_STATS(rec.stats_b.received == recv_b + 2, 2000);
    LOCKED(assert_true(rec.stats_b.duplicates >= dup_b + 2));
    redisFree(third);
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
    uv_async_init(&loop, &ctl_async, ctl_cb);
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
        cmocka_unit_test(test_duplicates_dropped),
        cmocka_unit_test(test_late_subscriber),
        cmocka_unit_test(test_outage_and_recovery),
        cmocka_unit_test(test_republished_until_all),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
