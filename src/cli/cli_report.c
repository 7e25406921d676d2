/* report.json's shared parts (cli/cli_report.h). */
#include "cli/cli_report.h"

cJSON *cli_report_floats(const float *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]));
    return a;
}

cJSON *cli_report_bytes(const unsigned char *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

cJSON *cli_report_geometry(cJSON *rep, int photo_w, int photo_h, int working_w, int working_h, const image_fit *fit,
                           int feather_px) {
    cJSON *geo = cJSON_AddObjectToObject(rep, "geometry");
    if (!geo) return NULL;
    cJSON *photo = cJSON_AddObjectToObject(geo, "photo");
    cJSON_AddNumberToObject(photo, "width", photo_w);
    cJSON_AddNumberToObject(photo, "height", photo_h);
    cJSON *work = cJSON_AddObjectToObject(geo, "working");
    cJSON_AddNumberToObject(work, "width", working_w);
    cJSON_AddNumberToObject(work, "height", working_h);
    cJSON *crop = cJSON_AddObjectToObject(geo, "crop");
    cJSON_AddNumberToObject(crop, "x", fit->crop_x);
    cJSON_AddNumberToObject(crop, "y", fit->crop_y);
    cJSON_AddNumberToObject(crop, "width", fit->crop_w);
    cJSON_AddNumberToObject(crop, "height", fit->crop_h);
    cJSON_AddStringToObject(geo, "transform",
                            "the photo's crop region (the largest centred one with the working aspect), "
                            "bicubic-resized to the working size; masks the same way, nearest");
    cJSON_AddNumberToObject(geo, "feather_px", feather_px);
    cJSON_AddStringToObject(geo, "composite",
                            "edited.png: the photo with edited_working.png bicubic-resized to the crop region, "
                            "blended inside the union of the pair masks (feather_px inside their edge); "
                            "every other pixel is the photo's");
    return work;
}

void cli_report_pair_search(cJSON *e, const oir_result *r, int i, const unsigned char *evaluated) {
    int T = r->steps;
    size_t off = (size_t)i * T;
    cJSON_AddBoolToObject(e, "edit_score_flat", r->edit_flat[i]);
    cJSON_AddBoolToObject(e, "background_score_flat", r->background_flat[i]);
    /* low_pick reinvert: the candidate was re-inverted up to R for the reassembly */
    cJSON_AddBoolToObject(e, "reinverted", r->reinverted[i]);
    if (r->guard) { /* the no-edit guard: the source's own score, who could be chosen */
        cJSON_AddNumberToObject(e, "source_edit_score", r->source_edit_score[i]);
        cJSON_AddItemToObject(e, "eligible", cli_report_bytes(r->eligible + off, T));
        cJSON_AddBoolToObject(e, "guard_fallback", r->guard_fallback[i]);
    }
    cJSON_AddItemToObject(e, "edit_score", cli_report_floats(r->edit_score + off, T));
    cJSON_AddItemToObject(e, "background_score", cli_report_floats(r->background_score + off, T));
    cJSON_AddItemToObject(e, "edit_score_normalised", cli_report_floats(r->edit_norm + off, T));
    cJSON_AddItemToObject(e, "background_score_normalised", cli_report_floats(r->background_norm + off, T));
    cJSON_AddItemToObject(e, "total", cli_report_floats(r->total + off, T));
    /* 0: skipped by the search (its scores are null), 1: scored, 2: scored on the short
     * schedule, 3: a picked step (rendered, not scored) */
    cJSON_AddItemToObject(e, "evaluated", cli_report_bytes((evaluated ? evaluated : r->evaluated) + off, T));
}

void cli_report_seconds(cJSON *rep, const oir_result *r) {
    cJSON *t = cJSON_AddObjectToObject(rep, "seconds");
    cJSON_AddNumberToObject(t, "mask", r->seconds_mask);
    cJSON_AddNumberToObject(t, "inversion", r->seconds_inversion);
    cJSON_AddNumberToObject(t, "candidates", r->seconds_candidates);
    cJSON_AddNumberToObject(t, "decode", r->seconds_decode);
    cJSON_AddNumberToObject(t, "scoring", r->seconds_scoring);
    cJSON_AddNumberToObject(t, "reassembly", r->seconds_reassembly);
    cJSON_AddNumberToObject(t, "total", r->seconds_total);
}
