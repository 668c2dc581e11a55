/* The bus port's scale-out backend: a Socket.IO adapter (sio/server.h, sio_adapter_t) that
 * carries room broadcasts and per-socket emits to the other nodes over Redis pub/sub, so every
 * receiver gets each packet exactly once whichever node holds its socket (DESIGN.md "Ports and
 * backends", the reference's socket.io Redis adapter).
 *
 * Wire: one channel per namespace, `parley:bus:<nsp>` (e.g. `parley:bus:/`); every node
 * subscribes to the pattern `parley:bus:*` on a dedicated subscriber connection and publishes on
 * another. A message is a binary envelope (below) with the sending node's id, the target (rooms
 * and except rooms; a room may be a socket id, as sio_nsp_emit_to sends it), the encoded
 * Engine.IO message text and the attachments. The sender has already delivered to its own
 * sockets, so a node ignores the messages that carry its own id; the receiver hands the bytes to
 * sio_server_deliver_remote, which never forwards them again: one delivery per receiver.
 *
 * Envelope v1 (integers big-endian; the decoder checks every length against what is left and
 * against the limits below before allocating, and refuses NUL bytes in names):
 *   "PB" version(u8 = 1)
 *   node_len(u8, 1..BUS_NODE_ID_MAX) node
 *   nrooms(u16) { len(u16, 1..SIO_ROOM_NAME_MAX) name }...
 *   nexcept(u16) { len(u16, 1..SIO_ROOM_NAME_MAX) name }...
 *   text_len(u32, 1..BUS_TEXT_MAX) text
 *   natt(u16, 0..BUS_ATT_MAX) { len(u32) bytes }...      (all attachments within BUS_TEXT_MAX)
 *
 * Outages: while Redis is unreachable a broadcast still reaches this node's sockets; the adapter
 * returns PL_EUNAVAIL for the other nodes (pub/sub is at-most-once: agents that missed a live
 * event get it from the HTTP API, DESIGN.md "Guarantees"), and both connections reconnect with
 * backoff and resubscribe by themselves.
 *
 * Threads: loop thread only. */
#ifndef BUS_BUS_REDIS_H
#define BUS_BUS_REDIS_H

#include "core/buf.h"
#include "sio/server.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define BUS_NODE_ID_MAX 64
#define BUS_CHANNEL_PREFIX "parley:bus:"
#define BUS_NOTIFY_PREFIX "parley:notify:" /* + node id: messages for one node */
#define BUS_NOTIFY_MAX (1u << 20)          /* bytes of one notification */
#define BUS_TEXT_MAX (64u << 20)           /* bytes of text plus attachments in one envelope */
#define BUS_ATT_MAX 1024                   /* attachments in one envelope */
#define BUS_TARGETS_MAX 4096               /* rooms plus except rooms in one envelope */

/* ---- envelope codec (pure) ------------------------------------------------------------------- */

typedef struct {
    char node[BUS_NODE_ID_MAX + 1]; /* sender's node id */
    const char **rooms;             /* NUL-terminated names, in names */
    size_t nrooms;
    const char **except;
    size_t nexcept;
    pl_rcbuf_t *text; /* one reference, owned */
    pl_rcbuf_t **att; /* natt references, owned */
    size_t natt;
    char *names; /* storage of the names (owned) */
} bus_envelope_t;

/* Appends the envelope of one broadcast to out. Returns 0, PL_EINVAL (node id empty or too long,
 * a name empty, too long or with a NUL, no text) or PL_ETOOBIG (past the limits above) or out's
 * error. */
PL_NODISCARD int bus_envelope_encode(pl_buf_t *out, const char *node, const sio_target_t *to,
                                     const pl_rcbuf_t *text, pl_rcbuf_t *const *att, size_t natt);
/* Decodes data (untrusted: anyone who can publish on the channel) into e. Returns 0 (dispose e
 * later), PL_EINVAL (malformed) or PL_ENOMEM; on error e needs no dispose. */
PL_NODISCARD int bus_envelope_decode(const char *data, size_t len, bus_envelope_t *e);
void bus_envelope_dispose(bus_envelope_t *e);

/* ---- the adapter ----------------------------------------------------------------------------- */

typedef struct bus_redis bus_redis_t;

/* Connects to Redis at url (redis_conn.h's URL), subscribes, and installs itself as srv's adapter
 * (srv borrowed; must outlive the bus or be closed first: sio_server_close calls the adapter's
 * close hook, after which the bus delivers nothing). node_id: this node's id (copied; 1..64
 * bytes of [A-Za-z0-9_.-], like presence_redis_new's) or NULL for a random one. Returns NULL
 * on a malformed URL or node id, or out of memory. Redis need not be up: the bus connects when
 * it can. */
bus_redis_t *bus_redis_new(uv_loop_t *loop, const char *url, sio_server_t *srv,
                           const char *node_id);
/* This node's id (valid as long as b). */
const char *bus_redis_node_id(const bus_redis_t *b);
/* True while both connections are up (messages flow both ways). */
bool bus_redis_ready(const bus_redis_t *b);

typedef struct {
    uint64_t published;      /* envelopes handed to Redis */
    uint64_t publish_failed; /* broadcasts not carried (Redis unreachable, too big) */
    uint64_t received;       /* envelopes from other nodes delivered here */
    uint64_t own;            /* our own envelopes coming back, ignored */
    uint64_t malformed;      /* envelopes (or notifications) refused by the decoder */
    uint64_t notified;       /* notifications received */
} bus_redis_stats_t;

void bus_redis_stats(const bus_redis_t *b, bus_redis_stats_t *out);

/* ---- node-to-node notifications -------------------------------------------------------------- */

/* Application messages for one node, beside the Socket.IO traffic: e.g. a worker on node B that
 * committed a message received by node A tells A, so that A answers the sender's ack. Channel
 * `parley:notify:<node id>`, payload "<from_len u8><from><data>". At most once, like the rest of
 * pub/sub: the receiver must cope with a lost notification (the ack then times out and the
 * widget re-sends, which the ingest de-duplicates). */

/* data: the payload (borrowed for the call); from: the sending node's id. */
typedef void (*bus_redis_notify_cb)(void *ud, const char *from, const char *data, size_t len);

/* Sets the receiver of notifications for this node (NULL to drop them). */
void bus_redis_on_notify(bus_redis_t *b, bus_redis_notify_cb cb, void *ud);
/* Sends data (copied, at most BUS_NOTIFY_MAX bytes) to the node with id node (may be this one).
 * Returns 0 (handed to Redis; delivered if that node is subscribed), PL_EINVAL (bad node id),
 * PL_ETOOBIG, or PL_EUNAVAIL (Redis unreachable). */
PL_NODISCARD int bus_redis_notify(bus_redis_t *b, const char *node, const void *data, size_t len);

/* Uninstalls the adapter (if the server is still open), closes both connections; cb (may be
 * NULL) fires when everything is freed, never inside the call. */
void bus_redis_close(bus_redis_t *b, void (*cb)(void *ud), void *ud);

#endif
