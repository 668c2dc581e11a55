/* Agent accounts helpers: see accounts.h. */
#include "app/accounts.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

int app_email_normalize(const char *in, char out[APP_EMAIL_MAX + 1]) {
    while (*in && isspace((unsigned char)*in))
        in++;
    size_t len = strlen(in);
    while (len && isspace((unsigned char)in[len - 1]))
        len--;
    if (len == 0 || len > APP_EMAIL_MAX)
        return PL_EINVAL;
    size_t at = SIZE_MAX;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == ',' || c == ';' || c == '"')
            return PL_EINVAL;
        if (c == '@') {
            if (at != SIZE_MAX)
                return PL_EINVAL;
            at = i;
        }
        out[i] = (char)tolower(c);
    }
    out[len] = '\0';
    if (at == SIZE_MAX || at == 0 || at == len - 1)
        return PL_EINVAL;
    const char *domain = out + at + 1;
    const char *dot = strchr(domain, '.');
    if (!dot || dot == domain || domain[strlen(domain) - 1] == '.' || strstr(domain, ".."))
        return PL_EINVAL;
    return 0;
}

static size_t utf8_chars(const char *s, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

int app_password_hash(const char *password, char *out, size_t outlen) {
    size_t len = strlen(password);
    size_t chars = utf8_chars(password, len);
    if (chars < APP_PASSWORD_MIN || chars > APP_PASSWORD_MAX || outlen < crypto_pwhash_STRBYTES)
        return PL_EINVAL;
    if (crypto_pwhash_str(out, password, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return PL_ENOMEM;
    return 0;
}

bool app_password_verify(const char *hash, const char *password) {
    if (!hash || !password || strlen(password) > 4 * APP_PASSWORD_MAX)
        return false;
    return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

int app_access_token(pl_buf_t *out, const char *secret, int64_t user_id, const char *email,
                     int64_t now_ms) {
    app_jwt_claims_t c = {.sub = user_id,
                          .iat = now_ms / 1000,
                          .exp = now_ms / 1000 + APP_ACCESS_TOKEN_TTL_S,
                          .iat_ms = now_ms};
    snprintf(c.email, sizeof c.email, "%s", email);
    return app_jwt_sign(out, secret, &c);
}
