/*
 * authz/seen.h — when each grant was last used at the resource server: the "Last MCP call"
 * column of the connected-apps page (docs/authz.md "Last MCP call").
 *
 * The environment <data>/seen is a small LMDB environment of its own, a contract between
 * programs (versioned by meta/"schema", currently "1"):
 *   writer   postly-mcp (az_seen_open; one per process). Several postly-mcp processes on
 *            one data directory are fine: LMDB serialises their write transactions, and a
 *            record only ever moves forward in time.
 *   readers  postly-authz's /apps page and postly-admin (az_seen_read: read-only, one
 *            short read transaction per call, never creates anything).
 *   meta     key "schema" -> "1"
 *   seen     key   = grant id (the access token's `gid`; 1..64 bytes of [A-Za-z0-9_-])
 *            value = int64 milliseconds since the epoch (UTC), 8 bytes, host byte order
 *                    (the environment never leaves the machine): the time of a request
 *                    postly-mcp served with a valid token of that live grant.
 * Why not a field of postly-authz's grants: postly-mcp opens <data>/authz read-only
 * (directory.h), and writing there would put the resource server's every call on the
 * authorization server's write lock and fsync; LMDB also forbids one process opening an
 * environment twice, so this module never opens <data>/authz itself.
 *
 * Recording (postly-mcp's event-loop thread, the "owner" thread):
 *   az_seen_touch()  on every authenticated request: an in-memory hash-table update (no
 *                    lock, no I/O, no allocation) of the grant's last call time.
 *   az_seen_flush()  from a timer (postly-mcp: every second): hands the grants whose time
 *                    changed to the writer thread, each at most once per cfg.interval_ms
 *                    (60 s by default). A grant used for the first time (since start) goes
 *                    out at the next flush.
 *   writer thread    one LMDB write transaction per hand-off, with LMDB's normal durable
 *                    commit (fsync) — on its own thread, so no request ever waits for it.
 * So the stored time may lag the true last call by up to interval + the flush period + the
 * commit time (about 61 s by default), and a crash or power loss loses the changes of at most
 * that long; the environment itself is never left corrupt (durable commits, no MDB_NOSYNC
 * outside tests). At az_seen_free() every pending change is written, whatever the interval.
 *
 * Bounds: the in-memory table holds cfg.slots grants (8192); a grant pushed out of a full
 * probe window loses only its unwritten change (counted in az_seen_stats.evicted_dirty). The
 * environment holds at most cfg.max_records records (262144: measured 35 MiB on disk with
 * postly-authz's 24-byte grant ids, 58 MiB with 64-byte ids, random insertion order; the map
 * is cfg.map_size, 128 MiB): beyond that new grants are not recorded (counted in
 * dropped_full). Records of grants that are no longer alive are purged lazily: every
 * cfg.purge_every_ms the writer checks the next cfg.purge_batch records (in key order,
 * wrapping around) with cfg.alive and deletes those it reports gone (postly-mcp passes the
 * directory's grant check: revoked, disconnected or swept grants), so the environment holds
 * about the live grants. Records with an invalid key or value are deleted by the same pass.
 *
 * Threads: az_seen_open, _touch, _flush, _wait, _get, _stats and _free on the owner thread
 * only; cfg.alive is called on the writer thread (it must be thread-safe: directory.h is).
 * az_seen_read from any thread of a process that does not also hold an az_seen on the same
 * data directory (LMDB's one-open-per-process rule; use az_seen_get there).
 */
#ifndef POSTLY_AUTHZ_SEEN_H
#define POSTLY_AUTHZ_SEEN_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define AZ_SEEN_SCHEMA "1"

/* Whether grant gid is still alive: PL_OK alive (record kept), PL_ERR_DENIED gone (record
 * deleted); anything else (the directory could not be read) keeps the record. */
typedef pl_rc (*az_seen_alive_fn)(void *arg, const char *gid);

typedef struct az_seen_cfg {
    const char *data_dir;   /* required: <data_dir>/seen is created (mode 0700) */
    int64_t interval_ms;    /* 0: 60000. At most one write per grant per interval */
    size_t slots;           /* 0: 8192. Grants tracked in memory (rounded up to 2^k, >= 64) */
    size_t max_records;     /* 0: 262144. Records in the environment */
    size_t map_size;        /* 0: 128 MiB */
    size_t batch_max;       /* 0: 1024. Records per write transaction */
    az_seen_alive_fn alive; /* NULL: no purge */
    void *alive_arg;        /* borrowed; must outlive the az_seen */
    int64_t purge_every_ms; /* 0: 10000 */
    size_t purge_batch;     /* 0: 256. Records checked per purge pass */
    int nosync;             /* tests only: MDB_NOSYNC (az_seen_free still syncs) */
} az_seen_cfg;

typedef struct az_seen_stats {
    uint64_t touches;       /* az_seen_touch calls that were recorded in memory */
    uint64_t invalid;       /* touches refused: not a grant id */
    uint64_t handed;        /* records handed to the writer */
    uint64_t written;       /* records written (a newer stored time is kept, not counted) */
    uint64_t dropped_full;  /* new grants not recorded: max_records reached */
    uint64_t evicted_dirty; /* unwritten changes lost to a full table window */
    uint64_t purged;        /* records deleted by the purge */
    uint64_t batches;       /* write transactions committed */
    uint64_t failed;        /* write transactions that failed (their records are lost) */
} az_seen_stats;

typedef struct az_seen az_seen;

/* Opens (creating) <data_dir>/seen and starts the writer thread. *out owned by the caller
 * (az_seen_free).
 *  PL_ERR_INVALID      cfg or data_dir NULL, path too long, interval < 0
 *  PL_ERR_IO           the directory could not be created
 *  PL_ERR_UNSUPPORTED  the environment has another schema than "1"
 *  PL_ERR_STORE        LMDB refused
 *  PL_ERR_NOMEM, PL_ERR_INTERNAL (thread) */
pl_rc az_seen_open(const az_seen_cfg *cfg, az_seen **out);

/* Writes every pending change (ignoring the interval), stops the writer thread, closes the
 * environment. NULL-safe. */
void az_seen_free(az_seen *s);

/* A request was served at now_ms with a token of live grant gid. Memory only.
 *  PL_OK           recorded (or s is NULL: nothing to do)
 *  PL_ERR_INVALID  gid is not 1..64 bytes of [A-Za-z0-9_-] (nothing recorded) */
pl_rc az_seen_touch(az_seen *s, const char *gid, int64_t now_ms);

/* Hands the changes due at now_ms (and a purge pass when one is due) to the writer thread.
 * Never waits for a write.
 *  PL_OK         handed over, or nothing to do (also s NULL)
 *  PL_ERR_BUSY   the writer is still on the previous hand-off: nothing lost, the changes
 *                stay pending for the next flush
 *  PL_ERR_STORE  a write transaction finished before this call had failed since the last
 *                report (reported once; see az_seen_stats.failed); this flush still handed
 *                its changes over */
pl_rc az_seen_flush(az_seen *s, int64_t now_ms);

/* Waits until the writer has finished what it was handed (tests; az_seen_free). */
void az_seen_wait(az_seen *s);

/* The stored time of gid through this writer's own environment (what the readers see).
 * PL_OK (*ms set), PL_ERR_NOT_FOUND (never recorded), PL_ERR_INVALID, PL_ERR_STORE. */
pl_rc az_seen_get(az_seen *s, const char *gid, int64_t *ms);

void az_seen_stats_get(const az_seen *s, az_seen_stats *out);

/* Reads the stored times of n grants from <data_dir>/seen in one read-only transaction:
 * out_ms[i] = the time, or 0 when gids[i] has no record ("never"; also for an invalid id).
 * An absent environment (postly-mcp never ran on this data directory) is not an error:
 * PL_OK with every out_ms[i] = 0.
 *  PL_ERR_INVALID      data_dir NULL or too long, gids/out_ms NULL with n > 0
 *  PL_ERR_UNSUPPORTED  another schema than "1"
 *  PL_ERR_STORE        the environment exists but could not be read */
pl_rc az_seen_read(const char *data_dir, const char *const *gids, size_t n, int64_t *out_ms);

#endif
