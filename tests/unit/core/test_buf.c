/* Unit tests for src/core/buf.h: slices, the bounded growable buffer (limits checked before
 * growing, a + b overflow, printf, consume, steal) and reference-counted blocks. Table-driven:
 * good rows, boundary rows and malformed rows; every failing row is printed before the test
 * fails, so one run shows them all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* ---- slices ---------------------------------------------------------------------------- */

static void test_slice_compare(void **state) {
    (void)state;
    static const struct {
        const char *a, *b;
        bool eq, case_eq;
    } rows[] = {
        {"", "", true, true},         {"abc", "abc", true, true},
        {"abc", "ABC", false, true},  {"Content-Length", "content-length", false, true},
        {"abc", "abd", false, false}, {"abc", "ab", false, false},
        {"ab", "abc", false, false},  {"", "a", false, false},
        {"a[", "A{", false, false}, /* '[' and '{' differ by 0x20 but are not letters */
        {"@", "`", false, false},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        pl_slice_t a = pl_slice_cstr(rows[i].a), b = pl_slice_cstr(rows[i].b);
        if (pl_slice_eq(a, b) != rows[i].eq || pl_slice_eq_cstr(a, rows[i].b) != rows[i].eq ||
            pl_slice_case_eq(a, b) != rows[i].case_eq ||
            pl_slice_case_eq_cstr(a, rows[i].b) != rows[i].case_eq) {
            print_error("row %zu: '%s' vs '%s'\n", i, rows[i].a, rows[i].b);
            bad++;
        }
    }
    assert_int_equal(bad, 0);

    /* A slice is a view: bytes past len never take part. */
    pl_slice_t part = pl_slice("GETX", 3);
    assert_true(pl_slice_eq_cstr(part, "GET"));
    assert_false(pl_slice_eq_cstr(part, "GETX"));
    assert_true(pl_slice_eq(PL_SLICE_LIT("GET"), part));
    /* Slices holding NUL bytes compare by length, not as C strings. */
    assert_false(pl_slice_eq(pl_slice("a\0b", 3), pl_slice("a\0c", 3)));
    assert_true(pl_slice_eq(pl_slice("a\0b", 3), pl_slice("a\0b", 3)));
    assert_false(pl_slice_eq_cstr(pl_slice("a\0b", 3), "a"));
    /* NULL pointer with zero length is the empty slice. */
    assert_int_equal(pl_slice_cstr(NULL).len, 0);
    assert_true(pl_slice_eq(pl_slice(NULL, 0), PL_SLICE_LIT("")));
}

static void test_slice_dup(void **state) {
    (void)state;
    char *s = pl_slice_dup(pl_slice("hello world", 5));
    assert_non_null(s);
    assert_string_equal(s, "hello");
    free(s);
    s = pl_slice_dup(pl_slice(NULL, 0));
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
    /* Embedded NUL is copied; the copy is terminated after len bytes. */
    s = pl_slice_dup(pl_slice("a\0b", 3));
    assert_non_null(s);
    assert_memory_equal(s, "a\0b\0", 4);
    free(s);
}

static void test_slice_to_u64(void **state) {
    (void)state;
    static const struct {
        const char *text;
        uint64_t max;
        bool ok;
        uint64_t value;
    } rows[] = {
        /* good */
        {"0", 10, true, 0},
        {"7", 10, true, 7},
        {"42", UINT64_MAX, true, 42},
        {"007", 10, true, 7},
        {"65535", 65535, true, 65535},
        {"9007199254740991", 9007199254740991ull, true, 9007199254740991ull},
        {"18446744073709551615", UINT64_MAX, true, UINT64_MAX},
        /* boundary: one past the maximum */
        {"11", 10, false, 0},
        {"65536", 65535, false, 0},
        {"9007199254740992", 9007199254740991ull, false, 0},
        {"18446744073709551616", UINT64_MAX, false, 0},
        {"99999999999999999999", UINT64_MAX, false, 0},
        {"1", 0, false, 0},
        /* malformed */
        {"", UINT64_MAX, false, 0},
        {"-1", UINT64_MAX, false, 0},
        {"+1", UINT64_MAX, false, 0},
        {" 1", UINT64_MAX, false, 0},
        {"1 ", UINT64_MAX, false, 0},
        {"1a", UINT64_MAX, false, 0},
        {"0x10", UINT64_MAX, false, 0},
        {"1e3", UINT64_MAX, false, 0},
        {"1.0", UINT64_MAX, false, 0},
        {"abc", UINT64_MAX, false, 0},
        {"184467440737095516150", UINT64_MAX, false, 0},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        uint64_t v = 12345;
        bool ok = pl_slice_to_u64(pl_slice_cstr(rows[i].text), rows[i].max, &v);
        if (ok != rows[i].ok || (ok && v != rows[i].value)) {
            print_error("row %zu: '%s' max %llu: got ok=%d value=%llu\n", i, rows[i].text,
                        (unsigned long long)rows[i].max, ok, (unsigned long long)v);
            bad++;
        }
        if (!ok && v != 12345) {
            print_error("row %zu: '%s' refused but wrote the output\n", i, rows[i].text);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
    /* Only len bytes are read: "12" out of "123". */
    uint64_t v = 0;
    assert_true(pl_slice_to_u64(pl_slice("123", 2), 100, &v));
    assert_int_equal(v, 12);
    /* A NUL inside the slice is not a digit. */
    assert_false(pl_slice_to_u64(pl_slice("1\0", 2), 100, &v));
}

/* ---- pl_buf_t ---------------------------------------------------------------------------- */

static void test_buf_init_append(void **state) {
    (void)state;
    pl_buf_t b;
    pl_buf_init(&b, 0);
    assert_int_equal(b.len, 0);
    assert_true(b.max == SIZE_MAX); /* 0 means no limit */
    /* Appending nothing succeeds and changes nothing. */
    assert_int_equal(pl_buf_append(&b, "", 0), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(pl_buf_append(&b, "abc", 3), 0);
    assert_int_equal(pl_buf_append_cstr(&b, "def"), 0);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "abcdef", 6);
    assert_true(b.cap >= b.len);
    /* Growth across many doublings keeps every byte. */
    for (int i = 0; i < 10000; i++)
        assert_int_equal(pl_buf_append(&b, &"0123456789"[i % 10], 1), 0);
    assert_int_equal(b.len, 10006);
    int bad = 0;
    for (int i = 0; i < 10000; i++)
        bad += b.data[6 + i] != '0' + i % 10;
    assert_int_equal(bad, 0);
    /* Binary bytes, including NUL, are kept. */
    pl_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_true(b.cap >= 10006); /* reset keeps the allocation */
    assert_int_equal(pl_buf_append(&b, "\0\xff\0", 3), 0);
    assert_memory_equal(b.data, "\0\xff\0", 3);
    pl_buf_dispose(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    /* Dispose twice is harmless, and so is dispose of a never-grown buffer. */
    pl_buf_dispose(&b);
    pl_buf_t empty;
    pl_buf_init(&empty, 16);
    pl_buf_dispose(&empty);
}

static void test_buf_limits(void **state) {
    (void)state;
    /* Each row: a buffer with max, prefilled with pre bytes, then one append of n bytes. */
    static const struct {
        size_t max, pre, n;
        int rc;
    } rows[] = {
        {10, 0, 10, 0},          /* exactly the maximum */
        {10, 0, 11, PL_ETOOBIG}, /* one past */
        {10, 5, 5, 0},           /* fills to the maximum */
        {10, 5, 6, PL_ETOOBIG},  /* one past after a prefix */
        {10, 10, 1, PL_ETOOBIG}, /* full */
        {10, 10, 0, 0},          /* nothing more when full is fine */
        {1, 0, 1, 0},
        {1, 0, 2, PL_ETOOBIG},
        {64, 0, 64, 0}, /* the first allocation size */
        {65, 64, 1, 0}, /* growth capped at max, not doubled past it */
        {100, 0, 1000, PL_ETOOBIG},
    };
    int bad = 0;
    static char src[2048];
    memset(src, 'x', sizeof src);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        pl_buf_t b;
        pl_buf_init(&b, rows[i].max);
        if (pl_buf_append(&b, src, rows[i].pre) != 0) {
            print_error("row %zu: prefill failed\n", i);
            bad++;
        }
        int rc = pl_buf_append(&b, src, rows[i].n);
        size_t want_len = rows[i].pre + (rows[i].rc == 0 ? rows[i].n : 0);
        if (rc != rows[i].rc || b.len != want_len || b.len > rows[i].max) {
            print_error("row %zu: max %zu pre %zu n %zu: rc %d (want %d) len %zu (want %zu)\n", i,
                        rows[i].max, rows[i].pre, rows[i].n, rc, rows[i].rc, b.len, want_len);
            bad++;
        }
        /* A refused append leaves the contents as they were. */
        if (rc != 0 && rows[i].pre && memcmp(b.data, src, rows[i].pre) != 0) {
            print_error("row %zu: contents changed by a refused append\n", i);
            bad++;
        }
        /* The buffer never allocates past its maximum. */
        if (b.cap > rows[i].max) {
            print_error("row %zu: cap %zu over max %zu\n", i, b.cap, rows[i].max);
            bad++;
        }
        pl_buf_dispose(&b);
    }
    assert_int_equal(bad, 0);
}

static void test_buf_reserve_overflow(void **state) {
    (void)state;
    /* len + n wraps around SIZE_MAX: must be refused before anything is allocated. */
    pl_buf_t b;
    pl_buf_init(&b, 0);
    assert_int_equal(pl_buf_append(&b, "a", 1), 0);
    assert_int_equal(pl_buf_reserve(&b, SIZE_MAX), PL_ETOOBIG);
    assert_int_equal(pl_buf_reserve(&b, SIZE_MAX - 0), PL_ETOOBIG);
    assert_int_equal(pl_buf_append(&b, "x", SIZE_MAX), PL_ETOOBIG);
    assert_int_equal(b.len, 1);
    assert_int_equal(b.data[0], 'a');
    /* A bounded buffer refuses a huge reservation by its limit. */
    pl_buf_t c;
    pl_buf_init(&c, 100);
    assert_int_equal(pl_buf_reserve(&c, SIZE_MAX), PL_ETOOBIG);
    assert_int_equal(pl_buf_reserve(&c, SIZE_MAX / 2 + 1), PL_ETOOBIG);
    assert_null(c.data);
    /* A successful reserve makes room without changing len. */
    assert_int_equal(pl_buf_reserve(&c, 100), 0);
    assert_int_equal(c.len, 0);
    assert_true(c.cap >= 100 && c.cap <= 100);
    pl_buf_dispose(&b);
    pl_buf_dispose(&c);
}

static void test_buf_printf(void **state) {
    (void)state;
    pl_buf_t b;
    pl_buf_init(&b, 0);
    assert_int_equal(pl_buf_printf(&b, "%s=%d", "port", 8080), 0);
    assert_int_equal(b.len, 9); /* the terminating NUL is not counted */
    assert_memory_equal(b.data, "port=8080", 9);
    assert_int_equal(pl_buf_printf(&b, "&%05.1f", 3.14159), 0);
    assert_int_equal(b.len, 15);
    assert_memory_equal(b.data, "port=8080&003.1", 15);
    /* An empty format appends nothing. */
    assert_int_equal(pl_buf_printf(&b, "%s", ""), 0);
    assert_int_equal(b.len, 15);
    /* Long output through several growths. */
    pl_buf_reset(&b);
    char big[5000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(pl_buf_printf(&b, "<%s>", big), 0);
    assert_int_equal(b.len, 5001);
    assert_int_equal(b.data[0], '<');
    assert_int_equal(b.data[5000], '>');
    pl_buf_dispose(&b);

    /* Limits: rows of (max, prefix length, printf output length). */
    static const struct {
        size_t max, pre, out;
        int rc;
    } rows[] = {
        {20, 0, 5, 0},           {20, 0, 19, 0},
        {20, 0, 20, 0},          /* output fills the buffer to exactly max bytes */
        {20, 0, 21, PL_ETOOBIG}, /* one past */
        {20, 15, 5, 0},          /* fills to max after a prefix */
        {20, 15, 6, PL_ETOOBIG}, {20, 20, 1, PL_ETOOBIG},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        pl_buf_t c;
        pl_buf_init(&c, rows[i].max);
        if (pl_buf_append(&c, big, rows[i].pre) != 0)
            bad++;
        int rc = pl_buf_printf(&c, "%.*s", (int)rows[i].out, big);
        size_t want_len = rows[i].pre + (rows[i].rc == 0 ? rows[i].out : 0);
        if (rc != rows[i].rc || c.len != want_len) {
            print_error("printf row %zu: max %zu pre %zu out %zu: rc %d (want %d) len %zu "
                        "(want %zu)\n",
                        i, rows[i].max, rows[i].pre, rows[i].out, rc, rows[i].rc, c.len, want_len);
            bad++;
        }
        pl_buf_dispose(&c);
    }
    assert_int_equal(bad, 0);
}

static int vprintf_helper(pl_buf_t *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = pl_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

static void test_buf_vprintf(void **state) {
    (void)state;
    pl_buf_t b;
    pl_buf_init(&b, 64);
    assert_int_equal(vprintf_helper(&b, "%s-%u-%c", "a", 7u, 'z'), 0);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, "a-7-z", 5);
    pl_buf_dispose(&b);
}

static void test_buf_consume(void **state) {
    (void)state;
    /* Rows: consume n from "0123456789". */
    static const struct {
        size_t n;
        const char *rest;
    } rows[] = {
        {0, "0123456789"}, {1, "123456789"}, {4, "456789"}, {9, "9"}, {10, ""},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        pl_buf_t b;
        pl_buf_init(&b, 0);
        if (pl_buf_append_cstr(&b, "0123456789") != 0)
            bad++;
        pl_buf_consume(&b, rows[i].n);
        size_t want = strlen(rows[i].rest);
        if (b.len != want || (want && memcmp(b.data, rows[i].rest, want) != 0)) {
            print_error("row %zu: consume %zu left %zu bytes\n", i, rows[i].n, b.len);
            bad++;
        }
        /* The buffer stays usable after consuming. */
        if (pl_buf_append_cstr(&b, "ab") != 0 || b.len != want + 2 ||
            memcmp(b.data + want, "ab", 2) != 0) {
            print_error("row %zu: append after consume failed\n", i);
            bad++;
        }
        pl_buf_dispose(&b);
    }
    assert_int_equal(bad, 0);

    /* A consumer loop: a bounded buffer that is filled and drained repeatedly never fails,
     * since consumed bytes free room under the limit. */
    pl_buf_t q;
    pl_buf_init(&q, 32);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(pl_buf_append(&q, "0123456789", 10), 0);
        assert_int_equal(pl_buf_append(&q, "0123456789", 10), 0);
        assert_int_equal(pl_buf_append(&q, "0123456789", 10), 0);
        assert_int_equal(pl_buf_append(&q, "0123456789", 10), PL_ETOOBIG);
        pl_buf_consume(&q, 25);
        assert_int_equal(q.len, 5);
        assert_memory_equal(q.data, "56789", 5);
        pl_buf_consume(&q, 5);
    }
    pl_buf_dispose(&q);
}

static void test_buf_steal(void **state) {
    (void)state;
    pl_buf_t b;
    pl_buf_init(&b, 100);
    assert_int_equal(pl_buf_append_cstr(&b, "stolen"), 0);
    size_t len = 0;
    char *p = pl_buf_steal(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 6);
    assert_memory_equal(p, "stolen", 6);
    free(p);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    /* The limit survives, and the buffer is reusable. */
    assert_int_equal(b.max, 100);
    assert_int_equal(pl_buf_append_cstr(&b, "again"), 0);
    assert_int_equal(b.len, 5);
    p = pl_buf_steal(&b, NULL); /* len is optional */
    assert_memory_equal(p, "again", 5);
    free(p);
    /* Stealing from a never-grown buffer gives NULL and length 0. */
    len = 99;
    p = pl_buf_steal(&b, &len);
    assert_null(p);
    assert_int_equal(len, 0);
    pl_buf_dispose(&b);
}

/* ---- pl_rcbuf_t ------------------------------------------------------------------------- */

static void test_rcbuf(void **state) {
    (void)state;
    pl_rcbuf_t *a = pl_rcbuf_from("packet", 6);
    assert_non_null(a);
    assert_int_equal(a->refs, 1);
    assert_int_equal(a->len, 6);
    assert_memory_equal(a->data, "packet", 6);
    /* Sharing among receivers: each takes a reference, each drops one. */
    pl_rcbuf_t *r[5];
    for (int i = 0; i < 5; i++) {
        r[i] = pl_rcbuf_ref(a);
        assert_ptr_equal(r[i], a);
    }
    assert_int_equal(a->refs, 6);
    for (int i = 0; i < 5; i++)
        pl_rcbuf_unref(r[i]);
    assert_int_equal(a->refs, 1);
    assert_memory_equal(a->data, "packet", 6); /* still alive with the creator's reference */
    pl_rcbuf_unref(a);                         /* freed here (ASan reports a leak otherwise) */

    pl_rcbuf_t *n = pl_rcbuf_new(100);
    assert_non_null(n);
    assert_int_equal(n->refs, 1);
    assert_int_equal(n->len, 100);
    memset(n->data, 7, 100); /* the creator writes all of it */
    pl_rcbuf_unref(n);

    pl_rcbuf_t *z = pl_rcbuf_new(0);
    assert_non_null(z);
    assert_int_equal(z->len, 0);
    pl_rcbuf_unref(z);
    z = pl_rcbuf_from(NULL, 0);
    assert_non_null(z);
    assert_int_equal(z->len, 0);
    pl_rcbuf_unref(z);

    /* Header + len overflows size_t: refused before malloc. */
    assert_null(pl_rcbuf_new(SIZE_MAX));
    assert_null(pl_rcbuf_new(SIZE_MAX - sizeof(pl_rcbuf_t) / 2));
    /* unref(NULL) is a no-op. */
    pl_rcbuf_unref(NULL);
}

/* ---- errors and fixed allocations --------------------------------------------------------- */

static void test_strerror(void **state) {
    (void)state;
    static const struct {
        int err;
        const char *name;
    } rows[] = {
        {0, "ok"},
        {PL_ETOOBIG, "over limit"},
        {PL_EINVAL, "malformed input"},
        {PL_ENOMEM, "out of memory"},
        {PL_EUNAVAIL, "unavailable"},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (strcmp(pl_strerror(rows[i].err), rows[i].name) != 0) {
            print_error("row %zu: %d named '%s'\n", i, rows[i].err, pl_strerror(rows[i].err));
            bad++;
        }
    assert_int_equal(bad, 0);
    /* libuv codes pass through to libuv's names. (Codes libuv does not know are left out:
     * uv_strerror allocates a string for those and never frees it, which LeakSanitizer
     * reports.) */
    assert_string_equal(pl_strerror(UV_ECONNRESET), uv_strerror(UV_ECONNRESET));
    assert_string_equal(pl_strerror(UV_EOF), uv_strerror(UV_EOF));
    assert_string_equal(pl_strerror(UV_EMFILE), uv_strerror(UV_EMFILE));
    /* Our codes do not collide with libuv's. */
    static const int ours[] = {PL_ETOOBIG, PL_EINVAL, PL_ENOMEM, PL_EUNAVAIL};
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
        assert_true(ours[i] < (int)UV_ERRNO_MAX);
}

static void test_xalloc(void **state) {
    (void)state;
    void *p = pl_xmalloc(0); /* a zero-size request still gives a freeable pointer */
    assert_non_null(p);
    free(p);
    unsigned char *z = pl_xcalloc(16, 4);
    for (int i = 0; i < 64; i++)
        assert_int_equal(z[i], 0);
    free(z);
    z = pl_xcalloc(0, 0);
    assert_non_null(z);
    free(z);
    char *s = pl_xstrdup("parley");
    assert_string_equal(s, "parley");
    free(s);
    s = pl_xstrdup("");
    assert_string_equal(s, "");
    free(s);
}

/* Decimal integers without printf: the same text as printf, at the edges too. */
static void test_decimal(void **state) {
    (void)state;
    static const int64_t rows[] = {0, 1, -1, 9, 10, -10, 123456789, INT64_MAX, INT64_MIN,
                                   INT64_MIN + 1, 9007199254740991};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char want[32], got[21];
        snprintf(want, sizeof want, "%lld", (long long)rows[i]);
        assert_int_equal(pl_fmt_i64(got, rows[i]), strlen(want));
        assert_string_equal(got, want);
        pl_buf_t b;
        pl_buf_init(&b, 0);
        assert_int_equal(pl_buf_append(&b, "x", 1), 0);
        assert_int_equal(pl_buf_append_i64(&b, rows[i]), 0);
        assert_int_equal(b.len, 1 + strlen(want));
        assert_memory_equal(b.data + 1, want, strlen(want));
        pl_buf_dispose(&b);
    }
    static const uint64_t urows[] = {0, 7, 18446744073709551615ULL};
    for (size_t i = 0; i < sizeof urows / sizeof urows[0]; i++) {
        char want[32];
        snprintf(want, sizeof want, "%llu", (unsigned long long)urows[i]);
        pl_buf_t b;
        pl_buf_init(&b, 0);
        assert_int_equal(pl_buf_append_u64(&b, urows[i]), 0);
        assert_int_equal(b.len, strlen(want));
        assert_memory_equal(b.data, want, b.len);
        pl_buf_dispose(&b);
    }
    /* a capped buffer refuses what does not fit, as pl_buf_append does */
    pl_buf_t small;
    pl_buf_init(&small, 3);
    assert_int_equal(pl_buf_append_i64(&small, 1234), PL_ETOOBIG);
    pl_buf_dispose(&small);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decimal),
        cmocka_unit_test(test_slice_compare), cmocka_unit_test(test_slice_dup),
        cmocka_unit_test(test_slice_to_u64),  cmocka_unit_test(test_buf_init_append),
        cmocka_unit_test(test_buf_limits),    cmocka_unit_test(test_buf_reserve_overflow),
        cmocka_unit_test(test_buf_printf),    cmocka_unit_test(test_buf_vprintf),
        cmocka_unit_test(test_buf_consume),   cmocka_unit_test(test_buf_steal),
        cmocka_unit_test(test_rcbuf),         cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_xalloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
