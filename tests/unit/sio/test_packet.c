/* Unit tests for src/sio/packet.c: Socket.IO v5 packets, binary attachments, validation. Expected
 * encodings come from socket.io-parser 4.2.7's Encoder (node_modules) and the socket.io-protocol
 * v5 examples, hard-coded here. Every BAD-INPUTS.md row about Socket.IO packets, placeholders
 * and attachments is its own row (CVE-2022-2421, CVE-2023-32695, CVE-2026-33151,
 * CVE-2026-69185). Table-driven: good, boundary and malformed rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eio/packet.h"
#include "sio/packet.h"

#define S(lit) lit, sizeof(lit) - 1

static char *dump_str(const json_t *j) {
    pl_buf_t b;
    pl_buf_init(&b, 0);
    assert_int_equal(pl_json_dump(j, &b), 0);
    assert_int_equal(pl_buf_append(&b, "", 1), 0);
    return pl_buf_steal(&b, NULL);
}

static json_t *json(const char *text) {
    json_t *j = pl_json_parse(text, strlen(text), NULL, NULL, 0);
    assert_non_null(j);
    return j;
}

/* Encodes p and compares the text with want (test helper). */
static void expect_encoding(const sio_packet_t *p, const char *want, sio_attachments_t *att) {
    pl_buf_t out;
    pl_buf_init(&out, 0);
    int rc = sio_packet_encode(p, &out, att);
    if (rc)
        fail_msg("encoding for %s failed: %d", want, rc);
    if (out.len != strlen(want) || memcmp(out.data, want, out.len) != 0)
        fail_msg("encoded '%.*s', want '%s'", (int)out.len, out.data, want);
    pl_buf_dispose(&out);
}

/* ---- decode: good rows ---- */

typedef struct {
    const char *in;
    size_t len;
    sio_type_t type;
    const char *nsp;
    bool has_id;
    uint64_t id;
    const char *data;   /* expected data (compact JSON), NULL for none */
    size_t attachments; /* announced */
    const char *canon;  /* what encoding the decoded packet gives; NULL = in */
} good_row_t;

static const good_row_t good_rows[] = {
    /* socket.io-protocol v5 "Packet encoding" examples */
    {S("0"), SIO_CONNECT, "/", false, 0, NULL, 0, NULL},
    {S("0{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}"), SIO_CONNECT, "/", false, 0,
     "{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}", 0, NULL},
    {S("0/admin,"), SIO_CONNECT, "/admin", false, 0, NULL, 0, NULL},
    {S("0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}"), SIO_CONNECT, "/admin", false, 0,
     "{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", 0, NULL},
    {S("4{\"message\":\"Not authorized\"}"), SIO_CONNECT_ERROR, "/", false, 0,
     "{\"message\":\"Not authorized\"}", 0, NULL},
    {S("2[\"foo\"]"), SIO_EVENT, "/", false, 0, "[\"foo\"]", 0, NULL},
    {S("2/admin,[\"bar\"]"), SIO_EVENT, "/admin", false, 0, "[\"bar\"]", 0, NULL},
    {S("51-[\"baz\",{\"_placeholder\":true,\"num\":0}]"), SIO_BINARY_EVENT, "/", false, 0,
     "[\"baz\",{\"_placeholder\":true,\"num\":0}]", 1, NULL},
    {S("52-/admin,[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]"),
     SIO_BINARY_EVENT, "/admin", false, 0,
     "[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]", 2, NULL},
    {S("212[\"foo\"]"), SIO_EVENT, "/", true, 12, "[\"foo\"]", 0, NULL},
    {S("312[]"), SIO_ACK, "/", true, 12, "[]", 0, NULL},
    {S("2/admin,13[\"foo\"]"), SIO_EVENT, "/admin", true, 13, "[\"foo\"]", 0, NULL},
    {S("3/admin,13[\"bar\"]"), SIO_ACK, "/admin", true, 13, "[\"bar\"]", 0, NULL},
    {S("51-14[\"foo\",{\"_placeholder\":true,\"num\":0}]"), SIO_BINARY_EVENT, "/", true, 14,
     "[\"foo\",{\"_placeholder\":true,\"num\":0}]", 1, NULL},
    {S("61-15[\"bar\",{\"_placeholder\":true,\"num\":0}]"), SIO_BINARY_ACK, "/", true, 15,
     "[\"bar\",{\"_placeholder\":true,\"num\":0}]", 1, NULL},
    {S("1"), SIO_DISCONNECT, "/", false, 0, NULL, 0, NULL},
    {S("1/admin,"), SIO_DISCONNECT, "/admin", false, 0, NULL, 0, NULL},
    /* PROTOCOL.md refusal (44/chat,... on the wire: '4' is the Engine.IO message type) */
    {S("4/chat,{\"message\":\"Invalid namespace\"}"), SIO_CONNECT_ERROR, "/chat", false, 0,
     "{\"message\":\"Invalid namespace\"}", 0, NULL},
    {S("4\"Invalid namespace\""), SIO_CONNECT_ERROR, "/", false, 0, "\"Invalid namespace\"", 0,
     NULL},
    /* the chat's own events */
    {S("2[\"identify\",{\"projectId\":1,\"visitorUid\":\"abcdefgh\"}]"), SIO_EVENT, "/", false, 0,
     "[\"identify\",{\"projectId\":1,\"visitorUid\":\"abcdefgh\"}]", 0, NULL},
    {S("27[\"sendMessage\",{\"content\":\"h\xc3\xa9llo\",\"tempId\":\"t1\"}]"), SIO_EVENT, "/",
     true, 7, "[\"sendMessage\",{\"content\":\"h\xc3\xa9llo\",\"tempId\":\"t1\"}]", 0, NULL},
    /* accepted forms that encode differently */
    {S("0/admin"), SIO_CONNECT, "/admin", false, 0, NULL, 0, "0/admin,"}, /* no comma */
    {S("0/,"), SIO_CONNECT, "/", false, 0, NULL, 0, "0"},
    {S("2007[\"a\"]"), SIO_EVENT, "/", true, 7, "[\"a\"]", 0, "27[\"a\"]"},
    {S("501-[\"a\",{\"_placeholder\":true,\"num\":0}]"), SIO_BINARY_EVENT, "/", false, 0,
     "[\"a\",{\"_placeholder\":true,\"num\":0}]", 1,
     "51-[\"a\",{\"_placeholder\":true,\"num\":0}]"},
    {S("2 [\"a\"]"), SIO_EVENT, "/", false, 0, "[\"a\"]", 0, "2[\"a\"]"},
    /* placeholder-shaped data in a plain EVENT is ordinary data (socket.io-parser) */
    {S("2[\"a\",{\"_placeholder\":true,\"num\":\"splice\"}]"), SIO_EVENT, "/", false, 0,
     "[\"a\",{\"_placeholder\":true,\"num\":\"splice\"}]", 0, NULL},
    /* boundaries */
    {S("29007199254740991[\"a\"]"), SIO_EVENT, "/", true, 9007199254740991ULL, "[\"a\"]", 0, NULL},
    {S("20[\"a\"]"), SIO_EVENT, "/", true, 0, "[\"a\"]", 0, NULL},
    {S("510-[\"a\"]"), SIO_BINARY_EVENT, "/", false, 0, "[\"a\"]", 10, "2[\"a\"]"},
    {S("3/a,1[]"), SIO_ACK, "/a", true, 1, "[]", 0, NULL},
    {S("2[\"\"]"), SIO_EVENT, "/", false, 0, "[\"\"]", 0, NULL}, /* empty name is a string */
    {S("2[\"Connect\"]"), SIO_EVENT, "/", false, 0, "[\"Connect\"]", 0, NULL},
    {S("0/\xc3\xa9t\xc3\xa9,"), SIO_CONNECT, "/\xc3\xa9t\xc3\xa9", false, 0, NULL, 0, NULL},
};

static void test_decode_good(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof good_rows / sizeof good_rows[0]; i++) {
        const good_row_t *r = &good_rows[i];
        sio_packet_t p;
        int rc = sio_packet_decode(&p, r->in, r->len, NULL);
        if (rc)
            fail_msg("row %zu (%s): rc %d (%s)", i, r->in, rc, p.error);
        if (p.type != r->type || !pl_slice_eq_cstr(p.nsp, r->nsp) || p.has_id != r->has_id ||
            p.id != r->id || p.attachments != r->attachments)
            fail_msg("row %zu (%s): type %d nsp %.*s id %d/%llu att %zu", i, r->in, p.type,
                     (int)p.nsp.len, p.nsp.ptr, p.has_id, (unsigned long long)p.id, p.attachments);
        if (r->data) {
            assert_non_null(p.data);
            char *d = dump_str(p.data);
            assert_string_equal(d, r->data);
            free(d);
        } else {
            assert_null(p.data);
        }
        assert_int_equal(sio_packet_complete(&p), r->attachments == 0);

        /* complete the packet with distinct bytes, then encode it back */
        for (size_t k = 0; k < r->attachments; k++) {
            unsigned char byte = (unsigned char)k;
            assert_int_equal(sio_packet_add_attachment(&p, &byte, 1, NULL), 0);
        }
        assert_true(sio_packet_complete(&p));
        sio_attachments_t att;
        sio_attachments_init(&att);
        expect_encoding(&p, r->canon ? r->canon : r->in, &att);
        sio_attachments_dispose(&att);
        sio_packet_dispose(&p);
    }
}

/* ---- decode: malformed rows ---- */

typedef struct {
    const char *in;
    size_t len;
    int rc;
    const char *error;
} bad_row_t;

static const bad_row_t bad_rows[] = {
    {S(""), PL_EINVAL, "empty packet"},
    {S("7"), PL_EINVAL, "unknown packet type"},
    {S("x[\"a\"]"), PL_EINVAL, "unknown packet type"},
    {S("-1"), PL_EINVAL, "unknown packet type"},
    /* CONNECT: absent or object */
    {S("0[]"), PL_EINVAL, "CONNECT data must be an object"},
    {S("0\"x\""), PL_EINVAL, "CONNECT data must be an object"},
    {S("0/admin,null"), PL_EINVAL, "CONNECT data must be an object"},
    /* DISCONNECT: nothing */
    {S("1{}"), PL_EINVAL, "DISCONNECT takes no data"},
    {S("1/admin,[]"), PL_EINVAL, "DISCONNECT takes no data"},
    /* EVENT: non-empty array, string name, not reserved */
    {S("2"), PL_EINVAL, "EVENT data must be a non-empty array"},
    {S("2{}"), PL_EINVAL, "EVENT data must be a non-empty array"},
    {S("2[]"), PL_EINVAL, "EVENT data must be a non-empty array"},
    {S("2\"foo\""), PL_EINVAL, "EVENT data must be a non-empty array"},
    {S("2[1]"), PL_EINVAL, "event name must be a string"},
    {S("2[null,1]"), PL_EINVAL, "event name must be a string"},
    {S("2[[\"a\"]]"), PL_EINVAL, "event name must be a string"},
    /* CVE-2023-32695: an event name that is not a string */
    {S("2[{\"toString\":\"foo\"}]"), PL_EINVAL, "event name must be a string"},
    {S("2[\"connect\"]"), PL_EINVAL, "reserved event name"},
    {S("2[\"connect_error\",{}]"), PL_EINVAL, "reserved event name"},
    {S("2[\"disconnect\"]"), PL_EINVAL, "reserved event name"},
    {S("2[\"disconnecting\"]"), PL_EINVAL, "reserved event name"},
    {S("2[\"newListener\"]"), PL_EINVAL, "reserved event name"},
    {S("2[\"removeListener\",\"x\"]"), PL_EINVAL, "reserved event name"},
    {S("51-[\"disconnect\",{\"_placeholder\":true,\"num\":0}]"), PL_EINVAL, "reserved event name"},
    /* ACK: array, with an id */
    {S("3[]"), PL_EINVAL, "ACK without an id"},
    {S("312{}"), PL_EINVAL, "ACK data must be an array"},
    {S("312"), PL_EINVAL, "ACK data must be an array"},
    {S("312\"a\""), PL_EINVAL, "ACK data must be an array"},
    /* CONNECT_ERROR: object or string */
    {S("4"), PL_EINVAL, "CONNECT_ERROR data must be an object or a string"},
    {S("4[]"), PL_EINVAL, "CONNECT_ERROR data must be an object or a string"},
    /* attachments: integer in [1, 10]; CVE-2026-69185 (zero) and CVE-2026-33151 (huge) */
    {S("50-[\"hello\"]"), PL_EINVAL, "illegal attachments"},
    {S("60-1[]"), PL_EINVAL, "illegal attachments"},
    {S("511-[\"a\"]"), PL_EINVAL, "illegal attachments"},
    {S("5450-[\"a\"]"), PL_EINVAL, "illegal attachments"},
    {S("599999999999999999999999-[\"a\"]"), PL_EINVAL, "illegal attachments"},
    {S("5-[\"a\"]"), PL_EINVAL, "illegal attachments"},
    {S("5[\"a\"]"), PL_EINVAL, "illegal attachments"},
    {S("51[\"a\"]"), PL_EINVAL, "illegal attachments"},
    {S("5 1-[\"a\"]"), PL_EINVAL, "illegal attachments"},
    {S("51"), PL_EINVAL, "illegal attachments"},
    {S("5"), PL_EINVAL, "illegal attachments"},
    {S("51-"), PL_EINVAL, "EVENT data must be a non-empty array"},
    /* CVE-2022-2421: placeholder num must be an integer in [0, attachments) */
    {S("51-[\"hello\",{\"_placeholder\":true,\"num\":\"splice\"}]"), PL_EINVAL,
     "invalid placeholder"},
    {S("51-[\"a\",{\"_placeholder\":true,\"num\":1}]"), PL_EINVAL, "invalid placeholder"},
    {S("51-[\"a\",{\"_placeholder\":true,\"num\":-1}]"), PL_EINVAL, "invalid placeholder"},
    {S("51-[\"a\",{\"_placeholder\":true,\"num\":0.5}]"), PL_EINVAL, "invalid placeholder"},
    {S("51-[\"a\",{\"_placeholder\":true,\"num\":0.0}]"), PL_EINVAL, "invalid placeholder"},
    {S("51-[\"a\",{\"_placeholder\":true}]"), PL_EINVAL, "invalid placeholder"},
    {S("51-[\"a\",{\"_placeholder\":true,\"num\":null}]"), PL_EINVAL, "invalid placeholder"},
    {S("51-[\"a\",{\"_placeholder\":true,\"num\":[0]}]"), PL_EINVAL, "invalid placeholder"},
    {S("51-[\"a\",{\"x\":[{\"_placeholder\":true,\"num\":7}]}]"), PL_EINVAL, "invalid placeholder"},
    {S("62-1[{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":2}]"), PL_EINVAL,
     "invalid placeholder"},
    /* ack ids: digits, at most 2^53 - 1 */
    {S("29007199254740992[\"a\"]"), PL_EINVAL, "ack id out of range"},
    {S("299999999999999999999999[\"a\"]"), PL_EINVAL, "ack id out of range"},
    {S("212a[\"a\"]"), PL_EINVAL, "invalid JSON payload"},
    {S("2-1[\"a\"]"), PL_EINVAL, "invalid JSON payload"},
    /* namespaces */
    {S("0/ad\x01min,"), PL_EINVAL, "invalid namespace"},
    {S("0/ad\x7fmin,"), PL_EINVAL, "invalid namespace"},
    {S("0/\xff,"), PL_EINVAL, "invalid namespace"},
    {S("0/\xc0\xaf,"), PL_EINVAL, "invalid namespace"},
    {S("2/admin[\"a\"]"), PL_EINVAL, "EVENT data must be a non-empty array"}, /* no comma */
    {S("2/ad,min[\"a\"]"), PL_EINVAL, "invalid JSON payload"},
    /* JSON rules (BAD-INPUTS.md list) */
    {S("2[\"a\""), PL_EINVAL, "invalid JSON payload"},
    {S("2[\"a\"]x"), SIO_EPAYLOAD, "invalid JSON payload"},
    {S("2[\"a\",\"\\u0000\"]"), SIO_EPAYLOAD, "invalid JSON payload"},
    {S("2[\"a\",{\"k\":1,\"k\":2}]"), SIO_EPAYLOAD, "invalid JSON payload"},
    {S("2[\"a\",9007199254740992]"), SIO_EPAYLOAD, "invalid JSON payload"},
    {S("2[\"a\",\"\xed\xa0\x80\"]"), SIO_EPAYLOAD, "invalid JSON payload"},
    {S("2[\"a\",\"\\udc00\"]"), SIO_EPAYLOAD, "invalid JSON payload"},
    {S("2[\"\xc0\xaf\"]"), PL_EINVAL, "invalid JSON payload"},
};

static void test_decode_bad(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof bad_rows / sizeof bad_rows[0]; i++) {
        const bad_row_t *r = &bad_rows[i];
        sio_packet_t p;
        int rc = sio_packet_decode(&p, r->in, r->len, NULL);
        if (rc != r->rc)
            fail_msg("row %zu (%s): rc %d, want %d", i, r->in, rc, r->rc);
        if (!p.error || strcmp(p.error, r->error) != 0)
            fail_msg("row %zu (%s): error '%s', want '%s'", i, r->in, p.error, r->error);
        if (rc == SIO_EPAYLOAD) {
            /* the event name is handed back for the refusal */
            assert_string_equal(json_string_value(p.data), "a");
            sio_packet_dispose(&p);
            continue;
        }
        /* nothing is left allocated (ASan's leak check covers the rest) */
        assert_null(p.data);
        assert_null(p.bufs);
        assert_null(p.nsp_owned);
        sio_packet_dispose(&p);
    }
}

/* ---- decode: limits ---- */

static void test_decode_limits(void **state) {
    (void)state;
    sio_packet_t p;
    /* 2^53 - 1 is the largest id: in the good rows; attachments max 10: good rows */

    /* configurable attachment maximum */
    sio_limits_t lim = {.max_attachments = 2};
    assert_int_equal(sio_packet_decode(&p, S("52-[\"a\"]"), &lim), 0);
    sio_packet_dispose(&p);
    assert_int_equal(sio_packet_decode(&p, S("53-[\"a\"]"), &lim), PL_EINVAL);

    /* packet size */
    lim = (sio_limits_t){.max_packet = 8};
    assert_int_equal(sio_packet_decode(&p, S("2[\"abc\"]"), &lim), 0);
    sio_packet_dispose(&p);
    assert_int_equal(sio_packet_decode(&p, S("2[\"abcd\"]"), &lim), PL_ETOOBIG);
    assert_string_equal(p.error, "packet too large");

    /* namespace length: 256 bytes by default */
    char buf[300];
    buf[0] = '0';
    buf[1] = '/';
    memset(buf + 2, 'n', 255);
    buf[257] = ',';
    assert_int_equal(sio_packet_decode(&p, buf, 258, NULL), 0);
    assert_int_equal(p.nsp.len, 256);
    assert_int_equal(p.nsp.ptr[256], '\0'); /* owned, NUL-terminated */
    sio_packet_dispose(&p);
    buf[257] = 'n';
    buf[258] = ',';
    assert_int_equal(sio_packet_decode(&p, buf, 259, NULL), PL_EINVAL);
    assert_string_equal(p.error, "invalid namespace");

    /* JSON limits pass through: depth 32 ok, 33 refused (the event array is level 1) */
    pl_buf_t b;
    pl_buf_init(&b, 0);
    assert_int_equal(pl_buf_append_cstr(&b, "2[\"a\","), 0);
    for (int i = 0; i < 31; i++)
        assert_int_equal(pl_buf_append_cstr(&b, "["), 0);
    for (int i = 0; i < 31; i++)
        assert_int_equal(pl_buf_append_cstr(&b, "]"), 0);
    assert_int_equal(pl_buf_append_cstr(&b, "]"), 0);
    assert_int_equal(sio_packet_decode(&p, b.data, b.len, NULL), 0);
    sio_packet_dispose(&p);
    pl_buf_reset(&b);
    assert_int_equal(pl_buf_append_cstr(&b, "2[\"a\","), 0);
    for (int i = 0; i < 32; i++)
        assert_int_equal(pl_buf_append_cstr(&b, "["), 0);
    for (int i = 0; i < 32; i++)
        assert_int_equal(pl_buf_append_cstr(&b, "]"), 0);
    assert_int_equal(pl_buf_append_cstr(&b, "]"), 0);
    /* Too deep, but well framed with a plain event name: refused as that event's payload. */
    assert_int_equal(sio_packet_decode(&p, b.data, b.len, NULL), SIO_EPAYLOAD);
    assert_string_equal(json_string_value(p.data), "a");
    sio_packet_dispose(&p);
    pl_buf_dispose(&b);

    lim = (sio_limits_t){.json = {.max_string = 3}};
    assert_int_equal(sio_packet_decode(&p, S("2[\"abc\"]"), &lim), 0);
    sio_packet_dispose(&p);
    assert_int_equal(sio_packet_decode(&p, S("2[\"abcd\"]"), &lim), PL_EINVAL);
}

/* ---- binary reconstruction ---- */

static void test_attachments(void **state) {
    (void)state;
    sio_packet_t p;
    const char *text = "52-/admin,14[\"baz\",{\"_placeholder\":true,\"num\":1},"
                       "{\"k\":{\"_placeholder\":true,\"num\":0}}]";
    assert_int_equal(sio_packet_decode(&p, text, strlen(text), NULL), 0);
    assert_int_equal(p.type, SIO_BINARY_EVENT);
    assert_int_equal(p.attachments, 2);
    assert_false(sio_packet_complete(&p));
    json_t *first = json_array_get(p.data, 1);
    json_t *second = json_object_get(json_array_get(p.data, 2), "k");
    assert_null(sio_packet_binary(&p, first)); /* not arrived yet */

    assert_int_equal(sio_packet_add_attachment(&p, "\x01\x02", 2, NULL), 0);
    assert_false(sio_packet_complete(&p));
    assert_int_equal(sio_packet_add_attachment(&p, "\x03\x04\x05", 3, NULL), 0);
    assert_true(sio_packet_complete(&p));
    assert_int_equal(p.bin_bytes, 5);

    /* the handler's view: each placeholder gives its buffer */
    pl_rcbuf_t *b1 = sio_packet_binary(&p, first);
    pl_rcbuf_t *b0 = sio_packet_binary(&p, second);
    assert_non_null(b1);
    assert_non_null(b0);
    assert_int_equal(b1->len, 3);
    assert_memory_equal(b1->data, "\x03\x04\x05", 3);
    assert_int_equal(b0->len, 2);
    assert_memory_equal(b0->data, "\x01\x02", 2);
    assert_null(sio_packet_binary(&p, json_array_get(p.data, 0)));
    assert_null(sio_packet_binary(&p, json_array_get(p.data, 2)));

    /* one more than announced */
    assert_int_equal(sio_packet_add_attachment(&p, "x", 1, NULL), PL_EINVAL);

    /* echo: same data and buffers; placeholders renumbered in tree order, buffers follow */
    sio_attachments_t att;
    sio_attachments_init(&att);
    expect_encoding(&p,
                    "52-/admin,14[\"baz\",{\"_placeholder\":true,\"num\":0},"
                    "{\"k\":{\"_placeholder\":true,\"num\":1}}]",
                    &att);
    assert_int_equal(att.count, 2);
    assert_ptr_equal(att.bufs[0], b1); /* shared, not copied */
    assert_ptr_equal(att.bufs[1], b0);
    assert_int_equal(b1->refs, 2);
    sio_attachments_dispose(&att);
    assert_int_equal(b1->refs, 1);
    sio_packet_dispose(&p);
}

static void test_attachment_limits(void **state) {
    (void)state;
    sio_packet_t p;
    sio_limits_t lim = {.max_binary = 4};
    assert_int_equal(sio_packet_decode(&p, S("62-3[]"), &lim), 0);
    assert_int_equal(sio_packet_add_attachment(&p, "abc", 3, &lim), 0);
    assert_int_equal(sio_packet_add_attachment(&p, "de", 2, &lim), PL_ETOOBIG);
    assert_int_equal(p.nbufs, 1);
    assert_int_equal(sio_packet_add_attachment(&p, "d", 1, &lim), 0);
    assert_true(sio_packet_complete(&p));
    sio_packet_dispose(&p);

    /* a half-received packet is disposed without leaks */
    assert_int_equal(sio_packet_decode(&p, S("53-[\"a\"]"), NULL), 0);
    assert_int_equal(sio_packet_add_attachment(&p, "a", 1, NULL), 0);
    sio_packet_dispose(&p);
    sio_packet_dispose(&p); /* twice is fine */

    /* a non-binary packet takes no attachment (socket.io-parser: "got binary data when not
     * reconstructing a packet") */
    assert_int_equal(sio_packet_decode(&p, S("2[\"a\"]"), NULL), 0);
    assert_int_equal(sio_packet_add_attachment(&p, "a", 1, NULL), PL_EINVAL);
    sio_packet_dispose(&p);

    /* empty attachments are fine */
    assert_int_equal(sio_packet_decode(&p, S("51-[\"a\",{\"_placeholder\":true,\"num\":0}]"), NULL),
                     0);
    assert_int_equal(sio_packet_add_attachment(&p, NULL, 0, NULL), 0);
    assert_int_equal(sio_packet_binary(&p, json_array_get(p.data, 1))->len, 0);
    sio_packet_dispose(&p);
}

/* ---- encode ---- */

typedef struct {
    sio_type_t type;
    const char *nsp;
    bool has_id;
    uint64_t id;
    const char *data; /* JSON text or NULL */
    const char *want; /* socket.io-parser Encoder output */
} enc_row_t;

static const enc_row_t enc_rows[] = {
    {SIO_CONNECT, "/", false, 0, NULL, "0"},
    {SIO_CONNECT, "/admin", false, 0, NULL, "0/admin,"},
    {SIO_CONNECT, "/", false, 0, "{\"token\":\"abc\"}", "0{\"token\":\"abc\"}"},
    {SIO_CONNECT, "/admin", false, 0, "{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}",
     "0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}"},
    {SIO_DISCONNECT, "/", false, 0, NULL, "1"},
    {SIO_DISCONNECT, "/admin", false, 0, NULL, "1/admin,"},
    {SIO_EVENT, "/", false, 0, "[\"foo\"]", "2[\"foo\"]"},
    {SIO_EVENT, "", false, 0, "[\"foo\"]", "2[\"foo\"]"}, /* empty nsp means "/" */
    {SIO_EVENT, "/admin", true, 13, "[\"bar\"]", "2/admin,13[\"bar\"]"},
    {SIO_ACK, "/", true, 12, "[]", "312[]"},
    {SIO_ACK, "/admin", true, 13, "[\"bar\"]", "3/admin,13[\"bar\"]"},
    {SIO_CONNECT_ERROR, "/", false, 0, "{\"message\":\"Not authorized\"}",
     "4{\"message\":\"Not authorized\"}"},
    {SIO_CONNECT_ERROR, "/chat", false, 0, "\"Invalid namespace\"", "4/chat,\"Invalid namespace\""},
    {SIO_EVENT, "/", false, 0,
     "[\"msg\",{\"a\":0.1,\"b\":1.5,\"c\":-0.0,\"d\":1e21,\"e\":1e-7,\"f\":123456789.125,"
     "\"g\":5e-324,\"h\":1.7976931348623157e308}]",
     "2[\"msg\",{\"a\":0.1,\"b\":1.5,\"c\":0,\"d\":1e+21,\"e\":1e-7,\"f\":123456789.125,"
     "\"g\":5e-324,\"h\":1.7976931348623157e+308}]"},
    {SIO_EVENT, "/", false, 0,
     "[\"s\",\"q\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f \xc3\xa9\xe2\x82\xac"
     "\xf0\x9f\x98\x80\\u2028\"]",
     "2[\"s\",\"q\\\"\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
     "\xe2\x80\xa8\"]"},
    {SIO_EVENT, "/", false, 0, "[\"n\",9007199254740991,-9007199254740991,0,true,false,null,[],{}]",
     "2[\"n\",9007199254740991,-9007199254740991,0,true,false,null,[],{}]"},
    {SIO_EVENT, "/", false, 0, "[\"x\",123e-20,0.000001,1.5e300,-2.5e-8,100.0]",
     "2[\"x\",1.23e-18,0.000001,1.5e+300,-2.5e-8,100]"},
    /* a BINARY_* request with nothing binary in it goes out plain, like socket.io-parser */
    {SIO_BINARY_EVENT, "/", false, 0, "[\"foo\"]", "2[\"foo\"]"},
    {SIO_BINARY_ACK, "/", true, 3, "[]", "33[]"},
};

static void test_encode_rows(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof enc_rows / sizeof enc_rows[0]; i++) {
        const enc_row_t *r = &enc_rows[i];
        sio_packet_t p;
        sio_packet_init(&p);
        p.type = r->type;
        p.nsp = pl_slice_cstr(r->nsp);
        p.has_id = r->has_id;
        p.id = r->id;
        p.data = r->data ? json(r->data) : NULL;
        expect_encoding(&p, r->want, NULL);
        sio_packet_dispose(&p); /* owns nothing but the data we parsed */
    }
}

static void test_encode_binary(void **state) {
    (void)state;
    pl_rcbuf_t *a = pl_rcbuf_from("\x01\x02\x03\x04", 4);
    pl_rcbuf_t *b12 = pl_rcbuf_from("\x01\x02", 2);
    pl_rcbuf_t *b34 = pl_rcbuf_from("\x03\x04", 2);
    pl_rcbuf_t *empty = pl_rcbuf_from("", 0);
    sio_attachments_t att;
    sio_attachments_init(&att);

    /* {type: EVENT, data: ["baz", <01 02 03 04>]} -> 51-["baz",{...num:0}] + <01 02 03 04> */
    pl_rcbuf_t *one[] = {a};
    sio_packet_t p;
    sio_packet_init(&p);
    p.type = SIO_EVENT;
    p.data = json_pack("[so]", "baz", sio_placeholder_new(0));
    p.bufs = one;
    p.nbufs = 1;
    expect_encoding(&p, "51-[\"baz\",{\"_placeholder\":true,\"num\":0}]", &att);
    assert_int_equal(att.count, 1);
    assert_ptr_equal(att.bufs[0], a);
    sio_attachments_dispose(&att);
    json_decref(p.data);

    /* {EVENT, "/admin", ["baz", <01 02>, <03 04>], id 14} given with the buffers in the other
     * order: renumbered to socket.io-parser's order */
    pl_rcbuf_t *two[] = {b34, b12};
    p.nsp = pl_slice_cstr("/admin");
    p.has_id = true;
    p.id = 14;
    p.data = json_pack("[soo]", "baz", sio_placeholder_new(1), sio_placeholder_new(0));
    p.bufs = two;
    p.nbufs = 2;
    expect_encoding(&p,
                    "52-/admin,14[\"baz\",{\"_placeholder\":true,\"num\":0},"
                    "{\"_placeholder\":true,\"num\":1}]",
                    &att);
    assert_int_equal(att.count, 2);
    assert_ptr_equal(att.bufs[0], b12);
    assert_ptr_equal(att.bufs[1], b34);
    sio_attachments_dispose(&att);
    json_decref(p.data);

    /* {ACK, ["bar", <01 02 03 04>], id 15} -> 61-15[...] */
    p.type = SIO_ACK;
    p.nsp = pl_slice_cstr("/");
    p.id = 15;
    p.data = json_pack("[so]", "bar", sio_placeholder_new(0));
    p.bufs = one;
    p.nbufs = 1;
    expect_encoding(&p, "61-15[\"bar\",{\"_placeholder\":true,\"num\":0}]", &att);
    sio_attachments_dispose(&att);
    json_decref(p.data);

    /* nested: ["deep",{"x":[<09>,{"y":<08 07>}],"z":<>}] -> 53-... */
    pl_rcbuf_t *nine = pl_rcbuf_from("\x09", 1);
    pl_rcbuf_t *eight = pl_rcbuf_from("\x08\x07", 2);
    pl_rcbuf_t *three[] = {empty, nine, eight};
    p.type = SIO_EVENT;
    p.has_id = false;
    p.data = json_pack("[s{s[o{so}]so}]", "deep", "x", sio_placeholder_new(1), "y",
                       sio_placeholder_new(2), "z", sio_placeholder_new(0));
    p.bufs = three;
    p.nbufs = 3;
    expect_encoding(&p,
                    "53-[\"deep\",{\"x\":[{\"_placeholder\":true,\"num\":0},{\"y\":{"
                    "\"_placeholder\":true,\"num\":1}}],\"z\":{\"_placeholder\":true,\"num\":2}}]",
                    &att);
    assert_int_equal(att.count, 3);
    assert_ptr_equal(att.bufs[0], nine);
    assert_ptr_equal(att.bufs[1], eight);
    assert_ptr_equal(att.bufs[2], empty);
    sio_attachments_dispose(&att);
    json_decref(p.data);

    /* the same buffer twice is two attachments, as socket.io-parser does */
    p.data = json_pack("[soo]", "twice", sio_placeholder_new(0), sio_placeholder_new(0));
    p.bufs = one;
    p.nbufs = 1;
    expect_encoding(&p,
                    "52-[\"twice\",{\"_placeholder\":true,\"num\":0},"
                    "{\"_placeholder\":true,\"num\":1}]",
                    &att);
    assert_int_equal(att.count, 2);
    assert_ptr_equal(att.bufs[0], a);
    assert_ptr_equal(att.bufs[1], a);
    assert_int_equal(a->refs, 3);
    sio_attachments_dispose(&att);
    json_decref(p.data);

    /* more than 10 attachments (one buffer eleven times): socket.io-client would refuse it */
    p.data = json_pack("[sooooooooooo]", "many", sio_placeholder_new(0), sio_placeholder_new(0),
                       sio_placeholder_new(0), sio_placeholder_new(0), sio_placeholder_new(0),
                       sio_placeholder_new(0), sio_placeholder_new(0), sio_placeholder_new(0),
                       sio_placeholder_new(0), sio_placeholder_new(0), sio_placeholder_new(0));
    assert_non_null(p.data);
    {
        pl_buf_t out;
        pl_buf_init(&out, 0);
        assert_int_equal(sio_packet_encode(&p, &out, &att), PL_ETOOBIG);
        assert_int_equal(out.len, 0);
        assert_int_equal(att.count, 0);
        json_array_remove(p.data, 11); /* ten is the most */
        expect_encoding(&p,
                        "510-[\"many\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":"
                        "true,\"num\":1},{\"_placeholder\":true,\"num\":2},{\"_placeholder\":"
                        "true,\"num\":3},{\"_placeholder\":true,\"num\":4},{\"_placeholder\":"
                        "true,\"num\":5},{\"_placeholder\":true,\"num\":6},{\"_placeholder\":"
                        "true,\"num\":7},{\"_placeholder\":true,\"num\":8},{\"_placeholder\":"
                        "true,\"num\":9}]",
                        &att);
        assert_int_equal(att.count, 10);
        sio_attachments_dispose(&att);
        pl_buf_dispose(&out);
    }
    json_decref(p.data);

    /* buffers given but no placeholder: plain EVENT, no attachments */
    p.data = json_pack("[s]", "plain");
    expect_encoding(&p, "2[\"plain\"]", &att);
    assert_int_equal(att.count, 0);
    json_decref(p.data);

    assert_int_equal(a->refs, 1);
    pl_rcbuf_unref(a);
    pl_rcbuf_unref(b12);
    pl_rcbuf_unref(b34);
    pl_rcbuf_unref(empty);
    pl_rcbuf_unref(nine);
    pl_rcbuf_unref(eight);
}

typedef struct {
    sio_type_t type;
    const char *nsp;
    bool has_id;
    uint64_t id;
    const char *data;
    size_t nbufs;
} enc_bad_row_t;

static const enc_bad_row_t enc_bad_rows[] = {
    {(sio_type_t)7, "/", false, 0, NULL, 0},
    {SIO_EVENT, "/", false, 0, "[\"connect\"]", 0}, /* reserved, as socket.emit refuses */
    {SIO_EVENT, "/", false, 0, "[1]", 0},           /* name not a string */
    {SIO_EVENT, "/", false, 0, NULL, 0},            /* no data */
    {SIO_ACK, "/", false, 0, "[]", 0},              /* no id */
    {SIO_DISCONNECT, "/", false, 0, "{}", 0},
    {SIO_CONNECT, "/", false, 0, "[]", 0},
    {SIO_CONNECT_ERROR, "/", false, 0, "1", 0},
    {SIO_EVENT, "admin", false, 0, "[\"a\"]", 0}, /* nsp must start with '/' */
    {SIO_EVENT, "/a,b", false, 0, "[\"a\"]", 0},  /* ',' would end the nsp */
    {SIO_EVENT, "/a\nb", false, 0, "[\"a\"]", 0},
    {SIO_EVENT, "/", true, 9007199254740992ULL, "[\"a\"]", 0}, /* id over 2^53 - 1 */
    /* placeholders that point past the buffers given */
    {SIO_EVENT, "/", false, 0, "[\"a\",{\"_placeholder\":true,\"num\":1}]", 1},
    {SIO_EVENT, "/", false, 0, "[\"a\",{\"_placeholder\":true,\"num\":\"splice\"}]", 1},
    {SIO_EVENT, "/", false, 0, "[\"a\",{\"_placeholder\":true}]", 1},
};

static void test_encode_bad(void **state) {
    (void)state;
    pl_rcbuf_t *buf = pl_rcbuf_from("x", 1);
    pl_rcbuf_t *bufs[] = {buf};
    for (size_t i = 0; i < sizeof enc_bad_rows / sizeof enc_bad_rows[0]; i++) {
        const enc_bad_row_t *r = &enc_bad_rows[i];
        sio_packet_t p;
        sio_packet_init(&p);
        p.type = r->type;
        p.nsp = pl_slice_cstr(r->nsp);
        p.has_id = r->has_id;
        p.id = r->id;
        p.data = r->data ? json(r->data) : NULL;
        p.bufs = r->nbufs ? bufs : NULL;
        p.nbufs = r->nbufs;
        pl_buf_t out;
        pl_buf_init(&out, 0);
        assert_int_equal(pl_buf_append_cstr(&out, "4"), 0);
        sio_attachments_t att;
        sio_attachments_init(&att);
        int rc = sio_packet_encode(&p, &out, &att);
        if (rc != PL_EINVAL)
            fail_msg("row %zu: rc %d", i, rc);
        assert_int_equal(out.len, 1); /* restored */
        assert_int_equal(att.count, 0);
        assert_null(att.bufs);
        pl_buf_dispose(&out);
        if (p.data)
            json_decref(p.data);
    }
    assert_int_equal(buf->refs, 1);

    /* attachments requested but nowhere to put them */
    sio_packet_t p;
    sio_packet_init(&p);
    p.type = SIO_EVENT;
    p.data = json_pack("[so]", "a", sio_placeholder_new(0));
    p.bufs = bufs;
    p.nbufs = 1;
    pl_buf_t out;
    pl_buf_init(&out, 0);
    assert_int_equal(sio_packet_encode(&p, &out, NULL), PL_EINVAL);

    /* the output's max: restored, references dropped */
    sio_attachments_t att;
    sio_attachments_init(&att);
    pl_buf_dispose(&out);
    pl_buf_init(&out, 10);
    assert_int_equal(sio_packet_encode(&p, &out, &att), PL_ETOOBIG);
    assert_int_equal(out.len, 0);
    assert_int_equal(att.count, 0);
    assert_int_equal(buf->refs, 1);
    pl_buf_dispose(&out);
    json_decref(p.data);
    pl_rcbuf_unref(buf);
}

static void test_encode_shared(void **state) {
    (void)state;
    sio_packet_t p;
    sio_packet_init(&p);
    p.type = SIO_EVENT;
    p.data = json("[\"newMessage\",{\"id\":1,\"content\":\"hi\"}]");
    pl_rcbuf_t *text = NULL;
    assert_int_equal(sio_packet_encode_shared(&p, &text, NULL), 0);
    const char *want = "42[\"newMessage\",{\"id\":1,\"content\":\"hi\"}]";
    assert_int_equal(text->len, strlen(want));
    assert_memory_equal(text->data, want, text->len);
    assert_int_equal(text->refs, 1);
    /* every receiver takes a reference to the same bytes */
    pl_rcbuf_ref(text);
    pl_rcbuf_unref(text);
    pl_rcbuf_unref(text);
    json_decref(p.data);

    p.type = SIO_ACK; /* no id: refused, nothing returned */
    p.data = json("[]");
    text = NULL;
    assert_int_equal(sio_packet_encode_shared(&p, &text, NULL), PL_EINVAL);
    assert_null(text);
    json_decref(p.data);
}

/* The BAD-INPUTS.md inputs exactly as they arrive in a WebSocket text frame ('4' + packet),
 * through the Engine.IO decoder and then the Socket.IO decoder, as the server chains them. */
typedef struct {
    const char *frame;
    size_t len;
    int rc;
    const char *error;
} wire_row_t;

static const wire_row_t wire_rows[] = {
    {S("42[\"hello\"]"), 0, NULL},
    {S("451-[\"hello\",{\"_placeholder\":true,\"num\":\"splice\"}]"), PL_EINVAL,
     "invalid placeholder"},                                                     /* CVE-2022-2421 */
    {S("42[{\"toString\":\"foo\"}]"), PL_EINVAL, "event name must be a string"}, /* 2023-32695 */
    {S("4599999999-[\"a\"]"), PL_EINVAL, "illegal attachments"}, /* CVE-2026-33151 */
    {S("450-[\"hello\"]"), PL_EINVAL, "illegal attachments"},    /* CVE-2026-69185 */
};

static void test_wire_bad_inputs(void **state) {
    (void)state;
    pl_buf_t scratch;
    pl_buf_init(&scratch, 0);
    for (size_t i = 0; i < sizeof wire_rows / sizeof wire_rows[0]; i++) {
        const wire_row_t *r = &wire_rows[i];
        eio_packet_t e;
        assert_int_equal(eio_packet_decode_ws(&e, r->frame, r->len, false, NULL, &scratch), 0);
        assert_int_equal(e.type, EIO_MESSAGE);
        sio_packet_t p;
        int rc = sio_packet_decode(&p, e.data.ptr, e.data.len, NULL);
        if (rc != r->rc)
            fail_msg("row %zu (%s): rc %d (%s)", i, r->frame, rc, p.error);
        if (r->error)
            assert_string_equal(p.error, r->error);
        sio_packet_dispose(&p);
    }
    pl_buf_dispose(&scratch);
}

static void test_helpers(void **state) {
    (void)state;
    assert_string_equal(sio_type_name(SIO_BINARY_ACK), "BINARY_ACK");
    assert_string_equal(sio_type_name((sio_type_t)9), "UNKNOWN");
    assert_true(sio_event_reserved(S("newListener")));
    assert_false(sio_event_reserved(S("newListene")));
    assert_false(sio_event_reserved(S("message")));
    json_t *ph = sio_placeholder_new(3);
    size_t num = 0;
    assert_true(sio_placeholder_num(ph, &num));
    assert_int_equal(num, 3);
    json_decref(ph);
    json_t *notph = json("{\"_placeholder\":false,\"num\":1}");
    assert_false(sio_placeholder_num(notph, &num));
    json_decref(notph);
    json_t *one = json("{\"_placeholder\":1,\"num\":1}"); /* must be JSON true */
    assert_false(sio_placeholder_num(one, &num));
    json_decref(one);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_good),       cmocka_unit_test(test_decode_bad),
        cmocka_unit_test(test_decode_limits),     cmocka_unit_test(test_attachments),
        cmocka_unit_test(test_attachment_limits), cmocka_unit_test(test_encode_rows),
        cmocka_unit_test(test_encode_binary),     cmocka_unit_test(test_encode_bad),
        cmocka_unit_test(test_encode_shared),     cmocka_unit_test(test_wire_bad_inputs),
        cmocka_unit_test(test_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
