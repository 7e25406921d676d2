/* The `oir` command end to end: eval COMPONENT against the parity fixtures
 * (tests/fixtures/sd, see tools/fixtures/README.md), generate (size, PNG,
 * determinism, folder == single file), reconstruct (PSNR lines), --help, and
 * bad input: non-zero exit with one line on stderr naming the problem.
 *
 * Runs the oir binary next to this test's folder (argv[0]/../oir), from the
 * repository root, with OIR_THREADS=1 (results do not depend on it; it keeps
 * the run short on a shared machine). Temporary files go to a mkdtemp folder.
 *
 * Tolerances (as the component tests): UNet, VAE, CLIP outputs
 * |got - ref| <= 1e-4 + 1e-3 |ref| (float32 vs PyTorch float32); DDIM steps
 * 1e-5 + 1e-5 |ref| (elementwise arithmetic); token ids exact. */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_runner.h"
#include "harness.h"
#include "io/image.h"
#include "io/safetensors.h"

#define ATOL 1e-4f
#define RTOL 1e-3f
#define DDIM_TOL 1e-5f

/* Fixture path in rotating buffers (valid for the next 63 calls). */
static const char *fx(const char *name) {
    static char buf[64][1024];
    static int k;
    k = (k + 1) % 64;
    snprintf(buf[k], sizeof buf[k], "%s", th_fixture_path(name));
    return buf[k];
}

/* Compares tensor `name` of OUT with `ref_name` of a fixture. */
static void compare(const char *what, const char *out_path, const char *name,
                    const char *ref_fixture, const char *ref_name, float atol, float rtol) {
    oir_error err = {0};
    st_file *got_f = NULL;
    if (!CHECK(st_open(&got_f, out_path, &err) == OIR_OK, "%s: %s", what, err.message)) return;
    st_file *ref_f = th_open_fixture(ref_fixture);
    tensor gt, rt;
    size_t ng = 0, nr = 0;
    float *got = th_fixture_f32(got_f, name, &ng, &gt);
    float *ref = th_fixture_f32(ref_f, ref_name, &nr, &rt);
    if (got && ref) {
        int same_shape =
            gt.ndim == rt.ndim && !memcmp(gt.shape, rt.shape, sizeof gt.shape[0] * gt.ndim);
        char a[96], b[96];
        if (CHECK(same_shape, "%s: shape %s, reference %s", what,
                  tensor_shape_str(&gt, a, sizeof a), tensor_shape_str(&rt, b, sizeof b)))
            th_close(what, got, ref, ng, atol, rtol);
    }
    free(got);
    free(ref);
    st_close(got_f);
    st_close(ref_f);
}

/* Writes a file with tensors of a fixture under new names: pairs of
 * (new name, fixture name), NULL-terminated. */
static void write_renamed(const char *path, const char *fixture, ...) {
    oir_error err = {0};
    st_file *f = th_open_fixture(fixture);
    st_writer *w = st_writer_new();
    if (!f || !w) goto done;
    va_list ap;
    va_start(ap, fixture);
    for (const char *to = va_arg(ap, const char *); to; to = va_arg(ap, const char *)) {
        const char *from = va_arg(ap, const char *);
        const tensor *t = st_find(f, from);
        if (!CHECK(t != NULL, "%s: no tensor %s", fixture, from)) continue;
        CHECK(st_writer_add(w, to, t, &err) == OIR_OK, "%s: %s", path, err.message);
    }
    va_end(ap);
    CHECK(st_writer_save(w, path, &err) == OIR_OK, "%s: %s", path, err.message);
done:
    st_writer_free(w);
    st_close(f);
}

/* ---- eval ------------------------------------------------------------------ */

static void test_eval(void) {
    const char *pipe = fx("sd/tiny-pipe"), *clip = fx("sd/clip-tiny");
    const char *o = cr_path("eval.safetensors");
    int rc;

    rc = cr_run("eval", "unet", "--model", pipe, "--in", fx("sd/ref_unet.safetensors"), "--out", o,
             NULL);
    if (CHECK(rc == 0, "eval unet: exit %d: %s", rc, cr_err))
        compare("eval unet noise_pred", o, "noise_pred", "sd/ref_unet.safetensors", "noise_pred",
                ATOL, RTOL);

    /* a UNet component folder (linear projections, fp16 weights) */
    rc = cr_run("eval", "unet", "--model", fx("sd/unet-linproj"), "--in",
             fx("sd/ref_unet_linproj.safetensors"), "--out", o, NULL);
    if (CHECK(rc == 0, "eval unet (unet-linproj folder): exit %d: %s", rc, cr_err))
        compare("eval unet unet-linproj noise_pred", o, "noise_pred",
                "sd/ref_unet_linproj.safetensors", "noise_pred", ATOL, RTOL);

    rc = cr_run("eval", "text", "--model", pipe, "--in", fx("sd/ref_text.safetensors"), "--out", o,
             NULL);
    if (CHECK(rc == 0, "eval text: exit %d: %s", rc, cr_err)) {
        compare("eval text last_hidden_state", o, "last_hidden_state", "sd/ref_text.safetensors",
                "last_hidden_state", ATOL, RTOL);
        compare("eval text pooler_output", o, "pooler_output", "sd/ref_text.safetensors",
                "pooler_output", ATOL, RTOL);
    }

    rc = cr_run("eval", "text", "--model", clip, "--in", fx("sd/ref_clip.safetensors"), "--out", o,
             NULL);
    if (CHECK(rc == 0, "eval text (CLIP): exit %d: %s", rc, cr_err))
        compare("eval text (CLIP) text_embeds", o, "text_embeds", "sd/ref_clip.safetensors",
                "text_embeds", ATOL, RTOL);

    rc = cr_run("eval", "vae-decode", "--model", pipe, "--in", fx("sd/ref_vae.safetensors"), "--out",
             o, NULL);
    if (CHECK(rc == 0, "eval vae-decode: exit %d: %s", rc, cr_err))
        compare("eval vae-decode image", o, "image", "sd/ref_vae.safetensors", "decoded", ATOL,
                RTOL);

    rc = cr_run("eval", "vae-encode", "--model", pipe, "--in", fx("sd/ref_vae.safetensors"), "--out",
             o, NULL);
    if (CHECK(rc == 0, "eval vae-encode: exit %d: %s", rc, cr_err))
        compare("eval vae-encode latent_mean", o, "latent_mean", "sd/ref_vae.safetensors",
                "latent_mean", ATOL, RTOL);

    /* DDIM: the fixture's step_* / invert_* tensors under diffusers' names */
    const char *din = cr_path("ddim_in.safetensors");
    write_renamed(din, "sd/ref_ddim.safetensors", "sample", "sample", "model_output",
                  "model_output", "timestep", "step_timestep", "num_inference_steps",
                  "step_num_inference_steps", NULL);
    rc = cr_run("eval", "ddim-step", "--model", pipe, "--in", din, "--out", o, NULL);
    if (CHECK(rc == 0, "eval ddim-step: exit %d: %s", rc, cr_err)) {
        compare("eval ddim-step prev_sample", o, "prev_sample", "sd/ref_ddim.safetensors",
                "prev_sample", DDIM_TOL, DDIM_TOL);
        compare("eval ddim-step pred_original_sample", o, "pred_original_sample",
                "sd/ref_ddim.safetensors", "step_pred_original_sample", DDIM_TOL, DDIM_TOL);
    }
    write_renamed(din, "sd/ref_ddim.safetensors", "sample", "invert_sample", "model_output",
                  "invert_model_output", "timestep", "invert_timestep", "num_inference_steps",
                  "invert_num_inference_steps", NULL);
    rc = cr_run("eval", "ddim-invert-step", "--in", din, "--out", o,
             NULL); /* SD 1.x schedule by default */
    if (CHECK(rc == 0, "eval ddim-invert-step: exit %d: %s", rc, cr_err))
        compare("eval ddim-invert-step next_sample", o, "next_sample", "sd/ref_ddim.safetensors",
                "invert_next_sample", DDIM_TOL, DDIM_TOL);

    /* vision, masked (ref_clip holds pixel_values and patch_mask) and not */
    rc = cr_run("eval", "vision", "--model", clip, "--in", fx("sd/ref_clip.safetensors"), "--out", o,
             NULL);
    if (CHECK(rc == 0, "eval vision (masked): exit %d: %s", rc, cr_err)) {
        compare("eval vision masked image_embeds", o, "image_embeds", "sd/ref_clip.safetensors",
                "image_embeds_masked", ATOL, RTOL);
        compare("eval vision masked pooler_output", o, "pooler_output", "sd/ref_clip.safetensors",
                "vision_pooler_output_masked", ATOL, RTOL);
        compare("eval vision masked last_hidden_state", o, "last_hidden_state",
                "sd/ref_clip.safetensors", "vision_last_hidden_state_masked", ATOL, RTOL);
    }
    const char *vin = cr_path("vision_in.safetensors");
    write_renamed(vin, "sd/ref_clip.safetensors", "pixel_values", "pixel_values", NULL);
    rc = cr_run("eval", "vision", "--model", clip, "--in", vin, "--out", o, NULL);
    if (CHECK(rc == 0, "eval vision: exit %d: %s", rc, cr_err))
        compare("eval vision image_embeds", o, "image_embeds", "sd/ref_clip.safetensors",
                "image_embeds", ATOL, RTOL);

    /* tokenize: row 0 of ref_text's input_ids, exactly */
    rc = cr_run("eval", "tokenize", "--model", pipe, "--prompt",
             "a photo of a cat, sitting on the mat!", "--out", o, NULL);
    if (CHECK(rc == 0, "eval tokenize: exit %d: %s", rc, cr_err)) {
        oir_error err = {0};
        st_file *got = NULL, *ref = th_open_fixture("sd/ref_text.safetensors");
        CHECK(st_open(&got, o, &err) == OIR_OK, "tokenize output: %s", err.message);
        const tensor *g = got ? st_find(got, "input_ids") : NULL,
                     *r = ref ? st_find(ref, "input_ids") : NULL;
        if (CHECK(g && r && g->type == DT_I64 && g->ndim == 2 && g->shape[0] == 1 &&
                      g->shape[1] == 77,
                  "tokenize: input_ids I64 (1, 77) expected"))
            CHECK(!memcmp(g->data, r->data, 77 * sizeof(int64_t)),
                  "tokenize: ids differ from ref_text row 0");
        st_close(got);
        st_close(ref);
    }
    /* --tokenizer-mode: "it's" is it 's (clip, the default) or it ' s (hf-no-ftfy), with the
     * real vocabulary as a tokenizer folder */
    const char *modes[3] = {NULL, "clip", "hf-no-ftfy"};
    const int64_t want_eos_at[3] = {3, 3, 4};
    for (int k = 0; k < 3; k++) {
        rc = modes[k] ? cr_run("eval", "tokenize", "--model", "data/clip-tokenizer", "--prompt", "it's",
                               "--tokenizer-mode", modes[k], "--out", o, NULL)
                      : cr_run("eval", "tokenize", "--model", "data/clip-tokenizer", "--prompt", "it's",
                               "--out", o, NULL);
        if (!CHECK(rc == 0, "eval tokenize --tokenizer-mode %s: exit %d: %s", modes[k] ? modes[k] : "(default)",
                   rc, cr_err))
            continue;
        oir_error err = {0};
        st_file *got = NULL;
        CHECK(st_open(&got, o, &err) == OIR_OK, "tokenize output: %s", err.message);
        const tensor *g = got ? st_find(got, "input_ids") : NULL;
        const int64_t *ids = g ? (const int64_t *)g->data : NULL;
        CHECK(ids && ids[0] == 49406 && ids[want_eos_at[k]] == 49407 && ids[want_eos_at[k] - 1] != 49407,
              "--tokenizer-mode %s: \"it's\" should end at %lld", modes[k] ? modes[k] : "(default)",
              (long long)want_eos_at[k]);
        st_close(got);
    }
    rc = cr_run("eval", "tokenize", "--model", "data/clip-tokenizer", "--prompt", "x", "--tokenizer-mode",
                "ftfy", "--out", o, NULL);
    cr_expect_error("bad --tokenizer-mode", rc, "eval", "--tokenizer-mode: tokenizer mode \"ftfy\": expected clip, openai or hf-no-ftfy");
}

/* ---- generate, reconstruct ---------------------------------------------------- */

static int files_equal(const char *a, const char *b) {
    static char x[1 << 16], y[1 << 16];
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    size_t na = fa ? fread(x, 1, sizeof x, fa) : 0, nb = fb ? fread(y, 1, sizeof y, fb) : 0;
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return fa && fb && na == nb && !memcmp(x, y, na);
}

static void test_generate(void) {
    const char *pipe = fx("sd/tiny-pipe");
    const char *a = cr_path("a.png"), *b = cr_path("b.png"), *c = cr_path("c.png"), *d = cr_path("d.png");
    int rc = cr_run("generate", "--model", pipe, "--prompt", "a red circle", "--size", "16", "--steps",
                 "5", "--seed", "1", "--out", a, NULL);
    if (!CHECK(rc == 0, "generate: exit %d: %s", rc, cr_err)) return;
    CHECK(strstr(cr_out, "wrote") != NULL, "generate: no summary line: \"%s\"", cr_out);
    image img = {0};
    oir_error err = {0};
    if (CHECK(image_load(&img, a, &err) == OIR_OK, "generate output: %s", err.message))
        CHECK(img.width == 16 && img.height == 16, "generate: %dx%d image, expected 16x16",
              img.width, img.height);
    image_free(&img);
    rc = cr_run("generate", "--model", pipe, "--prompt", "a red circle", "--size", "16", "--steps",
             "5", "--seed", "1", "--out", b, "--quiet", NULL);
    CHECK(rc == 0 && files_equal(a, b), "generate: same seed, different bytes (exit %d)", rc);
    CHECK(cr_out[0] == 0, "generate --quiet printed \"%s\"", cr_out);
    rc = cr_run("generate", "--model", pipe, "--prompt", "a red circle", "--size", "16", "--steps",
             "5", "--seed", "2", "--out", c, NULL);
    CHECK(rc == 0 && !files_equal(a, c), "generate: seeds 1 and 2 give the same image (exit %d)",
          rc);
    /* native size (16 for tiny-pipe); the single-file copy of the same
     * weights with the folder's configs gives the same bytes */
    rc = cr_run("generate", "--model", pipe, "--prompt", "a red circle", "--steps", "5", "--seed", "1",
             "--out", d, NULL);
    CHECK(rc == 0 && files_equal(a, d), "generate: default size is not the native 16 (exit %d: %s)",
          rc, cr_err);
    rc = cr_run("generate", "--model", fx("sd/tiny-pipe.safetensors"), "--config", pipe, "--prompt",
             "a red circle", "--steps", "5", "--seed", "1", "--out", d, NULL);
    CHECK(rc == 0 && files_equal(a, d), "generate: single file != folder (exit %d: %s)", rc,
          cr_err);

    /* reconstruct the generated image */
    rc = cr_run("reconstruct", "--model", pipe, "--image", a, "--prompt", "a red circle", "--steps",
             "5", "--out", b, NULL);
    if (CHECK(rc == 0, "reconstruct: exit %d: %s", rc, cr_err)) {
        const char *p = strstr(cr_out, "PSNR reconstruction vs input: ");
        double db = p ? atof(p + strlen("PSNR reconstruction vs input: ")) : NAN;
        CHECK(p && isfinite(db) && db > 0, "reconstruct: no PSNR line in \"%s\"", cr_out);
        CHECK(strstr(cr_out, "PSNR VAE only") != NULL, "reconstruct: no VAE-only PSNR in \"%s\"",
              cr_out);
        if (CHECK(image_load(&img, b, &err) == OIR_OK, "reconstruct output: %s", err.message))
            CHECK(img.width == 16 && img.height == 16, "reconstruct: %dx%d image", img.width,
                  img.height);
        image_free(&img);
    }
}

/* ---- help and errors ------------------------------------------------------------- */

static void test_help(void) {
    const char *cmds[] = {"generate", "reconstruct", "eval"};
    for (int i = 0; i < 3; i++) {
        int rc = cr_run(cmds[i], "--help", NULL);
        char want[64];
        snprintf(want, sizeof want, "usage: oir %s", cmds[i]);
        CHECK(rc == 0 && strstr(cr_out, want), "oir %s --help: exit %d, \"%.80s\"", cmds[i], rc,
              cr_out);
    }
    cr_run("eval", "--help", NULL);
    const char *names[] = {"tokenize",           "vision",
                           "vae-encode",         "vae-decode",
                           "ddim-step",          "ddim-invert-step",
                           "input_ids",          "pixel_values",
                           "patch_mask",         "encoder_hidden_states",
                           "noise_pred",         "latent_mean",
                           "last_hidden_state",  "pooler_output",
                           "text_embeds",        "image_embeds",
                           "prev_sample",        "next_sample",
                           "num_inference_steps"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        CHECK(strstr(cr_out, names[i]) != NULL, "oir eval --help does not mention %s", names[i]);
    int rc = cr_run("--help", NULL);
    CHECK(rc == 0 && strstr(cr_out, "generate") && strstr(cr_out, "reconstruct") &&
              strstr(cr_out, "eval"),
          "oir --help does not list generate, reconstruct, eval");
}

static void test_errors(void) {
    const char *pipe = fx("sd/tiny-pipe"), *unet_in = fx("sd/ref_unet.safetensors");
    const char *o = cr_path("err.safetensors"), *png = cr_path("err.png");
    int rc;
    rc = cr_run("eval", "frobnicate", "--model", pipe, "--in", unet_in, "--out", o, NULL);
    cr_expect_error("unknown component", rc, "eval", "unknown component 'frobnicate'");
    rc =
        cr_run("eval", "unet", "--model", pipe, "--in", cr_path("absent.safetensors"), "--out", o, NULL);
    cr_expect_error("missing --in file", rc, "eval", "absent.safetensors: no such file");
    rc = cr_run("eval", "unet", "--model", pipe, "--in", fx("sd/ref_vae.safetensors"), "--out", o,
             NULL);
    cr_expect_error("missing tensors", rc, "eval",
                "missing tensors sample, timestep, encoder_hidden_states");

    /* wrong shape: sample with 3 channels */
    const char *bad = cr_path("bad_shape.safetensors");
    oir_error err = {0};
    st_writer *w = st_writer_new();
    float zeros[3 * 3 * 8 * 8] = {0}, ctx[3 * 77 * 32] = {0}, ts[3] = {981, 500, 1};
    const int64_t s_sample[4] = {3, 3, 8, 8}, s_ctx[3] = {3, 77, 32}, s_t[1] = {3};
    CHECK(w && !st_writer_add_f32(w, "sample", zeros, 4, s_sample, &err) &&
              !st_writer_add_f32(w, "encoder_hidden_states", ctx, 3, s_ctx, &err) &&
              !st_writer_add_f32(w, "timestep", ts, 1, s_t, &err) && !st_writer_save(w, bad, &err),
          "writing %s: %s", bad, err.message);
    st_writer_free(w);
    rc = cr_run("eval", "unet", "--model", pipe, "--in", bad, "--out", o, NULL);
    cr_expect_error("wrong shape", rc, "eval",
                "tensor sample has shape [3, 3, 8, 8], expected (B, 4, h, w)");

    rc = cr_run("eval", "unet", "--model", pipe, "--in", unet_in, "--out", unet_in, NULL);
    cr_expect_error("--out == --in", rc, "eval", "is the input given to --in");
    rc = cr_run("eval", "unet", "--model", pipe, "--in", unet_in, "--out", o, "--frob", NULL);
    cr_expect_error("unknown flag (eval)", rc, "eval", "unknown option --frob");
    rc = cr_run("generate", "--model", pipe, "--prompt", "x", "--out", png, "--frob", "1", NULL);
    cr_expect_error("unknown flag (generate)", rc, "generate", "unknown option --frob");
    rc = cr_run("generate", "--model", pipe, "--prompt", "x", "--out", png, "--steps", "abc", NULL);
    cr_expect_error("bad number", rc, "generate", "--steps: 'abc' is not an integer");
    rc = cr_run("generate", "--model", pipe, "--prompt", "x", "--out", png, "--guidance", "1e9", NULL);
    cr_expect_error("number out of range", rc, "generate", "--guidance: 1e9 is outside");
    rc = cr_run("generate", "--model", pipe, "--prompt", "x", "--out", png, "--size", "18", NULL);
    cr_expect_error("bad size", rc, "generate", "--size 18: not a multiple of 4");
    rc = cr_run("generate", "--model", pipe, "--out", png, NULL);
    cr_expect_error("no prompt", rc, "generate", "--prompt is required");
    rc = cr_run("generate", "--model", cr_path("no-such-model"), "--prompt", "x", "--out", png, NULL);
    cr_expect_error("missing model folder", rc, "generate", "no-such-model: no such file or folder");
    rc = cr_run("reconstruct", "--model", cr_path("no-such-model"), "--image", unet_in, "--prompt", "x",
             "--out", png, NULL);
    cr_expect_error("missing model folder (reconstruct)", rc, "reconstruct",
                "no-such-model: no such file or folder");
    rc = cr_run("eval", "unet", "--model", cr_path("no-such-model"), "--in", unet_in, "--out", o, NULL);
    cr_expect_error("missing model folder (eval)", rc, "eval", "no-such-model: no such file or folder");

    const char *ckpt = cr_path("x.ckpt");
    FILE *fp = fopen(ckpt, "wb");
    if (CHECK(fp != NULL, "cannot write %s", ckpt)) {
        fputs("not really a pickle", fp);
        fclose(fp);
    }
    rc = cr_run("generate", "--model", ckpt, "--prompt", "x", "--out", png, NULL);
    cr_expect_error("pickle model (generate)", rc, "generate", "pickle");
    rc = cr_run("eval", "unet", "--model", ckpt, "--in", unet_in, "--out", o, NULL);
    cr_expect_error("pickle model (eval)", rc, "eval", "pickle");

    /* the input image is never overwritten */
    const char *img = cr_path("input.png");
    rc = cr_run("generate", "--model", pipe, "--prompt", "x", "--steps", "1", "--out", img, NULL);
    CHECK(rc == 0, "generate (for reconstruct input): exit %d: %s", rc, cr_err);
    rc = cr_run("reconstruct", "--model", pipe, "--image", img, "--prompt", "x", "--steps", "1",
             "--out", img, NULL);
    cr_expect_error("reconstruct --out == --image", rc, "reconstruct", "is the input given to --image");
    rc = cr_run("reconstruct", "--model", pipe, "--image", cr_path("none.png"), "--prompt", "x", "--out",
             png, NULL);
    cr_expect_error("reconstruct missing image", rc, "reconstruct", "none.png: no such file");
    rc = cr_run("generate", "--model", pipe, "--prompt", "x", "--out", cr_path("x.jpg"), NULL);
    cr_expect_error("generate non-PNG name", rc, "generate", "use a .png name");
}

int main(int argc, char **argv) {
    (void)argc;
    if (!CHECK(cr_init(argv[0]) == 0 && access(cr_bin, X_OK) == 0, "no oir binary at %s (build it first)", cr_bin))
        return th_summary();
    setenv("OIR_THREADS", "1", 1);
    unsetenv("OIR_MODEL");
    test_help();
    test_eval();
    test_generate();
    test_errors();
    cr_cleanup();
    return th_summary();
}
