/* HS256 JSON Web Tokens (RFC 7519 / RFC 7515) for agents, on libsodium's HMAC-SHA256.
 *
 * Only what Parley issues is accepted: a header whose `alg` is exactly "HS256" (`none`, HS512,
 * RS256... are refused, whatever the signature), three base64url segments without padding, a
 * payload object with an integer `sub` (the user id, 1..2^53-1), a string `email`, integer
 * `iat` and `exp` seconds, and `exp` in the future. The signature is compared in constant
 * time. Pure functions, any thread. */
#ifndef APP_JWT_H
#define APP_JWT_H

#include "core/buf.h"

#include <stdint.h>

#define APP_JWT_MAX_LEN 4096 /* longer tokens are refused before any decoding */

typedef struct {
    int64_t sub;     /* user id */
    char email[256]; /* as signed */
    int64_t iat;     /* issued at, seconds since the epoch */
    int64_t exp;     /* expires at, seconds since the epoch */
    int64_t iat_ms;  /* private claim "iatMs": issue time in ms (0 = absent); revocation by
                        tokensValidFrom compares at this precision, so a token issued in the
                        same second as a logout-all is still told apart */
} app_jwt_claims_t;

/* Signs the claims with secret; the token (NUL-terminated) is appended to out. 0 or an error of
 * the buffer. */
int app_jwt_sign(pl_buf_t *out, const char *secret, const app_jwt_claims_t *claims);

/* Verifies token (len bytes) with secret at time now (seconds). 0 and *claims filled, or
 * PL_EINVAL for anything wrong (malformed, wrong algorithm, bad signature, expired, missing
 * claim). */
int app_jwt_verify(const char *token, size_t len, const char *secret, int64_t now,
                   app_jwt_claims_t *claims);

#endif
