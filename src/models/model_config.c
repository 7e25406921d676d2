#include "models/model_config.h"

#include "io/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int model_config_read(model_config *c, const char *path, oir_error *err) {
    memset(c, 0, sizeof *c);
    snprintf(c->where, sizeof c->where, "%s", path);
    /* a regular file under 16 MiB, no duplicate keys, finite numbers */
    int rc = json_read_object(&c->root, path, JSON_MAX_CONFIG_BYTES, err);
    if (rc == OIR_OK) c->owned = 1;
    return rc;
}

int model_config_check_size(const char *where, const char *field, long long v, long long max,
                            oir_error *err) {
    if (v < 1 || v > max)
        return oir_fail(err, OIR_E_FORMAT, "%s: %s = %lld, expected 1 to %lld", where, field, v,
                        max);
    return OIR_OK;
}

int model_config_check_float(const char *where, const char *field, double v, double lo,
                             int lo_inclusive, double hi, oir_error *err) {
    int ok = isfinite(v) && isfinite((float)v) && (lo_inclusive ? v >= lo : v > lo) && v <= hi;
    if (!ok)
        return oir_fail(err, OIR_E_FORMAT, "%s: %s = %g, expected a number in %c%g, %g]", where,
                        field, v, lo_inclusive ? '[' : '(', lo, hi);
    return OIR_OK;
}

void model_config_wrap(model_config *c, cJSON *root, const char *where) {
    memset(c, 0, sizeof *c);
    c->root = root;
    snprintf(c->where, sizeof c->where, "%s", where ? where : "config");
}

void model_config_free(model_config *c) {
    if (c->owned) cJSON_Delete(c->root);
    c->root = NULL;
    c->owned = 0;
}

static const cJSON *item(const model_config *c, const char *key) {
    const cJSON *it = c->root ? cJSON_GetObjectItemCaseSensitive(c->root, key) : NULL;
    return (it && !cJSON_IsNull(it)) ? it : NULL;
}

int model_config_has(const model_config *c, const char *key) { return item(c, key) != NULL; }

/* Writes a short rendering of a JSON value into buf (for messages). */
static const char *show(const cJSON *v, char *buf, size_t cap) {
    char *s = cJSON_PrintUnformatted(v);
    snprintf(buf, cap, "%s", s ? s : "?");
    if (s && strlen(s) >= cap && cap > 4) memcpy(buf + cap - 4, "...", 4);
    free(s);
    return buf;
}

static int bad(const model_config *c, const char *key, const char *what, const cJSON *v,
               oir_error *err) {
    char b[96];
    return oir_fail(err, OIR_E_FORMAT, "%s: %s: expected %s, got %s", c->where, key, what,
                    show(v, b, sizeof b));
}

static int as_int(const cJSON *v, int *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < -1e9 || d > 1e9) return 0;
    *out = (int)d;
    return 1;
}

int model_config_int(const model_config *c, const char *key, int def, int *out, oir_error *err) {
    const cJSON *v = item(c, key);
    *out = def;
    if (!v) return OIR_OK;
    if (!as_int(v, out)) return bad(c, key, "an integer", v, err);
    return OIR_OK;
}

int model_config_float(const model_config *c, const char *key, float def, float *out,
                       oir_error *err) {
    const cJSON *v = item(c, key);
    *out = def;
    if (!v) return OIR_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || !isfinite((float)v->valuedouble))
        return bad(c, key, "a number in float range", v, err);
    *out = (float)v->valuedouble;
    return OIR_OK;
}

int model_config_bool(const model_config *c, const char *key, int def, int *out, oir_error *err) {
    const cJSON *v = item(c, key);
    *out = def;
    if (!v) return OIR_OK;
    if (!cJSON_IsBool(v)) return bad(c, key, "true or false", v, err);
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return OIR_OK;
}

int model_config_str(const model_config *c, const char *key, const char *def, const char **out,
                     oir_error *err) {
    const cJSON *v = item(c, key);
    *out = def;
    if (!v) return OIR_OK;
    if (!cJSON_IsString(v)) return bad(c, key, "a string", v, err);
    *out = v->valuestring;
    return OIR_OK;
}

int model_config_ints(const model_config *c, const char *key, int *out, int max, int *n,
                      int *is_list, oir_error *err) {
    const cJSON *v = item(c, key);
    *n = 0;
    if (is_list) *is_list = 0;
    if (!v) return OIR_OK;
    if (cJSON_IsNumber(v)) {
        if (!as_int(v, &out[0])) return bad(c, key, "an integer or a list of integers", v, err);
        *n = 1;
        return OIR_OK;
    }
    if (!cJSON_IsArray(v)) return bad(c, key, "an integer or a list of integers", v, err);
    int len = cJSON_GetArraySize(v);
    if (len > max) {
        char b[96];
        return oir_fail(err, OIR_E_UNSUPPORTED, "%s: %s: %d entries, at most %d supported (%s)",
                        c->where, key, len, max, show(v, b, sizeof b));
    }
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (!as_int(e, &out[i])) return bad(c, key, "a list of integers", v, err);
        i++;
    }
    *n = len;
    if (is_list) *is_list = 1;
    return OIR_OK;
}

int model_config_strs(const model_config *c, const char *key, const char **out, int max, int *n,
                      oir_error *err) {
    const cJSON *v = item(c, key);
    *n = 0;
    if (!v) return OIR_OK;
    if (!cJSON_IsArray(v)) return bad(c, key, "a list of strings", v, err);
    int len = cJSON_GetArraySize(v);
    if (len > max) {
        char b[96];
        return oir_fail(err, OIR_E_UNSUPPORTED, "%s: %s: %d entries, at most %d supported (%s)",
                        c->where, key, len, max, show(v, b, sizeof b));
    }
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (cJSON_IsNull(e)) {
            out[i++] = NULL;
            continue;
        }
        if (!cJSON_IsString(e)) return bad(c, key, "a list of strings", v, err);
        out[i++] = e->valuestring;
    }
    *n = len;
    return OIR_OK;
}

int model_config_any_true(const model_config *c, const char *key, int *any_true, oir_error *err) {
    const cJSON *v = item(c, key);
    *any_true = 0;
    if (!v) return OIR_OK;
    if (cJSON_IsBool(v)) {
        *any_true = cJSON_IsTrue(v) ? 1 : 0;
        return OIR_OK;
    }
    if (!cJSON_IsArray(v)) return bad(c, key, "true, false or a list of them", v, err);
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (!cJSON_IsBool(e)) return bad(c, key, "true, false or a list of them", v, err);
        if (cJSON_IsTrue(e)) *any_true = 1;
    }
    return OIR_OK;
}

int model_config_require_null(const model_config *c, const char *key, oir_error *err) {
    const cJSON *v = item(c, key);
    if (!v) return OIR_OK;
    char b[96];
    return oir_fail(err, OIR_E_UNSUPPORTED, "%s: %s = %s is not supported (only null)", c->where,
                    key, show(v, b, sizeof b));
}

int model_config_require_false(const model_config *c, const char *key, oir_error *err) {
    int any;
    int rc = model_config_any_true(c, key, &any, err);
    if (rc) return rc;
    if (any) {
        char b[96];
        return oir_fail(err, OIR_E_UNSUPPORTED, "%s: %s = %s is not supported (only false)",
                        c->where, key, show(item(c, key), b, sizeof b));
    }
    return OIR_OK;
}

int model_config_require_str(const model_config *c, const char *key, const char *value,
                             oir_error *err) {
    const char *v;
    int rc = model_config_str(c, key, value, &v, err);
    if (rc) return rc;
    if (strcmp(v, value) != 0)
        return oir_fail(err, OIR_E_UNSUPPORTED, "%s: %s = \"%s\" is not supported (only \"%s\")",
                        c->where, key, v, value);
    return OIR_OK;
}
