/* Linker script for the STM32F405 (QEMU netduinoplus2), run through the C preprocessor with the
 * chip's sizes from targets/catalogue.json (ST DS8626; firmware_host/qemu.py passes them):
 *   -DBOARD_FLASH_BYTES=<flash> -DBOARD_SRAM_BYTES=<sram> [-DBOARD_STACK_BYTES=<stack>]
 * Flash at 0x08000000 (aliased at 0x0 at boot), SRAM1+SRAM2 at 0x20000000. The chip's 64 KiB of
 * core-coupled memory at 0x10000000 (the catalogue's "ccm") is left unused: QEMU 7.2's
 * netduinoplus2 does not map it (measured: a store there is a BusFault), and a firmware that
 * used it would not run there. What does not fit fails to link ("region `SRAM' overflowed by
 * N bytes"). */
#ifndef BOARD_FLASH_BYTES
#error "define BOARD_FLASH_BYTES (the catalogue's flash)"
#endif
#ifndef BOARD_SRAM_BYTES
#error "define BOARD_SRAM_BYTES (the catalogue's sram)"
#endif
#ifndef BOARD_STACK_BYTES
#define BOARD_STACK_BYTES 16384
#endif

ENTRY(Reset_Handler)

MEMORY
{
    FLASH (rx)  : ORIGIN = 0x08000000, LENGTH = BOARD_FLASH_BYTES
    SRAM  (rwx) : ORIGIN = 0x20000000, LENGTH = BOARD_SRAM_BYTES
}

#include "../cortex-m/sections.ld.S"
