/* The chat application: what the server's routes and (later) Socket.IO handlers share. One
 * app_t per process, created by main.c after the backends are open; everything in it is used
 * on the loop thread only. */
#ifndef APP_APP_H
#define APP_APP_H

#include "bus/bus_redis.h"
#include "core/config.h"
#include "http/router.h"
#include "http/static.h"
#include "presence/presence.h"
#include "queue/queue.h"
#include "sio/server.h"
#include "store/store.h"

#include <uv.h>

typedef struct {
    uv_loop_t *loop;
    const pl_config_t *cfg;  /* borrowed, outlives the app */
    store_t *store;          /* borrowed */
    http_static_t *web;      /* borrowed */
    int64_t started_ms;      /* monotonic ms at start, for uptime */
    const char *jwt_secret;  /* borrowed */
    presence_t *presence;    /* borrowed: online status in API answers */
    bus_redis_t *bus;        /* borrowed, NULL without Redis: /health reports it */
    queue_t *queue;          /* borrowed */
    sio_nsp_t *nsp;          /* borrowed: "/" of the Socket.IO server, for API-made events */
    struct api_auth_state *auth; /* failed-login counters (api_auth.c), owned */
} app_t;

/* Adds the HTTP routes of the app (health, public API) and the static files (last, catch-all)
 * to r. */
void app_http_register(app_t *app, http_router_t *r);
/* Frees what app_http_register allocated (counters). */
void app_http_dispose(app_t *app);

#endif
