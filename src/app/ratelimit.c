/* Token buckets: see ratelimit.h. */
#include "app/ratelimit.h"

static void refill(app_bucket_t *b, uint32_t capacity, uint32_t window_ms, uint64_t now) {
    if (b->last_ms == 0) {
        b->tokens = capacity;
        b->last_ms = now;
        return;
    }
    if (now > b->last_ms && window_ms > 0) {
        b->tokens += (double)(now - b->last_ms) * capacity / window_ms;
        if (b->tokens > capacity)
            b->tokens = capacity;
    }
    b->last_ms = now;
}

bool app_bucket_peek(app_bucket_t *b, uint32_t capacity, uint32_t window_ms, uint64_t now) {
    refill(b, capacity, window_ms, now);
    return b->tokens >= 1.0;
}

bool app_bucket_take(app_bucket_t *b, uint32_t capacity, uint32_t window_ms, uint64_t now) {
    if (!app_bucket_peek(b, capacity, window_ms, now))
        return false;
    b->tokens -= 1.0;
    return true;
}
