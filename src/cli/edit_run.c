/* The one code path of `oir edit`, `oir search` and `oir batch`: a case
 * (edit_case_spec) run on a loaded model into an output folder, with its
 * report.json, sheets and plan (moved out of cmd_edit.c). */
#include "cli/edit_run.h"

#include "cli/cli_device.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_args.h"
#include "cli/cli_mask.h"
#include "cli/cli_pick.h"
#include "cli/cli_plan.h"
#include "cli/cli_report.h"
#include "edit/sheet.h"
#include "io/image.h"
#include "io/image_fit.h"
#include "io/outfile.h"
#include "models/tokenizer.h"

edit_plan_total edit_plan_sum;

int edit_is_box(const char *s) {
    int box[4];
    oir_error e;
    return access(s, F_OK) != 0 && mask_parse_box(s, box, &e) == OIR_OK;
}

/* Mask for a pair in the photo's pixels: a file of the photo's size or a
 * box inside the photo -> photo (photo size) and work (the working size, by
 * the photo's transform). A mask with pixels but none left at the working
 * size is an error; pixels outside the region the working image shows are
 * counted in *outside (they are not edited). */
static int load_pair_mask(const char *spec, const image *orig, const char *image_path, const image_fit *fit,
                          image *photo, image *work, long *outside, oir_error *err) {
    int rc;
    if (edit_is_box(spec)) {
        int box[4];
        if ((rc = mask_parse_box(spec, box, err))) return rc;
        if (box[2] > box[0] && box[3] > box[1] &&
            (box[0] < 0 || box[1] < 0 || box[2] > orig->width || box[3] > orig->height))
            return oir_fail(err, OIR_E_ARG,
                            "box %s reaches outside the %dx%d photo %s: boxes are in the photo's pixels, "
                            "0 <= x0 < x1 <= %d, 0 <= y0 < y1 <= %d",
                            spec, orig->width, orig->height, image_path, orig->width, orig->height);
        rc = mask_from_box(photo, orig->width, orig->height, box, err);
    } else {
        rc = mask_load(photo, spec, err);
        if (!rc && (photo->width != orig->width || photo->height != orig->height))
            rc = oir_fail(err, OIR_E_SHAPE,
                          "mask %s is %dx%d but the photo %s is %dx%d (width x height): masks are in the "
                          "photo's pixels, at its size",
                          spec, photo->width, photo->height, image_path, orig->width, orig->height);
    }
    if (!rc) rc = image_fit_mask(work, photo, fit, err);
    if (rc) return rc;
    size_t n_photo = 0, n_work = 0;
    for (size_t j = 0; j < (size_t)photo->width * photo->height; j++) n_photo += photo->data[j] > 0.5f;
    for (size_t j = 0; j < (size_t)work->width * work->height; j++) n_work += work->data[j] > 0.5f;
    *outside = image_fit_mask_outside(photo, fit);
    if (n_photo > 0 && n_work == 0)
        return oir_fail(err, OIR_E_ARG,
                        "mask %s: none of its %zu pixels is left at the %dx%d working size (%ld lie outside the "
                        "photo region x %d..%d, y %d..%d the working image shows; the rest is thinner than a "
                        "working pixel): give a larger mask or a --size closer to the photo's aspect",
                        spec, n_photo, fit->work_w, fit->work_h, *outside, fit->crop_x,
                        fit->crop_x + fit->crop_w, fit->crop_y, fit->crop_y + fit->crop_h);
    return OIR_OK;
}

/* Path of an output file of this case inside the run's temp folder. */
static char *out_path(output_dir *od, const char *sub, const char *name, oir_error *err) {
    if (!sub) return output_dir_path(od, name, err);
    char rel[1024];
    snprintf(rel, sizeof rel, "%s/%s", sub, name);
    return output_dir_path(od, rel, err);
}

static int save_rgb8(const unsigned char *rgb, int width, int height, const char *path, oir_error *err) {
    image img = {0};
    int rc = image_alloc(&img, width, height, 3, err);
    for (size_t i = 0; !rc && i < (size_t)width * height * 3; i++) img.data[i] = rgb[i] / 255.0f;
    if (!rc) rc = image_save_png(&img, path, err);
    image_free(&img);
    return rc;
}

/* A float as it was written (0.01, not 0.009999999776). */
static double short_float(float v) {
    char b[32];
    snprintf(b, sizeof b, "%.6g", (double)v);
    return strtod(b, NULL);
}

/* --low-pick / low_pick: "lower" or "reinvert". */
int edit_parse_low_pick(const char *what, const char *v, int *mode, oir_error *err) {
    int m = oir_low_pick_parse(v);
    if (m < 0)
        return oir_fail(err, OIR_E_ARG, "%s '%s': expected lower (R is lowered below the smallest step) or reinvert "
                        "(the candidate is re-inverted up to R)", what, v);
    *mode = m;
    return OIR_OK;
}

/* --guard / guard: "off", or a margin >= 0 (finite). */
int edit_parse_guard(const char *what, const char *v, int *on, float *margin, oir_error *err) {
    if (!strcmp(v, "off")) {
        *on = 0, *margin = 0;
        return OIR_OK;
    }
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (!*v || *end || errno == ERANGE || !isfinite(d) || d < 0)
        return oir_fail(err, OIR_E_ARG,
                        "%s '%s': expected off or a margin >= 0 (how much a candidate's masked CLIP score must "
                        "beat the unedited image's own, e.g. 0.01)",
                        what, v);
    *on = 1, *margin = (float)d;
    return OIR_OK;
}

/* The plan of a case and its estimate (cli/cli_plan.h): for stderr (unless
 * --quiet) into `lines`, which the progress display prints as the run starts
 * work; with --plan to stdout at once. OIR_OK with *have = 0 when the
 * parameters do not plan (the run reports why; --plan reports it here). */
static int plan_case(const char *cmd, oir_context *ctx, int width, int height, const edit_case_spec *c,
                     const oir_pair *pairs, const oir_params *p, const edit_opts *o, cli_calibration *cal,
                     oir_plan *plan, int *have, char *lines, size_t cap, oir_error *err) {
    lines[0] = '\0';
    *have = 0;
    cli_calibration_get(ctx, width, height, p, cli_calibration_mode(o->no_calibrate, o->recalibrate), cal);
    oir_error e = {0};
    if (oir_plan_edit(ctx, width, height, pairs, c->n, p, cal->have ? &cal->cal : NULL, plan, &e) != OIR_OK) {
        if (o->plan_only) {
            *err = e;
            return e.code;
        }
        return OIR_OK;
    }
    *have = 1;
    if (o->quiet && !o->plan_only) return OIR_OK;
    char line[2400], hint[1400], who[300] = "";
    if (c->name) snprintf(who, sizeof who, "%s: ", c->name);
    cli_plan_line(line, sizeof line, plan, cal);
    int has_hint = cli_plan_hint(hint, sizeof hint, ctx, width, height, pairs, c->n, p, plan, cal);
    if (o->plan_only) {
        edit_plan_sum.cases++, edit_plan_sum.rows += plan->unet_rows_total, edit_plan_sum.decodes += plan->decodes;
        if (plan->seconds >= 0) edit_plan_sum.estimated++, edit_plan_sum.seconds += plan->seconds;
        printf("%s%s\n", who, line);
        if (has_hint) printf("%s%s\n", who, hint);
        if (cal->have && cal->note[0]) fprintf(stderr, "oir %s: warning: %s\n", cmd, cal->note);
        fflush(stdout);
        return OIR_OK;
    }
    size_t n = (size_t)snprintf(lines, cap, "oir %s: %s%s\n", cmd, who, line);
    if (n < cap && cal->have && cal->note[0]) n += (size_t)snprintf(lines + n, cap - n, "oir %s: warning: %s\n", cmd, cal->note);
    if (n < cap && has_hint) snprintf(lines + n, cap - n, "oir %s: %s%s\n", cmd, who, hint);
    return OIR_OK;
}

int edit_run_case(const char *cmd, int search, oir_context *ctx, const edit_case_spec *c, const edit_opts *o,
                    output_dir *od, const char *sub, progress_bar *bar, oir_error *err) {
    int rc, ww = 0, wh = 0;
    image orig = {0}, work = {0}, masks[16] = {{0}}, photo_masks[16] = {{0}}, edited = {0}, composite = {0};
    unsigned char *rgb = NULL, *mask8[16] = {0};
    oir_result *r = NULL;
    cJSON *rep = NULL;
    char *json = NULL;
    char notes[16][300];
    int n_notes = 0;
    image_fit fit;
    if ((rc = cli_check_input_file("--image", c->image_path, err))) return rc;
    if ((rc = image_load(&orig, c->image_path, err))) goto done;
    /* the working size and the photo's transform (io/image_fit.h) */
    if (o->size_w) ww = o->size_w, wh = o->size_h;
    else if ((rc = image_fit_size(orig.width, orig.height, o->size_side ? o->size_side : oir_context_image_size(ctx),
                                  oir_context_size_multiple(ctx), &ww, &wh, err)))
        goto done;
    image_fit_plan(&fit, orig.width, orig.height, ww, wh);
    if ((rc = image_fit_image(&work, &orig, &fit, err))) goto done;
    size_t hw = (size_t)ww * wh;
    rgb = malloc(hw * 3);
    if (!rgb) {
        rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < hw * 3; i++) rgb[i] = (unsigned char)(work.data[i] * 255.0f + 0.5f);
    oir_pair pairs[16];
    for (int i = 0; i < c->n; i++) {
        long outside = 0;
        if (cli_mask_is_auto(c->mask_spec[i])) { /* inferred by the run (oir_pair.mask NULL) */
            pairs[i] = (oir_pair){c->from[i], c->to[i], NULL, c->guided[i]};
            continue;
        }
        if ((rc = load_pair_mask(c->mask_spec[i], &orig, c->image_path, &fit, &photo_masks[i], &masks[i], &outside,
                                 err)))
            goto done;
        if (outside)
            snprintf(notes[n_notes++], sizeof notes[0],
                     "pair %d: %ld pixels of mask %s lie outside the photo region the working image shows "
                     "(x %d..%d, y %d..%d): they are not edited",
                     i + 1, outside, c->mask_spec[i], fit.crop_x, fit.crop_x + fit.crop_w, fit.crop_y,
                     fit.crop_y + fit.crop_h);
        mask8[i] = malloc(hw);
        if (!mask8[i]) {
            rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
            goto done;
        }
        for (size_t j = 0; j < hw; j++) mask8[i][j] = masks[i].data[j] > 0.5f;
        pairs[i] = (oir_pair){c->from[i], c->to[i], mask8[i], c->guided[i]};
    }
    oir_params p = oir_default_params();
    /* explicit flags win over the YAML case, which wins over the defaults;
     * report.json records where each came from */
    const char *src_steps = "default", *src_guidance = "default", *src_reassembly = "default",
               *src_reinversion = "default", *src_seed = "default", *src_search = "default";
    uint64_t seed = o->seed;
    const char *own = c->case_from ? c->case_from : "yaml"; /* the case's own values */
    if (o->steps > 0) p.steps = o->steps, src_steps = "flag";
    else if (c->steps > 0) p.steps = c->steps, src_steps = own;
    if (o->guidance >= 0) p.guidance = o->guidance, src_guidance = "flag";
    else if (c->guidance >= 0) p.guidance = c->guidance, src_guidance = own;
    if (o->seed_arg) src_seed = "flag";
    else if (c->has_seed) seed = c->seed, src_seed = own;
    if (o->reassembly >= 0) p.reassembly_step = o->reassembly, src_reassembly = "flag";
    else if (c->reassembly >= 0) p.reassembly_step = c->reassembly, src_reassembly = own;
    if (o->reinversion >= 0) p.reinversion_steps = o->reinversion, src_reinversion = "flag";
    else if (c->reinversion >= 0) p.reinversion_steps = c->reinversion, src_reinversion = own;
    if (o->search) p.search = o->search, src_search = "flag";
    else if (c->search) p.search = c->search, src_search = own;
    p.low_pick = c->low_pick;
    p.guard = c->guard;
    p.guard_margin = c->guard_margin;
    p.parallel = !o->serial;
    p.memory_budget = (unsigned long long)o->budget_mb << 20;
    p.target_prompt = c->target;
    int n_picked = 0;
    for (int i = 0; i < c->n; i++) n_picked += c->forced[i] > 0;
    p.forced_steps = n_picked ? c->forced : NULL;
    if ((rc = cli_mask_params(&p.mask, "--mask-method", o->mask_method, "--mask-threshold", o->mask_threshold,
                              "--mask-dilate", o->mask_dilate, seed, err)))
        goto done;
    p.progress = progress_update;
    p.progress_user = bar;
    /* the plan (before the run: --plan stops here) */
    cli_calibration cal;
    oir_plan plan;
    int have_plan = 0;
    static char plan_lines[4096];
    if ((rc = plan_case(cmd, ctx, ww, wh, c, pairs, &p, o, &cal, &plan, &have_plan, plan_lines, sizeof plan_lines,
                        err)) ||
        o->plan_only)
        goto done;
    progress_start_run(bar, have_plan ? &plan : NULL, plan_lines);
    rc = search ? oir_search(ctx, rgb, ww, wh, c->source, pairs, &p, &r, err)
                : oir_edit(ctx, rgb, ww, wh, c->source, pairs, c->n, &p, &r, err);
    progress_end_run(bar);
    if (rc) goto done;
    /* inferred masks: the working-size ones the run used, and at the photo's size for the composite */
    for (int i = 0; i < c->n && !rc; i++) {
        if (!r->mask_info[i].inferred) continue;
        if ((rc = image_alloc(&masks[i], ww, wh, 1, err))) goto done;
        for (size_t j = 0; j < hw; j++) masks[i].data[j] = r->masks[(size_t)i * hw + j] ? 1.0f : 0.0f;
        if ((rc = cli_mask_to_photo(&photo_masks[i], r->masks + (size_t)i * hw, &fit, err))) goto done;
        if (r->mask_info[i].warning)
            fprintf(stderr, "oir %s: %s%swarning: pair %d (%s -> %s): inferred mask: %s\n", cmd, c->name ? c->name : "",
                    c->name ? ": " : "", i + 1, c->from[i], c->to[i], r->mask_info[i].message);
    }
    if (!o->quiet && have_plan && plan.seconds >= 0) {
        char took[64], est[64], rows[32], planned[32];
        cli_format_duration(took, sizeof took, r->seconds_total);
        cli_format_duration(est, sizeof est, plan.seconds);
        cli_format_count(rows, sizeof rows, r->unet_rows_total);
        cli_format_count(planned, sizeof planned, plan.unet_rows_total);
        fprintf(stderr, "oir %s: %s%sran %s (estimated %s), %s UNet rows (planned %s), %d decodes (planned %d)\n",
                cmd, c->name ? c->name : "", c->name ? ": " : "", took, est, rows, planned, r->decodes, plan.decodes);
    }
    /* the edit put back into the photo, at the photo's size */
    int feather = image_fit_feather(&fit);
    if ((rc = image_alloc(&edited, ww, wh, 3, err))) goto done;
    for (size_t i = 0; i < hw * 3; i++) edited.data[i] = r->edited[i] / 255.0f;
    if ((rc = image_fit_composite(&composite, &orig, &edited, photo_masks, c->n, &fit, feather, err))) goto done;
    /* outputs: into the run's fresh temp folder (the inputs were checked
     * against --out before anything was written) */
    char name[64];
    char *path = out_path(od, sub, "edited.png", err);
    rc = path ? image_save_png(&composite, path, err) : err->code;
    free(path);
    path = rc ? NULL : out_path(od, sub, "edited_working.png", err);
    if (!rc) rc = path ? save_rgb8(r->edited, ww, wh, path, err) : err->code;
    free(path);
    path = rc ? NULL : out_path(od, sub, "input.png", err);
    if (!rc) rc = path ? save_rgb8(rgb, ww, wh, path, err) : err->code;
    free(path);
    rep = cJSON_CreateObject();
    cJSON_AddStringToObject(rep, "command", cmd);
    cJSON_AddStringToObject(rep, "oir_version", oir_version());
    cJSON_AddStringToObject(rep, "case", c->name ? c->name : "");
    cJSON_AddStringToObject(rep, "model", oir_context_describe(ctx));
    cJSON_AddStringToObject(rep, "tokenizer_mode", o->tokenizer_mode ? o->tokenizer_mode : "clip");
    cJSON_AddStringToObject(rep, "image", c->image_path);
    /* how the photo became the working image and the edit went back */
    cJSON *g_work = cli_report_geometry(rep, orig.width, orig.height, ww, wh, &fit, feather);
    if (g_work) {
        cJSON_AddStringToObject(g_work, "from", o->size ? "flag" : "default");
        cJSON_AddStringToObject(g_work, "size", o->size ? o->size : "native");
    }
    cJSON_AddStringToObject(rep, "source_prompt", r->source_prompt);
    cJSON_AddStringToObject(rep, "target_prompt", r->target_prompt);
    cJSON_AddNumberToObject(rep, "steps", r->steps);
    cJSON_AddNumberToObject(rep, "guidance", p.guidance);
    cJSON_AddStringToObject(rep, "candidates", p.parallel ? "parallel" : "serial");
    cJSON_AddNumberToObject(rep, "reassembly_step_requested", search ? -1 : p.reassembly_step);
    cJSON_AddNumberToObject(rep, "reassembly_step", r->reassembly_step);
    cJSON_AddNumberToObject(rep, "reinversion_steps", r->reinversion_steps);
    cJSON_AddStringToObject(rep, "low_pick", oir_low_pick_name(r->low_pick));
    cJSON_AddNumberToObject(rep, "low_pick_unet_rows", (double)r->low_pick_unet_rows);
    if (r->guard) cJSON_AddNumberToObject(rep, "guard", short_float(r->guard_margin));
    else cJSON_AddStringToObject(rep, "guard", "off");
    cJSON_AddNumberToObject(rep, "memory_budget_mb", o->budget_mb);
    cJSON_AddNumberToObject(rep, "max_unet_batch", r->max_unet_batch);
    cJSON_AddStringToObject(rep, "search", r->search);
    cJSON_AddNumberToObject(rep, "candidate_unet_calls", (double)r->unet_calls);
    cJSON_AddNumberToObject(rep, "candidate_unet_rows", (double)r->unet_rows);
    cJSON_AddNumberToObject(rep, "unet_rows_total", (double)r->unet_rows_total);
    cJSON_AddNumberToObject(rep, "vae_decodes", r->decodes);
    cJSON_AddNumberToObject(rep, "mask_unet_rows", (double)r->mask_unet_rows);
    /* latent cells in several pairs' masks: each goes to the pair listed first */
    cJSON_AddNumberToObject(rep, "mask_overlap_cells", (double)r->mask_overlap_cells);
    if (have_plan) cli_plan_json(rep, &plan, &cal);
    cJSON_AddNumberToObject(rep, "seed", (double)seed);
    cJSON *set = cJSON_AddObjectToObject(rep, "settings");
    const struct {
        const char *name, *from;
        double value;
    } settings[] = {{"steps", src_steps, p.steps},
                    {"guidance", src_guidance, p.guidance},
                    {"reassembly_step", src_reassembly, p.reassembly_step},
                    {"reinversion_steps", src_reinversion, p.reinversion_steps},
                    {"seed", src_seed, (double)seed}};
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        cJSON *e = cJSON_AddObjectToObject(set, settings[i].name);
        cJSON_AddNumberToObject(e, "value", settings[i].value);
        cJSON_AddStringToObject(e, "from", settings[i].from);
    }
    cJSON *se = cJSON_AddObjectToObject(set, "search");
    cJSON_AddStringToObject(se, "value", r->search);
    cJSON_AddStringToObject(se, "from", src_search);
    se = cJSON_AddObjectToObject(set, "low_pick");
    cJSON_AddStringToObject(se, "value", oir_low_pick_name(p.low_pick));
    cJSON_AddStringToObject(se, "from", c->low_pick_from ? c->low_pick_from : "default");
    se = cJSON_AddObjectToObject(set, "guard");
    if (p.guard) cJSON_AddNumberToObject(se, "value", short_float(p.guard_margin));
    else cJSON_AddStringToObject(se, "value", "off");
    cJSON_AddStringToObject(se, "from", c->guard_from ? c->guard_from : "default");
    cJSON *pk = cJSON_AddObjectToObject(set, "pick"); /* {"2": 27}: pair number -> step */
    cJSON *pv = cJSON_AddObjectToObject(pk, "value");
    for (int i = 0; i < c->n; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", i + 1);
        if (c->forced[i]) cJSON_AddNumberToObject(pv, key, c->forced[i]);
    }
    cJSON_AddStringToObject(pk, "from", c->pick_from ? c->pick_from : "default");
    cJSON *cw = cJSON_AddArrayToObject(rep, "config_warnings");
    for (int i = 0; o->cfg && i < o->cfg->n_warnings; i++)
        cJSON_AddItemToArray(cw, cJSON_CreateString(o->cfg->warnings[i]));
    if (o->cfg && o->cfg->n_more_warnings) {
        char more[64];
        snprintf(more, sizeof more, "... and %d more", o->cfg->n_more_warnings);
        cJSON_AddItemToArray(cw, cJSON_CreateString(more));
    }
    cJSON_AddNumberToObject(rep, "threads", oir_get_threads());
    cJSON *dv = cJSON_AddObjectToObject(rep, "device"); /* where each model ran */
    const char *dev_models[] = {"unet", "vae", "text_encoder", "clip"};
    for (int i = 0; i < 4; i++) cJSON_AddStringToObject(dv, dev_models[i], oir_context_device(ctx, dev_models[i]));
    cJSON *jp = cJSON_AddArrayToObject(rep, "pairs");
    for (int i = 0; i < c->n && !rc; i++) {
        int T = r->steps;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "from", c->from[i]);
        cJSON_AddStringToObject(e, "to", c->to[i]);
        cJSON_AddStringToObject(e, "mask", cli_mask_is_auto(c->mask_spec[i]) ? "auto" : c->mask_spec[i]);
        if (r->mask_info[i].inferred) cJSON_AddItemToObject(e, "mask_inferred", cli_mask_info_json(&r->mask_info[i]));
        cJSON_AddStringToObject(e, "guided_prompt", r->guided_prompts[i]);
        cJSON_AddNumberToObject(e, "chosen_step", r->chosen_step[i]);
        /* "picked": --pick / pick gave it (nothing searched); "searched" */
        cJSON_AddStringToObject(e, "step_from", c->forced[i] ? "picked" : "searched");
        cli_report_pair_search(e, r, i, NULL);
        snprintf(name, sizeof name, "pair%d_sheet.png", i + 1);
        cJSON_AddStringToObject(e, "sheet", name);
        cJSON_AddItemToArray(jp, e);
        /* contact sheet */
        image cands[1000];
        int ok = 1;
        size_t img_n = hw * 3;
        for (int k = 0; k < T && ok; k++) {
            ok = image_alloc(&cands[k], ww, wh, 3, err) == OIR_OK;
            for (size_t j = 0; ok && j < img_n; j++) cands[k].data[j] = r->candidates[((size_t)i * T + k) * img_n + j] / 255.0f;
            if (!ok) T = k;
        }
        image sheet = {0};
        char title[256];
        snprintf(title, sizeof title, "pair %d: %s -> %s", i + 1, c->from[i], c->to[i]);
        if (!ok) rc = err->code;
        if (!rc)
            rc = sheet_render_guarded(&sheet, cands, T, r->edit_norm + (size_t)i * r->steps,
                                      r->background_norm + (size_t)i * r->steps, r->total + (size_t)i * r->steps,
                                      r->chosen_step[i] - 1, r->evaluated + (size_t)i * r->steps,
                                      r->guard ? r->eligible + (size_t)i * r->steps : NULL, title, err);
        if (!rc && r->mask_info[i].inferred) { /* the inferred mask over the input, on top */
            image with = {0}, in = {0};
            char caption[256];
            cli_mask_caption(caption, sizeof caption, &r->mask_info[i]);
            rc = image_alloc(&in, ww, wh, 3, err);
            for (size_t j = 0; !rc && j < hw * 3; j++) in.data[j] = rgb[j] / 255.0f;
            if (!rc) rc = sheet_add_mask(&with, &sheet, &in, r->masks + (size_t)i * hw, caption, err);
            image_free(&in);
            if (!rc) {
                image_free(&sheet);
                sheet = with;
            }
        }
        path = rc ? NULL : out_path(od, sub, name, err);
        if (!rc) rc = path ? image_save_png(&sheet, path, err) : err->code;
        free(path);
        image_free(&sheet);
        snprintf(name, sizeof name, "pair%d_mask.png", i + 1);
        path = rc ? NULL : out_path(od, sub, name, err);
        if (!rc) rc = path ? image_save_png(&masks[i], path, err) : err->code;
        free(path);
        for (int k = 0; o->save_candidates && !rc && k < T; k++) {
            snprintf(name, sizeof name, "pair%d_k%02d.png", i + 1, k + 1);
            path = out_path(od, sub, name, err);
            rc = path ? image_save_png(&cands[k], path, err) : err->code;
            free(path);
        }
        for (int k = 0; k < T; k++) image_free(&cands[k]);
    }
    cJSON *w = cJSON_AddArrayToObject(rep, "warnings");
    for (int i = 0; i < r->n_warnings; i++) cJSON_AddItemToArray(w, cJSON_CreateString(r->warnings[i]));
    for (int i = 0; i < n_notes; i++) cJSON_AddItemToArray(w, cJSON_CreateString(notes[i]));
    cli_report_seconds(rep, r);
    json = cJSON_Print(rep);
    path = rc ? NULL : out_path(od, sub, "report.json", err);
    if (!rc && !json) rc = oir_fail(err, OIR_E_NOMEM, "report.json: out of memory");
    if (!rc) rc = path ? outfile_write(path, json, strlen(json), err) : err->code;
    free(path);
    if (!rc && !o->no_summary) {
        printf("%s: %s\n", c->name ? c->name : cmd, r->target_prompt);
        for (int i = 0; i < c->n; i++)
            printf("  pair %d  %-20s -> %-20s %s step %2d of %d\n", i + 1, c->from[i], c->to[i],
                   c->forced[i] ? "picked" : "chosen", r->chosen_step[i], r->steps);
        if (!search && c->n > 1)
            printf("  reassembly at step %d, re-inversion %d steps\n", r->reassembly_step, r->reinversion_steps);
        if (n_picked < c->n) { /* how to take other candidates without searching again */
            printf("  to take other candidates from the sheets, without searching:");
            for (int i = 0; i < c->n; i++) printf(" --pick %d=%d", i + 1, r->chosen_step[i]);
            printf("\n");
        }
        for (int i = 0; i < r->n_warnings; i++) printf("  warning: %s\n", r->warnings[i]);
        for (int i = 0; i < n_notes; i++) printf("  warning: %s\n", notes[i]);
        if (orig.width != ww || orig.height != wh)
            printf("  photo %dx%d, worked on at %dx%d (region x %d..%d, y %d..%d), put back into edited.png\n",
                   orig.width, orig.height, ww, wh, fit.crop_x, fit.crop_x + fit.crop_w, fit.crop_y,
                   fit.crop_y + fit.crop_h);
        printf("  %.1f s (candidates %.1f s, %ld UNet calls)\n", r->seconds_total, r->seconds_candidates,
               r->unet_calls);
    }
done:
    cJSON_free(json);
    cJSON_Delete(rep);
    oir_result_free(r);
    image_free(&orig);
    image_free(&work);
    image_free(&edited);
    image_free(&composite);
    for (int i = 0; i < 16; i++) {
        image_free(&masks[i]);
        image_free(&photo_masks[i]);
        free(mask8[i]);
    }
    free(rgb);
    return rc;
}

#define MAX_WORKING_SIDE 4096

/* --size N (the longer side) or WxH: syntax and range; the model's multiple
 * is checked once it is loaded (check_size). */
int edit_parse_size(const char *spec, edit_opts *o, oir_error *err) {
    const char *x = strpbrk(spec, "xX");
    char a[32], b[32];
    if (!x) return cli_parse_int("--size", spec, 1, MAX_WORKING_SIDE, &o->size_side, err);
    size_t la = (size_t)(x - spec), lb = strlen(x + 1);
    if (la == 0 || lb == 0 || la >= sizeof a || lb >= sizeof b)
        return oir_fail(err, OIR_E_ARG, "--size '%s': expected N (the longer side) or WxH, e.g. --size 512 or "
                        "--size 768x512", spec);
    memcpy(a, spec, la);
    a[la] = '\0';
    memcpy(b, x + 1, lb + 1);
    int rc = cli_parse_int("--size (width)", a, 1, MAX_WORKING_SIDE, &o->size_w, err);
    return rc ? rc : cli_parse_int("--size (height)", b, 1, MAX_WORKING_SIDE, &o->size_h, err);
}

int edit_check_size(const edit_opts *o, const oir_context *ctx, oir_error *err) {
    int m = oir_context_size_multiple(ctx), v[3] = {o->size_side, o->size_w, o->size_h};
    for (int i = 0; i < 3; i++) {
        if (v[i] % m == 0) continue;
        int near = (v[i] + m / 2) / m * m;
        return oir_fail(err, OIR_E_ARG,
                        "--size %s: %d is not a multiple of %d: this model's image sides must be multiples of %d "
                        "(VAE factor x 2^(UNet blocks - 1)), e.g. %d; its native size is %d",
                        o->size, v[i], m, m, near < m ? m : near, oir_context_image_size(ctx));
    }
    return OIR_OK;
}

int edit_parse_flags(edit_opts *o, oir_error *err) {
    int rc;
    o->flag_low_pick = OIR_LOW_PICK_LOWER, o->flag_guard = 0, o->flag_margin = 0;
    if (o->low_pick && (rc = edit_parse_low_pick("--low-pick", o->low_pick, &o->flag_low_pick, err))) return rc;
    if (o->guard && (rc = edit_parse_guard("--guard", o->guard, &o->flag_guard, &o->flag_margin, err))) return rc;
    return OIR_OK;
}

void edit_spec_from_case(edit_case_spec *s, const edit_case *ec, const char *target) {
    s->name = ec->name;
    s->dir_name = ec->dir_name;
    s->image_path = ec->image_path;
    s->source = ec->origin_prompt;
    s->target = target ? target : ec->target_prompt;
    s->n = ec->n_pairs;
    s->reassembly = ec->reassembly_step;
    s->reinversion = ec->reinversion_steps;
    s->steps = ec->num_ddim_steps;
    s->guidance = ec->guidance_scale;
    s->search = ec->search[0] ? ec->search : NULL;
    s->yaml_low_pick = ec->low_pick[0] ? ec->low_pick : NULL;
    s->yaml_guard = ec->guard[0] ? ec->guard : NULL;
    s->has_seed = ec->has_seed;
    s->seed = ec->seed;
    s->yaml_pick = ec->pick;
    s->n_yaml_pick = ec->n_pick;
    for (int j = 0; j < ec->n_pairs && j < 16; j++) {
        s->from[j] = ec->pairs[j].from;
        s->to[j] = ec->pairs[j].to;
        s->mask_spec[j] = ec->pairs[j].mask_path;
        s->guided[j] = ec->pairs[j].guided_prompt;
    }
}

int edit_spec_resolve(edit_case_spec *s, const edit_opts *o, const char *where, int several, oir_error *err) {
    const char *from = s->case_from ? s->case_from : "yaml";
    int T = o->steps > 0 ? o->steps : s->steps > 0 ? s->steps : oir_default_params().steps;
    char what[700];
    const char *const *picks = o->picks.v;
    int n_picks = o->picks.n, rc;
    snprintf(what, sizeof what, "--pick");
    s->pick_from = n_picks ? "flag" : "default";
    if (!n_picks && s->n_yaml_pick) {
        picks = (const char *const *)s->yaml_pick;
        n_picks = s->n_yaml_pick;
        snprintf(what, sizeof what, "%s: pick", where);
        s->pick_from = from;
    } else if (n_picks && several) {
        snprintf(what, sizeof what, "--pick (case '%s')", s->name);
    }
    if ((rc = cli_pick_resolve(picks, n_picks, what, s->from, s->n, T, s->forced, err))) return rc;
    /* --low-pick / --guard, else the YAML's low_pick / guard, else the defaults */
    oir_params dp = oir_default_params();
    s->low_pick = dp.low_pick, s->guard = dp.guard, s->guard_margin = dp.guard_margin;
    s->low_pick_from = s->guard_from = "default";
    char yw[760];
    if (o->low_pick) {
        s->low_pick = o->flag_low_pick, s->low_pick_from = "flag";
    } else if (s->yaml_low_pick) {
        snprintf(yw, sizeof yw, "%s: low_pick", where);
        if ((rc = edit_parse_low_pick(yw, s->yaml_low_pick, &s->low_pick, err))) return rc;
        s->low_pick_from = from;
    }
    if (o->guard) {
        s->guard = o->flag_guard, s->guard_margin = o->flag_margin, s->guard_from = "flag";
    } else if (s->yaml_guard) {
        snprintf(yw, sizeof yw, "%s: guard", where);
        if ((rc = edit_parse_guard(yw, s->yaml_guard, &s->guard, &s->guard_margin, err))) return rc;
        s->guard_from = from;
    }
    return OIR_OK;
}

int edit_context_params(oir_context_params *cp, const edit_opts *o, oir_error *err) {
    *cp = oir_context_default_params();
    if (o->model) cp->model_path = o->model;
    else if (getenv("OIR_MODEL") && *getenv("OIR_MODEL")) cp->model_path = getenv("OIR_MODEL");
    if (o->clip) cp->clip_path = o->clip;
    else if (getenv("OIR_CLIP") && *getenv("OIR_CLIP")) cp->clip_path = getenv("OIR_CLIP");
    else if (strcmp(cp->model_path, oir_context_default_params().model_path) != 0) {
        /* a user's model scored by the shapes-world toy CLIP: never silently */
        return oir_fail(err, OIR_E_ARG,
                        "--model %s is given without --clip: the search metric would score with the shipped "
                        "toy CLIP (%s), which knows only the shapes world; give --clip PATH (a Hugging Face "
                        "CLIP folder, e.g. clip-vit-base-patch16 as the authors use) or set OIR_CLIP",
                        cp->model_path, cp->clip_path);
    }
    cp->variant = o->variant;
    tokenizer_mode tm = TOKENIZER_CLIP;
    if (o->tokenizer_mode && tokenizer_mode_parse(o->tokenizer_mode, &tm, err)) {
        oir_error_prefix(err, "--tokenizer-mode");
        return err->code;
    }
    cp->tokenizer_mode = (int)tm;
    return cli_device(o->device, &cp->device, err);
}
