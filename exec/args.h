/*
 * exec/args.h — checked access to JSON tool arguments for the services.
 *
 * Every getter names the field in its error ("text: must be a string of at most 65536
 * bytes"), returns PL_OK with *out set when present and valid, PL_ERR_NOT_FOUND (no error
 * written) when absent and optional, and PL_ERR_INVALID/PL_ERR_TOO_LARGE with err filled
 * otherwise. Returned strings and objects are borrowed from args and stay valid while args
 * does. Any thread (jansson objects are not shared between threads by the services).
 */
#ifndef POSTLY_EXEC_ARGS_H
#define POSTLY_EXEC_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "exec/store.h"

#define EX_ARG_REQUIRED 1
#define EX_ARG_OPTIONAL 0

/* Bounds shared by the services (docs/exec.md, "Limits"). */
#define EX_TEXT_MAX_BYTES 262144 /* 63206 code points of up to 4 bytes fit */
#define EX_NAME_MAX       200
#define EX_TITLE_MAX      1024
#define EX_LINK_MAX       2048
#define EX_SETTINGS_MAX   16384 /* serialised bytes of a settings object */
#define EX_TARGETS_MAX    20
#define EX_MEDIA_PER_POST 20
#define EX_IDEM_KEY_MAX   128
#define EX_BATCH_MAX      100

/* A string of 1..maxlen bytes (no NUL inside). */
pl_rc ex_arg_str(const json_t *args, const char *name, int required, size_t maxlen,
                 const char **out, ex_err *err);
/* An integer in [min, max]. */
pl_rc ex_arg_int(const json_t *args, const char *name, int required, int64_t min, int64_t max,
                 int64_t *out, ex_err *err);
/* true/false. */
pl_rc ex_arg_bool(const json_t *args, const char *name, int required, int *out, ex_err *err);
/* An object whose compact serialisation is at most maxbytes. */
pl_rc ex_arg_object(const json_t *args, const char *name, int required, size_t maxbytes,
                    const json_t **out, ex_err *err);
/* An array of at most maxn strings, each a valid id of kind (ex_id_valid); duplicates are
 * refused. */
pl_rc ex_arg_id_array(const json_t *args, const char *name, int required, size_t maxn,
                      const char *kind, const json_t **out, ex_err *err);
/* A string that must be one of the NULL-terminated values. */
pl_rc ex_arg_enum(const json_t *args, const char *name, int required, const char *const *values,
                  const char **out, ex_err *err);
/* Refuses any member of args not in the NULL-terminated allowed list ("colour: unknown
 * argument"), so typos are not silently ignored. Also refuses a non-object args. */
pl_rc ex_args_only(const json_t *args, const char *const *allowed, ex_err *err);

/* SHA-256 of the canonical form (sorted keys, compact) of args without the member named
 * skip (may be NULL): what idempotency compares. */
pl_rc ex_json_hash(const json_t *args, const char *skip, uint8_t out[32]);

/* RFC 3339 UTC text of ms ("2026-11-29T04:53:56.000Z") into buf (>= 32 bytes). */
void ex_time_format(int64_t ms, char *buf, size_t bufsz);

#endif
