/* Unit tests for src/core/id.h: random ids from the CSPRNG (BAD-INPUTS.md, CVE-2017-16031:
 * distinct, at least 120 bits, URL-safe characters) and base64 in its standard (padded) and
 * URL-safe (unpadded) alphabets: RFC 4648 vectors, lengths, round trips and refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/id.h"

#include <stdlib.h>
#include <string.h>

static int setup(void **state) {
    (void)state;
    return pl_id_init();
}

static bool is_b64url_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static int cmp_str(const void *a, const void *b) {
    return strcmp((const char *)a, (const char *)b);
}

#define NIDS 20000
#define IDLEN 20 /* 15 bytes = 120 bits */

static void test_random_ids(void **state) {
    (void)state;
    assert_int_equal(pl_id_init(), 0); /* calling it again is fine */
    assert_int_equal(pl_b64url_len(15), IDLEN);
    char(*ids)[IDLEN + 1] = calloc(NIDS, sizeof *ids);
    assert_non_null(ids);
    /* Every bit position of the decoded ids takes both values across the sample. */
    unsigned char seen_one[15] = {0}, seen_zero[15] = {0};
    int bad = 0;
    for (int i = 0; i < NIDS; i++) {
        char *r = pl_random_id(ids[i], 15);
        if (r != ids[i] || strlen(ids[i]) != IDLEN) {
            bad++;
            continue;
        }
        for (int k = 0; k < IDLEN; k++)
            bad += !is_b64url_char(ids[i][k]);
        unsigned char raw[15 + 3];
        long n = pl_b64url_decode(raw, ids[i], IDLEN);
        if (n != 15) {
            bad++;
            continue;
        }
        for (int k = 0; k < 15; k++) {
            seen_one[k] |= raw[k];
            seen_zero[k] |= (unsigned char)~raw[k];
        }
    }
    assert_int_equal(bad, 0);
    for (int k = 0; k < 15; k++) {
        assert_int_equal(seen_one[k], 0xff);
        assert_int_equal(seen_zero[k], 0xff);
    }
    /* All distinct. */
    qsort(ids, NIDS, sizeof *ids, cmp_str);
    for (int i = 1; i < NIDS; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    free(ids);

    /* Longer ids: 32 bytes = 43 characters. */
    char longer[64];
    pl_random_id(longer, 32);
    assert_int_equal(strlen(longer), 43);
}

static void test_random_bytes(void **state) {
    (void)state;
    unsigned char a[64], b[64], zero[64] = {0};
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    pl_random_bytes(a, sizeof a);
    pl_random_bytes(b, sizeof b);
    assert_memory_not_equal(a, zero, sizeof a);
    assert_memory_not_equal(a, b, sizeof a);
    /* Zero bytes asked, nothing written. */
    unsigned char guard = 0x5a;
    pl_random_bytes(&guard, 0);
    assert_int_equal(guard, 0x5a);
    /* Rough uniformity over 1 MiB: each byte value within 25% of the mean. */
    enum { N = 1 << 20 };
    unsigned char *buf = malloc(N);
    assert_non_null(buf);
    pl_random_bytes(buf, N);
    unsigned counts[256] = {0};
    for (size_t i = 0; i < N; i++)
        counts[buf[i]]++;
    for (int v = 0; v < 256; v++)
        assert_in_range(counts[v], N / 256 * 3 / 4, N / 256 * 5 / 4);
    free(buf);
}

static void test_lengths(void **state) {
    (void)state;
    static const struct {
        size_t n, url, std;
    } rows[] = {
        {0, 0, 0}, {1, 2, 4},    {2, 3, 4},    {3, 4, 4},    {4, 6, 8},          {5, 7, 8},
        {6, 8, 8}, {15, 20, 20}, {16, 22, 24}, {32, 43, 44}, {1000, 1334, 1336},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (pl_b64url_len(rows[i].n) != rows[i].url || pl_b64_len(rows[i].n) != rows[i].std) {
            print_error("row %zu: n=%zu url %zu std %zu\n", i, rows[i].n, pl_b64url_len(rows[i].n),
                        pl_b64_len(rows[i].n));
            bad++;
        }
    assert_int_equal(bad, 0);
}

/* RFC 4648 section 10, plus bytes that differ between the two alphabets. */
static const struct {
    const char *bin;
    size_t n;
    const char *std, *url;
} g_vectors[] = {
    {"", 0, "", ""},
    {"f", 1, "Zg==", "Zg"},
    {"fo", 2, "Zm8=", "Zm8"},
    {"foo", 3, "Zm9v", "Zm9v"},
    {"foob", 4, "Zm9vYg==", "Zm9vYg"},
    {"fooba", 5, "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", 6, "Zm9vYmFy", "Zm9vYmFy"},
    {"\xfb\xff", 2, "+/8=", "-_8"},
    {"\xfb\xef\xbe", 3, "++++", "----"},
    {"\xff\xff\xff", 3, "////", "____"},
    {"\0\0\0", 3, "AAAA", "AAAA"},
    {"\0", 1, "AA==", "AA"},
    {"sure.", 5, "c3VyZS4=", "c3VyZS4"},
};

static void test_encode_vectors(void **state) {
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < sizeof g_vectors / sizeof g_vectors[0]; i++) {
        char out[64];
        memset(out, 'X', sizeof out);
        size_t n = pl_b64_encode(out, g_vectors[i].bin, g_vectors[i].n);
        if (n != strlen(g_vectors[i].std) || strcmp(out, g_vectors[i].std) != 0) {
            print_error("std row %zu: '%s' (%zu)\n", i, out, n);
            bad++;
        }
        memset(out, 'X', sizeof out);
        n = pl_b64url_encode(out, g_vectors[i].bin, g_vectors[i].n);
        if (n != strlen(g_vectors[i].url) || strcmp(out, g_vectors[i].url) != 0) {
            print_error("url row %zu: '%s' (%zu)\n", i, out, n);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_decode_vectors(void **state) {
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < sizeof g_vectors / sizeof g_vectors[0]; i++) {
        unsigned char out[64];
        size_t sl = strlen(g_vectors[i].std), ul = strlen(g_vectors[i].url);
        long n = pl_b64_decode(out, g_vectors[i].std, sl);
        if (n != (long)g_vectors[i].n || memcmp(out, g_vectors[i].bin, g_vectors[i].n) != 0) {
            print_error("std row %zu: '%s' decoded to %ld bytes\n", i, g_vectors[i].std, n);
            bad++;
        }
        n = pl_b64url_decode(out, g_vectors[i].url, ul);
        if (n != (long)g_vectors[i].n || memcmp(out, g_vectors[i].bin, g_vectors[i].n) != 0) {
            print_error("url row %zu: '%s' decoded to %ld bytes\n", i, g_vectors[i].url, n);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_decode_refuses(void **state) {
    (void)state;
    static const struct {
        const char *text;
        size_t len; /* 0 = strlen */
    } std_rows[] = {
        {"Zg", 0},                                        /* padding required */
        {"Zm8", 0},        {"Zg=", 0},                    /* short padding */
        {"Zg===", 0},                                     /* extra padding */
        {"Z", 0},                                         /* impossible length */
        {"Zm9v!", 0},                                     /* not in the alphabet */
        {"-_8=", 0},                                      /* URL-safe characters */
        {" Zg==", 0},                                     /* white space */
        {"Zg==\n", 0},     {"Zm 9v", 0}, {"Zg==Zg==", 0}, /* data after padding */
        {"Zm9v\0Zm9v", 9},                                /* NUL inside */
        {"Zh==", 0},                                      /* non-zero bits in the padding */
        {"Zm9=", 0},       {"=", 0},     {"====", 0},
    };
    static const struct {
        const char *text;
        size_t len;
    } url_rows[] = {
        {"Zg==", 0},             /* padding refused in the unpadded alphabet */
        {"Zm8=", 0}, {"+/8", 0}, /* standard characters */
        {"Z", 0},    {"Zm9v!", 0},      {" Zg", 0},
        {"Zg\n", 0}, {"Zm9v\0Zm9v", 9}, {"Zh", 0}, /* non-zero trailing bits */
        {"Zm9", 0},  {"Zm9vY", 0},                 /* 5 characters: 1 mod 4 */
    };
    int bad = 0;
    unsigned char out[64];
    for (size_t i = 0; i < sizeof std_rows / sizeof std_rows[0]; i++) {
        size_t len = std_rows[i].len ? std_rows[i].len : strlen(std_rows[i].text);
        long n = pl_b64_decode(out, std_rows[i].text, len);
        if (n != -1) {
            print_error("std row %zu: '%s' accepted (%ld bytes)\n", i, std_rows[i].text, n);
            bad++;
        }
    }
    for (size_t i = 0; i < sizeof url_rows / sizeof url_rows[0]; i++) {
        size_t len = url_rows[i].len ? url_rows[i].len : strlen(url_rows[i].text);
        long n = pl_b64url_decode(out, url_rows[i].text, len);
        if (n != -1) {
            print_error("url row %zu: '%s' accepted (%ld bytes)\n", i, url_rows[i].text, n);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
    /* Only n characters are read: "Zm9vYmFy" limited to 4 is "foo". */
    assert_int_equal(pl_b64_decode(out, "Zm9vYmFy", 4), 3);
    assert_memory_equal(out, "foo", 3);
    assert_int_equal(pl_b64url_decode(out, "Zm9vYmFy", 4), 3);
    /* Empty input decodes to nothing. */
    assert_int_equal(pl_b64_decode(out, "", 0), 0);
    assert_int_equal(pl_b64url_decode(out, "", 0), 0);
}

static void test_round_trips(void **state) {
    (void)state;
    unsigned char in[300], back[300 + 3];
    char text[420];
    int bad = 0;
    for (size_t n = 0; n <= sizeof in; n++) {
        pl_random_bytes(in, n);
        size_t tl = pl_b64_encode(text, in, n);
        if (tl != pl_b64_len(n) || strlen(text) != tl) {
            bad++;
            continue;
        }
        long m = pl_b64_decode(back, text, tl);
        bad += m != (long)n || memcmp(in, back, n) != 0;
        tl = pl_b64url_encode(text, in, n);
        if (tl != pl_b64url_len(n) || strlen(text) != tl) {
            bad++;
            continue;
        }
        for (size_t k = 0; k < tl; k++)
            bad += !is_b64url_char(text[k]);
        m = pl_b64url_decode(back, text, tl);
        bad += m != (long)n || memcmp(in, back, n) != 0;
    }
    assert_int_equal(bad, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_ids),     cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_lengths),        cmocka_unit_test(test_encode_vectors),
        cmocka_unit_test(test_decode_vectors), cmocka_unit_test(test_decode_refuses),
        cmocka_unit_test(test_round_trips),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
