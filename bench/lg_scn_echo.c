/* The `echo` and `ack` scenarios: C clients keep `window` messages in flight each and send a new
 * one as each answer arrives (closed loop), or, with --rate, send at a fixed total rate paced
 * every millisecond over the clients in turn, each still holding at most `window` in flight
 * (open loop: a message that finds every window full is counted as `behind`, not sent). For a
 * warm-up and then a measured period; reports answered messages per second and the round-trip
 * latency percentiles from a histogram.
 *   echo: sends 42["message","<payload>"] and waits for 42["message-back","<payload>"];
 *   ack:  sends 42<id>["message-with-ack","<payload>"] and waits for 43<id>["<payload>"].
 * Answers come back in order on one Socket.IO connection, so each client keeps a ring of the
 * send times of its messages in flight; every answer is compared byte for byte with what the
 * server must send back (a mismatch is counted and fails the run). */
#include "lg_scn.h"

#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const lg_args_t *a;   /* the command line */
    lg_t *lg;             /* the clients */
    uv_timer_t pace;      /* with --rate: sends what is due every millisecond */
    uint64_t pace_start;  /* uv_hrtime when pacing began */
    uint64_t scheduled;   /* messages due since pace_start (sent or behind) */
    uint64_t behind;      /* due messages skipped because every window was full */
    uint32_t rr;          /* next client to try when pacing */
    bool ack;             /* ack scenario (else echo) */
    bool sending;         /* answers are followed by a new message */
    bool measuring;       /* answers are counted and their latency recorded */
    pl_buf_t msg;         /* the EVENT arguments sent (JSON array text) */
    pl_buf_t expect;      /* the arguments expected back */
    uint64_t *sent_ns;    /* clients * window send times (uv_hrtime), a ring per client */
    uint32_t *head;       /* per client: ring index of its oldest message in flight */
    uint32_t *inflight;   /* per client: messages in flight */
    uint64_t *seq;        /* per client: messages sent (the next ack id) */
    uint64_t in_flight;   /* sum of inflight */
    uint64_t answers;     /* answers while measuring */
    uint64_t mismatches;  /* answers that were not what was sent, or out of order */
    uint64_t send_errors; /* emits refused by the core */
    lg_hist_t lat;        /* round trips while measuring, ns */
} echo_t;

static void send_one(echo_t *e, lg_conn_t *c) {
    uint32_t i = lg_conn_index(c), w = e->a->window;
    uint32_t slot = (e->head[i] + e->inflight[i]) % w;
    e->sent_ns[(size_t)i * w + slot] = uv_hrtime();
    int64_t ack_id = e->ack ? (int64_t)e->seq[i] : -1;
    if (lg_conn_emit(c, e->msg.data, e->msg.len, ack_id) != 0) {
        e->send_errors++;
        return;
    }
    e->seq[i]++;
    e->inflight[i]++;
    e->in_flight++;
}

/* An answer arrived for c's oldest message in flight; ok tells whether it was the right one. */
static void answered(lg_t *lg, lg_conn_t *c, bool ok) {
    echo_t *e = lg_data(lg);
    uint32_t i = lg_conn_index(c), w = e->a->window;
    if (e->inflight[i] == 0) {
        e->mismatches++; /* an answer nobody asked for */
        return;
    }
    if (!ok) {
        e->mismatches++;
    }
    uint64_t sent = e->sent_ns[(size_t)i * w + e->head[i]];
    e->head[i] = (e->head[i] + 1) % w;
    e->inflight[i]--;
    e->in_flight--;
    if (e->measuring) {
        lg_hist_record(&e->lat, uv_hrtime() - sent);
        e->answers++;
    }
    if (e->sending && e->a->rate == 0) {
        send_one(e, c);
    }
}

/* Open loop: sends the messages due by now, each to the next client with room in its window. */
static void on_pace(uv_timer_t *t) {
    echo_t *e = t->data;
    if (!e->sending) {
        return;
    }
    uint32_t n = e->a->clients, w = e->a->window;
    uint64_t due = (uv_hrtime() - e->pace_start) / 1000u * e->a->rate / 1000000u; /* no overflow */
    uint32_t misses = 0;
    while (e->scheduled < due) {
        lg_conn_t *c = lg_conn_at(e->lg, e->rr);
        uint32_t i = e->rr;
        e->rr = e->rr + 1 == n ? 0 : e->rr + 1;
        if (lg_conn_ready(c) && e->inflight[i] < w) {
            send_one(e, c);
            e->scheduled++;
            misses = 0;
        } else if (++misses == n) {
            e->behind += due - e->scheduled;
            e->scheduled = due;
        }
    }
}

static void on_event(lg_t *lg, lg_conn_t *c, const char *args, size_t len, int64_t ack_id) {
    echo_t *e = lg_data(lg);
    static const char back[] = "[\"message-back\"";
    if (e->ack || len < sizeof(back) - 1 || memcmp(args, back, sizeof(back) - 1) != 0) {
        return; /* `auth` on connection, or anything else the server says */
    }
    answered(lg, c, len == e->expect.len && memcmp(args, e->expect.data, len) == 0);
}

static void on_ack(lg_t *lg, lg_conn_t *c, uint64_t ack_id, const char *args, size_t len) {
    echo_t *e = lg_data(lg);
    uint32_t i = lg_conn_index(c);
    if (!e->ack) {
        e->mismatches++;
        return;
    }
    uint64_t want = e->seq[i] - e->inflight[i];
    answered(lg, c,
             ack_id == want && len == e->expect.len && memcmp(args, e->expect.data, len) == 0);
}

static void on_close(lg_t *lg, lg_conn_t *c, bool was_ready, const char *reason) {
    echo_t *e = lg_data(lg);
    uint32_t i = lg_conn_index(c);
    e->in_flight -= e->inflight[i];
    e->inflight[i] = 0;
}

static bool settled(lg_t *lg, void *arg) {
    return lg_settled(lg);
}

static bool drained(lg_t *lg, void *arg) {
    echo_t *e = arg;
    return e->in_flight == 0;
}

/* Builds the arguments to send and to expect back for a payload of n characters. */
static int build_messages(echo_t *e, uint32_t n) {
    char *payload = malloc((size_t)n + 1);
    if (!payload) {
        return PL_ENOMEM;
    }
    for (uint32_t k = 0; k < n; k++) {
        payload[k] = (char)('a' + k % 26);
    }
    payload[n] = '\0';
    pl_buf_init(&e->msg, 0);
    pl_buf_init(&e->expect, 0);
    int rc;
    if (e->ack) {
        rc = pl_buf_printf(&e->msg, "[\"message-with-ack\",\"%s\"]", payload);
        if (rc == 0) {
            rc = pl_buf_printf(&e->expect, "[\"%s\"]", payload);
        }
    } else {
        rc = pl_buf_printf(&e->msg, "[\"message\",\"%s\"]", payload);
        if (rc == 0) {
            rc = pl_buf_printf(&e->expect, "[\"message-back\",\"%s\"]", payload);
        }
    }
    free(payload);
    return rc;
}

static int run(uv_loop_t *loop, const lg_args_t *a, bool ack) {
    const char *name = ack ? "ack" : "echo";
    if (a->window == 0 || a->seconds == 0 || a->clients == 0) {
        fprintf(stderr, "loadgen %s: --clients, --window and --seconds must be > 0\n", name);
        return 2;
    }
    int exit_code = 1;
    echo_t e = {.a = a, .ack = ack};
    lg_hist_init(&e.lat);
    e.sent_ns = calloc((size_t)a->clients * a->window, sizeof(*e.sent_ns));
    e.head = calloc(a->clients, sizeof(*e.head));
    e.inflight = calloc(a->clients, sizeof(*e.inflight));
    e.seq = calloc(a->clients, sizeof(*e.seq));
    if (!e.sent_ns || !e.head || !e.inflight || !e.seq || build_messages(&e, a->payload_bytes)) {
        fprintf(stderr, "loadgen %s: out of memory\n", name);
        goto out_free;
    }
    lg_handlers_t h = {.on_event = on_event, .on_ack = on_ack, .on_close = on_close};
    lg_t *lg = lg_new(loop, &a->conn, a->clients, &h, &e);
    if (!lg) {
        exit_code = 2;
        goto out_free;
    }
    const lg_counts_t *n = lg_counts(lg);
    uint64_t budget_ms = (uint64_t)a->deadline_s * 1000u;
    if (lg_open(lg, a->clients, a->concurrency) != 0 ||
        lg_run_until(lg, settled, NULL, budget_ms) != 0 || n->ready == 0) {
        fprintf(stderr, "loadgen %s: %u/%u clients connected (%s)\n", name, n->ready, a->clients,
                lg_first_error(lg));
        lg_json_t j;
        lg_json_begin(&j);
        lg_json_str(&j, "scenario", name);
        lg_json_str(&j, "label", a->label);
        lg_json_int(&j, "clients", a->clients);
        lg_json_int(&j, "ready", n->ready);
        lg_json_int(&j, "failed", n->failed);
        lg_json_str(&j, "error", "clients did not connect");
        lg_json_str(&j, "first_error", lg_first_error(lg));
        lg_json_end(&j);
        goto out_lg;
    }
    uint32_t ready = n->ready;

    e.lg = lg;
    e.sending = true;
    if (a->rate > 0) {
        e.pace_start = uv_hrtime();
        uv_timer_init(loop, &e.pace);
        e.pace.data = &e;
        uv_timer_start(&e.pace, on_pace, 1, 1);
    } else {
        for (uint32_t i = 0; i < a->clients; i++) {
            lg_conn_t *c = lg_conn_at(lg, i);
            for (uint32_t k = 0; k < a->window && lg_conn_ready(c); k++) {
                send_one(&e, c);
            }
        }
    }
    lg_run_for(lg, a->warmup_ms);
    uint64_t behind0 = e.behind;

    pid_t pid = a->server_pid;
    long cpu0 = pid ? lg_proc_cpu_ms(pid) : -1;
    long self0 = lg_self_cpu_ms();
    long busy0 = -1, sirq0 = -1, busy1 = -1, sirq1 = -1;
    int mrc = lg_machine_cpu_ms(&busy0, &sirq0);
    uint64_t t0 = uv_hrtime();
    e.measuring = true;
    lg_run_for(lg, (uint64_t)a->seconds * 1000u);
    e.measuring = false;
    e.sending = false;
    uint64_t behind = e.behind - behind0;
    if (a->rate > 0) {
        uv_close((uv_handle_t *)&e.pace, NULL);
    }
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    long cpu1 = pid ? lg_proc_cpu_ms(pid) : -1;
    long self1 = lg_self_cpu_ms();
    mrc |= lg_machine_cpu_ms(&busy1, &sirq1);
    long rss = pid ? lg_proc_rss_kib(pid) : -1;
    int drain_rc = lg_run_until(lg, drained, &e, 5000);

    double rate = secs > 0 ? (double)e.answers / secs : 0;
    double server_cpu = cpu0 >= 0 && cpu1 >= 0 ? (double)(cpu1 - cpu0) : -1;
    double client_cpu = (double)(self1 - self0);
    /* Busy time of the machine not charged to the server or the client, in % of one core
     * (other processes, plus loopback delivery charged to nobody; needs the server's pid). */
    double other_cpu =
        server_cpu >= 0 && mrc == 0 ? (double)(busy1 - busy0) - server_cpu - client_cpu : -1;
    lg_json_t j;
    lg_json_begin(&j);
    lg_json_str(&j, "scenario", name);
    lg_json_str(&j, "label", a->label);
    lg_json_str(&j, "nsp", a->conn.nsp);
    lg_json_int(&j, "clients", a->clients);
    lg_json_int(&j, "ready", ready);
    lg_json_int(&j, "window", a->window);
    lg_json_int(&j, "payload_bytes", a->payload_bytes);
    lg_json_int(&j, "rate", a->rate);
    lg_json_int(&j, "behind", (int64_t)behind);
    lg_json_num(&j, "seconds", secs);
    lg_json_int(&j, "messages", (int64_t)e.answers);
    lg_json_num(&j, "msg_per_s", rate);
    lg_json_num(&j, "lat_p50_us", (double)lg_hist_quantile(&e.lat, 0.50) / 1e3);
    lg_json_num(&j, "lat_p90_us", (double)lg_hist_quantile(&e.lat, 0.90) / 1e3);
    lg_json_num(&j, "lat_p99_us", (double)lg_hist_quantile(&e.lat, 0.99) / 1e3);
    lg_json_num(&j, "lat_p999_us", (double)lg_hist_quantile(&e.lat, 0.999) / 1e3);
    lg_json_num(&j, "lat_max_us", (double)e.lat.max / 1e3);
    lg_json_num(&j, "lat_mean_us", lg_hist_mean(&e.lat) / 1e3);
    lg_json_int(&j, "mismatches", (int64_t)e.mismatches);
    lg_json_int(&j, "send_errors", (int64_t)e.send_errors);
    lg_json_int(&j, "dropped", n->dropped);
    lg_json_int(&j, "undrained", (int64_t)e.in_flight);
    lg_json_num(&j, "server_cpu_pct", server_cpu >= 0 ? server_cpu / 10.0 / secs : -1);
    lg_json_num(&j, "client_cpu_pct", client_cpu / 10.0 / secs);
    lg_json_num(&j, "other_cpu_pct", other_cpu >= 0 ? other_cpu / 10.0 / secs : -1);
    lg_json_num(&j, "softirq_cpu_pct", mrc == 0 ? (double)(sirq1 - sirq0) / 10.0 / secs : -1);
    lg_json_num(&j, "server_cpu_us_per_msg",
                server_cpu >= 0 && e.answers ? server_cpu * 1e3 / (double)e.answers : -1);
    lg_json_int(&j, "server_rss_kib", rss);
    lg_json_str(&j, "first_error", lg_first_error(lg));
    lg_json_end(&j);

    fprintf(stderr,
            "%s %s: %u clients x window %u, %u-byte payload: %.0f msg/s over %.1f s; round trip "
            "p50 %.0f us, p90 %.0f us, p99 %.0f us, max %.0f us; server CPU %.0f %%, client CPU "
            "%.0f %%; %llu mismatches, %u dropped\n",
            a->label, name, ready, a->window, a->payload_bytes, rate, secs,
            (double)lg_hist_quantile(&e.lat, 0.50) / 1e3,
            (double)lg_hist_quantile(&e.lat, 0.90) / 1e3,
            (double)lg_hist_quantile(&e.lat, 0.99) / 1e3, (double)e.lat.max / 1e3,
            server_cpu >= 0 ? server_cpu / 10.0 / secs : -1, client_cpu / 10.0 / secs,
            (unsigned long long)e.mismatches, n->dropped);
    if (lg_first_error(lg)[0]) {
        fprintf(stderr, "%s %s: first error: %s\n", a->label, name, lg_first_error(lg));
    }
    if (behind) {
        fprintf(stderr,
                "%s %s: %llu messages due at --rate %u could not be sent: every "
                "client's window was full (the server is slower than the rate)\n",
                a->label, name, (unsigned long long)behind, a->rate);
    }
    if (ready == a->clients && e.answers > 0 && e.mismatches == 0 && e.send_errors == 0 &&
        n->dropped == 0 && drain_rc == 0) {
        exit_code = 0;
    }
out_lg:
    lg_free(lg);
out_free:
    pl_buf_dispose(&e.msg);
    pl_buf_dispose(&e.expect);
    free(e.sent_ns);
    free(e.head);
    free(e.inflight);
    free(e.seq);
    return exit_code;
}

static int echo_run(uv_loop_t *loop, const lg_args_t *a) {
    return run(loop, a, false);
}

static int ack_run(uv_loop_t *loop, const lg_args_t *a) {
    return run(loop, a, true);
}

const lg_scenario_t lg_scn_echo = {
    .name = "echo",
    .help = "--clients each keep --window `message` events in flight for --seconds; "
            "report msg/s and round-trip percentiles",
    .run = echo_run,
};

const lg_scenario_t lg_scn_ack = {
    .name = "ack",
    .help = "like echo with `message-with-ack` and its acknowledgement",
    .run = ack_run,
};
