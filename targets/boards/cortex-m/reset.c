/* The reset handler of every Cortex-M port (the vector table is each board's own, startup.c):
 * FPU on, .data copied, .bss zeroed, main. Symbols come from the board's linker script. */
#include <stdint.h>

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end;
extern int main(void);
void Reset_Handler(void);
void board_reset_c(void);

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
