/* oir info: a summary first (kind, version guess, image size, parameters per
 * component and in total, dtypes, tokenizer), the tensors only with
 * --tensors; pickle files refused with one message by every command. The
 * parameter counts are checked against sums over the tensors' shapes. */
#include "cli_runner.h"
#include "oir.h"

static char fx_pipe[1024], fx_single[1024], fx_clip[1024], shapes[1200], tiny_clip[1200];

/* The value after "  <key>" at the start of a line of cr_out ("" if none). */
static const char *line_of(const char *key) {
    static char buf[1024];
    buf[0] = '\0';
    char pat[64];
    snprintf(pat, sizeof pat, "\n  %s ", key);
    const char *p = strstr(cr_out, pat);
    if (!p) return buf;
    p += strlen(pat);
    while (*p == ' ') p++;
    size_t n = strcspn(p, "\n");
    if (n >= sizeof buf) n = sizeof buf - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

static long long count_of(const char *key) {
    long long v = -1;
    if (sscanf(line_of(key), "%lld parameters", &v) != 1) return -1;
    return v;
}

static int lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* Elements of the floating-point tensors of a file whose names start with
 * prefix (NULL: all), multiplying the shapes out here. */
static long long float_elements(const char *path, const char *prefix) {
    st_file *f = NULL;
    oir_error err = {0};
    if (!CHECK(st_open(&f, path, &err) == OIR_OK, "%s", err.message)) return -2;
    long long total = 0;
    for (int i = 0; i < st_count(f); i++) {
        const tensor *t = st_tensor_at(f, i);
        if (prefix && strncmp(st_name_at(f, i), prefix, strlen(prefix))) continue;
        if (t->type != DT_F32 && t->type != DT_F16 && t->type != DT_BF16 && t->type != DT_F64) continue;
        long long n = 1;
        for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
        total += n;
    }
    st_close(f);
    return total;
}

static int native_size(const char *model, const char *clip) {
    oir_context_params p = oir_context_default_params();
    p.model_path = model;
    p.clip_path = clip;
    oir_context *ctx = NULL;
    oir_error err = {0};
    if (!CHECK(oir_context_load(&ctx, &p, &err) == OIR_OK, "%s", err.message)) return -1;
    int s = oir_context_image_size(ctx);
    oir_context_free(ctx);
    return s;
}

static void test_diffusers(void) {
    int rc = cr_run("info", shapes, NULL);
    CHECK(rc == 0, "info %s: exit %d %s", shapes, rc, cr_err);
    CHECK(strstr(cr_out, "diffusers folder") && strstr(cr_out, "diffusers folder") < strstr(cr_out, "\n  total "),
          "the kind comes first: %.200s", cr_out);
    const char *details = strstr(cr_out, "components of");
    CHECK(details && strstr(cr_out, "\n  total ") < details, "the summary comes before the component details");
    char p[1400];
    long long unet, vae, text;
    snprintf(p, sizeof p, "%s/unet/diffusion_pytorch_model.safetensors", shapes);
    unet = float_elements(p, NULL);
    snprintf(p, sizeof p, "%s/vae/diffusion_pytorch_model.safetensors", shapes);
    vae = float_elements(p, NULL);
    snprintf(p, sizeof p, "%s/text_encoder/model.safetensors", shapes);
    text = float_elements(p, NULL);
    CHECK(count_of("unet") == unet && count_of("vae") == vae && count_of("text_encoder") == text,
          "per component: unet %lld (%lld), vae %lld (%lld), text_encoder %lld (%lld)", count_of("unet"), unet,
          count_of("vae"), vae, count_of("text_encoder"), text);
    CHECK(count_of("total") == unet + vae + text, "total %lld = the sum over the tensors' shapes %lld",
          count_of("total"), unet + vae + text);
    CHECK(strstr(line_of("unet"), "F16") && strstr(line_of("vae"), "F32"), "dtypes: unet '%s', vae '%s'",
          line_of("unet"), line_of("vae"));
    CHECK(!strncmp(line_of("tokenizer"), "folder ", 7) && strstr(line_of("tokenizer"), "tokenizer"),
          "tokenizer from its folder: '%s'", line_of("tokenizer"));
    char size[32];
    int n = native_size(shapes, tiny_clip);
    snprintf(size, sizeof size, "%dx%d ", n, n);
    CHECK(!strncmp(line_of("image size"), size, strlen(size)), "image size '%s' = the library's %d",
          line_of("image size"), n);
    CHECK(strstr(line_of("version"), "SD 1.x architecture"), "version guess: '%s'", line_of("version"));
    CHECK(lines(cr_out) < 40 && !strstr(cr_out, "down_blocks.0"), "no tensor listing by default (%d lines)",
          lines(cr_out));
    rc = cr_run("info", shapes, "--tensors", NULL);
    CHECK(rc == 0 && strstr(cr_out, "down_blocks.0.resnets.0.conv1.weight") &&
              strstr(cr_out, "text_model.embeddings.token_embedding.weight"),
          "--tensors lists every component's tensors (exit %d)", rc);

    /* the small fixture pipeline: its size from sample_size 8 x VAE factor */
    rc = cr_run("info", fx_pipe, NULL);
    n = native_size(fx_pipe, fx_clip);
    snprintf(size, sizeof size, "%dx%d ", n, n);
    CHECK(rc == 0 && !strncmp(line_of("image size"), size, strlen(size)), "%s: image size '%s' = the library's %d",
          fx_pipe, line_of("image size"), n);
}

static void test_single_file(void) {
    int rc = cr_run("info", fx_single, NULL);
    CHECK(rc == 0, "info %s: exit %d %s", fx_single, rc, cr_err);
    CHECK(strstr(cr_out, "single-file LDM checkpoint") != NULL, "kind: %.200s", cr_out);
    long long unet = float_elements(fx_single, "model.diffusion_model."),
              vae = float_elements(fx_single, "first_stage_model."),
              text = float_elements(fx_single, "cond_stage_model.transformer.");
    CHECK(count_of("unet") == unet && count_of("vae") == vae && count_of("text_encoder") == text,
          "per component: %lld %lld %lld, expected %lld %lld %lld", count_of("unet"), count_of("vae"),
          count_of("text_encoder"), unet, vae, text);
    CHECK(count_of("total") == unet + vae + text, "total %lld = %lld", count_of("total"), unet + vae + text);
    CHECK(strstr(line_of("tokenizer"), "none") != NULL, "no tokenizer fits its 764-token vocabulary: '%s'",
          line_of("tokenizer"));
    CHECK(strstr(line_of("version"), "SD 1.x architecture") != NULL, "version: '%s'", line_of("version"));
    CHECK(lines(cr_out) < 20 && !strstr(cr_out, "model.diffusion_model.input_blocks"),
          "no tensor listing by default (%d lines)", lines(cr_out));
    CHECK(strstr(cr_out, "--tensors") != NULL, "a hint names --tensors");
    /* --tensors: every tensor by name, one line each */
    rc = cr_run("info", fx_single, "--tensors", NULL);
    st_file *f = NULL;
    oir_error err = {0};
    int listed = 0, count = 0;
    if (rc == 0 && st_open(&f, fx_single, &err) == OIR_OK) {
        count = st_count(f);
        for (int i = 0; i < count; i++) {
            char pat[300];
            snprintf(pat, sizeof pat, "\n%s ", st_name_at(f, i));
            listed += strstr(cr_out, pat) != NULL;
        }
        st_close(f);
    }
    CHECK(rc == 0 && count > 300 && listed == count, "--tensors lists %d of %d tensors", listed, count);
    static char with_tensors[65536];
    snprintf(with_tensors, sizeof with_tensors, "%s", cr_out);
    rc = cr_run("info", "--verbose", fx_single, NULL);
    CHECK(rc == 0 && !strcmp(cr_out, with_tensors), "--verbose prints what --tensors prints");
}

static void test_clip(void) {
    int rc = cr_run("info", tiny_clip, NULL);
    char p[1400];
    snprintf(p, sizeof p, "%s/model.safetensors", tiny_clip);
    long long all = float_elements(p, NULL);
    CHECK(rc == 0 && strstr(cr_out, "CLIP folder") && count_of("total") == all,
          "info %s: CLIP folder, total %lld = %lld (exit %d)", tiny_clip, count_of("total"), all, rc);
    CHECK(!strncmp(line_of("image size"), "64x64", 5), "CLIP image size: '%s'", line_of("image size"));
}

/* The message after "oir <cmd>: " of the last run. */
static const char *message(const char *cmd) {
    static char buf[16384];
    char prefix[64];
    snprintf(prefix, sizeof prefix, "oir %s: ", cmd);
    size_t n = strlen(prefix);
    snprintf(buf, sizeof buf, "%s", strncmp(cr_err, prefix, n) ? cr_err : cr_err + n);
    return buf;
}

static void test_pickle(void) {
    /* fake pickle files: written here, never loaded by anyone */
    static const struct {
        const char *name;
        const char *bytes;
        size_t n;
    } fakes[] = {{"model.ckpt", "\x80\x02}q\x00.", 6},
                 {"weights.bin", "PK\x03\x04not a zip", 14},
                 {"state.pth", "\x80\x04\x95\x00", 4},
                 {"renamed.dat", "\x80\x02}q\x00.", 6}}; /* pickle by its bytes */
    const char *img = "examples/shapes/demo.png";
    for (size_t i = 0; i < sizeof fakes / sizeof fakes[0]; i++) {
        const char *path = cr_path(fakes[i].name);
        FILE *fp = fopen(path, "wb");
        fwrite(fakes[i].bytes, 1, fakes[i].n, fp);
        fclose(fp);
        int rc = cr_run("info", path, NULL);
        cr_expect_error(fakes[i].name, rc, "info", "pickle");
        static char want[16384];
        snprintf(want, sizeof want, "%s", message("info"));
        CHECK(strstr(want, path) && strstr(want, "convert"), "info %s: names the file and how to convert: %s",
              fakes[i].name, want);
        struct {
            const char *cmd;
            int rc;
        } runs[6];
        runs[0].cmd = "generate";
        runs[0].rc = cr_run("generate", "--model", path, "--prompt", "a red circle", "--steps", "1", "--out",
                            cr_path("g.png"), NULL);
        const char *got0 = message("generate");
        CHECK(!strcmp(got0, want), "generate --model %s: the same message (%s)", fakes[i].name, got0);
        runs[1].cmd = "reconstruct";
        runs[1].rc = cr_run("reconstruct", "--model", path, "--image", img, "--prompt", "x", "--steps", "1", "--out",
                            cr_path("r.png"), NULL);
        CHECK(!strcmp(message("reconstruct"), want), "reconstruct --model %s: the same message", fakes[i].name);
        runs[2].cmd = "edit";
        runs[2].rc = cr_run("edit", "--model", path, "--clip", tiny_clip, "--image", img, "--prompt", "a red circle",
                            "--pair", "red circle->blue circle", "--mask", "1,1,9,9", "--steps", "1", "--quiet",
                            "--out", cr_path("o1"), NULL);
        CHECK(!strcmp(message("edit"), want), "edit --model %s: the same message", fakes[i].name);
        runs[3].cmd = "search";
        runs[3].rc = cr_run("search", "--model", path, "--clip", tiny_clip, "--image", img, "--prompt", "a red circle",
                            "--pair", "red circle->blue circle", "--mask", "1,1,9,9", "--steps", "1", "--quiet",
                            "--out", cr_path("o2"), NULL);
        CHECK(!strcmp(message("search"), want), "search --model %s: the same message", fakes[i].name);
        runs[4].cmd = "edit";
        runs[4].rc = cr_run("edit", "--clip", path, "--image", img, "--prompt", "a red circle", "--pair",
                            "red circle->blue circle", "--mask", "1,1,9,9", "--steps", "1", "--quiet", "--out",
                            cr_path("o3"), NULL);
        CHECK(!strcmp(message("edit"), want), "edit --clip %s: the same message", fakes[i].name);
        runs[5].cmd = "search";
        runs[5].rc = cr_run("search", "--clip", path, "--image", img, "--prompt", "a red circle", "--pair",
                            "red circle->blue circle", "--mask", "1,1,9,9", "--steps", "1", "--quiet", "--out",
                            cr_path("o4"), NULL);
        CHECK(!strcmp(message("search"), want), "search --clip %s: the same message", fakes[i].name);
        for (int r = 0; r < 6; r++)
            CHECK(runs[r].rc == 1, "%s with %s: exit 1 (%d)", runs[r].cmd, fakes[i].name, runs[r].rc);
    }
    /* a pipeline folder whose unet has pickle weights only: info summarises,
     * then refuses as the loader does */
    char cmd[3000];
    snprintf(cmd, sizeof cmd,
             "cp -r '%s' '%s' && rm '%s/unet/'*.safetensors && printf '\\200\\002}q\\000.' > "
             "'%s/unet/diffusion_pytorch_model.bin'",
             fx_pipe, cr_path("pk_pipe"), cr_path("pk_pipe"), cr_path("pk_pipe"));
    if (!CHECK(system(cmd) == 0, "copy the fixture pipeline")) return;
    const char *dir = cr_path("pk_pipe");
    int rc = cr_run("generate", "--model", dir, "--prompt", "x", "--steps", "1", "--out", cr_path("g2.png"), NULL);
    static char want[16384];
    snprintf(want, sizeof want, "%s", message("generate"));
    CHECK(rc == 1 && strstr(want, "pickle") && strstr(want, "/unet"), "generate on a pickle unet: %s", want);
    rc = cr_run("info", dir, NULL);
    CHECK(rc == 1 && !strcmp(message("info"), want), "info: the loader's message: %s", cr_err);
    CHECK(strstr(line_of("unet"), "pickle") != NULL && count_of("vae") > 0,
          "info still summarises: unet '%s', vae %lld", line_of("unet"), count_of("vae"));
}

int main(int argc, char **argv) {
    (void)argc;
    if (cr_init(argv[0])) {
        CHECK(0, "cannot set up the CLI runner");
        return th_summary();
    }
    snprintf(fx_pipe, sizeof fx_pipe, "%s", th_fixture_path("sd/tiny-pipe"));
    snprintf(fx_single, sizeof fx_single, "%s", th_fixture_path("sd/tiny-pipe.safetensors"));
    snprintf(fx_clip, sizeof fx_clip, "%s", th_fixture_path("sd/clip-tiny"));
    snprintf(shapes, sizeof shapes, "%s/tiny-shapes", oir_models_dir());
    snprintf(tiny_clip, sizeof tiny_clip, "%s/tiny-clip", oir_models_dir());
    test_diffusers();
    test_single_file();
    test_clip();
    test_pickle();
    cr_cleanup();
    return th_summary();
}
