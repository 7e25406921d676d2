/* Automatic masks (include/oir.h "Automatic masks", docs/MASKS.md): the
 * noise-contrast map of DiffEdit (diffusers' StableDiffusionDiffEditPipeline
 * .generate_mask, with the noise as an input), its normalisation and
 * threshold, and the clean-up from a map on the latent grid to an image
 * mask. The pieces are separate so that tests check each one: the map
 * against diffusers, the clean-up on synthetic maps.
 *
 * Grids are row-major (h, w); masks bytes 0/1. */
#ifndef OIR_EDIT_MASK_INFER_H
#define OIR_EDIT_MASK_INFER_H

#include <stddef.h>
#include <stdint.h>

#include "diffusion/sampler.h"
#include "oir.h"

/* Clean-up constants (docs/MASKS.md "Clean-up and fallbacks"). */
#define MASK_KEEP_RATIO 0.5f   /* components whose summed map is >= this x the strongest's are kept */
#define MASK_WHOLE_AREA 0.9f   /* a mask covering at least this fraction warns OIR_MASK_WARN_WHOLE */
/* A noise map with at least this fraction of its cells above its mean names a
 * region (a background; bench/shapes/mask_bench: background pairs 0.32-0.59,
 * object pairs 0.11-0.32): thresholded at MASK_REGION_THRESHOLD x its mean
 * (low: OIR with inferred masks edits backgrounds best when they cover
 * nearly the whole image; mask_edit_bench, docs/MASKS.md), holes not filled;
 * the whole-image warning from MASK_REGION_WHOLE_AREA. */
#define MASK_REGION_BROAD 0.33f
#define MASK_REGION_THRESHOLD 0.3f
#define MASK_REGION_WHOLE_AREA 0.98f
#define MASK_MAX_MAPS 256
#define MASK_MAX_DILATE 64
/* How a map on the latent grid reaches the image: NEAREST cleans the
 * thresholded cells and upsamples them (each cell its factor-square);
 * BILINEAR upsamples the map and thresholds and cleans at the image's
 * resolution (mask_method_upsample: each method's). */
enum { MASK_UPSAMPLE_NEAREST, MASK_UPSAMPLE_BILINEAR };

/* How the combined method joins the noise map (DiffEdit-normalised) and the
 * attention map (min-max normalised): the mean, the geometric mean or the
 * minimum of the two. MASK_COMBINE is the library's (the best measured). */
enum { MASK_COMBINE_MEAN, MASK_COMBINE_GEOMEAN, MASK_COMBINE_MIN };
#define MASK_COMBINE MASK_COMBINE_MEAN
void mask_combine(const float *a, const float *b, size_t n, int how, float *out);

/* OIR_MASK_DEFAULT -> the method it runs; each method's measured threshold,
 * dilation, upsampling and noise-map clamp ratio (what a negative threshold /
 * dilate_px / thresholding_ratio means). */
int mask_method_resolve(int method);
float mask_method_threshold(int method);
int mask_method_dilate(int method);
int mask_method_upsample(int method);
float mask_method_ratio(int method);

/* Checks p's values (the method must be one this build runs); names the
 * field and the allowed range. */
int mask_params_check(const oir_mask_params *p, oir_error *err);

/* The timestep generate_mask noises to: on a `steps`-step DDIM grid of cfg
 * (diffusers' leading spacing), timesteps[steps - int(steps * strength)].
 * OIR_E_ARG when int(steps * strength) is 0 (diffusers would index past the
 * grid). */
int mask_noise_timestep(const ddim_config *cfg, int steps, double strength, int64_t *t, oir_error *err);

/* n standard normal draws from a seed (core/noise.h: splitmix64 +
 * Box-Muller, the CLI's --seed noise; not torch's values). */
void mask_gaussian(float *out, size_t n, uint64_t seed);

/* DiffEdit's guidance map of one image latent (s->lat_n floats, scaled):
 * for each of p->num_maps draws (noise: (num_maps, lat_n)), the latent
 * noised to mask_noise_timestep's level, the UNet's noise predictions with
 * src_ctx and with tgt_ctx; map (lat_h * lat_w) = the mean over channels and
 * draws of |g (eps_tgt - eps_src)|, g = p->guidance when above 1, else 1
 * (equal to diffusers' difference of the two classifier-free-guided
 * predictions, whose empty-prompt branch cancels). 2 x num_maps UNet rows,
 * in calls split by the sampler's budget; *rows (may be NULL) gets them. */
int mask_noise_map(sampler *s, const float *latent, const float *src_ctx, const float *tgt_ctx,
                   const oir_mask_params *p, const float *noise, float *map, long *rows, oir_error *err);

/* DiffEdit's normalisation: c = mean(map) * ratio (float32, as torch);
 * out = clamp(map, 0, c) / c. Returns 0 when the map is flat (c is not a
 * positive finite number: out is then all 0), else 1. */
int mask_normalise(const float *map, size_t n, float ratio, float *out);

/* Cells of a normalised map above the threshold (DiffEdit: value <= 0.5 is
 * out). Returns how many are in. */
size_t mask_threshold(const float *norm, size_t n, float threshold, unsigned char *out);

/* Fills holes: every 0 cell not 4-connected to the grid's border becomes 1.
 * scratch: 2 * h * w ints. */
void mask_fill_holes(unsigned char *m, int h, int w, int *scratch);

/* Keeps the 8-connected components of m whose summed weight (map, or 1 per
 * cell when map is NULL) is at least keep_ratio x the strongest one's;
 * clears the others. Returns the number kept (-1: out of memory). scratch:
 * 2 * h * w ints. */
int mask_keep_components(unsigned char *m, const float *map, int h, int w, float keep_ratio, int *scratch);

/* Nearest upsampling of (lh, lw) to (H, W): pixel (y, x) takes cell
 * (y * lh / H, x * lw / W) (integer division). */
void mask_upsample_nearest(const unsigned char *m, int lh, int lw, unsigned char *out, int H, int W);

/* Bilinear upsampling of a map (lh, lw) to (H, W), as torch's
 * interpolate(mode="bilinear", align_corners=False). */
void mask_upsample_bilinear(const float *map, int lh, int lw, float *out, int H, int W);

/* Dilates m (H, W) by r pixels: a square of side 2r + 1 (Chebyshev
 * distance <= r). tmp: H * W bytes. */
void mask_dilate(unsigned char *m, int H, int W, int r, unsigned char *tmp);

/* The fraction of the map's cells above its mean: small for an object
 * (a peak on a quiet map), large for a phrase that names most of the image
 * (a background), whose map is high everywhere but on the objects. */
float mask_broadness(const float *map, size_t n);

/* mask_clean's flags. REGION: the map names a region around the objects (a
 * background): its holes (the objects) stay out. */
enum { MASK_CLEAN_FLAT = 1, MASK_CLEAN_REGION = 2 };

/* The clean-up and fallbacks of a normalised map (lh, lw) in [0, 1] into an
 * image mask (H, W), H and W multiples of lh and lw: threshold, fill holes
 * (not with MASK_CLEAN_REGION), keep components, upsample (nearest),
 * dilate; an empty result lowers the threshold to half the map's peak
 * (OIR_MASK_WARN_EMPTY), a flat map (MASK_CLEAN_FLAT, or no positive cell)
 * gives the whole image (OIR_MASK_WARN_FLAT), >= MASK_WHOLE_AREA of the
 * image warns OIR_MASK_WARN_WHOLE. Fills info's threshold, dilate_px, area,
 * components, warning and message (method, rows and inferred are the
 * caller's). */
int mask_clean(const float *norm, int flags, int lh, int lw, int H, int W, float threshold, int dilate_px,
               int upsample, unsigned char *mask, oir_mask_info *info, oir_error *err);

/* One pair's mask, from the image latent (s->lat_n, scaled) and the source
 * and guided prompts' contexts already encoded with s: the map of
 * p->method (noise: mask_noise_map + mask_normalise; attention:
 * mask_attention_map_sampler with its defaults and p->seed; combined: the
 * two joined by mask_combine), then mask_clean with the method's threshold,
 * dilation and upsampling (p's when given) into mask (s->image_h,
 * s->image_w). phrase: the pair's phrase of the source prompt (the
 * attention method's tokens). Fills every field of info. */
int mask_infer_pair(sampler *s, oir_context *ctx, const float *latent, const float *src_ctx,
                    const float *tgt_ctx, const char *source_prompt, const char *phrase,
                    const oir_mask_params *p, unsigned char *mask, oir_mask_info *info, oir_error *err);

/* UNet rows one mask of p's method costs (the plan): its noise contrast's
 * (one call of 2 x num_maps rows) and its attention map's (one call of the
 * attention defaults' n_timesteps rows), and their sum. */
void mask_rows_split(const oir_mask_params *p, long *noise_rows, long *attention_rows);
long mask_rows_per_pair(const oir_mask_params *p);

#endif
