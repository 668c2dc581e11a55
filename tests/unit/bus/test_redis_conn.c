/* Unit tests for the Redis connection layer (bus/redis_conn.h) against a real redis-server:
 * URL parsing (good, boundary and malformed rows), commands and error replies, scripts with the
 * EVAL fallback, db selection, name resolution off the loop, a refused connection (reported,
 * retried with growing backoff, nothing leaked), an outage (SIGKILL: fail fast, then resume on
 * restart without new objects), a hung server (reply deadline), the bound on pending commands,
 * pub/sub renewed after a restart, and close with commands in flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "bus/redis_conn.h"
#include "core/id.h"
#include "core/log.h"
#include "redis_server.h"

#include <netdb.h>

static test_redis_t g_redis;

typedef struct {
    int calls;
    int status;
    int type;
    long long integer;
    char str[128];
    bool done;
} reply_t;

static void reply_cb(void *ud, int status, redisReply *r) {
    reply_t *x = ud;
    x->calls++;
    x->status = status;
    x->type = r ? r->type : -1;
    x->integer = r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    snprintf(x->str, sizeof x->str, "%s", r && r->str ? r->str : "");
    x->done = true;
}

typedef struct {
    int ups, downs;
    int last;
    bool up, down;
} state_t;

static void state_cb(void *ud, int status) {
    state_t *s = ud;
    s->last = status;
    if (status == 0) {
        s->ups++;
        s->up = true;
    } else {
        s->downs++;
        s->down = true;
    }
}

static int send_simple(redis_conn_t *c, reply_t *r, int n, const char *const *argv) {
    redis_cmd_t m;
    redis_cmd_init(&m);
    for (int i = 0; i < n; i++)
        redis_cmd_str(&m, argv[i]);
    int rc = redis_conn_send(c, &m, 0, reply_cb, r);
    redis_cmd_dispose(&m);
    return rc;
}

static void closed_cb(void *ud) {
    *(bool *)ud = true;
}

static void close_conn(uv_loop_t *loop, redis_conn_t *c) {
    bool closed = false;
    redis_conn_close(c, closed_cb, &closed);
    assert_false(closed); /* never inside the call */
    assert_true(test_run_until(loop, &closed, 5000));
}

static int setup(void **state) {
    (void)state;
    pl_id_init();
    pl_log_set_level(PL_LOG_ERROR);
    test_redis_start(&g_redis);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    test_redis_stop(&g_redis);
    return 0;
}

/* ---- URL rows -------------------------------------------------------------------------------- */

static void test_url_rows(void **state) {
    (void)state;
    static const struct {
        const char *url;
        int rc;
        const char *host;
        unsigned port, db;
    } rows[] = {
        {"redis://127.0.0.1:6380", 0, "127.0.0.1", 6380, 0},
        {"redis://localhost", 0, "localhost", 6379, 0},
        {"redis://localhost/", 0, "localhost", 6379, 0},
        {"redis://10.0.0.2:1/15", 0, "10.0.0.2", 1, 15},
        {"redis://[::1]:7000/2", 0, "::1", 7000, 2},
        {"redis://cache.internal:65535", 0, "cache.internal", 65535, 0},
        {"redis://h/1000000", 0, "h", 6379, 1000000},
        /* boundaries and malformed */
        {"redis://h:65536", PL_EINVAL, NULL, 0, 0},
        {"redis://h:0", PL_EINVAL, NULL, 0, 0},
        {"redis://h:", PL_EINVAL, NULL, 0, 0},
        {"redis://h/1000001", PL_EINVAL, NULL, 0, 0},
        {"redis://h/x", PL_EINVAL, NULL, 0, 0},
        {"redis://h:12ab", PL_EINVAL, NULL, 0, 0},
        {"redis://", PL_EINVAL, NULL, 0, 0},
        {"redis://:6379", PL_EINVAL, NULL, 0, 0},
        {"redis://user:pw@h:6379", PL_EINVAL, NULL, 0, 0},
        {"redis://[::1", PL_EINVAL, NULL, 0, 0},
        {"rediss://h", PL_EINVAL, NULL, 0, 0},
        {"http://h", PL_EINVAL, NULL, 0, 0},
        {"redis://h h", PL_EINVAL, NULL, 0, 0},
        {"redis://h/0?x=1", PL_EINVAL, NULL, 0, 0},
        {"", PL_EINVAL, NULL, 0, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        redis_url_t u;
        int rc = redis_url_parse(rows[i].url, &u);
        if (rc != rows[i].rc)
            fail_msg("row %zu (%s): rc %d", i, rows[i].url, rc);
        if (rc == 0) {
            assert_string_equal(u.host, rows[i].host);
            assert_int_equal(u.port, rows[i].port);
            assert_int_equal(u.db, rows[i].db);
        }
    }
    char longhost[400] = "redis://";
    memset(longhost + 8, 'a', 256);
    redis_url_t u;
    assert_int_equal(redis_url_parse(longhost, &u), PL_EINVAL);
    longhost[8 + 255] = '\0';
    assert_int_equal(redis_url_parse(longhost, &u), 0);
    assert_null(redis_conn_new(uv_default_loop(), "redis://h:99999", NULL));
}

/* ---- commands -------------------------------------------------------------------------------- */

static void test_commands_and_scripts(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    redis_conn_t *c = redis_conn_new(&loop, g_redis.url, NULL);
    assert_non_null(c);
    state_t st = {0};
    redis_conn_on_state(c, state_cb, &st);
    /* Commands are accepted while connecting and answered in order. */
    reply_t r1 = {0}, r2 = {0}, r3 = {0};
    const char *set[] = {"SET", "k1", "v1"};
    const char *get[] = {"GET", "k1"};
    const char *bad[] = {"INCR", "k1"};
    assert_int_equal(send_simple(c, &r1, 3, set), 0);
    assert_int_equal(send_simple(c, &r2, 2, get), 0);
    assert_int_equal(send_simple(c, &r3, 2, bad), 0);
    assert_int_equal(r1.calls, 0); /* never inside the call */
    assert_true(test_run_until(&loop, &r3.done, 3000));
    assert_true(st.up);
    assert_true(redis_conn_ready(c));
    assert_int_equal(r1.status, 0);
    assert_int_equal(r1.type, REDIS_REPLY_STATUS);
    assert_string_equal(r2.str, "v1");
    assert_int_equal(r3.type, REDIS_REPLY_ERROR); /* an error reply is a reply */
    /* Binary-safe arguments. */
    redis_cmd_t m;
    redis_cmd_init(&m);
    redis_cmd_str(&m, "SET");
    redis_cmd_str(&m, "bin");
    redis_cmd_arg(&m, "a\0b\r\n", 5);
    reply_t r4 = {0};
    assert_int_equal(redis_conn_send(c, &m, 0, reply_cb, &r4), 0);
    assert_true(test_run_until(&loop, &r4.done, 3000));
    assert_int_equal(test_redis_int(&g_redis, "STRLEN bin"), 5);
    /* No arguments: refused. */
    redis_cmd_reset(&m);
    assert_int_equal(redis_conn_send(c, &m, 0, reply_cb, &r4), PL_EINVAL);
    /* Scripts: EVALSHA after a SCRIPT FLUSH falls back to EVAL, then EVALSHA works. */
    static redis_script_t script;
    redis_script_init(&script, "return redis.call('INCRBY', KEYS[1], ARGV[1])");
    redisReply *fl = test_redis_cmd(&g_redis, "SCRIPT FLUSH");
    freeReplyObject(fl);
    for (int i = 1; i <= 3; i++) {
        redis_cmd_reset(&m);
        redis_cmd_int(&m, 1);
        redis_cmd_str(&m, "counter");
        redis_cmd_int(&m, 10);
        reply_t r = {0};
        assert_int_equal(redis_conn_eval(c, &script, &m, reply_cb, &r), 0);
        assert_true(test_run_until(&loop, &r.done, 3000));
        assert_int_equal(r.status, 0);
        assert_int_equal(r.type, REDIS_REPLY_INTEGER);
        assert_int_equal(r.integer, 10 * i);
    }
    redis_cmd_dispose(&m);
    /* The sha we compute is Redis's. */
    redisReply *ex = test_redis_cmd(&g_redis, "SCRIPT EXISTS %s", script.sha);
    assert_non_null(ex);
    assert_int_equal(ex->element[0]->integer, 1);
    freeReplyObject(ex);
    close_conn(&loop, c);
    assert_int_equal(test_loop_close(&loop), 0);
}

static void test_db_and_resolver(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char url[300];
    snprintf(url, sizeof url, "redis://localhost:%d/3", g_redis.port);
    redis_conn_t *c = redis_conn_new(&loop, url, NULL);
    reply_t r = {0};
    const char *set[] = {"SET", "in-db-3", "yes"};
    assert_int_equal(send_simple(c, &r, 3, set), 0);
    assert_true(test_run_until(&loop, &r.done, 3000));
    assert_int_equal(test_redis_int(&g_redis, "EXISTS in-db-3"), 0);
    redisContext *sc = test_redis_client(&g_redis);
    redisReply *x = redisCommand(sc, "SELECT 3");
    freeReplyObject(x);
    x = redisCommand(sc, "EXISTS in-db-3");
    assert_int_equal(x->integer, 1);
    freeReplyObject(x);
    redisFree(sc);
    close_conn(&loop, c);
    /* A host name goes through uv_getaddrinfo (this machine's name is in /etc/hosts). */
    char host[256];
    assert_int_equal(gethostname(host, sizeof host), 0);
    snprintf(url, sizeof url, "redis://%s:%d", host, g_redis.port);
    c = redis_conn_new(&loop, url, NULL);
    state_t st = {0};
    redis_conn_on_state(c, state_cb, &st);
    /* Resolving: nothing can be queued yet. */
    const char *ping[] = {"PING"};
    reply_t p = {0};
    assert_int_equal(send_simple(c, &p, 1, ping), PL_EUNAVAIL);
    assert_true(test_run_until(&loop, &st.up, 3000));
    assert_int_equal(send_simple(c, &p, 1, ping), 0);
    assert_true(test_run_until(&loop, &p.done, 3000));
    assert_string_equal(p.str, "PONG");
    close_conn(&loop, c);
    assert_int_equal(test_loop_close(&loop), 0);
}

/* ---- failures -------------------------------------------------------------------------------- */

static void test_refused(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", test_free_port());
    redis_conn_t *c = redis_conn_new(&loop, url, NULL);
    state_t st = {0};
    redis_conn_on_state(c, state_cb, &st);
    assert_true(test_run_until(&loop, &st.down, 3000));
    assert_int_equal(st.last, UV_ECONNREFUSED);
    assert_false(redis_conn_ready(c));
    /* Nothing queues while Redis is unreachable. */
    const char *ping[] = {"PING"};
    reply_t p = {0};
    int rc = send_simple(c, &p, 1, ping);
    if (rc == 0) { /* caught during a reconnect attempt: it fails with the attempt */
        assert_true(test_run_until(&loop, &p.done, 3000));
        assert_int_equal(p.status, PL_EUNAVAIL);
    } else {
        assert_int_equal(rc, PL_EUNAVAIL);
    }
    /* Retries with a growing delay: 100, 200, 400 ms ... */
    test_run_for(&loop, 900);
    assert_true(st.downs >= 3);
    assert_true(st.downs <= 5);
    assert_true(redis_conn_backoff_ms(c) >= 800);
    assert_int_equal(st.ups, 0);
    close_conn(&loop, c);
    assert_int_equal(test_loop_close(&loop), 0);
}

static void test_outage_and_resume(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    test_redis_t r = {0};
    test_redis_start(&r);
    redis_conn_t *c = redis_conn_new(&loop, r.url, NULL);
    state_t st = {0};
    redis_conn_on_state(c, state_cb, &st);
    assert_true(test_run_until(&loop, &st.up, 3000));
    /* A command in flight when Redis dies gets PL_EUNAVAIL. */
    reply_t blocked = {0};
    redis_cmd_t m;
    redis_cmd_init(&m);
    redis_cmd_str(&m, "BLPOP");
    redis_cmd_str(&m, "nothing");
    redis_cmd_int(&m, 10);
    assert_int_equal(redis_conn_send(c, &m, 10000, reply_cb, &blocked), 0);
    redis_cmd_dispose(&m);
    test_run_for(&loop, 50);
    test_redis_kill(&r);
    assert_true(test_run_until(&loop, &blocked.done, 3000));
    assert_int_equal(blocked.status, PL_EUNAVAIL);
    st.down = false;
    assert_true(test_run_until(&loop, &st.down, 3000));
    /* Fail fast while down (or with the reconnect attempt it was caught in). */
    const char *ping[] = {"PING"};
    uint64_t t0 = uv_now(&loop);
    for (int i = 0; i < 3; i++) {
        reply_t p = {0};
        int rc = send_simple(c, &p, 1, ping);
        if (rc == 0) {
            assert_true(test_run_until(&loop, &p.done, 3000));
            assert_int_equal(p.status, PL_EUNAVAIL);
        } else {
            assert_int_equal(rc, PL_EUNAVAIL);
        }
        test_run_for(&loop, 150);
    }
    uv_update_time(&loop);
    assert_true(uv_now(&loop) - t0 < 2000);
    /* Restart on the same port: the same object reconnects and works. */
    st.up = false;
    test_redis_start(&r);
    assert_true(test_run_until(&loop, &st.up, 8000));
    reply_t p = {0};
    assert_int_equal(send_simple(c, &p, 1, ping), 0);
    assert_true(test_run_until(&loop, &p.done, 3000));
    assert_string_equal(p.str, "PONG");
    assert_int_equal(redis_conn_failures(c), 0);
    close_conn(&loop, c);
    test_redis_stop(&r);
    assert_int_equal(test_loop_close(&loop), 0);
}

static void test_hung_server(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    test_redis_t r = {0};
    test_redis_start(&r);
    redis_conn_options_t o;
    redis_conn_options_default(&o);
    o.command_timeout_ms = 300;
    o.connect_timeout_ms = 300;
    redis_conn_t *c = redis_conn_new(&loop, r.url, &o);
    state_t st = {0};
    redis_conn_on_state(c, state_cb, &st);
    assert_true(test_run_until(&loop, &st.up, 3000));
    kill(r.pid, SIGSTOP);
    const char *ping[] = {"PING"};
    reply_t p = {0};
    assert_int_equal(send_simple(c, &p, 1, ping), 0);
    uint64_t t0 = uv_now(&loop);
    assert_true(test_run_until(&loop, &p.done, 3000));
    assert_int_equal(p.status, PL_EUNAVAIL);
    uv_update_time(&loop);
    assert_true(uv_now(&loop) - t0 >= 250);
    assert_true(uv_now(&loop) - t0 < 1500);
    /* The kernel still completes TCP handshakes for the stopped server, so a reconnect may
     * "succeed"; once it runs again, the same object answers. */
    test_run_for(&loop, 500);
    kill(r.pid, SIGCONT);
    bool pong = false;
    for (int i = 0; i < 50 && !pong; i++) {
        reply_t q = {0};
        if (send_simple(c, &q, 1, ping) == 0) {
            assert_true(test_run_until(&loop, &q.done, 3000));
            pong = q.status == 0 && strcmp(q.str, "PONG") == 0;
        }
        if (!pong)
            test_run_for(&loop, 100);
    }
    assert_true(pong);
    assert_true(st.downs >= 1);
    close_conn(&loop, c);
    test_redis_stop(&r);
    assert_int_equal(test_loop_close(&loop), 0);
}

static void test_bound_and_close(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    redis_conn_options_t o;
    redis_conn_options_default(&o);
    o.max_pending = 2;
    redis_conn_t *c = redis_conn_new(&loop, g_redis.url, &o);
    const char *ping[] = {"PING"};
    reply_t a = {0}, b = {0}, x = {0};
    assert_int_equal(send_simple(c, &a, 1, ping), 0);
    assert_int_equal(send_simple(c, &b, 1, ping), 0);
    assert_int_equal(send_simple(c, &x, 1, ping), PL_EUNAVAIL);
    assert_int_equal(redis_conn_pending(c), 2);
    assert_true(test_run_until(&loop, &b.done, 3000));
    assert_int_equal(redis_conn_pending(c), 0);
    /* Close with commands in flight: they are answered first. */
    reply_t d = {0}, e = {0};
    assert_int_equal(send_simple(c, &d, 1, ping), 0);
    assert_int_equal(send_simple(c, &e, 1, ping), 0);
    close_conn(&loop, c);
    assert_int_equal(d.status, 0);
    assert_string_equal(e.str, "PONG");
    /* Close while still connecting: the queued command fails. */
    c = redis_conn_new(&loop, g_redis.url, NULL);
    reply_t f = {0};
    assert_int_equal(send_simple(c, &f, 1, ping), 0);
    close_conn(&loop, c);
    assert_int_equal(f.calls, 1);
    assert_int_equal(f.status, PL_EUNAVAIL);
    assert_int_equal(test_loop_close(&loop), 0);
}

/* Closing from inside a reply callback and from the state callback is safe. */
typedef struct {
    redis_conn_t *c;
    bool closed;
} self_close_t;

static void self_closed_cb(void *ud) {
    ((self_close_t *)ud)->closed = true;
}

static void close_in_reply(void *ud, int status, redisReply *r) {
    self_close_t *s = ud;
    (void)status;
    (void)r;
    redis_conn_close(s->c, self_closed_cb, s);
}

static void close_in_state(void *ud, int status) {
    self_close_t *s = ud;
    (void)status;
    redis_conn_close(s->c, self_closed_cb, s);
}

static void test_close_from_callbacks(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    self_close_t s = {0};
    s.c = redis_conn_new(&loop, g_redis.url, NULL);
    redis_cmd_t m;
    redis_cmd_init(&m);
    redis_cmd_str(&m, "PING");
    assert_int_equal(redis_conn_send(s.c, &m, 0, close_in_reply, &s), 0);
    assert_true(test_run_until(&loop, &s.closed, 3000));
    /* From the connect callback. */
    s = (self_close_t){0};
    s.c = redis_conn_new(&loop, g_redis.url, NULL);
    redis_conn_on_state(s.c, close_in_state, &s);
    assert_true(test_run_until(&loop, &s.closed, 3000));
    /* From a refused attempt. */
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", test_free_port());
    s = (self_close_t){0};
    s.c = redis_conn_new(&loop, url, NULL);
    redis_conn_on_state(s.c, close_in_state, &s);
    assert_true(test_run_until(&loop, &s.closed, 3000));
    redis_cmd_dispose(&m);
    assert_int_equal(test_loop_close(&loop), 0);
}

/* ---- pub/sub --------------------------------------------------------------------------------- */

typedef struct {
    int n;
    char last[64];
    char channel[64];
    bool got;
} msg_t;

static void message_cb(void *ud, const char *channel, size_t clen, const char *data, size_t len) {
    msg_t *m = ud;
    m->n++;
    snprintf(m->last, sizeof m->last, "%.*s", (int)len, data);
    snprintf(m->channel, sizeof m->channel, "%.*s", (int)clen, channel);
    m->got = true;
}

static void publish(uv_loop_t *loop, redis_conn_t *pub, const char *ch, const char *msg,
                    reply_t *r) {
    const char *argv[] = {"PUBLISH", ch, msg};
    assert_int_equal(send_simple(pub, r, 3, argv), 0);
    assert_true(test_run_until(loop, &r->done, 3000));
}

static void test_pubsub_resubscribes(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    test_redis_t r = {0};
    test_redis_start(&r);
    redis_conn_t *sub = redis_conn_new(&loop, r.url, NULL);
    redis_conn_t *pub = redis_conn_new(&loop, r.url, NULL);
    msg_t plain = {0}, pat = {0};
    assert_int_equal(redis_conn_subscribe(sub, "news", false, message_cb, &plain), 0);
    assert_int_equal(redis_conn_subscribe(sub, "room:*", true, message_cb, &pat), 0);
    assert_int_equal(redis_conn_subscribe(sub, "", false, message_cb, &pat), PL_EINVAL);
    state_t st = {0};
    redis_conn_on_state(sub, state_cb, &st);
    assert_true(test_run_until(&loop, &st.up, 3000));
    /* A subscriber connection sends nothing else. */
    const char *ping[] = {"PING"};
    reply_t x = {0};
    assert_int_equal(send_simple(sub, &x, 1, ping), PL_EINVAL);
    /* Wait until both subscriptions are active (PUBSUB NUMPAT / NUMSUB). */
    for (int i = 0; i < 100 && test_redis_int(&r, "PUBSUB NUMPAT") != 1; i++)
        test_run_for(&loop, 10);
    reply_t p1 = {0}, p2 = {0};
    publish(&loop, pub, "news", "hello", &p1);
    publish(&loop, pub, "room:42", "bin\x01", &p2);
    assert_int_equal(p1.integer, 1);
    assert_true(test_run_until(&loop, &pat.got, 3000));
    assert_true(test_run_until(&loop, &plain.got, 3000));
    assert_string_equal(plain.last, "hello");
    assert_string_equal(pat.last, "bin\x01");
    assert_string_equal(pat.channel, "room:42");
    /* Restart Redis: both connections come back, the subscriptions are renewed. */
    test_redis_kill(&r);
    st.down = false;
    assert_true(test_run_until(&loop, &st.down, 3000));
    st.up = false;
    test_redis_start(&r);
    assert_true(test_run_until(&loop, &st.up, 8000));
    for (int i = 0; i < 300 && (test_redis_int(&r, "PUBSUB NUMPAT") != 1 || !redis_conn_ready(pub));
         i++)
        test_run_for(&loop, 10);
    plain.got = false;
    reply_t p3 = {0};
    publish(&loop, pub, "news", "again", &p3);
    assert_true(test_run_until(&loop, &plain.got, 3000));
    assert_string_equal(plain.last, "again");
    assert_int_equal(plain.n, 2);
    close_conn(&loop, sub);
    close_conn(&loop, pub);
    test_redis_stop(&r);
    assert_int_equal(test_loop_close(&loop), 0);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_rows),
        cmocka_unit_test(test_commands_and_scripts),
        cmocka_unit_test(test_db_and_resolver),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_outage_and_resume),
        cmocka_unit_test(test_hung_server),
        cmocka_unit_test(test_bound_and_close),
        cmocka_unit_test(test_close_from_callbacks),
        cmocka_unit_test(test_pubsub_resubscribes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
