#include "core/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} dtype_info[DT_COUNT] = {
    [DT_F32] = {"F32", 4}, [DT_F16] = {"F16", 2}, [DT_BF16] = {"BF16", 2},
    [DT_F64] = {"F64", 8}, [DT_I64] = {"I64", 8}, [DT_I32] = {"I32", 4},
    [DT_I16] = {"I16", 2}, [DT_I8] = {"I8", 1},   [DT_U8] = {"U8", 1},
    [DT_BOOL] = {"BOOL", 1},
};

size_t dtype_size(dtype t) { return (unsigned)t < DT_COUNT ? dtype_info[t].size : 0; }
const char *dtype_name(dtype t) { return (unsigned)t < DT_COUNT ? dtype_info[t].name : "?"; }

int dtype_from_name(const char *name, dtype *out) {
    for (int i = 0; i < DT_COUNT; i++)
        if (strcmp(name, dtype_info[i].name) == 0) {
            *out = (dtype)i;
            return 0;
        }
    return -1;
}

int64_t tensor_numel(const tensor *t) {
    /* A zero dimension makes the count 0 whatever the others are, so look
     * for one first: [2^31, 2^32, 0] is 0, not a signed overflow. */
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0) return -1;
        if (t->shape[i] == 0) return 0;
    }
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        if (__builtin_mul_overflow(n, t->shape[i], &n)) return -1;
    return n;
}

size_t tensor_nbytes(const tensor *t) {
    int64_t n = tensor_numel(t);
    size_t bytes;
    if (n < 0 || (uint64_t)n > SIZE_MAX || __builtin_mul_overflow((size_t)n, dtype_size(t->type), &bytes))
        return SIZE_MAX;
    return bytes;
}

const char *tensor_shape_str(const tensor *t, char *buf, size_t cap) {
    size_t used = 0;
    used += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < t->ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
    return buf;
}

int tensor_shape_eq(const tensor *t, int ndim, const int64_t *shape) {
    if (t->ndim != ndim) return 0;
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] != shape[i]) return 0;
    return 1;
}

int tensor_alloc(tensor *t, dtype type, int ndim, const int64_t *shape, oir_error *err) {
    memset(t, 0, sizeof *t);
    if (ndim < 0 || ndim > TENSOR_MAX_DIMS)
        return oir_fail(err, OIR_E_ARG, "tensor_alloc: %d dimensions (max %d)", ndim, TENSOR_MAX_DIMS);
    t->type = type;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return oir_fail(err, OIR_E_ARG, "tensor_alloc: negative dimension");
        t->shape[i] = shape[i];
    }
    size_t n = tensor_nbytes(t);
    if (n == SIZE_MAX) {
        char buf[160];
        int rc = oir_fail(err, OIR_E_NOMEM, "tensor_alloc: shape %s of %s does not fit in memory",
                          tensor_shape_str(t, buf, sizeof buf), dtype_name(type));
        memset(t, 0, sizeof *t);
        return rc;
    }
    t->data = calloc(n ? n : 1, 1);
    if (!t->data) return oir_fail(err, OIR_E_NOMEM, "tensor_alloc: cannot allocate %zu bytes", n);
    t->owned = 1;
    return OIR_OK;
}

void tensor_free(tensor *t) {
    if (t && t->owned) free(t->data);
    if (t) memset(t, 0, sizeof *t);
}

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) {
                mant <<= 1;
                exp--;
            }
            bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t mant = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        mant |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)exp << 10) | (mant >> 13), rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* round to nearest even */
    return (uint16_t)half;
}

float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

int convert_to_f32(float *dst, const void *src, dtype type, size_t n, oir_error *err) {
    switch (type) {
    case DT_F32: memcpy(dst, src, n * 4); return OIR_OK;
    case DT_F16: {
        const uint8_t *p = src;
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = f16_to_f32(h);
        }
        return OIR_OK;
    }
    case DT_BF16: {
        const uint8_t *p = src;
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = bf16_to_f32(h);
        }
        return OIR_OK;
    }
    case DT_F64: {
        const uint8_t *p = src;
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            dst[i] = (float)d;
        }
        return OIR_OK;
    }
    default:
        return oir_fail(err, OIR_E_FORMAT, "cannot convert dtype %s to F32", dtype_name(type));
    }
}
