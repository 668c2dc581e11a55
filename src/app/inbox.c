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
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int pending_key(char *out, size_t n, int64_t project, const char *uid,
                       const char *temp_id) {
    int k = snprintf(out, n, "%lld:%s:%s", (long long)project, uid, temp_id);
    return k < 0 || (size_t)k >= n ? -1 : k;
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

/* Answers (payload != NULL) or refuses every ack waiting under key, and forgets the key. */
static void pending_resolve(app_gateway_t *gw, const char *key, size_t keylen, json_t *payload,
                            const char *temp_id) {
    app_pending_t *p = pl_map_del(&gw->pending, key, keylen);
    if (!p)
        return;
    app_pending_ack_t *a = p->acks;
    while (a) {
        app_pending_ack_t *next = a->next;
        if (payload)
            app_ack(a->ack, json_incref(payload));
        else
            app_refuse(a->sock, a->ack, "sendMessage", APP_E_UNAVAILABLE,
                       "The message could not be stored yet: send it again", temp_id);
        sio_socket_unref(a->sock);
        free(a);
        gw->npending--;
        a = next;
    }
    free(p->key);
    free(p);
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
    json_t *job = json_pack("{s:I, s:s, s:s, s:s, s:O?, s:b}", "p", (json_int_t)st->project_id,
                            "u", st->uid, "c", content, "t", temp_id, "m", metadata, "f",
                            st->forever);
    char *text = job ? json_dumps(job, JSON_COMPACT) : NULL;
    json_decref(job);
    if (!text) {
        app_refuse(s, ack, "sendMessage", APP_E_UNAVAILABLE, "Out of memory", temp_id);
        return;
    }
    int rc = queue_enqueue(gw->queue, text, strlen(text), NULL, NULL);
    free(text);
    if (rc != 0) {
        app_refuse(s, ack, "sendMessage", APP_E_UNAVAILABLE,
                   "The message queue is full: send it again later", temp_id);
        return;
    }
    if (ack) {
        sio_ack_t *owned = sio_ack_take(ack);
        if (owned)
            pending_add(gw, key, (size_t)kl, s, owned);
    }
}

/* ---- the worker ---------------------------------------------------------------------------------- */

typedef struct {
    app_gateway_t *gw;
    queue_job_t *job;
    int64_t project_id;
    char uid[APP_UID_MAX + 1];
    char temp_id[APP_TEMP_ID_MAX * 4 + 1];
} ingest_ctx_t;

/* Message delivery after the commit. */
static void deliver(app_gateway_t *gw, ingest_ctx_t *ic, const store_ingest_result_t *r) {
    json_t *sent = json_pack("{s:s, s:o}", "tempId", ic->temp_id, "finalMessage",
                             app_widget_message_json(&r->message));
    char room[96];
    app_room_visitor(room, sizeof room, ic->project_id, ic->uid);
    app_emit_room(gw->nsp, room, "messageSent", json_incref(sent));
    char key[400];
    int kl = pending_key(key, sizeof key, ic->project_id, ic->uid, ic->temp_id);
    if (kl >= 0)
        pending_resolve(gw, key, (size_t)kl, sent, ic->temp_id);
    json_decref(sent);
    if (!r->duplicate) {
        app_room_project(room, sizeof room, ic->project_id);
        app_emit_room(gw->nsp, room, "newMessage", app_message_json(&r->message));
    }
}

static void ingest_cb(void *ud, int status, const store_ingest_result_t *r) {
    ingest_ctx_t *ic = ud;
    app_gateway_t *gw = ic->gw;
    if (status == 0) {
        deliver(gw, ic, r);
        queue_job_done(gw->queue, ic->job, 0, NULL);
    } else {
        pl_log_warn("inbox.persist_failed", "project=%lld uid=%s status=%s",
                    (long long)ic->project_id, ic->uid, store_strerror(status));
        queue_job_done(gw->queue, ic->job, status, store_strerror(status));
    }
    free(ic);
}

static void inbox_worker(void *ud, queue_job_t *job) {
    app_gateway_t *gw = ud;
    json_t *j = json_loadb(job->data, job->len, 0, NULL);
    json_t *p = json_object_get(j, "p"), *u = json_object_get(j, "u"),
           *c = json_object_get(j, "c"), *t = json_object_get(j, "t"),
           *m = json_object_get(j, "m");
    if (!json_is_integer(p) || !json_is_string(u) || !json_is_string(c) || !json_is_string(t) ||
        json_string_length(u) > APP_UID_MAX || json_string_length(t) > APP_TEMP_ID_MAX * 4) {
        /* Not a job this version wrote: keep it out of the way (dead letter). */
        json_decref(j);
        queue_job_done(gw->queue, job, PL_EINVAL, "malformed job");
        return;
    }
    ingest_ctx_t *ic = pl_xcalloc(1, sizeof *ic);
    ic->gw = gw;
    ic->job = job;
    ic->project_id = (int64_t)json_integer_value(p);
    snprintf(ic->uid, sizeof ic->uid, "%s", json_string_value(u));
    snprintf(ic->temp_id, sizeof ic->temp_id, "%s", json_string_value(t));
    char *meta = json_is_object(m) ? json_dumps(m, JSON_COMPACT) : NULL;
    store_ingest_t in = {
        .project_id = ic->project_id,
        .visitor_uid = ic->uid,
        .content = json_string_value(c),
        .temp_id = ic->temp_id,
        .session_metadata_json = meta,
        .forever = json_is_true(json_object_get(j, "f")),
        .now_ms = pl_wall_ms(),
    };
    int rc = store_message_ingest(gw->store, &in, ingest_cb, ic);
    free(meta);
    json_decref(j);
    if (rc != 0) {
        free(ic);
        queue_job_done(gw->queue, job, rc, store_strerror(rc));
    }
}

void app__inbox_start(app_gateway_t *gw) {
    if (queue_consume(gw->queue, inbox_worker, gw) != 0)
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
    /* Keys left without acks are freed on the next resolve, or here when empty. */
    it = 0;
    size_t n = 0;
    app_pending_t **drop = NULL;
    while (pl_map_next(&gw->pending, &it, &slot)) {
        app_pending_t *p = slot->value;
        if (!p->acks) {
            app_pending_t **nd = realloc(drop, (n + 1) * sizeof *nd);
            if (!nd)
                break;
            drop = nd;
            drop[n++] = p;
        }
    }
    for (size_t i = 0; i < n; i++) {
        pl_map_del(&gw->pending, drop[i]->key, drop[i]->keylen);
        free(drop[i]->key);
        free(drop[i]);
    }
    free(drop);
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
