/* authz/signer.c — see signer.h. */
#include "signer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct az_signer {
    const key_keyset *ks;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_rwlock_t keys; /* read: a precomputation; write: a key-set change */
    int wanted;            /* guarded by mu: a poke since the thread last looked */
    atomic_int sleeping;   /* the thread waits on cv (set and cleared under mu) */
    atomic_int stop;
};

static void *run(void *arg)
{
    az_signer *sg = arg;
    pthread_mutex_lock(&sg->mu);
    for (;;) {
        size_t count = 0;
        pl_rc rc;
        while (!atomic_load(&sg->stop) && !sg->wanted) {
            atomic_store(&sg->sleeping, 1);
            pthread_cond_wait(&sg->cv, &sg->mu);
        }
        atomic_store(&sg->sleeping, 0);
        sg->wanted = 0;
        if (atomic_load(&sg->stop))
            break;
        pthread_mutex_unlock(&sg->mu);
        /* One pair per read lock, so a key change never waits for more than one. A failure
         * (no active key for a moment, every slot busy, the generator) ends this round: the
         * next poke tries again, and meanwhile tokens are signed in full. */
        do {
            pthread_rwlock_rdlock(&sg->keys);
            rc = key_keyset_presign(sg->ks, AZ_PRESIGN_TARGET, &count);
            pthread_rwlock_unlock(&sg->keys);
        } while (rc == PL_OK && count < AZ_PRESIGN_TARGET && !atomic_load(&sg->stop));
        pthread_mutex_lock(&sg->mu);
    }
    pthread_mutex_unlock(&sg->mu);
    return NULL;
}

static void wake(az_signer *sg)
{
    pthread_mutex_lock(&sg->mu);
    sg->wanted = 1;
    pthread_cond_signal(&sg->cv);
    pthread_mutex_unlock(&sg->mu);
}

pl_rc az_signer_new(const key_keyset *ks, az_signer **out)
{
    az_signer *sg = calloc(1, sizeof *sg);
    *out = NULL;
    if (!sg)
        return PL_ERR_NOMEM;
    sg->ks = ks;
    pthread_mutex_init(&sg->mu, NULL);
    pthread_cond_init(&sg->cv, NULL);
    pthread_rwlock_init(&sg->keys, NULL);
    sg->wanted = 1; /* fill the pool at once */
    if (pthread_create(&sg->thread, NULL, run, sg) != 0) {
        az_signer_free(sg);
        return PL_ERR_INTERNAL;
    }
    sg->started = 1;
    *out = sg;
    return PL_OK;
}

void az_signer_poke(az_signer *sg)
{
    /* A poke that races with the thread going to sleep is missed; the next one (the next
     * loop iteration with tokens) is not, and a missed one only means full signatures. */
    if (sg && atomic_load_explicit(&sg->sleeping, memory_order_relaxed) &&
        key_keyset_presigned(sg->ks) < AZ_PRESIGN_LOW)
        wake(sg);
}

void az_signer_keys_lock(az_signer *sg)
{
    if (sg)
        pthread_rwlock_wrlock(&sg->keys);
}

void az_signer_keys_unlock(az_signer *sg)
{
    if (sg)
        pthread_rwlock_unlock(&sg->keys);
}

void az_signer_free(az_signer *sg)
{
    if (!sg)
        return;
    if (sg->started) {
        atomic_store(&sg->stop, 1);
        wake(sg);
        pthread_join(sg->thread, NULL);
    }
    pthread_rwlock_destroy(&sg->keys);
    pthread_cond_destroy(&sg->cv);
    pthread_mutex_destroy(&sg->mu);
    free(sg);
}
