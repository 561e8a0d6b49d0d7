/* fuzz/jsonrpc/fuzz_jsonrpc.c — one POST /mcp body per input, in an initialized session with a
 * valid token, through mcp_server_handle (no sockets). Checks the contract that every input
 * gets exactly one well-formed reply: a status, and for requests a JSON-RPC object. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/http.h"
#include "exec/connector.h"
#include "exec/store.h"
#include "keys/keyset.h"
#include "keys/token.h"
#include "keys/verify.h"
#include "mcp/config.h"
#include "mcp/server.h"
#include "policy/policy.h"

#ifndef POSTLY_SOURCE_DIR /* set by fuzz/jsonrpc/CMakeLists.txt */
#define POSTLY_SOURCE_DIR "."
#endif

static struct {
    mcp_config cfg;
    core_fake_clock clock;
    core_log log;
    pol_compiled *policy;
    key_keyset *keys;
    key_verifier *verifier;
    ex_store *store;
    ex_connectors conns;
    ex_ctx ex;
    mcp_server *srv;
    char auth[KEY_TOKEN_MAX + 16];
    char sid[MCP_SESSION_ID_LEN + 1];
    char sid_old[MCP_SESSION_ID_LEN + 1]; /* a 2025-03-26 session: batches are accepted there */
    char host[64];
} g;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_jsonrpc setup: %s\n", what);
    abort();
}

static void request(const char *body, size_t len, const char *sid, mcp_reply *rp)
{
    mcp_request rq;
    memset(&rq, 0, sizeof rq);
    rq.method = CORE_HTTP_POST;
    rq.query = "";
    rq.host = g.host;
    rq.host_count = 1;
    rq.authorization = g.auth;
    rq.authorization_count = 1;
    rq.content_type = "application/json";
    rq.session_id = sid;
    rq.body = body;
    rq.body_len = len;
    mcp_server_handle(g.srv, &rq, rp);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static char dir[] = "/tmp/fuzz-jsonrpc-XXXXXX";
    char path[512], err[128], tok[KEY_TOKEN_MAX];
    key_keyset_cfg kc;
    key_verifier_cfg vc;
    key_claims cl;
    key_error ke;
    pol_diags d;
    mcp_deps deps;
    mcp_reply rp;
    const char *init = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
                       "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{"
                       "\"name\":\"fuzz\",\"version\":\"1\"}}}";
    if (!mkdtemp(dir))
        die("mkdtemp");
    core_fake_clock_init(&g.clock, 1800000000000LL);
    g.log.level = CORE_LOG_OFF;
    mcp_config_defaults(&g.cfg);
    g.cfg.listen_port = 9;
    g.cfg.limits.max_body = 65536;
    g.cfg.limits.max_string = 8192;
    snprintf(g.cfg.authz_url, sizeof g.cfg.authz_url, "http://127.0.0.1:1");
    if (mcp_config_finish(&g.cfg, 9, err, sizeof err) != PL_OK)
        die(err);
    snprintf(g.host, sizeof g.host, "127.0.0.1:9");
    pol_diags_init(&d);
    snprintf(path, sizeof path, "%s/policy/default.policy", POSTLY_SOURCE_DIR);
    if (pol_load_file(path, 0, &d, &g.policy) != PL_OK)
        die("policy");
    pol_diags_free(&d);
    memset(&kc, 0, sizeof kc);
    kc.data_dir = dir;
    kc.clock = &g.clock.base;
    kc.leeway_s = -1;
    kc.create = 1;
    if (key_keyset_open(&kc, &g.keys, &ke) != PL_OK)
        die("keys");
    memset(&vc, 0, sizeof vc);
    vc.issuer = g.cfg.authz_url;
    vc.audience = g.cfg.canonical_url;
    vc.leeway_s = -1;
    vc.clock = &g.clock.base;
    vc.keyset = g.keys;
    if (key_verifier_new(&vc, &g.verifier) != PL_OK)
        die("verifier");
    snprintf(path, sizeof path, "%s/exec", dir);
    if (ex_store_open(path, 0, EX_STORE_NOSYNC, &g.store) != PL_OK)
        die("store");
    g.ex.store = g.store;
    g.ex.clock = &g.clock.base;
    g.ex.log = &g.log;
    ex_limits_default(&g.ex.limits);
    if (ex_connectors_init_sandbox(&g.conns) != PL_OK)
        die("connectors");
    ex_connectors_install(&g.conns, &g.ex);
    memset(&cl, 0, sizeof cl);
    cl.iss = g.cfg.authz_url;
    cl.sub = "usr_fuzz";
    cl.aud = g.cfg.canonical_url;
    cl.client_id = "fuzz";
    cl.scope = "workspace:read workspace:list posts:read posts:create posts:update "
               "posts:schedule posts:status:read drafts:read drafts:create media:read "
               "campaigns:read campaigns:create social_accounts:read social_accounts:list "
               "analytics:read";
    cl.ws = "ws_fuzz";
    cl.gid = "grt_fuzz";
    cl.cls = "preregistered";
    cl.lifetime_s = (int64_t)86400 * 365;
    if (key_token_mint(g.keys, &g.clock.base, &cl, tok, sizeof tok, NULL, NULL) != PL_OK)
        die("mint");
    snprintf(g.auth, sizeof g.auth, "Bearer %s", tok);
    memset(&deps, 0, sizeof deps);
    deps.clock = &g.clock.base;
    deps.log = &g.log;
    deps.verifier = g.verifier;
    deps.policy = g.policy;
    deps.ex = &g.ex;
    if (mcp_server_new(&g.cfg, &deps, &g.srv) != PL_OK)
        die("server");
    request(init, strlen(init), NULL, &rp);
    if (rp.status != 200 || !rp.session_id[0])
        die("initialize");
    memcpy(g.sid, rp.session_id, sizeof g.sid);
    mcp_reply_clear(&rp);
    {
        const char *old = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
                          "\"protocolVersion\":\"2025-03-26\",\"capabilities\":{},"
                          "\"clientInfo\":{\"name\":\"fuzz\",\"version\":\"1\"}}}";
        request(old, strlen(old), NULL, &rp);
        if (rp.status != 200 || !rp.session_id[0])
            die("initialize 2025-03-26");
        memcpy(g.sid_old, rp.session_id, sizeof g.sid_old);
        mcp_reply_clear(&rp);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mcp_reply rp;
    /* batches go to the 2025-03-26 session, everything else to the 2025-11-25 one */
    request((const char *)data, size, size && data[0] == '[' ? g.sid_old : g.sid, &rp);
    if (rp.status < 200 || rp.status > 599)
        abort();
    if (rp.status == 200 && !json_is_object(rp.body) && !json_is_array(rp.body))
        abort();
    mcp_reply_clear(&rp);
    return 0;
}
