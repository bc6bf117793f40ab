/* c-uring: the io_uring echo server in C -- what fastsock serve --engine uring's design costs
 * with no Python in it, so the harness can tell the kernel's share from the interpreter's.
 *
 * The same design as fastsock/uring: one thread, one ring (DEFER_TASKRUN, SINGLE_ISSUER,
 * COOP_TASKRUN), a multishot ACCEPT, a page-aligned 256 KiB buffer per connection (fastsock's
 * --read-size default), a RECV with POLL_FIRST, and per echoed read one linked pair: a SEND of
 * the bytes with MSG_WAITALL (the kernel finishes short sends itself) whose success posts no
 * completion, then the next RECV into the same buffer. The link is the backpressure: nothing is
 * read until the client took the echo, so a client that does not read holds one buffer.
 * Unlike fastsock it names sockets by fd, not registered files (one fget/fput per operation).
 *
 *   uring_echo_server [--host H] (--port N | --unix PATH|@NAME) [--mode echo|discard]
 *
 * Prints "c-uring: listening on ENDPOINT" when ready; SIGTERM/SIGINT -> exit 0 (socket file
 * removed). No io_uring (kernel, sysctl, seccomp): one line on stderr, exit 2. Needs Linux 6.1.
 * Build: cc -O2 -Wall -Wextra -o bench/peers/bin/uring_echo_server bench/peers/c/uring_echo_server.c
 */
#include "server.h"

#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>

/* The kernel ABI this server uses, for headers older than the running kernel (values are ABI). */
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_RECVSEND_POLL_FIRST
#define IORING_RECVSEND_POLL_FIRST (1U << 0)
#endif
#ifndef IORING_ACCEPT_MULTISHOT
#define IORING_ACCEPT_MULTISHOT (1U << 0)
#endif

#define BUF_SIZE (256 * 1024)
#define SQ_ENTRIES 1024
#define CQ_ENTRIES 8192

/* user_data: kind << 56 | generation << 32 | fd. A connection's generation changes when it is
 * closed, so a completion still in flight for an fd number that was reused is recognised. */
enum { K_RECV, K_SEND, K_ACCEPT, K_ACCEPT_RETRY, K_SIGNAL };
#define UD(kind, gen, fd) (((uint64_t)(kind) << 56) | ((uint64_t)((gen) & 0xFFFFFF) << 32) | (uint32_t)(fd))

struct conn {
    unsigned gen;
    int open;
    unsigned char *buf; /* allocated on first use, kept for the next connection on this fd */
};

struct ring {
    int fd;
    unsigned *sq_head, *sq_tail, *sq_array, sq_mask, sq_entries, tail;
    struct io_uring_sqe *sqes;
    unsigned *cq_head, *cq_tail, cq_mask;
    struct io_uring_cqe *cqes;
};

static struct ring ring;
static struct conn *conns;
static int max_fd;
static struct server srv; /* the command line's choices, the listener, the signalfd */

static void ring_setup(struct ring *r)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
              IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    p.cq_entries = CQ_ENTRIES;
    r->fd = (int)syscall(__NR_io_uring_setup, SQ_ENTRIES, &p);
    if (r->fd < 0)
        die(2, "io_uring is unavailable here: io_uring_setup: %s (c-uring needs Linux 6.1+ "
               "with io_uring allowed)", strerror(errno));
    if (!(p.features & IORING_FEAT_SINGLE_MMAP) || !(p.features & IORING_FEAT_NODROP))
        die(2, "io_uring is too old here: c-uring needs Linux 6.1+");
    size_t sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    size_t size = sq_size > cq_size ? sq_size : cq_size;
    unsigned char *rings = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                                r->fd, IORING_OFF_SQ_RING);
    r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
    if (rings == MAP_FAILED || r->sqes == MAP_FAILED)
        die(2, "mmap of the io_uring rings: %s", strerror(errno));
    r->sq_head = (unsigned *)(rings + p.sq_off.head);
    r->sq_tail = (unsigned *)(rings + p.sq_off.tail);
    r->sq_array = (unsigned *)(rings + p.sq_off.array);
    r->sq_mask = *(unsigned *)(rings + p.sq_off.ring_mask);
    r->sq_entries = p.sq_entries;
    r->tail = *r->sq_tail;
    r->cq_head = (unsigned *)(rings + p.cq_off.head);
    r->cq_tail = (unsigned *)(rings + p.cq_off.tail);
    r->cq_mask = *(unsigned *)(rings + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(rings + p.cq_off.cqes);
    for (unsigned i = 0; i < p.sq_entries; i++)
        r->sq_array[i] = i; /* SQ slot i holds SQE i: we fill the SQEs in ring order */
}

/* Submit what was prepared; with wait, also wait for at least one completion. */
static void ring_enter(struct ring *r, unsigned wait)
{
    __atomic_store_n(r->sq_tail, r->tail, __ATOMIC_RELEASE);
    for (;;) {
        unsigned pending = r->tail - __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);
        long rc = syscall(__NR_io_uring_enter, r->fd, pending, wait,
                          wait ? IORING_ENTER_GETEVENTS : 0, NULL, 0);
        if (rc >= 0)
            return;
        if (errno != EINTR && errno != EAGAIN && errno != EBUSY)
            die(1, "io_uring_enter: %s", strerror(errno));
        if (!wait && errno != EINTR)
            return; /* completions first: the caller's loop reaps them and enters again */
    }
}

/* The next free SQE, zeroed; submits first if the SQ is full. */
static struct io_uring_sqe *ring_sqe(struct ring *r)
{
    while (r->tail - __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE) >= r->sq_entries)
        ring_enter(r, 0);
    struct io_uring_sqe *sqe = &r->sqes[r->tail & r->sq_mask];
    memset(sqe, 0, sizeof(*sqe));
    r->tail++;
    return sqe;
}

static void prep(struct io_uring_sqe *sqe, int op, int fd, const void *addr, unsigned len,
                 uint64_t user_data)
{
    sqe->opcode = (uint8_t)op;
    sqe->fd = fd;
    sqe->addr = (uint64_t)(uintptr_t)addr;
    sqe->len = len;
    sqe->user_data = user_data;
}

static void arm_accept(int lfd)
{
    struct io_uring_sqe *sqe = ring_sqe(&ring);
    prep(sqe, IORING_OP_ACCEPT, lfd, NULL, 0, UD(K_ACCEPT, 0, 0));
    sqe->ioprio = IORING_ACCEPT_MULTISHOT;
    sqe->accept_flags = SOCK_CLOEXEC;
}

static void arm_recv(int fd)
{
    struct conn *c = &conns[fd];
    struct io_uring_sqe *sqe = ring_sqe(&ring);
    prep(sqe, IORING_OP_RECV, fd, c->buf, BUF_SIZE, UD(K_RECV, c->gen, fd));
    sqe->ioprio = IORING_RECVSEND_POLL_FIRST; /* wait for data before trying: no failed try */
}

/* Echo n bytes, then read again: the linked pair (see the top of the file). */
static void echo(int fd, unsigned n)
{
    struct conn *c = &conns[fd];
    struct io_uring_sqe *sqe = ring_sqe(&ring);
    prep(sqe, IORING_OP_SEND, fd, c->buf, n, UD(K_SEND, c->gen, fd));
    sqe->msg_flags = MSG_WAITALL | MSG_NOSIGNAL;
    sqe->flags = IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
    arm_recv(fd);
}

static void conn_close(int fd)
{
    struct conn *c = &conns[fd];
    c->open = 0;
    c->gen++;
    /* Nothing of ours is in flight when we get here (a RECV completed, or the echo SEND failed
     * and the kernel cancelled the RECV linked to it); shutdown first anyway, so no operation
     * could read into the buffer the next connection on this fd will use. */
    shutdown(fd, SHUT_RDWR);
    close(fd);
}

static void on_accept(int lfd, int res, unsigned flags)
{
    if (res >= 0) {
        if (res >= max_fd) {
            close(res);
        } else {
            struct conn *c = &conns[res];
            if (!c->buf && posix_memalign((void **)&c->buf, 4096, BUF_SIZE) != 0) {
                close(res);
                c->buf = NULL;
            } else {
                c->open = 1;
                set_nodelay(res, srv.ep.family);
                arm_recv(res);
            }
        }
    } else {
        /* EMFILE and friends: say so once (the harness reads stderr at exit and a full pipe
         * would block us), and try again in 100 ms, not at once over and over. */
        static int warned;
        if (!warned++)
            fprintf(stderr, "%s: accept: %s (reported once)\n", prog_name, strerror(-res));
        if (!(flags & IORING_CQE_F_MORE)) {
            static struct __kernel_timespec later = {.tv_sec = 0, .tv_nsec = 100000000};
            prep(ring_sqe(&ring), IORING_OP_TIMEOUT, -1, &later, 1, UD(K_ACCEPT_RETRY, 0, 0));
            return;
        }
    }
    if (!(flags & IORING_CQE_F_MORE))
        arm_accept(lfd);
}

int main(int argc, char **argv)
{
    prog_name = "c-uring";
    server_start(&srv, argc, argv);

    struct rlimit nofile;
    getrlimit(RLIMIT_NOFILE, &nofile);
    max_fd = nofile.rlim_cur == RLIM_INFINITY || nofile.rlim_cur > 1048576 ? 1048576
                                                                            : (int)nofile.rlim_cur;
    conns = calloc((size_t)max_fd, sizeof(*conns));
    if (!conns)
        die(2, "out of memory for %d connections", max_fd);

    ring_setup(&ring);
    arm_accept(srv.lfd);
    struct signalfd_siginfo info;
    prep(ring_sqe(&ring), IORING_OP_READ, srv.sfd, &info, sizeof(info), UD(K_SIGNAL, 0, 0));
    server_ready(&srv);

    for (int running = 1; running;) {
        ring_enter(&ring, 1);
        unsigned head = *ring.cq_head;
        unsigned tail = __atomic_load_n(ring.cq_tail, __ATOMIC_ACQUIRE);
        for (; head != tail; head++) {
            const struct io_uring_cqe *cqe = &ring.cqes[head & ring.cq_mask];
            uint64_t ud = cqe->user_data;
            int kind = (int)(ud >> 56), fd = (int)(uint32_t)ud, res = cqe->res;
            unsigned gen = (unsigned)(ud >> 32) & 0xFFFFFF;
            if (kind == K_ACCEPT) {
                on_accept(srv.lfd, res, cqe->flags);
            } else if (kind == K_ACCEPT_RETRY) {
                arm_accept(srv.lfd);
            } else if (kind == K_SIGNAL) {
                running = 0;
            } else if (!conns[fd].open || (conns[fd].gen & 0xFFFFFF) != gen) {
                continue; /* a completion for a connection already closed */
            } else if (kind == K_SEND || res <= 0) {
                /* K_SEND: the echo SEND failed (success posts nothing); res <= 0: EOF or an
                 * error on the RECV. Either way the connection is done. */
                conn_close(fd);
            } else if (srv.discard) {
                arm_recv(fd);
            } else {
                echo(fd, (unsigned)res);
            }
        }
        __atomic_store_n(ring.cq_head, head, __ATOMIC_RELEASE);
    }

    server_stop(&srv);
    return 0;
}
