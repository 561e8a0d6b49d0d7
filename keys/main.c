/*
 * postly-keys — create, list, rotate and prune the signing keys; print the JWKS.
 *
 *   postly-keys [--data DIR] <init|list|rotate|jwks|prune> [options]
 *
 * Exit codes (stable): 0 success, 1 the operation failed (message on stderr naming the file
 * concerned), 2 usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/clock.h"
#include "keys/keyset.h"

#define EXIT_USAGE 2

typedef struct opts {
    const char *data;
    const char *kid; /* prune --kid */
    int64_t max_lifetime_s;
    int64_t leeway_s;
} opts;

typedef int (*cmd_fn)(const opts *o);

static int cmd_init(const opts *o);
static int cmd_list(const opts *o);
static int cmd_rotate(const opts *o);
static int cmd_jwks(const opts *o);
static int cmd_prune(const opts *o);

static const struct {
    const char *name;
    cmd_fn fn;
    const char *summary;
    const char *help;
} cmds[] = {
    {"init", cmd_init, "create the key set (an active and a next key) if there is none",
     "Creates DIR/keys/ (mode 0700) with an active and a next P-256 key (files mode 0600)\n"
     "unless a key set already exists there, in which case nothing changes.\n"},
    {"list", cmd_list, "list every key with its state and times",
     "One line per key, oldest first:\n"
     "  <kid> <state> created=<time> activated=<time> retired=<time> removable=<time> "
     "removed=<time>\n"
     "Times are UTC (RFC 3339), '-' when not reached.\n"},
    {"rotate", cmd_rotate, "next key -> active, active -> retired, new next key",
     "The next key (already published in the JWKS) starts signing; the active key is\n"
     "retired and stays in the JWKS until removable = now + max token lifetime + leeway;\n"
     "a new next key is created and published.\n"
     "  --max-lifetime SECONDS  longest access-token lifetime in use (default 600)\n"
     "  --leeway SECONDS        clock-skew allowance of verifiers (default 60)\n"},
    {"jwks", cmd_jwks, "print the JWKS (public keys only)",
     "Prints the JWKS document (RFC 7517) that postly-authz serves: the active, next and\n"
     "retired public keys. Private parts are never printed.\n"},
    {"prune", cmd_prune, "remove retired keys whose tokens have all expired",
     "Marks removed every retired key whose removable time has passed and deletes its\n"
     "private file. Tokens it signed are refused from then on.\n"
     "  --kid KID  remove this one key now, whatever its removable time (a compromised\n"
     "             key). The active key cannot be removed: rotate first. Removing the next\n"
     "             key creates a new next key.\n"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: postly-keys [--data DIR] <command> [options]\n\n"
               "Manages the ES256 signing keys in DIR/keys (default DIR: ./var).\n\ncommands:\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        fprintf(f, "  %-7s %s\n", cmds[i].name, cmds[i].summary);
    fprintf(f, "\n'postly-keys <command> --help' describes one command.\n"
               "Exit codes: 0 success, 1 failure, 2 usage error.\n");
}

static void fmt_time(int64_t t, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t <= 0 || !gmtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, size, "-");
}

static int open_set(const opts *o, int create, key_keyset **ks)
{
    key_keyset_cfg cfg = {.data_dir = o->data,
                          .clock = core_clock_real(),
                          .max_token_lifetime_s = o->max_lifetime_s,
                          .leeway_s = o->leeway_s,
                          .create = create};
    key_error err = {{0}};
    pl_rc rc = key_keyset_open(&cfg, ks, &err);
    if (rc != PL_OK) {
        fprintf(stderr, "postly-keys: %s\n", err.text[0] ? err.text : pl_strerror(rc));
        return 1;
    }
    return 0;
}

static void print_key(const key_info *k)
{
    char c[32], a[32], r[32], rm[32], d[32];
    fmt_time(k->created_s, c, sizeof c);
    fmt_time(k->activated_s, a, sizeof a);
    fmt_time(k->retired_s, r, sizeof r);
    fmt_time(k->removable_s, rm, sizeof rm);
    fmt_time(k->removed_s, d, sizeof d);
    printf("%s %s created=%s activated=%s retired=%s removable=%s removed=%s\n", k->kid,
           key_state_name(k->state), c, a, r, rm, d);
}

static void print_kid_in_state(const char *label, const key_keyset *ks, key_state st)
{
    key_info k;
    for (size_t i = 0; i < key_keyset_count(ks); i++) {
        if (key_keyset_get(ks, i, &k) == PL_OK && k.state == st) {
            printf("%s %s\n", label, k.kid);
            return;
        }
    }
    printf("%s -\n", label);
}

static int cmd_init(const opts *o)
{
    char path[4096];
    struct stat st;
    key_keyset *ks = NULL;
    int existed;

    snprintf(path, sizeof path, "%s/keys/keys.json", o->data);
    existed = stat(path, &st) == 0;
    if (open_set(o, 1, &ks))
        return 1;
    printf("%s %s/keys\n", existed ? "already initialised:" : "initialised:", o->data);
    print_kid_in_state("active", ks, KEY_STATE_ACTIVE);
    print_kid_in_state("next", ks, KEY_STATE_NEXT);
    key_keyset_free(ks);
    return 0;
}

static int cmd_list(const opts *o)
{
    key_keyset *ks = NULL;
    key_info k;
    if (open_set(o, 0, &ks))
        return 1;
    for (size_t i = 0; i < key_keyset_count(ks); i++)
        if (key_keyset_get(ks, i, &k) == PL_OK)
            print_key(&k);
    key_keyset_free(ks);
    return 0;
}

static int cmd_rotate(const opts *o)
{
    key_keyset *ks = NULL;
    key_error err = {{0}};
    char old[KEY_KID_SIZE], now_active[KEY_KID_SIZE];
    key_info k;
    pl_rc rc;

    if (open_set(o, 0, &ks))
        return 1;
    snprintf(old, sizeof old, "%s", key_keyset_active_kid(ks));
    rc = key_keyset_rotate(ks, now_active, &err);
    if (rc != PL_OK) {
        fprintf(stderr, "postly-keys: rotate: %s\n", err.text[0] ? err.text : pl_strerror(rc));
        key_keyset_free(ks);
        return 1;
    }
    printf("active %s\n", now_active);
    print_kid_in_state("next", ks, KEY_STATE_NEXT);
    for (size_t i = 0; i < key_keyset_count(ks); i++) {
        if (key_keyset_get(ks, i, &k) == PL_OK && strcmp(k.kid, old) == 0) {
            char t[32];
            fmt_time(k.removable_s, t, sizeof t);
            printf("retired %s removable=%s\n", k.kid, t);
        }
    }
    key_keyset_free(ks);
    return 0;
}

static int cmd_jwks(const opts *o)
{
    key_keyset *ks = NULL;
    char *json = NULL;
    int ret = 1;
    if (open_set(o, 0, &ks))
        return 1;
    if (key_keyset_jwks(ks, &json, NULL) == PL_OK) {
        printf("%s\n", json);
        ret = 0;
    } else {
        fprintf(stderr, "postly-keys: jwks: out of memory\n");
    }
    free(json);
    key_keyset_free(ks);
    return ret;
}

static int cmd_prune(const opts *o)
{
    key_keyset *ks = NULL;
    key_error err = {{0}};
    size_t removed = 0, n;
    key_info k, *before = NULL;
    pl_rc rc;

    if (open_set(o, 0, &ks))
        return 1;
    if (o->kid) {
        rc = key_keyset_remove(ks, o->kid, &err);
        if (rc != PL_OK) {
            fprintf(stderr, "postly-keys: prune: %s\n", err.text[0] ? err.text : pl_strerror(rc));
            key_keyset_free(ks);
            return 1;
        }
        printf("pruned 1\nremoved %s\n", o->kid);
        print_kid_in_state("next", ks, KEY_STATE_NEXT);
        key_keyset_free(ks);
        return 0;
    }
    n = key_keyset_count(ks);
    before = calloc(n ? n : 1, sizeof *before);
    for (size_t i = 0; before && i < n; i++)
        key_keyset_get(ks, i, &before[i]);
    rc = key_keyset_prune(ks, &removed, &err);
    if (rc != PL_OK || !before) {
        fprintf(stderr, "postly-keys: prune: %s\n", err.text[0] ? err.text : pl_strerror(rc));
        free(before);
        key_keyset_free(ks);
        return 1;
    }
    printf("pruned %zu\n", removed);
    for (size_t i = 0; i < key_keyset_count(ks); i++) {
        if (key_keyset_get(ks, i, &k) != PL_OK || k.state != KEY_STATE_REMOVED)
            continue;
        for (size_t j = 0; j < n; j++)
            if (strcmp(before[j].kid, k.kid) == 0 && before[j].state == KEY_STATE_RETIRED)
                printf("removed %s\n", k.kid);
    }
    free(before);
    key_keyset_free(ks);
    return 0;
}

static int parse_seconds(const char *s, int64_t *out)
{
    char *end = NULL;
    long long v;
    if (!s || !*s)
        return 0;
    v = strtoll(s, &end, 10);
    if (*end || v < 0 || v > 366LL * 86400)
        return 0;
    *out = v;
    return 1;
}

int main(int argc, char **argv)
{
    opts o = {.data = "./var", .max_lifetime_s = 0, .leeway_s = 0};
    const char *cmd = NULL;
    int help = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help = 1;
        } else if (strcmp(a, "--data") == 0 && i + 1 < argc) {
            o.data = argv[++i];
        } else if (strcmp(a, "--max-lifetime") == 0 && i + 1 < argc) {
            if (!parse_seconds(argv[++i], &o.max_lifetime_s) || o.max_lifetime_s == 0) {
                fprintf(stderr, "postly-keys: --max-lifetime needs seconds (1..31622400)\n");
                return EXIT_USAGE;
            }
        } else if (strcmp(a, "--kid") == 0 && i + 1 < argc) {
            o.kid = argv[++i];
        } else if (strcmp(a, "--leeway") == 0 && i + 1 < argc) {
            if (!parse_seconds(argv[++i], &o.leeway_s)) {
                fprintf(stderr, "postly-keys: --leeway needs seconds (0..31622400)\n");
                return EXIT_USAGE;
            }
        } else if (a[0] != '-' && !cmd) {
            cmd = a;
        } else {
            fprintf(stderr, "postly-keys: unexpected argument '%s'\n", a);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!cmd) {
        usage(help ? stdout : stderr);
        return help ? 0 : EXIT_USAGE;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(cmd, cmds[i].name) != 0)
            continue;
        if (help) {
            printf("usage: postly-keys [--data DIR] %s%s\n\n%s", cmds[i].name,
                   cmds[i].fn == cmd_rotate  ? " [--max-lifetime S] [--leeway S]"
                   : cmds[i].fn == cmd_prune ? " [--kid KID]"
                                             : "",
                   cmds[i].help);
            return 0;
        }
        if (o.kid && cmds[i].fn != cmd_prune) {
            fprintf(stderr, "postly-keys: --kid only applies to prune\n");
            return EXIT_USAGE;
        }
        return cmds[i].fn(&o);
    }
    fprintf(stderr, "postly-keys: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
