/* Unit tests for src/sio/rooms.c: join/leave/contains rows (good, boundary, hostile names),
 * rooms freed when empty, leave_all, and a randomised churn checked against a plain model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "core/id.h"
#include "sio/rooms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    sio__member_t *rooms; /* as a socket keeps it */
    int tag;
} owner_t;

static size_t owned_count(const owner_t *o) {
    size_t n = 0;
    for (const sio__member_t *m = o->rooms; m; m = m->own_next)
        n++;
    return n;
}

static int join(sio__rooms_t *r, owner_t *o, const char *name) {
    return sio__rooms_join(r, &o->rooms, o, name, strlen(name));
}

static void test_join_leave_rows(void **state) {
    (void)state;
    sio__rooms_t r;
    sio__rooms_init(&r);
    owner_t a = {0}, b = {0};
    static const struct {
        const char *room;
        int want;
    } rows[] = {
        {"project:1", 0}, {"project:1", 1}, /* second join: already a member */
        {"project:2", 0}, {"", 0},          /* the empty name is a room like any other */
        {"__proto__", 0}, {"constructor", 0},
        {"toString", 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        assert_int_equal(join(&r, &a, rows[i].room), rows[i].want);
    assert_int_equal(owned_count(&a), 6);
    assert_int_equal(sio__rooms_count(&r), 6);
    assert_true(sio__rooms_contains(&r, &a, "__proto__", 9));
    assert_false(sio__rooms_contains(&r, &b, "__proto__", 9));
    assert_false(sio__rooms_contains(&r, &a, "hasOwnProperty", 14));
    assert_false(sio__rooms_contains(&r, &a, "project", 7)); /* a prefix is another name */

    assert_int_equal(join(&r, &b, "project:1"), 0);
    sio__room_t *room = sio__rooms_find(&r, "project:1", 9);
    assert_non_null(room);
    assert_int_equal(room->size, 2);
    assert_string_equal(room->name, "project:1");

    /* leave: true once, then false; the room survives while b is in it */
    assert_true(sio__rooms_leave(&r, &a.rooms, &a, "project:1", 9));
    assert_false(sio__rooms_leave(&r, &a.rooms, &a, "project:1", 9));
    assert_false(sio__rooms_leave(&r, &a.rooms, &a, "nowhere", 7));
    assert_int_equal(sio__rooms_find(&r, "project:1", 9)->size, 1);
    assert_true(sio__rooms_leave(&r, &b.rooms, &b, "project:1", 9));
    assert_null(sio__rooms_find(&r, "project:1", 9)); /* empty rooms are freed */
    assert_null(b.rooms);

    sio__rooms_leave_all(&r, &a.rooms);
    assert_null(a.rooms);
    assert_int_equal(sio__rooms_count(&r), 0);
    sio__rooms_dispose(&r);
}

static void test_name_limits(void **state) {
    (void)state;
    sio__rooms_t r;
    sio__rooms_init(&r);
    owner_t a = {0};
    char name[SIO_ROOM_NAME_MAX + 2];
    memset(name, 'x', sizeof name);
    /* exactly the maximum is fine, one more byte is refused and changes nothing */
    assert_int_equal(sio__rooms_join(&r, &a.rooms, &a, name, SIO_ROOM_NAME_MAX), 0);
    assert_int_equal(sio__rooms_join(&r, &a.rooms, &a, name, SIO_ROOM_NAME_MAX + 1), PL_EINVAL);
    assert_int_equal(owned_count(&a), 1);
    assert_null(sio__rooms_find(&r, name, SIO_ROOM_NAME_MAX + 1));
    assert_false(sio__rooms_contains(&r, &a, name, SIO_ROOM_NAME_MAX + 1));
    /* bytes, not C strings: an embedded NUL makes a different name */
    assert_int_equal(sio__rooms_join(&r, &a.rooms, &a, "a\0b", 3), 0);
    assert_int_equal(sio__rooms_join(&r, &a.rooms, &a, "a", 1), 0);
    assert_int_equal(sio__rooms_count(&r), 3);
    assert_true(sio__rooms_contains(&r, &a, "a\0b", 3));
    sio__rooms_leave_all(&r, &a.rooms);
    sio__rooms_dispose(&r);
}

/* Leaving from the middle, head and tail of both lists keeps every link consistent. */
static void test_list_positions(void **state) {
    (void)state;
    sio__rooms_t r;
    sio__rooms_init(&r);
    owner_t o[4] = {{0}};
    const char *names[] = {"r0", "r1", "r2", "r3"};
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 4; k++)
            assert_int_equal(join(&r, &o[i], names[k]), 0);
    /* middle, head (last joined is the head), tail */
    assert_true(sio__rooms_leave(&r, &o[1].rooms, &o[1], "r1", 2));
    assert_true(sio__rooms_leave(&r, &o[3].rooms, &o[3], "r3", 2));
    assert_true(sio__rooms_leave(&r, &o[0].rooms, &o[0], "r0", 2));
    for (int k = 0; k < 4; k++) {
        sio__room_t *room = sio__rooms_find(&r, names[k], 2);
        assert_non_null(room);
        size_t want = k == 2 ? 4 : 3; /* nobody left r2 */
        assert_int_equal(room->size, want);
        size_t n = 0;
        const sio__member_t *prev = NULL;
        for (const sio__member_t *m = room->members; m; m = m->room_next) {
            assert_ptr_equal(m->room_prev, prev);
            assert_ptr_equal(m->key.room, room);
            prev = m;
            n++;
        }
        assert_int_equal(n, want);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(owned_count(&o[i]), i == 2 ? 4 : 3);
        sio__rooms_leave_all(&r, &o[i].rooms);
    }
    assert_int_equal(sio__rooms_count(&r), 0);
    sio__rooms_dispose(&r);
}

/* Random joins and leaves of 64 owners over 40 rooms, checked against a bit matrix. */
static void test_churn_against_model(void **state) {
    (void)state;
    enum { OWNERS = 64, ROOMS = 40, ROUNDS = 100000 };
    static unsigned char model[OWNERS][ROOMS];
    memset(model, 0, sizeof model);
    owner_t o[OWNERS];
    memset(o, 0, sizeof o);
    char names[ROOMS][16];
    for (int k = 0; k < ROOMS; k++)
        snprintf(names[k], sizeof names[k], "room:%d", k);
    sio__rooms_t r;
    sio__rooms_init(&r);
    srand(12345);
    for (int round = 0; round < ROUNDS; round++) {
        int i = rand() % OWNERS, k = rand() % ROOMS;
        size_t len = strlen(names[k]);
        int op = rand() % 10;
        if (op == 0) {
            sio__rooms_leave_all(&r, &o[i].rooms);
            memset(model[i], 0, ROOMS);
        } else if (op < 6) {
            assert_int_equal(sio__rooms_join(&r, &o[i].rooms, &o[i], names[k], len),
                             model[i][k] ? 1 : 0);
            model[i][k] = 1;
        } else {
            assert_int_equal(sio__rooms_leave(&r, &o[i].rooms, &o[i], names[k], len),
                             model[i][k] == 1);
            model[i][k] = 0;
        }
        assert_int_equal(sio__rooms_contains(&r, &o[i], names[k], len), model[i][k] == 1);
    }
    for (int k = 0; k < ROOMS; k++) {
        size_t want = 0;
        for (int i = 0; i < OWNERS; i++)
            want += model[i][k];
        sio__room_t *room = sio__rooms_find(&r, names[k], strlen(names[k]));
        assert_int_equal(room ? room->size : 0, want);
    }
    for (int i = 0; i < OWNERS; i++) {
        size_t want = 0;
        for (int k = 0; k < ROOMS; k++)
            want += model[i][k];
        assert_int_equal(owned_count(&o[i]), want);
    }
    /* dispose with members left frees them all (ASan checks for leaks) */
    sio__rooms_dispose(&r);
}

int main(void) {
    if (pl_id_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_leave_rows),
        cmocka_unit_test(test_name_limits),
        cmocka_unit_test(test_list_positions),
        cmocka_unit_test(test_churn_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
