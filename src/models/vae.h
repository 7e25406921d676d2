/* AutoencoderKL (diffusers 0.16.1): the encoder to the posterior mean and
 * the decoder, in parity with PyTorch.
 *
 * Usage (diffusers folder):
 *
 *     st_file *f; weights *w; vae_model *m = NULL;
 *     st_open(&f, "vae/diffusion_pytorch_model.safetensors", &err);
 *     weights_from_file(&w, f, "vae", "", NULL, &err);
 *     vae_load(&m, "vae/config.json", w, &err);
 *     weights_finish(w, &err);
 *     arena a; arena_init(&a, vae_arena_bytes(m, B, 512, 512), &err);
 *     vae_encode_mean(m, &a, image, B, 512, 512, mean, &err);   // (B, 4, 64, 64)
 *     // latents for the UNet: mean * m->cfg.scaling_factor
 *     vae_decode(m, &a, latent, B, 64, 64, image, &err);        // latent unscaled
 *
 * The model points into the weights (which must outlive it); each pass takes
 * an arena. The passes run on the model's backend (vae_bind; the CPU by
 * default), as the UNet's do: on the CPU backend the activations are carved
 * from the free part of the arena, wrapped in place (bit-identical to the
 * op_* kernels called directly); on a device from device memory of
 * vae_*_arena_bytes; the input is uploaded and the output downloaded.
 * Threads: one pass at a time per model (a backend is used by one thread at
 * a time).
 *
 * Config: in_channels, out_channels, down_block_types (DownEncoderBlock2D),
 * up_block_types (UpDecoderBlock2D), block_out_channels, layers_per_block,
 * act_fn (silu), latent_channels, norm_num_groups, scaling_factor (default
 * 0.18215); others unsupported name the field (OIR_E_UNSUPPORTED).
 *
 * Parity notes (diffusers 0.16.1):
 * - every GroupNorm (resnets, mid attention, conv_norm_out) uses eps 1e-6;
 * - the encoder's downsamplers pad (0, 1, 0, 1) then conv stride 2, pad 0;
 * - the mid block's AttentionBlock is one head over C channels, scale
 *   1/sqrt(C), q/k/v/proj_attn Linear (C, C) with bias, output + residual
 *   (rescale_output_factor 1); its 0.16.1 names are group_norm, query, key,
 *   value, proj_attn; files saved by later diffusers (to_q, to_k, to_v,
 *   to_out.0) load too. It runs on the memory-efficient attention kernel:
 *   4096 tokens for a 512x512 image, no N x N matrix;
 * - encode returns the posterior mean (first latent_channels channels of
 *   quant_conv(encoder(x))), unscaled; decode takes an unscaled latent.
 */
#ifndef OIR_MODELS_VAE_H
#define OIR_MODELS_VAE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "core/arena.h"
#include "core/error.h"
#include "models/sd_blocks.h"
#include "models/weights.h"

#define VAE_MAX_BLOCKS 6
#define VAE_MAX_LAYERS 4 /* layers_per_block; decoder blocks have one more */

typedef struct {
    int in_channels;                        /* 3 */
    int out_channels;                       /* 3 */
    int latent_channels;                    /* L: 4 */
    int n_blocks;                           /* 4 */
    int block_out_channels[VAE_MAX_BLOCKS]; /* 128, 256, 512, 512 */
    int layers_per_block;                   /* 2 (decoder blocks: 3) */
    int norm_num_groups;                    /* 32 */
    float scaling_factor;                   /* 0.18215 */
} vae_config;

/* The Stable Diffusion 1.x VAE (for single-file checkpoints). */
vae_config vae_config_sd1(void);
int vae_config_from_json(vae_config *cfg, cJSON *root, const char *where, oir_error *err);
int vae_config_load(vae_config *cfg, const char *config_path, oir_error *err);
int vae_config_check(const vae_config *cfg, const char *where, oir_error *err);
/* Image side / latent side: 2^(n_blocks - 1) (8 for SD). */
int vae_downscale(const vae_config *cfg);

/* ---- parameters (diffusers names in comments) --------------------------- */

typedef struct {
    int c;
    sd_norm group_norm;          /* GroupNorm(groups, C), eps 1e-6 */
    sd_linear query, key, value; /* (C, C) + (C) */
    sd_linear proj_attn;         /* (C, C) + (C) */
} vae_attention;

typedef struct {
    sd_resnet resnets[2]; /* mid_block.resnets.{0,1} (C_last) */
    vae_attention attn;   /* mid_block.attentions.0 */
} vae_mid_block;

typedef struct {
    int c_in, c_out, has_downsample;
    sd_resnet resnets[VAE_MAX_LAYERS];
    sd_conv downsample; /* .downsamplers.0.conv (C_out, C_out, 3, 3), pad (0,1,0,1), stride 2 */
} vae_down_block;

typedef struct {
    int c_in, c_out, has_upsample;
    sd_resnet resnets[VAE_MAX_LAYERS + 1];
    sd_conv upsample; /* .upsamplers.0.conv (C_out, C_out, 3, 3) */
} vae_up_block;

typedef struct vae_model {
    vae_config cfg; /* cfg.scaling_factor: latents = mean * scaling_factor */
    /* encoder.* */
    sd_conv enc_conv_in; /* (C0, 3, 3, 3) */
    vae_down_block enc_down[VAE_MAX_BLOCKS];
    vae_mid_block enc_mid;
    sd_norm enc_norm_out; /* GroupNorm(groups, C_last) */
    sd_conv enc_conv_out; /* (2L, C_last, 3, 3) */
    sd_conv quant_conv;   /* (2L, 2L, 1, 1) */
    /* decoder.* */
    sd_conv post_quant_conv; /* (L, L, 1, 1) */
    sd_conv dec_conv_in;     /* (C_last, L, 3, 3) */
    vae_mid_block dec_mid;
    vae_up_block dec_up[VAE_MAX_BLOCKS];
    sd_norm dec_norm_out; /* GroupNorm(groups, C0) */
    sd_conv dec_conv_out; /* (3, C0, 3, 3) */
    struct vae_dev *dev;  /* the backend it runs on, its weights there (vae_bind) */
} vae_model;

/* Builds the model; fails naming missing / mis-shaped tensors (the caller
 * still calls weights_finish on success). */
int vae_load(vae_model **out, const char *config_path, weights *w, oir_error *err);
int vae_load_config(vae_model **out, const vae_config *cfg, weights *w, oir_error *err);
void vae_free(vae_model *m);

/* The backend the passes run on, as unet_bind (models/unet.h): a loaded
 * model runs on a CPU backend of its own (weights wrapped: zero-copy);
 * vae_bind moves it onto `be` (NULL: a CPU backend of its own again),
 * uploading the weights once. `be` is the caller's and must outlive the
 * model or its next vae_bind. On failure the model is back on a CPU backend
 * of its own and the error says why. */
int vae_bind(vae_model *m, oir_backend *be, oir_error *err);
/* "cpu", "vulkan:0 (llvmpipe ...)", for reports. */
const char *vae_backend_name(const vae_model *m);
oir_backend *vae_backend(const vae_model *m);

/* Arena bytes for one pass on batch B: encode of an H x W image, decode of
 * an h x w latent, or the larger of both for H x W images. */
size_t vae_encode_arena_bytes(const vae_model *m, int B, int H, int W);
size_t vae_decode_arena_bytes(const vae_model *m, int B, int h, int w);
size_t vae_arena_bytes(const vae_model *m, int B, int H, int W);

/* image (B, C_in, H, W) in [-1, 1] -> mean_out (B, L, H/f, W/f), unscaled;
 * H and W multiples of f = vae_downscale(). */
int vae_encode_mean(const vae_model *m, arena *a, const float *image, int B, int H, int W,
                    float *mean_out, oir_error *err);
/* latent (B, L, h, w), unscaled -> image_out (B, C_out, h*f, w*f), about [-1, 1]. */
int vae_decode(const vae_model *m, arena *a, const float *latent, int B, int h, int w,
               float *image_out, oir_error *err);

/* Same, calling tap (may be NULL) with intermediates named as the fixtures
 * name them: "encoder.conv_in", "encoder.down.<i>", "encoder.mid",
 * "encoder.conv_out" (the moments before quant_conv); "post_quant_conv",
 * "decoder.conv_in", "decoder.mid", "decoder.up.<i>". */
typedef sd_tap vae_tap;
int vae_encode_mean_tap(const vae_model *m, arena *a, const float *image, int B, int H, int W,
                        float *mean_out, const vae_tap *tap, oir_error *err);
int vae_decode_tap(const vae_model *m, arena *a, const float *latent, int B, int h, int w,
                   float *image_out, const vae_tap *tap, oir_error *err);

#endif
