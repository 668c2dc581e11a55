/* Engine.IO protocol v4 packet and payload codec (engine.io-protocol v4; engine.io-parser 5.x).
 *
 * A packet is a type (open 0, close 1, ping 2, pong 3, message 4, upgrade 5, noop 6) plus data,
 * text or binary. Over WebSocket one frame is one packet: a text frame carries the type digit
 * then the text ("4hello"); a binary frame is a binary message, raw bytes with no type byte. A
 * client that cannot take binary frames (query b64=1) gets binary as text "b<base64>" instead,
 * and engine.io-client with forceBase64 sends it that way, so text frames starting with 'b' are
 * decoded too. Over HTTP long-polling a body (payload) is packets joined by the record
 * separator 0x1e, binary ones as "b<base64>". There are no length prefixes in v4.
 *
 * The codec is pure: bytes in, structs or bytes out; no I/O, no globals; any thread. Decoding is
 * linear in the input and checks every count and size against eio_limits_t before allocating
 * (BAD-INPUTS.md CVE-2020-36048, CVE-2020-36049).
 *
 * Decisions (stricter than engine.io-parser, which accepts anything after a known type digit):
 *  - close, upgrade and noop carry no data; ping and pong carry none or exactly "probe". These
 *    are all official clients send; so `2:42 2:42 ...` (a v3 length-prefixed payload) is refused
 *    instead of being read as a ping with odd data. open carries any text (server to client).
 *  - base64 must use the standard alphabet; '=' padding may be present (it must then be
 *    correct) or left out; unused low bits must be zero. Node's Buffer.from accepts garbage.
 *  - A polling payload must be valid UTF-8, must not be empty and must not hold empty packets
 *    (engine.io-parser turns "" into a parse error too). */
#ifndef EIO_PACKET_H
#define EIO_PACKET_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

typedef enum {
    EIO_OPEN = 0,
    EIO_CLOSE = 1,
    EIO_PING = 2,
    EIO_PONG = 3,
    EIO_MESSAGE = 4,
    EIO_UPGRADE = 5,
    EIO_NOOP = 6
} eio_type_t;

/* Separates packets in a polling payload. */
#define EIO_RECORD_SEPARATOR '\x1e'

#define EIO_DEFAULT_MAX_PAYLOAD 1000000 /* bytes, as Engine.IO's default maxPayload */
#define EIO_DEFAULT_MAX_PACKETS 512     /* packets per polling payload */

typedef struct {
    size_t max_payload; /* bytes of one polling body or one WebSocket frame; 0 = default */
    size_t max_packets; /* packets in one polling payload; 0 = default */
} eio_limits_t;

typedef struct {
    eio_type_t type;
    bool binary;     /* data is binary; only ever with EIO_MESSAGE */
    pl_slice_t data; /* text (without the type digit) or binary bytes; borrowed: see the
                        function that produced the packet for how long it stays valid */
} eio_packet_t;

/* Text name of a packet type ("open" ... "noop"), or "unknown". */
const char *eio_type_name(eio_type_t type);

/* ---- WebSocket ---- */

/* Decodes one WebSocket message. binary_frame says which frame opcode carried it. A text frame
 * must hold a valid type digit and data allowed for that type, or 'b' + base64 (a binary
 * message): the caller (the WebSocket layer) has already checked that text frames are UTF-8.
 * lim may be NULL for the defaults. On success *out points into p (text, binary frames) or
 * into scratch (base64: scratch is reset, then holds the decoded bytes); it stays valid while
 * those bytes do. scratch is the caller's, with a max of its choosing. Returns 0, PL_EINVAL
 * (malformed: empty frame, unknown type, data not allowed, bad base64), PL_ETOOBIG (over
 * max_payload, or scratch's max) or PL_ENOMEM. O(len). */
PL_NODISCARD int eio_packet_decode_ws(eio_packet_t *out, const char *p, size_t len,
                                      bool binary_frame, const eio_limits_t *lim,
                                      pl_buf_t *scratch);

/* Appends the WebSocket form of packet to out and sets *binary_frame to the opcode to use. A text
 * packet becomes "<digit><data>" (text frame). A binary message becomes its raw bytes (binary
 * frame), or "b<base64>" in a text frame when b64 is set (the client asked b64=1). A caller
 * that already holds the raw bytes of a binary message may send them as they are instead of
 * copying them here. Returns 0, PL_EINVAL (type out of range, binary data on a type other than
 * message), PL_ETOOBIG (out->max) or PL_ENOMEM. */
PL_NODISCARD int eio_packet_encode_ws(const eio_packet_t *packet, bool b64, pl_buf_t *out,
                                      bool *binary_frame);

/* ---- HTTP long-polling ---- */

/* The packets of one decoded polling payload. Holds no reference to the input beyond the
 * slices into it: text packets point into the decoded input, binary ones into bin. */
typedef struct {
    eio_packet_t *packets; /* owned array of count packets */
    size_t count;          /* packets decoded */
    size_t cap;            /* entries allocated in packets */
    pl_buf_t bin;          /* owned: the decoded bytes of base64 packets */
} eio_payload_t;

void eio_payload_init(eio_payload_t *pl);
/* Frees what pl owns (safe on an initialised or disposed payload); pl may be reused after
 * eio_payload_init. */
void eio_payload_dispose(eio_payload_t *pl);

/* Decodes a polling request body. pl must be initialised; its previous contents are replaced
 * (its memory is reused). Either every packet is valid and pl->count >= 1, or nothing is
 * delivered: on error pl->count is 0. Text packets' data points into p (valid while p is);
 * binary packets' data points into pl->bin (valid until pl is reused or disposed). lim may be
 * NULL for the defaults. Returns 0, PL_ETOOBIG (len over max_payload, or more than
 * max_packets packets: counted before anything is allocated), PL_EINVAL (empty body or
 * packet, unknown type, data not allowed for the type, bad base64, not UTF-8) or PL_ENOMEM.
 * O(len): two linear passes. */
PL_NODISCARD int eio_payload_decode(eio_payload_t *pl, const char *p, size_t len,
                                    const eio_limits_t *lim);

/* Appends the polling form of one packet to out: "<digit><data>" or "b<base64>" for binary.
 * With separator set, writes 0x1e first (use it for every packet but the first of a body).
 * Text data must not contain 0x1e (it would split the packet): PL_EINVAL. Also PL_EINVAL for
 * a type out of range or binary data on a type other than message; PL_ETOOBIG (out->max),
 * PL_ENOMEM. On error out may hold part of the packet: the caller discards the body. */
PL_NODISCARD int eio_payload_append(pl_buf_t *out, const eio_packet_t *packet, bool separator);

/* Appends the polling body for count packets (joined by 0x1e) to out, as eio_payload_append
 * does for each. count 0 appends nothing. Same errors. */
PL_NODISCARD int eio_payload_encode(pl_buf_t *out, const eio_packet_t *packets, size_t count);

#endif
