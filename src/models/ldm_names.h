/* ldm_names: diffusers parameter names -> names in an original single-file
 * Stable Diffusion 1.x checkpoint (CompVis LDM layout), as data and rules.
 *
 *   unet          "down_blocks.0.resnets.0.conv1.weight"
 *              -> "model.diffusion_model." "input_blocks.1.0.in_layers.2.weight"
 *   vae           "decoder.up_blocks.0.upsamplers.0.conv.weight"
 *              -> "first_stage_model." "decoder.up.3.upsample.conv.weight"
 *   text_encoder  "text_model.encoder.layers.0.mlp.fc1.weight"
 *              -> "cond_stage_model.transformer." "text_model.encoder.layers.0.mlp.fc1.weight"
 *
 * Fixed renames (resnet sub-layers, top-level layers, VAE attention) are
 * tables; block indices follow from the layout (layers per block, number of
 * blocks, which up blocks carry attention), which the caller takes from the
 * component's config. ldm_map_name plugs into weights_opts.map with an
 * ldm_layout as context; the prefix goes into weights_opts.prefix.
 *
 * The mapping is the inverse of diffusers 0.16.1's
 * convert_from_ckpt.convert_ldm_{unet,vae,clip}_checkpoint. */
#ifndef OIR_MODELS_LDM_NAMES_H
#define OIR_MODELS_LDM_NAMES_H

#include <stddef.h>

#include "io/safetensors.h"

typedef enum { LDM_UNET = 0, LDM_VAE, LDM_TEXT } ldm_component;

#define LDM_MAX_BLOCKS 8

typedef struct {
    ldm_component component;
    /* UNet: resnets per down block (the up blocks have one more); layers[i]
     * overrides it for down block i when non-zero (a per-block list). */
    int layers_per_block;
    int layers[LDM_MAX_BLOCKS];
    /* UNet: down blocks (= up blocks); VAE: encoder down blocks (= decoder up blocks). */
    int num_blocks;
    /* UNet: up block i is a CrossAttnUpBlock2D (its upsampler sits at
     * output_blocks.k.2 instead of .1). */
    unsigned char up_has_attn[LDM_MAX_BLOCKS];
    /* Text encoder keys without "text_model." (checkpoints saved with an old
     * transformers: cond_stage_model.transformer.encoder.layers...). */
    int text_legacy;
} ldm_layout;

/* "model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer.". */
const char *ldm_prefix(ldm_component c);

/* The checkpoint's name (without the prefix) for a diffusers name, written
 * into buf; NULL when the name has no counterpart (unknown pattern, block
 * index outside the layout, or buf too small). ctx is a const ldm_layout *.
 * Signature of weights_map_fn. */
const char *ldm_map_name(const void *ctx, const char *diffusers_name, char *buf, size_t cap);

/* weights_opts.reshape_ok for the VAE: the mid-block attention projections
 * (query/key/value/proj_attn, or to_q/to_k/to_v/to_out.0) are 1x1
 * convolutions (C, C, 1, 1) in LDM checkpoints and Linear (C, C) in
 * diffusers; the data is the same. */
int ldm_vae_reshape_ok(const char *diffusers_name);

/* What a single-file checkpoint is, from its keys. */
typedef enum {
    LDM_ARCH_UNKNOWN = 0, /* no model.diffusion_model.* keys */
    LDM_ARCH_SD1,         /* CLIP ViT-L text encoder (cond_stage_model.transformer.*) */
    LDM_ARCH_SD2,         /* OpenCLIP text encoder (cond_stage_model.model.*) */
    LDM_ARCH_SDXL,        /* conditioner.embedders.* / label_emb */
    LDM_ARCH_OTHER        /* a UNet with some other conditioning (inpainting, depth, ...) */
} ldm_arch;

/* Classifies f by its keys and a few shapes; `why` receives a sentence on
 * what gave it away ("conditioner.embedders.* keys (SDXL's two text
 * encoders)"). */
ldm_arch ldm_detect(const st_file *f, char *why, size_t cap);
const char *ldm_arch_name(ldm_arch a);

#endif
