/* Building blocks shared by the UNet and the VAE (diffusers 0.16.1):
 * parameter structs with their loaders, ResnetBlock2D, Downsample2D,
 * Upsample2D. Internal to src/models (unet.c, vae.c).
 *
 * Each forward takes an arena for its temporaries and releases them before
 * returning (arena mark/reset); *_arena_bytes gives the most it takes, so
 * the models can plan one arena for a whole pass. Activations are NCHW. */
#ifndef OIR_MODELS_SD_BLOCKS_H
#define OIR_MODELS_SD_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/backend.h"
#include "core/error.h"
#include "models/weights.h"

/* ---- parameters -------------------------------------------------------- */

typedef struct {
    int c_in, c_out, k;
    const float *w; /* (C_out, C_in, k, k) */
    const float *b; /* (C_out), or NULL */
    be_view bw, bb; /* the same on the model's backend (sd_bind_*), BE_NONE until bound */
} sd_conv;

typedef struct {
    int in, out;
    const float *w; /* (out, in) -- also a 1x1 Conv2d's (out, in, 1, 1) */
    const float *b; /* (out), or NULL */
    be_view bw, bb; /* on the backend (sd_bind_*) */
} sd_linear;

typedef struct {
    int c;
    const float *w, *b; /* (C), (C): GroupNorm / LayerNorm affine */
    be_view bw, bb;     /* on the backend (sd_bind_*) */
} sd_norm;

/* Collects parameters from weights; a missing or mis-shaped one is recorded
 * by the weights object (weights_finish names it) and counted here. */
typedef struct {
    weights *w;
    int missing;
} sd_params;

/* After loading every parameter: OIR_OK, or the weights' problems by name
 * (weights_finish) when any was missing or mis-shaped. */
int sd_params_check(const sd_params *p, const char *what, oir_error *err);

/* Batch rows per attention chunk: whole samples (self-attention needs all of a
 * sample's keys), about chunk_rows token rows, at least 1, at most B. */
static inline int sd_attention_group(int B, int T, int chunk_rows) {
    int g = chunk_rows / T;
    if (g < 1) g = 1;
    return g < B ? g : B;
}

/* Parameter "<prefix>.weight"/"<prefix>.bias"; prefix is printf-formatted. */
void sd_conv_load(sd_params *p, sd_conv *c, int c_in, int c_out, int k, int bias, const char *fmt,
                  ...) __attribute__((format(printf, 7, 8)));
/* as_conv: the file holds a 1x1 Conv2d (out, in, 1, 1) instead of (out, in). */
void sd_linear_load(sd_params *p, sd_linear *l, int in, int out, int bias, int as_conv,
                    const char *fmt, ...) __attribute__((format(printf, 7, 8)));
void sd_norm_load(sd_params *p, sd_norm *n, int c, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- ResnetBlock2D ------------------------------------------------------ */

/* diffusers ResnetBlock2D with time_embedding_norm "default", SiLU, dropout
 * off:  h = conv1(silu(norm1(x))) + time_emb_proj(silu(temb))[:, :, None, None]
 *       h = conv2(silu(norm2(h)));  out = (shortcut(x) + h) / output_scale */
typedef struct {
    int c_in, c_out, temb_dim; /* temb_dim 0: no time embedding (VAE) */
    sd_norm norm1;             /* GroupNorm(groups, C_in) */
    sd_conv conv1;             /* (C_out, C_in, 3, 3) */
    sd_linear time_emb_proj;   /* (C_out, T_emb); absent in the VAE */
    sd_norm norm2;             /* GroupNorm(groups, C_out) */
    sd_conv conv2;             /* (C_out, C_out, 3, 3) */
    sd_conv conv_shortcut;     /* (C_out, C_in, 1, 1); absent when C_in == C_out */
} sd_resnet;

void sd_resnet_load(sd_params *p, sd_resnet *r, int c_in, int c_out, int temb_dim,
                    const char *prefix);

size_t sd_resnet_arena_bytes(const sd_resnet *r, int B, int H, int W);

/* ---- Downsample2D / Upsample2D ----------------------------------------- */

/* Downsample2D(use_conv=True): conv 3x3 stride 2 with padding `pad`
 * (1 in the UNet); pad 0 means diffusers' F.pad(x, (0, 1, 0, 1)) first
 * (the VAE encoder). x (B, C, H, W) -> out (B, C_out, H/2, W/2), H, W even.
 * The forwards run on the backend table (sd_blocks_be.c); these size the
 * host arena they are planned against. */
size_t sd_downsample_arena_bytes(const sd_conv *c, int B, int H, int W, int pad);

/* Upsample2D(use_conv=True): nearest 2x then conv 3x3 pad 1, computed as one
 * (4 C_out, C_in, 2, 2) conv at the input size (the four output phases;
 * 2.25x fewer multiply-adds, no upsampled copy; see sd_blocks.c).
 * x (B, C, H, W) -> out (B, C_out, 2H, 2W). */
size_t sd_upsample_arena_bytes(const sd_conv *c, int B, int H, int W);

/* ---- helpers ----------------------------------------------------------- */

/* Debug hook for named intermediates (unet_tap, vae_tap); data is valid only
 * during the call. */
typedef struct {
    void (*fn)(void *user, const char *name, const float *data, size_t n);
    void *user;
} sd_tap;

static inline void sd_tap_out(const sd_tap *tap, const char *name, const float *data, size_t n) {
    if (tap && tap->fn) tap->fn(tap->user, name, data, n);
}

/* Bytes arena_floats(n) takes, alignment included. */
size_t sd_floats_bytes(size_t n);
size_t sd_conv_arena_bytes(const sd_conv *c, int H, int W, int stride, int pad);

/* Upsample2D's four phase kernels of a 3x3 conv c (see sd_blocks.c):
 * pw (4, C_out, C_in, 2, 2), pb (4, C_out) (zeros without a bias). */
void sd_upsample_phase_weights(const sd_conv *c, float *pw, float *pb);
/* out (C_out, 2H, 2W) from the phase conv's y (4, C_out, H+1, W+1), one image. */
void sd_upsample_interleave(float *out, const float *y, int Co, int H, int W);

/* ==== the blocks on the backend table (sd_blocks_be.c) ====================
 *
 * The same blocks over be_* ops on be_views (docs/BACKENDS.md): weights are
 * the parameters' bw/bb views (sd_bind_*), activations are carved from an
 * sd_dev_arena (a backend buffer carved like an arena, 64-byte steps from a
 * 64-byte aligned start, so the CPU backend sees the addresses the host
 * arena gave). On the CPU backend the results are bit-identical to the host
 * forwards above. Ops are queued; errors are the backend's sticky status
 * (the caller checks at its sync), except an exhausted arena. */

typedef struct {
    be_view base; /* 64-byte aligned on the host for the CPU backend */
    size_t cap, used;
} sd_dev_arena;

/* n floats from the device arena; 0 when it is exhausted. */
int sd_dalloc(sd_dev_arena *a, size_t n, be_view *out);

/* Weights onto a backend: on a backend that shares the host's memory each
 * tensor is wrapped where it is (zero-copy); elsewhere a counting pass sizes
 * one buffer, then every tensor is uploaded into it (one sync). */
typedef struct {
    oir_backend *be;
    int wrap;          /* the backend wraps host memory */
    int counting;      /* sizing pass (no buffer yet) */
    size_t total, off; /* bytes */
    be_buffer *pool;   /* !wrap: all the tensors */
    be_buffer **bufs;  /* wrap: one per tensor */
    int n, cap;
    int status;        /* first failure */
    oir_error err;
} sd_binder;

void sd_bind_tensor(sd_binder *b, const float *p, size_t n, be_view *out);
void sd_bind_conv(sd_binder *b, sd_conv *c);
void sd_bind_linear(sd_binder *b, sd_linear *l);
void sd_bind_norm(sd_binder *b, sd_norm *n);
void sd_bind_resnet(sd_binder *b, sd_resnet *r);
/* Binds with bind(user, b) calling sd_bind_* on every parameter: once
 * (wrap: each tensor wrapped) or twice (count, then upload into one
 * buffer), then one sync. OIR_OK or the first failure. */
int sd_binder_run(sd_binder *b, oir_backend *be, int wrap, void (*bind)(void *user, sd_binder *b), void *user,
                  oir_error *err);
/* Frees what the binder holds (not the backend). */
void sd_binder_free(sd_binder *b);

/* What a model holds on its backend (vae_bind, clip_text_bind,
 * clip_vision_bind): the backend, the weights and the per-forward buffers
 * kept between forwards, so that a forward allocates nothing once the sizes
 * repeat. */
typedef struct {
    oir_backend *be;
    int own_be;                    /* a CPU backend of its own: destroyed with it */
    int host;                      /* the backend shares the host's memory (CPU) */
    sd_binder wb;                  /* the weights */
    be_buffer *act;                /* activations: the host arena wrapped (CPU), or device memory */
    size_t act_cap;
    const unsigned char *act_host; /* CPU: the host address act wraps */
    be_buffer *zeros;              /* zeros_n floats of 0 (sd_downsample_pad0_forward_be) */
    size_t zeros_n;
    float *hbuf;                   /* downloads for taps and outputs read on the host */
    size_t hbuf_cap;
} sd_dev;

/* Onto be (NULL: a CPU backend of its own); then the caller prepares what
 * depends on d->host and calls sd_dev_bind with a function that calls
 * sd_bind_* on every parameter (run once to wrap, or twice: count, upload;
 * one sync). sd_dev_close frees what sd_dev_open and sd_dev_bind made. */
int sd_dev_open(sd_dev *d, oir_backend *be, const char *who, oir_error *err);
int sd_dev_bind(sd_dev *d, void (*bind)(void *user, sd_binder *b), void *user, const char *who, oir_error *err);
void sd_dev_close(sd_dev *d);
/* The activations' buffer for one forward: on a host-memory backend the
 * free part of the caller's arena, wrapped where it is (the wrapper is kept
 * while the arena and its mark repeat); elsewhere device memory of `need`
 * bytes (grow-only). The plain arena helper of unet_dev_arena too. */
int sd_act_arena(oir_backend *be, int host, be_buffer **act, size_t *act_cap, const unsigned char **act_host,
                 arena *a, size_t need, sd_dev_arena *da, oir_error *err);
int sd_dev_arena_for(sd_dev *d, arena *a, size_t need, sd_dev_arena *da, oir_error *err);
/* At least n floats of 0 in d->zeros (grow-only). */
int sd_dev_zeros(sd_dev *d, size_t n, oir_error *err);
/* n floats of v on the host: v's own address on a host-memory backend,
 * else a download (a sync) into d->hbuf at float `at`. NULL on failure
 * (err says why). */
const float *sd_dev_host(sd_dev *d, be_view v, size_t n, size_t at, oir_error *err);
/* tap->fn(name, v) with v read on the host (sd_dev_host); no-op without a tap. */
int sd_dev_tap(sd_dev *d, const sd_tap *tap, const char *name, be_view v, size_t n, oir_error *err);
/* sd_dev_close, then onto be (NULL: a CPU backend of its own) with the
 * weights of bind; on failure back onto a CPU backend of its own (the model
 * stays usable) and the error says why. */
int sd_dev_rebind(sd_dev *d, oir_backend *be, void (*bind)(void *user, sd_binder *b), void *user, const char *who,
                  oir_error *err);
/* n floats of host scratch (d->hbuf, grow-only): inputs prepared on the
 * host before an upload. NULL when out of memory. */
float *sd_dev_staging(sd_dev *d, size_t n, oir_error *err);
/* The "device arena exhausted" error. */
int sd_dev_arena_fail(oir_error *err, const char *who, const sd_dev_arena *a);

int sd_conv_forward_be(oir_backend *be, const sd_conv *c, be_view out, be_view in, int B, int H, int W,
                       int stride, int pad);
/* temb_act: BE_NONE when temb_dim is 0. */
int sd_resnet_forward_be(oir_backend *be, const sd_resnet *r, sd_dev_arena *a, be_view out, be_view x,
                         be_view temb_act, int B, int H, int W, int groups, float eps, float output_scale,
                         oir_error *err);
/* The phase conv of a 3x3 upsampler conv c (sd_upsample_phase_weights) in
 * *mem (malloc'd: the caller frees it); an empty conv (w NULL) when c is
 * not 3x3. OIR_E_NOMEM when out of memory. */
int sd_upsample_phase_conv(const sd_conv *c, float **mem, sd_conv *out);
/* phase: the bound phase conv of c (sd_upsample_phase_weights) on a backend
 * that shares the host's memory, else NULL (nearest 2x, then the 3x3 conv:
 * the same sum in another order). */
int sd_upsample_forward_be(oir_backend *be, const sd_conv *c, const sd_conv *phase, sd_dev_arena *a,
                           be_view out, be_view x, int B, int H, int W, oir_error *err);
/* Downsample2D with pad 0 (the VAE encoder): F.pad(x, (0, 1, 0, 1)) as two
 * copies (be_concat_channels with zeros: a zero column after each row, then
 * a zero row after each plane), then the 3x3 stride-2 conv. zeros: at least
 * B C max(H, W + 1) floats of 0 (sd_dev_zeros). */
int sd_downsample_pad0_forward_be(oir_backend *be, const sd_conv *c, sd_dev_arena *a, be_view out, be_view x,
                                  be_view zeros, int B, int H, int W, oir_error *err);
void sd_tokens_proj_add_nchw_be(oir_backend *be, be_view x, be_view t, const sd_linear *l, int B, int HW);
/* out (rows, n) += in @ W^T + bias; ones: >= rows floats of 1.0 (the bias
 * is added as ones (rows, 1) @ bias (1, n), bit for bit out[j] + bias[j]). */
void sd_linear_add_be(oir_backend *be, be_view out, be_view in, const sd_linear *l, int rows, be_view ones);

#endif
