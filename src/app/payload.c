/* Event payload checks, refusals and the JSON shapes of PROTOCOL.md section 8: see payload.h. */
#include "app/payload.h"

#include "core/json.h"

#include "core/clock.h"
#include "core/log.h"

#include <stdio.h>
#include <string.h>

static json_t *one_arg(json_t *payload) {
    json_t *a = json_array();
    json_array_append_new(a, payload);
    return a;
}

int app_emit(sio_socket_t *s, const char *event, json_t *payload) {
    sio_args_t args = {.args = one_arg(payload)};
    int rc = sio_socket_emit(s, event, &args);
    json_decref(args.args);
    return rc;
}

int app_emit_room(sio_nsp_t *nsp, const char *room, const char *event, json_t *payload) {
    const char *rooms[1] = {room};
    sio_target_t to = {.rooms = rooms, .nrooms = 1};
    sio_args_t args = {.args = one_arg(payload)};
    int rc = sio_nsp_emit(nsp, &to, event, &args);
    json_decref(args.args);
    return rc;
}

int app_emit_room_raw(sio_nsp_t *nsp, const char *room, const char *event, const char *json,
                      size_t len) {
    const char *rooms[1] = {room};
    sio_target_t to = {.rooms = rooms, .nrooms = 1};
    sio_args_t args = {.json = json, .json_len = len};
    return sio_nsp_emit(nsp, &to, event, &args);
}

void app_ack_raw(sio_ack_t *ack, const char *json, size_t len) {
    sio_args_t args = {.json = json, .json_len = len};
    sio_ack_send(ack, &args);
}

void app_ack(sio_ack_t *ack, json_t *payload) {
    if (!ack) {
        json_decref(payload);
        return;
    }
    sio_args_t args = {.args = one_arg(payload)};
    sio_ack_send(ack, &args);
    json_decref(args.args);
}

void app_refuse(sio_socket_t *s, sio_ack_t *ack, const char *event, const char *code,
                const char *message, const char *temp_id) {
    pl_log_debug("app.refused", "socket=%s event=%s code=%s", sio_socket_id(s), event, code);
    if (ack) {
        app_ack(ack, json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message));
        return;
    }
    json_t *ex = json_pack("{s:s, s:s, s:s, s:s}", "status", "error", "code", code, "message",
                           message, "event", event);
    if (temp_id)
        json_object_set_new(ex, "tempId", json_string(temp_id));
    app_emit(s, "exception", ex);
}

size_t app_utf8_chars(const char *s, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

const char *app_check_string(json_t *obj, const char *key, bool required, size_t min_chars,
                             size_t max_chars, const char **out, char *msg, size_t n) {
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (!required)
            return NULL;
        snprintf(msg, n, "%s is required", key);
        return APP_E_INVALID;
    }
    if (!json_is_string(v)) {
        snprintf(msg, n, "%s must be a string", key);
        return APP_E_INVALID;
    }
    const char *s = json_string_value(v);
    size_t bytes = json_string_length(v);
    if (memchr(s, '\0', bytes)) {
        snprintf(msg, n, "%s must not contain NUL characters", key);
        return APP_E_INVALID;
    }
    size_t chars = app_utf8_chars(s, bytes);
    if (chars > max_chars) {
        snprintf(msg, n, "%s must be at most %zu characters", key, max_chars);
        return APP_E_TOO_LARGE;
    }
    if (chars < min_chars) {
        snprintf(msg, n, "%s must be at least %zu characters", key, min_chars);
        return APP_E_INVALID;
    }
    *out = s;
    return NULL;
}

const char *app_check_int(json_t *obj, const char *key, int64_t min, int64_t max, int64_t *out,
                          char *msg, size_t n) {
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        snprintf(msg, n, "%s must be an integer from %lld to %lld", key, (long long)min,
                 (long long)max);
        return APP_E_INVALID;
    }
    *out = (int64_t)json_integer_value(v);
    return NULL;
}

const char *app_check_bool(json_t *obj, const char *key, bool *out, char *msg, size_t n) {
    json_t *v = json_object_get(obj, key);
    if (!json_is_boolean(v)) {
        snprintf(msg, n, "%s must be true or false", key);
        return APP_E_INVALID;
    }
    *out = json_is_true(v);
    return NULL;
}

bool app_is_token(const char *s, size_t min, size_t max) {
    size_t i = 0;
    for (; s[i]; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        if (!ok || i >= max)
            return false;
    }
    return i >= min;
}

static json_t *opt_json_text(const char *text) {
    if (!text)
        return json_null();
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    return j ? j : json_null();
}

json_t *app_widget_message_json(const store_message_t *m) {
    char ts[PL_ISO8601_LEN];
    json_t *j = json_pack("{s:I, s:I, s:s, s:s, s:b, s:s, s:s}", "id", (json_int_t)m->id,
                          "conversationId", (json_int_t)m->conversation_id, "content",
                          m->content ? m->content : "", "senderId",
                          m->sender_id ? m->sender_id : "", "fromCustomer", m->from_customer,
                          "status", m->status ? m->status : "sent", "createdAt",
                          pl_iso8601(m->created_at, ts));
    if (m->content_type)
        json_object_set_new(j, "contentType", json_string(m->content_type));
    if (m->metadata_json)
        json_object_set_new(j, "metadata", opt_json_text(m->metadata_json));
    return j;
}

int app_message_agent_fields(const store_message_t *m, pl_buf_t *out) {
    int rc = pl_buf_append(out, ",\"visitorId\":", 13);
    if (rc == 0)
        rc = pl_buf_append_i64(out, m->visitor_id);
    if (rc == 0)
        rc = pl_buf_append(out, ",\"userId\":", 10);
    if (rc == 0)
        rc = m->user_id ? pl_buf_append_i64(out, m->user_id) : pl_buf_append(out, "null", 4);
    return rc;
}

int app_message_text(const store_message_t *m, pl_buf_t *out) {
    if (m->content_type || m->metadata_json) { /* rare: the general path */
        json_t *j = app_widget_message_json(m);
        int rc = j ? pl_json_dump(j, out) : PL_ENOMEM;
        json_decref(j);
        return rc;
    }
    char ts[PL_ISO8601_LEN];
    const char *content = m->content ? m->content : "";
    const char *sender = m->sender_id ? m->sender_id : "";
    int rc = pl_buf_append(out, "{\"id\":", 6);
    if (rc == 0)
        rc = pl_buf_append_i64(out, m->id);
    if (rc == 0)
        rc = pl_buf_append(out, ",\"conversationId\":", 18);
    if (rc == 0)
        rc = pl_buf_append_i64(out, m->conversation_id);
    if (rc == 0)
        rc = pl_buf_append(out, ",\"content\":", 11);
    if (rc == 0)
        rc = pl_json_dump_string(content, strlen(content), out);
    if (rc == 0)
        rc = pl_buf_append(out, ",\"senderId\":", 12);
    if (rc == 0)
        rc = pl_json_dump_string(sender, strlen(sender), out);
    if (rc == 0)
        rc = m->from_customer ? pl_buf_append_cstr(out, ",\"fromCustomer\":true,\"status\":")
                              : pl_buf_append_cstr(out, ",\"fromCustomer\":false,\"status\":");
    if (rc == 0) {
        const char *st = m->status ? m->status : "sent";
        rc = pl_json_dump_string(st, strlen(st), out);
    }
    if (rc == 0)
        rc = pl_buf_append(out, ",\"createdAt\":\"", 14);
    if (rc == 0)
        rc = pl_buf_append_cstr(out, pl_iso8601(m->created_at, ts));
    if (rc == 0)
        rc = pl_buf_append(out, "\"", 1);
    if (rc == 0)
        rc = pl_buf_append(out, "}", 1);
    return rc;
}

json_t *app_message_json(const store_message_t *m) {
    json_t *j = app_widget_message_json(m);
    json_object_set_new(j, "visitorId", json_integer((json_int_t)m->visitor_id));
    json_object_set_new(j, "userId",
                        m->user_id ? json_integer((json_int_t)m->user_id) : json_null());
    return j;
}
