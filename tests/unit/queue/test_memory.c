/* Unit tests for the in-process queue backend: FIFO delivery, in-flight cap, retries with
 * back-off, dead-lettering, depth limit, close with jobs in handlers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "queue/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    queue_t *q;
    int delivered;
    int fail_first;          /* fail the first N deliveries of every job */
    char order[64][16];
    queue_job_t *held[64];   /* jobs kept in the handler */
    int nheld;
    bool hold;
    int confirmed;
} ctx_t;

static void handler(void *ud, queue_job_t *job) {
    ctx_t *c = ud;
    if (c->delivered < 64)
        snprintf(c->order[c->delivered], sizeof c->order[0], "%.*s", (int)job->len, job->data);
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
    assert_int_equal(status, 0);
    c->confirmed++;
}

static void test_fifo(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    ctx_t c = {0};
    c.q = queue_memory_new(&loop, NULL);
    for (int i = 0; i < 10; i++) {
        char b[8];
        int n = snprintf(b, sizeof b, "m%d", i);
        assert_int_equal(queue_enqueue(c.q, b, (size_t)n, confirm_cb, &c), 0);
    }
    assert_int_equal(c.confirmed, 0);
    assert_int_equal(queue_consume(c.q, handler, &c), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(c.confirmed, 10);
    assert_int_equal(c.delivered, 10);
    for (int i = 0; i < 10; i++) {
        char b[8];
        snprintf(b, sizeof b, "m%d", i);
        assert_string_equal(c.order[i], b);
    }
    assert_int_equal(queue_depth(c.q), 0);
    queue_close(c.q, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_retry_then_dead_letter(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    queue_options_t o;
    queue_options_default(&o);
    o.max_attempts = 3;
    o.retry_delay_ms = 5;
    ctx_t c = {0};
    c.q = queue_memory_new(&loop, &o);
    c.fail_first = 2; /* job "ok" succeeds at attempt 3 */
    assert_int_equal(queue_enqueue(c.q, "ok", 2, NULL, NULL), 0);
    assert_int_equal(queue_consume(c.q, handler, &c), 0);
    uv_run(&loop, UV_RUN_DEFAULT); /* ends when nothing is pending */
    assert_int_equal(c.delivered, 3);
    assert_int_equal(queue_depth(c.q), 0);
    assert_int_equal(queue_dead_count(c.q), 0);
    c.fail_first = 100; /* always fails: dead after 3 attempts */
    c.delivered = 0;
    assert_int_equal(queue_enqueue(c.q, "bad", 3, NULL, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(c.delivered, 3);
    assert_int_equal(queue_depth(c.q), 0);
    assert_int_equal(queue_dead_count(c.q), 1);
    queue_close(c.q, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_limits_and_close(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    queue_options_t o;
    queue_options_default(&o);
    o.max_depth = 8;
    o.max_in_flight = 3;
    ctx_t c = {0};
    c.q = queue_memory_new(&loop, &o);
    c.hold = true;
    for (int i = 0; i < 8; i++)
        assert_int_equal(queue_enqueue(c.q, "x", 1, NULL, NULL), 0);
    /* Full: push back at once. */
    assert_int_equal(queue_enqueue(c.q, "y", 1, NULL, NULL), PL_EUNAVAIL);
    assert_int_equal(queue_consume(c.q, handler, &c), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(c.delivered, 3); /* in-flight cap */
    queue_job_done(c.q, c.held[0], 0, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(c.delivered, 4);
    /* Close while 3 jobs are in handlers: it completes once they are finished. */
    queue_close(c.q, NULL, NULL);
    for (int i = 1; i < c.nheld; i++)
        queue_job_done(c.q, c.held[i], 0, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_retry_then_dead_letter),
        cmocka_unit_test(test_limits_and_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
