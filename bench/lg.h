/* The load client's core: many Socket.IO clients over the WebSocket transport on one libuv loop
 * in one thread, speaking the protocols itself so that it costs far less per message than the
 * server it measures.
 *
 * A connection goes TCP connect (from a rotating loopback source address, bound with
 * IP_BIND_ADDRESS_NO_PORT so more than one address's worth of ephemeral ports is usable) →
 * HTTP/1.1 upgrade `GET <path>?EIO=4&transport=websocket` (Sec-WebSocket-Accept checked) →
 * Engine.IO open packet `0{...}` → Socket.IO CONNECT `40[/nsp,][auth]` → the server's
 * `40[/nsp,]{"sid":...}`, where it is READY and the scenario takes over. The core answers
 * Engine.IO pings (`2` → `3`) and WebSocket pings, reassembles fragmented messages, and hands
 * the scenario EVENT and ACK packets of its namespace (engine.io-protocol v4, socket.io-protocol
 * v5; binary packets are not used by the benchmark and are counted, then ignored).
 *
 * Output is staged per connection and written with one write per read callback (or at once
 * when sent outside one), uv_try_write first. Clients close with SO_LINGER 0 (a reset), so a
 * large run leaves no TIME_WAIT sockets behind to exhaust ports for the next one.
 *
 * Scenarios drive the core as a script: lg_open() some clients, lg_run_until() a condition
 * with a deadline, send, lg_run_for() a while, lg_close_all(). Every wait is bounded in time.
 * Threads: everything here runs on the thread that owns the loop. */
#ifndef LG_H
#define LG_H

#include "core/buf.h"
#include "lg_stats.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct lg lg_t;
typedef struct lg_conn lg_conn_t;

/* What the scenario hears; any member may be NULL. All on the loop thread. The pointers to
 * packet text are valid during the call only. A handler may send on any connection and may
 * close any connection, including c. */
typedef struct {
    /* c reached READY (connected to the namespace). */
    void (*on_ready)(lg_t *lg, lg_conn_t *c);
    /* An EVENT packet for c: args is the JSON array text after the namespace and ack id;
     * ack_id is -1 when the server asked for no acknowledgement. */
    void (*on_event)(lg_t *lg, lg_conn_t *c, const char *args, size_t len, int64_t ack_id);
    /* An ACK packet for c: args is the JSON array text. */
    void (*on_ack)(lg_t *lg, lg_conn_t *c, uint64_t ack_id, const char *args, size_t len);
    /* c ended: failed before READY (was_ready false), dropped by the server or an error, or
     * closed by lg_conn_close(). reason is a static string. Last call for c. */
    void (*on_close)(lg_t *lg, lg_conn_t *c, bool was_ready, const char *reason);
} lg_handlers_t;

typedef struct {
    const char *host;              /* server IPv4 address, default "127.0.0.1" */
    uint16_t port;                 /* server port (required) */
    const char *path;              /* Engine.IO path, default "/socket.io/" */
    const char *nsp;               /* Socket.IO namespace, default "/" */
    const char *auth;              /* JSON object sent with CONNECT, or NULL */
    unsigned src_addrs;            /* use 127.0.0.1 .. 127.0.0.<src_addrs> as sources in turn,
                                      1..9; 0 lets the kernel choose */
    uint32_t handshake_timeout_ms; /* a connection not READY this long after it started fails,
                                      default 15000 */
    uint32_t max_message;          /* largest server message accepted, bytes, default 1 MiB */
    uint64_t seed;                 /* PRNG seed for masking keys and handshake keys */
} lg_options_t;

void lg_options_default(lg_options_t *o);

/* Counters, cumulative since lg_new. */
typedef struct {
    uint32_t started;  /* connections begun */
    uint32_t ready;    /* connections that reached READY */
    uint32_t failed;   /* connections that ended before READY */
    uint32_t dropped;  /* READY connections ended by the server or by an error */
    uint32_t closed;   /* connections whose handle is fully closed */
    uint32_t open;     /* READY now and not closing */
    uint64_t msgs_in;  /* Engine.IO messages received (all types) */
    uint64_t msgs_out; /* WebSocket frames sent after the upgrade */
    uint64_t pings;    /* Engine.IO pings answered */
    uint64_t ignored;  /* packets not for the scenario: other namespaces, binary */
} lg_counts_t;

/* Creates a client set of at most max_clients connections on loop (all memory for them is
 * allocated here). o is copied (its strings are borrowed and must outlive lg); h is copied;
 * ud is given back by lg_data(). NULL if an option is invalid (logged) or memory is short. */
lg_t *lg_new(uv_loop_t *loop, const lg_options_t *o, uint32_t max_clients, const lg_handlers_t *h,
             void *ud);
/* Closes any open connection, runs the loop until every handle is closed (bounded by 10 s), and
 * frees everything. */
void lg_free(lg_t *lg);
void *lg_data(const lg_t *lg);
const lg_counts_t *lg_counts(const lg_t *lg);
/* Time from the start of each READY connection's TCP connect to its READY, in ns. */
const lg_hist_t *lg_connect_hist(const lg_t *lg);
/* Describes the first failure or drop ("" if none), e.g. "connect: connection refused". */
const char *lg_first_error(const lg_t *lg);

/* Starts n more connections (up to max_clients in total), keeping at most concurrency of them
 * between start and READY at any time; progress happens while the loop runs. 0, or UV_EINVAL
 * when n would pass max_clients. */
PL_NODISCARD int lg_open(lg_t *lg, uint32_t n, uint32_t concurrency);
/* Connections whose outcome is known (READY or failed) equals the number started and
 * requested: the lg_open() calls so far are settled. */
bool lg_settled(const lg_t *lg);

/* Runs the loop until done(lg, arg) is true (checked after every loop iteration and at least
 * every 10 ms) or timeout_ms passes. 0, or UV_ETIMEDOUT. */
PL_NODISCARD int lg_run_until(lg_t *lg, bool (*done)(lg_t *lg, void *arg), void *arg,
                              uint64_t timeout_ms);
/* Runs the loop for ms milliseconds. */
void lg_run_for(lg_t *lg, uint64_t ms);
/* Closes every connection that is not closed yet and runs the loop until all handles are closed
 * or timeout_ms passes. 0, or UV_ETIMEDOUT. */
PL_NODISCARD int lg_close_all(lg_t *lg, uint64_t timeout_ms);

/* Connection i (0 <= i < max_clients), whatever its state. */
lg_conn_t *lg_conn_at(lg_t *lg, uint32_t i);
uint32_t lg_conn_index(const lg_conn_t *c);
bool lg_conn_ready(const lg_conn_t *c);
/* Sends a Socket.IO EVENT `42[/nsp,][ack_id]<args>` (args: JSON array text; ack_id -1 for none)
 * in one masked text frame. Written at the end of the current read callback, or at once outside
 * one. 0, UV_ENOTCONN if c is not READY, or PL_ETOOBIG when c's pending output passes 8 MiB
 * (c is then closed). */
PL_NODISCARD int lg_conn_emit(lg_conn_t *c, const char *args, size_t len, int64_t ack_id);
/* Closes c (a reset: SO_LINGER 0). on_close fires with reason "closed by client". No-op if c is
 * already closing. */
void lg_conn_close(lg_conn_t *c);

#endif
