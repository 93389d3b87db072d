/* Durable records in the board's storage (board.h: emulated flash), two slots each (A/B), so that
 * a power loss at any byte of a write leaves the previous record readable (docs/protocol.md §7).
 *
 * A slot holds a 16-byte header and a payload:
 *     magic u32, seq u32, size u32 (payload bytes), crc32 u32 (over magic, seq, size, payload)
 * A write goes to the slot that does not hold the newest valid record: it erases that slot
 * (the header first), programs the payload, then the header, its CRC last. Until the last byte
 * of the CRC is programmed the slot fails its check, so the newest valid record is still the
 * previous one; once it is, the new record is complete. The newest valid record is the one of
 * the larger seq among the slots whose magic, size and CRC check.
 *
 * The storage layout (firmware_host/storage.py mirrors it; tests/test_checkpoint.py checks it):
 *     0            provisioning record (the device id and key; written by the host, never here)
 *     4096         boot record slots A, B (one sector each): the boot count, no payload
 *     12288        checkpoint slots A, B (EL_ST_CKPT_SLOT bytes each)
 */
#ifndef EL_CHECKPOINT_H
#define EL_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#define EL_ST_SECTOR 4096u
#define EL_ST_KEY_AT 0u
#define EL_ST_BOOT_AT EL_ST_SECTOR
#define EL_ST_BOOT_SLOT EL_ST_SECTOR
#define EL_ST_CKPT_AT (3u * EL_ST_SECTOR)
#define EL_AB_HEADER 16u
#define EL_AB_BOOT_MAGIC 0x54424C45u         /* "ELBT" */
#define EL_AB_CKPT_MAGIC 0x4B434C45u         /* "ELCK" */

typedef struct {
    uint32_t at, slot_bytes, magic;          /* where slot A starts; B follows it */
} el_ab_t;

/* The newest valid record: its slot (0 or 1), or -1 when neither slot holds one. */
int el_ab_newest(const el_ab_t *ab, uint32_t *seq, const uint8_t **payload, uint32_t *size);

/* Write a record of sequence number `seq` whose payload is head[0..nh) then body[0..nb)
 * (body may be NULL), into the slot that does not hold the newest valid record. Returns the
 * slot written, or -1 when the payload does not fit a slot or the board has no storage there. */
int el_ab_write(const el_ab_t *ab, uint32_t seq, const uint8_t *head, uint32_t nh,
                const uint8_t *body, uint32_t nb);

#endif /* EL_CHECKPOINT_H */
