/* `loadgen selftest`: table-driven checks of the load client's pure parts, the WebSocket frame
 * encoder/decoder (RFC 6455 5.2 examples and the refusals listed in lg_ws.h), the latency
 * histogram and the process-tree CPU reading (with a forked child), so a broken measurement tool
 * is caught before it reports figures. Good rows,
 * boundary rows and malformed rows, as the unit tests of the server are written. */
#include "lg_scn.h"

#include "lg_stats.h"
#include "lg_ws.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int passed, failed;

static void check(bool ok, const char *what, int row) {
    if (ok) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "selftest: FAILED %s (row %d)\n", what, row);
    }
}

typedef struct {
    const char *bytes; /* frame header bytes */
    size_t n;          /* how many of them are available */
    uint64_t max;      /* max_len */
    int rc;            /* expected result */
    unsigned opcode;   /* when rc == 1 */
    bool fin;          /* when rc == 1 */
    size_t header_len; /* when rc == 1 */
    uint64_t len;      /* when rc == 1 */
} parse_row_t;

static const parse_row_t parse_rows[] = {
    /* good: RFC 6455 5.7 "Hello" unmasked text, a fragment, ping, 16- and 64-bit lengths */
    {"\x81\x05Hello", 7, 1000, 1, LG_WS_TEXT, true, 2, 5},
    {"\x01\x03Hel", 5, 1000, 1, LG_WS_TEXT, false, 2, 3},
    {"\x80\x02lo", 4, 1000, 1, LG_WS_CONT, true, 2, 2},
    {"\x89\x00", 2, 1000, 1, LG_WS_PING, true, 2, 0},
    {"\x82\x7e\x01\x00", 4, 1000, 1, LG_WS_BINARY, true, 4, 256},
    {"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10, 1u << 20, 1, LG_WS_BINARY, true, 10, 65536},
    /* boundary: 125-byte control frame, 126 as 16-bit, max_len exactly, incomplete headers */
    {"\x8a\x7d", 2, 1000, 1, LG_WS_PONG, true, 2, 125},
    {"\x81\x7e\x00\x7e", 4, 126, 1, LG_WS_TEXT, true, 4, 126},
    {"", 0, 1000, 0, 0, false, 0, 0},
    {"\x81", 1, 1000, 0, 0, false, 0, 0},
    {"\x81\x7e\x01", 3, 1000, 0, 0, false, 0, 0},
    {"\x81\x7f\x00\x00\x00", 5, 1000, 0, 0, false, 0, 0},
    /* malformed: masked by the server, RSV bits, unknown opcodes, long or fragmented control
     * frames, non-minimal lengths, 2^63, over max_len */
    {"\x81\x85\x00\x00\x00\x00", 6, 1000, PL_EINVAL, 0, false, 0, 0},
    {"\xc1\x01", 2, 1000, PL_EINVAL, 0, false, 0, 0},
    {"\x91\x01", 2, 1000, PL_EINVAL, 0, false, 0, 0},
    {"\x83\x00", 2, 1000, PL_EINVAL, 0, false, 0, 0},
    {"\x8b\x00", 2, 1000, PL_EINVAL, 0, false, 0, 0},
    {"\x89\x7e\x00\x7e", 4, 1000, PL_EINVAL, 0, false, 0, 0},
    {"\x09\x00", 2, 1000, PL_EINVAL, 0, false, 0, 0},
    {"\x81\x7e\x00\x05", 4, 1000, PL_EINVAL, 0, false, 0, 0},
    {"\x81\x7f\x00\x00\x00\x00\x00\x00\xff\xff", 10, 1u << 20, PL_EINVAL, 0, false, 0, 0},
    {"\x81\x7f\x80\x00\x00\x00\x00\x00\x00\x00", 10, UINT64_MAX, PL_EINVAL, 0, false, 0, 0},
    {"\x81\x7e\x01\x00", 4, 255, PL_ETOOBIG, 0, false, 0, 0},
};

static void test_frame_parse(void) {
    for (size_t i = 0; i < sizeof(parse_rows) / sizeof(parse_rows[0]); i++) {
        const parse_row_t *r = &parse_rows[i];
        lg_ws_frame_t f;
        int rc = lg_ws_frame_parse((const uint8_t *)r->bytes, r->n, r->max, &f);
        bool ok = rc == r->rc;
        if (ok && rc == 1) {
            ok = f.opcode == r->opcode && f.fin == r->fin && f.header_len == r->header_len &&
                 f.len == r->len;
        }
        check(ok, "frame parse", (int)i);
    }
}

/* Client frames: header layout for each length class, and masking that the same key undoes,
 * written whole or in pieces at odd offsets. */
static void test_frame_encode(void) {
    static const struct {
        uint64_t len;
        size_t header_len;
        uint8_t b1;
    } rows[] = {{0, 6, 0x80},
                {125, 6, 0x80 | 125},
                {126, 8, 0x80 | 126},
                {65535, 8, 0x80 | 126},
                {65536, 14, 0x80 | 127}};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        uint8_t h[LG_WS_MAX_HEADER];
        size_t n = lg_ws_client_header(h, LG_WS_TEXT, rows[i].len, 0x11223344u);
        bool ok = n == rows[i].header_len && h[0] == 0x81 && h[1] == rows[i].b1 &&
                  h[n - 4] == 0x44 && h[n - 1] == 0x11;
        if (ok && n == 8) {
            ok = ((uint64_t)h[2] << 8 | h[3]) == rows[i].len;
        }
        check(ok, "frame header", (int)i);
    }
    /* RFC 6455 5.7: "Hello" masked with 37 fa 21 3d is 7f 9f 4d 51 58. */
    uint8_t out[5];
    lg_ws_mask_copy(out, (const uint8_t *)"Hello", 5, 0x3d21fa37u, 0);
    check(memcmp(out, "\x7f\x9f\x4d\x51\x58", 5) == 0, "mask RFC example", 0);

    lg_rng_t r;
    lg_rng_seed(&r, 42);
    uint8_t src[100], whole[100], pieces[100], back[100];
    for (size_t i = 0; i < sizeof(src); i++) {
        src[i] = (uint8_t)lg_rng_next(&r);
    }
    uint32_t key = (uint32_t)lg_rng_next(&r);
    lg_ws_mask_copy(whole, src, sizeof(src), key, 0);
    size_t off = 0;
    static const size_t cuts[] = {1, 2, 3, 5, 8, 13, 21, 47};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        off = lg_ws_mask_copy(pieces + off, src + off, cuts[i], key, off);
    }
    check(off == sizeof(src) && memcmp(whole, pieces, sizeof(src)) == 0, "mask in pieces", 0);
    lg_ws_mask_copy(back, whole, sizeof(whole), key, 0);
    check(memcmp(back, src, sizeof(src)) == 0, "mask round trip", 0);
    check(lg_rng_next(&r) != lg_rng_next(&r), "rng moves", 0);
}

static void test_hist(void) {
    /* Every value falls inside its bucket's bounds, and bucket bounds are contiguous. */
    static const uint64_t values[] = {
        0, 1, 31, 32, 63, 64, 65, 1000, 123456789, 1ull << 40, ~0ull, (1ull << 63) - 1, 1ull << 63};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        size_t b = lg_hist_index(values[i]);
        check(b < LG_HIST_BUCKETS && lg_hist_bucket_low(b) <= values[i] &&
                  values[i] <= lg_hist_bucket_high(b),
              "hist bucket bounds", (int)i);
    }
    bool contiguous = true;
    for (size_t b = 1; b < LG_HIST_BUCKETS; b++) {
        contiguous &= lg_hist_bucket_low(b) == lg_hist_bucket_high(b - 1) + 1;
    }
    check(contiguous && lg_hist_bucket_high(LG_HIST_BUCKETS - 1) == ~0ull, "hist contiguous", 0);

    /* 1..1000 µs: quantiles within the 1/32 relative width of a bucket. */
    lg_hist_t *h = malloc(sizeof(*h));
    if (!h) {
        check(false, "hist alloc", 0);
        return;
    }
    lg_hist_init(h);
    check(lg_hist_quantile(h, 0.5) == 0, "hist empty", 0);
    for (uint64_t v = 1; v <= 1000; v++) {
        lg_hist_record(h, v * 1000);
    }
    static const struct {
        double q;
        uint64_t exact;
    } qs[] = {{0.5, 500000}, {0.9, 900000}, {0.99, 990000}, {1.0, 1000000}};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        uint64_t got = lg_hist_quantile(h, qs[i].q);
        check(got >= qs[i].exact && got <= qs[i].exact + qs[i].exact / 32, "hist quantile", (int)i);
    }
    check(h->total == 1000 && h->min == 1000 && h->max == 1000000 && lg_hist_mean(h) == 500500.0,
          "hist totals", 0);
    free(h);
}

/* Burns about ms milliseconds of CPU. */
static void burn_cpu(long ms) {
    struct timespec t0, t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    volatile uint64_t x = 1;
    do {
        for (int i = 0; i < 100000; i++) {
            x = x * 6364136223846793005ull + 1;
        }
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

/* A process tree's CPU (bench/scale.sh's PostgreSQL and Redis): a child's time counts while it
 * runs and, once it has ended and been waited for, still counts through the parent. */
static void test_proc_tree(void) {
    pid_t self = getpid();
    long own0 = lg_proc_cpu_ms(self), tree0 = lg_proc_tree_cpu_ms(self);
    check(own0 >= 0 && tree0 >= own0, "tree cpu covers own cpu", 0);
    int ready[2];
    if (pipe(ready) != 0) {
        check(false, "pipe", 0);
        return;
    }
    pid_t child = fork();
    if (child == 0) {
        burn_cpu(120);
        char c = 1;
        ssize_t w = write(ready[1], &c, 1);
        (void)w;
        pause(); /* killed by the parent */
        _exit(0);
    }
    char c = 0;
    ssize_t r = child > 0 ? read(ready[0], &c, 1) : -1;
    long alive = lg_proc_tree_cpu_ms(self), own1 = lg_proc_cpu_ms(self);
    check(r == 1 && alive - tree0 >= 100, "a live child's cpu counts", (int)(alive - tree0));
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    long ended = lg_proc_tree_cpu_ms(self);
    check(ended - tree0 >= 100 && lg_proc_cpu_ms(self) - own1 < 100,
          "an ended child's cpu counts through the parent", (int)(ended - tree0));
    close(ready[0]);
    close(ready[1]);
    check(lg_proc_tree_cpu_ms(1 << 30) == -1 && lg_proc_cpu_ms(1 << 30) == -1,
          "no such process", 0);
}

int lg_selftest(void) {
    passed = failed = 0;
    test_frame_parse();
    test_frame_encode();
    test_hist();
    test_proc_tree();
    printf("selftest: %d passed, %d failed\n", passed, failed);
    return failed;
}
