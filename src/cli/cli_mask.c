#include "cli/cli_mask.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "edit/mask_infer.h"

int cli_mask_is_auto(const char *spec) { return !spec || !strcmp(spec, "auto"); }

int cli_mask_params(oir_mask_params *p, const char *method_flag, const char *method, const char *threshold_flag,
                    float threshold, const char *dilate_flag, int dilate, unsigned long long seed, oir_error *err) {
    *p = oir_mask_default_params();
    if (method) {
        int m = oir_mask_method_parse(method);
        if (m < 0)
            return oir_fail(err, OIR_E_ARG, "%s '%s': expected noise, attention or combined", method_flag, method);
        p->method = m;
    }
    if (threshold >= 0) {
        if (!(threshold <= 1))
            return oir_fail(err, OIR_E_ARG, "%s %g: expected 0..1 (on the normalised map)", threshold_flag,
                            (double)threshold);
        p->threshold = threshold;
    }
    if (dilate >= 0) p->dilate_px = dilate;
    (void)dilate_flag;
    p->seed = seed;
    return OIR_OK;
}

int cli_mask_to_photo(image *photo, const unsigned char *work, const image_fit *fit, oir_error *err) {
    image w = {0}, crop = {0};
    int rc = image_alloc(photo, fit->photo_w, fit->photo_h, 1, err);
    if (!rc) rc = image_alloc(&w, fit->work_w, fit->work_h, 1, err);
    for (size_t i = 0; !rc && i < (size_t)fit->work_w * fit->work_h; i++) w.data[i] = work[i] ? 1.0f : 0.0f;
    if (!rc) rc = mask_resize_nearest(&crop, &w, fit->crop_w, fit->crop_h, err);
    for (int y = 0; !rc && y < fit->crop_h; y++)
        memcpy(photo->data + (size_t)(fit->crop_y + y) * fit->photo_w + fit->crop_x, crop.data + (size_t)y * fit->crop_w,
               (size_t)fit->crop_w * sizeof(float));
    image_free(&w);
    image_free(&crop);
    return rc;
}

const char *cli_mask_warning_name(int warning) {
    switch (warning) {
    case OIR_MASK_WARN_EMPTY: return "empty: threshold lowered";
    case OIR_MASK_WARN_FLAT: return "flat: whole image";
    case OIR_MASK_WARN_WHOLE: return "whole image";
    default: return "none";
    }
}

cJSON *cli_mask_info_json(const oir_mask_info *info) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", oir_mask_method_name(info->method));
    cJSON_AddNumberToObject(o, "threshold", info->threshold);
    cJSON_AddNumberToObject(o, "dilate_px", info->dilate_px);
    cJSON_AddNumberToObject(o, "area", info->area);
    cJSON_AddNumberToObject(o, "components", info->components);
    cJSON_AddNumberToObject(o, "unet_rows", (double)info->unet_rows);
    cJSON_AddStringToObject(o, "warning", cli_mask_warning_name(info->warning));
    cJSON_AddStringToObject(o, "message", info->message);
    return o;
}

void cli_mask_caption(char *buf, size_t cap, const oir_mask_info *info) {
    snprintf(buf, cap, "MASK: AUTO (%s)\nTHRESHOLD %.2f, DILATE %d PX\nAREA %.0f PCT, %ld UNET ROWS%s%s", oir_mask_method_name(info->method),
             (double)info->threshold, info->dilate_px, 100.0 * info->area, info->unet_rows,
             info->warning ? "\nWARNING: " : "", info->warning ? cli_mask_warning_name(info->warning) : "");
}

const char *cli_mask_defaults_text(void) {
    static char buf[256];
    static const int m[3] = {OIR_MASK_NOISE, OIR_MASK_ATTENTION, OIR_MASK_COMBINED};
    size_t n = 0;
    for (int i = 0; i < 3 && n < sizeof buf; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s %.2f / %d px", i ? ", " : "", oir_mask_method_name(m[i]),
                              (double)mask_method_threshold(m[i]), mask_method_dilate(m[i]));
    return buf;
}
