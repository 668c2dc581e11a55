/* Socket.IO protocol v5 packet codec ("Packet encoding" of socket.io-protocol v5, as
 * socket.io-parser 4.2 implements it), including binary attachments.
 *
 * Text form: <type>[<attachments>-][<nsp>,][<ack id>][<JSON>], type 0 CONNECT, 1 DISCONNECT,
 * 2 EVENT, 3 ACK, 4 CONNECT_ERROR, 5 BINARY_EVENT, 6 BINARY_ACK. The namespace appears only when
 * it is not "/" and then always starts with '/'. Each Socket.IO packet travels as the data of one
 * Engine.IO message packet, so on the wire it is prefixed with '4'; a binary packet's text is
 * followed by exactly <attachments> binary Engine.IO messages.
 *
 * Binary in the JSON tree (decision): the data tree keeps socket.io's placeholder objects
 * {"_placeholder":true,"num":n} where the binary values were, and the packet carries the
 * attachment bytes alongside, as pl_rcbuf_t references in bufs[] (bufs[n] for placeholder n).
 * Handlers read an argument's bytes with sio_packet_binary(); echoing a packet needs no
 * conversion: pass the same data tree and bufs to sio_packet_encode(). To send new binary,
 * build sio_placeholder_new(k) into the tree and put the bytes at bufs[k]. The encoder
 * renumbers placeholders in tree order (as socket.io-parser's deconstructPacket does) and emits
 * one attachment per placeholder, so the output is byte-identical to socket.io-parser's.
 * A placeholder is any object whose "_placeholder" member is JSON true; it is only treated as
 * binary in a binary packet (decoding) or when bufs are given (encoding): in a plain EVENT/ACK
 * such an object is ordinary data, as in socket.io-parser.
 *
 * Validation (socket.io-parser isPayloadValid, with the decisions marked *):
 *   CONNECT        data absent or an object
 *   DISCONNECT     no data
 *   EVENT, BINARY_EVENT  an array whose first element is a string (*numbers are refused:
 *                  BAD-INPUTS.md CVE-2023-32695 says the event name must be a string) that is
 *                  not reserved: connect, connect_error, disconnect, disconnecting, newListener,
 *                  removeListener
 *   ACK, BINARY_ACK      an array, *and an ack id (an ACK without one cannot be matched)
 *   CONNECT_ERROR  an object or a string (*required)
 *   BINARY_*       attachments an integer in [1, max_attachments] (CVE-2026-33151,
 *                  CVE-2026-69185); every placeholder's num an integer in [0, attachments)
 *                  (CVE-2022-2421)
 *   ack id         decimal digits, at most 2^53 - 1; *namespace at most max_nsp bytes of UTF-8
 *                  without control characters (they would end up in logs and replies)
 *   JSON           pl_json_parse with the limits in sio_limits_t.json
 * Anything else is PL_EINVAL, and nothing is left allocated.
 *
 * Pure codec: no I/O, no globals; any thread, one packet per thread at a time. */
#ifndef SIO_PACKET_H
#define SIO_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/json.h"

typedef enum {
    SIO_CONNECT = 0,
    SIO_DISCONNECT = 1,
    SIO_EVENT = 2,
    SIO_ACK = 3,
    SIO_CONNECT_ERROR = 4,
    SIO_BINARY_EVENT = 5,
    SIO_BINARY_ACK = 6
} sio_type_t;

#define SIO_DEFAULT_MAX_ATTACHMENTS 10  /* as socket.io-parser's maxAttachments */
#define SIO_DEFAULT_MAX_PACKET 1000000  /* bytes of packet text (Engine.IO maxPayload) */
#define SIO_DEFAULT_MAX_NSP 256         /* bytes of a namespace name */
#define SIO_DEFAULT_MAX_BINARY 10000000 /* bytes of all attachments of one packet */
#define SIO_MAX_ID PL_JSON_MAX_SAFE_INT /* largest ack id: 2^53 - 1 */

/* sio_packet_decode: a well-framed EVENT whose arguments are not acceptable JSON (see there). */
#define SIO_EPAYLOAD (-20201)

typedef struct {
    size_t max_attachments; /* attachments per binary packet; 0 = default (10) */
    size_t max_packet;      /* bytes of the packet text; 0 = default */
    size_t max_nsp;         /* bytes of the namespace; 0 = default */
    size_t max_binary;      /* total attachment bytes per packet; 0 = default */
    pl_json_limits_t json;  /* for the JSON data (zeros = pl_json defaults) */
} sio_limits_t;

typedef struct {
    sio_type_t type;    /* as on the wire: a decoded binary packet keeps SIO_BINARY_* */
    pl_slice_t nsp;     /* namespace, "/" for the main one; decoded: owned by the packet,
                           NUL-terminated, valid until sio_packet_dispose */
    bool has_id;        /* an ack id is present */
    uint64_t id;        /* the ack id, <= SIO_MAX_ID, when has_id */
    json_t *data;       /* payload or NULL; decoded: the packet owns one reference */
    size_t attachments; /* decoded binary packet: attachments announced (>= 1); else 0.
                           Ignored by the encoder. */
    size_t nbufs;       /* buffers in bufs: decoded, how many arrived so far */
    pl_rcbuf_t **bufs;  /* attachment bytes, bufs[n] for placeholder num n; decoded: owned
                           array of attachments entries, each an owned reference */
    size_t bin_bytes;   /* decoded: total bytes of the attachments received */
    const char *error;  /* after a failed decode: a short static reason for the log */
    char *nsp_owned;    /* private: the allocation behind nsp, if any */
} sio_packet_t;

const char *sio_type_name(sio_type_t type);

/* True when name (len bytes) is one of the event names socket.io reserves. */
bool sio_event_reserved(const char *name, size_t len);

/* Makes p an empty packet (CONNECT, nsp "/", no id, no data, no buffers). */
void sio_packet_init(sio_packet_t *p);

/* Releases what a decoded packet owns (data reference, buffers, namespace) and re-initialises
 * it. Safe to call twice. Not for packets the caller assembled for encoding with borrowed
 * fields (bufs, data): those belong to the caller. */
void sio_packet_dispose(sio_packet_t *p);

/* Decodes the text of one Socket.IO packet (the Engine.IO message data, without its '4').
 * out is overwritten (not disposed first). lim may be NULL for the defaults. On success out owns
 * its namespace, data and, for a binary packet, an empty bufs array: the packet is then
 * incomplete until sio_packet_add_attachment has been called attachments times (see
 * sio_packet_complete); it must not be dispatched before. On failure out is empty, out->error
 * says why, and nothing is allocated. Returns 0, PL_EINVAL (malformed; includes attachment
 * counts out of range and invalid placeholders), PL_ETOOBIG (text over max_packet) or
 * PL_ENOMEM. O(len).
 * One more result: SIO_EPAYLOAD when the packet is a well-framed EVENT (type, namespace and ack
 * id valid) whose JSON arguments fail pl_json_parse, but which starts with a plain event name:
 * then out holds the type, namespace and ack id, out->data is that name as a JSON string (owned)
 * and out->error the reason. The server can answer that event with a refusal and keep the
 * connection; dispose out afterwards. */
PL_NODISCARD int sio_packet_decode(sio_packet_t *out, const char *p, size_t len,
                                   const sio_limits_t *lim);

/* Adds the next binary attachment (an Engine.IO binary message) to an incomplete decoded packet,
 * copying the len bytes at data into a new pl_rcbuf_t. Returns 0, PL_EINVAL (the packet expects
 * no more attachments), PL_ETOOBIG (over max_binary in total) or PL_ENOMEM; on error the packet
 * is unchanged and the caller disposes it (the connection is then closed). */
PL_NODISCARD int sio_packet_add_attachment(sio_packet_t *p, const void *data, size_t len,
                                           const sio_limits_t *lim);

/* True when a decoded packet has all its attachments (always true for non-binary packets). */
static inline bool sio_packet_complete(const sio_packet_t *p) {
    return p->nbufs == p->attachments;
}

/* True for SIO_BINARY_EVENT and SIO_BINARY_ACK. */
static inline bool sio_type_is_binary(sio_type_t t) {
    return t == SIO_BINARY_EVENT || t == SIO_BINARY_ACK;
}

/* If node is a placeholder object whose "num" is an integer >= 0, stores it in *num and returns
 * true. Says nothing about whether num is in range for some packet. */
bool sio_placeholder_num(const json_t *node, size_t *num);

/* The attachment a placeholder node of p's data stands for, or NULL when node is not a
 * placeholder, p is not a binary packet, or that attachment has not arrived. Borrowed: take a
 * reference (pl_rcbuf_ref) to keep it beyond the packet. */
pl_rcbuf_t *sio_packet_binary(const sio_packet_t *p, const json_t *node);

/* A new placeholder object {"_placeholder":true,"num":num} (new reference), or NULL when out of
 * memory. */
json_t *sio_placeholder_new(size_t num);

/* Attachments produced by the encoder, in the order they follow the packet text. */
typedef struct {
    pl_rcbuf_t **bufs; /* owned array of count owned references */
    size_t count;
} sio_attachments_t;

static inline void sio_attachments_init(sio_attachments_t *a) {
    a->bufs = NULL;
    a->count = 0;
}
/* Drops the references and the array; a is empty afterwards. */
void sio_attachments_dispose(sio_attachments_t *a);

/* Encodes p (all fields borrowed; attachments, bin_bytes, error, nsp_owned ignored) and appends
 * its text to out (a caller wanting the Engine.IO form appends "4" first). p->nsp may be empty
 * for "/". EVENT and BINARY_EVENT (likewise ACK and BINARY_ACK) are the same request: when
 * p->nbufs > 0 and the data holds placeholders, the packet goes out as BINARY_* with one
 * attachment per placeholder, renumbered in tree order, and att receives references to the
 * buffers in that order; otherwise as EVENT/ACK with att->count 0. att must be initialised or
 * disposed (empty) and may be NULL only when p->nbufs is 0. The data must pass the same
 * validation as decoding (reserved event names included). The bytes can be shared by every
 * receiver of a broadcast: nothing in them depends on the receiver. Returns 0 or PL_EINVAL
 * (invalid packet, a placeholder whose num is not below nbufs), PL_ETOOBIG (out->max, or more
 * than SIO_DEFAULT_MAX_ATTACHMENTS placeholders: socket.io-client would refuse the packet),
 * PL_ENOMEM; on error out is restored to its length before the call and att is empty. */
PL_NODISCARD int sio_packet_encode(const sio_packet_t *p, pl_buf_t *out, sio_attachments_t *att);

/* sio_packet_encode into a new refcounted buffer holding the Engine.IO message form ("4" + text)
 * ready for a WebSocket text frame or a polling payload: encode once per broadcast and give
 * every receiver a reference. On success *text is a new reference the caller owns. Same
 * errors. */
PL_NODISCARD int sio_packet_encode_shared(const sio_packet_t *p, pl_rcbuf_t **text,
                                          sio_attachments_t *att);

#endif
