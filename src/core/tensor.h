/* Tensors: a dtype, a shape in PyTorch order (N, C, H, W) and a data pointer.
 * Activations are float32. Weights may stay F16/BF16 inside a mmapped file;
 * tensor_to_f32 converts them when a kernel needs float32. */
#ifndef OIR_CORE_TENSOR_H
#define OIR_CORE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define TENSOR_MAX_DIMS 8

typedef enum {
    DT_F32 = 0,
    DT_F16,
    DT_BF16,
    DT_F64,
    DT_I64,
    DT_I32,
    DT_I16,
    DT_I8,
    DT_U8,
    DT_BOOL,
    DT_COUNT
} dtype;

typedef struct {
    dtype type;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    void *data;      /* not owned unless `owned` */
    int owned;       /* data was malloc'd by tensor_alloc */
} tensor;

size_t dtype_size(dtype t);
const char *dtype_name(dtype t);            /* safetensors spelling: "F32", "BF16", ... */
int dtype_from_name(const char *name, dtype *out); /* 0 on success, -1 if unknown */

/* Element count; 0 when any dimension is 0 (whatever the others are), -1 when
 * a dimension is negative or the product overflows int64. */
int64_t tensor_numel(const tensor *t);
/* Byte size; SIZE_MAX when tensor_numel is -1 or the bytes overflow size_t. */
size_t tensor_nbytes(const tensor *t);
/* "[2, 4, 8, 8]" into buf. */
const char *tensor_shape_str(const tensor *t, char *buf, size_t cap);
int tensor_shape_eq(const tensor *t, int ndim, const int64_t *shape);

/* Allocates an owned, zeroed tensor (OIR_E_NOMEM for sizes that overflow). */
int tensor_alloc(tensor *t, dtype type, int ndim, const int64_t *shape, oir_error *err);
void tensor_free(tensor *t);

/* Element conversions. */
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);

/* Converts n elements of any float dtype (F32/F16/BF16/F64) to float32. */
int convert_to_f32(float *dst, const void *src, dtype type, size_t n, oir_error *err);

#endif
