/* tests/mcp/test_schema.c — mcp_schema_validate (mcp/schema.c) reads each schema node's
 * keywords in one pass since it runs on every tools/call; its answers (return code, field,
 * message) must stay exactly those of the keyword-by-keyword validator it replaced, which is
 * kept below as the reference. Differential over every tool's input schema with argument
 * objects built at random from it (valid values, wrong types, too long, out of range, too
 * many items, bad items, enum misses, unknown and missing arguments). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mcp/mcp_int.h"

/* ---- the reference: mcp/schema.c's validate() before the one-pass change ---- */
static size_t utf8_codepoints(const char *s, size_t n)
{
    size_t i, cp = 0;
    for (i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            cp++;
    return cp;
}

static int type_matches(const char *type, const json_t *v)
{
    if (strcmp(type, "object") == 0)
        return json_is_object(v);
    if (strcmp(type, "array") == 0)
        return json_is_array(v);
    if (strcmp(type, "string") == 0)
        return json_is_string(v);
    if (strcmp(type, "integer") == 0)
        return json_is_integer(v);
    if (strcmp(type, "number") == 0)
        return json_is_number(v);
    if (strcmp(type, "boolean") == 0)
        return json_is_boolean(v);
    if (strcmp(type, "null") == 0)
        return json_is_null(v);
    return 0;
}

static pl_rc ref_fail(ex_err *err, const char *path, const char *what)
{
    if (err) {
        snprintf(err->field, sizeof err->field, "%s", *path ? path : "arguments");
        snprintf(err->msg, sizeof err->msg, "%s: %s", *path ? path : "arguments", what);
    }
    return PL_ERR_INVALID;
}

static const char *type_words(const char *type)
{
    static const char *const words[][2] = {{"integer", "must be an integer"},
                                           {"object", "must be an object"},
                                           {"array", "must be an array"},
                                           {"string", "must be a string"},
                                           {"boolean", "must be true or false"},
                                           {"number", "must be a number"},
                                           {"null", "must be null"}};
    size_t i;
    for (i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcmp(words[i][0], type) == 0)
            return words[i][1];
    return "has the wrong type";
}

static pl_rc ref_validate(const json_t *s, const json_t *v, const char *path, ex_err *err)
{
    const char *type = json_string_value(json_object_get(s, "type"));
    const json_t *e, *x;
    char sub[64];
    size_t i;

    char what[192];

    const json_t *types = json_object_get(s, "type");
    if (json_is_array(types)) {
        int any = 0;
        json_array_foreach(types, i, x)
        {
            if (json_is_string(x) && type_matches(json_string_value(x), v))
                any = 1;
        }
        if (!any)
            return ref_fail(err, path, "has the wrong type");
    } else if (type && !type_matches(type, v)) {
        return ref_fail(err, path, type_words(type));
    }
    e = json_object_get(s, "enum");
    if (json_is_array(e)) {
        int found = 0;
        json_array_foreach(e, i, x)
        {
            if (json_equal((json_t *)x, (json_t *)v)) {
                found = 1;
                break;
            }
        }
        if (!found) {
            char *allowed = json_dumps(e, JSON_COMPACT);
            snprintf(what, sizeof what, "must be one of %.160s", allowed ? allowed : "");
            free(allowed);
            return ref_fail(err, path, what);
        }
    }
    if (json_is_string(v)) {
        size_t cp = utf8_codepoints(json_string_value(v), json_string_length(v));
        x = json_object_get(s, "maxLength");
        if (json_is_integer(x) && cp > (size_t)json_integer_value(x)) {
            snprintf(what, sizeof what, "longer than %lld characters",
                     (long long)json_integer_value(x));
            return ref_fail(err, path, what);
        }
        x = json_object_get(s, "minLength");
        if (json_is_integer(x) && cp < (size_t)json_integer_value(x)) {
            snprintf(what, sizeof what, "shorter than %lld characters",
                     (long long)json_integer_value(x));
            return ref_fail(err, path, what);
        }
    }
    if (json_is_number(v)) {
        double d = json_number_value(v);
        x = json_object_get(s, "minimum");
        if (json_is_number(x) && d < json_number_value(x)) {
            snprintf(what, sizeof what, "must be at least %lld", (long long)json_number_value(x));
            return ref_fail(err, path, what);
        }
        x = json_object_get(s, "maximum");
        if (json_is_number(x) && d > json_number_value(x)) {
            snprintf(what, sizeof what, "must be at most %lld", (long long)json_number_value(x));
            return ref_fail(err, path, what);
        }
    }
    if (json_is_array(v)) {
        const json_t *items = json_object_get(s, "items");
        x = json_object_get(s, "maxItems");
        if (json_is_integer(x) && json_array_size(v) > (size_t)json_integer_value(x)) {
            snprintf(what, sizeof what, "more than %lld items", (long long)json_integer_value(x));
            return ref_fail(err, path, what);
        }
        x = json_object_get(s, "minItems");
        if (json_is_integer(x) && json_array_size(v) < (size_t)json_integer_value(x)) {
            snprintf(what, sizeof what, "fewer than %lld items", (long long)json_integer_value(x));
            return ref_fail(err, path, what);
        }
        if (items) {
            json_array_foreach(v, i, x)
            {
                pl_rc rc;
                snprintf(sub, sizeof sub, "%s[%zu]", path, i);
                rc = ref_validate(items, x, sub, err);
                if (rc != PL_OK)
                    return rc;
            }
        }
    }
    if (json_is_object(v)) {
        const json_t *props = json_object_get(s, "properties");
        const json_t *req = json_object_get(s, "required");
        const char *k;
        json_t *pv;
        json_array_foreach(req, i, x)
        {
            const char *name = json_string_value(x);
            if (name && !json_object_get(v, name)) {
                snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", name);
                return ref_fail(err, sub, "required");
            }
        }
        json_object_foreach((json_t *)v, k, pv)
        {
            const json_t *ps = json_object_get(props, k);
            snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", k);
            if (!ps) {
                if (json_is_false(json_object_get(s, "additionalProperties")))
                    return ref_fail(err, sub, "unknown argument");
                continue;
            }
            {
                pl_rc rc = ref_validate(ps, pv, sub, err);
                if (rc != PL_OK)
                    return rc;
            }
        }
    }
    return PL_OK;
}

/* ---- random arguments from a schema ---- */

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static json_t *random_for(const json_t *schema, uint64_t *s, int depth);

static json_t *random_string(const json_t *schema, uint64_t *s)
{
    json_int_t max = json_integer_value(json_object_get(schema, "maxLength"));
    size_t n;
    char *buf;
    json_t *v;
    switch (rnd(s) % 4) {
    case 0:
        n = 0;
        break;
    case 1:
        n = (size_t)(max > 0 ? max : 10);
        break;
    case 2:
        n = (size_t)(max > 0 ? max + 1 : 11);
        break;
    default:
        n = (size_t)(rnd(s) % 40);
    }
    buf = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)('a' + rnd(s) % 26);
    buf[n] = '\0';
    if (n && rnd(s) % 3 == 0) { /* a two-byte character: code points, not bytes */
        buf[0] = (char)0xc3;
        memmove(buf + 2, buf + 1, n);
        buf[1] = (char)0xa9;
    }
    v = json_string(buf);
    free(buf);
    return v;
}

static json_t *random_for(const json_t *schema, uint64_t *s, int depth)
{
    const json_t *t = json_object_get(schema, "type"), *e = json_object_get(schema, "enum");
    const char *type = json_string_value(t);
    unsigned pick = (unsigned)(rnd(s) % 10);
    if (pick == 0) /* any other kind */
        switch (rnd(s) % 6) {
        case 0:
            return json_integer((json_int_t)(rnd(s) % 100));
        case 1:
            return json_string("x");
        case 2:
            return json_true();
        case 3:
            return json_null();
        case 4:
            return json_array();
        default:
            return json_real(1.5);
        }
    if (e && json_array_size(e) && pick < 6)
        return json_deep_copy(json_array_get(e, rnd(s) % json_array_size(e)));
    if (e && pick < 8)
        return json_string("not-in-the-enum");
    if (!type && json_is_array(t))
        type = json_string_value(json_array_get(t, rnd(s) % json_array_size(t)));
    if (!type)
        return json_string("?");
    if (strcmp(type, "string") == 0)
        return random_string(schema, s);
    if (strcmp(type, "integer") == 0 || strcmp(type, "number") == 0) {
        json_int_t lo = json_integer_value(json_object_get(schema, "minimum"));
        json_int_t hi = json_integer_value(json_object_get(schema, "maximum"));
        json_int_t cand[] = {lo, hi, lo - 1, hi + 1, (json_int_t)(rnd(s) % 1000) - 500, 0};
        return json_integer(cand[rnd(s) % 6]);
    }
    if (strcmp(type, "boolean") == 0)
        return json_boolean(rnd(s) & 1);
    if (strcmp(type, "null") == 0)
        return json_null();
    if (strcmp(type, "array") == 0) {
        json_t *a = json_array();
        json_int_t max = json_integer_value(json_object_get(schema, "maxItems"));
        size_t n = (size_t)(rnd(s) % (size_t)(max > 0 ? max + 2 : 4));
        const json_t *items = json_object_get(schema, "items");
        for (size_t i = 0; i < n && depth < 6; i++)
            json_array_append_new(a, items ? random_for(items, s, depth + 1)
                                           : json_integer((json_int_t)i));
        return a;
    }
    if (strcmp(type, "object") == 0) {
        json_t *o = json_object();
        const json_t *props = json_object_get(schema, "properties");
        const char *k;
        json_t *ps;
        json_object_foreach((json_t *)props, k, ps)
        {
            if (depth < 6 && rnd(s) % 3)
                json_object_set_new(o, k, random_for(ps, s, depth + 1));
        }
        if (rnd(s) % 8 == 0)
            json_object_set_new(o, "surplus_argument", json_integer(1));
        return o;
    }
    return json_string("?");
}

static void test_every_tool(void **state)
{
    (void)state;
    uint64_t seed = 0x2545f4914f6cdd1dULL;
    size_t fails = 0, oks = 0;
    for (size_t t = 0; t < mcp_tools_count; t++) {
        json_error_t je;
        json_t *schema = json_loads(mcp_tools[t].input_schema, 0, &je);
        assert_non_null(schema);
        for (int i = 0; i < 400; i++) {
            json_t *args = random_for(schema, &seed, 0);
            ex_err a, b;
            memset(&a, 0x5a, sizeof a);
            memset(&b, 0x5a, sizeof b);
            pl_rc ra = mcp_schema_validate(schema, args, &a);
            pl_rc rb = ref_validate(schema, args, "", &b);
            char *text = json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY);
            if (ra != rb)
                fail_msg("%s %s: rc %d, reference %d", mcp_tools[t].name, text, ra, rb);
            if (ra != PL_OK) {
                if (strcmp(a.field, b.field) != 0 || strcmp(a.msg, b.msg) != 0)
                    fail_msg("%s %s:\n  %s / %s\n  reference %s / %s", mcp_tools[t].name, text,
                             a.field, a.msg, b.field, b.msg);
                fails++;
            } else {
                oks++;
            }
            free(text);
            json_decref(args);
        }
        json_decref(schema);
    }
    /* both outcomes exercised */
    assert_true(fails > 1000);
    assert_true(oks > 1000);
}

/* Paths longer than the 64-byte path buffer: truncated identically. */
static void test_long_names(void **state)
{
    (void)state;
    json_t *schema =
        json_pack("{s:s, s:{s:{s:s, s:{s:{s:s, s:i}}}}, s:b}", "type", "object", "properties",
                  "a_rather_long_property_name_to_fill_the_path_x", "type", "object", "properties",
                  "another_rather_long_property_name_beyond_sixty_four", "type", "string",
                  "maxLength", 2, "additionalProperties", 0);
    json_t *args = json_pack("{s:{s:s}}", "a_rather_long_property_name_to_fill_the_path_x",
                             "another_rather_long_property_name_beyond_sixty_four", "abc");
    json_t *unknown = json_pack("{s:i}",
                                "an_unknown_argument_whose_name_is_longer_than_the_path_"
                                "buffer_of_sixty_four_bytes",
                                1);
    const json_t *cases[] = {args, unknown};
    for (size_t i = 0; i < 2; i++) {
        ex_err a, b;
        assert_int_equal(mcp_schema_validate(schema, cases[i], &a), PL_ERR_INVALID);
        assert_int_equal(ref_validate(schema, cases[i], "", &b), PL_ERR_INVALID);
        assert_string_equal(a.field, b.field);
        assert_string_equal(a.msg, b.msg);
    }
    json_decref(schema);
    json_decref(args);
    json_decref(unknown);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_tool),
        cmocka_unit_test(test_long_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
