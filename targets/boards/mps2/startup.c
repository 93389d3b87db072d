/* Startup for QEMU mps2-an386 / mps2-an500: the vector table at 0x0 (the reset handler is
 * targets/boards/cortex-m/reset.c). */
#include "../cortex-m/vectors.h"

void board_uart0_rx_irq(void);
void board_systick_irq(void);

/* 16 system exceptions, then the external interrupts (CMSDK UART0 RX is IRQ 0). */
__attribute__((section(".vectors"), used))
const vector_t board_vectors[16 + 32] = {
    CORTEX_M_SYSTEM_VECTORS(board_systick_irq),
    board_uart0_rx_irq,                 /* IRQ 0: UART0 RX */
    board_fault, board_fault, board_fault, board_fault, board_fault, board_fault, board_fault,
    board_fault, board_fault, board_fault, board_fault, board_fault, board_fault, board_fault,
    board_fault, board_fault, board_fault, board_fault, board_fault, board_fault, board_fault,
    board_fault, board_fault, board_fault, board_fault, board_fault, board_fault, board_fault,
    board_fault, board_fault, board_fault,
};
