/* CPU kernels: matrix products, convolution, shape and elementwise ops,
 * timestep embedding. Norms and activations are in ops_norm.c, attention in
 * ops_attention.c. See ops.h for the contracts.
 *
 * Threading: BLAS is called only outside our OpenMP regions (threads.h), and
 * every OpenMP loop gives each thread whole output rows, so the bits of a
 * result do not depend on the thread count. */
#include "core/ops.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* ---- matrix products ---------------------------------------------------- */

void op_matmul(float *out, const float *a, const float *b, int M, int N, int K, int b_trans,
               float alpha, float beta) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* BLAS rejects K = 0 on some builds; the product is empty */
        for (size_t i = 0; i < (size_t)M * N; i++) out[i] = beta == 0.0f ? 0.0f : beta * out[i];
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, b_trans ? CblasTrans : CblasNoTrans, M, N, K, alpha,
                a, K, b, b_trans ? K : N, beta, out, N);
}

/* Fills each row of out (rows, n) with bias (n). */
static void fill_rows(float *out, const float *bias, int rows, int n) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) memcpy(out + (size_t)r * n, bias, (size_t)n * sizeof(float));
}

void op_linear(float *out, const float *in, const float *weight, const float *bias, int rows,
               int in_f, int out_f) {
    /* out (rows, out_f) = in (rows, in_f) @ weight (out_f, in_f)^T [+ bias] */
    if (bias) fill_rows(out, bias, rows, out_f);
    op_matmul(out, in, weight, rows, out_f, in_f, 1, 1.0f, bias ? 1.0f : 0.0f);
}

/* ---- convolution -------------------------------------------------------- */

/* im2col is done in bands of output rows so that the scratch stays bounded
 * (a full 3x3 im2col of a 512x512x128 VAE map would be 1.2 GB). A band of
 * CONV_BAND_FLOATS floats keeps sgemm's N in the thousands, where OpenBLAS
 * already runs at its full rate. */
#define CONV_BAND_FLOATS ((size_t)4 << 20)

static int conv_out_size(int n, int k, int stride, int pad) { return (n + 2 * pad - k) / stride + 1; }

static int conv_is_direct(int k, int stride, int pad) { return k == 1 && stride == 1 && pad == 0; }

/* Output rows per im2col band. */
static int conv_band_rows(int C_in, int H, int W, int k, int stride, int pad) {
    int Ho = conv_out_size(H, k, stride, pad), Wo = conv_out_size(W, k, stride, pad);
    size_t per_row = (size_t)C_in * k * k * Wo;
    size_t rows = per_row ? CONV_BAND_FLOATS / per_row : (size_t)Ho;
    if (rows < 1) rows = 1;
    if (rows > (size_t)Ho) rows = (size_t)Ho;
    return (int)rows;
}

size_t op_conv2d_scratch(int C_in, int H, int W, int k, int stride, int pad) {
    if (conv_is_direct(k, stride, pad)) return 0;
    int Wo = conv_out_size(W, k, stride, pad);
    return (size_t)C_in * k * k * Wo * conv_band_rows(C_in, H, W, k, stride, pad);
}

/* col (C_in*k*k, nrows*Wo) for output rows [oy0, oy0+nrows) of one image
 * x (C_in, H, W). Row (c, ki, kj) of col holds x[c, oy*s-p+ki, ox*s-p+kj]. */
static void im2col_band(float *col, const float *x, int C_in, int H, int W, int k, int s, int p,
                        int Wo, int oy0, int nrows) {
    int kk = k * k;
    size_t ncols = (size_t)nrows * Wo;
#pragma omp parallel for schedule(static)
    for (int row = 0; row < C_in * kk; row++) {
        int c = row / kk, ki = row % kk / k, kj = row % k;
        const float *xc = x + (size_t)c * H * W;
        float *dst = col + (size_t)row * ncols;
        /* valid ox: 0 <= ox*s - p + kj < W */
        int xa = p - kj > 0 ? (p - kj + s - 1) / s : 0;
        int xb = (W - 1 + p - kj) >= 0 ? (W - 1 + p - kj) / s + 1 : 0;
        if (xb > Wo) xb = Wo;
        if (xa > xb) xa = xb;
        for (int r = 0; r < nrows; r++) {
            float *d = dst + (size_t)r * Wo;
            int iy = (oy0 + r) * s - p + ki;
            if (iy < 0 || iy >= H) {
                memset(d, 0, (size_t)Wo * sizeof(float));
                continue;
            }
            const float *src = xc + (size_t)iy * W - p + kj;
            for (int ox = 0; ox < xa; ox++) d[ox] = 0.0f;
            if (s == 1) {
                memcpy(d + xa, src + xa, (size_t)(xb - xa) * sizeof(float));
            } else {
                for (int ox = xa; ox < xb; ox++) d[ox] = src[(size_t)ox * s];
            }
            for (int ox = xb; ox < Wo; ox++) d[ox] = 0.0f;
        }
    }
}

void op_conv2d(float *out, const float *in, const float *weight, const float *bias, int N,
               int C_in, int H, int W, int C_out, int k, int stride, int pad, float *scratch) {
    int Ho = conv_out_size(H, k, stride, pad), Wo = conv_out_size(W, k, stride, pad);
    size_t HWo = (size_t)Ho * Wo, K = (size_t)C_in * k * k;
    if (Ho <= 0 || Wo <= 0 || C_out <= 0) return;
    int band = conv_band_rows(C_in, H, W, k, stride, pad);
    for (int n = 0; n < N; n++) {
        const float *x = in + (size_t)n * C_in * H * W; /* (C_in, H, W) */
        float *y = out + (size_t)n * C_out * HWo;      /* (C_out, Ho, Wo) */
        if (bias) {
#pragma omp parallel for schedule(static)
            for (int co = 0; co < C_out; co++)
                for (size_t i = 0; i < HWo; i++) y[(size_t)co * HWo + i] = bias[co];
        }
        float beta = bias ? 1.0f : 0.0f;
        if (conv_is_direct(k, stride, pad)) {
            /* y (C_out, HW) = weight (C_out, C_in) @ x (C_in, HW) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, C_out, (int)HWo, C_in, 1.0f,
                        weight, C_in, x, (int)HWo, beta, y, (int)HWo);
            continue;
        }
        for (int oy0 = 0; oy0 < Ho; oy0 += band) {
            int nrows = Ho - oy0 < band ? Ho - oy0 : band;
            int ncols = nrows * Wo;
            im2col_band(scratch, x, C_in, H, W, k, stride, pad, Wo, oy0, nrows);
            /* y[:, band] (C_out, ncols) = weight (C_out, K) @ col (K, ncols) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, C_out, ncols, (int)K, 1.0f,
                        weight, (int)K, scratch, ncols, beta, y + (size_t)oy0 * Wo, (int)HWo);
        }
    }
}

/* ---- shape and elementwise ---------------------------------------------- */

void op_upsample_nearest2x(float *out, const float *in, int N, int C, int H, int W) {
    /* in (N, C, H, W) -> out (N, C, 2H, 2W) */
    long planes = (long)N * C;
#pragma omp parallel for schedule(static)
    for (long pc = 0; pc < planes; pc++) {
        const float *src = in + (size_t)pc * H * W;
        float *dst = out + (size_t)pc * 4 * H * W;
        for (int y = 0; y < H; y++) {
            float *d0 = dst + (size_t)(2 * y) * 2 * W;
            const float *s = src + (size_t)y * W;
            for (int x = 0; x < W; x++) {
                d0[2 * x] = s[x];
                d0[2 * x + 1] = s[x];
            }
            memcpy(d0 + 2 * W, d0, (size_t)2 * W * sizeof(float));
        }
    }
}

/* Elementwise loops split into fixed chunks so each thread owns whole chunks. */
#define EW_CHUNK 16384

void op_add(float *out, const float *a, const float *b, size_t n) {
    long nch = (long)((n + EW_CHUNK - 1) / EW_CHUNK);
#pragma omp parallel for schedule(static) if (nch > 1)
    for (long ch = 0; ch < nch; ch++) {
        size_t i0 = (size_t)ch * EW_CHUNK, i1 = i0 + EW_CHUNK < n ? i0 + EW_CHUNK : n;
        for (size_t i = i0; i < i1; i++) out[i] = a[i] + b[i];
    }
}

void op_mul(float *out, const float *a, const float *b, size_t n) {
    long nch = (long)((n + EW_CHUNK - 1) / EW_CHUNK);
#pragma omp parallel for schedule(static) if (nch > 1)
    for (long ch = 0; ch < nch; ch++) {
        size_t i0 = (size_t)ch * EW_CHUNK, i1 = i0 + EW_CHUNK < n ? i0 + EW_CHUNK : n;
        for (size_t i = i0; i < i1; i++) out[i] = a[i] * b[i];
    }
}

/* Non-finite: all exponent bits set (inf or NaN). Threads only for big
 * arrays: the load scans every weight tensor once, and a parallel region
 * per small tensor costs more than the scan (5x the tiny model's load time
 * on a busy machine). */
#define NF_CHUNK ((size_t)1 << 20)
size_t op_count_nonfinite(const float *x, size_t n) {
    long nch = (long)((n + NF_CHUNK - 1) / NF_CHUNK);
    size_t bad = 0;
#pragma omp parallel for schedule(static) reduction(+ : bad) if (nch > 4)
    for (long ch = 0; ch < nch; ch++) {
        size_t i0 = (size_t)ch * NF_CHUNK, i1 = i0 + NF_CHUNK < n ? i0 + NF_CHUNK : n, k = 0;
        for (size_t i = i0; i < i1; i++) {
            uint32_t u;
            memcpy(&u, x + i, 4);
            k += (u & 0x7f800000u) == 0x7f800000u;
        }
        bad += k;
    }
    return bad;
}

void op_scale(float *out, const float *a, float s, size_t n) {
    long nch = (long)((n + EW_CHUNK - 1) / EW_CHUNK);
#pragma omp parallel for schedule(static) if (nch > 1)
    for (long ch = 0; ch < nch; ch++) {
        size_t i0 = (size_t)ch * EW_CHUNK, i1 = i0 + EW_CHUNK < n ? i0 + EW_CHUNK : n;
        for (size_t i = i0; i < i1; i++) out[i] = a[i] * s;
    }
}

void op_add_channel_bias(float *x, const float *bias, int N, int C, int HW) {
    /* x (N, C, HW) += bias (N, C) */
    long planes = (long)N * C;
#pragma omp parallel for schedule(static)
    for (long pc = 0; pc < planes; pc++) {
        float b = bias[pc], *p = x + (size_t)pc * HW;
        for (int i = 0; i < HW; i++) p[i] += b;
    }
}

void op_concat_channels(float *out, const float *a, const float *b, int N, int Ca, int Cb,
                        int HW) {
    /* a (N, Ca, HW), b (N, Cb, HW) -> out (N, Ca+Cb, HW) */
    size_t sa = (size_t)Ca * HW, sb = (size_t)Cb * HW;
    for (int n = 0; n < N; n++) {
        memcpy(out + (size_t)n * (sa + sb), a + (size_t)n * sa, sa * sizeof(float));
        memcpy(out + (size_t)n * (sa + sb) + sa, b + (size_t)n * sb, sb * sizeof(float));
    }
}

/* Transposes each (R, Cc) matrix of a batch into (Cc, R), in 32x32 tiles. */
#define TR_TILE 32
static void transpose_batch(float *out, const float *in, int N, int R, int Cc) {
    int tr = (R + TR_TILE - 1) / TR_TILE;
    long tasks = (long)N * tr;
#pragma omp parallel for schedule(static)
    for (long t = 0; t < tasks; t++) {
        int n = (int)(t / tr), r0 = (int)(t % tr) * TR_TILE;
        int r1 = r0 + TR_TILE < R ? r0 + TR_TILE : R;
        const float *src = in + (size_t)n * R * Cc;
        float *dst = out + (size_t)n * R * Cc;
        for (int c0 = 0; c0 < Cc; c0 += TR_TILE) {
            int c1 = c0 + TR_TILE < Cc ? c0 + TR_TILE : Cc;
            for (int c = c0; c < c1; c++)
                for (int r = r0; r < r1; r++) dst[(size_t)c * R + r] = src[(size_t)r * Cc + c];
        }
    }
}

void op_nchw_to_nhwc(float *out, const float *in, int N, int C, int HW) {
    transpose_batch(out, in, N, C, HW); /* (N, C, HW) -> (N, HW, C) */
}

void op_nhwc_to_nchw(float *out, const float *in, int N, int C, int HW) {
    transpose_batch(out, in, N, HW, C); /* (N, HW, C) -> (N, C, HW) */
}

/* ---- timestep embedding ------------------------------------------------- */

void op_timestep_embedding(float *out, const float *timesteps, int N, int dim,
                           int flip_sin_to_cos, float downscale_freq_shift, float max_period) {
    /* Mirrors diffusers.models.embeddings.get_timestep_embedding in float32:
     * exponent = -log(max_period) * arange(half) / (half - shift);
     * emb = t[:, None] * exp(exponent)[None, :]; cat(sin, cos) (or cos, sin). */
    int half = dim / 2;
    float neg_log = (float)(-log((double)max_period));
    float denom = (float)half - downscale_freq_shift;
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * dim;
        for (int i = 0; i < half; i++) {
            float exponent = neg_log * (float)i / denom;
            float arg = timesteps[n] * expf(exponent);
            float s = sinf(arg), c = cosf(arg);
            o[i] = flip_sin_to_cos ? c : s;
            o[half + i] = flip_sin_to_cos ? s : c;
        }
        if (dim % 2) o[dim - 1] = 0.0f;
    }
}
