/* The agent-API scenarios (issue 5), over HTTP keep-alive (lg_http.h):
 *   api-replies: --clients visitors connect, identify and send one message each (which creates
 *     their conversation; its id comes back in the ack), then LG_HTTP_CONNS keep-alive
 *     connections (default 16) POST /api/v1/projects/P/inbox/conversations/<id>/messages
 *     {"text":"r <send ns>"} in a closed loop, one request in flight each, conversations in turn.
 *     Figures: replies/s (201 answers), POST latency, and POST → the visitor's `agentReplied`
 *     latency (read from the content; same process, same clock). Every reply must reach its
 *     visitor (checked after draining).
 *   api-inbox: one keep-alive connection GETs the inbox list
 *     /api/v1/projects/P/inbox/conversations?page=1&limit=20 LG_REQUESTS times (default 500),
 *     then the last page (from `total`) as many times; p50/p99/max of each.
 * Settings from the environment as in lg_scn_messages.c: LG_AGENT_TOKEN (required), LG_PROJECT_ID,
 * LG_ORIGIN, LG_RUN_ID, LG_HTTP_CONNS, LG_REQUESTS. Threads: the main thread only. */
#include "lg_http.h"
#include "lg_scn.h"

#include "core/buf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define API_MAX_CONNS 256u

typedef struct api api_t;

typedef struct {
    api_t *api;
    lg_http_t *h;
    bool dead;
} hconn_t;

struct api {
    const lg_args_t *a;
    lg_t *vis;
    int64_t project;
    char run_id[32];
    char auth_hdr[2200];        /* "Authorization: Bearer <token>\r\n" */
    uint64_t *conv;             /* per visitor: conversation id, 0 until known */
    uint8_t *identified;        /* per visitor */
    uint32_t n_identified, n_conv;
    hconn_t conns[API_MAX_CONNS];
    uint32_t n_conns;
    uint32_t rr;                /* next visitor to reply to */
    bool sending, measuring;
    uint64_t replies, replies_total, http_errors, http_failed, mismatches, send_errors;
    uint64_t replied_total, replied, replied_bad;
    lg_hist_t http_lat, push_lat;
    /* api-inbox */
    uint64_t total;             /* conversations in the inbox (from page 1) */
    uint32_t requests, done;
    bool deep;
    lg_hist_t first_lat, deep_lat;
    int last_status;
};

static const char *env_or(const char *name, const char *dflt) {
    const char *v = getenv(name);
    return v && v[0] ? v : dflt;
}

static bool contains(const char *h, size_t hl, const char *n, size_t nl) {
    return nl <= hl && memmem(h, hl, n, nl) != NULL;
}

/* Reads the unsigned integer after key in text; false if absent. */
static bool read_u64_after(const char *text, size_t len, const char *key, uint64_t *out) {
    size_t kl = strlen(key);
    const char *p = memmem(text, len, key, kl);
    if (!p) {
        return false;
    }
    p += kl;
    const char *end = text + len;
    uint64_t v = 0;
    int digits = 0;
    while (p < end && *p >= '0' && *p <= '9' && digits < 19) {
        v = v * 10u + (uint64_t)(*p++ - '0');
        digits++;
    }
    *out = v;
    return digits > 0;
}

static int common_setup(api_t *x, const lg_args_t *a) {
    x->a = a;
    uint64_t project = 0, conns = 0;
    const char *token = getenv("LG_AGENT_TOKEN");
    if (!pl_slice_to_u64(pl_slice_cstr(env_or("LG_PROJECT_ID", "1")), INT32_MAX, &project) ||
        !pl_slice_to_u64(pl_slice_cstr(env_or("LG_HTTP_CONNS", "16")), API_MAX_CONNS, &conns) ||
        conns == 0 || !token || !token[0] || strlen(token) > 2048) {
        fprintf(stderr, "loadgen api: LG_AGENT_TOKEN required, LG_HTTP_CONNS 1..%u\n",
                API_MAX_CONNS);
        return 2;
    }
    x->project = (int64_t)project;
    x->n_conns = (uint32_t)conns;
    snprintf(x->auth_hdr, sizeof x->auth_hdr, "Authorization: Bearer %s\r\n", token);
    snprintf(x->run_id, sizeof x->run_id, "%.24s", env_or("LG_RUN_ID", ""));
    if (!x->run_id[0]) {
        snprintf(x->run_id, sizeof x->run_id, "r%ld", (long)getpid());
    }
    lg_hist_init(&x->http_lat);
    lg_hist_init(&x->push_lat);
    lg_hist_init(&x->first_lat);
    lg_hist_init(&x->deep_lat);
    return 0;
}

static void close_conns(api_t *x) {
    for (uint32_t i = 0; i < x->n_conns; i++) {
        if (x->conns[i].h) {
            lg_http_close(x->conns[i].h);
            x->conns[i].h = NULL;
        }
    }
}

/* ---- api-replies --------------------------------------------------------------------------- */

static void next_reply(hconn_t *hc);

static void reply_done(lg_http_t *h, int status, const char *body, size_t len, uint64_t lat,
                       void *ud) {
    hconn_t *hc = ud;
    api_t *x = hc->api;
    if (status < 0) {
        hc->dead = true;
        hc->h = NULL; /* the connection closes itself below */
        lg_http_close(h);
        x->http_failed++;
        return;
    }
    if (status == 201) {
        x->replies_total++;
        if (x->measuring) {
            x->replies++;
            lg_hist_record(&x->http_lat, lat);
        }
    } else {
        x->http_errors++;
        x->last_status = status;
    }
    next_reply(hc);
}

static void next_reply(hconn_t *hc) {
    api_t *x = hc->api;
    if (!x->sending || hc->dead || !hc->h) {
        return;
    }
    uint32_t n = x->a->clients, i = x->rr;
    x->rr = x->rr + 1 == n ? 0 : x->rr + 1;
    char target[160], body[96];
    snprintf(target, sizeof target,
             "/api/v1/projects/%" PRId64 "/inbox/conversations/%" PRIu64 "/messages", x->project,
             x->conv[i]);
    int bl = snprintf(body, sizeof body, "{\"text\":\"r %" PRIu64 "\"}", uv_hrtime());
    if (lg_http_request(hc->h, "POST", target, x->auth_hdr, body, (size_t)bl) != 0) {
        x->send_errors++;
    }
}

static void vis_ready(lg_t *lg, lg_conn_t *c) {
    api_t *x = lg_data(lg);
    char args[256];
    int n = snprintf(args, sizeof args,
                     "[\"identify\",{\"projectId\":%" PRId64 ",\"visitorUid\":\"v%s-%u\"}]",
                     x->project, x->run_id, lg_conn_index(c));
    if (n <= 0 || (size_t)n >= sizeof args || lg_conn_emit(c, args, (size_t)n, 0) != 0) {
        x->send_errors++;
    }
}

static void vis_ack(lg_t *lg, lg_conn_t *c, uint64_t ack_id, const char *args, size_t len) {
    api_t *x = lg_data(lg);
    uint32_t i = lg_conn_index(c);
    if (ack_id == 0 && !x->identified[i]) {
        x->identified[i] = 1;
        x->n_identified++;
        char m[160];
        int n = snprintf(m, sizeof m,
                         "[\"sendMessage\",{\"content\":\"hello\",\"tempId\":\"%s-%u\"}]",
                         x->run_id, i);
        if (lg_conn_emit(c, m, (size_t)n, 1) != 0) {
            x->send_errors++;
        }
    } else if (ack_id == 1 && x->conv[i] == 0 &&
               read_u64_after(args, len, "\"conversationId\":", &x->conv[i]) && x->conv[i]) {
        x->n_conv++;
    } else {
        x->mismatches++;
    }
}

static void vis_event(lg_t *lg, lg_conn_t *c, const char *args, size_t len, int64_t ack_id) {
    api_t *x = lg_data(lg);
    static const char ev[] = "[\"agentReplied\",";
    if (len < sizeof ev - 1 || memcmp(args, ev, sizeof ev - 1) != 0) {
        return;
    }
    uint64_t now = uv_hrtime(), t = 0;
    if (!read_u64_after(args, len, "\"content\":\"r ", &t) || t > now) {
        x->replied_bad++;
        return;
    }
    x->replied_total++;
    if (x->measuring) {
        x->replied++;
        lg_hist_record(&x->push_lat, now - t);
    }
}

static bool all_conv(lg_t *lg, void *arg) {
    api_t *x = arg;
    return x->n_conv == x->a->clients ||
           (lg_settled(lg) && lg_counts(lg)->open < x->a->clients);
}

static bool replies_drained(lg_t *lg, void *arg) {
    api_t *x = arg;
    for (uint32_t i = 0; i < x->n_conns; i++) {
        if (x->conns[i].h && lg_http_busy(x->conns[i].h)) {
            return false;
        }
    }
    return x->replied_total >= x->replies_total;
}

static void pct(lg_json_t *j, const char *prefix, const lg_hist_t *h) {
    char k[64];
    snprintf(k, sizeof k, "%s_p50_us", prefix);
    lg_json_num(j, k, (double)lg_hist_quantile(h, 0.50) / 1e3);
    snprintf(k, sizeof k, "%s_p99_us", prefix);
    lg_json_num(j, k, (double)lg_hist_quantile(h, 0.99) / 1e3);
    snprintf(k, sizeof k, "%s_max_us", prefix);
    lg_json_num(j, k, (double)h->max / 1e3);
}

static int replies_run(uv_loop_t *loop, const lg_args_t *a) {
    api_t *x = calloc(1, sizeof *x);
    if (!x) {
        return 1;
    }
    int code = common_setup(x, a);
    if (code != 0) {
        free(x);
        return code;
    }
    code = 1;
    x->conv = calloc(a->clients, sizeof *x->conv);
    x->identified = calloc(a->clients, 1);
    char vpath[512];
    int pn = snprintf(vpath, sizeof vpath,
                      "%s?EIO=4&transport=websocket&projectId=%" PRId64
                      " HTTP/1.1\r\nOrigin: %s\r\nX-Bench: /",
                      a->conn.path, x->project, env_or("LG_ORIGIN", "http://localhost"));
    if (!x->conv || !x->identified || pn <= 0 || (size_t)pn >= sizeof vpath) {
        goto out_free;
    }
    lg_options_t vo = a->conn;
    vo.path = vpath;
    vo.auth = NULL;
    lg_handlers_t vh = {.on_ready = vis_ready, .on_ack = vis_ack, .on_event = vis_event};
    x->vis = lg_new(loop, &vo, a->clients, &vh, x);
    if (!x->vis || lg_open(x->vis, a->clients, a->concurrency) != 0 ||
        lg_run_until(x->vis, all_conv, x, (uint64_t)a->deadline_s * 1000u) != 0 ||
        x->n_conv != a->clients) {
        fprintf(stderr, "loadgen api-replies: %u/%u conversations created (%s)\n", x->n_conv,
                a->clients, x->vis ? lg_first_error(x->vis) : "no memory");
        goto out_lg;
    }
    for (uint32_t i = 0; i < x->n_conns; i++) {
        x->conns[i].api = x;
        x->conns[i].h = lg_http_new(loop, a->conn.host, a->conn.port, reply_done, &x->conns[i]);
        if (!x->conns[i].h) {
            goto out_conns;
        }
    }
    x->sending = true;
    for (uint32_t i = 0; i < x->n_conns; i++) {
        next_reply(&x->conns[i]);
    }
    lg_run_for(x->vis, a->warmup_ms);
    pid_t pid = a->server_pid;
    long cpu0 = pid ? lg_proc_cpu_ms(pid) : -1;
    uint64_t t0 = uv_hrtime();
    x->measuring = true;
    lg_run_for(x->vis, (uint64_t)a->seconds * 1000u);
    x->measuring = false;
    x->sending = false;
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    long cpu1 = pid ? lg_proc_cpu_ms(pid) : -1;
    int drain_rc = lg_run_until(x->vis, replies_drained, x, 10000);
    uint32_t dropped = lg_counts(x->vis)->dropped;
    lg_json_t j;
    lg_json_begin(&j);
    lg_json_str(&j, "scenario", "api-replies");
    lg_json_str(&j, "label", a->label);
    lg_json_int(&j, "visitors", a->clients);
    lg_json_int(&j, "http_conns", x->n_conns);
    lg_json_num(&j, "seconds", secs);
    lg_json_int(&j, "replies", (int64_t)x->replies);
    lg_json_num(&j, "replies_per_s", secs > 0 ? (double)x->replies / secs : 0);
    pct(&j, "post", &x->http_lat);
    pct(&j, "replied", &x->push_lat);
    lg_json_int(&j, "replies_total", (int64_t)x->replies_total);
    lg_json_int(&j, "replied_total", (int64_t)x->replied_total);
    lg_json_int(&j, "http_errors", (int64_t)x->http_errors);
    lg_json_int(&j, "last_bad_status", x->last_status);
    lg_json_int(&j, "http_failed", (int64_t)x->http_failed);
    lg_json_int(&j, "mismatches", (int64_t)(x->mismatches + x->replied_bad));
    lg_json_int(&j, "dropped", dropped);
    lg_json_num(&j, "server_cpu_pct",
                cpu0 >= 0 && cpu1 >= 0 ? (double)(cpu1 - cpu0) / 10.0 / secs : -1);
    lg_json_end(&j);
    fprintf(stderr,
            "%s api-replies: %u conversations, %u keep-alive connections: %.0f replies/s; POST "
            "p50 %.0f us p99 %.0f us; POST->agentReplied p50 %.0f us p99 %.0f us max %.0f us; "
            "%" PRIu64 "/%" PRIu64 " delivered, %" PRIu64 " HTTP errors\n",
            a->label, a->clients, x->n_conns, secs > 0 ? (double)x->replies / secs : 0,
            (double)lg_hist_quantile(&x->http_lat, 0.5) / 1e3,
            (double)lg_hist_quantile(&x->http_lat, 0.99) / 1e3,
            (double)lg_hist_quantile(&x->push_lat, 0.5) / 1e3,
            (double)lg_hist_quantile(&x->push_lat, 0.99) / 1e3, (double)x->push_lat.max / 1e3,
            x->replied_total, x->replies_total, x->http_errors);
    if (x->replies > 0 && x->http_errors == 0 && x->http_failed == 0 && x->send_errors == 0 &&
        x->mismatches == 0 && x->replied_bad == 0 && drain_rc == 0 && dropped == 0) {
        code = 0;
    }
out_conns:
    close_conns(x);
out_lg:
    if (x->vis) {
        lg_run_for(x->vis, 20);
        lg_free(x->vis);
    }
out_free:
    free(x->conv);
    free(x->identified);
    free(x);
    return code;
}

/* ---- api-inbox ----------------------------------------------------------------------------- */

static void next_inbox(api_t *x) {
    char target[160];
    uint64_t page = 1;
    if (x->deep) {
        page = x->total > 20 ? (x->total + 19) / 20 : 1;
    }
    snprintf(target, sizeof target,
             "/api/v1/projects/%" PRId64 "/inbox/conversations?page=%" PRIu64 "&limit=20",
             x->project, page);
    if (lg_http_request(x->conns[0].h, "GET", target, x->auth_hdr, NULL, 0) != 0) {
        x->send_errors++;
    }
}

static void inbox_done(lg_http_t *h, int status, const char *body, size_t len, uint64_t lat,
                       void *ud) {
    api_t *x = ud;
    if (status < 0) {
        x->http_failed++;
        x->conns[0].dead = true;
        return;
    }
    if (status != 200 || !contains(body, len, "\"data\":[{", 9)) {
        x->http_errors++;
        x->last_status = status;
    } else if (!x->deep && x->total == 0) {
        (void)read_u64_after(body, len, "\"total\":", &x->total);
    }
    lg_hist_record(x->deep ? &x->deep_lat : &x->first_lat, lat);
    x->done++;
    if (x->done == x->requests && !x->deep) {
        x->deep = true;
        x->done = 0;
    }
    if (x->done < x->requests) {
        next_inbox(x);
    }
}

static bool inbox_finished(lg_t *lg, void *arg) {
    api_t *x = arg;
    return (x->deep && x->done == x->requests) || x->conns[0].dead;
}

static int inbox_run(uv_loop_t *loop, const lg_args_t *a) {
    api_t *x = calloc(1, sizeof *x);
    if (!x) {
        return 1;
    }
    int code = common_setup(x, a);
    uint64_t requests = 0;
    if (code != 0 ||
        !pl_slice_to_u64(pl_slice_cstr(env_or("LG_REQUESTS", "500")), 1000000, &requests) ||
        requests == 0) {
        free(x);
        return code ? code : 2;
    }
    code = 1;
    x->requests = (uint32_t)requests;
    x->n_conns = 1;
    /* The core's loop helpers need an lg_t; this one opens no connection. */
    lg_handlers_t none = {0};
    lg_t *lg = lg_new(loop, &a->conn, 1, &none, x);
    if (!lg) {
        free(x);
        return 2;
    }
    x->conns[0].api = x;
    x->conns[0].h = lg_http_new(loop, a->conn.host, a->conn.port, inbox_done, x);
    if (x->conns[0].h) {
        next_inbox(x);
        int rc = lg_run_until(lg, inbox_finished, x, (uint64_t)a->deadline_s * 1000u);
        uint64_t deep_page = x->total > 20 ? (x->total + 19) / 20 : 1;
        lg_json_t j;
        lg_json_begin(&j);
        lg_json_str(&j, "scenario", "api-inbox");
        lg_json_str(&j, "label", a->label);
        lg_json_int(&j, "total", (int64_t)x->total);
        lg_json_int(&j, "requests", x->requests);
        lg_json_int(&j, "deep_page", (int64_t)deep_page);
        pct(&j, "page1", &x->first_lat);
        pct(&j, "deep", &x->deep_lat);
        lg_json_int(&j, "http_errors", (int64_t)x->http_errors);
        lg_json_int(&j, "last_bad_status", x->last_status);
        lg_json_int(&j, "http_failed", (int64_t)x->http_failed);
        lg_json_end(&j);
        fprintf(stderr,
                "%s api-inbox: %" PRIu64 " conversations; page 1 p50 %.0f us p99 %.0f us; page %"
                PRIu64 " p50 %.0f us p99 %.0f us (%u requests each, %" PRIu64 " errors)\n",
                a->label, x->total, (double)lg_hist_quantile(&x->first_lat, 0.5) / 1e3,
                (double)lg_hist_quantile(&x->first_lat, 0.99) / 1e3, deep_page,
                (double)lg_hist_quantile(&x->deep_lat, 0.5) / 1e3,
                (double)lg_hist_quantile(&x->deep_lat, 0.99) / 1e3, x->requests, x->http_errors);
        if (rc == 0 && x->http_errors == 0 && x->http_failed == 0 && x->send_errors == 0) {
            code = 0;
        }
        close_conns(x);
    }
    lg_run_for(lg, 20);
    lg_free(lg);
    free(x);
    return code;
}

const lg_scenario_t lg_scn_api_replies = {
    .name = "api-replies",
    .help = "agent replies over HTTP keep-alive to --clients visitors; replies/s, POST and "
            "agentReplied latency",
    .run = replies_run,
};

const lg_scenario_t lg_scn_api_inbox = {
    .name = "api-inbox",
    .help = "inbox listing latency, page 1 and the last page (LG_REQUESTS each)",
    .run = inbox_run,
};
