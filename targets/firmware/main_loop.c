/* edgelearn firmware: the request loop over the C runtime (docs/protocol.md).
 *
 * One request in, one response out, in order. The model lives in one of two static model
 * areas: a push fills the other one, and only a COMMIT of a complete model whose whole-model
 * CRC matches, that the loader accepts and that fits the arena swaps them; until then the
 * active model keeps running (and learning in place). Samples carry sequence numbers: the
 * device runs sample `next` only, re-acks the last EL_FW_RING ones from a ring of stored
 * results, and refuses gaps, so a retransmitted sample is never learned twice and none is
 * skipped. EL_FW_SEQLOG sequence numbers of the samples actually run are logged for tests.
 * Mode "cutoff" infers with the model's Top-K cutoff (docs/numerics.md §6b): a sample stops
 * at the first confident step; every RESULT carries the steps the sample used.
 *
 * Sizes (override with -D): EL_FW_MODEL_BYTES per model area (two of them),
 * EDGELEARN_ARENA_BYTES for the runtime's arena (el_static.c), EL_FW_SEQLOG entries.
 * Uses only board.h, protocol.h and edgelearn.h: no libc, no malloc, no float.
 */
#include "board.h"
#include "protocol.h"
#include "../c/el_static.h"

#ifndef EL_FW_MODEL_BYTES
#define EL_FW_MODEL_BYTES (128u * 1024u)
#endif
#ifndef EL_FW_SEQLOG
#define EL_FW_SEQLOG 4096u
#endif
#ifndef EL_FW_BOARD_NAME
#define EL_FW_BOARD_NAME "unknown"
#endif
#define EL_FW_RING 64u                        /* results kept for re-acks; the host's window <= this */
/* READY's caps: bit0 STOP, bit1 SPIDE, bit2 sequence log, bit3 cutoff, bit4 learning-rate schedule
 * (blob version 3: the loader reads SCHEDULE sections and the runtime runs them, docs/numerics.md §6c) */
#if EL_LOADER_VERSION >= EL_SEC_SCHEDULE_SINCE
#define EL_FW_CAPS 0x1Fu
#else
#define EL_FW_CAPS 0x0Fu                      /* a loader of an older blob version (a stand-in, tests) */
#endif

enum { MODE_INFER = 0, MODE_TRAIN = 1, MODE_CUTOFF = 2 };
enum { R_LEARNED = 1u, R_DUPLICATE = 2u, R_CUTOFF = 4u };   /* RESULT flags */
enum {                                        /* STATS_R counters, in this order (u32 each) */
    S_FRAMES_OK, S_BAD_CRC, S_BAD_FRAME, S_BAD_VERSION, S_ERRORS_SENT, S_DUPLICATES, S_GAPS,
    S_LEARNED, S_INFERRED, S_CORRECT, S_COMMITS, S_PUSH_BYTES, S_SEQLOG_DROPPED, S_STEPS,
    S_STOPPED_EARLY, S_COUNT
};

static uint64_t model_area[2][(EL_FW_MODEL_BYTES + 7u) / 8u];
static int active = -1;                      /* index of the active model area, -1: none */
static uint32_t active_size, active_crc;
static uint8_t active_cutoff;                 /* the active model carries cutoff margins */
static uint32_t push_total, push_crc, push_received;
static uint8_t push_open;
static uint8_t mode = MODE_INFER;
static uint32_t next_seq;
static uint16_t ring_pred[EL_FW_RING];
static uint8_t ring_flags[EL_FW_RING];
static uint16_t ring_steps[EL_FW_RING];
#define SEQLOG_CAP (EL_FW_SEQLOG ? EL_FW_SEQLOG : 1u)
static uint32_t seqlog[SEQLOG_CAP];
static const uint32_t seqlog_capacity = EL_FW_SEQLOG;
static uint32_t seqlog_len;
static uint32_t stats[S_COUNT];

static el_link_rx_t rx;
static uint8_t tx_raw[EL_LINK_MAX_RAW];
static uint8_t tx_wire[EL_LINK_MAX_WIRE];
static uint16_t cur_tag;
static uint8_t cur_type;

static uint8_t *area(int i) { return (uint8_t *)model_area[i]; }

static void send(uint8_t type, uint32_t n)    /* payload already in tx_raw + 4 */
{
    tx_raw[0] = EL_LINK_VERSION;
    tx_raw[1] = type;
    el_put_u16(tx_raw + 2, cur_tag);
    board_write(tx_wire, el_link_encode(tx_raw, EL_LINK_HEADER + n, tx_wire));
}

static uint8_t *out(void) { return tx_raw + EL_LINK_HEADER; }

static void send_error(uint16_t code, uint32_t value, int32_t detail)
{
    uint8_t *p = out();
    el_put_u16(p, code);
    p[2] = cur_type;
    p[3] = 0;
    el_put_u32(p + 4, value);
    el_put_u32(p + 8, (uint32_t)detail);
    stats[S_ERRORS_SENT]++;
    send(EL_MSG_ERROR, 12);
}

static void send_ack(uint32_t value)
{
    el_put_u32(out(), value);
    send(EL_MSG_ACK, 4);
}

static void clear_session(void)
{
    uint32_t i;
    next_seq = 0;
    seqlog_len = 0;
    for (i = 0; i < EL_FW_RING; i++) { ring_pred[i] = 0; ring_flags[i] = 0; ring_steps[i] = 0; }
}

/* Mode infer or train: the runtime's cutoff off (el_init leaves it off too). */
static void cutoff_off(void)
{
    if (active >= 0) (void)el_set_cutoff(el_static_net(), 0);
}

static void do_hello(void)
{
    static const char name[] = EL_FW_BOARD_NAME;
    uint8_t *p = out();
    uint32_t i;
    p[0] = EL_LINK_VERSION;
    p[1] = EL_FW_CAPS;
    el_put_u16(p + 2, (uint16_t)EL_LINK_MAX_PAYLOAD);
    el_put_u32(p + 4, EL_FW_MODEL_BYTES);
    el_put_u32(p + 8, el_static_arena_bytes());
    el_put_u16(p + 12, (uint16_t)EL_FW_RING);
    p[14] = mode;
    p[15] = active >= 0;
    el_put_u32(p + 16, active_size);
    el_put_u32(p + 20, active_crc);
    el_put_u32(p + 24, next_seq);
    el_put_u32(p + 28, EL_FW_SEQLOG);
    el_put_u16(p + 32, (uint16_t)(active >= 0 ? el_static_net()->T : 0u));
    p[34] = active_cutoff;                    /* model flags: bit0 cutoff margins */
    p[35] = 0;
    for (i = 0; i + 1u < sizeof name && i < 32u; i++) p[36 + i] = (uint8_t)name[i];
    send(EL_MSG_READY, 36 + i);
}

static void do_push_begin(const uint8_t *a, uint32_t n)
{
    if (n != 8) { send_error(EL_LINK_ERR_BAD_LENGTH, n, 0); return; }
    push_open = 0;
    if (el_get_u32(a) > EL_FW_MODEL_BYTES || el_get_u32(a) == 0) {
        send_error(EL_LINK_ERR_TOO_BIG, EL_FW_MODEL_BYTES, (int32_t)el_get_u32(a));
        return;
    }
    push_total = el_get_u32(a);
    push_crc = el_get_u32(a + 4);
    push_received = 0;
    push_open = 1;
    send_ack(0);
}

static void do_push_chunk(const uint8_t *a, uint32_t n)
{
    uint32_t off, len, i;
    uint8_t *dst = area(active == 0 ? 1 : 0);
    if (n < 4) { send_error(EL_LINK_ERR_BAD_LENGTH, n, 0); return; }
    if (!push_open) { send_error(EL_LINK_ERR_NO_PUSH, 0, 0); return; }
    off = el_get_u32(a);
    len = n - 4u;
    if (off > push_total || len > push_total - off) { send_error(EL_LINK_ERR_TOO_BIG, push_total, (int32_t)off); return; }
    if (off > push_received) { send_error(EL_LINK_ERR_PUSH_GAP, push_received, (int32_t)off); return; }
    if (off + len > push_received) {          /* new bytes (a duplicate only re-acks) */
        for (i = push_received - off; i < len; i++) dst[off + i] = a[4 + i];
        stats[S_PUSH_BYTES] += off + len - push_received;
        push_received = off + len;
    }
    send_ack(push_received);
}

static void do_commit(const uint8_t *a, uint32_t n)
{
    int staging = active == 0 ? 1 : 0;
    el_plan_t plan;
    el_status_t st;
    uint32_t crc;
    if (n != 8) { send_error(EL_LINK_ERR_BAD_LENGTH, n, 0); return; }
    if (!push_open) {                          /* a retransmitted COMMIT of the active model */
        if (active >= 0 && el_get_u32(a) == active_size && el_get_u32(a + 4) == active_crc) send_ack(active_size);
        else send_error(EL_LINK_ERR_NO_PUSH, 0, 0);
        return;
    }
    if (el_get_u32(a) != push_total || el_get_u32(a + 4) != push_crc) { send_error(EL_LINK_ERR_MODEL_CRC, push_crc, 0); return; }
    if (push_received != push_total) { send_error(EL_LINK_ERR_PUSH_INCOMPLETE, push_received, (int32_t)push_total); return; }
    crc = el_crc32(0, area(staging), push_total);
    if (crc != push_crc) { push_open = 0; send_error(EL_LINK_ERR_MODEL_CRC, crc, 0); return; }
    st = el_plan(area(staging), push_total, 0, &plan);
    if (st != EL_OK) { push_open = 0; send_error(EL_LINK_ERR_MODEL_REFUSED, 0, (int32_t)st); return; }
    if (plan.total > el_static_arena_bytes()) {
        push_open = 0;
        send_error(EL_LINK_ERR_ARENA_TOO_SMALL, el_static_arena_bytes(), (int32_t)plan.total);
        return;
    }
    st = el_init_static(area(staging), push_total, 0);
    if (st != EL_OK) {
        push_open = 0; active = -1; active_cutoff = 0; mode = MODE_INFER;
        send_error(EL_LINK_ERR_MODEL_REFUSED, 1, (int32_t)st);
        return;
    }
    active_cutoff = el_set_cutoff(el_static_net(), 1) == EL_OK;   /* a probe: does it carry margins? */
    (void)el_set_cutoff(el_static_net(), 0);
    active = staging;
    active_size = push_total;
    active_crc = push_crc;
    push_open = 0;
    mode = MODE_INFER;
    clear_session();
    stats[S_COMMITS]++;
    send_ack(active_size);
}

static void do_set_mode(const uint8_t *a, uint32_t n)
{
    if (n != 1) { send_error(EL_LINK_ERR_BAD_LENGTH, n, 0); return; }
    if (a[0] > MODE_CUTOFF) { send_error(EL_LINK_ERR_BAD_MODE, a[0], 0); return; }
    if (a[0] == MODE_CUTOFF) {                 /* refused: the mode stays as it was */
        el_status_t st;
        if (active < 0) { send_error(EL_LINK_ERR_NO_MODEL, mode, 0); return; }
        st = el_set_cutoff(el_static_net(), 1);
        if (st != EL_OK) { send_error(EL_LINK_ERR_NO_CUTOFF, mode, (int32_t)st); return; }
    } else {
        cutoff_off();
    }
    mode = a[0];
    send_ack(mode);
}

static void send_result(uint32_t seq, uint16_t pred, uint8_t flags, uint16_t steps)
{
    uint8_t *p = out();
    el_put_u32(p, seq);
    el_put_u32(p + 4, next_seq);
    el_put_u16(p + 8, pred);
    p[10] = flags;
    p[11] = 0;
    el_put_u16(p + 12, steps);
    send(EL_MSG_RESULT, 14);
}

/* SAMPLE: seq u32, label i16 (-1: none), rows u16, data[rows * input_size] */
static void do_sample(const uint8_t *a, uint32_t n)
{
    el_net_t *net = el_static_net();
    uint32_t seq, rows, slot;
    int32_t label;
    int learn;
    el_status_t st;
    uint16_t pred, steps;
    uint8_t flags;
    if (n < 8) { send_error(EL_LINK_ERR_BAD_LENGTH, n, 0); return; }
    seq = el_get_u32(a);
    label = (int16_t)el_get_u16(a + 4);
    rows = el_get_u16(a + 6);
    if (seq < next_seq) {                      /* a retransmission: re-ack, never run again */
        stats[S_DUPLICATES]++;
        if (next_seq - seq > EL_FW_RING) { send_error(EL_LINK_ERR_SEQ_STALE, next_seq, (int32_t)seq); return; }
        slot = seq % EL_FW_RING;
        send_result(seq, ring_pred[slot], (uint8_t)(ring_flags[slot] | R_DUPLICATE), ring_steps[slot]);
        return;
    }
    if (seq > next_seq) { stats[S_GAPS]++; send_error(EL_LINK_ERR_SEQ_GAP, next_seq, (int32_t)seq); return; }
    if (active < 0) { send_error(EL_LINK_ERR_NO_MODEL, next_seq, 0); return; }
    if (rows == 0 || n - 8u != rows * net->input_size) { send_error(EL_LINK_ERR_BAD_LENGTH, n, (int32_t)rows); return; }
    learn = mode == MODE_TRAIN && label >= 0;
    st = el_run_sample(net, a + 8, rows, label, learn, net->update == EL_UPDATE_STEP);
    if (st != EL_OK) { send_error(EL_LINK_ERR_RUN_FAILED, next_seq, (int32_t)st); return; }
    if (learn && net->rule != EL_RULE_SPIDE && net->update != EL_UPDATE_STEP) el_apply_accumulated(net, 0);
    pred = (uint16_t)el_predict(net);
    steps = (uint16_t)net->steps;             /* T unless an inference stopped early (T <= 65535) */
    flags = (uint8_t)((learn ? R_LEARNED : 0u) | (mode == MODE_CUTOFF ? R_CUTOFF : 0u));
    if (learn) stats[S_LEARNED]++; else stats[S_INFERRED]++;
    stats[S_STEPS] += steps;
    if (steps < net->T) stats[S_STOPPED_EARLY]++;
    if (label >= 0 && pred == (uint32_t)label) stats[S_CORRECT]++;
    if (seqlog_len < seqlog_capacity && seqlog_len < SEQLOG_CAP) seqlog[seqlog_len++] = seq; else stats[S_SEQLOG_DROPPED]++;
    slot = seq % EL_FW_RING;
    ring_pred[slot] = pred;
    ring_flags[slot] = flags;
    ring_steps[slot] = steps;
    next_seq++;
    send_result(seq, pred, flags, steps);
}

static void do_stats(void)
{
    uint8_t *p = out();
    uint32_t i;
    p[0] = mode;
    p[1] = active >= 0;
    el_put_u16(p + 2, S_COUNT);
    el_put_u32(p + 4, next_seq);
    el_put_u32(p + 8, active_size);
    el_put_u32(p + 12, active_crc);
    for (i = 0; i < S_COUNT; i++) el_put_u32(p + 16 + 4 * i, stats[i]);
    send(EL_MSG_STATS_R, 16 + 4 * S_COUNT);
}

/* SEQLOG: from u32, count u16 -> total u32, from u32, entries u32[] */
static void do_seqlog(const uint8_t *a, uint32_t n)
{
    uint8_t *p = out();
    uint32_t from, count, i, max = (EL_LINK_MAX_PAYLOAD - 8u) / 4u;
    if (n != 6) { send_error(EL_LINK_ERR_BAD_LENGTH, n, 0); return; }
    from = el_get_u32(a);
    count = el_get_u16(a + 4);
    if (from > seqlog_len) from = seqlog_len;
    if (count > seqlog_len - from) count = seqlog_len - from;
    if (count > max) count = max;
    el_put_u32(p, seqlog_len);
    el_put_u32(p + 4, from);
    for (i = 0; i < count; i++) el_put_u32(p + 8 + 4 * i, seqlog[from + i]);
    send(EL_MSG_SEQLOG_R, 8 + 4 * count);
}

/* PULL: offset u32, length u16 -> offset u32, total u32, crc u32, data (sealed at offset 0) */
static void do_pull(const uint8_t *a, uint32_t n)
{
    uint8_t *p = out();
    const uint8_t *src;
    uint32_t off, len, i;
    if (n != 6) { send_error(EL_LINK_ERR_BAD_LENGTH, n, 0); return; }
    if (active < 0) { send_error(EL_LINK_ERR_NO_MODEL, 0, 0); return; }
    off = el_get_u32(a);
    len = el_get_u16(a + 4);
    if (off > active_size) { send_error(EL_LINK_ERR_PULL_RANGE, active_size, (int32_t)off); return; }
    if (off == 0) el_seal(el_static_net());
    if (len > active_size - off) len = active_size - off;
    if (len > EL_LINK_MAX_PAYLOAD - 12u) len = EL_LINK_MAX_PAYLOAD - 12u;
    src = area(active);
    el_put_u32(p, off);
    el_put_u32(p + 4, active_size);
    el_put_u32(p + 8, el_crc32(0, src, active_size));
    for (i = 0; i < len; i++) p[12 + i] = src[off + i];
    send(EL_MSG_PULL_R, 12 + len);
}

static void do_reset(void)
{
    uint32_t i;
    push_open = 0;
    mode = MODE_INFER;
    cutoff_off();
    clear_session();
    for (i = 0; i < S_COUNT; i++) stats[i] = 0;
    send_ack(0);
}

static void handle(const uint8_t *f, uint32_t n)
{
    const uint8_t *a = f + EL_LINK_HEADER;
    uint32_t len = n - EL_LINK_HEADER;
    cur_type = f[1];
    cur_tag = el_get_u16(f + 2);
    if (f[0] != EL_LINK_VERSION) { stats[S_BAD_VERSION]++; send_error(EL_LINK_ERR_BAD_VERSION, EL_LINK_VERSION, f[0]); return; }
    stats[S_FRAMES_OK]++;
    switch (cur_type) {
    case EL_MSG_HELLO: do_hello(); break;
    case EL_MSG_PUSH_BEGIN: do_push_begin(a, len); break;
    case EL_MSG_PUSH_CHUNK: do_push_chunk(a, len); break;
    case EL_MSG_COMMIT: do_commit(a, len); break;
    case EL_MSG_SET_MODE: do_set_mode(a, len); break;
    case EL_MSG_SAMPLE: do_sample(a, len); break;
    case EL_MSG_STATS: do_stats(); break;
    case EL_MSG_SEQLOG: do_seqlog(a, len); break;
    case EL_MSG_PULL: do_pull(a, len); break;
    case EL_MSG_RESET: do_reset(); break;
    case EL_MSG_EXIT:
        send_ack(len >= 1 ? a[0] : 0);
        board_exit(len >= 1 ? a[0] : 0);
        break;
    default: send_error(EL_LINK_ERR_BAD_TYPE, cur_type, 0); break;
    }
}

int main(void)
{
    board_init();
    el_link_rx_reset(&rx);
    for (;;) {
        int c = board_read_byte(), r;
        if (c < 0) board_exit(0);
        r = el_link_rx_byte(&rx, (uint8_t)c);
        if (r == EL_RX_FRAME) {
            handle(rx.buf, rx.len);
        } else if (r == EL_RX_BAD_CRC || r == EL_RX_BAD_FRAME) {
            cur_type = 0;
            cur_tag = 0xFFFFu;
            stats[r == EL_RX_BAD_CRC ? S_BAD_CRC : S_BAD_FRAME]++;
            send_error(r == EL_RX_BAD_CRC ? EL_LINK_ERR_BAD_CRC : EL_LINK_ERR_BAD_FRAME, 0, 0);
        }
    }
}
