/* Unit tests for src/core/json.c: pl_json_parse limits (BAD-INPUTS.md JSON list), pl_json_dump
 * byte parity with JSON.stringify (expected strings produced by Node 20's JSON.stringify and
 * hard-coded here), and strict UTF-8 validation. Table-driven: good, boundary and malformed
 * rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json.h"

#define S(lit) lit, sizeof(lit) - 1

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Dumps j into a NUL-terminated malloc'd string (test helper). */
static char *dump_str(const json_t *j) {
    pl_buf_t b;
    pl_buf_init(&b, 0);
    assert_int_equal(pl_json_dump(j, &b), 0);
    assert_int_equal(pl_buf_append(&b, "", 1), 0);
    return pl_buf_steal(&b, NULL);
}

/* ---- parse: good rows, compared after a dump ---- */

typedef struct {
    const char *in;
    size_t len;
    const char *out; /* expected pl_json_dump of the result */
} good_row_t;

static const good_row_t good_rows[] = {
    {S("[1,2,3]"), "[1,2,3]"},
    {S(" { \"a\" : [ true , false , null ] } "), "{\"a\":[true,false,null]}"},
    {S("1"), "1"},
    {S("-0"), "0"},
    {S("\"x\""), "\"x\""},
    {S("null"), "null"},
    {S("1.5"), "1.5"},
    {S("0.1"), "0.1"},
    {S("1.0"), "1"},
    {S("1e300"), "1e+300"},
    {S("{\"b\":1,\"a\":2}"), "{\"b\":1,\"a\":2}"}, /* insertion order kept */
    {S("\"\\u00e9\\u20ac\""), "\"\xc3\xa9\xe2\x82\xac\""},
    {S("\"\\ud83d\\ude00\""), "\"\xf0\x9f\x98\x80\""},   /* surrogate pair escape is fine */
    {S("\"\xf4\x8f\xbf\xbf\""), "\"\xf4\x8f\xbf\xbf\""}, /* U+10FFFF raw */
    {S("\"a\\/b\""), "\"a/b\""},                         /* '/' is not escaped on output */
    {S("\"\\u001f\\n\""), "\"\\u001f\\n\""},
    {S("9007199254740991"), "9007199254740991"},        /* 2^53 - 1 */
    {S("-9007199254740991"), "-9007199254740991"},      /* -(2^53 - 1) */
    {S("9007199254740993.0"), "9.007199254740992e+15"}, /* a real, not an integer */
    {S("[\"\xed\x9f\xbf\"]"), "[\"\xed\x9f\xbf\"]"},    /* U+D7FF, just below the surrogates */
    /* own parser: escapes between plain runs, keys with escapes, long runs, odd numbers */
    {S("\"ab\\\"cd\\\\ef\\/\\b\\f\\r\\tgh\""), "\"ab\\\"cd\\\\ef/\\b\\f\\r\\tgh\""},
    {S("{\"k\\u00e9y\":1,\"k\\u00e8y\":2}"), "{\"k\xc3\xa9y\":1,\"k\xc3\xa8y\":2}"},
    {S("\"0123456789abcdef0123456789abcdef\\n0123456789abcdef\""),
     "\"0123456789abcdef0123456789abcdef\\n0123456789abcdef\""},
    {S("\"\\uDBFF\\uDFFF\""), "\"\xf4\x8f\xbf\xbf\""}, /* upper-case hex, U+10FFFF */
    {S("-0.0"), "0"},
    {S("1E+2"), "100"},
    {S("1e-400"), "0"}, /* underflow reads as 0, as strtod and jansson do */
    {S("-9.5e-1"), "-0.95"},
    {S("\t\r\n[ ]\t\r\n"), "[]"},
    {S("{\"\":0}"), "{\"\":0}"},
};

static void test_parse_good(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof good_rows / sizeof good_rows[0]; i++) {
        const good_row_t *r = &good_rows[i];
        char err[64] = "";
        json_t *j = pl_json_parse(r->in, r->len, NULL, err, sizeof err);
        if (!j)
            fail_msg("row %zu (%s) refused: %s", i, r->in, err);
        char *s = dump_str(j);
        assert_string_equal(s, r->out);
        free(s);
        json_decref(j);
    }
}

/* ---- parse: refused rows ---- */

typedef struct {
    const char *in;
    size_t len;
    pl_json_limits_t lim; /* zeros = defaults */
    const char *reason;   /* expected err text */
} bad_row_t;

static const bad_row_t bad_rows[] = {
    {S(""), {0}, "truncated JSON"},
    {S("[1,"), {0}, "truncated JSON"},
    {S("[1] x"), {0}, "trailing bytes after JSON"},
    {S("{a:1}"), {0}, "invalid JSON"},
    {S("NaN"), {0}, "invalid JSON"},
    {S("Infinity"), {0}, "invalid JSON"},
    {S("1e400"), {0}, "number out of range"},
    /* integers outside +-(2^53 - 1) */
    {S("9007199254740992"), {0}, "integer outside +-(2^53-1)"},
    {S("-9007199254740992"), {0}, "integer outside +-(2^53-1)"},
    {S("[99999999999999999999]"), {0}, "number out of range"},
    /* NUL in strings, escaped or raw */
    {S("\"a\\u0000b\""), {0}, "NUL in string"},
    {S("{\"a\\u0000\":1}"), {0}, "NUL in string"},
    {"\"a\0b\"", 5, {0}, "invalid JSON"},
    /* duplicate keys, at any depth */
    {S("{\"a\":1,\"a\":2}"), {0}, "duplicate object key"},
    {S("[{\"k\":{\"x\":1,\"x\":1}}]"), {0}, "duplicate object key"},
    /* not UTF-8: overlong, surrogates, beyond U+10FFFF, truncated, stray continuation */
    {S("\"\xc0\xaf\""), {0}, "invalid UTF-8"},
    {S("\"\xe0\x80\xaf\""), {0}, "invalid UTF-8"},
    {S("\"\xf0\x80\x80\xaf\""), {0}, "invalid UTF-8"},
    {S("\"\xed\xa0\x80\""), {0}, "invalid UTF-8"},
    {S("\"\xf4\x90\x80\x80\""), {0}, "invalid UTF-8"},
    {S("\"\xe2\x82\""), {0}, "invalid UTF-8"},
    {S("\"\x80\""), {0}, "invalid UTF-8"},
    /* lone UTF-16 surrogates through escapes: jansson refuses them */
    {S("\"\\ud800\""), {0}, "invalid JSON"},
    {S("\"\\udc00\""), {0}, "invalid JSON"},
    {S("\"\\ud800\\u0041\""), {0}, "invalid JSON"},
    {S("\"\\ud800x\""), {0}, "invalid JSON"},
    /* limits */
    {S("\"123456789\""), {.max_string = 8}, "string too long"},
    {S("{\"123456789\":1}"), {.max_string = 8}, "object key too long"},
    {S("[1,2,3,4,5]"), {.max_bytes = 10}, "JSON too large"},
    {S("[[1]]"), {.max_depth = 1}, "JSON nested too deep"},
    {S("{\"a\":{}}"), {.max_depth = 1}, "JSON nested too deep"},
    /* number grammar (RFC 8259) */
    {S("01"), {0}, "invalid JSON"},
    {S("-"), {0}, "invalid JSON"},
    {S("1."), {0}, "invalid JSON"},
    {S(".5"), {0}, "invalid JSON"},
    {S("1e+"), {0}, "invalid JSON"},
    {S("+1"), {0}, "invalid JSON"},
    {S("0x10"), {0}, "trailing bytes after JSON"},
    {S("-9223372036854775809"), {0}, "number out of range"},
    {S("9223372036854775807"), {0}, "integer outside +-(2^53-1)"},
    /* literals and structure */
    {S("tru"), {0}, "invalid JSON"},
    {S("truex"), {0}, "invalid JSON"},
    {S("[1,]"), {0}, "invalid JSON"},
    {S("{\"a\":1,}"), {0}, "invalid JSON"},
    {S("{\"a\" 1}"), {0}, "invalid JSON"},
    {S("{\"a\":"), {0}, "truncated JSON"},
    {S("\"abc"), {0}, "truncated JSON"},
    /* string escapes */
    {S("\"\\x\""), {0}, "invalid JSON"},
    {S("\"\\u12G4\""), {0}, "invalid JSON"},
    {S("\"\\"), {0}, "invalid JSON"},
    {S("\"\\ud800\\\\u0041\""), {0}, "invalid JSON"}, /* an escaped backslash is no pair */
    {S("\"\\ud800"), {0}, "truncated JSON"},   /* unterminated first, as jansson reports */
    {S("\"a\nb\""), {0}, "invalid JSON"},      /* raw control character */
    /* the first fault found while reading a token wins, as with jansson */
    {S("1 1e400"), {0}, "number out of range"},
    {S("[1 \"abc"), {0}, "truncated JSON"},
    /* limits on the finished tree are reported only for otherwise valid text */
    {S("[\"123456789\", x]"), {.max_string = 8}, "invalid JSON"},
    {S("[9007199254740992 1]"), {0}, "invalid JSON"},
    /* nested too deep wins wherever the other fault is */
    {S("x[[[["), {.max_depth = 3}, "JSON nested too deep"},
    /* raw NUL outside strings (jansson's reader would drop it and accept "[1\0]") */
    {"[1\0]", 4, {0}, "invalid JSON"},
    {"true\0", 5, {0}, "trailing bytes after JSON"},
    {"\0", 1, {0}, "invalid JSON"},
};

static void test_parse_bad(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof bad_rows / sizeof bad_rows[0]; i++) {
        const bad_row_t *r = &bad_rows[i];
        char err[64] = "";
        json_t *j = pl_json_parse(r->in, r->len, &r->lim, err, sizeof err);
        if (j) {
            json_decref(j);
            fail_msg("row %zu (%s) accepted", i, r->in);
        }
        if (strcmp(err, r->reason) != 0)
            fail_msg("row %zu (%s): reason '%s', want '%s'", i, r->in, err, r->reason);
    }
}

/* ---- parse: boundaries ---- */

/* n opening brackets, a 1, n closing brackets. */
static char *nested(size_t n, char open, char close, size_t *len) {
    size_t total = 2 * n + 1;
    char *s = malloc(total);
    assert_non_null(s);
    memset(s, open, n);
    s[n] = '1';
    memset(s + n + 1, close, n);
    *len = total;
    return s;
}

static void test_depth_32_ok_33_refused(void **state) {
    (void)state;
    size_t len;
    char *s = nested(32, '[', ']', &len);
    json_t *j = pl_json_parse(s, len, NULL, NULL, 0);
    assert_non_null(j);
    json_decref(j);
    free(s);

    char err[64];
    s = nested(33, '[', ']', &len);
    assert_null(pl_json_parse(s, len, NULL, err, sizeof err));
    assert_string_equal(err, "JSON nested too deep");
    free(s);

    /* objects count as well: 32 levels of {"a": ... } */
    pl_buf_t b;
    pl_buf_init(&b, 0);
    for (int i = 0; i < 33; i++)
        assert_int_equal(pl_buf_append_cstr(&b, "{\"a\":"), 0);
    assert_int_equal(pl_buf_append_cstr(&b, "1"), 0);
    for (int i = 0; i < 33; i++)
        assert_int_equal(pl_buf_append_cstr(&b, "}"), 0);
    assert_null(pl_json_parse(b.data, b.len, NULL, err, sizeof err));
    assert_string_equal(err, "JSON nested too deep");
    /* drop the outermost level: 32 deep is fine */
    j = pl_json_parse(b.data + 5, b.len - 6, NULL, err, sizeof err);
    assert_non_null(j);
    json_decref(j);
    pl_buf_dispose(&b);

    /* brackets inside strings, and escaped quotes, do not count */
    const char *str = "[\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[[[[[[[[[[[\"]";
    j = pl_json_parse(str, strlen(str), &(pl_json_limits_t){.max_depth = 1}, err, sizeof err);
    assert_non_null(j);
    json_decref(j);
}

static void test_megabyte_of_brackets_refused_fast(void **state) {
    (void)state;
    size_t n = 1000000;
    char *s = malloc(n);
    assert_non_null(s);
    memset(s, '[', n);
    char err[64];
    double t0 = now_s();
    assert_null(pl_json_parse(s, n, NULL, err, sizeof err));
    double dt = now_s() - t0;
    assert_string_equal(err, "JSON nested too deep");
    /* linear pre-scan: far below a second even under sanitizers */
    assert_true(dt < 0.5);

    /* also with the depth limit raised: the pre-scan still refuses before jansson recurses */
    t0 = now_s();
    assert_null(pl_json_parse(s, n, &(pl_json_limits_t){.max_depth = 1000}, err, sizeof err));
    assert_true(now_s() - t0 < 0.5);
    free(s);
}

static void test_long_strings(void **state) {
    (void)state;
    /* 1 MiB string inside a 2 MiB byte limit: the default max_string is the boundary */
    size_t n = PL_JSON_DEFAULT_MAX_STRING;
    char *s = malloc(n + 3);
    assert_non_null(s);
    s[0] = '"';
    memset(s + 1, 'x', n + 1);
    pl_json_limits_t lim = {.max_bytes = 4 << 20};
    s[n + 1] = '"';
    json_t *j = pl_json_parse(s, n + 2, &lim, NULL, 0); /* exactly max_string */
    assert_non_null(j);
    assert_int_equal(json_string_length(j), n);
    json_decref(j);
    s[n + 1] = 'x';
    s[n + 2] = '"';
    char err[64];
    assert_null(pl_json_parse(s, n + 3, &lim, err, sizeof err)); /* one byte over */
    assert_string_equal(err, "string too long");
    /* the default max_bytes (1 MiB) refuses the text itself */
    assert_null(pl_json_parse(s, n + 3, NULL, err, sizeof err));
    assert_string_equal(err, "JSON too large");
    free(s);

    /* length is counted after unescaping: six escaped bytes make a 2-byte string */
    json_t *e = pl_json_parse(S("\"\\u00e9\""), &(pl_json_limits_t){.max_string = 2}, NULL, 0);
    assert_non_null(e);
    json_decref(e);

    /* max_bytes boundary */
    j = pl_json_parse(S("[1,2,3,4]"), &(pl_json_limits_t){.max_bytes = 9}, NULL, 0);
    assert_non_null(j);
    json_decref(j);
}

/* ---- dump: byte parity with JSON.stringify ---- */

static void test_dump_matches_json_stringify(void **state) {
    (void)state;
    /* JSON.stringify({a:0.1,b:1.5,c:-0,d:1e21,e:1e-7,f:123456789.125,g:5e-324,
     *                 h:1.7976931348623157e308}) */
    json_t *o = json_pack("{sfsfsfsfsfsfsfsf}", "a", 0.1, "b", 1.5, "c", -0.0, "d", 1e21, "e", 1e-7,
                          "f", 123456789.125, "g", 5e-324, "h", 1.7976931348623157e308);
    assert_non_null(o);
    char *s = dump_str(o);
    assert_string_equal(s, "{\"a\":0.1,\"b\":1.5,\"c\":0,\"d\":1e+21,\"e\":1e-7,"
                           "\"f\":123456789.125,\"g\":5e-324,\"h\":1.7976931348623157e+308}");
    free(s);
    json_decref(o);

    /* JSON.stringify([1.23e-18, 0.000001, 1.5e300, -2.5e-8, 100, 1e15 + 0.5, 1e-6 * 0.1]) */
    json_t *a =
        json_pack("[fffffff]", 123e-20, 0.000001, 1.5e300, -2.5e-8, 100.0, 1e15 + 0.5, 1e-7 * 3);
    s = dump_str(a);
    assert_string_equal(s, "[1.23e-18,0.000001,1.5e+300,-2.5e-8,100,1000000000000000.5,"
                           "3e-7]");
    free(s);
    json_decref(a);

    /* JSON.stringify("q\"\\/\b\f\n\r\t\u0001\u001f\u007f é€😀\u2028") */
    const char raw[] = "q\"\\/\b\f\n\r\t\x01\x1f\x7f \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
                       "\xe2\x80\xa8";
    json_t *str = json_stringn(raw, sizeof raw - 1);
    s = dump_str(str);
    assert_string_equal(s, "\"q\\\"\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f \xc3\xa9\xe2\x82\xac"
                           "\xf0\x9f\x98\x80\xe2\x80\xa8\"");
    free(s);
    json_decref(str);

    /* integers, literals, empty containers */
    json_t *n = json_pack("[sIIIbbn[]{}]", "n", (json_int_t)9007199254740991LL,
                          (json_int_t)-9007199254740991LL, (json_int_t)0, 1, 0);
    s = dump_str(n);
    assert_string_equal(s, "[\"n\",9007199254740991,-9007199254740991,0,true,false,null,[],{}]");
    free(s);
    json_decref(n);

    /* Deviation (json.h): integral reals >= 2^53 in exponent form, so we can read them back */
    json_t *big = json_pack("[ff]", 1e20, -9007199254740992.0);
    s = dump_str(big);
    assert_string_equal(s, "[1e+20,-9.007199254740992e+15]");
    json_t *back = pl_json_parse(s, strlen(s), NULL, NULL, 0);
    assert_non_null(back);
    assert_true(json_equal(back, big));
    json_decref(back);
    free(s);
    json_decref(big);
}

static void test_dump_reals_round_trip(void **state) {
    (void)state;
    /* every real we write reads back as the same double */
    const double vals[] = {
        0.1,      0.2,       0.3,  1.0 / 3, 2.0 / 3, 1e-300, 1e-7, 1e-6,
        123.456,  4.35,      1e21, 1e22,    5e-324,  2.5e-8, 1e15, 9007199254740990.0,
        0.000123, 12345678.9};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        for (int sign = -1; sign <= 1; sign += 2) {
            double v = vals[i] * sign;
            json_t *r = json_real(v);
            char *s = dump_str(r);
            assert_true(strtod(s, NULL) == v);
            json_t *back = pl_json_parse(s, strlen(s), NULL, NULL, 0);
            if (!back)
                fail_msg("cannot read back %s", s);
            assert_true(json_number_value(back) == v);
            json_decref(back);
            free(s);
            json_decref(r);
        }
    }
}

static void test_dump_errors(void **state) {
    (void)state;
    /* buffer max reached */
    json_t *j = json_pack("[s]", "0123456789");
    pl_buf_t b;
    pl_buf_init(&b, 8);
    assert_int_equal(pl_json_dump(j, &b), PL_ETOOBIG);
    pl_buf_dispose(&b);
    json_decref(j);

    /* nested deeper than 256 (a tree built in memory, not parsed) */
    json_t *root = json_array();
    json_t *cur = root;
    for (int i = 0; i < 300; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    pl_buf_init(&b, 0);
    assert_int_equal(pl_json_dump(root, &b), PL_EINVAL);
    pl_buf_dispose(&b);
    json_decref(root);

    pl_buf_init(&b, 0);
    assert_int_equal(pl_json_dump(NULL, &b), PL_EINVAL);
    pl_buf_dispose(&b);
}

/* A hook that replaces objects holding "secret" with the string "x". */
static int hide_secret(void *ctx, const json_t *obj, pl_buf_t *out) {
    int *calls = ctx;
    (*calls)++;
    if (!json_object_get(obj, "secret"))
        return 0;
    int rc = pl_buf_append_cstr(out, "\"x\"");
    return rc ? rc : 1;
}

static void test_dump_hook(void **state) {
    (void)state;
    json_t *j = pl_json_parse(S("[{\"secret\":1},{\"a\":{\"secret\":2}}]"), NULL, NULL, 0);
    assert_non_null(j);
    pl_buf_t b;
    pl_buf_init(&b, 0);
    int calls = 0;
    assert_int_equal(pl_json_dump_ex(j, &b, hide_secret, &calls), 0);
    assert_int_equal(calls, 3);
    assert_int_equal(b.len, strlen("[\"x\",{\"a\":\"x\"}]"));
    assert_memory_equal(b.data, "[\"x\",{\"a\":\"x\"}]", b.len);
    pl_buf_dispose(&b);
    json_decref(j);
}

/* ---- UTF-8 ---- */

typedef struct {
    const char *s;
    size_t len;
    bool valid;
} utf8_row_t;

static const utf8_row_t utf8_rows[] = {
    {S(""), true},
    {S("plain ascii, longer than eight bytes"), true},
    {"a\0b", 3, true},
    {S("\xc2\x80"), true},          /* U+0080 */
    {S("\xdf\xbf"), true},          /* U+07FF */
    {S("\xe0\xa0\x80"), true},      /* U+0800 */
    {S("\xed\x9f\xbf"), true},      /* U+D7FF */
    {S("\xee\x80\x80"), true},      /* U+E000 */
    {S("\xef\xbf\xbf"), true},      /* U+FFFF */
    {S("\xf0\x90\x80\x80"), true},  /* U+10000 */
    {S("\xf4\x8f\xbf\xbf"), true},  /* U+10FFFF */
    {S("\xc0\x80"), false},         /* overlong NUL */
    {S("\xc1\xbf"), false},         /* overlong */
    {S("\xe0\x9f\xbf"), false},     /* overlong */
    {S("\xf0\x8f\xbf\xbf"), false}, /* overlong */
    {S("\xed\xa0\x80"), false},     /* U+D800 */
    {S("\xed\xbf\xbf"), false},     /* U+DFFF */
    {S("\xf4\x90\x80\x80"), false}, /* U+110000 */
    {S("\xf5\x80\x80\x80"), false}, /* beyond */
    {S("\xff"), false},
    {S("\x80"), false},                 /* stray continuation */
    {S("\xc2"), false},                 /* truncated */
    {S("\xe2\x82"), false},             /* truncated */
    {S("\xe2\x28\xa1"), false},         /* bad continuation */
    {S("0123456789abcdef\xc3"), false}, /* after the 8-byte fast path */
    {S("0123456789abcde\xc3\xa9xyz0123456789"), true},
};

static void test_utf8_valid(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof utf8_rows / sizeof utf8_rows[0]; i++) {
        if (pl_utf8_valid(utf8_rows[i].s, utf8_rows[i].len) != utf8_rows[i].valid)
            fail_msg("utf8 row %zu", i);
    }
}

static void test_utf8_partial(void **state) {
    (void)state;
    size_t tail = 99;
    assert_true(pl_utf8_valid_partial(S("ab\xe2\x82"), &tail));
    assert_int_equal(tail, 2);
    assert_true(pl_utf8_valid_partial(S("ab\xf0\x9f\x98"), &tail));
    assert_int_equal(tail, 3);
    assert_true(pl_utf8_valid_partial(S("ab\xe2\x82\xac"), &tail));
    assert_int_equal(tail, 0);
    assert_false(pl_utf8_valid_partial(S("ab\xe2\x28"), &tail));
    assert_false(pl_utf8_valid_partial(S("\xed\xa0"), &tail)); /* a surrogate already */
    assert_false(pl_utf8_valid_partial(S("\xf4\x90"), &tail)); /* above U+10FFFF already */
    /* the tail carried into the next piece completes it */
    char joined[] = "\xe2\x82\xac ok";
    assert_true(pl_utf8_valid_partial(joined, sizeof joined - 1, &tail));
    assert_int_equal(tail, 0);
}

static void test_utf8_fast(void **state) {
    (void)state;
    size_t n = 8 << 20;
    char *s = malloc(n);
    assert_non_null(s);
    memset(s, 'a', n);
    double t0 = now_s();
    assert_true(pl_utf8_valid(s, n));
    s[n - 1] = (char)0xff;
    assert_false(pl_utf8_valid(s, n));
    assert_true(now_s() - t0 < 0.5);
    free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_depth_32_ok_33_refused),
        cmocka_unit_test(test_megabyte_of_brackets_refused_fast),
        cmocka_unit_test(test_long_strings),
        cmocka_unit_test(test_dump_matches_json_stringify),
        cmocka_unit_test(test_dump_reals_round_trip),
        cmocka_unit_test(test_dump_errors),
        cmocka_unit_test(test_dump_hook),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_utf8_partial),
        cmocka_unit_test(test_utf8_fast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
