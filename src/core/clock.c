/* Clocks and ISO-8601 timestamps: see clock.h. */
#include "core/clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

uint64_t pl_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t pl_mono_ms(void) {
    return pl_mono_ns() / 1000000u;
}

int64_t pl_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *pl_iso8601(int64_t ms, char out[PL_ISO8601_LEN]) {
    time_t secs = (time_t)(ms / 1000);
    int milli = (int)(ms % 1000);
    if (milli < 0) {
        milli += 1000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* "YYYY-MM-DDTHH:MM:SS.mmmZ", written digit by digit (this runs for every message sent). */
    unsigned y = (unsigned)(tm.tm_year + 1900) % 10000u;
    unsigned f[6] = {(unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
                     (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u,
                     (unsigned)tm.tm_sec % 100u, 0};
    static const char sep[5] = {'-', 'T', ':', ':', '.'};
    char *p = out;
    *p++ = (char)('0' + y / 1000u);
    *p++ = (char)('0' + y / 100u % 10u);
    *p++ = (char)('0' + y / 10u % 10u);
    *p++ = (char)('0' + y % 10u);
    *p++ = '-';
    for (int i = 0; i < 5; i++) {
        *p++ = (char)('0' + f[i] / 10u);
        *p++ = (char)('0' + f[i] % 10u);
        *p++ = sep[i];
    }
    unsigned m = (unsigned)milli % 1000u;
    *p++ = (char)('0' + m / 100u);
    *p++ = (char)('0' + m / 10u % 10u);
    *p++ = (char)('0' + m % 10u);
    *p++ = 'Z';
    *p = '\0';
    return out;
}

bool pl_iso8601_parse(const char *s, int64_t *ms) {
    if (strlen(s) != PL_ISO8601_LEN - 1)
        return false;
    int y, mo, d, h, mi, se, mil;
    char z;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &se, &mil, &z) != 8 ||
        z != 'Z')
        return false;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    time_t t = timegm(&tm);
    int64_t v = (int64_t)t * 1000 + mil;
    /* Exactly the canonical form: no signs, spaces or out-of-range fields (timegm would
     * normalise 32 January into 1 February). */
    char back[PL_ISO8601_LEN];
    if (strcmp(pl_iso8601(v, back), s) != 0)
        return false;
    *ms = v;
    return true;
}
