/* ARM semihosting from a Cortex-M core (BKPT 0xAB): QEMU serves it with
 * -semihosting-config enable=on,target=native. board_exit (board.h) is built on it; the
 * STM32F405 port also keeps its storage in a host file through it. */
#ifndef EL_SEMIHOSTING_H
#define EL_SEMIHOSTING_H

#include <stdint.h>

enum {
    SH_OPEN = 0x01, SH_CLOSE = 0x02, SH_WRITE = 0x05, SH_READ = 0x06, SH_SEEK = 0x0A,
    SH_FLEN = 0x0C, SH_GET_CMDLINE = 0x15, SH_EXIT_EXTENDED = 0x20
};

/* The call `op` with the parameter block `args`; returns r0 as the host set it. */
uint32_t semihost(uint32_t op, volatile uint32_t *args);

#endif
