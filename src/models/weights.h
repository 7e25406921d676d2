/* Weights: the tensors of one model component, looked up by their diffusers
 * name ("down_blocks.0.resnets.0.conv1.weight"), whatever file layout they
 * came from (diffusers folder, fp16 variant, single-file LDM checkpoint).
 *
 * Model builders call weights_get for every parameter they need; problems
 * (missing, wrong shape, unconvertible dtype) are collected, not fatal one by
 * one, so weights_finish can name them all at once. F32 tensors point into
 * the read-only mapping; F16/BF16 are converted once into owned buffers. */
#ifndef OIR_MODELS_WEIGHTS_H
#define OIR_MODELS_WEIGHTS_H

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

/* float32 data of the named parameter, checked against the expected shape
 * (ndim dims). Returns NULL (and records the problem) when missing or
 * mis-shaped. */
const float *weights_get(weights *w, const char *name, int ndim, const int64_t *shape);
/* Same, with the shape given inline: weights_get_shape(w, name, 2, 320, 1280). */
const float *weights_getv(weights *w, const char *name, int ndim, ...);
/* 1 if the tensor exists (after mapping), without recording a problem. */
int weights_has(weights *w, const char *name);

/* After building: OIR_E_MISSING / OIR_E_SHAPE naming every problem (first
 * few by name, then a count), else OIR_OK. Unused tensors of the component
 * are listed by weights_unused (not an error: checkpoints carry extras). */
int weights_finish(weights *w, oir_error *err);
int weights_unused_count(const weights *w);
const char *weights_unused_at(const weights *w, int i);

#endif
