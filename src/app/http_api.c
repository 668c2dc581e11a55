/* HTTP endpoints of the app that need no agent: GET /health (liveness and each dependency) and
 * the widget's public settings, GET /api/v1/public/projects/:id/settings, with the Origin rule
 * of PROTOCOL.md section 2 and CORS (reflect an allowed Origin, `Vary: Origin`, never `*`). */
#include "app/app.h"

#include "app/api.h"
#include "app/origin.h"

#include <http_parser.h>
#include "app/settings.h"
#include "core/clock.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

#define JS_MAX_SAFE_INT 9007199254740991ULL

/* ---- /health --------------------------------------------------------------------------- */

typedef struct {
    app_t *app;
    http_request_t *req;
} health_ctx_t;

static void health_done(void *ud, int status) {
    health_ctx_t *h = ud;
    bool store_ok = status == 0;
    bool redis_ok = !h->app->bus || bus_redis_ready(h->app->bus);
    bool ok = store_ok && redis_ok;
    json_t *checks = json_pack("{s:s}", "store", store_ok ? "ok" : "unavailable");
    if (h->app->bus)
        json_object_set_new(checks, "redis", json_string(redis_ok ? "ok" : "unavailable"));
    json_t *j = json_pack("{s:s, s:s, s:I, s:o}", "status", ok ? "ok" : "unavailable", "version",
                          PARLEY_VERSION, "uptimeMs",
                          (json_int_t)(pl_mono_ms() - (uint64_t)h->app->started_ms), "checks",
                          checks);
    http_response_header(h->req, "Cache-Control", "no-store");
    http_respond_json(h->req, ok ? 200 : 503, j);
    free(h);
}

static void health_handler(http_request_t *req, void *ud) {
    app_t *app = ud;
    health_ctx_t *h = pl_xmalloc(sizeof *h);
    h->app = app;
    h->req = req;
    if (store_ping(app->store, health_done, h) != 0)
        health_done(h, PL_EUNAVAIL);
}

/* ---- public settings ------------------------------------------------------------------- */

typedef struct {
    http_request_t *req;
    bool preflight;
} settings_ctx_t;

static void settings_done(void *ud, int status, const store_project_t *p) {
    settings_ctx_t *sc = ud;
    http_request_t *req = sc->req;
    bool preflight = sc->preflight;
    free(sc);
    http_response_header(req, "Vary", "Origin");
    if (status == STORE_ENOTFOUND) {
        http_respond_error(req, 404, "Project not found");
        return;
    }
    if (status != 0) {
        http_respond_error(req, 503, "Service unavailable");
        return;
    }
    const pl_slice_t *origin = http_request_header(req, "origin");
    app_origin_result_t r = app_origin_check(origin, p->domains, p->ndomains);
    if (r != APP_ORIGIN_OK) {
        http_respond_error(req, 403, app_origin_message(r));
        return;
    }
    char *o = pl_slice_dup(*origin);
    if (!o) {
        http_respond_error(req, 503, "Service unavailable");
        return;
    }
    http_response_header(req, "Access-Control-Allow-Origin", o);
    free(o);
    if (preflight) {
        http_response_header(req, "Access-Control-Allow-Methods", "GET, OPTIONS");
        http_response_header(req, "Access-Control-Allow-Headers", "Content-Type");
        http_response_header(req, "Access-Control-Max-Age", "600");
        http_respond(req, 204, NULL, NULL, 0);
        return;
    }
    http_response_header(req, "Cache-Control", "no-cache");
    http_respond_json(req, 200, app_widget_settings_public(p->widget_settings_json));
}

/* Parses a path id: a positive decimal integer up to 2^53-1 (ids are JavaScript numbers on
 * the wire). */
static bool parse_id(pl_slice_t s, int64_t *id) {
    uint64_t v;
    if (!pl_slice_to_u64(s, JS_MAX_SAFE_INT, &v) || v == 0 || s.ptr[0] == '0')
        return false;
    *id = (int64_t)v;
    return true;
}

static void settings_handler(http_request_t *req, void *ud) {
    app_t *app = ud;
    int64_t id;
    if (!parse_id(http_request_param(req, "id"), &id)) {
        http_response_header(req, "Vary", "Origin");
        http_respond_error(req, 400, "Invalid project id");
        return;
    }
    settings_ctx_t *sc = pl_xmalloc(sizeof *sc);
    sc->req = req;
    sc->preflight = req->method == HTTP_OPTIONS;
    if (store_project_get(app->store, id, settings_done, sc) != 0) {
        free(sc);
        http_respond_error(req, 503, "Service unavailable");
    }
}

void app_http_register(app_t *app, http_router_t *r) {
    http_router_add(r, "GET", "/health", health_handler, app);
    http_router_add(r, "GET", "/api/v1/public/projects/:id/settings", settings_handler, app);
    http_router_add(r, "OPTIONS", "/api/v1/public/projects/:id/settings", settings_handler, app);
    api_auth_register(app, r);
    api_projects_register(app, r);
    api_inbox_register(app, r);
    if (app->web)
        http_router_add(r, NULL, "/*", http_static_handler, app->web);
}
