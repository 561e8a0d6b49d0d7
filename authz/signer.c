/* authz/signer.c — see signer.h. */
#include "signer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "server_int.h"

struct az_signer {
    az_sign_fn sign, done;
    void *arg;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_rwlock_t keys;            /* read: a signature; write: a key-set change */
    az_sign_job *queue, **queue_tail; /* guarded by mu: waiting to be signed */
    az_sign_job *done_list;           /* guarded by mu: signed, not yet handed back */
    int busy;                         /* guarded by mu: a batch is being signed */
    int stop;                         /* guarded by mu */
    int pipefd[2];
    struct event *ev;
};

static void *run(void *arg)
{
    az_signer *sg = arg;
    pthread_mutex_lock(&sg->mu);
    for (;;) {
        az_sign_job *batch, *j, *last = NULL;
        int wake;
        while (!sg->stop && !sg->queue)
            pthread_cond_wait(&sg->cv, &sg->mu);
        if (sg->stop)
            break;
        batch = sg->queue;
        sg->queue = NULL;
        sg->queue_tail = &sg->queue;
        sg->busy = 1;
        pthread_mutex_unlock(&sg->mu);
        for (j = batch; j; j = j->next) {
            pthread_rwlock_rdlock(&sg->keys);
            sg->sign(sg->arg, j);
            pthread_rwlock_unlock(&sg->keys);
            last = j;
        }
        pthread_mutex_lock(&sg->mu);
        sg->busy = 0;
        wake = sg->done_list == NULL; /* else a wake-up is already pending */
        last->next = sg->done_list;
        sg->done_list = batch;
        if (wake) {
            char b = 1;
            ssize_t w;
            do
                w = write(sg->pipefd[1], &b, 1);
            while (w < 0 && errno == EINTR);
        }
    }
    pthread_mutex_unlock(&sg->mu);
    return NULL;
}

static void on_pipe(evutil_socket_t fd, short what, void *arg)
{
    az_signer *sg = arg;
    az_sign_job *list, *next;
    char buf[64];
    (void)what;
    while (read(fd, buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&sg->mu);
    list = sg->done_list;
    sg->done_list = NULL;
    pthread_mutex_unlock(&sg->mu);
    /* The list holds the batches newest first, each in submission order; replies may go in
     * any order (each waits only for its own commit and signature). */
    for (; list; list = next) {
        next = list->next;
        list->next = NULL;
        sg->done(sg->arg, list);
    }
}

pl_rc az_signer_new(struct event_base *base, az_sign_fn sign, az_sign_fn done, void *arg,
                    az_signer **out)
{
    az_signer *sg = calloc(1, sizeof *sg);
    pl_rc rc = PL_OK;
    *out = NULL;
    if (!sg)
        return PL_ERR_NOMEM;
    sg->sign = sign;
    sg->done = done;
    sg->arg = arg;
    sg->queue_tail = &sg->queue;
    sg->pipefd[0] = sg->pipefd[1] = -1;
    pthread_mutex_init(&sg->mu, NULL);
    pthread_cond_init(&sg->cv, NULL);
    pthread_rwlock_init(&sg->keys, NULL);
    if (pipe(sg->pipefd) != 0 || fcntl(sg->pipefd[0], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(sg->pipefd[1], F_SETFL, O_NONBLOCK) != 0) {
        rc = PL_ERR_IO;
        goto out;
    }
    sg->ev = event_new(base, sg->pipefd[0], EV_READ | EV_PERSIST, on_pipe, sg);
    if (!sg->ev || event_add(sg->ev, NULL) != 0) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if (pthread_create(&sg->thread, NULL, run, sg) != 0) {
        rc = PL_ERR_INTERNAL;
        goto out;
    }
    sg->started = 1;
    *out = sg;
    sg = NULL;
out:
    az_signer_free(sg, NULL);
    return rc;
}

void az_signer_submit(az_signer *sg, az_sign_job *first, az_sign_job *last)
{
    int was_empty;
    last->next = NULL;
    pthread_mutex_lock(&sg->mu);
    was_empty = sg->queue == NULL;
    *sg->queue_tail = first;
    sg->queue_tail = &last->next;
    if (was_empty)
        pthread_cond_signal(&sg->cv);
    pthread_mutex_unlock(&sg->mu);
}

int az_signer_idle(az_signer *sg)
{
    int idle;
    pthread_mutex_lock(&sg->mu);
    idle = !sg->busy && !sg->queue;
    pthread_mutex_unlock(&sg->mu);
    return idle;
}

void az_signer_keys_lock(az_signer *sg)
{
    pthread_rwlock_wrlock(&sg->keys);
}

void az_signer_keys_unlock(az_signer *sg)
{
    pthread_rwlock_unlock(&sg->keys);
}

static void drop_list(az_signer *sg, az_sign_job *list, az_sign_fn drop)
{
    az_sign_job *next;
    for (; list; list = next) {
        next = list->next;
        list->next = NULL;
        if (drop)
            drop(sg->arg, list);
    }
}

void az_signer_free(az_signer *sg, az_sign_fn drop)
{
    if (!sg)
        return;
    if (sg->started) {
        pthread_mutex_lock(&sg->mu);
        sg->stop = 1;
        pthread_cond_signal(&sg->cv);
        pthread_mutex_unlock(&sg->mu);
        pthread_join(sg->thread, NULL);
    }
    /* The thread has stopped: no lock needed. A batch it was signing when asked to stop is
     * finished first (the loop above checks stop only between batches). */
    drop_list(sg, sg->done_list, drop);
    drop_list(sg, sg->queue, drop);
    if (sg->ev)
        event_free(sg->ev);
    if (sg->pipefd[0] >= 0)
        close(sg->pipefd[0]);
    if (sg->pipefd[1] >= 0)
        close(sg->pipefd[1]);
    pthread_rwlock_destroy(&sg->keys);
    pthread_cond_destroy(&sg->cv);
    pthread_mutex_destroy(&sg->mu);
    free(sg);
}
