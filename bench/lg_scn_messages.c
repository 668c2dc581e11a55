/* The `messages` scenario (issue 4): the chat flow of Parley's protocol (PROTOCOL.md sections 2-4).
 * A agent sockets connect with `40{"token":...}` and join the project room
 * (`42<id>["joinProjectRoom",{"projectId":P}]`, acked); V visitor sockets connect with
 * `?projectId=P` and an Origin header, identify (`42<id>["identify",{...}]`, acked), and then send
 * `42<id>["sendMessage",{"content":"b <send ns> <pad>","tempId":"<run>-<v>-<seq>"}]`, either as
 * fast as acks return with `window` in flight per visitor (closed loop) or paced at --rate over
 * the visitors in turn (open loop). Figures: acknowledged messages per second, ack latency
 * (send → `43<id>[{"tempId":...,"finalMessage":...}]`) and send → agent `newMessage` latency (the
 * agent reads the send time out of the message content; both sides are this process, so the
 * clock is the same). Every ack is checked to carry its own tempId; every agent must receive
 * every acknowledged message (checked after draining).
 *
 * Settings beyond lg_args_t come from the environment, so the shared option parser stays as it
 * is: LG_AGENTS (agent sockets, default 1), LG_AGENT_TOKEN (JWT, required when LG_AGENTS > 0),
 * LG_PROJECT_ID (default 1), LG_ORIGIN (default http://localhost), LG_RUN_ID (tempId prefix,
 * default the pid). The Origin header and projectId query ride in the path option, which the core
 * writes verbatim into the request line (see bench/CHAT.md).
 *
 * Scale-out (bench/scale.sh): --visitor-ports A,B spreads the visitors over several server
 * processes (visitor i on the (i mod K)-th port, one client set per port) and --agent-port puts
 * the agents on one of them. With more than one visitor port the content also carries the
 * sender's port index (`"b <send ns> p<k> <pad>"`), so the agents report the newMessage latency
 * apart for senders on another port than theirs (cross-node fan-out) and on the same port.
 * --server-pids and --backend-pids add the CPU of the other nodes and workers, and of
 * PostgreSQL and Redis, to the figures.
 * Threads: the main thread only. */
#include "lg_http.h"
#include "lg_scn.h"

#include "core/buf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MSG_MAX_WINDOW 256u

typedef struct {
    uint64_t ack_id;  /* ack id of the message in this slot */
    uint64_t seq;     /* its sequence number (in its tempId) */
    uint64_t sent_ns; /* uv_hrtime at send */
    bool used;
} slot_t;

typedef struct msg msg_t;

/* The visitors on one port: visitor i is connection i / n_vis of set i % n_vis. */
typedef struct {
    msg_t *m;
    lg_t *lg;      /* NULL until created */
    uint32_t k;    /* this set's index */
    uint16_t port; /* its server port */
} vset_t;

struct msg {
    const lg_args_t *a;
    vset_t vis[LG_MAX_PORTS]; /* visitor sockets, one client set per port */
    uint32_t n_vis;           /* sets */
    lg_t *agt;              /* agent sockets (NULL when none) */
    uint32_t agents;        /* agent sockets wanted */
    int64_t project;        /* project id */
    char run_id[32];        /* tempId prefix */
    uv_timer_t pace;        /* with --rate */
    uint64_t pace_start;    /* uv_hrtime when pacing began */
    uint64_t scheduled;     /* messages due since pace_start */
    uint64_t behind;        /* due but every window full */
    uint32_t rr;            /* next visitor to try when pacing */
    bool sending;           /* acks are followed by a new message (closed loop) / pacing on */
    bool measuring;         /* acks and newMessages are recorded */
    slot_t *slots;          /* visitors * window */
    uint32_t *inflight;     /* per visitor */
    uint64_t *seq;          /* per visitor: messages sent (next ack id is seq + 1) */
    uint8_t *identified;    /* per visitor: identify acked */
    uint32_t n_identified;  /* visitors identified */
    uint32_t n_joined;      /* agents whose joinProjectRoom was acked ok */
    uint64_t in_flight;     /* sum of inflight */
    uint64_t sent_total;    /* sendMessage emitted, whole run */
    uint64_t acked_total;   /* acks with finalMessage, whole run */
    uint64_t acked;         /* acks while measuring */
    uint64_t refused;       /* acks that were refusals ({status:"error",...}) */
    uint64_t mismatches;    /* acks with the wrong tempId or an unknown ack id */
    uint64_t send_errors;   /* emits refused by the core */
    uint64_t newmsg_total;  /* newMessage events received by agents, whole run */
    uint64_t newmsg;        /* newMessage events while measuring */
    uint64_t newmsg_bad;    /* newMessage whose content we could not read */
    lg_hist_t ack_lat;      /* ns */
    lg_hist_t nm_lat;       /* ns */
    lg_hist_t nm_cross;     /* ns: newMessage from a visitor on another port than the agent's */
    lg_hist_t nm_local;     /* ns: from a visitor on the agent's port */
    uv_timer_t login_timer; /* LG_LOGINS_PER_S > 0: one login per tick */
    lg_http_t *login_http[8]; /* keep-alive connections for logins */
    char login_body[256];
    uint64_t logins, login_errors, login_skipped;
    int login_bad_status;   /* last status that was not a successful login (<0: conn error) */
    lg_hist_t login_lat;    /* ns */
    char pad[1024];         /* content padding */
    uint32_t pad_len;
};

static const char *env_or(const char *name, const char *dflt) {
    const char *v = getenv(name);
    return v && v[0] ? v : dflt;
}

/* ---- visitors ------------------------------------------------------------------------------ */

/* Visitor number of connection c of a visitor set, and the connection of visitor i. */
static uint32_t vis_index(lg_t *lg, const lg_conn_t *c) {
    const vset_t *v = lg_data(lg);
    return lg_conn_index(c) * v->m->n_vis + v->k;
}

static lg_conn_t *vis_conn(msg_t *m, uint32_t i) {
    return lg_conn_at(m->vis[i % m->n_vis].lg, i / m->n_vis);
}

static void send_one(msg_t *m, lg_conn_t *c, uint32_t i) {
    uint32_t w = m->a->window;
    slot_t *s = NULL;
    for (uint32_t k = 0; k < w; k++) {
        if (!m->slots[(size_t)i * w + k].used) {
            s = &m->slots[(size_t)i * w + k];
            break;
        }
    }
    if (!s) {
        return;
    }
    uint64_t seq = m->seq[i] + 1, now = uv_hrtime();
    char args[1400], port_tag[16] = "";
    if (m->n_vis > 1) {
        snprintf(port_tag, sizeof port_tag, "p%u ", i % m->n_vis);
    }
    int n = snprintf(args, sizeof args,
                     "[\"sendMessage\",{\"content\":\"b %" PRIu64
                     " %s%.*s\",\"tempId\":\"%s-%u-%" PRIu64 "\"}]",
                     now, port_tag, (int)m->pad_len, m->pad, m->run_id, i, seq);
    if (n <= 0 || (size_t)n >= sizeof args || lg_conn_emit(c, args, (size_t)n, (int64_t)seq) != 0) {
        m->send_errors++;
        return;
    }
    *s = (slot_t){.ack_id = seq, .seq = seq, .sent_ns = now, .used = true};
    m->seq[i] = seq;
    m->inflight[i]++;
    m->in_flight++;
    m->sent_total++;
}

static void on_pace(uv_timer_t *t) {
    msg_t *m = t->data;
    if (!m->sending) {
        return;
    }
    uint32_t n = m->a->clients, w = m->a->window;
    uint64_t due = (uv_hrtime() - m->pace_start) / 1000u * m->a->rate / 1000000u;
    uint32_t misses = 0;
    while (m->scheduled < due) {
        lg_conn_t *c = vis_conn(m, m->rr);
        uint32_t i = m->rr;
        m->rr = m->rr + 1 == n ? 0 : m->rr + 1;
        if (lg_conn_ready(c) && m->identified[i] && m->inflight[i] < w) {
            send_one(m, c, i);
            m->scheduled++;
            misses = 0;
        } else if (++misses == n) {
            m->behind += due - m->scheduled;
            m->scheduled = due;
        }
    }
}

static void vis_ready(lg_t *lg, lg_conn_t *c) {
    msg_t *m = ((vset_t *)lg_data(lg))->m;
    char args[256];
    int n = snprintf(args, sizeof args,
                     "[\"identify\",{\"projectId\":%" PRId64 ",\"visitorUid\":\"v%s-%u\"}]",
                     m->project, m->run_id, vis_index(lg, c));
    if (n <= 0 || (size_t)n >= sizeof args || lg_conn_emit(c, args, (size_t)n, 0) != 0) {
        m->send_errors++;
    }
}

static bool contains(const char *h, size_t hl, const char *n, size_t nl) {
    return nl <= hl && memmem(h, hl, n, nl) != NULL;
}

static void vis_ack(lg_t *lg, lg_conn_t *c, uint64_t ack_id, const char *args, size_t len) {
    msg_t *m = ((vset_t *)lg_data(lg))->m;
    uint32_t i = vis_index(lg, c), w = m->a->window;
    if (ack_id == 0) { /* identify */
        if (!m->identified[i] && len >= 2 && !contains(args, len, "\"error\"", 7)) {
            m->identified[i] = 1;
            m->n_identified++;
        } else {
            m->mismatches++;
        }
        return;
    }
    slot_t *s = NULL;
    for (uint32_t k = 0; k < w; k++) {
        slot_t *t = &m->slots[(size_t)i * w + k];
        if (t->used && t->ack_id == ack_id) {
            s = t;
            break;
        }
    }
    if (!s) {
        m->mismatches++;
        return;
    }
    uint64_t lat = uv_hrtime() - s->sent_ns;
    char want[96];
    int n = snprintf(want, sizeof want, "\"tempId\":\"%s-%u-%" PRIu64 "\"", m->run_id, i, s->seq);
    s->used = false;
    m->inflight[i]--;
    m->in_flight--;
    if (contains(args, len, "\"status\":\"error\"", 16)) {
        m->refused++;
    } else if (n > 0 && contains(args, len, want, (size_t)n) &&
               contains(args, len, "\"finalMessage\"", 14)) {
        m->acked_total++;
        if (m->measuring) {
            m->acked++;
            lg_hist_record(&m->ack_lat, lat);
        }
    } else {
        m->mismatches++;
    }
    if (m->sending && m->a->rate == 0) {
        send_one(m, c, i);
    }
}

static void vis_close(lg_t *lg, lg_conn_t *c, bool was_ready, const char *reason) {
    msg_t *m = ((vset_t *)lg_data(lg))->m;
    uint32_t i = vis_index(lg, c), w = m->a->window;
    m->in_flight -= m->inflight[i];
    m->inflight[i] = 0;
    for (uint32_t k = 0; k < w; k++) {
        m->slots[(size_t)i * w + k].used = false;
    }
}

/* ---- agents -------------------------------------------------------------------------------- */

static void agt_ready(lg_t *lg, lg_conn_t *c) {
    msg_t *m = lg_data(lg);
    char args[96];
    int n = snprintf(args, sizeof args, "[\"joinProjectRoom\",{\"projectId\":%" PRId64 "}]",
                     m->project);
    if (n <= 0 || (size_t)n >= sizeof args || lg_conn_emit(c, args, (size_t)n, 1) != 0) {
        m->send_errors++;
    }
}

static void agt_ack(lg_t *lg, lg_conn_t *c, uint64_t ack_id, const char *args, size_t len) {
    msg_t *m = lg_data(lg);
    if (ack_id == 1 && contains(args, len, "\"status\":\"ok\"", 13)) {
        m->n_joined++;
    } else {
        m->mismatches++;
    }
}

static void agt_event(lg_t *lg, lg_conn_t *c, const char *args, size_t len, int64_t ack_id) {
    msg_t *m = lg_data(lg);
    static const char ev[] = "[\"newMessage\",";
    if (len < sizeof ev - 1 || memcmp(args, ev, sizeof ev - 1) != 0) {
        return; /* visitorStatusChanged and the like */
    }
    uint64_t now = uv_hrtime();
    static const char key[] = "\"content\":\"b ";
    const char *p = memmem(args, len, key, sizeof key - 1);
    if (!p) {
        m->newmsg_bad++;
        return;
    }
    p += sizeof key - 1;
    const char *end = args + len;
    uint64_t t = 0;
    int digits = 0;
    while (p < end && *p >= '0' && *p <= '9' && digits < 20) {
        t = t * 10u + (uint64_t)(*p++ - '0');
        digits++;
    }
    if (digits == 0 || t > now) {
        m->newmsg_bad++;
        return;
    }
    uint32_t k = 0; /* the sender's visitor set: "b <ns> p<k> " when there are several */
    if (m->n_vis > 1) {
        if (end - p < 3 || p[0] != ' ' || p[1] != 'p' || p[2] < '0' || p[2] > '9') {
            m->newmsg_bad++;
            return;
        }
        for (p += 2; p < end && *p >= '0' && *p <= '9' && k < LG_MAX_PORTS; p++) {
            k = k * 10u + (uint32_t)(*p - '0');
        }
        if (k >= m->n_vis) {
            m->newmsg_bad++;
            return;
        }
    }
    m->newmsg_total++;
    if (m->measuring) {
        m->newmsg++;
        lg_hist_record(&m->nm_lat, now - t);
        lg_hist_record(m->vis[k].port == m->a->agent_port ? &m->nm_local : &m->nm_cross, now - t);
    }
}

/* ---- logins (LG_LOGINS_PER_S): POST /api/v1/auth/login while the visitors send -------------- */

static void login_done(lg_http_t *h, int status, const char *body, size_t len, uint64_t lat,
                       void *ud) {
    msg_t *m = ud;
    if (status < 0) {
        for (size_t k = 0; k < sizeof m->login_http / sizeof m->login_http[0]; k++) {
            if (m->login_http[k] == h) {
                lg_http_close(h);
                m->login_http[k] = NULL;
            }
        }
        m->login_errors++;
        m->login_bad_status = status;
        return;
    }
    if (status == 200 && contains(body, len, "\"accessToken\"", 13)) {
        m->logins++;
        lg_hist_record(&m->login_lat, lat);
    } else {
        m->login_errors++;
        m->login_bad_status = status;
    }
}

static void on_login_tick(uv_timer_t *t) {
    msg_t *m = t->data;
    for (size_t k = 0; k < sizeof m->login_http / sizeof m->login_http[0]; k++) {
        if (m->login_http[k] && !lg_http_busy(m->login_http[k])) {
            if (lg_http_request(m->login_http[k], "POST", "/api/v1/auth/login", NULL,
                                m->login_body, strlen(m->login_body)) != 0) {
                m->login_errors++;
            }
            return;
        }
    }
    m->login_skipped++;
}

/* ---- the script ---------------------------------------------------------------------------- */

static bool agents_joined(lg_t *lg, void *arg) {
    msg_t *m = arg;
    return m->n_joined == m->agents || (lg_settled(m->agt) && lg_counts(m->agt)->open < m->agents);
}

static bool visitors_identified(lg_t *lg, void *arg) {
    msg_t *m = arg;
    if (m->n_identified == m->a->clients) {
        return true;
    }
    uint32_t open = 0;
    for (uint32_t k = 0; k < m->n_vis; k++) {
        if (!lg_settled(m->vis[k].lg)) {
            return false;
        }
        open += lg_counts(m->vis[k].lg)->open;
    }
    return open + m->n_identified < m->a->clients;
}

/* The first error of the visitor sets ("" if none). */
static const char *vis_first_error(const msg_t *m) {
    for (uint32_t k = 0; k < m->n_vis; k++) {
        if (m->vis[k].lg && lg_first_error(m->vis[k].lg)[0]) {
            return lg_first_error(m->vis[k].lg);
        }
    }
    return "";
}

/* CPU (ms; with their children's when tree) and RSS (KiB) summed over a list of processes; -1
 * when any is unreadable. */
static long pids_cpu_ms(const pid_t *pids, uint32_t n, bool tree) {
    long sum = 0;
    for (uint32_t k = 0; k < n; k++) {
        long v = tree ? lg_proc_tree_cpu_ms(pids[k]) : lg_proc_cpu_ms(pids[k]);
        if (v < 0) {
            return -1;
        }
        sum += v;
    }
    return sum;
}

static long pids_rss_kib(const pid_t *pids, uint32_t n) {
    long sum = 0;
    for (uint32_t k = 0; k < n; k++) {
        long v = lg_proc_rss_kib(pids[k]);
        if (v < 0) {
            return -1;
        }
        sum += v;
    }
    return sum;
}

static bool drained(lg_t *lg, void *arg) {
    msg_t *m = arg;
    return m->in_flight == 0 && (m->agents == 0 || m->newmsg_total >= m->acked_total * m->agents);
}

static void print_pct(const char *what, const lg_hist_t *h) {
    fprintf(stderr, "%s p50 %.0f us, p99 %.0f us, max %.0f us", what,
            (double)lg_hist_quantile(h, 0.50) / 1e3, (double)lg_hist_quantile(h, 0.99) / 1e3,
            (double)h->max / 1e3);
}

static int messages_run(uv_loop_t *loop, const lg_args_t *a) {
    if (a->window == 0 || a->window > MSG_MAX_WINDOW || a->clients == 0) {
        fprintf(stderr, "loadgen messages: --window must be 1..%u\n", MSG_MAX_WINDOW);
        return 2;
    }
    msg_t *m = calloc(1, sizeof *m);
    if (!m) {
        return 1;
    }
    int exit_code = 1;
    m->a = a;
    uint64_t agents = 0, project = 0;
    if (!pl_slice_to_u64(pl_slice_cstr(env_or("LG_AGENTS", "1")), 1000, &agents) ||
        !pl_slice_to_u64(pl_slice_cstr(env_or("LG_PROJECT_ID", "1")), INT32_MAX, &project)) {
        fprintf(stderr, "loadgen messages: LG_AGENTS 0..1000, LG_PROJECT_ID a positive integer\n");
        free(m);
        return 2;
    }
    m->agents = (uint32_t)agents;
    m->project = (int64_t)project;
    const char *token = getenv("LG_AGENT_TOKEN");
    if (m->agents > 0 && (!token || !token[0] || strlen(token) > 2048)) {
        fprintf(stderr, "loadgen messages: LG_AGENT_TOKEN (a JWT) is needed when LG_AGENTS > 0\n");
        free(m);
        return 2;
    }
    const char *origin = env_or("LG_ORIGIN", "http://localhost");
    snprintf(m->run_id, sizeof m->run_id, "%.24s", env_or("LG_RUN_ID", ""));
    if (!m->run_id[0]) {
        snprintf(m->run_id, sizeof m->run_id, "r%ld", (long)getpid());
    }
    m->pad_len = a->payload_bytes < sizeof m->pad ? a->payload_bytes : (uint32_t)sizeof m->pad;
    for (uint32_t k = 0; k < m->pad_len; k++) {
        m->pad[k] = (char)('a' + k % 26);
    }
    lg_hist_init(&m->ack_lat);
    lg_hist_init(&m->nm_lat);
    lg_hist_init(&m->nm_cross);
    lg_hist_init(&m->nm_local);
    lg_hist_init(&m->login_lat);
    m->slots = calloc((size_t)a->clients * a->window, sizeof *m->slots);
    m->inflight = calloc(a->clients, sizeof *m->inflight);
    m->seq = calloc(a->clients, sizeof *m->seq);
    m->identified = calloc(a->clients, 1);
    /* The core writes `GET <path>?EIO=4&transport=websocket HTTP/1.1`: the visitor's query and
     * Origin header go into the path, and the core's query lands in a header nobody reads. */
    char vpath[512], auth[2200];
    int pn = snprintf(vpath, sizeof vpath,
                      "%s?EIO=4&transport=websocket&projectId=%" PRId64
                      " HTTP/1.1\r\nOrigin: %s\r\nX-Bench: /",
                      a->conn.path, m->project, origin);
    int an = snprintf(auth, sizeof auth, "{\"token\":\"%s\"}", token ? token : "");
    if (!m->slots || !m->inflight || !m->seq || !m->identified || pn <= 0 ||
        (size_t)pn >= sizeof vpath || an <= 0 || (size_t)an >= sizeof auth ||
        strpbrk(origin, "\r\n")) {
        fprintf(stderr, "loadgen messages: out of memory or bad LG_ORIGIN\n");
        goto out_free;
    }
    lg_options_t vo = a->conn, ao = a->conn;
    vo.path = vpath;
    vo.auth = NULL;
    ao.auth = auth;
    ao.seed = a->conn.seed + 7;
    ao.port = a->agent_port ? a->agent_port : a->conn.port;
    m->n_vis = a->n_visitor_ports ? a->n_visitor_ports : 1;
    for (uint32_t k = 0; k < m->n_vis; k++) {
        m->vis[k] = (vset_t){.m = m, .k = k,
                             .port = a->n_visitor_ports ? a->visitor_ports[k] : a->conn.port};
    }
    lg_handlers_t vh = {.on_ready = vis_ready, .on_ack = vis_ack, .on_close = vis_close};
    lg_handlers_t ah = {.on_ready = agt_ready, .on_ack = agt_ack, .on_event = agt_event};
    uint64_t budget_ms = (uint64_t)a->deadline_s * 1000u;
    if (m->agents > 0) {
        m->agt = lg_new(loop, &ao, m->agents, &ah, m);
        if (!m->agt || lg_open(m->agt, m->agents, a->concurrency) != 0 ||
            lg_run_until(m->agt, agents_joined, m, budget_ms) != 0 || m->n_joined != m->agents) {
            fprintf(stderr, "loadgen messages: %u/%u agents joined the room (%s)\n", m->n_joined,
                    m->agents, m->agt ? lg_first_error(m->agt) : "no memory");
            goto out_lg;
        }
    }
    bool vis_ok = true;
    for (uint32_t k = 0; k < m->n_vis && vis_ok; k++) {
        /* set k holds visitors k, k + K, k + 2K, ... */
        uint32_t n = (a->clients - k + m->n_vis - 1) / m->n_vis;
        vo.port = m->vis[k].port;
        vo.seed = a->conn.seed + 101u * k;
        m->vis[k].lg = n ? lg_new(loop, &vo, n, &vh, &m->vis[k]) : NULL;
        vis_ok = n > 0 && m->vis[k].lg && lg_open(m->vis[k].lg, n, a->concurrency) == 0;
    }
    lg_t *vl = m->vis[0].lg; /* runs the shared loop */
    if (!vis_ok || lg_run_until(vl, visitors_identified, m, budget_ms) != 0 ||
        m->n_identified != a->clients) {
        fprintf(stderr, "loadgen messages: %u/%u visitors identified (%s)\n", m->n_identified,
                a->clients, vis_ok ? vis_first_error(m) : "no memory or more ports than visitors");
        lg_json_t j;
        lg_json_begin(&j);
        lg_json_str(&j, "scenario", "messages");
        lg_json_str(&j, "label", a->label);
        lg_json_int(&j, "identified", m->n_identified);
        lg_json_str(&j, "error", "visitors did not identify");
        lg_json_str(&j, "first_error", vis_first_error(m));
        lg_json_end(&j);
        goto out_lg;
    }

    m->sending = true;
    if (a->rate > 0) {
        m->pace_start = uv_hrtime();
        uv_timer_init(loop, &m->pace);
        m->pace.data = m;
        uv_timer_start(&m->pace, on_pace, 1, 1);
    } else {
        for (uint32_t i = 0; i < a->clients; i++) {
            lg_conn_t *c = vis_conn(m, i);
            for (uint32_t k = 0; k < a->window && lg_conn_ready(c); k++) {
                send_one(m, c, i);
            }
        }
    }
    lg_run_for(vl, a->warmup_ms);
    uint64_t behind0 = m->behind;
    /* the server processes: --server-pid and --server-pids */
    pid_t spids[LG_MAX_PIDS + 1];
    uint32_t n_spids = 0;
    if (a->server_pid) {
        spids[n_spids++] = a->server_pid;
    }
    for (uint32_t k = 0; k < a->n_server_pids; k++) {
        spids[n_spids++] = a->server_pids[k];
    }
    long cpu0 = n_spids ? pids_cpu_ms(spids, n_spids, false) : -1, self0 = lg_self_cpu_ms();
    long bcpu0 = a->n_backend_pids ? pids_cpu_ms(a->backend_pids, a->n_backend_pids, true) : -1;
    long bcpu_each[LG_MAX_PIDS]; /* per backend process tree, for the breakdown */
    for (uint32_t k = 0; k < a->n_backend_pids; k++) {
        bcpu_each[k] = lg_proc_tree_cpu_ms(a->backend_pids[k]);
    }
    long busy0 = -1, busy1 = -1, softirq = 0;
    (void)lg_machine_cpu_ms(&busy0, &softirq);
    uint64_t logins_per_s = 0;
    (void)pl_slice_to_u64(pl_slice_cstr(env_or("LG_LOGINS_PER_S", "0")), 1000, &logins_per_s);
    if (logins_per_s > 0) {
        snprintf(m->login_body, sizeof m->login_body, "{\"email\":\"%.80s\",\"password\":\"%.80s\"}",
                 env_or("LG_LOGIN_EMAIL", "agent@bench.test"),
                 env_or("LG_LOGIN_PASSWORD", "bench-password-1"));
        for (size_t k = 0; k < sizeof m->login_http / sizeof m->login_http[0]; k++) {
            m->login_http[k] = lg_http_new(loop, a->conn.host, a->conn.port, login_done, m);
        }
        uv_timer_init(loop, &m->login_timer);
        m->login_timer.data = m;
        uv_timer_start(&m->login_timer, on_login_tick, 1000 / logins_per_s, 1000 / logins_per_s);
    }
    uint64_t t0 = uv_hrtime();
    m->measuring = true;
    lg_run_for(vl, (uint64_t)a->seconds * 1000u);
    m->measuring = false;
    m->sending = false;
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    long cpu1 = n_spids ? pids_cpu_ms(spids, n_spids, false) : -1, self1 = lg_self_cpu_ms();
    long bcpu1 = a->n_backend_pids ? pids_cpu_ms(a->backend_pids, a->n_backend_pids, true) : -1;
    char each[LG_MAX_PIDS * 12 + 1] = ""; /* "pct,pct,..." in --backend-pids order */
    for (uint32_t k = 0, off = 0; k < a->n_backend_pids; k++) {
        long e1 = lg_proc_tree_cpu_ms(a->backend_pids[k]);
        double pct = bcpu_each[k] >= 0 && e1 >= 0 && secs > 0
                         ? (double)(e1 - bcpu_each[k]) / 10.0 / secs : -1;
        int w = snprintf(each + off, sizeof each - off, "%s%.1f", k ? "," : "", pct);
        off += w > 0 && (size_t)w < sizeof each - off ? (uint32_t)w : 0;
    }
    (void)lg_machine_cpu_ms(&busy1, &softirq);
    long rss = n_spids ? pids_rss_kib(spids, n_spids) : -1;
    if (a->rate > 0) {
        uv_close((uv_handle_t *)&m->pace, NULL);
    }
    if (logins_per_s > 0) {
        uv_close((uv_handle_t *)&m->login_timer, NULL);
    }
    int drain_rc = lg_run_until(vl, drained, m, 10000);
    uint64_t behind = m->behind - behind0;
    double rate = secs > 0 ? (double)m->acked / secs : 0;
    double server_cpu = cpu0 >= 0 && cpu1 >= 0 ? (double)(cpu1 - cpu0) : -1;
    double backend_cpu = bcpu0 >= 0 && bcpu1 >= 0 ? (double)(bcpu1 - bcpu0) : -1;
    /* the machine's busy time not taken by the servers, the backends or this process */
    double other_cpu = -1;
    if (busy0 >= 0 && busy1 >= 0 && server_cpu >= 0) {
        other_cpu = (double)(busy1 - busy0) - server_cpu - (double)(self1 - self0) -
                    (backend_cpu > 0 ? backend_cpu : 0);
    }
    uint64_t nm_expected = m->acked_total * m->agents;
    uint32_t dropped = m->agt ? lg_counts(m->agt)->dropped : 0;
    for (uint32_t k = 0; k < m->n_vis; k++) {
        dropped += lg_counts(m->vis[k].lg)->dropped;
    }
    char ports[LG_MAX_PORTS * 6 + 1] = "";
    for (uint32_t k = 0, off = 0; k < m->n_vis; k++) {
        int w = snprintf(ports + off, sizeof ports - off, "%s%u", k ? "," : "", m->vis[k].port);
        off += w > 0 ? (uint32_t)w : 0;
    }

    lg_json_t j;
    lg_json_begin(&j);
    lg_json_str(&j, "scenario", "messages");
    lg_json_str(&j, "label", a->label);
    lg_json_int(&j, "visitors", a->clients);
    lg_json_int(&j, "agents", m->agents);
    lg_json_int(&j, "window", a->window);
    lg_json_int(&j, "rate", a->rate);
    lg_json_int(&j, "pad_bytes", m->pad_len);
    lg_json_int(&j, "behind", (int64_t)behind);
    lg_json_num(&j, "seconds", secs);
    lg_json_int(&j, "acked", (int64_t)m->acked);
    lg_json_num(&j, "acked_per_s", rate);
    lg_json_num(&j, "ack_p50_us", (double)lg_hist_quantile(&m->ack_lat, 0.50) / 1e3);
    lg_json_num(&j, "ack_p90_us", (double)lg_hist_quantile(&m->ack_lat, 0.90) / 1e3);
    lg_json_num(&j, "ack_p99_us", (double)lg_hist_quantile(&m->ack_lat, 0.99) / 1e3);
    lg_json_num(&j, "ack_max_us", (double)m->ack_lat.max / 1e3);
    lg_json_int(&j, "newmsg", (int64_t)m->newmsg);
    lg_json_num(&j, "newmsg_p50_us", (double)lg_hist_quantile(&m->nm_lat, 0.50) / 1e3);
    lg_json_num(&j, "newmsg_p99_us", (double)lg_hist_quantile(&m->nm_lat, 0.99) / 1e3);
    lg_json_num(&j, "newmsg_max_us", (double)m->nm_lat.max / 1e3);
    lg_json_str(&j, "visitor_ports", ports);
    lg_json_int(&j, "agent_port", ao.port);
    lg_json_int(&j, "server_processes", n_spids);
    lg_json_int(&j, "newmsg_cross", (int64_t)m->nm_cross.total);
    lg_json_num(&j, "newmsg_cross_p50_us", (double)lg_hist_quantile(&m->nm_cross, 0.50) / 1e3);
    lg_json_num(&j, "newmsg_cross_p99_us", (double)lg_hist_quantile(&m->nm_cross, 0.99) / 1e3);
    lg_json_num(&j, "newmsg_local_p50_us", (double)lg_hist_quantile(&m->nm_local, 0.50) / 1e3);
    lg_json_num(&j, "newmsg_local_p99_us", (double)lg_hist_quantile(&m->nm_local, 0.99) / 1e3);
    lg_json_int(&j, "sent_total", (int64_t)m->sent_total);
    lg_json_int(&j, "acked_total", (int64_t)m->acked_total);
    lg_json_int(&j, "newmsg_total", (int64_t)m->newmsg_total);
    lg_json_int(&j, "newmsg_expected", (int64_t)nm_expected);
    lg_json_int(&j, "newmsg_bad", (int64_t)m->newmsg_bad);
    lg_json_int(&j, "refused", (int64_t)m->refused);
    lg_json_int(&j, "mismatches", (int64_t)m->mismatches);
    lg_json_int(&j, "send_errors", (int64_t)m->send_errors);
    lg_json_int(&j, "dropped", dropped);
    lg_json_int(&j, "undrained", (int64_t)m->in_flight);
    lg_json_num(&j, "server_cpu_pct", server_cpu >= 0 ? server_cpu / 10.0 / secs : -1);
    lg_json_num(&j, "client_cpu_pct", (double)(self1 - self0) / 10.0 / secs);
    lg_json_num(&j, "server_cpu_us_per_msg",
                server_cpu >= 0 && m->acked ? server_cpu * 1e3 / (double)m->acked : -1);
    lg_json_int(&j, "server_rss_kib", rss);
    lg_json_num(&j, "backend_cpu_pct", backend_cpu >= 0 ? backend_cpu / 10.0 / secs : -1);
    lg_json_num(&j, "other_cpu_pct", other_cpu >= 0 ? other_cpu / 10.0 / secs : -1);
    lg_json_str(&j, "backend_cpu_pct_each", each);
    lg_json_num(&j, "backend_cpu_us_per_msg",
                backend_cpu >= 0 && m->acked ? backend_cpu * 1e3 / (double)m->acked : -1);
    lg_json_int(&j, "logins_per_s", (int64_t)logins_per_s);
    lg_json_int(&j, "logins", (int64_t)m->logins);
    lg_json_int(&j, "login_errors", (int64_t)m->login_errors);
    lg_json_int(&j, "login_skipped", (int64_t)m->login_skipped);
    lg_json_int(&j, "login_bad_status", m->login_bad_status);
    lg_json_num(&j, "login_p50_us", (double)lg_hist_quantile(&m->login_lat, 0.50) / 1e3);
    lg_json_num(&j, "login_p99_us", (double)lg_hist_quantile(&m->login_lat, 0.99) / 1e3);
    lg_json_str(&j, "first_error", vis_first_error(m));
    lg_json_end(&j);
    fprintf(stderr, "%s messages: %u visitors x window %u, %u agents, rate %u: %.0f acked/s; ",
            a->label, a->clients, a->window, m->agents, a->rate, rate);
    print_pct("ack", &m->ack_lat);
    fprintf(stderr, "; ");
    print_pct("newMessage", &m->nm_lat);
    if (m->nm_cross.total > 0 && m->nm_local.total > 0) {
        fprintf(stderr, " (");
        print_pct("cross-node", &m->nm_cross);
        fprintf(stderr, ")");
    }
    fprintf(stderr,
            "; acked in total %" PRIu64 " (sent %" PRIu64 "), newMessage %" PRIu64 "/%" PRIu64
            ", %" PRIu64 " refused, %" PRIu64 " mismatches, %u dropped\n",
            m->acked_total, m->sent_total, m->newmsg_total, nm_expected, m->refused,
            m->mismatches, dropped);
    if (behind) {
        fprintf(stderr, "%s messages: %" PRIu64 " messages due at --rate could not be sent\n",
                a->label, behind);
    }
    if (m->acked > 0 && m->mismatches == 0 && m->send_errors == 0 && m->refused == 0 &&
        dropped == 0 && drain_rc == 0 && m->newmsg_total == nm_expected && m->newmsg_bad == 0 &&
        m->login_errors == 0) {
        exit_code = 0;
    }
out_lg:
    for (size_t k = 0; k < sizeof m->login_http / sizeof m->login_http[0]; k++) {
        if (m->login_http[k]) {
            lg_http_close(m->login_http[k]);
        }
    }
    if (m->vis[0].lg) {
        lg_run_for(m->vis[0].lg, 20);
    }
    for (uint32_t k = 0; k < m->n_vis; k++) {
        if (m->vis[k].lg) {
            lg_free(m->vis[k].lg);
        }
    }
    if (m->agt) {
        lg_free(m->agt);
    }
out_free:
    free(m->slots);
    free(m->inflight);
    free(m->seq);
    free(m->identified);
    free(m);
    return exit_code;
}

const lg_scenario_t lg_scn_messages = {
    .name = "messages",
    .help = "chat flow: --clients visitors send sendMessage (--window in flight or --rate), "
            "LG_AGENTS agents get newMessage; acked/s, ack and newMessage latency",
    .run = messages_run,
};
