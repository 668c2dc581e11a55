/* Redis presence backend (the scale-out one): implements presence_ops_t (presence.h) on a
 * redis_conn_t, with the semantics of presence_memory.c and state shared by every node.
 *
 * Keys (P = project id, U = visitor uid, M = "P:U"):
 *   session:visitor:P:U        socket id of the visitor's latest socket, SET ... EX ttl_s (3 days)
 *   session:visitor:P:U:url    current URL, same TTL, deleted with the last socket
 *   parley:presence:P:U        hash socket id -> node id of every live socket, TTL ttl_s
 *   parley:node:<id>           node heartbeat, refreshed every 5 s with a 15 s TTL
 *   parley:node:<id>:visitors  set of M that have a live socket on that node
 *   parley:nodes               set of node ids (for the sweep)
 * "Online" means at least one socket in the hash whose node's heartbeat exists. Every mutation
 * is ONE Lua script (EVALSHA, EVAL fallback), so attach (was the visitor online?) and detach
 * (compare-and-delete of the session key, moved to a remaining tab instead when there is one;
 * still online?) are atomic across nodes; the online check of up to PRESENCE_MAX_BATCH uids is
 * one script call, i.e. one round trip.
 *
 * A dead node: its heartbeat expires; sockets it left are dropped lazily by the scripts that
 * read the hash, and a sweep on every node (every 5 s, a bounded batch per run, atomic: each
 * entry is purged by exactly one node) removes them, moves or deletes session keys that pointed
 * at them, and reports each visitor left with no live socket to on_offline (so the application
 * can tell the project room). A Redis restart without persistence: each node keeps a mirror of
 * its own live sockets (about 100 bytes per visitor) and writes it back after reconnecting.
 * During an outage every call fails at once with PL_EUNAVAIL (redis_conn.h).
 *
 * Node ids must be unique per process run (the default, NULL, is random): a restarted process
 * that reused its predecessor's id would keep the predecessor's sockets alive until their TTL.
 * A detach that Redis did not get (outage) is kept (up to 100,000) and sent again after the
 * reconnect; when it leaves the visitor offline, on_offline reports it then.
 *
 * The scripts build key names from the node ids they find (parley:node:<id>): fine on one Redis
 * server or a primary with replicas, not on Redis Cluster. Loop thread only. */
#include "presence/presence.h"

#include "bus/redis_conn.h"
#include "core/id.h"
#include "core/log.h"
#include "core/map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URL_MAX 2048
#define UID_MAX 256
#define SOCKET_ID_MAX 128
#define NODE_ID_MAX 64
#define MAX_SOCKETS_PER_VISITOR 64
#define HEARTBEAT_TTL_S 15
#define HEARTBEAT_MS 5000
#define SWEEP_MS 5000
#define SWEEP_BATCH 200
#define REPLAY_CHUNK 256
#define UNDONE_MAX 100000 /* detaches kept for after an outage */

static const char ATTACH_LUA[] =
    "local h = redis.call('HGETALL', KEYS[2])\n"
    "local live, found = 0, false\n"
    "for i = 1, #h, 2 do\n"
    "  local s, nd = h[i], h[i + 1]\n"
    "  if s == ARGV[1] then found = true\n"
    "  elseif nd == ARGV[2] or redis.call('EXISTS', 'parley:node:' .. nd) == 1 then\n"
    "    live = live + 1\n"
    "  else redis.call('HDEL', KEYS[2], s) end\n"
    "end\n"
    "if not found and live >= tonumber(ARGV[5]) then return -1 end\n"
    "if redis.call('EXISTS', 'parley:node:' .. ARGV[2]) == 0 then\n"
    "  redis.call('SET', 'parley:node:' .. ARGV[2], '1', 'EX', ARGV[6])\n"
    "  redis.call('SADD', 'parley:nodes', ARGV[2])\n"
    "end\n"
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[3])\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])\n"
    "redis.call('SADD', KEYS[3], ARGV[4])\n"
    "return live\n";

static const char DETACH_LUA[] =
    "redis.call('HDEL', KEYS[2], ARGV[1])\n"
    "local h = redis.call('HGETALL', KEYS[2])\n"
    "local live, other, mine = 0, false, false\n"
    "for i = 1, #h, 2 do\n"
    "  local s, nd = h[i], h[i + 1]\n"
    "  if nd == ARGV[2] or redis.call('EXISTS', 'parley:node:' .. nd) == 1 then\n"
    "    live = live + 1\n"
    "    other = s\n"
    "    if nd == ARGV[2] then mine = true end\n"
    "  else redis.call('HDEL', KEYS[2], s) end\n"
    "end\n"
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  if other then redis.call('SET', KEYS[1], other, 'KEEPTTL')\n"
    "  else redis.call('DEL', KEYS[1]) end\n"
    "end\n"
    "if not mine then redis.call('SREM', KEYS[3], ARGV[3]) end\n"
    "if live == 0 then redis.call('DEL', KEYS[2], KEYS[4]) end\n"
    "return live\n";

static const char ONLINE_LUA[] = "local out, alive = {}, {}\n"
                                 "alive[ARGV[1]] = true\n"
                                 "for i, k in ipairs(KEYS) do\n"
                                 "  local on = 0\n"
                                 "  for _, nd in ipairs(redis.call('HVALS', k)) do\n"
                                 "    local a = alive[nd]\n"
                                 "    if a == nil then\n"
                                 "      a = redis.call('EXISTS', 'parley:node:' .. nd) == 1\n"
                                 "      alive[nd] = a\n"
                                 "    end\n"
                                 "    if a then on = 1 break end\n"
                                 "  end\n"
                                 "  out[i] = on\n"
                                 "end\n"
                                 "return out\n";

/* ARGV[1] = this node, ARGV[2] = batch. Returns the members left with no live socket. */
static const char SWEEP_LUA[] =
    "local out, budget = {}, tonumber(ARGV[2])\n"
    "for _, n in ipairs(redis.call('SMEMBERS', 'parley:nodes')) do\n"
    "  if budget <= 0 then break end\n"
    "  if n ~= ARGV[1] and redis.call('EXISTS', 'parley:node:' .. n) == 0 then\n"
    "    local vset = 'parley:node:' .. n .. ':visitors'\n"
    "    local members = redis.call('SPOP', vset, budget)\n"
    "    for _, m in ipairs(members) do\n"
    "      local hk = 'parley:presence:' .. m\n"
    "      local h = redis.call('HGETALL', hk)\n"
    "      local live, other, removed = 0, false, {}\n"
    "      for i = 1, #h, 2 do\n"
    "        local s, nd = h[i], h[i + 1]\n"
    "        if nd == ARGV[1] or (nd ~= n and redis.call('EXISTS', 'parley:node:' .. nd) == 1) "
    "then\n"
    "          live = live + 1\n"
    "          other = s\n"
    "        else\n"
    "          redis.call('HDEL', hk, s)\n"
    "          removed[s] = true\n"
    "        end\n"
    "      end\n"
    "      local sk = 'session:visitor:' .. m\n"
    "      local cur = redis.call('GET', sk)\n"
    "      if cur and removed[cur] then\n"
    "        if other then redis.call('SET', sk, other, 'KEEPTTL')\n"
    "        else redis.call('DEL', sk) end\n"
    "      end\n"
    "      if live == 0 then\n"
    "        redis.call('DEL', hk, sk .. ':url')\n"
    "        if next(removed) ~= nil then out[#out + 1] = m end\n"
    "      end\n"
    "    end\n"
    "    budget = budget - #members\n"
    "    if redis.call('SCARD', vset) == 0 then redis.call('SREM', 'parley:nodes', n) end\n"
    "  end\n"
    "end\n"
    "return out\n";

/* KEYS: session, hash, node set; ARGV[1] = node, [2] = ttl, [3] = member, [4..] = sockets. */
static const char RESTORE_LUA[] =
    "for i = 4, #ARGV do redis.call('HSET', KEYS[2], ARGV[i], ARGV[1]) end\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[2])\n"
    "redis.call('SET', KEYS[1], ARGV[4], 'EX', ARGV[2], 'NX')\n"
    "redis.call('SADD', KEYS[3], ARGV[3])\n"
    "return 1\n";

static redis_script_t g_attach, g_detach, g_online, g_sweep, g_restore;
static bool g_scripts_ready;

/* One visitor with live sockets on this node (the mirror written back after a Redis restart). */
typedef struct {
    char *member; /* "P:U", owned; the map's key */
    size_t len;
    char **sockets; /* owned ids */
    size_t nsockets;
} local_t;

typedef struct {
    presence_t base;
    uv_loop_t *loop;
    redis_conn_t *conn;
    char node[NODE_ID_MAX + 1];
    void (*on_offline)(void *ud, int64_t project, const char *uid);
    void *offline_ud;
    uv_timer_t heartbeat;  /* every HEARTBEAT_MS */
    uv_timer_t sweep;      /* every SWEEP_MS (plus jitter) */
    pl_map_t mirror;       /* member -> local_t */
    bool lost;             /* the connection was lost since the last connect: replay */
    struct undone *undone; /* detaches Redis did not get (outage), sent again on reconnect */
    size_t nundone;
    char **replay; /* members still to write back (owned), NULL when none */
    size_t nreplay, replay_pos;
    size_t replay_inflight;
    bool sweeping;
    int handles; /* timers + connection still open */
    bool closing;
    size_t inflight; /* calls whose callback has not fired */
    void (*close_cb)(void *);
    void *close_ud;
} rp_t;

/* A detach Redis did not get: without it the socket would count as live for ttl_s. */
typedef struct undone {
    struct undone *next;
    char *member; /* "P:U", owned */
    char *socket; /* owned */
} undone_t;

typedef enum { OP_ATTACH, OP_DETACH, OP_REDETACH, OP_ONLINE, OP_DONE, OP_STR } op_kind_t;

typedef struct {
    rp_t *p;
    op_kind_t kind;
    void (*cb)(void);
    void *ud;
    size_t n; /* uids asked (online) */
    char member[UID_MAX + 32];
    char socket[SOCKET_ID_MAX + 1];
} op_t;

static void scripts_init(void) {
    if (g_scripts_ready)
        return;
    redis_script_init(&g_attach, ATTACH_LUA);
    redis_script_init(&g_detach, DETACH_LUA);
    redis_script_init(&g_online, ONLINE_LUA);
    redis_script_init(&g_sweep, SWEEP_LUA);
    redis_script_init(&g_restore, RESTORE_LUA);
    g_scripts_ready = true;
}

/* ---- the local mirror ------------------------------------------------------------------------ */

static void local_free(local_t *l) {
    for (size_t i = 0; i < l->nsockets; i++)
        free(l->sockets[i]);
    free(l->sockets);
    free(l->member);
    free(l);
}

static void mirror_add(rp_t *p, const char *member, const char *socket) {
    size_t len = strlen(member);
    local_t *l = pl_map_get(&p->mirror, member, len);
    if (!l) {
        l = calloc(1, sizeof *l);
        if (!l)
            return;
        l->member = pl_xstrdup(member);
        l->len = len;
        if (pl_map_put(&p->mirror, l->member, l->len, l, NULL) != 0) {
            local_free(l);
            return;
        }
    }
    for (size_t i = 0; i < l->nsockets; i++)
        if (strcmp(l->sockets[i], socket) == 0)
            return;
    char **ns = realloc(l->sockets, (l->nsockets + 1) * sizeof *ns);
    if (!ns)
        return;
    l->sockets = ns;
    l->sockets[l->nsockets++] = pl_xstrdup(socket);
}

static void mirror_del(rp_t *p, const char *member, const char *socket) {
    size_t len = strlen(member);
    local_t *l = pl_map_get(&p->mirror, member, len);
    if (!l)
        return;
    for (size_t i = 0; i < l->nsockets; i++) {
        if (strcmp(l->sockets[i], socket) == 0) {
            free(l->sockets[i]);
            l->sockets[i] = l->sockets[--l->nsockets];
            break;
        }
    }
    if (l->nsockets == 0) {
        pl_map_del(&p->mirror, l->member, l->len);
        local_free(l);
    }
}

/* ---- commands -------------------------------------------------------------------------------- */

static void undone_add(rp_t *p, const char *member, const char *socket) {
    if (p->nundone >= UNDONE_MAX) {
        pl_log_error("presence.detach_dropped", "member=%s socket=%s", member, socket);
        return;
    }
    undone_t *u = calloc(1, sizeof *u);
    if (!u)
        return;
    u->member = pl_xstrdup(member);
    u->socket = pl_xstrdup(socket);
    u->next = p->undone;
    p->undone = u;
    p->nundone++;
}

static void undone_free_all(rp_t *p) {
    while (p->undone) {
        undone_t *u = p->undone;
        p->undone = u->next;
        free(u->member);
        free(u->socket);
        free(u);
    }
    p->nundone = 0;
}

static int member_of(char *out, size_t n, int64_t project, const char *uid) {
    if (strlen(uid) > UID_MAX)
        return PL_EINVAL;
    int k = snprintf(out, n, "%lld:%s", (long long)project, uid);
    return k < 0 || (size_t)k >= n ? PL_EINVAL : 0;
}

static void add_key(redis_cmd_t *m, const char *prefix, const char *member, const char *suffix) {
    redis_cmd_fmt(m, "%s%s%s", prefix, member, suffix);
}

static void maybe_finish(rp_t *p);

static void op_reply(void *ud, int status, redisReply *r) {
    op_t *op = ud;
    rp_t *p = op->p;
    if (status == 0 && r->type == REDIS_REPLY_ERROR) {
        pl_log_error("presence.redis_error", "error=\"%s\"", r->str);
        status = PL_EUNAVAIL;
    }
    switch (op->kind) {
    case OP_ATTACH: {
        bool was = false;
        if (status == 0 && r->type == REDIS_REPLY_INTEGER && r->integer < 0)
            status = PL_ETOOBIG;
        else if (status == 0)
            was = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
        if (status != 0)
            mirror_del(p, op->member, op->socket);
        ((presence_attach_cb)op->cb)(op->ud, status, was);
        break;
    }
    case OP_DETACH: {
        bool still = status == 0 && r->type == REDIS_REPLY_INTEGER && r->integer > 0;
        if (status == PL_EUNAVAIL)
            undone_add(p, op->member, op->socket);
        ((presence_detach_cb)op->cb)(op->ud, status, still);
        break;
    }
    case OP_REDETACH:
        if (status == PL_EUNAVAIL) {
            undone_add(p, op->member, op->socket);
        } else if (status == 0 && r->type == REDIS_REPLY_INTEGER && r->integer == 0 &&
                   p->on_offline && !p->closing) {
            /* The visitor's last socket: the offline event the outage held back. */
            char *colon = strchr(op->member, ':');
            if (colon) {
                *colon = '\0';
                p->on_offline(p->offline_ud, strtoll(op->member, NULL, 10), colon + 1);
            }
        }
        break;
    case OP_ONLINE: {
        bool *on = calloc(op->n ? op->n : 1, sizeof *on);
        if (!on && status == 0)
            status = PL_ENOMEM;
        if (status == 0 && (r->type != REDIS_REPLY_ARRAY || r->elements != op->n))
            status = PL_EUNAVAIL;
        for (size_t i = 0; status == 0 && i < op->n; i++)
            on[i] = r->element[i]->type == REDIS_REPLY_INTEGER && r->element[i]->integer == 1;
        ((presence_online_cb)op->cb)(op->ud, status, status == 0 ? on : NULL,
                                     status == 0 ? op->n : 0);
        free(on);
        break;
    }
    case OP_DONE:
        ((presence_done_cb)op->cb)(op->ud, status);
        break;
    case OP_STR: {
        const char *s = status == 0 && r->type == REDIS_REPLY_STRING ? r->str : NULL;
        ((presence_url_cb)op->cb)(op->ud, status, s);
        break;
    }
    }
    free(op);
    p->inflight--;
    maybe_finish(p);
}

static int submit(rp_t *p, op_t *op, const redis_script_t *script, redis_cmd_t *m) {
    op->p = p;
    int rc = script ? redis_conn_eval(p->conn, script, m, op_reply, op)
                    : redis_conn_send(p->conn, m, 0, op_reply, op);
    redis_cmd_dispose(m);
    if (rc) {
        free(op);
        return rc == PL_ENOMEM || rc == PL_ETOOBIG || rc == PL_EINVAL ? rc : PL_EUNAVAIL;
    }
    p->inflight++;
    return 0;
}

static op_t *op_new(op_kind_t kind, void (*cb)(void), void *ud) {
    op_t *op = calloc(1, sizeof *op);
    if (op) {
        op->kind = kind;
        op->cb = cb;
        op->ud = ud;
    }
    return op;
}

static int rp_attach(presence_t *base, int64_t project, const char *uid, const char *socket_id,
                     presence_attach_cb cb, void *ud) {
    rp_t *p = (rp_t *)base;
    if (p->closing)
        return PL_EUNAVAIL;
    if (strlen(socket_id) > SOCKET_ID_MAX || !socket_id[0])
        return PL_EINVAL;
    op_t *op = op_new(OP_ATTACH, (void (*)(void))cb, ud);
    if (!op)
        return PL_ENOMEM;
    if (member_of(op->member, sizeof op->member, project, uid) != 0) {
        free(op);
        return PL_EINVAL;
    }
    snprintf(op->socket, sizeof op->socket, "%s", socket_id);
    redis_cmd_t m;
    redis_cmd_init(&m);
    redis_cmd_int(&m, 3);
    add_key(&m, "session:visitor:", op->member, "");
    add_key(&m, "parley:presence:", op->member, "");
    redis_cmd_fmt(&m, "parley:node:%s:visitors", p->node);
    redis_cmd_str(&m, socket_id);
    redis_cmd_str(&m, p->node);
    redis_cmd_int(&m, p->base.ttl_s);
    redis_cmd_str(&m, op->member);
    redis_cmd_int(&m, MAX_SOCKETS_PER_VISITOR);
    redis_cmd_int(&m, HEARTBEAT_TTL_S);
    /* Recorded now, undone if the script fails (a detach meanwhile removes it first). */
    mirror_add(p, op->member, socket_id);
    char member[sizeof op->member];
    memcpy(member, op->member, sizeof member);
    int rc = submit(p, op, &g_attach, &m);
    if (rc)
        mirror_del(p, member, socket_id);
    return rc;
}

static int send_detach(rp_t *p, op_t *op) {
    redis_cmd_t m;
    redis_cmd_init(&m);
    redis_cmd_int(&m, 4);
    add_key(&m, "session:visitor:", op->member, "");
    add_key(&m, "parley:presence:", op->member, "");
    redis_cmd_fmt(&m, "parley:node:%s:visitors", p->node);
    add_key(&m, "session:visitor:", op->member, ":url");
    redis_cmd_str(&m, op->socket);
    redis_cmd_str(&m, p->node);
    redis_cmd_str(&m, op->member);
    return submit(p, op, &g_detach, &m);
}

static int rp_detach(presence_t *base, int64_t project, const char *uid, const char *socket_id,
                     presence_detach_cb cb, void *ud) {
    rp_t *p = (rp_t *)base;
    if (p->closing)
        return PL_EUNAVAIL;
    if (strlen(socket_id) > SOCKET_ID_MAX)
        return PL_EINVAL;
    op_t *op = op_new(OP_DETACH, (void (*)(void))cb, ud);
    if (!op)
        return PL_ENOMEM;
    if (member_of(op->member, sizeof op->member, project, uid) != 0) {
        free(op);
        return PL_EINVAL;
    }
    /* The socket is gone locally whatever Redis answers. */
    mirror_del(p, op->member, socket_id);
    snprintf(op->socket, sizeof op->socket, "%s", socket_id);
    char member[sizeof op->member];
    memcpy(member, op->member, sizeof member);
    int rc = send_detach(p, op);
    if (rc == PL_EUNAVAIL)
        undone_add(p, member, socket_id);
    return rc;
}

static int rp_online(presence_t *base, int64_t project, const char *const *uids, size_t n,
                     presence_online_cb cb, void *ud) {
    rp_t *p = (rp_t *)base;
    if (p->closing)
        return PL_EUNAVAIL;
    if (n > PRESENCE_MAX_BATCH)
        return PL_ETOOBIG;
    op_t *op = op_new(OP_ONLINE, (void (*)(void))cb, ud);
    if (!op)
        return PL_ENOMEM;
    op->n = n;
    redis_cmd_t m;
    redis_cmd_init(&m);
    redis_cmd_int(&m, (long long)n);
    for (size_t i = 0; i < n; i++) {
        if (strlen(uids[i]) > UID_MAX) {
            redis_cmd_dispose(&m);
            free(op);
            return PL_EINVAL;
        }
        redis_cmd_fmt(&m, "parley:presence:%lld:%s", (long long)project, uids[i]);
    }
    redis_cmd_str(&m, p->node);
    return submit(p, op, &g_online, &m);
}

static int rp_set_url(presence_t *base, int64_t project, const char *uid, const char *url,
                      presence_done_cb cb, void *ud) {
    rp_t *p = (rp_t *)base;
    if (p->closing)
        return PL_EUNAVAIL;
    if (strlen(url) > URL_MAX)
        return PL_ETOOBIG;
    op_t *op = op_new(OP_DONE, (void (*)(void))cb, ud);
    if (!op)
        return PL_ENOMEM;
    if (member_of(op->member, sizeof op->member, project, uid) != 0) {
        free(op);
        return PL_EINVAL;
    }
    redis_cmd_t m;
    redis_cmd_init(&m);
    redis_cmd_str(&m, "SET");
    add_key(&m, "session:visitor:", op->member, ":url");
    redis_cmd_str(&m, url);
    redis_cmd_str(&m, "EX");
    redis_cmd_int(&m, p->base.ttl_s);
    return submit(p, op, NULL, &m);
}

static int get_string(rp_t *p, int64_t project, const char *uid, const char *suffix,
                      void (*cb)(void), void *ud) {
    if (p->closing)
        return PL_EUNAVAIL;
    op_t *op = op_new(OP_STR, cb, ud);
    if (!op)
        return PL_ENOMEM;
    if (member_of(op->member, sizeof op->member, project, uid) != 0) {
        free(op);
        return PL_EINVAL;
    }
    redis_cmd_t m;
    redis_cmd_init(&m);
    redis_cmd_str(&m, "GET");
    add_key(&m, "session:visitor:", op->member, suffix);
    return submit(p, op, NULL, &m);
}

static int rp_get_url(presence_t *base, int64_t project, const char *uid, presence_url_cb cb,
                      void *ud) {
    return get_string((rp_t *)base, project, uid, ":url", (void (*)(void))cb, ud);
}

static int rp_get_session(presence_t *base, int64_t project, const char *uid,
                          presence_session_cb cb, void *ud) {
    return get_string((rp_t *)base, project, uid, "", (void (*)(void))cb, ud);
}

/* ---- heartbeat, sweep, replay ---------------------------------------------------------------- */

static void send_heartbeat(rp_t *p) {
    redis_cmd_t m;
    redis_cmd_init(&m);
    redis_cmd_str(&m, "SET");
    redis_cmd_fmt(&m, "parley:node:%s", p->node);
    redis_cmd_str(&m, "1");
    redis_cmd_str(&m, "EX");
    redis_cmd_int(&m, HEARTBEAT_TTL_S);
    int rc = redis_conn_send(p->conn, &m, 0, NULL, NULL);
    redis_cmd_reset(&m);
    redis_cmd_str(&m, "SADD");
    redis_cmd_str(&m, "parley:nodes");
    redis_cmd_str(&m, p->node);
    if (rc == 0)
        rc = redis_conn_send(p->conn, &m, 0, NULL, NULL);
    if (rc)
        pl_log_debug("presence.heartbeat_skipped", "node=%s error=%s", p->node, pl_strerror(rc));
    redis_cmd_dispose(&m);
}

static void heartbeat_cb(uv_timer_t *t) {
    send_heartbeat(t->data);
}

static void sweep_reply(void *ud, int status, redisReply *r) {
    rp_t *p = ud;
    p->sweeping = false;
    p->inflight--;
    if (status == 0 && r->type == REDIS_REPLY_ARRAY) {
        if (r->elements)
            pl_log_info("presence.swept", "offline=%zu", r->elements);
        for (size_t i = 0; i < r->elements; i++) {
            redisReply *e = r->element[i];
            char *colon = e->type == REDIS_REPLY_STRING ? strchr(e->str, ':') : NULL;
            if (!colon || !p->on_offline || p->closing)
                continue;
            *colon = '\0';
            p->on_offline(p->offline_ud, strtoll(e->str, NULL, 10), colon + 1);
        }
    } else if (status == 0 && r->type == REDIS_REPLY_ERROR) {
        pl_log_error("presence.sweep_failed", "error=\"%s\"", r->str);
    }
    maybe_finish(p);
}

static void sweep_now(rp_t *p) {
    if (p->sweeping || p->closing || !redis_conn_ready(p->conn))
        return;
    redis_cmd_t m;
    redis_cmd_init(&m);
    redis_cmd_int(&m, 0);
    redis_cmd_str(&m, p->node);
    redis_cmd_int(&m, SWEEP_BATCH);
    if (redis_conn_eval(p->conn, &g_sweep, &m, sweep_reply, p) == 0) {
        p->sweeping = true;
        p->inflight++;
    }
    redis_cmd_dispose(&m);
}

static void sweep_cb(uv_timer_t *t) {
    sweep_now(t->data);
}

static void replay_free(rp_t *p) {
    for (size_t i = p->replay_pos; i < p->nreplay; i++)
        free(p->replay[i]);
    free(p->replay);
    p->replay = NULL;
    p->nreplay = p->replay_pos = 0;
}

static void replay_next(rp_t *p);

static void replay_reply(void *ud, int status, redisReply *r) {
    rp_t *p = ud;
    (void)r;
    p->inflight--;
    p->replay_inflight--;
    if (status != 0) {
        /* Lost again: the next connect starts over. */
        replay_free(p);
    } else if (p->replay_inflight == 0) {
        replay_next(p);
    }
    maybe_finish(p);
}

/* Writes back the next chunk of the snapshot of this node's visitors. */
static void replay_next(rp_t *p) {
    while (p->replay && p->replay_pos < p->nreplay && p->replay_inflight < REPLAY_CHUNK &&
           !p->closing) {
        char *member = p->replay[p->replay_pos++];
        local_t *l = pl_map_get(&p->mirror, member, strlen(member));
        if (l && l->nsockets) {
            redis_cmd_t m;
            redis_cmd_init(&m);
            redis_cmd_int(&m, 3);
            add_key(&m, "session:visitor:", member, "");
            add_key(&m, "parley:presence:", member, "");
            redis_cmd_fmt(&m, "parley:node:%s:visitors", p->node);
            redis_cmd_str(&m, p->node);
            redis_cmd_int(&m, p->base.ttl_s);
            redis_cmd_str(&m, member);
            for (size_t i = 0; i < l->nsockets; i++)
                redis_cmd_str(&m, l->sockets[i]);
            if (redis_conn_eval(p->conn, &g_restore, &m, replay_reply, p) == 0) {
                p->inflight++;
                p->replay_inflight++;
            }
            redis_cmd_dispose(&m);
        }
        free(member);
    }
    if (p->replay && p->replay_pos >= p->nreplay && p->replay_inflight == 0) {
        pl_log_info("presence.restored", "visitors=%zu", p->nreplay);
        replay_free(p);
    }
}

static void state_cb(void *ud, int status) {
    rp_t *p = ud;
    if (status != 0) {
        p->lost = true;
        return;
    }
    send_heartbeat(p);
    /* Detaches the outage swallowed go first, then this node's sockets are written back. */
    undone_t *u = p->undone;
    p->undone = NULL;
    p->nundone = 0;
    while (u) {
        undone_t *next = u->next;
        op_t *op = op_new(OP_REDETACH, NULL, NULL);
        if (op) {
            snprintf(op->member, sizeof op->member, "%s", u->member);
            snprintf(op->socket, sizeof op->socket, "%s", u->socket);
            if (send_detach(p, op) != 0)
                undone_add(p, u->member, u->socket);
        }
        free(u->member);
        free(u->socket);
        free(u);
        u = next;
    }
    if (!p->lost || p->replay)
        return;
    p->lost = false;
    size_t n = pl_map_count(&p->mirror);
    if (n == 0)
        return;
    p->replay = calloc(n, sizeof *p->replay);
    if (!p->replay)
        return;
    size_t it = 0;
    const pl_map_slot_t *slot;
    while (pl_map_next(&p->mirror, &it, &slot) && p->nreplay < n)
        p->replay[p->nreplay++] = pl_xstrdup(((local_t *)slot->value)->member);
    replay_next(p);
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

static void handle_closed(uv_handle_t *h) {
    rp_t *p = h->data;
    if (--p->handles > 0)
        return;
    size_t it = 0;
    const pl_map_slot_t *slot;
    while (pl_map_next(&p->mirror, &it, &slot))
        local_free(slot->value);
    pl_map_dispose(&p->mirror);
    replay_free(p);
    undone_free_all(p);
    void (*cb)(void *) = p->close_cb;
    void *ud = p->close_ud;
    free(p);
    if (cb)
        cb(ud);
}

static void conn_closed(void *ud) {
    rp_t *p = ud;
    p->conn = NULL;
    uv_close((uv_handle_t *)&p->heartbeat, handle_closed);
    uv_close((uv_handle_t *)&p->sweep, handle_closed);
}

/* Once nothing is in flight: drop the heartbeat (the others purge whatever is left of ours at
 * once) and close the connection. */
static void maybe_finish(rp_t *p) {
    if (!p->closing || p->inflight > 0 || !p->conn || p->handles != 3)
        return;
    p->handles = 2;
    redis_cmd_t m;
    redis_cmd_init(&m);
    redis_cmd_str(&m, "DEL");
    redis_cmd_fmt(&m, "parley:node:%s", p->node);
    if (redis_conn_send(p->conn, &m, 0, NULL, NULL) != 0)
        pl_log_debug("presence.heartbeat_kept", "node=%s", p->node); /* expires by itself */
    redis_cmd_dispose(&m);
    redis_conn_close(p->conn, conn_closed, p);
}

static void rp_close(presence_t *base, void (*cb)(void *), void *ud) {
    rp_t *p = (rp_t *)base;
    if (p->closing)
        return;
    p->closing = true;
    p->close_cb = cb;
    p->close_ud = ud;
    uv_timer_stop(&p->heartbeat);
    uv_timer_stop(&p->sweep);
    replay_free(p);
    /* Commands already sent are answered (or fail) first; then the connection closes. */
    maybe_finish(p);
}

static const presence_ops_t g_ops = {
    .attach = rp_attach,
    .detach = rp_detach,
    .online = rp_online,
    .set_url = rp_set_url,
    .get_url = rp_get_url,
    .get_session = rp_get_session,
    .close = rp_close,
};

static bool node_id_ok(const char *id) {
    size_t n = strlen(id);
    if (n == 0 || n > NODE_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

presence_t *presence_redis_new(uv_loop_t *loop, const char *url, uint32_t ttl_s,
                               const char *node_id,
                               void (*on_offline)(void *ud, int64_t project, const char *uid),
                               void *ud) {
    if (node_id && !node_id_ok(node_id))
        return NULL;
    scripts_init();
    rp_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->base.ops = &g_ops;
    p->base.ttl_s = ttl_s ? ttl_s : PRESENCE_DEFAULT_TTL_S;
    p->loop = loop;
    p->on_offline = on_offline;
    p->offline_ud = ud;
    if (node_id)
        snprintf(p->node, sizeof p->node, "%s", node_id);
    else
        pl_random_id(p->node, 12);
    redis_conn_options_t o;
    redis_conn_options_default(&o);
    o.name = "presence";
    p->conn = redis_conn_new(loop, url, &o);
    if (!p->conn) {
        free(p);
        return NULL;
    }
    pl_map_init(&p->mirror);
    redis_conn_on_state(p->conn, state_cb, p);
    /* First thing on the connection: this node is alive. */
    send_heartbeat(p);
    uv_timer_init(loop, &p->heartbeat);
    uv_timer_init(loop, &p->sweep);
    p->heartbeat.data = p->sweep.data = p;
    uv_timer_start(&p->heartbeat, heartbeat_cb, HEARTBEAT_MS, HEARTBEAT_MS);
    uint32_t jitter;
    pl_random_bytes(&jitter, sizeof jitter);
    uv_timer_start(&p->sweep, sweep_cb, SWEEP_MS + jitter % 1000, SWEEP_MS);
    uv_unref((uv_handle_t *)&p->heartbeat);
    uv_unref((uv_handle_t *)&p->sweep);
    p->handles = 3;
    return &p->base;
}
