/* The backend-neutral half of the store port (store.h; DESIGN.md "Threads and processes"):
 * requests, the bounded queue, the two store threads with group commit, and delivery of results
 * to the loop thread. The database work itself is the backend's (store_ops_t,
 * store_internal.h); nothing here knows SQL. */
#include "store/store.h"

#include "core/log.h"
#include "store/migrations.h"
#include "store/store_internal.h"

#include <assert.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Life of a request: a public wrapper (loop thread) copies its arguments into a store_req_t
 * and appends it to a loop-local pending list; the idle handle hands all pending requests to
 * the write or read thread's queue in one go (one lock, one wake-up per loop turn). The write
 * thread takes everything queued, runs it as one transaction (BEGIN IMMEDIATE; per request
 * SAVEPOINT, the backend function, RELEASE or ROLLBACK TO; COMMIT) and posts the batch to the
 * done list; the read thread does the same in a read snapshot. The uv_async_t wakes the loop,
 * which calls each request's callback with its borrowed result, then frees the request.
 *
 * Threads and ownership: fields marked "loop" are touched only by the loop thread; "mu" fields
 * only under s->mu; a request belongs to exactly one list at a time (pending list: loop;
 * worker queue and done list: mu; a batch being executed: that worker; ready list: loop).
 * Counters written by the store threads are atomics. */

/* ---- requests -------------------------------------------------------------------------------- */

typedef struct store_req store_req_t;

/* Runs the request's backend function on a store thread, storing its result in r->res. */
typedef int (*req_exec_fn)(store_req_t *r, store_conn_t *c);

/* The shape of a request's result, which selects its callback type. */
typedef enum {
    RES_DONE,
    RES_COUNT,
    RES_ID,
    RES_PROJECT,
    RES_PROJECT_LIST,
    RES_VISITOR,
    RES_HISTORY,
    RES_INGEST,
    RES_CONVERSATION,
    RES_USER,
    RES_ROLE,
    RES_REFRESH,
    RES_MEMBER_LIST,
    RES_CONVERSATION_LIST,
    RES_MESSAGE_LIST,
    RES_REPLY,
    RES_OUTBOX
} res_kind_t;

/* String arguments a request can carry in its one packed allocation (a.blob). */
#define STR_ARGS 4

/* Most consecutive ingests handed to a backend's message_ingest_batch at once, and most bytes of
 * their strings (PostgreSQL sends a run as a few statements with array parameters: this bounds
 * the memory of those copies and of the results in flight; a single larger ingest still goes
 * alone). */
#define INGEST_RUN_MAX 1024
#define INGEST_RUN_BYTES (4u * 1024 * 1024)

/* A list argument: v[0..n) points into the same allocation as v (freed with free(v)). */
typedef struct {
    char **v;
    size_t n;
} strv_t;

struct store_req {
    store_req_t *next; /* link in whichever list holds the request */
    req_exec_fn exec;  /* set by the wrapper */
    bool write;        /* runs on the write thread, inside the group transaction */
    res_kind_t kind;   /* which member of cb and res is used */
    union {
        store_done_cb done;
        store_count_cb count;
        store_project_cb project;
        store_project_list_cb project_list;
        store_id_cb id;
        store_visitor_cb visitor;
        store_history_cb history;
        store_ingest_cb ingest;
        store_conversation_cb conversation;
        store_user_cb user;
        store_role_cb role;
        store_refresh_cb refresh;
        store_member_list_cb member_list;
        store_conversation_list_cb conversation_list;
        store_message_list_cb message_list;
        store_reply_cb reply;
        store_outbox_cb outbox;
    } cb;
    void *ud;   /* the caller's pointer, given back to cb */
    int status; /* written by the store thread, read by the loop after the hand-over */
    /* Arguments: copies owned by the request. */
    struct {
        int64_t id;
        int64_t id2;
        int64_t id3;
        int64_t now_ms;
        int64_t offset;
        size_t limit;
        unsigned mask;
        bool flag;
        char *text;
        strv_t list[2];
        int64_t *ids; /* store_outbox_delete's ids, nids of them (malloc'd copy) */
        size_t nids;
        char *blob;          /* the strings below, in one allocation (arg_strs) */
        char *str[STR_ARGS]; /* point into blob, or NULL */
    } a;
    /* Result: owned by the request until it is freed after the callback. */
    union {
        int64_t count; /* RES_COUNT and RES_ID */
        store_project_t *project;
        struct {
            store_project_t *v;
            size_t n;
        } projects;
        store_visitor_t *visitor;
        struct {
            int64_t conversation_id;
            store_message_t *v;
            size_t n;
        } history;
        store_ingest_result_t *ingest;
        store_conversation_t *conversation;
        store_user_t *user;
        char *role;
        store_refresh_t refresh;
        struct {
            store_member_t *v;
            size_t n;
        } members;
        struct {
            store_conversation_t *v;
            size_t n;
            int64_t total;
        } conversations;
        struct {
            store_message_t *v; /* one block: store__msglist_finish */
            size_t n;
            bool has_more;
        } messages;
        struct {
            store_message_t *message; /* one block: store__msglist_finish */
            store_conversation_t *conversation;
        } reply;
        struct {
            store_outbox_event_t *v; /* one block: store__outbox_list_finish */
            size_t n;
        } outbox;
    } res;
};

typedef struct {
    store_req_t *head, *tail; /* FIFO; both NULL when empty */
    size_t n;
} req_list_t;

static void list_push(req_list_t *l, store_req_t *r) {
    r->next = NULL;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    l->n++;
}

static store_req_t *list_pop(req_list_t *l) {
    store_req_t *r = l->head;
    if (r) {
        l->head = r->next;
        if (!l->head)
            l->tail = NULL;
        l->n--;
        r->next = NULL;
    }
    return r;
}

/* Moves every request of src to the end of dst; src ends empty. O(1). */
static void list_move(req_list_t *dst, req_list_t *src) {
    if (!src->head)
        return;
    if (dst->tail)
        dst->tail->next = src->head;
    else
        dst->head = src->head;
    dst->tail = src->tail;
    dst->n += src->n;
    *src = (req_list_t){0};
}

/* Detaches the first max requests of src (all when it holds fewer). O(min(n, max)). */
static req_list_t list_take(req_list_t *src, size_t max) {
    if (src->n <= max) {
        req_list_t all = *src;
        *src = (req_list_t){0};
        return all;
    }
    req_list_t part = {.head = src->head, .n = max};
    store_req_t *last = src->head;
    for (size_t i = 1; i < max; i++)
        last = last->next;
    src->head = last->next;
    src->n -= max;
    last->next = NULL;
    part.tail = last;
    return part;
}

/* ---- the store ------------------------------------------------------------------------------- */

typedef struct {
    store_t *s;
    bool write;         /* the write thread (group commit) or the read thread */
    size_t max_batch;   /* requests taken at once: all for writes, STORE_READ_BATCH for reads */
    store_conn_t *conn; /* used only by this thread while it runs; it closes it on exit */
    uv_thread_t tid;
    bool started;     /* tid is a running (or exited, not yet joined) thread */
    uv_cond_t cond;   /* signalled when queue grows or stop is set (with s->mu) */
    req_list_t queue; /* mu: requests handed over, not yet taken */
    bool stop;        /* mu: exit once queue is empty */
    /* Writer with a backend that has message_ingest_batch: room for one run of ingests
     * (INGEST_RUN_MAX entries each), allocated at open; NULL otherwise. This thread only. */
    store_ingest_t *run_in;
    int *run_status;
    store_ingest_result_t **run_out;
} worker_t;

struct store {
    uv_loop_t *loop;
    const store_ops_t *ops;
    uint32_t max_in_flight; /* requests in flight at once */

    /* loop */
    uv_async_t async;         /* wakes the loop for completions; ref'd only while needed */
    uv_idle_t idle;           /* active while pending lists are non-empty */
    req_list_t pending_write; /* submitted this turn, not yet handed over */
    req_list_t pending_read;
    req_list_t ready;   /* taken from done, being delivered */
    uint32_t in_flight; /* submitted and not yet called back */
    bool closing;       /* store_close was called: refuse new requests */
    bool close_started; /* threads joined, handles closing */
    int handles_open;   /* async and idle, until their close callbacks */
    store_close_cb close_cb;
    void *close_ud;
    uint64_t n_failed;
    uint64_t n_rejected;

    /* mu */
    uv_mutex_t mu;
    req_list_t done; /* executed, waiting for the loop */
    int exited;      /* store threads that have finished */
    bool attached;   /* async is initialised: threads may signal it */
    bool checkpoint_wanted; /* mu: the writer asks the read thread for a checkpoint */
    worker_t writer, reader;

    /* written by the store threads */
    _Atomic uint64_t n_requests, n_reads, n_writes, n_transactions, largest_batch;
};

void store__errf(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

const char *store_strerror(int err) {
    switch (err) {
    case STORE_ENOTFOUND:
        return "not found";
    case STORE_ECONFLICT:
        return "conflict";
    default:
        return pl_strerror(err);
    }
}

/* ---- projects -------------------------------------------------------------------------------- */

void store__project_dispose(store_project_t *p) {
    free(p->name);
    for (size_t i = 0; i < p->ndomains; i++)
        free(p->domains[i]);
    free(p->domains);
    free(p->widget_settings_json);
    free(p->identity_secret);
    free(p->role);
    memset(p, 0, sizeof *p);
}

void store_project_free(store_project_t *p) {
    if (!p)
        return;
    store__project_dispose(p);
    free(p);
}

static bool dup_str(const char *src, char **out) {
    *out = NULL;
    if (!src)
        return true;
    *out = strdup(src);
    return *out != NULL;
}

store_project_t *store_project_dup(const store_project_t *p) {
    store_project_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->id = p->id;
    c->identity_verification = p->identity_verification;
    c->created_at = p->created_at;
    c->updated_at = p->updated_at;
    if (!dup_str(p->name, &c->name) ||
        !dup_str(p->widget_settings_json, &c->widget_settings_json) ||
        !dup_str(p->identity_secret, &c->identity_secret) || !dup_str(p->role, &c->role))
        goto out_free;
    if (p->ndomains) {
        if (p->ndomains > SIZE_MAX / sizeof(char *))
            goto out_free;
        c->domains = calloc(p->ndomains, sizeof(char *));
        if (!c->domains)
            goto out_free;
        for (; c->ndomains < p->ndomains; c->ndomains++)
            if (!dup_str(p->domains[c->ndomains], &c->domains[c->ndomains]))
                goto out_free;
    }
    return c;
out_free:
    store_project_free(c);
    return NULL;
}

/* ---- the other result types ----------------------------------------------------------------- */

void store__visitor_dispose(store_visitor_t *v) {
    free(v->uid);
    free(v->name);
    free(v->email);
    free(v->current_url);
    memset(v, 0, sizeof *v);
}

void store_visitor_free(store_visitor_t *v) {
    if (!v)
        return;
    store__visitor_dispose(v);
    free(v);
}

/* Deep-copies v into c (zeroed by the caller); false when out of memory (c is then partly
 * filled: dispose it). */
static bool visitor_copy(store_visitor_t *c, const store_visitor_t *v) {
    c->id = v->id;
    c->project_id = v->project_id;
    c->last_seen_at = v->last_seen_at;
    c->created_at = v->created_at;
    return dup_str(v->uid, &c->uid) && dup_str(v->name, &c->name) && dup_str(v->email, &c->email) &&
           dup_str(v->current_url, &c->current_url);
}

store_visitor_t *store_visitor_dup(const store_visitor_t *v) {
    store_visitor_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (!visitor_copy(c, v)) {
        store_visitor_free(c);
        return NULL;
    }
    return c;
}

void store__message_dispose(store_message_t *m) {
    free(m->visitor_uid);
    free(m->content);
    free(m->sender_id);
    free(m->status);
    free(m->content_type);
    free(m->metadata_json);
    free(m->temp_id);
    memset(m, 0, sizeof *m);
}

void store_message_free(store_message_t *m) {
    if (!m)
        return;
    store__message_dispose(m);
    free(m);
}

store_message_t *store_message_dup(const store_message_t *m) {
    store_message_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->id = m->id;
    c->conversation_id = m->conversation_id;
    c->project_id = m->project_id;
    c->visitor_id = m->visitor_id;
    c->from_customer = m->from_customer;
    c->user_id = m->user_id;
    c->created_at = m->created_at;
    if (!dup_str(m->visitor_uid, &c->visitor_uid) || !dup_str(m->content, &c->content) ||
        !dup_str(m->sender_id, &c->sender_id) || !dup_str(m->status, &c->status) ||
        !dup_str(m->content_type, &c->content_type) ||
        !dup_str(m->metadata_json, &c->metadata_json) || !dup_str(m->temp_id, &c->temp_id)) {
        store_message_free(c);
        return NULL;
    }
    return c;
}

void store__conversation_dispose(store_conversation_t *c) {
    free(c->status);
    free(c->last_message_snippet);
    free(c->metadata_json);
    free(c->url_history_json);
    store__visitor_dispose(&c->visitor);
    memset(c, 0, sizeof *c);
}

void store__conversation_list_free(store_conversation_t *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        store__conversation_dispose(&v[i]);
    free(v);
}

void store_conversation_free(store_conversation_t *c) {
    if (!c)
        return;
    store__conversation_dispose(c);
    free(c);
}

store_conversation_t *store_conversation_dup(const store_conversation_t *c) {
    store_conversation_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->id = c->id;
    d->project_id = c->project_id;
    d->visitor_id = c->visitor_id;
    d->assignee_id = c->assignee_id;
    d->last_message_timestamp = c->last_message_timestamp;
    d->unread_count = c->unread_count;
    d->created_at = c->created_at;
    d->updated_at = c->updated_at;
    if (!dup_str(c->status, &d->status) ||
        !dup_str(c->last_message_snippet, &d->last_message_snippet) ||
        !dup_str(c->metadata_json, &d->metadata_json) ||
        !dup_str(c->url_history_json, &d->url_history_json) ||
        !visitor_copy(&d->visitor, &c->visitor)) {
        store_conversation_free(d);
        return NULL;
    }
    return d;
}

void store__user_dispose(store_user_t *u) {
    free(u->email);
    free(u->full_name);
    free(u->password_hash);
    memset(u, 0, sizeof *u);
}

void store_user_free(store_user_t *u) {
    if (!u)
        return;
    store__user_dispose(u);
    free(u);
}

store_user_t *store_user_dup(const store_user_t *u) {
    store_user_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->id = u->id;
    c->tokens_valid_from = u->tokens_valid_from;
    c->created_at = u->created_at;
    if (!dup_str(u->email, &c->email) || !dup_str(u->full_name, &c->full_name) ||
        !dup_str(u->password_hash, &c->password_hash)) {
        store_user_free(c);
        return NULL;
    }
    return c;
}

void store__member_dispose(store_member_t *m) {
    free(m->email);
    free(m->full_name);
    free(m->role);
    memset(m, 0, sizeof *m);
}

void store__member_list_free(store_member_t *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        store__member_dispose(&v[i]);
    free(v);
}

void store_member_free(store_member_t *m) {
    if (!m)
        return;
    store__member_dispose(m);
    free(m);
}

store_member_t *store_member_dup(const store_member_t *m) {
    store_member_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->id = m->id;
    if (!dup_str(m->email, &c->email) || !dup_str(m->full_name, &c->full_name) ||
        !dup_str(m->role, &c->role)) {
        store_member_free(c);
        return NULL;
    }
    return c;
}

/* The string fields of a message, in one fixed order. */
static void msg_fields(store_message_t *m, char **f[STORE__MSG_STRS]) {
    f[0] = &m->visitor_uid;
    f[1] = &m->content;
    f[2] = &m->sender_id;
    f[3] = &m->status;
    f[4] = &m->content_type;
    f[5] = &m->metadata_json;
    f[6] = &m->temp_id;
}

void store__msglist_init(store__msglist_t *l) {
    memset(l, 0, sizeof *l);
    pl_buf_init(&l->bytes, 0);
}

void store__msglist_dispose(store__msglist_t *l) {
    free(l->v);
    free(l->off);
    pl_buf_dispose(&l->bytes);
    memset(l, 0, sizeof *l);
}

int store__msglist_add(store__msglist_t *l, const store_message_t *m) {
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        if (ncap > SIZE_MAX / sizeof *l->off)
            return PL_ENOMEM;
        store_message_t *nv = realloc(l->v, ncap * sizeof *nv);
        if (!nv)
            return PL_ENOMEM;
        l->v = nv;
        size_t(*noff)[STORE__MSG_STRS] = realloc(l->off, ncap * sizeof *noff);
        if (!noff)
            return PL_ENOMEM;
        l->off = noff;
        l->cap = ncap;
    }
    store_message_t *d = &l->v[l->n];
    *d = *m;
    char **f[STORE__MSG_STRS];
    msg_fields(d, f);
    for (size_t i = 0; i < STORE__MSG_STRS; i++) {
        const char *src = *f[i];
        *f[i] = NULL;
        l->off[l->n][i] = SIZE_MAX;
        if (!src)
            continue;
        l->off[l->n][i] = l->bytes.len;
        if (pl_buf_append(&l->bytes, src, strlen(src) + 1) != 0)
            return PL_ENOMEM;
    }
    l->n++;
    return 0;
}

int store__msglist_finish(store__msglist_t *l, store_message_t **v, size_t *n) {
    *v = NULL;
    *n = 0;
    if (l->n == 0) {
        store__msglist_dispose(l);
        return 0;
    }
    size_t head = l->n * sizeof(store_message_t); /* fits: l->v has that size */
    if (l->bytes.len > SIZE_MAX - head) {
        store__msglist_dispose(l);
        return PL_ENOMEM;
    }
    store_message_t *block = malloc(head + l->bytes.len);
    if (!block) {
        store__msglist_dispose(l);
        return PL_ENOMEM;
    }
    char *strings = (char *)block + head;
    memcpy(strings, l->bytes.data, l->bytes.len);
    for (size_t k = 0; k < l->n; k++) {
        block[k] = l->v[k];
        char **f[STORE__MSG_STRS];
        msg_fields(&block[k], f);
        for (size_t i = 0; i < STORE__MSG_STRS; i++)
            *f[i] = l->off[k][i] == SIZE_MAX ? NULL : strings + l->off[k][i];
    }
    *v = block;
    *n = l->n;
    store__msglist_dispose(l);
    return 0;
}

store_ingest_result_t *store__ingest_result_pack(const store_ingest_result_t *t) {
    enum { N = STORE__MSG_STRS };
    const char *src[N];
    char **tf[N];
    store_message_t tm = t->message;
    msg_fields(&tm, tf);
    for (size_t i = 0; i < N; i++)
        src[i] = *tf[i];
    size_t len[N], bytes = sizeof *t;
    for (size_t i = 0; i < N; i++) {
        len[i] = src[i] ? strlen(src[i]) : 0;
        if (src[i] && len[i] >= SIZE_MAX - bytes)
            return NULL;
        bytes += src[i] ? len[i] + 1 : 0;
    }
    store_ingest_result_t *r = malloc(bytes);
    if (!r)
        return NULL;
    *r = *t;
    char **dst[N];
    msg_fields(&r->message, dst);
    char *p = (char *)(r + 1);
    for (size_t i = 0; i < N; i++) {
        if (!src[i])
            continue;
        memcpy(p, src[i], len[i] + 1);
        *dst[i] = p;
        p += len[i] + 1;
    }
    return r;
}

void store__ingest_result_free(store_ingest_result_t *r) {
    free(r); /* one block: see store__ingest_result_pack */
}

size_t store__utf8_prefix(const char *s, size_t len, size_t max_chars) {
    size_t chars = 0;
    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (chars == max_chars)
                return i;
            chars++;
        }
    }
    return len;
}

/* ---- outbox event lists ---------------------------------------------------------------------- */

void store__outbox_list_init(store__outbox_list_t *l) {
    memset(l, 0, sizeof *l);
    pl_buf_init(&l->bytes, 0);
}

void store__outbox_list_dispose(store__outbox_list_t *l) {
    free(l->v);
    free(l->off);
    pl_buf_dispose(&l->bytes);
    memset(l, 0, sizeof *l);
}

int store__outbox_list_add(store__outbox_list_t *l, const store_outbox_event_t *e) {
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        if (ncap > SIZE_MAX / sizeof *l->off || ncap > SIZE_MAX / sizeof *l->v)
            return PL_ENOMEM;
        store_outbox_event_t *nv = realloc(l->v, ncap * sizeof *nv);
        if (!nv)
            return PL_ENOMEM;
        l->v = nv;
        size_t(*noff)[2] = realloc(l->off, ncap * sizeof *noff);
        if (!noff)
            return PL_ENOMEM;
        l->off = noff;
        l->cap = ncap;
    }
    const char *src[2] = {e->topic, e->payload};
    for (size_t i = 0; i < 2; i++) {
        l->off[l->n][i] = l->bytes.len;
        if (pl_buf_append(&l->bytes, src[i], strlen(src[i]) + 1) != 0)
            return PL_ENOMEM;
    }
    l->v[l->n] = (store_outbox_event_t){.id = e->id, .created_at = e->created_at};
    l->n++;
    return 0;
}

int store__outbox_list_finish(store__outbox_list_t *l, store_outbox_event_t **v, size_t *n) {
    *v = NULL;
    *n = 0;
    if (l->n == 0) {
        store__outbox_list_dispose(l);
        return 0;
    }
    size_t head = l->n * sizeof(store_outbox_event_t); /* fits: l->v has that size */
    if (l->bytes.len > SIZE_MAX - head) {
        store__outbox_list_dispose(l);
        return PL_ENOMEM;
    }
    store_outbox_event_t *block = malloc(head + l->bytes.len);
    if (!block) {
        store__outbox_list_dispose(l);
        return PL_ENOMEM;
    }
    char *strings = (char *)block + head;
    memcpy(strings, l->bytes.data, l->bytes.len);
    for (size_t k = 0; k < l->n; k++) {
        block[k] = l->v[k];
        block[k].topic = strings + l->off[k][0];
        block[k].payload = strings + l->off[k][1];
    }
    *v = block;
    *n = l->n;
    store__outbox_list_dispose(l);
    return 0;
}

/* ---- the store threads ----------------------------------------------------------------------- */

static void fail_batch(req_list_t *b, int status) {
    for (store_req_t *r = b->head; r; r = r->next)
        r->status = status;
}

static void count_executed(store_t *s, const req_list_t *b, bool write) {
    atomic_fetch_add_explicit(&s->n_requests, b->n, memory_order_relaxed);
    atomic_fetch_add_explicit(write ? &s->n_writes : &s->n_reads, b->n, memory_order_relaxed);
}

static int exec_message_ingest(store_req_t *r, store_conn_t *c);
static void ingest_args(const store_req_t *r, store_ingest_t *in);

/* Runs the ingests that start at *rp (at most INGEST_RUN_MAX consecutive ones) through the
 * backend's message_ingest_batch, and moves *rp past them. Non-zero: the transaction is lost. */
static int run_ingests(worker_t *w, store_conn_t *c, store_req_t **rp) {
    store_req_t *first = *rp, *r = first;
    size_t n = 0, bytes = 0;
    for (; r && r->exec == exec_message_ingest && n < INGEST_RUN_MAX; r = r->next) {
        store_ingest_t *in = &w->run_in[n];
        ingest_args(r, in);
        size_t b = strlen(in->visitor_uid) + strlen(in->content) + strlen(in->temp_id) +
                   (in->session_metadata_json ? strlen(in->session_metadata_json) : 0);
        for (size_t i = 0; i < in->nevents; i++)
            b += strlen(in->event_topics[i]) + strlen(in->event_payloads[i]);
        if (n > 0 && bytes + b > INGEST_RUN_BYTES) /* each b <= STORE_MAX_ARG_BYTES */
            break;
        bytes += b;
        n++;
    }
    int rc = c->ops->message_ingest_batch(c, w->run_in, n, w->run_status, w->run_out);
    size_t i = 0;
    for (store_req_t *q = first; q != r; q = q->next, i++) {
        q->status = rc == 0 ? w->run_status[i] : PL_EUNAVAIL;
        q->res.ingest = w->run_out[i]; /* freed with the request, whatever its status */
    }
    *rp = r;
    return rc;
}

/* Group commit: the whole batch in one transaction, each request in its own savepoint so that
 * a failing request is undone alone and keeps its own status (a run of consecutive ingests may
 * go to the backend's message_ingest_batch instead, with the same effect). If the transaction
 * itself fails (begin, a lost savepoint, commit), nothing of the batch stays and every request
 * gets PL_EUNAVAIL. */
static void run_write_batch(store_t *s, worker_t *w, req_list_t *b) {
    const store_ops_t *ops = s->ops;
    store_conn_t *c = w->conn;
    const char *what = "begin";
    count_executed(s, b, true);
    int rc = ops->begin(c, true);
    if (rc != 0)
        goto out_fail;
    for (store_req_t *r = b->head; r;) {
        if (w->run_in && r->exec == exec_message_ingest) {
            what = "ingest run";
            rc = run_ingests(w, c, &r);
            if (rc != 0)
                goto out_rollback;
            continue;
        }
        what = "savepoint";
        rc = ops->savepoint(c);
        if (rc != 0)
            goto out_rollback;
        r->status = r->exec(r, c);
        what = "end of savepoint";
        rc = r->status == 0 ? ops->release(c) : ops->rollback_to(c);
        if (rc != 0)
            goto out_rollback;
        r = r->next;
    }
    what = "commit";
    rc = ops->commit(c);
    if (rc != 0)
        goto out_rollback;
    if (ops->checkpoint_due && ops->checkpoint_due(c)) {
        uv_mutex_lock(&s->mu);
        s->checkpoint_wanted = true;
        uv_cond_signal(&s->reader.cond);
        uv_mutex_unlock(&s->mu);
    }
    atomic_fetch_add_explicit(&s->n_transactions, 1, memory_order_relaxed);
    if (b->n > atomic_load_explicit(&s->largest_batch, memory_order_relaxed))
        atomic_store_explicit(&s->largest_batch, b->n, memory_order_relaxed);
    return;

out_rollback:
    ops->rollback(c);
out_fail:
    pl_log_warn("store_batch_failed", "backend=%s step=\"%s\" requests=%zu status=\"%s\"",
                ops->name, what, b->n, store_strerror(rc));
    fail_batch(b, PL_EUNAVAIL);
}

/* Reads share one snapshot per batch; a failing read fails alone. */
static void run_read_batch(store_t *s, store_conn_t *c, req_list_t *b) {
    const store_ops_t *ops = s->ops;
    count_executed(s, b, false);
    int rc = ops->begin(c, false);
    if (rc != 0) {
        pl_log_warn("store_batch_failed", "backend=%s step=begin requests=%zu status=\"%s\"",
                    ops->name, b->n, store_strerror(rc));
        fail_batch(b, PL_EUNAVAIL);
        return;
    }
    for (store_req_t *r = b->head; r; r = r->next)
        r->status = r->exec(r, c);
    if (ops->commit(c) != 0)
        ops->rollback(c);
}

static void worker_main(void *arg) {
    worker_t *w = arg;
    store_t *s = w->s;
    pthread_setname_np(pthread_self(), w->write ? "parley-store-w" : "parley-store-r");
    for (;;) {
        uv_mutex_lock(&s->mu);
        while (!w->queue.head && !w->stop && !(!w->write && s->checkpoint_wanted))
            uv_cond_wait(&w->cond, &s->mu);
        bool checkpoint = !w->write && s->checkpoint_wanted;
        s->checkpoint_wanted = checkpoint ? false : s->checkpoint_wanted;
        req_list_t batch = list_take(&w->queue, w->max_batch);
        uv_mutex_unlock(&s->mu);
        if (checkpoint) {
            s->ops->checkpoint(w->conn);
            if (!batch.head)
                continue;
        }
        if (!batch.head)
            break; /* stop, and nothing left to do */
        if (w->write)
            run_write_batch(s, w, &batch);
        else
            run_read_batch(s, w->conn, &batch);
        uv_mutex_lock(&s->mu);
        list_move(&s->done, &batch);
        uv_mutex_unlock(&s->mu);
        uv_async_send(&s->async);
    }
    s->ops->conn_close(w->conn);
    w->conn = NULL;
    uv_mutex_lock(&s->mu);
    s->exited++;
    bool notify = s->attached;
    uv_mutex_unlock(&s->mu);
    if (notify)
        uv_async_send(&s->async);
}

/* Tells both threads to finish their queues and exit, and waits for them (they have nothing
 * queued when this is called from store_open's error path; store_close uses it only after
 * they have exited). */
static void workers_stop_join(store_t *s) {
    uv_mutex_lock(&s->mu);
    s->writer.stop = s->reader.stop = true;
    uv_cond_signal(&s->writer.cond);
    uv_cond_signal(&s->reader.cond);
    uv_mutex_unlock(&s->mu);
    worker_t *ws[] = {&s->writer, &s->reader};
    for (size_t i = 0; i < 2; i++) {
        if (ws[i]->started)
            uv_thread_join(&ws[i]->tid);
        ws[i]->started = false;
    }
}

/* ---- the loop side --------------------------------------------------------------------------- */

static void req_free(store_req_t *r) {
    free(r->a.text);
    free(r->a.blob);
    free(r->a.list[0].v);
    free(r->a.list[1].v);
    free(r->a.ids);
    switch (r->kind) {
    case RES_PROJECT:
        store_project_free(r->res.project);
        break;
    case RES_PROJECT_LIST:
        for (size_t i = 0; i < r->res.projects.n; i++)
            store__project_dispose(&r->res.projects.v[i]);
        free(r->res.projects.v);
        break;
    case RES_VISITOR:
        store_visitor_free(r->res.visitor);
        break;
    case RES_HISTORY:
        free(r->res.history.v); /* one block: store__msglist_finish */
        break;
    case RES_INGEST:
        store__ingest_result_free(r->res.ingest);
        break;
    case RES_CONVERSATION:
        store_conversation_free(r->res.conversation);
        break;
    case RES_USER:
        store_user_free(r->res.user);
        break;
    case RES_ROLE:
        free(r->res.role);
        break;
    case RES_MEMBER_LIST:
        store__member_list_free(r->res.members.v, r->res.members.n);
        break;
    case RES_CONVERSATION_LIST:
        store__conversation_list_free(r->res.conversations.v, r->res.conversations.n);
        break;
    case RES_MESSAGE_LIST:
        free(r->res.messages.v); /* one block */
        break;
    case RES_REPLY:
        free(r->res.reply.message); /* one block */
        store_conversation_free(r->res.reply.conversation);
        break;
    case RES_OUTBOX:
        free(r->res.outbox.v); /* one block */
        break;
    case RES_DONE:
    case RES_COUNT:
    case RES_ID:
    case RES_REFRESH:
        break;
    }
    free(r);
}

/* Calls the request's callback (if any); results are borrowed by it. */
static void req_deliver(store_req_t *r) {
    int st = r->status;
    switch (r->kind) {
    case RES_DONE:
        if (r->cb.done)
            r->cb.done(r->ud, st);
        break;
    case RES_COUNT:
        if (r->cb.count)
            r->cb.count(r->ud, st, st == 0 ? r->res.count : 0);
        break;
    case RES_PROJECT:
        assert(st != 0 || r->res.project);
        if (r->cb.project)
            r->cb.project(r->ud, st, st == 0 ? r->res.project : NULL);
        break;
    case RES_PROJECT_LIST:
        if (r->cb.project_list)
            r->cb.project_list(r->ud, st, st == 0 ? r->res.projects.v : NULL,
                               st == 0 ? r->res.projects.n : 0);
        break;
    case RES_ID:
        if (r->cb.id)
            r->cb.id(r->ud, st, st == 0 ? r->res.count : 0);
        break;
    case RES_VISITOR:
        assert(st != 0 || r->res.visitor);
        if (r->cb.visitor)
            r->cb.visitor(r->ud, st, st == 0 ? r->res.visitor : NULL);
        break;
    case RES_HISTORY:
        if (r->cb.history)
            r->cb.history(r->ud, st, st == 0 ? r->res.history.conversation_id : 0,
                          st == 0 ? r->res.history.v : NULL, st == 0 ? r->res.history.n : 0);
        break;
    case RES_INGEST:
        assert(st != 0 || r->res.ingest);
        /* a new message wrote every event of the request, a duplicate none (backend contract) */
        assert(st != 0 ||
               r->res.ingest->noutbox == (r->res.ingest->duplicate ? 0 : r->a.list[0].n));
        if (r->cb.ingest)
            r->cb.ingest(r->ud, st, st == 0 ? r->res.ingest : NULL);
        break;
    case RES_CONVERSATION:
        assert(st != 0 || r->res.conversation);
        if (r->cb.conversation)
            r->cb.conversation(r->ud, st, st == 0 ? r->res.conversation : NULL);
        break;
    case RES_USER:
        assert(st != 0 || r->res.user);
        if (r->cb.user)
            r->cb.user(r->ud, st, st == 0 ? r->res.user : NULL);
        break;
    case RES_ROLE:
        assert(st != 0 || r->res.role);
        if (r->cb.role)
            r->cb.role(r->ud, st, st == 0 ? r->res.role : NULL);
        break;
    case RES_REFRESH:
        if (r->cb.refresh)
            r->cb.refresh(r->ud, st, st == 0 ? &r->res.refresh : NULL);
        break;
    case RES_MEMBER_LIST:
        if (r->cb.member_list)
            r->cb.member_list(r->ud, st, st == 0 ? r->res.members.v : NULL,
                              st == 0 ? r->res.members.n : 0);
        break;
    case RES_CONVERSATION_LIST:
        if (r->cb.conversation_list)
            r->cb.conversation_list(r->ud, st, st == 0 ? r->res.conversations.v : NULL,
                                    st == 0 ? r->res.conversations.n : 0,
                                    st == 0 ? r->res.conversations.total : 0);
        break;
    case RES_MESSAGE_LIST:
        if (r->cb.message_list)
            r->cb.message_list(r->ud, st, st == 0 ? r->res.messages.v : NULL,
                               st == 0 ? r->res.messages.n : 0,
                               st == 0 && r->res.messages.has_more);
        break;
    case RES_REPLY:
        assert(st != 0 || (r->res.reply.message && r->res.reply.conversation));
        if (r->cb.reply)
            r->cb.reply(r->ud, st, st == 0 ? r->res.reply.message : NULL,
                        st == 0 ? r->res.reply.conversation : NULL);
        break;
    case RES_OUTBOX:
        if (r->cb.outbox)
            r->cb.outbox(r->ud, st, st == 0 ? r->res.outbox.v : NULL,
                         st == 0 ? r->res.outbox.n : 0);
        break;
    }
}

/* Frees the writer's ingest-run arrays (NULL is fine). */
static void worker_scratch_free(worker_t *w) {
    free(w->run_in);
    free(w->run_status);
    free(w->run_out);
    w->run_in = NULL;
    w->run_status = NULL;
    w->run_out = NULL;
}

static void on_handle_closed(uv_handle_t *h) {
    store_t *s = h->data;
    if (--s->handles_open > 0)
        return;
    if (s->close_cb)
        s->close_cb(s, s->close_ud);
    uv_cond_destroy(&s->writer.cond);
    uv_cond_destroy(&s->reader.cond);
    uv_mutex_destroy(&s->mu);
    worker_scratch_free(&s->writer);
    free(s);
}

/* Finishes store_close once every request has called back and both threads have exited. */
static void maybe_finish_close(store_t *s) {
    if (!s->closing || s->close_started || s->in_flight > 0)
        return;
    uv_mutex_lock(&s->mu);
    int exited = s->exited;
    uv_mutex_unlock(&s->mu);
    if (exited < 2)
        return;
    s->close_started = true;
    workers_stop_join(s); /* both have exited: this only reaps them */
    pl_log_info("store_closed", "backend=%s requests=%llu transactions=%llu", s->ops->name,
                (unsigned long long)atomic_load(&s->n_requests),
                (unsigned long long)atomic_load(&s->n_transactions));
    uv_close((uv_handle_t *)&s->async, on_handle_closed);
    uv_close((uv_handle_t *)&s->idle, on_handle_closed);
}

static void on_async(uv_async_t *h) {
    store_t *s = h->data;
    uv_mutex_lock(&s->mu);
    list_move(&s->ready, &s->done);
    uv_mutex_unlock(&s->mu);
    /* Bounded work per wakeup: the rest is delivered on the next turn. */
    for (unsigned i = 0; i < STORE_DELIVER_BATCH && s->ready.head; i++) {
        store_req_t *r = list_pop(&s->ready);
        if (r->status != 0)
            s->n_failed++;
        req_deliver(r);
        req_free(r);
        if (--s->in_flight == 0 && !s->closing)
            uv_unref((uv_handle_t *)&s->async);
    }
    if (s->ready.head)
        uv_async_send(&s->async);
    else
        maybe_finish_close(s);
}

/* Hands the requests submitted this turn to the store threads. */
static void flush_pending(store_t *s) {
    if (!s->pending_write.head && !s->pending_read.head)
        return;
    uv_mutex_lock(&s->mu);
    if (s->pending_write.head) {
        list_move(&s->writer.queue, &s->pending_write);
        uv_cond_signal(&s->writer.cond);
    }
    if (s->pending_read.head) {
        list_move(&s->reader.queue, &s->pending_read);
        uv_cond_signal(&s->reader.cond);
    }
    uv_mutex_unlock(&s->mu);
}

static void on_idle(uv_idle_t *h) {
    store_t *s = h->data;
    flush_pending(s);
    uv_idle_stop(h);
}

/* A new request, or NULL with *err set when the store cannot take one now (closing or full:
 * counted as rejected). Capacity is checked before anything is allocated. */
static store_req_t *req_new(store_t *s, bool write, res_kind_t kind, req_exec_fn exec, void *ud,
                            int *err) {
    if (s->closing || s->in_flight >= s->max_in_flight) {
        s->n_rejected++;
        *err = PL_EUNAVAIL;
        return NULL;
    }
    store_req_t *r = pl_xcalloc(1, sizeof *r);
    r->write = write;
    r->kind = kind;
    r->exec = exec;
    r->ud = ud;
    return r;
}

/* Queues a request made by req_new (capacity was checked there, on this same thread). */
static void req_submit(store_t *s, store_req_t *r) {
    list_push(r->write ? &s->pending_write : &s->pending_read, r);
    if (s->in_flight++ == 0)
        uv_ref((uv_handle_t *)&s->async);
    if (!uv_is_active((uv_handle_t *)&s->idle))
        uv_idle_start(&s->idle, on_idle);
}

/* Copies text for a request, charging its bytes to *budget. */
static int arg_text(const char *src, size_t *budget, char **out) {
    if (!src)
        return PL_EINVAL;
    size_t len = strlen(src);
    if (len >= *budget)
        return PL_ETOOBIG;
    *budget -= len + 1;
    *out = malloc(len + 1);
    if (!*out)
        return PL_ENOMEM;
    memcpy(*out, src, len + 1);
    return 0;
}

/* Copies a list of strings into one allocation, charging its bytes to *budget. */
static int arg_list(const char *const *v, size_t n, size_t *budget, strv_t *out) {
    *out = (strv_t){0};
    if (n == 0)
        return 0;
    if (!v)
        return PL_EINVAL;
    if (n > STORE_MAX_LIST)
        return PL_ETOOBIG;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (!v[i])
            return PL_EINVAL;
        size_t len = strlen(v[i]);
        if (len >= *budget - bytes) /* bytes <= *budget holds: checked on every step */
            return PL_ETOOBIG;
        bytes += len + 1;
    }
    *budget -= bytes;
    size_t table = n * sizeof(char *); /* n <= STORE_MAX_LIST: no overflow */
    char **copy = malloc(table + bytes);
    if (!copy)
        return PL_ENOMEM;
    char *p = (char *)copy + table;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(v[i]) + 1;
        memcpy(p, v[i], len);
        copy[i] = p;
        p += len;
    }
    out->v = copy;
    out->n = n;
    return 0;
}

/* Copies the strings src[0..n) (n <= STR_ARGS) into one allocation owned by the request
 * (r->a.blob; r->a.str[i] points into it), charging their bytes to *budget (the request's
 * STORE_MAX_ARG_BYTES). A NULL src[i] stays NULL when bit i of nullable is set, else the call
 * is PL_EINVAL. One malloc for all of them: this is on the hot path of every message. */
static int arg_strs(store_req_t *r, size_t n, const char *const *src, unsigned nullable,
                    size_t *budget) {
    assert(n <= STR_ARGS);
    size_t len[STR_ARGS] = {0};
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (!src[i]) {
            if (!(nullable & (1u << i)))
                return PL_EINVAL;
            continue;
        }
        len[i] = strlen(src[i]);
        if (len[i] >= *budget - bytes) /* bytes <= *budget: checked every step */
            return PL_ETOOBIG;
        bytes += len[i] + 1;
    }
    *budget -= bytes;
    if (bytes == 0)
        return 0;
    char *p = malloc(bytes);
    if (!p)
        return PL_ENOMEM;
    r->a.blob = p;
    for (size_t i = 0; i < n; i++) {
        if (!src[i])
            continue;
        memcpy(p, src[i], len[i] + 1);
        r->a.str[i] = p;
        p += len[i] + 1;
    }
    return 0;
}

/* ---- opening and closing --------------------------------------------------------------------- */

const store_ops_t *store__backend_for_url(const char *url, const char **target, char *err,
                                          size_t errlen) {
    if (!url || !url[0]) {
        store__errf(err, errlen, "no database URL (expected sqlite:PATH or postgres://...)");
        return NULL;
    }
    if (strncmp(url, "sqlite:", 7) == 0) {
        *target = url + 7;
        return &store_sqlite_ops;
    }
    if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0) {
        *target = url; /* libpq parses the whole URL */
        return &store_pg_ops;
    }
    /* Name only the scheme: the rest of a URL may hold a password. */
    size_t scheme = strcspn(url, ":");
    store__errf(err, errlen,
                "unsupported database URL scheme \"%.*s\" (expected sqlite:PATH or "
                "postgres://...)",
                (int)(scheme > 32 ? 32 : scheme), url);
    return NULL;
}

static bool options_check(const store_options_t *o, char *err, size_t errlen) {
    if (o && o->synchronous && strcmp(o->synchronous, "normal") != 0 &&
        strcmp(o->synchronous, "full") != 0) {
        store__errf(err, errlen, "synchronous must be \"normal\" or \"full\", not \"%.32s\"",
                    o->synchronous);
        return false;
    }
    return true;
}

/* Opens the write connection of url and brings its schema up to date. */
static store_conn_t *open_migrated(const char *url, const store_options_t *opts,
                                   const store_ops_t **ops, const char **target, int *applied,
                                   int *rc, char *err, size_t errlen) {
    *rc = PL_EINVAL;
    if (!options_check(opts, err, errlen))
        return NULL;
    *ops = store__backend_for_url(url, target, err, errlen);
    if (!*ops)
        return NULL;
    *rc = PL_EUNAVAIL;
    store_conn_t *c = (*ops)->conn_open(*target, opts, STORE_CONN_WRITE, err, errlen);
    if (!c)
        return NULL;
    size_t n;
    const store_migration_t *list = store_migrations(&n);
    *rc = store_migrations_run(c, list, n, applied, err, errlen);
    if (*rc != 0) {
        (*ops)->conn_close(c);
        return NULL;
    }
    return c;
}

int store_migrate(const char *url, const store_options_t *opts, int *applied, char *err,
                  size_t errlen) {
    const store_ops_t *ops;
    const char *target;
    int rc;
    *applied = 0;
    store_conn_t *c = open_migrated(url, opts, &ops, &target, applied, &rc, err, errlen);
    if (!c)
        return rc;
    ops->conn_close(c);
    return 0;
}

store_t *store_open(uv_loop_t *loop, const char *url, const store_options_t *opts, char *err,
                    size_t errlen) {
    const store_ops_t *ops;
    const char *target;
    int applied = 0, rc;
    store_conn_t *wconn = open_migrated(url, opts, &ops, &target, &applied, &rc, err, errlen);
    if (!wconn)
        return NULL;
    store_conn_t *rconn = ops->conn_open(target, opts, STORE_CONN_READ, err, errlen);
    if (!rconn)
        goto out_close_write;

    store_t *s = pl_xcalloc(1, sizeof *s);
    s->loop = loop;
    s->ops = ops;
    s->max_in_flight = opts && opts->max_queue ? opts->max_queue : STORE_MAX_QUEUE;
    s->writer = (worker_t){.s = s, .write = true, .conn = wconn, .max_batch = SIZE_MAX};
    s->reader = (worker_t){.s = s, .write = false, .conn = rconn, .max_batch = STORE_READ_BATCH};
    if (ops->message_ingest_batch) { /* fixed sizes: small enough to abort on failure */
        s->writer.run_in = pl_xcalloc(INGEST_RUN_MAX, sizeof *s->writer.run_in);
        s->writer.run_status = pl_xcalloc(INGEST_RUN_MAX, sizeof *s->writer.run_status);
        s->writer.run_out = pl_xcalloc(INGEST_RUN_MAX, sizeof *s->writer.run_out);
    }
    const char *what = "a mutex";
    if ((rc = uv_mutex_init(&s->mu)) != 0)
        goto out_free;
    what = "a condition variable";
    if ((rc = uv_cond_init(&s->writer.cond)) != 0)
        goto out_mutex;
    if ((rc = uv_cond_init(&s->reader.cond)) != 0)
        goto out_cond_writer;
    /* From here each started thread owns (and closes) its connection. */
    what = "the store threads";
    if ((rc = uv_thread_create(&s->writer.tid, worker_main, &s->writer)) != 0)
        goto out_cond_reader;
    s->writer.started = true;
    wconn = NULL;
    if ((rc = uv_thread_create(&s->reader.tid, worker_main, &s->reader)) != 0)
        goto out_threads;
    s->reader.started = true;
    rconn = NULL;
    what = "the loop handle";
    if ((rc = uv_async_init(loop, &s->async, on_async)) != 0)
        goto out_threads;
    uv_idle_init(loop, &s->idle);
    s->async.data = s;
    s->idle.data = s;
    s->handles_open = 2;
    uv_unref((uv_handle_t *)&s->async); /* nothing in flight yet */
    uv_mutex_lock(&s->mu);
    s->attached = true;
    uv_mutex_unlock(&s->mu);
    pl_log_info("store_open", "backend=%s migrations_applied=%d schema_version=%d", ops->name,
                applied, store_migrations_latest());
    return s;

out_threads:
    workers_stop_join(s); /* nothing was queued: they exit at once, closing their connections */
out_cond_reader:
    uv_cond_destroy(&s->reader.cond);
out_cond_writer:
    uv_cond_destroy(&s->writer.cond);
out_mutex:
    uv_mutex_destroy(&s->mu);
out_free:
    store__errf(err, errlen, "cannot create %s: %s", what, uv_strerror(rc));
    worker_scratch_free(&s->writer);
    free(s);
    ops->conn_close(rconn);
out_close_write:
    ops->conn_close(wconn);
    return NULL;
}

void store_close(store_t *s, store_close_cb cb, void *ud) {
    assert(!s->closing); /* ours: close once */
    if (s->closing)
        return;
    s->closing = true;
    s->close_cb = cb;
    s->close_ud = ud;
    uv_ref((uv_handle_t *)&s->async); /* the loop lives until the threads have gone */
    flush_pending(s);
    uv_idle_stop(&s->idle);
    uv_mutex_lock(&s->mu);
    s->writer.stop = s->reader.stop = true;
    uv_cond_signal(&s->writer.cond);
    uv_cond_signal(&s->reader.cond);
    uv_mutex_unlock(&s->mu);
    /* The threads signal the async handle as they exit; on_async finishes the close. */
}

void store_wait(store_t *s) {
    while (s->in_flight > 0)
        uv_run(s->loop, UV_RUN_ONCE);
}

void store_stats(const store_t *s, store_stats_t *st) {
    store_t *m = (store_t *)s; /* atomic loads need a non-const object in C17 */
    *st = (store_stats_t){
        .requests = atomic_load_explicit(&m->n_requests, memory_order_relaxed),
        .reads = atomic_load_explicit(&m->n_reads, memory_order_relaxed),
        .writes = atomic_load_explicit(&m->n_writes, memory_order_relaxed),
        .transactions = atomic_load_explicit(&m->n_transactions, memory_order_relaxed),
        .largest_batch = atomic_load_explicit(&m->largest_batch, memory_order_relaxed),
        .failed = s->n_failed,
        .rejected = s->n_rejected,
        .in_flight = s->in_flight,
    };
}

/* ---- operations: an exec thunk (store thread) and a wrapper (loop thread) each --------------- */

static int exec_ping(store_req_t *r, store_conn_t *c) {
    (void)r;
    return c->ops->ping(c);
}

int store_ping(store_t *s, store_done_cb cb, void *ud) {
    int err;
    store_req_t *r = req_new(s, false, RES_DONE, exec_ping, ud, &err);
    if (!r)
        return err;
    r->cb.done = cb;
    req_submit(s, r);
    return 0;
}

static int exec_project_create(store_req_t *r, store_conn_t *c) {
    return c->ops->project_create(c, r->a.text, (const char *const *)r->a.list[0].v, r->a.list[0].n,
                                  &r->res.project);
}

int store_project_create(store_t *s, const char *name, const char *const *domains, size_t ndomains,
                         store_project_cb cb, void *ud) {
    int err;
    store_req_t *r = req_new(s, true, RES_PROJECT, exec_project_create, ud, &err);
    if (!r)
        return err;
    r->cb.project = cb;
    size_t budget = STORE_MAX_ARG_BYTES;
    if ((err = arg_text(name, &budget, &r->a.text)) != 0 ||
        (err = arg_list(domains, ndomains, &budget, &r->a.list[0])) != 0) {
        req_free(r);
        return err;
    }
    req_submit(s, r);
    return 0;
}

static int exec_project_get(store_req_t *r, store_conn_t *c) {
    return c->ops->project_get(c, r->a.id, &r->res.project);
}

int store_project_get(store_t *s, int64_t id, store_project_cb cb, void *ud) {
    int err;
    store_req_t *r = req_new(s, false, RES_PROJECT, exec_project_get, ud, &err);
    if (!r)
        return err;
    r->cb.project = cb;
    r->a.id = id;
    req_submit(s, r);
    return 0;
}

static int exec_project_list(store_req_t *r, store_conn_t *c) {
    return c->ops->project_list(c, &r->res.projects.v, &r->res.projects.n);
}

int store_project_list(store_t *s, store_project_list_cb cb, void *ud) {
    int err;
    store_req_t *r = req_new(s, false, RES_PROJECT_LIST, exec_project_list, ud, &err);
    if (!r)
        return err;
    r->cb.project_list = cb;
    req_submit(s, r);
    return 0;
}

static int exec_project_domains_update(store_req_t *r, store_conn_t *c) {
    return c->ops->project_domains_update(c, r->a.id, (const char *const *)r->a.list[0].v,
                                          r->a.list[0].n, (const char *const *)r->a.list[1].v,
                                          r->a.list[1].n, &r->res.project);
}

int store_project_domains_update(store_t *s, int64_t id, const char *const *add, size_t nadd,
                                 const char *const *remove, size_t nremove, store_project_cb cb,
                                 void *ud) {
    int err;
    store_req_t *r = req_new(s, true, RES_PROJECT, exec_project_domains_update, ud, &err);
    if (!r)
        return err;
    r->cb.project = cb;
    r->a.id = id;
    size_t budget = STORE_MAX_ARG_BYTES;
    if ((err = arg_list(add, nadd, &budget, &r->a.list[0])) != 0 ||
        (err = arg_list(remove, nremove, &budget, &r->a.list[1])) != 0) {
        req_free(r);
        return err;
    }
    req_submit(s, r);
    return 0;
}

static int exec_project_count(store_req_t *r, store_conn_t *c) {
    return c->ops->project_count(c, &r->res.count);
}

int store_project_count(store_t *s, store_count_cb cb, void *ud) {
    int err;
    store_req_t *r = req_new(s, false, RES_COUNT, exec_project_count, ud, &err);
    if (!r)
        return err;
    r->cb.count = cb;
    req_submit(s, r);
    return 0;
}

/* ---- the widget connection flow -------------------------------------------------------------- */

/* Submits r after copying its string arguments, or frees it and returns the error. */
static int req_submit_strs(store_t *s, store_req_t *r, size_t n, const char *const *src,
                           unsigned nullable) {
    size_t budget = STORE_MAX_ARG_BYTES;
    int err = arg_strs(r, n, src, nullable, &budget);
    if (err != 0) {
        req_free(r);
        return err;
    }
    req_submit(s, r);
    return 0;
}

static int exec_visitor_identify(store_req_t *r, store_conn_t *c) {
    return c->ops->visitor_identify(c, r->a.id, r->a.str[0], r->a.now_ms, &r->res.visitor);
}

int store_visitor_identify(store_t *s, int64_t project_id, const char *uid, int64_t now_ms,
                           store_visitor_cb cb, void *ud) {
    if (!uid)
        return PL_EINVAL;
    int err;
    store_req_t *r = req_new(s, true, RES_VISITOR, exec_visitor_identify, ud, &err);
    if (!r)
        return err;
    r->cb.visitor = cb;
    r->a.id = project_id;
    r->a.now_ms = now_ms;
    return req_submit_strs(s, r, 1, (const char *const[]){uid}, 0);
}

static int exec_history(store_req_t *r, store_conn_t *c) {
    return c->ops->history(c, r->a.id, r->a.str[0], r->a.flag, r->a.limit,
                           &r->res.history.conversation_id, &r->res.history.v, &r->res.history.n);
}

int store_history(store_t *s, int64_t project_id, const char *uid, bool forever, size_t limit,
                  store_history_cb cb, void *ud) {
    if (!uid || limit == 0)
        return PL_EINVAL;
    if (limit > STORE_HISTORY_MAX)
        return PL_ETOOBIG;
    int err;
    store_req_t *r = req_new(s, false, RES_HISTORY, exec_history, ud, &err);
    if (!r)
        return err;
    r->cb.history = cb;
    r->a.id = project_id;
    r->a.flag = forever;
    r->a.limit = limit;
    return req_submit_strs(s, r, 1, (const char *const[]){uid}, 0);
}

/* The ingest a request carries (its strings borrowed from the request). */
static void ingest_args(const store_req_t *r, store_ingest_t *in) {
    *in = (store_ingest_t){
        .project_id = r->a.id,
        .visitor_uid = r->a.str[0],
        .content = r->a.str[1],
        .temp_id = r->a.str[2],
        .session_metadata_json = r->a.str[3],
        .forever = r->a.flag,
        .now_ms = r->a.now_ms,
        .event_topics = (const char *const *)r->a.list[0].v,
        .event_payloads = (const char *const *)r->a.list[1].v,
        .nevents = r->a.list[0].n,
    };
}

static int exec_message_ingest(store_req_t *r, store_conn_t *c) {
    store_ingest_t in;
    ingest_args(r, &in);
    return c->ops->message_ingest(c, &in, &r->res.ingest);
}

int store_message_ingest(store_t *s, const store_ingest_t *in, store_ingest_cb cb, void *ud) {
    if (!in)
        return PL_EINVAL;
    if (in->nevents > 0) { /* checked before anything is taken from the queue */
        if (!in->event_topics || !in->event_payloads)
            return PL_EINVAL;
        if (in->nevents > STORE_INGEST_EVENTS_MAX) /* the result has room for that many ids */
            return PL_ETOOBIG;
        for (size_t i = 0; i < in->nevents; i++)
            if (!in->event_topics[i] || !in->event_topics[i][0] || !in->event_payloads[i])
                return PL_EINVAL;
    }
    int err;
    store_req_t *r = req_new(s, true, RES_INGEST, exec_message_ingest, ud, &err);
    if (!r)
        return err;
    r->cb.ingest = cb;
    r->a.id = in->project_id;
    r->a.flag = in->forever;
    r->a.now_ms = in->now_ms;
    const char *const strs[] = {in->visitor_uid, in->content, in->temp_id,
                                in->session_metadata_json};
    size_t budget = STORE_MAX_ARG_BYTES;
    if ((err = arg_strs(r, 4, strs, 1u << 3, &budget)) != 0 ||
        (err = arg_list(in->event_topics, in->nevents, &budget, &r->a.list[0])) != 0 ||
        (err = arg_list(in->event_payloads, in->nevents, &budget, &r->a.list[1])) != 0) {
        req_free(r);
        return err;
    }
    req_submit(s, r);
    return 0;
}

static int exec_visitor_context(store_req_t *r, store_conn_t *c) {
    return c->ops->visitor_context(c, r->a.id, r->a.str[0], r->a.str[1], r->a.now_ms,
                                   &r->res.count);
}

int store_visitor_context(store_t *s, int64_t project_id, const char *uid, const char *url,
                          int64_t now_ms, store_id_cb cb, void *ud) {
    int err;
    store_req_t *r = req_new(s, true, RES_ID, exec_visitor_context, ud, &err);
    if (!r)
        return err;
    r->cb.id = cb;
    r->a.id = project_id;
    r->a.now_ms = now_ms;
    return req_submit_strs(s, r, 2, (const char *const[]){uid, url}, 0);
}

static int exec_visitor_conversation(store_req_t *r, store_conn_t *c) {
    return c->ops->visitor_conversation(c, r->a.id, r->a.str[0], r->a.flag, &r->res.count);
}

int store_visitor_conversation(store_t *s, int64_t project_id, const char *uid, bool forever,
                               store_id_cb cb, void *ud) {
    int err;
    store_req_t *r = req_new(s, false, RES_ID, exec_visitor_conversation, ud, &err);
    if (!r)
        return err;
    r->cb.id = cb;
    r->a.id = project_id;
    r->a.flag = forever;
    return req_submit_strs(s, r, 1, (const char *const[]){uid}, 0);
}

static int exec_conversation_get(store_req_t *r, store_conn_t *c) {
    return c->ops->conversation_get(c, r->a.id, r->a.id2, &r->res.conversation);
}

int store_conversation_get(store_t *s, int64_t project_id, int64_t id, store_conversation_cb cb,
                           void *ud) {
    int err;
    store_req_t *r = req_new(s, false, RES_CONVERSATION, exec_conversation_get, ud, &err);
    if (!r)
        return err;
    r->cb.conversation = cb;
    r->a.id = project_id;
    r->a.id2 = id;
    req_submit(s, r);
    return 0;
}

/* ---- users and members ----------------------------------------------------------------------- */

static int exec_user_create(store_req_t *r, store_conn_t *c) {
    return c->ops->user_create(c, r->a.str[0], r->a.str[1], r->a.str[2] ? r->a.str[2] : "",
                               r->a.now_ms, &r->res.user);
}

int store_user_create(store_t *s, const char *email, const char *password_hash,
                      const char *full_name, int64_t now_ms, store_user_cb cb, void *ud) {
    int err;
    store_req_t *r = req_new(s, true, RES_USER, exec_user_create, ud, &err);
    if (!r)
        return err;
    r->cb.user = cb;
    r->a.now_ms = now_ms;
    return req_submit_strs(s, r, 3, (const char *const[]){email, password_hash, full_name},
                           1u << 2);
}

static int exec_user_get(store_req_t *r, store_conn_t *c) {
    return c->ops->user_get(c, r->a.id, &r->res.user);
}

int store_user_get(store_t *s, int64_t id, store_user_cb cb, void *ud) {
    int err;
    store_req_t *r = req_new(s, false, RES_USER, exec_user_get, ud, &err);
    if (!r)
        return err;
    r->cb.user = cb;
    r->a.id = id;
    req_submit(s, r);
    return 0;
}

static int exec_user_by_email(store_req_t *r, store_conn_t *c) {
    return c->ops->user_by_email(c, r->a.str[0], &r->res.user);
}

int store_user_by_email(store_t *s, const char *email, store_user_cb cb, void *ud) {
    int err;
    store_req_t *r = req_new(s, false, RES_USER, exec_user_by_email, ud, &err);
    if (!r)
        return err;
    r->cb.user = cb;
    return req_submit_strs(s, r, 1, (const char *const[]){email}, 0);
}

static int exec_user_revoke_tokens(store_req_t *r, store_conn_t *c) {
    return c->ops->user_revoke_tokens(c, r->a.id, r->a.now_ms);
}

int store_user_revoke_tokens(store_t *s, int64_t user_id, int64_t now_ms, store_done_cb cb,
                             void *ud) {
    int err;
    store_req_t *r = req_new(s, true, RES_DONE, exec_user_revoke_tokens, ud, &err);
    if (!r)
        return err;
    r->cb.done = cb;
    r->a.id = user_id;
    r->a.now_ms = now_ms;
    req_submit(s, r);
    return 0;
}

static int exec_member_add(store_req_t *r, store_conn_t *c) {
    return c->ops->member_add(c, r->a.id, r->a.id2, r->a.str[0]);
}

int store_member_add(store_t *s, int64_t project_id, int64_t user_id, const char *role,
                     store_done_cb cb, void *ud) {
    int err;
    store_req_t *r = req_new(s, true, RES_DONE, exec_member_add, ud, &err);
    if (!r)
        return err;
    r->cb.done = cb;
    r->a.id = project_id;
    r->a.id2 = user_id;
    return req_submit_strs(s, r, 1, (const char *const[]){role}, 0);
}

static int exec_member_role(store_req_t *r, store_conn_t *c) {
    return c->ops->member_role(c, r->a.id, r->a.id2, &r->res.role);
}

int store_member_role(store_t *s, int64_t project_id, int64_t user_id, store_role_cb cb, void *ud) {
    int err;
    store_req_t *r = req_new(s, false, RES_ROLE, exec_member_role, ud, &err);
    if (!r)
        return err;
    r->cb.role = cb;
    r->a.id = project_id;
    r->a.id2 = user_id;
    req_submit(s, r);
    return 0;
}

/* ---- refresh tokens -------------------------------------------------------------------------- */

static int exec_refresh_create(store_req_t *r, store_conn_t *c) {
    return c->ops->refresh_create(c, r->a.id, r->a.id2, r->a.str[0], r->a.id3, r->a.now_ms,
                                  &r->res.count);
}

int store_refresh_create(store_t *s, int64_t user_id, int64_t family_id, const char *token_hash,
                         int64_t expires_at_ms, int64_t now_ms, store_id_cb cb, void *ud) {
    if (!token_hash)
        return PL_EINVAL;
    int err;
    store_req_t *r = req_new(s, true, RES_ID, exec_refresh_create, ud, &err);
    if (!r)
        return err;
    r->cb.id = cb;
    r->a.id = user_id;
    r->a.id2 = family_id;
    r->a.id3 = expires_at_ms;
    r->a.now_ms = now_ms;
    return req_submit_strs(s, r, 1, (const char *const[]){token_hash}, 0);
}

static int exec_refresh_rotate(store_req_t *r, store_conn_t *c) {
    return c->ops->refresh_rotate(c, r->a.str[0], r->a.str[1], r->a.id, r->a.now_ms,
                                  &r->res.refresh);
}

int store_refresh_rotate(store_t *s, const char *old_hash, const char *new_hash,
                         int64_t new_expires_ms, int64_t now_ms, store_refresh_cb cb, void *ud) {
    if (!old_hash || !new_hash)
        return PL_EINVAL;
    int err;
    store_req_t *r = req_new(s, true, RES_REFRESH, exec_refresh_rotate, ud, &err);
    if (!r)
        return err;
    r->cb.refresh = cb;
    r->a.id = new_expires_ms;
    r->a.now_ms = now_ms;
    return req_submit_strs(s, r, 2, (const char *const[]){old_hash, new_hash}, 0);
}

static int exec_refresh_revoke(store_req_t *r, store_conn_t *c) {
    return c->ops->refresh_revoke(c, r->a.str[0], r->a.now_ms);
}

int store_refresh_revoke(store_t *s, const char *token_hash, int64_t now_ms, store_done_cb cb,
                         void *ud) {
    if (!token_hash)
        return PL_EINVAL;
    int err;
    store_req_t *r = req_new(s, true, RES_DONE, exec_refresh_revoke, ud, &err);
    if (!r)
        return err;
    r->cb.done = cb;
    r->a.now_ms = now_ms;
    return req_submit_strs(s, r, 1, (const char *const[]){token_hash}, 0);
}

static int exec_user_logout_all(store_req_t *r, store_conn_t *c) {
    return c->ops->user_logout_all(c, r->a.id, r->a.now_ms);
}

int store_user_logout_all(store_t *s, int64_t user_id, int64_t now_ms, store_done_cb cb, void *ud) {
    int err;
    store_req_t *r = req_new(s, true, RES_DONE, exec_user_logout_all, ud, &err);
    if (!r)
        return err;
    r->cb.done = cb;
    r->a.id = user_id;
    r->a.now_ms = now_ms;
    req_submit(s, r);
    return 0;
}

/* ---- projects of agents ---------------------------------------------------------------------- */

static int exec_project_create_owned(store_req_t *r, store_conn_t *c) {
    return c->ops->project_create_owned(c, r->a.text, (const char *const *)r->a.list[0].v,
                                        r->a.list[0].n, r->a.id, &r->res.project);
}

int store_project_create_owned(store_t *s, const char *name, const char *const *domains,
                               size_t ndomains, int64_t owner_user_id, store_project_cb cb,
                               void *ud) {
    int err;
    store_req_t *r = req_new(s, true, RES_PROJECT, exec_project_create_owned, ud, &err);
    if (!r)
        return err;
    r->cb.project = cb;
    r->a.id = owner_user_id;
    size_t budget = STORE_MAX_ARG_BYTES;
    if ((err = arg_text(name, &budget, &r->a.text)) != 0 ||
        (err = arg_list(domains, ndomains, &budget, &r->a.list[0])) != 0) {
        req_free(r);
        return err;
    }
    req_submit(s, r);
    return 0;
}

static int exec_projects_of_user(store_req_t *r, store_conn_t *c) {
    return c->ops->projects_of_user(c, r->a.id, &r->res.projects.v, &r->res.projects.n);
}

int store_projects_of_user(store_t *s, int64_t user_id, store_project_list_cb cb, void *ud) {
    int err;
    store_req_t *r = req_new(s, false, RES_PROJECT_LIST, exec_projects_of_user, ud, &err);
    if (!r)
        return err;
    r->cb.project_list = cb;
    r->a.id = user_id;
    req_submit(s, r);
    return 0;
}

static int exec_project_of_member(store_req_t *r, store_conn_t *c) {
    return c->ops->project_of_member(c, r->a.id, r->a.id2, &r->res.project);
}

int store_project_of_member(store_t *s, int64_t project_id, int64_t user_id, store_project_cb cb,
                            void *ud) {
    int err;
    store_req_t *r = req_new(s, false, RES_PROJECT, exec_project_of_member, ud, &err);
    if (!r)
        return err;
    r->cb.project = cb;
    r->a.id = project_id;
    r->a.id2 = user_id;
    req_submit(s, r);
    return 0;
}

static int exec_project_update(store_req_t *r, store_conn_t *c) {
    return c->ops->project_update(c, r->a.id, r->a.text, r->a.flag,
                                  (const char *const *)r->a.list[0].v, r->a.list[0].n,
                                  &r->res.project);
}

int store_project_update(store_t *s, int64_t project_id, const char *name,
                         const char *const *domains, size_t ndomains, store_project_cb cb,
                         void *ud) {
    int err;
    store_req_t *r = req_new(s, true, RES_PROJECT, exec_project_update, ud, &err);
    if (!r)
        return err;
    r->cb.project = cb;
    r->a.id = project_id;
    r->a.flag = domains != NULL; /* replace the list, possibly with an empty one */
    size_t budget = STORE_MAX_ARG_BYTES;
    if ((name && (err = arg_text(name, &budget, &r->a.text)) != 0) ||
        (domains && (err = arg_list(domains, ndomains, &budget, &r->a.list[0])) != 0)) {
        req_free(r);
        return err;
    }
    req_submit(s, r);
    return 0;
}

static int exec_project_widget_settings(store_req_t *r, store_conn_t *c) {
    return c->ops->project_widget_settings(c, r->a.id, r->a.str[0], &r->res.project);
}

int store_project_widget_settings(store_t *s, int64_t project_id, const char *json_text,
                                  store_project_cb cb, void *ud) {
    if (!json_text)
        return PL_EINVAL;
    int err;
    store_req_t *r = req_new(s, true, RES_PROJECT, exec_project_widget_settings, ud, &err);
    if (!r)
        return err;
    r->cb.project = cb;
    r->a.id = project_id;
    return req_submit_strs(s, r, 1, (const char *const[]){json_text}, 0);
}

static int exec_members_list(store_req_t *r, store_conn_t *c) {
    return c->ops->members_list(c, r->a.id, &r->res.members.v, &r->res.members.n);
}

int store_members_list(store_t *s, int64_t project_id, store_member_list_cb cb, void *ud) {
    int err;
    store_req_t *r = req_new(s, false, RES_MEMBER_LIST, exec_members_list, ud, &err);
    if (!r)
        return err;
    r->cb.member_list = cb;
    r->a.id = project_id;
    req_submit(s, r);
    return 0;
}

/* ---- the inbox ------------------------------------------------------------------------------- */

static int exec_conversations_list(store_req_t *r, store_conn_t *c) {
    return c->ops->conversations_list(c, r->a.id, r->a.mask, r->a.offset, r->a.limit,
                                      &r->res.conversations.v, &r->res.conversations.n,
                                      &r->res.conversations.total);
}

int store_conversations_list(store_t *s, int64_t project_id, unsigned status_mask, int64_t offset,
                             size_t limit, store_conversation_list_cb cb, void *ud) {
    if (limit == 0 || offset < 0)
        return PL_EINVAL;
    if (limit > STORE_PAGE_MAX)
        return PL_ETOOBIG;
    int err;
    store_req_t *r = req_new(s, false, RES_CONVERSATION_LIST, exec_conversations_list, ud, &err);
    if (!r)
        return err;
    r->cb.conversation_list = cb;
    r->a.id = project_id;
    r->a.mask = status_mask & STORE_STATUS_ALL;
    r->a.offset = offset;
    r->a.limit = limit;
    req_submit(s, r);
    return 0;
}

static int exec_messages_list(store_req_t *r, store_conn_t *c) {
    return c->ops->messages_list(c, r->a.id, r->a.id2, r->a.id3, r->a.limit, &r->res.messages.v,
                                 &r->res.messages.n, &r->res.messages.has_more);
}

int store_messages_list(store_t *s, int64_t project_id, int64_t conversation_id, int64_t before_id,
                        size_t limit, store_message_list_cb cb, void *ud) {
    if (limit == 0 || before_id < 0)
        return PL_EINVAL;
    if (limit > STORE_PAGE_MAX)
        return PL_ETOOBIG;
    int err;
    store_req_t *r = req_new(s, false, RES_MESSAGE_LIST, exec_messages_list, ud, &err);
    if (!r)
        return err;
    r->cb.message_list = cb;
    r->a.id = project_id;
    r->a.id2 = conversation_id;
    r->a.id3 = before_id;
    r->a.limit = limit;
    req_submit(s, r);
    return 0;
}

static int exec_agent_reply(store_req_t *r, store_conn_t *c) {
    return c->ops->agent_reply(c, r->a.id, r->a.id2, r->a.id3, r->a.str[0], r->a.now_ms,
                               &r->res.reply.message, &r->res.reply.conversation);
}

int store_agent_reply(store_t *s, int64_t project_id, int64_t conversation_id, int64_t user_id,
                      const char *text, int64_t now_ms, store_reply_cb cb, void *ud) {
    if (!text)
        return PL_EINVAL;
    int err;
    store_req_t *r = req_new(s, true, RES_REPLY, exec_agent_reply, ud, &err);
    if (!r)
        return err;
    r->cb.reply = cb;
    r->a.id = project_id;
    r->a.id2 = conversation_id;
    r->a.id3 = user_id;
    r->a.now_ms = now_ms;
    return req_submit_strs(s, r, 1, (const char *const[]){text}, 0);
}

static int exec_conversation_update(store_req_t *r, store_conn_t *c) {
    return c->ops->conversation_update(c, r->a.id, r->a.id2, r->a.str[0], r->a.flag, r->a.now_ms,
                                       &r->res.conversation);
}

int store_conversation_update(store_t *s, int64_t project_id, int64_t id, const char *status,
                              bool mark_read, int64_t now_ms, store_conversation_cb cb, void *ud) {
    int err;
    store_req_t *r = req_new(s, true, RES_CONVERSATION, exec_conversation_update, ud, &err);
    if (!r)
        return err;
    r->cb.conversation = cb;
    r->a.id = project_id;
    r->a.id2 = id;
    r->a.flag = mark_read;
    r->a.now_ms = now_ms;
    return req_submit_strs(s, r, 1, (const char *const[]){status}, 1u << 0);
}

static int exec_conversation_assign(store_req_t *r, store_conn_t *c) {
    return c->ops->conversation_assign(c, r->a.id, r->a.id2, r->a.id3, r->a.now_ms,
                                       &r->res.conversation);
}

int store_conversation_assign(store_t *s, int64_t project_id, int64_t id, int64_t assignee_user_id,
                              int64_t now_ms, store_conversation_cb cb, void *ud) {
    int err;
    store_req_t *r = req_new(s, true, RES_CONVERSATION, exec_conversation_assign, ud, &err);
    if (!r)
        return err;
    r->cb.conversation = cb;
    r->a.id = project_id;
    r->a.id2 = id;
    r->a.id3 = assignee_user_id;
    r->a.now_ms = now_ms;
    req_submit(s, r);
    return 0;
}

static int exec_conversation_delete(store_req_t *r, store_conn_t *c) {
    return c->ops->conversation_delete(c, r->a.id, r->a.id2, &r->res.conversation);
}

int store_conversation_delete(store_t *s, int64_t project_id, int64_t id, store_conversation_cb cb,
                              void *ud) {
    int err;
    store_req_t *r = req_new(s, true, RES_CONVERSATION, exec_conversation_delete, ud, &err);
    if (!r)
        return err;
    r->cb.conversation = cb;
    r->a.id = project_id;
    r->a.id2 = id;
    req_submit(s, r);
    return 0;
}

static int exec_visitor_get(store_req_t *r, store_conn_t *c) {
    return c->ops->visitor_get(c, r->a.id, r->a.id2, &r->res.visitor);
}

int store_visitor_get(store_t *s, int64_t project_id, int64_t visitor_id, store_visitor_cb cb,
                      void *ud) {
    int err;
    store_req_t *r = req_new(s, false, RES_VISITOR, exec_visitor_get, ud, &err);
    if (!r)
        return err;
    r->cb.visitor = cb;
    r->a.id = project_id;
    r->a.id2 = visitor_id;
    req_submit(s, r);
    return 0;
}

/* ---- the transactional outbox ---------------------------------------------------------------- */

static int exec_outbox_fetch(store_req_t *r, store_conn_t *c) {
    return c->ops->outbox_fetch(c, r->a.limit, &r->res.outbox.v, &r->res.outbox.n);
}

int store_outbox_fetch(store_t *s, size_t limit, store_outbox_cb cb, void *ud) {
    if (limit == 0)
        return PL_EINVAL;
    if (limit > STORE_OUTBOX_MAX)
        return PL_ETOOBIG;
    int err;
    store_req_t *r = req_new(s, false, RES_OUTBOX, exec_outbox_fetch, ud, &err);
    if (!r)
        return err;
    r->cb.outbox = cb;
    r->a.limit = limit;
    req_submit(s, r);
    return 0;
}

static int exec_outbox_delete(store_req_t *r, store_conn_t *c) {
    return c->ops->outbox_delete(c, r->a.ids, r->a.nids, &r->res.count);
}

int store_outbox_delete(store_t *s, const int64_t *ids, size_t n, store_count_cb cb, void *ud) {
    if (n > 0 && !ids)
        return PL_EINVAL;
    if (n > STORE_MAX_LIST)
        return PL_ETOOBIG;
    int err;
    store_req_t *r = req_new(s, true, RES_COUNT, exec_outbox_delete, ud, &err);
    if (!r)
        return err;
    r->cb.count = cb;
    if (n > 0) {
        r->a.ids = malloc(n * sizeof *ids); /* n <= STORE_MAX_LIST: no overflow */
        if (!r->a.ids) {
            req_free(r);
            return PL_ENOMEM;
        }
        memcpy(r->a.ids, ids, n * sizeof *ids);
        r->a.nids = n;
    }
    req_submit(s, r);
    return 0;
}
