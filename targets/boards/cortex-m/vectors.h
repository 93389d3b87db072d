/* The start of every Cortex-M port's vector table (its startup.c): the initial stack pointer,
 * the reset handler (reset.c) and the 14 system exceptions, each a fault (semihosting.c) but
 * SysTick, which the board names. Its external interrupts follow. */
#ifndef EL_CORTEX_M_VECTORS_H
#define EL_CORTEX_M_VECTORS_H

#include <stdint.h>

typedef void (*vector_t)(void);

extern uint32_t __stack_top;            /* from the linker script */
void Reset_Handler(void);
void board_fault(void);

#define CORTEX_M_SYSTEM_VECTORS(systick)                                          \
    (vector_t)(uintptr_t)&__stack_top,  /* initial SP */                          \
    Reset_Handler,                                                                \
    board_fault, board_fault, board_fault, board_fault, board_fault,  /* NMI .. UsageFault */ \
    0, 0, 0, 0,                                                                   \
    board_fault,                        /* SVCall */                              \
    board_fault,                        /* DebugMon */                            \
    0,                                                                            \
    board_fault,                        /* PendSV */                              \
    systick

#endif
