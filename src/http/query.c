/* Percent-decoding and query strings: see query.h. Linear in the input. */
#include "http/query.h"

#include <string.h>

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int http_percent_decode(pl_buf_t *out, pl_slice_t in, bool plus_is_space) {
    int rc = pl_buf_reserve(out, in.len);
    if (rc)
        return rc;
    for (size_t i = 0; i < in.len; i++) {
        char c = in.ptr[i];
        if (c == '%') {
            if (i + 2 >= in.len)
                return PL_EINVAL;
            int h = hexval(in.ptr[i + 1]), l = hexval(in.ptr[i + 2]);
            if (h < 0 || l < 0)
                return PL_EINVAL;
            c = (char)(h * 16 + l);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        out->data[out->len++] = c;
    }
    return 0;
}

int http_query_each(pl_slice_t query, int (*cb)(void *ud, pl_slice_t key, pl_slice_t value),
                    void *ud) {
    const char *p = query.ptr, *end = query.ptr + query.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        if (pe > p) {
            const char *eq = memchr(p, '=', (size_t)(pe - p));
            pl_slice_t k = pl_slice(p, (size_t)((eq ? eq : pe) - p));
            pl_slice_t v = eq ? pl_slice(eq + 1, (size_t)(pe - eq - 1)) : pl_slice(pe, 0);
            int rc = cb(ud, k, v);
            if (rc)
                return rc;
        }
        p = amp ? amp + 1 : end;
    }
    return 0;
}

typedef struct {
    const char *key;
    pl_buf_t *out;
    int result;
} get_ctx_t;

static int get_cb(void *ud, pl_slice_t k, pl_slice_t v) {
    get_ctx_t *g = ud;
    pl_buf_t kd;
    pl_buf_init(&kd, 256);
    int rc = http_percent_decode(&kd, k, true);
    bool eq = rc == 0 && kd.len == strlen(g->key) && memcmp(kd.data, g->key, kd.len) == 0;
    pl_buf_dispose(&kd);
    if (!eq)
        return 0;
    size_t before = g->out->len;
    rc = http_percent_decode(g->out, v, true);
    if (rc) {
        g->out->len = before;
        g->result = rc;
        return 1;
    }
    g->result = 1;
    return 1;
}

int http_query_get(pl_slice_t query, const char *key, pl_buf_t *out) {
    get_ctx_t g = {key, out, 0};
    http_query_each(query, get_cb, &g);
    return g.result;
}
