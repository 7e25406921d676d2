/* oir — Object-aware Inversion and Reassembly for image editing, in C11.
 *
 * Public API. Compiles as C and as C++. Every fallible call returns an
 * oir status (0 = OIR_OK) and fills an oir_error with a message that names
 * the file, tensor or field involved.
 */
#ifndef OIR_H
#define OIR_H

#ifdef __cplusplus
extern "C" {
#endif

#define OIR_VERSION_STRING "0.1.0"

enum {
    OIR_OK = 0,
    OIR_E_ARG = 1,         /* bad argument or option */
    OIR_E_IO = 2,          /* file missing, unreadable, unwritable */
    OIR_E_FORMAT = 3,      /* malformed file contents */
    OIR_E_SHAPE = 4,       /* tensor / image / mask shape mismatch */
    OIR_E_NOMEM = 5,       /* allocation failed or over budget */
    OIR_E_UNSUPPORTED = 6, /* valid but not supported (pickle, SDXL, ...) */
    OIR_E_CANCELLED = 7,   /* progress callback asked to stop */
    OIR_E_MISSING = 8,     /* required tensor or field absent */
    OIR_E_INTERNAL = 9,
    OIR_E_NUMERIC = 10     /* a model produced NaN or inf (weights overflow float32) */
};

typedef struct oir_error {
    int code;
    char message[1024];
} oir_error;

/* Short name of a status code ("bad file format"). */
const char *oir_status_name(int code);

/* Library version, e.g. "0.1.0". */
const char *oir_version(void);

/* The folder of the shipped tiny models (tiny-shapes/, tiny-clip/), used by
 * the defaults: $OIR_MODELS when set; else, walking up from the folder of
 * liboir.so (or of the program linked with liboir.a), the first ancestor A
 * with A/share/oir/models (an install) or A/models (the source tree); else
 * "models". */
const char *oir_models_dir(void);

/* Number of CPU threads used by kernels and BLAS (default: all cores). */
void oir_set_threads(int n);
int oir_get_threads(void);


/* ==== Editing: object-aware inversion and reassembly (OIR) ================
 *
 *     oir_context *ctx;
 *     oir_context_params cp = oir_context_default_params();
 *     cp.model_path = "models/tiny-shapes";  cp.clip_path = "models/tiny-clip";
 *     if (oir_context_load(&ctx, &cp, &err)) { puts(err.message); return 1; }
 *     int w, h;                                        // working size for a pw x ph photo:
 *     oir_working_size(ctx, pw, ph, 0, &w, &h, &err);  // longer side 64 on the tiny model
 *     oir_image_load("photo.png", w, h, &rgb, NULL, NULL, &err);  // crop to w:h, resize
 *     oir_pair pairs[2] = {{"dog", "cat", dog_mask, NULL}, {"gift", "cake", gift_mask, NULL}};
 *     oir_params p = oir_default_params();
 *     oir_result *r;
 *     if (oir_edit(ctx, rgb, w, h, "a dog sitting next to a gift", pairs, 2, &p, &r, &err)) ...
 *     ... r->edited (w*h*3 bytes), r->chosen_step[i], r->total[i*T + k-1] ...
 *     oir_image_composite(photo, pw, ph, r->edited, w, h, photo_masks, 2, &out, &err);
 *     oir_result_free(r);
 *     oir_context_free(ctx);
 *
 * Images are 8-bit RGB, row-major (H, W, 3), width x height: any sides that
 * are multiples of oir_context_size_multiple (the model's native size, or
 * what oir_working_size gives for a photo; oir_image_load and oir_image_fit
 * crop and resize as the CLI does). Masks are (H, W) bytes, non-zero =
 * object.
 * Thread safety: a context is read-only after loading; oir_edit/oir_search
 * calls on one context must not run concurrently (they share nothing else,
 * so use one context per thread). */

typedef struct oir_context oir_context;

/* How prompts are normalised before CLIP's BPE (both models' tokenizers). */
enum {
    OIR_TOKENIZER_CLIP = 0,      /* transformers' CLIPTokenizer with ftfy, as SD 1.x (default) */
    OIR_TOKENIZER_OPENAI = 1,    /* openai CLIP's: also unescapes HTML (html.unescape twice) */
    OIR_TOKENIZER_HF_NO_FTFY = 2 /* transformers without ftfy (BERT BasicTokenizer) */
};

typedef struct {
    const char *model_path; /* diffusers folder or single-file .safetensors (without a
                               tokenizer: the built-in CLIP vocabulary when it fits) */
    const char *clip_path;  /* Hugging Face CLIP folder (the scorer) */
    const char *variant;    /* "fp16" to prefer *.fp16.safetensors, or NULL */
    int threads;            /* 0: all cores */
    int tokenizer_mode;     /* OIR_TOKENIZER_* (default OIR_TOKENIZER_CLIP) */
    /* Where the models run (the UNet, the VAE, the text encoder and the
     * CLIP scorer, one backend): "cpu", "vulkan" (= "vulkan:0") or
     * "vulkan:N", optionally + ",fp16-weights" (weights stored as fp16 on
     * the device, computed in fp32; needs 16-bit storage; also
     * $OIR_VULKAN_FP16_WEIGHTS=1); NULL: $OIR_DEVICE, else the CPU. A build
     * without Vulkan, a missing loader, driver or device fail
     * oir_context_load with OIR_E_UNSUPPORTED. */
    const char *device;
} oir_context_params;

/* The shipped tiny models (oir_models_dir()/tiny-shapes and /tiny-clip). */
oir_context_params oir_context_default_params(void);
int oir_context_load(oir_context **out, const oir_context_params *p, oir_error *err);
void oir_context_free(oir_context *ctx);
/* Native image side of the model (unet sample_size x VAE factor). */
int oir_context_image_size(const oir_context *ctx);
/* Image sides must be multiples of this: the VAE factor x 2^(UNet blocks - 1)
 * (64 for SD 1.x, 16 for the tiny model). */
int oir_context_size_multiple(const oir_context *ctx);
/* The working size for a photo_w x photo_h photo, as the CLI's --size N:
 * the longer side `side` (0: the native size), the shorter side from the
 * photo's aspect rounded to the nearest multiple (at least one). OIR_E_ARG
 * when side is not a positive multiple of oir_context_size_multiple. */
int oir_working_size(const oir_context *ctx, int photo_w, int photo_h, int side, int *width,
                     int *height, oir_error *err);
/* Where a model of the context runs: "cpu" or "vulkan:N", for "unet",
 * "vae", "text_encoder" and "clip" (the scorer). */
const char *oir_context_device(const oir_context *ctx, const char *model);
/* "models/tiny-shapes (diffusers, unet F32) + models/tiny-clip" for reports. */
const char *oir_context_describe(const oir_context *ctx);

typedef struct {
    const char *from;           /* phrase of the source prompt ("dog") */
    const char *to;             /* what it becomes ("cat") */
    const unsigned char *mask;  /* (height, width), non-zero = the object; NULL: inferred
                                   (oir_params.mask, see "Automatic masks" below) */
    const char *guided_prompt;  /* NULL: source prompt with only this pair substituted */
} oir_pair;

/* ==== Automatic masks ======================================================
 *
 *     oir_mask_params mp = oir_mask_default_params();
 *     unsigned char *mask;  oir_mask_info info;
 *     if (oir_mask_infer(ctx, rgb, w, h, "a dog sitting next to a gift", "dog", "cat", &mp,
 *                        &mask, &info, &err)) ...
 *     ... mask (h*w bytes 0/1), info.area, info.warning ...
 *     oir_free(mask);
 *
 * Noise contrast (OIR_MASK_NOISE, the default: the best measured; DiffEdit,
 * Couairon et al. 2022, as diffusers' StableDiffusionDiffEditPipeline
 * .generate_mask): the image latent is noised to the level encode_strength
 * of a noise_steps-step DDIM grid with num_maps noise draws; the UNet's noise
 * predictions for the source prompt and for the pair's guided prompt (the
 * source with only this pair substituted) differ where the phrase is;
 * |difference| averaged over channels and draws, clamped at
 * thresholding_ratio x its mean and divided by that, is the map in [0, 1].
 * Cost: 2 x num_maps UNet rows (the empty prompt's branch of classifier-free
 * guidance cancels in the difference). Cross-attention (OIR_MASK_ATTENTION):
 * the source prompt's attention to the phrase's tokens in the UNet's
 * cross-attention layers one level below the latent grid, averaged over
 * heads, layers, tokens and 4 noise levels, min-max normalised; 4 UNet rows.
 * Combined (OIR_MASK_COMBINED): the mean of the two maps; both costs.
 * Clean-up: the map is upsampled to the image (bilinear) and cells above
 * `threshold` kept; holes filled (pixels not reachable from the border);
 * the 8-connected components whose summed map is at least half the
 * strongest one's kept; dilated by dilate_px (a square of side 2 dilate_px +
 * 1). threshold / dilate_px / thresholding_ratio -1: the method's measured
 * default (noise 0.60 / 1 px / ratio 6, attention 0.55 / 1 px, combined 0.70 /
 * 1 px / ratio 3; README "Automatic masks").
 * Fallbacks (info.warning says which, info.message in words): nothing above
 * the threshold -> the threshold is lowered to half the map's largest value
 * (OIR_MASK_WARN_EMPTY); a flat map (the two prompts predict the same noise
 * everywhere) -> the whole image (OIR_MASK_WARN_FLAT); a mask covering at
 * least 90% of the image is kept, with OIR_MASK_WARN_WHOLE (the edit is not
 * localised). A phrase missing from the source prompt is OIR_E_ARG, as in
 * oir_edit. */
enum {
    OIR_MASK_DEFAULT = 0,   /* the best measured method (README "Automatic masks") */
    OIR_MASK_NOISE = 1,     /* noise contrast (DiffEdit) */
    OIR_MASK_ATTENTION = 2, /* cross-attention of the phrase's tokens */
    OIR_MASK_COMBINED = 3   /* both maps combined */
};
enum {
    OIR_MASK_WARN_NONE = 0,
    OIR_MASK_WARN_EMPTY = 1, /* nothing above the threshold: lowered to half the map's peak */
    OIR_MASK_WARN_FLAT = 2,  /* the map is flat: the whole image */
    OIR_MASK_WARN_WHOLE = 3  /* the mask covers >= 90% of the image: kept, not localised */
};

typedef struct {
    int method;              /* OIR_MASK_* (DEFAULT: the best measured) */
    float threshold;         /* on the normalised map, 0..1: pixels above it are in; -1 (default):
                                the method's (DiffEdit's own is 0.5; 1 keeps nothing: the fallback) */
    int dilate_px;           /* margin around the cleaned mask, image pixels, 0..64; -1 (default):
                                the method's */
    /* noise contrast: diffusers' generate_mask knobs, with its defaults */
    int num_maps;            /* num_maps_per_mask (10), 1..256 */
    double encode_strength;  /* mask_encode_strength (0.5), (0, 1] */
    float thresholding_ratio;/* mask_thresholding_ratio, > 0 (DiffEdit's: 3.0); -1 (default): the
                                method's (noise 6: its threshold then lies below the clamp) */
    int noise_steps;         /* num_inference_steps (50): the grid the noise level is taken from */
    float guidance;          /* guidance_scale (7.5): scales the map only (not the mask) */
    unsigned long long seed; /* the noise draws, of both methods (0) */
    const float *noise;      /* NULL: drawn from seed; else (num_maps, latent channels, height / f,
                                width / f) standard normal draws, f the VAE factor (read during the call) */
} oir_mask_params;

oir_mask_params oir_mask_default_params(void);

typedef struct {
    int inferred;            /* 1: inferred here; 0: the pair's mask was given (nothing else set) */
    int method;              /* OIR_MASK_NOISE / _ATTENTION / _COMBINED, as run */
    float threshold;         /* the threshold used (the lowered one after OIR_MASK_WARN_EMPTY) */
    int dilate_px;
    float area;              /* fraction of the image's pixels inside the mask */
    int components;          /* connected components kept */
    long unet_rows;          /* UNet rows spent on this mask */
    int warning;             /* OIR_MASK_WARN_* */
    char message[256];       /* the warning in words, "" when none */
} oir_mask_info;

/* The mask of one editing pair (old_phrase -> new_phrase) of an image
 * (width x height, sides multiples of oir_context_size_multiple): *mask_out
 * (height, width) bytes 0/1, release with oir_free. p NULL: the defaults.
 * info may be NULL. */
int oir_mask_infer(oir_context *ctx, const unsigned char *rgb, int width, int height,
                   const char *source_prompt, const char *old_phrase, const char *new_phrase,
                   const oir_mask_params *p, unsigned char **mask_out, oir_mask_info *info,
                   oir_error *err);
/* "noise", "attention", "combined" (OIR_MASK_DEFAULT: the default's name). */
const char *oir_mask_method_name(int method);
/* The inverse; -1 for anything else. */
int oir_mask_method_parse(const char *name);

/* Progress: stage ("inversion", "candidates", "decode", "scoring",
 * "reassembly", "render picked" for forced steps, ...), done, total. Return non-zero to cancel (OIR_E_CANCELLED). */
typedef int (*oir_progress_fn)(void *user, const char *stage, int done, int total);

typedef struct {
    int steps;                 /* T: DDIM steps (50) */
    float guidance;            /* classifier-free guidance (7.5) */
    int reassembly_step;       /* R (10) */
    int reinversion_steps;     /* J (10) */
    int parallel;              /* 1: batched candidates (default); 0: serial */
    unsigned long long memory_budget; /* bytes for activations, 0 = 2 GiB */
    const char *target_prompt; /* NULL: source prompt with every pair substituted */
    int keep_candidates;       /* 1: fill oir_result.candidates (default) */
    /* How each pair's step is searched (NULL: "adaptive", i.e. adaptive:10:2:
     * 10 geometric levels, then bisection rounds around the 2 best local
     * peaks of the evaluated metric curve; at small T where those levels
     * cover every step it is the exhaustive search).
     * "exhaustive" is the paper's (every k = 1..T); "coarse:S" (steps S,
     * 2S, .. and T, then the neighbours of the best), "short:TS" (search on
     * a TS-step schedule, render the choice on T), "short-refine:TS:W"
     * (short:TS, then the T-step candidates within W of its choice),
     * "adaptive:M:K" (M levels, K peaks refined; adaptive:M is
     * adaptive:M:2, adaptive:M:1 refines around the best alone). See README
     * "Faster searches". */
    const char *search;
    oir_progress_fn progress;
    void *progress_user;
    /* (n_pairs) or NULL: forced_steps[i] = k in 1..steps takes candidate k
     * for pair i without searching (only that candidate is denoised, on the
     * T-step schedule, for the result / contact sheet; nothing is scored);
     * 0 = search the pair. All pairs forced: no search at all, only the
     * inversion, the forced candidates and the reassembly. A value outside
     * 0..steps is OIR_E_ARG. The array is read during the call only. */
    const int *forced_steps;
    /* How the masks of pairs whose mask is NULL are inferred (before the
     * search, from the run's own image latent and prompt encodings: 2 x
     * num_maps UNet rows a pair for the noise contrast). */
    oir_mask_params mask;
    /* A pair whose step k is at or below the reassembly step R (README "What
     * OIR does where the authors' code fails"): OIR_LOW_PICK_LOWER lowers R
     * to min(k) - 1 for the image (the authors' code); OIR_LOW_PICK_REINVERT
     * keeps R: the pair's chosen candidate (fully denoised, as on its
     * contact sheet) is DDIM-inverted back up to level R with its guided
     * prompt and spliced there. Pairs with k > R are reassembled as the
     * paper does in both modes. See oir_default_params for the default. */
    int low_pick;
    /* The no-edit guard of the search metric (0: off, the paper's metric,
     * the default): a candidate is eligible only when its masked CLIP score
     * with the target phrase beats the unedited source image's own masked
     * score by more than guard_margin (finite, >= 0; else OIR_E_ARG); when
     * no candidate is eligible the plain arg-max is taken, with a warning.
     * The source is scored as the model renders it (its latent decoded, as
     * every candidate is: the VAE alone moves the score of an unedited
     * image). Costs one VAE decode a run and one CLIP pass per searched
     * pair, no UNet. */
    int guard;
    float guard_margin;
} oir_params;

enum { OIR_LOW_PICK_LOWER = 0, OIR_LOW_PICK_REINVERT = 1 };
/* "lower" / "reinvert" -> OIR_LOW_PICK_*; -1 for anything else. */
int oir_low_pick_parse(const char *name);
/* OIR_LOW_PICK_* -> "lower" / "reinvert" ("?" when unknown). */
const char *oir_low_pick_name(int mode);

oir_params oir_default_params(void);

/* oir_result.evaluated of a pair's forced step (oir_params.forced_steps). */
#define OIR_EVALUATED_FORCED 3

typedef struct {
    int steps, n_pairs, width, height; /* the images: (height, width, 3) */
    char *source_prompt, *target_prompt;
    char **guided_prompts;       /* (n_pairs) */
    int *chosen_step;            /* (n_pairs) k in 1..steps (the forced step when given) */
    /* (n_pairs, steps), candidate k at [p * steps + k - 1]: */
    float *edit_score;           /* masked CLIP cosine with the target phrase */
    float *background_score;     /* minus the MSE outside the mask */
    float *edit_norm, *background_norm, *total; /* min-max normalised; total = sum */
    int *edit_flat, *background_flat; /* (n_pairs) 1 when a score was flat */
    /* (n_pairs, steps): 0 = the search skipped candidate k (scores NaN,
     * image black), 1 = scored on the T-step schedule, 2 = scored on the
     * short schedule at the matching noise level (short strategies),
     * OIR_EVALUATED_FORCED = the step given in oir_params.forced_steps
     * (rendered on the T-step schedule, not scored: scores NaN) */
    unsigned char *evaluated;
    char search[64];             /* the strategy, canonical ("coarse:5") */
    unsigned char *candidates;   /* (n_pairs, steps, height, width, 3) or NULL */
    unsigned char *edited;       /* (height, width, 3): the result */
    int reassembly_step;         /* R actually used (-1: single pair, no reassembly) */
    int reinversion_steps;       /* J actually used */
    char warnings[8][256];
    int n_warnings;
    double seconds_inversion, seconds_candidates, seconds_decode, seconds_scoring,
        seconds_reassembly, seconds_total;
    long unet_calls;             /* batched UNet calls of the search (candidates) */
    long unet_rows;              /* their UNet rows (sample-steps x CFG branches) */
    long unet_rows_total;        /* every UNet row of the run (inversions, reassembly) */
    int decodes;                 /* VAE decodes of the run */
    int max_unet_batch;          /* rows per UNet call allowed by the budget */
    /* The masks: */
    unsigned char *masks;        /* (n_pairs, height, width) 0/1: each pair's mask as used */
    oir_mask_info *mask_info;    /* (n_pairs): .inferred = 1 for the inferred ones */
    long mask_unet_rows;         /* UNet rows of the mask inference (part of unet_rows_total) */
    long mask_overlap_cells;     /* latent cells in several pairs' masks (reassembly: each goes to
                                    the pair listed first; 0 for one pair) */
    double seconds_mask;
    /* the reassembly of pairs at or below R (oir_params.low_pick) */
    int low_pick;                /* the mode used */
    unsigned char *reinverted;   /* (n_pairs) 1: the pair's candidate was re-inverted up to R */
    long low_pick_unet_rows;     /* UNet rows of those re-inversions (in unet_rows_total) */
    /* the no-edit guard (oir_params.guard) */
    int guard;                   /* 1: the search metric ran with the guard */
    float guard_margin;
    float *source_edit_score;    /* (n_pairs) the unedited source's masked CLIP cosine with the
                                    pair's target phrase, the source latent decoded (NaN: guard
                                    off, or forced) */
    unsigned char *eligible;     /* (n_pairs, steps) 1: a scored candidate the choice could take
                                    (passes the guard; with the guard off every scored one; 0 for
                                    forced pairs, which are not searched) */
    int *guard_fallback;         /* (n_pairs) 1: no candidate passed: the plain arg-max */
} oir_result;

/* One editing pair: every candidate and the search metric's choice; r->edited
 * is the chosen candidate. rgb: (height, width, 3), sides multiples of
 * oir_context_size_multiple (OIR_E_SHAPE otherwise). */
int oir_search(oir_context *ctx, const unsigned char *rgb, int width, int height,
               const char *source_prompt, const oir_pair *pair, const oir_params *p,
               oir_result **out, oir_error *err);
/* Several pairs: search each, then reassemble (docs/DESIGN.md §2.5). With one
 * pair this is oir_search. */
int oir_edit(oir_context *ctx, const unsigned char *rgb, int width, int height,
             const char *source_prompt, const oir_pair *pairs, int n_pairs, const oir_params *p,
             oir_result **out, oir_error *err);
void oir_result_free(oir_result *r);

/* ==== Planning a run: its work and how long it will take ==================
 *
 *     oir_calibration cal;                      // once per machine and size (cache it)
 *     oir_calibrate(ctx, w, h, &p, &cal, &err);
 *     oir_plan plan;
 *     oir_plan_run(ctx, w, h, n_pairs, &p, &cal, &plan, &err);
 *     printf("%ld UNet rows, %d decodes, about %.0f s\n", plan.unet_rows_total,
 *            plan.decodes, plan.seconds);
 *
 * The plan replays what oir_edit (n_pairs > 1) or oir_search (1) will run
 * with these parameters: inversion, the search strategy's candidate rounds
 * (batched or serial, split by the memory budget), decodes, scoring,
 * reassembly and re-inversion. Where the work depends on the scores (which
 * candidates coarse/adaptive/short evaluate, the reassembly after the chosen
 * steps) the counts are expected values (the mean over where the best step
 * lies, taken as spread log-uniformly over 1..T: as likely in 1..2 as in
 * 25..50) and [min, max] bound every run; plan.exact says which. */

/* Progress stages, as the progress callback names them (oir_stage_kind maps
 * a name to its kind). Units: prompts encoded, VAE encodes, inversion steps
 * (1 UNet row each), candidate sample-steps (2 rows each with guidance),
 * VAE decodes, candidates scored, denoising steps (2 rows each), masks
 * inferred ("mask"). The callback gets done = 0 when a stage starts;
 * "decode" and "scoring" count across the whole run. */
enum {
    OIR_STAGE_PROMPTS = 0,
    OIR_STAGE_ENCODE,
    OIR_STAGE_INVERSION,
    OIR_STAGE_CANDIDATES,
    OIR_STAGE_DECODE,
    OIR_STAGE_SCORING,
    OIR_STAGE_DENOISE,
    OIR_STAGE_MASK,
    OIR_STAGE_COUNT
};
/* "candidates (parallel)" -> OIR_STAGE_CANDIDATES, ...; -1 when unknown. */
int oir_stage_kind(const char *stage);

/* Measured costs on this machine at one working size and thread count. */
#define OIR_CALIBRATION_POINTS 4
typedef struct {
    int width, height, threads;
    int n_unet;                                    /* points measured (1..4) */
    int unet_rows[OIR_CALIBRATION_POINTS];         /* UNet rows in one call, ascending */
    double unet_seconds[OIR_CALIBRATION_POINTS];   /* seconds of that call */
    double decode_seconds, encode_seconds;         /* one VAE decode / encode */
    double text_seconds;       /* one prompt through the model's text encoder */
    double score_seconds;      /* scoring one candidate (CLIP vision, in batches) */
    double clip_text_seconds;  /* one phrase through the scorer's text tower */
} oir_calibration;

/* Times one UNet call at 1 row and at batches (16 and 64 rows, within the
 * memory budget; 2 rows when one row takes over 0.25 s), a VAE decode and
 * encode, a prompt and the scorer, at width x height with the current
 * threads; calls under 0.25 s are timed 3 times (the median). Takes about
 * 120 UNet rows' time on a small model, 4 on a large one. */
int oir_calibrate(oir_context *ctx, int width, int height, const oir_params *p,
                  oir_calibration *out, oir_error *err);
/* Seconds of one UNet call of `rows` rows: piecewise linear through the
 * measured points, proportional below the first; beyond the last, the last
 * segment's slope when it spans at least 4x in rows (a call's fixed cost is
 * paid once), else the last point's cost per row. */
double oir_calibration_unet_seconds(const oir_calibration *c, int rows);

typedef struct {
    int n_pairs, steps, width, height;
    char search[64];           /* the strategy, canonical */
    int exact;                 /* 1: the counts are exact; 0: expected, within [min, max] */
    long unet_rows_total;      /* every UNet row, as oir_result.unet_rows_total */
    long unet_rows_min, unet_rows_max;
    long candidate_rows;       /* the search's rows, as oir_result.unet_rows */
    long mask_rows;            /* the mask inference's rows, as oir_result.mask_unet_rows */
    long unet_calls;           /* UNet calls (batches split by the memory budget) */
    int decodes, decodes_min, decodes_max; /* VAE decodes, as oir_result.decodes */
    int encodes;               /* VAE encodes */
    int max_unet_batch;        /* rows per UNet call allowed by the memory budget */
    double stage_units[OIR_STAGE_COUNT];   /* expected progress units of each stage */
    double stage_seconds[OIR_STAGE_COUNT]; /* their estimated seconds (0 without a calibration) */
    double seconds;            /* estimated seconds of the call; -1 without a calibration */
    double seconds_per_unet_row; /* average over the run's UNet calls; -1 without one */
} oir_plan;

/* The plan of oir_edit/oir_search on a width x height image with n_pairs
 * pairs and these parameters; cal (may be NULL: counts only) gives the
 * seconds. Checks the same arguments the run checks (steps, search spec,
 * pairs, size). */
int oir_plan_run(const oir_context *ctx, int width, int height, int n_pairs, const oir_params *p,
                 const oir_calibration *cal, oir_plan *out, oir_error *err);
/* The same for these pairs: those whose mask is NULL will have it inferred
 * (p->mask), which the plan counts (oir_plan.mask_rows, stage "mask"). pairs
 * NULL: every mask given (= oir_plan_run). */
int oir_plan_edit(const oir_context *ctx, int width, int height, const oir_pair *pairs, int n_pairs,
                  const oir_params *p, const oir_calibration *cal, oir_plan *out, oir_error *err);

/* ==== Images in and out ====================================================
 * 8-bit RGB (H, W, 3) row-major; masks (H, W) of 0/1 bytes. Buffers are
 * malloc'd by the library: release them with oir_free. */

/* Reads a PNG or JPEG. width, height > 0: the largest centred region with the
 * aspect width:height, resized to width x height (bicubic), as the CLI does
 * (for a square size this is the authors' centre crop, load_512) — what
 * oir_edit takes; 0, 0: the image as it is. width_out/height_out (may be
 * NULL) receive the result's size. */
int oir_image_load(const char *path, int width, int height, unsigned char **rgb_out,
                   int *width_out, int *height_out, oir_error *err);
/* Reads a mask image (object where any channel is non-zero) and fits it as
 * oir_image_load does (nearest); 0, 0: as it is (width_out/height_out may
 * be NULL). Result bytes are 0 or 1. */
int oir_mask_load(const char *path, int width, int height, unsigned char **mask_out,
                  int *width_out, int *height_out, oir_error *err);
/* In memory, what oir_image_load does to a file: src (src_h, src_w,
 * channels) -> *out (height, width, channels), the largest centred region
 * with the aspect width:height resized; channels 3 (RGB, bicubic) or 1 (a
 * mask, nearest, bytes 0/1). */
int oir_image_fit(const unsigned char *src, int src_w, int src_h, int channels, int width,
                  int height, unsigned char **out, oir_error *err);
/* The edit put back into the photo: *out (photo_h, photo_w, 3) is the photo
 * with `edited` (height, width, 3; the result for oir_image_fit(photo, ...,
 * width, height)) resized back to its region and blended inside the union of
 * the n_masks photo-size masks (photo_h, photo_w), with a feather of two
 * working pixels inside their edge. Pixels outside the masks keep the
 * photo's bytes exactly. */
int oir_image_composite(const unsigned char *photo, int photo_w, int photo_h,
                        const unsigned char *edited, int width, int height,
                        const unsigned char *const *masks, int n_masks, unsigned char **out,
                        oir_error *err);
/* Writes rgb as an 8-bit PNG (a temporary file, then renamed over path). */
int oir_image_save_png(const char *path, const unsigned char *rgb, int width, int height,
                       oir_error *err);
void oir_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
