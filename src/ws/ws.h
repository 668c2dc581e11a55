/* WebSocket server connections (RFC 6455): the opening handshake on an http_request_t, then
 * messages, control frames and the closing handshake on the taken-over http_conn_t.
 *
 * Handshake (section 4.2): GET, HTTP/1.1, `Upgrade` holding the token `websocket`, `Connection`
 * holding `upgrade` (comma lists, any case), exactly one `Sec-WebSocket-Version: 13` and one
 * `Sec-WebSocket-Key` that is the base64 of 16 bytes. Anything else is answered 400 with the
 * reason in the API's JSON error shape ({statusCode, message, error}) and the connection closed
 * (BAD-INPUTS CVE-2022-41940). Decision: a wrong or missing version is also 400 (not 426), with
 * the `Sec-WebSocket-Version: 13` header section 4.4 asks for. Sec-WebSocket-Extensions is never
 * read (no extension is offered; GHSA-5v72-xg48-5rpm); Sec-WebSocket-Protocol is checked for
 * syntax in one linear pass (CVE-2021-32640) and no subprotocol is selected.
 *
 * After the upgrade: the frame rules of frame.h (masking, RSV, fragmentation, limits, UTF-8,
 * close codes). A ping is answered with a pong. A close frame from the peer is echoed with its
 * code and the TCP connection closed by us. ws_close() sends a close frame and waits up to
 * close_timeout_ms for the peer's; a peer that broke the protocol gets its close code (1002,
 * 1007, 1009) and the connection is closed once that frame is written. Server shutdown (the
 * HTTP server's on_shutdown) closes with 1001.
 *
 * Writes are zero-copy: a frame is its 2-10 header bytes plus the caller's refcounted payload,
 * both handed to http_conn_writev, so a broadcast shares one buffer among all receivers. Output
 * pending beyond the HTTP server's max_pending_output closes the connection (slow consumer).
 *
 * Memory: an idle connection is one ws_conn_t (see ws_conn_size()); wslay's context, a close
 * timer and reassembly buffers exist only while needed.
 *
 * Lifetime: a ws_conn_t is reference-counted (the HTTP connection, the owner, a close timer and
 * every call in progress hold a reference) and freed when the last one goes, never inside a
 * callback's caller. The owner's pointer is valid until it receives on_close or calls
 * ws_detach(). Threads: loop thread only. */
#ifndef WS_WS_H
#define WS_WS_H

#include "core/buf.h"
#include "http/server.h"
#include "ws/frame.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ws_conn ws_conn_t;

typedef struct {
    uint32_t max_message;      /* bytes of one received message, all fragments; 1009 beyond */
    uint32_t close_timeout_ms; /* wait for the peer's close frame after ours; default 3000 */
} ws_options_t;

/* Fills in the defaults: max_message 1 MiB, close_timeout_ms 3000. */
void ws_options_default(ws_options_t *o);

/* What the owner hears. All on the loop thread. */
typedef struct {
    /* A complete message; data is valid during the call only. The owner may call ws_send,
     * ws_close or ws_detach from here. */
    void (*on_message)(ws_conn_t *ws, void *ud, const char *data, size_t len, bool binary);
    /* The connection is gone. code is the close code the peer sent (1005 when its close frame
     * had none), the code we failed the connection with, or 1006 when TCP closed without a
     * close frame. error is true when the connection ended on a fault (the peer broke the
     * protocol, a write failed or the slow-consumer bound was hit) rather than an orderly
     * close. Last callback: the owner must drop its pointer and must not call ws_* on it. May
     * fire from inside ws_send (a failed write), so the owner must not free what its caller
     * still uses: defer such work. */
    void (*on_close)(ws_conn_t *ws, void *ud, unsigned code, bool error);
} ws_callbacks_t;

/* Checks the opening handshake of req without answering it. Returns 0 when it is a valid
 * WebSocket upgrade, else the HTTP status to answer (400) with a static reason in *reason and,
 * in *version_header, whether to add `Sec-WebSocket-Version: 13`. Linear in the headers. */
int ws_handshake_check(const http_request_t *req, const char **reason, bool *version_header);

/* Answers an invalid handshake as ws_handshake_check describes it and finishes req. */
void ws_handshake_refuse(http_request_t *req, int status, const char *reason, bool version_header);

/* Completes the opening handshake: checks req (refusing it as above and returning NULL when
 * invalid), answers 101 with Sec-WebSocket-Accept, and takes the connection over. req is
 * finished either way. opts may be NULL for the defaults; cbs is borrowed and must outlive the
 * connection; ud is given back in every callback. Returns the connection, or NULL when the
 * handshake was refused or the TCP connection had already closed (no callback fires then). */
ws_conn_t *ws_accept(http_request_t *req, const ws_options_t *opts, const ws_callbacks_t *cbs,
                     void *ud);

/* Sends one message as a single frame: the header is written, then payload itself (a reference
 * is taken until it is written; the bytes must not change). Returns 0, UV_ECANCELED when the
 * connection is closing or closed, or PL_ETOOBIG / PL_ENOMEM / a libuv error when the write
 * could not be queued: the connection is then closed and on_close fires (possibly before this
 * returns, with error set). */
int ws_send(ws_conn_t *ws, pl_rcbuf_t *payload, bool binary);
/* Same, copying len bytes (for small messages). */
int ws_send_copy(ws_conn_t *ws, const void *data, size_t len, bool binary);

/* Starts the closing handshake with code (1000 normal, 1001 going away, 1003, 1008, ...) and an
 * optional reason (copied, cut to fit). The connection closes when the peer answers or after
 * close_timeout_ms; on_close fires then. Nothing more is sent or delivered after this call. A
 * second call does nothing. */
void ws_close(ws_conn_t *ws, unsigned code, const char *reason);
/* The owner lets go: no callback fires any more and the owner's pointer is invalid after the
 * call. A connection still open is closed with code 1000 first (the handshake then completes
 * on its own). */
void ws_detach(ws_conn_t *ws);

/* Bytes queued for the peer and not yet written (0 once closed). */
size_t ws_pending(const ws_conn_t *ws);
/* The HTTP connection's id, for logs (0 once closed). */
uint64_t ws_conn_id(const ws_conn_t *ws);
/* True once ws_close was called or the connection closed. */
bool ws_closing(const ws_conn_t *ws);
/* sizeof(ws_conn_t): the bytes an idle connection costs in this layer. */
size_t ws_conn_size(void);

#endif
