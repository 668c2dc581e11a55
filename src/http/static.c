/* In-memory static file server: see static.h. */
#include "http/static.h"

#include "core/log.h"
#include "http/query.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_TOTAL_BYTES (64u * 1024 * 1024)
#define MAX_FILE_BYTES (16u * 1024 * 1024)
#define MAX_FILES 10000
#define MAX_DEPTH 16

typedef struct {
    char *name;          /* path relative to the root, '/'-separated, no leading '/' */
    char *data;          /* file contents */
    size_t len;          /* bytes */
    const char *type;    /* Content-Type */
    char etag[40];       /* "\"<hex>\"" */
} file_t;

struct http_static {
    char *root;          /* real path of the root */
    file_t *files;       /* sorted by name */
    size_t n, cap;
    size_t total;        /* bytes loaded */
};

static const struct {
    const char *ext, *type;
} g_types[] = {
    {".js", "application/javascript; charset=utf-8"},
    {".mjs", "application/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".html", "text/html; charset=utf-8"},
    {".htm", "text/html; charset=utf-8"},
    {".json", "application/json; charset=utf-8"},
    {".map", "application/json; charset=utf-8"},
    {".txt", "text/plain; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},
    {".gif", "image/gif"},
    {".webp", "image/webp"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".woff", "font/woff"},
    {".mp3", "audio/mpeg"},
    {".wav", "audio/wav"},
};

static const char *type_of(const char *name) {
    const char *dot = strrchr(name, '.');
    const char *slash = strrchr(name, '/');
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < sizeof g_types / sizeof g_types[0]; i++)
            if (!strcasecmp(dot, g_types[i].ext))
                return g_types[i].type;
    return "application/octet-stream";
}

static bool inside_root(const http_static_t *st, const char *real) {
    size_t rl = strlen(st->root);
    return strncmp(real, st->root, rl) == 0 && (real[rl] == '/' || real[rl] == '\0');
}

static void load_file(http_static_t *st, const char *path, const char *rel) {
    if (st->n >= MAX_FILES) {
        pl_log_warn("static.skipped", "file=%s reason=too_many_files", rel);
        return;
    }
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode) || (size_t)sb.st_size > MAX_FILE_BYTES ||
        st->total + (size_t)sb.st_size > MAX_TOTAL_BYTES) {
        pl_log_warn("static.skipped", "file=%s reason=size_or_type", rel);
        fclose(f);
        return;
    }
    size_t len = (size_t)sb.st_size;
    char *data = pl_xmalloc(len ? len : 1);
    if (len && fread(data, 1, len, f) != len) {
        free(data);
        fclose(f);
        return;
    }
    fclose(f);
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 32;
        file_t *nf = realloc(st->files, st->cap * sizeof *nf);
        if (!nf)
            abort();
        st->files = nf;
    }
    file_t *fl = &st->files[st->n++];
    fl->name = pl_xstrdup(rel);
    fl->data = data;
    fl->len = len;
    fl->type = type_of(rel);
    unsigned char h[8];
    crypto_generichash(h, sizeof h, (const unsigned char *)data, len, NULL, 0);
    char hex[17];
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    snprintf(fl->etag, sizeof fl->etag, "\"%s\"", hex);
    st->total += len;
}

static void scan(http_static_t *st, const char *dir, const char *rel, int depth) {
    if (depth > MAX_DEPTH)
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[PATH_MAX], childrel[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path ||
            snprintf(childrel, sizeof childrel, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name) >=
                (int)sizeof childrel)
            continue;
        char real[PATH_MAX];
        if (!realpath(path, real))
            continue;
        if (!inside_root(st, real)) {
            pl_log_warn("static.skipped", "file=%s reason=link_outside_root", childrel);
            continue;
        }
        struct stat sb;
        if (stat(real, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode))
            scan(st, real, childrel, depth + 1);
        else if (S_ISREG(sb.st_mode))
            load_file(st, real, childrel);
    }
    closedir(d);
}

static int cmp_file(const void *a, const void *b) {
    return strcmp(((const file_t *)a)->name, ((const file_t *)b)->name);
}

http_static_t *http_static_new(const char *root) {
    http_static_t *st = pl_xcalloc(1, sizeof *st);
    char real[PATH_MAX];
    if (!realpath(root, real)) {
        pl_log_warn("static.no_root", "root=%s err=%s", root, strerror(errno));
        st->root = pl_xstrdup("/nonexistent");
        return st;
    }
    st->root = pl_xstrdup(real);
    scan(st, real, "", 0);
    if (st->n)
        qsort(st->files, st->n, sizeof *st->files, cmp_file);
    pl_log_info("static.loaded", "root=%s files=%zu bytes=%zu", st->root, st->n, st->total);
    return st;
}

void http_static_free(http_static_t *st) {
    if (!st)
        return;
    for (size_t i = 0; i < st->n; i++) {
        free(st->files[i].name);
        free(st->files[i].data);
    }
    free(st->files);
    free(st->root);
    free(st);
}

size_t http_static_count(const http_static_t *st) {
    return st->n;
}

static const file_t *find(const http_static_t *st, const char *name) {
    file_t key = {.name = (char *)name};
    return st->n ? bsearch(&key, st->files, st->n, sizeof *st->files, cmp_file) : NULL;
}

/* Whether name (decoded, relative) is acceptable: no empty, "." or ".." segments, no
 * backslashes. A trailing '/' is allowed (directory index). */
static bool name_ok(const char *name) {
    if (strchr(name, '\\'))
        return false;
    const char *p = name;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if ((n == 0 && slash) || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        if (!slash)
            break;
        p = slash + 1;
    }
    return true;
}

static bool etag_matches(const pl_slice_t *inm, const char *etag) {
    /* If-None-Match: a list of entity tags, or "*". Weak comparison (RFC 9110 13.1.2). */
    if (!inm)
        return false;
    size_t el = strlen(etag);
    const char *p = inm->ptr, *end = inm->ptr + inm->len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ','))
            p++;
        if (p < end && *p == '*')
            return true;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/')
            p += 2;
        if ((size_t)(end - p) >= el && memcmp(p, etag, el) == 0)
            return true;
        while (p < end && *p != ',')
            p++;
    }
    return false;
}

void http_static_handler(http_request_t *req, void *ud) {
    http_static_t *st = ud;
    pl_buf_t name;
    pl_buf_init(&name, 4096);
    pl_slice_t path = req->path;
    if (path.len == 0 || path.ptr[0] != '/') {
        http_respond_error(req, 400, "Bad request target");
        goto out;
    }
    int rc = http_percent_decode(&name, pl_slice(path.ptr + 1, path.len - 1), false);
    if (rc == PL_ETOOBIG) {
        http_respond_error(req, 404, "Not found");
        goto out;
    }
    if (rc || pl_buf_append(&name, "", 1) || memchr(name.data, '\0', name.len - 1)) {
        http_respond_error(req, 400, "Bad request target");
        goto out;
    }
    if (!name_ok(name.data)) {
        http_respond_error(req, 404, "Not found");
        goto out;
    }
    const file_t *f;
    if (name.len == 1 || name.data[name.len - 2] == '/') {
        name.len--;
        if (pl_buf_append(&name, "index.html", 11)) {
            http_respond_error(req, 404, "Not found");
            goto out;
        }
        f = find(st, name.data);
    } else {
        f = find(st, name.data);
        if (!f) {
            /* A directory asked for without its slash: redirect when it has an index. */
            size_t base = name.len - 1;
            name.len--;
            if (pl_buf_append(&name, "/index.html", 12) == 0 && find(st, name.data)) {
                char loc[4200];
                snprintf(loc, sizeof loc, "/%.*s/", (int)(base), name.data);
                http_response_header(req, "Location", loc);
                http_respond(req, 301, "text/plain; charset=utf-8", "", 0);
                goto out;
            }
        }
    }
    if (!f) {
        http_respond_error(req, 404, "Not found");
        goto out;
    }
    if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
        http_response_header(req, "Allow", "GET, HEAD");
        http_respond_error(req, 405, "Method not allowed");
        goto out;
    }
    http_response_header(req, "ETag", f->etag);
    http_response_header(req, "Cache-Control", strncmp(f->type, "text/html", 9) == 0
                                                   ? "no-cache"
                                                   : "public, max-age=300");
    http_response_header(req, "X-Content-Type-Options", "nosniff");
    if (etag_matches(http_request_header(req, "if-none-match"), f->etag)) {
        http_respond(req, 304, NULL, NULL, 0);
        goto out;
    }
    http_respond(req, 200, f->type, f->data, f->len);
out:
    pl_buf_dispose(&name);
}
