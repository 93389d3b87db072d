/* The device's static arena (el_static.c): el_init of a static el_net_t on a static arena
 * of EDGELEARN_ARENA_BYTES, so the whole runtime state is in .bss and the linker checks it.
 * Device builds only; the host runs the runtime on arenas of its own (edgelearn.native). */
#ifndef EL_STATIC_H
#define EL_STATIC_H

#include "edgelearn.h"

el_status_t el_init_static(uint8_t *blob, size_t size, unsigned options);
el_net_t *el_static_net(void);
uint32_t el_static_arena_bytes(void);

#endif /* EL_STATIC_H */
