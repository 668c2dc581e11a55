/* Shared plumbing of the agents' HTTP API: body parsing, bearer authentication, project
 * membership, answers and JSON shapes. See api.h. */
#include "app/api.h"

#include "app/jwt.h"
#include "app/settings.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define JS_MAX_SAFE_INT 9007199254740991ULL

bool api_parse_id(pl_slice_t s, int64_t *id) {
    uint64_t v;
    if (!s.ptr || !pl_slice_to_u64(s, JS_MAX_SAFE_INT, &v) || v == 0 || s.ptr[0] == '0')
        return false;
    *id = (int64_t)v;
    return true;
}

void api_free(api_call_t *c) {
    json_decref(c->body);
    free(c);
}

void api_json(api_call_t *c, int status, json_t *body) {
    http_response_header(c->req, "Cache-Control", "no-store");
    http_respond_json(c->req, status, body);
    api_free(c);
}

void api_error(api_call_t *c, int status, const char *message) {
    http_respond_error(c->req, status, message);
    api_free(c);
}

void api_status(api_call_t *c, int status) {
    http_respond(c->req, status, NULL, NULL, 0);
    api_free(c);
}

void api_store_error(api_call_t *c, int status, const char *not_found_message) {
    if (status == STORE_ENOTFOUND)
        api_error(c, 404, not_found_message);
    else if (status == PL_EINVAL)
        api_error(c, 400, "Invalid value");
    else if (status == STORE_ECONFLICT)
        api_error(c, 409, "Conflict");
    else
        api_error(c, 503, "Service unavailable");
}

/* ---- membership ------------------------------------------------------------------------------ */

static void member_cb(void *ud, int status, const store_project_t *p) {
    api_call_t *c = ud;
    if (status != 0) {
        api_store_error(c, status, "Project not found");
        return;
    }
    if (!p->role) {
        api_error(c, 403, "Forbidden: You are not a member of this project.");
        return;
    }
    snprintf(c->role, sizeof c->role, "%s", p->role);
    if ((c->flags & API_MANAGER) && strcmp(p->role, "manager") != 0) {
        api_error(c, 403, "Forbidden: Only managers can change this project.");
        return;
    }
    c->next(c);
}

static void authorized(api_call_t *c) {
    if (c->flags & (API_MEMBER | API_MANAGER)) {
        if (store_project_of_member(c->app->store, c->project_id, c->user_id, member_cb, c) != 0)
            api_error(c, 503, "Service unavailable");
        return;
    }
    c->next(c);
}

/* ---- bearer authentication ------------------------------------------------------------------- */

typedef struct {
    api_call_t *c;
    int64_t issued_ms;
} auth_ctx_t;

static void user_cb(void *ud, int status, const store_user_t *u) {
    auth_ctx_t *a = ud;
    api_call_t *c = a->c;
    int64_t issued = a->issued_ms;
    free(a);
    if (status == STORE_ENOTFOUND) {
        api_error(c, 401, "User not found");
        return;
    }
    if (status != 0) {
        api_error(c, 503, "Service unavailable");
        return;
    }
    if (issued < u->tokens_valid_from) {
        api_error(c, 401, "Token revoked");
        return;
    }
    c->user_id = u->id;
    snprintf(c->email, sizeof c->email, "%s", u->email);
    snprintf(c->full_name, sizeof c->full_name, "%s", u->full_name ? u->full_name : "");
    authorized(c);
}

static void authenticate(api_call_t *c) {
    const pl_slice_t *h = http_request_header(c->req, "authorization");
    if (!h || h->len < 8 || strncasecmp(h->ptr, "Bearer ", 7) != 0) {
        http_response_header(c->req, "WWW-Authenticate", "Bearer");
        api_error(c, 401, "Missing bearer token");
        return;
    }
    app_jwt_claims_t claims;
    if (app_jwt_verify(h->ptr + 7, h->len - 7, c->app->jwt_secret, pl_wall_ms() / 1000,
                       &claims) != 0) {
        http_response_header(c->req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        api_error(c, 401, "Invalid or expired token");
        return;
    }
    auth_ctx_t *a = pl_xmalloc(sizeof *a);
    a->c = c;
    a->issued_ms = claims.iat_ms ? claims.iat_ms : claims.iat * 1000;
    if (store_user_get(c->app->store, claims.sub, user_cb, a) != 0) {
        free(a);
        api_error(c, 503, "Service unavailable");
    }
}

/* ---- begin ------------------------------------------------------------------------------------- */

/* When a body failed only because of a number beyond 2^53, the top-level field holding it
 * (malloc'd), so the 400 can name the field; NULL otherwise. */
static const char *out_of_range_field(const char *p, size_t len) {
    if (!p || len == 0)
        return NULL;
    json_t *j = json_loadb(p, len, JSON_DECODE_INT_AS_REAL | JSON_REJECT_DUPLICATES, NULL);
    const char *found = NULL;
    if (json_is_object(j)) {
        const char *key;
        json_t *v;
        json_object_foreach(j, key, v) {
            if (json_is_number(v) && (json_number_value(v) > 9007199254740991.0 ||
                                      json_number_value(v) < -9007199254740991.0)) {
                found = pl_xstrdup(key);
                break;
            }
        }
    }
    json_decref(j);
    return found;
}

static bool is_json_type(const pl_slice_t *ct) {
    if (!ct)
        return false;
    static const char want[] = "application/json";
    size_t n = sizeof want - 1;
    if (ct->len < n || strncasecmp(ct->ptr, want, n) != 0)
        return false;
    return ct->len == n || ct->ptr[n] == ';' || ct->ptr[n] == ' ';
}

void api_begin(app_t *app, http_request_t *req, unsigned flags, const char *project_param,
               const char *id_param, api_step_fn next) {
    api_call_t *c = pl_xcalloc(1, sizeof *c);
    c->app = app;
    c->req = req;
    c->flags = flags;
    c->next = next;
    if (project_param && !api_parse_id(http_request_param(req, project_param), &c->project_id)) {
        api_error(c, 404, "Project not found");
        return;
    }
    if (id_param && !api_parse_id(http_request_param(req, id_param), &c->id)) {
        api_error(c, 404, "Not found");
        return;
    }
    if (flags & API_BODY) {
        if (!is_json_type(http_request_header(req, "content-type"))) {
            api_error(c, 415, "Content-Type must be application/json");
            return;
        }
        char err[128];
        c->body = pl_json_parse(req->body.data ? req->body.data : "", req->body.len, NULL, err,
                                sizeof err);
        if (!c->body) {
            char msg[300];
            const char *field = out_of_range_field(req->body.data, req->body.len);
            if (field)
                snprintf(msg, sizeof msg, "%s: number out of range", field);
            else
                snprintf(msg, sizeof msg, "Body is not acceptable JSON: %s", err);
            free((void *)field);
            api_error(c, 400, msg);
            return;
        }
        if (!json_is_object(c->body)) {
            api_error(c, 400, "Body must be a JSON object");
            return;
        }
    }
    if (flags & API_AUTH)
        authenticate(c);
    else
        next(c);
}

/* ---- JSON shapes ------------------------------------------------------------------------------- */

static json_t *iso(int64_t ms) {
    char ts[PL_ISO8601_LEN];
    return json_string(pl_iso8601(ms, ts));
}

static json_t *str_or_null(const char *s) {
    return s ? json_string(s) : json_null();
}

static json_t *json_text_or_null(const char *text) {
    json_t *j = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    return j ? j : json_null();
}

json_t *api_user_json(int64_t id, const char *email, const char *full_name, int64_t created_at) {
    json_t *j = json_pack("{s:I, s:s, s:s}", "id", (json_int_t)id, "email", email, "fullName",
                          full_name ? full_name : "");
    if (created_at)
        json_object_set_new(j, "createdAt", iso(created_at));
    return j;
}

json_t *api_project_json(const store_project_t *p) {
    json_t *doms = json_array();
    for (size_t i = 0; i < p->ndomains; i++)
        json_array_append_new(doms, json_string(p->domains[i]));
    json_t *j = json_pack("{s:I, s:s, s:o, s:o, s:o, s:o}", "id", (json_int_t)p->id, "name",
                          p->name, "whitelistedDomains", doms, "widgetSettings",
                          app_widget_settings_public(p->widget_settings_json), "createdAt",
                          iso(p->created_at), "updatedAt", iso(p->updated_at));
    json_object_set_new(j, "role", str_or_null(p->role));
    return j;
}

json_t *api_visitor_json(const store_visitor_t *v, int online) {
    json_t *j = json_pack("{s:I, s:s, s:o, s:o, s:o}", "id", (json_int_t)v->id, "uid",
                          v->uid ? v->uid : "", "name", str_or_null(v->name), "email",
                          str_or_null(v->email), "currentUrl", str_or_null(v->current_url));
    if (v->last_seen_at)
        json_object_set_new(j, "lastSeenAt", iso(v->last_seen_at));
    if (v->created_at)
        json_object_set_new(j, "createdAt", iso(v->created_at));
    if (online >= 0)
        json_object_set_new(j, "isOnline", json_boolean(online));
    return j;
}

json_t *api_conversation_json(const store_conversation_t *c, int online) {
    json_t *j = json_pack("{s:I, s:I, s:I, s:o, s:o, s:o, s:s, s:I, s:o, s:o, s:o}", "id",
                          (json_int_t)c->id, "projectId", (json_int_t)c->project_id,
                          "visitorId", (json_int_t)c->visitor_id, "assigneeId",
                          c->assignee_id ? json_integer((json_int_t)c->assignee_id) : json_null(),
                          "lastMessageSnippet", str_or_null(c->last_message_snippet),
                          "lastMessageTimestamp",
                          c->last_message_timestamp ? iso(c->last_message_timestamp) : json_null(),
                          "status", c->status ? c->status : "open", "unreadCount",
                          (json_int_t)c->unread_count, "createdAt", iso(c->created_at),
                          "updatedAt", iso(c->updated_at), "metadata",
                          json_text_or_null(c->metadata_json));
    if (c->visitor.id)
        json_object_set_new(j, "visitor", api_visitor_json(&c->visitor, online));
    return j;
}
