/* In-process queue backend: see queue.h. A FIFO of jobs; a uv_idle_t hands waiting jobs to the
 * handler on the next loop turn (bounded per turn); failed jobs wait on a timer for their retry
 * and, after max_attempts, go to a bounded dead-letter list (logged). */
#include "queue/queue.h"

#include "core/clock.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

#define DELIVER_PER_TURN 1024
#define MAX_DEAD 1000

typedef struct mjob {
    queue_job_t pub;
    struct mjob *next;
    uint64_t not_before; /* monotonic ms: retry time */
    char *error;         /* last error, owned */
    char data[];         /* payload */
} mjob_t;

typedef struct {
    queue_t base;
    uv_loop_t *loop;
    uv_idle_t idle;
    uv_timer_t retry;
    mjob_t *head, *tail;    /* waiting jobs in order */
    mjob_t *dead;           /* dead letters, newest first */
    size_t ndead;
    size_t depth;           /* waiting + in flight */
    size_t in_flight;
    uint64_t next_id;
    queue_handler_cb handler;
    void *handler_ud;
    /* enqueue confirmations waiting for the next turn */
    struct confirm {
        struct confirm *next;
        queue_done_cb cb;
        void *ud;
    } *confirms, *confirms_tail;
    bool closing;
    int handles;
    void (*close_cb)(void *);
    void *close_ud;
} mq_t;

void queue_options_default(queue_options_t *o) {
    o->max_depth = 65536;
    o->max_in_flight = 4096;
    o->max_attempts = 5;
    o->retry_delay_ms = 100;
}

static void idle_cb(uv_idle_t *h);
static void retry_cb(uv_timer_t *t);

static void kick(mq_t *q) {
    if (!q->closing)
        uv_idle_start(&q->idle, idle_cb);
}

static void push_tail(mq_t *q, mjob_t *j) {
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
}

static void idle_cb(uv_idle_t *h) {
    mq_t *q = h->data;
    /* Confirmations first, in order. */
    struct confirm *c = q->confirms;
    q->confirms = q->confirms_tail = NULL;
    while (c) {
        struct confirm *next = c->next;
        if (c->cb)
            c->cb(c->ud, 0);
        free(c);
        c = next;
    }
    uint64_t now = pl_mono_ms();
    int n = 0;
    while (q->handler && q->head && q->in_flight < q->base.opts.max_in_flight &&
           n < DELIVER_PER_TURN && q->head->not_before <= now) {
        mjob_t *j = q->head;
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
        j->next = NULL;
        j->pub.attempt++;
        q->in_flight++;
        n++;
        q->handler(q->handler_ud, &j->pub);
    }
    bool more = q->handler && q->head && q->in_flight < q->base.opts.max_in_flight &&
                q->head->not_before <= now;
    if (!more && !q->confirms)
        uv_idle_stop(h);
    if (q->head && q->head->not_before > now && !uv_is_active((uv_handle_t *)&q->retry))
        uv_timer_start(&q->retry, retry_cb, q->head->not_before - now, 0);
}

static void retry_cb(uv_timer_t *t) {
    kick(t->data);
}

static int mq_enqueue(queue_t *base, const void *data, size_t len, queue_done_cb cb, void *ud) {
    mq_t *q = (mq_t *)base;
    if (q->closing || q->depth >= q->base.opts.max_depth)
        return PL_EUNAVAIL;
    mjob_t *j = malloc(sizeof *j + len + 1);
    struct confirm *c = malloc(sizeof *c);
    if (!j || !c) {
        free(j);
        free(c);
        return PL_ENOMEM;
    }
    memcpy(j->data, data, len);
    j->data[len] = '\0';
    j->pub = (queue_job_t){.id = ++q->next_id, .data = j->data, .len = len, .attempt = 0};
    j->not_before = 0;
    j->error = NULL;
    push_tail(q, j);
    q->depth++;
    c->next = NULL;
    c->cb = cb;
    c->ud = ud;
    if (q->confirms_tail)
        q->confirms_tail->next = c;
    else
        q->confirms = c;
    q->confirms_tail = c;
    kick(q);
    return 0;
}

static int mq_consume(queue_t *base, queue_handler_cb handler, void *ud) {
    mq_t *q = (mq_t *)base;
    if (q->handler)
        return UV_EBUSY;
    q->handler = handler;
    q->handler_ud = ud;
    kick(q);
    return 0;
}

static void maybe_closed(mq_t *q);

static void mq_job_done(queue_t *base, queue_job_t *job, int status, const char *error) {
    mq_t *q = (mq_t *)base;
    mjob_t *j = (mjob_t *)job;
    q->in_flight--;
    if (status == 0 || q->closing) {
        q->depth--;
        free(j->error);
        free(j);
        maybe_closed(q);
        if (!q->closing)
            kick(q);
        return;
    }
    free(j->error);
    j->error = error ? pl_xstrdup(error) : NULL;
    if (j->pub.attempt >= q->base.opts.max_attempts) {
        pl_log_error("queue.dead_letter", "queue=%s job=%llu attempts=%u error=\"%s\"", QUEUE_NAME,
                     (unsigned long long)j->pub.id, j->pub.attempt, error ? error : "");
        q->depth--;
        j->next = q->dead;
        q->dead = j;
        if (++q->ndead > MAX_DEAD) {
            /* Drop the oldest dead letter (the list is newest first). */
            mjob_t **pp = &q->dead;
            while ((*pp)->next)
                pp = &(*pp)->next;
            free((*pp)->error);
            free(*pp);
            *pp = NULL;
            q->ndead--;
        }
        kick(q);
        return;
    }
    uint64_t delay = (uint64_t)q->base.opts.retry_delay_ms << (j->pub.attempt - 1);
    j->not_before = pl_mono_ms() + delay;
    pl_log_warn("queue.retry", "queue=%s job=%llu attempt=%u delay_ms=%llu error=\"%s\"",
                QUEUE_NAME, (unsigned long long)j->pub.id, j->pub.attempt,
                (unsigned long long)delay, error ? error : "");
    push_tail(q, j);
    uv_timer_start(&q->retry, retry_cb, delay, 0);
}

static size_t mq_depth(const queue_t *base) {
    return ((const mq_t *)base)->depth;
}

static size_t mq_dead_count(const queue_t *base) {
    return ((const mq_t *)base)->ndead;
}

static void handle_closed(uv_handle_t *h) {
    mq_t *q = h->data;
    if (--q->handles > 0)
        return;
    void (*cb)(void *) = q->close_cb;
    void *ud = q->close_ud;
    free(q);
    if (cb)
        cb(ud);
}

static void maybe_closed(mq_t *q) {
    if (!q->closing || q->in_flight > 0 || q->handles != 2)
        return;
    while (q->head) {
        mjob_t *j = q->head;
        q->head = j->next;
        free(j->error);
        free(j);
    }
    while (q->dead) {
        mjob_t *j = q->dead;
        q->dead = j->next;
        free(j->error);
        free(j);
    }
    struct confirm *c = q->confirms;
    while (c) {
        struct confirm *next = c->next;
        free(c);
        c = next;
    }
    q->confirms = NULL;
    uv_close((uv_handle_t *)&q->idle, handle_closed);
    uv_close((uv_handle_t *)&q->retry, handle_closed);
}

static void mq_close(queue_t *base, void (*cb)(void *), void *ud) {
    mq_t *q = (mq_t *)base;
    if (q->closing)
        return;
    /* Confirm what was accepted before stopping. */
    struct confirm *c = q->confirms;
    q->confirms = q->confirms_tail = NULL;
    while (c) {
        struct confirm *next = c->next;
        if (c->cb)
            c->cb(c->ud, 0);
        free(c);
        c = next;
    }
    q->closing = true;
    q->close_cb = cb;
    q->close_ud = ud;
    uv_idle_stop(&q->idle);
    uv_timer_stop(&q->retry);
    if (q->head)
        pl_log_warn("queue.closed_with_jobs", "queue=%s waiting=%zu", QUEUE_NAME,
                    q->depth - q->in_flight);
    maybe_closed(q);
}

static const queue_ops_t g_ops = {
    .enqueue = mq_enqueue,
    .consume = mq_consume,
    .job_done = mq_job_done,
    .depth = mq_depth,
    .dead_count = mq_dead_count,
    .close = mq_close,
};

queue_t *queue_memory_new(uv_loop_t *loop, const queue_options_t *opts) {
    mq_t *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->base.ops = &g_ops;
    if (opts)
        q->base.opts = *opts;
    else
        queue_options_default(&q->base.opts);
    q->loop = loop;
    uv_idle_init(loop, &q->idle);
    q->idle.data = q;
    uv_timer_init(loop, &q->retry);
    q->retry.data = q;
    q->handles = 2;
    return &q->base;
}
