/* Unit tests for src/core/map.c: insert, replace, lookup, backward-shift deletion under churn,
 * hostile key names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_basic(void **state) {
    (void)state;
    pl_map_t m;
    pl_map_init(&m);
    assert_null(pl_map_get(&m, "a", 1));
    assert_null(pl_map_del(&m, "a", 1));
    int a = 1, b = 2;
    void *old;
    assert_int_equal(pl_map_put(&m, "a", 1, &a, &old), 0);
    assert_null(old);
    assert_ptr_equal(pl_map_get(&m, "a", 1), &a);
    assert_int_equal(pl_map_put(&m, "a", 1, &b, &old), 0);
    assert_ptr_equal(old, &a);
    assert_int_equal(pl_map_count(&m), 1);
    /* Keys are bytes: a prefix, an empty key and embedded NULs are distinct keys. */
    assert_int_equal(pl_map_put(&m, "", 0, &a, NULL), 0);
    assert_int_equal(pl_map_put(&m, "a\0b", 3, &a, NULL), 0);
    assert_ptr_equal(pl_map_get(&m, "", 0), &a);
    assert_ptr_equal(pl_map_get(&m, "a", 1), &b);
    assert_ptr_equal(pl_map_get(&m, "a\0b", 3), &a);
    /* Names that broke JavaScript servers are plain keys here. */
    assert_null(pl_map_get(&m, "__proto__", 9));
    assert_null(pl_map_get(&m, "constructor", 11));
    assert_ptr_equal(pl_map_del(&m, "a", 1), &b);
    assert_null(pl_map_get(&m, "a", 1));
    assert_int_equal(pl_map_count(&m), 2);
    pl_map_dispose(&m);
}

static void test_churn(void **state) {
    (void)state;
    enum { N = 20000 };
    static char keys[N][16];
    static int present[N];
    pl_map_t m;
    pl_map_init(&m);
    srand(7);
    for (int i = 0; i < N; i++)
        snprintf(keys[i], sizeof keys[i], "k%d", i);
    for (int round = 0; round < 200000; round++) {
        int i = rand() % N;
        if (present[i]) {
            assert_ptr_equal(pl_map_del(&m, keys[i], strlen(keys[i])), keys[i]);
            present[i] = 0;
        } else {
            assert_int_equal(pl_map_put(&m, keys[i], strlen(keys[i]), keys[i], NULL), 0);
            present[i] = 1;
        }
    }
    size_t count = 0;
    for (int i = 0; i < N; i++) {
        void *v = pl_map_get(&m, keys[i], strlen(keys[i]));
        if (present[i]) {
            assert_ptr_equal(v, keys[i]);
            count++;
        } else {
            assert_null(v);
        }
    }
    assert_int_equal(pl_map_count(&m), count);
    size_t it = 0, seen = 0;
    const pl_map_slot_t *s;
    while (pl_map_next(&m, &it, &s))
        seen++;
    assert_int_equal(seen, count);
    pl_map_dispose(&m);
}

static bool is_even(void *value, void *ud) {
    (*(int *)ud)++;
    return (*(int *)value % 2) == 0;
}

static int g_released;
static void count_release(void *value) {
    (void)value;
    g_released++;
}

static void test_remove_if(void **state) {
    (void)state;
    enum { N = 1000 };
    static int vals[N];
    static char keys[N][8];
    pl_map_t m;
    pl_map_init(&m);
    for (int i = 0; i < N; i++) {
        vals[i] = i;
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        assert_int_equal(pl_map_put(&m, keys[i], strlen(keys[i]), &vals[i], NULL), 0);
    }
    int asked = 0;
    g_released = 0;
    assert_int_equal(pl_map_remove_if(&m, is_even, count_release, &asked), N / 2);
    assert_int_equal(asked, N);
    assert_int_equal(g_released, N / 2);
    assert_int_equal(pl_map_count(&m), N / 2);
    for (int i = 0; i < N; i++) {
        void *v = pl_map_get(&m, keys[i], strlen(keys[i]));
        if (i % 2)
            assert_ptr_equal(v, &vals[i]);
        else
            assert_null(v);
    }
    pl_map_dispose(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_churn),
        cmocka_unit_test(test_remove_if),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
