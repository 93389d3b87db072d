/* libFuzzer harness: the whole firmware (targets/firmware: main loop, link protocol, sessions,
 * checkpoints, and the C runtime) on a board made of memory, under ASan and UBSan (fuzz/run.py;
 * corpus: fuzz/corpus/firmware, from fuzz/make_corpus.py).
 *
 * The firmware is booted once per input (main_loop.c built with -Dmain=el_firmware_main; its
 * power_on() resets its state) on a storage provisioned with a fixed key. The input is a list of
 * records, op u8 | length u16 | body, which this board turns into the bytes the firmware reads:
 *   op % 6 == 0  the body as raw wire bytes (COBS, delimiters, garbage)
 *             1  a frame of type body[0] and payload body[1..], with a valid MAC trailer: the
 *                host's side of a session (nonce: the challenge of the last READY read, the
 *                next counter), so that the fuzzer reaches every authenticated request
 *             2  the same frame without a trailer
 *             3  a HELLO (for a challenge)
 *             4  a reboot: the firmware starts again on the storage it wrote
 *             5  a power cut after body[0..2) bytes more of storage writes, then a reboot
 * The firmware must never touch memory it should not, nor write storage out of its bounds. */
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "hmac_sha256.h"
#include "protocol.h"
#include "session.h"
#include "../c/edgelearn.h"

int el_firmware_main(void);

#define STORAGE_BYTES (256u * 1024u)

static const uint8_t device_id[EL_DEVICE_ID_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8};
static const uint8_t secret[EL_KEY_BYTES] = "edgelearn fuzzing key, not real";
static uint8_t storage[STORAGE_BYTES], provisioned[STORAGE_BYTES];
static el_hmac_key_t key;
static const uint8_t *in;
static size_t in_len, in_pos;
static uint8_t queue[2 * EL_LINK_MAX_WIRE];
static size_t q_len, q_pos;
static int reboot;
static long cut = -1;                         /* storage bytes until the power cut; -1: none */
static jmp_buf off;
static el_link_rx_t answers;
static uint8_t nonce[EL_NONCE_BYTES];
static uint32_t counter;
static uint16_t tag;

static void queue_frame(uint8_t type, const uint8_t *payload, uint32_t n, int authenticated)
{
    static uint8_t raw[EL_LINK_MAX_RAW];
    uint32_t len = EL_LINK_HEADER;
    if (n > EL_LINK_MAX_PAYLOAD - EL_TRAILER_BYTES) n = EL_LINK_MAX_PAYLOAD - EL_TRAILER_BYTES;
    raw[0] = EL_LINK_VERSION;
    raw[1] = type;
    el_put_u16(raw + 2, ++tag);
    if (n) memcpy(raw + len, payload, n);
    len += n;
    if (authenticated) {
        uint8_t head[1 + EL_NONCE_BYTES + 6], mac[EL_SHA256_BYTES];
        el_sha256_t h;
        head[0] = 'Q';
        memcpy(head + 1, nonce, EL_NONCE_BYTES);
        el_put_u32(head + 1 + EL_NONCE_BYTES, ++counter);
        head[5 + EL_NONCE_BYTES] = EL_LINK_VERSION;
        head[6 + EL_NONCE_BYTES] = type;
        el_hmac_start(&h, &key);
        el_sha256_update(&h, head, sizeof head);
        el_sha256_update(&h, payload, n);
        el_hmac_final(&h, &key, mac);
        el_put_u32(raw + len, counter);
        memcpy(raw + len + 4, mac, EL_MAC_BYTES);
        len += EL_TRAILER_BYTES;
    }
    q_len = el_link_encode(raw, len, queue);
    q_pos = 0;
}

/* The next record into the queue; 0 at the end of the input or at a reboot. */
static int next_record(void)
{
    uint8_t op;
    size_t n;
    const uint8_t *body;
    if (in_pos + 3 > in_len) return 0;
    op = in[in_pos] % 6u;
    n = (size_t)in[in_pos + 1] | (size_t)in[in_pos + 2] << 8;
    in_pos += 3;
    if (n > in_len - in_pos) n = in_len - in_pos;
    body = in + in_pos;
    in_pos += n;
    switch (op) {
    case 0:
        q_len = n < sizeof queue ? n : sizeof queue;
        memcpy(queue, body, q_len);
        q_pos = 0;
        return 1;
    case 1:
    case 2:
        queue_frame(n ? body[0] : EL_MSG_HELLO, body + (n ? 1 : 0), (uint32_t)(n ? n - 1 : 0), op == 1);
        return 1;
    case 3:
        queue_frame(EL_MSG_HELLO, NULL, 0, 0);
        return 1;
    case 5:
        cut = n >= 2 ? (long)(body[0] | body[1] << 8) : 0;
        return 1;
    default:
        reboot = 1;
        return 0;
    }
}

void board_init(void) { q_len = q_pos = 0; }

int board_read_byte(void)
{
    while (q_pos == q_len)
        if (!next_record()) return -1;
    return queue[q_pos++];
}

/* The board's answers, read as a host reads them: a READY's challenge opens the next session. */
void board_write(const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (el_link_rx_byte(&answers, p[i]) == EL_RX_FRAME && answers.buf[1] == EL_MSG_READY
            && answers.len >= EL_LINK_HEADER + 40u)
            memcpy(nonce, answers.buf + EL_LINK_HEADER + 24, EL_NONCE_BYTES);
}

void board_exit(int code)
{
    (void)code;
    longjmp(off, 1);
}

uint32_t board_storage_size(void) { return STORAGE_BYTES; }

const uint8_t *board_storage(void) { return storage; }

/* The bytes of a write that happen before the power cut (all of them without one). */
static uint32_t before_cut(uint32_t offset, uint32_t n)
{
    if (offset > STORAGE_BYTES || n > STORAGE_BYTES - offset) __builtin_trap();   /* out of the storage */
    return cut < 0 || (long)n <= cut ? n : (uint32_t)cut;
}

static void after_write(uint32_t done, uint32_t n)
{
    if (cut < 0) return;
    cut -= (long)done;
    if (done < n) {                            /* the power failed inside this write */
        reboot = 1;
        cut = -1;
        longjmp(off, 1);
    }
}

void board_storage_erase(uint32_t offset, uint32_t n)
{
    uint32_t k = before_cut(offset, n);
    memset(storage + offset, 0xFF, k);
    after_write(k, n);
}

void board_storage_program(uint32_t offset, const uint8_t *p, uint32_t n)
{
    uint32_t k = before_cut(offset, n);
    memcpy(storage + offset, p, k);
    after_write(k, n);
}

void board_link_trusted(void) {}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    el_put_u32(provisioned, EL_KEY_MAGIC);
    el_put_u16(provisioned + 4, 1);
    memcpy(provisioned + 8, device_id, sizeof device_id);
    memcpy(provisioned + 16, secret, sizeof secret);
    el_put_u32(provisioned + 48, el_crc32(0, provisioned, 48));
    el_hmac_key(&key, secret, sizeof secret);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    memcpy(storage, provisioned, sizeof storage);
    in = data;
    in_len = size;
    in_pos = 0;
    counter = 0;
    cut = -1;
    memset(nonce, 0, sizeof nonce);
    do {                                       /* one boot, and one more after every reboot */
        reboot = 0;
        el_link_rx_reset(&answers);
        if (!setjmp(off)) el_firmware_main();
    } while (reboot && in_pos < in_len);
    return 0;
}
