/* Hostile inputs across the library (issue 10): a FIFO given wherever a file
 * is read, duplicate keys in every JSON file the engine reads, config values
 * out of any sane range or not finite, a CLIP scorer wider than the old
 * fixed buffers, and weights that overflow float32 at run time. Every file
 * is made here, in a temp dir, from the tiny fixtures (tests/fixtures/sd).
 *
 * Calls that blocked forever on a FIFO run in a child process with a 10 s
 * limit, so a regression fails the check instead of hanging the suite. */
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "diffusion/ddim.h"
#include "diffusion/sampler.h"
#include "harness.h"
#include "io/image.h"
#include "models/loader.h"
#include "models/model_config.h"
#include "models/tokenizer.h"
#include "oir.h"

static char tmp[256];
static char pipe_src[1024], clip_src[1024];

static const char *tpath(const char *name) {
    static char buf[8][1400];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp, name);
    return buf[k];
}

static int run(const char *fmt, const char *a, const char *b) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    return system(cmd);
}

static char *slurp(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, fp) == (size_t)n) s[n] = 0;
    fclose(fp);
    return s;
}

static void write_text(const char *path, const char *text) {
    FILE *fp = fopen(path, "wb");
    if (!CHECK(fp != NULL, "cannot write %s", path)) return;
    fputs(text, fp);
    fclose(fp);
}

/* Replaces the first `from` in the file by `to`. */
static void edit_text(const char *path, const char *from, const char *to) {
    char *s = slurp(path);
    char *at = s ? strstr(s, from) : NULL;
    if (!CHECK(at != NULL, "%s: '%s' not found", path, from)) {
        free(s);
        return;
    }
    size_t n = strlen(s) + strlen(to) + 1;
    char *o = malloc(n);
    snprintf(o, n, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
    write_text(path, o);
    free(o);
    free(s);
}

/* ---- FIFOs ------------------------------------------------------------- */

typedef int (*open_fn)(const char *path, oir_error *err);

/* Runs fn(path) in a child: it must return an error naming path and saying
 * `needle` within 10 s. */
static void expect_refused_quickly(const char *label, open_fn fn, const char *path,
                                   const char *needle) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(30); /* a stuck child never outlives the test */
        oir_error err = {0};
        int rc = fn(path, &err);
        int ok = rc != OIR_OK && strstr(err.message, needle) != NULL;
        printf("  %s %-34s -> %s\n", ok ? "ok  " : "FAIL", label, rc ? err.message : "(no error)");
        fflush(stdout);
        _exit(ok ? 0 : 1);
    }
    if (!CHECK(pid > 0, "fork")) return;
    int status = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (t1.tv_sec - t0.tv_sec > 10) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            CHECK(0, "%s: still blocked after 10 s", label);
            return;
        }
        usleep(5000);
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: not refused with '%s' (status %d)",
          label, needle, status);
}

static int f_st_open(const char *p, oir_error *e) {
    st_file *f = NULL;
    int rc = st_open(&f, p, e);
    st_close(f);
    return rc;
}
static int f_image(const char *p, oir_error *e) {
    image img;
    int rc = image_load(&img, p, e);
    if (!rc) image_free(&img);
    return rc;
}
static int f_mask(const char *p, oir_error *e) {
    image img;
    int rc = mask_load_square(&img, p, 16, e);
    if (!rc) image_free(&img);
    return rc;
}
static int f_ddim(const char *p, oir_error *e) {
    ddim_config c;
    return ddim_config_load(&c, p, e);
}
static int f_unet_cfg(const char *p, oir_error *e) {
    unet_config c;
    return unet_config_load(&c, p, e);
}
static int f_vae_cfg(const char *p, oir_error *e) {
    vae_config c;
    return vae_config_load(&c, p, e);
}
static int f_clip_cfg(const char *p, oir_error *e) {
    clip_text_config c;
    return clip_text_config_load(&c, p, e);
}
static int f_preprocess(const char *p, oir_error *e) {
    clip_preprocess_config c;
    return clip_preprocess_config_load(&c, p, e);
}
static int f_model_config(const char *p, oir_error *e) {
    model_config c;
    int rc = model_config_read(&c, p, e);
    if (!rc) model_config_free(&c);
    return rc;
}
static int f_sd_load(const char *p, oir_error *e) {
    sd_model *m = NULL;
    int rc = sd_model_load(&m, p, NULL, e);
    sd_model_free(m);
    return rc;
}
static int f_clip_load(const char *p, oir_error *e) {
    clip_model *m = NULL;
    int rc = clip_model_load(&m, p, e);
    clip_model_free(m);
    return rc;
}

static int f_tokenizer(const char *p, oir_error *e) {
    tokenizer *t = NULL;
    int rc = tokenizer_load(&t, p, e);
    tokenizer_free(t);
    return rc;
}

/* A tokenizer folder whose vocab.json is a FIFO / has a key twice. */
static void test_tokenizer_files(void) {
    const char *dir = tpath("tok_fifo");
    run("mkdir -p '%s' && cp models/tiny-shapes/tokenizer/merges.txt '%s/'", dir, dir);
    char p[1600];
    snprintf(p, sizeof p, "%s/vocab.json", dir);
    if (CHECK(mkfifo(p, 0600) == 0, "mkfifo vocab.json"))
        expect_refused_quickly("FIFO as vocab.json", f_tokenizer, dir, "not a regular file");
    dir = tpath("tok_dup");
    run("mkdir -p '%s' && cp models/tiny-shapes/tokenizer/merges.txt '%s/'", dir, dir);
    snprintf(p, sizeof p, "%s/vocab.json", dir);
    write_text(p, "{\"a</w>\": 0, \"b</w>\": 1, \"a</w>\": 2}");
    oir_error err = {0};
    int rc = f_tokenizer(dir, &err);
    CHECK(rc == OIR_E_FORMAT && strstr(err.message, "appears twice") && strstr(err.message, "vocab.json"),
          "duplicate key in vocab.json refused: %d %s", rc, err.message);
}

static void test_fifos(void) {
    const char *fifo = tpath("fifo");
    if (!CHECK(mkfifo(fifo, 0600) == 0, "mkfifo")) return;
    const char *nr = "not a regular file";
    expect_refused_quickly("FIFO as safetensors", f_st_open, fifo, nr);
    expect_refused_quickly("FIFO as image", f_image, fifo, nr);
    expect_refused_quickly("FIFO as mask", f_mask, fifo, nr);
    expect_refused_quickly("FIFO as scheduler config", f_ddim, fifo, nr);
    expect_refused_quickly("FIFO as unet config", f_unet_cfg, fifo, nr);
    expect_refused_quickly("FIFO as vae config", f_vae_cfg, fifo, nr);
    expect_refused_quickly("FIFO as CLIP config", f_clip_cfg, fifo, nr);
    expect_refused_quickly("FIFO as preprocessor config", f_preprocess, fifo, nr);
    expect_refused_quickly("FIFO as JSON config", f_model_config, fifo, nr);
    expect_refused_quickly("FIFO as model path", f_sd_load, fifo, nr);
    /* A shard index that names a FIFO as its shard. */
    const char *dir = tpath("pipe_fifo_shard");
    run("cp -r '%s' '%s'", pipe_src, dir);
    char p[1600];
    snprintf(p, sizeof p, "%s/unet/diffusion_pytorch_model.safetensors", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/unet/diffusion_pytorch_model.safetensors.index.json", dir);
    write_text(p, "{\"metadata\": {}, \"weight_map\": {\"conv_in.weight\": \"shard-1.safetensors\"}}");
    snprintf(p, sizeof p, "%s/unet/shard-1.safetensors", dir);
    CHECK(mkfifo(p, 0600) == 0, "mkfifo shard");
    expect_refused_quickly("FIFO as a weight shard", f_sd_load, dir, nr);
    /* /dev/zero as an image: never read without end. */
    expect_refused_quickly("character device as image", f_image, "/dev/zero", nr);
}

/* ---- duplicate keys ---------------------------------------------------- */

static void expect_dup(const char *label, open_fn fn, const char *path, const char *key,
                       const char *file_part) {
    oir_error err = {0};
    int rc = fn(path, &err);
    char want[128];
    snprintf(want, sizeof want, "\"%s\" appears twice", key);
    int ok = CHECK(rc == OIR_E_FORMAT && strstr(err.message, want) && strstr(err.message, file_part),
                   "%s: expected OIR_E_FORMAT naming %s and %s, got %d: %s", label, file_part, want,
                   rc, err.message);
    if (ok) printf("  ok   %-34s -> %s\n", label, err.message);
}

static void test_duplicate_keys(void) {
    const char *dir = tpath("pipe_dup");
    run("cp -r '%s' '%s'", pipe_src, dir);
    char p[1600], *orig;
    /* each file in turn gets a duplicate key, then is restored */
    struct {
        const char *file, *from, *to, *key;
    } cases[] = {
        {"model_index.json", "{", "{\"unet\": [\"diffusers\", \"UNet2DConditionModel\"],", "unet"},
        {"unet/config.json", "{", "{\"in_channels\": 4,", "in_channels"},
        {"vae/config.json", "{", "{\"latent_channels\": 4,", "latent_channels"},
        {"text_encoder/config.json", "{", "{\"hidden_size\": 32,", "hidden_size"},
        {"scheduler/scheduler_config.json", "{", "{\"beta_start\": 0.00085,", "beta_start"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, cases[i].file);
        orig = slurp(p);
        edit_text(p, cases[i].from, cases[i].to);
        char label[96];
        snprintf(label, sizeof label, "duplicate key in %s", cases[i].file);
        expect_dup(label, f_sd_load, dir, cases[i].key, cases[i].file);
        if (orig) write_text(p, orig);
        free(orig);
    }
    /* a shard index with two weight maps */
    snprintf(p, sizeof p, "%s/unet/diffusion_pytorch_model.safetensors", dir);
    char shard[1600];
    snprintf(shard, sizeof shard, "%s/unet/shard-1.safetensors", dir);
    CHECK(rename(p, shard) == 0, "rename shard");
    snprintf(p, sizeof p, "%s/unet/diffusion_pytorch_model.safetensors.index.json", dir);
    write_text(p, "{\"weight_map\": {\"conv_in.weight\": \"shard-1.safetensors\"},"
                  " \"weight_map\": {\"conv_in.weight\": \"other.safetensors\"}}");
    expect_dup("duplicate key in a shard index", f_sd_load, dir, "weight_map", "index.json");
    /* the CLIP folder: a nested key, and the preprocessor config */
    const char *cdir = tpath("clip_dup");
    run("cp -r '%s' '%s'", clip_src, cdir);
    snprintf(p, sizeof p, "%s/config.json", cdir);
    orig = slurp(p);
    edit_text(p, "\"text_config\": {", "\"text_config\": {\"vocab_size\": 5,");
    expect_dup("duplicate key under text_config", f_clip_load, cdir, "vocab_size", "config.json");
    if (orig) write_text(p, orig);
    free(orig);
    snprintf(p, sizeof p, "%s/preprocessor_config.json", cdir);
    edit_text(p, "{", "{\"do_resize\": false,");
    expect_dup("duplicate key in preprocessor config", f_preprocess, p, "do_resize",
               "preprocessor_config.json");
    /* the parse entry point used for scheduler configs given as text */
    ddim_config dc;
    oir_error err = {0};
    int rc = ddim_config_parse(&dc, "{\"steps_offset\": 1, \"steps_offset\": 0}", "sched.json", &err);
    CHECK(rc == OIR_E_FORMAT && strstr(err.message, "\"steps_offset\" appears twice"),
          "ddim_config_parse: %s", err.message);
}

/* ---- config limits and non-finite values ------------------------------- */

typedef int (*from_json_fn)(const char *json, oir_error *err);

static int j_clip_text(const char *json, oir_error *err) {
    cJSON *r = cJSON_Parse(json);
    clip_text_config c;
    int rc = clip_text_config_from_json(&c, r, "text.json", err);
    cJSON_Delete(r);
    return rc;
}
static int j_clip_vision(const char *json, oir_error *err) {
    cJSON *r = cJSON_Parse(json);
    clip_vision_config c;
    int rc = clip_vision_config_from_json(&c, r, "vision.json", err);
    cJSON_Delete(r);
    return rc;
}
static int j_unet(const char *json, oir_error *err) {
    cJSON *r = cJSON_Parse(json);
    unet_config c;
    int rc = unet_config_from_json(&c, r, "unet.json", err);
    cJSON_Delete(r);
    return rc;
}
static int j_vae(const char *json, oir_error *err) {
    cJSON *r = cJSON_Parse(json);
    vae_config c;
    int rc = vae_config_from_json(&c, r, "vae.json", err);
    cJSON_Delete(r);
    return rc;
}
static int j_preprocess(const char *json, oir_error *err) {
    const char *p = tpath("pre.json");
    write_text(p, json);
    clip_preprocess_config c;
    return clip_preprocess_config_load(&c, p, err);
}

static void expect_field(const char *label, from_json_fn fn, const char *json, const char *field) {
    oir_error err = {0};
    int rc = fn(json, &err);
    int ok = CHECK(rc != OIR_OK && strstr(err.message, field), "%s: expected an error naming %s, got %d: %s",
                   label, field, rc, err.message);
    if (ok) printf("  ok   %-34s -> %s\n", label, err.message);
}

static void test_config_limits(void) {
    /* sizes: accepted by the old 1e9 / 2^20 bounds, each would allocate or
     * loop for minutes (num_hidden_layers 1e7 ran 199 s to 16 GB) */
    expect_field("CLIP 1e7 layers", j_clip_text, "{\"num_hidden_layers\": 10000000}", "num_hidden_layers");
    expect_field("CLIP vocab 1e9", j_clip_text, "{\"vocab_size\": 1000000000}", "vocab_size");
    expect_field("CLIP 1e6 positions", j_clip_text, "{\"max_position_embeddings\": 1000000}",
                 "max_position_embeddings");
    expect_field("CLIP intermediate 1e9", j_clip_text, "{\"intermediate_size\": 1000000000}",
                 "intermediate_size");
    expect_field("CLIP hidden 1e9", j_clip_text,
                 "{\"hidden_size\": 999999999, \"num_attention_heads\": 1}", "hidden_size");
    expect_field("CLIP projection 1e9", j_clip_text, "{\"projection_dim\": 1000000000}", "projection_dim");
    expect_field("ViT 16384 patches a side", j_clip_vision, "{\"image_size\": 16384, \"patch_size\": 1}",
                 "patch_size");
    expect_field("ViT 1e6 heads", j_clip_vision,
                 "{\"hidden_size\": 1000000, \"num_attention_heads\": 1000000}", "hidden_size");
    expect_field("UNet cross_attention_dim 1e6", j_unet, "{\"cross_attention_dim\": 1000000}",
                 "cross_attention_dim");
    expect_field("UNet time_embedding_dim 1e6", j_unet, "{\"time_embedding_dim\": 1000000}",
                 "time_embedding_dim");
    expect_field("UNet in_channels 1e6", j_unet, "{\"in_channels\": 1000000}", "in_channels");
    expect_field("UNet conv_in_kernel 1e5+1", j_unet, "{\"conv_in_kernel\": 100001}", "conv_in_kernel");
    expect_field("UNet 1e4 heads", j_unet, "{\"attention_head_dim\": 10240}", "attention_head_dim");
    expect_field("VAE latent_channels 1e4", j_vae, "{\"latent_channels\": 10000}", "latent_channels");
    expect_field("preprocess crop 1e9", j_preprocess,
                 "{\"crop_size\": {\"height\": 1000000000, \"width\": 32}}", "height");
    /* non-finite: 1e300 is a finite double but inf as a float */
    expect_field("UNet norm_eps 1e300", j_unet, "{\"norm_eps\": 1e300}", "norm_eps");
    expect_field("UNet freq_shift 1e300", j_unet, "{\"freq_shift\": 1e300}", "freq_shift");
    expect_field("UNet mid_block_scale 1e300", j_unet, "{\"mid_block_scale_factor\": 1e300}",
                 "mid_block_scale_factor");
    expect_field("VAE scaling_factor 1e300", j_vae, "{\"scaling_factor\": 1e300}", "scaling_factor");
    expect_field("CLIP layer_norm_eps 1e300", j_clip_text, "{\"layer_norm_eps\": 1e300}", "layer_norm_eps");
    expect_field("preprocess rescale 1e300", j_preprocess, "{\"rescale_factor\": 1e300}", "rescale_factor");
    expect_field("preprocess mean 1e300", j_preprocess, "{\"image_mean\": [1e300, 0, 0]}", "image_mean");
    expect_field("ints as huge doubles", j_unet, "{\"in_channels\": 1e300}", "in_channels");
    /* 1e999 overflows a double: the JSON reader refuses it, naming the key */
    expect_field("number beyond double", j_preprocess, "{\"rescale_factor\": 1e999}", "rescale_factor");
    ddim_config dc;
    oir_error err = {0};
    int rc = ddim_config_parse(&dc, "{\"beta_end\": 1e999}", "sched.json", &err);
    CHECK(rc == OIR_E_FORMAT && strstr(err.message, "beta_end"), "scheduler beta_end 1e999: %s",
          err.message);
    rc = ddim_config_parse(&dc, "{\"clip_sample\": true, \"clip_sample_range\": 0}", "sched.json", &err);
    CHECK(rc == OIR_E_FORMAT && strstr(err.message, "clip_sample_range"), "clip_sample_range 0: %s",
          err.message);
    /* real configs keep loading: SD 1.5's and ViT-bigG's widths */
    CHECK(j_unet("{\"cross_attention_dim\": 2048, \"block_out_channels\": [320, 640, 1280, 1280]}", &err) == OIR_OK,
          "SDXL-wide cross_attention_dim accepted: %s", err.message);
    CHECK(j_clip_text("{\"hidden_size\": 1280, \"num_attention_heads\": 20, \"num_hidden_layers\": 32,"
                      " \"intermediate_size\": 5120, \"projection_dim\": 1280}", &err) == OIR_OK,
          "ViT-bigG text config accepted: %s", err.message);
    CHECK(j_clip_vision("{\"hidden_size\": 1664, \"num_attention_heads\": 16, \"num_hidden_layers\": 48,"
                        " \"intermediate_size\": 8192, \"patch_size\": 14, \"projection_dim\": 1280}",
                        &err) == OIR_OK,
          "ViT-bigG vision config accepted: %s", err.message);
}

/* sample_size x the VAE factor: 1e9 x 8 overflowed int for SD's VAE (a
 * negative native size); with this model's factor 2 a 2e9-pixel "native
 * size" was accepted. A single-file checkpoint's shapes over INT_MAX wrapped
 * to negative config values. */
static void test_sizes_from_files(void) {
    oir_error err = {0};
    sd_model *m = NULL;
    char single[1100];
    snprintf(single, sizeof single, "%s", th_fixture_path("sd/tiny-pipe.safetensors"));
    sd_load_params lp = sd_load_default_params();
    lp.components = SD_VAE;
    lp.config_dir = pipe_src;
    if (CHECK(sd_model_load(&m, single, &lp, &err) == OIR_OK, "single file: %s", err.message)) {
        const char *cd = tpath("cfg_huge");
        mkdir(cd, 0700);
        mkdir(tpath("cfg_huge/unet"), 0700);
        write_text(tpath("cfg_huge/unet/config.json"), "{\"sample_size\": 1000000000}");
        int size = 0;
        int rc = sd_model_native_size(m, cd, &size, &err);
        CHECK(rc != OIR_OK && strstr(err.message, "sample_size"), "sample_size 1e9: %d, size %d: %s", rc,
              size, err.message);
        sd_model_free(m);
    }
    /* LDM names with zero-size tensors of absurd widths (valid safetensors) */
    st_writer *w = st_writer_new();
    float z[1] = {0};
    struct {
        const char *name;
        int64_t shape[4];
        int nd;
    } t[] = {
        {"model.diffusion_model.input_blocks.0.0.weight", {2147483968LL, 4, 3, 0}, 4},
        {"model.diffusion_model.out.2.weight", {4, 320, 3, 0}, 4},
        {"model.diffusion_model.time_embed.0.weight", {2147483968LL, 0}, 2},
        {"model.diffusion_model.input_blocks.1.0.in_layers.2.weight", {320, 320, 3, 0}, 4},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        tensor x = {.type = DT_F32, .ndim = t[i].nd, .data = z};
        memcpy(x.shape, t[i].shape, sizeof t[i].shape);
        CHECK(st_writer_add(w, t[i].name, &x, &err) == OIR_OK, "add: %s", err.message);
    }
    const char *ck = tpath("wide.safetensors");
    CHECK(st_writer_save(w, ck, &err) == OIR_OK, "save: %s", err.message);
    st_writer_free(w);
    lp.components = SD_UNET;
    lp.config_dir = NULL;
    int rc = sd_model_load(&m, ck, &lp, &err);
    CHECK(rc != OIR_OK && strstr(err.message, "time_embedding_dim") && !strstr(err.message, "-2147"),
          "2^31+320 channels: no wrapped size: %s", err.message);
    sd_model_free(m);
}

/* ---- models made here -------------------------------------------------- */

typedef int (*tensor_edit)(const char *name, const tensor *in, tensor *out, void *user);

/* Copies a safetensors file, letting edit replace tensors (out owned). */
static int rewrite_st(const char *src, const char *dst, tensor_edit edit, void *user) {
    oir_error err = {0};
    st_file *f = NULL;
    if (!CHECK(st_open(&f, src, &err) == OIR_OK, "%s", err.message)) return 0;
    st_writer *w = st_writer_new();
    int ok = 1;
    for (int i = 0; i < st_count(f) && ok; i++) {
        tensor nt = {0};
        if (edit(st_name_at(f, i), st_tensor_at(f, i), &nt, user)) {
            ok = st_writer_add(w, st_name_at(f, i), &nt, &err) == OIR_OK;
            tensor_free(&nt);
        } else {
            ok = st_writer_add(w, st_name_at(f, i), st_tensor_at(f, i), &err) == OIR_OK;
        }
    }
    ok = ok && st_writer_save(w, dst, &err) == OIR_OK;
    CHECK(ok, "rewrite %s: %s", dst, err.message);
    st_writer_free(w);
    st_close(f);
    return ok;
}

/* Projections widened to P rows (deterministic values). */
static int widen_projection(const char *name, const tensor *in, tensor *out, void *user) {
    int P = *(int *)user;
    if (strcmp(name, "text_projection.weight") && strcmp(name, "visual_projection.weight")) return 0;
    int64_t shape[2] = {P, in->shape[1]};
    tensor_alloc(out, DT_F32, 2, shape, NULL);
    float *d = out->data;
    for (int64_t i = 0; i < P * in->shape[1]; i++) d[i] = (float)((i * 7919) % 101) / 101.0f - 0.5f;
    return 1;
}

/* Position embedding extended to N rows (rows repeat). */
static int extend_positions(const char *name, const tensor *in, tensor *out, void *user) {
    int N = *(int *)user;
    if (!strstr(name, "position_embedding.weight")) return 0;
    int64_t shape[2] = {N, in->shape[1]};
    tensor_alloc(out, DT_F32, 2, shape, NULL);
    size_t row = (size_t)in->shape[1], rows = (size_t)in->shape[0];
    float *src = malloc(rows * row * sizeof(float));
    convert_to_f32(src, in->data, in->type, rows * row, NULL);
    for (int r = 0; r < N; r++) memcpy((float *)out->data + (size_t)r * row, src + (r % rows) * row, row * 4);
    free(src);
    return 1;
}

/* A weight set to a huge finite value: the forward overflows float32. */
static int overflow_weight(const char *name, const tensor *in, tensor *out, void *user) {
    if (strcmp(name, (const char *)user)) return 0;
    tensor_alloc(out, DT_F32, in->ndim, in->shape, NULL);
    for (int64_t i = 0; i < tensor_numel(in); i++) ((float *)out->data)[i] = 3e38f;
    return 1;
}

#define SIZE 16

static void make_pair(unsigned char *rgb, unsigned char *mask) {
    for (int i = 0; i < SIZE * SIZE; i++) {
        int x = i % SIZE, y = i / SIZE, in = x >= 3 && x < 9 && y >= 4 && y < 11;
        rgb[i * 3] = in ? 220 : 120, rgb[i * 3 + 1] = 120, rgb[i * 3 + 2] = 130;
        mask[i] = (unsigned char)in;
    }
}

/* oir_search on (model, clip) with T steps; returns the status. */
static int search(const char *model, const char *clip, int T, oir_error *err) {
    oir_context_params cp = oir_context_default_params();
    cp.model_path = model;
    cp.clip_path = clip;
    oir_context *ctx = NULL;
    int rc = oir_context_load(&ctx, &cp, err);
    if (rc) return rc;
    static unsigned char rgb[SIZE * SIZE * 3], mask[SIZE * SIZE];
    make_pair(rgb, mask);
    oir_pair pair = {"circle", "square", mask, NULL};
    oir_params p = oir_default_params();
    p.steps = T;
    oir_result *r = NULL;
    rc = oir_search(ctx, rgb, SIZE, SIZE, "a red circle", &pair, &p, &r, err);
    oir_result_free(r);
    oir_context_free(ctx);
    return rc;
}

/* A CLIP scorer whose projection is wider than 1024 (ViT-bigG: 1280) wrote
 * past a float[1024] on the stack. */
static void test_wide_clip(void) {
    const char *dir = tpath("clip1280");
    run("cp -r '%s' '%s'", clip_src, dir);
    char p[1600], q[1600];
    snprintf(p, sizeof p, "%s/model.safetensors", clip_src);
    snprintf(q, sizeof q, "%s/model.safetensors", dir);
    int P = 1280;
    if (!rewrite_st(p, q, widen_projection, &P)) return;
    snprintf(q, sizeof q, "%s/config.json", dir);
    edit_text(q, "\"projection_dim\": 16", "\"projection_dim\": 1280");
    oir_error err = {0};
    int rc = search(pipe_src, dir, 2, &err);
    CHECK(rc == OIR_OK, "search with a 1280-wide CLIP projection: %s", err.message);
    if (rc == OIR_OK) printf("  ok   CLIP projection_dim 1280 scores\n");
}

/* A text encoder with more than 1024 positions (the sampler's old fixed
 * token buffer). */
static void test_long_text_encoder(void) {
    const char *dir = tpath("pipe_long");
    run("cp -r '%s' '%s'", pipe_src, dir);
    char p[1600], q[1600];
    snprintf(p, sizeof p, "%s/text_encoder/model.safetensors", pipe_src);
    snprintf(q, sizeof q, "%s/text_encoder/model.safetensors", dir);
    int N = 1100;
    if (!rewrite_st(p, q, extend_positions, &N)) return;
    snprintf(q, sizeof q, "%s/text_encoder/config.json", dir);
    edit_text(q, "\"max_position_embeddings\": 77", "\"max_position_embeddings\": 1100");
    oir_error err = {0};
    sd_model *m = NULL;
    if (!CHECK(sd_model_load(&m, dir, NULL, &err) == OIR_OK, "load: %s", err.message)) return;
    sampler s;
    if (CHECK(sampler_init(&s, m, SIZE, 2, 0, &err) == OIR_OK, "sampler: %s", err.message)) {
        float *ctx = malloc((size_t)s.ctx_len * s.ctx_dim * sizeof(float));
        int rc = sampler_encode_prompt(&s, "a red circle", ctx, &err);
        CHECK(rc == OIR_OK && s.ctx_len == 1100, "1100-position prompt: %s", err.message);
        free(ctx);
        sampler_free(&s);
    }
    sd_model_free(m);
}

/* Finite weights that overflow at run time: an error, not a black image. */
static void test_nonfinite_outputs(void) {
    struct {
        const char *component, *tensor, *needle;
    } cases[] = {
        {"vae", "decoder.conv_out.weight", "vae"},
        {"unet", "conv_out.weight", "unet"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char name[64];
        snprintf(name, sizeof name, "pipe_overflow_%s", cases[i].component);
        const char *dir = tpath(name);
        run("cp -r '%s' '%s'", pipe_src, dir);
        char p[1600], q[1600];
        snprintf(p, sizeof p, "%s/%s/diffusion_pytorch_model.safetensors", pipe_src, cases[i].component);
        snprintf(q, sizeof q, "%s/%s/diffusion_pytorch_model.safetensors", dir, cases[i].component);
        if (!rewrite_st(p, q, overflow_weight, (void *)cases[i].tensor)) continue;
        snprintf(q, sizeof q, "%s/%s/diffusion_pytorch_model.fp16.safetensors", dir, cases[i].component);
        unlink(q);
        oir_error err = {0};
        int rc = search(dir, clip_src, 2, &err);
        int ok = CHECK(rc == OIR_E_NUMERIC && strstr(err.message, "non-finite") &&
                           strstr(err.message, cases[i].needle),
                       "%s %s = 3e38: expected OIR_E_NUMERIC naming %s, got %d: %s", cases[i].component,
                       cases[i].tensor, cases[i].needle, rc, err.message);
        if (ok) printf("  ok   %s overflow -> %s\n", cases[i].component, err.message);
    }
}

int main(void) {
    snprintf(tmp, sizeof tmp, "/tmp/oir_test_hostile_XXXXXX");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    char *a = realpath(th_fixture_path("sd/tiny-pipe"), NULL), *b = realpath(th_fixture_path("sd/clip-tiny"), NULL);
    if (!CHECK(a && b, "fixtures sd/tiny-pipe and sd/clip-tiny")) return th_summary();
    snprintf(pipe_src, sizeof pipe_src, "%s", a);
    snprintf(clip_src, sizeof clip_src, "%s", b);
    free(a);
    free(b);
    test_fifos();
    test_tokenizer_files();
    test_duplicate_keys();
    test_config_limits();
    test_sizes_from_files();
    test_wide_clip();
    test_long_text_encoder();
    test_nonfinite_outputs();
    run("rm -rf '%s'%s", tmp, "");
    return th_summary();
}
