/* SHA-256 (FIPS 180-4 §6.2) and HMAC (RFC 2104); hmac_sha256.h says why the key's states
 * are precomputed. */
#include "hmac_sha256.h"

static const uint32_t K[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u
};

static uint32_t ror(uint32_t x, unsigned n) { return (x >> n) | (x << (32u - n)); }

static void compress(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64], a, b, c, d, e, f, g, hh, t1, t2;
    unsigned i;
    for (i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4]; f = h[5]; g = h[6]; hh = h[7];
    for (i = 0; i < 64; i++) {
        t1 = hh + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

void el_sha256_init(el_sha256_t *s)
{
    static const uint32_t H0[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                                   0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
    unsigned i;
    for (i = 0; i < 8; i++) s->h[i] = H0[i];
    s->length = 0;
    s->used = 0;
}

void el_sha256_update(el_sha256_t *s, const uint8_t *p, size_t n)
{
    s->length += n;
    while (n > 0) {
        if (s->used == 0 && n >= EL_SHA256_BLOCK) {        /* whole blocks straight from the input */
            compress(s->h, p);
            p += EL_SHA256_BLOCK;
            n -= EL_SHA256_BLOCK;
            continue;
        }
        s->block[s->used++] = *p++;
        n--;
        if (s->used == EL_SHA256_BLOCK) {
            compress(s->h, s->block);
            s->used = 0;
        }
    }
}

void el_sha256_final(el_sha256_t *s, uint8_t out[EL_SHA256_BYTES])
{
    uint64_t bits = s->length * 8u;
    unsigned i;
    s->block[s->used++] = 0x80;
    if (s->used > EL_SHA256_BLOCK - 8u) {
        while (s->used < EL_SHA256_BLOCK) s->block[s->used++] = 0;
        compress(s->h, s->block);
        s->used = 0;
    }
    while (s->used < EL_SHA256_BLOCK - 8u) s->block[s->used++] = 0;
    for (i = 0; i < 8; i++) s->block[EL_SHA256_BLOCK - 1u - i] = (uint8_t)(bits >> (8u * i));
    compress(s->h, s->block);
    for (i = 0; i < 32; i++) out[i] = (uint8_t)(s->h[i / 4] >> (24u - 8u * (i % 4)));
}

void el_hmac_key(el_hmac_key_t *k, const uint8_t *key, size_t n)
{
    uint8_t block[EL_SHA256_BLOCK], pad[EL_SHA256_BLOCK];
    unsigned i;
    for (i = 0; i < EL_SHA256_BLOCK; i++) block[i] = 0;
    if (n > EL_SHA256_BLOCK) {
        el_sha256_init(&k->inner);
        el_sha256_update(&k->inner, key, n);
        el_sha256_final(&k->inner, block);
    } else {
        for (i = 0; i < n; i++) block[i] = key[i];
    }
    for (i = 0; i < EL_SHA256_BLOCK; i++) pad[i] = block[i] ^ 0x36u;
    el_sha256_init(&k->inner);
    el_sha256_update(&k->inner, pad, EL_SHA256_BLOCK);
    for (i = 0; i < EL_SHA256_BLOCK; i++) pad[i] = block[i] ^ 0x5cu;
    el_sha256_init(&k->outer);
    el_sha256_update(&k->outer, pad, EL_SHA256_BLOCK);
    for (i = 0; i < EL_SHA256_BLOCK; i++) block[i] = pad[i] = 0;   /* no key bytes left on the stack */
}

void el_hmac_start(el_sha256_t *s, const el_hmac_key_t *k) { *s = k->inner; }

void el_hmac_final(el_sha256_t *s, const el_hmac_key_t *k, uint8_t out[EL_SHA256_BYTES])
{
    uint8_t inner[EL_SHA256_BYTES];
    el_sha256_final(s, inner);
    *s = k->outer;
    el_sha256_update(s, inner, EL_SHA256_BYTES);
    el_sha256_final(s, out);
}

int el_equal_ct(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint8_t diff = 0;
    size_t i;
    for (i = 0; i < n; i++) diff |= (uint8_t)(a[i] ^ b[i]);
    return diff == 0;
}
