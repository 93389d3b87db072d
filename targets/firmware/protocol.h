/* edgelearn link protocol (docs/protocol.md): frame codec, device side.
 *
 * A frame on the wire is COBS(raw) followed by one 0x00 delimiter, where
 *   raw = version:u8 | type:u8 | tag:u16 LE | payload | crc32:u32 LE
 * and the CRC-32 (el_crc32, zlib's) covers version .. payload.
 * Only <stdint.h> and <stddef.h>; no libc, no malloc, no float.
 */
#ifndef EL_PROTOCOL_H
#define EL_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#ifndef EL_LINK_VERSION                      /* -D only to stand in for another version (tests) */
#define EL_LINK_VERSION 3u                    /* 3: authentication, checkpoints, streams (2: the cutoff) */
#endif
#ifndef EL_LINK_MAX_PAYLOAD
#define EL_LINK_MAX_PAYLOAD 1024u            /* bytes of payload in one frame */
#endif
#define EL_LINK_HEADER 4u                    /* version, type, tag */
#define EL_LINK_MAX_RAW (EL_LINK_HEADER + EL_LINK_MAX_PAYLOAD + 4u)
#define EL_LINK_MAX_WIRE (EL_LINK_MAX_RAW + EL_LINK_MAX_RAW / 254u + 2u)   /* COBS + delimiter */

/* message types: requests (host -> device) and responses (device -> host, 0x80 | ...) */
enum {
    EL_MSG_HELLO = 0x01, EL_MSG_PUSH_BEGIN = 0x10, EL_MSG_PUSH_CHUNK = 0x11, EL_MSG_COMMIT = 0x12,
    EL_MSG_SET_MODE = 0x20, EL_MSG_SAMPLE = 0x21, EL_MSG_STREAM = 0x22, EL_MSG_CONFIG = 0x23,
    EL_MSG_CHECKPOINT = 0x24, EL_MSG_STATS = 0x30, EL_MSG_SEQLOG = 0x31,
    EL_MSG_PULL = 0x40, EL_MSG_RESET = 0x50, EL_MSG_EXIT = 0x51,
    EL_MSG_READY = 0x81, EL_MSG_ACK = 0x82, EL_MSG_RESULT = 0xA1, EL_MSG_STATS_R = 0xB0,
    EL_MSG_SEQLOG_R = 0xB1, EL_MSG_PULL_R = 0xC0, EL_MSG_ERROR = 0xFF
};

/* error codes of an ERROR frame */
enum {
    EL_LINK_ERR_BAD_CRC = 1, EL_LINK_ERR_BAD_FRAME = 2, EL_LINK_ERR_BAD_VERSION = 3,
    EL_LINK_ERR_BAD_TYPE = 4, EL_LINK_ERR_BAD_LENGTH = 5, EL_LINK_ERR_TOO_BIG = 6,
    EL_LINK_ERR_NO_PUSH = 7, EL_LINK_ERR_PUSH_GAP = 8, EL_LINK_ERR_PUSH_INCOMPLETE = 9,
    EL_LINK_ERR_MODEL_CRC = 10, EL_LINK_ERR_MODEL_REFUSED = 11, EL_LINK_ERR_ARENA_TOO_SMALL = 12,
    EL_LINK_ERR_NO_MODEL = 13, EL_LINK_ERR_SEQ_GAP = 14, EL_LINK_ERR_SEQ_STALE = 15,
    EL_LINK_ERR_RUN_FAILED = 16, EL_LINK_ERR_BAD_MODE = 17, EL_LINK_ERR_PULL_RANGE = 18,
    EL_LINK_ERR_NO_CUTOFF = 19, EL_LINK_ERR_AUTH_REQUIRED = 20, EL_LINK_ERR_BAD_MAC = 21,
    EL_LINK_ERR_REPLAY = 22, EL_LINK_ERR_NO_KEY = 23, EL_LINK_ERR_ROLLBACK = 24,
    EL_LINK_ERR_STREAM_MISMATCH = 25, EL_LINK_ERR_NO_STORAGE = 26
};

/* A streaming COBS decoder: feed bytes one by one. */
typedef struct {
    uint8_t buf[EL_LINK_MAX_RAW];
    uint32_t len;
    uint8_t remaining, code, overflow, started;
} el_link_rx_t;

/* Outcome of el_link_rx_byte */
enum { EL_RX_MORE = 0, EL_RX_FRAME = 1, EL_RX_EMPTY = 2, EL_RX_BAD_FRAME = 3, EL_RX_BAD_CRC = 4 };

void el_link_rx_reset(el_link_rx_t *rx);

/* Feed one wire byte. On EL_RX_FRAME the raw frame (CRC checked and stripped) is
 * rx->buf[0 .. rx->len); the next byte starts a new frame. */
int el_link_rx_byte(el_link_rx_t *rx, uint8_t byte);

/* Encode raw[0..n) (header + payload, no CRC) into a wire frame: appends the CRC, COBS,
 * the delimiter. `out` holds at least n + 4 + (n + 4) / 254 + 2 bytes. Returns its length. */
size_t el_link_encode(const uint8_t *raw, size_t n, uint8_t *out);

/* little-endian helpers */
static inline uint32_t el_get_u32(const uint8_t *p)
{ return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static inline uint16_t el_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline void el_put_u32(uint8_t *p, uint32_t v)
{ p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }
static inline void el_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

#endif /* EL_PROTOCOL_H */
