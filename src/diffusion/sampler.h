/* Sampler: the Stable Diffusion building blocks OIR and the CLI share —
 * prompt encoding, VAE encode/decode, classifier-free-guided noise
 * prediction for a batch whose rows sit at different timesteps, DDIM
 * inversion and denoising between noise levels.
 *
 * Levels: with T DDIM steps, level L is the latent after L inversion steps
 * (L = 0 the clean image latent, L = T pure noise). Inverting from level L
 * uses timestep ts[T-1-L] (ts = the descending scheduler timesteps);
 * denoising from level L to L-1 uses ts[T-L].
 *
 * Numbers: every model output (prompt embedding, image latent, UNet noise
 * prediction, decoded image) is checked for NaN / inf; finite weights that
 * overflow float32 fail with OIR_E_NUMERIC naming the stage, instead of
 * running on to a black image.
 *
 * Memory: UNet batches are split into chunks of at most max_unet_batch rows,
 * chosen from the memory budget and, on a device, so that every view of a
 * forward fits the device's view range (unet_max_rows_for_range); results
 * do not depend on the split. All
 * buffers are reserved up front or grown outside the denoising loops.
 *
 * Device: the loops run on the UNet's backend (s->be; docs/BACKENDS.md
 * "Sync semantics"). The *_dev functions take latents as views there and
 * keep them there: per UNet call only the timesteps (by value), the context
 * rows that changed and a non-finite count cross the bus. The host-array
 * functions are wrappers: on the CPU backend they wrap the arrays in place
 * (nothing copied, bit-identical), on a device they upload the latent once,
 * run the loop, and download the result once. */
#ifndef OIR_DIFFUSION_SAMPLER_H
#define OIR_DIFFUSION_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "diffusion/ddim.h"
#include "models/attn_capture.h"
#include "models/loader.h"

/* Progress callback: stage name, done, total; non-zero return cancels. Each
 * stage reports done = 0 as it starts ("encode", "inversion", "denoise"),
 * then every step; "decode" counts the images of one sampler_decode call. */
typedef int (*sampler_progress_fn)(void *user, const char *stage, int done, int total);

typedef struct {
    const sd_model *model;
    ddim_scheduler sched;
    int T;                      /* DDIM steps */
    int image_h, image_w;       /* images (3, image_h, image_w) */
    int lat_c, lat_h, lat_w;    /* latent shape */
    size_t lat_n;               /* lat_c * lat_h * lat_w */
    int ctx_len, ctx_dim;       /* 77, cross_attention_dim */
    float scaling_factor;       /* VAE latent scale */
    int max_unet_batch;         /* rows per UNet call (the budget's, and on a device the view range's) */
    arena arena;                /* activations of one model call */
    oir_backend *be;            /* the UNet's backend: where the loops keep the latents */
    int host;                   /* be shares the host's memory (CPU): host arrays are wrapped */
    /* staging for one UNet chunk: (max_unet_batch, ...); stage_ctx also
     * mirrors dev_ctx (ctx_rows rows valid), so unchanged rows are not sent */
    float *stage_x, *stage_t, *stage_ctx, *stage_eps;
    be_buffer *dev_x, *dev_ctx, *dev_eps; /* the same on be (CPU: the host arrays wrapped) */
    int ctx_rows;
    be_buffer *dev_step;        /* lat_n floats: the noise prediction of a one-row loop step */
    be_buffer *eps_uncond;      /* grow-only on be: rows * lat_n */
    size_t eps_uncond_cap;
    sampler_progress_fn progress;
    void *progress_user;
    long unet_calls, unet_rows; /* counters for reports */
    int truncate_prompts;       /* 1: prompts past ctx_len tokens are cut, as diffusers does
                                   (with a warning); 0 (default): an error */
    int prompt_tokens_dropped;  /* tokens the last sampler_encode_prompt cut (0: none) */
    attn_capture *capture;      /* NULL (default), or a cross-attention capture every UNet call
                                   fills (models/attn_capture.h; its row counts within each
                                   call of up to max_unet_batch rows: use ATTN_CAPTURE_ALL_ROWS) */
} sampler;

/* memory_budget: bytes for activations (0 = 2 GiB). The budget bounds the
 * UNet batch; at least one row always runs. Square images of side
 * image_size; sampler_init_hw for height x width (each a multiple of
 * sampler_size_multiple). */
int sampler_init(sampler *s, const sd_model *m, int image_size, int T, size_t memory_budget,
                 oir_error *err);
int sampler_init_hw(sampler *s, const sd_model *m, int height, int width, int T, size_t memory_budget,
                    oir_error *err);
/* Image sides must be multiples of this: the VAE factor x 2^(UNet blocks - 1). */
int sampler_size_multiple(const sd_model *m);
void sampler_free(sampler *s);
/* Switches the sampler to a T-step schedule (levels then refer to it). */
int sampler_set_steps(sampler *s, int T, oir_error *err);

/* Text encoder hidden states of a prompt: ctx (ctx_len, ctx_dim). Prompts
 * longer than the text encoder's positions are cut when s->truncate_prompts
 * (s->prompt_tokens_dropped says how many tokens went), else an error naming
 * the count. */
int sampler_encode_prompt(sampler *s, const char *prompt, float *ctx, oir_error *err);

/* pixels (3, H, W) in [-1, 1] -> latent (lat_c, lat_h, lat_w), scaled. */
int sampler_encode_image(sampler *s, const float *pixels, float *latent, oir_error *err);
/* B scaled latents -> B images (3, H, W) in about [-1, 1], one at a time. */
int sampler_decode(sampler *s, const float *latents, int B, float *images, oir_error *err);

/* Noise prediction for B rows: x (B, lat_n), t (B) one timestep per row,
 * cond[b] / uncond[b] -> (ctx_len, ctx_dim) contexts per row. With guidance
 * == 1 (or uncond NULL) only the cond branch runs; otherwise
 * eps = e_u + g (e_c - e_u). eps (B, lat_n) may not alias x. */
int sampler_eps(sampler *s, const float *x, const int64_t *t, const float *const *cond,
                const float *const *uncond, float guidance, int B, float *eps, oir_error *err);

/* Inverts z from level `from` for n steps with ctx (no guidance). When
 * levels_out is non-NULL it receives n + 1 latents: levels from..from+n.
 * z is updated in place to level from+n. */
int sampler_invert(sampler *s, float *z, int from, int n, const float *ctx, float *levels_out,
                   oir_error *err);

/* Denoises z in place from level `from` down to level `to` (< from) with
 * CFG (uncond may be NULL for guidance 1). */
int sampler_denoise(sampler *s, float *z, int from, int to, const float *cond,
                    const float *uncond, float guidance, oir_error *err);

/* The same three on views of s->be (latents (B, lat_n) there; contexts are
 * host arrays, sent only when they change). Queued: a failure of an op
 * surfaces at the next sync, and each function syncs at least once per
 * UNet call (the non-finite check). levels_out: BE_NONE or n + 1 latents. */
int sampler_eps_dev(sampler *s, be_view x, const int64_t *t, const float *const *cond,
                    const float *const *uncond, float guidance, int B, be_view eps, oir_error *err);
int sampler_invert_dev(sampler *s, be_view z, int from, int n, const float *ctx, be_view levels_out,
                       oir_error *err);
int sampler_denoise_dev(sampler *s, be_view z, int from, int to, const float *cond, const float *uncond,
                        float guidance, oir_error *err);

/* n floats on s->be for a loop: with host non-NULL on the CPU, host itself
 * (wrapped, nothing copied); otherwise a new buffer, filled from host when
 * `upload`. sampler_buf_close copies it back to host when `download` (a
 * no-op where it is host itself) and frees it; it also runs what is queued
 * and reports the first failure. A closed or zeroed buffer closes again as
 * a no-op. */
typedef struct {
    be_buffer *buf;
    be_view v;
} sampler_buf;
int sampler_buf_open(sampler *s, sampler_buf *b, float *host, size_t n, int upload, oir_error *err);
int sampler_buf_close(sampler *s, sampler_buf *b, float *host, size_t n, int download, oir_error *err);

/* Timestep used when leaving level L upwards (inversion) / downwards. */
int64_t sampler_invert_timestep(const sampler *s, int level);
int64_t sampler_denoise_timestep(const sampler *s, int level);

#endif
