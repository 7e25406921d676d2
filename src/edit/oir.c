/* OIR end to end (DESIGN.md §2): inversion, candidates of every pair
 * (parallel or serial), the search metric, and reassembly. The public API of
 * include/oir.h. Data flows one way: image -> latents -> candidates ->
 * scores -> choices -> reassembly -> image. */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/ops.h"
#include "core/threads.h"
#include "edit/candidates.h"
#include "edit/context.h"
#include "edit/mask_infer.h"
#include "edit/plan.h"
#include "edit/prompts.h"
#include "edit/scorer.h"
#include "edit/search_metric.h"
#include "edit/search_plan.h"
#include "edit/sheet.h"
#include "io/image_fit.h"
#include "models/loader.h"
#include "oir.h"

#define MAX_PAIRS 16
_Static_assert(SHEET_PICKED == OIR_EVALUATED_FORCED, "the sheet marks forced steps as oir.h says");
#define PROMPT_CAP 2048

struct oir_context {
    sd_model *sd;
    clip_model *clip;
    int image_size;    /* native side */
    int size_multiple; /* sides must be multiples of it */
    char describe[2600];
};

static char default_model_path[4200], default_clip_path[4200];
static pthread_once_t default_paths_once = PTHREAD_ONCE_INIT;

static void resolve_default_paths(void) {
    snprintf(default_model_path, sizeof default_model_path, "%s/tiny-shapes", oir_models_dir());
    snprintf(default_clip_path, sizeof default_clip_path, "%s/tiny-clip", oir_models_dir());
}

oir_context_params oir_context_default_params(void) {
    pthread_once(&default_paths_once, resolve_default_paths);
    oir_context_params p = {default_model_path, default_clip_path, NULL, 0, OIR_TOKENIZER_CLIP, NULL};
    return p;
}

oir_params oir_default_params(void) {
    oir_params p;
    memset(&p, 0, sizeof p);
    p.steps = 50;
    p.guidance = 7.5f;
    p.reassembly_step = 10;
    p.reinversion_steps = 10;
    p.parallel = 1;
    p.keep_candidates = 1;
    p.mask = oir_mask_default_params();
    p.low_pick = OIR_LOW_PICK_LOWER;
    return p;
}

int oir_low_pick_parse(const char *name) {
    if (!name) return -1;
    if (!strcmp(name, "lower")) return OIR_LOW_PICK_LOWER;
    if (!strcmp(name, "reinvert")) return OIR_LOW_PICK_REINVERT;
    return -1;
}

const char *oir_low_pick_name(int mode) {
    return mode == OIR_LOW_PICK_LOWER ? "lower" : mode == OIR_LOW_PICK_REINVERT ? "reinvert" : "?";
}


int oir_context_load(oir_context **out, const oir_context_params *p, oir_error *err) {
    *out = NULL;
    oir_context_params d = oir_context_default_params();
    if (!p) p = &d;
    threads_init();
    if (p->threads > 0) oir_set_threads(p->threads);
    oir_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return oir_fail(err, OIR_E_NOMEM, "out of memory");
    const char *mp = p->model_path ? p->model_path : d.model_path;
    const char *cp = p->clip_path ? p->clip_path : d.clip_path;
    _Static_assert(OIR_TOKENIZER_CLIP == (int)TOKENIZER_CLIP && OIR_TOKENIZER_OPENAI == (int)TOKENIZER_OPENAI &&
                       OIR_TOKENIZER_HF_NO_FTFY == (int)TOKENIZER_HF_NO_FTFY,
                   "oir.h's tokenizer modes mirror tokenizer_mode");
    if (p->tokenizer_mode < 0 || p->tokenizer_mode >= TOKENIZER_N_MODES) {
        free(ctx);
        return oir_fail(err, OIR_E_ARG, "tokenizer_mode %d: expected OIR_TOKENIZER_CLIP, _OPENAI or "
                        "_HF_NO_FTFY", p->tokenizer_mode);
    }
    sd_load_params lp = sd_load_default_params();
    lp.variant = p->variant;
    lp.tokenizer_mode = (tokenizer_mode)p->tokenizer_mode;
    lp.device = p->device;
    if (!lp.device && getenv("OIR_DEVICE") && *getenv("OIR_DEVICE")) lp.device = getenv("OIR_DEVICE");
    int rc = sd_model_load(&ctx->sd, mp, &lp, err);
    if (!rc && (!ctx->sd->tokenizer || !ctx->sd->text_encoder))
        rc = oir_fail(err, OIR_E_MISSING, "%s: no tokenizer/text encoder found (single files: set OIR_TOKENIZER when the "
                      "built-in CLIP vocabulary does not fit the text encoder)", mp);
    if (!rc) rc = clip_model_load(&ctx->clip, cp, err);
    if (!rc) rc = clip_model_share_device(ctx->clip, ctx->sd, err);
    if (!rc) tokenizer_set_mode(ctx->clip->tokenizer, (tokenizer_mode)p->tokenizer_mode);
    if (rc) {
        oir_context_free(ctx);
        return rc;
    }
    if ((rc = sd_model_native_size(ctx->sd, NULL, &ctx->image_size, err))) {
        oir_context_free(ctx);
        return rc;
    }
    ctx->size_multiple = sampler_size_multiple(ctx->sd);
    snprintf(ctx->describe, sizeof ctx->describe, "%s (%s) + CLIP %s", mp,
             ctx->sd->source == SD_SOURCE_DIFFUSERS ? "diffusers folder" : "single file", cp);
    *out = ctx;
    return OIR_OK;
}

void oir_context_free(oir_context *ctx) {
    if (!ctx) return;
    clip_model_free(ctx->clip); /* before the backend ctx->sd owns */
    sd_model_free(ctx->sd);
    free(ctx);
}

int oir_context_image_size(const oir_context *ctx) { return ctx->image_size; }
const char *oir_context_device(const oir_context *ctx, const char *model) {
    if (ctx && model && !strcmp(model, "clip")) return clip_model_device(ctx->clip);
    return ctx ? sd_model_device(ctx->sd, model) : "cpu";
}
int oir_context_size_multiple(const oir_context *ctx) { return ctx->size_multiple; }

int oir_working_size(const oir_context *ctx, int photo_w, int photo_h, int side, int *width, int *height,
                     oir_error *err) {
    if (!ctx || !width || !height) return oir_fail(err, OIR_E_ARG, "oir_working_size: missing argument");
    if (photo_w < 1 || photo_h < 1)
        return oir_fail(err, OIR_E_ARG, "oir_working_size: photo size %dx%d", photo_w, photo_h);
    if (side == 0) side = ctx->image_size;
    if (side < 0 || side % ctx->size_multiple != 0)
        return oir_fail(err, OIR_E_ARG, "size %d is not a positive multiple of %d (the model's VAE factor x "
                        "2^(UNet blocks - 1))", side, ctx->size_multiple);
    return image_fit_size(photo_w, photo_h, side, ctx->size_multiple, width, height, err);
}
const char *oir_context_describe(const oir_context *ctx) { return ctx->describe; }

void oir_result_free(oir_result *r) {
    if (!r) return;
    if (r->guided_prompts)
        for (int i = 0; i < r->n_pairs; i++) free(r->guided_prompts[i]);
    free(r->guided_prompts);
    free(r->source_prompt);
    free(r->target_prompt);
    free(r->chosen_step);
    free(r->edit_score);
    free(r->background_score);
    free(r->edit_norm);
    free(r->background_norm);
    free(r->total);
    free(r->edit_flat);
    free(r->background_flat);
    free(r->evaluated);
    free(r->reinverted);
    free(r->source_edit_score);
    free(r->eligible);
    free(r->guard_fallback);
    free(r->candidates);
    free(r->edited);
    free(r->masks);
    free(r->mask_info);
    free(r);
}

static void warn(oir_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(oir_result *r, const char *fmt, ...) {
    if (r->n_warnings >= 8) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->warnings[r->n_warnings++], sizeof r->warnings[0], fmt, ap);
    va_end(ap);
}

/* Pair i's step is forced (oir_params.forced_steps): it is not searched. */
static int forced(const oir_params *p, int i) { return p->forced_steps && p->forced_steps[i] > 0; }

/* Clears the want rows (n, T) of the forced pairs. */
static void unwant_forced(const oir_params *p, int n, int T, unsigned char *want) {
    for (int i = 0; i < n; i++)
        if (forced(p, i)) memset(want + (size_t)i * T, 0, (size_t)T);
}

/* (3, H, W) in [-1, 1] -> (H, W, 3) bytes (hw = H * W), truncated as the
 * authors' latent2image does ((x / 2 + 0.5).clamp(0, 1) * 255).astype(uint8). */
static void tensor_to_rgb8(const float *t, size_t hw, unsigned char *rgb) {
    for (size_t i = 0; i < hw; i++)
        for (int c = 0; c < 3; c++) {
            float v = t[c * hw + i] / 2 + 0.5f;
            v = v < 0 ? 0 : (v > 1 ? 1 : v);
            rgb[i * 3 + c] = (unsigned char)(v * 255);
        }
}

static void rgb8_to_image(const unsigned char *rgb, image *img) {
    for (size_t i = 0; i < (size_t)img->width * img->height * 3; i++) img->data[i] = rgb[i] / 255.0f;
}

/* Everything one edit holds; freed in one place. */
typedef struct {
    sampler s;
    scorer sc;
    int have_sampler, have_scorer;
    float *src_ctx, *target_ctx, *pair_ctx[MAX_PAIRS];
    float *levels;     /* (T+1, lat_n) */
    float *cand_lat;   /* (P, T, lat_n) */
    float *pixels;     /* (3, height, width) */
    image original, masks[MAX_PAIRS], cand_img[64];
    image recon;       /* the no-edit guard's reference: the source latent decoded, as a candidate is */
    float *text_embed; /* (P) the scorer's projection width: 1280 for ViT-bigG */
    int dec_total, scored_done, scored_total; /* run-wide progress of "decode" and "scoring" */
    int dec_after;  /* decodes that may follow the current set: 1 while more rounds or a final decode may come */
} edit_state;

static int tick(const oir_params *p, const char *stage, int done, int total, oir_error *err) {
    if (p->progress && p->progress(p->progress_user, stage, done, total))
        return oir_fail(err, OIR_E_CANCELLED, "cancelled");
    return OIR_OK;
}

/* One VAE decode of lat into st->pixels, counted in the run's one "decode"
 * stage (st->dec_total: the plan's count, raised when the run needs more). */
static int decode_counted(edit_state *st, oir_result *r, const oir_params *p, const float *lat, oir_error *err) {
    sampler_progress_fn own = st->s.progress;
    st->s.progress = NULL; /* not the sampler's per-call "1/1" */
    int rc = sampler_decode(&st->s, lat, 1, st->pixels, err);
    st->s.progress = own;
    if (rc) return rc;
    r->decodes++;
    if (r->decodes > st->dec_total) st->dec_total = r->decodes;
    return tick(p, "decode", r->decodes, st->dec_total, err);
}

static void state_free(edit_state *st, int n_pairs) {
    if (st->have_sampler) sampler_free(&st->s);
    if (st->have_scorer) scorer_free(&st->sc);
    free(st->src_ctx);
    free(st->target_ctx);
    for (int i = 0; i < MAX_PAIRS; i++) free(st->pair_ctx[i]);
    free(st->levels);
    free(st->cand_lat);
    free(st->pixels);
    free(st->text_embed);
    image_free(&st->original);
    image_free(&st->recon);
    for (int i = 0; i < n_pairs && i < MAX_PAIRS; i++) image_free(&st->masks[i]);
    for (int i = 0; i < 64; i++) image_free(&st->cand_img[i]);
}

static int check_inputs(const oir_context *ctx, const unsigned char *rgb, int width, int height,
                        const char *source, const oir_pair *pairs, int n_pairs, const oir_params *p,
                        oir_error *err) {
    if (!ctx || !rgb || !source || !pairs) return oir_fail(err, OIR_E_ARG, "missing argument");
    int m = ctx->size_multiple;
    if (width < m || height < m || width % m || height % m || width > IMAGE_MAX_SIDE || height > IMAGE_MAX_SIDE)
        return oir_fail(err, OIR_E_SHAPE,
                        "image is %dx%d; the model takes sides that are multiples of %d (native %dx%d; "
                        "crop/resize it first, e.g. oir_working_size + oir_image_fit)",
                        width, height, m, ctx->image_size, ctx->image_size);
    if (n_pairs < 1 || n_pairs > MAX_PAIRS)
        return oir_fail(err, OIR_E_ARG, "%d editing pairs (1..%d allowed)", n_pairs, MAX_PAIRS);
    if (p->steps < 1 || p->steps > 1000) return oir_fail(err, OIR_E_ARG, "steps must be 1..1000, got %d", p->steps);
    if (!(p->guidance >= 0 && p->guidance <= 100)) return oir_fail(err, OIR_E_ARG, "guidance must be 0..100");
    if (p->reassembly_step < 0 || p->reinversion_steps < 0)
        return oir_fail(err, OIR_E_ARG, "reassembly and re-inversion steps must be >= 0");
    for (int i = 0; p->forced_steps && i < n_pairs; i++)
        if (p->forced_steps[i] < 0 || p->forced_steps[i] > p->steps)
            return oir_fail(err, OIR_E_ARG, "pair %d: forced step %d is outside 1..%d (the steps; 0 = search it)",
                            i + 1, p->forced_steps[i], p->steps);
    int infer = 0;
    if (p->low_pick != OIR_LOW_PICK_LOWER && p->low_pick != OIR_LOW_PICK_REINVERT)
        return oir_fail(err, OIR_E_ARG, "low_pick %d: expected OIR_LOW_PICK_LOWER or OIR_LOW_PICK_REINVERT",
                        p->low_pick);
    int grc = p->guard ? search_guard_check(p->guard_margin, err) : OIR_OK;
    if (grc) return grc;
    for (int i = 0; i < n_pairs; i++) {
        if (!pairs[i].to || !pairs[i].to[0]) return oir_fail(err, OIR_E_ARG, "pair %d: empty target phrase", i + 1);
        if (!pairs[i].mask) { /* inferred before the search */
            infer = 1;
            continue;
        }
        size_t inside = 0;
        for (size_t j = 0; j < (size_t)width * height; j++) inside += pairs[i].mask[j] != 0;
        if (inside == 0)
            return oir_fail(err, OIR_E_ARG, "pair %d (%s -> %s): the mask is empty; nothing to edit", i + 1,
                            pairs[i].from ? pairs[i].from : "?", pairs[i].to);
    }
    if (infer && mask_params_check(&p->mask, err)) return oir_error_prefix(err, "oir_params.mask");
    return OIR_OK;
}

/* Guided prompts and the target prompt (DESIGN.md §2.2, §2.5). */
static int make_prompts(oir_result *r, const char *source, const oir_pair *pairs, int n, const oir_params *p,
                        oir_error *err) {
    const char *from[MAX_PAIRS], *to[MAX_PAIRS];
    char buf[PROMPT_CAP];
    for (int i = 0; i < n; i++) {
        from[i] = pairs[i].from ? pairs[i].from : "";
        to[i] = pairs[i].to;
    }
    r->guided_prompts = calloc((size_t)n, sizeof(char *));
    if (!r->guided_prompts) return oir_fail(err, OIR_E_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        if (pairs[i].guided_prompt) {
            r->guided_prompts[i] = strdup(pairs[i].guided_prompt);
            continue;
        }
        int use[MAX_PAIRS] = {0};
        use[i] = 1;
        int rc = prompt_substitute(source, n, from, to, use, buf, sizeof buf, err);
        if (rc && n == 1 && p->target_prompt) { /* one pair: its guided prompt is the target */
            r->guided_prompts[i] = strdup(p->target_prompt);
            continue;
        }
        if (rc) return oir_error_prefix(err, "guided prompt of pair %d", i + 1);
        r->guided_prompts[i] = strdup(buf);
    }
    if (p->target_prompt) {
        r->target_prompt = strdup(p->target_prompt);
    } else {
        int rc = prompt_substitute(source, n, from, to, NULL, buf, sizeof buf, err);
        if (rc) return oir_error_prefix(err, "target prompt");
        r->target_prompt = strdup(buf);
    }
    r->source_prompt = strdup(source);
    for (int i = 0; i < n; i++)
        if (!r->guided_prompts[i]) return oir_fail(err, OIR_E_NOMEM, "out of memory");
    return r->target_prompt && r->source_prompt ? OIR_OK : oir_fail(err, OIR_E_NOMEM, "out of memory");
}

static int alloc_result(oir_result *r, int n, int T, int width, int height, int keep) {
    size_t nt = (size_t)n * T, hw = (size_t)width * height;
    r->steps = T;
    r->n_pairs = n;
    r->width = width;
    r->height = height;
    r->chosen_step = calloc((size_t)n, sizeof(int));
    r->edit_flat = calloc((size_t)n, sizeof(int));
    r->background_flat = calloc((size_t)n, sizeof(int));
    r->edit_score = calloc(nt, sizeof(float));
    r->background_score = calloc(nt, sizeof(float));
    r->edit_norm = calloc(nt, sizeof(float));
    r->background_norm = calloc(nt, sizeof(float));
    r->total = calloc(nt, sizeof(float));
    r->evaluated = calloc(nt, 1);
    r->edited = malloc(hw * 3);
    r->candidates = keep ? calloc(nt * hw, 3) : NULL;
    r->masks = malloc((size_t)n * hw);
    r->mask_info = calloc((size_t)n, sizeof *r->mask_info);
    r->reinverted = calloc((size_t)n, 1);
    r->source_edit_score = calloc((size_t)n, sizeof(float));
    r->eligible = calloc(nt, 1);
    r->guard_fallback = calloc((size_t)n, sizeof(int));
    r->reassembly_step = -1;
    int ok = r->chosen_step && r->edit_flat && r->background_flat && r->edit_score && r->background_score &&
             r->edit_norm && r->background_norm && r->total && r->evaluated && r->edited &&
             (!keep || r->candidates) && r->masks && r->mask_info && r->reinverted && r->source_edit_score &&
             r->eligible && r->guard_fallback;
    for (size_t j = 0; ok && j < nt; j++) r->edit_score[j] = r->background_score[j] = NAN;
    for (int i = 0; ok && i < n; i++) r->source_edit_score[i] = NAN;
    return ok;
}

/* Decodes and scores candidates of pair i: lat (Tl, lat_n) holds the pair's
 * candidates on a Tl-step schedule; those with which[k-1] set are scored
 * into step dest(k) of the result (k itself, or the matching level of the
 * T-step schedule for a short one), flagged `flag` in r->evaluated. Chunks
 * of 64 images. */
static int score_set(edit_state *st, oir_result *r, const oir_pair *pair, int i, const float *lat,
                     int Tl, const unsigned char *which, unsigned char flag, const oir_params *p,
                     oir_error *err) {
    int T = r->steps, rc, todo = 0, done = 0;
    size_t hw = (size_t)r->width * r->height, img_n = 3 * hw;
    for (int k = 1; k <= Tl; k++) todo += which[k - 1] != 0;
    if ((rc = scorer_text(&st->sc, pair->to, st->text_embed, err))) return rc;
    if (p->guard && isnan(r->source_edit_score[i])) { /* the no-edit guard's reference: one CLIP pass */
        float e = NAN, b = NAN;
        double t0 = clock_wall_s();
        rc = scorer_score(&st->sc, &st->recon, 1, &st->masks[i], st->text_embed, &e, &b, err);
        r->seconds_scoring += clock_wall_s() - t0;
        if (rc) return rc;
        if (!isfinite(e))
            return oir_fail(err, OIR_E_NUMERIC, "scorer: pair %d: the source image's CLIP score is non-finite", i + 1);
        r->source_edit_score[i] = e;
    }
    int ks[64];
    for (int k = 1; k <= Tl;) {
        int B = 0;
        if (todo - done + st->dec_after > st->dec_total - r->decodes)
            st->dec_total = r->decodes + todo - done + st->dec_after; /* the plan expected fewer */
        if (todo > done && (rc = tick(p, "decode", r->decodes, st->dec_total, err))) return rc; /* burst starts */
        for (; k <= Tl && B < 64; k++) {
            if (!which[k - 1]) continue;
            int m = Tl == T ? k : search_map_level(k, Tl, T);
            double t0 = clock_wall_s();
            rc = decode_counted(st, r, p, lat + (size_t)(k - 1) * st->s.lat_n, err);
            r->seconds_decode += clock_wall_s() - t0;
            if (rc) return rc;
            unsigned char *rgb = r->edited; /* scratch until the end */
            unsigned char *dst = r->candidates ? r->candidates + ((size_t)i * T + m - 1) * img_n : rgb;
            tensor_to_rgb8(st->pixels, hw, dst);
            rgb8_to_image(dst, &st->cand_img[B]);
            ks[B++] = m;
        }
        if (!B) break;
        float edit[64], background[64];
        if (todo - done + st->dec_after > st->scored_total - st->scored_done)
            st->scored_total = st->scored_done + todo - done + st->dec_after;
        if ((rc = tick(p, "scoring", st->scored_done, st->scored_total, err))) return rc;
        double t0 = clock_wall_s();
        rc = scorer_score(&st->sc, st->cand_img, B, &st->masks[i], st->text_embed, edit, background, err);
        r->seconds_scoring += clock_wall_s() - t0;
        if (rc) return rc;
        if (op_count_nonfinite(edit, (size_t)B) || op_count_nonfinite(background, (size_t)B))
            return oir_fail(err, OIR_E_NUMERIC,
                            "scorer: pair %d: a candidate's CLIP score is non-finite (NaN or inf): "
                            "the CLIP model's weights overflow float32",
                            i + 1);
        for (int b = 0; b < B; b++) {
            size_t o = (size_t)i * T + ks[b] - 1;
            r->edit_score[o] = edit[b];
            r->background_score[o] = background[b];
            r->evaluated[o] = flag;
        }
        done += B;
        st->scored_done += B;
        if ((rc = tick(p, "scoring", st->scored_done, st->scored_total, err))) return rc;
    }
    return OIR_OK;
}

/* The metric over pair i's scored candidates (every evaluated one counts in
 * the normalisation); the choice is among those flagged `choose_flag` (0:
 * any evaluated one) and, with the no-edit guard, eligible. */
static int choose(oir_result *r, int i, unsigned char choose_flag, const oir_params *p) {
    int T = r->steps;
    size_t o = (size_t)i * T;
    unsigned char choosable[1000];
    for (int k = 0; k < T; k++)
        choosable[k] = choose_flag ? r->evaluated[o + k] == choose_flag : r->evaluated[o + k] != 0;
    search_choice c;
    if (p->guard) {
        c = search_metric_choose_guarded(r->edit_score + o, r->background_score + o, T, r->evaluated + o,
                                         choosable, r->source_edit_score[i], p->guard_margin, r->eligible + o,
                                         r->edit_norm + o, r->background_norm + o, r->total + o);
    } else {
        c = search_metric_choose_among(r->edit_score + o, r->background_score + o, T, r->evaluated + o,
                                       choosable, r->edit_norm + o, r->background_norm + o, r->total + o);
        for (int k = 0; k < T; k++) r->eligible[o + k] = r->evaluated[o + k] != 0;
    }
    r->guard_fallback[i] = c.guard_fallback;
    r->chosen_step[i] = c.best + 1;
    r->edit_flat[i] = c.edit_flat;
    r->background_flat[i] = c.background_flat;
    return c.best;
}

static int make_candidates(edit_state *st, const oir_params *p, const candidate_job *job, float *out,
                           oir_error *err) {
    return p->parallel ? candidates_parallel(&st->s, job, out, err) : candidates_serial(&st->s, job, out, err);
}

/* Scores every wanted candidate of every pair (lat: (n, Tl, lat_n)) and
 * chooses among those flagged choose_flag (0: any scored). */
static int score_all(edit_state *st, oir_result *r, const oir_pair *pairs, int n, const float *lat, int Tl,
                     const unsigned char *want, unsigned char flag, unsigned char choose_flag,
                     const oir_params *p, oir_error *err) {
    for (int i = 0; i < n; i++) {
        if (forced(p, i)) continue;
        int rc = score_set(st, r, &pairs[i], i, lat + (size_t)i * Tl * st->s.lat_n, Tl, want + (size_t)i * Tl,
                           flag, p, err);
        if (rc) return rc;
        if (choose(r, i, choose_flag, p) < 0)
            return oir_fail(err, OIR_E_NOMEM, "pair %d: out of memory choosing a step", i + 1);
    }
    return OIR_OK;
}

/* The short-schedule stage of short:TS and short-refine: its own TS-step
 * inversion, every TS-step candidate of every pair, scored at the matching
 * levels of the T-step schedule (flag 2); each pair's choice among them. */
static int search_short(edit_state *st, oir_result *r, const oir_pair *pairs, int n, const oir_params *p,
                        int TS, oir_error *err) {
    int T = r->steps, rc;
    size_t N = st->s.lat_n;
    float *levels = malloc((size_t)(TS + 1) * N * sizeof(float)), *lat = malloc((size_t)n * TS * N * sizeof(float));
    unsigned char *want = malloc((size_t)n * TS);
    if (!levels || !lat || !want) {
        rc = oir_fail(err, OIR_E_NOMEM, "short search: out of memory");
        goto cleanup;
    }
    memset(want, 1, (size_t)n * TS);
    unwant_forced(p, n, TS, want);
    memcpy(levels, st->levels, N * sizeof(float)); /* the clean image latent */
    if ((rc = sampler_set_steps(&st->s, TS, err))) goto cleanup;
    rc = sampler_invert(&st->s, levels, 0, TS, st->src_ctx, levels, err);
    candidate_job job = {levels, st->src_ctx, (const float *const *)st->pair_ctx, n, p->guidance, want,
                         "candidates (short schedule)"};
    if (!rc) rc = make_candidates(st, p, &job, lat, err);
    int back = sampler_set_steps(&st->s, T, err); /* decoding does not depend on it */
    if (!rc) rc = back;
    if (!rc) rc = score_all(st, r, pairs, n, lat, TS, want, 2, 2, p, err);
cleanup:
    free(levels);
    free(lat);
    free(want);
    return rc;
}

/* Steps 2-4 of the method (docs/DESIGN.md §2.2-2.4) under a search strategy
 * (edit/search_plan.h): candidates, decodes, scores, r->chosen_step. */
static int search(edit_state *st, oir_result *r, const oir_pair *pairs, int n, const oir_params *p,
                  const search_strategy *strat, oir_error *err) {
    int T = r->steps, rc = OIR_OK;
    unsigned char *want = calloc((size_t)n * T, 1);
    if (!want) return oir_fail(err, OIR_E_NOMEM, "search: out of memory");
    candidate_job job = {st->levels, st->src_ctx, (const float *const *)st->pair_ctx, n, p->guidance, want,
                         p->parallel ? "candidates (parallel)" : "candidates (serial)"};
    switch (strat->kind) {
    case SEARCH_EXHAUSTIVE:
        memset(want, 1, (size_t)n * T);
        unwant_forced(p, n, T, want);
        if (!(rc = make_candidates(st, p, &job, st->cand_lat, err)))
            rc = score_all(st, r, pairs, n, st->cand_lat, T, want, 1, 0, p, err);
        break;
    case SEARCH_COARSE:
        for (int i = 0; i < n; i++)
            if (!forced(p, i)) search_coarse_set(T, strat->stride, want + (size_t)i * T);
        job.stage = "candidates (coarse)";
        if ((rc = make_candidates(st, p, &job, st->cand_lat, err)) ||
            (rc = score_all(st, r, pairs, n, st->cand_lat, T, want, 1, 0, p, err)))
            break;
        for (int i = 0; i < n; i++)
            if (!forced(p, i))
                search_neighbours(T, r->chosen_step[i], strat->stride - 1, r->evaluated + (size_t)i * T,
                                  want + (size_t)i * T);
        job.stage = "candidates (refine)";
        if (!(rc = make_candidates(st, p, &job, st->cand_lat, err)))
            rc = score_all(st, r, pairs, n, st->cand_lat, T, want, 1, 0, p, err);
        break;
    case SEARCH_ADAPTIVE:
        for (int i = 0; i < n; i++)
            if (!forced(p, i)) search_geometric_set(T, strat->levels, want + (size_t)i * T);
        job.stage = "candidates (geometric)";
        for (;;) {
            if ((rc = make_candidates(st, p, &job, st->cand_lat, err)) ||
                (rc = score_all(st, r, pairs, n, st->cand_lat, T, want, 1, 0, p, err)))
                break;
            /* around the K best local peaks of each pair's curve (r->total:
             * normalised over its evaluated candidates by score_all) */
            int more = 0, peaks[1000];
            for (int i = 0; i < n; i++) {
                if (forced(p, i)) continue;
                size_t o = (size_t)i * T;
                int np = search_peaks(T, r->total + o, r->evaluated + o, strat->peaks, peaks);
                more += search_bisect_peaks(T, peaks, np, r->evaluated + o, want + o);
            }
            if (!more) break;
            job.stage = "candidates (bisection)";
        }
        break;
    case SEARCH_SHORT:
    case SEARCH_SHORT_REFINE:
        if ((rc = search_short(st, r, pairs, n, p, strat->short_steps, err))) break;
        int radius = strat->kind == SEARCH_SHORT ? 0 : strat->window;
        for (int i = 0; i < n; i++) {
            unsigned char none[1000] = {0};
            if (!forced(p, i)) search_neighbours(T, r->chosen_step[i], radius, none, want + (size_t)i * T);
        }
        if (strat->kind == SEARCH_SHORT) { /* only the choice, rendered on the T-step schedule */
            job.stage = "render chosen";
            rc = make_candidates(st, p, &job, st->cand_lat, err);
            break;
        }
        job.stage = "candidates (refine)";
        if (!(rc = make_candidates(st, p, &job, st->cand_lat, err)))
            rc = score_all(st, r, pairs, n, st->cand_lat, T, want, 1, 1, p, err);
        break;
    }
    free(want);
    for (int i = 0; i < n && !rc; i++) {
        if (r->background_flat[i]) warn(r, "pair %d: the background score is flat (mask covers the image?)", i + 1);
        if (r->edit_flat[i]) warn(r, "pair %d: the edit score is flat", i + 1);
        if (r->guard_fallback[i])
            warn(r,
                 "pair %d: no-edit guard: no candidate's masked CLIP score beats the source image's (%.4f) by "
                 "%.4f: the plain arg-max (step %d) is taken",
                 i + 1, (double)r->source_edit_score[i], (double)p->guard_margin, r->chosen_step[i]);
    }
    return rc;
}

/* The forced pairs (oir_params.forced_steps): their step is taken as given,
 * nothing is scored. When images are wanted (the contact sheet's
 * r->candidates, or a single pair's result), only candidate k of each is
 * denoised, on the T-step schedule, and decoded into r->candidates. */
static int render_forced(edit_state *st, oir_result *r, int n, const oir_params *p, int render,
                         oir_error *err) {
    int T = r->steps, rc = OIR_OK;
    size_t hw = (size_t)r->width * r->height, img_n = 3 * hw;
    for (int i = 0; i < n; i++) {
        if (!forced(p, i)) continue;
        r->chosen_step[i] = p->forced_steps[i];
        r->evaluated[(size_t)i * T + p->forced_steps[i] - 1] = OIR_EVALUATED_FORCED;
        for (int k = 0; k < T; k++) /* no scores: no normalised curves either */
            r->edit_norm[(size_t)i * T + k] = r->background_norm[(size_t)i * T + k] =
                r->total[(size_t)i * T + k] = NAN;
    }
    if (!render) return OIR_OK;
    unsigned char *want = calloc((size_t)n * T, 1);
    if (!want) return oir_fail(err, OIR_E_NOMEM, "forced steps: out of memory");
    for (int i = 0; i < n; i++)
        if (forced(p, i)) want[(size_t)i * T + p->forced_steps[i] - 1] = 1;
    candidate_job job = {st->levels, st->src_ctx, (const float *const *)st->pair_ctx, n, p->guidance, want,
                         "render picked"};
    rc = make_candidates(st, p, &job, st->cand_lat, err);
    free(want);
    for (int i = 0; i < n && !rc && r->candidates; i++) {
        if (!forced(p, i)) continue;
        int k = p->forced_steps[i];
        double t0 = clock_wall_s();
        rc = decode_counted(st, r, p, st->cand_lat + ((size_t)i * T + k - 1) * st->s.lat_n, err);
        r->seconds_decode += clock_wall_s() - t0;
        if (rc) break;
        tensor_to_rgb8(st->pixels, hw, r->candidates + ((size_t)i * T + k - 1) * img_n);
    }
    return rc;
}

/* After the search: the decode and scoring totals become what the run did
 * (plus the final decode, when the result is not a decoded candidate). */
static int settle_progress(edit_state *st, oir_result *r, const oir_params *p, int reassembly, oir_error *err) {
    int k = r->chosen_step[0], rc = OIR_OK;
    int final = reassembly || !(r->candidates && (r->evaluated[k - 1] == 1 || r->evaluated[k - 1] == OIR_EVALUATED_FORCED));
    if (st->dec_total != r->decodes + final) {
        st->dec_total = r->decodes + final;
        rc = tick(p, "decode", r->decodes, st->dec_total, err);
    }
    if (!rc && st->scored_total != st->scored_done) {
        st->scored_total = st->scored_done;
        rc = tick(p, "scoring", st->scored_done, st->scored_total, err);
    }
    return rc;
}

/* Pair i's chosen candidate at level R < its step k (low_pick reinvert):
 * the fully denoised candidate — the search's own latent when it has one
 * (every searched pair; a forced pair when it was rendered for the sheets),
 * else denoised here from inversion level k with the pair's guided prompt —
 * DDIM-inverted back up R levels with the guided prompt into piece (on the
 * UNet's backend). */
static int lift_to_R(edit_state *st, oir_result *r, const oir_params *p, int i, int R, be_view piece, oir_error *err) {
    sampler *s = &st->s;
    int T = r->steps, k = r->chosen_step[i], rc;
    size_t N = s->lat_n;
    long rows0 = s->unet_rows;
    if (!forced(p, i) || r->candidates) { /* denoised by the search / render_forced */
        be_upload(s->be, piece, st->cand_lat + ((size_t)i * T + k - 1) * N, N * sizeof(float));
    } else {
        be_upload(s->be, piece, st->levels + (size_t)k * N, N * sizeof(float));
        if ((rc = sampler_denoise_dev(s, piece, k, 0, st->pair_ctx[i], st->src_ctx, p->guidance, err))) return rc;
    }
    if ((rc = sampler_invert_dev(s, piece, 0, R, st->pair_ctx[i], BE_NONE, err))) return rc;
    r->reinverted[i] = 1;
    r->low_pick_unet_rows += s->unet_rows - rows0;
    return OIR_OK;
}

/* z's cells (every channel) that `owner` gives to `who` take piece's values:
 * a copy per run of such cells in each channel, on the backend. */
static void splice_owned(sampler *s, be_view z, be_view piece, const unsigned char *owner, unsigned char who) {
    size_t hw = (size_t)s->lat_h * s->lat_w;
    for (size_t j = 0; j < hw;) {
        if (owner[j] != who) {
            j++;
            continue;
        }
        size_t e = j + 1;
        while (e < hw && owner[e] == who) e++;
        for (int c = 0; c < s->lat_c; c++)
            be_copy(s->be, be_view_f(z, c * hw + j), be_view_f(piece, c * hw + j), (e - j) * sizeof(float));
        j = e;
    }
}

/* DESIGN.md §2.5 steps 2-5, from the chosen steps: the background, the
 * pieces, the splice, the re-inversion and the final denoise all on the
 * UNet's backend; z comes home once, to be decoded. */
static int reassemble(edit_state *st, oir_result *r, const oir_params *p, oir_error *err) {
    sampler *s = &st->s;
    int T = r->steps, n = r->n_pairs, rc = OIR_OK;
    size_t N = s->lat_n, hw = (size_t)s->lat_h * s->lat_w;
    int R = p->reassembly_step < T ? p->reassembly_step : T - 1, J = p->reinversion_steps;
    int kmin = T;
    for (int i = 0; i < n; i++) kmin = r->chosen_step[i] < kmin ? r->chosen_step[i] : kmin;
    if (kmin <= R && p->low_pick == OIR_LOW_PICK_REINVERT) { /* keep R: lift those candidates to it */
        char which[160] = "";
        size_t len = 0;
        for (int i = 0; i < n && len < sizeof which; i++)
            if (r->chosen_step[i] <= R)
                len += (size_t)snprintf(which + len, sizeof which - len, "%s%d (step %d)", len ? ", " : "", i + 1,
                                        r->chosen_step[i]);
        warn(r, "reassembly step %d kept (low_pick reinvert): the candidates of pair %s are re-inverted up to it",
             R, which);
    } else if (kmin <= R) { /* a pair chose a step at or below R: reassemble lower */
        warn(r, "reassembly step lowered from %d to %d: a pair's optimal step is %d", R, kmin - 1, kmin);
        R = kmin - 1;
    }
    if (R + J > T) {
        warn(r, "re-inversion steps lowered from %d to %d to stay within %d steps", J, T - R, T);
        J = T - R;
    }
    r->reassembly_step = R;
    r->reinversion_steps = J;
    /* latent-grid masks; a cell claimed by several pairs goes to the first */
    unsigned char *owner = malloc(hw);
    float *z = malloc(N * sizeof(float));
    sampler_buf zb = {0}, pb = {0};
    if (!owner || !z) {
        rc = oir_fail(err, OIR_E_NOMEM, "reassembly: out of memory");
        goto cleanup;
    }
    if ((rc = sampler_buf_open(s, &zb, z, N, 0, err)) || (rc = sampler_buf_open(s, &pb, NULL, N, 0, err)))
        goto cleanup;
    memset(owner, 0, hw);
    long overlap = 0;
    for (int i = 0; i < n; i++) {
        image lm = {0};
        if ((rc = mask_resize_nearest(&lm, &st->masks[i], s->lat_w, s->lat_h, err))) goto cleanup;
        for (size_t j = 0; j < hw; j++)
            if (lm.data[j] > 0.5f) {
                if (owner[j]) overlap++;
                else owner[j] = (unsigned char)(i + 1);
            }
        image_free(&lm);
    }
    r->mask_overlap_cells = overlap;
    if (overlap) warn(r, "masks overlap on %ld latent cells: each goes to the pair listed first", overlap);
    be_upload(s->be, zb.v, st->levels + (size_t)R * N, N * sizeof(float)); /* background: inversion level R */
    for (int i = 0; i < n; i++) {
        if (r->chosen_step[i] <= R) { /* only with low_pick reinvert */
            if ((rc = lift_to_R(st, r, p, i, R, pb.v, err))) goto cleanup;
        } else {
            be_upload(s->be, pb.v, st->levels + (size_t)r->chosen_step[i] * N, N * sizeof(float));
            if ((rc = sampler_denoise_dev(s, pb.v, r->chosen_step[i], R, st->pair_ctx[i], st->src_ctx, p->guidance,
                                          err)))
                goto cleanup;
        }
        splice_owned(s, zb.v, pb.v, owner, (unsigned char)(i + 1));
    }
    if ((rc = sampler_invert_dev(s, zb.v, R, J, st->src_ctx, BE_NONE, err))) goto cleanup;
    if ((rc = sampler_denoise_dev(s, zb.v, R + J, 0, st->target_ctx, st->src_ctx, p->guidance, err))) goto cleanup;
    if ((rc = sampler_buf_close(s, &zb, z, N, 1, err))) goto cleanup; /* the final latents, home to decode */
    if ((rc = decode_counted(st, r, p, z, err))) goto cleanup;
    tensor_to_rgb8(st->pixels, (size_t)r->width * r->height, r->edited);
cleanup:
    sampler_buf_close(s, &pb, NULL, 0, 0, NULL);
    sampler_buf_close(s, &zb, NULL, 0, 0, NULL);
    free(owner);
    free(z);
    return rc;
}

/* The masks of the pairs given without one (pairs[i].mask NULL), from the
 * image latent (st->levels[0]) and the source and guided prompts' contexts
 * already encoded: into r->masks, r->mask_info and st->masks. */
static int infer_masks(oir_context *ctx, edit_state *st, oir_result *r, const oir_pair *pairs, int n,
                       const oir_params *p, int n_infer, oir_error *err) {
    double t0 = clock_wall_s();
    size_t hw = (size_t)r->width * r->height;
    int done = 0, rc = tick(p, "mask", 0, n_infer, err);
    for (int i = 0; i < n && !rc; i++) {
        if (pairs[i].mask) continue;
        unsigned char *m = r->masks + (size_t)i * hw;
        oir_mask_info *info = &r->mask_info[i];
        if ((rc = mask_infer_pair(&st->s, ctx, st->levels, st->src_ctx, st->pair_ctx[i], r->source_prompt,
                                  pairs[i].from ? pairs[i].from : "", &p->mask, m, info, err))) {
            oir_error_prefix(err, "pair %d (%s -> %s): inferring its mask", i + 1, pairs[i].from ? pairs[i].from : "?",
                             pairs[i].to);
            break;
        }
        r->mask_unet_rows += info->unet_rows;
        for (size_t j = 0; j < hw; j++) st->masks[i].data[j] = m[j] ? 1.0f : 0.0f;
        if (info->warning) warn(r, "pair %d: inferred mask: %s", i + 1, info->message);
        rc = tick(p, "mask", ++done, n_infer, err);
    }
    r->seconds_mask = clock_wall_s() - t0;
    return rc;
}

static int run(oir_context *ctx, const unsigned char *rgb, int width, int height, const char *source,
               const oir_pair *pairs, int n, const oir_params *pin, int reassembly, oir_result **out,
               oir_error *err) {
    *out = NULL;
    oir_params p = pin ? *pin : oir_default_params();
    int rc = check_inputs(ctx, rgb, width, height, source, pairs, n, &p, err);
    if (rc) return rc;
    search_strategy strategy;
    if ((rc = search_strategy_parse(&strategy, p.search, p.steps, err))) return rc;
    int n_forced = 0;
    for (int i = 0; i < n; i++) n_forced += forced(&p, i);
    double t_start = clock_wall_s(), t0;
    oir_result *r = calloc(1, sizeof *r);
    edit_state st;
    memset(&st, 0, sizeof st);
    size_t hw = (size_t)width * height;
    if (!r || !alloc_result(r, n, p.steps, width, height, p.keep_candidates)) {
        oir_result_free(r);
        return oir_fail(err, OIR_E_NOMEM, "out of memory for %d pairs x %d candidates", n, p.steps);
    }
    search_strategy_format(&strategy, r->search, sizeof r->search);
    r->low_pick = p.low_pick;
    r->guard = p.guard != 0;
    r->guard_margin = p.guard ? p.guard_margin : 0.0f;
    if (n_forced == n) snprintf(r->search, sizeof r->search, "none");
    if ((rc = make_prompts(r, source, pairs, n, &p, err))) goto done;
    if ((rc = sampler_init_hw(&st.s, ctx->sd, height, width, p.steps, p.memory_budget, err))) goto done;
    st.have_sampler = 1;
    st.s.progress = p.progress;
    st.s.progress_user = p.progress_user;
    r->max_unet_batch = st.s.max_unet_batch;
    if (p.progress) plan_progress_totals(&p, n, st.s.max_unet_batch, &st.dec_total, &st.scored_total);
    st.dec_after = strategy.kind != SEARCH_EXHAUSTIVE; /* (a total is settled after the search) */
    int T = p.steps;
    size_t N = st.s.lat_n, ctx_n = (size_t)st.s.ctx_len * st.s.ctx_dim;
    st.src_ctx = malloc(ctx_n * sizeof(float));
    st.target_ctx = malloc(ctx_n * sizeof(float));
    st.levels = malloc((size_t)(T + 1) * N * sizeof(float));
    st.cand_lat = malloc((size_t)n * T * N * sizeof(float));
    st.pixels = malloc(3 * hw * sizeof(float));
    for (int i = 0; i < n; i++) st.pair_ctx[i] = malloc(ctx_n * sizeof(float));
    int ok = st.src_ctx && st.target_ctx && st.levels && st.cand_lat && st.pixels;
    for (int i = 0; i < n; i++) ok = ok && st.pair_ctx[i];
    if (!ok || image_alloc(&st.original, width, height, 3, err)) {
        rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
        goto done;
    }
    for (int b = 0; b < 64 && b < T; b++)
        if ((rc = image_alloc(&st.cand_img[b], width, height, 3, err))) goto done;
    int n_infer = 0;
    for (int i = 0; i < n; i++) {
        if ((rc = image_alloc(&st.masks[i], width, height, 1, err))) goto done;
        if (!pairs[i].mask) { /* inferred below, once the image is encoded */
            n_infer++;
            continue;
        }
        for (size_t j = 0; j < hw; j++) r->masks[(size_t)i * hw + j] = pairs[i].mask[j] != 0;
        for (size_t j = 0; j < hw; j++) st.masks[i].data[j] = pairs[i].mask[j] ? 1.0f : 0.0f;
        size_t inside = 0;
        for (size_t j = 0; j < hw; j++) inside += pairs[i].mask[j] != 0;
        if (inside == hw) warn(r, "pair %d: the mask covers the whole image", i + 1);
    }
    rgb8_to_image(rgb, &st.original);
    /* prompts */
    /* prompts past the text encoder's length are cut, as diffusers does, and reported */
    st.s.truncate_prompts = 1;
    const char *texts[MAX_PAIRS + 2] = {source, r->target_prompt};
    float *ctxs[MAX_PAIRS + 2] = {st.src_ctx, st.target_ctx};
    for (int i = 0; i < n; i++) texts[2 + i] = r->guided_prompts[i], ctxs[2 + i] = st.pair_ctx[i];
    for (int i = 0; i < n + 2; i++) {
        if ((rc = tick(&p, "prompts", i, n + 2, err)) || (rc = sampler_encode_prompt(&st.s, texts[i], ctxs[i], err)) ||
            (i == n + 1 && (rc = tick(&p, "prompts", n + 2, n + 2, err))))
            goto done;
        if (st.s.prompt_tokens_dropped)
            warn(r, "prompt \"%.40s...\" is %d tokens too long for the text encoder (%d): cut, as diffusers does",
                 texts[i], st.s.prompt_tokens_dropped, st.s.ctx_len);
    }
    /* 1. inversion */
    t0 = clock_wall_s();
    image_to_tensor(&st.original, st.pixels);
    if ((rc = sampler_encode_image(&st.s, st.pixels, st.levels, err))) goto done;
    if (n_infer && (rc = infer_masks(ctx, &st, r, pairs, n, &p, n_infer, err))) goto done;
    float *z = st.cand_lat; /* scratch: overwritten by the candidates below */
    memcpy(z, st.levels, N * sizeof(float));
    if ((rc = sampler_invert(&st.s, z, 0, T, st.src_ctx, st.levels, err))) goto done;
    r->seconds_inversion = clock_wall_s() - t0 - r->seconds_mask;
    /* 2-4. candidates, decodes, the search metric */
    t0 = clock_wall_s();
    long calls0 = st.s.unet_calls, rows0 = st.s.unet_rows;
    /* forced pairs: rendered only when an image of them is wanted */
    if (n_forced && (rc = render_forced(&st, r, n, &p, r->candidates || !(reassembly && n > 1), err))) goto done;
    if (n_forced < n) {
        if ((rc = scorer_init(&st.sc, ctx->clip, &st.original, err))) goto done;
        st.have_scorer = 1;
        if (!(st.text_embed = malloc((size_t)st.sc.P * sizeof(float)))) {
            rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
            goto done;
        }
        if (p.guard) { /* the unedited source as the model renders it: level 0 decoded, 8 bits, as a candidate */
            double t1 = clock_wall_s();
            if ((rc = image_alloc(&st.recon, width, height, 3, err)) ||
                (rc = decode_counted(&st, r, &p, st.levels, err)))
                goto done;
            r->seconds_decode += clock_wall_s() - t1;
            tensor_to_rgb8(st.pixels, hw, r->edited); /* (scratch until the end) */
            rgb8_to_image(r->edited, &st.recon);
        }
        if ((rc = search(&st, r, pairs, n, &p, &strategy, err))) goto done;
    }
    if ((rc = settle_progress(&st, r, &p, reassembly && n > 1, err))) goto done;
    r->unet_calls = st.s.unet_calls - calls0;
    r->unet_rows = st.s.unet_rows - rows0;
    r->seconds_candidates = clock_wall_s() - t0 - r->seconds_scoring - r->seconds_decode;
    /* 5. reassembly (several pairs) or the chosen candidate (one pair) */
    t0 = clock_wall_s();
    if (reassembly && n > 1) {
        if ((rc = reassemble(&st, r, &p, err))) goto done;
    } else {
        int k = r->chosen_step[0];
        unsigned char how = r->evaluated[k - 1];
        if (r->candidates && (how == 1 || how == OIR_EVALUATED_FORCED)) { /* decoded while scoring / forced */
            memcpy(r->edited, r->candidates + (size_t)(k - 1) * hw * 3, hw * 3);
        } else {
            if ((rc = decode_counted(&st, r, &p, st.cand_lat + (size_t)(k - 1) * N, err))) goto done;
            tensor_to_rgb8(st.pixels, hw, r->edited);
            if (r->candidates) /* the sheet shows the choice as rendered */
                memcpy(r->candidates + (size_t)(k - 1) * hw * 3, r->edited, hw * 3);
        }
        r->reinversion_steps = 0;
    }
    r->seconds_reassembly = clock_wall_s() - t0;
    r->seconds_total = clock_wall_s() - t_start;
    r->unet_rows_total = st.s.unet_rows;
done:
    state_free(&st, n);
    if (rc) {
        oir_result_free(r);
        return rc;
    }
    *out = r;
    return OIR_OK;
}

int oir_search(oir_context *ctx, const unsigned char *rgb, int width, int height, const char *source_prompt,
               const oir_pair *pair, const oir_params *p, oir_result **out, oir_error *err) {
    return run(ctx, rgb, width, height, source_prompt, pair, 1, p, 0, out, err);
}

int oir_edit(oir_context *ctx, const unsigned char *rgb, int width, int height, const char *source_prompt,
             const oir_pair *pairs, int n_pairs, const oir_params *p, oir_result **out, oir_error *err) {
    return run(ctx, rgb, width, height, source_prompt, pairs, n_pairs, p, 1, out, err);
}

const sd_model *oir_context_sd_model(const oir_context *ctx) { return ctx->sd; }
const clip_model *oir_context_clip_model(const oir_context *ctx) { return ctx->clip; }
