/* WebSocket frame reader and header writer (RFC 6455 sections 5.2-5.6 and 7.4): see frame.h.
 * wslay_frame_recv parses the header, checks the length encoding and the control-frame rules and
 * unmasks; this file checks the rest of what a server must, joins fragments, validates text and
 * close frames, and keeps wslay's 4 KiB context only while a frame is partly received. */
#include "ws/frame.h"

#include "core/json.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#define DEFAULT_MAX_MESSAGE (1024u * 1024u)

/* A frame being received, and the wslay context that parses it. Allocated when bytes arrive at
 * a frame boundary, freed when all bytes given to wslay belong to completed frames. */
struct ws_rx {
    wslay_frame_context_ptr ctx; /* owned */
    const char *in;              /* bytes of the current ws_reader_feed call not yet given */
    size_t in_len;
    uint64_t fed;       /* bytes handed to wslay since this context was created */
    uint64_t consumed;  /* bytes of the frames it completed (headers and payloads) */
    uint64_t frame_len; /* payload length of the frame in progress */
    uint64_t frame_got; /* payload bytes of it seen so far */
    bool in_frame;      /* a frame's first chunk was seen and its last not yet */
    bool direct;        /* the frame is a whole message delivered without copying */
    uint8_t frame_op;
    bool frame_fin;
    uint8_t ctrl_len;          /* bytes in ctrl */
    char ctrl[WS_MAX_CONTROL]; /* payload of a control frame in progress */
};

/* wslay pulls input through this: hands over as much of the current feed as fits. */
static ssize_t rx_recv_cb(uint8_t *buf, size_t len, int flags, void *user_data) {
    (void)flags;
    struct ws_rx *rx = user_data;
    if (rx->in_len == 0)
        return WSLAY_ERR_WOULDBLOCK;
    size_t n = len < rx->in_len ? len : rx->in_len;
    memcpy(buf, rx->in, n);
    rx->in += n;
    rx->in_len -= n;
    rx->fed += n;
    return (ssize_t)n;
}

/* The reader never sends through wslay (ws.c writes headers itself). */
static ssize_t rx_send_cb(const uint8_t *data, size_t len, int flags, void *user_data) {
    (void)data, (void)len, (void)flags, (void)user_data;
    return WSLAY_ERR_WOULDBLOCK;
}

static int rx_genmask_cb(uint8_t *buf, size_t len, void *user_data) {
    (void)user_data;
    memset(buf, 0, len);
    return 0;
}

static const struct wslay_frame_callbacks g_wslay_cbs = {rx_send_cb, rx_recv_cb, rx_genmask_cb};

/* A few contexts left at a frame boundary with nothing buffered are kept for reuse by any
 * connection of this thread: creating one zeroes ~4 KiB, which was a fifth of the instructions
 * of a small echo. A kept context is in wslay's initial state (no partial frame, no bytes in its
 * buffer), and its recv callback's user data is the ws_rx that holds it, so it moves with it. */
#define RX_CACHE 8
static _Thread_local struct ws_rx *g_rx_cache[RX_CACHE];
static _Thread_local unsigned g_rx_cached;

static struct ws_rx *rx_new(void) {
    if (g_rx_cached > 0) {
        struct ws_rx *rx = g_rx_cache[--g_rx_cached];
        wslay_frame_context_ptr ctx = rx->ctx;
        memset(rx, 0, sizeof *rx);
        rx->ctx = ctx;
        return rx;
    }
    struct ws_rx *rx = calloc(1, sizeof *rx);
    if (!rx)
        return NULL;
    if (wslay_frame_context_init(&rx->ctx, &g_wslay_cbs, rx) != 0) {
        free(rx);
        return NULL;
    }
    return rx;
}

/* clean: the context is at a frame boundary with nothing buffered (reusable). */
static void rx_free(struct ws_rx *rx, bool clean) {
    if (!rx)
        return;
    if (clean && g_rx_cached < RX_CACHE) {
        g_rx_cache[g_rx_cached++] = rx;
        return;
    }
    wslay_frame_context_free(rx->ctx);
    free(rx);
}

void ws_reader_init(ws_reader_t *r, uint32_t max_message, const ws_reader_cbs_t *cbs, void *ud) {
    memset(r, 0, sizeof *r);
    r->cbs = cbs;
    r->ud = ud;
    r->max_message = max_message ? max_message : DEFAULT_MAX_MESSAGE;
    pl_buf_init(&r->msg, r->max_message);
}

void ws_reader_dispose(ws_reader_t *r) {
    rx_free(r->rx, false);
    r->rx = NULL;
    pl_buf_dispose(&r->msg);
    pl_buf_init(&r->msg, r->max_message);
    r->msg_opcode = 0;
}

bool ws_reader_idle(const ws_reader_t *r) {
    return r->rx == NULL && r->msg_opcode == 0;
}

static int fail(ws_reader_t *r, uint16_t code, const char *reason) {
    r->done = true;
    r->error_code = code;
    r->error_reason = reason;
    return WS_READ_FAILED;
}

/* Bytes of a masked client frame header carrying len payload bytes (wslay refuses non-minimal
 * length encodings, so the length decides the form). */
static uint64_t client_header_len(uint64_t len) {
    return 2 + 4 + (len >= 65536 ? 8 : len >= 126 ? 2 : 0);
}

static bool is_data_op(uint8_t op) {
    return op == WS_OP_CONT || op == WS_OP_TEXT || op == WS_OP_BINARY;
}

/* Checks the header of a new frame (its first chunk). */
static int frame_begin(ws_reader_t *r, struct ws_rx *rx, const struct wslay_frame_iocb *io) {
    if (io->rsv)
        return fail(r, WS_CLOSE_PROTOCOL, "RSV bits set without a negotiated extension");
    if (!io->mask)
        return fail(r, WS_CLOSE_PROTOCOL, "unmasked client frame");
    switch (io->opcode) {
    case WS_OP_CONT:
        if (!r->msg_opcode)
            return fail(r, WS_CLOSE_PROTOCOL, "continuation frame without a message");
        break;
    case WS_OP_TEXT:
    case WS_OP_BINARY:
        if (r->msg_opcode)
            return fail(r, WS_CLOSE_PROTOCOL, "new message inside a fragmented one");
        break;
    case WS_OP_CLOSE:
    case WS_OP_PING:
    case WS_OP_PONG:
        if (io->payload_length > WS_MAX_CONTROL || !io->fin)
            return fail(r, WS_CLOSE_PROTOCOL, "bad control frame");
        break;
    default:
        return fail(r, WS_CLOSE_PROTOCOL, "reserved opcode");
    }
    rx->in_frame = true;
    rx->frame_op = io->opcode;
    rx->frame_fin = io->fin;
    rx->frame_len = io->payload_length;
    rx->frame_got = 0;
    rx->ctrl_len = 0;
    rx->direct = false;
    if (!is_data_op(io->opcode))
        return 0;
    /* The size limit is checked on the header, before any byte of the payload is stored. */
    if (io->payload_length > r->max_message || r->msg.len + io->payload_length > r->max_message)
        return fail(r, WS_CLOSE_TOO_BIG, "message too big");
    if (io->opcode != WS_OP_CONT && io->fin && io->data_length == io->payload_length) {
        rx->direct = true; /* the whole message is in wslay's buffer: no copy */
        return 0;
    }
    if (pl_buf_reserve(&r->msg, (size_t)io->payload_length) != 0)
        return fail(r, WS_CLOSE_INTERNAL, "out of memory");
    return 0;
}

static int message_done(ws_reader_t *r, uint8_t op, const char *data, size_t len) {
    bool binary = op == WS_OP_BINARY;
    if (!binary && !pl_utf8_valid(data, len))
        return fail(r, WS_CLOSE_INVALID_DATA, "text message is not valid UTF-8");
    return r->cbs->on_message(r->ud, binary, data, len);
}

static int close_frame(ws_reader_t *r, const char *p, size_t n) {
    if (n == 1)
        return fail(r, WS_CLOSE_PROTOCOL, "close frame with a 1-byte payload");
    unsigned code = WS_CLOSE_NO_STATUS;
    if (n >= 2) {
        code = (unsigned)(uint8_t)p[0] << 8 | (uint8_t)p[1];
        if (!ws_close_code_valid(code))
            return fail(r, WS_CLOSE_PROTOCOL, "invalid close code");
        if (!pl_utf8_valid(p + 2, n - 2))
            return fail(r, WS_CLOSE_INVALID_DATA, "close reason is not valid UTF-8");
    }
    r->done = true;
    return r->cbs->on_close(r->ud, code, n >= 2 ? p + 2 : "", n >= 2 ? n - 2 : 0);
}

/* Handles one chunk returned by wslay_frame_recv. */
static int on_chunk(ws_reader_t *r, struct ws_rx *rx, const struct wslay_frame_iocb *io) {
    if (!rx->in_frame) {
        int rc = frame_begin(r, rx, io);
        if (rc)
            return rc;
    }
    const char *data = (const char *)io->data;
    size_t n = io->data_length;
    if (n > rx->frame_len - rx->frame_got)
        return fail(r, WS_CLOSE_INTERNAL, "frame parser out of step");
    if (is_data_op(rx->frame_op)) {
        if (!rx->direct && n && pl_buf_append(&r->msg, data, n) != 0)
            return fail(r, WS_CLOSE_TOO_BIG, "message too big");
    } else if (n) {
        memcpy(rx->ctrl + rx->ctrl_len, data, n); /* frame_len <= 125 was checked */
        rx->ctrl_len = (uint8_t)(rx->ctrl_len + n);
    }
    rx->frame_got += n;
    if (rx->frame_got < rx->frame_len)
        return 0;

    /* The frame is complete. */
    rx->in_frame = false;
    rx->consumed += client_header_len(rx->frame_len) + rx->frame_len;
    switch (rx->frame_op) {
    case WS_OP_PING:
        return r->cbs->on_ping(r->ud, rx->ctrl, rx->ctrl_len);
    case WS_OP_PONG:
        return r->cbs->on_pong ? r->cbs->on_pong(r->ud, rx->ctrl, rx->ctrl_len) : 0;
    case WS_OP_CLOSE:
        return close_frame(r, rx->ctrl, rx->ctrl_len);
    default:
        break;
    }
    if (rx->direct)
        return message_done(r, rx->frame_op, data, n);
    if (!rx->frame_fin) {
        if (rx->frame_op != WS_OP_CONT)
            r->msg_opcode = rx->frame_op;
        return 0;
    }
    uint8_t op = rx->frame_op == WS_OP_CONT ? r->msg_opcode : rx->frame_op;
    r->msg_opcode = 0;
    int rc = message_done(r, op, r->msg.data ? r->msg.data : "", r->msg.len);
    /* Large reassembly buffers are not kept for an idle connection. */
    pl_buf_dispose(&r->msg);
    pl_buf_init(&r->msg, r->max_message);
    return rc;
}

int ws_reader_feed(ws_reader_t *r, const char *data, size_t len) {
    if (r->done || len == 0)
        return 0;
    if (!r->rx) {
        r->rx = rx_new();
        if (!r->rx)
            return fail(r, WS_CLOSE_INTERNAL, "out of memory");
    }
    struct ws_rx *rx = r->rx;
    rx->in = data;
    rx->in_len = len;
    int rc = 0;
    while (!r->done) {
        struct wslay_frame_iocb io;
        memset(&io, 0, sizeof io);
        uint64_t fed_before = rx->fed;
        ssize_t n = wslay_frame_recv(rx->ctx, &io);
        if (n == WSLAY_ERR_WANT_READ) {
            if (rx->in_len == 0)
                break;
            if (rx->fed == fed_before) {
                rc = fail(r, WS_CLOSE_INTERNAL, "frame parser stalled");
                break;
            }
            continue;
        }
        if (n < 0) {
            rc = fail(r, WS_CLOSE_PROTOCOL, "malformed frame header");
            break;
        }
        rc = on_chunk(r, rx, &io);
        if (rc)
            break;
    }
    if (r->rx) {
        r->rx->in = NULL;
        r->rx->in_len = 0;
        /* At a frame boundary with wslay's buffer empty (or finished): drop the context. */
        if (r->done || (!r->rx->in_frame && r->rx->fed == r->rx->consumed)) {
            rx_free(r->rx, !r->done && !r->rx->in_frame && r->rx->fed == r->rx->consumed);
            r->rx = NULL;
        }
    }
    return rc;
}

/* ---- writing ---------------------------------------------------------------------------- */

size_t ws_frame_header(uint8_t out[WS_MAX_HEADER], unsigned opcode, uint64_t len) {
    out[0] = (uint8_t)(0x80u | (opcode & 0x0Fu));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len < 65536) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

size_t ws_close_payload(uint8_t out[WS_MAX_CONTROL], unsigned code, const char *reason) {
    if (code == 0 || code == WS_CLOSE_NO_STATUS)
        return 0;
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    size_t n = reason ? strlen(reason) : 0;
    if (n > WS_MAX_CONTROL - 2) {
        n = WS_MAX_CONTROL - 2;
        /* Do not cut a UTF-8 sequence: back up over continuation bytes to its lead byte. */
        while (n > 0 && ((uint8_t)reason[n] & 0xC0u) == 0x80u)
            n--;
    }
    if (n)
        memcpy(out + 2, reason, n);
    return 2 + n;
}

bool ws_close_code_valid(unsigned code) {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
           (code >= 3000 && code <= 4999);
}

void ws_accept_key(const char *key, size_t len, char out[29]) {
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    out[0] = '\0';
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return;
    if (EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 && EVP_DigestUpdate(ctx, key, len) == 1 &&
        EVP_DigestUpdate(ctx, guid, sizeof guid - 1) == 1 &&
        EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 20)
        EVP_EncodeBlock((unsigned char *)out, md, 20);
    EVP_MD_CTX_free(ctx);
}

/* ---- header values ------------------------------------------------------------------------ */

static bool is_ows(char c) {
    return c == ' ' || c == '\t';
}

bool ws_header_has_token(pl_slice_t value, const char *token) {
    size_t i = 0;
    while (i < value.len) {
        size_t start = i;
        while (i < value.len && value.ptr[i] != ',')
            i++;
        size_t end = i;
        while (start < end && is_ows(value.ptr[start]))
            start++;
        while (end > start && is_ows(value.ptr[end - 1]))
            end--;
        if (pl_slice_case_eq_cstr(pl_slice(value.ptr + start, end - start), token))
            return true;
        i++; /* past the comma */
    }
    return false;
}

/* RFC 7230 tchar. */
static bool is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

bool ws_protocol_list_valid(pl_slice_t value) {
    size_t i = 0;
    for (;;) {
        while (i < value.len && is_ows(value.ptr[i]))
            i++;
        size_t start = i;
        while (i < value.len && is_tchar((unsigned char)value.ptr[i]))
            i++;
        if (i == start)
            return false; /* empty element or a character that is not a token character */
        while (i < value.len && is_ows(value.ptr[i]))
            i++;
        if (i == value.len)
            return true;
        if (value.ptr[i] != ',')
            return false;
        i++;
    }
}
