/* Startup for QEMU mps2-an386 / mps2-an500: the vector table at 0x0 and the reset
 * handler (FPU on, .data copied, .bss zeroed, main). Symbols come from mps2.ld.S. */
#include <stdint.h>

extern uint32_t __stack_top, __data_load, __data_start, __data_end, __bss_start, __bss_end;
extern int main(void);
void board_uart0_rx_irq(void);
void board_systick_irq(void);
void board_fault(void);
void Reset_Handler(void);
void board_reset_c(void);

typedef void (*vector_t)(void);

/* 16 system exceptions, then the external interrupts (CMSDK UART0 RX is IRQ 0). */
__attribute__((section(".vectors"), used))
const vector_t board_vectors[16 + 32] = {
    (vector_t)(uintptr_t)&__stack_top,  /* initial SP */
    Reset_Handler,
    board_fault, board_fault, board_fault, board_fault, board_fault,  /* NMI .. UsageFault */
    0, 0, 0, 0,
    board_fault,                        /* SVCall */
    board_fault,                        /* DebugMon */
    0,
    board_fault,                        /* PendSV */
    board_systick_irq,                  /* SysTick */
    board_uart0_rx_irq,                 /* IRQ 0: UART0 RX */
    board_fault, board_fault, board_fault, board_fault, board_fault, board_fault, board_fault,
    board_fault, board_fault, board_fault, board_fault, board_fault, board_fault, board_fault,
    board_fault, board_fault, board_fault, board_fault, board_fault, board_fault, board_fault,
    board_fault, board_fault, board_fault, board_fault, board_fault, board_fault, board_fault,
    board_fault, board_fault, board_fault,
};

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
