/* edgelearn link protocol: COBS + CRC-32 frame codec (docs/protocol.md §2). */
#include "protocol.h"
#include "../c/edgelearn.h"

void el_link_rx_reset(el_link_rx_t *rx)
{
    rx->len = 0;
    rx->remaining = 0;
    rx->code = 0;
    rx->overflow = 0;
    rx->started = 0;
}

static void put(el_link_rx_t *rx, uint8_t b)
{
    if (rx->len < sizeof rx->buf) rx->buf[rx->len++] = b;
    else rx->overflow = 1;
}

int el_link_rx_byte(el_link_rx_t *rx, uint8_t byte)
{
    if (byte == 0) {                               /* delimiter: the frame ends */
        int empty = !rx->started, broken = rx->overflow || rx->remaining != 0;
        uint32_t n = rx->len;
        el_link_rx_reset(rx);
        if (empty) return EL_RX_EMPTY;
        if (broken || n < EL_LINK_HEADER + 4u) return EL_RX_BAD_FRAME;
        if (el_crc32(0, rx->buf, n - 4u) != el_get_u32(rx->buf + n - 4u)) return EL_RX_BAD_CRC;
        rx->len = n - 4u;
        return EL_RX_FRAME;
    }
    if (rx->remaining == 0) {                      /* a code byte */
        if (!rx->started) rx->len = 0;       /* the previous frame stays readable until now */
        else if (rx->code != 0xFF) put(rx, 0);
        rx->started = 1;
        rx->code = byte;
        rx->remaining = (uint8_t)(byte - 1u);
    } else {
        put(rx, byte);
        rx->remaining--;
    }
    return EL_RX_MORE;
}

size_t el_link_encode(const uint8_t *raw, size_t n, uint8_t *out)
{
    uint8_t crc[4];
    size_t o = 1, code_at = 0, i;
    uint8_t code = 1;
    el_put_u32(crc, el_crc32(0, raw, n));
    for (i = 0; i < n + 4u; i++) {
        uint8_t b = i < n ? raw[i] : crc[i - n];
        if (b == 0) {
            out[code_at] = code;
            code_at = o++;
            code = 1;
        } else {
            out[o++] = b;
            if (++code == 0xFF) {
                out[code_at] = code;
                code_at = o++;
                code = 1;
            }
        }
    }
    out[code_at] = code;
    out[o++] = 0;
    return o;
}
