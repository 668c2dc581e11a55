/* The Origin rule of PROTOCOL.md section 2 and whitelist entry validation: see origin.h. */
#include "app/origin.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static bool is_scheme_char(char c, bool first) {
    if (isalpha((unsigned char)c))
        return true;
    return !first && (isdigit((unsigned char)c) || c == '+' || c == '-' || c == '.');
}

static bool is_host_char(char c) {
    return isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_' || c == '~';
}

bool app_origin_hostname(pl_slice_t o, char out[APP_HOST_MAX]) {
    size_t i = 0;
    while (i < o.len && is_scheme_char(o.ptr[i], i == 0))
        i++;
    if (i == 0 || o.len - i < 3 || memcmp(o.ptr + i, "://", 3) != 0)
        return false;
    i += 3;
    size_t hs, he;
    if (i < o.len && o.ptr[i] == '[') {
        hs = ++i;
        while (i < o.len && (isxdigit((unsigned char)o.ptr[i]) || o.ptr[i] == ':' ||
                             o.ptr[i] == '.'))
            i++;
        if (i >= o.len || o.ptr[i] != ']' || i == hs)
            return false;
        he = i++;
    } else {
        hs = i;
        while (i < o.len && is_host_char(o.ptr[i]))
            i++;
        he = i;
        if (he == hs)
            return false;
    }
    if (i < o.len && o.ptr[i] == ':') {
        size_t ps = ++i;
        unsigned long port = 0;
        while (i < o.len && isdigit((unsigned char)o.ptr[i]) && i - ps < 6)
            port = port * 10 + (unsigned long)(o.ptr[i++] - '0');
        if (i == ps || port > 65535)
            return false;
    }
    if (i < o.len && o.ptr[i] == '/')
        i++;
    if (i != o.len || he - hs >= APP_HOST_MAX)
        return false;
    for (size_t k = hs; k < he; k++)
        out[k - hs] = (char)tolower((unsigned char)o.ptr[k]);
    out[he - hs] = '\0';
    return true;
}

bool app_origin_host_allowed(const char *host, char *const *domains, size_t n) {
    size_t hl = strlen(host);
    for (size_t i = 0; i < n; i++) {
        const char *d = domains[i];
        if (d[0] == '*' && d[1] == '.') {
            size_t sl = strlen(d + 1); /* ".example.com" */
            if (hl > sl && strcasecmp(host + hl - sl, d + 1) == 0)
                return true;
        } else if (strcasecmp(host, d) == 0) {
            return true;
        }
    }
    return false;
}

app_origin_result_t app_origin_check(const pl_slice_t *origin, char *const *domains, size_t n) {
    if (n == 0)
        return APP_ORIGIN_NO_DOMAINS;
    if (!origin)
        return APP_ORIGIN_MISSING;
    char host[APP_HOST_MAX];
    if (!app_origin_hostname(*origin, host))
        return APP_ORIGIN_INVALID;
    return app_origin_host_allowed(host, domains, n) ? APP_ORIGIN_OK : APP_ORIGIN_NOT_WHITELISTED;
}

const char *app_origin_message(app_origin_result_t r) {
    switch (r) {
    case APP_ORIGIN_OK:
        return "";
    case APP_ORIGIN_NO_DOMAINS:
        return "No whitelisted domains";
    case APP_ORIGIN_MISSING:
        return "Missing origin";
    case APP_ORIGIN_INVALID:
        return "Invalid origin";
    case APP_ORIGIN_NOT_WHITELISTED:
        return "Origin not whitelisted";
    }
    return "Unauthorized";
}

int app_domain_normalize(const char *in, char out[APP_HOST_MAX]) {
    size_t len = strlen(in);
    size_t o = 0;
    const char *p = in;
    if (len >= 2 && p[0] == '*' && p[1] == '.') {
        out[o++] = '*';
        out[o++] = '.';
        p += 2;
    }
    size_t hl = strlen(p);
    if (hl == 0 || hl > 253)
        return PL_EINVAL;
    size_t label = 0;
    for (size_t i = 0; i < hl; i++) {
        char c = (char)tolower((unsigned char)p[i]);
        if (c == '.') {
            if (label == 0 || p[i - 1] == '-')
                return PL_EINVAL;
            label = 0;
        } else if (isalnum((unsigned char)c) || c == '-') {
            if (c == '-' && label == 0)
                return PL_EINVAL;
            if (++label > 63)
                return PL_EINVAL;
        } else {
            return PL_EINVAL;
        }
        out[o++] = c;
    }
    if (label == 0 || p[hl - 1] == '-')
        return PL_EINVAL;
    out[o] = '\0';
    return 0;
}
