/* Agent accounts: e-mail normalisation, Argon2id password hashing through libsodium
 * (crypto_pwhash_str, interactive limits: ~90 ms and 64 MiB per hash here, so callers on the
 * loop thread run it on libuv's work queue, never on the loop), and access tokens (HS256, 15
 * minutes). Any thread. */
#ifndef APP_ACCOUNTS_H
#define APP_ACCOUNTS_H

#include "app/jwt.h"
#include "core/buf.h"

#include <stdbool.h>
#include <stdint.h>

#define APP_EMAIL_MAX 254
#define APP_PASSWORD_MIN 8
#define APP_PASSWORD_MAX 256
#define APP_ACCESS_TOKEN_TTL_S (15 * 60)

/* Trims and lower-cases an address and checks its shape (one '@', non-empty local part, a
 * domain with a dot, no spaces or control characters, at most 254 bytes). 0 or PL_EINVAL. */
int app_email_normalize(const char *in, char out[APP_EMAIL_MAX + 1]);
/* Hashes password into out (crypto_pwhash_STRBYTES bytes). 0, PL_EINVAL (not 8 to 256
 * characters) or PL_ENOMEM. Slow on purpose: not on the loop thread. */
int app_password_hash(const char *password, char *out, size_t outlen);
/* Constant-time check of password against a stored hash. Slow on purpose. */
bool app_password_verify(const char *hash, const char *password);
/* Signs a 15-minute access token for the user into out (NUL-terminated). */
int app_access_token(pl_buf_t *out, const char *secret, int64_t user_id, const char *email,
                     int64_t now_ms);

#endif
