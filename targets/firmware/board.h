/* edgelearn firmware: the board interface. The main loop (main_loop.c), the link protocol
 * (protocol.c) and the durable records (checkpoint.c) use nothing of a board but these
 * functions; a board port (targets/boards/<board>/, or board_native.c for the host)
 * implements them and nothing else.
 *
 * Only <stdint.h> and <stddef.h>; no libc, no malloc, no float.
 */
#ifndef EL_BOARD_H
#define EL_BOARD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bring up clocks, the UART (RX interrupt enabled) and whatever else the board needs.
 * Called once, first thing in main(). */
void board_init(void);

/* The next byte received from the host (0..255). Blocks until one arrives; on a real board
 * it sleeps with WFI until the UART RX interrupt has queued a byte (no busy polling).
 * Returns -1 only when the link is gone for good (the native board: the host closed the
 * socket and no new one came); the main loop then calls board_exit(0). A board that cannot
 * lose its link never returns -1. */
int board_read_byte(void);

/* Send n bytes to the host; returns when all of them are queued or sent. */
void board_write(const uint8_t *p, size_t n);

/* Leave the firmware with an exit code (semihosting SYS_EXIT_EXTENDED on QEMU, exit() on
 * the native board). Never returns. */
void board_exit(int code);

/* The board's persistent storage (emulated flash: a file mapped into the native board, a
 * file-backed PSRAM region on QEMU, docs/protocol.md §7): board_storage_size() bytes readable in
 * place at board_storage() (0 bytes: the board has none). Erasing sets bytes to 0xFF, programming
 * writes bytes, in increasing address order; a power loss may cut either after any byte, and the
 * bytes written until then stay (checkpoint.c is written for exactly that). */
uint32_t board_storage_size(void);
const uint8_t *board_storage(void);
void board_storage_erase(uint32_t offset, uint32_t n);
void board_storage_program(uint32_t offset, const uint8_t *p, uint32_t n);

/* Called after every request that passed authentication (docs/security.md): a board whose link
 * another client can wait for (the native board's socket) keeps the connection while these
 * come, and hands the link to a waiting client once they stop for its grace period, so an
 * idle or unauthenticated connection cannot hold the board. A UART has nothing to do here. */
void board_link_trusted(void);

#ifdef __cplusplus
}
#endif
#endif /* EL_BOARD_H */
