/* WebSocket client framing and the masking PRNG of the load client: see lg_ws.h (RFC 6455
 * section 5.2 frame layout, 5.3 client-to-server masking). */
#include "lg_ws.h"

#include "core/buf.h"

#include <string.h>

void lg_rng_seed(lg_rng_t *r, uint64_t seed) {
    r->s = seed ? seed : 0x9E3779B97F4A7C15ull;
}

uint64_t lg_rng_next(lg_rng_t *r) {
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

size_t lg_ws_client_header(uint8_t *out, unsigned op, uint64_t len, uint32_t mask_key) {
    size_t h = 2;
    out[0] = (uint8_t)(0x80u | (op & 0x0Fu));
    if (len < 126) {
        out[1] = (uint8_t)(0x80u | len);
    } else if (len <= 0xFFFF) {
        out[1] = 0x80u | 126u;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        h = 4;
    } else {
        out[1] = 0x80u | 127u;
        for (int i = 0; i < 8; i++) {
            out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        }
        h = 10;
    }
    /* The key goes on the wire in the order the masking uses it: byte j of the payload is
     * XOR-ed with key byte j % 4, where key byte 0 is the least significant byte here. */
    out[h + 0] = (uint8_t)mask_key;
    out[h + 1] = (uint8_t)(mask_key >> 8);
    out[h + 2] = (uint8_t)(mask_key >> 16);
    out[h + 3] = (uint8_t)(mask_key >> 24);
    return h + 4;
}

size_t lg_ws_mask_copy(uint8_t *dst, const uint8_t *src, size_t n, uint32_t mask_key, size_t off) {
    uint8_t key[4] = {(uint8_t)mask_key, (uint8_t)(mask_key >> 8), (uint8_t)(mask_key >> 16),
                      (uint8_t)(mask_key >> 24)};
    size_t i = 0;
    /* Align the rotating key to the piece's offset, then XOR eight bytes at a time. */
    while (i < n && ((off + i) & 3u) != 0) {
        dst[i] = src[i] ^ key[(off + i) & 3u];
        i++;
    }
    uint64_t k8;
    uint8_t kb[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
    memcpy(&k8, kb, 8);
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= k8;
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++) {
        dst[i] = src[i] ^ key[(off + i) & 3u];
    }
    return off + n;
}

int lg_ws_frame_parse(const uint8_t *p, size_t n, uint64_t max_len, lg_ws_frame_t *f) {
    if (n < 2) {
        return 0;
    }
    unsigned b0 = p[0], b1 = p[1];
    if (b0 & 0x70u) {
        return PL_EINVAL; /* RSV1-3: no extension was negotiated */
    }
    if (b1 & 0x80u) {
        return PL_EINVAL; /* a server must not mask (RFC 6455 5.1) */
    }
    f->fin = (b0 & 0x80u) != 0;
    f->opcode = b0 & 0x0Fu;
    bool control = (f->opcode & 0x8u) != 0;
    switch (f->opcode) {
    case LG_WS_CONT:
    case LG_WS_TEXT:
    case LG_WS_BINARY:
    case LG_WS_CLOSE:
    case LG_WS_PING:
    case LG_WS_PONG:
        break;
    default:
        return PL_EINVAL;
    }
    uint64_t len = b1 & 0x7Fu;
    size_t h = 2;
    if (len == 126) {
        if (n < 4) {
            return 0;
        }
        len = ((uint64_t)p[2] << 8) | p[3];
        if (len < 126) {
            return PL_EINVAL;
        }
        h = 4;
    } else if (len == 127) {
        if (n < 10) {
            return 0;
        }
        len = 0;
        for (int i = 0; i < 8; i++) {
            len = (len << 8) | p[2 + i];
        }
        if (len >> 63 || len <= 0xFFFF) {
            return PL_EINVAL;
        }
        h = 10;
    }
    if (control && (!f->fin || len > 125)) {
        return PL_EINVAL;
    }
    if (len > max_len) {
        return PL_ETOOBIG;
    }
    f->header_len = h;
    f->len = len;
    return 1;
}
