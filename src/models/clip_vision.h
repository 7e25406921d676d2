/* CLIP vision transformer (transformers 4.26.1 CLIPVisionModel / the vision
 * tower of CLIPModel), the masked attention of DESIGN.md §2.4, CLIP image
 * preprocessing (CLIPImageProcessor) and the cosine used by the scorer.
 *
 * Usage (the scorer, from a Hugging Face CLIP folder):
 *
 *     clip_vision_config vc;  clip_vision_model *vm;
 *     clip_vision_config_load(&vc, "clip/config.json", &err);
 *     clip_vision_load(&vm, &vc, w, 1, &err);         // w over clip/model.safetensors
 *     clip_preprocess_config pc;
 *     clip_preprocess_config_load(&pc, "clip/preprocessor_config.json", &err);
 *     clip_preprocess(&pc, &img, pixels, &err);       // (3, S, S)
 *     clip_patch_mask(patch_mask, mask.data, mask.height, mask.width, &pc, grid, &err);
 *     clip_vision_forward(vm, &a, pixels, 1, S, S, patch_mask, NULL, NULL, image_embeds, &err);
 *     score = clip_cosine(image_embeds, text_embeds, P);
 *
 * Parameters by Hugging Face name: "vision_model.embeddings.class_embedding",
 * "vision_model.embeddings.patch_embedding.weight", ...,
 * "vision_model.pre_layrnorm.*" (the attribute really is spelled so),
 * "vision_model.post_layernorm.*", and "visual_projection.weight" when
 * with_projection. Every LayerNorm uses eps 1e-5 as in 4.26.1 (see
 * clip_text.h). The forward runs on the model's backend (clip_vision_bind;
 * the CPU by default), one at a time per model; the patches and the key mask
 * are gathered on the host and uploaded.
 */
#ifndef OIR_MODELS_CLIP_VISION_H
#define OIR_MODELS_CLIP_VISION_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/arena.h"
#include "core/error.h"
#include "io/image.h"
#include "models/clip_text.h"
#include "models/weights.h"

typedef struct {
    int hidden_size;         /* D: 768 (ViT-B) */
    int num_hidden_layers;   /* L */
    int num_attention_heads; /* D % heads == 0 */
    int intermediate_size;   /* I */
    int image_size;          /* S: 224; S % patch_size == 0 */
    int patch_size;          /* p: 16 (ViT-B/16), 32 */
    int num_channels;        /* 3 */
    int projection_dim;      /* P: rows of visual_projection.weight (P, D) */
    float layer_norm_eps;    /* read, not used (4.26.1 uses 1e-5) */
    clip_act hidden_act;
} clip_vision_config;

/* transformers' CLIPVisionConfig defaults (ViT-B/32). */
clip_vision_config clip_vision_config_default(void);
/* From a CLIPVisionConfig (fields on top) or a CLIPConfig ("vision_config",
 * projection_dim from the top level as CLIPModel does). Errors name `where`
 * and the field, e.g. image_size not divisible by patch_size. */
int clip_vision_config_from_json(clip_vision_config *cfg, const cJSON *root, const char *where,
                                 oir_error *err);
int clip_vision_config_load(clip_vision_config *cfg, const char *config_path, oir_error *err);
int clip_vision_config_check(const clip_vision_config *cfg, const char *where, oir_error *err);

typedef struct clip_vision_model clip_vision_model;

int clip_vision_load(clip_vision_model **out, const clip_vision_config *cfg, weights *w,
                     int with_projection, oir_error *err);
void clip_vision_free(clip_vision_model *m);
const clip_vision_config *clip_vision_get_config(const clip_vision_model *m);
/* The backend the forwards run on, as clip_text_bind (models/clip_text.h). */
int clip_vision_bind(clip_vision_model *m, oir_backend *be, oir_error *err);
const char *clip_vision_backend_name(const clip_vision_model *m);
oir_backend *clip_vision_backend(const clip_vision_model *m);
/* Patches per side: image_size / patch_size (14 for ViT-B/16 at 224). */
int clip_vision_grid(const clip_vision_config *cfg);

/* Arena bytes for a forward of B images; a smaller arena (down to B = 1)
 * runs the batch in chunks with the same results. */
size_t clip_vision_arena_bytes(const clip_vision_config *cfg, int B);

/* Forward pass. pixel_values (B, C, H, W) with H == W == image_size.
 * patch_mask: NULL, or (B, G*G) bytes in row-major patch order, non-zero =
 *   patch inside the object. Then every query (the class token and every
 *   patch) attends only to the class token and the inside patches — the
 *   class token is always visible, so an all-zero mask leaves each token
 *   attending to the class token alone.
 * Outputs, each optional (NULL):
 *   last_hidden  (B, 1+G*G, D) the encoder output (before post_layernorm)
 *   pooled       (B, D) post_layernorm(last_hidden[:, 0])
 *   image_embeds (B, P) pooled @ visual_projection^T (not normalised);
 *                needs a model loaded with_projection. */
int clip_vision_forward(const clip_vision_model *m, arena *a, const float *pixel_values, int B,
                        int H, int W, const uint8_t *patch_mask, float *last_hidden,
                        float *pooled, float *image_embeds, oir_error *err);

/* ---- preprocessing (CLIPImageProcessor, transformers 4.26.1) ------------- */

typedef struct {
    int do_resize;       /* resize the shortest side to shortest_edge */
    int shortest_edge;   /* size.shortest_edge: 224 */
    int do_center_crop;
    int crop_height;     /* crop_size: 224 x 224 */
    int crop_width;
    int do_rescale;
    double rescale_factor; /* 1/255 */
    int do_normalize;
    float image_mean[3]; /* OpenAI CLIP's by default */
    float image_std[3];
} clip_preprocess_config;

/* CLIPImageProcessor's defaults: shortest edge 224, center crop 224x224,
 * rescale 1/255, normalise with [0.48145466, 0.4578275, 0.40821073] /
 * [0.26862954, 0.26130258, 0.27577711]. */
clip_preprocess_config clip_preprocess_config_default(void);
/* Reads preprocessor_config.json: size ({"shortest_edge": n} or n), crop_size
 * ({"height", "width"} or n), do_resize, do_center_crop, do_rescale,
 * rescale_factor, do_normalize, image_mean, image_std, resample (only 3,
 * bicubic, is supported). Unknown fields are ignored. */
int clip_preprocess_config_load(clip_preprocess_config *pc, const char *path, oir_error *err);
/* Output size of clip_preprocess for an H x W input. */
void clip_preprocess_size(const clip_preprocess_config *pc, int H, int W, int *out_h,
                          int *out_w);

/* CLIPImageProcessor.preprocess for one RGB image (3 channels, values k/255
 * as image.h decodes them): resize the shortest side to shortest_edge with
 * Pillow BICUBIC (the long side to int(shortest_edge * long / short)),
 * center crop (top = (h - crop_h) / 2, floor), x = float32(k * rescale),
 * (x - mean) / std in float32 -> pixel_values (3, out_h, out_w).
 * A crop larger than the resized image (which transformers pads, with an
 * off-by-one) is refused with OIR_E_UNSUPPORTED. */
int clip_preprocess(const clip_preprocess_config *pc, const image *img, float *pixel_values,
                    oir_error *err);

/* Object mask -> patch mask for clip_vision_forward, following the image
 * through clip_preprocess's geometry (resize, center crop).
 *   mask        (H, W) floats as image.h's masks (object where > 0.5), at
 *               the resolution of the image given to clip_preprocess;
 *   patch_mask  (grid, grid) bytes, 1 = inside.
 * Each cell takes the mask value at one source pixel, chosen as torch's
 * F.interpolate(mode="nearest") does (and image.h's mask_resize_nearest):
 * over the crop window [y0, y0 + h_win) x [x0, x0 + w_win) of the original
 * image, src_y = min(floor(y0 + i * (float)(h_win / grid)), H - 1), same
 * for x; the cell is inside when that value > 0.5. For a square image whose
 * crop is the whole resized image this is exactly
 * mask_resize_nearest(mask, grid, grid). */
int clip_patch_mask(uint8_t *patch_mask, const float *mask, int H, int W,
                    const clip_preprocess_config *pc, int grid, oir_error *err);

/* ---- scorer ------------------------------------------------------------- */

/* Cosine similarity a.b / (|a| |b|), accumulated in double; 0 when either
 * vector is all zeros. */
float clip_cosine(const float *a, const float *b, int n);

#endif
