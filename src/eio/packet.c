/* Engine.IO v4 packet and payload codec: see packet.h. Implements the "Packet encoding" and
 * "Payload" parts of the Engine.IO v4 protocol as engine.io-parser 5.x does, with the stricter
 * checks listed in packet.h. Base64 is done here (not with libsodium) so that padding can be
 * optional and so the fuzzer sees the code. */
#include "eio/packet.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

const char *eio_type_name(eio_type_t type) {
    static const char *const names[] = {"open",    "close",   "ping", "pong",
                                        "message", "upgrade", "noop"};
    return (unsigned)type <= EIO_NOOP ? names[type] : "unknown";
}

static size_t limit_or(size_t v, size_t dflt) {
    return v ? v : dflt;
}

/* ---- base64 (standard alphabet) ---- */

static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Most bytes n base64 characters decode to. */
static size_t b64_max_decoded(size_t n) {
    return n / 4 * 3 + 2;
}

/* Decodes n characters of standard base64 into out (room for b64_max_decoded(n) bytes).
 * Padding is optional but must be right when present; the unused low bits of the last
 * character must be zero. Returns the decoded length, or -1 if the text is not base64. */
static long b64_decode(unsigned char *out, const char *in, size_t n) {
    size_t pad = 0;
    while (pad < 2 && n - pad > 0 && in[n - pad - 1] == '=')
        pad++;
    if (pad > 0 && n % 4 != 0)
        return -1;
    size_t m = n - pad; /* data characters */
    if (m % 4 == 1)
        return -1;
    size_t o = 0;
    size_t i = 0;
    for (; i + 4 <= m; i += 4) {
        int a = b64_value((unsigned char)in[i]), b = b64_value((unsigned char)in[i + 1]);
        int c = b64_value((unsigned char)in[i + 2]), d = b64_value((unsigned char)in[i + 3]);
        if ((a | b | c | d) < 0)
            return -1;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        out[o++] = (unsigned char)(v >> 16);
        out[o++] = (unsigned char)(v >> 8);
        out[o++] = (unsigned char)v;
    }
    size_t rest = m - i; /* 0, 2 or 3 */
    if (rest >= 2) {
        int a = b64_value((unsigned char)in[i]), b = b64_value((unsigned char)in[i + 1]);
        int c = rest == 3 ? b64_value((unsigned char)in[i + 2]) : 0;
        if ((a | b | c) < 0)
            return -1;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
        out[o++] = (unsigned char)(v >> 16);
        if (rest == 3)
            out[o++] = (unsigned char)(v >> 8);
        /* Bits below the last whole byte must be zero (canonical encoding). */
        if ((rest == 2 && (v & 0xFFFF)) || (rest == 3 && (v & 0xFF)))
            return -1;
    }
    return (long)o;
}

/* Appends the padded standard base64 of n bytes to out. */
static int b64_append(pl_buf_t *out, const unsigned char *in, size_t n) {
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (n / 3 >= SIZE_MAX / 4 - 1)
        return PL_ETOOBIG;
    size_t need = (n + 2) / 3 * 4;
    int rc = pl_buf_reserve(out, need);
    if (rc)
        return rc;
    char *w = out->data + out->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *w++ = alphabet[v >> 18];
        *w++ = alphabet[(v >> 12) & 63];
        *w++ = alphabet[(v >> 6) & 63];
        *w++ = alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *w++ = alphabet[v >> 18];
        *w++ = alphabet[(v >> 12) & 63];
        *w++ = '=';
        *w++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *w++ = alphabet[v >> 18];
        *w++ = alphabet[(v >> 12) & 63];
        *w++ = alphabet[(v >> 6) & 63];
        *w++ = '=';
    }
    out->len += need;
    return 0;
}

/* ---- one packet in text form ---- */

static bool data_allowed(eio_type_t type, const char *d, size_t n) {
    switch (type) {
    case EIO_OPEN:
    case EIO_MESSAGE:
        return true;
    case EIO_PING:
    case EIO_PONG:
        return n == 0 || (n == 5 && memcmp(d, "probe", 5) == 0);
    default:
        return n == 0;
    }
}

/* Parses the text form p[0..n) ("<digit><data>" or "b<base64>"). Base64 is decoded onto the end
 * of bin, and *bin_off receives where it starts: the caller sets data.ptr once bin stops
 * moving. Returns 0 or PL_EINVAL / PL_ETOOBIG / PL_ENOMEM. */
static int decode_text(eio_packet_t *out, const char *p, size_t n, pl_buf_t *bin, size_t *bin_off) {
    if (n == 0)
        return PL_EINVAL;
    if (p[0] == 'b') {
        size_t max = b64_max_decoded(n - 1);
        int rc = pl_buf_reserve(bin, max);
        if (rc)
            return rc;
        long got = b64_decode((unsigned char *)bin->data + bin->len, p + 1, n - 1);
        if (got < 0)
            return PL_EINVAL;
        *bin_off = bin->len;
        bin->len += (size_t)got;
        *out = (eio_packet_t){
            .type = EIO_MESSAGE, .binary = true, .data = pl_slice(NULL, (size_t)got)};
        return 0;
    }
    if (p[0] < '0' || p[0] > '6')
        return PL_EINVAL;
    eio_type_t type = (eio_type_t)(p[0] - '0');
    if (!data_allowed(type, p + 1, n - 1))
        return PL_EINVAL;
    *out = (eio_packet_t){.type = type, .binary = false, .data = pl_slice(p + 1, n - 1)};
    return 0;
}

static int check_encodable(const eio_packet_t *packet) {
    if ((unsigned)packet->type > EIO_NOOP)
        return PL_EINVAL;
    if (packet->binary && packet->type != EIO_MESSAGE)
        return PL_EINVAL;
    if (packet->data.len > 0 && !packet->data.ptr)
        return PL_EINVAL;
    return 0;
}

/* Appends "<digit><data>" or "b<base64>". */
static int encode_text(pl_buf_t *out, const eio_packet_t *packet) {
    if (packet->binary) {
        int rc = pl_buf_append(out, "b", 1);
        return rc ? rc : b64_append(out, (const unsigned char *)packet->data.ptr, packet->data.len);
    }
    if (packet->data.len > SIZE_MAX - 1)
        return PL_ETOOBIG;
    int rc = pl_buf_reserve(out, 1 + packet->data.len);
    if (rc)
        return rc;
    out->data[out->len++] = (char)('0' + packet->type);
    if (packet->data.len) {
        memcpy(out->data + out->len, packet->data.ptr, packet->data.len);
        out->len += packet->data.len;
    }
    return 0;
}

/* ---- WebSocket ---- */

int eio_packet_decode_ws(eio_packet_t *out, const char *p, size_t len, bool binary_frame,
                         const eio_limits_t *lim, pl_buf_t *scratch) {
    size_t max_payload = limit_or(lim ? lim->max_payload : 0, EIO_DEFAULT_MAX_PAYLOAD);
    if (len > max_payload)
        return PL_ETOOBIG;
    if (len > 0 && !p)
        return PL_EINVAL;
    if (binary_frame) {
        *out = (eio_packet_t){.type = EIO_MESSAGE, .binary = true, .data = pl_slice(p, len)};
        return 0;
    }
    pl_buf_reset(scratch);
    size_t off = 0;
    eio_packet_t pkt;
    int rc = decode_text(&pkt, p, len, scratch, &off);
    if (rc)
        return rc;
    if (pkt.binary)
        pkt.data.ptr = scratch->data ? scratch->data + off : "";
    *out = pkt;
    return 0;
}

int eio_packet_encode_ws(const eio_packet_t *packet, bool b64, pl_buf_t *out, bool *binary_frame) {
    int rc = check_encodable(packet);
    if (rc)
        return rc;
    if (packet->binary && !b64) {
        *binary_frame = true;
        return pl_buf_append(out, packet->data.ptr, packet->data.len);
    }
    *binary_frame = false;
    return encode_text(out, packet);
}

/* ---- polling payloads ---- */

void eio_payload_init(eio_payload_t *pl) {
    pl->packets = NULL;
    pl->count = 0;
    pl->cap = 0;
    pl_buf_init(&pl->bin, 0);
}

void eio_payload_dispose(eio_payload_t *pl) {
    free(pl->packets);
    pl->packets = NULL;
    pl->count = pl->cap = 0;
    pl_buf_dispose(&pl->bin);
}

int eio_payload_decode(eio_payload_t *pl, const char *p, size_t len, const eio_limits_t *lim) {
    size_t max_payload = limit_or(lim ? lim->max_payload : 0, EIO_DEFAULT_MAX_PAYLOAD);
    size_t max_packets = limit_or(lim ? lim->max_packets : 0, EIO_DEFAULT_MAX_PACKETS);
    pl->count = 0;
    pl_buf_reset(&pl->bin);
    if (len > max_payload)
        return PL_ETOOBIG;
    if (len == 0 || !p)
        return PL_EINVAL;

    /* Pass 1: count packets (memchr, linear) before allocating anything. */
    size_t count = 1;
    for (const char *s = p, *end = p + len;
         (s = memchr(s, EIO_RECORD_SEPARATOR, (size_t)(end - s))); s++) {
        if (++count > max_packets)
            return PL_ETOOBIG;
    }
    if (!pl_utf8_valid(p, len))
        return PL_EINVAL;
    if (count > pl->cap) {
        if (count > SIZE_MAX / sizeof(eio_packet_t))
            return PL_ENOMEM;
        eio_packet_t *grown = realloc(pl->packets, count * sizeof(eio_packet_t));
        if (!grown)
            return PL_ENOMEM;
        pl->packets = grown;
        pl->cap = count;
    }

    /* Pass 2: decode each packet. Binary data goes to pl->bin, which may move while it grows,
     * so binary packets keep their offset in data.ptr's place until the end. */
    size_t *offsets = NULL; /* only allocated if a binary packet shows up */
    const char *s = p, *end = p + len;
    size_t n = 0;
    int rc = 0;
    while (n < count) {
        const char *sep = memchr(s, EIO_RECORD_SEPARATOR, (size_t)(end - s));
        size_t plen = sep ? (size_t)(sep - s) : (size_t)(end - s);
        size_t off = 0;
        rc = decode_text(&pl->packets[n], s, plen, &pl->bin, &off);
        if (rc)
            goto out_free_offsets;
        if (pl->packets[n].binary) {
            if (!offsets) {
                offsets = calloc(count, sizeof(size_t));
                if (!offsets) {
                    rc = PL_ENOMEM;
                    goto out_free_offsets;
                }
            }
            offsets[n] = off;
        }
        n++;
        s = sep ? sep + 1 : end;
    }
    for (size_t i = 0; offsets && i < n; i++) {
        if (pl->packets[i].binary)
            pl->packets[i].data.ptr = pl->bin.data ? pl->bin.data + offsets[i] : "";
    }
    pl->count = n;

out_free_offsets:
    free(offsets);
    if (rc) {
        pl->count = 0;
        pl_buf_reset(&pl->bin);
    }
    return rc;
}

int eio_payload_append(pl_buf_t *out, const eio_packet_t *packet, bool separator) {
    int rc = check_encodable(packet);
    if (rc)
        return rc;
    if (!packet->binary && packet->data.len &&
        memchr(packet->data.ptr, EIO_RECORD_SEPARATOR, packet->data.len))
        return PL_EINVAL;
    if (separator) {
        char sep = EIO_RECORD_SEPARATOR;
        rc = pl_buf_append(out, &sep, 1);
        if (rc)
            return rc;
    }
    return encode_text(out, packet);
}

int eio_payload_encode(pl_buf_t *out, const eio_packet_t *packets, size_t count) {
    for (size_t i = 0; i < count; i++) {
        int rc = eio_payload_append(out, &packets[i], i > 0);
        if (rc)
            return rc;
    }
    return 0;
}
