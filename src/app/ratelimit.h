/* Token buckets for the limits of PROTOCOL.md section 6. A bucket holds up to `capacity`
 * tokens and gains `capacity` tokens per `window_ms`; an action takes one. Pure, O(1). */
#ifndef APP_RATELIMIT_H
#define APP_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    double tokens;    /* tokens left */
    uint64_t last_ms; /* monotonic ms of the last refill; 0 = never used (full) */
} app_bucket_t;

/* Refills for the time since last_ms; true (and one token taken) if one was left. */
bool app_bucket_take(app_bucket_t *b, uint32_t capacity, uint32_t window_ms, uint64_t now_ms);
/* Whether a take would succeed, without taking. */
bool app_bucket_peek(app_bucket_t *b, uint32_t capacity, uint32_t window_ms, uint64_t now_ms);

#endif
