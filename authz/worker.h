/*
 * authz/worker.h — runs slow, store-free work (scrypt checks, metadata-document fetches) on
 * short-lived threads so the event loop never waits for it.
 *
 * az_work_submit() starts `work(arg)` on a new thread (at most AZ_WORK_MAX at once) and, when
 * it returns, calls `done(s, arg)` on the event-loop thread (woken through a pipe). `work`
 * must not touch the store, the HTTP layer or anything else owned by the loop; `done` may.
 * A request waiting for the work is deferred (core_http_defer) and answered from `done`.
 *
 * Threads: submit/init/free on the loop thread. az_work_free joins the running threads
 * (each bounded by its own timeouts) and drops their `done` calls.
 */
#ifndef POSTLY_AUTHZ_WORKER_H
#define POSTLY_AUTHZ_WORKER_H

#include "core/err.h"

#define AZ_WORK_MAX 8

struct az_server;
typedef void (*az_work_fn)(void *arg);
typedef void (*az_work_done_fn)(struct az_server *s, void *arg);

pl_rc az_work_init(struct az_server *s);
void az_work_free(struct az_server *s);
/* PL_ERR_BUSY when AZ_WORK_MAX jobs are running (answer "try again"); PL_ERR_NOMEM. */
pl_rc az_work_submit(struct az_server *s, az_work_fn work, az_work_done_fn done, void *arg);

#endif
