/* Startup for the STM32F405 (QEMU netduinoplus2): the vector table at the start of flash
 * (0x08000000, aliased at 0x0 where the core fetches it at reset; the reset handler is
 * targets/boards/cortex-m/reset.c). RM0090 table 61: 82 external interrupts; USART1 is 37. */
#include "../cortex-m/vectors.h"

void board_usart1_irq(void);

#define IRQS 82
#define USART1_IRQ 37

__attribute__((section(".vectors"), used))
const vector_t board_vectors[16 + IRQS] = {
    CORTEX_M_SYSTEM_VECTORS(board_fault),   /* SysTick: not enabled */
    [16 ... 16 + USART1_IRQ - 1] = board_fault,
    [16 + USART1_IRQ] = board_usart1_irq,   /* USART1, the link */
    [16 + USART1_IRQ + 1 ... 16 + IRQS - 1] = board_fault,
};
