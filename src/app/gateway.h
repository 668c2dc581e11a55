/* The chat gateway: the Socket.IO side of the widget connection flow (the reference's
 * events.gateway.ts, ws-auth.service.ts and inbox-event.handler.ts) over the ports of
 * DESIGN.md: store, presence, queue. Loop thread only.
 *
 *   connection validation  Socket.IO connect middleware: visitors by project + Origin, agents by
 *                          HS256 JWT (PROTOCOL.md section 2)
 *   identify               presence (`session:visitor:<uid>`), visitor find-or-create,
 *                          `visitorStatusChanged` on the first socket, history delivery
 *   sendMessage            validation, rate limit, enqueue on `live-chat-events-queue`
 *   the worker (inbox.c)   persists each job in one transaction, then message delivery:
 *                          `messageSent` to every socket of the visitor and the ack, `newMessage`
 *                          to the project room
 *   visitorIsTyping, updateContext, joinProjectRoom, leaveProjectRoom, disconnect */
#ifndef APP_GATEWAY_H
#define APP_GATEWAY_H

#include "bus/bus_redis.h"
#include "core/config.h"
#include "presence/presence.h"
#include "queue/queue.h"
#include "sio/server.h"
#include "store/store.h"

#include <uv.h>

typedef struct app_gateway app_gateway_t;

/* Registers the middleware and event handlers on the "/" namespace of sio. Everything is
 * borrowed and must outlive the gateway; jwt_secret is copied. Call app_gateway_start next. */
app_gateway_t *app_gateway_new(uv_loop_t *loop, const pl_config_t *cfg, store_t *store,
                               presence_t *presence, queue_t *queue, sio_server_t *sio,
                               const char *jwt_secret);
/* Starts the gateway's side of the ports.
 *   bus     NULL: one process (the in-process queue; acks answered here). Else the Redis bus:
 *           jobs carry this node's id, a worker anywhere answers the sender's ack through a
 *           notification to that node, and the worker records each message's delivery in the
 *           store's transactional outbox, publishes it after the commit, deletes it, and
 *           re-publishes the deliveries a crashed worker left behind (DESIGN.md "Guarantees").
 *   worker  consume the ingest queue here (the worker of `live-chat-events-queue`). */
void app_gateway_start(app_gateway_t *gw, bus_redis_t *bus, bool worker);
/* A visitor some other (dead) node held went offline: tells the project room, as a disconnect
 * would have (presence_redis's on_offline). */
void app_gateway_visitor_offline(app_gateway_t *gw, int64_t project_id, const char *uid);
/* Shutdown begins (before the queue is closed): jobs waiting for an unavailable store are
 * finished as failed at the next sweep tick instead of being retried, so the queue can drain. */
void app_gateway_drain(app_gateway_t *gw);
/* Marks the gateway as shutting down: callbacks still arriving emit nothing more. */
void app_gateway_stop(app_gateway_t *gw);
/* Stops timers and frees the gateway's tables once the Socket.IO server has closed (call after
 * sio_server_close completed). Pending acks are dropped. */
void app_gateway_free(app_gateway_t *gw);

/* Room names (PROTOCOL.md sections 3 and 4). out must hold 64 bytes / 96 bytes. */
void app_room_project(char *out, size_t n, int64_t project_id);
void app_room_visitor(char *out, size_t n, int64_t project_id, const char *uid);

#endif
