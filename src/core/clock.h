/* Clocks: a monotonic clock for timeouts and durations, the wall clock for timestamps, and
 * ISO-8601 UTC formatting with milliseconds (`2026-11-27T04:47:49.123Z`, PROTOCOL.md section
 * 8's createdAt). Any thread. */
#ifndef PL_CLOCK_H
#define PL_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

#define PL_ISO8601_LEN 25 /* "YYYY-MM-DDTHH:MM:SS.mmmZ" plus NUL */

/* Milliseconds on a monotonic clock with an arbitrary origin. */
uint64_t pl_mono_ms(void);
/* Nanoseconds on the same clock, for latency measurements. */
uint64_t pl_mono_ns(void);
/* Milliseconds since the Unix epoch. */
int64_t pl_wall_ms(void);
/* Formats ms since the epoch into out; returns out. */
char *pl_iso8601(int64_t ms, char out[PL_ISO8601_LEN]);
/* Parses exactly the format pl_iso8601 writes; false otherwise. */
bool pl_iso8601_parse(const char *s, int64_t *ms);

#endif
