/* Startup for QEMU riscv32 `virt` (RV32IMAC, machine mode only): the reset entry at the start of
 * the flash (QEMU's reset code jumps to pflash0 at 0x20000000 when a pflash drive is given),
 * the trap vector, then common/crt.c (.data copied, .bss zeroed, main). */
void board_trap(void);

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
