/* The models on the backend table (issue 15, phase 2): the tiny model's
 * UNet on every built backend against the CPU backend, and the device
 * errors. Thresholds (normalised MSE, sum (got - ref)^2 / sum ref^2):
 *   UNet noise prediction on Vulkan vs CPU        <= 1e-8
 *   its "mid" tap and a cross-attention capture    <= 1e-8 (read back
 *   from the device: a download per tap / captured layer)
 *   a guided generation through the sampler (16x16, 2 and 4 steps) on
 *   Vulkan vs the host loop on the CPU                 <= 1e-6; its bus:
 *   one latent downloaded whatever the step count, one uploaded (the
 *   contexts are not sent again)
 *   (the CPU: bit-identical to the host loop, unet_forward + ddim_guidance
 *   + ddim_step)
 *   one-pair OIR edit of the demo scene (16x16, T = 3, the CLI with
 *   --device vulkan vs --device cpu): the same chosen step, and the edited
 *   working image within 2/255 per channel (8-bit PNG).
 * lavapipe runs the shaders 100-300x slower than the CPU kernels (README,
 * "GPU backend"), so the edit is the smallest that still searches: about
 * 30 s on the 2-core development machine, 15 UNet rows.
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

#define UNET_NMSE 1e-8

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
        CHECK(!strcmp(sd_model_device(m, "unet"), "cpu") && !strcmp(sd_model_device(m, "vae"), "cpu"),
              "on the CPU: unet %s, vae %s", sd_model_device(m, "unet"), sd_model_device(m, "vae"));
    sd_model_free(m);
}

/* report.json's pairs[i].chosen_step and device.unet. */
static int report_read(const char *dir, int *chosen, char *unet_dev, size_t cap) {
    char path[700];
    snprintf(path, sizeof path, "%s/report.json", dir);
    static char buf[1 << 20];
    cr_read(path, buf, sizeof buf);
    cJSON *r = cJSON_Parse(buf);
    cJSON *p0 = r ? cJSON_GetArrayItem(cJSON_GetObjectItem(r, "pairs"), 0) : NULL;
    cJSON *cs = p0 ? cJSON_GetObjectItem(p0, "chosen_step") : NULL;
    cJSON *du = r ? cJSON_GetObjectItem(cJSON_GetObjectItem(r, "device"), "unet") : NULL;
    int ok = cJSON_IsNumber(cs) && cJSON_IsString(du);
    if (ok) *chosen = cs->valueint, snprintf(unet_dev, cap, "%s", du->valuestring);
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
    char dc[64] = "", dv[64] = "";
    if (CHECK(report_read(cr_path("cpu"), &sc, dc, sizeof dc) && report_read(cr_path("vk"), &sv, dv, sizeof dv),
              "report.json: pairs[0].chosen_step and device.unet")) {
        CHECK(sc == sv, "the same chosen step on the CPU (%d) and on %s (%d)", sc, vk_device, sv);
        CHECK(!strcmp(dc, "cpu") && !strncmp(dv, "vulkan:", 7), "report.json device.unet: %s, %s", dc, dv);
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
    }
    sd_model_free(sd); /* before the backend its UNet was last bound to... */
    t_device_errors();
    if (!CHECK(!cr_init(argv[0]), "scratch folder")) return th_summary();
    t_cli_errors();
    if (vk) {
        char dev[32];
        snprintf(dev, sizeof dev, "vulkan:%s", sel && *sel ? sel : "0");
        t_edit(dev);
    }
    cr_cleanup();
    if (vk) be_destroy(vk);
    return th_summary();
}
