/*
 * core/json_text.h — compact JSON text of a jansson value, byte for byte what
 * json_dumps(v, JSON_COMPACT) writes, in a fraction of the instructions (jansson's dumper
 * goes through a callback, a string buffer and a UTF-8 decoder per character: ≈ 100
 * instructions a byte; this writes runs of plain bytes with memcpy).
 *
 * Same output: objects in insertion order ({"a":1,"b":[]}), "," and ":" without spaces,
 * strings with '"' '\\' escaped, \b \f \n \r \t, other control characters as \u00XX (upper-case
 * hex), '/' and non-ASCII UTF-8 as they are; integers as %lld; reals, and anything unusual
 * (nesting deeper than 64, a string jansson would refuse), by jansson itself. Used where a
 * value is serialised on every request: the execution layer's stored records
 * (ex_txn_put_json) and postly-mcp's tool results.
 *
 * Thread: any; no state.
 */
#ifndef POSTLY_CORE_JSON_TEXT_H
#define POSTLY_CORE_JSON_TEXT_H

#include <stddef.h>

#include <jansson.h>

/* The compact text of v (any JSON value, not only objects and arrays) as a malloc'd,
 * NUL-terminated string (free()), its length in *len (may be NULL). NULL when out of memory
 * or when jansson itself cannot encode v (a NaN, invalid UTF-8). */
char *core_json_compact(const json_t *v, size_t *len);

/* json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)'s bytes (members of every
 * object sorted as jansson sorts them: bytewise, a prefix first), with the top-level member
 * named skip (may be NULL) left out as if deleted from a copy first — the canonical text that
 * argument hashes are taken of (ex_json_hash, the audit line's args_sha256). Same contract
 * as core_json_compact. */
char *core_json_compact_sorted(const json_t *v, const char *skip, size_t *len);

/* src (n bytes) as the inside of a JSON string, as json_dumps writes it when src holds no
 * control character: '"' and '\\' preceded by a backslash, every other byte as it is. Writes
 * at most 2n bytes to dst and returns how many, or SIZE_MAX when src has a control character
 * (bytes below 0x20: jansson writes those as escapes this does not make). */
size_t core_json_escape_quotes(char *dst, const char *src, size_t n);

/* json_loadb(buf, len, flags, error), the same tree (values, key order) for the same input,
 * built without jansson's per-character lexer (≈ 200 instructions a byte): objects, arrays,
 * strings (the escapes \" \\ \/ \b \f \n \r \t; valid UTF-8), integers of up to 18 digits,
 * true, false, null, nesting up to 64. Everything else — reals, \u escapes, a duplicate key, deeper
 * nesting, flags other than JSON_REJECT_DUPLICATES and JSON_DECODE_ANY, and every error — is handed
 * to json_loadb itself, so errors (text, line, column, position) are exactly jansson's. A duplicate
 * key is always handed over: with JSON_REJECT_DUPLICATES jansson refuses it, without it jansson
 * keeps the last value. On success *error (may be NULL) is reset as jansson resets it. New
 * reference or NULL. */
json_t *core_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *error);

#endif
