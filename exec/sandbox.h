/*
 * exec/sandbox.h — the deterministic sandbox connectors, one per platform (ARCHITECTURE.md §9).
 *
 * A sandbox applies the real platform rules (ex_rules_check) and simulates the platform's
 * answers from test values written into the post's text or title, like a payment provider's
 * test mode. docs/connectors.md is the reference; in short:
 *
 *   [sandbox:rate_limit]    RATE_LIMITED, retry_after_ms = 60 s (or the option's value)
 *   [sandbox:transient]     TRANSIENT (a 5xx from the platform)
 *   [sandbox:auth_expired]  AUTH_EXPIRED
 *   [sandbox:reject]        REJECTED (content policy)
 *   [sandbox:duplicate]     DUPLICATE
 *   [sandbox:unknown]       UNKNOWN, but the post did go live (a lookup by key finds it)
 *   [sandbox:unknown_lost]  UNKNOWN, and the post never landed (a lookup finds nothing)
 *   any of them with "*N" (N = 1..99), e.g. [sandbox:transient*2]: that outcome for attempts
 *   1..N, then PUBLISHED. Without "*N" the outcome repeats on every attempt.
 *   no test value            PUBLISHED
 *
 * At most one distinct test value per target; an unknown or malformed one is a validation
 * problem (code "sandbox_test_value"), so typos never pass silently. Remote ids, URLs and
 * metrics are derived from SHA-256 of the inputs: the same target and idempotency key give
 * the same remote id in every run and every process; metrics depend only on the platform,
 * the post or account id and the UTC days of the period.
 *
 * State: a sandbox remembers which idempotency keys landed (how many times) and which remote
 * ids were deleted, in memory and, when options.journal_dir is set, in an append-only journal
 * "<journal_dir>/sandbox-<platform>.journal" that is replayed on creation. The journal is the
 * platform's own view of what was published, so a crash test can count publications across
 * processes (ex_sandbox_landings). Memory is bounded (EX_SANDBOX_KEYS_MAX remembered keys).
 *
 * Threads: any thread; the state is guarded by a mutex inside the connector.
 */
#ifndef POSTLY_EXEC_SANDBOX_H
#define POSTLY_EXEC_SANDBOX_H

#include <stdint.h>

#include "core/err.h"
#include "exec/connector.h"

#define EX_SANDBOX_KEYS_MAX               (1u << 20)
#define EX_SANDBOX_RETRY_AFTER_DEFAULT_MS 60000

typedef struct ex_sandbox_options {
    const char *journal_dir; /* NULL: state in memory only (borrowed during ex_sandbox_new) */
    int64_t retry_after_ms;  /* RATE_LIMITED wait; 0 means the default (60 s) */
} ex_sandbox_options;

/* A new sandbox connector for platform p. opt may be NULL. Free with ex_connector_free().
 * PL_ERR_INVALID for a bad platform, PL_ERR_IO when the journal cannot be opened or read. */
pl_rc ex_sandbox_new(ex_platform p, const ex_sandbox_options *opt, ex_connector **out);

/* How many publish calls put the post with this idempotency key live (PUBLISHED, or UNKNOWN
 * from [sandbox:unknown]), counted in memory and in the journal. More than 1 means the caller
 * published the same target twice. c must be a sandbox. */
pl_rc ex_sandbox_landings(const ex_connector *c, const char *idempotency_key, uint32_t *out);

/* The test value found in a target's text and title, for tools and tests: *kind gets the
 * outcome (EX_OUTCOME_PUBLISHED when none), *repeat the "*N" count (0 = every attempt),
 * *lost 1 for unknown_lost. PL_ERR_INVALID with a problem added when it is malformed,
 * unknown or conflicting (problems may be NULL). */
pl_rc ex_sandbox_test_value(const ex_target *t, ex_outcome_kind *kind, uint32_t *repeat, int *lost,
                            ex_problems *problems);

#endif
