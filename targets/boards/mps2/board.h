/* Board interface of the edgelearn firmware, as implemented for QEMU mps2-an386
 * (Cortex-M4F) and mps2-an500 (Cortex-M7) by board.c and startup.c here.
 *
 * The firmware main loop programs against exactly these four calls:
 *   board_init       UART0 on, RX interrupt (IRQ 0) into a ring buffer, SysTick running;
 *   board_read_byte  the next received byte; blocks, sleeping with WFI until the RX
 *                    interrupt fills the ring (never busy-polls);
 *   board_write      sends bytes (TX polls the CMSDK "TX full" bit per byte);
 *   board_exit       ends the program: semihosting SYS_EXIT_EXTENDED, so QEMU's exit
 *                    status is `code` (QEMU runs with -semihosting-config enable=on);
 *   board_storage... the persistent storage in the file-backed PSRAM (board.c);
 *   board_link_trusted  one byte on UART1 per authenticated request, for the launcher's
 *                    link broker (firmware_host/link_broker.py) in front of UART0.
 * The extras below are for measurements (bench/device_cost.py) and are optional.
 */
#ifndef EDGELEARN_BOARD_H
#define EDGELEARN_BOARD_H

#include <stddef.h>
#include <stdint.h>

void board_init(void);
int board_read_byte(void);
void board_write(const uint8_t *p, size_t n);
void board_exit(int code) __attribute__((noreturn));
uint32_t board_storage_size(void);
const uint8_t *board_storage(void);
void board_storage_erase(uint32_t offset, uint32_t n);
void board_storage_program(uint32_t offset, const uint8_t *p, uint32_t n);
void board_link_trusted(void);

/* SysTick on the 25 MHz core clock, extended to 64 bits by its wrap interrupt. Under
 * QEMU -icount shift=7 an instruction takes 128 ns of virtual time, 3.2 ticks. */
uint64_t board_ticks(void);

#endif
