/* Scenarios of the load client: each is a script over the core (lg.h) that opens clients,
 * drives them and prints its results as one JSON line on stdout plus one human line on stderr.
 * loadgen.c parses the command line into lg_args_t and runs the scenario named by the first
 * argument. A new scenario is a new lg_scn_<name>.c file with an lg_scenario_t, listed in
 * loadgen.c's table. Threads: the main thread only. */
#ifndef LG_SCN_H
#define LG_SCN_H

#include "lg.h"

#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#define LG_MAX_PORTS 16 /* --visitor-ports */
#define LG_MAX_PIDS 256 /* --server-pids, --backend-pids */

/* Everything the command line can set; scenarios read the fields they use. */
typedef struct {
    const char *label;      /* server name in the results ("parley", "node") */
    lg_options_t conn;      /* where and how to connect */
    pid_t server_pid;       /* the server's pid for RSS and CPU readings, 0 = none */
    uint32_t clients;       /* clients to open */
    uint32_t concurrency;   /* connections in their handshake at once */
    uint32_t idle_ms;       /* connect: how long clients stay idle before the second reading */
    uint32_t seconds;       /* echo/ack: measured duration, s */
    uint32_t warmup_ms;     /* echo/ack: traffic before measuring starts, ms */
    uint32_t window;        /* echo/ack: messages in flight per client */
    uint32_t payload_bytes; /* echo/ack: length of the string argument, bytes */
    uint32_t rate;          /* echo/ack: messages per second over all clients (open loop,
                               paced every millisecond); 0 = closed loop, a new message as
                               each answer arrives */
    uint32_t deadline_s;    /* the whole run is aborted after this, s */
    /* messages (scale-out runs): visitor i connects to visitor_ports[i % n_visitor_ports] and
     * the agents to agent_port; both default to conn.port (n_visitor_ports 0 = conn.port). */
    uint16_t visitor_ports[LG_MAX_PORTS];
    uint32_t n_visitor_ports;
    uint16_t agent_port;
    /* messages: more server processes whose CPU and RSS are added to server_pid's (the nodes
     * and workers of a scale-out run), and backend processes (PostgreSQL, Redis) whose CPU is
     * reported apart. */
    pid_t server_pids[LG_MAX_PIDS];
    uint32_t n_server_pids;
    pid_t backend_pids[LG_MAX_PIDS];
    uint32_t n_backend_pids;
} lg_args_t;

typedef struct {
    const char *name; /* first command-line argument */
    const char *help; /* one line for the usage text */
    /* Runs the scenario on loop; returns the process exit code (0 = ran and printed results). */
    int (*run)(uv_loop_t *loop, const lg_args_t *a);
} lg_scenario_t;

extern const lg_scenario_t lg_scn_connect;
extern const lg_scenario_t lg_scn_echo;
extern const lg_scenario_t lg_scn_ack;
extern const lg_scenario_t lg_scn_messages; /* lg_scn_messages.c (bench2) */
extern const lg_scenario_t lg_scn_api_replies; /* lg_scn_api.c (bench2) */
extern const lg_scenario_t lg_scn_api_inbox;   /* lg_scn_api.c (bench2) */

/* Runs the built-in checks of the pure parts (frame codec, histogram); returns the number of
 * failures and prints a summary line. */
int lg_selftest(void);

#endif
