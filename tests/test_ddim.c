/* DDIM scheduler vs diffusers 0.16.1 (tests/fixtures/sd/ref_ddim.safetensors,
 * made by tools/fixtures/make_sd_fixtures.py).
 *
 * Tolerances:
 * - timesteps: exact.
 * - betas, alphas_cumprod: atol 1e-7, rtol 1e-6. torch's float32 linspace is
 *   vectorised (its rounding depends on the CPU's vector width), so a value
 *   may differ by an ulp or two; the cumulative product is exact otherwise.
 * - step / inversion step outputs: atol 1e-5, rtol 1e-5 (float32 arithmetic in
 *   torch's order; the residue comes from those 1-ulp alphabar differences,
 *   amplified by 1/sqrt(alphabar) ~ 15 at t = 981).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffusion/ddim.h"
#include "harness.h"

static int64_t *fixture_i64(st_file *f, const char *name, size_t *n) {
    const tensor *t = f ? st_find(f, name) : NULL;
    if (!CHECK(t && t->type == DT_I64, "ref_ddim: %s missing or not I64", name)) return NULL;
    *n = (size_t)tensor_numel(t);
    int64_t *v = malloc(*n * sizeof *v + 1);
    memcpy(v, t->data, *n * sizeof *v);
    return v;
}

static void test_config(void) {
    oir_error err = {0};
    ddim_config c;
    const char *path = th_fixture_path("sd/tiny-pipe/scheduler/scheduler_config.json");
    int rc = ddim_config_load(&c, path, &err);
    CHECK(rc == OIR_OK, "load %s: %s", path, err.message);
    if (rc == OIR_OK) {
        ddim_config sd1 = ddim_sd1_config();
        CHECK(c.num_train_timesteps == 1000 && c.steps_offset == 1 && !c.set_alpha_to_one &&
                  !c.clip_sample && c.beta_schedule == DDIM_BETA_SCALED_LINEAR,
              "tiny-pipe scheduler config fields");
        CHECK(fabs(c.beta_start - sd1.beta_start) < 1e-12 && fabs(c.beta_end - sd1.beta_end) < 1e-12,
              "tiny-pipe betas are SD 1.x's");
    }
    /* Absent keys take DDIMScheduler's defaults. */
    rc = ddim_config_parse(&c, "{\"_class_name\": \"PNDMScheduler\", \"skip_prk_steps\": true}", "t",
                           &err);
    CHECK(rc == OIR_OK && c.clip_sample == 1 && c.set_alpha_to_one == 1 && c.steps_offset == 0 &&
              c.beta_schedule == DDIM_BETA_LINEAR && fabs(c.beta_end - 0.02) < 1e-12,
          "defaults: %s", err.message);
    /* Refusals name the field. */
    rc = ddim_config_parse(&c, "{\"prediction_type\": \"v_prediction\"}", "sched.json", &err);
    CHECK(rc == OIR_E_UNSUPPORTED && strstr(err.message, "prediction_type") &&
              strstr(err.message, "v_prediction") && strstr(err.message, "sched.json"),
          "v_prediction refused: %s", err.message);
    rc = ddim_config_parse(&c, "{\"beta_schedule\": \"squaredcos_cap_v2\"}", "s", &err);
    CHECK(rc == OIR_E_UNSUPPORTED && strstr(err.message, "squaredcos_cap_v2"), "schedule: %s",
          err.message);
    rc = ddim_config_parse(&c, "{\"beta_start\": \"small\"}", "s", &err);
    CHECK(rc == OIR_E_FORMAT && strstr(err.message, "beta_start"), "type: %s", err.message);
    rc = ddim_config_parse(&c, "{\"trained_betas\": [0.1, 0.2]}", "s", &err);
    CHECK(rc == OIR_E_UNSUPPORTED && strstr(err.message, "trained_betas"), "trained_betas: %s",
          err.message);
    rc = ddim_config_parse(&c, "{\"thresholding\": true}", "s", &err);
    CHECK(rc == OIR_E_UNSUPPORTED && strstr(err.message, "thresholding"), "thresholding: %s",
          err.message);
    rc = ddim_config_parse(&c, "not json", "s", &err);
    CHECK(rc == OIR_E_FORMAT, "not json: %s", err.message);
    rc = ddim_config_load(&c, "/nonexistent/scheduler_config.json", &err);
    CHECK(rc == OIR_E_IO && strstr(err.message, "/nonexistent"), "missing file: %s", err.message);
}

static void test_reference(void) {
    st_file *f = th_open_fixture("sd/ref_ddim.safetensors");
    if (!f) return;
    oir_error err = {0};
    ddim_config cfg = ddim_sd1_config();
    ddim_scheduler s;
    if (!CHECK(ddim_init(&s, &cfg, &err) == OIR_OK, "init: %s", err.message)) {
        st_close(f);
        return;
    }
    size_t n;
    float *ref = th_fixture_f32(f, "alphas_cumprod", &n, NULL);
    if (ref && CHECK(n == 1000, "alphas_cumprod has %zu values", n))
        th_close("alphas_cumprod", s.alphas_cumprod, ref, n, 1e-7f, 1e-6f);
    free(ref);
    ref = th_fixture_f32(f, "betas", &n, NULL);
    if (ref && CHECK(n == 1000, "betas has %zu values", n))
        th_close("betas", s.betas, ref, n, 1e-7f, 1e-6f);
    free(ref);
    ref = th_fixture_f32(f, "final_alpha_cumprod", &n, NULL);
    if (ref) th_close("final_alpha_cumprod", &s.final_alpha_cumprod, ref, 1, 1e-7f, 1e-6f);
    free(ref);

    static const int Ts[] = {50, 10};
    for (int k = 0; k < 2; k++) {
        char name[32];
        snprintf(name, sizeof name, "timesteps_%d", Ts[k]);
        int64_t *ts = fixture_i64(f, name, &n);
        if (!ts) continue;
        CHECK(ddim_set_timesteps(&s, Ts[k], &err) == OIR_OK, "set_timesteps: %s", err.message);
        int same = n == (size_t)s.num_inference_steps;
        for (size_t i = 0; same && i < n; i++) same = ts[i] == s.timesteps[i];
        CHECK(same, "%s: first %lld last %lld, reference %lld %lld", name,
              (long long)s.timesteps[0], (long long)s.timesteps[s.num_inference_steps - 1],
              (long long)ts[0], (long long)ts[n - 1]);
        free(ts);
    }

    /* Step: four rows at four different timesteps, one call. */
    CHECK(ddim_set_timesteps(&s, 50, &err) == OIR_OK, "set_timesteps 50");
    size_t ns, nt;
    float *sample = th_fixture_f32(f, "sample", &ns, NULL);
    float *eps = th_fixture_f32(f, "model_output", NULL, NULL);
    float *prev_ref = th_fixture_f32(f, "prev_sample", NULL, NULL);
    float *x0_ref = th_fixture_f32(f, "step_pred_original_sample", NULL, NULL);
    int64_t *t = fixture_i64(f, "step_timestep", &nt);
    int64_t *t_prev = fixture_i64(f, "step_prev_timestep", &n);
    if (sample && eps && prev_ref && x0_ref && t && t_prev && CHECK(nt == 4 && ns == 4 * 256, "shapes")) {
        float *prev = malloc(ns * sizeof *prev), *x0 = malloc(ns * sizeof *x0);
        int rc = ddim_step(&s, prev, eps, t, sample, 4, 256, x0, &err);
        CHECK(rc == OIR_OK, "ddim_step: %s", err.message);
        th_close("ddim_step prev_sample", prev, prev_ref, ns, 1e-5f, 1e-5f);
        th_close("ddim_step pred_original_sample", x0, x0_ref, ns, 1e-5f, 1e-5f);
        for (int b = 0; b < 4; b++)
            CHECK(ddim_prev_timestep(&s, t[b]) == t_prev[b], "prev timestep of %lld",
                  (long long)t[b]);
        /* In place (prev aliases sample) gives the same. */
        memcpy(prev, sample, ns * sizeof *prev);
        ddim_step(&s, prev, eps, t, prev, 4, 256, NULL, &err);
        th_close("ddim_step in place", prev, prev_ref, ns, 1e-5f, 1e-5f);
        free(prev);
        free(x0);
    }
    free(sample), free(eps), free(prev_ref), free(x0_ref), free(t), free(t_prev);

    /* Inversion step, per row. */
    sample = th_fixture_f32(f, "invert_sample", &ns, NULL);
    eps = th_fixture_f32(f, "invert_model_output", NULL, NULL);
    float *next_ref = th_fixture_f32(f, "invert_next_sample", NULL, NULL);
    t = fixture_i64(f, "invert_timestep", &nt);
    if (sample && eps && next_ref && t && CHECK(nt == 4 && ns == 4 * 256, "invert shapes")) {
        float *next = malloc(ns * sizeof *next), *back = malloc(ns * sizeof *back);
        int rc = ddim_invert_step(&s, next, eps, t, sample, 4, 256, &err);
        CHECK(rc == OIR_OK, "ddim_invert_step: %s", err.message);
        th_close("ddim_invert_step next_sample", next, next_ref, ns, 1e-5f, 1e-5f);
        /* The denoising step with the same eps undoes it (float rounding only). */
        ddim_step(&s, back, eps, t, next, 4, 256, NULL, &err);
        th_close("invert then step returns", back, sample, ns, 1e-4f, 1e-4f);
        free(next);
        free(back);
    }
    free(sample), free(eps), free(next_ref), free(t);
    ddim_free(&s);
    st_close(f);
}

static void test_errors_and_guidance(void) {
    oir_error err = {0};
    ddim_config cfg = ddim_sd1_config();
    ddim_scheduler s;
    CHECK(ddim_init(&s, &cfg, &err) == OIR_OK, "init");
    float x[4] = {1, 2, 3, 4}, e[4] = {0}, o[4];
    int64_t t = 981;
    CHECK(ddim_step(&s, o, e, &t, x, 1, 4, NULL, &err) == OIR_E_ARG, "step before set_timesteps");
    CHECK(ddim_set_timesteps(&s, 0, &err) == OIR_E_ARG, "0 steps refused");
    CHECK(ddim_set_timesteps(&s, 1001, &err) == OIR_E_ARG, "1001 steps refused");
    CHECK(ddim_set_timesteps(&s, 1000, &err) == OIR_E_ARG && strstr(err.message, "1000"),
          "1000 steps + offset 1 reaches t 1000: %s", err.message);
    CHECK(ddim_set_timesteps(&s, 50, &err) == OIR_OK, "50 steps");
    int64_t bad[2] = {981, 1000};
    float x2[8] = {0}, e2[8] = {0}, o2[8];
    CHECK(ddim_step(&s, o2, e2, bad, x2, 2, 4, NULL, &err) == OIR_E_ARG &&
              strstr(err.message, "timestep[1] = 1000"),
          "out-of-range timestep named: %s", err.message);
    bad[1] = -5;
    CHECK(ddim_invert_step(&s, o2, e2, bad, x2, 2, 4, &err) == OIR_E_ARG, "negative timestep");
    /* eps = 0 at the last step: prev = sqrt(a_final / a_t) x. */
    t = 1;
    CHECK(ddim_step(&s, o, e, &t, x, 1, 4, NULL, &err) == OIR_OK, "step t=1");
    float want = sqrtf(s.final_alpha_cumprod) * (x[2] / sqrtf(s.alphas_cumprod[1]));
    CHECK(fabsf(o[2] - want) < 1e-5f, "t=1 step uses the final alphabar: %g vs %g", o[2], want);
    /* clip_sample clamps x0. */
    cfg.clip_sample = 1;
    ddim_scheduler c;
    ddim_init(&c, &cfg, &err);
    ddim_set_timesteps(&c, 50, &err);
    float big[1] = {100}, z[1] = {0}, x0[1];
    t = 501;
    ddim_step(&c, o, z, &t, big, 1, 1, x0, &err);
    CHECK(x0[0] == 1.0f, "clip_sample clamps x0 to 1, got %g", x0[0]);
    ddim_free(&c);
    ddim_free(&s);

    float u[3] = {1, -2, 0.5f}, cnd[3] = {3, 2, 0.5f}, g[3];
    ddim_guidance(g, u, cnd, 7.5f, 3);
    CHECK(g[0] == 1 + 7.5f * 2 && g[1] == -2 + 7.5f * 4 && g[2] == 0.5f, "guidance 7.5: %g %g %g",
          g[0], g[1], g[2]);
    ddim_guidance(g, u, cnd, 1.0f, 3);
    CHECK(!memcmp(g, cnd, sizeof g), "guidance 1 = cond");
    ddim_guidance(u, u, cnd, 0.0f, 3);
    CHECK(u[0] == 1 && u[1] == -2, "guidance 0 in place = uncond");
}

int main(void) {
    test_config();
    test_reference();
    test_errors_and_guidance();
    return th_summary();
}
