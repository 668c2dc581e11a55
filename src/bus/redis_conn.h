/* A Redis connection on the libuv loop: hiredis's asynchronous API driven by our own small
 * libuv adapter, with reconnection, a bounded command queue and Lua scripts. The presence,
 * queue and bus backends (DESIGN.md "Ports and backends") are built on it.
 *
 * Why our own adapter (MACHINE-NOTES.md): hiredis 0.14's bundled libuv adapter ignores a poll
 * error, so a refused connection is never reported and its poll handle leaks. Here every
 * hiredis context gets a uv_poll_t whose add/del read/write and cleanup hooks hiredis calls; a
 * poll error (libuv reports POLLERR as a negative status and stops the handle) is handed back
 * to hiredis, which reads the socket error and fails the connect or the connection, and if it
 * does not, the context is dropped. In the connect callback only `status` is trusted.
 *
 * States: CONNECTING (a context exists, connect(2) in progress), READY (connected; a SELECT for
 * a non-zero db is the first command of every connection), WAITING (no context; a timer retries
 * after a capped exponential backoff: 100 ms, 200 ms, ... 5 s, plus up to 20 % jitter, reset by
 * a successful connect), RESOLVING (hostname other than `localhost` or an IP literal:
 * uv_getaddrinfo off the loop), CLOSING. Commands are accepted while CONNECTING or READY and
 * fail at once with PL_EUNAVAIL otherwise: nothing queues while Redis is unreachable. The queue
 * is bounded (max_pending commands awaiting a reply, PL_EUNAVAIL past it). A connect that takes
 * longer than connect_timeout_ms, or a reply later than command_timeout_ms (plus the command's
 * own blocking time), drops the connection: every waiting command gets PL_EUNAVAIL, and the
 * connection is retried. Subscriptions are kept by the connection and renewed on every
 * reconnect.
 *
 * URL: redis://host[:port][/db] (port 6379, db 0 by default); host is an IPv4 literal, an IPv6
 * literal in brackets, `localhost` (taken as 127.0.0.1, no resolver) or a name resolved with
 * uv_getaddrinfo on every connect attempt. No user or password (not supported: refused as
 * PL_EINVAL).
 *
 * Commands are built as RESP into a redis_cmd_t (binary-safe, no format strings) and sent with
 * redis_conn_send; scripts (redis_script_t) go as EVALSHA and fall back to EVAL transparently
 * when Redis answers NOSCRIPT (a restarted or flushed server), so a script costs one round trip.
 *
 * Threads and ownership: loop thread only. Reply callbacks fire on the loop thread, never inside
 * the call that issued the command; a reply is borrowed for the callback. Memory: per pending
 * command a 96-byte record (plus a copy of the arguments for scripts, for the EVAL fallback),
 * and hiredis's output buffer. */
#ifndef BUS_REDIS_CONN_H
#define BUS_REDIS_CONN_H

#include "core/buf.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define REDIS_HOST_MAX 255        /* bytes of a host name in a URL */
#define REDIS_CMD_MAX (64u << 20) /* bytes of one command's arguments */

typedef struct redis_conn redis_conn_t;

typedef struct {
    char host[REDIS_HOST_MAX + 1]; /* as written, without IPv6 brackets */
    uint16_t port;                 /* 6379 when absent */
    uint32_t db;                   /* 0 when absent; at most 1,000,000 */
} redis_url_t;

/* Parses redis://host[:port][/db]. Returns 0 or PL_EINVAL (other scheme, user info, empty or
 * too long host, port not in 1..65535, db not a number, trailing text). */
PL_NODISCARD int redis_url_parse(const char *url, redis_url_t *out);

typedef struct {
    uint32_t connect_timeout_ms; /* a connect taking longer is abandoned; default 2000 */
    uint32_t command_timeout_ms; /* a reply later than this drops the connection; default 5000 */
    uint32_t backoff_min_ms;     /* first retry delay; default 100 */
    uint32_t backoff_max_ms;     /* retry delay cap; default 5000 */
    uint32_t max_pending;        /* commands awaiting a reply; default 100000 */
    const char *name;            /* for logs (copied, up to 31 bytes); default "redis" */
} redis_conn_options_t;

void redis_conn_options_default(redis_conn_options_t *o);

/* ---- commands -------------------------------------------------------------------------------- */

/* A command under construction: its arguments as RESP bulk strings. Adding never fails on the
 * spot: the first error (PL_ENOMEM, or PL_ETOOBIG past REDIS_CMD_MAX) is kept in err and
 * returned by redis_conn_send, so a caller can add every argument and check once. */
typedef struct {
    pl_buf_t body; /* "$<len>\r\n<bytes>\r\n" per argument */
    uint32_t argc; /* arguments so far */
    int err;       /* first error, 0 if none */
} redis_cmd_t;

void redis_cmd_init(redis_cmd_t *m);
void redis_cmd_dispose(redis_cmd_t *m);
/* Empties m for reuse (keeps its memory). */
void redis_cmd_reset(redis_cmd_t *m);
void redis_cmd_arg(redis_cmd_t *m, const void *p, size_t n);
void redis_cmd_str(redis_cmd_t *m, const char *s);
void redis_cmd_int(redis_cmd_t *m, long long v);
/* One argument written with printf. */
void redis_cmd_fmt(redis_cmd_t *m, const char *fmt, ...) PL_PRINTF(2, 3);

/* A Lua script: its source and SHA-1 (computed by redis_script_init). Usually a static. */
typedef struct {
    const char *src; /* borrowed; must outlive every call */
    size_t len;
    char sha[41]; /* lower-case hex */
} redis_script_t;

void redis_script_init(redis_script_t *s, const char *src);

/* status 0: reply is Redis's answer (possibly an error reply: check reply->type), borrowed for
 * the call. PL_EUNAVAIL: the connection was lost, timed out or closed before the answer; reply
 * is NULL. Fires exactly once per accepted command. */
typedef void (*redis_reply_cb)(void *ud, int status, redisReply *reply);

/* Sends m (not consumed: dispose or reuse it after the call). extra_ms extends the reply
 * deadline for a command that blocks on the server (XREADGROUP BLOCK). cb may be NULL.
 * Returns 0 (cb will fire), m->err, PL_EINVAL (no arguments, or a subscriber connection), or
 * PL_EUNAVAIL (not connected or connecting, closing, or max_pending commands waiting). */
PL_NODISCARD int redis_conn_send(redis_conn_t *c, const redis_cmd_t *m, uint32_t extra_ms,
                                 redis_reply_cb cb, void *ud);
/* Runs script s with args = numkeys, the keys, then the other arguments (all in m). EVALSHA,
 * then EVAL if Redis does not know the script; the callback sees only the final answer.
 * Returns as redis_conn_send. */
PL_NODISCARD int redis_conn_eval(redis_conn_t *c, const redis_script_t *s, const redis_cmd_t *m,
                                 redis_reply_cb cb, void *ud);

/* ---- subscriptions --------------------------------------------------------------------------- */

/* A message on a subscribed channel (pattern: the channel it matched). Borrowed for the call. */
typedef void (*redis_message_cb)(void *ud, const char *channel, size_t channel_len,
                                 const char *data, size_t len);

/* Subscribes to channel (or, with pattern, PSUBSCRIBE to a glob pattern) for the life of the
 * connection, renewed after every reconnect. A connection with a subscription only subscribes
 * (redis_conn_send refuses). Messages published while disconnected are lost (pub/sub is
 * at-most-once). Returns 0, PL_EINVAL (empty or over 1024 bytes), PL_ENOMEM. Setup time. */
PL_NODISCARD int redis_conn_subscribe(redis_conn_t *c, const char *channel, bool pattern,
                                      redis_message_cb cb, void *ud);

/* ---- lifecycle ------------------------------------------------------------------------------- */

/* status 0: connected (and subscribed/selected); else a connect attempt failed or the
 * connection was lost (a libuv code such as UV_ECONNREFUSED when known, else PL_EUNAVAIL). The
 * callback may send commands (when connected) and may close the connection. */
typedef void (*redis_state_cb)(void *ud, int status);

/* Creates the connection and starts connecting (RESOLVING or CONNECTING on return). url as
 * above; opts copied (NULL for defaults). Returns NULL on a malformed URL or out of memory. */
redis_conn_t *redis_conn_new(uv_loop_t *loop, const char *url, const redis_conn_options_t *opts);
/* Sets the state callback (NULL to remove). */
void redis_conn_on_state(redis_conn_t *c, redis_state_cb cb, void *ud);
/* True while connected. */
bool redis_conn_ready(const redis_conn_t *c);
/* Commands sent and not yet answered. */
size_t redis_conn_pending(const redis_conn_t *c);
/* Connection attempts that failed since the last successful connect (for tests and logs). */
uint32_t redis_conn_failures(const redis_conn_t *c);
/* Current retry delay in ms (the next wait in WAITING). */
uint32_t redis_conn_backoff_ms(const redis_conn_t *c);
/* Closes: stops reconnecting, lets the commands already sent be answered (bounded by
 * command_timeout_ms; those left get PL_EUNAVAIL), disconnects and frees everything. The state
 * callback does not fire any more. cb (may be NULL) fires once all memory is freed, always
 * after close returns. Call once; c must not be used after. */
void redis_conn_close(redis_conn_t *c, void (*cb)(void *ud), void *ud);
/* Same, without waiting: the commands sent get PL_EUNAVAIL at once (e.g. a blocking read). */
void redis_conn_abort(redis_conn_t *c, void (*cb)(void *ud), void *ud);

/* True if reply is an error reply starting with prefix (e.g. "NOGROUP", "BUSYGROUP"). */
bool redis_reply_is_error(const redisReply *reply, const char *prefix);

#endif
