/* libFuzzer driver for src/core/json.c. Feeds the input to pl_json_parse (default limits and
 * tight ones) and checks properties that must hold for every input: whatever is accepted dumps,
 * and the dump reads back as an equal value (numbers compared by value, since 5.0 is written
 * "5" as JSON.stringify does); pl_utf8_valid agrees with a slow reference decoder written from
 * the definition; pl_utf8_valid_partial agrees with pl_utf8_valid. pl_json_parse is also run
 * differentially against a reference built the way it used to work (jansson's json_loadb after a
 * depth pre-scan, limits checked on the finished tree): both must accept the same texts, build
 * json_equal trees and give the same reason. The one known difference is allowed: jansson drops
 * a raw NUL byte that ends a number or a literal ("[1\0]" loads as [1]); we refuse raw NUL.
 * Any disagreement aborts. */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Strict UTF-8 from the definition (RFC 3629): decode each sequence, then check its range. */
static bool utf8_reference(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint32_t c = s[i];
        size_t len;
        uint32_t min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, min = 0x10000, c &= 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            c = c << 6 | (s[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

static bool same_value(const json_t *a, const json_t *b) {
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b))
            return json_integer_value(a) == json_integer_value(b);
        return json_number_value(a) == json_number_value(b);
    }
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++) {
            if (!same_value(json_array_get(a, i), json_array_get(b, i)))
                return false;
        }
        return true;
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)a, key, v) {
            json_t *w = json_object_get(b, key);
            if (!w || !same_value(v, w))
                return false;
        }
        return true;
    }
    default:
        return true; /* true, false, null */
    }
}

/* ---- reference: pl_json_parse as it was, over jansson's parser ---- */

static bool ref_depth_within(const char *p, size_t len, size_t max_depth) {
    size_t depth = 0;
    size_t i = 0;
    while (i < len) {
        char c = p[i++];
        if (c == '"') {
            while (i < len) {
                char c2 = p[i++];
                if (c2 == '\\')
                    i++;
                else if (c2 == '"')
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

static const char *ref_check_tree(json_t *j, size_t max_string) {
    const char *why = NULL;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        size_t key_len;
        json_t *v;
        json_object_keylen_foreach(j, key, key_len, v) {
            if (key_len > max_string)
                return "object key too long";
            if ((why = ref_check_tree(v, max_string)) != NULL)
                return why;
        }
        return NULL;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) {
            if ((why = ref_check_tree(v, max_string)) != NULL)
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
    default:
        return NULL;
    }
}

static const char *ref_reason(const json_error_t *e) {
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
    default:
        return "invalid JSON";
    }
}

/* Returns the tree or NULL with *why set. */
static json_t *ref_parse(const char *p, size_t len, const pl_json_limits_t *lim,
                         const char **why) {
    size_t max_bytes = lim->max_bytes ? lim->max_bytes : PL_JSON_DEFAULT_MAX_BYTES;
    size_t max_depth = lim->max_depth ? lim->max_depth : PL_JSON_DEFAULT_MAX_DEPTH;
    size_t max_string = lim->max_string ? lim->max_string : PL_JSON_DEFAULT_MAX_STRING;
    if (len > max_bytes) {
        *why = "JSON too large";
        return NULL;
    }
    if (!utf8_reference((const uint8_t *)p, len)) {
        *why = "invalid UTF-8";
        return NULL;
    }
    if (!ref_depth_within(p, len, max_depth)) {
        *why = "JSON nested too deep";
        return NULL;
    }
    json_error_t e;
    json_t *j = json_loadb(len ? p : "", len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        *why = ref_reason(&e);
        return NULL;
    }
    if ((*why = ref_check_tree(j, max_string)) != NULL) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Ours against the reference for one input and one set of limits. */
static void check_against_reference(const char *p, size_t size, const pl_json_limits_t *lim,
                                     const json_t *ours, const char *our_err) {
    const char *why = NULL;
    json_t *ref = ref_parse(p, size, lim, &why);
    bool has_nul = size > 0 && memchr(p, '\0', size) != NULL;
    if (has_nul) {
        /* jansson may accept what we refuse here, never the other way round */
        if (ours && (!ref || !json_equal(ours, ref)))
            abort();
    } else if (!ours != !ref) {
        abort();
    } else if (ours && !json_equal(ours, ref)) {
        abort();
    } else if (!ours && strcmp(our_err, why) != 0) {
        abort();
    }
    json_decref(ref);
}

static void check_round_trip(const json_t *j, const pl_json_limits_t *lim) {
    pl_buf_t out;
    pl_buf_init(&out, 0);
    if (pl_json_dump(j, &out) != 0)
        abort();
    /* the dump may be longer than the input ("1e2" -> "100"): allow its own length */
    pl_json_limits_t again = *lim;
    again.max_bytes = out.len ? out.len : 1;
    char err[64];
    json_t *back = pl_json_parse(out.data, out.len, &again, err, sizeof err);
    if (!back || !same_value(j, back))
        abort();
    /* and the second dump is identical to the first */
    pl_buf_t out2;
    pl_buf_init(&out2, 0);
    if (pl_json_dump(back, &out2) != 0 || out2.len != out.len ||
        memcmp(out.data, out2.data, out.len) != 0)
        abort();
    pl_buf_dispose(&out2);
    json_decref(back);
    pl_buf_dispose(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = (const char *)data;

    bool valid = pl_utf8_valid(p, size);
    if (valid != utf8_reference(data, size))
        abort();
    size_t tail = 0;
    bool partial = pl_utf8_valid_partial(p, size, &tail);
    if (valid && (!partial || tail != 0))
        abort();
    if (partial && tail > 3)
        abort();
    if (partial && !valid && (tail == 0 || !utf8_reference(data, size - tail)))
        abort();

    const pl_json_limits_t limits[] = {
        {0, 0, 0},    /* defaults */
        {4096, 4, 16} /* tight: depth and string limits get hit */
    };
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        char err[64] = "";
        json_t *j = pl_json_parse(p, size, &limits[i], err, sizeof err);
        check_against_reference(p, size, &limits[i], j, err);
        if (!j)
            continue;
        if (!valid)
            abort(); /* accepted bytes must be UTF-8 */
        check_round_trip(j, &limits[i]);
        json_decref(j);
    }
    return 0;
}
