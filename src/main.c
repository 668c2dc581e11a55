/* The parley command: settings, subcommands, and the wiring of `serve` (store, HTTP server,
 * app routes, signals, graceful shutdown). Everything protocol- or chat-specific lives in the
 * layers under src/; this file only chooses and connects them (DESIGN.md "Layers": main). */
#include "app/accounts.h"
#include "app/app.h"
#include "app/gateway.h"
#include "app/origin.h"
#include "bus/bus_redis.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/id.h"
#include "core/log.h"
#include "http/router.h"
#include "http/server.h"
#include "http/static.h"
#include "presence/presence.h"
#include "queue/queue.h"
#include "sio/server.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_USAGE 2

static const char *g_argv0 = "parley";

static void usage(FILE *out) {
    fprintf(out,
            "Parley %s - self-hosted live chat server\n\n"
            "Usage: parley [settings] <command> [options]\n\n"
            "Commands:\n"
            "  serve                               run the server (HTTP, Socket.IO, widget)\n"
            "  worker                              persist queued messages only (with --redis:\n"
            "                                      scale-out, see README \"Scaling out\")\n"
            "  migrate                             apply pending database migrations\n"
            "  project create --name N [--domain D]... [--json]\n"
            "                                      create a project whitelisting domains D\n"
            "  project list [--json]               list projects\n"
            "  project domains ID [--add D]... [--remove D]... [--json]\n"
            "                                      change a project's whitelisted domains\n"
            "  agent create --email E --password P --project ID [--name N] [--role agent|manager]\n"
            "               [--json]               create an agent account (if new) and make it a\n"
            "                                      member of project ID\n"
            "  agent token --email E               print a fresh access token (last line)\n"
            "  agent revoke --email E              refuse every token issued so far\n"
            "  config [--markdown]                 print the effective settings\n\n"
            "Options: --help, --version. With --json, commands print one JSON object per record.\n"
            "A domain is a hostname (shop.example.com), an IPv4 address or *.example.com.\n\n"
            "Settings (flag, environment variable, meaning [default]):\n",
            PARLEY_VERSION);
    pl_config_print_help(out);
}

/* ---- filesystem helpers (main thread, before or outside the loop) ------------------------- */

static int mkdir_p(const char *path, mode_t mode) {
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, mode) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, mode) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* The JWT secret: the configured one, or the one kept in <data-dir>/jwt-secret (created on
 * first start with 256 random bits, mode 0600). Returns a malloc'd string or NULL. */
static char *load_jwt_secret(const pl_config_t *cfg) {
    if (cfg->jwt_secret[0]) {
        if (strlen(cfg->jwt_secret) < 32)
            pl_log_warn("config.weak_jwt_secret", "length=%zu hint=\"use 32 or more characters\"",
                        strlen(cfg->jwt_secret));
        return pl_xstrdup(cfg->jwt_secret);
    }
    char path[PATH_MAX];
    /* The data directory also exists with a PostgreSQL store: it holds this secret. */
    if (mkdir_p(cfg->data_dir, 0700) != 0) {
        fprintf(stderr, "parley: cannot create data directory %s: %s\n", cfg->data_dir,
                strerror(errno));
        return NULL;
    }
    snprintf(path, sizeof path, "%s/jwt-secret", cfg->data_dir);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        char buf[512];
        ssize_t n = read(fd, buf, sizeof buf - 1);
        struct stat sb;
        if (fstat(fd, &sb) == 0 && (sb.st_mode & 077)) {
            pl_log_warn("config.jwt_secret_mode", "path=%s mode=%o action=chmod_0600", path,
                        (unsigned)(sb.st_mode & 0777));
            fchmod(fd, 0600);
        }
        close(fd);
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            n--;
        if (n < 32) {
            fprintf(stderr, "parley: %s is too short (at least 32 characters)\n", path);
            return NULL;
        }
        buf[n] = '\0';
        return pl_xstrdup(buf);
    }
    if (errno != ENOENT) {
        fprintf(stderr, "parley: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char secret[64];
    pl_random_id(secret, 32);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "parley: cannot create %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t len = strlen(secret);
    bool ok = write(fd, secret, len) == (ssize_t)len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    close(fd);
    if (!ok) {
        fprintf(stderr, "parley: cannot write %s\n", path);
        unlink(path);
        return NULL;
    }
    pl_log_info("config.jwt_secret_created", "path=%s", path);
    return pl_xstrdup(secret);
}

static store_t *open_store(uv_loop_t *loop, const pl_config_t *cfg) {
    if (!strncmp(cfg->database, "sqlite:", 7)) {
        /* The default database lives in the data directory: create it (mode 0700). */
        if (mkdir_p(cfg->data_dir, 0700) != 0) {
            fprintf(stderr, "parley: cannot create data directory %s: %s\n", cfg->data_dir,
                    strerror(errno));
            return NULL;
        }
    }
    store_options_t so = {.synchronous = cfg->sqlite_sync};
    char err[512];
    store_t *s = store_open(loop, cfg->database, &so, err, sizeof err);
    if (!s)
        fprintf(stderr, "parley: cannot open the database: %s\n", err);
    return s;
}

/* ---- project commands ------------------------------------------------------------------------ */

static void print_project(const store_project_t *p, bool as_json) {
    if (as_json) {
        json_t *doms = json_array();
        for (size_t i = 0; i < p->ndomains; i++)
            json_array_append_new(doms, json_string(p->domains[i]));
        json_t *j = json_pack("{s:I, s:s, s:o}", "id", (json_int_t)p->id, "name", p->name,
                              "whitelistedDomains", doms);
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(j);
        return;
    }
    printf("project %lld \"%s\" domains:", (long long)p->id, p->name);
    for (size_t i = 0; i < p->ndomains; i++)
        printf("%s %s", i ? "," : "", p->domains[i]);
    printf("%s\n", p->ndomains ? "" : " (none)");
}

typedef struct {
    int status;
    bool as_json;
    int64_t id;
} cli_ctx_t;

static void cli_project_cb(void *ud, int status, const store_project_t *p) {
    cli_ctx_t *c = ud;
    c->status = status;
    if (status == 0)
        print_project(p, c->as_json);
}

static void cli_project_list_cb(void *ud, int status, const store_project_t *ps, size_t n) {
    cli_ctx_t *c = ud;
    c->status = status;
    for (size_t i = 0; status == 0 && i < n; i++)
        print_project(&ps[i], c->as_json);
    if (status == 0 && n == 0 && !c->as_json)
        printf("no projects\n");
}

/* Collects and validates repeated `--flag VALUE` domain options. */
static int take_domains(const char *flag, int *i, int argc, char **argv, char ***list, size_t *n) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "parley: %s needs a value\n", flag);
        return -1;
    }
    const char *v = argv[++*i];
    char norm[APP_HOST_MAX];
    if (app_domain_normalize(v, norm) != 0) {
        fprintf(stderr,
                "parley: invalid domain '%s' (expected a hostname like shop.example.com, an IPv4 "
                "address or *.example.com)\n",
                v);
        return -1;
    }
    for (size_t k = 0; k < *n; k++)
        if (!strcmp((*list)[k], norm))
            return 0;
    if (*n >= 100) {
        fprintf(stderr, "parley: at most 100 domains per project\n");
        return -1;
    }
    *list = realloc(*list, (*n + 1) * sizeof **list);
    if (!*list)
        abort();
    (*list)[(*n)++] = pl_xstrdup(norm);
    return 0;
}

static void free_list(char **l, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

static int cmd_project(const pl_config_t *cfg, int argc, char **argv) {
    if (argc < 1) {
        fprintf(stderr, "parley: project needs a subcommand: create, list or domains\n");
        return EXIT_USAGE;
    }
    const char *sub = argv[0];
    cli_ctx_t ctx = {.status = 0};
    char *name = NULL;
    char **add = NULL, **rem = NULL;
    size_t nadd = 0, nrem = 0;
    int64_t id = 0;
    int rc = EXIT_USAGE;
    bool is_create = !strcmp(sub, "create"), is_list = !strcmp(sub, "list"),
         is_domains = !strcmp(sub, "domains");
    if (!is_create && !is_list && !is_domains) {
        fprintf(stderr, "parley: unknown project subcommand '%s'\n", sub);
        return EXIT_USAGE;
    }
    int i = 1;
    if (is_domains) {
        uint64_t v;
        if (argc < 2 || !pl_slice_to_u64(pl_slice_cstr(argv[1]), INT64_MAX, &v) || v == 0) {
            fprintf(stderr, "parley: project domains needs a project id\n");
            return EXIT_USAGE;
        }
        id = (int64_t)v;
        i = 2;
    }
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json")) {
            ctx.as_json = true;
        } else if (is_create && !strcmp(a, "--name") && i + 1 < argc) {
            free(name);
            name = pl_xstrdup(argv[++i]);
        } else if (is_create && !strcmp(a, "--domain")) {
            if (take_domains(a, &i, argc, argv, &add, &nadd))
                goto out;
        } else if (is_domains && !strcmp(a, "--add")) {
            if (take_domains(a, &i, argc, argv, &add, &nadd))
                goto out;
        } else if (is_domains && !strcmp(a, "--remove")) {
            if (take_domains(a, &i, argc, argv, &rem, &nrem))
                goto out;
        } else {
            fprintf(stderr, "parley: project %s: unexpected argument '%s'\n", sub, a);
            goto out;
        }
    }
    size_t name_chars = 0;
    for (const char *q = name ? name : ""; *q; q++)
        name_chars += ((unsigned char)*q & 0xC0) != 0x80;
    if (is_create && (name_chars < 1 || name_chars > 100)) {
        fprintf(stderr, "parley: project create needs --name (1 to 100 characters)\n");
        goto out;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    store_t *s = open_store(&loop, cfg);
    if (!s) {
        rc = 1;
        uv_loop_close(&loop);
        goto out;
    }
    int qrc;
    if (is_create)
        qrc = store_project_create(s, name, (const char *const *)add, nadd, cli_project_cb, &ctx);
    else if (is_list)
        qrc = store_project_list(s, cli_project_list_cb, &ctx);
    else
        qrc = store_project_domains_update(s, id, (const char *const *)add, nadd,
                                           (const char *const *)rem, nrem, cli_project_cb, &ctx);
    if (qrc == 0)
        store_wait(s);
    else
        ctx.status = qrc;
    store_close(s, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (ctx.status == STORE_ENOTFOUND) {
        fprintf(stderr, "parley: project %lld not found\n", (long long)id);
        rc = 1;
    } else if (ctx.status != 0) {
        fprintf(stderr, "parley: %s\n", store_strerror(ctx.status));
        rc = 1;
    } else {
        rc = 0;
    }
out:
    free(name);
    free_list(add, nadd);
    free_list(rem, nrem);
    return rc;
}


/* ---- agent commands -------------------------------------------------------------------------- */

typedef struct {
    int status;
    int64_t user_id;
    char email[APP_EMAIL_MAX + 1];
    char full_name[512]; /* up to 100 characters of UTF-8 */
} user_ctx_t;

static void cli_user_cb(void *ud, int status, const store_user_t *u) {
    user_ctx_t *c = ud;
    c->status = status;
    if (status == 0) {
        c->user_id = u->id;
        snprintf(c->email, sizeof c->email, "%s", u->email);
        snprintf(c->full_name, sizeof c->full_name, "%s", u->full_name ? u->full_name : "");
    }
}

static void cli_done_cb(void *ud, int status) {
    *(int *)ud = status;
}

static int cmd_agent(const pl_config_t *cfg, int argc, char **argv) {
    if (argc < 1) {
        fprintf(stderr, "parley: agent needs a subcommand: create, token or revoke\n");
        return EXIT_USAGE;
    }
    const char *sub = argv[0];
    const char *email_in = NULL, *password = NULL, *name = NULL, *role = "agent";
    int64_t project = 0;
    bool as_json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "--json")) {
            as_json = true;
        } else if (!strcmp(a, "--email") && has) {
            email_in = argv[++i];
        } else if (!strcmp(a, "--password") && has) {
            password = argv[++i];
        } else if (!strcmp(a, "--name") && has) {
            name = argv[++i];
        } else if (!strcmp(a, "--role") && has) {
            role = argv[++i];
        } else if (!strcmp(a, "--project") && has) {
            uint64_t v;
            if (!pl_slice_to_u64(pl_slice_cstr(argv[++i]), INT64_MAX, &v) || v == 0) {
                fprintf(stderr, "parley: --project needs a project id\n");
                return EXIT_USAGE;
            }
            project = (int64_t)v;
        } else {
            fprintf(stderr, "parley: agent %s: unexpected argument '%s'\n", sub, a);
            return EXIT_USAGE;
        }
    }
    bool is_create = !strcmp(sub, "create"), is_token = !strcmp(sub, "token"),
         is_revoke = !strcmp(sub, "revoke");
    if (!is_create && !is_token && !is_revoke) {
        fprintf(stderr, "parley: unknown agent subcommand '%s'\n", sub);
        return EXIT_USAGE;
    }
    char email[APP_EMAIL_MAX + 1];
    if (!email_in || app_email_normalize(email_in, email) != 0) {
        fprintf(stderr, "parley: agent %s needs --email with a valid address\n", sub);
        return EXIT_USAGE;
    }
    char hash[crypto_pwhash_STRBYTES];
    if (is_create) {
        size_t name_chars = 0;
        for (const char *q = name ? name : ""; *q; q++)
            name_chars += ((unsigned char)*q & 0xC0) != 0x80;
        if (name && (name_chars < 1 || name_chars > 100)) {
            fprintf(stderr, "parley: --name must be 1 to 100 characters\n");
            return EXIT_USAGE;
        }
        if (!project) {
            fprintf(stderr, "parley: agent create needs --project ID\n");
            return EXIT_USAGE;
        }
        if (strcmp(role, "agent") && strcmp(role, "manager")) {
            fprintf(stderr, "parley: --role must be agent or manager\n");
            return EXIT_USAGE;
        }
        if (!password || app_password_hash(password, hash, sizeof hash) != 0) {
            fprintf(stderr, "parley: agent create needs --password of %d to %d characters\n",
                    APP_PASSWORD_MIN, APP_PASSWORD_MAX);
            return EXIT_USAGE;
        }
    }
    char *secret = NULL;
    if (is_token) {
        if (mkdir_p(cfg->data_dir, 0700) != 0 || !(secret = load_jwt_secret(cfg)))
            return 1;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    store_t *s = open_store(&loop, cfg);
    if (!s) {
        uv_loop_close(&loop);
        free(secret);
        return 1;
    }
    int rc = 1;
    user_ctx_t u = {0};
    int64_t now = pl_wall_ms();
    if (is_create) {
        const char *full = name ? name : email;
        if (store_user_create(s, email, hash, full, now, cli_user_cb, &u) == 0)
            store_wait(s);
        else
            u.status = PL_EUNAVAIL;
        if (u.status == STORE_ECONFLICT) {
            /* An existing account: it only gains the membership. */
            if (store_user_by_email(s, email, cli_user_cb, &u) == 0)
                store_wait(s);
        }
        if (u.status != 0) {
            fprintf(stderr, "parley: cannot create the account: %s\n", store_strerror(u.status));
            goto out;
        }
        int mst = PL_EUNAVAIL;
        if (store_member_add(s, project, u.user_id, role, cli_done_cb, &mst) == 0)
            store_wait(s);
        if (mst == STORE_ENOTFOUND) {
            fprintf(stderr, "parley: project %lld not found\n", (long long)project);
            goto out;
        }
        if (mst != 0) {
            fprintf(stderr, "parley: cannot add the membership: %s\n", store_strerror(mst));
            goto out;
        }
        if (as_json) {
            json_t *j = json_pack("{s:I, s:s, s:s, s:I, s:s}", "id", (json_int_t)u.user_id,
                                  "email", u.email, "fullName", u.full_name, "projectId",
                                  (json_int_t)project, "role", role);
            char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
            if (!t) {
                json_decref(j);
                fprintf(stderr, "parley: cannot print the account\n");
                goto out;
            }
            printf("%s\n", t);
            free(t);
            json_decref(j);
        } else {
            printf("agent %lld <%s> is %s of project %lld\n", (long long)u.user_id, u.email,
                   !strcmp(role, "manager") ? "a manager" : "an agent", (long long)project);
        }
        rc = 0;
        goto out;
    }
    if (store_user_by_email(s, email, cli_user_cb, &u) == 0)
        store_wait(s);
    else
        u.status = PL_EUNAVAIL;
    if (u.status == STORE_ENOTFOUND) {
        fprintf(stderr, "parley: no agent with e-mail %s\n", email);
        goto out;
    }
    if (u.status != 0) {
        fprintf(stderr, "parley: %s\n", store_strerror(u.status));
        goto out;
    }
    if (is_token) {
        pl_buf_t tok;
        pl_buf_init(&tok, 0);
        if (app_access_token(&tok, secret, u.user_id, u.email, now) == 0) {
            printf("%s\n", tok.data);
            rc = 0;
        }
        pl_buf_dispose(&tok);
    } else {
        int st = PL_EUNAVAIL;
        if (store_user_revoke_tokens(s, u.user_id, now, cli_done_cb, &st) == 0)
            store_wait(s);
        if (st == 0) {
            printf("tokens of %s issued before now are refused\n", u.email);
            rc = 0;
        } else {
            fprintf(stderr, "parley: %s\n", store_strerror(st));
        }
    }
out:
    store_close(s, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (secret) {
        sodium_memzero(secret, strlen(secret));
        free(secret);
    }
    return rc;
}

static int cmd_migrate(const pl_config_t *cfg) {
    if (!strncmp(cfg->database, "sqlite:", 7) && mkdir_p(cfg->data_dir, 0700) != 0) {
        fprintf(stderr, "parley: cannot create data directory %s: %s\n", cfg->data_dir,
                strerror(errno));
        return 1;
    }
    store_options_t so = {.synchronous = cfg->sqlite_sync};
    char err[512];
    int applied = 0;
    if (store_migrate(cfg->database, &so, &applied, err, sizeof err) != 0) {
        fprintf(stderr, "parley: migrate failed: %s\n", err);
        return 1;
    }
    printf("applied %d migration%s\n", applied, applied == 1 ? "" : "s");
    return 0;
}

/* ---- serve ------------------------------------------------------------------------------------- */

typedef struct {
    uv_loop_t *loop;
    pl_config_t *cfg;
    store_t *store;
    char demo_agent[400];   /* "email password" of the demo agent, "" if none */
    http_server_t *http;
    http_router_t *router;
    http_static_t *web;
    presence_t *presence;
    queue_t *queue;
    sio_server_t *sio;
    bus_redis_t *bus;       /* NULL without --redis */
    app_gateway_t *gateway;
    app_t app;
    bool worker_only;       /* `parley worker`: no HTTP */
    uv_signal_t sigint, sigterm;
    int signals_seen;
    int64_t demo_project;  /* id printed in the embed snippet, 0 if none */
} server_t;

static void signal_closed_cb(uv_handle_t *h) {
    (void)h;
}

/* Shutdown, in dependency order: the queue stops taking jobs (those in the worker finish), the
 * Socket.IO server disconnects everyone, the HTTP server lets requests finish, presence
 * delivers what it owes, the store finishes its requests, then the gateway is freed. */
static void store_closed_cb(store_t *s, void *ud) {
    server_t *sv = ud;
    (void)s;
    sv->store = NULL;
    /* Last: store callbacks (the CORS domain refresh) may still have reached the gateway. */
    app_gateway_free(sv->gateway);
    sv->gateway = NULL;
    uv_close((uv_handle_t *)&sv->sigint, signal_closed_cb);
    uv_close((uv_handle_t *)&sv->sigterm, signal_closed_cb);
    pl_log_info("shutdown.done", "");
}

static void presence_closed_cb(void *ud) {
    server_t *sv = ud;
    sv->presence = NULL;
    store_close(sv->store, store_closed_cb, sv);
}

static void http_stopped_cb(http_server_t *h, void *ud) {
    server_t *sv = ud;
    http_server_free(h);
    sv->http = NULL;
    presence_close(sv->presence, presence_closed_cb, sv);
}

static void bus_closed_cb(void *ud) {
    server_t *sv = ud;
    sv->bus = NULL;
    if (sv->http)
        http_server_shutdown(sv->http, sv->cfg->shutdown_timeout_ms, http_stopped_cb, sv);
    else
        presence_close(sv->presence, presence_closed_cb, sv);
}

static void sio_closed_cb(void *ud) {
    server_t *sv = ud;
    sv->sio = NULL;
    if (sv->bus)
        bus_redis_close(sv->bus, bus_closed_cb, sv);
    else
        bus_closed_cb(sv);
}

static void queue_closed_cb(void *ud) {
    server_t *sv = ud;
    sv->queue = NULL;
    app_gateway_stop(sv->gateway);
    sio_server_close(sv->sio, sio_closed_cb, sv);
}

static void signal_cb(uv_signal_t *h, int signum) {
    server_t *sv = h->data;
    if (++sv->signals_seen > 1) {
        pl_log_warn("shutdown.forced", "signal=%d", signum);
        _exit(1);
    }
    pl_log_info("shutdown.start", "signal=%d timeout_ms=%u", signum, sv->cfg->shutdown_timeout_ms);
    app_gateway_drain(sv->gateway);
    queue_close(sv->queue, queue_closed_cb, sv);
}

typedef struct {
    int status;
    int64_t count;
    int64_t id;
} sync_ctx_t;

static void sync_count_cb(void *ud, int status, int64_t count) {
    sync_ctx_t *c = ud;
    c->status = status;
    c->count = count;
}

static void sync_project_cb(void *ud, int status, const store_project_t *p) {
    sync_ctx_t *c = ud;
    c->status = status;
    c->id = status == 0 ? p->id : 0;
}

static void sync_list_cb(void *ud, int status, const store_project_t *ps, size_t n) {
    sync_ctx_t *c = ud;
    c->status = status;
    c->id = status == 0 && n ? ps[0].id : 0;
}

/* Creates the demo project on an empty store (--demo), and finds the project id to print. Runs
 * before the loop serves anything, so waiting here blocks nobody. */
static void demo_user_cb(void *ud, int status, const store_user_t *u) {
    sync_ctx_t *c = ud;
    c->status = status;
    c->id = status == 0 ? u->id : 0;
}

static void demo_done_cb(void *ud, int status) {
    ((sync_ctx_t *)ud)->status = status;
}

/* The demo agent: a manager of the demo project with a random password, kept (mode 0600) in
 * <data-dir>/demo-agent so that every `make run` can print how to log in. */
static void create_demo_agent(server_t *sv, int64_t project) {
    char password[32], hash[crypto_pwhash_STRBYTES];
    const char *email = "demo@parley.localhost";
    pl_random_id(password, 12);
    if (app_password_hash(password, hash, sizeof hash) != 0)
        return;
    sync_ctx_t c = {0};
    if (store_user_create(sv->store, email, hash, "Demo Agent", pl_wall_ms(), demo_user_cb, &c) !=
        0)
        return;
    store_wait(sv->store);
    if (c.status != 0)
        return;
    sync_ctx_t m = {0};
    if (store_member_add(sv->store, project, c.id, "manager", demo_done_cb, &m) != 0)
        return;
    store_wait(sv->store);
    if (m.status != 0)
        return;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/demo-agent", sv->cfg->data_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
        dprintf(fd, "%s %s\n", email, password);
        close(fd);
    }
    pl_log_info("demo.agent_created", "email=%s", email);
}

static void load_demo_agent(server_t *sv) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/demo-agent", sv->cfg->data_dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fgets(sv->demo_agent, sizeof sv->demo_agent, f)) {
        size_t n = strlen(sv->demo_agent);
        while (n && (sv->demo_agent[n - 1] == '\n' || sv->demo_agent[n - 1] == '\r'))
            sv->demo_agent[--n] = '\0';
    }
    fclose(f);
}

static int prepare_demo(server_t *sv) {
    sync_ctx_t c = {0};
    if (store_project_count(sv->store, sync_count_cb, &c) != 0)
        return -1;
    store_wait(sv->store);
    if (c.status)
        return -1;
    if (c.count == 0 && sv->cfg->demo) {
        const char *domains[] = {"localhost", "127.0.0.1"};
        if (store_project_create(sv->store, "Demo", domains, 2, sync_project_cb, &c) != 0)
            return -1;
        store_wait(sv->store);
        if (c.status)
            return -1;
        pl_log_info("demo.created", "project=%lld", (long long)c.id);
        sv->demo_project = c.id;
        create_demo_agent(sv, c.id);
        return 0;
    }
    if (c.count > 0) {
        if (store_project_list(sv->store, sync_list_cb, &c) != 0)
            return -1;
        store_wait(sv->store);
        if (c.status)
            return -1;
        sv->demo_project = c.id;
    }
    return 0;
}

static void print_banner(server_t *sv, unsigned port) {
    char base[512];
    if (sv->cfg->public_url[0])
        snprintf(base, sizeof base, "%s", sv->cfg->public_url);
    else
        snprintf(base, sizeof base, "http://localhost:%u", port);
    size_t bl = strlen(base);
    if (bl && base[bl - 1] == '/')
        base[bl - 1] = '\0';
    printf("\nParley %s is running on %s\n\n", PARLEY_VERSION, base);
    printf("  Health check:   %s/health\n", base);
    if (sv->demo_project) {
        printf("  Widget settings: %s/api/v1/public/projects/%lld/settings\n", base,
               (long long)sv->demo_project);
        printf("\n  Embed the chat widget on a page served from a whitelisted domain:\n\n"
               "    <script src=\"%s/widget.js\" data-project-id=\"%lld\"></script>\n",
               base, (long long)sv->demo_project);
        if (sv->demo_agent[0]) {
            char email[256] = "", password[128] = "";
            sscanf(sv->demo_agent, "%255s %127s", email, password);
            printf("\n  Try it: open %s/demo/ to chat as a visitor, and answer from the\n"
                   "  dashboard at %s/app/ as %s with the password %s\n"
                   "  (kept in %s/demo-agent).\n",
                   base, base, email, password, sv->cfg->data_dir);
        } else {
            printf("\n  Dashboard: %s/app/\n", base);
        }
    } else {
        printf("\n  No project yet: create one with\n"
               "    parley project create --name \"My site\" --domain example.com\n");
    }
    printf("\nPress Ctrl-C to stop.\n\n");
    fflush(stdout);
}

/* presence_redis's on_offline: visitors of a dead node went offline. */
static void presence_offline_cb(void *ud, int64_t project, const char *uid) {
    server_t *sv = ud;
    if (sv->gateway)
        app_gateway_visitor_offline(sv->gateway, project, uid);
}

/* The node id on the bus: the setting, or <hostname>-<pid>-<random> so that a restarted process
 * is a new node (its predecessor's entries are cleaned up as a dead node's). */
static void make_node_id(const pl_config_t *cfg, char *out, size_t n) {
    if (cfg->node_id[0]) {
        snprintf(out, n, "%s", cfg->node_id);
        return;
    }
    char host[64] = "node";
    size_t hl = sizeof host;
    if (uv_os_gethostname(host, &hl) != 0)
        snprintf(host, sizeof host, "node");
    for (char *c = host; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '.'))
            *c = '_';
    char rnd[9];
    pl_random_id(rnd, 6); /* 8 characters of base64url */
    snprintf(out, n, "%.40s-%d-%s", host, (int)getpid(), rnd);
}

/* `parley serve` (worker_only false) and `parley worker` (no HTTP: consumes the queue, persists
 * and publishes through the bus). */
static int run_node(pl_config_t *cfg, bool worker_only) {
    int rc = 1;
    server_t sv = {.cfg = cfg, .worker_only = worker_only};
    uv_loop_t *loop = uv_default_loop();
    sv.loop = loop;
    signal(SIGPIPE, SIG_IGN);
    uint64_t t0 = pl_mono_ns();
    if (worker_only && !cfg->redis[0]) {
        fprintf(stderr, "parley: worker needs --redis (PARLEY_REDIS): without Redis the queue "
                        "lives inside `parley serve`, which persists its own messages\n");
        return EXIT_USAGE;
    }
    char node_id[BUS_NODE_ID_MAX + 1];
    make_node_id(cfg, node_id, sizeof node_id);

    sv.store = open_store(loop, cfg);
    if (!sv.store)
        return 1;
    char *secret = load_jwt_secret(cfg);
    if (!secret)
        goto out_store;
    if (!worker_only) {
        if (prepare_demo(&sv) != 0) {
            fprintf(stderr, "parley: cannot read or create projects\n");
            goto out_secret;
        }
        if (cfg->demo)
            load_demo_agent(&sv);
    }

    char exe_web[PATH_MAX];
    const char *web_root = cfg->web_root;
    if (!web_root[0]) {
        char exe[PATH_MAX];
        size_t n = sizeof exe;
        if (uv_exepath(exe, &n) == 0) {
            char *slash = strrchr(exe, '/');
            if (slash)
                *slash = '\0';
            if (snprintf(exe_web, sizeof exe_web, "%s/web", exe) >= (int)sizeof exe_web)
                snprintf(exe_web, sizeof exe_web, "web");
        } else {
            snprintf(exe_web, sizeof exe_web, "web");
        }
        web_root = exe_web;
    }
    if (!worker_only) {
        sv.web = http_static_new(web_root);
        sv.router = http_router_new();
    }

    /* The presence and queue ports (DESIGN.md): in-process, or Redis when scaled out. A worker
     * serves no visitor: its presence stays in-process and unused. */
    sio_options_t so;
    sio_options_default(&so);
    so.eio.ping_interval_ms = cfg->ping_interval_ms;
    so.eio.ping_timeout_ms = cfg->ping_timeout_ms;
    so.eio.max_payload = cfg->max_payload;
    so.connect_timeout_ms = cfg->connect_timeout_ms;
    sv.sio = sio_server_new(loop, &so);
    if (cfg->redis[0]) {
        queue_options_t qo;
        queue_options_default(&qo);
        qo.max_attempts = cfg->queue_attempts;
        sv.queue = queue_redis_new(loop, cfg->redis, NULL, &qo, cfg->queue_visibility_ms);
        sv.presence = worker_only ? presence_memory_new(loop, PRESENCE_DEFAULT_TTL_S)
                                  : presence_redis_new(loop, cfg->redis, PRESENCE_DEFAULT_TTL_S,
                                                       node_id, presence_offline_cb, &sv);
        sv.bus = sv.sio ? bus_redis_new(loop, cfg->redis, sv.sio, node_id) : NULL;
        if (!sv.queue || !sv.presence || !sv.bus) {
            fprintf(stderr, "parley: cannot use redis '%s' (malformed URL?)\n", cfg->redis);
            goto out_web;
        }
    } else {
        sv.presence = presence_memory_new(loop, PRESENCE_DEFAULT_TTL_S);
        sv.queue = queue_memory_new(loop, NULL);
    }
    if (!sv.presence || !sv.queue || !sv.sio) {
        fprintf(stderr, "parley: out of memory\n");
        goto out_web;
    }
    sv.gateway = app_gateway_new(loop, cfg, sv.store, sv.presence, sv.queue, sv.sio, secret);
    app_gateway_start(sv.gateway, sv.bus, worker_only || cfg->worker);

    uv_signal_init(loop, &sv.sigint);
    uv_signal_init(loop, &sv.sigterm);
    sv.sigint.data = sv.sigterm.data = &sv;
    /* Signals are handled before the listen line is printed: a supervisor may stop us as soon
     * as it sees it. */
    uv_signal_start(&sv.sigint, signal_cb, SIGINT);
    uv_signal_start(&sv.sigterm, signal_cb, SIGTERM);
    if (worker_only) {
        pl_log_info("worker.ready", "node=%s queue=%s startup_ms=%.1f", node_id, QUEUE_NAME,
                    (double)(pl_mono_ns() - t0) / 1e6);
        rc = 0;
    } else {
        http_router_add(sv.router, NULL, "/socket.io/*", sio_server_handle, sv.sio);
        sv.app = (app_t){.loop = loop,
                         .cfg = cfg,
                         .store = sv.store,
                         .web = sv.web,
                         .started_ms = (int64_t)pl_mono_ms(),
                         .jwt_secret = secret,
                         .presence = sv.presence,
                         .bus = sv.bus,
                         .queue = sv.queue,
                         .nsp = sio_server_of(sv.sio, "/")};
        app_http_register(&sv.app, sv.router);

        http_limits_t lim;
        http_limits_default(&lim);
        lim.max_connections = cfg->max_connections;
        lim.max_header_bytes = cfg->max_header_bytes;
        lim.max_headers = cfg->max_headers;
        lim.max_body_bytes = cfg->max_body_bytes;
        lim.header_timeout_ms = cfg->header_timeout_ms;
        lim.idle_timeout_ms = cfg->idle_timeout_ms;
        sv.http = http_server_new(loop, &lim, sv.router);
        int lrc = http_server_listen(sv.http, cfg->host, cfg->port, false);
        if (lrc) {
            fprintf(stderr, "parley: cannot listen on %s:%u: %s\n", cfg->host, cfg->port,
                    uv_strerror(lrc));
            sv.signals_seen = 1;
            queue_close(sv.queue, queue_closed_cb, &sv);
        } else {
            unsigned port = http_server_port(sv.http);
            pl_log_info("http.listen", "host=%s port=%u node=%s startup_ms=%.1f", cfg->host,
                        port, sv.bus ? node_id : "-", (double)(pl_mono_ns() - t0) / 1e6);
            print_banner(&sv, port);
            rc = 0;
        }
    }
    uv_run(loop, UV_RUN_DEFAULT);
    if (!worker_only)
        app_http_dispose(&sv.app);
    http_router_free(sv.router);
    http_static_free(sv.web);
    free(secret);
    uv_loop_close(loop);
    return rc;

out_web:
    if (sv.bus)
        bus_redis_close(sv.bus, NULL, NULL);
    if (sv.sio)
        sio_server_close(sv.sio, NULL, NULL);
    if (sv.presence)
        presence_close(sv.presence, NULL, NULL);
    if (sv.queue)
        queue_close(sv.queue, NULL, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    http_router_free(sv.router);
    http_static_free(sv.web);
out_secret:
    free(secret);
out_store:
    store_close(sv.store, NULL, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return rc;
}

static int cmd_config(const pl_config_t *cfg, int argc, char **argv) {
    if (argc > 0 && !strcmp(argv[0], "--markdown")) {
        pl_config_print_markdown(stdout);
        return 0;
    }
    printf("host=%s\nport=%u\ndatabase=%s\nredis=%s\ndata-dir=%s\nweb-root=%s\nlog-level=%s\n"
           "jwt-secret=%s\n",
           cfg->host, cfg->port, cfg->database, cfg->redis, cfg->data_dir, cfg->web_root,
           cfg->log_level, cfg->jwt_secret[0] ? "(set)" : "(generated in data-dir)");
    return 0;
}

int main(int argc, char **argv) {
    g_argv0 = argv[0];
    (void)g_argv0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h") || !strcmp(argv[i], "help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
            printf("parley %s\n", PARLEY_VERSION);
            return 0;
        }
    }
    if (pl_id_init() != 0) {
        fprintf(stderr, "parley: libsodium could not initialise (no entropy source?)\n");
        return 1;
    }
    pl_config_t cfg;
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0;
    if (!rest)
        return 1;
    if (pl_config_load(&cfg, argc - 1, argv + 1, rest, &nrest) != 0) {
        pl_config_dispose(&cfg);
        free(rest);
        return EXIT_USAGE;
    }
    pl_log_set_level((pl_log_level_t)pl_log_level_parse(cfg.log_level));
    int rc;
    if (nrest == 0) {
        usage(stderr);
        rc = EXIT_USAGE;
    } else if (!strcmp(rest[0], "serve") && nrest == 1) {
        rc = run_node(&cfg, false);
    } else if (!strcmp(rest[0], "worker") && nrest == 1) {
        rc = run_node(&cfg, true);
    } else if (!strcmp(rest[0], "migrate") && nrest == 1) {
        rc = cmd_migrate(&cfg);
    } else if (!strcmp(rest[0], "project")) {
        rc = cmd_project(&cfg, nrest - 1, rest + 1);
    } else if (!strcmp(rest[0], "agent")) {
        rc = cmd_agent(&cfg, nrest - 1, rest + 1);
    } else if (!strcmp(rest[0], "config")) {
        rc = cmd_config(&cfg, nrest - 1, rest + 1);
    } else {
        fprintf(stderr, "parley: unknown command or argument '%s' (see parley --help)\n",
                nrest > 1 && (!strcmp(rest[0], "serve") || !strcmp(rest[0], "migrate") ||
                              !strcmp(rest[0], "worker"))
                    ? rest[1]
                                                                                       : rest[0]);
        rc = EXIT_USAGE;
    }
    pl_config_dispose(&cfg);
    free(rest);
    return rc;
}
