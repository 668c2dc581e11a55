/* A Redis connection on the libuv loop: see redis_conn.h for the contract.
 *
 * Structure. Each hiredis context gets an rpoll_t (a uv_poll_t on its socket) that hiredis's
 * event hooks start and stop; the context's cleanup hook closes it, and it is freed in the close
 * callback, so a late hook call never touches freed memory. The connection keeps its own list
 * of pending commands (rcmd_t, oldest first) besides hiredis's, for the reply deadline and the
 * EVAL fallback. hiredis is entered only from poll_cb and from our timers and close; each entry
 * is bracketed by depth++/--, and a redis_conn_close requested from a callback inside (depth >
 * 0) is carried out when depth is back to 0, because freeing a context inside some hiredis
 * callbacks (the connect callback in 0.14) is a use after free.
 *
 * The cleanup hook is the one place that learns that a context is gone, whatever the cause
 * (failed connect, I/O error, our own free, clean disconnect): it moves the connection to
 * WAITING and arms the retry timer. */
#include "bus/redis_conn.h"

#include "core/clock.h"
#include "core/id.h"
#include "core/log.h"

#include <errno.h>
#include <hiredis/async.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUB_NAME_MAX 1024

typedef enum { RC_RESOLVING, RC_CONNECTING, RC_READY, RC_WAITING, RC_CLOSING } rc_state_t;

typedef struct rpoll {
    uv_poll_t poll; /* on the context's socket */
    struct redis_conn *conn;
    redisAsyncContext *ac; /* valid until cleanup */
    int events;            /* UV_READABLE | UV_WRITABLE hiredis asked for */
    int fail_status;       /* status of a failed connect, from the connect callback */
    bool connected;        /* the connect callback reported success */
    bool closed;           /* cleanup ran: ignore every later hook call */
} rpoll_t;

typedef struct rcmd {
    struct rcmd *prev, *next; /* the connection's pending list, oldest first */
    struct redis_conn *conn;
    redis_reply_cb cb;
    void *ud;
    uint64_t deadline;            /* monotonic ms by which the reply must arrive */
    uint32_t extra_ms;            /* server-side blocking time allowed on top of the timeout */
    const redis_script_t *script; /* EVALSHA sent: retry as EVAL on NOSCRIPT; else NULL */
    char *body;                   /* the arguments, kept for that retry (owned) */
    size_t body_len;
    uint32_t argc; /* arguments in body */
} rcmd_t;

typedef struct sub {
    struct sub *next;
    struct redis_conn *conn;
    bool pattern;
    redis_message_cb cb;
    void *ud;
    size_t len;
    char name[]; /* channel or pattern, NUL-terminated */
} sub_t;

struct redis_conn {
    uv_loop_t *loop;
    redis_conn_options_t opts;
    char name[32]; /* for logs */
    redis_url_t url;
    char ip[REDIS_HOST_MAX + 1]; /* numeric address connected to */
    rc_state_t state;
    redisAsyncContext *ac; /* current context, NULL when none */
    rpoll_t *poll;         /* its poll wrapper */
    uv_timer_t timer;      /* WAITING: retry; CONNECTING: connect timeout */
    uv_timer_t watchdog;   /* reply deadlines; repeating, unreferenced */
    uv_getaddrinfo_t *gai; /* RESOLVING: the request, NULL otherwise */
    uint32_t backoff_ms;   /* next retry delay */
    uint32_t failures;     /* failed attempts since the last connect */
    rcmd_t *head, *tail;   /* pending commands */
    size_t npending;
    sub_t *subs;
    redis_state_cb state_cb;
    void *state_ud;
    pl_buf_t scratch;     /* a full command being handed to hiredis */
    int depth;            /* nesting of hiredis calls on the stack */
    bool close_requested; /* close asked for while depth > 0 */
    bool abort;           /* close without waiting for replies */
    bool timers_closed;
    int handles; /* open uv handles and requests */
    void (*close_cb)(void *);
    void *close_ud;
};

/* ---- URL ------------------------------------------------------------------------------------- */

int redis_url_parse(const char *url, redis_url_t *out) {
    memset(out, 0, sizeof *out);
    out->port = 6379;
    if (!url || strncmp(url, "redis://", 8) != 0)
        return PL_EINVAL;
    const char *p = url + 8;
    const char *host, *host_end;
    if (*p == '[') {
        host = p + 1;
        host_end = strchr(host, ']');
        if (!host_end)
            return PL_EINVAL;
        p = host_end + 1;
    } else {
        host = p;
        while (*p && *p != ':' && *p != '/' && *p != '@')
            p++;
        host_end = p;
        if (*p == '@')
            return PL_EINVAL; /* user info: not supported */
    }
    size_t hl = (size_t)(host_end - host);
    if (hl == 0 || hl > REDIS_HOST_MAX)
        return PL_EINVAL;
    for (size_t i = 0; i < hl; i++) {
        unsigned char ch = (unsigned char)host[i];
        if (ch <= ' ' || ch >= 0x7f || ch == '@' || ch == '[' || ch == ']')
            return PL_EINVAL;
    }
    memcpy(out->host, host, hl);
    out->host[hl] = '\0';
    if (*p == ':') {
        const char *d = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        uint64_t port;
        if (!pl_slice_to_u64(pl_slice(d, (size_t)(p - d)), 65535, &port) || port == 0)
            return PL_EINVAL;
        out->port = (uint16_t)port;
    }
    if (*p == '/') {
        const char *d = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p > d) {
            uint64_t db;
            if (!pl_slice_to_u64(pl_slice(d, (size_t)(p - d)), 1000000, &db))
                return PL_EINVAL;
            out->db = (uint32_t)db;
        }
    }
    return *p == '\0' ? 0 : PL_EINVAL;
}

/* ---- commands -------------------------------------------------------------------------------- */

void redis_cmd_init(redis_cmd_t *m) {
    pl_buf_init(&m->body, REDIS_CMD_MAX);
    m->argc = 0;
    m->err = 0;
}

void redis_cmd_dispose(redis_cmd_t *m) {
    pl_buf_dispose(&m->body);
    m->argc = 0;
    m->err = 0;
}

void redis_cmd_reset(redis_cmd_t *m) {
    pl_buf_reset(&m->body);
    m->argc = 0;
    m->err = 0;
}

void redis_cmd_arg(redis_cmd_t *m, const void *p, size_t n) {
    if (m->err)
        return;
    int rc = n > REDIS_CMD_MAX ? PL_ETOOBIG : pl_buf_printf(&m->body, "$%zu\r\n", n);
    if (rc == 0 && n)
        rc = pl_buf_append(&m->body, p, n);
    if (rc == 0)
        rc = pl_buf_append(&m->body, "\r\n", 2);
    if (rc)
        m->err = rc;
    else
        m->argc++;
}

void redis_cmd_str(redis_cmd_t *m, const char *s) {
    redis_cmd_arg(m, s, strlen(s));
}

void redis_cmd_int(redis_cmd_t *m, long long v) {
    char b[24];
    int n = snprintf(b, sizeof b, "%lld", v);
    redis_cmd_arg(m, b, (size_t)n);
}

void redis_cmd_fmt(redis_cmd_t *m, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        m->err = m->err ? m->err : PL_EINVAL;
        return;
    }
    if ((size_t)n < sizeof small) {
        redis_cmd_arg(m, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        m->err = m->err ? m->err : PL_ENOMEM;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    redis_cmd_arg(m, big, (size_t)n);
    free(big);
}

void redis_script_init(redis_script_t *s, const char *src) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    s->src = src;
    s->len = strlen(src);
    if (EVP_Digest(src, s->len, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20) {
        /* No SHA-1: every call takes the EVAL fallback (a wrong sha is just unknown). */
        memset(s->sha, '0', 40);
    } else {
        for (unsigned i = 0; i < 20; i++)
            snprintf(s->sha + 2 * i, 3, "%02x", md[i]);
    }
    s->sha[40] = '\0';
}

bool redis_reply_is_error(const redisReply *reply, const char *prefix) {
    size_t n = strlen(prefix);
    return reply && reply->type == REDIS_REPLY_ERROR && reply->str && (size_t)reply->len >= n &&
           memcmp(reply->str, prefix, n) == 0;
}

/* ---- options --------------------------------------------------------------------------------- */

void redis_conn_options_default(redis_conn_options_t *o) {
    o->connect_timeout_ms = 2000;
    o->command_timeout_ms = 5000;
    o->backoff_min_ms = 100;
    o->backoff_max_ms = 5000;
    o->max_pending = 100000;
    o->name = "redis";
}

/* ---- pending list ---------------------------------------------------------------------------- */

static void pending_push(redis_conn_t *c, rcmd_t *r) {
    r->next = NULL;
    r->prev = c->tail;
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->npending++;
}

static void pending_unlink(redis_conn_t *c, rcmd_t *r) {
    if (r->prev)
        r->prev->next = r->next;
    else
        c->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        c->tail = r->prev;
    r->prev = r->next = NULL;
    c->npending--;
}

/* ---- state ----------------------------------------------------------------------------------- */

static void connect_attempt(redis_conn_t *c);
static void do_close(redis_conn_t *c);
static void timer_cb(uv_timer_t *t);

static void leave_hiredis(redis_conn_t *c) {
    if (--c->depth == 0 && c->close_requested) {
        c->close_requested = false;
        do_close(c);
    }
}

static void fire_state(redis_conn_t *c, int status) {
    if (c->state_cb && c->state != RC_CLOSING)
        c->state_cb(c->state_ud, status);
}

/* Arms the retry after a failed attempt or a lost connection. */
static void schedule_retry(redis_conn_t *c, int status) {
    if (c->state == RC_CLOSING)
        return;
    c->state = RC_WAITING;
    c->failures++;
    uint32_t wait = c->backoff_ms;
    uint32_t r;
    pl_random_bytes(&r, sizeof r);
    wait += r % (wait / 5 + 1);
    uint64_t next = (uint64_t)c->backoff_ms * 2;
    c->backoff_ms = next > c->opts.backoff_max_ms ? c->opts.backoff_max_ms : (uint32_t)next;
    if (c->failures == 1 || c->failures % 20 == 0)
        pl_log_warn("redis.unavailable", "conn=%s addr=%s:%u failures=%u retry_ms=%u error=%s",
                    c->name, c->url.host, (unsigned)c->url.port, c->failures, wait,
                    pl_strerror(status));
    uv_timer_start(&c->timer, timer_cb, wait, 0);
    fire_state(c, status);
}

/* ---- the libuv adapter for hiredis ----------------------------------------------------------- */

static void poll_cb(uv_poll_t *h, int status, int events);

static void ev_apply(rpoll_t *p) {
    if (p->closed)
        return;
    if (p->events)
        uv_poll_start(&p->poll, p->events, poll_cb);
    else
        uv_poll_stop(&p->poll);
}

static void ev_add_read(void *priv) {
    rpoll_t *p = priv;
    if (!(p->events & UV_READABLE)) {
        p->events |= UV_READABLE;
        ev_apply(p);
    }
}

static void ev_del_read(void *priv) {
    rpoll_t *p = priv;
    if (p->events & UV_READABLE) {
        p->events &= ~UV_READABLE;
        ev_apply(p);
    }
}

static void ev_add_write(void *priv) {
    rpoll_t *p = priv;
    if (!(p->events & UV_WRITABLE)) {
        p->events |= UV_WRITABLE;
        ev_apply(p);
    }
}

static void ev_del_write(void *priv) {
    rpoll_t *p = priv;
    if (p->events & UV_WRITABLE) {
        p->events &= ~UV_WRITABLE;
        ev_apply(p);
    }
}

static void maybe_finish_close(redis_conn_t *c);

static void handle_closed(uv_handle_t *h) {
    redis_conn_t *c = h->data;
    c->handles--;
    maybe_finish_close(c);
}

static void poll_closed(uv_handle_t *h) {
    rpoll_t *p = h->data;
    redis_conn_t *c = p->conn;
    free(p);
    c->handles--;
    maybe_finish_close(c);
}

static void close_timers(redis_conn_t *c) {
    if (c->timers_closed)
        return;
    c->timers_closed = true;
    uv_close((uv_handle_t *)&c->timer, handle_closed);
    uv_close((uv_handle_t *)&c->watchdog, handle_closed);
}

/* hiredis is done with the context (freed right after this returns). */
static void ev_cleanup(void *priv) {
    rpoll_t *p = priv;
    if (p->closed)
        return;
    p->closed = true;
    uv_close((uv_handle_t *)&p->poll, poll_closed);
    redis_conn_t *c = p->conn;
    if (c->poll != p)
        return;
    bool was_ready = p->connected;
    int status = p->fail_status ? p->fail_status : PL_EUNAVAIL;
    c->poll = NULL;
    c->ac = NULL;
    if (c->state == RC_CLOSING) {
        close_timers(c);
        return;
    }
    if (was_ready)
        pl_log_warn("redis.lost", "conn=%s addr=%s:%u error=\"%s\"", c->name, c->url.host,
                    (unsigned)c->url.port, p->ac->errstr ? p->ac->errstr : "disconnected");
    /* After losing an established connection, the first retry comes quickly. */
    if (was_ready)
        c->failures = 0;
    schedule_retry(c, status);
}

static void on_connect(const redisAsyncContext *ac, int status) {
    redis_conn_t *c = ac->data;
    rpoll_t *p = ac->ev.data;
    if (status != REDIS_OK) {
        /* Trust status, not ac->err (MACHINE-NOTES.md). hiredis has just put the socket's
         * error in errno; the context is freed after this returns (cleanup reports it). */
        int e = errno;
        p->fail_status = e > 0 ? uv_translate_sys_error(e) : PL_EUNAVAIL;
        if (c->state != RC_CLOSING)
            c->state = RC_WAITING; /* commands sent from callbacks now fail fast */
        return;
    }
    p->connected = true;
    if (c->state == RC_CLOSING)
        return;
    c->state = RC_READY;
    uv_timer_stop(&c->timer);
    if (c->failures)
        pl_log_info("redis.connected", "conn=%s addr=%s:%u after_failures=%u", c->name, c->url.host,
                    (unsigned)c->url.port, c->failures);
    else
        pl_log_debug("redis.connected", "conn=%s addr=%s:%u", c->name, c->url.host,
                     (unsigned)c->url.port);
    c->failures = 0;
    c->backoff_ms = c->opts.backoff_min_ms;
    fire_state(c, 0);
}

static void sub_cb(redisAsyncContext *ac, void *r, void *priv);

/* Sends one subscription on the current context (before the connect completes hiredis keeps
 * it in its output buffer). */
static void subscribe_one(redis_conn_t *c, sub_t *s) {
    pl_buf_reset(&c->scratch);
    const char *verb = s->pattern ? "PSUBSCRIBE" : "SUBSCRIBE";
    int rc = pl_buf_printf(&c->scratch, "*2\r\n$%zu\r\n%s\r\n$%zu\r\n", strlen(verb), verb, s->len);
    if (rc == 0)
        rc = pl_buf_append(&c->scratch, s->name, s->len);
    if (rc == 0)
        rc = pl_buf_append(&c->scratch, "\r\n", 1 + 2); /* NUL too: hiredis 0.14 uses strchr */
    if (rc != 0 || !c->ac ||
        redisAsyncFormattedCommand(c->ac, sub_cb, s, c->scratch.data, c->scratch.len - 1) !=
            REDIS_OK)
        pl_log_error("redis.subscribe_failed", "conn=%s channel=%s", c->name, s->name);
}

static void poll_cb(uv_poll_t *h, int status, int events) {
    rpoll_t *p = h->data;
    redis_conn_t *c = p->conn;
    redisAsyncContext *ac = p->ac;
    c->depth++;
    if (status < 0) {
        /* POLLERR (libuv stopped the handle): let hiredis read the error from the socket. */
        if (!(ac->c.flags & REDIS_CONNECTED))
            redisAsyncHandleWrite(ac);
        else
            redisAsyncHandleRead(ac);
        if (!p->closed) {
            /* hiredis saw nothing wrong, but the handle is stopped: drop the context. */
            if (!p->fail_status)
                p->fail_status = status;
            if (c->state != RC_CLOSING)
                c->state = RC_WAITING;
            redisAsyncFree(ac);
        }
    } else {
        if (events & UV_READABLE)
            redisAsyncHandleRead(ac);
        if (!p->closed && (events & UV_WRITABLE))
            redisAsyncHandleWrite(ac);
    }
    leave_hiredis(c);
}

/* ---- replies --------------------------------------------------------------------------------- */

static int issue(redis_conn_t *c, rcmd_t *r, const char *head, size_t head_len, uint32_t argc,
                 const char *body, size_t body_len);
static void reply_cb(redisAsyncContext *ac, void *reply, void *priv);

static int eval_head(pl_buf_t *b, const redis_script_t *s, bool full) {
    pl_buf_reset(b);
    if (full) {
        int rc = pl_buf_printf(b, "$4\r\nEVAL\r\n$%zu\r\n", s->len);
        if (rc == 0)
            rc = pl_buf_append(b, s->src, s->len);
        return rc ? rc : pl_buf_append(b, "\r\n", 2);
    }
    return pl_buf_printf(b, "$7\r\nEVALSHA\r\n$40\r\n%s\r\n", s->sha);
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *priv) {
    rcmd_t *r = priv;
    redis_conn_t *c = r->conn;
    redisReply *rep = reply;
    (void)ac;
    if (!rep && c->state == RC_READY)
        c->state = RC_WAITING; /* the context is going away: later sends fail fast */
    if (rep && r->script && redis_reply_is_error(rep, "NOSCRIPT")) {
        /* The server does not know the script (restarted, flushed): send it whole, once. */
        const redis_script_t *s = r->script;
        r->script = NULL;
        pending_unlink(c, r);
        pl_buf_t head;
        pl_buf_init(&head, 0);
        int rc = eval_head(&head, s, true);
        if (rc == 0)
            rc = issue(c, r, head.data, head.len, r->argc + 2, r->body, r->body_len);
        pl_buf_dispose(&head);
        if (rc == 0)
            return;
        /* Could not resend: the caller sees the NOSCRIPT error. */
        pending_push(c, r);
    }
    pending_unlink(c, r);
    if (r->cb)
        r->cb(r->ud, rep ? 0 : PL_EUNAVAIL, rep);
    free(r->body);
    free(r);
}

static void sub_cb(redisAsyncContext *ac, void *reply, void *priv) {
    sub_t *s = priv;
    redisReply *rep = reply;
    (void)ac;
    if (!rep || rep->type != REDIS_REPLY_ARRAY)
        return;
    /* ["message", channel, data] or ["pmessage", pattern, channel, data]. */
    size_t base = s->pattern ? 1 : 0;
    if (rep->elements != 3 + base)
        return;
    redisReply *kind = rep->element[0], *ch = rep->element[1 + base],
               *data = rep->element[2 + base];
    const char *want = s->pattern ? "pmessage" : "message";
    if (kind->type != REDIS_REPLY_STRING || strcmp(kind->str, want) != 0 ||
        ch->type != REDIS_REPLY_STRING || data->type != REDIS_REPLY_STRING)
        return;
    s->cb(s->ud, ch->str, (size_t)ch->len, data->str, (size_t)data->len);
}

/* Hands a formatted command to hiredis: "*argc" + head + body. */
static int issue(redis_conn_t *c, rcmd_t *r, const char *head, size_t head_len, uint32_t argc,
                 const char *body, size_t body_len) {
    pl_buf_reset(&c->scratch);
    int rc = pl_buf_printf(&c->scratch, "*%u\r\n", argc);
    if (rc == 0 && head_len)
        rc = pl_buf_append(&c->scratch, head, head_len);
    if (rc == 0 && body_len)
        rc = pl_buf_append(&c->scratch, body, body_len);
    /* A NUL after the command: hiredis 0.14 scans the command name with strchr. */
    if (rc == 0)
        rc = pl_buf_append(&c->scratch, "", 1);
    if (rc)
        return rc;
    if (!c->ac || redisAsyncFormattedCommand(c->ac, reply_cb, r, c->scratch.data,
                                             c->scratch.len - 1) != REDIS_OK)
        return PL_EUNAVAIL;
    r->deadline = pl_mono_ms() + c->opts.command_timeout_ms + r->extra_ms;
    pending_push(c, r);
    return 0;
}

static bool accepting(const redis_conn_t *c) {
    return c->ac && (c->state == RC_READY || c->state == RC_CONNECTING) &&
           c->npending < c->opts.max_pending;
}

int redis_conn_send(redis_conn_t *c, const redis_cmd_t *m, uint32_t extra_ms, redis_reply_cb cb,
                    void *ud) {
    if (m->err)
        return m->err;
    if (m->argc == 0 || c->subs)
        return PL_EINVAL;
    if (!accepting(c))
        return PL_EUNAVAIL;
    rcmd_t *r = calloc(1, sizeof *r);
    if (!r)
        return PL_ENOMEM;
    r->conn = c;
    r->cb = cb;
    r->ud = ud;
    r->extra_ms = extra_ms;
    int rc = issue(c, r, NULL, 0, m->argc, m->body.data, m->body.len);
    if (rc)
        free(r);
    return rc;
}

int redis_conn_eval(redis_conn_t *c, const redis_script_t *s, const redis_cmd_t *m,
                    redis_reply_cb cb, void *ud) {
    if (m->err)
        return m->err;
    if (m->argc == 0 || c->subs)
        return PL_EINVAL;
    if (!accepting(c))
        return PL_EUNAVAIL;
    rcmd_t *r = calloc(1, sizeof *r);
    if (!r)
        return PL_ENOMEM;
    r->body = malloc(m->body.len ? m->body.len : 1);
    if (!r->body) {
        free(r);
        return PL_ENOMEM;
    }
    memcpy(r->body, m->body.data, m->body.len);
    r->body_len = m->body.len;
    r->argc = m->argc;
    r->conn = c;
    r->cb = cb;
    r->ud = ud;
    r->script = s;
    char head[64];
    int hl = snprintf(head, sizeof head, "$7\r\nEVALSHA\r\n$40\r\n%s\r\n", s->sha);
    int rc = issue(c, r, head, (size_t)hl, m->argc + 2, r->body, r->body_len);
    if (rc) {
        free(r->body);
        free(r);
    }
    return rc;
}

int redis_conn_subscribe(redis_conn_t *c, const char *channel, bool pattern, redis_message_cb cb,
                         void *ud) {
    size_t n = strlen(channel);
    if (n == 0 || n > SUB_NAME_MAX)
        return PL_EINVAL;
    sub_t *s = calloc(1, sizeof *s + n + 1);
    if (!s)
        return PL_ENOMEM;
    s->conn = c;
    s->pattern = pattern;
    s->cb = cb;
    s->ud = ud;
    s->len = n;
    memcpy(s->name, channel, n + 1);
    s->next = c->subs;
    c->subs = s;
    if (c->ac)
        subscribe_one(c, s);
    return 0;
}

/* ---- connecting ------------------------------------------------------------------------------ */

static void select_cb(void *ud, int status, redisReply *reply) {
    redis_conn_t *c = ud;
    if (status == 0 && reply->type == REDIS_REPLY_ERROR)
        pl_log_error("redis.select_failed", "conn=%s db=%u error=\"%s\"", c->name, c->url.db,
                     reply->str);
}

static void start_context(redis_conn_t *c) {
    redisAsyncContext *ac = redisAsyncConnect(c->ip, c->url.port);
    if (!ac) {
        schedule_retry(c, PL_ENOMEM);
        return;
    }
    if (ac->err) {
        int e = errno;
        int status = e > 0 ? uv_translate_sys_error(e) : PL_EUNAVAIL;
        redisAsyncFree(ac); /* no hooks attached yet */
        schedule_retry(c, status);
        return;
    }
    rpoll_t *p = calloc(1, sizeof *p);
    if (!p || uv_poll_init_socket(c->loop, &p->poll, ac->c.fd) != 0) {
        free(p);
        redisAsyncFree(ac);
        schedule_retry(c, PL_ENOMEM);
        return;
    }
    c->handles++;
    p->poll.data = p;
    p->conn = c;
    p->ac = ac;
    ac->data = c;
    ac->ev.data = p;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    c->ac = ac;
    c->poll = p;
    c->state = RC_CONNECTING;
    redisAsyncSetConnectCallback(ac, on_connect); /* starts watching for writability */
    for (sub_t *s = c->subs; s; s = s->next)
        subscribe_one(c, s);
    if (c->url.db && !c->subs) {
        redis_cmd_t m;
        redis_cmd_init(&m);
        redis_cmd_str(&m, "SELECT");
        redis_cmd_int(&m, c->url.db);
        if (redis_conn_send(c, &m, 0, select_cb, c) != 0)
            pl_log_error("redis.select_failed", "conn=%s db=%u", c->name, c->url.db);
        redis_cmd_dispose(&m);
    }
    uv_timer_start(&c->timer, timer_cb, c->opts.connect_timeout_ms, 0);
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
    redis_conn_t *c = req->data;
    free(req);
    c->handles--;
    c->gai = NULL;
    if (c->state == RC_CLOSING) {
        uv_freeaddrinfo(res);
        maybe_finish_close(c);
        return;
    }
    int rc = status;
    if (rc == 0 && res) {
        if (res->ai_family == AF_INET6)
            rc = uv_ip6_name((struct sockaddr_in6 *)res->ai_addr, c->ip, sizeof c->ip);
        else
            rc = uv_ip4_name((struct sockaddr_in *)res->ai_addr, c->ip, sizeof c->ip);
    } else if (rc == 0) {
        rc = UV_EAI_NONAME;
    }
    uv_freeaddrinfo(res);
    if (rc) {
        schedule_retry(c, rc);
        return;
    }
    start_context(c);
}

static void connect_attempt(redis_conn_t *c) {
    struct in_addr a4;
    struct in6_addr a6;
    if (strcmp(c->url.host, "localhost") == 0) {
        snprintf(c->ip, sizeof c->ip, "127.0.0.1");
    } else if (uv_inet_pton(AF_INET, c->url.host, &a4) == 0 ||
               uv_inet_pton(AF_INET6, c->url.host, &a6) == 0) {
        snprintf(c->ip, sizeof c->ip, "%s", c->url.host);
    } else {
        /* A name: resolve off the loop (DESIGN.md: no DNS on the loop thread). */
        uv_getaddrinfo_t *req = calloc(1, sizeof *req);
        if (!req) {
            schedule_retry(c, PL_ENOMEM);
            return;
        }
        req->data = c;
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        int rc = uv_getaddrinfo(c->loop, req, gai_cb, c->url.host, NULL, &hints);
        if (rc) {
            free(req);
            schedule_retry(c, rc);
            return;
        }
        c->handles++;
        c->gai = req;
        c->state = RC_RESOLVING;
        return;
    }
    start_context(c);
}

/* Drops the current context now (connect timeout, reply deadline): waiting commands get
 * PL_EUNAVAIL; the cleanup hook arms the retry. */
static void drop_context(redis_conn_t *c, int status) {
    if (!c->ac)
        return;
    redisAsyncContext *ac = c->ac;
    c->poll->fail_status = status;
    if (c->state != RC_CLOSING)
        c->state = RC_WAITING;
    c->depth++;
    redisAsyncFree(ac);
    leave_hiredis(c);
}

static void timer_cb(uv_timer_t *t) {
    redis_conn_t *c = t->data;
    if (c->state == RC_WAITING) {
        connect_attempt(c);
    } else if (c->state == RC_CONNECTING) {
        pl_log_warn("redis.connect_timeout", "conn=%s addr=%s:%u timeout_ms=%u", c->name,
                    c->url.host, (unsigned)c->url.port, c->opts.connect_timeout_ms);
        drop_context(c, UV_ETIMEDOUT);
    }
}

static void watchdog_cb(uv_timer_t *t) {
    redis_conn_t *c = t->data;
    if (c->head && c->ac && pl_mono_ms() > c->head->deadline) {
        pl_log_warn("redis.reply_timeout", "conn=%s addr=%s:%u pending=%zu", c->name, c->url.host,
                    (unsigned)c->url.port, c->npending);
        drop_context(c, UV_ETIMEDOUT);
    }
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

redis_conn_t *redis_conn_new(uv_loop_t *loop, const char *url, const redis_conn_options_t *opts) {
    redis_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (redis_url_parse(url, &c->url) != 0) {
        pl_log_error("redis.bad_url", "url=\"%s\"", url ? url : "");
        free(c);
        return NULL;
    }
    if (opts)
        c->opts = *opts;
    else
        redis_conn_options_default(&c->opts);
    redis_conn_options_t d;
    redis_conn_options_default(&d);
    if (!c->opts.connect_timeout_ms)
        c->opts.connect_timeout_ms = d.connect_timeout_ms;
    if (!c->opts.command_timeout_ms)
        c->opts.command_timeout_ms = d.command_timeout_ms;
    if (!c->opts.backoff_min_ms)
        c->opts.backoff_min_ms = d.backoff_min_ms;
    if (c->opts.backoff_max_ms < c->opts.backoff_min_ms)
        c->opts.backoff_max_ms = c->opts.backoff_min_ms;
    if (!c->opts.max_pending)
        c->opts.max_pending = d.max_pending;
    snprintf(c->name, sizeof c->name, "%s", c->opts.name ? c->opts.name : "redis");
    c->opts.name = NULL;
    c->loop = loop;
    c->backoff_ms = c->opts.backoff_min_ms;
    pl_buf_init(&c->scratch, (size_t)REDIS_CMD_MAX + (1u << 20));
    uv_timer_init(loop, &c->timer);
    uv_timer_init(loop, &c->watchdog);
    c->timer.data = c->watchdog.data = c;
    c->handles = 2;
    uint32_t every = c->opts.command_timeout_ms / 4;
    every = every < 50 ? 50 : every > 1000 ? 1000 : every;
    uv_timer_start(&c->watchdog, watchdog_cb, every, every);
    uv_unref((uv_handle_t *)&c->watchdog);
    connect_attempt(c);
    return c;
}

void redis_conn_on_state(redis_conn_t *c, redis_state_cb cb, void *ud) {
    c->state_cb = cb;
    c->state_ud = ud;
}

bool redis_conn_ready(const redis_conn_t *c) {
    return c->state == RC_READY;
}

size_t redis_conn_pending(const redis_conn_t *c) {
    return c->npending;
}

uint32_t redis_conn_failures(const redis_conn_t *c) {
    return c->failures;
}

uint32_t redis_conn_backoff_ms(const redis_conn_t *c) {
    return c->backoff_ms;
}

static void maybe_finish_close(redis_conn_t *c) {
    if (c->state != RC_CLOSING || c->handles > 0 || c->ac || c->depth > 0)
        return;
    while (c->subs) {
        sub_t *s = c->subs;
        c->subs = s->next;
        free(s);
    }
    pl_buf_dispose(&c->scratch);
    void (*cb)(void *) = c->close_cb;
    void *ud = c->close_ud;
    free(c);
    if (cb)
        cb(ud);
}

static void do_close(redis_conn_t *c) {
    if (c->gai)
        uv_cancel((uv_req_t *)c->gai);
    uv_timer_stop(&c->timer);
    if (c->ac) {
        redisAsyncContext *ac = c->ac;
        c->depth++;
        if ((ac->c.flags & REDIS_CONNECTED) && !c->abort)
            redisAsyncDisconnect(ac); /* answers what was sent, then disconnects */
        else
            redisAsyncFree(ac);
        leave_hiredis(c);
    } else {
        close_timers(c);
    }
}

void redis_conn_close(redis_conn_t *c, void (*cb)(void *), void *ud) {
    c->state = RC_CLOSING;
    c->state_cb = NULL;
    c->close_cb = cb;
    c->close_ud = ud;
    if (c->depth > 0)
        c->close_requested = true;
    else
        do_close(c);
}

void redis_conn_abort(redis_conn_t *c, void (*cb)(void *), void *ud) {
    c->abort = true;
    redis_conn_close(c, cb, ud);
}
