/* Limited JSON parsing over jansson, JSON.stringify-compatible output and strict UTF-8
 * validation: see json.h. The limits follow BAD-INPUTS.md (JSON list at the end); the output
 * format follows ECMA-262 JSON.stringify and Number::toString, which Socket.IO peers use.
 *
 * Decisions: the output is written by our own serializer rather than jansson's json_dump, because
 * jansson writes reals with 17 significant digits ("0.10000000000000001" for 0.1) and escapes
 * control characters with upper-case hex, where JSON.stringify writes "0.1" and "\u001f"; with
 * our own writer an encoded Socket.IO packet is byte-identical to socket.io-parser's. Number
 * formatting uses snprintf/strtod and so assumes the "C" numeric locale (the server never calls
 * setlocale). */
#include "core/json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Nesting allowed when dumping a tree built in memory (guards against cycles and runaway
 * recursion; parsed trees are already bounded by pl_json_limits_t.max_depth). */
#define DUMP_MAX_DEPTH 256

/* ---- UTF-8 ---- */

/* Scans s for strict UTF-8. With tail NULL an incomplete sequence at the end is invalid; with
 * tail set it is accepted and its length stored. */
static bool utf8_scan(const unsigned char *s, size_t len, size_t *tail) {
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0x80) {
            /* ASCII fast path: 8 bytes per step while no byte has its high bit set. */
            while (len - i >= 8) {
                uint64_t w;
                memcpy(&w, s + i, 8);
                if (w & UINT64_C(0x8080808080808080))
                    break;
                i += 8;
            }
            while (i < len && s[i] < 0x80)
                i++;
            continue;
        }
        unsigned c = s[i];
        size_t need;        /* continuation bytes that must follow */
        unsigned lo = 0x80; /* allowed range of the first continuation byte: */
        unsigned hi = 0xBF; /* narrower for E0 (overlong), ED (surrogates), F0, F4 */
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c == 0xE0) {
            need = 2;
            lo = 0xA0;
        } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
            need = 2;
        } else if (c == 0xED) {
            need = 2;
            hi = 0x9F;
        } else if (c == 0xF0) {
            need = 3;
            lo = 0x90;
        } else if (c >= 0xF1 && c <= 0xF3) {
            need = 3;
        } else if (c == 0xF4) {
            need = 3;
            hi = 0x8F;
        } else {
            return false; /* 80..C1 (continuation or overlong lead), F5..FF */
        }
        size_t avail = len - i - 1;
        size_t have = need <= avail ? need : avail;
        for (size_t j = 1; j <= have; j++) {
            unsigned b = s[i + j];
            if (j == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
                return false;
        }
        if (have < need) {
            if (!tail)
                return false;
            *tail = len - i;
            return true;
        }
        i += need + 1;
    }
    if (tail)
        *tail = 0;
    return true;
}

bool pl_utf8_valid(const char *p, size_t len) {
    return utf8_scan((const unsigned char *)p, len, NULL);
}

bool pl_utf8_valid_partial(const char *p, size_t len, size_t *tail) {
    size_t t = 0;
    bool ok = utf8_scan((const unsigned char *)p, len, &t);
    if (tail)
        *tail = ok ? t : 0;
    return ok;
}

/* ---- parsing ---- */

static void set_err(char *err, size_t errlen, const char *msg) {
    if (err && errlen > 0)
        snprintf(err, errlen, "%s", msg);
}

/* True when no array/object in p nests deeper than max_depth. Understands strings and their
 * escapes, so brackets inside strings do not count. Never recurses, never allocates. O(len). */
static bool depth_within(const char *p, size_t len, size_t max_depth) {
    size_t depth = 0;
    size_t i = 0;
    while (i < len) {
        char c = p[i++];
        if (c == '"') {
            /* Skip the string: find the closing quote that is not escaped. */
            while (i < len) {
                char s = p[i++];
                if (s == '\\')
                    i++; /* the escaped byte cannot end the string */
                else if (s == '"')
                    break;
            }
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return false;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return true;
}

/* Checks what jansson does not: string/key lengths and the integer range. The tree is at most
 * max_depth deep (checked before parsing), which bounds the recursion. Returns NULL or a
 * reason. */
static const char *check_tree(json_t *j, size_t max_string) {
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        size_t key_len;
        json_t *v;
        json_object_keylen_foreach(j, key, key_len, v) {
            if (key_len > max_string)
                return "object key too long";
            const char *why = check_tree(v, max_string);
            if (why)
                return why;
        }
        return NULL;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) {
            const char *why = check_tree(v, max_string);
            if (why)
                return why;
        }
        return NULL;
    }
    case JSON_STRING:
        return json_string_length(j) > max_string ? "string too long" : NULL;
    case JSON_INTEGER: {
        json_int_t v = json_integer_value(j);
        return (v > PL_JSON_MAX_SAFE_INT || v < -PL_JSON_MAX_SAFE_INT)
                   ? "integer outside +-(2^53-1)"
                   : NULL;
    }
    case JSON_REAL:
        return isfinite(json_real_value(j)) ? NULL : "non-finite number";
    default:
        return NULL;
    }
}

static const char *jansson_reason(const json_error_t *e) {
    switch (json_error_code(e)) {
    case json_error_invalid_utf8:
        return "invalid UTF-8";
    case json_error_null_character:
    case json_error_null_byte_in_key:
        return "NUL in string";
    case json_error_duplicate_key:
        return "duplicate object key";
    case json_error_numeric_overflow:
        return "number out of range";
    case json_error_premature_end_of_input:
        return "truncated JSON";
    case json_error_end_of_input_expected:
        return "trailing bytes after JSON";
    case json_error_out_of_memory:
        return "out of memory";
    case json_error_invalid_syntax:
        /* jansson reports lone surrogate escapes as syntax errors. */
    default:
        return "invalid JSON";
    }
}

json_t *pl_json_parse(const char *p, size_t len, const pl_json_limits_t *lim, char *err,
                      size_t errlen) {
    size_t max_bytes = lim && lim->max_bytes ? lim->max_bytes : PL_JSON_DEFAULT_MAX_BYTES;
    size_t max_depth = lim && lim->max_depth ? lim->max_depth : PL_JSON_DEFAULT_MAX_DEPTH;
    size_t max_string = lim && lim->max_string ? lim->max_string : PL_JSON_DEFAULT_MAX_STRING;

    if (!p && len > 0) {
        set_err(err, errlen, "invalid JSON");
        return NULL;
    }
    if (len > max_bytes) {
        set_err(err, errlen, "JSON too large");
        return NULL;
    }
    if (!pl_utf8_valid(p, len)) {
        set_err(err, errlen, "invalid UTF-8");
        return NULL;
    }
    if (!depth_within(p, len, max_depth)) {
        set_err(err, errlen, "JSON nested too deep");
        return NULL;
    }
    json_error_t e;
    json_t *j = json_loadb(p ? p : "", len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        set_err(err, errlen, jansson_reason(&e));
        return NULL;
    }
    const char *why = check_tree(j, max_string);
    if (why) {
        json_decref(j);
        set_err(err, errlen, why);
        return NULL;
    }
    return j;
}

/* ---- dumping ---- */

typedef struct {
    pl_buf_t *out;
    pl_json_object_hook hook; /* may be NULL */
    void *ctx;                /* for hook */
} dumper_t;

/* Bytes JSON.stringify writes for one byte of a UTF-8 string: 1, 2 (\n, \", \\ ...) or 6
 * (\u00XX). Built for the 128 ASCII values; bytes >= 0x80 are copied (1). */
static const unsigned char esc_len[128] = {
    6, 6, 6, 6, 6, 6, 6, 6, 2, 2, 2, 6, 2, 2, 6, 6, /* 0x00: \b \t \n \f \r are short */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* 0x10 */
    1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20: '"' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, /* 0x50: '\\' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x70 */
};

static int dump_string(pl_buf_t *out, const char *s, size_t n) {
    /* First pass sizes the output so that the second writes without further checks. */
    size_t need = 2;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t add = c < 0x80 ? esc_len[c] : 1;
        if (need > SIZE_MAX - add)
            return PL_ETOOBIG;
        need += add;
    }
    int rc = pl_buf_reserve(out, need);
    if (rc)
        return rc;
    static const char hex[] = "0123456789abcdef";
    char *w = out->data + out->len;
    *w++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80 || esc_len[c] == 1) {
            *w++ = (char)c;
            continue;
        }
        *w++ = '\\';
        switch (c) {
        case '"':
            *w++ = '"';
            break;
        case '\\':
            *w++ = '\\';
            break;
        case '\b':
            *w++ = 'b';
            break;
        case '\f':
            *w++ = 'f';
            break;
        case '\n':
            *w++ = 'n';
            break;
        case '\r':
            *w++ = 'r';
            break;
        case '\t':
            *w++ = 't';
            break;
        default:
            *w++ = 'u';
            *w++ = '0';
            *w++ = '0';
            *w++ = hex[c >> 4];
            *w++ = hex[c & 15];
            break;
        }
    }
    *w++ = '"';
    out->len = (size_t)(w - out->data);
    return 0;
}

/* Writes v as ECMAScript Number::toString does (shortest digits that read back as v), except
 * that integral values of magnitude >= 2^53 use the exponent form. buf holds >= 40 bytes.
 * Returns the length. */
static size_t format_real(char *buf, double v) {
    if (!isfinite(v)) {
        memcpy(buf, "null", 4); /* JSON.stringify(NaN) */
        return 4;
    }
    if (v == 0) {
        buf[0] = '0'; /* also -0, as JSON.stringify does */
        return 1;
    }
    /* Shortest precision that round-trips; "%.*e" is correctly rounded, so the first precision
     * that reads back as v gives the closest such decimal. */
    char e[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    /* e is "[-]d[.ddd]e(+|-)XX": split into digits and decimal exponent. */
    const char *q = e;
    bool neg = *q == '-';
    if (neg)
        q++;
    char dig[20];
    int k = 0;
    dig[k++] = *q++;
    if (*q == '.') {
        q++;
        while (*q != 'e' && k < 18)
            dig[k++] = *q++;
    }
    while (*q && *q != 'e')
        q++;
    int x = *q ? atoi(q + 1) : 0;
    while (k > 1 && dig[k - 1] == '0')
        k--;
    int n = x + 1; /* v = 0.d1..dk * 10^n */

    char *w = buf;
    if (neg)
        *w++ = '-';
    if (k <= n && n <= 21 && fabs(v) < 9007199254740992.0) {
        memcpy(w, dig, (size_t)k);
        w += k;
        for (int i = k; i < n; i++)
            *w++ = '0';
    } else if (0 < n && n <= 21 && n < k) {
        memcpy(w, dig, (size_t)n);
        w += n;
        *w++ = '.';
        memcpy(w, dig + n, (size_t)(k - n));
        w += k - n;
    } else if (-6 < n && n <= 0) {
        *w++ = '0';
        *w++ = '.';
        for (int i = 0; i < -n; i++)
            *w++ = '0';
        memcpy(w, dig, (size_t)k);
        w += k;
    } else {
        *w++ = dig[0];
        if (k > 1) {
            *w++ = '.';
            memcpy(w, dig + 1, (size_t)(k - 1));
            w += k - 1;
        }
        w += sprintf(w, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
    }
    return (size_t)(w - buf);
}

static int dump_value(dumper_t *d, const json_t *j, int depth) {
    pl_buf_t *out = d->out;
    if (!j || depth > DUMP_MAX_DEPTH)
        return PL_EINVAL;
    switch (json_typeof(j)) {
    case JSON_NULL:
        return pl_buf_append(out, "null", 4);
    case JSON_TRUE:
        return pl_buf_append(out, "true", 4);
    case JSON_FALSE:
        return pl_buf_append(out, "false", 5);
    case JSON_INTEGER: {
        char num[32];
        int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        return pl_buf_append(out, num, (size_t)n);
    }
    case JSON_REAL: {
        char num[48];
        size_t n = format_real(num, json_real_value(j));
        return pl_buf_append(out, num, n);
    }
    case JSON_STRING:
        return dump_string(out, json_string_value(j), json_string_length(j));
    case JSON_ARRAY: {
        int rc = pl_buf_append(out, "[", 1);
        size_t n = json_array_size(j);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            if (i > 0)
                rc = pl_buf_append(out, ",", 1);
            if (rc == 0)
                rc = dump_value(d, json_array_get(j, i), depth + 1);
        }
        return rc ? rc : pl_buf_append(out, "]", 1);
    }
    case JSON_OBJECT: {
        if (d->hook) {
            int h = d->hook(d->ctx, j, out);
            if (h < 0)
                return h;
            if (h > 0)
                return 0;
        }
        int rc = pl_buf_append(out, "{", 1);
        bool first = true;
        const char *key;
        size_t key_len;
        json_t *v;
        /* jansson's iteration macros take a non-const object; nothing is modified. */
        json_t *obj = (json_t *)j;
        json_object_keylen_foreach(obj, key, key_len, v) {
            if (rc)
                break;
            if (!first)
                rc = pl_buf_append(out, ",", 1);
            first = false;
            if (rc == 0)
                rc = dump_string(out, key, key_len);
            if (rc == 0)
                rc = pl_buf_append(out, ":", 1);
            if (rc == 0)
                rc = dump_value(d, v, depth + 1);
        }
        return rc ? rc : pl_buf_append(out, "}", 1);
    }
    default:
        return PL_EINVAL;
    }
}

int pl_json_dump_ex(const json_t *j, pl_buf_t *out, pl_json_object_hook hook, void *ctx) {
    dumper_t d = {.out = out, .hook = hook, .ctx = ctx};
    return dump_value(&d, j, 0);
}

int pl_json_dump(const json_t *j, pl_buf_t *out) {
    return pl_json_dump_ex(j, out, NULL, NULL);
}
