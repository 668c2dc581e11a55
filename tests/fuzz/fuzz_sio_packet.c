/* libFuzzer driver for src/sio/packet.c. The input is split on 0xFF bytes (never part of UTF-8
 * text): the first piece is a Socket.IO packet's text, each further piece a binary attachment,
 * fed as socket.io's reconstructor would get them. Properties checked on every input: a refused
 * packet holds nothing; a complete packet re-encodes, the encoding decodes again, and the two
 * packets mean the same (placeholders compared through the bytes they stand for, numbers by
 * value, BINARY_* without attachments compared as plain); the encoding is a fixed point. Any
 * disagreement aborts. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sio/packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEP 0xFF

static bool same_tree(const json_t *a, const sio_packet_t *pa, const json_t *b,
                      const sio_packet_t *pb) {
    pl_rcbuf_t *ba = sio_packet_binary(pa, a);
    pl_rcbuf_t *bb = sio_packet_binary(pb, b);
    if (ba || bb)
        return ba && bb && ba->len == bb->len && memcmp(ba->data, bb->data, ba->len) == 0;
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++) {
            if (!same_tree(json_array_get(a, i), pa, json_array_get(b, i), pb))
                return false;
        }
        return true;
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)a, key, v) {
            json_t *w = json_object_get(b, key);
            if (!w || !same_tree(v, pa, w, pb))
                return false;
        }
        return true;
    }
    default:
        return true;
    }
}

static sio_type_t plain(sio_type_t t) {
    return t == SIO_BINARY_EVENT ? SIO_EVENT : t == SIO_BINARY_ACK ? SIO_ACK : t;
}

/* Every placeholder of a complete binary packet resolves to a buffer. */
static void check_placeholders(const json_t *j, const sio_packet_t *p) {
    size_t num;
    if (sio_type_is_binary(p->type) && sio_placeholder_num(j, &num)) {
        if (!sio_packet_binary(p, j))
            abort();
        return;
    }
    size_t i;
    const char *key;
    json_t *v;
    if (json_is_array(j)) {
        json_array_foreach(j, i, v) check_placeholders(v, p);
    } else if (json_is_object(j)) {
        json_object_foreach((json_t *)j, key, v) check_placeholders(v, p);
    }
}

static void check_complete(const sio_packet_t *p) {
    if (p->data)
        check_placeholders(p->data, p);
    pl_buf_t text;
    pl_buf_init(&text, 0);
    sio_attachments_t att;
    sio_attachments_init(&att);
    int rc = sio_packet_encode(p, &text, &att);
    if (rc == PL_ETOOBIG) {
        /* more than 10 placeholders (a buffer referenced repeatedly): refused on purpose */
        if (text.len != 0 || att.count != 0)
            abort();
        pl_buf_dispose(&text);
        return;
    }
    if (rc != 0)
        abort();

    sio_packet_t q;
    if (sio_packet_decode(&q, text.data, text.len, NULL) != 0)
        abort();
    for (size_t i = 0; i < att.count; i++) {
        if (sio_packet_add_attachment(&q, att.bufs[i]->data, att.bufs[i]->len, NULL) != 0)
            abort();
    }
    if (!sio_packet_complete(&q))
        abort();
    if (plain(q.type) != plain(p->type) || !pl_slice_eq(q.nsp, p->nsp) || q.has_id != p->has_id ||
        q.id != p->id || (q.data == NULL) != (p->data == NULL))
        abort();
    if (p->data && !same_tree(p->data, p, q.data, &q))
        abort();

    /* encoding the re-decoded packet gives the same bytes */
    pl_buf_t text2;
    pl_buf_init(&text2, 0);
    sio_attachments_t att2;
    sio_attachments_init(&att2);
    if (sio_packet_encode(&q, &text2, &att2) != 0 || text2.len != text.len ||
        memcmp(text.data, text2.data, text.len) != 0 || att2.count != att.count)
        abort();
    sio_attachments_dispose(&att2);
    pl_buf_dispose(&text2);
    sio_packet_dispose(&q);
    sio_attachments_dispose(&att);
    pl_buf_dispose(&text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *end = data + size;
    const uint8_t *sep = memchr(data, SEP, size);
    size_t first = sep ? (size_t)(sep - data) : size;

    sio_packet_t p;
    int rc = sio_packet_decode(&p, (const char *)data, first, NULL);
    if (rc == SIO_EPAYLOAD) {
        /* A well-framed EVENT with bad JSON arguments: the event name comes back. */
        if (p.type != SIO_EVENT || !json_is_string(p.data) || p.bufs || !p.error ||
            sio_event_reserved(json_string_value(p.data), json_string_length(p.data)))
            abort();
        sio_packet_dispose(&p);
        return 0;
    }
    if (rc) {
        if (p.data || p.bufs || p.nsp_owned || !p.error)
            abort();
        return 0;
    }
    const uint8_t *s = sep ? sep + 1 : end;
    while (sep && !sio_packet_complete(&p)) {
        sep = memchr(s, SEP, (size_t)(end - s));
        const uint8_t *piece_end = sep ? sep : end;
        size_t before = p.nbufs;
        rc = sio_packet_add_attachment(&p, s, (size_t)(piece_end - s), NULL);
        if (rc != 0 || p.nbufs != before + 1)
            abort();
        s = sep ? sep + 1 : end;
    }
    if (sio_packet_complete(&p))
        check_complete(&p);
    sio_packet_dispose(&p); /* complete or not: nothing may leak */
    return 0;
}
