/* The bus port's scale-out backend: a Socket.IO adapter (sio/server.h, sio_adapter_t) that
 * carries room broadcasts and per-socket emits to the other nodes over Redis pub/sub, so every
 * receiver gets each packet exactly once whichever node holds its socket (DESIGN.md "Ports and
 * backends", the reference's socket.io Redis adapter; "Guarantees": every committed message
 * reaches the agents connected at the time, on any node).
 *
 * Wire: one channel per namespace, `parley:bus:<nsp>` (e.g. `parley:bus:/`); every node
 * subscribes to the pattern `parley:bus:*` on a dedicated subscriber connection and publishes on
 * another. A message is a binary envelope (below) with the sending node's id, a sequence number,
 * the target (rooms and except rooms; a room may be a socket id, as sio_nsp_emit_to sends it),
 * the encoded Engine.IO message text and the attachments. The sender has already delivered to
 * its own sockets, so a node ignores the messages that carry its own id; the receiver hands the
 * bytes to sio_server_deliver_remote, which never forwards them again.
 *
 * Envelope (integers big-endian; the decoder checks every length against what is left and
 * against the limits below before allocating, and refuses NUL bytes in names):
 *   "PB" version(u8 = 2)
 *   node_len(u8, 1..BUS_NODE_ID_MAX) node                  (v2: [A-Za-z0-9_.-] only)
 *   seq(u64, >= 1)                                          (v2 only)
 *   nrooms(u16) { len(u16, 1..SIO_ROOM_NAME_MAX) name }...
 *   nexcept(u16) { len(u16, 1..SIO_ROOM_NAME_MAX) name }...
 *   text_len(u32, 1..BUS_TEXT_MAX) text
 *   natt(u16, 0..BUS_ATT_MAX) { len(u32) bytes }...      (all attachments within BUS_TEXT_MAX)
 * Version 1 is the same without seq: still decoded (delivered without duplicate suppression), no
 * longer sent. (node, seq) identifies an envelope: a node numbers its envelopes from
 * wall-clock-ms << 20 up, so a restarted node's numbers start above those of its previous run.
 *
 * Confirmed publish. PUBLISH answers the number of subscribers that received the message. The
 * bus tracks how many a broadcast normally reaches (every node's subscriber connection: the
 * largest answer seen; after BUS_EXPECT_DECAY_MS of answers all below it, the largest of those,
 * so a node gone for good stops counting). A broadcast that reaches fewer (a subscriber that has
 * not re-subscribed yet after a Redis restart) or whose PUBLISH failed (Redis unreachable, lost
 * connection, error reply) is kept and published again after BUS_RETRY_FIRST_MS, doubling up to
 * BUS_RETRY_MAX_MS, until it reaches the expected count or BUS_RETRY_FOR_MS have passed since
 * the first attempt. Kept envelopes (those awaiting their answer included) are bounded by
 * BUS_KEEP_MAX and BUS_KEEP_BYTES: past either, the oldest is dropped (warning log, rate
 * limited): at-most-once is the fallback, agents that missed a live event get it from the HTTP
 * API. An envelope larger than BUS_KEEP_BYTES is published once, not kept.
 *
 * Exactly once per receiver: a re-published envelope also reaches the nodes that already had
 * it, so each receiver remembers, per sender, which of the last BUS_DEDUP_WINDOW sequence
 * numbers it has delivered (a bitmap of 16 KiB) and drops a repeat; an envelope older than the
 * window is dropped as stale unless it is more than BUS_SEQ_RESTART_GAP behind (the sender
 * restarted with its clock set back: its state starts afresh). State for at most
 * BUS_DEDUP_SENDERS senders (the least recently heard is forgotten first; senders silent for
 * BUS_DEDUP_IDLE_MS are forgotten).
 *
 * Outages: while Redis is unreachable a broadcast still reaches this node's sockets and the
 * envelope is kept for the others as above; both connections reconnect with backoff and
 * resubscribe by themselves.
 *
 * Threads: loop thread only. Memory: kept envelopes within the bounds above (their ~100-byte
 * records counted in BUS_KEEP_BYTES); duplicate suppression about 16.5 KiB per sender heard
 * from, at most BUS_DEDUP_SENDERS x 16.5 KiB (4.2 MiB). Cost: one copy of each envelope into its
 * kept PUBLISH; a re-publish goes to every node again (receivers decode and drop it). */
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

#define BUS_KEEP_MAX 16384         /* envelopes kept for re-publishing */
#define BUS_KEEP_BYTES (32u << 20) /* bytes of the kept PUBLISH commands */
#define BUS_RETRY_FIRST_MS 200     /* first re-publish delay, doubling */
#define BUS_RETRY_MAX_MS 3200      /* longest re-publish delay */
#define BUS_RETRY_FOR_MS 15000     /* an envelope is given up this long after its first try */
#define BUS_EXPECT_DECAY_MS 30000  /* answers below the expected count for this long lower it */
#define BUS_DEDUP_WINDOW 131072u   /* sequence numbers remembered per sender */
#define BUS_DEDUP_SENDERS 256      /* senders remembered */
#define BUS_DEDUP_IDLE_MS 300000   /* a sender silent this long is forgotten */
#define BUS_SEQ_RESTART_GAP (1ull << 32) /* further behind than this: the sender restarted */

/* ---- envelope codec (pure) ------------------------------------------------------------------- */

typedef struct {
    unsigned version;               /* 1 or 2 */
    uint64_t seq;                   /* sender's sequence number; 0 in a version-1 envelope */
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

/* Appends the envelope of one broadcast to out: version 2 with seq (>= 1), or version 1 (no id)
 * when seq is 0. Returns 0, PL_EINVAL (node id empty or too long, or with a byte outside
 * [A-Za-z0-9_.-] in version 2, a name empty, too long or with a NUL, no text) or PL_ETOOBIG (past
 * the limits above) or out's error. */
PL_NODISCARD int bus_envelope_encode(pl_buf_t *out, const char *node, uint64_t seq,
                                     const sio_target_t *to, const pl_rcbuf_t *text,
                                     pl_rcbuf_t *const *att, size_t natt);
/* Decodes data (untrusted: anyone who can publish on the channel) into e (version 1 or 2).
 * Returns 0 (dispose e later), PL_EINVAL (malformed, including a version-2 id with seq 0 or a
 * node id outside [A-Za-z0-9_.-]) or PL_ENOMEM; on error e needs no dispose. */
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
    uint64_t published;      /* broadcasts accepted for the other nodes (first attempts) */
    uint64_t confirmed;      /* broadcasts and notifications that reached the expected count */
    uint64_t republished;    /* PUBLISH attempts after the first (broadcasts and notifications) */
    uint64_t publish_failed; /* broadcasts and notifications given up: not encodable, past
                                BUS_RETRY_FOR_MS, dropped past the keep bounds, or the bus closed */
    uint64_t kept;           /* broadcasts and notifications kept now (a gauge) */
    uint64_t kept_bytes;     /* their bytes (a gauge) */
    uint32_t expected;       /* subscribers a broadcast is expected to reach now */
    uint64_t received;       /* envelopes from other nodes delivered here */
    uint64_t duplicates;     /* envelopes from other nodes dropped as already delivered */
    uint64_t stale;          /* envelopes dropped as older than the window of their sender */
    uint64_t own;            /* our own envelopes coming back, ignored */
    uint64_t malformed;      /* envelopes (or notifications) refused by the decoder */
    uint64_t notified;       /* notifications received */
} bus_redis_stats_t;

void bus_redis_stats(const bus_redis_t *b, bus_redis_stats_t *out);

/* ---- node-to-node notifications -------------------------------------------------------------- */

/* Application messages for one node, beside the Socket.IO traffic: e.g. a worker on node B that
 * committed a message received by node A tells A, so that A answers the sender's ack. Channel
 * `parley:notify:<node id>`, payload "<from_len u8><from><data>". Confirmed like a broadcast,
 * with one expected receiver (the node's subscriber): a notification nobody received or whose
 * PUBLISH failed is kept and published again within the same bounds and time limit. No id: a
 * notification whose PUBLISH was lost with its connection may arrive twice, and one given up is
 * lost, so the receiver must cope with both (an ack answered once; a lost one times out and the
 * widget re-sends, which the ingest de-duplicates). */

/* data: the payload (borrowed for the call); from: the sending node's id. */
typedef void (*bus_redis_notify_cb)(void *ud, const char *from, const char *data, size_t len);

/* Sets the receiver of notifications for this node (NULL to drop them). */
void bus_redis_on_notify(bus_redis_t *b, bus_redis_notify_cb cb, void *ud);
/* Sends data (copied, at most BUS_NOTIFY_MAX bytes) to the node with id node (may be this one).
 * Returns 0 (handed to Redis, or kept for a retry while Redis is unreachable), PL_EINVAL (bad
 * node id), PL_ETOOBIG, or PL_ENOMEM. */
PL_NODISCARD int bus_redis_notify(bus_redis_t *b, const char *node, const void *data, size_t len);

/* Uninstalls the adapter (if the server is still open), gives up the kept envelopes (counted in
 * publish_failed; those awaiting an answer are still answered), closes both connections; cb
 * (may be NULL) fires when everything is freed, never inside the call. */
void bus_redis_close(bus_redis_t *b, void (*cb)(void *ud), void *ud);

#endif
