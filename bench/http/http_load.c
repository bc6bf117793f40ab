/* http_load: a keep-alive HTTP/1.1 GET load client for TCP and UNIX sockets.
 *
 *   http_load [--host H] (--port N | --unix PATH) --path /FILE [--conns N] [--depth D]
 *             [--duration S] [--warmup S] [--length BYTES] [--checksum HEX]
 *             [--verify-every K]
 *   http_load --hash-file FILE        print FILE's checksum (what --checksum expects)
 *
 * Why it exists: wrk is the reference TCP client, but it cannot speak UNIX sockets; curl in a
 * loop or a Python client would measure themselves. bench/http/run.py runs this one against
 * fastsock and nginx alike, over both transports, and cross-checks it against wrk on TCP.
 *
 * Each connection keeps D GETs in flight (D > 1 pipelines). One thread, level-triggered epoll.
 * Responses are parsed just enough to stay in sync and to verify: the status must be 200, the
 * Content-Length must be --length, and every K-th body of each connection (the first one
 * always) is hashed and compared with --checksum. Bodies are read into one 256 KiB buffer.
 *
 * Prints one JSON object on stdout. Only responses completed after the warm-up count; body
 * bytes are counted as they arrive within the measured window; CPU time is getrusage() over
 * that window. Exit status: 0 ok, 1 if any error was counted, 2 on bad options.
 */
#include "common.h"

#include <fcntl.h>
#include <getopt.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK (256 * 1024)
#define HEAD_MAX 16384
#define MAX_EVENTS 256
#define MAX_ERRORS 1000 /* give up instead of reconnecting forever to a broken server */
#define LANES 4

/* -- the body checksum: 4 multiply-xor lanes over 64-bit words, order-dependent ----------- */
struct hasher {
    uint64_t lane[LANES];
    uint64_t words, bytes;
    unsigned char tail[8];
    unsigned ntail;
};

static const uint64_t MIX = 0x9E3779B97F4A7C15ULL; /* odd: the multiply is a bijection */

static void hash_init(struct hasher *h)
{
    memset(h, 0, sizeof(*h));
    for (int i = 0; i < LANES; i++)
        h->lane[i] = 0x243F6A8885A308D3ULL * (uint64_t)(i + 1);
}

static inline void hash_word(struct hasher *h, uint64_t w)
{
    uint64_t *lane = &h->lane[h->words++ & (LANES - 1)];
    *lane = (*lane ^ w) * MIX;
}

static void hash_update(struct hasher *h, const unsigned char *p, size_t n)
{
    uint64_t w;
    h->bytes += n;
    while (h->ntail && n) {
        h->tail[h->ntail++] = *p++;
        n--;
        if (h->ntail == 8) {
            memcpy(&w, h->tail, 8);
            hash_word(h, w);
            h->ntail = 0;
        }
    }
    while (n >= 8) {
        memcpy(&w, p, 8);
        hash_word(h, w);
        p += 8;
        n -= 8;
    }
    memcpy(h->tail, p, n);
    h->ntail = (unsigned)n;
}

static uint64_t splitmix(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static uint64_t hash_final(struct hasher *h)
{
    if (h->ntail) {
        uint64_t w = 0;
        memcpy(&w, h->tail, h->ntail);
        hash_word(h, w);
        h->ntail = 0;
    }
    uint64_t out = splitmix(h->bytes);
    for (int i = 0; i < LANES; i++)
        out = splitmix(out ^ h->lane[i]);
    return out;
}

static int hash_file(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        die(2, "cannot open %s: %s", path, strerror(errno));
    static unsigned char buf[1 << 20];
    struct hasher h;
    hash_init(&h);
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        hash_update(&h, buf, (size_t)n);
    if (n < 0)
        die(2, "cannot read %s: %s", path, strerror(errno));
    close(fd);
    printf("%016llx\n", (unsigned long long)hash_final(&h));
    return 0;
}

/* -- connections ----------------------------------------------------------------------------- */
struct conn {
    int fd;
    int index;
    int want_out;
    size_t out_len, out_off; /* requests not yet sent */
    char out[4096];
    size_t head_len; /* bytes of the response head gathered so far */
    char head[HEAD_MAX + 1];
    int in_body, status, verifying;
    uint64_t body_left, body_len;
    uint64_t responses;
    struct hasher h;
};

static struct endpoint ep;
static int epfd;
static char request[1024];
static size_t request_len;
static long depth = 1, verify_every = 1;
static long long want_length = -1;
static int have_checksum;
static uint64_t want_checksum;
static int measuring, running = 1;
static uint64_t done_responses, done_bytes, verified;
static long errors;
static unsigned char rbuf[READ_CHUNK];

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

static void error(struct conn *c, const char *what)
{
    if (errors < 5)
        fprintf(stderr, "%s: connection %d: %s\n", prog_name, c->index, what);
    if (++errors > MAX_ERRORS)
        die(1, "more than %d errors; giving up", MAX_ERRORS);
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

static void queue_requests(struct conn *c, long n)
{
    for (long i = 0; i < n; i++) {
        if (c->out_len + request_len > sizeof(c->out))
            break; /* depth is capped so this never drops a request; see main() */
        memcpy(c->out + c->out_len, request, request_len);
        c->out_len += request_len;
    }
}

static int flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                arm(c, 1);
                return 0;
            }
            if (errno == EINTR)
                continue;
            return -1;
        }
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    arm(c, 0);
    return 0;
}

static void open_conn(struct conn *c)
{
    c->fd = socket(ep.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        die(1, "socket: %s", strerror(errno));
    if (connect(c->fd, (struct sockaddr *)&ep.addr, ep.addrlen) < 0)
        die(1, "cannot connect: %s", strerror(errno));
    set_nodelay(c->fd, ep.family);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        die(1, "epoll_ctl: %s", strerror(errno));
    c->want_out = 0;
    c->out_len = c->out_off = c->head_len = 0;
    c->in_body = 0;
    c->responses = 0;
    queue_requests(c, depth);
    if (flush(c) < 0)
        die(1, "cannot send: %s", strerror(errno));
}

static void reconnect(struct conn *c, const char *why)
{
    error(c, why);
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    open_conn(c);
}

/* Parse the head in c->head[0..head_len) (ends with CRLFCRLF): status and Content-Length. */
static int parse_head(struct conn *c)
{
    c->head[c->head_len] = '\0';
    if (c->head_len < 12 || memcmp(c->head, "HTTP/1.", 7) != 0)
        return -1;
    c->status = atoi(c->head + 9);
    const char *p = c->head;
    long long length = -1;
    while ((p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (strncasecmp(p, "content-length:", 15) == 0) {
            length = strtoll(p + 15, NULL, 10);
            break;
        }
    }
    if (length < 0)
        return -1; /* every answer here has a length; chunked would be a server change */
    c->body_len = c->body_left = (uint64_t)length;
    return 0;
}

static void response_done(struct conn *c)
{
    if (c->status != 200) {
        char what[64];
        snprintf(what, sizeof(what), "status %d", c->status);
        error(c, what);
    } else if (want_length >= 0 && c->body_len != (uint64_t)want_length) {
        error(c, "wrong Content-Length");
    } else if (c->verifying) {
        if (have_checksum && hash_final(&c->h) != want_checksum)
            error(c, "body checksum differs from the file's");
        else
            verified++;
    }
    c->responses++;
    if (measuring)
        done_responses++;
    if (running)
        queue_requests(c, 1);
}

static void begin_body(struct conn *c)
{
    c->in_body = 1;
    c->verifying = have_checksum && (c->responses % (uint64_t)verify_every == 0);
    if (c->verifying)
        hash_init(&c->h);
}

/* Consume n received bytes: head bytes are gathered, body bytes counted (and maybe hashed). */
static int consume(struct conn *c, const unsigned char *p, size_t n)
{
    while (n) {
        if (!c->in_body) {
            /* Copy byte ranges until the head ends; search only the new bytes (and 3 before). */
            size_t room = HEAD_MAX - c->head_len;
            size_t take = n < room ? n : room;
            if (take == 0)
                return -1;
            memcpy(c->head + c->head_len, p, take);
            size_t start = c->head_len > 3 ? c->head_len - 3 : 0;
            c->head_len += take;
            c->head[c->head_len] = '\0';
            char *end = strstr(c->head + start, "\r\n\r\n");
            if (!end) {
                p += take;
                n -= take;
                continue;
            }
            size_t head_bytes = (size_t)(end + 4 - c->head);
            size_t used = head_bytes - (c->head_len - take); /* of this chunk */
            c->head_len = head_bytes;
            if (parse_head(c) < 0)
                return -1;
            p += used;
            n -= used;
            c->head_len = 0;
            begin_body(c);
            if (c->body_left == 0) {
                c->in_body = 0;
                response_done(c);
            }
            continue;
        }
        size_t take = n < c->body_left ? n : (size_t)c->body_left;
        if (c->verifying)
            hash_update(&c->h, p, take);
        if (measuring)
            done_bytes += take;
        c->body_left -= take;
        p += take;
        n -= take;
        if (c->body_left == 0) {
            c->in_body = 0;
            response_done(c);
        }
    }
    return 0;
}

static void on_readable(struct conn *c)
{
    for (int i = 0; i < 4; i++) { /* a few reads per wake-up, then let others run */
        ssize_t n = recv(c->fd, rbuf, sizeof(rbuf), 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                break;
            reconnect(c, strerror(errno));
            return;
        }
        if (n == 0) {
            reconnect(c, "server closed the connection");
            return;
        }
        if (consume(c, rbuf, (size_t)n) < 0) {
            reconnect(c, "malformed response");
            return;
        }
        if ((size_t)n < sizeof(rbuf))
            break;
    }
    if (c->out_len && flush(c) < 0)
        reconnect(c, "send failed");
}

static void usage(void)
{
    fprintf(stderr,
            "usage: %s [--host H] (--port N | --unix PATH) --path /FILE [--conns N] [--depth D]\n"
            "       [--duration S] [--warmup S] [--length BYTES] [--checksum HEX]\n"
            "       [--verify-every K]\n"
            "       %s --hash-file FILE\n",
            prog_name, prog_name);
    exit(2);
}

int main(int argc, char **argv)
{
    prog_name = "http_load";
    struct endpoint_options target = ENDPOINT_OPTIONS_INIT;
    const char *path = NULL;
    long conns = 8;
    double duration = 5.0, warmup = 0.5;
    static struct option opts[] = {
        ENDPOINT_LONG_OPTIONS,                   {"path", required_argument, 0, 'P'},
        {"conns", required_argument, 0, 'c'},    {"depth", required_argument, 0, 'D'},
        {"duration", required_argument, 0, 'd'}, {"warmup", required_argument, 0, 'w'},
        {"length", required_argument, 0, 'l'},   {"checksum", required_argument, 0, 'k'},
        {"verify-every", required_argument, 0, 'v'},
        {"hash-file", required_argument, 0, 'f'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (endpoint_option(&target, opt, optarg))
            continue;
        switch (opt) {
        case 'P': path = optarg; break;
        case 'c': conns = parse_long("--conns", optarg, 1, 10000); break;
        case 'D': depth = parse_long("--depth", optarg, 1, 16); break;
        case 'd': duration = parse_seconds("--duration", optarg, 0.001); break;
        case 'w': warmup = parse_seconds("--warmup", optarg, 0); break;
        case 'l': want_length = parse_long("--length", optarg, 0, LONG_MAX); break;
        case 'k': {
            char *end;
            errno = 0;
            want_checksum = strtoull(optarg, &end, 16);
            if (errno || *end || end == optarg)
                die(2, "--checksum wants a hex number, not %s", optarg);
            have_checksum = 1;
            break;
        }
        case 'v': verify_every = parse_long("--verify-every", optarg, 1, 1L << 40); break;
        case 'f': return hash_file(optarg);
        default: usage();
        }
    }
    if (!path || path[0] != '/' || strlen(path) > 900 || strpbrk(path, " \r\n"))
        die(2, "--path wants an origin-form path like /file.bin (no spaces)");
    endpoint_from_options(&ep, &target);
    request_len = (size_t)snprintf(request, sizeof(request),
                                   "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
    /* Pipelined requests must fit one connection's output buffer. */
    if ((size_t)depth * request_len > sizeof(((struct conn *)0)->out))
        die(2, "--depth %ld is too deep for a %zu-byte request", depth, request_len);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die(1, "epoll_create1: %s", strerror(errno));
    struct conn *cs = calloc((size_t)conns, sizeof(*cs));
    if (!cs)
        die(1, "out of memory");
    for (long i = 0; i < conns; i++) {
        cs[i].index = (int)i;
        open_conn(&cs[i]);
    }

    struct epoll_event events[MAX_EVENTS];
    double start = now_s(), measure_at = start + warmup, end_at = measure_at + duration;
    double measured_from = 0;
    struct rusage ru0 = {0}, ru1;
    while (1) {
        double now = now_s();
        if (!measuring && now >= measure_at) {
            measuring = 1;
            measured_from = now;
            getrusage(RUSAGE_SELF, &ru0);
        }
        if (now >= end_at)
            break;
        int n = epoll_wait(epfd, events, MAX_EVENTS, 50);
        if (n < 0 && errno != EINTR)
            die(1, "epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(c);
            else if (events[i].events & EPOLLOUT && flush(c) < 0)
                reconnect(c, "send failed");
        }
    }
    double elapsed = now_s() - measured_from;
    getrusage(RUSAGE_SELF, &ru1);
    running = 0;
    double user = tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime);
    double sys = tv_s(ru1.ru_stime) - tv_s(ru0.ru_stime);
    char where[512];
    endpoint_format(&ep, where, sizeof(where));
    printf("{\"req_per_s\": %.1f, \"mb_per_s\": %.3f, \"requests\": %llu, \"body_bytes\": %llu, "
           "\"seconds\": %.4f, \"errors\": %ld, \"verified\": %llu, \"cpu_user_s\": %.4f, "
           "\"cpu_sys_s\": %.4f, \"conns\": %ld, \"depth\": %ld, \"verify_every\": %ld, "
           "\"transport\": \"%s\", \"endpoint\": \"%s\"}\n",
           done_responses / elapsed, done_bytes / elapsed / 1e6,
           (unsigned long long)done_responses, (unsigned long long)done_bytes, elapsed, errors,
           (unsigned long long)verified, user, sys, conns, depth, verify_every,
           endpoint_transport(&ep), where);
    for (long i = 0; i < conns; i++)
        close(cs[i].fd);
    free(cs);
    return errors ? 1 : 0;
}
