/* The JSON Schema (2020-12) subset the tool table uses, and a validator that names the
 * offending field. Supported keywords: type, properties, required, additionalProperties
 * (boolean), items, minItems, maxItems, minLength, maxLength, minimum, maximum, enum; and the
 * annotations $schema, title, description, default, format, examples. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/mcp_int.h"

static const char *const known_keywords[] = {
    "type",      "properties", "required",    "additionalProperties",
    "items",     "minItems",   "maxItems",    "minLength",
    "maxLength", "minimum",    "maximum",     "enum",
    "$schema",   "title",      "description", "default",
    "format",    "examples",   NULL};

static int keyword_known(const char *k)
{
    size_t i;
    for (i = 0; known_keywords[i]; i++)
        if (strcmp(known_keywords[i], k) == 0)
            return 1;
    return 0;
}

static pl_rc check_node(const json_t *s, int input, const char *path, char *errbuf, size_t errsz,
                        int depth)
{
    const char *k, *type;
    json_t *v;
    char sub[256];
    if (depth > 16 || !json_is_object(s)) {
        snprintf(errbuf, errsz, "%s: schema must be an object (depth <= 16)", path);
        return PL_ERR_INVALID;
    }
    json_object_foreach((json_t *)s, k, v)
    {
        if (!keyword_known(k)) {
            snprintf(errbuf, errsz, "%s: unsupported keyword \"%s\"", path, k);
            return PL_ERR_INVALID;
        }
    }
    type = json_string_value(json_object_get(s, "type"));
    if (!type && !json_is_array(json_object_get(s, "type")) && !json_object_get(s, "enum")) {
        snprintf(errbuf, errsz, "%s: \"type\" (a string) or \"enum\" is required", path);
        return PL_ERR_INVALID;
    }
    if (input && type && strcmp(type, "string") == 0 && !json_object_get(s, "maxLength") &&
        !json_object_get(s, "enum")) {
        snprintf(errbuf, errsz, "%s: an input string needs maxLength or enum", path);
        return PL_ERR_INVALID;
    }
    if (input && type && strcmp(type, "array") == 0 && !json_object_get(s, "maxItems")) {
        snprintf(errbuf, errsz, "%s: an input array needs maxItems", path);
        return PL_ERR_INVALID;
    }
    v = json_object_get(s, "properties");
    if (v) {
        const char *pk;
        json_t *pv;
        json_object_foreach(v, pk, pv)
        {
            pl_rc rc;
            snprintf(sub, sizeof sub, "%s.%s", path, pk);
            rc = check_node(pv, input, sub, errbuf, errsz, depth + 1);
            if (rc != PL_OK)
                return rc;
        }
    }
    v = json_object_get(s, "items");
    if (v) {
        snprintf(sub, sizeof sub, "%s[]", path);
        return check_node(v, input, sub, errbuf, errsz, depth + 1);
    }
    return PL_OK;
}

pl_rc mcp_schema_check(const json_t *schema, int input, char *errbuf, size_t errsz)
{
    const char *type = json_string_value(json_object_get(schema, "type"));
    if (!type || strcmp(type, "object") != 0) {
        snprintf(errbuf, errsz, "a tool schema must have type \"object\"");
        return PL_ERR_INVALID;
    }
    return check_node(schema, input, "$", errbuf, errsz, 0);
}

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

static pl_rc fail(ex_err *err, const char *path, const char *what)
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

/* The keywords validate() reads of one schema node, found in one pass over its keys instead
 * of a hash lookup per keyword (this runs on every tools/call). */
typedef struct kw {
    const json_t *type, *enumv, *max_len, *min_len, *minimum, *maximum, *items, *max_items,
        *min_items, *props, *required, *additional;
} kw;

static void keywords(const json_t *s, kw *k)
{
    static const struct {
        const char *name;
        size_t off;
    } table[] = {
        {"type", offsetof(kw, type)},          {"enum", offsetof(kw, enumv)},
        {"maxLength", offsetof(kw, max_len)},  {"minLength", offsetof(kw, min_len)},
        {"minimum", offsetof(kw, minimum)},    {"maximum", offsetof(kw, maximum)},
        {"items", offsetof(kw, items)},        {"maxItems", offsetof(kw, max_items)},
        {"minItems", offsetof(kw, min_items)}, {"properties", offsetof(kw, props)},
        {"required", offsetof(kw, required)},  {"additionalProperties", offsetof(kw, additional)},
    };
    const char *key;
    json_t *val;
    size_t i;
    memset(k, 0, sizeof *k);
    json_object_foreach((json_t *)s, key, val)
    {
        for (i = 0; i < sizeof table / sizeof table[0]; i++) {
            if (strcmp(table[i].name, key) == 0) {
                *(const json_t **)(void *)((char *)k + table[i].off) = val;
                break;
            }
        }
    }
}

/* snprintf(sub, subsz, "%s%s%s", path, *path ? "." : "", name), truncated the same way. */
static void join_path(char *sub, size_t subsz, const char *path, const char *name)
{
    const char *parts[3] = {path, *path ? "." : "", name};
    size_t len = 0, i, l;
    for (i = 0; i < 3; i++) {
        l = strlen(parts[i]);
        if (l > subsz - 1 - len)
            l = subsz - 1 - len;
        memcpy(sub + len, parts[i], l);
        len += l;
    }
    sub[len] = '\0';
}

static pl_rc validate(const json_t *s, const json_t *v, const char *path, ex_err *err)
{
    kw k;
    const char *type;
    const json_t *e, *x;
    char sub[64];
    size_t i;

    char what[192];

    keywords(s, &k);
    type = json_string_value(k.type);
    if (json_is_array(k.type)) {
        int any = 0;
        json_array_foreach(k.type, i, x)
        {
            if (json_is_string(x) && type_matches(json_string_value(x), v))
                any = 1;
        }
        if (!any)
            return fail(err, path, "has the wrong type");
    } else if (type && !type_matches(type, v)) {
        return fail(err, path, type_words(type));
    }
    e = k.enumv;
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
            return fail(err, path, what);
        }
    }
    if (json_is_string(v)) {
        size_t cp = utf8_codepoints(json_string_value(v), json_string_length(v));
        x = k.max_len;
        if (json_is_integer(x) && cp > (size_t)json_integer_value(x)) {
            snprintf(what, sizeof what, "longer than %lld characters",
                     (long long)json_integer_value(x));
            return fail(err, path, what);
        }
        x = k.min_len;
        if (json_is_integer(x) && cp < (size_t)json_integer_value(x)) {
            snprintf(what, sizeof what, "shorter than %lld characters",
                     (long long)json_integer_value(x));
            return fail(err, path, what);
        }
    }
    if (json_is_number(v)) {
        double d = json_number_value(v);
        x = k.minimum;
        if (json_is_number(x) && d < json_number_value(x)) {
            snprintf(what, sizeof what, "must be at least %lld", (long long)json_number_value(x));
            return fail(err, path, what);
        }
        x = k.maximum;
        if (json_is_number(x) && d > json_number_value(x)) {
            snprintf(what, sizeof what, "must be at most %lld", (long long)json_number_value(x));
            return fail(err, path, what);
        }
    }
    if (json_is_array(v)) {
        const json_t *items = k.items;
        x = k.max_items;
        if (json_is_integer(x) && json_array_size(v) > (size_t)json_integer_value(x)) {
            snprintf(what, sizeof what, "more than %lld items", (long long)json_integer_value(x));
            return fail(err, path, what);
        }
        x = k.min_items;
        if (json_is_integer(x) && json_array_size(v) < (size_t)json_integer_value(x)) {
            snprintf(what, sizeof what, "fewer than %lld items", (long long)json_integer_value(x));
            return fail(err, path, what);
        }
        if (items) {
            json_array_foreach(v, i, x)
            {
                pl_rc rc;
                snprintf(sub, sizeof sub, "%s[%zu]", path, i);
                rc = validate(items, x, sub, err);
                if (rc != PL_OK)
                    return rc;
            }
        }
    }
    if (json_is_object(v)) {
        const json_t *props = k.props;
        const json_t *req = k.required;
        const char *key;
        json_t *pv;
        json_array_foreach(req, i, x)
        {
            const char *name = json_string_value(x);
            if (name && !json_object_get(v, name)) {
                join_path(sub, sizeof sub, path, name);
                return fail(err, sub, "required");
            }
        }
        json_object_foreach((json_t *)v, key, pv)
        {
            const json_t *ps = json_object_get(props, key);
            join_path(sub, sizeof sub, path, key);
            if (!ps) {
                if (json_is_false(k.additional))
                    return fail(err, sub, "unknown argument");
                continue;
            }
            {
                pl_rc rc = validate(ps, pv, sub, err);
                if (rc != PL_OK)
                    return rc;
            }
        }
    }
    return PL_OK;
}

pl_rc mcp_schema_validate(const json_t *schema, const json_t *v, ex_err *err)
{
    return validate(schema, v, "", err);
}
