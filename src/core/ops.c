/* CPU kernels: matrix products, convolution, shape and elementwise ops,
 * timestep embedding. Norms and activations are in ops_norm.c, attention in
 * ops_attention.c. See ops.h for the contracts.
 *
 * Threading: every loop runs on the worker pool (pool.h) in chunks fixed by
 * its size, each chunk owning whole output rows, and BLAS runs single-
 * threaded inside the chunks of gemm() below, so the bits of a result do not
 * depend on the thread count. */
#include "core/ops.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "core/pool.h"

/* ---- matrix products ---------------------------------------------------- */

/* c (M, N; ldc) = alpha a (M, K; lda) @ b (K, N; ldb, or (N, K) when
 * b_trans) + beta c, row-major. Cut into blocks of rows of c (or of columns,
 * when N > M) that the pool runs as single-threaded sgemm calls: the block
 * size depends on the shape only (results independent of the thread count),
 * and at least GEMM_MIN_BLOCK rows keep the re-packing of the other operand,
 * which every block does, a few percent of the work. */
#define GEMM_MIN_FLOPS 4e6
#define GEMM_MIN_BLOCK 64
#define GEMM_BLOCKS 16

typedef struct {
    const float *a, *b;
    float *c;
    int M, N, K, lda, ldb, ldc, b_trans, by_rows, block;
    float alpha, beta;
} gemm_job;

static void gemm_block(void *ctx, long begin, long end, int worker) {
    const gemm_job *j = ctx;
    for (long blk = begin; blk < end; blk++) {
        int lo = (int)blk * j->block;
        if (j->by_rows) {
            int m = j->M - lo < j->block ? j->M - lo : j->block;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, j->b_trans ? CblasTrans : CblasNoTrans, m, j->N, j->K,
                        j->alpha, j->a + (size_t)lo * j->lda, j->lda, j->b, j->ldb, j->beta,
                        j->c + (size_t)lo * j->ldc, j->ldc);
        } else {
            int n = j->N - lo < j->block ? j->N - lo : j->block;
            const float *b = j->b_trans ? j->b + (size_t)lo * j->ldb : j->b + lo;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, j->b_trans ? CblasTrans : CblasNoTrans, j->M, n, j->K,
                        j->alpha, j->a, j->lda, b, j->ldb, j->beta, j->c + lo, j->ldc);
        }
    }
}

static void gemm(float *c, int ldc, const float *a, int lda, const float *b, int ldb, int M, int N, int K,
                 int b_trans, float alpha, float beta) {
    gemm_job j = {a, b, c, M, N, K, lda, ldb, ldc, b_trans, M >= N, 0, alpha, beta};
    int D = j.by_rows ? M : N, other = j.by_rows ? N : M;
    double flops = 2.0 * M * N * K;
    if (flops < 2 * GEMM_MIN_FLOPS || D < 2 * GEMM_MIN_BLOCK) {
        j.block = D;
    } else {
        int block = (D + GEMM_BLOCKS - 1) / GEMM_BLOCKS;
        int min_rows = (int)(GEMM_MIN_FLOPS / (2.0 * other * K)) + 1;
        if (block < min_rows) block = min_rows;
        if (block < GEMM_MIN_BLOCK) block = GEMM_MIN_BLOCK;
        j.block = (block + 15) / 16 * 16;
    }
    long blocks = (D + j.block - 1) / j.block;
    pool_for(blocks, 1, gemm_block, &j);
}

void op_matmul(float *out, const float *a, const float *b, int M, int N, int K, int b_trans,
               float alpha, float beta) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* BLAS rejects K = 0 on some builds; the product is empty */
        for (size_t i = 0; i < (size_t)M * N; i++) out[i] = beta == 0.0f ? 0.0f : beta * out[i];
        return;
    }
    gemm(out, N, a, K, b, b_trans ? K : N, M, N, K, b_trans, alpha, beta);
}

typedef struct {
    float *out;
    const float *bias;
    int n;
} fill_rows_job;

static void fill_rows_chunk(void *ctx, long r0, long r1, int worker) {
    const fill_rows_job *j = ctx;
    for (long r = r0; r < r1; r++) memcpy(j->out + (size_t)r * j->n, j->bias, (size_t)j->n * sizeof(float));
}

/* Fills each row of out (rows, n) with bias (n). */
static void fill_rows(float *out, const float *bias, int rows, int n) {
    fill_rows_job j = {out, bias, n};
    pool_for(rows, pool_grain(rows, n), fill_rows_chunk, &j);
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

typedef struct {
    float *col;
    const float *x;
    int H, W, k, s, p, Wo, oy0, nrows;
} im2col_job;

static void im2col_rows(void *ctx, long row0, long row1, int worker) {
    const im2col_job *j = ctx;
    float *col = j->col;
    const float *x = j->x;
    int H = j->H, W = j->W, k = j->k, s = j->s, p = j->p, Wo = j->Wo, oy0 = j->oy0, nrows = j->nrows;
    int kk = k * k;
    size_t ncols = (size_t)nrows * Wo;
    for (int row = (int)row0; row < (int)row1; row++) {
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

/* col (C_in*k*k, nrows*Wo) for output rows [oy0, oy0+nrows) of one image
 * x (C_in, H, W). Row (c, ki, kj) of col holds x[c, oy*s-p+ki, ox*s-p+kj]. */
static void im2col_band(float *col, const float *x, int C_in, int H, int W, int k, int s, int p,
                        int Wo, int oy0, int nrows) {
    im2col_job j = {col, x, H, W, k, s, p, Wo, oy0, nrows};
    long rows = (long)C_in * k * k;
    pool_for(rows, pool_grain(rows, (double)nrows * Wo), im2col_rows, &j);
}

typedef struct {
    float *y;
    const float *bias;
    size_t HWo;
} fill_planes_job;

static void fill_planes(void *ctx, long c0, long c1, int worker) {
    const fill_planes_job *j = ctx;
    for (long co = c0; co < c1; co++)
        for (size_t i = 0; i < j->HWo; i++) j->y[(size_t)co * j->HWo + i] = j->bias[co];
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
            fill_planes_job fj = {y, bias, HWo};
            pool_for(C_out, pool_grain(C_out, (double)HWo), fill_planes, &fj);
        }
        float beta = bias ? 1.0f : 0.0f;
        if (conv_is_direct(k, stride, pad)) {
            /* y (C_out, HW) = weight (C_out, C_in) @ x (C_in, HW) */
            gemm(y, (int)HWo, weight, C_in, x, (int)HWo, C_out, (int)HWo, C_in, 0, 1.0f, beta);
            continue;
        }
        for (int oy0 = 0; oy0 < Ho; oy0 += band) {
            int nrows = Ho - oy0 < band ? Ho - oy0 : band;
            int ncols = nrows * Wo;
            im2col_band(scratch, x, C_in, H, W, k, stride, pad, Wo, oy0, nrows);
            /* y[:, band] (C_out, ncols) = weight (C_out, K) @ col (K, ncols) */
            gemm(y + (size_t)oy0 * Wo, (int)HWo, weight, (int)K, scratch, ncols, C_out, ncols, (int)K, 0, 1.0f,
                 beta);
        }
    }
}

/* ---- shape and elementwise ---------------------------------------------- */

typedef struct {
    float *out;
    const float *in;
    int H, W;
} upsample_job;

static void upsample_planes(void *ctx, long pc0, long pc1, int worker) {
    const upsample_job *j = ctx;
    float *out = j->out;
    const float *in = j->in;
    int H = j->H, W = j->W;
    for (long pc = pc0; pc < pc1; pc++) {
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

void op_upsample_nearest2x(float *out, const float *in, int N, int C, int H, int W) {
    /* in (N, C, H, W) -> out (N, C, 2H, 2W) */
    long planes = (long)N * C;
    upsample_job j = {out, in, H, W};
    pool_for(planes, pool_grain(planes, 5.0 * H * W), upsample_planes, &j);
}

/* Elementwise loops: chunks of EW_CHUNK elements. */
#define EW_CHUNK 16384

enum { EW_ADD, EW_MUL, EW_SCALE };

typedef struct {
    float *out;
    const float *a, *b;
    float s;
    int op;
} ew_job;

static void ew_chunk(void *ctx, long i0, long i1, int worker) {
    const ew_job *j = ctx;
    float *out = j->out;
    const float *a = j->a, *b = j->b;
    switch (j->op) {
    case EW_ADD:
        for (long i = i0; i < i1; i++) out[i] = a[i] + b[i];
        break;
    case EW_MUL:
        for (long i = i0; i < i1; i++) out[i] = a[i] * b[i];
        break;
    default:
        for (long i = i0; i < i1; i++) out[i] = a[i] * j->s;
    }
}

static void elementwise(int op, float *out, const float *a, const float *b, float s, size_t n) {
    ew_job j = {out, a, b, s, op};
    pool_for((long)n, EW_CHUNK, ew_chunk, &j);
}

void op_add(float *out, const float *a, const float *b, size_t n) { elementwise(EW_ADD, out, a, b, 0, n); }

void op_mul(float *out, const float *a, const float *b, size_t n) { elementwise(EW_MUL, out, a, b, 0, n); }

void op_scale(float *out, const float *a, float s, size_t n) { elementwise(EW_SCALE, out, a, NULL, s, n); }

/* Non-finite: all exponent bits set (inf or NaN). Chunks of NF_CHUNK, each
 * counted into its own slot (no shared counter), summed after. */
#define NF_CHUNK ((size_t)1 << 20)
#define NF_SLOTS 64

typedef struct {
    const float *x;
    size_t n, per_slot;
    size_t bad[NF_SLOTS];
} nf_job;

static void nf_slots(void *ctx, long s0, long s1, int worker) {
    nf_job *j = ctx;
    for (long sl = s0; sl < s1; sl++) {
        size_t i0 = (size_t)sl * j->per_slot, i1 = i0 + j->per_slot < j->n ? i0 + j->per_slot : j->n, k = 0;
        for (size_t i = i0; i < i1; i++) {
            uint32_t u;
            memcpy(&u, j->x + i, 4);
            k += (u & 0x7f800000u) == 0x7f800000u;
        }
        j->bad[sl] = k;
    }
}

size_t op_count_nonfinite(const float *x, size_t n) {
    if (!n) return 0;
    nf_job j = {x, n, NF_CHUNK, {0}};
    if ((n + NF_CHUNK - 1) / NF_CHUNK > NF_SLOTS) j.per_slot = (n + NF_SLOTS - 1) / NF_SLOTS;
    long slots = (long)((n + j.per_slot - 1) / j.per_slot);
    pool_for(slots, 1, nf_slots, &j);
    size_t bad = 0;
    for (long sl = 0; sl < slots; sl++) bad += j.bad[sl];
    return bad;
}

typedef struct {
    float *x;
    const float *bias;
    int HW;
} channel_bias_job;

static void channel_bias_planes(void *ctx, long pc0, long pc1, int worker) {
    const channel_bias_job *j = ctx;
    for (long pc = pc0; pc < pc1; pc++) {
        float b = j->bias[pc], *p = j->x + (size_t)pc * j->HW;
        for (int i = 0; i < j->HW; i++) p[i] += b;
    }
}

void op_add_channel_bias(float *x, const float *bias, int N, int C, int HW) {
    /* x (N, C, HW) += bias (N, C) */
    long planes = (long)N * C;
    channel_bias_job j = {x, bias, HW};
    pool_for(planes, pool_grain(planes, HW), channel_bias_planes, &j);
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
typedef struct {
    float *out;
    const float *in;
    int R, Cc, tr;
} transpose_job;

static void transpose_tiles(void *ctx, long t0, long t1, int worker) {
    const transpose_job *j = ctx;
    float *out = j->out;
    const float *in = j->in;
    int R = j->R, Cc = j->Cc, tr = j->tr;
    for (long t = t0; t < t1; t++) {
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

static void transpose_batch(float *out, const float *in, int N, int R, int Cc) {
    int tr = (R + TR_TILE - 1) / TR_TILE;
    long tasks = (long)N * tr;
    transpose_job j = {out, in, R, Cc, tr};
    pool_for(tasks, pool_grain(tasks, 2.0 * TR_TILE * Cc), transpose_tiles, &j);
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
