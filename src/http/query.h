/* Query strings and percent-decoding (application/x-www-form-urlencoded rules: `+` is a space
 * in query strings). Pure functions, any thread. */
#ifndef HTTP_QUERY_H
#define HTTP_QUERY_H

#include "core/buf.h"

/* Decodes %XX escapes (and `+` as space when plus_is_space) into out, appending. Returns 0, or
 * PL_EINVAL on a malformed escape (`%`, `%4`, `%zz`), or the buffer's error. Decoded NUL bytes
 * are kept; callers that need C strings must refuse them. */
int http_percent_decode(pl_buf_t *out, pl_slice_t in, bool plus_is_space);

/* Finds the first `key=value` pair whose decoded key equals key and appends its decoded value to
 * out. Returns 1 if found, 0 if not, PL_EINVAL if the matching pair is malformed. A key with
 * no `=` has an empty value. */
int http_query_get(pl_slice_t query, const char *key, pl_buf_t *out);

/* Iterates the pairs: calls cb with the raw (undecoded) key and value of each; stops early
 * when cb returns non-zero, and returns that value. */
int http_query_each(pl_slice_t query, int (*cb)(void *ud, pl_slice_t key, pl_slice_t value),
                    void *ud);

#endif
