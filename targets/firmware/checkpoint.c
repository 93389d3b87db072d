/* A/B records in the board's storage; checkpoint.h gives the format and why the write order
 * makes a cut write harmless. */
#include "checkpoint.h"
#include "board.h"
#include "protocol.h"
#include "../c/edgelearn.h"

static uint32_t record_crc(uint32_t magic, uint32_t seq, uint32_t size, const uint8_t *head, uint32_t nh,
                           const uint8_t *body, uint32_t nb)
{
    uint8_t h[12];
    uint32_t crc;
    el_put_u32(h, magic);
    el_put_u32(h + 4, seq);
    el_put_u32(h + 8, size);
    crc = el_crc32(0, h, sizeof h);
    crc = el_crc32(crc, head, nh);
    return body ? el_crc32(crc, body, nb) : crc;
}

/* The record in slot i when it checks: its seq, payload and size. */
static int slot_valid(const el_ab_t *ab, int i, uint32_t *seq, const uint8_t **payload, uint32_t *size)
{
    uint32_t at = ab->at + (uint32_t)i * ab->slot_bytes, n;
    const uint8_t *p;
    if (board_storage_size() < at + ab->slot_bytes) return 0;
    p = board_storage() + at;
    n = el_get_u32(p + 8);
    if (el_get_u32(p) != ab->magic || n > ab->slot_bytes - EL_AB_HEADER) return 0;
    if (record_crc(ab->magic, el_get_u32(p + 4), n, p + EL_AB_HEADER, n, NULL, 0) != el_get_u32(p + 12)) return 0;
    *seq = el_get_u32(p + 4);
    *payload = p + EL_AB_HEADER;
    *size = n;
    return 1;
}

int el_ab_newest(const el_ab_t *ab, uint32_t *seq, const uint8_t **payload, uint32_t *size)
{
    uint32_t s[2], n[2];
    const uint8_t *p[2];
    int ok0 = slot_valid(ab, 0, &s[0], &p[0], &n[0]), ok1 = slot_valid(ab, 1, &s[1], &p[1], &n[1]);
    int best = ok0 && ok1 ? (s[1] > s[0] ? 1 : 0) : ok0 ? 0 : ok1 ? 1 : -1;
    if (best >= 0) { *seq = s[best]; *payload = p[best]; *size = n[best]; }
    return best;
}

int el_ab_write(const el_ab_t *ab, uint32_t seq, const uint8_t *head, uint32_t nh,
                const uint8_t *body, uint32_t nb)
{
    uint32_t s, n, at, used, size = nh + (body ? nb : 0u);
    const uint8_t *p;
    uint8_t h[EL_AB_HEADER];
    int newest = el_ab_newest(ab, &s, &p, &n), slot = newest == 0 ? 1 : 0;
    if (size > ab->slot_bytes - EL_AB_HEADER || board_storage_size() < ab->at + 2u * ab->slot_bytes) return -1;
    at = ab->at + (uint32_t)slot * ab->slot_bytes;
    used = (EL_AB_HEADER + size + EL_ST_SECTOR - 1u) / EL_ST_SECTOR * EL_ST_SECTOR;
    board_storage_erase(at, used < ab->slot_bytes ? used : ab->slot_bytes);   /* the header goes first */
    board_storage_program(at + EL_AB_HEADER, head, nh);
    if (body) board_storage_program(at + EL_AB_HEADER + nh, body, nb);
    el_put_u32(h, ab->magic);
    el_put_u32(h + 4, seq);
    el_put_u32(h + 8, size);
    el_put_u32(h + 12, record_crc(ab->magic, seq, size, head, nh, body, nb));
    board_storage_program(at, h, EL_AB_HEADER);                               /* the CRC is its last bytes */
    return slot;
}
