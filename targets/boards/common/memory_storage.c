/* Erasing and programming a storage that the core reads and writes as plain memory
 * (board_storage() and board_storage_size() come from the board's board.c): the mps2 PSRAM
 * backed by a file, the STM32F405 port's SRAM mirror. Bytes go in increasing address order, as
 * board.h promises. A board that must also copy what changed elsewhere (the STM32F405 port writes
 * it through to a host file) defines board_storage_written; the default does nothing. */
#include "../../firmware/board.h"

void board_storage_written(uint32_t offset, uint32_t n);

__attribute__((weak)) void board_storage_written(uint32_t offset, uint32_t n)
{
    (void)offset;
    (void)n;
}

void board_storage_erase(uint32_t offset, uint32_t n)
{
    volatile uint8_t *d = (volatile uint8_t *)board_storage() + offset;
    uint32_t i;
    if (offset > board_storage_size() || n > board_storage_size() - offset) return;
    for (i = 0; i < n; i++) d[i] = 0xFF;
    board_storage_written(offset, n);
}

void board_storage_program(uint32_t offset, const uint8_t *p, uint32_t n)
{
    volatile uint8_t *d = (volatile uint8_t *)board_storage() + offset;
    uint32_t i;
    if (offset > board_storage_size() || n > board_storage_size() - offset) return;
    for (i = 0; i < n; i++) d[i] = p[i];
    board_storage_written(offset, n);
}
