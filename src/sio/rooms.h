/* Rooms of one Socket.IO namespace (internal to src/sio): which members (sockets) are in which
 * room, as socket.io-adapter's in-memory Adapter keeps them (`rooms`: room -> set of socket ids,
 * `sids`: socket id -> set of rooms), but with O(1) join, leave and membership tests:
 *
 *   - a hash table room name -> sio__room_t, the room holding a doubly linked list of its
 *     memberships (so a broadcast walks exactly the room's members);
 *   - a hash table (room, owner) -> sio__member_t, so "is this socket in this room" and leave
 *     are O(1) whatever the number of rooms a socket is in;
 *   - per owner (socket) a doubly linked list of its memberships, so leaving every room when the
 *     socket goes away is O(rooms of the socket) and needs no lookup.
 *
 * A membership is one allocation of 48 bytes (two pointers of key, four of links) and is in all
 * three structures at once. A room exists while it has members: the last leave frees it, as the
 * reference adapter deletes empty rooms. Owners are opaque pointers (the caller's sockets); the
 * owner keeps the head of its own membership list (sio__member_t *, NULL when in no room).
 *
 * Names are hash-table keys (SipHash, core/map.h), never looked up in anything else
 * (BAD-INPUTS.md GHSA-5v72-xg48-5rpm): "__proto__" is just a room name.
 * Pure data structure: no I/O; one thread at a time (the loop thread in the server). */
#ifndef SIO_ROOMS_H
#define SIO_ROOMS_H

#include "core/buf.h"
#include "core/map.h"

#include <stdbool.h>
#include <stddef.h>

/* Longest room name in bytes (room names are chosen by the server, e.g. "project:42"). */
#define SIO_ROOM_NAME_MAX 512

typedef struct sio__room sio__room_t;
typedef struct sio__member sio__member_t;

struct sio__member {
    /* The membership's key in sio__rooms_t.members: the two pointers' bytes. Keep first. */
    struct {
        sio__room_t *room; /* the room (owned by the rooms table) */
        void *owner;       /* the member (borrowed: the caller's socket) */
    } key;
    sio__member_t *room_prev, *room_next; /* in the room's list of members */
    sio__member_t *own_prev, *own_next;   /* in the owner's list of rooms */
};

struct sio__room {
    sio__member_t *members; /* head of the member list; never NULL while the room exists */
    size_t size;            /* members */
    size_t name_len;        /* bytes of name, without the NUL */
    char name[];            /* NUL-terminated copy of the name: the key in sio__rooms_t.rooms */
};

typedef struct {
    pl_map_t rooms;   /* room name -> sio__room_t */
    pl_map_t members; /* (room, owner) -> sio__member_t */
} sio__rooms_t;

void sio__rooms_init(sio__rooms_t *r);
/* Frees every room and membership still there (owners' list heads are not touched: call it only
 * when no owner will use its list again) and the tables. */
void sio__rooms_dispose(sio__rooms_t *r);

/* Puts owner into the room called name (len bytes, at most SIO_ROOM_NAME_MAX; any bytes),
 * creating the room if needed. *owned is the owner's membership list head. Returns 0 (joined),
 * 1 (was already a member: nothing changes), PL_EINVAL (name too long) or PL_ENOMEM (nothing
 * changes). O(1). */
PL_NODISCARD int sio__rooms_join(sio__rooms_t *r, sio__member_t **owned, void *owner,
                                 const char *name, size_t len);
/* Takes owner out of the room; frees the room when it becomes empty. Returns true if owner was
 * a member. O(1). */
bool sio__rooms_leave(sio__rooms_t *r, sio__member_t **owned, void *owner, const char *name,
                      size_t len);
/* Takes owner out of every room it is in (its list becomes empty). O(rooms of owner). */
void sio__rooms_leave_all(sio__rooms_t *r, sio__member_t **owned);
/* The room called name, or NULL when it has no members. O(1). */
sio__room_t *sio__rooms_find(const sio__rooms_t *r, const char *name, size_t len);
/* True when owner is in the room called name. O(1). */
bool sio__rooms_contains(const sio__rooms_t *r, const void *owner, const char *name, size_t len);
/* Rooms that have at least one member. */
static inline size_t sio__rooms_count(const sio__rooms_t *r) {
    return pl_map_count(&r->rooms);
}

#endif
