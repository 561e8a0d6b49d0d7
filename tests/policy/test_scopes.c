/* tests/policy/test_scopes.c — the scope registry, its lock, parsing, formatting, bundles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/scopes.h"

/* The lock table: the 31 names in bit order. Changing this list is changing the token format. */
static const char *const locked[] = {
    "workspace:read",
    "workspace:list",
    "posts:read",
    "posts:create",
    "posts:update",
    "posts:delete",
    "posts:schedule",
    "posts:publish",
    "posts:status:read",
    "drafts:read",
    "drafts:create",
    "drafts:update",
    "drafts:delete",
    "media:read",
    "media:upload",
    "media:update",
    "media:delete",
    "campaigns:read",
    "campaigns:create",
    "campaigns:update",
    "campaigns:delete",
    "social_accounts:read",
    "social_accounts:list",
    "analytics:read",
    "analytics:facebook:read",
    "analytics:instagram:read",
    "analytics:pinterest:read",
    "analytics:youtube:read",
    "analytics:gmb:read",
    "analytics:linkedin:read",
    "analytics:x:read",
};

static void test_registry_matches_lock_table(void **state)
{
    (void)state;
    assert_int_equal(pol_scope_count(), 31);
    assert_int_equal(sizeof locked / sizeof locked[0], pol_scope_count());
    for (unsigned i = 0; i < pol_scope_count(); i++) {
        const pol_scope_info *s = NULL;
        unsigned bit = 99;
        assert_int_equal(pol_scope_get(i, &s), PL_OK);
        assert_int_equal(s->bit, i);
        assert_string_equal(s->name, locked[i]);
        assert_int_equal(s->name_len, strlen(locked[i]));
        assert_true(s->name_len <= POL_SCOPE_NAME_MAX);
        assert_non_null(s->description);
        assert_true(strlen(s->description) > 10);
        assert_int_equal(pol_scope_lookup(locked[i], strlen(locked[i]), &bit), PL_OK);
        assert_int_equal(bit, i);
    }
    const pol_scope_info *s = NULL;
    assert_int_equal(pol_scope_get(31, &s), PL_ERR_NOT_FOUND);
    assert_null(s);
}

/* policy/scopes.lock, the file `check` reads, agrees with the compiled-in registry. */
static void test_registry_matches_lock_file(void **state)
{
    (void)state;
    FILE *f = fopen(POSTLY_SOURCE_DIR "/policy/scopes.lock", "r");
    assert_non_null(f);
    char line[256];
    unsigned n = 0;
    while (fgets(line, sizeof line, f)) {
        char name[128], *end = NULL;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        unsigned long bit = strtoul(line, &end, 10);
        assert_true(end != line);
        assert_int_equal(sscanf(end, " %127s", name), 1);
        assert_int_equal(bit, n);
        assert_true(bit < pol_scope_count());
        const pol_scope_info *s = NULL;
        assert_int_equal(pol_scope_get((unsigned)bit, &s), PL_OK);
        assert_string_equal(s->name, name);
        n++;
    }
    fclose(f);
    assert_int_equal(n, pol_scope_count());
}

static void test_categories_and_destructive(void **state)
{
    (void)state;
    unsigned per_cat[POL_CAT__COUNT] = {0};
    uint64_t destructive = 0;
    for (unsigned i = 0; i < pol_scope_count(); i++) {
        const pol_scope_info *s = NULL;
        assert_int_equal(pol_scope_get(i, &s), PL_OK);
        per_cat[s->category]++;
        if (s->destructive)
            destructive |= POL_MASK(i);
        /* destructive == *:delete or posts:publish */
        size_t l = s->name_len;
        int is_delete = l > 7 && strcmp(s->name + l - 7, ":delete") == 0;
        assert_int_equal(s->destructive, is_delete || strcmp(s->name, "posts:publish") == 0);
    }
    assert_int_equal(destructive, POL_MASK_DESTRUCTIVE);
    /* the product page: 2 workspace, 7 publishing, 4 drafts, 4 media, 4 campaigns,
     * 2 social accounts, 8 analytics */
    const unsigned expect[POL_CAT__COUNT] = {2, 7, 4, 4, 4, 2, 8};
    for (unsigned c = 0; c < POL_CAT__COUNT; c++)
        assert_int_equal(per_cat[c], expect[c]);
    assert_string_equal(pol_category_name(POL_CAT_SOCIAL_ACCOUNTS), "social_accounts");
    assert_string_equal(pol_category_name((pol_category)77), "unknown");
}

static void test_parse_list(void **state)
{
    (void)state;
    /* RFC 6749 §3.3: scope-token *( SP scope-token ); `off` is where a bad list goes wrong */
    static const struct {
        const char *s;
        pl_rc rc;
        uint64_t mask; /* PL_OK */
        size_t off;    /* errors */
    } cases[] = {
        {"workspace:read analytics:x:read posts:publish", PL_OK,
         POL_MASK(0) | POL_MASK(30) | POL_MASK(7), 0},
        {"", PL_OK, 0, 0},
        {"posts:read posts:read", PL_OK, POL_MASK(2), 0},
        {"workspace:read posts:frobnicate", PL_ERR_NOT_FOUND, 0, 15},
        {"workspace:read  posts:read", PL_ERR_INVALID, 0, 15},
        {" posts:read", PL_ERR_INVALID, 0, 0},
        {"posts:read ", PL_ERR_INVALID, 0, 10},
        {"posts:read\"x", PL_ERR_INVALID, 0, 10},
        {"posts:read\tmedia:read", PL_ERR_INVALID, 0, 10},
        /* analytics:read is a name of its own, not a prefix that matches platforms */
        {"analytics", PL_ERR_NOT_FOUND, 0, 0},
    };
    uint64_t m;
    size_t off;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        m = 1;
        off = 999;
        pl_rc rc = pol_scope_parse_list(cases[i].s, strlen(cases[i].s), &m, &off);
        if (rc != cases[i].rc)
            fail_msg("'%s': rc %d, want %d", cases[i].s, rc, cases[i].rc);
        assert_int_equal(m, cases[i].mask); /* 0 on an error: nothing half-parsed */
        if (rc != PL_OK && cases[i].off != off)
            fail_msg("'%s': offset %zu, want %zu", cases[i].s, off, cases[i].off);
    }

    char big[POL_SCOPE_LIST_MAX + 2];
    memset(big, 'a', sizeof big);
    assert_int_equal(pol_scope_parse_list(big, sizeof big, &m, &off), PL_ERR_TOO_LARGE);
}

static void test_format_roundtrip(void **state)
{
    (void)state;
    char buf[POL_SCOPE_FORMAT_MAX];
    size_t n = 0;
    assert_int_equal(pol_scope_format(POL_MASK_ALL, buf, sizeof buf, &n), PL_OK);
    assert_int_equal(n, strlen(buf));
    uint64_t m = 0;
    assert_int_equal(pol_scope_parse_list(buf, n, &m, NULL), PL_OK);
    assert_int_equal(m, POL_MASK_ALL);
    /* canonical order regardless of input order */
    const char *s = "analytics:x:read workspace:read";
    assert_int_equal(pol_scope_parse_list(s, strlen(s), &m, NULL), PL_OK);
    assert_int_equal(pol_scope_format(m, buf, sizeof buf, &n), PL_OK);
    assert_string_equal(buf, "workspace:read analytics:x:read");
    assert_int_equal(pol_scope_format(0, buf, sizeof buf, &n), PL_OK);
    assert_string_equal(buf, "");
    assert_int_equal(pol_scope_format(POL_MASK(31), buf, sizeof buf, &n), PL_ERR_INVALID);
    assert_int_equal(pol_scope_format(POL_MASK(0) | POL_MASK(1), buf, 20, &n), PL_ERR_TOO_LARGE);
    assert_string_equal(buf, "");
    assert_int_equal(pol_scope_format(POL_MASK(0), buf, 15, &n), PL_OK);
    assert_string_equal(buf, "workspace:read");
    assert_int_equal(pol_scope_format(POL_MASK(0), buf, 14, &n), PL_ERR_TOO_LARGE);
}

static uint64_t parse(const char *s)
{
    uint64_t m = 0;
    assert_int_equal(pol_scope_parse_list(s, strlen(s), &m, NULL), PL_OK);
    return m;
}

/* The bundles are the product page's lists, verbatim. */
static void test_bundles_match_seed(void **state)
{
    (void)state;
    static const struct {
        const char *id, *title, *scopes;
    } seed[] = {
        {"analytics-readonly", "Read-Only Analytics Assistant",
         "workspace:read workspace:list social_accounts:read analytics:read"},
        {"analytics-full", "Full Analytics Access",
         "workspace:read workspace:list social_accounts:read analytics:read "
         "analytics:facebook:read analytics:instagram:read analytics:pinterest:read "
         "analytics:youtube:read analytics:gmb:read analytics:linkedin:read analytics:x:read"},
        {"publishing-assistant", "AI Publishing Assistant",
         "workspace:read workspace:list social_accounts:list posts:read posts:create "
         "posts:update posts:schedule posts:publish posts:status:read drafts:read drafts:create "
         "drafts:update media:read media:upload campaigns:read campaigns:update"},
        {"campaign-operator", "Campaign Operator",
         "workspace:read workspace:list campaigns:read campaigns:create campaigns:update "
         "posts:read posts:create posts:update posts:schedule drafts:create drafts:update "
         "media:read analytics:read"},
    };
    assert_int_equal(pol_bundle_count(), 4);
    for (unsigned i = 0; i < 4; i++) {
        const pol_bundle_info *b = NULL, *l = NULL;
        assert_int_equal(pol_bundle_get(i, &b), PL_OK);
        assert_string_equal(b->id, seed[i].id);
        assert_string_equal(b->display_name, seed[i].title);
        assert_int_equal(b->mask, parse(seed[i].scopes));
        assert_int_equal(pol_bundle_lookup(seed[i].id, strlen(seed[i].id), &l), PL_OK);
        assert_ptr_equal(l, b);
    }
    const pol_bundle_info *b = NULL;
    assert_int_equal(pol_bundle_lookup("analytics", 9, &b), PL_ERR_NOT_FOUND);
    assert_int_equal(pol_bundle_get(4, &b), PL_ERR_NOT_FOUND);
    /* analytics:read does not imply platform scopes */
    assert_int_equal(pol_bundle_get(POL_BUNDLE_ANALYTICS_READONLY, &b), PL_OK);
    assert_int_equal(b->mask & POL_MASK_PLATFORMS, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_matches_lock_table),
        cmocka_unit_test(test_registry_matches_lock_file),
        cmocka_unit_test(test_categories_and_destructive),
        cmocka_unit_test(test_parse_list),
        cmocka_unit_test(test_format_roundtrip),
        cmocka_unit_test(test_bundles_match_seed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
