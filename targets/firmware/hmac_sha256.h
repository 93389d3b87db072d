/* SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104) for the link's authentication
 * (docs/security.md). Checked against RFC 4231's vectors and Python's hashlib/hmac
 * (tests/test_security_hmac.py).
 *
 * The key's inner and outer states are computed once (el_hmac_key) so that a MAC costs the
 * message's blocks plus two, and a message can be fed in pieces (the link MACs a header, a
 * payload and a trailer without copying them together).
 * Only <stdint.h> and <stddef.h>; no libc, no malloc, no float.
 */
#ifndef EL_HMAC_SHA256_H
#define EL_HMAC_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define EL_SHA256_BYTES 32u
#define EL_SHA256_BLOCK 64u

typedef struct {
    uint32_t h[8];
    uint64_t length;                 /* bytes hashed so far */
    uint8_t block[EL_SHA256_BLOCK];
    uint32_t used;                   /* bytes waiting in block */
} el_sha256_t;

void el_sha256_init(el_sha256_t *s);
void el_sha256_update(el_sha256_t *s, const uint8_t *p, size_t n);
void el_sha256_final(el_sha256_t *s, uint8_t out[EL_SHA256_BYTES]);

/* A key's precomputed states: SHA-256 after (key ^ ipad) and after (key ^ opad). */
typedef struct {
    el_sha256_t inner, outer;
} el_hmac_key_t;

/* Keys longer than a block are hashed first (RFC 2104). */
void el_hmac_key(el_hmac_key_t *k, const uint8_t *key, size_t n);

/* One MAC, fed in pieces: start, update as often as needed, final. */
void el_hmac_start(el_sha256_t *s, const el_hmac_key_t *k);
void el_hmac_final(el_sha256_t *s, const el_hmac_key_t *k, uint8_t out[EL_SHA256_BYTES]);

/* Equality of n bytes in a time that does not depend on where they differ. */
int el_equal_ct(const uint8_t *a, const uint8_t *b, size_t n);

#endif /* EL_HMAC_SHA256_H */
