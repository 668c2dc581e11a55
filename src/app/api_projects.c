/* Projects (docs/http-api.md "Projects"): create (the creator becomes manager), list mine, read,
 * rename and set whitelisted domains, set widget settings (validated field by field against
 * PROTOCOL.md section 8; unknown fields refused), members. Only managers change a project. */
#include "app/api.h"

#include "app/origin.h"
#include "app/settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DOMAINS 100

/* ---- validation ------------------------------------------------------------------------------- */

static size_t chars_of(const char *s, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* Validates a name field (1..100 characters). NULL when fine, else the message. */
static const char *check_name(json_t *v) {
    if (!json_is_string(v))
        return "name: must be a string";
    size_t n = chars_of(json_string_value(v), json_string_length(v));
    if (n < 1 || n > 100 || memchr(json_string_value(v), '\0', json_string_length(v)))
        return "name: must be 1 to 100 characters";
    return NULL;
}

/* Normalises a whitelistedDomains array into out (owned strings; lower-cased, de-duplicated).
 * Returns 0, or writes a message into msg and returns -1. */
static int parse_domains(json_t *v, char ***out, size_t *n, char *msg, size_t msglen) {
    *out = NULL;
    *n = 0;
    if (!json_is_array(v)) {
        snprintf(msg, msglen, "whitelistedDomains: must be an array of strings");
        return -1;
    }
    if (json_array_size(v) > MAX_DOMAINS) {
        snprintf(msg, msglen, "whitelistedDomains: at most %d entries", MAX_DOMAINS);
        return -1;
    }
    char **list = calloc(json_array_size(v) + 1, sizeof *list);
    if (!list) {
        snprintf(msg, msglen, "out of memory");
        return -1;
    }
    size_t k = 0, i;
    json_t *e;
    json_array_foreach(v, i, e) {
        char norm[APP_HOST_MAX];
        if (!json_is_string(e) || json_string_length(e) >= APP_HOST_MAX ||
            app_domain_normalize(json_string_value(e), norm) != 0) {
            snprintf(msg, msglen,
                     "whitelistedDomains[%zu]: must be a hostname, an IPv4 address or "
                     "*.hostname",
                     i);
            for (size_t x = 0; x < k; x++)
                free(list[x]);
            free(list);
            return -1;
        }
        bool dup = false;
        for (size_t x = 0; x < k && !dup; x++)
            dup = strcmp(list[x], norm) == 0;
        if (!dup)
            list[k++] = pl_xstrdup(norm);
    }
    *out = list;
    *n = k;
    return 0;
}

static void free_domains(char **l, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

static bool is_hex_colour(const char *s) {
    if (strlen(s) != 7 || s[0] != '#')
        return false;
    for (int i = 1; i < 7; i++)
        if (!strchr("0123456789abcdefABCDEF", s[i]))
            return false;
    return true;
}

/* An absolute http(s) URL with a host, no white space, control characters, quotes or angle
 * brackets (it ends up in an <img src> of every visitor's widget). */
static bool url_ok(const char *s) {
    const char *rest = !strncmp(s, "https://", 8) ? s + 8 : !strncmp(s, "http://", 7) ? s + 7 : NULL;
    if (!rest || !*rest || *rest == '/' || *rest == '?' || *rest == '#' || *rest == ':')
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f || *p == '"' || *p == '\'' || *p == '<' || *p == '>' ||
            *p == '\\')
            return false;
    return true;
}

/* Checks one widget setting. NULL when fine, else the message (written into msg). */
static const char *check_setting(const char *key, json_t *v, char *msg, size_t n) {
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    size_t chars = s ? chars_of(s, json_string_length(v)) : 0;
#define FAIL(...) (snprintf(msg, n, __VA_ARGS__), msg)
    if (s && memchr(s, '\0', json_string_length(v)))
        return FAIL("%s: must not contain NUL characters", key);
    if (!strcmp(key, "theme"))
        return s && (!strcmp(s, "light") || !strcmp(s, "dark")) ? NULL
                                                                : FAIL("theme: must be light or dark");
    if (!strcmp(key, "position"))
        return s && (!strcmp(s, "bottom-right") || !strcmp(s, "bottom-left"))
                   ? NULL
                   : FAIL("position: must be bottom-right or bottom-left");
    if (!strcmp(key, "historyVisibility"))
        return s && (!strcmp(s, "limit_to_active") || !strcmp(s, "forever"))
                   ? NULL
                   : FAIL("historyVisibility: must be limit_to_active or forever");
    if (!strcmp(key, "primaryColor"))
        return s && is_hex_colour(s) ? NULL : FAIL("primaryColor: must be a colour like #4f46e5");
    if (!strcmp(key, "headerText") || !strcmp(key, "agentDisplayName"))
        return s && chars >= 1 && chars <= 60 ? NULL : FAIL("%s: must be 1 to 60 characters", key);
    if (!strcmp(key, "welcomeMessage") || !strcmp(key, "offlineMessage"))
        return s && chars <= 500 ? NULL : FAIL("%s: must be at most 500 characters", key);
    if (!strcmp(key, "autoOpenDelay"))
        return json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 600
                   ? NULL
                   : FAIL("autoOpenDelay: must be a whole number of seconds from 0 to 600");
    if (!strcmp(key, "companyLogoUrl")) {
        if (json_is_null(v))
            return NULL;
        return s && chars <= 2048 && url_ok(s) ? NULL
                                                : FAIL("companyLogoUrl: must be null or an http(s) URL");
    }
    return FAIL("%s: unknown setting", key);
#undef FAIL
}

/* ---- routes ------------------------------------------------------------------------------------- */

static void project_cb(void *ud, int status, const store_project_t *p) {
    api_call_t *c = ud;
    if (status != 0) {
        api_store_error(c, status, "Project not found");
        return;
    }
    json_t *j = api_project_json(p);
    if (!p->role && c->role[0])
        json_object_set_new(j, "role", json_string(c->role));
    api_json(c, (intptr_t)c->data == 201 ? 201 : 200, j);
}

static void do_create(api_call_t *c) {
    char msg[160];
    const char *err = check_name(json_object_get(c->body, "name"));
    if (err) {
        api_error(c, 400, err);
        return;
    }
    char **doms = NULL;
    size_t nd = 0;
    json_t *dv = json_object_get(c->body, "whitelistedDomains");
    if (dv && parse_domains(dv, &doms, &nd, msg, sizeof msg) != 0) {
        api_error(c, 400, msg);
        return;
    }
    const char *known[] = {"name", "whitelistedDomains"};
    const char *key;
    json_t *val;
    json_object_foreach(c->body, key, val) {
        if (strcmp(key, known[0]) && strcmp(key, known[1])) {
            snprintf(msg, sizeof msg, "%s: unknown field", key);
            free_domains(doms, nd);
            api_error(c, 400, msg);
            return;
        }
    }
    c->data = (void *)(intptr_t)201;
    int rc = store_project_create_owned(c->app->store,
                                        json_string_value(json_object_get(c->body, "name")),
                                        (const char *const *)doms, nd, c->user_id, project_cb, c);
    free_domains(doms, nd);
    if (rc != 0)
        api_error(c, 503, "Service unavailable");
}

static void list_cb(void *ud, int status, const store_project_t *ps, size_t n) {
    api_call_t *c = ud;
    if (status != 0) {
        api_store_error(c, status, "Not found");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, api_project_json(&ps[i]));
    api_json(c, 200, arr);
}

static void do_list(api_call_t *c) {
    if (store_projects_of_user(c->app->store, c->user_id, list_cb, c) != 0)
        api_error(c, 503, "Service unavailable");
}

static void do_get(api_call_t *c) {
    if (store_project_of_member(c->app->store, c->project_id, c->user_id, project_cb, c) != 0)
        api_error(c, 503, "Service unavailable");
}

static void do_update(api_call_t *c) {
    char msg[160];
    const char *name = NULL;
    char **doms = NULL;
    size_t nd = 0;
    bool has_doms = false;
    const char *key;
    json_t *val;
    json_object_foreach(c->body, key, val) {
        if (!strcmp(key, "name")) {
            const char *err = check_name(val);
            if (err) {
                free_domains(doms, nd);
                api_error(c, 400, err);
                return;
            }
            name = json_string_value(val);
        } else if (!strcmp(key, "whitelistedDomains")) {
            free_domains(doms, nd);
            doms = NULL;
            nd = 0;
            if (parse_domains(val, &doms, &nd, msg, sizeof msg) != 0) {
                api_error(c, 400, msg);
                return;
            }
            has_doms = true;
        } else {
            snprintf(msg, sizeof msg, "%s: unknown field", key);
            free_domains(doms, nd);
            api_error(c, 400, msg);
            return;
        }
    }
    int rc = store_project_update(c->app->store, c->project_id, name,
                                  has_doms ? (const char *const *)(doms ? doms : (char *[]){NULL})
                                           : NULL,
                                  nd, project_cb, c);
    free_domains(doms, nd);
    if (rc != 0)
        api_error(c, 503, "Service unavailable");
}

typedef struct {
    json_t *patch; /* validated settings to merge */
} settings_patch_t;

static void settings_current_cb(void *ud, int status, const store_project_t *p) {
    api_call_t *c = ud;
    json_t *patch = c->data;
    c->data = NULL;
    if (status != 0) {
        json_decref(patch);
        api_store_error(c, status, "Project not found");
        return;
    }
    json_t *merged = app_widget_settings_public(p->widget_settings_json);
    json_object_update(merged, patch);
    json_decref(patch);
    char *text = json_dumps(merged, JSON_COMPACT);
    json_decref(merged);
    int rc = text ? store_project_widget_settings(c->app->store, c->project_id, text, project_cb,
                                                  c)
                  : PL_ENOMEM;
    free(text);
    if (rc != 0)
        api_error(c, 503, "Service unavailable");
}

static void do_widget_settings(api_call_t *c) {
    char msg[200];
    const char *key;
    json_t *val;
    json_object_foreach(c->body, key, val) {
        const char *err = check_setting(key, val, msg, sizeof msg);
        if (err) {
            api_error(c, 400, err);
            return;
        }
    }
    c->data = json_incref(c->body);
    if (store_project_get(c->app->store, c->project_id, settings_current_cb, c) != 0) {
        json_decref(c->data);
        c->data = NULL;
        api_error(c, 503, "Service unavailable");
    }
}

static void members_cb(void *ud, int status, const store_member_t *m, size_t n) {
    api_call_t *c = ud;
    if (status != 0) {
        api_store_error(c, status, "Project not found");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)m[i].id,
                                             "email", m[i].email, "fullName",
                                             m[i].full_name ? m[i].full_name : "", "role",
                                             m[i].role));
    api_json(c, 200, arr);
}

static void do_members(api_call_t *c) {
    if (store_members_list(c->app->store, c->project_id, members_cb, c) != 0)
        api_error(c, 503, "Service unavailable");
}

static void h_create(http_request_t *req, void *ud) {
    api_begin(ud, req, API_AUTH | API_BODY, NULL, NULL, do_create);
}
static void h_list(http_request_t *req, void *ud) {
    api_begin(ud, req, API_AUTH, NULL, NULL, do_list);
}
static void h_get(http_request_t *req, void *ud) {
    api_begin(ud, req, API_AUTH | API_MEMBER, "id", NULL, do_get);
}
static void h_update(http_request_t *req, void *ud) {
    api_begin(ud, req, API_AUTH | API_BODY | API_MEMBER | API_MANAGER, "id", NULL, do_update);
}
static void h_settings(http_request_t *req, void *ud) {
    api_begin(ud, req, API_AUTH | API_BODY | API_MEMBER | API_MANAGER, "id", NULL,
              do_widget_settings);
}
static void h_members(http_request_t *req, void *ud) {
    api_begin(ud, req, API_AUTH | API_MEMBER, "id", NULL, do_members);
}

void api_projects_register(app_t *app, http_router_t *r) {
    http_router_add(r, "POST", "/api/v1/projects", h_create, app);
    http_router_add(r, "GET", "/api/v1/projects", h_list, app);
    http_router_add(r, "GET", "/api/v1/projects/:id", h_get, app);
    http_router_add(r, "PATCH", "/api/v1/projects/:id", h_update, app);
    http_router_add(r, "PATCH", "/api/v1/projects/:id/widget-settings", h_settings, app);
    http_router_add(r, "GET", "/api/v1/projects/:id/members", h_members, app);
}
