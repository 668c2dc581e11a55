/* Unit tests for ws_handshake_check (src/ws/ws.h): the opening handshake rules of RFC 6455
 * section 4.2.1 on requests built in memory. Good rows, boundary rows (case, lists, spacing) and
 * malformed rows, each with the reason the server gives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ws/ws.h"

#include <string.h>

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

typedef struct {
    const char *name;
    unsigned method; /* HTTP_GET unless set */
    unsigned minor;  /* 1 unless set to 10 (meaning 0) */
    const char *headers[8][2];
    int status;          /* 0 = valid */
    const char *reason;  /* expected reason when refused */
    bool version_header; /* expected */
} row_t;

static const row_t rows[] = {
    {"valid",
     0,
     0,
     {{"Upgrade", "websocket"},
      {"Connection", "Upgrade"},
      {"Sec-WebSocket-Version", "13"},
      {"Sec-WebSocket-Key", KEY}},
     0,
     NULL,
     false},
    {"names and tokens in any case, in lists",
     0,
     0,
     {{"UPGRADE", "WebSocket"},
      {"connection", "keep-alive, UPGRADE"},
      {"sec-websocket-version", "13"},
      {"SEC-WEBSOCKET-KEY", KEY}},
     0,
     NULL,
     false},
    {"Connection split over two headers",
     0,
     0,
     {{"Upgrade", "websocket"},
      {"Connection", "keep-alive"},
      {"Connection", "upgrade"},
      {"Sec-WebSocket-Version", "13"},
      {"Sec-WebSocket-Key", KEY}},
     0,
     NULL,
     false},
    {"protocols and extensions present",
     0,
     0,
     {{"Upgrade", "websocket"},
      {"Connection", "Upgrade"},
      {"Sec-WebSocket-Version", "13"},
      {"Sec-WebSocket-Key", KEY},
      {"Sec-WebSocket-Protocol", "chat, superchat"},
      {"Sec-WebSocket-Extensions", "constructor; __proto__=1"}},
     0,
     NULL,
     false},
    {"POST",
     HTTP_POST,
     0,
     {{"Upgrade", "websocket"},
      {"Connection", "Upgrade"},
      {"Sec-WebSocket-Version", "13"},
      {"Sec-WebSocket-Key", KEY}},
     400,
     "WebSocket handshake must use GET",
     false},
    {"HTTP/1.0",
     0,
     10,
     {{"Upgrade", "websocket"},
      {"Connection", "Upgrade"},
      {"Sec-WebSocket-Version", "13"},
      {"Sec-WebSocket-Key", KEY}},
     400,
     "WebSocket handshake needs HTTP/1.1",
     false},
    {"no Upgrade",
     0,
     0,
     {{"Connection", "Upgrade"}, {"Sec-WebSocket-Version", "13"}, {"Sec-WebSocket-Key", KEY}},
     400,
     "Missing or invalid Upgrade header",
     false},
    {"Upgrade: h2c",
     0,
     0,
     {{"Upgrade", "h2c"},
      {"Connection", "Upgrade"},
      {"Sec-WebSocket-Version", "13"},
      {"Sec-WebSocket-Key", KEY}},
     400,
     "Missing or invalid Upgrade header",
     false},
    {"Upgrade token as a prefix only",
     0,
     0,
     {{"Upgrade", "websockets"},
      {"Connection", "Upgrade"},
      {"Sec-WebSocket-Version", "13"},
      {"Sec-WebSocket-Key", KEY}},
     400,
     "Missing or invalid Upgrade header",
     false},
    {"Connection without upgrade",
     0,
     0,
     {{"Upgrade", "websocket"},
      {"Connection", "keep-alive"},
      {"Sec-WebSocket-Version", "13"},
      {"Sec-WebSocket-Key", KEY}},
     400,
     "Missing or invalid Connection header",
     false},
    {"version 8",
     0,
     0,
     {{"Upgrade", "websocket"},
      {"Connection", "Upgrade"},
      {"Sec-WebSocket-Version", "8"},
      {"Sec-WebSocket-Key", KEY}},
     400,
     "Unsupported WebSocket version",
     true},
    {"version 13 with spaces inside",
     0,
     0,
     {{"Upgrade", "websocket"},
      {"Connection", "Upgrade"},
      {"Sec-WebSocket-Version", "1 3"},
      {"Sec-WebSocket-Key", KEY}},
     400,
     "Unsupported WebSocket version",
     true},
    {"no version",
     0,
     0,
     {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}, {"Sec-WebSocket-Key", KEY}},
     400,
     "Unsupported WebSocket version",
     true},
    {"two versions",
     0,
     0,
     {{"Upgrade", "websocket"},
      {"Connection", "Upgrade"},
      {"Sec-WebSocket-Version", "13"},
      {"Sec-WebSocket-Version", "13"},
      {"Sec-WebSocket-Key", KEY}},
     400,
     "Unsupported WebSocket version",
     true},
    {"no key",
     0,
     0,
     {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}, {"Sec-WebSocket-Version", "13"}},
     400,
     "Missing or invalid Sec-WebSocket-Key header",
     false},
    {"key of 15 bytes",
     0,
     0,
     {{"Upgrade", "websocket"},
      {"Connection", "Upgrade"},
      {"Sec-WebSocket-Version", "13"},
      {"Sec-WebSocket-Key", "AQEBAQEBAQEBAQEBAQEB"}},
     400,
     "Missing or invalid Sec-WebSocket-Key header",
     false},
    {"key without padding",
     0,
     0,
     {{"Upgrade", "websocket"},
      {"Connection", "Upgrade"},
      {"Sec-WebSocket-Version", "13"},
      {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQAA"}},
     400,
     "Missing or invalid Sec-WebSocket-Key header",
     false},
    {"key with a bad character",
     0,
     0,
     {{"Upgrade", "websocket"},
      {"Connection", "Upgrade"},
      {"Sec-WebSocket-Version", "13"},
      {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZ-=="}},
     400,
     "Missing or invalid Sec-WebSocket-Key header",
     false},
    {"two keys",
     0,
     0,
     {{"Upgrade", "websocket"},
      {"Connection", "Upgrade"},
      {"Sec-WebSocket-Version", "13"},
      {"Sec-WebSocket-Key", KEY},
      {"Sec-WebSocket-Key", KEY}},
     400,
     "Missing or invalid Sec-WebSocket-Key header",
     false},
    {"bad protocol list",
     0,
     0,
     {{"Upgrade", "websocket"},
      {"Connection", "Upgrade"},
      {"Sec-WebSocket-Version", "13"},
      {"Sec-WebSocket-Key", KEY},
      {"Sec-WebSocket-Protocol", "b    x"}},
     400,
     "Invalid Sec-WebSocket-Protocol header",
     false},
    {"empty protocol header",
     0,
     0,
     {{"Upgrade", "websocket"},
      {"Connection", "Upgrade"},
      {"Sec-WebSocket-Version", "13"},
      {"Sec-WebSocket-Key", KEY},
      {"Sec-WebSocket-Protocol", ""}},
     400,
     "Invalid Sec-WebSocket-Protocol header",
     false},
};

static void test_handshake_rows(void **state) {
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const row_t *row = &rows[i];
        http_header_t hdrs[8];
        size_t n = 0;
        for (; n < 8 && row->headers[n][0]; n++) {
            hdrs[n].name = pl_slice_cstr(row->headers[n][0]);
            hdrs[n].value = pl_slice_cstr(row->headers[n][1]);
        }
        http_request_t req;
        memset(&req, 0, sizeof req);
        req.method = row->method ? row->method : HTTP_GET;
        req.http_minor = row->minor == 10 ? 0 : 1;
        req.headers = hdrs;
        req.nheaders = n;
        req.upgrade = true;
        const char *reason = NULL;
        bool vh = false;
        int status = ws_handshake_check(&req, &reason, &vh);
        if (status != row->status || vh != row->version_header ||
            (row->reason && (!reason || strcmp(reason, row->reason) != 0))) {
            print_error("row %s: status=%d reason=%s version_header=%d\n", row->name, status,
                        reason ? reason : "(none)", vh);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
