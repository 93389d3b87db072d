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
 *
 * The link cannot be held: while a client waits to connect, the current connection is closed
 * once it has gone $EDGELEARN_BOARD_GRACE_MS milliseconds (default 2000) without a request that
 * passed authentication (board_link_trusted), and the waiting client is served.
 *
 * Storage (board.h): the file $EDGELEARN_BOARD_STORAGE, mapped shared, so every byte the
 * firmware writes is in the file at once and survives the process however it ends. Power-loss
 * injection for tests: $EDGELEARN_BOARD_POWER_CUT=N kills the process (SIGKILL, from itself)
 * just before the N-th byte (from 0) that it erases or programs.
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
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

static int listener = -1, conn = -1;
static uint8_t inbuf[4096];
static size_t in_len, in_pos;
static int detached;
static long long grace_ms = 2000, trusted_at;
static int client_waiting;
static uint8_t *storage;
static uint32_t storage_bytes;
static long long power_cut = -1, storage_written;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static void map_storage(const char *path)
{
    struct stat st;
    int fd;
    if (path == NULL || *path == 0) return;
    fd = open(path, O_RDWR);
    if (fd < 0 || fstat(fd, &st) < 0) die(path);
    if (st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) die("mmap");
        storage = m;
        storage_bytes = (uint32_t)st.st_size;
    }
    close(fd);
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
    if (getenv("EDGELEARN_BOARD_GRACE_MS")) {        /* refused, not read as 0, as the QEMU boards' broker does */
        char *end;
        grace_ms = strtoll(getenv("EDGELEARN_BOARD_GRACE_MS"), &end, 10);
        if (*end || end == getenv("EDGELEARN_BOARD_GRACE_MS") || grace_ms < 0) {
            fprintf(stderr, "EDGELEARN_BOARD_GRACE_MS=%s: not a whole number of milliseconds\n",
                    getenv("EDGELEARN_BOARD_GRACE_MS"));
            exit(2);
        }
    }
    if (getenv("EDGELEARN_BOARD_POWER_CUT")) power_cut = atoll(getenv("EDGELEARN_BOARD_POWER_CUT"));
    map_storage(getenv("EDGELEARN_BOARD_STORAGE"));
    printf("PORT %u\n", (unsigned)ntohs(addr.sin_port));
    fflush(stdout);
}

static void take(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn = fd;
    in_len = in_pos = 0;
    client_waiting = 0;
    trusted_at = now_ms();
}

static void stdin_closed_exits(const struct pollfd *p)
{
    char c;
    if (p->revents && read(STDIN_FILENO, &c, 1) <= 0) exit(0);
}

/* Wait for a connection, or for stdin to close (then exit; not when detached). */
static void accept_host(void)
{
    for (;;) {
        struct pollfd fds[2] = {{listener, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
        if (poll(fds, detached ? 1 : 2, -1) < 0) continue;
        if (!detached) stdin_closed_exits(&fds[1]);
        if (fds[0].revents & POLLIN) {
            int fd = accept(listener, NULL, NULL);
            if (fd >= 0) { take(fd); return; }
        }
    }
}

/* The connection's next bytes. While another client waits, the connection keeps the link only
 * as long as authenticated requests keep coming (board_link_trusted): grace_ms after the last. */
int board_read_byte(void)
{
    while (in_pos == in_len) {
        struct pollfd fds[3];
        int n = 0, at_listener = -1, at_stdin = -1, timeout = -1;
        ssize_t got;
        if (conn < 0) accept_host();
        fds[n++] = (struct pollfd){conn, POLLIN, 0};
        if (!client_waiting) { at_listener = n; fds[n++] = (struct pollfd){listener, POLLIN, 0}; }
        else {
            long long left = grace_ms - (now_ms() - trusted_at);
            timeout = left > 0 ? (int)left : 0;
        }
        if (!detached) { at_stdin = n; fds[n++] = (struct pollfd){STDIN_FILENO, POLLIN, 0}; }
        if (poll(fds, (nfds_t)n, timeout) < 0) continue;
        if (at_stdin >= 0) stdin_closed_exits(&fds[at_stdin]);
        if (at_listener >= 0 && (fds[at_listener].revents & POLLIN)) client_waiting = 1;
        if (client_waiting && now_ms() - trusted_at >= grace_ms) {    /* idle: the waiting client's turn */
            int fd = accept(listener, NULL, NULL);
            if (fd >= 0) { close(conn); take(fd); }
            else client_waiting = 0;
            continue;
        }
        if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        got = recv(conn, inbuf, sizeof inbuf, 0);
        if (got <= 0) {                        /* the host went away: wait for the next one */
            close(conn);
            conn = -1;
            continue;
        }
        in_len = (size_t)got;
        in_pos = 0;
    }
    return inbuf[in_pos++];
}

void board_link_trusted(void) { trusted_at = now_ms(); }

uint32_t board_storage_size(void) { return storage_bytes; }

const uint8_t *board_storage(void) { return storage; }

/* One byte of an erase or a program: where the injected power loss strikes. */
static void wear(void)
{
    if (power_cut >= 0 && storage_written == power_cut) raise(SIGKILL);
    storage_written++;
}

void board_storage_erase(uint32_t offset, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n && offset + i < storage_bytes; i++) { wear(); storage[offset + i] = 0xFF; }
}

void board_storage_program(uint32_t offset, const uint8_t *p, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n && offset + i < storage_bytes; i++) { wear(); storage[offset + i] = p[i]; }
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
