/* Measurement helpers of the load client: a latency histogram with logarithmic buckets (in the
 * manner of HdrHistogram: 32 linear sub-buckets per power of two, so any recorded value is
 * reported within about 3 %), readings of a process's memory and CPU time from /proc, the
 * kernel's TCP socket counters, and a writer for the one-line JSON results that bench/run.sh
 * reads. Threads: a histogram or JSON line belongs to one thread; the /proc readers may be
 * called from any. */
#ifndef LG_STATS_H
#define LG_STATS_H

#include "core/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LG_HIST_SUB_BITS 5
#define LG_HIST_SUB (1u << LG_HIST_SUB_BITS)
/* Buckets cover every uint64_t value: the largest index is (63 - SUB_BITS) * SUB + 2 * SUB - 1. */
#define LG_HIST_BUCKETS ((65 - LG_HIST_SUB_BITS) * LG_HIST_SUB)

typedef struct {
    uint64_t counts[LG_HIST_BUCKETS]; /* values recorded per bucket */
    uint64_t total;                   /* values recorded */
    uint64_t min, max;                /* exact extremes (min is UINT64_MAX while empty) */
    long double sum;                  /* for the mean */
} lg_hist_t;

void lg_hist_init(lg_hist_t *h);
void lg_hist_record(lg_hist_t *h, uint64_t v);
/* Bucket of v, and the smallest and largest value that fall into bucket i. */
size_t lg_hist_index(uint64_t v);
uint64_t lg_hist_bucket_low(size_t i);
uint64_t lg_hist_bucket_high(size_t i);
/* The value at quantile q in [0, 1]: the upper bound of the bucket that holds the
 * ceil(q * total)-th smallest value, clamped to the exact max (0 when empty). */
uint64_t lg_hist_quantile(const lg_hist_t *h, double q);
double lg_hist_mean(const lg_hist_t *h);

/* Resident set size of process pid in KiB (VmRSS of /proc/<pid>/status), or -1. */
long lg_proc_rss_kib(pid_t pid);
/* User + system CPU time of process pid in milliseconds (/proc/<pid>/stat), or -1. */
long lg_proc_cpu_ms(pid_t pid);
/* CPU time of process pid and of its children (user + system, milliseconds): its own, that of
 * its children which ended (and were waited for), and that of its children alive now (found
 * by scanning /proc). The difference of two readings is the whole tree's CPU in between, also
 * when children come and go (PostgreSQL's connection processes), as long as pid lives. -1 if
 * pid is unreadable. */
long lg_proc_tree_cpu_ms(pid_t pid);
/* The calling process's own user + system CPU time in milliseconds. */
long lg_self_cpu_ms(void);
/* CPU time the whole machine was busy (user, nice, system, irq and softirq time of
 * /proc/stat's first line, summed over every core), and the irq + softirq part of it alone,
 * in milliseconds since boot. Loopback TCP delivery runs in soft interrupts, which the kernel
 * charges partly to the process that was running and partly to no process, so busy time minus
 * the server's and the client's CPU is "other work", an upper bound on what other processes
 * took. 0, or -1 if unreadable. */
int lg_machine_cpu_ms(long *busy_ms, long *softirq_ms);

typedef struct {
    long inuse;     /* TCP sockets in use */
    long timewait;  /* sockets in TIME_WAIT */
    long mem_pages; /* pages of kernel memory held by TCP socket buffers */
} lg_sockstat_t;
/* Reads the TCP line of /proc/net/sockstat; 0 or -1. */
int lg_sockstat_read(lg_sockstat_t *s);

/* A one-line JSON object of results: lg_json_begin, then fields, then lg_json_end, which
 * writes the line (with a newline) to stdout and flushes it. Keys are written as given (plain
 * ASCII); string values are escaped (quotes, backslashes, and bytes outside printable ASCII
 * as \u00XX). */
typedef struct {
    pl_buf_t b; /* the line being built */
    int fields; /* fields written so far */
} lg_json_t;

void lg_json_begin(lg_json_t *j);
void lg_json_str(lg_json_t *j, const char *key, const char *value);
void lg_json_int(lg_json_t *j, const char *key, int64_t value);
void lg_json_num(lg_json_t *j, const char *key, double value);
void lg_json_end(lg_json_t *j);

#endif
