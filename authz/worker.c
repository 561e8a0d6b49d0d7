/* authz/worker.c — see worker.h. */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "server_int.h"

typedef struct job {
    az_work_fn work;
    az_work_done_fn done;
    void *arg;
    int notify_fd;
    pthread_t thread;
    struct job *next;
} job;

struct az_workers {
    int pipefd[2];
    struct event *ev;
    job *jobs; /* running or finished but not collected */
    size_t njobs;
};

static void *run(void *arg)
{
    job *j = arg;
    uintptr_t v = (uintptr_t)j;
    ssize_t w;
    j->work(j->arg);
    /* The job's address is written whole: pipe writes of <= PIPE_BUF bytes are atomic. */
    do
        w = write(j->notify_fd, &v, sizeof v);
    while (w < 0 && errno == EINTR);
    return NULL;
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    az_server *s = arg;
    az_workers *w = s->workers;
    uintptr_t v;
    (void)what;
    while (read(fd, &v, sizeof v) == (ssize_t)sizeof v) {
        job *j = (job *)v;
        pthread_join(j->thread, NULL);
        for (job **pp = &w->jobs; *pp; pp = &(*pp)->next)
            if (*pp == j) {
                *pp = j->next;
                w->njobs--;
                break;
            }
        j->done(s, j->arg);
        free(j);
    }
}

pl_rc az_work_init(az_server *s)
{
    az_workers *w = calloc(1, sizeof *w);
    if (!w)
        return PL_ERR_NOMEM;
    w->pipefd[0] = w->pipefd[1] = -1;
    s->workers = w;
    if (pipe(w->pipefd) != 0 || fcntl(w->pipefd[0], F_SETFL, O_NONBLOCK) != 0)
        return PL_ERR_IO;
    w->ev = event_new(s->base, w->pipefd[0], EV_READ | EV_PERSIST, on_done, s);
    if (!w->ev || event_add(w->ev, NULL) != 0)
        return PL_ERR_NOMEM;
    return PL_OK;
}

void az_work_free(az_server *s)
{
    az_workers *w = s->workers;
    if (!w)
        return;
    while (w->jobs) {
        job *j = w->jobs;
        w->jobs = j->next;
        pthread_join(j->thread, NULL);
        free(j);
    }
    if (w->ev)
        event_free(w->ev);
    if (w->pipefd[0] >= 0)
        close(w->pipefd[0]);
    if (w->pipefd[1] >= 0)
        close(w->pipefd[1]);
    free(w);
    s->workers = NULL;
}

pl_rc az_work_submit(az_server *s, az_work_fn work, az_work_done_fn done, void *arg)
{
    az_workers *w = s->workers;
    job *j;
    if (!w || w->njobs >= AZ_WORK_MAX)
        return PL_ERR_BUSY;
    j = calloc(1, sizeof *j);
    if (!j)
        return PL_ERR_NOMEM;
    j->work = work;
    j->done = done;
    j->arg = arg;
    j->notify_fd = w->pipefd[1];
    if (pthread_create(&j->thread, NULL, run, j) != 0) {
        free(j);
        return PL_ERR_BUSY;
    }
    j->next = w->jobs;
    w->jobs = j;
    w->njobs++;
    return PL_OK;
}
