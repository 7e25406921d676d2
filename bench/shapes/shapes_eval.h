/* Shapes-world evaluation: the pieces bench/shapes/quality.c (issue 4's
 * quality bars) and bench/shapes/edit_bench.c (issue 6's edit benchmark)
 * share, and tests/test_shapes_bench.c checks.
 *
 *   - the scene-set manifests of bench/scenes/ (written by
 *     tools/shapes/make_eval_sets.py), read with cJSON;
 *   - images and masks loaded at the model's size (the scenes are 64x64; a
 *     model of another size, e.g. the 16x16 test fixture, gets them resized:
 *     Pillow bicubic for images, torch-nearest for masks);
 *   - image metrics on 8-bit RGB: PSNR, MSE inside/outside a mask;
 *   - the tiny-CLIP judge: an object seen through the masked attention of
 *     DESIGN.md §2.4 (clip_patch_mask + clip_vision_forward, exactly what the
 *     search metric uses) is classified by the arg-max cosine against the
 *     text embeddings of every "COLOUR SHAPE" phrase of the world; a
 *     background region against every "NAME background" phrase; the whole
 *     image's CLIP score against a prompt is the unmasked cosine;
 *   - summaries: mean / std / histogram helpers.
 *
 * Images are (H, W, 3) bytes, masks (H, W) bytes (non-zero = inside), square,
 * of side `size`. Nothing here prints. */
#ifndef OIR_BENCH_SHAPES_EVAL_H
#define OIR_BENCH_SHAPES_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/error.h"
#include "models/loader.h"

#define SE_MAX_WORDS 16
#define SE_MAX_OBJECTS 3
#define SE_MAX_PAIRS 4
#define SE_PATH 512
#define SE_TEXT 512
#define SE_PSNR_CAP 100.0 /* dB: identical images, when PSNRs are averaged */

/* The world's words, in the renderer's order (shapes.py). */
typedef struct {
    int n_colours, n_shapes, n_backgrounds;
    char colours[SE_MAX_WORDS][32];
    char shapes[SE_MAX_WORDS][32];
    char backgrounds[SE_MAX_WORDS][32];
    int n_heldout;
    int heldout[SE_MAX_WORDS * 2][2]; /* (colour, shape) indices */
} se_vocab;

int se_vocab_colour(const se_vocab *v, const char *w);     /* index or -1 */
int se_vocab_shape(const se_vocab *v, const char *w);
int se_vocab_background(const se_vocab *v, const char *w);
int se_vocab_is_heldout(const se_vocab *v, int colour, int shape);

/* ---- held-out scenes (bench/scenes/heldout/manifest.json) ---------------- */

typedef struct {
    int colour, shape, heldout;
    int position;       /* SE_POS_* (se_position), -1 when the manifest has none */
    char mask[SE_PATH]; /* full path */
} se_object;

typedef struct {
    char name[32];
    char image[SE_PATH]; /* full path */
    char caption[SE_TEXT];
    int background;
    int n_objects;
    se_object objects[SE_MAX_OBJECTS];
} se_scene;

typedef struct {
    se_vocab vocab;
    int size; /* side of the stored images */
    int n;
    se_scene *scenes;
} se_scene_set;

/* dir: a folder with manifest.json (paths in it are relative to dir). */
int se_scene_set_load(se_scene_set *out, const char *dir, oir_error *err);
void se_scene_set_free(se_scene_set *s);

/* ---- edit cases (bench/scenes/edit/manifest.json) ------------------------ */

typedef struct {
    char from[64], to[64];
    char guided[SE_TEXT];
    char mask[SE_PATH];
    int is_background; /* 1: the pair edits the background */
    int object;        /* index into the case's objects (object pairs) */
    int colour, shape; /* expected result (object pairs) */
    int background;    /* expected background (background pairs) */
    int heldout;       /* the expected object is a held-out combination */
} se_pair;

typedef struct {
    int colour, shape, target_colour, target_shape, edited;
    int position;       /* SE_POS_* (se_position), -1 when the manifest has none */
    char mask[SE_PATH]; /* exact object mask in the source scene */
} se_case_object;

typedef struct {
    char name[64];
    char image[SE_PATH], ground_truth[SE_PATH];
    char source[SE_TEXT], target[SE_TEXT];
    int source_background, target_background;
    int n_objects, n_pairs;
    se_case_object objects[SE_MAX_OBJECTS];
    se_pair pairs[SE_MAX_PAIRS];
} se_case;

typedef struct {
    se_vocab vocab;
    int size;
    int n;
    se_case *cases;
} se_case_set;

int se_case_set_load(se_case_set *out, const char *dir, oir_error *err);
void se_case_set_free(se_case_set *s);

/* ---- images --------------------------------------------------------------- */

/* PNG -> (size, size, 3) bytes; resized (Pillow bicubic) when the file's side
 * differs. */
int se_load_rgb(const char *path, int size, unsigned char *rgb, oir_error *err);
/* PNG mask -> (size, size) bytes 0/1; resized (torch nearest) when needed. */
int se_load_mask(const char *path, int size, unsigned char *mask, oir_error *err);

/* PSNR in dB (peak 255) over every channel of n pixels; INFINITY when
 * identical. */
double se_psnr(const unsigned char *a, const unsigned char *b, size_t n_pixels);
/* Mean squared error in [0,1] units ((a - b) / 255 squared) over the pixels
 * where (mask != 0) == inside, all channels; *count receives the pixel
 * count (the MSE is 0 when it is 0). */
double se_masked_mse(const unsigned char *a, const unsigned char *b, const unsigned char *mask,
                     size_t n_pixels, int inside, size_t *count);
/* PSNR (peak 1) of an MSE in [0,1] units; INFINITY for 0. */
double se_psnr_of_mse(double mse);
/* min(psnr, SE_PSNR_CAP): what gets averaged. */
double se_psnr_capped(double psnr);

/* ---- the tiny-CLIP judge -------------------------------------------------- */

typedef struct {
    const clip_model *clip;
    const se_vocab *vocab;
    int S, grid, P, batch, ctx_len;
    arena arena;
    int n_pairs;          /* n_colours * n_shapes */
    float *pair_text;     /* (n_pairs, P) normalised; colour-major: c * n_shapes + s */
    float *bg_text;       /* (n_backgrounds, P) normalised */
    float *colour_text;   /* (n_colours, P) normalised: the colour words alone */
    float *shape_text;    /* (n_shapes, P) normalised: the shape words alone */
    float *pixels;        /* (batch, 3, S, S) */
    uint8_t *patch_masks; /* (batch, grid * grid) */
    float *embeds;        /* (batch, P) */
    int32_t *ids;         /* (ctx_len) */
    /* How a pixel mask reaches the patch grid: se_patch_mode below. */
    int patch_mode;
    /* 0: se_judge_classify reads colour and shape from the colour-shape
     * phrases; 1: as se_judge_classify_attrs (words, shape on greyscale). */
    int read_words;
} se_judge;

/* SE_PATCH_NEAREST (default): as the search metric's scorer (clip_patch_mask:
 * torch nearest, the top-left pixel of each cell); SE_PATCH_CENTRE: the pixel
 * at each cell's centre (tools/train/eval.py's "center"), to compare with the
 * Python numbers; SE_PATCH_ANY: every cell the mask touches (a 16-pixel object
 * under 8-pixel patches keeps 2-4 cells by nearest sampling, all 4-9 this way). */
enum { SE_PATCH_NEAREST, SE_PATCH_CENTRE, SE_PATCH_ANY };
#define SE_PATCH_MODES "nearest, centre or any"

/* "nearest" | "centre" | "any" -> SE_PATCH_*; -1 for anything else. */
int se_patch_mode(const char *name);

/* The judge's reading (read_words): "words" -> 1, "phrase" -> 0, else -1. */
#define SE_READ_MODES "words or phrase"
int se_read_words(const char *name);

int se_judge_init(se_judge *j, const clip_model *clip, const se_vocab *vocab, oir_error *err);
void se_judge_free(se_judge *j);

/* CLIP text_embeds of a text, L2-normalised (P floats). */
int se_judge_text(se_judge *j, const char *text, float *embed, oir_error *err);

/* Index of the row of table (n, P) with the largest dot product with e
 * (ties: the first). */
int se_argmax_dot(const float *e, const float *table, int n, int P);

/* n (image, mask) items of side `size`; images[i] and masks[i] may repeat
 * the same buffers. mask NULL: the unmasked embedding. Outputs (optional):
 * colour[i], shape[i] (arg-max over every colour-shape phrase, or as
 * se_judge_classify_attrs when read_words is set), bg[i]
 * (arg-max over the background phrases), embeds_out (n, P) normalised. */
int se_judge_classify(se_judge *j, const unsigned char *const *images,
                      const unsigned char *const *masks, int n, int size, int *colour,
                      int *shape, int *bg, float *embeds_out, oir_error *err);

/* The other reading of "colour and shape picked": colour = arg-max over the
 * colour words alone ("red") on the image, shape = arg-max over the shape
 * words alone ("star") on the image's greyscale (luma) copy — what the
 * CLIP's attribute loss and its greyscale shape views trained. It does not
 * need the held-out phrase "red star" to be well placed, and the shape is
 * read without the colour that training only ever saw with other shapes. */
int se_judge_classify_attrs(se_judge *j, const unsigned char *const *images,
                            const unsigned char *const *masks, int n, int size, int *colour,
                            int *shape, oir_error *err);

/* Cosine between the unmasked image embedding of rgb and a normalised text
 * embedding (the CLIP score of an image against a prompt). */
int se_judge_clip_score(se_judge *j, const unsigned char *rgb, int size, const float *text,
                        float *score, oir_error *err);

/* ---- summaries ------------------------------------------------------------ */

typedef struct {
    double sum, sum2;
    long n;
} se_stat;

void se_stat_add(se_stat *s, double x);
double se_stat_mean(const se_stat *s); /* NAN when empty */
double se_stat_std(const se_stat *s);  /* population std; NAN when empty */

/* Bin of value v in [1, T] among nbins equal bins over 1..T. */
int se_bin(int v, int T, int nbins);

/* The sign test of a paired comparison over cases: `wins` cases where A beat
 * B, `losses` where B beat A (ties dropped). The exact two-sided binomial p
 * value, min(1, 2 P(X <= min(wins, losses))) with X ~ Bin(wins + losses,
 * 1/2); 1 when there is no untied case. */
double se_sign_test_p(long wins, long losses);

/* ---- the pixel judge: the renderer's ground truth, no network ------------
 * (bench/shapes/shapes_pixel.c) Colours, backgrounds, positions and shape
 * outlines are the renderer's own (tools/shapes/shapes.py: COLOURS,
 * BACKGROUNDS, POSITIONS, OBJ_RADIUS, _polygon), copied into C; a shape's
 * template is its outline rendered at a position as shapes.py renders it
 * (4x4 supersampling, coverage >= 0.5), at any image side (scaled from 64).
 *
 *   colour   the per-channel median of the image inside the template of the
 *            shape that should be there (the ground truth's new object mask),
 *            nearest (RGB distance) among the world's colours and the
 *            background's colour at that row: a colour, or -1 (background);
 *   shape    the pixels within the object's slot (10 px around its centre at
 *            64 px: slots are 19 px apart) closer to the read colour than to
 *            the background, against every shape's template there: the
 *            arg-max IoU when it is >= SE_PX_MIN_IOU, else -1;
 *   background  the background whose gradient is nearest on average over a
 *            region (mean squared RGB distance to each row's colour). */
enum { SE_POS_LEFT, SE_POS_TOP, SE_POS_CENTER, SE_POS_BOTTOM, SE_POS_RIGHT, SE_N_POSITIONS };
#define SE_PX_MIN_IOU 0.5

/* "left" | "top" | "center" | "bottom" | "right" -> SE_POS_*; -1 else. */
int se_position(const char *name);

typedef struct {
    int size, n_colours, n_shapes, n_backgrounds;
    float colour_rgb[SE_MAX_WORDS][3];         /* vocab order */
    float bg_top[SE_MAX_WORDS][3], bg_bottom[SE_MAX_WORDS][3];
    unsigned char *templates;                  /* (SE_N_POSITIONS, n_shapes, size, size) 0/1 */
} se_px_judge;

/* The renderer's numbers for the vocabulary's words (an unknown word is an
 * OIR_E_FORMAT error naming it), templates at size x size. */
int se_px_init(se_px_judge *j, const se_vocab *v, int size, oir_error *err);
void se_px_free(se_px_judge *j);
/* (size, size) 0/1: shape s at position pos. */
const unsigned char *se_px_template(const se_px_judge *j, int pos, int shape);

typedef struct {
    int colour;      /* vocab colour, or -1: the region reads as background */
    int shape;       /* vocab shape, or -1: nothing shaped like any of them */
    double iou;      /* the best template's IoU with the coloured region */
    float median[3]; /* the region's median colour, 0..255 */
} se_px_object;

/* Reads the object at position pos of E (size, size, 3) on background bg:
 * colour inside the template of region_shape there, shape as above. */
void se_px_read_object(const se_px_judge *j, const unsigned char *E, int pos, int region_shape, int bg,
                       se_px_object *out);
/* The background of E over region (size, size; non-zero = counted). */
int se_px_read_background(const se_px_judge *j, const unsigned char *E, const unsigned char *region);

#endif
