/* Levelled logging, one line per event: `<ISO-8601 UTC ms> level=<l> event=<name> k=v ...`.
 * Each line is written with a single write(2) to stderr, so lines from the store thread and the
 * loop thread never interleave. Values that may hold spaces or untrusted bytes go through
 * pl_log_quote(). Any thread may call these. */
#ifndef PL_LOG_H
#define PL_LOG_H

#include "core/buf.h"

typedef enum { PL_LOG_DEBUG = 0, PL_LOG_INFO, PL_LOG_WARN, PL_LOG_ERROR, PL_LOG_OFF } pl_log_level_t;

void pl_log_set_level(pl_log_level_t level);
pl_log_level_t pl_log_get_level(void);
/* Parses "debug", "info", "warn", "error", "off"; -1 if unknown. */
int pl_log_level_parse(const char *s);

/* fmt holds the key=value fields after the event name (may be ""). */
void pl_log(pl_log_level_t level, const char *event, const char *fmt, ...) PL_PRINTF(3, 4);

#define pl_log_debug(ev, ...) pl_log(PL_LOG_DEBUG, ev, __VA_ARGS__)
#define pl_log_info(ev, ...) pl_log(PL_LOG_INFO, ev, __VA_ARGS__)
#define pl_log_warn(ev, ...) pl_log(PL_LOG_WARN, ev, __VA_ARGS__)
#define pl_log_error(ev, ...) pl_log(PL_LOG_ERROR, ev, __VA_ARGS__)

/* Writes s as a log value into out (size n, >= 8): printable ASCII without spaces or quotes is
 * copied as is; anything else is double-quoted with \" \\ and \xNN escapes, truncated to fit.
 * Returns out. */
char *pl_log_quote(char *out, size_t n, const char *s, size_t len);

#endif
