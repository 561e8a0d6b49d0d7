#include "directory.h"
#include "record.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct az_directory {
    MDB_env *env;
    MDB_dbi workspaces, members, grant_state;
};

pl_rc az_directory_open(const char *data_dir, az_directory **out)
{
    pl_rc rc = PL_OK;
    az_directory *d = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi meta;
    MDB_val k = {6, "schema"}, v;
    char path[4096];
    struct stat st;

    *out = NULL;
    if (!data_dir || snprintf(path, sizeof path, "%s/authz", data_dir) >= (int)sizeof path)
        return PL_ERR_INVALID;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return PL_ERR_NOT_FOUND;
    d = calloc(1, sizeof *d);
    if (!d)
        return PL_ERR_NOMEM;
    if (mdb_env_create(&d->env) != 0 || mdb_env_set_maxdbs(d->env, 32) != 0) {
        rc = PL_ERR_STORE;
        goto out;
    }
    if (mdb_env_open(d->env, path, MDB_RDONLY | MDB_NOTLS, 0600) != 0) {
        rc = PL_ERR_NOT_FOUND;
        goto out;
    }
    if (mdb_txn_begin(d->env, NULL, MDB_RDONLY, &txn) != 0) {
        rc = PL_ERR_STORE;
        goto out;
    }
    if (mdb_dbi_open(txn, "meta", 0, &meta) != 0 || mdb_get(txn, meta, &k, &v) != 0) {
        rc = PL_ERR_NOT_FOUND;
        goto out;
    }
    /* Schemas 1 and 2 differ only in records the directory does not read (directory.h). */
    if (v.mv_size != 1 || (memcmp(v.mv_data, "1", 1) != 0 && memcmp(v.mv_data, "2", 1) != 0)) {
        rc = PL_ERR_UNSUPPORTED;
        goto out;
    }
    if (mdb_dbi_open(txn, "workspaces", 0, &d->workspaces) != 0 ||
        mdb_dbi_open(txn, "members", 0, &d->members) != 0 ||
        mdb_dbi_open(txn, "grant_state", 0, &d->grant_state) != 0) {
        rc = PL_ERR_STORE;
        goto out;
    }
    /* Committing a read transaction keeps the dbi handles for the environment's life. */
    rc = mdb_txn_commit(txn) == 0 ? PL_OK : PL_ERR_STORE;
    txn = NULL;
    if (rc != PL_OK)
        goto out;
    *out = d;
    d = NULL;
out:
    if (txn)
        mdb_txn_abort(txn);
    az_directory_free(d);
    return rc;
}

void az_directory_free(az_directory *d)
{
    if (!d)
        return;
    if (d->env)
        mdb_env_close(d->env);
    free(d);
}

static pl_rc rtxn(az_directory *d, MDB_txn **txn)
{
    int e = mdb_txn_begin(d->env, NULL, MDB_RDONLY, txn);
    if (e == MDB_MAP_RESIZED) {
        /* The writer grew the map: adopt the new size and retry once. */
        if (mdb_env_set_mapsize(d->env, 0) == 0)
            e = mdb_txn_begin(d->env, NULL, MDB_RDONLY, txn);
    }
    return e == 0 ? PL_OK : PL_ERR_STORE;
}

pl_rc az_directory_workspace_get(az_directory *d, const char *ws_id, az_dir_workspace *out)
{
    MDB_txn *txn = NULL;
    pl_rc rc;
    if (!az_rec_id_valid(ws_id))
        return PL_ERR_NOT_FOUND;
    rc = rtxn(d, &txn);
    if (rc != PL_OK)
        return rc;
    rc = az_rec_workspace_get(txn, d->workspaces, ws_id, out);
    mdb_txn_abort(txn);
    return rc;
}

pl_rc az_directory_user_workspaces(az_directory *d, const char *uid, az_dir_membership *out,
                                   size_t max, size_t *n)
{
    MDB_txn *txn = NULL;
    pl_rc rc;
    *n = 0;
    if (!az_rec_id_valid(uid))
        return PL_OK;
    rc = rtxn(d, &txn);
    if (rc != PL_OK)
        return rc;
    rc = az_rec_user_workspaces(txn, d->members, d->workspaces, uid, out, max, n);
    mdb_txn_abort(txn);
    return rc;
}

pl_rc az_directory_member_role(az_directory *d, const char *uid, const char *ws_id, char role[16])
{
    MDB_txn *txn = NULL;
    pl_rc rc;
    if (!az_rec_id_valid(uid) || !az_rec_id_valid(ws_id))
        return PL_ERR_NOT_FOUND;
    rc = rtxn(d, &txn);
    if (rc != PL_OK)
        return rc;
    rc = az_rec_member_role(txn, d->members, uid, ws_id, role);
    mdb_txn_abort(txn);
    return rc;
}

pl_rc az_directory_grant_check(az_directory *d, const char *gid)
{
    MDB_txn *txn = NULL;
    az_grant_state gs;
    pl_rc rc;
    if (!az_rec_id_valid(gid))
        return PL_ERR_DENIED;
    rc = rtxn(d, &txn);
    if (rc != PL_OK)
        return rc;
    rc = az_rec_grant_state(txn, d->grant_state, gid, &gs);
    mdb_txn_abort(txn);
    if (rc == PL_OK)
        return gs.revoked_ms == 0 ? PL_OK : PL_ERR_DENIED;
    return rc == PL_ERR_NOT_FOUND ? PL_ERR_DENIED : rc; /* unknown = revoked (fail closed) */
}
