/* Unit tests for src/store/store.h against a real, fresh database per test (testdb.h: SQLite
 * files in a temporary directory, or PostgreSQL databases when PARLEY_TEST_DATABASE is set):
 * opening (good URLs, bad URLs, SQLite's file and directory modes), every operation's success
 * and not-found paths, group commit (1000 writes in fewer transactions), a failing request
 * inside a batch that leaves the others committed, a database locked by another connection
 * (unavailable, then recovery), queue-full push-back, argument limits, and close with requests
 * still queued. With PostgreSQL also its outages: the server killed and restarted under a
 * running store (requests fail fast with unavailable, then work again without reopening, and
 * no acknowledged write is lost), and connections the server dropped while idle. Each test
 * runs its own uv loop to completion and checks that every handle was closed (uv_loop_close
 * returns 0). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/store.h"
#include "testdb.h"

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

/* ---- fixture --------------------------------------------------------------------------------- */

typedef struct {
    tdb_t db;       /* the database under test and a plain connection to it */
    char *dir;      /* db.dir: the temporary directory, removed at teardown */
    char path[256]; /* SQLite: the database file, in a subdirectory the store creates */
    char url[1024]; /* the store's URL */
    uv_loop_t loop;
    store_t *s; /* open store, closed at teardown if the test left it open */
} fx_t;

static int setup(void **state) {
    fx_t *fx = calloc(1, sizeof *fx);
    if (!fx || tdb_create(&fx->db, "store") != 0)
        return -1;
    fx->dir = fx->db.dir;
    snprintf(fx->path, sizeof fx->path, "%s/data/parley.db", fx->dir);
    if (fx->db.pg)
        snprintf(fx->url, sizeof fx->url, "%s", fx->db.url);
    else
        snprintf(fx->url, sizeof fx->url, "sqlite:%s", fx->path);
    snprintf(fx->db.path, sizeof fx->db.path, "%s", fx->path);
    if (uv_loop_init(&fx->loop) != 0)
        return -1;
    *state = fx;
    return 0;
}

static void on_closed_flag(store_t *s, void *ud) {
    (void)s;
    *(int *)ud += 1;
}

/* Closes the store and runs the loop until it is gone. */
static void fx_close(fx_t *fx) {
    if (!fx->s)
        return;
    int closed = 0;
    store_close(fx->s, on_closed_flag, &closed);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(closed, 1);
    fx->s = NULL;
}

static int teardown(void **state) {
    fx_t *fx = *state;
    if (fx->s) {
        store_close(fx->s, NULL, NULL);
        uv_run(&fx->loop, UV_RUN_DEFAULT);
    }
    int rc = uv_loop_close(&fx->loop); /* UV_EBUSY if a handle was left open */
    tdb_destroy(&fx->db);
    free(fx);
    return rc == 0 ? 0 : -1;
}

static void fx_open(fx_t *fx, const store_options_t *opts) {
    char err[256] = "";
    fx->s = store_open(&fx->loop, fx->url, opts, err, sizeof err);
    if (!fx->s)
        print_error("store_open: %s\n", err);
    assert_non_null(fx->s);
}

/* ---- callback capture ------------------------------------------------------------------------ */

typedef struct {
    int calls;
    int status;
    int order;                /* value of g_seq when the callback ran */
    store_project_t *project; /* a copy, freed by cap_reset */
    store_project_t **list;   /* copies */
    size_t n;
    int64_t count;
} cap_t;

static int g_seq; /* callbacks seen, across captures */

static void cap_reset(cap_t *c) {
    store_project_free(c->project);
    for (size_t i = 0; i < c->n; i++)
        store_project_free(c->list[i]);
    free(c->list);
    memset(c, 0, sizeof *c);
}

static void on_done(void *ud, int status) {
    cap_t *c = ud;
    c->calls++;
    c->status = status;
    c->order = ++g_seq;
}

static void on_project(void *ud, int status, const store_project_t *p) {
    cap_t *c = ud;
    c->calls++;
    c->status = status;
    c->order = ++g_seq;
    if (status == 0 && p)
        c->project = store_project_dup(p);
    else if (p)
        c->status = 12345; /* a result with an error status breaks the contract */
}

static void on_list(void *ud, int status, const store_project_t *v, size_t n) {
    cap_t *c = ud;
    c->calls++;
    c->status = status;
    c->order = ++g_seq;
    if (status != 0 && (v || n))
        c->status = 12345;
    if (n) {
        c->list = calloc(n, sizeof *c->list);
        for (size_t i = 0; c->list && i < n; i++)
            c->list[i] = store_project_dup(&v[i]);
        c->n = c->list ? n : 0;
    }
}

static void on_count(void *ud, int status, int64_t count) {
    cap_t *c = ud;
    c->calls++;
    c->status = status;
    c->order = ++g_seq;
    c->count = count;
}

/* Synchronous helpers over the async API: submit, wait, check the call happened once. */
static int sync_create(fx_t *fx, const char *name, const char *const *d, size_t n, cap_t *c) {
    int rc = store_project_create(fx->s, name, d, n, on_project, c);
    if (rc == 0) {
        store_wait(fx->s);
        assert_int_equal(c->calls, 1);
    }
    return rc;
}

static void sync_get(fx_t *fx, int64_t id, cap_t *c) {
    assert_int_equal(store_project_get(fx->s, id, on_project, c), 0);
    store_wait(fx->s);
    assert_int_equal(c->calls, 1);
}

static int64_t sync_count(fx_t *fx) {
    cap_t c = {0};
    assert_int_equal(store_project_count(fx->s, on_count, &c), 0);
    store_wait(fx->s);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.status, 0);
    return c.count;
}

static void assert_domains(const store_project_t *p, const char *const *want, size_t n) {
    if (p->ndomains != n) {
        print_error("project %lld has %zu domains, want %zu\n", (long long)p->id, p->ndomains, n);
        fail();
    }
    for (size_t i = 0; i < n; i++)
        assert_string_equal(p->domains[i], want[i]);
}

/* ---- opening --------------------------------------------------------------------------------- */

static void test_open_bad(void **state) {
    fx_t *fx = *state;
    char file_url[300], file_path[256];
    snprintf(file_path, sizeof file_path, "%s/plain-file", fx->dir);
    FILE *f = fopen(file_path, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(file_url, sizeof file_url, "sqlite:%s/db.sqlite", file_path);
    static const store_options_t bad_sync = {.synchronous = "sometimes"};

    const struct {
        const char *url;
        const store_options_t *opts;
        const char *message; /* a part of the error text */
        const char *absent;  /* must not appear (a secret of the URL) */
    } rows[] = {
        /* nobody listens on port 1: refused at once; the password never shows */
        {"postgres://user:secret@127.0.0.1:1/parley", NULL, "cannot connect to PostgreSQL",
         "secret"},
        {"postgresql://127.0.0.1:1/parley", NULL, "cannot connect to PostgreSQL", NULL},
        {"postgres://127.0.0.1:1/parley?nonsense=1", NULL, "nonsense", NULL},
        {"mysql://root:hunter2@localhost/db", NULL, "unsupported", "hunter2"},
        {"parley.db", NULL, "unsupported", NULL},
        {"", NULL, "no database URL", NULL},
        {NULL, NULL, "no database URL", NULL},
        {"sqlite:", NULL, "path", NULL},
        {"sqlite::memory:", NULL, "path", NULL},
        {fx->url, &bad_sync, "synchronous", NULL},
        {file_url, NULL, "Not a directory", NULL},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char err[256];
        memset(err, 'x', sizeof err); /* the message must be written and terminated */
        store_t *s = store_open(&fx->loop, rows[i].url, rows[i].opts, err, sizeof err);
        char err2[256] = "";
        int applied = -1;
        int rc = store_migrate(rows[i].url, rows[i].opts, &applied, err2, sizeof err2);
        if (s || !memchr(err, '\0', sizeof err) || !strstr(err, rows[i].message) ||
            (rows[i].absent && strstr(err, rows[i].absent)) || rc == 0 ||
            !strstr(err2, rows[i].message) || applied != 0) {
            print_error("row %zu (%s): open %p \"%.200s\"; migrate %d \"%s\"\n", i,
                        rows[i].url ? rows[i].url : "NULL", (void *)s, err, rc, err2);
            bad++;
            if (s)
                store_close(s, NULL, NULL);
        }
    }
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(bad, 0);
    /* A refused open touches nothing: the database of the bad-synchronous row was not made. */
    struct stat st;
    assert_int_equal(stat(fx->path, &st), -1);
}

/* File modes are SQLite's: this test uses a SQLite file whatever the backend under test. */
static void test_open_modes(void **state) {
    fx_t *fx = *state;
    mode_t old = umask(022);
    snprintf(fx->path, sizeof fx->path, "%s/a/b/parley.db", fx->dir);
    snprintf(fx->url, sizeof fx->url, "sqlite:%s", fx->path);
    static const store_options_t full = {.synchronous = "full", .busy_timeout_ms = 100};
    fx_open(fx, &full);
    cap_t c = {0};
    assert_int_equal(sync_create(fx, "p", NULL, 0, &c), 0);
    assert_int_equal(c.status, 0);
    cap_reset(&c);

    const struct {
        const char *suffix;
        unsigned mode;
        bool dir;
    } rows[] = {
        {"/a", 0700, true},
        {"/a/b", 0700, true},
        {"/a/b/parley.db", 0600, false},
        {"/a/b/parley.db-wal", 0600, false}, /* SQLite copies the database file's mode */
        {"/a/b/parley.db-shm", 0600, false},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char p[300];
        snprintf(p, sizeof p, "%s%s", fx->dir, rows[i].suffix);
        struct stat st;
        if (stat(p, &st) != 0 || (st.st_mode & 07777) != rows[i].mode ||
            S_ISDIR(st.st_mode) != rows[i].dir) {
            print_error("%s: mode %o\n", rows[i].suffix, (unsigned)(st.st_mode & 07777));
            bad++;
        }
    }
    umask(old);
    assert_int_equal(bad, 0);
}

/* ---- operations ------------------------------------------------------------------------------ */

static void test_ping(void **state) {
    fx_t *fx = *state;
    fx_open(fx, NULL);
    store_wait(fx->s); /* nothing in flight: returns at once */
    cap_t c = {0};
    assert_int_equal(store_ping(fx->s, on_done, &c), 0);
    assert_int_equal(c.calls, 0); /* never inside the call */
    store_wait(fx->s);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.status, 0);
    store_stats_t st;
    store_stats(fx->s, &st);
    assert_int_equal(st.reads, 1);
    assert_int_equal(st.writes, 0);
    assert_int_equal(st.in_flight, 0);
}

static void test_project_create_get(void **state) {
    fx_t *fx = *state;
    fx_open(fx, NULL);
    /* Domains keep their order and spelling; a repeated one is stored once. */
    const char *d[] = {"shop.example.com", "*.Example.org", "localhost", "shop.example.com"};
    const char *want[] = {"shop.example.com", "*.Example.org", "localhost"};
    cap_t c = {0};
    int64_t before = (int64_t)time(NULL) * 1000 - 1000;
    assert_int_equal(sync_create(fx, "Acme \"shop\" 'n' ünïcode", d, 4, &c), 0);
    assert_int_equal(c.status, 0);
    store_project_t *p = c.project;
    assert_non_null(p);
    assert_true(p->id > 0);
    assert_string_equal(p->name, "Acme \"shop\" 'n' ünïcode");
    assert_string_equal(p->widget_settings_json, "{}");
    assert_false(p->identity_verification);
    assert_null(p->identity_secret);
    assert_true(p->created_at >= before && p->created_at == p->updated_at);
    assert_domains(p, want, 3);
    int64_t id = p->id;

    cap_t g = {0};
    sync_get(fx, id, &g);
    assert_int_equal(g.status, 0);
    assert_int_equal(g.project->id, id);
    assert_string_equal(g.project->name, p->name);
    assert_int_equal(g.project->created_at, p->created_at);
    assert_domains(g.project, want, 3);
    cap_reset(&g);

    /* A project without domains. */
    cap_t e = {0};
    assert_int_equal(sync_create(fx, "empty", NULL, 0, &e), 0);
    assert_int_equal(e.status, 0);
    assert_int_equal(e.project->ndomains, 0);
    assert_null(e.project->domains);
    assert_true(e.project->id > id);
    cap_reset(&e);
    cap_reset(&c);

    /* Not found: unknown, zero, negative and huge ids. */
    const int64_t missing[] = {id + 100, 0, -1, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        cap_t m = {0};
        sync_get(fx, missing[i], &m);
        assert_int_equal(m.status, STORE_ENOTFOUND);
        assert_null(m.project);
    }
    store_stats_t st;
    store_stats(fx->s, &st);
    assert_int_equal(st.failed, 5);
}

static void test_project_create_refused(void **state) {
    fx_t *fx = *state;
    fx_open(fx, NULL);
    /* Values the schema refuses: nothing is created. */
    const char *empty_domain[] = {"a.example", ""};
    cap_t c = {0};
    assert_int_equal(sync_create(fx, "", NULL, 0, &c), 0);
    assert_int_equal(c.status, PL_EINVAL);
    assert_null(c.project);
    cap_reset(&c);
    assert_int_equal(sync_create(fx, "x", empty_domain, 2, &c), 0);
    assert_int_equal(c.status, PL_EINVAL);
    cap_reset(&c);
    assert_int_equal(sync_count(fx), 0);

    /* Arguments refused at the call: the callback never fires. */
    static char big[STORE_MAX_ARG_BYTES + 1];
    memset(big, 'a', sizeof big - 1);
    const char *one_null[] = {"a.example", NULL};
    assert_int_equal(store_project_create(fx->s, NULL, NULL, 0, on_project, &c), PL_EINVAL);
    assert_int_equal(store_project_create(fx->s, "x", NULL, 2, on_project, &c), PL_EINVAL);
    assert_int_equal(store_project_create(fx->s, "x", one_null, 2, on_project, &c), PL_EINVAL);
    assert_int_equal(store_project_create(fx->s, big, NULL, 0, on_project, &c), PL_ETOOBIG);
    const char *big_list[] = {"x", big};
    assert_int_equal(store_project_create(fx->s, "x", big_list, 2, on_project, &c), PL_ETOOBIG);
    /* Boundary: the name and its NUL fill the budget exactly; one list byte more is over. */
    big[STORE_MAX_ARG_BYTES - 1] = '\0';
    const char *one[] = {""};
    assert_int_equal(store_project_create(fx->s, big, one, 1, on_project, &c), PL_ETOOBIG);
    assert_int_equal(sync_create(fx, big, NULL, 0, &c), 0);
    assert_int_equal(c.status, 0);
    assert_int_equal(strlen(c.project->name), STORE_MAX_ARG_BYTES - 1);
    cap_reset(&c);
    assert_int_equal(sync_count(fx), 1);
    /* The list limit: STORE_MAX_LIST entries are fine, one more is refused. */
    size_t n = STORE_MAX_LIST + 1;
    char(*names)[16] = calloc(n, sizeof *names);
    const char **list = calloc(n, sizeof *list);
    assert_non_null(names);
    assert_non_null(list);
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "d%zu.example", i);
        list[i] = names[i];
    }
    assert_int_equal(store_project_create(fx->s, "x", list, n, on_project, &c), PL_ETOOBIG);
    store_wait(fx->s);
    assert_int_equal(c.calls, 0);
    assert_int_equal(sync_count(fx), 1);
    assert_int_equal(sync_create(fx, "many", list, n - 1, &c), 0);
    assert_int_equal(c.status, 0);
    assert_int_equal(c.project->ndomains, STORE_MAX_LIST);
    assert_string_equal(c.project->domains[STORE_MAX_LIST - 1], names[STORE_MAX_LIST - 1]);
    cap_reset(&c);
    free(names);
    free(list);
}

static void test_project_list_count(void **state) {
    fx_t *fx = *state;
    fx_open(fx, NULL);
    cap_t l = {0};
    assert_int_equal(store_project_list(fx->s, on_list, &l), 0);
    store_wait(fx->s);
    assert_int_equal(l.calls, 1);
    assert_int_equal(l.status, 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(sync_count(fx), 0);

    const struct {
        const char *name;
        const char *domains[3];
        size_t n;
    } rows[] = {
        {"first", {"a.example", "b.example"}, 2},
        {"second", {0}, 0},
        {"third", {"c.example"}, 1},
        {"fourth", {"z.example", "a.example", "m.example"}, 3},
    };
    int64_t ids[4];
    for (size_t i = 0; i < 4; i++) {
        cap_t c = {0};
        assert_int_equal(sync_create(fx, rows[i].name, rows[i].domains, rows[i].n, &c), 0);
        assert_int_equal(c.status, 0);
        ids[i] = c.project->id;
        cap_reset(&c);
    }
    assert_int_equal(sync_count(fx), 4);
    assert_int_equal(store_project_list(fx->s, on_list, &l), 0);
    store_wait(fx->s);
    assert_int_equal(l.calls, 2);
    assert_int_equal(l.status, 0);
    assert_int_equal(l.n, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(l.list[i]->id, ids[i]);
        assert_string_equal(l.list[i]->name, rows[i].name);
        assert_domains(l.list[i], rows[i].domains, rows[i].n);
    }
    assert_true(ids[0] < ids[1] && ids[1] < ids[2] && ids[2] < ids[3]);
    cap_reset(&l);
}

static void test_project_domains_update(void **state) {
    fx_t *fx = *state;
    fx_open(fx, NULL);
    const char *start[] = {"a.example", "b.example", "c.example"};
    cap_t c = {0};
    assert_int_equal(sync_create(fx, "p", start, 3, &c), 0);
    int64_t id = c.project->id;
    int64_t created = c.project->created_at;
    cap_reset(&c);

    /* Each row applies to the result of the previous one. */
    const struct {
        const char *add[3];
        size_t nadd;
        const char *remove[3];
        size_t nremove;
        const char *want[5];
        size_t nwant;
    } rows[] = {
        /* nothing to do */
        {{0}, 0, {0}, 0, {"a.example", "b.example", "c.example"}, 3},
        /* adding an existing domain keeps its place; a new one goes last */
        {{"b.example", "d.example"},
         2,
         {0},
         0,
         {"a.example", "b.example", "c.example", "d.example"},
         4},
        /* removing a missing one is a no-op */
        {{0}, 0, {"nope.example", "a.example"}, 2, {"b.example", "c.example", "d.example"}, 3},
        /* removals first, then additions: a domain in both ends up last */
        {{"c.example"}, 1, {"c.example"}, 1, {"b.example", "d.example", "c.example"}, 3},
        /* case is the caller's business: stored as given */
        {{"B.EXAMPLE"}, 1, {0}, 0, {"b.example", "d.example", "c.example", "B.EXAMPLE"}, 4},
        /* remove everything */
        {{0}, 0, {"b.example", "d.example", "c.example"}, 3, {"B.EXAMPLE"}, 1},
        {{0}, 0, {"B.EXAMPLE"}, 1, {0}, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        cap_t u = {0};
        assert_int_equal(store_project_domains_update(fx->s, id, rows[i].add, rows[i].nadd,
                                                      rows[i].remove, rows[i].nremove, on_project,
                                                      &u),
                         0);
        store_wait(fx->s);
        if (u.calls != 1 || u.status != 0) {
            print_error("row %zu: calls %d status %d\n", i, u.calls, u.status);
            fail();
        }
        assert_int_equal(u.project->id, id);
        assert_int_equal(u.project->created_at, created);
        assert_true(u.project->updated_at >= created);
        assert_domains(u.project, rows[i].want, rows[i].nwant);
        cap_reset(&u);
        /* A fresh read agrees. */
        cap_t g = {0};
        sync_get(fx, id, &g);
        assert_domains(g.project, rows[i].want, rows[i].nwant);
        cap_reset(&g);
    }

    /* Unknown project: not found, and nothing is written anywhere. */
    const char *add[] = {"x.example"};
    cap_t m = {0};
    assert_int_equal(store_project_domains_update(fx->s, id + 1, add, 1, NULL, 0, on_project, &m),
                     0);
    store_wait(fx->s);
    assert_int_equal(m.calls, 1);
    assert_int_equal(m.status, STORE_ENOTFOUND);
    assert_null(m.project);
    /* An empty domain is refused and the whole update undone (the removal too). */
    const char *keep[] = {"k.example"};
    assert_int_equal(store_project_domains_update(fx->s, id, keep, 1, NULL, 0, on_project, &m), 0);
    const char *bad_add[] = {""};
    assert_int_equal(store_project_domains_update(fx->s, id, bad_add, 1, keep, 1, on_project, &m),
                     0);
    store_wait(fx->s);
    assert_int_equal(m.calls, 3);
    assert_int_equal(m.status, PL_EINVAL);
    cap_reset(&m);
    cap_t g = {0};
    sync_get(fx, id, &g);
    assert_domains(g.project, keep, 1);
    cap_reset(&g);
    assert_int_equal(sync_count(fx), 1);
}

/* Without a callback the request still runs; its outcome is dropped. */
static void test_null_callback(void **state) {
    fx_t *fx = *state;
    fx_open(fx, NULL);
    assert_int_equal(store_ping(fx->s, NULL, NULL), 0);
    assert_int_equal(store_project_create(fx->s, "fire", NULL, 0, NULL, NULL), 0);
    assert_int_equal(store_project_create(fx->s, "", NULL, 0, NULL, NULL), 0); /* fails */
    assert_int_equal(store_project_get(fx->s, 12345, NULL, NULL), 0);
    assert_int_equal(store_project_list(fx->s, NULL, NULL), 0);
    store_wait(fx->s);
    assert_int_equal(sync_count(fx), 1);
    store_stats_t st;
    store_stats(fx->s, &st);
    assert_int_equal(st.failed, 2);
}

/* Many reads at once: run in slices of STORE_READ_BATCH, delivered in submission order. */
#define READS 1000

static void test_many_reads(void **state) {
    fx_t *fx = *state;
    fx_open(fx, NULL);
    cap_t c = {0};
    assert_int_equal(sync_create(fx, "read me", NULL, 0, &c), 0);
    int64_t id = c.project->id;
    cap_reset(&c);
    cap_t *caps = calloc(READS, sizeof *caps);
    assert_non_null(caps);
    for (int i = 0; i < READS; i++) {
        int rc = i % 2 ? store_project_get(fx->s, id, on_project, &caps[i])
                       : store_project_count(fx->s, on_count, &caps[i]);
        assert_int_equal(rc, 0);
    }
    store_wait(fx->s);
    int bad = 0;
    for (int i = 0; i < READS; i++) {
        if (caps[i].calls != 1 || caps[i].status != 0 ||
            (i % 2 ? caps[i].project->id != id : caps[i].count != 1) ||
            (i > 0 && caps[i].order < caps[i - 1].order))
            bad++;
        cap_reset(&caps[i]);
    }
    free(caps);
    assert_int_equal(bad, 0);
    store_stats_t st;
    store_stats(fx->s, &st);
    assert_int_equal(st.reads, READS);
}

/* ---- group commit ---------------------------------------------------------------------------- */

#define BURST 2000 /* more than STORE_DELIVER_BATCH: delivery spans several wakeups */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_group_commit(void **state) {
    fx_t *fx = *state;
    fx_open(fx, NULL);
    cap_t *caps = calloc(BURST, sizeof *caps);
    assert_non_null(caps);
    for (int i = 0; i < BURST; i++) {
        char name[32], dom[32];
        snprintf(name, sizeof name, "project %d", i);
        snprintf(dom, sizeof dom, "p%d.example", i);
        const char *d[] = {dom};
        assert_int_equal(store_project_create(fx->s, name, d, 1, on_project, &caps[i]), 0);
    }
    /* A read in the same burst goes to the read thread. */
    cap_t ping = {0};
    assert_int_equal(store_ping(fx->s, on_done, &ping), 0);
    store_stats_t st;
    store_stats(fx->s, &st);
    assert_int_equal(st.in_flight, BURST + 1);
    store_wait(fx->s);
    assert_int_equal(ping.status, 0);

    int64_t ids[BURST];
    int bad = 0;
    for (int i = 0; i < BURST; i++) {
        char name[32];
        snprintf(name, sizeof name, "project %d", i);
        if (caps[i].calls != 1 || caps[i].status != 0 || !caps[i].project ||
            strcmp(caps[i].project->name, name) != 0 || caps[i].project->ndomains != 1) {
            print_error("request %d: calls %d status %d\n", i, caps[i].calls, caps[i].status);
            bad++;
            ids[i] = 0;
            continue;
        }
        ids[i] = caps[i].project->id;
        if (i > 0 && caps[i].order < caps[i - 1].order) /* callbacks in submission order */
            bad++;
        cap_reset(&caps[i]);
    }
    assert_int_equal(bad, 0);
    qsort(ids, BURST, sizeof ids[0], cmp_i64);
    for (int i = 1; i < BURST; i++)
        assert_true(ids[i] > ids[i - 1]);

    store_stats(fx->s, &st);
    print_message("group commit: %llu writes in %llu transactions (largest %llu)\n",
                  (unsigned long long)st.writes, (unsigned long long)st.transactions,
                  (unsigned long long)st.largest_batch);
    assert_int_equal(st.writes, BURST);
    assert_true(st.transactions >= 1);
    assert_true(st.transactions < st.writes);
    assert_true(st.largest_batch > 1);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(sync_count(fx), BURST);
    free(caps);
}

/* The write thread is busy (waiting for a lock another connection holds) with a first request;
 * requests submitted meanwhile, over several loop turns, all go into the next transaction. */
static void test_group_commit_while_busy(void **state) {
    fx_t *fx = *state;
    fx_open(fx, NULL); /* busy timeout 5 s */
    assert_int_equal(tdb_connect(&fx->db), 0);
    assert_int_equal(tdb_lock_writes(&fx->db), 0);

    cap_t caps[10] = {{0}};
    assert_int_equal(store_project_create(fx->s, "first", NULL, 0, on_project, &caps[0]), 0);
    uv_run(&fx->loop, UV_RUN_NOWAIT); /* hands it over */
    store_stats_t st;
    for (int i = 0; i < 5000; i++) { /* until the write thread has taken it */
        store_stats(fx->s, &st);
        if (st.writes == 1)
            break;
        usleep(1000);
    }
    assert_int_equal(st.writes, 1);
    for (int i = 1; i < 10; i++) { /* one per loop turn */
        char name[16];
        snprintf(name, sizeof name, "later %d", i);
        assert_int_equal(store_project_create(fx->s, name, NULL, 0, on_project, &caps[i]), 0);
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(caps[0].calls, 0); /* still waiting for the lock */
    assert_int_equal(tdb_unlock_writes(&fx->db), 0);
    store_wait(fx->s);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(caps[i].calls, 1);
        assert_int_equal(caps[i].status, 0);
        cap_reset(&caps[i]);
    }
    store_stats(fx->s, &st);
    assert_int_equal(st.writes, 10);
    assert_int_equal(st.transactions, 2);
    assert_int_equal(st.largest_batch, 9);
}

static void test_batch_failure_isolated(void **state) {
    fx_t *fx = *state;
    fx_open(fx, NULL);
    cap_t seed = {0};
    assert_int_equal(sync_create(fx, "seed", NULL, 0, &seed), 0);
    int64_t seed_id = seed.project->id;
    cap_reset(&seed);
    store_stats_t before;
    store_stats(fx->s, &before);

    /* Submitted in one loop turn: one transaction. The third writes a project row, then fails
     * on its empty domain: its savepoint undoes the row, and only it fails. */
    const char *good[] = {"good.example"};
    const char *bad[] = {"bad.example", ""};
    const char *add[] = {"x.example"};
    cap_t a = {0}, b = {0}, x = {0}, m = {0}, z = {0};
    assert_int_equal(store_project_create(fx->s, "A", good, 1, on_project, &a), 0);
    assert_int_equal(store_project_create(fx->s, "B", good, 1, on_project, &b), 0);
    assert_int_equal(store_project_create(fx->s, "broken", bad, 2, on_project, &x), 0);
    assert_int_equal(
        store_project_domains_update(fx->s, seed_id + 1000, add, 1, NULL, 0, on_project, &m), 0);
    assert_int_equal(store_project_create(fx->s, "Z", NULL, 0, on_project, &z), 0);
    store_wait(fx->s);

    assert_int_equal(a.status, 0);
    assert_int_equal(b.status, 0);
    assert_int_equal(x.status, PL_EINVAL);
    assert_null(x.project);
    assert_int_equal(m.status, STORE_ENOTFOUND);
    assert_int_equal(z.status, 0);
    assert_true(a.order < b.order && b.order < x.order && x.order < m.order && m.order < z.order);

    store_stats_t after;
    store_stats(fx->s, &after);
    assert_int_equal(after.transactions - before.transactions, 1);
    assert_int_equal(after.writes - before.writes, 5);
    assert_int_equal(after.failed - before.failed, 2);

    /* What was committed: seed, A, B, Z; nothing of "broken". */
    cap_t l = {0};
    assert_int_equal(store_project_list(fx->s, on_list, &l), 0);
    store_wait(fx->s);
    assert_int_equal(l.n, 4);
    const char *names[] = {"seed", "A", "B", "Z"};
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(l.list[i]->name, names[i]);
    assert_domains(l.list[1], good, 1);
    assert_domains(l.list[2], good, 1);
    cap_reset(&l);
    cap_reset(&a);
    cap_reset(&b);
    cap_reset(&z);
}

/* Another connection holds the write lock: writes fail with unavailable after the busy
 * timeout, reads still answer (WAL; PostgreSQL's MVCC), and once the lock is gone writes work
 * again. */
static void test_locked_database(void **state) {
    fx_t *fx = *state;
    static const store_options_t opts = {.busy_timeout_ms = 50};
    fx_open(fx, &opts);
    assert_int_equal(tdb_connect(&fx->db), 0);
    assert_int_equal(tdb_lock_writes(&fx->db), 0);

    cap_t w1 = {0}, w2 = {0}, r = {0};
    assert_int_equal(store_project_create(fx->s, "one", NULL, 0, on_project, &w1), 0);
    assert_int_equal(store_project_create(fx->s, "two", NULL, 0, on_project, &w2), 0);
    assert_int_equal(store_ping(fx->s, on_done, &r), 0);
    store_wait(fx->s);
    assert_int_equal(w1.status, PL_EUNAVAIL);
    assert_int_equal(w2.status, PL_EUNAVAIL);
    assert_int_equal(r.status, 0);

    assert_int_equal(tdb_unlock_writes(&fx->db), 0);
    cap_t w3 = {0};
    assert_int_equal(sync_create(fx, "three", NULL, 0, &w3), 0);
    assert_int_equal(w3.status, 0);
    cap_reset(&w3);
    assert_int_equal(sync_count(fx), 1);
}

/* SQLite: with automatic checkpoints off on the write connection (they ran inside commits and
 * stalled the acks behind them), the read thread still copies the WAL back into the database
 * file once it passes 1000 pages, while the store is open: the WAL does not grow forever. */
static void test_sqlite_checkpoint_on_read_thread(void **state) {
    fx_t *fx = *state;
    fx_open(fx, NULL);
    struct stat before;
    assert_int_equal(stat(fx->path, &before), 0);
    /* ~6 MB of project names and domains: well over 1000 pages of 4 KiB in the WAL */
    char name[2048];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    for (int round = 0; round < 6; round++) {
        cap_t *caps = calloc(500, sizeof *caps);
        assert_non_null(caps);
        for (int i = 0; i < 500; i++) {
            snprintf(name, 16, "p%04d-%03d-", round, i);
            name[strlen(name)] = 'n';
            assert_int_equal(store_project_create(fx->s, name, NULL, 0, on_project, &caps[i]), 0);
        }
        store_wait(fx->s);
        for (int i = 0; i < 500; i++) {
            assert_int_equal(caps[i].status, 0);
            cap_reset(&caps[i]);
        }
        free(caps);
    }
    /* the checkpoint runs on the read thread after a commit: wait for the file to grow */
    struct stat after = before;
    for (int i = 0; i < 200 && after.st_size < before.st_size + 4 * 1024 * 1024; i++) {
        usleep(10000);
        assert_int_equal(stat(fx->path, &after), 0);
    }
    print_message("database file %lld -> %lld bytes while open\n", (long long)before.st_size,
                  (long long)after.st_size);
    assert_true(after.st_size >= before.st_size + 4 * 1024 * 1024);
    assert_int_equal(sync_count(fx), 3000);
}

/* ---- bounded queue --------------------------------------------------------------------------- */

static void test_queue_full(void **state) {
    fx_t *fx = *state;
    static const store_options_t opts = {.max_queue = 8};
    fx_open(fx, &opts);
    cap_t caps[8] = {{0}};
    cap_t extra = {0};
    for (int i = 0; i < 8; i++) {
        char name[16];
        snprintf(name, sizeof name, "q%d", i);
        int rc = i % 2 ? store_project_create(fx->s, name, NULL, 0, on_project, &caps[i])
                       : store_ping(fx->s, on_done, &caps[i]);
        assert_int_equal(rc, 0);
    }
    /* Full: refused at once, for reads and writes alike, without a callback. */
    assert_int_equal(store_ping(fx->s, on_done, &extra), PL_EUNAVAIL);
    assert_int_equal(store_project_create(fx->s, "no", NULL, 0, on_project, &extra), PL_EUNAVAIL);
    assert_int_equal(store_project_count(fx->s, on_count, &extra), PL_EUNAVAIL);
    store_stats_t st;
    store_stats(fx->s, &st);
    assert_int_equal(st.rejected, 3);
    assert_int_equal(st.in_flight, 8);
    store_wait(fx->s);
    assert_int_equal(extra.calls, 0);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(caps[i].calls, 1);
        assert_int_equal(caps[i].status, 0);
        cap_reset(&caps[i]);
    }
    /* Room again once delivered. */
    assert_int_equal(sync_count(fx), 4);
}

/* ---- closing --------------------------------------------------------------------------------- */

typedef struct {
    int calls;
    int seq_at_close; /* g_seq when the close callback ran */
    store_stats_t stats;
} close_cap_t;

static void on_closed(store_t *s, void *ud) {
    close_cap_t *c = ud;
    c->calls++;
    c->seq_at_close = g_seq;
    store_stats(s, &c->stats);
}

#define QUEUED 300

static void test_close_completes_queued(void **state) {
    fx_t *fx = *state;
    fx_open(fx, NULL);
    g_seq = 0;
    cap_t *caps = calloc(QUEUED, sizeof *caps);
    assert_non_null(caps);
    for (int i = 0; i < QUEUED; i++) {
        char name[16];
        snprintf(name, sizeof name, "c%d", i);
        int rc = i % 3 == 2 ? store_project_count(fx->s, on_count, &caps[i])
                            : store_project_create(fx->s, name, NULL, 0, on_project, &caps[i]);
        assert_int_equal(rc, 0);
    }
    close_cap_t cc = {0};
    store_close(fx->s, on_closed, &cc);
    /* Closing: new requests are refused at once. */
    cap_t late = {0};
    assert_int_equal(store_ping(fx->s, on_done, &late), PL_EUNAVAIL);
    fx->s = NULL;
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(cc.calls, 1);
    assert_int_equal(cc.seq_at_close, QUEUED); /* after every request's callback */
    assert_int_equal(cc.stats.requests, QUEUED);
    assert_int_equal(cc.stats.failed, 0);
    assert_int_equal(cc.stats.rejected, 1);
    assert_int_equal(late.calls, 0);
    for (int i = 0; i < QUEUED; i++) {
        assert_int_equal(caps[i].calls, 1);
        assert_int_equal(caps[i].status, 0);
        cap_reset(&caps[i]);
    }
    free(caps);

    /* Everything queued was committed. */
    fx_open(fx, NULL);
    assert_int_equal(sync_count(fx), QUEUED / 3 * 2);
    fx_close(fx);
}

/* A callback may submit more work, and may close the store. */
typedef struct {
    fx_t *fx;
    int step;
    int64_t id;
    close_cap_t closed;
} chain_t;

static void chain_on_project(void *ud, int status, const store_project_t *p) {
    chain_t *ch = ud;
    ch->step++;
    if (status != 0)
        return;
    if (ch->step == 1) { /* created: read it back from inside the callback */
        ch->id = p->id;
        if (store_project_get(ch->fx->s, p->id, chain_on_project, ch) != 0)
            ch->step = 100;
    } else if (ch->step == 2) { /* read: queue one more write, then close at once */
        const char *d[] = {"late.example"};
        if (store_project_domains_update(ch->fx->s, p->id, d, 1, NULL, 0, chain_on_project, ch) !=
            0)
            ch->step = 100;
        store_close(ch->fx->s, on_closed, &ch->closed);
        ch->fx->s = NULL;
    } else if (ch->step == 3 && p->ndomains != 1) {
        ch->step = 100;
    }
}

static void test_close_from_callback(void **state) {
    fx_t *fx = *state;
    fx_open(fx, NULL);
    chain_t ch = {.fx = fx};
    assert_int_equal(store_project_create(fx->s, "chain", NULL, 0, chain_on_project, &ch), 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(ch.step, 3);
    assert_int_equal(ch.closed.calls, 1);
    assert_int_equal(ch.closed.stats.requests, 3);
    assert_null(fx->s);
}

/* Results are borrowed; store_project_dup makes an owned deep copy. */
static void test_project_dup(void **state) {
    (void)state;
    char *domains[] = {"a.example", "b.example"};
    store_project_t p = {.id = 7,
                         .name = "n",
                         .domains = domains,
                         .ndomains = 2,
                         .widget_settings_json = "{\"theme\":\"dark\"}",
                         .identity_verification = true,
                         .identity_secret = "s3cret",
                         .created_at = 1,
                         .updated_at = 2};
    store_project_t *c = store_project_dup(&p);
    assert_non_null(c);
    assert_true(c->name != p.name && c->domains != p.domains && c->domains[0] != domains[0]);
    assert_int_equal(c->id, 7);
    assert_string_equal(c->name, "n");
    assert_int_equal(c->ndomains, 2);
    assert_string_equal(c->domains[1], "b.example");
    assert_string_equal(c->widget_settings_json, "{\"theme\":\"dark\"}");
    assert_true(c->identity_verification);
    assert_string_equal(c->identity_secret, "s3cret");
    assert_int_equal(c->created_at, 1);
    assert_int_equal(c->updated_at, 2);
    store_project_free(c);
    store_project_t bare = {.id = 1, .name = "x", .widget_settings_json = "{}"};
    c = store_project_dup(&bare);
    assert_non_null(c);
    assert_null(c->domains);
    assert_null(c->identity_secret);
    store_project_free(c);
    store_project_free(NULL);
}

static void test_strerror(void **state) {
    (void)state;
    assert_string_equal(store_strerror(STORE_ENOTFOUND), "not found");
    assert_string_equal(store_strerror(STORE_ECONFLICT), "conflict");
    assert_string_equal(store_strerror(PL_EUNAVAIL), "unavailable");
    assert_string_equal(store_strerror(0), "ok");
    assert_non_null(store_strerror(UV_ENOENT));
}

/* ---- PostgreSQL outages ---------------------------------------------------------------------- */

/* A throwaway PostgreSQL cluster of this test alone (scripts/pg.sh, named by
 * PARLEY_TEST_PG_SCRIPT: tests/unit/store/run-pg.sh sets it), so that stopping it disturbs
 * nobody else. */
typedef struct {
    char dir[64];
    char url[256];
} cluster_t;

/* Runs `pg.sh cmd dir`; its first output line (the URL for start) goes to out. */
static int cluster_cmd(cluster_t *cl, const char *cmd, char *out, size_t outlen) {
    const char *script = getenv("PARLEY_TEST_PG_SCRIPT");
    if (!script || !script[0]) {
        print_error("PARLEY_TEST_PG_SCRIPT is not set (run tests/unit/store/run-pg.sh)\n");
        return -1;
    }
    char line[1024];
    snprintf(line, sizeof line, "'%s' %s '%s'", script, cmd, cl->dir);
    FILE *f = popen(line, "r");
    if (!f)
        return -1;
    char buf[256] = "";
    if (!fgets(buf, sizeof buf, f))
        buf[0] = '\0';
    while (fgetc(f) != EOF)
        ;
    int rc = pclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    if (out)
        snprintf(out, outlen, "%s", buf);
    return rc == 0 ? 0 : -1;
}

static void cluster_start(cluster_t *cl) {
    if (!cl->dir[0]) {
        strcpy(cl->dir, "/tmp/parley-pgout-XXXXXX");
        assert_non_null(mkdtemp(cl->dir));
    }
    assert_int_equal(cluster_cmd(cl, "start", cl->url, sizeof cl->url), 0);
    assert_non_null(strstr(cl->url, "postgres://"));
}

static void cluster_destroy(cluster_t *cl) {
    if (cl->dir[0])
        (void)cluster_cmd(cl, "destroy", NULL, 0);
}

/* Submits a ping and a project creation and waits for both; their statuses go to *read and
 * *write; returns the time it took, ms. */
static double try_both(fx_t *fx, int *read, int *write) {
    cap_t r = {0}, w = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(store_ping(fx->s, on_done, &r), 0);
    assert_int_equal(store_project_create(fx->s, "during", NULL, 0, on_project, &w), 0);
    store_wait(fx->s);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(r.calls, 1);
    assert_int_equal(w.calls, 1);
    *read = r.status;
    *write = w.status;
    cap_reset(&w);
    return (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
}

/* The server goes away under an open store and comes back: requests fail with unavailable at
 * once (never hang), then the same store works again without being reopened, with its data. */
static void test_pg_outage(void **state) {
    fx_t *fx = *state;
    cluster_t cl = {0};
    cluster_start(&cl);
    snprintf(fx->url, sizeof fx->url, "%s", cl.url);
    fx_open(fx, NULL);
    cap_t c = {0};
    assert_int_equal(sync_create(fx, "before", NULL, 0, &c), 0);
    assert_int_equal(c.status, 0);
    int64_t before = c.project->id;
    cap_reset(&c);

    assert_int_equal(cluster_cmd(&cl, "kill", NULL, 0), 0); /* pg_ctl stop -m immediate */
    int rs, ws;
    for (int i = 0; i < 20; i++) { /* the first try sees the lost connections, then backoff */
        double ms = try_both(fx, &rs, &ws);
        if (rs != PL_EUNAVAIL || ws != PL_EUNAVAIL || ms > 2000) {
            print_error("while down, try %d: read %s, write %s, %.0f ms\n", i, store_strerror(rs),
                        store_strerror(ws), ms);
            fail();
        }
        usleep(20 * 1000);
    }

    cluster_start(&cl); /* same port, same data */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double waited = 0;
    do {
        try_both(fx, &rs, &ws);
        if (rs == 0 && ws == 0)
            break;
        usleep(50 * 1000);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    } while (waited < 15); /* the backoff is capped at 5 s */
    if (rs != 0 || ws != 0)
        print_error("after the restart: read %s, write %s\n", store_strerror(rs),
                    store_strerror(ws));
    assert_int_equal(rs, 0);
    assert_int_equal(ws, 0);
    print_message("store usable again %.2f s after the server came back\n", waited);
    sync_get(fx, before, &c);
    assert_int_equal(c.status, 0);
    assert_string_equal(c.project->name, "before");
    cap_reset(&c);
    fx_close(fx);
    cluster_destroy(&cl);
}

/* The server is killed while a burst of writes is being committed: every request gets 0 or
 * unavailable, and every write acknowledged with 0 is in the database afterwards. */
#define CRASH_BURST 3000

static void test_pg_crash_keeps_acknowledged(void **state) {
    fx_t *fx = *state;
    cluster_t cl = {0};
    cluster_start(&cl);
    snprintf(fx->url, sizeof fx->url, "%s", cl.url);
    fx_open(fx, NULL);
    cap_t *caps = calloc(CRASH_BURST, sizeof *caps);
    assert_non_null(caps);
    /* A first part until some of it is acknowledged, then the rest, and the crash while that
     * is being written. */
    for (int i = 0; i < CRASH_BURST; i++) {
        char name[32];
        snprintf(name, sizeof name, "burst %d", i);
        assert_int_equal(store_project_create(fx->s, name, NULL, 0, on_project, &caps[i]), 0);
        if (i == CRASH_BURST / 4)
            while (caps[0].calls == 0)
                uv_run(&fx->loop, UV_RUN_ONCE);
    }
    uv_run(&fx->loop, UV_RUN_NOWAIT); /* hands the rest over */
    assert_int_equal(cluster_cmd(&cl, "kill", NULL, 0), 0);
    store_wait(fx->s);
    int acked = 0, bad = 0;
    for (int i = 0; i < CRASH_BURST; i++) {
        if (caps[i].calls != 1 || (caps[i].status != 0 && caps[i].status != PL_EUNAVAIL))
            bad++;
        acked += caps[i].status == 0;
    }
    assert_int_equal(bad, 0);

    cluster_start(&cl);
    int64_t count = -1;
    for (int i = 0; i < 300 && count < 0; i++) { /* until the store reconnected */
        cap_t n = {0};
        assert_int_equal(store_project_count(fx->s, on_count, &n), 0);
        store_wait(fx->s);
        if (n.status == 0)
            count = n.count;
        else
            usleep(50 * 1000);
    }
    print_message("%d of %d acknowledged before the crash, %lld stored\n", acked, CRASH_BURST,
                  (long long)count);
    assert_true(count >= acked && count <= CRASH_BURST);
    for (int i = 0; i < CRASH_BURST; i++) { /* each acknowledged one, by its id */
        if (caps[i].status != 0)
            continue;
        cap_t g = {0};
        sync_get(fx, caps[i].project->id, &g);
        if (g.status != 0)
            bad++;
        cap_reset(&g);
    }
    assert_int_equal(bad, 0);
    for (int i = 0; i < CRASH_BURST; i++)
        cap_reset(&caps[i]);
    free(caps);
    fx_close(fx);
    cluster_destroy(&cl);
}

/* The server drops the store's connections while they are idle (a restart between requests,
 * an administrator terminating backends): the next requests notice before they start and
 * reconnect, so they succeed. */
static void test_pg_idle_connections_dropped(void **state) {
    fx_t *fx = *state;
    fx_open(fx, NULL);
    cap_t c = {0};
    assert_int_equal(sync_create(fx, "first", NULL, 0, &c), 0);
    assert_int_equal(c.status, 0);
    cap_reset(&c);
    assert_int_equal(sync_count(fx), 1); /* the read connection is up too */
    assert_int_equal(tdb_connect(&fx->db), 0);
    int64_t n = tdb_int(&fx->db,
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND application_name = 'parley' "
                        "AND pid <> pg_backend_pid()",
                        NULL, NULL);
    assert_int_equal(n, 2);
    usleep(200 * 1000); /* the server closes the sockets */
    int rs, ws;
    try_both(fx, &rs, &ws);
    assert_int_equal(rs, 0);
    assert_int_equal(ws, 0);
    assert_int_equal(sync_count(fx), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_project_create_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_project_create_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_project_list_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_project_domains_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_while_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_failure_isolated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_completes_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_from_callback, setup, teardown),
        cmocka_unit_test(test_project_dup),
        cmocka_unit_test(test_strerror),
    };
    /* PostgreSQL's own failure modes, when the tests run against it. */
    const struct CMUnitTest pg_tests[] = {
        cmocka_unit_test_setup_teardown(test_pg_outage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_crash_keeps_acknowledged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_idle_connections_dropped, setup, teardown),
    };
    /* SQLite's own mechanics, when the tests run against it. */
    const struct CMUnitTest sqlite_tests[] = {
        cmocka_unit_test_setup_teardown(test_sqlite_checkpoint_on_read_thread, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (tdb_is_pg())
        failed += cmocka_run_group_tests_name("postgres", pg_tests, NULL, NULL);
    else
        failed += cmocka_run_group_tests_name("sqlite", sqlite_tests, NULL, NULL);
    return failed;
}
