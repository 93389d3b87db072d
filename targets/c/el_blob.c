/* The model-blob loader (docs/model-format.md, "What a loader checks, in this order") and
 * the layer and edge tables and counts of the arena plan (edgelearn/plan.py). Fields are
 * read byte by byte (little-endian) so the checks never depend on the host's alignment or
 * byte order; the parameter arrays are then used in place, which assumes a little-endian
 * target (every supported one is).
 * One file, over 500 lines, on purpose: it is read against the checklist of model-format.md
 * ("What a loader checks, in this order"), check by check, and tests/test_blob_agreement.py
 * holds it to the Python loader's verdict on every blob. */
#include "edgelearn.h"
#include "el_conv2d.h"
#include "el_kernels.h"
#include "el_layers.h"
#include "el_neurons.h"
#include "el_numerics.h"

/* The blob's layout, codes and limits: el_contract.h, generated from edgelearn/modelblob.py. */

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | rd16(p + 2) << 16; }

uint32_t el_crc32(uint32_t crc, const uint8_t *data, size_t n)
{
    size_t i;
    int b;
    crc = ~crc;
    for (i = 0; i < n; i++) {             /* bitwise: no 1 KB table in flash */
        crc ^= data[i];
        for (b = 0; b < 8; b++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* The blob's CRC: bytes 20..23 count as zero. */
static uint32_t blob_crc(const uint8_t *blob, uint32_t size)
{
    static const uint8_t zero[4] = {0, 0, 0, 0};
    uint32_t crc = el_crc32(0, blob, EL_BLOB_CRC_AT);
    crc = el_crc32(crc, zero, 4);
    return el_crc32(crc, blob + EL_BLOB_CRC_AT + 4, size - EL_BLOB_CRC_AT - 4);
}

static uint32_t pad4(uint32_t n) { return (n + 3u) & ~3u; }

typedef struct {                          /* a checked section table */
    const uint8_t *blob;
    uint32_t table_at, count;
} sections_t;

/* Byte offset of section (type, index), its size in *bytes; 0 when absent (0 is never a
 * valid section offset: the header lies there). Duplicates were refused before. */
static uint32_t find_section(const sections_t *t, uint32_t type, uint32_t index, uint32_t *bytes)
{
    uint32_t k;
    for (k = 0; k < t->count; k++) {
        const uint8_t *e = t->blob + t->table_at + k * EL_BLOB_ENTRY_BYTES;
        if (rd16(e) == type && rd16(e + 2) == index) {
            *bytes = rd32(e + 8);
            return rd32(e + 4);
        }
    }
    return 0;
}


/* Whether n bytes are well-formed UTF-8 (Unicode table 3-7: no overlong forms, no
 * surrogates, nothing above U+10FFFF): exactly what Python's strict decoder accepts. */
static int utf8_valid(const uint8_t *s, uint32_t n)
{
    uint32_t i = 0, k, more, lo, hi;
    while (i < n) {
        uint32_t c = s[i++];
        if (c < 0x80u) continue;
        if (c < 0xC2u || c > 0xF4u) return 0;
        more = c < 0xE0u ? 1u : c < 0xF0u ? 2u : 3u;
        lo = c == 0xE0u ? 0xA0u : c == 0xF0u ? 0x90u : 0x80u;
        hi = c == 0xEDu ? 0x9Fu : c == 0xF4u ? 0x8Fu : 0xBFu;
        if (n - i < more) return 0;
        for (k = 0; k < more; k++) {
            if (s[i + k] < lo || s[i + k] > hi) return 0;
            lo = 0x80u;
            hi = 0xBFu;
        }
        i += more;
    }
    return 1;
}

static int same_bytes(const uint8_t *a, const uint8_t *b, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

/* The name of a LAYER section whose size check_layer accepted; its length in *length. */
static const uint8_t *layer_name(const uint8_t *p, uint32_t *length)
{
    *length = rd16(p + 16);
    return p + EL_BLOB_LAYER_FIXED_BYTES + 4u * p[14] + 4u * rd16(p + 12);
}

/* Layer l's name is not the input's ("input") and differs from every earlier layer's
 * (Model.validate_structure). One pass over the table: O(layers) per layer. */
static el_status_t check_layer_name(const sections_t *t, uint32_t l)
{
    static const uint8_t input_name[5] = {'i', 'n', 'p', 'u', 't'};
    uint32_t bytes, n, m, k;
    const uint8_t *name = layer_name(t->blob + find_section(t, EL_SEC_LAYER, l, &bytes), &n);
    if (n == sizeof input_name && same_bytes(name, input_name, n)) return EL_ERR_NAME;
    for (k = 0; k < t->count; k++) {
        const uint8_t *e = t->blob + t->table_at + k * EL_BLOB_ENTRY_BYTES, *other;
        if (rd16(e) != EL_SEC_LAYER || rd16(e + 2) >= l) continue;
        other = layer_name(t->blob + rd32(e + 4), &m);
        if (m == n && same_bytes(other, name, n)) return EL_ERR_NAME;
    }
    return EL_OK;
}

static el_status_t check_header(const uint8_t *blob, size_t size, sections_t *t)
{
    uint32_t file_size, k, m, version;
    uint64_t table_end, previous_end;
    if (size < EL_BLOB_HEADER_BYTES) return EL_ERR_TOO_SHORT;
    if (blob[0] != 'E' || blob[1] != 'L' || blob[2] != 'R' || blob[3] != 'N') return EL_ERR_BAD_MAGIC;
    version = rd16(blob + 4);
    if (version == 0 || version > EL_LOADER_VERSION) return EL_ERR_VERSION;   /* before any later field */
    file_size = rd32(blob + 8);
    if (file_size > size) return EL_ERR_TRUNCATED;
    if (file_size < size) return EL_ERR_TRAILING;
    if (blob_crc(blob, file_size) != rd32(blob + EL_BLOB_CRC_AT)) return EL_ERR_CRC;
    if (rd16(blob + 6) != 0) return EL_ERR_HEADER_RESERVED;
    for (k = 24; k < EL_BLOB_HEADER_BYTES; k++)
        if (blob[k] != 0) return EL_ERR_HEADER_RESERVED;
    t->blob = blob;
    t->count = rd32(blob + 12);
    t->table_at = rd32(blob + 16);
    table_end = (uint64_t)t->table_at + (uint64_t)t->count * EL_BLOB_ENTRY_BYTES;
    if (t->table_at < EL_BLOB_HEADER_BYTES || t->table_at % 4 != 0 || table_end > file_size)
        return EL_ERR_TABLE_BOUNDS;
    previous_end = table_end;
    for (k = 0; k < t->count; k++) {
        const uint8_t *e = blob + t->table_at + k * EL_BLOB_ENTRY_BYTES;
        uint32_t type = rd16(e), at = rd32(e + 4);
        if (type < EL_SEC_MODEL || type > EL_SEC_FILTER) return EL_ERR_SECTION_TYPE;
        if (type == EL_SEC_CUTOFF && version < EL_SEC_CUTOFF_SINCE) return EL_ERR_SECTION_TYPE;
        if (type == EL_SEC_SCHEDULE && version < EL_SEC_SCHEDULE_SINCE) return EL_ERR_SECTION_TYPE;
        if (type == EL_SEC_WINDOW && version < EL_SEC_WINDOW_SINCE) return EL_ERR_SECTION_TYPE;
        if (type == EL_SEC_FILTER && version < EL_SEC_FILTER_SINCE) return EL_ERR_SECTION_TYPE;
        if (at % 4 != 0 || at < table_end || (uint64_t)at + rd32(e + 8) > file_size)
            return EL_ERR_SECTION_BOUNDS;
        /* payloads in table order, none overlapping: learning in place writes only its own */
        if (at < previous_end) return EL_ERR_SECTION_OVERLAP;
        for (m = 0; m < k; m++) {         /* quadratic, but a table has 1 + 4 L entries */
            const uint8_t *f = blob + t->table_at + m * EL_BLOB_ENTRY_BYTES;
            if (rd16(f) == type && rd16(f + 2) == rd16(e + 2)) return EL_ERR_SECTION_DUPLICATE;
        }
        previous_end = (uint64_t)at + rd32(e + 8);
    }
    return EL_OK;
}

/* The MODEL section into net's scalars. */
static el_status_t check_model(const sections_t *t, el_net_t *net)
{
    uint32_t bytes, at = find_section(t, EL_SEC_MODEL, 0, &bytes), rank, r;
    uint64_t product = 1;
    const uint8_t *m;
    if (at == 0) return EL_ERR_SECTION_MISSING;
    m = t->blob + at;
    if (bytes < EL_BLOB_MODEL_FIXED_BYTES) return EL_ERR_SECTION_SIZE;
    rank = m[7];
    if (bytes != pad4(EL_BLOB_MODEL_FIXED_BYTES + 4u * rank + rd16(m + 20))) return EL_ERR_SECTION_SIZE;
    net->input_size = rd32(m);
    net->layer_count = rd16(m + 4);
    net->encoding = m[6];
    net->T = rd16(m + 8);
    net->rule = m[10];
    net->update = m[11];
    net->lr_shift[0] = m[12];
    net->lr_shift[1] = m[13];
    net->lr_shift[2] = m[14];
    net->surrogate_shift = (int8_t)m[15];
    net->Tb = rd16(m + 22);
    if (net->encoding >= EL_ENC_COUNT || net->rule >= EL_RULE_COUNT || net->update >= EL_UPDATE_COUNT)
        return EL_ERR_UNKNOWN_CODE;
    if (rank == 0) return EL_ERR_SHAPE;
    for (r = 0; r < rank; r++) {
        uint32_t dim = rd32(m + EL_BLOB_MODEL_FIXED_BYTES + 4u * r);
        if (dim == 0) return EL_ERR_SHAPE;
        product *= dim;
        if (product > UINT32_MAX) return EL_ERR_SHAPE;
    }
    if (product != net->input_size) return EL_ERR_SHAPE;
    if (net->layer_count == 0) return EL_ERR_SECTION_MISSING;
    if (net->layer_count > EL_BLOB_MAX_LAYERS) return EL_ERR_VALUE;
    if (!utf8_valid(m + EL_BLOB_MODEL_FIXED_BYTES + 4u * rank, rd16(m + 20))) return EL_ERR_NAME;
    net->rng_input = el_seed_state(rd32(m + 16));
    net->rng_learn = el_seed_state(rd32(m + 16) ^ EL_LEARN_STREAM_XOR);
    return EL_OK;
}

/* Section index against the layer count (the model's own sections, MODEL, CUTOFF and SCHEDULE:
 * index 0). */
static el_status_t check_indices(const sections_t *t, uint32_t layer_count)
{
    uint32_t k;
    for (k = 0; k < t->count; k++) {
        const uint8_t *e = t->blob + t->table_at + k * EL_BLOB_ENTRY_BYTES;
        uint32_t type = rd16(e);
        uint32_t limit = type == EL_SEC_MODEL || type == EL_SEC_CUTOFF || type == EL_SEC_SCHEDULE ? 1u : layer_count;
        if (rd16(e + 2) >= limit) return EL_ERR_SECTION_INDEX;
    }
    return EL_OK;
}

/* One LAYER section and its parameter sections (their sizes, for a kind without a window; a window
 * kind's wait for check_window); fills `layer` (offsets into the blob). */
static el_status_t check_layer(const sections_t *t, const el_net_t *net, uint32_t l, el_layer_t *layer)
{
    uint32_t bytes, at = find_section(t, EL_SEC_LAYER, l, &bytes), rank, edges, r, e, flags, wb, tb, lb, gb;
    uint64_t product = 1;
    const uint8_t *p;
    if (at == 0) return EL_ERR_SECTION_MISSING;
    p = t->blob + at;
    if (bytes < EL_BLOB_LAYER_FIXED_BYTES) return EL_ERR_SECTION_SIZE;
    rank = p[14];
    edges = rd16(p + 12);
    if (bytes != pad4(EL_BLOB_LAYER_FIXED_BYTES + 4u * rank + 4u * edges + rd16(p + 16))) return EL_ERR_SECTION_SIZE;
    flags = p[2];
    if (p[15] != 0 || rd16(p + 18) != 0 || (flags & ~EL_BLOB_FLAGS_KNOWN) != 0) return EL_ERR_RESERVED_FIELD;
    if (!el_layer_known(p[0])) return EL_ERR_UNKNOWN_CODE;                             /* el_layers.h */
    if (el_layer_has_neurons(p[0]) ? !el_neuron_known(p[1]) : p[1] != 0) return EL_ERR_UNKNOWN_CODE;
    if (!el_layer_has_neurons(p[0]) && flags != 0) return EL_ERR_VALUE;   /* a map of its input has no neurons */
    if ((flags & EL_BLOB_WEIGHTS_INT8) && p[0] != EL_LAYER_DENSE) return EL_ERR_VALUE;   /* int8: dense layers */
    el_zero(layer, sizeof *layer);
    layer->kind = p[0];
    layer->neuron = p[1];
    layer->weight_frac = p[3];
    layer->n_out = rd32(p + 4);
    layer->n_in = rd32(p + 8);
    if (rank == 0) return EL_ERR_SHAPE;
    for (r = 0; r < rank; r++) {
        uint32_t dim = rd32(p + EL_BLOB_LAYER_FIXED_BYTES + 4u * r);
        if (dim == 0) return EL_ERR_SHAPE;
        product *= dim;
        if (product > UINT32_MAX) return EL_ERR_SHAPE;
    }
    if (product != layer->n_out || layer->n_out > EL_MAX_LAYER_SIZE) return EL_ERR_SHAPE;
    if (edges == 0) return EL_ERR_EDGE;    /* every layer reads something */
    for (e = 0; e < edges; e++) {
        uint32_t source = rd16(p + EL_BLOB_LAYER_FIXED_BYTES + 4u * rank + 4u * e);
        if (source != EL_BLOB_INPUT_SOURCE && source >= net->layer_count) return EL_ERR_EDGE;
    }
    if (!utf8_valid(p + EL_BLOB_LAYER_FIXED_BYTES + 4u * rank + 4u * edges, rd16(p + 16))) return EL_ERR_NAME;
    layer->weights_at = find_section(t, EL_SEC_WEIGHTS, l, &wb);
    layer->thresholds_at = find_section(t, EL_SEC_THRESHOLD, l, &tb);
    layer->leak_at = find_section(t, EL_SEC_LEAK, l, &lb);
    if (layer->weights_at == 0 || layer->thresholds_at == 0 || layer->leak_at == 0)
        return EL_ERR_SECTION_MISSING;
    if (lb != 4u) return EL_ERR_SECTION_SIZE;
    if (el_layer_windowed(p[0])) {            /* a window kind has a WINDOW section; the others none */
        if (find_section(t, EL_SEC_WINDOW, l, &gb) == 0) return EL_ERR_SECTION_MISSING;
        if (gb != EL_BLOB_WINDOW_BYTES) return EL_ERR_SECTION_SIZE;
    } else {
        if (find_section(t, EL_SEC_WINDOW, l, &gb) != 0) return EL_ERR_VALUE;
        layer->w_rows = layer->n_out;         /* dense: [n_out][n_in] */
        layer->w_cols = layer->n_in;
        if ((uint64_t)wb != (uint64_t)layer->n_out * layer->n_in * ((flags & EL_BLOB_WEIGHTS_INT8) ? 1u : 2u)
            || (uint64_t)tb != (uint64_t)layer->n_out * 4u)
            return EL_ERR_SECTION_SIZE;
    }
    layer->flags = (uint8_t)flags;      /* the blob's flags until el_plan turns them into EL_* */
    return EL_OK;
}

/* The shape of node `source` (a layer, or the input): its rank, and its first three dimensions. */
static uint32_t source_shape(const sections_t *t, uint32_t source, uint32_t dims[3])
{
    uint32_t bytes, rank, r;
    const uint8_t *shape;
    if (source == EL_BLOB_INPUT_SOURCE) {
        const uint8_t *m = t->blob + find_section(t, EL_SEC_MODEL, 0, &bytes);
        rank = m[7];
        shape = m + EL_BLOB_MODEL_FIXED_BYTES;
    } else {
        const uint8_t *p = t->blob + find_section(t, EL_SEC_LAYER, source, &bytes);
        rank = p[14];
        shape = p + EL_BLOB_LAYER_FIXED_BYTES;
    }
    for (r = 0; r < rank && r < 3u; r++) dims[r] = rd32(shape + 4u * r);
    return rank;
}

/* Layer l's window over its one source (edgelearn/ops/layers/window.py's geometry, and the shape
 * Model._validate_kind expects) into *g; its LAYER and WINDOW sections were checked. */
static el_status_t window_geometry(const sections_t *t, uint32_t l, el_window_t *g)
{
    uint32_t bytes, in[3], k;
    const uint8_t *p = t->blob + find_section(t, EL_SEC_LAYER, l, &bytes);
    const uint8_t *w = t->blob + find_section(t, EL_SEC_WINDOW, l, &bytes);
    const uint8_t *shape = p + EL_BLOB_LAYER_FIXED_BYTES;
    uint32_t kh = rd16(w), kw = rd16(w + 2), sh = rd16(w + 4), sw = rd16(w + 6), ph = rd16(w + 8), pw = rd16(w + 10);
    if (rd16(p + 12) != 1) return EL_ERR_EDGE;             /* one source */
    if (source_shape(t, rd16(shape + 4u * p[14]), in) != 3u || p[14] != 3u) return EL_ERR_SHAPE;
    for (k = 0; k < 3; k++)
        if (in[k] > 0xFFFFu) return EL_ERR_SHAPE;         /* the window's fields are u16 */
    if (kh == 0 || kw == 0 || sh == 0 || sw == 0 || ph >= kh || pw >= kw) return EL_ERR_VALUE;
    if (in[1] + 2u * ph < kh || in[2] + 2u * pw < kw) return EL_ERR_VALUE;
    g->in_c = (uint16_t)in[0];
    g->in_h = (uint16_t)in[1];
    g->in_w = (uint16_t)in[2];
    g->out_c = (uint16_t)(el_layer_has_neurons(p[0]) ? rd32(shape) : in[0]);   /* a pool keeps the channels */
    g->out_h = (uint16_t)((in[1] + 2u * ph - kh) / sh + 1u);
    g->out_w = (uint16_t)((in[2] + 2u * pw - kw) / sw + 1u);
    g->kernel_h = (uint16_t)kh;
    g->kernel_w = (uint16_t)kw;
    g->stride_h = (uint16_t)sh;
    g->stride_w = (uint16_t)sw;
    g->pad_h = (uint16_t)ph;
    g->pad_w = (uint16_t)pw;
    if (rd32(shape) != g->out_c || rd32(shape + 4) != g->out_h || rd32(shape + 8) != g->out_w) return EL_ERR_SHAPE;
    return EL_OK;
}

/* Whether node `source` is a layer of 0/1 spikes: a spiking layer, a pool whose values carry no
 * fraction (a maximum); never the input. The C twin of Model._validate_kind's `binary`. */
static int binary_node(const sections_t *t, const el_net_t *net, uint32_t source)
{
    uint32_t bytes;
    const uint8_t *p;
    el_window_t g;
    el_layer_t probe;
    (void)net;
    if (source == EL_BLOB_INPUT_SOURCE) return 0;
    p = t->blob + find_section(t, EL_SEC_LAYER, source, &bytes);
    if (el_layer_has_neurons(p[0])) return p[1] != EL_NEURON_LI;
    if (window_geometry(t, source, &g) != EL_OK || el_layer_window_check(p[0], &g, 1, &probe) != EL_OK) return 0;
    return probe.out_frac == 0;
}

/* A window layer's geometry, its kind's rules and its parameter sections' sizes; fills `layer`'s
 * window fields, w_rows, w_cols and out_frac. A kind without a window: nothing to check. */
static el_status_t check_window(const sections_t *t, const el_net_t *net, uint32_t l, el_layer_t *layer)
{
    uint32_t bytes, wb, tb, source;
    const uint8_t *p = t->blob + find_section(t, EL_SEC_LAYER, l, &bytes);
    el_window_t g;
    el_status_t st;
    if (!el_layer_windowed(layer->kind)) return EL_OK;
    if ((st = window_geometry(t, l, &g)) != EL_OK) return st;
    source = rd16(p + EL_BLOB_LAYER_FIXED_BYTES + 4u * p[14]);
    if (source != EL_BLOB_INPUT_SOURCE && (source >= l || rd16(p + EL_BLOB_LAYER_FIXED_BYTES + 4u * p[14] + 2) != 0))
        return EL_ERR_EDGE;                   /* an earlier layer of this step */
    if ((st = el_layer_window_check(layer->kind, &g, binary_node(t, net, source), layer)) != EL_OK) return st;
    layer->in_c = g.in_c;
    layer->in_h = g.in_h;
    layer->in_w = g.in_w;
    layer->out_c = g.out_c;
    layer->out_h = g.out_h;
    layer->out_w = g.out_w;
    layer->kernel_h = g.kernel_h;
    layer->kernel_w = g.kernel_w;
    layer->stride_h = g.stride_h;
    layer->stride_w = g.stride_w;
    layer->pad_h = g.pad_h;
    layer->pad_w = g.pad_w;
    (void)find_section(t, EL_SEC_WEIGHTS, l, &wb);
    (void)find_section(t, EL_SEC_THRESHOLD, l, &tb);
    if ((uint64_t)wb != (uint64_t)layer->w_rows * layer->w_cols * 2u
        || tb != (el_layer_has_neurons(layer->kind) ? layer->n_out * 4u : 0u))
        return EL_ERR_SECTION_SIZE;
    return EL_OK;
}

/* A history kind's FILTER section (psn: taps K, reserved 0, u16 dilation D, then the int8 tap codes
 * [n_out][K]), which no other kind has, and the rules Model.validate sets a psn layer (K in
 * 1..EL_PSN_MAX_TAPS, D in 1..EL_PSN_MAX_DILATION, codes within +-EL_PSN_MAX_TAP_CODE; it learns
 * neither threshold nor leak); fills `layer`'s taps_at (the codes' byte offset in the blob), taps,
 * dilation and ring_len. `layer` holds the blob's flags (check_layer's). */
static el_status_t check_filter(const sections_t *t, uint32_t l, el_layer_t *layer)
{
    uint32_t bytes, at = find_section(t, EL_SEC_FILTER, l, &bytes), K, D, k;
    const uint8_t *f;
    if (!el_layer_has_history(layer->kind)) return at == 0 ? EL_OK : EL_ERR_VALUE;
    if (at == 0) return EL_ERR_SECTION_MISSING;
    f = t->blob + at;
    if (bytes < EL_BLOB_FILTER_FIXED_BYTES) return EL_ERR_SECTION_SIZE;
    if (f[1] != 0) return EL_ERR_RESERVED_FIELD;
    K = f[0];
    D = rd16(f + 2);
    if ((uint64_t)bytes != EL_BLOB_FILTER_FIXED_BYTES + (uint64_t)layer->n_out * K) return EL_ERR_SECTION_SIZE;
    if (K == 0 || K > EL_PSN_MAX_TAPS || D == 0 || D > EL_PSN_MAX_DILATION) return EL_ERR_VALUE;
    for (k = 0; k < bytes - EL_BLOB_FILTER_FIXED_BYTES; k++) {
        const int8_t q = (int8_t)f[EL_BLOB_FILTER_FIXED_BYTES + k];
        if (q > EL_PSN_MAX_TAP_CODE || q < -EL_PSN_MAX_TAP_CODE) return EL_ERR_VALUE;
    }
    if (layer->flags & (EL_BLOB_LEARN_THRESHOLD | EL_BLOB_LEARN_LEAK)) return EL_ERR_VALUE;   /* weights only */
    layer->taps_at = at + EL_BLOB_FILTER_FIXED_BYTES;
    layer->taps = (uint8_t)K;
    layer->dilation = (uint16_t)D;
    layer->ring_len = (K - 1u) * D + 1u;
    return EL_OK;
}

/* Size of layer `source`'s output (or the input's); its LAYER section was checked. */
static uint32_t source_size(const sections_t *t, const el_net_t *net, uint32_t source)
{
    uint32_t bytes;
    if (source == EL_BLOB_INPUT_SOURCE) return net->input_size;
    return rd32(t->blob + find_section(t, EL_SEC_LAYER, source, &bytes) + 4);
}

/* Fan-in against the edges, parameter ranges, and what this runtime can run. */
static el_status_t check_layer_semantics(const sections_t *t, const el_net_t *net, uint32_t l,
                                         const el_layer_t *layer)
{
    uint32_t bytes, at = find_section(t, EL_SEC_LAYER, l, &bytes), rank, edges, e, j;
    const uint8_t *p = t->blob + at, *edge;
    uint64_t fan_in = 0;
    int32_t leak;
    el_status_t st;
    rank = p[14];
    edges = rd16(p + 12);
    edge = p + EL_BLOB_LAYER_FIXED_BYTES + 4u * rank;
    for (e = 0; e < edges; e++) fan_in += source_size(t, net, rd16(edge + 4u * e));
    if (fan_in != layer->n_in) return EL_ERR_EDGE;
    if ((st = check_layer_name(t, l)) != EL_OK) return st;
    for (e = 0; e < edges; e++) {          /* Model.validate_structure, whatever the rule */
        uint32_t source = rd16(edge + 4u * e), delay = rd16(edge + 4u * e + 2);
        if (source == EL_BLOB_INPUT_SOURCE ? delay != 0 : (delay == 0 && source >= l)) return EL_ERR_EDGE;
    }
    if (layer->weight_frac > ((layer->flags & EL_BLOB_WEIGHTS_INT8) ? 7u : 15u)) return EL_ERR_VALUE;   /* bits - 1 */
    leak = (int32_t)rd32(t->blob + layer->leak_at);
    if (!el_layer_has_neurons(layer->kind)) {  /* a map of its input: no thresholds, a leak of 0 */
        if (leak != 0 || l == net->layer_count - 1) return EL_ERR_VALUE;   /* and never the readout */
        if (net->rule == EL_RULE_SPIDE) return EL_OK;
        return edges != 1 || rd16(edge) != (l == 0 ? EL_BLOB_INPUT_SOURCE : l - 1) || rd16(edge + 2) != 0
               ? EL_ERR_UNSUPPORTED : EL_OK;
    }
    if (layer->neuron == EL_NEURON_LI && l != net->layer_count - 1) return EL_ERR_VALUE;
    if (layer->neuron != EL_NEURON_LI && !el_neuron_memoryless(layer->neuron)) {   /* a reset needs th > 0 */
        for (j = 0; j < layer->n_out; j++)
            if ((int32_t)rd32(t->blob + layer->thresholds_at + 4u * j) <= 0) return EL_ERR_VALUE;
    }
    if (leak < 0 || leak > EL_ONE) return EL_ERR_VALUE;
    if (el_neuron_leak_fixed(layer->neuron) && leak != EL_ONE) return EL_ERR_VALUE;   /* IF, threshold: no leak */
    if ((layer->flags & EL_BLOB_MODIFIED_RESET)
        && (layer->neuron == EL_NEURON_LI || net->rule != EL_RULE_SPIDE))
        return EL_ERR_VALUE;
    if (net->rule == EL_RULE_SPIDE) return EL_OK;   /* its topology: check_spide */
    /* STOP runs feed-forward chains: one same-step edge from the layer (or input) below */
    if (edges != 1 || rd16(edge) != (l == 0 ? EL_BLOB_INPUT_SOURCE : l - 1) || rd16(edge + 2) != 0)
        return EL_ERR_UNSUPPORTED;
    return EL_OK;
}

static int power_of_two(uint32_t x) { return x != 0 && (x & (x - 1u)) == 0; }

static uint8_t log2_of(uint32_t x)
{
    uint8_t k = 0;
    while (x > 1u) {
        x >>= 1;
        k++;
    }
    return k;
}

/* What SPIDE runs (check of edgelearn/rules/spide/spec.py): spiking layers read by a last 'li'
 * readout; spiking layers read the input (at delay 0: check_layer_semantics), earlier
 * layers at delay 0 and any spiking layer at delay 1; the readout reads spiking layers at
 * delay 0; T and Tb powers of two; one threshold per spiking layer, a power of two. */
static el_status_t check_spide(const sections_t *t, const el_net_t *net)
{
    uint32_t l, e, j, bytes, R = net->layer_count - 1;
    if (!power_of_two(net->T) || net->T < 2u || !power_of_two(net->Tb) || net->Tb < EL_SPIDE_MIN_TB)
        return EL_ERR_VALUE;
    if (net->layer_count < 2) return EL_ERR_UNSUPPORTED;
    if (net->encoding == EL_ENC_SEQUENCE) return EL_ERR_UNSUPPORTED;   /* no equilibrium of a changing input */
    for (l = 0; l <= R; l++) {
        const uint8_t *p = t->blob + find_section(t, EL_SEC_LAYER, l, &bytes);
        const uint8_t *edge = p + EL_BLOB_LAYER_FIXED_BYTES + 4u * p[14];
        uint32_t edges = rd16(p + 12), th_at = find_section(t, EL_SEC_THRESHOLD, l, &bytes);
        if (p[0] != EL_LAYER_DENSE) return EL_ERR_UNSUPPORTED;     /* SPIDE runs dense layers */
        if (p[2] & EL_BLOB_WEIGHTS_INT8) return EL_ERR_UNSUPPORTED;   /* of int16 weights */
        if ((l == R) != (p[1] == EL_NEURON_LI)) return EL_ERR_UNSUPPORTED;
        for (e = 0; e < edges; e++) {
            uint32_t source = rd16(edge + 4u * e), delay = rd16(edge + 4u * e + 2);
            if (l == R) {
                if (source == EL_BLOB_INPUT_SOURCE || source >= R || delay != 0) return EL_ERR_UNSUPPORTED;
            } else if (source != EL_BLOB_INPUT_SOURCE) {
                if (source >= R || delay > 1u || (delay == 0 && source >= l)) return EL_ERR_UNSUPPORTED;
            }
        }
        if (l < R) {
            uint32_t th = rd32(t->blob + th_at);
            if (!power_of_two(th)) return EL_ERR_VALUE;
            for (j = 1; j < rd32(p + 4); j++)
                if (rd32(t->blob + th_at + 4u * j) != th) return EL_ERR_VALUE;
        }
    }
    return EL_OK;
}

static el_status_t check_learning(const el_net_t *net, uint32_t Tb)
{
    uint32_t k;
    if (net->T == 0) return EL_ERR_VALUE;
    for (k = 0; k < 3; k++)
        if (net->lr_shift[k] > EL_MAX_LR_SHIFT) return EL_ERR_VALUE;
    if (net->surrogate_shift < EL_MIN_SURROGATE_SHIFT || net->surrogate_shift > EL_MAX_SURROGATE_SHIFT)
        return EL_ERR_VALUE;
    if (net->rule == EL_RULE_SPIDE && Tb == 0) return EL_ERR_VALUE;
    return EL_OK;
}

/* The optional CUTOFF section (docs/numerics.md §6b): T margins in 0..2^63-1, the last 0, a
 * tolerance record in 1..EL_CUTOFF_MAX_PPM ppm; a stop-runtime rule and at least two outputs.
 * net->cutoff_at: the margins' offset in the blob (0: none). */
static el_status_t check_cutoff_layout(const sections_t *t, const el_net_t *net)
{
    uint32_t bytes, at = find_section(t, EL_SEC_CUTOFF, 0, &bytes);
    if (at == 0) return EL_OK;
    if ((uint64_t)bytes != EL_BLOB_CUTOFF_FIXED_BYTES + 8ull * net->T) return EL_ERR_SECTION_SIZE;
    if (rd32(t->blob + at + 4) != 0) return EL_ERR_RESERVED_FIELD;
    return EL_OK;
}

/* Its values (model-format.md check 13), after the layout (check 12, check_cutoff_layout). */
static el_status_t check_cutoff(const sections_t *t, el_net_t *net, uint32_t classes)
{
    uint32_t bytes, at = find_section(t, EL_SEC_CUTOFF, 0, &bytes), k;
    const uint8_t *c;
    net->cutoff_at = 0;
    if (at == 0) return EL_OK;
    c = t->blob + at;
    if (rd32(c) == 0 || rd32(c) > EL_CUTOFF_MAX_PPM) return EL_ERR_VALUE;
    for (k = 0; k < net->T; k++)            /* the sign bit of each little-endian int64 */
        if (c[EL_BLOB_CUTOFF_FIXED_BYTES + 8u * k + 7] & 0x80u) return EL_ERR_VALUE;
    if (el_cutoff_margin(c + EL_BLOB_CUTOFF_FIXED_BYTES, net->T - 1) != 0) return EL_ERR_VALUE;
    if (el_runtime_of(net->rule) != EL_RUNTIME_STOP || classes < 2) return EL_ERR_VALUE;
    net->cutoff_at = at + EL_BLOB_CUTOFF_FIXED_BYTES;
    return EL_OK;
}

/* The optional SCHEDULE section (docs/numerics.md §6c): every, steps, learned, reserved (u32 each).
 * Its layout (check 12): EL_BLOB_SCHEDULE_BYTES, the reserved field 0. */
static el_status_t check_schedule_layout(const sections_t *t)
{
    uint32_t bytes, at = find_section(t, EL_SEC_SCHEDULE, 0, &bytes);
    if (at == 0) return EL_OK;
    if (bytes != EL_BLOB_SCHEDULE_BYTES) return EL_ERR_SECTION_SIZE;
    if (rd32(t->blob + at + 12) != 0) return EL_ERR_RESERVED_FIELD;
    return EL_OK;
}

/* Its values (check 13): every in 1..2^32-1, steps in 1..EL_MAX_LR_SHIFT, learned any u32.
 * net->schedule_at: the section's offset in the blob (0: none). */
static el_status_t check_schedule(const sections_t *t, el_net_t *net)
{
    uint32_t bytes, at = find_section(t, EL_SEC_SCHEDULE, 0, &bytes), steps;
    net->schedule_at = 0;
    if (at == 0) return EL_OK;
    steps = rd32(t->blob + at + 4);
    if (rd32(t->blob + at) == 0 || steps == 0 || steps > EL_MAX_LR_SHIFT) return EL_ERR_VALUE;
    net->schedule_at = at;
    return EL_OK;
}

/* Which layers learn: stop, every layer; readout, the last; none (and SPIDE here), none. */
static int trainable(const el_net_t *net, uint32_t l)
{
    if (net->rule == EL_RULE_STOP) return 1;
    return net->rule == EL_RULE_READOUT && l == net->layer_count - 1;
}

/* The runtime's flags of a layer (edgelearn/plan.py's layer_flags): a trainable layer learns
 * its threshold if asked and spiking, its leak if asked and not 'if'; int8 weights are flagged
 * whether the layer learns or not (its kernels read them at that width). */
static uint8_t runtime_flags(const el_net_t *net, uint32_t l, uint8_t neuron, uint8_t blob_flags)
{
    uint8_t flags = (blob_flags & EL_BLOB_WEIGHTS_INT8) ? EL_WEIGHTS_INT8 : 0u;   /* learning or not */
    if (!trainable(net, l)) return flags;
    flags |= EL_TRAINABLE;
    if ((blob_flags & EL_BLOB_LEARN_THRESHOLD) && neuron != EL_NEURON_LI) flags |= EL_LEARN_THRESHOLD;
    if ((blob_flags & EL_BLOB_LEARN_LEAK) && !el_neuron_leak_fixed(neuron)) flags |= EL_LEARN_LEAK;
    return flags;
}

/* Offset of layer `source`'s first neuron: the sizes of the layers before it. */
static uint32_t neuron_offset(const sections_t *t, const el_net_t *net, uint32_t source)
{
    uint32_t k, off = 0;
    for (k = 0; k < source; k++) off += source_size(t, net, k);
    return off;
}

/* The layer table and the edge table (NULL: the counts only) and the counts the arena is
 * made of: the C side of edgelearn/plan.py's tables(). Neurons in layer order; learning
 * state compacted over the trainable layers; one edge per input of a layer. */
static void tables(const sections_t *t, el_net_t *net, unsigned options, el_layer_t *layers, el_edge_t *edges,
                   el_dims_t *d)
{
    el_layer_t layer;
    uint32_t l, e, bytes, R = net->layer_count - 1;
    int spide = net->rule == EL_RULE_SPIDE;
    uint64_t neurons = 0, edge_count = 0, learn_neurons = 0, learn_inputs = 0, learn_synapses = 0;
    uint64_t state_neurons = 0, error_neurons = 0, ring_currents = 0, max_lag0 = 0;
    uint64_t max_fan_in = 0, max_nonzero = 0, max_plane = 0, max_hidden = 0, width = net->input_size, input_sums = 0;
    uint32_t nonzero, plane;
    int below_trainable = 0;                     /* whether layer l - 1 learns */
    uint64_t traces;
    net->feedback = 0;
    net->lowest = net->layer_count;
    for (l = 0; l <= R; l++) {
        const uint8_t *p = t->blob + find_section(t, EL_SEC_LAYER, l, &bytes);
        const uint8_t *edge = p + EL_BLOB_LAYER_FIXED_BYTES + 4u * p[14];
        uint32_t count = rd16(p + 12), col = 0;
        uint8_t blob_flags;
        (void)check_layer(t, net, l, &layer);      /* checked before */
        (void)check_window(t, net, l, &layer);
        (void)check_filter(t, l, &layer);
        blob_flags = layer.flags;
        layer.flags = runtime_flags(net, l, layer.neuron, blob_flags);
        layer.n_off = (uint32_t)neurons;
        layer.state_off = el_layer_has_neurons(layer.kind) ? (uint32_t)state_neurons : 0u;
        /* its input traces: one per input, a scan's one per neuron too (its neighbours' spikes), a
         * history's ring of its inputs of the last ring_len steps */
        traces = !el_layer_has_neurons(layer.kind) ? 0u
                 : el_layer_has_history(layer.kind) ? (uint64_t)layer.n_in * layer.ring_len
                 : (uint64_t)layer.n_in + (el_layer_scans(layer.kind) ? layer.n_out : 0u);
        layer.n_traces = (uint32_t)traces;   /* beyond 32 bits, learn_inputs makes el_layout refuse the arena */
        if (el_layer_has_history(layer.kind)) {
            layer.ring_off = (uint32_t)ring_currents;
            ring_currents += (uint64_t)layer.n_out * layer.ring_len;
        }
        layer.e_start = (uint32_t)edge_count;
        layer.e_count = (uint16_t)count;
        layer.reset_shift = (blob_flags & EL_BLOB_MODIFIED_RESET) ? 1u : 0u;
        if (spide && l < R)   /* V_d = 2^vd: th = 2^k in Q16, vd = k - 16 + reset_shift */
            layer.vd = (int8_t)((int)log2_of(rd32(t->blob + layer.thresholds_at)) - EL_STATE_FRAC
                                + layer.reset_shift);
        for (e = 0; e < count; e++) {
            uint32_t source = rd16(edge + 4u * e), n_src = source_size(t, net, source);
            if (edges != NULL) {
                el_edge_t *ed = &edges[edge_count + e];
                ed->src = source == EL_BLOB_INPUT_SOURCE ? -1 : (int32_t)source;
                ed->delay = rd16(edge + 4u * e + 2);
                ed->col = col;
                ed->n_src = n_src;
                ed->src_off = source == EL_BLOB_INPUT_SOURCE ? 0u : neuron_offset(t, net, source);
            }
            if (rd16(edge + 4u * e + 2) > 0) net->feedback = 1;
            col += n_src;
        }
        if (layer.flags & EL_TRAINABLE) {
            if (net->lowest == net->layer_count) net->lowest = l;
            layer.error_off = (uint32_t)error_neurons;
            layer.w_off = (uint32_t)learn_synapses;
            error_neurons += layer.n_out;
            if (el_layer_has_neurons(layer.kind)) {   /* a map of its input keeps no traces */
                layer.in_off = (uint32_t)learn_inputs;
                learn_inputs += traces;
                if (!el_layer_has_history(layer.kind)) {   /* a psn layer learns no thresholds nor leaks */
                    layer.learn_off = (uint32_t)learn_neurons;
                    learn_neurons += layer.n_out;
                }
            }
            learn_synapses += (uint64_t)layer.w_rows * layer.w_cols;
            if (l < R && layer.n_out > max_hidden) max_hidden = layer.n_out;
            if (el_layer_has_history(layer.kind) && below_trainable && layer.n_out > max_lag0)
                max_lag0 = layer.n_out;               /* its errors, lag-0 tapped, go down */
        }
        below_trainable = (layer.flags & EL_TRAINABLE) != 0;
        if (el_layer_has_neurons(layer.kind) && layer.n_in > max_fan_in)
            max_fan_in = layer.n_in;              /* layer_input, in elements (a pool reads spikes in place) */
        el_layer_scratch(layer.kind, &layer, &nonzero, &plane);  /* the kind's scratch companion */
        if (nonzero > max_nonzero) max_nonzero = nonzero;
        if (plane > max_plane) max_plane = plane;
        if (l == 0 && net->encoding == EL_ENC_DIRECT && el_layer_keeps_sums(layer.kind))
            input_sums = layer.n_out;             /* W x summed once a sample */
        if (layer.n_out > width) width = layer.n_out;
        edge_count += count;
        neurons += layer.n_out;
        if (el_layer_has_neurons(layer.kind)) state_neurons += layer.n_out;
        if (layers != NULL) layers[l] = layer;
    }
    net->neurons = (uint32_t)neurons;
    net->edge_count = (uint32_t)edge_count;
    if (spide) {
        net->lowest = 0;
        net->log2T = log2_of(net->T);
        net->log2Tb = log2_of(net->Tb);
    }
    d->layers = net->layer_count;
    d->neurons = neurons;
    d->state_neurons = state_neurons;
    d->error_neurons = error_neurons;
    d->inputs = net->input_size;
    d->classes = layer.n_out;                      /* the readout's */
    d->max_fan_in = max_fan_in;
    d->max_nonzero = max_nonzero;
    d->max_plane = max_plane;
    d->width = width;
    d->edges = edge_count;
    d->learn_neurons = learn_neurons;
    d->learn_inputs = learn_inputs;
    d->max_hidden = max_hidden;
    d->input_sums = input_sums;
    d->learning_layers = learn_neurons ? net->layer_count : 0u;
    d->grad_synapses = net->update == EL_UPDATE_SAMPLE || (options & EL_PLAN_WEIGHT_GRAD) ? learn_synapses : 0u;
    d->health_counters = EL_HEALTH_COUNTERS;
    d->ring_currents = ring_currents;
    d->max_lag0 = max_lag0;
}

/* Check the whole blob, compute the plan, and fill `layers` and `edges` (NULL: only plan). */
static el_status_t load(const uint8_t *blob, size_t size, unsigned options, el_net_t *net,
                        el_layer_t *layers, el_edge_t *edges, el_plan_t *plan)
{
    sections_t t;
    el_layer_t layer;
    el_dims_t dims;
    el_status_t st;
    uint32_t l, bytes, model_at;
    if (blob == NULL || plan == NULL) return EL_ERR_ARGUMENT;
    if ((uintptr_t)blob % 4 != 0) return EL_ERR_MISALIGNED;
    if ((st = check_header(blob, size, &t)) != EL_OK) return st;
    if ((st = check_model(&t, net)) != EL_OK) return st;
    if ((st = check_indices(&t, net->layer_count)) != EL_OK) return st;
    for (l = 0; l < net->layer_count; l++)
        if ((st = check_layer(&t, net, l, &layer)) != EL_OK) return st;
    for (l = 0; l < net->layer_count; l++) {
        (void)check_layer(&t, net, l, &layer);      /* checked above */
        if ((st = check_window(&t, net, l, &layer)) != EL_OK) return st;
        if ((st = check_filter(&t, l, &layer)) != EL_OK) return st;
    }
    if ((st = check_cutoff_layout(&t, net)) != EL_OK) return st;
    if ((st = check_schedule_layout(&t)) != EL_OK) return st;
    for (l = 0; l < net->layer_count; l++) {
        (void)check_layer(&t, net, l, &layer);      /* checked above */
        if ((st = check_layer_semantics(&t, net, l, &layer)) != EL_OK) return st;
    }
    model_at = find_section(&t, EL_SEC_MODEL, 0, &bytes);
    if ((st = check_learning(net, rd16(blob + model_at + 22))) != EL_OK) return st;
    if (net->rule == EL_RULE_SPIDE && (st = check_spide(&t, net)) != EL_OK) return st;
    if ((st = check_cutoff(&t, net, layer.n_out)) != EL_OK) return st;     /* layer: the readout */
    if ((st = check_schedule(&t, net)) != EL_OK) return st;
    tables(&t, net, options, layers, edges, &dims);
    el_zero(plan, sizeof *plan);
    if (!el_layout(el_runtime_of(net->rule), &dims, plan)) return EL_ERR_VALUE;
    return EL_OK;
}

el_status_t el_plan(const uint8_t *blob, size_t size, unsigned options, el_plan_t *plan)
{
    el_net_t scratch;
    return load(blob, size, options, &scratch, NULL, NULL, plan);
}

uint32_t el_arena_required(const uint8_t *blob, size_t size, unsigned options)
{
    el_plan_t plan;
    return el_plan(blob, size, options, &plan) == EL_OK ? plan.total : 0u;
}

el_status_t el_init(el_net_t *net, uint8_t *blob, size_t size, void *arena, size_t arena_bytes,
                    unsigned options)
{
    el_plan_t plan;
    el_status_t st;
    uint8_t *base = (uint8_t *)arena;
    if (net == NULL || arena == NULL) return EL_ERR_ARGUMENT;
    if ((uintptr_t)arena % EL_ARENA_ALIGN != 0) return EL_ERR_MISALIGNED;
    el_zero(net, sizeof *net);
    if ((st = el_plan(blob, size, options, &plan)) != EL_OK) return st;
    if (plan.total > arena_bytes) return EL_ERR_ARENA_TOO_SMALL;
    el_zero(arena, plan.total);
    net->plan = plan;
    EL_BIND_BUFFERS(net, base);
    load(blob, size, options, net, net->layers, net->edges, &plan);
    net->blob = blob;
    net->blob_size = (uint32_t)size;
    return EL_OK;
}

/* The learning-rate schedule (docs/numerics.md §6c): every, steps and the count `learned` are
 * read from the SCHEDULE section at each use, bytewise (little-endian, whatever the alignment),
 * and the count is written back there, so the blob is the state and a pulled model carries it. */
uint32_t el_learned(const el_net_t *net)
{
    return net->schedule_at ? rd32(net->blob + net->schedule_at + 8) : 0u;
}

uint32_t el_lr_shift(const el_net_t *net, uint32_t k)
{
    uint32_t shift = net->lr_shift[k], decay, steps;
    const uint8_t *s;
    if (net->schedule_at == 0) return shift;
    s = net->blob + net->schedule_at;
    decay = rd32(s + 8) / rd32(s);        /* every >= 1: the loader checked it */
    steps = rd32(s + 4);
    shift += decay < steps ? decay : steps;
    return shift < EL_MAX_LR_SHIFT ? shift : EL_MAX_LR_SHIFT;
}

void el_count_learned(el_net_t *net)
{
    uint32_t learned = el_learned(net), k;
    uint8_t *p;
    if (net->schedule_at == 0 || learned == UINT32_MAX) return;   /* it saturates */
    learned++;
    p = net->blob + net->schedule_at + 8;
    for (k = 0; k < 4; k++) p[k] = (uint8_t)(learned >> (8 * k));
}

void el_seal(el_net_t *net)
{
    uint32_t k, crc = blob_crc(net->blob, net->blob_size);
    for (k = 0; k < 4; k++) net->blob[EL_BLOB_CRC_AT + k] = (uint8_t)(crc >> (8 * k));
}
