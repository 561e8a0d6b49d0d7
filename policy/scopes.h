/*
 * policy/scopes.h — the scope registry and the recommended bundles (ARCHITECTURE.md §6).
 *
 * The 31 scopes of the product page have fixed bit positions in a uint64_t, in the order the
 * product page lists them: workspace:read = bit 0 … analytics:x:read = bit 30. A bit is never
 * moved or reused: policy/scopes.lock records the assignment, tests/policy/test_scopes.c
 * compares this table against it, and `postly-policy check` reports any policy file or lock
 * that disagrees. A new scope takes the next free bit (31, 32, …); a retired scope keeps its
 * bit forever.
 *
 * analytics:read does NOT imply the seven analytics:<platform>:read scopes: a platform scope
 * grants one network without broad analytics, and broad analytics grants no platform.
 *
 * Everything here is constant data: every function is pure, thread-safe, allocation-free,
 * and returned pointers are borrowed from static tables that live for the whole program.
 */
#ifndef POSTLY_POLICY_SCOPES_H
#define POSTLY_POLICY_SCOPES_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* The bit of each scope. Values are part of the token format: never change one. */
enum pol_scope_bit {
    POL_SCOPE_WORKSPACE_READ = 0,
    POL_SCOPE_WORKSPACE_LIST = 1,
    POL_SCOPE_POSTS_READ = 2,
    POL_SCOPE_POSTS_CREATE = 3,
    POL_SCOPE_POSTS_UPDATE = 4,
    POL_SCOPE_POSTS_DELETE = 5,
    POL_SCOPE_POSTS_SCHEDULE = 6,
    POL_SCOPE_POSTS_PUBLISH = 7,
    POL_SCOPE_POSTS_STATUS_READ = 8,
    POL_SCOPE_DRAFTS_READ = 9,
    POL_SCOPE_DRAFTS_CREATE = 10,
    POL_SCOPE_DRAFTS_UPDATE = 11,
    POL_SCOPE_DRAFTS_DELETE = 12,
    POL_SCOPE_MEDIA_READ = 13,
    POL_SCOPE_MEDIA_UPLOAD = 14,
    POL_SCOPE_MEDIA_UPDATE = 15,
    POL_SCOPE_MEDIA_DELETE = 16,
    POL_SCOPE_CAMPAIGNS_READ = 17,
    POL_SCOPE_CAMPAIGNS_CREATE = 18,
    POL_SCOPE_CAMPAIGNS_UPDATE = 19,
    POL_SCOPE_CAMPAIGNS_DELETE = 20,
    POL_SCOPE_SOCIAL_ACCOUNTS_READ = 21,
    POL_SCOPE_SOCIAL_ACCOUNTS_LIST = 22,
    POL_SCOPE_ANALYTICS_READ = 23,
    POL_SCOPE_ANALYTICS_FACEBOOK_READ = 24,
    POL_SCOPE_ANALYTICS_INSTAGRAM_READ = 25,
    POL_SCOPE_ANALYTICS_PINTEREST_READ = 26,
    POL_SCOPE_ANALYTICS_YOUTUBE_READ = 27,
    POL_SCOPE_ANALYTICS_GMB_READ = 28,
    POL_SCOPE_ANALYTICS_LINKEDIN_READ = 29,
    POL_SCOPE_ANALYTICS_X_READ = 30,
    POL_SCOPE_COUNT = 31
};

/* The mask of one bit, of every registered scope, and of the destructive scopes
 * (posts:delete, posts:publish, drafts:delete, media:delete, campaigns:delete). */
#define POL_MASK(bit) ((uint64_t)1 << (bit))
#define POL_MASK_ALL  (POL_MASK(POL_SCOPE_COUNT) - 1)
#define POL_MASK_PLATFORMS                                                                         \
    (POL_MASK(POL_SCOPE_ANALYTICS_FACEBOOK_READ) | POL_MASK(POL_SCOPE_ANALYTICS_INSTAGRAM_READ) |  \
     POL_MASK(POL_SCOPE_ANALYTICS_PINTEREST_READ) | POL_MASK(POL_SCOPE_ANALYTICS_YOUTUBE_READ) |   \
     POL_MASK(POL_SCOPE_ANALYTICS_GMB_READ) | POL_MASK(POL_SCOPE_ANALYTICS_LINKEDIN_READ) |        \
     POL_MASK(POL_SCOPE_ANALYTICS_X_READ))
#define POL_MASK_DESTRUCTIVE                                                                       \
    (POL_MASK(POL_SCOPE_POSTS_DELETE) | POL_MASK(POL_SCOPE_POSTS_PUBLISH) |                        \
     POL_MASK(POL_SCOPE_DRAFTS_DELETE) | POL_MASK(POL_SCOPE_MEDIA_DELETE) |                        \
     POL_MASK(POL_SCOPE_CAMPAIGNS_DELETE))

/* Longest scope name, and a buffer size that always fits pol_scope_format() of any mask. */
#define POL_SCOPE_NAME_MAX   32
#define POL_SCOPE_FORMAT_MAX 1024
/* Longest scope list pol_scope_parse_list() accepts (a token's "scope" claim / parameter). */
#define POL_SCOPE_LIST_MAX 4096

/* The seven categories of the product page, in its order. */
typedef enum pol_category {
    POL_CAT_WORKSPACE = 0,
    POL_CAT_PUBLISHING,
    POL_CAT_DRAFTS,
    POL_CAT_MEDIA,
    POL_CAT_CAMPAIGNS,
    POL_CAT_SOCIAL_ACCOUNTS,
    POL_CAT_ANALYTICS,
    POL_CAT__COUNT
} pol_category;

/* One row of the registry. */
typedef struct pol_scope_info {
    unsigned bit;            /* == its index in the registry */
    const char *name;        /* "posts:publish" */
    size_t name_len;         /* strlen(name) */
    pol_category category;   /* POL_CAT_PUBLISHING */
    const char *description; /* the product page's sentence, verbatim */
    int destructive;         /* 1 for posts:publish and every *:delete */
} pol_scope_info;

/* Number of registered scopes (POL_SCOPE_COUNT). */
unsigned pol_scope_count(void);

/* The row of `bit`. PL_ERR_NOT_FOUND if bit >= pol_scope_count(); *out untouched then. */
pl_rc pol_scope_get(unsigned bit, const pol_scope_info **out);

/* Finds the scope named by the `len` bytes at `name` (no NUL needed; exact, case-sensitive).
 * PL_OK and *bit set; PL_ERR_NOT_FOUND for an unknown name; PL_ERR_INVALID for NULL args. */
pl_rc pol_scope_lookup(const char *name, size_t len, unsigned *bit);

/* Parses a space-separated scope list (RFC 6749 §3.3: scope-token *( SP scope-token ),
 * scope-token = 1*( %x21 / %x23-5B / %x5D-7E )) of `len` bytes into a mask. Duplicates are
 * allowed (a scope list is a set). An empty list gives mask 0.
 *  PL_OK             *mask set
 *  PL_ERR_NOT_FOUND  a well-formed token that is not a registered scope
 *  PL_ERR_INVALID    a character outside scope-token, a leading/trailing/double space
 *  PL_ERR_TOO_LARGE  len > POL_SCOPE_LIST_MAX
 * On error *mask is 0 and, if bad_offset is not NULL, *bad_offset is the byte offset of the
 * offending token or character (so a caller can say "unknown scope at offset 14"). */
pl_rc pol_scope_parse_list(const char *list, size_t len, uint64_t *mask, size_t *bad_offset);

/* Writes the scopes of `mask` to buf, canonical: registry (bit) order, one space between
 * names, NUL-terminated; mask 0 gives "". *out_len (may be NULL) gets strlen(buf).
 *  PL_ERR_INVALID    mask has bits outside POL_MASK_ALL (buf gets "")
 *  PL_ERR_TOO_LARGE  size too small (POL_SCOPE_FORMAT_MAX is always enough; buf gets "") */
pl_rc pol_scope_format(uint64_t mask, char *buf, size_t size, size_t *out_len);

/* The stable lower-case name of a category ("social_accounts") and the product page's
 * title for it ("Social Account Scopes"). "unknown" for an out-of-range value. */
const char *pol_category_name(pol_category c);
const char *pol_category_title(pol_category c);

/* ---- Recommended bundles (product page, "Recommended Scope Bundles") ---- */

enum pol_bundle_index {
    POL_BUNDLE_ANALYTICS_READONLY = 0,   /* "Read-Only Analytics Assistant" */
    POL_BUNDLE_ANALYTICS_FULL = 1,       /* "Full Analytics Access" */
    POL_BUNDLE_PUBLISHING_ASSISTANT = 2, /* "AI Publishing Assistant" */
    POL_BUNDLE_CAMPAIGN_OPERATOR = 3,    /* "Campaign Operator" */
    POL_BUNDLE_COUNT = 4
};

typedef struct pol_bundle_info {
    const char *id;           /* stable id used in policy files and consent URLs */
    const char *display_name; /* the product page's title */
    const char *description;  /* the product page's sentence */
    uint64_t mask;            /* exactly the product page's list */
} pol_bundle_info;

unsigned pol_bundle_count(void);

/* The bundle at `index` (enum pol_bundle_index). PL_ERR_NOT_FOUND if out of range. */
pl_rc pol_bundle_get(unsigned index, const pol_bundle_info **out);

/* The bundle whose id is the `len` bytes at `id`. PL_ERR_NOT_FOUND if none. */
pl_rc pol_bundle_lookup(const char *id, size_t len, const pol_bundle_info **out);

#endif
