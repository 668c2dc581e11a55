/* Settings of a Parley process. Every setting has a command-line flag and an environment
 * variable; the flag wins over the variable, the variable over the default. The table in
 * config.c is the single list: --help and the README's configuration table are written from
 * it. Loaded once on the main thread before anything starts; read-only afterwards. */
#ifndef PL_CONFIG_H
#define PL_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    char *host;                 /* listen address */
    uint32_t port;              /* listen port, 0 = any free port (printed at start) */
    char *database;             /* "sqlite:PATH" or "postgres://..." */
    char *redis;                /* "" = in-process presence/queue/bus, else redis://host:port */
    char *data_dir;             /* holds the generated JWT secret (and the default database) */
    char *jwt_secret;           /* "" = generated on first start into data_dir/jwt-secret */
    char *log_level;            /* debug|info|warn|error|off */
    char *web_root;             /* static files; "" = the `web` folder next to the binary */
    char *public_url;           /* base URL printed in the embed snippet; "" = http://localhost:port */
    char *sqlite_sync;          /* normal|full: SQLite `synchronous` */
    uint32_t max_connections;   /* open client connections at once; more are accepted and closed */
    uint32_t max_header_bytes;  /* request line + headers, bytes (431 past it) */
    uint32_t max_headers;       /* header fields per request (431 past it) */
    uint32_t max_body_bytes;    /* request body, bytes (413 past it) */
    uint32_t header_timeout_ms; /* time to receive a whole request head or body (408) */
    uint32_t idle_timeout_ms;   /* keep-alive connection with no request in progress */
    uint32_t shutdown_timeout_ms; /* graceful shutdown: time in-flight requests get to finish */
    uint32_t ping_interval_ms;  /* Engine.IO pingInterval */
    uint32_t ping_timeout_ms;   /* Engine.IO pingTimeout */
    uint32_t max_payload;       /* Engine.IO maxPayload, bytes */
    uint32_t connect_timeout_ms; /* Socket.IO: time a client has to send CONNECT */
    uint32_t max_sockets_per_ip; /* Socket.IO connections open at once from one address */
    uint32_t max_connects_per_ip; /* new Socket.IO connections per second from one address */
    uint32_t visitor_burst;     /* messages a visitor may send within visitor_burst_ms */
    uint32_t visitor_burst_ms;  /* the burst window, ms */
    uint32_t visitor_per_minute; /* messages a visitor may send per minute */
    uint32_t typing_per_second; /* typing / context events per second per socket */
    bool demo;                  /* create the demo project on start if there is no project */
    bool worker;                /* serve also consumes the ingest queue (false needs redis) */
    char *node_id;              /* this node's id on the bus; "" = generated */
    uint32_t queue_visibility_ms; /* Redis queue: idle ms before another worker claims a job */
    uint32_t queue_attempts;    /* deliveries of a job before it goes to the dead letters */
} pl_config_t;

/* Fills cfg with defaults, then the environment, then the flags in argv (which may hold other
 * arguments: pl_config_load consumes the settings it knows and leaves the rest in order in
 * rest[0..*nrest)). Returns 0, or -1 after printing a message naming the bad value. */
int pl_config_load(pl_config_t *cfg, int argc, char **argv, char **rest, int *nrest);
/* Frees the strings of cfg. Also after pl_config_load failed (it then frees what was set). */
void pl_config_dispose(pl_config_t *cfg);
/* Writes the settings as help text (flag, variable, default, meaning). */
void pl_config_print_help(FILE *out);
/* Writes the settings as a Markdown table (used to keep the README current). */
void pl_config_print_markdown(FILE *out);

#endif
