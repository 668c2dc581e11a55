/* Settings table, environment and flag parsing: see config.h. */
#include "core/config.h"

#include "core/buf.h"
#include "core/log.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef enum { CFG_STR, CFG_U32, CFG_BOOL } cfg_type_t;

typedef struct {
    const char *flag;   /* without the leading "--" */
    const char *env;    /* environment variable */
    cfg_type_t type;    /* how the value is parsed */
    size_t offset;      /* field in pl_config_t */
    const char *def;    /* default, as text */
    uint32_t min, max;  /* range for CFG_U32 */
    const char *help;   /* one line */
} cfg_item_t;

#define F(field) offsetof(pl_config_t, field)
static const cfg_item_t g_items[] = {
    {"host", "PARLEY_HOST", CFG_STR, F(host), "127.0.0.1", 0, 0,
     "address to listen on (0.0.0.0 for every interface)"},
    {"port", "PARLEY_PORT", CFG_U32, F(port), "8080", 0, 65535, "TCP port (0 = any free port)"},
    {"database", "PARLEY_DATABASE", CFG_STR, F(database), "",
     0, 0, "sqlite:PATH or postgres://... (default sqlite:<data-dir>/parley.db)"},
    {"redis", "PARLEY_REDIS", CFG_STR, F(redis), "", 0, 0,
     "redis://host:port for presence, queue and bus across nodes (empty = in-process)"},
    {"data-dir", "PARLEY_DATA_DIR", CFG_STR, F(data_dir), "data", 0, 0,
     "directory for the SQLite file and the generated JWT secret"},
    {"jwt-secret", "PARLEY_JWT_SECRET", CFG_STR, F(jwt_secret), "", 0, 0,
     "HS256 secret for agent tokens (empty = generated once into <data-dir>/jwt-secret, mode 0600)"},
    {"log-level", "PARLEY_LOG_LEVEL", CFG_STR, F(log_level), "info", 0, 0,
     "debug, info, warn, error or off"},
    {"web-root", "PARLEY_WEB_ROOT", CFG_STR, F(web_root), "", 0, 0,
     "directory of static files (widget.js, /app/) (empty = `web` next to the binary)"},
    {"public-url", "PARLEY_PUBLIC_URL", CFG_STR, F(public_url), "", 0, 0,
     "base URL shown in the embed snippet (empty = http://localhost:<port>)"},
    {"sqlite-sync", "PARLEY_SQLITE_SYNC", CFG_STR, F(sqlite_sync), "normal", 0, 0,
     "SQLite synchronous: normal (survives a process crash) or full (also power loss)"},
    {"max-connections", "PARLEY_MAX_CONNECTIONS", CFG_U32, F(max_connections), "10000", 1,
     1000000, "client connections open at once; beyond it new ones are closed"},
    {"max-header-bytes", "PARLEY_MAX_HEADER_BYTES", CFG_U32, F(max_header_bytes), "16384", 1024,
     1048576, "request line + headers, bytes (431 beyond)"},
    {"max-headers", "PARLEY_MAX_HEADERS", CFG_U32, F(max_headers), "100", 8, 10000,
     "header fields per request (431 beyond)"},
    {"max-body-bytes", "PARLEY_MAX_BODY_BYTES", CFG_U32, F(max_body_bytes), "1048576", 1024,
     1073741824, "HTTP request body, bytes (413 beyond)"},
    {"header-timeout", "PARLEY_HEADER_TIMEOUT_MS", CFG_U32, F(header_timeout_ms), "10000", 100,
     3600000, "ms to receive a request's head, and its body (408 beyond)"},
    {"idle-timeout", "PARLEY_IDLE_TIMEOUT_MS", CFG_U32, F(idle_timeout_ms), "30000", 100,
     3600000, "ms an idle keep-alive connection is kept"},
    {"shutdown-timeout", "PARLEY_SHUTDOWN_TIMEOUT_MS", CFG_U32, F(shutdown_timeout_ms), "5000",
     0, 600000, "ms in-flight requests get to finish on SIGINT/SIGTERM"},
    {"ping-interval", "PARLEY_PING_INTERVAL_MS", CFG_U32, F(ping_interval_ms), "25000", 10,
     3600000, "Engine.IO pingInterval, ms"},
    {"ping-timeout", "PARLEY_PING_TIMEOUT_MS", CFG_U32, F(ping_timeout_ms), "20000", 10,
     3600000, "Engine.IO pingTimeout, ms"},
    {"max-payload", "PARLEY_MAX_PAYLOAD", CFG_U32, F(max_payload), "1000000", 1024, 104857600,
     "Engine.IO maxPayload, bytes"},
    {"connect-timeout", "PARLEY_CONNECT_TIMEOUT_MS", CFG_U32, F(connect_timeout_ms), "45000", 10,
     3600000, "ms a client has to send its Socket.IO CONNECT"},
    {"max-sockets-per-ip", "PARLEY_MAX_SOCKETS_PER_IP", CFG_U32, F(max_sockets_per_ip), "50", 1,
     1000000, "Socket.IO connections open at once from one client address"},
    {"max-connects-per-ip", "PARLEY_MAX_CONNECTS_PER_IP", CFG_U32, F(max_connects_per_ip), "20",
     1, 1000000, "new Socket.IO connections per second from one client address"},
    {"visitor-burst", "PARLEY_VISITOR_BURST", CFG_U32, F(visitor_burst), "10", 1, 1000000,
     "messages a visitor may send within the burst window"},
    {"visitor-burst-window", "PARLEY_VISITOR_BURST_WINDOW_MS", CFG_U32, F(visitor_burst_ms),
     "10000", 1, 3600000, "the burst window, ms"},
    {"visitor-per-minute", "PARLEY_VISITOR_PER_MINUTE", CFG_U32, F(visitor_per_minute), "60", 1,
     100000000, "messages a visitor may send per minute"},
    {"typing-per-second", "PARLEY_TYPING_PER_SECOND", CFG_U32, F(typing_per_second), "2", 1,
     1000000, "typing and context events per second per socket (more are dropped)"},
    {"demo", "PARLEY_DEMO", CFG_BOOL, F(demo), "false", 0, 0,
     "create the demo project (localhost, 127.0.0.1) when the store has no project"},
    {"worker", "PARLEY_WORKER", CFG_BOOL, F(worker), "true", 0, 0,
     "serve also persists queued messages (false: leave it to `parley worker`; needs redis)"},
    {"node-id", "PARLEY_NODE_ID", CFG_STR, F(node_id), "", 0, 0,
     "this process's id on the Redis bus, [A-Za-z0-9_.-] (empty = generated)"},
    {"queue-visibility-timeout", "PARLEY_QUEUE_VISIBILITY_MS", CFG_U32, F(queue_visibility_ms),
     "30000", 100, 86400000,
     "Redis queue: ms a job may stay unfinished before another worker takes it over"},
    {"queue-attempts", "PARLEY_QUEUE_ATTEMPTS", CFG_U32, F(queue_attempts), "5", 1, 1000,
     "deliveries of a queued message before it moves to the dead-letter stream"},
};
#undef F
#define NITEMS (sizeof g_items / sizeof g_items[0])

static int set_value(pl_config_t *cfg, const cfg_item_t *it, const char *val, const char *from) {
    char *base = (char *)cfg + it->offset;
    switch (it->type) {
    case CFG_STR: {
        char **p = (char **)(void *)base;
        free(*p);
        *p = pl_xstrdup(val);
        return 0;
    }
    case CFG_U32: {
        uint64_t v;
        if (!pl_slice_to_u64(pl_slice_cstr(val), it->max, &v) || v < it->min) {
            fprintf(stderr, "parley: %s: %s must be a whole number from %u to %u, not '%s'\n",
                    from, it->flag, it->min, it->max, val);
            return -1;
        }
        *(uint32_t *)(void *)base = (uint32_t)v;
        return 0;
    }
    case CFG_BOOL: {
        bool *b = (bool *)(void *)base;
        if (!strcmp(val, "1") || !strcmp(val, "true") || !strcmp(val, "yes"))
            *b = true;
        else if (!strcmp(val, "0") || !strcmp(val, "false") || !strcmp(val, "no"))
            *b = false;
        else {
            fprintf(stderr, "parley: %s: %s must be true or false, not '%s'\n", from, it->flag,
                    val);
            return -1;
        }
        return 0;
    }
    }
    return -1;
}

static int validate(pl_config_t *cfg) {
    if (pl_log_level_parse(cfg->log_level) < 0) {
        fprintf(stderr, "parley: log-level must be debug, info, warn, error or off, not '%s'\n",
                cfg->log_level);
        return -1;
    }
    if (strcmp(cfg->sqlite_sync, "normal") && strcmp(cfg->sqlite_sync, "full")) {
        fprintf(stderr, "parley: sqlite-sync must be normal or full, not '%s'\n",
                cfg->sqlite_sync);
        return -1;
    }
    if (!cfg->database[0]) {
        pl_buf_t b;
        pl_buf_init(&b, 0);
        if (pl_buf_printf(&b, "sqlite:%s/parley.db", cfg->data_dir) || pl_buf_append(&b, "", 1))
            abort();
        free(cfg->database);
        cfg->database = pl_buf_steal(&b, NULL);
    }
    if (strncmp(cfg->database, "sqlite:", 7) && strncmp(cfg->database, "postgres://", 11) &&
        strncmp(cfg->database, "postgresql://", 13)) {
        fprintf(stderr, "parley: database must be sqlite:PATH or a postgres:// URL, not '%s'\n",
                cfg->database);
        return -1;
    }
    if (cfg->redis[0] && strncmp(cfg->redis, "redis://", 8)) {
        fprintf(stderr, "parley: redis must be empty or a redis:// URL, not '%s'\n", cfg->redis);
        return -1;
    }
    if (!cfg->worker && !cfg->redis[0]) {
        fprintf(stderr, "parley: worker=false needs redis (without it the queue lives in this "
                        "process and only this process can persist its messages)\n");
        return -1;
    }
    for (const char *c = cfg->node_id; *c; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '.' || *c == '-') || c - cfg->node_id >= 64) {
            fprintf(stderr, "parley: node-id must be 1 to 64 characters of [A-Za-z0-9_.-]\n");
            return -1;
        }
    }
    return 0;
}

/* A bool flag may be followed by its value (`--worker false`) or stand alone (`--demo`). */
static bool is_bool_word(const char *v) {
    static const char *const words[] = {"true", "false", "1", "0", "yes", "no"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (!strcmp(v, words[i]))
            return true;
    return false;
}

int pl_config_load(pl_config_t *cfg, int argc, char **argv, char **rest, int *nrest) {
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NITEMS; i++)
        if (set_value(cfg, &g_items[i], g_items[i].def, "default"))
            return -1;
    for (size_t i = 0; i < NITEMS; i++) {
        const char *v = getenv(g_items[i].env);
        if (v && set_value(cfg, &g_items[i], v, g_items[i].env))
            return -1;
    }
    int n = 0;
    for (int a = 0; a < argc; a++) {
        const char *arg = argv[a];
        const cfg_item_t *hit = NULL;
        const char *val = NULL;
        if (!strncmp(arg, "--", 2)) {
            const char *name = arg + 2;
            const char *eq = strchr(name, '=');
            size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
            for (size_t i = 0; i < NITEMS; i++)
                if (strlen(g_items[i].flag) == nlen && !strncmp(g_items[i].flag, name, nlen))
                    hit = &g_items[i];
            if (hit) {
                if (eq)
                    val = eq + 1;
                else if (hit->type == CFG_BOOL)
                    val = a + 1 < argc && is_bool_word(argv[a + 1]) ? argv[++a] : "true";
                else if (a + 1 < argc)
                    val = argv[++a];
                else {
                    fprintf(stderr, "parley: --%s needs a value\n", hit->flag);
                    return -1;
                }
            }
        }
        if (hit) {
            if (set_value(cfg, hit, val, "flag"))
                return -1;
        } else {
            rest[n++] = argv[a];
        }
    }
    *nrest = n;
    return validate(cfg);
}

void pl_config_dispose(pl_config_t *cfg) {
    for (size_t i = 0; i < NITEMS; i++)
        if (g_items[i].type == CFG_STR) {
            char **p = (char **)(void *)((char *)cfg + g_items[i].offset);
            free(*p);
            *p = NULL;
        }
}

void pl_config_print_help(FILE *out) {
    for (size_t i = 0; i < NITEMS; i++) {
        const cfg_item_t *it = &g_items[i];
        fprintf(out, "  --%-20s %-28s %s", it->flag, it->env, it->help);
        if (it->def[0])
            fprintf(out, " [%s]", it->def);
        fputc('\n', out);
    }
}

void pl_config_print_markdown(FILE *out) {
    fprintf(out, "| flag | environment | default | meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; i < NITEMS; i++) {
        const cfg_item_t *it = &g_items[i];
        fprintf(out, "| `--%s` | `%s` | %s%s%s | %s |\n", it->flag, it->env, it->def[0] ? "`" : "",
                it->def[0] ? it->def : "(empty)", it->def[0] ? "`" : "", it->help);
    }
}
