/* Redis Streams queue backend (the scale-out one): implements queue_ops_t (queue.h) over the
 * stream `live-chat-events-queue` with a consumer group, like the reference's BullMQ queue with
 * removeOnComplete on and removeOnFail off.
 *
 *   enqueue      one script: refuse when XLEN >= max_depth (push back, PL_EUNAVAIL), else
 *                XADD <stream> MAXLEN ~ max_depth * d <payload> (the MAXLEN never trims: the
 *                length was checked first; it only guards the bound).
 *   consume      XGROUP CREATE <stream> <group> 0 MKSTREAM (BUSYGROUP ignored), then
 *                XREADGROUP GROUP <group> <consumer> COUNT k BLOCK 2000 STREAMS <stream> > on a
 *                dedicated connection, k = free in-flight slots (at most 256); entries are
 *                handed to the handler with attempt 1.
 *   success      one script: XACK + XDEL (the entry is gone: remove-on-complete).
 *   failure      the entry stays pending (remove-on-fail off). Before max_attempts it is made
 *                claimable after the retry delay (retry_delay_ms doubled per attempt, at most the
 *                visibility timeout): XCLAIM to the pseudo consumer `parley-retry` with
 *                IDLE <visibility - delay> JUSTID (the delivery count is unchanged); at
 *                max_attempts one script XADDs it to `<stream>:dead` with its error and the
 *                attempt count (MAXLEN ~ 10000) and XACKs + XDELs the original.
 *   retries      every consumer runs a claim script periodically (every retry_delay_ms, 50 ms
 *                to 1 s): XPENDING IDLE <visibility> lists entries idle that long held by
 *                another consumer (a failed one, or one whose consumer died or is slow; our own
 *                idle entries are still in our handlers), XCLAIM takes them, the delivery count
 *                from XPENDING plus one is the attempt number; an entry already delivered
 *                max_attempts times without finishing goes to the dead stream instead.
 *                Decision: not XAUTOCLAIM, which cannot skip the caller's own entries: a
 *                consumer would take back (and count again) a job its own slow handler is still
 *                working on, and could dead-letter it for being slow.
 * Durability: entries live in Redis; run it with appendonly (AOF) for jobs to survive a Redis
 * restart. A message is only acknowledged to the visitor after its commit, so a lost entry costs
 * a re-send by the widget, never an acknowledged message.
 * Delivery is at least once (a slow consumer's entry may be retried while it still works on
 * it); the ingest is idempotent on (project, visitor, tempId), so a retry stores nothing twice.
 *
 * Two redis_conn_t: `cmd` for everything but the blocking read, `rd` for XREADGROUP. During an
 * outage enqueue fails at once with PL_EUNAVAIL; reading and claiming resume by themselves on
 * reconnect (the group is created again if Redis lost it). A job finished while Redis is away
 * simply stays pending and is claimed again later. depth() and dead_count() are the values
 * last seen from Redis (updated by every enqueue, ack and claim). Loop thread only. */
#include "queue/queue.h"

#include "bus/redis_conn.h"
#include "core/clock.h"
#include "core/id.h"
#include "core/log.h"
#include "core/map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GROUP "parley-workers"
#define STREAM_MAX 200 /* bytes of a stream name */
#define READ_BATCH 256 /* entries per XREADGROUP */
#define BLOCK_MS 2000  /* XREADGROUP BLOCK */
#define DEAD_MAX 10000 /* dead letters kept (MAXLEN ~) */
#define PAYLOAD_MAX (16u << 20)
#define DEFAULT_VISIBILITY_MS 30000
#define FULL_RECHECK_MS 100        /* after Redis said "full", refuse locally this long */
#define RETRY_OWNER "parley-retry" /* pseudo consumer holding failed entries until claimed */

static const char ENQUEUE_LUA[] =
    "local n = redis.call('XLEN', KEYS[1])\n"
    "if n >= tonumber(ARGV[1]) then return -1 end\n"
    "redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'd', ARGV[2])\n"
    "return n + 1\n";

static const char ACK_LUA[] = "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])\n"
                              "redis.call('XDEL', KEYS[1], ARGV[2])\n"
                              "return redis.call('XLEN', KEYS[1])\n";

/* ARGV: group, id, payload, error, attempts, dead max. */
static const char DEAD_LUA[] =
    "redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'id', ARGV[2], 'd', ARGV[3],\n"
    "           'error', ARGV[4], 'attempts', ARGV[5], 'at', ARGV[7])\n"
    "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])\n"
    "redis.call('XDEL', KEYS[1], ARGV[2])\n"
    "return {redis.call('XLEN', KEYS[1]), redis.call('XLEN', KEYS[2])}\n";

/* ARGV: group, consumer, min idle ms, count, max attempts, dead max, now. Claims up to count
 * entries idle for min idle ms that another consumer holds (our own idle entries are in our
 * handlers: a failed entry is handed to RETRY_OWNER), dead-letters those already delivered max
 * attempts times, and returns {{{id, fields, attempt}...}, XLEN stream, XLEN dead}. Scans at
 * most 1000 pending entries per call. */
static const char CLAIM_LUA[] =
    "local out, start, scanned, want = {}, '-', 0, tonumber(ARGV[4])\n"
    "while #out < want and scanned < 1000 do\n"
    "  local p = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], start, '+', 100)\n"
    "  for _, e in ipairs(p) do\n"
    "    local id, owner, n = e[1], e[2], e[4]\n"
    "    if owner ~= ARGV[2] and #out < want then\n"
    "      if n >= tonumber(ARGV[5]) then\n"
    "        local r = redis.call('XRANGE', KEYS[1], id, id)\n"
    "        local data = ''\n"
    "        if r[1] then\n"
    "          local f = r[1][2]\n"
    "          for i = 1, #f, 2 do if f[i] == 'd' then data = f[i + 1] end end\n"
    "        end\n"
    "        redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'id', id, 'd', data,\n"
    "                   'error', 'not finished after ' .. n .. ' deliveries',\n"
    "                   'attempts', n, 'at', ARGV[7])\n"
    "        redis.call('XACK', KEYS[1], ARGV[1], id)\n"
    "        redis.call('XDEL', KEYS[1], id)\n"
    "      else\n"
    "        local c = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], id)\n"
    "        if c[1] and c[1][2] then out[#out + 1] = {id, c[1][2], n + 1}\n"
    "        else redis.call('XACK', KEYS[1], ARGV[1], id) end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  scanned = scanned + #p\n"
    "  if #p < 100 then break end\n"
    "  start = '(' .. p[#p][1]\n"
    "end\n"
    "return {out, redis.call('XLEN', KEYS[1]), redis.call('XLEN', KEYS[2])}\n";

/* Deletes this consumer from the group when nothing is pending under its name. */
static const char LEAVE_LUA[] =
    "local ok, p = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])\n"
    "if ok and #p == 0 then redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2]) end\n"
    "return 1\n";

static redis_script_t g_enqueue, g_ack, g_dead, g_claim, g_leave;
static bool g_scripts_ready;

typedef struct rjob {
    queue_job_t pub; /* handed to the handler; first member */
    char id[48];     /* stream entry id; the in-flight map's key */
    size_t idlen;
    char data[]; /* payload, NUL-terminated */
} rjob_t;

typedef struct {
    queue_t base;
    uv_loop_t *loop;
    redis_conn_t *cmd; /* commands */
    redis_conn_t *rd;  /* the blocking read */
    char stream[STREAM_MAX + 1];
    char dead[STREAM_MAX + 8];
    char consumer[32];
    uint32_t visibility_ms;
    queue_handler_cb handler;
    void *handler_ud;
    pl_map_t inflight; /* id -> rjob_t, jobs in the handler */
    size_t depth;      /* last XLEN seen */
    uint64_t full_at;  /* monotonic ms when Redis last refused an enqueue as full */
    size_t ndead;      /* last XLEN of the dead stream seen */
    bool reading;      /* an XREADGROUP (or XGROUP CREATE) is outstanding */
    bool claiming;     /* a claim script is outstanding */
    bool group_ready;  /* the group exists (as far as we know) */
    uv_timer_t claim;  /* periodic claim; also the retry after a read error */
    uv_timer_t reread; /* read again after an error */
    size_t ops;        /* our commands awaiting replies */
    bool closing;
    bool leaving;      /* the consumer-removal script was sent */
    bool finishing;    /* the command connection and the timers are closing */
    int closing_parts; /* connections + timers still closing */
    void (*close_cb)(void *);
    void *close_ud;
} rq_t;

static void scripts_init(void) {
    if (g_scripts_ready)
        return;
    redis_script_init(&g_enqueue, ENQUEUE_LUA);
    redis_script_init(&g_ack, ACK_LUA);
    redis_script_init(&g_dead, DEAD_LUA);
    redis_script_init(&g_claim, CLAIM_LUA);
    redis_script_init(&g_leave, LEAVE_LUA);
    g_scripts_ready = true;
}

static void maybe_closed(rq_t *q);
static void read_more(rq_t *q);

static size_t as_size(const redisReply *r) {
    return r && r->type == REDIS_REPLY_INTEGER && r->integer > 0 ? (size_t)r->integer : 0;
}

/* "1700000000000-5" -> a 64-bit id for logs. */
static uint64_t numeric_id(const char *id) {
    char *dash;
    unsigned long long ms = strtoull(id, &dash, 10);
    unsigned long long seq = *dash == '-' ? strtoull(dash + 1, NULL, 10) : 0;
    return ((uint64_t)ms << 20) | (seq & 0xfffff);
}

/* ---- enqueue --------------------------------------------------------------------------------- */

typedef struct {
    rq_t *q;
    queue_done_cb cb;
    void *ud;
} enq_t;

static void enqueue_reply(void *ud, int status, redisReply *r) {
    enq_t *e = ud;
    rq_t *q = e->q;
    if (status == 0 && r->type == REDIS_REPLY_INTEGER && r->integer < 0) {
        status = PL_EUNAVAIL; /* full */
        q->depth = q->base.opts.max_depth;
        q->full_at = pl_mono_ms();
    } else if (status == 0 && r->type == REDIS_REPLY_INTEGER)
        q->depth = (size_t)r->integer;
    else if (status == 0) {
        pl_log_error("queue.enqueue_failed", "queue=%s error=\"%s\"", q->stream,
                     r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        status = PL_EUNAVAIL;
    }
    if (e->cb)
        e->cb(e->ud, status);
    free(e);
    q->ops--;
    maybe_closed(q);
}

static int rq_enqueue(queue_t *base, const void *data, size_t len, queue_done_cb cb, void *ud) {
    rq_t *q = (rq_t *)base;
    if (q->closing)
        return PL_EUNAVAIL;
    /* Known full a moment ago: push back without a round trip. Later, ask Redis again (other
     * consumers drain the stream; our cached depth may be stale). */
    if (q->depth >= q->base.opts.max_depth && pl_mono_ms() - q->full_at < FULL_RECHECK_MS)
        return PL_EUNAVAIL;
    if (len > PAYLOAD_MAX)
        return PL_ETOOBIG;
    enq_t *e = malloc(sizeof *e);
    if (!e)
        return PL_ENOMEM;
    *e = (enq_t){q, cb, ud};
    redis_cmd_t m;
    redis_cmd_init(&m);
    redis_cmd_int(&m, 1);
    redis_cmd_str(&m, q->stream);
    redis_cmd_int(&m, q->base.opts.max_depth);
    redis_cmd_arg(&m, data, len);
    int rc = redis_conn_eval(q->cmd, &g_enqueue, &m, enqueue_reply, e);
    redis_cmd_dispose(&m);
    if (rc) {
        free(e);
        return rc == PL_ENOMEM || rc == PL_ETOOBIG ? rc : PL_EUNAVAIL;
    }
    q->ops++;
    return 0;
}

/* ---- delivery -------------------------------------------------------------------------------- */

/* Hands one entry ([id, [field, value, ...]]) to the handler, unless it is already in one here. */
static void deliver_entry(rq_t *q, const redisReply *id, const redisReply *fields, uint32_t n) {
    if (id->type != REDIS_REPLY_STRING || (size_t)id->len >= sizeof((rjob_t *)0)->id ||
        fields->type != REDIS_REPLY_ARRAY)
        return;
    if (pl_map_get(&q->inflight, id->str, (size_t)id->len))
        return; /* our own slow job, claimed back: it is still being worked on */
    const redisReply *d = NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING && !strcmp(fields->element[i]->str, "d"))
            d = fields->element[i + 1];
    size_t len = d && d->type == REDIS_REPLY_STRING ? (size_t)d->len : 0;
    rjob_t *j = malloc(sizeof *j + len + 1);
    if (!j)
        return; /* stays pending; claimed again after the visibility timeout */
    memcpy(j->id, id->str, (size_t)id->len);
    j->id[id->len] = '\0';
    j->idlen = (size_t)id->len;
    if (len)
        memcpy(j->data, d->str, len);
    j->data[len] = '\0';
    j->pub = (queue_job_t){.id = numeric_id(j->id), .data = j->data, .len = len, .attempt = n};
    if (pl_map_put(&q->inflight, j->id, j->idlen, j, NULL) != 0) {
        free(j);
        return;
    }
    q->handler(q->handler_ud, &j->pub);
}

static size_t free_slots(const rq_t *q) {
    size_t n = pl_map_count(&q->inflight);
    return n >= q->base.opts.max_in_flight ? 0 : q->base.opts.max_in_flight - n;
}

static void group_reply(void *ud, int status, redisReply *r);

static void create_group(rq_t *q) {
    redis_cmd_t m;
    redis_cmd_init(&m);
    redis_cmd_str(&m, "XGROUP");
    redis_cmd_str(&m, "CREATE");
    redis_cmd_str(&m, q->stream);
    redis_cmd_str(&m, GROUP);
    redis_cmd_str(&m, "0");
    redis_cmd_str(&m, "MKSTREAM");
    if (redis_conn_send(q->rd, &m, 0, group_reply, q) == 0) {
        q->reading = true;
        q->ops++;
    }
    redis_cmd_dispose(&m);
}

static void read_reply(void *ud, int status, redisReply *r) {
    rq_t *q = ud;
    q->reading = false;
    q->ops--;
    if (status != 0) {
        /* The connection is gone: the state callback starts reading again. */
        maybe_closed(q);
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        if (redis_reply_is_error(r, "NOGROUP")) {
            q->group_ready = false;
            if (!q->closing)
                create_group(q);
        } else {
            pl_log_error("queue.read_failed", "queue=%s error=\"%s\"", q->stream, r->str);
            if (!q->closing)
                uv_timer_start(&q->reread, (uv_timer_cb)read_more, 1000, 0);
        }
        maybe_closed(q);
        return;
    }
    /* [[stream, [[id, fields]...]]] or nil on timeout. */
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2) {
        redisReply *entries = r->element[0]->element[1];
        for (size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
            redisReply *e = entries->element[i];
            if (q->closing || !q->handler)
                break; /* the rest stays pending: claimed later by someone */
            if (e->type == REDIS_REPLY_ARRAY && e->elements == 2)
                deliver_entry(q, e->element[0], e->element[1], 1);
        }
    }
    read_more(q);
    maybe_closed(q);
}

static void group_reply(void *ud, int status, redisReply *r) {
    rq_t *q = ud;
    q->reading = false;
    q->ops--;
    if (status == 0 && (r->type != REDIS_REPLY_ERROR || redis_reply_is_error(r, "BUSYGROUP"))) {
        q->group_ready = true;
        read_more(q);
    } else if (status == 0) {
        pl_log_error("queue.group_failed", "queue=%s error=\"%s\"", q->stream, r->str);
        if (!q->closing)
            uv_timer_start(&q->reread, (uv_timer_cb)read_more, 1000, 0);
    }
    maybe_closed(q);
}

/* Starts the next blocking read when there is room and none is outstanding. */
static void read_more(rq_t *q) {
    if (q->closing || !q->handler || q->reading || !redis_conn_ready(q->rd))
        return;
    if (!q->group_ready) {
        create_group(q);
        return;
    }
    size_t slots = free_slots(q);
    if (slots == 0)
        return;
    redis_cmd_t m;
    redis_cmd_init(&m);
    redis_cmd_str(&m, "XREADGROUP");
    redis_cmd_str(&m, "GROUP");
    redis_cmd_str(&m, GROUP);
    redis_cmd_str(&m, q->consumer);
    redis_cmd_str(&m, "COUNT");
    redis_cmd_int(&m, (long long)(slots < READ_BATCH ? slots : READ_BATCH));
    redis_cmd_str(&m, "BLOCK");
    redis_cmd_int(&m, BLOCK_MS);
    redis_cmd_str(&m, "STREAMS");
    redis_cmd_str(&m, q->stream);
    redis_cmd_str(&m, ">");
    if (redis_conn_send(q->rd, &m, BLOCK_MS, read_reply, q) == 0) {
        q->reading = true;
        q->ops++;
    }
    redis_cmd_dispose(&m);
}

static void rd_state_cb(void *ud, int status) {
    rq_t *q = ud;
    if (status == 0) {
        q->group_ready = false; /* Redis may have restarted without it */
        read_more(q);
    }
}

/* ---- claims ---------------------------------------------------------------------------------- */

static void claim_reply(void *ud, int status, redisReply *r) {
    rq_t *q = ud;
    q->claiming = false;
    q->ops--;
    if (status == 0 && r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
        q->depth = as_size(r->element[1]);
        q->ndead = as_size(r->element[2]);
        redisReply *list = r->element[0];
        for (size_t i = 0; list->type == REDIS_REPLY_ARRAY && i < list->elements; i++) {
            redisReply *e = list->element[i];
            if (q->closing || !q->handler)
                break;
            if (e->type == REDIS_REPLY_ARRAY && e->elements == 3 &&
                e->element[2]->type == REDIS_REPLY_INTEGER) {
                long long n = e->element[2]->integer;
                deliver_entry(q, e->element[0], e->element[1],
                              n < 1            ? 1u
                              : n > UINT32_MAX ? UINT32_MAX
                                               : (uint32_t)n);
            }
        }
    } else if (status == 0 && r->type == REDIS_REPLY_ERROR && !redis_reply_is_error(r, "NOGROUP")) {
        pl_log_error("queue.claim_failed", "queue=%s error=\"%s\"", q->stream, r->str);
    }
    maybe_closed(q);
}

static void claim_cb(uv_timer_t *t) {
    rq_t *q = t->data;
    size_t slots = free_slots(q);
    if (q->closing || !q->handler || q->claiming || slots == 0 || !redis_conn_ready(q->cmd))
        return;
    redis_cmd_t m;
    redis_cmd_init(&m);
    redis_cmd_int(&m, 2);
    redis_cmd_str(&m, q->stream);
    redis_cmd_str(&m, q->dead);
    redis_cmd_str(&m, GROUP);
    redis_cmd_str(&m, q->consumer);
    redis_cmd_int(&m, q->visibility_ms);
    redis_cmd_int(&m, (long long)(slots < 100 ? slots : 100));
    redis_cmd_int(&m, q->base.opts.max_attempts);
    redis_cmd_int(&m, DEAD_MAX);
    redis_cmd_int(&m, pl_wall_ms());
    if (redis_conn_eval(q->cmd, &g_claim, &m, claim_reply, q) == 0) {
        q->claiming = true;
        q->ops++;
    }
    redis_cmd_dispose(&m);
}

/* ---- finishing jobs -------------------------------------------------------------------------- */

static void done_reply(void *ud, int status, redisReply *r) {
    rq_t *q = ud;
    q->ops--;
    if (status != 0) {
        pl_log_warn("queue.finish_unconfirmed", "queue=%s error=%s", q->stream,
                    pl_strerror(status));
    } else if (r->type == REDIS_REPLY_INTEGER) {
        q->depth = as_size(r);
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        q->depth = as_size(r->element[0]);
        q->ndead = as_size(r->element[1]);
    } else if (r->type == REDIS_REPLY_ERROR) {
        pl_log_error("queue.finish_failed", "queue=%s error=\"%s\"", q->stream, r->str);
    }
    maybe_closed(q);
}

static void rq_job_done(queue_t *base, queue_job_t *job, int status, const char *error) {
    rq_t *q = (rq_t *)base;
    rjob_t *j = (rjob_t *)job;
    pl_map_del(&q->inflight, j->id, j->idlen);
    redis_cmd_t m;
    redis_cmd_init(&m);
    int rc;
    if (status == 0) {
        redis_cmd_int(&m, 1);
        redis_cmd_str(&m, q->stream);
        redis_cmd_str(&m, GROUP);
        redis_cmd_str(&m, j->id);
        rc = redis_conn_eval(q->cmd, &g_ack, &m, done_reply, q);
    } else if (j->pub.attempt >= q->base.opts.max_attempts) {
        pl_log_error("queue.dead_letter", "queue=%s job=%s attempts=%u error=\"%s\"", q->stream,
                     j->id, j->pub.attempt, error ? error : "");
        redis_cmd_int(&m, 2);
        redis_cmd_str(&m, q->stream);
        redis_cmd_str(&m, q->dead);
        redis_cmd_str(&m, GROUP);
        redis_cmd_str(&m, j->id);
        redis_cmd_arg(&m, j->data, j->pub.len);
        redis_cmd_str(&m, error ? error : "");
        redis_cmd_int(&m, j->pub.attempt);
        redis_cmd_int(&m, DEAD_MAX);
        redis_cmd_int(&m, pl_wall_ms());
        rc = redis_conn_eval(q->cmd, &g_dead, &m, done_reply, q);
    } else {
        /* Pending it stays; claimable by anyone once the retry delay has passed. */
        uint32_t shift = j->pub.attempt > 1 ? j->pub.attempt - 1 : 0;
        uint64_t delay = shift > 20 ? UINT64_MAX : (uint64_t)q->base.opts.retry_delay_ms << shift;
        uint64_t idle = delay >= q->visibility_ms ? 0 : q->visibility_ms - delay;
        pl_log_warn("queue.retry", "queue=%s job=%s attempt=%u delay_ms=%llu error=\"%s\"",
                    q->stream, j->id, j->pub.attempt,
                    (unsigned long long)(delay < q->visibility_ms ? delay : q->visibility_ms),
                    error ? error : "");
        redis_cmd_str(&m, "XCLAIM");
        redis_cmd_str(&m, q->stream);
        redis_cmd_str(&m, GROUP);
        redis_cmd_str(&m, RETRY_OWNER);
        redis_cmd_str(&m, "0");
        redis_cmd_str(&m, j->id);
        redis_cmd_str(&m, "IDLE");
        redis_cmd_int(&m, (long long)idle);
        redis_cmd_str(&m, "JUSTID");
        rc = redis_conn_send(q->cmd, &m, 0, done_reply, q);
    }
    redis_cmd_dispose(&m);
    if (rc == 0)
        q->ops++;
    else
        pl_log_warn("queue.finish_unconfirmed", "queue=%s job=%s error=%s", q->stream, j->id,
                    pl_strerror(rc));
    free(j);
    read_more(q);
    maybe_closed(q);
}

static int rq_consume(queue_t *base, queue_handler_cb handler, void *ud) {
    rq_t *q = (rq_t *)base;
    if (q->handler)
        return UV_EBUSY;
    if (q->closing)
        return PL_EUNAVAIL;
    q->handler = handler;
    q->handler_ud = ud;
    uint32_t every = q->base.opts.retry_delay_ms;
    every = every < 50 ? 50 : every > 1000 ? 1000 : every;
    uv_timer_start(&q->claim, claim_cb, every, every);
    read_more(q);
    return 0;
}

static size_t rq_depth(const queue_t *base) {
    return ((const rq_t *)base)->depth;
}

static size_t rq_dead_count(const queue_t *base) {
    return ((const rq_t *)base)->ndead;
}

/* ---- closing --------------------------------------------------------------------------------- */

static void part_closed(rq_t *q) {
    if (--q->closing_parts > 0)
        return;
    pl_map_dispose(&q->inflight);
    void (*cb)(void *) = q->close_cb;
    void *ud = q->close_ud;
    free(q);
    if (cb)
        cb(ud);
}

static void conn_closed(void *ud) {
    part_closed(ud);
}

static void timer_closed(uv_handle_t *h) {
    part_closed(h->data);
}

static void leave_reply(void *ud, int status, redisReply *r) {
    rq_t *q = ud;
    (void)status;
    (void)r;
    q->ops--;
    maybe_closed(q);
}

/* Everything in handlers finished and every reply came: leave the group (when nothing of ours is
 * pending) and close. */
static void maybe_closed(rq_t *q) {
    if (!q->closing || pl_map_count(&q->inflight) > 0 || q->finishing)
        return;
    if (!q->leaving) {
        q->leaving = true;
        if (q->handler) {
            redis_cmd_t m;
            redis_cmd_init(&m);
            redis_cmd_int(&m, 1);
            redis_cmd_str(&m, q->stream);
            redis_cmd_str(&m, GROUP);
            redis_cmd_str(&m, q->consumer);
            if (redis_conn_eval(q->cmd, &g_leave, &m, leave_reply, q) == 0)
                q->ops++;
            redis_cmd_dispose(&m);
        }
    }
    if (q->ops > 0)
        return;
    q->finishing = true;
    redis_conn_close(q->cmd, conn_closed, q);
    uv_close((uv_handle_t *)&q->claim, timer_closed);
    uv_close((uv_handle_t *)&q->reread, timer_closed);
}

static void rq_close(queue_t *base, void (*cb)(void *), void *ud) {
    rq_t *q = (rq_t *)base;
    if (q->closing)
        return;
    q->closing = true;
    q->close_cb = cb;
    q->close_ud = ud;
    q->closing_parts = 4; /* two connections, two timers */
    uv_timer_stop(&q->claim);
    uv_timer_stop(&q->reread);
    /* The blocking read would hold a graceful close up to BLOCK_MS: drop that connection now
     * (its reply comes back as PL_EUNAVAIL; what it would have read stays in the stream). */
    redis_conn_abort(q->rd, conn_closed, q);
    maybe_closed(q);
}

static const queue_ops_t g_ops = {
    .enqueue = rq_enqueue,
    .consume = rq_consume,
    .job_done = rq_job_done,
    .depth = rq_depth,
    .dead_count = rq_dead_count,
    .close = rq_close,
};

queue_t *queue_redis_new(uv_loop_t *loop, const char *url, const char *stream,
                         const queue_options_t *opts, uint32_t visibility_ms) {
    if (!stream)
        stream = QUEUE_NAME;
    size_t sl = strlen(stream);
    if (sl == 0 || sl > STREAM_MAX)
        return NULL;
    scripts_init();
    rq_t *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->base.ops = &g_ops;
    queue_options_default(&q->base.opts);
    if (opts) {
        if (opts->max_depth)
            q->base.opts.max_depth = opts->max_depth;
        if (opts->max_in_flight)
            q->base.opts.max_in_flight = opts->max_in_flight;
        if (opts->max_attempts)
            q->base.opts.max_attempts = opts->max_attempts;
        if (opts->retry_delay_ms)
            q->base.opts.retry_delay_ms = opts->retry_delay_ms;
    }
    q->loop = loop;
    q->visibility_ms = visibility_ms ? visibility_ms : DEFAULT_VISIBILITY_MS;
    memcpy(q->stream, stream, sl + 1);
    snprintf(q->dead, sizeof q->dead, "%s:dead", stream);
    pl_random_id(q->consumer, 12);
    redis_conn_options_t o;
    redis_conn_options_default(&o);
    o.name = "queue";
    q->cmd = redis_conn_new(loop, url, &o);
    o.name = "queue-read";
    q->rd = q->cmd ? redis_conn_new(loop, url, &o) : NULL;
    if (!q->rd) {
        if (q->cmd)
            redis_conn_close(q->cmd, NULL, NULL);
        free(q);
        return NULL;
    }
    redis_conn_on_state(q->rd, rd_state_cb, q);
    pl_map_init(&q->inflight);
    uv_timer_init(loop, &q->claim);
    uv_timer_init(loop, &q->reread);
    q->claim.data = q->reread.data = q;
    uv_unref((uv_handle_t *)&q->claim);
    return &q->base;
}
