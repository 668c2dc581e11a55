/* Unit tests for the bus envelope codec (bus/bus_redis.h): round trips (text only, rooms and
 * except rooms, binary attachments including empty ones), boundary rows (longest node id and
 * room name, many targets) and malformed rows (every truncation of a valid envelope, bad magic
 * and version, NUL in names, zero lengths, counts the data cannot hold, trailing bytes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "bus/bus_redis.h"
#include "sio/rooms.h"

#include <stdlib.h>
#include <string.h>

static void encode(pl_buf_t *b, const char *node, const sio_target_t *to, const char *text,
                   pl_rcbuf_t *const *att, size_t natt) {
    pl_rcbuf_t *t = pl_rcbuf_from(text, strlen(text));
    pl_buf_reset(b);
    assert_int_equal(bus_envelope_encode(b, node, to, t, att, natt), 0);
    pl_rcbuf_unref(t);
}

static void test_round_trips(void **state) {
    (void)state;
    pl_buf_t b;
    pl_buf_init(&b, 0);
    bus_envelope_t e;
    /* Everyone in the namespace, text only. */
    encode(&b, "node-1", NULL, "42[\"hello\"]", NULL, 0);
    assert_int_equal(bus_envelope_decode(b.data, b.len, &e), 0);
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
    encode(&b, "n", &to, "451-[\"bin\",{\"_placeholder\":true,\"num\":0}]", att, 2);
    assert_int_equal(bus_envelope_decode(b.data, b.len, &e), 0);
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
    encode(&b, node, &big, "4x", NULL, 0);
    assert_int_equal(bus_envelope_decode(b.data, b.len, &e), 0);
    assert_string_equal(e.node, node);
    assert_int_equal(e.nrooms, BUS_TARGETS_MAX);
    assert_string_equal(e.rooms[0], room);
    bus_envelope_dispose(&e);
    free(many);
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
    } rows[] = {{PL_EINVAL, 0}, {PL_EINVAL, 1},  {PL_EINVAL, 2}, {PL_EINVAL, 3},
                {PL_EINVAL, 4}, {PL_ETOOBIG, 5}, {PL_ETOOBIG, 6}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        pl_buf_reset(&b);
        int rc = 0;
        switch (rows[i].which) {
        case 0:
            rc = bus_envelope_encode(&b, "", NULL, t, NULL, 0);
            break;
        case 1:
            rc = bus_envelope_encode(&b, node, NULL, t, NULL, 0);
            break;
        case 2:
            rc = bus_envelope_encode(&b, "n", NULL, empty, NULL, 0);
            break;
        case 3:
            rc = bus_envelope_encode(&b, "n", &(sio_target_t){.rooms = long_room, .nrooms = 1}, t,
                                     NULL, 0);
            break;
        case 4:
            rc = bus_envelope_encode(&b, "n", &(sio_target_t){.except = empty_room, .nexcept = 1},
                                     t, NULL, 0);
            break;
        case 5:
            rc = bus_envelope_encode(
                &b, "n", &(sio_target_t){.rooms = rooms_many, .nrooms = BUS_TARGETS_MAX + 1}, t,
                NULL, 0);
            break;
        case 6:
            rc = bus_envelope_encode(&b, "n", NULL, t, NULL, BUS_ATT_MAX + 1);
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
    encode(&b, "node", &to, "451-[\"x\"]", att, 1);
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
        {"PB\x02\x01n\x00\x00\x00\x00\x00\x00\x00\x02"
         "4x\x00\x00",
         17}, /* version */
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
    /* The minimal valid envelope, for contrast. */
    assert_int_equal(bus_envelope_decode("PB\x01\x01n\x00\x00\x00\x00\x00\x00\x00\x02"
                                         "4x\x00\x00",
                                         17, &e),
                     0);
    bus_envelope_dispose(&e);
    pl_buf_dispose(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_encode_refusals),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
