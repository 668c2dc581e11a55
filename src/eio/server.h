/* Engine.IO v4 server: sessions over HTTP long-polling and WebSocket, the polling → WebSocket
 * upgrade, heartbeat, and the error answers of the reference server.
 *
 * An eio_server_t is mounted on a path prefix of the HTTP router (e.g. "/socket.io/"); every
 * request under it goes to eio_server_handle(). A handshake (GET without sid, transport polling
 * or websocket, EIO=4) creates an eio_socket_t with a random sid of 120+ bits (CSPRNG, base64url)
 * kept in a real hash table (BAD-INPUTS.md CVE-2026-59724: `sid=__proto__` is just an unknown
 * sid). The owner (Socket.IO layer or the plain echo server) learns of sessions, messages and
 * closes through eio_callbacks_t and sends with eio_socket_send().
 *
 * Errors answered as the reference engine.io server does: HTTP 400 with JSON
 * {"code":N,"message":"..."}: 0 "Transport unknown", 1 "Session ID unknown", 2 "Bad handshake
 * method", 3 "Bad request", 4 "Forbidden", 5 "Unsupported protocol version".
 *
 * Memory and time are bounded per session: output buffered for a polling client beyond
 * max_pending_output closes the session (slow consumer); a polling POST over max_payload or
 * with more than the packet limit closes it; every timer is freed at close.
 * Threads: loop thread only. */
#ifndef EIO_SERVER_H
#define EIO_SERVER_H

#include "core/buf.h"
#include "http/server.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct eio_server eio_server_t;
typedef struct eio_socket eio_socket_t;

typedef struct {
    uint32_t ping_interval_ms;  /* default 25000 */
    uint32_t ping_timeout_ms;   /* default 20000 */
    uint32_t max_payload;       /* bytes, default 1000000 (polling body, WebSocket message) */
    uint32_t upgrade_timeout_ms; /* an unfinished upgrade is dropped after this, default 10000 */
    size_t max_pending_output;  /* bytes queued for one session before it is closed, 1 MiB */
    bool allow_upgrades;        /* offer "websocket" in the handshake's upgrades, default true */
    /* Transports accepted; both by default. */
    bool allow_polling, allow_websocket;
} eio_options_t;

void eio_options_default(eio_options_t *o);

/* What the owner hears. All on the loop thread. */
typedef struct {
    /* A session was opened by a handshake; req is the handshake request (valid during the call
     * only: copy what you need, e.g. with eio_socket_keep_handshake). Return 0 to accept; a
     * non-zero value refuses the handshake with 403 {"code":4,"message":"Forbidden"} and no
     * session exists afterwards. */
    int (*on_open)(eio_socket_t *s, http_request_t *req, void *ud);
    /* A message packet arrived (text without the '4', or binary). data valid during the call. */
    void (*on_message)(eio_socket_t *s, const char *data, size_t len, bool binary, void *ud);
    /* The session closed (reason: "transport close", "ping timeout", "transport error",
     * "parse error", "server close", "forced close"). Last callback for s; s is freed after it
     * returns. It runs on a loop turn after the one that closed the session, never from inside
     * eio_socket_send(), eio_socket_close() or another callback; from the close on, sends return
     * UV_ECANCELED. Not called for a handshake that on_open refused. */
    void (*on_close)(eio_socket_t *s, const char *reason, void *ud);
} eio_callbacks_t;

/* Creates a server. opts and cbs are copied; ud is given back in every callback. */
eio_server_t *eio_server_new(uv_loop_t *loop, const eio_options_t *opts,
                             const eio_callbacks_t *cbs, void *ud);
/* Closes every session (on_close fires for each with "server close"; held polls get the close
 * packet, WebSockets close 1001) and frees the server once they are gone; cb (may be NULL) fires
 * then. Requests that arrive meanwhile get 503. srv is freed before cb, so the owner stops
 * routing to it first: start http_server_shutdown in the same loop turn (it dispatches nothing
 * new after that), or unmount the route. */
void eio_server_close(eio_server_t *srv, void (*cb)(void *ud), void *ud);
/* HTTP handler: mount with http_router_add(r, NULL, "/socket.io/ *"(no space), eio_server_handle,
 * srv). Answers CORS preflights for polling when the owner allows them (see eio_server_cors). */
void eio_server_handle(http_request_t *req, void *srv);
/* Optional: decides the Access-Control-Allow-Origin for polling requests. allow(origin, ud)
 * returns true to reflect origin (with credentials allowed), false to send no CORS headers.
 * Default: none. */
void eio_server_cors(eio_server_t *srv, bool (*allow)(const pl_slice_t *origin, void *ud),
                     void *ud);
size_t eio_server_session_count(const eio_server_t *srv);

/* Sends one message packet. For text, msg holds the packet as sent on a WebSocket: the type
 * digit '4' followed by the text; for binary, the raw bytes. msg gets a reference (it is not
 * copied: a broadcast encodes once and passes the same buffer to every receiver). Returns 0,
 * or PL_ETOOBIG when the session's pending output would pass max_pending_output (the session
 * is then closed with "transport error"), or UV_ECANCELED if it is closing. Also PL_EINVAL for
 * text that does not start with '4', PL_ENOMEM, or a libuv error when the WebSocket write
 * failed (the session is then closed with "transport error"). */
int eio_socket_send(eio_socket_t *s, pl_rcbuf_t *msg, bool binary);
/* Closes the session from the server side: queued output is flushed, a close packet sent,
 * then on_close("server close") fires. */
void eio_socket_close(eio_socket_t *s);
const char *eio_socket_id(const eio_socket_t *s);        /* the sid */
const char *eio_socket_transport(const eio_socket_t *s); /* "polling" or "websocket" */
const char *eio_socket_remote_ip(const eio_socket_t *s);
void eio_socket_set_data(eio_socket_t *s, void *data);   /* owner's pointer */
void *eio_socket_data(const eio_socket_t *s);
/* Bytes queued for the client and not yet written. */
size_t eio_socket_pending(const eio_socket_t *s);

#endif
