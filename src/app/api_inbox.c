/* The inbox (docs/http-api.md "Inbox"): conversations of a project with their visitors and
 * online status, messages with cursor pagination, agent replies (persisted, then
 * `agentReplied` to every socket of the visitor and `newMessage` to the project room), status
 * and read changes, typing, assignments, deletion, visitors. Every id is looked up within the
 * caller's project, so another project's ids are simply not found. */
#include "app/api.h"

#include "app/gateway.h"
#include "app/payload.h"
#include "core/clock.h"
#include "http/query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_MAX 100

/* ---- events ------------------------------------------------------------------------------------ */

static void emit_project(app_t *app, int64_t project_id, const char *event, json_t *payload) {
    if (!app->nsp) {
        json_decref(payload);
        return;
    }
    char room[64];
    app_room_project(room, sizeof room, project_id);
    app_emit_room(app->nsp, room, event, payload);
}

static void emit_visitor(app_t *app, int64_t project_id, const char *uid, const char *event,
                         json_t *payload) {
    if (!app->nsp || !uid) {
        json_decref(payload);
        return;
    }
    char room[96];
    app_room_visitor(room, sizeof room, project_id, uid);
    app_emit_room(app->nsp, room, event, payload);
}

/* ---- query parameters ------------------------------------------------------------------------- */

/* Reads an integer query parameter in [min, max]; absent → def. false (and 400 sent) when bad. */
static bool query_int(api_call_t *c, const char *key, int64_t min, int64_t max, int64_t def,
                      int64_t *out) {
    pl_buf_t b;
    pl_buf_init(&b, 64);
    int found = http_query_get(c->req->query, key, &b);
    uint64_t v;
    bool ok = true;
    if (found == 0) {
        *out = def;
    } else if (found < 0 || !pl_slice_to_u64(pl_slice(b.data, b.len), (uint64_t)max, &v) ||
               (int64_t)v < min) {
        ok = false;
    } else {
        *out = (int64_t)v;
    }
    pl_buf_dispose(&b);
    if (!ok) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s: must be a whole number from %lld to %lld", key,
                 (long long)min, (long long)max);
        api_error(c, 400, msg);
    }
    return ok;
}

static int status_bit(const char *s, size_t n) {
    static const char *names[] = {"open", "pending", "solved", "spam"};
    for (int i = 0; i < 4; i++)
        if (strlen(names[i]) == n && !strncmp(names[i], s, n))
            return 1 << i;
    return 0;
}

/* ---- conversations ------------------------------------------------------------------------------ */

typedef struct {
    json_t *list;       /* conversations built so far */
    const char **uids;  /* their visitors' uids (borrowed from list's JSON) */
    size_t n;
    int64_t total, page, limit;
    bool single;        /* one conversation (GET /:id): answer the object */
} conv_list_t;

static void conv_online_cb(void *ud, int status, const bool *online, size_t n) {
    api_call_t *c = ud;
    conv_list_t *l = c->data;
    c->data = NULL;
    for (size_t i = 0; i < l->n && i < n; i++) {
        json_t *v = json_object_get(json_array_get(l->list, i), "visitor");
        if (v)
            json_object_set_new(v, "isOnline", json_boolean(status == 0 && online[i]));
    }
    json_t *body;
    if (l->single) {
        body = json_incref(json_array_get(l->list, 0));
        json_decref(l->list);
    } else {
        body = json_pack("{s:o, s:I, s:I, s:I}", "data", l->list, "total", (json_int_t)l->total,
                         "page", (json_int_t)l->page, "limit", (json_int_t)l->limit);
    }
    free(l->uids);
    free(l);
    api_json(c, 200, body);
}

/* Builds the answer for conversations cs, then asks presence for their visitors. */
static void answer_conversations(api_call_t *c, const store_conversation_t *cs, size_t n,
                                 int64_t total, int64_t page, int64_t limit, bool single) {
    conv_list_t *l = pl_xcalloc(1, sizeof *l);
    l->list = json_array();
    l->uids = pl_xcalloc(n ? n : 1, sizeof *l->uids);
    l->n = n;
    l->total = total;
    l->page = page;
    l->limit = limit;
    l->single = single;
    for (size_t i = 0; i < n; i++) {
        json_t *j = api_conversation_json(&cs[i], 0);
        json_array_append_new(l->list, j);
        json_t *uid = json_object_get(json_object_get(j, "visitor"), "uid");
        l->uids[i] = json_is_string(uid) ? json_string_value(uid) : "";
    }
    c->data = l;
    if (n == 0 || presence_online(c->app->presence, c->project_id, l->uids, n, conv_online_cb,
                                  c) != 0)
        conv_online_cb(c, n == 0 ? 0 : PL_EUNAVAIL, NULL, 0);
}

static void conv_list_cb(void *ud, int status, const store_conversation_t *cs, size_t n,
                         int64_t total) {
    api_call_t *c = ud;
    int64_t *pl = c->data;
    int64_t page = pl[0], limit = pl[1];
    free(pl);
    c->data = NULL;
    if (status != 0) {
        api_store_error(c, status, "Project not found");
        return;
    }
    answer_conversations(c, cs, n, total, page, limit, false);
}

static void do_conversations(api_call_t *c) {
    int64_t page, limit;
    if (!query_int(c, "page", 1, 1000000, 1, &page) ||
        !query_int(c, "limit", 1, LIST_MAX, 20, &limit))
        return;
    unsigned mask = 1 | 2 | 4; /* all but spam */
    pl_buf_t st;
    pl_buf_init(&st, 256);
    int found = http_query_get(c->req->query, "status", &st);
    if (found == 1 && st.len > 0) {
        mask = 0;
        const char *p = st.data, *end = st.data + st.len;
        while (p < end) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            size_t len = (size_t)((comma ? comma : end) - p);
            int bit = status_bit(p, len);
            if (!bit) {
                pl_buf_dispose(&st);
                api_error(c, 400, "status: must be open, pending, solved or spam (comma list)");
                return;
            }
            mask |= (unsigned)bit;
            p = comma ? comma + 1 : end;
        }
    } else if (found < 0) {
        pl_buf_dispose(&st);
        api_error(c, 400, "status: malformed");
        return;
    }
    pl_buf_dispose(&st);
    int64_t *pl = pl_xmalloc(2 * sizeof *pl);
    pl[0] = page;
    pl[1] = limit;
    c->data = pl;
    if (store_conversations_list(c->app->store, c->project_id, mask, (page - 1) * limit,
                                 (size_t)limit, conv_list_cb, c) != 0) {
        free(pl);
        c->data = NULL;
        api_error(c, 503, "Service unavailable");
    }
}

static void conv_get_cb(void *ud, int status, const store_conversation_t *cv) {
    api_call_t *c = ud;
    if (status != 0) {
        api_store_error(c, status, "Conversation not found");
        return;
    }
    answer_conversations(c, cv, 1, 1, 1, 1, true);
}

static void do_conversation(api_call_t *c) {
    if (store_conversation_get(c->app->store, c->project_id, c->id, conv_get_cb, c) != 0)
        api_error(c, 503, "Service unavailable");
}

/* ---- messages ------------------------------------------------------------------------------------ */

static void messages_cb(void *ud, int status, const store_message_t *m, size_t n, bool has_more) {
    api_call_t *c = ud;
    if (status != 0) {
        api_store_error(c, status, "Conversation not found");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, app_message_json(&m[i]));
    api_json(c, 200, json_pack("{s:o, s:b}", "data", arr, "hasMore", has_more));
}

static void do_messages(api_call_t *c) {
    int64_t before, limit;
    if (!query_int(c, "before", 1, 9007199254740991LL, 0, &before) ||
        !query_int(c, "limit", 1, LIST_MAX, 50, &limit))
        return;
    if (store_messages_list(c->app->store, c->project_id, c->id, before, (size_t)limit,
                            messages_cb, c) != 0)
        api_error(c, 503, "Service unavailable");
}

static void reply_cb(void *ud, int status, const store_message_t *m,
                     const store_conversation_t *cv) {
    api_call_t *c = ud;
    if (status != 0) {
        api_store_error(c, status, "Conversation not found");
        return;
    }
    /* Persisted: now the visitor's sockets and the room hear of it. */
    emit_visitor(c->app, c->project_id, cv->visitor.uid, "agentReplied",
                 app_widget_message_json(m));
    emit_project(c->app, c->project_id, "newMessage", app_message_json(m));
    api_json(c, 201, app_message_json(m));
}

static void do_reply(api_call_t *c) {
    json_t *t = json_object_get(c->body, "text");
    if (!json_is_string(t) || memchr(json_string_value(t), '\0', json_string_length(t))) {
        api_error(c, 400, "text: must be a string");
        return;
    }
    const char *s = json_string_value(t);
    size_t a = 0, b = json_string_length(t);
    while (a < b && strchr(" \t\r\n\f\v", s[a]))
        a++;
    while (b > a && strchr(" \t\r\n\f\v", s[b - 1]))
        b--;
    if (a == b || app_utf8_chars(s + a, b - a) > 5000) {
        api_error(c, 400, "text: must be 1 to 5000 characters");
        return;
    }
    char *text = pl_slice_dup(pl_slice(s + a, b - a));
    int rc = store_agent_reply(c->app->store, c->project_id, c->id, c->user_id, text,
                               pl_wall_ms(), reply_cb, c);
    free(text);
    if (rc != 0)
        api_error(c, 503, "Service unavailable");
}

/* ---- changes ------------------------------------------------------------------------------------ */

static void updated_cb(void *ud, int status, const store_conversation_t *cv) {
    api_call_t *c = ud;
    json_t *fields = c->data;
    c->data = NULL;
    if (status != 0) {
        json_decref(fields);
        api_store_error(c, status, status == PL_EINVAL ? "Not found" : "Conversation not found");
        return;
    }
    if (!fields) {
        fields = json_pack("{s:o}", "assigneeId",
                           cv->assignee_id ? json_integer((json_int_t)cv->assignee_id)
                                           : json_null());
    }
    emit_project(c->app, c->project_id, "conversationUpdated",
                 json_pack("{s:I, s:o}", "conversationId", (json_int_t)cv->id, "fields", fields));
    answer_conversations(c, cv, 1, 1, 1, 1, true);
}

static void do_update(api_call_t *c) {
    json_t *status = json_object_get(c->body, "status");
    json_t *read = json_object_get(c->body, "read");
    const char *key;
    json_t *val;
    json_object_foreach(c->body, key, val) {
        if (strcmp(key, "status") && strcmp(key, "read")) {
            char msg[128];
            snprintf(msg, sizeof msg, "%s: unknown field", key);
            api_error(c, 400, msg);
            return;
        }
    }
    if (status && (!json_is_string(status) ||
                   !status_bit(json_string_value(status), json_string_length(status)))) {
        api_error(c, 400, "status: must be open, pending, solved or spam");
        return;
    }
    if (read && !json_is_boolean(read)) {
        api_error(c, 400, "read: must be true or false");
        return;
    }
    json_t *fields = json_object();
    if (status)
        json_object_set(fields, "status", status);
    if (json_is_true(read))
        json_object_set_new(fields, "unreadCount", json_integer(0));
    c->data = fields;
    if (store_conversation_update(c->app->store, c->project_id, c->id,
                                  status ? json_string_value(status) : NULL, json_is_true(read),
                                  pl_wall_ms(), updated_cb, c) != 0) {
        json_decref(fields);
        c->data = NULL;
        api_error(c, 503, "Service unavailable");
    }
}

static void assign_cb(void *ud, int status, const store_conversation_t *cv) {
    api_call_t *c = ud;
    if (status == PL_EINVAL) {
        api_error(c, 400, "userId: not a member of this project");
        return;
    }
    updated_cb(ud, status, cv);
}

static void do_assign(api_call_t *c) {
    int64_t who = c->user_id;
    json_t *u = c->body ? json_object_get(c->body, "userId") : NULL;
    if (u) {
        if (!json_is_integer(u) || json_integer_value(u) < 1) {
            api_error(c, 400, "userId: must be a user id");
            return;
        }
        who = (int64_t)json_integer_value(u);
    }
    if (store_conversation_assign(c->app->store, c->project_id, c->id, who, pl_wall_ms(),
                                  assign_cb, c) != 0)
        api_error(c, 503, "Service unavailable");
}

static void do_unassign(api_call_t *c) {
    if (store_conversation_assign(c->app->store, c->project_id, c->id, 0, pl_wall_ms(),
                                  assign_cb, c) != 0)
        api_error(c, 503, "Service unavailable");
}

static void deleted_cb(void *ud, int status, const store_conversation_t *cv) {
    api_call_t *c = ud;
    if (status != 0) {
        api_store_error(c, status, "Conversation not found");
        return;
    }
    emit_project(c->app, c->project_id, "conversationDeleted",
                 json_pack("{s:I}", "conversationId", (json_int_t)cv->id));
    api_status(c, 204);
}

static void do_delete(api_call_t *c) {
    if (store_conversation_delete(c->app->store, c->project_id, c->id, deleted_cb, c) != 0)
        api_error(c, 503, "Service unavailable");
}

static void typing_cb(void *ud, int status, const store_conversation_t *cv) {
    api_call_t *c = ud;
    char *name = c->data;
    c->data = NULL;
    if (status != 0) {
        free(name);
        api_store_error(c, status, "Conversation not found");
        return;
    }
    bool typing = json_is_true(json_object_get(c->body, "isTyping"));
    const char *agent = name ? name : c->full_name[0] ? c->full_name : "Agent";
    emit_visitor(c->app, c->project_id, cv->visitor.uid, "agentIsTyping",
                 json_pack("{s:s, s:b}", "agentName", agent, "isTyping", typing));
    free(name);
    api_status(c, 204);
}

/* The name the visitor sees: the project's agentDisplayName once a manager set one, else the
 * agent's own name. */
static void typing_project_cb(void *ud, int status, const store_project_t *p) {
    api_call_t *c = ud;
    if (status != 0) {
        api_store_error(c, status, "Project not found");
        return;
    }
    json_t *st = p->widget_settings_json ? json_loads(p->widget_settings_json, 0, NULL) : NULL;
    json_t *dn = json_object_get(st, "agentDisplayName");
    if (json_is_string(dn) && json_string_length(dn) > 0)
        c->data = pl_xstrdup(json_string_value(dn));
    json_decref(st);
    if (store_conversation_get(c->app->store, c->project_id, c->id, typing_cb, c) != 0) {
        free(c->data);
        c->data = NULL;
        api_error(c, 503, "Service unavailable");
    }
}

static void do_typing(api_call_t *c) {
    if (!json_is_boolean(json_object_get(c->body, "isTyping"))) {
        api_error(c, 400, "isTyping: must be true or false");
        return;
    }
    if (store_project_get(c->app->store, c->project_id, typing_project_cb, c) != 0)
        api_error(c, 503, "Service unavailable");
}

/* ---- visitors ------------------------------------------------------------------------------------ */

static void visitor_online_cb(void *ud, int status, const bool *online, size_t n) {
    api_call_t *c = ud;
    json_t *j = c->data;
    c->data = NULL;
    json_object_set_new(j, "isOnline", json_boolean(status == 0 && n == 1 && online[0]));
    api_json(c, 200, j);
}

static void visitor_cb(void *ud, int status, const store_visitor_t *v) {
    api_call_t *c = ud;
    if (status != 0) {
        api_store_error(c, status, "Visitor not found");
        return;
    }
    json_t *j = api_visitor_json(v, 0);
    c->data = j;
    const char *uids[1] = {json_string_value(json_object_get(j, "uid"))};
    if (presence_online(c->app->presence, c->project_id, uids, 1, visitor_online_cb, c) != 0)
        visitor_online_cb(c, PL_EUNAVAIL, NULL, 0);
}

static void do_visitor(api_call_t *c) {
    if (store_visitor_get(c->app->store, c->project_id, c->id, visitor_cb, c) != 0)
        api_error(c, 503, "Service unavailable");
}

/* ---- routes ------------------------------------------------------------------------------------- */

#define CONV "/api/v1/projects/:pid/inbox/conversations"
#define ROUTE(name, flags, idp, fn)                                                                \
    static void name(http_request_t *req, void *ud) {                                             \
        api_begin(ud, req, API_AUTH | API_MEMBER | (flags), "pid", idp, fn);                      \
    }
ROUTE(h_list, 0, NULL, do_conversations)
ROUTE(h_get, 0, "id", do_conversation)
ROUTE(h_messages, 0, "id", do_messages)
ROUTE(h_reply, API_BODY, "id", do_reply)
ROUTE(h_update, API_BODY, "id", do_update)
ROUTE(h_typing, API_BODY, "id", do_typing)
ROUTE(h_delete, 0, "id", do_delete)
ROUTE(h_unassign, 0, "id", do_unassign)
ROUTE(h_visitor, 0, "id", do_visitor)
#undef ROUTE

/* Assignment takes an optional body: parse it only when one is sent. */
static void h_assign(http_request_t *req, void *ud) {
    unsigned flags = API_AUTH | API_MEMBER;
    if (req->body.len > 0 || http_request_header(req, "content-type"))
        flags |= API_BODY;
    api_begin(ud, req, flags, "pid", "id", do_assign);
}

void api_inbox_register(app_t *app, http_router_t *r) {
    http_router_add(r, "GET", CONV, h_list, app);
    http_router_add(r, "GET", CONV "/:id", h_get, app);
    http_router_add(r, "PATCH", CONV "/:id", h_update, app);
    http_router_add(r, "DELETE", CONV "/:id", h_delete, app);
    http_router_add(r, "GET", CONV "/:id/messages", h_messages, app);
    http_router_add(r, "POST", CONV "/:id/messages", h_reply, app);
    http_router_add(r, "POST", CONV "/:id/typing", h_typing, app);
    http_router_add(r, "POST", CONV "/:id/assignments", h_assign, app);
    http_router_add(r, "DELETE", CONV "/:id/assignments", h_unassign, app);
    http_router_add(r, "GET", "/api/v1/projects/:pid/inbox/visitors/:id", h_visitor, app);
}
