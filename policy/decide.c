/*
 * policy/decide.c — the run-time decision: a few AND/ANDNOT operations on precompiled masks.
 * No allocation, no parsing, no locks; safe to call from any thread on a shared table.
 */
#include "policy/policy_int.h"

static const char *const verdict_names[] = {
    [POL_ALLOW] = "ALLOW",
    [POL_DENY_SCOPE] = "DENY_SCOPE",
    [POL_DENY_POLICY] = "DENY_POLICY",
    [POL_NEEDS_APPROVAL] = "NEEDS_APPROVAL",
};

const char *pol_verdict_name(pol_verdict v)
{
    return (unsigned)v <= POL_NEEDS_APPROVAL ? verdict_names[v] : "UNKNOWN";
}

pl_rc pol_decide(const pol_compiled *p, uint64_t token_mask, uint32_t ws, uint32_t cls,
                 uint32_t tool, pol_decision *out)
{
    if (!p || !out || ws >= p->n_ws || cls >= POL_CLASS_COUNT || tool >= p->n_tools)
        return PL_ERR_INVALID;
    const tool_row *t = &p->tools[tool];
    const uint64_t ceiling = p->ws_ceiling[ws];
    const uint64_t allowed = ceiling & ~p->forbid[cls];
    const uint64_t any_gone = (t->any && !(t->any & allowed)) ? t->any : 0;
    const uint64_t blocked = (t->all & ~allowed) | any_gone;

    out->effective = token_mask & allowed;
    out->help = 0;
    out->blocked = 0;
    out->tool_rule = t->rule;
    out->rule = POL_RULE_NONE;
    if (blocked) {
        /* the ceiling is named when it removes something the tool needs, else the forbid
         * rule of the lowest blocked bit */
        const uint64_t by_ceiling = (t->all & ~ceiling) | ((t->any && !(t->any & ceiling)) ? 1 : 0);
        out->verdict = POL_DENY_POLICY;
        out->blocked = blocked;
        if (by_ceiling) {
            out->rule = p->ws_rule[ws];
        } else {
            const uint64_t f = blocked & p->forbid[cls];
            out->rule = f ? p->forbid_rule[cls][__builtin_ctzll(f)] : POL_RULE_NONE;
        }
        return PL_OK;
    }
    /* against the effective mask: a held scope the policy removes does not count (all is
     * within `allowed` here, so only any-of can differ) */
    const uint64_t missing_all = t->all & ~out->effective;
    const uint64_t missing_any = (t->any && !(t->any & out->effective)) ? (t->any & allowed) : 0;
    if (missing_all | missing_any) {
        out->verdict = POL_DENY_SCOPE;
        out->help = missing_all | missing_any;
        return PL_OK;
    }
    if (t->approve_classes & (1u << cls)) {
        out->verdict = POL_NEEDS_APPROVAL;
        out->rule = t->approve_rule[cls];
        return PL_OK;
    }
    out->verdict = POL_ALLOW;
    out->rule = p->ws_rule[ws];
    return PL_OK;
}

pl_rc pol_grantable(const pol_compiled *p, pol_role role, uint32_t ws, uint32_t cls,
                    uint64_t requested, pol_grant *out)
{
    if (!p || !out || (unsigned)role >= POL_ROLE_COUNT || ws >= p->n_ws || cls >= POL_CLASS_COUNT)
        return PL_ERR_INVALID;
    requested &= POL_MASK_ALL;
    out->denied_role = requested & ~p->role_grant[role];
    out->denied_ceiling = requested & ~p->ws_ceiling[ws];
    out->denied_class = requested & p->forbid[cls];
    out->grantable = requested & ~(out->denied_role | out->denied_ceiling | out->denied_class);
    out->ceiling_rule = p->ws_rule[ws];
    return PL_OK;
}

pl_rc pol_forbid_rule(const pol_compiled *p, pol_class cls, unsigned bit, uint32_t *rule)
{
    if (!p || !rule || (unsigned)cls >= POL_CLASS_COUNT || bit >= 64)
        return PL_ERR_INVALID;
    *rule = p->forbid_rule[cls][bit];
    return PL_OK;
}
