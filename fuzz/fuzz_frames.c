/* libFuzzer harness: the link's frame codec (targets/firmware/protocol.c) under ASan and UBSan
 * (fuzz/run.py; corpus: fuzz/corpus/frames).
 *
 * The input is a byte stream from the wire: the streaming COBS decoder must never overrun, and
 * every frame it accepts, encoded again, must decode to the same bytes. The input is also a raw
 * frame to send: its encoding holds no 0x00 before the delimiter and decodes back to it. */
#include <stdint.h>
#include <string.h>

#include "protocol.h"

static el_link_rx_t rx, back;
static uint8_t wire[EL_LINK_MAX_WIRE];

static void decodes_to(const uint8_t *raw, uint32_t n, size_t wire_len)
{
    size_t i;
    el_link_rx_reset(&back);
    for (i = 0; i + 1 < wire_len; i++)
        if (wire[i] == 0 || el_link_rx_byte(&back, wire[i]) != EL_RX_MORE) __builtin_trap();
    if (el_link_rx_byte(&back, wire[wire_len - 1]) != EL_RX_FRAME) __builtin_trap();
    if (back.len != n || memcmp(back.buf, raw, n) != 0) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t i;
    el_link_rx_reset(&rx);
    for (i = 0; i < size; i++) {
        int r = el_link_rx_byte(&rx, data[i]);
        if (r == EL_RX_FRAME) {
            static uint8_t frame[EL_LINK_MAX_RAW];
            uint32_t n = rx.len;
            memcpy(frame, rx.buf, n);
            decodes_to(frame, n, el_link_encode(frame, n, wire));
        }
    }
    if (size >= EL_LINK_HEADER && size <= EL_LINK_MAX_RAW - 4u)
        decodes_to(data, (uint32_t)size, el_link_encode(data, size, wire));
    return 0;
}
