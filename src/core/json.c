/* Limited JSON parsing into jansson trees, JSON.stringify-compatible output and strict UTF-8
 * validation: see json.h. The limits follow BAD-INPUTS.md (JSON list at the end); the output
 * format follows ECMA-262 JSON.stringify and Number::toString, which Socket.IO peers use.
 *
 * Decisions: the parser is our own single-pass recursive descent that builds the jansson tree
 * directly, because jansson's byte-at-a-time lexer dominated the server's CPU on large messages
 * (a 70 kB string event: about 10.3 million instructions to parse with json_loadb, 0.22 million
 * with this parser). String bodies are scanned 16 bytes at a time and copied as runs; a string
 * without escapes is copied once, straight from the text into the tree.
 *
 * Decisions: the output is written by our own serializer rather than jansson's json_dump, because
 * jansson writes reals with 17 significant digits ("0.10000000000000001" for 0.1) and escapes
 * control characters with upper-case hex, where JSON.stringify writes "0.1" and "\u001f"; with
 * our own writer an encoded Socket.IO packet is byte-identical to socket.io-parser's. Number
 * formatting uses snprintf/strtod and so assumes the "C" numeric locale (the server never calls
 * setlocale). */
#include "core/json.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

/* Our own recursive-descent parser builds the jansson tree directly. It accepts exactly what
 * jansson 2.14's json_loadb(JSON_DECODE_ANY | JSON_REJECT_DUPLICATES) accepts plus our limits,
 * and reports the same first error: it is organised like jansson's (a lexer that reads one token
 * ahead, errors found while reading a token win over grammar errors, and a grammar error on the
 * end-of-input token means "truncated"). One deliberate difference: jansson's reader drops a
 * raw NUL byte that ends a number or literal ("[1\0]" loads as [1]); we refuse any raw NUL.
 * The limits that the old implementation checked on the finished tree (string and key length,
 * integer range) are noted while parsing and reported only when the text is otherwise valid,
 * so the reason given is the same as before. */

/* jansson refuses more than this many nested values (arrays, objects and the scalar inside). */
#define JANSSON_MAX_VALUE_DEPTH 2048

enum {
    TK_INVALID = -1,
    TK_EOF = 0, /* single-byte tokens ('[', ':', ...) use the byte itself */
    TK_STRING = 256,
    TK_INTEGER,
    TK_REAL,
    TK_TRUE,
    TK_FALSE,
    TK_NULL,
};

static const char ERR_INVALID[] = "invalid JSON";
static const char ERR_TRUNCATED[] = "truncated JSON";
static const char ERR_RANGE[] = "number out of range";
static const char ERR_NUL[] = "NUL in string";
static const char ERR_NOMEM[] = "out of memory";
static const char ERR_DEEP[] = "JSON nested too deep";

typedef struct {
    const char *p; /* the text */
    size_t len;
    size_t pos; /* next byte to read */
    int token;  /* current token */
    /* TK_STRING: the unescaped bytes, in the text itself when the string has no escapes,
     * otherwise in scratch (valid until the next token). */
    const char *str;
    size_t str_len;
    bool str_nul; /* contains \u0000 */
    json_int_t integer;
    double real;
    char *scratch; /* decoded strings with escapes; grows, freed at the end */
    size_t scratch_cap;
    size_t max_depth;
    size_t max_string;
    size_t depth;       /* open arrays/objects */
    size_t value_depth; /* values being parsed, as jansson counts them */
    const char *err;    /* first error; parsing stops */
    const char *late;   /* first limit error of the finished tree (string length, integers) */
} parser_t;

static void set_err(char *err, size_t errlen, const char *msg) {
    if (err && errlen > 0)
        snprintf(err, errlen, "%s", msg);
}

static void fail(parser_t *ps, const char *msg) {
    if (!ps->err)
        ps->err = msg;
}

/* A grammar error on the current token. */
static void fail_syntax(parser_t *ps) {
    fail(ps, ps->token == TK_EOF ? ERR_TRUNCATED : ERR_INVALID);
}

static void note_late(parser_t *ps, const char *msg) {
    if (!ps->late)
        ps->late = msg;
}

/* Makes room for n bytes in scratch. n is bounded by the text length. */
static bool scratch_reserve(parser_t *ps, size_t n) {
    if (n <= ps->scratch_cap)
        return true;
    size_t cap = ps->scratch_cap ? ps->scratch_cap : 256;
    while (cap < n)
        cap = cap > SIZE_MAX / 2 ? n : cap * 2;
    char *q = realloc(ps->scratch, cap);
    if (!q)
        return false;
    ps->scratch = q;
    ps->scratch_cap = cap;
    return true;
}

/* Index of the first byte at or after i that is '"', '\\' or a control character (< 0x20),
 * or len when there is none. Sixteen bytes per step with SSE2 (every x86-64), else eight. */
static size_t scan_plain(const unsigned char *s, size_t i, size_t len) {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i bslash = _mm_set1_epi8('\\');
    const __m128i ctl = _mm_set1_epi8(0x1F);
    while (len - i >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash));
        hit = _mm_or_si128(hit, _mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v)); /* v <= 0x1F */
        unsigned mask = (unsigned)_mm_movemask_epi8(hit);
        if (mask)
            return i + (size_t)__builtin_ctz(mask);
        i += 16;
    }
#endif
    const uint64_t ones = UINT64_C(0x0101010101010101);
    const uint64_t highs = UINT64_C(0x8080808080808080);
    while (len - i >= 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        uint64_t q = w ^ (ones * '"');
        uint64_t b = w ^ (ones * '\\');
        uint64_t hit = ((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w);
        if (hit & highs)
            break;
        i += 8;
    }
    while (i < len && s[i] != '"' && s[i] != '\\' && s[i] >= 0x20)
        i++;
    return i;
}

static int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The four hex digits at s[i..i+3] (i + 4 <= len checked here), or -1. */
static long hex4(const unsigned char *s, size_t i, size_t len) {
    if (len - i < 4)
        return -1;
    long v = 0;
    for (size_t k = 0; k < 4; k++) {
        int h = hex_value(s[i + k]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

/* After a bad surrogate escape (which jansson finds only after checking the whole string's
 * syntax): the string's reason is "truncated" when it runs to the end of the text without
 * another syntax error, else "invalid". i is just past the bad escape. */
static void fail_string_rest(parser_t *ps, const unsigned char *s, size_t i) {
    size_t len = ps->len;
    for (;;) {
        i = scan_plain(s, i, len);
        if (i >= len) {
            fail(ps, ERR_TRUNCATED);
            return;
        }
        if (s[i] == '"' || s[i] < 0x20) {
            fail(ps, ERR_INVALID);
            return;
        }
        /* backslash */
        if (i + 1 >= len) {
            fail(ps, ERR_INVALID);
            return;
        }
        unsigned char e = s[i + 1];
        if (e == 'u') {
            if (hex4(s, i + 2, len) < 0) {
                fail(ps, ERR_INVALID);
                return;
            }
            i += 6;
        } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                   e == 'r' || e == 't') {
            i += 2;
        } else {
            fail(ps, ERR_INVALID);
            return;
        }
    }
}

/* Writes code point c (valid, not a surrogate) as UTF-8 at w; returns the length. */
static size_t utf8_put(char *w, unsigned long c) {
    if (c < 0x80) {
        w[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        w[0] = (char)(0xC0 | c >> 6);
        w[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        w[0] = (char)(0xE0 | c >> 12);
        w[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        w[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    w[0] = (char)(0xF0 | c >> 18);
    w[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    w[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    w[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* Reads a string token; pos is just past the opening quote. Sets TK_STRING or TK_INVALID. */
static void lex_string(parser_t *ps) {
    const unsigned char *s = (const unsigned char *)ps->p;
    size_t len = ps->len;
    size_t i = scan_plain(s, ps->pos, len);
    ps->token = TK_INVALID;
    ps->str_nul = false;
    if (i < len && s[i] == '"') { /* no escapes: the value is the text itself */
        ps->str = ps->p + ps->pos;
        ps->str_len = i - ps->pos;
        ps->pos = i + 1;
        ps->token = TK_STRING;
        return;
    }
    size_t run = ps->pos; /* start of the bytes not yet copied */
    size_t n = 0;         /* bytes in scratch */
    for (;;) {
        if (i >= len) {
            fail(ps, ERR_TRUNCATED);
            return;
        }
        unsigned char c = s[i];
        if (c < 0x20) {
            fail(ps, ERR_INVALID);
            return;
        }
        /* copy the plain run; then at most 4 bytes for an escape */
        if (!scratch_reserve(ps, n + (i - run) + 4)) {
            fail(ps, ERR_NOMEM);
            return;
        }
        memcpy(ps->scratch + n, s + run, i - run);
        n += i - run;
        if (c == '"')
            break;
        /* backslash */
        if (i + 1 >= len) {
            fail(ps, ERR_INVALID);
            return;
        }
        unsigned char e = s[i + 1];
        char out;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            out = (char)e;
            break;
        case 'b':
            out = '\b';
            break;
        case 'f':
            out = '\f';
            break;
        case 'n':
            out = '\n';
            break;
        case 'r':
            out = '\r';
            break;
        case 't':
            out = '\t';
            break;
        case 'u': {
            long v = hex4(s, i + 2, len);
            if (v < 0) {
                fail(ps, ERR_INVALID);
                return;
            }
            i += 6;
            unsigned long cp = (unsigned long)v;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (len - i >= 2 && s[i] == '\\' && s[i + 1] == 'u') {
                    long lo = hex4(s, i + 2, len);
                    if (lo < 0) {
                        fail(ps, ERR_INVALID);
                        return;
                    }
                    i += 6;
                    if (lo < 0xDC00 || lo > 0xDFFF) {
                        fail_string_rest(ps, s, i);
                        return;
                    }
                    cp = ((cp - 0xD800) << 10) + ((unsigned long)lo - 0xDC00) + 0x10000;
                } else {
                    fail_string_rest(ps, s, i);
                    return;
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                fail_string_rest(ps, s, i);
                return;
            }
            if (cp == 0)
                ps->str_nul = true;
            n += utf8_put(ps->scratch + n, cp);
            run = i;
            i = scan_plain(s, i, len);
            continue;
        }
        default:
            fail(ps, ERR_INVALID);
            return;
        }
        ps->scratch[n++] = out;
        i += 2;
        run = i;
        i = scan_plain(s, i, len);
    }
    ps->str = ps->scratch;
    ps->str_len = n;
    ps->pos = i + 1;
    ps->token = TK_STRING;
}

static bool is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}

/* Reads a number token (RFC 8259 grammar); pos is at its first byte ('-' or a digit). */
static void lex_number(parser_t *ps) {
    const unsigned char *s = (const unsigned char *)ps->p;
    size_t len = ps->len;
    size_t start = ps->pos;
    size_t i = start;
    bool neg = s[i] == '-';
    ps->token = TK_INVALID;
    if (neg)
        i++;
    if (i >= len || !is_digit(s[i]))
        return;
    uint64_t v = 0;
    bool big = false; /* more than fits in 64 bits */
    if (s[i] == '0') {
        i++;
        if (i < len && is_digit(s[i]))
            return; /* leading zero */
    } else {
        while (i < len && is_digit(s[i])) {
            unsigned d = s[i] - '0';
            if (v > (UINT64_MAX - d) / 10)
                big = true;
            else
                v = v * 10 + d;
            i++;
        }
    }
    if (i >= len || (s[i] != '.' && s[i] != 'e' && s[i] != 'E')) {
        /* the range strtoll would accept */
        if (big || (!neg && v > (uint64_t)INT64_MAX) ||
            (neg && v > (uint64_t)INT64_MAX + 1)) {
            fail(ps, ERR_RANGE);
            return;
        }
        ps->integer = neg ? (json_int_t)(0 - v) : (json_int_t)v;
        ps->pos = i;
        ps->token = TK_INTEGER;
        return;
    }
    if (s[i] == '.') {
        i++;
        if (i >= len || !is_digit(s[i]))
            return;
        while (i < len && is_digit(s[i]))
            i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= len || !is_digit(s[i]))
            return;
        while (i < len && is_digit(s[i]))
            i++;
    }
    /* strtod needs a terminated copy; the token is at most the text's length */
    size_t n = i - start;
    char small[64];
    char *copy = small;
    if (n >= sizeof small) {
        copy = malloc(n + 1);
        if (!copy) {
            fail(ps, ERR_NOMEM);
            return;
        }
    }
    memcpy(copy, s + start, n);
    copy[n] = '\0';
    errno = 0;
    double d = strtod(copy, NULL);
    bool overflow = (d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE;
    if (copy != small)
        free(copy);
    if (overflow || !isfinite(d)) {
        fail(ps, ERR_RANGE);
        return;
    }
    ps->real = d;
    ps->pos = i;
    ps->token = TK_REAL;
}

static bool is_alpha(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Reads the next token into ps->token. */
static void lex(parser_t *ps) {
    const char *s = ps->p;
    size_t len = ps->len;
    size_t i = ps->pos;
    while (i < len && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t'))
        i++;
    ps->pos = i;
    if (i >= len) {
        ps->token = TK_EOF;
        return;
    }
    unsigned char c = (unsigned char)s[i];
    switch (c) {
    case '{':
    case '}':
    case '[':
    case ']':
    case ':':
    case ',':
        ps->token = c;
        ps->pos = i + 1;
        return;
    case '"':
        ps->pos = i + 1;
        lex_string(ps);
        return;
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        lex_number(ps);
        return;
    default:
        break;
    }
    if (!is_alpha(c)) {
        ps->token = TK_INVALID;
        return;
    }
    size_t e = i;
    while (e < len && is_alpha((unsigned char)s[e]))
        e++;
    size_t n = e - i;
    ps->pos = e;
    if (n == 4 && memcmp(s + i, "true", 4) == 0)
        ps->token = TK_TRUE;
    else if (n == 5 && memcmp(s + i, "false", 5) == 0)
        ps->token = TK_FALSE;
    else if (n == 4 && memcmp(s + i, "null", 4) == 0)
        ps->token = TK_NULL;
    else
        ps->token = TK_INVALID;
}

static json_t *parse_value(parser_t *ps);

/* The current token is '['. */
static json_t *parse_array(parser_t *ps) {
    if (++ps->depth > ps->max_depth) {
        fail(ps, ERR_DEEP);
        return NULL;
    }
    json_t *arr = json_array();
    if (!arr) {
        fail(ps, ERR_NOMEM);
        return NULL;
    }
    lex(ps);
    if (ps->token != ']') {
        while (ps->token != TK_EOF) {
            json_t *elem = parse_value(ps);
            if (!elem)
                goto drop_array;
            if (json_array_append_new(arr, elem)) {
                fail(ps, ERR_NOMEM);
                goto drop_array;
            }
            lex(ps);
            if (ps->token != ',')
                break;
            lex(ps);
        }
        if (ps->token != ']') {
            fail_syntax(ps);
            goto drop_array;
        }
    }
    ps->depth--;
    return arr;

drop_array:
    json_decref(arr);
    return NULL;
}

/* The current token is '{'. */
static json_t *parse_object(parser_t *ps) {
    if (++ps->depth > ps->max_depth) {
        fail(ps, ERR_DEEP);
        return NULL;
    }
    json_t *obj = json_object();
    if (!obj) {
        fail(ps, ERR_NOMEM);
        return NULL;
    }
    lex(ps);
    if (ps->token != '}') {
        for (;;) {
            if (ps->token != TK_STRING) {
                fail_syntax(ps);
                goto drop_object;
            }
            if (ps->str_nul) {
                fail(ps, ERR_NUL);
                goto drop_object;
            }
            /* A key decoded into scratch must outlive the value's tokens: copy it. */
            const char *key = ps->str;
            size_t key_len = ps->str_len;
            char small[64];
            char *owned = NULL;
            if (key == ps->scratch) {
                if (key_len <= sizeof small) {
                    memcpy(small, key, key_len);
                    key = small;
                } else {
                    owned = malloc(key_len);
                    if (!owned) {
                        fail(ps, ERR_NOMEM);
                        goto drop_object;
                    }
                    memcpy(owned, key, key_len);
                    key = owned;
                }
            }
            if (json_object_getn(obj, key, key_len)) {
                free(owned);
                fail(ps, "duplicate object key");
                goto drop_object;
            }
            if (key_len > ps->max_string)
                note_late(ps, "object key too long");
            lex(ps);
            if (ps->token != ':') {
                free(owned);
                fail_syntax(ps);
                goto drop_object;
            }
            lex(ps);
            json_t *v = parse_value(ps);
            if (!v) {
                free(owned);
                goto drop_object;
            }
            int rc = json_object_setn_new_nocheck(obj, key, key_len, v);
            free(owned);
            if (rc) {
                fail(ps, ERR_NOMEM);
                goto drop_object;
            }
            lex(ps);
            if (ps->token != ',')
                break;
            lex(ps);
        }
        if (ps->token != '}') {
            fail_syntax(ps);
            goto drop_object;
        }
    }
    ps->depth--;
    return obj;

drop_object:
    json_decref(obj);
    return NULL;
}

/* Builds the value that starts with the current token. */
static json_t *parse_value(parser_t *ps) {
    if (++ps->value_depth > JANSSON_MAX_VALUE_DEPTH) {
        fail(ps, ERR_INVALID);
        return NULL;
    }
    json_t *j;
    switch (ps->token) {
    case TK_STRING:
        if (ps->str_nul) {
            fail(ps, ERR_NUL);
            return NULL;
        }
        if (ps->str_len > ps->max_string)
            note_late(ps, "string too long");
        j = json_stringn_nocheck(ps->str, ps->str_len);
        break;
    case TK_INTEGER:
        if (ps->integer > PL_JSON_MAX_SAFE_INT || ps->integer < -PL_JSON_MAX_SAFE_INT)
            note_late(ps, "integer outside +-(2^53-1)");
        j = json_integer(ps->integer);
        break;
    case TK_REAL:
        j = json_real(ps->real);
        break;
    case TK_TRUE:
        j = json_true();
        break;
    case TK_FALSE:
        j = json_false();
        break;
    case TK_NULL:
        j = json_null();
        break;
    case '[':
        j = parse_array(ps);
        break;
    case '{':
        j = parse_object(ps);
        break;
    default:
        fail_syntax(ps);
        return NULL;
    }
    if (!j) {
        fail(ps, ERR_NOMEM); /* no effect when the nested parse already failed */
        return NULL;
    }
    ps->value_depth--;
    return j;
}

/* True when no array/object in p nests deeper than max_depth. Understands strings and their
 * escapes, so brackets inside strings do not count. Never recurses, never allocates. O(len).
 * Run only on refused text, so that a text nested too deep is reported as such wherever its
 * other faults are (the parser itself stops at max_depth). */
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

json_t *pl_json_parse(const char *p, size_t len, const pl_json_limits_t *lim, char *err,
                      size_t errlen) {
    size_t max_bytes = lim && lim->max_bytes ? lim->max_bytes : PL_JSON_DEFAULT_MAX_BYTES;
    size_t max_depth = lim && lim->max_depth ? lim->max_depth : PL_JSON_DEFAULT_MAX_DEPTH;
    size_t max_string = lim && lim->max_string ? lim->max_string : PL_JSON_DEFAULT_MAX_STRING;

    if (!p && len > 0) {
        set_err(err, errlen, ERR_INVALID);
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
    parser_t ps = {
        .p = p ? p : "",
        .len = len,
        .max_depth = max_depth,
        .max_string = max_string,
    };
    lex(&ps);
    json_t *j = parse_value(&ps);
    if (j) {
        lex(&ps);
        if (ps.token != TK_EOF)
            fail(&ps, "trailing bytes after JSON");
    }
    free(ps.scratch);
    const char *why = ps.err ? ps.err : ps.late;
    if (!why)
        return j;
    json_decref(j);
    if (ps.err && !depth_within(ps.p, len, max_depth))
        why = ERR_DEEP;
    set_err(err, errlen, why);
    return NULL;
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

static int dump_string(pl_buf_t *out, const char *s, size_t n);

int pl_json_dump_string(const char *s, size_t len, pl_buf_t *out) {
    return dump_string(out, s, len);
}

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
