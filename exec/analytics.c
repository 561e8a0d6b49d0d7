#include "analytics.h"

#include <stdio.h>
#include <string.h>

#include "exec/args.h"
#include "exec/connector.h"
#include "exec/obj.h"
#include "exec/schedule.h"

#define ACCOUNTS_MAX      1000
#define DEFAULT_PERIOD_MS (28LL * 24 * 3600 * 1000)

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static pl_rc period(const ex_ctx *ctx, const json_t *args, int64_t *from, int64_t *to, ex_err *err)
{
    int64_t now = core_clock_now_ms(ctx->clock);
    *to = now;
    *from = now - DEFAULT_PERIOD_MS;
    static const char *const names[] = {"from", "to"};
    for (int i = 0; i < 2; i++) {
        const char *s = NULL;
        pl_rc rc = ex_arg_str(args, names[i], EX_ARG_OPTIONAL, 40, &s, err);
        if (rc == PL_ERR_NOT_FOUND)
            continue;
        if (rc != PL_OK)
            return rc;
        int64_t ms;
        if (ex_time_parse(s, &ms) != PL_OK)
            return ex_err_set(err, PL_ERR_INVALID, names[i],
                              "not an RFC 3339 date-time with offset");
        *(i ? to : from) = ms;
    }
    if (!json_object_get(args, "from") && json_object_get(args, "to"))
        *from = *to - DEFAULT_PERIOD_MS;
    if (*to <= *from)
        return ex_err_set(err, PL_ERR_INVALID, "to", "must be later than from");
    if (*to - *from > EX_METRICS_PERIOD_MAX_MS)
        return ex_err_set(err, PL_ERR_INVALID, "from", "the period may cover at most 366 days");
    return PL_OK;
}

static json_t *period_json(int64_t from, int64_t to)
{
    char a[40], b[40];
    ex_time_format(from, a, sizeof a);
    ex_time_format(to, b, sizeof b);
    return json_pack("{s:s,s:s}", "from", a, "to", b);
}

static json_t *metrics_json(const ex_metrics *m)
{
    json_t *o = json_object();
    for (int k = 0; k < EX_METRIC__COUNT; k++)
        if (m->present[k])
            json_object_set_new(o, ex_metric_name((ex_metric)k), json_integer(m->value[k]));
    return o;
}

static json_t *native_json(const ex_metrics *m)
{
    json_t *o = json_object();
    for (size_t k = 0; k < m->native_count && k < EX_NATIVE_METRICS_MAX; k++)
        json_object_set_new(o, m->native[k].name, json_integer(m->native[k].value));
    return o;
}

/* Reads the workspace's accounts (optionally one platform) in a read transaction. */
static pl_rc load_accounts(const ex_ctx *ctx, const char *ws, const char *platform, json_t **out)
{
    ex_txn txn = {0};
    MDB_cursor *cur = NULL;
    json_t *list = json_array();
    char prefix[EX_KEY_MAX + 1];
    if (!ex_ws_valid(ws)) {
        json_decref(list);
        return PL_ERR_NOT_FOUND;
    }
    int plen = snprintf(prefix, sizeof prefix, "%s|acc|", ws);
    pl_rc rc = ex_txn_begin(ctx->store, 0, &txn);
    if (rc != PL_OK)
        goto out;
    if (mdb_cursor_open(txn.mdb, ex_store_dbi(ctx->store, EX_DB_ACCOUNTS), &cur) != 0) {
        rc = PL_ERR_STORE;
        goto out;
    }
    MDB_val k = {(size_t)plen, prefix}, v;
    int r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (r == 0 && k.mv_size > (size_t)plen && memcmp(k.mv_data, prefix, (size_t)plen) == 0 &&
           json_array_size(list) < ACCOUNTS_MAX) {
        json_error_t je;
        json_t *a = json_loadb(v.mv_data, v.mv_size, 0, &je);
        if (a && (!platform || (str(a, "platform") && !strcmp(str(a, "platform"), platform))))
            json_array_append(list, a);
        json_decref(a);
        r = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    *out = list;
    list = NULL;
out:
    if (cur)
        mdb_cursor_close(cur);
    ex_txn_abort(&txn);
    json_decref(list);
    return rc;
}

/* Writes snapshots {key: snapshot} in one write transaction. */
static pl_rc save(const ex_ctx *ctx, json_t *snaps)
{
    if (json_object_size(snaps) == 0)
        return PL_OK;
    ex_txn txn = {0};
    pl_rc rc = ex_txn_begin(ctx->store, 1, &txn);
    const char *key;
    json_t *v;
    json_object_foreach(snaps, key, v)
    {
        if (rc == PL_OK)
            rc = ex_txn_put_json(&txn, EX_DB_ANALYTICS, key, v);
    }
    if (rc == PL_OK)
        rc = ex_txn_commit(&txn);
    ex_txn_abort(&txn);
    return rc;
}

static json_t *snapshot(const ex_ctx *ctx, const ex_metrics *m, json_t *metrics, json_t *native)
{
    char t[40];
    ex_time_format(core_clock_now_ms(ctx->clock), t, sizeof t);
    return json_pack("{s:s,s:s,s:O,s:O,s:o}", "platform", ex_platform_name(m->platform),
                     "fetched_at", t, "metrics", metrics, "native", native, "period",
                     period_json(m->from_ms, m->to_ms));
}

/* Account metrics of one account; PL_ERR_UNSUPPORTED without a connector. */
static pl_rc account_metrics(const ex_ctx *ctx, const json_t *acc, int64_t from, int64_t to,
                             ex_metrics *m)
{
    ex_platform p;
    if (ex_platform_parse(str(acc, "platform"), &p) != PL_OK || !ctx->connectors[p])
        return PL_ERR_UNSUPPORTED;
    ex_metrics_req req = {.scope = EX_METRICS_ACCOUNT,
                          .account_id = str(acc, "id"),
                          .remote_account = str(acc, "remote_account"),
                          .from_ms = from,
                          .to_ms = to};
    return ex_connector_metrics(ctx->connectors[p], &req, m);
}

pl_rc ex_analytics_summary(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                           ex_err *err)
{
    static const char *const allowed[] = {"from", "to", NULL};
    int64_t from, to;
    json_t *accs = NULL, *snaps = json_object(), *skipped = json_array();
    json_t *per[EX_PLATFORM__COUNT] = {0};
    int64_t totals[EX_METRIC__COUNT] = {0};
    json_t *contributors[EX_METRIC__COUNT] = {0};
    int naccs[EX_PLATFORM__COUNT] = {0};
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc == PL_OK)
        rc = period(ctx, args, &from, &to, err);
    if (rc == PL_OK)
        rc = load_accounts(ctx, ws, NULL, &accs);
    if (rc != PL_OK)
        goto out;
    int64_t sums[EX_PLATFORM__COUNT][EX_METRIC__COUNT] = {{0}};
    uint8_t seen[EX_PLATFORM__COUNT][EX_METRIC__COUNT] = {{0}};
    size_t i;
    json_t *acc;
    json_array_foreach(accs, i, acc)
    {
        if (str(acc, "state") && strcmp(str(acc, "state"), "connected") != 0) {
            json_array_append_new(skipped, json_string(str(acc, "id")));
            continue;
        }
        ex_metrics m;
        memset(&m, 0, sizeof m);
        if (account_metrics(ctx, acc, from, to, &m) != PL_OK) {
            json_array_append_new(skipped, json_string(str(acc, "id")));
            continue;
        }
        ex_platform p = m.platform;
        naccs[p]++;
        for (int k = 0; k < EX_METRIC__COUNT; k++)
            if (m.present[k]) {
                sums[p][k] += m.value[k];
                seen[p][k] = 1;
            }
        char key[EX_KEY_MAX + 1];
        snprintf(key, sizeof key, "%s|%s|%s", ws, str(acc, "id"), ex_platform_name(p));
        json_t *mj = metrics_json(&m), *nj = native_json(&m);
        json_object_set_new(snaps, key, snapshot(ctx, &m, mj, nj));
        json_decref(mj);
        json_decref(nj);
    }
    json_t *platforms = json_array();
    for (int p = 0; p < EX_PLATFORM__COUNT; p++) {
        if (!naccs[p])
            continue;
        per[p] = json_object();
        for (int k = 0; k < EX_METRIC__COUNT; k++) {
            if (!seen[p][k])
                continue;
            json_object_set_new(per[p], ex_metric_name((ex_metric)k), json_integer(sums[p][k]));
            totals[k] += sums[p][k];
            if (!contributors[k])
                contributors[k] = json_array();
            json_array_append_new(contributors[k], json_string(ex_platform_name((ex_platform)p)));
        }
        json_array_append_new(platforms, json_pack("{s:s,s:i,s:o}", "platform",
                                                   ex_platform_name((ex_platform)p), "accounts",
                                                   naccs[p], "metrics", per[p]));
        per[p] = NULL;
    }
    json_t *tot = json_object(), *by = json_object();
    for (int k = 0; k < EX_METRIC__COUNT; k++) {
        if (!contributors[k])
            continue;
        json_object_set_new(tot, ex_metric_name((ex_metric)k), json_integer(totals[k]));
        json_object_set_new(by, ex_metric_name((ex_metric)k), contributors[k]);
        contributors[k] = NULL;
    }
    rc = save(ctx, snaps);
    if (rc != PL_OK) {
        json_decref(platforms);
        json_decref(tot);
        json_decref(by);
        goto out;
    }
    *out = json_pack("{s:o,s:o,s:o,s:o,s:O}", "period", period_json(from, to), "totals", tot,
                     "totals_from", by, "platforms", platforms, "skipped_accounts", skipped);
out:
    for (int k = 0; k < EX_METRIC__COUNT; k++)
        json_decref(contributors[k]);
    json_decref(accs);
    json_decref(snaps);
    json_decref(skipped);
    return rc;
}

pl_rc ex_analytics_platform(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                            ex_err *err)
{
    static const char *const allowed[] = {"platform", "from", "to", NULL};
    const char *name = NULL;
    ex_platform p;
    int64_t from, to;
    json_t *accs = NULL, *snaps = json_object(), *list = json_array();
    int64_t sums[EX_METRIC__COUNT] = {0};
    uint8_t seen[EX_METRIC__COUNT] = {0};
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc == PL_OK)
        rc = ex_arg_str(args, "platform", EX_ARG_REQUIRED, 32, &name, err);
    if (rc == PL_OK && ex_platform_parse(name, &p) != PL_OK)
        rc = ex_err_set(err, PL_ERR_INVALID, "platform", "unknown platform \"%.32s\"", name);
    if (rc == PL_OK)
        rc = period(ctx, args, &from, &to, err);
    if (rc == PL_OK)
        rc = load_accounts(ctx, ws, ex_platform_name(p), &accs);
    if (rc != PL_OK)
        goto out;
    size_t i;
    json_t *acc;
    json_array_foreach(accs, i, acc)
    {
        ex_metrics m;
        memset(&m, 0, sizeof m);
        pl_rc mrc = account_metrics(ctx, acc, from, to, &m);
        if (mrc != PL_OK) {
            json_array_append_new(list, json_pack("{s:s,s:s,s:s}", "account_id", str(acc, "id"),
                                                  "display_name", str(acc, "display_name"), "error",
                                                  pl_strerror(mrc)));
            continue;
        }
        for (int k = 0; k < EX_METRIC__COUNT; k++)
            if (m.present[k])
                sums[k] += m.value[k], seen[k] = 1;
        json_t *mj = metrics_json(&m), *nj = native_json(&m);
        char key[EX_KEY_MAX + 1];
        snprintf(key, sizeof key, "%s|%s|%s", ws, str(acc, "id"), ex_platform_name(p));
        json_object_set_new(snaps, key, snapshot(ctx, &m, mj, nj));
        json_array_append_new(list, json_pack("{s:s,s:s,s:o,s:o}", "account_id", str(acc, "id"),
                                              "display_name", str(acc, "display_name"), "metrics",
                                              mj, "native", nj));
    }
    json_t *tot = json_object();
    for (int k = 0; k < EX_METRIC__COUNT; k++)
        if (seen[k])
            json_object_set_new(tot, ex_metric_name((ex_metric)k), json_integer(sums[k]));
    rc = save(ctx, snaps);
    if (rc != PL_OK) {
        json_decref(tot);
        goto out;
    }
    *out = json_pack("{s:s,s:o,s:o,s:O}", "platform", ex_platform_name(p), "period",
                     period_json(from, to), "metrics", tot, "accounts", list);
out:
    json_decref(accs);
    json_decref(snaps);
    json_decref(list);
    return rc;
}

pl_rc ex_analytics_post(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                        ex_err *err)
{
    static const char *const allowed[] = {"post_id", "platforms", NULL};
    const char *id = NULL;
    ex_txn txn = {0};
    json_t *p = NULL, *snaps = json_object(), *list = json_array();
    int allow[EX_PLATFORM__COUNT];
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc == PL_OK)
        rc = ex_arg_id(args, "post_id", "pst", &id, err);
    if (rc != PL_OK)
        goto out;
    const json_t *pl = json_object_get(args, "platforms");
    for (int k = 0; k < EX_PLATFORM__COUNT; k++)
        allow[k] = pl == NULL;
    if (pl) {
        if (!json_is_array(pl) || json_array_size(pl) > EX_PLATFORM__COUNT) {
            rc = ex_err_set(err, PL_ERR_INVALID, "platforms", "must be an array of platform names");
            goto out;
        }
        for (size_t k = 0; k < json_array_size(pl); k++) {
            ex_platform q;
            if (ex_platform_parse(json_string_value(json_array_get(pl, k)), &q) != PL_OK) {
                rc = ex_err_set(err, PL_ERR_INVALID, "platforms", "item %zu is not a platform", k);
                goto out;
            }
            allow[q] = 1;
        }
    }
    rc = ex_txn_begin(ctx->store, 0, &txn);
    if (rc == PL_OK)
        rc = ex_obj_load(&txn, EX_DB_POSTS, ws, "pst", id, "post_id", "post", &p, err);
    ex_txn_abort(&txn);
    if (rc != PL_OK)
        goto out;
    const json_t *ts = json_object_get(p, "targets");
    for (size_t i = 0; i < json_array_size(ts); i++) {
        const json_t *t = json_array_get(ts, i);
        ex_platform q;
        if (ex_platform_parse(str(t, "platform"), &q) != PL_OK || !allow[q] ||
            !str(t, "remote_id") || !ctx->connectors[q])
            continue;
        ex_metrics m;
        memset(&m, 0, sizeof m);
        int64_t now = core_clock_now_ms(ctx->clock);
        ex_metrics_req req = {.scope = EX_METRICS_POST,
                              .remote_id = str(t, "remote_id"),
                              .from_ms = now - DEFAULT_PERIOD_MS,
                              .to_ms = now};
        if (ex_connector_metrics(ctx->connectors[q], &req, &m) != PL_OK)
            continue;
        json_t *mj = metrics_json(&m), *nj = native_json(&m);
        char key[EX_KEY_MAX + 1];
        snprintf(key, sizeof key, "%s|%s|%s|%s", ws, id, str(t, "account_id"), str(t, "platform"));
        json_object_set_new(snaps, key, snapshot(ctx, &m, mj, nj));
        json_array_append_new(list,
                              json_pack("{s:s,s:s,s:s,s:o,s:o}", "account_id", str(t, "account_id"),
                                        "platform", str(t, "platform"), "remote_id",
                                        str(t, "remote_id"), "metrics", mj, "native", nj));
    }
    rc = save(ctx, snaps);
    if (rc != PL_OK)
        goto out;
    *out = json_pack("{s:s,s:O}", "post_id", id, "targets", list);
out:
    json_decref(p);
    json_decref(snaps);
    json_decref(list);
    return rc;
}
