/* Levelled key=value logging: see log.h. */
#include "core/log.h"

#include "core/clock.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static pl_log_level_t g_level = PL_LOG_INFO;
static const char *const g_names[] = {"debug", "info", "warn", "error", "off"};

void pl_log_set_level(pl_log_level_t level) {
    g_level = level;
}

pl_log_level_t pl_log_get_level(void) {
    return g_level;
}

int pl_log_level_parse(const char *s) {
    for (int i = 0; i <= PL_LOG_OFF; i++)
        if (strcmp(s, g_names[i]) == 0)
            return i;
    return -1;
}

void pl_log(pl_log_level_t level, const char *event, const char *fmt, ...) {
    if (level < g_level || level >= PL_LOG_OFF)
        return;
    char line[2048];
    char ts[PL_ISO8601_LEN];
    pl_iso8601(pl_wall_ms(), ts);
    int n = snprintf(line, sizeof line, "%s level=%s event=%s", ts, g_names[level], event);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (fmt && fmt[0] && len < sizeof line - 2) {
        line[len++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + len, sizeof line - len, fmt, ap);
        va_end(ap);
        if (m > 0)
            len += (size_t)m < sizeof line - len ? (size_t)m : sizeof line - len - 1;
    }
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

char *pl_log_quote(char *out, size_t n, const char *s, size_t len) {
    bool plain = len > 0;
    for (size_t i = 0; i < len && plain; i++)
        plain = s[i] > 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\' && s[i] != '=';
    size_t o = 0;
    if (plain) {
        size_t k = len < n - 1 ? len : n - 1;
        memcpy(out, s, k);
        out[k] = '\0';
        return out;
    }
    out[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[5];
        size_t k;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            k = 2;
        } else if (c < 0x20 || c >= 0x7f) {
            snprintf(tmp, sizeof tmp, "\\x%02x", c);
            k = 4;
        } else {
            tmp[0] = (char)c;
            k = 1;
        }
        if (o + k + 2 > n)
            break;
        memcpy(out + o, tmp, k);
        o += k;
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}
