/* The agents' HTTP API (docs/http-api.md, PROTOCOL.md section 9): shared plumbing for the
 * route files api_auth.c, api_projects.c and api_inbox.c.
 *
 * A route handler creates an api_call_t (api_begin), which parses the JSON body when the route
 * takes one (415 for another Content-Type, 400 for bad JSON), then authenticates the bearer
 * token when the route needs an agent (401), then for project routes checks membership (404 /
 * 403), and finally runs the route's step function. Every step that waits for the store keeps
 * the call; api_end frees it. Loop thread only. */
#ifndef APP_API_H
#define APP_API_H

#include "app/app.h"
#include "http/server.h"

#include <jansson.h>

#define API_AUTH 1u        /* needs a valid bearer token */
#define API_BODY 2u        /* takes a JSON object body */
#define API_MEMBER 4u      /* :pid (or :id for /projects/:id) must be a project of the caller */
#define API_MANAGER 8u     /* ...and the caller its manager */

typedef struct api_call api_call_t;
typedef void (*api_step_fn)(api_call_t *c);

struct api_call {
    app_t *app;
    http_request_t *req;
    unsigned flags;
    api_step_fn next;       /* what runs once the checks passed */
    json_t *body;           /* the parsed body (API_BODY), owned */
    int64_t user_id;        /* the authenticated agent */
    char email[256];
    char full_name[512];    /* up to 100 characters of UTF-8 */
    int64_t project_id;     /* :pid / :id of project routes */
    char role[16];          /* the caller's role in project_id */
    int64_t id;             /* :id of inbox routes (conversation, visitor) */
    void *data;             /* route-specific, freed by the route */
};

/* Starts a call for req: runs the checks of flags, then next. project_param names the path
 * parameter holding the project id for API_MEMBER ("pid" or "id"), id_param the one for c->id
 * (or NULL). */
void api_begin(app_t *app, http_request_t *req, unsigned flags, const char *project_param,
               const char *id_param, api_step_fn next);
/* Answers and frees the call. */
void api_json(api_call_t *c, int status, json_t *body);
void api_error(api_call_t *c, int status, const char *message);
void api_status(api_call_t *c, int status); /* no body (204) */
/* 503 for a store that refused or failed; 404 for STORE_ENOTFOUND. */
void api_store_error(api_call_t *c, int status, const char *not_found_message);
void api_free(api_call_t *c);

/* Parses a decimal id (1 .. 2^53-1); false otherwise. */
bool api_parse_id(pl_slice_t s, int64_t *id);

/* JSON shapes of docs/http-api.md (new references). */
json_t *api_user_json(int64_t id, const char *email, const char *full_name, int64_t created_at);
json_t *api_project_json(const store_project_t *p);
json_t *api_visitor_json(const store_visitor_t *v, int online); /* online < 0: unknown */
json_t *api_conversation_json(const store_conversation_t *c, int online);

/* Route registration of each file. */
void api_auth_register(app_t *app, http_router_t *r);
void api_projects_register(app_t *app, http_router_t *r);
void api_inbox_register(app_t *app, http_router_t *r);

#endif
