/* scheduler_config.json as a DDIM config (models/scheduler_config.h). */
#include "models/scheduler_config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/file.h"
#include "io/json.h"

ddim_config ddim_default_config(void) {
    ddim_config c = {
        .num_train_timesteps = 1000,
        .beta_start = 0.0001,
        .beta_end = 0.02,
        .beta_schedule = DDIM_BETA_LINEAR,
        .steps_offset = 0,
        .set_alpha_to_one = 1,
        .clip_sample = 1,
        .clip_sample_range = 1.0,
    };
    return c;
}

ddim_config ddim_sd1_config(void) {
    ddim_config c = ddim_default_config();
    c.beta_start = 0.00085;
    c.beta_end = 0.012;
    c.beta_schedule = DDIM_BETA_SCALED_LINEAR;
    c.steps_offset = 1;
    c.set_alpha_to_one = 0;
    c.clip_sample = 0;
    return c;
}

/* ---- config ------------------------------------------------------------ */

static int json_number(const cJSON *root, const char *key, double *out, const char *what,
                       oir_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return OIR_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return oir_fail(err, OIR_E_FORMAT, "%s: \"%s\" must be a number", what, key);
    *out = v->valuedouble;
    return OIR_OK;
}

static int json_int(const cJSON *root, const char *key, int *out, const char *what,
                    oir_error *err) {
    double d = *out;
    int rc = json_number(root, key, &d, what, err);
    if (rc) return rc;
    if (d != floor(d) || d < -1e9 || d > 1e9)
        return oir_fail(err, OIR_E_FORMAT, "%s: \"%s\" must be an integer, got %g", what, key, d);
    *out = (int)d;
    return OIR_OK;
}

static int json_bool(const cJSON *root, const char *key, int *out, const char *what,
                     oir_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return OIR_OK;
    if (!cJSON_IsBool(v))
        return oir_fail(err, OIR_E_FORMAT, "%s: \"%s\" must be true or false", what, key);
    *out = cJSON_IsTrue(v);
    return OIR_OK;
}

int ddim_config_parse(ddim_config *out, const char *json, const char *what, oir_error *err) {
    ddim_config c = ddim_default_config();
    int rc = OIR_OK;
    cJSON *root = NULL;
    if ((rc = json_parse(&root, json, strlen(json), what, err))) goto cleanup;
    if (!cJSON_IsObject(root)) {
        rc = oir_fail(err, OIR_E_FORMAT, "%s: not a JSON object", what);
        goto cleanup;
    }
    if ((rc = json_int(root, "num_train_timesteps", &c.num_train_timesteps, what, err)) ||
        (rc = json_number(root, "beta_start", &c.beta_start, what, err)) ||
        (rc = json_number(root, "beta_end", &c.beta_end, what, err)) ||
        (rc = json_int(root, "steps_offset", &c.steps_offset, what, err)) ||
        (rc = json_bool(root, "set_alpha_to_one", &c.set_alpha_to_one, what, err)) ||
        (rc = json_bool(root, "clip_sample", &c.clip_sample, what, err)) ||
        (rc = json_number(root, "clip_sample_range", &c.clip_sample_range, what, err)))
        goto cleanup;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "beta_schedule");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v)) {
            rc = oir_fail(err, OIR_E_FORMAT, "%s: \"beta_schedule\" must be a string", what);
            goto cleanup;
        }
        if (!strcmp(v->valuestring, "linear")) {
            c.beta_schedule = DDIM_BETA_LINEAR;
        } else if (!strcmp(v->valuestring, "scaled_linear")) {
            c.beta_schedule = DDIM_BETA_SCALED_LINEAR;
        } else {
            rc = oir_fail(err, OIR_E_UNSUPPORTED,
                          "%s: beta_schedule \"%s\" is not supported (only \"scaled_linear\" and "
                          "\"linear\")",
                          what, v->valuestring);
            goto cleanup;
        }
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "prediction_type");
    if (v && !cJSON_IsNull(v) && (!cJSON_IsString(v) || strcmp(v->valuestring, "epsilon"))) {
        rc = oir_fail(err, OIR_E_UNSUPPORTED,
                      "%s: prediction_type \"%s\" is not supported: only \"epsilon\" (SD 1.x) models "
                      "are (v-prediction is SD 2.x-768)",
                      what, cJSON_IsString(v) ? v->valuestring : "?");
        goto cleanup;
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "trained_betas");
    if (v && !cJSON_IsNull(v)) {
        rc = oir_fail(err, OIR_E_UNSUPPORTED,
                      "%s: \"trained_betas\" is not supported; use beta_start/beta_end/beta_schedule",
                      what);
        goto cleanup;
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "thresholding");
    if (v && cJSON_IsTrue(v)) {
        rc = oir_fail(err, OIR_E_UNSUPPORTED, "%s: \"thresholding\": true is not supported", what);
        goto cleanup;
    }
    if (c.num_train_timesteps < 2 || c.num_train_timesteps > 100000) {
        rc = oir_fail(err, OIR_E_FORMAT, "%s: num_train_timesteps %d is out of range [2, 100000]",
                      what, c.num_train_timesteps);
        goto cleanup;
    }
    if (!(c.beta_start > 0 && c.beta_start < 1 && c.beta_end > 0 && c.beta_end < 1)) {
        rc = oir_fail(err, OIR_E_FORMAT, "%s: beta_start %g and beta_end %g must lie in (0, 1)", what,
                      c.beta_start, c.beta_end);
        goto cleanup;
    }
    if (!(c.clip_sample_range > 0) || !isfinite((float)c.clip_sample_range)) {
        rc = oir_fail(err, OIR_E_FORMAT, "%s: clip_sample_range %g must be a positive float", what,
                      c.clip_sample_range);
        goto cleanup;
    }
    if (c.steps_offset < 0 || c.steps_offset >= c.num_train_timesteps) {
        rc = oir_fail(err, OIR_E_FORMAT, "%s: steps_offset %d is out of range [0, %d)", what,
                      c.steps_offset, c.num_train_timesteps);
        goto cleanup;
    }
    *out = c;
cleanup:
    cJSON_Delete(root);
    return rc;
}

int ddim_config_load(ddim_config *out, const char *path, oir_error *err) {
    char *buf = NULL;
    size_t len = 0;
    int rc = file_read_regular(path, (size_t)1 << 20, "a scheduler config", &buf, &len, err);
    if (rc) return rc;
    if (memchr(buf, '\0', len))
        rc = oir_fail(err, OIR_E_FORMAT, "%s: a NUL byte in a JSON config", path);
    else
        rc = ddim_config_parse(out, buf, path, err);
    free(buf);
    return rc;
}
