/* Unit tests for src/http/query.h: percent-decoding (with and without `+` as a space,
 * malformed escapes refused, decoded NUL kept, buffer limits passed through), and query-string
 * lookup (first match wins, missing `=`, repeated keys, encoded keys, malformed pairs) and
 * iteration over raw pairs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "http/query.h"

#include <stdio.h>
#include <string.h>

static void test_percent_decode(void **state) {
    (void)state;
    static const struct {
        const char *in;
        size_t in_len; /* 0 = strlen */
        bool plus;
        int rc;
        const char *out;
        size_t out_len; /* 0 = strlen */
    } rows[] = {
        /* good */
        {"", 0, false, 0, "", 0},
        {"abc", 0, false, 0, "abc", 0},
        {"a%20b", 0, false, 0, "a b", 0},
        {"%41%42%43", 0, false, 0, "ABC", 0},
        {"%4a%4A", 0, false, 0, "JJ", 0}, /* both cases of hex digits */
        {"%7e%7E", 0, false, 0, "~~", 0},
        {"%25", 0, false, 0, "%", 0},
        {"%2525", 0, false, 0, "%25", 0}, /* decoded once, not twice */
        {"%2e%2e%2f", 0, false, 0, "../", 0},
        {"%C3%A9t%C3%A9", 0, false, 0, "\xc3\xa9t\xc3\xa9", 0},
        {"%ff%00%80", 0, false, 0, "\xff\0\x80", 3}, /* any byte, NUL kept */
        {"%00", 0, false, 0, "\0", 1},
        {"a+b", 0, true, 0, "a b", 0},
        {"a+b", 0, false, 0, "a+b", 0},
        {"%2B+", 0, true, 0, "+ ", 0}, /* an escaped plus stays a plus */
        {"++", 0, true, 0, "  ", 0},
        {"a=b&c", 0, false, 0, "a=b&c", 0}, /* no special meaning here */
        /* boundary: escapes at the very end */
        {"ab%41", 0, false, 0, "abA", 0},
        /* only len bytes are read */
        {"%41%42", 3, false, 0, "A", 0},
        /* malformed */
        {"%", 0, false, PL_EINVAL, NULL, 0},
        {"%4", 0, false, PL_EINVAL, NULL, 0},
        {"%zz", 0, false, PL_EINVAL, NULL, 0},
        {"%g0", 0, false, PL_EINVAL, NULL, 0},
        {"%0g", 0, false, PL_EINVAL, NULL, 0},
        {"abc%", 0, false, PL_EINVAL, NULL, 0},
        {"abc%4", 0, false, PL_EINVAL, NULL, 0},
        {"%%41", 0, false, PL_EINVAL, NULL, 0},
        {"% 41", 0, false, PL_EINVAL, NULL, 0},
        {"%-1", 0, false, PL_EINVAL, NULL, 0},
        {"%+1", 0, true, PL_EINVAL, NULL, 0},
        {"%41%4", 0, false, PL_EINVAL, NULL, 0},
        {"%41%", 0, false, PL_EINVAL, NULL, 0},
        {"%4142", 4, false, 0, "A4", 0},
        {"%4142", 2, false, PL_EINVAL, NULL, 0}, /* the escape is cut by the length */
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        pl_buf_t out;
        pl_buf_init(&out, 0);
        size_t in_len = rows[i].in_len ? rows[i].in_len : strlen(rows[i].in);
        int rc = http_percent_decode(&out, pl_slice(rows[i].in, in_len), rows[i].plus);
        if (rc != rows[i].rc) {
            print_error("row %zu: '%s': rc %d, want %d\n", i, rows[i].in, rc, rows[i].rc);
            bad++;
        } else if (rc == 0) {
            size_t want = rows[i].out_len ? rows[i].out_len : strlen(rows[i].out);
            if (out.len != want || (want && memcmp(out.data, rows[i].out, want) != 0)) {
                print_error("row %zu: '%s': decoded %zu bytes '%.*s'\n", i, rows[i].in, out.len,
                            (int)out.len, out.data ? out.data : "");
                bad++;
            }
        }
        pl_buf_dispose(&out);
    }
    assert_int_equal(bad, 0);

    /* Decoding appends to what the buffer already holds. */
    pl_buf_t out;
    pl_buf_init(&out, 0);
    assert_int_equal(pl_buf_append_cstr(&out, "x="), 0);
    assert_int_equal(http_percent_decode(&out, PL_SLICE_LIT("%31"), false), 0);
    assert_int_equal(out.len, 3);
    assert_memory_equal(out.data, "x=1", 3);
    pl_buf_dispose(&out);

    /* The buffer's limit is never passed. (Whether the limit is checked against the encoded
     * or the decoded length is the module's choice: checking the input length before decoding
     * is the cheaper bound, so the rows here are ones where both agree.) */
    static const struct {
        size_t max;
        const char *in;
        int rc;
    } lim[] = {
        {27, "%41%41%41%41%41%41%41%41%41", 0},
        {8, "%41%41%41%41%41%41%41%41%41", PL_ETOOBIG},
        {3, "abc", 0},
        {3, "abcd", PL_ETOOBIG},
        {2, "a+b", PL_ETOOBIG},
    };
    for (size_t i = 0; i < sizeof lim / sizeof lim[0]; i++) {
        pl_buf_t b;
        pl_buf_init(&b, lim[i].max);
        int rc = http_percent_decode(&b, pl_slice_cstr(lim[i].in), true);
        if (rc != lim[i].rc || b.len > lim[i].max) {
            print_error("limit row %zu: rc %d len %zu\n", i, rc, b.len);
            bad++;
        }
        pl_buf_dispose(&b);
    }
    assert_int_equal(bad, 0);
}

static void test_query_get(void **state) {
    (void)state;
    static const struct {
        const char *query, *key;
        int rc;
        const char *value;
        size_t value_len; /* 0 = strlen */
    } rows[] = {
        /* good */
        {"a=1", "a", 1, "1", 0},
        {"a=1&b=2", "b", 1, "2", 0},
        {"a=1&b=2&c=3", "c", 1, "3", 0},
        {"EIO=4&transport=polling&t=N8hyd6w", "transport", 1, "polling", 0},
        {"projectId=42&EIO=4", "projectId", 1, "42", 0},
        /* values are decoded, `+` is a space */
        {"q=hello+world", "q", 1, "hello world", 0},
        {"q=a%20b%2Bc", "q", 1, "a b+c", 0},
        {"q=%C3%A9", "q", 1, "\xc3\xa9", 0},
        {"q=a%00b", "q", 1, "a\0b", 3},
        /* so are keys */
        {"a%62=1", "ab", 1, "1", 0},
        {"a+b=c", "a b", 1, "c", 0},
        {"%61=x", "a", 1, "x", 0},
        /* empty and missing values */
        {"a", "a", 1, "", 0},
        {"a=", "a", 1, "", 0},
        {"x=1&a&y=2", "a", 1, "", 0},
        {"a&a=2", "a", 1, "", 0}, /* the first pair wins, even without a value */
        /* the first '=' splits */
        {"a==b", "a", 1, "=b", 0},
        {"a=b=c", "a", 1, "b=c", 0},
        /* repeated keys: the first wins */
        {"a=1&a=2", "a", 1, "1", 0},
        {"b=0&a=first&a=second", "a", 1, "first", 0},
        /* empty pairs are skipped */
        {"&&a=1&", "a", 1, "1", 0},
        {"a=1&&b=2", "b", 1, "2", 0},
        /* not found */
        {"", "a", 0, NULL, 0},
        {"b=1", "a", 0, NULL, 0},
        {"ab=1", "a", 0, NULL, 0}, /* a key is matched whole, not as a prefix */
        {"ba=1", "a", 0, NULL, 0},
        {"A=1", "a", 0, NULL, 0}, /* case-sensitive */
        {"=1", "a", 0, NULL, 0},
        {"b=a", "a", 0, NULL, 0}, /* values are not keys */
        {"b=a=1", "a", 0, NULL, 0},
        {"b=1;a=2", "a", 0, NULL, 0}, /* ';' is not a separator */
        /* malformed pairs: an error only when it is the matching pair */
        {"a=%zz", "a", PL_EINVAL, NULL, 0},
        {"a=%4", "a", PL_EINVAL, NULL, 0},
        {"a=%", "a", PL_EINVAL, NULL, 0},
        {"x=%zz&a=1", "a", 1, "1", 0},
        {"a=1&a=%zz", "a", 1, "1", 0},
        {"a=%zz&a=1", "a", PL_EINVAL, NULL, 0},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        pl_buf_t out;
        pl_buf_init(&out, 0);
        int rc = http_query_get(pl_slice_cstr(rows[i].query), rows[i].key, &out);
        if (rc != rows[i].rc) {
            print_error("row %zu: '%s' key '%s': rc %d, want %d\n", i, rows[i].query, rows[i].key,
                        rc, rows[i].rc);
            bad++;
        } else if (rc == 1) {
            size_t want = rows[i].value_len ? rows[i].value_len : strlen(rows[i].value);
            if (out.len != want || (want && memcmp(out.data, rows[i].value, want) != 0)) {
                print_error("row %zu: '%s' key '%s': value '%.*s'\n", i, rows[i].query, rows[i].key,
                            (int)out.len, out.data ? out.data : "");
                bad++;
            }
        }
        pl_buf_dispose(&out);
    }
    assert_int_equal(bad, 0);

    /* A value over the buffer's limit is refused with the buffer's error. */
    pl_buf_t small;
    pl_buf_init(&small, 4);
    assert_int_equal(http_query_get(PL_SLICE_LIT("sid=0123456789"), "sid", &small), PL_ETOOBIG);
    assert_true(small.len <= 4);
    pl_buf_dispose(&small);
    /* Only len bytes of the query are read. */
    pl_buf_t out;
    pl_buf_init(&out, 0);
    assert_int_equal(http_query_get(pl_slice("a=12&b=3", 3), "a", &out), 1);
    assert_int_equal(out.len, 1);
    assert_int_equal(out.data[0], '1');
    pl_buf_reset(&out);
    assert_int_equal(http_query_get(pl_slice("a=12&b=3", 4), "b", &out), 0);
    pl_buf_dispose(&out);
}

typedef struct {
    int calls;
    int stop_at; /* return 7 from this call (1-based); 0 = never */
    char seen[512];
} each_t;

static int each_cb(void *ud, pl_slice_t key, pl_slice_t value) {
    each_t *e = ud;
    e->calls++;
    size_t n = strlen(e->seen);
    snprintf(e->seen + n, sizeof e->seen - n, "[%.*s|%.*s]", (int)key.len, key.ptr ? key.ptr : "",
             (int)value.len, value.ptr ? value.ptr : "");
    return e->calls == e->stop_at ? 7 : 0;
}

static void test_query_each(void **state) {
    (void)state;
    static const struct {
        const char *query;
        int stop_at;
        int rc, calls;
        const char *seen;
    } rows[] = {
        {"", 0, 0, 0, ""},
        {"a=1", 0, 0, 1, "[a|1]"},
        /* raw, undecoded */
        {"a=1&b&c=%20+", 0, 0, 3, "[a|1][b|][c|%20+]"},
        {"%61=%62", 0, 0, 1, "[%61|%62]"},
        {"a=b=c", 0, 0, 1, "[a|b=c]"},
        {"a=1&a=2", 0, 0, 2, "[a|1][a|2]"},
        /* empty pairs are skipped */
        {"&a=1&&b=2&", 0, 0, 2, "[a|1][b|2]"},
        {"=v", 0, 0, 1, "[|v]"},
        /* stopping early returns the callback's value */
        {"a=1&b=2&c=3", 1, 7, 1, "[a|1]"},
        {"a=1&b=2&c=3", 2, 7, 2, "[a|1][b|2]"},
        {"a=1&b=2&c=3", 3, 7, 3, "[a|1][b|2][c|3]"},
        /* malformed escapes are not its business: they pass raw */
        {"a=%zz", 0, 0, 1, "[a|%zz]"},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        each_t e;
        memset(&e, 0, sizeof e);
        e.stop_at = rows[i].stop_at;
        int rc = http_query_each(pl_slice_cstr(rows[i].query), each_cb, &e);
        if (rc != rows[i].rc || e.calls != rows[i].calls || strcmp(e.seen, rows[i].seen) != 0) {
            print_error("row %zu: '%s': rc %d calls %d seen '%s'\n", i, rows[i].query, rc, e.calls,
                        e.seen);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_long_query_linear(void **state) {
    (void)state;
    /* 200,000 pairs: the lookup of the last one and a full iteration finish quickly (linear),
     * and a long run of '%' or '&' is no problem either. */
    pl_buf_t q;
    pl_buf_init(&q, 0);
    for (int i = 0; i < 200000; i++)
        assert_int_equal(pl_buf_printf(&q, "k%d=v%d&", i, i), 0);
    assert_int_equal(pl_buf_append_cstr(&q, "last=yes"), 0);
    pl_buf_t out;
    pl_buf_init(&out, 0);
    assert_int_equal(http_query_get(pl_slice(q.data, q.len), "last", &out), 1);
    assert_int_equal(out.len, 3);
    pl_buf_reset(&out);
    assert_int_equal(http_query_get(pl_slice(q.data, q.len), "k199999", &out), 1);
    assert_memory_equal(out.data, "v199999", 7);
    each_t e;
    memset(&e, 0, sizeof e);
    assert_int_equal(http_query_each(pl_slice(q.data, q.len), each_cb, &e), 0);
    assert_int_equal(e.calls, 200001);
    pl_buf_reset(&q);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(pl_buf_append_cstr(&q, "&"), 0);
    assert_int_equal(http_query_get(pl_slice(q.data, q.len), "a", &out), 0);
    pl_buf_reset(&out);
    assert_int_equal(http_percent_decode(&out, pl_slice(q.data, q.len), true), 0);
    assert_int_equal(out.len, 100000);
    pl_buf_dispose(&q);
    pl_buf_dispose(&out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_query_get),
        cmocka_unit_test(test_query_each),
        cmocka_unit_test(test_long_query_linear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
