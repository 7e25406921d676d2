/* Loader: the tiny diffusers pipeline (fp32, fp16 variant, shards), the same
 * weights as a single-file LDM checkpoint, a CLIP folder; missing, unused
 * and mis-shaped tensors named; pickle files, SD 2.x, SDXL and other files
 * refused with a clear message. Fixtures: tests/fixtures/sd (made by
 * tools/fixtures/make_sd_fixtures.py); other files go to a temp dir.
 *
 * Equalities are exact: the fixture's weights are fp16-representable, so the
 * fp32, fp16-variant and single-file copies hold the same numbers, and the
 * same weights give bit-identical UNet outputs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/arena.h"
#include "harness.h"
#include "models/ldm_names.h"
#include "models/loader.h"

static char tmp[256];
static char pipe_dir[1024], single[1024], clip_dir[1024];

static const char *tpath(const char *name) {
    static char buf[4][1400];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp, name);
    return buf[k];
}

static const char *fpath(const char *rel) {
    static char buf[4][1100];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", pipe_dir, rel);
    return buf[k];
}

static void write_text(const char *path, const char *text) {
    FILE *fp = fopen(path, "wb");
    if (!CHECK(fp != NULL, "cannot write %s", path)) return;
    fputs(text, fp);
    fclose(fp);
}

static char *abs_path(const char *p) {
    char *r = realpath(p, NULL);
    return r ? r : strdup(p);
}

static void link_to(const char *target, const char *linkpath) {
    char *t = abs_path(target);
    CHECK(symlink(t, linkpath) == 0, "symlink %s -> %s", linkpath, t);
    free(t);
}

/* Every tensor of ref (a diffusers-named file) equals what w finds under its
 * name, after conversion to float32. Returns the count compared. */
static int compare_weights(const char *what, const weights *w, const char *ref_path) {
    oir_error err = {0};
    st_file *ref = NULL;
    if (!CHECK(st_open(&ref, ref_path, &err) == OIR_OK, "%s: %s", what, err.message)) return 0;
    int n = 0, bad = 0;
    for (int i = 0; i < st_count(ref); i++) {
        const char *name = st_name_at(ref, i);
        const tensor *a = st_tensor_at(ref, i), *b = w ? weights_find(w, name) : NULL;
        if (!strcmp(name, "text_model.embeddings.position_ids")) continue;
        if (!b || tensor_numel(a) != tensor_numel(b)) {
            if (bad++ < 3) CHECK(0, "%s: %s absent or of another size", what, name);
            continue;
        }
        size_t k = (size_t)tensor_numel(a);
        float *x = malloc(k * sizeof *x + 4), *y = malloc(k * sizeof *y + 4);
        convert_to_f32(x, a->data, a->type, k, NULL);
        convert_to_f32(y, b->data, b->type, k, NULL);
        if (memcmp(x, y, k * sizeof *x) && bad++ < 3) CHECK(0, "%s: %s differs", what, name);
        free(x);
        free(y);
        n++;
    }
    CHECK(bad == 0 && n > 0, "%s: %d of %d tensors differ", what, bad, n);
    st_close(ref);
    return n;
}

/* One UNet evaluation on an 8x8 latent (batch 2, two timesteps). */
static float *unet_eval(const sd_model *m) {
    if (!m->unet) return NULL;
    oir_error err = {0};
    const int B = 2, C = m->unet->cfg.in_channels, H = 8, W = 8, T = 77;
    const int D = m->unet->cfg.cross_attention_dim;
    arena a;
    if (!CHECK(arena_init(&a, unet_arena_bytes(m->unet, B, H, W, T), &err) == OIR_OK, "arena"))
        return NULL;
    float *x = malloc(sizeof(float) * B * C * H * W), *ctx = malloc(sizeof(float) * B * T * D);
    float *out = malloc(sizeof(float) * B * m->unet->cfg.out_channels * H * W);
    for (int i = 0; i < B * C * H * W; i++) x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    for (int i = 0; i < B * T * D; i++) ctx[i] = (float)((i * 13) % 97) / 48.0f - 1.0f;
    float ts[2] = {981, 1};
    int rc = unet_forward(m->unet, &a, x, ts, ctx, B, H, W, T, out, &err);
    CHECK(rc == OIR_OK, "unet_forward: %s", err.message);
    arena_free(&a);
    free(x);
    free(ctx);
    if (rc) {
        free(out);
        return NULL;
    }
    return out;
}

static int has_note(const sd_model *m, const char *needle) {
    for (int i = 0; i < m->n_notes; i++)
        if (strstr(m->notes[i], needle)) return 1;
    return 0;
}

static float *ref_out;
static size_t ref_n;

static void test_diffusers_folder(void) {
    oir_error err = {0};
    sd_model *m = NULL;
    int rc = sd_model_load(&m, pipe_dir, NULL, &err);
    if (!CHECK(rc == OIR_OK, "load %s: %s", pipe_dir, err.message)) return;
    CHECK(m->source == SD_SOURCE_DIFFUSERS && m->tokenizer && m->text_encoder && m->unet && m->vae,
          "every component loaded");
    CHECK(sd_model_unused_count(m) == 0 && sd_model_other_count(m) == 0,
          "no unused tensors (%d, first %s)", sd_model_unused_count(m),
          sd_model_unused_at(m, 0) ? sd_model_unused_at(m, 0) : "-");
    CHECK(m->scheduler.steps_offset == 1 && !m->scheduler.set_alpha_to_one &&
              m->scheduler.beta_schedule == DDIM_BETA_SCALED_LINEAR,
          "scheduler config read");
    CHECK(has_note(m, "unet: diffusion_pytorch_model.safetensors"), "plain unet file chosen");
    ref_out = unet_eval(m);
    ref_n = (size_t)2 * m->unet->cfg.out_channels * 64;
    sd_model_free(m);

    /* fp16 variant: the unet comes from the .fp16 file, the others fall back. */
    sd_load_params p = sd_load_default_params();
    p.variant = "fp16";
    rc = sd_model_load(&m, pipe_dir, &p, &err);
    if (!CHECK(rc == OIR_OK, "load fp16 variant: %s", err.message)) return;
    CHECK(has_note(m, "unet: diffusion_pytorch_model.fp16.safetensors"), "fp16 unet file chosen");
    CHECK(has_note(m, "vae: diffusion_pytorch_model.safetensors (no variant file"),
          "vae falls back to the plain file");
    CHECK(sd_model_unused_count(m) == 0, "fp16: no unused tensors");
    CHECK(weights_owned_bytes(sd_model_weights(m, "unet")) > 0, "fp16 weights were converted");
    compare_weights("fp16 unet vs fp32 file", sd_model_weights(m, "unet"),
                    fpath("unet/diffusion_pytorch_model.safetensors"));
    float *out = unet_eval(m);
    if (out && ref_out) th_close("unet: fp16 variant = fp32 folder", out, ref_out, ref_n, 0, 0);
    free(out);
    sd_model_free(m);

    /* Only some components. */
    p = sd_load_default_params();
    p.components = SD_UNET;
    rc = sd_model_load(&m, pipe_dir, &p, &err);
    CHECK(rc == OIR_OK && m->unet && !m->vae && !m->text_encoder && !m->tokenizer,
          "components = SD_UNET: %s", err.message);
    sd_model_free(m);
}

static void test_single_file(void) {
    oir_error err = {0};
    sd_model *m = NULL;
    sd_load_params p = sd_load_default_params();
    p.config_dir = pipe_dir;
    int rc = sd_model_load(&m, single, &p, &err);
    if (!CHECK(rc == OIR_OK, "load %s: %s", single, err.message)) return;
    CHECK(m->source == SD_SOURCE_SINGLE_FILE && m->tokenizer && m->text_encoder && m->unet && m->vae,
          "every component loaded from the single file");
    CHECK(sd_model_unused_count(m) == 0 && sd_model_other_count(m) == 0,
          "single file: no unused tensors (%d, first %s)", sd_model_unused_count(m),
          sd_model_unused_at(m, 0) ? sd_model_unused_at(m, 0) : "-");
    int n = compare_weights("single-file unet", sd_model_weights(m, "unet"),
                            fpath("unet/diffusion_pytorch_model.safetensors"));
    n += compare_weights("single-file vae", sd_model_weights(m, "vae"),
                         fpath("vae/diffusion_pytorch_model.safetensors"));
    n += compare_weights("single-file text encoder", sd_model_weights(m, "text_encoder"),
                         fpath("text_encoder/model.safetensors"));
    printf("  single file: %d tensors equal to the folder's\n", n);
    float *out = unet_eval(m);
    if (out && ref_out) th_close("unet: single file = folder", out, ref_out, ref_n, 0, 0);
    free(out);
    sd_model_free(m);

    /* Without configs the SD 1.x defaults do not fit the tiny model: a clear
     * refusal that says how to give the configs. */
    rc = sd_model_load(&m, single, NULL, &err);
    CHECK(rc != OIR_OK && strstr(err.message, "config_dir") && strstr(err.message, "inferred"),
          "tiny checkpoint without configs: %s", err.message);
    sd_model_free(m);
    m = NULL;

    /* No tokenizer folder: the built-in CLIP vocabulary, in the mode asked for,
     * unless it does not fit the text encoder (764 ids here). */
    unsetenv("OIR_TOKENIZER");
    p = sd_load_default_params();
    p.components = SD_TOKENIZER;
    p.tokenizer_mode = TOKENIZER_OPENAI;
    rc = sd_model_load(&m, single, &p, &err);
    CHECK(rc == OIR_OK && m->tokenizer && tokenizer_vocab_size(m->tokenizer) == 49408 &&
              !strcmp(tokenizer_source(m->tokenizer), TOKENIZER_BUILTIN_NAME) &&
              tokenizer_get_mode(m->tokenizer) == TOKENIZER_OPENAI &&
              has_note(m, "tokenizer: " TOKENIZER_BUILTIN_NAME),
          "single file without a tokenizer folder: the built-in vocabulary (%s)", err.message);
    sd_model_free(m);
    m = NULL;
    p.components = SD_TOKENIZER | SD_TEXT_ENCODER;
    p.config_dir = pipe_dir;
    p.tokenizer_dir = NULL;
    rc = sd_model_load(&m, single, &p, &err);
    CHECK(rc == OIR_OK && m->tokenizer && tokenizer_get_mode(m->tokenizer) == TOKENIZER_OPENAI &&
              strstr(tokenizer_source(m->tokenizer), "tokenizer"),
          "config_dir's tokenizer folder wins, in the mode asked for (%s)", err.message);
    sd_model_free(m);
}

/* A diffusers folder whose model_index.json names no tokenizer: the built-in
 * vocabulary only when it fits the text encoder. */
static void test_no_tokenizer_folder(void) {
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/notok", tmp);
    snprintf(path, sizeof path, "%s/model_index.json", dir);
    mkdir(dir, 0700);
    FILE *f = fopen(path, "w");
    if (!CHECK(f != NULL, "write %s", path)) return;
    fputs("{\"_class_name\": \"StableDiffusionPipeline\", \"_diffusers_version\": \"0.16.1\"}\n", f);
    fclose(f);
    oir_error err = {0};
    sd_model *m = NULL;
    sd_load_params p = sd_load_default_params();
    p.components = SD_TOKENIZER;
    int rc = sd_model_load(&m, dir, &p, &err);
    CHECK(rc == OIR_OK && m->tokenizer && tokenizer_get_mode(m->tokenizer) == TOKENIZER_CLIP &&
              !strcmp(tokenizer_source(m->tokenizer), TOKENIZER_BUILTIN_NAME),
          "no tokenizer in model_index.json: the built-in vocabulary (%s)", err.message);
    sd_model_free(m);
    unlink(path);
    rmdir(dir);
}

/* Copies the single file, dropping `drop`, renaming through `rename_prefix`
 * (from -> to), replacing `bad` by a (2, 2) tensor, adding `extra`. */
static const char *edit_single(const char *out, const char *drop, const char *from,
                               const char *to, const char *bad, const char **extra, int n_extra) {
    oir_error err = {0};
    st_file *f = NULL;
    if (!CHECK(st_open(&f, single, &err) == OIR_OK, "%s", err.message)) return NULL;
    st_writer *w = st_writer_new();
    float z[4] = {0};
    int64_t s2[2] = {2, 2};
    char name[512];
    for (int i = 0; i < st_count(f); i++) {
        const char *nm = st_name_at(f, i);
        if (drop && !strcmp(nm, drop)) continue;
        if (bad && !strcmp(nm, bad)) {
            st_writer_add_f32(w, nm, z, 2, s2, &err);
            continue;
        }
        if (from && !strncmp(nm, from, strlen(from)))
            snprintf(name, sizeof name, "%s%s", to, nm + strlen(from));
        else
            snprintf(name, sizeof name, "%s", nm);
        st_writer_add(w, name, st_tensor_at(f, i), &err);
    }
    for (int i = 0; i < n_extra; i++) st_writer_add_f32(w, extra[i], z, 2, s2, &err);
    int rc = st_writer_save(w, tpath(out), &err);
    st_writer_free(w);
    st_close(f);
    return CHECK(rc == OIR_OK, "save %s: %s", out, err.message) ? tpath(out) : NULL;
}

static void test_single_file_problems(void) {
    oir_error err = {0};
    sd_model *m = NULL;
    sd_load_params p = sd_load_default_params();
    p.config_dir = pipe_dir;
    const char *path = edit_single("missing.safetensors",
                                   "model.diffusion_model.input_blocks.1.0.in_layers.2.weight", NULL,
                                   NULL, NULL, NULL, 0);
    int rc = path ? sd_model_load(&m, path, &p, &err) : -1;
    CHECK(rc == OIR_E_MISSING && strstr(err.message, "down_blocks.0.resnets.0.conv1.weight") &&
              strstr(err.message, "model.diffusion_model.input_blocks.1.0.in_layers.2.weight"),
          "missing tensor named (diffusers and checkpoint names): %s", err.message);
    sd_model_free(m);
    m = NULL;

    path = edit_single("badshape.safetensors", NULL, NULL, NULL,
                       "first_stage_model.encoder.conv_in.weight", NULL, 0);
    rc = path ? sd_model_load(&m, path, &p, &err) : -1;
    CHECK(rc == OIR_E_SHAPE && strstr(err.message, "vae") &&
              strstr(err.message, "encoder.conv_in.weight") && strstr(err.message, "[2, 2]"),
          "mis-shaped tensor named: %s", err.message);
    sd_model_free(m);
    m = NULL;

    const char *extra[] = {"model.diffusion_model.extra_layer.weight", "model_ema.decay",
                           "alphas_cumprod"};
    path = edit_single("extra.safetensors", NULL, NULL, NULL, NULL, extra, 3);
    rc = path ? sd_model_load(&m, path, &p, &err) : -1;
    if (CHECK(rc == OIR_OK, "extras load: %s", err.message)) {
        CHECK(sd_model_unused_count(m) == 1 &&
                  !strcmp(sd_model_unused_at(m, 0), "unet: model.diffusion_model.extra_layer.weight"),
              "unused tensor listed by name: %d %s", sd_model_unused_count(m),
              sd_model_unused_at(m, 0) ? sd_model_unused_at(m, 0) : "-");
        CHECK(sd_model_other_count(m) == 2, "2 tensors outside the models, got %d",
              sd_model_other_count(m));
    }
    sd_model_free(m);
    m = NULL;

    /* Text encoder keys of an older transformers (no "text_model."). */
    path = edit_single("legacy.safetensors", NULL, "cond_stage_model.transformer.text_model.",
                       "cond_stage_model.transformer.", NULL, NULL, 0);
    rc = path ? sd_model_load(&m, path, &p, &err) : -1;
    CHECK(rc == OIR_OK && m && m->text_encoder && sd_model_unused_count(m) == 0,
          "legacy text encoder keys: %s", err.message);
    sd_model_free(m);
}

static const char *fake_checkpoint(const char *name, const char *const *keys, int n, int ctx) {
    oir_error err = {0};
    st_writer *w = st_writer_new();
    float *z = calloc((size_t)4 * (ctx ? ctx : 1), sizeof *z);
    for (int i = 0; i < n; i++) {
        int64_t shape[2] = {4, ctx ? ctx : 1};
        st_writer_add_f32(w, keys[i], z, strstr(keys[i], "attn2.to_k") ? 2 : 1, shape, &err);
    }
    int rc = st_writer_save(w, tpath(name), &err);
    st_writer_free(w);
    free(z);
    return CHECK(rc == OIR_OK, "save %s: %s", name, err.message) ? tpath(name) : NULL;
}

static void expect_refusal(const char *what, const char *path, int code, const char *n1,
                           const char *n2) {
    oir_error err = {0};
    sd_model *m = NULL;
    int rc = path ? sd_model_load(&m, path, NULL, &err) : -1;
    CHECK(rc == code && !m && (!n1 || strstr(err.message, n1)) && (!n2 || strstr(err.message, n2)),
          "%s: rc %d: %s", what, rc, err.message);
    sd_model_free(m);
}

static void test_refusals(void) {
    const char *sdxl[] = {"conditioner.embedders.0.transformer.text_model.final_layer_norm.weight",
                          "model.diffusion_model.input_blocks.0.0.bias"};
    expect_refusal("SDXL", fake_checkpoint("sdxl.safetensors", sdxl, 2, 0), OIR_E_UNSUPPORTED,
                   "Stable Diffusion XL", "conditioner.embedders");
    const char *sd2[] = {"cond_stage_model.model.ln_final.weight",
                         "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"};
    expect_refusal("SD 2.x (OpenCLIP)", fake_checkpoint("sd2.safetensors", sd2, 2, 1024),
                   OIR_E_UNSUPPORTED, "Stable Diffusion 2.x", "cond_stage_model.model");
    expect_refusal("SD 2.x (context 1024)", fake_checkpoint("sd2b.safetensors", sd2 + 1, 1, 1024),
                   OIR_E_UNSUPPORTED, "Stable Diffusion 2.x", "1024");
    const char *xl_unet[] = {"model.diffusion_model.label_emb.0.0.weight",
                             "model.diffusion_model.input_blocks.0.0.bias"};
    expect_refusal("class-conditioned UNet", fake_checkpoint("label.safetensors", xl_unet, 2, 0),
                   OIR_E_UNSUPPORTED, "label_emb", NULL);
    const char *other[] = {"encoder.layer.0.weight"};
    expect_refusal("not SD", fake_checkpoint("other.safetensors", other, 1, 0), OIR_E_UNSUPPORTED,
                   "not a Stable Diffusion checkpoint", NULL);

    /* Pickles: by extension, by magic bytes, in a folder. Never opened as data. */
    write_text(tpath("model.ckpt"), "PK\x03\x04 not really a zip");
    expect_refusal("model.ckpt", tpath("model.ckpt"), OIR_E_UNSUPPORTED, "pickle", "safetensors");
    oir_error err = {0};
    sd_model *m = NULL;
    sd_model_load(&m, tpath("model.ckpt"), NULL, &err);
    CHECK(strstr(err.message, "model.ckpt: pickle checkpoints can execute code") &&
              strstr(err.message, "convert_original_stable_diffusion_to_diffusers.py"),
          "the message says why and how to convert: %s", err.message);
    write_text(tpath("weights.pt"), "x");
    expect_refusal("weights.pt", tpath("weights.pt"), OIR_E_UNSUPPORTED, "pickle", NULL);
    write_text(tpath("disguised.safetensors"), "\x80\x02}q(X\x05");
    expect_refusal("pickle named .safetensors", tpath("disguised.safetensors"), OIR_E_UNSUPPORTED,
                   "pickle", NULL);
    CHECK(model_path_detect(tpath("disguised.safetensors")) == MODEL_PATH_PICKLE, "magic sniffed");

    /* A pipeline whose unet has only diffusion_pytorch_model.bin. */
    mkdir(tpath("pk"), 0755);
    mkdir(tpath("pk/unet"), 0755);
    link_to(fpath("model_index.json"), tpath("pk/model_index.json"));
    const char *comps[] = {"text_encoder", "tokenizer", "vae", "scheduler"};
    char a[1024], b[1024];
    for (int i = 0; i < 4; i++) {
        snprintf(a, sizeof a, "%s", fpath(comps[i]));
        snprintf(b, sizeof b, "pk/%s", comps[i]);
        link_to(a, tpath(b));
    }
    link_to(fpath("unet/config.json"), tpath("pk/unet/config.json"));
    write_text(tpath("pk/unet/diffusion_pytorch_model.bin"), "x");
    expect_refusal("folder with .bin weights", tpath("pk"), OIR_E_UNSUPPORTED, "pk/unet", "pickle");

    /* SDXL diffusers folder. */
    mkdir(tpath("xl"), 0755);
    write_text(tpath("xl/model_index.json"),
               "{\"_class_name\": \"StableDiffusionXLPipeline\", \"unet\": [\"diffusers\", "
               "\"UNet2DConditionModel\"], \"text_encoder_2\": [\"transformers\", "
               "\"CLIPTextModelWithProjection\"]}");
    expect_refusal("SDXL folder", tpath("xl"), OIR_E_UNSUPPORTED, "StableDiffusionXLPipeline", NULL);

    expect_refusal("absent path", "/nonexistent/model", OIR_E_IO, "/nonexistent/model", NULL);
    expect_refusal("component folder", fpath("unet"), OIR_E_FORMAT, "model_index.json", NULL);
    mkdir(tpath("empty"), 0755);
    expect_refusal("empty folder", tpath("empty"), OIR_E_FORMAT, "model_index.json", NULL);
}

/* The tiny pipeline with the unet split into two shards, and one whose unet
 * only has the fp16 variant. */
static void test_shards_and_variants(void) {
    oir_error err = {0};
    const char *d[] = {"sh", "v16"};
    for (int k = 0; k < 2; k++) {
        char a[1024], b[1024];
        snprintf(b, sizeof b, "%s", d[k]);
        mkdir(tpath(b), 0755);
        snprintf(b, sizeof b, "%s/unet", d[k]);
        mkdir(tpath(b), 0755);
        snprintf(b, sizeof b, "%s/model_index.json", d[k]);
        link_to(fpath("model_index.json"), tpath(b));
        const char *comps[] = {"text_encoder", "tokenizer", "vae", "scheduler"};
        for (int i = 0; i < 4; i++) {
            snprintf(a, sizeof a, "%s", fpath(comps[i]));
            snprintf(b, sizeof b, "%s/%s", d[k], comps[i]);
            link_to(a, tpath(b));
        }
        snprintf(b, sizeof b, "%s/unet/config.json", d[k]);
        link_to(fpath("unet/config.json"), tpath(b));
    }
    link_to(fpath("unet/diffusion_pytorch_model.fp16.safetensors"),
            tpath("v16/unet/diffusion_pytorch_model.fp16.safetensors"));
    sd_model *m = NULL;
    int rc = sd_model_load(&m, tpath("v16"), NULL, &err);
    CHECK(rc == OIR_E_IO && strstr(err.message, "fp16") && strstr(err.message, "variant"),
          "only a variant present: the message names it: %s", err.message);
    sd_model_free(m);

    st_file *f = NULL;
    if (!CHECK(st_open(&f, fpath("unet/diffusion_pytorch_model.safetensors"), &err) == OIR_OK,
               "%s", err.message))
        return;
    st_writer *w[2] = {st_writer_new(), st_writer_new()};
    FILE *idx = fopen(tpath("sh/unet/diffusion_pytorch_model.safetensors.index.json"), "wb");
    fprintf(idx, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
    for (int i = 0; i < st_count(f); i++) {
        st_writer_add(w[i % 2], st_name_at(f, i), st_tensor_at(f, i), &err);
        fprintf(idx, "%s\"%s\": \"diffusion_pytorch_model-0000%d-of-00002.safetensors\"", i ? ", " : "",
                st_name_at(f, i), i % 2 + 1);
    }
    fprintf(idx, "}}\n");
    fclose(idx);
    st_writer_save(w[0], tpath("sh/unet/diffusion_pytorch_model-00001-of-00002.safetensors"), &err);
    st_writer_save(w[1], tpath("sh/unet/diffusion_pytorch_model-00002-of-00002.safetensors"), &err);
    st_writer_free(w[0]);
    st_writer_free(w[1]);
    st_close(f);
    rc = sd_model_load(&m, tpath("sh"), NULL, &err);
    if (CHECK(rc == OIR_OK, "sharded unet: %s", err.message)) {
        CHECK(has_note(m, "(+ shards)") && sd_model_unused_count(m) == 0, "shards noted, no unused");
        float *out = unet_eval(m);
        if (out && ref_out) th_close("unet: shards = one file", out, ref_out, ref_n, 0, 0);
        free(out);
    }
    sd_model_free(m);
}

static void test_plan_and_detect(void) {
    oir_error err = {0};
    CHECK(model_path_detect(pipe_dir) == MODEL_PATH_DIFFUSERS, "pipeline detected");
    CHECK(model_path_detect(fpath("unet")) == MODEL_PATH_COMPONENT, "component folder detected");
    CHECK(model_path_detect(clip_dir) == MODEL_PATH_CLIP, "CLIP folder detected");
    CHECK(model_path_detect(single) == MODEL_PATH_SINGLE_FILE, "single file detected");
    CHECK(model_path_detect("/nonexistent") == MODEL_PATH_UNKNOWN, "absent path");
    sd_plan plan;
    if (!CHECK(sd_plan_folder(&plan, pipe_dir, "fp16", &err) == OIR_OK, "plan: %s", err.message))
        return;
    int seen = 0;
    for (int i = 0; i < plan.n; i++) {
        const sd_component_plan *c = &plan.comp[i];
        if (!strcmp(c->name, "unet")) {
            seen++;
            CHECK(c->nfiles == 1 && strstr(c->files[0], "diffusion_pytorch_model.fp16.safetensors") &&
                      !strcmp(c->variants, "fp16") && strstr(c->config, "unet/config.json"),
                  "unet plan: %d files, variants '%s'", c->nfiles, c->variants);
        } else if (!strcmp(c->name, "vae")) {
            seen++;
            CHECK(c->nfiles == 1 && strstr(c->files[0], "vae/diffusion_pytorch_model.safetensors"),
                  "vae plan falls back to the plain file");
        } else if (!strcmp(c->name, "scheduler")) {
            seen++;
            CHECK(c->nfiles == 0 && strstr(c->config, "scheduler_config.json"), "scheduler plan");
        }
    }
    CHECK(seen == 3 && !strcmp(plan.class_name, "StableDiffusionPipeline"), "plan components");
    sd_plan_free(&plan);
}

/* A component folder with only the plain weights file: its name is
 * "<base>.safetensors", which once made the variant scan compute a length of
 * (size_t)-1 and read past the name (found by fuzz_model_config). */
static void test_plan_plain_only(void) {
    oir_error err = {0};
    mkdir(tpath("plain"), 0755);
    write_text(tpath("plain/config.json"), "{\"_class_name\": \"UNet2DConditionModel\"}\n");
    write_text(tpath("plain/diffusion_pytorch_model.safetensors"), "");
    write_text(tpath("plain/diffusion_pytorch_model.safetensors.fp16"), "");
    write_text(tpath("plain/diffusion_pytorch_model.x.y.safetensors"), "");
    write_text(tpath("plain/diffusion_pytorch_model.bf16.safetensors"), "");
    sd_plan plan;
    if (!CHECK(sd_plan_folder(&plan, tpath("plain"), NULL, &err) == OIR_OK, "plain plan: %s",
               err.message))
        return;
    CHECK(plan.n == 1 && plan.comp[0].nfiles == 1 &&
              strstr(plan.comp[0].files[0], "plain/diffusion_pytorch_model.safetensors") &&
              !strcmp(plan.comp[0].variants, "bf16"),
          "plain file planned, variants '%s' (only bf16)", plan.n ? plan.comp[0].variants : "");
    sd_plan_free(&plan);
}

static void test_clip(void) {
    oir_error err = {0};
    clip_model *c = NULL;
    int rc = clip_model_load(&c, clip_dir, &err);
    if (CHECK(rc == OIR_OK, "clip %s: %s", clip_dir, err.message)) {
        CHECK(c->tokenizer && c->text && c->vision, "clip parts");
        CHECK(clip_model_unused_count(c) == 0, "clip: no unused tensors (%d, first %s)",
              clip_model_unused_count(c),
              clip_model_unused_at(c, 0) ? clip_model_unused_at(c, 0) : "-");
        CHECK(c->preprocess.crop_height > 0, "preprocessor config read");
    }
    clip_model_free(c);
    c = NULL;
    rc = clip_model_load(&c, pipe_dir, &err);
    CHECK(rc == OIR_E_FORMAT && strstr(err.message, "CLIP"), "a pipeline is not a CLIP folder: %s",
          err.message);
}

int main(void) {
    snprintf(pipe_dir, sizeof pipe_dir, "%s", th_fixture_path("sd/tiny-pipe"));
    snprintf(single, sizeof single, "%s", th_fixture_path("sd/tiny-pipe.safetensors"));
    snprintf(clip_dir, sizeof clip_dir, "%s", th_fixture_path("sd/clip-tiny"));
    snprintf(tmp, sizeof tmp, "/tmp/oir_test_loader_XXXXXX");
    if (!CHECK(mkdtemp(tmp) != NULL, "mkdtemp")) return th_summary();
    struct stat sb;
    if (!CHECK(stat(pipe_dir, &sb) == 0, "fixture %s missing (tools/fixtures/make_sd_fixtures.py)",
               pipe_dir))
        return th_summary();
    test_diffusers_folder();
    test_single_file();
    test_no_tokenizer_folder();
    test_single_file_problems();
    test_refusals();
    test_shards_and_variants();
    test_plan_and_detect();
    test_plan_plain_only();
    test_clip();
    free(ref_out);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return th_summary();
}
