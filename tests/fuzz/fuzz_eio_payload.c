/* libFuzzer driver for src/eio/packet.c. The input is used as a polling body (default and tight
 * limits) and as a WebSocket text and binary frame. Properties checked on every input: what is
 * accepted re-encodes into bytes that decode to the same packets (base64 without padding comes
 * back padded, so bytes are compared after a second round); a refused payload delivers nothing.
 * Any disagreement aborts. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eio/packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_packet(const eio_packet_t *a, const eio_packet_t *b) {
    return a->type == b->type && a->binary == b->binary && a->data.len == b->data.len &&
           (a->data.len == 0 || memcmp(a->data.ptr, b->data.ptr, a->data.len) == 0);
}

static void check_payload(const char *p, size_t len, const eio_limits_t *lim) {
    eio_payload_t pl;
    eio_payload_init(&pl);
    int rc = eio_payload_decode(&pl, p, len, lim);
    if (rc) {
        if (pl.count != 0)
            abort();
        eio_payload_dispose(&pl);
        return;
    }
    if (pl.count == 0 || pl.count > (lim && lim->max_packets ? lim->max_packets : 512))
        abort();

    pl_buf_t body;
    pl_buf_init(&body, 0);
    if (eio_payload_encode(&body, pl.packets, pl.count) != 0)
        abort();
    eio_payload_t again;
    eio_payload_init(&again);
    if (eio_payload_decode(&again, body.data, body.len, NULL) != 0 || again.count != pl.count)
        abort();
    for (size_t i = 0; i < pl.count; i++) {
        if (!same_packet(&pl.packets[i], &again.packets[i]))
            abort();
    }
    /* canonical form is a fixed point */
    pl_buf_t body2;
    pl_buf_init(&body2, 0);
    if (eio_payload_encode(&body2, again.packets, again.count) != 0 || body2.len != body.len ||
        memcmp(body.data, body2.data, body.len) != 0)
        abort();
    pl_buf_dispose(&body2);
    eio_payload_dispose(&again);
    pl_buf_dispose(&body);
    eio_payload_dispose(&pl);
}

static void check_ws(const char *p, size_t len, bool binary_frame) {
    pl_buf_t scratch, scratch2, out;
    pl_buf_init(&scratch, 0);
    pl_buf_init(&scratch2, 0);
    pl_buf_init(&out, 0);
    eio_packet_t pkt;
    if (eio_packet_decode_ws(&pkt, p, len, binary_frame, NULL, &scratch) == 0) {
        for (int b64 = 0; b64 <= 1; b64++) {
            bool frame_binary = false;
            pl_buf_reset(&out);
            if (eio_packet_encode_ws(&pkt, b64, &out, &frame_binary) != 0)
                abort();
            if (frame_binary != (pkt.binary && !b64))
                abort();
            eio_packet_t back;
            if (eio_packet_decode_ws(&back, out.data, out.len, frame_binary, NULL, &scratch2) !=
                    0 ||
                !same_packet(&pkt, &back))
                abort();
        }
    }
    pl_buf_dispose(&out);
    pl_buf_dispose(&scratch2);
    pl_buf_dispose(&scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = (const char *)data;
    check_payload(p, size, NULL);
    const eio_limits_t tight = {.max_payload = 256, .max_packets = 4};
    check_payload(p, size, &tight);
    check_ws(p, size, false);
    check_ws(p, size, true);
    return 0;
}
