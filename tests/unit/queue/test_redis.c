/* Unit tests for the Redis Streams queue backend against a real redis-server: FIFO delivery
 * with acknowledge-and-delete, retries after a failure with the attempt count, dead-lettering
 * with the error after max_attempts, a job held by a dead or slow consumer retried by another
 * after the visibility timeout (and dead-lettered when nobody ever finishes it), the depth
 * bound with push back, the in-flight cap, an outage (fail fast, then the same objects resume),
 * and close with jobs in handlers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "../bus/redis_server.h"
#include "core/id.h"
#include "core/log.h"
#include "queue/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static test_redis_t g_redis;
static uv_loop_t loop;

typedef struct {
    queue_t *q;
    int delivered;
    int fail_first; /* fail the first N attempts of every job */
    bool hold;      /* keep jobs in the handler */
    char order[64][16];
    uint32_t attempts[64];
    queue_job_t *held[64];
    int nheld;
    int confirmed;
    int refused;
} ctx_t;

static void handler(void *ud, queue_job_t *job) {
    ctx_t *c = ud;
    if (c->delivered < 64) {
        snprintf(c->order[c->delivered], sizeof c->order[0], "%.*s", (int)job->len, job->data);
        c->attempts[c->delivered] = job->attempt;
    }
    c->delivered++;
    if (c->hold) {
        c->held[c->nheld++] = job;
        return;
    }
    if ((int)job->attempt <= c->fail_first)
        queue_job_done(c->q, job, -1, "database said no");
    else
        queue_job_done(c->q, job, 0, NULL);
}

static void confirm_cb(void *ud, int status) {
    ctx_t *c = ud;
    if (status == 0)
        c->confirmed++;
    else
        c->refused++;
}

static void closed_cb(void *ud) {
    *(bool *)ud = true;
}

static void close_queue(queue_t *q) {
    bool closed = false;
    queue_close(q, closed_cb, &closed);
    assert_true(test_run_until(&loop, &closed, 5000));
}

/* Runs the loop until the counter reaches want (or 5 s pass). */
static bool run_until_count(const int *counter, int want, int ms) {
    uint64_t until = uv_now(&loop) + (uint64_t)ms;
    while (*counter < want && uv_now(&loop) < until)
        test_run_for(&loop, 10);
    return *counter >= want;
}

static queue_t *open_queue(const char *url, const queue_options_t *o, uint32_t visibility) {
    queue_t *q = queue_redis_new(&loop, url, "test-queue", o, visibility);
    assert_non_null(q);
    return q;
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

static void test_fifo_ack_delete(void **state) {
    (void)state;
    ctx_t c = {0};
    c.q = open_queue(g_redis.url, NULL, 0);
    for (int i = 0; i < 10; i++) {
        char b[8];
        int n = snprintf(b, sizeof b, "m%d", i);
        assert_int_equal(queue_enqueue(c.q, b, (size_t)n, confirm_cb, &c), 0);
    }
    assert_int_equal(c.confirmed, 0); /* never inside the call */
    assert_true(run_until_count(&c.confirmed, 10, 5000));
    assert_int_equal(test_redis_int(&g_redis, "XLEN test-queue"), 10);
    assert_int_equal(queue_depth(c.q), 10);
    assert_int_equal(queue_consume(c.q, handler, &c), 0);
    assert_int_equal(queue_consume(c.q, handler, &c), UV_EBUSY);
    assert_true(run_until_count(&c.delivered, 10, 5000));
    for (int i = 0; i < 10; i++) {
        char b[8];
        snprintf(b, sizeof b, "m%d", i);
        assert_string_equal(c.order[i], b);
        assert_int_equal(c.attempts[i], 1);
    }
    /* Acknowledged and deleted (remove-on-complete): nothing left, nothing pending. */
    for (int i = 0; i < 100 && test_redis_int(&g_redis, "XLEN test-queue") != 0; i++)
        test_run_for(&loop, 10);
    assert_int_equal(test_redis_int(&g_redis, "XLEN test-queue"), 0);
    redisReply *p = test_redis_cmd(&g_redis, "XPENDING test-queue parley-workers");
    assert_int_equal(p->element[0]->integer, 0);
    freeReplyObject(p);
    assert_int_equal(queue_depth(c.q), 0);
    /* A binary payload arrives intact. */
    c.hold = true;
    assert_int_equal(queue_enqueue(c.q, "a\0b", 3, NULL, NULL), 0);
    assert_true(run_until_count(&c.nheld, 1, 5000));
    assert_int_equal(c.held[0]->len, 3);
    assert_memory_equal(c.held[0]->data, "a\0b", 3);
    queue_job_done(c.q, c.held[0], 0, NULL);
    close_queue(c.q);
    /* The consumer left the group on close (nothing of it was pending). */
    redisReply *ci = test_redis_cmd(&g_redis, "XINFO CONSUMERS test-queue parley-workers");
    assert_int_equal(ci->elements, 0);
    freeReplyObject(ci);
}

static void test_retry_then_dead_letter(void **state) {
    (void)state;
    queue_options_t o;
    queue_options_default(&o);
    o.max_attempts = 3;
    o.retry_delay_ms = 20;
    ctx_t c = {0};
    c.q = open_queue(g_redis.url, &o, 500);
    c.fail_first = 2; /* "ok" succeeds at attempt 3 */
    assert_int_equal(queue_enqueue(c.q, "ok", 2, NULL, NULL), 0);
    assert_int_equal(queue_consume(c.q, handler, &c), 0);
    assert_true(run_until_count(&c.delivered, 3, 5000));
    assert_int_equal(c.attempts[0], 1);
    assert_int_equal(c.attempts[1], 2);
    assert_int_equal(c.attempts[2], 3);
    test_run_for(&loop, 100);
    assert_int_equal(c.delivered, 3);
    assert_int_equal(test_redis_int(&g_redis, "XLEN test-queue"), 0);
    assert_int_equal(test_redis_int(&g_redis, "XLEN test-queue:dead"), 0);
    /* Always fails: dead after 3 attempts, with its error. */
    c.fail_first = 100;
    c.delivered = 0;
    assert_int_equal(queue_enqueue(c.q, "bad", 3, NULL, NULL), 0);
    assert_true(run_until_count(&c.delivered, 3, 5000));
    for (int i = 0; i < 100 && test_redis_int(&g_redis, "XLEN test-queue:dead") != 1; i++)
        test_run_for(&loop, 10);
    test_run_for(&loop, 200);
    assert_int_equal(c.delivered, 3);
    assert_int_equal(test_redis_int(&g_redis, "XLEN test-queue"), 0);
    assert_int_equal(test_redis_int(&g_redis, "XLEN test-queue:dead"), 1);
    assert_int_equal(queue_dead_count(c.q), 1);
    redisReply *d = test_redis_cmd(&g_redis, "XRANGE test-queue:dead - +");
    redisReply *fields = d->element[0]->element[1];
    char seen[256] = "";
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        size_t used = strlen(seen);
        snprintf(seen + used, sizeof seen - used, "%s=%s;", fields->element[i]->str,
                 fields->element[i + 1]->str);
    }
    freeReplyObject(d);
    assert_non_null(strstr(seen, "d=bad;"));
    assert_non_null(strstr(seen, "error=database said no;"));
    assert_non_null(strstr(seen, "attempts=3;"));
    close_queue(c.q);
}

static void test_other_consumer_after_visibility(void **state) {
    (void)state;
    queue_options_t o;
    queue_options_default(&o);
    o.max_attempts = 2;
    o.retry_delay_ms = 50;
    ctx_t a = {0}, b = {0};
    a.q = open_queue(g_redis.url, &o, 400);
    b.q = open_queue(g_redis.url, &o, 400);
    a.hold = true; /* A takes jobs and never finishes them: a dead or stuck worker */
    assert_int_equal(queue_consume(a.q, handler, &a), 0);
    test_run_for(&loop, 100);
    assert_int_equal(queue_enqueue(a.q, "job-1", 5, NULL, NULL), 0);
    assert_true(run_until_count(&a.nheld, 1, 5000));
    /* B starts consuming; it gets job-1 only after the visibility timeout, as attempt 2. */
    uint64_t t0 = uv_now(&loop);
    assert_int_equal(queue_consume(b.q, handler, &b), 0);
    assert_true(run_until_count(&b.delivered, 1, 5000));
    uv_update_time(&loop);
    assert_true(uv_now(&loop) - t0 >= 300);
    assert_string_equal(b.order[0], "job-1");
    assert_int_equal(b.attempts[0], 2);
    assert_int_equal(a.delivered, 1); /* A did not get it back */
    for (int i = 0; i < 100 && test_redis_int(&g_redis, "XLEN test-queue") != 0; i++)
        test_run_for(&loop, 10);
    assert_int_equal(test_redis_int(&g_redis, "XLEN test-queue"), 0);
    /* A finishing late is harmless. */
    queue_job_done(a.q, a.held[0], 0, NULL);
    a.nheld = 0;
    /* Nobody ever finishes job-2: after max_attempts deliveries it goes to the dead stream. */
    b.hold = true;
    assert_int_equal(queue_enqueue(a.q, "job-2", 5, NULL, NULL), 0);
    for (int i = 0; i < 300 && test_redis_int(&g_redis, "XLEN test-queue:dead") != 1; i++)
        test_run_for(&loop, 10);
    assert_int_equal(test_redis_int(&g_redis, "XLEN test-queue:dead"), 1);
    assert_int_equal(a.nheld + b.nheld, 2);
    redisReply *d = test_redis_cmd(&g_redis, "XRANGE test-queue:dead - +");
    redisReply *fields = d->element[0]->element[1];
    bool found = false;
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        found |= !strcmp(fields->element[i]->str, "error") &&
                 strstr(fields->element[i + 1]->str, "not finished after 2 deliveries");
    freeReplyObject(d);
    assert_true(found);
    for (int i = 0; i < a.nheld; i++)
        queue_job_done(a.q, a.held[i], 0, NULL);
    for (int i = 0; i < b.nheld; i++)
        queue_job_done(b.q, b.held[i], 0, NULL);
    close_queue(a.q);
    close_queue(b.q);
}

static void test_bounds(void **state) {
    (void)state;
    queue_options_t o;
    queue_options_default(&o);
    o.max_depth = 5;
    o.max_in_flight = 2;
    ctx_t c = {0};
    c.q = open_queue(g_redis.url, &o, 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(queue_enqueue(c.q, "x", 1, confirm_cb, &c), 0);
    assert_true(run_until_count(&c.confirmed, 5, 5000));
    test_run_for(&loop, 50);
    assert_int_equal(c.refused, 1); /* the sixth: full, push back */
    assert_int_equal(queue_depth(c.q), 5);
    /* Still full: refused at once (known full a moment ago) or by Redis. */
    int rc = queue_enqueue(c.q, "y", 1, confirm_cb, &c);
    if (rc == 0)
        assert_true(run_until_count(&c.refused, 2, 3000));
    else
        assert_int_equal(rc, PL_EUNAVAIL);
    assert_int_equal(c.confirmed, 5);
    c.hold = true;
    assert_int_equal(queue_consume(c.q, handler, &c), 0);
    assert_true(run_until_count(&c.delivered, 2, 5000));
    test_run_for(&loop, 200);
    assert_int_equal(c.delivered, 2); /* in-flight cap */
    queue_job_done(c.q, c.held[0], 0, NULL);
    assert_true(run_until_count(&c.delivered, 3, 5000));
    /* Close with jobs in handlers: it completes once they are finished, without waiting for the
     * blocking read. */
    bool closed = false;
    queue_close(c.q, closed_cb, &closed);
    assert_int_equal(queue_enqueue(c.q, "z", 1, NULL, NULL), PL_EUNAVAIL);
    test_run_for(&loop, 50);
    assert_false(closed);
    for (int i = 1; i < c.nheld; i++)
        queue_job_done(c.q, c.held[i], 0, NULL);
    uint64_t t0 = uv_now(&loop);
    assert_true(test_run_until(&loop, &closed, 5000));
    uv_update_time(&loop);
    assert_true(uv_now(&loop) - t0 < 1000);
    assert_int_equal(test_redis_int(&g_redis, "XLEN test-queue"), 2); /* the rest waits */
    assert_null(queue_redis_new(&loop, "redis://h:0", NULL, NULL, 0));
    assert_null(queue_redis_new(&loop, g_redis.url, "", NULL, 0));
}

static void test_outage_and_resume(void **state) {
    (void)state;
    test_redis_t own = {0};
    test_redis_start(&own);
    queue_options_t o;
    queue_options_default(&o);
    o.retry_delay_ms = 50;
    ctx_t c = {0};
    c.q = open_queue(own.url, &o, 500);
    assert_int_equal(queue_consume(c.q, handler, &c), 0);
    assert_int_equal(queue_enqueue(c.q, "before", 6, confirm_cb, &c), 0);
    assert_true(run_until_count(&c.delivered, 1, 5000));
    test_redis_kill(&own);
    test_run_for(&loop, 100);
    uint64_t t0 = uv_now(&loop);
    for (int i = 0; i < 3; i++) {
        int refused = c.refused;
        int rc = queue_enqueue(c.q, "during", 6, confirm_cb, &c);
        if (rc == 0)
            assert_true(run_until_count(&c.refused, refused + 1, 3000));
        else
            assert_int_equal(rc, PL_EUNAVAIL);
        test_run_for(&loop, 100);
    }
    uv_update_time(&loop);
    assert_true(uv_now(&loop) - t0 < 2000);
    /* Redis is back (empty, no persistence here): the same objects take and deliver jobs. */
    test_redis_start(&own);
    int confirmed = c.confirmed;
    bool ok = false;
    for (int i = 0; i < 100 && !ok; i++) {
        test_run_for(&loop, 100);
        ok = queue_enqueue(c.q, "after", 5, confirm_cb, &c) == 0;
    }
    assert_true(ok);
    assert_true(run_until_count(&c.confirmed, confirmed + 1, 5000));
    assert_true(run_until_count(&c.delivered, 2, 8000));
    assert_string_equal(c.order[1], "after");
    close_queue(c.q);
    test_redis_stop(&own);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    pl_id_init();
    pl_log_set_level(PL_LOG_OFF);
    test_redis_start(&g_redis);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fifo_ack_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_then_dead_letter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_consumer_after_visibility, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outage_and_resume, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_redis_stop(&g_redis);
    return rc;
}
