/* The Origin rule of PROTOCOL.md section 2, shared by the Socket.IO connection check and the
 * public settings endpoint: the Origin header must be present, parse as a URL with a scheme
 * and a host, and its hostname (case-insensitive, port ignored) must equal a whitelisted
 * domain, or be a subdomain of `example.com` for an entry `*.example.com` (which does not match
 * example.com itself). Pure functions, any thread. */
#ifndef APP_ORIGIN_H
#define APP_ORIGIN_H

#include "core/buf.h"

typedef enum {
    APP_ORIGIN_OK = 0,
    APP_ORIGIN_NO_DOMAINS,      /* "No whitelisted domains" */
    APP_ORIGIN_MISSING,         /* "Missing origin" */
    APP_ORIGIN_INVALID,         /* "Invalid origin" */
    APP_ORIGIN_NOT_WHITELISTED, /* "Origin not whitelisted" */
} app_origin_result_t;

#define APP_HOST_MAX 254 /* longest DNS name + NUL */

/* Extracts the lower-cased hostname of an Origin value ("https://Example.com:8443" →
 * "example.com"; IPv6 literals keep their brackets stripped). false if it does not parse as
 * scheme://host[:port] with nothing after but an optional "/" (for example "null"). */
bool app_origin_hostname(pl_slice_t origin, char out[APP_HOST_MAX]);
/* Whether a lower-cased hostname matches one of the entries (exact or `*.` wildcard). */
bool app_origin_host_allowed(const char *host, char *const *domains, size_t ndomains);
/* The whole rule, in the order of section 2. origin is NULL when the header is absent. */
app_origin_result_t app_origin_check(const pl_slice_t *origin, char *const *domains,
                                     size_t ndomains);
/* Validates a whitelist entry and writes its canonical form (lower-cased): a hostname of
 * dot-separated labels of [a-z0-9-] (1-63 characters, no leading or trailing '-', 253 in all),
 * an IPv4 address, or `*.` followed by such a hostname. Returns 0 or PL_EINVAL. */
int app_domain_normalize(const char *in, char out[APP_HOST_MAX]);
/* The refusal message of section 2 for r ("Missing origin", ...); "" for APP_ORIGIN_OK. */
const char *app_origin_message(app_origin_result_t r);

#endif
