/* Unit tests for src/app/origin.h: the Origin rule of PROTOCOL.md section 2 (order of the
 * checks and their messages; hostname extraction: case-insensitive, port ignored, IPv6
 * literals, a trailing slash tolerated, userinfo, paths, queries and fragments refused since a
 * browser never sends them in Origin; `*.` wildcards matching subdomains only) and the
 * validation of whitelist entries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "app/origin.h"

#include <stdio.h>
#include <string.h>

static void test_messages(void **state) {
    (void)state;
    assert_string_equal(app_origin_message(APP_ORIGIN_OK), "");
    assert_string_equal(app_origin_message(APP_ORIGIN_NO_DOMAINS), "No whitelisted domains");
    assert_string_equal(app_origin_message(APP_ORIGIN_MISSING), "Missing origin");
    assert_string_equal(app_origin_message(APP_ORIGIN_INVALID), "Invalid origin");
    assert_string_equal(app_origin_message(APP_ORIGIN_NOT_WHITELISTED), "Origin not whitelisted");
}

static void test_hostname(void **state) {
    (void)state;
    static const struct {
        const char *origin;
        size_t len;       /* 0 = strlen */
        const char *host; /* NULL = does not parse */
    } rows[] = {
        /* good */
        {"http://localhost", 0, "localhost"},
        {"http://localhost:3000", 0, "localhost"},
        {"https://Example.com:8443", 0, "example.com"},
        {"HTTPS://WWW.EXAMPLE.COM", 0, "www.example.com"},
        {"http://a.b.example.com", 0, "a.b.example.com"},
        {"http://127.0.0.1:8080", 0, "127.0.0.1"},
        {"http://[::1]:8080", 0, "::1"},
        {"http://[::1]", 0, "::1"},
        {"http://[2001:DB8::1]", 0, "2001:db8::1"},
        {"http://localhost/", 0, "localhost"}, /* a trailing slash is tolerated */
        {"http://localhost:3000/", 0, "localhost"},
        {"http://xn--bcher-kva.example", 0, "xn--bcher-kva.example"},
        /* only len bytes are read */
        {"http://localhost:3000/path", 21, "localhost"},
        /* not URLs */
        {"null", 0, NULL},
        {"foo", 0, NULL},
        {"", 0, NULL},
        {"http://", 0, NULL},
        {"http:///", 0, NULL},
        {"http://:3000", 0, NULL},
        {"localhost", 0, NULL},
        {"localhost:3000", 0, NULL},
        {"//localhost", 0, NULL},
        {"://localhost", 0, NULL},
        {"http:/localhost", 0, NULL},
        {"http:localhost", 0, NULL},
        {"http//localhost", 0, NULL},
        /* paths, queries, fragments: a browser never sends them in Origin */
        {"http://x.com/path", 0, NULL},
        {"http://x.com//", 0, NULL},
        {"http://x.com?a=1", 0, NULL},
        {"http://x.com/?a=1", 0, NULL},
        {"http://x.com#frag", 0, NULL},
        /* userinfo: refused rather than guessing which host was meant */
        {"http://a@b.com", 0, NULL},
        {"http://user:pass@localhost", 0, NULL},
        {"http://localhost@evil.com", 0, NULL},
        /* bad ports */
        {"http://localhost:abc", 0, NULL},
        {"http://localhost:3000:4000", 0, NULL},
        {"http://localhost:-1", 0, NULL},
        /* bad IPv6 literals */
        {"http://[::1", 0, NULL},
        {"http://::1]", 0, NULL},
        {"http://[]", 0, NULL},
        /* bytes that never belong in a host */
        {"http://local host", 0, NULL},
        {"http://localhost\0.evil.com", 26, NULL},
        {"http://exa\\mple.com", 0, NULL},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char out[APP_HOST_MAX];
        memset(out, 'Z', sizeof out);
        size_t len = rows[i].len ? rows[i].len : strlen(rows[i].origin);
        bool ok = app_origin_hostname(pl_slice(rows[i].origin, len), out);
        if (ok != (rows[i].host != NULL)) {
            print_error("row %zu: '%.*s': %s\n", i, (int)len, rows[i].origin,
                        ok ? "parsed" : "refused");
            bad++;
        } else if (ok &&
                   (memchr(out, '\0', sizeof out) == NULL || strcmp(out, rows[i].host) != 0)) {
            print_error("row %zu: '%s': host '%.*s', want '%s'\n", i, rows[i].origin,
                        (int)sizeof out, out, rows[i].host);
            bad++;
        }
    }
    assert_int_equal(bad, 0);

    /* Host length: 253 characters is the longest DNS name; longer ones are refused without
     * writing past the output. */
    char origin[600], host[300];
    for (size_t n = 250; n <= 260; n++) {
        memset(host, 'a', n);
        for (size_t k = 63; k < n; k += 64)
            host[k] = '.'; /* labels of 63 */
        host[n] = '\0';
        snprintf(origin, sizeof origin, "https://%s:443", host);
        char out[APP_HOST_MAX + 8];
        memset(out, 'Z', sizeof out);
        bool ok = app_origin_hostname(pl_slice_cstr(origin), out);
        for (size_t k = APP_HOST_MAX; k < sizeof out; k++)
            assert_int_equal(out[k], 'Z');
        if (n <= 253) {
            assert_true(ok);
            assert_string_equal(out, host);
        } else {
            assert_false(ok);
        }
    }
    /* A very long value. */
    static char huge[100000];
    memcpy(huge, "http://", 7);
    memset(huge + 7, 'a', sizeof huge - 7);
    char out[APP_HOST_MAX];
    assert_false(app_origin_hostname(pl_slice(huge, sizeof huge), out));
}

static void test_host_allowed(void **state) {
    (void)state;
    char *one[] = {"localhost"};
    char *two[] = {"shop.example", "127.0.0.1"};
    char *wild[] = {"*.example.com"};
    char *mixed[] = {"a.test", "*.b.test", "c.test"};
    const struct {
        const char *host;
        char *const *domains;
        size_t n;
        bool ok;
    } rows[] = {
        {"localhost", one, 1, true},
        {"sub.localhost", one, 1, false},
        {"localhost.evil.com", one, 1, false},
        {"evillocalhost", one, 1, false},
        {"localhos", one, 1, false},
        {"", one, 1, false},
        {"shop.example", two, 2, true},
        {"127.0.0.1", two, 2, true},
        {"127.0.0.2", two, 2, false},
        {"a.shop.example", two, 2, false}, /* no wildcard, no subdomains */
        {"a.example.com", wild, 1, true},
        {"a.b.example.com", wild, 1, true},
        {"x-y.example.com", wild, 1, true},
        {"example.com", wild, 1, false}, /* the wildcard does not match its base */
        {"badexample.com", wild, 1, false},
        {"aexample.com", wild, 1, false},
        {".example.com", wild, 1, false}, /* an empty label is not a subdomain */
        {"example.com.evil.org", wild, 1, false},
        {"a.example.com.evil.org", wild, 1, false},
        {"com", wild, 1, false},
        {"c.test", mixed, 3, true},
        {"x.b.test", mixed, 3, true},
        {"b.test", mixed, 3, false},
        {"localhost", one, 0, false}, /* no entries, nothing allowed */
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        bool ok = app_origin_host_allowed(rows[i].host, rows[i].domains, rows[i].n);
        if (ok != rows[i].ok) {
            print_error("row %zu: host '%s': %s\n", i, rows[i].host, ok ? "allowed" : "refused");
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_check(void **state) {
    (void)state;
    char *local[] = {"localhost", "127.0.0.1"};
    char *wild[] = {"*.example.com"};
    char *shop[] = {"shop.example", "*.shop.example"};
    const struct {
        const char *origin; /* NULL: no Origin header */
        size_t len;         /* 0 = strlen */
        char *const *domains;
        size_t n;
        app_origin_result_t want;
    } rows[] = {
        /* Order of section 2: no domains comes before anything about the Origin. */
        {NULL, 0, local, 0, APP_ORIGIN_NO_DOMAINS},
        {"null", 0, local, 0, APP_ORIGIN_NO_DOMAINS},
        {"http://localhost", 0, local, 0, APP_ORIGIN_NO_DOMAINS},
        {NULL, 0, local, 2, APP_ORIGIN_MISSING},
        {"null", 0, local, 2, APP_ORIGIN_INVALID},
        {"foo", 0, local, 2, APP_ORIGIN_INVALID},
        {"http://", 0, local, 2, APP_ORIGIN_INVALID},
        {"http://x.com/path", 0, local, 2, APP_ORIGIN_INVALID},
        {"http://a@b.com", 0, local, 2, APP_ORIGIN_INVALID},
        {"http://a@localhost", 0, local, 2, APP_ORIGIN_INVALID},
        {"http://localhost\0.evil.com", 26, local, 2, APP_ORIGIN_INVALID},
        {"http://evil.com", 0, local, 2, APP_ORIGIN_NOT_WHITELISTED},
        {"http://localhost.evil.com", 0, local, 2, APP_ORIGIN_NOT_WHITELISTED},
        {"http://[::1]:8080", 0, local, 2, APP_ORIGIN_NOT_WHITELISTED},
        /* Allowed: case-insensitive, port ignored, trailing slash tolerated. */
        {"http://localhost", 0, local, 2, APP_ORIGIN_OK},
        {"http://localhost:3000", 0, local, 2, APP_ORIGIN_OK},
        {"http://LOCALHOST:3000", 0, local, 2, APP_ORIGIN_OK},
        {"https://LocalHost", 0, local, 2, APP_ORIGIN_OK},
        {"http://localhost/", 0, local, 2, APP_ORIGIN_OK},
        {"http://127.0.0.1:8080", 0, local, 2, APP_ORIGIN_OK},
        /* Wildcards. */
        {"https://a.example.com", 0, wild, 1, APP_ORIGIN_OK},
        {"https://a.b.example.com", 0, wild, 1, APP_ORIGIN_OK},
        {"https://A.Example.COM:444", 0, wild, 1, APP_ORIGIN_OK},
        {"https://example.com", 0, wild, 1, APP_ORIGIN_NOT_WHITELISTED},
        {"https://badexample.com", 0, wild, 1, APP_ORIGIN_NOT_WHITELISTED},
        {"https://example.com.evil.com", 0, wild, 1, APP_ORIGIN_NOT_WHITELISTED},
        {"https://shop.example", 0, shop, 2, APP_ORIGIN_OK},
        {"https://www.shop.example", 0, shop, 2, APP_ORIGIN_OK},
        {"https://shop.example.evil", 0, shop, 2, APP_ORIGIN_NOT_WHITELISTED},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        pl_slice_t o = {0};
        if (rows[i].origin)
            o = pl_slice(rows[i].origin, rows[i].len ? rows[i].len : strlen(rows[i].origin));
        app_origin_result_t r =
            app_origin_check(rows[i].origin ? &o : NULL, rows[i].domains, rows[i].n);
        if (r != rows[i].want) {
            print_error("row %zu: '%s' -> %d (%s), want %d (%s)\n", i,
                        rows[i].origin ? rows[i].origin : "(absent)", (int)r, app_origin_message(r),
                        (int)rows[i].want, app_origin_message(rows[i].want));
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_domain_normalize(void **state) {
    (void)state;
    char l63[64], l64[65], n253[254], n254[255];
    memset(l63, 'a', 63);
    l63[63] = '\0';
    memset(l64, 'a', 64);
    l64[64] = '\0';
    /* 253 characters: labels of 63 + '.' (64) three times, then 61 more. */
    memset(n253, 'b', 253);
    n253[63] = n253[127] = n253[191] = '.';
    n253[253] = '\0';
    memset(n254, 'b', 254);
    n254[63] = n254[127] = n254[191] = '.';
    n254[254] = '\0';
    static char wild253[260];
    snprintf(wild253, sizeof wild253, "*.%s", n253 + 2); /* 253 characters with the "*." */
    const struct {
        const char *in;
        const char *out; /* NULL = PL_EINVAL */
    } rows[] = {
        /* good */
        {"shop.example", "shop.example"},
        {"Shop.Example", "shop.example"},
        {"LOCALHOST", "localhost"},
        {"localhost", "localhost"},
        {"*.shop.example", "*.shop.example"},
        {"*.Shop.EXAMPLE", "*.shop.example"},
        {"127.0.0.1", "127.0.0.1"},
        {"a-b.example", "a-b.example"},
        {"xn--bcher-kva.example", "xn--bcher-kva.example"},
        {"0.example", "0.example"},
        {"a", "a"},
        {l63, l63},
        {n253, n253},
        /* malformed */
        {"", NULL},
        {"exa mple.com", NULL},
        {"http://x.com", NULL},
        {"x.com/", NULL},
        {"x.com:8080", NULL},
        {"user@x.com", NULL},
        {"*.", NULL},
        {"*", NULL},
        {"*.*.example.com", NULL},
        {"a.*.example.com", NULL},
        {"*example.com", NULL},
        {"**.example.com", NULL},
        {"a..b", NULL},
        {".example.com", NULL},
        {"example.com.", NULL},
        {"-a.example", NULL},
        {"a-.example", NULL},
        {"a.-b.example", NULL},
        {"under_score.example", NULL},
        {"exa\tmple.com", NULL},
        {"ex\xc3\xa4mple.com", NULL}, /* non-ASCII: use the xn-- form */
        {"[::1]", NULL},
        {l64, NULL},
        {n254, NULL},
        {"a.b\n", NULL},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char out[APP_HOST_MAX];
        memset(out, 'Z', sizeof out);
        int rc = app_domain_normalize(rows[i].in, out);
        if (rows[i].out == NULL) {
            if (rc != PL_EINVAL) {
                print_error("row %zu: '%s' accepted (rc %d)\n", i, rows[i].in, rc);
                bad++;
            }
        } else if (rc != 0 || memchr(out, '\0', sizeof out) == NULL ||
                   strcmp(out, rows[i].out) != 0) {
            print_error("row %zu: '%s': rc %d out '%.*s'\n", i, rows[i].in, rc, (int)sizeof out,
                        out);
            bad++;
        }
    }
    /* A "*." entry as long as the longest name. */
    char out[APP_HOST_MAX];
    assert_int_equal(strlen(wild253), 253);
    if (app_domain_normalize(wild253, out) != 0) {
        print_error("253-character wildcard refused\n");
        bad++;
    }
    assert_int_equal(bad, 0);

    /* What normalize accepts, the origin check matches. */
    char a[APP_HOST_MAX], b[APP_HOST_MAX];
    assert_int_equal(app_domain_normalize("Shop.Example", a), 0);
    assert_int_equal(app_domain_normalize("*.Shop.Example", b), 0);
    char *domains[] = {a, b};
    pl_slice_t o = PL_SLICE_LIT("https://WWW.shop.example:8443");
    assert_int_equal(app_origin_check(&o, domains, 2), APP_ORIGIN_OK);
    o = PL_SLICE_LIT("https://shop.EXAMPLE");
    assert_int_equal(app_origin_check(&o, domains, 2), APP_ORIGIN_OK);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages),         cmocka_unit_test(test_hostname),
        cmocka_unit_test(test_host_allowed),     cmocka_unit_test(test_check),
        cmocka_unit_test(test_domain_normalize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
