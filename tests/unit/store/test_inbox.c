/* Unit tests for the inbox operations of src/store/store.h (docs/http-api.md "Inbox") against
 * a real, fresh database per test (testdb.h: SQLite, or PostgreSQL when PARLEY_TEST_DATABASE
 * is set):
 * conversations with their visitors (get, list by status mask with order, totals and pagination
 * edges), messages with cursor pagination, agent replies, status and read changes,
 * assignments (members only), deletion with the messages, visitors; every operation refuses
 * the ids of another project as unknown ones. Conversations are made the way production makes
 * them, by visitor messages (store_message_ingest). A micro benchmark prints the latency of
 * store_conversations_list with 100,000 conversations in a project (page 1 and deep pages;
 * printed, not asserted); its data is written through a second, plain connection. Each test
 * runs its own uv loop to completion and checks that every handle was closed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/clock.h"
#include "store/store.h"
#include "testdb.h"
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

/* A fixed, realistic wall-clock origin for the now_ms arguments. */
#define T0 INT64_C(1764218869000)

/* ---- fixture --------------------------------------------------------------------------------- */

static int setup(void **state) {
    return fx_setup(state, "inbox");
}

static void fx_exec(fx_t *fx, const char *sql) {
    if (tdb_exec(&fx->db, sql, NULL, 0) != TDB_OK) {
        print_error("%s: %s\n", sql, tdb_errmsg(&fx->db));
        fail();
    }
}

/* ---- callback capture ------------------------------------------------------------------------ */

typedef struct {
    int calls;
    int status;
    int64_t id;               /* store_id_cb */
    int64_t total;            /* conversations_list */
    bool has_more;            /* messages_list */
    store_project_t *project; /* copies, freed by cap_reset */
    store_visitor_t *visitor;
    store_conversation_t *conv;   /* get, update, assign, delete, reply */
    store_conversation_t **convs; /* conversations_list */
    store_message_t *msg;         /* reply, ingest */
    store_message_t **msgs;       /* messages_list */
    store_user_t *user;
    size_t n; /* entries of convs or msgs */
} cap_t;

static void cap_reset(cap_t *c) {
    store_project_free(c->project);
    store_visitor_free(c->visitor);
    store_conversation_free(c->conv);
    for (size_t i = 0; c->convs && i < c->n; i++)
        store_conversation_free(c->convs[i]);
    free(c->convs);
    store_message_free(c->msg);
    for (size_t i = 0; c->msgs && i < c->n; i++)
        store_message_free(c->msgs[i]);
    free(c->msgs);
    store_user_free(c->user);
    memset(c, 0, sizeof *c);
}

/* A callback that gets a result with an error status (or none with 0) breaks the contract. */
#define BROKEN 12345

static void on_done(void *ud, int status) {
    cap_t *c = ud;
    c->calls++;
    c->status = status;
}

static void on_project(void *ud, int status, const store_project_t *p) {
    cap_t *c = ud;
    c->calls++;
    c->status = (status == 0) == (p != NULL) ? status : BROKEN;
    if (p)
        c->project = store_project_dup(p);
}

static void on_user(void *ud, int status, const store_user_t *u) {
    cap_t *c = ud;
    c->calls++;
    c->status = (status == 0) == (u != NULL) ? status : BROKEN;
    if (u)
        c->user = store_user_dup(u);
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

static void on_conv_list(void *ud, int status, const store_conversation_t *v, size_t n,
                         int64_t total) {
    cap_t *c = ud;
    c->calls++;
    c->status = status;
    c->total = total;
    if ((status != 0 && (v || n || total)) || (n && !v))
        c->status = BROKEN;
    if (n) {
        c->convs = calloc(n, sizeof *c->convs);
        for (size_t i = 0; c->convs && i < n; i++)
            c->convs[i] = store_conversation_dup(&v[i]);
        c->n = c->convs ? n : 0;
    }
}

static void on_msg_list(void *ud, int status, const store_message_t *v, size_t n, bool has_more) {
    cap_t *c = ud;
    c->calls++;
    c->status = status;
    c->has_more = has_more;
    if ((status != 0 && (v || n || has_more)) || (n && !v))
        c->status = BROKEN;
    if (n) {
        c->msgs = calloc(n, sizeof *c->msgs);
        for (size_t i = 0; c->msgs && i < n; i++)
            c->msgs[i] = store_message_dup(&v[i]);
        c->n = c->msgs ? n : 0;
    }
}

static void on_reply(void *ud, int status, const store_message_t *m,
                     const store_conversation_t *cv) {
    cap_t *c = ud;
    c->calls++;
    c->status = (status == 0) == (m != NULL && cv != NULL) ? status : BROKEN;
    if (m)
        c->msg = store_message_dup(m);
    if (cv)
        c->conv = store_conversation_dup(cv);
}

static void on_ingest(void *ud, int status, const store_ingest_result_t *r) {
    cap_t *c = ud;
    c->calls++;
    c->status = (status == 0) == (r != NULL) ? status : BROKEN;
    if (r) {
        c->id = r->conversation_id;
        c->msg = store_message_dup(&r->message);
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

static int64_t make_user(fx_t *fx, const char *email, const char *full_name) {
    cap_t c = {0};
    assert_int_equal(store_user_create(fx->s, email, "hash", full_name, T0, on_user, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.status, 0);
    int64_t id = c.user->id;
    cap_reset(&c);
    return id;
}

static void add_member(fx_t *fx, int64_t p, int64_t u, const char *role) {
    cap_t c = {0};
    assert_int_equal(store_member_add(fx->s, p, u, role, on_done, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.status, 0);
}

/* A visitor message (limit_to_active); returns its conversation's id, *mid its message id. */
static int64_t say(fx_t *fx, int64_t p, const char *uid, const char *text, int64_t now,
                   int64_t *mid) {
    static int seq;
    char temp[32];
    snprintf(temp, sizeof temp, "temp-%d", ++seq);
    store_ingest_t in = {
        .project_id = p, .visitor_uid = uid, .content = text, .temp_id = temp, .now_ms = now};
    cap_t c = {0};
    assert_int_equal(store_message_ingest(fx->s, &in, on_ingest, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.status, 0);
    int64_t cid = c.id;
    if (mid)
        *mid = c.msg->id;
    cap_reset(&c);
    return cid;
}

static void conv_get(fx_t *fx, int64_t p, int64_t id, cap_t *c) {
    assert_int_equal(store_conversation_get(fx->s, p, id, on_conv, c), 0);
    wait_one(fx, c);
}

static void conv_list(fx_t *fx, int64_t p, unsigned mask, int64_t offset, size_t limit, cap_t *c) {
    assert_int_equal(store_conversations_list(fx->s, p, mask, offset, limit, on_conv_list, c), 0);
    wait_one(fx, c);
}

static void msg_list(fx_t *fx, int64_t p, int64_t cid, int64_t before, size_t limit, cap_t *c) {
    assert_int_equal(store_messages_list(fx->s, p, cid, before, limit, on_msg_list, c), 0);
    wait_one(fx, c);
}

static int reply(fx_t *fx, int64_t p, int64_t cid, int64_t user, const char *text, int64_t now,
                 cap_t *c) {
    assert_int_equal(store_agent_reply(fx->s, p, cid, user, text, now, on_reply, c), 0);
    wait_one(fx, c);
    return c->status;
}

static int conv_update(fx_t *fx, int64_t p, int64_t id, const char *status, bool read, int64_t now,
                       cap_t *c) {
    assert_int_equal(store_conversation_update(fx->s, p, id, status, read, now, on_conv, c), 0);
    wait_one(fx, c);
    return c->status;
}

static int conv_assign(fx_t *fx, int64_t p, int64_t id, int64_t user, int64_t now, cap_t *c) {
    assert_int_equal(store_conversation_assign(fx->s, p, id, user, now, on_conv, c), 0);
    wait_one(fx, c);
    return c->status;
}

static void set_status(fx_t *fx, int64_t p, int64_t id, const char *status) {
    cap_t c = {0};
    assert_int_equal(conv_update(fx, p, id, status, false, T0, &c), 0);
    cap_reset(&c);
}

/* Checks that a conversation result carries the visitor with this uid. */
static void assert_visitor(const store_conversation_t *cv, int64_t p, const char *uid) {
    assert_true(cv->visitor.id > 0);
    assert_int_equal(cv->visitor.id, cv->visitor_id);
    assert_int_equal(cv->visitor.project_id, p);
    assert_string_equal(cv->visitor.uid, uid);
}

/* ---- get ------------------------------------------------------------------------------------- */

static void test_conversation_get(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop"), q = make_project(fx, "other");
    int64_t cid = say(fx, p, "visitor-aaaa", "Hello", T0, NULL);
    int64_t cq = say(fx, q, "visitor-aaaa", "Hi", T0, NULL);

    /* The visitor comes with it, with what context recorded. */
    cap_t c = {0};
    assert_int_equal(store_visitor_context(fx->s, p, "visitor-aaaa", "https://shop.example/cart",
                                           T0 + 5, NULL, NULL),
                     0);
    store_wait(fx->s);
    conv_get(fx, p, cid, &c);
    assert_int_equal(c.status, 0);
    assert_int_equal(c.conv->id, cid);
    assert_int_equal(c.conv->project_id, p);
    assert_visitor(c.conv, p, "visitor-aaaa");
    assert_null(c.conv->visitor.name);
    assert_null(c.conv->visitor.email);
    assert_string_equal(c.conv->visitor.current_url, "https://shop.example/cart");
    assert_int_equal(c.conv->visitor.last_seen_at, T0 + 5);
    assert_int_equal(c.conv->visitor.created_at, T0);
    cap_reset(&c);

    /* Another project's id, an unknown id, 0 and a negative id: not found. */
    const struct {
        int64_t project, id;
    } missing[] = {{p, cq}, {q, cid}, {p, cq + 100}, {p, 0}, {p, -1}, {p + 100, cid}};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        conv_get(fx, missing[i].project, missing[i].id, &c);
        assert_int_equal(c.status, STORE_ENOTFOUND);
        cap_reset(&c);
    }
}

/* ---- list ------------------------------------------------------------------------------------ */

/* Lists and checks the ids, in order, and the total. */
static void assert_page(fx_t *fx, int64_t p, unsigned mask, int64_t offset, size_t limit,
                        const int64_t *want, size_t nwant, int64_t total) {
    cap_t c = {0};
    conv_list(fx, p, mask, offset, limit, &c);
    assert_int_equal(c.status, 0);
    if (c.n != nwant || c.total != total) {
        print_error("mask %#x offset %lld limit %zu: %zu rows (want %zu), total %lld (want %lld)\n",
                    mask, (long long)offset, limit, c.n, nwant, (long long)c.total,
                    (long long)total);
        fail();
    }
    for (size_t i = 0; i < nwant; i++) {
        assert_int_equal(c.convs[i]->id, want[i]);
        assert_int_equal(c.convs[i]->project_id, p);
        assert_true(c.convs[i]->visitor.uid != NULL);
        assert_int_equal(c.convs[i]->visitor.id, c.convs[i]->visitor_id);
    }
    cap_reset(&c);
}

static void test_conversations_list(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop"), q = make_project(fx, "other");
    /* Six conversations; activity times chosen so that creation order is not activity order,
     * with a tie (c3 and c4 at the same time: the higher id first). */
    const struct {
        const char *uid;
        int64_t at;
        const char *status;
    } rows[] = {
        {"visitor-1", T0 + 100, "open"}, {"visitor-2", T0 + 600, "pending"},
        {"visitor-3", T0 + 300, "open"}, {"visitor-4", T0 + 300, "solved"},
        {"visitor-5", T0 + 500, "spam"}, {"visitor-6", T0 + 50, "open"},
    };
    int64_t id[6];
    for (size_t i = 0; i < 6; i++)
        id[i] = say(fx, p, rows[i].uid, "hi", rows[i].at, NULL);
    /* Activity moves c1 to the top; the other project's conversations never show. */
    assert_int_equal(say(fx, p, "visitor-1", "again", T0 + 700, NULL), id[0]);
    say(fx, q, "visitor-1", "elsewhere", T0 + 900, NULL);
    for (size_t i = 0; i < 6; i++)
        if (strcmp(rows[i].status, "open") != 0)
            set_status(fx, p, id[i], rows[i].status);

    /* Newest activity first: c1 (700), c2 (600), c5 (500), c4 (300, higher id), c3 (300),
     * c6 (50). */
    const unsigned all = STORE_STATUS_ALL;
    const unsigned not_spam = STORE_STATUS_OPEN | STORE_STATUS_PENDING | STORE_STATUS_SOLVED;
    const int64_t everything[] = {id[0], id[1], id[4], id[3], id[2], id[5]};
    assert_page(fx, p, all, 0, 20, everything, 6, 6);
    const int64_t no_spam[] = {id[0], id[1], id[3], id[2], id[5]};
    assert_page(fx, p, not_spam, 0, 20, no_spam, 5, 5);
    const int64_t open[] = {id[0], id[2], id[5]};
    assert_page(fx, p, STORE_STATUS_OPEN, 0, 20, open, 3, 3);
    const int64_t pending[] = {id[1]};
    assert_page(fx, p, STORE_STATUS_PENDING, 0, 20, pending, 1, 1);
    const int64_t solved_spam[] = {id[4], id[3]};
    assert_page(fx, p, STORE_STATUS_SOLVED | STORE_STATUS_SPAM, 0, 20, solved_spam, 2, 2);
    const int64_t open_pending[] = {id[0], id[1], id[2], id[5]};
    assert_page(fx, p, STORE_STATUS_OPEN | STORE_STATUS_PENDING, 0, 20, open_pending, 4, 4);
    /* Bits beyond the four statuses are ignored; no bit matches nothing. */
    assert_page(fx, p, 0xF0u | STORE_STATUS_PENDING, 0, 20, pending, 1, 1);
    assert_page(fx, p, 0, 0, 20, NULL, 0, 0);
    assert_page(fx, p, 0xF0u, 0, 20, NULL, 0, 0);
    /* Unknown project: nothing (not an error). */
    assert_page(fx, p + q + 100, all, 0, 20, NULL, 0, 0);

    /* Pagination edges, several statuses (the mask path) and one status (the index path). */
    const struct {
        unsigned mask;
        int64_t offset;
        size_t limit;
        size_t first, count; /* the expected slice of the full order */
    } pages[] = {
        {all, 0, 2, 0, 2}, {all, 2, 2, 2, 2},    {all, 4, 2, 4, 2},       {all, 5, 2, 5, 1},
        {all, 6, 2, 0, 0}, {all, 7, 2, 0, 0},    {all, 1000000, 1, 0, 0}, {all, 0, 6, 0, 6},
        {all, 0, 1, 0, 1}, {all, 5, 1000, 5, 1},
    };
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++)
        assert_page(fx, p, pages[i].mask, pages[i].offset, pages[i].limit,
                    everything + pages[i].first, pages[i].count, 6);
    const struct {
        int64_t offset;
        size_t limit;
        size_t first, count;
    } open_pages[] = {{0, 1, 0, 1}, {1, 1, 1, 1}, {2, 1, 2, 1}, {3, 1, 0, 0}, {1, 5, 1, 2}};
    for (size_t i = 0; i < sizeof open_pages / sizeof open_pages[0]; i++)
        assert_page(fx, p, STORE_STATUS_OPEN, open_pages[i].offset, open_pages[i].limit,
                    open + open_pages[i].first, open_pages[i].count, 3);

    /* The rows carry every field and their visitor. */
    cap_t c = {0};
    conv_list(fx, p, STORE_STATUS_PENDING, 0, 1, &c);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.convs[0]->status, "pending");
    assert_string_equal(c.convs[0]->last_message_snippet, "hi");
    assert_int_equal(c.convs[0]->last_message_timestamp, T0 + 600);
    assert_int_equal(c.convs[0]->unread_count, 1);
    assert_int_equal(c.convs[0]->created_at, T0 + 600);
    assert_visitor(c.convs[0], p, "visitor-2");
    cap_reset(&c);

    /* Refused at the call: the callback never fires. */
    assert_int_equal(store_conversations_list(fx->s, p, all, 0, 0, on_conv_list, &c), PL_EINVAL);
    assert_int_equal(store_conversations_list(fx->s, p, all, -1, 10, on_conv_list, &c), PL_EINVAL);
    assert_int_equal(
        store_conversations_list(fx->s, p, all, 0, STORE_PAGE_MAX + 1, on_conv_list, &c),
        PL_ETOOBIG);
    store_wait(fx->s);
    assert_int_equal(c.calls, 0);
    assert_page(fx, p, all, 0, STORE_PAGE_MAX, everything, 6, 6);
}

/* ---- messages -------------------------------------------------------------------------------- */

static void test_messages_list(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop"), q = make_project(fx, "other");
    int64_t agent = make_user(fx, "agent@example.com", "Ann Agent");
    add_member(fx, p, agent, "agent");

    /* Seven messages: visitor, visitor, agent, visitor, agent, visitor, visitor. Another
     * conversation's messages interleave and never show. */
    int64_t mid[7], cid = 0;
    const bool by_agent[7] = {false, false, true, false, true, false, false};
    for (int i = 0; i < 7; i++) {
        char text[32];
        snprintf(text, sizeof text, "message %d", i);
        if (by_agent[i]) {
            cap_t r = {0};
            assert_int_equal(reply(fx, p, cid, agent, text, T0 + i, &r), 0);
            mid[i] = r.msg->id;
            cap_reset(&r);
        } else {
            cid = say(fx, p, "visitor-aaaa", text, T0 + i, &mid[i]);
        }
        say(fx, p, "visitor-bbbb", "noise", T0 + i, NULL);
    }
    int64_t cq = say(fx, q, "visitor-aaaa", "other project", T0, NULL);

    /* before (an index into mid, -1: none = the newest), limit -> the slice
     * mid[first .. first + count) and has_more. */
    const struct {
        int before;
        size_t limit;
        int first, count;
        bool more;
    } rows[] = {
        {-1, 3, 4, 3, true},    /* the newest three */
        {-1, 7, 0, 7, false},   /* exactly all */
        {-1, 100, 0, 7, false}, /* more than all */
        {-1, 1, 6, 1, true},    {4, 3, 1, 3, true},
        {1, 3, 0, 1, false}, /* only the first is older */
        {3, 3, 0, 3, false}, /* exactly the rest */
        {5, 3, 2, 3, true},     {6, 6, 0, 6, false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t before = rows[i].before < 0 ? 0 : mid[rows[i].before];
        cap_t c = {0};
        msg_list(fx, p, cid, before, rows[i].limit, &c);
        assert_int_equal(c.status, 0);
        if ((int)c.n != rows[i].count || c.has_more != rows[i].more) {
            print_error("row %zu: %zu messages (want %d), has_more %d\n", i, c.n, rows[i].count,
                        c.has_more);
            fail();
        }
        for (int k = 0; k < rows[i].count; k++)
            assert_int_equal(c.msgs[k]->id, mid[rows[i].first + k]);
        cap_reset(&c);
    }
    /* Before the first message: nothing older. Before an id past the end: the newest. */
    cap_t c = {0};
    msg_list(fx, p, cid, mid[0], 5, &c);
    assert_int_equal(c.status, 0);
    assert_int_equal(c.n, 0);
    assert_false(c.has_more);
    cap_reset(&c);
    msg_list(fx, p, cid, INT64_MAX, 2, &c);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.msgs[0]->id, mid[5]);
    assert_int_equal(c.msgs[1]->id, mid[6]);
    assert_true(c.has_more);
    cap_reset(&c);

    /* The fields: visitor and agent messages, each with the conversation's visitor uid. */
    msg_list(fx, p, cid, 0, 7, &c);
    for (int i = 0; i < 7; i++) {
        const store_message_t *m = c.msgs[i];
        char text[32];
        snprintf(text, sizeof text, "message %d", i);
        assert_string_equal(m->content, text);
        assert_int_equal(m->conversation_id, cid);
        assert_int_equal(m->project_id, p);
        assert_string_equal(m->visitor_uid, "visitor-aaaa");
        assert_string_equal(m->status, "sent");
        assert_int_equal(m->created_at, T0 + i);
        assert_int_equal(m->from_customer, !by_agent[i]);
        if (by_agent[i]) {
            char sender[24];
            snprintf(sender, sizeof sender, "%lld", (long long)agent);
            assert_string_equal(m->sender_id, sender);
            assert_int_equal(m->user_id, agent);
            assert_null(m->temp_id);
        } else {
            assert_string_equal(m->sender_id, "visitor-aaaa");
            assert_int_equal(m->user_id, 0);
            assert_non_null(m->temp_id);
        }
    }
    cap_reset(&c);

    /* Another project's conversation, or an unknown one: not found. */
    const struct { int64_t project, id; } missing[] = {{p, cq}, {q, cid}, {p, cq + 100}, {p, 0}};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        msg_list(fx, missing[i].project, missing[i].id, 0, 10, &c);
        assert_int_equal(c.status, STORE_ENOTFOUND);
        cap_reset(&c);
    }

    /* Refused at the call. */
    assert_int_equal(store_messages_list(fx->s, p, cid, 0, 0, on_msg_list, &c), PL_EINVAL);
    assert_int_equal(store_messages_list(fx->s, p, cid, -5, 10, on_msg_list, &c), PL_EINVAL);
    assert_int_equal(store_messages_list(fx->s, p, cid, 0, STORE_PAGE_MAX + 1, on_msg_list, &c),
                     PL_ETOOBIG);
    store_wait(fx->s);
    assert_int_equal(c.calls, 0);
}

/* ---- replies --------------------------------------------------------------------------------- */

static void test_agent_reply(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop"), q = make_project(fx, "other");
    int64_t agent = make_user(fx, "agent@example.com", "Ann Agent");
    add_member(fx, p, agent, "agent");
    int64_t cid = say(fx, p, "visitor-aaaa", "Hello", T0, NULL);
    say(fx, p, "visitor-aaaa", "Anyone?", T0 + 10, NULL);
    int64_t cq = say(fx, q, "visitor-bbbb", "Hi", T0, NULL);
    set_status(fx, p, cid, "pending");

    /* A long reply: stored whole, the snippet cut at 100 code points (2-byte characters). */
    char text[512] = "";
    for (int i = 0; i < 120; i++)
        strcat(text, "é");
    cap_t r = {0};
    assert_int_equal(reply(fx, p, cid, agent, text, T0 + 1000, &r), 0);
    const store_message_t *m = r.msg;
    assert_true(m->id > 0);
    assert_int_equal(m->conversation_id, cid);
    assert_int_equal(m->project_id, p);
    assert_int_equal(m->visitor_id, r.conv->visitor_id);
    assert_string_equal(m->visitor_uid, "visitor-aaaa");
    assert_string_equal(m->content, text);
    char sender[24];
    snprintf(sender, sizeof sender, "%lld", (long long)agent);
    assert_string_equal(m->sender_id, sender);
    assert_false(m->from_customer);
    assert_int_equal(m->user_id, agent);
    assert_string_equal(m->status, "sent");
    assert_null(m->temp_id);
    assert_null(m->content_type);
    assert_null(m->metadata_json);
    assert_int_equal(m->created_at, T0 + 1000);
    /* The conversation: last message fields and updated_at moved; unread count and status
     * kept; its visitor (whose sockets get agentReplied) comes with it. */
    const store_conversation_t *cv = r.conv;
    assert_int_equal(cv->id, cid);
    assert_int_equal(strlen(cv->last_message_snippet), 200);
    assert_int_equal(memcmp(cv->last_message_snippet, text, 200), 0);
    assert_int_equal(cv->last_message_timestamp, T0 + 1000);
    assert_int_equal(cv->updated_at, T0 + 1000);
    assert_int_equal(cv->created_at, T0);
    assert_int_equal(cv->unread_count, 2);
    assert_string_equal(cv->status, "pending");
    assert_visitor(cv, p, "visitor-aaaa");
    /* What the result says is what is stored. */
    cap_t g = {0};
    conv_get(fx, p, cid, &g);
    assert_string_equal(g.conv->last_message_snippet, cv->last_message_snippet);
    assert_int_equal(g.conv->last_message_timestamp, T0 + 1000);
    assert_int_equal(g.conv->updated_at, T0 + 1000);
    assert_int_equal(g.conv->unread_count, 2);
    cap_reset(&g);
    cap_reset(&r);

    /* The widget's history has it, after the visitor's messages. */
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM messages WHERE NOT from_customer"), 1);
    cap_t h = {0};
    msg_list(fx, p, cid, 0, 10, &h);
    assert_int_equal(h.n, 3);
    assert_false(h.msgs[2]->from_customer);
    cap_reset(&h);

    /* Several replies never collide (no temp_id), and the visitor's next message lands in the
     * same conversation. */
    assert_int_equal(reply(fx, p, cid, agent, "one", T0 + 1001, &r), 0);
    cap_reset(&r);
    assert_int_equal(reply(fx, p, cid, agent, "one", T0 + 1002, &r), 0);
    cap_reset(&r);
    assert_int_equal(say(fx, p, "visitor-aaaa", "thanks", T0 + 1003, NULL), cid);

    /* Another project's conversation, unknown ones, an unknown user: not found, nothing
     * written. */
    int64_t before = fx_count(fx, "SELECT count(*) FROM messages");
    const struct {
        int64_t project, id, user;
    } missing[] = {{p, cq, agent}, {q, cid, agent}, {p, cq + 100, agent}, {p, cid, agent + 50}};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        assert_int_equal(
            reply(fx, missing[i].project, missing[i].id, missing[i].user, "x", T0 + 2000, &r),
            STORE_ENOTFOUND);
        cap_reset(&r);
    }
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM messages"), before);
    conv_get(fx, q, cq, &g);
    assert_string_equal(g.conv->last_message_snippet, "Hi");
    cap_reset(&g);

    /* Refused at the call. */
    assert_int_equal(store_agent_reply(fx->s, p, cid, agent, NULL, T0, on_reply, &r), PL_EINVAL);
    store_wait(fx->s);
    assert_int_equal(r.calls, 0);
}

/* ---- status and read ------------------------------------------------------------------------- */

static void test_conversation_update(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop"), q = make_project(fx, "other");
    int64_t cid = say(fx, p, "visitor-aaaa", "one", T0, NULL);
    say(fx, p, "visitor-aaaa", "two", T0 + 1, NULL);
    say(fx, p, "visitor-aaaa", "three", T0 + 2, NULL);
    int64_t cq = say(fx, q, "visitor-aaaa", "other", T0, NULL);

    /* Each row runs on what the previous rows left. */
    const struct {
        const char *status;
        bool read;
        int64_t now;
        const char *want_status;
        int64_t want_unread, want_updated;
    } rows[] = {
        {NULL, false, T0 + 10, "open", 3, T0 + 2}, /* nothing asked: nothing moves */
        {"pending", false, T0 + 20, "pending", 3, T0 + 20},
        {NULL, true, T0 + 30, "pending", 0, T0 + 30},
        {"solved", true, T0 + 40, "solved", 0, T0 + 40},
        {"spam", false, T0 + 50, "spam", 0, T0 + 50},
        {"open", false, T0 + 60, "open", 0, T0 + 60},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        cap_t c = {0};
        assert_int_equal(conv_update(fx, p, cid, rows[i].status, rows[i].read, rows[i].now, &c), 0);
        assert_string_equal(c.conv->status, rows[i].want_status);
        assert_int_equal(c.conv->unread_count, rows[i].want_unread);
        assert_int_equal(c.conv->updated_at, rows[i].want_updated);
        assert_int_equal(c.conv->last_message_timestamp, T0 + 2);
        assert_visitor(c.conv, p, "visitor-aaaa");
        cap_reset(&c);
    }

    /* A status the schema refuses: PL_EINVAL, nothing changes (read neither). */
    say(fx, p, "visitor-aaaa", "four", T0 + 70, NULL);
    const char *bad[] = {"closed", "", "OPEN", "open "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cap_t c = {0};
        assert_int_equal(conv_update(fx, p, cid, bad[i], true, T0 + 80, &c), PL_EINVAL);
        cap_reset(&c);
    }
    cap_t c = {0};
    conv_get(fx, p, cid, &c);
    assert_string_equal(c.conv->status, "open");
    assert_int_equal(c.conv->unread_count, 1);
    assert_int_equal(c.conv->updated_at, T0 + 70);
    cap_reset(&c);

    /* Another project's, unknown: not found, and the other project's row is untouched. */
    const struct { int64_t project, id; } missing[] = {{p, cq}, {q, cid}, {p, cq + 100}};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        assert_int_equal(
            conv_update(fx, missing[i].project, missing[i].id, "solved", true, T0 + 90, &c),
            STORE_ENOTFOUND);
        cap_reset(&c);
    }
    conv_get(fx, q, cq, &c);
    assert_string_equal(c.conv->status, "open");
    assert_int_equal(c.conv->unread_count, 1);
    cap_reset(&c);

    /* Solved by an agent: under limit_to_active the visitor's next message starts a new
     * conversation. */
    set_status(fx, p, cid, "solved");
    int64_t next = say(fx, p, "visitor-aaaa", "new question", T0 + 100, NULL);
    assert_true(next != cid);
}

/* ---- assignments ----------------------------------------------------------------------------- */

static void test_conversation_assign(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop"), q = make_project(fx, "other");
    int64_t ann = make_user(fx, "ann@example.com", "Ann");
    int64_t bob = make_user(fx, "bob@example.com", "Bob");
    int64_t eve = make_user(fx, "eve@example.com", "Eve"); /* a member of q only */
    add_member(fx, p, ann, "manager");
    add_member(fx, p, bob, "agent");
    add_member(fx, q, eve, "agent");
    int64_t cid = say(fx, p, "visitor-aaaa", "help", T0, NULL);
    int64_t cq = say(fx, q, "visitor-aaaa", "help", T0, NULL);

    cap_t c = {0};
    assert_int_equal(conv_assign(fx, p, cid, ann, T0 + 10, &c), 0);
    assert_int_equal(c.conv->assignee_id, ann);
    assert_int_equal(c.conv->updated_at, T0 + 10);
    assert_visitor(c.conv, p, "visitor-aaaa");
    cap_reset(&c);
    assert_int_equal(conv_assign(fx, p, cid, bob, T0 + 20, &c), 0);
    assert_int_equal(c.conv->assignee_id, bob);
    cap_reset(&c);

    /* Not a member of this project (another project's member, an unknown user): PL_EINVAL and
     * the assignment stays. */
    const int64_t not_members[] = {eve, bob + eve + 100, -1};
    for (size_t i = 0; i < sizeof not_members / sizeof not_members[0]; i++) {
        assert_int_equal(conv_assign(fx, p, cid, not_members[i], T0 + 30, &c), PL_EINVAL);
        cap_reset(&c);
    }
    conv_get(fx, p, cid, &c);
    assert_int_equal(c.conv->assignee_id, bob);
    assert_int_equal(c.conv->updated_at, T0 + 20);
    cap_reset(&c);

    /* Unassign. */
    assert_int_equal(conv_assign(fx, p, cid, 0, T0 + 40, &c), 0);
    assert_int_equal(c.conv->assignee_id, 0);
    assert_int_equal(c.conv->updated_at, T0 + 40);
    cap_reset(&c);
    assert_int_equal(conv_assign(fx, p, cid, 0, T0 + 41, &c), 0); /* again: fine */
    cap_reset(&c);

    /* Another project's conversation, an unknown one: not found, also with an assignee that
     * is not a member (not found comes first). */
    const struct {
        int64_t project, id, user;
    } missing[] = {{p, cq, ann},       {p, cq, 0},         {q, cid, eve},
                   {p, cq + 100, ann}, {p, cq + 100, eve}, {q, cid, ann}};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        assert_int_equal(
            conv_assign(fx, missing[i].project, missing[i].id, missing[i].user, T0 + 50, &c),
            STORE_ENOTFOUND);
        cap_reset(&c);
    }
    conv_get(fx, q, cq, &c);
    assert_int_equal(c.conv->assignee_id, 0);
    cap_reset(&c);
    assert_int_equal(conv_assign(fx, q, cq, eve, T0 + 60, &c), 0);
    assert_int_equal(c.conv->assignee_id, eve);
    cap_reset(&c);
}

/* ---- deletion -------------------------------------------------------------------------------- */

static void test_conversation_delete(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop"), q = make_project(fx, "other");
    int64_t agent = make_user(fx, "agent@example.com", "Ann");
    add_member(fx, p, agent, "agent");
    int64_t cid = say(fx, p, "visitor-aaaa", "one", T0, NULL);
    say(fx, p, "visitor-aaaa", "two", T0 + 1, NULL);
    cap_t r = {0};
    assert_int_equal(reply(fx, p, cid, agent, "answer", T0 + 2, &r), 0);
    cap_reset(&r);
    int64_t keep = say(fx, p, "visitor-bbbb", "stay", T0, NULL);
    int64_t cq = say(fx, q, "visitor-aaaa", "other", T0, NULL);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM messages"), 5);

    /* Another project's, unknown: not found, nothing deleted. */
    cap_t c = {0};
    const struct { int64_t project, id; } missing[] = {{p, cq}, {q, cid}, {p, cq + 100}};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        assert_int_equal(
            store_conversation_delete(fx->s, missing[i].project, missing[i].id, on_conv, &c), 0);
        wait_one(fx, &c);
        assert_int_equal(c.status, STORE_ENOTFOUND);
        cap_reset(&c);
    }
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM conversations"), 3);

    /* The conversation as it was, with its visitor; its messages go, the others stay. */
    assert_int_equal(store_conversation_delete(fx->s, p, cid, on_conv, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.status, 0);
    assert_int_equal(c.conv->id, cid);
    assert_string_equal(c.conv->last_message_snippet, "answer");
    assert_visitor(c.conv, p, "visitor-aaaa");
    cap_reset(&c);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM messages"), 2);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM conversations"), 2);
    conv_get(fx, p, cid, &c);
    assert_int_equal(c.status, STORE_ENOTFOUND);
    cap_reset(&c);
    conv_get(fx, p, keep, &c);
    assert_int_equal(c.status, 0);
    cap_reset(&c);
    msg_list(fx, p, cid, 0, 10, &c);
    assert_int_equal(c.status, STORE_ENOTFOUND);
    cap_reset(&c);

    /* Twice: not found. The visitor stays, and its next message opens a new conversation
     * (ids are never reused). */
    assert_int_equal(store_conversation_delete(fx->s, p, cid, on_conv, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.status, STORE_ENOTFOUND);
    cap_reset(&c);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM visitors"), 3);
    int64_t next = say(fx, p, "visitor-aaaa", "back", T0 + 10, NULL);
    assert_true(next > cq);
}

/* A conversation with many messages goes in one request: its savepoint's journal grows past
 * SQLite's in-memory spill threshold and spills to a temporary file (a regression test: with a
 * spill threshold over 128 KiB SQLite's unix VFS wrote the spilled journal short, and the
 * request failed with "database or disk is full"). */
static void test_conversation_delete_large(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop");
    int64_t cid = say(fx, p, "visitor-aaaa", "first", T0, NULL);
    char sql[512];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
             "INSERT INTO messages (conversation_id, project_id, visitor_id, content, sender_id, "
             "from_customer, temp_id, created_at) SELECT c.id, c.project_id, c.visitor_id, "
             "%s, 'visitor-aaaa', TRUE, 'bulk-' || i, %lld "
             "FROM n, conversations AS c WHERE c.id = %lld",
             tdb_pick(&fx->db, "printf('%.200c', 'x')", "repeat('x', 200)"), (long long)T0,
             (long long)cid);
    fx_exec(fx, sql);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM messages"), 20001);

    cap_t c = {0};
    assert_int_equal(store_conversation_delete(fx->s, p, cid, on_conv, &c), 0);
    wait_one(fx, &c);
    if (c.status != 0)
        print_error("delete: %s\n", store_strerror(c.status));
    assert_int_equal(c.status, 0);
    cap_reset(&c);
    assert_int_equal(fx_count(fx, "SELECT count(*) FROM messages"), 0);
}

/* ---- visitors -------------------------------------------------------------------------------- */

static void test_visitor_get(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop"), q = make_project(fx, "other");
    cap_t c = {0};
    assert_int_equal(store_visitor_identify(fx->s, p, "visitor-aaaa", T0, on_visitor, &c), 0);
    wait_one(fx, &c);
    int64_t vid = c.visitor->id;
    cap_reset(&c);
    assert_int_equal(store_visitor_identify(fx->s, q, "visitor-bbbb", T0, on_visitor, &c), 0);
    wait_one(fx, &c);
    int64_t vq = c.visitor->id;
    cap_reset(&c);
    assert_int_equal(store_visitor_context(fx->s, p, "visitor-aaaa", "https://shop.example/",
                                           T0 + 9, NULL, NULL),
                     0);
    store_wait(fx->s);

    assert_int_equal(store_visitor_get(fx->s, p, vid, on_visitor, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.status, 0);
    assert_int_equal(c.visitor->id, vid);
    assert_int_equal(c.visitor->project_id, p);
    assert_string_equal(c.visitor->uid, "visitor-aaaa");
    assert_string_equal(c.visitor->current_url, "https://shop.example/");
    assert_int_equal(c.visitor->last_seen_at, T0 + 9);
    assert_int_equal(c.visitor->created_at, T0);
    cap_reset(&c);

    const struct { int64_t project, id; } missing[] = {{p, vq}, {q, vid}, {p, vq + 100}, {p, 0}};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        assert_int_equal(
            store_visitor_get(fx->s, missing[i].project, missing[i].id, on_visitor, &c), 0);
        wait_one(fx, &c);
        assert_int_equal(c.status, STORE_ENOTFOUND);
        cap_reset(&c);
    }
}

/* ---- the 100,000-conversation benchmark ------------------------------------------------------ */

#define BENCH_CONVERSATIONS 100000
#define BENCH_RUNS 5

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median latency of a conversations_list call (submit to callback), in ms; *c keeps the
 * last run's result. */
static double time_list(fx_t *fx, int64_t p, unsigned mask, int64_t offset, size_t limit,
                        cap_t *c) {
    double t[BENCH_RUNS];
    for (int i = 0; i < BENCH_RUNS; i++) {
        cap_reset(c);
        double t0 = now_s();
        conv_list(fx, p, mask, offset, limit, c);
        t[i] = (now_s() - t0) * 1000.0;
        assert_int_equal(c->status, 0);
    }
    qsort(t, BENCH_RUNS, sizeof t[0], cmp_double);
    return t[BENCH_RUNS / 2];
}

/* The id at position `offset` of the project's conversations in mask order, computed with a
 * plain query on the second connection (the reference for the store's answer). */
static int64_t reference_id(fx_t *fx, int64_t p, const char *statuses, int64_t offset) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT id FROM conversations WHERE project_id = %lld AND status IN (%s) "
             "ORDER BY last_message_timestamp DESC, id DESC LIMIT 1 OFFSET %lld",
             (long long)p, statuses, (long long)offset);
    return fx_count(fx, sql);
}

static void test_list_benchmark(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "bench"), q = make_project(fx, "neighbour");
    /* 100,000 visitors and conversations in p (statuses: 5% spam, 10% solved, ~12% pending,
     * the rest open; activity times scattered), 1,000 in q; one transaction. */
    char sql[1024];
    fx_exec(fx, "BEGIN");
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
             "INSERT INTO visitors (project_id, uid, last_seen_at, created_at) "
             "SELECT CASE WHEN i <= %d THEN %lld ELSE %lld END, 'bench-' || i, %lld, %lld FROM n",
             BENCH_CONVERSATIONS + 1000, BENCH_CONVERSATIONS, (long long)p, (long long)q,
             (long long)T0, (long long)T0);
    fx_exec(fx, sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO conversations (project_id, visitor_id, status, last_message_snippet, "
             "last_message_timestamp, unread_count, created_at, updated_at) "
             "SELECT project_id, id, CASE WHEN id %% 20 = 0 THEN 'spam' WHEN id %% 10 = 1 "
             "THEN 'solved' WHEN id %% 8 = 3 THEN 'pending' ELSE 'open' END, 'hello there', "
             "%lld + (id * 7919) %% 3600000, 1, %lld, %lld FROM visitors ORDER BY id",
             (long long)T0, (long long)T0, (long long)T0);
    fx_exec(fx, sql);
    fx_exec(fx, "COMMIT");
    snprintf(sql, sizeof sql, "SELECT count(*) FROM conversations WHERE project_id = %lld",
             (long long)p);
    assert_int_equal(fx_count(fx, sql), BENCH_CONVERSATIONS);

    const unsigned not_spam = STORE_STATUS_OPEN | STORE_STATUS_PENDING | STORE_STATUS_SOLVED;
    const char *not_spam_sql = "'open', 'pending', 'solved'";
    cap_t c = {0};
    const struct {
        const char *what;
        unsigned mask;
        const char *statuses;
        int64_t offset;
    } runs[] = {
        {"all but spam, page 1", not_spam, not_spam_sql, 0},
        {"all but spam, offset 50,000", not_spam, not_spam_sql, 50000},
        {"all but spam, last page (offset 94,980)", not_spam, not_spam_sql, 94980},
        {"open only, page 1", STORE_STATUS_OPEN, "'open'", 0},
        {"open only, offset 60,000", STORE_STATUS_OPEN, "'open'", 60000},
        {"spam only, page 1", STORE_STATUS_SPAM, "'spam'", 0},
        {"every status, offset 99,980", STORE_STATUS_ALL, "'open','pending','solved','spam'",
         99980},
    };
    printf("conversations_list with %d conversations in the project (limit 20, median of %d, "
           "submit to callback):\n",
           BENCH_CONVERSATIONS, BENCH_RUNS);
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        double ms = time_list(fx, p, runs[i].mask, runs[i].offset, 20, &c);
        printf("  %-42s %7.2f ms (total %lld)\n", runs[i].what, ms, (long long)c.total);
        /* Right as well as fast: the page starts where a plain query says. */
        assert_true(c.n > 0);
        assert_int_equal(c.convs[0]->id, reference_id(fx, p, runs[i].statuses, runs[i].offset));
        for (size_t k = 1; k < c.n; k++) {
            const store_conversation_t *a = c.convs[k - 1], *b = c.convs[k];
            assert_true(a->last_message_timestamp > b->last_message_timestamp ||
                        (a->last_message_timestamp == b->last_message_timestamp && a->id > b->id));
        }
    }
    fflush(stdout);
    cap_reset(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_conversation_get, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_conversations_list, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_messages_list, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_agent_reply, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_conversation_update, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_conversation_assign, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_conversation_delete, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_conversation_delete_large, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_visitor_get, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_list_benchmark, setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
