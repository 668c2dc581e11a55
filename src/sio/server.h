/* Socket.IO v5 server ("socket.io-protocol" v5 over Engine.IO v4, as the reference socket.io 4.8
 * server behaves): namespaces, connect middleware that may answer asynchronously, events and
 * acknowledgements both ways, binary attachments, rooms and broadcasts that encode each packet
 * once, and an adapter interface that carries broadcasts to other nodes.
 *
 * Model. One sio_server_t owns an Engine.IO server (eio/server.h) mounted on the HTTP router
 * (e.g. "/socket.io/ *" without the space -> sio_server_handle). Each Engine.IO session is a
 * *client*; a client joins namespaces with CONNECT packets and has one sio_socket_t per joined
 * namespace (socket.io-client multiplexes `io(url)` and `io(url + "/custom")` over one session).
 * Namespaces exist only when created with sio_server_of(); "/" always exists. A CONNECT goes
 * through the namespace's middleware chain (sio_nsp_use); each middleware gets the pending
 * connection (sio_connect_t), may look at the handshake (query, headers, auth object, remote
 * address), and later - now or after a database round trip - calls sio_connect_accept() (next
 * middleware, or connect) or sio_connect_refuse() (CONNECT_ERROR `44{"message":"..."}`).
 *
 * Wire behaviour (decisions marked *, the rest is the reference server's):
 *   - accepted CONNECT: `40{"sid":"<id>"}` (`40/custom,{"sid":"<id>"}`), then the namespace's
 *     connection callback runs (events it emits follow the CONNECT). The socket id is 20
 *     characters of base64url from 15 CSPRNG bytes (BAD-INPUTS.md CVE-2017-16031), never the
 *     Engine.IO sid.
 *   - unknown namespace: `44/<nsp>,{"message":"Invalid namespace"}`.
 *   - refusal: `44[/<nsp>,]{"message":"...","data":...}` ("data" only when given); *when the
 *     client then has no socket left in any namespace (connected or pending), its Engine.IO
 *     session is closed after the packet is written (PROTOCOL.md section 2: refusal then close;
 *     socket.io-client closes its side too, without retrying).
 *   - no namespace joined within connect_timeout_ms of the handshake: the session is closed.
 *   - malformed packets close the session without an answer (reason "parse error"), as
 *     socket.io's Client.onerror does: everything sio_packet_decode refuses (unknown type,
 *     EVENT payload not an array or with a non-string or reserved event name (CVE-2023-32695),
 *     bad ack id, JSON that does not parse or breaks the limits (*unless the namespace has an
 *     invalid-event handler and the packet is otherwise a well-framed EVENT: sio_nsp_on_invalid),
 *     attachment count out of [1, max] (CVE-2026-33151, CVE-2026-69185), placeholder num not
 *     an integer in range (CVE-2022-2421)); a binary frame nobody waits for; a text packet while
 *     attachments are awaited; CONNECT_ERROR from a client; any packet but CONNECT for a
 *     namespace the client has not joined (or whose CONNECT is still pending).
 *   - *a CONNECT for a namespace the client has joined is answered again with the same sid; one
 *     for a namespace whose CONNECT is pending is ignored (socket.io-client sends CONNECT twice
 *     when connect() is called on a socket that is already connecting).
 *   - DISCONNECT from the client: that socket closes ("client namespace disconnect"); the
 *     session stays (the client closes it when it has no socket left).
 *   - an ACK whose id matches nothing pending is ignored (late answer after a timeout).
 *
 * Disconnect reasons given to on_disconnect, as socket.io names them: "client namespace
 * disconnect", "server namespace disconnect" (sio_socket_disconnect, with or without closing the
 * session), "server shutting down" (sio_server_close), "parse error" (malformed input from the
 * client: every socket of that session), and the Engine.IO reasons "transport close",
 * "transport error" (includes a slow consumer whose pending output passed the bound), "ping
 * timeout", "forced close".
 *
 * Binary: arguments are a JSON array (sio_args_t.args) plus attachment buffers (bufs); binary
 * values appear in the tree as socket.io's placeholder objects {"_placeholder":true,"num":n}
 * standing for bufs[n] (sio/packet.h). A handler reads one with sio_args_binary(); to echo a
 * packet pass the same sio_args_t to an emit; to send new binary put sio_placeholder_new(k) in
 * the tree and the bytes at bufs[k]. The encoder renumbers in tree order and writes
 * BINARY_EVENT/BINARY_ACK when there are attachments.
 *
 * Broadcasts (sio_nsp_emit): the packet is encoded ONCE into a refcounted buffer (plus one per
 * attachment) and every receiver's Engine.IO session gets a reference to the same bytes. Rooms
 * are per namespace (hash table room -> sockets, O(1) join/leave, rooms.h); a target's rooms
 * are a union (each socket once), minus the sockets of its except rooms; a room name equal to a
 * connected socket's id also designates that socket (socket.io puts every socket in a room
 * named by its id; here that costs no room entry). Unless the target is local, the adapter's
 * broadcast hook then gets the encoded bytes for other nodes, which deliver them with
 * sio_server_deliver_remote(). The default adapter is local-only.
 *
 * Memory per idle connected client (one namespace): a client record (104 bytes on x86-64), a
 * socket (80 bytes), its remote address string and a slot in the namespace's id table - about
 * 300 bytes with malloc overhead (measured by RSS over 5,000 WebSocket clients: 2.1 KiB per idle
 * Engine.IO session, 2.4 KiB once a namespace is joined). No per-socket buffers; the handshake
 * copy (query and headers) is freed as soon as no CONNECT is pending (unless keep_handshake),
 * so a CONNECT that arrives after that sees no headers or query (the auth object and address
 * remain).
 *
 * Ownership and lifetime: sockets are reference-counted (sio_socket_ref/unref): the server holds
 * one while the socket is pending or connected; a pending connection (sio_connect_t), a taken
 * ack (sio_ack_t) and the application hold their own. After the socket closes, every call on it
 * is a harmless no-op (emits return UV_ECANCELED), and its memory stays valid until the last
 * reference is dropped. Nothing is freed in the middle of a dispatch: Engine.IO closes are
 * handled on the next loop iteration (uv_idle), which is where on_disconnect fires for them.
 *
 * Threads: everything here runs on the loop thread of sio_server_new, callbacks included. */
#ifndef SIO_SERVER_H
#define SIO_SERVER_H

#include "core/buf.h"
#include "eio/server.h"
#include "http/server.h"
#include "sio/packet.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct sio_server sio_server_t;
typedef struct sio_nsp sio_nsp_t;
typedef struct sio_socket sio_socket_t;
typedef struct sio_connect sio_connect_t;
typedef struct sio_ack sio_ack_t;

#define SIO_ID_LEN 20                        /* characters of a socket id */
#define SIO_DEFAULT_CONNECT_TIMEOUT_MS 45000 /* socket.io's connectTimeout */

typedef struct {
    eio_options_t eio;           /* Engine.IO options (eio_options_default) */
    uint32_t connect_timeout_ms; /* a session without a joined namespace after this is closed;
                                    default 45000 */
    sio_limits_t limits;         /* packet codec limits; zeros = codec defaults, except
                                    max_packet and max_binary (all attachments of one packet,
                                    held until the packet is complete) which default to
                                    eio.max_payload */
    bool keep_handshake;         /* keep the handshake's query and headers for the whole session
                                    (sio_socket_header/query); default false: freed once no
                                    CONNECT is pending, to save memory */
} sio_options_t;

void sio_options_default(sio_options_t *o);

/* ---- server ---------------------------------------------------------------------------------- */

/* Creates a server with its Engine.IO server and the main namespace "/". opts is copied (NULL
 * for defaults). Returns NULL if the Engine.IO server cannot be created. */
sio_server_t *sio_server_new(uv_loop_t *loop, const sio_options_t *opts);
/* Graceful stop: every connected socket gets on_disconnect("server shutting down"), every
 * session is closed, pending ack callbacks get UV_ECANCELED, the adapter's close hook runs. cb
 * (may be NULL) fires once everything is freed - which waits for the references the application
 * still holds (sockets, pending connects, taken acks) to be dropped. Call once; the server must
 * not be used after. Requests routed to sio_server_handle meanwhile get 503; the server is freed
 * just before cb runs, so stop routing to it at the latest in cb, in the same loop turn (start
 * http_server_shutdown there, which dispatches nothing new, or earlier). */
void sio_server_close(sio_server_t *srv, void (*cb)(void *ud), void *ud);
/* HTTP handler for the mount point: http_router_add(r, NULL, "/socket.io/ *"(no space),
 * sio_server_handle, srv). */
void sio_server_handle(http_request_t *req, void *srv);
/* The Engine.IO server underneath (for eio_server_cors, counts). Borrowed. */
eio_server_t *sio_server_engine(sio_server_t *srv);
uv_loop_t *sio_server_loop(const sio_server_t *srv);
/* Engine.IO sessions (clients) currently open. */
size_t sio_server_client_count(const sio_server_t *srv);

/* ---- namespaces ------------------------------------------------------------------------------ */

/* The namespace called name ("/" or "/something": at most SIO_DEFAULT_MAX_NSP bytes, no control
 * characters or ','), created on first use. Namespaces live as long as the server. NULL for an
 * invalid name. */
sio_nsp_t *sio_server_of(sio_server_t *srv, const char *name);
/* The namespace if it exists, else NULL. */
sio_nsp_t *sio_server_nsp(const sio_server_t *srv, const char *name);
const char *sio_nsp_name(const sio_nsp_t *nsp);
sio_server_t *sio_nsp_server(const sio_nsp_t *nsp);
/* Connected sockets of this node in the namespace. */
size_t sio_nsp_socket_count(const sio_nsp_t *nsp);
/* The connected socket with this id on this node, or NULL. Borrowed (take a reference to keep
 * it past the current callback). O(1). */
sio_socket_t *sio_nsp_socket(const sio_nsp_t *nsp, const char *id);
/* Members (pending or connected sockets of this node) of a room; 0 when it does not exist. */
size_t sio_nsp_room_size(const sio_nsp_t *nsp, const char *room);

/* ---- arguments ------------------------------------------------------------------------------- */

/* The arguments of an event or an ack. In callbacks everything is borrowed for the call: take a
 * reference (json_incref, pl_rcbuf_ref) to keep a part. Given to an emit, nothing is taken. */
typedef struct {
    json_t *args;      /* JSON array of the arguments (in callbacks never NULL); NULL = none */
    pl_rcbuf_t **bufs; /* attachments: bufs[n] is what placeholder num n stands for */
    size_t nbufs;
    /* Emits and acks only, instead of args (which must then be NULL, and bufs empty): the
     * arguments already encoded, the JSON text of their array ("[...]", as JSON.stringify would
     * write it), so that one payload sent as an event and as an ack is encoded once. Trusted:
     * written into the packet as it is. */
    const char *json;
    size_t json_len;
} sio_args_t;

/* Number of arguments, and argument i (borrowed) or NULL past the end. */
size_t sio_args_count(const sio_args_t *a);
json_t *sio_args_get(const sio_args_t *a, size_t i);
/* The bytes a placeholder node of a->args stands for, or NULL when node is not a placeholder or
 * its num has no buffer. Borrowed. */
pl_rcbuf_t *sio_args_binary(const sio_args_t *a, const json_t *node);

/* ---- connect middleware ------------------------------------------------------------------
 * A middleware is called once per CONNECT to its namespace, in the order added. It owns c from
 * the call on and must eventually call exactly one of sio_connect_accept or sio_connect_refuse
 * (during the call or later, e.g. from a store callback); that call consumes c. If the client
 * goes away meanwhile, the call is a no-op that only frees c (sio_connect_alive tells early). */
typedef void (*sio_middleware_cb)(sio_connect_t *c, void *ud);
/* Adds a middleware to nsp (setup time; aborts if out of memory). */
void sio_nsp_use(sio_nsp_t *nsp, sio_middleware_cb cb, void *ud);

/* The socket being connected: its id is final; sio_socket_set_data and sio_socket_join work
 * (broadcasts skip it until it is connected); emits return UV_ECANCELED. Borrowed while c is. */
sio_socket_t *sio_connect_socket(const sio_connect_t *c);
sio_nsp_t *sio_connect_nsp(const sio_connect_t *c);
/* The CONNECT packet's auth payload: always an object ({} when absent). Borrowed while c is. */
json_t *sio_connect_auth(const sio_connect_t *c);
/* Remote address of the session ("127.0.0.1"). Valid while c is. */
const char *sio_connect_remote_ip(const sio_connect_t *c);
/* A handshake request header (case-insensitive name), or NULL (absent, or the handshake copy
 * was already dropped: see keep_handshake). Borrowed while c is. */
const pl_slice_t *sio_connect_header(const sio_connect_t *c, const char *name);
/* Appends the percent-decoded value of the handshake's query parameter key to out. Returns 1
 * found, 0 absent, PL_EINVAL malformed escape, or out's error. */
int sio_connect_query(const sio_connect_t *c, const char *key, pl_buf_t *out);
/* False once the client's session has closed: accepting is then pointless. */
bool sio_connect_alive(const sio_connect_t *c);
/* Passes c to the next middleware, or when this was the last one connects the socket: sends the
 * CONNECT answer, then calls the namespace's connection callback. Consumes c. */
void sio_connect_accept(sio_connect_t *c);
/* Refuses: sends CONNECT_ERROR {"message": message[, "data": data]} (message copied; data a
 * JSON value whose reference is stolen, may be NULL), releases the socket (no on_disconnect:
 * it never connected), and closes the session if the client has no other socket. Consumes c. */
void sio_connect_refuse(sio_connect_t *c, const char *message);
void sio_connect_refuse_data(sio_connect_t *c, const char *message, json_t *data);

/* ---- events ---------------------------------------------------------------------------------- */

/* A socket connected (after its CONNECT answer was queued). */
typedef void (*sio_connection_cb)(sio_socket_t *s, void *ud);
/* An event arrived. ack is NULL when the client did not ask for an acknowledgement; otherwise it
 * is valid during the call only: answer with sio_ack_send now, or sio_ack_take it to answer
 * later. An ack neither answered nor taken is simply never answered (as in socket.io). */
typedef void (*sio_event_cb)(sio_socket_t *s, const char *event, const sio_args_t *args,
                             sio_ack_t *ack, void *ud);
/* A connected socket closed (reason: see the top of this file). The socket no longer receives
 * anything but still lists its rooms; it leaves them after the callback. Fires once. */
typedef void (*sio_disconnect_cb)(sio_socket_t *s, const char *reason, void *ud);

void sio_nsp_on_connection(sio_nsp_t *nsp, sio_connection_cb cb, void *ud);
/* Registers (or replaces; cb NULL removes) the handler of one event name. Returns 0, or
 * PL_EINVAL for a reserved name (connect, connect_error, disconnect, disconnecting, newListener,
 * removeListener: a client cannot send those). Setup time; aborts if out of memory. Lookup is a
 * linear scan over the namespace's handlers (a few dozen at most). */
int sio_nsp_on(sio_nsp_t *nsp, const char *event, sio_event_cb cb, void *ud);
/* Catch-all: called for events that have no handler of their own. */
void sio_nsp_on_any(sio_nsp_t *nsp, sio_event_cb cb, void *ud);
/* An EVENT that is well framed (type, namespace, ack id, and a plain event name first) but whose
 * arguments are not acceptable JSON: cut short, or breaking a rule of pl_json_parse (NUL in a
 * string, lone surrogate, number past 2^53, duplicate key, nesting too deep, too long) -
 * sio_packet_decode's SIO_EPAYLOAD. reason is a short static text; ack as for sio_event_cb. The
 * handler refuses the event (PROTOCOL.md section 5: ack error or `exception`) and the session
 * stays. Without this handler (the default) such a packet is malformed and closes the session. */
typedef void (*sio_invalid_cb)(sio_socket_t *s, const char *event, const char *reason,
                               sio_ack_t *ack, void *ud);
void sio_nsp_on_invalid(sio_nsp_t *nsp, sio_invalid_cb cb, void *ud);
void sio_nsp_on_disconnect(sio_nsp_t *nsp, sio_disconnect_cb cb, void *ud);
/* Called with a socket's user data when the socket's memory is freed (last reference), whether
 * or not it ever connected - the place to free what sio_socket_set_data attached. */
void sio_nsp_on_data_free(sio_nsp_t *nsp, void (*cb)(void *data));

/* ---- acknowledgements --------------------------------------------------------------------
 * Client -> server: the ack given to an event handler. */

/* Makes the application the owner of the ack so it can be answered after the handler returns
 * (e.g. after a database request). Returns the owned handle (the argument is spent), or NULL if
 * it was already answered or taken. The owner must call sio_ack_send or sio_ack_free exactly
 * once. The handle keeps the socket's memory alive, not the connection. */
PL_NODISCARD sio_ack_t *sio_ack_take(sio_ack_t *ack);
/* Answers with args (NULL: no arguments) as ACK/BINARY_ACK. Only the first answer is sent; if
 * the socket has closed meanwhile nothing is sent. A taken ack is consumed (freed) whatever the
 * result. Returns 0 (sent), UV_EALREADY (already answered), UV_ECANCELED (socket gone),
 * PL_EINVAL (args not an array, placeholder without buffer) or an emit error. */
int sio_ack_send(sio_ack_t *ack, const sio_args_t *args);
/* Drops a taken ack without answering (the client's callback never fires, or times out). On the
 * handler's own (not taken) ack it is a no-op. */
void sio_ack_free(sio_ack_t *ack);

/* Server -> client: answer to sio_socket_emit_ack. status 0 with the client's arguments;
 * UV_ETIMEDOUT when timeout_ms passed first; UV_ECANCELED when the socket closed first (then
 * args is NULL). Fires exactly once. */
typedef void (*sio_ack_cb)(sio_socket_t *s, int status, const sio_args_t *args, void *ud);

/* ---- sockets --------------------------------------------------------------------------------- */

const char *sio_socket_id(const sio_socket_t *s);
sio_nsp_t *sio_socket_nsp(const sio_socket_t *s);
/* True while connected (CONNECT accepted, not disconnected, session open). */
bool sio_socket_connected(const sio_socket_t *s);
/* Remote address as text; valid as long as s. */
const char *sio_socket_remote_ip(const sio_socket_t *s);
/* "polling" or "websocket" while the session is open, "" after. */
const char *sio_socket_transport(const sio_socket_t *s);
/* Handshake access after connect: only with keep_handshake and while the session is open (else
 * NULL / 0). See sio_connect_header and sio_connect_query. */
const pl_slice_t *sio_socket_header(const sio_socket_t *s, const char *name);
int sio_socket_query(const sio_socket_t *s, const char *key, pl_buf_t *out);
/* The application's pointer (see sio_nsp_on_data_free). */
void sio_socket_set_data(sio_socket_t *s, void *data);
void *sio_socket_data(const sio_socket_t *s);
/* References: keep a socket across an asynchronous request. Returns s. */
sio_socket_t *sio_socket_ref(sio_socket_t *s);
void sio_socket_unref(sio_socket_t *s);

/* Emits event with args (NULL: none) to this socket. Returns 0, UV_ECANCELED (not connected),
 * PL_EINVAL (reserved or invalid event name, args not an array, placeholder without buffer),
 * PL_ENOMEM, or PL_ETOOBIG (the client's pending output passed its bound: its session is being
 * closed as a slow consumer). */
int sio_socket_emit(sio_socket_t *s, const char *event, const sio_args_t *args);
/* Same, asking the client for an acknowledgement: cb fires exactly once (see sio_ack_cb), unless
 * this returns an error, in which case it never fires. timeout_ms 0 = no timeout (then cb fires
 * on answer or disconnect). */
PL_NODISCARD int sio_socket_emit_ack(sio_socket_t *s, const char *event, const sio_args_t *args,
                                     uint32_t timeout_ms, sio_ack_cb cb, void *ud);
/* Disconnects s from its namespace: sends DISCONNECT (`1`, `1/custom,`) and closes the socket
 * ("server namespace disconnect"; on_disconnect runs before this returns). With close_session,
 * every connected socket of the same client is disconnected that way, then the Engine.IO
 * session is closed after the DISCONNECT packets are written (as socket.io's
 * socket.disconnect(true)). No-op when s is not connected, except that close_session still
 * closes the session. */
void sio_socket_disconnect(sio_socket_t *s, bool close_session);

/* Rooms (names: any bytes up to SIO_ROOM_NAME_MAX = 512, here NUL-terminated). join returns 0
 * (also when already in), UV_ECANCELED (socket closed), PL_EINVAL (name too long) or
 * PL_ENOMEM. Rooms are left automatically when the socket closes. O(1). */
PL_NODISCARD int sio_socket_join(sio_socket_t *s, const char *room);
/* Returns true if s was in the room. O(1). */
bool sio_socket_leave(sio_socket_t *s, const char *room);
bool sio_socket_in(const sio_socket_t *s, const char *room);
/* Iterates the rooms s is in (not including its id): start with *cursor = NULL; each call
 * returns a name (valid until s leaves that room) or NULL at the end. Do not join or leave
 * while iterating. */
const char *sio_socket_rooms_next(const sio_socket_t *s, void **cursor);

/* ---- broadcasts ------------------------------------------------------------------------------ */

/* Who gets a broadcast in a namespace: the sockets in any of rooms (all sockets of the namespace
 * when nrooms is 0) except those in any of except; a name may also be a socket id. With local,
 * other nodes are not told (the adapter is skipped). Arrays and names are borrowed. */
typedef struct {
    const char *const *rooms;
    size_t nrooms;
    const char *const *except;
    size_t nexcept;
    bool local;
} sio_target_t;

/* Emits event with args to the target (NULL: every socket of the namespace on every node):
 * encodes once, writes the shared bytes to each local receiver, then hands them to the adapter
 * (unless to->local). Returns the number of local sockets written to (>= 0), or PL_EINVAL
 * (invalid event or args), PL_ENOMEM. A receiver whose write fails (slow consumer) is closed
 * and not counted. O(receivers + except members). */
int sio_nsp_emit(sio_nsp_t *nsp, const sio_target_t *to, const char *event, const sio_args_t *args);
/* Emits to the socket with this id: directly if it is connected on this node (returns 1),
 * otherwise through the adapter as a broadcast to the room named by the id (returns 0). Errors
 * as sio_socket_emit. */
int sio_nsp_emit_to(sio_nsp_t *nsp, const char *socket_id, const char *event,
                    const sio_args_t *args);

/* ---- adapter (cross-node broadcast) ---------------------------------------------------------- */

typedef struct {
    /* A broadcast was delivered locally; carry it to the other nodes, which pass the same bytes
     * to sio_server_deliver_remote. text is the Engine.IO message ("4" + Socket.IO packet text),
     * att the attachments in order (natt 0 for a text-only packet); everything is borrowed for
     * the call (pl_rcbuf_ref to keep). Return 0 or a negative error (logged, not retried). */
    int (*broadcast)(void *ud, const char *nsp, const sio_target_t *to, pl_rcbuf_t *text,
                     pl_rcbuf_t *const *att, size_t natt);
    /* The server is closing (optional). */
    void (*close)(void *ud);
} sio_adapter_t;

/* Installs an adapter (ops copied, may be NULL for the local-only default). Setup time. */
void sio_server_set_adapter(sio_server_t *srv, const sio_adapter_t *ops, void *ud);
/* Delivers a broadcast received from another node to this node's sockets (never forwarded
 * again): the bytes are written as they are (trusted: they come from our own nodes). Returns
 * the number of local sockets written to, or PL_EINVAL if the namespace does not exist here. */
int sio_server_deliver_remote(sio_server_t *srv, const char *nsp, const sio_target_t *to,
                              pl_rcbuf_t *text, pl_rcbuf_t *const *att, size_t natt);

#endif
