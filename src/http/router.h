/* Request router: method + path pattern → handler.
 *
 * Patterns are literal segments, `:name` segments (match one non-empty segment, available
 * through http_request_param) and a final `*` (matches the rest of the path, possibly empty).
 * Routes are tried in the order added; a method-less route (method NULL) that comes after a
 * route matching the path with another method does not hide that route's 405. A path that matches some route but not its method gets
 * 405 with an Allow header; a path that matches none gets 404. Loop thread only. */
#ifndef HTTP_ROUTER_H
#define HTTP_ROUTER_H

#include "http/server.h"

http_router_t *http_router_new(void);
void http_router_free(http_router_t *r);
/* method: "GET", "POST", ... or NULL for any method. pattern and method are copied. */
void http_router_add(http_router_t *r, const char *method, const char *pattern,
                     http_handler_cb handler, void *ud);

/* Result of matching a request (used by the server, and by unit tests). */
typedef enum { HTTP_ROUTE_FOUND, HTTP_ROUTE_NOT_FOUND, HTTP_ROUTE_BAD_METHOD } http_route_result_t;
/* Looks path up for method; on FOUND fills handler/ud and the params of req (may be NULL for
 * tests: then params go nowhere). On BAD_METHOD writes the allowed methods ("GET, POST") into
 * allow (size n). */
http_route_result_t http_router_match(const http_router_t *r, pl_slice_t method, pl_slice_t path,
                                      http_request_t *req, http_handler_cb *handler, void **ud,
                                      char *allow, size_t n);

#endif
