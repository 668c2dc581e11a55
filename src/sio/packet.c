/* Socket.IO v5 packet codec with binary attachments: see packet.h. Follows socket.io-parser
 * 4.2's Decoder.decodeString / isPayloadValid / reconstructPacket and Encoder.encodeAsString /
 * deconstructPacket, with the stricter rules listed in packet.h. */
#include "sio/packet.h"

#include <stdlib.h>
#include <string.h>

#include "eio/packet.h"

/* Nesting the encoder follows in a tree the caller built (guards against cycles); decoded
 * trees are bounded by the JSON depth limit. */
#define WALK_MAX_DEPTH 256

static const char main_nsp[] = "/";

static const char *const reserved_events[] = {
    "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
};

const char *sio_type_name(sio_type_t type) {
    static const char *const names[] = {"CONNECT",       "DISCONNECT",   "EVENT",     "ACK",
                                        "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK"};
    return (unsigned)type <= SIO_BINARY_ACK ? names[type] : "UNKNOWN";
}

bool sio_event_reserved(const char *name, size_t len) {
    for (size_t i = 0; i < sizeof reserved_events / sizeof reserved_events[0]; i++) {
        if (strlen(reserved_events[i]) == len && memcmp(reserved_events[i], name, len) == 0)
            return true;
    }
    return false;
}

void sio_packet_init(sio_packet_t *p) {
    *p = (sio_packet_t){.type = SIO_CONNECT, .nsp = pl_slice(main_nsp, 1)};
}

void sio_packet_dispose(sio_packet_t *p) {
    if (p->data)
        json_decref(p->data);
    for (size_t i = 0; i < p->nbufs; i++)
        pl_rcbuf_unref(p->bufs[i]);
    free(p->bufs);
    free(p->nsp_owned);
    const char *error = p->error;
    sio_packet_init(p);
    p->error = error;
}

static size_t limit_or(size_t v, size_t dflt) {
    return v ? v : dflt;
}

/* ---- placeholders ---- */

/* An object whose "_placeholder" member is JSON true, as socket.io-parser tests it. */
static bool is_placeholder(const json_t *node) {
    return json_is_object(node) && json_is_true(json_object_get(node, "_placeholder"));
}

bool sio_placeholder_num(const json_t *node, size_t *num) {
    if (!is_placeholder(node))
        return false;
    const json_t *n = json_object_get(node, "num");
    if (!json_is_integer(n) || json_integer_value(n) < 0)
        return false;
    *num = (size_t)json_integer_value(n);
    return true;
}

pl_rcbuf_t *sio_packet_binary(const sio_packet_t *p, const json_t *node) {
    size_t num;
    if (!sio_type_is_binary(p->type) || !sio_placeholder_num(node, &num) || num >= p->nbufs)
        return NULL;
    return p->bufs[num];
}

json_t *sio_placeholder_new(size_t num) {
    if (num > (size_t)SIO_MAX_ID)
        return NULL;
    return json_pack("{sbsI}", "_placeholder", 1, "num", (json_int_t)num);
}

/* Visits the placeholders of a tree in the order socket.io-parser (and our dumper) meets them,
 * checking each num < nbufs and counting them in *count. Does not descend into a placeholder.
 * Returns 0 or PL_EINVAL. */
static int count_placeholders(const json_t *node, size_t nbufs, size_t *count, int depth) {
    if (depth > WALK_MAX_DEPTH)
        return PL_EINVAL;
    if (json_is_object(node)) {
        if (is_placeholder(node)) {
            size_t num;
            if (!sio_placeholder_num(node, &num) || num >= nbufs)
                return PL_EINVAL;
            (*count)++;
            return 0;
        }
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)node, key, v) {
            int rc = count_placeholders(v, nbufs, count, depth + 1);
            if (rc)
                return rc;
        }
    } else if (json_is_array(node)) {
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v) {
            int rc = count_placeholders(v, nbufs, count, depth + 1);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* ---- validation shared by the decoder and the encoder ---- */

/* Checks data against the packet type (see packet.h); NULL or a reason. */
static const char *check_payload(sio_type_t type, const json_t *data, bool has_id) {
    switch (type) {
    case SIO_CONNECT:
        return !data || json_is_object(data) ? NULL : "CONNECT data must be an object";
    case SIO_DISCONNECT:
        return data ? "DISCONNECT takes no data" : NULL;
    case SIO_EVENT:
    case SIO_BINARY_EVENT: {
        if (!json_is_array(data) || json_array_size(data) == 0)
            return "EVENT data must be a non-empty array";
        const json_t *name = json_array_get(data, 0);
        if (!json_is_string(name))
            return "event name must be a string";
        if (sio_event_reserved(json_string_value(name), json_string_length(name)))
            return "reserved event name";
        return NULL;
    }
    case SIO_ACK:
    case SIO_BINARY_ACK:
        if (!has_id)
            return "ACK without an id";
        return json_is_array(data) ? NULL : "ACK data must be an array";
    case SIO_CONNECT_ERROR:
        return json_is_object(data) || json_is_string(data)
                   ? NULL
                   : "CONNECT_ERROR data must be an object or a string";
    default:
        return "unknown packet type";
    }
}

/* A namespace as we accept it: "/" then bytes up to max_nsp in all, valid UTF-8, no control
 * characters and no ',' (which ends the namespace on the wire). */
static bool nsp_valid(const char *s, size_t n, size_t max_nsp) {
    if (n == 0 || n > max_nsp || s[0] != '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == ',')
            return false;
    }
    return pl_utf8_valid(s, n);
}

/* ---- decoding ---- */

static bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* Fails a decode: releases what out holds and records why. */
static int fail(sio_packet_t *out, int rc, const char *why) {
    sio_packet_dispose(out);
    out->error = why;
    return rc;
}

/* The event name of an EVENT payload whose JSON did not pass: `[` then a plain JSON string
 * (valid on its own, not reserved) then `,` or `]`. A new JSON string, or NULL. O(name). */
static json_t *event_name_of(const char *p, size_t len, const pl_json_limits_t *lim) {
    size_t i = 0;
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    if (i >= len || p[i] != '[')
        return NULL;
    i++;
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    if (i >= len || p[i] != '"')
        return NULL;
    size_t start = i++;
    while (i < len && p[i] != '"') {
        if (p[i] == '\\')
            i++;
        i++;
    }
    if (i >= len || i - start > 1024)
        return NULL;
    size_t after = i + 1;
    while (after < len && (p[after] == ' ' || p[after] == '\t' || p[after] == '\n' ||
                           p[after] == '\r'))
        after++;
    if (after >= len || (p[after] != ',' && p[after] != ']'))
        return NULL;
    json_t *name = pl_json_parse(p + start, i + 1 - start, lim, NULL, 0);
    if (!json_is_string(name) || json_string_length(name) == 0 ||
        sio_event_reserved(json_string_value(name), json_string_length(name))) {
        json_decref(name);
        return NULL;
    }
    return name;
}

int sio_packet_decode(sio_packet_t *out, const char *p, size_t len, const sio_limits_t *lim) {
    size_t max_packet = limit_or(lim ? lim->max_packet : 0, SIO_DEFAULT_MAX_PACKET);
    size_t max_att = limit_or(lim ? lim->max_attachments : 0, SIO_DEFAULT_MAX_ATTACHMENTS);
    size_t max_nsp = limit_or(lim ? lim->max_nsp : 0, SIO_DEFAULT_MAX_NSP);
    sio_packet_init(out);

    if (len > max_packet)
        return fail(out, PL_ETOOBIG, "packet too large");
    if (len == 0 || !p)
        return fail(out, PL_EINVAL, "empty packet");
    size_t i = 0;
    if (p[0] < '0' || p[0] > '6')
        return fail(out, PL_EINVAL, "unknown packet type");
    out->type = (sio_type_t)(p[i++] - '0');

    /* <attachments>- for binary packets */
    if (sio_type_is_binary(out->type)) {
        size_t start = i;
        while (i < len && is_digit(p[i]))
            i++;
        uint64_t n = 0;
        if (i == start || i >= len || p[i] != '-' ||
            !pl_slice_to_u64(pl_slice(p + start, i - start), max_att, &n) || n < 1)
            return fail(out, PL_EINVAL, "illegal attachments");
        out->attachments = (size_t)n;
        i++;
    }

    /* <nsp>, : from '/' up to the first ',' (or the end) */
    if (i < len && p[i] == '/') {
        size_t start = i;
        const char *comma = memchr(p + i, ',', len - i);
        size_t end = comma ? (size_t)(comma - p) : len;
        if (!nsp_valid(p + start, end - start, max_nsp))
            return fail(out, PL_EINVAL, "invalid namespace");
        if (end - start != 1 || p[start] != '/') {
            out->nsp_owned = pl_slice_dup(pl_slice(p + start, end - start));
            if (!out->nsp_owned)
                return fail(out, PL_ENOMEM, "out of memory");
            out->nsp = pl_slice(out->nsp_owned, end - start);
        }
        i = comma ? end + 1 : len;
    }

    /* <ack id> */
    if (i < len && is_digit(p[i])) {
        size_t start = i;
        while (i < len && is_digit(p[i]))
            i++;
        if (!pl_slice_to_u64(pl_slice(p + start, i - start), (uint64_t)SIO_MAX_ID, &out->id))
            return fail(out, PL_EINVAL, "ack id out of range");
        out->has_id = true;
    }

    /* <JSON> */
    if (i < len) {
        out->data = pl_json_parse(p + i, len - i, lim ? &lim->json : NULL, NULL, 0);
        if (!out->data) {
            /* A well-framed EVENT whose arguments break a JSON rule (a lone surrogate, a NUL,
             * a duplicate key, too deep, a number past 2^53): hand back the event name so the
             * server can refuse that one event instead of dropping the connection. */
            json_t *name = out->type == SIO_EVENT ? event_name_of(p + i, len - i, lim ? &lim->json : NULL) : NULL;
            if (name) {
                out->data = name;
                out->error = "invalid JSON payload";
                return SIO_EPAYLOAD;
            }
            return fail(out, PL_EINVAL, "invalid JSON payload");
        }
    }
    const char *why = check_payload(out->type, out->data, out->has_id);
    if (why)
        return fail(out, PL_EINVAL, why);

    if (out->attachments > 0) {
        size_t count = 0;
        if (count_placeholders(out->data, out->attachments, &count, 0))
            return fail(out, PL_EINVAL, "invalid placeholder");
        out->bufs = calloc(out->attachments, sizeof(pl_rcbuf_t *));
        if (!out->bufs)
            return fail(out, PL_ENOMEM, "out of memory");
    }
    return 0;
}

int sio_packet_add_attachment(sio_packet_t *p, const void *data, size_t len,
                              const sio_limits_t *lim) {
    size_t max_binary = limit_or(lim ? lim->max_binary : 0, SIO_DEFAULT_MAX_BINARY);
    if (p->nbufs >= p->attachments || !p->bufs)
        return PL_EINVAL;
    if (len > max_binary || p->bin_bytes > max_binary - len)
        return PL_ETOOBIG;
    pl_rcbuf_t *b = pl_rcbuf_from(data, len);
    if (!b)
        return PL_ENOMEM;
    p->bufs[p->nbufs++] = b;
    p->bin_bytes += len;
    return 0;
}

/* ---- encoding ---- */

typedef struct {
    const sio_packet_t *p;  /* packet being encoded: its bufs are the sources */
    sio_attachments_t *att; /* receives a reference per placeholder, in order */
    size_t cap;             /* entries allocated in att->bufs */
} encoder_t;

/* pl_json_dump_ex hook: writes each placeholder with its attachment number in output order. */
static int placeholder_hook(void *ctx, const json_t *obj, pl_buf_t *out) {
    encoder_t *e = ctx;
    size_t num;
    if (!is_placeholder(obj))
        return 0;
    if (!sio_placeholder_num(obj, &num) || num >= e->p->nbufs || e->att->count >= e->cap)
        return PL_EINVAL;
    int rc = pl_buf_printf(out, "{\"_placeholder\":true,\"num\":%zu}", e->att->count);
    if (rc)
        return rc;
    e->att->bufs[e->att->count++] = pl_rcbuf_ref(e->p->bufs[num]);
    return 1;
}

void sio_attachments_dispose(sio_attachments_t *a) {
    for (size_t i = 0; i < a->count; i++)
        pl_rcbuf_unref(a->bufs[i]);
    free(a->bufs);
    sio_attachments_init(a);
}

int sio_packet_encode(const sio_packet_t *p, pl_buf_t *out, sio_attachments_t *att) {
    size_t start_len = out->len;
    sio_type_t type = p->type;
    pl_slice_t nsp = p->nsp.len ? p->nsp : pl_slice(main_nsp, 1);
    if (att)
        sio_attachments_init(att);
    if ((unsigned)type > SIO_BINARY_ACK || (p->has_id && p->id > (uint64_t)SIO_MAX_ID) ||
        !nsp.ptr || !nsp_valid(nsp.ptr, nsp.len, SIZE_MAX) ||
        check_payload(type, p->data, p->has_id))
        return PL_EINVAL;
    if (p->nbufs > 0 && (!p->bufs || !att))
        return PL_EINVAL;

    /* Binary or not is decided by the data, as socket.io-parser's hasBinary does. */
    size_t count = 0;
    bool binary_capable = type == SIO_EVENT || type == SIO_ACK || sio_type_is_binary(type);
    if (p->nbufs > 0 && binary_capable && p->data) {
        if (count_placeholders(p->data, p->nbufs, &count, 0))
            return PL_EINVAL;
        /* socket.io-client's decoder refuses more (maxAttachments 10): do not send it. */
        if (count > SIO_DEFAULT_MAX_ATTACHMENTS)
            return PL_ETOOBIG;
    }
    if (type == SIO_BINARY_EVENT && count == 0)
        type = SIO_EVENT;
    else if (type == SIO_BINARY_ACK && count == 0)
        type = SIO_ACK;
    else if (type == SIO_EVENT && count > 0)
        type = SIO_BINARY_EVENT;
    else if (type == SIO_ACK && count > 0)
        type = SIO_BINARY_ACK;

    int rc = 0;
    if (count > 0) {
        att->bufs = calloc(count, sizeof(pl_rcbuf_t *));
        if (!att->bufs)
            return PL_ENOMEM;
        rc = pl_buf_printf(out, "%d%zu-", (int)type, count);
    } else {
        char t = (char)('0' + type);
        rc = pl_buf_append(out, &t, 1);
    }
    if (rc == 0 && !(nsp.len == 1 && nsp.ptr[0] == '/')) {
        rc = pl_buf_append(out, nsp.ptr, nsp.len);
        if (rc == 0)
            rc = pl_buf_append(out, ",", 1);
    }
    if (rc == 0 && p->has_id)
        rc = pl_buf_printf(out, "%llu", (unsigned long long)p->id);
    if (rc == 0 && p->data) {
        encoder_t e = {.p = p, .att = att, .cap = count};
        rc = count > 0 ? pl_json_dump_ex(p->data, out, placeholder_hook, &e)
                       : pl_json_dump(p->data, out);
    }
    if (rc) {
        out->len = start_len;
        if (att)
            sio_attachments_dispose(att);
    }
    return rc;
}

int sio_packet_encode_shared(const sio_packet_t *p, pl_rcbuf_t **text, sio_attachments_t *att) {
    pl_buf_t b;
    pl_buf_init(&b, 0);
    char m = (char)('0' + EIO_MESSAGE);
    int rc = pl_buf_append(&b, &m, 1);
    if (rc == 0)
        rc = sio_packet_encode(p, &b, att);
    if (rc)
        goto out_dispose_buf;
    *text = pl_rcbuf_from(b.data, b.len);
    if (!*text) {
        rc = PL_ENOMEM;
        if (att)
            sio_attachments_dispose(att);
    }
out_dispose_buf:
    pl_buf_dispose(&b);
    return rc;
}
