/* authz/grant.c — what a user may grant a client in a workspace: the policy engine's
 * pol_grantable() when a policy file is loaded (--policy), else a built-in table that
 * mirrors the default policy's roles (used by tests and until a policy file is given). */
#include "server_int.h"

#include <string.h>

#define M(bit) POL_MASK(POL_SCOPE_##bit)

/* Built-in fallback, documented in docs/authz.md "Without a policy file". */
static uint64_t read_only_mask(void)
{
    uint64_t m = 0;
    for (unsigned b = 0; b < pol_scope_count(); b++) {
        const pol_scope_info *si;
        if (pol_scope_get(b, &si) != PL_OK)
            continue;
        if ((si->name_len > 5 && strcmp(si->name + si->name_len - 5, ":read") == 0) ||
            (si->name_len > 5 && strcmp(si->name + si->name_len - 5, ":list") == 0))
            m |= POL_MASK(b);
    }
    return m;
}

static uint64_t builtin_role_mask(const char *role)
{
    static const struct {
        const char *role;
        int kind; /* 0 all, 1 all but destructive, 2 read-only */
    } tab[] = {{"owner", 0}, {"admin", 0}, {"editor", 1}, {"viewer", 2}};
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        if (strcmp(tab[i].role, role) != 0)
            continue;
        switch (tab[i].kind) {
        case 0:
            return POL_MASK_ALL;
        case 1:
            return POL_MASK_ALL & ~POL_MASK_DESTRUCTIVE;
        default:
            return read_only_mask();
        }
    }
    return 0;
}

pl_rc az_grantable(az_server *s, const char *role, const char *ws, const char *cls,
                   uint64_t requested, pol_grant *out)
{
    memset(out, 0, sizeof *out);
    out->ceiling_rule = POL_RULE_NONE;
    if (s->policy) {
        pol_role r;
        pol_class c;
        uint32_t wi;
        pl_rc rc = pol_role_lookup(role, strlen(role), &r);
        if (rc == PL_OK)
            rc = pol_class_lookup(cls, strlen(cls), &c);
        if (rc == PL_OK)
            rc = pol_workspace_index(s->policy, ws, strlen(ws), &wi, NULL);
        if (rc == PL_OK)
            rc = pol_grantable(s->policy, r, wi, (uint32_t)c, requested, out);
        return rc;
    }
    {
        uint64_t rm = builtin_role_mask(role);
        out->grantable = requested & rm;
        out->denied_role = requested & ~rm;
    }
    return PL_OK;
}

uint64_t az_default_scope(void)
{
    /* The smallest read-only recommended bundle (docs/authz.md "Default scope"). */
    uint64_t ro = read_only_mask(), best = 0;
    int best_bits = 99;
    for (unsigned i = 0; i < pol_bundle_count(); i++) {
        const pol_bundle_info *b;
        int bits;
        if (pol_bundle_get(i, &b) != PL_OK || (b->mask & ~ro))
            continue;
        bits = __builtin_popcountll(b->mask);
        if (bits < best_bits) {
            best = b->mask;
            best_bits = bits;
        }
    }
    return best ? best : POL_MASK(POL_SCOPE_WORKSPACE_READ);
}

void az_scope_str(uint64_t mask, char out[POL_SCOPE_FORMAT_MAX])
{
    if (pol_scope_format(mask & POL_MASK_ALL, out, POL_SCOPE_FORMAT_MAX, NULL) != PL_OK)
        out[0] = '\0';
}
