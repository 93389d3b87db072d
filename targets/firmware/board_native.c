/* The native board: board.h over a TCP socket on the host (POSIX), so the firmware's main
 * loop runs as an ordinary process on machines without QEMU or hardware.
 *
 * Listens on 127.0.0.1, port $EDGELEARN_BOARD_PORT (default 0: an ephemeral port), prints
 * "PORT <n>" on stdout and serves one host connection at a time. When the host goes away
 * (closed, killed) it waits for the next one: the firmware's state, the active model
 * included, survives reconnections, as a real board's does when its cable is replugged.
 * It exits when stdin reaches end of file (its launcher died or closed the pipe) or on
 * the protocol's EXIT message. Detached ($EDGELEARN_BOARD_DETACHED=1: started by
 * `edgelearn board start`, which outlives its launcher) it ignores stdin and runs until EXIT
 * or a signal.
 */
#define _POSIX_C_SOURCE 200809L
#include "board.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int listener = -1, conn = -1;
static uint8_t inbuf[4096];
static size_t in_len, in_pos;
static int detached;

static void die(const char *what)
{
    perror(what);
    exit(2);
}

void board_init(void)
{
    struct sockaddr_in addr;
    socklen_t alen = sizeof addr;
    const char *env = getenv("EDGELEARN_BOARD_PORT");
    const char *det = getenv("EDGELEARN_BOARD_DETACHED");
    int one = 1;
    detached = det != NULL && strcmp(det, "1") == 0;
    signal(SIGPIPE, SIG_IGN);
    listener = socket(AF_INET, SOCK_STREAM, 0);
    if (listener < 0) die("socket");
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((uint16_t)(env ? atoi(env) : 0));
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
    if (listen(listener, 1) < 0) die("listen");
    if (getsockname(listener, (struct sockaddr *)&addr, &alen) < 0) die("getsockname");
    printf("PORT %u\n", (unsigned)ntohs(addr.sin_port));
    fflush(stdout);
}

/* Wait for a connection, or for stdin to close (then exit; not when detached). */
static void accept_host(void)
{
    int one = 1;
    for (;;) {
        struct pollfd fds[2] = {{listener, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
        if (poll(fds, detached ? 1 : 2, -1) < 0) continue;
        if (!detached && fds[1].revents) {
            char c;
            if (read(STDIN_FILENO, &c, 1) <= 0) exit(0);
        }
        if (fds[0].revents & POLLIN) {
            conn = accept(listener, NULL, NULL);
            if (conn >= 0) {
                setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                in_len = in_pos = 0;
                return;
            }
        }
    }
}

int board_read_byte(void)
{
    while (in_pos == in_len) {
        ssize_t n;
        if (conn < 0) accept_host();
        n = recv(conn, inbuf, sizeof inbuf, 0);
        if (n <= 0) {                          /* the host went away: wait for the next one */
            close(conn);
            conn = -1;
            continue;
        }
        in_len = (size_t)n;
        in_pos = 0;
    }
    return inbuf[in_pos++];
}

void board_write(const uint8_t *p, size_t n)
{
    while (n > 0 && conn >= 0) {
        ssize_t w = send(conn, p, n, 0);
        if (w <= 0) return;                    /* lost: the host retransmits */
        p += w;
        n -= (size_t)w;
    }
}

void board_exit(int code)
{
    if (conn >= 0) close(conn);
    exit(code);
}
