/*
 * authz/record.h — what authz/store.c (the writer) and authz/directory.c (the read-only view)
 * share about the directory's records (not a public header; the layout is described in
 * directory.h): id syntax, LMDB result codes, and reading workspaces, memberships and grant
 * states inside a transaction the caller owns.
 *
 * Every function here takes an open transaction (read or write) and the named database
 * handles; nothing begins, commits or aborts a transaction. Results are copied into
 * caller-owned structs. Threads: as the transaction's owner.
 */
#ifndef POSTLY_AUTHZ_RECORD_H
#define POSTLY_AUTHZ_RECORD_H

#include <lmdb.h>
#include <stddef.h>

#include "authz/directory.h"
#include "core/err.h"

/* 1 when s is 1..AZ_ID_MAX bytes of [A-Za-z0-9_-]. */
int az_rec_id_valid(const char *s);

/* An LMDB result as a pl_rc: 0 → PL_OK, MDB_NOTFOUND → PL_ERR_NOT_FOUND, MDB_KEYEXIST →
 * PL_ERR_EXISTS, MDB_MAP_FULL → PL_ERR_LIMIT, anything else PL_ERR_STORE. */
pl_rc az_rec_mdb(int e);

/* Writes a "|" b (NUL-terminated) into out and returns its length (keys of members and
 * user_grants). Two valid ids fit 2 * AZ_ID_MAX + 2 bytes; when they do not fit, out is ""
 * and 0 is returned (a key that finds nothing). */
size_t az_rec_join(char *out, size_t outsz, const char *a, const char *b);

/* Calls fn(arg, key, value) for every row of db whose key starts with `uid` "|", in key order,
 * until fn returns 0. PL_OK, or PL_ERR_STORE when the cursor failed. uid must be valid. */
typedef int (*az_rec_scan_fn)(void *arg, const MDB_val *k, const MDB_val *v);
pl_rc az_rec_scan_user(MDB_txn *t, MDB_dbi db, const char *uid, az_rec_scan_fn fn, void *arg);

/* Workspace ws_id from the workspaces database into out (may be NULL: existence check).
 * PL_ERR_NOT_FOUND, PL_ERR_STORE (unreadable record). */
pl_rc az_rec_workspace_get(MDB_txn *t, MDB_dbi workspaces, const char *ws_id,
                           az_dir_workspace *out);

/* The role of uid in ws_id (members database) into role. PL_ERR_NOT_FOUND when not a member. */
pl_rc az_rec_member_role(MDB_txn *t, MDB_dbi members, const char *uid, const char *ws_id,
                         char role[16]);

/* The workspaces uid is a member of, in id order (memberships of a deleted workspace are
 * skipped), up to max into out; *n how many. PL_ERR_TOO_LARGE when there were more. */
pl_rc az_rec_user_workspaces(MDB_txn *t, MDB_dbi members, MDB_dbi workspaces, const char *uid,
                             az_dir_membership *out, size_t max, size_t *n);

/* The grant_state row of gid. PL_ERR_NOT_FOUND, PL_ERR_STORE (wrong size). */
pl_rc az_rec_grant_state(MDB_txn *t, MDB_dbi grant_state, const char *gid, az_grant_state *out);

#endif
