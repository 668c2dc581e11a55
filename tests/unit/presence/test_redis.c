/* Unit tests for the Redis presence backend against a real redis-server: the cases of
 * test_memory.c (first/last socket across tabs, compare-and-delete of the session key, batched
 * online checks, URLs, asynchronous callbacks), plus what only Redis shows: the keys and their
 * TTLs, the online batch in one round trip, two nodes sharing a visitor, a node that stops
 * without detaching (its sockets do not count, the sweep purges them and reports the visitor
 * offline), an outage (fail fast, then resume with the same object and write back this node's
 * sockets into the restarted, empty Redis) and a refused connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "../bus/redis_server.h"
#include "core/id.h"
#include "core/log.h"
#include "presence/presence.h"

#include <stdlib.h>
#include <string.h>

static test_redis_t g_redis;

typedef struct {
    int calls;
    int status;
    bool flag;
    char str[64];
    bool online[8];
    size_t n;
    bool done;
} res_t;

static void flag_cb(void *ud, int status, bool flag) {
    res_t *r = ud;
    r->calls++;
    r->status = status;
    r->flag = flag;
    r->done = true;
}

static void str_cb(void *ud, int status, const char *s) {
    res_t *r = ud;
    r->calls++;
    r->status = status;
    snprintf(r->str, sizeof r->str, "%s", s ? s : "(null)");
    r->done = true;
}

static void online_cb(void *ud, int status, const bool *on, size_t n) {
    res_t *r = ud;
    r->calls++;
    r->status = status;
    r->n = n;
    if (on)
        memcpy(r->online, on, (n < 8 ? n : 8) * sizeof *on);
    r->done = true;
}

static void done_cb(void *ud, int status) {
    res_t *r = ud;
    r->calls++;
    r->status = status;
    r->done = true;
}

static uv_loop_t loop;

/* Waits for the callback of the call just made. */
static void wait_cb_of(res_t *r) {
    assert_true(test_run_until(&loop, &r->done, 5000));
    r->done = false;
}

static bool attach(presence_t *p, int64_t project, const char *uid, const char *sock) {
    res_t r = {0};
    assert_int_equal(presence_attach(p, project, uid, sock, flag_cb, &r), 0);
    assert_int_equal(r.calls, 0); /* never inside the call */
    wait_cb_of(&r);
    assert_int_equal(r.status, 0);
    return r.flag;
}

static bool detach(presence_t *p, int64_t project, const char *uid, const char *sock) {
    res_t r = {0};
    assert_int_equal(presence_detach(p, project, uid, sock, flag_cb, &r), 0);
    wait_cb_of(&r);
    assert_int_equal(r.status, 0);
    return r.flag;
}

static const char *session(presence_t *p, int64_t project, const char *uid, res_t *r) {
    assert_int_equal(presence_get_session(p, project, uid, str_cb, r), 0);
    wait_cb_of(r);
    assert_int_equal(r->status, 0);
    return r->str;
}

static void closed_cb(void *ud) {
    *(bool *)ud = true;
}

static void close_presence(presence_t *p) {
    bool closed = false;
    presence_close(p, closed_cb, &closed);
    assert_true(test_run_until(&loop, &closed, 5000));
}

static presence_t *open_presence(const char *node) {
    presence_t *p = presence_redis_new(&loop, g_redis.url, 0, node, NULL, NULL);
    assert_non_null(p);
    return p;
}

static int setup(void **state) {
    (void)state;
    uv_loop_init(&loop);
    redisReply *r = test_redis_cmd(&g_redis, "FLUSHALL");
    freeReplyObject(r);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    return test_loop_close(&loop);
}

/* ---- the cases of test_memory.c -------------------------------------------------------------- */

static void test_tabs(void **state) {
    (void)state;
    presence_t *p = open_presence("node-a");
    res_t r = {0};
    assert_false(attach(p, 1, "visitor-1", "sockA")); /* first tab: was offline */
    assert_true(attach(p, 1, "visitor-1", "sockB"));  /* second tab: already online */
    assert_string_equal(session(p, 1, "visitor-1", &r), "sockB");
    assert_false(attach(p, 2, "visitor-1", "sockC")); /* another project, another visitor */
    /* Closing the older tab: the key (pointing at B) is untouched; still online. */
    assert_true(detach(p, 1, "visitor-1", "sockA"));
    assert_string_equal(session(p, 1, "visitor-1", &r), "sockB");
    /* A stale detach of an unknown socket changes nothing. */
    assert_true(detach(p, 1, "visitor-1", "sockZ"));
    /* The last tab: offline, key deleted. */
    assert_false(detach(p, 1, "visitor-1", "sockB"));
    assert_string_equal(session(p, 1, "visitor-1", &r), "(null)");
    assert_int_equal(test_redis_int(&g_redis, "EXISTS parley:presence:1:visitor-1"), 0);
    close_presence(p);
}

static void test_key_moves_to_remaining_tab(void **state) {
    (void)state;
    presence_t *p = open_presence("node-a");
    res_t r = {0};
    attach(p, 1, "v", "s1");
    attach(p, 1, "v", "s2");
    /* The newest tab closes first: the key must not be left pointing at nothing. */
    assert_true(detach(p, 1, "v", "s2"));
    assert_string_equal(session(p, 1, "v", &r), "s1");
    /* The moved key keeps its TTL. */
    long long ttl = test_redis_int(&g_redis, "TTL session:visitor:1:v");
    assert_true(ttl > PRESENCE_DEFAULT_TTL_S - 10 && ttl <= PRESENCE_DEFAULT_TTL_S);
    close_presence(p);
}

static void test_online_and_url(void **state) {
    (void)state;
    presence_t *p = open_presence("node-a");
    res_t r = {0};
    attach(p, 5, "a", "s1");
    attach(p, 5, "c", "s2");
    const char *uids[] = {"a", "b", "c", "__proto__"};
    /* Once to load the script (EVALSHA, then EVAL on a fresh server). */
    assert_int_equal(presence_online(p, 5, uids, 1, online_cb, &r), 0);
    wait_cb_of(&r);
    long long evals_before = 0, evals_after = 0;
    redisReply *info = test_redis_cmd(&g_redis, "INFO commandstats");
    const char *e = strstr(info->str, "cmdstat_evalsha:calls=");
    evals_before = e ? atoll(e + strlen("cmdstat_evalsha:calls=")) : 0;
    freeReplyObject(info);
    assert_int_equal(presence_online(p, 5, uids, 4, online_cb, &r), 0);
    wait_cb_of(&r);
    assert_int_equal(r.n, 4);
    assert_true(r.online[0]);
    assert_false(r.online[1]);
    assert_true(r.online[2]);
    assert_false(r.online[3]);
    /* One round trip: one script call for the whole batch. */
    info = test_redis_cmd(&g_redis, "INFO commandstats");
    e = strstr(info->str, "cmdstat_evalsha:calls=");
    evals_after = e ? atoll(e + strlen("cmdstat_evalsha:calls=")) : 0;
    freeReplyObject(info);
    assert_int_equal(evals_after - evals_before, 1);
    /* An empty batch answers too. */
    assert_int_equal(presence_online(p, 5, uids, 0, online_cb, &r), 0);
    wait_cb_of(&r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(presence_set_url(p, 5, "a", "https://shop.example/cart", done_cb, &r), 0);
    wait_cb_of(&r);
    assert_int_equal(r.status, 0);
    assert_int_equal(presence_get_url(p, 5, "a", str_cb, &r), 0);
    wait_cb_of(&r);
    assert_string_equal(r.str, "https://shop.example/cart");
    assert_int_equal(presence_get_url(p, 5, "b", str_cb, &r), 0);
    wait_cb_of(&r);
    assert_string_equal(r.str, "(null)");
    /* Over the batch limit, or a URL too long: refused at once. */
    const char **many = calloc(PRESENCE_MAX_BATCH + 1, sizeof *many);
    for (size_t i = 0; i <= PRESENCE_MAX_BATCH; i++)
        many[i] = "x";
    assert_int_equal(presence_online(p, 5, many, PRESENCE_MAX_BATCH + 1, online_cb, &r),
                     PL_ETOOBIG);
    /* The largest batch is fine. */
    assert_int_equal(presence_online(p, 5, many, PRESENCE_MAX_BATCH, online_cb, &r), 0);
    wait_cb_of(&r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.n, PRESENCE_MAX_BATCH);
    free(many);
    char longurl[2050];
    memset(longurl, 'u', sizeof longurl - 1);
    longurl[sizeof longurl - 1] = '\0';
    assert_int_equal(presence_set_url(p, 5, "a", longurl, done_cb, &r), PL_ETOOBIG);
    /* The URL goes with the last socket. */
    detach(p, 5, "a", "s1");
    assert_int_equal(presence_get_url(p, 5, "a", str_cb, &r), 0);
    wait_cb_of(&r);
    assert_string_equal(r.str, "(null)");
    close_presence(p);
}

/* ---- what only Redis shows ------------------------------------------------------------------- */

static void test_keys_and_ttls(void **state) {
    (void)state;
    presence_t *p = presence_redis_new(&loop, g_redis.url, 600, "node-t", NULL, NULL);
    res_t r = {0};
    attach(p, 9, "visitor-ttl", "sock-1");
    assert_int_equal(presence_set_url(p, 9, "visitor-ttl", "https://x.example/", done_cb, &r), 0);
    wait_cb_of(&r);
    redisReply *v = test_redis_cmd(&g_redis, "GET session:visitor:9:visitor-ttl");
    assert_string_equal(v->str, "sock-1");
    freeReplyObject(v);
    long long t1 = test_redis_int(&g_redis, "TTL session:visitor:9:visitor-ttl");
    long long t2 = test_redis_int(&g_redis, "TTL session:visitor:9:visitor-ttl:url");
    long long t3 = test_redis_int(&g_redis, "TTL parley:presence:9:visitor-ttl");
    assert_true(t1 > 590 && t1 <= 600);
    assert_true(t2 > 590 && t2 <= 600);
    assert_true(t3 > 590 && t3 <= 600);
    /* The node's heartbeat and its visitor index. */
    long long hb = test_redis_int(&g_redis, "TTL parley:node:node-t");
    assert_true(hb > 0 && hb <= 15);
    assert_int_equal(
        test_redis_int(&g_redis, "SISMEMBER parley:node:node-t:visitors 9:visitor-ttl"), 1);
    assert_int_equal(test_redis_int(&g_redis, "SISMEMBER parley:nodes node-t"), 1);
    /* 64 tabs at most per visitor. */
    for (int i = 2; i <= 64; i++) {
        char s[16];
        snprintf(s, sizeof s, "sock-%d", i);
        attach(p, 9, "visitor-ttl", s);
    }
    assert_int_equal(presence_attach(p, 9, "visitor-ttl", "sock-65", flag_cb, &r), 0);
    wait_cb_of(&r);
    assert_int_equal(r.status, PL_ETOOBIG);
    /* Bad arguments are refused before anything is sent. */
    char longuid[300];
    memset(longuid, 'u', sizeof longuid - 1);
    longuid[sizeof longuid - 1] = '\0';
    assert_int_equal(presence_attach(p, 9, longuid, "s", flag_cb, &r), PL_EINVAL);
    assert_int_equal(presence_attach(p, 9, "ok-uid", "", flag_cb, &r), PL_EINVAL);
    close_presence(p);
    /* A graceful close drops the heartbeat. */
    assert_int_equal(test_redis_int(&g_redis, "EXISTS parley:node:node-t"), 0);
}

static void test_two_nodes_share_a_visitor(void **state) {
    (void)state;
    presence_t *a = open_presence("node-a");
    presence_t *b = open_presence("node-b");
    res_t r = {0};
    assert_false(attach(a, 1, "shared", "on-a"));
    assert_true(attach(b, 1, "shared", "on-b")); /* the other node sees the first tab */
    assert_string_equal(session(a, 1, "shared", &r), "on-b");
    /* Compare-and-delete across nodes: A's detach leaves B's key alone. */
    assert_true(detach(a, 1, "shared", "on-a"));
    assert_string_equal(session(b, 1, "shared", &r), "on-b");
    assert_int_equal(test_redis_int(&g_redis, "SISMEMBER parley:node:node-a:visitors 1:shared"), 0);
    /* Interleaved from both nodes in one loop turn: the scripts run one at a time. */
    res_t x[6] = {{0}};
    assert_int_equal(presence_attach(a, 1, "shared", "a2", flag_cb, &x[0]), 0);
    assert_int_equal(presence_detach(b, 1, "shared", "on-b", flag_cb, &x[1]), 0);
    assert_int_equal(presence_attach(b, 1, "shared", "b2", flag_cb, &x[2]), 0);
    assert_int_equal(presence_detach(a, 1, "shared", "a2", flag_cb, &x[3]), 0);
    assert_int_equal(presence_detach(b, 1, "shared", "b2", flag_cb, &x[4]), 0);
    for (int i = 0; i < 5; i++)
        wait_cb_of(&x[i]);
    /* Whatever the order across the two connections, the last one out sees nobody left. */
    assert_true(!x[3].flag || !x[4].flag);
    assert_string_equal(session(a, 1, "shared", &r), "(null)");
    assert_int_equal(test_redis_int(&g_redis, "EXISTS parley:presence:1:shared"), 0);
    close_presence(a);
    close_presence(b);
}

typedef struct {
    int n;
    int64_t project;
    char uid[64];
    bool got;
} offline_t;

static void offline_cb(void *ud, int64_t project, const char *uid) {
    offline_t *o = ud;
    o->n++;
    o->project = project;
    snprintf(o->uid, sizeof o->uid, "%s", uid);
    o->got = true;
}

static void test_dead_node_is_purged(void **state) {
    (void)state;
    offline_t off = {0};
    presence_t *a = presence_redis_new(&loop, g_redis.url, 0, "node-a", offline_cb, &off);
    presence_t *b = open_presence("node-b");
    res_t r = {0};
    attach(a, 3, "both", "a1");
    attach(b, 3, "both", "b1");
    attach(b, 3, "only-b", "b2");
    /* B stops without detaching its sockets (its heartbeat goes; a kill -9 lets it expire). */
    close_presence(b);
    const char *uids[] = {"both", "only-b"};
    assert_int_equal(presence_online(a, 3, uids, 2, online_cb, &r), 0);
    wait_cb_of(&r);
    assert_true(r.online[0]);
    assert_false(r.online[1]); /* at once: its only socket is on a dead node */
    /* The sweep (every 5 s) purges B's entries and reports who went offline. */
    assert_true(test_run_until(&loop, &off.got, 9000));
    assert_int_equal(off.n, 1);
    assert_int_equal(off.project, 3);
    assert_string_equal(off.uid, "only-b");
    assert_string_equal(session(a, 3, "only-b", &r), "(null)");
    /* The visitor with a tab left on A now points at that tab. */
    assert_string_equal(session(a, 3, "both", &r), "a1");
    assert_int_equal(test_redis_int(&g_redis, "HLEN parley:presence:3:both"), 1);
    assert_int_equal(test_redis_int(&g_redis, "SISMEMBER parley:nodes node-b"), 0);
    assert_int_equal(test_redis_int(&g_redis, "EXISTS parley:node:node-b:visitors"), 0);
    close_presence(a);
}

static void test_outage_and_restore(void **state) {
    (void)state;
    test_redis_t own = {0};
    test_redis_start(&own);
    presence_t *p = presence_redis_new(&loop, own.url, 0, "node-o", NULL, NULL);
    res_t r = {0};
    assert_false(attach(p, 4, "before", "sock-1"));
    assert_true(attach(p, 4, "before", "sock-2"));
    assert_false(attach(p, 4, "gone", "sock-3"));
    assert_false(detach(p, 4, "gone", "sock-3"));
    test_redis_kill(&own);
    test_run_for(&loop, 100);
    /* Fail fast: an error now, or PL_EUNAVAIL in the callback, never a wait. */
    uint64_t t0 = uv_now(&loop);
    for (int i = 0; i < 3; i++) {
        int rc = presence_attach(p, 4, "during", "sock-x", flag_cb, &r);
        if (rc == 0) {
            wait_cb_of(&r);
            assert_int_equal(r.status, PL_EUNAVAIL);
        } else {
            assert_int_equal(rc, PL_EUNAVAIL);
        }
        test_run_for(&loop, 100);
    }
    uv_update_time(&loop);
    assert_true(uv_now(&loop) - t0 < 2000);
    /* Redis comes back empty on the same port: the same object works again, and this node's
     * live sockets are written back. */
    test_redis_start(&own);
    bool back = false;
    for (int i = 0; i < 100 && !back; i++) {
        test_run_for(&loop, 100);
        back = test_redis_int(&own, "HLEN parley:presence:4:before") == 2;
    }
    assert_true(back);
    redisReply *s = test_redis_cmd(&own, "GET session:visitor:4:before");
    assert_int_equal(s->type, REDIS_REPLY_STRING);
    freeReplyObject(s);
    long long ttl = test_redis_int(&own, "TTL session:visitor:4:before");
    assert_true(ttl > PRESENCE_DEFAULT_TTL_S - 10);
    assert_int_equal(test_redis_int(&own, "EXISTS parley:presence:4:gone"), 0);
    assert_int_equal(test_redis_int(&own, "EXISTS parley:presence:4:during"), 0);
    assert_true(detach(p, 4, "before", "sock-1"));
    assert_false(detach(p, 4, "before", "sock-2"));
    close_presence(p);
    test_redis_stop(&own);
}

/* A detach that Redis never got (the connection dropped) is sent again after the reconnect,
 * and the offline event it held back is reported then. */
static void test_detach_during_blip(void **state) {
    (void)state;
    offline_t off = {0};
    presence_t *p = presence_redis_new(&loop, g_redis.url, 0, "node-blip", offline_cb, &off);
    assert_false(attach(p, 6, "blip", "sock-1"));
    /* Drop every client connection; Redis keeps its data. */
    redisReply *k = test_redis_cmd(&g_redis, "CLIENT KILL TYPE normal");
    assert_non_null(k);
    assert_true(k->integer >= 1);
    freeReplyObject(k);
    res_t r = {0};
    int rc = presence_detach(p, 6, "blip", "sock-1", flag_cb, &r);
    if (rc == 0) {
        wait_cb_of(&r);
        assert_int_equal(r.status, PL_EUNAVAIL);
    } else {
        assert_int_equal(rc, PL_EUNAVAIL);
    }
    assert_int_equal(test_redis_int(&g_redis, "EXISTS parley:presence:6:blip"), 1);
    assert_true(test_run_until(&loop, &off.got, 5000));
    assert_int_equal(off.project, 6);
    assert_string_equal(off.uid, "blip");
    assert_int_equal(test_redis_int(&g_redis, "EXISTS parley:presence:6:blip"), 0);
    assert_int_equal(test_redis_int(&g_redis, "EXISTS session:visitor:6:blip"), 0);
    close_presence(p);
}

static void test_refused_connection(void **state) {
    (void)state;
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", test_free_port());
    presence_t *p = presence_redis_new(&loop, url, 0, NULL, NULL, NULL);
    assert_non_null(p);
    test_run_for(&loop, 50);
    res_t r = {0};
    int rc = presence_attach(p, 1, "nobody", "s", flag_cb, &r);
    if (rc == 0) {
        wait_cb_of(&r);
        assert_int_equal(r.status, PL_EUNAVAIL);
    } else {
        assert_int_equal(rc, PL_EUNAVAIL);
    }
    close_presence(p);
    assert_null(presence_redis_new(&loop, "redis://127.0.0.1:0", 0, NULL, NULL, NULL));
    assert_null(presence_redis_new(&loop, g_redis.url, 0, "bad id", NULL, NULL));
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    pl_id_init();
    pl_log_set_level(PL_LOG_ERROR);
    test_redis_start(&g_redis);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tabs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_moves_to_remaining_tab, setup, teardown),
        cmocka_unit_test_setup_teardown(test_online_and_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_and_ttls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_nodes_share_a_visitor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_node_is_purged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outage_and_restore, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detach_during_blip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_connection, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_redis_stop(&g_redis);
    return rc;
}
