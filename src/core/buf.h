/* Byte buffers and slices.
 *
 * pl_slice_t is a borrowed view (pointer + length) used inside the server instead of
 * NUL-terminated strings. pl_buf_t is a growable byte buffer owned by its holder, with a hard
 * maximum checked before every growth. pl_rcbuf_t is an immutable, reference-counted byte block:
 * a broadcast encodes its packet once into one and every receiver's write holds a reference.
 * None of this is thread-safe; each object belongs to one thread at a time. */
#ifndef PL_BUF_H
#define PL_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL_NODISCARD __attribute__((warn_unused_result))
#define PL_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Error codes of our own; libuv's negative codes pass through unchanged next to these. */
enum {
    PL_ETOOBIG = -20001, /* input over a configured limit */
    PL_EINVAL = -20002,  /* malformed input */
    PL_ENOMEM = -20003,  /* allocation sized by input failed */
    PL_EUNAVAIL = -20004 /* a dependency (database, Redis) is not available */
};
/* Names an error code (ours or libuv's). Never NULL. */
const char *pl_strerror(int err);

typedef struct {
    const char *ptr; /* borrowed; not NUL-terminated in general */
    size_t len;      /* bytes */
} pl_slice_t;

#define PL_SLICE_LIT(s) ((pl_slice_t){(s), sizeof(s) - 1})
static inline pl_slice_t pl_slice(const char *p, size_t n) {
    return (pl_slice_t){p, n};
}
pl_slice_t pl_slice_cstr(const char *s);
bool pl_slice_eq(pl_slice_t a, pl_slice_t b);
bool pl_slice_eq_cstr(pl_slice_t a, const char *s);
/* ASCII case-insensitive comparison. */
bool pl_slice_case_eq(pl_slice_t a, pl_slice_t b);
bool pl_slice_case_eq_cstr(pl_slice_t a, const char *s);
/* Returns a malloc'd NUL-terminated copy, or NULL on allocation failure. */
char *pl_slice_dup(pl_slice_t s);
/* Parses a whole slice as a decimal unsigned integer in [0, max]; false on any other text
 * (sign, spaces, empty, overflow). */
bool pl_slice_to_u64(pl_slice_t s, uint64_t max, uint64_t *out);

typedef struct {
    char *data; /* owned; NULL until the first growth */
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated */
    size_t max; /* growth beyond this many bytes fails with PL_ETOOBIG; 0 = SIZE_MAX */
} pl_buf_t;

void pl_buf_init(pl_buf_t *b, size_t max);
void pl_buf_dispose(pl_buf_t *b);
/* Makes room for n more bytes. 0, PL_ETOOBIG (over max) or PL_ENOMEM. */
PL_NODISCARD int pl_buf_reserve(pl_buf_t *b, size_t n);
PL_NODISCARD int pl_buf_append(pl_buf_t *b, const void *p, size_t n);
PL_NODISCARD int pl_buf_append_cstr(pl_buf_t *b, const char *s);
PL_NODISCARD int pl_buf_printf(pl_buf_t *b, const char *fmt, ...) PL_PRINTF(2, 3);
/* Appends v in decimal (what printf's %lld / %llu writes), without printf: for hot paths. */
PL_NODISCARD int pl_buf_append_i64(pl_buf_t *b, int64_t v);
PL_NODISCARD int pl_buf_append_u64(pl_buf_t *b, uint64_t v);
/* Writes v in decimal at out (room for 21 bytes), NUL-terminated; returns the length. */
size_t pl_fmt_i64(char *out, int64_t v);
PL_NODISCARD int pl_buf_vprintf(pl_buf_t *b, const char *fmt, va_list ap) PL_PRINTF(2, 0);
/* Drops the first n bytes (n <= len). O(len - n). */
void pl_buf_consume(pl_buf_t *b, size_t n);
static inline void pl_buf_reset(pl_buf_t *b) {
    b->len = 0;
}
/* Hands the bytes to the caller (who frees them) and leaves b empty. */
char *pl_buf_steal(pl_buf_t *b, size_t *len);

typedef struct pl_rcbuf {
    uint32_t refs; /* references held; freed when it drops to 0 */
    size_t len;    /* bytes of data */
    char data[];   /* the bytes, immutable once shared */
} pl_rcbuf_t;

/* Allocates an rcbuf of len bytes with one reference; NULL on allocation failure. The
 * contents are written by the creator before it is shared. */
pl_rcbuf_t *pl_rcbuf_new(size_t len);
pl_rcbuf_t *pl_rcbuf_from(const void *p, size_t len);
static inline pl_rcbuf_t *pl_rcbuf_ref(pl_rcbuf_t *b) {
    b->refs++;
    return b;
}
void pl_rcbuf_unref(pl_rcbuf_t *b);

/* Allocation that aborts on failure: only for small, fixed-size allocations. */
void *pl_xmalloc(size_t n);
void *pl_xcalloc(size_t n, size_t size);
char *pl_xstrdup(const char *s);

#endif
