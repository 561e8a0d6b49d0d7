/*
 * exec/webhook.c — webhook subscriptions (services), the transactional outbox
 * (ex_webhook_enqueue) and signatures. The dispatcher lives in exec/webhook_dispatch.c; both
 * share the record layout described in exec/webhook_int.h.
 */
#include "webhook.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>

#include "core/crypto.h"
#include "exec/args.h"
#include "exec/obj.h"
#include "exec/webhook_int.h"

static const ex_obj_type webhooks = {EX_DB_WEBHOOKS, EX_WH_KIND_WEBHOOK, "webhook_id", "webhook"};

/* ---- event types (a table: a new type is a row) ---- */

static const char *const event_types[] = {
    "post.scheduled",
    "post.published",
    "post.partially_published",
    "post.failed",
    "post.unconfirmed",
    "media.ready",
    "webhook.test",
    NULL,
};

int ex_webhook_event_known(const char *type)
{
    for (size_t i = 0; type && event_types[i]; i++)
        if (strcmp(type, event_types[i]) == 0)
            return 1;
    return 0;
}

/* ---- receiver URLs ---- */

/* IPv4 ranges a webhook must never reach (SSRF): RFC 1918, RFC 6598, link-local (cloud
 * metadata lives at 169.254.169.254), "this network", multicast and reserved. */
static const struct {
    uint32_t net, mask;
    ex_wh_addr_class cls;
} v4_ranges[] = {
    {0x7f000000, 0xff000000, EX_WH_ADDR_LOOPBACK}, /* 127.0.0.0/8 */
    {0x00000000, 0xff000000, EX_WH_ADDR_PRIVATE},  /* 0.0.0.0/8 */
    {0x0a000000, 0xff000000, EX_WH_ADDR_PRIVATE},  /* 10.0.0.0/8 */
    {0x64400000, 0xffc00000, EX_WH_ADDR_PRIVATE},  /* 100.64.0.0/10 */
    {0xa9fe0000, 0xffff0000, EX_WH_ADDR_PRIVATE},  /* 169.254.0.0/16 */
    {0xac100000, 0xfff00000, EX_WH_ADDR_PRIVATE},  /* 172.16.0.0/12 */
    {0xc0a80000, 0xffff0000, EX_WH_ADDR_PRIVATE},  /* 192.168.0.0/16 */
    {0xe0000000, 0xe0000000, EX_WH_ADDR_PRIVATE},  /* 224.0.0.0/3: multicast and reserved */
};

static ex_wh_addr_class classify_v4(uint32_t a)
{
    for (size_t i = 0; i < sizeof v4_ranges / sizeof v4_ranges[0]; i++)
        if ((a & v4_ranges[i].mask) == v4_ranges[i].net)
            return v4_ranges[i].cls;
    return EX_WH_ADDR_PUBLIC;
}

static ex_wh_addr_class classify_v6(const uint8_t b[16])
{
    static const uint8_t loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t zero12[12] = {0};
    if (memcmp(b, loop6, 16) == 0)
        return EX_WH_ADDR_LOOPBACK;
    if (memcmp(b, mapped, 12) == 0)
        return classify_v4((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 |
                           b[15]);
    /* ::/96 (unspecified, compatible), fc00::/7 unique local, fe80::/10 link-local,
     * ff00::/8 multicast */
    if (memcmp(b, zero12, 12) == 0 || (b[0] & 0xfe) == 0xfc ||
        (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || b[0] == 0xff)
        return EX_WH_ADDR_PRIVATE;
    return EX_WH_ADDR_PUBLIC;
}

ex_wh_addr_class ex_wh_sockaddr_class(const struct sockaddr *sa)
{
    if (sa && sa->sa_family == AF_INET)
        return classify_v4(ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr));
    if (sa && sa->sa_family == AF_INET6)
        return classify_v6(((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr);
    return EX_WH_ADDR_PRIVATE;
}

ex_wh_addr_class ex_wh_host_class(const char *host, int *is_literal)
{
    char buf[256];
    size_t n = strlen(host);
    struct in_addr a4;
    struct in6_addr a6;
    if (is_literal)
        *is_literal = 1;
    if (n >= sizeof buf)
        return EX_WH_ADDR_PRIVATE;
    memcpy(buf, host, n + 1);
    if (n >= 2 && buf[0] == '[' && buf[n - 1] == ']') {
        memmove(buf, buf + 1, n - 2);
        buf[n - 2] = '\0';
    }
    /* inet_aton, not inet_pton: it also reads the legacy forms "127.1", "0x7f000001" and
     * "2130706433" that getaddrinfo() accepts as addresses, which would otherwise slip past
     * as "names". */
    if (inet_aton(buf, &a4) != 0)
        return classify_v4(ntohl(a4.s_addr));
    if (inet_pton(AF_INET6, buf, &a6) == 1)
        return classify_v6(a6.s6_addr);
    if (is_literal)
        *is_literal = 0;
    /* RFC 6761 §6.3: "localhost" and names under it are loopback. */
    if (strcasecmp(buf, "localhost") == 0 ||
        (n > 10 && strcasecmp(buf + n - 10, ".localhost") == 0))
        return EX_WH_ADDR_LOOPBACK;
    return EX_WH_ADDR_PUBLIC;
}

pl_rc ex_wh_url_check(const char *url, const ex_webhook_url_policy *policy, const char *field,
                      ex_err *err)
{
    struct evhttp_uri *u = NULL;
    pl_rc rc = PL_ERR_INVALID;
    size_t n = url ? strlen(url) : 0;
    if (n == 0)
        return ex_err_set(err, PL_ERR_INVALID, field, "required");
    if (n > EX_WEBHOOK_URL_MAX)
        return ex_err_set(err, PL_ERR_TOO_LARGE, field, "%zu bytes exceeds the limit of %d", n,
                          EX_WEBHOOK_URL_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
            return ex_err_set(err, PL_ERR_INVALID, field,
                              "must be printable ASCII without spaces (byte %zu)", i);
    u = evhttp_uri_parse_with_flags(url, 0);
    if (!u) {
        ex_err_set(err, rc, field, "not a valid absolute URL");
        goto out;
    }
    const char *scheme = evhttp_uri_get_scheme(u), *host = evhttp_uri_get_host(u);
    int https = scheme && strcasecmp(scheme, "https") == 0;
    int http = scheme && strcasecmp(scheme, "http") == 0;
    if (!https && !http) {
        ex_err_set(err, rc, field, "must be an https:// URL");
        goto out;
    }
    if (!host || !*host) {
        ex_err_set(err, rc, field, "has no host");
        goto out;
    }
    if (evhttp_uri_get_userinfo(u)) {
        ex_err_set(err, rc, field, "must not contain credentials (user:password@)");
        goto out;
    }
    if (evhttp_uri_get_fragment(u)) {
        ex_err_set(err, rc, field, "must not contain a fragment (#...)");
        goto out;
    }
    if (evhttp_uri_get_port(u) == 0) {
        ex_err_set(err, rc, field, "port 0 is not a valid port");
        goto out;
    }
    ex_wh_addr_class cls = ex_wh_host_class(host, NULL);
    int allow_loop = policy && policy->allow_http_loopback;
    if (cls == EX_WH_ADDR_PRIVATE) {
        ex_err_set(err, rc, field,
                   "private, link-local and reserved addresses are not allowed receivers");
        goto out;
    }
    if (cls == EX_WH_ADDR_LOOPBACK && !allow_loop) {
        ex_err_set(err, rc, field, "loopback receivers are only allowed in development");
        goto out;
    }
    if (http && cls != EX_WH_ADDR_LOOPBACK) {
        ex_err_set(err, rc, field,
                   "must be an https:// URL (http only to a loopback host in "
                   "development)");
        goto out;
    }
    rc = PL_OK;
out:
    if (u)
        evhttp_uri_free(u);
    return rc;
}

/* ---- helpers ---- */

static pl_rc new_secret(char *out, size_t outsz)
{
    char tok[CORE_B64URL_SIZE(32)];
    pl_rc rc = core_random_token(tok, sizeof tok, 32);
    if (rc == PL_OK) {
        int n = snprintf(out, outsz, "whsec_%s", tok);
        rc = n > 0 && (size_t)n < outsz ? PL_OK : PL_ERR_TOO_LARGE;
    }
    core_wipe(tok, sizeof tok);
    return rc;
}

/* The events argument: 1..EX_WEBHOOK_EVENTS_MAX known types (or "*"), no duplicates. *out is a
 * new array. */
static pl_rc parse_events(const json_t *args, int required, json_t **out, ex_err *err)
{
    const json_t *v = json_object_get(args, "events");
    size_t i;
    json_t *it;
    *out = NULL;
    if (!v || json_is_null(v))
        return required ? ex_err_set(err, PL_ERR_INVALID, "events", "required") : PL_ERR_NOT_FOUND;
    if (!json_is_array(v) || json_array_size(v) == 0)
        return ex_err_set(err, PL_ERR_INVALID, "events",
                          "must be a non-empty array of event types");
    if (json_array_size(v) > EX_WEBHOOK_EVENTS_MAX)
        return ex_err_set(err, PL_ERR_TOO_LARGE, "events", "%zu types exceeds the limit of %d",
                          json_array_size(v), EX_WEBHOOK_EVENTS_MAX);
    json_array_foreach(v, i, it)
    {
        const char *s = json_string_value(it);
        if (!s || (!ex_webhook_event_known(s) && strcmp(s, "*") != 0)) {
            char list[256] = "";
            size_t off = 0;
            for (size_t k = 0; event_types[k]; k++) {
                int n =
                    snprintf(list + off, sizeof list - off, "%s%s", k ? ", " : "", event_types[k]);
                if (n > 0 && (size_t)n < sizeof list - off)
                    off += (size_t)n;
            }
            char field[32];
            snprintf(field, sizeof field, "events[%zu]", i);
            return ex_err_set(err, PL_ERR_INVALID, field,
                              "unknown event type \"%.40s\" (known: %s, or \"*\")",
                              s ? s : "(not a string)", list);
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(json_string_value(json_array_get(v, k)), s) == 0) {
                char field[32];
                snprintf(field, sizeof field, "events[%zu]", i);
                return ex_err_set(err, PL_ERR_INVALID, field, "duplicate event type \"%s\"", s);
            }
    }
    *out = json_deep_copy(v);
    return *out ? PL_OK : PL_ERR_NOMEM;
}

static json_t *present(const json_t *w, int with_secret)
{
    json_t *o = json_deep_copy(w);
    if (o && !with_secret)
        json_object_del(o, "secret");
    return o;
}

pl_rc ex_wh_scan(ex_txn *txn, ex_db db, const char *prefix, int reverse, const char *upper,
                 ex_wh_scan_fn fn, void *arg)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    size_t pl = strlen(prefix);
    char buf[EX_KEY_MAX + 2];
    int mrc;
    pl_rc rc = PL_OK;
    if (pl + 1 >= sizeof buf)
        return PL_ERR_INVALID;
    if (mdb_cursor_open(txn->mdb, ex_store_dbi(txn->st, db), &cur) != MDB_SUCCESS)
        return PL_ERR_STORE;
    if (reverse) {
        if (upper) {
            k.mv_data = (void *)upper;
            k.mv_size = strlen(upper);
        } else {
            /* '~' sorts after every id character: the first key past the range. */
            snprintf(buf, sizeof buf, "%s~", prefix);
            k.mv_data = buf;
            k.mv_size = pl + 1;
        }
        mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        mrc = mrc == MDB_SUCCESS ? mdb_cursor_get(cur, &k, &v, MDB_PREV)
                                 : mdb_cursor_get(cur, &k, &v, MDB_LAST);
    } else if (pl == 0) {
        mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); /* LMDB refuses an empty key */
    } else {
        snprintf(buf, sizeof buf, "%s", prefix);
        k.mv_data = buf;
        k.mv_size = pl;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    while (mrc == MDB_SUCCESS) {
        if (k.mv_size < pl || memcmp(k.mv_data, prefix, pl) != 0)
            break;
        int r = fn(&k, &v, arg);
        if (r < 0) {
            rc = PL_ERR_STORE;
            break;
        }
        if (r > 0)
            break;
        mrc = mdb_cursor_get(cur, &k, &v, reverse ? MDB_PREV : MDB_NEXT);
    }
    if (rc == PL_OK && mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND)
        rc = PL_ERR_STORE;
    mdb_cursor_close(cur);
    return rc;
}

/* Collects the workspace's subscriptions (parsed) into an array. */
static int collect_cb(const MDB_val *k, const MDB_val *v, void *arg)
{
    (void)k;
    json_t *w = json_loadb(v->mv_data, v->mv_size, 0, NULL);
    if (!w)
        return -1;
    json_array_append_new((json_t *)arg, w);
    return 0;
}

static pl_rc load_all(ex_txn *txn, const char *ws, json_t **out)
{
    char prefix[EX_KEY_MAX + 1];
    int n = snprintf(prefix, sizeof prefix, "%s|%s|", ws, EX_WH_KIND_WEBHOOK);
    *out = json_array();
    if (!*out)
        return PL_ERR_NOMEM;
    if (n < 0 || (size_t)n >= sizeof prefix)
        return PL_ERR_INVALID;
    pl_rc rc = ex_wh_scan(txn, EX_DB_WEBHOOKS, prefix, 0, NULL, collect_cb, *out);
    if (rc != PL_OK) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

static pl_rc check_ws(const ex_ctx *ctx, const char *ws, const json_t *args, ex_err *err)
{
    if (!ctx || !ctx->store)
        return ex_err_set(err, PL_ERR_INVALID, "", "no store");
    if (!ex_ws_valid(ws))
        return ex_err_set(err, PL_ERR_INVALID, "workspace", "not a valid workspace id");
    if (args && !json_is_object(args))
        return ex_err_set(err, PL_ERR_INVALID, "", "arguments must be a JSON object");
    return PL_OK;
}

/* ---- services ---- */

pl_rc ex_webhook_create(const ex_ctx *ctx, const char *ws, const json_t *args,
                        const ex_webhook_url_policy *policy, json_t **out, ex_err *err)
{
    static const char *const allowed[] = {"url", "events", "description", NULL};
    const char *url = NULL, *desc = NULL;
    json_t *events = NULL, *w = NULL, *all = NULL;
    char id[EX_ID_MAX], secret[EX_WEBHOOK_SECRET_SIZE];
    ex_txn txn = {0};
    pl_rc rc;
    *out = NULL;
    secret[0] = '\0';
    if ((rc = check_ws(ctx, ws, args, err)) != PL_OK || (rc = ex_args_only(args, allowed, err)))
        goto out;
    if ((rc = ex_arg_str(args, "url", EX_ARG_REQUIRED, EX_WEBHOOK_URL_MAX, &url, err)) != PL_OK)
        goto out;
    if ((rc = ex_wh_url_check(url, policy, "url", err)) != PL_OK)
        goto out;
    if ((rc = parse_events(args, 1, &events, err)) != PL_OK)
        goto out;
    rc = ex_arg_str(args, "description", EX_ARG_OPTIONAL, EX_WH_DESCRIPTION_MAX, &desc, err);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        goto out;
    if ((rc = ex_id_new(ctx->clock, EX_WH_KIND_WEBHOOK, id, sizeof id)) != PL_OK ||
        (rc = new_secret(secret, sizeof secret)) != PL_OK) {
        ex_err_set(err, rc, "", "cannot create an id or secret");
        goto out;
    }
    /* allow_loopback: what the dispatcher may connect to once it resolves the host (a name
     * registered as public must not resolve to a loopback address later). */
    w = json_pack("{s:s, s:O, s:s?, s:b, s:b, s:s}", "url", url, "events", events, "description",
                  desc, "active", 1, "allow_loopback", policy && policy->allow_http_loopback,
                  "secret", secret);
    if (!w) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    ex_obj_init(w, id, ws, core_clock_now_ms(ctx->clock));
    if ((rc = ex_txn_begin(ctx->store, 1, &txn)) != PL_OK) {
        ex_err_set(err, rc, "", "store unavailable");
        goto out;
    }
    if ((rc = load_all(&txn, ws, &all)) != PL_OK) {
        ex_err_set(err, rc, "", "store error");
        goto out;
    }
    if (json_array_size(all) >= EX_WEBHOOKS_PER_WS_MAX) {
        rc = ex_err_set(err, PL_ERR_LIMIT, "", "a workspace has at most %d webhooks",
                        EX_WEBHOOKS_PER_WS_MAX);
        goto out;
    }
    if ((rc = ex_obj_store(&txn, webhooks.db, ws, webhooks.kind, w)) != PL_OK ||
        (rc = ex_txn_commit(&txn)) != PL_OK) {
        ex_err_set(err, rc, "", "store error");
        goto out;
    }
    *out = present(w, 1); /* the only time the secret leaves the store */
    rc = *out ? PL_OK : PL_ERR_NOMEM;
out:
    ex_txn_abort(&txn);
    core_wipe(secret, sizeof secret);
    json_decref(all);
    json_decref(w);
    json_decref(events);
    return rc;
}

static pl_rc load_one(ex_txn *txn, const char *ws, const json_t *args, json_t **w, ex_err *err)
{
    const char *id = NULL;
    pl_rc rc = ex_arg_id(args, webhooks.field, webhooks.kind, &id, err);
    if (rc != PL_OK)
        return rc;
    return ex_obj_load(txn, webhooks.db, ws, webhooks.kind, id, webhooks.field, webhooks.what, w,
                       err);
}

pl_rc ex_webhook_get(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                     ex_err *err)
{
    static const char *const allowed[] = {"webhook_id", NULL};
    json_t *w = NULL;
    ex_txn txn = {0};
    pl_rc rc;
    *out = NULL;
    if ((rc = check_ws(ctx, ws, args, err)) != PL_OK || (rc = ex_args_only(args, allowed, err)))
        return rc;
    if ((rc = ex_txn_begin(ctx->store, 0, &txn)) != PL_OK)
        return ex_err_set(err, rc, "", "store unavailable");
    rc = load_one(&txn, ws, args, &w, err);
    ex_txn_abort(&txn);
    if (rc == PL_OK) {
        *out = present(w, 0);
        rc = *out ? PL_OK : PL_ERR_NOMEM;
    }
    json_decref(w);
    return rc;
}

pl_rc ex_webhook_list(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                      ex_err *err)
{
    static const char *const allowed[] = {NULL};
    json_t *all = NULL, *items = NULL, *w;
    ex_txn txn = {0};
    size_t i;
    pl_rc rc;
    *out = NULL;
    if ((rc = check_ws(ctx, ws, args, err)) != PL_OK ||
        (args && (rc = ex_args_only(args, allowed, err)) != PL_OK))
        return rc;
    if ((rc = ex_txn_begin(ctx->store, 0, &txn)) != PL_OK)
        return ex_err_set(err, rc, "", "store unavailable");
    rc = load_all(&txn, ws, &all);
    ex_txn_abort(&txn);
    if (rc != PL_OK)
        return ex_err_set(err, rc, "", "store error");
    items = json_array();
    json_array_foreach(all, i, w) json_array_append_new(items, present(w, 0));
    *out = json_pack("{s:o}", "items", items);
    json_decref(all);
    return *out ? PL_OK : PL_ERR_NOMEM;
}

/* The shared shape of update, delete and rotate: load, check the version, change, store. */
typedef enum change_kind { CHANGE_UPDATE, CHANGE_DELETE, CHANGE_ROTATE } change_kind;

static pl_rc change(const ex_ctx *ctx, const char *ws, const json_t *args,
                    const ex_webhook_url_policy *policy, change_kind kind, json_t **out,
                    ex_err *err)
{
    static const char *const allowed_update[] = {"webhook_id",  "expected_version", "url", "events",
                                                 "description", "active",           NULL};
    static const char *const allowed_other[] = {"webhook_id", "expected_version", NULL};
    json_t *w = NULL, *events = NULL;
    const char *url = NULL, *desc = NULL;
    int active = 1, has_active = 0;
    char secret[EX_WEBHOOK_SECRET_SIZE] = "";
    ex_txn txn = {0};
    pl_rc rc;
    *out = NULL;
    if ((rc = check_ws(ctx, ws, args, err)) != PL_OK ||
        (rc = ex_args_only(args, kind == CHANGE_UPDATE ? allowed_update : allowed_other, err)))
        goto out;
    if (kind == CHANGE_UPDATE) {
        rc = ex_arg_str(args, "url", EX_ARG_OPTIONAL, EX_WEBHOOK_URL_MAX, &url, err);
        if (rc == PL_OK)
            rc = ex_wh_url_check(url, policy, "url", err);
        if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
            goto out;
        rc = parse_events(args, 0, &events, err);
        if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
            goto out;
        rc = ex_arg_str(args, "description", EX_ARG_OPTIONAL, EX_WH_DESCRIPTION_MAX, &desc, err);
        if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
            goto out;
        rc = ex_arg_bool(args, "active", EX_ARG_OPTIONAL, &active, err);
        if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
            goto out;
        has_active = rc == PL_OK;
    }
    if ((rc = ex_txn_begin(ctx->store, 1, &txn)) != PL_OK) {
        ex_err_set(err, rc, "", "store unavailable");
        goto out;
    }
    if ((rc = load_one(&txn, ws, args, &w, err)) != PL_OK ||
        (rc = ex_obj_check_version(w, args, webhooks.what, err)) != PL_OK)
        goto out;
    if (kind == CHANGE_DELETE) {
        rc = ex_obj_remove(&webhooks, &txn, ws, w, out);
        if (rc != PL_OK && rc != PL_ERR_NOMEM)
            ex_err_set(err, rc, "", "store error");
        goto out;
    }
    if (url) {
        json_object_set_new(w, "url", json_string(url));
        json_object_set_new(w, "allow_loopback",
                            json_boolean(policy && policy->allow_http_loopback));
    }
    if (events)
        json_object_set(w, "events", events);
    if (desc)
        json_object_set_new(w, "description", json_string(desc));
    if (has_active) {
        json_object_set_new(w, "active", json_boolean(active));
        if (active)
            json_object_del(w, "disabled_reason");
    }
    if (kind == CHANGE_ROTATE) {
        if ((rc = new_secret(secret, sizeof secret)) != PL_OK) {
            ex_err_set(err, rc, "", "cannot create a secret");
            goto out;
        }
        json_object_set_new(w, "secret", json_string(secret));
    }
    if ((rc = ex_obj_save(ctx, &webhooks, &txn, ws, w)) != PL_OK) {
        ex_err_set(err, rc, "", "store error");
        goto out;
    }
    *out = present(w, kind == CHANGE_ROTATE);
    rc = *out ? PL_OK : PL_ERR_NOMEM;
out:
    ex_txn_abort(&txn);
    core_wipe(secret, sizeof secret);
    json_decref(events);
    json_decref(w);
    return rc;
}

pl_rc ex_webhook_update(const ex_ctx *ctx, const char *ws, const json_t *args,
                        const ex_webhook_url_policy *policy, json_t **out, ex_err *err)
{
    return change(ctx, ws, args, policy, CHANGE_UPDATE, out, err);
}

pl_rc ex_webhook_delete(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                        ex_err *err)
{
    return change(ctx, ws, args, NULL, CHANGE_DELETE, out, err);
}

pl_rc ex_webhook_rotate_secret(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                               ex_err *err)
{
    return change(ctx, ws, args, NULL, CHANGE_ROTATE, out, err);
}

/* ---- the delivery log ---- */

typedef struct list_state {
    const char *webhook_id; /* filter or NULL */
    const char *before;     /* exclusive upper bound or NULL */
    size_t limit, scanned;
    json_t *items;
    int more;
} list_state;

static int list_cb(const MDB_val *k, const MDB_val *v, void *arg)
{
    list_state *ls = arg;
    (void)k;
    if (json_array_size(ls->items) >= ls->limit || ++ls->scanned > EX_WH_LIST_SCAN_BUDGET) {
        ls->more = 1;
        return 1;
    }
    json_t *d = json_loadb(v->mv_data, v->mv_size, 0, NULL);
    if (!d)
        return -1;
    const char *wid = json_string_value(json_object_get(d, "webhook_id"));
    if (ls->webhook_id && (!wid || strcmp(wid, ls->webhook_id) != 0)) {
        json_decref(d);
        return 0;
    }
    json_t *p = ex_wh_delivery_present(d);
    json_decref(d);
    if (!p)
        return -1;
    json_array_append_new(ls->items, p);
    return 0;
}

pl_rc ex_webhook_deliveries(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                            ex_err *err)
{
    static const char *const allowed[] = {"webhook_id", "limit", "before", NULL};
    list_state ls = {0};
    int64_t limit = 20;
    char prefix[EX_KEY_MAX + 1];
    ex_txn txn = {0};
    pl_rc rc;
    *out = NULL;
    if ((rc = check_ws(ctx, ws, args, err)) != PL_OK ||
        (args && (rc = ex_args_only(args, allowed, err)) != PL_OK))
        return rc;
    if (args && json_object_get(args, "webhook_id") &&
        (rc = ex_arg_id(args, "webhook_id", EX_WH_KIND_WEBHOOK, &ls.webhook_id, err)) != PL_OK)
        return rc;
    if (args && json_object_get(args, "before") &&
        (rc = ex_arg_id(args, "before", EX_WH_KIND_DELIVERY, &ls.before, err)) != PL_OK)
        return rc;
    rc = ex_arg_int(args, "limit", EX_ARG_OPTIONAL, 1, 100, &limit, err);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        return rc;
    ls.limit = (size_t)limit;
    ls.items = json_array();
    snprintf(prefix, sizeof prefix, "%s|%s|", ws, EX_WH_KIND_DELIVERY);
    if ((rc = ex_txn_begin(ctx->store, 0, &txn)) != PL_OK) {
        json_decref(ls.items);
        return ex_err_set(err, rc, "", "store unavailable");
    }
    char upper[EX_KEY_MAX + 1];
    if (ls.before)
        snprintf(upper, sizeof upper, "%s%s", prefix, ls.before);
    rc = ex_wh_scan(&txn, EX_DB_DELIVERIES, prefix, 1, ls.before ? upper : NULL, list_cb, &ls);
    ex_txn_abort(&txn);
    if (rc != PL_OK) {
        json_decref(ls.items);
        return ex_err_set(err, rc, "", "store error");
    }
    size_t n = json_array_size(ls.items);
    const char *last =
        n ? json_string_value(json_object_get(json_array_get(ls.items, n - 1), "id")) : NULL;
    *out = json_pack("{s:o, s:s?}", "items", ls.items, "next_before", ls.more ? last : NULL);
    return *out ? PL_OK : PL_ERR_NOMEM;
}

json_t *ex_wh_delivery_present(const json_t *d)
{
    json_t *o = json_deep_copy(d);
    if (!o)
        return NULL;
    json_object_del(o, "body");
    json_object_del(o, "next_attempt_ms");
    json_object_del(o, "created_ms");
    return o;
}

/* ---- the outbox ---- */

static int wants(const json_t *w, const char *type)
{
    size_t i;
    json_t *e;
    if (!json_is_true(json_object_get(w, "active")))
        return 0;
    json_array_foreach(json_object_get(w, "events"), i, e)
    {
        const char *s = json_string_value(e);
        if (s && (strcmp(s, type) == 0 || strcmp(s, "*") == 0))
            return 1;
    }
    return 0;
}

pl_rc ex_wh_queue_key(int64_t due_ms, const char *ws, const char *dlv_id, char *buf, size_t bufsz)
{
    int n = snprintf(buf, bufsz, "%016llx|%s|%s", (unsigned long long)(due_ms < 0 ? 0 : due_ms), ws,
                     dlv_id);
    return n > 0 && (size_t)n < bufsz ? PL_OK : PL_ERR_TOO_LARGE;
}

/* The body of one event: its id, type, time, workspace and data. *body is malloc'd. */
static pl_rc build_event(const ex_ctx *ctx, const char *ws, const char *type, const json_t *data,
                         int64_t now, char *evt_id, char **body)
{
    char when[40];
    json_t *event;
    pl_rc rc = ex_id_new(ctx->clock, EX_WH_KIND_EVENT, evt_id, EX_ID_MAX);
    *body = NULL;
    if (rc != PL_OK)
        return rc;
    ex_time_format(now, when, sizeof when);
    event = json_pack("{s:s, s:s, s:s, s:s, s:O}", "id", evt_id, "type", type, "created_at", when,
                      "workspace_id", ws, "data", data);
    *body = event ? json_dumps(event, JSON_COMPACT) : NULL;
    json_decref(event);
    if (!*body)
        return PL_ERR_NOMEM;
    if (strlen(*body) > EX_WEBHOOK_BODY_MAX) {
        free(*body);
        *body = NULL;
        return PL_ERR_TOO_LARGE;
    }
    return PL_OK;
}

/* One delivery of an event to subscription w: its record and its queue entry, due now.
 * dlv_id (EX_ID_MAX bytes) gets the new id. */
static pl_rc write_delivery(const ex_ctx *ctx, ex_txn *txn, const char *ws, const json_t *w,
                            const char *type, const char *evt_id, const char *body, int64_t now,
                            char *dlv_id)
{
    char key[EX_KEY_MAX + 1], when[40];
    json_t *d;
    pl_rc rc = ex_id_new(ctx->clock, EX_WH_KIND_DELIVERY, dlv_id, EX_ID_MAX);
    if (rc != PL_OK)
        return rc;
    ex_time_format(now, when, sizeof when);
    d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:s, s:n, s:n, s:[], s:s, s:I, "
                  "s:s}",
                  "id", dlv_id, "workspace_id", ws, "webhook_id",
                  json_string_value(json_object_get(w, "id")), "event_id", evt_id, "type", type,
                  "status", "pending", "attempts", 0, "next_attempt_ms", (json_int_t)now,
                  "next_attempt_at", when, "delivered_at", "last_error", "last", "created_at", when,
                  "created_ms", (json_int_t)now, "body", body);
    if (!d)
        return PL_ERR_NOMEM;
    rc = ex_obj_store(txn, EX_DB_DELIVERIES, ws, EX_WH_KIND_DELIVERY, d);
    json_decref(d);
    if (rc == PL_OK)
        rc = ex_wh_queue_key(now, ws, dlv_id, key, sizeof key);
    if (rc == PL_OK)
        rc = ex_txn_put_raw(txn, EX_DB_OUTBOX, key, "", 0);
    return rc;
}

pl_rc ex_webhook_enqueue(const ex_ctx *ctx, ex_txn *txn, const char *ws, const char *type,
                         const json_t *data)
{
    json_t *all = NULL, *w;
    char *body = NULL;
    char evt_id[EX_ID_MAX] = "", dlv_id[EX_ID_MAX];
    size_t i;
    pl_rc rc;
    if (!ctx || !txn || !txn->write || !ex_ws_valid(ws) || !ex_webhook_event_known(type) ||
        !json_is_object(data))
        return PL_ERR_INVALID;
    int64_t now = core_clock_now_ms(ctx->clock);
    if ((rc = load_all(txn, ws, &all)) != PL_OK)
        goto out;
    json_array_foreach(all, i, w)
    {
        if (!wants(w, type))
            continue;
        /* One body per event, built only when someone listens: every subscriber and every
         * retry sees the same bytes and the same id. */
        if (!body && (rc = build_event(ctx, ws, type, data, now, evt_id, &body)) != PL_OK)
            goto out;
        if ((rc = write_delivery(ctx, txn, ws, w, type, evt_id, body, now, dlv_id)) != PL_OK)
            goto out;
    }
    rc = PL_OK;
out:
    free(body);
    json_decref(all);
    return rc;
}

pl_rc ex_webhook_send_test(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                           ex_err *err)
{
    static const char *const allowed[] = {"webhook_id", NULL};
    json_t *w = NULL, *data = NULL;
    char *body = NULL;
    char evt_id[EX_ID_MAX], dlv_id[EX_ID_MAX];
    ex_txn txn = {0};
    pl_rc rc;
    *out = NULL;
    if ((rc = check_ws(ctx, ws, args, err)) != PL_OK || (rc = ex_args_only(args, allowed, err)))
        goto out;
    if ((rc = ex_txn_begin(ctx->store, 1, &txn)) != PL_OK) {
        ex_err_set(err, rc, "", "store unavailable");
        goto out;
    }
    if ((rc = load_one(&txn, ws, args, &w, err)) != PL_OK)
        goto out;
    if (!json_is_true(json_object_get(w, "active"))) {
        rc = ex_err_set(err, PL_ERR_STATE, "webhook_id", "the webhook is disabled");
        goto out;
    }
    int64_t now = core_clock_now_ms(ctx->clock);
    data = json_pack("{s:O, s:s}", "webhook_id", json_object_get(w, "id"), "message",
                     "This is a test event from Postly.");
    if (!data) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if ((rc = build_event(ctx, ws, "webhook.test", data, now, evt_id, &body)) != PL_OK ||
        (rc = write_delivery(ctx, &txn, ws, w, "webhook.test", evt_id, body, now, dlv_id)) !=
            PL_OK ||
        (rc = ex_txn_commit(&txn)) != PL_OK) {
        ex_err_set(err, rc, "", "store error");
        goto out;
    }
    *out = json_pack("{s:s, s:s, s:O}", "delivery_id", dlv_id, "event_id", evt_id, "webhook_id",
                     json_object_get(w, "id"));
    rc = *out ? PL_OK : PL_ERR_NOMEM;
out:
    ex_txn_abort(&txn);
    free(body);
    json_decref(data);
    json_decref(w);
    return rc;
}

/* ---- retention ---- */

#define PURGE_BATCH_MAX 1024

typedef struct purge_state {
    int64_t cutoff;
    size_t max_scan, scanned;
    char (*victims)[EX_KEY_MAX + 1];
    size_t n;
    char last[EX_KEY_MAX + 1];
    int stopped; /* 1 when the walk stopped before the end */
} purge_state;

/* Creation time from a delivery id "dlv_<12 hex ms>...": -1 when it is not one. */
static int64_t id_ms(const char *id, size_t len)
{
    int64_t ms = 0;
    if (len < 4 + 12 || memcmp(id, "dlv_", 4) != 0)
        return -1;
    for (size_t i = 4; i < 16; i++) {
        char c = id[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return -1;
        ms = ms << 4 | v;
    }
    return ms;
}

static int purge_cb(const MDB_val *k, const MDB_val *v, void *arg)
{
    purge_state *ps = arg;
    const char *key = k->mv_data;
    if (k->mv_size > EX_KEY_MAX)
        return 0;
    if (ps->scanned++ >= ps->max_scan || ps->n >= PURGE_BATCH_MAX) {
        ps->stopped = 1;
        return 1;
    }
    memcpy(ps->last, key, k->mv_size);
    ps->last[k->mv_size] = '\0';
    const char *bar = strrchr(ps->last, '|');
    int64_t ms = bar ? id_ms(bar + 1, strlen(bar + 1)) : -1;
    if (ms < 0 || ms >= ps->cutoff)
        return 0;
    json_t *d = json_loadb(v->mv_data, v->mv_size, 0, NULL);
    const char *status = d ? json_string_value(json_object_get(d, "status")) : NULL;
    int finished = status && (strcmp(status, "delivered") == 0 || strcmp(status, "failed") == 0);
    json_decref(d);
    if (finished)
        memcpy(ps->victims[ps->n++], ps->last, k->mv_size + 1);
    return 0;
}

pl_rc ex_webhook_purge(ex_store *st, int64_t older_than_ms, size_t max_scan, char *resume,
                       size_t *purged)
{
    purge_state ps = {0};
    ex_txn txn = {0};
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    pl_rc rc = PL_OK;
    int mrc;
    if (purged)
        *purged = 0;
    if (!st || !resume || max_scan == 0)
        return PL_ERR_INVALID;
    ps.cutoff = older_than_ms;
    ps.max_scan = max_scan;
    ps.victims = calloc(PURGE_BATCH_MAX, sizeof *ps.victims);
    if (!ps.victims)
        return PL_ERR_NOMEM;
    if ((rc = ex_txn_begin(st, 0, &txn)) != PL_OK)
        goto out;
    if (mdb_cursor_open(txn.mdb, ex_store_dbi(st, EX_DB_DELIVERIES), &cur) != MDB_SUCCESS) {
        rc = PL_ERR_STORE;
        goto out;
    }
    if (resume[0]) {
        k.mv_data = resume;
        k.mv_size = strlen(resume);
        mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        /* resume names the last record looked at: start after it */
        if (mrc == MDB_SUCCESS && k.mv_size == strlen(resume) &&
            memcmp(k.mv_data, resume, k.mv_size) == 0)
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    } else {
        mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    }
    while (mrc == MDB_SUCCESS && purge_cb(&k, &v, &ps) == 0)
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    if (mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND) {
        rc = PL_ERR_STORE;
        goto out;
    }
    mdb_cursor_close(cur);
    cur = NULL;
    ex_txn_abort(&txn);
    if (ps.n) {
        if ((rc = ex_txn_begin(st, 1, &txn)) != PL_OK)
            goto out;
        for (size_t i = 0; i < ps.n; i++) {
            /* Re-checked under the write lock: only a finished record is ever deleted, and a
             * finished record never becomes pending again. */
            json_t *d = NULL;
            if (ex_txn_get_json(&txn, EX_DB_DELIVERIES, ps.victims[i], &d) != PL_OK)
                continue;
            const char *status = json_string_value(json_object_get(d, "status"));
            int finished =
                status && (strcmp(status, "delivered") == 0 || strcmp(status, "failed") == 0);
            json_decref(d);
            if (finished && (rc = ex_txn_del(&txn, EX_DB_DELIVERIES, ps.victims[i])) != PL_OK)
                goto out;
        }
        if ((rc = ex_txn_commit(&txn)) != PL_OK)
            goto out;
    }
    if (purged)
        *purged = ps.n;
    snprintf(resume, EX_KEY_MAX + 1, "%s", ps.stopped ? ps.last : "");
out:
    if (cur)
        mdb_cursor_close(cur);
    ex_txn_abort(&txn);
    free(ps.victims);
    return rc;
}

/* ---- signatures (docs/webhooks.md, "Verifying a delivery") ---- */

pl_rc ex_webhook_sign(const char *secret, int64_t timestamp, const void *body, size_t len,
                      char *out, size_t outsz)
{
    char ts[24];
    uint8_t mac[CORE_SHA256_LEN];
    char *msg = NULL;
    pl_rc rc;
    if (!secret || !*secret || (!body && len) || !out || outsz < 68 || timestamp < 0)
        return PL_ERR_INVALID;
    int n = snprintf(ts, sizeof ts, "%lld.", (long long)timestamp);
    msg = malloc((size_t)n + len + 1);
    if (!msg)
        return PL_ERR_NOMEM;
    memcpy(msg, ts, (size_t)n);
    if (len)
        memcpy(msg + n, body, len);
    rc = core_hmac_sha256(secret, strlen(secret), msg, (size_t)n + len, mac);
    free(msg);
    if (rc != PL_OK)
        return rc;
    out[0] = 'v';
    out[1] = '1';
    out[2] = '=';
    rc = core_hex_encode(mac, sizeof mac, out + 3, outsz - 3);
    core_wipe(mac, sizeof mac);
    return rc;
}

pl_rc ex_webhook_verify_signature(const char *secret, const char *timestamp, const char *signature,
                                  const void *body, size_t len, int64_t now_s, int64_t tolerance_s)
{
    char want[80];
    char *end = NULL;
    long long ts;
    int wellformed = 0, match = 0;
    pl_rc rc;
    if (!secret || !*secret || !timestamp || !signature || (!body && len))
        return PL_ERR_INVALID;
    size_t tl = strlen(timestamp);
    if (tl == 0 || tl > 15 || strspn(timestamp, "0123456789") != tl)
        return PL_ERR_INVALID;
    errno = 0;
    ts = strtoll(timestamp, &end, 10);
    if (errno || !end || *end)
        return PL_ERR_INVALID;
    if (strlen(signature) > 1024)
        return PL_ERR_INVALID;
    rc = ex_webhook_sign(secret, ts, body, len, want, sizeof want);
    if (rc != PL_OK)
        return rc;
    /* Items separated by spaces or commas; unknown versions are ignored (forward compatible). */
    for (const char *p = signature; *p;) {
        size_t n = strcspn(p, " ,");
        if (n == 67 && memcmp(p, "v1=", 3) == 0 && strspn(p + 3, "0123456789abcdef") >= 64) {
            wellformed = 1;
            match |= core_ct_equal(p, want, 67);
        }
        p += n;
        p += strspn(p, " ,");
    }
    core_wipe(want, sizeof want);
    if (!wellformed)
        return PL_ERR_INVALID;
    /* Checked after the MAC so that a forged timestamp never gets an "expired" answer that
     * tells it apart from a forged signature. */
    if (!match)
        return PL_ERR_CRYPTO;
    if (tolerance_s >= 0 && (now_s - ts > tolerance_s || ts - now_s > tolerance_s))
        return PL_ERR_EXPIRED;
    return PL_OK;
}
