/* Unit tests for src/core/clock.h: ISO-8601 UTC formatting with milliseconds (PROTOCOL.md
 * section 8's createdAt) and its strict parser, round trips including epoch 0 and negative
 * milliseconds, and the monotonic and wall clocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/clock.h"

#include <string.h>
#include <time.h>

/* Known instants, formatted and parsed both ways. */
static const struct {
    int64_t ms;
    const char *text;
} g_known[] = {
    {0, "1970-01-01T00:00:00.000Z"},
    {1, "1970-01-01T00:00:00.001Z"},
    {999, "1970-01-01T00:00:00.999Z"},
    {1000, "1970-01-01T00:00:01.000Z"},
    {86399999, "1970-01-01T23:59:59.999Z"},
    {86400000, "1970-01-02T00:00:00.000Z"},
    {-1, "1969-12-31T23:59:59.999Z"},
    {-999, "1969-12-31T23:59:59.001Z"},
    {-1000, "1969-12-31T23:59:59.000Z"},
    {-1001, "1969-12-31T23:59:58.999Z"},
    {-14182940000, "1969-07-20T20:17:40.000Z"},
    {-2208988800000, "1900-01-01T00:00:00.000Z"},
    {951782400000, "2000-02-29T00:00:00.000Z"}, /* leap day */
    {951868799999, "2000-02-29T23:59:59.999Z"},
    {2147483647999, "2038-01-19T03:14:07.999Z"}, /* last second of 32-bit time_t */
    {2147483648000, "2038-01-19T03:14:08.000Z"}, /* and the first after it */
    {1795754869123, "2026-11-27T04:47:49.123Z"},
    {253402300799999, "9999-12-31T23:59:59.999Z"}, /* the last instant with 4 digits */
    {-62135596800000, "0001-01-01T00:00:00.000Z"},
};

static void test_format_known(void **state) {
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < sizeof g_known / sizeof g_known[0]; i++) {
        char out[PL_ISO8601_LEN];
        memset(out, 'X', sizeof out);
        char *r = pl_iso8601(g_known[i].ms, out);
        if (r != out || memchr(out, '\0', sizeof out) == NULL ||
            strcmp(out, g_known[i].text) != 0) {
            print_error("row %zu: %lld formatted as '%.*s', want '%s'\n", i,
                        (long long)g_known[i].ms, (int)sizeof out, out, g_known[i].text);
            bad++;
        }
        if (strlen(g_known[i].text) != PL_ISO8601_LEN - 1) {
            print_error("row %zu: table text has the wrong length\n", i);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_parse_known(void **state) {
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < sizeof g_known / sizeof g_known[0]; i++) {
        int64_t ms = 42;
        if (!pl_iso8601_parse(g_known[i].text, &ms) || ms != g_known[i].ms) {
            print_error("row %zu: '%s' parsed as %lld, want %lld\n", i, g_known[i].text,
                        (long long)ms, (long long)g_known[i].ms);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_round_trip(void **state) {
    (void)state;
    /* A deterministic spread of instants from year 1 to 9999, both signs, with odd
     * milliseconds, each formatted then parsed back to the same value. */
    const int64_t lo = -62135596800000, hi = 253402300799999;
    uint64_t x = 0x9e3779b97f4a7c15u;
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t ms = lo + (int64_t)(x % (uint64_t)(hi - lo + 1));
        char out[PL_ISO8601_LEN];
        pl_iso8601(ms, out);
        int64_t back = 0;
        if (!pl_iso8601_parse(out, &back) || back != ms) {
            if (bad < 10)
                print_error("%lld -> '%s' -> %lld\n", (long long)ms, out, (long long)back);
            bad++;
        }
    }
    /* Around the epoch, every millisecond of two seconds. */
    for (int64_t ms = -1000; ms <= 1000; ms++) {
        char out[PL_ISO8601_LEN];
        pl_iso8601(ms, out);
        int64_t back = 0;
        if (!pl_iso8601_parse(out, &back) || back != ms) {
            if (bad < 10)
                print_error("%lld -> '%s' -> %lld\n", (long long)ms, out, (long long)back);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_parse_refuses(void **state) {
    (void)state;
    /* Anything that is not exactly what pl_iso8601 writes. */
    static const char *const rows[] = {
        "",
        "1970-01-01T00:00:00Z",      /* no milliseconds */
        "1970-01-01T00:00:00.00Z",   /* two digits of milliseconds */
        "1970-01-01T00:00:00.0000Z", /* four */
        "1970-01-01T00:00:00.000",   /* no Z */
        "1970-01-01T00:00:00.000z",  /* lower-case z */
        "1970-01-01T00:00:00.000+00:00",
        "1970-01-01T00:00:00.000ZZ",
        "1970-01-01 00:00:00.000Z", /* space instead of T */
        "1970-01-01t00:00:00.000Z",
        "1970/01/01T00:00:00.000Z",
        "1970-01-01T00-00-00.000Z",
        "70-01-01T00:00:00.000Z",
        "abcd-ef-ghTij:kl:mn.opqZ",
        "19700-01-01T00:00:00.000Z",
        " 1970-01-01T00:00:00.000Z",
        "1970-01-01T00:00:00.000Z ",
        "2026-13-01T00:00:00.000Z", /* month 13 */
        "2026-00-01T00:00:00.000Z", /* month 0 */
        "2026-01-32T00:00:00.000Z", /* day 32 */
        "2026-01-00T00:00:00.000Z", /* day 0 */
        "2026-02-30T00:00:00.000Z", /* 30 February */
        "2026-01-01T24:00:00.000Z", /* hour 24 */
        "2026-01-01T00:60:00.000Z", /* minute 60 */
        "2026-01-01T00:00:61.000Z", /* second 61 */
        "+026-01-01T00:00:00.000Z", /* signs are not digits */
        "-026-01-01T00:00:00.000Z",
        "2026-+1-01T00:00:00.000Z",
        "2026-01-01T00:00:00.-12Z",
        "2026-01-01T00:00:00.+12Z",
        "2026-01-01T 0:00:00.000Z",
        "2026-01-01T00:00: 0.000Z",
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t ms = 0;
        if (pl_iso8601_parse(rows[i], &ms)) {
            print_error("row %zu: '%s' accepted as %lld\n", i, rows[i], (long long)ms);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_clocks(void **state) {
    (void)state;
    /* The monotonic clock never goes back, in ms and ns, and the two agree. */
    uint64_t prev_ms = pl_mono_ms(), prev_ns = pl_mono_ns();
    for (int i = 0; i < 100000; i++) {
        uint64_t ms = pl_mono_ms(), ns = pl_mono_ns();
        assert_true(ms >= prev_ms);
        assert_true(ns >= prev_ns);
        prev_ms = ms;
        prev_ns = ns;
    }
    uint64_t ms = pl_mono_ms(), ns = pl_mono_ns();
    assert_true(ns / 1000000u >= ms && ns / 1000000u - ms <= 5);
    /* A 20 ms sleep shows up as about 20 ms. */
    struct timespec ts = {0, 20 * 1000 * 1000};
    uint64_t t0 = pl_mono_ms();
    nanosleep(&ts, NULL);
    uint64_t dt = pl_mono_ms() - t0;
    assert_true(dt >= 19 && dt < 2000);
    /* The wall clock is in milliseconds since the epoch. */
    int64_t wall = pl_wall_ms();
    int64_t now = (int64_t)time(NULL) * 1000;
    assert_true(wall > now - 5000 && wall < now + 5000);
    /* And formats as a timestamp of this century. */
    char out[PL_ISO8601_LEN];
    pl_iso8601(wall, out);
    assert_int_equal(strlen(out), PL_ISO8601_LEN - 1);
    assert_memory_equal(out, "20", 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_known), cmocka_unit_test(test_parse_known),
        cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
