#include "diffusion/sampler.h"

#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "core/threads.h"

#define DEFAULT_BUDGET ((size_t)2 << 30)

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }
static int stage_on_backend(sampler *s, oir_error *err);

int64_t sampler_invert_timestep(const sampler *s, int level) { return s->sched.timesteps[s->T - 1 - level]; }
int64_t sampler_denoise_timestep(const sampler *s, int level) { return s->sched.timesteps[s->T - level]; }

void sampler_free(sampler *s) {
    if (!s) return;
    ddim_free(&s->sched);
    arena_free(&s->arena);
    if (s->be) {
        be_buffer_free(s->be, s->dev_x);
        be_buffer_free(s->be, s->dev_ctx);
        be_buffer_free(s->be, s->dev_eps);
        be_buffer_free(s->be, s->dev_step);
        be_buffer_free(s->be, s->eps_uncond);
    }
    free(s->stage_x);
    free(s->stage_t);
    free(s->stage_ctx);
    free(s->stage_eps);
    memset(s, 0, sizeof *s);
}

int sampler_set_steps(sampler *s, int T, oir_error *err) {
    int rc = ddim_set_timesteps(&s->sched, T, err);
    if (!rc) s->T = T;
    return rc;
}

int sampler_size_multiple(const sd_model *m) {
    return vae_downscale(&m->vae->cfg) * (1 << (m->unet->cfg.n_blocks - 1));
}

int sampler_init(sampler *s, const sd_model *m, int image_size, int T, size_t memory_budget,
                 oir_error *err) {
    return sampler_init_hw(s, m, image_size, image_size, T, memory_budget, err);
}

int sampler_init_hw(sampler *s, const sd_model *m, int height, int width, int T, size_t memory_budget,
                    oir_error *err) {
    memset(s, 0, sizeof *s);
    threads_init();
    int rc;
    if (!m || !m->unet || !m->vae || !m->text_encoder || !m->tokenizer)
        return oir_fail(err, OIR_E_ARG, "sampler: the model needs a tokenizer, text encoder, UNet and VAE");
    int f = vae_downscale(&m->vae->cfg);
    int unet_f = 1 << (m->unet->cfg.n_blocks - 1);
    if (height <= 0 || width <= 0 || height % (f * unet_f) != 0 || width % (f * unet_f) != 0) {
        if (height == width)
            return oir_fail(err, OIR_E_ARG, "image size %d is not a multiple of %d (VAE factor %d x UNet factor %d)",
                            height, f * unet_f, f, unet_f);
        return oir_fail(err, OIR_E_ARG, "image size %dx%d is not a multiple of %d (VAE factor %d x UNet factor %d)",
                        width, height, f * unet_f, f, unet_f);
    }
    if (T < 1 || T > 1000) return oir_fail(err, OIR_E_ARG, "steps must be in 1..1000, got %d", T);
    s->model = m;
    s->T = T;
    s->image_h = height;
    s->image_w = width;
    s->lat_c = m->vae->cfg.latent_channels;
    s->lat_h = height / f;
    s->lat_w = width / f;
    s->lat_n = (size_t)s->lat_c * s->lat_h * s->lat_w;
    s->ctx_len = m->text_encoder ? clip_text_get_config(m->text_encoder)->max_position_embeddings : 77;
    s->ctx_dim = m->unet->cfg.cross_attention_dim;
    s->scaling_factor = m->vae->cfg.scaling_factor;
    if (s->lat_c != m->unet->cfg.in_channels)
        return oir_fail(err, OIR_E_SHAPE, "VAE latent channels %d differ from UNet in_channels %d", s->lat_c,
                        m->unet->cfg.in_channels);
    if (clip_text_get_config(m->text_encoder)->hidden_size != s->ctx_dim)
        return oir_fail(err, OIR_E_SHAPE, "text encoder width %d differs from UNet cross_attention_dim %d",
                        clip_text_get_config(m->text_encoder)->hidden_size, s->ctx_dim);
    if ((rc = ddim_init(&s->sched, &m->scheduler, err)) || (rc = ddim_set_timesteps(&s->sched, T, err))) {
        sampler_free(s);
        return rc;
    }
    if (!memory_budget) memory_budget = DEFAULT_BUDGET;
    size_t per_row_stage = (s->lat_n * 3 + 1 + (size_t)s->ctx_len * s->ctx_dim) * sizeof(float);
    int B = 1;
    while (B < 256 && unet_arena_bytes(m->unet, B * 2, s->lat_h, s->lat_w, s->ctx_len) +
                              per_row_stage * (size_t)B * 2 <= memory_budget)
        B *= 2;
    if (B > 1) B /= 2; /* last doubling that fit */
    s->max_unet_batch = B * 2 > 1 ? B * 2 : 1;
    while (s->max_unet_batch > 1 &&
           unet_arena_bytes(m->unet, s->max_unet_batch, s->lat_h, s->lat_w, s->ctx_len) +
                   per_row_stage * s->max_unet_batch > memory_budget)
        s->max_unet_batch--;
    /* on a device one view may span at most its max_view_bytes (Vulkan's
     * maxStorageBufferRange: 128 MiB on lavapipe): calls of more rows would
     * be refused, so they are split further (rows are independent) */
    oir_backend *ube = unet_backend(m->unet);
    if (ube && ube->max_view_bytes) {
        int fit = unet_max_rows_for_range(m->unet, s->lat_h, s->lat_w, s->ctx_len, ube->max_view_bytes);
        if (fit < s->max_unet_batch) s->max_unet_batch = fit;
    }
    size_t need = unet_arena_bytes(m->unet, s->max_unet_batch, s->lat_h, s->lat_w, s->ctx_len);
    need = max_sz(need, vae_arena_bytes(m->vae, 1, height, width));
    need = max_sz(need, clip_text_arena_bytes(clip_text_get_config(m->text_encoder), 1, s->ctx_len));
    size_t MB = (size_t)s->max_unet_batch;
    s->stage_x = malloc(MB * s->lat_n * sizeof(float));
    s->stage_eps = malloc(MB * s->lat_n * sizeof(float));
    s->stage_t = malloc(MB * sizeof(float));
    s->stage_ctx = malloc(MB * s->ctx_len * s->ctx_dim * sizeof(float));
    if (!s->stage_x || !s->stage_eps || !s->stage_t || !s->stage_ctx) {
        sampler_free(s);
        return oir_fail(err, OIR_E_NOMEM, "sampler: cannot allocate UNet staging buffers");
    }
    if ((rc = stage_on_backend(s, err))) {
        sampler_free(s);
        return oir_error_prefix(err, "sampler: UNet staging on %s", unet_backend_name(m->unet)), rc;
    }
    if ((rc = arena_init(&s->arena, need, err))) {
        sampler_free(s);
        return rc;
    }
    return OIR_OK;
}

/* The staging of a UNet chunk on the UNet's backend: on the CPU the host
 * arrays themselves (wrapped), elsewhere device memory. */
static int stage_on_backend(sampler *s, oir_error *err) {
    oir_backend *be = s->be = unet_backend(s->model->unet);
    if (!be) return oir_fail(err, OIR_E_ARG, "the UNet is on no backend");
    s->host = be->ops->buffer_wrap != NULL;
    size_t MB = (size_t)s->max_unet_batch, xb = MB * s->lat_n * sizeof(float);
    size_t cb = MB * s->ctx_len * s->ctx_dim * sizeof(float);
    int rc = s->host ? be_buffer_from_host(be, s->stage_x, xb, &s->dev_x, err)
                     : be_buffer_alloc(be, xb, &s->dev_x, err);
    if (!rc) rc = s->host ? be_buffer_from_host(be, s->stage_eps, xb, &s->dev_eps, err)
                          : be_buffer_alloc(be, xb, &s->dev_eps, err);
    if (!rc) rc = s->host ? be_buffer_from_host(be, s->stage_ctx, cb, &s->dev_ctx, err)
                          : be_buffer_alloc(be, cb, &s->dev_ctx, err);
    if (!rc) rc = be_buffer_alloc(be, s->lat_n * sizeof(float), &s->dev_step, err);
    return rc;
}

int sampler_buf_open(sampler *s, sampler_buf *b, float *host, size_t n, int upload, oir_error *err) {
    b->buf = NULL, b->v = BE_NONE;
    size_t bytes = (n ? n : 1) * sizeof(float);
    int rc = host && s->host ? be_buffer_from_host(s->be, host, bytes, &b->buf, err)
                             : be_buffer_alloc(s->be, bytes, &b->buf, err);
    if (rc) return rc;
    b->v = be_view_of(b->buf);
    if (host && !s->host && upload) be_upload(s->be, b->v, host, n * sizeof(float));
    return OIR_OK;
}

int sampler_buf_close(sampler *s, sampler_buf *b, float *host, size_t n, int download, oir_error *err) {
    if (!b->buf) return OIR_OK;
    int rc = host && download && !s->host ? be_download(s->be, host, b->v, n * sizeof(float), err)
                                          : be_sync(s->be, err);
    be_buffer_free(s->be, b->buf);
    b->buf = NULL, b->v = BE_NONE;
    return rc;
}

/* OIR_E_NUMERIC when x (n floats, the output of `what`) holds NaN or inf:
 * finite weights can still overflow float32, and a NaN image would quietly
 * be written as black. */
static int nonfinite_fail(size_t bad, size_t n, const char *what, oir_error *err) {
    return oir_fail(err, OIR_E_NUMERIC,
                    "%s: %zu of %zu values are non-finite (NaN or inf): the model's weights overflow float32",
                    what, bad, n);
}

static int check_finite(const float *x, size_t n, const char *what, oir_error *err) {
    size_t bad = op_count_nonfinite(x, n);
    return bad ? nonfinite_fail(bad, n, what, err) : OIR_OK;
}

int sampler_encode_prompt(sampler *s, const char *prompt, float *ctx, oir_error *err) {
    int n = 0, truncated = 0;
    int32_t *ids = malloc((size_t)s->ctx_len * sizeof *ids); /* ctx_len: the model's positions */
    if (!ids) return oir_fail(err, OIR_E_NOMEM, "sampler: out of memory");
    int rc = tokenizer_encode(s->model->tokenizer, prompt, s->ctx_len, ids, &n, &truncated, err);
    s->prompt_tokens_dropped = !rc && truncated ? n - s->ctx_len : 0;
    if (!rc && truncated && !s->truncate_prompts)
        rc = oir_fail(err, OIR_E_ARG, "prompt \"%.60s%s\" has %d tokens; the text encoder takes at most %d",
                      prompt, strlen(prompt) > 60 ? "..." : "", n, s->ctx_len);
    if (!rc) {
        size_t mark = arena_mark(&s->arena);
        rc = clip_text_forward(s->model->text_encoder, &s->arena, ids, 1, s->ctx_len, ctx, NULL, NULL, err);
        arena_reset(&s->arena, mark);
    }
    if (!rc) rc = check_finite(ctx, (size_t)s->ctx_len * s->ctx_dim, "text encoder: prompt embedding", err);
    free(ids);
    return rc;
}

static int tick(sampler *s, const char *stage, int done, int total, oir_error *err);

int sampler_encode_image(sampler *s, const float *pixels, float *latent, oir_error *err) {
    int rc = tick(s, "encode", 0, 1, err);
    if (rc) return rc;
    size_t mark = arena_mark(&s->arena);
    rc = vae_encode_mean(s->model->vae, &s->arena, pixels, 1, s->image_h, s->image_w, latent, err);
    arena_reset(&s->arena, mark);
    if (!rc) op_scale(latent, latent, s->scaling_factor, s->lat_n);
    if (!rc) rc = check_finite(latent, s->lat_n, "vae encoder: image latent", err);
    if (!rc) rc = tick(s, "encode", 1, 1, err);
    return rc;
}

int sampler_decode(sampler *s, const float *latents, int B, float *images, oir_error *err) {
    size_t img_n = (size_t)3 * s->image_h * s->image_w;
    float *z = malloc(s->lat_n * sizeof(float));
    if (!z) return oir_fail(err, OIR_E_NOMEM, "decode: out of memory");
    int rc = OIR_OK;
    for (int b = 0; b < B && !rc; b++) {
        op_scale(z, latents + b * s->lat_n, 1.0f / s->scaling_factor, s->lat_n);
        if ((rc = check_finite(z, s->lat_n, "decode: the latents (unet / sampler output)", err))) break;
        size_t mark = arena_mark(&s->arena);
        rc = vae_decode(s->model->vae, &s->arena, z, 1, s->lat_h, s->lat_w, images + b * img_n, err);
        arena_reset(&s->arena, mark);
        if (!rc) rc = check_finite(images + b * img_n, img_n, "vae decoder: decoded image", err);
        if (!rc && s->progress && s->progress(s->progress_user, "decode", b + 1, B))
            rc = oir_fail(err, OIR_E_CANCELLED, "cancelled");
    }
    free(z);
    return rc;
}

/* Runs the UNet over n jobs (x row, t, ctx) in chunks of max_unet_batch:
 * the rows are gathered into the chunk's staging on the backend (a copy
 * there), the context rows sent only when they differ from what the
 * staging holds, the noise predictions checked and scattered. */
static int unet_jobs(sampler *s, int n, const be_view *xs, const int64_t *ts, const float *const *ctxs,
                     const be_view *outs, oir_error *err) {
    oir_backend *be = s->be;
    size_t ctx_n = (size_t)s->ctx_len * s->ctx_dim, xb = s->lat_n * sizeof(float);
    be_view sx = be_view_of(s->dev_x), sc = be_view_of(s->dev_ctx), se = be_view_of(s->dev_eps);
    for (int start = 0; start < n; start += s->max_unet_batch) {
        int B = n - start < s->max_unet_batch ? n - start : s->max_unet_batch;
        for (int b = 0; b < B; b++) {
            be_copy(be, be_view_f(sx, b * s->lat_n), xs[start + b], xb);
            float *mirror = s->stage_ctx + b * ctx_n;
            if (b >= s->ctx_rows || memcmp(mirror, ctxs[start + b], ctx_n * sizeof(float))) {
                memcpy(mirror, ctxs[start + b], ctx_n * sizeof(float));
                if (!s->host) be_upload(be, be_view_f(sc, b * ctx_n), mirror, ctx_n * sizeof(float));
                if (b >= s->ctx_rows) s->ctx_rows = b + 1;
            }
            s->stage_t[b] = (float)ts[start + b];
        }
        size_t mark = arena_mark(&s->arena);
        int rc = unet_forward_dev(s->model->unet, &s->arena, sx, s->stage_t, sc, s->stage_ctx, B, s->lat_h,
                                  s->lat_w, s->ctx_len, se, NULL, s->capture, err);
        arena_reset(&s->arena, mark);
        size_t bad = 0;
        if (!rc) rc = be_count_nonfinite(be, se, (size_t)B * s->lat_n, &bad, err); /* runs the forward */
        if (rc) {
            s->ctx_rows = 0; /* a failed upload may have left the staging behind its mirror */
            return rc;
        }
        s->unet_calls++;
        s->unet_rows += B;
        if (bad) return nonfinite_fail(bad, (size_t)B * s->lat_n, "unet: noise prediction", err);
        for (int b = 0; b < B; b++) be_copy(be, outs[start + b], be_view_f(se, b * s->lat_n), xb);
    }
    return OIR_OK;
}

int sampler_eps_dev(sampler *s, be_view x, const int64_t *t, const float *const *cond,
                    const float *const *uncond, float guidance, int B, be_view eps, oir_error *err) {
    int cfg = uncond && guidance != 1.0f;
    int n = cfg ? 2 * B : B;
    if (cfg && s->eps_uncond_cap < (size_t)B * s->lat_n) {
        be_buffer_free(s->be, s->eps_uncond);
        s->eps_uncond = NULL, s->eps_uncond_cap = 0;
        int rc = be_buffer_alloc(s->be, (size_t)B * s->lat_n * sizeof(float), &s->eps_uncond, err);
        if (rc) return rc;
        s->eps_uncond_cap = (size_t)B * s->lat_n;
    }
    be_view *xs = malloc(sizeof(be_view) * (size_t)n);
    be_view *outs = malloc(sizeof(be_view) * (size_t)n);
    const float **cs = malloc(sizeof(float *) * (size_t)n);
    int64_t *tt = malloc(sizeof(int64_t) * (size_t)n);
    int rc = OIR_OK;
    if (!xs || !cs || !outs || !tt) {
        rc = oir_fail(err, OIR_E_NOMEM, "sampler: out of memory");
        goto cleanup;
    }
    be_view eu = cfg ? be_view_of(s->eps_uncond) : BE_NONE;
    for (int b = 0; b < B; b++) {
        xs[b] = be_view_f(x, b * s->lat_n);
        cs[b] = cond[b];
        tt[b] = t[b];
        outs[b] = be_view_f(eps, b * s->lat_n);
        if (cfg) {
            xs[B + b] = xs[b];
            cs[B + b] = uncond[b];
            tt[B + b] = t[b];
            outs[B + b] = be_view_f(eu, b * s->lat_n);
        }
    }
    rc = unet_jobs(s, n, xs, tt, cs, outs, err);
    if (!rc && cfg) be_guidance(s->be, eps, eu, eps, guidance, (size_t)B * s->lat_n);
    if (!rc && s->be->status) rc = be_sync(s->be, err);
cleanup:
    free(xs);
    free(cs);
    free(outs);
    free(tt);
    return rc;
}

int sampler_eps(sampler *s, const float *x, const int64_t *t, const float *const *cond,
                const float *const *uncond, float guidance, int B, float *eps, oir_error *err) {
    size_t n = (size_t)B * s->lat_n;
    sampler_buf bx, be_;
    int rc = sampler_buf_open(s, &bx, (float *)x, n, 1, err); /* read only */
    if (rc) return rc;
    if (!(rc = sampler_buf_open(s, &be_, eps, n, 0, err))) {
        rc = sampler_eps_dev(s, bx.v, t, cond, uncond, guidance, B, be_.v, err);
        int rc2 = sampler_buf_close(s, &be_, eps, n, !rc, rc ? NULL : err);
        if (!rc) rc = rc2;
    }
    int rc2 = sampler_buf_close(s, &bx, NULL, n, 0, rc ? NULL : err);
    return rc ? rc : rc2;
}

static int tick(sampler *s, const char *stage, int done, int total, oir_error *err) {
    if (s->progress && s->progress(s->progress_user, stage, done, total))
        return oir_fail(err, OIR_E_CANCELLED, "cancelled during %s", stage);
    return OIR_OK;
}

int sampler_invert_dev(sampler *s, be_view z, int from, int n, const float *ctx, be_view levels_out,
                       oir_error *err) {
    if (from < 0 || n < 0 || from + n > s->T)
        return oir_fail(err, OIR_E_ARG, "inversion from level %d for %d steps exceeds %d steps", from, n, s->T);
    oir_backend *be = s->be;
    size_t xb = s->lat_n * sizeof(float);
    be_view eps = be_view_of(s->dev_step);
    int rc = OIR_OK;
    if (levels_out.buf) be_copy(be, levels_out, z, xb);
    if (n > 0) rc = tick(s, "inversion", 0, n, err); /* the stage's clock starts here */
    for (int i = 0; i < n && !rc; i++) {
        int64_t t = sampler_invert_timestep(s, from + i);
        rc = sampler_eps_dev(s, z, &t, &ctx, NULL, 1.0f, 1, eps, err);
        if (!rc) rc = ddim_invert_step_dev(&s->sched, be, z, eps, &t, z, 1, s->lat_n, err);
        if (!rc && levels_out.buf) be_copy(be, be_view_f(levels_out, (size_t)(i + 1) * s->lat_n), z, xb);
        if (!rc) rc = tick(s, "inversion", i + 1, n, err);
    }
    if (!rc && be->status) rc = be_sync(be, err);
    return rc;
}

int sampler_denoise_dev(sampler *s, be_view z, int from, int to, const float *cond, const float *uncond,
                        float guidance, oir_error *err) {
    if (from > s->T || to < 0 || to > from)
        return oir_fail(err, OIR_E_ARG, "denoising from level %d to %d (T = %d)", from, to, s->T);
    oir_backend *be = s->be;
    be_view eps = be_view_of(s->dev_step);
    int rc = from > to ? tick(s, "denoise", 0, from - to, err) : OIR_OK;
    for (int level = from; level > to && !rc; level--) {
        int64_t t = sampler_denoise_timestep(s, level);
        rc = sampler_eps_dev(s, z, &t, &cond, uncond ? &uncond : NULL, guidance, 1, eps, err);
        if (!rc) rc = ddim_step_dev(&s->sched, be, z, eps, &t, z, 1, s->lat_n, BE_NONE, err);
        if (!rc) rc = tick(s, "denoise", from - level + 1, from - to, err);
    }
    if (!rc && be->status) rc = be_sync(be, err);
    return rc;
}

int sampler_invert(sampler *s, float *z, int from, int n, const float *ctx, float *levels_out,
                   oir_error *err) {
    if (from < 0 || n < 0 || from + n > s->T)
        return oir_fail(err, OIR_E_ARG, "inversion from level %d for %d steps exceeds %d steps", from, n, s->T);
    size_t N = s->lat_n, LN = (size_t)(n + 1) * N;
    /* z may be a row of levels_out (the levels written in place): one buffer then */
    int inside = levels_out && z >= levels_out && z < levels_out + LN;
    sampler_buf bl = {0}, bz = {0};
    int rc = levels_out ? sampler_buf_open(s, &bl, levels_out, LN, 0, err) : OIR_OK;
    be_view zv = inside ? be_view_f(bl.v, (size_t)(z - levels_out)) : BE_NONE;
    if (!rc && inside && !s->host) be_upload(s->be, zv, z, N * sizeof(float));
    if (!rc && !inside && !(rc = sampler_buf_open(s, &bz, z, N, 1, err))) zv = bz.v;
    if (!rc) rc = sampler_invert_dev(s, zv, from, n, ctx, bl.v, err);
    int rc2 = sampler_buf_close(s, &bl, levels_out, LN, !rc, rc ? NULL : err);
    if (!rc) rc = rc2;
    rc2 = sampler_buf_close(s, &bz, z, N, !rc, rc ? NULL : err);
    return rc ? rc : rc2;
}

int sampler_denoise(sampler *s, float *z, int from, int to, const float *cond,
                    const float *uncond, float guidance, oir_error *err) {
    sampler_buf bz;
    int rc = sampler_buf_open(s, &bz, z, s->lat_n, 1, err);
    if (rc) return rc;
    rc = sampler_denoise_dev(s, bz.v, from, to, cond, uncond, guidance, err);
    int rc2 = sampler_buf_close(s, &bz, z, s->lat_n, !rc, rc ? NULL : err);
    return rc ? rc : rc2;
}
