/* Unit tests for the in-process presence backend: first/last socket semantics across tabs,
 * compare-and-delete of the session key, batched online checks, URLs, asynchronous callbacks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "presence/presence.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int calls;
    int status;
    bool flag;
    char str[64];
    bool online[8];
    size_t n;
} res_t;

static void flag_cb(void *ud, int status, bool flag) {
    res_t *r = ud;
    r->calls++;
    r->status = status;
    r->flag = flag;
}

static void str_cb(void *ud, int status, const char *s) {
    res_t *r = ud;
    r->calls++;
    r->status = status;
    snprintf(r->str, sizeof r->str, "%s", s ? s : "(null)");
}

static void online_cb(void *ud, int status, const bool *on, size_t n) {
    res_t *r = ud;
    r->calls++;
    r->status = status;
    r->n = n;
    memcpy(r->online, on, n * sizeof *on);
}

static void done_cb(void *ud, int status) {
    res_t *r = ud;
    r->calls++;
    r->status = status;
}

static void run(uv_loop_t *loop) {
    uv_run(loop, UV_RUN_NOWAIT);
}

static void test_tabs(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    presence_t *p = presence_memory_new(&loop, 0);
    res_t r = {0};
    /* First tab: was offline. The callback never fires inside the call. */
    assert_int_equal(presence_attach(p, 1, "visitor-1", "sockA", flag_cb, &r), 0);
    assert_int_equal(r.calls, 0);
    run(&loop);
    assert_int_equal(r.calls, 1);
    assert_false(r.flag);
    /* Second tab: already online; the session key points at the newest socket. */
    assert_int_equal(presence_attach(p, 1, "visitor-1", "sockB", flag_cb, &r), 0);
    run(&loop);
    assert_true(r.flag);
    assert_int_equal(presence_get_session(p, 1, "visitor-1", str_cb, &r), 0);
    run(&loop);
    assert_string_equal(r.str, "sockB");
    /* Same uid in another project is another visitor. */
    assert_int_equal(presence_attach(p, 2, "visitor-1", "sockC", flag_cb, &r), 0);
    run(&loop);
    assert_false(r.flag);
    /* Closing the older tab: the key (pointing at B) is untouched; still online. */
    assert_int_equal(presence_detach(p, 1, "visitor-1", "sockA", flag_cb, &r), 0);
    run(&loop);
    assert_true(r.flag);
    assert_int_equal(presence_get_session(p, 1, "visitor-1", str_cb, &r), 0);
    run(&loop);
    assert_string_equal(r.str, "sockB");
    /* A stale detach of an unknown socket changes nothing. */
    assert_int_equal(presence_detach(p, 1, "visitor-1", "sockZ", flag_cb, &r), 0);
    run(&loop);
    assert_true(r.flag);
    /* The last tab: offline, key deleted. */
    assert_int_equal(presence_detach(p, 1, "visitor-1", "sockB", flag_cb, &r), 0);
    run(&loop);
    assert_false(r.flag);
    assert_int_equal(presence_get_session(p, 1, "visitor-1", str_cb, &r), 0);
    run(&loop);
    assert_string_equal(r.str, "(null)");
    presence_close(p, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_key_moves_to_remaining_tab(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    presence_t *p = presence_memory_new(&loop, 0);
    res_t r = {0};
    assert_int_equal(presence_attach(p, 1, "v", "s1", flag_cb, &r), 0);
    assert_int_equal(presence_attach(p, 1, "v", "s2", flag_cb, &r), 0);
    /* The newest tab closes first: the key must not be left pointing at nothing. */
    assert_int_equal(presence_detach(p, 1, "v", "s2", flag_cb, &r), 0);
    run(&loop);
    assert_true(r.flag);
    assert_int_equal(presence_get_session(p, 1, "v", str_cb, &r), 0);
    run(&loop);
    assert_string_equal(r.str, "s1");
    presence_close(p, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_online_and_url(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    presence_t *p = presence_memory_new(&loop, 0);
    res_t r = {0};
    assert_int_equal(presence_attach(p, 5, "a", "s1", flag_cb, &r), 0);
    assert_int_equal(presence_attach(p, 5, "c", "s2", flag_cb, &r), 0);
    const char *uids[] = {"a", "b", "c", "__proto__"};
    assert_int_equal(presence_online(p, 5, uids, 4, online_cb, &r), 0);
    run(&loop);
    assert_int_equal(r.n, 4);
    assert_true(r.online[0]);
    assert_false(r.online[1]);
    assert_true(r.online[2]);
    assert_false(r.online[3]);
    assert_int_equal(presence_set_url(p, 5, "a", "https://shop.example/cart", done_cb, &r), 0);
    assert_int_equal(presence_get_url(p, 5, "a", str_cb, &r), 0);
    run(&loop);
    assert_string_equal(r.str, "https://shop.example/cart");
    assert_int_equal(presence_get_url(p, 5, "b", str_cb, &r), 0);
    run(&loop);
    assert_string_equal(r.str, "(null)");
    /* Over the batch limit: refused at once. */
    const char **many = calloc(PRESENCE_MAX_BATCH + 1, sizeof *many);
    for (size_t i = 0; i <= PRESENCE_MAX_BATCH; i++)
        many[i] = "x";
    assert_int_equal(presence_online(p, 5, many, PRESENCE_MAX_BATCH + 1, online_cb, &r),
                     PL_ETOOBIG);
    free(many);
    presence_close(p, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tabs),
        cmocka_unit_test(test_key_moves_to_remaining_tab),
        cmocka_unit_test(test_online_and_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
