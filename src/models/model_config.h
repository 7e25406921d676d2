/* model_config: typed reads of a diffusers config.json (cJSON underneath).
 *
 * Every getter treats an absent key or a JSON null as "use the default" and
 * fails with OIR_E_FORMAT naming `where` (the file) and the key when the
 * value has the wrong type, e.g.
 *   "unet/config.json: layers_per_block: expected an integer, got \"two\"".
 * Strings returned point into the parsed document (valid until
 * model_config_free).
 */
#ifndef OIR_MODELS_MODEL_CONFIG_H
#define OIR_MODELS_MODEL_CONFIG_H

#include <cjson/cJSON.h>

#include "core/error.h"

typedef struct {
    cJSON *root;     /* the parsed object */
    int owned;       /* model_config_free deletes root */
    char where[512]; /* file path, for messages */
} model_config;

/* Reads and parses a JSON object from path (OIR_E_IO / OIR_E_FORMAT). */
int model_config_read(model_config *c, const char *path, oir_error *err);
/* Wraps an already-parsed object (not owned: model_config_free leaves it). */
void model_config_wrap(model_config *c, cJSON *root, const char *where);
void model_config_free(model_config *c);

/* 1 when key is present and not null. */
int model_config_has(const model_config *c, const char *key);

int model_config_int(const model_config *c, const char *key, int def, int *out, oir_error *err);
int model_config_float(const model_config *c, const char *key, float def, float *out,
                       oir_error *err);
int model_config_bool(const model_config *c, const char *key, int def, int *out, oir_error *err);
/* *out = def when absent or null. */
int model_config_str(const model_config *c, const char *key, const char *def, const char **out,
                     oir_error *err);

/* An integer or a list of integers (at most max): *n = list length, or 1 for
 * a scalar with *is_list = 0. Absent: *n = 0. */
int model_config_ints(const model_config *c, const char *key, int *out, int max, int *n,
                      int *is_list, oir_error *err);
/* A list of strings (at most max), or null entries as NULL. Absent: *n = 0. */
int model_config_strs(const model_config *c, const char *key, const char **out, int max, int *n,
                      oir_error *err);
/* A bool or a list of bools: *any_true = 1 if any value is true. */
int model_config_any_true(const model_config *c, const char *key, int *any_true, oir_error *err);

/* Guards for features a model does not implement: OIR_E_UNSUPPORTED naming
 * the key and its value unless it is absent/null (require_null), absent or
 * false (or a list of falses) (require_false), absent or equal to `value`
 * (require_str). */
int model_config_require_null(const model_config *c, const char *key, oir_error *err);
int model_config_require_false(const model_config *c, const char *key, oir_error *err);
int model_config_require_str(const model_config *c, const char *key, const char *value,
                             oir_error *err);

#endif
