/* In-process presence backend (the embedded default): see presence.h.
 *
 * One hash table entry per visitor (key "<project>:<uid>") holding its live socket ids, the
 * socket the session key points at, the session key's expiry and the current URL. Operations
 * complete on the next loop turn through a uv_idle_t, so callers see the same asynchronous
 * behaviour as with Redis. A sweep every minute drops entries with no live socket whose session
 * key expired. Memory is bounded by the live sockets (each attach is undone by a detach) plus
 * expired-but-not-swept entries. */
#include "presence/presence.h"

#include "core/clock.h"
#include "core/map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SWEEP_MS 60000
#define MAX_SOCKETS_PER_VISITOR 64 /* tabs; PROTOCOL.md section 6 caps sockets per IP at 50 */
#define URL_MAX 2048

typedef struct {
    char *key;          /* "<project>:<uid>", owned; the map's key */
    size_t keylen;
    char **sockets;     /* live socket ids, owned */
    size_t nsockets;
    char *session;      /* socket the session key points at, or NULL (deleted) */
    uint64_t expires;   /* monotonic ms when the session key expires */
    char *url;          /* current URL or NULL */
} entry_t;

typedef struct job {
    struct job *next;
    void (*run)(struct job *j);
    void (*cb)(void); /* the caller's callback, cast back by run */
    void *ud;
    int status;
    bool flag;
    char *str;          /* url or session result, owned */
    bool *online;       /* online results, owned */
    size_t n;
} job_t;

typedef struct {
    presence_t base;
    uv_loop_t *loop;
    uv_idle_t idle;
    uv_timer_t sweep;
    pl_map_t visitors;
    job_t *head, *tail;
    void (*close_cb)(void *);
    void *close_ud;
    bool closing;
    int handles;
} mem_t;

static void entry_free(entry_t *e) {
    for (size_t i = 0; i < e->nsockets; i++)
        free(e->sockets[i]);
    free(e->sockets);
    free(e->session);
    free(e->url);
    free(e->key);
    free(e);
}

static int make_key(char *out, size_t n, int64_t project, const char *uid) {
    int k = snprintf(out, n, "%lld:%s", (long long)project, uid);
    return k < 0 || (size_t)k >= n ? -1 : k;
}

static entry_t *lookup(mem_t *m, int64_t project, const char *uid, bool create) {
    char key[256];
    int kl = make_key(key, sizeof key, project, uid);
    if (kl < 0)
        return NULL;
    entry_t *e = pl_map_get(&m->visitors, key, (size_t)kl);
    if (e || !create)
        return e;
    e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->key = pl_xstrdup(key);
    e->keylen = (size_t)kl;
    if (pl_map_put(&m->visitors, e->key, e->keylen, e, NULL) != 0) {
        entry_free(e);
        return NULL;
    }
    return e;
}

static void maybe_drop(mem_t *m, entry_t *e) {
    if (e->nsockets == 0 && !e->session && !e->url) {
        pl_map_del(&m->visitors, e->key, e->keylen);
        entry_free(e);
    }
}

/* Session key view with expiry applied. */
static const char *session_of(entry_t *e) {
    if (e->session && pl_mono_ms() >= e->expires) {
        free(e->session);
        e->session = NULL;
    }
    return e->session;
}

static void idle_cb(uv_idle_t *h);

static job_t *job_new(mem_t *m, void (*run)(job_t *), void (*cb)(void), void *ud) {
    job_t *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->run = run;
    j->cb = cb;
    j->ud = ud;
    if (m->tail)
        m->tail->next = j;
    else
        m->head = j;
    m->tail = j;
    uv_idle_start(&m->idle, idle_cb);
    return j;
}

static void idle_cb(uv_idle_t *h) {
    mem_t *m = h->data;
    job_t *j = m->head;
    m->head = m->tail = NULL;
    uv_idle_stop(h);
    while (j) {
        job_t *next = j->next;
        j->run(j);
        free(j->str);
        free(j->online);
        free(j);
        j = next;
    }
}

static void run_flag(job_t *j) {
    ((presence_attach_cb)j->cb)(j->ud, j->status, j->flag);
}

static void run_done(job_t *j) {
    ((presence_done_cb)j->cb)(j->ud, j->status);
}

static void run_str(job_t *j) {
    ((presence_url_cb)j->cb)(j->ud, j->status, j->str);
}

static void run_online(job_t *j) {
    ((presence_online_cb)j->cb)(j->ud, j->status, j->online, j->n);
}

static int mem_attach(presence_t *p, int64_t project, const char *uid, const char *socket_id,
                      presence_attach_cb cb, void *ud) {
    mem_t *m = (mem_t *)p;
    if (m->closing)
        return PL_EUNAVAIL;
    entry_t *e = lookup(m, project, uid, true);
    if (!e)
        return PL_ENOMEM;
    bool found = false;
    for (size_t i = 0; i < e->nsockets; i++)
        found |= strcmp(e->sockets[i], socket_id) == 0;
    bool was_online = e->nsockets > (found ? 1u : 0u);
    if (!found) {
        if (e->nsockets >= MAX_SOCKETS_PER_VISITOR) {
            maybe_drop(m, e);
            return PL_ETOOBIG;
        }
        char **ns = realloc(e->sockets, (e->nsockets + 1) * sizeof *ns);
        if (!ns)
            return PL_ENOMEM;
        e->sockets = ns;
        e->sockets[e->nsockets++] = pl_xstrdup(socket_id);
    }
    free(e->session);
    e->session = pl_xstrdup(socket_id);
    e->expires = pl_mono_ms() + (uint64_t)p->ttl_s * 1000u;
    job_t *j = job_new(m, run_flag, (void (*)(void))cb, ud);
    if (!j)
        return PL_ENOMEM;
    j->flag = was_online;
    return 0;
}

static int mem_detach(presence_t *p, int64_t project, const char *uid, const char *socket_id,
                      presence_detach_cb cb, void *ud) {
    /* Same result shape as attach: the flag is "still online". */
    mem_t *m = (mem_t *)p;
    if (m->closing)
        return PL_EUNAVAIL;
    entry_t *e = lookup(m, project, uid, false);
    bool still = false;
    if (e) {
        for (size_t i = 0; i < e->nsockets; i++) {
            if (strcmp(e->sockets[i], socket_id) == 0) {
                free(e->sockets[i]);
                e->sockets[i] = e->sockets[--e->nsockets];
                break;
            }
        }
        still = e->nsockets > 0;
        /* Compare-and-delete: only the socket the key points at may delete it; with other
         * tabs left it moves to one of them. */
        if (session_of(e) && strcmp(e->session, socket_id) == 0) {
            free(e->session);
            e->session = still ? pl_xstrdup(e->sockets[e->nsockets - 1]) : NULL;
        }
        if (!still) {
            free(e->url);
            e->url = NULL;
        }
        maybe_drop(m, e);
    }
    job_t *j = job_new(m, run_flag, (void (*)(void))cb, ud);
    if (!j)
        return PL_ENOMEM;
    j->flag = still;
    return 0;
}

static int mem_online(presence_t *p, int64_t project, const char *const *uids, size_t n,
                      presence_online_cb cb, void *ud) {
    mem_t *m = (mem_t *)p;
    if (m->closing)
        return PL_EUNAVAIL;
    if (n > PRESENCE_MAX_BATCH)
        return PL_ETOOBIG;
    bool *res = calloc(n ? n : 1, sizeof *res);
    if (!res)
        return PL_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        entry_t *e = lookup(m, project, uids[i], false);
        res[i] = e && e->nsockets > 0;
    }
    job_t *j = job_new(m, run_online, (void (*)(void))cb, ud);
    if (!j) {
        free(res);
        return PL_ENOMEM;
    }
    j->online = res;
    j->n = n;
    return 0;
}

static int mem_set_url(presence_t *p, int64_t project, const char *uid, const char *url,
                       presence_done_cb cb, void *ud) {
    mem_t *m = (mem_t *)p;
    if (m->closing)
        return PL_EUNAVAIL;
    if (strlen(url) > URL_MAX)
        return PL_ETOOBIG;
    entry_t *e = lookup(m, project, uid, true);
    if (!e)
        return PL_ENOMEM;
    free(e->url);
    e->url = pl_xstrdup(url);
    return job_new(m, run_done, (void (*)(void))cb, ud) ? 0 : PL_ENOMEM;
}

static int mem_get_url(presence_t *p, int64_t project, const char *uid, presence_url_cb cb,
                       void *ud) {
    mem_t *m = (mem_t *)p;
    if (m->closing)
        return PL_EUNAVAIL;
    entry_t *e = lookup(m, project, uid, false);
    job_t *j = job_new(m, run_str, (void (*)(void))cb, ud);
    if (!j)
        return PL_ENOMEM;
    j->str = e && e->url ? pl_xstrdup(e->url) : NULL;
    return 0;
}

static int mem_get_session(presence_t *p, int64_t project, const char *uid,
                           presence_session_cb cb, void *ud) {
    mem_t *m = (mem_t *)p;
    if (m->closing)
        return PL_EUNAVAIL;
    entry_t *e = lookup(m, project, uid, false);
    const char *s = e ? session_of(e) : NULL;
    job_t *j = job_new(m, run_str, (void (*)(void))cb, ud);
    if (!j)
        return PL_ENOMEM;
    j->str = s ? pl_xstrdup(s) : NULL;
    return 0;
}

static bool entry_expired(void *value, void *ud) {
    (void)ud;
    entry_t *e = value;
    return e->nsockets == 0 && !session_of(e);
}

static void entry_release(void *value) {
    entry_free(value);
}

static void sweep_cb(uv_timer_t *t) {
    mem_t *m = t->data;
    pl_map_remove_if(&m->visitors, entry_expired, entry_release, NULL);
}

static void handle_closed(uv_handle_t *h) {
    mem_t *m = h->data;
    if (--m->handles > 0)
        return;
    size_t it = 0;
    const pl_map_slot_t *s;
    while (pl_map_next(&m->visitors, &it, &s))
        entry_free(s->value);
    pl_map_dispose(&m->visitors);
    void (*cb)(void *) = m->close_cb;
    void *ud = m->close_ud;
    free(m);
    if (cb)
        cb(ud);
}

static void mem_close(presence_t *p, void (*cb)(void *), void *ud) {
    mem_t *m = (mem_t *)p;
    m->closing = true;
    m->close_cb = cb;
    m->close_ud = ud;
    /* Deliver what is pending, then close. */
    if (m->head)
        idle_cb(&m->idle);
    uv_close((uv_handle_t *)&m->idle, handle_closed);
    uv_close((uv_handle_t *)&m->sweep, handle_closed);
}

static const presence_ops_t g_ops = {
    .attach = mem_attach,
    .detach = mem_detach,
    .online = mem_online,
    .set_url = mem_set_url,
    .get_url = mem_get_url,
    .get_session = mem_get_session,
    .close = mem_close,
};

presence_t *presence_memory_new(uv_loop_t *loop, uint32_t ttl_s) {
    mem_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->base.ops = &g_ops;
    m->base.ttl_s = ttl_s ? ttl_s : PRESENCE_DEFAULT_TTL_S;
    m->loop = loop;
    pl_map_init(&m->visitors);
    uv_idle_init(loop, &m->idle);
    m->idle.data = m;
    uv_timer_init(loop, &m->sweep);
    m->sweep.data = m;
    uv_timer_start(&m->sweep, sweep_cb, SWEEP_MS, SWEEP_MS);
    uv_unref((uv_handle_t *)&m->sweep);
    m->handles = 2;
    return m ? &m->base : NULL;
}
