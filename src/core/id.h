/* Random identifiers from libsodium's CSPRNG (BAD-INPUTS.md: CVE-2017-16031), and base64 in
 * its standard and URL-safe unpadded alphabets. Call pl_id_init() once before any thread
 * uses these; afterwards any thread may. */
#ifndef PL_ID_H
#define PL_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 0, or -1 if libsodium cannot initialise (no entropy source). */
int pl_id_init(void);
void pl_random_bytes(void *out, size_t n);
/* Writes a random id of nbytes random bytes as unpadded base64url into out, which must hold
 * pl_b64url_len(nbytes) + 1 bytes; returns out. 15 bytes = 120 bits = 20 characters. */
char *pl_random_id(char *out, size_t nbytes);

/* Length of the unpadded base64url encoding of n bytes. */
size_t pl_b64url_len(size_t n);
/* Length of the padded standard base64 encoding of n bytes. */
size_t pl_b64_len(size_t n);
/* Encode into out (must hold the length above + 1); NUL-terminates; returns the length. */
size_t pl_b64url_encode(char *out, const void *in, size_t n);
size_t pl_b64_encode(char *out, const void *in, size_t n);
/* Decode; out must hold n * 3 / 4 + 3 bytes. Returns the decoded length, or -1 if the text is
 * not exactly valid in that alphabet (url: no padding; std: padding required). */
long pl_b64url_decode(void *out, const char *in, size_t n);
long pl_b64_decode(void *out, const char *in, size_t n);

#endif
