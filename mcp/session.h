/*
 * mcp/session.h — MCP sessions (MCP 2025-11-25 basic/transports §"Session Management").
 *
 * A session is created by a successful `initialize` and named by MCP-Session-Id: 32 random
 * bytes from the CSPRNG as base64url, 43 visible ASCII characters (0x21–0x7E, as the spec
 * requires). A session is bound to the principal that created it (a hash of subject, client
 * and workspace), so a stolen session id is useless with another token. Sessions expire after
 * an idle period measured on the injected clock; the table is bounded (PL_ERR_LIMIT when full
 * after evicting expired entries).
 *
 * Thread: the table is not synchronised; only the server's event-loop thread uses it.
 */
#ifndef POSTLY_MCP_SESSION_H
#define POSTLY_MCP_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/err.h"

#define MCP_SESSION_ID_LEN 43 /* base64url of 32 bytes */

typedef struct mcp_session {
    char id[MCP_SESSION_ID_LEN + 1];
    char protocol_version[16]; /* negotiated at initialize */
    uint8_t owner[32];         /* SHA-256 of the creating principal */
    int64_t created_ms;
    int64_t last_ms;
    int initialized; /* notifications/initialized received */
    int log_level;   /* set by logging/setLevel (mcp_log_level index) */
    /* The server's per-session state (open GET stream, resource subscriptions; mcp/stream.c),
     * owned by the end hook's owner: NULL until used. */
    void *ext;
} mcp_session;

typedef struct mcp_session_table mcp_session_table;

/* A table of at most max sessions that expire idle_ms after last use, and at most per_owner
 * sessions of one principal (a new one then replaces that principal's least recently used
 * session, so one client cannot fill the table; 0 = no per-principal bound). The clock is
 * borrowed and must outlive the table. */
pl_rc mcp_session_table_new(const core_clock *clock, size_t max, size_t per_owner, int64_t idle_ms,
                            mcp_session_table **out);
void mcp_session_table_free(mcp_session_table *t);

/* Called for every session that leaves the table (mcp_session_end, idle expiry found by find or
 * sweep, replacement by the per-principal bound, mcp_session_table_free), just before it is
 * freed: the place to release s->ext. Must not call back into the table. */
typedef void (*mcp_session_end_fn)(void *arg, mcp_session *s);
void mcp_session_table_on_end(mcp_session_table *t, mcp_session_end_fn fn, void *arg);

/* Marks a live session as used now (an open listening stream keeps its session alive). */
void mcp_session_touch(mcp_session_table *t, mcp_session *s);

/* Creates a session for owner with the negotiated version. *out is borrowed: valid until the
 * session ends or expires (any later call on the table may expire it). PL_ERR_LIMIT when the
 * table is full, PL_ERR_CRYPTO when the random generator fails. */
pl_rc mcp_session_create(mcp_session_table *t, const uint8_t owner[32], const char *version,
                         mcp_session **out);

/* Finds a live session by id and refreshes its idle timer. PL_ERR_NOT_FOUND when the id is
 * unknown, ended or expired; PL_ERR_DENIED when it belongs to another principal. */
pl_rc mcp_session_find(mcp_session_table *t, const char *id, const uint8_t owner[32],
                       mcp_session **out);

/* Ends a session (HTTP DELETE). Same errors as mcp_session_find. */
pl_rc mcp_session_end(mcp_session_table *t, const char *id, const uint8_t owner[32]);

/* Removes every expired session; returns how many through *removed (may be NULL). */
void mcp_session_sweep(mcp_session_table *t, size_t *removed);

/* Number of live (not yet swept) sessions. */
size_t mcp_session_count(const mcp_session_table *t);

#endif
