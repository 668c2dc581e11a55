/* The ingest path of visitor messages (the reference's BullMQ `live-chat-events-queue`, its
 * worker, and message delivery):
 *
 *   app__inbox_submit   sendMessage → one job on the queue; the sender's ack waits in `pending`
 *   inbox_worker        the queue's consumer: persists the job in one store transaction
 *                       (visitor, conversation, message, last-message fields, unread count;
 *                       idempotent on tempId)
 *   deliver             after the commit: `messageSent` {tempId, finalMessage} to every socket
 *                       of the visitor (room visitor:<project>:<uid>), the waiting acks, and
 *                       `newMessage` to the project room (not repeated for a duplicate)
 *
 * A job whose persistence fails is retried by the queue (and dead-lettered after its attempts);
 * its acks are answered `unavailable` when APP_ACK_TIMEOUT_MS passes, so memory never grows
 * without bound and the widget re-sends later with the same tempId. */
#include "app/gateway_internal.h"

#include "app/payload.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "<project>:<uid>:<tempId>" into out; the length, or -1 when it does not fit. */
static int pending_key(char *out, size_t n, int64_t project, const char *uid,
                       const char *temp_id) {
    size_t ul = strlen(uid), tl = strlen(temp_id);
    if (n < 21 + 1 + ul + 1 + tl + 1)
        return -1;
    size_t k = pl_fmt_i64(out, project);
    out[k++] = ':';
    memcpy(out + k, uid, ul);
    k += ul;
    out[k++] = ':';
    memcpy(out + k, temp_id, tl + 1);
    return (int)(k + tl);
}

static void pending_add(app_gateway_t *gw, const char *key, size_t keylen, sio_socket_t *s,
                        sio_ack_t *ack) {
    app_pending_t *p = pl_map_get(&gw->pending, key, keylen);
    if (!p) {
        p = calloc(1, sizeof *p);
        if (!p)
            goto fail;
        p->key = pl_xstrdup(key);
        p->keylen = keylen;
        if (pl_map_put(&gw->pending, p->key, p->keylen, p, NULL) != 0) {
            free(p->key);
            free(p);
            goto fail;
        }
    }
    app_pending_ack_t *a = malloc(sizeof *a);
    if (!a)
        goto fail;
    a->ack = ack;
    a->sock = sio_socket_ref(s);
    a->deadline = pl_mono_ms() + APP_ACK_TIMEOUT_MS;
    a->next = p->acks;
    p->acks = a;
    gw->npending++;
    return;
fail:
    app_refuse(s, ack, "sendMessage", APP_E_UNAVAILABLE, "Out of memory", NULL);
}

static bool pending_empty(void *value, void *ud) {
    (void)ud;
    return ((const app_pending_t *)value)->acks == NULL;
}

static void pending_release(void *value) {
    app_pending_t *p = value;
    free(p->key);
    free(p);
}

/* Answers (args != NULL: the JSON text of the ack's arguments) or refuses every ack waiting
 * under key, and forgets the key. */
static void pending_resolve(app_gateway_t *gw, const char *key, size_t keylen, const pl_buf_t *args,
                            const char *temp_id) {
    app_pending_t *p = pl_map_del(&gw->pending, key, keylen);
    if (!p)
        return;
    app_pending_ack_t *a = p->acks;
    while (a) {
        app_pending_ack_t *next = a->next;
        if (args)
            app_ack_raw(a->ack, args->data, args->len);
        else
            app_refuse(a->sock, a->ack, "sendMessage", APP_E_UNAVAILABLE,
                       "The message could not be stored yet: send it again", temp_id);
        sio_socket_unref(a->sock);
        free(a);
        gw->npending--;
        a = next;
    }
    pending_release(p);
}

/* "[payload]", the arguments of an event or ack with one argument, into out (initialised). */
static int one_arg_text(const json_t *payload, pl_buf_t *out) {
    int rc = pl_buf_append(out, "[", 1);
    if (rc == 0)
        rc = pl_json_dump(payload, out);
    if (rc == 0)
        rc = pl_buf_append(out, "]", 1);
    return rc;
}

/* ---- jobs ---------------------------------------------------------------------------------------
 *
 * Through Redis (bus set) a job is JSON text, readable by any node and kept as the outbox
 * payload: {"p": project, "u": uid, "c": content, "t": tempId, "m": sessionMetadata (optional),
 * "f": forever, "n": the node whose `pending` holds the ack}. In one process it never leaves
 * memory, so it is packed without JSON: JOB_MAGIC, the fixed header below, then uid, tempId,
 * content and the metadata's JSON text, each NUL-terminated. */

#define JOB_MAGIC 0x7f /* never the first byte of JSON text */

typedef struct {
    unsigned char magic;
    unsigned char forever;
    uint16_t uid_len, temp_len;
    uint32_t content_len, meta_len;
    int64_t project_id;
} job_head_t;

static char *job_binary(const app_sock_t *st, const char *content, const char *temp_id,
                        json_t *metadata, size_t *len) {
    char *meta = metadata ? json_dumps(metadata, JSON_COMPACT) : NULL;
    job_head_t h = {.magic = JOB_MAGIC,
                    .forever = st->forever,
                    .uid_len = (uint16_t)strlen(st->uid),
                    .temp_len = (uint16_t)strlen(temp_id),
                    .content_len = (uint32_t)strlen(content),
                    .meta_len = meta ? (uint32_t)strlen(meta) : 0,
                    .project_id = st->project_id};
    size_t n = sizeof h + h.uid_len + 1u + h.temp_len + 1u + h.content_len + 1u + h.meta_len + 1u;
    char *b = malloc(n);
    if (b) {
        char *p = b;
        memcpy(p, &h, sizeof h);
        p += sizeof h;
        memcpy(p, st->uid, h.uid_len + 1u);
        p += h.uid_len + 1u;
        memcpy(p, temp_id, h.temp_len + 1u);
        p += h.temp_len + 1u;
        memcpy(p, content, h.content_len + 1u);
        p += h.content_len + 1u;
        if (meta)
            memcpy(p, meta, h.meta_len);
        p[h.meta_len] = '\0';
        *len = n;
    }
    free(meta);
    return b;
}

static char *job_json(app_gateway_t *gw, const app_sock_t *st, const char *content,
                      const char *temp_id, json_t *metadata, size_t *len) {
    json_t *job = json_pack("{s:I, s:s, s:s, s:s, s:O?, s:b, s:s}", "p",
                            (json_int_t)st->project_id, "u", st->uid, "c", content, "t", temp_id,
                            "m", metadata, "f", st->forever, "n", bus_redis_node_id(gw->bus));
    char *text = job ? json_dumps(job, JSON_COMPACT) : NULL;
    json_decref(job);
    if (text)
        *len = strlen(text);
    return text;
}

void app__inbox_submit(app_gateway_t *gw, sio_socket_t *s, app_sock_t *st, const char *content,
                       const char *temp_id, json_t *metadata, sio_ack_t *ack) {
    char key[400];
    int kl = pending_key(key, sizeof key, st->project_id, st->uid, temp_id);
    if (kl < 0 || gw->npending >= gw->queue->opts.max_depth) {
        app_refuse(s, ack, "sendMessage", APP_E_UNAVAILABLE, "Too many messages in flight",
                   temp_id);
        return;
    }
    size_t text_len = 0;
    char *text = gw->bus ? job_json(gw, st, content, temp_id, metadata, &text_len)
                         : job_binary(st, content, temp_id, metadata, &text_len);
    if (!text) {
        app_refuse(s, ack, "sendMessage", APP_E_UNAVAILABLE, "Out of memory", temp_id);
        return;
    }
    int rc = queue_enqueue(gw->queue, text, text_len, NULL, NULL);
    free(text);
    if (rc != 0) {
        app_refuse(s, ack, "sendMessage", APP_E_UNAVAILABLE,
                   rc == PL_EUNAVAIL && gw->bus
                       ? "The message queue is unavailable: send it again later"
                       : "The message queue is full: send it again later",
                   temp_id);
        return;
    }
    if (ack) {
        sio_ack_t *owned = sio_ack_take(ack);
        if (owned)
            pending_add(gw, key, (size_t)kl, s, owned);
    }
}

/* ---- the worker ---------------------------------------------------------------------------------- */

/* Outbox topic of a message's delivery; the payload is the job itself. */
#define OUTBOX_TOPIC "deliver"
/* An outbox event older than this was left behind by a worker that died between its commit and
 * its publish (a live worker deletes its events within a sweep tick). */
#define OUTBOX_ORPHAN_MS 10000
#define OUTBOX_SCAN 500     /* events looked at per scan */
#define OUTBOX_DELETE 1000  /* published ids deleted per store call */

typedef struct {
    app_gateway_t *gw;
    queue_job_t *job;   /* NULL: re-publishing a left-behind outbox event */
    int64_t outbox_id;  /* that event, deleted once delivered */
    int64_t project_id;
    char uid[APP_UID_MAX + 1];
    char temp_id[APP_TEMP_ID_MAX * 4 + 1];
    char node[BUS_NODE_ID_MAX + 1]; /* where the ack waits; "" = here */
} ingest_ctx_t;

static void ob_flush(app_gateway_t *gw);

static void ob_push(app_gateway_t *gw, int64_t id) {
    if (gw->nob == gw->ob_cap) {
        size_t ncap = gw->ob_cap ? gw->ob_cap * 2 : 64;
        int64_t *nv = realloc(gw->ob_ids, ncap * sizeof *nv);
        if (!nv)
            return; /* left in the outbox: the scan publishes it again later (at least once) */
        gw->ob_ids = nv;
        gw->ob_cap = ncap;
    }
    gw->ob_ids[gw->nob++] = id;
    if (gw->nob >= OUTBOX_DELETE)
        ob_flush(gw);
}

static void ob_deleted_cb(void *ud, int status, int64_t count) {
    app_gateway_t *gw = ud;
    gw->ob_deleting--;
    if (status != 0)
        pl_log_warn("inbox.outbox_delete_failed", "status=%s", store_strerror(status));
    (void)count;
}

static void ob_flush(app_gateway_t *gw) {
    size_t off = 0;
    while (off < gw->nob) {
        size_t n = gw->nob - off < OUTBOX_DELETE ? gw->nob - off : OUTBOX_DELETE;
        if (store_outbox_delete(gw->store, gw->ob_ids + off, n, ob_deleted_cb, gw) == 0)
            gw->ob_deleting++;
        off += n;
    }
    gw->nob = 0;
    if (gw->ob_cap > 4 * OUTBOX_DELETE) { /* shrink after a burst */
        free(gw->ob_ids);
        gw->ob_ids = NULL;
        gw->ob_cap = 0;
    }
}

/* Tells the node holding the sender's ack that the message is stored (bus only). sent: the
 * text of the ack's one argument. */
static void notify_ack(app_gateway_t *gw, const char *node, const char *key, const char *temp_id,
                       const char *sent, size_t sent_len) {
    pl_buf_t n;
    pl_buf_init(&n, 0);
    int rc = pl_buf_append(&n, "{\"k\":", 5);
    if (rc == 0)
        rc = pl_json_dump_string(key, strlen(key), &n);
    if (rc == 0)
        rc = pl_buf_append(&n, ",\"t\":", 5);
    if (rc == 0)
        rc = pl_json_dump_string(temp_id, strlen(temp_id), &n);
    if (rc == 0)
        rc = pl_buf_append(&n, ",\"s\":", 5);
    if (rc == 0)
        rc = pl_buf_append(&n, sent, sent_len);
    if (rc == 0)
        rc = pl_buf_append(&n, "}", 1);
    if (rc != 0 || bus_redis_notify(gw->bus, node, n.data, n.len) != 0)
        pl_log_warn("inbox.ack_notify_failed", "node=%s", node); /* the ack times out; resent */
    pl_buf_dispose(&n);
}

/* A notification from a worker: the message behind one of our pending acks is stored. */
static void on_notify(void *ud, const char *from, const char *data, size_t len) {
    app_gateway_t *gw = ud;
    json_t *j = json_loadb(data, len, 0, NULL);
    json_t *k = json_object_get(j, "k"), *t = json_object_get(j, "t"), *sent = json_object_get(j, "s");
    pl_buf_t args;
    pl_buf_init(&args, 0);
    if (json_is_string(k) && json_is_string(t) && json_is_object(sent) &&
        one_arg_text(sent, &args) == 0)
        pending_resolve(gw, json_string_value(k), json_string_length(k), &args,
                        json_string_value(t));
    else
        pl_log_warn("inbox.bad_notification", "from=%s bytes=%zu", from, len);
    pl_buf_dispose(&args);
    json_decref(j);
}

/* Message delivery after the commit: `messageSent` {tempId, finalMessage} is written once as
 * JSON text for the visitor's room and the waiting acks, `newMessage` once for the project room. */
static void deliver(app_gateway_t *gw, ingest_ctx_t *ic, const store_ingest_result_t *r) {
    pl_buf_t msg, args;
    pl_buf_init(&msg, 0);
    pl_buf_init(&args, 0);
    char room[96];
    char key[400];
    int kl = pending_key(key, sizeof key, ic->project_id, ic->uid, ic->temp_id);
    /* the message as the widget sees it, written once; the agents' view adds two fields */
    int rc = app_message_text(&r->message, &msg);
    if (rc == 0)
        rc = pl_buf_append(&args, "[{\"tempId\":", 11);
    if (rc == 0)
        rc = pl_json_dump_string(ic->temp_id, strlen(ic->temp_id), &args);
    if (rc == 0)
        rc = pl_buf_append(&args, ",\"finalMessage\":", 16);
    if (rc == 0)
        rc = pl_buf_append(&args, msg.data, msg.len);
    if (rc == 0)
        rc = pl_buf_append(&args, "}]", 2);
    if (rc == 0) {
        app_room_visitor(room, sizeof room, ic->project_id, ic->uid);
        app_emit_room_raw(gw->nsp, room, "messageSent", args.data, args.len);
        if (kl >= 0 && gw->bus && ic->node[0] && strcmp(ic->node, bus_redis_node_id(gw->bus)))
            notify_ack(gw, ic->node, key, ic->temp_id, args.data + 1, args.len - 2);
        else if (kl >= 0)
            pending_resolve(gw, key, (size_t)kl, &args, ic->temp_id);
    }
    /* A duplicate was announced when it was stored, except when that delivery is the one a
     * crashed worker left in the outbox (ic->outbox_id). */
    if (rc == 0 && (!r->duplicate || ic->outbox_id)) {
        args.len = 0;
        rc = pl_buf_append(&args, "[", 1);
        if (rc == 0)
            rc = pl_buf_append(&args, msg.data, msg.len - 1); /* without its closing brace */
        if (rc == 0)
            rc = app_message_agent_fields(&r->message, &args);
        if (rc == 0)
            rc = pl_buf_append(&args, "}]", 2);
        if (rc == 0) {
            app_room_project(room, sizeof room, ic->project_id);
            app_emit_room_raw(gw->nsp, room, "newMessage", args.data, args.len);
        }
    }
    pl_buf_dispose(&msg);
    pl_buf_dispose(&args);
}

/* The store is unavailable (an outage, or its queue is full): the job waits for the next sweep
 * tick instead of failing an attempt. */
static void retry_later(app_gateway_t *gw, queue_job_t *job) {
    app_retry_t *r = malloc(sizeof *r);
    if (!r) {
        queue_job_done(gw->queue, job, PL_ENOMEM, "out of memory");
        return;
    }
    r->job = job;
    r->next = gw->retry;
    gw->retry = r;
    gw->nretry++;
}

static void ingest_cb(void *ud, int status, const store_ingest_result_t *r) {
    ingest_ctx_t *ic = ud;
    app_gateway_t *gw = ic->gw;
    if (status == 0) {
        deliver(gw, ic, r);
        if (gw->bus) {
            for (size_t i = 0; i < r->noutbox; i++)
                ob_push(gw, r->outbox_ids[i]);
            if (ic->outbox_id)
                ob_push(gw, ic->outbox_id);
        }
        if (ic->job)
            queue_job_done(gw->queue, ic->job, 0, NULL);
    } else if (ic->job && status == PL_EUNAVAIL && !gw->draining) {
        retry_later(gw, ic->job);
    } else {
        pl_log_warn("inbox.persist_failed", "project=%lld uid=%s status=%s",
                    (long long)ic->project_id, ic->uid, store_strerror(status));
        if (ic->job)
            queue_job_done(gw->queue, ic->job, status, store_strerror(status));
    }
    free(ic);
}

/* Persists one job (data: its JSON text). job NULL: re-publishing the outbox event outbox_id.
 * Returns 0 (ingest_cb will run) or an error (nothing was started). */
/* What a job asks for (strings borrowed from the job or from json). */
typedef struct {
    int64_t project_id;
    const char *uid, *temp_id, *content, *node;
    const char *meta_text; /* NULL if none */
    bool forever;
    json_t *json;          /* the parsed JSON job, or NULL */
    char *meta_owned;      /* meta_text when dumped from json */
} job_view_t;

static int job_decode(const char *data, size_t len, job_view_t *v) {
    memset(v, 0, sizeof *v);
    if (len >= sizeof(job_head_t) && (unsigned char)data[0] == JOB_MAGIC) {
        job_head_t h;
        memcpy(&h, data, sizeof h);
        size_t need = sizeof h + h.uid_len + 1u + h.temp_len + 1u + h.content_len + 1u +
                      h.meta_len + 1u;
        if (need != len || h.uid_len > APP_UID_MAX || h.temp_len > APP_TEMP_ID_MAX * 4)
            return PL_EINVAL;
        const char *p = data + sizeof h;
        v->uid = p;
        p += h.uid_len + 1u;
        v->temp_id = p;
        p += h.temp_len + 1u;
        v->content = p;
        p += h.content_len + 1u;
        v->meta_text = h.meta_len ? p : NULL;
        v->project_id = h.project_id;
        v->forever = h.forever;
        return 0;
    }
    json_t *j = json_loadb(data, len, 0, NULL);
    json_t *p = json_object_get(j, "p"), *u = json_object_get(j, "u"),
           *c = json_object_get(j, "c"), *t = json_object_get(j, "t"),
           *m = json_object_get(j, "m"), *n = json_object_get(j, "n");
    if (!json_is_integer(p) || !json_is_string(u) || !json_is_string(c) || !json_is_string(t) ||
        json_string_length(u) > APP_UID_MAX || json_string_length(t) > APP_TEMP_ID_MAX * 4 ||
        (n && (!json_is_string(n) || json_string_length(n) > BUS_NODE_ID_MAX))) {
        json_decref(j);
        return PL_EINVAL;
    }
    v->json = j;
    v->project_id = (int64_t)json_integer_value(p);
    v->uid = json_string_value(u);
    v->temp_id = json_string_value(t);
    v->content = json_string_value(c);
    v->node = n ? json_string_value(n) : NULL;
    v->forever = json_is_true(json_object_get(j, "f"));
    if (json_is_object(m))
        v->meta_text = v->meta_owned = json_dumps(m, JSON_COMPACT);
    return 0;
}

static void job_view_dispose(job_view_t *v) {
    free(v->meta_owned);
    json_decref(v->json);
}

/* Persists one job. job NULL: re-publishing the outbox event outbox_id. Returns 0 (ingest_cb
 * will run) or an error (nothing was started). */
static int run_job(app_gateway_t *gw, const char *data, size_t len, queue_job_t *job,
                   int64_t outbox_id) {
    job_view_t v;
    int rc = job_decode(data, len, &v);
    if (rc)
        return rc;
    ingest_ctx_t *ic = pl_xmalloc(sizeof *ic);
    ic->gw = gw;
    ic->job = job;
    ic->outbox_id = outbox_id;
    ic->project_id = v.project_id;
    snprintf(ic->uid, sizeof ic->uid, "%s", v.uid);
    snprintf(ic->temp_id, sizeof ic->temp_id, "%s", v.temp_id);
    snprintf(ic->node, sizeof ic->node, "%s", v.node ? v.node : "");
    /* With the bus the delivery goes through the transactional outbox: recorded with the
     * message, deleted once published (ingest_cb), re-published by the scan if we die first. */
    char *payload = NULL;
    if (gw->bus && job) {
        payload = pl_xmalloc(len + 1);
        memcpy(payload, data, len);
        payload[len] = '\0';
    }
    const char *topic = OUTBOX_TOPIC;
    const char *payload_c = payload;
    store_ingest_t in = {
        .project_id = ic->project_id,
        .visitor_uid = ic->uid,
        .content = v.content,
        .temp_id = ic->temp_id,
        .session_metadata_json = v.meta_text,
        .forever = v.forever,
        .now_ms = pl_wall_ms(),
        .event_topics = payload ? &topic : NULL,
        .event_payloads = payload ? &payload_c : NULL,
        .nevents = payload ? 1 : 0,
    };
    rc = store_message_ingest(gw->store, &in, ingest_cb, ic);
    free(payload);
    job_view_dispose(&v);
    if (rc != 0)
        free(ic);
    return rc;
}

static void inbox_worker(void *ud, queue_job_t *job) {
    app_gateway_t *gw = ud;
    int rc = run_job(gw, job->data, job->len, job, 0);
    if (rc == PL_EINVAL) /* not a job this version wrote: keep it out of the way */
        queue_job_done(gw->queue, job, rc, "malformed job");
    else if (rc == PL_EUNAVAIL && !gw->draining)
        retry_later(gw, job);
    else if (rc != 0)
        queue_job_done(gw->queue, job, rc, store_strerror(rc));
}

/* Runs the jobs that waited for the store again (every sweep tick); at shutdown finishes them
 * as failed, which leaves them to the queue (Redis: another worker; in-process: the widget
 * re-sends what was not acknowledged). */
static void retry_run(app_gateway_t *gw) {
    app_retry_t *list = gw->retry;
    size_t n = gw->nretry;
    gw->retry = NULL;
    gw->nretry = 0;
    if (n && !gw->draining)
        pl_log_warn("inbox.store_unavailable", "retrying=%zu", n);
    while (list) {
        app_retry_t *r = list;
        list = r->next;
        queue_job_t *job = r->job;
        free(r);
        if (gw->draining) {
            queue_job_done(gw->queue, job, PL_EUNAVAIL, "shutting down");
            continue;
        }
        inbox_worker(gw, job);
    }
}

/* The scan of the outbox for deliveries a crashed worker left behind. */
static void outbox_scan_cb(void *ud, int status, const store_outbox_event_t *ev, size_t n) {
    app_gateway_t *gw = ud;
    gw->ob_scanning = false;
    if (status != 0 || gw->closing)
        return;
    int64_t old = pl_wall_ms() - OUTBOX_ORPHAN_MS;
    size_t redone = 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].created_at > old)
            continue;
        int rc = strcmp(ev[i].topic, OUTBOX_TOPIC)
                     ? PL_EINVAL
                     : run_job(gw, ev[i].payload, strlen(ev[i].payload), NULL, ev[i].id);
        if (rc == PL_EINVAL) {
            pl_log_warn("inbox.outbox_dropped", "id=%lld topic=%s", (long long)ev[i].id,
                        ev[i].topic);
            ob_push(gw, ev[i].id);
        } else if (rc == 0) {
            redone++;
        }
    }
    if (redone)
        pl_log_info("inbox.outbox_republished", "events=%zu", redone);
}

void app__inbox_tick(app_gateway_t *gw, unsigned tick) {
    if (gw->retry)
        retry_run(gw);
    if (!gw->bus)
        return;
    if (gw->nob)
        ob_flush(gw);
    if (gw->worker && !gw->closing && !gw->ob_scanning && tick % 5 == 0 &&
        store_outbox_fetch(gw->store, OUTBOX_SCAN, outbox_scan_cb, gw) == 0)
        gw->ob_scanning = true;
}

void app__inbox_start(app_gateway_t *gw) {
    if (gw->bus)
        bus_redis_on_notify(gw->bus, on_notify, gw);
    if (gw->worker && queue_consume(gw->queue, inbox_worker, gw) != 0)
        pl_log_error("inbox.no_worker", "queue=%s", QUEUE_NAME);
}

void app__inbox_expire(app_gateway_t *gw, uint64_t now) {
    if (gw->npending == 0)
        return;
    size_t it = 0;
    const pl_map_slot_t *slot;
    while (pl_map_next(&gw->pending, &it, &slot)) {
        app_pending_t *p = slot->value;
        app_pending_ack_t **pp = &p->acks;
        while (*pp) {
            app_pending_ack_t *a = *pp;
            if (a->deadline > now) {
                pp = &a->next;
                continue;
            }
            *pp = a->next;
            app_refuse(a->sock, a->ack, "sendMessage", APP_E_UNAVAILABLE,
                       "The message could not be stored in time: send it again", NULL);
            sio_socket_unref(a->sock);
            free(a);
            gw->npending--;
        }
    }
    /* Keys left without acks are dropped here. */
    pl_map_remove_if(&gw->pending, pending_empty, pending_release, NULL);
}

void app__inbox_clear(app_gateway_t *gw) {
    size_t it = 0;
    const pl_map_slot_t *slot;
    while (pl_map_next(&gw->pending, &it, &slot)) {
        app_pending_t *p = slot->value;
        app_pending_ack_t *a = p->acks;
        while (a) {
            app_pending_ack_t *next = a->next;
            sio_ack_free(a->ack);
            sio_socket_unref(a->sock);
            free(a);
            a = next;
        }
        free(p->key);
        free(p);
    }
    pl_map_dispose(&gw->pending);
    pl_map_init(&gw->pending);
    gw->npending = 0;
}
