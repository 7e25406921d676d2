/* JSON parsing with duplicate-key, number-range and depth checks; see json.h. */
#include "io/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/file.h"

static int key_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "in the top-level object" / "under \"vision_config\"" into buf. */
static const char *where_in(const char *parent, char *buf, size_t cap) {
    if (!parent) snprintf(buf, cap, "in the top-level object");
    else snprintf(buf, cap, "under \"%.200s\"", parent);
    return buf;
}

/* Recursive check of one value; parent is the key that holds it (NULL at the top). */
static int check_value(const cJSON *v, int depth, const char *parent, const char *what,
                       oir_error *err) {
    char loc[256];
    if (depth > JSON_MAX_DEPTH)
        return oir_fail(err, OIR_E_FORMAT, "%s: JSON nested deeper than %d levels (%s)", what,
                        JSON_MAX_DEPTH, where_in(parent, loc, sizeof loc));
    if (cJSON_IsNumber(v)) {
        if (!isfinite(v->valuedouble))
            return oir_fail(err, OIR_E_FORMAT,
                            "%s: a number %s is out of range (not a finite double)", what,
                            where_in(parent, loc, sizeof loc));
        return OIR_OK;
    }
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v)) return OIR_OK;
    int n = 0;
    const cJSON *c;
    for (c = v->child; c; c = c->next) n++;
    if (cJSON_IsObject(v) && n > 1) {
        const char **keys = malloc((size_t)n * sizeof *keys);
        if (!keys) return oir_fail(err, OIR_E_NOMEM, "%s: out of memory checking JSON keys", what);
        int k = 0;
        for (c = v->child; c; c = c->next) keys[k++] = c->string ? c->string : "";
        qsort(keys, (size_t)n, sizeof *keys, key_cmp);
        for (int i = 1; i < n; i++)
            if (!strcmp(keys[i], keys[i - 1])) {
                int rc = oir_fail(err, OIR_E_FORMAT, "%s: key \"%.200s\" appears twice (%s)", what,
                                  keys[i], where_in(parent, loc, sizeof loc));
                free(keys);
                return rc;
            }
        free(keys);
    }
    for (c = v->child; c; c = c->next) {
        int rc = check_value(c, depth + 1, cJSON_IsObject(v) ? c->string : parent, what, err);
        if (rc) return rc;
    }
    return OIR_OK;
}

int json_parse(cJSON **out, const char *text, size_t len, const char *what, oir_error *err) {
    *out = NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        return oir_fail(err, OIR_E_FORMAT, "%s: not valid JSON (near byte %zu)", what, at);
    }
    for (const char *p = end; p && p < text + len; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t' && *p != '\0') {
            cJSON_Delete(root);
            return oir_fail(err, OIR_E_FORMAT, "%s: bytes after the JSON value (at byte %zu)",
                            what, (size_t)(p - text));
        }
    int rc = check_value(root, 1, NULL, what, err);
    if (rc) {
        cJSON_Delete(root);
        return rc;
    }
    *out = root;
    return OIR_OK;
}

int json_read_object(cJSON **out, const char *path, size_t max_bytes, oir_error *err) {
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = file_read_regular(path, max_bytes, "a JSON file", &text, &len, err);
    if (rc) return rc;
    cJSON *root = NULL;
    rc = json_parse(&root, text, len, path, err);
    free(text);
    if (rc) return rc;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return oir_fail(err, OIR_E_FORMAT, "%s: not a JSON object", path);
    }
    *out = root;
    return OIR_OK;
}
