/* edgelearn firmware: the board interface. The main loop (main_loop.c) and the link
 * protocol (protocol.c) use nothing of a board but these four functions; a board port
 * (targets/boards/<board>/, or board_native.c for the host) implements them and nothing else.
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

#ifdef __cplusplus
}
#endif
#endif /* EL_BOARD_H */
