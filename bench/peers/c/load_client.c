/* load_client: the stand-alone C load client of the harness -- a command-line main() over the
 * native engine of `fastsock load` (fastsock/native/loadcore.c), so there is one C load
 * generator to maintain, not two.
 *
 *   load_client [--host H] (--port N | --unix PATH|@NAME) [--size BYTES] [--conns N]
 *               [--depth D] [--duration S] [--warmup S] [--no-verify]
 *   load_client --fds R,W [--messages] [--size BYTES] [--depth D] ...
 *
 * --fds: the IPC floor (fastsock/floor.py) -- no server, one already-connected channel
 * inherited from the parent: read echoes on fd R, write messages on fd W (R == W for a
 * socketpair; a pipe pair has two). Pipes are driven with read()/write(), sockets with
 * recv()/send(), exactly as the native engine does for `python -m fastsock.floor`.
 * --messages: every send is one message of SIZE bytes (seqpacket socketpairs keep
 * boundaries, so a send of several messages would arrive as one).
 *
 * Closed-loop echo: each connection keeps D messages of SIZE bytes in flight. Every echoed
 * byte is compared with the pattern it was sent from (byte i of connection c's stream is
 * pattern[(seed_c + i) % PERIOD], PERIOD a prime), unless --no-verify: then the client does
 * the bare minimum per message (no compare, no clock read), the baseline that tells what
 * verification and latency timestamps cost `fastsock load --engine native`. This program
 * records no latencies (fastsock load does, with the same loop).
 *
 * Prints one JSON object on stdout. Messages completed during the warm-up are not counted;
 * CPU times are getrusage(RUSAGE_SELF) over the measured window only. Each error sample goes
 * to stderr as one line. Exit status: 0 if all went well, 1 on any error (refused, reset,
 * early close, mismatch), 2 on bad options.
 */
#include "common.h"

#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "loadcore.h"

#define PERIOD 65521          /* largest prime below 2^16 */
#define SPAN (1024 * 1024)    /* longest send or check (loadcore moves at most 256 KiB) */

static unsigned char pattern[PERIOD + SPAN]; /* pattern[i] == pattern[i % PERIOD] */

static void fill_pattern(void)
{
    uint32_t x = 2463534242u; /* xorshift32: cheap, and no byte value repeats in a short cycle */
    for (size_t i = 0; i < PERIOD; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        pattern[i] = (unsigned char)(x >> 24);
    }
    for (size_t i = PERIOD; i < sizeof(pattern); i++)
        pattern[i] = pattern[i - PERIOD];
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

/* End the connections as a well-behaved client does (fastsock.load.conn.close_cleanly): shut
 * our write side, read and drop what the server still sends until its EOF or the deadline,
 * then close. Closing with the echoes in flight unread would make the kernel send a RST and the
 * server count a reset for every connection of a normal run. Nothing read here is measured. */
static void close_cleanly(int *fds, long n, double seconds)
{
    struct pollfd *pfds = calloc((size_t)n, sizeof(*pfds));
    long open = 0;
    for (long i = 0; i < n; i++) {
        if (pfds && shutdown(fds[i], SHUT_WR) == 0)
            pfds[open++] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        else
            close(fds[i]); /* already reset (or no memory to wait): close is all that is left */
    }
    static unsigned char sink[65536];
    int64_t deadline = lc_now_ns() + (int64_t)(seconds * 1e9);
    while (open > 0) {
        int64_t left_ms = (deadline - lc_now_ns()) / 1000000;
        if (left_ms <= 0 || poll(pfds, (nfds_t)open, (int)left_ms) <= 0)
            break;
        for (long i = 0; i < open; i++) {
            if (!pfds[i].revents)
                continue;
            ssize_t got = recv(pfds[i].fd, sink, sizeof(sink), MSG_DONTWAIT);
            if (got > 0 || (got < 0 && (errno == EAGAIN || errno == EINTR)))
                continue;
            close(pfds[i].fd); /* EOF or an error: done with this one */
            pfds[i--] = pfds[--open];
        }
    }
    for (long i = 0; i < open; i++)
        close(pfds[i].fd);
    free(pfds);
}

/* --fds R,W: two inherited descriptors, made non-blocking; returns whether they are pipes
 * (read/write) rather than sockets (recv/send). */
static int inherited_pair(const char *text, int *rfd, int *wfd)
{
    char *comma = strchr(text, ',');
    if (!comma)
        die(2, "--fds takes R,W (two file descriptors), not '%s'", text);
    *comma = '\0';
    *rfd = (int)parse_long("--fds", text, 0, INT_MAX);
    *wfd = (int)parse_long("--fds", comma + 1, 0, INT_MAX);
    struct stat st[2];
    int fds[2] = {*rfd, *wfd};
    for (int i = 0; i < 2; i++) {
        int flags = fcntl(fds[i], F_GETFL);
        if (flags < 0 || fstat(fds[i], &st[i]) < 0)
            die(2, "--fds: descriptor %d is not open", fds[i]);
        if (!S_ISFIFO(st[i].st_mode) && !S_ISSOCK(st[i].st_mode))
            die(2, "--fds: descriptor %d is neither a pipe nor a socket", fds[i]);
        fcntl(fds[i], F_SETFL, flags | O_NONBLOCK);
    }
    if (S_ISFIFO(st[0].st_mode) != S_ISFIFO(st[1].st_mode))
        die(2, "--fds: give two pipes or one socket twice, not a mix");
    signal(SIGPIPE, SIG_IGN); /* a dead peer is EPIPE, counted, not a silent death */
    return S_ISFIFO(st[0].st_mode);
}

__attribute__((noreturn)) static void usage(int status)
{
    fprintf(status ? stderr : stdout,
            "usage: %s [--host H] (--port N | --unix PATH|@NAME) [--size BYTES] [--conns N]\n"
            "       [--depth D] [--duration S] [--warmup S] [--no-verify]\n"
            "       %s --fds R,W [--messages] [--size BYTES] [--depth D] ...\n"
            "defaults: --host 127.0.0.1 --size 64 --conns 1 --depth 1 --duration 5 --warmup 1\n",
            prog_name, prog_name);
    exit(status);
}

int main(int argc, char **argv)
{
    prog_name = "load_client";
    struct endpoint_options target = ENDPOINT_OPTIONS_INIT;
    const char *fd_pair = NULL;
    int messages = 0;
    long conns = 1;
    double duration = 5.0, warmup = 1.0;
    uint64_t size = 64, depth = 1;
    int verify = 1;
    static const struct option options[] = {
        ENDPOINT_LONG_OPTIONS,
        {"size", required_argument, NULL, 's'},     {"conns", required_argument, NULL, 'c'},
        {"depth", required_argument, NULL, 'd'},    {"duration", required_argument, NULL, 't'},
        {"warmup", required_argument, NULL, 'w'},   {"no-verify", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'H'},           {"fds", required_argument, NULL, 'f'},
        {"messages", no_argument, NULL, 'm'},       {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = next_option(argc, argv, options, &target)) != -1) {
        switch (opt) {
        case 's': size = (uint64_t)parse_long("--size", optarg, 1, 1L << 30); break;
        case 'c': conns = parse_long("--conns", optarg, 1, 100000); break;
        case 'd': depth = (uint64_t)parse_long("--depth", optarg, 1, 1 << 20); break;
        case 't': duration = parse_seconds("--duration", optarg, 0.001); break;
        case 'w': warmup = parse_seconds("--warmup", optarg, 0.0); break;
        case 'n': verify = 0; break;
        case 'f': fd_pair = optarg; break;
        case 'm': messages = 1; break;
        case 'H': usage(0);
        default: die_bad_option(argv);
        }
    }
    refuse_operands(argc, argv);
    struct endpoint ep;
    char text[256];
    int rfd = -1, wfd = -1, pipes = 0;
    if (fd_pair) {
        if (target.port || target.unix_path || conns != 1)
            die(2, "--fds is one channel: not with --port, --unix or --conns");
        pipes = inherited_pair(fd_pair, &rfd, &wfd);
        snprintf(text, sizeof(text), "fds:%d,%d", rfd, wfd);
    } else {
        endpoint_from_options(&ep, &target);
        if (ep.family != AF_UNIX && ep.port == 0)
            die(2, "--port 0 names no server; give the port the server printed");
        endpoint_format(&ep, text, sizeof(text));
    }

    fill_pattern();
    int *fds = calloc((size_t)conns, sizeof(*fds));
    struct lc_result *r = calloc(1, sizeof(*r));
    uint64_t *conn_counts = calloc((size_t)conns, sizeof(*conn_counts));
    if (!fds || !r || !conn_counts)
        die(1, "out of memory for %ld connections", conns);
    for (long i = 0; i < conns && !fd_pair; i++)
        fds[i] = connect_one(&ep, text);
    if (fd_pair)
        fds[0] = rfd;

    int64_t start = lc_now_ns();
    struct lc_params p = {
        .workload = LC_ECHO,
        .size = size,
        .depth = depth,
        .t0_ns = start,
        .warm_end_ns = start + (int64_t)(warmup * 1e9),
        .end_ns = start + (int64_t)(warmup * 1e9) + (int64_t)(duration * 1e9),
        .pattern = pattern,
        .period = PERIOD,
        .span = SPAN,
        .verify = verify,
        .wfds = fd_pair ? &wfd : NULL,
        .fd_io = pipes,
        .tx_chunk = messages ? size : 0,
        .conn_counts = conn_counts,
    };
    if (lc_run(&p, fds, (int)conns, r) < 0)
        die(1, "%s", r->fatal);
    double total_s = (double)(lc_now_ns() - start) / 1e9;

    uint64_t errors = 0;
    for (int i = 0; i < LC_NERR; i++)
        errors += r->errors[i];
    for (int i = 0; i < r->nsamples; i++)
        fprintf(stderr, "%s: %s\n", prog_name, r->samples[i]);
    char endpoint_json[1024];
    json_escape(text, endpoint_json, sizeof(endpoint_json));
    double elapsed = (double)(r->window_end_ns - r->window_start_ns) / 1e9;
    double rate = elapsed > 0 ? (double)r->completed / elapsed : 0.0;
    /* mb_per_s with 6 decimals: 3 lost more than 0.1% below ~8k msgs/s of 64 B (a test
     * compares it with msgs_per_s to 1e-3, which a busy machine can bring that low). */
    printf("{\"msgs_per_s\": %.1f, \"mb_per_s\": %.6f, \"messages\": %llu, "
           "\"elapsed_s\": %.6f, \"errors\": %llu, \"conns\": %ld, \"size\": %llu, "
           "\"depth\": %llu, \"duration_s\": %g, \"warmup_s\": %g, "
           "\"cpu_user_s\": %.6f, \"cpu_sys_s\": %.6f, \"transport\": \"%s\", "
           "\"endpoint\": \"%s\", \"client\": \"c-load-client\", \"verify\": %s, "
           "\"total_messages\": %llu, \"total_s\": %.6f, \"conn_messages\": [",
           rate, rate * (double)size / 1e6, (unsigned long long)r->completed, elapsed,
           (unsigned long long)errors, conns, (unsigned long long)size,
           (unsigned long long)depth, duration, warmup, r->cpu_user_s, r->cpu_sys_s,
           fd_pair ? (pipes ? "pipe" : "socketpair") : endpoint_transport(&ep), endpoint_json, verify ? "true" : "false",
           (unsigned long long)r->completed_total, total_s);
    /* Messages per connection in the window: fastsock.load.fairness.per_connection turns
     * them into min/p50/max/Jain's index (one implementation of the arithmetic, in Python). */
    for (long i = 0; i < conns; i++)
        printf("%s%llu", i ? ", " : "", (unsigned long long)conn_counts[i]);
    printf("]}\n");
    fflush(stdout);
    if (fd_pair) {
        close(rfd);
        if (wfd != rfd)
            close(wfd);
    } else {
        close_cleanly(fds, conns, 2.0);
    }
    free(fds);
    free(r);
    free(conn_counts);
    return errors ? 1 : 0;
}
