/* libFuzzer driver for the WebSocket frame reader (src/ws/frame.c): arbitrary bytes as the
 * post-upgrade stream from a client, fed in pieces whose sizes the input chooses, with a small
 * message limit so that 1009 paths are reached. Checks the reader's promises on every event:
 * text messages are valid UTF-8, no message exceeds the limit, control payloads are at most 125
 * bytes, a close code is valid, a failure carries a close code; and that nothing is left
 * allocated when the stream ends on a frame boundary. Also runs the header-value helpers on the
 * input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "ws/frame.h"

#define MAX_MESSAGE 4096

typedef struct {
    size_t messages;
} state_t;

static int on_message(void *ud, bool binary, const char *data, size_t len) {
    state_t *st = ud;
    if (len > MAX_MESSAGE || (!binary && !pl_utf8_valid(data, len)))
        abort();
    /* Touch every byte so ASan sees a read past the end, if any. */
    volatile unsigned char sum = 0;
    for (size_t i = 0; i < len; i++)
        sum += (unsigned char)data[i];
    (void)sum;
    st->messages++;
    return 0;
}

static int on_control(void *ud, const char *data, size_t len) {
    (void)ud;
    if (len > WS_MAX_CONTROL)
        abort();
    volatile unsigned char sum = 0;
    for (size_t i = 0; i < len; i++)
        sum += (unsigned char)data[i];
    (void)sum;
    return 0;
}

static int on_close(void *ud, unsigned code, const char *reason, size_t len) {
    (void)ud;
    if (code != WS_CLOSE_NO_STATUS && !ws_close_code_valid(code))
        abort();
    if (len > WS_MAX_CONTROL - 2 || !pl_utf8_valid(reason, len))
        abort();
    return 0;
}

static const ws_reader_cbs_t g_cbs = {on_message, on_control, on_control, on_close};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    /* The first byte picks the piece size (1..256) the stream is fed in. */
    size_t piece = (size_t)data[0] + 1;
    data++;
    size--;
    state_t st = {0};
    ws_reader_t r;
    ws_reader_init(&r, MAX_MESSAGE, &g_cbs, &st);
    size_t off = 0;
    while (off < size) {
        size_t n = size - off < piece ? size - off : piece;
        int rc = ws_reader_feed(&r, (const char *)data + off, n);
        if (rc == WS_READ_FAILED && (r.error_code < 1000 || !r.error_reason))
            abort();
        if (rc != 0 && rc != WS_READ_FAILED)
            abort();
        off += n;
    }
    if (!r.done && ws_reader_idle(&r) && (r.rx || r.msg.data))
        abort();
    ws_reader_dispose(&r);

    /* Header helpers on the same bytes. */
    pl_slice_t v = pl_slice((const char *)data, size);
    (void)ws_protocol_list_valid(v);
    (void)ws_header_has_token(v, "upgrade");
    uint8_t hdr[WS_MAX_HEADER];
    (void)ws_frame_header(hdr, WS_OP_BINARY, size);
    if (size > 0 && memchr(data, 0, size) == NULL) {
        char *reason = malloc(size + 1);
        if (reason) {
            memcpy(reason, data, size);
            reason[size] = '\0';
            uint8_t payload[WS_MAX_CONTROL];
            if (ws_close_payload(payload, 1000, reason) > WS_MAX_CONTROL)
                abort();
            free(reason);
        }
    }
    return 0;
}
