/* JSON for untrusted input, and compact output that matches JavaScript's JSON.stringify.
 *
 * pl_json_parse() is our own single-pass parser building jansson trees, with the limits
 * BAD-INPUTS.md asks for (the JSON list at its end): valid UTF-8 only, bounded nesting depth
 * (refused as soon as it passes max_depth), bounded total and per-string length, no NUL in strings, no duplicate keys, integers
 * within JavaScript's safe range. pl_json_dump() writes compact JSON the way a Socket.IO peer
 * does (JSON.stringify): no spaces, UTF-8 kept as is, '/' not escaped, numbers in JavaScript's
 * shortest round-trip form. pl_utf8_valid() is the strict UTF-8 check the WebSocket layer uses
 * for close code 1007. Everything here is pure (no I/O, no globals) and any thread may call it;
 * a json_t belongs to one thread at a time. */
#ifndef PL_JSON_H
#define PL_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

#define PL_JSON_DEFAULT_MAX_BYTES ((size_t)1 << 20)  /* 1 MiB of JSON text */
#define PL_JSON_DEFAULT_MAX_DEPTH 32                 /* nested arrays/objects */
#define PL_JSON_DEFAULT_MAX_STRING ((size_t)1 << 20) /* 1 MiB per string */
/* Largest integer JavaScript represents exactly: 2^53 - 1. */
#define PL_JSON_MAX_SAFE_INT 9007199254740991LL

typedef struct {
    size_t max_bytes;  /* length of the whole text in bytes; 0 = PL_JSON_DEFAULT_MAX_BYTES */
    size_t max_depth;  /* deepest nesting of arrays/objects ("[[1]]" is 2, "1" is 0);
                          0 = PL_JSON_DEFAULT_MAX_DEPTH */
    size_t max_string; /* bytes of any one string value or object key after unescaping;
                          0 = PL_JSON_DEFAULT_MAX_STRING */
} pl_json_limits_t;

/* Parses the len bytes at p (not NUL-terminated) as one JSON value of any kind (scalars too).
 * lim may be NULL for the defaults. Returns a new reference the caller owns (json_decref), or
 * NULL when the text is refused: over max_bytes, not valid UTF-8, nested deeper than max_depth
 * (refused as soon as the nesting passes it, with at most max_depth containers allocated), not
 * JSON, a duplicate object key, a
 * string or key containing NUL (\u0000) or longer than max_string, an integer outside
 * +-(2^53 - 1), or a lone UTF-16 surrogate escape. On refusal a short reason (no input bytes in
 * it, safe to log) is written to err when err is not NULL and errlen > 0. O(len). */
json_t *pl_json_parse(const char *p, size_t len, const pl_json_limits_t *lim, char *err,
                      size_t errlen);

/* Appends j as compact JSON to out, byte for byte what JSON.stringify writes for the same value,
 * with one exception: integral reals of magnitude 2^53 or more are written in exponent form
 * ("1e+20", not "100000000000000000000") so that pl_json_parse accepts our own output. Strings
 * are written as stored (UTF-8 kept, '/' not escaped; '"', '\\' and control characters
 * escaped as JSON.stringify does). Objects keep insertion order. j is borrowed. Returns 0,
 * PL_ETOOBIG (out->max reached; out then holds a partial value the caller discards), PL_ENOMEM,
 * or PL_EINVAL (j NULL, nested deeper than 256, e.g. a cycle). */
PL_NODISCARD int pl_json_dump(const json_t *j, pl_buf_t *out);

/* Appends the len bytes at s (UTF-8, may hold NUL) as a quoted JSON string, escaped exactly as
 * pl_json_dump escapes strings. Returns 0 or out's error. */
PL_NODISCARD int pl_json_dump_string(const char *s, size_t len, pl_buf_t *out);

/* Hook for pl_json_dump_ex: called for every JSON object before it is written. It either writes
 * a replacement for the object into out and returns 1, returns 0 to let the dumper write the
 * object normally, or returns a negative error code that stops the dump and is returned. */
typedef int (*pl_json_object_hook)(void *ctx, const json_t *object, pl_buf_t *out);

/* pl_json_dump with an object hook (hook may be NULL). Used by the Socket.IO encoder to renumber
 * binary placeholders while writing. Same returns as pl_json_dump, plus the hook's errors. */
PL_NODISCARD int pl_json_dump_ex(const json_t *j, pl_buf_t *out, pl_json_object_hook hook,
                                 void *ctx);

/* True when the len bytes at p are strict UTF-8: shortest forms only, no UTF-16 surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF. NUL bytes are valid UTF-8. Runs 8 bytes at a time
 * over ASCII. O(len). */
bool pl_utf8_valid(const char *p, size_t len);

/* For checking a message that arrives in pieces (WebSocket fragments): false if the bytes are
 * not strict UTF-8; true if they are, except possibly for an incomplete but so-far-valid
 * sequence at the very end, whose length (0..3 bytes) goes to *tail. The caller checks the next
 * piece prefixed with those tail bytes, and requires *tail == 0 at the end of the message. */
bool pl_utf8_valid_partial(const char *p, size_t len, size_t *tail);

#endif
