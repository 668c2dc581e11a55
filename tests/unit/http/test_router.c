/* Unit tests for src/http/router.h: literal segments, `:param` segments (one non-empty
 * segment, not decoded), a final `*`, routes tried in the order added, 404 versus 405 with the
 * Allow list, trailing slashes and empty segments. Each table row is a request and the route
 * (by handler) it must reach, or the refusal it must get. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "http/router.h"

#include <string.h>

/* Handlers are never called here; they identify which route matched. Their bodies differ so
 * that the compiler cannot fold them into one address. */
static int g_called;
static void h_health(http_request_t *req, void *ud) {
    (void)req;
    (void)ud;
    g_called = 1;
}
static void h_settings(http_request_t *req, void *ud) {
    (void)req;
    (void)ud;
    g_called = 2;
}
static void h_settings_options(http_request_t *req, void *ud) {
    (void)req;
    (void)ud;
    g_called = 3;
}
static void h_health_post(http_request_t *req, void *ud) {
    (void)req;
    (void)ud;
    g_called = 4;
}
static void h_messages(http_request_t *req, void *ud) {
    (void)req;
    (void)ud;
    g_called = 5;
}
static void h_socketio(http_request_t *req, void *ud) {
    (void)req;
    (void)ud;
    g_called = 6;
}
static void h_static(http_request_t *req, void *ud) {
    (void)req;
    (void)ud;
    g_called = 7;
}
static void h_first(http_request_t *req, void *ud) {
    (void)req;
    (void)ud;
    g_called = 8;
}
static void h_second(http_request_t *req, void *ud) {
    (void)req;
    (void)ud;
    g_called = 9;
}

static int g_ud_health, g_ud_settings, g_ud_static;

typedef struct {
    const char *method, *path;
    http_route_result_t result;
    http_handler_cb handler;              /* on FOUND */
    const char *allow;                    /* on BAD_METHOD */
    const char *param_name, *param_value; /* one parameter to check on FOUND, or NULL */
    const char *param2_name, *param2_value;
} row_t;

static int run_rows(const http_router_t *r, const row_t *rows, size_t n) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        http_request_t req;
        memset(&req, 0, sizeof req);
        http_handler_cb handler = NULL;
        void *ud = NULL;
        char allow[128];
        memset(allow, 0, sizeof allow);
        http_route_result_t res =
            http_router_match(r, pl_slice_cstr(rows[i].method), pl_slice_cstr(rows[i].path), &req,
                              &handler, &ud, allow, sizeof allow);
        if (res != rows[i].result) {
            print_error("row %zu: %s %s: result %d, want %d\n", i, rows[i].method, rows[i].path,
                        (int)res, (int)rows[i].result);
            bad++;
            continue;
        }
        if (res == HTTP_ROUTE_FOUND && handler != rows[i].handler) {
            print_error("row %zu: %s %s: wrong handler\n", i, rows[i].method, rows[i].path);
            bad++;
        }
        if (res == HTTP_ROUTE_BAD_METHOD && strcmp(allow, rows[i].allow) != 0) {
            print_error("row %zu: %s %s: Allow '%s', want '%s'\n", i, rows[i].method, rows[i].path,
                        allow, rows[i].allow);
            bad++;
        }
        const char *names[2] = {rows[i].param_name, rows[i].param2_name};
        const char *values[2] = {rows[i].param_value, rows[i].param2_value};
        for (int k = 0; k < 2 && res == HTTP_ROUTE_FOUND; k++) {
            if (!names[k])
                continue;
            pl_slice_t v = http_request_param(&req, names[k]);
            if (!v.ptr || !pl_slice_eq_cstr(v, values[k])) {
                print_error("row %zu: %s %s: param %s = '%.*s', want '%s'\n", i, rows[i].method,
                            rows[i].path, names[k], (int)v.len, v.ptr ? v.ptr : "", values[k]);
                bad++;
            }
        }
    }
    return bad;
}

/* The routes of the real server, in the order main.c adds them. */
static http_router_t *app_router(void) {
    http_router_t *r = http_router_new();
    assert_non_null(r);
    http_router_add(r, "GET", "/health", h_health, &g_ud_health);
    http_router_add(r, "POST", "/health-post-only", h_health_post, NULL);
    http_router_add(r, "GET", "/api/v1/public/projects/:id/settings", h_settings, &g_ud_settings);
    http_router_add(r, "OPTIONS", "/api/v1/public/projects/:id/settings", h_settings_options, NULL);
    http_router_add(r, "GET", "/api/v1/projects/:pid/inbox/conversations/:id/messages", h_messages,
                    NULL);
    http_router_add(r, "POST", "/api/v1/projects/:pid/inbox/conversations/:id/messages", h_messages,
                    NULL);
    http_router_add(r, NULL, "/socket.io/*", h_socketio, NULL);
    http_router_add(r, "GET", "/*", h_static, &g_ud_static);
    return r;
}

static void test_literal_and_params(void **state) {
    (void)state;
    http_router_t *r = app_router();
    static const row_t rows[] = {
        {"GET", "/health", HTTP_ROUTE_FOUND, h_health, NULL, NULL, NULL, NULL, NULL},
        {"GET", "/api/v1/public/projects/42/settings", HTTP_ROUTE_FOUND, h_settings, NULL, "id",
         "42", NULL, NULL},
        {"OPTIONS", "/api/v1/public/projects/42/settings", HTTP_ROUTE_FOUND, h_settings_options,
         NULL, "id", "42", NULL, NULL},
        /* A parameter is any one non-empty segment, as sent (not decoded, not validated). */
        {"GET", "/api/v1/public/projects/abc/settings", HTTP_ROUTE_FOUND, h_settings, NULL, "id",
         "abc", NULL, NULL},
        {"GET", "/api/v1/public/projects/%34%32/settings", HTTP_ROUTE_FOUND, h_settings, NULL, "id",
         "%34%32", NULL, NULL},
        {"GET", "/api/v1/public/projects/-1/settings", HTTP_ROUTE_FOUND, h_settings, NULL, "id",
         "-1", NULL, NULL},
        {"GET", "/api/v1/projects/7/inbox/conversations/99/messages", HTTP_ROUTE_FOUND, h_messages,
         NULL, "pid", "7", "id", "99"},
        {"POST", "/api/v1/projects/7/inbox/conversations/99/messages", HTTP_ROUTE_FOUND, h_messages,
         NULL, "pid", "7", "id", "99"},
        /* Any method on a route added with NULL. */
        {"GET", "/socket.io/", HTTP_ROUTE_FOUND, h_socketio, NULL, NULL, NULL, NULL, NULL},
        {"POST", "/socket.io/", HTTP_ROUTE_FOUND, h_socketio, NULL, NULL, NULL, NULL, NULL},
        {"DELETE", "/socket.io/x/y", HTTP_ROUTE_FOUND, h_socketio, NULL, NULL, NULL, NULL, NULL},
        /* The final catch-all for static files. */
        {"GET", "/", HTTP_ROUTE_FOUND, h_static, NULL, NULL, NULL, NULL, NULL},
        {"GET", "/widget.js", HTTP_ROUTE_FOUND, h_static, NULL, NULL, NULL, NULL, NULL},
        {"GET", "/app/", HTTP_ROUTE_FOUND, h_static, NULL, NULL, NULL, NULL, NULL},
        {"GET", "/app/assets/x.css", HTTP_ROUTE_FOUND, h_static, NULL, NULL, NULL, NULL, NULL},
        /* Paths that are near misses of the API fall through to the catch-all for GET. */
        {"GET", "/healthz", HTTP_ROUTE_FOUND, h_static, NULL, NULL, NULL, NULL, NULL},
        {"GET", "/health/", HTTP_ROUTE_FOUND, h_static, NULL, NULL, NULL, NULL, NULL},
        {"GET", "/api/v1/public/projects//settings", HTTP_ROUTE_FOUND, h_static, NULL, NULL, NULL,
         NULL, NULL},
        {"GET", "/api/v1/public/projects/42/settings/", HTTP_ROUTE_FOUND, h_static, NULL, NULL,
         NULL, NULL, NULL},
        {"GET", "/api/v1/public/projects/42", HTTP_ROUTE_FOUND, h_static, NULL, NULL, NULL, NULL,
         NULL},
        {"GET", "/api/v1/public/projects/4/2/settings", HTTP_ROUTE_FOUND, h_static, NULL, NULL,
         NULL, NULL, NULL},
    };
    assert_int_equal(run_rows(r, rows, sizeof rows / sizeof rows[0]), 0);
    /* The user data pointer comes back with the handler. */
    http_handler_cb h = NULL;
    void *ud = NULL;
    char allow[64];
    assert_int_equal(http_router_match(r, PL_SLICE_LIT("GET"), PL_SLICE_LIT("/health"), NULL, &h,
                                       &ud, allow, sizeof allow),
                     HTTP_ROUTE_FOUND);
    assert_ptr_equal(ud, &g_ud_health);
    assert_int_equal(http_router_match(r, PL_SLICE_LIT("GET"), PL_SLICE_LIT("/x.png"), NULL, &h,
                                       &ud, allow, sizeof allow),
                     HTTP_ROUTE_FOUND);
    assert_ptr_equal(ud, &g_ud_static);
    http_router_free(r);
}

static void test_not_found_and_bad_method(void **state) {
    (void)state;
    /* Without a catch-all, so that 404 shows. */
    http_router_t *r = http_router_new();
    http_router_add(r, "GET", "/health", h_health, NULL);
    http_router_add(r, "GET", "/api/v1/public/projects/:id/settings", h_settings, NULL);
    http_router_add(r, "OPTIONS", "/api/v1/public/projects/:id/settings", h_settings_options, NULL);
    http_router_add(r, "POST", "/api/v1/things", h_first, NULL);
    http_router_add(r, "GET", "/api/v1/things", h_second, NULL);
    http_router_add(r, "DELETE", "/api/v1/things/:id", h_first, NULL);
    http_router_add(r, "GET", "/files/*", h_static, NULL);
    static const row_t rows[] = {
        /* 405 with the methods the path has. */
        {"POST", "/health", HTTP_ROUTE_BAD_METHOD, NULL, "GET", NULL, NULL, NULL, NULL},
        {"DELETE", "/health", HTTP_ROUTE_BAD_METHOD, NULL, "GET", NULL, NULL, NULL, NULL},
        {"POST", "/api/v1/public/projects/1/settings", HTTP_ROUTE_BAD_METHOD, NULL, "GET, OPTIONS",
         NULL, NULL, NULL, NULL},
        {"PUT", "/api/v1/things", HTTP_ROUTE_BAD_METHOD, NULL, "POST, GET", NULL, NULL, NULL, NULL},
        {"GET", "/api/v1/things/5", HTTP_ROUTE_BAD_METHOD, NULL, "DELETE", NULL, NULL, NULL, NULL},
        {"POST", "/files/a.txt", HTTP_ROUTE_BAD_METHOD, NULL, "GET", NULL, NULL, NULL, NULL},
        /* Found. */
        {"GET", "/api/v1/things", HTTP_ROUTE_FOUND, h_second, NULL, NULL, NULL, NULL, NULL},
        {"POST", "/api/v1/things", HTTP_ROUTE_FOUND, h_first, NULL, NULL, NULL, NULL, NULL},
        {"GET", "/files/", HTTP_ROUTE_FOUND, h_static, NULL, NULL, NULL, NULL, NULL},
        {"GET", "/files/a/b/c.txt", HTTP_ROUTE_FOUND, h_static, NULL, NULL, NULL, NULL, NULL},
        /* 404: no route has the path. */
        {"GET", "/", HTTP_ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL},
        {"GET", "", HTTP_ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL},
        {"GET", "/nope", HTTP_ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL},
        {"GET", "/healthz", HTTP_ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL},
        {"GET", "/HEALTH", HTTP_ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL},
        {"GET", "/health/x", HTTP_ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL},
        {"POST", "/nope", HTTP_ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL},
        /* Trailing slash: a literal route does not match its path with a slash added. */
        {"GET", "/health/", HTTP_ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL},
        {"GET", "/api/v1/things/", HTTP_ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL},
        /* Empty segments: `:param` needs a non-empty segment, literals match exactly. */
        {"GET", "/api/v1/public/projects//settings", HTTP_ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL,
         NULL, NULL},
        {"DELETE", "/api/v1/things/", HTTP_ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL},
        {"GET", "//health", HTTP_ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL},
        {"GET", "/api//v1/things", HTTP_ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL},
        {"GET", "/api/v1/public/projects/1/2/settings", HTTP_ROUTE_NOT_FOUND, NULL, NULL, NULL,
         NULL, NULL, NULL},
        /* A `*` after a literal segment needs that segment and its slash. */
        {"GET", "/filesx", HTTP_ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL},
        {"GET", "/filesx/a", HTTP_ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL},
        /* Paths are compared undecoded: an escaped letter is a different path. */
        {"GET", "/h%65alth", HTTP_ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL},
    };
    assert_int_equal(run_rows(r, rows, sizeof rows / sizeof rows[0]), 0);
    http_router_free(r);
}

static void test_order(void **state) {
    (void)state;
    /* Routes are tried in the order added: the first match wins. */
    http_router_t *r = http_router_new();
    http_router_add(r, "GET", "/a/:x", h_first, NULL);
    http_router_add(r, "GET", "/a/literal", h_second, NULL);
    http_router_add(r, "GET", "/b/literal", h_second, NULL);
    http_router_add(r, "GET", "/b/:x", h_first, NULL);
    http_router_add(r, "POST", "/c/*", h_first, NULL);
    http_router_add(r, "POST", "/c/d", h_second, NULL);
    static const row_t rows[] = {
        {"GET", "/a/literal", HTTP_ROUTE_FOUND, h_first, NULL, "x", "literal", NULL, NULL},
        {"GET", "/a/other", HTTP_ROUTE_FOUND, h_first, NULL, "x", "other", NULL, NULL},
        {"GET", "/b/literal", HTTP_ROUTE_FOUND, h_second, NULL, NULL, NULL, NULL, NULL},
        {"GET", "/b/other", HTTP_ROUTE_FOUND, h_first, NULL, "x", "other", NULL, NULL},
        {"POST", "/c/d", HTTP_ROUTE_FOUND, h_first, NULL, NULL, NULL, NULL, NULL},
    };
    assert_int_equal(run_rows(r, rows, sizeof rows / sizeof rows[0]), 0);
    /* A route with the right path but another method does not stop the search: a later
     * route with the right method is found. */
    http_router_t *r2 = http_router_new();
    http_router_add(r2, "POST", "/x/:id", h_first, NULL);
    http_router_add(r2, "GET", "/x/:id", h_second, NULL);
    static const row_t rows2[] = {
        {"GET", "/x/1", HTTP_ROUTE_FOUND, h_second, NULL, "id", "1", NULL, NULL},
        {"POST", "/x/1", HTTP_ROUTE_FOUND, h_first, NULL, "id", "1", NULL, NULL},
        {"PATCH", "/x/1", HTTP_ROUTE_BAD_METHOD, NULL, "POST, GET", NULL, NULL, NULL, NULL},
    };
    assert_int_equal(run_rows(r2, rows2, sizeof rows2 / sizeof rows2[0]), 0);
    /* A method-less catch-all added after a route does not hide that route's 405; other
     * paths and methods reach the catch-all. */
    http_router_t *r3 = http_router_new();
    http_router_add(r3, "GET", "/health", h_health, NULL);
    http_router_add(r3, "GET", "/api/v1/public/projects/:id/settings", h_settings, NULL);
    http_router_add(r3, NULL, "/*", h_static, NULL);
    static const row_t rows3[] = {
        {"GET", "/health", HTTP_ROUTE_FOUND, h_health, NULL, NULL, NULL, NULL, NULL},
        {"POST", "/health", HTTP_ROUTE_BAD_METHOD, NULL, "GET", NULL, NULL, NULL, NULL},
        {"DELETE", "/api/v1/public/projects/3/settings", HTTP_ROUTE_BAD_METHOD, NULL, "GET", NULL,
         NULL, NULL, NULL},
        {"POST", "/nope", HTTP_ROUTE_FOUND, h_static, NULL, NULL, NULL, NULL, NULL},
        {"GET", "/widget.js", HTTP_ROUTE_FOUND, h_static, NULL, NULL, NULL, NULL, NULL},
        {"GET", "/health/", HTTP_ROUTE_FOUND, h_static, NULL, NULL, NULL, NULL, NULL},
    };
    assert_int_equal(run_rows(r3, rows3, sizeof rows3 / sizeof rows3[0]), 0);
    http_router_free(r);
    http_router_free(r2);
    http_router_free(r3);
}

static void test_allow_list(void **state) {
    (void)state;
    /* A method allowed by two routes of the path is listed once. */
    http_router_t *r = http_router_new();
    http_router_add(r, "GET", "/a", h_first, NULL);
    http_router_add(r, "GET", "/*", h_static, NULL);
    http_router_add(r, "PATCH", "/a", h_second, NULL);
    static const row_t rows[] = {
        {"POST", "/a", HTTP_ROUTE_BAD_METHOD, NULL, "GET, PATCH", NULL, NULL, NULL, NULL},
        {"POST", "/b", HTTP_ROUTE_BAD_METHOD, NULL, "GET", NULL, NULL, NULL, NULL},
    };
    assert_int_equal(run_rows(r, rows, sizeof rows / sizeof rows[0]), 0);

    /* A short Allow buffer is never overrun and stays a C string. */
    char small[8];
    memset(small, 'Z', sizeof small);
    http_handler_cb h = NULL;
    void *ud = NULL;
    http_router_t *many = http_router_new();
    http_router_add(many, "GET", "/m", h_first, NULL);
    http_router_add(many, "POST", "/m", h_first, NULL);
    http_router_add(many, "PATCH", "/m", h_first, NULL);
    http_router_add(many, "DELETE", "/m", h_first, NULL);
    assert_int_equal(
        http_router_match(many, PL_SLICE_LIT("PUT"), PL_SLICE_LIT("/m"), NULL, &h, &ud, small, 5),
        HTTP_ROUTE_BAD_METHOD);
    assert_non_null(memchr(small, '\0', 5));
    assert_int_equal(small[5], 'Z');
    char full[64];
    assert_int_equal(http_router_match(many, PL_SLICE_LIT("PUT"), PL_SLICE_LIT("/m"), NULL, &h, &ud,
                                       full, sizeof full),
                     HTTP_ROUTE_BAD_METHOD);
    assert_string_equal(full, "GET, POST, PATCH, DELETE");
    http_router_free(many);
    http_router_free(r);
}

static void test_slices_and_limits(void **state) {
    (void)state;
    http_router_t *r = http_router_new();
    http_router_add(r, "GET", "/p/:a/:b/:c/:d/:e/:f/:g/:h", h_first, NULL);
    http_router_add(r, "GET", "/q/:name", h_second, NULL);
    /* Eight parameters, the most a request holds. */
    http_request_t req;
    memset(&req, 0, sizeof req);
    http_handler_cb h = NULL;
    void *ud = NULL;
    char allow[32];
    assert_int_equal(http_router_match(r, PL_SLICE_LIT("GET"), PL_SLICE_LIT("/p/1/2/3/4/5/6/7/8"),
                                       &req, &h, &ud, allow, sizeof allow),
                     HTTP_ROUTE_FOUND);
    assert_ptr_equal(h, h_first);
    assert_int_equal(req.nparams, 8);
    static const char *const names[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    for (int i = 0; i < 8; i++) {
        pl_slice_t v = http_request_param(&req, names[i]);
        assert_int_equal(v.len, 1);
        assert_int_equal(v.ptr[0], '1' + i);
    }
    /* Unknown parameter names give the empty slice with a NULL pointer. */
    pl_slice_t none = http_request_param(&req, "zz");
    assert_null(none.ptr);
    assert_int_equal(none.len, 0);

    /* Method and path are slices: bytes past their length are not looked at. */
    const char *buf = "GET /q/value?x=1 HTTP/1.1";
    memset(&req, 0, sizeof req);
    assert_int_equal(http_router_match(r, pl_slice(buf, 3), pl_slice(buf + 4, 8), &req, &h, &ud,
                                       allow, sizeof allow),
                     HTTP_ROUTE_FOUND);
    assert_ptr_equal(h, h_second);
    pl_slice_t v = http_request_param(&req, "name");
    assert_true(pl_slice_eq_cstr(v, "value"));
    /* The parameter points into the request's path, not into a copy. */
    assert_ptr_equal(v.ptr, buf + 7);
    assert_int_equal(http_router_match(r, pl_slice("GETX", 4), PL_SLICE_LIT("/q/v"), NULL, &h, &ud,
                                       allow, sizeof allow),
                     HTTP_ROUTE_BAD_METHOD);
    /* A method name is matched exactly (HTTP methods are case-sensitive). */
    assert_int_equal(http_router_match(r, PL_SLICE_LIT("get"), PL_SLICE_LIT("/q/v"), NULL, &h, &ud,
                                       allow, sizeof allow),
                     HTTP_ROUTE_BAD_METHOD);
    /* A segment holding a NUL byte is still one segment: the router looks at lengths. */
    memset(&req, 0, sizeof req);
    assert_int_equal(http_router_match(r, PL_SLICE_LIT("GET"), pl_slice("/q/a\0b", 6), &req, &h,
                                       &ud, allow, sizeof allow),
                     HTTP_ROUTE_FOUND);
    assert_int_equal(http_request_param(&req, "name").len, 3);
    /* A very long path is just not found. */
    static char longpath[20000];
    memset(longpath, 'a', sizeof longpath);
    longpath[0] = '/';
    assert_int_equal(http_router_match(r, PL_SLICE_LIT("GET"), pl_slice(longpath, sizeof longpath),
                                       NULL, &h, &ud, allow, sizeof allow),
                     HTTP_ROUTE_NOT_FOUND);
    /* Many slashes. */
    memset(longpath, '/', sizeof longpath);
    assert_int_equal(http_router_match(r, PL_SLICE_LIT("GET"), pl_slice(longpath, sizeof longpath),
                                       NULL, &h, &ud, allow, sizeof allow),
                     HTTP_ROUTE_NOT_FOUND);
    http_router_free(r);

    /* An empty router finds nothing; freeing it is fine. */
    http_router_t *empty = http_router_new();
    assert_int_equal(http_router_match(empty, PL_SLICE_LIT("GET"), PL_SLICE_LIT("/"), NULL, &h, &ud,
                                       allow, sizeof allow),
                     HTTP_ROUTE_NOT_FOUND);
    http_router_free(empty);
}

static void test_patterns_are_copied(void **state) {
    (void)state;
    http_router_t *r = http_router_new();
    char method[8], pattern[32];
    strcpy(method, "GET");
    strcpy(pattern, "/copied/:id");
    http_router_add(r, method, pattern, h_first, NULL);
    memset(method, 'X', sizeof method - 1);
    memset(pattern, 'X', sizeof pattern - 1);
    http_request_t req;
    memset(&req, 0, sizeof req);
    http_handler_cb h = NULL;
    void *ud = NULL;
    char allow[32];
    assert_int_equal(http_router_match(r, PL_SLICE_LIT("GET"), PL_SLICE_LIT("/copied/9"), &req, &h,
                                       &ud, allow, sizeof allow),
                     HTTP_ROUTE_FOUND);
    assert_true(pl_slice_eq_cstr(http_request_param(&req, "id"), "9"));
    http_router_free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_and_params),
        cmocka_unit_test(test_not_found_and_bad_method),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_allow_list),
        cmocka_unit_test(test_slices_and_limits),
        cmocka_unit_test(test_patterns_are_copied),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
