/* What the C echo servers (c-epoll, c-uring) share around their loops: the command line
 * (--host/--port/--unix, --mode echo|discard, --help), SIGTERM/SIGINT as a signalfd, the
 * listening socket with fastsock's socket-file care, and removing the socket file at exit only
 * if it is still the one we made.
 *
 * Header-only like common.h, so each server stays one `cc` command.
 */
#ifndef FASTSOCK_PEERS_SERVER_H
#define FASTSOCK_PEERS_SERVER_H

#include "common.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

/* Make a UNIX path free to bind: remove a stale socket file (nobody answers on it), refuse
 * anything else, as fastsock.address does. */
static inline void check_unix_path(const struct endpoint *ep)
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

static inline int open_listener(struct endpoint *ep)
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

__attribute__((noreturn)) static inline void server_usage(int status)
{
    fprintf(status ? stderr : stdout,
            "usage: %s [--host H] (--port N | --unix PATH|@NAME) [--mode echo|discard]\n",
            prog_name);
    exit(status);
}

/* A started server: its endpoint, listening socket, signalfd and socket file. */
struct server {
    struct endpoint ep;
    int lfd;
    int sfd; /* readable when SIGTERM or SIGINT arrived */
    int discard;
    int have_file;
    struct stat file; /* the socket file we made, if have_file */
};

/* Parse the command line, block SIGTERM/SIGINT into a signalfd, open the listener. Bad input
 * or a failure: one line on stderr, exit 2. Print the ready line with server_ready(). */
static inline void server_start(struct server *s, int argc, char **argv)
{
    struct endpoint_options target = ENDPOINT_OPTIONS_INIT;
    const char *mode = "echo";
    static const struct option options[] = {
        ENDPOINT_LONG_OPTIONS,
        {"mode", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'H'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = next_option(argc, argv, options, &target)) != -1) {
        switch (opt) {
        case 'm': mode = optarg; break;
        case 'H': server_usage(0);
        default: die_bad_option(argv);
        }
    }
    refuse_operands(argc, argv);
    if (strcmp(mode, "echo") == 0)
        s->discard = 0;
    else if (strcmp(mode, "discard") == 0)
        s->discard = 1;
    else
        die(2, "--mode must be echo or discard, not '%s'", mode);
    endpoint_from_options(&s->ep, &target);

    /* Signals arrive as reads on a signalfd: no handler, no races, exit from main. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    s->sfd = signalfd(-1, &stop, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s->sfd < 0)
        die(2, "signalfd: %s", strerror(errno));

    s->lfd = open_listener(&s->ep);
    s->have_file = s->ep.family == AF_UNIX && !endpoint_is_abstract(&s->ep) &&
                   stat(s->ep.path, &s->file) == 0;
}

/* The ready line the harness waits for (fastsock.process). */
static inline void server_ready(const struct server *s)
{
    char text[256];
    endpoint_format(&s->ep, text, sizeof(text));
    printf("%s: listening on %s\n", prog_name, text);
    fflush(stdout);
}

/* Close the listener; remove the socket file only if it is still the one we made. */
static inline void server_stop(struct server *s)
{
    close(s->lfd);
    struct stat now;
    if (s->have_file && stat(s->ep.path, &now) == 0 && now.st_dev == s->file.st_dev &&
        now.st_ino == s->file.st_ino)
        unlink(s->ep.path);
}

#endif

