/* loadgen: the benchmark's load client (see bench/README.md). Parses the command line, raises
 * the open-files limit to its hard maximum, arms the hard deadline and runs one scenario:
 *
 *   loadgen <connect|echo|ack> --port N [options]     one JSON result line on stdout
 *   loadgen selftest                                  checks of the codec and histogram
 *
 * The deadline is an alarm: when it rings the process prints a JSON line with an error and
 * exits with status 3, whatever the loop is doing. */
#include "lg_scn.h"

#include "core/log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static const lg_scenario_t *const scenarios[] = {&lg_scn_connect, &lg_scn_echo, &lg_scn_ack,
                                                   &lg_scn_messages, &lg_scn_api_replies,
                                                   &lg_scn_api_inbox};

/* The line written when the deadline passes; filled before the alarm is armed. */
static char deadline_line[256];
static size_t deadline_len;

static void on_alarm(int sig) {
    ssize_t w = write(STDOUT_FILENO, deadline_line, deadline_len);
    (void)w;
    _exit(3);
}

static void usage(FILE *f) {
    fprintf(f, "usage: loadgen <scenario> --port N [options]\n       loadgen selftest\n"
               "scenarios:\n");
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
        fprintf(f, "  %-8s %s\n", scenarios[i]->name, scenarios[i]->help);
    }
    fprintf(f, "options (defaults in brackets):\n"
               "  --host A              server IPv4 address [127.0.0.1]\n"
               "  --port N              server port (required, unless --visitor-ports)\n"
               "  --path P              Engine.IO path [/socket.io/]\n"
               "  --nsp NSP             Socket.IO namespace [/]\n"
               "  --auth JSON           auth object sent with CONNECT [none]\n"
               "  --src-addrs K         source addresses 127.0.0.1..127.0.0.K, 0 = kernel's [9]\n"
               "  --clients N           clients [1000]\n"
               "  --concurrency N       handshakes in progress at once [256]\n"
               "  --handshake-timeout-ms N  per connection [15000]\n"
               "  --idle-ms N           connect: idle time before the second reading [3000]\n"
               "  --seconds N           echo/ack: measured time [10]\n"
               "  --warmup-ms N         echo/ack: traffic before measuring [1000]\n"
               "  --window N            echo/ack: messages in flight per client [1]\n"
               "  --payload-bytes N     echo/ack: string argument length [32]\n"
               "  --rate N              echo/ack: messages/s in total, paced (open loop); 0 sends\n"
               "                        the next message when an answer arrives [0]\n"
               "  --server-pid PID      read the server's RSS and CPU from /proc [none]\n"
               "  --label NAME          server name in the results [server]\n"
               "  --deadline-s N        abort the whole run after N seconds [300]\n"
               "  --seed N              PRNG seed for masking and handshake keys [24301]\n"
               "scale-out (messages):\n"
               "  --visitor-ports A,B   spread the visitors over these ports in turn (visitor i\n"
               "                        on the (i mod K)-th) [--port]\n"
               "  --agent-port N        the agents' port [--port]; newMessage latency is also\n"
               "                        reported apart for senders on another port (cross-node)\n"
               "  --server-pids P,Q     more server processes (nodes, workers): their CPU and\n"
               "                        RSS are added to --server-pid's\n"
               "  --backend-pids P,Q    PostgreSQL/Redis processes: their CPU, with their\n"
               "                        children's (connection processes), is reported apart\n");
}

/* Parses a decimal in [lo, hi] into *out; false (after a message) otherwise. */
static bool parse_u32(const char *flag, const char *s, uint32_t lo, uint32_t hi, uint32_t *out) {
    uint64_t v;
    if (!s || !pl_slice_to_u64(pl_slice_cstr(s), hi, &v) || v < lo) {
        fprintf(stderr, "loadgen: %s wants a number in [%u, %u]\n", flag, lo, hi);
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* Parses a comma-separated list of decimals in [lo, hi] into out[0..max); *n is the count. */
static bool parse_list(const char *flag, const char *s, uint32_t lo, uint32_t hi, uint32_t *out,
                       uint32_t max, uint32_t *n) {
    *n = 0;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        uint64_t v;
        if (*n == max || !pl_slice_to_u64(pl_slice(s, len), hi, &v) ||
            v < lo) {
            fprintf(stderr, "loadgen: %s wants up to %u numbers in [%u, %u], comma-separated\n",
                    flag, max, lo, hi);
            return false;
        }
        out[(*n)++] = (uint32_t)v;
        s += len + (e ? 1 : 0);
    }
    if (*n == 0) {
        fprintf(stderr, "loadgen: %s wants at least one number\n", flag);
        return false;
    }
    return true;
}

static bool parse_args(int argc, char **argv, lg_args_t *a) {
    lg_options_default(&a->conn);
    a->label = "server";
    a->clients = 1000;
    a->concurrency = 256;
    a->idle_ms = 3000;
    a->seconds = 10;
    a->warmup_ms = 1000;
    a->window = 1;
    a->payload_bytes = 32;
    a->deadline_s = 300;
    for (int i = 2; i < argc; i += 2) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint32_t u = 0;
        bool ok = true;
        if (!v) {
            fprintf(stderr, "loadgen: %s needs a value\n", f);
            return false;
        } else if (strcmp(f, "--host") == 0) {
            a->conn.host = v;
        } else if (strcmp(f, "--port") == 0) {
            ok = parse_u32(f, v, 1, 65535, &u);
            a->conn.port = (uint16_t)u;
        } else if (strcmp(f, "--path") == 0) {
            a->conn.path = v;
        } else if (strcmp(f, "--nsp") == 0) {
            a->conn.nsp = v;
        } else if (strcmp(f, "--auth") == 0) {
            a->conn.auth = v;
        } else if (strcmp(f, "--src-addrs") == 0) {
            ok = parse_u32(f, v, 0, 9, &u);
            a->conn.src_addrs = u;
        } else if (strcmp(f, "--clients") == 0) {
            ok = parse_u32(f, v, 1, 1000000, &a->clients);
        } else if (strcmp(f, "--concurrency") == 0) {
            ok = parse_u32(f, v, 1, 100000, &a->concurrency);
        } else if (strcmp(f, "--handshake-timeout-ms") == 0) {
            ok = parse_u32(f, v, 1, 3600000, &a->conn.handshake_timeout_ms);
        } else if (strcmp(f, "--idle-ms") == 0) {
            ok = parse_u32(f, v, 0, 3600000, &a->idle_ms);
        } else if (strcmp(f, "--seconds") == 0) {
            ok = parse_u32(f, v, 1, 3600, &a->seconds);
        } else if (strcmp(f, "--warmup-ms") == 0) {
            ok = parse_u32(f, v, 0, 600000, &a->warmup_ms);
        } else if (strcmp(f, "--window") == 0) {
            ok = parse_u32(f, v, 1, 10000, &a->window);
        } else if (strcmp(f, "--payload-bytes") == 0) {
            ok = parse_u32(f, v, 0, 512 * 1024, &a->payload_bytes);
        } else if (strcmp(f, "--rate") == 0) {
            ok = parse_u32(f, v, 0, 10000000, &a->rate);
        } else if (strcmp(f, "--server-pid") == 0) {
            ok = parse_u32(f, v, 1, 1u << 30, &u);
            a->server_pid = (pid_t)u;
        } else if (strcmp(f, "--label") == 0) {
            a->label = v;
        } else if (strcmp(f, "--deadline-s") == 0) {
            ok = parse_u32(f, v, 1, 86400, &a->deadline_s);
        } else if (strcmp(f, "--visitor-ports") == 0) {
            uint32_t p[LG_MAX_PORTS];
            ok = parse_list(f, v, 1, 65535, p, LG_MAX_PORTS, &a->n_visitor_ports);
            for (uint32_t k = 0; ok && k < a->n_visitor_ports; k++) {
                a->visitor_ports[k] = (uint16_t)p[k];
            }
        } else if (strcmp(f, "--agent-port") == 0) {
            ok = parse_u32(f, v, 1, 65535, &u);
            a->agent_port = (uint16_t)u;
        } else if (strcmp(f, "--server-pids") == 0 || strcmp(f, "--backend-pids") == 0) {
            bool srv = f[2] == 's';
            uint32_t p[LG_MAX_PIDS], n = 0;
            ok = parse_list(f, v, 1, 1u << 30, p, LG_MAX_PIDS, &n);
            for (uint32_t k = 0; ok && k < n; k++) {
                (srv ? a->server_pids : a->backend_pids)[k] = (pid_t)p[k];
            }
            *(srv ? &a->n_server_pids : &a->n_backend_pids) = ok ? n : 0;
        } else if (strcmp(f, "--seed") == 0) {
            ok = parse_u32(f, v, 0, UINT32_MAX, &u);
            a->conn.seed = u;
        } else {
            fprintf(stderr, "loadgen: unknown option %s\n", f);
            return false;
        }
        if (!ok) {
            return false;
        }
    }
    if (a->conn.port == 0 && a->n_visitor_ports > 0) {
        a->conn.port = a->visitor_ports[0];
    }
    if (a->agent_port == 0) {
        a->agent_port = a->conn.port;
    }
    if (a->conn.port == 0) {
        fprintf(stderr, "loadgen: --port is required\n");
        return false;
    }
    if (a->conn.handshake_timeout_ms == 0) {
        a->conn.handshake_timeout_ms = 15000;
    }
    return true;
}

/* Raises the soft open-files limit to the hard one and checks that the clients fit in it
 * (each client is one descriptor; a few more are the loop's own). */
static bool raise_nofile(uint32_t clients) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return false;
    }
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return false;
    }
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)clients + 32 > rl.rlim_cur) {
        fprintf(stderr,
                "loadgen: %u clients do not fit in this process's %llu open files; run several "
                "loadgen processes (see bench/README.md)\n",
                clients, (unsigned long long)rl.rlim_cur);
        return false;
    }
    return true;
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "selftest") == 0) {
        return lg_selftest() == 0 ? 0 : 1;
    }
    const lg_scenario_t *scn = NULL;
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
        if (strcmp(argv[1], scenarios[i]->name) == 0) {
            scn = scenarios[i];
        }
    }
    lg_args_t a = {0};
    if (!scn) {
        fprintf(stderr, "loadgen: unknown scenario %s\n", argv[1]);
        usage(stderr);
        return 2;
    }
    if (!parse_args(argc, argv, &a) || !raise_nofile(a.clients)) {
        return 2;
    }
    pl_log_set_level(PL_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    int m = snprintf(deadline_line, sizeof(deadline_line),
                     "{\"scenario\":\"%s\",\"label\":\"%.64s\",\"error\":\"deadline of %u s "
                     "passed\"}\n",
                     scn->name, a.label, a.deadline_s);
    deadline_len = m > 0 && (size_t)m < sizeof(deadline_line) ? (size_t)m : 0;
    signal(SIGALRM, on_alarm);
    alarm(a.deadline_s);

    uv_loop_t loop;
    int rc = uv_loop_init(&loop);
    if (rc != 0) {
        fprintf(stderr, "loadgen: uv_loop_init: %s\n", uv_strerror(rc));
        return 2;
    }
    int code = scn->run(&loop, &a);
    alarm(0);
    if (uv_loop_close(&loop) != 0) {
        fprintf(stderr, "loadgen: handles left open on the loop\n");
        code = code ? code : 1;
    }
    return code;
}
