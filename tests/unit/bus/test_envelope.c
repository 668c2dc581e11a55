/* Unit tests for the bus envelope codec (bus/bus_redis.h): round trips (text only, rooms and
 * except rooms, binary attachments including empty ones) in version 2 (with the sender's
 * sequence number) and version 1 (no id, still decoded), exact bytes of both headers, boundary
 * rows (longest node id and room name, many targets, the largest sequence number) and malformed
 * rows (every truncation of a valid envelope, bad magic and version, NUL in names, zero lengths,
 * counts the data cannot hold, trailing bytes, version-2 ids with sequence number 0, a cut
 * sequence number or a node id outside [A-Za-z0-9_.-]). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "bus/bus_redis.h"
#include "sio/rooms.h"

#include <stdlib.h>
#include <string.h>

static void encode(pl_buf_t *b, const char *node, uint64_t seq, const sio_target_t *to,
                   const char *text, pl_rcbuf_t *const *att, size_t natt) {
    pl_rcbuf_t *t = pl_rcbuf_from(text, strlen(text));
    pl_buf_reset(b);
    assert_int_equal(bus_envelope_encode(b, node, seq, to, t, att, natt), 0);
    pl_rcbuf_unref(t);
}

static void test_round_trips(void **state) {
    (void)state;
    pl_buf_t b;
    pl_buf_init(&b, 0);
    bus_envelope_t e;
    /* Everyone in the namespace, text only. */
    encode(&b, "node-1", 77, NULL, "42[\"hello\"]", NULL, 0);
    assert_int_equal(bus_envelope_decode(b.data, b.len, &e), 0);
    assert_int_equal(e.version, 2);
    assert_true(e.seq == 77);
    assert_string_equal(e.node, "node-1");
    assert_int_equal(e.nrooms, 0);
    assert_int_equal(e.nexcept, 0);
    assert_int_equal(e.text->len, 11);
    assert_memory_equal(e.text->data, "42[\"hello\"]", 11);
    assert_int_equal(e.natt, 0);
    bus_envelope_dispose(&e);
    /* Rooms, except rooms and attachments (one empty). */
    const char *rooms[] = {"project:7", "AbCdEfGhIjKlMnOpQrSt"};
    const char *except[] = {"visitor:7:abc"};
    sio_target_t to = {.rooms = rooms, .nrooms = 2, .except = except, .nexcept = 1};
    pl_rcbuf_t *att[2] = {pl_rcbuf_from("\x00\x01\xff", 3), pl_rcbuf_new(0)};
    encode(&b, "n", UINT64_MAX, &to, "451-[\"bin\",{\"_placeholder\":true,\"num\":0}]", att, 2);
    assert_int_equal(bus_envelope_decode(b.data, b.len, &e), 0);
    assert_true(e.seq == UINT64_MAX);
    assert_int_equal(e.nrooms, 2);
    assert_string_equal(e.rooms[0], "project:7");
    assert_string_equal(e.rooms[1], "AbCdEfGhIjKlMnOpQrSt");
    assert_int_equal(e.nexcept, 1);
    assert_string_equal(e.except[0], "visitor:7:abc");
    assert_int_equal(e.natt, 2);
    assert_int_equal(e.att[0]->len, 3);
    assert_memory_equal(e.att[0]->data, "\x00\x01\xff", 3);
    assert_int_equal(e.att[1]->len, 0);
    bus_envelope_dispose(&e);
    pl_rcbuf_unref(att[0]);
    pl_rcbuf_unref(att[1]);
    /* Boundaries: the longest node id and room name, many rooms. */
    char node[BUS_NODE_ID_MAX + 1];
    memset(node, 'x', BUS_NODE_ID_MAX);
    node[BUS_NODE_ID_MAX] = '\0';
    char room[SIO_ROOM_NAME_MAX + 1];
    memset(room, 'r', SIO_ROOM_NAME_MAX);
    room[SIO_ROOM_NAME_MAX] = '\0';
    const char **many = calloc(BUS_TARGETS_MAX, sizeof *many);
    for (size_t i = 0; i < BUS_TARGETS_MAX; i++)
        many[i] = i == 0 ? room : "r";
    sio_target_t big = {.rooms = many, .nrooms = BUS_TARGETS_MAX};
    encode(&b, node, 1, &big, "4x", NULL, 0);
    assert_int_equal(bus_envelope_decode(b.data, b.len, &e), 0);
    assert_string_equal(e.node, node);
    assert_int_equal(e.nrooms, BUS_TARGETS_MAX);
    assert_string_equal(e.rooms[0], room);
    bus_envelope_dispose(&e);
    free(many);
    pl_buf_dispose(&b);
}

/* The exact bytes of both versions, and version 1 (a node not upgraded yet) still decoded. */
static void test_versions(void **state) {
    (void)state;
    pl_buf_t b;
    pl_buf_init(&b, 0);
    bus_envelope_t e;
    const char *rooms[] = {"r"};
    sio_target_t to = {.rooms = rooms, .nrooms = 1};
    static const struct {
        uint64_t seq;
        const char *bytes;
        size_t len;
    } rows[] = {
        {0x0102030405060708ull,
         "PB\x02\x02n1\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x01r\x00\x00\x00\x00\x00\x02"
         "4x\x00\x00",
         29},
        {1,
         "PB\x02\x02n1\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01\x00\x01r\x00\x00\x00\x00\x00\x02"
         "4x\x00\x00",
         29},
        {0, /* version 1: no id */
         "PB\x01\x02n1\x00\x01\x00\x01r\x00\x00\x00\x00\x00\x02"
         "4x\x00\x00",
         21},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        encode(&b, "n1", rows[i].seq, &to, "4x", NULL, 0);
        if (b.len != rows[i].len || memcmp(b.data, rows[i].bytes, b.len) != 0)
            fail_msg("row %zu: encoded differently (%zu bytes)", i, b.len);
        assert_int_equal(bus_envelope_decode(rows[i].bytes, rows[i].len, &e), 0);
        assert_int_equal(e.version, rows[i].seq ? 2 : 1);
        assert_true(e.seq == rows[i].seq);
        assert_string_equal(e.node, "n1");
        assert_int_equal(e.nrooms, 1);
        assert_string_equal(e.rooms[0], "r");
        assert_int_equal(e.text->len, 2);
        bus_envelope_dispose(&e);
    }
    /* Version 1 keeps its looser node ids (any byte but NUL); version 2 does not. */
    assert_int_equal(bus_envelope_decode("PB\x01\x03"
                                         "a b\x00\x00\x00\x00\x00\x00\x00\x02"
                                         "4x\x00\x00",
                                         19, &e),
                     0);
    assert_string_equal(e.node, "a b");
    assert_true(e.seq == 0);
    bus_envelope_dispose(&e);
    pl_buf_dispose(&b);
}

static void test_encode_refusals(void **state) {
    (void)state;
    pl_buf_t b;
    pl_buf_init(&b, 0);
    pl_rcbuf_t *t = pl_rcbuf_from("4x", 2);
    pl_rcbuf_t *empty = pl_rcbuf_new(0);
    char node[BUS_NODE_ID_MAX + 2];
    memset(node, 'x', sizeof node - 1);
    node[sizeof node - 1] = '\0';
    char room[SIO_ROOM_NAME_MAX + 2];
    memset(room, 'r', sizeof room - 1);
    room[sizeof room - 1] = '\0';
    const char *long_room[] = {room};
    const char *empty_room[] = {""};
    const char *rooms_many[1] = {"r"};
    static const struct {
        int rc;
        int which;
    } rows[] = {{PL_EINVAL, 0},  {PL_EINVAL, 1},  {PL_EINVAL, 2}, {PL_EINVAL, 3}, {PL_EINVAL, 4},
                {PL_ETOOBIG, 5}, {PL_ETOOBIG, 6}, {PL_EINVAL, 7}, {PL_EINVAL, 8}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        pl_buf_reset(&b);
        int rc = 0;
        switch (rows[i].which) {
        case 0:
            rc = bus_envelope_encode(&b, "", 1, NULL, t, NULL, 0);
            break;
        case 1:
            rc = bus_envelope_encode(&b, node, 1, NULL, t, NULL, 0);
            break;
        case 2:
            rc = bus_envelope_encode(&b, "n", 1, NULL, empty, NULL, 0);
            break;
        case 3:
            rc = bus_envelope_encode(&b, "n", 1, &(sio_target_t){.rooms = long_room, .nrooms = 1},
                                     t, NULL, 0);
            break;
        case 4:
            rc = bus_envelope_encode(
                &b, "n", 1, &(sio_target_t){.except = empty_room, .nexcept = 1}, t, NULL, 0);
            break;
        case 5:
            rc = bus_envelope_encode(
                &b, "n", 1, &(sio_target_t){.rooms = rooms_many, .nrooms = BUS_TARGETS_MAX + 1}, t,
                NULL, 0);
            break;
        case 6:
            rc = bus_envelope_encode(&b, "n", 1, NULL, t, NULL, BUS_ATT_MAX + 1);
            break;
        case 7: /* a node id a version-2 receiver would refuse */
            rc = bus_envelope_encode(&b, "a b", 1, NULL, t, NULL, 0);
            break;
        case 8:
            rc = bus_envelope_encode(&b, "n\xc3\xa9", 1, NULL, t, NULL, 0);
            break;
        }
        if (rc != rows[i].rc)
            fail_msg("row %zu: rc %d", i, rc);
    }
    pl_rcbuf_unref(t);
    pl_rcbuf_unref(empty);
    pl_buf_dispose(&b);
}

static void test_malformed(void **state) {
    (void)state;
    pl_buf_t b;
    pl_buf_init(&b, 0);
    const char *rooms[] = {"project:1"};
    const char *except[] = {"sock"};
    sio_target_t to = {.rooms = rooms, .nrooms = 1, .except = except, .nexcept = 1};
    pl_rcbuf_t *att[1] = {pl_rcbuf_from("abc", 3)};
    encode(&b, "node", 123456789, &to, "451-[\"x\"]", att, 1);
    pl_rcbuf_unref(att[0]);
    bus_envelope_t e;
    /* Every strict prefix is refused, and so is one more byte. */
    for (size_t n = 0; n < b.len; n++) {
        if (bus_envelope_decode(b.data, n, &e) != PL_EINVAL)
            fail_msg("prefix of %zu bytes accepted", n);
    }
    char *plus = malloc(b.len + 1);
    memcpy(plus, b.data, b.len);
    plus[b.len] = 'x';
    assert_int_equal(bus_envelope_decode(plus, b.len + 1, &e), PL_EINVAL);
    free(plus);
    /* Hand-made rows. */
    static const struct {
        const char *bytes;
        size_t len;
    } rows[] = {
        {"XB\x01\x01n\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02"
         "4x\x00\x00",
         19}, /* magic */
        {"PB\x03\x01n\x00\x00\x00\x00\x00\x00\x00\x02"
         "4x\x00\x00",
         17}, /* version */
        {"PB\x00\x01n\x00\x00\x00\x00\x00\x00\x00\x02"
         "4x\x00\x00",
         17}, /* version */
        {"PB\x02\x01n\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02"
         "4x\x00\x00",
         25}, /* v2: sequence number 0 */
        {"PB\x02\x01n\x00\x00\x00\x00\x00\x00\x00\x02"
         "4x\x00\x00",
         17},                           /* v2 without its sequence number (a v1 body) */
        {"PB\x02\x01n\x00\x00\x00", 8}, /* v2: sequence number cut short */
        {"PB\x02\x03"
         "a b\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02"
         "4x\x00\x00",
         27}, /* v2: node id with a space */
        {"PB\x02\x02n\xff\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02"
         "4x\x00\x00",
         26}, /* v2: node id with a non-ASCII byte */
        {"PB\x01\x00\x00\x00\x00\x00\x00\x00\x00\x02"
         "4x\x00\x00",
         16}, /* no node */
        {"PB\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x02"
         "4x\x00\x00",
         17},                                                        /* NUL node */
        {"PB\x01\x01n\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 15}, /* no text */
        {"PB\x01\x01n\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02"
         "4x\x00\x00",
         19}, /* empty room */
        {"PB\x01\x01n\x00\x01\x00\x02r\x00\x00\x00\x00\x00\x00\x02"
         "4x\x00\x00",
         22}, /* NUL */
        {"PB\x01\x01n\xff\xff\x00\x00\x00\x00\x00\x02"
         "4x\x00\x00",
         17}, /* count */
        {"PB\x01\x01n\x00\x00\x00\x00\xff\xff\xff\xff"
         "4x\x00\x00",
         17}, /* text len */
        {"PB\x01\x01n\x00\x00\x00\x00\x00\x00\x00\x02"
         "4x\xff\xff",
         17}, /* att count */
        {"PB\x01\x01n\x00\x00\x00\x00\x00\x00\x00\x02"
         "4x\x00\x01\xff\xff\xff\xff",
         21},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int rc = bus_envelope_decode(rows[i].bytes, rows[i].len, &e);
        if (rc != PL_EINVAL)
            fail_msg("row %zu accepted (rc %d)", i, rc);
    }
    /* The minimal valid envelopes of both versions, for contrast. */
    assert_int_equal(bus_envelope_decode("PB\x01\x01n\x00\x00\x00\x00\x00\x00\x00\x02"
                                         "4x\x00\x00",
                                         17, &e),
                     0);
    bus_envelope_dispose(&e);
    assert_int_equal(
        bus_envelope_decode(
            "PB\x02\x01n\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02"
            "4x\x00\x00",
            25, &e),
        0);
    assert_true(e.seq == 1);
    bus_envelope_dispose(&e);
    pl_buf_dispose(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_encode_refusals),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
