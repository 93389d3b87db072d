/* The reset handler of every Cortex-M port (the vector table is each board's own, startup.c):
 * FPU on, then common/crt.c (.data copied, .bss zeroed, main). */
void Reset_Handler(void);

/* Naked and in assembly: the FPU (CP10, CP11 full access in CPACR) is on before the first
 * instruction the compiler generates, which may be a floating-point one with -mfloat-abi=hard. */
__attribute__((naked, noreturn)) void Reset_Handler(void)
{
    __asm__ volatile(
        "ldr r0, =0xE000ED88\n"
        "ldr r1, [r0]\n"
        "orr r1, r1, #(0xF << 20)\n"
        "str r1, [r0]\n"
        "dsb\n"
        "isb\n"
        "b board_reset_c\n");
}
