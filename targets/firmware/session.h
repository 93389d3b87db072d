/* The link's authentication (docs/security.md, docs/protocol.md §2a): the device's key from its
 * provisioning record, the boot count that makes every challenge unique, sessions, MACs.
 *
 * An authenticated frame's payload ends with a trailer: counter u32 | mac[16], where
 *     mac = HMAC-SHA256(key, dir | nonce[16] | counter u32 | version u8 | type u8 | body)[0..16)
 * dir is 'Q' for a request and 'A' for its answer, body the payload before the trailer, nonce the
 * session's. A session starts when a request verifies with the device's pending challenge (the
 * one its last READY carried): that challenge becomes the session nonce and the previous session
 * ends (takeover); the last EL_CHALLENGES challenges stay pending, so a client whose HELLO was
 * retransmitted (and answered twice) can open its session with whichever answer it read. Within a session every request but SAMPLE must carry a counter above the
 * highest one accepted (SAMPLEs are ordered by their stream index instead). Challenges are
 * HMAC(key, 'C' | boot u32 | n u32): distinct for every HELLO of every boot, since the boot count
 * is incremented in storage before the first is issued.
 */
#ifndef EL_SESSION_H
#define EL_SESSION_H

#include <stdint.h>

#include "hmac_sha256.h"

#define EL_DEVICE_ID_BYTES 8u
#define EL_KEY_BYTES 32u
#define EL_NONCE_BYTES 16u
#define EL_MAC_BYTES 16u
#define EL_TRAILER_BYTES (4u + EL_MAC_BYTES)
#define EL_KEY_MAGIC 0x594B4C45u              /* "ELKY": the provisioning record */
#define EL_KEY_RECORD_BYTES 52u               /* magic, format u16, 0 u16, id[8], key[32], crc32 */
#define EL_CHALLENGES 4u                      /* challenges pending at once */

/* el_session_verify's verdicts */
enum { EL_AUTH_OK = 0, EL_AUTH_NONE = 1, EL_AUTH_BAD_MAC = 2, EL_AUTH_REPLAY = 3, EL_AUTH_NO_KEY = 4 };

typedef struct {
    uint8_t provisioned;                      /* a valid provisioning record was found */
    uint8_t live;                             /* a session is open */
    uint8_t pending;                          /* challenges pending: the newest `pending` of the ring */
    uint8_t device_id[EL_DEVICE_ID_BYTES];
    el_hmac_key_t key;
    uint32_t boot;                            /* this boot's number (the boot record's seq) */
    uint32_t challenges;                      /* challenges issued this boot */
    uint8_t challenge[EL_CHALLENGES][EL_NONCE_BYTES], nonce[EL_NONCE_BYTES];
    uint32_t counter;                         /* the highest counter accepted in the session */
} el_session_t;

/* Read the provisioning record and count this boot in storage (its boot record). */
void el_session_boot(el_session_t *s);

/* A new pending challenge, written to out (zeros on a board without a key). */
void el_session_challenge(el_session_t *s, uint8_t out[EL_NONCE_BYTES]);

/* Check the trailer of a request's payload p[0..n): EL_AUTH_NONE when n is shorter than a
 * trailer; on EL_AUTH_OK *body is the payload's length without it and the request's counter is
 * in *counter. `ordered`: the counter must exceed the session's (every request but SAMPLE). */
int el_session_verify(el_session_t *s, uint8_t version, uint8_t type, const uint8_t *p, uint32_t n,
                      int ordered, uint32_t *body, uint32_t *counter);

/* Append the answer's trailer for the request of `counter`: p[n .. n + EL_TRAILER_BYTES). */
void el_session_sign(const el_session_t *s, uint32_t counter, uint8_t version, uint8_t type, uint8_t *p, uint32_t n);

#endif /* EL_SESSION_H */
