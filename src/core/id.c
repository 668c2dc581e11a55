/* Random ids and base64 on libsodium: see id.h. */
#include "core/id.h"

#include <sodium.h>

int pl_id_init(void) {
    return sodium_init() < 0 ? -1 : 0;
}

void pl_random_bytes(void *out, size_t n) {
    randombytes_buf(out, n);
}

size_t pl_b64url_len(size_t n) {
    return sodium_base64_encoded_len(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING) - 1;
}

size_t pl_b64_len(size_t n) {
    return sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL) - 1;
}

char *pl_random_id(char *out, size_t nbytes) {
    unsigned char raw[64];
    if (nbytes > sizeof raw)
        nbytes = sizeof raw;
    randombytes_buf(raw, nbytes);
    pl_b64url_encode(out, raw, nbytes);
    sodium_memzero(raw, sizeof raw);
    return out;
}

size_t pl_b64url_encode(char *out, const void *in, size_t n) {
    size_t len = pl_b64url_len(n);
    sodium_bin2base64(out, len + 1, in, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return len;
}

size_t pl_b64_encode(char *out, const void *in, size_t n) {
    size_t len = pl_b64_len(n);
    sodium_bin2base64(out, len + 1, in, n, sodium_base64_VARIANT_ORIGINAL);
    return len;
}

static long decode(void *out, const char *in, size_t n, int variant) {
    size_t outlen = 0;
    const char *end = NULL;
    if (sodium_base642bin(out, n / 4 * 3 + 3, in, n, NULL, &outlen, &end, variant) != 0)
        return -1;
    if (end != in + n)
        return -1;
    return (long)outlen;
}

long pl_b64url_decode(void *out, const char *in, size_t n) {
    return decode(out, in, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

long pl_b64_decode(void *out, const char *in, size_t n) {
    return decode(out, in, n, sodium_base64_VARIANT_ORIGINAL);
}
