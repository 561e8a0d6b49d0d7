/* authz/syncer.c — see syncer.h. */
#include "syncer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

struct az_syncer {
    az_store *st;
    az_synced_fn done;
    void *arg;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t requested, synced; /* guarded by mu */
    pl_rc last_rc;              /* guarded by mu */
    int stop;                   /* guarded by mu */
    int pipefd[2];
    struct event *ev;
};

static void *run(void *arg)
{
    az_syncer *sy = arg;
    pthread_mutex_lock(&sy->mu);
    for (;;) {
        uint64_t target;
        pl_rc rc;
        while (!sy->stop && sy->requested <= sy->synced)
            pthread_cond_wait(&sy->cv, &sy->mu);
        if (sy->stop)
            break;
        target = sy->requested;
        pthread_mutex_unlock(&sy->mu);
        rc = az_store_sync(sy->st);
        pthread_mutex_lock(&sy->mu);
        sy->synced = target;
        sy->last_rc = rc;
        {
            char b = 1;
            ssize_t w;
            do
                w = write(sy->pipefd[1], &b, 1);
            while (w < 0 && errno == EINTR);
            /* EAGAIN: a wake-up is already pending, which is enough. */
        }
    }
    pthread_mutex_unlock(&sy->mu);
    return NULL;
}

static void on_pipe(evutil_socket_t fd, short what, void *arg)
{
    az_syncer *sy = arg;
    char buf[64];
    uint64_t synced;
    pl_rc rc;
    (void)what;
    while (read(fd, buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&sy->mu);
    synced = sy->synced;
    rc = sy->last_rc;
    pthread_mutex_unlock(&sy->mu);
    sy->done(sy->arg, synced, rc);
}

pl_rc az_syncer_new(struct event_base *base, az_store *st, az_synced_fn done, void *arg,
                    az_syncer **out)
{
    az_syncer *sy = calloc(1, sizeof *sy);
    pl_rc rc = PL_OK;
    *out = NULL;
    if (!sy)
        return PL_ERR_NOMEM;
    sy->st = st;
    sy->done = done;
    sy->arg = arg;
    sy->pipefd[0] = sy->pipefd[1] = -1;
    pthread_mutex_init(&sy->mu, NULL);
    pthread_cond_init(&sy->cv, NULL);
    if (pipe(sy->pipefd) != 0 || fcntl(sy->pipefd[0], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(sy->pipefd[1], F_SETFL, O_NONBLOCK) != 0) {
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
    az_syncer_free(sy);
    return rc;
}

void az_syncer_request(az_syncer *sy, uint64_t seq)
{
    pthread_mutex_lock(&sy->mu);
    if (seq > sy->requested)
        sy->requested = seq;
    pthread_cond_signal(&sy->cv);
    pthread_mutex_unlock(&sy->mu);
}

void az_syncer_free(az_syncer *sy)
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
