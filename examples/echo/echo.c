/* echo: the Socket.IO / Engine.IO conformance server, and the example of how to use the sio
 * library (src/sio/server.h).
 *
 * At /socket.io/ (Socket.IO v5), namespaces "/" and "/custom":
 *   - on connection the socket gets `auth` with the CONNECT auth object ({} when none);
 *   - `message` ...args      -> emits `message-back` with the same arguments (binary included);
 *   - `message-with-ack` ... -> acknowledges with the same arguments;
 *   - `ping-me` ...args      -> emits `ask` with the same arguments and an ack (5 s timeout);
 *                               when the client acks, emits `answer` with the ack's arguments,
 *                               on timeout `answer-error` with "timeout";
 *   - `join` room / `leave` room (+ ack: true when done / when it was a member);
 *   - `room-emit` {rooms?: [..], except?: [..], exceptSelf?: bool}, event, ...args
 *                               -> broadcasts event with args; acks with the local count;
 *   - `disconnect-me`        -> the server disconnects the socket (DISCONNECT packet).
 *   On "/" a connect middleware refuses a CONNECT whose auth is {"refuse": "<text>"} with that
 *   text as the connect_error message. On "/custom" an event whose arguments are unacceptable
 *   JSON (NUL, lone surrogate, too deep, cut short...) is refused without closing the session:
 *   its ack gets {"error":{"code":"invalid_payload","message":<reason>}}, or without an ack the
 *   socket gets `exception` {"status":"error","message":<reason>,"event":<name>}; on "/" such a
 *   packet closes the session (the library's default).
 * At /engine.io/: a plain Engine.IO server that sends every message back as it came.
 *
 * Flags: --host (127.0.0.1), --port (3000; 0 = any free port), --ping-interval,
 * --ping-timeout, --connect-timeout (ms), --max-payload (bytes), --max-connections. Logs `event=http.listen ...
 * port=N` when listening. SIGINT/SIGTERM stop gracefully; a second signal exits at once. */
#include "core/id.h"
#include "core/log.h"
#include "eio/server.h"
#include "http/router.h"
#include "http/server.h"
#include "sio/server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ASK_TIMEOUT_MS 5000

typedef struct {
    uv_loop_t *loop;
    http_router_t *router;
    http_server_t *http;
    sio_server_t *sio;
    eio_server_t *raw; /* /engine.io/ */
    uv_signal_t sigint, sigterm;
    int stopping; /* parts still closing */
    int signals;
} echo_t;

/* ---- Socket.IO ------------------------------------------------------------------------------ */

/* Every namespace: remember the auth object for the `auth` event (freed with the socket). */
static void remember_auth(sio_connect_t *c, void *ud) {
    (void)ud;
    sio_socket_set_data(sio_connect_socket(c), json_incref(sio_connect_auth(c)));
    sio_connect_accept(c);
}

static void free_auth(void *data) {
    json_decref(data);
}

/* "/" only: a test hook for refusals. A real application would look the client up (maybe
 * asynchronously) and call accept or refuse when it knows. */
static void refuse_on_request(sio_connect_t *c, void *ud) {
    (void)ud;
    const char *text = json_string_value(json_object_get(sio_connect_auth(c), "refuse"));
    if (text)
        sio_connect_refuse(c, text);
    else
        sio_connect_accept(c);
}

static void on_connection(sio_socket_t *s, void *ud) {
    (void)ud;
    json_t *args = json_pack("[O]", (json_t *)sio_socket_data(s));
    (void)sio_socket_emit(s, "auth", &(sio_args_t){.args = args});
    json_decref(args);
}

static void on_message(sio_socket_t *s, const char *event, const sio_args_t *args, sio_ack_t *ack,
                       void *ud) {
    (void)event, (void)ack, (void)ud;
    (void)sio_socket_emit(s, "message-back", args); /* same tree, same buffers */
}

static void on_message_with_ack(sio_socket_t *s, const char *event, const sio_args_t *args,
                                sio_ack_t *ack, void *ud) {
    (void)s, (void)event, (void)ud;
    if (ack)
        (void)sio_ack_send(ack, args);
}

static void on_asked(sio_socket_t *s, int status, const sio_args_t *args, void *ud) {
    (void)ud;
    if (status == 0) {
        (void)sio_socket_emit(s, "answer", args);
        return;
    }
    json_t *why = json_pack("[s]", status == UV_ETIMEDOUT ? "timeout" : "disconnected");
    (void)sio_socket_emit(s, "answer-error", &(sio_args_t){.args = why});
    json_decref(why);
}

static void on_ping_me(sio_socket_t *s, const char *event, const sio_args_t *args, sio_ack_t *ack,
                       void *ud) {
    (void)event, (void)ack, (void)ud;
    int rc = sio_socket_emit_ack(s, "ask", args, ASK_TIMEOUT_MS, on_asked, NULL);
    if (rc) /* on_asked will not be called: nothing else to undo here */
        pl_log_info("echo.ask_failed", "id=%s error=%s", sio_socket_id(s), pl_strerror(rc));
}

static void answer(sio_ack_t *ack, json_t *value) {
    json_t *args = json_pack("[o]", value);
    if (ack)
        (void)sio_ack_send(ack, &(sio_args_t){.args = args});
    json_decref(args);
}

static void on_join(sio_socket_t *s, const char *event, const sio_args_t *args, sio_ack_t *ack,
                    void *ud) {
    (void)event, (void)ud;
    const char *room = json_string_value(sio_args_get(args, 0));
    answer(ack, json_boolean(room && sio_socket_join(s, room) == 0));
}

static void on_leave(sio_socket_t *s, const char *event, const sio_args_t *args, sio_ack_t *ack,
                     void *ud) {
    (void)event, (void)ud;
    const char *room = json_string_value(sio_args_get(args, 0));
    answer(ack, json_boolean(room && sio_socket_leave(s, room)));
}

/* Collects up to max strings of a JSON array into names. */
static size_t strings(const json_t *array, const char **names, size_t max) {
    size_t n = 0, i;
    json_t *v;
    json_array_foreach(array, i, v) {
        if (json_is_string(v) && n < max)
            names[n++] = json_string_value(v);
    }
    return n;
}

static void on_room_emit(sio_socket_t *s, const char *event, const sio_args_t *args, sio_ack_t *ack,
                         void *ud) {
    (void)event, (void)ud;
    const json_t *opts = sio_args_get(args, 0);
    const char *name = json_string_value(sio_args_get(args, 1));
    if (!json_is_object(opts) || !name) {
        answer(ack, json_string("bad arguments"));
        return;
    }
    const char *rooms[16], *except[17];
    sio_target_t to = {.rooms = rooms, .except = except};
    to.nrooms = strings(json_object_get(opts, "rooms"), rooms, 16);
    to.nexcept = strings(json_object_get(opts, "except"), except, 16);
    if (json_is_true(json_object_get(opts, "exceptSelf")))
        except[to.nexcept++] = sio_socket_id(s);
    /* The rest of the arguments, with the packet's attachments. */
    json_t *rest = json_array();
    for (size_t i = 2; i < sio_args_count(args); i++)
        json_array_append(rest, sio_args_get(args, i));
    int n =
        sio_nsp_emit(sio_socket_nsp(s), &to, name, &(sio_args_t){.args = rest, .bufs = args->bufs, .nbufs = args->nbufs});
    json_decref(rest);
    answer(ack, json_integer(n));
}

static void on_disconnect_me(sio_socket_t *s, const char *event, const sio_args_t *args,
                             sio_ack_t *ack, void *ud) {
    (void)event, (void)args, (void)ack, (void)ud;
    sio_socket_disconnect(s, false);
}

static void on_invalid(sio_socket_t *s, const char *event, const char *reason, sio_ack_t *ack,
                       void *ud) {
    (void)ud;
    json_t *args;
    if (ack) {
        args = json_pack("[{s{ssss}}]", "error", "code", "invalid_payload", "message", reason);
        (void)sio_ack_send(ack, &(sio_args_t){.args = args});
    } else {
        args = json_pack("[{ssssss}]", "status", "error", "message", reason, "event", event);
        (void)sio_socket_emit(s, "exception", &(sio_args_t){.args = args});
    }
    json_decref(args);
}

static void setup_namespace(sio_nsp_t *nsp, bool refusals) {
    sio_nsp_use(nsp, remember_auth, NULL);
    if (refusals)
        sio_nsp_use(nsp, refuse_on_request, NULL);
    else
        sio_nsp_on_invalid(nsp, on_invalid, NULL);
    sio_nsp_on_data_free(nsp, free_auth);
    sio_nsp_on_connection(nsp, on_connection, NULL);
    (void)sio_nsp_on(nsp, "message", on_message, NULL);
    (void)sio_nsp_on(nsp, "message-with-ack", on_message_with_ack, NULL);
    (void)sio_nsp_on(nsp, "ping-me", on_ping_me, NULL);
    (void)sio_nsp_on(nsp, "join", on_join, NULL);
    (void)sio_nsp_on(nsp, "leave", on_leave, NULL);
    (void)sio_nsp_on(nsp, "room-emit", on_room_emit, NULL);
    (void)sio_nsp_on(nsp, "disconnect-me", on_disconnect_me, NULL);
}

/* ---- plain Engine.IO echo ------------------------------------------------------------------- */

static int raw_open(eio_socket_t *s, http_request_t *req, void *ud) {
    (void)s, (void)req, (void)ud;
    return 0;
}

static void raw_message(eio_socket_t *s, const char *data, size_t len, bool binary, void *ud) {
    (void)ud;
    /* Text goes back as a message packet ('4' + text), binary as the raw bytes. */
    pl_rcbuf_t *msg = pl_rcbuf_new(len + !binary);
    if (!msg)
        return;
    if (!binary)
        msg->data[0] = '4';
    memcpy(msg->data + !binary, data, len);
    (void)eio_socket_send(s, msg, binary);
    pl_rcbuf_unref(msg);
}

static void raw_close(eio_socket_t *s, const char *reason, void *ud) {
    (void)s, (void)reason, (void)ud;
}

/* ---- start and stop ------------------------------------------------------------------------- */

static void part_stopped(echo_t *e) {
    if (--e->stopping > 0)
        return;
    uv_close((uv_handle_t *)&e->sigint, NULL);
    uv_close((uv_handle_t *)&e->sigterm, NULL);
    pl_log_info("shutdown.done", "");
}

static void sio_stopped(void *ud) {
    part_stopped(ud);
}

static void raw_stopped(void *ud) {
    part_stopped(ud);
}

static void http_stopped(http_server_t *s, void *ud) {
    (void)s;
    part_stopped(ud);
}

static void on_signal(uv_signal_t *h, int signum) {
    echo_t *e = h->data;
    if (e->signals++) {
        pl_log_warn("shutdown.forced", "signal=%d", signum);
        _exit(1);
    }
    pl_log_info("shutdown.start", "signal=%d", signum);
    e->stopping = 3;
    http_server_shutdown(e->http, 5000, http_stopped, e);
    sio_server_close(e->sio, sio_stopped, e);
    eio_server_close(e->raw, raw_stopped, e);
}

static bool parse_u32(const char *flag, const char *v, uint32_t max, uint32_t *out) {
    char *end;
    unsigned long x = v ? strtoul(v, &end, 10) : 0;
    if (!v || !*v || *end || x > max || v[0] == '-') {
        fprintf(stderr, "echo: %s needs a number up to %u\n", flag, max);
        return false;
    }
    *out = (uint32_t)x;
    return true;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    uint32_t port = 3000;
    sio_options_t so;
    sio_options_default(&so);
    http_limits_t lim;
    http_limits_default(&lim);
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok;
        if (!strcmp(f, "--host") && v)
            host = v, ok = true;
        else if (!strcmp(f, "--port"))
            ok = parse_u32(f, v, 65535, &port);
        else if (!strcmp(f, "--ping-interval"))
            ok = parse_u32(f, v, 3600000, &so.eio.ping_interval_ms);
        else if (!strcmp(f, "--ping-timeout"))
            ok = parse_u32(f, v, 3600000, &so.eio.ping_timeout_ms);
        else if (!strcmp(f, "--connect-timeout"))
            ok = parse_u32(f, v, 3600000, &so.connect_timeout_ms);
        else if (!strcmp(f, "--max-payload"))
            ok = parse_u32(f, v, 100000000, &so.eio.max_payload);
        else if (!strcmp(f, "--max-connections"))
            ok = parse_u32(f, v, 1000000, &lim.max_connections);
        else {
            fprintf(stderr, "usage: echo [--host H] [--port N] [--ping-interval MS] "
                            "[--ping-timeout MS] [--connect-timeout MS] [--max-payload BYTES] "
                            "[--max-connections N]\n");
            return 2;
        }
        if (!ok)
            return 2;
        i++;
    }
    if (pl_id_init() != 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);

    echo_t e = {.loop = uv_default_loop()};
    e.sio = sio_server_new(e.loop, &so);
    eio_callbacks_t raw_cbs = {raw_open, raw_message, raw_close};
    e.raw = eio_server_new(e.loop, &so.eio, &raw_cbs, &e);
    if (!e.sio || !e.raw)
        return 1;
    setup_namespace(sio_server_of(e.sio, "/"), true);
    setup_namespace(sio_server_of(e.sio, "/custom"), false);

    e.router = http_router_new();
    http_router_add(e.router, NULL, "/socket.io/*", sio_server_handle, e.sio);
    http_router_add(e.router, NULL, "/engine.io/*", eio_server_handle, e.raw);
    e.http = http_server_new(e.loop, &lim, e.router);
    int rc = http_server_listen(e.http, host, port, false);
    if (rc) {
        fprintf(stderr, "echo: cannot listen on %s:%u: %s\n", host, port, uv_strerror(rc));
        return 1;
    }
    pl_log_info("http.listen", "host=%s port=%u", host, http_server_port(e.http));

    uv_signal_init(e.loop, &e.sigint);
    uv_signal_init(e.loop, &e.sigterm);
    e.sigint.data = e.sigterm.data = &e;
    uv_signal_start(&e.sigint, on_signal, SIGINT);
    uv_signal_start(&e.sigterm, on_signal, SIGTERM);

    uv_run(e.loop, UV_RUN_DEFAULT);
    http_server_free(e.http);
    uv_run(e.loop, UV_RUN_DEFAULT);
    http_router_free(e.router);
    return uv_loop_close(e.loop) == 0 ? 0 : 1;
}
