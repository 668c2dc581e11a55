/* Validation of client event payloads and the refusal replies of PROTOCOL.md section 5, plus
 * the JSON shapes of section 8. Payloads arrive already parsed with the JSON limits of
 * core/json.h (depth, NUL, duplicate keys, 2^53); what is checked here is the shape of each
 * event's object: field types, lengths in characters, patterns. Loop thread. */
#ifndef APP_PAYLOAD_H
#define APP_PAYLOAD_H

#include "sio/server.h"
#include "store/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Refusal codes (section 5). */
#define APP_E_INVALID "invalid_payload"
#define APP_E_NOT_IDENTIFIED "not_identified"
#define APP_E_FORBIDDEN "forbidden"
#define APP_E_RATE_LIMITED "rate_limited"
#define APP_E_TOO_LARGE "too_large"
#define APP_E_UNAVAILABLE "unavailable"

/* Refuses a client event: answers ack (if the client asked for one; ack may be a taken handle,
 * which is consumed) with [{"error":{"code","message"}}], otherwise emits `exception`
 * {status:"error", code, message, event, tempId?} to s. temp_id may be NULL. */
void app_refuse(sio_socket_t *s, sio_ack_t *ack, const char *event, const char *code,
                const char *message, const char *temp_id);

/* Emits event with one payload argument (reference stolen) to s. */
int app_emit(sio_socket_t *s, const char *event, json_t *payload);
/* Emits event with one payload argument (reference stolen) to a room of nsp. */
int app_emit_room(sio_nsp_t *nsp, const char *room, const char *event, json_t *payload);
/* Answers an ack with one payload argument (reference stolen); ack may be NULL (no-op). */
void app_ack(sio_ack_t *ack, json_t *payload);
/* The same with the arguments already encoded: json is the text of their array ("[...]"),
 * borrowed; one encoding serves an event and an ack. */
int app_emit_room_raw(sio_nsp_t *nsp, const char *room, const char *event, const char *json,
                      size_t len);
void app_ack_raw(sio_ack_t *ack, const char *json, size_t len);

/* Number of Unicode code points of a valid UTF-8 string. */
size_t app_utf8_chars(const char *s, size_t len);

/* Field checks. Each returns NULL when the field is fine, else the refusal code, and writes
 * a human message into msg (n bytes). */
const char *app_check_string(json_t *obj, const char *key, bool required, size_t min_chars,
                             size_t max_chars, const char **out, char *msg, size_t n);
const char *app_check_int(json_t *obj, const char *key, int64_t min, int64_t max, int64_t *out,
                          char *msg, size_t n);
const char *app_check_bool(json_t *obj, const char *key, bool *out, char *msg, size_t n);
/* True if s matches [A-Za-z0-9_-]{min,max}. */
bool app_is_token(const char *s, size_t min, size_t max);

/* Section 8 shapes (new references). */
json_t *app_widget_message_json(const store_message_t *m);
json_t *app_message_json(const store_message_t *m);
/* app_widget_message_json written as JSON text onto out (byte for byte what dumping it gives),
 * without building it. 0 or out's error. */
int app_message_text(const store_message_t *m, pl_buf_t *out);
/* What the agents' view adds after the widget's fields: `,"visitorId":N,"userId":N|null`
 * (app_message_json = app_widget_message_json + these, in this order). */
int app_message_agent_fields(const store_message_t *m, pl_buf_t *out);

#endif
