/*
 * tests/mcp/mcp_fixture.c — test harness helper (never installed): prepares a data directory
 * the way postly-authz would leave it, so that tests can run the real postly-mcp binary with a
 * real token and a real grant.
 *
 *   mcp_fixture mint DATA ISSUER AUDIENCE WS CLASS LIFETIME_S SCOPE...
 *       creates (when missing) the key set, a user, workspace WS with the user as owner and a
 *       pre-registered client; runs one authorization code through az_code_issue and
 *       az_code_redeem (PKCE S256, resource = AUDIENCE) to create a grant; mints an access
 *       token for it with keys/. Prints "<token> <grant id>".
 *       The workspace is created on plan $MCP_FIXTURE_PLAN (default "free").
 *   mcp_fixture revoke DATA GID
 *       revokes the grant (what "disconnect" on the connected-apps page does).
 *   mcp_fixture account DATA WS PLATFORM NAME
 *       connects a (sandbox) social account in the execution layer's store, as the platform
 *       OAuth flow would; prints its id. LMDB lets this process write while postly-mcp runs.
 *
 * Runs in its own process: LMDB forbids one process opening the authz environment twice, and
 * postly-mcp opens it read-only from another process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz/store.h"
#include "exec/account.h"
#include "exec/store.h"
#include "core/crypto.h"
#include "keys/keyset.h"
#include "keys/token.h"
#include "policy/scopes.h"

static int usage(void)
{
    fprintf(stderr, "usage: mcp_fixture mint DATA ISSUER AUDIENCE WS CLASS LIFETIME_S SCOPE...\n"
                    "       mcp_fixture revoke DATA GID\n");
    return 2;
}

static int mint(int argc, char **argv)
{
    const char *data = argv[2], *iss = argv[3], *aud = argv[4], *ws = argv[5], *cls = argv[6];
    long lifetime = strtol(argv[7], NULL, 10);
    char scope[POL_SCOPE_LIST_MAX] = "", verifier[64], challenge[64], code[AZ_SECRET_SIZE];
    char refresh[AZ_SECRET_SIZE], token[KEY_TOKEN_MAX];
    uint8_t h[CORE_SHA256_LEN];
    uint64_t mask = 0;
    az_store_cfg scfg;
    az_store *st = NULL;
    az_user u;
    az_client c;
    az_code ac;
    az_redeem rd;
    az_grant g;
    key_keyset_cfg kcfg;
    key_keyset *ks = NULL;
    key_error kerr;
    key_claims kc;
    const char *why = NULL;
    pl_rc rc;
    int i, status = 1;

    for (i = 8; i < argc; i++) {
        size_t n = strlen(scope);
        snprintf(scope + n, sizeof scope - n, "%s%s", n ? " " : "", argv[i]);
    }
    if (pol_scope_parse_list(scope, strlen(scope), &mask, NULL) != PL_OK) {
        fprintf(stderr, "mcp_fixture: bad scope list\n");
        return 2;
    }
    memset(&scfg, 0, sizeof scfg);
    scfg.data_dir = data;
    scfg.scrypt_n = 16;
    if ((rc = az_store_open(&scfg, &st)) != PL_OK) {
        fprintf(stderr, "mcp_fixture: authz store: %s\n", pl_strerror(rc));
        goto out;
    }
    if (az_user_find(st, "fixture", &u) != PL_OK) {
        rc = az_user_add(st, "fixture", "fixture-password-123", u.id);
        if (rc != PL_OK) {
            fprintf(stderr, "mcp_fixture: user: %s\n", pl_strerror(rc));
            goto out;
        }
    }
    {
        az_dir_workspace w;
        const char *plan = getenv("MCP_FIXTURE_PLAN"); /* default free */
        if (az_ws_get(st, ws, &w) != PL_OK)
            az_ws_add(st, ws, ws, plan && *plan ? plan : "free");
    }
    az_member_set(st, u.id, ws, "owner");
    memset(&c, 0, sizeof c);
    snprintf(c.id, sizeof c.id, "fixture-client");
    snprintf(c.name, sizeof c.name, "Test harness");
    snprintf(c.redirect_uris[0], sizeof c.redirect_uris[0], "http://127.0.0.1/callback");
    c.nredirect = 1;
    c.kind = AZ_CLIENT_PRE;
    c.auth = AZ_AUTH_NONE;
    snprintf(c.cls, sizeof c.cls, "%s", cls);
    if ((rc = az_client_put(st, &c)) != PL_OK) {
        fprintf(stderr, "mcp_fixture: client: %s\n", pl_strerror(rc));
        goto out;
    }
    /* RFC 7636: verifier random, challenge = BASE64URL(SHA256(verifier)). */
    if (core_random_token(verifier, sizeof verifier, 32) != PL_OK)
        goto out;
    core_sha256(verifier, strlen(verifier), h);
    core_b64url_encode(h, sizeof h, challenge, sizeof challenge, NULL);
    memset(&ac, 0, sizeof ac);
    snprintf(ac.client_id, sizeof ac.client_id, "%s", c.id);
    snprintf(ac.redirect_uri, sizeof ac.redirect_uri, "%s", c.redirect_uris[0]);
    snprintf(ac.challenge, sizeof ac.challenge, "%s", challenge);
    snprintf(ac.resource, sizeof ac.resource, "%s", aud);
    snprintf(ac.ws, sizeof ac.ws, "%s", ws);
    snprintf(ac.uid, sizeof ac.uid, "%s", u.id);
    snprintf(ac.cls, sizeof ac.cls, "%s", cls);
    ac.scope = mask;
    if ((rc = az_code_issue(st, &ac, code)) != PL_OK) {
        fprintf(stderr, "mcp_fixture: code: %s\n", pl_strerror(rc));
        goto out;
    }
    memset(&rd, 0, sizeof rd);
    rd.client_id = c.id;
    rd.redirect_uri = c.redirect_uris[0];
    rd.verifier = verifier;
    rd.resource = aud;
    if ((rc = az_code_redeem(st, code, &rd, &g, refresh, &why)) != PL_OK) {
        fprintf(stderr, "mcp_fixture: redeem: %s (%s)\n", pl_strerror(rc), why ? why : "");
        goto out;
    }
    memset(&kcfg, 0, sizeof kcfg);
    kcfg.data_dir = data;
    kcfg.leeway_s = -1;
    kcfg.create = 1;
    if ((rc = key_keyset_open(&kcfg, &ks, &kerr)) != PL_OK) {
        fprintf(stderr, "mcp_fixture: keys: %s\n", kerr.text);
        goto out;
    }
    memset(&kc, 0, sizeof kc);
    kc.iss = iss;
    kc.sub = u.id;
    kc.aud = aud;
    kc.client_id = c.id;
    kc.scope = scope;
    kc.ws = ws;
    kc.gid = g.gid;
    kc.cls = cls;
    kc.lifetime_s = lifetime;
    if ((rc = key_token_mint(ks, NULL, &kc, token, sizeof token, NULL, NULL)) != PL_OK) {
        fprintf(stderr, "mcp_fixture: mint: %s\n", pl_strerror(rc));
        goto out;
    }
    printf("%s %s\n", token, g.gid);
    status = 0;
out:
    key_keyset_free(ks);
    az_store_free(st);
    return status;
}

static int revoke(char **argv)
{
    az_store_cfg scfg;
    az_store *st = NULL;
    pl_rc rc;
    memset(&scfg, 0, sizeof scfg);
    scfg.data_dir = argv[2];
    scfg.scrypt_n = 16;
    rc = az_store_open(&scfg, &st);
    if (rc == PL_OK)
        rc = az_grant_revoke(st, argv[3]);
    az_store_free(st);
    if (rc != PL_OK)
        fprintf(stderr, "mcp_fixture: revoke: %s\n", pl_strerror(rc));
    return rc == PL_OK ? 0 : 1;
}

static int account(char **argv)
{
    ex_store *st = NULL;
    ex_ctx ctx;
    ex_err err;
    core_log log = {NULL, CORE_LOG_ERROR, "fixture"};
    json_t *args = json_pack("{s:s, s:s}", "platform", argv[4], "display_name", argv[5]);
    json_t *out = NULL;
    pl_rc rc;
    memset(&ctx, 0, sizeof ctx);
    memset(&err, 0, sizeof err);
    rc = ex_store_open_data_dir(argv[2], 0, &st);
    if (rc == PL_OK) {
        ctx.store = st;
        ctx.clock = core_clock_real();
        ctx.log = &log;
        ex_limits_default(&ctx.limits);
        rc = ex_account_create(&ctx, argv[3], args, &out, &err);
    }
    if (rc == PL_OK)
        printf("%s\n", json_string_value(json_object_get(out, "id")));
    else
        fprintf(stderr, "mcp_fixture: account: %s %s\n", pl_strerror(rc), err.msg);
    json_decref(out);
    json_decref(args);
    ex_store_free(st);
    return rc == PL_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "account") == 0)
        return account(argv);
    if (argc >= 9 && strcmp(argv[1], "mint") == 0)
        return mint(argc, argv);
    if (argc == 4 && strcmp(argv[1], "revoke") == 0)
        return revoke(argv);
    return usage();
}
