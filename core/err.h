/*
 * core/err.h — the one error enum of the project (STYLE.md §3).
 *
 * Every public function of every folder returns a pl_rc (0 on success) and hands results
 * back through out-parameters. The values are stable: they appear in logs and in the exit
 * codes of nothing (CLIs map them to their own documented codes).
 *
 * This header and err.c have no dependencies, so the pure policy engine can use them too.
 */
#ifndef POSTLY_CORE_ERR_H
#define POSTLY_CORE_ERR_H

typedef enum pl_rc {
    PL_OK = 0,
    PL_ERR_NOMEM,       /* allocation failed */
    PL_ERR_INVALID,     /* malformed or out-of-range input; the caller's fault */
    PL_ERR_TOO_LARGE,   /* input over a documented bound */
    PL_ERR_PARSE,       /* syntax error in a file or message */
    PL_ERR_NOT_FOUND,   /* no such object (also: an object of another workspace) */
    PL_ERR_EXISTS,      /* an object with that identity already exists */
    PL_ERR_CONFLICT,    /* version mismatch, idempotency-key reuse with other arguments */
    PL_ERR_BUSY,        /* retryable: locked, in flight, try again later */
    PL_ERR_DENIED,      /* not permitted */
    PL_ERR_EXPIRED,     /* a token, code or window that has passed */
    PL_ERR_LIMIT,       /* a rate limit or quota is exhausted */
    PL_ERR_STATE,       /* operation not allowed in the object's current state */
    PL_ERR_CRYPTO,      /* signature, key or random-number failure */
    PL_ERR_IO,          /* file system or network failure */
    PL_ERR_STORE,       /* LMDB failure */
    PL_ERR_UNSUPPORTED, /* valid but not supported (algorithm, version, platform) */
    PL_ERR_INTERNAL,    /* a bug: an invariant did not hold */
    PL_ERR__COUNT
} pl_rc;

/* A short, static, lower-case description of rc ("not found"). Never NULL; an out-of-range
 * value gives "unknown error". The string is owned by the library. */
const char *pl_strerror(pl_rc rc);

/* The stable symbolic name of rc ("not_found"), for JSON error bodies and logs. */
const char *pl_errname(pl_rc rc);

#endif
