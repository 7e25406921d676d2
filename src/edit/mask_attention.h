/* The cross-attention mask signal (issue 13, docs/MASKS.md "Cross-attention"):
 * where the UNet looks when it reads the source prompt's phrase.
 *
 * The image latents are noised to n_timesteps noise levels spread over
 * [strength_lo, strength_hi] of the training schedule (one UNet row each,
 * source prompt only, no CFG); an attention capture
 * (models/attn_capture.h) records, in every selected cross-attention layer,
 * the softmax probabilities of the phrase's tokens, averaged over heads,
 * tokens, layers and timesteps, on the latent grid; the result is min-max
 * normalised to [0, 1]. Thresholding, clean-up and upsampling belong to
 * the caller (the mask inference). */
#ifndef OIR_EDIT_MASK_ATTENTION_H
#define OIR_EDIT_MASK_ATTENTION_H

#include "diffusion/sampler.h"
#include "models/attn_capture.h"
#include "models/tokenizer.h"
#include "oir.h"

#define MASK_ATTENTION_MAX_TIMESTEPS 64

typedef struct {
    int n_timesteps;      /* noise levels averaged over (e.g. 3..5), spread over the middle of the schedule */
    float strength_lo, strength_hi; /* their range as a fraction of the training schedule */
    int min_grid_divisor; /* layers whose grid side is <= latent side / this (1 = all) */
    unsigned long long seed;  /* the noise added to the latents */
    int max_grid_divisor; /* and whose grid side is >= latent side / this (0 = no bound) */
} mask_attention_params;

/* The measured defaults (docs/MASKS.md). */
void mask_attention_defaults(mask_attention_params *p);

/* The cross-attention map of `phrase` (must occur once in source_prompt, whole words) on the
 * (lh, lw) latent grid of the image latents `latents` (4, lh, lw), mean over heads, selected
 * layers, the phrase's tokens and the timesteps, min-max normalised to [0, 1]. Conditional
 * (source prompt) row only, no CFG. *unet_rows += the UNet rows it ran.
 *
 * latents: the scaled VAE latents (as sampler_encode_image writes them), so
 * lh x lw is the image size over the VAE factor and must be a multiple of
 * 2^(UNet blocks - 1). A map with no contrast (max == min) comes back all
 * 0. Errors (OIR_E_ARG): a phrase missing from the prompt, occurring more
 * than once, with no tokens or cut off by the text encoder's length; bad
 * params (each named with its value); a latent size the model does not
 * take. Deterministic for a given seed, whatever the thread count. */
int mask_attention_map(oir_context *ctx, const float *latents, int lh, int lw,
                       const char *source_prompt, const char *phrase,
                       const mask_attention_params *p, float *map_out, long *unet_rows,
                       oir_error *err);

/* The same on a caller's sampler (its latent size and UNet batch; its
 * schedule is not used): latents (lat_c, s->lat_h, s->lat_w), map_out
 * (s->lat_h, s->lat_w). The rows run are counted in s->unet_rows. */
int mask_attention_map_sampler(sampler *s, const float *latents, const char *source_prompt,
                               const char *phrase, const mask_attention_params *p,
                               float *map_out, oir_error *err);

/* The same, calling layer_fn (may be NULL) with every selected layer's map
 * of every timestep row (before any averaging; attn_capture_layer_fn):
 * for measuring which layers carry the layout (bench/shapes/attn_probe.c). */
int mask_attention_map_layers(sampler *s, const float *latents, const char *source_prompt,
                              const char *phrase, const mask_attention_params *p,
                              attn_capture_layer_fn layer_fn, void *layer_user, float *map_out,
                              oir_error *err);

/* Context positions of `phrase` in tokenizer_encode(prompt, ctx_len): the
 * first is 1 (the start token) + the number of tokens of the prompt text
 * before the phrase's whole-word, case-insensitive occurrence
 * (prompt_find_phrase); *n_out is the phrase's token count. The tokens found
 * there are checked against the phrase's own. OIR_E_ARG as for
 * mask_attention_map, and when the phrase has more than
 * ATTN_CAPTURE_MAX_TOKENS tokens. */
int mask_attention_tokens(const tokenizer *tok, const char *prompt, const char *phrase,
                          int ctx_len, int *pos_out, int *n_out, oir_error *err);

#endif
