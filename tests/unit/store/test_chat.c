/* Unit tests for the chat operations of src/store/store.h (PROTOCOL.md sections 3, 4 and 9)
 * against a real, fresh database per test (testdb.h: SQLite, or PostgreSQL when
 * PARLEY_TEST_DATABASE is set):
 * visitor identify, message ingest (conversation created once then appended, idempotency by
 * temp_id, snippet truncation by code points, unread count, reopening under forever, metadata
 * checks), history in both historyVisibility modes (open/pending vs solved vs spam), visitor
 * context and URL history, users and members, a burst of 5,000 ingests in few transactions
 * (group commit), the transactional outbox (events written with new messages only, fetched
 * and deleted by a publisher; the ids of its rows returned by each ingest, also for every
 * ingest of a large batch), batches holding several messages of one visitor (into a solved
 * conversation in both historyVisibility modes; scripts of new visitors, retries inside the
 * batch and of earlier batches, refusals, run once one ingest at a time and once batched in
 * fresh databases and compared result by result and row by row; 150 visitors x 7 messages),
 * and an ingest throughput micro benchmark printed to stdout (not asserted). Conversation statuses
 * are changed through a second, plain connection to the same database (test_inbox.c tests
 * store_conversation_update, the agents' way). Each test runs its own uv loop to completion and
 * checks that every handle was closed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/clock.h"
#include "store/store.h"
#include "testdb.h"
#include "fixture.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

/* A fixed, realistic wall-clock origin for the now_ms arguments. */
#define T0 INT64_C(1764218869000)

/* ---- fixture --------------------------------------------------------------------------------- */

static int setup(void **state) {
    return fx_setup(state, "chat");
}

/* Runs one SQL statement with a text (?1) and an integer (?2) parameter on the second
 * connection. */
static void fx_sql(fx_t *fx, const char *sql, const char *text, int64_t id) {
    tdb_rc_t rc = tdb_exec(&fx->db, sql, text, id);
    if (rc != TDB_OK)
        print_error("%s: %s\n", sql, tdb_errmsg(&fx->db));
    assert_int_equal(rc, TDB_OK);
}

static void set_status(fx_t *fx, int64_t conversation_id, const char *status) {
    fx_sql(fx, "UPDATE conversations SET status = ?1 WHERE id = ?2", status, conversation_id);
}

/* ---- callback capture ------------------------------------------------------------------------ */

typedef struct {
    int calls;
    int status;
    int64_t id;               /* store_id_cb, history's conversation id */
    store_project_t *project; /* copies, freed by cap_reset */
    store_visitor_t *visitor;
    store_conversation_t *conv;
    store_user_t *user;
    store_message_t *msg;         /* ingest: the message */
    store_ingest_result_t ingest; /* ingest: the scalar fields (message zeroed) */
    store_message_t **msgs;       /* history */
    size_t n;
    char *role;
} cap_t;

static void cap_reset(cap_t *c) {
    store_project_free(c->project);
    store_visitor_free(c->visitor);
    store_conversation_free(c->conv);
    store_user_free(c->user);
    store_message_free(c->msg);
    for (size_t i = 0; i < c->n; i++)
        store_message_free(c->msgs[i]);
    free(c->msgs);
    free(c->role);
    memset(c, 0, sizeof *c);
}

/* A callback that gets a result pointer with an error status breaks the contract. */
#define BROKEN 12345

static void on_done(void *ud, int status) {
    cap_t *c = ud;
    c->calls++;
    c->status = status;
}

static void on_id(void *ud, int status, int64_t id) {
    cap_t *c = ud;
    c->calls++;
    c->status = status;
    c->id = id;
    if (status != 0 && id != 0)
        c->status = BROKEN;
}

static void on_project(void *ud, int status, const store_project_t *p) {
    cap_t *c = ud;
    c->calls++;
    c->status = status;
    if (p)
        c->project = store_project_dup(p);
}

static void on_visitor(void *ud, int status, const store_visitor_t *v) {
    cap_t *c = ud;
    c->calls++;
    c->status = (status == 0) == (v != NULL) ? status : BROKEN;
    if (v)
        c->visitor = store_visitor_dup(v);
}

static void on_conv(void *ud, int status, const store_conversation_t *cv) {
    cap_t *c = ud;
    c->calls++;
    c->status = (status == 0) == (cv != NULL) ? status : BROKEN;
    if (cv)
        c->conv = store_conversation_dup(cv);
}

static void on_user(void *ud, int status, const store_user_t *u) {
    cap_t *c = ud;
    c->calls++;
    c->status = (status == 0) == (u != NULL) ? status : BROKEN;
    if (u)
        c->user = store_user_dup(u);
}

static void on_role(void *ud, int status, const char *role) {
    cap_t *c = ud;
    c->calls++;
    c->status = (status == 0) == (role != NULL) ? status : BROKEN;
    if (role)
        c->role = strdup(role);
}

static void on_ingest(void *ud, int status, const store_ingest_result_t *r) {
    cap_t *c = ud;
    c->calls++;
    c->status = (status == 0) == (r != NULL) ? status : BROKEN;
    if (r) {
        c->ingest = *r;
        memset(&c->ingest.message, 0, sizeof c->ingest.message);
        c->msg = store_message_dup(&r->message);
    }
}

static void on_history(void *ud, int status, int64_t conversation_id, const store_message_t *v,
                       size_t n) {
    cap_t *c = ud;
    c->calls++;
    c->status = status;
    c->id = conversation_id;
    if ((status != 0 && (v || n || conversation_id)) || (n && !v))
        c->status = BROKEN;
    if (n) {
        c->msgs = calloc(n, sizeof *c->msgs);
        for (size_t i = 0; c->msgs && i < n; i++)
            c->msgs[i] = store_message_dup(&v[i]);
        c->n = c->msgs ? n : 0;
    }
}

/* ---- synchronous helpers over the async API -------------------------------------------------- */

static void wait_one(fx_t *fx, const cap_t *c) {
    store_wait(fx->s);
    assert_int_equal(c->calls, 1);
}

static int64_t make_project(fx_t *fx, const char *name) {
    cap_t c = {0};
    assert_int_equal(store_project_create(fx->s, name, NULL, 0, on_project, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.status, 0);
    int64_t id = c.project->id;
    cap_reset(&c);
    return id;
}

static void identify(fx_t *fx, int64_t pid, const char *uid, int64_t now, cap_t *c) {
    assert_int_equal(store_visitor_identify(fx->s, pid, uid, now, on_visitor, c), 0);
    wait_one(fx, c);
}

/* Ingests one message and returns the callback's status. */
static int ingest(fx_t *fx, int64_t pid, const char *uid, const char *content, const char *temp,
                  const char *meta, bool forever, int64_t now, cap_t *c) {
    store_ingest_t in = {.project_id = pid,
                         .visitor_uid = uid,
                         .content = content,
                         .temp_id = temp,
                         .session_metadata_json = meta,
                         .forever = forever,
                         .now_ms = now};
    assert_int_equal(store_message_ingest(fx->s, &in, on_ingest, c), 0);
    wait_one(fx, c);
    return c->status;
}

/* Ingests and expects success; returns the message id. */
static int64_t ingest_ok(fx_t *fx, int64_t pid, const char *uid, const char *content,
                         const char *temp, bool forever, int64_t now, cap_t *c) {
    int st = ingest(fx, pid, uid, content, temp, NULL, forever, now, c);
    if (st != 0)
        print_error("ingest %s/%s: %s\n", uid, temp, store_strerror(st));
    assert_int_equal(st, 0);
    return c->msg->id;
}

static void history(fx_t *fx, int64_t pid, const char *uid, bool forever, size_t limit, cap_t *c) {
    assert_int_equal(store_history(fx->s, pid, uid, forever, limit, on_history, c), 0);
    wait_one(fx, c);
}

static void conv_get(fx_t *fx, int64_t pid, int64_t id, cap_t *c) {
    assert_int_equal(store_conversation_get(fx->s, pid, id, on_conv, c), 0);
    wait_one(fx, c);
}

static int64_t current(fx_t *fx, int64_t pid, const char *uid, bool forever) {
    cap_t c = {0};
    assert_int_equal(store_visitor_conversation(fx->s, pid, uid, forever, on_id, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.status, 0);
    return c.id;
}

static int context(fx_t *fx, int64_t pid, const char *uid, const char *url, int64_t now,
                   int64_t *cid) {
    cap_t c = {0};
    assert_int_equal(store_visitor_context(fx->s, pid, uid, url, now, on_id, &c), 0);
    wait_one(fx, &c);
    *cid = c.id;
    return c.status;
}

/* ---- identify -------------------------------------------------------------------------------- */

static void test_identify(void **state) {
    fx_t *fx = *state;
    int64_t p1 = make_project(fx, "one"), p2 = make_project(fx, "two");

    cap_t a = {0};
    identify(fx, p1, "visitor-0001", T0, &a);
    assert_int_equal(a.status, 0);
    const store_visitor_t *v = a.visitor;
    assert_true(v->id > 0);
    assert_int_equal(v->project_id, p1);
    assert_string_equal(v->uid, "visitor-0001");
    assert_null(v->name);
    assert_null(v->email);
    assert_null(v->current_url);
    assert_int_equal(v->last_seen_at, T0);
    assert_int_equal(v->created_at, T0);

    /* Found again: same row, last_seen_at moves forward, never backwards. */
    const struct {
        int64_t now, want_seen;
    } rows[] = {{T0 + 5000, T0 + 5000}, {T0 + 1000, T0 + 5000}, {T0 + 5001, T0 + 5001}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        cap_t b = {0};
        identify(fx, p1, "visitor-0001", rows[i].now, &b);
        assert_int_equal(b.status, 0);
        assert_int_equal(b.visitor->id, v->id);
        assert_int_equal(b.visitor->created_at, T0);
        assert_int_equal(b.visitor->last_seen_at, rows[i].want_seen);
        cap_reset(&b);
    }

    /* The uid is per project; another uid is another visitor; odd text is stored as given. */
    const struct {
        int64_t pid;
        const char *uid;
    } others[] = {{p2, "visitor-0001"}, {p1, "visitor-0002"}, {p1, "it's \"quoted\" ü"}};
    int64_t seen[3];
    for (size_t i = 0; i < 3; i++) {
        cap_t o = {0};
        identify(fx, others[i].pid, others[i].uid, T0, &o);
        assert_int_equal(o.status, 0);
        assert_int_equal(o.visitor->project_id, others[i].pid);
        assert_string_equal(o.visitor->uid, others[i].uid);
        seen[i] = o.visitor->id;
        assert_true(seen[i] != v->id);
        assert_true(i == 0 || seen[i] != seen[i - 1]);
        cap_reset(&o);
    }

    /* Unknown project: not found, nothing created. */
    cap_t m = {0};
    identify(fx, p2 + 100, "visitor-0001", T0, &m);
    assert_int_equal(m.status, STORE_ENOTFOUND);
    assert_null(m.visitor);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM visitors"), 4);

    /* Refused at the call: the callback never fires. */
    cap_t n = {0};
    assert_int_equal(store_visitor_identify(fx->s, p1, NULL, T0, on_visitor, &n), PL_EINVAL);
    store_wait(fx->s);
    assert_int_equal(n.calls, 0);
    cap_reset(&a);
}

/* ---- ingest ---------------------------------------------------------------------------------- */

static void test_ingest_creates_then_appends(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop");

    /* First message: creates the visitor and the conversation. */
    cap_t a = {0};
    const char *meta = "{\"referrer\":\"https://search.example/?q=x\",\"lang\":\"fr\"}";
    assert_int_equal(ingest(fx, p, "visitor-aaaa", "Hello there", "tmp-1", meta, false, T0, &a), 0);
    const store_message_t *m = a.msg;
    assert_true(m->id > 0);
    assert_true(a.ingest.conversation_id > 0);
    assert_int_equal(m->conversation_id, a.ingest.conversation_id);
    assert_int_equal(m->project_id, p);
    assert_int_equal(m->visitor_id, a.ingest.visitor_id);
    assert_string_equal(m->visitor_uid, "visitor-aaaa");
    assert_string_equal(m->content, "Hello there");
    assert_string_equal(m->sender_id, "visitor-aaaa");
    assert_true(m->from_customer);
    assert_int_equal(m->user_id, 0);
    assert_string_equal(m->status, "sent");
    assert_null(m->content_type);
    assert_null(m->metadata_json);
    assert_string_equal(m->temp_id, "tmp-1");
    assert_int_equal(m->created_at, T0);
    assert_true(a.ingest.conversation_created);
    assert_false(a.ingest.conversation_reopened);
    assert_false(a.ingest.duplicate);
    int64_t cid = a.ingest.conversation_id;

    /* The visitor exists now: identify finds it. */
    cap_t v = {0};
    identify(fx, p, "visitor-aaaa", T0 + 1, &v);
    assert_int_equal(v.visitor->id, a.ingest.visitor_id);
    assert_int_equal(v.visitor->created_at, T0);
    cap_reset(&v);

    cap_t c = {0};
    conv_get(fx, p, cid, &c);
    assert_int_equal(c.status, 0);
    assert_int_equal(c.conv->id, cid);
    assert_int_equal(c.conv->project_id, p);
    assert_int_equal(c.conv->visitor_id, a.ingest.visitor_id);
    assert_int_equal(c.conv->assignee_id, 0);
    assert_string_equal(c.conv->status, "open");
    assert_string_equal(c.conv->last_message_snippet, "Hello there");
    assert_int_equal(c.conv->last_message_timestamp, T0);
    assert_int_equal(c.conv->unread_count, 1);
    assert_string_equal(c.conv->metadata_json, meta);
    assert_null(c.conv->url_history_json);
    assert_int_equal(c.conv->created_at, T0);
    assert_int_equal(c.conv->updated_at, T0);
    /* Its visitor comes with it. */
    assert_int_equal(c.conv->visitor.id, a.ingest.visitor_id);
    assert_int_equal(c.conv->visitor.project_id, p);
    assert_string_equal(c.conv->visitor.uid, "visitor-aaaa");
    cap_reset(&c);

    /* Second message: same conversation, appended; its metadata is not used. */
    cap_t b = {0};
    assert_int_equal(
        ingest(fx, p, "visitor-aaaa", "Are you there?", "tmp-2", "{\"x\":1}", false, T0 + 2000, &b),
        0);
    assert_int_equal(b.ingest.conversation_id, cid);
    assert_false(b.ingest.conversation_created);
    assert_false(b.ingest.duplicate);
    assert_true(b.msg->id > m->id);
    assert_int_equal(b.msg->created_at, T0 + 2000);
    conv_get(fx, p, cid, &c);
    assert_string_equal(c.conv->last_message_snippet, "Are you there?");
    assert_int_equal(c.conv->last_message_timestamp, T0 + 2000);
    assert_int_equal(c.conv->updated_at, T0 + 2000);
    assert_int_equal(c.conv->created_at, T0);
    assert_int_equal(c.conv->unread_count, 2);
    assert_string_equal(c.conv->metadata_json, meta);
    cap_reset(&c);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM conversations"), 1);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM messages"), 2);
    cap_reset(&a);
    cap_reset(&b);
}

static void test_ingest_refused(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop");
    int64_t cid;

    /* Unknown project: not found, nothing written. */
    cap_t a = {0};
    assert_int_equal(ingest(fx, p + 7, "visitor-aaaa", "hi", "t1", NULL, false, T0, &a),
                     STORE_ENOTFOUND);
    assert_null(a.msg);
    cap_reset(&a);

    /* Session metadata that is not a JSON object, for a new conversation: refused, and the
     * savepoint undoes the visitor too (context finds no visitor). */
    const char *bad_meta[] = {"[1,2]", "{\"open\":", "\"text\"", "42", "null", ""};
    for (size_t i = 0; i < sizeof bad_meta / sizeof bad_meta[0]; i++) {
        cap_t b = {0};
        int st = ingest(fx, p, "visitor-bbbb", "hi", "t1", bad_meta[i], false, T0, &b);
        if (st != PL_EINVAL)
            print_error("metadata \"%s\": %s\n", bad_meta[i], store_strerror(st));
        assert_int_equal(st, PL_EINVAL);
        cap_reset(&b);
    }
    assert_int_equal(context(fx, p, "visitor-bbbb", "https://x.example/", T0, &cid),
                     STORE_ENOTFOUND);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM messages"), 0);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM visitors"), 0);

    /* Refused at the call. */
    store_ingest_t in = {.project_id = p, .visitor_uid = "v", .content = "c", .temp_id = "t"};
    store_ingest_t no_uid = in, no_content = in, no_temp = in;
    no_uid.visitor_uid = NULL;
    no_content.content = NULL;
    no_temp.temp_id = NULL;
    static char big[STORE_MAX_ARG_BYTES];
    memset(big, 'x', sizeof big - 1);
    store_ingest_t too_big = in;
    too_big.content = big; /* plus the other strings: over the budget */
    cap_t n = {0};
    assert_int_equal(store_message_ingest(fx->s, NULL, on_ingest, &n), PL_EINVAL);
    assert_int_equal(store_message_ingest(fx->s, &no_uid, on_ingest, &n), PL_EINVAL);
    assert_int_equal(store_message_ingest(fx->s, &no_content, on_ingest, &n), PL_EINVAL);
    assert_int_equal(store_message_ingest(fx->s, &no_temp, on_ingest, &n), PL_EINVAL);
    assert_int_equal(store_message_ingest(fx->s, &too_big, on_ingest, &n), PL_ETOOBIG);
    store_wait(fx->s);
    assert_int_equal(n.calls, 0);

    /* Metadata is checked only when a conversation is created: once it exists, a message's
     * metadata is not used at all. */
    cap_t c = {0};
    assert_int_equal(ingest(fx, p, "visitor-cccc", "one", "t1", NULL, false, T0, &c), 0);
    assert_true(c.ingest.conversation_created);
    cap_reset(&c);
    assert_int_equal(ingest(fx, p, "visitor-cccc", "two", "t2", "[not json", false, T0, &c), 0);
    assert_false(c.ingest.conversation_created);
    cap_reset(&c);
}

static void test_ingest_idempotent(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop");

    cap_t a = {0};
    int64_t id = ingest_ok(fx, p, "visitor-aaaa", "original", "tmp-1", false, T0, &a);
    int64_t cid = a.ingest.conversation_id;

    /* The same temp_id again (a retry after a reconnect), even with other content and later:
     * the original message, nothing written. */
    cap_t b = {0};
    assert_int_equal(
        ingest(fx, p, "visitor-aaaa", "changed", "tmp-1", "{\"a\":1}", false, T0 + 9000, &b), 0);
    assert_true(b.ingest.duplicate);
    assert_false(b.ingest.conversation_created);
    assert_int_equal(b.msg->id, id);
    assert_int_equal(b.ingest.conversation_id, cid);
    assert_int_equal(b.ingest.visitor_id, a.ingest.visitor_id);
    assert_string_equal(b.msg->content, "original");
    assert_string_equal(b.msg->temp_id, "tmp-1");
    assert_string_equal(b.msg->visitor_uid, "visitor-aaaa");
    assert_string_equal(b.msg->sender_id, "visitor-aaaa");
    assert_string_equal(b.msg->status, "sent");
    assert_true(b.msg->from_customer);
    assert_int_equal(b.msg->created_at, T0);
    cap_reset(&b);

    cap_t c = {0};
    conv_get(fx, p, cid, &c);
    assert_int_equal(c.conv->unread_count, 1);
    assert_string_equal(c.conv->last_message_snippet, "original");
    assert_int_equal(c.conv->last_message_timestamp, T0);
    cap_reset(&c);

    /* Twice in one batch (one transaction): the second sees the first. */
    store_ingest_t in = {.project_id = p,
                         .visitor_uid = "visitor-aaaa",
                         .content = "batched",
                         .temp_id = "tmp-2",
                         .now_ms = T0 + 10000};
    cap_t d1 = {0}, d2 = {0};
    assert_int_equal(store_message_ingest(fx->s, &in, on_ingest, &d1), 0);
    assert_int_equal(store_message_ingest(fx->s, &in, on_ingest, &d2), 0);
    store_wait(fx->s);
    assert_int_equal(d1.status, 0);
    assert_int_equal(d2.status, 0);
    assert_false(d1.ingest.duplicate);
    assert_true(d2.ingest.duplicate);
    assert_int_equal(d2.msg->id, d1.msg->id);
    cap_reset(&d1);
    cap_reset(&d2);

    /* The key is per visitor: another visitor may use the same temp_id. */
    cap_t e = {0};
    ingest_ok(fx, p, "visitor-bbbb", "other", "tmp-1", false, T0, &e);
    assert_false(e.ingest.duplicate);
    assert_true(e.msg->id != id);
    cap_reset(&e);

    cap_t h = {0};
    history(fx, p, "visitor-aaaa", false, 200, &h);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.msgs[0]->content, "original");
    assert_string_equal(h.msgs[1]->content, "batched");
    cap_reset(&h);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM messages"), 3);
    conv_get(fx, p, cid, &c);
    assert_int_equal(c.conv->unread_count, 2);
    cap_reset(&c);
    cap_reset(&a);
}

/* Ingests submitted in one loop turn share one transaction; a failing one (unknown project,
 * metadata that is not an object, after its visitor row was written) is undone alone. */
static void test_ingest_batch_isolated(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop");
    store_stats_t before, after;
    store_stats(fx->s, &before);
    const struct {
        int64_t pid;
        const char *uid, *temp, *meta;
        int status;
    } rows[] = {
        {p, "visitor-aaaa", "t1", NULL, 0},
        {p + 50, "visitor-aaaa", "t2", NULL, STORE_ENOTFOUND},
        {p, "visitor-bbbb", "t1", "[\"not an object\"]", PL_EINVAL},
        {p, "visitor-aaaa", "t3", NULL, 0},
        {p, "visitor-cccc", "t1", "{\"ok\":true}", 0},
        {p, "visitor-aaaa", "t1", NULL, 0}, /* a duplicate of the first */
    };
    enum { N = sizeof rows / sizeof rows[0] };
    cap_t caps[N];
    memset(caps, 0, sizeof caps);
    for (size_t i = 0; i < N; i++) {
        store_ingest_t in = {.project_id = rows[i].pid,
                             .visitor_uid = rows[i].uid,
                             .content = "hello",
                             .temp_id = rows[i].temp,
                             .session_metadata_json = rows[i].meta,
                             .now_ms = T0 + (int64_t)i};
        assert_int_equal(store_message_ingest(fx->s, &in, on_ingest, &caps[i]), 0);
    }
    store_wait(fx->s);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(caps[i].calls, 1);
        if (caps[i].status != rows[i].status)
            print_error("row %zu: %s\n", i, store_strerror(caps[i].status));
        assert_int_equal(caps[i].status, rows[i].status);
        assert_true((caps[i].msg != NULL) == (rows[i].status == 0));
    }
    assert_true(caps[5].ingest.duplicate);
    assert_int_equal(caps[5].msg->id, caps[0].msg->id);
    assert_int_equal(caps[3].ingest.conversation_id, caps[0].ingest.conversation_id);
    store_stats(fx->s, &after);
    assert_int_equal(after.transactions - before.transactions, 1);
    assert_int_equal(after.failed - before.failed, 2);
    for (size_t i = 0; i < N; i++)
        cap_reset(&caps[i]);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM messages"), 3);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM visitors"), 2); /* not bbbb */
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM conversations"), 2);
}

/* A request that fails with an error of the database itself (not one of ingest's own refusals)
 * in the middle of a batch of ingests fails alone: the others commit, in the same
 * transaction, with their outbox events, and nothing of the failed one stays (its visitor, its
 * events). A trigger on the plain connection injects the fault for the content "boom". On
 * PostgreSQL this takes the replay path of the pipelined batch. */
static void test_ingest_batch_fault(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop");
    fx_sql(fx,
           tdb_pick(&fx->db,
                    "CREATE TRIGGER boom BEFORE INSERT ON messages WHEN NEW.content = 'boom' "
                    "BEGIN SELECT RAISE(ABORT, 'boom'); END",
                    "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN "
                    "IF NEW.content = 'boom' THEN RAISE EXCEPTION 'boom' USING ERRCODE = "
                    "'check_violation'; END IF; RETURN NEW; END $f$; "
                    "CREATE TRIGGER boom BEFORE INSERT ON messages FOR EACH ROW "
                    "EXECUTE FUNCTION boom()"),
           NULL, 0);
    store_stats_t before, after;
    store_stats(fx->s, &before);
    const char *topics[] = {"chat.message"};
    const struct {
        const char *uid, *content, *temp;
        int status;
    } rows[] = {
        {"visitor-aaaa", "one", "t1", 0},
        {"visitor-bbbb", "boom", "t1", PL_EINVAL}, /* a new visitor: it goes too */
        {"visitor-aaaa", "two", "t2", 0},
        {"visitor-aaaa", "one again", "t1", 0}, /* a duplicate: no event */
        {"visitor-aaaa", "boom", "t3", PL_EINVAL},
        {"visitor-cccc", "three", "t1", 0},
    };
    enum { N = sizeof rows / sizeof rows[0] };
    cap_t caps[N];
    memset(caps, 0, sizeof caps);
    for (size_t i = 0; i < N; i++) {
        const char *payloads[] = {rows[i].content};
        store_ingest_t in = {.project_id = p,
                             .visitor_uid = rows[i].uid,
                             .content = rows[i].content,
                             .temp_id = rows[i].temp,
                             .now_ms = T0 + (int64_t)i,
                             .event_topics = topics,
                             .event_payloads = payloads,
                             .nevents = 1};
        assert_int_equal(store_message_ingest(fx->s, &in, on_ingest, &caps[i]), 0);
    }
    store_wait(fx->s);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(caps[i].calls, 1);
        if (caps[i].status != rows[i].status)
            print_error("row %zu: %s\n", i, store_strerror(caps[i].status));
        assert_int_equal(caps[i].status, rows[i].status);
    }
    assert_true(caps[3].ingest.duplicate);
    assert_int_equal(caps[3].msg->id, caps[0].msg->id);
    assert_int_equal(caps[3].ingest.noutbox, 0);
    /* Each ingest that wrote got the id of its own row (on PostgreSQL, after the replay):
     * rows "one", "two", "three" in id order below. */
    const size_t written[] = {0, 2, 5};
    char want_ids[128] = "";
    for (size_t j = 0; j < 3; j++) {
        assert_int_equal(caps[written[j]].ingest.noutbox, 1);
        size_t len = strlen(want_ids);
        snprintf(want_ids + len, sizeof want_ids - len, "%s%lld", j ? "\n" : "",
                 (long long)caps[written[j]].ingest.outbox_ids[0]);
    }
    store_stats(fx->s, &after);
    assert_int_equal(after.transactions - before.transactions, 1);
    assert_int_equal(after.failed - before.failed, 2);
    for (size_t i = 0; i < N; i++)
        cap_reset(&caps[i]);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM messages"), 3);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM visitors"), 2); /* not bbbb */
    char got[256];
    assert_true(tdb_texts(&fx->db, "SELECT payload FROM outbox ORDER BY id", 0, got, sizeof got));
    assert_string_equal(got, "one\ntwo\nthree");
    assert_true(tdb_texts(&fx->db, "SELECT id FROM outbox ORDER BY id", 0, got, sizeof got));
    assert_string_equal(got, want_ids);
}

/* Large messages in one batch: the writer hands the backend runs of ingests bounded in bytes
 * too (several runs here), and every message is stored whole. */
static void test_ingest_large_batch(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop");
    enum { N = 9, BIG = 900 * 1024 };
    char *big = malloc(BIG + 1);
    assert_non_null(big);
    cap_t caps[N];
    memset(caps, 0, sizeof caps);
    for (size_t i = 0; i < N; i++) {
        memset(big, 'a' + (int)i, BIG);
        big[i % 2 ? 10 : BIG] = '\0'; /* big and small ones, interleaved */
        char uid[32], temp[16];
        snprintf(uid, sizeof uid, "visitor-%zu", i % 3);
        snprintf(temp, sizeof temp, "t%zu", i);
        store_ingest_t in = {.project_id = p,
                             .visitor_uid = uid,
                             .content = big,
                             .temp_id = temp,
                             .now_ms = T0 + (int64_t)i};
        assert_int_equal(store_message_ingest(fx->s, &in, on_ingest, &caps[i]), 0);
    }
    store_wait(fx->s);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(caps[i].calls, 1);
        assert_int_equal(caps[i].status, 0);
        assert_int_equal(strlen(caps[i].msg->content), i % 2 ? 10 : BIG);
        cap_reset(&caps[i]);
    }
    free(big);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM messages"), N);
    assert_int_equal(fx_count(fx, "SELECT sum(length(content)) FROM messages"), 5 * BIG + 4 * 10);
    assert_int_equal(fx_count(fx, "SELECT max(unread_count) FROM conversations"), 3);
}

/* ---- the transactional outbox ---------------------------------------------------------------- */

typedef struct {
    int calls;
    int status;
    size_t n;
    int64_t id[8];
    char topic[8][64];
    char payload[8][128];
    int64_t created_at[8];
    int64_t count; /* store_outbox_delete */
} ob_cap_t;

static void on_outbox(void *ud, int status, const store_outbox_event_t *v, size_t n) {
    ob_cap_t *c = ud;
    c->calls++;
    c->status = status;
    if ((status != 0 && (v || n)) || (n && !v))
        c->status = BROKEN;
    c->n = n;
    for (size_t i = 0; i < n && i < 8; i++) {
        c->id[i] = v[i].id;
        snprintf(c->topic[i], sizeof c->topic[i], "%s", v[i].topic);
        snprintf(c->payload[i], sizeof c->payload[i], "%s", v[i].payload);
        c->created_at[i] = v[i].created_at;
    }
}

static void on_deleted(void *ud, int status, int64_t count) {
    ob_cap_t *c = ud;
    c->calls++;
    c->status = status;
    c->count = count;
}

static void fetch(fx_t *fx, size_t limit, ob_cap_t *c) {
    memset(c, 0, sizeof *c);
    assert_int_equal(store_outbox_fetch(fx->s, limit, on_outbox, c), 0);
    store_wait(fx->s);
    assert_int_equal(c->calls, 1);
    assert_int_equal(c->status, 0);
}

static int64_t delete_ids(fx_t *fx, const int64_t *ids, size_t n) {
    ob_cap_t c = {0};
    assert_int_equal(store_outbox_delete(fx->s, ids, n, on_deleted, &c), 0);
    store_wait(fx->s);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.status, 0);
    return c.count;
}

/* An ingest with events: they are written with a new message only, in their order, and a
 * publisher reads and deletes them. */
static void test_outbox(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop");
    ob_cap_t ob;
    fetch(fx, 10, &ob);
    assert_int_equal(ob.n, 0);

    const char *topics[] = {"chat.message", "agents.ünïcode"};
    const char *payloads[] = {"{\"text\": \"Hi \\\"there\\\"\", \"n\":1}", "a \\ b, {c} \"d\""};
    store_ingest_t in = {.project_id = p,
                         .visitor_uid = "visitor-aaaa",
                         .content = "hello",
                         .temp_id = "t1",
                         .now_ms = T0,
                         .event_topics = topics,
                         .event_payloads = payloads,
                         .nevents = 2};
    cap_t c = {0};
    assert_int_equal(store_message_ingest(fx->s, &in, on_ingest, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.status, 0);
    cap_reset(&c);
    /* Nothing more from a duplicate, a refused message, or a message without events. */
    store_ingest_t dup = in, nop = in, bad = in, plain = in;
    dup.now_ms = T0 + 1;
    nop.project_id = p + 9;
    bad.visitor_uid = "visitor-bbbb";
    bad.session_metadata_json = "[1]";
    plain.temp_id = "t2";
    plain.nevents = 0;
    const store_ingest_t *more[] = {&dup, &nop, &bad, &plain};
    const int want[] = {0, STORE_ENOTFOUND, PL_EINVAL, 0};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(store_message_ingest(fx->s, more[i], on_ingest, &c), 0);
        wait_one(fx, &c);
        assert_int_equal(c.status, want[i]);
        cap_reset(&c);
    }

    fetch(fx, 1, &ob);
    assert_int_equal(ob.n, 1);
    int64_t first = ob.id[0];
    fetch(fx, STORE_OUTBOX_MAX, &ob);
    assert_int_equal(ob.n, 2);
    assert_int_equal(ob.id[0], first);
    assert_true(ob.id[1] > first);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(ob.topic[i], topics[i]);
        assert_string_equal(ob.payload[i], payloads[i]);
        assert_int_equal(ob.created_at[i], T0);
    }
    int64_t second = ob.id[1];

    /* The publisher deletes what it sent; unknown and repeated ids are skipped. */
    const int64_t del1[] = {first, second + 1000, first};
    assert_int_equal(delete_ids(fx, del1, 3), 1);
    fetch(fx, 10, &ob);
    assert_int_equal(ob.n, 1);
    assert_int_equal(ob.id[0], second);
    assert_int_equal(delete_ids(fx, NULL, 0), 0);
    assert_int_equal(delete_ids(fx, &second, 1), 1);
    assert_int_equal(delete_ids(fx, &second, 1), 0);
    fetch(fx, 10, &ob);
    assert_int_equal(ob.n, 0);

    /* Refused at the call: the callback never fires. */
    ob_cap_t never = {0};
    assert_int_equal(store_outbox_fetch(fx->s, 0, on_outbox, &never), PL_EINVAL);
    assert_int_equal(store_outbox_fetch(fx->s, STORE_OUTBOX_MAX + 1, on_outbox, &never),
                     PL_ETOOBIG);
    assert_int_equal(store_outbox_delete(fx->s, NULL, 1, on_deleted, &never), PL_EINVAL);
    assert_int_equal(store_outbox_delete(fx->s, &first, STORE_MAX_LIST + 1, on_deleted, &never),
                     PL_ETOOBIG);
    const char *empty[] = {""};
    const char *null_entry[] = {NULL};
    store_ingest_t refused[] = {in, in, in, in, in};
    refused[0].event_topics = NULL;
    refused[1].event_payloads = NULL;
    refused[2].event_topics = empty;
    refused[2].nevents = 1;
    refused[3].event_payloads = null_entry;
    refused[3].nevents = 1;
    refused[4].nevents = STORE_INGEST_EVENTS_MAX + 1;
    const int refused_rc[] = {PL_EINVAL, PL_EINVAL, PL_EINVAL, PL_EINVAL, PL_ETOOBIG};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(store_message_ingest(fx->s, &refused[i], on_ingest, &c), refused_rc[i]);
    /* The events count towards the request's byte budget. */
    static char big[STORE_MAX_ARG_BYTES / 2 + 1];
    memset(big, 'x', sizeof big - 1);
    const char *big_payloads[] = {big, big};
    store_ingest_t heavy = in;
    heavy.event_payloads = big_payloads;
    assert_int_equal(store_message_ingest(fx->s, &heavy, on_ingest, &c), PL_ETOOBIG);
    store_wait(fx->s);
    assert_int_equal(never.calls, 0);
    assert_int_equal(c.calls, 0);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM outbox"), 0);
}

/* The ids an ingest returns are those of the outbox rows it wrote, in event order: a caller
 * that publishes the events itself deletes exactly them and leaves every other row alone. A
 * duplicate, a refused ingest and a message without events return no id and write no row;
 * STORE_INGEST_EVENTS_MAX events is the most an ingest takes. */
static void test_outbox_ids(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop");
    enum { MAX = STORE_INGEST_EVENTS_MAX };
    const char *topics[MAX + 1] = {"chat.message", "agents.inbox", "three", "four", "five"};
    const char *payloads[MAX + 1] = {"{\"n\":1}", "{\"n\":2}", "3", "", "5"};
    store_ingest_t in = {.project_id = p,
                         .visitor_uid = "visitor-aaaa",
                         .content = "hello",
                         .temp_id = "t1",
                         .now_ms = T0,
                         .event_topics = topics,
                         .event_payloads = payloads,
                         .nevents = 2};
    cap_t c = {0};
    assert_int_equal(store_message_ingest(fx->s, &in, on_ingest, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.status, 0);
    assert_false(c.ingest.duplicate);
    assert_int_equal(c.ingest.noutbox, 2);
    const int64_t first[2] = {c.ingest.outbox_ids[0], c.ingest.outbox_ids[1]};
    const int64_t first_msg = c.msg->id;
    assert_true(first[0] > 0 && first[1] > first[0]);
    cap_reset(&c);

    ob_cap_t ob;
    fetch(fx, 10, &ob);
    assert_int_equal(ob.n, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(ob.id[i], first[i]);
        assert_string_equal(ob.topic[i], topics[i]);
        assert_string_equal(ob.payload[i], payloads[i]);
    }

    /* Then: a message with the most events; the retry of the first (same temp_id, other
     * events); an unknown project; metadata that is not an object; a message without events. */
    store_ingest_t most = in, dup = in, nop = in, bad = in, plain = in;
    most.temp_id = "t2";
    most.nevents = MAX;
    dup.now_ms = T0 + 1;
    dup.event_topics = topics + 2;
    dup.event_payloads = payloads + 2;
    nop.project_id = p + 9;
    bad.visitor_uid = "visitor-bbbb";
    bad.session_metadata_json = "[1]";
    plain.temp_id = "t3";
    plain.nevents = 0;
    const struct {
        const store_ingest_t *in;
        int status;
        bool duplicate;
        size_t noutbox;
    } rows[] = {
        {&most, 0, false, MAX},      {&dup, 0, true, 0},    {&nop, STORE_ENOTFOUND, false, 0},
        {&bad, PL_EINVAL, false, 0}, {&plain, 0, false, 0},
    };
    int64_t most_ids[MAX];
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        assert_int_equal(store_message_ingest(fx->s, rows[r].in, on_ingest, &c), 0);
        wait_one(fx, &c);
        assert_int_equal(c.status, rows[r].status);
        if (rows[r].status == 0) {
            assert_true(c.ingest.duplicate == rows[r].duplicate);
            assert_int_equal(c.ingest.noutbox, rows[r].noutbox);
        }
        if (rows[r].in == &dup)
            assert_int_equal(c.msg->id, first_msg);
        if (rows[r].in == &most)
            memcpy(most_ids, c.ingest.outbox_ids, sizeof most_ids);
        cap_reset(&c);
    }
    for (size_t i = 0; i < MAX; i++)
        assert_true(most_ids[i] > (i ? most_ids[i - 1] : first[1]));

    fetch(fx, 10, &ob);
    assert_int_equal(ob.n, 2 + MAX); /* nothing from the duplicate and the others */
    for (size_t i = 0; i < MAX; i++) {
        assert_int_equal(ob.id[2 + i], most_ids[i]);
        assert_string_equal(ob.topic[2 + i], topics[i]);
        assert_string_equal(ob.payload[2 + i], payloads[i]);
    }

    /* Deleting exactly the first message's ids leaves the other message's rows; then those. */
    assert_int_equal(delete_ids(fx, first, 2), 2);
    fetch(fx, 10, &ob);
    assert_int_equal(ob.n, MAX);
    for (size_t i = 0; i < MAX; i++)
        assert_int_equal(ob.id[i], most_ids[i]);
    assert_int_equal(delete_ids(fx, most_ids, MAX), MAX);
    fetch(fx, 10, &ob);
    assert_int_equal(ob.n, 0);

    /* One event more than STORE_INGEST_EVENTS_MAX: refused at the call, nothing written. */
    store_ingest_t over = in;
    over.temp_id = "t9";
    over.nevents = MAX + 1;
    assert_int_equal(store_message_ingest(fx->s, &over, on_ingest, &c), PL_ETOOBIG);
    store_wait(fx->s);
    assert_int_equal(c.calls, 0);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM outbox"), 0);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM messages"), 3);
}

/* Every event of the outbox, copied (store_outbox_fetch). */
typedef struct {
    int calls;
    int status;
    size_t n;
    int64_t *id;
    char **topic;
    char **payload;
} ob_all_t;

static void on_outbox_all(void *ud, int status, const store_outbox_event_t *v, size_t n) {
    ob_all_t *c = ud;
    c->calls++;
    c->status = (status == 0) == (n == 0 || v != NULL) ? status : BROKEN;
    c->id = calloc(n + 1, sizeof *c->id);
    c->topic = calloc(n + 1, sizeof *c->topic);
    c->payload = calloc(n + 1, sizeof *c->payload);
    if (!c->id || !c->topic || !c->payload) {
        c->status = PL_ENOMEM;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        c->id[i] = v[i].id;
        c->topic[i] = strdup(v[i].topic);
        c->payload[i] = strdup(v[i].payload);
        if (!c->topic[i] || !c->payload[i])
            c->status = PL_ENOMEM;
    }
    c->n = n;
}

static void ob_all_free(ob_all_t *c) {
    for (size_t i = 0; i < c->n; i++) {
        free(c->topic[i]);
        free(c->payload[i]);
    }
    free(c->id);
    free(c->topic);
    free(c->payload);
    memset(c, 0, sizeof *c);
}

/* Position of id in the sorted ids[0..n), or n when it is not there. */
static size_t find_id(const int64_t *ids, size_t n, int64_t id) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && ids[lo] == id ? lo : n;
}

#define OB_BATCH 300
#define OB_BATCH_VISITORS 120 /* up to three messages per visitor: several rounds on PostgreSQL */

/* What ingest i of the batch below is: its events, and how it ends. */
static size_t ob_batch_events(int i) {
    return (size_t)i % (STORE_INGEST_EVENTS_MAX + 1); /* 0 .. STORE_INGEST_EVENTS_MAX */
}
static bool ob_batch_refused(int i) {
    return i % 50 == 7; /* an unknown project */
}
static bool ob_batch_dup(int i) {
    return i >= OB_BATCH_VISITORS && i % 25 == 24; /* its visitor's message of one round before */
}

/* OB_BATCH ingests submitted without waiting, so they are committed together (one group
 * commit; on PostgreSQL pipelined statements of many messages each, in several rounds since
 * visitors repeat), with 0 to STORE_INGEST_EVENTS_MAX events each, duplicates and refused ones
 * among them: each ingest gets exactly the ids of its own rows (every payload is unique), in
 * its event order, and a worker deleting each ingest's ids empties the outbox. */
static void test_outbox_ids_batch(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop");
    store_stats_t before, after;
    store_stats(fx->s, &before);
    cap_t *caps = calloc(OB_BATCH, sizeof *caps);
    assert_non_null(caps);
    static const char *const topic_of[STORE_INGEST_EVENTS_MAX] = {"chat.message", "chat.ack",
                                                                  "agents.inbox", "visitor.seen"};
    size_t total = 0;
    for (int i = 0; i < OB_BATCH; i++) {
        char uid[32], temp[32], content[32];
        char payload_buf[STORE_INGEST_EVENTS_MAX][48];
        const char *payloads[STORE_INGEST_EVENTS_MAX];
        snprintf(uid, sizeof uid, "visitor-%03d", i % OB_BATCH_VISITORS);
        snprintf(temp, sizeof temp, "temp-%d", ob_batch_dup(i) ? i - OB_BATCH_VISITORS : i);
        snprintf(content, sizeof content, "message %d", i);
        size_t nev = ob_batch_events(i);
        for (size_t k = 0; k < nev; k++) {
            snprintf(payload_buf[k], sizeof payload_buf[k], "{\"m\":%d,\"e\":%zu}", i, k);
            payloads[k] = payload_buf[k];
        }
        store_ingest_t in = {.project_id = ob_batch_refused(i) ? p + 1000 : p,
                             .visitor_uid = uid,
                             .content = content,
                             .temp_id = temp,
                             .now_ms = T0 + i,
                             .event_topics = topic_of,
                             .event_payloads = payloads,
                             .nevents = nev};
        assert_int_equal(store_message_ingest(fx->s, &in, on_ingest, &caps[i]), 0);
        if (!ob_batch_refused(i) && !ob_batch_dup(i))
            total += nev;
    }
    store_wait(fx->s);
    store_stats(fx->s, &after);
    uint64_t tx = after.transactions - before.transactions;
    print_message("outbox ids batch: %d ingests, %zu events, %llu transactions\n", OB_BATCH, total,
                  (unsigned long long)tx);
    assert_true(tx >= 1 && tx * 10 <= OB_BATCH); /* committed together, not one by one */
    assert_true(total > 0 && total < STORE_OUTBOX_MAX);

    ob_all_t ob = {0};
    assert_int_equal(store_outbox_fetch(fx->s, STORE_OUTBOX_MAX, on_outbox_all, &ob), 0);
    store_wait(fx->s);
    assert_int_equal(ob.calls, 1);
    assert_int_equal(ob.status, 0);
    assert_int_equal(ob.n, total); /* in id order: find_id can search it */

    bool *seen = calloc(total + 1, sizeof *seen);
    assert_non_null(seen);
    size_t matched = 0;
    for (int i = 0; i < OB_BATCH; i++) {
        const cap_t *c = &caps[i];
        assert_int_equal(c->calls, 1);
        if (ob_batch_refused(i)) {
            assert_int_equal(c->status, STORE_ENOTFOUND);
            continue;
        }
        assert_int_equal(c->status, 0);
        assert_true(c->ingest.duplicate == ob_batch_dup(i));
        if (ob_batch_dup(i)) {
            assert_int_equal(c->ingest.noutbox, 0);
            assert_int_equal(c->msg->id, caps[i - OB_BATCH_VISITORS].msg->id);
            continue;
        }
        assert_int_equal(c->ingest.noutbox, ob_batch_events(i));
        for (size_t k = 0; k < c->ingest.noutbox; k++) {
            int64_t id = c->ingest.outbox_ids[k];
            if (k > 0)
                assert_true(id > c->ingest.outbox_ids[k - 1]);
            size_t at = find_id(ob.id, ob.n, id);
            assert_true(at < ob.n);
            assert_false(seen[at]); /* no two ingests got the same row */
            seen[at] = true;
            char want[48];
            snprintf(want, sizeof want, "{\"m\":%d,\"e\":%zu}", i, k);
            assert_string_equal(ob.payload[at], want);
            assert_string_equal(ob.topic[at], topic_of[k]);
            matched++;
        }
    }
    assert_int_equal(matched, total);

    /* The worker of each ingest deletes exactly its ids. */
    int64_t deleted = 0;
    for (int i = 0; i < OB_BATCH; i++)
        if (caps[i].status == 0 && caps[i].ingest.noutbox > 0)
            deleted += delete_ids(fx, caps[i].ingest.outbox_ids, caps[i].ingest.noutbox);
    assert_int_equal(deleted, (int64_t)total);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM outbox"), 0);

    free(seen);
    ob_all_free(&ob);
    for (int i = 0; i < OB_BATCH; i++)
        cap_reset(&caps[i]);
    free(caps);
}

/* A message into a pending conversation keeps it pending, in both modes. */
static void test_ingest_keeps_status(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop");
    cap_t a = {0};
    ingest_ok(fx, p, "visitor-aaaa", "one", "t1", false, T0, &a);
    int64_t cid = a.ingest.conversation_id;
    cap_reset(&a);
    set_status(fx, cid, "pending");
    const bool modes[] = {false, true};
    for (size_t i = 0; i < 2; i++) {
        char temp[8];
        snprintf(temp, sizeof temp, "t%zu", i + 2);
        ingest_ok(fx, p, "visitor-aaaa", "more", temp, modes[i], T0 + 1 + (int64_t)i, &a);
        assert_int_equal(a.ingest.conversation_id, cid);
        assert_false(a.ingest.conversation_created);
        assert_false(a.ingest.conversation_reopened);
        cap_reset(&a);
        cap_t c = {0};
        conv_get(fx, p, cid, &c);
        assert_string_equal(c.conv->status, "pending");
        assert_int_equal(c.conv->unread_count, 2 + (int64_t)i);
        cap_reset(&c);
    }
}

/* Repeats unit (a UTF-8 string) n times into a new string. */
static char *repeat(const char *unit, size_t n) {
    size_t len = strlen(unit);
    char *s = malloc(len * n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * len, unit, len);
    s[len * n] = '\0';
    return s;
}

static void test_snippet_code_points(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop");
    const struct {
        size_t prefix; /* the content is this many 'a', then unit repeated n times */
        const char *unit;
        size_t n;
        size_t want_units; /* the snippet: the same 'a's, then unit this many times */
    } rows[] = {
        {0, "a", 1, 1},
        {0, "a", 99, 99},
        {0, "a", 100, 100},                /* boundary: exactly the limit */
        {0, "a", 101, 100},                /* one over */
        {0, "a", 5000, 100},               /* the longest message */
        {0, "\xF0\x9F\x98\x80", 150, 100}, /* emoji, 4 bytes each: cut at 100 emoji */
        {0, "\xF0\x9F\x98\x80", 100, 100},
        {0, "\xC3\xA9", 120, 100},       /* e-acute, 2 bytes */
        {0, "\xE6\x97\xA5", 101, 100},   /* a CJK character, 3 bytes */
        {99, "\xF0\x9F\x98\x80", 3, 1},  /* 99 ASCII + 1 emoji: 103 bytes */
        {100, "\xF0\x9F\x98\x80", 3, 0}, /* the emoji is the 101st character */
    };
    /* One visitor per row (the insert path) and one visitor for every row (the update path). */
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *prefix = repeat("a", rows[i].prefix);
        char *body = repeat(rows[i].unit, rows[i].n);
        char *want_body = repeat(rows[i].unit, rows[i].want_units);
        char content[32768], want[1024];
        snprintf(content, sizeof content, "%s%s", prefix, body);
        snprintf(want, sizeof want, "%s%s", prefix, want_body);
        for (int path = 0; path < 2; path++) {
            char uid[32], temp[32];
            if (path)
                snprintf(uid, sizeof uid, "visitor-shared");
            else
                snprintf(uid, sizeof uid, "visitor-row-%zu", i);
            snprintf(temp, sizeof temp, "t%zu", i);
            cap_t a = {0};
            ingest_ok(fx, p, uid, content, temp, false, T0 + (int64_t)i, &a);
            assert_int_equal(a.ingest.conversation_created, path == 0 || i == 0);
            assert_string_equal(a.msg->content, content); /* the message itself is whole */
            cap_t c = {0};
            conv_get(fx, p, a.ingest.conversation_id, &c);
            if (strcmp(c.conv->last_message_snippet, want) != 0) {
                print_error("row %zu path %d: snippet of %zu bytes, want %zu\n", i, path,
                            strlen(c.conv->last_message_snippet), strlen(want));
                bad++;
            }
            cap_reset(&c);
            cap_reset(&a);
        }
        free(want_body);
        free(body);
        free(prefix);
    }
    assert_int_equal(bad, 0);
}

static void test_unread_count(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop");
    int64_t cid = 0;
    for (int i = 1; i <= 5; i++) {
        char temp[16];
        snprintf(temp, sizeof temp, "t%d", i);
        cap_t a = {0};
        ingest_ok(fx, p, "visitor-aaaa", "msg", temp, false, T0 + i, &a);
        cid = a.ingest.conversation_id;
        cap_reset(&a);
        ingest_ok(fx, p, "visitor-aaaa", "msg", temp, false, T0 + i, &a); /* a retry */
        assert_true(a.ingest.duplicate);
        cap_reset(&a);
        cap_t c = {0};
        conv_get(fx, p, cid, &c);
        assert_int_equal(c.conv->unread_count, i);
        cap_reset(&c);
    }
    /* An agent read it (PATCH read: true, later): counting resumes from 0. */
    fx_sql(fx, "UPDATE conversations SET unread_count = 0 WHERE id = ?2", NULL, cid);
    cap_t a = {0};
    ingest_ok(fx, p, "visitor-aaaa", "again", "t6", false, T0 + 6, &a);
    cap_reset(&a);
    cap_t c = {0};
    conv_get(fx, p, cid, &c);
    assert_int_equal(c.conv->unread_count, 1);
    cap_reset(&c);
}

/* ---- history and the current conversation ---------------------------------------------------- */

static void assert_history(fx_t *fx, int64_t p, const char *uid, bool forever, size_t limit,
                           int64_t want_cid, const char *const *want, size_t n) {
    cap_t h = {0};
    history(fx, p, uid, forever, limit, &h);
    assert_int_equal(h.status, 0);
    if (h.id != want_cid || h.n != n) {
        print_error("history %s forever=%d: conversation %lld with %zu messages, want %lld "
                    "with %zu\n",
                    uid, forever, (long long)h.id, h.n, (long long)want_cid, n);
        fail();
    }
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(h.msgs[i]->content, want[i]);
        assert_int_equal(h.msgs[i]->conversation_id, want_cid);
        assert_string_equal(h.msgs[i]->visitor_uid, uid);
        assert_int_equal(h.msgs[i]->project_id, p);
        assert_true(i == 0 || h.msgs[i]->id > h.msgs[i - 1]->id);
    }
    cap_reset(&h);
    assert_int_equal(current(fx, p, uid, forever), want_cid);
}

static void test_history_modes(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop"), other = make_project(fx, "other");
    const char *uid = "visitor-hist";

    /* No visitor, then a visitor without a conversation: empty, status 0. */
    assert_history(fx, p, uid, false, 200, 0, NULL, 0);
    assert_history(fx, p, uid, true, 200, 0, NULL, 0);
    cap_t v = {0};
    identify(fx, p, uid, T0, &v);
    cap_reset(&v);
    assert_history(fx, p, uid, false, 200, 0, NULL, 0);

    const char *all[] = {"m0", "m1", "m2", "m3", "m4"};
    int64_t c1 = 0;
    for (int i = 0; i < 5; i++) {
        char temp[8];
        snprintf(temp, sizeof temp, "a%d", i);
        cap_t a = {0};
        ingest_ok(fx, p, uid, all[i], temp, false, T0 + i, &a);
        c1 = a.ingest.conversation_id;
        cap_reset(&a);
    }
    /* Oldest first; a limit keeps the newest. */
    assert_history(fx, p, uid, false, 200, c1, all, 5);
    assert_history(fx, p, uid, true, 200, c1, all, 5);
    assert_history(fx, p, uid, false, 5, c1, all, 5);
    assert_history(fx, p, uid, false, 3, c1, all + 2, 3);
    assert_history(fx, p, uid, true, 1, c1, all + 4, 1);
    /* Same uid, another project: another visitor, nothing. */
    assert_history(fx, other, uid, false, 200, 0, NULL, 0);
    assert_history(fx, other, uid, true, 200, 0, NULL, 0);

    /* pending is active; solved is not (limit_to_active) but is under forever. */
    set_status(fx, c1, "pending");
    assert_history(fx, p, uid, false, 200, c1, all, 5);
    set_status(fx, c1, "solved");
    assert_history(fx, p, uid, false, 200, 0, NULL, 0);
    assert_history(fx, p, uid, true, 200, c1, all, 5);

    /* limit_to_active: a message now opens a second conversation; forever sees the newest. */
    const char *second[] = {"new topic"};
    cap_t a = {0};
    ingest_ok(fx, p, uid, "new topic", "b0", false, T0 + 100, &a);
    assert_true(a.ingest.conversation_created);
    int64_t c2 = a.ingest.conversation_id;
    assert_true(c2 > c1);
    cap_reset(&a);
    assert_history(fx, p, uid, false, 200, c2, second, 1);
    assert_history(fx, p, uid, true, 200, c2, second, 1);

    /* spam is never current: forever falls back to the newest non-spam one (c1, solved). */
    set_status(fx, c2, "spam");
    assert_history(fx, p, uid, false, 200, 0, NULL, 0);
    assert_history(fx, p, uid, true, 200, c1, all, 5);

    /* forever: a message into the solved c1 reopens it. */
    ingest_ok(fx, p, uid, "m5", "a5", true, T0 + 200, &a);
    assert_int_equal(a.ingest.conversation_id, c1);
    assert_false(a.ingest.conversation_created);
    assert_true(a.ingest.conversation_reopened);
    cap_reset(&a);
    cap_t c = {0};
    conv_get(fx, p, c1, &c);
    assert_string_equal(c.conv->status, "open");
    assert_int_equal(c.conv->unread_count, 6);
    cap_reset(&c);
    const char *reopened[] = {"m0", "m1", "m2", "m3", "m4", "m5"};
    assert_history(fx, p, uid, false, 200, c1, reopened, 6);
    /* An open conversation is not "reopened" again. */
    ingest_ok(fx, p, uid, "m6", "a6", true, T0 + 201, &a);
    assert_false(a.ingest.conversation_reopened);
    cap_reset(&a);

    /* Everything spam: forever finds nothing, and the next message opens a third. */
    set_status(fx, c1, "spam");
    assert_history(fx, p, uid, true, 200, 0, NULL, 0);
    ingest_ok(fx, p, uid, "fresh", "c0", true, T0 + 300, &a);
    assert_true(a.ingest.conversation_created);
    assert_true(a.ingest.conversation_id > c2);
    cap_reset(&a);

    /* Limits of the call. */
    cap_t n = {0};
    assert_int_equal(store_history(fx->s, p, uid, false, 0, on_history, &n), PL_EINVAL);
    assert_int_equal(store_history(fx->s, p, NULL, false, 10, on_history, &n), PL_EINVAL);
    assert_int_equal(store_history(fx->s, p, uid, false, STORE_HISTORY_MAX + 1, on_history, &n),
                     PL_ETOOBIG);
    assert_int_equal(store_visitor_conversation(fx->s, p, NULL, false, on_id, &n), PL_EINVAL);
    store_wait(fx->s);
    assert_int_equal(n.calls, 0);
    const char *fresh[] = {"fresh"};
    int64_t c3 = current(fx, p, uid, true);
    assert_history(fx, p, uid, true, STORE_HISTORY_MAX, c3, fresh, 1);
}

static void test_history_long(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop");
    /* 250 messages: the default 200 of the gateway returns 50..249, oldest first. */
    enum { N = 250 };
    for (int i = 0; i < N; i++) {
        char temp[16], content[16];
        snprintf(temp, sizeof temp, "t%d", i);
        snprintf(content, sizeof content, "m%d", i);
        store_ingest_t in = {.project_id = p,
                             .visitor_uid = "visitor-long",
                             .content = content,
                             .temp_id = temp,
                             .now_ms = T0 + i};
        assert_int_equal(store_message_ingest(fx->s, &in, NULL, NULL), 0);
    }
    store_wait(fx->s);
    cap_t h = {0};
    history(fx, p, "visitor-long", false, 200, &h);
    assert_int_equal(h.n, 200);
    for (size_t i = 0; i < h.n; i++) {
        char want[16];
        snprintf(want, sizeof want, "m%zu", i + 50);
        assert_string_equal(h.msgs[i]->content, want);
        assert_int_equal(h.msgs[i]->created_at, T0 + (int64_t)i + 50);
    }
    cap_reset(&h);

    /* The lookups use indexes, not scans (this runs on every identify). PostgreSQL is told
     * not to scan or sort where it can help it: with these few rows it would rather scan, and
     * the point is that an index serves each lookup in order. */
    const char *queries[] = {
        "SELECT id FROM visitors WHERE project_id = 1 AND uid = 'x'",
        "SELECT id, status FROM conversations WHERE visitor_id = 1 "
        "AND status IN ('open', 'pending') ORDER BY id DESC LIMIT 1",
        "SELECT id, status FROM conversations WHERE visitor_id = 1 "
        "AND status <> 'spam' ORDER BY id DESC LIMIT 1",
        "SELECT id FROM messages WHERE conversation_id = 1 ORDER BY id DESC LIMIT 200",
        "SELECT id FROM messages WHERE visitor_id = 1 AND temp_id = 'x'",
    };
    if (fx->db.pg)
        fx_sql(fx, "SET enable_seqscan = off; SET enable_sort = off; SET enable_bitmapscan = off",
               NULL, 0);
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        char sql[512], plan[4096];
        snprintf(sql, sizeof sql, "%s %s",
                 tdb_pick(&fx->db, "EXPLAIN QUERY PLAN", "EXPLAIN (COSTS OFF)"), queries[i]);
        assert_true(tdb_texts(&fx->db, sql, fx->db.pg ? 0 : 3, plan, sizeof plan));
        bool bad = fx->db.pg
                       ? !strstr(plan, "Index") || strstr(plan, "Seq Scan") || strstr(plan, "Sort")
                       : !strstr(plan, "USING") || strstr(plan, "TEMP B-TREE");
        if (bad) {
            print_error("query %zu: %s\n", i, plan);
            fail();
        }
    }
}

/* ---- context --------------------------------------------------------------------------------- */

static void test_visitor_context(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop");
    int64_t cid = -1;

    /* No visitor: not found. */
    assert_int_equal(context(fx, p, "visitor-ctx", "https://shop.example/", T0, &cid),
                     STORE_ENOTFOUND);
    assert_int_equal(cid, 0);

    /* A visitor without a conversation: its URL is recorded, no conversation id. */
    cap_t v = {0};
    identify(fx, p, "visitor-ctx", T0, &v);
    cap_reset(&v);
    assert_int_equal(context(fx, p, "visitor-ctx", "https://shop.example/a", T0 + 10, &cid), 0);
    assert_int_equal(cid, 0);
    identify(fx, p, "visitor-ctx", T0, &v);
    assert_string_equal(v.visitor->current_url, "https://shop.example/a");
    assert_int_equal(v.visitor->last_seen_at, T0 + 10);
    cap_reset(&v);

    cap_t a = {0};
    ingest_ok(fx, p, "visitor-ctx", "hi", "t1", false, T0 + 20, &a);
    int64_t conv = a.ingest.conversation_id;
    cap_reset(&a);

    /* 55 URLs, one with characters JSON must escape: the newest 50 are kept, in order. */
    enum { N = 55 };
    for (int i = 0; i < N; i++) {
        char url[128];
        if (i == N - 1)
            snprintf(url, sizeof url, "https://shop.example/q?a=\"b\"&c=\\d\xC3\xA9");
        else
            snprintf(url, sizeof url, "https://shop.example/p%d", i);
        assert_int_equal(context(fx, p, "visitor-ctx", url, T0 + 1000 + i, &cid), 0);
        assert_int_equal(cid, conv);
    }
    cap_t c = {0};
    conv_get(fx, p, conv, &c);
    assert_int_equal(c.conv->updated_at, T0 + 1000 + N - 1);
    json_error_t jerr;
    json_t *h = json_loads(c.conv->url_history_json, 0, &jerr);
    assert_non_null(h);
    assert_true(json_is_array(h));
    assert_int_equal(json_array_size(h), STORE_URL_HISTORY_MAX);
    for (size_t i = 0; i < json_array_size(h); i++) {
        json_t *e = json_array_get(h, i);
        int k = (int)i + N - (int)STORE_URL_HISTORY_MAX;
        char url[128], at[PL_ISO8601_LEN];
        if (k == N - 1)
            snprintf(url, sizeof url, "https://shop.example/q?a=\"b\"&c=\\d\xC3\xA9");
        else
            snprintf(url, sizeof url, "https://shop.example/p%d", k);
        assert_int_equal(json_object_size(e), 2);
        assert_string_equal(json_string_value(json_object_get(e, "url")), url);
        assert_string_equal(json_string_value(json_object_get(e, "at")),
                            pl_iso8601(T0 + 1000 + k, at));
    }
    json_decref(h);
    cap_reset(&c);
    identify(fx, p, "visitor-ctx", T0, &v);
    assert_string_equal(v.visitor->current_url, "https://shop.example/q?a=\"b\"&c=\\d\xC3\xA9");
    cap_reset(&v);

    /* A solved conversation is not tracked any more. */
    set_status(fx, conv, "solved");
    assert_int_equal(context(fx, p, "visitor-ctx", "https://shop.example/late", T0 + 5000, &cid),
                     0);
    assert_int_equal(cid, 0);
    conv_get(fx, p, conv, &c);
    assert_null(strstr(c.conv->url_history_json, "/late"));
    cap_reset(&c);

    /* Another project's visitor with the same uid does not exist. */
    int64_t other = make_project(fx, "other");
    assert_int_equal(context(fx, other, "visitor-ctx", "https://x.example/", T0, &cid),
                     STORE_ENOTFOUND);
    cap_t n = {0};
    assert_int_equal(store_visitor_context(fx->s, p, "visitor-ctx", NULL, T0, on_id, &n),
                     PL_EINVAL);
    assert_int_equal(store_visitor_context(fx->s, p, NULL, "u", T0, on_id, &n), PL_EINVAL);
    store_wait(fx->s);
    assert_int_equal(n.calls, 0);
}

static void test_conversation_get_missing(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop"), other = make_project(fx, "other");
    cap_t a = {0};
    ingest_ok(fx, p, "visitor-aaaa", "hi", "t1", false, T0, &a);
    int64_t cid = a.ingest.conversation_id;
    cap_reset(&a);
    const struct {
        int64_t pid, id;
    } rows[] = {{other, cid}, {p, cid + 1}, {p, 0}, {p, -1}, {p + 100, cid}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        cap_t c = {0};
        conv_get(fx, rows[i].pid, rows[i].id, &c);
        assert_int_equal(c.status, STORE_ENOTFOUND);
        assert_null(c.conv);
    }
}

/* ---- users and members ----------------------------------------------------------------------- */

static void test_users(void **state) {
    fx_t *fx = *state;
    cap_t a = {0};
    assert_int_equal(store_user_create(fx->s, "ada@example.com", "$argon2id$v=19$hash",
                                       "Ada Lovelace", T0, on_user, &a),
                     0);
    wait_one(fx, &a);
    assert_int_equal(a.status, 0);
    const store_user_t *u = a.user;
    assert_true(u->id > 0);
    assert_string_equal(u->email, "ada@example.com");
    assert_string_equal(u->full_name, "Ada Lovelace");
    assert_string_equal(u->password_hash, "$argon2id$v=19$hash");
    assert_int_equal(u->tokens_valid_from, 0);
    assert_int_equal(u->created_at, T0);

    /* Taken e-mail: conflict, nothing created. A NULL full name is "". */
    cap_t b = {0};
    assert_int_equal(store_user_create(fx->s, "ada@example.com", "h2", NULL, T0, on_user, &b), 0);
    wait_one(fx, &b);
    assert_int_equal(b.status, STORE_ECONFLICT);
    assert_null(b.user);
    cap_reset(&b);
    assert_int_equal(store_user_create(fx->s, "bob@example.com", "h3", NULL, T0, on_user, &b), 0);
    wait_one(fx, &b);
    assert_int_equal(b.status, 0);
    assert_string_equal(b.user->full_name, "");
    assert_true(b.user->id != u->id);
    cap_reset(&b);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM users"), 2);

    /* Lookups. */
    cap_t g = {0};
    assert_int_equal(store_user_get(fx->s, u->id, on_user, &g), 0);
    wait_one(fx, &g);
    assert_int_equal(g.status, 0);
    assert_string_equal(g.user->email, "ada@example.com");
    assert_string_equal(g.user->password_hash, u->password_hash);
    cap_reset(&g);
    assert_int_equal(store_user_by_email(fx->s, "ada@example.com", on_user, &g), 0);
    wait_one(fx, &g);
    assert_int_equal(g.status, 0);
    assert_int_equal(g.user->id, u->id);
    cap_reset(&g);
    const int64_t missing_ids[] = {u->id + 100, 0, -5};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(store_user_get(fx->s, missing_ids[i], on_user, &g), 0);
        wait_one(fx, &g);
        assert_int_equal(g.status, STORE_ENOTFOUND);
        cap_reset(&g);
    }
    const char *missing_emails[] = {"ADA@example.com", "", "nobody@example.com"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(store_user_by_email(fx->s, missing_emails[i], on_user, &g), 0);
        wait_one(fx, &g);
        assert_int_equal(g.status, STORE_ENOTFOUND);
        cap_reset(&g);
    }

    /* Revoking tokens: forward only; an unknown user is not found. */
    const struct {
        int64_t user, now;
        int status;
        int64_t want;
    } rows[] = {
        {u->id, T0 + 5000, 0, T0 + 5000},
        {u->id, T0 + 4000, 0, T0 + 5000},
        {u->id, T0 + 6000, 0, T0 + 6000},
        {u->id + 100, T0, STORE_ENOTFOUND, T0 + 6000},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        cap_t r = {0};
        assert_int_equal(store_user_revoke_tokens(fx->s, rows[i].user, rows[i].now, on_done, &r),
                         0);
        wait_one(fx, &r);
        assert_int_equal(r.status, rows[i].status);
        assert_int_equal(store_user_get(fx->s, u->id, on_user, &g), 0);
        wait_one(fx, &g);
        assert_int_equal(g.user->tokens_valid_from, rows[i].want);
        cap_reset(&g);
    }

    /* Refused at the call. */
    cap_t n = {0};
    assert_int_equal(store_user_create(fx->s, NULL, "h", "n", T0, on_user, &n), PL_EINVAL);
    assert_int_equal(store_user_create(fx->s, "e@x", NULL, "n", T0, on_user, &n), PL_EINVAL);
    assert_int_equal(store_user_by_email(fx->s, NULL, on_user, &n), PL_EINVAL);
    store_wait(fx->s);
    assert_int_equal(n.calls, 0);
    cap_reset(&a);
}

static int64_t make_user(fx_t *fx, const char *email) {
    cap_t c = {0};
    assert_int_equal(store_user_create(fx->s, email, "hash", "name", T0, on_user, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.status, 0);
    int64_t id = c.user->id;
    cap_reset(&c);
    return id;
}

static int member_add(fx_t *fx, int64_t p, int64_t u, const char *role) {
    cap_t c = {0};
    assert_int_equal(store_member_add(fx->s, p, u, role, on_done, &c), 0);
    wait_one(fx, &c);
    return c.status;
}

/* The role, or NULL (not a member). */
static char *member_role(fx_t *fx, int64_t p, int64_t u) {
    cap_t c = {0};
    assert_int_equal(store_member_role(fx->s, p, u, on_role, &c), 0);
    wait_one(fx, &c);
    assert_true(c.status == 0 || c.status == STORE_ENOTFOUND);
    char *r = c.role;
    c.role = NULL;
    cap_reset(&c);
    return r;
}

static void test_members(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop"), q = make_project(fx, "other");
    int64_t ada = make_user(fx, "ada@example.com"), bob = make_user(fx, "bob@example.com");

    const struct {
        int64_t p, u;
        const char *role;
        int status;
    } rows[] = {
        {p, ada, "manager", 0},
        {p, bob, "agent", 0},
        {p, bob, "manager", 0}, /* a member's role changes */
        {p, bob, "agent", 0},
        {q, ada, "agent", 0},
        {p, ada, "owner", PL_EINVAL},
        {p, ada, "", PL_EINVAL},
        {p, ada, "Manager", PL_EINVAL},
        {p + 100, ada, "agent", STORE_ENOTFOUND},
        {p, bob + 100, "agent", STORE_ENOTFOUND},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int st = member_add(fx, rows[i].p, rows[i].u, rows[i].role);
        if (st != rows[i].status)
            print_error("row %zu: %s\n", i, store_strerror(st));
        assert_int_equal(st, rows[i].status);
    }
    const struct {
        int64_t p, u;
        const char *want; /* NULL: not a member */
    } roles[] = {
        {p, ada, "manager"}, {p, bob, "agent"},    {q, ada, "agent"},
        {q, bob, NULL},      {p + 100, ada, NULL}, {p, bob + 100, NULL},
    };
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        char *r = member_role(fx, roles[i].p, roles[i].u);
        if (roles[i].want)
            assert_string_equal(r, roles[i].want);
        else
            assert_null(r);
        free(r);
    }
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM project_members"), 3);
    cap_t n = {0};
    assert_int_equal(store_member_add(fx->s, p, ada, NULL, on_done, &n), PL_EINVAL);
    store_wait(fx->s);
    assert_int_equal(n.calls, 0);
}

/* ---- batches: several messages of one visitor in one transaction -----------------------------
 *
 * The ingests submitted in one loop turn are committed together (on PostgreSQL as one
 * set-based statement per run of up to 1024 messages, several of them per visitor; on SQLite
 * one by one). Either way the results and the rows must be exactly those of running the same
 * ingests one after another. */

/* Submits in[0..n) without waiting, so that they land in one batch, then waits; caps[i] gets
 * the outcome of in[i]. Asserts that one transaction committed them all. */
static void ingest_batch(fx_t *fx, const store_ingest_t *in, size_t n, cap_t *caps) {
    store_stats_t before, after;
    store_stats(fx->s, &before);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(store_message_ingest(fx->s, &in[i], on_ingest, &caps[i]), 0);
    store_wait(fx->s);
    store_stats(fx->s, &after);
    assert_int_equal(after.writes - before.writes, n);
    assert_int_equal(after.transactions - before.transactions, 1);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(caps[i].calls, 1);
}

/* Column 0 of the first row of sql with ?2 = id, as an integer (-1 when there is no row). */
static int64_t fx_int_id(fx_t *fx, const char *sql, int64_t id) {
    int64_t v;
    tdb_rc_t rc = tdb_run(&fx->db, sql, NULL, id, &v);
    if (rc != TDB_OK)
        print_error("%s: %s\n", sql, tdb_errmsg(&fx->db));
    assert_int_equal(rc, TDB_OK);
    return v;
}

static void visitor_get(fx_t *fx, int64_t pid, int64_t vid, cap_t *c) {
    assert_int_equal(store_visitor_get(fx->s, pid, vid, on_visitor, c), 0);
    wait_one(fx, c);
}

/* The snippet of the UTF-8 text s (its first STORE_SNIPPET_CHARS code points) into out. */
static void snippet_of(const char *s, char *out, size_t outlen) {
    size_t chars = 0, len = 0;
    for (; s[len]; len++)
        if (((unsigned char)s[len] & 0xC0) != 0x80 && chars++ == STORE_SNIPPET_CHARS)
            break;
    snprintf(out, outlen, "%.*s", (int)len, s);
}

#define ONE_MAX 8 /* most messages of a row of test_batch_one_visitor */

/* Several messages of ONE visitor whose conversation an agent solved, in one batch. forever:
 * the first message reopens the conversation (once), which takes them all in order; its
 * unread_count grows by their number; the last message gives the snippet and the time.
 * limit_to_active: the solved conversation is left alone and ONE new conversation, created by
 * the first message with its session metadata, takes them all. Later messages may carry
 * earlier times (another gateway's clock): the last message's time is still the
 * conversation's, and the visitor's last_seen_at is the latest. */
static void test_batch_one_visitor(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop");
    const struct {
        const char *uid;
        bool forever;
        size_t k;       /* messages in the batch, at most ONE_MAX */
        int64_t step;   /* message i is at T0 + 100000 + i * step, ms */
        bool long_text; /* contents over STORE_SNIPPET_CHARS code points (2-byte ones) */
    } rows[] = {
        {"visitor-forever-2", true, 2, 10, false},
        {"visitor-forever-8", true, ONE_MAX, 10, true},
        {"visitor-forever-back", true, 4, -10, false},
        {"visitor-active-2", false, 2, 10, false},
        {"visitor-active-7", false, 7, 10, true},
        {"visitor-active-back", false, 3, -10, true},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        const bool fe = rows[r].forever;
        const size_t k = rows[r].k;
        const char *uid = rows[r].uid;
        /* Before: one message, in a conversation that was then solved. */
        cap_t a = {0};
        assert_int_equal(ingest(fx, p, uid, "before", "t0", "{\"visit\":0}", fe, T0, &a), 0);
        const int64_t c0 = a.ingest.conversation_id, vid = a.ingest.visitor_id;
        cap_reset(&a);
        set_status(fx, c0, "solved");

        char content[ONE_MAX][512], temp[ONE_MAX][24], meta[ONE_MAX][48];
        int64_t now[ONE_MAX], latest = T0;
        store_ingest_t in[ONE_MAX];
        cap_t caps[ONE_MAX];
        memset(caps, 0, sizeof caps);
        for (size_t i = 0; i < k; i++) {
            char *tail = repeat("\xC3\xA9", rows[r].long_text ? 120 : 0);
            snprintf(content[i], sizeof content[i], "message %zu of %s %s", i, uid, tail);
            free(tail);
            snprintf(temp[i], sizeof temp[i], "t%zu", i + 1);
            snprintf(meta[i], sizeof meta[i], "{\"visit\":%zu}", i + 1);
            now[i] = T0 + 100000 + (int64_t)i * rows[r].step;
            latest = now[i] > latest ? now[i] : latest;
            in[i] = (store_ingest_t){.project_id = p,
                                     .visitor_uid = uid,
                                     .content = content[i],
                                     .temp_id = temp[i],
                                     .session_metadata_json = meta[i],
                                     .forever = fe,
                                     .now_ms = now[i]};
        }
        ingest_batch(fx, in, k, caps);

        const int64_t cid = caps[0].status == 0 ? caps[0].ingest.conversation_id : 0;
        for (size_t i = 0; i < k; i++) {
            const cap_t *c = &caps[i];
            if (c->status != 0)
                print_error("%s message %zu: %s\n", uid, i, store_strerror(c->status));
            assert_int_equal(c->status, 0);
            assert_false(c->ingest.duplicate);
            if (c->ingest.conversation_id != cid ||
                c->ingest.conversation_created != (!fe && i == 0) ||
                c->ingest.conversation_reopened != (fe && i == 0)) {
                print_error("%s message %zu: conversation %lld created %d reopened %d, want "
                            "%lld %d %d\n",
                            uid, i, (long long)c->ingest.conversation_id,
                            c->ingest.conversation_created, c->ingest.conversation_reopened,
                            (long long)cid, !fe && i == 0, fe && i == 0);
                fail();
            }
            assert_int_equal(c->msg->conversation_id, cid);
            assert_int_equal(c->ingest.visitor_id, vid);
            assert_int_equal(c->msg->visitor_id, vid);
            assert_string_equal(c->msg->content, content[i]);
            assert_string_equal(c->msg->temp_id, temp[i]);
            assert_int_equal(c->msg->created_at, now[i]);
            assert_true(i == 0 || c->msg->id > caps[i - 1].msg->id);
        }
        if (fe)
            assert_int_equal(cid, c0);
        else
            assert_true(cid > c0);

        /* The conversation that took them. */
        char want_snippet[512];
        snippet_of(content[k - 1], want_snippet, sizeof want_snippet);
        cap_t cv = {0};
        conv_get(fx, p, cid, &cv);
        assert_int_equal(cv.status, 0);
        assert_string_equal(cv.conv->status, "open");
        assert_int_equal(cv.conv->unread_count, (int64_t)k + fe);
        assert_string_equal(cv.conv->last_message_snippet, want_snippet);
        assert_int_equal(cv.conv->last_message_timestamp, now[k - 1]);
        assert_int_equal(cv.conv->updated_at, now[k - 1]);
        assert_int_equal(cv.conv->created_at, fe ? T0 : now[0]);
        assert_string_equal(cv.conv->metadata_json, fe ? "{\"visit\":0}" : "{\"visit\":1}");
        cap_reset(&cv);
        if (!fe) { /* the solved one is left as it was */
            conv_get(fx, p, c0, &cv);
            assert_string_equal(cv.conv->status, "solved");
            assert_int_equal(cv.conv->unread_count, 1);
            assert_string_equal(cv.conv->last_message_snippet, "before");
            assert_int_equal(cv.conv->last_message_timestamp, T0);
            assert_int_equal(cv.conv->updated_at, T0);
            cap_reset(&cv);
        }
        assert_int_equal(
            fx_int_id(fx, "SELECT count(*) FROM conversations WHERE visitor_id = ?2", vid),
            fe ? 1 : 2);
        assert_int_equal(
            fx_int_id(fx, "SELECT count(*) FROM messages WHERE conversation_id = ?2", cid),
            (int64_t)k + fe);

        /* History (in the row's mode): all of them, in order, in that conversation. */
        cap_t h = {0};
        history(fx, p, uid, fe, STORE_HISTORY_MAX, &h);
        assert_int_equal(h.status, 0);
        assert_int_equal(h.id, cid);
        assert_int_equal(h.n, k + fe);
        if (fe)
            assert_string_equal(h.msgs[0]->content, "before");
        for (size_t i = 0; i < k; i++) {
            assert_string_equal(h.msgs[fe + i]->content, content[i]);
            assert_int_equal(h.msgs[fe + i]->id, caps[i].msg->id);
        }
        cap_reset(&h);
        cap_t v = {0};
        visitor_get(fx, p, vid, &v);
        assert_int_equal(v.status, 0);
        assert_int_equal(v.visitor->last_seen_at, latest);
        cap_reset(&v);
        for (size_t i = 0; i < k; i++)
            cap_reset(&caps[i]);
    }
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM visitors"), 6);
}

/* A script of ingests: a prelude run one at a time, then the batch. */
#define SCRIPT_STEPS 24

typedef struct {
    const char *uid; /* NULL ends the script */
    /* NULL: not an ingest but an agent setting the status `content` on the visitor's newest
     * conversation that is not spam (in the prelude only) */
    const char *temp;
    const char *content;
    const char *meta;
    bool forever;
    bool no_project; /* into a project that does not exist */
    int64_t dt;      /* added to the step's time, T0 + 1000 * step, ms */
    /* What the ingest must give, whichever way it runs: */
    int status;
    int dup_of; /* 1 + the step whose message it gives back as a duplicate; 0: a new message */
    bool created, reopened;
} step_t;

typedef struct {
    const char *name;
    size_t nprelude; /* steps[0..nprelude) are awaited one at a time; the others are the batch */
    step_t steps[SCRIPT_STEPS];
} script_t;

/* An ingest step: visitor, temp_id, content, session metadata. */
#define S(u, t, c, m) .uid = (u), .temp = (t), .content = (c), .meta = (m)
#define DUP(i) .dup_of = (i) + 1
/* An agent sets status st on the visitor's newest conversation that is not spam. */
#define SOLVE(u, st) .uid = (u), .content = (st)

static const script_t scripts[] = {
    {"new visitor, retries, earlier batch, interleaved",
     2,
     {
         {S("visitor-old", "o1", "earlier one", "{\"o\":1}"), .created = true},
         {S("visitor-old", "o2", "earlier two", "{\"o\":2}")},
         {S("visitor-new", "n1", "new one", "{\"n\":1}"), .created = true},
         {S("visitor-old", "o3", "old three", NULL)},
         {S("visitor-new", "n2", "new two", "{\"n\":2}")},
         {S("visitor-new", "n1", "new one, retried", "{\"n\":9}"), DUP(2)},
         {S("visitor-old", "o1", "earlier one, retried", NULL), DUP(0)},
         {S("visitor-new", "n3", "new three", NULL)},
         {S("visitor-x", "x1", "x one", "{\"x\":1}"), .created = true},
         {S("visitor-old", "o4", "old four", NULL)},
         {S("visitor-x", "x1", "x one, retried", NULL), DUP(8)},
         {S("visitor-new", "n2", "new two, retried", NULL), DUP(4)},
         {S("visitor-new", "n4", "new four", "{\"n\":4}")},
         {S("visitor-x", "x2", "x two", NULL)},
     }},
    {"forever: solved, pending and spam conversations",
     6,
     {
         {S("visitor-a", "a1", "a one", "{\"a\":1}"), .forever = true, .created = true},
         {SOLVE("visitor-a", "solved")},
         {S("visitor-b", "b1", "b one", "{\"b\":1}"), .forever = true, .created = true},
         {SOLVE("visitor-b", "pending")},
         {S("visitor-c", "c1", "c one", "{\"c\":1}"), .forever = true, .created = true},
         {SOLVE("visitor-c", "spam")},
         {S("visitor-a", "a2", "a two", NULL), .forever = true, .reopened = true},
         {S("visitor-b", "b2", "b two", NULL), .forever = true},
         {S("visitor-a", "a1", "a one, retried", NULL), .forever = true, DUP(0)},
         {S("visitor-c", "c2", "c two", "{\"c\":2}"), .forever = true, .created = true},
         {S("visitor-a", "a3", "a three", NULL), .forever = true},
         {S("visitor-c", "c3", "c three", "{\"c\":3}"), .forever = true},
         {S("visitor-b", "b1", "b one, retried", NULL), .forever = true, DUP(2)},
         {S("visitor-c", "c2", "c two, retried", NULL), .forever = true, DUP(9)},
         {S("visitor-d", "d1", "d one", "{\"d\":1}"), .forever = true, .created = true},
         {S("visitor-a", "a4", "a four, from a slow clock", NULL), .forever = true, .dt = -500000},
     }},
    {"both modes for one visitor, refusals",
     4,
     {
         {S("visitor-a", "a1", "a one", "{\"a\":1}"), .created = true},
         {SOLVE("visitor-a", "solved")},
         {S("visitor-b", "b1", "b one", "{\"b\":1}"), .created = true},
         {SOLVE("visitor-b", "solved")},
         {S("visitor-a", "a2", "a two", "{\"a\":2}"), .created = true},
         {S("visitor-b", "b2", "b two", NULL), .forever = true, .reopened = true},
         {S("visitor-a", "a3", "a three", NULL), .forever = true},
         {S("visitor-b", "b3", "b three", NULL)},
         {S("visitor-n", "n1", "n one", "[1]"), .status = PL_EINVAL},
         {S("visitor-n", "n2", "n two", "{\"n\":2}"), .created = true},
         {S("visitor-n", "n1", "n one, again", "{\"n\":1}")},
         {S("visitor-a", "a1", "a one", NULL), .no_project = true, .status = STORE_ENOTFOUND},
         {S("visitor-a", "a2", "a two, retried", NULL), DUP(4)},
         {S("visitor-a", "a4", "a four", NULL), .forever = true},
         {S("visitor-n", "n3", "n three", "not json: unused")},
     }},
    {"one visitor: retries around new messages, the last one stored is not the last",
     1,
     {
         {S("visitor-a", "a1", "a one", NULL), .created = true},
         {S("visitor-a", "a2", "a two", NULL)},
         {S("visitor-a", "a2", "a two, retried", NULL), DUP(1)},
         {S("visitor-a", "a1", "a one, retried", NULL), DUP(0)},
         {S("visitor-a", "a3", "a three, from a slow clock", NULL), .dt = -300000},
         {S("visitor-a", "a3", "a three, retried", NULL), DUP(4)},
         {S("visitor-a", "a2", "a two, retried again", NULL), DUP(1)},
     }},
    {"solved conversations: a retry of an old message comes first in the batch",
     4,
     {
         {S("visitor-a", "a1", "a one", "{\"v\":1}"), .created = true},
         {SOLVE("visitor-a", "solved")},
         {S("visitor-b", "b1", "b one", "{\"v\":1}"), .forever = true, .created = true},
         {SOLVE("visitor-b", "solved")},
         {S("visitor-a", "a1", "a one, retried", "{\"v\":9}"), DUP(0)},
         {S("visitor-b", "b1", "b one, retried", NULL), .forever = true, DUP(2)},
         {S("visitor-a", "a2", "a two", "{\"v\":2}"), .created = true},
         {S("visitor-b", "b2", "b two", NULL), .forever = true, .reopened = true},
         {S("visitor-a", "a3", "a three", "{\"v\":3}")},
         {S("visitor-b", "b3", "b three", NULL), .forever = true},
         {S("visitor-a", "a1", "a one, retried again", NULL), DUP(0)},
     }},
};

/* What one ingest of a script gave. */
typedef struct {
    int status;
    bool duplicate, created, reopened;
    size_t noutbox;
    int64_t msg_id, conv_id, visitor_id, created_at;
    char content[64], temp[16];
} step_out_t;

/* The visitors, conversations (with their message counts), messages and outbox rows as
 * text, without the ids a backend draws (a message names its conversation by its rank). */
enum { DUMP_VISITORS, DUMP_CONVERSATIONS, DUMP_MESSAGES, DUMP_OUTBOX, DUMP__COUNT };
static const char *const dump_sql[DUMP__COUNT] = {
    "SELECT uid || '|' || last_seen_at || '|' || created_at FROM visitors ORDER BY uid",
    "SELECT v.uid || '|' || c.status || '|' || c.unread_count || '|' || "
    "c.last_message_snippet || '|' || c.last_message_timestamp || '|' || "
    "coalesce(CAST(c.metadata AS TEXT), '-') || '|' || c.created_at || '|' || c.updated_at "
    "|| '|' || (SELECT count(*) FROM messages AS m WHERE m.conversation_id = c.id) "
    "FROM conversations AS c JOIN visitors AS v ON v.id = c.visitor_id ORDER BY c.id",
    "SELECT v.uid || '|' || (SELECT count(*) FROM conversations AS k WHERE k.id <= "
    "m.conversation_id) || '|' || m.content || '|' || m.temp_id || '|' || m.sender_id || '|' "
    "|| m.status || '|' || m.created_at FROM messages AS m JOIN visitors AS v "
    "ON v.id = m.visitor_id ORDER BY m.id",
    "SELECT topic || '|' || payload || '|' || created_at FROM outbox ORDER BY id",
};

typedef struct {
    step_out_t out[SCRIPT_STEPS];
    size_t n; /* steps */
    char dump[DUMP__COUNT][8192];
} script_run_t;

static int64_t step_time(const step_t *s, size_t i) {
    return T0 + 1000 * (int64_t)i + s->dt;
}

/* Runs the script in a fresh database: the batch one ingest at a time (each awaited), or
 * submitted at once (one transaction). */
static void script_run(const script_t *sc, bool batched, script_run_t *run) {
    void *st = NULL;
    assert_int_equal(setup(&st), 0);
    fx_t *fx = st;
    int64_t p = make_project(fx, "shop");
    const char *topics[] = {"chat.message"};
    char payload[SCRIPT_STEPS][128];
    const char *payloads[SCRIPT_STEPS][1];
    store_ingest_t in[SCRIPT_STEPS];
    cap_t caps[SCRIPT_STEPS];
    memset(caps, 0, sizeof caps);
    memset(in, 0, sizeof in);
    size_t n = 0;
    for (; n < SCRIPT_STEPS && sc->steps[n].uid; n++) {
        const step_t *s = &sc->steps[n];
        if (!s->temp) { /* an agent changes the status */
            assert_true(n < sc->nprelude);
            int64_t cid = current(fx, p, s->uid, true);
            assert_true(cid > 0);
            set_status(fx, cid, s->content);
            continue;
        }
        snprintf(payload[n], sizeof payload[n], "%s/%s/%s", s->uid, s->temp, s->content);
        payloads[n][0] = payload[n];
        in[n] = (store_ingest_t){.project_id = s->no_project ? p + 1000 : p,
                                 .visitor_uid = s->uid,
                                 .content = s->content,
                                 .temp_id = s->temp,
                                 .session_metadata_json = s->meta,
                                 .forever = s->forever,
                                 .now_ms = step_time(s, n),
                                 .event_topics = topics,
                                 .event_payloads = payloads[n],
                                 .nevents = 1};
        if (n < sc->nprelude || !batched) {
            assert_int_equal(store_message_ingest(fx->s, &in[n], on_ingest, &caps[n]), 0);
            wait_one(fx, &caps[n]);
        }
    }
    assert_true(n > sc->nprelude);
    if (batched)
        ingest_batch(fx, in + sc->nprelude, n - sc->nprelude, caps + sc->nprelude);
    run->n = n;
    for (size_t i = 0; i < n; i++) {
        if (!sc->steps[i].temp)
            continue;
        const cap_t *c = &caps[i];
        step_out_t *o = &run->out[i];
        assert_int_equal(c->calls, 1);
        o->status = c->status;
        if (c->status == 0) {
            o->duplicate = c->ingest.duplicate;
            o->created = c->ingest.conversation_created;
            o->reopened = c->ingest.conversation_reopened;
            o->noutbox = c->ingest.noutbox;
            o->msg_id = c->msg->id;
            o->conv_id = c->ingest.conversation_id;
            o->visitor_id = c->ingest.visitor_id;
            o->created_at = c->msg->created_at;
            assert_int_equal(c->msg->conversation_id, o->conv_id);
            assert_int_equal(c->msg->visitor_id, o->visitor_id);
            snprintf(o->content, sizeof o->content, "%s", c->msg->content);
            snprintf(o->temp, sizeof o->temp, "%s", c->msg->temp_id);
        }
        cap_reset(&caps[i]);
    }
    for (int d = 0; d < DUMP__COUNT; d++) {
        if (!tdb_texts(&fx->db, dump_sql[d], 0, run->dump[d], sizeof run->dump[d]))
            print_error("%s: %s\n", dump_sql[d], tdb_errmsg(&fx->db));
        assert_true(strlen(run->dump[d]) + 1 < sizeof run->dump[d]); /* not cut */
    }
    assert_int_equal(fx_teardown(&st), 0);
}

/* The results of a run against what the script says each ingest gives. */
static void script_check(const script_t *sc, const script_run_t *run, const char *how) {
    int64_t newest = 0;
    for (size_t i = 0; i < run->n; i++) {
        const step_t *s = &sc->steps[i];
        const step_out_t *o = &run->out[i];
        if (!s->temp)
            continue;
        if (o->status != s->status ||
            (o->status == 0 && (o->duplicate != (s->dup_of != 0) || o->created != s->created ||
                                o->reopened != s->reopened))) {
            print_error("%s (%s), step %zu: %s duplicate %d created %d reopened %d; want %s "
                        "%d %d %d\n",
                        sc->name, how, i, store_strerror(o->status), o->duplicate, o->created,
                        o->reopened, store_strerror(s->status), s->dup_of != 0, s->created,
                        s->reopened);
            fail();
        }
        if (o->status != 0)
            continue;
        if (s->dup_of) {
            const step_out_t *orig = &run->out[s->dup_of - 1];
            assert_int_equal(o->noutbox, 0);
            assert_int_equal(o->msg_id, orig->msg_id);
            assert_int_equal(o->conv_id, orig->conv_id);
            assert_string_equal(o->content, orig->content);
            assert_string_equal(o->temp, orig->temp);
            assert_int_equal(o->created_at, orig->created_at);
        } else {
            assert_int_equal(o->noutbox, 1);
            assert_true(o->msg_id > newest); /* ids in submission order */
            newest = o->msg_id;
            assert_string_equal(o->content, s->content);
            assert_string_equal(o->temp, s->temp);
            assert_int_equal(o->created_at, step_time(s, i));
        }
        for (size_t j = 0; j < i; j++) /* one visitor per uid */
            if (sc->steps[j].temp && run->out[j].status == 0)
                assert_true((o->visitor_id == run->out[j].visitor_id) ==
                            (strcmp(s->uid, sc->steps[j].uid) == 0));
    }
}

/* The first step whose result has the same id as step i's (0 message, 1 conversation, 2
 * visitor): names the row whatever ids the backend drew. */
static size_t first_same(const script_run_t *run, size_t i, int which) {
    for (size_t j = 0;; j++) {
        const step_out_t *a = &run->out[j], *b = &run->out[i];
        if (a->status != 0 || a->msg_id == 0)
            continue;
        if ((which == 0 && a->msg_id == b->msg_id) || (which == 1 && a->conv_id == b->conv_id) ||
            (which == 2 && a->visitor_id == b->visitor_id))
            return j;
    }
}

/* Each script twice, each time in a fresh database: with every ingest awaited separately,
 * then with the batch submitted at once. Every result (statuses, duplicate, created and
 * reopened flags, which message, conversation and visitor each ingest got) and every row
 * (visitors' last_seen_at, conversations' status, unread_count, last message, metadata and
 * times, messages in order with their conversations, outbox events) must be the same. */
static void test_batch_same_as_one_by_one(void **state) {
    (void)state;
    static const char *const dump_name[DUMP__COUNT] = {"visitors", "conversations", "messages",
                                                       "outbox"};
    script_run_t *one = calloc(1, sizeof *one), *batch = calloc(1, sizeof *batch);
    assert_non_null(one);
    assert_non_null(batch);
    for (size_t k = 0; k < sizeof scripts / sizeof scripts[0]; k++) {
        const script_t *sc = &scripts[k];
        memset(one, 0, sizeof *one);
        memset(batch, 0, sizeof *batch);
        script_run(sc, false, one);
        script_check(sc, one, "one by one");
        script_run(sc, true, batch);
        script_check(sc, batch, "batched");
        assert_int_equal(one->n, batch->n);
        for (size_t i = 0; i < one->n; i++) {
            if (!sc->steps[i].temp || one->out[i].status != 0)
                continue;
            for (int w = 0; w < 3; w++) {
                size_t a = first_same(one, i, w), b = first_same(batch, i, w);
                if (a != b) {
                    print_error("%s, step %zu: its %s is step %zu's one by one, step %zu's "
                                "batched\n",
                                sc->name, i,
                                w == 0   ? "message"
                                : w == 1 ? "conversation"
                                         : "visitor",
                                a, b);
                    fail();
                }
            }
        }
        for (int d = 0; d < DUMP__COUNT; d++) {
            if (strcmp(one->dump[d], batch->dump[d]) != 0) {
                print_error("%s: the %s differ.\none by one:\n%s\nbatched:\n%s\n", sc->name,
                            dump_name[d], one->dump[d], batch->dump[d]);
                fail();
            }
        }
    }
    free(one);
    free(batch);
}

#define MANY_VISITORS 150
#define MANY_EACH 7

/* Many visitors with several messages each, interleaved (message k of every visitor, then
 * message k + 1), in one batch: 1,050 ingests, on PostgreSQL two runs, the first one ending in
 * the middle of some visitors' messages. Five kinds of visitors (v % 5): 0 new
 * (limit_to_active), 1 with an open conversation, 2 with a solved one under forever (reopened
 * by its first message), 3 with a solved one under limit_to_active (a new one is created), 4
 * new (forever). The last message of every tenth visitor is a retry of its second, so its last
 * stored message is not its last ingest. Each conversation gets its visitor's messages in
 * order, the right unread_count and the last stored message's snippet and time; message ids
 * follow the submission order. */
static void test_batch_many_visitors(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop");
    enum { NV = MANY_VISITORS, NE = MANY_EACH, N = NV * NE };
    char(*uid)[48] = calloc(NV, sizeof *uid);
    char(*text)[64] = calloc(N, sizeof *text);
    char(*temp)[24] = calloc(N, sizeof *temp);
    char(*meta)[48] = calloc(N, sizeof *meta);
    store_ingest_t *in = calloc(N, sizeof *in);
    cap_t *caps = calloc(N, sizeof *caps), *pre = calloc(NV, sizeof *pre);
    assert_true(uid && text && temp && meta && in && caps && pre);

    /* Before: kinds 1 to 3 have one message each; kinds 2 and 3 are then solved. */
    for (int v = 0; v < NV; v++) {
        snprintf(uid[v], sizeof uid[v], "visitor-%03d-kind-%d", v, v % 5);
        if (v % 5 >= 1 && v % 5 <= 3) {
            store_ingest_t b = {.project_id = p,
                                .visitor_uid = uid[v],
                                .content = "before",
                                .temp_id = "t-before",
                                .session_metadata_json = "{\"before\":true}",
                                .forever = v % 5 == 2,
                                .now_ms = T0};
            assert_int_equal(store_message_ingest(fx->s, &b, on_ingest, &pre[v]), 0);
        }
    }
    store_wait(fx->s);
    for (int v = 0; v < NV; v++) {
        if (v % 5 < 1 || v % 5 > 3)
            continue;
        assert_int_equal(pre[v].calls, 1);
        assert_int_equal(pre[v].status, 0);
        assert_true(pre[v].ingest.conversation_created);
        if (v % 5 != 1)
            set_status(fx, pre[v].ingest.conversation_id, "solved");
    }

#define AT(k, v) ((k)*NV + (v))
#define RETRY(k, v) ((v) % 10 == 9 && (k) == NE - 1)
#define NOW(k, v) (T0 + 10000 + (int64_t)(k)*1000 + (v))
    for (int k = 0; k < NE; k++) {
        for (int v = 0; v < NV; v++) {
            int i = AT(k, v);
            snprintf(text[i], sizeof text[i], "message %d of visitor %d", k, v);
            snprintf(temp[i], sizeof temp[i], "t%d", RETRY(k, v) ? 1 : k);
            snprintf(meta[i], sizeof meta[i], "{\"v\":%d,\"k\":%d}", v, k);
            in[i] = (store_ingest_t){.project_id = p,
                                     .visitor_uid = uid[v],
                                     .content = text[i],
                                     .temp_id = temp[i],
                                     .session_metadata_json = meta[i],
                                     .forever = v % 5 == 2 || v % 5 == 4,
                                     .now_ms = NOW(k, v)};
        }
    }
    ingest_batch(fx, in, N, caps);

    int64_t newest = 0;
    for (int i = 0; i < N; i++) { /* ids in submission order, statuses */
        int k = i / NV, v = i % NV;
        if (caps[i].status != 0)
            print_error("visitor %d message %d: %s\n", v, k, store_strerror(caps[i].status));
        assert_int_equal(caps[i].status, 0);
        assert_true(caps[i].ingest.duplicate == RETRY(k, v));
        if (RETRY(k, v)) {
            assert_int_equal(caps[i].msg->id, caps[AT(1, v)].msg->id);
            assert_string_equal(caps[i].msg->content, text[AT(1, v)]);
        } else {
            assert_true(caps[i].msg->id > newest);
            newest = caps[i].msg->id;
            assert_string_equal(caps[i].msg->content, text[i]);
        }
    }
    int64_t want_messages = 0;
    int bad = 0;
    for (int v = 0; v < NV; v++) {
        const int kind = v % 5, stored = NE - (v % 10 == 9), last = stored - 1;
        const bool had = kind >= 1 && kind <= 3; /* a conversation before the batch */
        const int64_t cid = caps[AT(0, v)].ingest.conversation_id;
        const int64_t vid = caps[AT(0, v)].ingest.visitor_id;
        if (had && kind != 3)
            assert_int_equal(cid, pre[v].ingest.conversation_id);
        else
            assert_true(cid > 0 && (!had || cid != pre[v].ingest.conversation_id));
        for (int k = 0; k < NE; k++) {
            const store_ingest_result_t *r = &caps[AT(k, v)].ingest;
            bool want_created = k == 0 && (kind == 0 || kind == 3 || kind == 4);
            bool want_reopened = k == 0 && kind == 2;
            if (r->conversation_id != cid || r->visitor_id != vid ||
                r->conversation_created != want_created ||
                r->conversation_reopened != want_reopened) {
                print_error("visitor %d message %d: conversation %lld created %d reopened %d, "
                            "want %lld %d %d\n",
                            v, k, (long long)r->conversation_id, r->conversation_created,
                            r->conversation_reopened, (long long)cid, want_created, want_reopened);
                bad++;
            }
        }
        if (had)
            assert_int_equal(pre[v].ingest.visitor_id, vid);
        cap_t c = {0};
        conv_get(fx, p, cid, &c);
        assert_int_equal(c.status, 0);
        const store_conversation_t *cv = c.conv;
        const int64_t want_unread = stored + (had && kind != 3);
        if (strcmp(cv->status, "open") != 0 || cv->unread_count != want_unread ||
            strcmp(cv->last_message_snippet, text[AT(last, v)]) != 0 ||
            cv->last_message_timestamp != NOW(last, v) || cv->updated_at != NOW(last, v) ||
            cv->created_at != (had && kind != 3 ? T0 : NOW(0, v)) ||
            strcmp(cv->metadata_json, had && kind != 3 ? "{\"before\":true}" : meta[AT(0, v)]) !=
                0) {
            print_error("visitor %d (kind %d): conversation %s unread %lld \"%s\" at %lld "
                        "updated %lld created %lld metadata %s\n",
                        v, kind, cv->status, (long long)cv->unread_count, cv->last_message_snippet,
                        (long long)cv->last_message_timestamp, (long long)cv->updated_at,
                        (long long)cv->created_at, cv->metadata_json);
            bad++;
        }
        cap_reset(&c);
        /* Its messages, in order, once each. */
        char sql[128], got[1024], want[1024] = "";
        snprintf(sql, sizeof sql,
                 "SELECT content FROM messages WHERE conversation_id = %lld "
                 "ORDER BY id",
                 (long long)cid);
        assert_true(tdb_texts(&fx->db, sql, 0, got, sizeof got));
        size_t len = 0;
        if (had && kind != 3)
            len += (size_t)snprintf(want, sizeof want, "before");
        for (int k = 0; k < stored; k++)
            len += (size_t)snprintf(want + len, sizeof want - len, "%s%s", len ? "\n" : "",
                                    text[AT(k, v)]);
        if (strcmp(got, want) != 0) {
            print_error("visitor %d: messages\n%s\nwant\n%s\n", v, got, want);
            bad++;
        }
        assert_int_equal(fx_int_id(fx, "SELECT last_seen_at FROM visitors WHERE id = ?2", vid),
                         NOW(NE - 1, v));
        want_messages += stored + had;
    }
    assert_int_equal(bad, 0);
#undef AT
#undef RETRY
#undef NOW
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM messages"), want_messages);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM visitors"), NV);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM conversations"), NV + NV / 5);
    /* Kind 3's solved conversations are left as they were. */
    assert_int_equal(fx_int_id(fx,
                               "SELECT count(*) FROM conversations WHERE status = 'solved' AND "
                               "unread_count = 1 AND last_message_timestamp = ?2",
                               T0),
                     NV / 5);
    for (int i = 0; i < N; i++)
        cap_reset(&caps[i]);
    for (int v = 0; v < NV; v++)
        cap_reset(&pre[v]);
    free(pre);
    free(caps);
    free(in);
    free(meta);
    free(temp);
    free(text);
    free(uid);
}

/* ---- group commit and throughput ------------------------------------------------------------- */

#define BURST 5000
#define BURST_VISITORS 100

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void test_ingest_burst(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop");
    store_stats_t before;
    store_stats(fx->s, &before);
    cap_t *caps = calloc(BURST, sizeof *caps);
    assert_non_null(caps);
    for (int i = 0; i < BURST; i++) { /* all fired without waiting */
        char uid[32], temp[32], content[64];
        snprintf(uid, sizeof uid, "visitor-%04d", i % BURST_VISITORS);
        snprintf(temp, sizeof temp, "temp-%d", i);
        snprintf(content, sizeof content, "message %d from visitor %d", i, i % BURST_VISITORS);
        store_ingest_t in = {.project_id = p,
                             .visitor_uid = uid,
                             .content = content,
                             .temp_id = temp,
                             .session_metadata_json = "{\"src\":\"burst\"}",
                             .now_ms = T0 + i};
        assert_int_equal(store_message_ingest(fx->s, &in, on_ingest, &caps[i]), 0);
    }
    store_wait(fx->s);

    int64_t *ids = calloc(BURST, sizeof *ids);
    assert_non_null(ids);
    int bad = 0, created = 0;
    for (int i = 0; i < BURST; i++) {
        if (caps[i].calls != 1 || caps[i].status != 0 || caps[i].ingest.duplicate) {
            bad++;
            continue;
        }
        ids[i] = caps[i].msg->id;
        created += caps[i].ingest.conversation_created;
        cap_reset(&caps[i]);
    }
    assert_int_equal(bad, 0);
    assert_int_equal(created, BURST_VISITORS);
    qsort(ids, BURST, sizeof *ids, cmp_i64);
    for (int i = 1; i < BURST; i++)
        assert_true(ids[i] > ids[i - 1]);

    store_stats_t st;
    store_stats(fx->s, &st);
    uint64_t tx = st.transactions - before.transactions;
    print_message("ingest burst: %d ingests in %llu transactions (largest batch %llu)\n", BURST,
                  (unsigned long long)tx, (unsigned long long)st.largest_batch);
    assert_int_equal(st.writes - before.writes, BURST);
    assert_int_equal(st.failed, 0);
    assert_true(tx >= 1 && tx * 50 <= BURST); /* transactions << requests */
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM messages"), BURST);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM conversations"), BURST_VISITORS);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM visitors"), BURST_VISITORS);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM conversations WHERE unread_count = 50"),
                     BURST_VISITORS);
    free(ids);
    free(caps);
}

/* The benchmark keeps WINDOW ingests in flight, submitting the next from each callback (as the
 * gateway does with many visitors sending at once), until TOTAL have committed. */
#define BENCH_TOTAL 40000
#define BENCH_WINDOW 2048
#define BENCH_VISITORS 2000

typedef struct {
    fx_t *fx;
    int64_t project;
    int submitted, done, failed;
} bench_t;

static void bench_submit(bench_t *b);

static void bench_on_ingest(void *ud, int status, const store_ingest_result_t *r) {
    bench_t *b = ud;
    (void)r;
    b->done++;
    if (status != 0)
        b->failed++;
    if (b->submitted < BENCH_TOTAL)
        bench_submit(b);
}

static void bench_submit(bench_t *b) {
    int i = b->submitted++;
    char uid[32], temp[32];
    snprintf(uid, sizeof uid, "bench-visitor-%05d", i % BENCH_VISITORS);
    snprintf(temp, sizeof temp, "bench-temp-%d", i);
    store_ingest_t in = {.project_id = b->project,
                         .visitor_uid = uid,
                         .content = "Hello, I have a question about my order #12345: when will "
                                    "it ship? Thanks!",
                         .temp_id = temp,
                         .now_ms = T0 + i};
    if (store_message_ingest(b->fx->s, &in, bench_on_ingest, b) != 0)
        b->failed++, b->done++;
}

/* CPU time (user + system, in clock ticks) of this process's threads named name, from
 * /proc/self/task/<tid>/stat; -1 when it cannot be read (not Linux). */
static long thread_cpu_ticks(const char *name) {
    long total = -1;
    char path[300], buf[1024];
    DIR *dir = opendir("/proc/self/task");
    if (!dir)
        return -1;
    for (struct dirent *ent; (ent = readdir(dir));) {
        if (ent->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", ent->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* pid (comm) state ppid ... field 14 utime, 15 stime */
        char *open = strchr(buf, '('), *close = strrchr(buf, ')');
        if (!open || !close || (size_t)(close - open - 1) != strlen(name) ||
            strncmp(open + 1, name, strlen(name)) != 0)
            continue;
        long utime = 0, stime = 0;
        if (sscanf(close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &utime,
                   &stime) == 2)
            total = (total < 0 ? 0 : total) + utime + stime;
    }
    closedir(dir);
    return total;
}

static void test_ingest_benchmark(void **state) {
    fx_t *fx = *state;
    bench_t b = {.fx = fx, .project = make_project(fx, "bench")};
    store_stats_t before, after;
    store_stats(fx->s, &before);
    long cpu0 = thread_cpu_ticks("parley-store-w");
    uint64_t t0 = pl_mono_ns();
    for (int i = 0; i < BENCH_WINDOW; i++)
        bench_submit(&b);
    store_wait(fx->s);
    uint64_t ns = pl_mono_ns() - t0;
    long cpu1 = thread_cpu_ticks("parley-store-w");
    store_stats(fx->s, &after);
    assert_int_equal(b.done, BENCH_TOTAL);
    assert_int_equal(b.failed, 0);
    double secs = (double)ns / 1e9;
    uint64_t tx = after.transactions - before.transactions;
    printf("ingest benchmark (synchronous=normal): %d ingests (%d visitors, %d in flight) in "
           "%.3f s = %.0f ingests/s, %llu transactions, largest batch %llu\n",
           BENCH_TOTAL, BENCH_VISITORS, BENCH_WINDOW, secs, BENCH_TOTAL / secs,
           (unsigned long long)tx, (unsigned long long)after.largest_batch);
    if (cpu0 >= 0 && cpu1 >= cpu0)
        printf("ingest benchmark: write thread CPU %.1f us per ingest (%.0f ingests per CPU "
               "second)\n",
               (double)(cpu1 - cpu0) / (double)sysconf(_SC_CLK_TCK) * 1e6 / BENCH_TOTAL,
               BENCH_TOTAL / ((double)(cpu1 - cpu0) / (double)sysconf(_SC_CLK_TCK)));
    fflush(stdout);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM messages"), BENCH_TOTAL);
}

/* ---- result copies --------------------------------------------------------------------------- */

static void test_dup_free(void **state) {
    (void)state;
    store_visitor_t v = {.id = 1,
                         .project_id = 2,
                         .uid = "u",
                         .current_url = "https://x/",
                         .last_seen_at = 3,
                         .created_at = 4};
    store_visitor_t *vc = store_visitor_dup(&v);
    assert_non_null(vc);
    assert_true(vc->uid != v.uid);
    assert_string_equal(vc->uid, "u");
    assert_null(vc->name);
    assert_null(vc->email);
    assert_string_equal(vc->current_url, "https://x/");
    assert_int_equal(vc->last_seen_at, 3);
    assert_int_equal(vc->created_at, 4);
    store_visitor_free(vc);

    store_message_t m = {.id = 5,
                         .conversation_id = 6,
                         .project_id = 7,
                         .visitor_id = 8,
                         .visitor_uid = "u",
                         .content = "c",
                         .sender_id = "s",
                         .from_customer = true,
                         .user_id = 9,
                         .status = "read",
                         .content_type = "text",
                         .metadata_json = "{}",
                         .created_at = 10};
    store_message_t *mc = store_message_dup(&m);
    assert_non_null(mc);
    assert_true(mc->content != m.content);
    assert_int_equal(mc->id, 5);
    assert_int_equal(mc->conversation_id, 6);
    assert_int_equal(mc->project_id, 7);
    assert_int_equal(mc->visitor_id, 8);
    assert_string_equal(mc->visitor_uid, "u");
    assert_string_equal(mc->sender_id, "s");
    assert_true(mc->from_customer);
    assert_int_equal(mc->user_id, 9);
    assert_string_equal(mc->status, "read");
    assert_string_equal(mc->content_type, "text");
    assert_string_equal(mc->metadata_json, "{}");
    assert_null(mc->temp_id);
    assert_int_equal(mc->created_at, 10);
    store_message_free(mc);

    store_conversation_t c = {.id = 1,
                              .project_id = 2,
                              .visitor_id = 3,
                              .assignee_id = 4,
                              .status = "pending",
                              .last_message_timestamp = 5,
                              .unread_count = 6,
                              .url_history_json = "[]",
                              .created_at = 7,
                              .updated_at = 8};
    store_conversation_t *cc = store_conversation_dup(&c);
    assert_non_null(cc);
    assert_int_equal(cc->assignee_id, 4);
    assert_string_equal(cc->status, "pending");
    assert_null(cc->last_message_snippet);
    assert_null(cc->metadata_json);
    assert_string_equal(cc->url_history_json, "[]");
    assert_int_equal(cc->unread_count, 6);
    assert_int_equal(cc->updated_at, 8);
    store_conversation_free(cc);

    store_user_t u = {.id = 1,
                      .email = "e",
                      .full_name = "",
                      .password_hash = "h",
                      .tokens_valid_from = 2,
                      .created_at = 3};
    store_user_t *uc = store_user_dup(&u);
    assert_non_null(uc);
    assert_string_equal(uc->email, "e");
    assert_string_equal(uc->full_name, "");
    assert_string_equal(uc->password_hash, "h");
    assert_int_equal(uc->tokens_valid_from, 2);
    store_user_free(uc);

    store_visitor_free(NULL);
    store_message_free(NULL);
    store_conversation_free(NULL);
    store_user_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identify, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_ingest_creates_then_appends, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_ingest_refused, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_ingest_idempotent, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_ingest_batch_isolated, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_ingest_batch_fault, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_ingest_large_batch, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_outbox, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_outbox_ids, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_outbox_ids_batch, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_ingest_keeps_status, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_snippet_code_points, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unread_count, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_history_modes, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_history_long, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_visitor_context, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_conversation_get_missing, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_users, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_members, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_batch_one_visitor, setup, fx_teardown),
        cmocka_unit_test(test_batch_same_as_one_by_one),
        cmocka_unit_test_setup_teardown(test_batch_many_visitors, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_ingest_burst, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_ingest_benchmark, setup, fx_teardown),
        cmocka_unit_test(test_dup_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
