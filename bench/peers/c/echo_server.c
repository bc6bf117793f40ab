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
#include "server.h"

#include <fcntl.h>
#include <getopt.h>
#include <sys/epoll.h>
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
static struct server srv; /* the command line's choices, the listener, the signalfd */

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
    if (srv.discard)
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
        set_nodelay(fd, srv.ep.family);
        watch(EPOLL_CTL_ADD, fd, EPOLLIN, c);
    }
}

int main(int argc, char **argv)
{
    prog_name = "c-epoll";
    server_start(&srv, argc, argv);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die(2, "epoll_create1: %s", strerror(errno));
    watch(EPOLL_CTL_ADD, srv.lfd, EPOLLIN, &listener_tag);
    watch(EPOLL_CTL_ADD, srv.sfd, EPOLLIN, &signal_tag);
    server_ready(&srv);

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
                on_accept(srv.lfd);
            else
                on_conn(ptr, events[i].events);
        }
    }

    server_stop(&srv);
    return 0;
}
