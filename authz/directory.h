/*
 * authz/directory.h — the read-only view of the authorization server's directory that a
 * resource server (postly-mcp) links: which workspaces exist, who may access which, and
 * whether a grant (the `gid` claim of an access token) is still alive.
 *
 * Mechanism (ARCHITECTURE.md §7, docs/authz.md "Revocation"): postly-authz owns one LMDB
 * environment in <data>/authz. This module opens the same environment read-only
 * (MDB_RDONLY | MDB_NOTLS; LMDB serves several processes on one machine) and every call
 * runs in its own short read transaction, so it always sees the last committed state:
 * a disconnect, a revocation, a refresh-token reuse, a code replay or a disabled user is
 * visible to the next call after postly-authz commits it (well inside the 30 s the product
 * requires, with no polling or cache to age). A resource server that wants to cache an
 * answer must not cache "active" for more than 20 s. A networked directory can replace this
 * module behind the same functions later.
 *
 * Fail closed: a grant id the store does not know is reported as revoked (PL_ERR_DENIED),
 * so a token minted by another issuer, or whose grant was purged, is refused.
 *
 * Layout it reads (written by authz/store.c; the named databases are part of this
 * contract and are versioned by the "meta" database's "schema" key, currently "2"; schema 2
 * changed only the users and clients records, which the directory does not read, so it reads
 * stores of schema "1" and "2" alike):
 *   workspaces   key = workspace id          value = JSON {"id","name","plan","created_ms"}
 *   members      key = user id "|" ws id     value = role name ("owner","admin","editor","viewer")
 *   grant_state  key = grant id              value = az_grant_state (host byte order)
 * Ids are 1..64 bytes of [A-Za-z0-9_-].
 *
 * Threads: every function may be called from any thread, concurrently (MDB_NOTLS, one
 * read transaction per call). Results are copied into caller-owned structs.
 *
 * Processes: LMDB forbids opening one environment twice in the same process. Open the
 * directory in a process that does not also open the authorization server's store (tests
 * that need both fork, see tests/authz/test_directory.c).
 */
#ifndef POSTLY_AUTHZ_DIRECTORY_H
#define POSTLY_AUTHZ_DIRECTORY_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define AZ_ID_MAX   64  /* bytes of an id, without NUL */
#define AZ_NAME_MAX 128 /* bytes of a display name, without NUL */

/* The value stored in grant_state. */
typedef struct az_grant_state {
    int64_t created_ms;
    int64_t revoked_ms; /* 0 while the grant is alive */
} az_grant_state;

typedef struct az_dir_workspace {
    char id[AZ_ID_MAX + 1];
    char name[AZ_NAME_MAX + 1];
    char plan[32];
} az_dir_workspace;

typedef struct az_dir_membership {
    az_dir_workspace ws;
    char role[16]; /* "owner", "admin", "editor", "viewer" */
} az_dir_membership;

typedef struct az_directory az_directory;

/* Opens <data_dir>/authz read-only. *out owned by the caller (az_directory_free).
 *  PL_ERR_NOT_FOUND  no authorization-server store there yet (start postly-authz once)
 *  PL_ERR_UNSUPPORTED the store's schema version is not one this build reads ("1", "2")
 *  PL_ERR_STORE      LMDB refused (the log-free message is in pl_strerror)
 *  PL_ERR_INVALID    data_dir NULL or too long */
pl_rc az_directory_open(const char *data_dir, az_directory **out);

/* NULL-safe. */
void az_directory_free(az_directory *d);

/* PL_OK and *out filled when workspace ws_id exists; PL_ERR_NOT_FOUND otherwise.
 * out may be NULL (existence check only). */
pl_rc az_directory_workspace_get(az_directory *d, const char *ws_id, az_dir_workspace *out);

/* The workspaces user uid is a member of, in id order, up to max entries into out;
 * *n gets how many were written. PL_ERR_TOO_LARGE when there were more than max (the
 * first max are written). A user with no membership gives PL_OK and *n = 0. */
pl_rc az_directory_user_workspaces(az_directory *d, const char *uid, az_dir_membership *out,
                                   size_t max, size_t *n);

/* The role of uid in ws_id (copied into role, size >= 16). PL_ERR_NOT_FOUND when uid is
 * not a member (any more). */
pl_rc az_directory_member_role(az_directory *d, const char *uid, const char *ws_id, char role[16]);

/* Whether grant gid may still be used:
 *  PL_OK          alive
 *  PL_ERR_DENIED  revoked (disconnected, replayed, family revoked, user disabled) or unknown
 *  PL_ERR_STORE   the store could not be read (callers fail closed) */
pl_rc az_directory_grant_check(az_directory *d, const char *gid);

#endif
