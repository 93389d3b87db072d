/* Startup for QEMU riscv32 `virt` (RV32IMAC, machine mode only): the reset entry at the start of
 * the flash (QEMU's reset code jumps to pflash0 at 0x20000000 when a pflash drive is given),
 * the trap vector, .data copied, .bss zeroed, main. Symbols come from riscv-virt.ld.S. */
#include <stdint.h>

extern uint32_t __stack_top, __data_load, __data_start, __data_end, __bss_start, __bss_end;
extern int main(void);
void board_trap(void);
void board_reset_c(void);

/* No C before the stack pointer is set: a few instructions of assembly, first in the flash
 * (the linker script keeps .reset at 0x20000000). mtvec in direct mode: every trap goes to
 * board_trap (board.c), which tells interrupts from faults by mcause. */
__attribute__((naked, noreturn, section(".reset"))) void board_reset(void)
{
    __asm__ volatile(
        ".option push\n"
        ".option norelax\n"            /* no gp: la must not be relaxed against it */
        ".option arch, +zicsr\n"       /* csrw; -march=rv32imac stays for gcc's multilib */
        "la sp, __stack_top\n"
        "la t0, board_trap\n"
        "csrw mtvec, t0\n"
        ".option pop\n"
        "j board_reset_c\n");
}

void board_reset_c(void)
{
    const uint32_t *src = &__data_load;
    uint32_t *dst = &__data_start;
    while (dst < &__data_end)
        *dst++ = *src++;
    for (dst = &__bss_start; dst < &__bss_end; )
        *dst++ = 0;
    (void)main();
    for (;;)
        __asm__ volatile("wfi");
}
