/*
 * keys/claims_int.h — the strict, allocation-free reader of an access token's payload used by
 * the verifier (internal to keys/; the fuzz target and tests call it directly).
 *
 * Why not jansson here: building a jansson tree of the payload was the largest cost of an
 * uncached verification after the signature itself (about 5 µs of 6); this reader walks the
 * JSON text once and keeps only the claims the verifier checks.
 *
 * Grammar: RFC 8259, strictly — one object at the top, whitespace only around tokens,
 * strings with valid UTF-8 and the standard escapes (a \u0000 or a lone surrogate is refused),
 * numbers per §6 (an integer outside int64 is refused), nesting at most KEY_JSON_DEPTH deep.
 * A known claim that appears twice is refused (two parsers could disagree on which one wins).
 */
#ifndef POSTLY_KEYS_CLAIMS_INT_H
#define POSTLY_KEYS_CLAIMS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define KEY_JSON_DEPTH 32

typedef enum key_claim_id {
    KEY_C_ISS = 0,
    KEY_C_SUB,
    KEY_C_AUD,
    KEY_C_CLIENT_ID,
    KEY_C_SCOPE,
    KEY_C_WS,
    KEY_C_GID,
    KEY_C_CLS,
    KEY_C_IAT,
    KEY_C_NBF,
    KEY_C_EXP,
    KEY_C_JTI,
    KEY_C__COUNT
} key_claim_id;

typedef enum key_claim_type {
    KEY_CT_ABSENT = 0,
    KEY_CT_STRING,
    KEY_CT_INT,
    KEY_CT_ARRAY, /* only reported for aud */
    KEY_CT_OTHER, /* a real number, true/false/null, an object, an array (other than aud) */
} key_claim_type;

typedef struct key_claim {
    key_claim_type type;
    const char *s; /* KEY_CT_STRING: decoded text in the scratch buffer, NUL-terminated */
    size_t len;
    int64_t i; /* KEY_CT_INT */
} key_claim;

typedef struct key_payload {
    key_claim c[KEY_C__COUNT];
    int aud_match; /* aud is want_aud, or an array with a string element equal to it */
} key_payload;

/* Reads the len bytes of JSON at json. Decoded strings go to scratch (scratch_sz >= len + 1 is
 * always enough). want_aud (NUL-terminated) is compared with aud while reading.
 *  PL_OK         *out filled (absent claims have type KEY_CT_ABSENT)
 *  PL_ERR_PARSE  not a JSON object per the grammar above, or a known claim twice
 *  PL_ERR_TOO_LARGE  scratch too small */
pl_rc key_payload_parse(const char *json, size_t len, char *scratch, size_t scratch_sz,
                        const char *want_aud, key_payload *out);

#endif
