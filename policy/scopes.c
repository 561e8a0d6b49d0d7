/*
 * policy/scopes.c — the scope registry and bundle tables (see scopes.h for the contract).
 * The rows are data: a new scope is a new row at the next free bit plus a line in
 * policy/scopes.lock, never an edit of an existing row's bit.
 */
#include "policy/scopes.h"

#include <string.h>

#define ROW(b, n, c, d, x) [b] = {b, n, sizeof(n) - 1, c, d, x}

/* Descriptions are the product page's wording, verbatim. */
static const pol_scope_info scopes[POL_SCOPE_COUNT] = {
    ROW(POL_SCOPE_WORKSPACE_READ, "workspace:read", POL_CAT_WORKSPACE,
        "Read the active workspace profile, settings, and execution context.", 0),
    ROW(POL_SCOPE_WORKSPACE_LIST, "workspace:list", POL_CAT_WORKSPACE,
        "List available workspaces the authenticated user can access.", 0),
    ROW(POL_SCOPE_POSTS_READ, "posts:read", POL_CAT_PUBLISHING,
        "Read post content, metadata, platform targets, and publishing history.", 0),
    ROW(POL_SCOPE_POSTS_CREATE, "posts:create", POL_CAT_PUBLISHING,
        "Create new posts from AI-generated or user-approved content.", 0),
    ROW(POL_SCOPE_POSTS_UPDATE, "posts:update", POL_CAT_PUBLISHING,
        "Update post copy, media, schedule details, platform metadata, or campaign assignment.", 0),
    ROW(POL_SCOPE_POSTS_DELETE, "posts:delete", POL_CAT_PUBLISHING,
        "Delete posts when the user has approved destructive publishing actions.", 1),
    ROW(POL_SCOPE_POSTS_SCHEDULE, "posts:schedule", POL_CAT_PUBLISHING,
        "Schedule posts for future publishing windows.", 0),
    ROW(POL_SCOPE_POSTS_PUBLISH, "posts:publish", POL_CAT_PUBLISHING,
        "Publish approved content immediately through Postly execution services.", 1),
    ROW(POL_SCOPE_POSTS_STATUS_READ, "posts:status:read", POL_CAT_PUBLISHING,
        "Retrieve publishing status, failures, queue state, and execution progress.", 0),
    ROW(POL_SCOPE_DRAFTS_READ, "drafts:read", POL_CAT_DRAFTS,
        "Read existing drafts and draft metadata.", 0),
    ROW(POL_SCOPE_DRAFTS_CREATE, "drafts:create", POL_CAT_DRAFTS,
        "Create drafts for review, approval, collaboration, or scheduling.", 0),
    ROW(POL_SCOPE_DRAFTS_UPDATE, "drafts:update", POL_CAT_DRAFTS,
        "Update draft copy, media references, campaign metadata, or target platforms.", 0),
    ROW(POL_SCOPE_DRAFTS_DELETE, "drafts:delete", POL_CAT_DRAFTS,
        "Delete drafts when explicitly allowed by the user or workspace policy.", 1),
    ROW(POL_SCOPE_MEDIA_READ, "media:read", POL_CAT_MEDIA,
        "Read media library assets and metadata.", 0),
    ROW(POL_SCOPE_MEDIA_UPLOAD, "media:upload", POL_CAT_MEDIA,
        "Upload images, videos, and creative assets for publishing.", 0),
    ROW(POL_SCOPE_MEDIA_UPDATE, "media:update", POL_CAT_MEDIA,
        "Update media metadata, captions, tags, or campaign assignment.", 0),
    ROW(POL_SCOPE_MEDIA_DELETE, "media:delete", POL_CAT_MEDIA,
        "Delete media assets when permitted by workspace policy.", 1),
    ROW(POL_SCOPE_CAMPAIGNS_READ, "campaigns:read", POL_CAT_CAMPAIGNS,
        "Read campaign details, status, related posts, and campaign metadata.", 0),
    ROW(POL_SCOPE_CAMPAIGNS_CREATE, "campaigns:create", POL_CAT_CAMPAIGNS,
        "Create new publishing campaigns and campaign containers.", 0),
    ROW(POL_SCOPE_CAMPAIGNS_UPDATE, "campaigns:update", POL_CAT_CAMPAIGNS,
        "Update campaign names, goals, schedules, post assignments, or metadata.", 0),
    ROW(POL_SCOPE_CAMPAIGNS_DELETE, "campaigns:delete", POL_CAT_CAMPAIGNS,
        "Delete campaigns when explicitly permitted.", 1),
    ROW(POL_SCOPE_SOCIAL_ACCOUNTS_READ, "social_accounts:read", POL_CAT_SOCIAL_ACCOUNTS,
        "Read connected social account metadata and platform identity.", 0),
    ROW(POL_SCOPE_SOCIAL_ACCOUNTS_LIST, "social_accounts:list", POL_CAT_SOCIAL_ACCOUNTS,
        "List social accounts available to the authenticated workspace.", 0),
    ROW(POL_SCOPE_ANALYTICS_READ, "analytics:read", POL_CAT_ANALYTICS,
        "Read general analytics summaries across connected platforms.", 0),
    ROW(POL_SCOPE_ANALYTICS_FACEBOOK_READ, "analytics:facebook:read", POL_CAT_ANALYTICS,
        "Read Facebook analytics through Postly analytics tools and resources.", 0),
    ROW(POL_SCOPE_ANALYTICS_INSTAGRAM_READ, "analytics:instagram:read", POL_CAT_ANALYTICS,
        "Read Instagram analytics through Postly analytics tools and resources.", 0),
    ROW(POL_SCOPE_ANALYTICS_PINTEREST_READ, "analytics:pinterest:read", POL_CAT_ANALYTICS,
        "Read Pinterest analytics through Postly analytics tools and resources.", 0),
    ROW(POL_SCOPE_ANALYTICS_YOUTUBE_READ, "analytics:youtube:read", POL_CAT_ANALYTICS,
        "Read YouTube analytics through Postly analytics tools and resources.", 0),
    ROW(POL_SCOPE_ANALYTICS_GMB_READ, "analytics:gmb:read", POL_CAT_ANALYTICS,
        "Read Google My Business analytics through Postly analytics tools and resources.", 0),
    ROW(POL_SCOPE_ANALYTICS_LINKEDIN_READ, "analytics:linkedin:read", POL_CAT_ANALYTICS,
        "Read LinkedIn analytics through Postly analytics tools and resources.", 0),
    ROW(POL_SCOPE_ANALYTICS_X_READ, "analytics:x:read", POL_CAT_ANALYTICS,
        "Read X / Twitter analytics through Postly analytics tools and resources.", 0),
};

static const struct {
    const char *name;
    const char *title;
} categories[POL_CAT__COUNT] = {
    [POL_CAT_WORKSPACE] = {"workspace", "Workspace Scopes"},
    [POL_CAT_PUBLISHING] = {"publishing", "Publishing Scopes"},
    [POL_CAT_DRAFTS] = {"drafts", "Draft Scopes"},
    [POL_CAT_MEDIA] = {"media", "Media Scopes"},
    [POL_CAT_CAMPAIGNS] = {"campaigns", "Campaign Scopes"},
    [POL_CAT_SOCIAL_ACCOUNTS] = {"social_accounts", "Social Account Scopes"},
    [POL_CAT_ANALYTICS] = {"analytics", "Analytics Scopes"},
};

#define M(s) POL_MASK(POL_SCOPE_##s)

/* Exactly the product page's lists, in its order of bundles. */
static const pol_bundle_info bundles[POL_BUNDLE_COUNT] = {
    [POL_BUNDLE_ANALYTICS_READONLY] =
        {"analytics-readonly", "Read-Only Analytics Assistant",
         "Recommended for AI assistants that answer analytics questions without publishing or "
         "editing content.",
         M(WORKSPACE_READ) | M(WORKSPACE_LIST) | M(SOCIAL_ACCOUNTS_READ) | M(ANALYTICS_READ)},
    [POL_BUNDLE_ANALYTICS_FULL] =
        {"analytics-full", "Full Analytics Access",
         "Grant broad analytics visibility across every supported analytics integration.",
         M(WORKSPACE_READ) | M(WORKSPACE_LIST) | M(SOCIAL_ACCOUNTS_READ) | M(ANALYTICS_READ) |
             POL_MASK_PLATFORMS},
    [POL_BUNDLE_PUBLISHING_ASSISTANT] =
        {"publishing-assistant", "AI Publishing Assistant",
         "Useful for agents that can draft, schedule, publish, and monitor posts through Postly.",
         M(WORKSPACE_READ) | M(WORKSPACE_LIST) | M(SOCIAL_ACCOUNTS_LIST) | M(POSTS_READ) |
             M(POSTS_CREATE) | M(POSTS_UPDATE) | M(POSTS_SCHEDULE) | M(POSTS_PUBLISH) |
             M(POSTS_STATUS_READ) | M(DRAFTS_READ) | M(DRAFTS_CREATE) | M(DRAFTS_UPDATE) |
             M(MEDIA_READ) | M(MEDIA_UPLOAD) | M(CAMPAIGNS_READ) | M(CAMPAIGNS_UPDATE)},
    [POL_BUNDLE_CAMPAIGN_OPERATOR] =
        {"campaign-operator", "Campaign Operator",
         "Best for multi-step campaign planning, organization, content staging, and performance "
         "checks.",
         M(WORKSPACE_READ) | M(WORKSPACE_LIST) | M(CAMPAIGNS_READ) | M(CAMPAIGNS_CREATE) |
             M(CAMPAIGNS_UPDATE) | M(POSTS_READ) | M(POSTS_CREATE) | M(POSTS_UPDATE) |
             M(POSTS_SCHEDULE) | M(DRAFTS_CREATE) | M(DRAFTS_UPDATE) | M(MEDIA_READ) |
             M(ANALYTICS_READ)},
};

unsigned pol_scope_count(void)
{
    return POL_SCOPE_COUNT;
}

pl_rc pol_scope_get(unsigned bit, const pol_scope_info **out)
{
    if (!out)
        return PL_ERR_INVALID;
    if (bit >= POL_SCOPE_COUNT)
        return PL_ERR_NOT_FOUND;
    *out = &scopes[bit];
    return PL_OK;
}

pl_rc pol_scope_lookup(const char *name, size_t len, unsigned *bit)
{
    if (!name || !bit)
        return PL_ERR_INVALID;
    if (len > POL_SCOPE_NAME_MAX)
        return PL_ERR_NOT_FOUND;
    for (unsigned i = 0; i < POL_SCOPE_COUNT; i++) {
        if (scopes[i].name_len == len && memcmp(scopes[i].name, name, len) == 0) {
            *bit = i;
            return PL_OK;
        }
    }
    return PL_ERR_NOT_FOUND;
}

/* RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ) */
static int is_scope_char(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x5B) || (c >= 0x5D && c <= 0x7E);
}

pl_rc pol_scope_parse_list(const char *list, size_t len, uint64_t *mask, size_t *bad_offset)
{
    pl_rc rc = PL_OK;
    uint64_t m = 0;
    size_t i = 0, bad = 0;

    if (!mask || (!list && len)) {
        rc = PL_ERR_INVALID;
        goto out;
    }
    if (len > POL_SCOPE_LIST_MAX) {
        rc = PL_ERR_TOO_LARGE;
        bad = POL_SCOPE_LIST_MAX;
        goto out;
    }
    while (i < len) {
        size_t start = i;
        unsigned bit;
        while (i < len && is_scope_char((unsigned char)list[i]))
            i++;
        if (i == start || (i < len && list[i] != ' ')) {
            /* empty token (leading or double space) or a character outside scope-token */
            rc = PL_ERR_INVALID;
            bad = i;
            goto out;
        }
        if (pol_scope_lookup(list + start, i - start, &bit) != PL_OK) {
            rc = PL_ERR_NOT_FOUND;
            bad = start;
            goto out;
        }
        m |= POL_MASK(bit);
        if (i < len) {
            i++; /* the single SP */
            if (i == len) {
                rc = PL_ERR_INVALID; /* trailing space */
                bad = i - 1;
                goto out;
            }
        }
    }
out:
    if (mask)
        *mask = rc == PL_OK ? m : 0;
    if (rc != PL_OK && bad_offset)
        *bad_offset = bad;
    return rc;
}

pl_rc pol_scope_format(uint64_t mask, char *buf, size_t size, size_t *out_len)
{
    pl_rc rc = PL_OK;
    size_t n = 0;

    if (!buf || size == 0)
        return PL_ERR_INVALID;
    if (mask & ~(uint64_t)POL_MASK_ALL) {
        rc = PL_ERR_INVALID;
        goto out;
    }
    for (unsigned i = 0; i < POL_SCOPE_COUNT; i++) {
        if (!(mask & POL_MASK(i)))
            continue;
        size_t need = scopes[i].name_len + (n ? 1 : 0);
        if (n + need >= size) {
            rc = PL_ERR_TOO_LARGE;
            goto out;
        }
        if (n)
            buf[n++] = ' ';
        memcpy(buf + n, scopes[i].name, scopes[i].name_len);
        n += scopes[i].name_len;
    }
out:
    if (rc != PL_OK)
        n = 0;
    buf[n] = '\0';
    if (out_len)
        *out_len = n;
    return rc;
}

const char *pol_category_name(pol_category c)
{
    return (unsigned)c < POL_CAT__COUNT ? categories[c].name : "unknown";
}

const char *pol_category_title(pol_category c)
{
    return (unsigned)c < POL_CAT__COUNT ? categories[c].title : "unknown";
}

unsigned pol_bundle_count(void)
{
    return POL_BUNDLE_COUNT;
}

pl_rc pol_bundle_get(unsigned index, const pol_bundle_info **out)
{
    if (!out)
        return PL_ERR_INVALID;
    if (index >= POL_BUNDLE_COUNT)
        return PL_ERR_NOT_FOUND;
    *out = &bundles[index];
    return PL_OK;
}

pl_rc pol_bundle_lookup(const char *id, size_t len, const pol_bundle_info **out)
{
    if (!id || !out)
        return PL_ERR_INVALID;
    for (unsigned i = 0; i < POL_BUNDLE_COUNT; i++) {
        if (strlen(bundles[i].id) == len && memcmp(bundles[i].id, id, len) == 0) {
            *out = &bundles[i];
            return PL_OK;
        }
    }
    return PL_ERR_NOT_FOUND;
}
