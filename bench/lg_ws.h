/* The load client's WebSocket framing (RFC 6455 section 5), client side only, and the fast
 * PRNG that draws its masking keys. Pure code: bytes in, bytes out, no I/O, no allocation.
 *
 * Client frames are always masked (RFC 6455 5.3); the key comes from a xorshift generator,
 * not a CSPRNG: the load client is its own peer's only user, and masking cost matters at high
 * message rates. Server frames must be unmasked; the decoder refuses masked ones, RSV bits,
 * unknown opcodes, fragmented or oversized control frames, and 64-bit lengths with the top bit
 * set. Threads: any, no shared state. */
#ifndef LG_WS_H
#define LG_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    LG_WS_CONT = 0x0,
    LG_WS_TEXT = 0x1,
    LG_WS_BINARY = 0x2,
    LG_WS_CLOSE = 0x8,
    LG_WS_PING = 0x9,
    LG_WS_PONG = 0xA
};

/* Largest client frame header: 2 bytes + 8 bytes of length + 4 bytes of mask key. */
#define LG_WS_MAX_HEADER 14

/* xorshift64* state; never 0. */
typedef struct {
    uint64_t s; /* current state */
} lg_rng_t;

/* Seeds the generator (a zero seed is replaced by a fixed non-zero constant). */
void lg_rng_seed(lg_rng_t *r, uint64_t seed);
uint64_t lg_rng_next(lg_rng_t *r);

/* Writes the header of a final, masked client frame with opcode op and payload length len into
 * out (LG_WS_MAX_HEADER bytes of room). Returns the header length (6, 8 or 14). */
size_t lg_ws_client_header(uint8_t *out, unsigned op, uint64_t len, uint32_t mask_key);

/* Copies n bytes from src to dst XOR-ing them with the mask key, starting at byte offset off
 * of the frame's payload (so a payload can be written in pieces). dst and src may be equal.
 * Returns off + n, the offset for the next piece. */
size_t lg_ws_mask_copy(uint8_t *dst, const uint8_t *src, size_t n, uint32_t mask_key, size_t off);

typedef struct {
    bool fin;          /* final fragment of its message */
    unsigned opcode;   /* LG_WS_* */
    size_t header_len; /* bytes before the payload */
    uint64_t len;      /* payload bytes */
} lg_ws_frame_t;

/* Reads one server frame header from p[0..n). Returns 1 with *f filled when the whole header
 * is there (the payload may still be incomplete: compare f->header_len + f->len with n), 0 if
 * more bytes are needed, or PL_EINVAL for a protocol error (masked frame, RSV bits, unknown
 * opcode, control frame fragmented or over 125 bytes, non-minimal or 2^63+ length) and
 * PL_ETOOBIG when the payload is over max_len. */
int lg_ws_frame_parse(const uint8_t *p, size_t n, uint64_t max_len, lg_ws_frame_t *f);

#endif
