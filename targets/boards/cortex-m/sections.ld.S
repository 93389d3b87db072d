/* The sections of every Cortex-M port's linker script, which #includes this after its MEMORY
 * (regions FLASH and SRAM) and BOARD_STACK_BYTES: code and read-only data, then the initial
 * .data, in flash; .data, .bss and the stack in SRAM. */
SECTIONS
{
    .text : {
        KEEP(*(.vectors))
        *(.text .text.*)
        *(.rodata .rodata.*)
        . = ALIGN(4);
    } > FLASH

    .ARM.exidx : { *(.ARM.exidx* .gnu.linkonce.armexidx.*) } > FLASH

    .data : ALIGN(8) {
        __data_start = .;
        *(.data .data.*)
        . = ALIGN(4);
        __data_end = .;
    } > SRAM AT > FLASH
    __data_load = LOADADDR(.data);

    .bss (NOLOAD) : ALIGN(8) {
        __bss_start = .;
        *(.bss .bss.* COMMON)
        . = ALIGN(4);
        __bss_end = .;
    } > SRAM

    /* The stack is part of the budget: reserved here, so it counts against the SRAM. */
    .stack (NOLOAD) : ALIGN(8) {
        __stack_limit = .;
        . += BOARD_STACK_BYTES;
        . = ALIGN(8);
        __stack_top = .;
    } > SRAM

    /DISCARD/ : { *(.ARM.attributes) *(.comment) *(.note*) }
}
