/* SPIDE's per-sample loop: the mirror of run_sample, forward_pass, couples, backward_pass,
 * note_health, apply_updates, loop_gain and guard in edgelearn/rules/spide/fixed.py
 * (docs/spide.md §5-§8). Weights are the blob's sections, learned in place; thresholds
 * and leaks are read only. */
#include "edgelearn.h"
#include "el_kernels.h"
#include "el_neurons.h"
#include "el_kernels_spide.h"
#include "el_numerics.h"

static int16_t *layer_weights(const el_net_t *net, const el_layer_t *ly)
{
    return (int16_t *)(void *)(net->blob + ly->weights_at);
}
static const int32_t *layer_thresholds(const el_net_t *net, const el_layer_t *ly)
{
    return (const int32_t *)(const void *)(net->blob + ly->thresholds_at);
}
static int64_t layer_leak(const el_net_t *net, const el_layer_t *ly)
{
    return *(const int32_t *)(const void *)(net->blob + ly->leak_at);
}

/* input_current = the sum of each spiking layer's input edges' currents (F x). */
static void input_currents(el_net_t *net, int x_frac)
{
    uint32_t l, e, R = net->layer_count - 1;
    for (l = 0; l < R; l++) {
        const el_layer_t *ly = &net->layers[l];
        int32_t *stat = net->input_current + ly->n_off;
        el_zero(stat, (size_t)ly->n_out * sizeof(int32_t));
        for (e = ly->e_start; e < ly->e_start + ly->e_count; e++) {
            const el_edge_t *ed = &net->edges[e];
            if (ed->src >= 0) continue;
            el_dense_current(layer_weights(net, ly) + ed->col, ly->n_in, ly->n_out, ed->n_src, net->input, x_frac,
                             ly->weight_frac, net->nonzero_index, net->edge_current);
            el_add_current(net->edge_current, ly->n_out, stat);
        }
    }
}

/* T steps from the zero state, the readout o = W_R (count / T), the mask. Returns the
 * fractional bits of input_sum. */
static int forward_pass(el_net_t *net, const uint8_t *sample, uint32_t rows)
{
    const el_plan_t *p = &net->plan;
    uint32_t R = net->layer_count - 1, T = 1u << net->log2T, t, l, e, i;
    const el_layer_t *top = &net->layers[R];
    int x_frac = 0;
    el_zero(net->membrane, p->membrane.bytes);
    el_zero(net->spikes, p->spikes.bytes);
    el_zero(net->count, p->count.bytes);
    el_zero(net->input_sum, p->input_sum.bytes);
    for (t = 0; t < T; t++) {
        if (t == 0 || net->encoding != EL_ENC_DIRECT) {   /* a direct input: one constant current */
            x_frac = el_encode_step(net->encoding, sample, rows, net->input_size, t, &net->rng_input, net->input);
            input_currents(net, x_frac);
            for (i = 0; i < net->input_size; i++) net->input_sum[i] += net->input[i];
        }
        for (i = 0; i < net->neurons; i++) net->spikes_prev[i] = net->spikes[i];   /* delay-1 edges */
        for (l = 0; l < R; l++) {
            const el_layer_t *ly = &net->layers[l];
            int32_t *cur = net->current + ly->n_off;
            for (i = 0; i < ly->n_out; i++) cur[i] = net->input_current[ly->n_off + i];
            for (e = ly->e_start; e < ly->e_start + ly->e_count; e++) {
                const el_edge_t *ed = &net->edges[e];
                if (ed->src < 0) continue;
                el_spike_current(layer_weights(net, ly) + ed->col, ly->n_in, ly->n_out, ed->n_src,
                                 (ed->delay == 0 ? net->spikes : net->spikes_prev) + ed->src_off, ly->weight_frac,
                                 net->nonzero_index, net->edge_current);
                el_add_current(net->edge_current, ly->n_out, cur);
            }
            el_neuron_step(ly->neuron, cur, layer_leak(net, ly), layer_thresholds(net, ly), ly->reset_shift,
                           ly->n_out, net->membrane + ly->n_off, net->spikes + ly->n_off, cur);   /* U over cur */
            el_count_spikes(net->spikes + ly->n_off, ly->n_out, net->count + ly->n_off);
        }
        if (t == T / 2 - 1)
            for (i = 0; i < net->neurons; i++) net->half_count[i] = net->count[i];
    }
    el_zero(net->current + top->n_off, (size_t)top->n_out * sizeof(int32_t));
    for (e = top->e_start; e < top->e_start + top->e_count; e++) {
        const el_edge_t *ed = &net->edges[e];
        el_dense_current(layer_weights(net, top) + ed->col, top->n_in, top->n_out, ed->n_src, net->count + ed->src_off,
                         net->log2T, top->weight_frac, net->nonzero_index, net->edge_current);
        el_add_current(net->edge_current, top->n_out, net->current + top->n_off);
    }
    el_equilibrium_mask(net->count, top->n_off, (int64_t)T, net->mask);
    return net->encoding == EL_ENC_DIRECT ? x_frac : net->log2T;
}

/* Tb steps of the ternary couples from the zero state, layers top-down. */
static void couples(el_net_t *net)
{
    uint32_t R = net->layer_count - 1, n = net->layers[R].n_off, Tb = 1u << net->log2Tb, t, l, k, e, j;
    el_zero(net->back_membrane, (size_t)n * sizeof(int32_t));
    el_zero(net->back_spikes, (size_t)n);
    el_zero(net->back_count, (size_t)n * sizeof(int32_t));
    for (t = 0; t < Tb; t++) {
        for (j = 0; j < n; j++) net->back_spikes_prev[j] = net->back_spikes[j];
        for (l = R; l-- > 0;) {
            const el_layer_t *ly = &net->layers[l];
            for (j = 0; j < ly->n_out; j++) net->back_input[j] = net->drive[ly->n_off + j];
            for (k = 0; k < R; k++) {
                const el_layer_t *up = &net->layers[k];
                int shift = up->weight_frac + up->vd - EL_STATE_FRAC;
                for (e = up->e_start; e < up->e_start + up->e_count; e++) {
                    const el_edge_t *ed = &net->edges[e];
                    if (ed->src != (int32_t)l) continue;
                    el_backward_input(layer_weights(net, up) + ed->col, up->n_in, up->n_out, ly->n_out,
                                      net->mask + up->n_off,
                                      (ed->delay == 0 ? net->back_spikes : net->back_spikes_prev) + up->n_off, shift,
                                      net->back_sum, net->back_input);
                }
            }
            el_couple_step(net->back_input, ly->n_out, net->back_membrane + ly->n_off, net->back_spikes + ly->n_off,
                           net->back_count + ly->n_off);
        }
    }
}

/* e = o - y; g = W_R^T e; the gradient scale; the couples, again with the scale halved
 * while a count saturates. */
static void backward_pass(el_net_t *net, int32_t label, int *gs_out, int *retries_out, uint32_t *saturated_out)
{
    uint32_t R = net->layer_count - 1, e, j, saturated;
    const el_layer_t *top = &net->layers[R];
    uint32_t n = top->n_off;
    int64_t Tb = (int64_t)1 << net->log2Tb;
    int gs, retries = 0, any = 0;
    el_li_output_error(net->current + n, top->n_out, label, net->error);
    el_zero(net->output_gradient, (size_t)n * sizeof(int32_t));
    for (e = top->e_start; e < top->e_start + top->e_count; e++) {
        const el_edge_t *ed = &net->edges[e];
        el_readout_gradient(layer_weights(net, top) + ed->col, top->n_in, top->n_out, ed->n_src, net->error,
                            top->weight_frac, net->back_sum, net->output_gradient + ed->src_off);
    }
    el_zero(net->back_count, (size_t)n * sizeof(int32_t));
    *gs_out = 0;
    *retries_out = 0;
    *saturated_out = 0;
    for (j = 0; j < n; j++) any |= net->output_gradient[j] != 0;
    if (!any) return;
    gs = el_gradient_scale(net->output_gradient, n);
    for (;;) {
        el_scale_drive(net->output_gradient, n, gs, net->drive);
        couples(net);
        saturated = 0;
        for (j = 0; j < n; j++)
            if (net->back_count[j] == Tb || net->back_count[j] == -Tb) saturated++;
        if (saturated == 0 || retries == EL_SPIDE_MAX_SCALE_RETRIES) break;
        gs -= 1;
        retries += 1;
    }
    *gs_out = gs;
    *retries_out = retries;
    *saturated_out = saturated;
}

/* The health counters, before the counts are gated. */
static void note_health(el_net_t *net, int retries, uint32_t saturated)
{
    uint32_t j, n = net->layers[net->layer_count - 1].n_off;
    int64_t masked = 0, *h = net->health;
    for (j = 0; j < n; j++) {
        int64_t d = (int64_t)net->count[j] - 2 * (int64_t)net->half_count[j];
        h[EL_H_OSCILLATION] += d < 0 ? -d : d;
        if (net->mask[j]) {
            masked++;
            if (net->back_count[j] == 0) h[EL_H_SILENT] += 1;
        }
    }
    h[EL_H_SAMPLES] += 1;
    h[EL_H_NEURONS] += n;
    h[EL_H_MASKED] += masked;
    h[EL_H_SATURATED] += saturated;
    h[EL_H_RETRIES] += retries;
    h[EL_H_DEAD_RUN] = masked == 0 ? h[EL_H_DEAD_RUN] + 1 : 0;
}

/* Spiking layers bottom-up, then the readout; edges in table order. */
static void apply_updates(el_net_t *net, int in_frac, int gs)
{
    uint32_t R = net->layer_count - 1, l, e;
    int lr = (int)el_lr_shift(net, 0);     /* the schedule's (§6c): the count before this sample */
    el_gate_counts(net->mask, net->layers[R].n_off, net->back_count);
    for (l = 0; l <= R; l++) {
        const el_layer_t *ly = &net->layers[l];
        int16_t *W = layer_weights(net, ly);
        for (e = ly->e_start; e < ly->e_start + ly->e_count; e++) {
            const el_edge_t *ed = &net->edges[e];
            const int32_t *z = ed->src < 0 ? net->input_sum : net->count + ed->src_off;
            int frac = ed->src < 0 ? in_frac : net->log2T;
            if (l < R)        /* (m beta / V_d) a^T, beta = b / Tb 2^-gs, a = z 2^-frac */
                el_update_weights(W + ed->col, ly->n_in, ly->n_out, ed->n_src, net->back_count + ly->n_off, z,
                                  lr + net->log2Tb + gs + frac + ly->vd - ly->weight_frac, &net->rng_learn,
                                  net->nonzero_index);
            else              /* e a^T, e in Q16 */
                el_update_weights(W + ed->col, ly->n_in, ly->n_out, ed->n_src, net->error, z,
                                  EL_STATE_FRAC + frac - ly->weight_frac + lr, &net->rng_learn, net->nonzero_index);
        }
    }
}

int64_t el_spide_loop_gain(el_net_t *net)
{
    uint32_t R = net->layer_count - 1, l, e, j;
    int64_t rho = 0;
    for (l = 0; l < R; l++) {
        const el_layer_t *ly = &net->layers[l];
        int64_t top;
        el_zero(net->row_gains, (size_t)ly->n_out * sizeof(int64_t));
        for (e = ly->e_start; e < ly->e_start + ly->e_count; e++) {
            const el_edge_t *ed = &net->edges[e];
            int64_t G;
            if (ed->src < 0) continue;
            G = ed->delay > 0 ? EL_ONE : net->loop_gains[ed->src];
            if (G == 0) continue;
            el_row_abs_sums(layer_weights(net, ly) + ed->col, ly->n_in, ly->n_out, ed->n_src, net->row_sums);
            for (j = 0; j < ly->n_out; j++)
                net->row_gains[j] += el_round_shift(G * net->row_sums[j], ly->weight_frac + ly->vd);
        }
        top = net->row_gains[0];
        for (j = 1; j < ly->n_out; j++)
            if (net->row_gains[j] > top) top = net->row_gains[j];
        net->loop_gains[l] = top < INT32_MAX ? top : INT32_MAX;
    }
    for (l = 0; l < R; l++) {
        const el_layer_t *ly = &net->layers[l];
        for (e = ly->e_start; e < ly->e_start + ly->e_count; e++)
            if (net->edges[e].delay > 0 && net->loop_gains[net->edges[e].src] > rho)
                rho = net->loop_gains[net->edges[e].src];
    }
    return rho;
}

/* Halve every feedback weight while the loop gain is >= 7/8; returns the halvings. */
static int64_t guard(el_net_t *net)
{
    uint32_t R = net->layer_count - 1, l, e;
    int64_t h = 0;
    while (h < EL_SPIDE_MAX_GUARD_HALVINGS && el_spide_loop_gain(net) >= EL_SPIDE_GUARD_GAIN_Q16) {
        for (l = 0; l < R; l++) {
            const el_layer_t *ly = &net->layers[l];
            for (e = ly->e_start; e < ly->e_start + ly->e_count; e++) {
                const el_edge_t *ed = &net->edges[e];
                if (ed->delay > 0)
                    el_halve_weights(layer_weights(net, ly) + ed->col, ly->n_in, ly->n_out, ed->n_src);
            }
        }
        h++;
    }
    return h;
}

el_status_t el_spide_run_sample(el_net_t *net, const uint8_t *sample, uint32_t rows, int32_t label, int learn)
{
    const el_layer_t *top;
    uint32_t j, saturated;
    int in_frac, gs, retries;
    if (net == NULL || sample == NULL || net->rule != EL_RULE_SPIDE) return EL_ERR_ARGUMENT;
    top = &net->layers[net->layer_count - 1];
    in_frac = forward_pass(net, sample, rows);
    for (j = 0; j < top->n_out; j++) net->scores[j] = net->current[top->n_off + j];
    if (!learn) return EL_OK;
    backward_pass(net, label, &gs, &retries, &saturated);
    note_health(net, retries, saturated);
    apply_updates(net, in_frac, gs);
    if (net->feedback) net->health[EL_H_HALVINGS] += guard(net);
    el_count_learned(net);                 /* the schedule's count (docs/numerics.md §6c) */
    return EL_OK;
}
