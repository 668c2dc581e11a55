/* Static files (the widget bundle, the dashboard) served from memory.
 *
 * At start-up the web root is read once into memory (bounded: 64 MiB in all, 16 MiB a file,
 * 10,000 files), so serving never touches the disk on the loop thread; a restart picks up new
 * files. Symbolic links are followed only when their target stays inside the root; names
 * starting with '.' are skipped. Each file gets a strong ETag (a hash of its bytes), a
 * Content-Type by extension and a Cache-Control (`no-cache` for HTML, `public, max-age=300`
 * otherwise). Requests are matched against the exact stored names after percent-decoding: a
 * `..` segment, a backslash or an encoded slash never matches (404); a NUL byte is 400. */
#ifndef HTTP_STATIC_H
#define HTTP_STATIC_H

#include "http/server.h"

typedef struct http_static http_static_t;

/* Loads root. A missing root gives an empty set (logged), not an error. Main thread, before
 * serving (this reads the disk). */
http_static_t *http_static_new(const char *root);
void http_static_free(http_static_t *st);
size_t http_static_count(const http_static_t *st);
/* Handler: mount it last as a catch-all route (method NULL, pattern slash-star). Unknown
 * names are 404 whatever the method; known files answer GET and HEAD, other methods 405. */
void http_static_handler(http_request_t *req, void *st);

#endif
