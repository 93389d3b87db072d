/* Linker script for QEMU riscv32 `virt`, run through the C preprocessor with the sizes of the
 * part the port stands for (targets/catalogue.json):
 *   -DBOARD_FLASH_BYTES=<flash> -DBOARD_SRAM_BYTES=<sram> [-DBOARD_STACK_BYTES=<stack>]
 *   [-DBOARD_STORAGE_BYTES=<storage>]
 * QEMU maps more than the part has and does not check; this script does: a firmware whose code
 * and initial data exceed the flash, or whose data, .bss (the static arena and model areas) and
 * stack exceed the SRAM, fails to link ("region `SRAM' overflowed by N bytes"). On the real part
 * the storage is flash too, so with BOARD_STORAGE_BYTES the code and the storage must fit it
 * together.
 *
 * Code runs in place from the flash, QEMU's pflash0 at 0x20000000 (given a pflash drive, QEMU's
 * reset code jumps there instead of to the RAM). The RAM at 0x80000000 is the launcher's file
 * (-machine memory-backend=): its first 4 MiB hold the storage (board.c), the data memory
 * follows at 0x80400000, at most 8 MiB of it, below the device tree QEMU writes into the last
 * 2 MiB of a 16 MiB RAM. Nothing is loaded into the RAM (.data is copied from the flash), so
 * QEMU never writes over the storage. */
#ifndef BOARD_FLASH_BYTES
#error "define BOARD_FLASH_BYTES (the catalogue's flash)"
#endif
#ifndef BOARD_SRAM_BYTES
#error "define BOARD_SRAM_BYTES (the catalogue's sram)"
#endif
#ifndef BOARD_STACK_BYTES
#define BOARD_STACK_BYTES 16384
#endif
#ifndef BOARD_STORAGE_BYTES
#define BOARD_STORAGE_BYTES 0
#endif

ENTRY(board_reset)

MEMORY
{
    FLASH (rx)  : ORIGIN = 0x20000000, LENGTH = BOARD_FLASH_BYTES
    SRAM  (rwx) : ORIGIN = 0x80400000, LENGTH = BOARD_SRAM_BYTES
}

ASSERT(BOARD_FLASH_BYTES <= 32M, "the flash is QEMU's pflash0: 32 MiB at most")
ASSERT(BOARD_SRAM_BYTES <= 8M, "the data memory is 8 MiB at most (0x80400000..0x80C00000)")

SECTIONS
{
    .text : {
        KEEP(*(.reset))
        *(.text .text.*)
        *(.rodata .rodata.* .srodata .srodata.*)
        . = ALIGN(4);
    } > FLASH

    .data : ALIGN(8) {
        __data_start = .;
        *(.data .data.* .sdata .sdata.*)
        . = ALIGN(4);
        __data_end = .;
    } > SRAM AT > FLASH
    __data_load = LOADADDR(.data);
    ASSERT(__data_load + SIZEOF(.data) - ORIGIN(FLASH) + BOARD_STORAGE_BYTES <= LENGTH(FLASH),
           "code, initial data and storage do not fit the flash together")

    .bss (NOLOAD) : ALIGN(8) {
        __bss_start = .;
        *(.sbss .sbss.* .bss .bss.* COMMON)
        . = ALIGN(4);
        __bss_end = .;
    } > SRAM

    /* The stack is part of the budget: reserved here, so it counts against the SRAM. */
    .stack (NOLOAD) : ALIGN(16) {
        . += BOARD_STACK_BYTES;
        . = ALIGN(16);
        __stack_top = .;
    } > SRAM

    /DISCARD/ : { *(.comment) *(.note*) }
}
