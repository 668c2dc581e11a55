/* Test helper shared by the Redis backend tests (bus, presence, queue): starts a real
 * redis-server as a child process on a free loopback port in a temp directory (the flags of
 * MACHINE-NOTES.md, in the foreground so the test owns the pid), kills or stops it, restarts it
 * on the same port, and runs a loop until a condition holds or a deadline passes. Also a
 * blocking hiredis client for checks from the test (never from code under test). */
#ifndef TEST_REDIS_SERVER_H
#define TEST_REDIS_SERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

typedef struct {
    pid_t pid; /* 0 when not running */
    int port;
    char dir[128]; /* temp directory */
    char url[64];  /* redis://127.0.0.1:port */
} test_redis_t;

/* Every server started, so that a failed test (cmocka jumps out of it) leaves no process and no
 * directory behind. */
static struct {
    pid_t pid;
    char dir[128];
} g_test_redis_live[16];

static void test_redis_reap_all(void) {
    for (size_t i = 0; i < sizeof g_test_redis_live / sizeof g_test_redis_live[0]; i++) {
        if (g_test_redis_live[i].pid > 0) {
            kill(g_test_redis_live[i].pid, SIGKILL);
            waitpid(g_test_redis_live[i].pid, NULL, 0);
            g_test_redis_live[i].pid = 0;
        }
        if (g_test_redis_live[i].dir[0]) {
            char cmd[200];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_test_redis_live[i].dir);
            if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", g_test_redis_live[i].dir);
            g_test_redis_live[i].dir[0] = '\0';
        }
    }
}

#define TEST_REDIS_SLOTS (sizeof g_test_redis_live / sizeof g_test_redis_live[0])

/* A server started in dir (a restart reuses the slot of its directory). */
static inline void test_redis_track_start(pid_t pid, const char *dir) {
    static bool registered;
    if (!registered) {
        atexit(test_redis_reap_all);
        registered = true;
    }
    size_t slot = TEST_REDIS_SLOTS;
    for (size_t i = 0; i < TEST_REDIS_SLOTS; i++) {
        if (!strcmp(g_test_redis_live[i].dir, dir)) {
            slot = i;
            break;
        }
        if (slot == TEST_REDIS_SLOTS && !g_test_redis_live[i].dir[0])
            slot = i;
    }
    if (slot == TEST_REDIS_SLOTS)
        return;
    g_test_redis_live[slot].pid = pid;
    snprintf(g_test_redis_live[slot].dir, sizeof g_test_redis_live[slot].dir, "%s", dir);
}

/* The server in dir is gone (killed: the directory stays; stopped: forget both). */
static inline void test_redis_track_end(const char *dir, bool forget_dir) {
    for (size_t i = 0; i < TEST_REDIS_SLOTS; i++) {
        if (!strcmp(g_test_redis_live[i].dir, dir)) {
            g_test_redis_live[i].pid = 0;
            if (forget_dir)
                g_test_redis_live[i].dir[0] = '\0';
        }
    }
}

/* A port nobody listens on right now (bind to 0, read it, close). */
static inline int test_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("test_free_port");
        exit(1);
    }
    close(fd);
    return ntohs(a.sin_port);
}

static inline void test_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A blocking client for checks; NULL if Redis does not answer. */
static inline redisContext *test_redis_client(const test_redis_t *r) {
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    return c;
}

/* Starts redis-server on r->port (a free one when 0) and waits until it answers PING. */
static inline void test_redis_start(test_redis_t *r) {
    if (!r->port)
        r->port = test_free_port();
    if (!r->dir[0]) {
        snprintf(r->dir, sizeof r->dir, "/tmp/parley-test-redis-XXXXXX");
        if (!mkdtemp(r->dir)) {
            perror("mkdtemp");
            exit(1);
        }
    }
    snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d", r->port);
    char port[16], log[200];
    snprintf(port, sizeof port, "%d", r->port);
    snprintf(log, sizeof log, "%s/redis.log", r->dir);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        /* Dies with the test; does not hold the test's output pipes open. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execlp("redis-server", "redis-server", "--bind", "127.0.0.1", "--port", port, "--save", "",
               "--appendonly", "no", "--daemonize", "no", "--dir", r->dir, "--logfile", log,
               (char *)NULL);
        _exit(127);
    }
    r->pid = pid;
    test_redis_track_start(pid, r->dir);
    for (int i = 0; i < 500; i++) {
        redisContext *c = test_redis_client(r);
        if (c) {
            redisReply *rep = redisCommand(c, "PING");
            bool ok = rep && rep->type == REDIS_REPLY_STATUS;
            if (rep)
                freeReplyObject(rep);
            redisFree(c);
            if (ok)
                return;
        }
        test_sleep_ms(10);
    }
    fprintf(stderr, "redis-server did not start on port %d (see %s)\n", r->port, log);
    exit(1);
}

/* An outage: SIGKILL, reaped. */
static inline void test_redis_kill(test_redis_t *r) {
    if (!r->pid)
        return;
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    test_redis_track_end(r->dir, false); /* the directory stays for a restart */
    r->pid = 0;
}

/* Stops the server for good and removes its directory. */
static inline void test_redis_stop(test_redis_t *r) {
    if (r->pid) {
        kill(r->pid, SIGCONT);
        kill(r->pid, SIGTERM);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
    if (r->dir[0]) {
        test_redis_track_end(r->dir, true);
        char cmd[200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", r->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", r->dir);
        r->dir[0] = '\0';
    }
}

/* Runs one command on a blocking client; the caller frees the reply. */
static inline redisReply *test_redis_cmd(const test_redis_t *r, const char *fmt, ...) {
    redisContext *c = test_redis_client(r);
    if (!c)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return rep;
}

/* Integer answer of a command (TTL, EXISTS, XLEN...), or -1000 on any other answer. */
static inline long long test_redis_int(const test_redis_t *r, const char *fmt, ...) {
    redisContext *c = test_redis_client(r);
    if (!c)
        return -1000;
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    long long v = rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1000;
    if (rep)
        freeReplyObject(rep);
    return v;
}

/* Runs the loop until *flag becomes true or ms pass; returns *flag. */
static void test_deadline_cb(uv_timer_t *t) {
    *(bool *)t->data = true;
}

static inline bool test_run_until(uv_loop_t *loop, const volatile bool *flag, int ms) {
    uv_timer_t t;
    bool expired = false;
    uv_timer_init(loop, &t);
    t.data = &expired;
    uv_timer_start(&t, test_deadline_cb, (uint64_t)ms, 0);
    while (!*flag && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag;
}

/* Runs the loop for ms, whatever happens. */
static inline void test_run_for(uv_loop_t *loop, int ms) {
    bool never = false;
    test_run_until(loop, &never, ms);
}

/* Closes the loop after running it dry (for at most 5 s: a test that failed half-way may have
 * left objects open); fails the test if a handle stays open. */
static inline int test_loop_close(uv_loop_t *loop) {
    uint64_t until = uv_now(loop) + 5000;
    while (uv_loop_alive(loop) && uv_now(loop) < until) {
        uv_run(loop, UV_RUN_ONCE);
        uv_update_time(loop);
    }
    return uv_loop_close(loop);
}

#endif
