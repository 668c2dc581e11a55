/* Byte buffers, slices and reference-counted blocks: see buf.h. */
#include "core/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

const char *pl_strerror(int err) {
    switch (err) {
    case 0:
        return "ok";
    case PL_ETOOBIG:
        return "over limit";
    case PL_EINVAL:
        return "malformed input";
    case PL_ENOMEM:
        return "out of memory";
    case PL_EUNAVAIL:
        return "unavailable";
    default: {
        /* uv_strerror leaks a string for codes it does not know: use the reentrant form. */
        static _Thread_local char buf[96];
        return uv_strerror_r(err, buf, sizeof buf);
    }
    }
}

pl_slice_t pl_slice_cstr(const char *s) {
    return (pl_slice_t){s, s ? strlen(s) : 0};
}

bool pl_slice_eq(pl_slice_t a, pl_slice_t b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool pl_slice_eq_cstr(pl_slice_t a, const char *s) {
    return pl_slice_eq(a, pl_slice_cstr(s));
}

bool pl_slice_case_eq(pl_slice_t a, pl_slice_t b) {
    return a.len == b.len && (a.len == 0 || strncasecmp(a.ptr, b.ptr, a.len) == 0);
}

bool pl_slice_case_eq_cstr(pl_slice_t a, const char *s) {
    return pl_slice_case_eq(a, pl_slice_cstr(s));
}

char *pl_slice_dup(pl_slice_t s) {
    char *p = malloc(s.len + 1);
    if (!p)
        return NULL;
    if (s.len)
        memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    return p;
}

bool pl_slice_to_u64(pl_slice_t s, uint64_t max, uint64_t *out) {
    if (s.len == 0 || s.len > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (c < '0' || c > '9')
            return false;
        uint64_t d = (uint64_t)(c - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

void pl_buf_init(pl_buf_t *b, size_t max) {
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max ? max : SIZE_MAX;
}

void pl_buf_dispose(pl_buf_t *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int pl_buf_reserve(pl_buf_t *b, size_t n) {
    if (n > b->max || b->len > b->max - n)
        return PL_ETOOBIG;
    size_t need = b->len + n;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max)
        cap = b->max < need ? need : b->max;
    char *p = realloc(b->data, cap);
    if (!p)
        return PL_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int pl_buf_append(pl_buf_t *b, const void *p, size_t n) {
    if (n == 0)
        return 0;
    int rc = pl_buf_reserve(b, n);
    if (rc)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int pl_buf_append_cstr(pl_buf_t *b, const char *s) {
    return pl_buf_append(b, s, strlen(s));
}

int pl_buf_vprintf(pl_buf_t *b, const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return PL_EINVAL;
    /* The text must fit under max; its terminating NUL (not part of len) may go one past. */
    if ((size_t)n > b->max || b->len > b->max - (size_t)n)
        return PL_ETOOBIG;
    size_t saved = b->max;
    if (b->max != SIZE_MAX)
        b->max++;
    int rc = pl_buf_reserve(b, (size_t)n + 1);
    b->max = saved;
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int pl_buf_printf(pl_buf_t *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = pl_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void pl_buf_consume(pl_buf_t *b, size_t n) {
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

char *pl_buf_steal(pl_buf_t *b, size_t *len) {
    char *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

pl_rcbuf_t *pl_rcbuf_new(size_t len) {
    if (len > SIZE_MAX - sizeof(pl_rcbuf_t))
        return NULL;
    pl_rcbuf_t *b = malloc(sizeof(*b) + len);
    if (!b)
        return NULL;
    b->refs = 1;
    b->len = len;
    return b;
}

pl_rcbuf_t *pl_rcbuf_from(const void *p, size_t len) {
    pl_rcbuf_t *b = pl_rcbuf_new(len);
    if (b && len)
        memcpy(b->data, p, len);
    return b;
}

void pl_rcbuf_unref(pl_rcbuf_t *b) {
    if (!b)
        return;
    if (--b->refs == 0)
        free(b);
}

void *pl_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "parley: out of memory allocating %zu bytes\n", n);
        abort();
    }
    return p;
}

void *pl_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "parley: out of memory allocating %zu x %zu bytes\n", n, size);
        abort();
    }
    return p;
}

char *pl_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = pl_xmalloc(n);
    memcpy(p, s, n);
    return p;
}

/* ---- decimal integers without printf -------------------------------------------------------- */

static size_t fmt_u64(char *out, uint64_t v) {
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

size_t pl_fmt_i64(char *out, int64_t v) {
    if (v >= 0)
        return fmt_u64(out, (uint64_t)v);
    out[0] = '-';
    return 1 + fmt_u64(out + 1, (uint64_t)0 - (uint64_t)v); /* INT64_MIN too */
}

int pl_buf_append_i64(pl_buf_t *b, int64_t v) {
    char t[21];
    return pl_buf_append(b, t, pl_fmt_i64(t, v));
}

int pl_buf_append_u64(pl_buf_t *b, uint64_t v) {
    char t[21];
    return pl_buf_append(b, t, fmt_u64(t, v));
}
