/* The models on the backend table (issue 15, phase 2): the tiny model's
 * UNet, VAE and text encoder and the tiny scorer CLIP on every built
 * backend against the CPU backend, and the device errors. Thresholds
 * (normalised MSE, sum (got - ref)^2 / sum ref^2):
 *   UNet noise prediction on Vulkan vs CPU        <= 1e-8
 *   its "mid" tap and a cross-attention capture    <= 1e-8 (read back
 *   from the device: a download per tap / captured layer)
 *   a guided generation through the sampler (16x16, 2 and 4 steps) on
 *   Vulkan vs the host loop on the CPU                 <= 1e-6; its bus:
 *   one latent downloaded whatever the step count, one uploaded (the
 *   contexts are not sent again)
 *   the sampler's noise prediction of k + 1 rows on a Vulkan backend whose
 *   view range (OIR_VULKAN_MAX_RANGE) holds the weights and k rows' views
 *   but not k + 1's: calls of k and 1 (the budget's batch: more) vs the
 *   CPU <= 1e-8; the unsplit forward refused
 *   (the CPU: bit-identical to the host loop, unet_forward + ddim_guidance
 *   + ddim_step)
 *   VAE encode (mean) and decode, B 2 at 16x16     <= 1e-8 (decode: its
 *   "decoder.mid" tap too; the mid attention runs as q k^T, softmax, @ v
 *   on a device)
 *   CLIP text, B 2 x 77 tokens (a short prompt padded with the end token,
 *   a long one; causal): last hidden, pooled     <= 1e-8; the scorer's
 *   text tower's text_embeds                     <= 1e-8
 *   CLIP vision, B 2, without and with a key mask (one row's mask empty:
 *   every token sees the class token alone): last hidden, pooled,
 *   image_embeds                                 <= 1e-8
 *   one-pair OIR edit of the demo scene (16x16, T = 3, the CLI with
 *   --device vulkan vs --device cpu; every model on the device, as
 *   report.json's "device" says): the same chosen step, and the edited
 *   working image within 2/255 per channel (8-bit PNG).
 * Each model rebound onto the CPU is bit-identical to its first CPU run.
 * lavapipe runs the shaders 100-300x slower than the CPU kernels (README,
 * "GPU backend"), so the edit is the smallest that still searches: about
 * 25 s on the 2-core development machine, 15 UNet rows; the file about
 * 40 s.
 * (fp32 everywhere; the differences are summation order: tiled GEMM,
 * online softmax, the upsampler's nearest 2x + 3x3 conv against the CPU's
 * four 2x2 phase kernels). OIR_TEST_VULKAN=skip skips Vulkan;
 * OIR_TEST_VULKAN=N tests vulkan:N. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/backend.h"
#include "core/clock.h"
#include "core/noise.h"
#include <cjson/cJSON.h>

#include "cli_runner.h"
#include "diffusion/sampler.h"
#include "harness.h"
#include "io/image.h"
#include "models/loader.h"
#include "models/attn_capture.h"
#include "models/unet.h"
#include "models/vae.h"

#define UNET_NMSE 1e-8
#define VAE_NMSE 1e-8
#define CLIP_NMSE 1e-8

static double nmse(const float *got, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        if (!isfinite(got[i])) return INFINITY;
        num += d * d, den += (double)ref[i] * ref[i];
    }
    return den > 0 ? num / den : num;
}

typedef struct {
    int B, h, w, L;
    float *x, *t, *ctx;
    size_t out_n;
} unet_case;

static void case_init(unet_case *c, const unet_model *m, int B, int h, int w, int L) {
    c->B = B, c->h = h, c->w = w, c->L = L;
    size_t xn = (size_t)B * m->cfg.in_channels * h * w, cn = (size_t)L * m->cfg.cross_attention_dim;
    c->x = malloc(xn * sizeof(float));
    c->t = malloc((size_t)B * sizeof(float));
    c->ctx = malloc((size_t)B * cn * sizeof(float));
    noise_gaussian(c->x, xn, 11);
    for (int b = 0; b < B; b++) c->t[b] = (float)(999 - 97 * b);
    /* rows 0 and 2 share a context (the projected-once path), row 1 differs */
    for (int b = 0; b < B; b++) noise_gaussian(c->ctx + b * cn, cn, b == 2 ? 100 : 100 + b);
    c->out_n = (size_t)B * m->cfg.out_channels * h * w;
}

static void case_free(unet_case *c) { free(c->x), free(c->t), free(c->ctx); }

/* The "mid" tap, copied out. */
typedef struct {
    float *mid;
    size_t n;
} tap_rec;

static void tap_fn(void *user, const char *name, const float *data, size_t n) {
    tap_rec *r = user;
    if (strcmp(name, "mid") || r->mid) return;
    r->mid = malloc(n * sizeof(float));
    if (r->mid) memcpy(r->mid, data, n * sizeof(float)), r->n = n;
}

static int run(const unet_model *m, const unet_case *c, float *out, double *secs, tap_rec *rec,
               attn_capture *cap, oir_error *err) {
    arena a;
    int rc = arena_init(&a, unet_arena_bytes(m, c->B, c->h, c->w, c->L), err);
    if (rc) return rc;
    unet_tap tap = {tap_fn, rec};
    double t0 = clock_wall_s();
    rc = unet_forward_capture(m, &a, c->x, c->t, c->ctx, c->B, c->h, c->w, c->L, out, rec ? &tap : NULL, cap, err);
    *secs = clock_wall_s() - t0;
    arena_free(&a);
    return rc;
}

static void t_unet(sd_model *sd, oir_backend *vk) {
    unet_model *m = sd->unet;
    oir_error err = {0};
    unet_case c;
    case_init(&c, m, 3, 8, 8, 77);
    float *ref = calloc(c.out_n, sizeof(float)), *got = calloc(c.out_n, sizeof(float));
    double tc = 0, tv = 0;
    tap_rec rc_cpu = {0}, rc_vk = {0};
    attn_capture cap_cpu, cap_vk;
    int tokens[2] = {1, 2};
    CHECK(!attn_capture_init(&cap_cpu, c.h, c.w, c.L, tokens, 2, ATTN_CAPTURE_ALL_ROWS, 1, &err) &&
              !attn_capture_init(&cap_vk, c.h, c.w, c.L, tokens, 2, ATTN_CAPTURE_ALL_ROWS, 1, &err),
          "captures: %s", err.message);
    CHECK(!strcmp(unet_backend_name(m), "cpu"), "a loaded UNet runs on the CPU: %s", unet_backend_name(m));
    if (!CHECK(!run(m, &c, ref, &tc, &rc_cpu, &cap_cpu, &err), "unet on the CPU: %s", err.message)) goto done;
    if (vk) {
        if (!CHECK(!unet_bind(m, vk, &err), "unet onto %s: %s", vk->name, err.message)) goto done;
        CHECK(unet_backend(m) == vk, "the UNet is on %s", vk->name);
        if (CHECK(!run(m, &c, got, &tv, &rc_vk, &cap_vk, &err), "unet on %s: %s", vk->name, err.message)) {
            size_t mn = (size_t)c.h * c.w;
            if (CHECK(rc_cpu.mid && rc_vk.mid && rc_cpu.n == rc_vk.n, "the mid tap on both"))
                CHECK(nmse(rc_vk.mid, rc_cpu.mid, rc_cpu.n) <= UNET_NMSE, "mid tap on %s vs the CPU: NMSE %.3g",
                      vk->name, nmse(rc_vk.mid, rc_cpu.mid, rc_cpu.n));
            CHECK(cap_vk.n_added == cap_cpu.n_added && cap_cpu.n_added > 0, "capture: %d maps on %s, %d on the CPU",
                  cap_vk.n_added, vk->name, cap_cpu.n_added);
            CHECK(nmse(cap_vk.map, cap_cpu.map, mn) <= UNET_NMSE, "capture map on %s vs the CPU: NMSE %.3g", vk->name,
                  nmse(cap_vk.map, cap_cpu.map, mn));
            double e = nmse(got, ref, c.out_n);
            CHECK(e <= UNET_NMSE, "unet (B 3, 8x8 latent) on %s vs the CPU: NMSE %.3g (<= %g)", vk->name, e,
                  UNET_NMSE);
            printf("  unet B 3, 8x8: cpu %.3f s, %s %.3f s, NMSE %.3g\n", tc, vk->name, tv, e);
        }
    }
    /* back onto the CPU: bit-identical to the first CPU run */
    if (CHECK(!unet_bind(m, NULL, &err), "unet back onto the CPU: %s", err.message) &&
        CHECK(!run(m, &c, got, &tc, NULL, NULL, &err), "unet on the CPU again: %s", err.message))
        CHECK(!memcmp(got, ref, c.out_n * sizeof(float)), "rebound onto the CPU: bit-identical to the first run");
done:
    free(ref), free(got);
    free(rc_cpu.mid), free(rc_vk.mid);
    attn_capture_free(&cap_cpu), attn_capture_free(&cap_vk);
    case_free(&c);
}

/* The guided generation loop written out on host arrays, as the sampler
 * ran it before its loops moved onto the backend: the reference. */
static int host_generation(sampler *s, float *z, int from, const float *cond, const float *uncond, float g,
                           oir_error *err) {
    size_t n = s->lat_n, cn = (size_t)s->ctx_len * s->ctx_dim;
    float *x2 = malloc(2 * n * sizeof(float)), *e2 = malloc(2 * n * sizeof(float)), *e = malloc(n * sizeof(float));
    float *c2 = malloc(2 * cn * sizeof(float));
    arena a = {0};
    int rc = arena_init(&a, unet_arena_bytes(s->model->unet, 2, s->lat_h, s->lat_w, s->ctx_len), err);
    if (!x2 || !e2 || !e || !c2) rc = rc ? rc : OIR_E_NOMEM;
    if (!rc) memcpy(c2, cond, cn * sizeof(float)), memcpy(c2 + cn, uncond, cn * sizeof(float));
    for (int level = from; level > 0 && !rc; level--) {
        int64_t t = sampler_denoise_timestep(s, level);
        float ts[2] = {(float)t, (float)t};
        memcpy(x2, z, n * sizeof(float)), memcpy(x2 + n, z, n * sizeof(float));
        rc = unet_forward(s->model->unet, &a, x2, ts, c2, 2, s->lat_h, s->lat_w, s->ctx_len, e2, err);
        if (!rc) ddim_guidance(e, e2 + n, e2, g, n);
        if (!rc) rc = ddim_step(&s->sched, z, e, &t, z, 1, n, NULL, err);
    }
    arena_free(&a);
    free(x2), free(e2), free(e), free(c2);
    return rc;
}

/* A guided generation of N steps through the sampler: on the CPU
 * bit-identical to the host loop; on a device the same within NMSE 1e-6,
 * with one latent downloaded (the result) whatever N, and the latent
 * uploaded once (the contexts are already there from a warm-up). */
static void t_generation(sd_model *sd, oir_backend *vk) {
    oir_error err = {0};
    sampler s;
    if (!CHECK(!sampler_init(&s, sd, 16, 4, 0, &err), "sampler: %s", err.message)) return;
    size_t n = s.lat_n, cn = (size_t)s.ctx_len * s.ctx_dim;
    float *cond = malloc(cn * sizeof(float)), *uncond = malloc(cn * sizeof(float));
    float *z0 = malloc(n * sizeof(float)), *ref[2] = {malloc(n * sizeof(float)), malloc(n * sizeof(float))};
    float *got = malloc(n * sizeof(float));
    noise_gaussian(z0, n, 7);
    int steps[2] = {2, 4};
    if (!CHECK(!sampler_encode_prompt(&s, "a red circle on the left", cond, &err) &&
                   !sampler_encode_prompt(&s, "", uncond, &err),
               "prompts: %s", err.message))
        goto done;
    for (int i = 0; i < 2; i++) {
        memcpy(ref[i], z0, n * sizeof(float));
        memcpy(got, z0, n * sizeof(float));
        CHECK(!host_generation(&s, ref[i], steps[i], cond, uncond, 7.5f, &err), "host loop: %s", err.message);
        CHECK(!sampler_denoise(&s, got, steps[i], 0, cond, uncond, 7.5f, &err), "sampler on the CPU: %s",
              err.message);
        CHECK(!memcmp(got, ref[i], n * sizeof(float)), "%d-step generation on the CPU backend: bit-identical to "
              "the host loop", steps[i]);
    }
    sampler_free(&s);
    if (!vk) goto done;
    if (!CHECK(!unet_bind(sd->unet, vk, &err), "unet onto %s: %s", vk->name, err.message)) goto done;
    if (!CHECK(!sampler_init(&s, sd, 16, 4, 0, &err), "sampler on %s: %s", vk->name, err.message)) goto rebind;
    /* a 1-step warm-up sends the contexts and the UNet's first-forward buffers */
    memcpy(got, z0, n * sizeof(float));
    CHECK(!sampler_denoise(&s, got, 1, 0, cond, uncond, 7.5f, &err), "warm-up on %s: %s", vk->name, err.message);
    for (int i = 0; i < 2; i++) {
        unsigned long long up0 = vk->bytes_uploaded, down0 = vk->bytes_downloaded;
        memcpy(got, z0, n * sizeof(float));
        if (!CHECK(!sampler_denoise(&s, got, steps[i], 0, cond, uncond, 7.5f, &err), "sampler on %s: %s",
                   vk->name, err.message))
            break;
        unsigned long long up = vk->bytes_uploaded - up0, down = vk->bytes_downloaded - down0;
        double e = nmse(got, ref[i], n);
        CHECK(e <= 1e-6, "%d-step generation on %s vs the CPU: NMSE %.3g (<= 1e-6)", steps[i], vk->name, e);
        CHECK(down == n * sizeof(float), "%d steps on %s downloaded %llu bytes: one latent (%zu), not one per step",
              steps[i], vk->name, down, n * sizeof(float));
        CHECK(up == n * sizeof(float), "%d steps on %s uploaded %llu bytes: the latent (%zu), the contexts "
              "already there", steps[i], vk->name, up, n * sizeof(float));
        printf("  generation of %d steps on %s: %llu bytes up, %llu down, NMSE %.3g\n", steps[i], vk->name, up,
               down, e);
    }
    sampler_free(&s);
rebind:
    CHECK(!unet_bind(sd->unet, NULL, &err), "unet back onto the CPU: %s", err.message);
done:
    free(cond), free(uncond), free(z0), free(ref[0]), free(ref[1]), free(got);
}

/* Bytes of the tiny UNet's largest weight (its convolutions dominate):
 * fixed views that no split makes smaller, so the test's range holds them. */
static size_t conv_bytes(const sd_conv *c) { return (size_t)c->c_in * c->c_out * c->k * c->k * sizeof(float); }
static size_t largest_weight_bytes(const unet_model *m) {
    size_t w = 0;
    for (int i = 0; i < m->cfg.n_blocks; i++) {
        for (int j = 0; j < m->down[i].n_layers; j++)
            w = fmax(w, fmax(conv_bytes(&m->down[i].resnets[j].conv1), conv_bytes(&m->down[i].resnets[j].conv2)));
        for (int j = 0; j < m->up[i].n_layers; j++)
            w = fmax(w, fmax(conv_bytes(&m->up[i].resnets[j].conv1), conv_bytes(&m->up[i].resnets[j].conv2)));
        if (m->up[i].has_upsample) w = fmax(w, conv_bytes(&m->up[i].upsample));
        if (m->down[i].has_downsample) w = fmax(w, conv_bytes(&m->down[i].downsample));
    }
    for (int j = 0; j < 2 && m->cfg.has_mid; j++)
        w = fmax(w, fmax(conv_bytes(&m->mid_resnets[j].conv1), conv_bytes(&m->mid_resnets[j].conv2)));
    return w;
}

/* The sampler splits its UNet calls by the device's view range: on a
 * Vulkan backend whose range (OIR_VULKAN_MAX_RANGE) holds the weights and
 * the largest views of k rows but not of k + 1, the noise prediction of
 * k + 1 rows (sampler_eps, one branch) runs in calls of k and 1 (the
 * budget's batch: more) and equals the unsplit CPU run within NMSE 1e-8,
 * the UNet's tolerance; the unsplit (k + 1)-row forward is refused there.
 * The range sits just above k rows' largest view, so an operand that
 * unet_max_view_bytes missed would be refused too. */
static void t_split_range(sd_model *sd) {
    oir_error err = {0};
    sampler s;
    if (!CHECK(!sampler_init(&s, sd, 16, 2, 0, &err), "sampler: %s", err.message)) return;
    int budget_batch = s.max_unet_batch, lh = s.lat_h, lw = s.lat_w, L = s.ctx_len;
    size_t n = s.lat_n, cn = (size_t)L * s.ctx_dim;
    size_t range = (largest_weight_bytes(sd->unet) + 256 + 255) / 256 * 256; /* the backend rounds down to 256 */
    int k = unet_max_rows_for_range(sd->unet, lh, lw, L, range), B = k + 1;
    float *cond = malloc(cn * sizeof(float)), *x = malloc(B * n * sizeof(float));
    float *ref = malloc(B * n * sizeof(float)), *got = malloc(B * n * sizeof(float));
    float *ctx = malloc(B * cn * sizeof(float));
    const float **conds = malloc(B * sizeof *conds);
    int64_t *t = malloc(B * sizeof *t);
    oir_backend *small = NULL;
    arena a = {0};
    int ok = cond && x && ref && got && ctx && conds && t &&
             CHECK(!sampler_encode_prompt(&s, "a red circle on the left", cond, &err), "prompt: %s", err.message);
    for (int b = 0; ok && b < B; b++)
        conds[b] = cond, t[b] = 981 - 40 * b, memcpy(ctx + b * cn, cond, cn * sizeof(float));
    if (ok) noise_gaussian(x, B * n, 11);
    ok = ok && CHECK(!sampler_eps(&s, x, t, conds, NULL, 1.0f, B, ref, &err), "eps on the CPU: %s", err.message);
    sampler_free(&s);
    if (!ok) goto done;
    size_t view_k = unet_max_view_bytes(sd->unet, k, lh, lw, L), view_b = unet_max_view_bytes(sd->unet, B, lh, lw, L);
    if (!CHECK(k >= 2 && view_k + 256 <= range && view_b + 256 > range && B <= budget_batch,
               "a range of %zu bytes holds %d rows (largest view %zu) but not %d (%zu); budget batch %d", range, k,
               view_k, B, view_b, budget_batch))
        goto done;
    CHECK(unet_max_rows_for_range(sd->unet, lh, lw, L, 0) >= budget_batch, "no range: no row limit");
    char env[32];
    snprintf(env, sizeof env, "%zu", range);
    setenv("OIR_VULKAN_MAX_RANGE", env, 1);
    be_device_spec spec = {BE_VULKAN, getenv("OIR_TEST_VULKAN") ? atoi(getenv("OIR_TEST_VULKAN")) : 0, 0};
    int made = be_create(&small, &spec, &err);
    unsetenv("OIR_VULKAN_MAX_RANGE");
    if (!CHECK(!made, "vulkan with a %zu-byte range: %s", range, err.message)) goto done;
    CHECK(small->max_view_bytes == range, "the backend's view range %zu == %zu", small->max_view_bytes, range);
    if (!CHECK(!unet_bind(sd->unet, small, &err), "unet onto %s: %s", small->name, err.message)) goto done;
    /* unsplit, the B rows' forward is refused */
    float ts[64];
    for (int b = 0; b < B && b < 64; b++) ts[b] = (float)t[b];
    int refused = B > 64 || arena_init(&a, 64, &err) ||
                  unet_forward(sd->unet, &a, x, ts, ctx, B, lh, lw, L, got, &err) != OIR_OK;
    CHECK(refused && strstr(err.message, "maxStorageBufferRange"), "a %d-row forward under a %zu-byte range is "
          "refused: %s", B, range, refused ? err.message : "it ran");
    if (CHECK(!sampler_init(&s, sd, 16, 2, 0, &err), "sampler on %s: %s", small->name, err.message)) {
        CHECK(s.max_unet_batch == k && k < budget_batch, "the range caps the sampler's batch: %d == %d (the budget's "
              "%d)", s.max_unet_batch, k, budget_batch);
        if (CHECK(!sampler_eps(&s, x, t, conds, NULL, 1.0f, B, got, &err), "split eps on %s: %s", small->name,
                  err.message)) {
            double e = nmse(got, ref, B * n);
            CHECK(e <= UNET_NMSE, "%d rows in calls of %d under the range vs the CPU: NMSE %.3g (<= %g)", B, k, e,
                  UNET_NMSE);
            printf("  eps of %d rows under a %zu-byte view range: calls of %d (budget %d), NMSE %.3g\n", B, range,
                   s.max_unet_batch, budget_batch, e);
        }
        sampler_free(&s);
    }
    CHECK(!unet_bind(sd->unet, NULL, &err), "unet back onto the CPU: %s", err.message);
done:
    arena_free(&a);
    if (small) be_destroy(small);
    free(cond), free(x), free(ref), free(got), free(ctx), free(conds), free(t);
}

/* ---- VAE ---------------------------------------------------------------- */

typedef struct {
    float *mid;
    size_t n;
} vae_rec;

static void vae_tap_fn(void *user, const char *name, const float *data, size_t n) {
    vae_rec *r = user;
    if (strcmp(name, "decoder.mid") || r->mid) return;
    r->mid = malloc(n * sizeof(float));
    if (r->mid) memcpy(r->mid, data, n * sizeof(float)), r->n = n;
}

/* encode, then decode what the CPU encoded (so the decode compares alone) */
static int vae_run(const vae_model *m, const float *img, int B, int H, const float *lat_in, float *mean, float *dec,
                   vae_rec *rec, oir_error *err) {
    int f = vae_downscale(&m->cfg);
    arena a;
    int rc = arena_init(&a, vae_arena_bytes(m, B, H, H), err);
    if (rc) return rc;
    vae_tap tap = {vae_tap_fn, rec};
    rc = vae_encode_mean(m, &a, img, B, H, H, mean, err);
    if (!rc) rc = vae_decode_tap(m, &a, lat_in ? lat_in : mean, B, H / f, H / f, dec, rec ? &tap : NULL, err);
    arena_free(&a);
    return rc;
}

static void t_vae(sd_model *sd, oir_backend *vk) {
    vae_model *m = sd->vae;
    oir_error err = {0};
    int B = 2, H = 16, f = vae_downscale(&m->cfg);
    size_t ni = (size_t)B * 3 * H * H, nl = (size_t)B * m->cfg.latent_channels * (H / f) * (H / f);
    float *img = malloc(ni * sizeof(float)), *mean = calloc(nl, sizeof(float)), *dec = calloc(ni, sizeof(float));
    float *mean2 = calloc(nl, sizeof(float)), *dec2 = calloc(ni, sizeof(float));
    noise_gaussian(img, ni, 21);
    for (size_t i = 0; i < ni; i++) img[i] *= 0.5f;
    vae_rec rc_cpu = {0}, rc_vk = {0};
    CHECK(!strcmp(vae_backend_name(m), "cpu"), "a loaded VAE runs on the CPU: %s", vae_backend_name(m));
    if (!CHECK(!vae_run(m, img, B, H, NULL, mean, dec, &rc_cpu, &err), "vae on the CPU: %s", err.message)) goto done;
    if (vk) {
        if (!CHECK(!vae_bind(m, vk, &err), "vae onto %s: %s", vk->name, err.message)) goto done;
        CHECK(vae_backend(m) == vk, "the VAE is on %s", vk->name);
        double t0 = clock_wall_s();
        if (CHECK(!vae_run(m, img, B, H, mean, mean2, dec2, &rc_vk, &err), "vae on %s: %s", vk->name, err.message)) {
            double e1 = nmse(mean2, mean, nl), e2 = nmse(dec2, dec, ni);
            CHECK(e1 <= VAE_NMSE, "vae encode (B 2, 16x16) on %s vs the CPU: NMSE %.3g (<= %g)", vk->name, e1,
                  VAE_NMSE);
            CHECK(e2 <= VAE_NMSE, "vae decode (B 2, 16x16) on %s vs the CPU: NMSE %.3g (<= %g)", vk->name, e2,
                  VAE_NMSE);
            if (CHECK(rc_cpu.mid && rc_vk.mid && rc_cpu.n == rc_vk.n, "the decoder.mid tap on both"))
                CHECK(nmse(rc_vk.mid, rc_cpu.mid, rc_cpu.n) <= VAE_NMSE, "decoder.mid tap on %s: NMSE %.3g",
                      vk->name, nmse(rc_vk.mid, rc_cpu.mid, rc_cpu.n));
            printf("  vae B 2, 16x16: %s %.2f s, NMSE encode %.3g, decode %.3g\n", vk->name, clock_wall_s() - t0, e1,
                   e2);
        }
    }
    if (CHECK(!vae_bind(m, NULL, &err), "vae back onto the CPU: %s", err.message) &&
        CHECK(!vae_run(m, img, B, H, NULL, mean2, dec2, NULL, &err), "vae on the CPU again: %s", err.message))
        CHECK(!memcmp(mean2, mean, nl * sizeof(float)) && !memcmp(dec2, dec, ni * sizeof(float)),
              "vae rebound onto the CPU: bit-identical to the first run");
done:
    free(img), free(mean), free(dec), free(mean2), free(dec2), free(rc_cpu.mid), free(rc_vk.mid);
}

/* ---- CLIP ----------------------------------------------------------------- */

#define CT 77

/* Row 0: a short prompt padded with the end token (the highest id); row 1:
 * a long one. */
static void clip_ids(int32_t *ids, int vocab) {
    int eot = vocab - 1, bos = vocab - 2;
    for (int b = 0; b < 2; b++) {
        int len = b ? 70 : 6;
        for (int t = 0; t < CT; t++)
            ids[b * CT + t] = t == 0 ? bos : t < len ? 1 + (37 * t + 11 * b) % (vocab - 3) : eot;
    }
}

typedef struct {
    float *last, *pooled, *embeds;
    size_t nl, np, ne;
} clip_out;

static void clip_out_init(clip_out *o, size_t nl, size_t np, size_t ne) {
    o->nl = nl, o->np = np, o->ne = ne;
    o->last = calloc(nl, sizeof(float)), o->pooled = calloc(np, sizeof(float));
    o->embeds = ne ? calloc(ne, sizeof(float)) : NULL;
}
static void clip_out_free(clip_out *o) { free(o->last), free(o->pooled), free(o->embeds); }

static int clip_same(const clip_out *a, const clip_out *b) {
    return !memcmp(a->last, b->last, a->nl * 4) && !memcmp(a->pooled, b->pooled, a->np * 4) &&
           (!a->ne || !memcmp(a->embeds, b->embeds, a->ne * 4));
}

static void clip_compare(const clip_out *got, const clip_out *ref, const char *what, const char *dev) {
    double e1 = nmse(got->last, ref->last, ref->nl), e2 = nmse(got->pooled, ref->pooled, ref->np);
    double e3 = ref->ne ? nmse(got->embeds, ref->embeds, ref->ne) : 0;
    CHECK(e1 <= CLIP_NMSE && e2 <= CLIP_NMSE && e3 <= CLIP_NMSE,
          "%s on %s vs the CPU: NMSE last hidden %.3g, pooled %.3g, embeds %.3g (<= %g)", what, dev, e1, e2, e3,
          CLIP_NMSE);
    printf("  %s on %s: NMSE last hidden %.3g, pooled %.3g, embeds %.3g\n", what, dev, e1, e2, e3);
}

static int text_run(const clip_text_model *m, const int32_t *ids, clip_out *o, oir_error *err) {
    arena a;
    int rc = arena_init(&a, clip_text_arena_bytes(clip_text_get_config(m), 2, CT), err);
    if (!rc) rc = clip_text_forward(m, &a, ids, 2, CT, o->last, o->pooled, o->embeds, err);
    arena_free(&a);
    return rc;
}

/* m: the SD text encoder (no projection) or the scorer's text tower. */
static void t_clip_text(clip_text_model *m, oir_backend *vk, const char *what) {
    oir_error err = {0};
    const clip_text_config *c = clip_text_get_config(m);
    int32_t ids[2 * CT];
    clip_ids(ids, c->vocab_size);
    int proj = !strcmp(what, "scorer clip text");
    clip_out ref, got;
    size_t D = (size_t)c->hidden_size;
    clip_out_init(&ref, 2 * CT * D, 2 * D, proj ? 2 * (size_t)c->projection_dim : 0);
    clip_out_init(&got, 2 * CT * D, 2 * D, proj ? 2 * (size_t)c->projection_dim : 0);
    if (!CHECK(!text_run(m, ids, &ref, &err), "%s on the CPU: %s", what, err.message)) goto done;
    if (vk) {
        if (!CHECK(!clip_text_bind(m, vk, &err), "%s onto %s: %s", what, vk->name, err.message)) goto done;
        CHECK(clip_text_backend(m) == vk, "%s is on %s", what, vk->name);
        if (CHECK(!text_run(m, ids, &got, &err), "%s on %s: %s", what, vk->name, err.message))
            clip_compare(&got, &ref, what, vk->name);
    }
    if (CHECK(!clip_text_bind(m, NULL, &err), "%s back onto the CPU: %s", what, err.message) &&
        CHECK(!text_run(m, ids, &got, &err), "%s on the CPU again: %s", what, err.message))
        CHECK(clip_same(&got, &ref), "%s rebound onto the CPU: bit-identical to the first run", what);
done:
    clip_out_free(&ref), clip_out_free(&got);
}

static int vision_run(const clip_vision_model *m, const float *px, const uint8_t *pm, clip_out *o, oir_error *err) {
    const clip_vision_config *c = clip_vision_get_config(m);
    arena a;
    int rc = arena_init(&a, clip_vision_arena_bytes(c, 2), err);
    if (!rc)
        rc = clip_vision_forward(m, &a, px, 2, c->image_size, c->image_size, pm, o->last, o->pooled, o->embeds, err);
    arena_free(&a);
    return rc;
}

static void t_clip_vision(clip_vision_model *m, oir_backend *vk) {
    oir_error err = {0};
    const clip_vision_config *c = clip_vision_get_config(m);
    int S = c->image_size, G = clip_vision_grid(c), N = 1 + G * G;
    size_t D = (size_t)c->hidden_size, np = (size_t)2 * 3 * S * S;
    float *px = malloc(np * sizeof(float));
    uint8_t *pm = calloc((size_t)2 * G * G, 1);
    noise_gaussian(px, np, 31);
    for (int i = 0; i < G * G; i++) pm[i] = (i % G) < G / 2 && (i / G) > 1; /* row 0: a block; row 1: empty */
    clip_out ref[2], got[2];
    for (int k = 0; k < 2; k++) {
        clip_out_init(&ref[k], 2 * N * D, 2 * D, 2 * (size_t)c->projection_dim);
        clip_out_init(&got[k], 2 * N * D, 2 * D, 2 * (size_t)c->projection_dim);
    }
    const char *what[2] = {"clip vision", "clip vision, key mask"};
    for (int k = 0; k < 2; k++)
        if (!CHECK(!vision_run(m, px, k ? pm : NULL, &ref[k], &err), "%s on the CPU: %s", what[k], err.message))
            goto done;
    CHECK(nmse(ref[1].embeds, ref[0].embeds, ref[0].ne) > 1e-4, "the key mask changes the image embeddings");
    if (vk) {
        if (!CHECK(!clip_vision_bind(m, vk, &err), "clip vision onto %s: %s", vk->name, err.message)) goto done;
        CHECK(clip_vision_backend(m) == vk, "clip vision is on %s", vk->name);
        for (int k = 0; k < 2; k++)
            if (CHECK(!vision_run(m, px, k ? pm : NULL, &got[k], &err), "%s on %s: %s", what[k], vk->name,
                      err.message))
                clip_compare(&got[k], &ref[k], what[k], vk->name);
    }
    if (CHECK(!clip_vision_bind(m, NULL, &err), "clip vision back onto the CPU: %s", err.message) &&
        CHECK(!vision_run(m, px, pm, &got[1], &err), "clip vision on the CPU again: %s", err.message))
        CHECK(clip_same(&got[1], &ref[1]), "clip vision rebound onto the CPU: bit-identical to the first run");
done:
    for (int k = 0; k < 2; k++) clip_out_free(&ref[k]), clip_out_free(&got[k]);
    free(px), free(pm);
}

/* A pipeline loaded onto vulkan:N: every model on that one backend, and
 * the scorer CLIP shares it; each says so. */
static void t_device_names(const char *dev) {
    oir_error err = {0};
    sd_load_params p = sd_load_default_params();
    p.device = dev;
    sd_model *m = NULL;
    clip_model *cm = NULL;
    if (!CHECK(!sd_model_load(&m, "models/tiny-shapes", &p, &err), "load onto %s: %s", dev, err.message)) return;
    const char *comp[3] = {"unet", "vae", "text_encoder"};
    for (int i = 0; i < 3; i++)
        CHECK(!strcmp(sd_model_device(m, comp[i]), dev), "%s on %s reports \"%s\"", comp[i], dev,
              sd_model_device(m, comp[i]));
    CHECK(unet_backend(m->unet) == m->backend && vae_backend(m->vae) == m->backend &&
              clip_text_backend(m->text_encoder) == m->backend,
          "one backend for the UNet, the VAE and the text encoder");
    if (CHECK(!clip_model_load(&cm, "models/tiny-clip", &err), "tiny clip: %s", err.message)) {
        CHECK(!strcmp(clip_model_device(cm), "cpu"), "a loaded CLIP reports \"cpu\": %s", clip_model_device(cm));
        if (CHECK(!clip_model_share_device(cm, m, &err), "clip onto %s: %s", dev, err.message))
            CHECK(!strcmp(clip_model_device(cm), dev) && clip_text_backend(cm->text) == m->backend &&
                      clip_vision_backend(cm->vision) == m->backend,
                  "the scorer CLIP shares the pipeline's backend and reports \"%s\"", clip_model_device(cm));
    }
    clip_model_free(cm); /* before the backend m owns */
    sd_model_free(m);
}

static void t_device_errors(void) {
    oir_error err = {0};
    sd_load_params p = sd_load_default_params();
    sd_model *m = NULL;
    p.device = "gpu";
    int rc = sd_model_load(&m, "models/tiny-shapes", &p, &err);
    CHECK(rc == OIR_E_ARG && !m && strstr(err.message, "expected cpu, vulkan or vulkan:N"),
          "device \"gpu\" is refused: %d '%s'", rc, err.message);
    p.device = "vulkan:15";
    rc = sd_model_load(&m, "models/tiny-shapes", &p, &err);
    CHECK(rc == OIR_E_UNSUPPORTED && !m && strstr(err.message, "vulkan:15"),
          "a device that is not there is refused, naming it: %d '%s'", rc, err.message);
    p.device = "cpu";
    rc = sd_model_load(&m, "models/tiny-shapes", &p, &err);
    if (CHECK(!rc, "device cpu loads: %s", err.message))
        CHECK(!strcmp(sd_model_device(m, "unet"), "cpu") && !strcmp(sd_model_device(m, "vae"), "cpu") &&
                  !strcmp(sd_model_device(m, "text_encoder"), "cpu"),
              "on the CPU: unet %s, vae %s, text_encoder %s", sd_model_device(m, "unet"), sd_model_device(m, "vae"),
              sd_model_device(m, "text_encoder"));
    sd_model_free(m);
}

/* report.json's pairs[i].chosen_step and device.{unet,vae,text_encoder,clip}. */
#define N_DEV 4
static const char *dev_models[N_DEV] = {"unet", "vae", "text_encoder", "clip"};
static int report_read(const char *dir, int *chosen, char dev[N_DEV][64]) {
    char path[700];
    snprintf(path, sizeof path, "%s/report.json", dir);
    static char buf[1 << 20];
    cr_read(path, buf, sizeof buf);
    cJSON *r = cJSON_Parse(buf);
    cJSON *p0 = r ? cJSON_GetArrayItem(cJSON_GetObjectItem(r, "pairs"), 0) : NULL;
    cJSON *cs = p0 ? cJSON_GetObjectItem(p0, "chosen_step") : NULL;
    int ok = cJSON_IsNumber(cs);
    if (ok) *chosen = cs->valueint;
    for (int i = 0; i < N_DEV; i++) {
        cJSON *du = r ? cJSON_GetObjectItem(cJSON_GetObjectItem(r, "device"), dev_models[i]) : NULL;
        ok = ok && cJSON_IsString(du);
        if (ok) snprintf(dev[i], 64, "%s", du->valuestring);
    }
    cJSON_Delete(r);
    return ok;
}

static int edit_on(const char *device, const char *out) {
    return cr_run("edit", "--image", "examples/shapes/demo.png", "--prompt",
                  "a red circle on the left and a blue triangle on the right on a gray background", "--pair",
                  "red circle->green square", "--mask", "examples/shapes/demo_mask0.png", "--steps", "3",
                  "--reassembly-step", "1", "--reinversion-steps", "1", "--size", "16", "--seed", "0", "--device",
                  device, "--quiet", "--out", out, NULL);
}

static void t_edit(const char *vk_device) {
    double t0 = clock_wall_s();
    int rc = edit_on("cpu", cr_path("cpu"));
    if (!CHECK(rc == 0, "oir edit --device cpu: exit %d: %s", rc, cr_err)) return;
    double tc = clock_wall_s() - t0;
    t0 = clock_wall_s();
    rc = edit_on(vk_device, cr_path("vk"));
    if (!CHECK(rc == 0, "oir edit --device %s: exit %d: %s", vk_device, rc, cr_err)) return;
    double tv = clock_wall_s() - t0;
    int sc = -1, sv = -2;
    char dc[N_DEV][64] = {""}, dv[N_DEV][64] = {""};
    if (CHECK(report_read(cr_path("cpu"), &sc, dc) && report_read(cr_path("vk"), &sv, dv),
              "report.json: pairs[0].chosen_step and device.{unet,vae,text_encoder,clip}")) {
        CHECK(sc == sv, "the same chosen step on the CPU (%d) and on %s (%d)", sc, vk_device, sv);
        for (int i = 0; i < N_DEV; i++)
            CHECK(!strcmp(dc[i], "cpu") && !strcmp(dv[i], vk_device), "report.json device.%s: %s, %s",
                  dev_models[i], dc[i], dv[i]);
    }
    image a = {0}, b = {0};
    oir_error err = {0};
    char pa[700], pb[700];
    snprintf(pa, sizeof pa, "%s/edited_working.png", cr_path("cpu"));
    snprintf(pb, sizeof pb, "%s/edited_working.png", cr_path("vk"));
    if (CHECK(!image_load(&a, pa, &err) && !image_load(&b, pb, &err), "edited images: %s", err.message) &&
        CHECK(a.width == b.width && a.height == b.height && a.channels == b.channels, "the same size")) {
        size_t n = (size_t)a.width * a.height * a.channels;
        float mx = 0;
        for (size_t i = 0; i < n; i++) mx = fmaxf(mx, fabsf(a.data[i] - b.data[i]));
        CHECK(mx <= 2.0f / 255 + 1e-6f, "edited image on %s vs the CPU: max difference %.0f/255 (<= 2)", vk_device,
              mx * 255);
        printf("  edit 16x16, T 3, one pair: cpu %.1f s, %s %.1f s, step %d / %d, max difference %.0f/255\n", tc,
               vk_device, tv, sc, sv, mx * 255);
    }
    image_free(&a), image_free(&b);
}

/* --device errors on the command line: one line, exit 1 or 2. */
static void t_cli_errors(void) {
    int rc = cr_run("edit", "--image", "examples/shapes/demo.png", "--prompt", "a red circle", "--pair",
                    "red circle->green square", "--mask", "examples/shapes/demo_mask0.png", "--device", "gpu", "--out",
                    cr_path("e1"), NULL);
    cr_expect_error("--device gpu", rc, "edit", "--device");
    rc = cr_run("edit", "--image", "examples/shapes/demo.png", "--prompt", "a red circle", "--pair",
                "red circle->green square", "--mask", "examples/shapes/demo_mask0.png", "--steps", "3", "--size", "16",
                "--device", "vulkan:9", "--out", cr_path("e2"), NULL);
    cr_expect_error("--device vulkan:9", rc, "edit", be_have_vulkan() ? "vulkan:9" : "no Vulkan in this build");
    setenv("OIR_DEVICE", "tpu", 1);
    rc = cr_run("mask", "--image", "examples/shapes/demo.png", "--prompt", "a red circle", "--pair",
                "red circle->green square", "--out", cr_path("m.png"), NULL);
    cr_expect_error("OIR_DEVICE=tpu", rc, "mask", "OIR_DEVICE");
    unsetenv("OIR_DEVICE");
}

int main(int argc, char **argv) {
    oir_error err = {0};
    oir_backend *vk = NULL;
    const char *sel = getenv("OIR_TEST_VULKAN");
    if (be_have_vulkan() && !(sel && !strcmp(sel, "skip"))) {
        be_device_spec spec = {BE_VULKAN, sel && *sel ? atoi(sel) : 0, 0};
        CHECK(!be_create(&vk, &spec, &err), "this build has Vulkan, but vulkan:%d cannot be created: %s "
              "(scripts/deps.sh installs lavapipe; OIR_TEST_VULKAN=skip skips)", spec.index, err.message);
    } else {
        printf("  %s\n", be_have_vulkan() ? "vulkan skipped (OIR_TEST_VULKAN=skip)" : "no Vulkan in this build");
    }
    sd_model *sd = NULL;
    if (CHECK(!sd_model_load(&sd, "models/tiny-shapes", NULL, &err), "tiny model: %s", err.message)) {
        t_unet(sd, vk);
        t_generation(sd, vk);
        if (vk) t_split_range(sd);
        t_vae(sd, vk);
        t_clip_text(sd->text_encoder, vk, "sd text encoder");
    }
    sd_model_free(sd); /* before the backend its models were last bound to... */
    clip_model *cm = NULL;
    if (CHECK(!clip_model_load(&cm, "models/tiny-clip", &err), "tiny clip: %s", err.message)) {
        t_clip_text(cm->text, vk, "scorer clip text");
        t_clip_vision(cm->vision, vk);
    }
    clip_model_free(cm);
    t_device_errors();
    if (!CHECK(!cr_init(argv[0]), "scratch folder")) return th_summary();
    t_cli_errors();
    if (vk) {
        char dev[32];
        snprintf(dev, sizeof dev, "vulkan:%s", sel && *sel ? sel : "0");
        t_device_names(dev);
        t_edit(dev);
    }
    cr_cleanup();
    if (vk) be_destroy(vk);
    return th_summary();
}
