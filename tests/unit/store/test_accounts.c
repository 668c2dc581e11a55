/* Unit tests for the account and project operations of src/store/store.h that serve the agents'
 * HTTP API (docs/http-api.md "Accounts" and "Projects") against a real, fresh database per test
 * (testdb.h: SQLite, or PostgreSQL when PARLEY_TEST_DATABASE is set): refresh tokens (families,
 * rotation, reuse detection revoking the family, expiry at the boundary, revocation, logout
 * everywhere, pruning of long-expired tokens), projects created with their manager, the projects of
 * a user with roles, the membership check, renaming and replacing domains, widget settings, member
 * lists, and the copies of the new result types. A second, plain connection to the same
 * database checks what was written. Each test runs its own uv loop to completion and checks that
 * every handle was closed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/store.h"
#include "testdb.h"
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

/* A fixed, realistic wall-clock origin for the now_ms arguments. */
#define T0 INT64_C(1764218869000)
#define DAY INT64_C(86400000)

/* ---- fixture --------------------------------------------------------------------------------- */

static int setup(void **state) {
    return fx_setup(state, "accounts");
}

/* The first column of the first row of sql with the text parameter ?1 (may be NULL), as an
 * integer; -1 when there is no row or the value is NULL. */
static int64_t fx_int(fx_t *fx, const char *sql, const char *text) {
    bool ok;
    int64_t v = tdb_int(&fx->db, sql, text, &ok);
    if (!ok) {
        print_error("%s: %s\n", sql, tdb_errmsg(&fx->db));
        fail();
    }
    return v;
}

/* revoked_at and used_at of the token with this hash (-1: NULL or no such token). */
static int64_t revoked_at(fx_t *fx, const char *hash) {
    return fx_int(fx, "SELECT revoked_at FROM refresh_tokens WHERE token_hash = ?1", hash);
}
static int64_t used_at(fx_t *fx, const char *hash) {
    return fx_int(fx, "SELECT used_at FROM refresh_tokens WHERE token_hash = ?1", hash);
}

/* ---- callback capture ------------------------------------------------------------------------ */

typedef struct {
    int calls;
    int status;
    int64_t id;
    store_refresh_t refresh;
    store_project_t *project;   /* copies, freed by cap_reset */
    store_project_t **projects; /* project lists */
    store_member_t **members;
    size_t n; /* entries of projects or members */
    store_user_t *user;
} cap_t;

static void cap_reset(cap_t *c) {
    store_project_free(c->project);
    for (size_t i = 0; c->projects && i < c->n; i++)
        store_project_free(c->projects[i]);
    free(c->projects);
    for (size_t i = 0; c->members && i < c->n; i++)
        store_member_free(c->members[i]);
    free(c->members);
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

static void on_id(void *ud, int status, int64_t id) {
    cap_t *c = ud;
    c->calls++;
    c->status = status != 0 && id != 0 ? BROKEN : status;
    c->id = id;
}

static void on_refresh(void *ud, int status, const store_refresh_t *r) {
    cap_t *c = ud;
    c->calls++;
    c->status = (status == 0) == (r != NULL) ? status : BROKEN;
    if (r)
        c->refresh = *r;
}

static void on_project(void *ud, int status, const store_project_t *p) {
    cap_t *c = ud;
    c->calls++;
    c->status = (status == 0) == (p != NULL) ? status : BROKEN;
    if (p)
        c->project = store_project_dup(p);
}

static void on_project_list(void *ud, int status, const store_project_t *v, size_t n) {
    cap_t *c = ud;
    c->calls++;
    c->status = (status != 0 && (v || n)) || (n && !v) ? BROKEN : status;
    if (n) {
        c->projects = calloc(n, sizeof *c->projects);
        for (size_t i = 0; c->projects && i < n; i++)
            c->projects[i] = store_project_dup(&v[i]);
        c->n = c->projects ? n : 0;
    }
}

static void on_member_list(void *ud, int status, const store_member_t *v, size_t n) {
    cap_t *c = ud;
    c->calls++;
    c->status = (status != 0 && (v || n)) || (n && !v) ? BROKEN : status;
    if (n) {
        c->members = calloc(n, sizeof *c->members);
        for (size_t i = 0; c->members && i < n; i++)
            c->members[i] = store_member_dup(&v[i]);
        c->n = c->members ? n : 0;
    }
}

static void on_user(void *ud, int status, const store_user_t *u) {
    cap_t *c = ud;
    c->calls++;
    c->status = (status == 0) == (u != NULL) ? status : BROKEN;
    if (u)
        c->user = store_user_dup(u);
}

/* ---- synchronous helpers over the async API -------------------------------------------------- */

static void wait_one(fx_t *fx, const cap_t *c) {
    store_wait(fx->s);
    assert_int_equal(c->calls, 1);
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

static int64_t make_project(fx_t *fx, const char *name, const char *const *domains, size_t n) {
    cap_t c = {0};
    assert_int_equal(store_project_create(fx->s, name, domains, n, on_project, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.status, 0);
    int64_t id = c.project->id;
    cap_reset(&c);
    return id;
}

static void add_member(fx_t *fx, int64_t p, int64_t u, const char *role) {
    cap_t c = {0};
    assert_int_equal(store_member_add(fx->s, p, u, role, on_done, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.status, 0);
}

/* store_refresh_create; returns the status, *family the family. */
static int create_token(fx_t *fx, int64_t user, int64_t family, const char *hash, int64_t expires,
                        int64_t now, int64_t *family_out) {
    cap_t c = {0};
    assert_int_equal(store_refresh_create(fx->s, user, family, hash, expires, now, on_id, &c), 0);
    wait_one(fx, &c);
    if (family_out)
        *family_out = c.id;
    return c.status;
}

/* store_refresh_rotate; returns the outcome (STORE_TOKEN_*) and checks the status is 0. */
static int rotate(fx_t *fx, const char *old_hash, const char *new_hash, int64_t expires,
                  int64_t now, store_refresh_t *r) {
    cap_t c = {0};
    assert_int_equal(store_refresh_rotate(fx->s, old_hash, new_hash, expires, now, on_refresh, &c),
                     0);
    wait_one(fx, &c);
    assert_int_equal(c.status, 0);
    if (r)
        *r = c.refresh;
    return c.refresh.status;
}

static int done_status(fx_t *fx, cap_t *c) {
    wait_one(fx, c);
    return c->status;
}

/* ---- refresh tokens -------------------------------------------------------------------------- */

static void test_refresh_create(void **state) {
    fx_t *fx = *state;
    int64_t ann = make_user(fx, "ann@example.com", "Ann");
    int64_t bob = make_user(fx, "bob@example.com", "Bob");
    const int64_t exp = T0 + 30 * DAY;

    /* A login starts a family numbered after its first token. */
    int64_t f1 = 0, f2 = 0, f3 = 0;
    assert_int_equal(create_token(fx, ann, 0, "hash-a1", exp, T0, &f1), 0);
    assert_true(f1 > 0);
    assert_int_equal(fx_int(fx, "SELECT id FROM refresh_tokens WHERE token_hash = ?1", "hash-a1"),
                     f1);
    assert_int_equal(
        fx_int(fx, "SELECT family_id FROM refresh_tokens WHERE token_hash = ?1", "hash-a1"), f1);
    assert_int_equal(
        fx_int(fx, "SELECT expires_at FROM refresh_tokens WHERE token_hash = ?1", "hash-a1"), exp);
    assert_int_equal(
        fx_int(fx, "SELECT created_at FROM refresh_tokens WHERE token_hash = ?1", "hash-a1"), T0);
    assert_int_equal(used_at(fx, "hash-a1"), -1);
    assert_int_equal(revoked_at(fx, "hash-a1"), -1);
    /* A second login: a second family. Joining a live family of the same user: that family. */
    assert_int_equal(create_token(fx, ann, 0, "hash-a2", exp, T0, &f2), 0);
    assert_true(f2 != f1);
    assert_int_equal(create_token(fx, ann, f1, "hash-a3", exp, T0, &f3), 0);
    assert_int_equal(f3, f1);

    /* Refused: someone else's family, an unknown family, an unknown user, a hash already
     * stored, an empty hash. Nothing is written. */
    int64_t fb = 0;
    assert_int_equal(create_token(fx, bob, 0, "hash-b1", exp, T0, &fb), 0);
    const struct {
        int64_t user, family;
        const char *hash;
        int status;
    } rows[] = {
        {bob, f1, "hash-x1", STORE_ENOTFOUND},
        {ann, fb, "hash-x2", STORE_ENOTFOUND},
        {ann, fb + 100, "hash-x3", STORE_ENOTFOUND},
        {bob + 100, 0, "hash-x4", STORE_ENOTFOUND},
        {ann, 0, "hash-a1", STORE_ECONFLICT},
        {bob, fb, "hash-a2", STORE_ECONFLICT},
        {ann, 0, "", PL_EINVAL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t f = -1;
        int st = create_token(fx, rows[i].user, rows[i].family, rows[i].hash, exp, T0, &f);
        if (st != rows[i].status)
            print_error("row %zu: %s\n", i, store_strerror(st));
        assert_int_equal(st, rows[i].status);
        assert_int_equal(f, 0);
    }
    assert_int_equal(fx_int(fx, "SELECT count(*) FROM refresh_tokens", NULL), 4);

    /* A family with a revoked token (logged out, or reuse detected) takes no new token. */
    cap_t c = {0};
    assert_int_equal(store_refresh_revoke(fx->s, "hash-a2", T0 + 1, on_done, &c), 0);
    assert_int_equal(done_status(fx, &c), 0);
    assert_int_equal(create_token(fx, ann, f2, "hash-a4", exp, T0 + 2, NULL), STORE_ENOTFOUND);

    /* Refused at the call. */
    memset(&c, 0, sizeof c);
    assert_int_equal(store_refresh_create(fx->s, ann, 0, NULL, exp, T0, on_id, &c), PL_EINVAL);
    store_wait(fx->s);
    assert_int_equal(c.calls, 0);
}

static void test_refresh_rotate(void **state) {
    fx_t *fx = *state;
    int64_t ann = make_user(fx, "ann@example.com", "Ann");
    const int64_t ttl = 30 * DAY;
    int64_t fam = 0, other = 0;
    assert_int_equal(create_token(fx, ann, 0, "t1", T0 + ttl, T0, &fam), 0);
    assert_int_equal(create_token(fx, ann, 0, "laptop-1", T0 + ttl, T0, &other), 0);

    /* Rotation: t1 -> t2 -> t3, each in the family, the old one marked used. */
    store_refresh_t r;
    assert_int_equal(rotate(fx, "t1", "t2", T0 + 1000 + ttl, T0 + 1000, &r), STORE_TOKEN_OK);
    assert_int_equal(r.user_id, ann);
    assert_int_equal(r.family_id, fam);
    assert_int_equal(used_at(fx, "t1"), T0 + 1000);
    assert_int_equal(revoked_at(fx, "t1"), -1);
    assert_int_equal(fx_int(fx, "SELECT family_id FROM refresh_tokens WHERE token_hash = ?1", "t2"),
                     fam);
    assert_int_equal(
        fx_int(fx, "SELECT expires_at FROM refresh_tokens WHERE token_hash = ?1", "t2"),
        T0 + 1000 + ttl);
    assert_int_equal(rotate(fx, "t2", "t3", T0 + 2000 + ttl, T0 + 2000, &r), STORE_TOKEN_OK);
    assert_int_equal(r.family_id, fam);

    /* Unknown: nothing known, nothing changes. */
    assert_int_equal(rotate(fx, "never-issued", "t9", T0 + ttl, T0 + 2500, &r),
                     STORE_TOKEN_UNKNOWN);
    assert_int_equal(r.user_id, 0);
    assert_int_equal(r.family_id, 0);
    assert_int_equal(fx_int(fx, "SELECT count(*) FROM refresh_tokens WHERE token_hash = ?1", "t9"),
                     0);

    /* A new hash that is already stored: a conflict, and the old token stays live. */
    cap_t c = {0};
    assert_int_equal(
        store_refresh_rotate(fx->s, "t3", "laptop-1", T0 + ttl, T0 + 2600, on_refresh, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.status, STORE_ECONFLICT);
    assert_int_equal(used_at(fx, "t3"), -1);

    /* Reuse: t1 (used) presented again. The family is revoked, t3 included; the other login
     * is untouched; the thief's token (t1) and the owner's (t3) are both refused now. */
    assert_int_equal(rotate(fx, "t1", "t4", T0 + 3000 + ttl, T0 + 3000, &r), STORE_TOKEN_REUSED);
    assert_int_equal(r.user_id, ann);
    assert_int_equal(r.family_id, fam);
    const char *family[] = {"t1", "t2", "t3"};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(revoked_at(fx, family[i]), T0 + 3000);
    assert_int_equal(fx_int(fx, "SELECT count(*) FROM refresh_tokens WHERE token_hash = ?1", "t4"),
                     0);
    assert_int_equal(revoked_at(fx, "laptop-1"), -1);
    assert_int_equal(rotate(fx, "t3", "t5", T0 + 4000 + ttl, T0 + 4000, &r), STORE_TOKEN_REUSED);
    assert_int_equal(revoked_at(fx, "t3"), T0 + 3000); /* the first revocation time stays */
    assert_int_equal(rotate(fx, "laptop-1", "laptop-2", T0 + 4000 + ttl, T0 + 4000, &r),
                     STORE_TOKEN_OK);
    assert_int_equal(r.family_id, other);

    /* Expiry, at the boundary: valid until expires_at, not at it. An expired token changes
     * nothing. */
    assert_int_equal(create_token(fx, ann, 0, "e1", T0 + 10000, T0, NULL), 0);
    assert_int_equal(create_token(fx, ann, 0, "e2", T0 + 10000, T0, NULL), 0);
    assert_int_equal(rotate(fx, "e1", "e1-next", T0 + 20000, T0 + 9999, &r), STORE_TOKEN_OK);
    assert_int_equal(rotate(fx, "e2", "e2-next", T0 + 20000, T0 + 10000, &r), STORE_TOKEN_EXPIRED);
    assert_int_equal(r.user_id, ann);
    assert_true(r.family_id > 0);
    assert_int_equal(used_at(fx, "e2"), -1);
    assert_int_equal(revoked_at(fx, "e2"), -1);
    assert_int_equal(
        fx_int(fx, "SELECT count(*) FROM refresh_tokens WHERE token_hash = ?1", "e2-next"), 0);
    assert_int_equal(rotate(fx, "e2", "e2-next", T0 + 20000, T0 + 50000, &r), STORE_TOKEN_EXPIRED);
    /* A used token past its expiry is still recognised as reused. */
    assert_int_equal(rotate(fx, "e1", "e1-other", T0 + 90000, T0 + 60000, &r), STORE_TOKEN_REUSED);

    /* Refused at the call. */
    memset(&c, 0, sizeof c);
    assert_int_equal(store_refresh_rotate(fx->s, NULL, "x", T0, T0, on_refresh, &c), PL_EINVAL);
    assert_int_equal(store_refresh_rotate(fx->s, "x", NULL, T0, T0, on_refresh, &c), PL_EINVAL);
    store_wait(fx->s);
    assert_int_equal(c.calls, 0);
}

static void test_refresh_revoke(void **state) {
    fx_t *fx = *state;
    int64_t ann = make_user(fx, "ann@example.com", "Ann");
    const int64_t exp = T0 + 30 * DAY;
    assert_int_equal(create_token(fx, ann, 0, "r1", exp, T0, NULL), 0);
    assert_int_equal(rotate(fx, "r1", "r2", exp, T0 + 1, NULL), STORE_TOKEN_OK);
    assert_int_equal(create_token(fx, ann, 0, "other", exp, T0, NULL), 0);

    /* Logout revokes that token only; twice keeps the first time; unknown is fine. */
    const struct {
        const char *hash;
        int64_t now;
    } rows[] = {{"r2", T0 + 10}, {"r2", T0 + 20}, {"unknown", T0 + 30}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        cap_t c = {0};
        assert_int_equal(store_refresh_revoke(fx->s, rows[i].hash, rows[i].now, on_done, &c), 0);
        assert_int_equal(done_status(fx, &c), 0);
    }
    assert_int_equal(revoked_at(fx, "r2"), T0 + 10);
    assert_int_equal(revoked_at(fx, "r1"), -1);
    assert_int_equal(revoked_at(fx, "other"), -1);
    assert_int_equal(fx_int(fx, "SELECT count(*) FROM refresh_tokens", NULL), 3);

    /* The revoked cookie presented again: reuse, the family goes. */
    assert_int_equal(rotate(fx, "r2", "r3", exp, T0 + 40, NULL), STORE_TOKEN_REUSED);
    assert_int_equal(revoked_at(fx, "r1"), T0 + 40);
    assert_int_equal(rotate(fx, "other", "other-2", exp, T0 + 50, NULL), STORE_TOKEN_OK);

    cap_t c = {0};
    assert_int_equal(store_refresh_revoke(fx->s, NULL, T0, on_done, &c), PL_EINVAL);
    store_wait(fx->s);
    assert_int_equal(c.calls, 0);
}

static void test_logout_all(void **state) {
    fx_t *fx = *state;
    int64_t ann = make_user(fx, "ann@example.com", "Ann");
    int64_t bob = make_user(fx, "bob@example.com", "Bob");
    const int64_t exp = T0 + 30 * DAY;
    assert_int_equal(create_token(fx, ann, 0, "a1", exp, T0, NULL), 0);
    assert_int_equal(rotate(fx, "a1", "a2", exp, T0 + 1, NULL), STORE_TOKEN_OK);
    assert_int_equal(create_token(fx, ann, 0, "a3", exp, T0, NULL), 0);
    assert_int_equal(create_token(fx, bob, 0, "b1", exp, T0, NULL), 0);

    cap_t c = {0};
    assert_int_equal(store_user_logout_all(fx->s, ann, T0 + 100, on_done, &c), 0);
    assert_int_equal(done_status(fx, &c), 0);
    assert_int_equal(
        fx_int(fx, "SELECT tokens_valid_from FROM users WHERE email = ?1", "ann@example.com"),
        T0 + 100);
    assert_int_equal(
        fx_int(fx, "SELECT tokens_valid_from FROM users WHERE email = ?1", "bob@example.com"), 0);
    assert_int_equal(revoked_at(fx, "a1"), T0 + 100);
    assert_int_equal(revoked_at(fx, "a2"), T0 + 100);
    assert_int_equal(revoked_at(fx, "a3"), T0 + 100);
    assert_int_equal(revoked_at(fx, "b1"), -1);
    assert_int_equal(rotate(fx, "a3", "a4", exp, T0 + 200, NULL), STORE_TOKEN_REUSED);
    assert_int_equal(rotate(fx, "b1", "b2", exp, T0 + 200, NULL), STORE_TOKEN_OK);

    /* Earlier: tokens_valid_from never moves back, revocation times stay. */
    memset(&c, 0, sizeof c);
    assert_int_equal(store_user_logout_all(fx->s, ann, T0 + 50, on_done, &c), 0);
    assert_int_equal(done_status(fx, &c), 0);
    assert_int_equal(
        fx_int(fx, "SELECT tokens_valid_from FROM users WHERE email = ?1", "ann@example.com"),
        T0 + 100);
    assert_int_equal(revoked_at(fx, "a2"), T0 + 100);

    /* After logging out everywhere, a new login works. */
    assert_int_equal(create_token(fx, ann, 0, "a5", exp, T0 + 300, NULL), 0);
    assert_int_equal(rotate(fx, "a5", "a6", exp, T0 + 301, NULL), STORE_TOKEN_OK);

    memset(&c, 0, sizeof c);
    assert_int_equal(store_user_logout_all(fx->s, ann + bob + 100, T0, on_done, &c), 0);
    assert_int_equal(done_status(fx, &c), STORE_ENOTFOUND);
}

static void test_refresh_prune(void **state) {
    fx_t *fx = *state;
    int64_t ann = make_user(fx, "ann@example.com", "Ann");
    int64_t bob = make_user(fx, "bob@example.com", "Bob");
    const int64_t now = T0 + 100 * DAY;
    /* Expired long ago, expired just inside the keep window, live; and bob's old one. */
    assert_int_equal(create_token(fx, ann, 0, "old", now - STORE_REFRESH_KEEP_MS - 1, T0, NULL), 0);
    assert_int_equal(create_token(fx, ann, 0, "edge", now - STORE_REFRESH_KEEP_MS, T0, NULL), 0);
    assert_int_equal(create_token(fx, ann, 0, "live", now + DAY, T0, NULL), 0);
    assert_int_equal(create_token(fx, bob, 0, "bob-old", T0, T0, NULL), 0);
    assert_int_equal(fx_int(fx, "SELECT count(*) FROM refresh_tokens", NULL), 4);

    /* Ann's next login prunes ann's long-expired token only. */
    assert_int_equal(create_token(fx, ann, 0, "new", now + 30 * DAY, now, NULL), 0);
    assert_int_equal(fx_int(fx, "SELECT count(*) FROM refresh_tokens WHERE token_hash = ?1", "old"),
                     0);
    assert_int_equal(
        fx_int(fx, "SELECT count(*) FROM refresh_tokens WHERE token_hash = ?1", "edge"), 1);
    assert_int_equal(
        fx_int(fx, "SELECT count(*) FROM refresh_tokens WHERE token_hash = ?1", "live"), 1);
    assert_int_equal(
        fx_int(fx, "SELECT count(*) FROM refresh_tokens WHERE token_hash = ?1", "bob-old"), 1);
    /* A pruned token is simply unknown. */
    assert_int_equal(rotate(fx, "old", "x", now + DAY, now, NULL), STORE_TOKEN_UNKNOWN);
}

/* ---- projects -------------------------------------------------------------------------------- */

static void assert_domains(const store_project_t *p, const char *const *want, size_t n) {
    assert_int_equal(p->ndomains, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(p->domains[i], want[i]);
}

static void test_project_create_owned(void **state) {
    fx_t *fx = *state;
    int64_t ann = make_user(fx, "ann@example.com", "Ann");
    const char *doms[] = {"shop.example", "*.shop.example", "shop.example"};

    cap_t c = {0};
    assert_int_equal(store_project_create_owned(fx->s, "Shop", doms, 3, ann, on_project, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.status, 0);
    const store_project_t *p = c.project;
    assert_true(p->id > 0);
    assert_string_equal(p->name, "Shop");
    assert_string_equal(p->role, "manager");
    assert_domains(p, doms, 2);
    assert_string_equal(p->widget_settings_json, "{}");
    assert_true(p->created_at > 0);
    assert_int_equal(
        fx_int(fx, "SELECT count(*) FROM project_members WHERE role = 'manager'", NULL), 1);
    int64_t pid = p->id;
    cap_reset(&c);

    /* Refused: an unknown owner, an empty name, an empty domain. Nothing is created. */
    const char *bad_dom[] = {"ok.example", ""};
    const struct {
        const char *name;
        const char *const *doms;
        size_t n;
        int64_t owner;
        int status;
    } rows[] = {
        {"Ghost", NULL, 0, ann + 100, STORE_ENOTFOUND},
        {"", NULL, 0, ann, PL_EINVAL},
        {"Bad", bad_dom, 2, ann, PL_EINVAL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        assert_int_equal(store_project_create_owned(fx->s, rows[i].name, rows[i].doms, rows[i].n,
                                                    rows[i].owner, on_project, &c),
                         0);
        wait_one(fx, &c);
        assert_int_equal(c.status, rows[i].status);
        cap_reset(&c);
    }
    assert_int_equal(fx_int(fx, "SELECT count(*) FROM projects", NULL), 1);
    assert_int_equal(fx_int(fx, "SELECT count(*) FROM project_members", NULL), 1);
    assert_int_equal(fx_int(fx, "SELECT max(id) FROM projects", NULL), pid);

    /* Refused at the call. */
    assert_int_equal(store_project_create_owned(fx->s, NULL, NULL, 0, ann, on_project, &c),
                     PL_EINVAL);
    assert_int_equal(store_project_create_owned(fx->s, "x", NULL, 2, ann, on_project, &c),
                     PL_EINVAL);
    assert_int_equal(
        store_project_create_owned(fx->s, "x", doms, STORE_MAX_LIST + 1, ann, on_project, &c),
        PL_ETOOBIG);
    store_wait(fx->s);
    assert_int_equal(c.calls, 0);
}

static void test_projects_of_user(void **state) {
    fx_t *fx = *state;
    int64_t ann = make_user(fx, "ann@example.com", "Ann");
    int64_t bob = make_user(fx, "bob@example.com", "Bob");
    const char *d1[] = {"one.example", "www.one.example"};
    const char *d3[] = {"three.example"};
    const char *d4[] = {"four.example"};
    int64_t p1 = make_project(fx, "one", d1, 2);
    int64_t p2 = make_project(fx, "two", NULL, 0);
    int64_t p3 = make_project(fx, "three", d3, 1);
    int64_t p4 = make_project(fx, "four", d4, 1);
    add_member(fx, p3, ann, "agent"); /* joined in another order than the ids */
    add_member(fx, p1, ann, "manager");
    add_member(fx, p2, ann, "agent");
    add_member(fx, p4, bob, "manager");

    cap_t c = {0};
    assert_int_equal(store_projects_of_user(fx->s, ann, on_project_list, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.status, 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.projects[0]->id, p1);
    assert_string_equal(c.projects[0]->role, "manager");
    assert_domains(c.projects[0], d1, 2);
    assert_int_equal(c.projects[1]->id, p2);
    assert_string_equal(c.projects[1]->role, "agent");
    assert_int_equal(c.projects[1]->ndomains, 0);
    assert_null(c.projects[1]->domains);
    assert_int_equal(c.projects[2]->id, p3);
    assert_string_equal(c.projects[2]->role, "agent");
    assert_domains(c.projects[2], d3, 1);
    assert_string_equal(c.projects[2]->name, "three");
    cap_reset(&c);

    assert_int_equal(store_projects_of_user(fx->s, bob, on_project_list, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.projects[0]->id, p4);
    assert_domains(c.projects[0], d4, 1);
    cap_reset(&c);

    /* No membership, an unknown user, id 0: nothing. */
    int64_t eve = make_user(fx, "eve@example.com", "Eve");
    const int64_t nobody[] = {eve, eve + 100, 0, -1};
    for (size_t i = 0; i < sizeof nobody / sizeof nobody[0]; i++) {
        assert_int_equal(store_projects_of_user(fx->s, nobody[i], on_project_list, &c), 0);
        wait_one(fx, &c);
        assert_int_equal(c.status, 0);
        assert_int_equal(c.n, 0);
        cap_reset(&c);
    }
    /* The plain list has no roles. */
    assert_int_equal(store_project_list(fx->s, on_project_list, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.n, 4);
    for (size_t i = 0; i < 4; i++)
        assert_null(c.projects[i]->role);
    cap_reset(&c);
}

static void test_project_of_member(void **state) {
    fx_t *fx = *state;
    int64_t ann = make_user(fx, "ann@example.com", "Ann");
    int64_t bob = make_user(fx, "bob@example.com", "Bob");
    const char *d[] = {"shop.example"};
    int64_t p = make_project(fx, "shop", d, 1);
    add_member(fx, p, ann, "manager");
    add_member(fx, p, bob, "agent");

    const struct {
        int64_t project, user;
        int status;
        const char *role; /* NULL: not a member */
    } rows[] = {
        {p, ann, 0, "manager"},
        {p, bob, 0, "agent"},
        {p, bob + 100, 0, NULL},
        {p, 0, 0, NULL},
        {p + 1, ann, STORE_ENOTFOUND, NULL},
        {0, ann, STORE_ENOTFOUND, NULL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        cap_t c = {0};
        assert_int_equal(
            store_project_of_member(fx->s, rows[i].project, rows[i].user, on_project, &c), 0);
        wait_one(fx, &c);
        assert_int_equal(c.status, rows[i].status);
        if (rows[i].status == 0) {
            assert_int_equal(c.project->id, p);
            assert_domains(c.project, d, 1);
            if (rows[i].role)
                assert_string_equal(c.project->role, rows[i].role);
            else
                assert_null(c.project->role);
        }
        cap_reset(&c);
    }
}

static void test_project_update(void **state) {
    fx_t *fx = *state;
    const char *d0[] = {"a.example", "b.example"};
    int64_t p = make_project(fx, "shop", d0, 2);
    fx_int(fx, "UPDATE projects SET updated_at = 1", NULL); /* to see it move */

    const char *d1[] = {"c.example", "a.example", "c.example", "*.d.example"};
    const char *d1_stored[] = {"c.example", "a.example", "*.d.example"};
    const char *empty[] = {NULL}; /* a non-NULL list of zero entries: clear */
    const struct {
        const char *name;
        const char *const *doms;
        size_t n;
        const char *want_name;
        const char *const *want;
        size_t nwant;
    } rows[] = {
        {"Shop renamed", NULL, 0, "Shop renamed", d0, 2}, /* rename, domains kept */
        {NULL, d1, 4, "Shop renamed", d1_stored, 3},      /* replace, order kept, dup once */
        {NULL, NULL, 0, "Shop renamed", d1_stored, 3},    /* nothing asked */
        {"Both", d0, 2, "Both", d0, 2},
        {NULL, empty, 0, "Both", NULL, 0}, /* clear */
        {NULL, d0 + 1, 1, "Both", d0 + 1, 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        cap_t c = {0};
        assert_int_equal(
            store_project_update(fx->s, p, rows[i].name, rows[i].doms, rows[i].n, on_project, &c),
            0);
        wait_one(fx, &c);
        assert_int_equal(c.status, 0);
        assert_string_equal(c.project->name, rows[i].want_name);
        assert_domains(c.project, rows[i].want, rows[i].nwant);
        assert_null(c.project->role);
        assert_true(c.project->updated_at > 1);
        cap_reset(&c);
    }

    /* Refused: an empty name, an empty domain (nothing changes), an unknown project. */
    const char *bad[] = {"x.example", ""};
    const struct {
        int64_t id;
        const char *name;
        const char *const *doms;
        size_t n;
        int status;
    } refused[] = {
        {p, "", NULL, 0, PL_EINVAL},
        {p, "New name", bad, 2, PL_EINVAL},
        {p + 100, "x", NULL, 0, STORE_ENOTFOUND},
        {p + 100, NULL, d0, 2, STORE_ENOTFOUND},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        cap_t c = {0};
        assert_int_equal(store_project_update(fx->s, refused[i].id, refused[i].name,
                                              refused[i].doms, refused[i].n, on_project, &c),
                         0);
        wait_one(fx, &c);
        assert_int_equal(c.status, refused[i].status);
        cap_reset(&c);
    }
    cap_t c = {0};
    assert_int_equal(store_project_get(fx->s, p, on_project, &c), 0);
    wait_one(fx, &c);
    assert_string_equal(c.project->name, "Both");
    assert_domains(c.project, d0 + 1, 1);
    cap_reset(&c);
    assert_int_equal(fx_int(fx, "SELECT count(*) FROM project_domains", NULL), 1);

    assert_int_equal(store_project_update(fx->s, p, NULL, d0, STORE_MAX_LIST + 1, on_project, &c),
                     PL_ETOOBIG);
    store_wait(fx->s);
    assert_int_equal(c.calls, 0);
}

static void test_widget_settings(void **state) {
    fx_t *fx = *state;
    int64_t p = make_project(fx, "shop", NULL, 0);
    fx_int(fx, "UPDATE projects SET updated_at = 1", NULL);

    const char *good[] = {
        "{\"theme\":\"dark\",\"headerText\":\"Hi ü\",\"autoOpenDelay\":5}",
        "{}",
        "{\"companyLogoUrl\":null,\"welcomeMessage\":\"\"}",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        cap_t c = {0};
        assert_int_equal(store_project_widget_settings(fx->s, p, good[i], on_project, &c), 0);
        wait_one(fx, &c);
        assert_int_equal(c.status, 0);
        assert_string_equal(c.project->widget_settings_json, good[i]);
        assert_true(c.project->updated_at > 1);
        cap_reset(&c);
    }

    /* Not a JSON object: PL_EINVAL, the settings stay. */
    const char *bad[] = {"[1,2]", "\"text\"", "42", "null", "", "{\"open\":", "{'a':1}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cap_t c = {0};
        assert_int_equal(store_project_widget_settings(fx->s, p, bad[i], on_project, &c), 0);
        wait_one(fx, &c);
        if (c.status != PL_EINVAL)
            print_error("\"%s\": %s\n", bad[i], store_strerror(c.status));
        assert_int_equal(c.status, PL_EINVAL);
        cap_reset(&c);
    }
    cap_t c = {0};
    assert_int_equal(store_project_get(fx->s, p, on_project, &c), 0);
    wait_one(fx, &c);
    assert_string_equal(c.project->widget_settings_json, good[2]);
    cap_reset(&c);

    /* An unknown project: not found (also with a bad text). */
    assert_int_equal(store_project_widget_settings(fx->s, p + 1, "{}", on_project, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.status, STORE_ENOTFOUND);
    cap_reset(&c);
    assert_int_equal(store_project_widget_settings(fx->s, p + 1, "[]", on_project, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.status, STORE_ENOTFOUND);
    cap_reset(&c);

    assert_int_equal(store_project_widget_settings(fx->s, p, NULL, on_project, &c), PL_EINVAL);
    store_wait(fx->s);
    assert_int_equal(c.calls, 0);
}

static void test_members_list(void **state) {
    fx_t *fx = *state;
    int64_t ann = make_user(fx, "ann@example.com", "Ann Example");
    int64_t bob = make_user(fx, "bob@example.com", NULL);
    int64_t eve = make_user(fx, "eve@example.com", "Eve");
    int64_t p = make_project(fx, "shop", NULL, 0), q = make_project(fx, "other", NULL, 0);
    int64_t empty = make_project(fx, "empty", NULL, 0);
    add_member(fx, p, eve, "agent"); /* joined before the others: the list is in id order */
    add_member(fx, p, ann, "manager");
    add_member(fx, p, bob, "agent");
    add_member(fx, q, bob, "manager");

    cap_t c = {0};
    assert_int_equal(store_members_list(fx->s, p, on_member_list, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.status, 0);
    assert_int_equal(c.n, 3);
    const struct {
        int64_t id;
        const char *email, *full_name, *role;
    } want[] = {{ann, "ann@example.com", "Ann Example", "manager"},
                {bob, "bob@example.com", "", "agent"},
                {eve, "eve@example.com", "Eve", "agent"}};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(c.members[i]->id, want[i].id);
        assert_string_equal(c.members[i]->email, want[i].email);
        assert_string_equal(c.members[i]->full_name, want[i].full_name);
        assert_string_equal(c.members[i]->role, want[i].role);
    }
    cap_reset(&c);

    assert_int_equal(store_members_list(fx->s, q, on_member_list, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.members[0]->role, "manager");
    cap_reset(&c);

    /* No members: an empty list; an unknown project: not found. */
    assert_int_equal(store_members_list(fx->s, empty, on_member_list, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.status, 0);
    assert_int_equal(c.n, 0);
    cap_reset(&c);
    assert_int_equal(store_members_list(fx->s, empty + 100, on_member_list, &c), 0);
    wait_one(fx, &c);
    assert_int_equal(c.status, STORE_ENOTFOUND);
    cap_reset(&c);
}

/* ---- result copies --------------------------------------------------------------------------- */

static void test_dup_free(void **state) {
    (void)state;
    store_member_t m = {.id = 7, .email = "e@x", .full_name = "", .role = "agent"};
    store_member_t *mc = store_member_dup(&m);
    assert_non_null(mc);
    assert_true(mc->email != m.email);
    assert_int_equal(mc->id, 7);
    assert_string_equal(mc->email, "e@x");
    assert_string_equal(mc->full_name, "");
    assert_string_equal(mc->role, "agent");
    store_member_free(mc);
    store_member_free(NULL);

    char *doms[] = {"a.example"};
    store_project_t p = {.id = 1,
                         .name = "n",
                         .domains = doms,
                         .ndomains = 1,
                         .widget_settings_json = "{}",
                         .role = "manager"};
    store_project_t *pc = store_project_dup(&p);
    assert_non_null(pc);
    assert_true(pc->role != p.role);
    assert_string_equal(pc->role, "manager");
    store_project_free(pc);
    p.role = NULL;
    pc = store_project_dup(&p);
    assert_null(pc->role);
    store_project_free(pc);

    store_conversation_t cv = {.id = 1,
                               .visitor_id = 2,
                               .status = "open",
                               .visitor = {.id = 2,
                                           .project_id = 3,
                                           .uid = "visitor-1",
                                           .email = "v@x",
                                           .last_seen_at = 4,
                                           .created_at = 5}};
    store_conversation_t *cc = store_conversation_dup(&cv);
    assert_non_null(cc);
    assert_true(cc->visitor.uid != cv.visitor.uid);
    assert_int_equal(cc->visitor.id, 2);
    assert_int_equal(cc->visitor.project_id, 3);
    assert_string_equal(cc->visitor.uid, "visitor-1");
    assert_null(cc->visitor.name);
    assert_string_equal(cc->visitor.email, "v@x");
    assert_null(cc->visitor.current_url);
    assert_int_equal(cc->visitor.last_seen_at, 4);
    assert_int_equal(cc->visitor.created_at, 5);
    store_conversation_free(cc);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refresh_create, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_refresh_rotate, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_refresh_revoke, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_logout_all, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_refresh_prune, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_project_create_owned, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_projects_of_user, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_project_of_member, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_project_update, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_widget_settings, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_members_list, setup, fx_teardown),
        cmocka_unit_test(test_dup_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
