/* The presence port: which visitors are online, through which sockets, on which page
 * (PROTOCOL.md section 3; the reference's RealtimeSessionService).
 *
 * Keys follow the reference: `session:visitor:<uid>` → the socket id of the visitor's latest
 * socket, with a TTL (3 days by default), refreshed on every identify. Because a visitor may
 * have several tabs, the port also keeps the set of its live sockets, so "online" means "has at
 * least one live socket" and the status changes exactly on the first attach and the last detach.
 * Visitor uids are unique per project, so every key is scoped by project id.
 *
 * Backends: in-process tables (presence_memory.c, the embedded default) and Redis (a later
 * issue), chosen at start-up through presence_ops_t. Every call is asynchronous: it returns 0
 * and its callback fires later on the loop thread (never inside the call), or it returns an
 * error and the callback never fires. Strings are copied. Loop thread only. */
#ifndef PRESENCE_PRESENCE_H
#define PRESENCE_PRESENCE_H

#include "core/buf.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define PRESENCE_DEFAULT_TTL_S (3 * 24 * 3600)
#define PRESENCE_MAX_BATCH 1000 /* uids per online query */

typedef struct presence presence_t;

/* status 0 or PL_EUNAVAIL. was_online: the visitor had another live socket before this one. */
typedef void (*presence_attach_cb)(void *ud, int status, bool was_online);
/* still_online: another live socket of the visitor remains. */
typedef void (*presence_detach_cb)(void *ud, int status, bool still_online);
/* online[i] answers uids[i]; borrowed for the call. */
typedef void (*presence_online_cb)(void *ud, int status, const bool *online, size_t n);
typedef void (*presence_done_cb)(void *ud, int status);
/* url is NULL when unknown; borrowed for the call. */
typedef void (*presence_url_cb)(void *ud, int status, const char *url);
/* socket id the session key points at, NULL if none; borrowed. */
typedef void (*presence_session_cb)(void *ud, int status, const char *socket_id);

typedef struct presence_ops {
    int (*attach)(presence_t *p, int64_t project, const char *uid, const char *socket_id,
                  presence_attach_cb cb, void *ud);
    int (*detach)(presence_t *p, int64_t project, const char *uid, const char *socket_id,
                  presence_detach_cb cb, void *ud);
    int (*online)(presence_t *p, int64_t project, const char *const *uids, size_t n,
                  presence_online_cb cb, void *ud);
    int (*set_url)(presence_t *p, int64_t project, const char *uid, const char *url,
                   presence_done_cb cb, void *ud);
    int (*get_url)(presence_t *p, int64_t project, const char *uid, presence_url_cb cb, void *ud);
    int (*get_session)(presence_t *p, int64_t project, const char *uid, presence_session_cb cb,
                       void *ud);
    void (*close)(presence_t *p, void (*cb)(void *ud), void *ud);
} presence_ops_t;

struct presence {
    const presence_ops_t *ops; /* the backend */
    uint32_t ttl_s;            /* session key TTL, seconds */
};

/* The in-process backend: hash tables in this process, entries expire after ttl_s. */
presence_t *presence_memory_new(uv_loop_t *loop, uint32_t ttl_s);
/* The Redis backend (presence_redis.c): url redis://host[:port][/db], node_id NULL for a random
 * one, on_offline (may be NULL) told of each visitor a dead node's sockets left offline. */
presence_t *presence_redis_new(uv_loop_t *loop, const char *url, uint32_t ttl_s,
                               const char *node_id,
                               void (*on_offline)(void *ud, int64_t project, const char *uid),
                               void *ud);

/* Records socket_id as a live socket of the visitor and points `session:visitor:<uid>` at it
 * (TTL renewed). */
static inline int presence_attach(presence_t *p, int64_t project, const char *uid,
                                  const char *socket_id, presence_attach_cb cb, void *ud) {
    return p->ops->attach(p, project, uid, socket_id, cb, ud);
}
/* Removes socket_id from the visitor's live sockets. The session key is deleted only if it
 * still points at socket_id (atomic compare-and-delete); if other sockets remain it is pointed
 * at one of them instead. */
static inline int presence_detach(presence_t *p, int64_t project, const char *uid,
                                  const char *socket_id, presence_detach_cb cb, void *ud) {
    return p->ops->detach(p, project, uid, socket_id, cb, ud);
}
/* Online status of up to PRESENCE_MAX_BATCH visitors in one round trip. */
static inline int presence_online(presence_t *p, int64_t project, const char *const *uids,
                                  size_t n, presence_online_cb cb, void *ud) {
    return p->ops->online(p, project, uids, n, cb, ud);
}
static inline int presence_set_url(presence_t *p, int64_t project, const char *uid,
                                   const char *url, presence_done_cb cb, void *ud) {
    return p->ops->set_url(p, project, uid, url, cb, ud);
}
static inline int presence_get_url(presence_t *p, int64_t project, const char *uid,
                                   presence_url_cb cb, void *ud) {
    return p->ops->get_url(p, project, uid, cb, ud);
}
static inline int presence_get_session(presence_t *p, int64_t project, const char *uid,
                                       presence_session_cb cb, void *ud) {
    return p->ops->get_session(p, project, uid, cb, ud);
}
/* Frees the backend; cb (may be NULL) fires when done. Pending callbacks fire first. */
static inline void presence_close(presence_t *p, void (*cb)(void *ud), void *ud) {
    p->ops->close(p, cb, ud);
}

#endif
