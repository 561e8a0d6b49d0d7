/* core/syncer.c — see syncer.h. */
#include "core/syncer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

struct core_syncer {
    core_sync_fn sync;
    void *sync_arg;
    core_synced_fn done;
    void *arg;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t requested, synced; /* guarded by mu */
    uint64_t count;             /* guarded by mu */
    pl_rc last_rc;              /* guarded by mu */
    int stop;                   /* guarded by mu */
    int pipefd[2];
    struct event *ev;
};

static void *run(void *arg)
{
    core_syncer *sy = arg;
    pthread_mutex_lock(&sy->mu);
    for (;;) {
        while (!sy->stop && sy->requested <= sy->synced)
            pthread_cond_wait(&sy->cv, &sy->mu);
        if (sy->stop)
            break;
        uint64_t target = sy->requested;
        pthread_mutex_unlock(&sy->mu);
        pl_rc rc = sy->sync(sy->sync_arg);
        pthread_mutex_lock(&sy->mu);
        sy->synced = target;
        sy->count++;
        /* A failure is reported for every commit up to target; a later success does not hide
         * it: last_rc is consumed by the loop thread. */
        if (sy->last_rc == PL_OK)
            sy->last_rc = rc;
        char b = 1;
        ssize_t w;
        do
            w = write(sy->pipefd[1], &b, 1);
        while (w < 0 && errno == EINTR);
        /* EAGAIN: a wake-up is already pending, which is enough. */
    }
    pthread_mutex_unlock(&sy->mu);
    return NULL;
}

static void on_pipe(evutil_socket_t fd, short what, void *arg)
{
    core_syncer *sy = arg;
    char buf[64];
    (void)what;
    while (read(fd, buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&sy->mu);
    uint64_t synced = sy->synced;
    pl_rc rc = sy->last_rc;
    sy->last_rc = PL_OK;
    pthread_mutex_unlock(&sy->mu);
    sy->done(sy->arg, synced, rc);
}

pl_rc core_syncer_new(struct event_base *base, core_sync_fn sync, void *sync_arg,
                      core_synced_fn done, void *arg, core_syncer **out)
{
    core_syncer *sy = calloc(1, sizeof *sy);
    pl_rc rc = PL_OK;
    *out = NULL;
    if (!sy)
        return PL_ERR_NOMEM;
    sy->sync = sync;
    sy->sync_arg = sync_arg;
    sy->done = done;
    sy->arg = arg;
    sy->pipefd[0] = sy->pipefd[1] = -1;
    pthread_mutex_init(&sy->mu, NULL);
    pthread_cond_init(&sy->cv, NULL);
    if (pipe(sy->pipefd) != 0 || fcntl(sy->pipefd[0], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(sy->pipefd[1], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(sy->pipefd[0], F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(sy->pipefd[1], F_SETFD, FD_CLOEXEC) != 0) {
        rc = PL_ERR_IO;
        goto out;
    }
    sy->ev = event_new(base, sy->pipefd[0], EV_READ | EV_PERSIST, on_pipe, sy);
    if (!sy->ev || event_add(sy->ev, NULL) != 0) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if (pthread_create(&sy->thread, NULL, run, sy) != 0) {
        rc = PL_ERR_INTERNAL;
        goto out;
    }
    sy->started = 1;
    *out = sy;
    sy = NULL;
out:
    core_syncer_free(sy);
    return rc;
}

void core_syncer_request(core_syncer *sy, uint64_t seq)
{
    pthread_mutex_lock(&sy->mu);
    if (seq > sy->requested)
        sy->requested = seq;
    pthread_cond_signal(&sy->cv);
    pthread_mutex_unlock(&sy->mu);
}

void core_syncer_poll_failure(core_syncer *sy)
{
    pthread_mutex_lock(&sy->mu);
    uint64_t synced = sy->synced;
    pl_rc rc = sy->last_rc;
    sy->last_rc = PL_OK;
    pthread_mutex_unlock(&sy->mu);
    if (rc != PL_OK)
        sy->done(sy->arg, synced, rc);
}

uint64_t core_syncer_count(core_syncer *sy)
{
    pthread_mutex_lock(&sy->mu);
    uint64_t n = sy->count;
    pthread_mutex_unlock(&sy->mu);
    return n;
}

void core_syncer_free(core_syncer *sy)
{
    if (!sy)
        return;
    if (sy->started) {
        pthread_mutex_lock(&sy->mu);
        sy->stop = 1;
        pthread_cond_signal(&sy->cv);
        pthread_mutex_unlock(&sy->mu);
        pthread_join(sy->thread, NULL);
    }
    if (sy->ev)
        event_free(sy->ev);
    if (sy->pipefd[0] >= 0)
        close(sy->pipefd[0]);
    if (sy->pipefd[1] >= 0)
        close(sy->pipefd[1]);
    pthread_cond_destroy(&sy->cv);
    pthread_mutex_destroy(&sy->mu);
    free(sy);
}
