/* Rooms of a Socket.IO namespace: two hash tables and intrusive lists, see rooms.h. */
#include "sio/rooms.h"

#include <stdlib.h>
#include <string.h>

void sio__rooms_init(sio__rooms_t *r) {
    pl_map_init(&r->rooms);
    pl_map_init(&r->members);
}

void sio__rooms_dispose(sio__rooms_t *r) {
    size_t i = 0;
    const pl_map_slot_t *slot;
    while (pl_map_next(&r->rooms, &i, &slot)) {
        sio__room_t *room = slot->value;
        sio__member_t *m = room->members;
        while (m) {
            sio__member_t *next = m->room_next;
            free(m);
            m = next;
        }
        free(room);
    }
    pl_map_dispose(&r->rooms);
    pl_map_dispose(&r->members);
}

sio__room_t *sio__rooms_find(const sio__rooms_t *r, const char *name, size_t len) {
    if (len > SIO_ROOM_NAME_MAX)
        return NULL;
    return pl_map_get(&r->rooms, name, len);
}

static sio__member_t *find_member(const sio__rooms_t *r, sio__room_t *room, const void *owner) {
    struct {
        sio__room_t *room;
        void *owner;
    } key = {room, (void *)owner};
    return pl_map_get(&r->members, (const char *)&key, sizeof key);
}

bool sio__rooms_contains(const sio__rooms_t *r, const void *owner, const char *name, size_t len) {
    sio__room_t *room = sio__rooms_find(r, name, len);
    return room && find_member(r, room, owner);
}

int sio__rooms_join(sio__rooms_t *r, sio__member_t **owned, void *owner, const char *name,
                    size_t len) {
    if (len > SIO_ROOM_NAME_MAX)
        return PL_EINVAL;
    sio__room_t *room = pl_map_get(&r->rooms, name, len);
    bool new_room = !room;
    if (room && find_member(r, room, owner))
        return 1;
    if (new_room) {
        room = malloc(sizeof *room + len + 1);
        if (!room)
            return PL_ENOMEM;
        room->members = NULL;
        room->size = 0;
        room->name_len = len;
        memcpy(room->name, name, len);
        room->name[len] = '\0';
        if (pl_map_put(&r->rooms, room->name, len, room, NULL) != 0)
            goto out_free_room;
    }
    sio__member_t *m = malloc(sizeof *m);
    if (!m)
        goto out_unmap_room;
    memset(m, 0, sizeof *m);
    m->key.room = room;
    m->key.owner = owner;
    if (pl_map_put(&r->members, (const char *)&m->key, sizeof m->key, m, NULL) != 0)
        goto out_free_member;

    m->room_next = room->members;
    if (room->members)
        room->members->room_prev = m;
    room->members = m;
    room->size++;
    m->own_next = *owned;
    if (*owned)
        (*owned)->own_prev = m;
    *owned = m;
    return 0;

out_free_member:
    free(m);
out_unmap_room:
    if (new_room)
        pl_map_del(&r->rooms, room->name, len);
out_free_room:
    if (new_room)
        free(room);
    return PL_ENOMEM;
}

/* Unlinks m from everything and frees it, and its room if that became empty. */
static void drop_member(sio__rooms_t *r, sio__member_t **owned, sio__member_t *m) {
    sio__room_t *room = m->key.room;
    pl_map_del(&r->members, (const char *)&m->key, sizeof m->key);
    if (m->room_prev)
        m->room_prev->room_next = m->room_next;
    else
        room->members = m->room_next;
    if (m->room_next)
        m->room_next->room_prev = m->room_prev;
    if (m->own_prev)
        m->own_prev->own_next = m->own_next;
    else
        *owned = m->own_next;
    if (m->own_next)
        m->own_next->own_prev = m->own_prev;
    free(m);
    if (--room->size == 0) {
        pl_map_del(&r->rooms, room->name, room->name_len);
        free(room);
    }
}

bool sio__rooms_leave(sio__rooms_t *r, sio__member_t **owned, void *owner, const char *name,
                      size_t len) {
    sio__room_t *room = sio__rooms_find(r, name, len);
    if (!room)
        return false;
    sio__member_t *m = find_member(r, room, owner);
    if (!m)
        return false;
    drop_member(r, owned, m);
    return true;
}

void sio__rooms_leave_all(sio__rooms_t *r, sio__member_t **owned) {
    while (*owned)
        drop_member(r, owned, *owned);
}
