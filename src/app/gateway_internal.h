/* Shared inside the gateway (gateway.c: connection validation and event handlers; inbox.c: the
 * ingest worker and message delivery). Not for other modules. */
#ifndef APP_GATEWAY_INTERNAL_H
#define APP_GATEWAY_INTERNAL_H

#include "app/gateway.h"
#include "app/ratelimit.h"
#include "core/map.h"

#define APP_UID_MAX 64
#define APP_TEMP_ID_MAX 64
#define APP_CONTENT_MAX 5000
#define APP_METADATA_MAX (16 * 1024)
#define APP_URL_MAX 2048
#define APP_HISTORY_LIMIT 200
#define APP_ACK_TIMEOUT_MS 30000 /* a sendMessage ack not answered by then gets `unavailable` */

typedef enum { APP_ROLE_NONE = 0, APP_ROLE_VISITOR, APP_ROLE_AGENT } app_role_t;

/* Per-socket state (sio_socket_set_data); freed by the namespace's data-free hook. */
typedef struct {
    app_gateway_t *gw;
    app_role_t role;
    int64_t project_id;      /* visitor: the project it was validated for */
    bool forever;            /* visitor: the project's historyVisibility is "forever" */
    bool verify_identity;    /* visitor: identify needs userHash (PROTOCOL.md section 7) */
    char *identity_secret;   /* visitor: the project's HMAC key when verify_identity */
    bool counted;            /* counted in its address's socket count */
    bool disconnected;       /* on_disconnect ran */
    char uid[APP_UID_MAX + 1]; /* visitor: "" until identify */
    int64_t conversation_id; /* visitor: current conversation, 0 if unknown */
    int64_t user_id;         /* agent */
    app_bucket_t typing;     /* typing / context events */
    char ip[48];             /* remote address */
} app_sock_t;

/* Per-visitor message rate limit, shared by the visitor's sockets. */
typedef struct {
    char *key; /* "<project>:<uid>", owned; map key */
    size_t keylen;
    app_bucket_t burst, minute;
    uint64_t last_ms;
} app_visitor_limit_t;

/* Per-address connection accounting (PROTOCOL.md section 6). */
typedef struct {
    char *key; /* the address, owned; map key */
    size_t keylen;
    uint32_t sockets;      /* connected sockets */
    app_bucket_t connects; /* new connections per second */
    uint64_t last_ms;
} app_ip_t;

/* sendMessage acks waiting for the worker's commit, by "<project>:<uid>:<tempId>". */
typedef struct app_pending_ack {
    struct app_pending_ack *next;
    sio_ack_t *ack;    /* taken; answered or freed exactly once */
    sio_socket_t *sock; /* referenced */
    uint64_t deadline; /* monotonic ms */
} app_pending_ack_t;

typedef struct {
    char *key; /* owned; map key */
    size_t keylen;
    app_pending_ack_t *acks;
} app_pending_t;

struct app_gateway {
    uv_loop_t *loop;
    const pl_config_t *cfg;
    store_t *store;
    presence_t *presence;
    queue_t *queue;
    sio_server_t *sio;
    sio_nsp_t *nsp;         /* "/" */
    char *jwt_secret;
    pl_map_t ips;           /* address -> app_ip_t */
    pl_map_t limits;        /* "<project>:<uid>" -> app_visitor_limit_t */
    pl_map_t pending;       /* "<project>:<uid>:<tempId>" -> app_pending_t */
    size_t npending;        /* acks waiting */
    uv_timer_t sweep;       /* expires pending acks and idle rate-limit entries */
    bool closing;           /* shutting down: no more room events */
    bool draining;          /* shutting down: the queue drains; store retries give up */
    char **cors_domains;    /* every project's whitelisted domains, for polling CORS */
    size_t ncors_domains;
    unsigned sweeps;        /* sweep ticks, to refresh cors_domains every few seconds */
    bool cors_loading;      /* a refresh is in flight */
    /* Scale-out (app_gateway_start). */
    bus_redis_t *bus;       /* NULL: one process */
    bool worker;            /* this process consumes the ingest queue */
    int64_t *ob_ids;        /* outbox events published, to delete (bus only) */
    size_t nob, ob_cap;
    size_t ob_deleting;     /* store_outbox_delete calls in flight */
    bool ob_scanning;       /* a store_outbox_fetch of left-behind events is in flight */
    /* Jobs whose store was unavailable: tried again every sweep tick, without counting as a
     * failed attempt (an outage must not dead-letter messages). Bounded by the queue's
     * max_in_flight: they stay in flight. */
    struct app_retry *retry;
    size_t nretry;
};

typedef struct app_retry {
    struct app_retry *next;
    queue_job_t *job;
} app_retry_t;

/* inbox.c */
void app__inbox_start(app_gateway_t *gw);
/* Queues a visitor message (the job of the ingest queue). ack may be NULL (then only events
 * answer). Refuses with `unavailable` when the queue is full. */
void app__inbox_submit(app_gateway_t *gw, sio_socket_t *s, app_sock_t *st, const char *content,
                       const char *temp_id, json_t *metadata, sio_ack_t *ack);
/* Answers pending acks past their deadline, deletes published outbox events, and every few
 * ticks re-publishes deliveries left behind by a crashed worker (called from the sweep timer). */
void app__inbox_expire(app_gateway_t *gw, uint64_t now);
void app__inbox_tick(app_gateway_t *gw, unsigned tick);
/* Drops every pending ack (shutdown). */
void app__inbox_clear(app_gateway_t *gw);

#endif
