/* tests/exec/test_webhook_tls.c — https webhook delivery over real TLS: the test makes a
 * throwaway CA and server certificates with OpenSSL's APIs (into a mkdtemp directory), runs an
 * https receiver (evhttp with an SSL bufferevent per connection) on 127.0.0.1 port 0 in its own
 * event loop, and delivers: with the test CA trusted (delivered, signature verified by the
 * receiver, SNI seen for a name), without it (a verification failure recorded and retried per
 * policy until it fails), with a certificate for another name or address (refused), to a
 * server that only speaks TLS 1.1 (refused), and with an unusable ca_file (dispatcher_new
 * refuses). No sleeps: the loop runs until the dispatcher has nothing in flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include "core/clock.h"
#include "exec/store.h"
#include "exec/webhook.h"
#include "tests/exec/helpers.h"

#define T0 1795910400000LL /* 2026-11-29T00:00:00Z (the fake clock; X.509 uses real time) */
#define WS "wsp_tls"

/* ---- a throwaway PKI ---- */

typedef struct pki {
    EVP_PKEY *ca_key;
    X509 *ca;
    char ca_file[300]; /* the CA certificate, PEM */
} pki;

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/* A certificate for key: self-signed CA when issuer is NULL, else a server certificate with
 * subjectAltName san signed by issuer. Valid from an hour ago for a day (real time). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                       const char *san)
{
    static long serial = 1;
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    if (!issuer) {
        add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
        add_ext(x, x, NID_subject_key_identifier, "hash");
    } else {
        add_ext(x, issuer, NID_basic_constraints, "CA:FALSE");
        add_ext(x, issuer, NID_ext_key_usage, "serverAuth");
        add_ext(x, issuer, NID_subject_alt_name, san);
    }
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static void pki_init(pki *p, const char *dir)
{
    p->ca_key = EVP_EC_gen("P-256");
    assert_non_null(p->ca_key);
    p->ca = make_cert(p->ca_key, "Postly Test CA", NULL, NULL, NULL);
    snprintf(p->ca_file, sizeof p->ca_file, "%s/ca.pem", dir);
    FILE *fp = fopen(p->ca_file, "w");
    assert_non_null(fp);
    assert_int_equal(PEM_write_X509(fp, p->ca), 1);
    fclose(fp);
}

static void pki_free(pki *p)
{
    X509_free(p->ca);
    EVP_PKEY_free(p->ca_key);
}

/* A server context with a fresh key and a certificate for san, issued by the test CA.
 * max_version 0: the default. */
static SSL_CTX *server_ctx(const pki *p, const char *san, int max_version)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    X509 *cert = make_cert(key, "receiver", p->ca, p->ca_key, san);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    if (max_version) {
        SSL_CTX_set_security_level(ctx, 0); /* let the old protocol be offered at all */
        assert_int_equal(SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION), 1);
        assert_int_equal(SSL_CTX_set_max_proto_version(ctx, max_version), 1);
    }
    assert_int_equal(SSL_CTX_use_certificate(ctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ctx;
}

/* ---- fixture ---- */

typedef struct fx {
    th_env env; /* store, fake clock, ctx (tests/exec/helpers.h) */
    struct event_base *base;
    pki pki;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    th_env_open(&f->env);
    core_fake_clock_init(&f->env.clock, T0);
    f->base = event_base_new();
    assert_non_null(f->base);
    pki_init(&f->pki, f->env.dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    pki_free(&f->pki);
    event_base_free(f->base);
    th_env_free(&f->env);
    free(f);
    return 0;
}

static const ex_webhook_url_policy dev = {1};

/* ---- an https receiver ---- */

typedef struct receiver {
    struct evhttp *http;
    SSL_CTX *ctx;
    int port;
    char secret[EX_WEBHOOK_SECRET_SIZE];
    core_fake_clock *clock;
    int count, bad_sig;
    char sni[64]; /* the server name the last client sent ("" when none) */
} receiver;

static struct bufferevent *on_accept(struct event_base *base, void *arg)
{
    receiver *r = arg;
    SSL *ssl = SSL_new(r->ctx);
    assert_non_null(ssl);
    return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static void on_hook(struct evhttp_request *req, void *arg)
{
    receiver *r = arg;
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char body[4096];
    const char *ts = evhttp_find_header(h, "Postly-Webhook-Timestamp");
    const char *sig = evhttp_find_header(h, "Postly-Webhook-Signature");
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evhttp_request_get_connection(req));
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    const char *sni = ssl ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
    snprintf(r->sni, sizeof r->sni, "%s", sni ? sni : "");
    if (len >= sizeof body)
        len = sizeof body - 1;
    evbuffer_copyout(in, body, len);
    body[len] = '\0';
    if (!ssl || !ts || !sig ||
        ex_webhook_verify_signature(r->secret, ts, sig, body, len,
                                    core_clock_now_s(&r->clock->base), 300) != PL_OK)
        r->bad_sig++;
    r->count++;
    evhttp_send_reply(req, 200, "OK", NULL);
}

static void receiver_start(fx *f, receiver *r, const char *san, int max_version)
{
    memset(r, 0, sizeof *r);
    r->clock = &f->env.clock;
    r->ctx = server_ctx(&f->pki, san, max_version);
    r->http = evhttp_new(f->base);
    assert_non_null(r->http);
    evhttp_set_bevcb(r->http, on_accept, r);
    evhttp_set_gencb(r->http, on_hook, r);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(r->http, "127.0.0.1", 0);
    assert_non_null(bs);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl), 0);
    r->port = ntohs(sa.sin_port);
}

static void receiver_stop(receiver *r)
{
    evhttp_free(r->http);
    SSL_CTX_free(r->ctx);
}

/* ---- helpers ---- */

static void create_hook(fx *f, const char *url, char *id, char *secret)
{
    json_t *args = json_pack("{s:s, s:[s]}", "url", url, "events", "post.published");
    json_t *out = NULL;
    ex_err err = {0};
    if (ex_webhook_create(&f->env.ctx, WS, args, &dev, &out, &err) != PL_OK)
        fail_msg("create %s: %s", url, err.msg);
    snprintf(id, EX_ID_MAX, "%s", json_string_value(json_object_get(out, "id")));
    snprintf(secret, EX_WEBHOOK_SECRET_SIZE, "%s",
             json_string_value(json_object_get(out, "secret")));
    json_decref(out);
    json_decref(args);
}

static void enqueue(fx *f, const char *post_id)
{
    ex_txn txn;
    json_t *data = json_pack("{s:s}", "post_id", post_id);
    assert_int_equal(ex_txn_begin(f->env.st, 1, &txn), PL_OK);
    assert_int_equal(ex_webhook_enqueue(&f->env.ctx, &txn, WS, "post.published", data), PL_OK);
    assert_int_equal(ex_txn_commit(&txn), PL_OK);
    json_decref(data);
}

/* The delivery record of the only delivery of webhook id (new reference). */
static json_t *delivery(fx *f, const char *id)
{
    json_t *args = json_pack("{s:s}", "webhook_id", id), *out = NULL;
    ex_err err = {0};
    assert_int_equal(ex_webhook_deliveries(&f->env.ctx, WS, args, &out, &err), PL_OK);
    json_decref(args);
    json_t *items = json_object_get(out, "items");
    assert_int_equal(json_array_size(items), 1);
    json_t *d = json_incref(json_array_get(items, 0));
    json_decref(out);
    return d;
}

static ex_webhook_options test_options(const char *ca_file)
{
    ex_webhook_options o;
    ex_webhook_options_default(&o);
    o.timeout_ms = 10000;
    o.max_attempts = 3;
    o.backoff_base_ms = 1000;
    o.backoff_max_ms = 8000;
    o.poll_ms = 3600000LL; /* the tests kick explicitly */
    o.lease_ms = 1000;
    o.ca_file = ca_file;
    return o;
}

static void run_until_idle(fx *f, ex_webhook_dispatcher *d)
{
    while (ex_webhook_dispatcher_in_flight(d) > 0)
        event_base_loop(f->base, EVLOOP_ONCE);
    event_base_loop(f->base, EVLOOP_NONBLOCK); /* let the reaper run */
}

/* One delivery to url through a fresh dispatcher with ca_file; returns its record. */
static json_t *deliver_once(fx *f, receiver *r, const char *url, const char *ca_file)
{
    char id[EX_ID_MAX];
    create_hook(f, url, id, r->secret);
    enqueue(f, "pst_1");
    ex_webhook_options o = test_options(ca_file);
    ex_webhook_dispatcher *d = NULL;
    int started = 0;
    assert_int_equal(
        ex_webhook_dispatcher_new(f->base, f->env.st, &f->env.clock.base, NULL, &o, &d), PL_OK);
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 1);
    run_until_idle(f, d);
    ex_webhook_dispatcher_free(d);
    return delivery(f, id);
}

static const char *last_error(const json_t *dl)
{
    return json_string_value(json_object_get(dl, "last_error"));
}

/* ---- tests ---- */

static void test_trusted_ca_delivers(void **state)
{
    fx *f = *state;
    receiver r;
    char url[128];
    receiver_start(f, &r, "IP:127.0.0.1", 0);
    snprintf(url, sizeof url, "https://127.0.0.1:%d/hooks/postly?src=tls", r.port);
    json_t *dl = deliver_once(f, &r, url, f->pki.ca_file);
    assert_string_equal(json_string_value(json_object_get(dl, "status")), "delivered");
    assert_null(last_error(dl));
    assert_int_equal(r.count, 1);
    assert_int_equal(r.bad_sig, 0);
    assert_string_equal(r.sni, ""); /* RFC 6066 §3: no SNI for an IP literal */
    json_decref(dl);
    receiver_stop(&r);
}

static void test_trusted_ca_by_name_sends_sni(void **state)
{
    fx *f = *state;
    receiver r;
    char url[128];
    receiver_start(f, &r, "DNS:localhost", 0);
    snprintf(url, sizeof url, "https://localhost:%d/hook", r.port);
    json_t *dl = deliver_once(f, &r, url, f->pki.ca_file);
    assert_string_equal(json_string_value(json_object_get(dl, "status")), "delivered");
    assert_int_equal(r.count, 1);
    assert_int_equal(r.bad_sig, 0);
    assert_string_equal(r.sni, "localhost");
    json_decref(dl);
    receiver_stop(&r);
}

static void test_untrusted_ca_fails_and_retries(void **state)
{
    fx *f = *state;
    receiver r;
    char url[128], id[EX_ID_MAX];
    receiver_start(f, &r, "IP:127.0.0.1", 0);
    snprintf(url, sizeof url, "https://127.0.0.1:%d/hook", r.port);
    create_hook(f, url, id, r.secret);
    enqueue(f, "pst_1");
    ex_webhook_options o = test_options(NULL); /* the system store alone */
    ex_webhook_dispatcher *d = NULL;
    int started = 0;
    assert_int_equal(
        ex_webhook_dispatcher_new(f->base, f->env.st, &f->env.clock.base, NULL, &o, &d), PL_OK);
    for (int attempt = 1; attempt <= o.max_attempts; attempt++) {
        assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
        assert_int_equal(started, 1);
        run_until_idle(f, d);
        json_t *dl = delivery(f, id);
        assert_string_equal(last_error(dl), "tls: certificate verification failed: unable to get "
                                            "local issuer certificate");
        assert_int_equal(json_integer_value(json_object_get(dl, "attempts")), attempt);
        json_t *a = json_array_get(json_object_get(dl, "last"), (size_t)attempt - 1);
        assert_int_equal(json_integer_value(json_object_get(a, "status_code")), 0);
        assert_string_equal(json_string_value(json_object_get(dl, "status")),
                            attempt < o.max_attempts ? "pending" : "failed");
        json_decref(dl);
        /* nothing is due before the backoff (base 1 s * 2^(n-1), -20%) */
        assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
        assert_int_equal(started, 0);
        core_fake_clock_advance(&f->env.clock, o.backoff_max_ms * 2);
    }
    assert_int_equal(r.count, 0); /* the request never went out */
    ex_webhook_stats s;
    ex_webhook_dispatcher_stats(d, &s);
    assert_int_equal(s.attempts, 3);
    assert_int_equal(s.retried, 2);
    assert_int_equal(s.failed, 1);
    ex_webhook_dispatcher_free(d);
    receiver_stop(&r);
}

static void test_wrong_name_refused(void **state)
{
    fx *f = *state;
    receiver r;
    char url[128];
    /* a valid certificate from a trusted CA, for another name, reached by address */
    receiver_start(f, &r, "DNS:hooks.example.com", 0);
    snprintf(url, sizeof url, "https://127.0.0.1:%d/hook", r.port);
    json_t *dl = deliver_once(f, &r, url, f->pki.ca_file);
    assert_string_equal(json_string_value(json_object_get(dl, "status")), "pending");
    assert_string_equal(last_error(dl),
                        "tls: certificate verification failed: IP address mismatch");
    json_decref(dl);
    assert_int_equal(r.count, 0);
    receiver_stop(&r);
}

static void test_wrong_hostname_refused(void **state)
{
    fx *f = *state;
    receiver r;
    char url[128];
    /* reached by name; the certificate names only the address */
    receiver_start(f, &r, "IP:127.0.0.1", 0);
    snprintf(url, sizeof url, "https://localhost:%d/hook", r.port);
    json_t *dl = deliver_once(f, &r, url, f->pki.ca_file);
    assert_string_equal(json_string_value(json_object_get(dl, "status")), "pending");
    assert_string_equal(last_error(dl), "tls: certificate verification failed: hostname mismatch");
    json_decref(dl);
    assert_int_equal(r.count, 0);
    receiver_stop(&r);
}

static void test_old_protocol_refused(void **state)
{
    fx *f = *state;
    receiver r;
    char url[128];
    receiver_start(f, &r, "IP:127.0.0.1", TLS1_1_VERSION);
    snprintf(url, sizeof url, "https://127.0.0.1:%d/hook", r.port);
    json_t *dl = deliver_once(f, &r, url, f->pki.ca_file);
    assert_string_equal(json_string_value(json_object_get(dl, "status")), "pending");
    assert_non_null(last_error(dl));
    assert_memory_equal(last_error(dl), "tls: ", 5);
    json_decref(dl);
    assert_int_equal(r.count, 0);
    receiver_stop(&r);
}

static void test_bad_ca_file(void **state)
{
    fx *f = *state;
    char path[300];
    ex_webhook_dispatcher *d = NULL;
    snprintf(path, sizeof path, "%s/missing.pem", f->env.dir);
    ex_webhook_options o = test_options(path);
    assert_int_equal(
        ex_webhook_dispatcher_new(f->base, f->env.st, &f->env.clock.base, NULL, &o, &d),
        PL_ERR_INVALID);
    assert_null(d);
    snprintf(path, sizeof path, "%s/junk.pem", f->env.dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("not a certificate\n", fp);
    fclose(fp);
    o = test_options(path);
    assert_int_equal(
        ex_webhook_dispatcher_new(f->base, f->env.st, &f->env.clock.base, NULL, &o, &d),
        PL_ERR_INVALID);
    assert_null(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_trusted_ca_delivers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trusted_ca_by_name_sends_sni, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untrusted_ca_fails_and_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_name_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_hostname_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_protocol_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_ca_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
