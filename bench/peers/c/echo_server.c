/* c-epoll: the reference echo server fastsock is measured against.
 *
 * One thread, level-triggered epoll, non-blocking sockets, one 64 KiB buffer per connection.
 * A connection is either reading (EPOLLIN) or, when a send() could not take everything,
 * blocked (EPOLLOUT only): it keeps the unsent remainder and stops reading until that is gone,
 * so a client that does not read cannot make the server buffer without bound.
 *
 *   echo_server [--host H] (--port N | --unix PATH|@NAME) [--mode echo|discard]
 *
 * Prints "c-epoll: listening on ENDPOINT" when ready; SIGTERM/SIGINT -> exit 0 (socket file
 * removed). Build: cc -O2 -Wall -Wextra -o bench/peers/bin/echo_server bench/peers/c/echo_server.c
 */
#include "common.h"

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUF_SIZE 65536
#define MAX_EVENTS 256

struct conn {
    int fd;
    size_t off, len; /* buf[off:len] is echo data the socket did not take yet */
    unsigned char buf[BUF_SIZE];
};

/* epoll_data.ptr is a struct conn * for connections, or the address of one of these tags. */
static char listener_tag, signal_tag;

static int epfd;
static int discard_mode;
static int conn_family;

static void watch(int op, int fd, uint32_t events, void *ptr)
{
    struct epoll_event ev = {.events = events, .data.ptr = ptr};
    if (epoll_ctl(epfd, op, fd, &ev) < 0)
        die(1, "epoll_ctl: %s", strerror(errno));
}

static void conn_close(struct conn *c)
{
    close(c->fd); /* also removes it from the epoll set */
    free(c);
}

/* Send what is pending. Returns 0 when all is sent or the socket is full, -1 on error. */
static int conn_flush(struct conn *c)
{
    while (c->off < c->len) {
        ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (n > 0) {
            c->off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        } else {
            return -1;
        }
    }
    c->off = c->len = 0;
    return 0;
}

static void on_conn(struct conn *c, uint32_t events)
{
    if (events & EPOLLERR) {
        conn_close(c);
        return;
    }
    if (c->len) {
        /* Blocked: only EPOLLOUT (or a hang-up) can be why we are here. */
        if (conn_flush(c) < 0 || (events & EPOLLHUP)) {
            conn_close(c);
            return;
        }
        if (c->len == 0)
            watch(EPOLL_CTL_MOD, c->fd, EPOLLIN, c); /* drained: read again */
        return;
    }
    /* One read per readiness event: level-triggered epoll calls again if more is waiting, and
     * other connections get their turn in between. */
    ssize_t n = recv(c->fd, c->buf, BUF_SIZE, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) { /* 0: the client closed; <0: reset or another error */
        conn_close(c);
        return;
    }
    if (discard_mode)
        return;
    c->off = 0;
    c->len = (size_t)n;
    if (conn_flush(c) < 0) {
        conn_close(c);
        return;
    }
    if (c->len)
        watch(EPOLL_CTL_MOD, c->fd, EPOLLOUT, c); /* blocked: stop reading until drained */
}

static void on_accept(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            /* EMFILE and friends: leave the rest in the backlog for later. Say so once only:
             * the harness reads our stderr at exit, and a full pipe would block us. */
            static int warned;
            if (!warned++)
                fprintf(stderr, "%s: accept: %s (reported once)\n", prog_name, strerror(errno));
            return;
        }
        struct conn *c = malloc(sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->off = c->len = 0;
        set_nodelay(fd, conn_family);
        watch(EPOLL_CTL_ADD, fd, EPOLLIN, c);
    }
}

/* Make a UNIX path free to bind: remove a stale socket file (nobody answers on it), refuse
 * anything else, as fastsock.address does. */
static void check_unix_path(const struct endpoint *ep)
{
    struct stat st;
    if (lstat(ep->path, &st) < 0)
        return;
    if (!S_ISSOCK(st.st_mode))
        die(2, "refusing to replace unix:%s: it exists and is not a socket", ep->path);
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0)
        die(2, "socket: %s", strerror(errno));
    int rc = connect(probe, (const struct sockaddr *)&ep->addr, ep->addrlen);
    int err = errno;
    close(probe);
    if (rc == 0)
        die(2, "unix:%s is in use: another server answers on it", ep->path);
    if (err != ECONNREFUSED)
        die(2, "cannot check existing socket unix:%s: %s", ep->path, strerror(err));
    unlink(ep->path);
}

static int open_listener(struct endpoint *ep)
{
    char text[256];
    if (ep->family == AF_UNIX && !endpoint_is_abstract(ep))
        check_unix_path(ep);
    int fd = socket(ep->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die(2, "socket: %s", strerror(errno));
    int one = 1;
    if (ep->family != AF_UNIX)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ep->family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    endpoint_format(ep, text, sizeof(text));
    if (bind(fd, (const struct sockaddr *)&ep->addr, ep->addrlen) < 0 || listen(fd, 1024) < 0)
        die(2, "cannot listen on %s: %s", text, strerror(errno));
    if (ep->family != AF_UNIX) {
        struct sockaddr_storage real;
        socklen_t len = sizeof(real);
        if (getsockname(fd, (struct sockaddr *)&real, &len) < 0)
            die(2, "getsockname: %s", strerror(errno));
        ep->port = ntohs(ep->family == AF_INET6 ? ((struct sockaddr_in6 *)&real)->sin6_port
                                                : ((struct sockaddr_in *)&real)->sin_port);
    }
    return fd;
}

__attribute__((noreturn)) static void usage(int status)
{
    fprintf(status ? stderr : stdout,
            "usage: %s [--host H] (--port N | --unix PATH|@NAME) [--mode echo|discard]\n",
            prog_name);
    exit(status);
}

int main(int argc, char **argv)
{
    prog_name = "c-epoll";
    struct endpoint_options target = ENDPOINT_OPTIONS_INIT;
    const char *mode = "echo";
    static const struct option options[] = {
        ENDPOINT_LONG_OPTIONS,
        {"mode", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'H'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    opterr = 0; /* we print our own one-line error */
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (endpoint_option(&target, opt, optarg))
            continue;
        switch (opt) {
        case 'm': mode = optarg; break;
        case 'H': usage(0);
        default: die_bad_option(argv);
        }
    }
    refuse_operands(argc, argv);
    if (strcmp(mode, "echo") == 0)
        discard_mode = 0;
    else if (strcmp(mode, "discard") == 0)
        discard_mode = 1;
    else
        die(2, "--mode must be echo or discard, not '%s'", mode);

    struct endpoint ep;
    endpoint_from_options(&ep, &target);
    conn_family = ep.family;

    /* Signals arrive as readable events on a signalfd: no handler, no races, exit from main. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    int sfd = signalfd(-1, &stop, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0)
        die(2, "signalfd: %s", strerror(errno));

    int lfd = open_listener(&ep);
    struct stat ours; /* remove the socket file at exit only if it is still the one we made */
    int have_file = ep.family == AF_UNIX && !endpoint_is_abstract(&ep) && stat(ep.path, &ours) == 0;

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die(2, "epoll_create1: %s", strerror(errno));
    watch(EPOLL_CTL_ADD, lfd, EPOLLIN, &listener_tag);
    watch(EPOLL_CTL_ADD, sfd, EPOLLIN, &signal_tag);

    char text[256];
    endpoint_format(&ep, text, sizeof(text));
    printf("%s: listening on %s\n", prog_name, text);
    fflush(stdout);

    struct epoll_event events[MAX_EVENTS];
    for (int running = 1; running;) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die(1, "epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            void *ptr = events[i].data.ptr;
            if (ptr == &signal_tag)
                running = 0;
            else if (ptr == &listener_tag)
                on_accept(lfd);
            else
                on_conn(ptr, events[i].events);
        }
    }

    close(lfd);
    struct stat now;
    if (have_file && stat(ep.path, &now) == 0 && now.st_dev == ours.st_dev &&
        now.st_ino == ours.st_ino)
        unlink(ep.path);
    return 0;
}
