/* loadcore: the hot loop of `fastsock load --engine native`, in plain C (no Python.h).
 *
 * One call runs one process's share of a load run over connected non-blocking sockets and
 * fills a struct lc_result; the caller owns the sockets (this code never closes them; a failed
 * connection is shut down and left for the caller to close). Two callers: the CPython module
 * fastsock/native/_loadengine.c (`fastsock load`) and bench/peers/c/load_client.c (the
 * harness's stand-alone C client) -- one C load generator, not two.
 *
 * The semantics are those of fastsock/load/engine.py (read its docstring): closed loop with
 * `depth` messages in flight, or open loop on a fixed schedule with latency counted from each
 * message's due time (coordinated-omission correction); every echoed byte checked against the
 * pattern; errors counted by kind; latencies counted into the bucket layout of
 * HdrHistogram(1 ns, 1 h, 3 significant figures), so Python turns the counts into an exact
 * hdrhistogram.
 */
#ifndef FASTSOCK_LOADCORE_H
#define FASTSOCK_LOADCORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum lc_workload { LC_ECHO = 0, LC_SEND = 1, LC_RECV = 2 };

/* The order of fastsock.load.engine.ERROR_KINDS. */
enum lc_error { LC_MISMATCH, LC_SHORT_READ, LC_RESET, LC_REFUSED, LC_CLOSED, LC_OTHER, LC_NERR };

#define LC_MAX_SAMPLES 10
#define LC_SAMPLE_LEN 200

struct lc_params {
    int workload;
    uint64_t size;
    uint64_t depth;
    double rate;             /* this process's msgs/s; <= 0: closed loop */
    int64_t t0_ns;           /* CLOCK_MONOTONIC start (may lie in the future: we sleep) */
    int64_t warm_end_ns;     /* measured window: [warm_end_ns, end_ns) */
    int64_t end_ns;
    int first_index;         /* global number of the first connection (pattern seeds) */
    const unsigned char *pattern; /* period + span bytes, pattern[i] == pattern[i % period] */
    uint64_t period;
    uint64_t span;           /* no send or check is longer than this */
    int64_t *hist_counts;    /* echo: HDR counts array (hist_len), or NULL: no latency (and
                              * no clock read per message in the closed loop) */
    size_t hist_len;
    int hist_half_magnitude; /* HdrHistogram sub_bucket_half_count_magnitude */
    int64_t hist_lowest, hist_highest; /* values are clamped into this range */
    int verify;              /* 0: do not compare echoed bytes (a baseline for the cost) */
    /* The IPC floor (fastsock/floor.py): a connection may be two one-way file descriptors, a
     * pipe pair. wfds[i] is written and fds[i] read (NULL: both on fds[i]); fd_io uses
     * read()/write() instead of recv()/send(), which pipes need (the caller makes the fds
     * non-blocking and ignores SIGPIPE). tx_chunk caps one send (0: 256 KiB); message sockets
     * (seqpacket) set it to the message size so that every send is exactly one message. */
    const int *wfds;
    int fd_io;
    uint64_t tx_chunk;
    volatile int64_t *progress; /* if set: messages done so far, updated every tick */
    /* If set (nconns entries): what each connection completed in the measured window, in the
     * unit of lc_result.completed -- the caller's fairness figures (per_connection). Read from
     * each connection's stream position at the window's edges: nothing per message. */
    uint64_t *conn_counts;
    /* Called (with no lock held) when a wait was interrupted by a signal, and every tick (a
     * signal can arrive outside the wait); non-zero stops the run (the CPython caller checks
     * for ^C there). */
    int (*interrupted)(void *);
    void *interrupted_arg;
};

struct lc_result {
    uint64_t completed;       /* in the window: messages (echo) or bytes (send, recv) */
    uint64_t completed_total; /* since t0, warm-up included */
    int64_t window_start_ns, window_end_ns;
    uint64_t incomplete;      /* open loop echo: due but unanswered when the window closed */
    int conns_alive;
    uint64_t errors[LC_NERR];
    int nsamples;
    char samples[LC_MAX_SAMPLES][LC_SAMPLE_LEN];
    double cpu_user_s, cpu_sys_s; /* getrusage(RUSAGE_SELF) over the window */
    int stopped;              /* `interrupted` asked to stop */
    char fatal[LC_SAMPLE_LEN]; /* non-empty: the run could not start (out of memory, epoll) */
};

/* CLOCK_MONOTONIC in nanoseconds: the clock of every timestamp in a run. */
static inline int64_t lc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* HdrHistogram's counts index of a latency (see fastsock/load/histogram.py, LatencyRecorder):
 * a value of bit length L > half_magnitude + 1 shares a bucket with the values that agree in
 * its top half_magnitude + 1 bits. Values are clamped into [lowest, highest] first. */
static inline size_t lc_hist_index(int64_t value, int half_magnitude, int64_t lowest,
                                   int64_t highest)
{
    if (value < lowest)
        value = lowest;
    if (value > highest)
        value = highest;
    int bit_length = 64 - __builtin_clzll((unsigned long long)value);
    int bucket = bit_length - (half_magnitude + 1);
    if (bucket < 0)
        bucket = 0;
    return (size_t)(((int64_t)(bucket + 1) << half_magnitude) + (value >> bucket) -
                    (1LL << half_magnitude));
}

/* Run the plan on fds[0..nconns) (and wfds, if set); 0 on success, -1 with result->fatal set. */
int lc_run(const struct lc_params *params, const int *fds, int nconns, struct lc_result *result);

#endif
