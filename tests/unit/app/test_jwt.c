/* Unit tests for src/app/jwt.c: HS256 tokens, and every forged or malformed shape refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "app/jwt.h"
#include "core/id.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define SECRET "test-secret-0123456789-abcdefghijklmnop"
#define NOW 1800000000LL

/* Builds header.payload.signature from raw JSON texts, signing with key (HS256). */
static void make_token(char *out, size_t n, const char *header, const char *payload,
                       const char *key) {
    char h[1024], p[1024], s[128];
    pl_b64url_encode(h, header, strlen(header));
    pl_b64url_encode(p, payload, strlen(payload));
    char signing[2100];
    snprintf(signing, sizeof signing, "%s.%s", h, p);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, strlen(key));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)signing, strlen(signing));
    crypto_auth_hmacsha256_final(&st, mac);
    pl_b64url_encode(s, mac, sizeof mac);
    snprintf(out, n, "%s.%s", signing, s);
}

static int verify(const char *tok, app_jwt_claims_t *c) {
    return app_jwt_verify(tok, strlen(tok), SECRET, NOW, c);
}

static void test_round_trip(void **state) {
    (void)state;
    app_jwt_claims_t in = {.sub = 42, .iat = NOW - 10, .exp = NOW + 900};
    snprintf(in.email, sizeof in.email, "agent@example.com");
    pl_buf_t b;
    pl_buf_init(&b, 0);
    assert_int_equal(app_jwt_sign(&b, SECRET, &in), 0);
    assert_int_equal(b.data[b.len], '\0');
    app_jwt_claims_t out;
    assert_int_equal(verify(b.data, &out), 0);
    assert_int_equal(out.sub, 42);
    assert_int_equal(out.iat, NOW - 10);
    assert_int_equal(out.exp, NOW + 900);
    assert_string_equal(out.email, "agent@example.com");
    /* The same token fails with another secret, and after it expires. */
    assert_int_equal(app_jwt_verify(b.data, b.len, "another-secret-xxxxxxxxxxxxxxxxxxxxx", NOW, &out),
                     PL_EINVAL);
    assert_int_equal(app_jwt_verify(b.data, b.len, SECRET, NOW + 900, &out), PL_EINVAL);
    /* A flipped bit anywhere is refused. */
    for (size_t i = 0; i < b.len; i += 7) {
        char saved = b.data[i];
        if (saved == '.')
            continue;
        b.data[i] = saved == 'A' ? 'B' : 'A';
        assert_int_equal(verify(b.data, &out), PL_EINVAL);
        b.data[i] = saved;
    }
    pl_buf_dispose(&b);
}

static const char *GOOD_HDR = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
static const char *GOOD_PAY = "{\"sub\":7,\"email\":\"a@b.c\",\"iat\":1799999000,\"exp\":1800000900}";

static void test_refusals(void **state) {
    (void)state;
    struct {
        const char *what, *header, *payload, *key;
    } rows[] = {
        {"control: valid", NULL, NULL, SECRET},
        {"alg none", "{\"alg\":\"none\",\"typ\":\"JWT\"}", NULL, SECRET},
        {"alg HS512", "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", NULL, SECRET},
        {"alg lower case", "{\"alg\":\"hs256\"}", NULL, SECRET},
        {"alg missing", "{\"typ\":\"JWT\"}", NULL, SECRET},
        {"alg not a string", "{\"alg\":256}", NULL, SECRET},
        {"header not an object", "[\"HS256\"]", NULL, SECRET},
        {"header duplicate alg", "{\"alg\":\"none\",\"alg\":\"HS256\"}", NULL, SECRET},
        {"wrong secret", NULL, NULL, "wrong-secret-wrong-secret-wrong-secret"},
        {"exp missing", NULL, "{\"sub\":7,\"email\":\"a@b.c\",\"iat\":1}", SECRET},
        {"expired", NULL, "{\"sub\":7,\"email\":\"a@b.c\",\"iat\":1,\"exp\":1800000000}", SECRET},
        {"exp a string", NULL, "{\"sub\":7,\"email\":\"a@b.c\",\"iat\":1,\"exp\":\"9999999999\"}",
         SECRET},
        {"exp a float", NULL, "{\"sub\":7,\"email\":\"a@b.c\",\"iat\":1,\"exp\":1900000000.5}",
         SECRET},
        {"sub a string", NULL, "{\"sub\":\"7\",\"email\":\"a@b.c\",\"iat\":1,\"exp\":1900000000}",
         SECRET},
        {"sub zero", NULL, "{\"sub\":0,\"email\":\"a@b.c\",\"iat\":1,\"exp\":1900000000}", SECRET},
        {"sub beyond 2^53", NULL,
         "{\"sub\":9007199254740992,\"email\":\"a@b.c\",\"iat\":1,\"exp\":1900000000}", SECRET},
        {"email missing", NULL, "{\"sub\":7,\"iat\":1,\"exp\":1900000000}", SECRET},
        {"payload not JSON", NULL, "not json", SECRET},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char tok[4096];
        make_token(tok, sizeof tok, rows[i].header ? rows[i].header : GOOD_HDR,
                   rows[i].payload ? rows[i].payload : GOOD_PAY, rows[i].key);
        app_jwt_claims_t c;
        int want = i == 0 ? 0 : PL_EINVAL;
        if (verify(tok, &c) != want)
            fail_msg("row '%s': expected %d", rows[i].what, want);
    }
}

static void test_malformed(void **state) {
    (void)state;
    char good[4096];
    make_token(good, sizeof good, GOOD_HDR, GOOD_PAY, SECRET);
    app_jwt_claims_t c;
    assert_int_equal(verify(good, &c), 0);
    char buf[8192];
    /* Two segments, four segments, empty segments, padding, junk characters. */
    const char *dot2 = strrchr(good, '.');
    snprintf(buf, sizeof buf, "%.*s", (int)(dot2 - good), good);
    assert_int_equal(verify(buf, &c), PL_EINVAL);
    snprintf(buf, sizeof buf, "%s.AAAA", good);
    assert_int_equal(verify(buf, &c), PL_EINVAL);
    snprintf(buf, sizeof buf, "%.*s.", (int)(dot2 - good), good);
    assert_int_equal(verify(buf, &c), PL_EINVAL);
    snprintf(buf, sizeof buf, "%s=", good);
    assert_int_equal(verify(buf, &c), PL_EINVAL);
    snprintf(buf, sizeof buf, "%s!", good);
    assert_int_equal(verify(buf, &c), PL_EINVAL);
    assert_int_equal(verify("", &c), PL_EINVAL);
    assert_int_equal(verify("..", &c), PL_EINVAL);
    assert_int_equal(verify("a.b.c", &c), PL_EINVAL);
    /* Over the length limit: refused before decoding. */
    memset(buf, 'A', sizeof buf - 1);
    buf[sizeof buf - 1] = '\0';
    buf[100] = '.';
    buf[200] = '.';
    assert_int_equal(verify(buf, &c), PL_EINVAL);
    /* An unsigned token with the signature stripped ("alg":"none" style). */
    char none[4096];
    make_token(none, sizeof none, "{\"alg\":\"none\"}", GOOD_PAY, SECRET);
    *(strrchr(none, '.') + 1) = '\0';
    assert_int_equal(verify(none, &c), PL_EINVAL);
}

int main(void) {
    if (pl_id_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
