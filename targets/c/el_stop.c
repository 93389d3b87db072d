/* STOP's per-sample loop and the application of accumulated gradients: the mirror of
 * run_sample / forward_layer / apply_accumulated in edgelearn/rules/stop/fixed.py
 * (docs/numerics.md §6). Parameters are the blob's sections, learned in place; so is the count of
 * the learning-rate schedule (§6c), which sets the effective shifts of every update. */
#include "edgelearn.h"
#include "el_kernels.h"
#include "el_layers.h"
#include "el_neurons.h"
#include "el_numerics.h"

/* A layer's weights in the blob: int16, or int8 for a layer flagged EL_WEIGHTS_INT8, whose
 * kernels (the dense kind's ops, apply_weight_grads) read them at that width. */
static void *layer_weights(const el_net_t *net, const el_layer_t *ly)
{
    return net->blob + ly->weights_at;
}
static int32_t *layer_thresholds(const el_net_t *net, const el_layer_t *ly)
{
    return (int32_t *)(void *)(net->blob + ly->thresholds_at);
}
static int32_t *layer_leak(const el_net_t *net, const el_layer_t *ly)
{
    return (int32_t *)(void *)(net->blob + ly->leak_at);
}
/* A psn layer's tap codes in its FILTER section, int8 [n_out][taps] (frozen: the host learns them). */
static const int8_t *layer_taps(const el_net_t *net, const el_layer_t *ly)
{
    return (const int8_t *)(net->blob + ly->taps_at);
}

/* One layer's step t: traces (trainable layers, when learning), current, neuron; or, for a kind
 * without neurons, its output values. With `sums` (the exact W x of an input that stays the
 * same all sample) the current is rounded from them instead of summed again. A kind with a
 * history (psn) filters its currents through its ring and keeps its inputs' ring for the
 * eligibility instead of traces. */
static void forward_layer(el_net_t *net, const el_layer_t *ly, uint32_t t, const int32_t *x, int x_frac, int learn,
                          const int64_t *sums)
{
    int64_t a = *layer_leak(net, ly);
    uint32_t n = ly->n_out, o = ly->n_off, so = ly->state_off;
    if (!el_layer_has_neurons(ly->kind)) {       /* the spikes below into its values; it keeps no state */
        el_layer_forward(ly->kind, ly, layer_weights(net, ly), x, net->spikes + (ly - 1)->n_off, x_frac,
                         net->nonzero_index, net->plane_sums, NULL, net->spikes + o);
        return;
    }
    learn = learn && (ly->flags & EL_TRAINABLE);
    if (el_layer_has_history(ly->kind))
        el_layer_filter(ly->kind, ly, layer_weights(net, ly), x, x_frac, layer_taps(net, ly), t % ly->ring_len,
                        net->current_ring + ly->ring_off, learn ? net->input_trace + ly->in_off : NULL,
                        net->nonzero_index, net->current + so);
    else if (learn) {                            /* traces first: they read V[t-1], s[t-1] */
        el_input_trace_step(a, x, ly->n_in, x_frac, net->input_trace + ly->in_off);
        if (!el_neuron_memoryless(ly->neuron))  /* without memory th~ and a~ stay 0: dE/dth = -d */
            el_neuron_trace_step(a, net->membrane + so, net->spikes + o, n, net->threshold_trace + ly->learn_off,
                                 net->leak_trace + ly->learn_off);
    }
    if (el_layer_scans(ly->kind)) {              /* it steps its neurons as it scans them (scan2d) */
        el_layer_scan(ly->kind, ly, layer_weights(net, ly), x, x_frac, a, layer_thresholds(net, ly),
                      net->membrane + so, net->spikes + o, net->potential + so, net->current + so,
                      learn ? net->input_trace + ly->in_off + ly->n_in : NULL);
        return;
    }
    if (sums != NULL)
        el_current_from_sums(sums, n, x_frac, ly->weight_frac, net->current + so);
    else if (!el_layer_has_history(ly->kind))   /* (a history's current is its filter's, above) */
        el_layer_forward(ly->kind, ly, layer_weights(net, ly), x, NULL, x_frac, net->nonzero_index, net->plane_sums,
                         net->current + so, net->spikes + o);
    el_neuron_step(ly->neuron, net->current + so, a, layer_thresholds(net, ly), ly->reset_shift, n,
                   net->membrane + so, net->spikes + o, net->potential + so);
}

/* Spatial errors of one step, top-down from the readout to the lowest trainable layer: each
 * layer's from the errors of the one above, carried back by that layer's kind. */
static void errors(el_net_t *net, int32_t label)
{
    const el_layer_t *top = &net->layers[net->layer_count - 1];
    uint32_t l;
    if (top->neuron == EL_NEURON_LI)
        el_li_output_error(net->potential + top->state_off, top->n_out, label, net->error + top->error_off);
    else
        el_spiking_output_error(net->spikes + top->n_off, net->potential + top->state_off,
                                layer_thresholds(net, top), top->n_out, label, net->surrogate_shift,
                                net->error + top->error_off);
    for (l = net->layer_count - 1; l-- > net->lowest;) {
        const el_layer_t *ly = &net->layers[l], *up = &net->layers[l + 1];
        const int32_t *d_up = net->error + up->error_off;
        int32_t *d = net->error + ly->error_off;
        int neurons = el_layer_has_neurons(ly->kind), frac;
        uint32_t active;
        if (el_layer_has_history(up->kind)) {    /* its inputs of this step see its errors through the lag-0 taps */
            el_layer_lag0(up->kind, up, layer_taps(net, up), d_up, net->error_lag0);
            d_up = net->error_lag0;
        }
        if (neurons && up->kind == EL_LAYER_DENSE && !(up->flags & EL_WEIGHTS_INT8)) {
            /* int16 dense weights: their own kernel, W^T d and the surrogate in one (int8 ones: below) */
            el_hidden_error(layer_weights(net, up), up->n_out, d_up, net->potential + ly->state_off, layer_thresholds(net, ly),
                            ly->n_out, up->weight_frac, net->surrogate_shift, net->error_backprop, d);
            continue;
        }
        active = el_layer_back(up->kind, up, layer_weights(net, up), d_up, net->spikes + ly->n_off, net->error_backprop);
        /* the shift back to Q16: the weights' fraction, or an average pool's log2 kh kw */
        frac = el_layer_has_neurons(up->kind) ? up->weight_frac : up->out_frac;
        if (neurons)
            el_surrogate_error(net->error_backprop, active, net->potential + ly->state_off, layer_thresholds(net, ly),
                               ly->n_out, frac, net->surrogate_shift, d);
        else
            el_pass_error(net->error_backprop, active, ly->n_out, frac, d);
    }
}

/* The shifts of an update made now: the effective learning rates (the schedule's, §6c), read from
 * the count of samples learned as it is at this moment, plus the batch's log2 B. */
typedef struct { uint32_t w, th, a; } shifts_t;

static shifts_t shifts_now(const el_net_t *net, uint32_t extra)
{
    shifts_t s;
    s.w = el_lr_shift(net, 0) + extra;
    s.th = el_lr_shift(net, 1) + extra;
    s.a = el_lr_shift(net, 2) + extra;
    return s;
}
static int weight_shift(const el_layer_t *ly, const shifts_t *s)
{
    return (int)(2 * EL_STATE_FRAC - ly->weight_frac + s->w);   /* Q32 -> Q`wf` */
}
static int threshold_shift(const shifts_t *s) { return (int)(EL_STATE_FRAC + s->th); }
static int leak_shift(const shifts_t *s) { return (int)(EL_STATE_FRAC + s->a); }

static int any_nonzero(const int32_t *v, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++)
        if (v[i] != 0) return 1;
    return 0;
}

/* Updates of step t, bottom-up: weights, threshold, leak per trainable layer with neurons.
 * A layer without errors this step is skipped: every update of it would be a no-op without a
 * draw (per step its threshold and leak sums are already zero; per sample they gain nothing). */
static void updates(el_net_t *net, uint32_t t, int per_step)
{
    const shifts_t s = shifts_now(net, 0);   /* the count before this sample */
    uint32_t l;
    for (l = net->lowest; l < net->layer_count; l++) {
        const el_layer_t *ly = &net->layers[l];
        const int32_t *d = net->error + ly->error_off;
        const int32_t *xt = net->input_trace + ly->in_off;
        if (!(ly->flags & EL_TRAINABLE) || !el_layer_has_neurons(ly->kind)) continue;
        if (!any_nonzero(d, ly->n_out)) continue;
        if (el_layer_has_history(ly->kind)) {    /* the eligibility: its inputs' ring through its taps */
            if (per_step)
                el_layer_ring_update(ly->kind, ly, layer_weights(net, ly), d, layer_taps(net, ly), t % ly->ring_len,
                                     xt, weight_shift(ly, &s), &net->rng_learn);
            else
                el_layer_ring_grads(ly->kind, ly, net->weight_grad + ly->w_off, d, layer_taps(net, ly),
                                    t % ly->ring_len, xt);
            continue;                            /* its thresholds and leak do not learn (the loader) */
        }
        if (per_step)
            el_layer_update(ly->kind, ly, layer_weights(net, ly), d, xt, weight_shift(ly, &s), &net->rng_learn,
                            net->nonzero_index, net->plane_sums);
        else
            el_layer_grads(ly->kind, ly, net->weight_grad + ly->w_off, d, xt, net->nonzero_index);
        if (ly->flags & EL_LEARN_THRESHOLD) {
            int64_t *g = net->threshold_grad + ly->learn_off;
            el_threshold_grads(d, net->threshold_trace + ly->learn_off, ly->n_out, g);
            if (per_step)
                el_apply_threshold_grads(layer_thresholds(net, ly), g, ly->n_out, threshold_shift(&s),
                                         EL_THRESHOLD_FLOOR, &net->rng_learn);
        }
        if (ly->flags & EL_LEARN_LEAK) {
            net->leak_grad[l] = el_sat_sum(net->leak_grad[l], el_leak_grad(d, net->leak_trace + ly->learn_off,
                                                                           ly->n_out));
            if (per_step) {
                int32_t *a = layer_leak(net, ly);
                *a = (int32_t)el_apply_leak_grad(*a, net->leak_grad[l], leak_shift(&s), &net->rng_learn);
                net->leak_grad[l] = 0;
            }
        }
    }
}

/* After layer 0's per-step update: the sums of the units that learned (d != 0: rows of a dense
 * layer, channels of a convolution), from the sample's unchanged input x (cost: about the update's). */
static void refresh_sums(el_net_t *net, const int32_t *x)
{
    const el_layer_t *ly = &net->layers[0];
    const int32_t *d = net->error + ly->error_off;
    if (!any_nonzero(d, ly->n_out)) return;   /* no row learned */
    el_layer_refresh(ly->kind, ly, layer_weights(net, ly), x, d, net->nonzero_index, net->input_sums);
}

el_status_t el_set_cutoff(el_net_t *net, int on)
{
    if (on && net->cutoff_at == 0) return EL_ERR_UNSUPPORTED;
    net->cutoff_on = on != 0;
    return EL_OK;
}

el_status_t el_run_sample(el_net_t *net, const uint8_t *sample, uint32_t rows, int32_t label,
                          int learn, int per_step)
{
    const el_plan_t *p = &net->plan;
    const el_layer_t *top = &net->layers[net->layer_count - 1];
    uint32_t t, l, j;
    int cut;
    int64_t *sums = p->input_sums.bytes ? net->input_sums : NULL;
    if (sample == NULL) return EL_ERR_ARGUMENT;
    net->steps = net->T;
    if (net->rule == EL_RULE_SPIDE) return el_spide_run_sample(net, sample, rows, label, learn);
    learn = learn && net->lowest < net->layer_count;
    cut = !learn && net->cutoff_on;
    if (learn && !per_step && net->weight_grad == NULL)
        return EL_ERR_ARGUMENT;           /* accumulating needs a plan with EL_PLAN_WEIGHT_GRAD */
    /* the zero state; parameters, PRNG states and gradient sums persist */
    el_zero(net->membrane, p->membrane.bytes);
    el_zero(net->spikes, p->spikes.bytes);
    el_zero(net->threshold_trace, p->threshold_trace.bytes);
    el_zero(net->leak_trace, p->leak_trace.bytes);
    el_zero(net->input_trace, p->input_trace.bytes);
    el_zero(net->current_ring, p->current_ring.bytes);
    el_zero(net->scores, p->scores.bytes);
    for (t = 0; t < net->T; t++) {
        int x_frac = el_encode_step(net->encoding, sample, rows, net->input_size, t, &net->rng_input,
                                    net->layer_input);
        if (sums != NULL && t == 0)              /* direct input: W x is summed once a sample (§5b) */
            el_layer_sums(net->layers[0].kind, &net->layers[0], layer_weights(net, &net->layers[0]), net->layer_input,
                          net->nonzero_index, el_nonzero_index(net->layer_input, net->input_size, net->nonzero_index),
                          sums);
        forward_layer(net, &net->layers[0], t, net->layer_input, x_frac, learn, sums);  /* layer 0 reads the encoder */
        for (l = 1; l < net->layer_count; l++) {          /* the others read the layer below: */
            const el_layer_t *ly = &net->layers[l];       /* spikes, or an average's counts */
            const uint8_t *below = net->spikes + net->layers[l - 1].n_off;
            if (el_layer_has_neurons(ly->kind))          /* a pool reads them in place */
                for (j = 0; j < ly->n_in; j++) net->layer_input[j] = below[j];
            forward_layer(net, ly, t, net->layer_input, net->layers[l - 1].out_frac, learn, NULL);
        }
        for (j = 0; j < top->n_out; j++)
            net->scores[j] += top->neuron == EL_NEURON_LI ? net->potential[top->state_off + j] : net->spikes[top->n_off + j];
        if (!learn) {
            if (cut && t + 1 < net->T
                && el_top2_gap(net->scores, top->n_out) > el_cutoff_margin(net->blob + net->cutoff_at, t)) {
                net->steps = t + 1;            /* a clear leader: stop (docs/numerics.md §6b) */
                return EL_OK;
            }
            continue;
        }
        errors(net, label);
        updates(net, t, per_step);
        if (sums != NULL && per_step && net->lowest == 0) {
            el_encode_step(net->encoding, sample, rows, net->input_size, t, &net->rng_input, net->layer_input);
            refresh_sums(net, net->layer_input);      /* direct: a copy, no draw */
        }
    }
    if (learn) el_count_learned(net);          /* the schedule's count (§6c): one more learned */
    return EL_OK;
}

void el_apply_accumulated(el_net_t *net, uint32_t extra_shift)
{
    const shifts_t s = shifts_now(net, extra_shift);   /* the count after the batch's samples */
    uint32_t l;
    for (l = 0; l < net->layer_count; l++) {   /* the order of the per-step updates */
        const el_layer_t *ly = &net->layers[l];
        if (!(ly->flags & EL_TRAINABLE)) continue;
        if (ly->flags & EL_WEIGHTS_INT8)
            el_apply_weight_grads_int8(layer_weights(net, ly), net->weight_grad + ly->w_off, ly->w_rows, ly->w_cols,
                                       weight_shift(ly, &s), &net->rng_learn);
        else
            el_apply_weight_grads(layer_weights(net, ly), net->weight_grad + ly->w_off, ly->w_rows, ly->w_cols,
                                  weight_shift(ly, &s), &net->rng_learn);
        if (ly->flags & EL_LEARN_THRESHOLD)
            el_apply_threshold_grads(layer_thresholds(net, ly), net->threshold_grad + ly->learn_off, ly->n_out,
                                     threshold_shift(&s), EL_THRESHOLD_FLOOR, &net->rng_learn);
        if (ly->flags & EL_LEARN_LEAK) {
            int32_t *a = layer_leak(net, ly);
            *a = (int32_t)el_apply_leak_grad(*a, net->leak_grad[l], leak_shift(&s), &net->rng_learn);
            net->leak_grad[l] = 0;
        }
    }
}

uint32_t el_predict(const el_net_t *net)
{
    const el_layer_t *top = &net->layers[net->layer_count - 1];
    uint32_t j, best = 0;
    for (j = 1; j < top->n_out; j++)      /* strictly greater: ties go to the lowest index */
        if (net->scores[j] > net->scores[best]) best = j;
    return best;
}
