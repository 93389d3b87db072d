/* The device's static arena: its size is fixed at compile time (edgelearn compile writes
 * EDGELEARN_ARENA_BYTES into the config header from el_arena_required of the model), so
 * the linker, not a run-time allocator, says whether the model fits the board's SRAM. */
#include "el_static.h"

#ifndef EDGELEARN_ARENA_BYTES
#error "define EDGELEARN_ARENA_BYTES (edgelearn compile writes it into edgelearn_config.h)"
#endif

static uint64_t el_arena[(EDGELEARN_ARENA_BYTES + 7) / 8];   /* uint64_t: 8-byte aligned */
static el_net_t el_net;                                        /* the one running network */

el_status_t el_init_static(uint8_t *blob, size_t size, unsigned options)
{
    return el_init(&el_net, blob, size, el_arena, sizeof el_arena, options);
}

el_net_t *el_static_net(void) { return &el_net; }

uint32_t el_static_arena_bytes(void) { return (uint32_t)sizeof el_arena; }
