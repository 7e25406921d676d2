/* Weights: the tensors of one model component, looked up by their diffusers
 * name ("down_blocks.0.resnets.0.conv1.weight"), whatever file layout they
 * came from (diffusers folder, fp16 variant, sharded files, single-file LDM
 * checkpoint).
 *
 * Model builders call weights_get for every parameter they need; problems
 * (missing, wrong shape, unconvertible dtype) are collected, not fatal one by
 * one, so weights_finish can name them all at once. F32 tensors point into
 * the read-only mapping when 4-byte aligned (safetensors does not promise
 * alignment; unaligned ones are copied); F16/BF16/F64 are converted once into
 * owned buffers. Asking twice for a name returns the same pointer. Every
 * tensor is scanned once, when first resolved: NaN or inf values (any
 * dtype) are a problem (OIR_E_FORMAT, "tensor X holds 3 non-finite values
 * (first at index 7: nan)"), so bad weights fail the load instead of
 * running to a black image.
 *
 *     weights *w;
 *     weights_from_file(&w, f, "unet", "", NULL, &err);
 *     const float *k = weights_getv(w, "conv_in.weight", 4, 320, 4, 3, 3);
 *     ...
 *     if (weights_finish(w, &err)) ...   // "unet: tensor conv_in.weight has shape
 *                                        //  [320, 9, 3, 3], expected [320, 4, 3, 3]"
 *     for (int i = 0; i < weights_unused_count(w); i++) ... weights_unused_at(w, i)
 *
 * Not thread-safe: build models from one thread; the float pointers it
 * returns stay valid (and read-only) until weights_free. */
#ifndef OIR_MODELS_WEIGHTS_H
#define OIR_MODELS_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"
#include "io/safetensors.h"

typedef struct weights weights;

/* Maps a diffusers-style name to the file's own name (for single-file
 * checkpoints); writes into buf and returns buf, or NULL if no mapping. */
typedef const char *(*weights_name_map)(const char *diffusers_name, char *buf, size_t cap);

/* A component from one safetensors file. `prefix` is prepended to every
 * looked-up name after mapping (e.g. "" for a diffusers file,
 * "model.diffusion_model." with a map for an LDM checkpoint).
 * The weights take a reference to f; f must outlive them. */
int weights_from_file(weights **out, st_file *f, const char *component, const char *prefix,
                      weights_name_map map, oir_error *err);
void weights_free(weights *w);

/* ---- general form: several files (shards), a map with context ---------- */

/* Name map with a context (e.g. the block layout an LDM mapping needs). */
typedef const char *(*weights_map_fn)(const void *ctx, const char *diffusers_name, char *buf,
                                      size_t cap);

typedef struct {
    const char *component;  /* "unet", "vae", "text_encoder": starts every message */
    const char *prefix;     /* prepended after mapping; NULL = "" */
    weights_map_fn map;     /* NULL: names are used as they are */
    const void *map_ctx;    /* copied (map_ctx_size bytes), so it need not outlive the call */
    size_t map_ctx_size;
    /* Names for which a tensor may differ from the expected shape by
     * trailing 1-sized dims, (C, C) vs (C, C, 1, 1), same element count:
     * 1x1 convolutions stored where a Linear is expected or back (LDM VAE
     * attention). NULL: shapes must match exactly. */
    int (*reshape_ok)(const char *diffusers_name);
} weights_opts;

/* A component over nfiles files (the shards of one model, or one file).
 * Only tensors whose name starts with the prefix belong to the component. A
 * name present in two files is an error (OIR_E_FORMAT). The files must
 * outlive the weights. */
int weights_open(weights **out, st_file *const *files, int nfiles, const weights_opts *opts,
                 oir_error *err);

/* ---- lookup ------------------------------------------------------------- */

/* float32 data of the named parameter, checked against the expected shape
 * (ndim dims). Returns NULL (and records the problem) when missing or
 * mis-shaped. */
const float *weights_get(weights *w, const char *name, int ndim, const int64_t *shape);
/* Same, with the dims passed inline as ints: weights_getv(w, name, 2, 320, 1280). */
const float *weights_getv(weights *w, const char *name, int ndim, ...);
/* 1 if the tensor exists (after mapping), without recording a problem. */
int weights_has(const weights *w, const char *name);
/* The file's tensor (dtype, shape, raw data) for a diffusers name, or NULL;
 * records nothing and does not count the tensor as used. */
const tensor *weights_find(const weights *w, const char *name);
/* Marks a tensor the models never read (e.g. text_model.embeddings.position_ids,
 * a buffer) as expected, so it is not listed as unused. No-op when absent. */
void weights_ignore(weights *w, const char *name);

/* After building: OIR_E_MISSING / OIR_E_SHAPE / OIR_E_FORMAT (non-finite
 * values), in that order of precedence, naming the problems (first few by
 * name, then a count), else OIR_OK. Unused tensors of the component
 * are listed by weights_unused (not an error: checkpoints carry extras).
 * May be called more than once. */
int weights_finish(weights *w, oir_error *err);
int weights_unused_count(const weights *w);
/* i-th unused tensor, by its name in the file (prefix included), sorted. */
const char *weights_unused_at(const weights *w, int i);

/* The recorded problems, one message each (without the component): only
 * the first 32 are kept (a config asking for millions of tensors must not
 * fill memory with messages); every problem is counted by weights_finish
 * and weights_missing_count. */
int weights_problem_count(const weights *w);
const char *weights_problem_at(const weights *w, int i);
int weights_missing_count(const weights *w);

/* Tensors of the component in its files, and their element count. */
int weights_count(const weights *w);
int64_t weights_numel(const weights *w);
const char *weights_component(const weights *w);
/* Bytes of converted or copied data the weights own (F16 -> F32 etc.). */
size_t weights_owned_bytes(const weights *w);

#endif
