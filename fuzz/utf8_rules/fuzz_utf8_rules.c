/*
 * fuzz/utf8_rules/fuzz_utf8_rules.c — libFuzzer target for connector validation: the platform
 * rules (ex_rules_check) and the sandbox connectors' validate, with arbitrary text, title,
 * link, board/location ids, settings JSON and media per platform, plus the strict UTF-8
 * counter. Input:
 *   byte 0: platform (mod 7); byte 1: media count (mod 6); then 4 bytes per medium (kind,
 *   size, width/height, duration seeds); then "<text>\0<title>\0<link>\0<board>\0<settings>".
 * Properties: nothing crashes; PL_OK exactly when no problem was reported; every problem has a
 * field, a code and a message; text accepted for a platform is valid UTF-8 within its limit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "exec/connector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const mimes[EX_MEDIA__COUNT] = {"image/jpeg", "image/gif", "video/mp4",
                                                   "application/pdf"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ex_media_ref media[6];
    const char *fields[5] = {"", "", NULL, NULL, NULL};
    char *copy = NULL;
    json_t *settings = NULL;
    static ex_connectors reg; /* the sandbox connectors, made once (freed at exit) */
    static int have_reg = -1;
    if (size < 2)
        return 0;
    ex_platform pf = (ex_platform)(data[0] % EX_PLATFORM__COUNT);
    size_t nmedia = data[1] % 6;
    data += 2;
    size -= 2;
    if (size < nmedia * 4)
        return 0;
    for (size_t i = 0; i < nmedia; i++) {
        const uint8_t *m = data + i * 4;
        media[i].id = "med_fuzz";
        media[i].kind = (ex_media_kind)(m[0] % EX_MEDIA__COUNT);
        media[i].mime_type = mimes[media[i].kind];
        media[i].size_bytes = (uint64_t)m[1] << (m[1] & 31);
        media[i].width = (uint32_t)m[2] * 16;
        media[i].height = (uint32_t)m[2] * 9;
        media[i].duration_ms = (uint32_t)m[3] * 4000;
    }
    data += nmedia * 4;
    size -= nmedia * 4;
    copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    /* text keeps its explicit length (it may contain NUL bytes up to the first separator) */
    size_t text_len = strlen(copy);
    char *p = copy;
    for (int i = 0; i < 5 && p <= copy + size; i++) {
        fields[i] = p;
        p += strlen(p) + 1;
    }
    if (fields[4] && *fields[4]) {
        json_error_t je;
        settings = json_loads(fields[4], JSON_REJECT_DUPLICATES, &je);
    }
    ex_target t;
    memset(&t, 0, sizeof t);
    t.platform = pf;
    t.workspace_id = "wsp_fuzz";
    t.account_id = "acc_fuzz";
    t.text = fields[0];
    t.text_len = text_len;
    t.title = fields[1] && *fields[1] ? fields[1] : NULL;
    t.link = fields[2] && *fields[2] ? fields[2] : NULL;
    t.board_id = fields[3] && *fields[3] ? fields[3] : NULL;
    t.location_id = t.board_id;
    t.media = nmedia ? media : NULL;
    t.media_count = nmedia;
    t.settings = settings;

    ex_problems probs;
    ex_problems_reset(&probs);
    pl_rc rc = ex_rules_check(&t, &probs);
    if ((rc == PL_OK) != (probs.count == 0 && probs.dropped == 0))
        abort();
    for (size_t i = 0; i < probs.count; i++)
        if (!probs.items[i].field[0] || !probs.items[i].code[0] || !probs.items[i].message[0])
            abort();
    size_t cp = 0, bad = 0;
    pl_rc u = ex_utf8_count(t.text, t.text_len, &cp, &bad);
    if (rc == PL_OK && (u != PL_OK || cp > ex_rules_get(pf)->text_max_cp))
        abort(); /* accepted text must be valid UTF-8 within the platform's limit */
    if (u != PL_OK && bad > t.text_len)
        abort();
    if (have_reg < 0)
        have_reg = ex_connectors_init_sandbox(&reg) == PL_OK;
    if (have_reg) {
        const ex_connector *c = ex_connectors_get(&reg, pf);
        ex_problems p2;
        ex_problems_reset(&p2);
        if (c && ex_connector_validate(c, &t, &p2) == PL_OK && rc != PL_OK)
            abort(); /* the sandbox accepted what the rules refuse */
    }
    json_decref(settings);
    free(copy);
    return 0;
}
