/* The `connect` scenario: opens N Socket.IO clients at a bounded concurrency, measures the
 * connection rate and the server's resident memory per connected client, keeps them idle for a
 * while (answering pings) and measures the memory again. Memory is VmRSS of the server process,
 * which does not include the kernel's socket buffers; /proc/net/sockstat's TCP page count is
 * reported next to it for context. */
#include "lg_scn.h"

#include <stdio.h>
#include <unistd.h>

static bool settled(lg_t *lg, void *arg) {
    return lg_settled(lg);
}

/* Bytes of RSS growth per client, or -1 without readings. */
static double per_client(long before_kib, long after_kib, uint32_t n) {
    if (before_kib < 0 || after_kib < 0 || n == 0) {
        return -1;
    }
    return (double)(after_kib - before_kib) * 1024.0 / (double)n;
}

static int connect_run(uv_loop_t *loop, const lg_args_t *a) {
    lg_handlers_t h = {0};
    lg_t *lg = lg_new(loop, &a->conn, a->clients, &h, NULL);
    if (!lg) {
        return 2;
    }
    pid_t pid = a->server_pid;
    long rss0 = pid ? lg_proc_rss_kib(pid) : -1;
    long cpu0 = pid ? lg_proc_cpu_ms(pid) : -1;
    long self0 = lg_self_cpu_ms();
    long busy0 = -1, sirq0 = -1, busy1 = -1, sirq1 = -1;
    int mrc = lg_machine_cpu_ms(&busy0, &sirq0);
    lg_sockstat_t ss0 = {0}, ss1 = {0};
    (void)lg_sockstat_read(&ss0);

    uint64_t t0 = uv_hrtime();
    int rc = lg_open(lg, a->clients, a->concurrency);
    if (rc == 0) {
        rc = lg_run_until(lg, settled, NULL, (uint64_t)a->deadline_s * 1000u);
    }
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    long rss1 = pid ? lg_proc_rss_kib(pid) : -1;
    long cpu1 = pid ? lg_proc_cpu_ms(pid) : -1;
    long self1 = lg_self_cpu_ms();
    mrc |= lg_machine_cpu_ms(&busy1, &sirq1);
    const lg_counts_t *n = lg_counts(lg);
    uint32_t ready = n->ready;

    if (ready > 0) {
        lg_run_for(lg, a->idle_ms);
    }
    long rss2 = pid ? lg_proc_rss_kib(pid) : -1;
    long own_rss = lg_proc_rss_kib(getpid());
    (void)lg_sockstat_read(&ss1);
    uint32_t still_open = n->open;

    const lg_hist_t *ch = lg_connect_hist(lg);
    double rate = secs > 0 ? (double)ready / secs : 0;
    double bpc = per_client(rss0, rss1, ready);
    double bpc_idle = per_client(rss0, rss2, ready);

    lg_json_t j;
    lg_json_begin(&j);
    lg_json_str(&j, "scenario", "connect");
    lg_json_str(&j, "label", a->label);
    lg_json_str(&j, "nsp", a->conn.nsp);
    lg_json_int(&j, "clients", a->clients);
    lg_json_int(&j, "concurrency", a->concurrency);
    lg_json_int(&j, "ready", ready);
    lg_json_int(&j, "failed", n->failed);
    lg_json_int(&j, "dropped", n->dropped);
    lg_json_int(&j, "open_after_idle", still_open);
    lg_json_num(&j, "connect_s", secs);
    lg_json_num(&j, "conn_per_s", rate);
    lg_json_num(&j, "connect_p50_ms", (double)lg_hist_quantile(ch, 0.50) / 1e6);
    lg_json_num(&j, "connect_p99_ms", (double)lg_hist_quantile(ch, 0.99) / 1e6);
    lg_json_num(&j, "connect_max_ms", (double)ch->max / 1e6);
    lg_json_int(&j, "rss_before_kib", rss0);
    lg_json_int(&j, "rss_after_kib", rss1);
    lg_json_int(&j, "rss_idle_kib", rss2);
    lg_json_num(&j, "bytes_per_client", bpc);
    lg_json_num(&j, "bytes_per_client_idle", bpc_idle);
    lg_json_int(&j, "idle_ms", a->idle_ms);
    lg_json_int(&j, "server_cpu_ms", cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1);
    lg_json_int(&j, "client_cpu_ms", self1 - self0);
    /* CPU the rest of the machine used while connecting, in % of one core. */
    lg_json_num(&j, "other_cpu_pct",
                cpu0 >= 0 && cpu1 >= 0 && mrc == 0 && secs > 0
                    ? (double)((busy1 - busy0) - (cpu1 - cpu0) - (self1 - self0)) / 10.0 / secs
                    : -1);
    lg_json_int(&j, "client_rss_kib", own_rss);
    lg_json_int(&j, "kernel_tcp_mem_kib_delta", (ss1.mem_pages - ss0.mem_pages) * 4);
    lg_json_int(&j, "pings_answered", (int64_t)n->pings);
    lg_json_str(&j, "first_error", lg_first_error(lg));
    lg_json_end(&j);

    fprintf(stderr,
            "%s connect: %u/%u clients ready in %.2f s (%.0f conn/s, p50 %.1f ms, p99 %.1f ms), "
            "%u failed",
            a->label, ready, a->clients, secs, rate, (double)lg_hist_quantile(ch, 0.5) / 1e6,
            (double)lg_hist_quantile(ch, 0.99) / 1e6, n->failed);
    if (bpc >= 0) {
        fprintf(stderr, "; server RSS %+.1f MiB = %.0f B/client, after %u ms idle %.0f B/client",
                (double)(rss1 - rss0) / 1024.0, bpc, a->idle_ms, bpc_idle);
    }
    fprintf(stderr, "; %u still open after idling\n", still_open);
    if (lg_first_error(lg)[0]) {
        fprintf(stderr, "%s connect: first error: %s\n", a->label, lg_first_error(lg));
    }
    int exit_code = (rc == 0 && ready == a->clients && still_open == ready) ? 0 : 1;
    lg_free(lg);
    return exit_code;
}

const lg_scenario_t lg_scn_connect = {
    .name = "connect",
    .help = "open --clients at --concurrency, report conn/s and server RSS per client, idle "
            "--idle-ms, report again",
    .run = connect_run,
};
