/* authz/admin.c — postly-admin (see admin.h). */
#include "admin.h"

#include <stdlib.h>
#include <string.h>

#include "authz/server_int.h"
#include "authz/store.h"
#include "core/crypto.h"

static const char usage[] =
    "usage: postly-admin [--data DIR] COMMAND\n"
    "  users add NAME [--password-stdin]\n"
    "  users passwd NAME [--password-stdin]\n"
    "  users disable NAME | users enable NAME\n"
    "  workspaces add ID NAME [--plan PLAN]\n"
    "  workspaces plan ID PLAN\n"
    "  members add USERNAME WORKSPACE ROLE        (owner, admin, editor, viewer)\n"
    "  clients add ID --name NAME --redirect URI [--redirect URI]... [--auth none|basic|post]\n"
    "              [--class preregistered|first_party] [--introspect]\n";

typedef struct admin_ctx {
    az_store *st;
    FILE *in, *out, *err;
    int argc;
    char **argv; /* after the two command words */
} admin_ctx;

static int fail(admin_ctx *c, const char *what, pl_rc rc)
{
    fprintf(c->err, "postly-admin: %s: %s\n", what, pl_strerror(rc));
    return 1;
}

/* Reads one line (the password) from in, or generates one and prints it. */
static int get_password(admin_ctx *c, int from_stdin, char *pw, size_t size, int *generated)
{
    *generated = 0;
    if (from_stdin) {
        size_t n;
        if (!fgets(pw, (int)size, c->in)) {
            fprintf(c->err, "postly-admin: no password on standard input\n");
            return -1;
        }
        n = strcspn(pw, "\r\n");
        pw[n] = '\0';
        return 0;
    }
    if (core_random_token(pw, size, 15) != PL_OK)
        return -1;
    *generated = 1;
    return 0;
}

static int has_flag(admin_ctx *c, const char *flag)
{
    for (int i = 0; i < c->argc; i++)
        if (strcmp(c->argv[i], flag) == 0)
            return 1;
    return 0;
}

static const char *opt(admin_ctx *c, const char *flag, const char *def)
{
    for (int i = 0; i + 1 < c->argc; i++)
        if (strcmp(c->argv[i], flag) == 0)
            return c->argv[i + 1];
    return def;
}

static int cmd_users(admin_ctx *c, const char *verb)
{
    char pw[300], uid[AZ_ID_MAX + 1];
    int gen = 0, ret = 0;
    pl_rc rc;
    const char *name = c->argc > 0 ? c->argv[0] : NULL;
    if (!name || name[0] == '-')
        return 2;
    if (strcmp(verb, "add") == 0 || strcmp(verb, "passwd") == 0) {
        if (get_password(c, has_flag(c, "--password-stdin"), pw, sizeof pw, &gen) != 0)
            return 1;
        rc = strcmp(verb, "add") == 0 ? az_user_add(c->st, name, pw, uid)
                                      : az_user_passwd(c->st, name, pw);
        if (rc == PL_ERR_INVALID)
            fprintf(c->err, "postly-admin: user names are 1-64 of [A-Za-z0-9._@-]; passwords "
                            "8-256 bytes\n");
        if (rc != PL_OK)
            ret = fail(c, name, rc);
        else if (gen)
            fprintf(c->out, "password for %s: %s (shown once)\n", name, pw);
        else
            fprintf(c->out, "%s: done\n", name);
        core_wipe(pw, sizeof pw);
        return ret;
    }
    if (strcmp(verb, "disable") == 0 || strcmp(verb, "enable") == 0) {
        rc = az_user_disable(c->st, name, strcmp(verb, "disable") == 0);
        if (rc != PL_OK)
            return fail(c, name, rc);
        fprintf(c->out, "%s: %sd\n", name, verb);
        return 0;
    }
    return 2;
}

static int cmd_workspaces(admin_ctx *c, const char *verb)
{
    pl_rc rc;
    if (strcmp(verb, "add") == 0 && c->argc >= 2) {
        rc = az_ws_add(c->st, c->argv[0], c->argv[1], opt(c, "--plan", "free"));
        if (rc == PL_ERR_INVALID)
            fprintf(c->err, "postly-admin: ids are 1-64 of [A-Za-z0-9_-], names 1-128 bytes "
                            "without control characters, plans [a-z0-9_-]\n");
    } else if (strcmp(verb, "plan") == 0 && c->argc >= 2) {
        rc = az_ws_set_plan(c->st, c->argv[0], c->argv[1]);
    } else {
        return 2;
    }
    if (rc != PL_OK)
        return fail(c, c->argv[0], rc);
    fprintf(c->out, "%s: done\n", c->argv[0]);
    return 0;
}

static int cmd_members(admin_ctx *c, const char *verb)
{
    az_user u;
    pl_rc rc;
    if (strcmp(verb, "add") != 0 || c->argc < 3)
        return 2;
    rc = az_user_find(c->st, c->argv[0], &u);
    if (rc != PL_OK)
        return fail(c, c->argv[0], rc);
    rc = az_member_set(c->st, u.id, c->argv[1], c->argv[2]);
    if (rc == PL_ERR_INVALID)
        fprintf(c->err, "postly-admin: role must be owner, admin, editor or viewer\n");
    if (rc != PL_OK)
        return fail(c, c->argv[1], rc);
    fprintf(c->out, "%s is %s of %s\n", c->argv[0], c->argv[2], c->argv[1]);
    return 0;
}

static int cmd_clients(admin_ctx *c, const char *verb)
{
    static const struct {
        const char *name;
        az_auth_method m;
    } auths[] = {{"none", AZ_AUTH_NONE}, {"basic", AZ_AUTH_BASIC}, {"post", AZ_AUTH_POST}};
    az_client cl;
    const char *auth = opt(c, "--auth", "none"), *cls = opt(c, "--class", "preregistered");
    char secret[AZ_SECRET_SIZE] = "";
    size_t i;
    pl_rc rc;
    if (strcmp(verb, "add") != 0 || c->argc < 1 || c->argv[0][0] == '-')
        return 2;
    memset(&cl, 0, sizeof cl);
    if (strlen(c->argv[0]) > AZ_ID_MAX || !az_id_valid(c->argv[0])) {
        fprintf(c->err, "postly-admin: client ids are 1-64 of [A-Za-z0-9_-]\n");
        return 1;
    }
    snprintf(cl.id, sizeof cl.id, "%s", c->argv[0]);
    snprintf(cl.name, sizeof cl.name, "%s", opt(c, "--name", c->argv[0]));
    for (int k = 0; k + 1 < c->argc; k++) {
        const char *why;
        if (strcmp(c->argv[k], "--redirect") != 0)
            continue;
        if (az_redirect_uri_check(c->argv[k + 1], strcmp(auth, "none") == 0, &why) != PL_OK) {
            fprintf(c->err, "postly-admin: %s: %s\n", c->argv[k + 1], why);
            return 1;
        }
        if (cl.nredirect == AZ_MAX_REDIRECTS) {
            fprintf(c->err, "postly-admin: at most %d redirect URIs\n", AZ_MAX_REDIRECTS);
            return 1;
        }
        snprintf(cl.redirect_uris[cl.nredirect++], AZ_URI_MAX + 1, "%s", c->argv[k + 1]);
    }
    if (cl.nredirect == 0 && !has_flag(c, "--introspect")) {
        fprintf(c->err, "postly-admin: give at least one --redirect URI\n");
        return 2;
    }
    for (i = 0; i < sizeof auths / sizeof auths[0]; i++)
        if (strcmp(auths[i].name, auth) == 0)
            break;
    if (i == sizeof auths / sizeof auths[0]) {
        fprintf(c->err, "postly-admin: --auth must be none, basic or post\n");
        return 2;
    }
    cl.auth = auths[i].m;
    if (strcmp(cls, "preregistered") != 0 && strcmp(cls, "first_party") != 0) {
        fprintf(c->err, "postly-admin: --class must be preregistered or first_party\n");
        return 2;
    }
    snprintf(cl.cls, sizeof cl.cls, "%s", cls);
    cl.kind = AZ_CLIENT_PRE;
    cl.introspect = has_flag(c, "--introspect");
    if (cl.auth != AZ_AUTH_NONE) {
        if (core_random_token(secret, sizeof secret, 32) != PL_OK)
            return 1;
        core_sha256(secret, strlen(secret), cl.secret_hash);
    }
    rc = az_client_put(c->st, &cl);
    if (rc != PL_OK)
        return fail(c, cl.id, rc);
    fprintf(c->out, "client %s added\n", cl.id);
    if (secret[0])
        fprintf(c->out, "client secret: %s (shown once)\n", secret);
    core_wipe(secret, sizeof secret);
    return 0;
}

static void print_usage(FILE *err, const az_admin_ext *ext, size_t n_ext)
{
    fputs(usage, err);
    for (size_t k = 0; k < n_ext; k++)
        fputs(ext[k].usage, err);
}

int az_admin_main(int argc, char **argv, FILE *in, FILE *out, FILE *err, unsigned long scrypt_n)
{
    return az_admin_run(argc, argv, in, out, err, scrypt_n, NULL, 0);
}

int az_admin_run(int argc, char **argv, FILE *in, FILE *out, FILE *err, unsigned long scrypt_n,
                 const az_admin_ext *ext, size_t n_ext)
{
    static const struct {
        const char *noun;
        int (*fn)(admin_ctx *, const char *);
    } cmds[] = {{"users", cmd_users},
                {"workspaces", cmd_workspaces},
                {"members", cmd_members},
                {"clients", cmd_clients}};
    const char *data = "var";
    admin_ctx c = {0};
    az_store_cfg sc = {0};
    int i = 1, ret = 2;
    pl_rc rc;
    if (argc > 2 && strcmp(argv[1], "--data") == 0) {
        data = argv[2];
        i = 3;
    }
    for (size_t k = 0; i < argc && k < n_ext; k++) {
        if (strcmp(ext[k].noun, argv[i]) != 0)
            continue;
        ret = ext[k].fn(data, argc - i - 1, argv + i + 1, out, err);
        if (ret == 2)
            print_usage(err, ext, n_ext);
        return ret;
    }
    if (argc - i < 2) {
        print_usage(err, ext, n_ext);
        return 2;
    }
    c.in = in;
    c.out = out;
    c.err = err;
    c.argc = argc - i - 2;
    c.argv = argv + i + 2;
    sc.data_dir = data;
    sc.scrypt_n = scrypt_n;
    for (size_t k = 0; k < sizeof cmds / sizeof cmds[0]; k++) {
        if (strcmp(cmds[k].noun, argv[i]) != 0)
            continue;
        rc = az_store_open(&sc, &c.st);
        if (rc != PL_OK) {
            fprintf(err, "postly-admin: cannot open the store in %s/authz: %s\n", data,
                    pl_strerror(rc));
            return 1;
        }
        ret = cmds[k].fn(&c, argv[i + 1]);
        az_store_free(c.st);
        break;
    }
    if (ret == 2)
        print_usage(err, ext, n_ext);
    return ret;
}
