/* Unit tests for src/core/config.h: defaults, environment variables, flags winning over them,
 * the `--x=v` and `--x v` forms, arguments that are not settings left in order, bad numbers
 * and range limits (with a message naming the setting on stderr), and the help output that
 * lists every setting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every setting: flag, environment variable. */
static const char *const g_settings[][2] = {
    {"host", "PARLEY_HOST"},
    {"port", "PARLEY_PORT"},
    {"database", "PARLEY_DATABASE"},
    {"redis", "PARLEY_REDIS"},
    {"data-dir", "PARLEY_DATA_DIR"},
    {"jwt-secret", "PARLEY_JWT_SECRET"},
    {"log-level", "PARLEY_LOG_LEVEL"},
    {"web-root", "PARLEY_WEB_ROOT"},
    {"public-url", "PARLEY_PUBLIC_URL"},
    {"sqlite-sync", "PARLEY_SQLITE_SYNC"},
    {"max-connections", "PARLEY_MAX_CONNECTIONS"},
    {"max-header-bytes", "PARLEY_MAX_HEADER_BYTES"},
    {"max-headers", "PARLEY_MAX_HEADERS"},
    {"max-body-bytes", "PARLEY_MAX_BODY_BYTES"},
    {"header-timeout", "PARLEY_HEADER_TIMEOUT_MS"},
    {"idle-timeout", "PARLEY_IDLE_TIMEOUT_MS"},
    {"shutdown-timeout", "PARLEY_SHUTDOWN_TIMEOUT_MS"},
    {"ping-interval", "PARLEY_PING_INTERVAL_MS"},
    {"ping-timeout", "PARLEY_PING_TIMEOUT_MS"},
    {"max-payload", "PARLEY_MAX_PAYLOAD"},
    {"connect-timeout", "PARLEY_CONNECT_TIMEOUT_MS"},
    {"demo", "PARLEY_DEMO"},
};
#define NSETTINGS (sizeof g_settings / sizeof g_settings[0])

extern char **environ;

/* Unsets every PARLEY_* variable (also settings added after this list was written). */
static void clear_env(void) {
    for (size_t i = 0; i < NSETTINGS; i++)
        unsetenv(g_settings[i][1]);
    for (bool again = true; again;) {
        again = false;
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "PARLEY_", 7) != 0)
                continue;
            char name[128];
            size_t n = strcspn(*e, "=");
            if (n >= sizeof name)
                continue;
            memcpy(name, *e, n);
            name[n] = '\0';
            unsetenv(name);
            again = true; /* environ changed under us: rescan */
            break;
        }
    }
}

static int setup(void **state) {
    (void)state;
    clear_env();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    clear_env();
    return 0;
}

/* The result of one pl_config_load call, with what it wrote on stderr. */
typedef struct {
    int rc;
    pl_config_t cfg;
    char *rest[32];
    int nrest;
    char err[2048];
} load_t;

/* Runs pl_config_load on a NULL-terminated argument list, capturing stderr. The caller
 * disposes l->cfg (also after a failure: the loader starts from a zeroed struct). */
static void load(load_t *l, const char *const *args) {
    char *argv[32];
    int argc = 0;
    while (args && args[argc]) {
        argv[argc] = (char *)args[argc];
        argc++;
    }
    memset(l, 0, sizeof *l);
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    dup2(fileno(tmp), 2);
    l->rc = pl_config_load(&l->cfg, argc, argv, l->rest, &l->nrest);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t n = fread(l->err, 1, sizeof l->err - 1, tmp);
    l->err[n] = '\0';
    fclose(tmp);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_defaults(void **state) {
    (void)state;
    load_t l;
    load(&l, NULL);
    assert_int_equal(l.rc, 0);
    assert_int_equal(l.nrest, 0);
    assert_string_equal(l.err, "");
    pl_config_t *c = &l.cfg;
    assert_string_equal(c->host, "127.0.0.1");
    assert_int_equal(c->port, 8080);
    assert_string_equal(c->redis, "");
    assert_string_equal(c->data_dir, "data");
    /* The database defaults to a SQLite file in the data directory. */
    assert_string_equal(c->database, "sqlite:data/parley.db");
    assert_string_equal(c->jwt_secret, "");
    assert_string_equal(c->log_level, "info");
    assert_string_equal(c->web_root, "");
    assert_string_equal(c->public_url, "");
    assert_string_equal(c->sqlite_sync, "normal");
    assert_int_equal(c->max_connections, 10000);
    assert_int_equal(c->max_header_bytes, 16384);
    assert_int_equal(c->max_headers, 100);
    assert_int_equal(c->max_body_bytes, 1048576);
    assert_int_equal(c->header_timeout_ms, 10000);
    assert_int_equal(c->idle_timeout_ms, 30000);
    assert_int_equal(c->shutdown_timeout_ms, 5000);
    assert_int_equal(c->ping_interval_ms, 25000);
    assert_int_equal(c->ping_timeout_ms, 20000);
    assert_int_equal(c->max_payload, 1000000);
    assert_int_equal(c->connect_timeout_ms, 45000);
    assert_false(c->demo);
    pl_config_dispose(c);
    /* Dispose leaves no dangling pointers behind. */
    assert_null(c->host);
    assert_null(c->database);
}

static void test_env_and_flags(void **state) {
    (void)state;
    /* Rows: an environment variable, a flag list, and the expected port/host/demo. */
    static const struct {
        const char *env_name, *env_value;
        const char *args[4];
        uint32_t port;
        const char *host;
    } rows[] = {
        {NULL, NULL, {"--port", "9000"}, 9000, "127.0.0.1"},
        {NULL, NULL, {"--port=9001"}, 9001, "127.0.0.1"},
        {"PARLEY_PORT", "9002", {NULL}, 9002, "127.0.0.1"},
        {"PARLEY_PORT", "9003", {"--port", "9004"}, 9004, "127.0.0.1"}, /* flag wins */
        {"PARLEY_PORT", "9005", {"--port=9006"}, 9006, "127.0.0.1"},
        {"PARLEY_HOST", "0.0.0.0", {NULL}, 8080, "0.0.0.0"},
        {"PARLEY_HOST", "0.0.0.0", {"--host", "::1"}, 8080, "::1"},
        {"PARLEY_HOST", "0.0.0.0", {"--host="}, 8080, ""}, /* an empty value is a value */
        {NULL, NULL, {"--port", "0"}, 0, "127.0.0.1"},     /* range boundaries */
        {NULL, NULL, {"--port", "65535"}, 65535, "127.0.0.1"},
        {NULL, NULL, {"--port", "00080"}, 80, "127.0.0.1"},
        /* The last of a repeated flag wins. */
        {NULL, NULL, {"--port", "1", "--port=2"}, 2, "127.0.0.1"},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        clear_env();
        if (rows[i].env_name)
            setenv(rows[i].env_name, rows[i].env_value, 1);
        const char *args[5] = {rows[i].args[0], rows[i].args[1], rows[i].args[2], rows[i].args[3],
                               NULL};
        load_t l;
        load(&l, args);
        if (l.rc != 0 || l.cfg.port != rows[i].port || !l.cfg.host ||
            strcmp(l.cfg.host, rows[i].host) != 0 || l.nrest != 0) {
            print_error("row %zu: rc %d port %u host '%s' nrest %d err '%s'\n", i, l.rc, l.cfg.port,
                        l.cfg.host ? l.cfg.host : "(null)", l.nrest, l.err);
            bad++;
        }
        pl_config_dispose(&l.cfg);
    }
    clear_env();
    assert_int_equal(bad, 0);
}

static void test_every_setting_has_env_and_flag(void **state) {
    (void)state;
    /* For each numeric setting: the variable sets it, the flag (both forms) overrides it. */
    static const struct {
        const char *flag, *env;
        size_t offset;
        uint32_t env_value, flag_value;
    } rows[] = {
        {"max-connections", "PARLEY_MAX_CONNECTIONS", offsetof(pl_config_t, max_connections), 5, 6},
        {"max-header-bytes", "PARLEY_MAX_HEADER_BYTES", offsetof(pl_config_t, max_header_bytes),
         2048, 4096},
        {"max-headers", "PARLEY_MAX_HEADERS", offsetof(pl_config_t, max_headers), 20, 30},
        {"max-body-bytes", "PARLEY_MAX_BODY_BYTES", offsetof(pl_config_t, max_body_bytes), 2048,
         4096},
        {"header-timeout", "PARLEY_HEADER_TIMEOUT_MS", offsetof(pl_config_t, header_timeout_ms),
         500, 600},
        {"idle-timeout", "PARLEY_IDLE_TIMEOUT_MS", offsetof(pl_config_t, idle_timeout_ms), 500,
         700},
        {"shutdown-timeout", "PARLEY_SHUTDOWN_TIMEOUT_MS",
         offsetof(pl_config_t, shutdown_timeout_ms), 0, 100},
        {"ping-interval", "PARLEY_PING_INTERVAL_MS", offsetof(pl_config_t, ping_interval_ms), 1000,
         2000},
        {"ping-timeout", "PARLEY_PING_TIMEOUT_MS", offsetof(pl_config_t, ping_timeout_ms), 1000,
         3000},
        {"max-payload", "PARLEY_MAX_PAYLOAD", offsetof(pl_config_t, max_payload), 2000, 3000},
        {"connect-timeout", "PARLEY_CONNECT_TIMEOUT_MS", offsetof(pl_config_t, connect_timeout_ms),
         100, 200},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        for (int form = 0; form < 3; form++) {
            clear_env();
            char ev[32], fv[64], flag[64];
            snprintf(ev, sizeof ev, "%u", rows[i].env_value);
            setenv(rows[i].env, ev, 1);
            snprintf(flag, sizeof flag, "--%s", rows[i].flag);
            snprintf(fv, sizeof fv, "%u", rows[i].flag_value);
            char eqform[96];
            snprintf(eqform, sizeof eqform, "--%s=%u", rows[i].flag, rows[i].flag_value);
            load_t l;
            uint32_t want;
            if (form == 0) {
                load(&l, NULL);
                want = rows[i].env_value;
            } else if (form == 1) {
                load(&l, ARGS(flag, fv));
                want = rows[i].flag_value;
            } else {
                load(&l, ARGS(eqform));
                want = rows[i].flag_value;
            }
            uint32_t got = *(const uint32_t *)(const void *)((const char *)&l.cfg + rows[i].offset);
            if (l.rc != 0 || got != want) {
                print_error("row %zu form %d: rc %d value %u want %u err '%s'\n", i, form, l.rc,
                            got, want, l.err);
                bad++;
            }
            pl_config_dispose(&l.cfg);
        }
    }
    /* String settings. */
    static const struct {
        const char *flag, *env;
        size_t offset;
        const char *env_value, *flag_value;
    } srows[] = {
        {"data-dir", "PARLEY_DATA_DIR", offsetof(pl_config_t, data_dir), "/tmp/a", "/tmp/b"},
        {"jwt-secret", "PARLEY_JWT_SECRET", offsetof(pl_config_t, jwt_secret), "s1", "s2"},
        {"log-level", "PARLEY_LOG_LEVEL", offsetof(pl_config_t, log_level), "warn", "debug"},
        {"web-root", "PARLEY_WEB_ROOT", offsetof(pl_config_t, web_root), "/w1", "/w2"},
        {"public-url", "PARLEY_PUBLIC_URL", offsetof(pl_config_t, public_url), "https://a.example",
         "https://b.example/?x=1"},
        {"sqlite-sync", "PARLEY_SQLITE_SYNC", offsetof(pl_config_t, sqlite_sync), "full", "normal"},
        {"redis", "PARLEY_REDIS", offsetof(pl_config_t, redis), "redis://127.0.0.1:6379",
         "redis://127.0.0.1:6380"},
        {"database", "PARLEY_DATABASE", offsetof(pl_config_t, database), "sqlite:/tmp/x.db",
         "postgres://u@127.0.0.1/db"},
    };
    for (size_t i = 0; i < sizeof srows / sizeof srows[0]; i++) {
        for (int form = 0; form < 3; form++) {
            clear_env();
            setenv(srows[i].env, srows[i].env_value, 1);
            char flag[64], eqform[128];
            snprintf(flag, sizeof flag, "--%s", srows[i].flag);
            snprintf(eqform, sizeof eqform, "--%s=%s", srows[i].flag, srows[i].flag_value);
            load_t l;
            const char *want;
            if (form == 0) {
                load(&l, NULL);
                want = srows[i].env_value;
            } else if (form == 1) {
                load(&l, ARGS(flag, srows[i].flag_value));
                want = srows[i].flag_value;
            } else {
                load(&l, ARGS(eqform));
                want = srows[i].flag_value;
            }
            const char *got =
                *(char *const *)(const void *)((const char *)&l.cfg + srows[i].offset);
            if (l.rc != 0 || !got || strcmp(got, want) != 0) {
                print_error("string row %zu form %d: rc %d value '%s' want '%s' err '%s'\n", i,
                            form, l.rc, got ? got : "(null)", want, l.err);
                bad++;
            }
            pl_config_dispose(&l.cfg);
        }
    }
    clear_env();
    assert_int_equal(bad, 0);
}

static void test_database_follows_data_dir(void **state) {
    (void)state;
    load_t l;
    load(&l, ARGS("--data-dir", "/var/lib/parley"));
    assert_int_equal(l.rc, 0);
    assert_string_equal(l.cfg.database, "sqlite:/var/lib/parley/parley.db");
    pl_config_dispose(&l.cfg);
    setenv("PARLEY_DATA_DIR", "/srv/p", 1);
    load(&l, NULL);
    assert_int_equal(l.rc, 0);
    assert_string_equal(l.cfg.database, "sqlite:/srv/p/parley.db");
    pl_config_dispose(&l.cfg);
    /* An explicit database is kept. */
    load(&l, ARGS("--database", "sqlite:/elsewhere.db"));
    assert_int_equal(l.rc, 0);
    assert_string_equal(l.cfg.database, "sqlite:/elsewhere.db");
    pl_config_dispose(&l.cfg);
    clear_env();
}

static void test_bool(void **state) {
    (void)state;
    static const struct {
        const char *env;
        const char *args[3];
        int rc;
        bool demo;
    } rows[] = {
        {NULL, {"--demo"}, 0, true},
        {NULL, {"--demo=true"}, 0, true},
        {NULL, {"--demo=1"}, 0, true},
        {NULL, {"--demo=yes"}, 0, true},
        {NULL, {"--demo=false"}, 0, false},
        {NULL, {"--demo=0"}, 0, false},
        {NULL, {"--demo=no"}, 0, false},
        {"true", {NULL}, 0, true},
        {"1", {NULL}, 0, true},
        {"false", {NULL}, 0, false},
        {"true", {"--demo=false"}, 0, false}, /* flag wins */
        {"false", {"--demo"}, 0, true},
        {NULL, {"--demo=maybe"}, -1, false},
        {NULL, {"--demo="}, -1, false},
        {"maybe", {NULL}, -1, false},
        {"", {NULL}, -1, false},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        clear_env();
        if (rows[i].env)
            setenv("PARLEY_DEMO", rows[i].env, 1);
        load_t l;
        load(&l, (const char *const[]){rows[i].args[0], rows[i].args[1], NULL});
        if (l.rc != rows[i].rc || (l.rc == 0 && l.cfg.demo != rows[i].demo)) {
            print_error("row %zu: rc %d demo %d err '%s'\n", i, l.rc, l.cfg.demo, l.err);
            bad++;
        }
        if (l.rc != 0 && strstr(l.err, "demo") == NULL) {
            print_error("row %zu: message does not name the setting: '%s'\n", i, l.err);
            bad++;
        }
        pl_config_dispose(&l.cfg);
    }
    clear_env();
    assert_int_equal(bad, 0);
}

static void test_rest_in_order(void **state) {
    (void)state;
    /* Arguments that are not settings stay, in order; settings anywhere are consumed. */
    load_t l;
    load(&l, ARGS("project", "--port", "81", "create", "--name", "Shop", "--demo", "--domain",
                  "a.example", "--json", "--unknown=1", "-x"));
    assert_int_equal(l.rc, 0);
    assert_int_equal(l.cfg.port, 81);
    assert_true(l.cfg.demo);
    static const char *const want[] = {"project",   "create", "--name",      "Shop", "--domain",
                                       "a.example", "--json", "--unknown=1", "-x"};
    assert_int_equal(l.nrest, (int)(sizeof want / sizeof want[0]));
    for (int i = 0; i < l.nrest; i++)
        assert_string_equal(l.rest[i], want[i]);
    pl_config_dispose(&l.cfg);

    /* A flag that only starts like a setting's name is not that setting. */
    load(&l, ARGS("--portx=5", "--por", "7", "--port-number", "--hosts=1"));
    assert_int_equal(l.rc, 0);
    assert_int_equal(l.cfg.port, 8080);
    assert_int_equal(l.nrest, 5);
    pl_config_dispose(&l.cfg);

    /* A value is taken verbatim even when it looks like a flag. */
    load(&l, ARGS("--jwt-secret", "--port"));
    assert_int_equal(l.rc, 0);
    assert_string_equal(l.cfg.jwt_secret, "--port");
    assert_int_equal(l.cfg.port, 8080);
    pl_config_dispose(&l.cfg);

    /* Everything after the first '=' is the value. */
    load(&l, ARGS("--public-url=https://x.example/?a=b=c"));
    assert_int_equal(l.rc, 0);
    assert_string_equal(l.cfg.public_url, "https://x.example/?a=b=c");
    pl_config_dispose(&l.cfg);
}

static void test_bad_values(void **state) {
    (void)state;
    /* Rows: environment (optional), flags, and a word the message must contain. */
    static const struct {
        const char *env_name, *env_value;
        const char *args[3];
        const char *names;
    } rows[] = {
        {NULL, NULL, {"--port", "70000"}, "port"},
        {NULL, NULL, {"--port=65536"}, "port"},
        {NULL, NULL, {"--port", "-1"}, "port"},
        {NULL, NULL, {"--port", "abc"}, "port"},
        {NULL, NULL, {"--port", ""}, "port"},
        {NULL, NULL, {"--port", "1e3"}, "port"},
        {NULL, NULL, {"--port", " 80"}, "port"},
        {NULL, NULL, {"--port", "80 "}, "port"},
        {NULL, NULL, {"--port", "0x50"}, "port"},
        {NULL, NULL, {"--port", "99999999999999999999999"}, "port"},
        {NULL, NULL, {"--port"}, "port"}, /* no value at the end */
        {"PARLEY_PORT", "x", {NULL}, "port"},
        {"PARLEY_PORT", "70000", {NULL}, "port"},
        {NULL, NULL, {"--max-connections", "0"}, "max-connections"},
        {NULL, NULL, {"--max-connections", "1000001"}, "max-connections"},
        {NULL, NULL, {"--max-header-bytes", "1023"}, "max-header-bytes"},
        {NULL, NULL, {"--max-header-bytes", "1048577"}, "max-header-bytes"},
        {NULL, NULL, {"--max-headers", "7"}, "max-headers"},
        {NULL, NULL, {"--max-headers", "10001"}, "max-headers"},
        {NULL, NULL, {"--max-body-bytes", "1023"}, "max-body-bytes"},
        {NULL, NULL, {"--max-body-bytes", "1073741825"}, "max-body-bytes"},
        {NULL, NULL, {"--header-timeout", "99"}, "header-timeout"},
        {NULL, NULL, {"--idle-timeout", "3600001"}, "idle-timeout"},
        {NULL, NULL, {"--shutdown-timeout", "600001"}, "shutdown-timeout"},
        {NULL, NULL, {"--ping-interval", "9"}, "ping-interval"},
        {NULL, NULL, {"--ping-timeout", "9"}, "ping-timeout"},
        {NULL, NULL, {"--max-payload", "1023"}, "max-payload"},
        {NULL, NULL, {"--connect-timeout", "9"}, "connect-timeout"},
        {"PARLEY_MAX_HEADERS", "5", {NULL}, "max-headers"},
        {NULL, NULL, {"--log-level", "verbose"}, "log-level"},
        {"PARLEY_LOG_LEVEL", "INFO ", {NULL}, "log-level"},
        {NULL, NULL, {"--sqlite-sync", "off"}, "sqlite-sync"},
        {NULL, NULL, {"--database", "mysql://x"}, "database"},
        {NULL, NULL, {"--database", "/tmp/x.db"}, "database"},
        {NULL, NULL, {"--redis", "127.0.0.1:6379"}, "redis"},
        /* The flag's bad value is refused even when the variable is fine. */
        {"PARLEY_PORT", "9000", {"--port", "x"}, "port"},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        clear_env();
        if (rows[i].env_name)
            setenv(rows[i].env_name, rows[i].env_value, 1);
        load_t l;
        load(&l, (const char *const[]){rows[i].args[0], rows[i].args[1], NULL});
        if (l.rc != -1) {
            print_error("row %zu: accepted (rc %d)\n", i, l.rc);
            bad++;
        } else if (strstr(l.err, rows[i].names) == NULL) {
            print_error("row %zu: message does not name '%s': '%s'\n", i, rows[i].names, l.err);
            bad++;
        }
        pl_config_dispose(&l.cfg);
    }
    clear_env();
    assert_int_equal(bad, 0);
}

static void test_range_boundaries_accepted(void **state) {
    (void)state;
    static const char *const rows[][2] = {
        {"--max-connections", "1"},
        {"--max-connections", "1000000"},
        {"--max-header-bytes", "1024"},
        {"--max-header-bytes", "1048576"},
        {"--max-headers", "8"},
        {"--max-headers", "10000"},
        {"--max-body-bytes", "1024"},
        {"--max-body-bytes", "1073741824"},
        {"--header-timeout", "100"},
        {"--header-timeout", "3600000"},
        {"--idle-timeout", "100"},
        {"--shutdown-timeout", "0"},
        {"--shutdown-timeout", "600000"},
        {"--ping-interval", "10"},
        {"--max-payload", "104857600"},
        {"--connect-timeout", "3600000"},
        {"--log-level", "debug"},
        {"--log-level", "off"},
        {"--log-level", "error"},
        {"--sqlite-sync", "full"},
        {"--database", "postgresql://x/y"},
        {"--redis", ""},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        load_t l;
        load(&l, ARGS(rows[i][0], rows[i][1]));
        if (l.rc != 0) {
            print_error("row %zu: %s %s refused: %s\n", i, rows[i][0], rows[i][1], l.err);
            bad++;
        }
        pl_config_dispose(&l.cfg);
    }
    assert_int_equal(bad, 0);
}

static void test_help_lists_everything(void **state) {
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    pl_config_print_help(f);
    fclose(f);
    int bad = 0;
    for (size_t i = 0; i < NSETTINGS; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--%s ", g_settings[i][0]);
        if (!strstr(text, flag) || !strstr(text, g_settings[i][1])) {
            print_error("help misses %s / %s\n", g_settings[i][0], g_settings[i][1]);
            bad++;
        }
    }
    /* Defaults are shown. */
    bad += !strstr(text, "[8080]") || !strstr(text, "[16384]");
    /* One line per setting, each starting with its flag. */
    int help_lines = 0;
    for (const char *p = text; (p = strstr(p, "\n  --")) != NULL; p++)
        help_lines++;
    help_lines += !strncmp(text, "  --", 4);
    free(text);

    text = NULL;
    f = open_memstream(&text, &len);
    assert_non_null(f);
    pl_config_print_markdown(f);
    fclose(f);
    bad += strncmp(text, "| flag | environment | default | meaning |\n", 42) != 0;
    for (size_t i = 0; i < NSETTINGS; i++) {
        char cell[96];
        snprintf(cell, sizeof cell, "| `--%s` | `%s` |", g_settings[i][0], g_settings[i][1]);
        if (!strstr(text, cell)) {
            print_error("markdown misses %s\n", cell);
            bad++;
        }
    }
    /* The header, the separator, then one table row per setting: as many as --help lists. */
    int lines = 0, rows = 0;
    for (size_t i = 0; i < len; i++) {
        lines += text[i] == '\n';
        rows += text[i] == '\n' && i + 4 < len && !strncmp(text + i + 1, "| `--", 5);
    }
    free(text);
    assert_int_equal(bad, 0);
    assert_true(rows >= (int)NSETTINGS);
    assert_int_equal(lines, rows + 2);
    assert_int_equal(rows, help_lines);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_env_and_flags),
        cmocka_unit_test(test_every_setting_has_env_and_flag),
        cmocka_unit_test(test_database_follows_data_dir),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_rest_in_order),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_range_boundaries_accepted),
        cmocka_unit_test(test_help_lists_everything),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
