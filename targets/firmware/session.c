/* Sessions and MACs of the link (session.h). */
#include "session.h"
#include "board.h"
#include "checkpoint.h"
#include "protocol.h"
#include "../c/edgelearn.h"

static const el_ab_t boot_records = {EL_ST_BOOT_AT, EL_ST_BOOT_SLOT, EL_AB_BOOT_MAGIC};

void el_session_boot(el_session_t *s)
{
    const uint8_t *rec = board_storage();
    const uint8_t *payload;
    uint32_t seq = 0, size, i;
    s->provisioned = s->live = s->pending = 0;
    s->challenges = s->counter = 0;
    if (board_storage_size() < EL_ST_CKPT_AT) return;
    if (el_get_u32(rec) != EL_KEY_MAGIC || el_get_u16(rec + 4) != 1u || el_get_u16(rec + 6) != 0u
        || el_crc32(0, rec, EL_KEY_RECORD_BYTES - 4u) != el_get_u32(rec + EL_KEY_RECORD_BYTES - 4u)) return;
    for (i = 0; i < EL_DEVICE_ID_BYTES; i++) s->device_id[i] = rec[8 + i];
    el_hmac_key(&s->key, rec + 16, EL_KEY_BYTES);
    /* Counted before any challenge is issued: a boot cut short before the count is written
     * issued none, so no two boots ever share a number. */
    if (el_ab_newest(&boot_records, &seq, &payload, &size) < 0) seq = 0;
    s->boot = seq + 1u;
    if (el_ab_write(&boot_records, s->boot, (const uint8_t *)"", 0, 0, 0) < 0) return;
    s->provisioned = 1;
}

void el_session_challenge(el_session_t *s, uint8_t out[EL_NONCE_BYTES])
{
    uint8_t msg[9], mac[EL_SHA256_BYTES];
    el_sha256_t h;
    uint32_t i;
    if (!s->provisioned) {
        for (i = 0; i < EL_NONCE_BYTES; i++) out[i] = 0;
        return;
    }
    msg[0] = 'C';
    el_put_u32(msg + 1, s->boot);
    el_put_u32(msg + 5, ++s->challenges);
    el_hmac_start(&h, &s->key);
    el_sha256_update(&h, msg, sizeof msg);
    el_hmac_final(&h, &s->key, mac);
    for (i = 0; i < EL_NONCE_BYTES; i++) out[i] = s->challenge[s->challenges % EL_CHALLENGES][i] = mac[i];
    if (s->pending < EL_CHALLENGES) s->pending++;
}

static void mac_of(const el_session_t *s, uint8_t dir, const uint8_t nonce[EL_NONCE_BYTES], uint32_t counter,
                   uint8_t version, uint8_t type, const uint8_t *body, uint32_t n, uint8_t out[EL_SHA256_BYTES])
{
    uint8_t head[1 + EL_NONCE_BYTES + 6];
    el_sha256_t h;
    uint32_t i;
    head[0] = dir;
    for (i = 0; i < EL_NONCE_BYTES; i++) head[1 + i] = nonce[i];
    el_put_u32(head + 1 + EL_NONCE_BYTES, counter);
    head[5 + EL_NONCE_BYTES] = version;
    head[6 + EL_NONCE_BYTES] = type;
    el_hmac_start(&h, &s->key);
    el_sha256_update(&h, head, sizeof head);
    el_sha256_update(&h, body, n);
    el_hmac_final(&h, &s->key, out);
}

int el_session_verify(el_session_t *s, uint8_t version, uint8_t type, const uint8_t *p, uint32_t n,
                      int ordered, uint32_t *body, uint32_t *counter)
{
    uint8_t mac[EL_SHA256_BYTES];
    uint32_t len, c, i, k;
    const uint8_t *tag;
    if (n < EL_TRAILER_BYTES) return EL_AUTH_NONE;
    if (!s->provisioned) return EL_AUTH_NO_KEY;
    len = n - EL_TRAILER_BYTES;
    c = el_get_u32(p + len);
    tag = p + len + 4;
    if (s->live) {
        mac_of(s, 'Q', s->nonce, c, version, type, p, len, mac);
        if (el_equal_ct(mac, tag, EL_MAC_BYTES)) {
            if (ordered && c <= s->counter) return EL_AUTH_REPLAY;
            if (ordered) s->counter = c;
            *body = len;
            *counter = c;
            return EL_AUTH_OK;
        }
    }
    for (k = 0; k < s->pending; k++) {        /* the newest first */
        const uint8_t *ch = s->challenge[(s->challenges - k) % EL_CHALLENGES];
        mac_of(s, 'Q', ch, c, version, type, p, len, mac);
        if (el_equal_ct(mac, tag, EL_MAC_BYTES)) break;
    }
    if (k == s->pending) return EL_AUTH_BAD_MAC;
    for (i = 0; i < EL_NONCE_BYTES; i++)      /* a new session (a takeover); its challenge is used up */
        s->nonce[i] = s->challenge[(s->challenges - k) % EL_CHALLENGES][i];
    s->live = 1;
    s->pending = 0;
    s->counter = ordered ? c : 0;
    *body = len;
    *counter = c;
    return EL_AUTH_OK;
}

void el_session_sign(const el_session_t *s, uint32_t counter, uint8_t version, uint8_t type, uint8_t *p, uint32_t n)
{
    uint8_t mac[EL_SHA256_BYTES];
    uint32_t i;
    mac_of(s, 'A', s->nonce, counter, version, type, p, n, mac);
    el_put_u32(p + n, counter);
    for (i = 0; i < EL_MAC_BYTES; i++) p[n + 4 + i] = mac[i];
}
