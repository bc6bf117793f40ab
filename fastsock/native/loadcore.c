/* loadcore: see loadcore.h. The structure follows fastsock/load/engine.py line by line where
 * it can, so the two engines measure the same thing; comments here only say where C differs. */
#define _GNU_SOURCE
#include "loadcore.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RX_CAP (256 * 1024)  /* one recv reads at most this much */
#define TX_CHUNK (256 * 1024) /* one send writes at most this much */
#define MAX_CHUNKS 16         /* sends per flush, so one connection cannot starve the loop */
#define TICK_NS 250000000LL   /* progress updates at most this often */
#define MAX_EVENTS 256
#define UNLIMITED (1ULL << 62)

struct conn {
    int fd;
    int wfd; /* == fd except for a pipe pair (written on its own fd) */
    int index;
    int alive;
    int writing; /* EPOLLOUT registered: the socket buffer was full */
    uint64_t seed;
    uint64_t rx_pos, tx_pos, tx_target, next_done;
    int64_t last_bad; /* number of the last message counted as a mismatch */
    /* Send (closed loop) or due (open loop) times of the messages in flight: a ring. */
    int64_t *times;
    uint64_t head, count, cap;
};

struct run {
    const struct lc_params *p;
    struct lc_result *r;
    struct conn *conns;
    int nconns;
    int epfd;
    int alive;
    uint64_t completed;
    unsigned char *rxbuf;
};

static void rusage_s(double *user, double *sys)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    *sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

__attribute__((format(printf, 3, 4))) static void sample(struct run *run, struct conn *c,
                                                         const char *fmt, ...)
{
    struct lc_result *r = run->r;
    if (r->nsamples >= LC_MAX_SAMPLES)
        return;
    char *out = r->samples[r->nsamples++];
    int n = snprintf(out, LC_SAMPLE_LEN, "conn %d: ", c->index);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + n, LC_SAMPLE_LEN - (size_t)n, fmt, ap);
    va_end(ap);
}

static void drop(struct run *run, struct conn *c)
{
    if (!c->alive)
        return;
    c->alive = 0;
    epoll_ctl(run->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->wfd != c->fd && c->writing)
        epoll_ctl(run->epfd, EPOLL_CTL_DEL, c->wfd, NULL);
    if (!run->p->fd_io)
        shutdown(c->fd, SHUT_RDWR); /* the caller owns and closes the fd */
    run->alive--;
}

static void count_error(struct run *run, struct conn *c, int kind, const char *detail)
{
    run->r->errors[kind]++;
    sample(run, c, "%s: %s",
           (const char *[]){"mismatch", "short_read", "reset", "refused", "closed", "other"}[kind],
           detail);
}

static void fail(struct run *run, struct conn *c, int err)
{
    int kind = (err == ECONNRESET || err == EPIPE || err == ECONNABORTED) ? LC_RESET : LC_OTHER;
    count_error(run, c, kind, strerror(err));
    drop(run, c);
}

static void closed(struct run *run, struct conn *c)
{
    uint64_t part = c->rx_pos % run->p->size;
    if (run->p->workload == LC_ECHO && part) {
        char detail[64];
        snprintf(detail, sizeof(detail), "server closed after %llu bytes", (unsigned long long)part);
        count_error(run, c, LC_SHORT_READ, detail);
    } else {
        count_error(run, c, LC_CLOSED, "server closed the connection");
    }
    drop(run, c);
}

/* Slow path after a failed memcmp: count the messages with a wrong byte in this chunk, each
 * message once even when it spans several chunks. */
static void mismatch(struct run *run, struct conn *c, const unsigned char *buf, uint64_t n)
{
    const struct lc_params *p = run->p;
    uint64_t size = p->size, start = c->rx_pos, end = start + n;
    int64_t first = -1, last = -1, count = 0;
    for (uint64_t number = start / size; number * size < end; number++) {
        uint64_t lo = number * size > start ? number * size : start;
        uint64_t hi = (number + 1) * size < end ? (number + 1) * size : end;
        if ((int64_t)number <= c->last_bad)
            continue;
        if (memcmp(buf + (lo - start), p->pattern + (c->seed + lo) % p->period, hi - lo) != 0) {
            if (first < 0)
                first = (int64_t)number;
            last = (int64_t)number;
            count++;
        }
    }
    if (!count)
        return;
    c->last_bad = last;
    run->r->errors[LC_MISMATCH] += (uint64_t)count;
    sample(run, c, "mismatch: message(s) %lld..%lld differ in echoed bytes %llu..%llu",
           (long long)first, (long long)last, (unsigned long long)start, (unsigned long long)end);
}

static void want_write(struct run *run, struct conn *c, int want)
{
    if (want == c->writing || !c->alive)
        return;
    c->writing = want;
    if (c->wfd != c->fd) { /* a pipe pair: the write end is watched only while it is full */
        struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
        epoll_ctl(run->epfd, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, c->wfd, &ev);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(run->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* One non-blocking send or receive: sockets by send/recv, pipes (fd_io) by write/read. */
static ssize_t tx(const struct lc_params *p, int fd, const void *buf, size_t n)
{
    return p->fd_io ? write(fd, buf, n) : send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static ssize_t rx(const struct lc_params *p, int fd, void *buf, size_t n)
{
    return p->fd_io ? read(fd, buf, n) : recv(fd, buf, n, MSG_DONTWAIT);
}

/* Write towards tx_target until done or the socket buffer is full. */
static void flush(struct run *run, struct conn *c)
{
    const struct lc_params *p = run->p;
    uint64_t chunk = p->tx_chunk ? p->tx_chunk : TX_CHUNK;
    for (int i = 0; i < MAX_CHUNKS && c->tx_pos < c->tx_target; i++) {
        uint64_t left = c->tx_target - c->tx_pos;
        size_t n = left < chunk ? (size_t)left : (size_t)chunk;
        const unsigned char *from = p->pattern + (c->seed + c->tx_pos) % p->period;
        ssize_t sent = tx(p, c->wfd, from, n);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                fail(run, c, errno);
                return;
            }
            sent = 0;
        }
        c->tx_pos += (uint64_t)sent;
        if ((size_t)sent < n)
            break;
    }
    want_write(run, c, c->tx_pos < c->tx_target);
}

static int push_time(struct conn *c, int64_t t)
{
    if (c->count == c->cap) {
        uint64_t cap = c->cap ? c->cap * 2 : 16;
        int64_t *grown = malloc(cap * sizeof(*grown));
        if (!grown)
            return -1;
        for (uint64_t i = 0; i < c->count; i++)
            grown[i] = c->times[(c->head + i) % c->cap];
        free(c->times);
        c->times = grown;
        c->head = 0;
        c->cap = cap;
    }
    c->times[(c->head + c->count) % c->cap] = t;
    c->count++;
    return 0;
}

static int64_t pop_time(struct conn *c)
{
    int64_t t = c->times[c->head];
    c->head = c->head + 1 == c->cap ? 0 : c->head + 1;
    c->count--;
    return t;
}

static inline void record(const struct lc_params *p, int64_t value)
{
    if (!p->hist_counts)
        return;
    size_t index = lc_hist_index(value, p->hist_half_magnitude, p->hist_lowest, p->hist_highest);
    if (index < p->hist_len)
        p->hist_counts[index]++;
}

/* Events, waiting at most timeout_ns; a precise wait (open loop) sleeps in ppoll on the epoll
 * fd, since epoll_wait's millisecond timeout would make the schedule late by up to 1 ms. */
static int wait_events(struct run *run, struct epoll_event *events, int64_t timeout_ns,
                       int precise)
{
    if (timeout_ns <= 0)
        return epoll_wait(run->epfd, events, MAX_EVENTS, 0);
    if (precise) {
        struct pollfd pfd = {.fd = run->epfd, .events = POLLIN};
        struct timespec ts = {.tv_sec = timeout_ns / 1000000000LL,
                              .tv_nsec = timeout_ns % 1000000000LL};
        int ready = ppoll(&pfd, 1, &ts, NULL);
        if (ready <= 0)
            return ready;
        return epoll_wait(run->epfd, events, MAX_EVENTS, 0);
    }
    int ms = (int)((timeout_ns + 999999) / 1000000); /* round up: never spin early */
    return epoll_wait(run->epfd, events, MAX_EVENTS, ms);
}

/* What c completed since the start, in the unit of lc_result.completed: echo counts messages
 * (next_done sits one message past the last completed), send and recv count bytes. */
static uint64_t conn_done(const struct run *run, const struct conn *c)
{
    switch (run->p->workload) {
    case LC_ECHO:
        return c->next_done / run->p->size - 1;
    case LC_SEND:
        return c->tx_pos;
    default:
        return c->rx_pos;
    }
}

static void begin_window(struct run *run, int64_t now)
{
    const struct lc_params *p = run->p;
    if (p->conn_counts)
        for (int i = 0; i < run->nconns; i++)
            p->conn_counts[i] = conn_done(run, &run->conns[i]);
    if (p->hist_counts)
        memset(p->hist_counts, 0, p->hist_len * sizeof(*p->hist_counts));
    run->r->window_start_ns = now;
    run->r->completed = run->completed; /* subtracted at the end */
    rusage_s(&run->r->cpu_user_s, &run->r->cpu_sys_s);
}

static void end_window(struct run *run, int64_t now)
{
    struct lc_result *r = run->r;
    double user, sys;
    rusage_s(&user, &sys);
    r->cpu_user_s = user - r->cpu_user_s;
    r->cpu_sys_s = sys - r->cpu_sys_s;
    r->window_end_ns = now;
    r->completed = run->completed - r->completed;
    if (run->p->conn_counts)
        for (int i = 0; i < run->nconns; i++)
            run->p->conn_counts[i] = conn_done(run, &run->conns[i]) - run->p->conn_counts[i];
    if (run->p->rate > 0 && run->p->workload == LC_ECHO) {
        for (int i = 0; i < run->nconns; i++) {
            struct conn *c = &run->conns[i];
            if (!c->alive)
                continue;
            for (uint64_t j = 0; j < c->count; j++)
                record(run->p, now - c->times[(c->head + j) % c->cap]);
            r->incomplete += c->count;
        }
    }
}

/* One read into run->rxbuf: the byte count, or 0 when there is nothing to handle (no data yet,
 * or the connection failed or closed, which this has dealt with). */
static ssize_t read_some(struct run *run, struct conn *c)
{
    ssize_t n = rx(run->p, c->fd, run->rxbuf, RX_CAP);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            fail(run, c, errno);
        return 0;
    }
    if (n == 0)
        closed(run, c);
    return n;
}

/* One echo read: verify, count completed messages; closed loop: send the next ones. */
static void on_echo_readable(struct run *run, struct conn *c, int open_loop)
{
    const struct lc_params *p = run->p;
    ssize_t n = read_some(run, c);
    if (n == 0)
        return;
    uint64_t rx = c->rx_pos + (uint64_t)n;
    if (rx > c->tx_pos) { /* checked first: one error, not a mismatch as well */
        count_error(run, c, LC_MISMATCH, "server sent bytes that were never sent");
        drop(run, c);
        return;
    }
    if (p->verify &&
        memcmp(run->rxbuf, p->pattern + (c->seed + c->rx_pos) % p->period, (size_t)n) != 0)
        mismatch(run, c, run->rxbuf, (uint64_t)n);
    c->rx_pos = rx;
    if (rx < c->next_done)
        return; /* part of a message */
    /* The closed loop without latency recording reads no clock per message (the baseline). */
    int timing = open_loop || p->hist_counts;
    int64_t now = timing ? lc_now_ns() : 0;
    uint64_t got = 0;
    while (rx >= c->next_done) { /* more than one message per read at depth > 1 */
        if (timing)
            record(p, now - pop_time(c));
        c->next_done += p->size;
        got++;
    }
    run->completed += got;
    if (open_loop)
        return;
    for (uint64_t i = 0; timing && i < got; i++)
        push_time(c, now); /* never grows: at most depth in flight, the initial capacity */
    c->tx_target += got * p->size;
    if (!c->writing)
        flush(run, c);
}

/* send/recv workloads: one read of a source stream (byte k is k % 256), or data from a
 * discard server, which is an error. */
static void on_stream_readable(struct run *run, struct conn *c, int sending)
{
    const struct lc_params *p = run->p;
    ssize_t n = read_some(run, c);
    if (n == 0)
        return;
    if (sending) {
        count_error(run, c, LC_OTHER, "a discard server sent data");
        drop(run, c);
        return;
    }
    for (ssize_t i = 0; p->verify && i < n; i++) {
        if (run->rxbuf[i] != (unsigned char)(c->rx_pos + (uint64_t)i)) {
            char detail[96];
            snprintf(detail, sizeof(detail), "source bytes %llu+%zd are wrong",
                     (unsigned long long)c->rx_pos, n);
            count_error(run, c, LC_MISMATCH, detail);
            break;
        }
    }
    c->rx_pos += (uint64_t)n;
    run->completed += (uint64_t)n;
}

static void flush_counted(struct run *run, struct conn *c)
{
    uint64_t before = c->tx_pos;
    flush(run, c);
    run->completed += c->tx_pos - before;
}

static int setup(struct run *run, const int *fds)
{
    const struct lc_params *p = run->p;
    int open_loop = p->rate > 0;
    run->rxbuf = malloc(RX_CAP);
    run->conns = calloc((size_t)(run->nconns ? run->nconns : 1), sizeof(*run->conns));
    run->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!run->rxbuf || !run->conns) {
        snprintf(run->r->fatal, LC_SAMPLE_LEN, "out of memory");
        return -1;
    }
    if (run->epfd < 0) {
        snprintf(run->r->fatal, LC_SAMPLE_LEN, "epoll_create1: %s", strerror(errno));
        return -1;
    }
    for (int i = 0; i < run->nconns; i++) {
        struct conn *c = &run->conns[i];
        c->fd = fds[i];
        c->wfd = p->wfds ? p->wfds[i] : fds[i];
        c->index = p->first_index + i;
        c->seed = (uint64_t)c->index * 7919u % p->period; /* Pattern.seed_for */
        c->alive = 1;
        c->last_bad = -1;
        c->next_done = p->size;
        int sending_all = p->workload == LC_SEND && !open_loop;
        int both = sending_all && c->wfd == c->fd;
        struct epoll_event ev = {.events = EPOLLIN | (both ? EPOLLOUT : 0), .data.ptr = c};
        if (epoll_ctl(run->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
            snprintf(run->r->fatal, LC_SAMPLE_LEN, "epoll_ctl: %s", strerror(errno));
            return -1;
        }
        run->alive++;
        if (sending_all) {
            c->tx_target = UNLIMITED;
            c->writing = 1;
            ev.events = EPOLLOUT;
            if (c->wfd != c->fd && epoll_ctl(run->epfd, EPOLL_CTL_ADD, c->wfd, &ev) < 0) {
                snprintf(run->r->fatal, LC_SAMPLE_LEN, "epoll_ctl: %s", strerror(errno));
                return -1;
            }
        }
        if (p->workload == LC_ECHO) {
            c->cap = open_loop ? 64 : p->depth; /* closed loop: never more than depth */
            c->times = malloc(c->cap * sizeof(*c->times));
            if (!c->times) {
                snprintf(run->r->fatal, LC_SAMPLE_LEN, "out of memory");
                return -1;
            }
        }
    }
    return 0;
}

static void loop(struct run *run)
{
    const struct lc_params *p = run->p;
    struct lc_result *r = run->r;
    int open_loop = p->rate > 0;
    int echo = p->workload == LC_ECHO, sending = p->workload == LC_SEND;
    int64_t t0 = p->t0_ns;
    double interval = open_loop ? 1e9 / p->rate : 0.0;
    uint64_t k = 0; /* open loop: next message; it is due at t0 + k * interval */
    int64_t next_due = open_loop ? t0 : p->end_ns;
    int measuring = 0;
    int64_t next_phase = p->warm_end_ns, next_tick = t0 + TICK_NS;
    struct epoll_event events[MAX_EVENTS];

    if (echo && !open_loop) {
        for (int i = 0; i < run->nconns; i++) {
            struct conn *c = &run->conns[i];
            c->tx_target = p->depth * p->size;
            for (uint64_t j = 0; j < p->depth; j++)
                push_time(c, t0);
            flush(run, c);
        }
    }
    while (run->alive > 0) {
        int64_t now = lc_now_ns();
        if (now >= next_phase) {
            if (measuring) {
                end_window(run, now);
                return;
            }
            begin_window(run, now);
            measuring = 1;
            next_phase = p->end_ns;
        }
        if (now >= next_tick) {
            if (p->progress)
                *p->progress = (int64_t)(echo ? run->completed : run->completed / p->size);
            next_tick = now + TICK_NS;
            /* A signal that arrived outside epoll_wait gave no EINTR: ask at every tick too. */
            if (p->interrupted && p->interrupted(p->interrupted_arg)) {
                r->stopped = 1;
                return;
            }
        }
        int64_t until = next_phase < next_tick ? next_phase : next_tick;
        if (open_loop) {
            /* Send everything due by now; a late client catches up at once, and the latency
             * still counts from the due time. */
            while (next_due <= now && next_due < p->end_ns) {
                struct conn *c = &run->conns[k % (uint64_t)run->nconns];
                k++;
                if (c->alive) {
                    c->tx_target += p->size;
                    if (echo && push_time(c, next_due) < 0) {
                        count_error(run, c, LC_OTHER, "out of memory for messages in flight");
                        drop(run, c);
                    } else if (echo) {
                        if (!c->writing)
                            flush(run, c);
                    } else if (!c->writing) {
                        flush_counted(run, c);
                    }
                }
                next_due = t0 + (int64_t)((double)k * interval);
            }
            if (next_due < until)
                until = next_due;
        }
        int n = wait_events(run, events, until - now, open_loop);
        if (n < 0) {
            if (errno == EINTR && p->interrupted && p->interrupted(p->interrupted_arg)) {
                r->stopped = 1;
                return;
            }
            continue;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            uint32_t ev = events[i].events;
            if (!c->alive)
                continue; /* dropped earlier in this batch */
            if (echo) {
                if (ev & EPOLLOUT) {
                    flush(run, c); /* rare: registered only while a send was short */
                    if (!(ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) || !c->alive)
                        continue;
                }
                on_echo_readable(run, c, open_loop);
            } else {
                if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
                    on_stream_readable(run, c, sending);
                if ((ev & EPOLLOUT) && c->alive)
                    flush_counted(run, c);
            }
        }
    }
}

int lc_run(const struct lc_params *p, const int *fds, int nconns, struct lc_result *r)
{
    memset(r, 0, sizeof(*r));
    struct run run = {.p = p, .r = r, .nconns = nconns, .epfd = -1};
    int status = -1;
    if (p->size == 0 || p->period == 0 || p->depth == 0 || nconns <= 0) {
        snprintf(r->fatal, LC_SAMPLE_LEN, "bad parameters");
        return -1;
    }
    if (setup(&run, fds) == 0) {
        int64_t delay = p->t0_ns - lc_now_ns();
        if (delay > 0) {
            struct timespec ts = {.tv_sec = delay / 1000000000LL, .tv_nsec = delay % 1000000000LL};
            while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        }
        loop(&run);
        if (!r->window_start_ns) { /* every connection failed during the warm-up */
            int64_t now = lc_now_ns();
            begin_window(&run, now);
            end_window(&run, now);
        } else if (!r->window_end_ns) {
            end_window(&run, lc_now_ns());
        }
        if (p->progress)
            *p->progress = (int64_t)(p->workload == LC_ECHO ? run.completed
                                                            : run.completed / p->size);
        r->completed_total = run.completed;
        r->conns_alive = run.alive;
        status = 0;
    }
    if (run.conns)
        for (int i = 0; i < nconns; i++)
            free(run.conns[i].times);
    free(run.conns);
    free(run.rxbuf);
    if (run.epfd >= 0)
        close(run.epfd);
    return status;
}
