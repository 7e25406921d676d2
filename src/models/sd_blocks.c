/* Blocks shared by the UNet and the VAE; see sd_blocks.h. Read side by side
 * with diffusers 0.16.1 models/resnet.py (ResnetBlock2D, Downsample2D,
 * Upsample2D). */
#include "models/sd_blocks.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/ops.h"
#include "core/pool.h"

#define ARENA_ALIGN 64 /* arena.c aligns every allocation to 64 bytes */

size_t sd_floats_bytes(size_t n) {
    return (n * sizeof(float) + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN + ARENA_ALIGN;
}

/* ---- parameters --------------------------------------------------------- */

static const float *get(sd_params *p, const char *prefix, const char *suffix, int ndim,
                        const int64_t *shape) {
    char name[512];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    const float *d = weights_get(p->w, name, ndim, shape);
    if (!d) p->missing++;
    return d;
}

void sd_conv_load(sd_params *p, sd_conv *c, int c_in, int c_out, int k, int bias, const char *fmt,
                  ...) {
    char prefix[448];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    c->c_in = c_in, c->c_out = c_out, c->k = k;
    int64_t ws[4] = {c_out, c_in, k, k}, bs[1] = {c_out};
    c->w = get(p, prefix, "weight", 4, ws);
    c->b = bias ? get(p, prefix, "bias", 1, bs) : NULL;
}

void sd_linear_load(sd_params *p, sd_linear *l, int in, int out, int bias, int as_conv,
                    const char *fmt, ...) {
    char prefix[448];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    l->in = in, l->out = out;
    int64_t ws[4] = {out, in, 1, 1}, bs[1] = {out};
    l->w = get(p, prefix, "weight", as_conv ? 4 : 2, ws);
    l->b = bias ? get(p, prefix, "bias", 1, bs) : NULL;
}

void sd_norm_load(sd_params *p, sd_norm *n, int c, const char *fmt, ...) {
    char prefix[448];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    n->c = c;
    int64_t s[1] = {c};
    n->w = get(p, prefix, "weight", 1, s);
    n->b = get(p, prefix, "bias", 1, s);
}

/* ---- helpers ------------------------------------------------------------ */

size_t sd_conv_arena_bytes(const sd_conv *c, int H, int W, int stride, int pad) {
    return sd_floats_bytes(op_conv2d_scratch(c->c_in, H, W, c->k, stride, pad));
}

/* ---- ResnetBlock2D ------------------------------------------------------ */

void sd_resnet_load(sd_params *p, sd_resnet *r, int c_in, int c_out, int temb_dim,
                    const char *prefix) {
    memset(r, 0, sizeof *r);
    r->c_in = c_in, r->c_out = c_out, r->temb_dim = temb_dim;
    sd_norm_load(p, &r->norm1, c_in, "%s.norm1", prefix);
    sd_conv_load(p, &r->conv1, c_in, c_out, 3, 1, "%s.conv1", prefix);
    if (temb_dim > 0)
        sd_linear_load(p, &r->time_emb_proj, temb_dim, c_out, 1, 0, "%s.time_emb_proj", prefix);
    sd_norm_load(p, &r->norm2, c_out, "%s.norm2", prefix);
    sd_conv_load(p, &r->conv2, c_out, c_out, 3, 1, "%s.conv2", prefix);
    if (c_in != c_out)
        sd_conv_load(p, &r->conv_shortcut, c_in, c_out, 1, 1, "%s.conv_shortcut", prefix);
}

size_t sd_resnet_arena_bytes(const sd_resnet *r, int B, int H, int W) {
    size_t HW = (size_t)H * W;
    size_t s1 = sd_conv_arena_bytes(&r->conv1, H, W, 1, 1);
    size_t s2 = sd_conv_arena_bytes(&r->conv2, H, W, 1, 1);
    return sd_floats_bytes((size_t)B * r->c_in * HW) + sd_floats_bytes((size_t)B * r->c_out * HW) +
           sd_floats_bytes((size_t)B * r->c_out) + (s1 > s2 ? s1 : s2);
}

/* ---- Downsample2D / Upsample2D ----------------------------------------- */

size_t sd_downsample_arena_bytes(const sd_conv *c, int B, int H, int W, int pad) {
    if (pad != 0) return sd_conv_arena_bytes(c, H, W, 2, pad);
    /* the padded copy, and the backend form's rows padded first (sd_blocks_be.c) */
    return sd_floats_bytes((size_t)B * c->c_in * H * (W + 1)) +
           sd_floats_bytes((size_t)B * c->c_in * (H + 1) * (W + 1)) +
           sd_conv_arena_bytes(c, H + 1, W + 1, 2, 0);
}

/* Upsample2D as one convolution at the low resolution. With up = nearest2x(x),
 *   out[2i+py, 2j+px] = sum_{ky,kx} w[ky, kx] up[2i+py-1+ky, 2j+px-1+kx]
 * and up[Y] = x[Y/2], so each output phase (py, px) is a 2x2 convolution of x
 * whose taps are sums of the 3x3 taps: for py = 0 the rows (i-1, i) take
 * kernel rows ({0}, {1, 2}); for py = 1 the rows (i, i+1) take ({0, 1}, {2});
 * the same for columns. The four phases stack into one (4 C_out, C_in, 2, 2)
 * conv with padding 1, whose (H+1, W+1) output holds phase (py, px) at
 * offset (py, px). 4 x 4/9 of a 3x3 at half the size: 2.25x fewer
 * multiply-adds than convolving the upsampled map, and no upsampled copy.
 * The taps are summed per call (16 C_out C_in adds, nothing against the conv). */
size_t sd_upsample_arena_bytes(const sd_conv *c, int B, int H, int W) {
    if (c->k != 3)
        return sd_floats_bytes((size_t)B * c->c_in * 4 * H * W) +
               sd_conv_arena_bytes(c, 2 * H, 2 * W, 1, 1);
    sd_conv pc = {c->c_in, 4 * c->c_out, 2, NULL, NULL, BE_NONE, BE_NONE};
    return sd_floats_bytes((size_t)16 * c->c_out * c->c_in) +
           sd_floats_bytes((size_t)4 * c->c_out) +
           sd_floats_bytes((size_t)4 * c->c_out * (H + 1) * (W + 1)) +
           sd_conv_arena_bytes(&pc, H, W, 1, 1);
}

typedef struct {
    float *pw;
    const float *w;
    int Ci;
    size_t plane; /* one phase's (C_out, C_in, 2, 2) */
} phase_job;

/* The four phases' 2x2 taps of output channels [co0, co1). */
static void phase_taps(void *ctx, long co0, long co1, int worker) {
    const phase_job *jb = ctx;
    int Ci = jb->Ci;
    size_t plane = jb->plane;
    for (long co = co0; co < co1; co++)
        for (int ci = 0; ci < Ci; ci++) {
            const float *k = jb->w + ((size_t)co * Ci + ci) * 9; /* (3, 3) */
            float *d = jb->pw + ((size_t)co * Ci + ci) * 4;      /* phase 0's (2, 2) */
            /* row taps of phase py, tap a: py 0 -> ({0}, {1, 2}), py 1 -> ({0, 1}, {2}) */
            float rows[2][2][3];
            for (int j = 0; j < 3; j++) {
                rows[0][0][j] = k[j], rows[0][1][j] = k[3 + j] + k[6 + j];
                rows[1][0][j] = k[j] + k[3 + j], rows[1][1][j] = k[6 + j];
            }
            for (int py = 0; py < 2; py++)
                for (int ay = 0; ay < 2; ay++) {
                    const float *r = rows[py][ay];
                    /* the same for columns, phase px at plane 2*py + px */
                    d[(size_t)(2 * py) * plane + ay * 2 + 0] = r[0];
                    d[(size_t)(2 * py) * plane + ay * 2 + 1] = r[1] + r[2];
                    d[(size_t)(2 * py + 1) * plane + ay * 2 + 0] = r[0] + r[1];
                    d[(size_t)(2 * py + 1) * plane + ay * 2 + 1] = r[2];
                }
        }
}

typedef struct {
    float *ob;
    const float *y;
    int Co, H, W;
} interleave_job;

/* out[co, 2i+py, 2j+px] = y[(py, px), co, i+py, j+px] for channels [co0, co1). */
static void interleave_phases(void *ctx, long co0, long co1, int worker) {
    const interleave_job *jb = ctx;
    int Co = jb->Co, H = jb->H, W = jb->W, Hp = H + 1, Wp = W + 1;
    for (long co = co0; co < co1; co++)
        for (int oy = 0; oy < 2 * H; oy++) {
            int py = oy & 1, iy = (oy >> 1) + py;
            const float *y0 = jb->y + (((size_t)(2 * py) * Co + co) * Hp + iy) * Wp;     /* px 0 */
            const float *y1 = jb->y + (((size_t)(2 * py + 1) * Co + co) * Hp + iy) * Wp; /* px 1 */
            float *o = jb->ob + ((size_t)co * 2 * H + oy) * 2 * W;
            for (int j = 0; j < W; j++) o[2 * j] = y0[j], o[2 * j + 1] = y1[j + 1];
        }
}

void sd_upsample_phase_weights(const sd_conv *c, float *pw, float *pb) {
    int Ci = c->c_in, Co = c->c_out;
    phase_job pj = {pw, c->w, Ci, (size_t)Co * Ci * 4};
    pool_for(Co, pool_grain(Co, 16.0 * Ci), phase_taps, &pj);
    for (int p = 0; p < 4; p++)
        for (int co = 0; co < Co; co++) pb[p * Co + co] = c->b ? c->b[co] : 0.0f;
}

void sd_upsample_interleave(float *out, const float *y, int Co, int H, int W) {
    interleave_job ij = {out, y, Co, H, W};
    pool_for(Co, pool_grain(Co, 8.0 * H * W), interleave_phases, &ij);
}

int sd_params_check(const sd_params *p, const char *what, oir_error *err) {
    if (!p->missing) return OIR_OK;
    int rc = weights_finish(p->w, err);
    return rc ? rc : oir_fail(err, OIR_E_MISSING, "%s: %d parameters missing", what, p->missing);
}
