/* Request router: see router.h. Routes are kept in registration order; matching is a linear
 * walk (O(routes x segments)), which is fine for the few dozen routes the server has. */
#include "http/router.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *method;  /* NULL = any */
    char *pattern; /* owned copy */
    http_handler_cb handler;
    void *ud;
} route_t;

struct http_router {
    route_t *routes;
    size_t n, cap;
};

http_router_t *http_router_new(void) {
    return pl_xcalloc(1, sizeof(http_router_t));
}

void http_router_free(http_router_t *r) {
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->routes[i].method);
        free(r->routes[i].pattern);
    }
    free(r->routes);
    free(r);
}

void http_router_add(http_router_t *r, const char *method, const char *pattern,
                     http_handler_cb handler, void *ud) {
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        route_t *nr = realloc(r->routes, r->cap * sizeof *nr);
        if (!nr)
            abort();
        r->routes = nr;
    }
    r->routes[r->n++] = (route_t){method ? pl_xstrdup(method) : NULL, pl_xstrdup(pattern),
                                  handler, ud};
}

/* Matches path against pattern; fills params when req is not NULL. */
static bool match(const char *pat, pl_slice_t path, http_request_t *req) {
    size_t np = 0;
    pl_slice_t names[HTTP_MAX_PARAMS], values[HTTP_MAX_PARAMS];
    const char *p = path.ptr, *end = path.ptr + path.len;
    while (*pat) {
        if (pat[0] == '*' && pat[1] == '\0') {
            p = end;
            pat++;
            break;
        }
        if (*pat == ':') {
            const char *ns = pat + 1;
            const char *ne = strchr(ns, '/');
            if (!ne)
                ne = ns + strlen(ns);
            const char *vs = p;
            while (p < end && *p != '/')
                p++;
            if (p == vs || np == HTTP_MAX_PARAMS)
                return false;
            names[np] = pl_slice(ns, (size_t)(ne - ns));
            values[np] = pl_slice(vs, (size_t)(p - vs));
            np++;
            pat = ne;
            continue;
        }
        if (p >= end || *p != *pat)
            return false;
        p++;
        pat++;
    }
    if (p != end || *pat)
        return false;
    if (req) {
        req->nparams = np;
        for (size_t i = 0; i < np; i++) {
            req->param_names[i] = names[i];
            req->param_values[i] = values[i];
        }
    }
    return true;
}

http_route_result_t http_router_match(const http_router_t *r, pl_slice_t method, pl_slice_t path,
                                      http_request_t *req, http_handler_cb *handler, void **ud,
                                      char *allow, size_t n) {
    bool path_seen = false;
    size_t alen = 0;
    if (n)
        allow[0] = '\0';
    for (size_t i = 0; i < r->n; i++) {
        const route_t *rt = &r->routes[i];
        if (!match(rt->pattern, path, NULL))
            continue;
        /* A method-less catch-all after a route that knew this path: that route's 405 wins. */
        if (!rt->method && path_seen)
            break;
        if (!rt->method || pl_slice_eq_cstr(method, rt->method) ||
            (pl_slice_eq_cstr(method, "HEAD") && !strcmp(rt->method, "GET"))) {
            match(rt->pattern, path, req);
            *handler = rt->handler;
            *ud = rt->ud;
            return HTTP_ROUTE_FOUND;
        }
        path_seen = true;
        size_t ml = strlen(rt->method);
        /* Append once, comma separated, if it fits. */
        bool dup = false;
        for (const char *a = allow; n && (a = strstr(a, rt->method)) != NULL; a += ml)
            if ((a == allow || a[-1] == ' ') && (a[ml] == ',' || a[ml] == '\0'))
                dup = true;
        if (!dup && alen + ml + 3 < n) {
            if (alen) {
                memcpy(allow + alen, ", ", 2);
                alen += 2;
            }
            memcpy(allow + alen, rt->method, ml + 1);
            alen += ml;
        }
    }
    return path_seen ? HTTP_ROUTE_BAD_METHOD : HTTP_ROUTE_NOT_FOUND;
}
