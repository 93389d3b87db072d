/* Linker script for QEMU mps2-an386 / mps2-an500, run through the C preprocessor with the
 * REAL board's sizes from targets/catalogue.json (firmware_host/qemu.py passes them):
 *   -DBOARD_FLASH_BYTES=<flash> -DBOARD_SRAM_BYTES=<sram> [-DBOARD_STACK_BYTES=<stack>]
 * QEMU maps more than the board has and does not check; this script does: a firmware
 * whose code, data, .bss (the static arena and blob) and stack exceed the board's memory
 * fails to link ("region `SRAM' overflowed by N bytes").
 * Code memory (ZBT SSRAM1) at 0x0, data memory (ZBT SSRAM2/3) at 0x20000000. */
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
    FLASH (rx)  : ORIGIN = 0x00000000, LENGTH = BOARD_FLASH_BYTES
    SRAM  (rwx) : ORIGIN = 0x20000000, LENGTH = BOARD_SRAM_BYTES
}

#include "../cortex-m/sections.ld.S"
