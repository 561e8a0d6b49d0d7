/*
 * authz/store.h — the authorization server's LMDB store (<data>/authz): users, workspaces,
 * memberships, clients, pending authorization requests, browser sessions, authorization
 * codes, grants with their refresh-token families, consents, login throttling, DCR limits.
 *
 * Every state change is one write transaction (durable unless cfg.nosync, a test option).
 * Secrets (refresh tokens, codes, session ids, client secrets) are stored only as SHA-256
 * hashes and compared in constant time; passwords as scrypt hashes. Nothing here logs.
 * The read-only view for the resource server is authz/directory.h (same layout).
 *
 * Threads: one az_store belongs to one thread (the server's event loop, or the admin CLI).
 * Several processes may open the environment (LMDB serializes writers), except that one
 * process must not open it twice (LMDB rule; see directory.h).
 *
 * Results come back in caller-owned structs; no returned pointer borrows from the store.
 */
#ifndef POSTLY_AUTHZ_STORE_H
#define POSTLY_AUTHZ_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "authz/directory.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/err.h"

#define AZ_CLIENT_ID_MAX 512 /* pre-registered / DCR ids are short; CIMD ids are https URLs */
#define AZ_URI_MAX       512
#define AZ_MAX_REDIRECTS 8
#define AZ_STATE_MAX     512 /* the client's `state`, echoed back */
#define AZ_USERNAME_MAX  64
#define AZ_PASSWORD_MAX  256
#define AZ_SECRET_SIZE   CORE_B64URL_SIZE(32) /* codes, refresh tokens, session ids, secrets */
#define AZ_SECRET_LEN    43                   /* their text length: 32 bytes in base64url */
#define AZ_CODE_TTL_MS   ((int64_t)60000)     /* RFC 9700 §4.5: short-lived, here <= 60 s */

typedef enum az_client_kind { AZ_CLIENT_PRE = 0, AZ_CLIENT_DCR, AZ_CLIENT_CIMD } az_client_kind;
typedef enum az_auth_method { AZ_AUTH_NONE = 0, AZ_AUTH_BASIC, AZ_AUTH_POST } az_auth_method;

typedef struct az_client {
    char id[AZ_CLIENT_ID_MAX + 1];
    char name[AZ_NAME_MAX + 1];
    char redirect_uris[AZ_MAX_REDIRECTS][AZ_URI_MAX + 1];
    size_t nredirect;
    az_client_kind kind;
    az_auth_method auth;
    uint8_t secret_hash[CORE_SHA256_LEN]; /* SHA-256 of the secret when auth != NONE */
    char cls[32];                         /* client class for the policy engine and `cls` */
    char scope_hint[256];                 /* registered `scope`: a hint only */
    char etag[128];                       /* CIMD: the document's ETag, for revalidation */
    char source[64];                      /* registering address (DCR) */
    int introspect;                       /* 1: a resource server allowed to call /introspect */
    int64_t created_ms;
    int64_t expires_ms; /* CIMD cache expiry; 0 = never */
} az_client;

typedef struct az_user {
    char id[AZ_ID_MAX + 1];
    char username[AZ_USERNAME_MAX + 1];
    int disabled;
    int64_t created_ms;
} az_user;

/* A validated /authorize request waiting for login and consent. */
typedef struct az_pending {
    char rid[AZ_SECRET_SIZE]; /* request id (random; in the login/consent URLs and forms) */
    char client_id[AZ_CLIENT_ID_MAX + 1];
    char redirect_uri[AZ_URI_MAX + 1];
    char state[AZ_STATE_MAX + 1];
    char challenge[64];
    char resource[AZ_URI_MAX + 1];
    uint64_t scope; /* requested mask */
    int same_site;  /* the /authorize navigation was same-site (Sec-Fetch-Site) */
    int64_t created_ms;
} az_pending;

typedef struct az_session {
    char uid[AZ_ID_MAX + 1]; /* "" before login */
    uint8_t csrf_key[32];    /* HMAC key for CSRF tokens bound to this session */
    int64_t created_ms;
    int64_t expires_ms;
} az_session;

typedef struct az_grant {
    char gid[AZ_ID_MAX + 1];
    char uid[AZ_ID_MAX + 1];
    char client_id[AZ_CLIENT_ID_MAX + 1];
    char ws[AZ_ID_MAX + 1];
    char resource[AZ_URI_MAX + 1];
    char cls[32];
    uint64_t scope;
    int64_t created_ms;
    int64_t last_used_ms;
    int64_t revoked_ms;
    int64_t rgen;    /* generation of the current refresh token */
    int64_t rot_gen; /* the generation presented last (0: none yet; -1: unknown, a record
                        written by the first layout) */
} az_grant;

typedef struct az_code {
    char client_id[AZ_CLIENT_ID_MAX + 1];
    char redirect_uri[AZ_URI_MAX + 1];
    char challenge[64];
    char resource[AZ_URI_MAX + 1];
    char ws[AZ_ID_MAX + 1];
    char uid[AZ_ID_MAX + 1];
    char cls[32];
    uint64_t scope;
} az_code;

/* What the token endpoint presents with a code. */
typedef struct az_redeem {
    const char *client_id;
    const char *redirect_uri; /* NULL when absent */
    const char *verifier;     /* NULL when absent */
    const char *resource;     /* NULL when absent */
} az_redeem;

typedef struct az_store_cfg {
    const char *data_dir;
    const core_clock *clock;  /* NULL: real clock */
    int nosync;               /* tests only: MDB_NOSYNC */
    int nometasync;           /* MDB_NOMETASYNC: a commit syncs the data but not the meta
                                 page; the caller makes it durable with az_store_sync() before
                                 acknowledging (the server does it on a second thread) */
    uint64_t scrypt_n;        /* 0: 32768; tests use a small power of two */
    size_t map_size;          /* 0: 1 GiB */
    int64_t session_ttl_ms;   /* 0: 12 h */
    int64_t refresh_grace_ms; /* one retry of the just-rotated refresh token within this; 0: 10 s */
    int64_t refresh_ttl_ms;   /* a refresh token's life; a grant unused this long ends; 0: 30 d */
} az_store_cfg;

typedef struct az_store az_store;

/* Opens (creating) <data_dir>/authz (mode 0700). PL_ERR_IO, PL_ERR_STORE. */
pl_rc az_store_open(const az_store_cfg *cfg, az_store **out);
void az_store_free(az_store *st);

/* ---- users --------------------------------------------------------------------------- */
/* Adds a user; *uid_out (may be NULL) gets the new id. PL_ERR_EXISTS, PL_ERR_INVALID (name
 * not 1..64 of [A-Za-z0-9._@-], password not 8..256 bytes). */
pl_rc az_user_add(az_store *st, const char *username, const char *password,
                  char uid_out[AZ_ID_MAX + 1]);
pl_rc az_user_passwd(az_store *st, const char *username, const char *password);
/* Disabling also revokes every grant of the user. */
pl_rc az_user_disable(az_store *st, const char *username, int disabled);
pl_rc az_user_get(az_store *st, const char *uid, az_user *out);
pl_rc az_user_find(az_store *st, const char *username, az_user *out);

/* A login in three steps, so the scrypt check can run off the event loop:
 * az_user_login_begin (store thread): throttling, and the hash to check (a dummy one with the
 * same cost for an unknown user); az_password_check (any thread, pure, ~scrypt time);
 * az_user_login_finish (store thread): records the outcome for throttling. */
typedef struct az_login {
    char uid[AZ_ID_MAX + 1];
    char enc[256]; /* the encoded scrypt hash to check */
    char ukey[AZ_USERNAME_MAX + 3], akey[80];
    int disabled, unknown;
} az_login;
/* PL_OK (*l filled), PL_ERR_LIMIT (throttled: too many failures for this account or
 * address), PL_ERR_STORE / PL_ERR_CRYPTO. */
pl_rc az_user_login_begin(az_store *st, const char *username, const char *addr, az_login *l);
/* 1 when password matches enc. Thread-safe, no store access. */
int az_password_check(const char *enc, const char *password);
/* PL_OK (*uid_out set) when the password was right and the account is enabled; else
 * PL_ERR_DENIED (one answer for all failures). */
pl_rc az_user_login_finish(az_store *st, const az_login *l, int password_ok,
                           char uid_out[AZ_ID_MAX + 1]);

/* Checks a password with throttling per account and per address (addr), all three steps on
 * the calling thread:
 *  PL_OK          *uid_out set
 *  PL_ERR_DENIED  unknown user, wrong password or disabled account (one answer for all)
 *  PL_ERR_LIMIT   too many failures recently for this account or address */
pl_rc az_user_login(az_store *st, const char *username, const char *password, const char *addr,
                    char uid_out[AZ_ID_MAX + 1]);

/* ---- workspaces and memberships ---------------------------------------------------- */
pl_rc az_ws_add(az_store *st, const char *id, const char *name, const char *plan);
pl_rc az_ws_set_plan(az_store *st, const char *id, const char *plan);
pl_rc az_ws_get(az_store *st, const char *id, az_dir_workspace *out);
/* role: owner, admin, editor, viewer (PL_ERR_INVALID otherwise). */
pl_rc az_member_set(az_store *st, const char *uid, const char *ws, const char *role);
pl_rc az_member_role(az_store *st, const char *uid, const char *ws, char role[16]);
pl_rc az_user_workspaces(az_store *st, const char *uid, az_dir_membership *out, size_t max,
                         size_t *n);

/* ---- clients ------------------------------------------------------------------------- */
/* Inserts or replaces c (keyed by c->id). */
pl_rc az_client_put(az_store *st, const az_client *c);
pl_rc az_client_get(az_store *st, const char *id, az_client *out);

typedef struct az_dcr_limits {
    unsigned per_source; /* registrations per source address per window */
    unsigned total;      /* registrations per window, all sources */
    int64_t window_ms;
    unsigned max_clients; /* DCR clients in the store */
} az_dcr_limits;

/* Dynamic registration of c. c->id is assigned here, except that an identical registration
 * of a *public* client from the same source reuses that client (*reused = 1): it has no
 * secret, so there is nothing to take over. A confidential client always gets a new id, so
 * nobody behind the same address can obtain a working secret for another's client_id. fp
 * identifies the registration (source + canonical metadata). PL_ERR_LIMIT over a limit. */
pl_rc az_client_register(az_store *st, az_client *c, const uint8_t fp[CORE_SHA256_LEN],
                         const az_dcr_limits *lim, int *reused);

/* ---- pending requests and sessions ------------------------------------------------- */
/* Stores p under a new random p->rid. */
pl_rc az_pending_put(az_store *st, az_pending *p);
/* PL_ERR_NOT_FOUND, PL_ERR_EXPIRED (older than 15 min). */
pl_rc az_pending_get(az_store *st, const char *rid, az_pending *out);
pl_rc az_pending_del(az_store *st, const char *rid);

/* A new session (uid may be "" for a pre-login session); sid_out gets the cookie value. */
pl_rc az_session_new(az_store *st, const char *uid, char sid_out[AZ_SECRET_SIZE], az_session *out);
/* PL_ERR_NOT_FOUND (unknown or expired). */
pl_rc az_session_get(az_store *st, const char *sid, az_session *out);
pl_rc az_session_del(az_store *st, const char *sid);

/* ---- codes, grants, refresh tokens -------------------------------------------------- */
/* Issues a code for c; code_out gets it (shown once). */
pl_rc az_code_issue(az_store *st, const az_code *c, char code_out[AZ_SECRET_SIZE]);

/* Redeems a code (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 8707): single use, <= 60 s, bound to
 * client, redirect URI, PKCE verifier and resource. On success a grant and its first refresh
 * token are created in the same transaction: *g filled, refresh_out set.
 *  PL_ERR_NOT_FOUND   unknown code
 *  PL_ERR_CONFLICT    code already used: the grant issued from it is revoked now
 *  PL_ERR_EXPIRED     older than 60 s
 *  PL_ERR_DENIED      issued to another client, redirect URI or resource differs, PKCE fails
 * *why (may be NULL) gets a static text for error_description. */
pl_rc az_code_redeem(az_store *st, const char *code, const az_redeem *in, az_grant *g,
                     char refresh_out[AZ_SECRET_SIZE], const char **why);

/* Rotates a refresh token (RFC 9700 §4.14.2): the current one gives a new one; the one just
 * rotated may be retried once within the grace period; any other reuse revokes the grant.
 * client_id must be the grant's client; resource (NULL = absent) must equal its resource.
 *  PL_ERR_NOT_FOUND  unknown token
 *  PL_ERR_EXPIRED    older than cfg.refresh_ttl_ms
 *  PL_ERR_CONFLICT   reuse: the whole family is revoked now
 *  PL_ERR_DENIED     another client, other resource, revoked grant */
pl_rc az_refresh_rotate(az_store *st, const char *rt, const char *client_id, const char *resource,
                        az_grant *g, char refresh_out[AZ_SECRET_SIZE], const char **why);

/* az_refresh_rotate for a request that names a scope: want (a non-empty mask; 0 = the grant's
 * scope) must not exceed the grant's scope, checked before anything else once the token is
 * found, so a refused widening rotates and revokes nothing: PL_ERR_INVALID (*why says so).
 * Saves the token endpoint a separate az_refresh_grant() look-up. */
pl_rc az_refresh_rotate_scope(az_store *st, const char *rt, const char *client_id,
                              const char *resource, uint64_t want, az_grant *g,
                              char refresh_out[AZ_SECRET_SIZE], const char **why);

/* Finds the grant of a refresh token (current or not). PL_ERR_NOT_FOUND. */
pl_rc az_refresh_grant(az_store *st, const char *rt, az_grant *g, int *current);

pl_rc az_grant_get(az_store *st, const char *gid, az_grant *g);
/* Revokes a grant (idempotent): refresh family dead, grant_state revoked. */
pl_rc az_grant_revoke(az_store *st, const char *gid);
/* A user's grants, newest first, revoked ones excluded. */
pl_rc az_grant_list(az_store *st, const char *uid, az_grant *out, size_t max, size_t *n);

/* ---- consents ------------------------------------------------------------------------- */
pl_rc az_consent_put(az_store *st, const char *uid, const char *client_id, const char *ws,
                     uint64_t scope);
/* The remembered consent for uid+client_id (most recent): ws and scope. PL_ERR_NOT_FOUND. */
pl_rc az_consent_get(az_store *st, const char *uid, const char *client_id, char ws[AZ_ID_MAX + 1],
                     uint64_t *scope);

/* ---- group commit ------------------------------------------------------------------------
 * A durable LMDB commit costs one or two fsyncs (ARCHITECTURE.md §2: ~0.4 ms, several ms on a
 * busy disk). The token endpoint therefore runs its store calls between
 * az_store_batch_enter() and az_store_batch_leave(): they join one open write transaction
 * (each call in its own child transaction, so it stays atomic), and the server commits the
 * batch once per event-loop iteration with az_store_batch_commit() and only then sends the
 * replies of the requests in it — nothing is acknowledged before it is durable.
 * Calls made outside enter/leave first commit a batch left open. */
void az_store_batch_enter(az_store *st);
void az_store_batch_leave(az_store *st);
/* 1 when a batch is open (or an early commit of one failed and must be reported). */
int az_store_batch_pending(const az_store *st);
/* Commits the open batch. PL_ERR_STORE when it (or an earlier flush of it) failed: every
 * reply waiting for it must then be an error. PL_OK when there was nothing to commit.
 * *needs_sync (may be NULL) = 1 when the store runs with cfg.nometasync and this commit
 * still needs az_store_sync() before its replies may go out. */
pl_rc az_store_batch_commit(az_store *st, int *needs_sync);

/* Makes every committed transaction durable (mdb_env_sync, force). The ONE function of this
 * module that may be called from another thread, concurrently with the owner's calls: it only
 * fdatasyncs the data file. With cfg.nometasync this completes the durability of the commits
 * made before the call started. */
pl_rc az_store_sync(az_store *st);

/* ---- maintenance ------------------------------------------------------------------------ */
/* Deletes expired pending requests, sessions, used or expired codes, stale throttle rows,
 * refresh records past their life, and grants revoked more than a day ago or unused for
 * cfg.refresh_ttl_ms (the directory then reports them revoked: unknown = revoked). Bounded
 * work per call (it runs every minute). */
pl_rc az_store_sweep(az_store *st);

/* ---- helpers shared by the endpoints --------------------------------------------------- */
/* 1 when s is 1..AZ_ID_MAX bytes of [A-Za-z0-9_-]. */
int az_id_valid(const char *s);

#endif
