/* CLIP text transformer (transformers 4.26.1 CLIPTextModel / the text tower
 * of CLIPModel), in parity with PyTorch.
 *
 * Usage (SD text encoder from a diffusers folder):
 *
 *     clip_text_config cfg;
 *     clip_text_model *m = NULL;
 *     st_file *f; weights *w;                        // text_encoder/model.safetensors
 *     st_open(&f, path, &err);
 *     weights_from_file(&w, f, "text_encoder", "", NULL, &err);
 *     clip_text_config_load(&cfg, "text_encoder/config.json", &err);
 *     clip_text_load(&m, &cfg, w, 0, &err);          // 1: also text_projection.weight
 *     weights_finish(w, &err);                        // names every missing tensor
 *     arena a; arena_init(&a, clip_text_arena_bytes(&cfg, B, 77), &err);
 *     clip_text_forward(m, &a, ids, B, 77, last_hidden, pooled, NULL, &err);
 *
 * Parameters are looked up by their Hugging Face names, always starting with
 * "text_model." ("text_model.encoder.layers.0.self_attn.q_proj.weight"), plus
 * "text_projection.weight" when with_projection. A single-file checkpoint
 * maps these names through its weights_name_map; a CLIPModel file carries
 * them as is. The model points into the weights (which must outlive it).
 *
 * The forward runs on the model's backend (clip_text_bind; the CPU by
 * default), as the UNet's: on the CPU backend bit-identical to the op_*
 * kernels called directly. Threads: one forward at a time per model (a
 * backend is used by one thread at a time).
 *
 * Parity notes (transformers 4.26.1):
 * - every LayerNorm uses eps 1e-5: 4.26.1 builds them as nn.LayerNorm(dim)
 *   and ignores config.layer_norm_eps (which is read, kept and checked > 0,
 *   but not used; every released CLIP config has 1e-5 anyway);
 * - the pooled output is the final-layer-normed hidden state at
 *   argmax(input_ids) of each row, the first such position on ties (the end
 *   token is the highest id in CLIP's vocabulary);
 * - the causal mask lets position i see positions <= i.
 */
#ifndef OIR_MODELS_CLIP_TEXT_H
#define OIR_MODELS_CLIP_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/backend.h"
#include "models/sd_blocks.h"
#include "models/weights.h"

/* config.json "hidden_act". */
typedef enum { CLIP_ACT_QUICK_GELU = 0, CLIP_ACT_GELU = 1 } clip_act;

typedef struct {
    int vocab_size;              /* 49408 */
    int hidden_size;             /* D: 512 (CLIP B), 768 (SD 1.x) */
    int num_hidden_layers;       /* L */
    int num_attention_heads;     /* D % heads == 0 */
    int intermediate_size;       /* I: MLP width */
    int max_position_embeddings; /* 77 */
    int projection_dim;          /* P: rows of text_projection.weight (P, D) */
    float layer_norm_eps;        /* read, not used: see parity notes above */
    clip_act hidden_act;         /* quick_gelu (CLIP) or gelu (erf form) */
} clip_text_config;

/* transformers' CLIPTextConfig defaults (CLIP ViT-B text tower). */
clip_text_config clip_text_config_default(void);
/* The SD 1.x text encoder (OpenAI CLIP ViT-L/14 text tower): D 768, 12
 * layers, 12 heads, I 3072, 77 positions, quick_gelu, P 768. For
 * single-file checkpoints, which carry no config.json. */
clip_text_config clip_text_config_sd1(void);

/* Fills cfg from a parsed config.json: either a CLIPTextConfig (fields at
 * the top level) or a CLIPConfig (fields under "text_config", and
 * projection_dim taken from the top level as CLIPModel does). Absent fields
 * keep transformers' defaults; wrong types, non-positive sizes, an unknown
 * hidden_act or hidden_size % num_attention_heads != 0 fail with
 * OIR_E_FORMAT naming `where` (the file) and the field. */
int clip_text_config_from_json(clip_text_config *cfg, const cJSON *root, const char *where,
                               oir_error *err);
/* Same, reading config.json from a path. */
int clip_text_config_load(clip_text_config *cfg, const char *config_path, oir_error *err);
/* Checks a config (sizes positive, D divisible by heads); names the field. */
int clip_text_config_check(const clip_text_config *cfg, const char *where, oir_error *err);

typedef struct clip_text_model clip_text_model;

/* Builds the model from w: fetches every parameter by name and shape. On a
 * missing or mis-shaped tensor returns OIR_E_MISSING / OIR_E_SHAPE with the
 * problems named (from weights_finish); the caller still calls
 * weights_finish after loading every component that shares w.
 * with_projection: also load text_projection.weight (P, D) so that
 * clip_text_forward can produce text_embeds. */
int clip_text_load(clip_text_model **out, const clip_text_config *cfg, weights *w,
                   int with_projection, oir_error *err);
void clip_text_free(clip_text_model *m);
const clip_text_config *clip_text_get_config(const clip_text_model *m);
/* The backend the forwards run on, as unet_bind (models/unet.h): a loaded
 * model runs on a CPU backend of its own (weights wrapped: zero-copy);
 * clip_text_bind moves it onto `be` (NULL: a CPU backend of its own again),
 * uploading the weights once (the token embedding table stays on the host:
 * the embeddings are gathered there and uploaded). `be` must outlive the
 * model or its next bind. On failure the model is back on a CPU backend of
 * its own and the error says why. */
int clip_text_bind(clip_text_model *m, oir_backend *be, oir_error *err);
const char *clip_text_backend_name(const clip_text_model *m);
oir_backend *clip_text_backend(const clip_text_model *m);

/* Arena bytes for one forward of B rows of T tokens. A smaller arena also
 * works, down to clip_text_arena_bytes(cfg, 1, T): the batch is then run in
 * chunks of as many rows as fit, with the same results. */
size_t clip_text_arena_bytes(const clip_text_config *cfg, int B, int T);

/* Forward pass.
 *   ids          (B, T) token ids, 0 <= id < vocab_size, T <= max_position_embeddings
 *   last_hidden  (B, T, D) after final_layer_norm, or NULL
 *   pooled       (B, D) pooler_output, or NULL
 *   text_embeds  (B, P) = pooled @ text_projection^T (not normalised), or NULL;
 *                needs a model loaded with_projection
 * The arena is used above its current mark and reset to it on return. */
int clip_text_forward(const clip_text_model *m, arena *a, const int32_t *ids, int B, int T,
                      float *last_hidden, float *pooled, float *text_embeds, oir_error *err);
/* Same, also writing transformers' output_hidden_states:
 *   hidden_states (L+1, B, T, D): [0] the embeddings, [l] the output of layer
 *   l-1, [L] the last layer's output before final_layer_norm; or NULL. */
int clip_text_forward_hidden(const clip_text_model *m, arena *a, const int32_t *ids, int B,
                             int T, float *last_hidden, float *pooled, float *text_embeds,
                             float *hidden_states, oir_error *err);

/* ---- pieces shared with clip_vision ------------------------------------- */

/* One CLIPEncoderLayer: pointers into the weights, views on the backend. */
typedef struct {
    sd_norm ln1;          /* (D) layer_norm1 */
    sd_linear q, k, v, o; /* (D, D), (D) self_attn.{q,k,v,out}_proj */
    sd_norm ln2;          /* (D) layer_norm2 */
    sd_linear fc1;        /* (I, D), (I) mlp.fc1 */
    sd_linear fc2;        /* (D, I), (D) mlp.fc2 */
} clip_layer;

/* Fetches "<prefix>layer_norm1.weight" ... "<prefix>mlp.fc2.bias"; returns 1
 * when every tensor was found with its shape. */
int clip_layer_get(clip_layer *l, weights *w, const char *prefix, int D, int I);
/* Fetches name with the given shape (ndim <= 4, dims as ints). */
const float *clip_weight(weights *w, const char *name, int ndim, int d0, int d1, int d2, int d3);

/* Its weights onto a backend (sd_bind_*). */
void clip_layer_bind(sd_binder *b, clip_layer *l);
/* Scratch floats of clip_layer_forward for n = B*T tokens (the attention
 * scratch included, which the backend now owns: the arena plans and the
 * chunking stay what they were). */
size_t clip_layer_scratch(int B, int T, int D, int I, int heads);
/* x (B, T, D) <- CLIPEncoderLayer(x), in place, queued on be. key_mask
 * (B, T) bytes or BE_NONE, causal as be_attention. scratch:
 * clip_layer_scratch() floats on be. */
void clip_layer_forward(oir_backend *be, const clip_layer *l, be_view x, int B, int T, int D, int I, int heads,
                        clip_act act, be_view key_mask, int causal, be_view scratch);

/* Reads and parses a JSON file (OIR_E_IO / OIR_E_FORMAT naming the path);
 * the caller frees *out with cJSON_Delete. */
int clip_json_read(cJSON **out, const char *path, oir_error *err);
/* One tower's fields: root[key] of a CLIPConfig (projection_dim read from the
 * top level) or root itself; sub names it in messages. */
int clip_json_tower(const cJSON *root, const char *key, const char *where, const cJSON **obj,
                    char *sub, size_t cap, int *projection_dim, oir_error *err);
/* Optional positive int field: keeps *v when absent; OIR_E_FORMAT naming
 * where and field when not a positive integer. */
int clip_json_int(const cJSON *obj, const char *field, int *v, const char *where,
                  oir_error *err);
/* Optional positive number field, as clip_json_int. */
int clip_json_float(const cJSON *obj, const char *field, float *v, const char *where,
                    oir_error *err);
/* Optional "hidden_act" field: "quick_gelu" or "gelu". */
int clip_json_act(const cJSON *obj, clip_act *act, const char *where, oir_error *err);

/* The eps every CLIP LayerNorm uses in transformers 4.26.1. */
#define CLIP_LN_EPS 1e-5f

#endif
