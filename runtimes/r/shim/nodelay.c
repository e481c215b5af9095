/* LD_PRELOAD shim: TCP_NODELAY on every accepted socket.
 * httpuv (plumber) writes the response head and body in two write()s and never disables
 * Nagle, so on a keep-alive connection the body waits for the client's delayed ACK (~40 ms,
 * runtimes-offline.md). Non-TCP sockets (unix) just make setsockopt fail harmlessly. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static int nodelay(int fd) {
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

int accept(int s, struct sockaddr *a, socklen_t *l) {
    static int (*real)(int, struct sockaddr *, socklen_t *);
    if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
    return nodelay(real(s, a, l));
}

int accept4(int s, struct sockaddr *a, socklen_t *l, int f) {
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
    return nodelay(real(s, a, l, f));
}
