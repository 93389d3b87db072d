/* The pools' kernels (docs/numerics.md §5c), one for one with edgelearn/ops/layers/pool.py:
 * layers without neurons that map the spikes of a [c, in_h, in_w] source, window by window
 * and channel by channel (`g`, el_plan.h). An average is stored as the count of spikes in the
 * window (Q(log2 kh kw)); a maximum of spikes is their OR. */
#ifndef EL_POOL_H
#define EL_POOL_H

#include <stdint.h>

#include "el_plan.h"

/* out = the number of spikes s (of the layer below) in each window. */
void el_avgpool_forward(const uint8_t *s, const el_window_t *g, uint8_t *out);
/* out = 1 where a spike s of the window is non-zero (the OR), else 0. */
void el_maxpool_forward(const uint8_t *s, const el_window_t *g, uint8_t *out);
/* back[i] = the sum of the errors of the windows holding input i; returns how many were non-zero. */
uint32_t el_avgpool_back(const int32_t *d, const el_window_t *g, int64_t *back);
/* back[i] = the sum of the errors of the windows holding input i times dOR/ds_i (every input of a
 * silent window, the one spiking input of a window with one spike); s: the input spikes. */
uint32_t el_maxpool_back(const int32_t *d, const el_window_t *g, const uint8_t *s, int64_t *back);

#endif /* EL_POOL_H */
