/* load_client: the C closed-loop echo load generator, the measuring stick for `fastsock load`.
 *
 *   load_client [--host H] (--port N | --unix PATH|@NAME) [--size BYTES] [--conns N]
 *               [--depth D] [--duration S] [--warmup S]
 *
 * Each connection keeps D messages of SIZE bytes in flight: it may have sent at most
 * (completed + D) * SIZE bytes, and a message is complete when SIZE bytes of echo came back.
 * One thread, level-triggered epoll; EPOLLIN is always armed so the client reads while it
 * writes (a 1 MiB message never deadlocks against an echo server), EPOLLOUT only while a
 * send() could not take everything.
 *
 * Verification: byte i of connection c's stream is pattern[(phase_c + i) % PERIOD], PERIOD a
 * prime that divides no message size, so every echoed chunk is one memcmp against the pattern
 * and a lost, duplicated, reordered or crossed-over byte shows up as a mismatch.
 *
 * Prints one JSON object on stdout. Messages completed during the warm-up are not counted;
 * CPU times are getrusage(RUSAGE_SELF) over the measured window only. Exit status: 0 if all
 * went well, 1 on any error (refused, reset, early close, mismatch), 2 on bad options.
 */
#include "common.h"

#include <fcntl.h>
#include <getopt.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536 /* most bytes moved per send/recv call */
#define PERIOD 65521 /* largest prime below 2^16 */
#define MAX_EVENTS 256

struct conn {
    int fd;
    int index;
    int want_out; /* EPOLLOUT is armed */
    uint64_t phase;
    uint64_t sent, received; /* stream bytes; received ones are verified */
};

static unsigned char pattern[PERIOD + CHUNK]; /* pattern[i] == pattern[i % PERIOD] */
static unsigned char scratch[CHUNK];
static int epfd;
static uint64_t size, depth;
static uint64_t completed; /* messages completed on all connections since the start */
static long errors;
static int alive;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void fill_pattern(void)
{
    uint32_t x = 2463534242u; /* xorshift32: cheap, and no byte value repeats in a short cycle */
    for (size_t i = 0; i < PERIOD; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        pattern[i] = (unsigned char)(x >> 24);
    }
    for (size_t i = PERIOD; i < sizeof(pattern); i++) /* CHUNK > PERIOD: wraps more than once */
        pattern[i] = pattern[i - PERIOD];
}

static void arm(struct conn *c, int want_out)
{
    if (c->want_out == want_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die(1, "epoll_ctl: %s", strerror(errno));
    c->want_out = want_out;
}

static void fail(struct conn *c, const char *what)
{
    if (c->fd < 0)
        return;
    fprintf(stderr, "%s: connection %d: %s\n", prog_name, c->index, what);
    errors++;
    alive--;
    close(c->fd);
    c->fd = -1;
}

/* Send until D messages are in flight or the socket is full. */
static void pump(struct conn *c)
{
    uint64_t limit = (c->received / size + depth) * size;
    while (c->sent < limit) {
        uint64_t left = limit - c->sent;
        size_t len = left < CHUNK ? (size_t)left : CHUNK;
        const unsigned char *from = pattern + (c->phase + c->sent) % PERIOD;
        ssize_t n = send(c->fd, from, len, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (uint64_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            arm(c, 1);
            return;
        } else {
            fail(c, n < 0 ? strerror(errno) : "send returned 0");
            return;
        }
    }
    arm(c, 0);
}

/* Read what the echo returned (one recv per event), verify it, count completed messages. */
static void drain(struct conn *c)
{
    ssize_t n = recv(c->fd, scratch, CHUNK, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n < 0) {
        fail(c, strerror(errno));
        return;
    }
    if (n == 0) {
        fail(c, "the server closed the connection");
        return;
    }
    if (c->received + (uint64_t)n > c->sent) {
        fail(c, "the server returned more bytes than were sent");
        return;
    }
    if (memcmp(scratch, pattern + (c->phase + c->received) % PERIOD, (size_t)n) != 0) {
        char what[128];
        size_t i = 0;
        while (scratch[i] == pattern[(c->phase + c->received + i) % PERIOD])
            i++;
        snprintf(what, sizeof(what), "echoed bytes differ from sent at stream offset %llu",
                 (unsigned long long)(c->received + i));
        fail(c, what);
        return;
    }
    uint64_t before = c->received / size;
    c->received += (uint64_t)n;
    completed += c->received / size - before;
}

static int connect_one(const struct endpoint *ep, const char *text)
{
    int fd = socket(ep->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die(1, "socket: %s", strerror(errno));
    /* A bounded connect: on Linux SO_SNDTIMEO also limits connect() (TCP and UNIX). */
    struct timeval limit = {.tv_sec = 5}, none = {0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
    if (connect(fd, (const struct sockaddr *)&ep->addr, ep->addrlen) < 0)
        die(1, "cannot connect to %s: %s", text, strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof(none));
    set_nodelay(fd, ep->family);
    if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
        die(1, "fcntl: %s", strerror(errno));
    return fd;
}

/* s as a JSON string body: a socket path may hold quotes, backslashes or control bytes. */
static void json_escape(const char *s, char *out, size_t size)
{
    size_t o = 0;
    for (; *s && o + 7 < size; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            o += (size_t)snprintf(out + o, size - o, "\\%c", ch);
        else if (ch < 0x20)
            o += (size_t)snprintf(out + o, size - o, "\\u%04x", ch);
        else
            out[o++] = (char)ch;
    }
    out[o] = '\0';
}

__attribute__((noreturn)) static void usage(int status)
{
    fprintf(status ? stderr : stdout,
            "usage: %s [--host H] (--port N | --unix PATH|@NAME) [--size BYTES] [--conns N]\n"
            "       [--depth D] [--duration S] [--warmup S]\n"
            "defaults: --host 127.0.0.1 --size 64 --conns 1 --depth 1 --duration 5 --warmup 1\n",
            prog_name);
    exit(status);
}

int main(int argc, char **argv)
{
    prog_name = "load_client";
    const char *host = "127.0.0.1", *port = NULL, *unix_path = NULL;
    long conns = 1;
    double duration = 5.0, warmup = 1.0;
    size = 64;
    depth = 1;
    static const struct option options[] = {
        {"host", required_argument, NULL, 'h'},     {"port", required_argument, NULL, 'p'},
        {"unix", required_argument, NULL, 'u'},     {"size", required_argument, NULL, 's'},
        {"conns", required_argument, NULL, 'c'},    {"depth", required_argument, NULL, 'd'},
        {"duration", required_argument, NULL, 't'}, {"warmup", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'H'},           {NULL, 0, NULL, 0},
    };
    int opt;
    opterr = 0; /* we print our own one-line error */
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = optarg; break;
        case 'u': unix_path = optarg; break;
        case 's': size = (uint64_t)parse_long("--size", optarg, 1, 1L << 30); break;
        case 'c': conns = parse_long("--conns", optarg, 1, 100000); break;
        case 'd': depth = (uint64_t)parse_long("--depth", optarg, 1, 1 << 20); break;
        case 't': duration = parse_seconds("--duration", optarg, 0.001); break;
        case 'w': warmup = parse_seconds("--warmup", optarg, 0.0); break;
        case 'H': usage(0);
        default: die(2, "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        die(2, "unexpected argument '%s' (see --help)", argv[optind]);
    struct endpoint ep;
    endpoint_from_options(&ep, host, port, unix_path);
    if (ep.family != AF_UNIX && ep.port == 0)
        die(2, "--port 0 names no server; give the port the server printed");
    char text[256];
    endpoint_format(&ep, text, sizeof(text));

    fill_pattern();
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die(1, "epoll_create1: %s", strerror(errno));
    struct conn *cs = calloc((size_t)conns, sizeof(*cs));
    if (!cs)
        die(1, "out of memory for %ld connections", conns);
    for (long i = 0; i < conns; i++) {
        struct conn *c = &cs[i];
        c->fd = connect_one(&ep, text);
        c->index = (int)i;
        /* Different phases: bytes crossing from one connection to another do not match. */
        c->phase = (uint64_t)i * 7919u % PERIOD;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            die(1, "epoll_ctl: %s", strerror(errno));
        alive++;
    }

    double start = now_s();
    double measure_from = start + warmup, end = measure_from + duration;
    int measuring = 0;
    uint64_t completed_at_start = 0;
    struct rusage ru0 = {0}, ru1;
    double t0 = start;
    if (warmup <= 0) {
        measuring = 1;
        getrusage(RUSAGE_SELF, &ru0);
        t0 = now_s();
    }
    for (long i = 0; i < conns; i++)
        if (cs[i].fd >= 0)
            pump(&cs[i]);

    struct epoll_event events[MAX_EVENTS];
    double t = now_s();
    while (t < end && alive > 0) {
        double boundary = measuring ? end : measure_from;
        int timeout_ms = (int)((boundary - t) * 1000.0) + 1; /* round up: never spin early */
        int n = epoll_wait(epfd, events, MAX_EVENTS, timeout_ms > 0 ? timeout_ms : 0);
        if (n < 0 && errno != EINTR)
            die(1, "epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            uint32_t ev = events[i].events;
            if (c->fd >= 0 && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                drain(c);
            if (c->fd >= 0)
                pump(c); /* after reading, the window may have room; or EPOLLOUT fired */
        }
        t = now_s();
        if (!measuring && t >= measure_from) {
            measuring = 1;
            completed_at_start = completed;
            getrusage(RUSAGE_SELF, &ru0);
            t0 = t;
        }
    }
    getrusage(RUSAGE_SELF, &ru1);
    double t1 = now_s();
    if (!measuring) /* every connection failed during the warm-up */
        t0 = t1;

    char endpoint_json[1024];
    json_escape(text, endpoint_json, sizeof(endpoint_json));
    uint64_t messages = measuring ? completed - completed_at_start : 0;
    /* Warm-up included: what a server's CPU time over the client's whole run paid for. */
    uint64_t total_messages = completed;
    double total_s = t1 - start;
    double elapsed = t1 - t0;
    double rate = elapsed > 0 ? (double)messages / elapsed : 0.0;
    printf("{\"msgs_per_s\": %.1f, \"mb_per_s\": %.3f, \"messages\": %llu, "
           "\"elapsed_s\": %.6f, \"errors\": %ld, \"conns\": %ld, \"size\": %llu, "
           "\"depth\": %llu, \"duration_s\": %g, \"warmup_s\": %g, "
           "\"cpu_user_s\": %.6f, \"cpu_sys_s\": %.6f, \"transport\": \"%s\", "
           "\"endpoint\": \"%s\", \"client\": \"c-load-client\", "
           "\"total_messages\": %llu, \"total_s\": %.6f}\n",
           rate, rate * (double)size / 1e6, (unsigned long long)messages, elapsed, errors, conns,
           (unsigned long long)size, (unsigned long long)depth, duration, warmup,
           tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime), tv_s(ru1.ru_stime) - tv_s(ru0.ru_stime),
           endpoint_transport(&ep), endpoint_json, (unsigned long long)total_messages, total_s);
    fflush(stdout);
    for (long i = 0; i < conns; i++)
        if (cs[i].fd >= 0)
            close(cs[i].fd);
    free(cs);
    return errors ? 1 : 0;
}
