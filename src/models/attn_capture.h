/* Cross-attention capture: what the UNet's cross-attention layers (attn2 of
 * every BasicTransformerBlock) look at, as a map on the latent grid
 * (issue 13's attention masks, src/edit/mask_attention.h).
 *
 *     attn_capture cap;
 *     int tokens[2] = {5, 6};                  // context positions ("red circle")
 *     attn_capture_init(&cap, lh, lw, 77, tokens, 2, ATTN_CAPTURE_ALL_ROWS, 2, &err);
 *     unet_forward_capture(m, &a, x, t, ctx, B, lh, lw, 77, eps, NULL, &cap, &err);
 *     // cap.map (lh, lw): sum over the selected layers (and rows); cap.n_added maps
 *     attn_capture_free(&cap);
 *
 * For each selected layer and recorded batch row it computes, per query
 * (image token) q, the softmax attention probabilities over all Tk context
 * keys exactly as diffusers 0.16.1's AttnProcessor does
 * (softmax(q k^T / sqrt(head dim)), float32), takes the mean over heads and
 * over the chosen token positions, and so gets a (gh, gw) map at the layer's
 * own token grid. That map is upsampled to (lh, lw) bilinearly with
 * torch.nn.functional.interpolate(mode="bilinear", align_corners=False)'s
 * sampling (half-pixel centres, edges clamped; the identity when gh == lh)
 * and added to `map`; n_added counts the maps added. Nothing is normalised:
 * divide by n_added for the mean.
 *
 * Layer selection: a layer whose token grid is gh x gw is kept when
 * gh * min_grid_divisor <= lh (its grid side is at most 1/min_grid_divisor
 * of the latent side; 1 = every layer) and, when max_grid_divisor is set
 * (> 0; 0 after init), gh * max_grid_divisor >= lh (at least
 * 1/max_grid_divisor of it). The UNet's grids are the latent divided by
 * powers of two, so height and width agree on the factor.
 *
 * Rows: `row` >= 0 records that batch row of each UNet call;
 * ATTN_CAPTURE_ALL_ROWS records every row (each row's maps are added).
 *
 * Cost: the probabilities are recomputed from the layer's q and k (the
 * attention itself stays the memory-efficient kernel, which never forms
 * them): C * Tk multiply-adds per query and recorded row, one query at a
 * time (no (heads, HW, Tk) tensor); unselected layers cost nothing. The
 * UNet's outputs are bit-identical with and without a capture. Everything
 * is allocated by attn_capture_init; a forward allocates nothing more.
 *
 * Not thread-safe: one capture per running forward. */
#ifndef OIR_MODELS_ATTN_CAPTURE_H
#define OIR_MODELS_ATTN_CAPTURE_H

#include "core/error.h"

#define ATTN_CAPTURE_ALL_ROWS (-1)
#define ATTN_CAPTURE_MAX_TOKENS 16 /* token positions one capture averages */
#define ATTN_CAPTURE_MAX_KEYS 1024 /* context length (SD: 77) */

/* Optional per-layer hook: the head- and token-mean map of one layer and
 * row at its own grid, before upsampling. name: the diffusers module path,
 * e.g. "down_blocks.1.attentions.0"; map (gh, gw) is valid during the call. */
typedef void (*attn_capture_layer_fn)(void *user, const char *name, int row, int gh, int gw,
                                      const float *map);

typedef struct {
    /* settings (attn_capture_init) */
    int lh, lw;               /* latent grid of the forwards it goes to */
    int ctx_len;              /* their context length */
    int row;                  /* batch row, or ATTN_CAPTURE_ALL_ROWS */
    int min_grid_divisor;     /* >= 1 */
    int max_grid_divisor;     /* 0 (no bound, after init), or >= min_grid_divisor: set after init */
    int n_tokens;
    int tokens[ATTN_CAPTURE_MAX_TOKENS]; /* positions in [0, ctx_len) */
    attn_capture_layer_fn layer_fn;      /* NULL, or set after init */
    void *layer_user;
    /* result */
    float *map;  /* (lh, lw): sum of the added maps */
    int n_added; /* maps added (layers x rows) */
    /* scratch, reused by every layer */
    float *layer_map; /* (lh * lw): one layer's map at its grid */
} attn_capture;

/* OIR_E_ARG naming the value when a size is < 1, no token is given (or more
 * than ATTN_CAPTURE_MAX_TOKENS), a token is outside [0, ctx_len), ctx_len is
 * above ATTN_CAPTURE_MAX_KEYS, row < -1 or min_grid_divisor < 1. */
int attn_capture_init(attn_capture *c, int lh, int lw, int ctx_len, const int *tokens,
                      int n_tokens, int row, int min_grid_divisor, oir_error *err);
void attn_capture_free(attn_capture *c);
/* Clears the map and n_added (the settings stay). */
void attn_capture_reset(attn_capture *c);

/* dst (dh, dw) += src (sh, sw) resized bilinearly with
 * F.interpolate(mode="bilinear", align_corners=False)'s sampling (how the
 * layer maps reach the latent grid; also a map's way to the image). */
void attn_map_bilinear_add(float *dst, int dh, int dw, const float *src, int sh, int sw);

/* ---- for unet.c --------------------------------------------------------- */

/* Checks a forward's sizes against the capture's (OIR_E_ARG naming both):
 * latent h x w, context length, and that `row` is < B. */
int attn_capture_check(const attn_capture *c, int B, int h, int w, int ctx_len, oir_error *err);
/* 1 when a layer with a gh x gw token grid is selected. */
int attn_capture_wants(const attn_capture *c, int gh, int gw);
/* Records batch row `row` of one cross-attention layer: q (gh*gw, heads*d)
 * and k (Tk, heads*d) of that row (to_q / to_k outputs, head h in columns
 * [h*d, (h+1)*d)). */
void attn_capture_layer(attn_capture *c, const char *name, int row, const float *q,
                        const float *k, int gh, int gw, int Tk, int heads, int d);

#endif
