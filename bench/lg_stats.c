/* Histogram, /proc readings and JSON result lines of the load client: see lg_stats.h. */
#include "lg_stats.h"

#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

void lg_hist_init(lg_hist_t *h) {
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

/* Values below 2 * SUB have their own bucket; above, bucket e * SUB + (v >> e) where e is the
 * number of low bits dropped so that v >> e falls in [SUB, 2 * SUB). */
size_t lg_hist_index(uint64_t v) {
    if (v < 2 * (uint64_t)LG_HIST_SUB) {
        return (size_t)v;
    }
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned e = msb - LG_HIST_SUB_BITS;
    return (size_t)e * LG_HIST_SUB + (size_t)(v >> e);
}

uint64_t lg_hist_bucket_low(size_t i) {
    if (i < 2 * LG_HIST_SUB) {
        return i;
    }
    unsigned e = (unsigned)(i / LG_HIST_SUB) - 1u;
    return (uint64_t)(i - (size_t)e * LG_HIST_SUB) << e;
}

uint64_t lg_hist_bucket_high(size_t i) {
    if (i < 2 * LG_HIST_SUB) {
        return i;
    }
    unsigned e = (unsigned)(i / LG_HIST_SUB) - 1u;
    return lg_hist_bucket_low(i) + ((1ull << e) - 1u);
}

void lg_hist_record(lg_hist_t *h, uint64_t v) {
    h->counts[lg_hist_index(v)]++;
    h->total++;
    h->sum += (long double)v;
    if (v < h->min) {
        h->min = v;
    }
    if (v > h->max) {
        h->max = v;
    }
}

uint64_t lg_hist_quantile(const lg_hist_t *h, double q) {
    if (h->total == 0) {
        return 0;
    }
    if (q <= 0) {
        return h->min;
    }
    double want_d = ceil(q * (double)h->total);
    uint64_t want = want_d < 1 ? 1 : (uint64_t)want_d;
    if (want > h->total) {
        want = h->total;
    }
    uint64_t seen = 0;
    for (size_t i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= want) {
            uint64_t hi = lg_hist_bucket_high(i);
            return hi > h->max ? h->max : hi;
        }
    }
    return h->max;
}

double lg_hist_mean(const lg_hist_t *h) {
    return h->total ? (double)(h->sum / (long double)h->total) : 0.0;
}

/* Reads a small /proc file whole into buf (NUL-terminated); returns its length or -1. */
static long read_small_file(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (long)n;
}

long lg_proc_rss_kib(pid_t pid) {
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    if (read_small_file(path, buf, sizeof(buf)) < 0) {
        return -1;
    }
    const char *p = strstr(buf, "\nVmRSS:");
    if (!p) {
        return -1;
    }
    return strtol(p + 7, NULL, 10);
}

/* Fields of /proc/<pid>/stat, in clock ticks: utime, stime, cutime, cstime (the last two: the
 * children that have ended and been waited for), and the parent's pid. 0 or -1. */
typedef struct {
    long ppid;
    unsigned long long ut, st, cut, cst;
} proc_stat_t;

static int read_proc_stat(pid_t pid, proc_stat_t *ps) {
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    if (read_small_file(path, buf, sizeof(buf)) < 0) {
        return -1;
    }
    /* The command name is in parentheses and may hold spaces: fields restart after the last
     * ')'. ppid is field 4; utime, stime, cutime and cstime are fields 14 to 17. */
    const char *p = strrchr(buf, ')');
    if (!p) {
        return -1;
    }
    p++;
    *ps = (proc_stat_t){0};
    for (int field = 3; field <= 17 && *p; field++) {
        while (*p == ' ') {
            p++;
        }
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (field == 4) {
            ps->ppid = (long)v;
        } else if (field == 14) {
            ps->ut = v;
        } else if (field == 15) {
            ps->st = v;
        } else if (field == 16) {
            ps->cut = v;
        } else if (field == 17) {
            ps->cst = v;
        }
        p = end;
        while (*p && *p != ' ') {
            p++;
        }
    }
    return 0;
}

static long ticks_to_ms(unsigned long long ticks) {
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0) {
        hz = 100;
    }
    return (long)(ticks * 1000ull / (unsigned long long)hz);
}

long lg_proc_cpu_ms(pid_t pid) {
    proc_stat_t ps;
    if (read_proc_stat(pid, &ps) != 0) {
        return -1;
    }
    return ticks_to_ms(ps.ut + ps.st);
}

long lg_proc_tree_cpu_ms(pid_t pid) {
    proc_stat_t ps;
    if (read_proc_stat(pid, &ps) != 0) {
        return -1;
    }
    unsigned long long ticks = ps.ut + ps.st + ps.cut + ps.cst;
    DIR *d = opendir("/proc");
    if (!d) {
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long child = strtol(e->d_name, &end, 10);
        proc_stat_t cs;
        if (*end == '\0' && child > 0 && child != (long)pid &&
            read_proc_stat((pid_t)child, &cs) == 0 && cs.ppid == (long)pid) {
            ticks += cs.ut + cs.st + cs.cut + cs.cst;
        }
    }
    closedir(d);
    return ticks_to_ms(ticks);
}

long lg_self_cpu_ms(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
           (long)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

int lg_machine_cpu_ms(long *busy_ms, long *softirq_ms) {
    char buf[512];
    if (read_small_file("/proc/stat", buf, sizeof(buf)) < 0) {
        return -1;
    }
    unsigned long long user, nice, sys, idle, iowait, irq, softirq;
    if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle, &iowait,
               &irq, &softirq) != 7) {
        return -1;
    }
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0) {
        hz = 100;
    }
    *busy_ms = (long)((user + nice + sys + irq + softirq) * 1000ull / (unsigned long long)hz);
    *softirq_ms = (long)((irq + softirq) * 1000ull / (unsigned long long)hz);
    return 0;
}

int lg_sockstat_read(lg_sockstat_t *s) {
    char buf[2048];
    if (read_small_file("/proc/net/sockstat", buf, sizeof(buf)) < 0) {
        return -1;
    }
    const char *p = strstr(buf, "\nTCP:");
    if (!p || sscanf(p + 5, " inuse %ld orphan %*d tw %ld alloc %*d mem %ld", &s->inuse,
                     &s->timewait, &s->mem_pages) != 3) {
        return -1;
    }
    return 0;
}

static void json_key(lg_json_t *j, const char *key) {
    int rc = pl_buf_printf(&j->b, "%s\"%s\":", j->fields++ ? "," : "", key);
    if (rc != 0) {
        abort(); /* an unbounded buffer only fails when memory is gone */
    }
}

void lg_json_begin(lg_json_t *j) {
    pl_buf_init(&j->b, 0);
    j->fields = 0;
    if (pl_buf_append(&j->b, "{", 1) != 0) {
        abort();
    }
}

void lg_json_str(lg_json_t *j, const char *key, const char *value) {
    json_key(j, key);
    int rc = pl_buf_append(&j->b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)value; rc == 0 && *p; p++) {
        if (*p == '"' || *p == '\\') {
            rc = pl_buf_printf(&j->b, "\\%c", *p);
        } else if (*p < 0x20 || *p >= 0x7F) {
            rc = pl_buf_printf(&j->b, "\\u%04x", *p);
        } else {
            rc = pl_buf_append(&j->b, p, 1);
        }
    }
    if (rc != 0 || pl_buf_append(&j->b, "\"", 1) != 0) {
        abort();
    }
}

void lg_json_int(lg_json_t *j, const char *key, int64_t value) {
    json_key(j, key);
    if (pl_buf_printf(&j->b, "%" PRId64, value) != 0) {
        abort();
    }
}

void lg_json_num(lg_json_t *j, const char *key, double value) {
    json_key(j, key);
    int rc =
        isfinite(value) ? pl_buf_printf(&j->b, "%.6g", value) : pl_buf_append(&j->b, "null", 4);
    if (rc != 0) {
        abort();
    }
}

void lg_json_end(lg_json_t *j) {
    if (pl_buf_append(&j->b, "}\n", 2) != 0) {
        abort();
    }
    fwrite(j->b.data, 1, j->b.len, stdout);
    fflush(stdout);
    pl_buf_dispose(&j->b);
}
