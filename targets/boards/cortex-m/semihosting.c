/* Semihosting calls and board_exit for every Cortex-M port (semihosting.h). */
#include "semihosting.h"
#include "../../firmware/board.h"

uint32_t semihost(uint32_t op, volatile uint32_t *args)
{
    register uint32_t r0 __asm__("r0") = op;
    register volatile uint32_t *r1 __asm__("r1") = args;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* SYS_EXIT_EXTENDED: QEMU exits with status `code`. */
void board_exit(int code)
{
    volatile uint32_t block[2];
    block[0] = 0x20026u;               /* ADP_Stopped_ApplicationExit */
    block[1] = (uint32_t)code;
    semihost(SH_EXIT_EXTENDED, block);
    for (;;)
        __asm__ volatile("wfi");
}

/* Any fault or unexpected interrupt: say so and exit with 127. */
void board_fault(void)
{
    static const uint8_t msg[] = "\r\n[board] fault\r\n";
    board_write(msg, sizeof msg - 1);
    board_exit(127);
}
