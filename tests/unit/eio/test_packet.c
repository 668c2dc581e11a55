/* Unit tests for src/eio/packet.c: Engine.IO v4 packets over WebSocket and polling payloads.
 * Expected encodings were produced with engine.io-parser 5.2.3 (node_modules) and are
 * hard-coded here. Includes the BAD-INPUTS.md rows for Engine.IO payloads (CVE-2020-36048,
 * CVE-2020-36049). Table-driven: good, boundary and malformed rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eio/packet.h"

#define S(lit) lit, sizeof(lit) - 1

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- WebSocket decode ---- */

typedef struct {
    const char *in;
    size_t len;
    bool binary_frame;
    int rc;
    eio_type_t type;
    bool binary;
    const char *data; /* expected data bytes */
    size_t data_len;
} ws_row_t;

static const ws_row_t ws_rows[] = {
    /* good: every type the official client and server send */
    {S("4hello"), false, 0, EIO_MESSAGE, false, S("hello")},
    {S("4"), false, 0, EIO_MESSAGE, false, S("")},
    {S("42[\"a\",\"\xe2\x82\xac\"]"), false, 0, EIO_MESSAGE, false, S("2[\"a\",\"\xe2\x82\xac\"]")},
    {S("0{\"sid\":\"x\"}"), false, 0, EIO_OPEN, false, S("{\"sid\":\"x\"}")},
    {S("1"), false, 0, EIO_CLOSE, false, S("")},
    {S("2"), false, 0, EIO_PING, false, S("")},
    {S("2probe"), false, 0, EIO_PING, false, S("probe")},
    {S("3"), false, 0, EIO_PONG, false, S("")},
    {S("3probe"), false, 0, EIO_PONG, false, S("probe")},
    {S("5"), false, 0, EIO_UPGRADE, false, S("")},
    {S("6"), false, 0, EIO_NOOP, false, S("")},
    /* binary frames are binary messages, no type byte (v4) */
    {S("\x01\x02\x03"), true, 0, EIO_MESSAGE, true, S("\x01\x02\x03")},
    {S("4abc"), true, 0, EIO_MESSAGE, true, S("4abc")},
    {S(""), true, 0, EIO_MESSAGE, true, S("")},
    /* base64 binary in a text frame (forceBase64 clients) */
    {S("bAQID"), false, 0, EIO_MESSAGE, true, S("\x01\x02\x03")},
    {S("b"), false, 0, EIO_MESSAGE, true, S("")},
    {S("b//4="), false, 0, EIO_MESSAGE, true, S("\xff\xfe")},
    {S("b//4"), false, 0, EIO_MESSAGE, true, S("\xff\xfe")}, /* padding may be left out */
    {S("bAQ=="), false, 0, EIO_MESSAGE, true, S("\x01")},
    {S("bAQ"), false, 0, EIO_MESSAGE, true, S("\x01")},
    {S("bAAECAwQFBgc="), false, 0, EIO_MESSAGE, true, S("\x00\x01\x02\x03\x04\x05\x06\x07")},
    /* malformed */
    {S(""), false, PL_EINVAL, 0, false, S("")},  /* empty text frame */
    {S("7"), false, PL_EINVAL, 0, false, S("")}, /* unknown type */
    {S("9"), false, PL_EINVAL, 0, false, S("")},
    {S("x4"), false, PL_EINVAL, 0, false, S("")},
    {S("2ping"), false, PL_EINVAL, 0, false, S("")}, /* ping data other than probe */
    {S("2probe2"), false, PL_EINVAL, 0, false, S("")},
    {S("3x"), false, PL_EINVAL, 0, false, S("")},
    {S("1x"), false, PL_EINVAL, 0, false, S("")}, /* close carries nothing */
    {S("5x"), false, PL_EINVAL, 0, false, S("")},
    {S("6x"), false, PL_EINVAL, 0, false, S("")},
    {S("bA"), false, PL_EINVAL, 0, false, S("")},    /* 1 char: not base64 */
    {S("bAQI!"), false, PL_EINVAL, 0, false, S("")}, /* not in the alphabet */
    {S("bAQ-_"), false, PL_EINVAL, 0, false, S("")}, /* URL-safe alphabet */
    {S("bAQ="), false, PL_EINVAL, 0, false, S("")},  /* wrong padding */
    {S("bAQID="), false, PL_EINVAL, 0, false, S("")},
    {S("bAQ==="), false, PL_EINVAL, 0, false, S("")},
    {S("bAR=="), false, PL_EINVAL, 0, false, S("")}, /* non-zero unused bits */
    {S("bAQJ"), false, PL_EINVAL, 0, false, S("")},
    {S("bAQ==AQID"), false, PL_EINVAL, 0, false, S("")}, /* padding in the middle */
    {S("b AQID"), false, PL_EINVAL, 0, false, S("")},
};

static void test_decode_ws(void **state) {
    (void)state;
    pl_buf_t scratch;
    pl_buf_init(&scratch, 0);
    for (size_t i = 0; i < sizeof ws_rows / sizeof ws_rows[0]; i++) {
        const ws_row_t *r = &ws_rows[i];
        eio_packet_t p;
        int rc = eio_packet_decode_ws(&p, r->in, r->len, r->binary_frame, NULL, &scratch);
        if (rc != r->rc)
            fail_msg("row %zu (%s): rc %d, want %d", i, r->in, rc, r->rc);
        if (rc)
            continue;
        if (p.type != r->type || p.binary != r->binary || p.data.len != r->data_len)
            fail_msg("row %zu (%s): got type %d binary %d len %zu", i, r->in, p.type, p.binary,
                     p.data.len);
        if (r->data_len)
            assert_memory_equal(p.data.ptr, r->data, r->data_len);
        /* text packets are zero-copy slices of the frame */
        if (!p.binary && !r->binary_frame)
            assert_ptr_equal(p.data.ptr, r->in + 1);
    }
    pl_buf_dispose(&scratch);
}

static void test_decode_ws_limits(void **state) {
    (void)state;
    pl_buf_t scratch;
    pl_buf_init(&scratch, 0);
    eio_limits_t lim = {.max_payload = 6};
    eio_packet_t p;
    assert_int_equal(eio_packet_decode_ws(&p, S("4hello"), false, &lim, &scratch), 0);
    assert_int_equal(eio_packet_decode_ws(&p, S("4hello!"), false, &lim, &scratch), PL_ETOOBIG);
    assert_int_equal(eio_packet_decode_ws(&p, S("123456"), true, &lim, &scratch), 0);
    assert_int_equal(eio_packet_decode_ws(&p, S("1234567"), true, &lim, &scratch), PL_ETOOBIG);
    pl_buf_dispose(&scratch);

    /* the scratch buffer's own max bounds base64 output */
    pl_buf_init(&scratch, 4);
    assert_int_equal(eio_packet_decode_ws(&p, S("bAAECAwQFBgc="), false, NULL, &scratch),
                     PL_ETOOBIG);
    pl_buf_dispose(&scratch);
}

/* ---- WebSocket encode ---- */

typedef struct {
    eio_packet_t in;
    bool b64;
    int rc;
    const char *out;
    size_t out_len;
    bool binary_frame;
} ws_enc_row_t;

#define PKT(t, bin, lit)                                                                           \
    {                                                                                              \
        .type = (t), .binary = (bin), .data = {(lit), sizeof(lit) - 1 }                            \
    }

static const ws_enc_row_t ws_enc_rows[] = {
    /* engine.io-parser encodePacket(packet, supportsBinary=true) */
    {PKT(EIO_MESSAGE, false, "hello"), false, 0, S("4hello"), false},
    {PKT(EIO_PING, false, "probe"), false, 0, S("2probe"), false},
    {PKT(EIO_PONG, false, ""), false, 0, S("3"), false},
    {PKT(EIO_OPEN, false, "{\"sid\":\"s\"}"), false, 0, S("0{\"sid\":\"s\"}"), false},
    {PKT(EIO_NOOP, false, ""), false, 0, S("6"), false},
    {PKT(EIO_MESSAGE, true, "\x01\x02\x03"), false, 0, S("\x01\x02\x03"), true},
    /* supportsBinary=false (b64=1): "bAQID" */
    {PKT(EIO_MESSAGE, true, "\x01\x02\x03"), true, 0, S("bAQID"), false},
    {PKT(EIO_MESSAGE, false, "text"), true, 0, S("4text"), false},
    /* refused */
    {PKT(EIO_PING, true, "\x01"), false, PL_EINVAL, S(""), false},
    {PKT((eio_type_t)7, false, ""), false, PL_EINVAL, S(""), false},
};

static void test_encode_ws(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof ws_enc_rows / sizeof ws_enc_rows[0]; i++) {
        const ws_enc_row_t *r = &ws_enc_rows[i];
        pl_buf_t out;
        pl_buf_init(&out, 0);
        bool binary_frame = !r->binary_frame;
        int rc = eio_packet_encode_ws(&r->in, r->b64, &out, &binary_frame);
        if (rc != r->rc)
            fail_msg("row %zu: rc %d, want %d", i, rc, r->rc);
        if (rc == 0) {
            assert_int_equal(binary_frame, r->binary_frame);
            assert_int_equal(out.len, r->out_len);
            assert_memory_equal(out.data, r->out, r->out_len);
        }
        pl_buf_dispose(&out);
    }
}

/* ---- polling payload decode ---- */

typedef struct {
    const char *in;
    size_t len;
    int rc;
    size_t count;
} payload_row_t;

static const payload_row_t payload_rows[] = {
    {S("4hello"), 0, 1},
    {S("4hello\x1e"
       "bAQID\x1e"
       "2probe"),
     0, 3},
    {S("42[\"hello\"]\x1e"
       "42[\"world\"]"),
     0, 2}, /* socket.io-protocol sample session */
    {S("1"), 0, 1},
    {S("b"), 0, 1},
    /* malformed */
    {S(""), PL_EINVAL, 0},
    {S("\x1e"), PL_EINVAL, 0},       /* two empty packets */
    {S("4hello\x1e"), PL_EINVAL, 0}, /* trailing separator: empty packet */
    {S("\x1e"
       "4hello"),
     PL_EINVAL, 0},
    {S("4a\x1e\x1e"
       "4b"),
     PL_EINVAL, 0},
    {S("4a\x1e"
       "7"),
     PL_EINVAL, 0}, /* unknown type in the second packet */
    {S("4a\x1e"
       "bAQ="),
     PL_EINVAL, 0},                     /* bad base64 in the second packet */
    {S("4\xff"), PL_EINVAL, 0},         /* not UTF-8 */
    {S("4\xed\xa0\x80"), PL_EINVAL, 0}, /* surrogate */
    /* v3 payloads are not v4: CVE-2020-36048's shapes are plain invalid packets */
    {S("2:42 2:42 2:42 2:42"), PL_EINVAL, 0},
    {S("99999991:4222222222"), PL_EINVAL, 0},
    {S("6:4hello"), PL_EINVAL, 0},
    {S("\x00\x06\xff"
       "4hello"),
     PL_EINVAL, 0}, /* v3 binary payload */
};

static void test_payload_decode(void **state) {
    (void)state;
    eio_payload_t pl;
    eio_payload_init(&pl);
    for (size_t i = 0; i < sizeof payload_rows / sizeof payload_rows[0]; i++) {
        const payload_row_t *r = &payload_rows[i];
        int rc = eio_payload_decode(&pl, r->in, r->len, NULL);
        if (rc != r->rc)
            fail_msg("row %zu: rc %d, want %d", i, rc, r->rc);
        assert_int_equal(pl.count, r->count);
    }
    eio_payload_dispose(&pl);
}

static void test_payload_decode_reference(void **state) {
    (void)state;
    /* engine.io-parser encodePayload of [message "hello", message "€€€", message <01 02 03>,
     * noop, message <>, message <ff fe>] */
    static const char body[] = "4hello\x1e"
                               "4\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\x1e"
                               "bAQID\x1e"
                               "6\x1e"
                               "b\x1e"
                               "b//4=";
    eio_payload_t pl;
    eio_payload_init(&pl);
    assert_int_equal(eio_payload_decode(&pl, body, sizeof body - 1, NULL), 0);
    assert_int_equal(pl.count, 6);
    const struct {
        eio_type_t type;
        bool binary;
        const char *data;
        size_t len;
    } want[] = {
        {EIO_MESSAGE, false, S("hello")},
        {EIO_MESSAGE, false, S("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac")},
        {EIO_MESSAGE, true, S("\x01\x02\x03")},
        {EIO_NOOP, false, S("")},
        {EIO_MESSAGE, true, S("")},
        {EIO_MESSAGE, true, S("\xff\xfe")},
    };
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(pl.packets[i].type, want[i].type);
        assert_int_equal(pl.packets[i].binary, want[i].binary);
        assert_int_equal(pl.packets[i].data.len, want[i].len);
        if (want[i].len)
            assert_memory_equal(pl.packets[i].data.ptr, want[i].data, want[i].len);
    }
    /* text packets point into the body (zero copy) */
    assert_ptr_equal(pl.packets[0].data.ptr, body + 1);

    /* re-encoding gives the same body back */
    pl_buf_t out;
    pl_buf_init(&out, 0);
    assert_int_equal(eio_payload_encode(&out, pl.packets, pl.count), 0);
    assert_int_equal(out.len, sizeof body - 1);
    assert_memory_equal(out.data, body, out.len);
    pl_buf_dispose(&out);

    /* reuse the same payload object for a second body */
    assert_int_equal(eio_payload_decode(&pl, S("2probe"), NULL), 0);
    assert_int_equal(pl.count, 1);
    assert_int_equal(pl.packets[0].type, EIO_PING);
    eio_payload_dispose(&pl);
}

/* Builds n packets "4a" joined by 0x1e. */
static char *many_packets(size_t n, size_t *len) {
    *len = n * 3 - 1;
    char *s = malloc(*len);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++) {
        s[i * 3] = '4';
        s[i * 3 + 1] = 'a';
        if (i + 1 < n)
            s[i * 3 + 2] = EIO_RECORD_SEPARATOR;
    }
    return s;
}

static void test_payload_limits(void **state) {
    (void)state;
    eio_payload_t pl;
    eio_payload_init(&pl);
    size_t len;

    /* max_packets: 512 by default */
    char *s = many_packets(512, &len);
    assert_int_equal(eio_payload_decode(&pl, s, len, NULL), 0);
    assert_int_equal(pl.count, 512);
    free(s);
    s = many_packets(513, &len);
    assert_int_equal(eio_payload_decode(&pl, s, len, NULL), PL_ETOOBIG);
    assert_int_equal(pl.count, 0);
    free(s);

    /* max_payload */
    eio_limits_t lim = {.max_payload = 6, .max_packets = 2};
    assert_int_equal(eio_payload_decode(&pl, S("4hello"), &lim), 0);
    assert_int_equal(eio_payload_decode(&pl, S("4hello!"), &lim), PL_ETOOBIG);
    assert_int_equal(eio_payload_decode(&pl,
                                        S("4a\x1e"
                                          "4b"),
                                        &lim),
                     0);
    assert_int_equal(eio_payload_decode(&pl,
                                        S("4\x1e"
                                          "4\x1e"
                                          "4"),
                                        &lim),
                     PL_ETOOBIG);
    eio_payload_dispose(&pl);
}

/* BAD-INPUTS.md CVE-2020-36048: thousands of tiny packets, a giant length prefix and a huge body
 * are refused in linear time without growing memory. */
static void test_payload_cve_2020_36048(void **state) {
    (void)state;
    eio_payload_t pl;
    eio_payload_init(&pl);
    size_t n = 1000000;
    char *s = malloc(n);
    assert_non_null(s);

    /* 333,333 tiny packets: refused by counting, before the packet array is allocated */
    for (size_t i = 0; i < n; i++)
        s[i] = "4a\x1e"[i % 3];
    double t0 = now_s();
    assert_int_equal(eio_payload_decode(&pl, s, n - 1, NULL), PL_ETOOBIG);
    assert_null(pl.packets);

    /* "2:42 2:42 ..." filling a whole maxPayload body */
    for (size_t i = 0; i < n; i++)
        s[i] = "2:42 "[i % 5];
    assert_int_equal(eio_payload_decode(&pl, s, n, NULL), PL_EINVAL);

    /* a giant v3 length prefix */
    memcpy(s, "99999991:", 9);
    memset(s + 9, '4', n - 9);
    assert_int_equal(eio_payload_decode(&pl, s, n, NULL), PL_EINVAL);

    /* one byte over maxPayload */
    char *big = malloc(n + 1);
    assert_non_null(big);
    big[0] = '4';
    memset(big + 1, 'x', n);
    assert_int_equal(eio_payload_decode(&pl, big, n + 1, NULL), PL_ETOOBIG);
    assert_int_equal(eio_payload_decode(&pl, big, n, NULL), 0); /* exactly maxPayload */
    assert_int_equal(pl.count, 1);
    assert_true(now_s() - t0 < 1.0);
    free(big);
    free(s);
    eio_payload_dispose(&pl);
}

/* ---- polling payload encode ---- */

static void test_payload_encode(void **state) {
    (void)state;
    /* engine.io-parser encodePayload([ping "probe", message "hello", close]) */
    const eio_packet_t pkts[] = {
        PKT(EIO_PING, false, "probe"),
        PKT(EIO_MESSAGE, false, "hello"),
        PKT(EIO_CLOSE, false, ""),
    };
    pl_buf_t out;
    pl_buf_init(&out, 0);
    assert_int_equal(eio_payload_encode(&out, pkts, 3), 0);
    assert_int_equal(out.len, strlen("2probe\x1e"
                                     "4hello\x1e"
                                     "1"));
    assert_memory_equal(out.data,
                        "2probe\x1e"
                        "4hello\x1e"
                        "1",
                        out.len);

    /* v4 changelog example: [message "hello", message <01 02 03>] -> "4hello\x1ebAQID" */
    pl_buf_reset(&out);
    const eio_packet_t mixed[] = {PKT(EIO_MESSAGE, false, "hello"),
                                  PKT(EIO_MESSAGE, true, "\x01\x02\x03")};
    assert_int_equal(eio_payload_encode(&out, mixed, 2), 0);
    assert_int_equal(out.len, 12);
    assert_memory_equal(out.data,
                        "4hello\x1e"
                        "bAQID",
                        12);

    /* base64 of every remainder length */
    const struct {
        const char *raw;
        size_t len;
        const char *b64;
    } b64_rows[] = {
        {S(""), "b"},
        {S("\xff"), "b/w=="},
        {S("\xff\xfe"), "b//4="},
        {S("\xff\xfe\xfd"), "b//79"},
        {S("\x00\x01\x02\x03\x04\x05\x06\x07"), "bAAECAwQFBgc="},
    };
    for (size_t i = 0; i < sizeof b64_rows / sizeof b64_rows[0]; i++) {
        pl_buf_reset(&out);
        eio_packet_t p = {
            .type = EIO_MESSAGE, .binary = true, .data = {b64_rows[i].raw, b64_rows[i].len}};
        assert_int_equal(eio_payload_append(&out, &p, false), 0);
        assert_int_equal(out.len, strlen(b64_rows[i].b64));
        assert_memory_equal(out.data, b64_rows[i].b64, out.len);
    }

    /* refused: text holding the separator, binary on a non-message, type out of range */
    pl_buf_reset(&out);
    eio_packet_t sep = PKT(EIO_MESSAGE, false,
                           "a\x1e"
                           "4b");
    assert_int_equal(eio_payload_append(&out, &sep, false), PL_EINVAL);
    eio_packet_t bad = PKT(EIO_PONG, true, "x");
    assert_int_equal(eio_payload_append(&out, &bad, true), PL_EINVAL);
    eio_packet_t bad_type = PKT((eio_type_t)9, false, "");
    assert_int_equal(eio_payload_append(&out, &bad_type, true), PL_EINVAL);
    assert_int_equal(out.len, 0);
    pl_buf_dispose(&out);

    /* the output buffer's max */
    pl_buf_init(&out, 4);
    assert_int_equal(eio_payload_encode(&out, pkts, 3), PL_ETOOBIG);
    pl_buf_dispose(&out);
}

static void test_type_names(void **state) {
    (void)state;
    assert_string_equal(eio_type_name(EIO_OPEN), "open");
    assert_string_equal(eio_type_name(EIO_NOOP), "noop");
    assert_string_equal(eio_type_name((eio_type_t)7), "unknown");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_ws),
        cmocka_unit_test(test_decode_ws_limits),
        cmocka_unit_test(test_encode_ws),
        cmocka_unit_test(test_payload_decode),
        cmocka_unit_test(test_payload_decode_reference),
        cmocka_unit_test(test_payload_limits),
        cmocka_unit_test(test_payload_cve_2020_36048),
        cmocka_unit_test(test_payload_encode),
        cmocka_unit_test(test_type_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
