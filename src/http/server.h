/* HTTP/1.1 server on libuv with http-parser.
 *
 * One http_server_t listens on a TCP address and owns every http_conn_t it accepts. A
 * connection parses requests (keep-alive, pipelining: a request is parsed only after the
 * previous one was answered), routes each through the http_router_t (router.h) and hands it to
 * a handler. The handler answers now or later with one of the http_respond* calls, or takes the
 * connection over with http_request_upgrade() (WebSocket). Limits (header size and count, body
 * size, timeouts, connection count) are checked before memory grows; a violation is answered
 * with its status (400, 408, 413, 431) and the connection is closed.
 *
 * Threads: everything here runs on the loop thread that created the server. */
#ifndef HTTP_SERVER_H
#define HTTP_SERVER_H

#include "core/buf.h"

#include <http_parser.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct http_server http_server_t;
typedef struct http_conn http_conn_t;
typedef struct http_request http_request_t;
typedef struct http_router http_router_t;

typedef struct {
    uint32_t max_connections;   /* open connections at once; more are accepted then closed */
    uint32_t max_header_bytes;  /* request line + headers (431) */
    uint32_t max_headers;       /* header fields (431) */
    uint32_t max_body_bytes;    /* body (413) */
    uint32_t header_timeout_ms; /* to receive the head, and separately the body (408) */
    uint32_t idle_timeout_ms;   /* keep-alive with no request in progress: closed silently */
    size_t max_pending_output;  /* upgraded connections: output queued beyond this closes it */
} http_limits_t;

/* Fills in the defaults of PROTOCOL.md section 6 (16 KiB head, 1 MiB body, ...). */
void http_limits_default(http_limits_t *l);

typedef struct {
    pl_slice_t name;  /* as received; compare case-insensitively */
    pl_slice_t value; /* leading and trailing white space removed */
} http_header_t;

#define HTTP_MAX_PARAMS 8

/* A parsed request. Valid from the handler call until the request is finished by exactly one
 * of http_respond*(), http_request_upgrade() or http_request_release(). The connection may
 * close before that (see http_request_on_abort); the request stays valid, and finishing it is
 * then only a free. */
struct http_request {
    http_conn_t *conn;       /* the connection (a reference is held by the request) */
    unsigned method;         /* enum http_method of http_parser.h (HTTP_GET, ...) */
    pl_slice_t method_name;  /* "GET", ... */
    pl_slice_t target;       /* request target as sent: path and query */
    pl_slice_t path;         /* target up to '?', not decoded */
    pl_slice_t query;        /* after '?', not decoded; empty if none */
    http_header_t *headers;  /* nheaders entries, in order received */
    size_t nheaders;
    pl_buf_t body;           /* the whole body (chunked bodies are joined) */
    bool keep_alive;         /* the client allows keep-alive (HTTP/1.1 default) */
    bool upgrade;            /* an Upgrade request (Connection: upgrade + Upgrade:) */
    unsigned http_minor;     /* 0 or 1 */
    size_t nparams;          /* path parameters from the route pattern (":id") */
    pl_slice_t param_names[HTTP_MAX_PARAMS];
    pl_slice_t param_values[HTTP_MAX_PARAMS]; /* not decoded */
    /* private to server.c */
    void *priv_;
};

/* Handler for a routed request; ud is the pointer given at registration. */
typedef void (*http_handler_cb)(http_request_t *req, void *ud);

/* Header value by case-insensitive name (the first if repeated), or NULL. */
const pl_slice_t *http_request_header(const http_request_t *req, const char *name);
/* Number of times a header occurs. */
size_t http_request_header_count(const http_request_t *req, const char *name);
/* Path parameter by name (without ':'), or an empty slice with ptr NULL. */
pl_slice_t http_request_param(const http_request_t *req, const char *name);
/* Client address as text ("127.0.0.1"); valid while the request is. */
const char *http_request_remote_ip(const http_request_t *req);
/* True once the connection under an unfinished request has closed. */
bool http_request_aborted(const http_request_t *req);
/* cb fires once if the connection closes while the request is unfinished (a held long-poll).
 * The request must still be finished (usually with http_request_release) afterwards. */
void http_request_on_abort(http_request_t *req, void (*cb)(http_request_t *req, void *ud), void *ud);

/* Adds a response header (copied) for the coming response. Name and value must be free of CR,
 * LF and NUL (they are dropped otherwise). */
void http_response_header(http_request_t *req, const char *name, const char *value);
/* Asks for the connection to close after this response. */
void http_response_close(http_request_t *req);

/* Answers and finishes the request. body is copied. Content-Length is added; so are Date,
 * Connection and the headers added above. HEAD requests get headers only. */
void http_respond(http_request_t *req, int status, const char *content_type, const void *body,
                  size_t len);
/* Same with a JSON body; the reference to json is stolen. */
void http_respond_json(http_request_t *req, int status, json_t *json);
/* An error in the API's shape {statusCode, message, error} (PROTOCOL.md section 9). */
void http_respond_error(http_request_t *req, int status, const char *message);
/* Finishes a request that will not be answered (its connection closed). If the connection is
 * still open it is closed, since an unanswered request would stall the pipeline. */
void http_request_release(http_request_t *req);
/* Reason phrase of a status code ("Not Found"). */
const char *http_status_text(int status);

/* What an upgraded connection tells its new owner. All callbacks run on the loop thread. */
typedef struct {
    /* Bytes received (first call: whatever followed the request head). */
    void (*on_read)(void *ud, const char *data, size_t len);
    /* Pending output dropped to zero after having been non-zero (optional). */
    void (*on_drain)(void *ud);
    /* The connection is closed (peer, error, limit, http_conn_close or server shutdown). Last
     * callback; the owner must drop its pointer to the connection here. */
    void (*on_close)(void *ud);
    /* The server is shutting down: close gracefully soon (optional; if NULL the connection is
     * closed for you). */
    void (*on_shutdown)(void *ud);
} http_upgrade_ops_t;

/* Takes the connection over for another protocol: writes head (the 101 response, copied),
 * finishes req, and from then on delivers bytes to ops. Returns the connection, or NULL if it
 * had already closed (req is finished either way). */
http_conn_t *http_request_upgrade(http_request_t *req, pl_slice_t head,
                                  const http_upgrade_ops_t *ops, void *ud);

/* Upgraded connections. Writes are queued in order; each buffer gets a reference that is
 * dropped once written. When output pending would pass limits.max_pending_output the
 * connection is closed instead (slow consumer) and PL_ETOOBIG returned. */
int http_conn_writev(http_conn_t *c, pl_rcbuf_t **bufs, size_t n);
int http_conn_write(http_conn_t *c, const void *data, size_t len); /* copies */
size_t http_conn_pending(const http_conn_t *c); /* bytes queued, not yet written */
/* Closes after queued output has been written (bounded by a short timeout). on_close follows. */
void http_conn_close(http_conn_t *c);
/* Closes now, dropping queued output. on_close follows. */
void http_conn_abort(http_conn_t *c);
void http_conn_pause(http_conn_t *c);  /* stop reading */
void http_conn_resume(http_conn_t *c); /* read again */
uint64_t http_conn_id(const http_conn_t *c); /* unique per server, for logs */
const char *http_conn_remote_ip(const http_conn_t *c);
uv_loop_t *http_conn_loop(const http_conn_t *c);

/* Creates a server on loop. limits are copied; router is borrowed and must outlive it. */
http_server_t *http_server_new(uv_loop_t *loop, const http_limits_t *limits, http_router_t *router);
/* Binds and listens (SO_REUSEADDR; SO_REUSEPORT when reuse_port). 0 or a libuv error. */
int http_server_listen(http_server_t *s, const char *host, unsigned port, bool reuse_port);
/* The bound port (useful after listening on port 0). */
unsigned http_server_port(const http_server_t *s);
size_t http_server_connection_count(const http_server_t *s);
/* Graceful stop: closes the listener and idle connections, lets requests in progress finish
 * for up to timeout_ms, tells upgraded connections to close, then closes what remains. cb fires
 * once every connection is closed; the server may then be freed. */
void http_server_shutdown(http_server_t *s, uint32_t timeout_ms,
                          void (*cb)(http_server_t *s, void *ud), void *ud);
/* Frees a server that never listened or whose shutdown completed. */
void http_server_free(http_server_t *s);

#endif
