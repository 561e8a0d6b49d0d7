/* tests/keys/test_fetch.c — key_jwks_fetch_http (liboauth2's HTTP client) against a real HTTP
 * server on 127.0.0.1, port 0, and a verifier whose keys come from that jwks_uri. */
#define _XOPEN_SOURCE 700
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "core/clock.h"
#include "keys/keyset.h"
#include "keys/token.h"
#include "keys/verify.h"

#include "helpers.h"

/* A one-thread HTTP/1.1 server: answers every connection with `status` and `body`, then
 * closes it. Serves until `remaining` connections were answered. */
typedef struct srv {
    int fd;
    int port;
    int remaining;
    int status;
    const char *body;
    size_t body_len;
    int requests;
    pthread_t thread;
} srv;

static void *serve(void *arg)
{
    srv *s = arg;
    while (s->remaining-- > 0) {
        char req[4096], head[256];
        size_t got = 0;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            break;
        while (got + 1 < sizeof req) {
            ssize_t r = read(c, req + got, sizeof req - 1 - got);
            if (r <= 0)
                break;
            got += (size_t)r;
            req[got] = '\0';
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        if (strncmp(req, "GET /jwks ", 10) == 0)
            s->requests++;
        snprintf(head, sizeof head,
                 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n",
                 s->status, s->body_len);
        if (write(c, head, strlen(head)) < 0 || write(c, s->body, s->body_len) < 0)
            s->remaining = 0;
        close(c);
    }
    return NULL;
}

static void srv_start(srv *s, int connections, int status, const char *body, size_t len)
{
    struct sockaddr_in a = {0};
    socklen_t al = sizeof a;
    memset(s, 0, sizeof *s);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->fd, 8), 0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    s->remaining = connections;
    s->status = status;
    s->body = body;
    s->body_len = len;
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void srv_stop(srv *s)
{
    shutdown(s->fd, SHUT_RDWR); /* wakes accept() if connections are left */
    pthread_join(s->thread, NULL);
    close(s->fd);
}

typedef struct fx {
    char root[256], data[300];
    core_fake_clock clock;
    key_keyset *ks;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    key_keyset_cfg cfg = {0};
    key_error err;
    temp_data(f->root, f->data);
    core_fake_clock_init(&f->clock, T_START_MS);
    cfg.data_dir = f->data;
    cfg.clock = &f->clock.base;
    cfg.create = 1;
    if (key_keyset_open(&cfg, &f->ks, &err) != PL_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    key_keyset_free(f->ks);
    rm_tree(f->root);
    free(f);
    return 0;
}

static void test_fetch_ok_and_verify(void **state)
{
    fx *f = *state;
    char *jwks = NULL, url[64], tok[KEY_TOKEN_MAX], *got = NULL;
    size_t len = 0, glen = 0;
    srv s;
    key_verifier *v = NULL;
    key_verified out;
    key_reason r;
    key_claims c = {.iss = T_ISS,
                    .sub = "u",
                    .aud = T_AUD,
                    .client_id = "c",
                    .scope = "posts:read",
                    .ws = "w",
                    .gid = "g",
                    .cls = "ai"};
    key_verifier_cfg cfg = {.issuer = T_ISS,
                            .audience = T_AUD,
                            .clock = &f->clock.base,
                            .fetch = key_jwks_fetch_http,
                            .fetch_ctx = url};

    assert_int_equal(key_keyset_jwks(f->ks, &jwks, &len), PL_OK);
    srv_start(&s, 2, 200, jwks, len);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/jwks", s.port);
    assert_int_equal(key_jwks_fetch_http(url, &got, &glen), PL_OK);
    assert_int_equal(glen, len);
    assert_string_equal(got, jwks);
    free(got);
    /* a verifier whose keys come from the jwks_uri */
    assert_int_equal(key_verifier_new(&cfg, &v), PL_OK);
    assert_int_equal(key_token_mint(f->ks, &f->clock.base, &c, tok, sizeof tok, NULL, NULL), PL_OK);
    assert_int_equal(key_verifier_verify(v, tok, strlen(tok), &out, &r), PL_OK);
    assert_string_equal(out.sub, "u");
    srv_stop(&s);
    assert_int_equal(s.requests, 2);
    key_verifier_free(v);
    free(jwks);
}

static void test_fetch_errors(void **state)
{
    char url[64], *got = NULL, *big;
    size_t glen = 0;
    srv s;
    (void)state;
    srv_start(&s, 1, 404, "{}", 2);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/jwks", s.port);
    assert_int_equal(key_jwks_fetch_http(url, &got, &glen), PL_ERR_IO);
    assert_null(got);
    srv_stop(&s);
    /* nobody listens there any more */
    assert_int_equal(key_jwks_fetch_http(url, &got, &glen), PL_ERR_IO);
    /* a document over KEY_JWKS_MAX */
    big = malloc(KEY_JWKS_MAX + 2);
    memset(big, ' ', KEY_JWKS_MAX + 1);
    big[KEY_JWKS_MAX + 1] = '\0';
    srv_start(&s, 1, 200, big, KEY_JWKS_MAX + 1);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/jwks", s.port);
    assert_int_equal(key_jwks_fetch_http(url, &got, &glen), PL_ERR_TOO_LARGE);
    srv_stop(&s);
    free(big);
    assert_int_equal(key_jwks_fetch_http(NULL, &got, &glen), PL_ERR_INVALID);
}

int main(void)
{
    /* loopback only: curl must not send these requests to a proxy from the environment */
    static const char *const proxies[] = {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof proxies / sizeof proxies[0]; i++)
        unsetenv(proxies[i]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fetch_ok_and_verify, setup, teardown),
        cmocka_unit_test(test_fetch_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
