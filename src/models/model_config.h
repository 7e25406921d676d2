/* model_config: typed reads of a diffusers config.json (cJSON underneath).
 *
 * Every getter treats an absent key or a JSON null as "use the default" and
 * fails with OIR_E_FORMAT naming `where` (the file) and the key when the
 * value has the wrong type, e.g.
 *   "unet/config.json: layers_per_block: expected an integer, got \"two\"".
 * Strings returned point into the parsed document (valid until
 * model_config_free).
 */
#ifndef OIR_MODELS_MODEL_CONFIG_H
#define OIR_MODELS_MODEL_CONFIG_H

#include <cjson/cJSON.h>

#include "core/error.h"

/* ---- limits on config values -------------------------------------------
 * Every size a model config gives (or, for a single-file checkpoint, a
 * tensor shape stands for) is checked against these before anything is
 * allocated or looped over, and errors name the field. They keep all size
 * arithmetic far inside 64 bits (and per-tensor counts inside 2^31), and a
 * hostile config from asking for 1e7 layers or 1e9 channels. Real models pass
 * comfortably: SD 1.x/2.x and SDXL UNets have <= 1280 channels, SDXL's
 * cross-attention is 2048 wide, its time embedding 1280; CLIP ViT-bigG/14
 * has 1664 hidden / 8192 intermediate / 48 layers / 16 heads (vision), 1280
 * (text) and a 1280 projection; vocabularies run from 49408 (CLIP) to
 * 250002 (XLM-R); text encoders have 77 positions; latents 4 channels (16 for
 * SD 3), inpainting UNets 9 input channels. */
#define CFG_MAX_WIDTH 8192          /* channels, hidden_size, cross_attention_dim,
                                       projection_dim, time_embedding_dim, norm groups */
#define CFG_MAX_INTERMEDIATE 65536  /* intermediate_size (MLP width) */
#define CFG_MAX_LAYERS 256          /* num_hidden_layers */
#define CFG_MAX_HEADS 1024          /* num_attention_heads, UNet attention_head_dim */
#define CFG_MAX_VOCAB (1 << 20)     /* vocab_size */
#define CFG_MAX_POSITIONS 8192      /* max_position_embeddings */
#define CFG_MAX_IMAGE_CHANNELS 64   /* in/out/latent channels, num_channels */
#define CFG_MAX_KERNEL 15           /* conv_in_kernel, conv_out_kernel */
#define CFG_MAX_IMAGE_SIZE 16384    /* pixels a side: image_size, sample_size x VAE
                                       factor, preprocessing sizes (= IMAGE_MAX_SIDE) */
#define CFG_MAX_PATCH_GRID 128      /* ViT patches a side: image_size / patch_size */
#define CFG_MAX_FACTOR 1e6          /* |float factors|: scaling_factor, freq_shift, ... */

/* OIR_E_FORMAT "<where>: <field> = <v>, expected 1 to <max>" unless
 * 1 <= v <= max. */
int model_config_check_size(const char *where, const char *field, long long v, long long max,
                            oir_error *err);
/* OIR_E_FORMAT naming the field unless v is finite as a float and
 * lo < v <= hi (lo_inclusive: lo <= v). */
int model_config_check_float(const char *where, const char *field, double v, double lo,
                             int lo_inclusive, double hi, oir_error *err);

typedef struct {
    cJSON *root;     /* the parsed object */
    int owned;       /* model_config_free deletes root */
    char where[512]; /* file path, for messages */
} model_config;

/* Reads and parses a JSON object from path (OIR_E_IO / OIR_E_FORMAT), through
 * io/json.h: a regular file under 16 MiB, no duplicate keys, finite numbers. */
int model_config_read(model_config *c, const char *path, oir_error *err);
/* Wraps an already-parsed object (not owned: model_config_free leaves it). */
void model_config_wrap(model_config *c, cJSON *root, const char *where);
void model_config_free(model_config *c);

/* 1 when key is present and not null. */
int model_config_has(const model_config *c, const char *key);

int model_config_int(const model_config *c, const char *key, int def, int *out, oir_error *err);
/* A number finite as a float (1e300 is refused, naming the key). */
int model_config_float(const model_config *c, const char *key, float def, float *out,
                       oir_error *err);
int model_config_bool(const model_config *c, const char *key, int def, int *out, oir_error *err);
/* *out = def when absent or null. */
int model_config_str(const model_config *c, const char *key, const char *def, const char **out,
                     oir_error *err);

/* An integer or a list of integers (at most max): *n = list length, or 1 for
 * a scalar with *is_list = 0. Absent: *n = 0. */
int model_config_ints(const model_config *c, const char *key, int *out, int max, int *n,
                      int *is_list, oir_error *err);
/* A list of strings (at most max), or null entries as NULL. Absent: *n = 0. */
int model_config_strs(const model_config *c, const char *key, const char **out, int max, int *n,
                      oir_error *err);
/* A bool or a list of bools: *any_true = 1 if any value is true. */
int model_config_any_true(const model_config *c, const char *key, int *any_true, oir_error *err);

/* Guards for features a model does not implement: OIR_E_UNSUPPORTED naming
 * the key and its value unless it is absent/null (require_null), absent or
 * false (or a list of falses) (require_false), absent or equal to `value`
 * (require_str). */
int model_config_require_null(const model_config *c, const char *key, oir_error *err);
int model_config_require_false(const model_config *c, const char *key, oir_error *err);
int model_config_require_str(const model_config *c, const char *key, const char *value,
                             oir_error *err);

#endif
