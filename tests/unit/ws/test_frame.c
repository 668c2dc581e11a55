/* Unit tests for src/ws/frame.h: the frame reader fed from bytes (good rows, boundary rows,
 * malformed rows with the close code each must produce), fragmentation, masking, limits, every
 * valid and invalid close code, feeding in every possible split, the memory the reader keeps
 * between frames; the header writer; the close payload; the accept key with RFC 6455's sample;
 * and the header-value helpers (token lists, Sec-WebSocket-Protocol in linear time). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ws/frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- building client frames ----------------------------------------------------------------- */

typedef struct {
    uint8_t b[300000];
    size_t n;
} bytes_t;

/* Appends one client frame. mask: 1 masks with a fixed key, 0 leaves it unmasked. lenform:
 * 0 minimal, 16 or 64 forces that extended length. */
static void add_frame(bytes_t *o, bool fin, unsigned rsv, unsigned op, bool mask, const void *p,
                      size_t n, int lenform) {
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    o->b[o->n++] = (uint8_t)((fin ? 0x80 : 0) | (rsv << 4) | op);
    uint8_t m = mask ? 0x80 : 0;
    if (lenform == 64 || n > 0xffff) {
        o->b[o->n++] = m | 127;
        for (int i = 7; i >= 0; i--)
            o->b[o->n++] = (uint8_t)((uint64_t)n >> (8 * i));
    } else if (lenform == 16 || n >= 126) {
        o->b[o->n++] = m | 126;
        o->b[o->n++] = (uint8_t)(n >> 8);
        o->b[o->n++] = (uint8_t)n;
    } else {
        o->b[o->n++] = (uint8_t)(m | n);
    }
    if (mask) {
        memcpy(o->b + o->n, key, 4);
        o->n += 4;
    }
    for (size_t i = 0; i < n; i++)
        o->b[o->n++] = (uint8_t)(((const uint8_t *)p)[i] ^ (mask ? key[i % 4] : 0));
}

static void add(bytes_t *o, unsigned op, const char *s) {
    add_frame(o, true, 0, op, true, s, strlen(s), 0);
}

/* ---- recording events ----------------------------------------------------------------------- */

typedef struct {
    char log[4096]; /* events as text: "T:hello|B:3|P:x|C:1000:bye|" */
    size_t len;
    int stop_after; /* return 1 from the n-th event (0 = never) */
    int events;
} rec_t;

static int note(rec_t *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->log + r->len, sizeof r->log - r->len, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof r->log - r->len)
        r->len += (size_t)n;
    r->events++;
    return r->stop_after && r->events == r->stop_after ? 1 : 0;
}

static int on_message(void *ud, bool binary, const char *data, size_t len) {
    if (binary || len > 64)
        return note(ud, "%c:%zu|", binary ? 'B' : 'T', len);
    return note(ud, "T:%.*s|", (int)len, data);
}

static int on_ping(void *ud, const char *data, size_t len) {
    return note(ud, "P:%.*s|", (int)len, data);
}

static int on_pong(void *ud, const char *data, size_t len) {
    return note(ud, "O:%.*s|", (int)len, data);
}

static int on_close(void *ud, unsigned code, const char *reason, size_t len) {
    return note(ud, "C:%u:%.*s|", code, (int)len, reason);
}

static const ws_reader_cbs_t g_cbs = {on_message, on_ping, on_pong, on_close};

/* Feeds all bytes at once; returns the feed result and fills rec. */
static int run(const bytes_t *in, uint32_t max, rec_t *rec, ws_reader_t *r) {
    memset(rec, 0, sizeof *rec);
    ws_reader_init(r, max, &g_cbs, rec);
    return ws_reader_feed(r, (const char *)in->b, in->n);
}

/* ---- good and boundary rows ----------------------------------------------------------------- */

static void test_reader_good_rows(void **state) {
    (void)state;
    static bytes_t in;
    int bad = 0;
    size_t nexp = 0;
    ws_reader_t r;
    rec_t rec;

    /* Each row builds its input bytes, then CHECK feeds them at once and compares the events;
     * after whole frames the reader must hold nothing. */
#define CHECK(label, expected_log)                                                                 \
    do {                                                                                           \
        int rc_ = run(&in, 0, &rec, &r);                                                           \
        if (rc_ != 0 || strcmp(rec.log, expected_log) != 0) {                                      \
            print_error("row %s: rc=%d log=%s want=%s\n", label, rc_, rec.log, expected_log);      \
            bad++;                                                                                 \
        }                                                                                          \
        if (!ws_reader_idle(&r)) {                                                                 \
            print_error("row %s: reader not idle after whole frames\n", label);                    \
            bad++;                                                                                 \
        }                                                                                          \
        ws_reader_dispose(&r);                                                                     \
        in.n = 0;                                                                                  \
        nexp++;                                                                                    \
    } while (0)

    in.n = 0;
    add(&in, WS_OP_TEXT, "hello");
    CHECK("text", "T:hello|");
    add(&in, WS_OP_TEXT, "");
    CHECK("empty text", "T:|");
    add_frame(&in, true, 0, WS_OP_BINARY, true, "\x00\x01\x02", 3, 0);
    CHECK("binary", "B:3|");
    add_frame(&in, true, 0, WS_OP_BINARY, true, "", 0, 0);
    CHECK("empty binary", "B:0|");
    {
        char big[125];
        memset(big, 'a', sizeof big);
        add_frame(&in, true, 0, WS_OP_TEXT, true, big, 125, 0);
        CHECK("125 bytes (7-bit length)", "T:125|");
    }
    {
        static char big[70000];
        memset(big, 'b', sizeof big);
        in.n = 0;
        add_frame(&in, true, 0, WS_OP_TEXT, true, big, 126, 0);
        CHECK("126 bytes (16-bit length)", "T:126|");
        add_frame(&in, true, 0, WS_OP_TEXT, true, big, 65535, 0);
        CHECK("65535 bytes", "T:65535|");
        add_frame(&in, true, 0, WS_OP_TEXT, true, big, 65536, 0);
        CHECK("65536 bytes (64-bit length)", "T:65536|");
    }
    add(&in, WS_OP_TEXT, "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
    CHECK("UTF-8 text", "T:h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80|");
    add_frame(&in, false, 0, WS_OP_TEXT, true, "hel", 3, 0);
    add_frame(&in, false, 0, WS_OP_CONT, true, "", 0, 0);
    add(&in, WS_OP_PING, "mid");
    add_frame(&in, true, 0, WS_OP_CONT, true, "lo", 2, 0);
    CHECK("fragments with a ping between", "P:mid|T:hello|");
    add_frame(&in, false, 0, WS_OP_TEXT, true, "\xe2\x82", 2, 0);
    add_frame(&in, true, 0, WS_OP_CONT, true, "\xac", 1, 0);
    CHECK("UTF-8 split across fragments", "T:\xe2\x82\xac|");
    add_frame(&in, false, 0, WS_OP_BINARY, true, "ab", 2, 0);
    add_frame(&in, true, 0, WS_OP_CONT, true, "c", 1, 0);
    add(&in, WS_OP_TEXT, "next");
    CHECK("binary fragments then text", "B:3|T:next|");
    add(&in, WS_OP_PING, "");
    add(&in, WS_OP_PONG, "x");
    CHECK("ping and pong", "P:|O:x|");
    add_frame(&in, true, 0, WS_OP_CLOSE, true, "", 0, 0);
    add(&in, WS_OP_TEXT, "ignored");
    CHECK("empty close, bytes after it ignored", "C:1005:|");
    add_frame(&in, true, 0, WS_OP_CLOSE, true,
              "\x03\xe8"
              "bye",
              5, 0);
    CHECK("close 1000 with reason", "C:1000:bye|");
    assert_int_equal(bad, 0);
    assert_true(nexp > 10);
}

/* ---- malformed rows -------------------------------------------------------------------------- */

static void test_reader_malformed_rows(void **state) {
    (void)state;
    static bytes_t in;
    ws_reader_t r;
    rec_t rec;
    int bad = 0;
    char big[200];
    memset(big, 'p', sizeof big);
#define FAIL(label, max, code, expected_log)                                                       \
    do {                                                                                           \
        memset(&rec, 0, sizeof rec);                                                               \
        ws_reader_init(&r, max, &g_cbs, &rec);                                                     \
        int rc_ = ws_reader_feed(&r, (const char *)in.b, in.n);                                    \
        if (rc_ != WS_READ_FAILED || r.error_code != (code) || strcmp(rec.log, expected_log)) {    \
            print_error("row %s: rc=%d code=%u log=%s\n", label, rc_, r.error_code, rec.log);      \
            bad++;                                                                                 \
        }                                                                                          \
        /* After a failure, more input is ignored. */                                              \
        int events_ = rec.events;                                                                  \
        if (ws_reader_feed(&r, "\x81\x80\0\0\0\0", 6) != 0 || rec.events != events_) {             \
            print_error("row %s: input after the failure was not ignored\n", label);               \
            bad++;                                                                                 \
        }                                                                                          \
        ws_reader_dispose(&r);                                                                     \
        in.n = 0;                                                                                  \
    } while (0)

    in.n = 0;
    add_frame(&in, true, 0, WS_OP_TEXT, false, "hi", 2, 0);
    FAIL("unmasked", 0, 1002, "");
    for (unsigned rsv = 1; rsv < 8; rsv++) {
        add_frame(&in, true, rsv, WS_OP_TEXT, true, "hi", 2, 0);
        FAIL("rsv", 0, 1002, "");
    }
    for (unsigned op = 3; op <= 0xF; op++) {
        if (op >= 8 && op <= 0xA)
            continue;
        add_frame(&in, true, 0, op, true, "x", 1, 0);
        FAIL("reserved opcode", 0, 1002, "");
    }
    add_frame(&in, true, 0, WS_OP_PING, true, big, 126, 0);
    FAIL("ping of 126", 0, 1002, "");
    add_frame(&in, false, 0, WS_OP_PING, true, "x", 1, 0);
    FAIL("fragmented ping", 0, 1002, "");
    add_frame(&in, false, 0, WS_OP_CLOSE, true, "", 0, 0);
    FAIL("fragmented close", 0, 1002, "");
    add_frame(&in, true, 0, WS_OP_CONT, true, "x", 1, 0);
    FAIL("continuation first", 0, 1002, "");
    add_frame(&in, false, 0, WS_OP_TEXT, true, "a", 1, 0);
    add(&in, WS_OP_TEXT, "b");
    FAIL("text inside a fragmented message", 0, 1002, "");
    add_frame(&in, true, 0, WS_OP_TEXT, true, "abc", 3, 16);
    FAIL("non-minimal 16-bit length", 0, 1002, "");
    add_frame(&in, true, 0, WS_OP_TEXT, true, big, 130, 64);
    FAIL("non-minimal 64-bit length", 0, 1002, "");
    {
        static const uint8_t top[] = {0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4, 'x'};
        memcpy(in.b, top, sizeof top);
        in.n = sizeof top;
        FAIL("64-bit length with the top bit", 0, 1002, "");
    }
    add_frame(&in, true, 0, WS_OP_TEXT, true, "\xc3\x28", 2, 0);
    FAIL("invalid UTF-8", 0, 1007, "");
    add_frame(&in, true, 0, WS_OP_TEXT, true, "\xed\xa0\x80", 3, 0);
    FAIL("surrogate", 0, 1007, "");
    add_frame(&in, true, 0, WS_OP_TEXT, true, "\xf4\x90\x80\x80", 4, 0);
    FAIL("above U+10FFFF", 0, 1007, "");
    add_frame(&in, false, 0, WS_OP_TEXT, true, "\xe2\x82", 2, 0);
    add_frame(&in, true, 0, WS_OP_CONT, true, "", 0, 0);
    FAIL("message ends inside a character", 0, 1007, "");
    add(&in, WS_OP_TEXT, "ok");
    add_frame(&in, true, 0, WS_OP_TEXT, true, big, 11, 0);
    FAIL("over the limit after a good message", 10, 1009, "T:ok|");
    add_frame(&in, false, 0, WS_OP_BINARY, true, big, 6, 0);
    add_frame(&in, true, 0, WS_OP_CONT, true, big, 5, 0);
    FAIL("fragments over the limit", 10, 1009, "");
    add_frame(&in, true, 0, WS_OP_CLOSE, true, "\x03", 1, 0);
    FAIL("close with 1 byte", 0, 1002, "");
    add_frame(&in, true, 0, WS_OP_CLOSE, true, "\x03\xe8\xff", 3, 0);
    FAIL("close reason not UTF-8", 0, 1007, "");
    assert_int_equal(bad, 0);
}

static void test_close_codes(void **state) {
    (void)state;
    int bad = 0;
    for (unsigned code = 0; code < 70000; code++) {
        bool want = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
                    (code >= 3000 && code <= 4999);
        if (ws_close_code_valid(code) != want) {
            print_error("code %u\n", code);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
    /* Through the reader: every code in a close frame. */
    static const unsigned codes[] = {0,    999,  1000, 1001, 1002, 1003, 1004, 1005,
                                     1006, 1007, 1008, 1009, 1010, 1011, 1012, 1015,
                                     2999, 3000, 4000, 4999, 5000, 65535};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        static bytes_t in;
        in.n = 0;
        uint8_t p[2] = {(uint8_t)(codes[i] >> 8), (uint8_t)codes[i]};
        add_frame(&in, true, 0, WS_OP_CLOSE, true, p, 2, 0);
        ws_reader_t r;
        rec_t rec;
        int rc = run(&in, 0, &rec, &r);
        if (ws_close_code_valid(codes[i])) {
            char want[32];
            snprintf(want, sizeof want, "C:%u:|", codes[i]);
            assert_int_equal(rc, 0);
            assert_string_equal(rec.log, want);
        } else {
            assert_int_equal(rc, WS_READ_FAILED);
            assert_int_equal(r.error_code, 1002);
        }
        ws_reader_dispose(&r);
    }
}

/* Every split point of a stream of several frames gives the same events. */
static void test_reader_every_split(void **state) {
    (void)state;
    static bytes_t in;
    in.n = 0;
    char mid[300];
    memset(mid, 'm', sizeof mid);
    add(&in, WS_OP_TEXT, "one");
    add_frame(&in, false, 0, WS_OP_TEXT, true, mid, 200, 0);
    add(&in, WS_OP_PING, "pp");
    add_frame(&in, true, 0, WS_OP_CONT, true, mid, 100, 0);
    add_frame(&in, true, 0, WS_OP_BINARY, true, "\x01\x02", 2, 0);
    add_frame(&in, true, 0, WS_OP_CLOSE, true, "\x03\xe9", 2, 0);
    const char *want = "T:one|P:pp|T:300|B:2|C:1001:|";
    for (size_t a = 0; a <= in.n; a++) {
        for (size_t b = a; b <= in.n; b += 7) {
            ws_reader_t r;
            rec_t rec;
            memset(&rec, 0, sizeof rec);
            ws_reader_init(&r, 0, &g_cbs, &rec);
            int rc = ws_reader_feed(&r, (const char *)in.b, a);
            rc |= ws_reader_feed(&r, (const char *)in.b + a, b - a);
            rc |= ws_reader_feed(&r, (const char *)in.b + b, in.n - b);
            if (rc != 0 || strcmp(rec.log, want) != 0) {
                print_error("split %zu/%zu: rc=%d log=%s\n", a, b, rc, rec.log);
                fail();
            }
            ws_reader_dispose(&r);
        }
    }
    /* One byte at a time. */
    ws_reader_t r;
    rec_t rec;
    memset(&rec, 0, sizeof rec);
    ws_reader_init(&r, 0, &g_cbs, &rec);
    for (size_t i = 0; i < in.n; i++)
        assert_int_equal(ws_reader_feed(&r, (const char *)in.b + i, 1), 0);
    assert_string_equal(rec.log, want);
    ws_reader_dispose(&r);
}

/* Between frames nothing is held; mid-frame the wslay context is; a callback can stop. */
static void test_reader_memory_and_stop(void **state) {
    (void)state;
    static bytes_t in;
    in.n = 0;
    add(&in, WS_OP_TEXT, "a");
    add(&in, WS_OP_TEXT, "b");
    add(&in, WS_OP_TEXT, "c");
    ws_reader_t r;
    rec_t rec;
    memset(&rec, 0, sizeof rec);
    ws_reader_init(&r, 0, &g_cbs, &rec);
    assert_true(ws_reader_idle(&r));
    assert_int_equal(ws_reader_feed(&r, (const char *)in.b, 3), 0); /* a partial frame */
    assert_false(ws_reader_idle(&r));
    assert_non_null(r.rx);
    assert_int_equal(ws_reader_feed(&r, (const char *)in.b + 3, 4), 0); /* frame "a" done */
    assert_true(ws_reader_idle(&r));
    assert_null(r.rx);
    assert_null(r.msg.data);
    ws_reader_dispose(&r);

    /* A fragmented message in progress keeps only its bytes, not the parser. */
    in.n = 0;
    add_frame(&in, false, 0, WS_OP_TEXT, true, "part", 4, 0);
    memset(&rec, 0, sizeof rec);
    ws_reader_init(&r, 0, &g_cbs, &rec);
    assert_int_equal(ws_reader_feed(&r, (const char *)in.b, in.n), 0);
    assert_null(r.rx);
    assert_false(ws_reader_idle(&r));
    assert_int_equal(r.msg.len, 4);
    ws_reader_dispose(&r);

    /* A callback returning non-zero stops the feed with that value. */
    in.n = 0;
    add(&in, WS_OP_TEXT, "a");
    add(&in, WS_OP_TEXT, "b");
    memset(&rec, 0, sizeof rec);
    rec.stop_after = 1;
    ws_reader_init(&r, 0, &g_cbs, &rec);
    assert_int_equal(ws_reader_feed(&r, (const char *)in.b, in.n), 1);
    assert_string_equal(rec.log, "T:a|");
    ws_reader_dispose(&r);
}

/* ---- writing ----------------------------------------------------------------------------------
 */

static void test_frame_header(void **state) {
    (void)state;
    static const struct {
        unsigned op;
        uint64_t len;
        size_t hlen;
        uint8_t want[10];
    } rows[] = {
        {WS_OP_TEXT, 0, 2, {0x81, 0}},
        {WS_OP_TEXT, 125, 2, {0x81, 125}},
        {WS_OP_BINARY, 126, 4, {0x82, 126, 0, 126}},
        {WS_OP_BINARY, 65535, 4, {0x82, 126, 0xff, 0xff}},
        {WS_OP_TEXT, 65536, 10, {0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
        {WS_OP_TEXT, 0x0102030405060708ULL, 10, {0x81, 127, 1, 2, 3, 4, 5, 6, 7, 8}},
        {WS_OP_CLOSE, 2, 2, {0x88, 2}},
        {WS_OP_PONG, 5, 2, {0x8A, 5}},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        uint8_t h[WS_MAX_HEADER];
        size_t n = ws_frame_header(h, rows[i].op, rows[i].len);
        assert_int_equal(n, rows[i].hlen);
        assert_memory_equal(h, rows[i].want, n);
    }
}

static void test_close_payload(void **state) {
    (void)state;
    uint8_t p[WS_MAX_CONTROL];
    assert_int_equal(ws_close_payload(p, 0, "x"), 0);
    assert_int_equal(ws_close_payload(p, 1005, NULL), 0);
    assert_int_equal(ws_close_payload(p, 1000, NULL), 2);
    assert_memory_equal(p, "\x03\xe8", 2);
    assert_int_equal(ws_close_payload(p, 1001, "going away"), 12);
    assert_memory_equal(p, "\x03\xe9going away", 12);
    /* A long reason is cut to 123 bytes on a character boundary. */
    char reason[301] = "";
    for (int i = 0; i < 100; i++)
        strcat(reason, "\xe2\x82\xac"); /* 3-byte euro signs */
    size_t n = ws_close_payload(p, 1000, reason);
    assert_int_equal(n, 2 + 123);
    n = ws_close_payload(p, 1000, reason + 1); /* starts mid-character: still cut cleanly */
    assert_true(n <= WS_MAX_CONTROL);
    char ascii[200];
    memset(ascii, 'a', sizeof ascii - 1);
    ascii[sizeof ascii - 1] = '\0';
    assert_int_equal(ws_close_payload(p, 4000, ascii), 125);
}

static void test_accept_key(void **state) {
    (void)state;
    char out[29];
    ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    ws_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", 24, out);
    assert_string_equal(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

static void test_header_tokens(void **state) {
    (void)state;
    static const struct {
        const char *value, *token;
        bool want;
    } rows[] = {
        {"Upgrade", "upgrade", true},
        {"keep-alive, Upgrade", "upgrade", true},
        {"keep-alive,upgrade", "upgrade", true},
        {" \tUPGRADE\t ", "upgrade", true},
        {"upgrades", "upgrade", false},
        {"keep-alive", "upgrade", false},
        {"", "upgrade", false},
        {",,,", "upgrade", false},
        {"websocket", "websocket", true},
        {"WebSocket, h2c", "websocket", true},
        {"h2c", "websocket", false},
        {"web socket", "websocket", false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        assert_int_equal(ws_header_has_token(pl_slice_cstr(rows[i].value), rows[i].token),
                         rows[i].want);
}

static void test_protocol_list(void **state) {
    (void)state;
    static const struct {
        const char *v;
        bool want;
    } rows[] = {
        {"chat", true},      {"chat, superchat", true},
        {"a,b", true},       {" a , b ", true},
        {"a\t,\tb", true},   {"v1.chat-x_y~z", true},
        {"", false},         {",", false},
        {"a,", false},       {",a", false},
        {"a b", false},      {"a,,b", false},
        {"a;b", false},      {"\"a\"", false},
        {"a/b", false},      {"a\x01", false},
        {"\xc3\xa9", false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (ws_protocol_list_valid(pl_slice_cstr(rows[i].v)) != rows[i].want)
            fail_msg("row %zu: %s", i, rows[i].v);
    }
    /* "b" + many spaces + "x" (CVE-2021-32640) is refused, in linear time. */
    size_t n = 4 * 1024 * 1024;
    char *v = malloc(n + 2);
    assert_non_null(v);
    v[0] = 'b';
    memset(v + 1, ' ', n);
    v[n + 1] = 'x';
    assert_false(ws_protocol_list_valid(pl_slice(v, n + 2)));
    v[n + 1] = ' ';
    assert_true(ws_protocol_list_valid(pl_slice(v, n + 2)));
    free(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_good_rows),
        cmocka_unit_test(test_reader_malformed_rows),
        cmocka_unit_test(test_close_codes),
        cmocka_unit_test(test_reader_every_split),
        cmocka_unit_test(test_reader_memory_and_stop),
        cmocka_unit_test(test_frame_header),
        cmocka_unit_test(test_close_payload),
        cmocka_unit_test(test_accept_key),
        cmocka_unit_test(test_header_tokens),
        cmocka_unit_test(test_protocol_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
