/* Accounts and sessions (docs/http-api.md "Accounts"): register, login, refresh-token rotation
 * with reuse detection, logout, logout-all, the current user.
 *
 * Argon2id hashing and verification run on libuv's work queue (uv_queue_work), never on the
 * loop: each takes ~90 ms and 64 MiB. At most PW_MAX_QUEUED of them wait at once; more logins
 * get 503 rather than an unbounded queue. */
#include "app/api.h"

#include "app/accounts.h"
#include "core/clock.h"
#include "core/id.h"
#include "core/log.h"
#include "core/map.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REFRESH_COOKIE "parley_refresh"
#define REFRESH_TTL_MS (30LL * 24 * 3600 * 1000)
#define FAIL_WINDOW_MS (15 * 60 * 1000)
#define FAIL_PER_ACCOUNT 5
#define FAIL_PER_IP 20
#define FAIL_MAX_KEYS 100000
#define PW_MAX_QUEUED 64

typedef struct {
    char *key; /* owned; map key */
    size_t keylen;
    uint32_t failures;
    uint32_t pending;      /* logins being verified now: counted as failures until they end */
    uint64_t window_start; /* monotonic ms */
} fail_entry_t;

typedef struct api_auth_state {
    pl_map_t accounts; /* e-mail -> failures */
    pl_map_t ips;      /* address -> failures */
    uint32_t pw_queued; /* hash jobs waiting or running */
} api_auth_state_t;

/* ---- failed-login counters -------------------------------------------------------------------- */

static fail_entry_t *fail_get(pl_map_t *m, const char *key, bool create) {
    size_t len = strlen(key);
    fail_entry_t *e = pl_map_get(m, key, len);
    uint64_t now = pl_mono_ms();
    if (e && now - e->window_start > FAIL_WINDOW_MS) {
        e->failures = 0;
        e->window_start = now;
    }
    if (e || !create)
        return e;
    if (pl_map_count(m) >= FAIL_MAX_KEYS) {
        /* Drop expired entries; if none, refuse to track more (callers treat NULL as "no
         * record" and the per-address counter still applies). */
        size_t it = 0, n = 0;
        const pl_map_slot_t *slot;
        fail_entry_t **drop = NULL;
        while (pl_map_next(m, &it, &slot)) {
            fail_entry_t *x = slot->value;
            if (now - x->window_start > FAIL_WINDOW_MS) {
                fail_entry_t **nd = realloc(drop, (n + 1) * sizeof *nd);
                if (!nd)
                    break;
                drop = nd;
                drop[n++] = x;
            }
        }
        for (size_t i = 0; i < n; i++) {
            pl_map_del(m, drop[i]->key, drop[i]->keylen);
            free(drop[i]->key);
            free(drop[i]);
        }
        free(drop);
        if (pl_map_count(m) >= FAIL_MAX_KEYS)
            return NULL;
    }
    e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->key = pl_xstrdup(key);
    e->keylen = len;
    e->window_start = now;
    if (pl_map_put(m, e->key, e->keylen, e, NULL) != 0) {
        free(e->key);
        free(e);
        return NULL;
    }
    return e;
}

/* A login attempt is counted as pending from its start, so that many attempts at once cannot
 * all pass the check before the first verification ends. Returns false (blocked) when the
 * account or the address has used up its failures. */
static bool login_begin(app_t *app, const char *email, const char *ip) {
    fail_entry_t *a = fail_get(&app->auth->accounts, email, true);
    fail_entry_t *i = fail_get(&app->auth->ips, ip, true);
    if ((a && a->failures + a->pending >= FAIL_PER_ACCOUNT) ||
        (i && i->failures + i->pending >= FAIL_PER_IP))
        return false;
    if (a)
        a->pending++;
    if (i)
        i->pending++;
    return true;
}

static void login_end(app_t *app, const char *email, const char *ip, bool ok) {
    fail_entry_t *a = fail_get(&app->auth->accounts, email, false);
    fail_entry_t *i = fail_get(&app->auth->ips, ip, false);
    if (a && a->pending)
        a->pending--;
    if (i && i->pending)
        i->pending--;
    if (ok) {
        if (a)
            a->failures = 0;
        return;
    }
    if (a)
        a->failures++;
    if (i)
        i->failures++;
    pl_log_info("auth.login_failed", "ip=%s", ip);
}

static void free_fail_map(pl_map_t *m) {
    size_t it = 0;
    const pl_map_slot_t *slot;
    while (pl_map_next(m, &it, &slot)) {
        fail_entry_t *e = slot->value;
        free(e->key);
        free(e);
    }
    pl_map_dispose(m);
}

/* ---- password work off the loop --------------------------------------------------------------- */

typedef struct {
    uv_work_t work;
    api_call_t *c;
    char password[APP_PASSWORD_MAX * 4 + 1];
    char hash[crypto_pwhash_STRBYTES];
    bool verify;       /* verify password against hash; else hash it into hash */
    bool ok;           /* result */
    void (*done)(api_call_t *c, bool ok, const char *hash);
} pw_job_t;

static char g_dummy_hash[crypto_pwhash_STRBYTES];
static pthread_once_t g_dummy_once = PTHREAD_ONCE_INIT;

static void make_dummy_hash(void) {
    char pw[32];
    pl_random_id(pw, 16);
    if (crypto_pwhash_str(g_dummy_hash, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        g_dummy_hash[0] = '\0';
}

static void pw_work(uv_work_t *w) {
    pw_job_t *j = w->data;
    /* Hashing is slow on purpose (~90 ms of CPU each): run it at a lower priority than the
     * event loop, so that on a small machine a burst of logins takes the CPU the loop leaves,
     * instead of delaying every visitor's messages. Linux sets nice per thread. */
    static _Thread_local bool niced;
    if (!niced) {
        setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
        niced = true;
    }
    if (j->verify) {
        if (!j->hash[0]) {
            /* Unknown account: spend the same time on a hash that cannot match. */
            pthread_once(&g_dummy_once, make_dummy_hash);
            app_password_verify(g_dummy_hash, j->password);
            j->ok = false;
        } else {
            j->ok = app_password_verify(j->hash, j->password);
        }
    } else {
        j->ok = app_password_hash(j->password, j->hash, sizeof j->hash) == 0;
    }
    sodium_memzero(j->password, sizeof j->password);
}

static void pw_after(uv_work_t *w, int status) {
    pw_job_t *j = w->data;
    app_t *app = j->c->app;
    app->auth->pw_queued--;
    j->done(j->c, status == 0 && j->ok, j->hash);
    sodium_memzero(j, sizeof *j);
    free(j);
}

/* Queues a hash (hash == NULL) or a verification. false when the queue is full. */
static bool pw_submit(api_call_t *c, const char *password, const char *hash,
                      void (*done)(api_call_t *, bool, const char *)) {
    app_t *app = c->app;
    if (app->auth->pw_queued >= PW_MAX_QUEUED)
        return false;
    pw_job_t *j = calloc(1, sizeof *j);
    if (!j)
        return false;
    j->c = c;
    j->work.data = j;
    j->verify = hash != NULL;
    j->done = done;
    snprintf(j->password, sizeof j->password, "%s", password);
    if (hash)
        snprintf(j->hash, sizeof j->hash, "%s", hash);
    if (uv_queue_work(app->loop, &j->work, pw_work, pw_after) != 0) {
        free(j);
        return false;
    }
    app->auth->pw_queued++;
    return true;
}

/* ---- cookies and tokens ------------------------------------------------------------------------ */

static void hash_token(const char *token, char out[2 * crypto_hash_sha256_BYTES + 1]) {
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)token, strlen(token));
    sodium_bin2hex(out, 2 * crypto_hash_sha256_BYTES + 1, h, sizeof h);
}

static bool secure_cookies(app_t *app) {
    return strncmp(app->cfg->public_url, "https://", 8) == 0;
}

static void set_refresh_cookie(api_call_t *c, const char *token) {
    char v[256];
    if (token)
        snprintf(v, sizeof v,
                 REFRESH_COOKIE "=%s; HttpOnly; SameSite=Strict; Path=/api/v1/auth; "
                                "Max-Age=%lld%s",
                 token, (long long)(REFRESH_TTL_MS / 1000), secure_cookies(c->app) ? "; Secure" : "");
    else
        snprintf(v, sizeof v,
                 REFRESH_COOKIE "=; HttpOnly; SameSite=Strict; Path=/api/v1/auth; Max-Age=0%s",
                 secure_cookies(c->app) ? "; Secure" : "");
    http_response_header(c->req, "Set-Cookie", v);
}

/* The refresh token from the Cookie header into out (n bytes); false if absent. */
static bool cookie_token(http_request_t *req, char *out, size_t n) {
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!pl_slice_case_eq_cstr(req->headers[i].name, "cookie"))
            continue;
        pl_slice_t v = req->headers[i].value;
        const char *p = v.ptr, *end = v.ptr + v.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *eq = memchr(p, '=', (size_t)(end - p));
            const char *semi = memchr(p, ';', (size_t)(end - p));
            if (!semi)
                semi = end;
            if (eq && eq < semi && (size_t)(eq - p) == strlen(REFRESH_COOKIE) &&
                memcmp(p, REFRESH_COOKIE, (size_t)(eq - p)) == 0) {
                size_t len = (size_t)(semi - eq - 1);
                if (len == 0 || len >= n)
                    return false;
                memcpy(out, eq + 1, len);
                out[len] = '\0';
                return true;
            }
            p = semi;
        }
    }
    return false;
}

/* Issues a session for c->user_id: a new refresh token (family 0 = new family) in the store,
 * then the answer {accessToken, user} with the cookie. */
typedef struct {
    char token[64];
    int64_t created_at;
    int status_code;
} session_t;

static void session_stored_cb(void *ud, int status, int64_t family_id) {
    api_call_t *c = ud;
    session_t *s = c->data;
    (void)family_id;
    if (status != 0) {
        free(s);
        c->data = NULL;
        api_store_error(c, status, "User not found");
        return;
    }
    pl_buf_t tok;
    pl_buf_init(&tok, 0);
    if (app_access_token(&tok, c->app->jwt_secret, c->user_id, c->email, pl_wall_ms()) != 0) {
        pl_buf_dispose(&tok);
        free(s);
        c->data = NULL;
        api_error(c, 503, "Service unavailable");
        return;
    }
    set_refresh_cookie(c, s->token);
    json_t *body = json_pack("{s:s, s:o}", "accessToken", tok.data, "user",
                             api_user_json(c->user_id, c->email, c->full_name, s->created_at));
    int code = s->status_code;
    pl_buf_dispose(&tok);
    sodium_memzero(s, sizeof *s);
    free(s);
    c->data = NULL;
    api_json(c, code, body);
}

static void start_session(api_call_t *c, int status_code, int64_t created_at) {
    session_t *s = pl_xcalloc(1, sizeof *s);
    pl_random_id(s->token, 32);
    s->created_at = created_at;
    s->status_code = status_code;
    c->data = s;
    char h[2 * crypto_hash_sha256_BYTES + 1];
    hash_token(s->token, h);
    int64_t now = pl_wall_ms();
    if (store_refresh_create(c->app->store, c->user_id, 0, h, now + REFRESH_TTL_MS, now,
                             session_stored_cb, c) != 0)
        session_stored_cb(c, PL_EUNAVAIL, 0);
}

/* ---- register ------------------------------------------------------------------------------------ */

static void register_created_cb(void *ud, int status, const store_user_t *u) {
    api_call_t *c = ud;
    if (status == STORE_ECONFLICT) {
        api_error(c, 409, "email: an account with this e-mail address already exists");
        return;
    }
    if (status != 0) {
        api_store_error(c, status, "Not found");
        return;
    }
    c->user_id = u->id;
    snprintf(c->email, sizeof c->email, "%s", u->email);
    snprintf(c->full_name, sizeof c->full_name, "%s", u->full_name ? u->full_name : "");
    start_session(c, 201, u->created_at);
}

static void register_hashed(api_call_t *c, bool ok, const char *hash) {
    if (!ok) {
        api_error(c, 503, "Service unavailable");
        return;
    }
    if (store_user_create(c->app->store, c->email, hash, c->full_name, pl_wall_ms(),
                          register_created_cb, c) != 0)
        api_error(c, 503, "Service unavailable");
}

/* Reads a required string field of 1..max characters into *out; answers 400 and returns false
 * otherwise. */
static bool body_string(api_call_t *c, const char *key, size_t min, size_t max, const char **out) {
    json_t *v = json_object_get(c->body, key);
    char msg[160];
    if (!json_is_string(v)) {
        snprintf(msg, sizeof msg, "%s: must be a string", key);
        api_error(c, 400, msg);
        return false;
    }
    size_t chars = 0, len = json_string_length(v);
    const char *s = json_string_value(v);
    for (size_t i = 0; i < len; i++)
        chars += ((unsigned char)s[i] & 0xC0) != 0x80;
    if (chars < min || chars > max || memchr(s, '\0', len)) {
        snprintf(msg, sizeof msg, "%s: must be %zu to %zu characters", key, min, max);
        api_error(c, 400, msg);
        return false;
    }
    *out = s;
    return true;
}

static void do_register(api_call_t *c) {
    const char *email, *password, *full_name;
    if (!body_string(c, "email", 3, 254, &email))
        return;
    if (app_email_normalize(email, c->email) != 0) {
        api_error(c, 400, "email: must be a valid e-mail address");
        return;
    }
    if (!body_string(c, "password", APP_PASSWORD_MIN, APP_PASSWORD_MAX, &password) ||
        !body_string(c, "fullName", 1, 100, &full_name))
        return;
    snprintf(c->full_name, sizeof c->full_name, "%s", full_name);
    if (!pw_submit(c, password, NULL, register_hashed))
        api_error(c, 503, "Too many sign-ups at once: try again");
}

/* ---- login --------------------------------------------------------------------------------------- */

typedef struct {
    int64_t user_id;
    int64_t created_at;
    char full_name[512];
} login_t;

static void login_verified(api_call_t *c, bool ok, const char *hash) {
    login_t *l = c->data;
    (void)hash;
    if (!ok || !l->user_id) {
        free(l);
        c->data = NULL;
        login_end(c->app, c->email, http_request_remote_ip(c->req), false);
        api_error(c, 401, "Invalid email or password");
        return;
    }
    login_end(c->app, c->email, http_request_remote_ip(c->req), true);
    c->user_id = l->user_id;
    snprintf(c->full_name, sizeof c->full_name, "%s", l->full_name);
    int64_t created = l->created_at;
    free(l);
    c->data = NULL;
    start_session(c, 200, created);
}

static void login_user_cb(void *ud, int status, const store_user_t *u) {
    api_call_t *c = ud;
    if (status != 0 && status != STORE_ENOTFOUND) {
        login_end(c->app, c->email, http_request_remote_ip(c->req), true);
        api_error(c, 503, "Service unavailable");
        return;
    }
    login_t *l = pl_xcalloc(1, sizeof *l);
    c->data = l;
    const char *password = json_string_value(json_object_get(c->body, "password"));
    const char *hash = "";
    if (status == 0) {
        l->user_id = u->id;
        l->created_at = u->created_at;
        snprintf(l->full_name, sizeof l->full_name, "%s", u->full_name ? u->full_name : "");
        hash = u->password_hash ? u->password_hash : "";
    }
    if (!pw_submit(c, password, hash, login_verified)) {
        free(l);
        c->data = NULL;
        login_end(c->app, c->email, http_request_remote_ip(c->req), true);
        api_error(c, 503, "Too many logins at once: try again");
    }
}

static void do_login(api_call_t *c) {
    const char *email, *password;
    if (!body_string(c, "email", 1, 254, &email) ||
        !body_string(c, "password", 1, APP_PASSWORD_MAX, &password))
        return;
    if (app_email_normalize(email, c->email) != 0)
        snprintf(c->email, sizeof c->email, "invalid");
    if (!login_begin(c->app, c->email, http_request_remote_ip(c->req))) {
        http_response_header(c->req, "Retry-After", "900");
        api_error(c, 429, "Too many failed logins: try again later");
        return;
    }
    if (store_user_by_email(c->app->store, c->email, login_user_cb, c) != 0) {
        login_end(c->app, c->email, http_request_remote_ip(c->req), true);
        api_error(c, 503, "Service unavailable");
    }
}

/* ---- refresh, logout ----------------------------------------------------------------------------- */

typedef struct {
    char token[64]; /* the new refresh token */
} refresh_t;

static void refresh_user_cb(void *ud, int status, const store_user_t *u) {
    api_call_t *c = ud;
    refresh_t *r = c->data;
    if (status != 0) {
        free(r);
        c->data = NULL;
        set_refresh_cookie(c, NULL);
        if (status == STORE_ENOTFOUND)
            api_error(c, 401, "User not found");
        else
            api_error(c, 503, "Service unavailable");
        return;
    }
    pl_buf_t tok;
    pl_buf_init(&tok, 0);
    if (app_access_token(&tok, c->app->jwt_secret, u->id, u->email, pl_wall_ms()) != 0) {
        pl_buf_dispose(&tok);
        free(r);
        c->data = NULL;
        api_error(c, 503, "Service unavailable");
        return;
    }
    set_refresh_cookie(c, r->token);
    json_t *body = json_pack("{s:s}", "accessToken", tok.data);
    pl_buf_dispose(&tok);
    sodium_memzero(r, sizeof *r);
    free(r);
    c->data = NULL;
    api_json(c, 200, body);
}

static void refresh_rotated_cb(void *ud, int status, const store_refresh_t *res) {
    api_call_t *c = ud;
    if (status != 0) {
        free(c->data);
        c->data = NULL;
        api_error(c, 503, "Service unavailable");
        return;
    }
    if (res->status != STORE_TOKEN_OK) {
        free(c->data);
        c->data = NULL;
        if (res->status == STORE_TOKEN_REUSED)
            pl_log_warn("auth.refresh_reuse", "user=%lld family=%lld action=family_revoked",
                        (long long)res->user_id, (long long)res->family_id);
        set_refresh_cookie(c, NULL);
        api_error(c, 401, res->status == STORE_TOKEN_EXPIRED ? "Refresh token expired"
                                                             : "Invalid refresh token");
        return;
    }
    if (store_user_get(c->app->store, res->user_id, refresh_user_cb, c) != 0) {
        free(c->data);
        c->data = NULL;
        api_error(c, 503, "Service unavailable");
    }
}

static void do_refresh(api_call_t *c) {
    char old[128];
    if (!cookie_token(c->req, old, sizeof old)) {
        api_error(c, 401, "Missing refresh token");
        return;
    }
    refresh_t *r = pl_xcalloc(1, sizeof *r);
    pl_random_id(r->token, 32);
    c->data = r;
    char old_h[2 * crypto_hash_sha256_BYTES + 1], new_h[2 * crypto_hash_sha256_BYTES + 1];
    hash_token(old, old_h);
    hash_token(r->token, new_h);
    int64_t now = pl_wall_ms();
    if (store_refresh_rotate(c->app->store, old_h, new_h, now + REFRESH_TTL_MS, now,
                             refresh_rotated_cb, c) != 0) {
        free(r);
        c->data = NULL;
        api_error(c, 503, "Service unavailable");
    }
}

static void logout_done_cb(void *ud, int status) {
    api_call_t *c = ud;
    if (status != 0) {
        api_error(c, 503, "Service unavailable");
        return;
    }
    set_refresh_cookie(c, NULL);
    api_status(c, 204);
}

/* Logout goes through a rotation: a token that was already rotated away is reuse (a stolen
 * copy), which revokes its whole family; a current one is rotated and its fresh successor
 * revoked at once, so the session ends either way. */
static void logout_rotated_cb(void *ud, int status, const store_refresh_t *res) {
    api_call_t *c = ud;
    char *new_hash = c->data;
    c->data = NULL;
    if (status != 0) {
        free(new_hash);
        api_error(c, 503, "Service unavailable");
        return;
    }
    if (res->status != STORE_TOKEN_OK) {
        free(new_hash);
        logout_done_cb(c, 0);
        return;
    }
    int rc = store_refresh_revoke(c->app->store, new_hash, pl_wall_ms(), logout_done_cb, c);
    free(new_hash);
    if (rc != 0)
        api_error(c, 503, "Service unavailable");
}

static void do_logout(api_call_t *c) {
    char tok[128];
    if (!cookie_token(c->req, tok, sizeof tok)) {
        set_refresh_cookie(c, NULL);
        api_status(c, 204);
        return;
    }
    char old_h[2 * crypto_hash_sha256_BYTES + 1];
    char *new_h = pl_xmalloc(2 * crypto_hash_sha256_BYTES + 1);
    char fresh[64];
    pl_random_id(fresh, 32);
    hash_token(tok, old_h);
    hash_token(fresh, new_h);
    sodium_memzero(fresh, sizeof fresh);
    c->data = new_h;
    int64_t now = pl_wall_ms();
    if (store_refresh_rotate(c->app->store, old_h, new_h, now + REFRESH_TTL_MS, now,
                             logout_rotated_cb, c) != 0) {
        free(new_h);
        c->data = NULL;
        api_error(c, 503, "Service unavailable");
    }
}

static void do_logout_all(api_call_t *c) {
    if (store_user_logout_all(c->app->store, c->user_id, pl_wall_ms(), logout_done_cb, c) != 0)
        api_error(c, 503, "Service unavailable");
}

static void me_cb(void *ud, int status, const store_user_t *u) {
    api_call_t *c = ud;
    if (status != 0) {
        api_store_error(c, status, "User not found");
        return;
    }
    api_json(c, 200, api_user_json(u->id, u->email, u->full_name, u->created_at));
}

static void do_me(api_call_t *c) {
    if (store_user_get(c->app->store, c->user_id, me_cb, c) != 0)
        api_error(c, 503, "Service unavailable");
}

/* ---- routes ---------------------------------------------------------------------------------------- */

static void h_register(http_request_t *req, void *ud) {
    api_begin(ud, req, API_BODY, NULL, NULL, do_register);
}
static void h_login(http_request_t *req, void *ud) {
    api_begin(ud, req, API_BODY, NULL, NULL, do_login);
}
static void h_refresh(http_request_t *req, void *ud) {
    api_begin(ud, req, 0, NULL, NULL, do_refresh);
}
static void h_logout(http_request_t *req, void *ud) {
    api_begin(ud, req, 0, NULL, NULL, do_logout);
}
static void h_logout_all(http_request_t *req, void *ud) {
    api_begin(ud, req, API_AUTH, NULL, NULL, do_logout_all);
}
static void h_me(http_request_t *req, void *ud) {
    api_begin(ud, req, API_AUTH, NULL, NULL, do_me);
}

void api_auth_register(app_t *app, http_router_t *r) {
    app->auth = pl_xcalloc(1, sizeof *app->auth);
    pl_map_init(&app->auth->accounts);
    pl_map_init(&app->auth->ips);
    http_router_add(r, "POST", "/api/v1/auth/register", h_register, app);
    http_router_add(r, "POST", "/api/v1/auth/login", h_login, app);
    http_router_add(r, "GET", "/api/v1/auth/refresh", h_refresh, app);
    http_router_add(r, "POST", "/api/v1/auth/logout", h_logout, app);
    http_router_add(r, "POST", "/api/v1/auth/logout-all", h_logout_all, app);
    http_router_add(r, "GET", "/api/v1/user/me", h_me, app);
}

void app_http_dispose(app_t *app) {
    if (!app->auth)
        return;
    free_fail_map(&app->auth->accounts);
    free_fail_map(&app->auth->ips);
    free(app->auth);
    app->auth = NULL;
}
