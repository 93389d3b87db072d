/* What every port's reset entry (the board's own assembly: stack, FPU or trap vector) jumps to:
 * .data copied from its load address, .bss zeroed, main; if main ever returns, sleep. The
 * symbols come from the board's linker script. */
#include <stdint.h>

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end;
extern int main(void);
void board_reset_c(void);

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
