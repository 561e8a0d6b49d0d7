/*
 * exec/store.h — the LMDB environment of the execution layer, its named databases, key
 * layout, ids, JSON values, transactions, and the context (ex_ctx) every service receives.
 *
 * OWNERSHIP OF THE NAMED DATABASES
 *   store, workspace, account, draft, post, schedule, scheduler, media, campaign, analytics,
 *   idempotency, cursor  -> this layer's services (every exec/ file except below)
 *   EX_DB_WEBHOOKS, EX_DB_DELIVERIES, EX_DB_OUTBOX -> exec/webhook.c (webhook subscriptions,
 *   delivery records, the outbox of events written inside the caller's write transaction
 *   with ex_webhook_enqueue(txn, ...)). Nobody else writes those three.
 *
 * KEY LAYOUT (every object belongs to exactly one workspace)
 *   "<ws>|<kind>|<id>"  e.g. "wsp_acme|pst|pst_0192f3a1b2c3d4_k3j9..."
 *   ws is the workspace id from the caller's verified context; kind is the 3-letter id prefix.
 *   Ids start with a 12-hex-digit millisecond timestamp after the prefix, so a range scan of
 *   "<ws>|<kind>|" is in creation order, new objects sort after old ones (pagination under
 *   concurrent inserts has no gaps or duplicates), and one workspace is one contiguous range.
 *   Secondary indexes use the same prefix idea ("<due_ms 16 hex>|<ws>|<post id>" for the
 *   schedule queue). Keys are at most EX_KEY_MAX bytes (LMDB's default max key size is 511).
 *
 * VALUES are compact JSON (jansson) with a "version" integer on every mutable object.
 *
 * THREADS: an ex_store may be used from any thread; a transaction belongs to the thread that
 * began it (MDB_NOTLS is not used: one read transaction per thread at a time). Several
 * processes may open the same directory (LMDB serialises writers across processes); do NOT
 * open the same directory twice in one process (LMDB's locks are per process) — share the
 * ex_store instead.
 *
 * DURABILITY: every state change is one write transaction; ex_txn_commit() returns only once
 * the data is on disk (MDB_NOSYNC is off) unless EX_STORE_NOSYNC was passed, which tests and
 * benchmarks may use (documented in docs/exec.md) and production never does.
 */
#ifndef POSTLY_EXEC_STORE_H
#define POSTLY_EXEC_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <lmdb.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"

/* The schema version this code writes. Stored under key "schema_version" in EX_DB_META. An
 * environment with an older version is upgraded in ex_store_open() (see docs/exec.md,
 * "Upgrade path"); a newer one is refused with PL_ERR_UNSUPPORTED. */
#define EX_SCHEMA_VERSION 1

#define EX_KEY_MAX 256 /* longest key we build, NUL excluded */
#define EX_ID_MAX  48  /* longest id, NUL included */
#define EX_WS_MAX  65  /* longest workspace id (64, as the authorization server's), NUL included */

typedef enum ex_db {
    EX_DB_META = 0,    /* "schema_version", "cursor_secret", ... */
    EX_DB_WORKSPACES,  /* "<ws>" -> workspace */
    EX_DB_ACCOUNTS,    /* "<ws>|acc|<id>" -> social account */
    EX_DB_DRAFTS,      /* "<ws>|drf|<id>" -> draft */
    EX_DB_POSTS,       /* "<ws>|pst|<id>" -> post with its targets */
    EX_DB_QUEUE,       /* "<due 16 hex>|<ws>|<post id>" -> {} : the schedule queue */
    EX_DB_CLAIMS,      /* "<ws>|<post id>" -> {owner, lease_until_ms}: scheduler leases */
    EX_DB_MEDIA,       /* "<ws>|med|<id>" -> medium metadata */
    EX_DB_UPLOADS,     /* "<ws>|upl|<id>" -> chunked upload in progress */
    EX_DB_CAMPAIGNS,   /* "<ws>|cmp|<id>" -> campaign */
    EX_DB_ANALYTICS,   /* "<ws>|<post or account id>|<platform>" -> metrics snapshot */
    EX_DB_IDEMPOTENCY, /* "<ws>|<operation>|<key>" -> record */
    EX_DB_WEBHOOKS,    /* owned by exec/webhook.c */
    EX_DB_DELIVERIES,  /* owned by exec/webhook.c */
    EX_DB_OUTBOX,      /* owned by exec/webhook.c; written inside the caller's transaction */
    EX_DB__COUNT
} ex_db;

typedef struct ex_store ex_store;

/* Flags for ex_store_open. */
#define EX_STORE_NOSYNC 0x1u /* MDB_NOSYNC: tests and benchmarks only */
/* Group commit (durable): the environment runs with MDB_NOMETASYNC, so a commit syncs its data
 * pages but not the meta page while it holds LMDB's writer lock; ex_txn_commit() then waits,
 * outside that lock, for an mdb_env_sync() that started after its commit (one sync serves
 * every commit that completed before it started). A write is still acknowledged only once it
 * is on disk, and LMDB keeps its integrity (a crash may only undo unacknowledged commits); the
 * second sync of each commit leaves the writer lock, so concurrent writers overlap their syncs
 * (bench: about 3x the commits/s with 4 writer threads). No effect on a single writer. */
#define EX_STORE_GROUP_COMMIT 0x2u

/* Opens (creating when missing, mode 0700) the environment in directory dir and every named
 * database, checks or writes the schema version, and creates the cursor secret on first open.
 * map_size 0 means the default (8 GiB, sparse). *out is owned by the caller: ex_store_free().
 * Returns PL_ERR_IO (directory), PL_ERR_STORE (LMDB), PL_ERR_UNSUPPORTED (newer schema). */
pl_rc ex_store_open(const char *dir, size_t map_size, unsigned flags, ex_store **out);

/* Opens "<data_dir>/exec" (created when missing). */
pl_rc ex_store_open_data_dir(const char *data_dir, unsigned flags, ex_store **out);

void ex_store_free(ex_store *st);

/* The directory the store was opened in (borrowed, valid until ex_store_free). Media bytes live
 * in "<dir>/media/". */
const char *ex_store_dir(const ex_store *st);

/* The schema version found on disk when the store was opened (before any upgrade). */
int ex_store_schema_found(const ex_store *st);

/* Shared syncs run by group commit so far (0 without EX_STORE_GROUP_COMMIT). */
uint64_t ex_store_syncs(ex_store *st);

/* The store's 32-byte secret for cursors (borrowed, valid until ex_store_free). */
const uint8_t *ex_store_cursor_secret(const ex_store *st);

/* ---- transactions ---- */

struct ex_changes;

typedef struct ex_txn {
    ex_store *st;
    MDB_txn *mdb;
    int write;
    int child; /* 1: a child (nested) transaction of the open batch (see "batches" below) */
    int dirty; /* 1: a write through this module succeeded (batch bookkeeping) */
    struct ex_changes *changes; /* keys written, for the change observer (NULL: none) */
} ex_txn;

/* Begin a write (serialised across threads and processes) or read transaction. On the batch
 * thread between ex_store_batch_enter() and ex_store_batch_leave(), a write transaction is a
 * child of the open batch (see below); there, outside enter/leave, it first commits and syncs
 * a batch left open. A read transaction always sees the last committed state, never the open
 * batch's writes. */
pl_rc ex_txn_begin(ex_store *st, int write, ex_txn *txn);
/* Commit; on failure the transaction is aborted. Either way txn is finished. A child of the
 * batch is merged into the batch: PL_OK means "in the batch", durable only once the batch is
 * committed and synced (ex_store_batch_commit, ex_store_sync). */
pl_rc ex_txn_commit(ex_txn *txn);
/* Abort; accepts a finished or zeroed txn. A child of the batch drops its own changes only. */
void ex_txn_abort(ex_txn *txn);

/* ---- batches: group commit on one event-loop thread --------------------------------------
 * A durable commit costs one or two fsyncs. A server that handles many requests per event-loop
 * iteration puts their writes into ONE write transaction, the batch, committed once at the end
 * of the iteration, and sends the replies only after that commit and a sync that started after
 * it (exec/batch.h drives this on libevent). The store knows one batch thread, the thread that
 * called ex_store_batch_thread() (before any other thread uses the store).
 *   - Between ex_store_batch_enter() and ex_store_batch_leave() on that thread, every
 *     ex_txn_begin(write) returns a child transaction of the batch (opened on first use): the
 *     operation is atomic on its own, and its failure (abort) drops only its own changes.
 *     Reads inside it see the batch's earlier writes (idempotency keys repeated within one
 *     batch behave as across batches).
 *   - On that thread outside enter/leave (a scheduler or dispatcher timer on the same loop), a
 *     write transaction first commits the open batch and syncs it in full (an early flush),
 *     then runs as usual: never a deadlock on LMDB's one-writer lock, never a silent join.
 *   - Other threads' writes wait on LMDB's writer lock until the batch commits (one loop
 *     iteration at most).
 * Nothing in a batch is durable before ex_store_batch_commit() (+ ex_store_sync() when it says
 * so); the caller must not acknowledge it earlier. A crash loses only the open batch and
 * never corrupts the environment (LMDB's commit order; MDB_NOMETASYNC keeps it). */

/* Makes the calling thread the batch thread. PL_ERR_STATE when another thread already is. */
pl_rc ex_store_batch_thread(ex_store *st);
/* Enter / leave the region whose writes join the batch. Batch thread only; not nested. */
void ex_store_batch_enter(ex_store *st);
void ex_store_batch_leave(ex_store *st);
/* Child transactions begun in batches so far: a caller compares it before and after a unit
 * of work to know whether that work touched the batch (its reply must then be held). */
uint64_t ex_store_batch_joins(const ex_store *st);
/* 1 when a batch is open, or an early flush happened since the last ex_store_batch_commit. */
int ex_store_batch_pending(const ex_store *st);
/* Commits the open batch (one transaction, its data pages synced unless EX_STORE_NOSYNC).
 * Returns PL_OK (also when there was nothing to commit), or the error of this commit or of an
 * early flush since the last call (PL_ERR_LIMIT map full, PL_ERR_STORE, PL_ERR_IO): every
 * reply waiting for the batch must then be an error. *needs_sync (may be NULL) = 1 when the
 * commit is durable only after ex_store_sync() (EX_STORE_GROUP_COMMIT: the meta page).
 * *data_synced (may be NULL) = 1 when this call fdatasynced the data file after every earlier
 * commit had written its meta page (a child with a successful write was merged, so LMDB
 * committed a transaction and synced its data pages; or an early flush synced in full):
 * every EARLIER commit is then durable, whatever its own sync. Writes into a batch go through
 * ex_txn_put_raw/_json, ex_txn_del or ex_txn_sweep for this bookkeeping (every exec/ write
 * does).
 * Batch thread only. */
pl_rc ex_store_batch_commit(ex_store *st, int *needs_sync, int *data_synced);
/* Makes every committed transaction durable (mdb_env_sync, forced): one fdatasync. The one
 * batch function any thread may call, concurrently with the batch thread. PL_OK or
 * PL_ERR_IO. */
pl_rc ex_store_sync(ex_store *st);

/* ---- the committer: a batch's commit (its data fdatasync) off the batch thread ----------
 * LMDB's writer lock is a mutex owned by the thread that began the write transaction, and
 * that thread must commit it. With a committer running, the batch transactions are begun and
 * committed by the committer thread, while the batch thread USES them in between (child
 * transactions, puts, gets: LMDB keeps no thread-local state for write transactions); every
 * hand-over goes through the store's mutex (happens-before):
 *   - an OFFER: the committer begins a batch transaction when asked (ex_store_batch_want, or
 *     a write inside enter/leave that finds none held) and offers it; the batch thread takes
 *     it (ex_store_batch_ready) and now HOLDS it: its writes join it as before;
 *   - a SUBMISSION: the batch thread hands the held batch back (ex_store_batch_submit, at the
 *     end of its iteration) and goes on at once; the committer commits it (the data pages'
 *     fdatasync happens on the committer thread), then begins the next one if asked;
 *   - a RESULT: ex_store_batch_collect() on the batch thread takes the outcome of the commits
 *     that finished, in commit order (needs_sync and data_synced as for ex_store_batch_commit).
 * At most one batch is in flight (submitted, not collected): LMDB's writer lock lets the next
 * begin only after the commit. The committer calls notify(arg) (on its thread, briefly, with
 * the store's mutex held: write a byte to a pipe) after every offer and every result.
 * Blocking fallbacks keep every older caller correct: a write inside enter/leave with no
 * batch held waits for an offer (and so for a commit in flight); a write on the batch thread
 * outside enter/leave first commits the held batch with a full sync and waits until the
 * committer is idle (an early flush: only then may this thread take LMDB's writer lock);
 * ex_store_batch_commit() submits and waits. Without a committer, everything happens on the
 * batch thread as described above. Batch thread only, except where said. */
typedef void (*ex_store_notify_fn)(void *arg);
/* Starts the committer (the batch thread must be set; PL_ERR_STATE otherwise or when one
 * runs; PL_ERR_INTERNAL: no thread). A batch already open on this thread is committed first.
 * With EX_STORE_NOSYNC it starts nothing (PL_OK): commits do not fsync, so the batch thread
 * commits itself, without the hand-overs' latency. */
pl_rc ex_store_committer_start(ex_store *st, ex_store_notify_fn notify, void *arg);
/* Commits the held batch with a full sync, waits for the commit in flight, collects into the
 * next ex_store_batch_commit/_collect result, and joins the thread. NULL-safe; nothing when
 * none runs. ex_store_free() calls it. */
void ex_store_committer_stop(ex_store *st);
/* 1 when the batch thread holds a batch transaction now (taking an offer when there is one);
 * else asks the committer for one and returns 0 (always 0 without a committer and no batch
 * open). A begin that failed counts as taken (1): the next write inside enter/leave then asks
 * again and fails with PL_ERR_STORE if it fails again. */
int ex_store_batch_ready(ex_store *st);
/* Asks the committer for a batch transaction; 1 when an offer or a result is already waiting
 * to be taken (its notification may have been consumed: look now). */
int ex_store_batch_want(ex_store *st);
/* 1 while the batch thread holds a batch transaction / while a submitted commit is not
 * collected. */
int ex_store_batch_held(const ex_store *st);
int ex_store_batch_inflight(const ex_store *st);
/* Hands the held batch to the committer (returns at once); without a committer, commits it
 * now. Either way its result comes from ex_store_batch_collect(). 0: none held. */
int ex_store_batch_submit(ex_store *st);
/* 1 when commits finished since the last ex_store_batch_commit/_collect: *rc (the first
 * error, or PL_OK), *needs_sync, *data_synced as ex_store_batch_commit gives them; each
 * pointer may be NULL. 0: none finished (the outputs say PL_OK, 0, 0). */
int ex_store_batch_collect(ex_store *st, pl_rc *rc, int *needs_sync, int *data_synced);
/* Tests: fn(arg) runs on the committing thread just before each batch commit (the committer
 * thread, or the batch thread without one); a result other than PL_OK aborts the batch and
 * becomes its commit's outcome (a failed commit). fn NULL removes it. */
typedef pl_rc (*ex_store_commit_hook_fn)(void *arg);
void ex_store_set_commit_hook(ex_store *st, ex_store_commit_hook_fn fn, void *arg);

/* ---- the change observer ----------------------------------------------------------------
 * One callback per store that is told, after a write transaction commits, of every key of the
 * databases in its mask that the transaction put or deleted (ex_txn_put_raw/_json, ex_txn_del;
 * each key once per transaction, in first-write order; at most EX_CHANGES_MAX keys per
 * transaction, the rest are not reported). Reports come only for durable changes:
 *   - a top-level commit reports once it is durable (when ex_txn_commit returns), except on
 *     the batch thread while reports of earlier batches are kept (below): it is then reported
 *     right after them, so that reports always follow the commit order;
 *   - a child of the batch does NOT report when it merges into the batch: its keys are kept
 *     with the batch (after the batch's earlier children's), and when the batch commits they
 *     wait, numbered by ex_store_batch_mark(), until the batch driver says whether the batch
 *     is durable: ex_store_batch_settle(st, mark, PL_OK) reports them, any other rc drops
 *     them (the replies of that batch became errors: nothing was acknowledged). A batch whose
 *     commit itself fails drops them at once. exec/batch.c settles at the moment it releases
 *     the batch's held replies.
 * An aborted or failed transaction reports nothing. Changes made by other processes are never
 * seen. The callback runs on the committing (or settling) thread, after the transaction has
 * ended (it may begin new transactions); key is borrowed for the call. postly-mcp uses it to
 * send notifications/resources/updated (mcp/stream.c). Without an observer (the default)
 * writes pay one test of a pointer. */
#define EX_CHANGES_MAX 256
typedef void (*ex_change_fn)(void *arg, ex_db db, const char *key);
/* Installs (fn non-NULL) or removes the observer; mask = bits (1u << ex_db). Call while no
 * other thread writes to the store (postly-mcp writes from its event-loop thread only). */
void ex_store_set_observer(ex_store *st, unsigned mask, ex_change_fn fn, void *arg);
/* The number of the last committed batch whose keys are kept for the observer (0: none yet).
 * Read it after ex_store_batch_commit(): every batch committed so far (early flushes
 * included) has a number <= it. Batch thread only. */
uint64_t ex_store_batch_mark(const ex_store *st);
/* The verdict on every kept batch numbered <= upto: PL_OK reports their keys (durable), any
 * other rc drops them; then every kept report whose turn has come is made, in commit order.
 * Call it when the batches' held replies are released, with the same outcome. Batch thread
 * only. */
void ex_store_batch_settle(ex_store *st, uint64_t upto, pl_rc rc);

/* The MDB_dbi of a named database, for the owners listed above. */
MDB_dbi ex_store_dbi(const ex_store *st, ex_db db);

/* Reads key and parses the JSON value. *out is a new reference (json_decref). PL_ERR_NOT_FOUND
 * when missing. */
pl_rc ex_txn_get_json(ex_txn *txn, ex_db db, const char *key, json_t **out);
/* Serialises v compactly and stores it under key (overwriting). Write txn only. */
pl_rc ex_txn_put_json(ex_txn *txn, ex_db db, const char *key, const json_t *v);
/* Raw bytes variants (values borrowed from the map, valid until the txn ends). */
pl_rc ex_txn_get_raw(ex_txn *txn, ex_db db, const char *key, MDB_val *val);
pl_rc ex_txn_put_raw(ex_txn *txn, ex_db db, const char *key, const void *v, size_t len);
/* Deletes key; PL_ERR_NOT_FOUND when missing. */
pl_rc ex_txn_del(ex_txn *txn, ex_db db, const char *key);

/* The rest of every key of db that starts with prefix and is longer, in key order, as a new
 * JSON array of strings (*out, json_decref) — the reader of secondary indexes such as
 * "<ws>|cpl|<campaign id>|<post id>". PL_OK or PL_ERR_STORE (*out NULL). */
pl_rc ex_txn_suffixes(ex_txn *txn, ex_db db, const char *prefix, json_t **out);

/* Decides one entry of a sweep: 1 deletes it, 0 keeps it. key and val are borrowed for the
 * call only. */
typedef int (*ex_sweep_fn)(const MDB_val *key, const MDB_val *val, void *arg);

/* A bounded, resumable sweep of db inside the caller's write transaction: visits at most
 * max_scan entries in key order, starting at the key saved under pos_key in EX_DB_META by the
 * previous sweep (the first key when none), and deletes those visit() condemns. Saves where it
 * stopped, or clears pos_key when it reached the end so that the next sweep starts over.
 * *deleted counts the deletions. PL_OK, PL_ERR_INTERNAL (read transaction), PL_ERR_LIMIT (map
 * full) or PL_ERR_STORE; the caller commits or aborts. */
pl_rc ex_txn_sweep(ex_txn *txn, ex_db db, const char *pos_key, size_t max_scan, ex_sweep_fn visit,
                   void *arg, size_t *deleted);

/* ---- keys and ids ---- */

/* Builds "<ws>|<kind>|<id>" into buf (EX_KEY_MAX + 1 bytes). PL_ERR_TOO_LARGE when too long,
 * PL_ERR_INVALID when ws is not a valid workspace id or a part is empty or contains '|'. */
pl_rc ex_key_build(char *buf, size_t bufsz, const char *ws, const char *kind, const char *id);

/* A new id "<kind>_<12 hex ms><16 base32 random>" (e.g. "pst_0192f3a1b2c3k3j9..."), time
 * ordered then random. kind is 3 lower-case letters: "pst", "drf", "acc", "med", "cmp", "upl",
 * "wsp". buf needs EX_ID_MAX bytes. */
pl_rc ex_id_new(const core_clock *clock, const char *kind, char *buf, size_t bufsz);

/* 1 when s is a syntactically valid id of that kind (prefix, charset, length). */
int ex_id_valid(const char *s, const char *kind);

/* 1 when s is a valid workspace id: 1..64 chars of [A-Za-z0-9_-] (the authorization server's
 * id syntax). Every key builder refuses anything else, so no workspace range can meet another
 * workspace's or an internal key ("~blob|..."). */
int ex_ws_valid(const char *s);

/* ---- the context every service receives ---- */

struct ex_connector; /* defined in exec/connector.h (connector engineer) */

/* Platforms of the seed, in a fixed order (also the index of ex_ctx.connectors). */
typedef enum ex_platform {
    EX_PLATFORM_FACEBOOK = 0,
    EX_PLATFORM_INSTAGRAM,
    EX_PLATFORM_PINTEREST,
    EX_PLATFORM_YOUTUBE,
    EX_PLATFORM_GOOGLE_BUSINESS,
    EX_PLATFORM_LINKEDIN,
    EX_PLATFORM_X,
    EX_PLATFORM__COUNT
} ex_platform;

/* "facebook", "instagram", "pinterest", "youtube", "google_business", "linkedin", "x". */
const char *ex_platform_name(ex_platform p);
/* PL_ERR_INVALID for an unknown name. */
pl_rc ex_platform_parse(const char *name, ex_platform *out);

/* Tunables; ex_limits_default() fills the documented defaults. */
typedef struct ex_limits {
    size_t inline_media_max;       /* bytes of an inline (base64) upload, decoded: 5 MiB */
    size_t chunked_media_max;      /* bytes of a chunked upload: 512 MiB */
    size_t chunk_max;              /* bytes per append: 8 MiB decoded */
    int64_t schedule_max_ahead_ms; /* 2 years */
    int64_t grace_ms;              /* a due post may start this late before its window is missed */
    int64_t lease_ms;              /* a scheduler's claim lasts this long */
    int max_attempts;              /* per target, transient failures */
    int64_t backoff_base_ms;       /* first retry wait; doubles each attempt, +-25% jitter */
    int64_t backoff_max_ms;
    int64_t idempotency_ttl_ms; /* >= 24 h */
    size_t page_max;            /* largest page a listing returns */
    size_t list_scan_budget;    /* records a filtered page may scan before it returns a cursor */
} ex_limits;

void ex_limits_default(ex_limits *l);

/* What services receive. All pointers are borrowed and must outlive every call. A NULL
 * connector slot means the platform is not available (PL_ERR_UNSUPPORTED). */
typedef struct ex_ctx {
    ex_store *store;
    const core_clock *clock;
    const core_log *log;
    const struct ex_connector *connectors[EX_PLATFORM__COUNT];
    ex_limits limits;
} ex_ctx;

/* A specific, human-readable error naming the field ("text: 312 code points exceeds X's limit
 * of 280"). Services fill it on every failure; callers may pass NULL. Never holds secrets. */
typedef struct ex_err {
    char field[64];
    char msg[256];
} ex_err;

/* Sets err (when non-NULL) and returns rc: err->field = field, err->msg = "<field>: <text>"
 * (just "<text>" when field is NULL or empty), so callers must not repeat the field in fmt. */
pl_rc ex_err_set(ex_err *err, pl_rc rc, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
