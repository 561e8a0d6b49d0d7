/*
 * core/buf.h — a growable byte buffer with a hard cap on growth (after curl's dynbuf), and
 * the HTML escaping that every page renderer uses.
 *
 * A core_buf is caller-owned (usually on the stack): core_buf_init() sets the cap, the add
 * functions grow it, core_buf_free() releases the memory (safe on a zeroed or freed buffer).
 * The content is always NUL-terminated after a successful add (b->p may be NULL while empty).
 * Growth beyond `max` bytes fails with PL_ERR_TOO_LARGE and leaves the content unchanged.
 * Not synchronised: one thread at a time.
 */
#ifndef POSTLY_CORE_BUF_H
#define POSTLY_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct core_buf {
    char *p;    /* content, NUL-terminated; NULL until the first add */
    size_t len; /* bytes used, NUL excluded */
    size_t cap; /* bytes allocated */
    size_t max; /* hard cap on len */
} core_buf;

/* Empties b and sets its cap (max content bytes). Does not allocate. */
void core_buf_init(core_buf *b, size_t max);

/* Appends len bytes. PL_ERR_TOO_LARGE over the cap, PL_ERR_NOMEM on allocation failure. */
pl_rc core_buf_add(core_buf *b, const void *data, size_t len);

/* Appends a NUL-terminated string. */
pl_rc core_buf_adds(core_buf *b, const char *s);

/* v in decimal (printf's "%lld": '-' first when negative) at the start of out, not
 * NUL-terminated; returns the length (1..20). For hot paths that avoid printf. */
#define CORE_DEC_I64_MAX 20
size_t core_dec_i64(int64_t v, char out[CORE_DEC_I64_MAX]);

/* Appends printf-formatted text. */
pl_rc core_buf_addf(core_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends s (len bytes) escaped for HTML text and double- or single-quoted attribute values:
 * & < > " ' become entities; NUL bytes are dropped. */
pl_rc core_buf_add_html(core_buf *b, const char *s, size_t len);

/* Appends s percent-encoded for a URL query component (RFC 3986 unreserved kept as is). */
pl_rc core_buf_add_urlenc(core_buf *b, const char *s, size_t len);

/* Empties b without freeing (keeps the cap). */
void core_buf_reset(core_buf *b);

/* Hands the content to the caller (free() it) and empties b. *out is "" (allocated) when
 * b was empty. PL_ERR_NOMEM when that allocation fails. */
pl_rc core_buf_take(core_buf *b, char **out, size_t *len);

/* Frees the content. b may be NULL. */
void core_buf_free(core_buf *b);

#endif
