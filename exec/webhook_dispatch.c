/*
 * exec/webhook_dispatch.c — delivers the outbox (exec/webhook.h): claim due entries with a
 * lease in one write transaction, POST them with libevent's HTTP client (timeouts, bounded
 * concurrency), record each attempt and schedule the next with exponential backoff and
 * jitter. https receivers are reached over TLS (OpenSSL through bufferevent_openssl): one
 * SSL_CTX per dispatcher, TLS 1.2 or later, the peer's chain verified against the system CA
 * store (plus options.ca_file) and its name against the URL's host (RFC 6125 via
 * SSL_set1_host, or the IP address for a literal), SNI for names (RFC 6066 §3). Everything
 * here runs on the dispatcher's event-loop thread.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/crypto.h"
#include "exec/args.h"
#include "exec/obj.h"
#include "exec/webhook.h"
#include "exec/webhook_int.h"

#define CLAIM_SCAN_MAX    256                     /* due queue entries looked at per kick */
#define RESPONSE_BODY_MAX ((ev_ssize_t)64 * 1024) /* a receiver's answer is read and dropped */
#define RESPONSE_HEAD_MAX ((ev_ssize_t)16 * 1024)
#define ERROR_TEXT_MAX    160
#define USER_AGENT        "Postly-Webhooks/1.0"

typedef struct job {
    struct job *prev, *next;
    ex_webhook_dispatcher *d;
    char ws[EX_WS_MAX];
    char dlv[EX_ID_MAX];
    char webhook_id[EX_ID_MAX];
    char event_id[EX_ID_MAX];
    int64_t lease_due; /* the due of the queue entry this claim holds */
    int64_t started_ms;
    char *url, *secret, *body; /* owned; secret wiped on free */
    struct evhttp_connection *conn;
    SSL *ssl;     /* https: owned by conn's bufferevent (freed with it); read for errors */
    int err_kind; /* -1, or an enum evhttp_request_error */
    int code;     /* the result, once finished: HTTP status (0: none) and error text */
    char error[ERROR_TEXT_MAX];
    int64_t retry_after_ms; /* from a 429/503 answer's Retry-After, 0 when none */
    /* the target, parsed from url */
    char host[256];    /* brackets removed */
    char hosthdr[300]; /* Host: header */
    char path[EX_WEBHOOK_URL_MAX + 2];
    int port, https, allow_loopback;
    struct evdns_getaddrinfo_request *dns_req; /* while the host is being resolved */
} job;

struct ex_webhook_dispatcher {
    struct event_base *base;
    struct evdns_base *dns;
    SSL_CTX *tls; /* the client context of every https delivery */
    ex_store *st;
    const core_clock *clock;
    const core_log *log;
    ex_webhook_options o;
    struct event *timer;  /* polls the queue */
    struct event *reaper; /* frees finished connections, then refills the free slots */
    job *jobs;            /* in flight */
    job *finished;        /* answered, waiting to be recorded (by the reaper, in one txn) */
    int in_flight;
    struct evhttp_connection **dead;
    size_t ndead, capdead;
    char purge_resume[EX_KEY_MAX + 1]; /* where the retention walk goes on */
    ex_webhook_stats stats;
};

void ex_webhook_options_default(ex_webhook_options *o)
{
    memset(o, 0, sizeof *o);
    o->max_in_flight = 8;
    o->timeout_ms = 10000LL;
    o->max_attempts = 12;
    o->backoff_base_ms = 30000LL;
    o->backoff_max_ms = 6LL * 3600 * 1000;
    o->poll_ms = 1000LL;
    o->lease_ms = 60000LL;
    o->retention_ms = 30LL * 24 * 3600 * 1000;
}

/* ---- jobs ---- */

static void job_free(job *j)
{
    if (!j)
        return;
    if (j->secret) {
        core_wipe(j->secret, strlen(j->secret));
        free(j->secret);
    }
    free(j->url);
    free(j->body);
    free(j);
}

static void job_link(ex_webhook_dispatcher *d, job *j)
{
    j->prev = NULL;
    j->next = d->jobs;
    if (d->jobs)
        d->jobs->prev = j;
    d->jobs = j;
    d->in_flight++;
}

static void job_unlink(ex_webhook_dispatcher *d, job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        d->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    j->prev = j->next = NULL;
    d->in_flight--;
}

/* ---- backoff ---- */

/* Wait after the n-th failed attempt: base * 2^(n-1), at most max, times a jitter factor in
 * [0.8, 1.2] derived from the delivery id and n (deterministic, so tests can bound it, and
 * different deliveries to one receiver spread out instead of retrying in lockstep). */
static int64_t backoff_ms(const ex_webhook_options *o, const char *dlv, int n)
{
    int64_t b = o->backoff_base_ms;
    for (int i = 1; i < n && b < o->backoff_max_ms; i++)
        b *= 2;
    if (b > o->backoff_max_ms)
        b = o->backoff_max_ms;
    char buf[64];
    uint8_t h[CORE_SHA256_LEN];
    int len = snprintf(buf, sizeof buf, "%s|%d", dlv, n);
    core_sha256(buf, len > 0 ? (size_t)len : 0, h);
    unsigned f = 800 + (unsigned)(((unsigned)h[0] << 8 | h[1]) % 401);
    return b / 1000 * f + (b % 1000) * f / 1000;
}

/* ---- recording an attempt ---- */

static int is_2xx(int code)
{
    return code >= 200 && code < 300;
}

/* 410 Gone: the receiver asks to be removed (as in Standard Webhooks): the subscription is
 * disabled, with the reason, in the transaction that records the attempt. */
static pl_rc disable_gone(ex_txn *txn, const job *j, const char *at)
{
    json_t *w = NULL;
    pl_rc rc = ex_obj_load(txn, EX_DB_WEBHOOKS, j->ws, EX_WH_KIND_WEBHOOK, j->webhook_id, "", "",
                           &w, NULL);
    if (rc == PL_ERR_NOT_FOUND)
        return PL_OK;
    if (rc != PL_OK)
        return rc;
    json_object_set_new(w, "active", json_false());
    json_object_set_new(w, "disabled_reason", json_string("the receiver answered 410 Gone"));
    json_object_set_new(w, "version",
                        json_integer(json_integer_value(json_object_get(w, "version")) + 1));
    json_object_set_new(w, "updated_at", json_string(at));
    rc = ex_obj_store(txn, EX_DB_WEBHOOKS, j->ws, EX_WH_KIND_WEBHOOK, w);
    json_decref(w);
    return rc;
}

/* Appends one finished attempt to its delivery record and, when this dispatcher still holds
 * the claim, moves the delivery on (delivered / retry later / failed). Inside txn; counts go
 * to *delta, which the caller adds to the stats once the transaction committed. */
static pl_rc apply_attempt(ex_webhook_dispatcher *d, ex_txn *txn, const job *j, int64_t now,
                           ex_webhook_stats *delta)
{
    json_t *dl = NULL, *last, *att = NULL;
    char key[EX_KEY_MAX + 1], at[40];
    const char *error = j->error[0] ? j->error : NULL;
    pl_rc rc =
        ex_obj_load(txn, EX_DB_DELIVERIES, j->ws, EX_WH_KIND_DELIVERY, j->dlv, "", "", &dl, NULL);
    if (rc != PL_OK)
        return rc == PL_ERR_NOT_FOUND ? PL_OK : rc; /* purged meanwhile: nothing to record */
    ex_time_format(now, at, sizeof at);
    att = json_pack("{s:s, s:i, s:I, s:s?}", "at", at, "status_code", j->code, "latency_ms",
                    (json_int_t)(now - j->started_ms), "error", error);
    last = json_object_get(dl, "last");
    if (!att || !json_is_array(last)) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    json_array_append(last, att);
    while (json_array_size(last) > EX_WEBHOOK_ATTEMPTS_KEPT)
        json_array_remove(last, 0);
    int attempts = (int)json_integer_value(json_object_get(dl, "attempts")) + 1;
    json_object_set_new(dl, "attempts", json_integer(attempts));
    json_object_set_new(dl, "last_error", error ? json_string(error) : json_null());
    delta->attempts++;

    const char *status = json_string_value(json_object_get(dl, "status"));
    int mine = status && strcmp(status, "delivering") == 0 &&
               json_integer_value(json_object_get(dl, "next_attempt_ms")) == j->lease_due;
    if (mine) {
        if ((rc = ex_wh_queue_key(j->lease_due, j->ws, j->dlv, key, sizeof key)) != PL_OK)
            goto out;
        rc = ex_txn_del(txn, EX_DB_OUTBOX, key);
        if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
            goto out;
        if (is_2xx(j->code)) {
            json_object_set_new(dl, "status", json_string("delivered"));
            json_object_set_new(dl, "delivered_at", json_string(at));
            json_object_set_new(dl, "next_attempt_at", json_null());
            delta->delivered++;
        } else if (attempts >= d->o.max_attempts || j->code == 410) {
            json_object_set_new(dl, "status", json_string("failed"));
            json_object_set_new(dl, "next_attempt_at", json_null());
            delta->failed++;
            if (j->code == 410 && (rc = disable_gone(txn, j, at)) != PL_OK)
                goto out;
        } else {
            int64_t wait = backoff_ms(&d->o, j->dlv, attempts);
            if (j->retry_after_ms > wait)
                wait = j->retry_after_ms; /* the receiver asked for more time */
            int64_t next = now + wait;
            char when[40];
            ex_time_format(next, when, sizeof when);
            json_object_set_new(dl, "status", json_string("pending"));
            json_object_set_new(dl, "next_attempt_ms", json_integer(next));
            json_object_set_new(dl, "next_attempt_at", json_string(when));
            if ((rc = ex_wh_queue_key(next, j->ws, j->dlv, key, sizeof key)) != PL_OK ||
                (rc = ex_txn_put_raw(txn, EX_DB_OUTBOX, key, "", 0)) != PL_OK)
                goto out;
            delta->retried++;
        }
    }
    rc = ex_obj_store(txn, EX_DB_DELIVERIES, j->ws, EX_WH_KIND_DELIVERY, dl);
out:
    json_decref(att);
    json_decref(dl);
    return rc;
}

static void add_stats(ex_webhook_stats *to, const ex_webhook_stats *d)
{
    to->attempts += d->attempts;
    to->delivered += d->delivered;
    to->failed += d->failed;
    to->retried += d->retried;
}

/* Records a list of finished jobs (linked by next) in one write transaction — one commit, one
 * fsync, however many answers came in since the last time — and frees them. When the batch
 * fails, each job is retried in a transaction of its own, so one bad record costs only
 * itself (its claim then lapses and the delivery is sent again: at least once). */
static void record_jobs(ex_webhook_dispatcher *d, job *list)
{
    ex_txn txn = {0};
    ex_webhook_stats delta = {0};
    int64_t now = core_clock_now_ms(d->clock);
    pl_rc rc = PL_OK;
    if (!list)
        return;
    int batch = list->next != NULL;
    if (batch) {
        rc = ex_txn_begin(d->st, 1, &txn);
        for (job *j = list; rc == PL_OK && j; j = j->next)
            rc = apply_attempt(d, &txn, j, now, &delta);
        if (rc == PL_OK)
            rc = ex_txn_commit(&txn);
        ex_txn_abort(&txn);
        if (rc == PL_OK) {
            add_stats(&d->stats, &delta);
            d->stats.record_txns++;
        }
    }
    for (job *j = list, *next; j; j = next) {
        next = j->next;
        if (!batch || rc != PL_OK) {
            ex_webhook_stats one = {0};
            pl_rc r = ex_txn_begin(d->st, 1, &txn);
            if (r == PL_OK)
                r = apply_attempt(d, &txn, j, now, &one);
            if (r == PL_OK)
                r = ex_txn_commit(&txn);
            ex_txn_abort(&txn);
            if (r == PL_OK) {
                add_stats(&d->stats, &one);
                d->stats.record_txns++;
            } else
                core_log_error(d->log, "webhook delivery=%s record failed: %s", j->dlv,
                               pl_strerror(r));
        }
        if (!is_2xx(j->code))
            core_log_warn(
                d->log, "webhook=%s delivery=%s event=%s attempt failed status=%d error=%s",
                j->webhook_id, j->dlv, j->event_id, j->code, j->error[0] ? j->error : "-");
        job_free(j);
    }
}

/* Records one attempt at once (a request that could not even start) and frees j. */
static void record_attempt(ex_webhook_dispatcher *d, job *j, int code, const char *error)
{
    j->code = code;
    snprintf(j->error, sizeof j->error, "%s", error ? error : "");
    j->next = NULL;
    record_jobs(d, j);
}

/* Marks a delivery failed without an attempt (its webhook is gone or disabled). */
static pl_rc fail_unsendable(ex_txn *txn, json_t *dl, const char *why)
{
    json_object_set_new(dl, "status", json_string("failed"));
    json_object_set_new(dl, "last_error", json_string(why));
    json_object_set_new(dl, "next_attempt_at", json_null());
    return ex_obj_store(txn, EX_DB_DELIVERIES,
                        json_string_value(json_object_get(dl, "workspace_id")), EX_WH_KIND_DELIVERY,
                        dl);
}

/* ---- claiming ---- */

typedef struct due_key {
    char text[EX_KEY_MAX + 1];
} due_key;

typedef struct collect_state {
    int64_t now;
    due_key *keys;
    size_t n, cap;
} collect_state;

static int collect_due(const MDB_val *k, const MDB_val *v, void *arg)
{
    collect_state *cs = arg;
    (void)v;
    if (k->mv_size < 17 || k->mv_size > EX_KEY_MAX || cs->n >= cs->cap)
        return 1;
    char hex[17];
    memcpy(hex, k->mv_data, 16);
    hex[16] = '\0';
    if ((int64_t)strtoull(hex, NULL, 16) > cs->now)
        return 1; /* the queue is in due order: nothing later is due */
    memcpy(cs->keys[cs->n].text, k->mv_data, k->mv_size);
    cs->keys[cs->n].text[k->mv_size] = '\0';
    cs->n++;
    return 0;
}

static char *dup_str(const json_t *o, const char *name)
{
    const char *s = json_string_value(json_object_get(o, name));
    return s ? strdup(s) : NULL;
}

/* Claims up to `slots` due deliveries; *out gets a NULL-linked list of jobs (not yet in
 * flight). */
static pl_rc claim(ex_webhook_dispatcher *d, int slots, job **out)
{
    collect_state cs = {0};
    ex_txn txn = {0};
    job *list = NULL;
    pl_rc rc;
    int claimed = 0;
    *out = NULL;
    cs.now = core_clock_now_ms(d->clock);
    cs.cap = CLAIM_SCAN_MAX;
    cs.keys = calloc(cs.cap, sizeof *cs.keys);
    if (!cs.keys)
        return PL_ERR_NOMEM;
    if ((rc = ex_txn_begin(d->st, 1, &txn)) != PL_OK)
        goto out;
    if ((rc = ex_wh_scan(&txn, EX_DB_OUTBOX, "", 0, NULL, collect_due, &cs)) != PL_OK)
        goto out;
    for (size_t i = 0; i < cs.n && claimed < slots; i++) {
        char *text = cs.keys[i].text;
        char *ws = text + 17, *bar = strchr(ws, '|');
        json_t *dl = NULL, *w = NULL;
        if (text[16] != '|' || !bar) {
            ex_txn_del(&txn, EX_DB_OUTBOX, text); /* not ours: drop it */
            continue;
        }
        *bar = '\0';
        const char *id = bar + 1;
        char wsbuf[EX_WS_MAX];
        snprintf(wsbuf, sizeof wsbuf, "%s", ws);
        *bar = '|';
        rc = ex_obj_load(&txn, EX_DB_DELIVERIES, wsbuf, EX_WH_KIND_DELIVERY, id, "", "", &dl, NULL);
        const char *status = dl ? json_string_value(json_object_get(dl, "status")) : NULL;
        if (rc != PL_OK || !status ||
            (strcmp(status, "pending") != 0 && strcmp(status, "delivering") != 0)) {
            json_decref(dl);
            if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
                goto out;
            if ((rc = ex_txn_del(&txn, EX_DB_OUTBOX, text)) != PL_OK)
                goto out;
            continue;
        }
        const char *wid = json_string_value(json_object_get(dl, "webhook_id"));
        rc = ex_obj_load(&txn, EX_DB_WEBHOOKS, wsbuf, EX_WH_KIND_WEBHOOK, wid ? wid : "", "", "",
                         &w, NULL);
        if (rc != PL_OK || !json_is_true(json_object_get(w, "active"))) {
            if (rc != PL_OK && rc != PL_ERR_NOT_FOUND) {
                json_decref(dl);
                goto out;
            }
            rc = fail_unsendable(&txn, dl, rc == PL_OK ? "webhook disabled" : "webhook deleted");
            if (rc == PL_OK)
                rc = ex_txn_del(&txn, EX_DB_OUTBOX, text);
            json_decref(w);
            json_decref(dl);
            if (rc != PL_OK)
                goto out;
            d->stats.failed++;
            continue;
        }
        /* The claim: move the queue entry to the end of a lease. Another dispatcher sees it
         * again only if this one dies before recording the attempt. */
        int64_t lease_due = cs.now + d->o.timeout_ms + d->o.lease_ms;
        char key[EX_KEY_MAX + 1];
        job *j = calloc(1, sizeof *j);
        if (!j || (rc = ex_txn_del(&txn, EX_DB_OUTBOX, text)) != PL_OK ||
            (rc = ex_wh_queue_key(lease_due, wsbuf, id, key, sizeof key)) != PL_OK ||
            (rc = ex_txn_put_raw(&txn, EX_DB_OUTBOX, key, "", 0)) != PL_OK) {
            job_free(j);
            json_decref(w);
            json_decref(dl);
            rc = rc == PL_OK ? PL_ERR_NOMEM : rc;
            goto out;
        }
        json_object_set_new(dl, "status", json_string("delivering"));
        json_object_set_new(dl, "next_attempt_ms", json_integer(lease_due));
        rc = ex_obj_store(&txn, EX_DB_DELIVERIES, wsbuf, EX_WH_KIND_DELIVERY, dl);
        j->d = d;
        j->err_kind = -1;
        j->lease_due = lease_due;
        snprintf(j->ws, sizeof j->ws, "%s", wsbuf);
        snprintf(j->dlv, sizeof j->dlv, "%s", id);
        snprintf(j->webhook_id, sizeof j->webhook_id, "%s", wid);
        snprintf(j->event_id, sizeof j->event_id, "%s",
                 json_string_value(json_object_get(dl, "event_id"))
                     ? json_string_value(json_object_get(dl, "event_id"))
                     : "");
        j->allow_loopback = json_is_true(json_object_get(w, "allow_loopback"));
        j->url = dup_str(w, "url");
        j->secret = dup_str(w, "secret");
        j->body = dup_str(dl, "body");
        j->next = list;
        list = j;
        json_decref(w);
        json_decref(dl);
        if (rc != PL_OK || !j->url || !j->secret || !j->body) {
            rc = rc == PL_OK ? PL_ERR_NOMEM : rc;
            goto out;
        }
        claimed++;
    }
    rc = ex_txn_commit(&txn);
out:
    ex_txn_abort(&txn);
    free(cs.keys);
    if (rc != PL_OK) {
        while (list) {
            job *n = list->next;
            job_free(list);
            list = n;
        }
        core_log_error(d->log, "webhook claim failed: %s", pl_strerror(rc));
        return rc;
    }
    *out = list;
    return PL_OK;
}

/* ---- HTTP ---- */

static const char *const request_errors[] = {
    "timeout",                      /* EVREQ_HTTP_TIMEOUT */
    "connection closed or refused", /* EVREQ_HTTP_EOF */
    "invalid response header",      /* EVREQ_HTTP_INVALID_HEADER */
    "network error",                /* EVREQ_HTTP_BUFFER_ERROR */
    "cancelled",                    /* EVREQ_HTTP_REQUEST_CANCEL */
    "response too large",           /* EVREQ_HTTP_DATA_TOO_LONG */
};

static void on_error(enum evhttp_request_error e, void *arg)
{
    job *j = arg;
    j->err_kind = (int)e;
}

static void bury(ex_webhook_dispatcher *d, struct evhttp_connection *conn)
{
    if (!conn)
        return;
    if (d->ndead == d->capdead) {
        size_t ncap = d->capdead ? d->capdead * 2 : 16;
        struct evhttp_connection **nd = realloc(d->dead, ncap * sizeof(struct evhttp_connection *));
        if (!nd) {
            /* Cannot defer: leak rather than free a connection libevent is still inside. */
            core_log_error(d->log, "webhook: out of memory, leaking a connection");
            return;
        }
        d->dead = nd;
        d->capdead = ncap;
    }
    d->dead[d->ndead++] = conn;
}

/* Hands a finished job to the reaper (from inside a libevent callback). */
static void finish_later(ex_webhook_dispatcher *d, job *j, int code, const char *error)
{
    j->code = code;
    snprintf(j->error, sizeof j->error, "%s", error ? error : "");
    j->next = d->finished;
    d->finished = j;
    event_active(d->reaper, EV_TIMEOUT, 1);
}

/* Retry-After in delta-seconds (RFC 9110 §10.2.3), capped at max_ms; the HTTP-date form and
 * anything malformed count as absent (the backoff then applies). */
static int64_t retry_after_ms(const char *v, int64_t max_ms)
{
    int64_t s = 0;
    if (!v || !*v || strlen(v) > 10 || strspn(v, "0123456789") != strlen(v))
        return 0;
    for (const char *p = v; *p; p++)
        s = s * 10 + (*p - '0');
    return s * 1000 > max_ms ? max_ms : s * 1000;
}

/* Why a TLS connection failed, when it did: the certificate check's verdict (the chain, the
 * name), else the first OpenSSL error queued on the bufferevent (a handshake failure, a
 * protocol version below TLS 1.2). Writes nothing and returns 0 when TLS saw no error (a
 * refused connection, a timeout: the request error then names it). */
static int tls_error(const job *j, char *buf, size_t n)
{
    struct bufferevent *bev = j->conn ? evhttp_connection_get_bufferevent(j->conn) : NULL;
    unsigned long e = 0, next;
    long vr;
    if (!j->ssl)
        return 0;
    while (bev && (next = bufferevent_get_openssl_error(bev)) != 0)
        if (!e)
            e = next;
    vr = SSL_get_verify_result(j->ssl);
    if (vr != X509_V_OK) {
        snprintf(buf, n, "tls: certificate verification failed: %s",
                 X509_verify_cert_error_string(vr));
        return 1;
    }
    /* libevent also queues SSL_get_error() codes and errno values there: only an OpenSSL
     * error with a reason says something about TLS; otherwise the socket error stands. */
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    if (why) {
        snprintf(buf, n, "tls: handshake failed: %s", why);
        return 1;
    }
    return 0;
}

static void on_done(struct evhttp_request *req, void *arg)
{
    job *j = arg;
    ex_webhook_dispatcher *d = j->d;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    const char *error = NULL;
    char tls_msg[ERROR_TEXT_MAX];
    if (code == 0 && tls_error(j, tls_msg, sizeof tls_msg))
        error = tls_msg;
    else if (j->err_kind >= 0 &&
             (size_t)j->err_kind < sizeof request_errors / sizeof request_errors[0])
        error = request_errors[j->err_kind];
    else if (code == 0)
        error = "connection failed";
    j->code = code;
    if (req && (code == 429 || code == 503))
        j->retry_after_ms =
            retry_after_ms(evhttp_find_header(evhttp_request_get_input_headers(req), "Retry-After"),
                           d->o.backoff_max_ms);
    if (error)
        snprintf(j->error, sizeof j->error, "%s", error);
    else if (!is_2xx(code))
        snprintf(j->error, sizeof j->error, "HTTP %d", code);
    job_unlink(d, j);
    /* The connection cannot be freed inside its own callback: the reaper does it, and records
     * this answer together with any others that came in meanwhile. */
    bury(d, j->conn);
    j->conn = NULL;
    j->ssl = NULL;
    j->next = d->finished;
    d->finished = j;
    event_active(d->reaper, EV_TIMEOUT, 1);
}

/* The TLS bufferevent of an https delivery to j->host (the URL's host, while the socket goes
 * to the checked address): SNI and RFC 6125 name checks for a name, an IP address check for a
 * literal (RFC 6066 §3: no SNI for literals). j->ssl borrows the SSL object, which the
 * bufferevent owns (BEV_OPT_CLOSE_ON_FREE). NULL on failure. */
static struct bufferevent *tls_bufferevent(ex_webhook_dispatcher *d, job *j)
{
    struct bufferevent *bev = NULL;
    int literal = 0, ok;
    SSL *ssl = SSL_new(d->tls);
    if (!ssl)
        return NULL;
    (void)ex_wh_host_class(j->host, &literal);
    if (literal) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), j->host) == 1;
    } else {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set_tlsext_host_name(ssl, j->host) == 1 && SSL_set1_host(ssl, j->host) == 1;
    }
    if (ok)
        bev = bufferevent_openssl_socket_new(d->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!bev) {
        SSL_free(ssl);
        return NULL;
    }
    /* Many receivers close without close_notify. Only the status line is used, and the
     * request went out over the verified channel, so a truncated answer cannot forge one. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    j->ssl = ssl;
    return bev;
}

/* Connects to `address` (an IP literal: the URL's own, or what its host resolved to, which
 * passed the SSRF guard) and sends the signed request; over TLS for https, verified against
 * the URL's host. On a failure before anything was sent the attempt is recorded at once (j is
 * then freed). */
static void send_request(ex_webhook_dispatcher *d, job *j, const char *address)
{
    struct evhttp_request *req = NULL;
    struct bufferevent *bev = NULL;
    struct evkeyvalq *h;
    char ts[24], sig[80];
    const char *fail = NULL;
    int64_t now = core_clock_now_ms(d->clock);
    if (j->https && !(bev = tls_bufferevent(d, j))) {
        fail = "tls: cannot set up the connection";
        goto out;
    }
    j->conn = evhttp_connection_base_bufferevent_new(d->base, NULL, bev, address,
                                                     (unsigned short)j->port);
    if (!j->conn) {
        if (bev)
            bufferevent_free(bev);
        j->ssl = NULL;
        fail = "cannot create connection";
        goto out;
    }
    struct timeval tv = {(time_t)(d->o.timeout_ms / 1000),
                         (suseconds_t)(d->o.timeout_ms % 1000) * 1000};
    evhttp_connection_set_timeout_tv(j->conn, &tv);
    evhttp_connection_set_retries(j->conn, 0);
    evhttp_connection_set_max_body_size(j->conn, RESPONSE_BODY_MAX);
    evhttp_connection_set_max_headers_size(j->conn, RESPONSE_HEAD_MAX);
    req = evhttp_request_new(on_done, j);
    if (!req) {
        fail = "out of memory";
        goto out;
    }
    evhttp_request_set_error_cb(req, on_error);
    size_t blen = strlen(j->body);
    snprintf(ts, sizeof ts, "%lld", (long long)(now / 1000));
    if (ex_webhook_sign(j->secret, now / 1000, j->body, blen, sig, sizeof sig) != PL_OK) {
        fail = "signing failed";
        goto out;
    }
    h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", j->hosthdr);
    evhttp_add_header(h, "User-Agent", USER_AGENT);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Connection", "close");
    evhttp_add_header(h, "Postly-Webhook-Id", j->event_id);
    evhttp_add_header(h, "Postly-Webhook-Timestamp", ts);
    evhttp_add_header(h, "Postly-Webhook-Signature", sig);
    evbuffer_add(evhttp_request_get_output_buffer(req), j->body, blen);
    job_link(d, j);
    if (evhttp_make_request(j->conn, req, EVHTTP_REQ_POST, j->path) != 0) {
        job_unlink(d, j); /* the request was taken off the connection's queue: ours to free */
        fail = "cannot send request";
        goto out;
    }
    req = NULL;
out:
    core_wipe(sig, sizeof sig);
    if (fail) {
        if (req)
            evhttp_request_free(req);
        if (j->conn)
            evhttp_connection_free(j->conn); /* ours alone, no callback of it is running */
        j->conn = NULL;
        j->ssl = NULL;
        record_attempt(d, j, 0, fail); /* takes j */
    }
}

static const char *const not_public = "the receiver's address is not public (SSRF guard)";

/* A host name resolved: connect only if it leads where the subscription may go. */
static void on_resolved(int err, struct evutil_addrinfo *res, void *arg)
{
    job *j = arg;
    ex_webhook_dispatcher *d;
    char ip[INET6_ADDRSTRLEN], msg[ERROR_TEXT_MAX];
    if (err == EVUTIL_EAI_CANCEL) {
        /* the dispatcher is being freed; it frees the job */
        if (res)
            evutil_freeaddrinfo(res);
        return;
    }
    d = j->d;
    j->dns_req = NULL;
    job_unlink(d, j);
    if (err || !res) {
        snprintf(msg, sizeof msg, "dns: %s", err ? evutil_gai_strerror(err) : "no address");
        finish_later(d, j, 0, msg);
        if (res)
            evutil_freeaddrinfo(res);
        return;
    }
    /* Every address must be acceptable, not only the first: a name with one public and one
     * private address could otherwise be steered. */
    for (struct evutil_addrinfo *a = res; a; a = a->ai_next) {
        ex_wh_addr_class cls = ex_wh_sockaddr_class(a->ai_addr);
        if (cls == EX_WH_ADDR_PRIVATE || (cls == EX_WH_ADDR_LOOPBACK && !j->allow_loopback)) {
            evutil_freeaddrinfo(res);
            finish_later(d, j, 0, not_public);
            return;
        }
    }
    const void *addr = res->ai_family == AF_INET6
                           ? (const void *)&((struct sockaddr_in6 *)(void *)res->ai_addr)->sin6_addr
                           : (const void *)&((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr;
    const char *text = evutil_inet_ntop(res->ai_family, addr, ip, sizeof ip);
    evutil_freeaddrinfo(res);
    if (!text) {
        finish_later(d, j, 0, "dns: unusable address");
        return;
    }
    send_request(d, j, ip);
}

/* Parses the job's URL; for an IP literal it checks the address class and sends at once, for
 * a name it resolves first (asynchronously, counted as in flight) and checks every address
 * the name leads to: the registration-time check alone would let a name re-pointed at an
 * internal address (DNS rebinding) through. */
static void start(ex_webhook_dispatcher *d, job *j)
{
    struct evhttp_uri *u = evhttp_uri_parse(j->url);
    const char *fail = NULL;
    char portstr[8];
    j->started_ms = core_clock_now_ms(d->clock);
    if (!u) {
        fail = "invalid url";
        goto out;
    }
    const char *scheme = evhttp_uri_get_scheme(u), *hst = evhttp_uri_get_host(u);
    const char *p = evhttp_uri_get_path(u), *q = evhttp_uri_get_query(u);
    size_t hl = hst ? strlen(hst) : 0;
    j->https = scheme && strcasecmp(scheme, "https") == 0;
    j->port = evhttp_uri_get_port(u);
    if (!hl || hl + 1 > sizeof j->host) {
        fail = "invalid url";
        goto out;
    }
    memcpy(j->host, hst, hl + 1);
    if (hl >= 2 && j->host[0] == '[' && j->host[hl - 1] == ']') {
        memmove(j->host, j->host + 1, hl - 2);
        j->host[hl - 2] = '\0';
    }
    if (strchr(j->host, ':'))
        snprintf(j->hosthdr, sizeof j->hosthdr, "[%s]", j->host); /* RFC 7230 §5.4 */
    else
        snprintf(j->hosthdr, sizeof j->hosthdr, "%s", j->host);
    if (j->port > 0) {
        size_t n = strlen(j->hosthdr);
        snprintf(j->hosthdr + n, sizeof j->hosthdr - n, ":%d", j->port);
    } else {
        j->port = j->https ? 443 : 80;
    }
    snprintf(j->path, sizeof j->path, "%s%s%s", p && *p ? p : "/", q ? "?" : "", q ? q : "");
    int literal = 0;
    ex_wh_addr_class cls = ex_wh_host_class(j->host, &literal);
    if (literal) {
        if (cls == EX_WH_ADDR_PRIVATE || (cls == EX_WH_ADDR_LOOPBACK && !j->allow_loopback)) {
            fail = not_public;
            goto out;
        }
        evhttp_uri_free(u);
        send_request(d, j, j->host);
        return;
    }
    if (!d->dns) {
        fail = "dns: no resolver";
        goto out;
    }
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    snprintf(portstr, sizeof portstr, "%d", j->port);
    evhttp_uri_free(u);
    job_link(d, j); /* resolving counts against max_in_flight */
    /* The callback may run before this returns (hosts file, numeric forms): then the request
     * handle is NULL and j may already be gone, so j is not touched afterwards. */
    struct evdns_getaddrinfo_request *r =
        evdns_getaddrinfo(d->dns, j->host, portstr, &hints, on_resolved, j);
    if (r)
        j->dns_req = r;
    return;
out:
    if (u)
        evhttp_uri_free(u);
    record_attempt(d, j, 0, fail); /* takes j */
}

/* ---- the dispatcher ---- */

static void reap(ex_webhook_dispatcher *d)
{
    for (size_t i = 0; i < d->ndead; i++)
        evhttp_connection_free(d->dead[i]);
    d->ndead = 0;
}

pl_rc ex_webhook_dispatcher_kick(ex_webhook_dispatcher *d, int *started)
{
    job *list = NULL;
    int n = 0;
    pl_rc rc = PL_OK;
    if (started)
        *started = 0;
    if (!d)
        return PL_ERR_INVALID;
    reap(d);
    int slots = d->o.max_in_flight - d->in_flight;
    if (slots <= 0)
        return PL_OK;
    rc = claim(d, slots, &list);
    while (list) {
        job *next = list->next;
        list->next = NULL;
        start(d, list);
        n++;
        list = next;
    }
    if (started)
        *started = n;
    return rc;
}

#define PURGE_SCAN_PER_TICK 2000

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    ex_webhook_dispatcher *d = arg;
    (void)fd;
    (void)what;
    ex_webhook_dispatcher_kick(d, NULL);
    if (d->o.retention_ms > 0) {
        size_t n = 0;
        pl_rc rc = ex_webhook_purge(d->st, core_clock_now_ms(d->clock) - d->o.retention_ms,
                                    PURGE_SCAN_PER_TICK, d->purge_resume, &n);
        if (rc != PL_OK)
            core_log_warn(d->log, "webhook purge failed: %s", pl_strerror(rc));
        else if (n)
            core_log_info(d->log, "webhook purge removed=%zu", n);
    }
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    ex_webhook_dispatcher *d = arg;
    (void)fd;
    (void)what;
    job *list = d->finished;
    d->finished = NULL;
    record_jobs(d, list);
    /* Finished requests freed slots: refill them with what is due. */
    ex_webhook_dispatcher_kick(d, NULL);
}

/* The client context: TLS 1.2 or later, the peer verified (chain and, per connection, name)
 * against the system CA store plus ca_file when given. Built once per dispatcher. */
static pl_rc tls_context_new(const char *ca_file, SSL_CTX **out)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    pl_rc rc = PL_ERR_INVALID;
    *out = NULL;
    if (!ctx)
        return PL_ERR_NOMEM;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        goto out;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_AUTO_RETRY);
    /* A machine without a CA store still works with ca_file alone: not an error here; every
     * public receiver then fails verification, which the deliveries record. */
    (void)SSL_CTX_set_default_verify_paths(ctx);
    if (ca_file && SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)
        goto out;
    *out = ctx;
    ctx = NULL;
    rc = PL_OK;
out:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return rc;
}

pl_rc ex_webhook_dispatcher_new(struct event_base *base, ex_store *st, const core_clock *clock,
                                const core_log *log, const ex_webhook_options *opt,
                                ex_webhook_dispatcher **out)
{
    ex_webhook_dispatcher *d;
    if (!base || !st || !out)
        return PL_ERR_INVALID;
    *out = NULL;
    d = calloc(1, sizeof *d);
    if (!d)
        return PL_ERR_NOMEM;
    d->base = base;
    d->st = st;
    d->clock = clock;
    d->log = log;
    if (opt)
        d->o = *opt;
    else
        ex_webhook_options_default(&d->o);
    if (d->o.max_in_flight < 1 || d->o.max_in_flight > 1024 || d->o.timeout_ms < 1 ||
        d->o.max_attempts < 1 || d->o.backoff_base_ms < 1 ||
        d->o.backoff_max_ms < d->o.backoff_base_ms || d->o.poll_ms < 1 || d->o.lease_ms < 0 ||
        d->o.retention_ms < 0) {
        free(d);
        return PL_ERR_INVALID;
    }
    if (tls_context_new(d->o.ca_file, &d->tls) != PL_OK) {
        core_log_error(log, "webhook: cannot set up TLS (%s)",
                       d->o.ca_file ? "ca_file unreadable or not PEM certificates" : "no memory");
        free(d);
        return PL_ERR_INVALID;
    }
    d->dns =
        evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    d->timer = event_new(base, -1, EV_PERSIST, on_timer, d);
    d->reaper = event_new(base, -1, 0, on_reap, d);
    if (!d->timer || !d->reaper) {
        ex_webhook_dispatcher_free(d);
        return PL_ERR_NOMEM;
    }
    struct timeval tv = {(time_t)(d->o.poll_ms / 1000), (suseconds_t)(d->o.poll_ms % 1000) * 1000};
    event_add(d->timer, &tv);
    *out = d;
    return PL_OK;
}

void ex_webhook_dispatcher_free(ex_webhook_dispatcher *d)
{
    if (!d)
        return;
    /* Answers already in are recorded. Requests in flight are dropped without callbacks;
     * their claims come back when the lease ends and another dispatcher (or this one,
     * restarted) sends them again. */
    record_jobs(d, d->finished);
    d->finished = NULL;
    while (d->jobs) {
        job *j = d->jobs;
        job_unlink(d, j);
        if (j->dns_req)
            evdns_getaddrinfo_cancel(j->dns_req); /* its callback returns at once */
        if (j->conn)
            evhttp_connection_free(j->conn);
        job_free(j);
    }
    reap(d);
    free(d->dead);
    if (d->timer)
        event_free(d->timer);
    if (d->reaper)
        event_free(d->reaper);
    if (d->dns)
        evdns_base_free(d->dns, 0);
    SSL_CTX_free(d->tls);
    free(d);
}

int ex_webhook_dispatcher_in_flight(const ex_webhook_dispatcher *d)
{
    return d ? d->in_flight : 0;
}

void ex_webhook_dispatcher_stats(const ex_webhook_dispatcher *d, ex_webhook_stats *out)
{
    if (!out)
        return;
    if (!d)
        memset(out, 0, sizeof *out);
    else
        *out = d->stats;
}
