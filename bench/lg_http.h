/* A minimal HTTP/1.1 keep-alive client for the load client's agent-API scenarios (bench2): one
 * TCP connection to the server, one request in flight at a time, responses framed by
 * Content-Length (the only framing Parley's API uses; a chunked or unframed response is an
 * error). The connection opens at lg_http_new; a request made before it is connected is written
 * once it is. Threads: the loop's thread only. */
#ifndef LG_HTTP_H
#define LG_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct lg_http lg_http_t;

/* A complete response (status > 0), or the end of the connection (status < 0: a libuv or PL_
 * error code; no more calls follow). body is valid during the call only. latency_ns is from
 * lg_http_request to the last byte. */
typedef void (*lg_http_cb)(lg_http_t *h, int status, const char *body, size_t len,
                           uint64_t latency_ns, void *ud);

/* Connects to host:port (IPv4). NULL if host is not an address or memory is short. */
lg_http_t *lg_http_new(uv_loop_t *loop, const char *host, uint16_t port, lg_http_cb cb, void *ud);
/* Sends one request; headers is extra header lines, each ending in \r\n (or NULL); body may be
 * NULL. 0, UV_EBUSY while a request is in flight, UV_ENOTCONN after an error, PL_ENOMEM. */
int lg_http_request(lg_http_t *h, const char *method, const char *target, const char *headers,
                    const char *body, size_t body_len);
bool lg_http_busy(const lg_http_t *h);
/* Closes the connection; the memory is freed once the loop has run the close. */
void lg_http_close(lg_http_t *h);

#endif
