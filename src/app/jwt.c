/* HS256 JWT signing and verification: see jwt.h. */
#include "app/jwt.h"

#include "core/id.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JS_MAX_SAFE_INT 9007199254740991LL

static void hmac(unsigned char mac[crypto_auth_hmacsha256_BYTES], const char *secret,
                 const char *data, size_t len) {
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)data, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
}

static int append_b64url(pl_buf_t *out, const void *p, size_t n) {
    size_t el = pl_b64url_len(n);
    int rc = pl_buf_reserve(out, el + 1);
    if (rc)
        return rc;
    pl_b64url_encode(out->data + out->len, p, n);
    out->len += el;
    return 0;
}

int app_jwt_sign(pl_buf_t *out, const char *secret, const app_jwt_claims_t *c) {
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    json_t *pl = json_pack("{s:I, s:s, s:I, s:I}", "sub", (json_int_t)c->sub, "email", c->email,
                           "iat", (json_int_t)c->iat, "exp", (json_int_t)c->exp);
    if (pl && c->iat_ms)
        json_object_set_new(pl, "iatMs", json_integer((json_int_t)c->iat_ms));
    char *payload = pl ? json_dumps(pl, JSON_COMPACT) : NULL;
    json_decref(pl);
    if (!payload)
        return PL_ENOMEM;
    size_t start = out->len;
    int rc = append_b64url(out, header, sizeof header - 1);
    if (!rc)
        rc = pl_buf_append(out, ".", 1);
    if (!rc)
        rc = append_b64url(out, payload, strlen(payload));
    free(payload);
    if (rc)
        return rc;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    hmac(mac, secret, out->data + start, out->len - start);
    rc = pl_buf_append(out, ".", 1);
    if (!rc)
        rc = append_b64url(out, mac, sizeof mac);
    if (!rc)
        rc = pl_buf_append(out, "", 1);
    if (!rc)
        out->len--; /* keep the NUL outside len */
    return rc;
}

/* Decodes one base64url segment into a NUL-terminated malloc'd buffer. */
static char *decode_segment(const char *p, size_t n, size_t *outlen) {
    char *buf = malloc(n / 4 * 3 + 4);
    if (!buf)
        return NULL;
    long r = pl_b64url_decode(buf, p, n);
    if (r < 0) {
        free(buf);
        return NULL;
    }
    buf[r] = '\0';
    *outlen = (size_t)r;
    return buf;
}

static json_t *parse_object(const char *p, size_t n) {
    json_t *j = json_loadb(p, n, JSON_REJECT_DUPLICATES, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static bool get_int(json_t *obj, const char *key, int64_t min, int64_t *out) {
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        return false;
    json_int_t i = json_integer_value(v);
    if (i < min || i > JS_MAX_SAFE_INT)
        return false;
    *out = (int64_t)i;
    return true;
}

int app_jwt_verify(const char *token, size_t len, const char *secret, int64_t now,
                   app_jwt_claims_t *claims) {
    if (len == 0 || len > APP_JWT_MAX_LEN || !secret || !secret[0])
        return PL_EINVAL;
    const char *d1 = memchr(token, '.', len);
    if (!d1)
        return PL_EINVAL;
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token));
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
        return PL_EINVAL;
    size_t hlen = (size_t)(d1 - token), plen = (size_t)(d2 - d1 - 1),
           slen = len - (size_t)(d2 + 1 - token);
    if (hlen == 0 || plen == 0 || slen == 0)
        return PL_EINVAL;

    int rc = PL_EINVAL;
    size_t n;
    char *hdr = NULL, *pay = NULL, *sig = NULL;
    json_t *hj = NULL, *pj = NULL;

    /* Header first: the algorithm decides everything else. */
    hdr = decode_segment(token, hlen, &n);
    if (!hdr || !(hj = parse_object(hdr, n)))
        goto out;
    json_t *alg = json_object_get(hj, "alg");
    if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0)
        goto out;
    /* Signature over "header.payload", compared in constant time. */
    sig = decode_segment(d2 + 1, slen, &n);
    if (!sig || n != crypto_auth_hmacsha256_BYTES)
        goto out;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    hmac(mac, secret, token, (size_t)(d2 - token));
    if (sodium_memcmp(mac, sig, sizeof mac) != 0)
        goto out;
    /* Claims. */
    pay = decode_segment(d1 + 1, plen, &n);
    if (!pay || !(pj = parse_object(pay, n)))
        goto out;
    json_t *email = json_object_get(pj, "email");
    if (!get_int(pj, "sub", 1, &claims->sub) || !get_int(pj, "iat", 0, &claims->iat) ||
        !get_int(pj, "exp", 0, &claims->exp) || !json_is_string(email) ||
        json_string_length(email) >= sizeof claims->email)
        goto out;
    if (claims->exp <= now)
        goto out;
    claims->iat_ms = 0;
    if (json_object_get(pj, "iatMs") && !get_int(pj, "iatMs", 0, &claims->iat_ms))
        goto out;
    snprintf(claims->email, sizeof claims->email, "%s", json_string_value(email));
    rc = 0;
out:
    json_decref(hj);
    json_decref(pj);
    free(hdr);
    free(pay);
    free(sig);
    return rc;
}
