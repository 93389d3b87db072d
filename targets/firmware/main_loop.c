/* edgelearn firmware: the request loop over the C runtime (docs/protocol.md).
 *
 * One request in, one response out, in order. Every request but HELLO and STATS must carry a
 * MAC of the device's key (session.c, docs/security.md); without one it is refused before it
 * is looked at, and unauthenticated HELLO and STATS answer only what is not secret.
 * The model lives in one of two static model areas: a push fills the other one, and only a
 * COMMIT of a complete model whose whole-model CRC matches, that the loader accepts, that fits
 * the arena and whose model version is above the board's (unless forced) swaps them; until
 * then the active model keeps running (and learning in place). Samples belong to a stream and
 * carry its index: the device runs index `next` only, re-acks the last EL_FW_RING ones from a
 * ring of stored results, and refuses gaps, so a retransmitted sample is never learned twice
 * and none is skipped. EL_FW_SEQLOG indices of the samples actually run are logged for tests.
 * Mode "cutoff" infers with the model's Top-K cutoff (docs/numerics.md §6b): a sample stops
 * at the first confident step; every RESULT carries the steps the sample used.
 * Durable state (checkpoint.c): the learned model, its version, the stream's position and the
 * runtime's PRNG states are checkpointed into the board's storage at every commit, every
 * `checkpoint_every` learned samples and on request, and restored at boot.
 *
 * Sizes (override with -D): EL_FW_MODEL_BYTES per model area (two of them),
 * EDGELEARN_ARENA_BYTES for the runtime's arena (el_static.c), EL_FW_SEQLOG entries,
 * EL_FW_CHECKPOINT_EVERY the default checkpoint period (learned samples; 0: never by itself).
 * EL_FW_INITIAL_MODEL: linked with a model_blob.c (el_model_blob), booted with that model.
 * Uses only board.h, protocol.h, session.h, checkpoint.h and edgelearn.h: no libc, no malloc,
 * no float.
 */
#include "board.h"
#include "checkpoint.h"
#include "protocol.h"
#include "session.h"
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
#ifndef EL_FW_CHECKPOINT_EVERY
#define EL_FW_CHECKPOINT_EVERY 100u
#endif
#define EL_FW_RING 64u                        /* results kept for re-acks; the host's window <= this */
/* READY's caps: bit0 STOP, bit1 SPIDE, bit2 sequence log, bit3 cutoff, bit4 learning-rate schedule
 * (blob version 3: the loader reads SCHEDULE sections and the runtime runs them, docs/numerics.md §6c),
 * bit5 authentication, bit6 checkpoints, bit7 streams */
#if EL_LOADER_VERSION >= EL_SEC_SCHEDULE_SINCE
#define EL_FW_CAPS 0xFFu
#else
#define EL_FW_CAPS 0xEFu                      /* a loader of an older blob version (a stand-in, tests) */
#endif
/* The checkpoint: EL_CKPT_META bytes (below), then the model blob. A slot holds the largest. */
#define EL_CKPT_META 48u
#define EL_ST_CKPT_SLOT ((EL_AB_HEADER + EL_CKPT_META + EL_FW_MODEL_BYTES + EL_ST_SECTOR - 1u) / EL_ST_SECTOR * EL_ST_SECTOR)
#define EL_ST_BYTES (EL_ST_CKPT_AT + 2u * EL_ST_CKPT_SLOT)   /* the storage a board needs for checkpoints */
#define EL_PUSH_FORCE 1u                      /* PUSH_BEGIN flags: commit even if the version does not rise */
#define EL_STREAM_RESTART 1u                  /* STREAM flags: index 0 again for the same stream */
enum {                                        /* READY flags */
    F_PROVISIONED = 1u, F_AUTHENTICATED = 2u, F_DURABLE = 4u, F_RESTORED = 8u
};
#define EL_PUBLIC_COUNTERS 5u                 /* STATS_R without authentication: the link's counters only */

enum { MODE_INFER = 0, MODE_TRAIN = 1, MODE_CUTOFF = 2 };
enum { R_LEARNED = 1u, R_DUPLICATE = 2u, R_CUTOFF = 4u };   /* RESULT flags */
enum {                                        /* STATS_R counters, in this order (u32 each) */
    S_FRAMES_OK, S_BAD_CRC, S_BAD_FRAME, S_BAD_VERSION, S_ERRORS_SENT, S_DUPLICATES, S_GAPS,
    S_LEARNED, S_INFERRED, S_CORRECT, S_COMMITS, S_PUSH_BYTES, S_SEQLOG_DROPPED, S_STEPS,
    S_STOPPED_EARLY, S_AUTH_FAILED, S_REPLAYS, S_CHECKPOINTS, S_COUNT
};

static uint64_t model_area[2][(EL_FW_MODEL_BYTES + 7u) / 8u];
static int active = -1;                      /* index of the active model area, -1: none */
static uint32_t active_size, active_crc;
static uint8_t active_cutoff;                 /* the active model carries cutoff margins */
static uint32_t model_version;                /* the active model's; a commit must exceed it (no rollback) */
static uint32_t push_total, push_crc, push_received, push_version;
static uint8_t push_open, push_force;
static uint8_t mode = MODE_INFER;
static uint64_t stream_id;                    /* the open stream (0: none) */
static uint32_t next_seq;                     /* its next index */
static uint32_t checkpoint_every = EL_FW_CHECKPOINT_EVERY, learned_since, checkpoint_seq;
static uint8_t durable, restored;
static const el_ab_t checkpoints = {EL_ST_CKPT_AT, EL_ST_CKPT_SLOT, EL_AB_CKPT_MAGIC};
static el_session_t session;
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
static uint8_t cur_type, cur_auth;            /* cur_auth: the request verified, its answer is signed */
static uint32_t cur_counter;

static uint8_t *area(int i) { return (uint8_t *)model_area[i]; }

/* Payload already in tx_raw + 4; at most EL_LINK_MAX_PAYLOAD - EL_TRAILER_BYTES bytes, so that
 * the answer to an authenticated request has room for its trailer. */
static void send(uint8_t type, uint32_t n)
{
    tx_raw[0] = EL_LINK_VERSION;
    tx_raw[1] = type;
    el_put_u16(tx_raw + 2, cur_tag);
    if (cur_auth) {
        el_session_sign(&session, cur_counter, EL_LINK_VERSION, type, tx_raw + EL_LINK_HEADER, n);
        n += EL_TRAILER_BYTES;
    }
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

static void clear_ring(void)
{
    uint32_t i;
    for (i = 0; i < EL_FW_RING; i++) { ring_pred[i] = 0; ring_flags[i] = 0; ring_steps[i] = 0; }
}

/* No stream, an empty sequence log (after a commit or a reset). */
static void clear_session(void)
{
    stream_id = 0;
    next_seq = 0;
    seqlog_len = 0;
    clear_ring();
}

/* The checkpoint's first EL_CKPT_META bytes, in this order (u32 each): format 1, model version,
 * model size, the model's pushed CRC, stream id (low, high), next index, the runtime's input and
 * learning PRNG states (so that learning goes on with the very draws it would have made), the
 * checkpoint period, two zeros. The sealed model blob follows. */
static int save_checkpoint(void)
{
    uint8_t meta[EL_CKPT_META];
    el_net_t *net = el_static_net();
    uint32_t i, v[12];
    if (active < 0 || !durable) return -1;
    el_seal(net);
    v[0] = 1; v[1] = model_version; v[2] = active_size; v[3] = active_crc;
    v[4] = (uint32_t)stream_id; v[5] = (uint32_t)(stream_id >> 32); v[6] = next_seq;
    v[7] = net->rng_input; v[8] = net->rng_learn; v[9] = checkpoint_every; v[10] = 0; v[11] = 0;
    for (i = 0; i < 12; i++) el_put_u32(meta + 4 * i, v[i]);
    if (el_ab_write(&checkpoints, checkpoint_seq + 1u, meta, sizeof meta, area(active), active_size) < 0) return -1;
    checkpoint_seq++;
    learned_since = 0;
    stats[S_CHECKPOINTS]++;
    return 0;
}

/* The blob's n bytes (n <= EL_FW_MODEL_BYTES) copied into model area 0 and made the active model,
 * if the loader accepts it and it fits the arena; -1 (nothing active) otherwise. */
static int activate_copy(const uint8_t *blob, uint32_t n, uint32_t crc)
{
    el_plan_t plan;
    el_net_t *net = el_static_net();
    uint32_t i;
    for (i = 0; i < n; i++) area(0)[i] = blob[i];
    if (el_plan(area(0), n, 0, &plan) != EL_OK || plan.total > el_static_arena_bytes()) return -1;
    if (el_init_static(area(0), n, 0) != EL_OK) return -1;
    active = 0;
    active_size = n;
    active_crc = crc;
    active_cutoff = el_set_cutoff(net, 1) == EL_OK;   /* a probe: does it carry margins? */
    (void)el_set_cutoff(net, 0);
    return 0;
}

/* At boot: the newest valid checkpoint becomes the active model, with its version, stream
 * position, PRNG states and period. A checkpoint whose model this firmware refuses (another
 * loader version) still sets the version floor, so a rollback stays refused. */
static void restore_checkpoint(void)
{
    const uint8_t *p;
    uint32_t seq, size, n;
    el_net_t *net = el_static_net();
    if (!durable || el_ab_newest(&checkpoints, &seq, &p, &size) < 0) return;
    checkpoint_seq = seq;
    n = el_get_u32(p + 8);
    if (el_get_u32(p) != 1u || size != EL_CKPT_META + n || n == 0 || n > EL_FW_MODEL_BYTES) return;
    model_version = el_get_u32(p + 4);
    if (activate_copy(p + EL_CKPT_META, n, el_get_u32(p + 12)) < 0) return;
    net->rng_input = el_get_u32(p + 28);
    net->rng_learn = el_get_u32(p + 32);
    stream_id = (uint64_t)el_get_u32(p + 16) | (uint64_t)el_get_u32(p + 20) << 32;
    next_seq = el_get_u32(p + 24);
    checkpoint_every = el_get_u32(p + 36);
    restored = 1;
}

#ifdef EL_FW_INITIAL_MODEL
/* A firmware image built with its model (edgelearn compile --firmware: model_blob.c) boots with
 * it when no checkpoint restores one, as model version 0, so that any pushed model replaces it. */
extern const uint8_t el_model_blob[];
extern const uint32_t el_model_blob_bytes;
static void load_initial_model(void)
{
    uint32_t n = el_model_blob_bytes;
    if (active >= 0 || n == 0 || n > EL_FW_MODEL_BYTES) return;
    (void)activate_copy(el_model_blob, n, el_crc32(0, el_model_blob, n));
}
#endif

/* Mode infer or train: the runtime's cutoff off (el_init leaves it off too). */
static void cutoff_off(void)
{
    if (active >= 0) (void)el_set_cutoff(el_static_net(), 0);
}

/* READY: the public part first (what a board is, never what it learned), then, for an
 * authenticated HELLO only, the private part; docs/protocol.md §3 gives the layout. */
static void do_hello(void)
{
    static const char name[] = EL_FW_BOARD_NAME;
    uint8_t *p = out();
    uint32_t i;
    for (i = 0; i < 84; i++) p[i] = 0;
    p[0] = EL_LINK_VERSION;
    p[1] = EL_FW_CAPS;
    el_put_u16(p + 2, (uint16_t)EL_LINK_MAX_PAYLOAD);
    el_put_u32(p + 4, EL_FW_MODEL_BYTES);
    el_put_u32(p + 8, el_static_arena_bytes());
    el_put_u16(p + 12, (uint16_t)EL_FW_RING);
    p[14] = (uint8_t)((session.provisioned ? F_PROVISIONED : 0u) | (cur_auth ? F_AUTHENTICATED : 0u)
                      | (durable ? F_DURABLE : 0u) | (restored ? F_RESTORED : 0u));
    p[15] = active >= 0;
    for (i = 0; i < EL_DEVICE_ID_BYTES; i++) p[16 + i] = session.device_id[i];
    el_session_challenge(&session, p + 24);
    el_put_u32(p + 40, session.boot);
    el_put_u32(p + 44, checkpoint_seq);
    el_put_u32(p + 48, model_version);
    if (cur_auth) {
        p[52] = mode;
        p[53] = active_cutoff;                /* model flags: bit0 cutoff margins */
        el_put_u16(p + 54, (uint16_t)(active >= 0 ? el_static_net()->T : 0u));
        el_put_u32(p + 56, active_size);
        el_put_u32(p + 60, active_crc);
        el_put_u32(p + 64, (uint32_t)stream_id);
        el_put_u32(p + 68, (uint32_t)(stream_id >> 32));
        el_put_u32(p + 72, next_seq);
        el_put_u32(p + 76, EL_FW_SEQLOG);
        el_put_u32(p + 80, checkpoint_every);
    }
    for (i = 0; i + 1u < sizeof name && i < 32u; i++) p[84 + i] = (uint8_t)name[i];
    send(EL_MSG_READY, 84 + i);
}

/* A version that does not rise is a rollback, refused unless the owner forces it. */
static int rollback(uint32_t version, uint8_t force)
{
    if (force || version > model_version) return 0;
    send_error(EL_LINK_ERR_ROLLBACK, model_version, (int32_t)version);
    return 1;
}

/* PUSH_BEGIN: total u32, model_crc u32, model_version u32, flags u8 (bit0 force) */
static void do_push_begin(const uint8_t *a, uint32_t n)
{
    if (n != 13) { send_error(EL_LINK_ERR_BAD_LENGTH, n, 0); return; }
    push_open = 0;
    if (el_get_u32(a) > EL_FW_MODEL_BYTES || el_get_u32(a) == 0) {
        send_error(EL_LINK_ERR_TOO_BIG, EL_FW_MODEL_BYTES, (int32_t)el_get_u32(a));
        return;
    }
    if (rollback(el_get_u32(a + 8), a[12] & EL_PUSH_FORCE)) return;
    push_total = el_get_u32(a);
    push_crc = el_get_u32(a + 4);
    push_version = el_get_u32(a + 8);
    push_force = a[12] & EL_PUSH_FORCE;
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
    if (rollback(push_version, push_force)) { push_open = 0; return; }
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
    model_version = push_version;
    push_open = 0;
    mode = MODE_INFER;
    clear_session();
    stats[S_COMMITS]++;
    (void)save_checkpoint();                  /* durable before it is acknowledged (READY: F_DURABLE) */
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

/* SAMPLE: stream u64, index u32, label i16 (-1: none), rows u16, data[rows * input_size] */
static void do_sample(const uint8_t *a, uint32_t n)
{
    el_net_t *net = el_static_net();
    uint32_t seq, rows, slot;
    int32_t label;
    int learn;
    el_status_t st;
    uint16_t pred, steps;
    uint8_t flags;
    if (n < 16) { send_error(EL_LINK_ERR_BAD_LENGTH, n, 0); return; }
    if (stream_id == 0 || el_get_u32(a) != (uint32_t)stream_id || el_get_u32(a + 4) != (uint32_t)(stream_id >> 32)) {
        send_error(EL_LINK_ERR_STREAM_MISMATCH, next_seq, 0);
        return;
    }
    a += 8;
    n -= 8;
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
    if (learn && checkpoint_every != 0 && ++learned_since >= checkpoint_every) (void)save_checkpoint();
    send_result(seq, pred, flags, steps);
}

/* STREAM: stream u64 (not 0), flags u8 (bit0 restart) -> ACK: the stream's next index. The open
 * stream goes on where it is (a client that restarts resumes); another one, or a restart,
 * begins at index 0. */
static void do_stream(const uint8_t *a, uint32_t n)
{
    uint64_t id;
    if (n != 9) { send_error(EL_LINK_ERR_BAD_LENGTH, n, 0); return; }
    id = (uint64_t)el_get_u32(a) | (uint64_t)el_get_u32(a + 4) << 32;
    if (id == 0) { send_error(EL_LINK_ERR_STREAM_MISMATCH, next_seq, 0); return; }
    if (id != stream_id || (a[8] & EL_STREAM_RESTART)) {
        stream_id = id;
        next_seq = 0;
        clear_ring();
    }
    send_ack(next_seq);
}

/* CONFIG: checkpoint_every u32 (learned samples between checkpoints; 0: only on commit and request),
 * kept in a checkpoint at once so that it survives a restart like the model it applies to */
static void do_config(const uint8_t *a, uint32_t n)
{
    if (n != 4) { send_error(EL_LINK_ERR_BAD_LENGTH, n, 0); return; }
    checkpoint_every = el_get_u32(a);
    learned_since = 0;
    (void)save_checkpoint();
    send_ack(checkpoint_every);
}

/* CHECKPOINT -> ACK: the sequence number of the checkpoint written */
static void do_checkpoint(uint32_t n)
{
    if (n != 0) { send_error(EL_LINK_ERR_BAD_LENGTH, n, 0); return; }
    if (active < 0) { send_error(EL_LINK_ERR_NO_MODEL, 0, 0); return; }
    if (save_checkpoint() != 0) { send_error(EL_LINK_ERR_NO_STORAGE, board_storage_size(), (int32_t)EL_ST_BYTES); return; }
    send_ack(checkpoint_seq);
}

/* STATS_R: mode u8, has_model u8, count u16, next_seq u32, active_size u32, active_crc u32,
 * counters u32[count]; unauthenticated: mode, next_seq, size and CRC zero, the link's counters only */
static void do_stats(void)
{
    uint8_t *p = out();
    uint32_t i, count = cur_auth ? S_COUNT : EL_PUBLIC_COUNTERS;
    p[0] = cur_auth ? mode : 0u;
    p[1] = active >= 0;
    el_put_u16(p + 2, (uint16_t)count);
    el_put_u32(p + 4, cur_auth ? next_seq : 0u);
    el_put_u32(p + 8, cur_auth ? active_size : 0u);
    el_put_u32(p + 12, cur_auth ? active_crc : 0u);
    for (i = 0; i < count; i++) el_put_u32(p + 16 + 4 * i, stats[i]);
    send(EL_MSG_STATS_R, 16 + 4 * count);
}

/* SEQLOG: from u32, count u16 -> total u32, from u32, entries u32[] */
static void do_seqlog(const uint8_t *a, uint32_t n)
{
    uint8_t *p = out();
    uint32_t from, count, i, max = (EL_LINK_MAX_PAYLOAD - EL_TRAILER_BYTES - 8u) / 4u;
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
    if (len > EL_LINK_MAX_PAYLOAD - EL_TRAILER_BYTES - 12u) len = EL_LINK_MAX_PAYLOAD - EL_TRAILER_BYTES - 12u;
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

static int known(uint8_t type)
{
    switch (type) {
    case EL_MSG_HELLO: case EL_MSG_PUSH_BEGIN: case EL_MSG_PUSH_CHUNK: case EL_MSG_COMMIT:
    case EL_MSG_SET_MODE: case EL_MSG_SAMPLE: case EL_MSG_STREAM: case EL_MSG_CONFIG:
    case EL_MSG_CHECKPOINT: case EL_MSG_STATS: case EL_MSG_SEQLOG: case EL_MSG_PULL:
    case EL_MSG_RESET: case EL_MSG_EXIT: return 1;
    default: return 0;
    }
}

/* The request's trailer checked (session.c): a request that fails is refused before its payload
 * is read, and changes nothing. HELLO and STATS may come without one (the public answers). */
static int authenticate(const uint8_t *a, uint32_t *len)
{
    static const uint16_t refusal[] = {0, EL_LINK_ERR_AUTH_REQUIRED, EL_LINK_ERR_BAD_MAC, EL_LINK_ERR_REPLAY,
                                       EL_LINK_ERR_NO_KEY};
    uint32_t body;
    int v = el_session_verify(&session, EL_LINK_VERSION, cur_type, a, *len, cur_type != EL_MSG_SAMPLE, &body,
                              &cur_counter);
    if (v == EL_AUTH_OK) {
        cur_auth = 1;
        *len = body;
        board_link_trusted();
        return 1;
    }
    if (v == EL_AUTH_NONE && (cur_type == EL_MSG_HELLO || cur_type == EL_MSG_STATS)) return 1;   /* public */
    stats[v == EL_AUTH_REPLAY ? S_REPLAYS : S_AUTH_FAILED]++;
    send_error(refusal[v], session.boot, 0);
    return 0;
}

static void handle(const uint8_t *f, uint32_t n)
{
    const uint8_t *a = f + EL_LINK_HEADER;
    uint32_t len = n - EL_LINK_HEADER;
    cur_type = f[1];
    cur_tag = el_get_u16(f + 2);
    cur_auth = 0;
    if (f[0] != EL_LINK_VERSION) { stats[S_BAD_VERSION]++; send_error(EL_LINK_ERR_BAD_VERSION, EL_LINK_VERSION, f[0]); return; }
    stats[S_FRAMES_OK]++;
    if (!authenticate(a, &len)) return;
    if (!known(cur_type)) { send_error(EL_LINK_ERR_BAD_TYPE, cur_type, 0); return; }
    switch (cur_type) {
    case EL_MSG_HELLO: do_hello(); break;
    case EL_MSG_PUSH_BEGIN: do_push_begin(a, len); break;
    case EL_MSG_PUSH_CHUNK: do_push_chunk(a, len); break;
    case EL_MSG_COMMIT: do_commit(a, len); break;
    case EL_MSG_SET_MODE: do_set_mode(a, len); break;
    case EL_MSG_SAMPLE: do_sample(a, len); break;
    case EL_MSG_STREAM: do_stream(a, len); break;
    case EL_MSG_CONFIG: do_config(a, len); break;
    case EL_MSG_CHECKPOINT: do_checkpoint(len); break;
    case EL_MSG_STATS: do_stats(); break;
    case EL_MSG_SEQLOG: do_seqlog(a, len); break;
    case EL_MSG_PULL: do_pull(a, len); break;
    case EL_MSG_RESET: do_reset(); break;
    case EL_MSG_EXIT:
        send_ack(len >= 1 ? a[0] : 0);
        board_exit(len >= 1 ? a[0] : 0);
        break;
    default: break;                           /* known() admitted only the types above */
    }
}

/* Every mutable state to its power-on value. A device starts so anyway (.bss is zeroed); this
 * says what the state is, and lets a harness boot the firmware again in the same process
 * (fuzz/fuzz_firmware.c: one boot per input). */
static void power_on(void)
{
    uint32_t i;
    active = -1;
    active_size = active_crc = model_version = 0;
    active_cutoff = 0;
    push_total = push_crc = push_received = push_version = 0;
    push_open = push_force = 0;
    mode = MODE_INFER;
    checkpoint_every = EL_FW_CHECKPOINT_EVERY;
    learned_since = checkpoint_seq = 0;
    durable = restored = 0;
    clear_session();
    for (i = 0; i < S_COUNT; i++) stats[i] = 0;
    el_link_rx_reset(&rx);
}

int main(void)
{
    power_on();
    board_init();
    durable = board_storage_size() >= EL_ST_BYTES;
    el_session_boot(&session);
    restore_checkpoint();
#ifdef EL_FW_INITIAL_MODEL
    load_initial_model();
#endif
    for (;;) {
        int c = board_read_byte(), r;
        if (c < 0) board_exit(0);
        r = el_link_rx_byte(&rx, (uint8_t)c);
        if (r == EL_RX_FRAME) {
            handle(rx.buf, rx.len);
        } else if (r == EL_RX_BAD_CRC || r == EL_RX_BAD_FRAME) {
            cur_type = 0;
            cur_tag = 0xFFFFu;
            cur_auth = 0;
            stats[r == EL_RX_BAD_CRC ? S_BAD_CRC : S_BAD_FRAME]++;
            send_error(r == EL_RX_BAD_CRC ? EL_LINK_ERR_BAD_CRC : EL_LINK_ERR_BAD_FRAME, 0, 0);
        }
    }
}
