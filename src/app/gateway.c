/* The widget connection flow as Socket.IO handlers (PROTOCOL.md sections 2 to 6; the seed's
 * events.gateway.ts + ws-auth.service.ts + inbox-event.handler.ts). Read top to bottom:
 *
 *   validate_connection()   connect middleware: agent by JWT, visitor by project + Origin
 *   on_identify()           presence, visitor row, visitorStatusChanged, conversationHistory
 *   on_send_message()       checks and rate limit, then the ingest queue (inbox.c persists and
 *                           delivers)
 *   on_visitor_typing(), on_update_context()
 *   on_join_project_room(), on_leave_project_room()
 *   on_disconnect()         presence compare-and-delete, offline status on the last socket
 *
 * Every handler refuses bad input with the codes of section 5 (app_refuse) and keeps the
 * connection. Asynchronous steps hold a reference on the socket, so a reply that comes back
 * after the client left is dropped harmlessly. */
#include "app/gateway_internal.h"

#include "app/jwt.h"
#include "app/origin.h"
#include "app/payload.h"
#include "core/clock.h"
#include "core/log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JS_MAX_SAFE_INT 9007199254740991LL
#define SWEEP_MS 1000
#define LIMIT_IDLE_MS 120000 /* a visitor's rate-limit entry is dropped after this idle time */

/* Room names are made for every message: no printf (out holds at least 64 / 96 bytes, and a
 * uid at most APP_UID_MAX). */
void app_room_project(char *out, size_t n, int64_t project_id) {
    if (n < 8 + 21)
        abort(); /* a caller bug: the sizes are documented in gateway.h */
    memcpy(out, "project:", 8);
    pl_fmt_i64(out + 8, project_id);
}

void app_room_visitor(char *out, size_t n, int64_t project_id, const char *uid) {
    size_t ul = strlen(uid);
    if (n < 8 + 21 + 1 + ul + 1)
        abort();
    memcpy(out, "visitor:", 8);
    size_t k = 8 + pl_fmt_i64(out + 8, project_id);
    out[k++] = ':';
    memcpy(out + k, uid, ul + 1);
}

static app_sock_t *state_of(sio_socket_t *s) {
    return sio_socket_data(s);
}

static void state_free(void *data) {
    app_sock_t *st = data;
    if (!st)
        return;
    free(st->identity_secret);
    free(st);
}

/* ---- per-address accounting (PROTOCOL.md section 6) ------------------------------------------ */

static app_ip_t *ip_entry(app_gateway_t *gw, const char *ip, bool create) {
    size_t len = strlen(ip);
    app_ip_t *e = pl_map_get(&gw->ips, ip, len);
    if (e || !create)
        return e;
    e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->key = pl_xstrdup(ip);
    e->keylen = len;
    if (pl_map_put(&gw->ips, e->key, e->keylen, e, NULL) != 0) {
        free(e->key);
        free(e);
        return NULL;
    }
    return e;
}

static void ip_release(app_gateway_t *gw, app_sock_t *st) {
    if (!st->counted)
        return;
    st->counted = false;
    app_ip_t *e = ip_entry(gw, st->ip, false);
    if (e && e->sockets > 0)
        e->sockets--;
}

/* ---- connection validation (ws-auth.service.ts validateConnection) ---------------------------- */

typedef struct {
    app_gateway_t *gw;
    sio_connect_t *c;
    app_jwt_claims_t claims; /* agent */
} validate_ctx_t;

static void accept_as(validate_ctx_t *v, app_sock_t *st) {
    app_ip_t *e = ip_entry(v->gw, st->ip, true);
    if (e) {
        e->sockets++;
        st->counted = true;
    }
    sio_socket_set_data(sio_connect_socket(v->c), st);
    sio_connect_accept(v->c);
    free(v);
}

static void refuse_connect(validate_ctx_t *v, const char *message) {
    pl_log_info("gateway.connect_refused", "ip=%s reason=\"%s\"", sio_connect_remote_ip(v->c),
                message);
    sio_connect_refuse(v->c, message);
    free(v);
}

static app_sock_t *sock_new(validate_ctx_t *v, app_role_t role) {
    app_sock_t *st = pl_xcalloc(1, sizeof *st);
    st->gw = v->gw;
    st->role = role;
    snprintf(st->ip, sizeof st->ip, "%s", sio_connect_remote_ip(v->c));
    return st;
}

/* Agent: the user must exist and the token must not predate tokensValidFrom. */
static void agent_user_cb(void *ud, int status, const store_user_t *u) {
    validate_ctx_t *v = ud;
    if (status == STORE_ENOTFOUND) {
        refuse_connect(v, "User not found");
        return;
    }
    if (status != 0) {
        refuse_connect(v, "Service unavailable");
        return;
    }
    int64_t issued_ms = v->claims.iat_ms ? v->claims.iat_ms : v->claims.iat * 1000;
    if (issued_ms < u->tokens_valid_from) {
        refuse_connect(v, "Token revoked");
        return;
    }
    app_sock_t *st = sock_new(v, APP_ROLE_AGENT);
    st->user_id = u->id;
    accept_as(v, st);
}

/* Visitor: project, whitelist, Origin (section 2, in this order). */
static void visitor_project_cb(void *ud, int status, const store_project_t *p) {
    validate_ctx_t *v = ud;
    if (status == STORE_ENOTFOUND) {
        refuse_connect(v, "Project not found");
        return;
    }
    if (status != 0) {
        refuse_connect(v, "Service unavailable");
        return;
    }
    app_origin_result_t r =
        app_origin_check(sio_connect_header(v->c, "origin"), p->domains, p->ndomains);
    if (r != APP_ORIGIN_OK) {
        refuse_connect(v, app_origin_message(r));
        return;
    }
    app_sock_t *st = sock_new(v, APP_ROLE_VISITOR);
    st->project_id = p->id;
    json_t *settings = json_loads(p->widget_settings_json ? p->widget_settings_json : "{}", 0,
                                  NULL);
    json_t *hv = json_object_get(settings, "historyVisibility");
    st->forever = json_is_string(hv) && strcmp(json_string_value(hv), "forever") == 0;
    json_decref(settings);
    if (p->identity_verification && p->identity_secret) {
        st->verify_identity = true;
        st->identity_secret = pl_xstrdup(p->identity_secret);
    }
    accept_as(v, st);
}

static bool parse_project_id(const pl_buf_t *b, int64_t *id) {
    uint64_t v;
    if (!pl_slice_to_u64(pl_slice(b->data, b->len), JS_MAX_SAFE_INT, &v) || v == 0)
        return false;
    *id = (int64_t)v;
    return true;
}

static void validate_connection(sio_connect_t *c, void *ud) {
    app_gateway_t *gw = ud;
    const pl_config_t *cfg = gw->cfg;
    validate_ctx_t *v = pl_xcalloc(1, sizeof *v);
    v->gw = gw;
    v->c = c;

    /* Per-address limits first: they protect everything after. */
    const char *ip = sio_connect_remote_ip(c);
    app_ip_t *e = ip_entry(gw, ip, true);
    uint64_t now = pl_mono_ms();
    if (e) {
        e->last_ms = now;
        if (e->sockets >= cfg->max_sockets_per_ip) {
            refuse_connect(v, "Too many connections");
            return;
        }
        if (!app_bucket_take(&e->connects, cfg->max_connects_per_ip, 1000, now)) {
            refuse_connect(v, "Too many connection attempts");
            return;
        }
    }

    json_t *auth = sio_connect_auth(c);
    json_t *token = json_object_get(auth, "token");
    if (token) {
        /* Agent: HS256 JWT in the CONNECT auth payload. */
        if (!json_is_string(token) ||
            app_jwt_verify(json_string_value(token), json_string_length(token), gw->jwt_secret,
                           pl_wall_ms() / 1000, &v->claims) != 0) {
            refuse_connect(v, "Invalid JWT");
            return;
        }
        if (store_user_get(gw->store, v->claims.sub, agent_user_cb, v) != 0)
            refuse_connect(v, "Service unavailable");
        return;
    }
    pl_buf_t pid;
    pl_buf_init(&pid, 64);
    int found = sio_connect_query(c, "projectId", &pid);
    if (found == 1) {
        int64_t id;
        bool ok = parse_project_id(&pid, &id);
        pl_buf_dispose(&pid);
        if (!ok) {
            refuse_connect(v, "Project not found");
            return;
        }
        if (store_project_get(gw->store, id, visitor_project_cb, v) != 0)
            refuse_connect(v, "Service unavailable");
        return;
    }
    pl_buf_dispose(&pid);
    refuse_connect(v, "Unauthorized");
}

/* ---- identify (inbox-event.handler.ts handleVisitorIdentified) ----------------------------------- */

typedef struct {
    app_gateway_t *gw;
    sio_socket_t *s;   /* referenced */
    sio_ack_t *ack;    /* taken, or NULL */
    int64_t project_id;
    char uid[APP_UID_MAX + 1];
    bool was_online;
} identify_ctx_t;

static void identify_done(identify_ctx_t *ic) {
    sio_socket_unref(ic->s);
    free(ic);
}

static void identify_fail(identify_ctx_t *ic, const char *message) {
    app_refuse(ic->s, ic->ack, "identify", APP_E_UNAVAILABLE, message, NULL);
    identify_done(ic);
}

/* History delivery (gateway.event-listener.ts prepareSocketForVisitor). */
static void identify_history_cb(void *ud, int status, int64_t conversation_id,
                                const store_message_t *msgs, size_t n) {
    identify_ctx_t *ic = ud;
    if (status != 0) {
        identify_fail(ic, "History is unavailable");
        return;
    }
    app_sock_t *st = state_of(ic->s);
    if (st && conversation_id)
        st->conversation_id = conversation_id;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, app_widget_message_json(&msgs[i]));
    json_t *payload = json_pack("{s:o}", "messages", arr);
    app_emit(ic->s, "conversationHistory", json_incref(payload));
    app_ack(ic->ack, payload);
    identify_done(ic);
}

static void identify_visitor_cb(void *ud, int status, const store_visitor_t *v) {
    identify_ctx_t *ic = ud;
    (void)v;
    if (status != 0) {
        identify_fail(ic, "Visitor store is unavailable");
        return;
    }
    app_sock_t *st = state_of(ic->s);
    if (!ic->was_online && st) {
        char room[64];
        app_room_project(room, sizeof room, ic->project_id);
        app_emit_room(ic->gw->nsp, room, "visitorStatusChanged",
                      json_pack("{s:s, s:I, s:b}", "visitorUid", ic->uid, "projectId",
                                (json_int_t)ic->project_id, "isOnline", 1));
    }
    if (store_history(ic->gw->store, ic->project_id, ic->uid, st && st->forever,
                      APP_HISTORY_LIMIT, identify_history_cb, ic) != 0)
        identify_fail(ic, "History is unavailable");
}

static void identify_presence_cb(void *ud, int status, bool was_online) {
    identify_ctx_t *ic = ud;
    if (status != 0) {
        identify_fail(ic, "Presence is unavailable");
        return;
    }
    ic->was_online = was_online;
    if (store_visitor_identify(ic->gw->store, ic->project_id, ic->uid, pl_wall_ms(),
                               identify_visitor_cb, ic) != 0)
        identify_fail(ic, "Visitor store is unavailable");
}

/* PROTOCOL.md section 7: userHash = hex(HMAC-SHA256(projectSecret, visitorUid)). */
static bool identity_ok(const app_sock_t *st, json_t *payload, const char *uid) {
    json_t *h = json_object_get(payload, "userHash");
    if (!json_is_string(h) || json_string_length(h) != 2 * crypto_auth_hmacsha256_BYTES)
        return false;
    unsigned char mac[crypto_auth_hmacsha256_BYTES], given[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state hs;
    crypto_auth_hmacsha256_init(&hs, (const unsigned char *)st->identity_secret,
                                strlen(st->identity_secret));
    crypto_auth_hmacsha256_update(&hs, (const unsigned char *)uid, strlen(uid));
    crypto_auth_hmacsha256_final(&hs, mac);
    size_t bin_len = 0;
    if (sodium_hex2bin(given, sizeof given, json_string_value(h), json_string_length(h), NULL,
                       &bin_len, NULL) != 0 ||
        bin_len != sizeof given)
        return false;
    return sodium_memcmp(mac, given, sizeof mac) == 0;
}

static void on_identify(sio_socket_t *s, const char *event, const sio_args_t *args,
                        sio_ack_t *ack, void *ud) {
    app_gateway_t *gw = ud;
    app_sock_t *st = state_of(s);
    json_t *p = sio_args_get(args, 0);
    char msg[160];
    const char *code;
    int64_t project_id;
    const char *uid;
    if (!st || st->role != APP_ROLE_VISITOR) {
        app_refuse(s, ack, event, APP_E_FORBIDDEN, "Only visitors identify", NULL);
        return;
    }
    if (!json_is_object(p)) {
        app_refuse(s, ack, event, APP_E_INVALID, "Payload must be an object", NULL);
        return;
    }
    if ((code = app_check_int(p, "projectId", 1, JS_MAX_SAFE_INT, &project_id, msg, sizeof msg)) ||
        (code = app_check_string(p, "visitorUid", true, 8, APP_UID_MAX, &uid, msg, sizeof msg))) {
        app_refuse(s, ack, event, code, msg, NULL);
        return;
    }
    if (!app_is_token(uid, 8, APP_UID_MAX)) {
        app_refuse(s, ack, event, APP_E_INVALID,
                   "visitorUid must be 8 to 64 characters of A-Z, a-z, 0-9, _ and -", NULL);
        return;
    }
    if (project_id != st->project_id) {
        app_refuse(s, ack, event, APP_E_FORBIDDEN, "This socket belongs to another project",
                   NULL);
        return;
    }
    if (st->uid[0] && strcmp(st->uid, uid) != 0) {
        app_refuse(s, ack, event, APP_E_FORBIDDEN, "This socket is identified as another visitor",
                   NULL);
        return;
    }
    if (st->verify_identity && !identity_ok(st, p, uid)) {
        app_refuse(s, ack, event, APP_E_FORBIDDEN, "Identity verification failed", NULL);
        return;
    }
    /* The socket counts as identified from now on, so a sendMessage that follows at once is
     * accepted, and it joins its visitor room so it gets every messageSent of this visitor. */
    bool first = st->uid[0] == '\0';
    if (first) {
        snprintf(st->uid, sizeof st->uid, "%s", uid);
        char room[96];
        app_room_visitor(room, sizeof room, st->project_id, uid);
        if (sio_socket_join(s, room) != 0) {
            app_refuse(s, ack, event, APP_E_UNAVAILABLE, "Cannot join the visitor room", NULL);
            return;
        }
    }
    identify_ctx_t *ic = pl_xcalloc(1, sizeof *ic);
    ic->gw = gw;
    ic->s = sio_socket_ref(s);
    ic->ack = ack ? sio_ack_take(ack) : NULL;
    ic->project_id = st->project_id;
    snprintf(ic->uid, sizeof ic->uid, "%s", uid);
    if (presence_attach(gw->presence, st->project_id, uid, sio_socket_id(s), identify_presence_cb,
                        ic) != 0)
        identify_fail(ic, "Presence is unavailable");
}

/* ---- sendMessage ------------------------------------------------------------------------------- */

static app_visitor_limit_t *limit_entry(app_gateway_t *gw, int64_t project, const char *uid) {
    char key[96];
    int kl = snprintf(key, sizeof key, "%lld:%s", (long long)project, uid);
    app_visitor_limit_t *e = pl_map_get(&gw->limits, key, (size_t)kl);
    if (e)
        return e;
    e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->key = pl_xstrdup(key);
    e->keylen = (size_t)kl;
    if (pl_map_put(&gw->limits, e->key, e->keylen, e, NULL) != 0) {
        free(e->key);
        free(e);
        return NULL;
    }
    return e;
}

static void on_send_message(sio_socket_t *s, const char *event, const sio_args_t *args,
                            sio_ack_t *ack, void *ud) {
    app_gateway_t *gw = ud;
    app_sock_t *st = state_of(s);
    json_t *p = sio_args_get(args, 0);
    json_t *tid = json_is_object(p) ? json_object_get(p, "tempId") : NULL;
    const char *temp_hint = json_is_string(tid) && json_string_length(tid) <= APP_TEMP_ID_MAX
                                ? json_string_value(tid)
                                : NULL;
    char msg[160];
    const char *code, *content, *temp_id;
    if (!st || st->role != APP_ROLE_VISITOR) {
        app_refuse(s, ack, event, APP_E_FORBIDDEN, "Only visitors send messages this way",
                   temp_hint);
        return;
    }
    if (!st->uid[0]) {
        app_refuse(s, ack, event, APP_E_NOT_IDENTIFIED, "Identify first", temp_hint);
        return;
    }
    if (!json_is_object(p)) {
        app_refuse(s, ack, event, APP_E_INVALID, "Payload must be an object", NULL);
        return;
    }
    if ((code = app_check_string(p, "tempId", true, 1, APP_TEMP_ID_MAX, &temp_id, msg,
                                 sizeof msg)) ||
        (code = app_check_string(p, "content", true, 1, (size_t)-1, &content, msg, sizeof msg))) {
        app_refuse(s, ack, event, code, msg, temp_hint);
        return;
    }
    /* content is trimmed, then 1 to 5000 characters. */
    size_t len = strlen(content);
    size_t a = 0, b = len;
    while (a < b && (content[a] == ' ' || content[a] == '\t' || content[a] == '\n' ||
                     content[a] == '\r' || content[a] == '\f' || content[a] == '\v'))
        a++;
    while (b > a && (content[b - 1] == ' ' || content[b - 1] == '\t' || content[b - 1] == '\n' ||
                     content[b - 1] == '\r' || content[b - 1] == '\f' || content[b - 1] == '\v'))
        b--;
    if (a == b) {
        app_refuse(s, ack, event, APP_E_INVALID, "content must not be empty", temp_id);
        return;
    }
    if (app_utf8_chars(content + a, b - a) > APP_CONTENT_MAX) {
        app_refuse(s, ack, event, APP_E_TOO_LARGE, "content must be at most 5000 characters",
                   temp_id);
        return;
    }
    json_t *meta = json_object_get(p, "sessionMetadata");
    if (meta && !json_is_null(meta)) {
        if (!json_is_object(meta)) {
            app_refuse(s, ack, event, APP_E_INVALID, "sessionMetadata must be an object",
                       temp_id);
            return;
        }
        char *text = json_dumps(meta, JSON_COMPACT);
        size_t tl = text ? strlen(text) : 0;
        free(text);
        if (tl > APP_METADATA_MAX) {
            app_refuse(s, ack, event, APP_E_TOO_LARGE, "sessionMetadata must be at most 16 KiB",
                       temp_id);
            return;
        }
    } else {
        meta = NULL;
    }
    /* Rate limit per visitor, across its sockets (section 6). */
    const pl_config_t *cfg = gw->cfg;
    app_visitor_limit_t *lim = limit_entry(gw, st->project_id, st->uid);
    uint64_t now = pl_mono_ms();
    if (lim) {
        lim->last_ms = now;
        if (!app_bucket_peek(&lim->burst, cfg->visitor_burst, cfg->visitor_burst_ms, now) ||
            !app_bucket_peek(&lim->minute, cfg->visitor_per_minute, 60000, now)) {
            app_refuse(s, ack, event, APP_E_RATE_LIMITED, "Too many messages: slow down", temp_id);
            return;
        }
        app_bucket_take(&lim->burst, cfg->visitor_burst, cfg->visitor_burst_ms, now);
        app_bucket_take(&lim->minute, cfg->visitor_per_minute, 60000, now);
    }
    char *trimmed = pl_slice_dup(pl_slice(content + a, b - a));
    app__inbox_submit(gw, s, st, trimmed, temp_id, meta, ack);
    free(trimmed);
}

/* ---- typing and context ------------------------------------------------------------------------- */

/* Common checks of the two throttled visitor events: returns true to go on. */
static bool throttled_visitor_event(sio_socket_t *s, app_sock_t *st, const char *event,
                                    sio_ack_t *ack) {
    if (!st || st->role != APP_ROLE_VISITOR) {
        app_refuse(s, ack, event, APP_E_FORBIDDEN, "Only visitors send this event", NULL);
        return false;
    }
    if (!st->uid[0]) {
        app_refuse(s, ack, event, APP_E_NOT_IDENTIFIED, "Identify first", NULL);
        return false;
    }
    if (!app_bucket_take(&st->typing, st->gw->cfg->typing_per_second, 1000, pl_mono_ms())) {
        /* Dropped; only a client that asked for an ack hears about it. */
        if (ack)
            app_refuse(s, ack, event, APP_E_RATE_LIMITED, "Too many events: slow down", NULL);
        return false;
    }
    return true;
}

typedef struct {
    app_gateway_t *gw;
    sio_socket_t *s; /* referenced */
    sio_ack_t *ack;  /* taken or NULL */
    bool is_typing;
    char *url;       /* context: the URL, owned */
} room_event_ctx_t;

static void room_event_free(room_event_ctx_t *rc) {
    sio_socket_unref(rc->s);
    free(rc->url);
    free(rc);
}

static json_t *conversation_id_json(int64_t id) {
    return id ? json_integer((json_int_t)id) : json_null();
}

static void emit_typing(room_event_ctx_t *rc) {
    app_sock_t *st = state_of(rc->s);
    if (st && !st->disconnected) {
        char room[64];
        app_room_project(room, sizeof room, st->project_id);
        app_emit_room(rc->gw->nsp, room, "visitorIsTyping",
                      json_pack("{s:o, s:s, s:b}", "conversationId",
                                conversation_id_json(st->conversation_id), "visitorUid", st->uid,
                                "isTyping", rc->is_typing));
    }
    app_ack(rc->ack, json_pack("{s:s}", "status", "ok"));
    room_event_free(rc);
}

static void typing_conversation_cb(void *ud, int status, int64_t conversation_id) {
    room_event_ctx_t *rc = ud;
    app_sock_t *st = state_of(rc->s);
    if (status == 0 && st && conversation_id)
        st->conversation_id = conversation_id;
    emit_typing(rc);
}

static void on_visitor_typing(sio_socket_t *s, const char *event, const sio_args_t *args,
                              sio_ack_t *ack, void *ud) {
    app_gateway_t *gw = ud;
    app_sock_t *st = state_of(s);
    json_t *p = sio_args_get(args, 0);
    char msg[160];
    bool is_typing;
    if (!throttled_visitor_event(s, st, event, ack))
        return;
    if (!json_is_object(p) || app_check_bool(p, "isTyping", &is_typing, msg, sizeof msg)) {
        app_refuse(s, ack, event, APP_E_INVALID, json_is_object(p) ? msg : "Payload must be an object",
                   NULL);
        return;
    }
    room_event_ctx_t *rc = pl_xcalloc(1, sizeof *rc);
    rc->gw = gw;
    rc->s = sio_socket_ref(s);
    rc->ack = ack ? sio_ack_take(ack) : NULL;
    rc->is_typing = is_typing;
    /* The conversation may have been created since identify: look it up once. */
    if (st->conversation_id == 0 &&
        store_visitor_conversation(gw->store, st->project_id, st->uid, st->forever,
                                   typing_conversation_cb, rc) == 0)
        return;
    emit_typing(rc);
}

static void context_store_cb(void *ud, int status, int64_t conversation_id) {
    room_event_ctx_t *rc = ud;
    app_sock_t *st = state_of(rc->s);
    if (status != 0) {
        app_refuse(rc->s, rc->ack, "updateContext", APP_E_UNAVAILABLE, "Store is unavailable",
                   NULL);
        room_event_free(rc);
        return;
    }
    if (st && conversation_id)
        st->conversation_id = conversation_id;
    if (st) {
        char room[64];
        app_room_project(room, sizeof room, st->project_id);
        app_emit_room(rc->gw->nsp, room, "visitorContextUpdated",
                      json_pack("{s:o, s:s, s:s}", "conversationId",
                                conversation_id_json(conversation_id), "visitorUid", st->uid,
                                "currentUrl", rc->url));
    }
    app_ack(rc->ack, json_pack("{s:s}", "status", "ok"));
    room_event_free(rc);
}

static void context_presence_cb(void *ud, int status) {
    room_event_ctx_t *rc = ud;
    app_sock_t *st = state_of(rc->s);
    if (status != 0 || !st ||
        store_visitor_context(rc->gw->store, st->project_id, st->uid, rc->url, pl_wall_ms(),
                              context_store_cb, rc) != 0) {
        app_refuse(rc->s, rc->ack, "updateContext", APP_E_UNAVAILABLE, "Store is unavailable",
                   NULL);
        room_event_free(rc);
    }
}

static void on_update_context(sio_socket_t *s, const char *event, const sio_args_t *args,
                              sio_ack_t *ack, void *ud) {
    app_gateway_t *gw = ud;
    app_sock_t *st = state_of(s);
    json_t *p = sio_args_get(args, 0);
    char msg[160];
    const char *code, *url;
    if (!throttled_visitor_event(s, st, event, ack))
        return;
    if (!json_is_object(p)) {
        app_refuse(s, ack, event, APP_E_INVALID, "Payload must be an object", NULL);
        return;
    }
    if ((code = app_check_string(p, "currentUrl", true, 1, APP_URL_MAX, &url, msg, sizeof msg))) {
        app_refuse(s, ack, event, code, msg, NULL);
        return;
    }
    room_event_ctx_t *rc = pl_xcalloc(1, sizeof *rc);
    rc->gw = gw;
    rc->s = sio_socket_ref(s);
    rc->ack = ack ? sio_ack_take(ack) : NULL;
    rc->url = pl_xstrdup(url);
    if (presence_set_url(gw->presence, st->project_id, st->uid, url, context_presence_cb, rc) !=
        0) {
        app_refuse(s, rc->ack, event, APP_E_UNAVAILABLE, "Presence is unavailable", NULL);
        rc->ack = NULL;
        room_event_free(rc);
    }
}

/* ---- agent rooms (PROTOCOL.md section 4) ------------------------------------------------------- */

typedef struct {
    sio_socket_t *s; /* referenced */
    sio_ack_t *ack;  /* taken or NULL */
    int64_t project_id;
} join_ctx_t;

static void join_role_cb(void *ud, int status, const char *role) {
    join_ctx_t *jc = ud;
    (void)role;
    char room[64];
    app_room_project(room, sizeof room, jc->project_id);
    if (status == STORE_ENOTFOUND) {
        app_refuse(jc->s, jc->ack, "joinProjectRoom", APP_E_FORBIDDEN,
                   "Forbidden: You are not a member of this project.", NULL);
    } else if (status != 0) {
        app_refuse(jc->s, jc->ack, "joinProjectRoom", APP_E_UNAVAILABLE, "Store is unavailable",
                   NULL);
    } else if (sio_socket_join(jc->s, room) != 0) {
        app_refuse(jc->s, jc->ack, "joinProjectRoom", APP_E_UNAVAILABLE, "Cannot join the room",
                   NULL);
    } else {
        app_ack(jc->ack, json_pack("{s:s, s:s}", "status", "ok", "roomName", room));
    }
    sio_socket_unref(jc->s);
    free(jc);
}

static bool agent_project_payload(sio_socket_t *s, app_sock_t *st, const char *event,
                                  const sio_args_t *args, sio_ack_t *ack, int64_t *project_id) {
    json_t *p = sio_args_get(args, 0);
    char msg[160];
    if (!st || st->role != APP_ROLE_AGENT) {
        app_refuse(s, ack, event, APP_E_FORBIDDEN, "Only agents join project rooms", NULL);
        return false;
    }
    if (!json_is_object(p)) {
        app_refuse(s, ack, event, APP_E_INVALID, "Payload must be an object", NULL);
        return false;
    }
    const char *code = app_check_int(p, "projectId", 1, JS_MAX_SAFE_INT, project_id, msg,
                                     sizeof msg);
    if (code) {
        app_refuse(s, ack, event, code, msg, NULL);
        return false;
    }
    return true;
}

static void on_join_project_room(sio_socket_t *s, const char *event, const sio_args_t *args,
                                 sio_ack_t *ack, void *ud) {
    app_gateway_t *gw = ud;
    app_sock_t *st = state_of(s);
    int64_t project_id;
    if (!agent_project_payload(s, st, event, args, ack, &project_id))
        return;
    join_ctx_t *jc = pl_xcalloc(1, sizeof *jc);
    jc->s = sio_socket_ref(s);
    jc->ack = ack ? sio_ack_take(ack) : NULL;
    jc->project_id = project_id;
    if (store_member_role(gw->store, project_id, st->user_id, join_role_cb, jc) != 0)
        join_role_cb(jc, PL_EUNAVAIL, NULL);
}

static void on_leave_project_room(sio_socket_t *s, const char *event, const sio_args_t *args,
                                  sio_ack_t *ack, void *ud) {
    app_sock_t *st = state_of(s);
    int64_t project_id;
    (void)ud;
    if (!agent_project_payload(s, st, event, args, ack, &project_id))
        return;
    char room[64];
    app_room_project(room, sizeof room, project_id);
    sio_socket_leave(s, room);
    if (ack)
        app_ack(ack, json_pack("{s:s, s:s}", "status", "ok", "roomName", room));
}

static void on_unknown_event(sio_socket_t *s, const char *event, const sio_args_t *args,
                             sio_ack_t *ack, void *ud) {
    (void)args;
    (void)ud;
    app_refuse(s, ack, event, APP_E_INVALID, "Unknown event", NULL);
}

/* A well-framed event whose arguments broke a JSON rule (NUL, lone surrogate, duplicate key,
 * depth, a number past 2^53): refused like any bad payload, and the connection stays. */
static void on_invalid_event(sio_socket_t *s, const char *event, const char *reason,
                             sio_ack_t *ack, void *ud) {
    (void)ud;
    char msg[160];
    snprintf(msg, sizeof msg, "Payload is not acceptable JSON: %s", reason ? reason : "invalid");
    app_refuse(s, ack, event, APP_E_INVALID, msg, NULL);
}

/* ---- disconnect ---------------------------------------------------------------------------------- */

typedef struct {
    app_gateway_t *gw;
    int64_t project_id;
    char uid[APP_UID_MAX + 1];
} detach_ctx_t;

static void detach_cb(void *ud, int status, bool still_online) {
    detach_ctx_t *dc = ud;
    if (status == 0 && !still_online && !dc->gw->closing) {
        char room[64];
        app_room_project(room, sizeof room, dc->project_id);
        app_emit_room(dc->gw->nsp, room, "visitorStatusChanged",
                      json_pack("{s:s, s:I, s:b}", "visitorUid", dc->uid, "projectId",
                                (json_int_t)dc->project_id, "isOnline", 0));
    }
    free(dc);
}

static void on_disconnect(sio_socket_t *s, const char *reason, void *ud) {
    app_gateway_t *gw = ud;
    app_sock_t *st = state_of(s);
    if (!st)
        return;
    st->disconnected = true;
    ip_release(gw, st);
    pl_log_debug("gateway.disconnect", "socket=%s reason=\"%s\"", sio_socket_id(s), reason);
    if (st->role != APP_ROLE_VISITOR || !st->uid[0])
        return;
    /* Compare-and-delete of session:visitor:<uid>; offline only when the last socket left. */
    detach_ctx_t *dc = pl_xcalloc(1, sizeof *dc);
    dc->gw = gw;
    dc->project_id = st->project_id;
    snprintf(dc->uid, sizeof dc->uid, "%s", st->uid);
    if (presence_detach(gw->presence, st->project_id, st->uid, sio_socket_id(s), detach_cb, dc) !=
        0)
        free(dc);
}

/* ---- CORS for the polling transport ----------------------------------------------------------------
 * Polling requests from the widget are cross-origin XHRs: they get Access-Control-Allow-Origin
 * only for origins whose hostname some project whitelists (refreshed every few seconds). The
 * real check is still the per-project Origin rule at CONNECT. */

static void cors_free(app_gateway_t *gw) {
    for (size_t i = 0; i < gw->ncors_domains; i++)
        free(gw->cors_domains[i]);
    free(gw->cors_domains);
    gw->cors_domains = NULL;
    gw->ncors_domains = 0;
}

static void cors_loaded_cb(void *ud, int status, const store_project_t *ps, size_t n) {
    app_gateway_t *gw = ud;
    gw->cors_loading = false;
    if (status != 0 || gw->closing)
        return;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += ps[i].ndomains;
    char **list = calloc(total ? total : 1, sizeof *list);
    if (!list)
        return;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t d = 0; d < ps[i].ndomains; d++)
            list[k++] = pl_xstrdup(ps[i].domains[d]);
    cors_free(gw);
    gw->cors_domains = list;
    gw->ncors_domains = k;
}

static void cors_refresh(app_gateway_t *gw) {
    if (gw->cors_loading || gw->closing)
        return;
    if (store_project_list(gw->store, cors_loaded_cb, gw) == 0)
        gw->cors_loading = true;
}

static bool cors_allow(const pl_slice_t *origin, void *ud) {
    app_gateway_t *gw = ud;
    char host[APP_HOST_MAX];
    return origin && app_origin_hostname(*origin, host) &&
           app_origin_host_allowed(host, gw->cors_domains, gw->ncors_domains);
}

/* ---- housekeeping --------------------------------------------------------------------------------- */

static bool limit_idle(void *value, void *ud) {
    const app_visitor_limit_t *e = value;
    return *(const uint64_t *)ud - e->last_ms > LIMIT_IDLE_MS;
}

static void limit_release(void *value) {
    app_visitor_limit_t *e = value;
    free(e->key);
    free(e);
}

static bool ip_idle(void *value, void *ud) {
    const app_ip_t *e = value;
    return e->sockets == 0 && *(const uint64_t *)ud - e->last_ms > 2000;
}

static void ip_release_entry(void *value) {
    app_ip_t *e = value;
    free(e->key);
    free(e);
}

static void sweep_cb(uv_timer_t *t) {
    app_gateway_t *gw = t->data;
    uint64_t now = pl_mono_ms();
    app__inbox_expire(gw, now);
    if (++gw->sweeps % 5 == 0)
        cors_refresh(gw);
    app__inbox_tick(gw, gw->sweeps);
    /* Idle rate-limit entries and per-address entries with no socket. */
    pl_map_remove_if(&gw->limits, limit_idle, limit_release, &now);
    pl_map_remove_if(&gw->ips, ip_idle, ip_release_entry, &now);
}

app_gateway_t *app_gateway_new(uv_loop_t *loop, const pl_config_t *cfg, store_t *store,
                               presence_t *presence, queue_t *queue, sio_server_t *sio,
                               const char *jwt_secret) {
    app_gateway_t *gw = pl_xcalloc(1, sizeof *gw);
    gw->loop = loop;
    gw->cfg = cfg;
    gw->store = store;
    gw->presence = presence;
    gw->queue = queue;
    gw->sio = sio;
    gw->jwt_secret = pl_xstrdup(jwt_secret);
    pl_map_init(&gw->ips);
    pl_map_init(&gw->limits);
    pl_map_init(&gw->pending);
    gw->nsp = sio_server_of(sio, "/");
    sio_nsp_use(gw->nsp, validate_connection, gw);
    sio_nsp_on_data_free(gw->nsp, state_free);
    sio_nsp_on(gw->nsp, "identify", on_identify, gw);
    sio_nsp_on(gw->nsp, "sendMessage", on_send_message, gw);
    sio_nsp_on(gw->nsp, "visitorIsTyping", on_visitor_typing, gw);
    sio_nsp_on(gw->nsp, "updateContext", on_update_context, gw);
    sio_nsp_on(gw->nsp, "joinProjectRoom", on_join_project_room, gw);
    sio_nsp_on(gw->nsp, "leaveProjectRoom", on_leave_project_room, gw);
    sio_nsp_on_any(gw->nsp, on_unknown_event, gw);
    sio_nsp_on_invalid(gw->nsp, on_invalid_event, gw);
    sio_nsp_on_disconnect(gw->nsp, on_disconnect, gw);
    uv_timer_init(loop, &gw->sweep);
    gw->sweep.data = gw;
    uv_timer_start(&gw->sweep, sweep_cb, SWEEP_MS, SWEEP_MS);
    uv_unref((uv_handle_t *)&gw->sweep);
    eio_server_cors(sio_server_engine(sio), cors_allow, gw);
    cors_refresh(gw);
    return gw;
}

void app_gateway_start(app_gateway_t *gw, bus_redis_t *bus, bool worker) {
    gw->bus = bus;
    gw->worker = worker;
    app__inbox_start(gw);
}

void app_gateway_visitor_offline(app_gateway_t *gw, int64_t project_id, const char *uid) {
    if (gw->closing)
        return;
    char room[64];
    app_room_project(room, sizeof room, project_id);
    app_emit_room(gw->nsp, room, "visitorStatusChanged",
                  json_pack("{s:s, s:I, s:b}", "visitorUid", uid, "projectId",
                            (json_int_t)project_id, "isOnline", 0));
}

void app_gateway_drain(app_gateway_t *gw) {
    gw->draining = true;
}

void app_gateway_stop(app_gateway_t *gw) {
    gw->draining = true;
    gw->closing = true;
}

static void sweep_closed_cb(uv_handle_t *h) {
    app_gateway_t *gw = h->data;
    free(gw);
}

static void free_map(pl_map_t *m, size_t key_offset) {
    size_t it = 0;
    const pl_map_slot_t *slot;
    while (pl_map_next(m, &it, &slot)) {
        char **key = (char **)(void *)((char *)slot->value + key_offset);
        free(*key);
        free(slot->value);
    }
    pl_map_dispose(m);
}

void app_gateway_free(app_gateway_t *gw) {
    if (!gw)
        return;
    app__inbox_clear(gw);
    free_map(&gw->ips, offsetof(app_ip_t, key));
    free_map(&gw->limits, offsetof(app_visitor_limit_t, key));
    pl_map_dispose(&gw->pending);
    free(gw->ob_ids);
    cors_free(gw);
    free(gw->jwt_secret);
    uv_close((uv_handle_t *)&gw->sweep, sweep_closed_cb);
}
