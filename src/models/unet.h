/* UNet2DConditionModel (diffusers 0.16.1), Stable Diffusion 1.x block types,
 * in parity with PyTorch, with one timestep per batch row.
 *
 * Usage (diffusers folder):
 *
 *     st_file *f; weights *w; unet_model *m = NULL;
 *     st_open(&f, "unet/diffusion_pytorch_model.safetensors", &err);
 *     weights_from_file(&w, f, "unet", "", NULL, &err);
 *     unet_load(&m, "unet/config.json", w, &err);   // fails naming missing /
 *     weights_finish(w, &err);                        // mis-shaped tensors
 *     arena a; arena_init(&a, unet_arena_bytes(m, B, h, w, 77), &err);
 *     unet_forward(m, &a, sample, timesteps, context, B, h, w, 77, eps, &err);
 *
 * The model points into the weights (which must outlive it) and owns no
 * activations: every forward takes an arena sized by unet_arena_bytes (the
 * worst-case live activations plus kernel scratch for that batch and size),
 * marks it on entry and resets it on return, and never calls malloc.
 *
 * The forward runs on the model's backend (unet_bind; the CPU by default):
 * the weights are bound once, the activations are carved from one buffer
 * (on the CPU backend the free part of the caller's arena, wrapped in
 * place; on a device, device memory of unet_arena_bytes), the inputs are
 * uploaded and the noise prediction downloaded. On the CPU backend the
 * results are bit-identical to the op_* kernels called directly.
 *
 * Threads: a backend is used by one thread at a time, so one forward at a
 * time per model (one model per thread).
 *
 * Config (config.json fields, as diffusers reads them): in_channels,
 * out_channels, block_out_channels, layers_per_block (int or list),
 * down_block_types / up_block_types (CrossAttnDownBlock2D, DownBlock2D /
 * CrossAttnUpBlock2D, UpBlock2D), mid_block_type (UNetMidBlock2DCrossAttn or
 * null), attention_head_dim (int or list: in diffusers 0.16.1 this is the
 * NUMBER of heads, head size = channels / heads), cross_attention_dim,
 * norm_num_groups, norm_eps, use_linear_projection, flip_sin_to_cos,
 * freq_shift, act_fn (silu), time_embedding_dim, conv_in_kernel,
 * conv_out_kernel, mid_block_scale_factor; upcast_attention is accepted
 * (everything runs in float32 anyway). Other features (class embeddings,
 * dual/only cross attention, scale_shift time embedding, ...) fail with
 * OIR_E_UNSUPPORTED naming the field and its value.
 *
 * Parity notes (diffusers 0.16.1):
 * - Transformer2DModel's GroupNorm uses eps 1e-6 whatever norm_eps says;
 *   its LayerNorms use 1e-5; attention scale is 1/sqrt(head size);
 * - proj_in/proj_out are 1x1 convs (use_linear_projection false, SD 1.x) or
 *   Linear layers: the same product, done here on token-major data once per
 *   transformer (one NCHW->NHWC transpose in, none out);
 * - latent height and width must be multiples of 2^(number of blocks - 1)
 *   (diffusers would interpolate to odd sizes; we refuse them).
 */
#ifndef OIR_MODELS_UNET_H
#define OIR_MODELS_UNET_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "core/arena.h"
#include "core/backend.h"
#include "core/error.h"
#include "models/attn_capture.h"
#include "models/sd_blocks.h"
#include "models/weights.h"

#define UNET_MAX_BLOCKS 6
#define UNET_MAX_LAYERS 4 /* layers_per_block; up blocks have one more */

typedef struct {
    int in_channels;                         /* C_in: 4 */
    int out_channels;                        /* C_out: 4 */
    int n_blocks;                            /* len(block_out_channels): 4 */
    int block_out_channels[UNET_MAX_BLOCKS]; /* 320, 640, 1280, 1280 */
    int layers_per_block[UNET_MAX_BLOCKS];   /* per down block: 2 (up blocks: +1) */
    int down_attn[UNET_MAX_BLOCKS];          /* 1: CrossAttnDownBlock2D, 0: DownBlock2D */
    int up_attn[UNET_MAX_BLOCKS];            /* 1: CrossAttnUpBlock2D, 0: UpBlock2D */
    int has_mid;                             /* mid_block_type UNetMidBlock2DCrossAttn */
    int heads[UNET_MAX_BLOCKS];              /* "attention_head_dim" per down block: 8 */
    int cross_attention_dim;                 /* context width: 768 */
    int norm_num_groups;                     /* 32 */
    float norm_eps;                          /* 1e-5 */
    int use_linear_projection;               /* 0 for SD 1.x */
    int flip_sin_to_cos;                     /* 1 */
    float freq_shift;                        /* 0 */
    int time_embed_dim;                      /* time_embedding_dim or 4*block_out_channels[0] */
    int conv_in_kernel, conv_out_kernel;     /* 3, 3 */
    float mid_block_scale_factor;            /* 1 */
} unet_config;

/* The Stable Diffusion 1.x UNet (for single-file checkpoints without a config). */
unet_config unet_config_sd1(void);
/* Parses and checks a UNet config.json (OIR_E_FORMAT / OIR_E_UNSUPPORTED /
 * OIR_E_SHAPE naming `where` and the field). */
int unet_config_from_json(unet_config *cfg, cJSON *root, const char *where, oir_error *err);
int unet_config_load(unet_config *cfg, const char *config_path, oir_error *err);
/* Consistency checks (channel counts vs groups and heads, sizes > 0). */
int unet_config_check(const unet_config *cfg, const char *where, oir_error *err);

/* ---- parameters (diffusers names in comments; C = that block's channels) - */

typedef struct {
    int c, heads, d_head, ctx_dim; /* c = heads * d_head */
    sd_norm norm;                  /* .norm GroupNorm(groups, C), eps 1e-6 */
    sd_linear proj_in;             /* .proj_in (C, C) or conv (C, C, 1, 1) */
    /* .transformer_blocks.0 (BasicTransformerBlock) */
    sd_norm norm1;                       /* LayerNorm(C) */
    sd_linear attn1_q, attn1_k, attn1_v; /* .attn1.to_q/k/v (C, C), no bias */
    sd_linear attn1_out;                 /* .attn1.to_out.0 (C, C) + (C) */
    sd_norm norm2;
    sd_linear attn2_q;          /* .attn2.to_q (C, C) */
    sd_linear attn2_k, attn2_v; /* .attn2.to_k/v (C, ctx_dim) */
    sd_linear attn2_out;        /* .attn2.to_out.0 (C, C) + (C) */
    sd_norm norm3;
    sd_linear ff_in;    /* .ff.net.0.proj (8C, C) + (8C): GEGLU */
    sd_linear ff_out;   /* .ff.net.2 (C, 4C) + (C) */
    sd_linear proj_out; /* .proj_out (C, C) or conv (C, C, 1, 1) */
} unet_transformer;

typedef struct {
    int c_in, c_out, n_layers, has_attn, has_downsample;
    sd_resnet resnets[UNET_MAX_LAYERS];
    unet_transformer attentions[UNET_MAX_LAYERS];
    sd_conv downsample; /* .downsamplers.0.conv (C_out, C_out, 3, 3), stride 2 pad 1 */
} unet_down_block;

typedef struct {
    int c_prev, c_out, n_layers, has_attn, has_upsample;
    int skip_c[UNET_MAX_LAYERS + 1]; /* channels of the skip each resnet concatenates */
    sd_resnet resnets[UNET_MAX_LAYERS + 1];
    unet_transformer attentions[UNET_MAX_LAYERS + 1];
    sd_conv upsample; /* .upsamplers.0.conv (C_out, C_out, 3, 3) */
} unet_up_block;

typedef struct unet_model {
    unet_config cfg;
    sd_conv conv_in;         /* (C0, C_in, k, k) */
    sd_linear time_linear_1; /* time_embedding.linear_1 (T_emb, C0) */
    sd_linear time_linear_2; /* time_embedding.linear_2 (T_emb, T_emb) */
    unet_down_block down[UNET_MAX_BLOCKS];
    sd_resnet mid_resnets[2];  /* mid_block.resnets.{0,1} (C_last) */
    unet_transformer mid_attn; /* mid_block.attentions.0 */
    unet_up_block up[UNET_MAX_BLOCKS];
    sd_norm conv_norm_out; /* GroupNorm(groups, C0) */
    sd_conv conv_out;      /* (C_out, C0, k, k) */
    struct unet_dev *dev;  /* the backend it runs on, its weights there (unet_bind) */
} unet_model;

/* Builds the model from a config.json and weights: every parameter is
 * looked up by its diffusers name with its expected shape. If any is
 * missing or mis-shaped, fails with weights_finish's message (naming them).
 * On success the caller still calls weights_finish (and may list unused
 * tensors). */
int unet_load(unet_model **out, const char *config_path, weights *w, oir_error *err);
int unet_load_config(unet_model **out, const unet_config *cfg, weights *w, oir_error *err);
void unet_free(unet_model *m);

/* The backend the forwards run on (docs/BACKENDS.md). A loaded model runs on
 * a CPU backend of its own (the weights wrapped where they are: zero-copy);
 * unet_bind moves it onto `be` (NULL: a CPU backend of its own again),
 * uploading the weights once (one buffer, one sync). `be` is the caller's
 * and must outlive the model or its next unet_bind. On failure the model is
 * back on a CPU backend of its own and the error says why. */
int unet_bind(unet_model *m, oir_backend *be, oir_error *err);
/* "cpu", "vulkan:0 (llvmpipe ...)", for reports. */
const char *unet_backend_name(const unet_model *m);
oir_backend *unet_backend(const unet_model *m);

/* Arena bytes one forward needs for batch B, latent h x w, context length. */
size_t unet_arena_bytes(const unet_model *m, int B, int h, int w, int ctx_len);
/* Bytes of the largest single view (operand) that forward binds on a
 * device: what must fit one binding (a Vulkan device's
 * maxStorageBufferRange, oir_backend.max_view_bytes); the arena itself is
 * one buffer carved into views and may be larger. */
size_t unet_max_view_bytes(const unet_model *m, int B, int h, int w, int ctx_len);
/* The most rows (batch) of one forward whose largest view fits `range`
 * bytes (oir_backend.max_view_bytes; 0: no limit, 65536 rows); 1 when not
 * even one row fits (that forward then refuses with the backend's
 * message). Rows are independent, so a batch split into calls of at most
 * this many rows gives the same result. */
int unet_max_rows_for_range(const unet_model *m, int h, int w, int ctx_len, size_t range);

/* Debug hook: called with named intermediates, as the fixtures name them:
 * "time_proj" (B, C0), "time_emb" (B, T_emb), "conv_in", "down.<i>", "mid",
 * "up.<i>", "conv_act" (silu(conv_norm_out(x))) (B, C, H, W), "noise_pred".
 * data is valid only during the call. */
typedef sd_tap unet_tap;

/* noise_pred_out (B, C_out, h, w) = unet(sample (B, C_in, h, w),
 * timesteps (B) -- one per row, may be fractional --, context
 * (B, ctx_len, cross_attention_dim)). */
int unet_forward(const unet_model *m, arena *a, const float *sample, const float *timesteps,
                 const float *context, int B, int h, int w, int ctx_len, float *noise_pred_out,
                 oir_error *err);
/* Same, calling tap (may be NULL) with the intermediates. */
int unet_forward_tap(const unet_model *m, arena *a, const float *sample, const float *timesteps,
                     const float *context, int B, int h, int w, int ctx_len, float *noise_pred_out,
                     const unet_tap *tap, oir_error *err);
/* Same, with an optional cross-attention capture (models/attn_capture.h;
 * NULL: none) that every selected attn2 layer fills. The noise prediction
 * is bit-identical with and without it. OIR_E_ARG when the capture was made
 * for another latent size or context length, or its row is >= B. */
int unet_forward_capture(const unet_model *m, arena *a, const float *sample,
                         const float *timesteps, const float *context, int B, int h, int w,
                         int ctx_len, float *noise_pred_out, const unet_tap *tap,
                         attn_capture *capture, oir_error *err);

/* The same forward on views of the model's backend (unet_backend(m)):
 * sample (B, C_in, h, w), context (B, ctx_len, cross_attention_dim) and
 * noise_pred (B, C_out, h, w), which must lie outside the arena's free
 * part; timesteps (B) is a host array. The forward is queued: the caller's
 * next be_download / be_sync / be_count_nonfinite runs it (and reports a
 * failure of its ops). context_host: the same contexts on the host, for the
 * per-row context classes (rows with byte-identical contexts are projected
 * once), or NULL: read from the view (its own address on the CPU, a
 * download on a device). On the CPU backend the views are host memory:
 * nothing is copied, and the result is bit-identical to unet_forward's.
 * unet_forward* above upload their host arrays, run this, download. */
int unet_forward_dev(const unet_model *m, arena *a, be_view sample, const float *timesteps, be_view context,
                     const float *context_host, int B, int h, int w, int ctx_len, be_view noise_pred,
                     const unet_tap *tap, attn_capture *capture, oir_error *err);

#endif
