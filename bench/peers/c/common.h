/* What the C programs of the harness (echo server, load client, http_load) share: endpoints
 * written and parsed the way fastsock.address does it (tcp://127.0.0.1:PORT, tcp://[::1]:PORT,
 * unix:/path, unix:@name), the --host/--port/--unix options that name one, number parsing and
 * the one-line errors for options, and one-line fatal errors.
 *
 * Header-only (static inline functions) so each program stays one `cc` command.
 */
#ifndef FASTSOCK_PEERS_COMMON_H
#define FASTSOCK_PEERS_COMMON_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

/* sun_path is 108 bytes on Linux and a path needs its terminating NUL. */
#define UNIX_PATH_MAX_LEN 107

static const char *prog_name = "fastsock-peer";

/* One line on stderr, then exit: 2 for bad input or start-up failures (like fastsock serve). */
__attribute__((format(printf, 2, 3), noreturn))
static inline void die(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(status);
}

struct endpoint {
    int family;               /* AF_INET, AF_INET6 or AF_UNIX */
    char host[INET6_ADDRSTRLEN];
    int port;
    char path[UNIX_PATH_MAX_LEN + 1]; /* "@name" for the abstract namespace */
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

static inline int endpoint_is_abstract(const struct endpoint *ep)
{
    return ep->family == AF_UNIX && ep->path[0] == '@';
}

/* --host H, --port N, --unix PATH: how every program names its endpoint. Put
 * ENDPOINT_LONG_OPTIONS in the getopt_long table and offer each option to endpoint_option()
 * first. The codes are above any char, so they never clash with a program's short options. */
enum { OPT_HOST = 256, OPT_PORT, OPT_UNIX };
#define ENDPOINT_LONG_OPTIONS                                                                  \
    {"host", required_argument, NULL, OPT_HOST}, {"port", required_argument, NULL, OPT_PORT},  \
        {"unix", required_argument, NULL, OPT_UNIX}

struct endpoint_options {
    const char *host; /* default 127.0.0.1 */
    const char *port; /* NULL unless --port was given */
    const char *unix_path; /* NULL unless --unix was given */
};
#define ENDPOINT_OPTIONS_INIT {.host = "127.0.0.1", .port = NULL, .unix_path = NULL}

/* Take opt if it is one of the endpoint options: 1 if it was, 0 if it is the caller's. */
static inline int endpoint_option(struct endpoint_options *o, int opt, const char *arg)
{
    switch (opt) {
    case OPT_HOST: o->host = arg; return 1;
    case OPT_PORT: o->port = arg; return 1;
    case OPT_UNIX: o->unix_path = arg; return 1;
    default: return 0;
    }
}

/* The next option of argv that is the caller's, -1 after the last: getopt_long over options
 * (which hold ENDPOINT_LONG_OPTIONS), the endpoint options taken into o on the way. getopt's own
 * message is off: an option it did not take comes back as '?' for die_bad_option(). */
static inline int next_option(int argc, char **argv, const struct option *options,
                              struct endpoint_options *o)
{
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1)
        if (!endpoint_option(o, opt, optarg))
            return opt;
    return -1;
}

/* The one-line error for an option getopt_long did not take (see next_option). */
__attribute__((noreturn)) static inline void die_bad_option(char **argv)
{
    die(2, "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
}

/* Options only: a word left after them is a mistake, not something to ignore. */
static inline void refuse_operands(int argc, char **argv)
{
    if (optind < argc)
        die(2, "unexpected argument '%s' (see --help)", argv[optind]);
}

/* Fill ep from --host/--port or --unix; exactly one of port and unix_path must be given. */
static inline void endpoint_from_options(struct endpoint *ep, const struct endpoint_options *o)
{
    const char *host = o->host, *port_text = o->port, *unix_path = o->unix_path;
    memset(ep, 0, sizeof(*ep));
    if (unix_path && port_text)
        die(2, "give either --port or --unix, not both");
    if (!unix_path && !port_text)
        die(2, "give --port N (0 picks a free port) or --unix PATH");
    if (unix_path) {
        size_t len = strlen(unix_path);
        if (len == 0 || strcmp(unix_path, "@") == 0)
            die(2, "UNIX socket path is empty");
        if (len > UNIX_PATH_MAX_LEN)
            die(2, "UNIX socket path is %zu bytes, longer than the kernel limit of %d: %s", len,
                UNIX_PATH_MAX_LEN, unix_path);
        struct sockaddr_un *sun = (struct sockaddr_un *)&ep->addr;
        ep->family = sun->sun_family = AF_UNIX;
        memcpy(ep->path, unix_path, len + 1);
        memcpy(sun->sun_path, unix_path, len);
        if (unix_path[0] == '@') {
            /* Abstract: a leading NUL, and the length says where the name ends (no NUL). */
            sun->sun_path[0] = '\0';
            ep->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
        } else {
            ep->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
        }
        return;
    }
    char *end;
    errno = 0;
    long port = strtol(port_text, &end, 10);
    if (errno || *port_text == '\0' || *end != '\0' || port < 0 || port > 65535)
        die(2, "port %s is out of range 0-65535", port_text);
    ep->port = (int)port;

    /* Accept "[::1]" as well as "::1"; "localhost" means 127.0.0.1, as in fastsock. */
    size_t hlen = strlen(host);
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    }
    if (hlen == 0 || (hlen == 9 && strncmp(host, "localhost", 9) == 0)) {
        host = "127.0.0.1";
        hlen = 9;
    }
    if (hlen >= sizeof(ep->host))
        die(2, "host %s is not an IPv4 or IPv6 address", host);
    memcpy(ep->host, host, hlen);
    ep->host[hlen] = '\0';

    struct sockaddr_in *sin = (struct sockaddr_in *)&ep->addr;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ep->addr;
    if (inet_pton(AF_INET, ep->host, &sin->sin_addr) == 1) {
        ep->family = sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        ep->addrlen = sizeof(*sin);
    } else if (inet_pton(AF_INET6, ep->host, &sin6->sin6_addr) == 1) {
        ep->family = sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        ep->addrlen = sizeof(*sin6);
    } else {
        die(2, "host '%s' is not an IPv4 or IPv6 address", ep->host);
    }
}

/* The endpoint as the ready line and fastsock.address.parse_endpoint write it. */
static inline void endpoint_format(const struct endpoint *ep, char *out, size_t size)
{
    if (ep->family == AF_UNIX)
        snprintf(out, size, "unix:%s", ep->path);
    else if (ep->family == AF_INET6)
        snprintf(out, size, "tcp://[%s]:%d", ep->host, ep->port);
    else
        snprintf(out, size, "tcp://%s:%d", ep->host, ep->port);
}

static inline const char *endpoint_transport(const struct endpoint *ep)
{
    return ep->family == AF_UNIX ? "unix" : ep->family == AF_INET6 ? "tcp6" : "tcp";
}

/* Small echoes must not wait for Nagle's algorithm; a no-op on UNIX sockets. */
static inline void set_nodelay(int fd, int family)
{
    int one = 1;
    if (family != AF_UNIX)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static inline long parse_long(const char *option, const char *text, long min, long max)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno || *text == '\0' || *end != '\0' || value < min || value > max)
        die(2, "%s must be an integer from %ld to %ld, not '%s'", option, min, max, text);
    return value;
}

static inline double parse_seconds(const char *option, const char *text, double min)
{
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (errno || *text == '\0' || *end != '\0' || !(value >= min) || value > 86400.0)
        die(2, "%s must be a number of seconds from %g to 86400, not '%s'", option, min, text);
    return value;
}

#endif
