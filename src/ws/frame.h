/* WebSocket framing (RFC 6455 section 5) for the server side, as a pure codec: bytes in, events
 * out; header bytes out. No I/O, no libuv, no globals: the fuzz target and the unit tests drive
 * it directly, and ws.c feeds it the bytes of an upgraded connection.
 *
 * The reader parses frames with wslay's frame API (wslay_frame_recv) and adds what RFC 6455
 * asks of a server on top: client frames must be masked (else close 1002), RSV bits must be
 * clear (no extension is ever negotiated; CVE-2022-21676), reserved opcodes are refused,
 * continuation frames are reassembled into one message capped at max_message (1009, checked
 * from the frame header before anything is allocated), a text message must be valid UTF-8 as a
 * whole (1007), control frames must be short and unfragmented (1002, wslay checks these), and a
 * close frame's payload must hold a valid code and a UTF-8 reason.
 *
 * Memory (decision): wslay's frame context embeds a 4 KiB input buffer (4264 bytes measured with
 * wslay 1.1.1), more than the whole 2 KiB budget of an idle connection. So the reader holds one
 * only while a frame is partly received: it counts the bytes it gave wslay and the bytes of the
 * frames wslay completed (header length follows from the payload length, since wslay refuses
 * non-minimal length encodings), and when the two are equal wslay's state is "before a header,
 * buffer empty" and the context is freed. An idle reader is sizeof(ws_reader_t) with nothing
 * allocated; a fragmented message in progress keeps only its reassembly buffer.
 *
 * Threads: a reader belongs to one thread at a time; the functions are reentrant. */
#ifndef WS_FRAME_H
#define WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Opcodes (RFC 6455 section 5.2). */
enum {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA
};

/* Close codes (RFC 6455 section 7.4.1) used here. */
enum {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_NO_STATUS = 1005, /* never sent: "the close frame had no code" */
    WS_CLOSE_ABNORMAL = 1006,  /* never sent: "the connection closed without a close frame" */
    WS_CLOSE_INVALID_DATA = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL = 1011
};

#define WS_MAX_HEADER 10    /* bytes of a server (unmasked) frame header */
#define WS_MAX_CONTROL 125  /* bytes of a control frame's payload */
#define WS_READ_FAILED (-1) /* ws_reader_feed: the peer broke the protocol */

/* What the reader reports. Each callback returns 0 to go on, or any other value to make
 * ws_reader_feed stop at once and return that value (the owner is closing the connection).
 * Data pointers are valid during the call only. */
typedef struct {
    /* A complete message (all fragments joined; text already checked to be UTF-8). */
    int (*on_message)(void *ud, bool binary, const char *data, size_t len);
    /* A ping (the owner answers with a pong carrying the same bytes). */
    int (*on_ping)(void *ud, const char *data, size_t len);
    /* A pong; may be NULL (pongs are then ignored). */
    int (*on_pong)(void *ud, const char *data, size_t len);
    /* A valid close frame: code is WS_CLOSE_NO_STATUS when it carried none. The reader ignores
     * every byte after it. */
    int (*on_close)(void *ud, unsigned code, const char *reason, size_t len);
} ws_reader_cbs_t;

struct ws_rx; /* private: the wslay context and a frame in progress */

typedef struct {
    struct ws_rx *rx;           /* owned; non-NULL only while a frame is partly received */
    const ws_reader_cbs_t *cbs; /* borrowed; must outlive the reader */
    void *ud;                   /* given back to every callback */
    pl_buf_t msg;               /* owned: fragments of the data message being joined */
    uint32_t max_message;       /* bytes of one message (all fragments); larger: 1009 */
    uint8_t msg_opcode;         /* WS_OP_TEXT/BINARY of the fragmented message, 0 if none */
    bool done;                  /* a close frame was read, or the peer failed: input ignored */
    uint16_t error_code;        /* after WS_READ_FAILED: the close code to send */
    const char *error_reason;   /* after WS_READ_FAILED: static text for the log and the close */
} ws_reader_t;

/* Prepares r. max_message 0 means 1 MiB. Nothing is allocated. */
void ws_reader_init(ws_reader_t *r, uint32_t max_message, const ws_reader_cbs_t *cbs, void *ud);
/* Frees what r holds; r may be initialised again afterwards. */
void ws_reader_dispose(ws_reader_t *r);
/* Consumes len bytes of the client's stream, calling back for every complete message and
 * control frame. Returns 0 once all bytes are consumed (a partial frame is kept for the next
 * call), a callback's non-zero value when one asked to stop, or WS_READ_FAILED when the peer
 * broke the protocol: r->error_code (1002, 1007, 1009, 1011) and r->error_reason say why. After
 * a close frame or a failure, further input is ignored and 0 is returned. O(len). */
int ws_reader_feed(ws_reader_t *r, const char *data, size_t len);
/* True when the reader holds no partial frame and no partial message (nothing allocated). */
bool ws_reader_idle(const ws_reader_t *r);

/* Writes the header of an unmasked, final (fin set) server frame with payload length len into
 * out and returns its length (2, 4 or 10). */
size_t ws_frame_header(uint8_t out[WS_MAX_HEADER], unsigned opcode, uint64_t len);

/* Writes a close frame payload (code in network order, then as much of reason as fits in 125
 * bytes, cut on a UTF-8 character boundary) into out; returns its length. code 0 or 1005 gives
 * an empty payload. reason may be NULL. */
size_t ws_close_payload(uint8_t out[WS_MAX_CONTROL], unsigned code, const char *reason);

/* True for a close code a peer may send (1000-1003, 1007-1011, 3000-4999). */
bool ws_close_code_valid(unsigned code);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2): base64(SHA-1(key +
 * GUID)). out receives 28 characters and a NUL. */
void ws_accept_key(const char *key, size_t len, char out[29]);

/* True when the comma-separated header value holds token (ASCII case-insensitive), e.g.
 * "keep-alive, Upgrade" holds "upgrade". Linear in the value. */
bool ws_header_has_token(pl_slice_t value, const char *token);
/* True when value is a valid Sec-WebSocket-Protocol list: RFC 7230 tokens separated by commas
 * with optional spaces or tabs, no empty element. One linear pass, no backtracking
 * (CVE-2021-32640). */
bool ws_protocol_list_valid(pl_slice_t value);

#endif
