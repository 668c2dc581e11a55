/* The queue port: the ingest queue `live-chat-events-queue` between the gateway (which appends
 * each visitor message) and the worker (which persists it), as in the reference design's BullMQ
 * queue with removeOnComplete on and removeOnFail off.
 *
 * A job is an opaque byte payload (the app uses JSON). A consumer registers a handler; each
 * job is handed to it once at a time and must be finished with queue_job_done(): success
 * removes the job; failure keeps it and retries it after a delay, up to max_attempts, after
 * which it moves to the dead-letter list with its error. At most max_in_flight jobs are in a
 * handler at once; the queue holds at most max_depth jobs and refuses more with PL_EUNAVAIL
 * (push back; the visitor gets `unavailable`).
 *
 * Backends: in-process (queue_memory.c, the embedded default: jobs live in this process; their
 * durability comes from the widget re-sending unacknowledged messages, DESIGN.md "Guarantees")
 * and Redis Streams with a consumer group (a later issue). Calls are asynchronous; callbacks
 * fire later on the loop thread, never inside the call. Loop thread only. */
#ifndef QUEUE_QUEUE_H
#define QUEUE_QUEUE_H

#include "core/buf.h"

#include <stdint.h>
#include <uv.h>

#define QUEUE_NAME "live-chat-events-queue"

typedef struct queue queue_t;

typedef struct {
    uint32_t max_depth;      /* jobs waiting or in flight; default 65536 */
    uint32_t max_in_flight;  /* jobs in handlers at once; default 4096 */
    uint32_t max_attempts;   /* before dead-lettering; default 5 */
    uint32_t retry_delay_ms; /* first retry delay, doubled each attempt; default 100 */
} queue_options_t;

void queue_options_default(queue_options_t *o);

/* A job handed to the consumer. Valid until queue_job_done. */
typedef struct {
    uint64_t id;       /* backend's id, for logs */
    const char *data;  /* payload bytes */
    size_t len;
    uint32_t attempt;  /* 1 on the first delivery */
} queue_job_t;

typedef void (*queue_done_cb)(void *ud, int status);
typedef void (*queue_handler_cb)(void *ud, queue_job_t *job);

typedef struct queue_ops {
    int (*enqueue)(queue_t *q, const void *data, size_t len, queue_done_cb cb, void *ud);
    int (*consume)(queue_t *q, queue_handler_cb handler, void *ud);
    void (*job_done)(queue_t *q, queue_job_t *job, int status, const char *error);
    size_t (*depth)(const queue_t *q);
    size_t (*dead_count)(const queue_t *q);
    void (*close)(queue_t *q, void (*cb)(void *ud), void *ud);
} queue_ops_t;

struct queue {
    const queue_ops_t *ops;
    queue_options_t opts;
};

/* The in-process backend. opts may be NULL for the defaults. */
queue_t *queue_memory_new(uv_loop_t *loop, const queue_options_t *opts);
/* The Redis Streams backend (queue_redis.c): url redis://host[:port][/db], stream NULL for
 * QUEUE_NAME, opts NULL for defaults, visibility_ms 0 for 30 s (idle time before a pending job
 * may be claimed by another consumer). NULL on a malformed URL or stream name. */
queue_t *queue_redis_new(uv_loop_t *loop, const char *url, const char *stream,
                         const queue_options_t *opts, uint32_t visibility_ms);

/* Appends a job (data is copied). cb (may be NULL) fires once it is accepted. Returns 0,
 * PL_EUNAVAIL (queue full or closing) or PL_ENOMEM. */
static inline int queue_enqueue(queue_t *q, const void *data, size_t len, queue_done_cb cb,
                                void *ud) {
    return q->ops->enqueue(q, data, len, cb, ud);
}
/* Starts delivering jobs to handler (one consumer per queue object). */
static inline int queue_consume(queue_t *q, queue_handler_cb handler, void *ud) {
    return q->ops->consume(q, handler, ud);
}
/* Finishes a job: status 0 removes it; otherwise it is retried later or dead-lettered with
 * error (copied; may be NULL). */
static inline void queue_job_done(queue_t *q, queue_job_t *job, int status, const char *error) {
    q->ops->job_done(q, job, status, error);
}
static inline size_t queue_depth(const queue_t *q) {
    return q->ops->depth(q);
}
static inline size_t queue_dead_count(const queue_t *q) {
    return q->ops->dead_count(q);
}
/* Stops delivering; jobs in handlers may still be finished until cb fires (after they all
 * were). Waiting jobs are dropped (in-process) or stay in the stream (Redis). */
static inline void queue_close(queue_t *q, void (*cb)(void *ud), void *ud) {
    q->ops->close(q, cb, ud);
}

#endif
